//! The controller chart rendered with the documented value sets (as ARC's chart tests do with terratest).

use clap::Parser;
use gha_charts::{Manifests, Render, RenderError, chart_dir};
use gha_controller::ControllerOptions;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use serde_json::json;

const CHART: &str = "gha-autoscaler-controller";

fn render() -> Render {
    Render::new(CHART, "arc", "arc-systems")
}

/// The manager container's arguments.
fn args(manifests: &Manifests) -> Vec<String> {
    let deployment: Deployment = manifests.one("Deployment");
    let spec = deployment.spec.unwrap().template.spec.unwrap();
    spec.containers[0].args.clone().unwrap_or_default()
}

/// `gha-autoscaler controller` as the binary parses it.
#[derive(Parser)]
struct ControllerCommand {
    #[command(flatten)]
    options: ControllerOptions,
}

/// The arguments after `controller`, parsed by the controller's own flag definitions.
fn parsed(args: &[String]) -> ControllerOptions {
    let position = args.iter().position(|a| a == "controller").expect("the controller subcommand");
    let argv = std::iter::once("controller".to_string()).chain(args[position + 1..].iter().cloned());
    ControllerCommand::try_parse_from(argv)
        .unwrap_or_else(|e| panic!("the binary rejects the chart's flags: {e}"))
        .options
}

fn grants(rules: &[PolicyRule], resource: &str, verb: &str) -> bool {
    rules
        .iter()
        .any(|r| r.resources.iter().flatten().any(|x| x == resource) && r.verbs.iter().any(|v| v == verb || v == "*"))
}

#[test]
fn defaults_render_the_manager_with_flags_the_binary_accepts_and_metrics_off() {
    let manifests = render().run().unwrap();
    assert_eq!(
        manifests.names(),
        [
            "ClusterRole/arc-gha-rs-controller",
            "ClusterRoleBinding/arc-gha-rs-controller",
            "Deployment/arc-gha-rs-controller",
            "Role/arc-gha-rs-controller-listener",
            "RoleBinding/arc-gha-rs-controller-listener",
            "ServiceAccount/arc-gha-rs-controller",
        ]
    );
    let args = args(&manifests);
    assert_eq!(args[..2], ["--log-level=debug", "--log-format=text"]);
    let options = parsed(&args);
    assert_eq!(options.metrics_addr, "0");
    assert_eq!(options.listener_metrics_addr, "0");
    assert!(!options.enable_leader_election);
    assert_eq!(options.runner_max_concurrent_reconciles, 2);
    assert_eq!((options.kube_qps, options.kube_burst), (20.0, 30));

    let deployment: Deployment = manifests.one("Deployment");
    let labels = deployment.metadata.labels.unwrap();
    assert_eq!(labels["app.kubernetes.io/part-of"], "gha-rs-controller");
    assert_eq!(labels["actions.github.com/controller-service-account-name"], "arc-gha-rs-controller");
    assert_eq!(labels["actions.github.com/controller-service-account-namespace"], "arc-systems");
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some("ghcr.io/gha-autoscaler/gha-autoscaler:0.1.0"));
    let env: Vec<&str> = container.env.iter().flatten().map(|e| e.name.as_str()).collect();
    assert_eq!(env, ["CONTROLLER_MANAGER_CONTAINER_IMAGE", "CONTROLLER_MANAGER_POD_NAMESPACE"]);
    assert_eq!(pod.termination_grace_period_seconds, Some(10));
    assert_eq!(container.security_context.as_ref().unwrap().run_as_non_root, Some(true));
    assert!(container.liveness_probe.is_some() && container.readiness_probe.is_some());
}

#[test]
fn rbac_is_least_privilege_no_cluster_wide_secrets() {
    let manifests = render().run().unwrap();
    let cluster: ClusterRole = manifests.one("ClusterRole");
    let rules = cluster.rules.unwrap();
    assert!(!rules.iter().any(|r| r.resources.iter().flatten().any(|x| x == "secrets")), "{rules:?}");
    assert!(grants(&rules, "autoscalingrunnersets", "watch") && grants(&rules, "pods", "watch"));
    assert!(!grants(&rules, "pods", "create"), "pods are created through each scale set's Role");
    let listener: Role = manifests.one("Role");
    assert_eq!(listener.metadata.namespace.as_deref(), Some("arc-systems"));
    let rules = listener.rules.unwrap();
    assert!(grants(&rules, "secrets", "create") && grants(&rules, "pods", "delete"));
    // Its listeners' secrets are watched (metadata only) in this namespace alone, where `get` already reaches
    // every secret: enumerating them adds no access.
    assert!(grants(&rules, "secrets", "watch"), "listener secrets are watched");
}

