//! ARC's listener metrics (names, types, default labels, buckets), configurable per metric as ARC's
//! `listenerMetrics` (§4.5): when a config is given only the metrics it names are served, with its labels and
//! buckets; unknown names and labels are logged and skipped. Plus `gha_available_jobs` and `gha_acquired_jobs`.

use std::collections::{BTreeMap, HashMap};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use gha_actions_client::model::{JobFields, Statistics};

/// ARC's default histogram buckets (seconds).
pub const BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 12.0, 15.0, 18.0, 20.0, 25.0, 30.0, 40.0,
    50.0, 60.0, 70.0, 80.0, 90.0, 100.0, 110.0, 120.0, 150.0, 180.0, 210.0, 240.0, 300.0, 360.0, 420.0, 480.0, 540.0,
    600.0, 900.0, 1200.0, 1800.0, 2400.0, 3000.0, 3600.0,
];

const SCALE_SET_LABELS: &[&str] = &["enterprise", "organization", "repository", "name", "namespace"];
const JOB_LABELS: &[&str] = &["enterprise", "organization", "repository", "job_name", "event_name"];
const JOB_RESULT_LABELS: &[&str] =
    &["enterprise", "organization", "repository", "job_name", "event_name", "job_result"];
/// Every label key a metric may use.
const KNOWN_LABELS: &[&str] = &[
    "name",
    "namespace",
    "enterprise",
    "organization",
    "repository",
    "job_name",
    "job_workflow_ref",
    "job_workflow_name",
    "job_workflow_target",
    "event_name",
    "job_result",
];

const GAUGES: &[(&str, &str)] = &[
    ("gha_assigned_jobs", "Assigned jobs"),
    ("gha_running_jobs", "Running jobs"),
    ("gha_registered_runners", "Registered runners"),
    ("gha_busy_runners", "Busy runners"),
    ("gha_idle_runners", "Idle runners"),
    ("gha_min_runners", "minRunners"),
    ("gha_max_runners", "maxRunners"),
    ("gha_desired_runners", "Desired runners (the policy's decision)"),
    ("gha_available_jobs", "Available jobs (not yet acquired)"),
    ("gha_acquired_jobs", "Acquired jobs"),
];
const COUNTERS: &[(&str, &str, &[&str])] = &[
    ("gha_started_jobs_total", "Jobs started", JOB_LABELS),
    ("gha_completed_jobs_total", "Jobs completed", JOB_RESULT_LABELS),
];
const HISTOGRAMS: &[(&str, &str, &[&str])] = &[
    ("gha_job_startup_duration_seconds", "From scale-set assignment to runner assignment", JOB_LABELS),
    ("gha_job_execution_duration_seconds", "From runner assignment to finish", JOB_RESULT_LABELS),
];

pub use gha_crds::{MetricSettings, MetricsConfig};

type Labels = Vec<(String, String)>;

#[derive(Clone)]
struct Buckets(Vec<f64>);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

struct Metric<M, C = fn() -> M> {
    help: &'static str,
    labels: Vec<String>,
    family: Family<Labels, M, C>,
}

/// Where label values come from: the scale set (from the config) and, for job metrics, the job.
#[derive(Debug, Clone, Default)]
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

/// The listener's metrics.
pub struct ListenerMetrics {
    scale_set: ScaleSetLabels,
    gauges: HashMap<&'static str, Metric<Gauge>>,
    counters: HashMap<&'static str, Metric<Counter>>,
    histograms: HashMap<&'static str, Metric<Histogram, Buckets>>,
    /// Parts of messages that could not be read and were skipped (always served; not one of ARC's metrics).
    undecodable: Counter,
    /// Stored policy states dropped, by reason (always served).
    state_dropped: Family<Vec<(String, String)>, Counter>,
}

