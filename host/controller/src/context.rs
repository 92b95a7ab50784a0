//! What every reconcile shares: the Kubernetes client, settings, Actions clients, policies, metrics, events.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};

use crate::apply::Applied;
use crate::caches::Caches;
use crate::github::GitHubClients;
use crate::metrics::ControllerMetrics;
use crate::options::ControllerOptions;
use crate::policies::Policies;

/// Shared state of the four controllers.
pub struct Context {
    /// The Kubernetes client.
    pub kube: Client,
    /// Flags.
    pub options: ControllerOptions,
    /// Actions-service clients.
    pub github: GitHubClients,
    /// Scale sets' policies.
    pub policies: Policies,
    /// Gauges.
    pub metrics: ControllerMetrics,
    /// What was last applied to owned objects (skips no-op writes).
    pub applied: Applied,
    /// Watch caches of the objects read on every reconcile.
    pub caches: Caches,
    /// Policy-state ConfigMaps known to exist (`namespace/name`).
    pub policy_states: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Precompiled-policy Secrets known to exist; the lock also makes one reconcile at a time create them.
    pub precompiled: tokio::sync::Mutex<std::collections::HashSet<String>>,
    /// The overall budget of retries after errors (`--workqueue-rate-limiter=bucket_rate_limiter`).
    pub retry_budget: Option<Arc<crate::rate_limit::TokenBucket>>,
    recorder: Recorder,
}

impl Context {
    /// Context for `kube` with `options`.
    pub fn new(kube: Client, options: ControllerOptions, policies: Policies) -> Arc<Self> {
        let recorder = Recorder::new(kube.clone(), Reporter { controller: "gha-autoscaler".into(), instance: None });
        let retry_budget = (options.workqueue_rate_limiter == crate::options::RetryLimiter::BucketRateLimiter)
            .then(|| crate::rate_limit::TokenBucket::new(10.0, 100));
        Arc::new(Context {
            retry_budget,
            github: GitHubClients::new(options.force_ghes),
            kube,
            options,
            policies,
            metrics: ControllerMetrics::default(),
            applied: Applied::default(),
            caches: Caches::default(),
            precompiled: tokio::sync::Mutex::default(),
            policy_states: std::sync::Mutex::default(),
            recorder,
        })
    }

    /// The watched namespace (`--watch-single-namespace`), or None for all.
    pub fn scope(&self) -> Option<&str> {
        self.options.watch_single_namespace.as_deref()
    }

    /// An API over the watched scope (one namespace, or all).
    pub fn scoped<K>(&self) -> kube::Api<K>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        match self.scope() {
            Some(namespace) => kube::Api::namespaced(self.kube.clone(), namespace),
            None => kube::Api::all(self.kube.clone()),
        }
    }

    /// Records a Kubernetes event on `object` (failures are logged, never fatal).
    pub async fn event<K: Resource<DynamicType = ()>>(&self, object: &K, warning: bool, reason: &str, note: String) {
        let reference: ObjectReference = object.object_ref(&());
        if warning {
            tracing::warn!(object = ?reference.name, reason, %note);
        } else {
            tracing::info!(object = ?reference.name, reason, %note);
        }
        let event = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &reference).await {
            tracing::debug!(error = %e, "could not record an event");
        }
    }
}
