//! Job traces: what `demo` plays and `simulate` replays. One JSON object per line:
//!
//! ```json
//! {"queuedAt": 12.5, "labels": ["linux"], "repository": "acme/app", "workflow": "ci.yml", "duration": 95}
//! {"run": 4711, "job": "build", "queuedAt": 30, "duration": 240, "workflow": "acme/app/.github/workflows/ci.yml@refs/heads/main"}
//! {"run": 4711, "job": "test (3/40)", "needs": ["build"], "duration": 312, "labels": ["linux"]}
//! ```
//!
//! `queuedAt` and `duration` are seconds from the start of the trace; `labels` are the job's `runs-on` labels
//! (absent = the scale set's name); `repository` and `workflow` are informational. Jobs of one workflow run share
//! `run` and are named by `job`; a job with `needs` has no `queuedAt`: it is queued the moment every job of its
//! run that it needs has finished, so waiting for runners pushes later jobs later, as in real CI.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// One job of a trace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceJob {
    /// Seconds from the trace start; None for a job with `needs`, queued when they have finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<f64>,
    /// `runs-on` labels (empty = the scale set's name).
    #[serde(default)]
    pub labels: Vec<String>,
    /// `owner/repo`.
    #[serde(default)]
    pub repository: String,
    /// Workflow file or ref.
    #[serde(default)]
    pub workflow: String,
    /// Seconds of work.
    pub duration: f64,
    /// The workflow run (jobs of one run may need each other).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<u64>,
    /// The job's name in its run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Names of the jobs of the same run this one waits for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
}

/// Parses JSON lines (blank lines and `#` comments skipped): jobs with a `queuedAt` sorted by it, then the jobs
/// queued by their `needs` in file order.
///
/// # Errors
/// The first malformed line, by number; `needs` naming no job of the run; a run whose needs form a cycle.
pub fn parse(text: &str) -> Result<Vec<TraceJob>, String> {
    let mut jobs = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |why: &str| format!("line {}: {why}", number + 1);
        let job: TraceJob = serde_json::from_str(line).map_err(|e| at(&e.to_string()))?;
        let finite = |v: f64| v >= 0.0 && v.is_finite();
        if !finite(job.duration) || job.queued_at.is_some_and(|q| !finite(q)) {
            return Err(at("queuedAt and duration must be finite and >= 0"));
        }
        match (job.queued_at, job.needs.is_empty(), job.run) {
            (None, true, _) => return Err(at("queuedAt is required (unless the job has needs)")),
            (Some(_), false, _) => return Err(at("a job with needs has no queuedAt: it is queued when they finish")),
            (None, false, None) => return Err(at("a job with needs belongs to a run")),
            _ => {}
        }
        jobs.push(job);
    }
    jobs.sort_by(|a, b| match (a.queued_at, b.queued_at) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        (a, b) => b.is_some().cmp(&a.is_some()),
    });
    needs(&jobs)?;
    Ok(jobs)
}

