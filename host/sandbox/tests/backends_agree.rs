//! The in-memory API server agrees with a real kube-apiserver on what our code relies on: the same requests
//! give the same outcomes on both (CRD schema validation and pruning, the status subresource, optimistic
//! concurrency, finalizers, pod binding, graceful deletion of bound pods, immutable pod specs, garbage
//! collection, namespace deletion).

use std::time::Duration;

use gha_sandbox::{Backend, BackendKind};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use kube::{Api, Client};
use serde_json::{Value, json};

const NS: &str = "agree";

fn runner_sets(client: &Client) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: "actions.github.com".into(),
        version: "v1alpha1".into(),
        api_version: "actions.github.com/v1alpha1".into(),
        kind: "AutoscalingRunnerSet".into(),
        plural: "autoscalingrunnersets".into(),
    };
    Api::namespaced_with(client.clone(), NS, &resource)
}

fn object<K: serde::de::DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).unwrap()
}

/// The outcome of a write: the HTTP code and reason of a refusal, or "ok".
fn outcome<T>(result: kube::Result<T>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(kube::Error::Api(status)) => format!("{} {}", status.code, status.reason),
        Err(e) => format!("error {e}"),
    }
}

fn runner_set(name: &str, spec: Value) -> DynamicObject {
    object(json!({"apiVersion": "actions.github.com/v1alpha1", "kind": "AutoscalingRunnerSet",
        "metadata": {"name": name}, "spec": spec}))
}

fn valid_spec() -> Value {
    json!({"githubConfigUrl": "https://github.com/acme", "githubConfigSecret": "s",
        "template": {"spec": {"containers": [{"name": "runner", "image": "runner"}]}}})
}

