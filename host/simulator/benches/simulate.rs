//! `cargo bench -p gha-simulator`: traces replayed per policy through the real Wasm engine — how long a replay
//! takes (target ≤ 2 s for ≈ 10,000 jobs on 2 cores), and what each policy buys: queue waits against
//! runner-minutes on flat traces (a generated day, `examples/traces/`) and on DAG days (workflow runs whose matrix
//! is queued when `build` ends), with a table per trace and the `(p95, runner-minutes)` point of every policy.

use std::sync::Arc;
use std::time::Instant;

use gha_policy_engine::types::ScaleSetRef;
use gha_policy_engine::{EngineOptions, PolicyEngine, PolicyMetrics, PolicySpec, ScaleSetPolicy};
use gha_simulator::trace::{self, TraceJob};
use gha_simulator::{SimulationOptions, SimulationReport, simulate, table};
use serde_json::{Value, json};

/// warm-pool's `maxExtra` in the earlier benchmarks.
const MAX_EXTRA: u32 = 5;

/// warm-pool as the earlier benchmarks ran it.
fn warm_pool_config(scale_factor: f64) -> Value {
    warm_pool_curve_point(scale_factor, MAX_EXTRA)
}

fn warm_pool_curve_point(scale_factor: f64, max_extra: u32) -> Value {
    json!({"scaleFactor": scale_factor, "maxExtra": max_extra, "idleTtlSeconds": 300})
}

/// warm-pool's cost curve: scaleFactor 0 to 1 at `maxExtra` 5, then larger pools, so that a policy spending more
/// than the earlier benchmarks' warm-pool still has a point of the same cost to be compared with.
const WARM_POOL_CURVE: [(f64, u32); 8] = [
    (0.0, MAX_EXTRA),
    (0.1, MAX_EXTRA),
    (0.2, MAX_EXTRA),
    (0.3, MAX_EXTRA),
    (0.5, MAX_EXTRA),
    (1.0, MAX_EXTRA),
    (1.0, 10),
    (1.0, 20),
];

/// A scale set sized for the DAG days' peaks (≈ 250 runners), as the targets assume: at the simulator's default
/// of 100, those days queue for capacity for hours and no policy's pre-warming can help.
const DAG_MAX_RUNNERS: u32 = 300;

async fn replay(engine: &Arc<PolicyEngine>, label: &str, name: &str, config: Value, jobs: &[TraceJob]) -> Run {
    replay_with(engine, label, name, config, jobs, SimulationOptions::default()).await
}

async fn replay_with(
    engine: &Arc<PolicyEngine>,
    label: &str,
    name: &str,
    config: Value,
    jobs: &[TraceJob],
    options: SimulationOptions,
) -> Run {
    let mut spec = PolicySpec::built_in(name);
    spec.config = config;
    let policy = ScaleSetPolicy::load(engine, ScaleSetRef::default(), spec).await.unwrap();
    let started = Instant::now();
    let report = simulate(&policy, label, jobs, options, None).expect("a valid trace");
    Run { report, seconds: started.elapsed().as_secs_f64() }
}

struct Run {
    report: SimulationReport,
    seconds: f64,
}

fn minutes(r: &SimulationReport) -> f64 {
    r.idle_runner_minutes + r.busy_runner_minutes
}

/// warm-pool's p95 at `cost` runner-minutes, interpolated along its cost curve (None outside it).
fn p95_at_cost(curve: &[SimulationReport], cost: f64) -> Option<f64> {
    let mut points: Vec<(f64, f64)> = curve.iter().map(|r| (minutes(r), r.wait_p95)).collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points.windows(2).find(|w| w[0].0 <= cost && cost <= w[1].0).map(|w| {
        let ((c0, p0), (c1, p1)) = (w[0], w[1]);
        if c1 == c0 { p0.min(p1) } else { p0 + (p1 - p0) * (cost - c0) / (c1 - c0) }
    })
}

