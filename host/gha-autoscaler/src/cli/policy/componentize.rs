//! `policy componentize`: `wasm-tools component new` for policy authors who do not have wasm-tools.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

/// Turn a core module (with the component-type section wit-bindgen embeds) into a pure component.
#[derive(Debug, Args)]
pub struct ComponentizeArgs {
    /// The core module, e.g. target/wasm32-unknown-unknown/policy/my_policy.wasm.
    module: PathBuf,
    /// Where to write the component.
    #[arg(short, long)]
    output: PathBuf,
}

impl ComponentizeArgs {
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let module = std::fs::read(&self.module).with_context(|| format!("reading {}", self.module.display()))?;
        let component = wit_component::ComponentEncoder::default()
            .module(&module)
            .and_then(|encoder| encoder.validate(true).encode())
            .with_context(|| format!("componentizing {}", self.module.display()))?;
        std::fs::write(&self.output, &component).with_context(|| format!("writing {}", self.output.display()))?;
        eprintln!("wrote {} ({} bytes)", self.output.display(), component.len());
        Ok(ExitCode::SUCCESS)
    }
}
