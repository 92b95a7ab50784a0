//! Errors of a reconcile. Every one is logged and retried with backoff; none stops the manager.

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed a request.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// The Actions service refused or failed a request.
    #[error("actions service: {0}")]
    Actions(Box<gha_actions_client::Error>),
    /// The spec cannot be acted on (also reported as a status condition).
    #[error("{0}")]
    Invalid(String),
    /// The scale set's policy failed with failure policy `Fail`.
    #[error("policy: {0}")]
    Policy(String),
}

impl From<gha_actions_client::Error> for Error {
    fn from(error: gha_actions_client::Error) -> Self {
        Error::Actions(Box::new(error))
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// True for an API error with this HTTP code.
pub fn is_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

/// Maps NotFound to `None`.
pub fn optional<T>(result: kube::Result<T>) -> kube::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if is_status(&e, 404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Ignores NotFound (deleting what is already gone).
pub fn ignore_not_found<T>(result: kube::Result<T>) -> kube::Result<()> {
    optional(result).map(|_| ())
}
