//! The EphemeralRunner controller (§1.6): a JIT config in a Secret, one runner pod (mutated by the scale set's
//! policy), the pod state machine, failures with backoff, and removal from GitHub before the CR goes.
//!
//! Beyond ARC: a JIT config is never reused once a pod was created with it (#4588) — a failed pod's runner is
//! removed and re-registered; a pod that vanished (node loss, eviction, manual delete) counts as a failure or,
//! for a busy runner, a lost job (#4197); pods stuck pulling their image fail after `runner_start_timeout`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use gha_actions_client::{ActionsClient, Error as ActionsError};
use gha_crds::{AutoscalingRunnerSet, EphemeralRunner};
use gha_policy_engine::Outcome;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};

use crate::context::Context;
use crate::error::{Error, Result, ignore_not_found, is_status, optional};
use crate::expectations::Expectations;
use crate::finalizers;
use crate::github::GitHubSettings;
use crate::labels::{finalizer, label};
use crate::runner_pod::{self, RUNNER_CONTAINER, jit_key};

/// Wait after the n-th failure before the next pod (ARC's schedule).
const BACKOFF_SECONDS: [u64; 6] = [0, 5, 10, 20, 40, 80];
/// More failures than this and the EphemeralRunner is replaced by a fresh one.
const MAX_FAILURES: usize = 5;
/// A quota-blocked runner older than this is replaced (its registration is about to expire).
const QUOTA_GIVE_UP: Duration = Duration::from_secs(600);
/// Container waiting reasons that do not resolve by themselves.
const STUCK_REASONS: &[&str] =
    &["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError"];

/// Phases.
pub mod phase {
    /// Pod not running yet.
    pub const PENDING: &str = "Pending";
    /// Pod running.
    pub const RUNNING: &str = "Running";
    /// Runner exited 0.
    pub const SUCCEEDED: &str = "Succeeded";
    /// Cannot run.
    pub const FAILED: &str = "Failed";
    /// The runner version is deprecated (exit code 7).
    pub const OUTDATED: &str = "Outdated";
}

/// The controller's own state beside the shared context: its cache of runner pods and its recent writes.
pub struct Runners {
    /// The shared context.
    pub ctx: Arc<Context>,
    /// Runner pods (label `actions-ephemeral-runner=True`), as the pod watch last saw them.
    pub pods: Store<Pod>,
    /// What each runner's last writes should look like in the caches, until they do.
    pub writes: Expectations<Awaited>,
}

/// How a runner's last writes should show in the caches.
#[derive(Debug, Clone, Default)]
pub struct Awaited {
    /// The registration in its status: Some with a pod just created, None once discarded.
    runner_id: Option<i64>,
    /// The uid of a pod deleted that the pod cache may still show.
    deleted_pod: Option<String>,
}

impl Awaited {
    /// Whether the caches (the runner `er` and its pod `pod`) do not show these writes yet.
    fn pending(&self, er: &EphemeralRunner, pod: Option<&Pod>) -> bool {
        let deleted_pod_shown = pod.is_some_and(|p| p.uid().is_some() && p.uid() == self.deleted_pod);
        let created_pod_unseen = self.runner_id.is_some() && pod.is_none();
        self.runner_id != runner_id(er) || deleted_pod_shown || created_pod_unseen
    }
}

/// Runs the controller over the shared EphemeralRunner cache (`cache`, changes `changes`) until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    cache: Store<EphemeralRunner>,
    changes: impl futures::Stream<Item = Arc<EphemeralRunner>> + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let pod_filter = watcher::Config::default().labels(&format!("{}=True", label::EPHEMERAL_RUNNER));
    let (pods, writer) = reflector::store();
    let pod_changes = watcher(ctx.scoped::<Pod>(), pod_filter)
        .default_backoff()
        .modify(crate::caches::pod_state)
        .reflect(writer)
        .touched_objects();
    let concurrency = ctx.options.runner_max_concurrent_reconciles.max(1);
    let runners = Arc::new(Runners { ctx: ctx.clone(), pods, writes: Expectations::default() });
    Controller::for_shared_stream(changes, cache)
        .owns_stream(pod_changes)
        .with_config(Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, |er, error, runners| crate::retry_after_error(er, error, runners.ctx.clone()), runners)
        .for_each(|_| async {})
        .await;
}

