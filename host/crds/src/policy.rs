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

/// Sandbox limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyLimitsSpec {
    /// Linear memory cap, MiB (default 64, at most 256).
    #[serde(rename = "memoryMiB")]
    pub memory_mib: Option<u32>,
    /// Deadline of decide/select/on-job-event, ms (default 100, at most 1000).
    pub timeout_ms: Option<u32>,
    /// Deadline of configure/mutate, ms (default 500, at most 2000).
    pub configure_timeout_ms: Option<u32>,
    /// Largest decision state, bytes (default 4096).
    pub max_state_bytes: Option<u32>,
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
    pub limits: Option<PolicyLimitsSpec>,
    /// Link a deny-all WASI (JS/Python policies).
    pub allow_wasi: Option<bool>,
    /// A policy run alongside, logged and counted, never acted on.
    pub shadow: Option<PolicyShadowSpec>,
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
