//! An in-memory Kubernetes API server over real HTTP, so controllers are tested through the unchanged
//! `kube::Client` and kube-runtime, and `kubectl` works against it.
//!
//! Served: discovery (`/api`, `/apis`, group versions, `/version`); core v1 namespaces, pods, secrets,
//! configmaps, serviceaccounts, services, events; rbac roles and bindings; coordination leases; and every CRD
//! created through `apiextensions.k8s.io/v1` (status subresource honoured). Semantics: list with label and field
//! selectors, `limit`/`continue`; watch with `resourceVersion`, bookmarks, `timeoutSeconds`, 410 Gone when the
//! event log no longer reaches back; create with `generateName`, uid, timestamps, generation; replace with
//! optimistic concurrency (409); merge, strategic-merge (as merge), JSON and apply patches; finalizers and
//! `deletionTimestamp`; owner-reference garbage collection; namespace deletion; `Status` error bodies.
//! Request counts by client (`User-Agent`), verb and resource. Faults on demand: the next N writes to a
//! resource fail with 409 or 500; all watches cut.
#![deny(missing_docs)]

mod api;
mod error;
mod path;
mod requests;
mod resources;
mod schema;
mod selectors;
mod store;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::task::JoinHandle;

pub use error::ApiError;
pub use requests::{RequestCounts, RequestKind};
pub use resources::ResourceType;
pub use selectors::{FieldSelector, LabelSelector};
pub use store::{Event, EventType, ListOptions, Store};

/// Server settings.
#[derive(Debug, Clone)]
pub struct MemKubeOptions {
    /// Events kept for watches to resume from; older resourceVersions get 410 Gone.
    pub event_log_capacity: usize,
    /// How often a watch that asked for bookmarks gets one.
    pub bookmark_interval: Duration,
}

impl Default for MemKubeOptions {
    fn default() -> Self {
        MemKubeOptions { event_log_capacity: 20_000, bookmark_interval: Duration::from_secs(10) }
    }
}

pub(crate) struct Server {
    store: Mutex<Store>,
    cut: tokio::sync::watch::Sender<u64>,
    bookmark_interval: Duration,
    requests: Mutex<RequestCounts>,
}

impl Server {
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn requests(&self) -> MutexGuard<'_, RequestCounts> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running in-memory API server; stops when dropped.
pub struct MemKube {
    server: Arc<Server>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MemKube {
    /// Serves on an ephemeral loopback port.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start(options: MemKubeOptions) -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0".parse().expect("valid address"), options).await
    }

    /// Serves on `addr`.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start_on(addr: SocketAddr, options: MemKubeOptions) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let server = Arc::new(Server {
            store: Mutex::new(Store::new(options.event_log_capacity)),
            cut: tokio::sync::watch::Sender::new(0),
            bookmark_interval: options.bookmark_interval,
            requests: Mutex::default(),
        });
        let app = axum::Router::new().fallback(api::handle).with_state(server.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "in-memory API server stopped");
            }
        });
        Ok(MemKube { server, addr, task })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig pointing at this server (context `mem-kube`, namespace `default`).
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: mem-kube\n  cluster:\n    server: {}\nusers:\n- name: \
             mem-kube\n  user:\n    token: mem-kube\ncontexts:\n- name: mem-kube\n  context:\n    cluster: mem-kube\n    \
             user: mem-kube\n    namespace: default\ncurrent-context: mem-kube\n",
            self.url()
        )
    }

    /// Direct access to the store (for assertions and fault setup).
    pub fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut self.server.store())
    }

    /// The next `count` writes to `plural` fail with `code`: 409 conflict, 403 exceeded quota, 422 invalid, else
    /// 500.
    pub fn fail_writes(&self, plural: &str, count: u32, code: u16) {
        self.server.store().fail_writes(plural, count, code);
    }

    /// The requests answered so far, by client, verb and resource (discovery left out).
    pub fn requests(&self) -> RequestCounts {
        self.server.requests().clone()
    }

    /// Ends every open watch (clients must resume).
    pub fn cut_watches(&self) {
        self.server.cut.send_modify(|epoch| *epoch += 1);
    }
}

impl Drop for MemKube {
    fn drop(&mut self) {
        self.task.abort();
    }
}
