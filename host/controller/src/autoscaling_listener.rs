//! The AutoscalingListener controller (§1.7): the listener's ServiceAccount, Role, RoleBinding, config and
//! proxy secrets and pod; the pod is recreated when it stops, is evicted, or its config changes. A listener that
//! exits with "scale set gone" makes the AutoscalingRunnerSet re-validate and re-register its scale set.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use gha_crds::{AutoscalingListener, AutoscalingRunnerSet};
use gha_listener::{EXIT_SCALE_SET_GONE, ListenerConfig};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use crate::caches;
use crate::context::Context;
use crate::error::{Error, Result, ignore_not_found, is_status, optional};
use crate::finalizers;
use crate::labels::{annotation, finalizer, hash_of, label};
use crate::listener_pod::{self, LISTENER_CONTAINER};
use crate::metrics::ScaleSetLabels;
use crate::policies;
use crate::secrets;

/// Runs the controller over the shared listener and listener-pod caches (changes `changes` and `pod_changes`)
/// until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    changes: impl futures::Stream<Item = Arc<AutoscalingListener>> + Send + 'static,
    pod_changes: impl futures::Stream<Item = Arc<Pod>> + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let namespace = ctx.options.controller_namespace.clone();
    let service_accounts =
        crate::owned_changes::<ServiceAccount>(ctx.kube.clone(), Some(&namespace), watcher::Config::default());
    Controller::for_shared_stream(changes, ctx.caches.listeners.clone())
        .owns_shared_stream(pod_changes)
        .owns_stream(service_accounts)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, crate::retry_after_error, ctx)
        .for_each(|_| async {})
        .await;
}

/// Largest precompiled policy stored in a Secret (Secrets are capped at 1 MiB).
const MAX_PRECOMPILED_BYTES: usize = 1000 * 1024;

/// How long a listener that reported "scale set gone" stays stopped before it is restarted anyway (when the
/// re-registration did not change its config, e.g. the 404 was transient).
const SCALE_SET_GONE_HOLD: Duration = Duration::from_secs(10);

/// With `"true"` on an AutoscalingRunnerSet, its listener writes every decision as a JSON line to stdout
/// (`kubectl logs` of the listener pod is then a decision log for `policy run --input`).
pub const DECISION_LOG_ANNOTATION: &str = "gha-autoscaler.dev/decision-log";

struct ListenerReconciler<'a> {
    ctx: &'a Context,
    al: &'a AutoscalingListener,
    namespace: String,
    api: Api<AutoscalingListener>,
}

/// One reconcile of one AutoscalingListener.
pub async fn reconcile(al: Arc<AutoscalingListener>, ctx: Arc<Context>) -> Result<Action> {
    let namespace = al.namespace().unwrap_or_default();
    let reconciler =
        ListenerReconciler { ctx: &ctx, al: &al, api: Api::namespaced(ctx.kube.clone(), &namespace), namespace };
    reconciler.reconcile().await
}

