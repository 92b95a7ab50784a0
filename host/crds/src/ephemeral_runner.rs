//! EphemeralRunner: one runner, one JIT config, one pod, one job.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{ProxyConfig, ResourceMeta, TlsConfig, VaultConfig};

/// One runner.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "actions.github.com",
    version = "v1alpha1",
    kind = "EphemeralRunner",
    namespaced,
    status = "EphemeralRunnerStatus",
    printcolumn = r#"{"name":"GitHub Config URL","type":"string","jsonPath":".spec.githubConfigUrl"}"#,
    printcolumn = r#"{"name":"RunnerId","type":"number","jsonPath":".status.runnerId"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"JobRepository","type":"string","jsonPath":".status.jobRepositoryName"}"#,
    printcolumn = r#"{"name":"JobWorkflowRef","type":"string","jsonPath":".status.jobWorkflowRef"}"#,
    printcolumn = r#"{"name":"WorkflowRunId","type":"number","jsonPath":".status.workflowRunId"}"#,
    printcolumn = r#"{"name":"JobDisplayName","type":"string","jsonPath":".status.jobDisplayName"}"#,
    printcolumn = r#"{"name":"JobId","type":"string","jsonPath":".status.jobId"}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.message"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs, reason = "ARC's field names; see the reference")]
pub struct EphemeralRunnerSpec {
    pub github_config_url: String,
    pub github_config_secret: String,
    #[serde(rename = "githubServerTLS")]
    pub github_server_tls: Option<TlsConfig>,
    pub proxy: Option<ProxyConfig>,
    pub vault_config: Option<VaultConfig>,
    pub runner_scale_set_id: i64,
    pub proxy_secret_ref: Option<String>,
    pub ephemeral_runner_config_secret_metadata: Option<ResourceMeta>,
    /// The pod template's metadata (inline, as in ARC).
    pub metadata: Option<ObjectMeta>,
    /// The pod template's spec (inline, as in ARC).
    pub spec: Option<PodSpec>,
}

/// Observed state; the job fields are set by the listener on JobStarted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs, reason = "ARC's field names; see the reference")]
pub struct EphemeralRunnerStatus {
    pub ready: Option<bool>,
    pub phase: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub runner_id: Option<i64>,
    pub runner_name: Option<String>,
    /// Pod UID → time of the failure.
    pub failures: Option<BTreeMap<String, String>>,
    pub job_request_id: Option<i64>,
    pub job_id: Option<String>,
    pub job_repository_name: Option<String>,
    pub job_workflow_ref: Option<String>,
    pub workflow_run_id: Option<i64>,
    pub job_display_name: Option<String>,
}
