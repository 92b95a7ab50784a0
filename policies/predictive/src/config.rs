//! The `predictive` policy's settings: how early to warm, how much waste it may spend, how much it remembers.

use gha_autoscaler_policy::PolicyError;
use serde::Deserialize;

/// Every field is optional; the defaults suit runners that start in 10–30 s.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// Runner start-up to hide, seconds: runners are asked for this long before they are expected to be needed.
    pub lead_seconds: f64,
    /// Share of a predicted fan-out to warm (1 = all of it; less spends less on predictions that fail).
    pub prewarm_factor: f64,
    /// Most runners warmed for predicted fan-outs at once; none = up to maxRunners.
    pub max_prewarm: Option<u32>,
    /// Warm this many mean deviations before a predecessor's mean duration: higher catches early finishes,
    /// lower idles less.
    pub early_deviations: f64,
    /// How long past its late expected end a predecessor still holds its warmed runners, seconds.
    pub patience_seconds: f64,
    /// Jobs of a run queued this long after one of its jobs completed count as that job's fan-out, seconds.
    pub window_seconds: f64,
    /// Smallest learned fan-out (jobs per finished group: a job, or every instance of a matrix) worth warming for.
    pub min_fanout: f64,
    /// Scale of the idle pool kept for jobs that start runs (their expected arrivals during `leadSeconds`). 2 suits
    /// workflows whose runs start with several jobs at once (lint and build) for a little more idle time.
    pub baseline_factor: f64,
    /// Most idle runners in that pool.
    pub max_baseline: u32,
    /// Most (workflow, job) pairs remembered; the least recently seen are forgotten first.
    pub max_learned: usize,
    /// Largest state the policy returns: keep it equal to the scale set's `spec.policy.limits.maxStateBytes`
    /// (the host refuses larger states). The oldest in-flight entries, then the least recently seen pairs, are
    /// dropped to fit.
    pub max_state_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lead_seconds: 25.0,
            prewarm_factor: 1.0,
            max_prewarm: None,
            early_deviations: 1.75,
            patience_seconds: 120.0,
            window_seconds: 30.0,
            min_fanout: 0.5,
            baseline_factor: 1.0,
            max_baseline: 8,
            max_learned: 48,
            max_state_bytes: 4096,
        }
    }
}

impl Config {
    /// Refuses settings that make no sense, naming the field.
    ///
    /// # Errors
    /// [`PolicyError::InvalidConfig`].
    pub fn validate(&self) -> Result<(), PolicyError> {
        let fields = [
            ("leadSeconds", self.lead_seconds, 3600.0),
            ("prewarmFactor", self.prewarm_factor, 10.0),
            ("earlyDeviations", self.early_deviations, 10.0),
            ("patienceSeconds", self.patience_seconds, 86_400.0),
            ("windowSeconds", self.window_seconds, 3600.0),
            ("minFanout", self.min_fanout, 10_000.0),
            ("baselineFactor", self.baseline_factor, 100.0),
        ];
        for (name, value, max) in fields {
            if !(0.0..=max).contains(&value) {
                return Err(PolicyError::InvalidConfig(format!("{name} must be within 0..={max}, got {value}")));
            }
        }
        if !(1..=1000).contains(&self.max_learned) {
            return Err(PolicyError::InvalidConfig(format!(
                "maxLearned must be within 1..=1000, got {}",
                self.max_learned
            )));
        }
        if !(512..=65_536).contains(&self.max_state_bytes) {
            return Err(PolicyError::InvalidConfig(format!(
                "maxStateBytes must be within 512..=65536, got {}",
                self.max_state_bytes
            )));
        }
        Ok(())
    }
}
