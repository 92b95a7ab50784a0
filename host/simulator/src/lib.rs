//! Virtual-clock replay of a job trace against a scale set's policy — the real policy engine (Wasm components)
//! called exactly as the listener calls it — with a runner model (start-up delay, max runners), so policies
//! can be compared on a team's own job history before they touch a cluster.
//!
//! The model: jobs are assigned to the scale set when queued and start on the first idle runner (FIFO); a job
//! with `needs` is queued when the jobs of its run it needs have finished; runners are ephemeral (one job, then
//! gone); after every batch of events the policy decides, new runners
//! start after the start-up delay, and surplus idle runners are removed only when the decision drains
//! (ARC's patchID 0), the policy choosing which.
#![deny(missing_docs)]

pub mod chart;
pub mod trace;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet, VecDeque};
use std::io::Write;

use gha_policy_engine::types::{
    Bounds, JobEvent, JobPhase, JobStatistics, RunnerCounts, RunnerInfo, RunnerPhase, ScaleDownInput, ScaleInput,
};
use gha_policy_engine::{DecisionRecord, JobEventBuffer, Outcome, Replayer, ScaleSetPolicy};
use serde::Serialize;

use crate::trace::{Rng, TraceJob};

/// How runners behave.
#[derive(Debug, Clone, Copy)]
pub struct RunnerModel {
    /// Mean seconds from creation to ready (pod scheduling, image pull, registration).
    pub start_seconds: f64,
    /// Uniform jitter around the mean, ± seconds.
    pub start_jitter_seconds: f64,
    /// minRunners.
    pub min_runners: u32,
    /// maxRunners.
    pub max_runners: u32,
}

impl Default for RunnerModel {
    fn default() -> Self {
        RunnerModel { start_seconds: 20.0, start_jitter_seconds: 10.0, min_runners: 0, max_runners: 100 }
    }
}

/// Simulation settings.
#[derive(Debug, Clone, Copy)]
pub struct SimulationOptions {
    /// The runners.
    pub model: RunnerModel,
    /// Price of a runner-minute (any currency).
    pub price_per_runner_minute: f64,
    /// Unix ms of trace time 0 (schedules in policies see this clock).
    pub epoch_unix_ms: u64,
    /// Seed of the start-up jitter.
    pub seed: u64,
}

impl Default for SimulationOptions {
    fn default() -> Self {
        SimulationOptions {
            model: RunnerModel::default(),
            price_per_runner_minute: 0.008,
            // Monday 2026-01-05 00:00 UTC.
            epoch_unix_ms: 1_767_571_200_000,
            seed: 1,
        }
    }
}

/// One point of the run, for charts.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Point {
    /// Trace seconds.
    pub t: f64,
    /// Jobs waiting.
    pub queued: u32,
    /// The policy's desired runners.
    pub desired: u32,
    /// Runners (starting, idle, busy).
    pub runners: u32,
}

/// What one policy did on the trace.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SimulationReport {
    /// Policy label.
    pub policy: String,
    /// Jobs in the trace.
    pub jobs: usize,
    /// Queue wait p50, seconds.
    pub wait_p50: f64,
    /// p95.
    pub wait_p95: f64,
    /// p99.
    pub wait_p99: f64,
    /// Runner-minutes without a job (starting or idle).
    pub idle_runner_minutes: f64,
    /// Runner-minutes with a job.
    pub busy_runner_minutes: f64,
    /// Most runners at once.
    pub peak_runners: u32,
    /// Decisions that changed the desired count.
    pub scale_events: u32,
    /// Runner-minutes × price.
    pub cost: f64,
    /// Policy evaluations.
    pub decisions: u64,
    /// Of which answered by the fallback.
    pub fallbacks: u64,
    /// The run over time.
    #[serde(skip)]
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum RunnerState {
    Starting,
    Idle,
    Busy,
}

