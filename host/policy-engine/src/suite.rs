//! Table-driven policy tests (`gha-autoscaler policy test cases.yaml`), run with production limits.
//!
//! ```yaml
//! policy: warm-pool              # a built-in name, a .wasm path (relative to the suite file) or an http(s) URL
//! config: {scaleFactor: 0.5}
//! cases:
//!   - name: extra runners follow load
//!     decide:                    # a sequence: previous decision and state flow from step to step
//!       - input: {statistics: {assignedJobs: 4}, bounds: {minRunners: 1, maxRunners: 10}}
//!         expect: {desiredRunners: 7, drain: false}
//!   - name: idle runners go oldest first
//!     select:
//!       input: {surplus: 1, candidates: [{name: a, createdUnixMs: 1, idleSinceUnixMs: 1}]}
//!       expect: [a]
//! ```

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::engine::PolicyEngine;
use crate::error::Result;
use crate::limits::PolicyLimits;
use crate::replay::Replayer;
use crate::scale_set_policy::ScaleSetPolicy;
use crate::source::PolicySource;
use crate::spec::{FailurePolicy, PolicySpec};
use crate::types::{JobEvent, ScaleDecision, ScaleDownInput, ScaleInput, ScaleSetRef};

/// A suite of cases for one policy and config.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestSuite {
    /// Built-in name, component path (relative to the suite) or URL.
    pub policy: String,
    /// sha256 pin for a URL.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The policy config.
    #[serde(default)]
    pub config: Value,
    /// Limits (production defaults when unset).
    #[serde(default)]
    pub limits: PolicyLimits,
    /// Link deny-all WASI (JS/Python policies).
    #[serde(default)]
    pub allow_wasi: bool,
    /// What the policy may change on runner pods (the scale set's `spec.policy.permissions`; defaults when unset).
    #[serde(default)]
    pub permissions: crate::pod_patch::PodPermissions,
    /// The scale set the policy is configured for.
    #[serde(default)]
    pub scale_set: ScaleSetRef,
    /// The cases.
    pub cases: Vec<TestCase>,
}

/// One case: a decide sequence, a selection, a pod mutation or a job event.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestCase {
    /// Shown in the report.
    pub name: String,
    /// Decisions in order.
    #[serde(default)]
    pub decide: Vec<DecideStep>,
    /// A scale-down selection.
    #[serde(default)]
    pub select: Option<SelectStep>,
    /// A pod mutation.
    #[serde(default)]
    pub mutate: Option<MutateStep>,
    /// A job event.
    #[serde(default)]
    pub job_event: Option<JobEventStep>,
}

/// One decision and what it must be.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecideStep {
    /// The input (previous and state filled from the prior step when unset).
    pub input: ScaleInput,
    /// Expected fields of the validated decision.
    #[serde(default)]
    pub expect: DecisionExpectation,
}

/// Expected fields of a decision; unset fields are not checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs, reason = "mirrors ScaleDecision")]
pub struct DecisionExpectation {
    pub desired_runners: Option<u32>,
    pub min_runners: Option<u32>,
    pub max_capacity: Option<u32>,
    pub drain: Option<bool>,
    pub requeue_after_ms: Option<u32>,
    /// A substring of the reason.
    pub reason_contains: Option<String>,
}

/// A selection and its expected names, in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SelectStep {
    /// The input.
    pub input: ScaleDownInput,
    /// Expected selection.
    pub expect: Vec<String>,
}

/// A pod mutation and values the result must contain.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MutateStep {
    /// Runner name.
    #[serde(default)]
    pub runner: String,
    /// PodTemplateSpec.
    pub template: Value,
    /// Every key here must be in the result with this value (objects compared recursively).
    pub expect: Value,
}

/// A job event and labels/annotations the result must contain.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobEventStep {
    /// The event.
    pub event: JobEvent,
    /// Expected labels and annotations, as `{labels: {...}, annotations: {...}}`.
    pub expect: Value,
}

/// Outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Case name.
    pub name: String,
    /// None when it passed.
    pub failure: Option<String>,
}

fn check<T: PartialEq + std::fmt::Debug>(what: &str, expected: Option<T>, actual: T, failures: &mut Vec<String>) {
    if let Some(expected) = expected
        && expected != actual
    {
        failures.push(format!("{what}: expected {expected:?}, got {actual:?}"));
    }
}

