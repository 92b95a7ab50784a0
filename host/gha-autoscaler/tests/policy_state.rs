//! Durable policy state end to end: the listener process keeps its policy's state in the ConfigMap the controller
//! created for it, and the listener that replaces it (pod deleted, as in a node drain or a rollout) decides with
//! that state from its first decision. A corrupt stored state is dropped and the new listener starts fresh.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use gha_actions_fake::{JobSpec, JobState};
use gha_controller::autoscaling_listener::DECISION_LOG_ANNOTATION;
use gha_controller::autoscaling_runner_set::listener_name;
use gha_controller::listener_pod::policy_state_name;
use gha_crds::{PolicySourceSpec, PolicySpecCr};
use gha_policy_engine::DecisionRecord;
use gha_sandbox::{CONTROLLER_NAMESPACE, RUNNER_NAMESPACE, Sandbox, SandboxOptions, ensure, eventually, job};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

const SET: &str = "stateful";

/// Every decision the listener processes logged, in order.
fn decisions(dir: &Path) -> Vec<DecisionRecord> {
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    let mut records = Vec::new();
    for path in files.iter().filter(|p| p.to_string_lossy().contains("listener")) {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        records.extend(text.lines().filter_map(|line| serde_json::from_str::<DecisionRecord>(line).ok()));
    }
    records
}

async fn restart_listener(sandbox: &Sandbox) {
    let pods: Api<Pod> = Api::namespaced(sandbox.client.clone(), CONTROLLER_NAMESPACE);
    for pod in pods.list(&ListParams::default()).await.unwrap().items {
        pods.delete(&pod.name_any(), &DeleteParams::default()).await.unwrap();
    }
}

/// The first decision of the next listener process (a decision without a previous one, after `seen` records).
async fn first_decision_after(dir: &Path, seen: usize) -> DecisionRecord {
    let mut found = None;
    eventually("a new listener's first decision", Duration::from_secs(60), || {
        found = decisions(dir).into_iter().skip(seen).find(|r| r.input.previous.is_none());
        let done = found.is_some();
        async move { ensure(done, || "none yet".to_string()) }
    })
    .await;
    found.unwrap()
}

async fn start_sandbox(logs: &Path) -> Sandbox {
    Sandbox::start(SandboxOptions {
        listener_binary: Some(env!("CARGO_BIN_EXE_gha-autoscaler").into()),
        container_log_dir: Some(logs.to_path_buf()),
        ..SandboxOptions::default()
    })
    .await
    .unwrap()
}

