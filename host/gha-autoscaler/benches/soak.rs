//! `cargo bench -p gha-autoscaler --bench soak`: 10,000 jobs through the `demo` machinery (controller, real
//! listener process, fake Actions service, in-memory API, simulated kubelet) at a high time scale. Memory must stay
//! flat and sessions, watches and tasks must not grow: each is reported at the start, at half the jobs, and at
//! the end. `SOAK_JOBS` and `SOAK_TIME_SCALE` override the size and speed.

use gha_sandbox::demo::{self, DemoOptions, DemoPolicy, Progress};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let jobs: usize = env_or("SOAK_JOBS", 10_000);
    let time_scale: f64 = env_or("SOAK_TIME_SCALE", 0.01);
    // A working day's shape: 10,000 jobs over 24 trace hours, with bursts.
    let hours = 24.0 * jobs as f64 / 10_000.0;
    let options = DemoOptions {
        policy: DemoPolicy::BuiltIn("arc-default".into()),
        policy_config: None,
        trace: gha_simulator::trace::generate(jobs, hours, 12, 7),
        time_scale,
        min_runners: 1,
        max_runners: 100,
        pod_start_seconds: 5.0,
        binary: env!("CARGO_BIN_EXE_gha-autoscaler").into(),
        chart: None,
        progress: Progress::Lines,
        listener_log_level: "error".into(),
    };
    let report = demo::run(&options).await.expect("the soak runs");
    for problem in report.problems() {
        eprintln!("soak problem: {problem}");
    }
    let label = |i: usize| ["start", "half the jobs done", "end"].get(i).copied().unwrap_or("later");
    for (i, point) in report.checkpoints.iter().enumerate() {
        let at = format!("{} ({} jobs completed)", label(i), point.completed);
        gha_bench::figure(&format!("soak: RSS of the process tree at {at}"), point.rss_mib, "MiB", None);
        gha_bench::figure(&format!("soak: open sessions at {at}"), point.sessions as f64, "", Some("1"));
        if let Some(watches) = point.watches {
            gha_bench::figure(&format!("soak: open watches at {at}"), watches as f64, "", None);
        }
        gha_bench::figure(&format!("soak: runtime tasks at {at}"), point.tasks as f64, "", None);
    }
    if let (Some(first), Some(last)) = (report.checkpoints.first(), report.checkpoints.last()) {
        let growth = last.rss_mib - first.rss_mib;
        gha_bench::figure("soak: RSS growth start -> end", growth, "MiB", None);
    }
    let all = format!("{} (all)", report.jobs);
    gha_bench::figure("soak: jobs of the trace completed successfully", report.completed as f64, "", Some(&all));
    gha_bench::figure("soak: runners leaked", report.leaked as f64, "", Some("0"));
    gha_bench::figure("soak: wall clock", report.wall_seconds, "s", None);
}
