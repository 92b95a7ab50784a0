//! Runner-pod patches from policies: the allowlist they must stay within, and how they are applied.
//!
//! A patch is an RFC 7386 JSON merge patch on a PodTemplateSpec, with one difference that Kubernetes' strategic
//! merge also makes: `spec.containers` / `spec.initContainers` entries, and each container's `env` entries, merge
//! by `name` (a plain merge patch would replace the whole list and drop the runner's own containers and env).
//!
//! Allowed: `metadata.labels`, `metadata.annotations` (not under `actions.github.com/`), `spec.nodeSelector`,
//! `spec.tolerations`, `spec.affinity`, `spec.topologySpreadConstraints`, `spec.priorityClassName`,
//! `spec.schedulerName`, `spec.terminationGracePeriodSeconds`, and per container `image`, `imagePullPolicy`,
//! `resources` and `env` (plain values). Everything else — `securityContext`, volumes (and so `hostPath`),
//! `serviceAccountName`, `hostNetwork`/`hostPID`/`hostIPC`, `env.valueFrom` — is refused.

use serde_json::{Map, Value};

use crate::limits::MAX_PATCH_BYTES;
use crate::types::PodMetadata;

/// Label and annotation keys reserved for the controller.
pub const RESERVED_PREFIX: &str = "actions.github.com/";

const SPEC_KEYS: &[&str] = &[
    "nodeSelector",
    "tolerations",
    "affinity",
    "topologySpreadConstraints",
    "priorityClassName",
    "schedulerName",
    "terminationGracePeriodSeconds",
    "containers",
    "initContainers",
];
const CONTAINER_KEYS: &[&str] = &["name", "image", "imagePullPolicy", "resources", "env"];

fn refuse(path: &str) -> String {
    format!("`{path}` is not on the pod patch allowlist")
}

/// Parses and checks a patch returned by a policy.
///
/// # Errors
/// The reason, naming the offending path.
pub fn parse_patch(text: &str) -> Result<Value, String> {
    if text.len() > MAX_PATCH_BYTES {
        return Err(format!("patch is {} bytes, over the {MAX_PATCH_BYTES}-byte limit", text.len()));
    }
    let patch: Value = serde_json::from_str(text).map_err(|e| format!("patch is not JSON: {e}"))?;
    validate_patch(&patch)?;
    Ok(patch)
}

/// Checks a patch against the allowlist.
///
/// # Errors
/// The reason, naming the offending path.
pub fn validate_patch(patch: &Value) -> Result<(), String> {
    let root = patch.as_object().ok_or("patch must be a JSON object")?;
    for (key, value) in root {
        match key.as_str() {
            "metadata" => validate_metadata(value)?,
            "spec" => validate_spec(value)?,
            other => return Err(refuse(other)),
        }
    }
    Ok(())
}

fn validate_metadata(value: &Value) -> Result<(), String> {
    let metadata = value.as_object().ok_or("`metadata` must be an object")?;
    for (key, value) in metadata {
        let map = match key.as_str() {
            "labels" | "annotations" => value.as_object().ok_or(format!("`metadata.{key}` must be an object"))?,
            other => return Err(refuse(&format!("metadata.{other}"))),
        };
        for (k, v) in map {
            let value = match v {
                Value::String(s) => Some(s.as_str()),
                Value::Null => None,
                _ => return Err(format!("`metadata.{key}.{k}` must be a string or null")),
            };
            if key == "labels" {
                check_label(k, value.unwrap_or(""))?;
            } else {
                check_annotation(k, value.unwrap_or(""))?;
            }
        }
    }
    Ok(())
}

fn validate_spec(value: &Value) -> Result<(), String> {
    let spec = value.as_object().ok_or("`spec` must be an object")?;
    for (key, value) in spec {
        if !SPEC_KEYS.contains(&key.as_str()) {
            return Err(refuse(&format!("spec.{key}")));
        }
        if key == "containers" || key == "initContainers" {
            for (i, container) in value.as_array().ok_or(format!("`spec.{key}` must be a list"))?.iter().enumerate() {
                validate_container(&format!("spec.{key}[{i}]"), container)?;
            }
        }
    }
    Ok(())
}

fn validate_container(path: &str, value: &Value) -> Result<(), String> {
    let container = value.as_object().ok_or(format!("`{path}` must be an object"))?;
    if !container.get("name").is_some_and(Value::is_string) {
        return Err(format!("`{path}.name` is required: containers merge by name"));
    }
    for (key, value) in container {
        if !CONTAINER_KEYS.contains(&key.as_str()) {
            return Err(refuse(&format!("{path}.{key}")));
        }
        if key == "env" {
            for (i, env) in value.as_array().ok_or(format!("`{path}.env` must be a list"))?.iter().enumerate() {
                let env = env.as_object().ok_or(format!("`{path}.env[{i}]` must be an object"))?;
                for k in env.keys() {
                    if k != "name" && k != "value" {
                        return Err(refuse(&format!("{path}.env[{i}].{k}")));
                    }
                }
                if !env.get("name").is_some_and(Value::is_string) {
                    return Err(format!("`{path}.env[{i}].name` is required"));
                }
            }
        }
    }
    Ok(())
}

