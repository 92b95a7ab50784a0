//! The policy of one scale set as the listener and controller use it: hooks with validation, the failure
//! policy, the circuit breaker, shadow decisions and atomic hot swap.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use gha_autoscaler_policy::Scaler;
use serde_json::Value;

use crate::breaker::Breaker;
use crate::churn::ChurnGuard;
use crate::engine::PolicyEngine;
use crate::error::{Error, Result};
use crate::instance::PolicyInstance;
use crate::manifest::{Hook, PolicyManifest};
use crate::pod_patch;
use crate::spec::{FailurePolicy, PolicySpec};
use crate::types::{JobEvent, PodMetadata, ScaleDecision, ScaleDownInput, ScaleInput, ScaleSetRef};
use crate::validate::{self, Validated};

/// Who made a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The policy, validated.
    Policy,
    /// The policy does not export this hook; the built-in ARC behaviour answered.
    BuiltIn,
    /// The policy failed; the built-in ARC behaviour answered (failure policy `Fallback`).
    Fallback {
        /// What went wrong.
        error: String,
    },
    /// The policy failed; the last good decision was kept (failure policy `HoldLast`).
    HeldLast {
        /// What went wrong.
        error: String,
    },
}

impl Outcome {
    /// A short label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Policy => "policy",
            Outcome::BuiltIn => "built-in",
            Outcome::Fallback { .. } => "fallback",
            Outcome::HeldLast { .. } => "hold-last",
        }
    }
}

/// A hook's result as the host acts on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided<T> {
    /// The validated output.
    pub value: T,
    /// Who produced it.
    pub outcome: Outcome,
    /// What validation changed.
    pub adjustments: Vec<String>,
}

struct Active {
    spec: PolicySpec,
    instance: PolicyInstance,
    breaker: Breaker,
    last_good: Option<ScaleDecision>,
    shadow: Option<Shadow>,
    churn: ChurnGuard,
}

struct Shadow {
    instance: PolicyInstance,
    last: Option<(ScaleDecision, u64)>,
    /// The shadow's decision when it last disagreed with the acting one (taken by the decision log).
    divergence: Option<ScaleDecision>,
}

/// The policy serving one scale set.
///
/// Calls are short (microseconds for Rust policies) and serialised by a mutex; a misbehaving policy holds it for
/// at most its deadline. Call from a blocking context when deadlines are long.
pub struct ScaleSetPolicy {
    engine: Arc<PolicyEngine>,
    scale_set: ScaleSetRef,
    active: Mutex<Active>,
}

impl ScaleSetPolicy {
    /// Loads, instantiates and configures the scale set's policy (and its shadow).
    ///
    /// # Errors
    /// Source, load and config errors; nothing is running when this fails.
    pub async fn load(engine: &Arc<PolicyEngine>, scale_set: ScaleSetRef, spec: PolicySpec) -> Result<Self> {
        let active = build(engine, &scale_set, spec).await?;
        Ok(ScaleSetPolicy { engine: engine.clone(), scale_set, active: Mutex::new(active) })
    }

