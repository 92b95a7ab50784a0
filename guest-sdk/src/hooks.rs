//! One trait per exported hook.

use serde::de::DeserializeOwned;

use crate::types::{JobEvent, PodMetadata, PolicyError, ScaleDecision, ScaleDownInput, ScaleInput, ScaleSetRef};

/// What every policy implements: its identity, typed config and construction.
///
/// The host creates one instance per scale set and may recycle it at any time (after a trap, on an upgrade, on a
/// restart), so anything that must survive goes into the decision's `state`, not into `self`.
pub trait Policy: Sized + 'static {
    /// Typed config, deserialised from the scale set's `spec.policy.config` JSON. An empty config is `null`.
    type Config: DeserializeOwned;
    /// Policy name, reported by `lifecycle.info`.
    const NAME: &'static str;
    /// Policy version, reported by `lifecycle.info`.
    const VERSION: &'static str;

    /// Validates the config and builds the instance. A rejected config becomes a status condition on the scale set.
    ///
    /// # Errors
    /// [`PolicyError::InvalidConfig`] when the config cannot be used.
    fn configure(scale_set: &ScaleSetRef, config: Self::Config) -> Result<Self, PolicyError>;
}

/// Decides desired runners, advertised capacity, the steady-state floor and whether surplus idle runners may go.
pub trait Scaler: Policy {
    /// One decision. The host clamps it into the scale set's bounds and validates it before acting.
    ///
    /// # Errors
    /// Any error makes the host apply the scale set's failure policy.
    fn decide(&mut self, input: &ScaleInput) -> Result<ScaleDecision, PolicyError>;
}

/// Chooses which idle runners go when the scale set shrinks.
pub trait ScaleDown: Policy {
    /// Names of runners to remove, most preferred first, taken from `input.candidates`. The host drops busy
    /// runners and rejects names that are not candidates.
    ///
    /// # Errors
    /// Any error makes the host fall back to ARC's order (pending first, then running, oldest first).
    fn select(&mut self, input: &ScaleDownInput) -> Result<Vec<String>, PolicyError>;
}

/// Shapes runner pods and labels them on job events.
pub trait PodMutator: Policy {
    /// Receives the runner pod template (a PodTemplateSpec) and returns a JSON merge patch, or None for no change.
    /// The host applies only patches on its allowlist (labels, annotations, nodeSelector, tolerations, affinity,
    /// resources, env, image, ...).
    ///
    /// # Errors
    /// Any error makes the host create the pod unmodified and report the failure.
    fn mutate_runner_pod(
        &mut self,
        runner_name: &str,
        pod_template: &serde_json::Value,
    ) -> Result<Option<serde_json::Value>, PolicyError> {
        let _ = (runner_name, pod_template);
        Ok(None)
    }

    /// Labels and annotations to set on the runner pod when a job starts or completes.
    ///
    /// # Errors
    /// Any error leaves the pod's metadata unchanged.
    fn on_job_event(&mut self, event: &JobEvent) -> Result<PodMetadata, PolicyError> {
        let _ = event;
        Ok(PodMetadata::default())
    }
}
