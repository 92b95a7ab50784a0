//! Glue used by [`crate::export_policy!`]: the configured instance, conversions between the generated bindings
//! and the plain types, and one generic function per hook. Not part of the public API.

use std::any::Any;
use std::cell::RefCell;

use crate::types as t;
use crate::wit::shared::types as w;
use crate::{PodMutator, Policy, ScaleDown, Scaler};

pub use wit_bindgen;

thread_local! {
    /// The instance `configure` built; Wasm policies are single-threaded, so one cell per module.
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = RefCell::new(None);
}

fn with_instance<P: Policy, R>(f: impl FnOnce(&mut P) -> Result<R, t::PolicyError>) -> Result<R, w::PolicyError> {
    INSTANCE.with(|cell| {
        let mut slot = cell.borrow_mut();
        match slot.as_mut().and_then(|any| any.downcast_mut::<P>()) {
            Some(policy) => f(policy).map_err(wit_error),
            None => Err(w::PolicyError::Internal("policy used before configure succeeded".into())),
        }
    })
}

/// `lifecycle.info`.
pub fn info<P: Policy>() -> w::PolicyInfo {
    w::PolicyInfo { name: P::NAME.into(), version: P::VERSION.into(), sdk_version: crate::SDK_VERSION.into() }
}

/// `lifecycle.configure`.
pub fn configure<P: Policy>(scale_set: w::ScaleSetRef, config_json: String) -> Result<(), w::PolicyError> {
    let scale_set = t::ScaleSetRef {
        namespace: scale_set.namespace,
        name: scale_set.name,
        id: scale_set.id,
        runner_group: scale_set.runner_group,
        attributes: scale_set.attributes,
    };
    let config = crate::parse_config::<P::Config>(&config_json).map_err(wit_error)?;
    let policy = P::configure(&scale_set, config).map_err(wit_error)?;
    INSTANCE.with(|cell| *cell.borrow_mut() = Some(Box::new(policy)));
    Ok(())
}

/// `scaler.decide`.
pub fn decide<P: Scaler>(input: w::ScaleInput) -> Result<w::ScaleDecision, w::PolicyError> {
    let input = scale_input(input);
    with_instance::<P, _>(|p| p.decide(&input)).map(|d| w::ScaleDecision {
        desired_runners: d.desired_runners,
        max_capacity: d.max_capacity,
        min_runners: d.min_runners,
        drain: d.drain,
        requeue_after_ms: d.requeue_after_ms,
        reason: d.reason,
        state: d.state,
        attributes: d.attributes,
    })
}

/// `scale-down.select`.
pub fn select<P: ScaleDown>(input: w::ScaleDownInput) -> Result<Vec<String>, w::PolicyError> {
    let input = t::ScaleDownInput {
        now_unix_ms: input.now_unix_ms,
        surplus: input.surplus,
        candidates: input
            .candidates
            .into_iter()
            .map(|c| t::RunnerInfo {
                name: c.name,
                phase: match c.phase {
                    w::RunnerPhase::Pending => t::RunnerPhase::Pending,
                    w::RunnerPhase::Running => t::RunnerPhase::Running,
                },
                created_unix_ms: c.created_unix_ms,
                idle_since_unix_ms: c.idle_since_unix_ms,
                node_name: c.node_name,
                attributes: c.attributes,
            })
            .collect(),
        attributes: input.attributes,
    };
    with_instance::<P, _>(|p| p.select(&input))
}

/// `pod-mutator.mutate-runner-pod`.
pub fn mutate_runner_pod<P: PodMutator>(
    runner_name: String,
    template: String,
) -> Result<Option<String>, w::PolicyError> {
    let template: serde_json::Value = serde_json::from_str(&template)
        .map_err(|e| w::PolicyError::InvalidInput(format!("pod template is not JSON: {e}")))?;
    let patch = with_instance::<P, _>(|p| p.mutate_runner_pod(&runner_name, &template))?;
    Ok(patch.map(|patch| patch.to_string()))
}

/// `pod-mutator.on-job-event`.
pub fn on_job_event<P: PodMutator>(event: w::JobEvent) -> Result<w::PodMetadata, w::PolicyError> {
    let event = t::JobEvent {
        phase: match event.phase {
            w::JobPhase::Started => t::JobPhase::Started,
            w::JobPhase::Completed => t::JobPhase::Completed,
        },
        runner_name: event.runner_name,
        repository: event.repository,
        workflow_ref: event.workflow_ref,
        job_display_name: event.job_display_name,
        conclusion: event.conclusion,
        attributes: event.attributes,
    };
    with_instance::<P, _>(|p| p.on_job_event(&event))
        .map(|m| w::PodMetadata { labels: m.labels, annotations: m.annotations })
}

