//! The listener's config file: ARC's JSON keys (`LISTENER_CONFIG_PATH`) plus the scale set's policy.

use gha_actions_client::Credentials;
use gha_policy_engine::PolicySpec;
use serde::{Deserialize, Serialize};

use crate::metrics::MetricsConfig;

/// ARC's listener config (`cmd/ghalistener/config`), plus `policy`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs, reason = "ARC's keys")]
pub struct ListenerConfig {
    pub configure_url: String,
    pub github_token: String,
    pub github_app_id: String,
    pub github_app_installation_id: i64,
    pub github_app_private_key: String,
    pub vault_type: String,
    pub vault_lookup_key: String,
    /// ARC's Azure Key Vault settings; refused (with `vault_type` and `vault_lookup_key`) by `validate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure_key_vault: Option<serde_json::Value>,
    pub ephemeral_runner_set_namespace: String,
    pub ephemeral_runner_set_name: String,
    pub max_runners: i64,
    pub min_runners: i64,
    pub runner_scale_set_id: i64,
    pub runner_scale_set_name: String,
    pub server_root_ca: String,
    pub log_level: String,
    pub log_format: String,
    pub metrics_addr: String,
    pub metrics_endpoint: String,
    /// Which metrics to serve, with which labels and buckets (ARC's `listenerMetrics`); absent = all.
    pub metrics: Option<MetricsConfig>,
    /// gha-autoscaler: the scale set's policy (absent = built-in `arc-default`).
    pub policy: Option<PolicySpec>,
    /// gha-autoscaler: how long to keep retrying a session conflict (seconds; default 600).
    pub session_conflict_timeout_seconds: Option<u64>,
    /// gha-autoscaler: the Kubernetes API server (default: in-cluster config).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_api_url: Option<String>,
    /// gha-autoscaler: write every decision as a JSON line to this file (`-` = stdout, where logs never go).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_log: Option<String>,
    /// gha-autoscaler: the scale set's attributes as policies see them (`label:<name>` = `true`, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policy_attributes: Vec<(String, String)>,
    /// gha-autoscaler: a directory of policies the controller already compiled (relative to the config file; the
    /// controller's Secret mounted beside the config), so the listener never runs the compiler. Native code: only
    /// from a producer as trusted as this binary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precompiled_policies: Option<std::path::PathBuf>,
    /// gha-autoscaler: the ConfigMap (in the EphemeralRunnerSet's namespace) the policy's state is kept in across
    /// restarts; none = state lives as long as the process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_state_config_map: Option<String>,
}

/// A config error naming the field.
#[derive(Debug, thiserror::Error)]
#[error("invalid listener config: {field}: {message}")]
pub struct ConfigError {
    /// The offending key.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { field, message: message.into() }
}

impl ListenerConfig {
    /// Parses the JSON text.
    ///
    /// # Errors
    /// Malformed JSON, or a config that fails [`ListenerConfig::validate`].
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: ListenerConfig = serde_json::from_str(text).map_err(|e| invalid("(file)", e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// ARC's checks: URL, ERS namespace and name, a scale set id, max ≥ min, and usable credentials.
    ///
    /// # Errors
    /// The first problem, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.configure_url.trim().is_empty() {
            return Err(invalid("configure_url", "is required"));
        }
        if self.ephemeral_runner_set_namespace.is_empty() {
            return Err(invalid("ephemeral_runner_set_namespace", "is required"));
        }
        if self.ephemeral_runner_set_name.is_empty() {
            return Err(invalid("ephemeral_runner_set_name", "is required"));
        }
        if self.runner_scale_set_id <= 0 {
            return Err(invalid("runner_scale_set_id", "must be a positive scale set id"));
        }
        if self.min_runners < 0 {
            return Err(invalid("min_runners", "must be >= 0"));
        }
        if self.max_runners < self.min_runners {
            return Err(invalid(
                "max_runners",
                format!("{} is below min_runners {}", self.max_runners, self.min_runners),
            ));
        }
        let vault = [
            ("vault_type", !self.vault_type.is_empty()),
            ("vault_lookup_key", !self.vault_lookup_key.is_empty()),
            ("azure_key_vault", self.azure_key_vault.as_ref().is_some_and(|v| !v.is_null())),
        ];
        if let Some((field, _)) = vault.into_iter().find(|(_, set)| *set) {
            return Err(invalid(field, "credentials from a vault are not supported; use github_token or a GitHub App"));
        }
        self.credentials().map(|_| ())
    }

