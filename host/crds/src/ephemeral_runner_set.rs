//! EphemeralRunnerSet: the runners of a scale set, scaled by the listener through `replicas` and `patchID`.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::ResourceMeta;
use crate::ephemeral_runner::EphemeralRunnerSpec;

/// Desired runners and their template.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "actions.github.com",
    version = "v1alpha1",
    kind = "EphemeralRunnerSet",
    namespaced,
    status = "EphemeralRunnerSetStatus",
    printcolumn = r#"{"name":"DesiredReplicas","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"CurrentReplicas","type":"integer","jsonPath":".status.currentReplicas"}"#,
    printcolumn = r#"{"name":"Pending Runners","type":"integer","jsonPath":".status.pendingEphemeralRunners"}"#,
    printcolumn = r#"{"name":"Running Runners","type":"integer","jsonPath":".status.runningEphemeralRunners"}"#,
    printcolumn = r#"{"name":"Finished Runners","type":"integer","jsonPath":".status.finishedEphemeralRunners"}"#,
    printcolumn = r#"{"name":"Deleting Runners","type":"integer","jsonPath":".status.deletingEphemeralRunners"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct EphemeralRunnerSetSpec {
    /// Desired runners (absent = 0: the listener's merge patch deletes the field for 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// The listener's patch sequence; 0 means scale-down is allowed.
    #[serde(default, rename = "patchID")]
    pub patch_id: i64,
    /// Template of each runner.
    #[serde(default)]
    pub ephemeral_runner_spec: EphemeralRunnerSpec,
    /// Metadata for the EphemeralRunners created.
    pub ephemeral_runner_metadata: Option<ResourceMeta>,
}

/// Observed state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs, reason = "ARC's field names; see the reference")]
pub struct EphemeralRunnerSetStatus {
    pub current_replicas: Option<i32>,
    pub pending_ephemeral_runners: Option<i32>,
    pub running_ephemeral_runners: Option<i32>,
    pub failed_ephemeral_runners: Option<i32>,
    /// gha-autoscaler: runners whose job is done, not yet removed (ARC prints the column, never fills it).
    pub finished_ephemeral_runners: Option<i32>,
    /// gha-autoscaler: runners being deleted (ARC prints the column, never fills it).
    pub deleting_ephemeral_runners: Option<i32>,
    pub phase: Option<String>,
}