fn chosen_labels(metric: &str, settings: Option<&MetricSettings>, defaults: &[&str]) -> Vec<String> {
    let requested: Vec<String> = match settings.and_then(|s| s.labels.clone()) {
        Some(labels) => labels,
        None => defaults.iter().map(|l| l.to_string()).collect(),
    };
    requested
        .into_iter()
        .filter(|l| {
            let known = KNOWN_LABELS.contains(&l.as_str());
            if !known {
                tracing::warn!(metric, label = %l, "unknown metric label; skipped");
            }
            known
        })
        .collect()
}

fn wanted<'a>(
    config: Option<&'a MetricsConfig>,
    pick: fn(&MetricsConfig) -> Option<&BTreeMap<String, MetricSettings>>,
    name: &str,
) -> Option<Option<&'a MetricSettings>> {
    match config {
        None => Some(None),
        Some(config) => pick(config).and_then(|m| m.get(name)).map(Some),
    }
}

/// `owner/repo/.github/workflows/ci.yml@refs/heads/main` → (`ci`, `heads/main`).
fn workflow_name_and_target(workflow_ref: &str) -> (String, String) {
    let (path, reference) = workflow_ref.split_once('@').unwrap_or((workflow_ref, ""));
    let file = path.rsplit('/').next().unwrap_or_default();
    let name = file.strip_suffix(".yml").or_else(|| file.strip_suffix(".yaml")).unwrap_or(file).to_string();
    let target = reference.strip_prefix("refs/").unwrap_or(reference);
    let target = target.strip_suffix("/merge").unwrap_or(target).to_string();
    (name, target)
}

impl ListenerMetrics {
    /// Metrics for one scale set; `config` = `listenerMetrics` (None = everything with ARC's defaults).
    pub fn new(scale_set: ScaleSetLabels, config: Option<&MetricsConfig>) -> Self {
        if let Some(config) = config {
            let known: Vec<&str> = GAUGES
                .iter()
                .map(|g| g.0)
                .chain(COUNTERS.iter().map(|c| c.0))
                .chain(HISTOGRAMS.iter().map(|h| h.0))
                .collect();
            let configured = [&config.counters, &config.gauges, &config.histograms];
            for name in configured.into_iter().flatten().flat_map(|m| m.keys()) {
                if !known.contains(&name.as_str()) {
                    tracing::warn!(metric = %name, "unknown listener metric; skipped");
                }
            }
        }
        let mut gauges = HashMap::new();
        for (name, help) in GAUGES {
            if let Some(settings) = wanted(config, |c| c.gauges.as_ref(), name) {
                gauges.insert(
                    *name,
                    Metric { help, labels: chosen_labels(name, settings, SCALE_SET_LABELS), family: Family::default() },
                );
            }
        }
        let mut counters = HashMap::new();
        for (name, help, defaults) in COUNTERS {
            if let Some(settings) = wanted(config, |c| c.counters.as_ref(), name) {
                counters.insert(
                    *name,
                    Metric { help, labels: chosen_labels(name, settings, defaults), family: Family::default() },
                );
            }
        }
        let mut histograms = HashMap::new();
        for (name, help, defaults) in HISTOGRAMS {
            if let Some(settings) = wanted(config, |c| c.histograms.as_ref(), name) {
                let buckets = settings.and_then(|s| s.buckets.clone()).unwrap_or_else(|| BUCKETS.to_vec());
                histograms.insert(
                    *name,
                    Metric {
                        help,
                        labels: chosen_labels(name, settings, defaults),
                        family: Family::new_with_constructor(Buckets(buckets)),
                    },
                );
            }
        }
        ListenerMetrics {
            scale_set,
            gauges,
            counters,
            histograms,
            undecodable: Counter::default(),
            state_dropped: Family::default(),
        }
    }

