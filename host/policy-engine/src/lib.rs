//! The sandboxed host for gha-autoscaler policies — the only crate that links wasmtime.
//!
//! A policy is a WebAssembly component exporting some of the hooks of the `gha-autoscaler:policy` WIT package
//! (`lifecycle` always; `scaler`, `scale-down` and `pod-mutator` as it chooses). This crate:
//!
//! - loads policies from a built-in name, a file, bytes (a ConfigMap), an https URL pinned by sha256 or an OCI
//!   registry, optionally signature-checked ([`PolicySource`], [`oci`], [`signature`]), compiles them once per process (with an on-disk precompile cache) and checks their
//!   imports and exports before instantiating ([`PolicyEngine`], [`PolicyPre`]);
//! - runs each call in a fresh-enough sandbox: per-call deadline (epoch interruption), memory cap, a new instance
//!   after any trap ([`PolicyInstance`]);
//! - validates and clamps every output ([`validate`], [`pod_patch`]);
//! - applies the scale set's failure policy with a circuit breaker, and hot-swaps policies atomically
//!   ([`ScaleSetPolicy`]);
//! - counts everything in prometheus metrics ([`PolicyMetrics`]).
#![deny(missing_docs)]

pub mod bench;
mod bindings;
mod breaker;
mod builtin;
mod cache;
mod churn;
mod contract;
mod convert;
pub mod docker_config;
mod engine;
mod error;
mod host_state;
mod instance;
mod job_events;
mod limits;
mod log_budget;
mod manifest;
mod metrics;
pub mod oci;
pub mod pod_patch;
mod replay;
mod scale_set_policy;
pub mod signature;
mod source;
mod spec;
pub mod suite;
pub mod validate;

/// Test fixtures for other crates' tests.
#[cfg(feature = "test-fixtures")]
pub mod fixtures {
    /// A policy that misbehaves as its config's `mode` says (`loop`, `panic`, `select-unknown`,
    /// `escalating-patch`, ...).
    pub const MISBEHAVING: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/misbehaving_policy.wasm"));
    /// `warm-pool` as built for WIT 0.1.0 (see `fixtures/wit-0.1.0/README.md`): what older policies look like.
    pub const WARM_POOL_WIT_0_1: &[u8] = include_bytes!("../fixtures/wit-0.1.0/warm_pool.wasm");
    /// `pod-shaper` as built for WIT 0.1.0.
    pub const POD_SHAPER_WIT_0_1: &[u8] = include_bytes!("../fixtures/wit-0.1.0/pod_shaper.wasm");
}

pub use breaker::Breaker;
pub use builtin::{BUILT_IN_POLICIES, built_in};
pub use engine::{CompiledFrom, EngineOptions, PolicyEngine, PolicyPre};
pub use error::{Error, Result};
pub use gha_autoscaler_policy_types as types;
pub use instance::PolicyInstance;
pub use job_events::JobEventBuffer;
pub use limits::PolicyLimits;
pub use manifest::{Hook, PolicyManifest, SUPPORTED_WIT_VERSIONS, WIT_PACKAGE, WIT_VERSION};
pub use metrics::{PolicyMetrics, escape_label_value};
pub use replay::{DecisionRecord, Replayer};
pub use scale_set_policy::{Decided, Outcome, ScaleSetPolicy};
pub use source::{PolicyBytes, PolicySource};
pub use spec::{FailurePolicy, PolicySpec};
pub use validate::Validated;
