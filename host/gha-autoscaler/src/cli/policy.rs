//! `gha-autoscaler policy ...`: the tools a policy author uses, sharing one loader.

mod bench;
mod componentize;
mod inspect;
mod new;
mod push;
mod registry;
mod run;
mod signing;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use gha_policy_engine::{EngineOptions, PolicyEngine, PolicyMetrics, PolicySource, PolicySpec};

/// Policy tools.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Show a policy's worlds, exports, imports, metadata and size.
    Inspect(inspect::InspectArgs),
    /// Feed recorded inputs (JSON lines) to a policy and print its decisions as JSON lines.
    Run(run::RunArgs),
    /// Run table-driven expectations (YAML) under production limits.
    Test(test::TestArgs),
    /// Measure compile, cache load, instantiation, hook latency and memory.
    Bench(bench::BenchArgs),
    /// Turn a core module built for wasm32-unknown-unknown into a policy component.
    Componentize(componentize::ComponentizeArgs),
    /// Create a policy project (Rust, JavaScript or Python) with its build script and table tests.
    New(new::NewArgs),
    /// Publish a component to an OCI registry (Wasm OCI artifact); prints the reference pinned by digest.
    Push(push::PushArgs),
    /// Write a signing key pair (ECDSA P-256 PEM, as cosign uses).
    GenerateKeyPair(signing::GenerateKeyPairArgs),
    /// Sign a published policy (cosign's format, pushed beside it).
    Sign(signing::SignArgs),
    /// Check a published policy's signature.
    Verify(signing::VerifyArgs),
}

impl PolicyArgs {
    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        match self.command {
            PolicyCommand::Inspect(args) => args.execute().await,
            PolicyCommand::Run(args) => args.execute().await,
            PolicyCommand::Test(args) => args.execute().await,
            PolicyCommand::Bench(args) => args.execute().await,
            PolicyCommand::Componentize(args) => args.execute(),
            PolicyCommand::New(args) => args.execute(),
            PolicyCommand::Push(args) => args.execute().await,
            PolicyCommand::GenerateKeyPair(args) => args.execute(),
            PolicyCommand::Sign(args) => args.execute().await,
            PolicyCommand::Verify(args) => args.execute().await,
        }
    }
}

/// Which policy, with which config: shared by `inspect`, `run` and `bench`.
#[derive(Debug, Args)]
struct PolicyOptions {
    /// A built-in policy name (arc-default, warm-pool, pod-shaper), a .wasm component, an http(s) URL, or
    /// oci://registry/repository:tag.
    policy: String,
    /// sha256 of the component, required for URLs.
    #[arg(long)]
    sha256: Option<String>,
    /// Policy config: a JSON file, or inline JSON.
    #[arg(long)]
    config: Option<String>,
    /// What the policy may change on runner pods (`spec.policy.permissions`): a JSON file, or inline JSON.
    #[arg(long)]
    permissions: Option<String>,
    /// Link a deny-all WASI (for policies built with componentize-js or componentize-py).
    #[arg(long)]
    allow_wasi: bool,
    /// Directory for the precompile cache.
    #[arg(long, env = "GHA_POLICY_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// For oci:// policies: require a signature by this public key (PEM).
    #[arg(long)]
    verify_key: Option<PathBuf>,
    #[command(flatten)]
    registry: registry::RegistryOptions,
}

/// A policy engine with the precompile cache in `cache_dir`.
fn engine(cache_dir: Option<PathBuf>) -> anyhow::Result<Arc<PolicyEngine>> {
    let options = EngineOptions { cache_dir, ..Default::default() };
    Ok(PolicyEngine::new(options, Arc::new(PolicyMetrics::default()))?)
}

/// A JSON argument given as a file or inline.
fn json_arg<T: serde::de::DeserializeOwned>(arg: Option<&str>, what: &str) -> anyhow::Result<Option<T>> {
    let Some(arg) = arg else { return Ok(None) };
    let text = match std::fs::read_to_string(arg) {
        Ok(text) => text,
        Err(_) if arg.trim_start().starts_with(['{', '[']) => arg.to_string(),
        Err(e) => return Err(e).with_context(|| format!("reading {what} {arg}")),
    };
    serde_json::from_str(&text).map(Some).with_context(|| format!("{what} {arg} is not valid"))
}

impl PolicyOptions {
    fn source(&self) -> anyhow::Result<PolicySource> {
        Ok(match PolicySource::from_arg(&self.policy, self.sha256.clone()) {
            PolicySource::Oci(oci) => {
                let keys = match &self.verify_key {
                    Some(path) => {
                        vec![std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?]
                    }
                    None => Vec::new(),
                };
                PolicySource::Oci(self.registry.source(&oci.reference, keys)?)
            }
            source => source,
        })
    }

    fn config(&self) -> anyhow::Result<serde_json::Value> {
        Ok(json_arg(self.config.as_deref(), "config")?.unwrap_or_default())
    }

    fn spec(&self) -> anyhow::Result<PolicySpec> {
        Ok(PolicySpec {
            source: self.source()?,
            config: self.config()?,
            permissions: json_arg(self.permissions.as_deref(), "permissions")?.unwrap_or_default(),
            allow_wasi: self.allow_wasi,
            ..PolicySpec::built_in("arc-default")
        })
    }

    fn engine(&self) -> anyhow::Result<Arc<PolicyEngine>> {
        engine(self.cache_dir.clone())
    }
}
