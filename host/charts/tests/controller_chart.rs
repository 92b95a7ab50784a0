//! The controller chart rendered with the documented value sets (as ARC's chart tests do with terratest).

use gha_charts::{Render, chart_dir};
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::json;

const CHART: &str = "gha-autoscaler-controller";

fn render() -> Render {
    Render::new(CHART, "arc", "arc-systems")
}

fn args(deployment: &Deployment) -> Vec<String> {
    let spec = deployment.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    spec.containers[0].args.clone().unwrap_or_default()
}

#[test]
fn defaults_render_a_deployment_with_arc_flags_and_no_metrics() {
    let manifests = render().run().unwrap();
    println!("{:?}", manifests.names());
    let deployment: Deployment = manifests.one("Deployment");
    assert_eq!(deployment.metadata.name.as_deref(), Some("arc-gha-autoscaler-controller"));
    let args = args(&deployment);
    assert!(args.contains(&"controller".to_string()), "{args:?}");
    assert!(args.contains(&"--metrics-addr=0".to_string()), "{args:?}");
    assert!(!args.iter().any(|a| a.starts_with("--enable-leader-election")), "{args:?}");
}