#[test]
fn replicas_enable_leader_election_with_its_role() {
    let manifests = render().set("replicaCount", json!(2)).run().unwrap();
    let options = parsed(&args(&manifests));
    assert!(options.enable_leader_election);
    assert_eq!(options.leader_election_id, "arc-gha-rs-controller");
    let role = manifests.find("Role", "arc-gha-rs-controller-leader-election").expect("leader election role");
    let role: Role = serde_json::from_value(role.clone()).unwrap();
    assert!(grants(role.rules.as_deref().unwrap(), "leases", "update"));
}

#[test]
fn single_namespace_mode_uses_namespaced_roles_only() {
    let manifests = render().set("flags.watchSingleNamespace", json!("team-a")).run().unwrap();
    assert!(manifests.of_kind("ClusterRole").is_empty() && manifests.of_kind("ClusterRoleBinding").is_empty());
    let watch = manifests.find("Role", "arc-gha-rs-controller-single-namespace-watch").unwrap();
    assert_eq!(watch["metadata"]["namespace"], "team-a");
    let own = manifests.find("Role", "arc-gha-rs-controller-single-namespace").unwrap();
    assert_eq!(own["metadata"]["namespace"], "arc-systems");
    assert_eq!(parsed(&args(&manifests)).watch_single_namespace.as_deref(), Some("team-a"));
    let deployment: Deployment = manifests.one("Deployment");
    assert_eq!(deployment.metadata.labels.unwrap()["actions.github.com/controller-watch-single-namespace"], "team-a");
}

#[test]
fn addresses_with_a_host_part_give_their_trailing_port_as_in_arc() {
    let manifests = render()
        .set(
            "metrics",
            json!({"controllerManagerAddr": "0.0.0.0:8080", "listenerAddr": ":8081", "listenerEndpoint": "/metrics"}),
        )
        .set("flags.healthProbeBindAddress", json!("0.0.0.0:8082"))
        .run()
        .unwrap();
    let deployment: Deployment = manifests.one("Deployment");
    let container = deployment.spec.unwrap().template.spec.unwrap().containers.remove(0);
    assert_eq!(container.ports.unwrap()[0].container_port, 8080);
    let probe_port = |probe: Option<k8s_openapi::api::core::v1::Probe>| probe.unwrap().http_get.unwrap().port;
    let port = k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8082);
    assert_eq!(probe_port(container.liveness_probe.clone()), port);
    assert_eq!(probe_port(container.readiness_probe), port);
}

#[test]
fn every_documented_flag_reaches_the_binary() {
    let manifests = render()
        .values(
            r#"
metrics:
  controllerManagerAddr: ":8080"
  listenerAddr: ":8081"
  listenerEndpoint: "/metrics"
imagePullSecrets: [{name: regcred}]
image: {repository: registry.example/gha-autoscaler, tag: v9}
flags:
  logLevel: info
  logFormat: json
  runnerMaxConcurrentReconciles: 5
  excludeLabelPropagationPrefixes: [argocd.argoproj.io/, example.com/]
  k8sClientRateLimiterQPS: 50
  k8sClientRateLimiterBurst: 80
  syncPeriod: 1m30s
  runnerStartTimeout: 500ms
  updateStrategy: eventual
  rateLimiter: {name: typed_rate_limiter}
pprof: {addr: ":6060"}
"#,
        )
        .run()
        .unwrap();
    let args = args(&manifests);
    assert_eq!(args[..2], ["--log-level=info", "--log-format=json"]);
    let options = parsed(&args);
    assert_eq!(options.metrics_addr, ":8080");
    assert_eq!(options.listener_metrics_addr, ":8081");
    assert_eq!(options.listener_metrics_endpoint, "/metrics");
    assert_eq!(options.runner_max_concurrent_reconciles, 5);
    assert_eq!(options.exclude_label_propagation_prefixes, ["argocd.argoproj.io/", "example.com/"]);
    assert_eq!((options.kube_qps, options.kube_burst), (50.0, 80));
    assert_eq!(options.sync_period, std::time::Duration::from_secs(90));
    assert_eq!(options.runner_start_timeout, std::time::Duration::from_millis(500));
    assert_eq!(options.update_strategy, gha_controller::options::UpdateStrategy::Eventual);
    assert_eq!(options.workqueue_rate_limiter, gha_controller::options::RetryLimiter::TypedRateLimiter);
    assert_eq!(options.pprof_addr.as_deref(), Some(":6060"));
    assert_eq!(options.listener_image_pull_secrets, ["regcred"]);
    let deployment: Deployment = manifests.one("Deployment");
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.containers[0].image.as_deref(), Some("registry.example/gha-autoscaler:v9"));
    let ports: Vec<i32> = pod.containers[0].ports.iter().flatten().map(|p| p.container_port).collect();
    assert_eq!(ports, [8080, 6060]);
    assert_eq!(pod.image_pull_secrets.unwrap()[0].name, "regcred");
}

