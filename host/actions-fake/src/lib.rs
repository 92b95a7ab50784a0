//! A stateful fake of the GitHub API and the Actions service for runner scale sets, speaking the real wire
//! protocol over real HTTP on loopback. It drives the protocol tests, `demo` and `simulate`.
//!
//! - GitHub API (`/api/v3`): installation tokens (GitHub App JWTs verified), registration tokens,
//!   `runner-registration` (an admin JWT with a real `exp`).
//! - Actions service (`/_service/_apis/...`): runner groups, scale sets, sessions (one active per scale set),
//!   message queue with long poll and acks (`/_queue`), acquire jobs, JIT configs, runners.
//! - Jobs: enqueued through the control API, assigned to the scale set whose labels match, bounded by its
//!   advertised capacity; github.com (`JobAssigned`) or GHES (`JobAvailable` + acquire) mode; unacquired or
//!   unstarted jobs are cancelled and re-queued up to 3 times.
//! - Simulated runners (`/_runner`): register with the JIT config (once), take the assigned job, report the result.
//! - Control API (`/_control`): enqueue jobs, inject faults, expire queue tokens, drop sessions, garbage-collect a
//!   scale set, read the whole state.
#![deny(missing_docs)]

mod faults;
mod routes;
mod state;
mod tokens;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use faults::Fault;
pub use routes::decode_jit_config;
pub use routes::{SEEN_REQUESTS, SeenRequest};
pub use state::{AssignmentMode, FakeState, Job, JobSpec, JobState, MAX_ATTEMPTS, MAX_JOBS_PER_MESSAGE, Runner};
pub use tokens::FakeApp;

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// github.com or GHES job flow.
    pub mode: AssignmentMode,
    /// How long a poll is held before 202 (50 s on GitHub).
    pub long_poll_hold: Duration,
    /// Lifetime of admin tokens.
    pub admin_token_ttl: Duration,
    /// Offered jobs not acquired within this are cancelled and re-queued.
    pub acquire_timeout: Duration,
    /// Assigned jobs not started within this are cancelled and re-queued.
    pub start_timeout: Duration,
    /// Accepted personal access tokens.
    pub pats: Vec<String>,
    /// An accepted GitHub App.
    pub app: Option<FakeApp>,
    /// Runner groups besides `Default`.
    pub runner_groups: Vec<String>,
    /// A session nobody has polled for this long is dropped (as the service expires abandoned sessions); None:
    /// sessions live until deleted.
    pub session_idle_timeout: Option<Duration>,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions {
            mode: AssignmentMode::GitHubCom,
            long_poll_hold: Duration::from_secs(50),
            admin_token_ttl: Duration::from_secs(3600),
            acquire_timeout: Duration::from_secs(300),
            start_timeout: Duration::from_secs(600),
            pats: vec!["ghp_fake".into()],
            app: None,
            runner_groups: Vec::new(),
            session_idle_timeout: None,
        }
    }
}

/// State shared by the handlers.
pub(crate) struct Shared {
    state: Mutex<FakeState>,
    tokens: Mutex<tokens::Tokens>,
    faults: Mutex<Vec<Fault>>,
    requests: Mutex<BTreeMap<String, u64>>,
    /// The last requests, with the headers the protocol cares about.
    seen: Mutex<std::collections::VecDeque<SeenRequest>>,
    /// Woken on every change, for long polls.
    changed: Notify,
    options: FakeOptions,
    base_url: String,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Reads the state.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&FakeState) -> R) -> R {
        f(&lock(&self.state))
    }

    /// Changes the state without waking long polls (for changes no poll waits on, such as cutting an envelope).
    pub(crate) fn quietly<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        f(&mut lock(&self.state))
    }

    /// Changes the state and wakes long polls.
    pub(crate) fn mutate<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        let result = f(&mut lock(&self.state));
        self.changed.notify_waiters();
        result
    }

    pub(crate) fn tokens(&self) -> MutexGuard<'_, tokens::Tokens> {
        lock(&self.tokens)
    }
}

