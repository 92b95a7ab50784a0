//! A live policy instance for one scale set: its store, limits and deadlines, rebuilt after any trap.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::Store;

use crate::contract::{Call, Hooks};
use crate::engine::PolicyPre;
use crate::error::{Error, Result};
use crate::host_state::HostState;
use crate::limits::{MAX_HOSTCALL_BYTES, PolicyLimits, deadline_ms};
use crate::log_budget::LogBudget;
use crate::manifest::{Hook, PolicyManifest};
use crate::types as t;

struct Live {
    store: Store<HostState>,
    hooks: Hooks,
}

/// One configured instance of a policy for one scale set.
///
/// Calls take `&mut self`: a store serves one call at a time. After any trap (deadline, memory cap, panic) the
/// store is poisoned, so it is dropped and the next call instantiates and configures afresh — guest memory is a
/// cache, and anything a policy must keep travels in the decision's `state`.
pub struct PolicyInstance {
    pre: Arc<PolicyPre>,
    scale_set: t::ScaleSetRef,
    config_json: String,
    limits: PolicyLimits,
    live: Option<Live>,
    instantiations: u64,
    log_budget: Arc<Mutex<LogBudget>>,
}

/// Calls `info` in a throwaway instance (used while preparing).
pub(crate) fn read_info(pre: &PolicyPre) -> Result<t::PolicyInfo> {
    let limits = PolicyLimits::default();
    let mut live = instantiate(pre, &limits, "inspect", Arc::default())?;
    call_hook(pre, &mut live, &limits, Hook::Info, |store, hooks| hooks.info(store))
}

fn instantiate(
    pre: &PolicyPre,
    limits: &PolicyLimits,
    scale_set: &str,
    log_budget: Arc<Mutex<LogBudget>>,
) -> Result<Live> {
    let state = HostState::new(
        limits.memory_mib,
        pre.manifest.origin.as_str().into(),
        scale_set.into(),
        pre.engine.metrics().clone(),
        log_budget,
    );
    let mut store = Store::new(pre.engine.wasmtime(), state);
    store.limiter(|state| &mut state.limiter);
    // Every string and list a guest hands over (outputs, log lines, metric labels) is bounded before it is copied.
    store.set_hostcall_fuel(MAX_HOSTCALL_BYTES);
    store.epoch_deadline_trap();
    store.set_epoch_deadline(pre.engine.deadline_ticks(limits.configure_timeout_ms));
    let instance = pre.pre.instantiate(&mut store).map_err(|e| Error::Instantiate(format!("{e:#}")))?;
    let hooks = pre.indices.load(&mut store, &instance).map_err(|e| Error::Instantiate(format!("{e:#}")))?;
    Ok(Live { store, hooks })
}

/// Runs one hook with its deadline, records metrics, and turns traps into typed errors.
fn call_hook<R>(
    pre: &PolicyPre,
    live: &mut Live,
    limits: &PolicyLimits,
    hook: Hook,
    f: impl FnOnce(&mut Store<HostState>, &Hooks) -> Call<R>,
) -> Result<R> {
    let deadline_ms = deadline_ms(limits, hook);
    live.store.set_epoch_deadline(pre.engine.deadline_ticks(deadline_ms));
    live.store.data().log_budget.lock().unwrap_or_else(|e| e.into_inner()).start_call();
    let started = Instant::now();
    let outcome = f(&mut live.store, &live.hooks);
    let result = match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Error::Policy { hook, error }),
        Err(trap) => Err(classify(trap, hook, limits, &live.store)),
    };
    let metrics = pre.engine.metrics();
    let label = result.as_ref().map_or_else(Error::metric_label, |_| "ok");
    metrics.record_call(hook.as_str(), label, started.elapsed().as_secs_f64());
    if let Err(e) = &result
        && e.poisons_instance()
    {
        metrics.record_trap(e.metric_label());
    }
    result
}

fn classify(error: wasmtime::Error, hook: Hook, limits: &PolicyLimits, store: &Store<HostState>) -> Error {
    if store.data().limiter.memory_exceeded {
        return Error::MemoryLimit { hook, limit_mib: limits.memory_mib };
    }
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => Error::Timeout { hook, deadline_ms: deadline_ms(limits, hook) },
        // wasmtime's hostcall-fuel error is not public; its message is stable across the LTS line.
        _ if format!("{error:#}").contains("fuel allocated for hostcalls") => {
            Error::OutputLimit { hook, limit: MAX_HOSTCALL_BYTES }
        }
        _ => Error::Trap { hook, message: format!("{error:?}") },
    }
}

