//! The controller manager: the four controllers over one shared context, metrics and health endpoints, and
//! leader election when more than one replica runs.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use gha_crds::EphemeralRunner;
use gha_policy_engine::{EngineOptions, PolicyEngine, PolicyMetrics};
use kube::Client;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use tokio::sync::watch;

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

/// Events a subscriber of a shared watch may fall behind by before the watch waits for it.
const SHARED_BUFFER: usize = 1024;

/// Runs the four controllers until `stopped` turns true. EphemeralRunners are watched once: the runner and
/// runner-set controllers share the cache.
pub async fn run_controllers(ctx: Arc<Context>, stopped: watch::Receiver<bool>) {
    let signal = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    tracing::info!(namespace = %ctx.options.controller_namespace, "controller manager started");
    let (runners, writer) = reflector::store_shared(SHARED_BUFFER);
    let (for_runners, for_runner_sets) = match (writer.subscribe(), writer.subscribe()) {
        (Some(a), Some(b)) => (a, b),
        _ => unreachable!("a shared store has subscribers"),
    };
    let feed = watcher(ctx.scoped::<EphemeralRunner>(), watcher::Config::default())
        .default_backoff()
        .reflect_shared(writer)
        .for_each(|_| std::future::ready(()));
    let feed_stopped = signal(stopped.clone());
    let feed = async {
        tokio::select! {
            () = feed => {}
            () = feed_stopped => {}
        }
    };
    tokio::join!(
        crate::autoscaling_runner_set::run(ctx.clone(), signal(stopped.clone())),
        crate::ephemeral_runner_set::run(ctx.clone(), runners.clone(), for_runner_sets, signal(stopped.clone())),
        crate::ephemeral_runner::run(ctx.clone(), runners, for_runners, signal(stopped.clone())),
        crate::autoscaling_listener::run(ctx.clone(), signal(stopped)),
        feed,
    );
    tracing::info!("controller manager stopped");
}
