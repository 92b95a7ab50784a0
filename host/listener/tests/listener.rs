//! The listener against the fake Actions service and the in-memory Kubernetes API.

use std::time::Duration;

use gha_actions_fake::{AssignmentMode, FakeActions, FakeOptions, Fault, JobSpec, JobState};
use gha_crds::EphemeralRunnerSet;
use gha_listener::{ListenerConfig, ListenerError, SESSION_ANNOTATION, SESSION_OWNER_ANNOTATION};
use gha_mem_kube::{MemKube, MemKubeOptions};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::oneshot;

struct World {
    _kube: MemKube,
    fake: FakeActions,
    client: Client,
    runner_sets: Api<EphemeralRunnerSet>,
    scale_set: i64,
}

async fn world() -> World {
    world_in(AssignmentMode::GitHubCom).await
}

async fn world_in(mode: AssignmentMode) -> World {
    world_with(FakeOptions { mode, long_poll_hold: Duration::from_millis(100), ..Default::default() }).await
}

async fn world_with(options: FakeOptions) -> World {
    let kube = MemKube::start(MemKubeOptions::default()).await.unwrap();
    let client = Client::try_from(kube::Config::new(kube.url().parse().unwrap())).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in gha_crds::all() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let runner_sets: Api<EphemeralRunnerSet> = Api::namespaced(client.clone(), "default");
    let ers: EphemeralRunnerSet = serde_json::from_value(json!({
        "apiVersion": "actions.github.com/v1alpha1", "kind": "EphemeralRunnerSet",
        "metadata": {"name": "linux-ers"},
        "spec": {"patchID": 0, "ephemeralRunnerSpec": {"githubConfigUrl": "x", "githubConfigSecret": "s", "runnerScaleSetId": 1}}
    }))
    .unwrap();
    runner_sets.create(&PostParams::default(), &ers).await.unwrap();
    let fake = FakeActions::start(options).await.unwrap();
    let (_, set) = fake.client_with_scale_set("acme", "linux").await.unwrap();
    World { _kube: kube, fake, client, runner_sets, scale_set: set.id }
}

fn config(world: &World, policy: Option<serde_json::Value>) -> ListenerConfig {
    let mut config = json!({
        "configure_url": world.fake.config_url("acme"), "github_token": "ghp_fake",
        "ephemeral_runner_set_namespace": "default", "ephemeral_runner_set_name": "linux-ers",
        "runner_scale_set_id": world.scale_set, "runner_scale_set_name": "linux",
        "min_runners": 1, "max_runners": 10, "session_conflict_timeout_seconds": 20,
    });
    if let Some(policy) = policy {
        config["policy"] = policy;
    }
    ListenerConfig::parse(&config.to_string()).unwrap()
}

fn start(
    world: &World,
    config: ListenerConfig,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<Result<(), ListenerError>>) {
    start_as(world, config, "listener-pod")
}

