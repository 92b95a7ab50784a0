//! wasmtime bindings for the `full-policy` world of each WIT version this host speaks: the current one (`wit/`)
//! and 0.1.0, frozen in `host/policy-engine/wit/0.1.0`. Policies may export any subset of a world's interfaces;
//! the engine looks each one up separately (see `contract.rs`).

/// `gha-autoscaler:policy@0.2.0`.
pub(crate) mod current {
    wasmtime::component::bindgen!({ world: "full-policy", path: "../../wit" });
}

/// `gha-autoscaler:policy@0.1.0`.
pub(crate) mod v0_1 {
    wasmtime::component::bindgen!({ world: "full-policy", path: "wit/0.1.0" });
}
