//! `cargo bench -p gha-autoscaler --bench fleet`: one real `gha-autoscaler controller` process managing 1,000
//! AutoscalingRunnerSets × 5 runners on the in-memory API with the simulated kubelet. Listener pods run as plain
//! services (1,000 listener processes do not fit two cores); the benchmark sets each runner set's replicas as a
//! listener would. Measured: time until every scale set is registered with its listener pod running, time until
//! all runner pods run, the controller's RSS, its API requests per minute at steady state, and how long an
//! EphemeralRunnerSet takes to act on a replicas patch. `GHA_FLEET_SETS` changes the number of scale sets.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use gha_crds::{EphemeralRunner, EphemeralRunnerSet};
use gha_sandbox::{CONTROLLER_NAMESPACE, RUNNER_NAMESPACE, Rss, Sandbox, SandboxOptions};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use serde_json::json;

const PER_SET: usize = 5;
/// Scale sets whose replicas are raised once more to time the EphemeralRunnerSet reconcile.
const SAMPLED: usize = 100;
const SCALE_SET_LABEL: &str = "actions.github.com/scale-set-name";

async fn running_pods(api: &Api<Pod>) -> usize {
    let running = ListParams::default().fields("status.phase=Running");
    api.list_metadata(&running).await.map_or(0, |l| l.items.len())
}

async fn wait_for_running(api: &Api<Pod>, want: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut reported = Instant::now();
    loop {
        let running = running_pods(api).await;
        if running >= want {
            return;
        }
        if reported.elapsed() > Duration::from_secs(30) {
            eprintln!("fleet: {what}: {running} of {want} running");
            reported = Instant::now();
        }
        assert!(Instant::now() < deadline, "{what}: {running} of {want} pods running after 15 minutes");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

async fn set_replicas(sets: &Api<EphemeralRunnerSet>, name: &str, replicas: usize, patch_id: i64) {
    let patch = json!({"spec": {"replicas": replicas, "patchID": patch_id}});
    loop {
        match sets.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => return,
            // The runner set is created by the scale set's reconcile: not there yet.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sets: usize = std::env::var("GHA_FLEET_SETS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let sandbox = Sandbox::start(SandboxOptions {
        in_process_controller: false,
        long_poll_hold: Duration::from_secs(50),
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let mem = sandbox.backend.mem().expect("the in-memory API counts requests");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sandbox.backend.kubeconfig()).unwrap();
    let mut controller = tokio::process::Command::new(env!("CARGO_BIN_EXE_gha-autoscaler"))
        .args(["controller", "--log-level", "warn", "--metrics-addr", "0", "--health-probe-bind-address", "0"])
        .args(["--controller-namespace", CONTROLLER_NAMESPACE, "--k8s-client-rate-limiter-qps", "0"])
        .args(["--runner-max-concurrent-reconciles", "8"])
        .env("KUBECONFIG", &kubeconfig)
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let started = Instant::now();
    let names: Vec<String> = (0..sets).map(|i| format!("team-{i}")).collect();
    let scale_sets: Vec<_> = names.iter().map(|name| sandbox.runner_set(name, 0, PER_SET as i32 + 1, None)).collect();
    futures::stream::iter(scale_sets.iter().map(|ars| sandbox.apply(ars)))
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let listener_pods: Api<Pod> = Api::namespaced(sandbox.client.clone(), CONTROLLER_NAMESPACE);
    wait_for_running(&listener_pods, sets, "listener pods").await;
    let listening = started.elapsed().as_secs_f64();
    eprintln!("fleet: {sets} listener pods running after {listening:.1} s");
    let registered = sandbox.fake.with_state(|s| s.scale_sets().len());
    assert_eq!(registered, sets, "every scale set registered on the Actions service");

    let runner_sets: Api<EphemeralRunnerSet> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let scaled = Instant::now();
    futures::stream::iter(names.iter().map(|name| set_replicas(&runner_sets, name, PER_SET, 1)))
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let runner_pods: Api<Pod> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    wait_for_running(&runner_pods, sets * PER_SET, "runner pods").await;
    let runners_running = scaled.elapsed().as_secs_f64();
    eprintln!("fleet: {} runner pods running after {runners_running:.1} s", sets * PER_SET);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss = Rss::of(controller.id().unwrap_or_default());

    // Steady state: nothing changes for a minute.
    let before = mem.requests();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let steady = mem.requests().since(&before).without_watches().by("gha-autoscaler-controller");
    for (what, count) in steady.by_verb_and_resource() {
        println!("    steady state: {what:<40} {count:>6} in a minute");
    }

    // One more runner for each of SAMPLED scale sets at once: time from the patch to the new EphemeralRunner.
    let runners: Api<EphemeralRunner> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let existing: HashSet<String> =
        runners.list_metadata(&ListParams::default()).await.unwrap().items.iter().map(|r| r.name_any()).collect();
    let first_new: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen = first_new.clone();
    let watch = tokio::spawn(
        watcher(runners.clone(), watcher::Config::default()).default_backoff().applied_objects().for_each(move |r| {
            if let Ok(runner) = r
                && !existing.contains(&runner.name_any())
                && let Some(set) = runner.labels().get(SCALE_SET_LABEL)
            {
                seen.lock().unwrap().entry(set.clone()).or_insert_with(Instant::now);
            }
            async {}
        }),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut patched = HashMap::new();
    for name in names.iter().take(SAMPLED) {
        patched.insert(name.clone(), Instant::now());
        set_replicas(&runner_sets, name, PER_SET + 1, 2).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while first_new.lock().unwrap().len() < patched.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watch.abort();
    let seen = first_new.lock().unwrap().clone();
    let mut latencies: Vec<f64> = patched
        .iter()
        .map(|(name, at)| seen.get(name).map_or(60.0, |s| s.saturating_duration_since(*at).as_secs_f64()))
        .collect();
    let p50 = percentile(&mut latencies, 0.5);
    let p99 = percentile(&mut latencies, 0.99);

    let fleet = format!("{sets} scale sets x {PER_SET} runners");
    gha_bench::figure(
        &format!("fleet: {fleet}: all registered, listener pods running"),
        listening,
        "s",
        Some("<= 60 s"),
    );
    gha_bench::figure(
        &format!("fleet: {fleet}: all runner pods running after the replicas patches"),
        runners_running,
        "s",
        None,
    );
    gha_bench::figure(&format!("fleet: {fleet}: controller RSS"), rss.total, "MiB", Some("<= 256 MiB"));
    let per_set = steady.total() as f64 / sets as f64;
    gha_bench::figure(
        &format!("fleet: {fleet}: steady-state API requests per scale set per minute"),
        per_set,
        "requests",
        Some("<= 1 requests"),
    );
    gha_bench::figure(
        &format!("fleet: ERS reconcile after a replicas patch, p50 ({SAMPLED} sets at once)"),
        p50,
        "s",
        None,
    );
    gha_bench::figure(
        &format!("fleet: ERS reconcile after a replicas patch, p99 ({SAMPLED} sets at once)"),
        p99,
        "s",
        Some("<= 1 s"),
    );
    let _ = controller.kill().await;
    sandbox.stop().await;
}
