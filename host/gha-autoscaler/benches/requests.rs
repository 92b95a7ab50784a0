//! `cargo bench -p gha-autoscaler --bench requests`: a burst of 200 jobs on one scale set through the whole
//! product (real listener process, simulated kubelet with no start-up delay): every Kubernetes API request our
//! controller and listener make per runner lifecycle (job queued → EphemeralRunner, JIT secret, pod → running →
//! job done → all gone), counted by the in-memory API server by client, verb and resource; and how long after
//! the burst was queued each runner pod runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::ResourceExt;
use kube::runtime::{WatchStreamExt, watcher};

use gha_actions_fake::JobState;
use gha_sandbox::{RUNNER_NAMESPACE, Sandbox, SandboxOptions, job};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

const RUNNERS: usize = 200;

async fn wait_until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sandbox = Sandbox::start(SandboxOptions {
        listener_binary: Some(env!("CARGO_BIN_EXE_gha-autoscaler").into()),
        pod_start_delay: Duration::ZERO,
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let mem = sandbox.backend.mem().expect("the in-memory API counts requests");
    sandbox.apply(&sandbox.runner_set("lifecycle", 0, RUNNERS as i32, None)).await.unwrap();
    wait_until("the listener's session", || async { sandbox.fake.with_state(|s| s.sessions().len()) == 1 }).await;
    // Let start-up settle (registration, listener pod, first patches) so what follows is the runners' work.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pods: Api<Pod> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let running_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen = running_at.clone();
    let watch = tokio::spawn(
        watcher(pods.clone(), watcher::Config::default()).default_backoff().applied_objects().for_each(move |pod| {
            if let Ok(pod) = pod
                && pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            {
                seen.lock().unwrap().entry(pod.name_any()).or_insert_with(Instant::now);
            }
            async {}
        }),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = mem.requests();
    let queued = Instant::now();
    for _ in 0..RUNNERS {
        sandbox.fake.enqueue(job(&["lifecycle"], 500));
    }
    wait_until("every job done and every runner gone", || async {
        let done = sandbox.fake.with_state(|s| s.jobs().iter().filter(|j| j.state == JobState::Completed).count());
        let left = pods.list_metadata(&ListParams::default()).await.map(|l| l.items.len()).unwrap_or(usize::MAX);
        done == RUNNERS && left == 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    watch.abort();
    let mut waits: Vec<f64> =
        running_at.lock().unwrap().values().map(|at| at.saturating_duration_since(queued).as_secs_f64()).collect();
    waits.sort_by(f64::total_cmp);
    let percentile = |p: f64| waits.get(((waits.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
    let ours = mem.requests().since(&before).without_watches().by("gha-autoscaler-");
    let mut breakdown = ours.by_verb_and_resource().into_iter().collect::<Vec<_>>();
    breakdown.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    for (what, count) in breakdown {
        println!("    {what:<40} {:>6.2} per runner", count as f64 / RUNNERS as f64);
    }
    let per_runner = |agent: &str| ours.by(agent).total() as f64 / RUNNERS as f64;
    let name = format!("requests: API requests per runner lifecycle ({RUNNERS}-job burst, controller + listener)");
    gha_bench::figure(&name, ours.total() as f64 / RUNNERS as f64, "requests", Some("<= 5 requests"));
    gha_bench::figure("requests: of which the controller's", per_runner("gha-autoscaler-controller"), "requests", None);
    gha_bench::figure("requests: of which the listener's", per_runner("gha-autoscaler-listener"), "requests", None);
    let burst = format!("burst: {RUNNERS} jobs queued at once -> runner pod Running");
    gha_bench::figure(&format!("{burst}, p50"), percentile(0.5), "s", None);
    gha_bench::figure(&format!("{burst}, p99"), percentile(0.99), "s", Some("<= 2 s"));
    gha_bench::figure(&format!("{burst}: pods seen running"), waits.len() as f64, "pods", None);
    sandbox.stop().await;
}
