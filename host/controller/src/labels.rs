//! Labels, annotations, finalizer names and hashes the controllers stamp on what they create (§1.3, §1.9).

use std::collections::BTreeMap;

use gha_actions_client::Scope;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// `app.kubernetes.io/part-of` value.
pub const PART_OF: &str = "gha-runner-scale-set";
/// Label keys.
pub mod label {
    /// Part of.
    pub const PART_OF: &str = "app.kubernetes.io/part-of";
    /// Component (`runner-set`, `runner`, `runner-scale-set-listener`).
    pub const COMPONENT: &str = "app.kubernetes.io/component";
    /// The chart/controller version an ARS was made for.
    pub const VERSION: &str = "app.kubernetes.io/version";
    /// ARS name.
    pub const SCALE_SET_NAME: &str = "actions.github.com/scale-set-name";
    /// ARS namespace.
    pub const SCALE_SET_NAMESPACE: &str = "actions.github.com/scale-set-namespace";
    /// From the config URL.
    pub const ENTERPRISE: &str = "actions.github.com/enterprise";
    /// From the config URL.
    pub const ORGANIZATION: &str = "actions.github.com/organization";
    /// From the config URL.
    pub const REPOSITORY: &str = "actions.github.com/repository";
    /// On runner pods.
    pub const EPHEMERAL_RUNNER: &str = "actions-ephemeral-runner";
    /// On runner pods: hash of what the pod was built from.
    pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
    /// On the listener Role/RoleBinding.
    pub const LISTENER_NAME: &str = "auto-scaling-listener-name";
    /// On the listener Role/RoleBinding.
    pub const LISTENER_NAMESPACE: &str = "auto-scaling-listener-namespace";
    /// Container-hook pods and secrets of a runner (kubernetes mode).
    pub const RUNNER_POD: &str = "runner-pod";
}

/// Annotation keys.
pub mod annotation {
    /// The scale set id on GitHub (unprefixed, as ARC).
    pub const SCALE_SET_ID: &str = "runner-scale-set-id";
    /// The scale set name on GitHub.
    pub const SCALE_SET_NAME: &str = "actions.github.com/runner-scale-set-name";
    /// The runner group name.
    pub const RUNNER_GROUP: &str = "actions.github.com/runner-group-name";
    /// Hash of what an object was last reconciled from.
    pub const INTEGRITY_HASH: &str = "actions.github.com/integrity-hash";
    /// The ERS patchID in effect when an EphemeralRunner was created.
    pub const PATCH_ID: &str = "actions.github.com/patch-id";
    /// Set by the listener controller when a listener reported the scale set gone: re-validate and re-register.
    pub const SCALE_SET_CHECK: &str = "actions.github.com/scale-set-check";
    /// Chart objects whose `cleanup-protection` finalizer is stripped on deletion, in this order.
    pub const CLEANUP: [(&str, &str); 7] = [
        ("actions.github.com/cleanup-kubernetes-mode-role-binding-name", "rolebindings"),
        ("actions.github.com/cleanup-kubernetes-mode-role-name", "roles"),
        ("actions.github.com/cleanup-kubernetes-mode-service-account-name", "serviceaccounts"),
        ("actions.github.com/cleanup-no-permission-service-account-name", "serviceaccounts"),
        ("actions.github.com/cleanup-github-secret-name", "secrets"),
        ("actions.github.com/cleanup-manager-role-binding", "rolebindings"),
        ("actions.github.com/cleanup-manager-role-name", "roles"),
    ];
}

/// Finalizer names.
pub mod finalizer {
    /// On AutoscalingRunnerSets.
    pub const RUNNER_SET: &str = "autoscalingrunnerset.actions.github.com/finalizer";
    /// On EphemeralRunnerSets.
    pub const EPHEMERAL_RUNNER_SET: &str = "ephemeralrunnerset.actions.github.com/finalizer";
    /// On EphemeralRunners.
    pub const EPHEMERAL_RUNNER: &str = "ephemeralrunner.actions.github.com/finalizer";
    /// On EphemeralRunners until the runner is removed from GitHub.
    pub const RUNNER_REGISTRATION: &str = "ephemeralrunner.actions.github.com/runner-registration-finalizer";
    /// On AutoscalingListeners.
    pub const LISTENER: &str = "autoscalinglistener.actions.github.com/finalizer";
    /// On chart-owned objects the controller needs until runners are deregistered.
    pub const CLEANUP_PROTECTION: &str = "actions.github.com/cleanup-protection";
}

