//! The product as a user installs it, on a real kube-apiserver + kube-controller-manager: both charts installed
//! with real helm; the controller is the chart's own Deployment (run by the simulated kubelet as a
//! `gha-autoscaler controller` process with the chart's ServiceAccount token, so it has exactly the RBAC the
//! chart grants); listeners run with the token of the ServiceAccount the controller made for them.

use std::time::Duration;

use gha_actions_fake::JobState;
use gha_charts::Render;
use gha_crds::{AutoscalingRunnerSet, EphemeralRunner, EphemeralRunnerSet};
use gha_real_kube::Helm;
use gha_sandbox::{
    BackendKind, CONTROLLER_NAMESPACE, ORG, RUNNER_NAMESPACE, Sandbox, SandboxOptions, TOKEN, ensure, eventually, job,
};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

fn scale_set_release(sandbox: &Sandbox, name: &str) -> Render {
    Render::new("gha-autoscaler-scale-set", name, RUNNER_NAMESPACE)
        .set("githubConfigUrl", json!(sandbox.fake.config_url(ORG)))
        .set("githubConfigSecret", json!({"github_token": TOKEN}))
        .set("minRunners", json!(1))
        .set("maxRunners", json!(4))
}

async fn count<K>(api: &Api<K>) -> Result<usize, String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    Ok(api.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_run_the_whole_lifecycle_with_the_rbac_they_grant_on_a_real_api_server() {
    let sandbox = Sandbox::start(SandboxOptions {
        backend: BackendKind::Real,
        in_process_controller: false,
        listener_binary: Some(env!("CARGO_BIN_EXE_gha-autoscaler").into()),
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let cluster = sandbox.backend.real().expect("started on a real API server");
    let kubeconfig = cluster.kubeconfig_file().unwrap();
    Render::new("gha-autoscaler-controller", "arc", CONTROLLER_NAMESPACE)
        .set("flags", json!({"healthProbeBindAddress": "0", "logLevel": "info", "syncPeriod": "10s"}))
        .install(Helm::V3, &kubeconfig)
        .unwrap();
    // Found by the scale-set chart's lookup of the controller (no controllerServiceAccount given).
    for name in ["team-a", "team-b"] {
        scale_set_release(&sandbox, name).install(Helm::V4, &kubeconfig).unwrap();
    }
    let client = sandbox.client.clone();
    let runners: Api<EphemeralRunner> = Api::namespaced(client.clone(), RUNNER_NAMESPACE);
    eventually("both scale sets registered, listening, at their minimum", Duration::from_secs(90), || async {
        let sessions = sandbox.fake.with_state(|s| s.sessions().len());
        let idle = count(&runners).await?;
        ensure(sessions == 2 && idle == 2, || format!("{sessions} sessions, {idle} runners"))
    })
    .await;

    // A listener may patch its own EphemeralRunnerSet and no other.
    let pods: Api<Pod> = Api::namespaced(client.clone(), CONTROLLER_NAMESPACE);
    let listener = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|p| p.name_any().starts_with("team-a-"))
        .expect("team-a's listener pod");
    let account = listener.spec.unwrap().service_account_name.unwrap();
    let token = cluster.service_account_token(CONTROLLER_NAMESPACE, &account).await.unwrap();
    let as_listener = cluster.client_with_token(&token).await.unwrap();
    let sets: Api<EphemeralRunnerSet> = Api::namespaced(as_listener, RUNNER_NAMESPACE);
    let all_sets: Api<EphemeralRunnerSet> = Api::namespaced(client.clone(), RUNNER_NAMESPACE);
    let names: Vec<String> =
        all_sets.list(&ListParams::default()).await.unwrap().items.iter().map(|s| s.name_any()).collect();
    let own = names.iter().find(|n| n.starts_with("team-a")).unwrap_or_else(|| panic!("team-a in {names:?}"));
    let other = names.iter().find(|n| n.starts_with("team-b")).unwrap_or_else(|| panic!("team-b in {names:?}"));
    let nothing = Patch::Merge(json!({}));
    sets.patch(own, &PatchParams::default(), &nothing).await.expect("a listener patches its own runner set");
    match sets.patch(other, &PatchParams::default(), &nothing).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("team-a's listener patched team-b's runner set: {other:?}"),
    }

    // A burst on team-a: scaled up, every job runs on a runner pod, back to the minimum.
    for _ in 0..6 {
        sandbox.fake.enqueue(job(&["team-a"], 1_500));
    }
    eventually("every job done and team-a back at its minimum", Duration::from_secs(120), || async {
        let jobs = sandbox.fake.with_state(|s| s.jobs());
        let done =
            jobs.iter().filter(|j| j.state == JobState::Completed && j.result.as_deref() == Some("succeeded")).count();
        let left = count(&runners).await?;
        ensure(done == 6 && left == 2, || format!("{done} of 6 jobs done, {left} runners"))
    })
    .await;

    // Uninstall team-b while team-a keeps running; then team-a with busy runners.
    scale_set_release(&sandbox, "team-b").uninstall(Helm::V4, &kubeconfig).unwrap();
    for _ in 0..2 {
        sandbox.fake.enqueue(job(&["team-a"], 3_000));
    }
    eventually("team-a busy", Duration::from_secs(60), || async {
        let running = sandbox.fake.with_state(|s| s.jobs().iter().filter(|j| j.state == JobState::Running).count());
        ensure(running == 2, || format!("{running} jobs running"))
    })
    .await;
    scale_set_release(&sandbox, "team-a").uninstall(Helm::V3, &kubeconfig).unwrap();
    let scale_sets: Api<AutoscalingRunnerSet> = Api::namespaced(client.clone(), RUNNER_NAMESPACE);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), RUNNER_NAMESPACE);
    eventually("uninstalled: jobs finished first, then everything is gone", Duration::from_secs(120), || async {
        let jobs = sandbox.fake.with_state(|s| s.jobs());
        let unfinished = jobs.iter().filter(|j| j.state != JobState::Completed).count();
        let failed = jobs.iter().filter(|j| j.result.as_deref().is_some_and(|r| r != "succeeded")).count();
        let left = count(&scale_sets).await? + count(&runners).await? + count(&all_sets).await?;
        let listeners = count(&pods).await?;
        let chart_secrets = secrets
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items
            .iter()
            .filter(|s| s.name_any().contains("gha-rs"))
            .count();
        let registered = sandbox.fake.with_state(|s| s.runners().len() + s.scale_sets().len());
        ensure(unfinished == 0 && failed == 0 && left == 0 && listeners == 1 && chart_secrets == 0 && registered == 0, || {
            format!(
                "{unfinished} unfinished, {failed} failed, {left} objects, {listeners} pods in {CONTROLLER_NAMESPACE} \
                 (the controller's only), {chart_secrets} chart secrets, {registered} registered on GitHub"
            )
        })
    })
    .await;
    Render::new("gha-autoscaler-controller", "arc", CONTROLLER_NAMESPACE).uninstall(Helm::V3, &kubeconfig).unwrap();
    sandbox.stop().await;
}
