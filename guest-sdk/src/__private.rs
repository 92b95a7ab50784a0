//! Glue used by [`crate::export_policy!`]: the configured instance, conversions between the generated bindings
//! and the plain types, and one generic function per hook. Not part of the public API.

use std::any::Any;
use std::cell::RefCell;

use crate::types as t;
use crate::wit::shared::types as w;
use crate::{PodMutator, Policy, ScaleDown, Scaler};

gha_autoscaler_policy_types::wit_conversions!(crate::wit::shared::types);
use wit_convert::Convert;

pub use wit_bindgen;

thread_local! {
    /// The instance `configure` built; Wasm policies are single-threaded, so one cell per module.
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = RefCell::new(None);
}

fn with_instance<P: Policy, R>(f: impl FnOnce(&mut P) -> Result<R, t::PolicyError>) -> Result<R, w::PolicyError> {
    INSTANCE.with(|cell| {
        let mut slot = cell.borrow_mut();
        match slot.as_mut().and_then(|any| any.downcast_mut::<P>()) {
            Some(policy) => f(policy).map_err(Convert::convert),
            None => Err(w::PolicyError::Internal("policy used before configure succeeded".into())),
        }
    })
}

/// `lifecycle.info`.
pub fn info<P: Policy>() -> w::PolicyInfo {
    t::PolicyInfo { name: P::NAME.into(), version: P::VERSION.into(), sdk_version: crate::SDK_VERSION.into() }.convert()
}

/// `lifecycle.configure`.
pub fn configure<P: Policy>(scale_set: w::ScaleSetRef, config_json: String) -> Result<(), w::PolicyError> {
    let scale_set: t::ScaleSetRef = scale_set.convert();
    let config = crate::parse_config::<P::Config>(&config_json).map_err(Convert::convert)?;
    let policy = P::configure(&scale_set, config).map_err(Convert::convert)?;
    INSTANCE.with(|cell| *cell.borrow_mut() = Some(Box::new(policy)));
    Ok(())
}

/// `scaler.decide`.
pub fn decide<P: Scaler>(input: w::ScaleInput) -> Result<w::ScaleDecision, w::PolicyError> {
    let input: t::ScaleInput = input.convert();
    with_instance::<P, _>(|p| p.decide(&input)).map(Convert::convert)
}

/// `scale-down.select`.
pub fn select<P: ScaleDown>(input: w::ScaleDownInput) -> Result<Vec<String>, w::PolicyError> {
    let input: t::ScaleDownInput = input.convert();
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
    let event: t::JobEvent = event.convert();
    with_instance::<P, _>(|p| p.on_job_event(&event)).map(Convert::convert)
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
