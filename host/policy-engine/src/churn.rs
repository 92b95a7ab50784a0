//! Churn damping owned by the host: a policy that flips between scaling up and draining cannot make the
//! controller create and delete runner pods in a loop. Time is the decision's `now`, so `simulate` damps exactly as
//! the listener does.
//!
//! Two rules, each counted in `gha_policy_churn_damped_total{kind}`:
//! - **drain**: a drain (patchID 0, idle runners deleted) is deferred until `drainCooldownMs` after the last
//!   raise of desired runners: the direction cannot change from up to down-with-deletions faster than that;
//! - **scale-up**: within a rolling minute the policy may add at most `maxScaleUpPerMinute` runners to its desired
//!   count. ARC's own target (minimum + assigned jobs) is never held back, so no job waits on the damping.

use std::collections::VecDeque;

use crate::limits::PolicyLimits;
use crate::types::{ScaleDecision, ScaleInput};

const MINUTE_MS: u64 = 60_000;

/// What a scale set's policy did lately.
#[derive(Debug, Default)]
pub(crate) struct ChurnGuard {
    /// The desired count acted on last.
    last_desired: Option<u32>,
    /// When desired last went up, unix ms.
    last_raise_ms: Option<u64>,
    /// Raises within the last minute: (unix ms, runners added).
    raises: VecDeque<(u64, u32)>,
}

/// Which rule damped a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Damped {
    /// A drain was deferred.
    Drain,
    /// A raise was cut to the budget.
    ScaleUp,
}

impl Damped {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Damped::Drain => "drain",
            Damped::ScaleUp => "scale-up",
        }
    }
}

impl ChurnGuard {
    /// Damps `decision` (already validated) in place; returns the rules that applied, with notes.
    pub(crate) fn damp(
        &mut self,
        decision: &mut ScaleDecision,
        input: &ScaleInput,
        limits: &PolicyLimits,
    ) -> Vec<(Damped, String)> {
        let now = input.now_unix_ms;
        let mut damped = Vec::new();
        while self.raises.front().is_some_and(|(at, _)| now.saturating_sub(*at) >= MINUTE_MS) {
            self.raises.pop_front();
        }
        let previous = self.last_desired.unwrap_or(input.bounds.min_runners);
        if decision.desired_runners > previous {
            let spent: u32 = self.raises.iter().map(|(_, n)| n).sum();
            let budget = limits.scale_up_per_minute(input.bounds.max_runners).saturating_sub(spent);
            let arc_target =
                input.bounds.clamp(input.bounds.min_runners.saturating_add(input.statistics.assigned_jobs));
            let allowed = previous.saturating_add(budget).max(arc_target);
            if decision.desired_runners > allowed {
                damped.push((
                    Damped::ScaleUp,
                    format!(
                        "desiredRunners {} -> {allowed} (scale-up budget per minute spent)",
                        decision.desired_runners
                    ),
                ));
                decision.desired_runners = allowed.max(decision.min_runners);
            }
            if decision.desired_runners > previous {
                self.raises.push_back((now, decision.desired_runners - previous));
                self.last_raise_ms = Some(now);
            }
        }
        let cooling = self.last_raise_ms.is_some_and(|at| now.saturating_sub(at) < u64::from(limits.drain_cooldown_ms));
        if decision.drain && cooling {
            decision.drain = false;
            damped.push((
                Damped::Drain,
                format!("drain deferred ({} ms cool-down after a raise)", limits.drain_cooldown_ms),
            ));
        }
        self.last_desired = Some(decision.desired_runners);
        damped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Bounds, JobStatistics};

    fn input(now_s: u64, assigned: u32) -> ScaleInput {
        ScaleInput {
            now_unix_ms: now_s * 1000,
            bounds: Bounds { min_runners: 0, max_runners: 20 },
            statistics: JobStatistics { assigned_jobs: assigned, ..Default::default() },
            ..Default::default()
        }
    }

    fn decision(desired: u32, drain: bool) -> ScaleDecision {
        ScaleDecision { desired_runners: desired, drain, ..Default::default() }
    }

    #[test]
    fn a_flipping_policy_adds_at_most_its_budget_a_minute_and_never_drains_what_it_just_raised() {
        let (mut guard, limits) = (ChurnGuard::default(), PolicyLimits::default());
        let (mut added, mut last, mut last_raise) = (0, 0, None);
        for second in 0..120 {
            let mut d = if second % 2 == 0 { decision(20, false) } else { decision(0, true) };
            guard.damp(&mut d, &input(second, 0), &limits);
            if d.desired_runners > last {
                added += d.desired_runners - last;
                last_raise = Some(second);
            }
            if d.drain {
                assert!(
                    last_raise.is_none_or(|at| second - at >= 10),
                    "drained at {second} s, raised at {last_raise:?}"
                );
            }
            last = d.desired_runners;
        }
        assert!(added <= 2 * 40 + 40, "two minutes of a 40-a-minute budget: {added}");
    }

    #[test]
    fn arcs_target_is_never_held_back() {
        let (mut guard, limits) =
            (ChurnGuard::default(), PolicyLimits { max_scale_up_per_minute: 1, ..Default::default() });
        let mut d = decision(20, false);
        guard.damp(&mut d, &input(0, 0), &limits);
        assert_eq!(d.desired_runners, 1, "the policy's raise is cut to the budget");
        let mut d = decision(20, false);
        guard.damp(&mut d, &input(1, 7), &limits);
        assert_eq!(d.desired_runners, 7, "assigned jobs always get their runners");
    }

    #[test]
    fn a_steady_policy_is_untouched() {
        let (mut guard, limits) = (ChurnGuard::default(), PolicyLimits::default());
        for (second, desired, drain) in [(0, 3, false), (30, 3, false), (80, 0, false), (140, 0, true)] {
            let mut d = decision(desired, drain);
            assert!(guard.damp(&mut d, &input(second, desired), &limits).is_empty(), "at {second} s");
            assert_eq!((d.desired_runners, d.drain), (desired, drain));
        }
    }
}
