//! Write gha-autoscaler policies in Rust.
//!
//! A policy is a type implementing [`Policy`] (typed config, `configure`) and one or more hook traits:
//! [`Scaler`] (desired runners, advertised capacity, floor, drain), [`ScaleDown`] (which idle runners go) and
//! [`PodMutator`] (runner pod shaping and job-event labels). [`export_policy!`] turns it into a component that
//! exports exactly those hooks. The hook traits take and return plain Rust types, so policy logic unit-tests
//! natively with `cargo test`.
//!
//! ```ignore
//! use gha_autoscaler_policy::prelude::*;
//!
//! pub struct Double;
//!
//! impl Policy for Double {
//!     type Config = ();
//!     const NAME: &'static str = "double";
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!     fn configure(_: &ScaleSetRef, _: ()) -> Result<Self, PolicyError> { Ok(Double) }
//! }
//!
//! impl Scaler for Double {
//!     fn decide(&mut self, input: &ScaleInput) -> Result<ScaleDecision, PolicyError> {
//!         let desired = input.bounds.min_runners + 2 * input.statistics.assigned_jobs;
//!         Ok(ScaleDecision { desired_runners: desired, min_runners: input.bounds.min_runners, ..Default::default() })
//!     }
//! }
//!
//! #[cfg(target_arch = "wasm32")]
//! gha_autoscaler_policy::export_policy!(Double: Scaler);
//! ```
//!
//! Build with `cargo build --target wasm32-unknown-unknown --profile policy` and turn the module into a component
//! with `gha-autoscaler policy componentize` (or `wasm-tools component new`).
#![deny(missing_docs)]

pub use gha_autoscaler_policy_types as types;
pub use types::{
    Attributes, Bounds, JobEvent, JobEventRef, JobEvents, JobPhase, JobStatistics, PodMetadata, PolicyError,
    PolicyInfo, PreviousDecision, RunnerCounts, RunnerInfo, RunnerPhase, ScaleDecision, ScaleDownInput, ScaleInput,
    ScaleSetRef, attribute,
};

#[doc(hidden)]
pub mod __private;
mod config;
mod hooks;
pub mod log;
pub mod metrics;
pub mod state;
pub mod testing;
#[doc(hidden)]
pub mod wit;

pub use config::parse_config;
pub use hooks::{PodMutator, Policy, ScaleDown, Scaler};

/// The SDK version, reported to the host through `lifecycle.info`.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Everything a policy usually needs.
pub mod prelude {
    pub use crate::types::*;
    pub use crate::{PodMutator, Policy, ScaleDown, Scaler, log, metrics, state};
}
