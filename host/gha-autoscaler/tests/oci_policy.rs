//! A policy published to a real OCI registry (the CNCF distribution server on loopback, with basic auth) runs a
//! scale set end to end: the controller resolves the tag, checks the cosign signature and pins the digest; the
//! listener process pulls that digest and decides with it. A tag moved to an unsigned artifact is refused while
//! the signed policy keeps serving, and so it does when the registry goes away.

use std::time::Duration;

use base64::Engine as _;
use gha_crds::{AutoscalingRunnerSet, PolicyOci, PolicySourceSpec, PolicySpecCr, PolicyVerify};
use gha_policy_engine::built_in;
use gha_policy_engine::oci::{Registry, RegistryCredentials, parse_reference};
use gha_policy_engine::signature::{generate_key_pair, sign, signing_key};
use gha_real_kube::RealRegistry;
use gha_sandbox::{RUNNER_NAMESPACE, Sandbox, SandboxOptions, ensure, eventually};
use k8s_openapi::api::core::v1::{LocalObjectReference, Secret};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;

const SET: &str = "oci";

fn condition(set: &AutoscalingRunnerSet, kind: &str) -> Option<(String, String, String)> {
    let conditions = set.status.as_ref()?.conditions.as_ref()?;
    let c = conditions.iter().find(|c| c.type_ == kind)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_policy_from_a_private_registry_runs_a_scale_set_and_a_tampered_tag_is_refused() {
    let registry = RealRegistry::start(Some(("ci-bot", "s3cret"))).await.unwrap();
    let credentials = RegistryCredentials { username: "ci-bot".into(), password: "s3cret".into() };
    let client = Registry::new(true, Some(&credentials));
    let tag = format!("{}/policies/warm-pool:stable", registry.address());
    let reference = parse_reference(&tag).unwrap();
    let pinned = client.push_policy(&reference, built_in("warm-pool").unwrap()).await.unwrap();
    let (private, public) = generate_key_pair().unwrap();
    sign(&client, &reference, &signing_key(&private).unwrap()).await.unwrap();

    let sandbox = Sandbox::start(SandboxOptions {
        listener_binary: Some(env!("CARGO_BIN_EXE_gha-autoscaler").into()),
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("ci-bot:s3cret");
    let docker_config = json!({"auths": {registry.address(): {"auth": auth}}}).to_string();
    let pull_secret = Secret {
        metadata: kube::api::ObjectMeta { name: Some("regcred".into()), ..Default::default() },
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        string_data: Some([(".dockerconfigjson".to_string(), docker_config)].into()),
        ..Default::default()
    };
    let secrets: Api<Secret> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    secrets.create(&PostParams::default(), &pull_secret).await.unwrap();

    // warm-pool with an all-week window of two runners: min 0, yet two idle runners — only warm-pool does that.
    let every_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let policy = PolicySpecCr {
        source: PolicySourceSpec {
            oci: Some(PolicyOci {
                reference: tag.clone(),
                image_pull_secrets: Some(vec![LocalObjectReference { name: "regcred".into() }]),
                plain_http: Some(true),
                refresh_seconds: Some(10),
                verify: Some(PolicyVerify { public_key: public.clone() }),
            }),
            ..Default::default()
        },
        config: Some(json!({"schedules": [{"days": every_day, "start": "00:00", "end": "00:00", "minRunners": 2}]})),
        ..Default::default()
    };
    sandbox.apply(&sandbox.runner_set(SET, 0, 5, Some(policy))).await.unwrap();
    let sets: Api<AutoscalingRunnerSet> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let runners: Api<gha_crds::EphemeralRunner> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);

    eventually("the listener decides with warm-pool pulled from the registry", Duration::from_secs(60), || async {
        let set = sets.get(SET).await.map_err(|e| e.to_string())?;
        let status = set.status.clone().unwrap_or_default();
        let count = runners.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items.len();
        ensure(
            status.policy_reference.as_deref() == Some(pinned.as_str())
                && status.policy.as_deref().is_some_and(|p| p.starts_with("warm-pool"))
                && count == 2,
            || format!("status {status:?}, {count} runners"),
        )
    })
    .await;
    let ready = sets.get(SET).await.unwrap();
    assert_eq!(condition(&ready, "PolicyUpToDate").map(|c| c.1), Some("Pinned".into()));

    // Someone pushes another component under the signed tag: refused, the signed one keeps serving.
    client.push_policy(&reference, built_in("arc-default").unwrap()).await.unwrap();
    eventually("the moved tag is refused", Duration::from_secs(40), || async {
        let set = sets.get(SET).await.map_err(|e| e.to_string())?;
        let stale = condition(&set, "PolicyUpToDate");
        ensure(
            stale.as_ref().is_some_and(|(status, _, message)| status == "False" && message.contains("not signed")),
            || format!("PolicyUpToDate {stale:?}"),
        )
    })
    .await;
    let set = sets.get(SET).await.unwrap();
    assert_eq!(set.status.as_ref().and_then(|s| s.policy_reference.clone()), Some(pinned.clone()));
    assert_eq!(condition(&set, "Ready").map(|c| c.0), Some("True".into()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(runners.list(&ListParams::default()).await.unwrap().items.len(), 2, "warm-pool still decides");

    // The registry goes away: the condition says so, the policy keeps serving.
    drop(registry);
    eventually("an unreachable registry is reported", Duration::from_secs(40), || async {
        let set = sets.get(SET).await.map_err(|e| e.to_string())?;
        let stale = condition(&set, "PolicyUpToDate");
        ensure(stale.as_ref().is_some_and(|(_, _, message)| message.contains("unreachable")), || {
            format!("PolicyUpToDate {stale:?}")
        })
    })
    .await;
    let set = sets.get(SET).await.unwrap();
    assert_eq!(set.status.as_ref().and_then(|s| s.policy_reference.clone()), Some(pinned));
    assert_eq!(runners.list(&ListParams::default()).await.unwrap().items.len(), 2);
    sandbox.stop().await;
}
