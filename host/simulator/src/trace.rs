//! Job traces: what `demo` plays and `simulate` replays. One JSON object per line:
//!
//! ```json
//! {"queuedAt": 12.5, "labels": ["linux"], "repository": "acme/app", "workflow": "ci.yml", "duration": 95}
//! ```
//!
//! `queuedAt` and `duration` are seconds from the start of the trace; `labels` are the job's `runs-on` labels
//! (absent = the scale set's name); `repository` and `workflow` are informational.

use serde::{Deserialize, Serialize};

/// One job of a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceJob {
    /// Seconds from the trace start.
    pub queued_at: f64,
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
}

/// Parses JSON lines (blank lines and `#` comments skipped), sorted by `queuedAt`.
///
/// # Errors
/// The first malformed line, by number.
pub fn parse(text: &str) -> Result<Vec<TraceJob>, String> {
    let mut jobs = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let job: TraceJob = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", number + 1))?;
        if !(job.queued_at >= 0.0 && job.duration >= 0.0 && job.queued_at.is_finite() && job.duration.is_finite()) {
            return Err(format!("line {}: queuedAt and duration must be finite and >= 0", number + 1));
        }
        jobs.push(job);
    }
    jobs.sort_by(|a, b| a.queued_at.total_cmp(&b.queued_at));
    Ok(jobs)
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
        queued_at: ms(queued_at),
        labels: Vec::new(),
        repository: "acme/app".into(),
        workflow: workflow.into(),
        duration: ms(duration),
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

/// A synthetic day-shaped trace: `jobs` jobs over `hours`, arrivals following a diurnal curve (quiet nights,
/// busy afternoons) with `bursts` bursts of 10–30 jobs, durations log-normal-ish around 4 minutes.
pub fn generate(jobs: usize, hours: f64, bursts: usize, seed: u64) -> Vec<TraceJob> {
    let mut rng = Rng::new(seed);
    let span = hours * 3600.0;
    let weight = |t: f64| {
        let hour = (t / 3600.0) % 24.0;
        0.15 + (std::f64::consts::PI * ((hour - 6.0) / 14.0).clamp(0.0, 1.0)).sin().max(0.0)
    };
    let duration = |rng: &mut Rng| (240.0 * (rng.range(-1.0, 1.0) * 0.8).exp()).clamp(10.0, 3600.0);
    let mut out = Vec::with_capacity(jobs);
    let burst_jobs = (bursts * 20).min(jobs);
    while out.len() < jobs - burst_jobs {
        let t = rng.range(0.0, span);
        if rng.next_f64() * 1.15 <= weight(t) {
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
    out.sort_by(|a, b| a.queued_at.total_cmp(&b.queued_at));
    out
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
        let same =
            parsed.iter().zip(&jobs).all(|(p, j)| close(p.queued_at, j.queued_at) && close(p.duration, j.duration));
        assert!(same && parsed.len() == jobs.len(), "the trace does not survive JSON lines");
        assert!(generate(50, 1.0, 0, 9) == generate(50, 1.0, 0, 9), "seeded");
        let err = parse("{\"queuedAt\": 1, \"duration\": 2}\n{oops").unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
        assert!(parse("{\"queuedAt\": -1, \"duration\": 2}").is_err());
    }

    #[test]
    fn the_built_in_workload_has_a_burst_a_trickle_and_a_quiet_end() {
        let jobs = built_in();
        assert_eq!(jobs.iter().filter(|j| j.queued_at < 10.0).count(), 12);
        let last = jobs.iter().map(|j| j.queued_at + j.duration).fold(0.0, f64::max);
        assert!(last < 360.0, "{last}");
    }
}