    /// Registers everything served. Counters are registered without `_total` (the encoder adds it).
    pub fn register(&self, registry: &mut Registry) {
        for (name, metric) in &self.gauges {
            registry.register(*name, metric.help, metric.family.clone());
        }
        for (name, metric) in &self.counters {
            registry.register(name.trim_end_matches("_total"), metric.help, metric.family.clone());
        }
        for (name, metric) in &self.histograms {
            registry.register(*name, metric.help, metric.family.clone());
        }
        registry.register(
            "gha_listener_undecodable_messages",
            "Parts of Actions-service messages that could not be decoded and were skipped",
            self.undecodable.clone(),
        );
        registry.register(
            "gha_listener_policy_state_dropped",
            "Stored policy states not restored or not stored (reason: corrupt, oversized, other-policy)",
            self.state_dropped.clone(),
        );
    }

    /// Counts a policy state dropped for `reason`.
    pub fn state_dropped(&self, reason: &str) {
        self.state_dropped.get_or_create(&vec![("reason".to_string(), reason.to_string())]).inc();
    }

    /// Counts skipped, undecodable parts of a message.
    pub fn undecodable(&self, parts: u32) {
        if parts > 0 {
            self.undecodable.inc_by(u64::from(parts));
        }
    }

    fn value(&self, key: &str, job: Option<&JobFields>) -> String {
        let s = &self.scale_set;
        match (key, job) {
            ("name", _) => s.name.clone(),
            ("namespace", _) => s.namespace.clone(),
            ("enterprise", _) => s.enterprise.clone(),
            // For job metrics organization and repository come from the job (ARC #4525).
            ("organization", Some(j)) => j.owner_name.clone(),
            ("repository", Some(j)) => j.repository_name.clone(),
            ("organization", None) => s.organization.clone(),
            ("repository", None) => s.repository.clone(),
            ("job_name", Some(j)) => j.job_display_name.clone(),
            ("job_workflow_ref", Some(j)) => j.job_workflow_ref.clone(),
            ("job_workflow_name", Some(j)) => workflow_name_and_target(&j.job_workflow_ref).0,
            ("job_workflow_target", Some(j)) => workflow_name_and_target(&j.job_workflow_ref).1,
            ("event_name", Some(j)) => j.event_name.clone(),
            ("job_result", Some(j)) => j.result.clone().unwrap_or_default(),
            _ => String::new(),
        }
    }

    fn labels(&self, keys: &[String], job: Option<&JobFields>) -> Labels {
        keys.iter().map(|k| (k.clone(), gha_policy_engine::escape_label_value(&self.value(k, job)))).collect()
    }

