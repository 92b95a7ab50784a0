//! Server-side apply of the objects the controllers own: created when missing, brought back to the desired
//! fields when changed. [`Applied`] skips the write when neither the desired object nor the live one changed
//! since our last apply, so periodic reconciles cost one metadata read instead of a full write.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;

use kube::api::{Patch, PatchParams};
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

/// What we last applied to each object: the desired object's hash and the resourceVersion our apply produced.
#[derive(Default)]
pub struct Applied {
    last: Mutex<HashMap<String, (String, String)>>,
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
        let key = format!("{}/{}/{}", K::kind(&()), object.namespace().unwrap_or_default(), object.name_any());
        let desired = hash_of(object);
        let remembered = self.lock().get(&key).cloned();
        if let Some((hash, version)) = remembered
            && hash == desired
            && let Some(live) = optional(api.get_metadata(&object.name_any()).await)?
            && live.resource_version() == Some(version)
        {
            return Ok(());
        }
        let applied = apply(api, object).await?;
        self.lock().insert(key, (desired, applied.resource_version().unwrap_or_default()));
        Ok(())
    }

    /// Forgets deleted objects, by name (any kind, any namespace).
    pub fn forget(&self, names: &[String]) {
        self.lock().retain(|key, _| !names.iter().any(|name| key.rsplit('/').next() == Some(name)));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, String)>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}