/// For each job, the indices of the jobs it needs.
///
/// # Errors
/// A need that names no job of the run (or a run with two jobs of that name), or needs that form a cycle.
pub fn needs(jobs: &[TraceJob]) -> Result<Vec<Vec<usize>>, String> {
    let mut by_name: HashMap<(u64, &str), Vec<usize>> = HashMap::new();
    for (index, job) in jobs.iter().enumerate() {
        if let (Some(run), Some(name)) = (job.run, job.job.as_deref()) {
            by_name.entry((run, name)).or_default().push(index);
        }
    }
    let needs = jobs
        .iter()
        .map(|job| {
            let run = job.run.unwrap_or_default();
            job.needs
                .iter()
                .map(|name| match by_name.get(&(run, name.as_str())).map(Vec::as_slice) {
                    Some([index]) => Ok(*index),
                    Some(_) => Err(format!("run {run} has more than one job named {name:?}")),
                    None => Err(format!("a job of run {run} needs {name:?}, which the run does not have")),
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Kahn's algorithm: every job must become ready.
    let mut waiting: Vec<usize> = needs.iter().map(Vec::len).collect();
    let dependents = dependents(&needs);
    let mut ready: Vec<usize> = (0..jobs.len()).filter(|&j| waiting[j] == 0).collect();
    let mut seen = 0;
    while let Some(job) = ready.pop() {
        seen += 1;
        for &d in &dependents[job] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(d);
            }
        }
    }
    if seen < jobs.len() {
        let stuck = (0..jobs.len()).find(|&j| waiting[j] > 0).and_then(|j| jobs[j].run).unwrap_or_default();
        return Err(format!("the needs of run {stuck} form a cycle"));
    }
    Ok(needs)
}

/// For each job, the jobs that need it (the reverse of [`needs`]).
pub fn dependents(needs: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut dependents = vec![Vec::new(); needs.len()];
    for (job, needed) in needs.iter().enumerate() {
        for &n in needed {
            dependents[n].push(job);
        }
    }
    dependents
}

/// Deterministic pseudo-random numbers (SplitMix64), so traces are reproducible from a seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [low, high).
    pub fn range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.next_f64()
    }
}

/// Millisecond precision keeps traces short and readable.
fn ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

fn job(queued_at: f64, duration: f64, workflow: &str) -> TraceJob {
    TraceJob {
        queued_at: Some(ms(queued_at)),
        repository: "acme/app".into(),
        workflow: workflow.into(),
        duration: ms(duration),
        ..TraceJob::default()
    }
}

/// The demo's built-in workload, 6 trace-minutes: a burst of 12 jobs, a steady trickle (one job every 20 s for
/// 3 minutes), then a quiet period in which the scale set returns to its minimum.
pub fn built_in() -> Vec<TraceJob> {
    let mut rng = Rng::new(7);
    let mut jobs: Vec<TraceJob> =
        (0..12).map(|i| job(f64::from(i) * 0.5, rng.range(45.0, 90.0), "burst.yml")).collect();
    jobs.extend((0..9).map(|i| job(90.0 + f64::from(i) * 20.0, rng.range(20.0, 50.0), "trickle.yml")));
    jobs
}

/// How busy trace time `t` (seconds) is, relative: quiet nights, busy afternoons.
fn diurnal_weight(t: f64) -> f64 {
    let hour = (t / 3600.0) % 24.0;
    0.15 + (std::f64::consts::PI * ((hour - 6.0) / 14.0).clamp(0.0, 1.0)).sin().max(0.0)
}

/// A synthetic day-shaped trace: `jobs` jobs over `hours`, arrivals following a diurnal curve (quiet nights,
/// busy afternoons) with `bursts` bursts of 10–30 jobs, durations log-normal-ish around 4 minutes.
pub fn generate(jobs: usize, hours: f64, bursts: usize, seed: u64) -> Vec<TraceJob> {
    let mut rng = Rng::new(seed);
    let span = hours * 3600.0;
    let duration = |rng: &mut Rng| (240.0 * (rng.range(-1.0, 1.0) * 0.8).exp()).clamp(10.0, 3600.0);
    let mut out = Vec::with_capacity(jobs);
    let burst_jobs = (bursts * 20).min(jobs);
    while out.len() < jobs - burst_jobs {
        let t = rng.range(0.0, span);
        if rng.next_f64() * 1.15 <= diurnal_weight(t) {
            let d = duration(&mut rng);
            out.push(job(t, d, "ci.yml"));
        }
    }
    for _ in 0..bursts {
        let at = rng.range(0.0, span);
        let size = rng.range(10.0, 30.0) as usize;
        for i in 0..size.min(jobs - out.len()) {
            let d = duration(&mut rng);
            out.push(job(at + i as f64 * 0.2, d, "release.yml"));
        }
    }
    out.sort_by(|a, b| a.queued_at.unwrap_or_default().total_cmp(&b.queued_at.unwrap_or_default()));
    out
}

