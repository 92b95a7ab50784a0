//! The whole product end to end: an AutoscalingRunnerSet applied to the in-memory API is registered on the
//! fake Actions service, its listener runs as a real `gha-autoscaler listener` process started by the simulated
//! kubelet, jobs are run by simulated runners, and deletion tears everything down in ARC's order.

use std::time::Duration;

use gha_actions_fake::JobState;
use gha_crds::{AutoscalingListener, AutoscalingRunnerSet, EphemeralRunner, EphemeralRunnerSet};
use gha_sandbox::{CONTROLLER_NAMESPACE, RUNNER_NAMESPACE, Sandbox, SandboxOptions, ensure, eventually, job};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt};

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

fn busy(runner: &EphemeralRunner) -> bool {
    runner.status.as_ref().and_then(|s| s.job_id.as_deref()).is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_scale_set_lets_busy_runners_finish_their_jobs() {
    let sandbox = sandbox().await;
    let sets: Api<AutoscalingRunnerSet> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let runners: Api<EphemeralRunner> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    sandbox.apply(&sandbox.runner_set("deleted", 0, 5, None)).await.unwrap();
    for _ in 0..3 {
        sandbox.fake.enqueue(job(&["deleted"], 3_000));
    }
    eventually("three busy runners", Duration::from_secs(30), || async {
        let items = runners.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let n = items.iter().filter(|r| busy(r)).count();
        ensure(n == 3, || format!("{n} busy"))
    })
    .await;
    sets.delete("deleted", &DeleteParams::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let left = runners.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(left.iter().filter(|r| busy(r)).count(), 3, "busy runners stay while their jobs run");
    eventually("everything gone after the jobs", Duration::from_secs(60), || async {
        let ars = sets.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items.len();
        let er = runners.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items.len();
        let scale_sets = sandbox.fake.with_state(|s| s.scale_sets().len());
        ensure(ars + er + scale_sets == 0, || format!("ars {ars} runners {er} scale sets {scale_sets}"))
    })
    .await;
    let jobs = sandbox.fake.with_state(|s| s.jobs());
    assert!(jobs.iter().all(|j| j.result.as_deref() == Some("succeeded")), "no job lost: {jobs:?}");
    sandbox.stop().await;
}

fn env_of(pod: &Pod, name: &str) -> Option<String> {
    pod.spec.as_ref()?.containers.iter().flat_map(|c| c.env.iter().flatten()).find(|e| e.name == name)?.value.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_change_under_load_replaces_idle_runners_and_lets_busy_ones_finish() {
    let sandbox = sandbox().await;
    let sets: Api<AutoscalingRunnerSet> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let runners: Api<EphemeralRunner> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let pods: Api<Pod> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    sandbox.apply(&sandbox.runner_set("rolling", 2, 6, None)).await.unwrap();
    for _ in 0..2 {
        sandbox.fake.enqueue(job(&["rolling"], 3_000));
    }
    eventually("two busy runners and two idle ones", Duration::from_secs(30), || async {
        let items = runners.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let n = items.iter().filter(|r| busy(r)).count();
        let running =
            items.iter().filter(|r| r.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")).count();
        ensure(n == 2 && running == 4, || format!("{n} busy, {running} running"))
    })
    .await;
    let busy_names: Vec<String> = runners
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|r| busy(r))
        .map(|r| r.name_any())
        .collect();
    let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [{
        "name": "runner", "image": "ghcr.io/actions/actions-runner:latest", "command": ["/home/runner/run.sh"],
        "env": [{"name": "ROLLOUT", "value": "v2"}]}]}}}});
    sets.patch("rolling", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.unwrap();
    eventually("idle runners replaced by v2 runners", Duration::from_secs(30), || async {
        let items = pods.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let v2 = items.iter().filter(|p| env_of(p, "ROLLOUT").as_deref() == Some("v2")).count();
        let old_busy = items.iter().filter(|p| busy_names.contains(&p.name_any())).count();
        ensure(v2 >= 2 && old_busy == 2, || format!("{v2} v2 pods, {old_busy} old busy pods"))
    })
    .await;
    eventually("jobs done on the old template; every runner on v2", Duration::from_secs(60), || async {
        let jobs = sandbox.fake.with_state(|s| s.jobs());
        let done = jobs.iter().filter(|j| j.result.as_deref() == Some("succeeded")).count();
        let items = pods.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let all_v2 = items.iter().all(|p| env_of(p, "ROLLOUT").as_deref() == Some("v2"));
        ensure(done == 2 && all_v2 && items.len() == 2, || {
            format!("{done} done, {} pods, all v2 {all_v2}", items.len())
        })
    })
    .await;
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_set_garbage_collected_by_github_is_registered_again() {
    let sandbox = sandbox().await;
    let sets: Api<AutoscalingRunnerSet> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    sandbox.apply(&sandbox.runner_set("collected", 1, 3, None)).await.unwrap();
    let id = |ars: &AutoscalingRunnerSet| ars.annotations().get("runner-scale-set-id").cloned();
    eventually("registered with a listener session", Duration::from_secs(30), || async {
        let first = id(&sets.get("collected").await.map_err(|e| e.to_string())?);
        let sessions = sandbox.fake.with_state(|s| s.sessions().len());
        ensure(first.is_some() && sessions == 1, || format!("id {first:?} sessions {sessions}"))
    })
    .await;
    let first = id(&sets.get("collected").await.unwrap());
    let old: i64 = first.clone().unwrap().parse().unwrap();
    sandbox.fake.with_state(|s| s.delete_scale_set(old));
    eventually("a new scale set id", Duration::from_secs(60), || async {
        let now = id(&sets.get("collected").await.map_err(|e| e.to_string())?);
        let exists = sandbox.fake.with_state(|s| s.scale_sets().len());
        ensure(now.is_some() && now != first && exists == 1, || format!("id {now:?}, {exists} scale sets"))
    })
    .await;
    sandbox.fake.enqueue(job(&["collected"], 200));
    eventually("a job runs on the new scale set", Duration::from_secs(60), || async {
        let jobs = sandbox.fake.with_state(|s| s.jobs());
        ensure(jobs.iter().any(|j| j.result.as_deref() == Some("succeeded")), || format!("{jobs:?}"))
    })
    .await;
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_is_recreated_after_a_crash_and_a_config_change() {
    let sandbox = sandbox().await;
    let sets: Api<AutoscalingRunnerSet> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let pods: Api<Pod> = Api::namespaced(sandbox.client.clone(), CONTROLLER_NAMESPACE);
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(sandbox.client.clone(), CONTROLLER_NAMESPACE);
    sandbox.apply(&sandbox.runner_set("phoenix", 0, 3, None)).await.unwrap();
    let running_listener = || async {
        let items = pods.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let running: Vec<String> = items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter_map(|p| p.uid())
            .collect();
        let sessions = sandbox.fake.with_state(|s| s.sessions().len());
        ensure(running.len() == 1 && sessions == 1, || {
            format!("{} running listener pods, {sessions} sessions", running.len())
        })?;
        Ok::<String, String>(running[0].clone())
    };
    eventually("a running listener", Duration::from_secs(30), || async { running_listener().await.map(|_| ()) }).await;
    let first = running_listener().await.unwrap();

    // The controller hands its compiled policy over in a Secret the listener pod mounts beside its config: the
    // listener loads it instead of compiling.
    let all = secrets.list(&ListParams::default()).await.unwrap().items;
    let config_secret = all.iter().find(|s| s.data.as_ref().is_some_and(|d| d.contains_key("config.json")));
    let data = config_secret.and_then(|s| s.data.clone()).expect("a listener config secret");
    let config: serde_json::Value = serde_json::from_slice(&data["config.json"].0).unwrap();
    assert_eq!(config["precompiled_policies"], "../gha-listener-precompiled");
    let precompiled =
        all.iter().find(|s| s.name_any().starts_with("gha-policy-")).expect("a precompiled policy secret");
    assert!(precompiled.data.as_ref().unwrap().keys().all(|k| k.ends_with(".cwasm")));
    let listener_pod = pods.list(&ListParams::default()).await.unwrap().items.remove(0);
    let volumes = listener_pod.spec.unwrap().volumes.unwrap_or_default();
    assert!(
        volumes
            .iter()
            .any(|v| v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == precompiled.metadata.name.as_deref())
    );

    // The listener pod is deleted (a crash, an eviction, a drained node): a new one opens a new session.
    let name = pods.list(&ListParams::default()).await.unwrap().items[0].name_any();
    pods.delete(&name, &DeleteParams::default()).await.unwrap();
    eventually("a new listener pod", Duration::from_secs(30), || async {
        let uid = running_listener().await?;
        ensure(uid != first, || "still the old pod".into())
    })
    .await;

    // A config change (maxRunners) reaches the listener: its config is rewritten and the pod replaced.
    let patch = serde_json::json!({"spec": {"maxRunners": 7}});
    sets.patch("phoenix", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.unwrap();
    eventually("the listener config says 7", Duration::from_secs(30), || async {
        let items = secrets.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let config = items
            .iter()
            .filter_map(|s| s.data.as_ref()?.get("config.json"))
            .map(|b| serde_json::from_slice::<serde_json::Value>(&b.0).unwrap_or_default())
            .next()
            .ok_or("no config secret")?;
        ensure(config["max_runners"] == 7, || format!("max_runners {}", config["max_runners"]))?;
        running_listener().await.map(|_| ())
    })
    .await;
    sandbox.stop().await;
}