#[derive(Debug, Clone)]
struct Runner {
    name: String,
    state: RunnerState,
    created_ms: u64,
    /// The job it runs.
    job: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum EventKind {
    Ready,
    Done,
    Arrival,
    Wake,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Event {
    at_ms: u64,
    kind: EventKind,
    /// Runner index (Ready, Done) or job index (Arrival).
    index: usize,
}

struct World<'a> {
    options: SimulationOptions,
    trace: &'a [TraceJob],
    events: BinaryHeap<Reverse<Event>>,
    waiting: VecDeque<usize>,
    /// When each job was queued (None until its needs have finished).
    queued_ms: Vec<Option<u64>>,
    /// The jobs that need each job, and how many unfinished jobs each job still needs.
    dependents: Vec<Vec<usize>>,
    unfinished_needs: Vec<usize>,
    /// Live runners by number (creation order).
    runners: BTreeMap<usize, Runner>,
    next_runner: usize,
    rng: Rng,
    events_since: u32,
    /// The job messages the listener would have handled since the previous decision.
    job_events: JobEventBuffer,
    /// When each job started, for its events.
    started_ms: Vec<Option<u64>>,
    waits: Vec<f64>,
    last_ms: u64,
    report: SimulationReport,
    last_desired: Option<u32>,
    /// The one wake-up pending, as the listener keeps one: a later decision replaces it.
    wake_at: Option<u64>,
}

impl World<'_> {
    /// Runners starting, idle or busy.
    fn live(&self) -> u32 {
        self.runners.len() as u32
    }

    fn count(&self, state: RunnerState) -> u32 {
        self.runners.values().filter(|r| r.state == state).count() as u32
    }

    /// Integrates runner-minutes up to `now_ms`.
    fn advance(&mut self, now_ms: u64) {
        let minutes = now_ms.saturating_sub(self.last_ms) as f64 / 60_000.0;
        let busy = f64::from(self.count(RunnerState::Busy));
        self.report.busy_runner_minutes += busy * minutes;
        self.report.idle_runner_minutes += (f64::from(self.live()) - busy) * minutes;
        self.last_ms = now_ms;
    }

    /// Records the message the Actions service would send about `job` (on `runner`, once it has one).
    fn job_event(&mut self, phase: JobPhase, job: usize, runner: Option<&str>, now_ms: u64) {
        let epoch = self.options.epoch_unix_ms;
        let trace = &self.trace[job];
        self.job_events.push(&JobEvent {
            phase,
            job_id: job as u64 + 1,
            runner_name: runner.unwrap_or_default().to_string(),
            repository: trace.repository.clone(),
            workflow_ref: trace.workflow.clone(),
            workflow_run_id: trace.run.unwrap_or_default(),
            job_display_name: trace.job.clone().unwrap_or_default(),
            event_name: "push".into(),
            labels: trace.labels.clone(),
            queued_unix_ms: self.queued_ms[job].map(|ms| epoch + ms),
            started_unix_ms: self.started_ms[job].map(|ms| epoch + ms),
            finished_unix_ms: (phase == JobPhase::Completed).then_some(epoch + now_ms),
            conclusion: (phase == JobPhase::Completed).then(|| "succeeded".to_string()),
            attributes: Vec::new(),
        });
    }

    fn assign(&mut self, now_ms: u64) {
        while let Some(&job) = self.waiting.front() {
            let Some((&index, runner)) = self.runners.iter_mut().find(|(_, r)| r.state == RunnerState::Idle) else {
                return;
            };
            runner.state = RunnerState::Busy;
            runner.job = Some(job);
            let name = runner.name.clone();
            self.waiting.pop_front();
            self.started_ms[job] = Some(now_ms);
            self.job_event(JobPhase::Started, job, Some(&name), now_ms);
            let queued_ms = self.queued_ms[job].unwrap_or(now_ms);
            self.waits.push(now_ms.saturating_sub(queued_ms) as f64 / 1000.0);
            let done = now_ms + (self.trace[job].duration * 1000.0) as u64;
            self.events.push(Reverse(Event { at_ms: done, kind: EventKind::Done, index }));
            self.events_since += 1;
        }
    }

