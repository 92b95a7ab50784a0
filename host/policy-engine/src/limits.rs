//! Sandbox limits: a scale set's (`spec.policy.limits`, [`PolicyLimits`]) and the host's fixed caps.

pub use gha_crds::PolicyLimits;

use crate::manifest::Hook;

/// Longest reason the host keeps.
pub const MAX_REASON_CHARS: usize = 256;
/// Largest policy artifact accepted.
pub const MAX_POLICY_BYTES: usize = 50 << 20;
/// Most bytes a guest may hand the host in one crossing (a hook's outputs, or one log or metric call's
/// arguments): wasmtime's hostcall fuel, checked before anything is copied.
pub const MAX_HOSTCALL_BYTES: usize = 1 << 20;
/// Largest pod patch accepted.
pub const MAX_PATCH_BYTES: usize = 64 << 10;
/// Most bytes of labels and annotations (keys and values) one `on-job-event` may return, and the largest single
/// annotation value a patch may set (Kubernetes allows 256 KiB for all of a pod's annotations).
pub const MAX_METADATA_BYTES: usize = 64 << 10;

/// The deadline of one hook under `limits`.
pub(crate) fn deadline_ms(limits: &PolicyLimits, hook: Hook) -> u32 {
    match hook {
        Hook::Configure | Hook::MutateRunnerPod => limits.configure_timeout_ms,
        Hook::Info | Hook::Decide | Hook::Select | Hook::OnJobEvent => limits.timeout_ms,
    }
}
