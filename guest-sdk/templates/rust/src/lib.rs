//! A scaling policy in Rust: ARC's formula plus one spare runner per `spareEvery` assigned jobs.

use gha_autoscaler_policy::prelude::*;

/// Settings; every field optional.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// One spare runner per this many assigned jobs (0 = none).
    pub spare_every: u32,
}

/// The policy.
pub struct Spares {
    config: Config,
}

impl Policy for Spares {
    type Config = Option<Config>;
    const NAME: &'static str = "{{name}}";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn configure(scale_set: &ScaleSetRef, config: Option<Config>) -> Result<Self, PolicyError> {
        log::info(&format!("configured for {}/{}", scale_set.namespace, scale_set.name));
        Ok(Spares { config: config.unwrap_or_default() })
    }
}

impl Scaler for Spares {
    fn decide(&mut self, input: &ScaleInput) -> Result<ScaleDecision, PolicyError> {
        let (min, max) = (input.bounds.min_runners, input.bounds.max_runners);
        let assigned = input.statistics.assigned_jobs;
        let spares = if self.config.spare_every > 0 { assigned.div_ceil(self.config.spare_every) } else { 0 };
        let desired = (min + assigned + spares).min(max);
        // ARC's drain rule: quiet since the last decision, target unchanged, at the floor.
        let drain = input.job_events_since_previous == 0
            && input.previous.as_ref().is_some_and(|p| p.desired_runners == desired)
            && desired == min;
        Ok(ScaleDecision {
            desired_runners: desired,
            max_capacity: Some(max),
            min_runners: min,
            drain,
            reason: format!("min {min} + assigned {assigned} + spares {spares}"),
            ..Default::default()
        })
    }
}

#[cfg(target_arch = "wasm32")]
gha_autoscaler_policy::export_policy!(Spares: Scaler);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_spare_per_two_assigned_jobs_within_max() {
        let mut policy = Spares { config: Config { spare_every: 2 } };
        let mut input = ScaleInput::default();
        input.bounds.min_runners = 1;
        input.bounds.max_runners = 10;
        input.statistics.assigned_jobs = 3;
        assert_eq!(policy.decide(&input).unwrap().desired_runners, 6);
        input.statistics.assigned_jobs = 20;
        assert_eq!(policy.decide(&input).unwrap().desired_runners, 10);
    }
}
