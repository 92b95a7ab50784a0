//! Server-side apply of the objects the controllers own: created when missing, brought back to the desired
//! fields when changed. [`Applied`] skips the write when neither the desired object nor the live one changed
//! since our last apply. It learns the live objects' versions from metadata watches ([`Applied::watch`]), so a
//! periodic reconcile costs no request; for a kind not watched (or while its watch is failing) it reads the
//! object's metadata instead.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::Mutex;

use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::optional;
use crate::labels::hash_of;

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "gha-autoscaler";

/// Applies `object` (which must carry its name).
///
/// # Errors
/// The API's refusal.
pub async fn apply<K>(api: &Api<K>, object: &K) -> crate::error::Result<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    let params = PatchParams::apply(FIELD_MANAGER).force();
    Ok(api.patch(&object.name_any(), &params, &Patch::Apply(object)).await?)
}

/// What we last applied to each object (the desired object's hash and the resourceVersion our apply produced)
/// and what the watches last saw of them.
#[derive(Default)]
pub struct Applied {
    last: Mutex<HashMap<String, (String, String)>>,
    live: Mutex<Live>,
}

/// The resourceVersions the watches saw, by object key, and the kinds whose watch has listed them all.
#[derive(Default)]
struct Live {
    versions: HashMap<String, String>,
    listed: HashSet<String>,
}

fn key_of<K: Resource<DynamicType = ()>>(namespace: Option<String>, name: &str) -> String {
    format!("{}/{}/{name}", K::kind(&()), namespace.unwrap_or_default())
}

impl Applied {
    /// Applies `object` unless it is unchanged since our last apply and the live object still has the
    /// resourceVersion that apply returned (anyone else's change, or a deletion, makes us apply again).
    ///
    /// # Errors
    /// The API's refusal.
    pub async fn apply<K>(&self, api: &Api<K>, object: &K) -> crate::error::Result<()>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
    {
        let key = key_of::<K>(object.namespace(), &object.name_any());
        let desired = hash_of(object);
        let remembered = self.lock().get(&key).cloned();
        if let Some((hash, version)) = remembered
            && hash == desired
            && self.live_version(api, &key, &object.name_any()).await? == Some(version)
        {
            return Ok(());
        }
        let applied = apply(api, object).await?;
        self.lock().insert(key, (desired, applied.resource_version().unwrap_or_default()));
        Ok(())
    }

    /// The live object's resourceVersion: as the watch of its kind last saw it, or read.
    async fn live_version<K>(&self, api: &Api<K>, key: &str, name: &str) -> kube::Result<Option<String>>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        {
            let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            if live.listed.contains(K::kind(&()).as_ref()) {
                return Ok(live.versions.get(key).cloned());
            }
        }
        Ok(optional(api.get_metadata(name).await)?.and_then(|meta| meta.resource_version()))
    }

    /// Follows the `K`s `api` and `config` select (metadata only) until dropped; their versions are then known
    /// without reading them. A failing watch (gone, forbidden) makes [`Applied::apply`] read them until it lists
    /// again.
    pub async fn watch<K>(&self, api: Api<PartialObjectMeta<K>>, config: watcher::Config)
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let kind = K::kind(&()).to_string();
        let mut events = std::pin::pin!(watcher(api, config).default_backoff());
        while let Some(event) = events.next().await {
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            let key = |meta: &PartialObjectMeta<K>| key_of::<K>(meta.namespace(), &meta.name_any());
            match event {
                Ok(watcher::Event::Init) => {
                    live.listed.remove(&kind);
                    let prefix = format!("{kind}/");
                    live.versions.retain(|key, _| !key.starts_with(&prefix));
                }
                Ok(watcher::Event::InitApply(meta) | watcher::Event::Apply(meta)) => {
                    let version = meta.resource_version().unwrap_or_default();
                    live.versions.insert(key(&meta), version);
                }
                Ok(watcher::Event::Delete(meta)) => {
                    live.versions.remove(&key(&meta));
                }
                Ok(watcher::Event::InitDone) => {
                    live.listed.insert(kind.clone());
                }
                Err(e) => {
                    tracing::debug!(%kind, error = %e, "watch of applied objects failed; reading them meanwhile");
                    live.listed.remove(&kind);
                }
            }
        }
    }

    /// Forgets deleted objects, by name (any kind, any namespace).
    pub fn forget(&self, names: &[String]) {
        self.lock().retain(|key, _| !names.iter().any(|name| key.rsplit('/').next() == Some(name)));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, String)>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}
