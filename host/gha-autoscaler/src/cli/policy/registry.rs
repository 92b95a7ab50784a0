//! How the policy tools reach an OCI registry: plain HTTP or HTTPS, and credentials from the environment or a
//! Docker config file.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use gha_policy_engine::docker_config;
use gha_policy_engine::oci::{OciSource, Reference, Registry, RegistryCredentials, parse_reference};

/// The registry options of `push`, `sign`, `verify` and of `oci://` policy arguments.
#[derive(Debug, Clone, Args)]
pub struct RegistryOptions {
    /// Talk plain HTTP to the registry (a local registry without TLS).
    #[arg(long)]
    plain_http: bool,
    /// A Docker config file with the registry's credentials [default: $DOCKER_CONFIG/config.json, else
    /// ~/.docker/config.json]. GHA_REGISTRY_USERNAME and GHA_REGISTRY_PASSWORD, when set, take precedence.
    #[arg(long)]
    docker_config: Option<PathBuf>,
}

/// The environment variables holding registry credentials.
const USERNAME_ENV: &str = "GHA_REGISTRY_USERNAME";
const PASSWORD_ENV: &str = "GHA_REGISTRY_PASSWORD";

impl RegistryOptions {
    fn credentials(&self, registry: &str) -> anyhow::Result<Option<RegistryCredentials>> {
        if let (Ok(username), Ok(password)) = (std::env::var(USERNAME_ENV), std::env::var(PASSWORD_ENV)) {
            return Ok(Some(RegistryCredentials { username, password }));
        }
        let path = match &self.docker_config {
            Some(path) => path.clone(),
            None => match std::env::var_os("DOCKER_CONFIG")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")))
            {
                Some(dir) if dir.join("config.json").is_file() => dir.join("config.json"),
                _ => return Ok(None),
            },
        };
        let config = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        docker_config::credentials_for(&config, registry).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// A client for the registry of `reference`.
    pub fn registry(&self, reference: &Reference) -> anyhow::Result<Registry> {
        Ok(Registry::new(self.plain_http, self.credentials(reference.registry())?.as_ref()))
    }

    /// An OCI policy source for `reference`, requiring a signature by `public_keys` when any.
    pub fn source(&self, reference: &str, public_keys: Vec<String>) -> anyhow::Result<OciSource> {
        let parsed = reference_arg(reference)?;
        Ok(OciSource {
            reference: parsed.whole(),
            plain_http: self.plain_http,
            credentials: self.credentials(parsed.registry())?,
            public_keys,
        })
    }
}

/// A reference argument (with or without `oci://`).
pub fn reference_arg(text: &str) -> anyhow::Result<Reference> {
    parse_reference(text).map_err(|e| anyhow::anyhow!(e))
}
