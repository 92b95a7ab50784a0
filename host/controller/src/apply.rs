//! Server-side apply of the objects the controllers own: created when missing, brought back to the desired
//! fields when changed.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

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
