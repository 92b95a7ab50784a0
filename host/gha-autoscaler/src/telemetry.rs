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

impl LogFormat {
    /// `text` or `json`, as flags and ARC's listener config spell it.
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// The logging flags; each command applies them over its own defaults (the listener's come from its config).
#[derive(Debug, Clone, Default)]
pub struct Logging {
    /// `--log-level`.
    pub level: Option<String>,
    /// `--log-format`.
    pub format: Option<LogFormat>,
}

impl Logging {
    /// The level in effect: the flag's, else `default`, else `info`.
    pub fn level_or(&self, default: &str) -> String {
        let default = if default.is_empty() { "info" } else { default };
        self.level.clone().filter(|l| !l.is_empty()).unwrap_or_else(|| default.to_string())
    }

    /// The format in effect: the flag's, else `default` (`text`/`json`; anything else is text).
    pub fn format_or(&self, default: &str) -> LogFormat {
        self.format.unwrap_or_else(|| LogFormat::from_str(default, true).unwrap_or_default())
    }

    /// Installs the global subscriber with the flags over these defaults.
    pub fn init(&self, default_level: &str, default_format: &str) {
        init(&self.level_or(default_level), self.format_or(default_format));
    }
}

/// Installs the global subscriber. `level` is a level or a full `EnvFilter` directive.
fn init(level: &str, format: LogFormat) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_commands_defaults() {
        let none = Logging::default();
        assert_eq!((none.level_or("debug"), none.format_or("json").name()), ("debug".into(), "json"));
        assert_eq!((none.level_or(""), none.format_or("yaml").name()), ("info".into(), "text"));
        let flags = Logging { level: Some("warn".into()), format: Some(LogFormat::Text) };
        assert_eq!((flags.level_or("debug"), flags.format_or("json").name()), ("warn".into(), "text"));
    }
}