fn points(reports: &[SimulationReport]) -> String {
    reports
        .iter()
        .map(|r| format!("  {:<22} (p95 {:>6.1} s, {:>7.0} runner-minutes)\n", r.policy, r.wait_p95, minutes(r)))
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let engine = PolicyEngine::new(EngineOptions::default(), Arc::new(PolicyMetrics::default())).unwrap();
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/traces");
    let example = |file: &str| trace::parse(&std::fs::read_to_string(format!("{examples}/{file}")).unwrap()).unwrap();
    let flat = [
        ("flat day (10,000 jobs)", trace::generate(10_000, 24.0, 8, 42)),
        ("examples/traces/bursty-hour", example("bursty-hour.jsonl")),
        ("examples/traces/day-2000", example("day-2000.jsonl")),
    ];
    let dags: Vec<(String, Vec<TraceJob>)> = [42, 7, 2026]
        .into_iter()
        .map(|seed| (format!("DAG day seed {seed}"), trace::generate_dag(500, 24.0, 8, seed)))
        .collect();

    for (day, jobs) in &flat {
        let mut curve = Vec::new();
        for (factor, max_extra) in WARM_POOL_CURVE {
            let label = if max_extra == MAX_EXTRA {
                format!("warm-pool {factor}")
            } else {
                format!("warm-pool {factor} +{max_extra}")
            };
            let config = warm_pool_curve_point(factor, max_extra);
            curve.push(replay(&engine, &label, "warm-pool", config, jobs).await.report);
        }
        let arc = replay(&engine, "arc-default", "arc-default", Value::Null, jobs).await;
        let predictive = replay(&engine, "predictive", "predictive", Value::Null, jobs).await;
        if jobs.len() >= 10_000 {
            for run in [&arc, &predictive] {
                let what = format!("simulate: {day} replayed, {}", run.report.policy);
                gha_bench::figure(&what, run.seconds, "s", Some("<= 2 s"));
            }
        }
        let cost = minutes(&predictive.report);
        match p95_at_cost(&curve, cost) {
            Some(warm) => gha_bench::figure(
                &format!("simulate: {day}, predictive p95 minus warm-pool's at the same runner-minutes"),
                predictive.report.wait_p95 - warm,
                "s",
                Some("<= 0 s"),
            ),
            None => println!("{day}: predictive's {cost:.0} runner-minutes are outside warm-pool's curve"),
        }
        let mut reports = vec![arc.report, predictive.report];
        reports.extend(curve);
        println!("\n{day}\n{}{}", table(&reports[..3]), points(&reports));
    }

    let mut dag_options = SimulationOptions::default();
    dag_options.model.max_runners = DAG_MAX_RUNNERS;
    for (day, jobs) in &dags {
        let run = |label: &'static str, name: &'static str, config: Value| {
            replay_with(&engine, label, name, config, jobs, dag_options)
        };
        let arc = run("arc-default", "arc-default", Value::Null).await;
        let warm = run("warm-pool 0.3", "warm-pool", warm_pool_config(0.3)).await;
        let predictive = run("predictive", "predictive", Value::Null).await;
        let what = format!("simulate: {day} ({} jobs) replayed, predictive", jobs.len());
        gha_bench::figure(&what, predictive.seconds, "s", Some("<= 2 s"));
        let (a, p) = (&arc.report, &predictive.report);
        gha_bench::figure(
            &format!("simulate: {day}, arc-default p95 / predictive p95"),
            a.wait_p95 / p.wait_p95.max(0.1),
            "x",
            Some(">= 5 x"),
        );
        gha_bench::figure(
            &format!("simulate: {day}, predictive runner-minutes / arc-default's"),
            minutes(p) / minutes(a),
            "x",
            Some("<= 1.3 x"),
        );
        gha_bench::figure(&format!("simulate: {day}, predictive p50"), p.wait_p50, "s", Some("<= 0 s"));
        let reports = [arc.report, warm.report, predictive.report];
        println!("\n{day}, maxRunners {DAG_MAX_RUNNERS}\n{}{}", table(&reports), points(&reports));
    }
    // The first DAG day on a scale set capped at 100 runners: capacity, not start-up, makes the waits.
    let (day, jobs) = &dags[0];
    let mut reports = Vec::new();
    for (name, config) in
        [("arc-default", Value::Null), ("warm-pool", warm_pool_config(0.3)), ("predictive", Value::Null)]
    {
        reports.push(replay(&engine, name, name, config, jobs).await.report);
    }
    println!("\n{day}, maxRunners 100 (saturated)\n{}", points(&reports));
}