/// A workflow of a DAG trace: build → `width`-way test matrix → an integration matrix that needs the whole test
/// matrix (if `integration` shards) → deploy (on some runs), each workflow fanning out the same way every time, as
/// real CI does.
struct Workflow {
    repository: &'static str,
    path: &'static str,
    width: usize,
    build_seconds: f64,
    test_seconds: f64,
    integration: usize,
    integration_seconds: f64,
    deploy_share: f64,
}

const WORKFLOWS: [Workflow; 4] = [
    Workflow {
        repository: "acme/app",
        path: "ci.yml",
        width: 40,
        build_seconds: 300.0,
        test_seconds: 240.0,
        integration: 0,
        integration_seconds: 0.0,
        deploy_share: 0.3,
    },
    Workflow {
        repository: "acme/api",
        path: "ci.yml",
        width: 12,
        build_seconds: 180.0,
        test_seconds: 150.0,
        integration: 4,
        integration_seconds: 200.0,
        deploy_share: 0.3,
    },
    Workflow {
        repository: "acme/web",
        path: "test.yml",
        width: 24,
        build_seconds: 120.0,
        test_seconds: 90.0,
        integration: 0,
        integration_seconds: 0.0,
        deploy_share: 0.0,
    },
    Workflow {
        repository: "acme/infra",
        path: "lint.yml",
        width: 0,
        build_seconds: 60.0,
        test_seconds: 0.0,
        integration: 0,
        integration_seconds: 0.0,
        deploy_share: 0.0,
    },
];

/// A synthetic day of workflow runs with their DAGs: `runs` runs over `hours` on the diurnal curve of
/// [`generate`], each a build job (the root, with a `queuedAt`) → a test matrix of the workflow's width → an
/// integration matrix needing all of it (one workflow) → a deploy job on some runs; plus `merge_queue_bursts`
/// bursts in which 6–10 runs are queued within a minute.
pub fn generate_dag(runs: usize, hours: f64, merge_queue_bursts: usize, seed: u64) -> Vec<TraceJob> {
    let mut rng = Rng::new(seed);
    let span = hours * 3600.0;
    let mut starts = Vec::with_capacity(runs);
    let burst_runs: usize = (0..merge_queue_bursts).map(|_| rng.range(6.0, 11.0) as usize).sum::<usize>().min(runs);
    while starts.len() < runs - burst_runs {
        let t = rng.range(0.0, span);
        if rng.next_f64() * 1.15 <= diurnal_weight(t) {
            starts.push(t);
        }
    }
    let mut left = burst_runs;
    while left > 0 {
        let at = rng.range(0.0, span);
        for _ in 0..left.min(rng.range(6.0, 11.0) as usize) {
            starts.push(at + rng.range(0.0, 60.0));
            left -= 1;
        }
    }
    starts.sort_by(f64::total_cmp);
    let mut jobs = Vec::new();
    for (number, start) in starts.into_iter().enumerate() {
        let workflow = &WORKFLOWS[(rng.next_f64() * WORKFLOWS.len() as f64) as usize % WORKFLOWS.len()];
        let run = 1000 + number as u64;
        let vary = |rng: &mut Rng, seconds: f64| ms(seconds * rng.range(0.8, 1.25));
        let job = |name: String, queued_at: Option<f64>, duration: f64, needs: Vec<String>| TraceJob {
            queued_at: queued_at.map(ms),
            labels: Vec::new(),
            repository: workflow.repository.into(),
            workflow: format!("{}/.github/workflows/{}@refs/heads/main", workflow.repository, workflow.path),
            duration,
            run: Some(run),
            job: Some(name),
            needs,
        };
        let root = if workflow.width == 0 { "lint" } else { "build" };
        let build = vary(&mut rng, workflow.build_seconds);
        jobs.push(job(root.into(), Some(start), build, Vec::new()));
        let tests: Vec<String> = (1..=workflow.width).map(|i| format!("test ({i}/{})", workflow.width)).collect();
        for name in &tests {
            let duration = vary(&mut rng, workflow.test_seconds);
            jobs.push(job(name.clone(), None, duration, vec![root.into()]));
        }
        let shards: Vec<String> =
            (1..=workflow.integration).map(|i| format!("integration ({i}/{})", workflow.integration)).collect();
        for name in &shards {
            let duration = vary(&mut rng, workflow.integration_seconds);
            jobs.push(job(name.clone(), None, duration, tests.clone()));
        }
        let last_stage = if shards.is_empty() { tests } else { shards };
        if !last_stage.is_empty() && rng.next_f64() < workflow.deploy_share {
            let duration = vary(&mut rng, 90.0);
            jobs.push(job("deploy".into(), None, duration, last_stage));
        }
    }
    jobs
}

