//! `gha-autoscaler listener` as the listener pod runs it: config from a file, SIGTERM ends it cleanly — on the
//! default build and on the production build (no test doubles, what the image ships).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use gha_actions_fake::{FakeActions, FakeOptions};
use gha_crds::EphemeralRunnerSet;
use gha_mem_kube::{MemKube, MemKubeOptions};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::json;

#[test]
fn an_invalid_config_exits_2_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, r#"{"configure_url": "https://github.com/acme", "github_token": "t"}"#).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_gha-autoscaler")).args(["listener", "--config"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ephemeral_runner_set_namespace"));
}

/// The production build of the binary: `$GHA_PRODUCTION_BINARY` (scripts/test builds it first), else built here.
fn production_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("GHA_PRODUCTION_BINARY") {
        return path.into();
    }
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("production");
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "gha-autoscaler", "--no-default-features", "--locked", "--target-dir"])
        .arg(&target)
        .status()
        .unwrap();
    assert!(status.success(), "the production build failed");
    target.join("debug/gha-autoscaler")
}

#[test]
fn the_production_build_carries_no_test_doubles() {
    let binary = production_binary();
    let help = Command::new(&binary).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let commands: Vec<&str> = help.lines().filter_map(|l| l.strip_prefix("  ")?.split_whitespace().next()).collect();
    for command in ["controller", "listener", "policy", "crds", "simulate"] {
        assert!(commands.contains(&command), "{command} is in the production build:\n{help}");
    }
    for command in ["demo", "kube-api"] {
        assert!(!commands.contains(&command), "{command} is not:\n{help}");
        let refused = Command::new(&binary).arg(command).output().unwrap();
        assert_eq!(refused.status.code(), Some(2), "{command}");
    }
}

#[tokio::test]
async fn sigterm_deletes_the_session_and_exits_zero() {
    sigterm_round_trip(Path::new(env!("CARGO_BIN_EXE_gha-autoscaler"))).await;
}

#[tokio::test]
async fn the_production_build_listens_and_stops_on_sigterm() {
    sigterm_round_trip(&production_binary()).await;
}

/// `binary listener` scales an EphemeralRunnerSet and, on SIGTERM in the middle of a long poll, deletes its
/// session and exits 0.
async fn sigterm_round_trip(binary: &Path) {
    let kube = MemKube::start(MemKubeOptions::default()).await.unwrap();
    let client = Client::try_from(kube::Config::new(kube.url().parse().unwrap())).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in gha_crds::all() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let runner_sets: Api<EphemeralRunnerSet> = Api::namespaced(client, "default");
    let ers: EphemeralRunnerSet = serde_json::from_value(json!({
        "apiVersion": "actions.github.com/v1alpha1", "kind": "EphemeralRunnerSet", "metadata": {"name": "ers"},
        "spec": {"ephemeralRunnerSpec": {"githubConfigUrl": "x", "githubConfigSecret": "s", "runnerScaleSetId": 1}}
    }))
    .unwrap();
    runner_sets.create(&PostParams::default(), &ers).await.unwrap();
    let fake = FakeActions::start(FakeOptions { long_poll_hold: Duration::from_secs(30), ..Default::default() })
        .await
        .unwrap();
    let (_, set) = fake.client_with_scale_set("acme", "s").await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let config = json!({
        "configure_url": fake.config_url("acme"), "github_token": "ghp_fake",
        "ephemeral_runner_set_namespace": "default", "ephemeral_runner_set_name": "ers",
        "runner_scale_set_id": set.id, "min_runners": 2, "max_runners": 4, "kubernetes_api_url": kube.url(),
    });
    std::fs::write(&path, config.to_string()).unwrap();
    let mut child = tokio::process::Command::new(binary)
        .args(["listener", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut patched = false;
    for _ in 0..250 {
        if runner_sets.get("ers").await.unwrap().spec.replicas == Some(2) {
            patched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(patched, "the listener patched the EphemeralRunnerSet");
    assert_eq!(fake.with_state(|s| s.sessions()).len(), 1);
    // SIGTERM in the middle of a 30 s long poll.
    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(fake.with_state(|s| s.sessions()).is_empty(), "the session was deleted");
}
