//! `spec.policy` of an AutoscalingRunnerSet: gha-autoscaler's addition, optional (absent = `arc-default`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the policy component comes from: exactly one of the fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicySourceSpec {
    /// A policy shipped in the binary: `arc-default`, `warm-pool`, `pod-shaper`.
    pub built_in: Option<String>,
    /// A component stored in a ConfigMap (`binaryData`).
    pub config_map: Option<PolicyConfigMapRef>,
    /// A component served over http(s), pinned by sha256.
    pub url: Option<PolicyUrl>,
    /// A Wasm OCI artifact in a registry.
    pub oci: Option<PolicyOci>,
}

/// A policy published to an OCI registry (`gha-autoscaler policy push`, or any Wasm OCI artifact tool).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyOci {
    /// `registry/repository:tag` or `registry/repository@sha256:…`. A tag is resolved to its digest (shown in
    /// `status.policyReference`; listeners pull that digest) and re-resolved every `refreshSeconds`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Docker config Secrets (`kubernetes.io/dockerconfigjson`) in the scale set's namespace holding the
    /// registry's credentials.
    pub image_pull_secrets: Option<Vec<k8s_openapi::api::core::v1::LocalObjectReference>>,
    /// Plain HTTP instead of HTTPS (a registry inside the cluster without TLS).
    pub plain_http: Option<bool>,
    /// How often a tag is re-resolved, seconds (default 300, at least 10).
    pub refresh_seconds: Option<u32>,
    /// Require a cosign signature by one of these keys.
    pub verify: Option<PolicyVerify>,
}

/// Signature verification of an OCI policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyVerify {
    /// PEM public key(s) (ECDSA P-256, as `cosign generate-key-pair` or `gha-autoscaler policy
    /// generate-key-pair` write); a signature by any of them is accepted.
    pub public_key: String,
}

/// A ConfigMap key holding a component.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyConfigMapRef {
    /// ConfigMap name (same namespace).
    pub name: String,
    /// Key in `binaryData` (default `policy.wasm`).
    pub key: Option<String>,
}

/// A URL and its pinned digest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyUrl {
    /// http(s) URL.
    pub url: String,
    /// Hex sha256 of the component (required).
    pub sha256: String,
}

/// Sandbox limits of a scale set's policy (`spec.policy.limits`); unset fields take the defaults, which follow
/// the measured numbers in the design notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PolicyLimits {
    /// Linear memory cap per instance, MiB (default 64, at most 256).
    #[serde(rename = "memoryMiB")]
    pub memory_mib: u32,
    /// Deadline for `decide`, `select`, `on-job-event` and `info`, ms (default 100, at most 1000).
    pub timeout_ms: u32,
    /// Deadline for `configure` and `mutate-runner-pod`, ms (default 500, at most 2000).
    pub configure_timeout_ms: u32,
    /// Largest state a decision may carry, bytes (default 4096, at most 65536).
    pub max_state_bytes: u32,
    /// Shortest `requeue-after` honoured, ms (default 1000, at least 1000).
    pub min_requeue_ms: u32,
    /// Most direction changes (a drain after a raise of desired runners) within a minute (default 6, 1..=1000);
    /// past it a drain waits, so a policy flipping between scale-up and drain cannot delete what it just created.
    pub max_direction_changes_per_minute: u32,
    /// Most runners the policy may add to its desired count within a minute, beyond ARC's own target (minimum +
    /// assigned jobs, which is never held back). 0 (default) = twice maxRunners, at least 10.
    pub max_scale_up_per_minute: u32,
}

impl Default for PolicyLimits {
    fn default() -> Self {
        PolicyLimits {
            memory_mib: 64,
            timeout_ms: 100,
            configure_timeout_ms: 500,
            max_state_bytes: 4096,
            min_requeue_ms: 1000,
            max_direction_changes_per_minute: 6,
            max_scale_up_per_minute: 0,
        }
    }
}

impl PolicyLimits {
    /// Checks every limit is within its range.
    ///
    /// # Errors
    /// The first field out of range, named.
    pub fn validate(&self) -> Result<(), String> {
        let check = |name: &str, value: u32, min: u32, max: u32| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(format!("{name} must be within {min}..={max}, got {value}"))
            }
        };
        check("memoryMiB", self.memory_mib, 2, 256)?;
        check("timeoutMs", self.timeout_ms, 1, 1000)?;
        check("configureTimeoutMs", self.configure_timeout_ms, 1, 2000)?;
        check("maxStateBytes", self.max_state_bytes, 0, 65536)?;
        check("minRequeueMs", self.min_requeue_ms, 1000, 3_600_000)?;
        check("maxDirectionChangesPerMinute", self.max_direction_changes_per_minute, 1, 1000)?;
        check("maxScaleUpPerMinute", self.max_scale_up_per_minute, 0, 1_000_000)
    }

    /// The scale-up budget per minute for a scale set of at most `max_runners`.
    pub fn scale_up_per_minute(&self, max_runners: u32) -> u32 {
        match self.max_scale_up_per_minute {
            0 => max_runners.saturating_mul(2).max(10),
            n => n,
        }
    }
}

