//! Migrating in place: a cluster holds a scale set exactly as ARC 0.14.2's controllers store it (fields ARC omits
//! when empty are absent: no `minRunners` on the scale set or its listener, no `replicas` at zero), with ARC's
//! listener pod running and one idle ARC runner registered on GitHub. Our controller starts and adopts all of it:
//! the same listener object (no second listener, so no session conflict), the same scale set on GitHub, jobs run,
//! and ARC's runner is drained by our controller.

use std::time::Duration;

use gha_actions_fake::JobState;
use gha_crds::{AutoscalingListener, AutoscalingRunnerSet, EphemeralRunner, EphemeralRunnerSet};
use gha_sandbox::{
    BackendKind, CONTROLLER_NAMESPACE, GITHUB_SECRET, ORG, RUNNER_NAMESPACE, Sandbox, SandboxOptions, ensure,
    eventually, job,
};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

const NAME: &str = "arc-runner-set";
const ERS: &str = "arc-runner-set-x7k2p";
const RUNNER: &str = "arc-runner-set-x7k2p-runner-4fz9q";
const ARC_IMAGE: &str = "ghcr.io/actions/gha-runner-scale-set-controller:0.14.2";

fn common_labels(component: &str) -> Value {
    json!({
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "gha-runner-scale-set",
        "app.kubernetes.io/version": "0.14.2",
        "actions.github.com/scale-set-name": NAME,
        "actions.github.com/scale-set-namespace": RUNNER_NAMESPACE,
        "actions.github.com/organization": ORG,
    })
}

fn owner(kind: &str, name: &str, uid: &str) -> Value {
    json!([{"apiVersion": "actions.github.com/v1alpha1", "kind": kind, "name": name, "uid": uid,
            "controller": true, "blockOwnerDeletion": true}])
}

fn runner_template() -> Value {
    json!({"spec": {"restartPolicy": "Never", "containers": [{
        "name": "runner", "image": "ghcr.io/actions/actions-runner:2.329.0", "command": ["/home/runner/run.sh"]}]}})
}

async fn create<K>(api: &Api<K>, object: Value) -> K
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
{
    let object: K = serde_json::from_value(object).unwrap();
    api.create(&PostParams::default(), &object).await.unwrap()
}

