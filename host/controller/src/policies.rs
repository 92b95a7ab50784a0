//! The scale sets' policies as the controller uses them (pod mutation, scale-down selection, validation for the
//! ARS status): `spec.policy` resolved into an engine spec, loaded once per spec and shared.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gha_crds::{AutoscalingRunnerSet, PolicySourceSpec, PolicySpecCr};
use gha_policy_engine::types::ScaleSetRef;
use gha_policy_engine::{FailurePolicy, PolicyEngine, PolicySource, PolicySpec, ScaleSetPolicy};
use kube::{Client, ResourceExt};

use crate::error::{Error, Result};
use crate::labels::hash_of;
use crate::secrets;

/// The key of a ConfigMap-sourced component in the listener's config secret; the listener's config names it
/// relative to the config file.
pub const LISTENER_POLICY_FILE: &str = "policy.wasm";
/// Default ConfigMap key of a component.
const DEFAULT_CONFIG_MAP_KEY: &str = "policy.wasm";

/// Whether the policy's bytes must travel with the listener config (a ConfigMap source).
pub fn needs_bytes(spec: Option<&PolicySpecCr>) -> bool {
    spec.is_some_and(|s| s.source.config_map.is_some())
}

fn failure_policy(text: Option<&str>) -> Result<FailurePolicy> {
    match text.unwrap_or("Fallback") {
        "Fallback" => Ok(FailurePolicy::Fallback),
        "HoldLast" => Ok(FailurePolicy::HoldLast),
        "Fail" => Ok(FailurePolicy::Fail),
        other => Err(Error::Invalid(format!("policy.failurePolicy {other:?} is not Fallback, HoldLast or Fail"))),
    }
}

/// A source, with a ConfigMap read into bytes (`bytes_for_listener` = false) or named as the file the listener
/// finds beside its config (`true`).
async fn source(kube: &Client, namespace: &str, spec: &PolicySourceSpec, for_listener: bool) -> Result<PolicySource> {
    match (&spec.built_in, &spec.config_map, &spec.url) {
        (Some(name), None, None) => Ok(PolicySource::BuiltIn(name.clone())),
        (None, Some(map), None) => {
            if for_listener {
                return Ok(PolicySource::File(LISTENER_POLICY_FILE.into()));
            }
            let key = map.key.as_deref().unwrap_or(DEFAULT_CONFIG_MAP_KEY);
            let bytes = secrets::read_config_map_key(kube, namespace, &map.name, key).await?;
            Ok(PolicySource::Bytes {
                origin: format!("configmap {namespace}/{} key {key}", map.name),
                bytes: bytes.into(),
            })
        }
        (None, None, Some(url)) => Ok(PolicySource::Url { url: url.url.clone(), sha256: url.sha256.clone() }),
        _ => Err(Error::Invalid("policy.source must set exactly one of builtIn, configMap, url".into())),
    }
}

/// The component bytes of a ConfigMap source (for the listener's config secret).
pub async fn config_map_bytes(kube: &Client, namespace: &str, spec: &PolicySpecCr) -> Result<Option<Vec<u8>>> {
    let Some(map) = &spec.source.config_map else { return Ok(None) };
    let key = map.key.as_deref().unwrap_or(DEFAULT_CONFIG_MAP_KEY);
    secrets::read_config_map_key(kube, namespace, &map.name, key).await.map(Some)
}

/// `spec.policy` as the engine's spec (absent = `arc-default`).
///
/// # Errors
/// An invalid source or failure policy, a missing ConfigMap.
pub async fn resolve(
    kube: &Client,
    namespace: &str,
    cr: Option<&PolicySpecCr>,
    for_listener: bool,
) -> Result<PolicySpec> {
    let Some(cr) = cr else { return Ok(PolicySpec::built_in("arc-default")) };
    let shadow = match &cr.shadow {
        Some(shadow) => {
            let mut spec = PolicySpec::built_in("arc-default");
            spec.source = source(kube, namespace, &shadow.source, for_listener).await?;
            spec.config = shadow.config.clone().unwrap_or_default();
            Some(Box::new(spec))
        }
        None => None,
    };
    Ok(PolicySpec {
        source: source(kube, namespace, &cr.source, for_listener).await?,
        config: cr.config.clone().unwrap_or_default(),
        failure_policy: failure_policy(cr.failure_policy.as_deref())?,
        limits: cr.limits.unwrap_or_default(),
        allow_wasi: cr.allow_wasi.unwrap_or(false),
        shadow,
        permissions: cr.permissions.clone().unwrap_or_default(),
    })
}

