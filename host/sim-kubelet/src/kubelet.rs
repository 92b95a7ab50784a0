//! The kubelet loop: watch pods, run one task per pod on this node, report status through `/status`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::faults::PodFault;
use crate::runner::{self, RunnerOutcome};

/// Kubelet settings.
#[derive(Debug, Clone)]
pub struct KubeletOptions {
    /// The node pods are bound to.
    pub node_name: String,
    /// Base URL of the Actions service's simulated-runner API; runner pods exit 1 without it.
    pub actions_url: Option<String>,
    /// Image pull and container start.
    pub start_delay: Duration,
    /// Multiplies job durations (0.01 runs jobs a hundred times faster).
    pub time_scale: f64,
    /// The env var holding the runner's JIT config.
    pub jit_env: String,
    /// Containers whose command is one of these names run as real local processes (e.g. `gha-autoscaler` →
    /// the built binary, so listener pods run the real listener), with their env and Secret volumes.
    pub binaries: HashMap<String, std::path::PathBuf>,
    /// How those processes reach the API server as their pod's ServiceAccount (a real cluster); None: they get
    /// no credentials (the in-memory API needs none).
    pub service_accounts: Option<ServiceAccountAccess>,
    /// Where those processes' stdout and stderr go, as a kubelet keeps container logs:
    /// `<dir>/<namespace>_<pod>.log`. None: inherited from this process.
    pub log_dir: Option<std::path::PathBuf>,
}

/// The API server as seen from inside a pod.
#[derive(Debug, Clone)]
pub struct ServiceAccountAccess {
    /// The API server's URL.
    pub server: String,
    /// The cluster CA certificate (PEM file).
    pub ca_file: std::path::PathBuf,
}

impl Default for KubeletOptions {
    fn default() -> Self {
        KubeletOptions {
            node_name: "sim-node-1".into(),
            actions_url: None,
            start_delay: Duration::from_millis(50),
            time_scale: 1.0,
            jit_env: "ACTIONS_RUNNER_INPUT_JITCONFIG".into(),
            binaries: HashMap::new(),
            service_accounts: None,
            log_dir: None,
        }
    }
}

/// The per-pod tasks, by pod UID; aborted (killing their processes) when the kubelet stops.
#[derive(Default)]
struct PodTasks(HashMap<String, JoinHandle<()>>);

impl std::ops::Deref for PodTasks {
    type Target = HashMap<String, JoinHandle<()>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for PodTasks {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for PodTasks {
    fn drop(&mut self) {
        for task in self.0.values() {
            task.abort();
        }
    }
}

/// The simulated kubelet.
pub struct SimulatedKubelet {
    client: Client,
    options: KubeletOptions,
    http: reqwest::Client,
    faults: Mutex<HashMap<String, PodFault>>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// What the pod's main container does.
enum Workload {
    /// Play a runner with this JIT config.
    Runner(String),
    /// A runner pod whose JIT config cannot be read.
    BrokenRunner(String),
    /// A real local process.
    Process(crate::process::ProcessSpec),
    /// Anything else: run until deleted.
    Service,
}

/// Status writes: attempts and the pause between them.
const STATUS_ATTEMPTS: u32 = 300;
const STATUS_RETRY: Duration = Duration::from_millis(200);

impl SimulatedKubelet {
    /// A kubelet for `client`'s cluster.
    pub fn new(client: Client, options: KubeletOptions) -> Arc<Self> {
        Arc::new(SimulatedKubelet { client, options, http: reqwest::Client::new(), faults: Mutex::new(HashMap::new()) })
    }

    /// Makes the pod named `pod` misbehave when it starts.
    pub fn inject(&self, pod: &str, fault: PodFault) {
        self.faults.lock().unwrap_or_else(|e| e.into_inner()).insert(pod.into(), fault);
    }

    fn fault(&self, pod: &str) -> Option<PodFault> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner()).get(pod).copied()
    }

    /// Watches every pod and runs those bound to (or schedulable on) this node until the stream ends or this
    /// future is dropped (which stops every pod's task and process).
    pub async fn run(self: Arc<Self>) {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let mut running = PodTasks::default();
        let mut events = watcher(pods, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            let pod = match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => pod,
                Ok(watcher::Event::Delete(pod)) => {
                    if let Some(task) = running.remove(&pod.uid().unwrap_or_default()) {
                        task.abort();
                    }
                    continue;
                }
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "pod watch error; the watcher retries");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let uid = pod.uid().unwrap_or_default();
            if pod.metadata.deletion_timestamp.is_some() {
                if let Some(task) = running.remove(&uid) {
                    task.abort();
                }
                self.finish_deletion(&pod).await;
                continue;
            }
            let ours =
                pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_none_or(|n| n == self.options.node_name);
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
            if ours && !running.contains_key(&uid) && !matches!(phase, "Succeeded" | "Failed") {
                let kubelet = self.clone();
                running.insert(uid, tokio::spawn(async move { kubelet.live(pod).await }));
            }
            running.retain(|_, task| !task.is_finished());
        }
    }