/// Starts a listener whose pod is named `owner`.
fn start_as(
    world: &World,
    config: ListenerConfig,
    owner: &str,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<Result<(), ListenerError>>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let (client, owner) = (world.client.clone(), owner.to_string());
    let task = tokio::spawn(async move {
        gha_listener::run_as(config, client, &owner, async {
            let _ = stopped.await;
        })
        .await
    });
    (stop, task)
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn record_session(world: &World, id: &str, owner: &str) {
    let patch = json!({"metadata": {"annotations": {SESSION_ANNOTATION: id, SESSION_OWNER_ANNOTATION: owner}}});
    world.runner_sets.patch("linux-ers", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
}

async fn wait_for_spec(world: &World, what: &str, check: impl Fn(Option<i32>, i64) -> bool) {
    for _ in 0..250 {
        let ers = world.runner_sets.get("linux-ers").await.unwrap();
        if check(ers.spec.replicas, ers.spec.patch_id) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ers = world.runner_sets.get("linux-ers").await.unwrap();
    panic!("timed out waiting for {what}: replicas {:?} patchID {}", ers.spec.replicas, ers.spec.patch_id);
}

/// Runs every assigned job of the scale set to completion, as runners would.
fn run_all_jobs(world: &World) {
    world.fake.with_state(|s| {
        let assigned: Vec<i64> = s.jobs().iter().filter(|j| j.state == JobState::Assigned).map(|j| j.id).collect();
        for (i, _) in assigned.iter().enumerate() {
            let (runner, token) = s.create_runner(world.scale_set, &format!("runner-{i}")).unwrap();
            s.register_runner(runner.id, &token).unwrap();
            s.take_job(runner.id).unwrap();
            s.complete_job(runner.id, "succeeded").unwrap();
        }
    });
}

#[tokio::test]
async fn a_burst_scales_up_at_once_and_drains_only_at_steady_state() {
    let world = world().await;
    let (stop, task) = start(&world, config(&world, None));
    wait_for_spec(&world, "the first decision", |replicas, id| replicas == Some(1) && id > 0).await;
    for _ in 0..3 {
        world.fake.enqueue(JobSpec::default());
    }
    wait_for_spec(&world, "scale-up to min + 3", |replicas, id| replicas == Some(4) && id > 0).await;
    run_all_jobs(&world);
    wait_for_spec(&world, "a drain patch at min", |replicas, id| replicas == Some(1) && id == 0).await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert!(world.fake.with_state(|s| s.sessions()).is_empty(), "the session is deleted on shutdown");
}

#[tokio::test]
async fn a_stale_session_is_waited_out_instead_of_crash_looping() {
    let world = world().await;
    let stale = world.fake.with_state(|s| s.create_session(world.scale_set, "dead-pod", "q").unwrap().session_id);
    let (stop, task) = start(&world, config(&world, None));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!task.is_finished(), "the listener keeps retrying");
    world.fake.with_state(|s| s.delete_session(world.scale_set, &stale));
    wait_for_spec(&world, "a decision after the conflict cleared", |replicas, _| replicas == Some(1)).await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_scale_set_gone_from_github_ends_with_its_own_exit_code() {
    let world = world().await;
    let (_stop, task) = start(&world, config(&world, None));
    wait_for_spec(&world, "the first decision", |replicas, _| replicas == Some(1)).await;
    world.fake.with_state(|s| s.delete_scale_set(world.scale_set));
    let err = tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap_err();
    assert_eq!(err.exit_code(), gha_listener::EXIT_SCALE_SET_GONE, "{err}");
}

#[tokio::test]
async fn a_warm_pool_schedule_applies_without_any_message() {
    let world = world().await;
    // A window that is always open: minRunners 5 every day, all day.
    let days = json!(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]);
    let policy = json!({"source": {"builtIn": "warm-pool"},
                        "config": {"schedules": [{"days": days, "start": "00:00", "end": "00:00", "minRunners": 5}]}});
    let (stop, task) = start(&world, config(&world, Some(policy)));
    wait_for_spec(&world, "the schedule's floor", |replicas, _| replicas == Some(5)).await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_unknown_policy_stops_the_listener_with_a_clear_error() {
    let world = world().await;
    // A built-in that does not exist fails the load: the listener refuses to start with a clear error.
    let missing = json!({"source": {"builtIn": "no-such-policy"}});
    let (_stop, task) = start(&world, config(&world, Some(missing)));
    let err = task.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("no-such-policy"), "{err}");
}

#[tokio::test]
async fn scaling_follows_statistics_not_message_counts() {
    let world = world().await;
    let mut config = config(&world, None);
    config.max_runners = 200;
    let (stop, task) = start(&world, config);
    wait_for_spec(&world, "the first decision", |replicas, _| replicas == Some(1)).await;
    // 120 jobs arrive as three envelopes of at most 50 messages; the target comes from the statistics.
    for _ in 0..120 {
        world.fake.enqueue(JobSpec::default());
    }
    wait_for_spec(&world, "min + 120", |replicas, _| replicas == Some(121)).await;
    // Queue tokens expire in the middle of polling: the session is refreshed and scaling goes on.
    world.fake.with_state(|s| s.expire_queue_tokens());
    world.fake.enqueue(JobSpec::default());
    wait_for_spec(&world, "min + 121 after a token expiry", |replicas, _| replicas == Some(122)).await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn busy_runners_are_marked_and_their_pods_labelled_by_the_policy() {
    use gha_crds::EphemeralRunner;
    use k8s_openapi::api::core::v1::Pod;
    let world = world().await;
    let runners: Api<EphemeralRunner> = Api::namespaced(world.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(world.client.clone(), "default");
    let er: EphemeralRunner = serde_json::from_value(json!({
        "apiVersion": "actions.github.com/v1alpha1", "kind": "EphemeralRunner", "metadata": {"name": "runner-0"},
        "spec": {"githubConfigUrl": "x", "githubConfigSecret": "s", "runnerScaleSetId": world.scale_set}
    }))
    .unwrap();
    runners.create(&PostParams::default(), &er).await.unwrap();
    let pod: Pod =
        serde_json::from_value(json!({"metadata": {"name": "runner-0"}, "spec": {"containers": [{"name": "runner"}]}}))
            .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let policy = json!({"source": {"builtIn": "pod-shaper"}});
    let (stop, task) = start(&world, config(&world, Some(policy)));
    wait_for_spec(&world, "the first decision", |replicas, _| replicas == Some(1)).await;
    world.fake.enqueue(JobSpec { repository: "acme/app".into(), display_name: "build".into(), ..Default::default() });
    world.fake.with_state(|s| {
        let (runner, token) = s.create_runner(world.scale_set, "runner-0").unwrap();
        s.register_runner(runner.id, &token).unwrap();
        s.take_job(runner.id).unwrap();
    });
    for _ in 0..250 {
        let status = runners.get("runner-0").await.unwrap().status.unwrap_or_default();
        let annotations = pods.get("runner-0").await.unwrap().metadata.annotations.unwrap_or_default();
        if status.job_display_name.as_deref() == Some("build")
            && annotations.get("karpenter.sh/do-not-disrupt").map(String::as_str) == Some("true")
        {
            assert_eq!(status.job_repository_name.as_deref(), Some("acme/app"));
            stop.send(()).unwrap();
            task.await.unwrap().unwrap();
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the runner was not marked busy and labelled");
}

#[tokio::test]
async fn every_decision_and_shadow_divergence_goes_to_the_decision_log() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decisions.jsonl");
    let policy = json!({"source": {"builtIn": "arc-default"},
                        "shadow": {"source": {"builtIn": "warm-pool"}, "config": {"scaleFactor": 1.0}}});
    let mut config = config(&world, Some(policy));
    config.decision_log = Some(path.display().to_string());
    let (stop, task) = start(&world, config);
    wait_for_spec(&world, "the first decision", |replicas, id| replicas == Some(1) && id > 0).await;
    for _ in 0..2 {
        world.fake.enqueue(JobSpec::default());
    }
    wait_for_spec(&world, "scale-up to min + 2", |replicas, _| replicas == Some(3)).await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    let records: Vec<gha_policy_engine::DecisionRecord> =
        std::fs::read_to_string(&path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(records.len() >= 2, "{records:?}");
    assert!(records.iter().all(|r| r.outcome == "policy" && r.policy_sha256.len() == 64));
    let burst = records.iter().find(|r| r.input.statistics.assigned_jobs == 2).expect("the burst decision");
    assert_eq!(burst.output.desired_runners, 3);
    let shadow = burst.shadow_output.as_ref().expect("warm-pool disagrees during the burst");
    assert!(shadow.desired_runners > 3, "{shadow:?}");
}

#[tokio::test]
async fn cancelled_jobs_bring_the_target_back_to_the_minimum() {
    let world = world().await;
    let (stop, task) = start(&world, config(&world, None));
    wait_for_spec(&world, "the first decision", |replicas, id| replicas == Some(1) && id > 0).await;
    for _ in 0..3 {
        world.fake.enqueue(JobSpec::default());
    }
    wait_for_spec(&world, "scale-up to min + 3", |replicas, _| replicas == Some(4)).await;
    // Nobody starts the jobs: the service cancels them (re-queueing each until it gives up).
    for _ in 0..3 {
        world.fake.with_state(|s| s.expire(Duration::ZERO, Duration::ZERO));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let jobs = world.fake.with_state(|s| s.jobs());
    assert!(jobs.iter().all(|j| j.result.as_deref() == Some("canceled")), "{jobs:?}");
    wait_for_spec(&world, "back to min with a drain patch", |replicas, id| replicas == Some(1) && id == 0).await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

/// A config running the misbehaving fixture in `mode` from a file (kept in the returned directory), with a
/// metrics endpoint at the returned URL.
fn misbehaving(world: &World, mode: &str) -> (tempfile::TempDir, ListenerConfig, String) {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("misbehaving.wasm");
    std::fs::write(&wasm, gha_policy_engine::fixtures::MISBEHAVING).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut config = config(world, Some(json!({"source": {"file": wasm}, "config": {"mode": mode}})));
    config.metrics_addr = format!("127.0.0.1:{port}");
    (dir, config, format!("http://127.0.0.1:{port}/metrics"))
}

/// The sum of the series starting with `prefix` in a Prometheus text exposition.
fn sum_of(metrics: &str, prefix: &str) -> f64 {
    let values = metrics.lines().filter(|l| l.starts_with(prefix));
    values.filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

#[tokio::test]
async fn a_policy_that_traps_on_every_call_is_replaced_by_arcs_formula() {
    let world = world().await;
    let (_dir, config, metrics_url) = misbehaving(&world, "panic");
    let (stop, task) = start(&world, config);
    wait_for_spec(&world, "ARC's first decision", |replicas, id| replicas == Some(1) && id > 0).await;
    for _ in 0..2 {
        world.fake.enqueue(JobSpec::default());
    }
    wait_for_spec(&world, "ARC's min + 2 while the policy traps", |replicas, _| replicas == Some(3)).await;
    let metrics = reqwest::get(&metrics_url).await.unwrap().text().await.unwrap();
    let fallbacks = sum_of(&metrics, "gha_policy_fallbacks_total{");
    assert!(fallbacks >= 2.0, "every trapped decision was answered by the fallback:\n{metrics}");
    assert!(metrics.contains("gha_policy_traps"), "traps are counted");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_job_whose_acquire_fails_is_delivered_again_and_acquired() {
    let world = world_in(AssignmentMode::Ghes).await;
    let (stop, task) = start(&world, config(&world, None));
    wait_for_spec(&world, "the first decision", |replicas, _| replicas == Some(1)).await;
    let refused = Fault {
        path_contains: "acquirejobs".into(),
        method: Some("POST".into()),
        count: 2,
        status: Some(403),
        ..Fault::default()
    };
    world.fake.inject(refused);
    let id = world.fake.enqueue(JobSpec::default());
    eventually("the job acquired after two refusals", || {
        world.fake.with_state(|s| s.jobs().iter().any(|j| j.id == id && j.state == JobState::Assigned))
    })
    .await;
    assert_eq!(world.fake.request_counts()["POST /_service/_apis/runtime/runnerscalesets/{id}/acquirejobs"], 3);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_live_session_is_never_deleted_and_one_this_pod_left_is_taken_over() {
    let world = world().await;
    let live = world.fake.with_state(|s| s.create_session(world.scale_set, "pod-a", "q").unwrap().session_id);
    record_session(&world, &live, "pod-a").await;
    let (stop, task) = start_as(&world, config(&world, None), "pod-b");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let sessions: Vec<String> = world.fake.with_state(|s| s.sessions().iter().map(|s| s.id.clone()).collect());
    assert_eq!(sessions, std::slice::from_ref(&live), "pod-a's session is left alone; pod-b waits on standby");
    assert!(!task.is_finished());
    stop.send(()).unwrap();
    let _ = task.await;

    // The same session recorded by this pod's name: its previous listener is gone, so it is taken over at once.
    record_session(&world, &live, "pod-b").await;
    let (stop, task) = start_as(&world, config(&world, None), "pod-b");
    wait_for_spec(&world, "a decision after the take-over", |replicas, _| replicas == Some(1)).await;
    let sessions: Vec<String> = world.fake.with_state(|s| s.sessions().iter().map(|s| s.id.clone()).collect());
    assert!(sessions.len() == 1 && sessions[0] != live, "{sessions:?}");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_replaced_session_is_recorded_and_numbers_its_messages_afresh() {
    let world = world().await;
    let (stop, task) = start(&world, config(&world, None));
    wait_for_spec(&world, "the first decision", |replicas, _| replicas == Some(1)).await;
    for expected in 2..=4 {
        world.fake.enqueue(JobSpec::default());
        wait_for_spec(&world, "one more runner", |replicas, _| replicas == Some(expected)).await;
    }
    let first = world.fake.with_state(|s| s.sessions()[0].id.clone());
    world.fake.with_state(|s| s.drop_sessions_of(world.scale_set));
    world.fake.enqueue(JobSpec::default());
    wait_for_spec(&world, "the job seen through the new session", |replicas, _| replicas == Some(5)).await;
    let second = world.fake.with_state(|s| s.sessions()[0].id.clone());
    assert_ne!(first, second);
    let recorded = world.runner_sets.get("linux-ers").await.unwrap().metadata.annotations.unwrap();
    assert_eq!(
        (recorded[SESSION_ANNOTATION].as_str(), recorded[SESSION_OWNER_ANNOTATION].as_str()),
        (second.as_str(), "listener-pod")
    );
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn undecodable_messages_are_skipped_acknowledged_and_do_not_wedge_the_queue() {
    let world = world().await;
    let (stop, task) = start(&world, config(&world, None));
    wait_for_spec(&world, "the first decision", |replicas, _| replicas == Some(1)).await;
    world.fake.with_state(|s| {
        assert!(s.push_raw_envelope(world.scale_set, "SomethingNew", "{}"));
        let bad_job = r#"[{"messageType":"JobAssigned","runnerRequestId":"five"}]"#;
        assert!(s.push_raw_envelope(world.scale_set, gha_actions_client::message::JOB_MESSAGES_TYPE, bad_job));
    });
    world.fake.enqueue(JobSpec::default());
    wait_for_spec(&world, "the job after the garbage", |replicas, _| replicas == Some(2)).await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

/// Runs assigned jobs on at most as many runners as the EphemeralRunnerSet asks for, as the controller and the
/// runners would.
async fn play_runners(world: &World, next_runner: &mut usize) {
    let replicas = world.runner_sets.get("linux-ers").await.map_or(0, |s| s.spec.replicas.unwrap_or(0).max(0) as usize);
    world.fake.with_state(|s| {
        let assigned = s.jobs().iter().filter(|j| j.state == JobState::Assigned).count();
        for _ in 0..assigned.min(replicas) {
            *next_runner += 1;
            let (runner, token) = s.create_runner(world.scale_set, &format!("runner-{next_runner}")).unwrap();
            s.register_runner(runner.id, &token).unwrap();
            if s.take_job(runner.id).is_some() {
                s.complete_job(runner.id, "succeeded").unwrap();
            }
        }
    });
}

/// Every job queued ends completed exactly once, whatever fails on the way: random 5xx and 429 on every
/// Actions endpoint the listener calls, revoked admin tokens, expired queue tokens, dropped sessions, and
/// responses lost after the service acted (acquire, ack, session create). The listener never exits and leaves no
/// session behind. `GHA_JOB_ACCOUNTING_JOBS` runs more jobs (default 300).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_job_completes_exactly_once_under_random_protocol_faults() {
    use rand::Rng;
    if let Ok(filter) = std::env::var("LISTENER_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
    let jobs: usize = std::env::var("GHA_JOB_ACCOUNTING_JOBS").ok().and_then(|n| n.parse().ok()).unwrap_or(300);
    let world = world_with(FakeOptions {
        mode: AssignmentMode::Ghes,
        long_poll_hold: Duration::from_millis(100),
        acquire_timeout: Duration::from_secs(20),
        session_idle_timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    })
    .await;
    let mut listener_config = config(&world, None);
    listener_config.max_runners = 20;
    let (stop, mut task) = start(&world, listener_config);
    wait_for_spec(&world, "the first decision", |replicas, _| replicas == Some(1)).await;

    let fault = |path: &str, method: &str, status: u16, after_acting: bool| Fault {
        path_contains: path.into(),
        method: Some(method.into()),
        count: 1,
        status: Some(status),
        after_acting,
        ..Fault::default()
    };
    let (mut faults, mut enqueued, mut next_runner) = (std::collections::BTreeMap::<&str, u32>::new(), 0, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60 + jobs as u64 / 5);
    loop {
        let done = world.fake.with_state(|s| s.jobs().iter().filter(|j| j.state == JobState::Completed).count());
        if enqueued == jobs && done == jobs {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{done} of {jobs} jobs completed; faults {faults:?}");
        if task.is_finished() {
            panic!("the listener exited: {:?}; faults {faults:?}", (&mut task).await);
        }
        for _ in 0..(jobs - enqueued).min(10) {
            world.fake.enqueue(JobSpec::default());
            enqueued += 1;
        }
        if enqueued < jobs {
            let kind = rand::rng().random_range(0..10);
            let after = rand::rng().random_bool(0.5);
            match kind {
                0 => world.fake.inject(fault("/_queue/", "GET", 503, false)),
                1 => world.fake.inject(fault("/_queue/", "DELETE", 429, after)),
                2 => world.fake.inject(fault("acquirejobs", "POST", 500, after)),
                3 => world.fake.inject(fault("/sessions", "POST", 503, true)),
                4 => world.fake.revoke_admin_tokens(),
                5 => world.fake.with_state(|s| s.expire_queue_tokens()),
                6 => world.fake.with_state(|s| s.drop_sessions_of(world.scale_set)),
                7 => world.fake.inject(fault("/sessions/", "PATCH", 500, false)),
                8 => world.fake.inject(fault("/_queue/", "GET", 401, false)),
                _ => world.fake.inject(fault("runner-registration", "POST", 502, false)),
            }
            let label = [
                "queue 503",
                "ack 429",
                "acquire 500",
                "session create lost",
                "admin revoked",
                "queue token expired",
                "session dropped",
                "refresh 500",
                "queue 401",
                "registration 502",
            ][kind];
            *faults.entry(label).or_default() += 1;
        }
        play_runners(&world, &mut next_runner).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    world.fake.clear_faults();
    let (all, redelivered) = world.fake.with_state(|s| (s.jobs(), s.redeliveries()));
    assert_eq!(all.len(), jobs);
    let wrong: Vec<_> =
        all.iter().filter(|j| j.result.as_deref() != Some("succeeded")).map(|j| (j.id, j.result.clone())).collect();
    assert!(wrong.is_empty(), "jobs not completed once and successfully: {wrong:?}");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), task).await.unwrap().unwrap().unwrap();
    // An orphan of a lost session create expires; the listener's own session was deleted on shutdown.
    eventually("no session left", || {
        world.fake.with_state(|s| {
            s.drop_idle_sessions();
            s.sessions().is_empty()
        })
    })
    .await;
    let total: u32 = faults.values().sum();
    eprintln!("job accounting: {jobs} jobs, {total} faults {faults:?}, {redelivered} messages delivered again, 0 lost");
}

#[tokio::test]
async fn a_policy_asking_to_requeue_every_millisecond_decides_once_a_second_and_keeps_its_long_poll() {
    let world = world_with(FakeOptions { long_poll_hold: Duration::from_secs(30), ..Default::default() }).await;
    let (_dir, config, metrics_url) = misbehaving(&world, "fast-requeue");
    let (stop, task) = start(&world, config);
    wait_for_spec(&world, "the first decision", |replicas, _| replicas == Some(1)).await;
    let version = world.runner_sets.get("linux-ers").await.unwrap().metadata.resource_version;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let metrics = reqwest::get(&metrics_url).await.unwrap().text().await.unwrap();
    let decisions = sum_of(&metrics, "gha_policy_calls_total{hook=\"decide\"");
    assert!((3.0..=6.0).contains(&decisions), "a decision a second (the requeue floor), not 1000: {decisions}");
    let polls: u64 =
        world.fake.request_counts().iter().filter(|(route, _)| route.starts_with("GET /_queue/")).map(|(_, n)| n).sum();
    assert_eq!(polls, 1, "requeued decisions never drop the long poll: {:?}", world.fake.request_counts());
    let unchanged = world.runner_sets.get("linux-ers").await.unwrap().metadata.resource_version;
    assert_eq!(unchanged, version, "decisions that change nothing patch nothing");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
