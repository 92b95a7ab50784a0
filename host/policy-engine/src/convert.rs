//! Conversions between our plain types and the generated wasmtime bindings.

use crate::bindings::types as w;
use crate::types as t;

pub(crate) fn scale_set_ref(s: &t::ScaleSetRef) -> w::ScaleSetRef {
    w::ScaleSetRef {
        namespace: s.namespace.clone(),
        name: s.name.clone(),
        id: s.id,
        runner_group: s.runner_group.clone(),
        attributes: s.attributes.clone(),
    }
}

pub(crate) fn scale_input(i: &t::ScaleInput) -> w::ScaleInput {
    let s = i.statistics;
    w::ScaleInput {
        now_unix_ms: i.now_unix_ms,
        statistics: w::JobStatistics {
            available_jobs: s.available_jobs,
            acquired_jobs: s.acquired_jobs,
            assigned_jobs: s.assigned_jobs,
            running_jobs: s.running_jobs,
            registered_runners: s.registered_runners,
            busy_runners: s.busy_runners,
            idle_runners: s.idle_runners,
        },
        runners: w::RunnerCounts {
            current: i.runners.current,
            pending: i.runners.pending,
            running: i.runners.running,
            failed: i.runners.failed,
        },
        bounds: w::Bounds { min_runners: i.bounds.min_runners, max_runners: i.bounds.max_runners },
        previous: i.previous.map(|p| w::PreviousDecision {
            desired_runners: p.desired_runners,
            min_runners: p.min_runners,
            max_capacity: p.max_capacity,
            drain: p.drain,
            decided_unix_ms: p.decided_unix_ms,
        }),
        job_events_since_previous: i.job_events_since_previous,
        state: i.state.clone(),
        attributes: i.attributes.clone(),
    }
}

pub(crate) fn scale_decision(d: w::ScaleDecision) -> t::ScaleDecision {
    t::ScaleDecision {
        desired_runners: d.desired_runners,
        max_capacity: d.max_capacity,
        min_runners: d.min_runners,
        drain: d.drain,
        requeue_after_ms: d.requeue_after_ms,
        reason: d.reason,
        state: d.state,
        attributes: d.attributes,
    }
}

pub(crate) fn scale_down_input(i: &t::ScaleDownInput) -> w::ScaleDownInput {
    w::ScaleDownInput {
        now_unix_ms: i.now_unix_ms,
        surplus: i.surplus,
        candidates: i
            .candidates
            .iter()
            .map(|c| w::RunnerInfo {
                name: c.name.clone(),
                phase: match c.phase {
                    t::RunnerPhase::Pending => w::RunnerPhase::Pending,
                    t::RunnerPhase::Running => w::RunnerPhase::Running,
                },
                created_unix_ms: c.created_unix_ms,
                idle_since_unix_ms: c.idle_since_unix_ms,
                node_name: c.node_name.clone(),
                attributes: c.attributes.clone(),
            })
            .collect(),
        attributes: i.attributes.clone(),
    }
}

pub(crate) fn job_event(e: &t::JobEvent) -> w::JobEvent {
    w::JobEvent {
        phase: match e.phase {
            t::JobPhase::Started => w::JobPhase::Started,
            t::JobPhase::Completed => w::JobPhase::Completed,
        },
        runner_name: e.runner_name.clone(),
        repository: e.repository.clone(),
        workflow_ref: e.workflow_ref.clone(),
        job_display_name: e.job_display_name.clone(),
        conclusion: e.conclusion.clone(),
        attributes: e.attributes.clone(),
    }
}

pub(crate) fn pod_metadata(m: w::PodMetadata) -> t::PodMetadata {
    t::PodMetadata { labels: m.labels, annotations: m.annotations }
}

pub(crate) fn policy_info(i: w::PolicyInfo) -> t::PolicyInfo {
    t::PolicyInfo { name: i.name, version: i.version, sdk_version: i.sdk_version }
}

pub(crate) fn policy_error(e: w::PolicyError) -> t::PolicyError {
    match e {
        w::PolicyError::InvalidConfig(m) => t::PolicyError::InvalidConfig(m),
        w::PolicyError::InvalidInput(m) => t::PolicyError::InvalidInput(m),
        w::PolicyError::Internal(m) => t::PolicyError::Internal(m),
    }
}
