//! `predictive`: warms runners before a workflow's fan-out arrives, from what the workflow did before.
//!
//! Real CI repeats itself: `build` runs for minutes, then its run queues a 40-way test matrix at once. From the job
//! events the host passes to every decision (WIT 0.2.0), the policy learns per (workflow, job) pair how many jobs
//! its completion queues (fan-out) and how long it runs. A job is a group as `needs` sees it: every instance of a
//! matrix together, finished when its last instance is, so a deploy that needs a matrix (a fan-in) and a second
//! matrix that needs the first are learned and warmed like a build's fan-out. While such a group runs, the
//! expected fan-out is asked for `leadSeconds` before the group's earliest likely end, so the runners have started
//! when its dependents are queued; if it runs far past its expected end, or fails, the runners are released. Jobs
//! that start runs get a small idle pool sized by how often runs start (recently, and at this hour on past days)
//! and how many jobs each starts with.
//!
//! desired = minRunners + assigned jobs + warmed for running groups + outstanding fan-out + idle pool
//!
//! What it learns travels in the decision's `state`, which the listener persists, so it survives restarts; it is
//! trimmed to `maxStateBytes` (keep it equal to the scale set's `spec.policy.limits.maxStateBytes`), in-flight
//! bookkeeping before anything learned.
//!
//! ```json
//! {"leadSeconds": 25, "prewarmFactor": 1.0, "maxPrewarm": 80, "earlyDeviations": 1.75, "patienceSeconds": 120,
//!  "baselineFactor": 1.0, "maxBaseline": 8, "maxLearned": 48, "maxStateBytes": 4096}
//! ```

mod baseline;
mod config;
mod in_flight;
mod learned;

use gha_autoscaler_policy::prelude::*;
use serde::{Deserialize, Serialize};

pub use config::Config;
use in_flight::{Finished, Group, InFlight, Window, group_id};
use learned::{Learned, Memory, combine, name_hash, workflow_hash};

/// Everything the policy carries from decision to decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    #[serde(rename = "m", default)]
    memory: Memory,
    #[serde(rename = "f", default)]
    in_flight: InFlight,
    #[serde(rename = "b", default)]
    baseline: baseline::Baseline,
}

/// The predictive policy.
#[derive(Debug, Clone)]
pub struct Predictive {
    config: Config,
    /// The state last returned, decoded: the next input hands the same bytes back, so they need not be parsed.
    last: Option<(Vec<u8>, State)>,
}

impl Policy for Predictive {
    type Config = Option<Config>;
    const NAME: &'static str = "predictive";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn configure(_: &ScaleSetRef, config: Option<Config>) -> Result<Self, PolicyError> {
        let config = config.unwrap_or_default();
        config.validate()?;
        Ok(Predictive { config, last: None })
    }
}

/// A completed job whose conclusion says its dependents will run.
fn succeeded(event: &JobEventRef) -> bool {
    event.conclusion().is_none_or(|c| matches!(c, "succeeded" | "success" | "Succeeded" | ""))
}

/// Seconds as milliseconds.
fn ms(seconds: f64) -> u64 {
    (seconds.max(0.0) * 1000.0) as u64
}

impl Predictive {
    fn load(&mut self, bytes: &[u8]) -> State {
        match self.last.take() {
            Some((last, state)) if last == bytes => state,
            _ => state::load(bytes).unwrap_or_default(),
        }
    }

    /// When a started group's fan-out is worth runners: from `leadSeconds` before its earliest likely end to
    /// `patienceSeconds` after its latest.
    fn warm_span(&self, started_ms: u64, learned: &Learned) -> (u64, u64) {
        let spread = self.config.early_deviations * learned.deviation;
        let earliest = started_ms + ms(learned.duration - spread);
        let latest = started_ms + ms(learned.duration + spread + self.config.patience_seconds);
        (earliest.saturating_sub(ms(self.config.lead_seconds)), latest)
    }

