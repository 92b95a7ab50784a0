//! wasmtime bindings for the `full-policy` world. Policies may export any subset of its interfaces; the engine
//! looks each one up separately (see `instance.rs`).

wasmtime::component::bindgen!({ world: "full-policy", path: "../../wit" });

pub(crate) use exports::gha_autoscaler::policy::{lifecycle, pod_mutator, scale_down, scaler};
pub(crate) use gha_autoscaler::policy::{logging, metrics, types};
