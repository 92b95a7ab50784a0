//! `cargo bench -p gha-policy-engine`: the policy-engine figures beside their targets, for the shipped
//! policies and for the Rust, JavaScript and Python template policies (as the template tests last built them into
//! `<target>/policy-templates/`), plus how fast a looping policy is stopped and answered for.

use gha_policy_engine::{PolicyBytes, bench, built_in};
use serde_json::json;

const MISBEHAVING: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/misbehaving_policy.wasm"));

/// Each figure through the common report, named with its policy.
fn report_figures(policy: &str, figures: &[bench::Figure]) {
    for figure in figures {
        let mut figure = figure.clone();
        figure.name = format!("policy {policy}: {}", figure.name);
        figure.report();
    }
}

#[tokio::main]
async fn main() {
    let iterations = std::env::var("BENCH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(50_000);
    for (name, config) in [
        ("arc-default", json!(null)),
        ("warm-pool", json!({"scaleFactor": 0.5, "idleTtlSeconds": 300})),
        ("predictive", json!(null)),
        ("pod-shaper", json!({"default": {"resources": {"requests": {"cpu": "2"}}}})),
    ] {
        let bytes = PolicyBytes::new(format!("built-in {name}"), built_in(name).expect("shipped"));
        match bench::run(&bytes, config, iterations, false).await {
            Ok(report) => report_figures(&report.policy, &report.figures),
            Err(e) => eprintln!("{name}: {e}"),
        }
    }
    // The same policy (one spare per two jobs) from each language's template; Python's imports WASI.
    let templates = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("../policy-templates");
    for (lang, allow_wasi) in [("rust", false), ("js", false), ("python", true)] {
        let path = templates.join(format!("{lang}.wasm"));
        let Ok(component) = std::fs::read(&path) else {
            eprintln!("{}: not built; run `cargo test -p gha-autoscaler --test policy_templates`", path.display());
            continue;
        };
        let bytes = PolicyBytes::new(format!("{lang} template"), component);
        match bench::run(&bytes, json!({"spareEvery": 2}), iterations, allow_wasi).await {
            Ok(report) => report_figures(&report.policy, &report.figures),
            Err(e) => eprintln!("{lang} template: {e}"),
        }
    }
    let looping = PolicyBytes::new("fixture misbehaving (loop)", MISBEHAVING);
    match bench::loop_stop(&looping, json!({"mode": "loop"}), 100).await {
        Ok(f) => report_figures("fixture misbehaving (loop)", &[f]),
        Err(e) => eprintln!("loop: {e}"),
    }
}
