//! Logging to stderr, as text or JSON. Cranelift and wasmtime are muted below warnings.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. `level` is a level or a full `EnvFilter` directive.
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(format!("{level},cranelift_codegen=warn,wasmtime=warn,wasmtime_cranelift=warn"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    if let Err(e) = installed {
        eprintln!("warning: logging not initialised: {e}");
    }
}
