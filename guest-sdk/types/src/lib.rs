//! Plain Rust mirrors of the records in `wit/types.wit` (package `gha-autoscaler:policy@0.2.0`).
//!
//! Both sides of the sandbox speak these types: the guest SDK converts them to and from the `wit-bindgen`
//! bindings, the host's policy engine to and from the `wasmtime` bindings. They also serialise to JSON (camelCase)
//! for `gha-autoscaler policy run`/`test` inputs and recorded traces. No Wasm dependency lives here, so policy
//! logic written against these types unit-tests natively.
#![deny(missing_docs)]

use serde::{Deserialize, Serialize};

mod convert;
mod job_events;

pub use job_events::{JobEventRef, JobEvents, JobEventsBuilder, NO_CONCLUSION};

/// Extensible key/value pairs (WIT `attributes`).
pub type Attributes = Vec<(String, String)>;

/// Looks a key up in an attribute list.
pub fn attribute<'a>(attributes: &'a Attributes, key: &str) -> Option<&'a str> {
    attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The runner scale set a policy instance serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScaleSetRef {
    /// Namespace of the AutoscalingRunnerSet.
    pub namespace: String,
    /// Name of the AutoscalingRunnerSet.
    pub name: String,
    /// Runner scale set id on the Actions service (0 before registration).
    pub id: u64,
    /// Runner group name.
    pub runner_group: String,
    /// Extension data (scale-set labels and the like).
    pub attributes: Attributes,
}

/// Scale set statistics from the Actions service's last message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[allow(missing_docs, reason = "field names are the Actions service's statistics")]
pub struct JobStatistics {
    pub available_jobs: u32,
    pub acquired_jobs: u32,
    pub assigned_jobs: u32,
    pub running_jobs: u32,
    pub registered_runners: u32,
    pub busy_runners: u32,
    pub idle_runners: u32,
}

/// What the EphemeralRunnerSet currently has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunnerCounts {
    /// pending + running + failed.
    pub current: u32,
    /// Runners whose pod is not running yet.
    pub pending: u32,
    /// Runners whose pod runs.
    pub running: u32,
    /// Failed runners (they still consume capacity, as in ARC).
    pub failed: u32,
}

/// Scale set bounds from the AutoscalingRunnerSet spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bounds {
    /// `spec.minRunners`.
    pub min_runners: u32,
    /// `spec.maxRunners`.
    pub max_runners: u32,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds { min_runners: 0, max_runners: u32::MAX }
    }
}

impl Bounds {
    /// Clamps `value` into `[min_runners, max_runners]`.
    pub fn clamp(&self, value: u32) -> u32 {
        value.clamp(self.min_runners, self.max_runners.max(self.min_runners))
    }
}

/// The previous decision, after the host validated and clamped it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[allow(missing_docs, reason = "mirrors ScaleDecision")]
pub struct PreviousDecision {
    pub desired_runners: u32,
    pub min_runners: u32,
    pub max_capacity: u32,
    pub drain: bool,
    pub decided_unix_ms: u64,
}

/// Everything `scaler.decide` sees.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScaleInput {
    /// Wall clock of the decision, milliseconds since the Unix epoch.
    pub now_unix_ms: u64,
    /// Latest statistics.
    pub statistics: JobStatistics,
    /// EphemeralRunnerSet counts.
    pub runners: RunnerCounts,
    /// Scale set bounds.
    pub bounds: Bounds,
    /// None on a listener's first decision.
    pub previous: Option<PreviousDecision>,
    /// JobStarted/JobCompleted events handled since the previous decision.
    pub job_events_since_previous: u32,
    /// The job messages handled since the previous decision, oldest first, at most [`MAX_JOB_EVENTS`].
    pub job_events: JobEvents,
    /// Job messages since the previous decision that `job_events` left out.
    pub job_events_dropped: u32,
    /// Opaque state returned by the previous decision (after a listener restart, the last state it persisted).
    #[serde(with = "state_bytes")]
    pub state: Vec<u8>,
    /// Extension data.
    pub attributes: Attributes,
}

/// The four decisions the host acts on, plus scheduling hints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScaleDecision {
    /// Runners the EphemeralRunnerSet should have.
    pub desired_runners: u32,
    /// Capacity advertised to GitHub; None means `bounds.max_runners`.
    pub max_capacity: Option<u32>,
    /// The steady-state floor.
    pub min_runners: u32,
    /// Whether surplus idle runners may be removed now (patchID 0).
    pub drain: bool,
    /// Decide again after this delay even without a message.
    pub requeue_after_ms: Option<u32>,
    /// Human-readable reason.
    pub reason: String,
    /// State handed back in the next input.
    #[serde(with = "state_bytes")]
    pub state: Vec<u8>,
    /// Extension data.
    pub attributes: Attributes,
}

impl ScaleDecision {
    /// The `previous` record that the next input carries for this decision.
    pub fn to_previous(&self, decided_unix_ms: u64, bounds: Bounds) -> PreviousDecision {
        PreviousDecision {
            desired_runners: self.desired_runners,
            min_runners: self.min_runners,
            max_capacity: self.max_capacity.unwrap_or(bounds.max_runners),
            drain: self.drain,
            decided_unix_ms,
        }
    }
}

/// Lifecycle phase of a runner offered for removal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RunnerPhase {
    /// The runner's pod has not started yet.
    #[default]
    Pending,
    /// The runner's pod runs.
    Running,
}

/// A runner the host could remove.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunnerInfo {
    /// EphemeralRunner name.
    pub name: String,
    /// Pending or running.
    pub phase: RunnerPhase,
    /// Creation time.
    pub created_unix_ms: u64,
    /// None while busy.
    pub idle_since_unix_ms: Option<u64>,
    /// Node the pod runs on.
    pub node_name: Option<String>,
    /// Extension data.
    pub attributes: Attributes,
}

