//! Any-language authoring, checked with the real toolchains: `gha-autoscaler policy new --lang rust|js|python`,
//! the project's own build (cargo; componentize-js from npm; componentize-py from PyPI), then its table tests
//! through the host under production limits — the commands the guest-sdk README shows. The built components are
//! kept in `<target>/policy-templates/` for the policy benchmark (`cargo bench -p gha-policy-engine`), which
//! reports their size, cold compile and decide latency beside the shipped Rust policies.

use std::path::{Path, PathBuf};
use std::process::Command;

fn gha() -> &'static str {
    env!("CARGO_BIN_EXE_gha-autoscaler")
}

/// `PATH` with the gha-autoscaler under test first (the projects' scripts call it).
fn path() -> String {
    let bin = Path::new(gha()).parent().unwrap().display().to_string();
    format!("{bin}:{}", std::env::var("PATH").unwrap_or_default())
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("..")
}

/// Runs `program args` in `dir`; panics with its output when it fails.
fn run(dir: &Path, program: &str, args: &[&str], env: &[(&str, String)]) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("PATH", path())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap_or_else(|e| panic!("{program} cannot run ({e}); the template tests need it installed"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{program} {args:?} in {} failed:\n{text}", dir.display());
    text
}

/// `policy new` in a fresh directory; returns the project directory (kept alive by the TempDir).
fn scaffold(lang: &str, extra: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let parent = tempfile::tempdir().unwrap();
    let name = format!("my-{lang}-policy");
    let mut args = vec!["policy", "new", "--lang", lang, name.as_str()];
    args.extend_from_slice(extra);
    run(parent.path(), gha(), &args, &[]);
    let dir = parent.path().join(&name);
    assert!(dir.join("test.yaml").is_file());
    (parent, dir)
}

/// Checks the component names itself after the project, passes its suite, and keeps a copy for the benchmark.
fn check_and_keep(dir: &Path, lang: &str, allow_wasi: bool) {
    let mut inspect = vec!["policy", "inspect", "--json", "policy.wasm"];
    if allow_wasi {
        inspect.push("--allow-wasi");
    }
    let manifest: serde_json::Value = serde_json::from_str(&run(dir, gha(), &inspect, &[])).unwrap();
    assert_eq!(manifest["info"]["name"], format!("my-{lang}-policy"));
    assert_eq!(manifest["witVersion"], "0.2.0");
    let suite = run(dir, gha(), &["policy", "test", "test.yaml"], &[]);
    assert!(suite.contains("passed"), "{suite}");
    let kept = target_dir().join("policy-templates");
    std::fs::create_dir_all(&kept).unwrap();
    std::fs::copy(dir.join("policy.wasm"), kept.join(format!("{lang}.wasm"))).unwrap();
}

#[test]
fn a_rust_policy_from_the_template_builds_and_passes_its_suites() {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-sdk");
    let (_keep, dir) = scaffold("rust", &["--sdk-path", sdk.to_str().unwrap()]);
    let cargo_target = [("CARGO_TARGET_DIR", target_dir().join("policy-template-build").display().to_string())];
    run(&dir, "./build.sh", &[], &cargo_target);
    check_and_keep(&dir, "rust", false);
    let native = run(&dir, "cargo", &["test", "--quiet"], &cargo_target);
    assert!(native.contains("test result: ok"), "{native}");
}

#[test]
fn a_javascript_policy_from_the_template_builds_and_passes_its_suite() {
    let (_keep, dir) = scaffold("js", &[]);
    run(&dir, "npm", &["install", "--no-audit", "--no-fund"], &[]);
    let suite = run(&dir, "npm", &["test"], &[]);
    assert!(suite.contains("passed"), "{suite}");
    check_and_keep(&dir, "js", false);
}

#[test]
fn a_python_policy_from_the_template_builds_and_passes_its_suite() {
    let (_keep, dir) = scaffold("python", &[]);
    run(&dir, "./build.sh", &[], &[]);
    check_and_keep(&dir, "python", true);
}

#[test]
fn new_refuses_bad_names_and_existing_directories() {
    let parent = tempfile::tempdir().unwrap();
    let bad = Command::new(gha()).args(["policy", "new", "My Policy"]).current_dir(parent.path()).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("lowercase"));
    std::fs::create_dir(parent.path().join("taken")).unwrap();
    let taken = Command::new(gha()).args(["policy", "new", "taken"]).current_dir(parent.path()).output().unwrap();
    assert!(String::from_utf8_lossy(&taken.stderr).contains("exists"));
}
