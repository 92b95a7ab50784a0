//! One error type for loading and calling policies.

use crate::manifest::Hook;
use crate::types::PolicyError;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with a policy.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The source could not be read or fetched.
    #[error("policy source {origin}: {message}")]
    Source {
        /// Where the policy was to come from.
        origin: String,
        /// What went wrong.
        message: String,
    },
    /// The downloaded or given bytes do not match the pinned sha256.
    #[error("policy source {origin}: sha256 mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Where the policy came from.
        origin: String,
        /// The pinned digest.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// The artifact is larger than allowed.
    #[error("policy is {size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Artifact size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// Not a component, or not valid WebAssembly.
    #[error("policy is not a valid WebAssembly component: {0}")]
    Compile(String),
    /// Built against a WIT version this host does not speak.
    #[error("policy built for WIT {found}, host supports {supported}")]
    IncompatibleWit {
        /// What the policy uses.
        found: String,
        /// What the host provides.
        supported: String,
    },
    /// The policy imports something the host does not provide.
    #[error("policy imports `{import}`, which this host does not provide{hint}")]
    UnsupportedImport {
        /// The import name.
        import: String,
        /// Extra advice (e.g. for WASI).
        hint: &'static str,
    },
    /// A required export is missing.
    #[error("policy does not export {0}")]
    MissingExport(String),
    /// The policy's limits are out of range.
    #[error("invalid policy limits: {0}")]
    InvalidLimits(String),
    /// Instantiation failed.
    #[error("cannot instantiate policy: {0}")]
    Instantiate(String),
    /// The policy rejected its config.
    #[error("policy rejected its config: {0}")]
    Config(PolicyError),
    /// The call ran past its deadline and was interrupted.
    #[error("policy {hook} exceeded its {deadline_ms} ms deadline")]
    Timeout {
        /// Hook called.
        hook: Hook,
        /// The deadline.
        deadline_ms: u32,
    },
    /// The call tried to grow memory past the cap.
    #[error("policy {hook} exceeded its {limit_mib} MiB memory limit")]
    MemoryLimit {
        /// Hook called.
        hook: Hook,
        /// The cap.
        limit_mib: u32,
    },
    /// The guest handed the host more bytes in one crossing than allowed; refused before they were copied.
    #[error("policy {hook} handed the host over {limit} bytes at once (outputs, a log line or metric labels)")]
    OutputLimit {
        /// Hook called.
        hook: Hook,
        /// The limit, bytes.
        limit: usize,
    },
    /// The guest trapped (panic, unreachable, out-of-bounds...).
    #[error("policy {hook} trapped: {message}")]
    Trap {
        /// Hook called.
        hook: Hook,
        /// wasmtime's description, with the guest backtrace.
        message: String,
    },
    /// The guest returned an error.
    #[error("policy {hook} failed: {error}")]
    Policy {
        /// Hook called.
        hook: Hook,
        /// The policy's error.
        error: PolicyError,
    },
    /// The guest returned something the host refuses.
    #[error("policy {hook} returned invalid output: {reason}")]
    InvalidOutput {
        /// Hook called.
        hook: Hook,
        /// Why it was refused.
        reason: String,
    },
    /// The policy does not export the hook.
    #[error("policy does not implement {0}")]
    NotImplemented(Hook),
    /// Too many consecutive failures: the policy is not called for a while.
    #[error("policy circuit breaker open ({failures} consecutive failures); retrying in {retry_in_ms} ms")]
    BreakerOpen {
        /// Consecutive failures so far.
        failures: u32,
        /// Time until the next attempt.
        retry_in_ms: u64,
    },
}

impl Error {
    /// A short label for metrics (`result` / `kind`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Source { .. } | Error::DigestMismatch { .. } | Error::TooLarge { .. } => "source",
            Error::Compile(_) | Error::IncompatibleWit { .. } | Error::UnsupportedImport { .. } => "load",
            Error::MissingExport(_) | Error::Instantiate(_) | Error::InvalidLimits(_) => "load",
            Error::Config(_) => "config",
            Error::Timeout { .. } => "timeout",
            Error::MemoryLimit { .. } => "memory",
            Error::OutputLimit { .. } => "output_limit",
            Error::Trap { .. } => "trap",
            Error::Policy { .. } => "error",
            Error::InvalidOutput { .. } => "invalid",
            Error::NotImplemented(_) => "not_implemented",
            Error::BreakerOpen { .. } => "breaker_open",
        }
    }

    /// Whether the instance must be thrown away (it is poisoned after any trap).
    pub(crate) fn poisons_instance(&self) -> bool {
        matches!(
            self,
            Error::Timeout { .. } | Error::MemoryLimit { .. } | Error::OutputLimit { .. } | Error::Trap { .. }
        )
    }
}
