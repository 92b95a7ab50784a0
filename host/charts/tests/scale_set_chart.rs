//! The scale-set chart rendered with the documented value sets.

use gha_charts::{Render, RenderError};
use gha_crds::AutoscalingRunnerSet;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use serde_json::json;

const CHART: &str = "gha-autoscaler-scale-set";

fn render() -> Render {
    Render::new(CHART, "arc-runner-set", "arc-runners")
        .values("githubConfigUrl: https://github.com/acme\ngithubConfigSecret:\n  github_token: ghp_test\n")
        .set("controllerServiceAccount", json!({"namespace": "arc-systems", "name": "arc-gha-autoscaler-controller"}))
}

fn pod_spec(ars: &AutoscalingRunnerSet) -> PodSpec {
    ars.spec.template.spec.clone().unwrap()
}

fn runner(spec: &PodSpec) -> Container {
    spec.containers.iter().find(|c| c.name == "runner").cloned().unwrap()
}

#[test]
fn defaults_render_a_scale_set_with_a_token_secret_and_the_default_policy() {
    let manifests = render().run().unwrap();
    println!("{:#?}", manifests.names());
    let ars: AutoscalingRunnerSet = manifests.one("AutoscalingRunnerSet");
    assert_eq!(ars.spec.github_config_url, "https://github.com/acme");
    assert_eq!(ars.spec.github_config_secret, "arc-runner-set-gha-rs-github-secret");
    let spec = pod_spec(&ars);
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    println!("{}", serde_json::to_string_pretty(&ars).unwrap());
    let _ = runner(&spec);
}
