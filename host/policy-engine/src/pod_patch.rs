//! Runner-pod patches from policies: what they may change, and how they are applied.
//!
//! A patch is an RFC 7386 JSON merge patch on a PodTemplateSpec, with one difference that Kubernetes' strategic
//! merge also makes: `spec.containers` entries, and each container's `env` entries, merge by `name` (a plain merge
//! patch would replace the whole list and drop the runner's own containers and env).
//!
//! Two fences. The allowlist is fixed: `metadata.labels`, `metadata.annotations`, `spec.nodeSelector`,
//! `spec.tolerations`, `spec.affinity`, `spec.topologySpreadConstraints`, `spec.priorityClassName`,
//! `spec.schedulerName`, `spec.terminationGracePeriodSeconds`, and per container `image`, `imagePullPolicy`,
//! `resources` and `env` (plain values); everything else — security contexts, volumes (and so `hostPath`),
//! `serviceAccountName`, host namespaces, commands, `env.valueFrom`, init containers — is refused. Within it, the
//! cluster admin's [`PodPermissions`] say which containers, images, env names, Kubernetes-domain keys, priority
//! classes and schedulers a policy may use, and whether placement may reach the control plane. A privileged
//! container (the chart's `dind`) is never the policy's, whatever is granted.

use serde_json::{Map, Value};
use wildmatch::WildMatch;

pub use gha_crds::PodPermissions;

use crate::limits::{MAX_METADATA_BYTES, MAX_PATCH_BYTES};
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
];
const CONTAINER_KEYS: &[&str] = &["name", "image", "imagePullPolicy", "resources", "env"];

/// Env name prefixes no grant opens: the dynamic loader, the Docker client, and the runner's own configuration.
const FORBIDDEN_ENV_PREFIXES: &[&str] = &["LD_", "DOCKER_", "ACTIONS_", "GITHUB_", "RUNNER_"];

/// Node labels (and taint keys) of control-plane nodes.
const CONTROL_PLANE_KEYS: &[&str] = &["node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"];

fn refuse(path: &str) -> String {
    format!("`{path}` is not on the pod patch allowlist")
}

fn matches_any(patterns: &[String], text: &str) -> bool {
    patterns.iter().any(|p| WildMatch::new(p).matches(text))
}

/// Parses and checks a patch returned by a policy for `template`.
///
/// # Errors
/// The reason, naming the offending path.
pub fn parse_patch(text: &str, template: &Value, permissions: &PodPermissions) -> Result<Value, String> {
    if text.len() > MAX_PATCH_BYTES {
        return Err(format!("patch is {} bytes, over the {MAX_PATCH_BYTES}-byte limit", text.len()));
    }
    let patch: Value = serde_json::from_str(text).map_err(|e| format!("patch is not JSON: {e}"))?;
    validate_patch(&patch, template, permissions)?;
    Ok(patch)
}

/// Checks a patch against the allowlist and the admin's permissions.
///
/// # Errors
/// The reason, naming the offending path.
pub fn validate_patch(patch: &Value, template: &Value, permissions: &PodPermissions) -> Result<(), String> {
    let root = patch.as_object().ok_or("patch must be a JSON object")?;
    for (key, value) in root {
        match key.as_str() {
            "metadata" => validate_metadata(value, permissions)?,
            "spec" => validate_spec(value, template, permissions)?,
            other => return Err(refuse(other)),
        }
    }
    Ok(())
}

fn validate_metadata(value: &Value, permissions: &PodPermissions) -> Result<(), String> {
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
                check_label(k, value.unwrap_or(""), permissions)?;
            } else {
                check_annotation(k, value.unwrap_or(""), permissions)?;
            }
        }
    }
    Ok(())
}

