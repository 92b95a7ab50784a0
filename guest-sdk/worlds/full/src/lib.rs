//! Bindings for the `full-policy` world. Each world lives in its own crate because the export macros that
//! wit-bindgen generates are crate-global; use them through `gha_autoscaler_policy::export_policy!`.
#![allow(missing_docs, reason = "generated bindings")]

wit_bindgen::generate!({
    world: "full-policy",
    path: "../../../wit",
    pub_export_macro: true,
    export_macro_name: "export_world",
    default_bindings_module: "gha_autoscaler_policy_world_full",
    with: {
        "gha-autoscaler:policy/types@0.2.0": gha_autoscaler_policy_world_scaling::gha_autoscaler::policy::types,
        "gha-autoscaler:policy/logging@0.2.0": gha_autoscaler_policy_world_scaling::gha_autoscaler::policy::logging,
        "gha-autoscaler:policy/metrics@0.2.0": gha_autoscaler_policy_world_scaling::gha_autoscaler::policy::metrics,
    },
});
