//! What the EphemeralRunnerSet controller does on one reconcile, decided from the set's spec and its runners —
//! ARC's rules (§1.5 of the reference):
//!
//! - `total = pending + running + failed` (failed runners consume capacity; finished, outdated and deleting ones
//!   do not);
//! - scaling runs only when `patchID == 0` or `patchID` differs from the latest patch-id stamped on a runner (a
//!   patch not yet acted on); finished runners are cleaned up on the way;
//! - `total < replicas`: create the difference, stamped with the current patchID;
//! - `patchID > 0 && total >= replicas`: nothing (the listener may be ahead of the runners' status);
//! - `patchID == 0 && total > replicas`: remove the surplus among idle, registered runners — by default pending
//!   ones first, then running ones, oldest first; the scale set's policy may choose instead (busy runners are never
//!   offered, and the engine drops any it names).

use gha_policy_engine::types::{RunnerInfo, RunnerPhase, ScaleDownInput};

/// Phase of an EphemeralRunner as the controller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerState {
    /// No phase yet, or Pending.
    Pending,
    /// Running.
    Running,
    /// Succeeded.
    Finished,
    /// Failed.
    Failed,
    /// Built from an old spec.
    Outdated,
}

/// One EphemeralRunner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerView {
    /// Name.
    pub name: String,
    /// Phase.
    pub state: RunnerState,
    /// It has a deletionTimestamp.
    pub deleting: bool,
    /// Its `patch-id` annotation.
    pub patch_id: i64,
    /// Registered with GitHub (a runner id in status).
    pub registered: bool,
    /// Has a job (`status.jobId` set by the listener).
    pub busy: bool,
    /// Creation time, ms since the epoch.
    pub created_unix_ms: u64,
}

/// What to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScalePlan {
    /// EphemeralRunners to create (stamped with the current patchID).
    pub create: u32,
    /// Idle runners to remove: RemoveRunner on GitHub first, then delete the CR (JobStillRunning = skip).
    pub remove: Vec<String>,
    /// Finished runners to delete.
    pub cleanup: Vec<String>,
    /// pending + running + failed, for the status.
    pub current: u32,
    /// Pending runners.
    pub pending: u32,
    /// Running runners.
    pub running: u32,
    /// Failed runners.
    pub failed: u32,
}

/// The idle, registered runners that may go, as scale-down candidates.
pub fn candidates(runners: &[RunnerView], now_unix_ms: u64, surplus: u32) -> ScaleDownInput {
    let candidates = runners
        .iter()
        .filter(|r| !r.deleting && !r.busy && r.registered)
        .filter_map(|r| {
            let phase = match r.state {
                RunnerState::Pending => RunnerPhase::Pending,
                RunnerState::Running => RunnerPhase::Running,
                _ => return None,
            };
            Some(RunnerInfo::idle(r.name.clone(), phase, r.created_unix_ms))
        })
        .collect();
    ScaleDownInput { now_unix_ms, surplus, candidates, attributes: Vec::new() }
}

/// Plans one reconcile. `select` chooses which candidates go (the policy's `scale-down.select`, validated by the
/// engine, or ARC's order when the policy has none); names it returns that are not candidates are ignored.
pub fn plan(
    replicas: u32,
    patch_id: i64,
    runners: &[RunnerView],
    now_unix_ms: u64,
    select: impl FnOnce(&ScaleDownInput) -> Vec<String>,
) -> ScalePlan {
    let live = |state| runners.iter().filter(|r| !r.deleting && r.state == state).count() as u32;
    let (pending, running, failed) =
        (live(RunnerState::Pending), live(RunnerState::Running), live(RunnerState::Failed));
    let current = pending + running + failed;
    let mut plan = ScalePlan { current, pending, running, failed, ..ScalePlan::default() };
    let latest = runners.iter().map(|r| r.patch_id).max().unwrap_or(0);
    if patch_id != 0 && patch_id == latest {
        return plan;
    }
    plan.cleanup =
        runners.iter().filter(|r| !r.deleting && r.state == RunnerState::Finished).map(|r| r.name.clone()).collect();
    if current < replicas {
        plan.create = replicas - current;
    } else if patch_id == 0 && current > replicas {
        let input = candidates(runners, now_unix_ms, current - replicas);
        let mut chosen: Vec<String> =
            select(&input).into_iter().filter(|name| input.candidates.iter().any(|c| &c.name == name)).collect();
        chosen.dedup();
        chosen.truncate(input.surplus as usize);
        plan.remove = chosen;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner(name: &str, state: RunnerState, patch_id: i64, created: u64) -> RunnerView {
        RunnerView {
            name: name.into(),
            state,
            deleting: false,
            patch_id,
            registered: true,
            busy: false,
            created_unix_ms: created,
        }
    }

    fn arc_order(input: &ScaleDownInput) -> Vec<String> {
        arc_default::ArcDefault::order(input)
    }

    #[test]
    fn missing_runners_are_created_on_a_new_patch() {
        let runners = [runner("a", RunnerState::Running, 1, 1), runner("b", RunnerState::Failed, 1, 2)];
        let plan = plan(5, 2, &runners, 0, arc_order);
        assert_eq!((plan.create, plan.current, plan.failed), (3, 2, 1), "failed runners consume capacity");
    }

    #[test]
    fn a_patch_already_acted_on_does_nothing() {
        let runners = [runner("a", RunnerState::Running, 7, 1)];
        assert_eq!(plan(3, 7, &runners, 0, arc_order).create, 0);
    }

    #[test]
    fn non_zero_patches_never_scale_down() {
        let runners = [runner("a", RunnerState::Running, 1, 1), runner("b", RunnerState::Running, 1, 2)];
        let plan = plan(0, 2, &runners, 0, arc_order);
        assert!(plan.remove.is_empty());
        assert_eq!(plan.create, 0);
    }

    #[test]
    fn patch_zero_removes_idle_registered_runners_pending_first_oldest_first() {
        let mut busy = runner("busy", RunnerState::Running, 1, 0);
        busy.busy = true;
        let mut unregistered = runner("unregistered", RunnerState::Pending, 1, 0);
        unregistered.registered = false;
        let runners = [
            busy,
            unregistered,
            runner("run-old", RunnerState::Running, 1, 1),
            runner("pend-new", RunnerState::Pending, 1, 9),
            runner("run-new", RunnerState::Running, 1, 5),
            runner("done", RunnerState::Finished, 1, 3),
        ];
        let plan = plan(2, 0, &runners, 0, arc_order);
        assert_eq!(plan.current, 5);
        assert_eq!(plan.remove, ["pend-new", "run-old", "run-new"]);
        assert_eq!(plan.cleanup, ["done"]);
    }

    #[test]
    fn a_policy_chooses_among_candidates_only() {
        let runners = [runner("a", RunnerState::Running, 1, 1), runner("b", RunnerState::Running, 1, 2)];
        let plan = plan(1, 0, &runners, 0, |_| vec!["b".into(), "stranger".into(), "a".into()]);
        assert_eq!(plan.remove, ["b"], "strangers dropped, capped at the surplus");
    }
}
