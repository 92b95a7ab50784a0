//! `cargo run -p gha-bench --release`: runs every benchmark of the workspace one after the other (they share two
//! cores, so never in parallel), then prints all figures as one table with their targets and writes
//! `target/bench-report.json`.

use std::io::BufRead;
use std::process::{Command, ExitCode};

use gha_bench::{Figure, JSON_ENV, line};

/// (package, bench target) in report order.
const BENCHES: &[(&str, &str)] = &[
    ("gha-policy-engine", "policy"),
    ("gha-actions-client", "roundtrip"),
    ("gha-mem-kube", "api"),
    ("gha-autoscaler", "listener"),
    ("gha-autoscaler", "controller"),
    ("gha-autoscaler", "requests"),
    ("gha-autoscaler", "fleet"),
    ("gha-simulator", "simulate"),
    ("gha-autoscaler", "soak"),
];

fn main() -> ExitCode {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let jsonl = root.join("target/bench-figures.jsonl");
    let _ = std::fs::remove_file(&jsonl);
    let only: Vec<String> = std::env::args().skip(1).collect();
    let mut failed = Vec::new();
    let production = production_build(&root);
    for (package, bench) in BENCHES {
        if !only.is_empty() && !only.iter().any(|o| o == bench) {
            continue;
        }
        eprintln!("== cargo bench -p {package} --bench {bench}");
        let status = Command::new(env!("CARGO"))
            .args(["bench", "--locked", "-p", package, "--bench", bench])
            .env(JSON_ENV, &jsonl)
            .envs(production.iter().map(|path| ("GHA_PRODUCTION_BINARY", path)))
            .current_dir(&root)
            .status();
        if !status.is_ok_and(|s| s.success()) {
            failed.push(format!("{package}/{bench}"));
        }
    }
    let figures: Vec<Figure> = std::fs::File::open(&jsonl)
        .map(|f| {
            std::io::BufReader::new(f)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| serde_json::from_str(&l).ok())
                .collect()
        })
        .unwrap_or_default();
    let machine = machine();
    println!("\nPerformance report — {machine}\n");
    println!("{:<78} {:>10} {:<5} {:<14} verdict", "figure", "value", "unit", "target");
    for figure in &figures {
        println!("{}", line(figure));
    }
    let missed = figures.iter().filter(|f| f.met == Some(false)).count();
    println!(
        "\n{} figures, {missed} targets missed{}",
        figures.len(),
        if failed.is_empty() { String::new() } else { format!(", benchmarks failed: {}", failed.join(", ")) }
    );
    let report = serde_json::json!({"machine": machine, "figures": figures, "failed": failed});
    let path = root.join("target/bench-report.json");
    if let Err(e) = std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap_or_default()) {
        eprintln!("cannot write {}: {e}", path.display());
    } else {
        println!("JSON: {}", path.display());
    }
    if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// CPU model, core count and memory, from /proc.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches(" kB").parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!("{model}, {cores} cores, {mem_gib:.0} GiB")
}

/// Builds the image's binary (`--no-default-features`, release) and copies it aside before the benchmarks build
/// the full one in the same place, so they can measure it beside the full build; None when the build fails.
fn production_build(root: &std::path::Path) -> Option<std::path::PathBuf> {
    eprintln!("== cargo build --release -p gha-autoscaler --no-default-features");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--locked", "--release", "-p", "gha-autoscaler", "--no-default-features"])
        .current_dir(root)
        .status();
    let aside = root.join("target/production-release/gha-autoscaler");
    let copied = std::fs::create_dir_all(root.join("target/production-release"))
        .and_then(|()| std::fs::copy(root.join("target/release/gha-autoscaler"), &aside));
    (status.is_ok_and(|s| s.success()) && copied.is_ok()).then_some(aside)
}
