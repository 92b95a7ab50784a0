//! The EphemeralRunnerSet and EphemeralRunner controllers on the in-memory API, with the test writing pod
//! statuses itself (no kubelet) so every row of ARC's pod state machine (§1.6) is exercised on purpose.

use std::time::Duration;

use gha_crds::{AutoscalingRunnerSet, EphemeralRunner, EphemeralRunnerSet};
use gha_sandbox::{RUNNER_NAMESPACE, Sandbox, SandboxOptions, ensure, eventually};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

struct World {
    sandbox: Sandbox,
    runner_sets: Api<EphemeralRunnerSet>,
    runners: Api<EphemeralRunner>,
    pods: Api<Pod>,
    secrets: Api<Secret>,
}

const TIMEOUT: Duration = Duration::from_secs(20);

async fn world(kubelet: bool) -> World {
    let sandbox = Sandbox::start(SandboxOptions { kubelet, ..SandboxOptions::default() }).await.unwrap();
    sandbox.apply(&sandbox.runner_set("linux", 0, 50, None)).await.unwrap();
    let client = sandbox.client.clone();
    let world = World {
        runner_sets: Api::namespaced(client.clone(), RUNNER_NAMESPACE),
        runners: Api::namespaced(client.clone(), RUNNER_NAMESPACE),
        pods: Api::namespaced(client.clone(), RUNNER_NAMESPACE),
        secrets: Api::namespaced(client, RUNNER_NAMESPACE),
        sandbox,
    };
    eventually("the runner set", TIMEOUT, || async {
        let ers = world.runner_sets.get("linux").await.map_err(|e| e.to_string())?;
        ensure(ers.finalizers().iter().any(|f| f.contains("ephemeralrunnerset")), || "no finalizer yet".to_string())
    })
    .await;
    world
}

