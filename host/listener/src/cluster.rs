//! The Kubernetes side of the listener, behind a small interface so the loop is testable: patch the
//! EphemeralRunnerSet, read its counts, mark a runner busy, label a runner pod.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;

use gha_actions_client::model::JobFields;
use gha_crds::{EphemeralRunner, EphemeralRunnerSet};
use gha_policy_engine::types::{PodMetadata, RunnerCounts};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::{Map, Value, json};

/// What the listener does to the cluster.
pub trait Cluster: Send + Sync {
    /// Merge-patches `replicas` (0 → field removed) and `patchID` on the EphemeralRunnerSet.
    fn patch_runner_set(&self, replicas: u32, patch_id: i64) -> impl Future<Output = kube::Result<()>> + Send;
    /// The EphemeralRunnerSet's runner counts.
    fn runner_counts(&self) -> impl Future<Output = kube::Result<RunnerCounts>> + Send;
    /// Writes the job fields into the runner's EphemeralRunner status (absent runners are ignored).
    fn job_started(&self, runner_name: &str, job: &JobFields) -> impl Future<Output = kube::Result<()>> + Send;
    /// Sets labels and annotations on the runner's pod (absent pods are ignored).
    fn label_runner_pod(
        &self,
        runner_name: &str,
        metadata: &PodMetadata,
    ) -> impl Future<Output = kube::Result<()>> + Send;
    /// Records the message session the listener holds and who holds it (see [`RecordedSession`]).
    fn record_session(&self, id: &str, owner: &str) -> impl Future<Output = kube::Result<()>> + Send;
}

/// The message session a listener recorded on its EphemeralRunnerSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedSession {
    /// The session id.
    pub id: String,
    /// The listener pod that opened it; None when recorded by an older version.
    pub owner: Option<String>,
}

/// The real cluster through `kube::Client`.
#[derive(Clone)]
pub struct KubeCluster {
    runner_sets: Api<EphemeralRunnerSet>,
    runners: Api<EphemeralRunner>,
    pods: Api<Pod>,
    runner_set: String,
    /// The EphemeralRunnerSet's counts as a watch of it last saw them (None until the watch delivered it).
    counts: tokio::sync::watch::Receiver<Option<RunnerCounts>>,
    _watch: Arc<WatchTask>,
}

/// The task watching the EphemeralRunnerSet; stops with the last clone of the cluster.
struct WatchTask(tokio::task::JoinHandle<()>);

impl Drop for WatchTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl KubeCluster {
    /// The cluster side of the listener of `namespace/runner_set`; watches that EphemeralRunnerSet so each
    /// decision reads its counts without a request (must be called within a Tokio runtime).
    pub fn new(client: Client, namespace: &str, runner_set: &str) -> Self {
        let runner_sets: Api<EphemeralRunnerSet> = Api::namespaced(client.clone(), namespace);
        let (publish, counts) = tokio::sync::watch::channel(None);
        let only_this = watcher::Config::default().fields(&format!("metadata.name={runner_set}"));
        let changes = watcher(runner_sets.clone(), only_this).default_backoff().applied_objects();
        let task = tokio::spawn(async move {
            let mut changes = std::pin::pin!(changes);
            while let Some(change) = changes.next().await {
                match change {
                    Ok(set) => {
                        publish.send_replace(Some(counts_of(&set)));
                    }
                    Err(e) => tracing::debug!(error = %e, "watching the EphemeralRunnerSet"),
                }
            }
        });
        KubeCluster {
            runner_sets,
            runners: Api::namespaced(client.clone(), namespace),
            pods: Api::namespaced(client, namespace),
            runner_set: runner_set.into(),
            counts,
            _watch: Arc::new(WatchTask(task)),
        }
    }
}

fn counts_of(set: &EphemeralRunnerSet) -> RunnerCounts {
    let status = set.status.clone().unwrap_or_default();
    let count = |v: Option<i32>| v.unwrap_or(0).max(0) as u32;
    RunnerCounts {
        current: count(status.current_replicas),
        pending: count(status.pending_ephemeral_runners),
        running: count(status.running_ephemeral_runners),
        failed: count(status.failed_ephemeral_runners),
    }
}

/// Annotation on the EphemeralRunnerSet naming the message session its listener last opened.
pub const SESSION_ANNOTATION: &str = "gha-autoscaler.dev/listener-session";
/// Annotation naming the listener pod that opened that session.
pub const SESSION_OWNER_ANNOTATION: &str = "gha-autoscaler.dev/listener-session-owner";

impl KubeCluster {
    /// The session this scale set's listener last opened, if one was recorded.
    ///
    /// # Errors
    /// The API's refusal.
    pub async fn recorded_session(&self) -> kube::Result<Option<RecordedSession>> {
        let set = self.runner_sets.get(&self.runner_set).await?;
        let annotations = set.annotations();
        Ok(annotations
            .get(SESSION_ANNOTATION)
            .map(|id| RecordedSession { id: id.clone(), owner: annotations.get(SESSION_OWNER_ANNOTATION).cloned() }))
    }
}

fn ignore_not_found(result: kube::Result<()>) -> kube::Result<()> {
    match result {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        other => other,
    }
}

fn to_map(pairs: &[(String, String)]) -> Value {
    Value::Object(pairs.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<Map<_, _>>())
}

impl Cluster for KubeCluster {
    async fn record_session(&self, id: &str, owner: &str) -> kube::Result<()> {
        let patch = json!({"metadata": {"annotations": {SESSION_ANNOTATION: id, SESSION_OWNER_ANNOTATION: owner}}});
        self.runner_sets.patch(&self.runner_set, &PatchParams::default(), &Patch::Merge(&patch)).await.map(|_| ())
    }

    async fn patch_runner_set(&self, replicas: u32, patch_id: i64) -> kube::Result<()> {
        let replicas = if replicas == 0 { Value::Null } else { json!(replicas) };
        let patch = json!({"spec": {"replicas": replicas, "patchID": patch_id}});
        self.runner_sets.patch(&self.runner_set, &PatchParams::default(), &Patch::Merge(&patch)).await.map(|_| ())
    }

    async fn runner_counts(&self) -> kube::Result<RunnerCounts> {
        if let Some(counts) = *self.counts.borrow() {
            return Ok(counts);
        }
        Ok(counts_of(&self.runner_sets.get(&self.runner_set).await?))
    }

    async fn job_started(&self, runner_name: &str, job: &JobFields) -> kube::Result<()> {
        let repository = format!("{}/{}", job.owner_name, job.repository_name);
        let patch = json!({"status": {
            "jobRequestId": job.runner_request_id, "jobId": job.job_id, "jobRepositoryName": repository,
            "jobWorkflowRef": job.job_workflow_ref, "workflowRunId": job.workflow_run_id,
            "jobDisplayName": job.job_display_name,
        }});
        ignore_not_found(
            self.runners.patch_status(runner_name, &PatchParams::default(), &Patch::Merge(&patch)).await.map(|_| ()),
        )
    }

    async fn label_runner_pod(&self, runner_name: &str, metadata: &PodMetadata) -> kube::Result<()> {
        if metadata.labels.is_empty() && metadata.annotations.is_empty() {
            return Ok(());
        }
        let patch =
            json!({"metadata": {"labels": to_map(&metadata.labels), "annotations": to_map(&metadata.annotations)}});
        ignore_not_found(self.pods.patch(runner_name, &PatchParams::default(), &Patch::Merge(&patch)).await.map(|_| ()))
    }
}