impl ListenerReconciler<'_> {
    fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.ctx.kube.clone(), namespace)
    }

    async fn reconcile(&self) -> Result<Action> {
        let name = self.al.name_any();
        if self.al.metadata.deletion_timestamp.is_some() {
            return self.finalize().await;
        }
        if finalizers::ensure(&self.api, self.al, finalizer::LISTENER).await? {
            return Ok(Action::await_change());
        }
        let runner_namespace = self.al.spec.autoscaling_runner_set_namespace.clone();
        let sets: Api<AutoscalingRunnerSet> = self.api(&runner_namespace);
        let set_name = &self.al.spec.autoscaling_runner_set_name;
        let Some(ars) = caches::get(&self.ctx.caches.runner_sets, &sets, &runner_namespace, set_name).await? else {
            ignore_not_found(self.api.delete(&name, &DeleteParams::default()).await)?;
            return Ok(Action::await_change());
        };
        let policy = self.ctx.policies.for_runner_set(&self.ctx.kube, &ars).await.ok();
        let label_pods = policy.as_ref().is_some_and(|p| p.manifest().pod_mutator);
        let applied = &self.ctx.applied;
        applied.apply(&self.api::<ServiceAccount>(&self.namespace), &listener_pod::service_account(self.al)).await?;
        applied.apply(&self.api::<Role>(&runner_namespace), &listener_pod::role(self.al, label_pods)).await?;
        applied.apply(&self.api::<RoleBinding>(&runner_namespace), &listener_pod::role_binding(self.al)).await?;
        self.ensure_policy_state(&ars).await?;
        if let Some(proxy) = &self.al.spec.proxy {
            let env = secrets::proxy_env(&self.ctx.kube, &runner_namespace, proxy).await?;
            let data = env.into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
            let secret = listener_pod::secret(self.al, listener_pod::proxy_secret_name(self.al), data);
            applied.apply(&self.api::<Secret>(&self.namespace), &secret).await?;
        }
        let precompiled = match &policy {
            Some(policy) => self.ensure_precompiled(&policy.manifest().sha256).await,
            None => None,
        };
        let config = self.config_data(&ars, precompiled.is_some()).await?;
        let config_hash = hash_of(&config);
        let secret = listener_pod::secret(self.al, listener_pod::config_secret_name(self.al), config);
        applied.apply(&self.api::<Secret>(&self.namespace), &secret).await?;
        let pod = listener_pod::pod(self.al, &self.ctx.options, &config_hash, precompiled.as_deref());
        self.ensure_pod(&pod, &ars).await
    }

    /// Creates, once, the empty ConfigMap the listener keeps its policy's state in (owned by the scale set, so it
    /// outlives listener pods and rollouts and goes with the scale set); only the listener writes it afterwards.
    async fn ensure_policy_state(&self, ars: &AutoscalingRunnerSet) -> Result<()> {
        let namespace = ars.namespace().unwrap_or_default();
        let name = listener_pod::policy_state_name(&self.al.name_any());
        let key = format!("{namespace}/{name}");
        if self.ctx.policy_states.lock().unwrap_or_else(|e| e.into_inner()).contains(&key) {
            return Ok(());
        }
        let mut labels = self.al.labels().clone();
        labels.insert(label::LISTENER_NAME.into(), self.al.name_any());
        let map = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(namespace.clone()),
                labels: Some(labels),
                owner_references: ars.controller_owner_ref(&()).map(|r| vec![r]),
                ..Default::default()
            },
            ..Default::default()
        };
        match self.api::<ConfigMap>(&namespace).create(&PostParams::default(), &map).await {
            Ok(_) => {}
            Err(e) if is_status(&e, 409) => {}
            Err(e) => return Err(e.into()),
        }
        self.ctx.policy_states.lock().unwrap_or_else(|e| e.into_inner()).insert(key);
        Ok(())
    }

    /// `config.json` (ARC's keys, the credentials copied from the scale set's secret, the policy) and, for a
    /// ConfigMap-sourced policy, `policy.wasm`.
    async fn config_data(&self, ars: &AutoscalingRunnerSet, precompiled: bool) -> Result<BTreeMap<String, Vec<u8>>> {
        let spec = &self.al.spec;
        let runner_namespace = &spec.autoscaling_runner_set_namespace;
        let data = self.ctx.github.secret(&self.ctx.kube, runner_namespace, &spec.github_config_secret).await?;
        let credentials = secrets::credentials(&spec.github_config_secret, &data)?;
        let mut config = ListenerConfig {
            configure_url: spec.github_config_url.clone(),
            ephemeral_runner_set_namespace: runner_namespace.clone(),
            ephemeral_runner_set_name: spec.ephemeral_runner_set_name.clone(),
            max_runners: i64::from(spec.max_runners),
            min_runners: i64::from(spec.min_runners),
            runner_scale_set_id: spec.runner_scale_set_id,
            runner_scale_set_name: crate::autoscaling_runner_set::scale_set_name(ars),
            log_level: self.ctx.options.listener_log_level.clone(),
            log_format: self.ctx.options.listener_log_format.clone(),
            metrics_addr: crate::options::bind_address(&self.ctx.options.listener_metrics_addr).unwrap_or_default(),
            metrics_endpoint: self.ctx.options.listener_metrics_endpoint.clone(),
            metrics: spec.metrics.clone(),
            policy: Some(self.ctx.policies.listener_spec(&self.ctx.kube, ars).await?),
            kubernetes_api_url: self.ctx.options.listener_kubernetes_api_url.clone(),
            policy_attributes: policies::scale_set_attributes(ars),
            precompiled_policies: precompiled.then(|| listener_pod::precompiled_dir_from_config().into()),
            policy_state_config_map: Some(listener_pod::policy_state_name(&self.al.name_any())),
            decision_log: (ars.annotations().get(DECISION_LOG_ANNOTATION).map(String::as_str) == Some("true"))
                .then(|| "-".to_string()),
            ..ListenerConfig::default()
        };
        match credentials {
            gha_actions_client::Credentials::Token(token) => config.github_token = token,
            gha_actions_client::Credentials::App { app_id, installation_id, private_key_pem } => {
                config.github_app_id = app_id;
                config.github_app_installation_id = installation_id;
                config.github_app_private_key = private_key_pem;
            }
        }
        if let Some(key_ref) = spec
            .github_server_tls
            .as_ref()
            .and_then(|t| t.certificate_from.as_ref())
            .and_then(|c| c.config_map_key_ref.as_ref())
        {
            let pem =
                secrets::read_config_map_key(&self.ctx.kube, runner_namespace, &key_ref.name, &key_ref.key).await?;
            config.server_root_ca = String::from_utf8_lossy(&pem).into_owned();
        }
        let json = serde_json::to_vec_pretty(&config).map_err(|e| Error::Invalid(format!("listener config: {e}")))?;
        let mut out = BTreeMap::from([("config.json".to_string(), json)]);
        if let Some(policy) = &spec.policy
            && let Some(bytes) = policies::config_map_bytes(&self.ctx.kube, runner_namespace, policy).await?
        {
            out.insert(policies::LISTENER_POLICY_FILE.into(), bytes);
        }
        Ok(out)
    }

    /// Creates the pod, or replaces one that stopped, was evicted, or was built from another config.
    async fn ensure_pod(&self, desired: &Pod, ars: &AutoscalingRunnerSet) -> Result<Action> {
        let pods: Api<Pod> = self.api(&self.namespace);
        let name = self.al.name_any();
        let labels = ScaleSetLabels::of_listener(self.al);
        let Some(pod) = caches::get(&self.ctx.caches.listener_pods, &pods, &self.namespace, &name).await? else {
            self.ctx.metrics.listener(&labels, false);
            return match pods.create(&PostParams::default(), desired).await {
                Ok(_) => {
                    let overridden = listener_pod::overridden_template_fields(self.al, &self.ctx.options);
                    if !overridden.is_empty() {
                        let note =
                            format!("listenerTemplate's listener container: not used: {}", overridden.join("; "));
                        self.ctx.event(self.al, true, "ListenerTemplateOverridden", note).await;
                    }
                    Ok(Action::await_change())
                }
                Err(e) if is_status(&e, 409) => Ok(Action::requeue(Duration::from_secs(1))),
                Err(e) => Err(e.into()),
            };
        };
        if pod.metadata.deletion_timestamp.is_some() {
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        let status = pod.status.clone().unwrap_or_default();
        let terminated = status
            .container_statuses
            .iter()
            .flatten()
            .find(|c| c.name == LISTENER_CONTAINER)
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.terminated.clone());
        let stale = pod.annotations().get(annotation::INTEGRITY_HASH)
            != desired.metadata.annotations.as_ref().and_then(|a| a.get(annotation::INTEGRITY_HASH));
        let evicted = status.reason.as_deref() == Some("Evicted");
        let stopped = terminated.is_some() || matches!(status.phase.as_deref(), Some("Failed" | "Succeeded"));
        if let Some(terminated) = &terminated
            && terminated.exit_code == i32::from(EXIT_SCALE_SET_GONE)
            && !stale
        {
            // A new listener would fail the same way until the scale set is registered again (which changes
            // this listener's config, making the pod stale): hold the stopped pod for a while instead of
            // restarting it in a tight loop, and ask the AutoscalingRunnerSet to check its scale set once.
            let stopped_for = terminated.finished_at.as_ref().map_or(Duration::MAX, |t| {
                Duration::try_from(k8s_openapi::jiff::Timestamp::now().duration_since(t.0)).unwrap_or_default()
            });
            if stopped_for < SCALE_SET_GONE_HOLD {
                if pod.annotations().get(annotation::SCALE_SET_CHECK).is_none() {
                    self.request_scale_set_check(&pods, &pod, ars).await?;
                }
                return Ok(Action::requeue(SCALE_SET_GONE_HOLD - stopped_for));
            }
        }
        if stale || evicted || stopped {
            let why = if stale {
                "config changed".to_string()
            } else if evicted {
                "evicted".to_string()
            } else {
                format!("listener exited {}", terminated.map_or(-1, |t| t.exit_code))
            };
            tracing::info!(listener = %name, %why, "recreating the listener pod");
            self.ctx.metrics.listener(&labels, false);
            ignore_not_found(pods.delete(&name, &DeleteParams::default()).await)?;
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        let running = status.phase.as_deref() == Some("Running");
        self.ctx.metrics.listener(&labels, running);
        Ok(Action::requeue(self.ctx.options.sync_period))
    }

    /// The Secret with this engine's compiled artifact of the policy, created from the controller's own compile
    /// the first time any listener needs it (all listeners of the policy share it). None when it cannot exist (too
    /// large for a Secret) or cannot be written now: the listener then compiles the policy itself.
    async fn ensure_precompiled(&self, sha256: &str) -> Option<String> {
        let engine = self.ctx.policies.engine();
        let name = listener_pod::precompiled_secret_name(&engine.precompiled_name(sha256));
        // One at a time: fifty scale sets starting together must not serialize fifty copies of the artifact.
        let mut known = self.ctx.precompiled.lock().await;
        if known.contains(&name) {
            return Some(name);
        }
        let secrets: Api<Secret> = self.api(&self.namespace);
        match secrets.get_metadata(&name).await {
            Ok(_) => {
                known.insert(name.clone());
                return Some(name);
            }
            Err(e) if is_status(&e, 404) => {}
            Err(e) => {
                tracing::debug!(error = %e, "cannot check the precompiled policy secret");
                return None;
            }
        }
        let (file, artifact) = engine.precompiled(sha256)?;
        if artifact.len() > MAX_PRECOMPILED_BYTES {
            tracing::debug!(sha256, size = artifact.len(), "precompiled policy too large for a Secret");
            return None;
        }
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([
                    ("app.kubernetes.io/part-of".to_string(), "gha-autoscaler".to_string()),
                    ("app.kubernetes.io/component".to_string(), "precompiled-policy".to_string()),
                ])),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(file, ByteString(artifact))])),
            ..Default::default()
        };
        match secrets.create(&PostParams::default(), &secret).await {
            Err(e) if !is_status(&e, 409) => {
                tracing::warn!(error = %e, "cannot store the precompiled policy; the listener will compile it");
                None
            }
            // Created, or created by another controller just now.
            _ => {
                known.insert(name.clone());
                Some(name)
            }
        }
    }

    /// Records the listener's "scale set gone" as an event and an annotation on the AutoscalingRunnerSet (which
    /// re-validates and re-registers), and marks the pod so that is done once per stopped listener.
    async fn request_scale_set_check(&self, pods: &Api<Pod>, pod: &Pod, ars: &AutoscalingRunnerSet) -> Result<()> {
        let note = "the listener reports the scale set is gone on GitHub; re-registering".to_string();
        self.ctx.event(self.al, true, "ScaleSetGone", note).await;
        let now = chrono::Utc::now().to_rfc3339();
        let patch = json!({"metadata": {"annotations": {annotation::SCALE_SET_CHECK: now}}});
        let sets: Api<AutoscalingRunnerSet> = self.api(&self.al.spec.autoscaling_runner_set_namespace);
        sets.patch(&ars.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        ignore_not_found(pods.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await)?;
        Ok(())
    }

    /// Deletion: the pod, secrets, RoleBinding, Role and ServiceAccount, then the finalizer.
    async fn finalize(&self) -> Result<Action> {
        let name = self.al.name_any();
        let runner_namespace = self.al.spec.autoscaling_runner_set_namespace.clone();
        let params = DeleteParams::default();
        let pods: Api<Pod> = self.api(&self.namespace);
        let pod_gone = optional(pods.get(&name).await)?.is_none();
        if !pod_gone {
            // Graceful: the listener deletes its session on SIGTERM.
            ignore_not_found(pods.delete(&name, &params).await)?;
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        let secrets: Api<Secret> = self.api(&self.namespace);
        ignore_not_found(secrets.delete(&listener_pod::config_secret_name(self.al), &params).await)?;
        ignore_not_found(secrets.delete(&listener_pod::proxy_secret_name(self.al), &params).await)?;
        ignore_not_found(self.api::<RoleBinding>(&runner_namespace).delete(&name, &params).await)?;
        ignore_not_found(self.api::<Role>(&runner_namespace).delete(&name, &params).await)?;
        ignore_not_found(self.api::<ServiceAccount>(&self.namespace).delete(&name, &params).await)?;
        self.ctx.applied.forget(&[
            name.clone(),
            listener_pod::config_secret_name(self.al),
            listener_pod::proxy_secret_name(self.al),
        ]);
        self.ctx.metrics.forget_listener(&ScaleSetLabels::of_listener(self.al));
        finalizers::remove(&self.api, self.al, &[finalizer::LISTENER]).await?;
        Ok(Action::await_change())
    }
}
