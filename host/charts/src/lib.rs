//! Runs the Helm charts under `charts/` through real helm, for tests: `helm template` (with helm 3 and helm 4,
//! which must agree byte for byte), `helm lint --strict`, and `helm install`/`uninstall` against a real cluster.
//! The helm binaries are the ones `scripts/provision-real-k8s.sh` installs ([`gha_real_kube::Helm`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use gha_real_kube::Helm;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why helm refused.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The values break `values.schema.json`.
    #[error("values don't meet the chart's schema: {0}")]
    Schema(String),
    /// A template failed (including `required` and `fail`), or the install was refused.
    #[error("helm: {0}")]
    Helm(String),
    /// helm printed text that is not YAML.
    #[error("rendered invalid YAML: {0}")]
    Yaml(String),
    /// helm is missing or could not run; the two helm versions disagree.
    #[error("{0}")]
    Io(String),
}

/// A chart with values: what one `helm template|lint|install` invocation gets.
#[derive(Debug, Clone)]
pub struct Render {
    chart: PathBuf,
    release: String,
    namespace: String,
    layers: Vec<Value>,
    files: Vec<(String, PathBuf)>,
    kube_version: String,
}

/// The directory of a chart in this repository.
pub fn chart_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts").join(name)
}

/// The value sets under `tests/data/<dir>` of this crate (documented values files), as (file stem, YAML), sorted
/// by name.
///
/// # Panics
/// The directory or a file in it cannot be read (a broken checkout).
pub fn value_sets(dir: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(dir);
    let mut sets: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path();
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path.file_stem().unwrap_or_default().to_string_lossy().into_owned(), text)
        })
        .collect();
    sets.sort();
    sets
}

/// A temporary directory holding one values file per layer.
struct ValueFiles {
    dir: tempfile::TempDir,
    count: usize,
}

impl Render {
    /// Chart `name` (a directory under `charts/`) as release `release` in `namespace`.
    pub fn new(name: &str, release: &str, namespace: &str) -> Self {
        Render {
            chart: chart_dir(name),
            release: release.into(),
            namespace: namespace.into(),
            layers: Vec::new(),
            files: Vec::new(),
            kube_version: "1.30.0".into(),
        }
    }

    /// Adds a values file's content (`-f`).
    ///
    /// # Panics
    /// When `yaml` is not YAML (a test bug).
    pub fn values(mut self, yaml: &str) -> Self {
        let value: Value = serde_yaml::from_str(yaml).expect("values YAML");
        self.layers.push(value);
        self
    }

    /// Sets one value by dotted path (as `--set-json path=value`, through a values file).
    pub fn set(mut self, path: &str, value: Value) -> Self {
        let nested = path.rsplit('.').fold(value, |inner, key| serde_json::json!({ key: inner }));
        self.layers.push(nested);
        self
    }

    /// Sets a value to a file's content (`--set-file path=file`).
    pub fn set_file(mut self, path: &str, file: impl Into<PathBuf>) -> Self {
        self.files.push((path.into(), file.into()));
        self
    }

    /// The Kubernetes version `helm template` assumes (`--kube-version`).
    pub fn kube_version(mut self, version: &str) -> Self {
        self.kube_version = version.into();
        self
    }

    fn value_files(&self) -> Result<ValueFiles, RenderError> {
        let dir = tempfile::tempdir().map_err(|e| RenderError::Io(e.to_string()))?;
        for (i, layer) in self.layers.iter().enumerate() {
            std::fs::write(dir.path().join(format!("values-{i}.json")), layer.to_string())
                .map_err(|e| RenderError::Io(e.to_string()))?;
        }
        Ok(ValueFiles { dir, count: self.layers.len() })
    }

    /// `helm <verb> ...` with this chart's values as arguments.
    fn command(&self, helm: Helm, verb: &[&str], files: &ValueFiles) -> Result<Command, RenderError> {
        let mut command = Command::new(helm.binary().map_err(|e| RenderError::Io(e.to_string()))?);
        command.args(verb).arg(&self.chart).args(["--namespace", &self.namespace]);
        for i in 0..files.count {
            command.arg("-f").arg(files.dir.path().join(format!("values-{i}.json")));
        }
        for (path, file) in &self.files {
            command.arg("--set-file").arg(format!("{path}={}", file.display()));
        }
        // helm keeps caches and repository config under HOME; tests must not depend on a user's setup.
        command.env("HELM_CACHE_HOME", files.dir.path().join("cache"));
        command.env("HELM_CONFIG_HOME", files.dir.path().join("config"));
        command.env("HELM_DATA_HOME", files.dir.path().join("data"));
        Ok(command)
    }

