//! The whole product end to end: an AutoscalingRunnerSet applied to the in-memory API is registered on the
//! fake Actions service, its listener runs as a real `gha-autoscaler listener` process started by the simulated
//! kubelet, jobs are run by simulated runners, and deletion tears everything down in ARC's order.

use std::time::Duration;

use gha_actions_fake::{JobSpec, JobState};
use gha_crds::{AutoscalingListener, AutoscalingRunnerSet, EphemeralRunner, EphemeralRunnerSet};
use gha_sandbox::{CONTROLLER_NAMESPACE, RUNNER_NAMESPACE, Sandbox, SandboxOptions, ensure, eventually};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt};

fn job(labels: &[&str], duration_ms: u64) -> JobSpec {
    JobSpec {
        labels: labels.iter().map(|l| l.to_string()).collect(),
        repository: "acme/app".into(),
        workflow_ref: "acme/app/.github/workflows/ci.yml@refs/heads/main".into(),
        event_name: "push".into(),
        display_name: "build".into(),
        duration_ms,
    }
}

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxOptions {
        listener_binary: Some(env!("CARGO_BIN_EXE_gha-autoscaler").into()),
        ..SandboxOptions::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_set_runs_jobs_returns_to_its_minimum_and_is_torn_down() {
    let sandbox = sandbox().await;
    let sets: Api<AutoscalingRunnerSet> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let runners: Api<EphemeralRunner> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let runner_sets: Api<EphemeralRunnerSet> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let listeners: Api<AutoscalingListener> = Api::namespaced(sandbox.client.clone(), CONTROLLER_NAMESPACE);
    let listener_pods: Api<Pod> = Api::namespaced(sandbox.client.clone(), CONTROLLER_NAMESPACE);
    sandbox.apply(&sandbox.runner_set("linux", 1, 5, None)).await.unwrap();

    eventually("registration, runner set, listener and one idle runner", Duration::from_secs(30), || async {
        let ars = sets.get("linux").await.map_err(|e| e.to_string())?;
        let id = ars.annotations().get("runner-scale-set-id").cloned();
        let ers = runner_sets.get("linux").await.ok();
        let listener = listeners.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items.len();
        let pods = listener_pods.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let running_listener =
            pods.iter().any(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"));
        let idle = runners
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items
            .iter()
            .filter(|r| r.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        let ready = id.is_some() && ers.is_some() && listener == 1 && running_listener && idle == 1;
        ensure(ready, || {
            format!("id {id:?} ers {} listener {listener} running {running_listener} idle {idle}", ers.is_some())
        })
    })
    .await;
    let status = sets.get("linux").await.unwrap().status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert!(status.policy.unwrap().starts_with("arc-default"));

    for _ in 0..4 {
        sandbox.fake.enqueue(job(&["linux"], 1_500));
    }
    eventually("four jobs completed", Duration::from_secs(60), || async {
        let jobs = sandbox.fake.with_state(|s| s.jobs());
        let done = jobs.iter().filter(|j| j.state == JobState::Completed).count();
        ensure(done >= 4, || format!("{done} of 4 completed: {:?}", jobs.iter().map(|j| j.state).collect::<Vec<_>>()))
    })
    .await;
    let jobs = sandbox.fake.with_state(|s| s.jobs());
    assert!(jobs.iter().all(|j| j.result.as_deref() == Some("succeeded")), "{jobs:?}");

    eventually("back to one idle runner, none leaked", Duration::from_secs(60), || async {
        let ers = runners.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let registered = sandbox.fake.with_state(|s| s.runners().iter().filter(|r| !r.finished).count());
        ensure(ers.len() == 1 && registered == 1, || {
            format!("{} runners, {registered} registered on GitHub", ers.len())
        })
    })
    .await;

    sets.delete("linux", &DeleteParams::default()).await.unwrap();
    eventually("everything deleted", Duration::from_secs(60), || async {
        let ars = sets.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items.len();
        let ers = runner_sets.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items.len();
        let er = runners.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items.len();
        let pods = listener_pods.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items.len();
        let scale_sets = sandbox.fake.with_state(|s| s.scale_sets().len());
        ensure(ars + ers + er + pods + scale_sets == 0, || {
            format!("ars {ars} ers {ers} runners {er} listener pods {pods} scale sets {scale_sets}")
        })
    })
    .await;
    sandbox.stop().await;
}
