//! Feeding a sequence of inputs to a scale set's policy the way the listener does.

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