    fn gauge(&self, name: &str, value: u32) {
        if let Some(metric) = self.gauges.get(name) {
            metric.family.get_or_create(&self.labels(&metric.labels, None)).set(i64::from(value));
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

    fn count(&self, name: &str, job: &JobFields) {
        if let Some(metric) = self.counters.get(name) {
            metric.family.get_or_create(&self.labels(&metric.labels, Some(job))).inc();
        }
    }

    fn observe(&self, name: &str, job: &JobFields, seconds: f64) {
        if let Some(metric) = self.histograms.get(name) {
            metric.family.get_or_create(&self.labels(&metric.labels, Some(job))).observe(seconds);
        }
    }

    /// A JobStarted.
    pub fn job_started(&self, job: &JobFields) {
        self.count("gha_started_jobs_total", job);
        if let (Some(assigned), Some(started)) = (job.scale_set_assign_time, job.runner_assign_time) {
            self.observe("gha_job_startup_duration_seconds", job, (started - assigned).num_seconds().max(0) as f64);
        }
    }

    /// A JobCompleted.
    pub fn job_completed(&self, job: &JobFields) {
        self.count("gha_completed_jobs_total", job);
        // ARC #4472: no execution time when the job never reached a runner.
        if let (Some(started), Some(finished)) = (job.runner_assign_time.filter(|t| t.timestamp() > 0), job.finish_time)
        {
            self.observe("gha_job_execution_duration_seconds", job, (finished - started).num_seconds().max(0) as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(metrics: &ListenerMetrics) -> String {
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text
    }

    fn scale_set() -> ScaleSetLabels {
        ScaleSetLabels { name: "ers".into(), namespace: "ci".into(), organization: "acme".into(), ..Default::default() }
    }

    #[test]
    fn defaults_serve_every_metric_with_arcs_labels() {
        let metrics = ListenerMetrics::new(scale_set(), None);
        metrics.desired(4);
        let now = chrono::Utc::now();
        metrics.job_completed(&JobFields {
            owner_name: "o".into(),
            repository_name: "r".into(),
            result: Some("succeeded".into()),
            runner_assign_time: Some(now - chrono::TimeDelta::seconds(20)),
            finish_time: Some(now),
            ..Default::default()
        });
        let text = encode(&metrics);
        assert!(
            text.contains(
                r#"gha_desired_runners{enterprise="",organization="acme",repository="",name="ers",namespace="ci"} 4"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"gha_completed_jobs_total{enterprise="",organization="o",repository="r",job_name="",event_name="",job_result="succeeded"} 1"#), "{text}");
        assert!(text.contains(r#"gha_job_execution_duration_seconds_sum{enterprise="",organization="o",repository="r",job_name="",event_name="",job_result="succeeded"} 20.0"#), "{text}");
    }

    #[test]
    fn a_config_chooses_metrics_labels_and_buckets() {
        let config: MetricsConfig = serde_json::from_value(serde_json::json!({
            "gauges": {"gha_desired_runners": {"labels": ["name", "bogus"]}, "gha_nonsense": {}},
            "histograms": {"gha_job_startup_duration_seconds": {"labels": ["job_workflow_name"], "buckets": [1.0, 5.0]}}
        }))
        .unwrap();
        let metrics = ListenerMetrics::new(scale_set(), Some(&config));
        metrics.desired(2);
        metrics.statistics(&Statistics { total_assigned_jobs: 9, ..Default::default() });
        let now = chrono::Utc::now();
        metrics.job_started(&JobFields {
            job_workflow_ref: "acme/app/.github/workflows/ci.yml@refs/heads/main".into(),
            scale_set_assign_time: Some(now - chrono::TimeDelta::seconds(3)),
            runner_assign_time: Some(now),
            ..Default::default()
        });
        let text = encode(&metrics);
        assert!(text.contains(r#"gha_desired_runners{name="ers"} 2"#), "{text}");
        assert!(!text.contains("gha_assigned_jobs"), "not configured: not served");
        assert!(
            text.contains(r#"gha_job_startup_duration_seconds_bucket{le="5.0",job_workflow_name="ci"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn job_fields_from_github_are_escaped_in_the_exposition() {
        let metrics = ListenerMetrics::new(scale_set(), None);
        metrics.job_started(&JobFields {
            job_display_name: "build \"quoted\"\nfake_metric 1".into(),
            ..Default::default()
        });
        let text = encode(&metrics);
        let started: Vec<&str> = text.lines().filter(|l| l.starts_with("gha_started_jobs_total{")).collect();
        assert_eq!(started.len(), 1, "{text}");
        assert!(started[0].contains(r#"job_name="build \"quoted\"\nfake_metric 1""#), "{text}");
        assert!(!text.lines().any(|l| l.starts_with("fake_metric")), "{text}");
    }

    #[test]
    fn workflow_refs_split_into_name_and_target() {
        assert_eq!(
            workflow_name_and_target("o/r/.github/workflows/ci.yml@refs/heads/main"),
            ("ci".into(), "heads/main".into())
        );
        assert_eq!(
            workflow_name_and_target("o/r/.github/workflows/b.yaml@refs/pull/7/merge"),
            ("b".into(), "pull/7".into())
        );
        assert_eq!(
            workflow_name_and_target("o/r/.github/workflows/t.yml@refs/tags/v1"),
            ("t".into(), "tags/v1".into())
        );
    }
}
