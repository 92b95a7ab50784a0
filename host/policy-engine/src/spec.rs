//! A scale set's policy settings (`spec.policy` of an AutoscalingRunnerSet, the listener's policy block).

use serde::{Deserialize, Serialize};

use crate::limits::PolicyLimits;
use crate::pod_patch::PodPermissions;
use crate::source::PolicySource;

/// What to do when the policy fails (trap, deadline, error, invalid output, open breaker).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailurePolicy {
    /// Decide with the native built-in ARC formula (the default).
    #[default]
    Fallback,
    /// Keep the last good decision (without draining); ARC's formula when there is none yet.
    HoldLast,
    /// Report the error and let the caller act on nothing.
    Fail,
}

/// The policy of one scale set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySpec {
    /// Where the policy comes from.
    pub source: PolicySource,
    /// Free-form config handed to `configure` as JSON.
    #[serde(default)]
    pub config: serde_json::Value,
    /// What happens when the policy fails.
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    /// Sandbox limits.
    #[serde(default)]
    pub limits: PolicyLimits,
    /// Link a deny-all WASI (no files, env, network or stdio) for policies built by JS/Python toolchains.
    #[serde(default)]
    pub allow_wasi: bool,
    /// A second policy run alongside on every decision, logged and counted but never acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<Box<PolicySpec>>,
    /// What the policy may change on runner pods, as the cluster admin granted.
    #[serde(default)]
    pub permissions: PodPermissions,
}

impl PolicySpec {
    /// A built-in policy with no config.
    pub fn built_in(name: &str) -> Self {
        PolicySpec {
            source: PolicySource::BuiltIn(name.into()),
            config: serde_json::Value::Null,
            failure_policy: FailurePolicy::default(),
            limits: PolicyLimits::default(),
            allow_wasi: false,
            shadow: None,
            permissions: PodPermissions::default(),
        }
    }

    /// The config as the JSON text `configure` receives (`null` when unset).
    pub fn config_json(&self) -> String {
        self.config.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_reads_the_crd_shape() {
        let spec: PolicySpec = serde_json::from_str(
            r#"{"source": {"builtIn": "warm-pool"}, "config": {"scaleFactor": 0.5},
                "failurePolicy": "HoldLast", "limits": {"timeoutMs": 50},
                "shadow": {"source": {"builtIn": "arc-default"}}}"#,
        )
        .unwrap();
        assert_eq!(spec.failure_policy, FailurePolicy::HoldLast);
        assert_eq!(spec.limits.timeout_ms, 50);
        assert_eq!(spec.config_json(), r#"{"scaleFactor":0.5}"#);
        assert!(spec.shadow.is_some());
        assert!(serde_json::from_str::<PolicySpec>(r#"{"source": {"builtIn": "x"}, "failure": "Fail"}"#).is_err());
    }
}
