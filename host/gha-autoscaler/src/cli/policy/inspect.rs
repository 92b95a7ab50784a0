//! `policy inspect`.

use std::process::ExitCode;

use clap::Args;

use super::PolicyOptions;

/// Show what a policy is.
#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    policy: PolicyOptions,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

impl InspectArgs {
    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        let engine = self.policy.engine()?;
        let pre = engine.load(&self.policy.source()?, self.policy.allow_wasi).await?;
        let m = pre.manifest();
        if self.json {
            println!("{}", serde_json::to_string_pretty(m)?);
            return Ok(ExitCode::SUCCESS);
        }
        println!("policy:      {} {} (sdk {})", m.info.name, m.info.version, m.info.sdk_version);
        println!("origin:      {}", m.origin);
        println!("sha256:      {}", m.sha256);
        println!("size:        {} bytes", m.size);
        println!("wit:         {}@{}", gha_policy_engine::WIT_PACKAGE, m.wit_version);
        println!("world:       {}", m.world());
        println!("exports:     {}", m.exports.join(", "));
        println!("imports:     {}", if m.imports.is_empty() { "none".into() } else { m.imports.join(", ") });
        Ok(ExitCode::SUCCESS)
    }
}
