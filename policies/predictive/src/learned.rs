//! What the policy learns about each (workflow, job) pair: how many jobs its completion queues and how long it
//! runs. Kept small: integers, one short array per pair, the least recently seen forgotten first.

use serde::{Deserialize, Serialize};

/// Weight of a new fan-out in its running average: fan-outs change when workflows do, so they are followed fast.
const FANOUT_ALPHA: f64 = 0.3;
/// How far the fan-out peak falls towards the average per completion: a run that queued fewer jobs than usual (a
/// matrix cut short, a job skipped) barely lowers what the next run warms, while a workflow that really shrank is
/// followed within ten runs or so.
const PEAK_DECAY: f64 = 0.2;
/// Weight of a new duration: durations scatter run to run, so their mean and deviation average over ≈ 20 runs.
const DURATION_ALPHA: f64 = 0.1;

/// A job is known across runs by a 32-bit key: its workflow (without the ref, so branches share) and its name
/// without a matrix suffix (`test (3/40)` → `test`), each hashed ([`workflow_hash`], [`name_hash`]) and
/// [`combine`]d.
///
/// The workflow half of the key.
pub fn workflow_hash(workflow_ref: &str) -> u32 {
    fnv1a(workflow_ref.split('@').next().unwrap_or_default())
}

/// The job-name half of the key.
pub fn name_hash(job_display_name: &str) -> u32 {
    let name = job_display_name.trim_end();
    fnv1a(name.strip_suffix(')').and_then(|s| s.rsplit_once(" (")).map_or(name, |(base, _)| base))
}

/// The key from its halves.
pub fn combine(workflow: u32, name: u32) -> u32 {
    workflow.rotate_left(5) ^ name.wrapping_mul(0x9e37_79b1)
}

/// FNV-1a: stable across builds and platforms.
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193))
}

/// One pair's history. Stored as `[key, fan-out ×100, completions seen, mean s ×10, deviation s ×10, last seen
/// (minutes since the epoch), fan-out peak ×100]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "[u32; 7]", into = "[u32; 7]")]
pub struct Learned {
    /// The (workflow, job) key.
    pub key: u32,
    /// Jobs its run queues within the window after its group (every instance of the job in a run) finishes
    /// (running average): whether it is worth warming for. A matrix followed by a deploy on some runs averages
    /// below one.
    pub fanout: f64,
    /// The recent largest fan-out, falling towards the average: how many runners to warm.
    pub fanout_peak: f64,
    /// Finished groups whose fan-out was observed.
    pub observed: u32,
    /// Mean duration, seconds.
    pub duration: f64,
    /// Mean absolute deviation of the duration, seconds.
    pub deviation: f64,
    /// Last seen, minutes since the Unix epoch.
    pub seen_minute: u32,
}

impl From<[u32; 7]> for Learned {
    fn from([key, fanout, observed, duration, deviation, seen_minute, fanout_peak]: [u32; 7]) -> Self {
        Learned {
            key,
            fanout: f64::from(fanout) / 100.0,
            fanout_peak: f64::from(fanout_peak) / 100.0,
            observed,
            duration: f64::from(duration) / 10.0,
            deviation: f64::from(deviation) / 10.0,
            seen_minute,
        }
    }
}

impl From<Learned> for [u32; 7] {
    fn from(l: Learned) -> Self {
        let fixed = |v: f64, scale: f64| (v * scale).round().clamp(0.0, f64::from(u32::MAX)) as u32;
        let (fanout, fanout_peak) = (fixed(l.fanout, 100.0), fixed(l.fanout_peak, 100.0));
        [l.key, fanout, l.observed, fixed(l.duration, 10.0), fixed(l.deviation, 10.0), l.seen_minute, fanout_peak]
    }
}

impl Learned {
    fn new(key: u32, now_ms: u64) -> Self {
        Learned {
            key,
            fanout: 0.0,
            fanout_peak: 0.0,
            observed: 0,
            duration: 0.0,
            deviation: 0.0,
            seen_minute: minute(now_ms),
        }
    }

    /// Folds in a completion's fan-out.
    pub fn observe_fanout(&mut self, jobs: u32) {
        let jobs = f64::from(jobs);
        if self.observed == 0 {
            (self.fanout, self.fanout_peak) = (jobs, jobs);
        } else {
            self.fanout += FANOUT_ALPHA * (jobs - self.fanout);
            self.fanout_peak = jobs.max(self.fanout_peak - PEAK_DECAY * (self.fanout_peak - self.fanout));
        }
        self.observed = self.observed.saturating_add(1);
    }

