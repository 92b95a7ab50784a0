//! Benchmarks of the policy engine, shared by `gha-autoscaler policy bench` and `cargo bench`. Each figure is
//! printed beside its target.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::engine::{CompiledFrom, EngineOptions, PolicyEngine};
use crate::error::Result;
use crate::instance::PolicyInstance;
use crate::metrics::PolicyMetrics;
use crate::scale_set_policy::ScaleSetPolicy;
pub use gha_bench::Figure;

use crate::replay::Replayer;
use crate::source::{PolicyBytes, PolicySource};
use crate::spec::PolicySpec;
use crate::types::{Bounds, JobEvent, JobEvents, JobPhase, JobStatistics, MAX_JOB_EVENTS, ScaleInput, ScaleSetRef};

/// A set of figures for one policy.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Policy origin.
    pub policy: String,
    /// The figures.
    pub figures: Vec<Figure>,
}

impl Report {
    fn push(&mut self, name: &str, value: f64, unit: &str, target: Option<f64>) {
        self.figures.push(Figure::at_most(name, value, unit, target));
    }

    /// A plain-text table: figure, value, target, verdict.
    pub fn table(&self) -> String {
        let mut out = format!("policy: {}\n", self.policy);
        for figure in &self.figures {
            out.push_str(&gha_bench::line(figure));
            out.push('\n');
        }
        out
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples.get(index).copied().unwrap_or_default()
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Resident set size of this process, bytes (Linux; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|pages| pages.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

fn sample_input(i: u32) -> ScaleInput {
    ScaleInput {
        now_unix_ms: 1_795_392_000_000 + u64::from(i) * 1000,
        statistics: JobStatistics { assigned_jobs: i % 17, running_jobs: i % 11, ..Default::default() },
        bounds: Bounds { min_runners: 1, max_runners: 20 },
        job_events_since_previous: i % 3,
        ..Default::default()
    }
}

/// A decision's worth of job messages at the bound: workflow runs whose builds complete and whose 40-way test
/// matrices are queued, assigned, started and completed, as the listener passes them.
pub fn sample_job_events(i: u32) -> JobEvents {
    let now = 1_795_392_000_000 + u64::from(i) * 1000;
    let phases = [JobPhase::Available, JobPhase::Assigned, JobPhase::Started, JobPhase::Completed];
    (0..MAX_JOB_EVENTS as u64)
        .map(|n| {
            let run = u64::from(i) * 25 + n / 40;
            let job = n % 40;
            let phase = phases[(n / 10 % 4) as usize];
            let done = phase == JobPhase::Completed;
            JobEvent {
                phase,
                job_id: run * 100 + job,
                runner_name: if matches!(phase, JobPhase::Started | JobPhase::Completed) {
                    format!("linux-runners-x7k2p-runner-{job:05}")
                } else {
                    String::new()
                },
                repository: "acme/app".into(),
                workflow_ref: "acme/app/.github/workflows/ci.yml@refs/heads/main".into(),
                workflow_run_id: run,
                job_display_name: if job == 0 { "build".into() } else { format!("test ({job}/39)") },
                event_name: "push".into(),
                labels: vec!["linux".into(), "x64".into()],
                queued_unix_ms: Some(now - 300_000),
                started_unix_ms: (phase != JobPhase::Available && phase != JobPhase::Assigned).then_some(now - 240_000),
                finished_unix_ms: done.then_some(now),
                conclusion: done.then(|| "succeeded".into()),
                attributes: Vec::new(),
            }
        })
        .collect()
}

/// A realistic runner pod template of about 5 KB, for the mutation benchmark.
pub fn sample_pod_template() -> serde_json::Value {
    let env: Vec<_> =
        (0..60).map(|i| json!({"name": format!("RUNNER_SETTING_{i}"), "value": "x".repeat(40)})).collect();
    json!({
        "metadata": {"labels": {"app.kubernetes.io/component": "runner", "actions.github.com/scale-set-name": "demo"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "runner", "image": "ghcr.io/actions/actions-runner:latest",
                            "command": ["/home/runner/run.sh"], "env": env}]
        }
    })
}

/// Measures size, compile, cache load, instantiate + configure, hook latency and memory for one policy
/// (`allow_wasi` for components built by JS or Python toolchains).
///
/// # Errors
/// Load errors of the policy.
pub async fn run(
    policy: &PolicyBytes,
    config: serde_json::Value,
    iterations: usize,
    allow_wasi: bool,
) -> Result<Report> {
    let mut report = Report { policy: policy.origin.clone(), figures: Vec::new() };
    report.push("component size", policy.bytes.len() as f64 / 1024.0, "KiB", None);
    let metrics = Arc::new(PolicyMetrics::default());

    // Cold compile: a fresh engine without cache.
    let cold = PolicyEngine::new(EngineOptions::default(), metrics.clone())?;
    let started = Instant::now();
    cold.compile(policy)?;
    report.push("cold compile (Cranelift)", millis(started.elapsed()), "ms", Some(500.0));

    // Precompile cache: one engine writes, a second (as after a restart) loads.
    let cache_dir = std::env::temp_dir().join(format!("gha-policy-bench-{}", std::process::id()));
    let writer = PolicyEngine::new(EngineOptions::default().with_cache_dir(&cache_dir), metrics.clone())?;
    writer.compile(policy)?;
    let engine = PolicyEngine::new(EngineOptions::default().with_cache_dir(&cache_dir), metrics.clone())?;
    let started = Instant::now();
    let (_, from) = engine.compile(policy)?;
    let cache_load = started.elapsed();
    let _ = std::fs::remove_dir_all(&cache_dir);
    if from == CompiledFrom::Disk {
        report.push("load from precompile cache", millis(cache_load), "ms", Some(5.0));
    }

    let pre = engine.prepare(policy, allow_wasi)?;
    let config_json = config.to_string();
    let scale_set = ScaleSetRef { name: "bench".into(), ..Default::default() };
    let mut samples: Vec<Duration> = (0..200.min(iterations).max(20))
        .map(|_| {
            let started = Instant::now();
            let instance = PolicyInstance::new(pre.clone(), scale_set.clone(), config_json.clone(), Default::default());
            let elapsed = started.elapsed();
            instance.map(|_| elapsed)
        })
        .collect::<Result<_>>()?;
    report.push("instantiate + configure p50", micros(percentile(&mut samples, 0.5)), "µs", None);
    report.push("instantiate + configure p99", micros(percentile(&mut samples, 0.99)), "µs", Some(1000.0));

    let spec = PolicySpec {
        source: PolicySource::Bytes { origin: policy.origin.clone(), bytes: policy.bytes.clone() },
        config,
        allow_wasi,
        ..PolicySpec::built_in("arc-default")
    };
    let scale_set_policy = ScaleSetPolicy::load(&engine, scale_set.clone(), spec).await?;
    let manifest = pre.manifest();
    if manifest.scaler {
        let inputs: Vec<ScaleInput> = (0..64).map(sample_input).collect();
        let mut samples = Vec::with_capacity(iterations);
        for i in 0..iterations {
            let started = Instant::now();
            let decided = scale_set_policy.decide(&inputs[i % inputs.len()])?;
            samples.push(started.elapsed());
            std::hint::black_box(decided);
        }
        report.push("decide p50 (host side, validated)", micros(percentile(&mut samples, 0.5)), "µs", None);
        report.push("decide p99 (host side, validated)", micros(percentile(&mut samples, 0.99)), "µs", Some(20.0));
        if manifest.wit_version != "0.1.0" {
            // As the listener calls it: state threaded from decision to decision, 1,000 job events each.
            let mut replay = Replayer::new(&scale_set_policy);
            let mut samples = Vec::new();
            for i in 0..(iterations / 10).max(1000) as u32 {
                let mut input = sample_input(i);
                input.job_events = sample_job_events(i);
                let started = Instant::now();
                std::hint::black_box(replay.step(input)?);
                samples.push(started.elapsed());
            }
            let p50 = micros(percentile(&mut samples, 0.5));
            report.push("decide with 1,000 job events p50 (host side, validated)", p50, "µs", None);
            let p99 = micros(percentile(&mut samples, 0.99));
            report.push("decide with 1,000 job events p99 (host side, validated)", p99, "µs", Some(200.0));
        }
    }
    if manifest.pod_mutator {
        let template = sample_pod_template();
        let mut samples = Vec::new();
        for _ in 0..(iterations / 10).max(100) {
            let started = Instant::now();
            std::hint::black_box(scale_set_policy.mutate_runner_pod("runner-1", &template)?);
            samples.push(started.elapsed());
        }
        report.push("mutate-runner-pod p99 (5 KB template)", micros(percentile(&mut samples, 0.99)), "µs", Some(200.0));
    }

    // Memory per live instance: RSS growth over many configured instances.
    const LIVE: usize = 500;
    let before = rss_bytes();
    let live: Vec<PolicyInstance> = (0..LIVE)
        .map(|_| PolicyInstance::new(pre.clone(), scale_set.clone(), config_json.clone(), Default::default()))
        .collect::<Result<_>>()?;
    let after = rss_bytes();
    let linear = live.first().map_or(0, PolicyInstance::peak_memory_bytes);
    report.push(
        "RSS per live instance",
        after.saturating_sub(before) as f64 / LIVE as f64 / 1024.0,
        "KiB",
        Some(2048.0),
    );
    report.push("linear memory per instance", linear as f64 / 1024.0, "KiB", Some(2048.0));
    Ok(report)
}

/// Time from calling `decide` on a policy that never returns to the fallback decision being in hand.
///
/// # Errors
/// Load errors of the policy.
pub async fn loop_stop(policy: &PolicyBytes, config: serde_json::Value, deadline_ms: u32) -> Result<Figure> {
    let engine = PolicyEngine::new(EngineOptions::default(), Arc::new(PolicyMetrics::default()))?;
    let mut spec = PolicySpec {
        source: PolicySource::Bytes { origin: policy.origin.clone(), bytes: policy.bytes.clone() },
        config,
        ..PolicySpec::built_in("arc-default")
    };
    spec.limits.timeout_ms = deadline_ms;
    let policy = ScaleSetPolicy::load(&engine, ScaleSetRef::default(), spec).await?;
    let started = Instant::now();
    policy.decide(&sample_input(3))?;
    Ok(Figure::at_most(
        &format!("looping policy: fallback answered (deadline {deadline_ms} ms)"),
        millis(started.elapsed()),
        "ms",
        Some(f64::from(deadline_ms) + 50.0),
    ))
}