/// What policies see of a scale set: its name, id, group, and attributes `label:<scale-set label>` = `true`.
pub fn scale_set_ref(ars: &AutoscalingRunnerSet) -> ScaleSetRef {
    let id = crate::autoscaling_runner_set::scale_set_id(ars).map_or(0, |id| id as u64);
    let attributes = scale_set_attributes(ars);
    ScaleSetRef {
        namespace: ars.namespace().unwrap_or_default(),
        name: ars.name_any(),
        id,
        runner_group: ars.spec.runner_group.clone().unwrap_or_default(),
        attributes,
    }
}

/// `label:<name>` = `true` for the scale set's name and each extra label.
pub fn scale_set_attributes(ars: &AutoscalingRunnerSet) -> Vec<(String, String)> {
    let name = ars.spec.runner_scale_set_name.clone().unwrap_or_else(|| ars.name_any());
    std::iter::once(name)
        .chain(ars.spec.runner_scale_set_labels.iter().flatten().cloned())
        .map(|label| (format!("label:{label}"), "true".to_string()))
        .collect()
}

/// Policies loaded for scale sets, by ARS and spec.
pub struct Policies {
    engine: Arc<PolicyEngine>,
    loaded: Mutex<HashMap<(String, String), (String, Loaded)>>,
}

/// A load result, kept so a broken policy is not recompiled on every reconcile.
type Loaded = std::result::Result<Arc<ScaleSetPolicy>, String>;

impl Policies {
    /// A registry over `engine`.
    pub fn new(engine: Arc<PolicyEngine>) -> Self {
        Policies { engine, loaded: Mutex::default() }
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<PolicyEngine> {
        &self.engine
    }

    /// The ARS's policy, loaded (and configured) on first use or when its spec changed. A failure is remembered
    /// until the spec changes.
    ///
    /// # Errors
    /// The policy cannot be resolved, loaded or configured.
    pub async fn for_runner_set(&self, kube: &Client, ars: &AutoscalingRunnerSet) -> Result<Arc<ScaleSetPolicy>> {
        let key = (ars.namespace().unwrap_or_default(), ars.name_any());
        let scale_set = scale_set_ref(ars);
        let fingerprint = hash_of(&(&ars.spec.policy, &scale_set.attributes, scale_set.id));
        if let Some((hash, loaded)) = self.lock().get(&key)
            && *hash == fingerprint
        {
            return loaded.clone().map_err(Error::Invalid);
        }
        let loaded = match resolve(kube, &key.0, ars.spec.policy.as_ref(), false).await {
            Ok(spec) => ScaleSetPolicy::load(&self.engine, scale_set, spec)
                .await
                .map(|policy| {
                    // One policy per scale set, called only when a pod is created or runners removed: no live
                    // instance in between (a thousand scale sets would hold a thousand guest memories).
                    policy.release_instances();
                    Arc::new(policy)
                })
                .map_err(|e| format!("policy: {e}")),
            Err(Error::Kube(e)) => return Err(Error::Kube(e)),
            Err(e) => Err(e.to_string()),
        };
        self.lock().insert(key, (fingerprint, loaded.clone()));
        loaded.map_err(Error::Invalid)
    }

    /// The policy last loaded for the ARS `namespace/name` (the ARS controller loads it on every change of
    /// the ARS), so runner reconciles need not read the ARS; None when not loaded yet or broken.
    pub fn loaded(&self, namespace: &str, name: &str) -> Option<Arc<ScaleSetPolicy>> {
        self.lock().get(&(namespace.to_string(), name.to_string())).and_then(|(_, loaded)| loaded.clone().ok())
    }

    /// Forgets a deleted ARS's policy.
    pub fn forget(&self, namespace: &str, name: &str) {
        self.lock().remove(&(namespace.to_string(), name.to_string()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), (String, Loaded)>> {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }
}