fn free_json(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"x-kubernetes-preserve-unknown-fields": true})
}

/// The scale set's policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpecCr {
    /// Where the component comes from.
    pub source: PolicySourceSpec,
    /// Free-form config handed to the policy's `configure`.
    #[schemars(schema_with = "free_json")]
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// `Fallback` (ARC's formula; default), `HoldLast` or `Fail`.
    pub failure_policy: Option<String>,
    /// Sandbox limits.
    pub limits: Option<PolicyLimits>,
    /// Link a deny-all WASI (JS/Python policies).
    pub allow_wasi: Option<bool>,
    /// A policy run alongside, logged and counted, never acted on.
    pub shadow: Option<PolicyShadowSpec>,
    /// What the policy may change on runner pods (absent: the runner container's resources and placement only).
    pub permissions: Option<PodPermissions>,
}

/// What a policy may change on a runner pod: granted by the cluster admin in the scale set's spec, never by the
/// policy. Patterns match whole strings, `*` standing for any run of characters and `?` for one.
///
/// Whatever is granted, a policy never touches init containers, privileged containers, the controller's own
/// labels and annotations (`actions.github.com/*`, `actions-ephemeral-runner`, `pod-template-hash`, `runner-pod`),
/// or env names starting `LD_`, `DOCKER_`, `ACTIONS_`, `GITHUB_` or `RUNNER_`; and nothing outside the pod patch
/// allowlist (security contexts, volumes, service accounts, host namespaces, commands) is grantable at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct PodPermissions {
    /// Containers the policy may shape (`resources`, `imagePullPolicy`; `image` and `env` as granted below).
    /// Default: `[runner]`.
    pub containers: Vec<String>,
    /// Images a policy may set on those containers, e.g. `ghcr.io/actions/actions-runner:*`. Default: none.
    pub images: Vec<String>,
    /// Env var names a policy may set on those containers, e.g. `POLICY_*`. Default: none.
    pub env: Vec<String>,
    /// Label and annotation keys under Kubernetes' domains (`kubernetes.io`, `k8s.io` and their subdomains) a
    /// policy may set. Default: `[cluster-autoscaler.kubernetes.io/safe-to-evict]`.
    pub metadata_keys: Vec<String>,
    /// Priority classes a policy may set. Default: none.
    pub priority_classes: Vec<String>,
    /// Schedulers a policy may set. Default: none.
    pub scheduler_names: Vec<String>,
    /// Whether placement may reach control-plane nodes (their node-role labels in a node selector or affinity,
    /// tolerations of their taints, a toleration of every taint). Default: false.
    pub control_plane: bool,
}

impl Default for PodPermissions {
    fn default() -> Self {
        PodPermissions {
            containers: vec!["runner".into()],
            images: Vec::new(),
            env: Vec::new(),
            metadata_keys: vec!["cluster-autoscaler.kubernetes.io/safe-to-evict".into()],
            priority_classes: Vec::new(),
            scheduler_names: Vec::new(),
            control_plane: false,
        }
    }
}

/// A shadow policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyShadowSpec {
    /// Where the component comes from.
    pub source: PolicySourceSpec,
    /// Its config.
    #[schemars(schema_with = "free_json")]
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_out_of_range_are_named() {
        let err = PolicyLimits { memory_mib: 1024, ..Default::default() }.validate().unwrap_err();
        assert!(err.contains("memoryMiB"), "{err}");
        assert!(PolicyLimits::default().validate().is_ok());
    }

    #[test]
    fn limits_read_camel_case_and_reject_unknown_fields() {
        let limits: PolicyLimits = serde_json::from_str(r#"{"memoryMiB": 32, "timeoutMs": 50}"#).unwrap();
        assert_eq!((limits.memory_mib, limits.timeout_ms, limits.configure_timeout_ms), (32, 50, 500));
        assert!(serde_json::from_str::<PolicyLimits>(r#"{"fuel": 1}"#).is_err());
    }
}