    /// The credentials: a token, or a complete GitHub App.
    ///
    /// # Errors
    /// Neither, or an incomplete app.
    pub fn credentials(&self) -> Result<Credentials, ConfigError> {
        if !self.github_token.is_empty() {
            return Ok(Credentials::Token(self.github_token.clone()));
        }
        if self.github_app_id.is_empty() {
            return Err(invalid("github_token", "set github_token or github_app_id"));
        }
        if self.github_app_installation_id <= 0 {
            return Err(invalid("github_app_installation_id", "is required with github_app_id"));
        }
        if self.github_app_private_key.is_empty() {
            return Err(invalid("github_app_private_key", "is required with github_app_id"));
        }
        Ok(Credentials::App {
            app_id: self.github_app_id.clone(),
            installation_id: self.github_app_installation_id,
            private_key_pem: self.github_app_private_key.clone(),
        })
    }

    /// Resolves a policy file and the precompiled directory named relative to the config file against `dir` (the
    /// controller ships a ConfigMap-sourced component and precompiled policies beside the config).
    pub fn resolve_paths(&mut self, dir: &std::path::Path) {
        if let Some(path) = self.precompiled_policies.as_mut().filter(|p| p.is_relative()) {
            *path = dir.join(&*path);
        }
        let policies = self
            .policy
            .iter_mut()
            .flat_map(|p| std::iter::once(&mut p.source).chain(p.shadow.iter_mut().map(|s| &mut s.source)));
        for source in policies {
            if let gha_policy_engine::PolicySource::File(path) = source
                && path.is_relative()
            {
                *path = dir.join(&*path);
            }
        }
    }

    /// min and max as u32 (validated non-negative, capped).
    pub fn bounds(&self) -> (u32, u32) {
        let clamp = |v: i64| v.clamp(0, i64::from(i32::MAX)) as u32;
        (clamp(self.min_runners), clamp(self.max_runners))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> serde_json::Value {
        serde_json::json!({
            "configure_url": "https://github.com/acme", "github_token": "t",
            "ephemeral_runner_set_namespace": "ci", "ephemeral_runner_set_name": "ers",
            "runner_scale_set_id": 7, "min_runners": 1, "max_runners": 5
        })
    }

    #[test]
    fn a_valid_config_parses_with_its_policy() {
        let mut config = valid();
        config["policy"] = serde_json::json!({"source": {"builtIn": "warm-pool"}, "config": {"scaleFactor": 1}});
        let parsed = ListenerConfig::parse(&config.to_string()).unwrap();
        assert_eq!(parsed.bounds(), (1, 5));
        assert!(parsed.policy.is_some());
    }

    #[test]
    fn invalid_configs_name_the_field() {
        for (key, value, field) in [
            ("configure_url", serde_json::json!(""), "configure_url"),
            ("runner_scale_set_id", serde_json::json!(0), "runner_scale_set_id"),
            ("max_runners", serde_json::json!(0), "max_runners"),
            ("github_token", serde_json::json!(""), "github_token"),
            ("vault_type", serde_json::json!("azure_key_vault"), "vault_type"),
            ("vault_lookup_key", serde_json::json!("gh-app"), "vault_lookup_key"),
            ("azure_key_vault", serde_json::json!({"url": "https://v.vault.azure.net"}), "azure_key_vault"),
        ] {
            let mut config = valid();
            config[key] = value;
            let err = ListenerConfig::parse(&config.to_string()).unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
        assert_eq!(ListenerConfig::parse("{not json").unwrap_err().field, "(file)");
    }
}
