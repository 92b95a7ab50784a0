//! `gha-autoscaler controller`: the controller manager (what the controller chart's Deployment runs).

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use gha_controller::ControllerOptions;

use crate::telemetry::Logging;

/// Run the controller manager: AutoscalingRunnerSet, EphemeralRunnerSet, EphemeralRunner and
/// AutoscalingListener controllers.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    #[command(flatten)]
    options: ControllerOptions,
}

impl ControllerArgs {
    pub async fn execute(mut self, logging: &Logging) -> anyhow::Result<ExitCode> {
        self.options.listener_log_level = logging.level_or("info");
        self.options.listener_log_format = logging.format_or("text").name().into();
        self.options.force_ghes |=
            gha_actions_client::forces_ghes(std::env::var_os(gha_actions_client::FORCE_GHES_ENV));
        let config = kube::Config::infer().await.context("finding the cluster (kubeconfig or in-cluster config)")?;
        let client = gha_controller::rate_limit::client(config, self.options.kube_qps, self.options.kube_burst)
            .context("building the Kubernetes client")?;
        gha_controller::run(client, self.options, crate::signals::shutdown()).await?;
        Ok(ExitCode::SUCCESS)
    }
}
