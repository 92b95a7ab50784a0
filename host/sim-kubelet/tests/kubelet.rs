//! The simulated kubelet on the in-memory API, playing runners against the fake Actions service.

use std::sync::Arc;
use std::time::Duration;

use gha_actions_client::ActionsClient;
use gha_actions_fake::{FakeActions, FakeOptions, JobSpec, JobState};
use gha_mem_kube::{MemKube, MemKubeOptions};
use gha_sim_kubelet::{KubeletOptions, PodFault, SimulatedKubelet};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::json;

struct World {
    _kube: MemKube,
    fake: FakeActions,
    actions: Arc<ActionsClient>,
    pods: Api<Pod>,
    secrets: Api<Secret>,
    kubelet: Arc<SimulatedKubelet>,
    scale_set: i64,
}

async fn world() -> World {
    world_with(std::collections::HashMap::new()).await
}

async fn world_with(binaries: std::collections::HashMap<String, std::path::PathBuf>) -> World {
    let kube = MemKube::start(MemKubeOptions::default()).await.unwrap();
    let client = Client::try_from(kube::Config::new(kube.url().parse().unwrap())).unwrap();
    let fake = FakeActions::start(FakeOptions { long_poll_hold: Duration::from_millis(100), ..Default::default() })
        .await
        .unwrap();
    let (actions, set) = fake.client_with_scale_set("acme", "linux").await.unwrap();
    let options = KubeletOptions {
        actions_url: Some(fake.base_url()),
        start_delay: Duration::from_millis(20),
        time_scale: 0.01,
        binaries,
        ..Default::default()
    };
    let kubelet = SimulatedKubelet::new(client.clone(), options);
    tokio::spawn(kubelet.clone().run());
    World {
        _kube: kube,
        fake,
        actions,
        pods: Api::namespaced(client.clone(), "default"),
        secrets: Api::namespaced(client, "default"),
        kubelet,
        scale_set: set.id,
    }
}

/// A runner pod as ARC builds it: the JIT config comes from a Secret through `secretKeyRef`.
async fn runner_pod(world: &World, name: &str, jit: &str) {
    let secret = Secret {
        metadata: kube::api::ObjectMeta { name: Some(name.into()), ..Default::default() },
        data: Some([("jitToken".to_string(), k8s_openapi::ByteString(jit.as_bytes().to_vec()))].into()),
        ..Default::default()
    };
    world.secrets.create(&PostParams::default(), &secret).await.unwrap();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "runner", "image": "ghcr.io/actions/actions-runner:latest",
            "env": [{"name": "ACTIONS_RUNNER_INPUT_JITCONFIG",
                     "valueFrom": {"secretKeyRef": {"name": name, "key": "jitToken"}}}]}]}
    }))
    .unwrap();
    world.pods.create(&PostParams::default(), &pod).await.unwrap();
}

async fn wait_for_phase(pods: &Api<Pod>, name: &str, phase: &str) -> Pod {
    for _ in 0..300 {
        let pod = pods.get(name).await.unwrap();
        if pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase) {
            return pod;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("pod {name} never reached {phase}: {:?}", pods.get(name).await.unwrap().status);
}

fn terminated(pod: &Pod) -> (i32, String) {
    let state = pod.status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0].state.clone().unwrap();
    let t = state.terminated.unwrap();
    (t.exit_code, t.reason.unwrap_or_default())
}

#[tokio::test]
async fn a_runner_pod_takes_its_job_runs_it_and_exits_zero() {
    let world = world().await;
    let job = world.fake.enqueue(JobSpec { duration_ms: 500, ..Default::default() });
    let jit = world.actions.generate_jit_config(world.scale_set, "linux-r1").await.unwrap();
    runner_pod(&world, "linux-r1", &jit.encoded_jit_config).await;
    let pod = wait_for_phase(&world.pods, "linux-r1", "Succeeded").await;
    assert_eq!(terminated(&pod), (0, "Completed".to_string()));
    assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some("sim-node-1"));
    let job = world.fake.with_state(|s| s.jobs()).into_iter().find(|j| j.id == job).unwrap();
    assert_eq!((job.state, job.result.as_deref()), (JobState::Completed, Some("succeeded")));

    // The same JIT config in a second pod is refused: that pod fails.
    runner_pod(&world, "linux-r1-again", &jit.encoded_jit_config).await;
    let pod = wait_for_phase(&world.pods, "linux-r1-again", "Failed").await;
    assert_eq!(terminated(&pod).0, 1);
}

#[tokio::test]
async fn pod_faults_show_as_kubernetes_reports_them() {
    let world = world().await;
    for (name, fault) in [("pull", PodFault::ImagePull), ("oom", PodFault::OomKilled), ("evicted", PodFault::Evicted)] {
        world.kubelet.inject(name, fault);
        let jit = world.actions.generate_jit_config(world.scale_set, name).await.unwrap();
        runner_pod(&world, name, &jit.encoded_jit_config).await;
    }
    let oom = wait_for_phase(&world.pods, "oom", "Failed").await;
    assert_eq!(terminated(&oom), (137, "OOMKilled".to_string()));
    let evicted = wait_for_phase(&world.pods, "evicted", "Failed").await;
    assert_eq!(evicted.status.unwrap().reason.as_deref(), Some("Evicted"));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let pull = world.pods.get("pull").await.unwrap();
    let status = pull.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    let waiting = status.container_statuses.unwrap()[0].state.clone().unwrap().waiting.unwrap();
    assert!(matches!(waiting.reason.as_deref(), Some("ErrImagePull" | "ImagePullBackOff")), "{waiting:?}");
}

#[tokio::test]
async fn mapped_commands_run_as_local_processes_with_their_secrets_mounted() {
    let world = world_with([("sh".to_string(), std::path::PathBuf::from("/bin/sh"))].into()).await;
    let secret = Secret {
        metadata: kube::api::ObjectMeta { name: Some("listener-config".into()), ..Default::default() },
        data: Some([("config.json".to_string(), k8s_openapi::ByteString(b"{\"hello\": 1}".to_vec()))].into()),
        ..Default::default()
    };
    world.secrets.create(&PostParams::default(), &secret).await.unwrap();
    for (name, needle) in [("listener-ok", "hello"), ("listener-bad", "absent")] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "restartPolicy": "Never",
                "initContainers": [{"name": "init", "image": "busybox"}],
                "containers": [{
                    "name": "listener", "image": "gha-autoscaler",
                    "command": ["sh", "-c", format!("grep -q {needle} \"$LISTENER_CONFIG_PATH\" || exit 3")],
                    "env": [{"name": "LISTENER_CONFIG_PATH", "value": "/etc/gha-listener/config.json"}],
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/gha-listener"}]}],
                "volumes": [{"name": "config", "secret": {"secretName": "listener-config"}}]}
        }))
        .unwrap();
        world.pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    let ok = wait_for_phase(&world.pods, "listener-ok", "Succeeded").await;
    assert_eq!(terminated(&ok).0, 0);
    let init = ok.status.unwrap().init_container_statuses.unwrap();
    assert_eq!(init[0].state.clone().unwrap().terminated.unwrap().reason.as_deref(), Some("Completed"));
    let bad = wait_for_phase(&world.pods, "listener-bad", "Failed").await;
    assert_eq!(terminated(&bad).0, 3);
}