/// The trace as JSON lines.
pub fn to_json_lines(jobs: &[TraceJob]) -> String {
    jobs.iter().filter_map(|j| serde_json::to_string(j).ok()).map(|l| l + "\n").collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_round_trip_and_bad_lines_are_named() {
        let jobs = generate(500, 24.0, 3, 1);
        assert_eq!(jobs.len(), 500);
        assert!(jobs.windows(2).all(|w| w[0].queued_at <= w[1].queued_at));
        let parsed = parse(&to_json_lines(&jobs)).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        let same = parsed
            .iter()
            .zip(&jobs)
            .all(|(p, j)| close(p.queued_at.unwrap(), j.queued_at.unwrap()) && close(p.duration, j.duration));
        assert!(same && parsed.len() == jobs.len(), "the trace does not survive JSON lines");
        assert!(generate(50, 1.0, 0, 9) == generate(50, 1.0, 0, 9), "seeded");
        let err = parse("{\"queuedAt\": 1, \"duration\": 2}\n{oops").unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
        assert!(parse("{\"queuedAt\": -1, \"duration\": 2}").is_err());
    }

    #[test]
    fn dag_traces_round_trip_and_bad_needs_are_refused() {
        let jobs = generate_dag(50, 24.0, 2, 3);
        assert_eq!(jobs.iter().filter(|j| j.queued_at.is_some()).count(), 50, "one root per run");
        assert!(jobs.iter().any(|j| j.needs.len() > 1), "some runs deploy after their whole matrix");
        let parsed = parse(&to_json_lines(&jobs)).unwrap();
        assert_eq!(parsed.len(), jobs.len());
        assert_eq!(generate_dag(20, 2.0, 1, 5), generate_dag(20, 2.0, 1, 5), "seeded");
        let line = |s: &str| format!("{s}\n");
        let root = line(r#"{"run": 1, "job": "build", "queuedAt": 0, "duration": 5}"#);
        assert!(parse(&(root.clone() + &line(r#"{"run": 1, "job": "t", "needs": ["build"], "duration": 1}"#))).is_ok());
        let unknown = parse(&(root.clone() + &line(r#"{"run": 1, "job": "t", "needs": ["lint"], "duration": 1}"#)));
        assert!(unknown.unwrap_err().contains("\"lint\""));
        let timed = parse(&line(r#"{"run": 1, "job": "t", "needs": ["b"], "queuedAt": 3, "duration": 1}"#));
        assert!(timed.unwrap_err().contains("no queuedAt"));
        let cycle = line(r#"{"run": 2, "job": "a", "needs": ["b"], "duration": 1}"#)
            + &line(r#"{"run": 2, "job": "b", "needs": ["a"], "duration": 1}"#);
        assert!(parse(&cycle).unwrap_err().contains("cycle"));
        assert!(parse(&line(r#"{"duration": 1}"#)).unwrap_err().contains("queuedAt is required"));
    }

    #[test]
    fn the_built_in_workload_has_a_burst_a_trickle_and_a_quiet_end() {
        let jobs = built_in();
        assert_eq!(jobs.iter().filter(|j| j.queued_at.is_some_and(|q| q < 10.0)).count(), 12);
        let last = jobs.iter().map(|j| j.queued_at.unwrap_or_default() + j.duration).fold(0.0, f64::max);
        assert!(last < 360.0, "{last}");
    }
}
