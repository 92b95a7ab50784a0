//! The EphemeralRunnerSet controller (§1.5): creates and removes EphemeralRunners by ARC's patchID rules
//! ([`crate::runner_set_plan`]), lets the scale set's policy choose which idle runners go, rolls a changed runner
//! spec out in place (idle runners replaced at once, busy ones finish on the old spec), and keeps the runners'
//! proxy secret.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use gha_actions_client::Error as ActionsError;
use gha_crds::{AutoscalingRunnerSet, EphemeralRunner, EphemeralRunnerSet};
use gha_policy_engine::types::ScaleDownInput;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::reflector::Store;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use crate::context::Context;
use crate::ephemeral_runner::{is_busy, phase};
use crate::error::{Result, ignore_not_found, optional};
use crate::expectations::Expectations;
use crate::finalizers;
use crate::github::GitHubSettings;
use crate::labels::{annotation, finalizer, hash_of, label, name_suffix};
use crate::metrics::ScaleSetLabels;
use crate::runner_set_plan::{self, RunnerState, RunnerView};

/// ERS phase when a runner reported a deprecated version: no scaling until the runner spec changes.
pub const PHASE_OUTDATED: &str = "Outdated";

/// The controller's own state beside the shared context: the shared EphemeralRunner cache and the runners it
/// created or deleted that the cache may not show yet.
pub struct RunnerSets {
    /// The shared context.
    pub ctx: Arc<Context>,
    /// Every EphemeralRunner in scope, as the shared watch last saw it.
    pub cache: Store<EphemeralRunner>,
    /// Runners created and deleted, by EphemeralRunnerSet uid.
    pub writes: Expectations<RunnerChanges>,
}

/// The runners a reconcile created and deleted (by name).
#[derive(Debug, Clone, Default)]
pub struct RunnerChanges {
    created: Vec<String>,
    deleted: Vec<String>,
}

/// Runs the controller over the shared EphemeralRunner cache (`cache`, changes `runner_changes`) and the shared
/// EphemeralRunnerSet cache (changes `changes`) until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    cache: Store<EphemeralRunner>,
    runner_changes: impl futures::Stream<Item = Arc<EphemeralRunner>> + Send + 'static,
    changes: impl futures::Stream<Item = Arc<EphemeralRunnerSet>> + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let sets = Arc::new(RunnerSets { ctx: ctx.clone(), cache, writes: Expectations::default() });
    Controller::for_shared_stream(changes, ctx.caches.ephemeral_runner_sets.clone())
        .owns_shared_stream(runner_changes)
        .with_config(Config::default().debounce(Duration::from_millis(100)))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, |ers, error, sets| crate::retry_after_error(ers, error, sets.ctx.clone()), sets)
        .for_each(|_| async {})
        .await;
}

/// The hash of the runner template, stamped on the ERS once its runners follow it.
pub fn runner_spec_hash(ers: &EphemeralRunnerSet) -> String {
    hash_of(&ers.spec.ephemeral_runner_spec)
}

/// Name of the runners' proxy secret.
pub fn proxy_secret_name(ers: &EphemeralRunnerSet) -> String {
    format!("{}-{}-runner-proxy", ers.name_any(), name_suffix(&[&ers.namespace().unwrap_or_default()]))
}

struct RunnerSet<'a> {
    ctx: &'a Context,
    sets: &'a RunnerSets,
    ers: &'a EphemeralRunnerSet,
    uid: String,
    api: Api<EphemeralRunnerSet>,
    runners: Api<EphemeralRunner>,
}

/// How long to wait for the runner cache to show this controller's own creations and deletions.
const CACHE_WAIT: Duration = Duration::from_millis(200);

/// One reconcile of one EphemeralRunnerSet, over its runners as the shared cache shows them; while the cache
/// is behind the runners this controller created or deleted, it waits for the watch (no list requests).
pub async fn reconcile(ers: Arc<EphemeralRunnerSet>, sets: Arc<RunnerSets>) -> Result<Action> {
    let namespace = ers.namespace().unwrap_or_default();
    let ctx = &sets.ctx;
    let set = RunnerSet {
        ctx,
        sets: &sets,
        ers: &ers,
        uid: ers.uid().unwrap_or_default(),
        api: Api::namespaced(ctx.kube.clone(), &namespace),
        runners: Api::namespaced(ctx.kube.clone(), &namespace),
    };
    if sets.cache.wait_until_ready().await.is_err() {
        return Ok(Action::requeue(CACHE_WAIT));
    }
    set.reconcile().await
}

