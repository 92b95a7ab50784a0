//! Renders the Helm charts under `charts/` for tests, the way `helm template` does: with `helm` itself when it is
//! on `PATH` (set `GHA_CHART_RENDERER=builtin` to force the other path), else with a Go-template engine
//! (`gtmpl-ng` and its Sprig functions) plus Helm's own pieces — values merged over `values.yaml`, checked against
//! `values.schema.json`, `.Release`/`.Chart`/`.Capabilities`, `include`, `tpl`, `nindent`, `lookup` (empty, as in
//! `helm template`).
//!
//! No Helm binary is installable from the registries our CI reaches (crates.io, PyPI, npm, Debian), hence the
//! built-in path; the tests are the same on both.

mod builtin;
mod values;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a chart did not render.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The values break `values.schema.json`.
    #[error("values don't meet the chart's schema: {0}")]
    Schema(String),
    /// A template failed (including `required` and `fail`).
    #[error("template {file}: {message}")]
    Template {
        /// The template file.
        file: String,
        /// The engine's message.
        message: String,
    },
    /// A template produced text that is not YAML.
    #[error("template {file} rendered invalid YAML: {message}")]
    Yaml {
        /// The template file.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// Reading the chart, or running `helm`.
    #[error("{0}")]
    Io(String),
}

/// A `helm template` invocation.
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

impl Render {
    /// Renders chart `name` (a directory under `charts/`) as release `release` in `namespace`.
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

    /// Sets one value by dotted path (`--set-json path=value`).
    pub fn set(mut self, path: &str, value: Value) -> Self {
        self.layers.push(values::nested(path, value));
        self
    }

    /// Sets a value to a file's content (`--set-file path=file`).
    pub fn set_file(mut self, path: &str, file: impl Into<PathBuf>) -> Self {
        self.files.push((path.into(), file.into()));
        self
    }

    /// The Kubernetes version templates see (`.Capabilities.KubeVersion`, `--kube-version`).
    pub fn kube_version(mut self, version: &str) -> Self {
        self.kube_version = version.into();
        self
    }

    /// Renders every template.
    ///
    /// # Errors
    /// See [`RenderError`].
    pub fn run(&self) -> Result<Manifests, RenderError> {
        let helm = std::env::var("GHA_CHART_RENDERER").map_or(true, |r| r != "builtin") && helm_available();
        let documents = if helm { self.run_helm()? } else { builtin::render(self)? };
        Ok(Manifests(documents))
    }

    fn run_helm(&self) -> Result<Vec<(String, Value)>, RenderError> {
        let dir = std::env::temp_dir().join(format!("gha-charts-{}-{:p}", std::process::id(), self));
        std::fs::create_dir_all(&dir).map_err(|e| RenderError::Io(e.to_string()))?;
        let mut command = std::process::Command::new("helm");
        command.args(["template", &self.release]).arg(&self.chart);
        command.args(["--namespace", &self.namespace, "--kube-version", &self.kube_version]);
        for (i, layer) in self.layers.iter().enumerate() {
            let path = dir.join(format!("values-{i}.json"));
            std::fs::write(&path, layer.to_string()).map_err(|e| RenderError::Io(e.to_string()))?;
            command.arg("-f").arg(path);
        }
        for (path, file) in &self.files {
            command.arg("--set-file").arg(format!("{path}={}", file.display()));
        }
        let output = command.output().map_err(|e| RenderError::Io(format!("helm: {e}")))?;
        let _ = std::fs::remove_dir_all(&dir);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if !output.status.success() {
            return Err(if stderr.contains("schema") {
                RenderError::Schema(stderr)
            } else {
                RenderError::Template { file: "(helm)".into(), message: stderr }
            });
        }
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let mut documents = Vec::new();
        for document in text.split("\n---") {
            let file = document.lines().find_map(|l| l.strip_prefix("# Source: ")).unwrap_or("(helm)").to_string();
            let value: Value = serde_yaml::from_str(document)
                .map_err(|e| RenderError::Yaml { file: file.clone(), message: e.to_string() })?;
            if !value.is_null() {
                documents.push((file, value));
            }
        }
        Ok(documents)
    }
}

fn helm_available() -> bool {
    std::process::Command::new("helm").arg("version").output().is_ok_and(|o| o.status.success())
}

/// The rendered objects, each with the template it came from.
#[derive(Debug, Clone)]
pub struct Manifests(pub Vec<(String, Value)>);

impl Manifests {
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