impl RunnerInfo {
    /// An idle runner, idle since it was created.
    pub fn idle(name: impl Into<String>, phase: RunnerPhase, created_unix_ms: u64) -> Self {
        RunnerInfo {
            name: name.into(),
            phase,
            created_unix_ms,
            idle_since_unix_ms: Some(created_unix_ms),
            ..Default::default()
        }
    }

    /// A runner busy with a job.
    pub fn busy(name: impl Into<String>, phase: RunnerPhase, created_unix_ms: u64) -> Self {
        RunnerInfo { idle_since_unix_ms: None, ..RunnerInfo::idle(name, phase, created_unix_ms) }
    }

    /// A runner is busy while it has a job.
    pub fn is_busy(&self) -> bool {
        self.idle_since_unix_ms.is_none()
    }
}

/// Input of `scale-down.select`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScaleDownInput {
    /// Wall clock, milliseconds since the Unix epoch.
    pub now_unix_ms: u64,
    /// How many runners the host wants to remove.
    pub surplus: u32,
    /// Runners that could go.
    pub candidates: Vec<RunnerInfo>,
    /// Extension data.
    pub attributes: Attributes,
}

/// Most job events one `scaler.decide` receives; the rest are counted in [`ScaleInput::job_events_dropped`].
pub const MAX_JOB_EVENTS: usize = 1000;

/// Phase of a job event: which Actions-service message it came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum JobPhase {
    /// JobAvailable: the job was queued for the scale set.
    Available,
    /// JobAssigned: the scale set acquired it.
    Assigned,
    /// JobStarted: it started on a runner.
    #[default]
    Started,
    /// JobCompleted: it finished.
    Completed,
}

/// A job message about one of the scale set's jobs. `on-job-event` sees `Started` and `Completed`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JobEvent {
    /// Which message.
    pub phase: JobPhase,
    /// The runner request id: one job's messages share it.
    pub job_id: u64,
    /// The runner running the job; empty before `Started`.
    pub runner_name: String,
    /// `owner/repo`.
    pub repository: String,
    /// `owner/repo/.github/workflows/file.yml@ref`.
    pub workflow_ref: String,
    /// The workflow run (0 when unknown): jobs of one run share it.
    pub workflow_run_id: u64,
    /// The job's name as shown in the run, e.g. `test (3/40)`.
    pub job_display_name: String,
    /// What triggered the run: `push`, `pull_request`, `merge_group`, ...
    pub event_name: String,
    /// The job's `runs-on` labels.
    pub labels: Vec<String>,
    /// When the job was queued (Unix ms).
    pub queued_unix_ms: Option<u64>,
    /// When it started on its runner.
    pub started_unix_ms: Option<u64>,
    /// When it finished.
    pub finished_unix_ms: Option<u64>,
    /// Conclusion of a completed job ("succeeded", "failed", "canceled", ...).
    pub conclusion: Option<String>,
    /// Extension data.
    pub attributes: Attributes,
}

/// Labels and annotations to set on a runner pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodMetadata {
    /// Pod labels to set.
    pub labels: Attributes,
    /// Pod annotations to set.
    pub annotations: Attributes,
}

/// Why a hook failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "message")]
pub enum PolicyError {
    /// The policy config is invalid.
    InvalidConfig(String),
    /// The hook's input is not something the policy can work with.
    InvalidInput(String),
    /// Anything else.
    Internal(String),
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyError::InvalidConfig(m) => write!(f, "invalid config: {m}"),
            PolicyError::InvalidInput(m) => write!(f, "invalid input: {m}"),
            PolicyError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for PolicyError {}

/// What a policy says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicyInfo {
    /// Policy name.
    pub name: String,
    /// Policy version.
    pub version: String,
    /// Version of the SDK the policy was built with.
    pub sdk_version: String,
}

/// State bytes serialise as a UTF-8 string when they are one (policies usually store JSON), else as a byte array.
mod state_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(bytes) {
            Ok(text) => s.serialize_str(text),
            Err(_) => s.collect_seq(bytes),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Text(String),
        Bytes(Vec<u8>),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(match Repr::deserialize(d)? {
            Repr::Text(text) => text.into_bytes(),
            Repr::Bytes(bytes) => bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_input_reads_camel_case_json_with_defaults() {
        let input: ScaleInput = serde_json::from_str(
            r#"{"nowUnixMs": 5, "statistics": {"assignedJobs": 3}, "bounds": {"minRunners": 1, "maxRunners": 4}, "state": "{\"a\":1}"}"#,
        )
        .unwrap();
        assert_eq!(input.statistics.assigned_jobs, 3);
        assert_eq!(input.bounds, Bounds { min_runners: 1, max_runners: 4 });
        assert_eq!(input.state, br#"{"a":1}"#);
        assert!(input.previous.is_none());
    }

    #[test]
    fn binary_state_round_trips_as_a_byte_array() {
        let decision = ScaleDecision { state: vec![0xff, 0], ..Default::default() };
        let json = serde_json::to_string(&decision).unwrap();
        assert!(json.contains(r#""state":[255,0]"#));
        assert_eq!(serde_json::from_str::<ScaleDecision>(&json).unwrap(), decision);
    }

    #[test]
    fn bounds_clamp_tolerates_min_above_max() {
        assert_eq!(Bounds { min_runners: 2, max_runners: 5 }.clamp(9), 5);
        assert_eq!(Bounds { min_runners: 2, max_runners: 5 }.clamp(0), 2);
        assert_eq!(Bounds { min_runners: 6, max_runners: 5 }.clamp(0), 6);
    }
}
