//! The scale-set chart rendered with the documented value sets, and its objects run by the real controller.

use std::time::Duration;

use gha_charts::{Manifests, Render, RenderError};
use gha_crds::AutoscalingRunnerSet;
use k8s_openapi::api::core::v1::{Container, PodSpec, Secret};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde_json::{Value, json};

const CHART: &str = "gha-autoscaler-scale-set";

fn render() -> Render {
    Render::new(CHART, "arc-runner-set", "arc-runners")
        .values("githubConfigUrl: https://github.com/acme/\ngithubConfigSecret:\n  github_token: ghp_test\n")
        .set("controllerServiceAccount", json!({"namespace": "arc-systems", "name": "arc-gha-rs-controller"}))
}

fn ars(manifests: &Manifests) -> AutoscalingRunnerSet {
    manifests.one("AutoscalingRunnerSet")
}

fn pod_spec(manifests: &Manifests) -> PodSpec {
    ars(manifests).spec.template.spec.unwrap()
}

fn runner(spec: &PodSpec) -> Container {
    spec.containers.iter().find(|c| c.name == "runner").cloned().expect("a runner container")
}

fn env(container: &Container, name: &str) -> Vec<Option<String>> {
    container.env.iter().flatten().filter(|e| e.name == name).map(|e| e.value.clone()).collect()
}

fn volume_names(spec: &PodSpec) -> Vec<String> {
    spec.volumes.iter().flatten().map(|v| v.name.clone()).collect()
}

fn schema_error(render: Render) -> String {
    match render.run() {
        Err(RenderError::Schema(message)) => message,
        other => panic!("expected a schema error, got {other:?}"),
    }
}

fn template_error(render: Render) -> String {
    match render.run() {
        Err(RenderError::Helm(message)) => message,
        other => panic!("expected a template error, got {other:?}"),
    }
}

#[test]
fn defaults_render_a_scale_set_with_a_token_secret_and_the_default_policy() {
    let manifests = render().run().unwrap();
    assert_eq!(
        manifests.names(),
        [
            "AutoscalingRunnerSet/arc-runner-set",
            "Role/arc-runner-set-gha-rs-manager",
            "RoleBinding/arc-runner-set-gha-rs-manager",
            "Secret/arc-runner-set-gha-rs-github-secret",
            "ServiceAccount/arc-runner-set-gha-rs-no-permission",
        ]
    );
    let set = ars(&manifests);
    assert_eq!(set.spec.github_config_url, "https://github.com/acme", "trailing slash trimmed");
    assert_eq!(set.spec.github_config_secret, "arc-runner-set-gha-rs-github-secret");
    assert_eq!(set.spec.runner_scale_set_name.as_deref(), Some("arc-runner-set"));
    assert_eq!((set.spec.min_runners, set.spec.max_runners), (None, None));
    let labels = set.metadata.labels.clone().unwrap();
    assert_eq!(labels["app.kubernetes.io/version"], "0.1.0", "the controller checks this against its version");
    assert_eq!(labels["actions.github.com/scale-set-namespace"], "arc-runners");
    let annotations = set.metadata.annotations.clone().unwrap();
    assert_eq!(annotations["actions.github.com/cleanup-github-secret-name"], "arc-runner-set-gha-rs-github-secret");
    assert_eq!(annotations["actions.github.com/cleanup-manager-role-name"], "arc-runner-set-gha-rs-manager");
    assert!(annotations.contains_key("actions.github.com/values-hash"));
    let policy = set.spec.policy.clone().unwrap();
    assert_eq!(policy.source.built_in.as_deref(), Some("arc-default"));
    assert_eq!(policy.failure_policy.as_deref(), Some("Fallback"));

    let spec = pod_spec(&manifests);
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(spec.service_account_name.as_deref(), Some("arc-runner-set-gha-rs-no-permission"));
    assert_eq!(runner(&spec).image.as_deref(), Some("ghcr.io/actions/actions-runner:latest"));

    let secret: Secret = manifests.one("Secret");
    assert_eq!(secret.data.unwrap()["github_token"].0, b"ghp_test");
    assert_eq!(secret.metadata.finalizers.unwrap(), ["actions.github.com/cleanup-protection"]);
    let binding: RoleBinding = manifests.one("RoleBinding");
    let subject = &binding.subjects.unwrap()[0];
    assert_eq!((subject.namespace.as_deref(), subject.name.as_str()), (Some("arc-systems"), "arc-gha-rs-controller"));
    let role: Role = manifests.one("Role");
    let rules = role.rules.unwrap();
    let maps = rules.iter().find(|r| r.resources.iter().flatten().any(|x| x == "configmaps")).expect("configmaps");
    // The listener's policy-state ConfigMap: the controller creates and deletes it and grants get/patch on it.
    assert_eq!(maps.verbs, ["create", "delete", "get", "patch"]);
}