    fn output(mut command: Command) -> Result<String, RenderError> {
        let output = command.output().map_err(|e| RenderError::Io(format!("helm: {e}")))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            return Ok(stdout);
        }
        let message = format!("{}{stdout}", String::from_utf8_lossy(&output.stderr));
        Err(if message.contains("values don't meet the specifications of the schema") {
            RenderError::Schema(message)
        } else {
            RenderError::Helm(message)
        })
    }

    /// `helm template` with one helm version.
    ///
    /// # Errors
    /// See [`RenderError`].
    pub fn template_with(&self, helm: Helm) -> Result<String, RenderError> {
        let files = self.value_files()?;
        let release = self.release.as_str();
        let mut command = self.command(helm, &["template", release], &files)?;
        command.args(["--kube-version", &self.kube_version]);
        Self::output(command)
    }

    /// Renders every template with helm 3 and helm 4; both must give the same text (or both fail; helm 3's
    /// error is returned).
    ///
    /// # Errors
    /// See [`RenderError`].
    pub fn run(&self) -> Result<Manifests, RenderError> {
        let (three, four) = (self.template_with(Helm::V3), self.template_with(Helm::V4));
        match (three, four) {
            (Ok(three), Ok(four)) if three == four => Manifests::parse(&three),
            (Ok(_), Ok(_)) => Err(RenderError::Io("helm 3 and helm 4 rendered different manifests".into())),
            (Err(e), Err(_)) => Err(e),
            (three, four) => Err(RenderError::Io(format!("helm 3 and helm 4 disagree: {three:?} / {four:?}"))),
        }
    }

    /// `helm lint --strict` with one helm version.
    ///
    /// # Errors
    /// Lint's findings.
    pub fn lint(&self, helm: Helm) -> Result<(), RenderError> {
        let files = self.value_files()?;
        let command = self.command(helm, &["lint", "--strict"], &files)?;
        Self::output(command).map(drop)
    }

    /// `helm install --create-namespace` into the cluster of `kubeconfig`.
    ///
    /// # Errors
    /// helm's or the API server's refusal.
    pub fn install(&self, helm: Helm, kubeconfig: &Path) -> Result<(), RenderError> {
        let files = self.value_files()?;
        let mut command = self.command(helm, &["install", &self.release], &files)?;
        command.arg("--create-namespace").arg("--kubeconfig").arg(kubeconfig);
        Self::output(command).map(drop)
    }

    /// `helm uninstall` of this release (without waiting: objects with finalizers stay until their controller lets go).
    ///
    /// # Errors
    /// helm's or the API server's refusal.
    pub fn uninstall(&self, helm: Helm, kubeconfig: &Path) -> Result<(), RenderError> {
        let mut command = Command::new(helm.binary().map_err(|e| RenderError::Io(e.to_string()))?);
        command.args(["uninstall", &self.release, "--namespace", &self.namespace, "--kubeconfig"]).arg(kubeconfig);
        Self::output(command).map(drop)
    }
}

/// The rendered objects, each with the template it came from.
#[derive(Debug, Clone)]
pub struct Manifests(pub Vec<(String, Value)>);

impl Manifests {
    /// Splits `helm template` output into objects.
    ///
    /// # Errors
    /// [`RenderError::Yaml`] for a document that is not YAML.
    pub fn parse(text: &str) -> Result<Manifests, RenderError> {
        let mut documents = Vec::new();
        for document in text.split("\n---") {
            let file = document.lines().find_map(|l| l.strip_prefix("# Source: ")).unwrap_or("(helm)").to_string();
            let value: Value = serde_yaml::from_str(document).map_err(|e| RenderError::Yaml(format!("{file}: {e}")))?;
            if !value.is_null() {
                documents.push((file, value));
            }
        }
        Ok(Manifests(documents))
    }

    /// Every object of `kind`.
    pub fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.0.iter().map(|(_, v)| v).filter(|v| v["kind"] == kind).collect()
    }

    /// The object of `kind` named `name`, if rendered.
    pub fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.of_kind(kind).into_iter().find(|v| v["metadata"]["name"] == name)
    }

    /// The one object of `kind`, as a typed object.
    ///
    /// # Panics
    /// When there is not exactly one, or it does not deserialise (a test failure).
    pub fn one<K: DeserializeOwned>(&self, kind: &str) -> K {
        let all = self.of_kind(kind);
        assert_eq!(all.len(), 1, "expected one {kind}, rendered {}", all.len());
        serde_json::from_value(all[0].clone()).unwrap_or_else(|e| panic!("{kind}: {e}"))
    }

    /// `kind/name` of every object, sorted (for messages).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .0
            .iter()
            .map(|(_, v)| {
                format!("{}/{}", v["kind"].as_str().unwrap_or("?"), v["metadata"]["name"].as_str().unwrap_or("?"))
            })
            .collect();
        names.sort();
        names
    }
}