    /// Replaces the policy atomically. The new policy is loaded and configured first; if that fails the old one
    /// keeps serving and the error is returned.
    ///
    /// # Errors
    /// Source, load and config errors of the new policy.
    pub async fn swap(&self, spec: PolicySpec) -> Result<()> {
        let mut fresh = build(&self.engine, &self.scale_set, spec).await?;
        let mut active = self.lock();
        fresh.last_good = active.last_good.take();
        fresh.churn = std::mem::take(&mut active.churn);
        *active = fresh;
        tracing::info!(scale_set = %self.scale_set.name, policy = %active.instance.manifest().origin, "policy swapped");
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Active> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops the acting and shadow instances' stores and guest memory until the next call (see
    /// [`PolicyInstance::release`]): the controller holds one policy per scale set and calls each rarely.
    pub fn release_instances(&self) {
        let mut active = self.lock();
        active.instance.release();
        if let Some(shadow) = &mut active.shadow {
            shadow.instance.release();
        }
    }

    /// The manifest of the acting policy.
    pub fn manifest(&self) -> PolicyManifest {
        self.lock().instance.manifest().clone()
    }

    /// The spec of the acting policy.
    pub fn spec(&self) -> PolicySpec {
        self.lock().spec.clone()
    }

    /// Runs a hook through the breaker, counting failures.
    fn guarded<R>(active: &mut Active, call: impl FnOnce(&mut PolicyInstance) -> Result<R>) -> Result<R> {
        let now = Instant::now();
        if let Some(wait) = active.breaker.blocked_for(now) {
            return Err(Error::BreakerOpen {
                failures: active.breaker.failures(),
                retry_in_ms: wait.as_millis() as u64,
            });
        }
        match call(&mut active.instance) {
            Ok(value) => {
                active.breaker.succeeded();
                Ok(value)
            }
            Err(e @ Error::NotImplemented(_)) => Err(e),
            Err(e) => {
                if active.breaker.failed(now) {
                    tracing::warn!(failures = active.breaker.failures(), error = %e, "policy circuit breaker opened");
                }
                Err(e)
            }
        }
    }

    /// Applies the failure policy to a failed hook: the built-in answer, or the error for `Fail`.
    fn on_failure<T>(
        &self,
        failure_policy: FailurePolicy,
        hook: Hook,
        error: Error,
        built_in: T,
    ) -> Result<Decided<T>> {
        if let Error::NotImplemented(_) = error {
            return Ok(Decided { value: built_in, outcome: Outcome::BuiltIn, adjustments: Vec::new() });
        }
        if failure_policy == FailurePolicy::Fail {
            return Err(error);
        }
        self.engine.metrics().record_fallback(hook.as_str());
        tracing::warn!(scale_set = %self.scale_set.name, %hook, error = %error, "policy failed; using the built-in behaviour");
        Ok(Decided {
            value: built_in,
            outcome: Outcome::Fallback { error: error.to_string() },
            adjustments: Vec::new(),
        })
    }

    /// Decides desired runners, capacity, floor and drain.
    ///
    /// # Errors
    /// Only with failure policy `Fail`: the policy's error.
    pub fn decide(&self, input: &ScaleInput) -> Result<Decided<ScaleDecision>> {
        let mut guard = self.lock();
        let active = &mut *guard;
        let limits = active.spec.limits;
        let result = Self::guarded(active, |instance| {
            let raw = instance.decide(input)?;
            validate::decision(raw, input, &limits)
                .map_err(|reason| Error::InvalidOutput { hook: Hook::Decide, reason })
        });
        let mut decided = match result {
            Ok(Validated { value, adjustments }) => Decided { value, outcome: Outcome::Policy, adjustments },
            Err(error) if active.spec.failure_policy == FailurePolicy::HoldLast && active.last_good.is_some() => {
                self.engine.metrics().record_fallback(Hook::Decide.as_str());
                let mut held = active.last_good.clone().expect("checked above");
                held.drain = false;
                held.state = input.state.clone();
                Decided {
                    value: held,
                    outcome: Outcome::HeldLast { error: error.to_string() },
                    adjustments: Vec::new(),
                }
            }
            Err(error) => {
                self.on_failure(active.spec.failure_policy, Hook::Decide, error, arc_decision(input, &limits))?
            }
        };
        if decided.outcome == Outcome::Policy {
            active.last_good = Some(decided.value.clone());
        }
        for (rule, note) in active.churn.damp(&mut decided.value, input, &limits) {
            self.engine.metrics().record_churn_damped(rule.label());
            decided.adjustments.push(note);
        }
        if let Some(shadow) = &mut active.shadow {
            self.shadow_decide(shadow, input, &decided.value, &limits);
        }
        Ok(decided)
    }

    fn shadow_decide(
        &self,
        shadow: &mut Shadow,
        input: &ScaleInput,
        acting: &ScaleDecision,
        limits: &crate::PolicyLimits,
    ) {
        let mut input = input.clone();
        input.previous = shadow.last.as_ref().map(|(d, at)| d.to_previous(*at, input.bounds));
        input.state = shadow.last.as_ref().map(|(d, _)| d.state.clone()).unwrap_or_default();
        let decided = shadow.instance.decide(&input).and_then(|raw| {
            validate::decision(raw, &input, limits)
                .map_err(|reason| Error::InvalidOutput { hook: Hook::Decide, reason })
        });
        match decided {
            Ok(Validated { value, .. }) => {
                let differs = (value.desired_runners, value.max_capacity, value.min_runners, value.drain)
                    != (acting.desired_runners, acting.max_capacity, acting.min_runners, acting.drain);
                shadow.divergence = differs.then(|| value.clone());
                if differs {
                    self.engine.metrics().record_shadow_disagreement();
                    tracing::info!(
                        scale_set = %self.scale_set.name,
                        acting = acting.desired_runners,
                        shadow = value.desired_runners,
                        shadow_drain = value.drain,
                        reason = %value.reason,
                        "shadow policy disagrees"
                    );
                }
                shadow.last = Some((value, input.now_unix_ms));
            }
            Err(e) => tracing::debug!(scale_set = %self.scale_set.name, error = %e, "shadow policy failed"),
        }
    }

    /// The shadow policy's decision if it disagreed with the last acting decision (once; then None).
    pub fn take_shadow_divergence(&self) -> Option<ScaleDecision> {
        self.lock().shadow.as_mut().and_then(|s| s.divergence.take())
    }

    /// Chooses which idle runners go. Busy runners are never chosen.
    ///
    /// # Errors
    /// Only with failure policy `Fail`: the policy's error.
    pub fn select(&self, input: &ScaleDownInput) -> Result<Decided<Vec<String>>> {
        let mut guard = self.lock();
        let result = Self::guarded(&mut guard, |instance| {
            let raw = instance.select(input)?;
            validate::selection(raw, input).map_err(|reason| Error::InvalidOutput { hook: Hook::Select, reason })
        });
        let failure_policy = guard.spec.failure_policy;
        drop(guard);
        match result {
            Ok(Validated { value, adjustments }) => Ok(Decided { value, outcome: Outcome::Policy, adjustments }),
            Err(error) => self.on_failure(failure_policy, Hook::Select, error, arc_default::ArcDefault::order(input)),
        }
    }

    /// Returns the runner pod template after the policy's patch (validated against the allowlist).
    ///
    /// # Errors
    /// Only with failure policy `Fail`: the policy's error.
    pub fn mutate_runner_pod(&self, runner_name: &str, template: &Value) -> Result<Decided<Value>> {
        let mut guard = self.lock();
        let permissions = guard.spec.permissions.clone();
        let result = Self::guarded(&mut guard, |instance| {
            let invalid = |reason| Error::InvalidOutput { hook: Hook::MutateRunnerPod, reason };
            let mut pod = template.clone();
            if let Some(text) = instance.mutate_runner_pod(runner_name, &template.to_string())? {
                let patch = pod_patch::parse_patch(&text, template, &permissions).map_err(invalid)?;
                pod_patch::apply_patch(&mut pod, &patch).map_err(invalid)?;
                // Keys on the allowlist with values of the wrong type would make a template no pod is built from:
                // a policy failure here (failure policy, breaker, event), never a runner stuck without a pod.
                serde_json::from_value::<k8s_openapi::api::core::v1::PodTemplateSpec>(pod.clone())
                    .map_err(|e| invalid(format!("the patched template is not a valid pod template: {e}")))?;
            }
            Ok(pod)
        });
        let failure_policy = guard.spec.failure_policy;
        drop(guard);
        match result {
            Ok(pod) => Ok(Decided { value: pod, outcome: Outcome::Policy, adjustments: Vec::new() }),
            Err(error) => self.on_failure(failure_policy, Hook::MutateRunnerPod, error, template.clone()),
        }
    }

    /// Labels and annotations for a runner pod on a job event (validated).
    ///
    /// # Errors
    /// Only with failure policy `Fail`: the policy's error.
    pub fn on_job_event(&self, event: &JobEvent) -> Result<Decided<PodMetadata>> {
        let mut guard = self.lock();
        let permissions = guard.spec.permissions.clone();
        let result = Self::guarded(&mut guard, |instance| {
            let metadata = instance.on_job_event(event)?;
            pod_patch::validate_pod_metadata(&metadata, &permissions)
                .map_err(|reason| Error::InvalidOutput { hook: Hook::OnJobEvent, reason })?;
            Ok(metadata)
        });
        let failure_policy = guard.spec.failure_policy;
        drop(guard);
        match result {
            Ok(value) => Ok(Decided { value, outcome: Outcome::Policy, adjustments: Vec::new() }),
            Err(error) => self.on_failure(failure_policy, Hook::OnJobEvent, error, PodMetadata::default()),
        }
    }
}

/// ARC's decision computed natively, keeping the policy's state for when it recovers.
fn arc_decision(input: &ScaleInput, limits: &crate::PolicyLimits) -> ScaleDecision {
    let mut decision = arc_default::ArcDefault.decide(input).unwrap_or_default();
    decision.state = input.state.clone();
    validate::decision(decision.clone(), input, limits).map(|v| v.value).unwrap_or(decision)
}

async fn instance(engine: &Arc<PolicyEngine>, scale_set: &ScaleSetRef, spec: &PolicySpec) -> Result<PolicyInstance> {
    let pre = engine.load(&spec.source, spec.allow_wasi).await?;
    let (scale_set, config, limits) = (scale_set.clone(), spec.config_json(), spec.limits);
    tokio::task::spawn_blocking(move || PolicyInstance::new(pre, scale_set, config, limits))
        .await
        .map_err(|e| Error::Instantiate(format!("policy instantiation task failed: {e}")))?
}

async fn build(engine: &Arc<PolicyEngine>, scale_set: &ScaleSetRef, spec: PolicySpec) -> Result<Active> {
    let acting = instance(engine, scale_set, &spec).await?;
    let shadow = match &spec.shadow {
        Some(shadow_spec) => {
            Some(Shadow { instance: instance(engine, scale_set, shadow_spec).await?, last: None, divergence: None })
        }
        None => None,
    };
    Ok(Active {
        spec,
        instance: acting,
        breaker: Breaker::default(),
        last_good: None,
        shadow,
        churn: ChurnGuard::default(),
    })
}