fn scale_input(i: w::ScaleInput) -> t::ScaleInput {
    let s = i.statistics;
    t::ScaleInput {
        now_unix_ms: i.now_unix_ms,
        statistics: t::JobStatistics {
            available_jobs: s.available_jobs,
            acquired_jobs: s.acquired_jobs,
            assigned_jobs: s.assigned_jobs,
            running_jobs: s.running_jobs,
            registered_runners: s.registered_runners,
            busy_runners: s.busy_runners,
            idle_runners: s.idle_runners,
        },
        runners: t::RunnerCounts {
            current: i.runners.current,
            pending: i.runners.pending,
            running: i.runners.running,
            failed: i.runners.failed,
        },
        bounds: t::Bounds { min_runners: i.bounds.min_runners, max_runners: i.bounds.max_runners },
        previous: i.previous.map(|p| t::PreviousDecision {
            desired_runners: p.desired_runners,
            min_runners: p.min_runners,
            max_capacity: p.max_capacity,
            drain: p.drain,
            decided_unix_ms: p.decided_unix_ms,
        }),
        job_events_since_previous: i.job_events_since_previous,
        state: i.state,
        attributes: i.attributes,
    }
}

fn wit_error(e: t::PolicyError) -> w::PolicyError {
    match e {
        t::PolicyError::InvalidConfig(m) => w::PolicyError::InvalidConfig(m),
        t::PolicyError::InvalidInput(m) => w::PolicyError::InvalidInput(m),
        t::PolicyError::Internal(m) => w::PolicyError::Internal(m),
    }
}

/// Implements the `Guest` trait of one exported interface of `$world` for `$export` by delegating to the
/// generic functions above.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_hook {
    (lifecycle, $world:ident, $export:ident, $policy:ty) => {
        impl $crate::wit::$world::exports::gha_autoscaler::policy::lifecycle::Guest for $export {
            fn info() -> $crate::wit::shared::types::PolicyInfo {
                $crate::__private::info::<$policy>()
            }
            fn configure(
                scale_set: $crate::wit::shared::types::ScaleSetRef,
                config_json: String,
            ) -> Result<(), $crate::wit::shared::types::PolicyError> {
                $crate::__private::configure::<$policy>(scale_set, config_json)
            }
        }
    };
    (scaler, $world:ident, $export:ident, $policy:ty) => {
        impl $crate::wit::$world::exports::gha_autoscaler::policy::scaler::Guest for $export {
            fn decide(
                input: $crate::wit::shared::types::ScaleInput,
            ) -> Result<$crate::wit::shared::types::ScaleDecision, $crate::wit::shared::types::PolicyError> {
                $crate::__private::decide::<$policy>(input)
            }
        }
    };
    (scale_down, $world:ident, $export:ident, $policy:ty) => {
        impl $crate::wit::$world::exports::gha_autoscaler::policy::scale_down::Guest for $export {
            fn select(
                input: $crate::wit::shared::types::ScaleDownInput,
            ) -> Result<Vec<String>, $crate::wit::shared::types::PolicyError> {
                $crate::__private::select::<$policy>(input)
            }
        }
    };
    (pod_mutator, $world:ident, $export:ident, $policy:ty) => {
        impl $crate::wit::$world::exports::gha_autoscaler::policy::pod_mutator::Guest for $export {
            fn mutate_runner_pod(
                runner_name: String,
                pod_template_json: String,
            ) -> Result<Option<String>, $crate::wit::shared::types::PolicyError> {
                $crate::__private::mutate_runner_pod::<$policy>(runner_name, pod_template_json)
            }
            fn on_job_event(
                event: $crate::wit::shared::types::JobEvent,
            ) -> Result<$crate::wit::shared::types::PodMetadata, $crate::wit::shared::types::PolicyError> {
                $crate::__private::on_job_event::<$policy>(event)
            }
        }
    };
}

/// Exports a policy from a crate built for `wasm32-unknown-unknown`: pick the hooks the policy implements and the
/// macro selects the world that exports exactly those.
///
/// Accepted forms: `export_policy!(P: Scaler)`, `export_policy!(P: Scaler, ScaleDown)`,
/// `export_policy!(P: PodMutator)`, `export_policy!(P: Scaler, ScaleDown, PodMutator)`.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty: Scaler) => {
        $crate::__export_world!($policy, scaling, export_world, [lifecycle scaler]);
    };
    ($policy:ty: Scaler, ScaleDown) => {
        $crate::__export_world!($policy, selection, export_world, [lifecycle scaler scale_down]);
    };
    ($policy:ty: PodMutator) => {
        $crate::__export_world!($policy, pod, export_world, [lifecycle pod_mutator]);
    };
    ($policy:ty: Scaler, ScaleDown, PodMutator) => {
        $crate::__export_world!($policy, full, export_world, [lifecycle scaler scale_down pod_mutator]);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_world {
    ($policy:ty, $world:ident, $export_macro:ident, [$($hook:ident)*]) => {
        #[doc(hidden)]
        pub struct __GhaAutoscalerPolicyExport;
        $( $crate::__export_hook!($hook, $world, __GhaAutoscalerPolicyExport, $policy); )*
        $crate::wit::$world::$export_macro!(__GhaAutoscalerPolicyExport with_types_in $crate::wit::$world);
    };
}
