//! The fault suite: each scenario runs the whole product (real controller, real `gha-autoscaler listener`
//! processes, fake Actions service, in-memory API, simulated kubelet), breaks something during a burst of jobs,
//! and then checks the same invariants: no job lost, no busy runner removed, no runner leaked, and the scale set
//! back at its minimum. The controller-restart and watch-cut scenarios also run on a real kube-apiserver.
//!
//! Scenarios run one at a time (they kill processes and share two cores).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gha_actions_fake::{Fault, JobState};
use gha_crds::{AutoscalingRunnerSet, EphemeralRunner, EphemeralRunnerSet, PolicySourceSpec, PolicySpecCr};
use gha_sandbox::{
    BackendKind, CONTROLLER_NAMESPACE, RUNNER_NAMESPACE, Sandbox, SandboxOptions, ensure, eventually, job,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

/// One scenario at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SET: &str = "faults";

async fn sandbox(tweak: impl FnOnce(&mut SandboxOptions)) -> Sandbox {
    let mut options = SandboxOptions {
        listener_binary: Some(env!("CARGO_BIN_EXE_gha-autoscaler").into()),
        ..SandboxOptions::default()
    };
    tweak(&mut options);
    Sandbox::start(options).await.unwrap()
}

fn runner_sets(sandbox: &Sandbox) -> Api<AutoscalingRunnerSet> {
    Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE)
}

/// `count` jobs of `ms` each for the scale set.
fn burst(sandbox: &Sandbox, count: usize, ms: u64) {
    for _ in 0..count {
        sandbox.fake.enqueue(job(&[SET], ms));
    }
}

async fn runners(sandbox: &Sandbox) -> Result<Vec<EphemeralRunner>, String> {
    let api: Api<EphemeralRunner> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    Ok(api.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items)
}

fn busy(runner: &EphemeralRunner) -> bool {
    runner.status.as_ref().and_then(|s| s.job_id.as_deref()).is_some_and(|j| !j.is_empty())
}

/// Waits until `jobs` jobs are running on runners.
async fn running_jobs(sandbox: &Sandbox, jobs: usize) {
    eventually("jobs running", Duration::from_secs(60), || async {
        let running = sandbox.fake.with_state(|s| s.jobs().iter().filter(|j| j.state == JobState::Running).count());
        ensure(running >= jobs, || format!("{running} jobs running"))
    })
    .await;
}

/// The invariants every scenario ends with.
async fn settled(sandbox: &Sandbox, min: usize) {
    eventually("no job lost, no runner leaked, back at the minimum", Duration::from_secs(120), || async {
        let jobs = sandbox.fake.with_state(|s| s.jobs());
        let unfinished = jobs.iter().filter(|j| j.state != JobState::Completed).count();
        let failed: Vec<_> =
            jobs.iter().filter(|j| j.result.as_deref().is_some_and(|r| r != "succeeded")).map(|j| j.id).collect();
        let runners = runners(sandbox).await?;
        let idle = runners.iter().filter(|r| !busy(r)).count();
        let registered = sandbox.fake.with_state(|s| s.runners().iter().filter(|r| r.job.is_none()).count());
        let sessions = sandbox.fake.with_state(|s| s.sessions().len());
        ensure(
            unfinished == 0
                && failed.is_empty()
                && runners.len() == min
                && idle == min
                && registered == min
                && sessions == 1,
            || {
                let states: Vec<String> = runners
                    .iter()
                    .map(|r| {
                        let status = r.status.clone().unwrap_or_default();
                        format!(
                            "{} {:?} job {:?} deleting {}",
                            r.name_any(),
                            status.phase,
                            status.job_id,
                            r.metadata.deletion_timestamp.is_some()
                        )
                    })
                    .collect();
                format!(
                    "{unfinished} unfinished jobs, not succeeded {failed:?}, {} runners ({idle} idle) {states:?}, \
                     {registered} registered on GitHub, {sessions} sessions",
                    runners.len()
                )
            },
        )
    })
    .await;
}

/// Applies the scale set and waits for its listener and its idle minimum.
async fn scale_set(sandbox: &Sandbox, min: i32, max: i32, policy: Option<PolicySpecCr>) {
    sandbox.apply(&sandbox.runner_set(SET, min, max, policy)).await.unwrap();
    eventually("the listener and the minimum", Duration::from_secs(30), || async {
        let idle = runners(sandbox).await?.len();
        let sessions = sandbox.fake.with_state(|s| s.sessions().len());
        ensure(idle == min as usize && sessions == 1, || format!("{idle} runners, {sessions} sessions"))
    })
    .await;
}

