//! `cargo bench -p gha-simulator`: 10,000 jobs of a generated day, and a day of workflow runs with ≈ 10,000 jobs
//! queued by their `needs`, replayed per policy through the real Wasm engine, timed (target ≤ 2 s per policy on 2
//! cores).

use std::time::Instant;

use gha_policy_engine::types::ScaleSetRef;
use gha_policy_engine::{EngineOptions, PolicyEngine, PolicyMetrics, PolicySpec, ScaleSetPolicy};
use gha_simulator::{SimulationOptions, simulate, table, trace};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let engine = PolicyEngine::new(EngineOptions::default(), std::sync::Arc::new(PolicyMetrics::default())).unwrap();
    // ≈ 10,000 jobs: 500 runs of build → matrix (→ deploy).
    let days =
        [("10,000 jobs", trace::generate(10_000, 24.0, 8, 42)), ("DAG day", trace::generate_dag(500, 24.0, 8, 42))];
    for (day, jobs) in &days {
        let mut reports = Vec::new();
        let warm = serde_json::json!({"scaleFactor": 0.3, "maxExtra": 5, "idleTtlSeconds": 300});
        for (name, config) in [("arc-default", serde_json::Value::Null), ("warm-pool", warm)] {
            let mut spec = PolicySpec::built_in(name);
            spec.config = config;
            let policy = ScaleSetPolicy::load(&engine, ScaleSetRef::default(), spec).await.unwrap();
            let started = Instant::now();
            let report = simulate(&policy, name, jobs, SimulationOptions::default(), None).expect("a valid trace");
            let elapsed = started.elapsed().as_secs_f64();
            let what = format!("simulate: {day} ({} jobs) replayed, {name}", jobs.len());
            gha_bench::figure(&what, elapsed, "s", Some("<= 2 s"));
            let per_decision = elapsed * 1e6 / report.decisions.max(1) as f64;
            gha_bench::figure(
                &format!("simulate: {day}, per decision incl. the runner model, {name}"),
                per_decision,
                "µs",
                None,
            );
            reports.push(report);
        }
        println!("\n{day}\n{}", table(&reports));
    }
}
