//! Feeding a sequence of inputs to a scale set's policy the way the listener does.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::scale_set_policy::{Decided, ScaleSetPolicy};
use crate::types::{ScaleDecision, ScaleInput};

/// Drives [`ScaleSetPolicy::decide`] through recorded inputs: when an input leaves `previous` unset and `state`
/// empty, they are filled from the last decision, as the listener would.
pub struct Replayer<'a> {
    policy: &'a ScaleSetPolicy,
    last: Option<(ScaleDecision, u64)>,
}

impl<'a> Replayer<'a> {
    /// Starts a replay.
    pub fn new(policy: &'a ScaleSetPolicy) -> Self {
        Replayer { policy, last: None }
    }

    /// One decision.
    ///
    /// # Errors
    /// The policy's error under failure policy `Fail`.
    pub fn step(&mut self, mut input: ScaleInput) -> Result<Decided<ScaleDecision>> {
        if let Some((last, at)) = &self.last {
            if input.previous.is_none() {
                input.previous = Some(last.to_previous(*at, input.bounds));
            }
            if input.state.is_empty() {
                input.state = last.state.clone();
            }
        }
        let decided = self.policy.decide(&input)?;
        self.last = Some((decided.value.clone(), input.now_unix_ms));
        Ok(decided)
    }
}

/// One line of a decision log (written by the listener and by `simulate`, replayed by `policy run`): what the
/// policy saw, which module answered, and what it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRecord {
    /// sha256 of the acting component.
    pub policy_sha256: String,
    /// The input.
    pub input: ScaleInput,
    /// The validated decision acted on.
    pub output: ScaleDecision,
    /// Who answered: `policy`, `built-in`, `fallback`, `hold-last`.
    pub outcome: String,
    /// The shadow policy's decision when it disagreed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow_output: Option<ScaleDecision>,
}

impl DecisionRecord {
    /// The record of `decided` for `input`, with the policy's shadow divergence if any.
    pub fn new(policy: &ScaleSetPolicy, sha256: &str, input: &ScaleInput, decided: &Decided<ScaleDecision>) -> Self {
        DecisionRecord {
            policy_sha256: sha256.to_string(),
            input: input.clone(),
            output: decided.value.clone(),
            outcome: decided.outcome.label().to_string(),
            shadow_output: policy.take_shadow_divergence(),
        }
    }
}