    fn input(&self, now_ms: u64) -> ScaleInput {
        let (starting, idle, busy) =
            (self.count(RunnerState::Starting), self.count(RunnerState::Idle), self.count(RunnerState::Busy));
        let waiting = self.waiting.len() as u32;
        ScaleInput {
            now_unix_ms: self.options.epoch_unix_ms + now_ms,
            statistics: JobStatistics {
                assigned_jobs: waiting + busy,
                running_jobs: busy,
                registered_runners: idle + busy,
                busy_runners: busy,
                idle_runners: idle,
                ..JobStatistics::default()
            },
            runners: RunnerCounts { current: self.live(), pending: starting, running: idle + busy, failed: 0 },
            bounds: Bounds { min_runners: self.options.model.min_runners, max_runners: self.options.model.max_runners },
            previous: None,
            job_events_since_previous: self.events_since,
            job_events: Default::default(),
            job_events_dropped: 0,
            state: Vec::new(),
            attributes: Vec::new(),
        }
    }

    /// A job is queued.
    fn queue(&mut self, job: usize, now_ms: u64) {
        self.queued_ms[job] = Some(now_ms);
        self.waiting.push_back(job);
        self.events_since += 1;
        self.job_event(JobPhase::Available, job, None, now_ms);
        self.job_event(JobPhase::Assigned, job, None, now_ms);
    }

    /// A job has finished: the jobs that needed only it (and finished ones) are queued now.
    fn finished(&mut self, job: usize, now_ms: u64) {
        for dependent in std::mem::take(&mut self.dependents[job]) {
            self.unfinished_needs[dependent] -= 1;
            if self.unfinished_needs[dependent] == 0 {
                self.queue(dependent, now_ms);
            }
        }
    }

    fn start_runner(&mut self, now_ms: u64) {
        let model = self.options.model;
        let delay = (model.start_seconds + self.rng.range(-1.0, 1.0) * model.start_jitter_seconds).max(0.0);
        let index = self.next_runner;
        self.next_runner += 1;
        self.runners.insert(
            index,
            Runner {
                name: format!("runner-{index}"),
                state: RunnerState::Starting,
                created_ms: self.options.epoch_unix_ms + now_ms,
                job: None,
            },
        );
        self.events.push(Reverse(Event { at_ms: now_ms + (delay * 1000.0) as u64, kind: EventKind::Ready, index }));
    }

    /// Removes `surplus` idle or starting runners, the policy choosing which.
    fn scale_down(&mut self, policy: &ScaleSetPolicy, now_ms: u64, surplus: u32) {
        let candidates: Vec<RunnerInfo> = self
            .runners
            .values()
            .filter(|r| r.state != RunnerState::Busy)
            .map(|r| {
                let phase = if r.state == RunnerState::Starting { RunnerPhase::Pending } else { RunnerPhase::Running };
                RunnerInfo::idle(r.name.clone(), phase, r.created_ms)
            })
            .collect();
        let input = ScaleDownInput {
            now_unix_ms: self.options.epoch_unix_ms + now_ms,
            surplus,
            candidates,
            attributes: Vec::new(),
        };
        let chosen = policy.select(&input).map(|d| d.value).unwrap_or_default();
        let chosen: HashSet<&String> = chosen.iter().take(surplus as usize).collect();
        self.runners.retain(|_, r| r.state == RunnerState::Busy || !chosen.contains(&r.name));
    }

    fn decide(
        &mut self,
        policy: &ScaleSetPolicy,
        replay: &mut Replayer,
        now_ms: u64,
        log: &mut Option<&mut dyn Write>,
        sha256: &str,
    ) {
        let mut input = self.input(now_ms);
        self.job_events.drain_into(&mut input);
        let Ok(decided) = replay.step(input.clone()) else { return };
        self.report.decisions += 1;
        if matches!(decided.outcome, Outcome::Fallback { .. } | Outcome::HeldLast { .. }) {
            self.report.fallbacks += 1;
        }
        if let Some(log) = log.as_mut() {
            let record = DecisionRecord::new(policy, sha256, &input, &decided);
            if let Ok(line) = serde_json::to_string(&record) {
                let _ = writeln!(log, "{line}");
            }
        }
        self.events_since = 0;
        let decision = decided.value;
        let desired = decision.desired_runners;
        if self.last_desired != Some(desired) {
            self.report.scale_events += 1;
            self.last_desired = Some(desired);
        }
        while self.live() < desired {
            self.start_runner(now_ms);
        }
        if decision.drain && self.live() > desired {
            self.scale_down(policy, now_ms, self.live() - desired);
        }
        self.wake_at = decision.requeue_after_ms.map(|ms| now_ms + u64::from(ms));
        if let Some(at_ms) = self.wake_at {
            self.events.push(Reverse(Event { at_ms, kind: EventKind::Wake, index: 0 }));
        }
        self.report.peak_runners = self.report.peak_runners.max(self.live());
        self.report.points.push(Point {
            t: now_ms as f64 / 1000.0,
            queued: self.waiting.len() as u32,
            desired,
            runners: self.live(),
        });
    }
}

