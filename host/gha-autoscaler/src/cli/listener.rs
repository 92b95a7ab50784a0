//! `gha-autoscaler listener`: the per-scale-set listener process (what the listener pod runs).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use gha_listener::{EXIT_INVALID_CONFIG, ListenerConfig};

use crate::telemetry::Logging;

/// Run the listener of one scale set: long poll, ask the policy, patch the EphemeralRunnerSet.
#[derive(Debug, Args)]
pub struct ListenerArgs {
    /// The config file (ARC's listener JSON keys plus `policy`).
    #[arg(long, env = "LISTENER_CONFIG_PATH", default_value = "/etc/gha-listener/config.json")]
    config: PathBuf,
}

impl ListenerArgs {
    /// Runs the listener; logging follows the flags, else the config's `log_level`/`log_format` (as ARC's).
    pub async fn execute(self, logging: &Logging) -> anyhow::Result<ExitCode> {
        let text = std::fs::read_to_string(&self.config);
        let parsed = text.map(|text| ListenerConfig::parse(&text));
        match &parsed {
            Ok(Ok(config)) => logging.init(&config.log_level, &config.log_format),
            _ => logging.init("info", "text"),
        }
        let parsed = parsed.with_context(|| format!("reading {}", self.config.display()))?;
        let mut config = match parsed {
            Ok(config) => config,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(EXIT_INVALID_CONFIG));
            }
        };
        if let Some(dir) = self.config.parent() {
            config.resolve_paths(dir);
        }
        let mut kube_config = match &config.kubernetes_api_url {
            Some(url) => kube::Config::new(url.parse().context("kubernetes_api_url")?),
            None => kube::Config::infer().await.context("connecting to Kubernetes")?,
        };
        gha_listener::identify(&mut kube_config, "listener");
        let kube = kube::Client::try_from(kube_config)?;
        match gha_listener::run(config, kube, crate::signals::shutdown()).await {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e) => {
                tracing::error!(error = %e, "listener stopped");
                Ok(ExitCode::from(e.exit_code()))
            }
        }
    }
}
