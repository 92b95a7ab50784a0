//! The controller manager of gha-autoscaler: ARC's four controllers (AutoscalingRunnerSet,
//! EphemeralRunnerSet, EphemeralRunner, AutoscalingListener) on kube-runtime, one per file, with the scale set's
//! Wasm policy mutating runner pods and choosing scale-down victims.
#![deny(missing_docs)]

pub mod apply;
pub mod autoscaling_listener;
pub mod autoscaling_runner_set;
pub mod caches;
pub mod context;
pub mod ephemeral_runner;
pub mod ephemeral_runner_set;
pub mod error;
pub mod expectations;
pub mod finalizers;
pub mod github;
pub mod labels;
pub mod leader;
pub mod listener_pod;
pub mod manager;
pub mod metrics;
pub mod options;
pub mod policies;
pub mod rate_limit;
pub mod runner_pod;
pub mod runner_set_plan;
pub mod secrets;

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;

pub use context::Context;
pub use error::Error;
pub use manager::{ManagerError, run};
pub use options::ControllerOptions;

/// Changes to the `K`s in `namespace` (all namespaces when None) as metadata only: all a controller needs from
/// objects it owns to know when to reconcile the owner (it reads them afresh when it acts), for a fraction of the
/// memory of full objects.
pub(crate) fn owned_changes<K>(
    client: kube::Client,
    namespace: Option<&str>,
    config: kube::runtime::watcher::Config,
) -> impl futures::Stream<Item = Result<kube::core::PartialObjectMeta<K>, kube::runtime::watcher::Error>> + Send + 'static
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    use kube::runtime::WatchStreamExt;
    let api: kube::Api<kube::core::PartialObjectMeta<K>> = match namespace {
        Some(namespace) => kube::Api::namespaced(client, namespace),
        None => kube::Api::all(client),
    };
    kube::runtime::watcher(api, config).default_backoff().touched_objects()
}

/// What every controller does after a failed reconcile: log, then retry (sooner for transient errors; never
/// faster than the overall retry budget allows).
pub fn retry_after_error<K: kube::Resource<DynamicType = ()>>(
    object: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    let name = object.meta().name.clone().unwrap_or_default();
    let wait = match error {
        Error::Invalid(_) => Duration::from_secs(30),
        Error::Kube(kube::Error::Api(status)) if status.code == 409 => Duration::from_millis(200),
        _ => Duration::from_secs(2),
    };
    let wait = wait.max(ctx.retry_budget.as_ref().map_or(Duration::ZERO, |budget| budget.reserve()));
    tracing::warn!(object = %name, kind = %K::kind(&()), error = %error, ?wait, "reconcile failed; retrying");
    Action::requeue(wait)
}