/// The `p` quantile (0..=1) of sorted samples, nearest rank; 0 for none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// How often an idle listener re-decides without messages (the long poll's empty return).
const EMPTY_POLL_MS: u64 = 50_000;
/// Empty polls' worth of time with nothing pending that moves a job, after which the run ends even if the policy
/// keeps runners above the minimum or keeps asking to be woken.
const MAX_EMPTY_POLLS: u64 = 30;

/// Replays `trace` against `policy`; `log` receives one decision-log line per evaluation.
///
/// # Errors
/// A job without `queuedAt` or `needs`, or needs that name no job of the run or form a cycle.
pub fn simulate(
    policy: &ScaleSetPolicy,
    label: &str,
    trace: &[TraceJob],
    options: SimulationOptions,
    mut log: Option<&mut dyn Write>,
) -> Result<SimulationReport, String> {
    let sha256 = policy.manifest().sha256;
    let needs = trace::needs(trace)?;
    let dependents = trace::dependents(&needs);
    let mut arrivals = BinaryHeap::new();
    for (index, job) in trace.iter().enumerate().filter(|(i, _)| needs[*i].is_empty()) {
        let queued_at = job.queued_at.ok_or_else(|| format!("job {index} has neither queuedAt nor needs"))?;
        arrivals.push(Reverse(Event { at_ms: (queued_at * 1000.0) as u64, kind: EventKind::Arrival, index }));
    }
    let mut world = World {
        options,
        trace,
        events: arrivals,
        waiting: VecDeque::new(),
        queued_ms: vec![None; trace.len()],
        unfinished_needs: needs.iter().map(Vec::len).collect(),
        dependents,
        runners: BTreeMap::new(),
        next_runner: 0,
        rng: Rng::new(options.seed),
        events_since: 0,
        job_events: JobEventBuffer::default(),
        started_ms: vec![None; trace.len()],
        waits: Vec::with_capacity(trace.len()),
        last_ms: 0,
        report: SimulationReport { policy: label.into(), jobs: trace.len(), ..SimulationReport::default() },
        last_desired: None,
        wake_at: None,
    };
    let mut replay = Replayer::new(policy);
    world.decide(policy, &mut replay, 0, &mut log, &sha256);
    let mut completed = 0;
    let mut idle_since = None;
    while let Some(Reverse(first)) = world.events.pop() {
        let now = first.at_ms;
        world.advance(now);
        let mut batch = vec![first];
        while world.events.peek().is_some_and(|Reverse(e)| e.at_ms == now) {
            batch.extend(world.events.pop().map(|Reverse(e)| e));
        }
        if batch.iter().all(|e| e.kind == EventKind::Wake && world.wake_at != Some(e.at_ms)) {
            continue; // wake-ups a later decision replaced
        }
        for event in batch {
            match event.kind {
                EventKind::Arrival => world.queue(event.index, now),
                EventKind::Ready => {
                    if let Some(runner) = world.runners.get_mut(&event.index) {
                        runner.state = RunnerState::Idle;
                    }
                }
                EventKind::Done => {
                    if let Some(runner) = world.runners.remove(&event.index)
                        && let Some(job) = runner.job
                    {
                        world.job_event(JobPhase::Completed, job, Some(&runner.name), now);
                        world.finished(job, now);
                    }
                    completed += 1;
                    world.events_since += 1;
                }
                EventKind::Wake => {}
            }
        }
        world.assign(now);
        world.decide(policy, &mut replay, now, &mut log, &sha256);
        world.assign(now);
        let progress_pending =
            world.events.iter().any(|Reverse(e)| matches!(e.kind, EventKind::Arrival | EventKind::Done));
        if progress_pending {
            idle_since = None;
        } else {
            // Nothing left that moves a job: the run ends once the set settles, or after a stretch of empty polls
            // whatever the policy keeps doing (holding runners, asking to be woken, churning, serving nobody).
            let settled = completed == trace.len() && world.live() <= options.model.min_runners;
            let idle_for = now - *idle_since.get_or_insert(now);
            if settled || idle_for >= MAX_EMPTY_POLLS * EMPTY_POLL_MS {
                break;
            }
            if world.events.is_empty() {
                // The listener's empty long polls keep deciding until the set settles.
                world.wake_at = Some(now + EMPTY_POLL_MS);
                world.events.push(Reverse(Event { at_ms: now + EMPTY_POLL_MS, kind: EventKind::Wake, index: 0 }));
            }
        }
    }
    let mut waits = std::mem::take(&mut world.waits);
    waits.sort_by(f64::total_cmp);
    let report = &mut world.report;
    report.wait_p50 = percentile(&waits, 0.50);
    report.wait_p95 = percentile(&waits, 0.95);
    report.wait_p99 = percentile(&waits, 0.99);
    report.cost = (report.idle_runner_minutes + report.busy_runner_minutes) * options.price_per_runner_minute;
    Ok(world.report)
}

