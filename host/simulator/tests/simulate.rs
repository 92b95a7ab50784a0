//! The simulator against the shipped policies: every job is served, ARC's formula ends at the minimum, a warm
//! pool trades idle minutes for queue wait, and every decision is logged.

use std::sync::Arc;

use gha_policy_engine::types::ScaleSetRef;
use gha_policy_engine::{EngineOptions, PolicyEngine, PolicyMetrics, PolicySpec, ScaleSetPolicy};
use gha_simulator::trace::{TraceJob, generate};
use gha_simulator::{RunnerModel, SimulationOptions, percentile, simulate};

async fn policy(name: &str, config: serde_json::Value) -> ScaleSetPolicy {
    let engine = PolicyEngine::new(EngineOptions::default(), Arc::new(PolicyMetrics::default())).unwrap();
    let mut spec = PolicySpec::built_in(name);
    spec.config = config;
    ScaleSetPolicy::load(&engine, ScaleSetRef::default(), spec).await.unwrap()
}

fn options() -> SimulationOptions {
    SimulationOptions {
        model: RunnerModel { start_seconds: 30.0, start_jitter_seconds: 0.0, min_runners: 0, max_runners: 50 },
        ..SimulationOptions::default()
    }
}

#[tokio::test]
async fn arc_default_serves_every_job_and_returns_to_zero() {
    let jobs: Vec<TraceJob> = (0..5)
        .map(|i| TraceJob {
            queued_at: f64::from(i) * 600.0,
            labels: vec![],
            repository: String::new(),
            workflow: String::new(),
            duration: 60.0,
        })
        .collect();
    let policy = policy("arc-default", serde_json::Value::Null).await;
    let mut log = Vec::new();
    let report = simulate(&policy, "arc-default", &jobs, options(), Some(&mut log));
    assert_eq!(report.jobs, 5);
    assert_eq!(report.wait_p50, 30.0, "each job waits for a runner to start");
    assert_eq!(report.peak_runners, 1);
    assert!((report.busy_runner_minutes - 5.0).abs() < 1e-6, "{}", report.busy_runner_minutes);
    assert_eq!(report.points.last().unwrap().runners, 0, "back to the minimum");
    let lines: Vec<serde_json::Value> =
        String::from_utf8(log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len() as u64, report.decisions);
    assert_eq!(lines[0]["policySha256"], policy.manifest().sha256);
    assert!(lines.iter().any(|l| l["input"]["statistics"]["assignedJobs"] == 1));
}

#[tokio::test]
async fn a_warm_pool_trades_idle_minutes_for_queue_wait() {
    let jobs = generate(400, 4.0, 2, 3);
    let arc = simulate(&policy("arc-default", serde_json::Value::Null).await, "arc", &jobs, options(), None);
    let warm = simulate(
        &policy("warm-pool", serde_json::json!({"scaleFactor": 1.0, "maxExtra": 10, "idleTtlSeconds": 600})).await,
        "warm",
        &jobs,
        options(),
        None,
    );
    assert!(warm.wait_p50 < arc.wait_p50, "warm {} arc {}", warm.wait_p50, arc.wait_p50);
    assert!(warm.idle_runner_minutes > arc.idle_runner_minutes);
    assert_eq!(arc.fallbacks + warm.fallbacks, 0);
}

#[tokio::test]
async fn a_churning_or_requeueing_policy_still_finishes_and_serves_every_job() {
    let jobs = generate(50, 2.0, 1, 9);
    for mode in ["churn", "fast-requeue"] {
        let engine = PolicyEngine::new(EngineOptions::default(), Arc::new(PolicyMetrics::default())).unwrap();
        let spec = PolicySpec {
            source: gha_policy_engine::PolicySource::Bytes {
                origin: "fixture misbehaving".into(),
                bytes: gha_policy_engine::fixtures::MISBEHAVING.into(),
            },
            config: serde_json::json!({ "mode": mode }),
            ..PolicySpec::built_in("arc-default")
        };
        let policy = ScaleSetPolicy::load(&engine, ScaleSetRef::default(), spec).await.unwrap();
        let report = simulate(&policy, mode, &jobs, options(), None);
        let work: f64 = jobs.iter().map(|j| j.duration / 60.0).sum();
        assert!((report.busy_runner_minutes - work).abs() < 1e-6, "{mode}: every job ran");
        assert!(report.wait_p99.is_finite() && report.decisions < 100_000, "{mode}: {} decisions", report.decisions);
        if mode == "churn" {
            assert!(engine.metrics().churn_damped("scale-up") > 0, "the churn was damped");
        }
    }
}

#[test]
fn percentiles_use_the_nearest_rank() {
    assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
    assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.99), 4.0);
    assert_eq!(percentile(&[], 0.5), 0.0);
}
