//! The AutoscalingRunnerSet controller (§1.4): registers the runner scale set on GitHub (reusing an existing
//! one), keeps its name and group in step, creates the EphemeralRunnerSet and the AutoscalingListener, rolls
//! runner-template changes out in place, reports status and conditions, and tears everything down in ARC's
//! order on deletion.
//!
//! Beyond ARC: an invalid spec (min > max, bad URL, missing or ambiguous credentials, a policy that does not
//! load) is a status condition, not a crash loop; a version mismatch is a condition, never a deletion (#4422);
//! a scale set GitHub garbage-collected is registered again (#3205); deletion never deadlocks on a secret a
//! GitOps tool removed first (#3440).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use gha_actions_client::model::{Label, RunnerScaleSet, RunnerScaleSetPatch, RunnerSetting};
use gha_actions_client::{ActionsClient, Error as ActionsError, GitHubConfig};
use gha_crds::{
    AutoscalingListener, AutoscalingListenerSpec, AutoscalingRunnerSet, EphemeralRunnerSet, EphemeralRunnerSetSpec,
    EphemeralRunnerSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::DynamicObject;
use kube::discovery::ApiResource;
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use crate::caches;
use crate::context::Context;
use crate::ephemeral_runner_set::PHASE_OUTDATED;
use crate::error::{Error, Result, ignore_not_found, is_status, optional};
use crate::finalizers;
use crate::github::GitHubSettings;
use crate::labels::{self, PART_OF, annotation, finalizer, label, name_suffix, scope_labels, version_allowed};

/// Runs the controller until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    changes: impl futures::Stream<Item = Arc<AutoscalingRunnerSet>> + Send + 'static,
    runner_set_changes: impl futures::Stream<Item = Arc<EphemeralRunnerSet>> + Send + 'static,
    listener_changes: impl futures::Stream<Item = Arc<AutoscalingListener>> + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    Controller::for_shared_stream(changes, ctx.caches.runner_sets.clone())
        .owns_shared_stream(runner_set_changes)
        .with_config(Config::default().debounce(Duration::from_millis(500)))
        .watches_shared_stream(listener_changes, |listener: Arc<AutoscalingListener>| {
            Some(
                ObjectRef::new(&listener.spec.autoscaling_runner_set_name)
                    .within(&listener.spec.autoscaling_runner_set_namespace),
            )
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, crate::retry_after_error, ctx)
        .for_each(|_| async {})
        .await;
}

/// The listener's name: `<ARS>-<hash(namespace@group@url)>-listener` (#4299).
pub fn listener_name(ars: &AutoscalingRunnerSet) -> String {
    let namespace = ars.namespace().unwrap_or_default();
    let group = ars.spec.runner_group.clone().unwrap_or_default();
    format!("{}-{}-listener", ars.name_any(), name_suffix(&[&namespace, &group, &ars.spec.github_config_url]))
}

/// The scale set's name on GitHub.
pub fn scale_set_name(ars: &AutoscalingRunnerSet) -> String {
    ars.spec.runner_scale_set_name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| ars.name_any())
}

/// The registered scale set id (the `runner-scale-set-id` annotation), if valid.
pub fn scale_set_id(ars: &AutoscalingRunnerSet) -> Option<i64> {
    ars.annotations().get(annotation::SCALE_SET_ID).and_then(|v| v.parse().ok()).filter(|id| *id > 0)
}

struct RunnerSetReconciler<'a> {
    ctx: &'a Context,
    ars: &'a AutoscalingRunnerSet,
    namespace: String,
    api: Api<AutoscalingRunnerSet>,
}

/// One reconcile of one AutoscalingRunnerSet.
pub async fn reconcile(ars: Arc<AutoscalingRunnerSet>, ctx: Arc<Context>) -> Result<Action> {
    let namespace = ars.namespace().unwrap_or_default();
    let reconciler =
        RunnerSetReconciler { ctx: &ctx, ars: &ars, api: Api::namespaced(ctx.kube.clone(), &namespace), namespace };
    reconciler.reconcile().await
}