impl PolicyInstance {
    /// Instantiates and configures the policy for a scale set.
    ///
    /// # Errors
    /// [`Error::InvalidLimits`], instantiation errors, and [`Error::Config`] when the policy rejects its config.
    pub fn new(
        pre: Arc<PolicyPre>,
        scale_set: t::ScaleSetRef,
        config_json: String,
        limits: PolicyLimits,
    ) -> Result<Self> {
        limits.validate().map_err(Error::InvalidLimits)?;
        let mut instance = PolicyInstance {
            pre,
            scale_set,
            config_json,
            limits,
            live: None,
            instantiations: 0,
            log_budget: Arc::default(),
        };
        instance.live()?;
        Ok(instance)
    }

    /// The policy's manifest.
    pub fn manifest(&self) -> &PolicyManifest {
        &self.pre.manifest
    }

    /// Drops the live store and its guest memory; the next call instantiates and configures afresh (tens of
    /// microseconds). For callers that use a policy rarely and hold many.
    pub fn release(&mut self) {
        self.live = None;
    }

    /// The prepared policy this instance runs.
    pub fn pre(&self) -> &Arc<PolicyPre> {
        &self.pre
    }

    /// How many times the instance has been (re)built.
    pub fn instantiations(&self) -> u64 {
        self.instantiations
    }

    /// Largest linear memory of the current instantiation, bytes.
    pub fn peak_memory_bytes(&self) -> usize {
        self.live.as_ref().map_or(0, |l| l.store.data().limiter.peak_memory_bytes)
    }

    fn live(&mut self) -> Result<&mut Live> {
        if self.live.is_none() {
            let mut live = instantiate(&self.pre, &self.limits, &self.scale_set.name, self.log_budget.clone())?;
            self.instantiations += 1;
            call_hook(&self.pre, &mut live, &self.limits, Hook::Configure, |store, hooks| {
                hooks.configure(store, &self.scale_set, &self.config_json)
            })
            .map_err(|e| match e {
                Error::Policy { error, .. } => Error::Config(error),
                other => other,
            })?;
            self.live = Some(live);
        }
        Ok(self.live.as_mut().expect("instance was just built"))
    }

    /// Calls a hook; `f` returns None when the policy does not export it.
    fn call<R>(
        &mut self,
        hook: Hook,
        exported: bool,
        f: impl FnOnce(&mut Store<HostState>, &Hooks) -> Option<Call<R>>,
    ) -> Result<R> {
        if !exported {
            return Err(Error::NotImplemented(hook));
        }
        let pre = self.pre.clone();
        let limits = self.limits;
        let live = self.live()?;
        let result = call_hook(&pre, live, &limits, hook, |store, hooks| {
            f(store, hooks).unwrap_or_else(|| Err(wasmtime::format_err!("{hook} is not exported")))
        });
        if result.as_ref().is_err_and(Error::poisons_instance) {
            self.live = None;
        }
        result
    }

    /// `scaler.decide`, unvalidated.
    ///
    /// # Errors
    /// [`Error::NotImplemented`] when the policy has no scaler, otherwise call errors.
    pub fn decide(&mut self, input: &t::ScaleInput) -> Result<t::ScaleDecision> {
        self.call(Hook::Decide, self.pre.manifest.scaler, |store, hooks| hooks.decide(store, input))
    }

    /// `scale-down.select`, unvalidated.
    ///
    /// # Errors
    /// [`Error::NotImplemented`] when the policy has no scale-down hook, otherwise call errors.
    pub fn select(&mut self, input: &t::ScaleDownInput) -> Result<Vec<String>> {
        self.call(Hook::Select, self.pre.manifest.scale_down, |store, hooks| hooks.select(store, input))
    }

    /// `pod-mutator.mutate-runner-pod`, unvalidated: the merge patch text, if any.
    ///
    /// # Errors
    /// [`Error::NotImplemented`] when the policy has no pod mutator, otherwise call errors.
    pub fn mutate_runner_pod(&mut self, runner_name: &str, template_json: &str) -> Result<Option<String>> {
        self.call(Hook::MutateRunnerPod, self.pre.manifest.pod_mutator, |store, hooks| {
            hooks.mutate_runner_pod(store, runner_name, template_json)
        })
    }

    /// `pod-mutator.on-job-event`, unvalidated. Only started and completed jobs reach the policy; other phases
    /// get empty metadata.
    ///
    /// # Errors
    /// [`Error::NotImplemented`] when the policy has no pod mutator, otherwise call errors.
    pub fn on_job_event(&mut self, event: &t::JobEvent) -> Result<t::PodMetadata> {
        if !matches!(event.phase, t::JobPhase::Started | t::JobPhase::Completed) {
            return Ok(t::PodMetadata::default());
        }
        self.call(Hook::OnJobEvent, self.pre.manifest.pod_mutator, |store, hooks| hooks.on_job_event(store, event))
    }
}
