//! `cargo bench -p gha-autoscaler --bench controller`: how fast the controllers turn an EphemeralRunnerSet
//! scaled 0 → N into N EphemeralRunners with JIT secrets and pods on the in-memory API (client rate limit
//! raised, and at ARC's default QPS 20 / burst 30), and the RSS of the real `gha-autoscaler controller`
//! process managing 50 scale sets × 10 runners.

use std::time::{Duration, Instant};

use gha_controller::ControllerOptions;
use gha_crds::{EphemeralRunner, EphemeralRunnerSet};
use gha_sandbox::{CONTROLLER_NAMESPACE, RUNNER_NAMESPACE, Rss, Sandbox, SandboxOptions};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;

async fn wait_for_runner_set(sandbox: &Sandbox, name: &str) -> Api<EphemeralRunnerSet> {
    let api: Api<EphemeralRunnerSet> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    while api.get(name).await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    api
}

async fn count<K>(api: &Api<K>) -> usize
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list_metadata(&ListParams::default()).await.map(|l| l.items.len()).unwrap_or(0)
}

/// Seconds from the replicas patch until `runners` EphemeralRunners, JIT secrets and pods exist.
async fn scale_up(runners: usize, qps: f64, burst: u32) -> f64 {
    let controller = ControllerOptions {
        kube_qps: qps,
        kube_burst: burst,
        runner_max_concurrent_reconciles: 16,
        ..SandboxOptions::default().controller
    };
    let sandbox =
        Sandbox::start(SandboxOptions { kubelet: false, controller, ..SandboxOptions::default() }).await.unwrap();
    sandbox.apply(&sandbox.runner_set("bench", 0, runners as i32, None)).await.unwrap();
    let sets = wait_for_runner_set(&sandbox, "bench").await;
    let ers: Api<EphemeralRunner> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let secrets: Api<Secret> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let pods: Api<Pod> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let started = Instant::now();
    let patch = json!({"spec": {"replicas": runners, "patchID": 1}});
    sets.patch("bench", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    loop {
        // The GitHub secret is the one extra secret in the namespace.
        if count(&pods).await >= runners && count(&ers).await >= runners && count(&secrets).await > runners {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    sandbox.stop().await;
    elapsed
}

/// RSS of the real controller process with `sets` scale sets of `per_set` running runners each.
async fn controller_rss(sets: usize, per_set: usize) -> Rss {
    let sandbox =
        Sandbox::start(SandboxOptions { in_process_controller: false, ..SandboxOptions::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sandbox.backend.kubeconfig()).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gha-autoscaler"))
        .args(["controller", "--log-level", "warn", "--metrics-addr", "0", "--health-probe-bind-address", "0"])
        .args(["--controller-namespace", CONTROLLER_NAMESPACE, "--k8s-client-rate-limiter-qps", "0"])
        .args(["--runner-max-concurrent-reconciles", "8", "--sync-period", "30s"])
        .env("KUBECONFIG", &kubeconfig)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for i in 0..sets {
        sandbox.apply(&sandbox.runner_set(&format!("set-{i}"), 0, per_set as i32, None)).await.unwrap();
    }
    for i in 0..sets {
        let api = wait_for_runner_set(&sandbox, &format!("set-{i}")).await;
        let patch = json!({"spec": {"replicas": per_set, "patchID": 1}});
        api.patch(&format!("set-{i}"), &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    }
    let pods: Api<Pod> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let running = pods
            .list(&ListParams::default())
            .await
            .map(|l| {
                l.items.iter().filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")).count()
            })
            .unwrap_or(0);
        if running >= sets * per_set || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss = Rss::of(child.id().unwrap_or_default());
    let _ = child.kill().await;
    sandbox.stop().await;
    rss
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let raised = scale_up(500, 0.0, 0).await;
    let name = "controller: ERS 0 -> 500 runners, JIT secrets and pods (no client limit)";
    gha_bench::figure(name, raised, "s", Some("<= 5 s"));
    let arc = scale_up(100, 20.0, 30).await;
    gha_bench::figure("controller: ERS 0 -> 100 runners at ARC's QPS 20 / burst 30", arc, "s", Some("<= 25 s"));
    let rss = controller_rss(50, 10).await;
    let name = "controller: process RSS, 50 scale sets x 10 running runners";
    gha_bench::figure(name, rss.total, "MiB", Some("<= 64 MiB"));
    gha_bench::figure("controller: of which anonymous (heap, stacks)", rss.anon, "MiB", None);
    gha_bench::figure("controller: of which file-backed (code pages)", rss.file, "MiB", None);
}
