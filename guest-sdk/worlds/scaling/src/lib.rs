//! Bindings for the `scaling-policy` world. Each world lives in its own crate because the export macros that
//! wit-bindgen generates are crate-global; use them through `gha_autoscaler_policy::export_policy!`.
#![allow(missing_docs, reason = "generated bindings")]

wit_bindgen::generate!({
    world: "scaling-policy",
    path: "../../../wit",
    pub_export_macro: true,
    export_macro_name: "export_world",
    default_bindings_module: "gha_autoscaler_policy_world_scaling",
});