    /// Folds in a run's duration.
    pub fn observe_duration(&mut self, seconds: f64) {
        if self.duration == 0.0 {
            self.duration = seconds;
            self.deviation = seconds * 0.1;
        } else {
            self.deviation += DURATION_ALPHA * ((seconds - self.duration).abs() - self.deviation);
            self.duration += DURATION_ALPHA * (seconds - self.duration);
        }
    }
}

/// Minutes since the Unix epoch.
fn minute(now_ms: u64) -> u32 {
    (now_ms / 60_000).min(u64::from(u32::MAX)) as u32
}

/// Every pair's history, most recently seen last.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Memory(Vec<Learned>);

impl Memory {
    /// A pair's history, if known.
    pub fn get(&self, key: u32) -> Option<&Learned> {
        self.0.iter().find(|l| l.key == key)
    }

    /// A pair's history, created when new and marked as seen now; the least recently seen pairs beyond `limit`
    /// are forgotten.
    pub fn touch(&mut self, key: u32, now_ms: u64, limit: usize) -> &mut Learned {
        let mut learned = match self.0.iter().position(|l| l.key == key) {
            Some(index) => self.0.remove(index),
            None => Learned::new(key, now_ms),
        };
        learned.seen_minute = minute(now_ms);
        self.0.push(learned);
        let excess = self.0.len().saturating_sub(limit.max(1));
        self.0.drain(..excess);
        self.0.last_mut().expect("just pushed")
    }

    /// Forgets the `count` least recently seen pairs.
    pub fn forget_oldest(&mut self, count: usize) {
        self.0.drain(..count.min(self.0.len()));
    }

    /// Pairs remembered.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Nothing learned yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job_key(workflow_ref: &str, job_display_name: &str) -> u32 {
        combine(workflow_hash(workflow_ref), name_hash(job_display_name))
    }

    #[test]
    fn matrix_jobs_and_branches_share_a_key() {
        let main = "acme/app/.github/workflows/ci.yml@refs/heads/main";
        let pr = "acme/app/.github/workflows/ci.yml@refs/pull/7/merge";
        assert_eq!(job_key(main, "test (3/40)"), job_key(pr, "test (1/40)"));
        assert_eq!(job_key(main, "test (ubuntu, 3)"), job_key(main, "test"));
        assert_ne!(job_key(main, "test"), job_key(main, "build"));
        assert_ne!(job_key(main, "build"), job_key("acme/api/.github/workflows/ci.yml@x", "build"));
        assert_eq!(job_key("", "(weird)"), job_key("", "(weird)"));
    }

    #[test]
    fn averages_follow_observations_and_round_trip_compactly() {
        let mut memory = Memory::default();
        let learned = memory.touch(1, 120_000, 8);
        learned.observe_fanout(40);
        learned.observe_fanout(20);
        learned.observe_duration(300.0);
        learned.observe_duration(240.0);
        // One smaller run: the average falls by 30% of the gap, the peak by a fifth of what is left.
        assert!((learned.fanout - 34.0).abs() < 1e-9);
        assert!((learned.fanout_peak - 38.8).abs() < 1e-9);
        assert!((learned.duration - 294.0).abs() < 1e-9);
        assert!((learned.deviation - 33.0).abs() < 1e-9);
        let json = serde_json::to_string(&memory).unwrap();
        assert_eq!(json, "[[1,3400,2,2940,330,2,3880]]");
        assert_eq!(serde_json::from_str::<Memory>(&json).unwrap(), memory);
        // A larger run raises the peak at once.
        memory.touch(1, 120_000, 8).observe_fanout(44);
        assert!((memory.get(1).unwrap().fanout_peak - 44.0).abs() < 1e-9);
    }

    #[test]
    fn the_least_recently_seen_are_forgotten_first() {
        let mut memory = Memory::default();
        for key in 0..5 {
            memory.touch(key, u64::from(key) * 60_000, 3);
        }
        assert_eq!(memory.len(), 3);
        assert!(memory.get(1).is_none() && memory.get(2).is_some());
        memory.touch(2, 600_000, 3);
        memory.forget_oldest(1);
        assert!(memory.get(3).is_none() && memory.get(2).is_some());
        memory.forget_oldest(5);
        assert!(memory.is_empty());
    }
}