impl World {
    async fn scale(&self, replicas: u32, patch_id: i64) {
        let replicas = if replicas == 0 { Value::Null } else { json!(replicas) };
        let patch = json!({"spec": {"replicas": replicas, "patchID": patch_id}});
        self.runner_sets.patch("linux", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    }

    async fn runner_list(&self) -> Vec<EphemeralRunner> {
        self.runners.list(&ListParams::default()).await.unwrap().items
    }

    /// Waits for `count` runners, each registered with a pod; returns them.
    async fn wait_for_runners(&self, count: usize) -> Vec<EphemeralRunner> {
        eventually(&format!("{count} registered runners with pods"), TIMEOUT, || async {
            let runners = self.runner_list().await;
            let mut ready = 0;
            for runner in &runners {
                let registered = runner.status.as_ref().and_then(|s| s.runner_id).is_some();
                if registered && self.pods.get(&runner.name_any()).await.is_ok() {
                    ready += 1;
                }
            }
            ensure(runners.len() == count && ready == count, || format!("{} runners, {ready} ready", runners.len()))
        })
        .await;
        self.runner_list().await
    }

    async fn pod_status(&self, name: &str, status: Value) {
        let patch = json!({"status": status});
        self.pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    }

    async fn runner(&self, name: &str) -> Result<EphemeralRunner, String> {
        self.runners.get(name).await.map_err(|e| e.to_string())
    }

    async fn runner_status(&self, name: &str, status: Value) {
        let patch = json!({"status": status});
        self.runners.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    }

    fn registered_on_github(&self) -> usize {
        self.sandbox.fake.with_state(|s| s.runners().len())
    }
}

fn running(ready: bool) -> Value {
    json!({"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
           "containerStatuses": [{"name": "runner", "ready": ready, "restartCount": 0, "image": "", "imageID": "",
                                  "state": {"running": {}}}]})
}

fn terminated(exit_code: i32) -> Value {
    json!({"phase": if exit_code == 0 { "Succeeded" } else { "Failed" },
           "containerStatuses": [{"name": "runner", "ready": false, "restartCount": 0, "image": "", "imageID": "",
                                  "state": {"terminated": {"exitCode": exit_code}}}]})
}

fn runner_id(runner: &EphemeralRunner) -> Option<i64> {
    runner.status.as_ref().and_then(|s| s.runner_id)
}

async fn gone(w: &World, name: &str) -> Result<(), String> {
    ensure(w.runner(name).await.is_err(), || format!("{name} still there"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pod_state_machine_row_by_row() {
    let w = world(false).await;
    w.scale(3, 1).await;
    let runners = w.wait_for_runners(3).await;
    let (a, b, c) = (runners[0].name_any(), runners[1].name_any(), runners[2].name_any());

    // The pod as ARC builds it: JIT from the secret, never in the status.
    let pod = w.pods.get(&a).await.unwrap();
    let env = pod.spec.as_ref().unwrap().containers[0].env.clone().unwrap();
    let jit = env.iter().find(|e| e.name == "ACTIONS_RUNNER_INPUT_JITCONFIG").unwrap();
    assert_eq!(jit.value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap().name, a);
    assert_eq!(pod.labels()["actions-ephemeral-runner"], "True");
    assert_eq!(pod.spec.as_ref().unwrap().restart_policy.as_deref(), Some("Never"));
    let secret = w.secrets.get(&a).await.unwrap();
    assert!(secret.data.unwrap().contains_key("jitToken"));
    assert!(!serde_json::to_string(&w.runner(&a).await.unwrap().status).unwrap().contains("jitToken"));

    // No container status yet: wait (phase Pending).
    assert_eq!(w.runner(&a).await.unwrap().status.unwrap().phase.as_deref(), Some("Pending"));

    // Running: the phase is mirrored, ready follows the Ready condition.
    w.pod_status(&a, running(true)).await;
    eventually("a Running and ready", TIMEOUT, || async {
        let status = w.runner(&a).await?.status.clone().ok_or("no status")?;
        ensure(status.phase.as_deref() == Some("Running") && status.ready == Some(true), || format!("{status:?}"))
    })
    .await;

    // Idle runner exits non-zero: pod deleted, failure recorded, registration discarded, fresh JIT, new pod.
    let first_id = runner_id(&w.runner(&b).await.unwrap()).unwrap();
    let first_pod = w.pods.get(&b).await.unwrap().uid().unwrap();
    w.pod_status(&b, terminated(1)).await;
    eventually("b recreated with a fresh registration", TIMEOUT, || async {
        let runner = w.runner(&b).await?;
        let failures = runner.status.clone().unwrap_or_default().failures.unwrap_or_default();
        let pod = w.pods.get(&b).await.map_err(|e| e.to_string())?;
        let fresh = runner_id(&runner).is_some_and(|id| id != first_id) && pod.uid().as_deref() != Some(&first_pod);
        ensure(failures.len() == 1 && fresh, || format!("failures {failures:?} id {:?}", runner_id(&runner)))
    })
    .await;
    assert!(w.sandbox.fake.with_state(|s| s.runner(first_id).is_none()), "the spent registration was removed");

    // A failed init container counts as a failure too (#4457); the second failure waits 5 s (ARC's backoff).
    let second_pod = w.pods.get(&b).await.unwrap().uid().unwrap();
    let init_failed = json!({"phase": "Pending", "initContainerStatuses": [{"name": "init", "ready": false,
        "restartCount": 0, "image": "", "imageID": "", "state": {"terminated": {"exitCode": 2}}}]});
    w.pod_status(&b, init_failed).await;
    eventually("b's second failure", TIMEOUT, || async {
        let failures = w.runner(&b).await?.status.unwrap_or_default().failures.unwrap_or_default();
        ensure(failures.len() == 2, || format!("{failures:?}"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(w.pods.get(&b).await.is_err(), "no new pod during the backoff");
    eventually("b's pod after the backoff", TIMEOUT, || async {
        let pod = w.pods.get(&b).await.map_err(|e| e.to_string())?;
        ensure(pod.uid().as_deref() != Some(&second_pod), || "old pod".to_string())
    })
    .await;

    // Pod Failed with no runner status (e.g. evicted before start): a failure.
    w.pod_status(&c, json!({"phase": "Failed", "reason": "Evicted"})).await;
    eventually("c's failure", TIMEOUT, || async {
        let failures = w.runner(&c).await?.status.unwrap_or_default().failures.unwrap_or_default();
        ensure(failures.len() == 1, || format!("{failures:?}"))
    })
    .await;

    // More than five failures: the runner is replaced by a fresh one (the ERS recreates on its next patch).
    let many: serde_json::Map<String, Value> =
        (0..6).map(|i| (format!("uid-{i}"), json!("2020-01-01T00:00:00Z"))).collect();
    w.runner_status(&c, json!({"failures": many})).await;
    eventually("c deleted", TIMEOUT, || gone(&w, &c)).await;

    // A busy runner whose pod dies: the job is lost, the runner goes (no retry with a consumed JIT config).
    w.runner_status(&a, json!({"jobId": "job-1", "jobRequestId": 1})).await;
    w.pod_status(&a, terminated(137)).await;
    eventually("a deleted (job lost)", TIMEOUT, || gone(&w, &a)).await;

    // Exit 0: success, the runner goes.
    w.pod_status(&b, terminated(0)).await;
    eventually("b deleted (success)", TIMEOUT, || gone(&w, &b)).await;

    // With every runner of patch 1 gone, the set is filled again to its replicas; no registration leaked.
    let runners = w.wait_for_runners(3).await;
    assert_eq!(w.registered_on_github(), 3, "{runners:?}");

    // Exit 7: the runner version is deprecated → Outdated; the set stops scaling and the ARS says why.
    let d = runners[0].name_any();
    w.pod_status(&d, terminated(7)).await;
    eventually("the set Outdated", TIMEOUT, || async {
        let set = w.runner_sets.get("linux").await.map_err(|e| e.to_string())?.status.unwrap_or_default().phase;
        ensure(set.as_deref() == Some("Outdated"), || format!("set {set:?}"))
    })
    .await;
    let sets: Api<AutoscalingRunnerSet> = Api::namespaced(w.sandbox.client.clone(), RUNNER_NAMESPACE);
    eventually("the ARS condition", TIMEOUT, || async {
        let status = sets.get("linux").await.map_err(|e| e.to_string())?.status.clone().ok_or("no status")?;
        let outdated = status.conditions.iter().flatten().any(|c| c.reason == "RunnerOutdated");
        ensure(outdated, || format!("{:?}", status.conditions))
    })
    .await;
    w.sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_follows_the_patch_id_rules() {
    let w = world(false).await;
    w.scale(3, 1).await;
    let runners = w.wait_for_runners(3).await;

    // A lower target on a non-zero patch never removes runners: the listener may be ahead of their status.
    w.scale(1, 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(w.runner_list().await.len(), 3);

    // Patch 0 removes idle runners only; the busy one stays.
    let busy = runners[0].name_any();
    w.runner_status(&busy, json!({"jobId": "job-1"})).await;
    w.scale(0, 0).await;
    eventually("only the busy runner left", TIMEOUT, || async {
        let names: Vec<String> = w.runner_list().await.iter().map(|r| r.name_any()).collect();
        ensure(names == [busy.clone()], || format!("{names:?}"))
    })
    .await;
    eventually("idle registrations removed from GitHub", TIMEOUT, || async {
        let registered = w.registered_on_github();
        ensure(registered == 1, || format!("{registered} registered"))
    })
    .await;
    w.sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_racing_ahead_never_over_scales() {
    let w = world(true).await;
    let mut peak = 0;
    for patch_id in 1..=10 {
        w.scale(patch_id as u32, patch_id).await;
        peak = peak.max(w.runner_list().await.len());
    }
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let runners = w.runner_list().await;
        peak = peak.max(runners.len());
        let running =
            runners.iter().filter(|r| r.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")).count();
        if running == 10 || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(peak, 10, "never more runners than the latest target");
    assert_eq!(w.runner_list().await.len(), 10);
    w.sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_and_a_controller_restart_mid_scale_converge() {
    let mut w = world(true).await;
    w.sandbox.backend.mem().expect("in-memory API").fail_writes("ephemeralrunners", 5, 409);
    w.sandbox.backend.mem().expect("in-memory API").fail_writes("pods", 3, 409);
    w.scale(12, 1).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    w.sandbox.restart_controller().await.unwrap();
    w.wait_for_runners(12).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(w.runner_list().await.len(), 12, "no duplicates after the restart");
    assert_eq!(w.registered_on_github(), 12, "no leaked registrations");
    w.sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_and_invalid_pods_are_reported_not_retried_blindly() {
    let w = world(false).await;
    // The injected faults hit every pod write: let the listener pod be created first.
    let listener_pods: Api<Pod> = Api::namespaced(w.sandbox.client.clone(), gha_sandbox::CONTROLLER_NAMESPACE);
    eventually("the listener pod", TIMEOUT, || async {
        let n = listener_pods.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items.len();
        ensure(n == 1, || format!("{n} listener pods"))
    })
    .await;
    // A namespace quota refuses the pod: the runner waits (reason QuotaExceeded), it does not fail, and gets its
    // pod once the quota allows.
    w.sandbox.backend.mem().expect("in-memory API").fail_writes("pods", 2, 403);
    w.scale(1, 1).await;
    eventually("QuotaExceeded", TIMEOUT, || async {
        let runners = w.runner_list().await;
        let status = runners.first().and_then(|r| r.status.clone()).unwrap_or_default();
        ensure(status.reason.as_deref() == Some("QuotaExceeded") && status.phase.as_deref() != Some("Failed"), || {
            format!("{status:?}")
        })
    })
    .await;
    let waiting = w.runner_list().await[0].name_any();
    eventually("the pod once the quota allows (ARC retries every 30 s)", Duration::from_secs(45), || async {
        w.pods.get(&waiting).await.map(|_| ()).map_err(|e| e.to_string())
    })
    .await;

    // A pod the API rejects as invalid: the runner is marked Failed (InvalidPod), removed from GitHub, and the set
    // deletes it so it does not hold capacity.
    w.sandbox.backend.mem().expect("in-memory API").fail_writes("pods", 1, 422);
    w.scale(2, 2).await;
    eventually("the invalid runner marked and then deleted", TIMEOUT, || async {
        let events: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(w.sandbox.client.clone(), RUNNER_NAMESPACE);
        let items = events.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let invalid = items.iter().any(|e| e.reason.as_deref() == Some("InvalidPod"));
        let failed = w
            .runner_list()
            .await
            .iter()
            .filter(|r| r.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"))
            .count();
        ensure(invalid && failed == 0, || format!("invalid event {invalid}, {failed} failed runners left"))
    })
    .await;
    w.sandbox.stop().await;
}
