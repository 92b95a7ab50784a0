//! Adding and removing finalizers with a JSON patch guarded by the finalizers as read (by the resourceVersion
//! when there are none), so a concurrent change of them is a conflict (retried) rather than a lost update.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

async fn set<K>(api: &Api<K>, object: &K, finalizers: Vec<String>) -> kube::Result<()>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut ops = vec![];
    if !object.finalizers().is_empty() {
        // Guarded by the finalizers themselves: only a concurrent change of them conflicts, not every status
        // write since our copy was read.
        ops.push(json!({"op": "test", "path": "/metadata/finalizers", "value": object.finalizers()}));
    } else if let Some(version) = object.resource_version() {
        ops.push(json!({"op": "test", "path": "/metadata/resourceVersion", "value": version}));
    }
    ops.push(json!({"op": "add", "path": "/metadata/finalizers", "value": finalizers}));
    let patch: json_patch::Patch =
        serde_json::from_value(serde_json::Value::Array(ops)).map_err(kube::Error::SerdeError)?;
    api.patch(&object.name_any(), &PatchParams::default(), &Patch::<()>::Json(patch)).await.map(|_| ())
}

/// Adds `finalizer` if missing. Returns whether it wrote.
pub async fn ensure<K>(api: &Api<K>, object: &K, finalizer: &str) -> kube::Result<bool>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    if object.finalizers().iter().any(|f| f == finalizer) {
        return Ok(false);
    }
    let mut finalizers = object.finalizers().to_vec();
    finalizers.push(finalizer.to_string());
    set(api, object, finalizers).await.map(|()| true)
}

/// Removes `finalizers` where present, in one write (an object already gone is fine).
pub async fn remove<K>(api: &Api<K>, object: &K, finalizers: &[&str]) -> kube::Result<()>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    if !object.finalizers().iter().any(|f| finalizers.contains(&f.as_str())) {
        return Ok(());
    }
    let finalizers = object.finalizers().iter().filter(|f| !finalizers.contains(&f.as_str())).cloned().collect();
    crate::error::ignore_not_found(set(api, object, finalizers).await)
}
