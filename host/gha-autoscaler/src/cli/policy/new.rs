//! `policy new`: a policy project from a template — Rust, JavaScript or Python — with its table tests.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};

/// The language of a new policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// The Rust SDK (`gha-autoscaler-policy`), cargo for wasm32-unknown-unknown.
    Rust,
    /// componentize-js (npm).
    Js,
    /// componentize-py (PyPI).
    Python,
}

/// Create a policy project (a one-spare-per-N-jobs scaler to start from) with its build script and table tests.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The policy's name (lowercase letters, digits and dashes); also its directory unless --dir is given.
    name: String,
    /// Language.
    #[arg(long, value_enum, default_value = "rust")]
    lang: Lang,
    /// Directory to create [default: NAME].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Rust: a local checkout of the SDK (its guest-sdk directory) instead of the git repository.
    #[arg(long)]
    sdk_path: Option<PathBuf>,
}

/// A template file: its path in the project, its text, whether it is executable.
type File = (&'static str, &'static str, bool);

const WIT: [File; 4] = [
    ("wit/hooks.wit", include_str!("../../../../../wit/hooks.wit"), false),
    ("wit/host.wit", include_str!("../../../../../wit/host.wit"), false),
    ("wit/types.wit", include_str!("../../../../../wit/types.wit"), false),
    ("wit/worlds.wit", include_str!("../../../../../wit/worlds.wit"), false),
];

const RUST: [File; 6] = [
    ("Cargo.toml", include_str!("../../../../../guest-sdk/templates/rust/Cargo.toml.template"), false),
    ("src/lib.rs", include_str!("../../../../../guest-sdk/templates/rust/src/lib.rs"), false),
    ("build.sh", include_str!("../../../../../guest-sdk/templates/rust/build.sh"), true),
    ("test.yaml", include_str!("../../../../../guest-sdk/templates/rust/test.yaml"), false),
    ("README.md", include_str!("../../../../../guest-sdk/templates/rust/README.md"), false),
    (".gitignore", "/target\n/policy.wasm\n", false),
];

const JS: [File; 6] = [
    ("package.json", include_str!("../../../../../guest-sdk/templates/js/package.json"), false),
    ("build.mjs", include_str!("../../../../../guest-sdk/templates/js/build.mjs"), false),
    ("policy.js", include_str!("../../../../../guest-sdk/templates/js/policy.js"), false),
    ("test.yaml", include_str!("../../../../../guest-sdk/templates/js/test.yaml"), false),
    ("README.md", include_str!("../../../../../guest-sdk/templates/js/README.md"), false),
    (".gitignore", "/node_modules\n/policy.wasm\n", false),
];

const PYTHON: [File; 5] = [
    ("app.py", include_str!("../../../../../guest-sdk/templates/python/app.py"), false),
    ("build.sh", include_str!("../../../../../guest-sdk/templates/python/build.sh"), true),
    ("test.yaml", include_str!("../../../../../guest-sdk/templates/python/test.yaml"), false),
    ("README.md", include_str!("../../../../../guest-sdk/templates/python/README.md"), false),
    (".gitignore", "/venv\n/policy.wasm\n__pycache__/\n", false),
];

/// Where the Rust SDK comes from when no local checkout is given.
const SDK_GIT: &str = "https://github.com/gha-autoscaler/gha-autoscaler";

impl NewArgs {
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let valid = self.name.starts_with(|c: char| c.is_ascii_lowercase())
            && self.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        anyhow::ensure!(valid, "{:?}: use lowercase letters, digits and dashes, starting with a letter", self.name);
        let dir = self.dir.clone().unwrap_or_else(|| PathBuf::from(&self.name));
        anyhow::ensure!(!dir.exists(), "{} exists; not overwriting it", dir.display());
        let sdk = match &self.sdk_path {
            Some(path) => {
                let path = std::fs::canonicalize(path).with_context(|| format!("SDK path {}", path.display()))?;
                format!("{{ path = {:?} }}", path.display().to_string())
            }
            None => format!("{{ git = \"{SDK_GIT}\" }}"),
        };
        let files: Vec<File> = match self.lang {
            Lang::Rust => RUST.to_vec(),
            Lang::Js => JS.iter().chain(&WIT).copied().collect(),
            Lang::Python => PYTHON.iter().chain(&WIT).copied().collect(),
        };
        for (path, text, executable) in files {
            let text = text
                .replace("{{name}}", &self.name)
                .replace("{{crate}}", &self.name.replace('-', "_"))
                .replace("{{sdk}}", &sdk);
            write(&dir.join(path), &text, executable)?;
        }
        let next = match self.lang {
            Lang::Rust => "./build.sh && gha-autoscaler policy test test.yaml",
            Lang::Js => "npm install && npm test",
            Lang::Python => "./build.sh && gha-autoscaler policy test test.yaml",
        };
        eprintln!("created {} ({:?}); next: cd {} && {next}", dir.display(), self.lang, dir.display());
        Ok(ExitCode::SUCCESS)
    }
}

fn write(path: &Path, text: &str, executable: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    if executable {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", path.display()))?;
    }
    Ok(())
}
