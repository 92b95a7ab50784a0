//! `gha-autoscaler crds`: the CRD YAML generated from the Rust types.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

/// Print the CustomResourceDefinitions (ARC's four kinds) as YAML, for `kubectl apply --server-side -f -`, or
/// write them as the chart's files.
#[derive(Debug, Args)]
pub struct CrdsArgs {
    /// Write one file per CRD into this directory (the controller chart's `crds/`) instead of printing.
    #[arg(long)]
    output_dir: Option<std::path::PathBuf>,
}

impl CrdsArgs {
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        if let Some(dir) = &self.output_dir {
            std::fs::create_dir_all(dir)?;
            for (name, text) in gha_crds::files() {
                std::fs::write(dir.join(name), text)?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        let text = format!("---\n{}", gha_crds::yaml());
        match std::io::stdout().lock().write_all(text.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
            _ => Ok(ExitCode::SUCCESS),
        }
    }
}
