//! Watch caches of what the controllers read on every reconcile — scale sets, runner sets, listeners and listener
//! pods — each fed by one watch that the controllers watching that kind share. A reconcile reads the cache and
//! asks the API server only while the cache is not filled yet or does not have the object (just created, or
//! gone), so a periodic reconcile of an unchanged scale set costs no request.

use std::sync::{Arc, Mutex};

use futures::FutureExt;
use gha_crds::{AutoscalingListener, AutoscalingRunnerSet, EphemeralRunnerSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};

use crate::error::optional;

/// Events a subscriber of a shared watch may fall behind by before the watch waits for it.
pub const SHARED_BUFFER: usize = 1024;

/// The readers.
pub struct Caches {
    /// AutoscalingRunnerSets in the watched scope.
    pub runner_sets: Store<AutoscalingRunnerSet>,
    /// EphemeralRunnerSets in the watched scope.
    pub ephemeral_runner_sets: Store<EphemeralRunnerSet>,
    /// AutoscalingListeners in the controller's namespace.
    pub listeners: Store<AutoscalingListener>,
    /// Listener pods in the controller's namespace.
    pub listener_pods: Store<Pod>,
    writers: Mutex<Option<Writers>>,
}

/// The writers, taken once by whoever runs the watches.
pub struct Writers {
    /// Feeds [`Caches::runner_sets`].
    pub runner_sets: Writer<AutoscalingRunnerSet>,
    /// Feeds [`Caches::ephemeral_runner_sets`].
    pub ephemeral_runner_sets: Writer<EphemeralRunnerSet>,
    /// Feeds [`Caches::listeners`].
    pub listeners: Writer<AutoscalingListener>,
    /// Feeds [`Caches::listener_pods`].
    pub listener_pods: Writer<Pod>,
}

impl Default for Caches {
    fn default() -> Self {
        let (runner_sets, runner_sets_writer) = reflector::store_shared(SHARED_BUFFER);
        let (ephemeral_runner_sets, ephemeral_runner_sets_writer) = reflector::store_shared(SHARED_BUFFER);
        let (listeners, listeners_writer) = reflector::store_shared(SHARED_BUFFER);
        let (listener_pods, listener_pods_writer) = reflector::store_shared(SHARED_BUFFER);
        Caches {
            runner_sets,
            ephemeral_runner_sets,
            listeners,
            listener_pods,
            writers: Mutex::new(Some(Writers {
                runner_sets: runner_sets_writer,
                ephemeral_runner_sets: ephemeral_runner_sets_writer,
                listeners: listeners_writer,
                listener_pods: listener_pods_writer,
            })),
        }
    }
}

impl Caches {
    /// The writers, the first time (None after).
    pub fn take_writers(&self) -> Option<Writers> {
        self.writers.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// What a cache keeps of any object: all but its managedFields (never read; on a real API server often the
/// largest part of the metadata).
pub fn unmanaged<K: kube::Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// What a cache keeps of a pod: metadata (without managedFields) and status. The controllers build pods from
/// their templates and read back only their state, so the spec — most of a pod — is not kept.
pub fn pod_state(pod: &mut Pod) {
    unmanaged(pod);
    pod.spec = None;
}

/// Whether `store` has had its watch's initial list.
pub fn filled<K>(store: &Store<K>) -> bool
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store.wait_until_ready().now_or_never().is_some_and(|ready| ready.is_ok())
}

/// `name` in `namespace`: from `store`, else from the API (None when it does not exist).
///
/// # Errors
/// The API's failure.
pub async fn get<K>(store: &Store<K>, api: &Api<K>, namespace: &str, name: &str) -> kube::Result<Option<Arc<K>>>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + 'static,
{
    if let Some(cached) = store.get(&ObjectRef::new(name).within(namespace)) {
        return Ok(Some(cached));
    }
    Ok(optional(api.get(name).await)?.map(Arc::new))
}