/// Reports side by side.
pub fn table(reports: &[SimulationReport]) -> String {
    let rows: [Row<SimulationReport>; 10] = [
        ("jobs", |r| r.jobs.to_string()),
        ("queue wait p50", |r| format!("{:.1} s", r.wait_p50)),
        ("queue wait p95", |r| format!("{:.1} s", r.wait_p95)),
        ("queue wait p99", |r| format!("{:.1} s", r.wait_p99)),
        ("idle runner-minutes", |r| format!("{:.0}", r.idle_runner_minutes)),
        ("busy runner-minutes", |r| format!("{:.0}", r.busy_runner_minutes)),
        ("peak runners", |r| r.peak_runners.to_string()),
        ("scale events", |r| r.scale_events.to_string()),
        ("cost", |r| format!("{:.2}", r.cost)),
        ("decisions (fallbacks)", |r| format!("{} ({})", r.decisions, r.fallbacks)),
    ];
    side_by_side(reports, |r| r.policy.clone(), &rows)
}

/// A table row: its name and how to show a report's value.
pub type Row<R> = (&'static str, fn(&R) -> String);

/// One column per report (headed by `header`), one line per row.
pub fn side_by_side<R>(reports: &[R], header: fn(&R) -> String, rows: &[Row<R>]) -> String {
    let mut out = format!("{:<26}", "");
    for report in reports {
        out += &format!(" {:>16}", header(report));
    }
    out.push('\n');
    for (name, value) in rows {
        out += &format!("{name:<26}");
        for report in reports {
            out += &format!(" {:>16}", value(report));
        }
        out.push('\n');
    }
    out
}

/// Reports as CSV (header + one row per policy).
pub fn csv(reports: &[SimulationReport]) -> String {
    let mut out = String::from(
        "policy,jobs,wait_p50_s,wait_p95_s,wait_p99_s,idle_runner_minutes,busy_runner_minutes,peak_runners,scale_events,cost,decisions,fallbacks\n",
    );
    for r in reports {
        out += &format!(
            "{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{},{},{:.4},{},{}\n",
            r.policy,
            r.jobs,
            r.wait_p50,
            r.wait_p95,
            r.wait_p99,
            r.idle_runner_minutes,
            r.busy_runner_minutes,
            r.peak_runners,
            r.scale_events,
            r.cost,
            r.decisions,
            r.fallbacks
        );
    }
    out
}
