//! `gha-autoscaler demo`: the whole product offline in one command (fake GitHub, in-memory Kubernetes, the
//! controller, a real listener process, the Wasm policy, simulated runners), on a built-in workload or a trace.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use gha_sandbox::demo::{self, DemoOptions, DemoPolicy, Progress};
use gha_simulator::trace;

/// Run one scale set end to end on loopback and report how the policy did.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The policy: a built-in name (arc-default, warm-pool, pod-shaper) or a component `.wasm` file.
    #[arg(long, default_value = "arc-default")]
    policy: String,
    /// A policy's config: `JSON` (every policy) or `NAME=JSON` (that policy); repeatable.
    #[arg(long)]
    policy_config: Vec<String>,
    /// Run the same workload once per policy and print the summaries side by side (e.g. `arc-default,warm-pool`).
    #[arg(long, value_delimiter = ',')]
    compare: Vec<String>,
    /// A job trace (JSON lines; see `gha-autoscaler simulate --help`); default: a burst, a trickle, a quiet end.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Wall-clock seconds per trace second (0.1 plays 6 trace minutes in 36 s).
    #[arg(long, default_value_t = 0.1)]
    time_scale: f64,
    /// minRunners of the scale set.
    #[arg(long, default_value_t = 0)]
    min_runners: i32,
    /// maxRunners of the scale set.
    #[arg(long, default_value_t = 20)]
    max_runners: i32,
    /// Runner pod start-up time, trace seconds.
    #[arg(long, default_value_t = 10.0)]
    pod_start_seconds: f64,
    /// Where the SVG charts go.
    #[arg(long, default_value = "demo-output")]
    out_dir: PathBuf,
}

impl DemoArgs {
    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        if !(self.time_scale > 0.0 && self.time_scale <= 10.0) {
            anyhow::bail!("--time-scale must be in (0, 10]");
        }
        let jobs = match &self.trace {
            Some(path) => {
                trace::parse(&std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            }
            None => trace::built_in(),
        };
        let policies = if self.compare.is_empty() { vec![self.policy.clone()] } else { self.compare.clone() };
        let configs = super::policy_configs::PolicyConfigs::parse(&self.policy_config, &policies)?;
        std::fs::create_dir_all(&self.out_dir).with_context(|| format!("creating {}", self.out_dir.display()))?;
        let binary = std::env::current_exe().context("finding this binary (listener pods run it)")?;
        let progress = if std::io::stdout().is_terminal() { Progress::Live } else { Progress::Lines };
        println!(
            "demo: {} jobs over {:.1} trace minutes at time scale {} (fake GitHub + in-memory Kubernetes + controller + listener + Wasm policy)",
            jobs.len(),
            jobs.iter().map(|j| j.queued_at.unwrap_or_default() + j.duration).fold(0.0, f64::max) / 60.0,
            self.time_scale
        );
        let shutdown = crate::signals::shutdown();
        tokio::pin!(shutdown);
        let mut reports = Vec::new();
        for name in &policies {
            let policy = DemoPolicy::parse(name);
            let chart = self.out_dir.join(format!("demo-{}.svg", policy.label().trim_end_matches(".wasm")));
            println!("\n== policy {} ==", policy.label());
            let options = DemoOptions {
                policy,
                policy_config: configs.get(name),
                trace: jobs.clone(),
                time_scale: self.time_scale,
                min_runners: self.min_runners,
                max_runners: self.max_runners,
                pod_start_seconds: self.pod_start_seconds,
                binary: binary.clone(),
                chart: Some(chart.clone()),
                progress,
                listener_log_level: "warn".into(),
            };
            // SIGTERM or Ctrl-C stops the demo: dropping its run stops the sandbox, whose kubelet terminates the
            // listener processes as it would for deleted pods.
            let report = tokio::select! {
                report = demo::run(&options) => report?,
                () = &mut shutdown => {
                    eprintln!("demo: stopped");
                    return Ok(ExitCode::from(143));
                }
            };
            println!("chart: {}", chart.display());
            reports.push(report);
        }
        println!("\n{}", demo::table(&reports));
        let mut failed = false;
        for report in &reports {
            for problem in report.problems() {
                eprintln!("error: policy {}: {problem}", report.policy);
                failed = true;
            }
        }
        Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
    }
}
