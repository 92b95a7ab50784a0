//! What is happening now: the job groups of runs that have not finished (whose completion may queue a fan-out)
//! and the windows after a group finished in which its run's newly queued jobs count as its fan-out.
//!
//! A group is every instance of one job of a run — a 40-way matrix is one group, as `needs` sees it: GitHub queues
//! a job's dependents when every instance of what it needs has finished, so the group, not each instance, is what
//! is learned from and warmed for.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A group of a run with jobs queued or running. Stored as `[group id` ([`group_id`]), `key, first seen ms,
/// started ms (0: none yet), jobs queued, jobs started]`, both counts less the jobs completed: its unfinished jobs
/// are the larger, so a job whose queueing was not seen (before a restart, or later in the same batch) still
/// counts once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Group(pub u64, pub u32, pub u64, pub u64, pub u32, pub u32);

impl Group {
    /// Its (workflow, job) key.
    pub fn key(&self) -> u32 {
        self.1
    }
    /// When it was first seen, Unix ms.
    pub fn seen_ms(&self) -> u64 {
        self.2
    }
    /// When its first job started, Unix ms.
    pub fn started_ms(&self) -> Option<u64> {
        (self.3 > 0).then_some(self.3)
    }
}

/// The id of the group of `run`'s jobs with `key`; none for a job of no known run (nothing is queued by its
/// completion, so it is not tracked).
pub fn group_id(run: u64, key: u32) -> Option<u64> {
    (run != 0).then(|| run.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(key))
}

/// How a completion left its group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Finished {
    /// Other jobs of the group are queued or running.
    Pending,
    /// It was the group's last job.
    Last(Group),
    /// Its group is not tracked (no run, seen before a restart, or beyond the entry limit): it counts as a group
    /// of one.
    Untracked,
}

/// Groups not finished a day after they were first seen are forgotten (events were lost).
const GROUP_EXPIRY_MS: u64 = 24 * 3_600_000;

/// The window after a group of a run finished. Stored as `[run, key, closes ms, jobs queued since, jobs expected]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Window(pub u64, pub u32, pub u64, pub u32, pub u32);

impl Window {
    /// The workflow run.
    pub fn run(&self) -> u64 {
        self.0
    }
    /// The finished group's key.
    pub fn key(&self) -> u32 {
        self.1
    }
    /// When it stops counting, Unix ms.
    pub fn closes_ms(&self) -> u64 {
        self.2
    }
    /// Jobs of the run queued since the group finished.
    pub fn queued(&self) -> u32 {
        self.3
    }
    /// Expected jobs not queued yet.
    pub fn outstanding(&self) -> u32 {
        self.4.saturating_sub(self.3)
    }
}

/// Most entries of each kind kept: groups beyond this count as groups of one, and runs finishing groups within one
/// window beyond it are not learned from, which keeps the state small and a decision's work bounded (the state
/// bound holds either way).
const MAX_ENTRIES: usize = 64;

/// Unfinished groups (found by group id) and open windows (one per run, found by run).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InFlight {
    #[serde(rename = "g", default, serialize_with = "entries_out", deserialize_with = "entries_in")]
    pub groups: BTreeMap<u64, Group>,
    #[serde(rename = "w", default, serialize_with = "entries_out", deserialize_with = "entries_in")]
    windows: BTreeMap<u64, Window>,
}

/// An entry found by a number of its own.
trait Keyed {
    fn id(&self) -> u64;
}

