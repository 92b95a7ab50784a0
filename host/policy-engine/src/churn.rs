//! Churn damping owned by the host: a policy that flips between scaling up and draining cannot make the
//! controller create and delete runner pods in a loop. Time is the decision's `now`, so `simulate` damps exactly as
//! the listener does.
//!
//! Two budgets per rolling minute, each counted in `gha_policy_churn_damped_total{kind}` when it bites:
//! - **scale-up**: the policy may add at most `maxScaleUpPerMinute` runners to its desired count. ARC's own
//!   target (minimum + assigned jobs) is never held back, so no job waits on the damping;
//! - **drain**: at most `maxDirectionChangesPerMinute` drains (patchID 0, idle runners deleted) may follow a raise;
//!   past that a drain waits for the window to move.

use std::collections::VecDeque;

use crate::limits::PolicyLimits;
use crate::types::{ScaleDecision, ScaleInput};

const MINUTE_MS: u64 = 60_000;

/// What a scale set's policy did lately.
#[derive(Debug, Default)]
pub(crate) struct ChurnGuard {
    /// The desired count acted on last.
    last_desired: Option<u32>,
    /// Whether desired went up since the last drain.
    raised_since_drain: bool,
    /// Raises within the last minute: (unix ms, runners added).
    raises: VecDeque<(u64, u32)>,
    /// Direction changes (drains after a raise) within the last minute, unix ms.
    changes: VecDeque<u64>,
}

/// Which budget damped a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Damped {
    /// A drain after a raise was deferred.
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
    /// Damps `decision` (already validated) in place; returns the budgets that bit, with notes.
    pub(crate) fn damp(
        &mut self,
        decision: &mut ScaleDecision,
        input: &ScaleInput,
        limits: &PolicyLimits,
    ) -> Vec<(Damped, String)> {
        let now = input.now_unix_ms;
        let recent = |at: &u64| now.saturating_sub(*at) < MINUTE_MS;
        while self.raises.front().is_some_and(|(at, _)| !recent(at)) {
            self.raises.pop_front();
        }
        while self.changes.front().is_some_and(|at| !recent(at)) {
            self.changes.pop_front();
        }
        let mut damped = Vec::new();
        let previous = self.last_desired.unwrap_or(input.bounds.min_runners);
        if decision.desired_runners > previous {
            let spent: u32 = self.raises.iter().map(|(_, n)| n).sum();
            let budget = limits.scale_up_per_minute(input.bounds.max_runners).saturating_sub(spent);
            let arc_target = arc_default::ArcDefault::target(input);
            let allowed = previous.saturating_add(budget).max(arc_target).max(decision.min_runners);
            if decision.desired_runners > allowed {
                let note = format!("desiredRunners {} -> {allowed} (scale-up budget spent)", decision.desired_runners);
                damped.push((Damped::ScaleUp, note));
                decision.desired_runners = allowed;
            }
            if decision.desired_runners > previous {
                self.raises.push_back((now, decision.desired_runners - previous));
                self.raised_since_drain = true;
            }
        }
        if decision.drain && self.raised_since_drain {
            if self.changes.len() < limits.max_direction_changes_per_minute as usize {
                self.changes.push_back(now);
            } else {
                decision.drain = false;
                let note = format!("drain deferred ({} direction changes a minute at most)", self.changes.len());
                damped.push((Damped::Drain, note));
            }
        }
        if decision.drain {
            self.raised_since_drain = false;
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
    fn a_flipping_policy_adds_at_most_its_budget_and_changes_direction_at_most_six_times_a_minute() {
        let (mut guard, limits) = (ChurnGuard::default(), PolicyLimits::default());
        let (mut added, mut last, mut changes) = (0, 0, 0);
        for second in 0..120 {
            let mut d = if second % 2 == 0 { decision(20, false) } else { decision(0, true) };
            guard.damp(&mut d, &input(second, 0), &limits);
            added += d.desired_runners.saturating_sub(last);
            changes += u32::from(d.drain && last > 0);
            last = d.desired_runners;
        }
        assert!(added <= 2 * 40 + 40, "two minutes of a 40-a-minute budget: {added}");
        assert!(changes <= 2 * 6 + 6, "two minutes of six direction changes: {changes}");
    }

    #[test]
    fn arcs_target_is_never_held_back() {
        let limits = PolicyLimits { max_scale_up_per_minute: 1, ..Default::default() };
        let mut guard = ChurnGuard::default();
        let mut d = decision(20, false);
        guard.damp(&mut d, &input(0, 0), &limits);
        assert_eq!(d.desired_runners, 1, "the policy's raise is cut to the budget");
        let mut d = decision(20, false);
        guard.damp(&mut d, &input(1, 7), &limits);
        assert_eq!(d.desired_runners, 7, "assigned jobs always get their runners");
    }

    #[test]
    fn arcs_rhythm_is_untouched() {
        let (mut guard, limits) = (ChurnGuard::default(), PolicyLimits::default());
        // Bursts and drains a second apart, as ARC's formula does with short polls.
        for second in 0..30 {
            let (desired, drain) = if second % 3 == 0 { (3, false) } else { (0, second % 3 == 2) };
            let mut d = decision(desired, drain);
            let damped = guard.damp(&mut d, &input(second * 10, desired), &limits);
            assert!(damped.is_empty(), "at {second}: {damped:?}");
            assert_eq!((d.desired_runners, d.drain), (desired, drain));
        }
    }
}
