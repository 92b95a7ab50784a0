//! The hooks of a policy under the WIT version it was built for. Each version has its own generated bindings;
//! [`Indices`] and [`Hooks`] dispatch to them, taking and returning our plain types either way.

use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre};

use crate::host_state::HostState;
use crate::manifest::PolicyManifest;
use crate::types as t;

/// What a hook call returns: a trap, or the policy's answer.
pub(crate) type Call<R> = wasmtime::Result<Result<R, t::PolicyError>>;

/// Per-version export lookups and calls, identical but for the bindings and conversions they use.
macro_rules! version {
    ($module:ident, $doc:literal) => {
        #[doc = $doc]
        pub(crate) mod $module {
            use wasmtime::Store;
            use wasmtime::component::{Instance, InstancePre};

            use super::Call;
            use crate::bindings::$module::exports::gha_autoscaler::policy::{
                lifecycle, pod_mutator, scale_down, scaler,
            };
            use crate::convert::$module::wit_convert::Convert;
            use crate::host_state::HostState;
            use crate::manifest::PolicyManifest;
            use crate::types as t;

            /// A hook's answer in our types.
            fn answer<A: Convert<B>, B, E: Convert<t::PolicyError>>(answer: Result<A, E>) -> Result<B, t::PolicyError> {
                answer.map(Convert::convert).map_err(Convert::convert)
            }

            /// Export indices of the hooks a policy implements, looked up once.
            #[derive(Clone)]
            pub(crate) struct Indices {
                lifecycle: lifecycle::GuestIndices,
                scaler: Option<scaler::GuestIndices>,
                scale_down: Option<scale_down::GuestIndices>,
                pod_mutator: Option<pod_mutator::GuestIndices>,
            }

            impl Indices {
                pub(crate) fn new(pre: &InstancePre<HostState>, manifest: &PolicyManifest) -> wasmtime::Result<Self> {
                    Ok(Indices {
                        lifecycle: lifecycle::GuestIndices::new(pre)?,
                        scaler: manifest.scaler.then(|| scaler::GuestIndices::new(pre)).transpose()?,
                        scale_down: manifest.scale_down.then(|| scale_down::GuestIndices::new(pre)).transpose()?,
                        pod_mutator: manifest.pod_mutator.then(|| pod_mutator::GuestIndices::new(pre)).transpose()?,
                    })
                }

                pub(crate) fn load(
                    &self,
                    store: &mut Store<HostState>,
                    instance: &Instance,
                ) -> wasmtime::Result<Hooks> {
                    Ok(Hooks {
                        lifecycle: self.lifecycle.load(&mut *store, instance)?,
                        scaler: self.scaler.as_ref().map(|i| i.load(&mut *store, instance)).transpose()?,
                        scale_down: self.scale_down.as_ref().map(|i| i.load(&mut *store, instance)).transpose()?,
                        pod_mutator: self.pod_mutator.as_ref().map(|i| i.load(&mut *store, instance)).transpose()?,
                    })
                }
            }

            /// The hooks of one instantiation.
            pub(crate) struct Hooks {
                lifecycle: lifecycle::Guest,
                scaler: Option<scaler::Guest>,
                scale_down: Option<scale_down::Guest>,
                pod_mutator: Option<pod_mutator::Guest>,
            }

            impl Hooks {
                pub(crate) fn info(&self, store: &mut Store<HostState>) -> Call<t::PolicyInfo> {
                    Ok(Ok(self.lifecycle.call_info(store)?.convert()))
                }

                pub(crate) fn configure(
                    &self,
                    store: &mut Store<HostState>,
                    scale_set: &t::ScaleSetRef,
                    config: &str,
                ) -> Call<()> {
                    let scale_set = scale_set.clone().convert();
                    self.lifecycle.call_configure(store, &scale_set, config).map(|r| r.map_err(Convert::convert))
                }

                pub(crate) fn decide(
                    &self,
                    store: &mut Store<HostState>,
                    input: &t::ScaleInput,
                ) -> Option<Call<t::ScaleDecision>> {
                    let hook = self.scaler.as_ref()?;
                    let input = input.clone().convert();
                    Some(hook.call_decide(store, &input).map(answer))
                }

                pub(crate) fn select(
                    &self,
                    store: &mut Store<HostState>,
                    input: &t::ScaleDownInput,
                ) -> Option<Call<Vec<String>>> {
                    let hook = self.scale_down.as_ref()?;
                    let input = input.clone().convert();
                    Some(hook.call_select(store, &input).map(answer))
                }

                pub(crate) fn mutate_runner_pod(
                    &self,
                    store: &mut Store<HostState>,
                    runner_name: &str,
                    template_json: &str,
                ) -> Option<Call<Option<String>>> {
                    let hook = self.pod_mutator.as_ref()?;
                    Some(hook.call_mutate_runner_pod(store, runner_name, template_json).map(answer))
                }

                pub(crate) fn on_job_event(
                    &self,
                    store: &mut Store<HostState>,
                    event: &t::JobEvent,
                ) -> Option<Call<t::PodMetadata>> {
                    let hook = self.pod_mutator.as_ref()?;
                    let event = event.clone().convert();
                    Some(hook.call_on_job_event(store, &event).map(answer))
                }
            }
        }
    };
}

