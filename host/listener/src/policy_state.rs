//! Durable policy state: the state of the policy's last decision, kept in a ConfigMap of the scale set's
//! namespace that the controller created for this listener (the listener's Role may read and write that one
//! ConfigMap only), so what a policy learned survives listener restarts and rollouts. Written when it changed, at
//! most every [`SAVE_INTERVAL`], and on shutdown; read at start. A stored state that is corrupt, oversized or of
//! another policy is dropped with a warning and `gha_listener_policy_state_dropped_total{reason}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::metrics::ListenerMetrics;

/// Largest state stored (a policy's `maxStateBytes` is at most this too).
pub const MAX_STATE_BYTES: usize = 64 << 10;
/// Shortest time between two writes.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(5);

/// The ConfigMap's keys.
const STATE: &str = "state";
const SHA256: &str = "sha256";
const POLICY: &str = "policy";
const SAVED_AT: &str = "savedAt";

/// One scale set's stored policy state.
pub struct StateStore {
    api: Api<ConfigMap>,
    name: String,
    policy: String,
    metrics: Arc<ListenerMetrics>,
    /// What the ConfigMap holds as far as we know, and when we last wrote it.
    stored: Option<Vec<u8>>,
    written_at: Option<Instant>,
}

impl StateStore {
    /// The store in ConfigMap `namespace/name` for the policy named `policy`.
    pub fn new(client: Client, namespace: &str, name: &str, policy: &str, metrics: Arc<ListenerMetrics>) -> Self {
        StateStore {
            api: Api::namespaced(client, namespace),
            name: name.into(),
            policy: policy.into(),
            metrics,
            stored: None,
            written_at: None,
        }
    }

    /// The stored state, if there is one this policy may use.
    pub async fn load(&mut self) -> Option<Vec<u8>> {
        let map = match self.api.get_opt(&self.name).await {
            Ok(Some(map)) => map,
            Ok(None) => {
                tracing::warn!(config_map = %self.name, "the policy state ConfigMap is missing; state is not kept");
                return None;
            }
            Err(e) => {
                tracing::warn!(config_map = %self.name, error = %e, "cannot read the stored policy state; starting fresh");
                return None;
            }
        };
        let data = map.data.unwrap_or_default();
        let encoded = data.get(STATE)?;
        match check(&self.policy, data.get(POLICY), encoded, data.get(SHA256)) {
            Ok(state) => {
                tracing::info!(bytes = state.len(), saved_at = ?data.get(SAVED_AT), "restored the policy's state");
                self.stored = Some(state.clone());
                Some(state)
            }
            Err((reason, why)) => {
                tracing::warn!(config_map = %self.name, reason, "dropped the stored policy state: {why}");
                self.metrics.state_dropped(reason);
                None
            }
        }
    }

    /// Whether `state` should be written now: it differs from what is stored and the last write is old enough.
    pub fn due(&self, state: &[u8]) -> bool {
        self.stored.as_deref() != Some(state) && self.written_at.is_none_or(|at| at.elapsed() >= SAVE_INTERVAL)
    }

    /// When a changed `state` may be written, if it is not yet stored.
    pub fn next_write(&self, state: &[u8]) -> Option<Instant> {
        (self.stored.as_deref() != Some(state))
            .then(|| self.written_at.map_or_else(Instant::now, |at| at + SAVE_INTERVAL))
    }

    /// Writes `state` unless it is stored already; failures are logged and retried with the next change.
    pub async fn save(&mut self, state: &[u8]) {
        if self.stored.as_deref() == Some(state) {
            return;
        }
        if state.len() > MAX_STATE_BYTES {
            tracing::warn!(bytes = state.len(), max = MAX_STATE_BYTES, "policy state too large to keep; not stored");
            self.metrics.state_dropped("oversized");
            self.stored = Some(state.to_vec());
            return;
        }
        let patch = json!({"data": {
            STATE: STANDARD.encode(state),
            SHA256: hex::encode(Sha256::digest(state)),
            POLICY: self.policy,
            SAVED_AT: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }});
        self.written_at = Some(Instant::now());
        match self.api.patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => self.stored = Some(state.to_vec()),
            Err(e) => tracing::warn!(config_map = %self.name, error = %e, "cannot store the policy state"),
        }
    }
}

/// A stored state checked: of this policy, decodable, intact, within the bound.
fn check(
    policy: &str,
    stored_policy: Option<&String>,
    encoded: &str,
    sha256: Option<&String>,
) -> Result<Vec<u8>, (&'static str, String)> {
    if stored_policy.map(String::as_str) != Some(policy) {
        return Err(("other-policy", format!("stored by policy {stored_policy:?}, this is {policy:?}")));
    }
    let oversized = |bytes: usize| ("oversized", format!("{bytes} bytes, over {MAX_STATE_BYTES}"));
    if encoded.len() > MAX_STATE_BYTES.div_ceil(3) * 4 {
        return Err(oversized(encoded.len() / 4 * 3));
    }
    let state = STANDARD.decode(encoded.trim()).map_err(|e| ("corrupt", format!("not base64: {e}")))?;
    if state.len() > MAX_STATE_BYTES {
        return Err(oversized(state.len()));
    }
    if sha256.map(String::as_str) != Some(hex::encode(Sha256::digest(&state)).as_str()) {
        return Err(("corrupt", "its sha256 does not match".into()));
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_intact_state_of_this_policy_within_the_bound_is_restored() {
        let state = b"learned".to_vec();
        let encoded = STANDARD.encode(&state);
        let sha = hex::encode(Sha256::digest(&state));
        let policy = "predictive".to_string();
        assert_eq!(check("predictive", Some(&policy), &encoded, Some(&sha)), Ok(state));
        assert_eq!(check("warm-pool", Some(&policy), &encoded, Some(&sha)).unwrap_err().0, "other-policy");
        assert_eq!(check("predictive", Some(&policy), "%%%", Some(&sha)).unwrap_err().0, "corrupt");
        let other = hex::encode(Sha256::digest(b"other"));
        assert_eq!(check("predictive", Some(&policy), &encoded, Some(&other)).unwrap_err().0, "corrupt");
        let huge = STANDARD.encode(vec![0u8; MAX_STATE_BYTES + 1]);
        assert_eq!(check("predictive", Some(&policy), &huge, Some(&sha)).unwrap_err().0, "oversized");
    }
}