    /// A started group whose learned fan-out is worth warming for: when it started, and what was learned.
    fn predicting<'m>(&self, group: &Group, memory: &'m Memory) -> Option<(u64, &'m Learned)> {
        let learned = memory.get(group.key()).filter(|l| l.fanout >= self.config.min_fanout)?;
        Some((group.started_ms()?, learned))
    }

    /// Learns from one job event (`key` gives its (workflow, job) key; `done`: the job completes later in the same
    /// batch, whose assignments are taken last); returns whether it queued a job nothing announced (one that
    /// starts a run, or joins a run's start).
    fn observe(&self, state: &mut State, event: &JobEventRef, key: impl Fn() -> u32, done: bool, now: u64) -> bool {
        let limit = self.config.max_learned;
        let run = event.workflow_run_id();
        match event.phase() {
            // Every job the scale set gets is assigned to it (on GitHub Enterprise Server after an `available`
            // message, on github.com at once), so `assigned` counts each job once.
            JobPhase::Available => {}
            JobPhase::Assigned => {
                let key = key();
                let fanout = state.in_flight.queued(run, key);
                if let Some(group) = group_id(run, key).filter(|_| !done) {
                    state.in_flight.assigned(group, key, now);
                }
                return !fanout;
            }
            JobPhase::Started => {
                let key = key();
                if let Some(group) = group_id(run, key) {
                    state.in_flight.started(group, key, event.started_unix_ms().unwrap_or(now));
                }
            }
            JobPhase::Completed if !succeeded(event) => {
                // A failed or cancelled job's dependents are skipped: not what it normally does, so not learned.
                if let Some(group) = group_id(run, key()) {
                    state.in_flight.abandoned(group);
                }
            }
            JobPhase::Completed => {
                let key = key();
                let finished = group_id(run, key).map_or(Finished::Untracked, |group| state.in_flight.finished(group));
                let started = match finished {
                    Finished::Pending => return false,
                    Finished::Last(group) => group.started_ms().or(event.started_unix_ms()),
                    Finished::Untracked => event.started_unix_ms(),
                };
                let learned = state.memory.touch(key, now, limit);
                if let Some(started) = started {
                    let finished = event.finished_unix_ms().unwrap_or(now);
                    learned.observe_duration(finished.saturating_sub(started) as f64 / 1000.0);
                }
                let expected = if learned.fanout >= self.config.min_fanout {
                    (learned.fanout_peak * self.config.prewarm_factor).round() as u32
                } else {
                    0
                };
                let window = Window(run, key, now + ms(self.config.window_seconds), 0, expected);
                if let Some(replaced) = (run != 0).then(|| state.in_flight.open_window(window)).flatten() {
                    state.memory.touch(replaced.key(), now, limit).observe_fanout(replaced.queued());
                }
            }
        }
        false
    }

    /// Trims the state until it encodes within `maxStateBytes`: the oldest fan-out windows first, then the oldest
    /// unfinished groups, and only then the least recently seen of what was learned. Each pass drops a little
    /// more than the share of entries the excess suggests, so a full state costs one or two more encodings.
    fn encode(&self, state: &mut State) -> Vec<u8> {
        loop {
            let bytes = state::save(state);
            let limit = self.config.max_state_bytes;
            if bytes.len() <= limit {
                return bytes;
            }
            let share = |len: usize| (len * (bytes.len() - limit) * 5 / 4).div_ceil(bytes.len()).clamp(1, len);
            let in_flight = &mut state.in_flight;
            let windows = in_flight.windows().count();
            if windows > 0 {
                in_flight.drop_oldest_windows(share(windows));
            } else if !in_flight.groups.is_empty() {
                in_flight.drop_oldest_groups(share(in_flight.groups.len()));
            } else if !state.memory.is_empty() {
                state.memory.forget_oldest(share(state.memory.len()));
            } else {
                return bytes;
            }
        }
    }
}

