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
    /// Print a synthetic trace (JSON lines): a diurnal load with bursts, reproducible from a seed.
    Generate {
        /// Jobs.
        #[arg(long, default_value_t = 10_000)]
        jobs: usize,
        /// Hours covered.
        #[arg(long, default_value_t = 24.0)]
        hours: f64,
        /// Bursts of 10–30 jobs.
        #[arg(long, default_value_t = 8)]
        bursts: usize,
        /// Seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

impl TraceArgs {
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        match self.command {
            TraceCommand::Generate { jobs, hours, bursts, seed } => {
                if !(hours > 0.0 && hours.is_finite()) {
                    anyhow::bail!("--hours must be positive");
                }
                print!("{}", trace::to_json_lines(&trace::generate(jobs, hours, bursts, seed)));
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
