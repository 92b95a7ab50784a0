//! A client for the GitHub Actions **runner scale-set** protocol, as ARC's controller and listener speak it.
//!
//! - [`GitHubConfig`]: the config URL (org, org/repo, enterprise; github.com, `*.ghe.com` or GHES).
//! - [`Credentials`]: a PAT or a GitHub App (RS256 JWT → installation token). Secrets never reach logs.
//! - [`ActionsClient`]: registration token → admin connection (`runner-registration`) → admin token refreshed 60 s
//!   before it expires, then every endpoint: runner groups, scale sets, sessions, JIT configs, runners.
//! - [`MessageSession`]: the listener's long-poll session; refreshes an expired queue token and retries once.
//! - Typed [`Error`]s (`RunnerExists`, `JobStillRunning`, `SessionConflict`, `ScaleSetNotFound`, ...) and retries
//!   with backoff and jitter on connection errors, 5xx (not 501) and 429 (honouring `Retry-After`).
#![deny(missing_docs)]

mod auth;
mod client;
mod config;
mod error;
mod http;
pub mod message;
pub mod model;
mod session;

pub use auth::Credentials;
pub use client::{ActionsClient, BUILD_COMMIT, ClientOptions, UserAgent};
pub use config::{FORCE_GHES_ENV, GitHubConfig, Scope, forces_ghes};
pub use error::{Error, Result};
pub use http::{MAX_RESPONSE_BYTES, RetryPolicy};
pub use message::{JobMessage, Message};
pub use session::MessageSession;
