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
        .map(|i| TraceJob { queued_at: Some(f64::from(i) * 600.0), duration: 60.0, ..TraceJob::default() })
        .collect();
    let policy = policy("arc-default", serde_json::Value::Null).await;
    let mut log = Vec::new();
    let report = simulate(&policy, "arc-default", &jobs, options(), Some(&mut log)).unwrap();
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
async fn a_job_with_needs_is_queued_when_they_finish_so_waiting_pushes_it_later() {
    let root = |name: &str, at: f64, duration: f64| TraceJob {
        queued_at: Some(at),
        duration,
        run: Some(7),
        job: Some(name.into()),
        ..TraceJob::default()
    };
    let needing = |name: &str, needs: &[&str]| TraceJob {
        duration: 60.0,
        run: Some(7),
        job: Some(name.into()),
        needs: needs.iter().map(|n| n.to_string()).collect(),
        ..TraceJob::default()
    };
    let jobs = vec![root("build", 0.0, 120.0), root("lint", 0.0, 10.0), needing("test", &["build", "lint"])];
    let policy = policy("arc-default", serde_json::Value::Null).await;
    let mut log = Vec::new();
    let report = simulate(&policy, "arc-default", &jobs, options(), Some(&mut log)).unwrap();
    // build and lint wait 30 s for their runners; test is queued when build ends (30 + 120 s) and waits 30 s.
    assert_eq!(report.jobs, 3);
    assert_eq!((report.wait_p50, report.wait_p99), (30.0, 30.0));
    assert!((report.busy_runner_minutes - (120.0 + 10.0 + 60.0) / 60.0).abs() < 1e-6);
    let log = String::from_utf8(log).unwrap();
    let first_with_test = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["input"]["nowUnixMs"].as_u64().unwrap() - options().epoch_unix_ms == 150_000);
    assert!(first_with_test.is_some(), "a decision when build finished and test was queued");
    let cyclic = vec![needing("a", &["b"]), needing("b", &["a"])];
    assert!(simulate(&policy, "arc-default", &cyclic, options(), None).unwrap_err().contains("cycle"));
}

#[tokio::test]
async fn a_warm_pool_trades_idle_minutes_for_queue_wait() {
    let jobs = generate(400, 4.0, 2, 3);
    let arc = simulate(&policy("arc-default", serde_json::Value::Null).await, "arc", &jobs, options(), None).unwrap();
    let warm = simulate(
        &policy("warm-pool", serde_json::json!({"scaleFactor": 1.0, "maxExtra": 10, "idleTtlSeconds": 600})).await,
        "warm",
        &jobs,
        options(),
        None,
    )
    .unwrap();
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
        let report = simulate(&policy, mode, &jobs, options(), None).unwrap();
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
