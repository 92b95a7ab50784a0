//! `gha-autoscaler trace generate`: synthetic job traces for `simulate` and `demo`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use gha_simulator::trace;

/// Job traces.
#[derive(Debug, Args)]
pub struct TraceArgs {
    #[command(subcommand)]
    command: TraceCommand,
}

#[derive(Debug, Subcommand)]
enum TraceCommand {
    /// Print a synthetic trace (JSON lines): a diurnal load with bursts, reproducible from a seed; with --dag,
    /// workflow runs (build → test matrix → integration matrix → deploy) whose later jobs are queued by their
    /// `needs`.
    Generate {
        /// Jobs (without --dag).
        #[arg(long, default_value_t = 10_000)]
        jobs: usize,
        /// Hours covered.
        #[arg(long, default_value_t = 24.0)]
        hours: f64,
        /// Bursts of 10–30 jobs (with --dag: merge-queue bursts of 6–10 runs).
        #[arg(long, default_value_t = 8)]
        bursts: usize,
        /// Workflow runs with their job DAGs instead of independent jobs.
        #[arg(long)]
        dag: bool,
        /// Workflow runs (with --dag).
        #[arg(long, default_value_t = 300)]
        runs: usize,
        /// Seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

impl TraceArgs {
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        match self.command {
            TraceCommand::Generate { jobs, hours, bursts, dag, runs, seed } => {
                if !(hours > 0.0 && hours.is_finite()) {
                    anyhow::bail!("--hours must be positive");
                }
                let trace = if dag {
                    trace::generate_dag(runs, hours, bursts, seed)
                } else {
                    trace::generate(jobs, hours, bursts, seed)
                };
                print!("{}", trace::to_json_lines(&trace));
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