fn validate_spec(value: &Value, template: &Value, permissions: &PodPermissions) -> Result<(), String> {
    let spec = value.as_object().ok_or("`spec` must be an object")?;
    for (key, value) in spec {
        match key.as_str() {
            "initContainers" => {
                return Err("`spec.initContainers` are never a policy's (the chart and the controller add them)".into());
            }
            "containers" => {
                let list = value.as_array().ok_or("`spec.containers` must be a list")?;
                for (i, container) in list.iter().enumerate() {
                    validate_container(&format!("spec.containers[{i}]"), container, template, permissions)?;
                }
            }
            "priorityClassName" => check_granted(key, value, &permissions.priority_classes, "priorityClasses")?,
            "schedulerName" => check_granted(key, value, &permissions.scheduler_names, "schedulerNames")?,
            "nodeSelector" | "tolerations" | "affinity" if !permissions.control_plane => {
                check_off_control_plane(key, value)?;
            }
            other if !SPEC_KEYS.contains(&other) => return Err(refuse(&format!("spec.{other}"))),
            _ => {}
        }
    }
    Ok(())
}

fn check_granted(key: &str, value: &Value, granted: &[String], grant: &str) -> Result<(), String> {
    match value.as_str() {
        Some(name) if matches_any(granted, name) => Ok(()),
        _ => Err(format!("`spec.{key}` {value} is not granted (permissions.{grant})")),
    }
}

/// Refuses placement onto control-plane nodes: their node-role labels anywhere in a node selector or affinity,
/// a toleration of their taints, or a toleration of every taint (no key, operator `Exists`).
fn check_off_control_plane(key: &str, value: &Value) -> Result<(), String> {
    let denied =
        || format!("`spec.{key}` reaches control-plane nodes, which is not granted (permissions.controlPlane)");
    if key == "tolerations" {
        for toleration in value.as_array().into_iter().flatten() {
            let toleration_key = toleration.get("key").and_then(Value::as_str).unwrap_or_default();
            let exists = toleration.get("operator").and_then(Value::as_str) == Some("Exists");
            if (toleration_key.is_empty() && exists) || CONTROL_PLANE_KEYS.contains(&toleration_key) {
                return Err(denied());
            }
        }
        return Ok(());
    }
    if mentions_control_plane(value) { Err(denied()) } else { Ok(()) }
}

fn mentions_control_plane(value: &Value) -> bool {
    match value {
        Value::String(s) => CONTROL_PLANE_KEYS.contains(&s.as_str()),
        Value::Array(items) => items.iter().any(mentions_control_plane),
        Value::Object(map) => {
            map.iter().any(|(k, v)| CONTROL_PLANE_KEYS.contains(&k.as_str()) || mentions_control_plane(v))
        }
        _ => false,
    }
}

fn validate_container(path: &str, value: &Value, template: &Value, permissions: &PodPermissions) -> Result<(), String> {
    let container = value.as_object().ok_or(format!("`{path}` must be an object"))?;
    let Some(name) = container.get("name").and_then(Value::as_str) else {
        return Err(format!("`{path}.name` is required: containers merge by name"));
    };
    if !permissions.containers.iter().any(|c| c == name) {
        return Err(format!("container `{name}` is not the policy's to change (permissions.containers)"));
    }
    let existing = template["spec"]["containers"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c.get("name").and_then(Value::as_str) == Some(name)));
    if existing.is_some_and(|c| c["securityContext"]["privileged"] == Value::Bool(true)) {
        return Err(format!("container `{name}` is privileged: never the policy's to change"));
    }
    for (key, value) in container {
        match key.as_str() {
            "image" => match value.as_str() {
                Some(image) if matches_any(&permissions.images, image) => {}
                _ => return Err(format!("`{path}.image` {value} is not granted (permissions.images)")),
            },
            "env" => validate_env(path, value, permissions)?,
            other if !CONTAINER_KEYS.contains(&other) => return Err(refuse(&format!("{path}.{other}"))),
            _ => {}
        }
    }
    Ok(())
}

