//! The scale-set listener: one process per scale set turns Actions-service messages into the desired runner
//! count by asking the scale set's Wasm policy, and patches the EphemeralRunnerSet (ARC's patchID protocol, with
//! the drain decision made by the policy).
//!
//! Where ARC crash-loops, this listener retries: a session conflict (409) is retried with jittered backoff for a
//! configurable time, transient errors back off, an expired queue token refreshes the session; a scale set that is
//! gone exits with [`EXIT_SCALE_SET_GONE`] so the controller re-registers it.
#![deny(missing_docs)]

mod cluster;
mod config;
mod listener;
mod metrics;
mod patch_id;
mod policy_state;
mod user_agent;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gha_actions_client::{ActionsClient, ClientOptions, Error as ClientError, MessageSession, Scope, UserAgent};
use gha_policy_engine::types::{Bounds, ScaleSetRef};
use gha_policy_engine::{EngineOptions, PolicyEngine, PolicyMetrics, PolicySource, PolicySpec, ScaleSetPolicy};
use tokio::time::Instant;

pub use cluster::{Cluster, KubeCluster, RecordedSession, SESSION_ANNOTATION, SESSION_OWNER_ANNOTATION};
pub use config::{ConfigError, ListenerConfig};
pub use listener::{Listener, LoopError};
pub use metrics::{ListenerMetrics, MetricSettings, MetricsConfig, ScaleSetLabels};
pub use patch_id::PatchSequence;
pub use policy_state::{MAX_STATE_BYTES, SAVE_INTERVAL, StateStore};
pub use user_agent::identify;

/// Exit code for an invalid config.
pub const EXIT_INVALID_CONFIG: u8 = 2;
/// Exit code when the scale set is gone on GitHub (the controller re-registers it).
pub const EXIT_SCALE_SET_GONE: u8 = 3;

/// Why the listener stopped.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// The config cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The scale set is gone.
    #[error("{0}")]
    ScaleSetGone(String),
    /// Anything else that stops the listener.
    #[error("{0}")]
    Fatal(String),
}

impl ListenerError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            ListenerError::Config(_) => EXIT_INVALID_CONFIG,
            ListenerError::ScaleSetGone(_) => EXIT_SCALE_SET_GONE,
            ListenerError::Fatal(_) => 1,
        }
    }
}

/// Opens the session, retrying until `timeout`. A conflict (409) means another session is active: when the one
/// recorded on the EphemeralRunnerSet was opened by this very pod name (a restarted listener whose predecessor
/// was killed before it could close it: a pod name is unique, so that process is gone), it is deleted and the
/// create retried; any other session may belong to a live listener, so this one waits on standby until the
/// service frees the scale set. Transient errors back off. A create the service may have acted on without our
/// seeing the answer can leave a session we hold no token for: it is recorded nowhere, so it is waited out the
/// same way (the service expires sessions nobody polls).
async fn open_session(
    client: Arc<ActionsClient>,
    cluster: &KubeCluster,
    scale_set_id: i64,
    owner: &str,
    timeout: Duration,
) -> Result<MessageSession, ListenerError> {
    let deadline = Instant::now() + timeout;
    let mut attempt = 0;
    let mut took_over = false;
    loop {
        let why = match MessageSession::open(client.clone(), scale_set_id, owner).await {
            Ok(session) => return Ok(session),
            Err(ClientError::ScaleSetNotFound(why)) => return Err(ListenerError::ScaleSetGone(why)),
            Err(e @ (ClientError::InvalidConfigUrl(_) | ClientError::InvalidCredentials(_))) => {
                return Err(ListenerError::Fatal(e.to_string()));
            }
            Err(ClientError::SessionConflict(why)) => match cluster.recorded_session().await {
                Ok(Some(recorded)) if !took_over && recorded.owner.as_deref() == Some(owner) => {
                    took_over = true;
                    tracing::info!(session = %recorded.id, "taking over the session this pod's previous listener left");
                    match client.delete_session(scale_set_id, &recorded.id).await {
                        // Retry the create at once.
                        Ok(()) => continue,
                        Err(e) => e.to_string(),
                    }
                }
                _ => format!("{why}; waiting on standby for the active session to end"),
            },
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(ListenerError::Fatal(format!("giving up opening the session: {why}")));
        }
        let wait = listener::backoff(attempt);
        attempt += 1;
        tracing::warn!(error = %why, ?wait, "could not open the message session; retrying");
        tokio::time::sleep(wait).await;
    }
}

