//! Prometheus metrics of the policy engine.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Most guest-defined series one scale set's policy may create.
const MAX_GUEST_SERIES_PER_SCALE_SET: usize = 100;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    hook: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HookLabels {
    hook: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

type GuestLabels = Vec<(String, String)>;

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1e-6, 4.0, 12))
}

/// `gha_policy_*` metrics: calls, durations, traps, fallbacks, and the series policies define themselves.
pub struct PolicyMetrics {
    calls: Family<CallLabels, Counter>,
    duration: Family<HookLabels, Histogram, fn() -> Histogram>,
    traps: Family<KindLabels, Counter>,
    fallbacks: Family<HookLabels, Counter>,
    shadow_disagreements: Counter,
    log_dropped: Counter,
    churn_damped: Family<KindLabels, Counter>,
    guest_counters: Family<GuestLabels, Counter>,
    guest_gauges: Family<GuestLabels, Gauge<f64, AtomicU64>>,
    guest_series: Mutex<HashMap<String, HashSet<GuestLabels>>>,
}

impl Default for PolicyMetrics {
    fn default() -> Self {
        PolicyMetrics {
            calls: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            traps: Family::default(),
            fallbacks: Family::default(),
            shadow_disagreements: Counter::default(),
            log_dropped: Counter::default(),
            churn_damped: Family::default(),
            guest_counters: Family::default(),
            guest_gauges: Family::default(),
            guest_series: Mutex::new(HashMap::new()),
        }
    }
}

impl PolicyMetrics {
    /// Registers every metric in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register("gha_policy_calls", "Policy hook calls by hook and result", self.calls.clone());
        registry.register(
            "gha_policy_call_duration_seconds",
            "Policy hook call duration, host side, validation included",
            self.duration.clone(),
        );
        registry.register("gha_policy_traps", "Policy calls stopped by the sandbox, by kind", self.traps.clone());
        registry.register(
            "gha_policy_fallbacks",
            "Decisions made by the failure policy instead of the policy",
            self.fallbacks.clone(),
        );
        registry.register(
            "gha_policy_shadow_disagreements",
            "Shadow-policy decisions that differed from the acting policy",
            self.shadow_disagreements.clone(),
        );
        registry.register(
            "gha_policy_log_dropped_lines",
            "Policy log lines dropped because the policy spent its log budget",
            self.log_dropped.clone(),
        );
        registry.register(
            "gha_policy_churn_damped",
            "Decisions the host damped against churn, by rule (drain deferred, scale-up over budget)",
            self.churn_damped.clone(),
        );
        registry.register("gha_policy_guest", "Counters defined by policies", self.guest_counters.clone());
        registry.register("gha_policy_guest_gauge", "Gauges defined by policies", self.guest_gauges.clone());
    }

    pub(crate) fn record_call(&self, hook: &str, result: &str, seconds: f64) {
        self.calls.get_or_create(&CallLabels { hook: hook.into(), result: result.into() }).inc();
        self.duration.get_or_create(&HookLabels { hook: hook.into() }).observe(seconds);
    }

    pub(crate) fn record_trap(&self, kind: &str) {
        self.traps.get_or_create(&KindLabels { kind: kind.into() }).inc();
    }

    pub(crate) fn record_fallback(&self, hook: &str) {
        self.fallbacks.get_or_create(&HookLabels { hook: hook.into() }).inc();
    }

    pub(crate) fn record_shadow_disagreement(&self) {
        self.shadow_disagreements.inc();
    }

    pub(crate) fn record_log_dropped(&self) {
        self.log_dropped.inc();
    }

    pub(crate) fn record_churn_damped(&self, kind: &str) {
        self.churn_damped.get_or_create(&KindLabels { kind: kind.into() }).inc();
    }

    /// Decisions damped by churn rule `kind` (`drain`, `scale-up`) so far.
    pub fn churn_damped(&self, kind: &str) -> u64 {
        self.churn_damped.get_or_create(&KindLabels { kind: kind.into() }).get()
    }

    /// Policy log lines dropped over budget so far.
    pub fn log_dropped(&self) -> u64 {
        self.log_dropped.get()
    }

    /// Calls of `hook` that ended with `result` so far.
    pub fn calls(&self, hook: &str, result: &str) -> u64 {
        self.calls.get_or_create(&CallLabels { hook: hook.into(), result: result.into() }).get()
    }

    /// Fallback decisions for `hook` so far.
    pub fn fallbacks(&self, hook: &str) -> u64 {
        self.fallbacks.get_or_create(&HookLabels { hook: hook.into() }).get()
    }

    /// Sandbox stops of `kind` (timeout, memory, trap) so far.
    pub fn traps(&self, kind: &str) -> u64 {
        self.traps.get_or_create(&KindLabels { kind: kind.into() }).get()
    }

    /// Builds the label set of a guest series (values escaped), or None when the scale set's series budget is
    /// spent.
    fn guest_labels(&self, scale_set: &str, name: &str, labels: Vec<(String, String)>) -> Option<GuestLabels> {
        let metric: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).take(64).collect();
        let mut set: GuestLabels = vec![("name".into(), metric), ("scale_set".into(), escape_label_value(scale_set))];
        set.extend(labels.into_iter().take(8).map(|(k, v)| {
            let key: String = k.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).take(64).collect();
            (format!("l_{key}"), escape_label_value(&v.chars().take(128).collect::<String>()))
        }));
        let mut series = self.guest_series.lock().unwrap_or_else(|e| e.into_inner());
        let known = series.entry(scale_set.to_string()).or_default();
        if known.contains(&set) || known.len() < MAX_GUEST_SERIES_PER_SCALE_SET {
            known.insert(set.clone());
            Some(set)
        } else {
            None
        }
    }

    pub(crate) fn guest_counter_add(&self, scale_set: &str, name: &str, value: u64, labels: Vec<(String, String)>) {
        if let Some(set) = self.guest_labels(scale_set, name, labels) {
            self.guest_counters.get_or_create(&set).inc_by(value);
        }
    }

    pub(crate) fn guest_gauge_set(&self, scale_set: &str, name: &str, value: f64, labels: Vec<(String, String)>) {
        if let Some(set) = self.guest_labels(scale_set, name, labels) {
            self.guest_gauges.get_or_create(&set).set(value);
        }
    }
}

