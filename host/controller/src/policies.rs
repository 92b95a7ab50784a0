//! The scale sets' policies as the controller uses them (pod mutation, scale-down selection, validation for the
//! ARS status): `spec.policy` resolved into an engine spec, loaded once per spec and shared.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gha_crds::{AutoscalingRunnerSet, PolicyOci, PolicySourceSpec, PolicySpecCr};
use gha_policy_engine::oci::{self, OciSource};
use gha_policy_engine::types::ScaleSetRef;
use gha_policy_engine::{
    FailurePolicy, PolicyEngine, PolicySource, PolicySpec, ScaleSetPolicy, docker_config, signature,
};
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

/// A source, with a ConfigMap read into bytes (`for_listener` = false) or named as the file the listener finds
/// beside its config (`true`), and an OCI source's credentials read from its pull secrets.
async fn source(kube: &Client, namespace: &str, spec: &PolicySourceSpec, for_listener: bool) -> Result<PolicySource> {
    match (&spec.built_in, &spec.config_map, &spec.url, &spec.oci) {
        (Some(name), None, None, None) => Ok(PolicySource::BuiltIn(name.clone())),
        (None, Some(map), None, None) => {
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
        (None, None, Some(url), None) => Ok(PolicySource::Url { url: url.url.clone(), sha256: url.sha256.clone() }),
        (None, None, None, Some(oci)) => oci_source(kube, namespace, oci, !for_listener).await.map(PolicySource::Oci),
        _ => Err(Error::Invalid("policy.source must set exactly one of builtIn, configMap, url, oci".into())),
    }
}

/// An OCI source: its reference checked, its keys, and (`with_credentials`) the first pull secret's credentials for
/// its registry. (Listeners get the credentials the controller resolved with the pinned digest, see
/// [`Policies::listener_spec`], so their config costs no Secret read.)
async fn oci_source(kube: &Client, namespace: &str, spec: &PolicyOci, with_credentials: bool) -> Result<OciSource> {
    let reference =
        oci::parse_reference(&spec.reference).map_err(|e| Error::Invalid(format!("policy.source.oci: {e}")))?;
    let public_keys = match &spec.verify {
        Some(verify) => {
            signature::verifying_keys(&verify.public_key)
                .map_err(|e| Error::Invalid(format!("policy.source.oci.verify.publicKey: {e}")))?;
            vec![verify.public_key.clone()]
        }
        None => Vec::new(),
    };
    let mut credentials = None;
    for secret in spec.image_pull_secrets.iter().flatten().filter(|_| with_credentials) {
        let data = secrets::read_secret(kube, namespace, &secret.name).await?;
        let Some(config) = data.get(".dockerconfigjson").or_else(|| data.get(".dockercfg")) else {
            return Err(Error::Invalid(format!(
                "policy.source.oci.imagePullSecrets: secret {namespace}/{} has no .dockerconfigjson",
                secret.name
            )));
        };
        credentials = docker_config::credentials_for(config.as_bytes(), reference.registry())
            .map_err(|e| Error::Invalid(format!("secret {namespace}/{}: {e}", secret.name)))?;
        if credentials.is_some() {
            break;
        }
    }
    Ok(OciSource {
        reference: spec.reference.clone(),
        plain_http: spec.plain_http.unwrap_or(false),
        credentials,
        public_keys,
    })
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

/// How soon a source that could not be had (registry or URL unreachable) is tried again.
const SOURCE_RETRY: Duration = Duration::from_secs(30);
/// How often an OCI tag is re-resolved by default, and at least.
const DEFAULT_REFRESH_SECONDS: u32 = 300;
const MIN_REFRESH_SECONDS: u32 = 10;

/// Policies loaded for scale sets, by ARS and spec.
pub struct Policies {
    engine: Arc<PolicyEngine>,
    loaded: Mutex<HashMap<(String, String), Entry>>,
}

/// A load result, kept so a broken policy is not recompiled on every reconcile.
type Loaded = std::result::Result<Arc<ScaleSetPolicy>, String>;

/// What is known of one scale set's policy.
#[derive(Clone)]
struct Entry {
    /// Hash of the ARS's policy spec and of what the policy sees of the scale set.
    fingerprint: String,
    /// The OCI sources of the acting and shadow policies, as written and as resolved (pinned, with credentials).
    pins: Vec<Pin>,
    loaded: Loaded,
    /// When to look at the sources again (OCI tags, sources that could not be had); never for the others.
    recheck_at: Option<Instant>,
    /// Why the serving policy may not be what its source names now.
    stale: Option<String>,
}

/// An OCI reference as written in the spec, and the source it resolved to (its reference pinned by digest).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pin {
    written: String,
    source: OciSource,
}

/// What the ARS status shows of the policy's source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStatus {
    /// The acting policy's OCI reference pinned by digest.
    pub reference: Option<String>,
    /// Why the serving policy may not be what its source names now (registry unreachable, the tag moved to an
    /// artifact that was refused).
    pub stale: Option<String>,
    /// When the source is looked at again (an OCI tag's refresh, a retry), if ever.
    pub recheck_in: Option<Duration>,
}

