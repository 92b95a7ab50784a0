//! Command-line interface: a `Cli` holding one `Command`; each subcommand parses into typed values and calls
//! library code.

mod controller;
mod crds;
mod kube_api;
mod listener;
mod policy;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::telemetry::LogFormat;

/// ARC-compatible autoscaler for GitHub Actions runner scale sets, with scaling policies as Wasm components.
#[derive(Debug, Parser)]
#[command(name = "gha-autoscaler", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log level or filter directive (e.g. `debug`, `info,gha_policy=debug`).
    #[arg(long, global = true, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Log format.
    #[arg(long, global = true, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect, run, test, benchmark and build policies.
    Policy(policy::PolicyArgs),
    /// Serve an in-memory Kubernetes API with a kubeconfig for kubectl.
    KubeApi(kube_api::KubeApiArgs),
    /// Print the CRDs generated from the Rust types.
    Crds(crds::CrdsArgs),
    /// Run the controller manager (what the controller chart deploys).
    Controller(Box<controller::ControllerArgs>),
    /// Run the listener of one scale set (what listener pods run).
    Listener(listener::ListenerArgs),
}

impl Command {
    /// Runs the subcommand.
    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Policy(args) => args.execute().await,
            Command::KubeApi(args) => args.execute().await,
            Command::Crds(args) => args.execute(),
            Command::Controller(args) => args.execute().await,
            Command::Listener(args) => args.execute().await,
        }
    }
}