/// A label value as the Prometheus text format needs it (`\\`, `\"` and `\n` escaped). prometheus-client writes
/// label values as given, so every value that comes from outside (a policy, a job's fields) goes through this.
pub fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_series_are_capped_per_scale_set() {
        let metrics = PolicyMetrics::default();
        for i in 0..150 {
            metrics.guest_counter_add("a", &format!("m{i}"), 1, vec![]);
        }
        metrics.guest_counter_add("b", "m", 1, vec![]);
        let series = metrics.guest_series.lock().unwrap();
        assert_eq!(series["a"].len(), MAX_GUEST_SERIES_PER_SCALE_SET);
        assert_eq!(series["b"].len(), 1);
    }

    #[test]
    fn guest_label_values_cannot_forge_series() {
        let metrics = PolicyMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let forged = "x\"}\ngha_policy_calls_total{hook=\"decide\",result=\"ok\"} 999999\n#";
        metrics.guest_gauge_set("a\"b", "g", 1.0, vec![("k".into(), forged.into())]);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(!text.lines().any(|l| l.starts_with("gha_policy_calls_total")), "a forged line: {text}");
        let series: Vec<&str> = text.lines().filter(|l| l.starts_with("gha_policy_guest_gauge{")).collect();
        assert_eq!(series.len(), 1, "{text}");
        assert!(series[0].contains(r#"scale_set="a\"b""#), "{text}");
        assert!(series[0].contains(r#"\ngha_policy_calls_total{hook=\"decide\""#), "escaped, on one line: {text}");
    }

    #[test]
    fn metrics_encode_with_their_names() {
        let metrics = PolicyMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        metrics.record_call("decide", "ok", 0.000_01);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("gha_policy_calls_total{hook=\"decide\",result=\"ok\"} 1"), "{text}");
        assert!(text.contains("gha_policy_call_duration_seconds_bucket"), "{text}");
    }
}
