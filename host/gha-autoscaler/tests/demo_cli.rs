//! `demo`, `simulate` and `trace generate` as a user runs them.

use std::process::Command;

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gha-autoscaler"))
}

#[test]
fn the_demo_runs_a_trace_end_to_end_and_reports_a_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.jsonl");
    let mut jobs: String =
        (0..2).map(|i| format!("{{\"queuedAt\": {}, \"duration\": 20, \"workflow\": \"ci.yml\"}}\n", i * 2)).collect();
    // A workflow run: the matrix is queued when build has completed in the fake Actions service.
    jobs += "{\"run\": 7, \"job\": \"build\", \"queuedAt\": 1, \"duration\": 20}\n";
    jobs += "{\"run\": 7, \"job\": \"test (1/2)\", \"needs\": [\"build\"], \"duration\": 20}\n";
    jobs += "{\"run\": 7, \"job\": \"test (2/2)\", \"needs\": [\"build\"], \"duration\": 20}\n";
    std::fs::write(&trace, jobs).unwrap();
    let out_dir = dir.path().join("out");
    let output = binary()
        .args(["demo", "--policy", "warm-pool", "--policy-config", r#"{"scaleFactor": 0.5}"#, "--time-scale", "0.05"])
        .arg("--trace")
        .arg(&trace)
        .arg("--out-dir")
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("jobs completed") && stdout.contains("5 / 5"), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("runners leaked") && l.trim_end().ends_with(" 0")), "{stdout}");
    let svg = std::fs::read_to_string(out_dir.join("demo-warm-pool.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("desired runners"));
}

#[test]
fn a_bad_policy_config_fails_the_demo_fast_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let output = binary()
        .args(["demo", "--policy", "warm-pool", "--policy-config", r#"{"nonsense": 1}"#, "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nonsense"), "{stderr}");
}

#[test]
fn simulate_replays_a_generated_workflow_dag_day() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("dag.jsonl");
    let generated = binary().args(["trace", "generate", "--dag", "--runs", "40", "--hours", "4"]).output().unwrap();
    assert!(generated.status.success());
    std::fs::write(&trace, &generated.stdout).unwrap();
    let lines = String::from_utf8_lossy(&generated.stdout).lines().count();
    assert!(lines > 80, "40 runs with their matrices: {lines} jobs");
    let output =
        binary().args(["simulate", "--policy", "arc-default", "--json", "--trace"]).arg(&trace).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let reports: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(reports[0]["jobs"], lines);
    let work: f64 = String::from_utf8_lossy(&generated.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["duration"].as_f64().unwrap() / 60.0)
        .sum();
    let busy = reports[0]["busy_runner_minutes"].as_f64().unwrap();
    assert!((busy - work).abs() < 1e-3, "every job of every run ran: {busy} of {work} runner-minutes");
}

#[test]
fn simulate_compares_policies_on_a_generated_trace() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("day.jsonl");
    let generated =
        binary().args(["trace", "generate", "--jobs", "300", "--hours", "6", "--seed", "5"]).output().unwrap();
    assert!(generated.status.success());
    std::fs::write(&trace, &generated.stdout).unwrap();
    assert_eq!(String::from_utf8_lossy(&generated.stdout).lines().count(), 300);
    let log = dir.path().join("log-{policy}.jsonl");
    let output = binary()
        .args(["simulate", "--policy", "arc-default", "--policy", "warm-pool", "--csv"])
        .args(["--policy-config", r#"warm-pool={"scaleFactor": 1.0, "maxExtra": 5}"#])
        .arg("--trace")
        .arg(&trace)
        .arg("--decision-log")
        .arg(&log)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let rows: Vec<Vec<&str>> = stdout.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2);
    let wait_p50 = |row: &Vec<&str>| row[2].parse::<f64>().unwrap();
    assert!(wait_p50(&rows[1]) < wait_p50(&rows[0]), "a buffer shortens the wait: {stdout}");

    // The decision log of one policy replays against another (what-if on recorded history).
    let recorded = dir.path().join("log-arc-default.jsonl");
    let replay = binary().args(["policy", "run", "warm-pool", "--input"]).arg(&recorded).output().unwrap();
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&replay.stdout).lines().nth(1).unwrap()).unwrap();
    assert!(first["recorded"]["desiredRunners"].is_number() && first["desiredRunners"].is_number(), "{first}");
}

/// A trace of `jobs` jobs of 20 trace seconds, two seconds apart.
fn trace(dir: &std::path::Path, jobs: usize) -> std::path::PathBuf {
    let path = dir.join("trace.jsonl");
    let lines: String = (0..jobs)
        .map(|i| format!("{{\"queuedAt\": {}, \"duration\": 20, \"workflow\": \"ci.yml\"}}\n", i * 2))
        .collect();
    std::fs::write(&path, lines).unwrap();
    path
}

#[test]
fn the_demo_report_counts_the_controllers_pod_mutation_fallbacks() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("hostile.wasm");
    std::fs::write(&policy, gha_policy_engine::fixtures::MISBEHAVING).unwrap();
    let output = binary()
        .args(["demo", "--policy"])
        .arg(&policy)
        .args(["--policy-config", r#"hostile={"mode": "dind-image"}"#, "--time-scale", "0.05", "--trace"])
        .arg(trace(dir.path(), 3))
        .arg("--out-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let fallbacks = stdout.lines().find(|l| l.starts_with("policy fallbacks")).unwrap_or_default();
    let count: u64 = fallbacks.split_whitespace().last().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(count >= 3, "every refused pod patch is a fallback: {stdout}");
}

/// The `gha-autoscaler listener` processes `parent` started.
fn listeners_of(parent: u32) -> Vec<u32> {
    let children = gha_sandbox::child_processes(parent).into_iter();
    children.filter(|(_, cmdline)| cmdline.contains("listener")).map(|(pid, _)| pid).collect()
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()).is_some_and(|state| state != "Z")
}

#[test]
fn a_demo_stopped_with_sigterm_stops_its_listener_processes() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = binary()
        .args(["demo", "--time-scale", "1", "--trace"])
        .arg(trace(dir.path(), 50))
        .arg("--out-dir")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let listeners = loop {
        let found = listeners_of(demo.id());
        if !found.is_empty() || std::time::Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(!listeners.is_empty(), "the demo started a listener");
    let killed = Command::new("kill").args(["-TERM", &demo.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = demo.wait().unwrap();
    assert!(!status.success(), "stopped, not finished: {status}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while listeners.iter().any(|pid| alive(*pid)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(listeners.iter().all(|pid| !alive(*pid)), "no listener outlives the demo: {listeners:?}");
}