    /// A bound pod being deleted stays until its kubelet has stopped its containers and deletes it for good
    /// (grace period 0), as a real kubelet does; unbound pods are gone at once.
    async fn finish_deletion(&self, pod: &Pod) {
        if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(self.options.node_name.as_str()) {
            return;
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        let params = DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() };
        if let Err(e) = api.delete(&pod.name_any(), &params).await {
            tracing::debug!(pod = %pod.name_any(), error = %e, "final pod deletion");
        }
    }

    /// Binds the pod to this node through the `binding` subresource, as the scheduler does (a pod's nodeName
    /// cannot be patched), retrying failed requests as the scheduler does. False when the pod is gone or bound
    /// elsewhere.
    async fn bind(&self, api: &Api<Pod>, name: &str) -> bool {
        let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.options.node_name}});
        for _ in 0..STATUS_ATTEMPTS {
            match api.create_subresource::<Value, Value>("binding", name, &PostParams::default(), &binding).await {
                Ok(_) => return true,
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => return false,
                Err(e) => {
                    tracing::warn!(pod = name, error = %e, "binding failed; retrying");
                    tokio::time::sleep(STATUS_RETRY).await;
                }
            }
        }
        false
    }

    /// Writes the pod's status, retrying failed writes as a kubelet's status manager does (until the pod is
    /// gone, for up to a minute).
    async fn set_status(&self, api: &Api<Pod>, name: &str, status: Value) {
        let patch = json!({"status": status});
        for _ in 0..STATUS_ATTEMPTS {
            match api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => return,
                Err(kube::Error::Api(e)) if e.code == 404 => return,
                Err(e) => {
                    tracing::debug!(pod = name, error = %e, "status update failed; retrying");
                    tokio::time::sleep(STATUS_RETRY).await;
                }
            }
        }
    }

    fn container_statuses(pod: &Pod, state: Value, ready: bool, restart: i32) -> Value {
        let containers = pod.spec.as_ref().map(|s| s.containers.clone()).unwrap_or_default();
        Value::Array(
            containers
                .iter()
                .map(|c| {
                    json!({"name": c.name, "image": c.image.clone().unwrap_or_default(), "imageID": "",
                           "ready": ready, "restartCount": restart, "started": ready, "state": state})
                })
                .collect(),
        )
    }

    /// Init containers have run to completion by the time the pod runs.
    fn init_container_statuses(pod: &Pod, finished: &str) -> Value {
        let init = pod.spec.as_ref().and_then(|s| s.init_containers.clone()).unwrap_or_default();
        Value::Array(
            init.iter()
                .map(|c| {
                    json!({"name": c.name, "image": c.image.clone().unwrap_or_default(), "imageID": "", "ready": true,
                           "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                           "finishedAt": finished}}})
                })
                .collect(),
        )
    }

    async fn workload(&self, pod: &Pod) -> Workload {
        let Some(spec) = pod.spec.as_ref() else { return Workload::Service };
        if let Some(process) = crate::process::spec_for(&self.client, pod, &self.options).await {
            return match process {
                Ok(process) => Workload::Process(process),
                Err(why) => Workload::BrokenRunner(why),
            };
        }
        let Some(env) =
            spec.containers.iter().flat_map(|c| c.env.iter().flatten()).find(|e| e.name == self.options.jit_env)
        else {
            return Workload::Service;
        };
        if let Some(value) = &env.value {
            return Workload::Runner(value.clone());
        }
        let Some(key_ref) = env.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()) else {
            return Workload::BrokenRunner("the JIT config env has neither value nor secretKeyRef".into());
        };
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        match secrets.get(&key_ref.name).await {
            Ok(secret) => {
                let from_data = secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(&key_ref.key))
                    .map(|b| String::from_utf8_lossy(&b.0).into_owned());
                let from_string = secret.string_data.as_ref().and_then(|d| d.get(&key_ref.key)).cloned();
                match from_data.or(from_string) {
                    Some(jit) => Workload::Runner(jit),
                    None => Workload::BrokenRunner(format!("secret {} has no key {}", key_ref.name, key_ref.key)),
                }
            }
            Err(e) => Workload::BrokenRunner(format!("secret {}: {e}", key_ref.name)),
        }
    }

    /// One pod's life on this node. It ends when the pod reaches a final phase (or could not be bound); a pod
    /// that stays Pending or Running lives until it is deleted, so its own status changes do not start it again.
    async fn live(&self, pod: Pod) {
        let name = pod.name_any();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        if pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none() && !self.bind(&api, &name).await {
            return;
        }
        let scheduled = json!([{"type": "PodScheduled", "status": "True", "lastTransitionTime": now()}]);
        let creating = json!({"waiting": {"reason": "ContainerCreating"}});
        self.set_status(
            &api,
            &name,
            json!({"phase": "Pending", "conditions": scheduled,
            "containerStatuses": Self::container_statuses(&pod, creating, false, 0)}),
        )
        .await;
        tokio::time::sleep(self.options.start_delay).await;
        let fault = self.fault(&name);
        if fault == Some(PodFault::ImagePull) {
            for reason in ["ErrImagePull", "ImagePullBackOff"] {
                let waiting = json!({"waiting": {"reason": reason, "message": "simulated image pull failure"}});
                self.set_status(
                    &api,
                    &name,
                    json!({"phase": "Pending",
                    "containerStatuses": Self::container_statuses(&pod, waiting, false, 0)}),
                )
                .await;
                tokio::time::sleep(self.options.start_delay).await;
            }
            return std::future::pending().await;
        }
        let started = now();
        let ready = fault != Some(PodFault::NeverReady);
        let running = json!({"running": {"startedAt": started}});
        self.set_status(&api, &name, json!({
            "phase": "Running", "podIP": "10.0.0.1", "startTime": started,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }, "lastTransitionTime": started}],
            "initContainerStatuses": Self::init_container_statuses(&pod, &started),
            "containerStatuses": Self::container_statuses(&pod, running, ready, 0)}))
            .await;
        let terminate = |exit_code: i32, reason: &str| json!({"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": started, "finishedAt": now()}});
        match fault {
            Some(PodFault::NeverReady) => return std::future::pending().await,
            Some(PodFault::OomKilled) => {
                tokio::time::sleep(self.options.start_delay).await;
                self.set_status(
                    &api,
                    &name,
                    json!({"phase": "Failed",
                    "containerStatuses": Self::container_statuses(&pod, terminate(137, "OOMKilled"), false, 0)}),
                )
                .await;
                return;
            }
            Some(PodFault::Evicted | PodFault::NodeLost) => {
                tokio::time::sleep(self.options.start_delay).await;
                let reason = if fault == Some(PodFault::Evicted) { "Evicted" } else { "NodeLost" };
                self.set_status(
                    &api,
                    &name,
                    json!({"phase": "Failed", "reason": reason,
                    "message": format!("simulated {reason}"),
                    "containerStatuses": Self::container_statuses(&pod, terminate(137, "Error"), false, 0)}),
                )
                .await;
                return;
            }
            _ => {}
        }
        let exit_code = match self.workload(&pod).await {
            Workload::Service => return std::future::pending().await,
            Workload::Process(process) => process.run().await,
            Workload::BrokenRunner(why) => RunnerOutcome::Broken(why).exit_code(),
            Workload::Runner(jit) => {
                let outcome = match &self.options.actions_url {
                    Some(url) => runner::play(&self.http, url, &jit, self.options.time_scale).await,
                    None => RunnerOutcome::Broken("the kubelet has no Actions service URL".into()),
                };
                tracing::debug!(pod = %name, ?outcome, "runner exited");
                outcome.exit_code()
            }
        };
        let exit_code = match fault {
            Some(PodFault::ExitCode(code)) => code,
            _ => exit_code,
        };
        let (phase, reason) = if exit_code == 0 { ("Succeeded", "Completed") } else { ("Failed", "Error") };
        self.set_status(
            &api,
            &name,
            json!({"phase": phase,
            "containerStatuses": Self::container_statuses(&pod, terminate(exit_code, reason), false, 0)}),
        )
        .await;
    }
}