/// A scenario's sandbox with the scale set (min 1, max 10) ready; the guard keeps other scenarios out.
async fn scenario(
    tweak: impl FnOnce(&mut SandboxOptions),
    policy: Option<PolicySpecCr>,
) -> (tokio::sync::MutexGuard<'static, ()>, Sandbox) {
    scenario_on(BackendKind::Mem, tweak, policy).await
}

/// [`scenario`] on a chosen Kubernetes API.
async fn scenario_on(
    backend: BackendKind,
    tweak: impl FnOnce(&mut SandboxOptions),
    policy: Option<PolicySpecCr>,
) -> (tokio::sync::MutexGuard<'static, ()>, Sandbox) {
    let serial = SERIAL.lock().await;
    let sandbox = sandbox(|options| {
        options.backend = backend;
        tweak(options);
    })
    .await;
    scale_set(&sandbox, 1, 10, policy).await;
    (serial, sandbox)
}

/// PIDs of this test process's `gha-autoscaler listener` children.
fn listener_pids() -> Vec<i32> {
    let listeners = gha_sandbox::child_processes(std::process::id())
        .into_iter()
        .filter(|(_, cmdline)| cmdline.contains("listener"));
    listeners.map(|(pid, _)| pid as i32).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_killed_mid_burst_is_recreated_and_takes_over_the_session() {
    let (_serial, sandbox) = scenario(|_| {}, None).await;
    burst(&sandbox, 8, 3_000);
    running_jobs(&sandbox, 2).await;
    let pids = listener_pids();
    assert_eq!(pids.len(), 1, "one listener process");
    // SIGKILL: no graceful session delete; the new listener meets the stale session.
    assert!(std::process::Command::new("kill").args(["-9", &pids[0].to_string()]).status().unwrap().success());
    eventually("a new listener process", Duration::from_secs(30), || async {
        let now = listener_pids();
        ensure(now.len() == 1 && now[0] != pids[0], || format!("listener pids {now:?}"))
    })
    .await;
    burst(&sandbox, 4, 1_000);
    settled(&sandbox, 1).await;
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actions_service_outage_of_5xx_429_and_timeouts_loses_nothing() {
    let (_serial, sandbox) = scenario(|_| {}, None).await;
    burst(&sandbox, 6, 2_000);
    running_jobs(&sandbox, 1).await;
    // Everything the controller and the listener call: the admin API, the Actions service and the message
    // queue (not the simulated runners' own endpoints: real runners have their own retry loop).
    let outage = |status: Option<u16>, delay_ms: Option<u64>, retry_after_secs: Option<u64>| {
        for path in ["/api/v3/", "/_apis/", "/_queue/"] {
            sandbox.fake.inject(Fault {
                path_contains: path.into(),
                method: None,
                count: u32::MAX,
                status,
                delay_ms,
                retry_after_secs,
                after_acting: false,
            });
        }
    };
    // Ten seconds each of 503s, 429s with Retry-After, and answers too slow for any client timeout; the queue
    // token is expired on top. Jobs queued meanwhile must still be served afterwards.
    for (status, delay_ms, retry_after_secs) in
        [(Some(503), None, None), (Some(429), None, Some(1)), (None, Some(10_000), None)]
    {
        outage(status, delay_ms, retry_after_secs);
        burst(&sandbox, 2, 1_000);
        sandbox.fake.with_state(|s| s.expire_queue_tokens());
        tokio::time::sleep(Duration::from_secs(10)).await;
        sandbox.fake.clear_faults();
    }
    settled(&sandbox, 1).await;
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_write_conflicts_server_errors_and_cut_watches_lose_nothing() {
    let (_serial, mut sandbox) = scenario(|_| {}, None).await;
    burst(&sandbox, 8, 2_000);
    for round in 0..10 {
        let (plural, code) =
            [("ephemeralrunners", 409), ("pods", 500), ("secrets", 409), ("ephemeralrunnersets", 500)][round % 4];
        sandbox.backend.mem().expect("the in-memory API injects faults").fail_writes(plural, 3, code);
        sandbox.backend.cut_watches().await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    settled(&sandbox, 1).await;
    sandbox.stop().await;
}

/// The API server restarted three times during a burst (every watch and connection cut, requests refused while
/// it is down): the controller and the listener resume and lose nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_restarts_during_a_burst_lose_nothing_on_a_real_api_server() {
    let (_serial, mut sandbox) = scenario_on(BackendKind::Real, |_| {}, None).await;
    burst(&sandbox, 8, 2_000);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        sandbox.backend.cut_watches().await.unwrap();
    }
    settled(&sandbox, 1).await;
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_restarts_during_scale_up_scale_down_and_deletion_lose_nothing() {
    controller_restarts_lose_nothing(BackendKind::Mem).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_restarts_during_scale_up_scale_down_and_deletion_lose_nothing_on_a_real_api_server() {
    controller_restarts_lose_nothing(BackendKind::Real).await;
}

async fn controller_restarts_lose_nothing(backend: BackendKind) {
    let (_serial, mut sandbox) = scenario_on(backend, |_| {}, None).await;
    let sets: Api<EphemeralRunnerSet> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);

    // Scale-up: restart as soon as the listener asked for more runners.
    burst(&sandbox, 6, 2_500);
    eventually("scale-up requested", Duration::from_secs(30), || async {
        let replicas = sets.get(SET).await.map_err(|e| e.to_string())?.spec.replicas.unwrap_or(0);
        ensure(replicas > 1, || format!("replicas {replicas}"))
    })
    .await;
    sandbox.restart_controller().await.unwrap();
    // Scale-down: restart while finished runners are being removed.
    running_jobs(&sandbox, 3).await;
    eventually("scale-down under way", Duration::from_secs(60), || async {
        let done = sandbox.fake.with_state(|s| s.jobs().iter().filter(|j| j.state == JobState::Completed).count());
        ensure(done >= 3, || format!("{done} jobs done"))
    })
    .await;
    sandbox.restart_controller().await.unwrap();
    settled(&sandbox, 1).await;

    // Deletion with busy runners, and a restart in the middle of it: the jobs finish, then everything goes.
    burst(&sandbox, 3, 4_000);
    running_jobs(&sandbox, 3).await;
    runner_sets(&sandbox).delete(SET, &DeleteParams::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    sandbox.restart_controller().await.unwrap();
    eventually("deleted after the busy runners finished", Duration::from_secs(60), || async {
        let jobs = sandbox.fake.with_state(|s| s.jobs());
        let lost: Vec<_> = jobs.iter().filter(|j| j.result.as_deref().is_some_and(|r| r != "succeeded")).collect();
        let unfinished = jobs.iter().filter(|j| j.state != JobState::Completed).count();
        let left = runners(&sandbox).await?.len()
            + runner_sets(&sandbox).list(&ListParams::default()).await.map_err(|e| e.to_string())?.items.len();
        let registered = sandbox.fake.with_state(|s| s.runners().len() + s.scale_sets().len());
        ensure(lost.is_empty() && unfinished == 0 && left == 0 && registered == 0, || {
            format!("{} lost, {unfinished} unfinished, {left} objects left, {registered} registered", lost.len())
        })
    })
    .await;
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_policy_swapped_in_during_a_burst_leaves_the_old_one_serving() {
    let arc_default = PolicySpecCr {
        source: PolicySourceSpec { built_in: Some("arc-default".into()), ..Default::default() },
        ..Default::default()
    };
    let (_serial, sandbox) = scenario(|_| {}, Some(arc_default)).await;
    let listener_pods: Api<Pod> = Api::namespaced(sandbox.client.clone(), CONTROLLER_NAMESPACE);
    let listener_uid = listener_pods.list(&ListParams::default()).await.unwrap().items[0].uid();
    burst(&sandbox, 6, 2_000);
    // A URL policy whose digest cannot match: the scale set reports it; the listener keeps its policy.
    let broken = json!({"spec": {"policy": {"source": {"url": {"url": "http://127.0.0.1:9/p.wasm", "sha256": "00".repeat(32)}}}}});
    runner_sets(&sandbox).patch(SET, &PatchParams::default(), &Patch::Merge(&broken)).await.unwrap();
    eventually("the scale set reports the broken policy", Duration::from_secs(30), || async {
        let set = runner_sets(&sandbox).get(SET).await.map_err(|e| e.to_string())?;
        let conditions = set.status.and_then(|s| s.conditions).unwrap_or_default();
        let invalid = conditions.iter().any(|c| c.type_ == "PolicyReady" && c.reason == "PolicyInvalid");
        ensure(invalid, || format!("conditions {conditions:?}"))
    })
    .await;
    burst(&sandbox, 3, 1_000);
    settled(&sandbox, 1).await;
    let now = listener_pods.list(&ListParams::default()).await.unwrap().items[0].uid();
    assert_eq!(now, listener_uid, "the listener was not restarted onto the broken policy");
    sandbox.stop().await;
}

/// Stores the misbehaving fixture in the ConfigMap [`misbehaving`] policies come from.
async fn store_misbehaving_policy(sandbox: &Sandbox) {
    let maps: Api<ConfigMap> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let map = ConfigMap {
        metadata: kube::api::ObjectMeta { name: Some("misbehaving".into()), ..Default::default() },
        binary_data: Some(BTreeMap::from([(
            "policy.wasm".to_string(),
            ByteString(gha_policy_engine::fixtures::MISBEHAVING.to_vec()),
        )])),
        ..Default::default()
    };
    maps.create(&PostParams::default(), &map).await.unwrap();
}

/// The misbehaving fixture in `mode`, from its ConfigMap.
fn misbehaving(mode: &str) -> PolicySpecCr {
    PolicySpecCr {
        source: PolicySourceSpec {
            config_map: Some(gha_crds::PolicyConfigMapRef { name: "misbehaving".into(), key: None }),
            ..Default::default()
        },
        config: Some(json!({"mode": mode})),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_that_loop_eat_memory_trap_or_answer_nonsense_fall_back_to_arcs_formula() {
    let _serial = SERIAL.lock().await;
    let sandbox = sandbox(|_| {}).await;
    store_misbehaving_policy(&sandbox).await;
    scale_set(&sandbox, 1, 10, Some(misbehaving("loop"))).await;
    burst(&sandbox, 5, 1_500);
    settled(&sandbox, 1).await;
    // (Out-of-bounds answers are clamped, not refused: a policy asking for u32::MAX runners gets maxRunners.)
    for mode in ["memory-bomb", "huge-state", "panic"] {
        let patch = json!({"spec": {"policy": misbehaving(mode)}});
        runner_sets(&sandbox).patch(SET, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        burst(&sandbox, 5, 1_500);
        settled(&sandbox, 1).await;
    }
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_pods_whose_image_never_pulls_or_that_never_get_ready_are_replaced() {
    use gha_sim_kubelet::PodFault;
    let slow_start = |options: &mut SandboxOptions| {
        options.pod_start_delay = Duration::from_millis(400);
        options.controller.runner_start_timeout = Duration::from_secs(3);
    };
    let (_serial, sandbox) = scenario(slow_start, None).await;
    let pods: Api<Pod> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let known: Vec<String> =
        pods.list(&ListParams::default()).await.unwrap().items.iter().map(|p| p.name_any()).collect();
    burst(&sandbox, 6, 1_500);
    // Two new runner pods misbehave before they start: one image never pulls, one never gets ready. (Faults that
    // hit a runner while it runs a job are covered with hand-written pod statuses in the controller's tests.)
    let mut faults = vec![PodFault::ImagePull, PodFault::NeverReady];
    let mut injected: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !faults.is_empty() && tokio::time::Instant::now() < deadline {
        for pod in pods.list(&ListParams::default()).await.unwrap().items {
            let name = pod.name_any();
            let pending = pod.status.as_ref().and_then(|s| s.phase.as_deref()).is_none_or(|p| p == "Pending");
            if !known.contains(&name)
                && !injected.contains(&name)
                && pending
                && let Some(fault) = faults.pop()
            {
                sandbox.kubelet.inject(&name, fault);
                injected.push(name);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(faults.is_empty(), "two new pods were seen");
    settled(&sandbox, 1).await;
    sandbox.stop().await;
}

/// Every runner pod seen while it runs (listed every 50 ms), by name.
fn watch_runner_pods(sandbox: &Sandbox) -> (Arc<Mutex<BTreeMap<String, Pod>>>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(BTreeMap::new()));
    let (pods, record): (Api<Pod>, _) = (Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE), seen.clone());
    let task = tokio::spawn(async move {
        loop {
            for pod in pods.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default() {
                record.lock().unwrap().entry(pod.name_any()).or_insert(pod);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (seen, task)
}

/// What a hostile policy tried to put on a runner pod, if it got there.
fn escalation(pod: &Pod) -> Option<String> {
    let spec = pod.spec.clone().unwrap_or_default();
    let labels = pod.labels();
    let dind = spec.containers.iter().find(|c| c.name == "dind");
    let runner_env: Vec<String> = spec
        .containers
        .iter()
        .filter(|c| c.name == "runner")
        .flat_map(|c| c.env.clone().unwrap_or_default())
        .map(|e| e.name)
        .collect();
    let control_plane =
        spec.node_selector.unwrap_or_default().keys().any(|k| k.starts_with("node-role.kubernetes.io/"));
    let tolerate_all =
        spec.tolerations.unwrap_or_default().iter().any(|t| t.key.is_none() && t.operator.as_deref() == Some("Exists"));
    [
        (dind.and_then(|c| c.image.as_deref()) != Some("docker:dind"), "the dind image swapped"),
        (runner_env.iter().any(|n| n == "LD_PRELOAD" || n == "DOCKER_HOST"), "runner env injected"),
        (control_plane || tolerate_all || spec.priority_class_name.is_some(), "control-plane placement"),
        (labels.get("actions-ephemeral-runner").is_some_and(|v| v != "True"), "controller label hijacked"),
        (
            labels.contains_key("pod-template-hash") && labels["pod-template-hash"] == "hijacked",
            "pod-template-hash hijacked",
        ),
    ]
    .into_iter()
    .find(|(found, _)| *found)
    .map(|(_, what)| format!("{}: {what}", pod.name_any()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_policies_cannot_escape_hijack_churn_or_flood_and_lose_nothing() {
    let _serial = SERIAL.lock().await;
    let logs = tempfile::tempdir().unwrap();
    let sandbox = sandbox(|options| options.container_log_dir = Some(logs.path().into())).await;
    store_misbehaving_policy(&sandbox).await;
    // The chart's dind mode: a privileged dind container beside the runner.
    let mut set = sandbox.runner_set(SET, 1, 10, Some(misbehaving("ok")));
    let template = set.spec.template.spec.as_mut().unwrap();
    template.containers.push(k8s_openapi::api::core::v1::Container {
        name: "dind".into(),
        image: Some("docker:dind".into()),
        security_context: Some(k8s_openapi::api::core::v1::SecurityContext {
            privileged: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    });
    sandbox.apply(&set).await.unwrap();
    let (seen, watcher) = watch_runner_pods(&sandbox);
    let log_bytes = || -> u64 {
        std::fs::read_dir(logs.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    };
    println!("{:<14} {:>8} {:>6} {:>10} {:>16}", "attack", "wall s", "pods", "log bytes", "listener peak MiB");
    for mode in ["dind-image", "runner-env", "control-plane", "label-hijack", "churn", "log-flood"] {
        let patch = json!({"spec": {"policy": misbehaving(mode)}});
        runner_sets(&sandbox).patch(SET, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (pods_before, logged_before, started) =
            (seen.lock().unwrap().len(), log_bytes(), std::time::Instant::now());
        burst(&sandbox, 6, 1_500);
        settled(&sandbox, 1).await;
        let pods = seen.lock().unwrap().len() - pods_before;
        let logged = log_bytes() - logged_before;
        let peak = listener_pids().iter().map(|pid| gha_sandbox::Rss::of(*pid as u32).peak).fold(0.0, f64::max);
        println!("{mode:<14} {:>8.1} {pods:>6} {logged:>10} {peak:>16.0}", started.elapsed().as_secs_f64());
        assert!(pods <= 6 + 2 * 20, "{mode}: {pods} runner pods for 6 jobs (the churn budget is 20 a minute)");
        assert!(logged < 1 << 20, "{mode}: {logged} bytes of listener logs");
        assert!(peak < 300.0, "{mode}: listener peak RSS {peak} MiB");
    }
    watcher.abort();
    let escalations: Vec<String> = seen.lock().unwrap().values().filter_map(escalation).collect();
    assert!(escalations.is_empty(), "{escalations:?}");
    assert!(seen.lock().unwrap().len() >= 6 * 6, "the attacks' pods were seen");
    sandbox.stop().await;
}