async fn gone<K>(api: &Api<K>, name: &str) -> bool
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    for _ in 0..300 {
        if api.get_opt(name).await.unwrap().is_none() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Runs every case on one backend and returns what it saw, one line per case.
async fn outcomes(kind: BackendKind) -> Vec<String> {
    let backend = Backend::start(kind).await.unwrap();
    let client = backend.admin_client().await.unwrap();
    backend.install_crds(&client).await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.create(&PostParams::default(), &object(json!({"metadata": {"name": NS}}))).await.unwrap();
    let sets = runner_sets(&client);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let post = PostParams::default();
    let mut seen = Vec::new();

    // Schema: required fields, types, pruning, nulls.
    let unnamed_container = json!({"spec": {"containers": [{"image": "runner"}]}});
    let missing =
        runner_set("missing", json!({"githubConfigUrl": "https://github.com/acme", "template": unnamed_container}));
    seen.push(format!("required fields: {}", outcome(sets.create(&post, &missing).await)));
    let sparse = runner_set("sparse", json!({"githubConfigUrl": "https://github.com/acme"}));
    seen.push(format!("fields ARC leaves optional: {}", outcome(sets.create(&post, &sparse).await)));
    let mut wrong = valid_spec();
    wrong["minRunners"] = json!("3");
    seen.push(format!("wrong type: {}", outcome(sets.create(&post, &runner_set("wrong", wrong)).await)));
    let mut extra = valid_spec();
    extra["unknownField"] = json!(1);
    extra["template"]["spec"]["containers"][0]["env"] = Value::Null;
    extra["policy"] = json!({"source": {"builtIn": "warm-pool"}, "config": {"free": {"form": [1]}}});
    let created = sets.create(&post, &runner_set("pruned", extra)).await.unwrap();
    seen.push(format!(
        "pruned: unknown {}, null env {}, free-form config kept {}",
        created.data["spec"].get("unknownField").is_some(),
        created.data["spec"]["template"]["spec"]["containers"][0].get("env").is_some(),
        created.data["spec"]["policy"]["config"]["free"]["form"] == json!([1]),
    ));

    // Status only through its subresource; stale writes conflict; finalizers hold deletion.
    let mut with_status = runner_set("status", valid_spec());
    with_status.data["status"] = json!({"currentRunners": 3});
    let created = sets.create(&post, &with_status).await.unwrap();
    seen.push(format!("status on create dropped: {}", created.data.get("status").is_none()));
    let mut stale = created.clone();
    sets.patch("status", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})))
        .await
        .unwrap();
    stale.data["spec"]["minRunners"] = json!(1);
    seen.push(format!("stale replace: {}", outcome(sets.replace("status", &post, &stale).await)));
    let finalized = json!({"metadata": {"finalizers": ["example.com/hold"]}});
    sets.patch("status", &PatchParams::default(), &Patch::Merge(finalized)).await.unwrap();
    sets.delete("status", &DeleteParams::default()).await.unwrap();
    let held = sets.get("status").await.unwrap();
    seen.push(format!("finalizer holds: {}", held.metadata.deletion_timestamp.is_some()));
    sets.patch("status", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .unwrap();
    seen.push(format!("released: {}", gone(&sets, "status").await));

    // Pods: bound only through `binding`, spec immutable, bound pods deleted gracefully until grace 0.
    let pod: Pod = object(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}));
    pods.create(&post, &pod).await.unwrap();
    let node = json!({"spec": {"nodeName": "n1"}});
    seen.push(format!(
        "nodeName patch: {}",
        outcome(pods.patch("p", &PatchParams::default(), &Patch::Merge(&node)).await)
    ));
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}});
    seen.push(format!(
        "bind: {}",
        outcome(pods.create_subresource::<Value, Value>("binding", "p", &post, &binding).await)
    ));
    seen.push(format!(
        "bind again: {}",
        outcome(pods.create_subresource::<Value, Value>("binding", "p", &post, &binding).await)
    ));
    let change = json!({"spec": {"containers": [{"name": "c", "image": "i", "command": ["x"]}]}});
    seen.push(format!(
        "spec change: {}",
        outcome(pods.patch("p", &PatchParams::default(), &Patch::Strategic(&change)).await)
    ));
    let image = json!({"spec": {"containers": [{"name": "c", "image": "i2"}]}});
    seen.push(format!(
        "image change: {}",
        outcome(pods.patch("p", &PatchParams::default(), &Patch::Strategic(&image)).await)
    ));
    pods.delete("p", &DeleteParams::default()).await.unwrap();
    let lingering = pods.get("p").await.unwrap();
    seen.push(format!(
        "bound pod deleted: lingers {}, grace {:?}",
        lingering.metadata.deletion_timestamp.is_some(),
        lingering.metadata.deletion_grace_period_seconds
    ));
    pods.delete("p", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await.unwrap();
    seen.push(format!("grace 0: gone {}", gone(&pods, "p").await));

    // Owners take their objects along; namespaces empty out.
    let owner = maps.create(&post, &object(json!({"metadata": {"name": "owner"}}))).await.unwrap();
    let owned = json!({"metadata": {"name": "owned", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
        "name": "owner", "uid": owner.metadata.uid.unwrap()}]}});
    maps.create(&post, &object(owned)).await.unwrap();
    maps.delete("owner", &DeleteParams::background()).await.unwrap();
    seen.push(format!("garbage collected: {}", gone(&maps, "owned").await));
    namespaces.delete(NS, &DeleteParams::default()).await.unwrap();
    seen.push(format!(
        "namespace deleted: {}, its objects gone {}",
        gone(&namespaces, NS).await,
        gone(&sets, "pruned").await
    ));
    seen
}

#[tokio::test]
async fn the_in_memory_api_and_a_real_api_server_give_the_same_outcomes() {
    let (memory, real) = tokio::join!(outcomes(BackendKind::Mem), outcomes(BackendKind::Real));
    assert_eq!(memory, real, "in-memory (left) and real (right) disagree");
    // What both must say, so that agreeing on nonsense fails too.
    assert_eq!(
        real,
        [
            "required fields: 422 Invalid",
            "fields ARC leaves optional: ok",
            "wrong type: 422 Invalid",
            "pruned: unknown false, null env false, free-form config kept true",
            "status on create dropped: true",
            "stale replace: 409 Conflict",
            "finalizer holds: true",
            "released: true",
            "nodeName patch: 422 Invalid",
            "bind: ok",
            "bind again: 409 Conflict",
            "spec change: 422 Invalid",
            "image change: ok",
            "bound pod deleted: lingers true, grace Some(30)",
            "grace 0: gone true",
            "garbage collected: true",
            "namespace deleted: true, its objects gone true",
        ]
    );
}