fn check_decision(step: usize, e: &DecisionExpectation, d: &ScaleDecision) -> Vec<String> {
    let mut failures = Vec::new();
    check("desiredRunners", e.desired_runners, d.desired_runners, &mut failures);
    check("minRunners", e.min_runners, d.min_runners, &mut failures);
    check("maxCapacity", e.max_capacity, d.max_capacity.unwrap_or_default(), &mut failures);
    check("drain", e.drain, d.drain, &mut failures);
    check("requeueAfterMs", e.requeue_after_ms.map(Some), d.requeue_after_ms, &mut failures);
    if let Some(needle) = &e.reason_contains
        && !d.reason.contains(needle.as_str())
    {
        failures.push(format!("reason {:?} does not contain {needle:?}", d.reason));
    }
    failures.into_iter().map(|f| format!("decide[{step}]: {f}")).collect()
}

/// Whether `actual` contains everything in `expected` (objects recursively, other values equal).
fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e.iter().all(|(k, v)| a.get(k).is_some_and(|av| contains(av, v))),
        (a, e) => a == e,
    }
}

async fn run_case(policy: &ScaleSetPolicy, case: &TestCase) -> Result<Vec<String>> {
    let mut failures = Vec::new();
    let mut replay = Replayer::new(policy);
    for (i, step) in case.decide.iter().enumerate() {
        let decided = replay.step(step.input.clone())?;
        failures.extend(check_decision(i, &step.expect, &decided.value));
    }
    if let Some(select) = &case.select {
        let selected = policy.select(&select.input)?.value;
        if selected != select.expect {
            failures.push(format!("select: expected {:?}, got {selected:?}", select.expect));
        }
    }
    if let Some(mutate) = &case.mutate {
        let pod = policy.mutate_runner_pod(&mutate.runner, &mutate.template)?.value;
        if !contains(&pod, &mutate.expect) {
            failures.push(format!("mutate: {pod} does not contain {}", mutate.expect));
        }
    }
    if let Some(step) = &case.job_event {
        let metadata = policy.on_job_event(&step.event)?.value;
        let as_map = |pairs: &[(String, String)]| -> Value {
            Value::Object(pairs.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
        };
        let actual =
            serde_json::json!({"labels": as_map(&metadata.labels), "annotations": as_map(&metadata.annotations)});
        if !contains(&actual, &step.expect) {
            failures.push(format!("jobEvent: {actual} does not contain {}", step.expect));
        }
    }
    Ok(failures)
}

/// Runs a suite. Policy failures fail the case (failure policy `Fail`): a test never passes on the fallback.
///
/// # Errors
/// When the policy cannot be loaded or configured.
pub async fn run_suite(engine: &Arc<PolicyEngine>, suite: &TestSuite, base_dir: &Path) -> Result<Vec<CaseResult>> {
    let source = match PolicySource::from_arg(&suite.policy, suite.sha256.clone()) {
        PolicySource::File(path) if path.is_relative() => PolicySource::File(base_dir.join(path)),
        other => other,
    };
    let spec = PolicySpec {
        source,
        config: suite.config.clone(),
        failure_policy: FailurePolicy::Fail,
        limits: suite.limits,
        allow_wasi: suite.allow_wasi,
        shadow: None,
        permissions: suite.permissions.clone(),
    };
    let mut results = Vec::new();
    for case in &suite.cases {
        // A fresh instance per case, so cases are independent.
        let policy = ScaleSetPolicy::load(engine, suite.scale_set.clone(), spec.clone()).await?;
        let failure = match run_case(&policy, case).await {
            Ok(failures) if failures.is_empty() => None,
            Ok(failures) => Some(failures.join("; ")),
            Err(e) => Some(e.to_string()),
        };
        results.push(CaseResult { name: case.name.clone(), failure });
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn containment_is_recursive_for_objects_and_exact_for_the_rest() {
        let actual = json!({"a": {"b": 1, "c": [1, 2]}, "d": "x"});
        assert!(contains(&actual, &json!({"a": {"b": 1}})));
        assert!(contains(&actual, &json!({"a": {"c": [1, 2]}})));
        assert!(!contains(&actual, &json!({"a": {"c": [1]}})));
        assert!(!contains(&actual, &json!({"e": null})));
    }
}
