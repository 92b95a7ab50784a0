//! Native test helpers: captured logs and metrics, and [`Replay`], which feeds a sequence of inputs to a
//! [`Scaler`] the way the listener does (previous decision, event count and state threaded from call to call).

use std::cell::RefCell;

use crate::log::Level;
use crate::types::{ScaleDecision, ScaleInput};
use crate::{PolicyError, Scaler};

thread_local! {
    static LOGS: RefCell<Vec<(Level, String)>> = const { RefCell::new(Vec::new()) };
    static METRICS: RefCell<Vec<(String, f64)>> = const { RefCell::new(Vec::new()) };
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn capture_log(level: Level, message: &str, fields: &[(&str, &str)]) {
    let mut line = message.to_string();
    for (k, v) in fields {
        line.push_str(&format!(" {k}={v}"));
    }
    LOGS.with(|logs| logs.borrow_mut().push((level, line)));
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn capture_metric(name: &str, value: f64, _labels: &[(&str, &str)]) {
    METRICS.with(|m| m.borrow_mut().push((name.to_string(), value)));
}

/// Takes the log lines captured on this thread so far.
pub fn take_logs() -> Vec<(Level, String)> {
    LOGS.with(|logs| std::mem::take(&mut *logs.borrow_mut()))
}

/// Takes the metric updates captured on this thread so far.
pub fn take_metrics() -> Vec<(String, f64)> {
    METRICS.with(|m| std::mem::take(&mut *m.borrow_mut()))
}

/// Drives a [`Scaler`] through a sequence of inputs as the listener would. Unlike the host it does not clamp.
pub struct Replay<P> {
    policy: P,
    last: Option<(ScaleDecision, u64)>,
}

impl<P: Scaler> Replay<P> {
    /// Starts a replay with a configured policy.
    pub fn new(policy: P) -> Self {
        Replay { policy, last: None }
    }

    /// Feeds one input; `previous` and `state` are filled from the last decision.
    ///
    /// # Errors
    /// The policy's error.
    pub fn step(&mut self, mut input: ScaleInput) -> Result<ScaleDecision, PolicyError> {
        if let Some((last, at)) = &self.last {
            input.previous = Some(last.to_previous(*at, input.bounds));
            input.state = last.state.clone();
        }
        let decision = self.policy.decide(&input)?;
        self.last = Some((decision.clone(), input.now_unix_ms));
        Ok(decision)
    }

    /// The policy under test.
    pub fn policy(&mut self) -> &mut P {
        &mut self.policy
    }
}
