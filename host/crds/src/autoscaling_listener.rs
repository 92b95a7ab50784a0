//! AutoscalingListener: the listener pod of a scale set and what it needs.

use k8s_openapi::api::core::v1::{LocalObjectReference, PodTemplateSpec};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{MetricsConfig, ProxyConfig, ResourceMeta, TlsConfig, VaultConfig};
use crate::policy::PolicySpecCr;

/// One listener.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "actions.github.com",
    version = "v1alpha1",
    kind = "AutoscalingListener",
    namespaced,
    status = "AutoscalingListenerStatus",
    printcolumn = r#"{"name":"GitHub Configure URL","type":"string","jsonPath":".spec.githubConfigUrl"}"#,
    printcolumn = r#"{"name":"AutoscalingRunnerSet Namespace","type":"string","jsonPath":".spec.autoscalingRunnerSetNamespace"}"#,
    printcolumn = r#"{"name":"AutoscalingRunnerSet Name","type":"string","jsonPath":".spec.autoscalingRunnerSetName"}"#
)]
#[serde(rename_all = "camelCase", default)]
#[allow(missing_docs, reason = "ARC's field names; see the reference")]
pub struct AutoscalingListenerSpec {
    pub github_config_url: String,
    pub github_config_secret: String,
    pub runner_scale_set_id: i64,
    pub autoscaling_runner_set_namespace: String,
    pub autoscaling_runner_set_name: String,
    pub ephemeral_runner_set_name: String,
    pub max_runners: i32,
    pub min_runners: i32,
    pub image: String,
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
    pub proxy: Option<ProxyConfig>,
    #[serde(rename = "githubServerTLS")]
    pub github_server_tls: Option<TlsConfig>,
    pub vault_config: Option<VaultConfig>,
    pub metrics: Option<MetricsConfig>,
    pub template: Option<PodTemplateSpec>,
    pub config_secret_metadata: Option<ResourceMeta>,
    pub service_account_metadata: Option<ResourceMeta>,
    pub role_metadata: Option<ResourceMeta>,
    pub role_binding_metadata: Option<ResourceMeta>,
    /// gha-autoscaler: the policy the listener runs (resolved by the controller).
    pub policy: Option<PolicySpecCr>,
}

/// ARC keeps no listener status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AutoscalingListenerStatus {}
