//! Bindings generated from `wit/`, one crate per world. Types and host imports are generated once (in the
//! `scaling` world crate) and shared by the other worlds, so one set of conversions serves every world.

pub use gha_autoscaler_policy_world_full as full;
pub use gha_autoscaler_policy_world_pod as pod;
pub use gha_autoscaler_policy_world_scaling as scaling;
pub use gha_autoscaler_policy_world_selection as selection;

/// The shared types and host imports.
pub use gha_autoscaler_policy_world_scaling::gha_autoscaler::policy as shared;
