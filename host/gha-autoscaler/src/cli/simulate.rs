//! `gha-autoscaler simulate`: replay a job trace against one or more policies on a virtual clock, with the real
//! policy engine, and compare queue wait, idle minutes and cost.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use gha_policy_engine::types::ScaleSetRef;
use gha_policy_engine::{EngineOptions, PolicyEngine, PolicyMetrics, PolicySource, PolicySpec, ScaleSetPolicy};
use gha_simulator::chart::{self, Series};
use gha_simulator::{RunnerModel, SimulationOptions, trace};

use super::policy_configs::PolicyConfigs;

/// Replay a trace (JSON lines: queuedAt, labels, repository, workflow, duration — seconds) against policies.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The trace (`gha-autoscaler trace generate` makes one; `examples/traces/` has samples).
    #[arg(long)]
    trace: PathBuf,
    /// A policy: built-in name, `.wasm` file or URL; repeat to compare.
    #[arg(long = "policy", default_values_t = ["arc-default".to_string()])]
    policies: Vec<String>,
    /// A policy's config: `JSON` (every policy) or `NAME=JSON`; repeatable.
    #[arg(long)]
    policy_config: Vec<String>,
    /// Mean runner start-up, seconds (pod scheduling, image pull, registration).
    #[arg(long, default_value_t = 20.0)]
    start_seconds: f64,
    /// Start-up jitter, ± seconds.
    #[arg(long, default_value_t = 10.0)]
    start_jitter: f64,
    /// minRunners.
    #[arg(long, default_value_t = 0)]
    min_runners: u32,
    /// maxRunners.
    #[arg(long, default_value_t = 100)]
    max_runners: u32,
    /// Price of one runner-minute.
    #[arg(long, default_value_t = 0.008)]
    price: f64,
    /// Seed of the start-up jitter.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print JSON instead of the table.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV instead of the table.
    #[arg(long)]
    csv: bool,
    /// Write an SVG chart of queued jobs and runners per policy.
    #[arg(long)]
    chart: Option<PathBuf>,
    /// Write every policy evaluation (inputs, module sha256, outputs) as JSON lines; `{policy}` in the path is
    /// replaced by the policy's name. Replay one against another policy with `policy run --input`.
    #[arg(long)]
    decision_log: Option<String>,
}

impl SimulateArgs {
    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        let text = std::fs::read_to_string(&self.trace).with_context(|| format!("reading {}", self.trace.display()))?;
        let jobs = trace::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", self.trace.display()))?;
        if self.min_runners > self.max_runners {
            anyhow::bail!("--min-runners {} is above --max-runners {}", self.min_runners, self.max_runners);
        }
        let configs = PolicyConfigs::parse(&self.policy_config, &self.policies)?;
        let engine = PolicyEngine::new(EngineOptions::default(), Arc::new(PolicyMetrics::default()))?;
        let options = SimulationOptions {
            model: RunnerModel {
                start_seconds: self.start_seconds.max(0.0),
                start_jitter_seconds: self.start_jitter.max(0.0),
                min_runners: self.min_runners,
                max_runners: self.max_runners,
            },
            price_per_runner_minute: self.price,
            seed: self.seed,
            ..SimulationOptions::default()
        };
        let mut reports = Vec::new();
        for name in &self.policies {
            let mut spec = PolicySpec::built_in("arc-default");
            spec.source = PolicySource::from_arg(name, None);
            spec.config = configs.get(name).unwrap_or_default();
            let policy = ScaleSetPolicy::load(&engine, ScaleSetRef::default(), spec)
                .await
                .with_context(|| format!("loading policy {name}"))?;
            let label = name.rsplit('/').next().unwrap_or(name).trim_end_matches(".wasm").to_string();
            let mut log = match &self.decision_log {
                Some(pattern) => {
                    let path = pattern.replace("{policy}", &label);
                    let file = std::fs::File::create(&path).with_context(|| format!("creating {path}"))?;
                    Some(std::io::BufWriter::new(file))
                }
                None => None,
            };
            let report =
                gha_simulator::simulate(&policy, &label, &jobs, options, log.as_mut().map(|w| w as &mut dyn Write))
                    .map_err(anyhow::Error::msg)?;
            if let Some(mut log) = log {
                log.flush()?;
            }
            reports.push(report);
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(&reports)?);
        } else if self.csv {
            print!("{}", gha_simulator::csv(&reports));
        } else {
            println!(
                "{} jobs, runner start-up {}±{} s, runners {}..{}\n",
                jobs.len(),
                self.start_seconds,
                self.start_jitter,
                self.min_runners,
                self.max_runners
            );
            print!("{}", gha_simulator::table(&reports));
        }
        if let Some(path) = &self.chart {
            let mut series = vec![Series {
                name: "queued jobs".into(),
                points: decimate(
                    reports
                        .first()
                        .map(|r| r.points.iter().map(|p| (p.t / 60.0, f64::from(p.queued))).collect())
                        .unwrap_or_default(),
                ),
            }];
            for report in &reports {
                series.push(Series {
                    name: format!("runners, {}", report.policy),
                    points: decimate(report.points.iter().map(|p| (p.t / 60.0, f64::from(p.runners))).collect()),
                });
            }
            chart::write_svg(path, "gha-autoscaler simulate", &series).map_err(|e| anyhow::anyhow!(e))?;
            eprintln!("chart: {}", path.display());
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// At most ~2,000 points per line (the maximum of each bucket, so peaks stay visible).
fn decimate(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    let step = points.len().div_ceil(2000).max(1);
    points.chunks(step).filter_map(|c| c.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1))).collect()
}