impl Scaler for Predictive {
    fn decide(&mut self, input: &ScaleInput) -> Result<ScaleDecision, PolicyError> {
        let now = input.now_unix_ms;
        let mut state = self.load(&input.state);
        let limit = self.config.max_learned;
        for closed in state.in_flight.close_windows(now) {
            state.memory.touch(closed.key(), now, limit).observe_fanout(closed.queued());
        }
        let events = &input.job_events;
        // Each distinct string is hashed once, not once per message.
        let workflows: Vec<u32> = events.strings.iter().map(|s| workflow_hash(s)).collect();
        let names: Vec<u32> = events.strings.iter().map(|s| name_hash(s)).collect();
        let hash = |hashes: &[u32], column: &[u32], i: usize| {
            column.get(i).and_then(|&s| hashes.get(s as usize)).copied().unwrap_or_default()
        };
        let (mut arrivals, mut starts) = (0, 0);
        // Jobs assigned in the same batch as their predecessor's completion are its fan-out whichever message
        // came first, so assignments are taken after everything else.
        let assigned_last = [false, true].into_iter().flat_map(|assigned| {
            events.iter().enumerate().filter(move |(_, e)| (e.phase() == JobPhase::Assigned) == assigned)
        });
        let completed: std::collections::BTreeSet<u64> =
            events.iter().filter(|e| e.phase() == JobPhase::Completed).map(|e| e.job_id()).collect();
        for (i, event) in assigned_last {
            let key =
                || combine(hash(&workflows, &events.workflow_refs, i), hash(&names, &events.job_display_names, i));
            let done = event.phase() == JobPhase::Assigned && completed.contains(&event.job_id());
            if self.observe(&mut state, &event, key, done, now) {
                arrivals += 1;
                if state.baseline.starts_run(event.workflow_run_id()) {
                    starts += 1;
                }
            }
        }
        state.baseline.arrivals(now, arrivals, starts);

        // Runners for the fan-outs of started groups, and for fan-out announced but not queued yet. A group that
        // ran far past its expected end has its runners released (and is still counted until it finishes).
        let mut requeue_at: Vec<u64> = state.in_flight.windows().map(Window::closes_ms).collect();
        let mut warming = 0.0;
        let mut predecessors = 0;
        for group in state.in_flight.groups.values() {
            let Some((started, learned)) = self.predicting(group, &state.memory) else { continue };
            let (from, until) = self.warm_span(started, learned);
            if now >= until {
                continue;
            }
            if now >= from {
                warming += learned.fanout_peak * self.config.prewarm_factor;
                predecessors += 1;
            } else {
                requeue_at.push(from);
            }
            requeue_at.push(until);
        }
        let outstanding = state.in_flight.outstanding();
        let prewarm = (warming.round() as u32).saturating_add(outstanding);
        let prewarm = self.config.max_prewarm.map_or(prewarm, |cap| prewarm.min(cap));

        // The idle pool: enough runners for the runs that start while a runner starts, in five cases of six
        // (Poisson mean plus one standard deviation), each with the jobs runs start with. It comes on top of the
        // runners warming for fan-outs: those are still starting for most of a run's arrivals, and one a run takes
        // leaves its fan-out a runner short.
        let per_start = state.baseline.jobs_per_start();
        let jobs = state.baseline.rate_per_second(now) * self.config.lead_seconds * self.config.baseline_factor;
        let starts = jobs / per_start;
        let wanted = if jobs < 0.05 { 0 } else { ((starts + starts.sqrt()).ceil() * per_start).round() as u32 };
        let pool = wanted.min(self.config.max_baseline);

        let floor = input.bounds.min_runners;
        let assigned = input.statistics.assigned_jobs;
        let desired = floor.saturating_add(assigned).saturating_add(prewarm).saturating_add(pool);
        let quiet =
            input.job_events_since_previous == 0 && input.job_events.is_empty() && input.job_events_dropped == 0;
        metrics::gauge_set("prewarmed_runners", f64::from(prewarm), &[]);
        let bytes = self.encode(&mut state);
        self.last = Some((bytes.clone(), state));
        Ok(ScaleDecision {
            desired_runners: desired,
            max_capacity: Some(input.bounds.max_runners),
            min_runners: floor,
            drain: quiet,
            requeue_after_ms: requeue_at
                .into_iter()
                .filter(|&at| at > now)
                .min()
                .map(|at| (at - now).clamp(1000, u64::from(u32::MAX)) as u32),
            reason: format!(
                "floor {floor} + assigned {assigned} + warming {prewarm} ({predecessors} predecessors, {outstanding} \
                 announced) + pool {pool}"
            ),
            state: bytes,
            attributes: Vec::new(),
        })
    }
}

#[cfg(target_arch = "wasm32")]
gha_autoscaler_policy::export_policy!(Predictive: Scaler);

#[cfg(test)]
mod tests;
