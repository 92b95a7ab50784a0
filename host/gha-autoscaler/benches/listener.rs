//! `cargo bench -p gha-autoscaler --bench listener`: message → EphemeralRunnerSet patch latency of the listener
//! loop with the arc-default Wasm policy and with the native formula in the same run, and the RSS of the real
//! listener process idle and after a 1,000-job burst.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gha_actions_client::MessageSession;
use gha_actions_client::model::JobFields;
use gha_actions_fake::{FakeActions, FakeOptions, JobSpec};
use gha_listener::{Cluster, Listener, ListenerMetrics, ScaleSetLabels};
use gha_policy_engine::types::{Bounds, PodMetadata, RunnerCounts, ScaleSetRef};
use gha_policy_engine::{EngineOptions, PolicyEngine, PolicyMetrics, PolicySpec, ScaleSetPolicy};
use gha_sandbox::Rss;
use tokio::sync::mpsc;

/// Records when each EphemeralRunnerSet patch is sent.
struct TimingCluster(mpsc::UnboundedSender<Instant>);

impl Cluster for TimingCluster {
    async fn patch_runner_set(&self, _: u32, _: i64) -> kube::Result<()> {
        let _ = self.0.send(Instant::now());
        Ok(())
    }
    async fn runner_counts(&self) -> kube::Result<RunnerCounts> {
        Ok(RunnerCounts::default())
    }
    async fn job_started(&self, _: &str, _: &JobFields) -> kube::Result<()> {
        Ok(())
    }
    async fn label_runner_pod(&self, _: &str, _: &PodMetadata) -> kube::Result<()> {
        Ok(())
    }
    async fn record_session(&self, _: &str, _: &str) -> kube::Result<()> {
        Ok(())
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

/// p50 and p99 from enqueueing a job to the patch it causes (long-poll wake, GET, decode, ack, decide, patch).
async fn latency(policy: &str, rounds: usize) -> (Duration, Duration) {
    let fake = FakeActions::start(FakeOptions { long_poll_hold: Duration::from_secs(30), ..Default::default() })
        .await
        .unwrap();
    let (client, set) = fake.client_with_scale_set("acme", "bench").await.unwrap();
    let session = MessageSession::open(client, set.id, "bench").await.unwrap();
    let engine = PolicyEngine::new(EngineOptions::default(), Arc::new(PolicyMetrics::default())).unwrap();
    let policy =
        Arc::new(ScaleSetPolicy::load(&engine, ScaleSetRef::default(), PolicySpec::built_in(policy)).await.unwrap());
    let (tx, mut patches) = mpsc::unbounded_channel();
    let metrics = Arc::new(ListenerMetrics::new(ScaleSetLabels::default(), None));
    let bounds = Bounds { min_runners: 1, max_runners: 100_000 };
    let listener = Listener::new(session, policy, TimingCluster(tx), metrics, bounds);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(listener.run(async {
        let _ = stopped.await;
    }));
    patches.recv().await.unwrap();
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        fake.enqueue(JobSpec::default());
        let patched = patches.recv().await.unwrap();
        samples.push(patched - started);
    }
    let _ = stop.send(());
    let _ = running.await;
    (percentile(&mut samples, 0.5), percentile(&mut samples, 0.99))
}

/// RSS of the real `gha-autoscaler listener` process of `binary`, idle and after a 1,000-job burst; `precompiled`:
/// with the policy compiled beforehand and handed over as the controller does (else the listener compiles it).
async fn listener_rss(binary: &std::path::Path, precompiled: bool) -> (Rss, Rss) {
    use gha_mem_kube::{MemKube, MemKubeOptions};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::PostParams;
    let kube = MemKube::start(MemKubeOptions::default()).await.unwrap();
    let client = kube::Client::try_from(kube::Config::new(kube.url().parse().unwrap())).unwrap();
    let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    for crd in gha_crds::all() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let sets: kube::Api<gha_crds::EphemeralRunnerSet> = kube::Api::namespaced(client, "default");
    let ers: gha_crds::EphemeralRunnerSet = serde_json::from_value(serde_json::json!({
        "apiVersion": "actions.github.com/v1alpha1", "kind": "EphemeralRunnerSet", "metadata": {"name": "ers"},
        "spec": {"ephemeralRunnerSpec": {"githubConfigUrl": "x", "githubConfigSecret": "s", "runnerScaleSetId": 1}}
    }))
    .unwrap();
    sets.create(&PostParams::default(), &ers).await.unwrap();
    let fake = FakeActions::start(FakeOptions::default()).await.unwrap();
    let (_, set) = fake.client_with_scale_set("acme", "rss").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let config = serde_json::json!({
        "configure_url": fake.config_url("acme"), "github_token": "ghp_fake",
        "ephemeral_runner_set_namespace": "default", "ephemeral_runner_set_name": "ers",
        "runner_scale_set_id": set.id, "min_runners": 0, "max_runners": 2000, "kubernetes_api_url": kube.url(),
    });
    let mut config = config;
    if precompiled {
        let engine = PolicyEngine::new(EngineOptions::default(), Arc::new(PolicyMetrics::default())).unwrap();
        let policy =
            gha_policy_engine::PolicyBytes::new("arc-default", gha_policy_engine::built_in("arc-default").unwrap());
        engine.compile(&policy).unwrap();
        let (file, artifact) = engine.precompiled(&policy.sha256).unwrap();
        std::fs::write(dir.path().join(file), artifact).unwrap();
        config["precompiled_policies"] = ".".into();
    }
    std::fs::write(&path, config.to_string()).unwrap();
    let mut child = tokio::process::Command::new(binary)
        .args(["listener", "--log-level", "warn", "--config"])
        .arg(&path)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = Rss::of(pid);
    for _ in 0..1000 {
        fake.enqueue(JobSpec::default());
    }
    for _ in 0..500 {
        if sets.get("ers").await.unwrap().spec.replicas == Some(1000) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let burst = Rss::of(pid);
    let _ = child.kill().await;
    (idle, burst)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds = 1000;
    let (wasm_p50, wasm_p99) = latency("arc-default", rounds).await;
    // pod-shaper exports no scaler: the native ARC formula decides (the built-in path), everything else equal.
    let (native_p50, native_p99) = latency("pod-shaper", rounds).await;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    gha_bench::figure("listener: job enqueued -> ERS patch p99, arc-default Wasm", ms(wasm_p99), "ms", Some("<= 5 ms"));
    gha_bench::figure("listener: job enqueued -> ERS patch p50, arc-default Wasm", ms(wasm_p50), "ms", None);
    gha_bench::figure("listener: job enqueued -> ERS patch p99, native formula", ms(native_p99), "ms", None);
    gha_bench::figure("listener: job enqueued -> ERS patch p50, native formula", ms(native_p50), "ms", None);
    let ratio = wasm_p99.as_secs_f64() / native_p99.as_secs_f64();
    gha_bench::figure("listener: Wasm / native p99, same run", ratio, "x", None);
    let full = std::path::Path::new(env!("CARGO_BIN_EXE_gha-autoscaler"));
    for (precompiled, how) in [(true, "policy precompiled by the controller"), (false, "listener compiles the policy")]
    {
        let (idle, burst) = listener_rss(full, precompiled).await;
        // The targets apply to the product's path (precompiled); the other is shown for comparison.
        let (idle_target, burst_target) =
            if precompiled { (Some("<= 24 MiB"), Some("<= 32 MiB")) } else { (None, None) };
        gha_bench::figure(&format!("listener: RSS idle, {how}"), idle.total, "MiB", idle_target);
        let name = format!("listener: RSS after a 1,000-job burst, {how}");
        gha_bench::figure(&name, burst.total, "MiB", burst_target);
    }
    // The image's build (`--no-default-features`: no fake GitHub, in-memory API, simulated kubelet or demo),
    // which `gha-bench` builds and names in GHA_PRODUCTION_BINARY.
    let size = |path: &std::path::Path| std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1_048_576.0);
    gha_bench::figure("listener: binary size, full build (demo, test doubles)", size(full), "MiB", None);
    match std::env::var_os("GHA_PRODUCTION_BINARY").map(std::path::PathBuf::from) {
        Some(production) => {
            gha_bench::figure("listener: binary size, production build (the image's)", size(&production), "MiB", None);
            let (idle, burst) = listener_rss(&production, true).await;
            gha_bench::figure("listener: RSS idle, production build", idle.total, "MiB", Some("<= 16 MiB"));
            gha_bench::figure("listener: of which file-backed (code pages), production build", idle.file, "MiB", None);
            let name = "listener: RSS after a 1,000-job burst, production build";
            gha_bench::figure(name, burst.total, "MiB", None);
        }
        None => eprintln!("GHA_PRODUCTION_BINARY unset: the production build is not measured (gha-bench sets it)"),
    }
}
