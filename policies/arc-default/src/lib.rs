//! `arc-default`: exactly what ARC's listener and EphemeralRunnerSet controller do.
//!
//! - desired = min(minRunners + totalAssignedJobs, maxRunners) — minRunners is an idle buffer on top of demand;
//! - capacity advertised to GitHub = maxRunners; steady-state floor = minRunners;
//! - drain (patchID 0) only when no job event was handled since the previous decision, the target is unchanged and
//!   the target equals minRunners;
//! - scale-down order: pending runners first, then running ones, oldest first; busy runners never.
//!
//! The host links this crate natively as its fallback when a policy fails, so the rule exists once.

use gha_autoscaler_policy::prelude::*;
use serde::Deserialize;

/// ARC's formula. It takes no settings.
#[derive(Debug, Default, Clone, Copy)]
pub struct ArcDefault;

/// `arc-default` accepts an empty config (`null` or `{}`) and rejects anything else.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

impl Policy for ArcDefault {
    type Config = Option<Config>;
    const NAME: &'static str = "arc-default";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn configure(_: &ScaleSetRef, _: Option<Config>) -> Result<Self, PolicyError> {
        Ok(ArcDefault)
    }
}

impl ArcDefault {
    /// ARC's target: `min(minRunners + totalAssignedJobs, maxRunners)`.
    pub fn target(input: &ScaleInput) -> u32 {
        let bounds = input.bounds;
        bounds.min_runners.saturating_add(input.statistics.assigned_jobs).min(bounds.max_runners)
    }

    /// ARC's patchID-0 rule.
    pub fn drain(input: &ScaleInput, target: u32) -> bool {
        input.job_events_since_previous == 0
            && input.previous.is_some_and(|p| p.desired_runners == target)
            && target == input.bounds.min_runners
    }

    /// ARC's scale-down order: idle pending runners, then idle running runners, each oldest first.
    pub fn order(input: &ScaleDownInput) -> Vec<String> {
        let mut idle: Vec<&RunnerInfo> = input.candidates.iter().filter(|c| !c.is_busy()).collect();
        idle.sort_by_key(|c| (c.phase, c.created_unix_ms));
        idle.into_iter().take(input.surplus as usize).map(|c| c.name.clone()).collect()
    }
}

impl Scaler for ArcDefault {
    fn decide(&mut self, input: &ScaleInput) -> Result<ScaleDecision, PolicyError> {
        let target = Self::target(input);
        Ok(ScaleDecision {
            desired_runners: target,
            max_capacity: Some(input.bounds.max_runners),
            min_runners: input.bounds.min_runners,
            drain: Self::drain(input, target),
            reason: format!(
                "min {} + assigned {} (max {})",
                input.bounds.min_runners, input.statistics.assigned_jobs, input.bounds.max_runners
            ),
            ..Default::default()
        })
    }
}

impl ScaleDown for ArcDefault {
    fn select(&mut self, input: &ScaleDownInput) -> Result<Vec<String>, PolicyError> {
        Ok(Self::order(input))
    }
}

#[cfg(target_arch = "wasm32")]
gha_autoscaler_policy::export_policy!(ArcDefault: Scaler, ScaleDown);

#[cfg(test)]
mod tests {
    use gha_autoscaler_policy::testing::Replay;

    use super::*;

    fn input(assigned: u32, min: u32, max: u32, events: u32) -> ScaleInput {
        ScaleInput {
            statistics: JobStatistics { assigned_jobs: assigned, ..Default::default() },
            bounds: Bounds { min_runners: min, max_runners: max },
            job_events_since_previous: events,
            ..Default::default()
        }
    }

    #[test]
    fn desired_is_min_plus_assigned_capped_at_max() {
        let mut p = ArcDefault;
        assert_eq!(p.decide(&input(3, 1, 10, 0)).unwrap().desired_runners, 4);
        assert_eq!(p.decide(&input(30, 1, 10, 0)).unwrap().desired_runners, 10);
        let d = p.decide(&input(0, 2, 10, 0)).unwrap();
        assert_eq!((d.desired_runners, d.min_runners, d.max_capacity), (2, 2, Some(10)));
    }

    #[test]
    fn drains_only_after_a_quiet_repeat_at_min() {
        let mut replay = Replay::new(ArcDefault);
        // First decision: there is no previous target, so no drain even at min.
        assert!(!replay.step(input(0, 1, 5, 0)).unwrap().drain);
        // Same target, at min, no events: drain.
        assert!(replay.step(input(0, 1, 5, 0)).unwrap().drain);
        // A job event since the previous decision blocks the drain.
        assert!(!replay.step(input(0, 1, 5, 2)).unwrap().drain);
        // Target above min never drains.
        assert!(!replay.step(input(2, 1, 5, 0)).unwrap().drain);
        assert!(!replay.step(input(2, 1, 5, 0)).unwrap().drain);
        // Back to min: the target changed, so the first decision at min does not drain; the next one does.
        assert!(!replay.step(input(0, 1, 5, 0)).unwrap().drain);
        assert!(replay.step(input(0, 1, 5, 0)).unwrap().drain);
    }

    #[test]
    fn scale_down_takes_idle_pending_then_running_oldest_first() {
        let input = ScaleDownInput {
            surplus: 3,
            candidates: vec![
                RunnerInfo::idle("run-new", RunnerPhase::Running, 30),
                RunnerInfo::busy("run-busy", RunnerPhase::Running, 1),
                RunnerInfo::idle("pend-new", RunnerPhase::Pending, 20),
                RunnerInfo::idle("run-old", RunnerPhase::Running, 10),
                RunnerInfo::idle("pend-old", RunnerPhase::Pending, 5),
            ],
            ..Default::default()
        };
        assert_eq!(ArcDefault.select(&input).unwrap(), ["pend-old", "pend-new", "run-old"]);
    }

    #[test]
    fn config_rejects_unknown_settings() {
        let err = gha_autoscaler_policy::parse_config::<Option<Config>>(r#"{"factor": 2}"#).unwrap_err();
        assert!(matches!(err, PolicyError::InvalidConfig(_)));
        assert!(gha_autoscaler_policy::parse_config::<Option<Config>>("").unwrap().is_none());
    }
}
