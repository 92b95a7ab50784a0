//! The controller manager: the four controllers over one shared context, metrics and health endpoints, and
//! leader election when more than one replica runs.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use gha_crds::{AutoscalingListener, AutoscalingRunnerSet, EphemeralRunner, EphemeralRunnerSet};
use gha_policy_engine::{EngineOptions, PolicyEngine, PolicyMetrics};
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{self, ReflectHandle};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::watch;

use crate::caches::{SHARED_BUFFER, pod_state, unmanaged};
use crate::context::Context;
use crate::leader::{Leadership, LeaseTiming};
use crate::options::{ControllerOptions, bind_address};
use crate::policies::Policies;

/// Why the manager stopped.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// Startup failed (engine, addresses).
    #[error("{0}")]
    Startup(String),
    /// Another replica took the lease.
    #[error("leadership lost")]
    LeadershipLost,
}

async fn serve_health(addr: &str) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let ok = || async { "ok" };
    let app = axum::Router::new().route("/healthz", axum::routing::get(ok)).route("/readyz", axum::routing::get(ok));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "health server stopped");
        }
    });
    Ok(())
}

/// Builds the shared context: policy engine, registries, metrics endpoints.
///
/// # Errors
/// The engine cannot start or an address cannot be bound.
pub async fn context(kube: Client, options: ControllerOptions) -> Result<Arc<Context>, ManagerError> {
    let policy_metrics = Arc::new(PolicyMetrics::default());
    let engine = PolicyEngine::new(EngineOptions::default(), policy_metrics.clone())
        .map_err(|e| ManagerError::Startup(format!("policy engine: {e}")))?;
    if let Some(addr) = options.pprof_addr.as_deref().filter(|a| !a.is_empty()) {
        tracing::warn!(%addr, "--pprof-addr: there is no Go profiler here; the metrics endpoint has the figures");
    }
    if options.update_strategy == crate::options::UpdateStrategy::Eventual {
        tracing::info!("--update-strategy=eventual: templates roll out in place; busy runners always finish first");
    }
    let ctx = Context::new(kube, options, Policies::new(engine));
    if let Some(addr) = bind_address(&ctx.options.metrics_addr) {
        let mut registry = prometheus_client::registry::Registry::default();
        ctx.metrics.register(&mut registry);
        policy_metrics.register(&mut registry);
        gha_listener::serve_metrics(&addr, "/metrics", registry)
            .await
            .map_err(|e| ManagerError::Startup(format!("metrics address {addr}: {e}")))?;
    }
    if let Some(addr) = bind_address(&ctx.options.health_probe_addr) {
        serve_health(&addr).await.map_err(|e| ManagerError::Startup(format!("health address {addr}: {e}")))?;
    }
    Ok(ctx)
}

/// Runs the four controllers until `shutdown` (or until leadership is lost).
///
/// # Errors
/// See [`ManagerError`].
pub async fn run(
    kube: Client,
    options: ControllerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ManagerError> {
    let ctx = context(kube.clone(), options).await?;
    let (stop, stopped) = watch::channel(false);
    let stop = Arc::new(stop);
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
    }
    let mut lost = false;
    let leadership = if ctx.options.enable_leader_election {
        let identity = std::env::var("HOSTNAME").unwrap_or_else(|_| format!("controller-{}", std::process::id()));
        let mut stopped = stopped.clone();
        tokio::select! {
            leadership = Leadership::acquire(
                kube,
                &ctx.options.controller_namespace,
                &ctx.options.leader_election_id,
                &identity,
                LeaseTiming::default(),
            ) => Some(leadership),
            _ = stopped.wait_for(|s| *s) => return Ok(()),
        }
    } else {
        None
    };
    let keeper = leadership.map(|leadership| {
        let stop = stop.clone();
        tokio::spawn(async move {
            leadership.keep().await;
            let _ = stop.send(true);
        })
    });
    run_controllers(ctx, stopped).await;
    if let Some(keeper) = keeper {
        lost = keeper.is_finished();
        keeper.abort();
    }
    if lost { Err(ManagerError::LeadershipLost) } else { Ok(()) }
}

