//! `policy push`: publish a component to an OCI registry as a Wasm OCI artifact.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::registry::{RegistryOptions, reference_arg};

/// Publish a policy component to an OCI registry; prints the reference pinned by digest.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The component (.wasm).
    component: PathBuf,
    /// Where: registry/repository:tag.
    reference: String,
    #[command(flatten)]
    registry: RegistryOptions,
    /// Link a deny-all WASI when checking the component (JS and Python policies).
    #[arg(long)]
    allow_wasi: bool,
}

impl PushArgs {
    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        let bytes = std::fs::read(&self.component).with_context(|| format!("reading {}", self.component.display()))?;
        // Only a component the host loads is published.
        let engine = super::engine(None)?;
        let policy = gha_policy_engine::PolicyBytes::new(self.component.display().to_string(), bytes);
        let pre = tokio::task::spawn_blocking({
            let policy = policy.clone();
            move || engine.prepare(&policy, self.allow_wasi)
        })
        .await??;
        let reference = reference_arg(&self.reference)?;
        let pinned = self
            .registry
            .registry(&reference)?
            .push_policy(&reference, &policy.bytes)
            .await
            .map_err(anyhow::Error::msg)?;
        let info = &pre.manifest().info;
        eprintln!("pushed {} {} ({} bytes) to {}", info.name, info.version, policy.bytes.len(), reference.whole());
        println!("{pinned}");
        Ok(ExitCode::SUCCESS)
    }
}
