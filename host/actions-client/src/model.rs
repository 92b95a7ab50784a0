//! JSON shapes of the GitHub API and the Actions service, with their field names as sent and received.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `{count, value}` list responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListResponse<T> {
    /// Number of items.
    #[serde(default)]
    pub count: usize,
    /// The items.
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
}

impl<T> From<Vec<T>> for ListResponse<T> {
    fn from(value: Vec<T>) -> Self {
        ListResponse { count: value.len(), value }
    }
}

/// A token with its expiry (`registration-token`, `access_tokens`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The token.
    pub token: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

/// `POST /actions/runner-registration` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationRequest {
    /// The config URL.
    pub url: String,
    /// Always `register`.
    pub runner_event: String,
}

/// `POST /actions/runner-registration` response: where the Actions service is and the admin token for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminConnection {
    /// Actions service base URL.
    pub url: Option<String>,
    /// Admin JWT.
    pub token: Option<String>,
}

/// A runner group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs, reason = "wire fields")]
pub struct RunnerGroup {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub is_default_group: bool,
}

/// A scale set label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// `System` for the scale set's own name, `User` otherwise.
    #[serde(rename = "type")]
    pub kind: String,
    /// The label.
    pub name: String,
}

impl Label {
    /// A `System` label.
    pub fn system(name: impl Into<String>) -> Self {
        Label { kind: "System".into(), name: name.into() }
    }
}

/// Scale set runner settings (sent as `RunnerSetting`, capital R).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunnerSetting {
    /// Runners never self-update.
    #[serde(default)]
    pub disable_update: bool,
}

/// Statistics of a scale set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[allow(missing_docs, reason = "wire fields")]
pub struct Statistics {
    pub total_available_jobs: u32,
    pub total_acquired_jobs: u32,
    pub total_assigned_jobs: u32,
    pub total_running_jobs: u32,
    pub total_registered_runners: u32,
    pub total_busy_runners: u32,
    pub total_idle_runners: u32,
}

/// A runner scale set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs, reason = "wire fields")]
pub struct RunnerScaleSet {
    #[serde(default)]
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub runner_group_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_group_name: Option<String>,
    #[serde(default)]
    pub labels: Vec<Label>,
    #[serde(rename = "RunnerSetting", default)]
    pub runner_setting: RunnerSetting,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_on: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_jit_config_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistics: Option<Statistics>,
}

/// Fields `PATCH /runnerscalesets/{id}` may change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunnerScaleSetPatch {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New runner group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_group_id: Option<i64>,
    /// New labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<Label>>,
}

/// A message session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// Session id (UUID).
    pub session_id: String,
    /// Who holds it (hostname).
    #[serde(default)]
    pub owner_name: String,
    /// The scale set.
    #[serde(default)]
    pub runner_scale_set: Option<RunnerScaleSet>,
    /// Long-poll URL (opaque).
    pub message_queue_url: String,
    /// Token for queue operations. Never logged.
    pub message_queue_access_token: String,
    /// Statistics at session creation.
    #[serde(default)]
    pub statistics: Option<Statistics>,
}

/// `POST /sessions` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSessionRequest {
    /// Who asks.
    pub owner_name: String,
}

/// Fields every job message carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[allow(missing_docs, reason = "wire fields")]
pub struct JobFields {
    pub runner_request_id: i64,
    pub repository_name: String,
    pub owner_name: String,
    pub job_id: String,
    pub job_workflow_ref: String,
    pub job_display_name: String,
    pub workflow_run_id: i64,
    pub event_name: String,
    pub request_labels: Vec<String>,
    pub queue_time: Option<DateTime<Utc>>,
    pub scale_set_assign_time: Option<DateTime<Utc>>,
    pub runner_assign_time: Option<DateTime<Utc>>,
    pub finish_time: Option<DateTime<Utc>>,
    /// `JobAvailable` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acquire_job_url: Option<String>,
    /// `JobStarted` / `JobCompleted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner_id: Option<i64>,
    /// `JobStarted` / `JobCompleted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner_name: Option<String>,
    /// `JobCompleted`: succeeded, failed, canceled...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// `generatejitconfig` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JitConfigRequest {
    /// Runner name.
    pub name: String,
    /// Work folder (`_work`).
    pub work_folder: String,
}

/// A runner as the service knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunnerReference {
    /// Runner id.
    pub id: i64,
    /// Runner name.
    pub name: String,
    /// Its scale set.
    #[serde(default)]
    pub runner_scale_set_id: i64,
}

/// `generatejitconfig` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JitConfig {
    /// The registered runner.
    pub runner: RunnerReference,
    /// Opaque config the runner starts with. Never logged.
    #[serde(rename = "encodedJITConfig")]
    pub encoded_jit_config: String,
}

/// Error body of the Actions service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ErrorBody {
    /// e.g. `GitHub.DistributedTask.WebApi.AgentExistsException`.
    pub type_name: String,
    /// Human-readable message.
    pub message: String,
}
