//! Errors of the protocol client.

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong talking to GitHub and the Actions service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config URL cannot be used.
    #[error("invalid GitHub config URL {0}")]
    InvalidConfigUrl(String),
    /// The credentials cannot be used (bad private key, empty token...).
    #[error("invalid credentials: {0}")]
    InvalidCredentials(String),
    /// A client option is invalid (CA bundle, proxy).
    #[error("invalid client option: {0}")]
    InvalidOption(String),
    /// `generatejitconfig` for a name that is taken (`AgentExistsException`).
    #[error("a runner with this name already exists: {0}")]
    RunnerExists(String),
    /// `AgentNotFoundException`.
    #[error("runner not found: {0}")]
    RunnerNotFound(String),
    /// `RemoveRunner` on a runner with a job (`JobStillRunningException`).
    #[error("the runner still runs a job: {0}")]
    JobStillRunning(String),
    /// 401 on a message-queue operation: refresh the session.
    #[error("the message queue token expired")]
    MessageQueueTokenExpired,
    /// 404 on a message-queue operation: the service dropped the session; open a new one.
    #[error("the message session no longer exists: {0}")]
    SessionNotFound(String),
    /// 409 on session creation: another listener holds the session.
    #[error("the scale set already has an active session: {0}")]
    SessionConflict(String),
    /// 404 / `RunnerScaleSetNotFoundException`: the scale set is gone (possibly garbage-collected by GitHub).
    #[error("runner scale set not found: {0}")]
    ScaleSetNotFound(String),
    /// A runner group lookup found nothing or more than one.
    #[error("runner group {0}")]
    RunnerGroup(String),
    /// The service answered with something we cannot use.
    #[error("invalid response from {url}: {message}")]
    InvalidResponse {
        /// Request URL (no credentials).
        url: String,
        /// What is wrong.
        message: String,
    },
    /// Any other HTTP failure, with the request ids GitHub support asks for.
    #[error(
        "{method} {url} failed with HTTP {status}: {message} (activity id {activity_id:?}, github request id {github_request_id:?})"
    )]
    Http {
        /// Method.
        method: String,
        /// URL (no credentials).
        url: String,
        /// Status code.
        status: u16,
        /// Exception name and message, or the body.
        message: String,
        /// `ActivityId` response header.
        activity_id: Option<String>,
        /// `X-GitHub-Request-Id` response header.
        github_request_id: Option<String>,
    },
    /// The request could not be sent or the response not read, after retries.
    #[error("{method} {url}: {source}")]
    Transport {
        /// Method.
        method: String,
        /// URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
}

impl Error {
    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::InvalidConfigUrl(_) | Error::InvalidCredentials(_) | Error::InvalidOption(_) => "config",
            Error::RunnerExists(_) => "runner_exists",
            Error::RunnerNotFound(_) => "runner_not_found",
            Error::JobStillRunning(_) => "job_still_running",
            Error::MessageQueueTokenExpired => "queue_token_expired",
            Error::SessionConflict(_) => "session_conflict",
            Error::SessionNotFound(_) => "session_not_found",
            Error::ScaleSetNotFound(_) => "scale_set_not_found",
            Error::RunnerGroup(_) => "runner_group",
            Error::InvalidResponse { .. } => "invalid_response",
            Error::Http { .. } => "http",
            Error::Transport { .. } => "transport",
        }
    }

    /// The HTTP status, when the service answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}