/// Runs the four controllers until `stopped` turns true. Each kind is watched once, into the shared caches
/// ([`crate::caches`]) and the shared EphemeralRunner cache, and each controller subscribes to the kinds it
/// reconciles on.
pub async fn run_controllers(ctx: Arc<Context>, stopped: watch::Receiver<bool>) {
    let signal = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    let Some(writers) = ctx.caches.take_writers() else {
        tracing::error!("the controllers of this context already run");
        return;
    };
    tracing::info!(namespace = %ctx.options.controller_namespace, "controller manager started");
    let (runners, runners_writer) = reflector::store_shared(SHARED_BUFFER);
    let changes = Changes {
        runners: [subscribe(&runners_writer), subscribe(&runners_writer)],
        runner_sets: subscribe(&writers.runner_sets),
        ephemeral_runner_sets: [subscribe(&writers.ephemeral_runner_sets), subscribe(&writers.ephemeral_runner_sets)],
        listeners: [subscribe(&writers.listeners), subscribe(&writers.listeners)],
        listener_pods: subscribe(&writers.listener_pods),
    };
    let [for_runners, for_runner_sets] = changes.runners;
    let [ers_for_runner_sets, ers_for_scale_sets] = changes.ephemeral_runner_sets;
    let [listeners_for_listeners, listeners_for_scale_sets] = changes.listeners;
    let namespace = ctx.options.controller_namespace.as_str();
    let owned = || watcher::Config::default().labels(crate::labels::label::LISTENER_NAME);
    let applied = &ctx.applied;
    let feeds = async {
        tokio::join!(
            Box::pin(feed(ctx.scoped::<EphemeralRunner>(), watcher::Config::default(), unmanaged, runners_writer)),
            Box::pin(feed(ctx.scoped(), watcher::Config::default(), unmanaged, writers.runner_sets)),
            Box::pin(feed(ctx.scoped(), watcher::Config::default(), unmanaged, writers.ephemeral_runner_sets)),
            Box::pin(feed(
                Api::namespaced(ctx.kube.clone(), namespace),
                watcher::Config::default(),
                unmanaged,
                writers.listeners
            )),
            Box::pin(feed(Api::namespaced(ctx.kube.clone(), namespace), owned(), pod_state, writers.listener_pods)),
            Box::pin(applied.watch::<ServiceAccount>(Api::namespaced(ctx.kube.clone(), namespace), owned())),
            Box::pin(applied.watch::<Secret>(Api::namespaced(ctx.kube.clone(), namespace), owned())),
            Box::pin(applied.watch::<Role>(ctx.scoped(), owned())),
            Box::pin(applied.watch::<RoleBinding>(ctx.scoped(), owned())),
        )
    };
    let feeds_stopped = signal(stopped.clone());
    let feeds = async {
        tokio::select! {
            _ = feeds => {}
            () = feeds_stopped => {}
        }
    };
    // Boxed: the futures of the controllers together are too large for a thread's stack.
    tokio::join!(
        Box::pin(crate::autoscaling_runner_set::run(
            ctx.clone(),
            changes.runner_sets,
            ers_for_scale_sets,
            listeners_for_scale_sets,
            signal(stopped.clone())
        )),
        Box::pin(crate::ephemeral_runner_set::run(
            ctx.clone(),
            runners.clone(),
            for_runner_sets,
            ers_for_runner_sets,
            signal(stopped.clone())
        )),
        Box::pin(crate::ephemeral_runner::run(ctx.clone(), runners, for_runners, signal(stopped.clone()))),
        Box::pin(crate::autoscaling_listener::run(
            ctx.clone(),
            listeners_for_listeners,
            changes.listener_pods,
            signal(stopped)
        )),
        Box::pin(feeds),
    );
    tracing::info!("controller manager stopped");
}

/// The subscriptions to the shared watches, by kind (one per controller that watches it).
struct Changes {
    runners: [ReflectHandle<EphemeralRunner>; 2],
    runner_sets: ReflectHandle<AutoscalingRunnerSet>,
    ephemeral_runner_sets: [ReflectHandle<EphemeralRunnerSet>; 2],
    listeners: [ReflectHandle<AutoscalingListener>; 2],
    listener_pods: ReflectHandle<Pod>,
}

fn subscribe<K>(writer: &Writer<K>) -> ReflectHandle<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    writer.subscribe().unwrap_or_else(|| unreachable!("a shared store has subscribers"))
}

/// One shared watch: `api` with `config` into `writer`'s store and its subscribers, each object cut to what
/// `keep` leaves of it, until dropped.
async fn feed<K>(api: Api<K>, config: watcher::Config, keep: fn(&mut K), writer: Writer<K>)
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let events = watcher(api, config).default_backoff().modify(keep);
    events.reflect_shared(writer).for_each(|_| std::future::ready(())).await;
}