/// A status condition.
fn condition(kind: &str, ok: bool, reason: &str, message: impl Into<String>) -> Condition {
    Condition {
        type_: kind.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
        observed_generation: None,
    }
}

impl RunnerSetReconciler<'_> {
    async fn reconcile(&self) -> Result<Action> {
        if self.ars.metadata.deletion_timestamp.is_some() {
            return self.finalize().await;
        }
        let mut conditions = Vec::new();
        // ARC's chart (`helm.sh/chart: gha-rs-<version>`) versions its scale sets by ARC's releases: adopted.
        let made_by_arc = self.ars.labels().get("helm.sh/chart").is_some_and(|chart| chart.starts_with("gha-rs-"));
        if let Some(version) = self.ars.labels().get(label::VERSION)
            && !made_by_arc
            && !version_allowed(version, &self.ctx.options.build_version)
        {
            conditions.push(condition(
                "VersionMismatch",
                true,
                "VersionMismatch",
                format!(
                    "made for version {version}, controller is {}; reconciled anyway (ARC would delete it): upgrade the chart or the controller",
                    self.ctx.options.build_version
                ),
            ));
        }
        let client = match self.validate().await {
            Ok(client) => client,
            Err(Error::Invalid(why)) => {
                conditions.push(condition("Ready", false, "InvalidSpec", why.clone()));
                self.set_status(None, "Pending", conditions, None).await?;
                self.ctx.event(self.ars, true, "InvalidSpec", why).await;
                return Ok(Action::requeue(Duration::from_secs(30)));
            }
            Err(e) => return Err(e),
        };
        let policy = match self.ctx.policies.for_runner_set(&self.ctx.kube, self.ars).await {
            Ok(policy) => policy,
            Err(Error::Invalid(why)) => {
                conditions.push(condition("PolicyReady", false, "PolicyInvalid", why.clone()));
                conditions.push(condition("Ready", false, "PolicyInvalid", why.clone()));
                self.set_status(None, "Pending", conditions, None).await?;
                self.ctx.event(self.ars, true, "PolicyInvalid", why).await;
                return Ok(Action::requeue(Duration::from_secs(30)));
            }
            Err(e) => return Err(e),
        };
        let manifest = policy.manifest();
        let policy_text = format!(
            "{} {} sha256:{}",
            manifest.info.name,
            manifest.info.version,
            &manifest.sha256[..12.min(manifest.sha256.len())]
        );
        conditions.push(condition("PolicyReady", true, "Loaded", format!("{} from {}", policy_text, manifest.origin)));
        let source = self.ctx.policies.source_status(&self.namespace, &self.ars.name_any());
        match &source.stale {
            Some(why) => conditions.push(condition("PolicyUpToDate", false, "SourceUnavailable", why.clone())),
            None if source.reference.is_some() => {
                conditions.push(condition("PolicyUpToDate", true, "Pinned", "serving what the OCI reference names"));
            }
            None => {}
        }

        if finalizers::ensure(&self.api, self.ars, finalizer::RUNNER_SET).await? {
            return Ok(Action::await_change());
        }
        let Some(id) = self.register(&client).await? else {
            return Ok(Action::requeue(Duration::from_millis(200)));
        };
        self.fix_drift(&client, id).await?;
        let ers = self.ensure_runner_set(id).await?;
        self.retire_other_runner_sets().await?;
        let outdated =
            ers.as_ref().and_then(|e| e.status.as_ref()).and_then(|s| s.phase.as_deref()) == Some(PHASE_OUTDATED);
        let listeners: Api<AutoscalingListener> =
            Api::namespaced(self.ctx.kube.clone(), &self.ctx.options.controller_namespace);
        let phase = if outdated {
            // No listener while runners cannot run: jobs stay queued for other runners instead of being taken.
            ignore_not_found(listeners.delete(&listener_name(self.ars), &DeleteParams::default()).await)?;
            conditions.push(condition(
                "Ready",
                false,
                "RunnerOutdated",
                "a runner reported a deprecated version (exit code 7); update the runner image in spec.template",
            ));
            "Outdated"
        } else {
            if let Some(ers) = &ers {
                self.ensure_listener(&listeners, id, ers).await?;
            }
            conditions.push(condition(
                "Ready",
                true,
                "Running",
                "scale set registered; listener and runner set reconciled",
            ));
            "Running"
        };
        self.set_status(ers.as_deref(), phase, conditions, Some((policy_text, source.reference))).await?;
        // An OCI tag is re-resolved on its schedule even when the sync period is longer.
        let recheck = source.recheck_in.map_or(self.ctx.options.sync_period, |d| d + Duration::from_millis(100));
        Ok(Action::requeue(recheck.min(self.ctx.options.sync_period)))
    }

    /// Checks the spec and returns the GitHub client, or [`Error::Invalid`] with the reason.
    async fn validate(&self) -> Result<Arc<ActionsClient>> {
        check_spec(&self.ars.spec, self.ctx.options.force_ghes)?;
        self.ctx.github.client(&self.ctx.kube, self.settings()).await
    }

    fn settings(&self) -> GitHubSettings<'_> {
        GitHubSettings {
            namespace: &self.namespace,
            config_url: &self.ars.spec.github_config_url,
            secret: &self.ars.spec.github_config_secret,
            proxy: self.ars.spec.proxy.as_ref(),
            tls: self.ars.spec.github_server_tls.as_ref(),
        }
    }

    async fn patch_metadata(&self, annotations: serde_json::Value) -> Result<()> {
        let patch = json!({"metadata": {"annotations": annotations}});
        self.api.patch(&self.ars.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        Ok(())
    }

    /// The scale set id, registering (or re-registering a garbage-collected set) when needed. None = the
    /// annotation was just written; the next reconcile continues.
    async fn register(&self, client: &ActionsClient) -> Result<Option<i64>> {
        if let Some(id) = scale_set_id(self.ars) {
            if !self.ars.annotations().contains_key(annotation::SCALE_SET_CHECK) {
                return Ok(Some(id));
            }
            match client.get_scale_set_by_id(id).await {
                Ok(_) => {
                    self.patch_metadata(json!({annotation::SCALE_SET_CHECK: null})).await?;
                    return Ok(Some(id));
                }
                Err(ActionsError::ScaleSetNotFound(_)) => {
                    self.ctx
                        .event(
                            self.ars,
                            true,
                            "ScaleSetGone",
                            format!("scale set {id} no longer exists on GitHub; registering it again"),
                        )
                        .await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let group_name = self.ars.spec.runner_group.clone().unwrap_or_default();
        let group_id = if group_name.is_empty() {
            1
        } else {
            client
                .get_runner_group_by_name(&group_name)
                .await
                .map_err(|e| match e {
                    ActionsError::RunnerGroup(why) => Error::Invalid(format!("runnerGroup: {why}")),
                    other => other.into(),
                })?
                .id
        };
        let name = scale_set_name(self.ars);
        let scale_set = match client.get_scale_set(group_id, &name).await? {
            Some(existing) => {
                tracing::info!(scale_set = %name, id = existing.id, "reusing the existing runner scale set");
                existing
            }
            None => {
                let mut names = vec![name.clone()];
                for extra in self.ars.spec.runner_scale_set_labels.iter().flatten() {
                    if !names.contains(extra) {
                        names.push(extra.clone());
                    }
                }
                let created = client
                    .create_scale_set(&RunnerScaleSet {
                        id: 0,
                        name: name.clone(),
                        runner_group_id: group_id,
                        runner_group_name: None,
                        labels: names.into_iter().map(Label::system).collect(),
                        runner_setting: RunnerSetting { disable_update: true },
                        created_on: None,
                        runner_jit_config_url: None,
                        statistics: None,
                    })
                    .await?;
                self.ctx
                    .event(
                        self.ars,
                        false,
                        "ScaleSetCreated",
                        format!("runner scale set {name} created with id {}", created.id),
                    )
                    .await;
                created
            }
        };
        let group = scale_set.runner_group_name.clone().unwrap_or(group_name);
        self.patch_metadata(json!({
            annotation::SCALE_SET_ID: scale_set.id.to_string(),
            annotation::SCALE_SET_NAME: scale_set.name,
            annotation::RUNNER_GROUP: group,
            annotation::SCALE_SET_CHECK: null,
        }))
        .await?;
        Ok(None)
    }

    /// Renames and group moves on GitHub (labels are fixed at creation, as in ARC).
    async fn fix_drift(&self, client: &ActionsClient, id: i64) -> Result<()> {
        let annotations = self.ars.annotations();
        let wanted_group = self.ars.spec.runner_group.clone().unwrap_or_default();
        let have_group = annotations.get(annotation::RUNNER_GROUP).cloned().unwrap_or_default();
        let wanted_name = scale_set_name(self.ars);
        let group_drift = !wanted_group.is_empty() && !wanted_group.eq_ignore_ascii_case(&have_group);
        let name_drift = annotations.get(annotation::SCALE_SET_NAME) != Some(&wanted_name);
        if !group_drift && !name_drift {
            return Ok(());
        }
        let mut patch = RunnerScaleSetPatch::default();
        if group_drift {
            patch.runner_group_id = Some(client.get_runner_group_by_name(&wanted_group).await?.id);
        }
        if name_drift {
            patch.name = Some(wanted_name.clone());
        }
        let updated = client.update_scale_set(id, &patch).await?;
        self.patch_metadata(json!({
            annotation::SCALE_SET_NAME: updated.name,
            annotation::RUNNER_GROUP: if group_drift { wanted_group } else { have_group },
        }))
        .await
    }

    /// Labels of everything the scale set owns.
    fn child_labels(&self, component: &str) -> BTreeMap<String, String> {
        let mut labels = labels::propagated(self.ars.labels(), &self.ctx.options.exclude_label_propagation_prefixes);
        labels.insert(label::PART_OF.into(), PART_OF.into());
        labels.insert(label::COMPONENT.into(), component.into());
        labels.insert(label::SCALE_SET_NAME.into(), labels::label_value(&self.ars.name_any()));
        labels.insert(label::SCALE_SET_NAMESPACE.into(), labels::label_value(&self.namespace));
        if let Ok(config) = GitHubConfig::parse(&self.ars.spec.github_config_url, self.ctx.options.force_ghes) {
            labels.extend(scope_labels(&config.scope));
        }
        labels
    }

    fn runner_spec(&self, id: i64) -> EphemeralRunnerSpec {
        let spec = &self.ars.spec;
        EphemeralRunnerSpec {
            github_config_url: spec.github_config_url.clone(),
            github_config_secret: spec.github_config_secret.clone(),
            github_server_tls: spec.github_server_tls.clone(),
            proxy: spec.proxy.clone(),
            vault_config: spec.vault_config.clone(),
            runner_scale_set_id: id,
            proxy_secret_ref: None,
            ephemeral_runner_config_secret_metadata: spec.ephemeral_runner_config_secret_metadata.clone(),
            metadata: spec.template.metadata.clone(),
            spec: spec.template.spec.clone(),
        }
    }

    /// Deletes runner sets this scale set owns under another name (ARC names them `<name>-<random>`): their
    /// runners drain (idle ones go, busy ones finish their job) while ours takes over.
    async fn retire_other_runner_sets(&self) -> Result<()> {
        let api: Api<EphemeralRunnerSet> = Api::namespaced(self.ctx.kube.clone(), &self.namespace);
        let label_value = labels::label_value(&self.ars.name_any());
        let store = &self.ctx.caches.ephemeral_runner_sets;
        let owned: Vec<Arc<EphemeralRunnerSet>> = if caches::filled(store) {
            store.state_filter(|ers| {
                ers.namespace().as_deref() == Some(self.namespace.as_str())
                    && ers.labels().get(label::SCALE_SET_NAME) == Some(&label_value)
            })
        } else {
            let selector = format!("{}={label_value}", label::SCALE_SET_NAME);
            api.list(&ListParams::default().labels(&selector)).await?.items.into_iter().map(Arc::new).collect()
        };
        let uid = self.ars.uid();
        for other in owned {
            let ours =
                other.owner_references().iter().any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref());
            if ours && other.name_any() != self.ars.name_any() && other.metadata.deletion_timestamp.is_none() {
                tracing::info!(runner_set = %other.name_any(), "retiring a runner set made under another name (ARC's)");
                ignore_not_found(api.delete(&other.name_any(), &DeleteParams::default()).await)?;
            }
        }
        Ok(())
    }

    /// Creates the EphemeralRunnerSet, or updates its template in place (its controller replaces idle runners;
    /// busy ones finish on the old template) and its metadata.
    async fn ensure_runner_set(&self, id: i64) -> Result<Option<Arc<EphemeralRunnerSet>>> {
        let api: Api<EphemeralRunnerSet> = Api::namespaced(self.ctx.kube.clone(), &self.namespace);
        let runner_spec = self.runner_spec(id);
        let mut labels = self.child_labels("runner-set");
        let meta = self.ars.spec.ephemeral_runner_set_metadata.clone().unwrap_or_default();
        labels.extend(meta.labels.unwrap_or_default());
        let mut annotations = meta.annotations.unwrap_or_default();
        annotations.insert(annotation::SCALE_SET_NAME.into(), scale_set_name(self.ars));
        annotations.insert(
            annotation::RUNNER_GROUP.into(),
            self.ars.annotations().get(annotation::RUNNER_GROUP).cloned().unwrap_or_default(),
        );
        let cache = &self.ctx.caches.ephemeral_runner_sets;
        let Some(existing) = caches::get(cache, &api, &self.namespace, &self.ars.name_any()).await? else {
            annotations.insert(annotation::INTEGRITY_HASH.into(), labels::hash_of(&runner_spec));
            let ers = EphemeralRunnerSet {
                metadata: ObjectMeta {
                    name: Some(self.ars.name_any()),
                    namespace: Some(self.namespace.clone()),
                    labels: Some(labels),
                    annotations: Some(annotations),
                    owner_references: self.ars.controller_owner_ref(&()).map(|r| vec![r]),
                    finalizers: Some(vec![finalizer::EPHEMERAL_RUNNER_SET.into()]),
                    ..Default::default()
                },
                spec: EphemeralRunnerSetSpec {
                    replicas: None,
                    patch_id: 0,
                    ephemeral_runner_spec: runner_spec,
                    ephemeral_runner_metadata: self.ars.spec.ephemeral_runner_metadata.clone(),
                },
                status: None,
            };
            let created = api.create(&PostParams::default(), &ers).await?;
            self.ctx
                .event(
                    self.ars,
                    false,
                    "RunnerSetCreated",
                    format!("EphemeralRunnerSet {} created", created.name_any()),
                )
                .await;
            return Ok(Some(Arc::new(created)));
        };
        if existing.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let labels_drift = labels.iter().any(|(k, v)| existing.labels().get(k) != Some(v));
        let annotations_drift = annotations.iter().any(|(k, v)| existing.annotations().get(k) != Some(v));
        let spec_drift = existing.spec.ephemeral_runner_spec != runner_spec
            || existing.spec.ephemeral_runner_metadata != self.ars.spec.ephemeral_runner_metadata;
        if !(labels_drift || annotations_drift || spec_drift) {
            return Ok(Some(existing));
        }
        let mut patch = json!({"metadata": {"labels": labels, "annotations": annotations}});
        if spec_drift {
            patch["spec"] = json!({
                "ephemeralRunnerSpec": runner_spec,
                "ephemeralRunnerMetadata": self.ars.spec.ephemeral_runner_metadata,
            });
            self.ctx
                .event(
                    self.ars,
                    false,
                    "RunnerTemplateChanged",
                    "rolling the new runner template out: idle runners are replaced, busy ones finish".into(),
                )
                .await;
        }
        Ok(Some(Arc::new(api.patch(&existing.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?)))
    }

    fn listener_spec(&self, id: i64, ers: &EphemeralRunnerSet) -> AutoscalingListenerSpec {
        let spec = &self.ars.spec;
        let options = &self.ctx.options;
        AutoscalingListenerSpec {
            github_config_url: spec.github_config_url.clone(),
            github_config_secret: spec.github_config_secret.clone(),
            runner_scale_set_id: id,
            autoscaling_runner_set_namespace: self.namespace.clone(),
            autoscaling_runner_set_name: self.ars.name_any(),
            ephemeral_runner_set_name: ers.name_any(),
            max_runners: spec.max_runners.unwrap_or(i32::MAX),
            min_runners: spec.min_runners.unwrap_or(0),
            image: options.image.clone(),
            image_pull_secrets: (!options.listener_image_pull_secrets.is_empty()).then(|| {
                options
                    .listener_image_pull_secrets
                    .iter()
                    .map(|name| k8s_openapi::api::core::v1::LocalObjectReference { name: name.clone() })
                    .collect()
            }),
            proxy: spec.proxy.clone(),
            github_server_tls: spec.github_server_tls.clone(),
            vault_config: spec.vault_config.clone(),
            metrics: spec.listener_metrics.clone(),
            template: spec.listener_template.clone(),
            config_secret_metadata: spec.listener_config_secret_metadata.clone(),
            service_account_metadata: spec.listener_service_account_metadata.clone(),
            role_metadata: spec.listener_role_metadata.clone(),
            role_binding_metadata: spec.listener_role_binding_metadata.clone(),
            policy: spec.policy.clone(),
        }
    }

    /// Creates the listener; one whose spec or metadata drifted (or that ARC made) is updated in place, so there
    /// is never a second listener object and its pod is replaced by the listener controller.
    async fn ensure_listener(&self, api: &Api<AutoscalingListener>, id: i64, ers: &EphemeralRunnerSet) -> Result<()> {
        let spec = self.listener_spec(id, ers);
        let meta = self.ars.spec.autoscaling_listener.clone().unwrap_or_default();
        let mut labels = self.child_labels("runner-scale-set-listener");
        labels.extend(meta.labels.unwrap_or_default());
        let mut annotations = meta.annotations.unwrap_or_default();
        annotations.insert(annotation::INTEGRITY_HASH.into(), labels::hash_of(&(&spec, &labels)));
        let name = listener_name(self.ars);
        let namespace = &self.ctx.options.controller_namespace;
        match caches::get(&self.ctx.caches.listeners, api, namespace, &name).await? {
            Some(existing) if existing.metadata.deletion_timestamp.is_some() => Ok(()),
            Some(existing)
                if existing.annotations().get(annotation::INTEGRITY_HASH)
                    == annotations.get(annotation::INTEGRITY_HASH) =>
            {
                Ok(())
            }
            Some(_) => {
                tracing::info!(listener = %name, "listener spec changed; updating the listener");
                let patch = json!({
                    "metadata": {"labels": labels, "annotations": annotations},
                    "spec": spec,
                });
                ignore_not_found(api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await)?;
                Ok(())
            }
            None => {
                let listener = AutoscalingListener {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(self.ctx.options.controller_namespace.clone()),
                        labels: Some(labels),
                        annotations: Some(annotations),
                        finalizers: Some(vec![finalizer::LISTENER.into()]),
                        ..Default::default()
                    },
                    spec,
                    status: None,
                };
                api.create(&PostParams::default(), &listener).await?;
                self.ctx.event(self.ars, false, "ListenerCreated", format!("AutoscalingListener {name} created")).await;
                Ok(())
            }
        }
    }

    async fn set_status(
        &self,
        ers: Option<&EphemeralRunnerSet>,
        phase: &str,
        mut conditions: Vec<Condition>,
        policy: Option<(String, Option<String>)>,
    ) -> Result<()> {
        let old = self.ars.status.clone().unwrap_or_default();
        for condition in &mut conditions {
            if let Some(previous) = old.conditions.iter().flatten().find(|c| c.type_ == condition.type_)
                && previous.status == condition.status
            {
                condition.last_transition_time = previous.last_transition_time.clone();
            }
        }
        let counts = ers.and_then(|e| e.status.clone()).unwrap_or_default();
        let status = gha_crds::AutoscalingRunnerSetStatus {
            current_runners: Some(counts.current_replicas.unwrap_or(0)),
            phase: Some(phase.into()),
            pending_ephemeral_runners: Some(counts.pending_ephemeral_runners.unwrap_or(0)),
            running_ephemeral_runners: Some(counts.running_ephemeral_runners.unwrap_or(0)),
            failed_ephemeral_runners: Some(counts.failed_ephemeral_runners.unwrap_or(0)),
            finished_ephemeral_runners: Some(counts.finished_ephemeral_runners.unwrap_or(0)),
            deleting_ephemeral_runners: Some(counts.deleting_ephemeral_runners.unwrap_or(0)),
            policy_reference: match &policy {
                Some((_, reference)) => reference.clone(),
                None => old.policy_reference.clone(),
            },
            policy: policy.map(|(text, _)| text).or(old.policy.clone()),
            conditions: Some(conditions),
        };
        if old == status {
            return Ok(());
        }
        let patch = json!({"status": status});
        ignore_not_found(
            self.api.patch_status(&self.ars.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await,
        )?;
        Ok(())
    }

    /// Deletion in ARC's order: listener, runner set (busy runners finish), the scale set on GitHub, the chart
    /// objects' cleanup-protection finalizers, then our finalizer.
    async fn finalize(&self) -> Result<Action> {
        if !self.ars.finalizers().iter().any(|f| f == finalizer::RUNNER_SET) {
            return Ok(Action::await_change());
        }
        let listeners: Api<AutoscalingListener> =
            Api::namespaced(self.ctx.kube.clone(), &self.ctx.options.controller_namespace);
        let name = listener_name(self.ars);
        if optional(listeners.get(&name).await)?.is_some() {
            ignore_not_found(listeners.delete(&name, &DeleteParams::default()).await)?;
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        let runner_sets: Api<EphemeralRunnerSet> = Api::namespaced(self.ctx.kube.clone(), &self.namespace);
        if optional(runner_sets.get(&self.ars.name_any()).await)?.is_some() {
            ignore_not_found(runner_sets.delete(&self.ars.name_any(), &DeleteParams::default()).await)?;
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
        if let Some(id) = scale_set_id(self.ars) {
            match self.ctx.github.client(&self.ctx.kube, self.settings()).await {
                Ok(client) => match client.delete_scale_set(id).await {
                    Ok(()) | Err(ActionsError::ScaleSetNotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                },
                Err(Error::Invalid(why)) => {
                    self.ctx
                        .event(
                            self.ars,
                            true,
                            "ScaleSetDeletionSkipped",
                            format!("cannot reach GitHub ({why}); delete scale set {id} by hand if it remains"),
                        )
                        .await;
                }
                Err(e) => return Err(e),
            }
            self.patch_metadata(json!({annotation::SCALE_SET_ID: null})).await?;
        }
        // The policy's stored state goes with the scale set (garbage collection would too, where it runs).
        let state = crate::listener_pod::policy_state_name(&name);
        let maps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(self.ctx.kube.clone(), &self.namespace);
        ignore_not_found(maps.delete(&state, &DeleteParams::default()).await)?;
        self.ctx.policy_states.lock().unwrap_or_else(|e| e.into_inner()).remove(&format!("{}/{state}", self.namespace));
        self.strip_cleanup_finalizers().await?;
        self.ctx.policies.forget(&self.namespace, &self.ars.name_any());
        let latest = match optional(self.api.get(&self.ars.name_any()).await)? {
            Some(latest) => latest,
            None => return Ok(Action::await_change()),
        };
        finalizers::remove(&self.api, &latest, &[finalizer::RUNNER_SET]).await?;
        Ok(Action::await_change())
    }

    /// Removes `actions.github.com/cleanup-protection` from the chart objects named in the `cleanup-*`
    /// annotations, in ARC's order. Gone or forbidden objects are skipped.
    async fn strip_cleanup_finalizers(&self) -> Result<()> {
        for (key, plural) in annotation::CLEANUP {
            let Some(name) = self.ars.annotations().get(key) else { continue };
            let (group, version, kind) = match plural {
                "rolebindings" => ("rbac.authorization.k8s.io", "v1", "RoleBinding"),
                "roles" => ("rbac.authorization.k8s.io", "v1", "Role"),
                "serviceaccounts" => ("", "v1", "ServiceAccount"),
                _ => ("", "v1", "Secret"),
            };
            let resource = ApiResource {
                group: group.into(),
                version: version.into(),
                api_version: if group.is_empty() { version.into() } else { format!("{group}/{version}") },
                kind: kind.into(),
                plural: plural.into(),
            };
            let api: Api<DynamicObject> = Api::namespaced_with(self.ctx.kube.clone(), &self.namespace, &resource);
            let object = match api.get(name).await {
                Ok(object) => object,
                Err(e) if is_status(&e, 404) || is_status(&e, 403) => continue,
                Err(e) => return Err(e.into()),
            };
            match finalizers::remove(&api, &object, &[finalizer::CLEANUP_PROTECTION]).await {
                Ok(()) => {}
                Err(e) if is_status(&e, 403) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// The checks of a spec that need no API call: bounds, the GitHub URL, the secret name, no vault.
///
/// # Errors
/// [`Error::Invalid`] naming the field.
pub fn check_spec(spec: &gha_crds::AutoscalingRunnerSetSpec, force_ghes: bool) -> Result<()> {
    let (min, max) = (spec.min_runners.unwrap_or(0), spec.max_runners.unwrap_or(i32::MAX));
    if min < 0 || max < 0 {
        return Err(Error::Invalid("minRunners and maxRunners must be >= 0".into()));
    }
    if min > max {
        return Err(Error::Invalid(format!("minRunners {min} is greater than maxRunners {max}")));
    }
    GitHubConfig::parse(&spec.github_config_url, force_ghes)
        .map_err(|e| Error::Invalid(format!("githubConfigUrl: {e}")))?;
    if spec.github_config_secret.is_empty() {
        return Err(Error::Invalid("githubConfigSecret is required".into()));
    }
    if spec.vault_config.as_ref().and_then(|v| v.kind.as_deref()).is_some_and(|k| !k.is_empty()) {
        return Err(Error::Invalid(
            "vaultConfig: gha-autoscaler does not read credentials from Azure Key Vault; keep them in the Secret \
             githubConfigSecret names"
                .into(),
        ));
    }
    let mut containers = spec.template.spec.iter().flat_map(|s| s.containers.iter());
    if !containers.any(|c| c.name == crate::runner_pod::RUNNER_CONTAINER) {
        return Err(Error::Invalid(
            "template.spec.containers has no container named \"runner\" (the one that gets the JIT config)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(template: serde_json::Value) -> gha_crds::AutoscalingRunnerSetSpec {
        serde_json::from_value(json!({
            "githubConfigUrl": "https://github.com/acme", "githubConfigSecret": "s", "template": template
        }))
        .unwrap()
    }

    #[test]
    fn a_template_without_a_runner_container_is_invalid() {
        let runner = spec(json!({"spec": {"containers": [{"name": "runner", "image": "r:1"}]}}));
        assert!(check_spec(&runner, false).is_ok());
        let other = spec(json!({"spec": {"containers": [{"name": "main", "image": "r:1"}]}}));
        assert!(matches!(check_spec(&other, false), Err(Error::Invalid(why)) if why.contains("runner")));
        assert!(check_spec(&spec(json!({})), false).is_err(), "an ARC object without a template");
    }

    #[test]
    fn vault_credentials_are_refused_with_the_reason() {
        let mut vault = spec(json!({"spec": {"containers": [{"name": "runner"}]}}));
        vault.vault_config = Some(gha_crds::VaultConfig { kind: Some("azure_key_vault".into()), ..Default::default() });
        assert!(matches!(check_spec(&vault, false), Err(Error::Invalid(why)) if why.contains("Azure Key Vault")));
    }
}