/// The OCI sources of a spec (acting first, then the shadow's).
fn oci_sources(spec: &mut PolicySpec) -> impl Iterator<Item = &mut OciSource> {
    std::iter::once(&mut spec.source).chain(spec.shadow.iter_mut().map(|s| &mut s.source)).filter_map(|source| {
        match source {
            PolicySource::Oci(oci) => Some(oci),
            _ => None,
        }
    })
}

/// Resolves every OCI reference of `spec` to its current digest and pins the spec to it.
async fn pin(spec: &mut PolicySpec) -> std::result::Result<Vec<Pin>, String> {
    let mut pins = Vec::new();
    for source in oci_sources(spec) {
        let reference = oci::parse_reference(&source.reference)?;
        let digest = oci::Registry::for_source(source).digest(&reference).await?;
        let written = std::mem::replace(&mut source.reference, oci::pinned(&reference, &digest));
        pins.push(Pin { written, source: source.clone() });
    }
    Ok(pins)
}

fn refresh_interval(cr: Option<&PolicySpecCr>) -> Duration {
    let seconds = cr
        .and_then(|c| c.source.oci.as_ref())
        .and_then(|o| o.refresh_seconds)
        .unwrap_or(DEFAULT_REFRESH_SECONDS)
        .max(MIN_REFRESH_SECONDS);
    Duration::from_secs(u64::from(seconds))
}