struct Runner<'a> {
    ctx: &'a Context,
    runners: &'a Runners,
    er: &'a EphemeralRunner,
    name: String,
    uid: String,
    api: Api<EphemeralRunner>,
    pods: Api<Pod>,
    secrets: Api<Secret>,
}

/// One reconcile of one EphemeralRunner, from the watch caches: the runner as the runner watch last saw it and
/// its pod as the pod watch last saw it. When a cache is behind this controller's own last write (a registration
/// or a pod just created), the reconcile waits for the watch rather than reading again. Only the rare paths read
/// the API: a pod that vanished, a registration to recover from the JIT secret, failures recorded.
pub async fn reconcile(cached: Arc<EphemeralRunner>, runners: Arc<Runners>) -> Result<Action> {
    let namespace = cached.namespace().unwrap_or_default();
    let ctx = &runners.ctx;
    let runner = Runner {
        ctx,
        runners: &runners,
        er: &cached,
        name: cached.name_any(),
        uid: cached.uid().unwrap_or_default(),
        api: Api::namespaced(ctx.kube.clone(), &namespace),
        pods: Api::namespaced(ctx.kube.clone(), &namespace),
        secrets: Api::namespaced(ctx.kube.clone(), &namespace),
    };
    runner.reconcile().await
}

fn status_phase(er: &EphemeralRunner) -> &str {
    er.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

fn runner_id(er: &EphemeralRunner) -> Option<i64> {
    er.status.as_ref().and_then(|s| s.runner_id).filter(|id| *id > 0)
}

/// The runner has a job (set by the listener on JobStarted).
pub fn is_busy(er: &EphemeralRunner) -> bool {
    er.status.as_ref().and_then(|s| s.job_id.as_deref()).is_some_and(|j| !j.is_empty())
}

fn age(meta: &ObjectMeta) -> Duration {
    meta.creation_timestamp.as_ref().map_or(Duration::ZERO, |t| {
        let created = DateTime::<Utc>::from_timestamp(t.0.as_second(), 0).unwrap_or_else(Utc::now);
        (Utc::now() - created).to_std().unwrap_or_default()
    })
}

/// A runner registration: its id and name on GitHub.
struct Registration {
    id: i64,
    name: String,
}

impl Registration {
    /// The registration a JIT secret holds; None when the secret is unusable.
    fn of_secret(secret: &Secret) -> Option<Registration> {
        let value = |key: &str| {
            secret.data.as_ref().and_then(|d| d.get(key)).map(|b| String::from_utf8_lossy(&b.0).into_owned())
        };
        let id = value(jit_key::RUNNER_ID)?.parse::<i64>().ok().filter(|id| *id > 0)?;
        Some(Registration { id, name: value(jit_key::RUNNER_NAME)? })
    }
}

/// How long to wait for a watch that is behind this controller's own write.
const CACHE_WAIT: Duration = Duration::from_millis(500);

impl Runner<'_> {
    fn cached_pod(&self) -> Option<Arc<Pod>> {
        let namespace = self.er.namespace().unwrap_or_default();
        self.runners.pods.get(&ObjectRef::new(&self.name).within(&namespace))
    }

    async fn reconcile(&self) -> Result<Action> {
        let writes = &self.runners.writes;
        let cached_pod = self.cached_pod();
        if let Some(awaited) = writes.awaited(&self.uid) {
            if awaited.pending(self.er, cached_pod.as_deref()) {
                return Ok(Action::requeue(CACHE_WAIT));
            }
            writes.forget(&self.uid);
        }
        if self.er.metadata.deletion_timestamp.is_some() {
            return self.finalize().await;
        }
        if matches!(status_phase(self.er), phase::SUCCEEDED | phase::FAILED | phase::OUTDATED) {
            self.delete_pod_and_secret().await?;
            return Ok(Action::await_change());
        }
        self.ensure_finalizers().await?;
        let failures = self.er.status.as_ref().and_then(|s| s.failures.clone()).unwrap_or_default();
        if failures.len() > MAX_FAILURES {
            self.ctx
                .event(
                    self.er,
                    true,
                    "TooManyPodFailures",
                    format!("{} pod failures; replacing the runner", failures.len()),
                )
                .await;
            ignore_not_found(self.api.delete(&self.name, &DeleteParams::default()).await)?;
            return Ok(Action::await_change());
        }
        if let Some(pod) = cached_pod {
            if runner_id(self.er).is_none() && !self.copy_registration().await? {
                return Ok(Action::requeue(Duration::from_secs(1)));
            }
            return self.observe_pod(&pod).await;
        }
        if let Some(id) = runner_id(self.er) {
            // The JIT config was handed to a pod: a pod that is gone (the cache is not behind our writes; the
            // API confirms) is never replaced with the same config.
            return match optional(self.pods.get(&self.name).await)? {
                Some(pod) => self.observe_pod(&pod).await,
                None => self.pod_lost(&format!("runner-{id}"), None, "the runner pod disappeared").await,
            };
        }
        if let Some(wait) = backoff_remaining(&failures) {
            return Ok(Action::requeue(wait));
        }
        match self.register().await? {
            Some(registration) => self.create_pod(&registration).await,
            None => Ok(Action::requeue(Duration::from_secs(1))),
        }
    }

    async fn github(&self) -> Result<Arc<ActionsClient>> {
        let spec = &self.er.spec;
        let namespace = self.er.namespace().unwrap_or_default();
        self.ctx.github.client(&self.ctx.kube, GitHubSettings::of_runner(&namespace, spec)).await
    }

    /// Deletion: remove the runner from GitHub (a busy one is waited for), then the container-hook objects and
    /// both finalizers in one write. The pod and the JIT secret are the runner's own: the garbage collector
    /// removes them with it.
    async fn finalize(&self) -> Result<Action> {
        if self.er.finalizers().iter().any(|f| f == finalizer::RUNNER_REGISTRATION) {
            let id = match runner_id(self.er) {
                Some(id) => Some(id),
                // Deleted before its pod: the registration is only in the JIT secret.
                None => self.secret_registration().await?.map(|r| r.id),
            };
            if let Some(id) = id {
                match self.github().await {
                    Ok(client) => match client.remove_runner(id).await {
                        Ok(()) => {}
                        Err(ActionsError::JobStillRunning(_)) => {
                            tracing::info!(runner = %self.name, "runner still runs a job; waiting before removal");
                            return Ok(Action::requeue(Duration::from_secs(30)));
                        }
                        Err(e) => return Err(e.into()),
                    },
                    // The credentials are gone (e.g. a GitOps tool deleted the secret first): do not deadlock.
                    Err(Error::Invalid(why)) => {
                        self.ctx
                            .event(
                                self.er,
                                true,
                                "RunnerRemovalSkipped",
                                format!("cannot reach GitHub ({why}); the service expires the registration"),
                            )
                            .await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if runner_pod::uses_container_hooks(self.er.spec.spec.as_ref()) {
            let selector = ListParams::default().labels(&format!("{}={}", label::RUNNER_POD, self.name));
            for pod in self.pods.list(&selector).await?.items {
                ignore_not_found(self.pods.delete(&pod.name_any(), &DeleteParams::default()).await)?;
            }
            for secret in self.secrets.list(&selector).await?.items {
                ignore_not_found(self.secrets.delete(&secret.name_any(), &DeleteParams::default()).await)?;
            }
        }
        finalizers::remove(&self.api, self.er, &[finalizer::RUNNER_REGISTRATION, finalizer::EPHEMERAL_RUNNER]).await?;
        self.runners.writes.forget(&self.uid);
        Ok(Action::await_change())
    }

    async fn delete_pod_and_secret(&self) -> Result<()> {
        ignore_not_found(self.pods.delete(&self.name, &DeleteParams::default()).await)?;
        ignore_not_found(self.secrets.delete(&self.name, &DeleteParams::default()).await)?;
        Ok(())
    }

    async fn ensure_finalizers(&self) -> Result<()> {
        let missing: Vec<&str> = [finalizer::EPHEMERAL_RUNNER, finalizer::RUNNER_REGISTRATION]
            .into_iter()
            .filter(|f| !self.er.finalizers().iter().any(|have| have == f))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut with = self.er.clone();
        for name in missing {
            finalizers::ensure(&self.api, &with, name).await?;
            with = self.api.get(&self.name).await?;
        }
        Ok(())
    }

    async fn patch_status(&self, status: Value) -> Result<()> {
        let patch = json!({"status": status});
        ignore_not_found(self.api.patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch)).await)?;
        Ok(())
    }

    /// Registers the runner (a JIT config) and stores the config in its Secret; a registration of this runner
    /// whose pod was never created is taken up again from its secret. None = not yet (requeue).
    async fn register(&self) -> Result<Option<Registration>> {
        let client = self.github().await?;
        let scale_set_id = self.er.spec.runner_scale_set_id;
        let jit = match client.generate_jit_config(scale_set_id, &self.name).await {
            Ok(jit) => jit,
            Err(ActionsError::RunnerExists(_)) => {
                if let Some(registration) = self.secret_registration().await? {
                    return Ok(Some(registration));
                }
                match client.get_runner_by_name(&self.name).await? {
                    None => {}
                    Some(existing) if existing.runner_scale_set_id == scale_set_id => {
                        tracing::info!(runner = %self.name, id = existing.id, "removing a stale registration of this runner");
                        client.remove_runner(existing.id).await?;
                    }
                    Some(existing) => {
                        self.ctx
                            .event(
                                self.er,
                                true,
                                "RunnerNameTaken",
                                format!(
                                    "runner name is registered in scale set {}; replacing this runner",
                                    existing.runner_scale_set_id
                                ),
                            )
                            .await;
                        ignore_not_found(self.api.delete(&self.name, &DeleteParams::default()).await)?;
                    }
                }
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let meta = self.er.spec.ephemeral_runner_config_secret_metadata.clone().unwrap_or_default();
        let data = BTreeMap::from([
            (jit_key::TOKEN.to_string(), ByteString(jit.encoded_jit_config.into_bytes())),
            (jit_key::RUNNER_NAME.to_string(), ByteString(jit.runner.name.clone().into_bytes())),
            (jit_key::RUNNER_ID.to_string(), ByteString(jit.runner.id.to_string().into_bytes())),
            (jit_key::SCALE_SET_ID.to_string(), ByteString(scale_set_id.to_string().into_bytes())),
        ]);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: self.er.namespace(),
                labels: meta.labels,
                annotations: meta.annotations,
                owner_references: self.er.controller_owner_ref(&()).map(|r| vec![r]),
                ..Default::default()
            },
            data: Some(data),
            ..Default::default()
        };
        match self.secrets.create(&PostParams::default(), &secret).await {
            Ok(_) => Ok(Some(Registration { id: jit.runner.id, name: jit.runner.name })),
            Err(e) if is_status(&e, 409) => {
                // A secret left from an earlier registration: it goes, and the next attempt finds this
                // registration stale and starts over.
                ignore_not_found(self.secrets.delete(&self.name, &DeleteParams::default()).await)?;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The registration in the runner's JIT secret, read from the API; None when there is no usable secret.
    async fn secret_registration(&self) -> Result<Option<Registration>> {
        Ok(optional(self.secrets.get(&self.name).await)?.as_ref().and_then(Registration::of_secret))
    }

    /// A runner whose pod exists but whose status lacks the registration (written by an interrupted reconcile,
    /// or adopted): the registration is copied from the JIT secret; an unusable secret is deleted. Returns
    /// whether the status now has it.
    async fn copy_registration(&self) -> Result<bool> {
        match self.secret_registration().await? {
            Some(registration) => {
                self.patch_status(json!({"runnerId": registration.id, "runnerName": registration.name})).await?;
                Ok(true)
            }
            None => {
                self.ctx
                    .event(self.er, true, "CorruptedJitSecret", "the JIT secret is unusable; registering again".into())
                    .await;
                ignore_not_found(self.pods.delete(&self.name, &DeleteParams::default()).await)?;
                ignore_not_found(self.secrets.delete(&self.name, &DeleteParams::default()).await)?;
                Ok(false)
            }
        }
    }

    /// The policy's pod template, or the unmutated one when the policy cannot act (with an event).
    async fn mutated_template(&self) -> Result<Option<PodTemplateSpec>> {
        let template = runner_pod::template(self.er);
        let labels = self.er.labels();
        let (Some(ars_name), Some(ars_namespace)) =
            (labels.get(label::SCALE_SET_NAME), labels.get(label::SCALE_SET_NAMESPACE))
        else {
            return Ok(Some(template));
        };
        let policy = match self.ctx.policies.loaded(ars_namespace, ars_name) {
            Some(policy) => policy,
            None => {
                // Not loaded by the scale set's controller yet (or broken): load it here.
                let sets: Api<AutoscalingRunnerSet> = Api::namespaced(self.ctx.kube.clone(), ars_namespace);
                let Some(ars) = optional(sets.get(ars_name).await)? else { return Ok(Some(template)) };
                match self.ctx.policies.for_runner_set(&self.ctx.kube, &ars).await {
                    Ok(policy) => policy,
                    Err(e) => {
                        self.ctx
                            .event(self.er, true, "PolicyUnavailable", format!("{e}; creating the pod unmutated"))
                            .await;
                        return Ok(Some(template));
                    }
                }
            }
        };
        let json = serde_json::to_value(&template).map_err(|e| Error::Invalid(e.to_string()))?;
        let name = self.name.clone();
        let decided = tokio::task::spawn_blocking(move || {
            let decided = policy.mutate_runner_pod(&name, &json);
            policy.release_instances();
            decided
        })
        .await
        .map_err(|e| Error::Policy(e.to_string()))?;
        match decided {
            Ok(decided) => {
                if let Outcome::Fallback { error } = &decided.outcome {
                    self.ctx
                        .event(self.er, true, "PodMutationFailed", format!("{error}; creating the pod unmutated"))
                        .await;
                }
                serde_json::from_value(decided.value)
                    .map(Some)
                    .map_err(|e| Error::Policy(format!("the mutated pod template does not parse: {e}")))
            }
            Err(e) => {
                self.ctx
                    .event(
                        self.er,
                        true,
                        "PodMutationFailed",
                        format!("{e}; failure policy Fail: no pod until it succeeds"),
                    )
                    .await;
                self.patch_status(json!({"reason": "PodMutationFailed", "message": e.to_string()})).await?;
                Ok(None)
            }
        }
    }

    /// Creates the pod with the registration's JIT secret and writes the registration into the status in the
    /// same step: a runner with a `runnerId` has had a pod, and its JIT config is never handed to another.
    async fn create_pod(&self, registration: &Registration) -> Result<Action> {
        let Some(template) = self.mutated_template().await? else {
            return Ok(Action::requeue(Duration::from_secs(30)));
        };
        let pod = runner_pod::pod(self.er, template, &self.ctx.options.build_version);
        match self.pods.create(&PostParams::default(), &pod).await {
            Ok(_) => {
                let phase = if status_phase(self.er).is_empty() { phase::PENDING } else { status_phase(self.er) };
                self.patch_status(json!({
                    "runnerId": registration.id, "runnerName": registration.name, "phase": phase, "ready": false,
                }))
                .await?;
                self.runners.writes.wrote(&self.uid, |awaited| awaited.runner_id = Some(registration.id));
                Ok(Action::await_change())
            }
            Err(e) if is_status(&e, 409) => Ok(Action::requeue(Duration::from_secs(1))),
            Err(kube::Error::Api(status)) if status.code == 422 => {
                self.ctx.event(self.er, true, "InvalidPod", status.message.clone()).await;
                self.mark_failed(Some(registration.id), "InvalidPod", &status.message).await
            }
            Err(kube::Error::Api(status)) if status.code == 403 && status.message.contains("exceeded quota:") => {
                if age(&self.er.metadata) > QUOTA_GIVE_UP {
                    self.ctx
                        .event(
                            self.er,
                            true,
                            "QuotaExceeded",
                            "quota exceeded for 10 minutes; replacing the runner".into(),
                        )
                        .await;
                    ignore_not_found(self.api.delete(&self.name, &DeleteParams::default()).await)?;
                    return Ok(Action::await_change());
                }
                self.patch_status(json!({"reason": "QuotaExceeded", "message": status.message})).await?;
                Ok(Action::requeue(Duration::from_secs(30)))
            }
            Err(kube::Error::Api(status)) if status.code == 403 => {
                self.mark_failed(Some(registration.id), "Forbidden", &status.message).await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Phase Failed; the runner is removed from GitHub (the EphemeralRunnerSet deletes and replaces it).
    async fn mark_failed(&self, registered: Option<i64>, reason: &str, message: &str) -> Result<Action> {
        if let Some(id) = registered.or(runner_id(self.er)) {
            let client = self.github().await?;
            client.remove_runner(id).await?;
        }
        self.patch_status(json!({"phase": phase::FAILED, "reason": reason, "message": message, "ready": false}))
            .await?;
        Ok(Action::await_change())
    }

    async fn observe_pod(&self, pod: &Pod) -> Result<Action> {
        if pod.metadata.deletion_timestamp.is_some() {
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        let status = pod.status.clone().unwrap_or_default();
        let pod_phase = status.phase.as_deref().unwrap_or("");
        let runner = status.container_statuses.iter().flatten().find(|c| c.name == RUNNER_CONTAINER);
        let terminated = runner.and_then(|c| c.state.as_ref()).and_then(|s| s.terminated.as_ref());
        let failed_init = status
            .init_container_statuses
            .iter()
            .flatten()
            .filter_map(|c| c.state.as_ref().and_then(|s| s.terminated.as_ref()))
            .find(|t| t.exit_code != 0);
        if let Some(init) = failed_init {
            return self.pod_failed(pod, &format!("init container exited {}", init.exit_code)).await;
        }
        if let Some(terminated) = terminated {
            return match terminated.exit_code {
                0 => {
                    tracing::info!(runner = %self.name, "runner finished");
                    ignore_not_found(self.api.delete(&self.name, &DeleteParams::default()).await)?;
                    Ok(Action::await_change())
                }
                7 => {
                    self.ctx
                        .event(
                            self.er,
                            true,
                            "RunnerOutdated",
                            "the runner version is deprecated (exit code 7); update the runner image".into(),
                        )
                        .await;
                    self.mark_outdated().await
                }
                code => {
                    let reason = terminated.reason.clone().or(status.reason.clone()).unwrap_or_default();
                    self.pod_failed(pod, &format!("runner exited {code} {reason}")).await
                }
            };
        }
        if pod_phase == "Failed" {
            let reason = status.reason.clone().unwrap_or_else(|| "pod failed".into());
            return self.pod_failed(pod, &reason).await;
        }
        let Some(runner) = runner else { return Ok(Action::await_change()) };
        if let Some(waiting) = runner.state.as_ref().and_then(|s| s.waiting.as_ref())
            && let Some(reason) = waiting.reason.as_deref().filter(|r| STUCK_REASONS.contains(r))
        {
            let timeout = self.ctx.options.runner_start_timeout;
            if age(&pod.metadata) >= timeout {
                return self.pod_failed(pod, &format!("{reason} for {}s", timeout.as_secs())).await;
            }
            return Ok(Action::requeue(timeout.saturating_sub(age(&pod.metadata)).max(Duration::from_secs(1))));
        }
        let ready = status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True");
        let current = self.er.status.clone().unwrap_or_default();
        let phase = if pod_phase.is_empty() { phase::PENDING } else { pod_phase };
        if current.phase.as_deref() != Some(phase) || current.ready != Some(ready) {
            self.patch_status(
                json!({"phase": phase, "ready": ready, "reason": status.reason, "message": status.message}),
            )
            .await?;
        }
        Ok(Action::await_change())
    }

    async fn mark_outdated(&self) -> Result<Action> {
        if let Some(id) = runner_id(self.er) {
            self.github().await?.remove_runner(id).await?;
        }
        self.patch_status(
            json!({"phase": phase::OUTDATED, "reason": "Outdated", "message": "runner version deprecated"}),
        )
        .await?;
        Ok(Action::await_change())
    }

    /// ARC's "deleteEphemeralRunnerOrPod": the failed pod is deleted, then as [`Self::pod_lost`].
    async fn pod_failed(&self, pod: &Pod, why: &str) -> Result<Action> {
        ignore_not_found(self.pods.delete(&self.name, &DeleteParams::default()).await)?;
        let uid = pod.uid().unwrap_or_default();
        self.pod_lost(&uid, Some(uid.clone()), why).await
    }

    /// The runner's pod is gone (`deleted`: the uid of the pod we just deleted): a busy runner's job is lost and
    /// the runner goes; an idle one is removed from GitHub, its JIT config discarded and the failure (keyed
    /// `pod`) recorded.
    async fn pod_lost(&self, pod: &str, deleted: Option<String>, why: &str) -> Result<Action> {
        // Failures and the job are read afresh: a stale copy would lose a failure or miss a job.
        let Some(er) = optional(self.api.get(&self.name).await)? else { return Ok(Action::await_change()) };
        if is_busy(&er) {
            let job = er.status.as_ref().and_then(|s| s.job_id.clone()).unwrap_or_default();
            self.ctx.event(&er, true, "JobLost", format!("{why} while running job {job}; removing the runner")).await;
            ignore_not_found(self.api.delete(&self.name, &DeleteParams::default()).await)?;
            return Ok(Action::await_change());
        }
        if let Some(id) = runner_id(&er) {
            match self.github().await?.remove_runner(id).await {
                Ok(()) => {}
                Err(ActionsError::JobStillRunning(_)) => {
                    self.ctx
                        .event(
                            self.er,
                            true,
                            "JobLost",
                            format!("{why} after the runner took a job; removing the runner"),
                        )
                        .await;
                    ignore_not_found(self.api.delete(&self.name, &DeleteParams::default()).await)?;
                    return Ok(Action::await_change());
                }
                Err(e) => return Err(e.into()),
            }
        }
        ignore_not_found(self.secrets.delete(&self.name, &DeleteParams::default()).await)?;
        let mut failures = er.status.as_ref().and_then(|s| s.failures.clone()).unwrap_or_default();
        failures.insert(pod.to_string(), Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        self.ctx
            .event(self.er, true, "PodFailed", format!("{why}; failure {} of {MAX_FAILURES}", failures.len()))
            .await;
        self.patch_status(json!({
            "phase": phase::PENDING, "ready": false, "reason": "PodFailed", "message": why,
            "failures": failures, "runnerId": null, "runnerName": null,
        }))
        .await?;
        // Until the caches show the registration and the pod gone, the same loss must not count twice.
        self.runners.writes.wrote(&self.uid, |awaited| *awaited = Awaited { runner_id: None, deleted_pod: deleted });
        Ok(Action::requeue(Duration::from_secs(1)))
    }
}

/// Time left before the next pod after the recorded failures.
fn backoff_remaining(failures: &BTreeMap<String, String>) -> Option<Duration> {
    let last = failures.values().filter_map(|t| DateTime::parse_from_rfc3339(t).ok()).max()?;
    let wait = BACKOFF_SECONDS[(failures.len() - 1).min(BACKOFF_SECONDS.len() - 1)];
    let ready_at = last.with_timezone(&Utc) + chrono::TimeDelta::seconds(wait as i64);
    (ready_at - Utc::now()).to_std().ok().filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_follows_arcs_schedule() {
        let now = Utc::now().to_rfc3339();
        assert_eq!(backoff_remaining(&BTreeMap::from([("a".to_string(), now.clone())])), None);
        let two = BTreeMap::from([("a".to_string(), now.clone()), ("b".to_string(), now)]);
        let wait = backoff_remaining(&two).unwrap();
        assert!(wait <= Duration::from_secs(5) && wait > Duration::from_secs(3), "{wait:?}");
        let old = (Utc::now() - chrono::TimeDelta::seconds(100)).to_rfc3339();
        let many: BTreeMap<_, _> = (0..5).map(|i| (i.to_string(), old.clone())).collect();
        assert_eq!(backoff_remaining(&many), None);
        assert_eq!(backoff_remaining(&BTreeMap::new()), None);
    }
}
