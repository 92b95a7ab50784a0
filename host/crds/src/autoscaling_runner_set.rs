//! AutoscalingRunnerSet: what users apply (one per runner scale set).

use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{MetricsConfig, ProxyConfig, ResourceMeta, TlsConfig, VaultConfig};
use crate::policy::PolicySpecCr;

/// A runner scale set and how its runners look.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "actions.github.com",
    version = "v1alpha1",
    kind = "AutoscalingRunnerSet",
    namespaced,
    status = "AutoscalingRunnerSetStatus",
    printcolumn = r#"{"name":"Minimum Runners","type":"integer","jsonPath":".spec.minRunners"}"#,
    printcolumn = r#"{"name":"Maximum Runners","type":"integer","jsonPath":".spec.maxRunners"}"#,
    printcolumn = r#"{"name":"Current Runners","type":"integer","jsonPath":".status.currentRunners"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Pending Runners","type":"integer","jsonPath":".status.pendingEphemeralRunners"}"#,
    printcolumn = r#"{"name":"Running Runners","type":"integer","jsonPath":".status.runningEphemeralRunners"}"#,
    printcolumn = r#"{"name":"Finished Runners","type":"integer","jsonPath":".status.finishedEphemeralRunners"}"#,
    printcolumn = r#"{"name":"Deleting Runners","type":"integer","jsonPath":".status.deletingEphemeralRunners"}"#,
    printcolumn = r#"{"name":"Policy","type":"string","jsonPath":".status.policy"}"#
)]
#[serde(rename_all = "camelCase", default)]
#[allow(missing_docs, reason = "ARC's field names; see the reference")]
pub struct AutoscalingRunnerSetSpec {
    pub github_config_url: String,
    pub github_config_secret: String,
    pub runner_group: Option<String>,
    pub runner_scale_set_name: Option<String>,
    pub runner_scale_set_labels: Option<Vec<String>>,
    pub proxy: Option<ProxyConfig>,
    #[serde(rename = "githubServerTLS")]
    pub github_server_tls: Option<TlsConfig>,
    pub vault_config: Option<VaultConfig>,
    pub template: PodTemplateSpec,
    pub listener_template: Option<PodTemplateSpec>,
    pub listener_metrics: Option<MetricsConfig>,
    pub autoscaling_listener: Option<ResourceMeta>,
    pub listener_service_account_metadata: Option<ResourceMeta>,
    pub listener_role_metadata: Option<ResourceMeta>,
    pub listener_role_binding_metadata: Option<ResourceMeta>,
    pub listener_config_secret_metadata: Option<ResourceMeta>,
    pub ephemeral_runner_set_metadata: Option<ResourceMeta>,
    pub ephemeral_runner_metadata: Option<ResourceMeta>,
    pub ephemeral_runner_config_secret_metadata: Option<ResourceMeta>,
    #[schemars(range(min = 0))]
    pub max_runners: Option<i32>,
    #[schemars(range(min = 0))]
    pub min_runners: Option<i32>,
    /// gha-autoscaler: the Wasm policy deciding this scale set (absent = `arc-default`).
    pub policy: Option<PolicySpecCr>,
}

/// Observed state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs, reason = "ARC's field names; see the reference")]
pub struct AutoscalingRunnerSetStatus {
    pub current_runners: Option<i32>,
    pub phase: Option<String>,
    pub pending_ephemeral_runners: Option<i32>,
    pub running_ephemeral_runners: Option<i32>,
    pub failed_ephemeral_runners: Option<i32>,
    /// gha-autoscaler: the EphemeralRunnerSet's finished runners (ARC prints the column, never fills it).
    pub finished_ephemeral_runners: Option<i32>,
    /// gha-autoscaler: the EphemeralRunnerSet's runners being deleted (ARC prints the column, never fills it).
    pub deleting_ephemeral_runners: Option<i32>,
    /// gha-autoscaler: the acting policy (`name version sha256`).
    pub policy: Option<String>,
    /// gha-autoscaler: the acting policy's OCI reference pinned by digest (what its listeners pull).
    pub policy_reference: Option<String>,
    /// gha-autoscaler: conditions (PolicyResolved, PolicyConfigValid, VersionMismatch, ...).
    pub conditions: Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>,
}
