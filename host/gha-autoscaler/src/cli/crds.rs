//! `gha-autoscaler crds`: the CRD YAML generated from the Rust types.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

/// Print the CustomResourceDefinitions (ARC's four kinds) as YAML, for `kubectl apply -f -` or the chart.
#[derive(Debug, Args)]
pub struct CrdsArgs {}

impl CrdsArgs {
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let text = format!("---\n{}", gha_crds::yaml());
        match std::io::stdout().lock().write_all(text.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
            _ => Ok(ExitCode::SUCCESS),
        }
    }
}
