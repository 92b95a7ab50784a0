//! The Grafana dashboard the controller chart ships (`dashboards/gha-autoscaler.json`): valid JSON, and every
//! metric it queries is one the controller, the listener or the policy engine serves.

use std::collections::BTreeSet;
use std::sync::Arc;

use gha_actions_client::model::{JobFields, Statistics};
use gha_controller::metrics::ControllerMetrics;
use gha_listener::{ListenerMetrics, ScaleSetLabels};
use gha_policy_engine::types::{ScaleInput, ScaleSetRef};
use gha_policy_engine::{EngineOptions, PolicyEngine, PolicyMetrics, PolicySpec, ScaleSetPolicy};
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use serde_json::Value;

const DASHBOARD: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../charts/gha-autoscaler-controller/dashboards/gha-autoscaler.json"
));

/// The sample names the controller's, the listener's and the policy engine's `/metrics` carry once each of their
/// families has a series (an empty family is not served at all), from their `# TYPE` lines.
async fn served_samples() -> BTreeSet<String> {
    let mut registry = Registry::default();
    let controller = ControllerMetrics::default();
    let labels = gha_controller::metrics::ScaleSetLabels::from_labels(&Default::default());
    controller.runners(&labels, 1, 1, 1);
    controller.listener(&labels, true);
    controller.register(&mut registry);

    let listener = ListenerMetrics::new(ScaleSetLabels::default(), None);
    listener.statistics(&Statistics::default());
    listener.bounds(0, 2);
    listener.desired(1);
    let now = chrono::Utc::now();
    let job = JobFields {
        scale_set_assign_time: Some(now),
        runner_assign_time: Some(now),
        finish_time: Some(now),
        ..JobFields::default()
    };
    listener.job_started(&job);
    listener.job_completed(&job);
    listener.undecodable(1);
    listener.register(&mut registry);

    // A real decision through the sandbox records the calls and their duration; the other policy families get
    // their (zero) series when read.
    let policy_metrics = Arc::new(PolicyMetrics::default());
    let engine = PolicyEngine::new(EngineOptions::default(), policy_metrics.clone()).expect("engine");
    let spec = PolicySpec::built_in("arc-default");
    let policy = ScaleSetPolicy::load(&engine, ScaleSetRef::default(), spec).await.expect("built-in policy");
    policy.decide(&ScaleInput::default()).expect("a decision");
    policy_metrics.fallbacks("decide");
    policy_metrics.traps("timeout");
    policy_metrics.churn_damped("drain");
    policy_metrics.register(&mut registry);

    let mut text = String::new();
    encode(&mut text, &registry).expect("metrics encode");
    let mut samples = BTreeSet::new();
    for line in text.lines() {
        let Some((name, kind)) = line.strip_prefix("# TYPE ").and_then(|rest| rest.split_once(' ')) else { continue };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        samples.extend(suffixes.iter().map(|suffix| format!("{name}{suffix}")));
    }
    samples
}

/// Every `gha_…` metric name in `expr`.
fn queried_metrics(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("gha_") {
        let tail = &rest[at..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

fn expressions(dashboard: &Value) -> Vec<String> {
    let panels = dashboard["panels"].as_array().expect("panels");
    let targets = panels.iter().flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default());
    let variables = dashboard["templating"]["list"].as_array().cloned().unwrap_or_default();
    targets
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .chain(variables.iter().filter_map(|v| v["definition"].as_str().map(str::to_string)))
        .collect()
}

#[tokio::test]
async fn every_metric_the_dashboard_queries_is_served() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "gha-autoscaler");
    let served = served_samples().await;
    assert!(served.contains("gha_desired_runners") && served.contains("gha_policy_calls_total"), "{served:?}");
    let expressions = expressions(&dashboard);
    assert!(expressions.len() >= 10, "{expressions:?}");
    let mut queried = BTreeSet::new();
    for expr in &expressions {
        let names = queried_metrics(expr);
        assert!(!names.is_empty(), "a query of no gha metric: {expr}");
        queried.extend(names);
    }
    let missing: Vec<_> = queried.iter().filter(|name| !served.contains(*name)).collect();
    assert!(missing.is_empty(), "queried but not served: {missing:?}\nserved: {served:?}");
    for wanted in ["gha_desired_runners", "gha_job_startup_duration_seconds_bucket", "gha_policy_fallbacks_total"] {
        assert!(queried.contains(wanted), "the dashboard shows {wanted}");
    }
}

#[test]
fn panels_have_unique_ids_and_a_prometheus_datasource() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let ids: BTreeSet<u64> = panels.iter().map(|p| p["id"].as_u64().expect("panel id")).collect();
    assert_eq!(ids.len(), panels.len());
    for panel in panels {
        assert_eq!(panel["datasource"]["type"], "prometheus", "{}", panel["title"]);
        assert!(panel["gridPos"]["w"].as_u64().is_some_and(|w| w <= 24), "{}", panel["title"]);
    }
}