#[test]
fn scheduling_and_pod_settings_pass_through() {
    let manifests = render()
        .values(
            r#"
fullnameOverride: gha-ctl
podAnnotations: {example.com/a: "1"}
podLabels: {team: ci}
nodeSelector: {kubernetes.io/os: linux}
tolerations: [{key: ci, operator: Exists}]
priorityClassName: system-cluster-critical
resources: {limits: {memory: 128Mi}}
env: [{name: EXTRA, value: "1"}]
volumes: [{name: extra, emptyDir: {}}]
volumeMounts: [{name: extra, mountPath: /extra}]
"#,
        )
        .run()
        .unwrap();
    let deployment: Deployment = manifests.one("Deployment");
    assert_eq!(deployment.metadata.name.as_deref(), Some("gha-ctl"));
    let template = deployment.spec.unwrap().template;
    assert_eq!(template.metadata.as_ref().unwrap().labels.as_ref().unwrap()["team"], "ci");
    let pod = template.spec.unwrap();
    assert_eq!(pod.node_selector.unwrap()["kubernetes.io/os"], "linux");
    assert_eq!(pod.priority_class_name.as_deref(), Some("system-cluster-critical"));
    assert_eq!(pod.volumes.unwrap().len(), 2);
    let container = &pod.containers[0];
    assert_eq!(container.env.as_ref().unwrap().len(), 3);
    assert_eq!(container.volume_mounts.as_ref().unwrap().len(), 2);
}

#[test]
fn an_external_service_account_must_be_named() {
    let err = render().set("serviceAccount", json!({"create": false})).run().unwrap_err();
    assert!(matches!(&err, RenderError::Helm(message) if message.contains("serviceAccount.name")), "{err}");
    let manifests = render().set("serviceAccount", json!({"create": false, "name": "mine"})).run().unwrap();
    assert!(manifests.of_kind("ServiceAccount").is_empty());
    assert_eq!(manifests.one::<ClusterRole>("ClusterRole").metadata.name.as_deref(), Some("arc-gha-rs-controller"));
    let binding = manifests.of_kind("ClusterRoleBinding")[0];
    assert_eq!(binding["subjects"][0]["name"], "mine");
}

#[test]
fn the_chart_crds_are_the_ones_generated_from_the_rust_types() {
    let dir = chart_dir(CHART).join("crds");
    let mut on_disk: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    on_disk.sort();
    let mut generated = gha_crds::files();
    generated.sort();
    let names: Vec<String> = generated.iter().map(|(name, _)| name.clone()).collect();
    assert_eq!(on_disk, names, "regenerate with: gha-autoscaler crds --output-dir charts/{CHART}/crds");
    for (name, text) in generated {
        let file = std::fs::read_to_string(dir.join(&name)).unwrap();
        assert!(file == text, "{name} differs; regenerate with: gha-autoscaler crds --output-dir charts/{CHART}/crds");
    }
}

#[test]
fn grafana_dashboard_is_a_config_map_for_the_sidecar_when_enabled() {
    assert!(render().run().unwrap().of_kind("ConfigMap").is_empty(), "off by default");
    let manifests = render()
        .set("grafanaDashboard.enabled", json!(true))
        .set("grafanaDashboard.namespace", json!("monitoring"))
        .run()
        .unwrap();
    let map: k8s_openapi::api::core::v1::ConfigMap = manifests.one("ConfigMap");
    assert_eq!(map.metadata.namespace.as_deref(), Some("monitoring"));
    assert_eq!(map.metadata.labels.unwrap()["grafana_dashboard"], "1");
    let shipped = std::fs::read_to_string(chart_dir(CHART).join("dashboards/gha-autoscaler.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&map.data.unwrap()["gha-autoscaler.json"]).unwrap();
    assert_eq!(dashboard, serde_json::from_str::<serde_json::Value>(&shipped).unwrap());
}