fn scale_set_labels(config: &ListenerConfig, client: &ActionsClient) -> ScaleSetLabels {
    let (enterprise, organization, repository) = match &client.config().scope {
        Scope::Enterprise(e) => (e.clone(), String::new(), String::new()),
        Scope::Organization(o) => (String::new(), o.clone(), String::new()),
        Scope::Repository { owner, repo } => (String::new(), owner.clone(), repo.clone()),
    };
    ScaleSetLabels {
        name: config.ephemeral_runner_set_name.clone(),
        namespace: config.ephemeral_runner_set_namespace.clone(),
        enterprise,
        organization,
        repository,
    }
}

/// Serves `registry` in the OpenMetrics text format at `endpoint` (default `/metrics`) on `addr`, in the
/// background; the controller's metrics use it too.
///
/// # Errors
/// The address cannot be bound.
pub async fn serve_metrics(
    addr: &str,
    endpoint: &str,
    registry: prometheus_client::registry::Registry,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let registry = Arc::new(registry);
    let path = if endpoint.is_empty() { "/metrics".to_string() } else { endpoint.to_string() };
    let app = axum::Router::new().route(
        &path,
        axum::routing::get(move || {
            let registry = registry.clone();
            async move {
                let mut text = String::new();
                let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
                ([("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "metrics server stopped");
        }
    });
    Ok(bound)
}

/// Runs the listener of `config` until `shutdown`, as the pod `$HOSTNAME` (the session owner).
///
/// # Errors
/// See [`ListenerError`]; its [`ListenerError::exit_code`] is the process's.
pub async fn run(
    config: ListenerConfig,
    kube: kube::Client,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ListenerError> {
    let owner = std::env::var("HOSTNAME").unwrap_or_else(|_| format!("listener-{}", config.runner_scale_set_id));
    run_as(config, kube, &owner, shutdown).await
}

/// [`run`] with the session owner (the listener pod's name) given.
///
/// # Errors
/// See [`ListenerError`].
pub async fn run_as(
    config: ListenerConfig,
    kube: kube::Client,
    owner: &str,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ListenerError> {
    config.validate()?;
    tokio::pin!(shutdown);
    let mut options = ClientOptions::new(config.configure_url.clone(), config.credentials()?);
    options.force_ghes = gha_actions_client::forces_ghes(std::env::var_os(gha_actions_client::FORCE_GHES_ENV));
    options.user_agent = UserAgent { subsystem: "listener".into(), ..UserAgent::default() };
    if !config.server_root_ca.is_empty() {
        options.root_ca_pem = Some(config.server_root_ca.clone());
    }
    let client = Arc::new(ActionsClient::new(options).map_err(|e| ListenerError::Fatal(e.to_string()))?);
    client.set_scale_set_id(config.runner_scale_set_id);

    let policy_metrics = Arc::new(PolicyMetrics::default());
    let options = EngineOptions { precompiled_dir: config.precompiled_policies.clone(), ..EngineOptions::default() };
    let engine = PolicyEngine::new(options, policy_metrics.clone()).map_err(|e| ListenerError::Fatal(e.to_string()))?;
    let spec = config.policy.clone().unwrap_or_else(|| PolicySpec::built_in("arc-default"));
    let scale_set = ScaleSetRef {
        namespace: config.ephemeral_runner_set_namespace.clone(),
        name: config.runner_scale_set_name.clone(),
        id: config.runner_scale_set_id as u64,
        attributes: config.policy_attributes.clone(),
        ..Default::default()
    };
    let policy = load_policy(&engine, scale_set, spec).await?;
    let metrics = Arc::new(ListenerMetrics::new(scale_set_labels(&config, &client), config.metrics.as_ref()));
    if !config.metrics_addr.is_empty() {
        let mut registry = prometheus_client::registry::Registry::default();
        metrics.register(&mut registry);
        policy_metrics.register(&mut registry);
        serve_metrics(&config.metrics_addr, &config.metrics_endpoint, registry)
            .await
            .map_err(|e| ListenerError::Fatal(format!("metrics address {}: {e}", config.metrics_addr)))?;
    }
    let timeout = Duration::from_secs(config.session_conflict_timeout_seconds.unwrap_or(600));
    let state_store = config.policy_state_config_map.as_deref().map(|name| {
        let policy_name = policy.manifest().info.name;
        StateStore::new(kube.clone(), &config.ephemeral_runner_set_namespace, name, &policy_name, metrics.clone())
    });
    let cluster = KubeCluster::new(kube, &config.ephemeral_runner_set_namespace, &config.ephemeral_runner_set_name);
    // A shutdown while a session is waited for (a stale one timing out, the service down) ends the listener.
    let session = tokio::select! {
        session = open_session(client, &cluster, config.runner_scale_set_id, owner, timeout) => session?,
        () = &mut shutdown => return Ok(()),
    };
    let (min, max) = config.bounds();
    let mut listener = Listener::new(session, policy, cluster, metrics, Bounds { min_runners: min, max_runners: max });
    if let Some(store) = state_store {
        listener = listener.with_state_store(store);
    }
    match config.decision_log.as_deref() {
        None | Some("") => {}
        Some("-") => listener = listener.with_decision_log(Box::new(std::io::stdout())),
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| ListenerError::Fatal(format!("decision log {path}: {e}")))?;
            listener = listener.with_decision_log(Box::new(std::io::BufWriter::new(file)));
        }
    }
    listener.run(shutdown).await.map_err(|LoopError::ScaleSetGone(why)| ListenerError::ScaleSetGone(why))
}

/// How often a policy whose source could not be had is tried again.
const POLICY_SOURCE_RETRY: Duration = Duration::from_secs(30);

/// The scale set's policy. When its remote source cannot be had (registry or URL unreachable) the listener does
/// not crash-loop: it decides with ARC's formula and keeps trying the source, swapping the policy in once loaded.
/// Any other load error stops the listener with the reason.
async fn load_policy(
    engine: &Arc<PolicyEngine>,
    scale_set: ScaleSetRef,
    spec: PolicySpec,
) -> Result<Arc<ScaleSetPolicy>, ListenerError> {
    // Only a source fetched over the network can come back; a wrong name or file is a config error.
    let remote = matches!(spec.source, PolicySource::Oci(_) | PolicySource::Url { .. });
    let error = match ScaleSetPolicy::load(engine, scale_set.clone(), spec.clone()).await {
        Ok(policy) => return Ok(Arc::new(policy)),
        Err(e @ gha_policy_engine::Error::Source { .. }) if remote => e,
        Err(e) => return Err(ListenerError::Fatal(format!("policy: {e}"))),
    };
    tracing::error!(error = %error, "policy source unavailable; deciding with ARC's formula until it can be had");
    let fallback = PolicySpec { permissions: spec.permissions.clone(), ..PolicySpec::built_in("arc-default") };
    let policy = Arc::new(
        ScaleSetPolicy::load(engine, scale_set, fallback)
            .await
            .map_err(|e| ListenerError::Fatal(format!("policy: {e}")))?,
    );
    let retrying = policy.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(POLICY_SOURCE_RETRY).await;
            match retrying.swap(spec.clone()).await {
                Ok(()) => break,
                Err(e) => tracing::warn!(error = %e, "policy source still unavailable; ARC's formula decides"),
            }
        }
    });
    Ok(policy)
}
