//! `policy bench`.

use std::process::ExitCode;

use clap::Args;

use super::PolicyOptions;

/// Measure a policy.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    policy: PolicyOptions,
    /// Hook calls to time.
    #[arg(long, default_value_t = 20_000)]
    iterations: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

impl BenchArgs {
    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        let bytes = self.policy.source()?.resolve().await?;
        let report = gha_policy_engine::bench::run(
            &bytes,
            self.policy.config()?,
            self.iterations.max(100),
            self.policy.allow_wasi,
        )
        .await?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", report.table());
        }
        Ok(ExitCode::SUCCESS)
    }
}
