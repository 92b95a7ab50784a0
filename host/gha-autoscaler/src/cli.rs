//! Command-line interface: a `Cli` holding one `Command`; each subcommand parses into typed values and calls
//! library code.

mod controller;
mod crds;
#[cfg(feature = "demo")]
mod demo;
#[cfg(feature = "demo")]
mod kube_api;
mod listener;
mod policy;
mod policy_configs;
mod simulate;
mod trace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::telemetry::{LogFormat, Logging};

/// ARC-compatible autoscaler for GitHub Actions runner scale sets, with scaling policies as Wasm components.
#[derive(Debug, Parser)]
#[command(name = "gha-autoscaler", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log level or filter directive (e.g. `debug`, `info,gha_policy=debug`); default `info` (`warn` for demo,
    /// the config's `log_level` for the listener). The controller hands its level to listeners.
    #[arg(long, global = true, env = "LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Log format (default text; the config's `log_format` for the listener). The controller hands it to listeners.
    #[arg(long, global = true, env = "LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

impl Cli {
    /// Starts logging (the listener does once it has read its config) and runs the subcommand.
    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        let logging = Logging { level: self.log_level, format: self.log_format };
        if !matches!(self.command, Command::Listener(_)) {
            logging.init(self.command.default_log_level(), LogFormat::Text.name());
        }
        self.command.execute(logging).await
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect, run, test, benchmark and build policies.
    Policy(policy::PolicyArgs),
    /// Serve an in-memory Kubernetes API with a kubeconfig for kubectl.
    #[cfg(feature = "demo")]
    KubeApi(kube_api::KubeApiArgs),
    /// Print the CRDs generated from the Rust types.
    Crds(crds::CrdsArgs),
    /// Run the whole product offline on a workload and report how the policy did.
    #[cfg(feature = "demo")]
    Demo(demo::DemoArgs),
    /// Replay a job trace against policies on a virtual clock and compare them.
    Simulate(simulate::SimulateArgs),
    /// Generate job traces.
    Trace(trace::TraceArgs),
    /// Run the controller manager (what the controller chart deploys).
    Controller(Box<controller::ControllerArgs>),
    /// Run the listener of one scale set (what listener pods run).
    Listener(listener::ListenerArgs),
}

impl Command {
    /// The log level when none is given: the demo keeps its terminal for progress.
    fn default_log_level(&self) -> &'static str {
        match self {
            #[cfg(feature = "demo")]
            Command::Demo(_) => "warn",
            _ => "info",
        }
    }

    /// Runs the subcommand.
    async fn execute(self, logging: Logging) -> anyhow::Result<ExitCode> {
        match self {
            Command::Policy(args) => args.execute().await,
            #[cfg(feature = "demo")]
            Command::KubeApi(args) => args.execute().await,
            Command::Crds(args) => args.execute(),
            Command::Controller(args) => args.execute(&logging).await,
            #[cfg(feature = "demo")]
            Command::Demo(args) => args.execute().await,
            Command::Simulate(args) => args.execute().await,
            Command::Trace(args) => args.execute(),
            Command::Listener(args) => args.execute(&logging).await,
        }
    }
}
