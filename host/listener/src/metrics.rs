//! ARC's listener metrics (names, types, labels, buckets), plus available and acquired jobs.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use gha_actions_client::model::{JobFields, Statistics};

/// Labels of the scale-set gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScaleSetLabels {
    /// ERS name.
    pub name: String,
    /// ERS namespace.
    pub namespace: String,
    /// From the config URL.
    pub enterprise: String,
    /// From the config URL.
    pub organization: String,
    /// From the config URL.
    pub repository: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    enterprise: String,
    organization: String,
    repository: String,
    job_name: String,
    event_name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobResultLabels {
    enterprise: String,
    organization: String,
    repository: String,
    job_name: String,
    event_name: String,
    job_result: String,
}

/// ARC's default histogram buckets (seconds).
pub const BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 12.0, 15.0, 18.0, 20.0, 25.0, 30.0, 40.0,
    50.0, 60.0, 70.0, 80.0, 90.0, 100.0, 110.0, 120.0, 150.0, 180.0, 210.0, 240.0, 300.0, 360.0, 420.0, 480.0, 540.0,
    600.0, 900.0, 1200.0, 1800.0, 2400.0, 3000.0, 3600.0,
];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS.iter().copied())
}

/// The listener's metrics.
pub struct ListenerMetrics {
    labels: ScaleSetLabels,
    enterprise: String,
    gauges: [(&'static str, &'static str, Family<ScaleSetLabels, Gauge>); 10],
    started: Family<JobLabels, Counter>,
    completed: Family<JobResultLabels, Counter>,
    startup: Family<JobLabels, Histogram, fn() -> Histogram>,
    execution: Family<JobResultLabels, Histogram, fn() -> Histogram>,
}

impl ListenerMetrics {
    /// Metrics for one scale set.
    pub fn new(labels: ScaleSetLabels) -> Self {
        ListenerMetrics {
            enterprise: labels.enterprise.clone(),
            labels,
            gauges: [
                ("gha_assigned_jobs", "Assigned jobs", Family::default()),
                ("gha_running_jobs", "Running jobs", Family::default()),
                ("gha_registered_runners", "Registered runners", Family::default()),
                ("gha_busy_runners", "Busy runners", Family::default()),
                ("gha_idle_runners", "Idle runners", Family::default()),
                ("gha_min_runners", "minRunners", Family::default()),
                ("gha_max_runners", "maxRunners", Family::default()),
                ("gha_desired_runners", "Desired runners (the policy's decision)", Family::default()),
                ("gha_available_jobs", "Available jobs (not yet acquired)", Family::default()),
                ("gha_acquired_jobs", "Acquired jobs", Family::default()),
            ],
            started: Family::default(),
            completed: Family::default(),
            startup: Family::new_with_constructor(histogram),
            execution: Family::new_with_constructor(histogram),
        }
    }

    /// Registers everything.
    pub fn register(&self, registry: &mut Registry) {
        for (name, help, family) in &self.gauges {
            registry.register(*name, *help, family.clone());
        }
        registry.register("gha_started_jobs", "Jobs started", self.started.clone());
        registry.register("gha_completed_jobs", "Jobs completed", self.completed.clone());
        registry.register(
            "gha_job_startup_duration_seconds",
            "From scale-set assignment to runner assignment",
            self.startup.clone(),
        );
        registry.register(
            "gha_job_execution_duration_seconds",
            "From runner assignment to finish",
            self.execution.clone(),
        );
    }

    fn gauge(&self, name: &str, value: u32) {
        if let Some((_, _, family)) = self.gauges.iter().find(|(n, _, _)| *n == name) {
            family.get_or_create(&self.labels).set(i64::from(value));
        }
    }

    /// Records statistics.
    pub fn statistics(&self, s: &Statistics) {
        self.gauge("gha_assigned_jobs", s.total_assigned_jobs);
        self.gauge("gha_running_jobs", s.total_running_jobs);
        self.gauge("gha_registered_runners", s.total_registered_runners);
        self.gauge("gha_busy_runners", s.total_busy_runners);
        self.gauge("gha_idle_runners", s.total_idle_runners);
        self.gauge("gha_available_jobs", s.total_available_jobs);
        self.gauge("gha_acquired_jobs", s.total_acquired_jobs);
    }

    /// Records the bounds.
    pub fn bounds(&self, min: u32, max: u32) {
        self.gauge("gha_min_runners", min);
        self.gauge("gha_max_runners", max);
    }

    /// Records a decision.
    pub fn desired(&self, desired: u32) {
        self.gauge("gha_desired_runners", desired);
    }

    fn job_labels(&self, job: &JobFields) -> JobLabels {
        JobLabels {
            enterprise: self.enterprise.clone(),
            organization: job.owner_name.clone(),
            repository: job.repository_name.clone(),
            job_name: job.job_display_name.clone(),
            event_name: job.event_name.clone(),
        }
    }

    /// A JobStarted.
    pub fn job_started(&self, job: &JobFields) {
        let labels = self.job_labels(job);
        self.started.get_or_create(&labels).inc();
        if let (Some(assigned), Some(started)) = (job.scale_set_assign_time, job.runner_assign_time) {
            let seconds = (started - assigned).num_seconds().max(0) as f64;
            self.startup.get_or_create(&labels).observe(seconds);
        }
    }

    /// A JobCompleted.
    pub fn job_completed(&self, job: &JobFields) {
        let l = self.job_labels(job);
        let labels = JobResultLabels {
            enterprise: l.enterprise,
            organization: l.organization,
            repository: l.repository,
            job_name: l.job_name,
            event_name: l.event_name,
            job_result: job.result.clone().unwrap_or_default(),
        };
        self.completed.get_or_create(&labels).inc();
        // ARC #4472: no execution time when the job never reached a runner.
        if let (Some(started), Some(finished)) = (job.runner_assign_time.filter(|t| t.timestamp() > 0), job.finish_time)
        {
            self.execution.get_or_create(&labels).observe((finished - started).num_seconds().max(0) as f64);
        }
    }
}