/// Applies a validated patch to a pod template.
///
/// # Errors
/// When the patch names a container the template does not have.
pub fn apply_patch(template: &mut Value, patch: &Value) -> Result<(), String> {
    let Some(patch) = patch.as_object() else { return Ok(()) };
    for (key, value) in patch {
        let target = object_entry(template, key);
        if key == "spec" {
            apply_spec(target, value)?;
        } else {
            merge(target, value);
        }
    }
    Ok(())
}

fn object_entry<'a>(value: &'a mut Value, key: &str) -> &'a mut Value {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    value.as_object_mut().expect("made an object above").entry(key.to_string()).or_insert(Value::Null)
}

fn apply_spec(spec: &mut Value, patch: &Value) -> Result<(), String> {
    let Some(patch) = patch.as_object() else { return Ok(()) };
    for (key, value) in patch {
        let target = object_entry(spec, key);
        if key == "containers" || key == "initContainers" {
            for entry in value.as_array().into_iter().flatten() {
                let name = entry.get("name").and_then(Value::as_str).unwrap_or_default();
                let container = find_named(target, name)
                    .ok_or_else(|| format!("patch names container `{name}`, which the pod does not have"))?;
                let mut entry = entry.clone();
                if let Some(env) = entry.as_object_mut().and_then(|c| c.remove("env")) {
                    let list = object_entry(container, "env");
                    for var in env.as_array().into_iter().flatten() {
                        let name = var.get("name").and_then(Value::as_str).unwrap_or_default();
                        match find_named(list, name) {
                            Some(existing) => merge(existing, var),
                            None => push(list, var.clone()),
                        }
                    }
                }
                merge(container, &entry);
            }
        } else {
            merge(target, value);
        }
    }
    Ok(())
}

/// The entry of a list whose `name` is `name`.
fn find_named<'a>(list: &'a mut Value, name: &str) -> Option<&'a mut Value> {
    list.as_array_mut()?.iter_mut().find(|item| item.get("name").and_then(Value::as_str) == Some(name))
}

fn push(list: &mut Value, item: Value) {
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    list.as_array_mut().expect("made an array above").push(item);
}

/// RFC 7386 merge.
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(patch) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let target = target.as_object_mut().expect("made an object above");
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Checks the labels and annotations a policy wants on a runner pod.
///
/// # Errors
/// The first invalid key or value.
pub fn validate_pod_metadata(metadata: &PodMetadata) -> Result<(), String> {
    for (k, v) in &metadata.labels {
        check_label(k, v)?;
    }
    for (k, v) in &metadata.annotations {
        check_annotation(k, v)?;
    }
    Ok(())
}

/// Label keys the controller, ARC and Kubernetes select runner pods by: a policy changing one would hide the pod
/// from its controller (its runner never cleaned up, its job waiting).
const RESERVED_LABELS: &[&str] = &["actions-ephemeral-runner", "pod-template-hash", "runner-pod"];

/// Label key prefixes (and `*.<domain>/` suffixes) of Kubernetes and the recommended app labels.
const RESERVED_LABEL_DOMAINS: &[&str] = &["app.kubernetes.io", "kubernetes.io", "k8s.io"];

fn check_label(key: &str, value: &str) -> Result<(), String> {
    check_key(key)?;
    let domain = key.split_once('/').map(|(prefix, _)| prefix);
    let reserved_domain =
        domain.is_some_and(|d| RESERVED_LABEL_DOMAINS.iter().any(|r| d == *r || d.ends_with(&format!(".{r}"))));
    if RESERVED_LABELS.contains(&key) || reserved_domain {
        return Err(format!("label {key:?} is reserved (the controller and Kubernetes select pods by it)"));
    }
    if !(value.is_empty() || is_name(value, 63)) {
        return Err(format!("label {key}: value {value:?} is not a valid label value"));
    }
    Ok(())
}

fn check_annotation(key: &str, value: &str) -> Result<(), String> {
    check_key(key)?;
    if value.len() > 64 << 10 {
        return Err(format!("annotation {key}: value is over 64 KiB"));
    }
    Ok(())
}

/// A qualified name: an optional DNS-subdomain prefix and `/`, then a name of at most 63 characters.
fn check_key(key: &str) -> Result<(), String> {
    if key.starts_with(RESERVED_PREFIX) {
        return Err(format!("key {key:?} is reserved for the controller"));
    }
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    });
    if prefix_ok && is_name(name, 63) { Ok(()) } else { Err(format!("key {key:?} is not a valid qualified name")) }
}