impl Policies {
    /// A registry over `engine`.
    pub fn new(engine: Arc<PolicyEngine>) -> Self {
        Policies { engine, loaded: Mutex::default() }
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<PolicyEngine> {
        &self.engine
    }

    /// The ARS's policy, loaded (and configured) on first use or when its spec changed; an OCI tag is
    /// re-resolved on its refresh schedule and the policy reloaded when it moved. A policy that does not load is
    /// remembered until the spec changes; a missing ConfigMap or Secret and a source that could not be had are
    /// tried again every 30 s. When the source of a
    /// loaded policy cannot be reached, or its tag moved to an artifact that is refused, the loaded policy keeps
    /// serving and [`Policies::source_status`] says why.
    ///
    /// # Errors
    /// The policy cannot be resolved, loaded or configured.
    pub async fn for_runner_set(&self, kube: &Client, ars: &AutoscalingRunnerSet) -> Result<Arc<ScaleSetPolicy>> {
        let key = (ars.namespace().unwrap_or_default(), ars.name_any());
        let scale_set = scale_set_ref(ars);
        let fingerprint = hash_of(&(&ars.spec.policy, &scale_set.attributes, scale_set.id));
        let previous = self.lock().get(&key).filter(|e| e.fingerprint == fingerprint).cloned();
        if let Some(entry) = &previous
            && entry.recheck_at.is_none_or(|at| Instant::now() < at)
        {
            return entry.loaded.clone().map_err(Error::Invalid);
        }
        let cr = ars.spec.policy.as_ref();
        let serving = previous.filter(|p| p.loaded.is_ok());
        let retry = Some(Instant::now() + SOURCE_RETRY);
        // What cannot be had now (a ConfigMap or pull Secret missing, the registry unreachable) may be later: the
        // serving policy, if any, keeps serving meanwhile and the source is looked at again.
        let unavailable = |why: String| match &serving {
            Some(serving) => Entry { stale: Some(why), recheck_at: retry, ..serving.clone() },
            None => Entry::failed(fingerprint.clone(), why, retry),
        };
        let mut spec = match resolve(kube, &key.0, cr, false).await {
            Ok(spec) => spec,
            Err(Error::Kube(e)) => return Err(Error::Kube(e)),
            Err(e) => return self.remember(key, unavailable(e.to_string())),
        };
        let pins = match pin(&mut spec).await {
            Ok(pins) => pins,
            Err(why) => return self.remember(key, unavailable(format!("policy source unreachable: {why}"))),
        };
        let moving = pins.iter().any(|p| oci::parse_reference(&p.written).is_ok_and(|r| r.digest().is_none()));
        let recheck_at = moving.then(|| Instant::now() + refresh_interval(cr));
        if let Some(serving) = &serving
            && serving.pins == pins
        {
            return self.remember(key, Entry { recheck_at, stale: None, ..serving.clone() });
        }
        if let Some(serving) = &serving {
            let references = |pins: &[Pin]| pins.iter().map(|p| p.source.reference.clone()).collect::<Vec<_>>();
            let (from, to) = (references(&serving.pins), references(&pins));
            tracing::info!(scale_set = %key.1, ?from, ?to, "policy tag moved; loading");
        }
        let entry = match ScaleSetPolicy::load(&self.engine, scale_set, spec).await {
            Ok(policy) => {
                // One policy per scale set, called only when a pod is created or runners removed: no live
                // instance in between (a thousand scale sets would hold a thousand guest memories).
                policy.release_instances();
                Entry { fingerprint, pins, loaded: Ok(Arc::new(policy)), recheck_at, stale: None }
            }
            Err(e) => {
                let unreachable = matches!(e, gha_policy_engine::Error::Source { .. });
                let why = format!("policy: {e}");
                match serving {
                    Some(serving) => {
                        let to = pins.iter().map(|p| p.source.reference.as_str()).collect::<Vec<_>>().join(", ");
                        let stale = format!(
                            "the source now names {to}, which was refused ({why}); serving the last good policy"
                        );
                        tracing::warn!(scale_set = %key.1, "{stale}");
                        Entry { stale: Some(stale), recheck_at: recheck_at.or(retry), ..serving }
                    }
                    None => Entry::failed(fingerprint, why, if unreachable { retry } else { recheck_at }),
                }
            }
        };
        self.remember(key, entry)
    }

    fn remember(&self, key: (String, String), entry: Entry) -> Result<Arc<ScaleSetPolicy>> {
        let loaded = entry.loaded.clone();
        self.lock().insert(key, entry);
        loaded.map_err(Error::Invalid)
    }

    /// The acting policy's pinned OCI reference and why it may be stale, for the ARS status.
    pub fn source_status(&self, namespace: &str, name: &str) -> SourceStatus {
        let loaded = self.lock();
        let Some(entry) = loaded.get(&(namespace.to_string(), name.to_string())) else {
            return SourceStatus::default();
        };
        let reference = entry.loaded.as_ref().ok().and_then(|policy| match policy.spec().source {
            PolicySource::Oci(oci) => Some(oci.reference),
            _ => None,
        });
        SourceStatus {
            reference,
            stale: entry.stale.clone(),
            recheck_in: entry.recheck_at.map(|at| at.saturating_duration_since(Instant::now())),
        }
    }

    /// `spec.policy` as the listener's config carries it (see [`resolve`]), with the OCI sources as the controller
    /// loaded them (pinned to the digest, with the registry credentials): every listener of a scale set runs the
    /// same artifact.
    ///
    /// # Errors
    /// As [`resolve`].
    pub async fn listener_spec(&self, kube: &Client, ars: &AutoscalingRunnerSet) -> Result<PolicySpec> {
        let namespace = ars.namespace().unwrap_or_default();
        let mut spec = resolve(kube, &namespace, ars.spec.policy.as_ref(), true).await?;
        let pins = self.lock().get(&(namespace, ars.name_any())).map(|e| e.pins.clone()).unwrap_or_default();
        for source in oci_sources(&mut spec) {
            if let Some(pin) = pins.iter().find(|p| p.written == source.reference) {
                *source = pin.source.clone();
            }
        }
        Ok(spec)
    }

    /// The policy last loaded for the ARS `namespace/name` (the ARS controller loads it on every change of
    /// the ARS), so runner reconciles need not read the ARS; None when not loaded yet or broken.
    pub fn loaded(&self, namespace: &str, name: &str) -> Option<Arc<ScaleSetPolicy>> {
        self.lock().get(&(namespace.to_string(), name.to_string())).and_then(|entry| entry.loaded.clone().ok())
    }

    /// Forgets a deleted ARS's policy.
    pub fn forget(&self, namespace: &str, name: &str) {
        self.lock().remove(&(namespace.to_string(), name.to_string()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Entry>> {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Entry {
    fn failed(fingerprint: String, why: String, recheck_at: Option<Instant>) -> Self {
        Entry { fingerprint, pins: Vec::new(), loaded: Err(why), recheck_at, stale: None }
    }
}
