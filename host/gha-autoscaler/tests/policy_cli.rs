//! `gha-autoscaler policy ...` run as a user runs it: the real binary, real components.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn gha(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gha-autoscaler"))
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    child.stdin.take().unwrap().write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_example_suites_pass() {
    let out = gha(
        &[
            "policy",
            "test",
            "examples/policy-tests/arc-default.yaml",
            "examples/policy-tests/warm-pool.yaml",
            "examples/policy-tests/predictive.yaml",
            "examples/policy-tests/pod-shaper.yaml",
        ],
        None,
    );
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).ends_with("9 passed, 0 failed\n"), "{}", text(&out.stdout));
}

/// The shipped policies as built for WIT 0.1.0 (`host/policy-engine/fixtures/wit-0.1.0`) still pass their suites.
#[test]
fn policies_built_for_wit_0_1_pass_their_suites_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = repo_root().join("host/policy-engine/fixtures/wit-0.1.0");
    for (suite, component) in [("warm-pool", "warm_pool.wasm"), ("pod-shaper", "pod_shaper.wasm")] {
        let component = fixtures.join(component);
        let inspected = gha(&["policy", "inspect", component.to_str().unwrap()], None);
        assert!(text(&inspected.stdout).contains("gha-autoscaler:policy@0.1.0"), "{}", text(&inspected.stdout));
        let yaml = std::fs::read_to_string(repo_root().join(format!("examples/policy-tests/{suite}.yaml"))).unwrap();
        let yaml = yaml.replace(&format!("policy: {suite}\n"), &format!("policy: {}\n", component.display()));
        let path = dir.path().join(format!("{suite}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        let out = gha(&["policy", "test", path.to_str().unwrap()], None);
        assert!(out.status.success(), "{suite}: {}{}", text(&out.stdout), text(&out.stderr));
        assert!(text(&out.stdout).contains(" 0 failed"), "{}", text(&out.stdout));
    }
}

#[test]
fn a_failing_expectation_fails_the_run_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("wrong.yaml");
    std::fs::write(
        &suite,
        "policy: arc-default\ncases:\n  - name: wrong\n    decide:\n      - input: {statistics: {assignedJobs: 1}, bounds: {minRunners: 0, maxRunners: 5}}\n        expect: {desiredRunners: 4}\n",
    )
    .unwrap();
    let out = gha(&["policy", "test", suite.to_str().unwrap()], None);
    assert!(!out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("desiredRunners: expected 4, got 1"), "{stdout}");
    assert!(stdout.ends_with("0 passed, 1 failed\n"), "{stdout}");
}

#[test]
fn run_threads_decisions_like_the_listener() {
    let input = concat!(
        r#"{"statistics": {"assignedJobs": 0}, "bounds": {"minRunners": 1, "maxRunners": 4}}"#,
        "\n",
        r#"{"statistics": {"assignedJobs": 0}, "bounds": {"minRunners": 1, "maxRunners": 4}}"#,
        "\n",
        r#"{"statistics": {"assignedJobs": 9}, "bounds": {"minRunners": 1, "maxRunners": 4}}"#,
        "\n"
    );
    let out = gha(&["policy", "run", "arc-default"], Some(input));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let decisions: Vec<serde_json::Value> =
        text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summary: Vec<(u64, bool)> =
        decisions.iter().map(|d| (d["desiredRunners"].as_u64().unwrap(), d["drain"].as_bool().unwrap())).collect();
    assert_eq!(summary, [(1, false), (1, true), (4, false)]);
    assert_eq!(decisions[2]["outcome"], "policy");
}

#[test]
fn run_rejects_garbage_input_with_its_line_number() {
    let out = gha(&["policy", "run", "arc-default"], Some("{}\nnot json\n"));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("input line 2"), "{}", text(&out.stderr));
}

#[test]
fn a_bad_config_is_reported_with_the_field() {
    let out = gha(&["policy", "run", "warm-pool", "--config", r#"{"scaleFactr": 1}"#], Some(""));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("scaleFactr"), "{}", text(&out.stderr));
}

#[test]
fn componentize_builds_a_policy_that_inspect_understands() {
    let module =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("../policy-build/wasm32-unknown-unknown/policy/arc_default.wasm");
    let dir = tempfile::tempdir().unwrap();
    let component = dir.path().join("arc.wasm");
    let out = gha(&["policy", "componentize", module.to_str().unwrap(), "-o", component.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = gha(&["policy", "inspect", "--json", component.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(manifest["info"]["name"], "arc-default");
    assert_eq!((manifest["scaler"].as_bool(), manifest["scaleDown"].as_bool()), (Some(true), Some(true)));

    // The core module itself is refused with advice.
    let out = gha(&["policy", "inspect", module.to_str().unwrap()], None);
    assert!(text(&out.stderr).contains("componentize"), "{}", text(&out.stderr));
    let out = gha(&["policy", "componentize", "Cargo.toml", "-o", component.to_str().unwrap()], None);
    assert!(!out.status.success());
}

#[test]
fn run_mutate_shows_the_pod_under_the_admins_grant() {
    let config = r#"{"default": {"annotations": {"kubectl.kubernetes.io/default-container": "runner"}}}"#;
    let input = r#"{"runner": "r1", "template": {"spec": {"containers": [{"name": "runner", "image": "runner:1"}]}}}"#;
    let refused = gha(&["policy", "run", "pod-shaper", "--hook", "mutate", "--config", config], Some(input));
    assert!(refused.status.success(), "{}", text(&refused.stderr));
    let refused: serde_json::Value = serde_json::from_str(text(&refused.stdout).trim()).unwrap();
    assert_eq!(refused["outcome"], "fallback");
    assert!(refused["error"].as_str().unwrap().contains("permissions.metadataKeys"), "{refused}");
    assert!(refused["template"]["metadata"].is_null(), "the pod is left as it was: {refused}");

    let grant = r#"{"metadataKeys": ["kubectl.kubernetes.io/*"]}"#;
    let args = ["policy", "run", "pod-shaper", "--hook", "mutate", "--config", config, "--permissions", grant];
    let granted = gha(&args, Some(input));
    let granted: serde_json::Value = serde_json::from_str(text(&granted.stdout).trim()).unwrap();
    assert_eq!(granted["outcome"], "policy");
    assert_eq!(granted["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"], "runner");
}