fn is_name(text: &str, max: usize) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= max
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn template() -> Value {
        json!({
            "metadata": {"labels": {"app": "runner"}},
            "spec": {
                "serviceAccountName": "runner",
                "containers": [{
                    "name": "runner",
                    "image": "ghcr.io/actions/actions-runner:latest",
                    "env": [{"name": "ACTIONS_RUNNER_INPUT_JITCONFIG", "value": "secret"}]
                }]
            }
        })
    }

    #[test]
    fn allowed_patch_merges_containers_and_env_by_name() {
        let patch = parse_patch(
            r#"{"metadata": {"labels": {"team": "infra", "app": null}},
                "spec": {"nodeSelector": {"pool": "ci"},
                         "containers": [{"name": "runner", "resources": {"limits": {"cpu": "2"}},
                                         "env": [{"name": "EXTRA", "value": "1"}]}]}}"#,
        )
        .unwrap();
        let mut pod = template();
        apply_patch(&mut pod, &patch).unwrap();
        assert_eq!(pod["metadata"]["labels"], json!({"team": "infra"}));
        assert_eq!(pod["spec"]["nodeSelector"], json!({"pool": "ci"}));
        let runner = &pod["spec"]["containers"][0];
        assert_eq!(runner["image"], "ghcr.io/actions/actions-runner:latest");
        assert_eq!(runner["resources"]["limits"]["cpu"], "2");
        assert_eq!(runner["env"][0]["name"], "ACTIONS_RUNNER_INPUT_JITCONFIG");
        assert_eq!(runner["env"][1], json!({"name": "EXTRA", "value": "1"}));
        assert_eq!(pod["spec"]["serviceAccountName"], "runner");
    }

    #[test]
    fn escalations_are_refused_with_their_path() {
        for (patch, path) in [
            (json!({"spec": {"hostNetwork": true}}), "spec.hostNetwork"),
            (json!({"spec": {"serviceAccountName": "admin"}}), "spec.serviceAccountName"),
            (json!({"spec": {"volumes": [{"name": "r", "hostPath": {"path": "/"}}]}}), "spec.volumes"),
            (json!({"spec": {"securityContext": {"runAsUser": 0}}}), "spec.securityContext"),
            (
                json!({"spec": {"containers": [{"name": "runner", "securityContext": {"privileged": true}}]}}),
                "spec.containers[0].securityContext",
            ),
            (
                json!({"spec": {"containers": [{"name": "runner", "env": [{"name": "T", "valueFrom": {}}]}]}}),
                "spec.containers[0].env[0].valueFrom",
            ),
            (json!({"status": {}}), "status"),
        ] {
            let err = validate_patch(&patch).unwrap_err();
            assert!(err.contains(path), "{patch}: {err}");
        }
    }

    #[test]
    fn malformed_patches_are_refused() {
        assert!(parse_patch("{not json").unwrap_err().contains("not JSON"));
        assert!(parse_patch("[1]").unwrap_err().contains("object"));
        assert!(parse_patch(r#"{"spec": {"containers": [{"image": "x"}]}}"#).unwrap_err().contains("name"));
        assert!(parse_patch(r#"{"metadata": {"labels": {"actions.github.com/scale-set-name": "x"}}}"#).is_err());
        assert!(parse_patch(r#"{"metadata": {"labels": {"ok": "not valid!"}}}"#).is_err());
        let huge = format!(r#"{{"metadata": {{"annotations": {{"a": "{}"}}}}}}"#, "x".repeat(MAX_PATCH_BYTES));
        assert!(parse_patch(&huge).unwrap_err().contains("limit"));
    }

    #[test]
    fn unknown_containers_are_an_error_not_a_sidecar() {
        let patch = parse_patch(r#"{"spec": {"containers": [{"name": "miner", "image": "evil"}]}}"#).unwrap();
        let err = apply_patch(&mut template(), &patch).unwrap_err();
        assert!(err.contains("miner"), "{err}");
    }

    #[test]
    fn label_keys_follow_kubernetes_rules() {
        assert!(check_key("karpenter.sh/do-not-disrupt").is_ok());
        assert!(check_key("app").is_ok());
        assert!(check_key("Bad_Prefix/x").is_err());
        assert!(check_key(&"a".repeat(64)).is_err());
        assert!(check_label("a", "").is_ok());
        for reserved in ["actions-ephemeral-runner", "pod-template-hash", "app.kubernetes.io/name", "kubernetes.io/os"]
        {
            assert!(check_label(reserved, "x").is_err(), "{reserved}");
        }
        assert!(check_label("node.kubernetes.io/instance-type", "x").is_err());
        assert!(check_label("x.k8s.io/y", "x").is_err());
        assert!(check_label("karpenter.sh/capacity-type", "spot").is_ok());
        let hijack =
            PodMetadata { labels: vec![("actions-ephemeral-runner".into(), "False".into())], annotations: vec![] };
        assert!(validate_pod_metadata(&hijack).is_err(), "on-job-event cannot hide a pod from the controller");
        assert!(
            validate_pod_metadata(&PodMetadata {
                labels: vec![("a".into(), "b".into())],
                annotations: vec![("actions.github.com/x".into(), "1".into())],
            })
            .is_err()
        );
    }
}