impl Keyed for Group {
    fn id(&self) -> u64 {
        self.0
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

/// Whether the entry `id` is there or fits under [`MAX_ENTRIES`].
fn has_room<T>(entries: &BTreeMap<u64, T>, id: u64) -> bool {
    entries.len() < MAX_ENTRIES || entries.contains_key(&id)
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
    /// A job of the group `id` was queued.
    pub fn assigned(&mut self, id: u64, key: u32, now_ms: u64) {
        if let Some(group) = self.group(id, key, now_ms) {
            group.4 = group.4.saturating_add(1);
        }
    }

    /// A job of the group `id` started at `at_ms`.
    pub fn started(&mut self, id: u64, key: u32, at_ms: u64) {
        if let Some(group) = self.group(id, key, at_ms) {
            group.5 = group.5.saturating_add(1);
            if group.3 == 0 {
                group.3 = at_ms.max(1);
            }
        }
    }

    fn group(&mut self, id: u64, key: u32, now_ms: u64) -> Option<&mut Group> {
        has_room(&self.groups, id).then(|| self.groups.entry(id).or_insert(Group(id, key, now_ms, 0, 0, 0)))
    }

    /// A job of the group `id` completed.
    pub fn finished(&mut self, id: u64) -> Finished {
        let Entry::Occupied(mut entry) = self.groups.entry(id) else { return Finished::Untracked };
        let group = entry.get_mut();
        (group.4, group.5) = (group.4.saturating_sub(1), group.5.saturating_sub(1));
        if group.4.max(group.5) > 0 {
            return Finished::Pending;
        }
        Finished::Last(entry.remove())
    }

    /// A job of the group `id` failed or was cancelled: the group's dependents will not run, so it is dropped.
    pub fn abandoned(&mut self, id: u64) {
        self.groups.remove(&id);
    }

    /// The group finished, opening its run's window; the window it replaces (an earlier group of the run) is
    /// returned closed: jobs queued from now on are the new group's.
    pub fn open_window(&mut self, window: Window) -> Option<Window> {
        has_room(&self.windows, window.run()).then(|| self.windows.insert(window.run(), window)).flatten()
    }

    /// A job of `run` with `key` was queued: true when it is fan-out of a finished group (an open window of its
    /// run), false when it starts a run or nothing announced it. A job of the window's own group with nothing
    /// queued since means the group had not finished (a matrix queued a few instances at a time): the window goes,
    /// unlearned.
    pub fn queued(&mut self, run: u64, key: u32) -> bool {
        if run == 0 {
            return false;
        }
        let Entry::Occupied(mut window) = self.windows.entry(run) else { return false };
        if window.get().key() == key && window.get().queued() == 0 {
            window.remove();
            return false;
        }
        let window = window.get_mut();
        window.3 = window.3.saturating_add(1);
        true
    }

    /// Removes and returns the windows closed by `now_ms`, and forgets groups unfinished for a day.
    pub fn close_windows(&mut self, now_ms: u64) -> Vec<Window> {
        self.groups.retain(|_, g| now_ms.saturating_sub(g.seen_ms()) < GROUP_EXPIRY_MS);
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

    /// Drops the `count` groups seen first.
    pub fn drop_oldest_groups(&mut self, count: usize) {
        drop_first(&mut self.groups, count, Group::seen_ms);
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
    fn a_matrix_finishes_with_its_last_job_and_a_run_keeps_one_window() {
        let mut in_flight = InFlight::default();
        let matrix = group_id(100, 7).unwrap();
        assert_ne!(Some(matrix), group_id(101, 7));
        assert_eq!(group_id(0, 7), None, "jobs of no known run are not tracked");
        for _ in 0..3 {
            in_flight.assigned(matrix, 7, 1_000);
        }
        in_flight.started(matrix, 7, 5_000);
        in_flight.started(matrix, 7, 6_000);
        assert_eq!(in_flight.groups[&matrix].started_ms(), Some(5_000));
        assert_eq!((in_flight.finished(matrix), in_flight.finished(matrix)), (Finished::Pending, Finished::Pending));
        let Finished::Last(group) = in_flight.finished(matrix) else { panic!("the third job finishes the group") };
        assert_eq!((group.key(), group.started_ms()), (7, Some(5_000)));
        assert_eq!(in_flight.finished(matrix), Finished::Untracked);

        assert_eq!(in_flight.open_window(Window(100, 7, 30_000, 0, 40)), None);
        assert!(in_flight.queued(100, 9) && in_flight.queued(100, 9));
        assert!(!in_flight.queued(200, 9), "another run's job starts that run");
        assert_eq!(in_flight.outstanding(), 38);
        let replaced = in_flight.open_window(Window(100, 8, 40_000, 0, 0)).unwrap();
        assert_eq!((replaced.key(), replaced.queued()), (7, 2));
        assert_eq!(in_flight.outstanding(), 0);
        assert!(in_flight.close_windows(39_999).is_empty());
        assert_eq!(in_flight.close_windows(40_000).len(), 1);
        assert!(!in_flight.queued(0, 9), "jobs of no known run start runs");
    }

    #[test]
    fn a_matrix_queued_a_few_at_a_time_is_one_group_and_stale_groups_expire() {
        let mut in_flight = InFlight::default();
        let matrix = group_id(100, 7).unwrap();
        in_flight.assigned(matrix, 7, 0);
        assert!(matches!(in_flight.finished(matrix), Finished::Last(_)));
        in_flight.open_window(Window(100, 7, 30_000, 0, 0));
        assert!(!in_flight.queued(100, 7), "the next instance reopens the matrix");
        assert_eq!(in_flight.windows().count(), 0);
        in_flight.open_window(Window(100, 7, 30_000, 0, 0));
        assert!(in_flight.queued(100, 8), "another job's arrival is fan-out");
        assert!(in_flight.queued(100, 7), "after fan-out, the group had finished");
        assert_eq!(in_flight.outstanding(), 0);
        in_flight.close_windows(30_000);
        // A job whose start is seen before its queueing (a later message of the same batch) counts once.
        in_flight.started(matrix, 7, 2_000);
        in_flight.assigned(matrix, 7, 2_000);
        assert!(matches!(in_flight.finished(matrix), Finished::Last(_)));
        in_flight.assigned(matrix, 7, 0);
        in_flight.close_windows(GROUP_EXPIRY_MS - 1);
        assert_eq!(in_flight.groups.len(), 1);
        in_flight.close_windows(GROUP_EXPIRY_MS);
        assert!(in_flight.groups.is_empty());
    }
}
