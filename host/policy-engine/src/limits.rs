//! Sandbox limits per scale set.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::manifest::Hook;

/// Per-policy sandbox limits (`spec.policy.limits`). Defaults follow the measured numbers in the design notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PolicyLimits {
    /// Linear memory cap per instance, MiB (default 64, at most 256).
    #[serde(rename = "memoryMiB")]
    pub memory_mib: u32,
    /// Deadline for `decide`, `select`, `on-job-event` and `info`, ms (default 100, at most 1000).
    pub timeout_ms: u32,
    /// Deadline for `configure` and `mutate-runner-pod`, ms (default 500, at most 2000).
    pub configure_timeout_ms: u32,
    /// Largest state a decision may carry, bytes (default 4096, at most 65536).
    pub max_state_bytes: u32,
}

impl Default for PolicyLimits {
    fn default() -> Self {
        PolicyLimits { memory_mib: 64, timeout_ms: 100, configure_timeout_ms: 500, max_state_bytes: 4096 }
    }
}

/// Longest reason the host keeps.
pub const MAX_REASON_CHARS: usize = 256;
/// Largest policy artifact accepted.
pub const MAX_POLICY_BYTES: usize = 50 << 20;
/// Largest pod patch accepted.
pub const MAX_PATCH_BYTES: usize = 64 << 10;

impl PolicyLimits {
    /// Checks every limit is within its range.
    ///
    /// # Errors
    /// [`Error::InvalidLimits`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let check = |name: &str, value: u32, min: u32, max: u32| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(Error::InvalidLimits(format!("{name} must be within {min}..={max}, got {value}")))
            }
        };
        check("memoryMiB", self.memory_mib, 2, 256)?;
        check("timeoutMs", self.timeout_ms, 1, 1000)?;
        check("configureTimeoutMs", self.configure_timeout_ms, 1, 2000)?;
        check("maxStateBytes", self.max_state_bytes, 0, 65536)
    }

    /// The deadline of one hook.
    pub fn deadline_ms(&self, hook: Hook) -> u32 {
        match hook {
            Hook::Configure | Hook::MutateRunnerPod => self.configure_timeout_ms,
            Hook::Info | Hook::Decide | Hook::Select | Hook::OnJobEvent => self.timeout_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_out_of_range_are_named() {
        let err = PolicyLimits { memory_mib: 1024, ..Default::default() }.validate().unwrap_err();
        assert!(err.to_string().contains("memoryMiB"), "{err}");
        assert!(PolicyLimits::default().validate().is_ok());
    }

    #[test]
    fn limits_read_camel_case_and_reject_unknown_fields() {
        let limits: PolicyLimits = serde_json::from_str(r#"{"memoryMiB": 32, "timeoutMs": 50}"#).unwrap();
        assert_eq!((limits.memory_mib, limits.timeout_ms, limits.configure_timeout_ms), (32, 50, 500));
        assert!(serde_json::from_str::<PolicyLimits>(r#"{"fuel": 1}"#).is_err());
    }
}