#[test]
fn github_app_and_existing_secrets() {
    let app = Render::new(CHART, "arc-runner-set", "arc-runners")
        .set("githubConfigUrl", json!("https://github.com/acme"))
        .set("controllerServiceAccount", json!({"namespace": "arc-systems", "name": "c"}))
        .set(
            "githubConfigSecret",
            json!({"github_app_id": "123", "github_app_installation_id": 456, "github_app_private_key": "PEM"}),
        )
        .run()
        .unwrap();
    let data = app.one::<Secret>("Secret").data.unwrap();
    assert_eq!(
        (data["github_app_id"].0.as_slice(), data["github_app_installation_id"].0.as_slice()),
        (&b"123"[..], &b"456"[..])
    );
    assert_eq!(data["github_app_private_key"].0, b"PEM");

    let existing = Render::new(CHART, "arc-runner-set", "arc-runners")
        .values("githubConfigUrl: https://github.com/acme\ngithubConfigSecret: my-secret\ncontrollerServiceAccount: {namespace: arc-systems, name: c}\n")
        .run()
        .unwrap();
    assert!(existing.of_kind("Secret").is_empty());
    let set = ars(&existing);
    assert_eq!(set.spec.github_config_secret, "my-secret");
    assert!(!set.metadata.annotations.unwrap().contains_key("actions.github.com/cleanup-github-secret-name"));

    let incomplete = render().set("githubConfigSecret", json!({"github_token": null, "github_app_id": "123"}));
    assert!(template_error(incomplete).contains("github_app_installation_id"));
    let empty = render().set("githubConfigSecret", json!({"github_token": ""}));
    assert!(template_error(empty).contains("githubConfigSecret needs"));
}

#[test]
fn the_schema_and_the_templates_reject_bad_values_with_clear_messages() {
    let no_url =
        Render::new(CHART, "x", "arc-runners").set("controllerServiceAccount", json!({"namespace": "a", "name": "b"}));
    assert!(schema_error(no_url).contains("githubConfigUrl"));
    assert!(schema_error(render().set("githubConfigUrl", json!("github.com/acme"))).contains("githubConfigUrl"));
    let long = "a".repeat(46);
    assert!(schema_error(render().set("runnerScaleSetName", json!(long))).contains("runnerScaleSetName"));
    let long_release = Render::new(CHART, &"r".repeat(46), "arc-runners")
        .values("githubConfigUrl: https://github.com/acme\ngithubConfigSecret: s\ncontrollerServiceAccount: {namespace: a, name: b}\n");
    assert!(template_error(long_release).contains("longer than 45"));
    assert!(schema_error(render().set("minRunners", json!(-1))).contains("minRunners"));
    let inverted = render().set("minRunners", json!(5)).set("maxRunners", json!(2));
    assert!(template_error(inverted).contains("minRunners (5) must not exceed maxRunners (2)"));
    assert!(schema_error(render().set("scaleSetLabels", json!([""]))).contains("scaleSetLabels"));
    assert!(schema_error(render().set("containerMode", json!({"type": "docker"}))).contains("containerMode"));
    assert!(schema_error(render().set("policy.source", json!({"builtIn": "nope"}))).contains("policy"));
    let two_sources =
        render().set("policy.source", json!({"builtIn": "arc-default", "url": {"url": "https://x", "sha256": "0"}}));
    assert!(schema_error(two_sources).contains("policy"));
    assert!(schema_error(render().set("policy.limits", json!({"memoryMiB": 1024}))).contains("memoryMiB"));
    let bounded = render().set("minRunners", json!(1)).set("maxRunners", json!(5)).run().unwrap();
    let set = ars(&bounded);
    assert_eq!((set.spec.min_runners, set.spec.max_runners), (Some(1), Some(5)));
}

