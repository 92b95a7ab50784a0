//! Both charts through real helm 3 and helm 4 against a real kube-apiserver: `helm lint --strict` and
//! `helm install` with every documented value set (`tests/data/`, default values included), and the CRDs with
//! plain `kubectl apply`.

use gha_charts::{Render, chart_dir};
use gha_crds::AutoscalingRunnerSet;
use gha_real_kube::{Helm, RealKube, RealKubeOptions, tool};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;

const CONTROLLER: &str = "gha-autoscaler-controller";
const SCALE_SET: &str = "gha-autoscaler-scale-set";

/// The value sets of `tests/data/<chart>/`, the defaults among them.
fn value_sets(chart: &str) -> Vec<(String, String)> {
    let sets = gha_charts::value_sets(chart);
    assert!(sets.iter().any(|(name, _)| name == "defaults"), "the defaults are a value set");
    sets
}

#[test]
fn every_documented_value_set_passes_helm_lint_strict_with_helm_3_and_4() {
    let mut failures = Vec::new();
    for (chart, short) in [(CONTROLLER, "controller"), (SCALE_SET, "scale-set")] {
        for (name, yaml) in value_sets(short) {
            for helm in Helm::ALL {
                if let Err(e) = Render::new(chart, "arc", "arc-runners").values(&yaml).lint(helm) {
                    failures.push(format!("{chart} {name} {helm:?}: {e}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Installs the controller chart with its defaults, then every scale-set value set (each its own release and
/// namespace; those without `controllerServiceAccount` find the controller by lookup), then the other
/// controller value sets; every AutoscalingRunnerSet is accepted by the API server's CRD validation.
async fn every_value_set_installs(helm: Helm) {
    let cluster = RealKube::start(RealKubeOptions { controller_manager: false }).await.unwrap();
    let kubeconfig = cluster.kubeconfig_file().unwrap();
    // The namespace `watch-single-namespace.yaml` names exists, as its documentation asks.
    let namespace: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": "team-a"}})).unwrap();
    let namespaces: Api<Namespace> = Api::all(cluster.admin_client().await.unwrap());
    namespaces.create(&Default::default(), &namespace).await.unwrap();
    Render::new(CONTROLLER, "arc", "arc-systems")
        .install(helm, &kubeconfig)
        .unwrap_or_else(|e| panic!("controller defaults with {helm:?}: {e}"));
    let mut failures = Vec::new();
    let scale_sets = value_sets("scale-set");
    for (name, yaml) in &scale_sets {
        let release = Render::new(SCALE_SET, name, &format!("runners-{name}")).values(yaml);
        if let Err(e) = release.install(helm, &kubeconfig) {
            failures.push(format!("scale set {name}: {e}"));
        }
    }
    for (name, yaml) in value_sets("controller").into_iter().filter(|(name, _)| name != "defaults") {
        if let Err(e) = Render::new(CONTROLLER, &format!("c-{name}"), &format!("ctl-{name}"))
            .values(&yaml)
            .install(helm, &kubeconfig)
        {
            failures.push(format!("controller {name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "with {helm:?}:\n{}", failures.join("\n"));
    let sets: Api<AutoscalingRunnerSet> = Api::all(cluster.admin_client().await.unwrap());
    assert_eq!(sets.list(&Default::default()).await.unwrap().items.len(), scale_sets.len());
}

#[tokio::test]
async fn every_value_set_installs_with_helm_3_on_a_real_api_server() {
    every_value_set_installs(Helm::V3).await;
}

#[tokio::test]
async fn every_value_set_installs_with_helm_4_on_a_real_api_server() {
    every_value_set_installs(Helm::V4).await;
}

#[tokio::test]
async fn each_crd_applies_with_plain_kubectl_apply_on_a_real_api_server() {
    let cluster = RealKube::start(RealKubeOptions { controller_manager: false }).await.unwrap();
    let kubeconfig = cluster.kubeconfig_file().unwrap();
    let crds = chart_dir(CONTROLLER).join("crds");
    for entry in std::fs::read_dir(&crds).unwrap() {
        let file = entry.unwrap().path();
        // Twice: created, then unchanged through the last-applied annotation.
        for _ in 0..2 {
            let output = std::process::Command::new(tool("kubectl").unwrap())
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["apply", "-f"])
                .arg(&file)
                .output()
                .unwrap();
            assert!(output.status.success(), "{}: {}", file.display(), String::from_utf8_lossy(&output.stderr));
        }
    }
}
