//! What the AutoscalingRunnerSet controller says about specs it cannot act on, and what policies do to runner
//! pods and scale-down choices.

use std::collections::BTreeMap;
use std::time::Duration;

use gha_crds::{
    AutoscalingRunnerSet, EphemeralRunner, EphemeralRunnerSet, PolicyConfigMapRef, PolicySourceSpec, PolicySpecCr,
};
use gha_sandbox::{GITHUB_SECRET, RUNNER_NAMESPACE, Sandbox, SandboxOptions, ensure, eventually};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(20);

async fn sandbox(kubelet: bool) -> Sandbox {
    Sandbox::start(SandboxOptions { kubelet, ..SandboxOptions::default() }).await.unwrap()
}

/// Waits until the ARS has a condition whose message contains `needle`; returns its reason.
async fn condition_with(sandbox: &Sandbox, name: &str, needle: &str) -> String {
    let sets: Api<AutoscalingRunnerSet> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let find = || async {
        let ars = sets.get(name).await.ok()?;
        let conditions = ars.status.unwrap_or_default().conditions.unwrap_or_default();
        conditions.into_iter().find(|c| c.message.contains(needle))
    };
    eventually(&format!("{name}: a condition mentioning {needle:?}"), TIMEOUT, || async {
        let status = sets.get(name).await.ok().and_then(|a| a.status);
        ensure(find().await.is_some(), || format!("{status:?}"))
    })
    .await;
    find().await.map(|c| c.reason).unwrap_or_default()
}

fn built_in(name: &str, config: Value) -> PolicySpecCr {
    PolicySpecCr {
        source: PolicySourceSpec { built_in: Some(name.into()), ..Default::default() },
        config: Some(config),
        ..Default::default()
    }
}

