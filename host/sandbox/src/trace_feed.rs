//! Plays a trace into the fake Actions service in trace time: a job with a `queuedAt` is queued at that time, a
//! job with `needs` the moment the jobs of its run it needs have completed there — so the product's own waits
//! push later jobs later, as in real CI.

use std::collections::HashSet;

use gha_actions_fake::{FakeActions, JobState};
use gha_simulator::trace::{self, TraceJob};

use crate::job;

/// The jobs of a trace and how far they are played.
pub struct TraceFeed<'a> {
    trace: &'a [TraceJob],
    /// Jobs with a `queuedAt`, in queue order, and how many of them are queued.
    roots: Vec<usize>,
    next_root: usize,
    /// The fake's id of each queued job.
    ids: Vec<Option<i64>>,
    completed: Vec<bool>,
    dependents: Vec<Vec<usize>>,
    unfinished_needs: Vec<usize>,
    /// Runs-on label of jobs without labels.
    default_label: &'a str,
}

impl<'a> TraceFeed<'a> {
    /// A feed of `trace`; jobs without labels run on `default_label`.
    ///
    /// # Errors
    /// A job with neither `queuedAt` nor `needs`, needs naming no job of the run, or a cycle.
    pub fn new(trace: &'a [TraceJob], default_label: &'a str) -> Result<Self, String> {
        let needs = trace::needs(trace)?;
        let dependents = trace::dependents(&needs);
        let mut roots: Vec<usize> = (0..trace.len()).filter(|&j| needs[j].is_empty()).collect();
        if let Some(&job) = roots.iter().find(|&&j| trace[j].queued_at.is_none()) {
            return Err(format!("job {job} has neither queuedAt nor needs"));
        }
        roots.sort_by(|&a, &b| {
            trace[a].queued_at.unwrap_or_default().total_cmp(&trace[b].queued_at.unwrap_or_default())
        });
        Ok(TraceFeed {
            trace,
            roots,
            next_root: 0,
            ids: vec![None; trace.len()],
            completed: vec![false; trace.len()],
            dependents,
            unfinished_needs: needs.iter().map(Vec::len).collect(),
            default_label,
        })
    }

    /// Queues what is due at trace time `t`: roots whose time has come, and jobs whose needs completed.
    pub fn feed(&mut self, fake: &FakeActions, t: f64) {
        while let Some(&root) = self.roots.get(self.next_root)
            && self.trace[root].queued_at.is_some_and(|q| q <= t)
        {
            self.queue(fake, root);
            self.next_root += 1;
        }
        let completed: HashSet<i64> = fake
            .with_state(|s| s.jobs().into_iter().filter(|j| j.state == JobState::Completed).map(|j| j.id).collect());
        let newly: Vec<usize> = (0..self.trace.len())
            .filter(|&j| !self.completed[j] && self.ids[j].is_some_and(|id| completed.contains(&id)))
            .collect();
        for job in newly {
            self.completed[job] = true;
            for dependent in std::mem::take(&mut self.dependents[job]) {
                self.unfinished_needs[dependent] -= 1;
                if self.unfinished_needs[dependent] == 0 {
                    self.queue(fake, dependent);
                }
            }
        }
    }

    /// Whether every job of the trace has been queued and has completed.
    pub fn finished(&self) -> bool {
        self.completed.iter().all(|&c| c)
    }

    /// Trace time of the last root job.
    pub fn last_queued(&self) -> f64 {
        self.roots.last().and_then(|&j| self.trace[j].queued_at).unwrap_or_default()
    }

    fn queue(&mut self, fake: &FakeActions, index: usize) {
        let spec = &self.trace[index];
        let labels: Vec<&str> = if spec.labels.is_empty() {
            vec![self.default_label]
        } else {
            spec.labels.iter().map(String::as_str).collect()
        };
        let mut job = job(&labels, (spec.duration * 1000.0) as u64);
        job.repository = spec.repository.clone();
        job.workflow_ref = spec.workflow.clone();
        if let Some(name) = &spec.job {
            job.display_name = name.clone();
        }
        job.workflow_run_id = spec.run.map_or(0, |run| i64::try_from(run).unwrap_or(i64::MAX));
        self.ids[index] = Some(fake.enqueue(job));
    }
}
