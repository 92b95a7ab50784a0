//! Typed helpers for the opaque `state` bytes a decision hands to the next one.
//!
//! State is JSON so that recorded traces stay readable and other languages can share it. The host caps it at the
//! scale set's `spec.policy.limits.maxStateBytes` (4 KiB by default, at most 64 KiB).

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Reads the previous decision's state; None when it is empty (first call, restart) or not a `T`.
pub fn load<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    if bytes.is_empty() {
        return None;
    }
    serde_json::from_slice(bytes).ok()
}

/// Encodes state for the next decision.
pub fn save<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising plain data structs to JSON cannot fail; an empty state is the safe answer if it ever did.
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_garbage_reads_as_none() {
        let bytes = save(&(1u32, "a"));
        assert_eq!(load::<(u32, String)>(&bytes), Some((1, "a".to_string())));
        assert_eq!(load::<(u32, String)>(b"\xff"), None);
        assert_eq!(load::<(u32, String)>(b""), None);
    }
}