/// A label value as Kubernetes accepts it: at most 63 characters (longer ones end in `-trim`), no leading or
/// trailing `-`, `_` or `.`.
pub fn label_value(value: &str) -> String {
    let value = if value.len() > 63 {
        let mut cut = 58;
        while !value.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}-trim", &value[..cut])
    } else {
        value.to_string()
    };
    value.trim_matches(|c| matches!(c, '-' | '_' | '.')).to_string()
}

/// The labels derived from the config URL (only those with a value, as ARC).
pub fn scope_labels(scope: &Scope) -> BTreeMap<String, String> {
    let (enterprise, organization, repository) = match scope {
        Scope::Enterprise(e) => (e.as_str(), "", ""),
        Scope::Organization(o) => ("", o.as_str(), ""),
        Scope::Repository { owner, repo } => ("", owner.as_str(), repo.as_str()),
    };
    [(label::ENTERPRISE, enterprise), (label::ORGANIZATION, organization), (label::REPOSITORY, repository)]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), label_value(v)))
        .collect()
}

/// The ARS labels that propagate to its objects: all but those with an excluded prefix.
pub fn propagated(labels: &BTreeMap<String, String>, excluded_prefixes: &[String]) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(key, _)| !excluded_prefixes.iter().any(|prefix| key.starts_with(prefix.as_str())))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A short, stable hash of any serialisable value (sha256 of its JSON, whose object keys are sorted).
pub fn hash_of<T: Serialize + ?Sized>(value: &T) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(&Sha256::digest(&json)[..8])
}

/// The 8-character suffix ARC derives names from (`<ARS>-<suffix>-listener`, `<ERS>-<suffix>-runner-proxy`):
/// FNV-32a of the `@`-joined parts, its decimal digits spelled in Kubernetes' "safe" alphabet, so objects ARC
/// made are found under the same names.
pub fn name_suffix(parts: &[&str]) -> String {
    const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let fnv =
        parts.join("@").bytes().fold(0x811c_9dc5_u32, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193));
    fnv.to_string().bytes().take(8).map(|digit| char::from(SAFE[usize::from(digit) % SAFE.len()])).collect()
}

/// Whether an ARS made for `label_version` may be reconciled by a controller built as `build_version`: equal,
/// a `dev`/`canary-` build, or the same major.minor (§1.10).
pub fn version_allowed(label_version: &str, build_version: &str) -> bool {
    if build_version == "dev" || build_version.starts_with("canary-") || label_version == build_version {
        return true;
    }
    let major_minor = |v: &str| {
        let mut parts = v.trim_start_matches('v').split('.');
        let major: u64 = parts.next()?.parse().ok()?;
        let minor: u64 = parts.next()?.parse().ok()?;
        Some((major, minor))
    };
    matches!((major_minor(label_version), major_minor(build_version)), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_trimmed() {
        assert_eq!(label_value("-acme."), "acme");
        let long = "a".repeat(80);
        let trimmed = label_value(&long);
        assert_eq!(trimmed.len(), 63);
        assert!(trimmed.ends_with("-trim"));
    }

    #[test]
    fn excluded_prefixes_do_not_propagate() {
        let labels = BTreeMap::from([
            ("argocd.argoproj.io/instance".to_string(), "x".to_string()),
            ("team".to_string(), "ci".to_string()),
        ]);
        let out = propagated(&labels, &["argocd.argoproj.io".to_string()]);
        assert_eq!(out.keys().collect::<Vec<_>>(), ["team"]);
    }

    #[test]
    fn versions_allowed_by_major_minor() {
        assert!(version_allowed("0.1.3", "0.1.0"));
        assert!(version_allowed("anything", "dev"));
        assert!(!version_allowed("0.2.0", "0.1.0"));
        assert!(!version_allowed("garbage", "0.1.0"));
    }

    #[test]
    fn hashes_are_stable_and_short() {
        assert_eq!(hash_of(&serde_json::json!({"b": 1, "a": 2})), hash_of(&serde_json::json!({"a": 2, "b": 1})));
        // Values ARC computes (Go's hash/fnv and apimachinery's SafeEncodeString).
        assert_eq!(name_suffix(&["arc-runners", "", "https://github.com/acme"]), "85f786b5");
        assert_eq!(name_suffix(&["team-a", "default", "https://github.com/acme/repo"]), "5778b968");
        assert_eq!(name_suffix(&["arc-runners"]), "754b578d");
    }
}