/// A running fake; stops when dropped.
pub struct FakeActions {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl FakeActions {
    /// Starts the fake on an ephemeral loopback port.
    ///
    /// # Errors
    /// When the port cannot be bound or the app key is not a PEM public key.
    pub async fn start(options: FakeOptions) -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0".parse().expect("valid address"), options).await
    }

    /// Starts the fake on a given address.
    ///
    /// # Errors
    /// When the port cannot be bound or the app key is not a PEM public key.
    pub async fn start_on(addr: SocketAddr, options: FakeOptions) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let tokens = tokens::Tokens::new(options.pats.clone(), options.app.clone(), options.admin_token_ttl)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("app public key: {e}")))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(
                FakeState::new(options.mode, &options.runner_groups)
                    .with_session_idle_timeout(options.session_idle_timeout),
            ),
            tokens: Mutex::new(tokens),
            faults: Mutex::new(Vec::new()),
            requests: Mutex::new(BTreeMap::new()),
            seen: Mutex::new(std::collections::VecDeque::new()),
            changed: Notify::new(),
            base_url: format!("http://{addr}"),
            options,
        });
        let app = routes::router(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "fake Actions service stopped");
            }
        });
        let ticker = tokio::spawn(expire_jobs(shared.clone()));
        Ok(FakeActions { shared, addr, tasks: vec![server, ticker] })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A `githubConfigUrl` for an organization on this fake (a GHES-style host).
    pub fn config_url(&self, org: &str) -> String {
        format!("{}/{org}", self.shared.base_url)
    }

    /// A real client of this fake for `org`, authenticated with the first PAT the fake accepts, and a scale set
    /// `name` registered through it in the default runner group — what tests and benchmarks start from.
    ///
    /// # Errors
    /// No PAT configured, or the registration failed.
    pub async fn client_with_scale_set(
        &self,
        org: &str,
        name: &str,
    ) -> gha_actions_client::Result<(Arc<gha_actions_client::ActionsClient>, gha_actions_client::model::RunnerScaleSet)>
    {
        use gha_actions_client::{ActionsClient, ClientOptions, Credentials, model::RunnerScaleSet};
        let pat = self.shared.options.pats.first().cloned().ok_or_else(|| {
            gha_actions_client::Error::InvalidCredentials("the fake accepts no personal access token".into())
        })?;
        let client = Arc::new(ActionsClient::new(ClientOptions::new(self.config_url(org), Credentials::Token(pat)))?);
        let set = client
            .create_scale_set(&RunnerScaleSet { name: name.into(), runner_group_id: 1, ..Default::default() })
            .await?;
        Ok((client, set))
    }

    /// Reads or changes the state in process (long polls are woken).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        self.shared.mutate(f)
    }

    /// Enqueues a job.
    pub fn enqueue(&self, spec: JobSpec) -> i64 {
        self.shared.mutate(|s| s.enqueue(spec))
    }

    /// Adds a fault rule.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    /// Revokes every admin token issued so far (the service's answer to them becomes 401).
    pub fn revoke_admin_tokens(&self) {
        self.shared.tokens().revoke_admin_tokens();
    }

    /// Removes every fault rule (an outage ends).
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Requests served per `METHOD /path` (ids replaced by `{id}`).
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        lock(&self.shared.requests).clone()
    }

    /// The last requests served (at most [`SEEN_REQUESTS`]), oldest first.
    pub fn requests_seen(&self) -> Vec<SeenRequest> {
        lock(&self.shared.seen).iter().cloned().collect()
    }
}

impl Drop for FakeActions {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Cancels and re-queues stale jobs.
async fn expire_jobs(shared: Arc<Shared>) {
    let shortest = shared.options.acquire_timeout.min(shared.options.start_timeout);
    let tick = (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        tokio::time::sleep(tick).await;
        let (acquire, start) = (shared.options.acquire_timeout, shared.options.start_timeout);
        if lock(&shared.state).expire(acquire, start) {
            shared.changed.notify_waiters();
        }
    }
}