#[test]
fn dind_mode_is_a_native_sidecar_on_new_clusters_and_a_container_on_old_ones() {
    let dind = render().set("containerMode", json!({"type": "dind"}));
    let spec = pod_spec(&dind.clone().kube_version("1.30.0").run().unwrap());
    let init: Vec<&str> = spec.init_containers.iter().flatten().map(|c| c.name.as_str()).collect();
    assert_eq!(init, ["init-dind-externals", "dind"]);
    let sidecar = &spec.init_containers.as_ref().unwrap()[1];
    assert_eq!(sidecar.restart_policy.as_deref(), Some("Always"));
    assert!(sidecar.startup_probe.is_some());
    assert_eq!(sidecar.security_context.as_ref().unwrap().privileged, Some(true));
    assert_eq!(spec.containers.len(), 1);
    let container = runner(&spec);
    assert_eq!(env(&container, "DOCKER_HOST"), [Some("unix:///var/run/docker.sock".to_string())]);
    assert_eq!(env(&container, "RUNNER_WAIT_FOR_DOCKER_IN_SECONDS"), [Some("120".to_string())]);
    assert_eq!(volume_names(&spec), ["work", "dind-sock", "dind-externals"]);

    let old = pod_spec(&dind.clone().kube_version("1.28.4").run().unwrap());
    let names: Vec<&str> = old.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["runner", "dind"]);
    assert_eq!(old.init_containers.unwrap().len(), 1);

    // What the user sets wins: their DOCKER_HOST and their `work` volume are kept, not duplicated.
    let custom = dind
        .values(
            r#"
template:
  spec:
    containers:
      - name: runner
        image: example/runner:1
        env: [{name: DOCKER_HOST, value: tcp://localhost:2375}]
    volumes:
      - name: work
        ephemeral: {volumeClaimTemplate: {spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}}
"#,
        )
        .run()
        .unwrap();
    let spec = pod_spec(&custom);
    assert_eq!(env(&runner(&spec), "DOCKER_HOST"), [Some("tcp://localhost:2375".to_string())]);
    assert_eq!(volume_names(&spec), ["work", "dind-sock", "dind-externals"]);
    assert!(spec.volumes.unwrap()[0].ephemeral.is_some());
    assert_eq!(spec.init_containers.unwrap()[0].image.as_deref(), Some("example/runner:1"));
}

#[test]
fn kubernetes_modes_render_hooks_a_work_volume_and_the_hook_role() {
    let claim = json!({"accessModes": ["ReadWriteOnce"], "storageClassName": "standard", "resources": {"requests": {"storage": "1Gi"}}});
    let kube = render()
        .set(
            "containerMode",
            json!({"type": "kubernetes", "kubernetesModeWorkVolumeClaim": claim,
            "kubernetesModeAdditionalRoleRules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}),
        )
        .run()
        .unwrap();
    let spec = pod_spec(&kube);
    assert_eq!(spec.service_account_name.as_deref(), Some("arc-runner-set-gha-rs-kube-mode"));
    let container = runner(&spec);
    assert_eq!(env(&container, "ACTIONS_RUNNER_CONTAINER_HOOKS"), [Some("/home/runner/k8s/index.js".to_string())]);
    assert_eq!(env(&container, "ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER"), [Some("true".to_string())]);
    let pod_name = container.env.iter().flatten().find(|e| e.name == "ACTIONS_RUNNER_POD_NAME").unwrap();
    assert_eq!(pod_name.value_from.as_ref().unwrap().field_ref.as_ref().unwrap().field_path, "metadata.name");
    let work = &spec.volumes.unwrap()[0];
    assert_eq!(work.name, "work");
    let claim_spec = work.ephemeral.as_ref().unwrap().volume_claim_template.as_ref().unwrap().spec.clone();
    assert_eq!(claim_spec.storage_class_name.as_deref(), Some("standard"));
    let role: Role =
        serde_json::from_value(kube.find("Role", "arc-runner-set-gha-rs-kube-mode").unwrap().clone()).unwrap();
    let resources: Vec<String> =
        role.rules.unwrap().iter().flat_map(|r| r.resources.clone().unwrap_or_default()).collect();
    assert!(resources.contains(&"pods/exec".to_string()) && resources.contains(&"jobs".to_string()));
    assert!(resources.contains(&"configmaps".to_string()), "additional rules appended");
    assert!(kube.find("ServiceAccount", "arc-runner-set-gha-rs-no-permission").is_none());
    let annotations = ars(&kube).metadata.annotations.unwrap();
    assert_eq!(annotations["actions.github.com/cleanup-kubernetes-mode-role-name"], "arc-runner-set-gha-rs-kube-mode");

    let missing_claim = render().set("containerMode", json!({"type": "kubernetes"}));
    assert!(template_error(missing_claim).contains("kubernetesModeWorkVolumeClaim"));

    let novolume = render().set("containerMode", json!({"type": "kubernetes-novolume"})).run().unwrap();
    let spec = pod_spec(&novolume);
    assert_eq!(spec.volumes.as_deref(), Some(&[][..]), "volumes: [] (#4461)");
    let container = runner(&spec);
    assert_eq!(
        env(&container, "ACTIONS_RUNNER_CONTAINER_HOOKS"),
        [Some("/home/runner/k8s-novolume/index.js".to_string())]
    );
    assert_eq!(env(&container, "ACTIONS_RUNNER_IMAGE"), [Some("ghcr.io/actions/actions-runner:latest".to_string())]);
    let role = novolume.find("Role", "arc-runner-set-gha-rs-kube-mode").unwrap();
    assert!(!role.to_string().contains("\"jobs\""), "no jobs in novolume mode");

    // No work volume, but a mounted TLS certificate still needs its volume, or every runner pod is refused.
    let tls = render()
        .set("containerMode", json!({"type": "kubernetes-novolume"}))
        .set(
            "githubServerTLS",
            json!({"certificateFrom": {"configMapKeyRef": {"name": "ca", "key": "ca.crt"}}, "runnerMountPath": "/certs"}),
        )
        .run()
        .unwrap();
    let spec = pod_spec(&tls);
    assert_eq!(volume_names(&spec), ["github-server-tls-cert"]);
    let mounts: Vec<String> = runner(&spec).volume_mounts.iter().flatten().map(|m| m.name.clone()).collect();
    assert_eq!(mounts, ["github-server-tls-cert"]);
}

#[test]
fn tls_proxy_listener_settings_and_metadata_pass_through() {
    let manifests = render()
        .values(
            r#"
githubServerTLS:
  certificateFrom: {configMapKeyRef: {name: ca-bundle, key: ca.crt}}
  runnerMountPath: /usr/local/share/ca-certificates/
proxy:
  https: {url: "http://proxy:3128", credentialSecretRef: proxy-auth}
  noProxy: [example.internal]
scaleSetLabels: [linux, gpu]
runnerGroup: team-a
listenerTemplate:
  spec:
    containers: [{name: listener, resources: {limits: {memory: 64Mi}}}]
listenerMetrics:
  counters: {gha_started_jobs_total: {labels: [repository]}}
labels: {team: ci, actions.github.com/scale-set-name: spoofed}
annotations: {owner: ci}
resourceMeta:
  ephemeralRunner: {labels: {cost-center: "42"}}
  githubConfigSecret: {annotations: {vault: "no"}}
"#,
        )
        .run()
        .unwrap();
    let set = ars(&manifests);
    let tls = set.spec.github_server_tls.as_ref().unwrap().certificate_from.as_ref().unwrap();
    assert_eq!(tls.config_map_key_ref.as_ref().unwrap().name, "ca-bundle");
    let spec = set.spec.template.spec.clone().unwrap();
    let container = runner(&spec);
    assert_eq!(env(&container, "NODE_EXTRA_CA_CERTS"), [Some("/usr/local/share/ca-certificates/ca.crt".to_string())]);
    assert_eq!(env(&container, "RUNNER_UPDATE_CA_CERTS"), [Some("1".to_string())]);
    assert_eq!(volume_names(&spec), ["github-server-tls-cert"]);
    let role: Role = manifests.one("Role");
    assert!(role.rules.unwrap().iter().any(|r| r.resources.iter().flatten().any(|x| x == "configmaps")));
    let proxy = set.spec.proxy.as_ref().unwrap();
    assert_eq!(proxy.https.as_ref().unwrap().credential_secret_ref.as_deref(), Some("proxy-auth"));
    assert_eq!(set.spec.runner_scale_set_labels.clone().unwrap(), ["linux", "gpu"]);
    assert_eq!(set.spec.runner_group.as_deref(), Some("team-a"));
    assert!(set.spec.listener_template.is_some() && set.spec.listener_metrics.is_some());
    let labels = set.metadata.labels.clone().unwrap();
    assert_eq!(labels["team"], "ci");
    assert_eq!(labels["actions.github.com/scale-set-name"], "arc-runner-set", "reserved labels can't be overridden");
    assert_eq!(set.metadata.annotations.clone().unwrap()["owner"], "ci");
    assert_eq!(set.spec.ephemeral_runner_metadata.as_ref().unwrap().labels.as_ref().unwrap()["cost-center"], "42");
    let secret: Secret = manifests.one("Secret");
    assert_eq!(secret.metadata.annotations.unwrap()["vault"], "no");
    assert_eq!(secret.metadata.labels.unwrap()["team"], "ci");
}

#[test]
fn policy_values_reach_the_scale_set() {
    let dir = std::env::temp_dir().join(format!("gha-charts-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.wasm");
    std::fs::write(&file, "not really wasm, but text survives --set-file").unwrap();
    let from_file = render()
        .set_file("policy.wasm", &file)
        .set("policy.config", json!({"idle": 2}))
        .set("policy.limits", json!({"memoryMiB": 32, "timeoutMs": 50}))
        .set("policy.failurePolicy", json!("HoldLast"))
        .set("policy.permissions", json!({"images": ["ghcr.io/acme/*"], "env": ["POLICY_*"]}))
        .run()
        .unwrap();
    let map = from_file.find("ConfigMap", "arc-runner-set-gha-rs-policy").expect("a ConfigMap for the component");
    let encoded = map["binaryData"]["policy.wasm"].as_str().unwrap();
    assert_eq!(encoded, "bm90IHJlYWxseSB3YXNtLCBidXQgdGV4dCBzdXJ2aXZlcyAtLXNldC1maWxl");
    let policy = ars(&from_file).spec.policy.unwrap();
    let source = policy.source.config_map.unwrap();
    assert_eq!((source.name.as_str(), source.key.as_deref()), ("arc-runner-set-gha-rs-policy", Some("policy.wasm")));
    assert_eq!(policy.config, Some(json!({"idle": 2})));
    assert_eq!(policy.limits.unwrap().memory_mib, 32);
    assert_eq!(policy.failure_policy.as_deref(), Some("HoldLast"));
    let permissions = policy.permissions.unwrap();
    assert_eq!((permissions.images, permissions.env), (vec!["ghcr.io/acme/*".into()], vec!["POLICY_*".into()]));
    assert_eq!(permissions.containers, ["runner"], "what is not granted keeps its default");
    let role: Role = from_file.one("Role");
    assert!(role.rules.unwrap().iter().any(|r| r.resources.iter().flatten().any(|x| x == "configmaps")));
    let _ = std::fs::remove_dir_all(&dir);

    let sha = "ab".repeat(32);
    let url = render()
        .set("policy.source", json!({"url": {"url": "https://policies.example/p.wasm", "sha256": sha}}))
        .set("policy.shadow", json!({"source": {"builtIn": "warm-pool"}, "config": {"idle": 1}}))
        .set("policy.allowWasi", json!(true))
        .run()
        .unwrap();
    let policy = ars(&url).spec.policy.unwrap();
    assert_eq!(policy.source.url.unwrap().sha256, sha);
    assert_eq!(policy.shadow.unwrap().source.built_in.as_deref(), Some("warm-pool"));
    assert_eq!(policy.allow_wasi, Some(true));
    assert!(url.of_kind("ConfigMap").is_empty());

    let existing = render().set("policy.source", json!({"configMap": {"name": "team-policy"}})).run().unwrap();
    assert_eq!(ars(&existing).spec.policy.unwrap().source.config_map.unwrap().name, "team-policy");

    let key = "-----BEGIN PUBLIC KEY-----\nMFkw...\n-----END PUBLIC KEY-----\n";
    let oci = json!({"oci": {"ref": "ghcr.io/acme/policies/spares:v1", "imagePullSecrets": [{"name": "regcred"}],
                             "refreshSeconds": 60, "verify": {"publicKey": key}}});
    let from_registry = render().set("policy.source", oci).run().unwrap();
    let source = ars(&from_registry).spec.policy.unwrap().source.oci.unwrap();
    assert_eq!(source.reference, "ghcr.io/acme/policies/spares:v1");
    assert_eq!(source.image_pull_secrets.unwrap()[0].name, "regcred");
    assert_eq!((source.refresh_seconds, source.verify.unwrap().public_key.as_str()), (Some(60), key));
    let too_fast = render().set("policy.source", json!({"oci": {"ref": "ghcr.io/a/b:v1", "refreshSeconds": 1}}));
    assert!(schema_error(too_fast).contains("refreshSeconds"));
}

#[test]
fn without_a_controller_service_account_helm_template_fails_with_advice() {
    let render = Render::new(CHART, "arc-runner-set", "arc-runners")
        .values("githubConfigUrl: https://github.com/acme\ngithubConfigSecret: s\n");
    assert!(template_error(render).contains("set controllerServiceAccount.namespace"));
}

/// The chart's objects, applied to the in-memory API server as `helm install` would, run by the real controller:
/// the scale set registers with the (fake) Actions service, and uninstalling cleans everything up.
#[tokio::test]
async fn the_rendered_objects_run_on_the_controller() {
    use gha_sandbox::{RUNNER_NAMESPACE, Sandbox, SandboxOptions, eventually};
    use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
    use kube::discovery::ApiResource;

    let sandbox = Sandbox::start(SandboxOptions { kubelet: false, ..SandboxOptions::default() }).await.unwrap();
    let manifests = Render::new(CHART, "chart-set", RUNNER_NAMESPACE)
        .set("githubConfigUrl", json!(sandbox.fake.config_url("acme")))
        .set("githubConfigSecret", json!({"github_token": "ghp_fake"}))
        .set("controllerServiceAccount", json!({"namespace": "arc-systems", "name": "arc-gha-rs-controller"}))
        .set("minRunners", json!(1))
        .set("maxRunners", json!(3))
        .set("policy.source", json!({"builtIn": "warm-pool"}))
        .set("policy.config", json!({"scaleFactor": 0.5, "maxExtra": 2}))
        .run()
        .unwrap();
    let api_of = |object: &Value| {
        let (group, version) = match object["apiVersion"].as_str().unwrap().split_once('/') {
            Some((group, version)) => (group.to_string(), version.to_string()),
            None => (String::new(), object["apiVersion"].as_str().unwrap().to_string()),
        };
        let kind = object["kind"].as_str().unwrap().to_string();
        let resource = ApiResource {
            api_version: object["apiVersion"].as_str().unwrap().to_string(),
            plural: format!("{}s", kind.to_lowercase()),
            group,
            version,
            kind,
        };
        Api::<DynamicObject>::namespaced_with(sandbox.client.clone(), RUNNER_NAMESPACE, &resource)
    };
    for (_, object) in &manifests.0 {
        let name = object["metadata"]["name"].as_str().unwrap();
        let params = PatchParams::apply("helm").force();
        api_of(object).patch(name, &params, &Patch::Apply(object)).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let sets: Api<AutoscalingRunnerSet> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    eventually("the chart's scale set registered and its runner set created", Duration::from_secs(30), || async {
        let set = sets.get("chart-set").await.map_err(|e| e.to_string())?;
        let annotations = set.metadata.annotations.unwrap_or_default();
        let registered = annotations.contains_key("runner-scale-set-id");
        let phase = set.status.map(|s| format!("{:?}", s.conditions)).unwrap_or_default();
        gha_sandbox::ensure(registered && sandbox.fake.with_state(|s| s.scale_sets().len()) == 1, || {
            format!("annotations {annotations:?}, conditions {phase}")
        })
    })
    .await;

    sets.delete("chart-set", &DeleteParams::default()).await.unwrap();
    eventually(
        "uninstall: the scale set and the chart's protected objects are gone",
        Duration::from_secs(30),
        || async {
            let left_sets = sets.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items.len();
            let secrets: Api<Secret> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
            let protected = secrets
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .into_iter()
                .filter(|s| {
                    s.metadata.finalizers.iter().flatten().any(|f| f == "actions.github.com/cleanup-protection")
                })
                .count();
            let registered = sandbox.fake.with_state(|s| s.scale_sets().len());
            gha_sandbox::ensure(left_sets == 0 && protected == 0 && registered == 0, || {
                format!("{left_sets} scale sets, {protected} protected secrets, {registered} registered")
            })
        },
    )
    .await;
    sandbox.stop().await;
}