fn validate_env(path: &str, value: &Value, permissions: &PodPermissions) -> Result<(), String> {
    for (i, env) in value.as_array().ok_or(format!("`{path}.env` must be a list"))?.iter().enumerate() {
        let env = env.as_object().ok_or(format!("`{path}.env[{i}]` must be an object"))?;
        if let Some(k) = env.keys().find(|k| *k != "name" && *k != "value") {
            return Err(refuse(&format!("{path}.env[{i}].{k}")));
        }
        let Some(name) = env.get("name").and_then(Value::as_str) else {
            return Err(format!("`{path}.env[{i}].name` is required"));
        };
        if FORBIDDEN_ENV_PREFIXES.iter().any(|p| name.starts_with(p)) {
            return Err(format!(
                "env {name:?} is never a policy's to set ({} are the runner's own)",
                FORBIDDEN_ENV_PREFIXES.join("*, ")
            ));
        }
        if !matches_any(&permissions.env, name) {
            return Err(format!("env {name:?} is not granted (permissions.env)"));
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
        if key == "containers" {
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

/// Checks the labels and annotations a policy wants on a runner pod (`on-job-event`).
///
/// # Errors
/// The first invalid key or value, or a total over [`MAX_METADATA_BYTES`].
pub fn validate_pod_metadata(metadata: &PodMetadata, permissions: &PodPermissions) -> Result<(), String> {
    let total: usize = metadata.labels.iter().chain(&metadata.annotations).map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_METADATA_BYTES {
        return Err(format!("labels and annotations are {total} bytes, over the {MAX_METADATA_BYTES}-byte limit"));
    }
    for (k, v) in &metadata.labels {
        check_label(k, v, permissions)?;
    }
    for (k, v) in &metadata.annotations {
        check_annotation(k, v, permissions)?;
    }
    Ok(())
}

/// Label keys the controller, ARC and Kubernetes select runner pods by: a policy changing one would hide the pod
/// from its controller (its runner never cleaned up, its job waiting).
const RESERVED_LABELS: &[&str] = &["actions-ephemeral-runner", "pod-template-hash", "runner-pod"];

/// Key prefixes (and `*.<domain>/` prefixes) of Kubernetes, its components and the recommended app labels: a
/// policy may set keys there only as granted (`permissions.metadataKeys`).
const KUBERNETES_DOMAINS: &[&str] = &["kubernetes.io", "k8s.io"];

/// Refuses the controller's keys, and Kubernetes-domain keys the admin did not grant.
fn check_reserved(key: &str, permissions: &PodPermissions) -> Result<(), String> {
    if key.starts_with(RESERVED_PREFIX) || RESERVED_LABELS.contains(&key) {
        return Err(format!("key {key:?} is reserved for the controller (it selects and tracks pods by it)"));
    }
    let domain = key.split_once('/').map(|(prefix, _)| prefix);
    let kubernetes =
        domain.is_some_and(|d| KUBERNETES_DOMAINS.iter().any(|r| d == *r || d.ends_with(&format!(".{r}"))));
    if kubernetes && !matches_any(&permissions.metadata_keys, key) {
        return Err(format!("key {key:?} is under a Kubernetes domain and not granted (permissions.metadataKeys)"));
    }
    Ok(())
}

fn check_label(key: &str, value: &str, permissions: &PodPermissions) -> Result<(), String> {
    check_key(key)?;
    check_reserved(key, permissions)?;
    if !(value.is_empty() || is_name(value, 63)) {
        return Err(format!("label {key}: value {value:?} is not a valid label value"));
    }
    Ok(())
}

fn check_annotation(key: &str, value: &str, permissions: &PodPermissions) -> Result<(), String> {
    check_key(key)?;
    check_reserved(key, permissions)?;
    if value.len() > MAX_METADATA_BYTES {
        return Err(format!("annotation {key}: value is over {MAX_METADATA_BYTES} bytes"));
    }
    Ok(())
}

/// A qualified name: an optional DNS-subdomain prefix and `/`, then a name of at most 63 characters.
fn check_key(key: &str) -> Result<(), String> {
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
                "initContainers": [{"name": "init-dind-externals", "image": "runner"}],
                "containers": [{
                    "name": "runner",
                    "image": "ghcr.io/actions/actions-runner:latest",
                    "env": [{"name": "ACTIONS_RUNNER_INPUT_JITCONFIG", "value": "secret"}]
                }, {
                    "name": "dind", "image": "docker:dind", "securityContext": {"privileged": true}
                }]
            }
        })
    }

    fn granted() -> PodPermissions {
        PodPermissions {
            containers: vec!["runner".into(), "dind".into()],
            images: vec!["ghcr.io/actions/actions-runner:*".into()],
            env: vec!["POLICY_*".into()],
            ..PodPermissions::default()
        }
    }

    fn check(patch: Value, permissions: &PodPermissions) -> Result<(), String> {
        validate_patch(&patch, &template(), permissions)
    }

    #[test]
    fn allowed_patch_merges_containers_and_env_by_name() {
        let patch = parse_patch(
            r#"{"metadata": {"labels": {"team": "infra", "app": null}},
                "spec": {"nodeSelector": {"pool": "ci"},
                         "containers": [{"name": "runner", "resources": {"limits": {"cpu": "2"}},
                                         "env": [{"name": "POLICY_EXTRA", "value": "1"}]}]}}"#,
            &template(),
            &granted(),
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
        assert_eq!(runner["env"][1], json!({"name": "POLICY_EXTRA", "value": "1"}));
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
            (json!({"spec": {"containers": [{"name": "runner", "command": ["sh"]}]}}), "spec.containers[0].command"),
            (json!({"status": {}}), "status"),
        ] {
            let err = check(patch.clone(), &granted()).unwrap_err();
            assert!(err.contains(path), "{patch}: {err}");
        }
    }

    #[test]
    fn the_default_grant_shapes_only_the_runner_container() {
        let defaults = PodPermissions::default();
        let resources = json!({"spec": {"containers": [{"name": "runner", "resources": {"limits": {"cpu": "2"}}}]}});
        assert!(check(resources, &defaults).is_ok());
        for (patch, why) in [
            (json!({"spec": {"containers": [{"name": "dind", "image": "evil"}]}}), "permissions.containers"),
            (json!({"spec": {"initContainers": [{"name": "init-dind-externals", "image": "evil"}]}}), "never"),
            (json!({"spec": {"containers": [{"name": "runner", "image": "evil:latest"}]}}), "permissions.images"),
            (json!({"spec": {"containers": [{"name": "runner", "image": null}]}}), "permissions.images"),
            (
                json!({"spec": {"containers": [{"name": "runner", "env": [{"name": "A", "value": "1"}]}]}}),
                "permissions.env",
            ),
            (json!({"spec": {"priorityClassName": "system-node-critical"}}), "permissions.priorityClasses"),
            (json!({"spec": {"schedulerName": "mine"}}), "permissions.schedulerNames"),
        ] {
            let err = check(patch.clone(), &defaults).unwrap_err();
            assert!(err.contains(why), "{patch}: {err}");
        }
    }

    #[test]
    fn a_privileged_container_is_never_the_policys_even_when_named() {
        let err = check(
            json!({"spec": {"containers": [{"name": "dind", "image": "ghcr.io/actions/actions-runner:x"}]}}),
            &granted(),
        )
        .unwrap_err();
        assert!(err.contains("privileged"), "{err}");
    }

    #[test]
    fn granted_images_and_env_are_matched_by_pattern_and_runner_env_never() {
        let ok = json!({"spec": {"containers": [{"name": "runner", "image": "ghcr.io/actions/actions-runner:2.330.0",
                                                  "env": [{"name": "POLICY_TIER", "value": "large"}]}]}});
        assert!(check(ok, &granted()).is_ok());
        let everything = PodPermissions { env: vec!["*".into()], ..granted() };
        for name in ["LD_PRELOAD", "DOCKER_HOST", "ACTIONS_RUNNER_HOOK_JOB_STARTED", "GITHUB_TOKEN", "RUNNER_TEMP"] {
            let patch = json!({"spec": {"containers": [{"name": "runner", "env": [{"name": name, "value": "x"}]}]}});
            assert!(check(patch, &everything).unwrap_err().contains("never"), "{name}");
        }
    }

    #[test]
    fn control_plane_placement_needs_the_grant() {
        for patch in [
            json!({"spec": {"nodeSelector": {"node-role.kubernetes.io/control-plane": ""}}}),
            json!({"spec": {"tolerations": [{"operator": "Exists"}]}}),
            json!({"spec": {"tolerations": [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}]}}),
            json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}]}}}}}),
        ] {
            assert!(check(patch.clone(), &granted()).unwrap_err().contains("controlPlane"), "{patch}");
            assert!(check(patch, &PodPermissions { control_plane: true, ..granted() }).is_ok());
        }
        let gpu = json!({"spec": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}});
        assert!(check(gpu, &PodPermissions::default()).is_ok());
    }

    #[test]
    fn malformed_patches_are_refused() {
        let (pod, grant) = (template(), granted());
        assert!(parse_patch("{not json", &pod, &grant).unwrap_err().contains("not JSON"));
        assert!(parse_patch("[1]", &pod, &grant).unwrap_err().contains("object"));
        assert!(
            parse_patch(r#"{"spec": {"containers": [{"image": "x"}]}}"#, &pod, &grant).unwrap_err().contains("name")
        );
        assert!(
            parse_patch(r#"{"metadata": {"labels": {"actions.github.com/scale-set-name": "x"}}}"#, &pod, &grant)
                .is_err()
        );
        assert!(parse_patch(r#"{"metadata": {"labels": {"ok": "not valid!"}}}"#, &pod, &grant).is_err());
        let huge = format!(r#"{{"metadata": {{"annotations": {{"a": "{}"}}}}}}"#, "x".repeat(MAX_PATCH_BYTES));
        assert!(parse_patch(&huge, &pod, &grant).unwrap_err().contains("limit"));
    }

    #[test]
    fn unknown_containers_are_an_error_not_a_sidecar() {
        let grant = PodPermissions { containers: vec!["miner".into()], ..PodPermissions::default() };
        let patch = parse_patch(r#"{"spec": {"containers": [{"name": "miner"}]}}"#, &template(), &grant).unwrap();
        let err = apply_patch(&mut template(), &patch).unwrap_err();
        assert!(err.contains("miner"), "{err}");
    }

    #[test]
    fn reserved_keys_are_the_controllers_and_kubernetes_domains_only_as_granted() {
        let defaults = PodPermissions::default();
        assert!(check_key("karpenter.sh/do-not-disrupt").is_ok());
        assert!(check_key("app").is_ok());
        assert!(check_key("Bad_Prefix/x").is_err());
        assert!(check_key(&"a".repeat(64)).is_err());
        assert!(check_label("a", "", &defaults).is_ok());
        for reserved in ["actions-ephemeral-runner", "pod-template-hash", "app.kubernetes.io/name", "kubernetes.io/os"]
        {
            assert!(check_label(reserved, "x", &defaults).is_err(), "{reserved}");
        }
        assert!(check_label("node.kubernetes.io/instance-type", "x", &defaults).is_err());
        assert!(check_label("x.k8s.io/y", "x", &defaults).is_err());
        assert!(check_label("karpenter.sh/capacity-type", "spot", &defaults).is_ok());
        assert!(check_annotation("cluster-autoscaler.kubernetes.io/safe-to-evict", "false", &defaults).is_ok());
        assert!(check_annotation("kubectl.kubernetes.io/restartedAt", "now", &defaults).is_err());
        let all = PodPermissions { metadata_keys: vec!["*".into()], ..defaults.clone() };
        assert!(check_annotation("kubectl.kubernetes.io/restartedAt", "now", &all).is_ok());
        assert!(check_label("actions-ephemeral-runner", "False", &all).is_err(), "the controller's keys: never");
        let hijack =
            PodMetadata { labels: vec![("actions-ephemeral-runner".into(), "False".into())], annotations: vec![] };
        assert!(validate_pod_metadata(&hijack, &all).is_err(), "on-job-event cannot hide a pod from the controller");
        let controller = PodMetadata { labels: vec![], annotations: vec![("actions.github.com/x".into(), "1".into())] };
        assert!(validate_pod_metadata(&controller, &all).is_err());
    }

    #[test]
    fn job_event_metadata_is_bounded_in_total() {
        let many: Vec<_> = (0..64).map(|i| (format!("note-{i}"), "x".repeat(2 << 10))).collect();
        let metadata = PodMetadata { labels: vec![], annotations: many };
        let err = validate_pod_metadata(&metadata, &PodPermissions::default()).unwrap_err();
        assert!(err.contains("limit"), "{err}");
    }
}
