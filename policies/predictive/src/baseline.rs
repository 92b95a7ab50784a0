//! How often runs start: a recent rate (decaying over ten minutes) and, per UTC hour of the day, the arrivals
//! of past days, so the idle pool for jobs nobody can predict follows the day.

use serde::{Deserialize, Serialize};

const HOUR_MS: u64 = 3_600_000;
/// Time constant of the recent rate.
const RECENT_MS: f64 = 600_000.0;

/// Arrivals of jobs that start runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Arrivals per hour for each UTC hour of the day (running average over days; ×10).
    #[serde(rename = "h")]
    hourly: Vec<u32>,
    /// The hour being counted (hours since the epoch) and its arrivals so far.
    #[serde(rename = "c")]
    counting: (u64, u32),
    /// Recent arrivals per hour (×10) as of `recent_at`.
    #[serde(rename = "r")]
    recent: u32,
    #[serde(rename = "t")]
    recent_at: u64,
    /// Run-starting jobs and run starts, each a sum decaying per batch (×100): their ratio is the jobs a run
    /// starts with, and runs that start with lint and build at once need idle runners in pairs.
    #[serde(rename = "j", default)]
    jobs_seen: u32,
    #[serde(rename = "s", default)]
    starts_seen: u32,
    /// The runs started last, newest last: a run's second root job, queued a moment after its first (in another
    /// message), does not start it again.
    #[serde(rename = "u", default)]
    started_runs: Vec<u64>,
}

/// What the jobs and starts seen keep of themselves per batch of arrivals (≈ the last 20 batches count).
const PER_START_DECAY: f64 = 0.95;
/// Runs remembered as started.
const STARTED_RUNS: usize = 16;

impl Baseline {
    fn recent_per_hour(&self, now_ms: u64) -> f64 {
        let age = now_ms.saturating_sub(self.recent_at) as f64;
        f64::from(self.recent) / 10.0 * (-age / RECENT_MS).exp()
    }

    /// Closes the hour being counted when the clock has left it.
    fn roll(&mut self, now_ms: u64) {
        let hour = now_ms / HOUR_MS;
        let (counted, arrivals) = self.counting;
        if hour == counted {
            return;
        }
        if counted > 0 && hour == counted + 1 {
            self.hourly.resize(24, 0);
            let slot = &mut self.hourly[(counted % 24) as usize];
            let observed = arrivals.saturating_mul(10);
            *slot = if *slot == 0 { observed } else { (*slot + observed) / 2 };
        }
        self.counting = (hour, 0);
    }

    /// Whether a job of `run` that nothing announced starts it (run 0: a job of no known run starts its own).
    pub fn starts_run(&mut self, run: u64) -> bool {
        if run == 0 {
            return true;
        }
        if self.started_runs.contains(&run) {
            return false;
        }
        if self.started_runs.len() >= STARTED_RUNS {
            self.started_runs.remove(0);
        }
        self.started_runs.push(run);
        true
    }

    /// `count` jobs that nothing announced were queued, starting `runs` runs (the others belong to runs started
    /// before).
    pub fn arrivals(&mut self, now_ms: u64, count: u32, runs: u32) {
        if count == 0 {
            return;
        }
        let decayed = |sum: u32, added: u32| {
            (f64::from(sum) * PER_START_DECAY + f64::from(added) * 100.0).round().min(f64::from(u32::MAX)) as u32
        };
        self.jobs_seen = decayed(self.jobs_seen, count);
        self.starts_seen = decayed(self.starts_seen, runs);
        self.roll(now_ms);
        self.counting.1 = self.counting.1.saturating_add(count);
        // Each arrival adds 1/τ to a rate that decays with time constant τ.
        let rate = self.recent_per_hour(now_ms) + f64::from(count) * HOUR_MS as f64 / RECENT_MS;
        self.recent = (rate * 10.0).round().min(f64::from(u32::MAX)) as u32;
        self.recent_at = now_ms;
    }

    /// Jobs a run starts with, on average (at least one).
    pub fn jobs_per_start(&self) -> f64 {
        if self.starts_seen == 0 {
            return 1.0;
        }
        (f64::from(self.jobs_seen) / f64::from(self.starts_seen)).max(1.0)
    }

    /// Expected arrivals per second now: the larger of the recent rate and this hour's history.
    pub fn rate_per_second(&mut self, now_ms: u64) -> f64 {
        self.roll(now_ms);
        let hour = ((now_ms / HOUR_MS) % 24) as usize;
        let history = self.hourly.get(hour).map_or(0.0, |&v| f64::from(v) / 10.0);
        self.recent_per_hour(now_ms).max(history) / 3600.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: u64 = 24 * HOUR_MS;
    const MONDAY: u64 = 1_795_392_000_000;

    #[test]
    fn the_recent_rate_rises_with_arrivals_and_decays() {
        let mut baseline = Baseline::default();
        for i in 0..6 {
            baseline.arrivals(MONDAY + i * 60_000, 1, 1);
        }
        let busy = baseline.rate_per_second(MONDAY + 5 * 60_000) * 3600.0;
        assert!((25.0..45.0).contains(&busy), "≈ 36/h after one every minute: {busy}");
        let later = baseline.rate_per_second(MONDAY + 65 * 60_000) * 3600.0;
        assert!(later < busy / 100.0, "{later}");
    }

    #[test]
    fn yesterdays_hour_is_remembered() {
        let mut baseline = Baseline::default();
        for i in 0..20 {
            baseline.arrivals(MONDAY + 9 * HOUR_MS + i * 180_000, 1, 1);
        }
        baseline.rate_per_second(MONDAY + 10 * HOUR_MS);
        // A day later, before anything arrives, 09:00 expects 20 per hour; 15:00 nothing.
        let nine = baseline.rate_per_second(MONDAY + DAY_MS + 9 * HOUR_MS) * 3600.0;
        assert!((nine - 20.0).abs() < 0.01, "{nine}");
        assert!(baseline.rate_per_second(MONDAY + DAY_MS + 15 * HOUR_MS) < 1e-3);
    }

    #[test]
    fn runs_that_start_with_two_jobs_are_counted_as_pairs() {
        let mut baseline = Baseline::default();
        assert!((baseline.jobs_per_start() - 1.0).abs() < 1e-9);
        baseline.arrivals(MONDAY, 4, 2);
        assert!((baseline.jobs_per_start() - 2.0).abs() < 1e-9);
        baseline.arrivals(MONDAY + 60_000, 1, 1);
        assert!((baseline.jobs_per_start() - 4.8 / 2.9).abs() < 1e-9);
        // The second job of a run, in a message of its own, joins the run's start.
        assert!(baseline.starts_run(7) && !baseline.starts_run(7) && baseline.starts_run(0) && baseline.starts_run(0));
        baseline.arrivals(MONDAY + 120_000, 1, 0);
        assert!((baseline.jobs_per_start() - (4.8 * 0.95 + 1.0) / (2.9 * 0.95)).abs() < 1e-2);
        for run in 100..100 + STARTED_RUNS as u64 {
            baseline.starts_run(run);
        }
        assert!(baseline.starts_run(7), "only the last runs are remembered");
    }
}
