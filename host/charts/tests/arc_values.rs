//! ARC users' values files (`tests/data/arc/`, shaped as ARC 0.14.2's chart and docs have users write them)
//! install unchanged with our charts through real helm 3 and 4 on a real kube-apiserver: the controller keeps
//! ARC's names, so scale sets find it (by `lookup`, as ARC's chart does) and bind its ServiceAccount; object names
//! are ARC's.

use gha_charts::{Render, RenderError};
use gha_crds::AutoscalingRunnerSet;
use gha_real_kube::{Helm, RealKube, RealKubeOptions};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::{Api, Client};

const CONTROLLER: &str = "gha-autoscaler-controller";
const SCALE_SET: &str = "gha-autoscaler-scale-set";

/// The ARC value sets of `tests/data/arc/<chart>/`.
fn arc_value_sets(chart: &str) -> Vec<(String, String)> {
    gha_charts::value_sets(&format!("arc/{chart}"))
}

async fn create_namespace(client: &Client, name: &str) {
    let namespace: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone()).create(&Default::default(), &namespace).await.unwrap();
}

/// The manager RoleBinding's subject of the scale set installed as `release` in `namespace`.
async fn manager_subject(client: &Client, namespace: &str, object_name: &str) -> (String, String) {
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), namespace);
    let binding = bindings.get(&format!("{object_name}-gha-rs-manager")).await.unwrap();
    let subject = binding.subjects.unwrap().remove(0);
    (subject.namespace.unwrap_or_default(), subject.name)
}

async fn arc_values_install_unchanged(helm: Helm) {
    let cluster = RealKube::start(RealKubeOptions { controller_manager: false }).await.unwrap();
    let kubeconfig = cluster.kubeconfig_file().unwrap();
    let client = cluster.admin_client().await.unwrap();
    let (_, controller_values) = arc_value_sets("controller").remove(0);
    Render::new(CONTROLLER, "arc", "arc-systems")
        .values(&controller_values)
        .install(helm, &kubeconfig)
        .unwrap_or_else(|e| panic!("ARC's controller values with {helm:?}: {e}"));
    let controller_account: Api<ServiceAccount> = Api::namespaced(client.clone(), "arc-systems");
    controller_account.get("arc-gha-rs-controller").await.expect("the controller's ServiceAccount keeps ARC's name");

    let mut failures = Vec::new();
    for (name, yaml) in arc_value_sets("scale-set") {
        let namespace = format!("arc-runners-{name}");
        if let Err(e) = Render::new(SCALE_SET, &name, &namespace).values(&yaml).install(helm, &kubeconfig) {
            failures.push(format!("{name}: {e}"));
            continue;
        }
        let values: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
        let github_name = values["runnerScaleSetName"].as_str().unwrap_or(&name).to_string();
        let object_name = github_name.replace('_', "-");
        let sets: Api<AutoscalingRunnerSet> = Api::namespaced(client.clone(), &namespace);
        match sets.get(&object_name).await {
            Ok(ars) => {
                if ars.spec.runner_scale_set_name.as_deref() != Some(github_name.as_str()) {
                    failures.push(format!("{name}: GitHub name {:?}", ars.spec.runner_scale_set_name));
                }
            }
            Err(e) => failures.push(format!("{name}: AutoscalingRunnerSet {object_name}: {e}")),
        }
        let subject = manager_subject(&client, &namespace, &object_name).await;
        if subject != ("arc-systems".into(), "arc-gha-rs-controller".into()) {
            failures.push(format!("{name}: manager role bound to {subject:?}"));
        }
    }
    assert!(failures.is_empty(), "with {helm:?}:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn arcs_values_files_install_unchanged_with_helm_3_on_a_real_api_server() {
    arc_values_install_unchanged(Helm::V3).await;
}

#[tokio::test]
async fn arcs_values_files_install_unchanged_with_helm_4_on_a_real_api_server() {
    arc_values_install_unchanged(Helm::V4).await;
}

/// ARC's `flags.watchSingleNamespace`: one controller per team namespace; each scale set binds the controller
/// watching its namespace, and a namespace no controller watches is refused at install with the reason.
#[tokio::test]
async fn scale_sets_find_the_controller_watching_their_namespace_on_a_real_api_server() {
    let cluster = RealKube::start(RealKubeOptions { controller_manager: false }).await.unwrap();
    let kubeconfig = cluster.kubeconfig_file().unwrap();
    let client = cluster.admin_client().await.unwrap();
    for team in ["team-a", "team-b"] {
        create_namespace(&client, team).await;
        Render::new(CONTROLLER, &format!("arc-{team}"), "arc-systems")
            .values(&format!("flags: {{watchSingleNamespace: {team}}}"))
            .install(Helm::V3, &kubeconfig)
            .unwrap();
    }
    let values = "githubConfigUrl: https://github.com/acme\ngithubConfigSecret: pre-defined-secret\n";
    for team in ["team-a", "team-b"] {
        Render::new(SCALE_SET, "runners", team).values(values).install(Helm::V3, &kubeconfig).unwrap();
        let subject = manager_subject(&client, team, "runners").await;
        assert_eq!(subject, ("arc-systems".into(), format!("arc-{team}-gha-rs-controller")));
    }
    create_namespace(&client, "team-c").await;
    let refused = Render::new(SCALE_SET, "runners", "team-c").values(values).install(Helm::V3, &kubeconfig);
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("no gha-rs-controller watches namespace team-c")),
        "{refused:?}"
    );
}

#[test]
fn arcs_controller_image_is_refused_at_render_with_the_reason() {
    let refused = Render::new(CONTROLLER, "arc", "arc-systems")
        .values("image: {repository: registry.acme.internal/actions/gha-runner-scale-set-controller, tag: 0.14.2}")
        .run();
    assert!(matches!(&refused, Err(RenderError::Helm(e)) if e.contains("ARC's controller image")), "{refused:?}");
}

#[test]
fn key_vault_values_are_refused_at_render_with_the_reason() {
    let values = r#"
githubConfigUrl: https://github.com/acme
githubConfigSecret: github-app-in-vault
keyVault:
  type: azure_key_vault
  azureKeyVault:
    url: https://acme.vault.azure.net
    tenantId: t
    clientId: c
    certificatePath: /etc/cert.pem
"#;
    let refused = Render::new(SCALE_SET, "runners", "arc-runners")
        .set(
            "controllerServiceAccount",
            serde_json::json!({"namespace": "arc-systems", "name": "arc-gha-rs-controller"}),
        )
        .values(values)
        .run();
    assert!(matches!(&refused, Err(RenderError::Helm(e)) if e.contains("Azure Key Vault")), "{refused:?}");
}