async fn secret(sandbox: &Sandbox, name: &str, data: &[(&str, &str)]) {
    let secrets: Api<Secret> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let secret = Secret {
        metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
        string_data: Some(data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &secret).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_specs_are_conditions_not_crashes() {
    let sandbox = sandbox(false).await;
    secret(&sandbox, "both", &[("github_token", "t"), ("github_app_id", "1")]).await;
    secret(&sandbox, "no-keys", &[("unrelated", "x")]).await;

    let mut min_over_max = sandbox.runner_set("min-over-max", 5, 2, None);
    min_over_max.metadata.name = Some("min-over-max".into());
    let mut bad_url = sandbox.runner_set("bad-url", 0, 2, None);
    bad_url.spec.github_config_url = "not a url".into();
    let mut missing_secret = sandbox.runner_set("missing-secret", 0, 2, None);
    missing_secret.spec.github_config_secret = "nope".into();
    let mut both = sandbox.runner_set("both", 0, 2, None);
    both.spec.github_config_secret = "both".into();
    let mut no_keys = sandbox.runner_set("no-keys", 0, 2, None);
    no_keys.spec.github_config_secret = "no-keys".into();
    let unknown_policy = sandbox.runner_set("unknown-policy", 0, 2, Some(built_in("does-not-exist", json!({}))));
    let rejected_config =
        sandbox.runner_set("rejected-config", 0, 2, Some(built_in("warm-pool", json!({"scaleFactor": "lots"}))));
    let mut bad_failure_policy =
        sandbox.runner_set("bad-failure-policy", 0, 2, Some(built_in("arc-default", json!({}))));
    bad_failure_policy.spec.policy.as_mut().unwrap().failure_policy = Some("Panic".into());
    for ars in [
        &min_over_max,
        &bad_url,
        &missing_secret,
        &both,
        &no_keys,
        &unknown_policy,
        &rejected_config,
        &bad_failure_policy,
    ] {
        sandbox.apply(ars).await.unwrap();
    }
    assert_eq!(
        condition_with(&sandbox, "min-over-max", "minRunners 5 is greater than maxRunners 2").await,
        "InvalidSpec"
    );
    assert_eq!(condition_with(&sandbox, "bad-url", "githubConfigUrl").await, "InvalidSpec");
    assert_eq!(condition_with(&sandbox, "missing-secret", "secret arc-runners/nope not found").await, "InvalidSpec");
    assert_eq!(condition_with(&sandbox, "both", "both github_token and github_app_id").await, "InvalidSpec");
    assert_eq!(condition_with(&sandbox, "no-keys", "neither github_token").await, "InvalidSpec");
    assert_eq!(condition_with(&sandbox, "unknown-policy", "does-not-exist").await, "PolicyInvalid");
    assert_eq!(condition_with(&sandbox, "rejected-config", "rejected its config").await, "PolicyInvalid");
    assert_eq!(condition_with(&sandbox, "bad-failure-policy", "failurePolicy").await, "PolicyInvalid");

    // Nothing was registered or created for any of them.
    assert!(sandbox.fake.with_state(|s| s.scale_sets().is_empty()));
    let runner_sets: Api<EphemeralRunnerSet> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    assert!(runner_sets.list(&ListParams::default()).await.unwrap().items.is_empty());

    // Fixing the spec clears the condition and the scale set is registered.
    let sets: Api<AutoscalingRunnerSet> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let fix = json!({"spec": {"githubConfigSecret": GITHUB_SECRET}});
    sets.patch("missing-secret", &PatchParams::default(), &Patch::Merge(&fix)).await.unwrap();
    eventually("missing-secret registered", Duration::from_secs(45), || async {
        let ars = sets.get("missing-secret").await.map_err(|e| e.to_string())?;
        ensure(ars.annotations().contains_key("runner-scale-set-id"), || format!("{:?}", ars.status))
    })
    .await;
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_mismatch_is_a_condition_and_the_set_keeps_working() {
    let sandbox = sandbox(false).await;
    let mut ars = sandbox.runner_set("old", 0, 2, None);
    ars.metadata.labels = Some(BTreeMap::from([("app.kubernetes.io/version".to_string(), "0.9.0".to_string())]));
    sandbox.apply(&ars).await.unwrap();
    assert_eq!(condition_with(&sandbox, "old", "ARC would delete it").await, "VersionMismatch");
    let sets: Api<AutoscalingRunnerSet> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    eventually("registered despite the mismatch", TIMEOUT, || async {
        let ars = sets.get("old").await.map_err(|e| e.to_string())?;
        ensure(ars.annotations().contains_key("runner-scale-set-id"), || "not registered".into())
    })
    .await;
    sandbox.stop().await;
}

async fn scale(sandbox: &Sandbox, name: &str, replicas: u32, patch_id: i64) {
    let api: Api<EphemeralRunnerSet> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    eventually("the runner set", TIMEOUT, || async { api.get(name).await.map(|_| ()).map_err(|e| e.to_string()) })
        .await;
    let patch =
        json!({"spec": {"replicas": if replicas == 0 { Value::Null } else { json!(replicas) }, "patchID": patch_id}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
}

async fn runner_pods(sandbox: &Sandbox, count: usize) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    eventually(&format!("{count} runner pods"), TIMEOUT, || async {
        let n = pods.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items.len();
        ensure(n == count, || format!("{n} pods"))
    })
    .await;
    pods.list(&ListParams::default()).await.unwrap().items
}

/// The misbehaving test policy in `mode`, shipped in a ConfigMap as users ship their components.
async fn misbehaving(sandbox: &Sandbox, mode: &str) -> PolicySpecCr {
    let maps: Api<ConfigMap> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let map = ConfigMap {
        metadata: ObjectMeta { name: Some(mode.into()), ..Default::default() },
        binary_data: Some(BTreeMap::from([(
            "policy.wasm".to_string(),
            ByteString(gha_policy_engine::fixtures::MISBEHAVING.to_vec()),
        )])),
        ..Default::default()
    };
    maps.create(&PostParams::default(), &map).await.unwrap();
    PolicySpecCr {
        source: PolicySourceSpec {
            config_map: Some(PolicyConfigMapRef { name: mode.into(), key: None }),
            ..Default::default()
        },
        config: Some(json!({"mode": mode})),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_shape_pods_within_the_allowlist() {
    let sandbox = sandbox(false).await;
    let shaper = built_in(
        "pod-shaper",
        json!({
            "default": {"resources": {"requests": {"cpu": "2"}}, "nodeSelector": {"pool": "ci"}},
        }),
    );
    sandbox.apply(&sandbox.runner_set("shaped", 0, 5, Some(shaper))).await.unwrap();
    scale(&sandbox, "shaped", 1, 1).await;
    let pod = runner_pods(&sandbox, 1).await.remove(0);
    let spec = pod.spec.unwrap();
    assert_eq!(spec.node_selector.unwrap()["pool"], "ci");
    let runner = spec.containers.iter().find(|c| c.name == "runner").unwrap();
    assert_eq!(runner.resources.as_ref().unwrap().requests.as_ref().unwrap()["cpu"].0, "2");
    let jit = runner.env.iter().flatten().find(|e| e.name == "ACTIONS_RUNNER_INPUT_JITCONFIG").unwrap();
    assert!(jit.value_from.is_some(), "the controller's JIT env survives the policy");

    // A policy whose patch escalates privileges: refused, the pod is created unmutated, an event says why.
    let escalating = misbehaving(&sandbox, "escalating-patch").await;
    sandbox.apply(&sandbox.runner_set("escalating", 0, 5, Some(escalating))).await.unwrap();
    scale(&sandbox, "escalating", 1, 1).await;
    let pods = runner_pods(&sandbox, 2).await;
    let pod = pods.iter().find(|p| p.name_any().starts_with("escalating")).unwrap();
    let spec = pod.spec.clone().unwrap();
    assert!(spec.host_network.is_none() && spec.volumes.is_none(), "nothing of the forbidden patch applied");
    assert!(spec.containers.iter().all(|c| c.security_context.is_none()));
    let events: Api<Event> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    eventually("a PodMutationFailed event", TIMEOUT, || async {
        let events = events.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let found = events.iter().any(|e| {
            e.reason.as_deref() == Some("PodMutationFailed")
                && e.note.as_deref().is_some_and(|n| n.contains("allowlist"))
        });
        ensure(found, || format!("{:?}", events.iter().map(|e| (&e.reason, &e.note)).collect::<Vec<_>>()))
    })
    .await;
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_selects_scale_down_victims_among_idle_candidates_only() {
    let sandbox = sandbox(true).await;
    let select_busy = misbehaving(&sandbox, "select-busy").await;
    sandbox.apply(&sandbox.runner_set("picky", 0, 5, Some(select_busy))).await.unwrap();
    scale(&sandbox, "picky", 4, 1).await;
    let runners: Api<EphemeralRunner> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    eventually("four running runners", TIMEOUT, || async {
        let items = runners.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let running =
            items.iter().filter(|r| r.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")).count();
        ensure(running == 4, || format!("{running} running"))
    })
    .await;
    let names: Vec<String> =
        runners.list(&ListParams::default()).await.unwrap().items.iter().map(|r| r.name_any()).collect();
    let busy = names[..2].to_vec();
    for name in &busy {
        let patch = json!({"status": {"jobId": format!("job-{name}")}});
        runners.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    }
    // The policy asks for every runner, busy ones included; only idle ones go.
    scale(&sandbox, "picky", 0, 0).await;
    eventually("only the busy runners left", TIMEOUT, || async {
        let mut left: Vec<String> = runners
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items
            .iter()
            .map(|r| r.name_any())
            .collect();
        left.sort();
        let mut expected = busy.clone();
        expected.sort();
        ensure(left == expected, || format!("{left:?}"))
    })
    .await;
    sandbox.stop().await;
}