/// The stored state of a scale set's policy, decoded.
async fn stored_state(
    sandbox: &Sandbox,
    ars: &gha_crds::AutoscalingRunnerSet,
) -> Result<(Option<String>, Vec<u8>), String> {
    let maps: Api<ConfigMap> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let map = maps.get(&policy_state_name(&listener_name(ars))).await.map_err(|e| e.to_string())?;
    let data = map.data.unwrap_or_default();
    let state = data.get("state").map(|s| base64::engine::general_purpose::STANDARD.decode(s).unwrap());
    Ok((data.get("policy").cloned(), state.unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_listener_decides_with_the_state_its_predecessor_stored_and_drops_a_corrupt_one() {
    let logs = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox(logs.path()).await;
    let policy = PolicySpecCr {
        source: PolicySourceSpec { built_in: Some("warm-pool".into()), ..Default::default() },
        config: Some(json!({"scaleFactor": 0.5, "maxScaleUpPerMinute": 50})),
        ..Default::default()
    };
    let mut ars = sandbox.runner_set(SET, 0, 5, Some(policy));
    ars.annotations_mut().insert(DECISION_LOG_ANNOTATION.into(), "true".into());
    sandbox.apply(&ars).await.unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let state_map = policy_state_name(&listener_name(&ars));

    eventually("the listener stored its policy's state", Duration::from_secs(60), || async {
        let (policy, state) = stored_state(&sandbox, &ars).await?;
        ensure(policy.as_deref() == Some("warm-pool") && !state.is_empty(), || format!("{policy:?} {state:?}"))
    })
    .await;
    let before = decisions(logs.path());
    assert!(!before.is_empty(), "the decision log is on");
    let decided_states: Vec<Vec<u8>> = before.iter().map(|r| r.output.state.clone()).collect();

    restart_listener(&sandbox).await;
    let first = first_decision_after(logs.path(), before.len()).await;
    assert!(!first.input.state.is_empty(), "the new listener's first decision had no state");
    assert!(decided_states.contains(&first.input.state), "restored {:?}", String::from_utf8_lossy(&first.input.state));

    // Someone corrupts the stored state: the next listener drops it and decides from scratch.
    let seen = decisions(logs.path()).len();
    let corrupt = json!({"data": {"sha256": "0".repeat(64)}});
    maps.patch(&state_map, &PatchParams::default(), &Patch::Merge(&corrupt)).await.unwrap();
    restart_listener(&sandbox).await;
    let fresh = first_decision_after(logs.path(), seen).await;
    assert!(fresh.input.state.is_empty(), "a corrupt state was restored");
    assert_eq!(fresh.outcome, "policy", "the new listener decides with its policy");
    sandbox.stop().await;
}

/// A job of workflow run `run` on the scale set.
fn run_job(run: i64, name: &str, duration_ms: u64) -> JobSpec {
    JobSpec { workflow_run_id: run, display_name: name.into(), ..job(&[LEARNER], duration_ms) }
}

const LEARNER: &str = "learner";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_predictive_learned_before_a_restart_warms_runners_after_it() {
    let logs = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox(logs.path()).await;
    let policy = PolicySpecCr {
        source: PolicySourceSpec { built_in: Some("predictive".into()), ..Default::default() },
        // Sandbox runners start in about a second: a short lead, no idle pool, a short fan-out window.
        config: Some(json!({"leadSeconds": 2, "baselineFactor": 0, "windowSeconds": 4})),
        ..Default::default()
    };
    let mut ars = sandbox.runner_set(LEARNER, 0, 10, Some(policy));
    ars.annotations_mut().insert(DECISION_LOG_ANNOTATION.into(), "true".into());
    sandbox.apply(&ars).await.unwrap();

    // Run 1: a 4-second build, then its 4 tests (queued when it has completed, as GitHub does).
    let build = sandbox.fake.enqueue(run_job(1, "build", 4000));
    eventually("run 1's build completed", Duration::from_secs(60), || {
        let state = sandbox.fake.with_state(|s| s.jobs().into_iter().find(|j| j.id == build).map(|j| j.state));
        async move { ensure(state == Some(JobState::Completed), || format!("{state:?}")) }
    })
    .await;
    for i in 1..=4 {
        sandbox.fake.enqueue(run_job(1, &format!("test ({i}/4)"), 1000));
    }
    // The learned fan-out (4 jobs, stored ×100) reaches the stored state.
    eventually("the learned fan-out is stored", Duration::from_secs(60), || async {
        let (_, state) = stored_state(&sandbox, &ars).await?;
        let state: serde_json::Value = serde_json::from_slice(&state).map_err(|e| e.to_string())?;
        let learned = state["m"].as_array().cloned().unwrap_or_default();
        ensure(learned.iter().any(|pair| pair[1] == 400), || format!("{state}"))
    })
    .await;

    let seen = decisions(logs.path()).len();
    restart_listener(&sandbox).await;
    // Run 2 starts once the new listener decides (a message the old one took as it stopped is not redelivered to
    // its successor's session).
    let first = first_decision_after(logs.path(), seen).await;
    assert!(!first.input.state.is_empty(), "the new listener's first decision had no state");
    let seen = decisions(logs.path()).len();
    // Run 2's build: the new listener warms runners for its 4 tests before it ends.
    sandbox.fake.enqueue(run_job(2, "build", 10_000));
    eventually("the new listener warms for run 2's tests", Duration::from_secs(60), || {
        let after: Vec<_> = decisions(logs.path()).into_iter().skip(seen).collect();
        let warmed = after
            .iter()
            .any(|r| r.output.reason.contains("warming 4 (1 predecessors") && r.output.desired_runners >= 5);
        let reasons: Vec<_> = after.iter().map(|r| r.output.reason.clone()).collect();
        async move { ensure(warmed, || format!("no warming decision yet; decided {reasons:?}")) }
    })
    .await;
    sandbox.stop().await;
}