/// What ARC 0.14.2 leaves in the cluster for a running scale set with one idle runner.
async fn arc_state(sandbox: &Sandbox) -> (i64, String) {
    let (client, scale_set) = sandbox.fake.client_with_scale_set(ORG, NAME).await.unwrap();
    let jit = client.generate_jit_config(scale_set.id, RUNNER).await.unwrap();
    let url = sandbox.fake.config_url(ORG);
    let kube = sandbox.client.clone();

    let sets: Api<AutoscalingRunnerSet> = Api::namespaced(kube.clone(), RUNNER_NAMESPACE);
    let mut labels = common_labels("autoscaling-runner-set");
    labels["app.kubernetes.io/part-of"] = json!("gha-rs");
    labels["helm.sh/chart"] = json!("gha-rs-0.14.2");
    let ars = create(
        &sets,
        json!({
            "apiVersion": "actions.github.com/v1alpha1", "kind": "AutoscalingRunnerSet",
            "metadata": {"name": NAME, "namespace": RUNNER_NAMESPACE, "labels": labels,
                "finalizers": ["autoscalingrunnerset.actions.github.com/finalizer"],
                "annotations": {"runner-scale-set-id": scale_set.id.to_string(),
                    "actions.github.com/runner-scale-set-name": NAME,
                    "actions.github.com/runner-group-name": "Default",
                    "actions.github.com/values-hash": "5c9d0b7f1e2a",
                    "actions.github.com/runner-spec-hash": "7b6d8c9f5"}},
            "spec": {"githubConfigUrl": url, "githubConfigSecret": GITHUB_SECRET, "maxRunners": 3,
                     "template": runner_template()}
        }),
    )
    .await;

    let runner_spec = json!({"githubConfigUrl": url, "githubConfigSecret": GITHUB_SECRET,
        "runnerScaleSetId": scale_set.id, "metadata": {}, "spec": runner_template()["spec"]});
    let runner_sets: Api<EphemeralRunnerSet> = Api::namespaced(kube.clone(), RUNNER_NAMESPACE);
    let ers = create(
        &runner_sets,
        json!({
            "apiVersion": "actions.github.com/v1alpha1", "kind": "EphemeralRunnerSet",
            "metadata": {"name": ERS, "namespace": RUNNER_NAMESPACE, "labels": common_labels("runner-set"),
                "finalizers": ["ephemeralrunnerset.actions.github.com/finalizer"],
                "annotations": {"actions.github.com/runner-scale-set-name": NAME,
                                "actions.github.com/runner-group-name": "Default"},
                "ownerReferences": owner("AutoscalingRunnerSet", NAME, &ars.uid().unwrap())},
            "spec": {"replicas": 1, "patchID": 4, "ephemeralRunnerSpec": runner_spec}
        }),
    )
    .await;

    let runners: Api<EphemeralRunner> = Api::namespaced(kube.clone(), RUNNER_NAMESPACE);
    let runner = create(
        &runners,
        json!({
            "apiVersion": "actions.github.com/v1alpha1", "kind": "EphemeralRunner",
            "metadata": {"name": RUNNER, "namespace": RUNNER_NAMESPACE, "labels": common_labels("runner"),
                "annotations": {"actions.github.com/patch-id": "4"},
                "finalizers": ["ephemeralrunner.actions.github.com/finalizer",
                               "ephemeralrunner.actions.github.com/runner-registration-finalizer"],
                "ownerReferences": owner("EphemeralRunnerSet", ERS, &ers.uid().unwrap())},
            "spec": runner_spec
        }),
    )
    .await;
    let status = json!({"status": {"phase": "Running", "ready": true, "runnerId": jit.runner.id,
                                   "runnerName": RUNNER}});
    runners.patch_status(RUNNER, &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), RUNNER_NAMESPACE);
    create(
        &secrets,
        json!({"metadata": {"name": RUNNER, "namespace": RUNNER_NAMESPACE},
        "stringData": {"jitToken": jit.encoded_jit_config, "runnerName": RUNNER,
                       "runnerId": jit.runner.id.to_string(), "scaleSetId": scale_set.id.to_string()}}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(kube.clone(), RUNNER_NAMESPACE);
    let mut runner_pod = runner_template();
    runner_pod["spec"]["containers"][0]["env"] = json!([{"name": "ACTIONS_RUNNER_INPUT_JITCONFIG",
        "valueFrom": {"secretKeyRef": {"name": RUNNER, "key": "jitToken"}}}]);
    runner_pod["metadata"] = json!({"name": RUNNER, "namespace": RUNNER_NAMESPACE,
        "labels": {"actions-ephemeral-runner": "True", "pod-template-hash": "6f8b9d7c4"},
        "ownerReferences": owner("EphemeralRunner", RUNNER, &runner.uid().unwrap())});
    create(&pods, runner_pod).await;

    let listener_name =
        format!("{NAME}-{}-listener", gha_controller::labels::name_suffix(&[RUNNER_NAMESPACE, "", &url]));
    let listeners: Api<AutoscalingListener> = Api::namespaced(kube.clone(), CONTROLLER_NAMESPACE);
    let listener = create(
        &listeners,
        json!({
            "apiVersion": "actions.github.com/v1alpha1", "kind": "AutoscalingListener",
            "metadata": {"name": listener_name, "namespace": CONTROLLER_NAMESPACE,
                "labels": common_labels("runner-scale-set-listener"),
                "finalizers": ["autoscalinglistener.actions.github.com/finalizer"]},
            "spec": {"githubConfigUrl": url, "githubConfigSecret": GITHUB_SECRET, "runnerScaleSetId": scale_set.id,
                     "autoscalingRunnerSetNamespace": RUNNER_NAMESPACE, "autoscalingRunnerSetName": NAME,
                     "ephemeralRunnerSetName": ERS, "maxRunners": 3, "image": ARC_IMAGE}
        }),
    )
    .await;
    let listener_pods: Api<Pod> = Api::namespaced(kube, CONTROLLER_NAMESPACE);
    create(
        &listener_pods,
        json!({
            "metadata": {"name": listener_name, "namespace": CONTROLLER_NAMESPACE,
                         "ownerReferences": owner("AutoscalingListener", &listener_name, &listener.uid().unwrap())},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "listener", "image": ARC_IMAGE,
                                                             "command": ["/ghalistener"]}]}
        }),
    )
    .await;
    (scale_set.id, listener.uid().unwrap())
}

