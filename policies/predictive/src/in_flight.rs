//! What is happening now: predecessors running (whose fan-out is expected) and the windows after completions
//! in which a run's newly queued jobs count as the completed job's fan-out.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A running job whose completion is expected to queue jobs. Stored as `[job id, key, started ms]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Running(pub u64, pub u32, pub u64);

impl Running {
    /// The job's runner request id.
    pub fn job_id(&self) -> u64 {
        self.0
    }
    /// Its (workflow, job) key.
    pub fn key(&self) -> u32 {
        self.1
    }
    /// When it started, Unix ms.
    pub fn started_ms(&self) -> u64 {
        self.2
    }
}

/// The window after a job of a run completed. Stored as `[run, key, closes ms, jobs queued since, jobs expected]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Window(pub u64, pub u32, pub u64, pub u32, pub u32);

impl Window {
    /// The workflow run.
    pub fn run(&self) -> u64 {
        self.0
    }
    /// The completed job's key.
    pub fn key(&self) -> u32 {
        self.1
    }
    /// When it stops counting, Unix ms.
    pub fn closes_ms(&self) -> u64 {
        self.2
    }
    /// Jobs of the run queued since the completion.
    pub fn queued(&self) -> u32 {
        self.3
    }
    /// Expected jobs not queued yet.
    pub fn outstanding(&self) -> u32 {
        self.4.saturating_sub(self.3)
    }
}

/// Most entries of each kind kept: runs completing jobs within one window beyond this are not learned from,
/// which keeps the state small and a decision's work bounded (the state bound holds either way).
const MAX_ENTRIES: usize = 48;

/// Running predecessors (found by job id) and open windows (one per run, found by run).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InFlight {
    #[serde(rename = "r", default, serialize_with = "entries_out", deserialize_with = "entries_in")]
    pub running: BTreeMap<u64, Running>,
    #[serde(rename = "w", default, serialize_with = "entries_out", deserialize_with = "entries_in")]
    windows: BTreeMap<u64, Window>,
}

/// An entry found by a number of its own.
trait Keyed {
    fn id(&self) -> u64;
}

impl Keyed for Running {
    fn id(&self) -> u64 {
        self.job_id()
    }
}

impl Keyed for Window {
    fn id(&self) -> u64 {
        self.run()
    }
}

/// Entries are stored as a list.
fn entries_out<S: Serializer, T: Serialize>(entries: &BTreeMap<u64, T>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(entries.values())
}

fn entries_in<'de, D: Deserializer<'de>, T: Deserialize<'de> + Keyed>(d: D) -> Result<BTreeMap<u64, T>, D::Error> {
    Ok(Vec::<T>::deserialize(d)?.into_iter().map(|entry| (entry.id(), entry)).collect())
}

/// Removes the `count` entries that sort first by `by`.
fn drop_first<T: Copy, K: Ord>(entries: &mut BTreeMap<u64, T>, count: usize, by: impl Fn(&T) -> K) {
    let mut sorted: Vec<(u64, T)> = entries.iter().map(|(&id, &entry)| (id, entry)).collect();
    sorted.sort_by_key(|(_, entry)| by(entry));
    for (id, _) in sorted.iter().take(count) {
        entries.remove(id);
    }
}

impl InFlight {
    /// A predecessor started.
    pub fn started(&mut self, running: Running) {
        if self.running.len() < MAX_ENTRIES {
            self.running.entry(running.job_id()).or_insert(running);
        }
    }

    /// A job completed: it stops running and, if it belongs to a run, opens that run's window. The window it
    /// replaces (an earlier completion of the run) is returned closed: jobs queued from now on are the new
    /// completion's.
    pub fn completed(&mut self, job_id: u64, window: Option<Window>) -> Option<Window> {
        self.running.remove(&job_id);
        let window = window?;
        if self.windows.len() >= MAX_ENTRIES && !self.windows.contains_key(&window.run()) {
            return None;
        }
        self.windows.insert(window.run(), window)
    }

    /// A job of `run` was queued: true when it is fan-out of a completion (an open window of its run), false when
    /// it starts a run or nothing announced it.
    pub fn queued(&mut self, run: u64) -> bool {
        match self.windows.get_mut(&run).filter(|_| run != 0) {
            Some(window) => {
                window.3 = window.3.saturating_add(1);
                true
            }
            None => false,
        }
    }

    /// Removes and returns the windows closed by `now_ms`.
    pub fn close_windows(&mut self, now_ms: u64) -> Vec<Window> {
        let closed: Vec<Window> = self.windows.values().filter(|w| w.closes_ms() <= now_ms).copied().collect();
        for window in &closed {
            self.windows.remove(&window.run());
        }
        closed
    }

    /// The open windows.
    pub fn windows(&self) -> impl Iterator<Item = &Window> {
        self.windows.values()
    }

    /// Drops the `count` windows that close first.
    pub fn drop_oldest_windows(&mut self, count: usize) {
        drop_first(&mut self.windows, count, Window::closes_ms);
    }

    /// Drops the `count` predecessors that started first.
    pub fn drop_oldest_running(&mut self, count: usize) {
        drop_first(&mut self.running, count, Running::started_ms);
    }

    /// Expected jobs not yet queued in open windows.
    pub fn outstanding(&self) -> u32 {
        self.windows.values().map(Window::outstanding).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_keeps_one_window_and_queued_jobs_count_in_it() {
        let mut in_flight = InFlight::default();
        in_flight.started(Running(1, 7, 0));
        in_flight.started(Running(1, 7, 0));
        assert_eq!(in_flight.running.len(), 1);
        assert_eq!(in_flight.completed(1, Some(Window(100, 7, 30_000, 0, 40))), None);
        assert!(in_flight.running.is_empty());
        assert!(in_flight.queued(100) && in_flight.queued(100));
        assert!(!in_flight.queued(200), "another run's job starts that run");
        assert_eq!(in_flight.outstanding(), 38);
        let replaced = in_flight.completed(2, Some(Window(100, 8, 40_000, 0, 0))).unwrap();
        assert_eq!((replaced.key(), replaced.queued()), (7, 2));
        assert_eq!(in_flight.outstanding(), 0);
        assert!(in_flight.close_windows(39_999).is_empty());
        assert_eq!(in_flight.close_windows(40_000).len(), 1);
        assert!(!in_flight.queued(0), "jobs of no known run start runs");
    }
}