version!(current, "`gha-autoscaler:policy@0.2.0`.");
version!(v0_1, "`gha-autoscaler:policy@0.1.0`.");

/// Export indices under the policy's WIT version.
#[derive(Clone)]
pub(crate) enum Indices {
    Current(current::Indices),
    V0_1(v0_1::Indices),
}

/// The hooks of one instantiation, under the policy's WIT version.
pub(crate) enum Hooks {
    Current(current::Hooks),
    V0_1(v0_1::Hooks),
}

/// Calls the same method on whichever version's value `$on` holds.
macro_rules! dispatch {
    ($on:expr, $ty:ident, $v:ident => $call:expr) => {
        match $on {
            $ty::Current($v) => $call,
            $ty::V0_1($v) => $call,
        }
    };
}

impl Indices {
    /// Looks the policy's exports up under the WIT minor version its `lifecycle` export names.
    pub(crate) fn new(pre: &InstancePre<HostState>, manifest: &PolicyManifest) -> wasmtime::Result<Self> {
        Ok(if manifest.wit_version.starts_with("0.1.") {
            Indices::V0_1(v0_1::Indices::new(pre, manifest)?)
        } else {
            Indices::Current(current::Indices::new(pre, manifest)?)
        })
    }

    pub(crate) fn load(&self, store: &mut Store<HostState>, instance: &Instance) -> wasmtime::Result<Hooks> {
        Ok(match self {
            Indices::Current(i) => Hooks::Current(i.load(store, instance)?),
            Indices::V0_1(i) => Hooks::V0_1(i.load(store, instance)?),
        })
    }
}

impl Hooks {
    pub(crate) fn info(&self, store: &mut Store<HostState>) -> Call<t::PolicyInfo> {
        dispatch!(self, Hooks, h => h.info(store))
    }

    pub(crate) fn configure(&self, store: &mut Store<HostState>, scale_set: &t::ScaleSetRef, config: &str) -> Call<()> {
        dispatch!(self, Hooks, h => h.configure(store, scale_set, config))
    }

    pub(crate) fn decide(&self, store: &mut Store<HostState>, input: &t::ScaleInput) -> Option<Call<t::ScaleDecision>> {
        dispatch!(self, Hooks, h => h.decide(store, input))
    }

    pub(crate) fn select(&self, store: &mut Store<HostState>, input: &t::ScaleDownInput) -> Option<Call<Vec<String>>> {
        dispatch!(self, Hooks, h => h.select(store, input))
    }

    pub(crate) fn mutate_runner_pod(
        &self,
        store: &mut Store<HostState>,
        runner_name: &str,
        template_json: &str,
    ) -> Option<Call<Option<String>>> {
        dispatch!(self, Hooks, h => h.mutate_runner_pod(store, runner_name, template_json))
    }

    pub(crate) fn on_job_event(
        &self,
        store: &mut Store<HostState>,
        event: &t::JobEvent,
    ) -> Option<Call<t::PodMetadata>> {
        dispatch!(self, Hooks, h => h.on_job_event(store, event))
    }
}