async fn arc_objects_are_adopted(backend: BackendKind) {
    let mut sandbox = Sandbox::start(SandboxOptions {
        listener_binary: Some(env!("CARGO_BIN_EXE_gha-autoscaler").into()),
        in_process_controller: false,
        backend,
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let (scale_set_id, listener_uid) = arc_state(&sandbox).await;
    sandbox.restart_controller().await.unwrap();

    let kube = sandbox.client.clone();
    let listeners: Api<AutoscalingListener> = Api::namespaced(kube.clone(), CONTROLLER_NAMESPACE);
    let listener_pods: Api<Pod> = Api::namespaced(kube.clone(), CONTROLLER_NAMESPACE);
    let runners: Api<EphemeralRunner> = Api::namespaced(kube.clone(), RUNNER_NAMESPACE);
    let runner_sets: Api<EphemeralRunnerSet> = Api::namespaced(kube.clone(), RUNNER_NAMESPACE);
    eventually("ARC's listener object adopted, its pod replaced by ours", Duration::from_secs(60), || async {
        let all = listeners.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let pods = listener_pods.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let images: Vec<String> = pods
            .iter()
            .flat_map(|p| p.spec.iter().flat_map(|s| s.containers.iter()))
            .filter_map(|c| c.image.clone())
            .collect();
        let running = pods.iter().all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"));
        let adopted = all.len() == 1 && all[0].uid().as_deref() == Some(listener_uid.as_str());
        ensure(adopted && pods.len() == 1 && running && !images.iter().any(|i| i == ARC_IMAGE), || {
            format!(
                "listeners {:?}, pod images {images:?}, running {running}",
                all.iter().map(|l| l.name_any()).collect::<Vec<_>>()
            )
        })
    })
    .await;

    for _ in 0..3 {
        sandbox.fake.enqueue(job(&[NAME], 1_000));
    }
    eventually("three jobs completed on the adopted scale set", Duration::from_secs(90), || async {
        let jobs = sandbox.fake.with_state(|s| s.jobs());
        let done = jobs.iter().filter(|j| j.state == JobState::Completed).count();
        ensure(done == 3, || format!("{done} of 3 completed: {:?}", jobs.iter().map(|j| j.state).collect::<Vec<_>>()))
    })
    .await;
    let scale_sets = sandbox.fake.with_state(|s| s.scale_sets());
    assert_eq!(scale_sets.iter().map(|s| s.id).collect::<Vec<_>>(), [scale_set_id], "the scale set is reused");
    assert_eq!(listeners.list(&ListParams::default()).await.unwrap().items.len(), 1, "never a second listener");
    let sets: Api<AutoscalingRunnerSet> = Api::namespaced(kube.clone(), RUNNER_NAMESPACE);
    let status = sets.get(NAME).await.unwrap().status.unwrap_or_default();
    let conditions: Vec<String> = status.conditions.iter().flatten().map(|c| c.type_.clone()).collect();
    assert!(!conditions.iter().any(|c| c == "VersionMismatch"), "ARC's chart version is adopted: {conditions:?}");

    eventually("ARC's runner drained, nothing left registered", Duration::from_secs(90), || async {
        let left = runners.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let sets = runner_sets.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let registered = sandbox.fake.with_state(|s| s.runners().iter().filter(|r| !r.finished).count());
        ensure(left.is_empty() && registered == 0 && sets.len() == 1, || {
            let names: Vec<String> = left.iter().map(|r| r.name_any()).collect();
            format!("runners {names:?}, {registered} registered, {} runner sets", sets.len())
        })
    })
    .await;
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arc_objects_are_adopted_without_a_second_listener() {
    arc_objects_are_adopted(BackendKind::Mem).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arc_objects_are_adopted_without_a_second_listener_on_a_real_api_server() {
    arc_objects_are_adopted(BackendKind::Real).await;
}