fn view(runner: &EphemeralRunner) -> RunnerView {
    let state = match runner.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("") {
        phase::RUNNING => RunnerState::Running,
        phase::SUCCEEDED => RunnerState::Finished,
        phase::FAILED => RunnerState::Failed,
        phase::OUTDATED => RunnerState::Outdated,
        _ => RunnerState::Pending,
    };
    RunnerView {
        name: runner.name_any(),
        state,
        deleting: runner.metadata.deletion_timestamp.is_some(),
        patch_id: runner.annotations().get(annotation::PATCH_ID).and_then(|v| v.parse().ok()).unwrap_or(0),
        registered: runner.status.as_ref().and_then(|s| s.runner_id).is_some_and(|id| id > 0),
        busy: is_busy(runner),
        created_unix_ms: runner.metadata.creation_timestamp.as_ref().map_or(0, |t| t.0.as_millisecond().max(0) as u64),
    }
}

impl RunnerSet<'_> {
    async fn reconcile(&self) -> Result<Action> {
        let runners = self.list_runners();
        if self.cache_behind(&runners) {
            return Ok(Action::requeue(CACHE_WAIT));
        }
        if self.ers.metadata.deletion_timestamp.is_some() {
            return self.finalize(&runners).await;
        }
        if finalizers::ensure(&self.api, self.ers, finalizer::EPHEMERAL_RUNNER_SET).await? {
            return Ok(Action::await_change());
        }
        let hash = runner_spec_hash(self.ers);
        if self.ers.annotations().get(annotation::INTEGRITY_HASH) != Some(&hash) {
            return self.roll_out(&runners, &hash).await;
        }
        let outdated = self.ers.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(PHASE_OUTDATED)
            || runners.iter().any(|r| view(r).state == RunnerState::Outdated);
        if outdated {
            // A deprecated runner version: stop scaling until the template changes (the ARS shows why).
            self.remove_idle(&runners).await?;
            self.update_status(&runners, PHASE_OUTDATED).await?;
            return Ok(Action::await_change());
        }
        self.ensure_proxy_secret().await?;
        if self.scale(&runners).await? {
            // The runners' own events bring the next reconcile, which counts them.
            return Ok(Action::requeue(self.ctx.options.sync_period));
        }
        self.update_status(&runners, "Running").await?;
        Ok(Action::requeue(self.ctx.options.sync_period))
    }

    /// This runner set's runners, from the shared cache.
    fn list_runners(&self) -> Vec<EphemeralRunner> {
        let namespace = self.ers.namespace();
        let owned = |r: &EphemeralRunner| {
            r.metadata.namespace == namespace
                && r.owner_references().iter().any(|o| o.controller == Some(true) && o.uid == self.uid)
        };
        self.sets.cache.state().iter().filter(|r| owned(r)).map(|r| EphemeralRunner::clone(r)).collect()
    }

    /// Whether the cache does not show yet a runner this controller created, or still shows one it deleted as
    /// live.
    fn cache_behind(&self, runners: &[EphemeralRunner]) -> bool {
        let Some(awaited) = self.sets.writes.awaited(&self.uid) else { return false };
        let live =
            |name: &String| runners.iter().any(|r| r.name_any() == *name && r.metadata.deletion_timestamp.is_none());
        let behind = awaited.created.iter().any(|name| !runners.iter().any(|r| r.name_any() == *name))
            || awaited.deleted.iter().any(live);
        if !behind {
            self.sets.writes.forget(&self.uid);
        }
        behind
    }

    /// Deletes the runner `name` (an absent one is fine), remembered until the cache shows it.
    async fn delete_runner(&self, name: &str) -> Result<()> {
        self.sets.writes.wrote(&self.uid, |changes| changes.deleted.push(name.to_string()));
        ignore_not_found(self.runners.delete(name, &DeleteParams::default()).await)?;
        Ok(())
    }

    /// Deletion: every runner goes (busy ones wait in their finalizer for their job), then the proxy secret.
    async fn finalize(&self, runners: &[EphemeralRunner]) -> Result<Action> {
        for runner in runners.iter().filter(|r| r.metadata.deletion_timestamp.is_none()) {
            self.delete_runner(&runner.name_any()).await?;
        }
        if !runners.is_empty() {
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
        let secrets: Api<Secret> = Api::namespaced(self.ctx.kube.clone(), &self.ers.namespace().unwrap_or_default());
        ignore_not_found(secrets.delete(&proxy_secret_name(self.ers), &DeleteParams::default()).await)?;
        self.ctx.metrics.forget(&ScaleSetLabels::from_labels(self.ers.labels()));
        finalizers::remove(&self.api, self.ers, &[finalizer::EPHEMERAL_RUNNER_SET]).await?;
        Ok(Action::await_change())
    }

    /// Deletes idle and terminated runners (busy ones finish). Returns how many live runners went.
    async fn remove_idle(&self, runners: &[EphemeralRunner]) -> Result<u32> {
        let mut removed = 0;
        for runner in runners.iter().filter(|r| r.metadata.deletion_timestamp.is_none() && !is_busy(r)) {
            let live = matches!(view(runner).state, RunnerState::Pending | RunnerState::Running);
            if live && !self.remove_from_github(runner).await? {
                continue;
            }
            self.delete_runner(&runner.name_any()).await?;
            removed += u32::from(live);
        }
        Ok(removed)
    }

    /// The runner template changed: idle runners are replaced now, busy ones finish on the old template.
    async fn roll_out(&self, runners: &[EphemeralRunner], hash: &str) -> Result<Action> {
        let removed = self.remove_idle(runners).await?;
        let remaining = runners.iter().filter(|r| r.metadata.deletion_timestamp.is_none() && is_busy(r)).count() as u32;
        let replicas = self.ers.spec.replicas.unwrap_or(0).max(0) as u32;
        let replace = removed.min(replicas.saturating_sub(remaining));
        self.ensure_proxy_secret().await?;
        for _ in 0..replace {
            self.create_runner().await?;
        }
        let patch = json!({"metadata": {"annotations": {annotation::INTEGRITY_HASH: hash}}});
        self.api.patch(&self.ers.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        if self.ers.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(PHASE_OUTDATED) {
            let status = json!({"status": {"phase": "Running"}});
            self.api.patch_status(&self.ers.name_any(), &PatchParams::default(), &Patch::Merge(&status)).await?;
        }
        tracing::info!(runner_set = %self.ers.name_any(), removed, replace, "runner template rolled out");
        Ok(Action::requeue(Duration::from_secs(1)))
    }

    /// RemoveRunner on GitHub for a registered runner; false when it took a job meanwhile.
    async fn remove_from_github(&self, runner: &EphemeralRunner) -> Result<bool> {
        let Some(id) = runner.status.as_ref().and_then(|s| s.runner_id).filter(|id| *id > 0) else {
            return Ok(true);
        };
        let spec = &self.ers.spec.ephemeral_runner_spec;
        let namespace = self.ers.namespace().unwrap_or_default();
        let client = self.ctx.github.client(&self.ctx.kube, GitHubSettings::of_runner(&namespace, spec)).await?;
        match client.remove_runner(id).await {
            Ok(()) => Ok(true),
            Err(ActionsError::JobStillRunning(_)) => {
                tracing::info!(runner = %runner.name_any(), "runner took a job; kept");
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates and removes runners by the plan. Returns whether it changed any.
    async fn scale(&self, runners: &[EphemeralRunner]) -> Result<bool> {
        let views: Vec<RunnerView> = runners.iter().map(view).collect();
        let replicas = self.ers.spec.replicas.unwrap_or(0).max(0) as u32;
        let patch_id = self.ers.spec.patch_id;
        let now = Utc::now().timestamp_millis().max(0) as u64;
        let mut offered: Option<ScaleDownInput> = None;
        let mut plan = runner_set_plan::plan(replicas, patch_id, &views, now, |input| {
            offered = Some(input.clone());
            arc_default::ArcDefault::order(input)
        });
        if let Some(input) = offered
            && let Some(chosen) = self.policy_selection(input).await
        {
            plan = runner_set_plan::plan(replicas, patch_id, &views, now, |_| chosen);
        }
        let failed: Vec<&RunnerView> = views.iter().filter(|r| r.state == RunnerState::Failed && !r.deleting).collect();
        let changed = !plan.cleanup.is_empty() || !failed.is_empty() || plan.create > 0 || !plan.remove.is_empty();
        for name in &plan.cleanup {
            self.delete_runner(name).await?;
        }
        // Failed runners were removed from GitHub when they failed; deleting them frees capacity (#4258).
        for runner in failed {
            self.delete_runner(&runner.name).await?;
        }
        for _ in 0..plan.create {
            self.create_runner().await?;
        }
        for name in &plan.remove {
            let Some(runner) = runners.iter().find(|r| r.name_any() == *name) else { continue };
            if self.remove_from_github(runner).await? {
                self.delete_runner(name).await?;
            }
        }
        if plan.create > 0 || !plan.remove.is_empty() {
            tracing::info!(
                runner_set = %self.ers.name_any(), replicas, patch_id, current = plan.current,
                create = plan.create, remove = plan.remove.len(), "scaled"
            );
        }
        Ok(changed)
    }

    /// The policy's choice of idle runners to remove; None = ARC's order (no policy, or no `select` hook).
    async fn policy_selection(&self, input: ScaleDownInput) -> Option<Vec<String>> {
        let ars_name = self.ers.labels().get(label::SCALE_SET_NAME)?;
        let sets: Api<AutoscalingRunnerSet> =
            Api::namespaced(self.ctx.kube.clone(), &self.ers.namespace().unwrap_or_default());
        let ars = optional(sets.get(ars_name).await).ok()??;
        ars.spec.policy.as_ref()?;
        let policy = self.ctx.policies.for_runner_set(&self.ctx.kube, &ars).await.ok()?;
        let decided = tokio::task::spawn_blocking(move || {
            let decided = policy.select(&input);
            policy.release_instances();
            decided
        })
        .await
        .ok()?;
        match decided {
            Ok(decided) => Some(decided.value),
            Err(e) => {
                tracing::warn!(runner_set = %self.ers.name_any(), error = %e, "scale-down selection failed; nothing removed");
                Some(Vec::new())
            }
        }
    }

    async fn create_runner(&self) -> Result<()> {
        let meta = self.ers.spec.ephemeral_runner_metadata.clone().unwrap_or_default();
        let mut labels = self.ers.labels().clone();
        labels.insert(label::COMPONENT.into(), "runner".into());
        labels.extend(meta.labels.unwrap_or_default());
        let mut annotations: BTreeMap<String, String> = self
            .ers
            .annotations()
            .iter()
            .filter(|(k, _)| !k.starts_with("kubectl.kubernetes.io/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        annotations.extend(meta.annotations.unwrap_or_default());
        annotations.insert(annotation::PATCH_ID.into(), self.ers.spec.patch_id.to_string());
        let mut spec = self.ers.spec.ephemeral_runner_spec.clone();
        if spec.proxy.is_some() {
            spec.proxy_secret_ref = Some(proxy_secret_name(self.ers));
        }
        let runner = EphemeralRunner {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-runner-", self.ers.name_any())),
                namespace: self.ers.namespace(),
                labels: Some(labels),
                annotations: Some(annotations),
                owner_references: self.ers.controller_owner_ref(&()).map(|r| vec![r]),
                finalizers: Some(vec![finalizer::EPHEMERAL_RUNNER.into(), finalizer::RUNNER_REGISTRATION.into()]),
                ..Default::default()
            },
            spec,
            status: None,
        };
        let created = self.runners.create(&PostParams::default(), &runner).await?;
        self.sets.writes.wrote(&self.uid, |changes| changes.created.push(created.name_any()));
        Ok(())
    }

    async fn ensure_proxy_secret(&self) -> Result<()> {
        let Some(proxy) = &self.ers.spec.ephemeral_runner_spec.proxy else { return Ok(()) };
        let namespace = self.ers.namespace().unwrap_or_default();
        let env = crate::secrets::proxy_env(&self.ctx.kube, &namespace, proxy).await?;
        let secrets: Api<Secret> = Api::namespaced(self.ctx.kube.clone(), &namespace);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(proxy_secret_name(self.ers)),
                namespace: Some(namespace),
                owner_references: self.ers.controller_owner_ref(&()).map(|r| vec![r]),
                ..Default::default()
            },
            data: Some(env.into_iter().map(|(k, v)| (k, ByteString(v.into_bytes()))).collect()),
            ..Default::default()
        };
        crate::apply::apply(&secrets, &secret).await.map(|_| ())
    }

    async fn update_status(&self, runners: &[EphemeralRunner], phase: &str) -> Result<()> {
        let views: Vec<RunnerView> = runners.iter().map(view).collect();
        let live = |state| views.iter().filter(|r| !r.deleting && r.state == state).count() as i32;
        let (pending, running, failed) =
            (live(RunnerState::Pending), live(RunnerState::Running), live(RunnerState::Failed));
        self.ctx.metrics.runners(
            &ScaleSetLabels::from_labels(self.ers.labels()),
            pending as u32,
            running as u32,
            failed as u32,
        );
        let status = gha_crds::EphemeralRunnerSetStatus {
            current_replicas: Some(pending + running + failed),
            pending_ephemeral_runners: Some(pending),
            running_ephemeral_runners: Some(running),
            failed_ephemeral_runners: Some(failed),
            finished_ephemeral_runners: Some(live(RunnerState::Finished)),
            deleting_ephemeral_runners: Some(views.iter().filter(|r| r.deleting).count() as i32),
            phase: Some(phase.into()),
        };
        if self.ers.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let patch = json!({"status": status});
        ignore_not_found(
            self.api.patch_status(&self.ers.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await,
        )?;
        Ok(())
    }
}
