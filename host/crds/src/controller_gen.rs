//! Makes the derived schemas what controller-gen writes for ARC, so an object ARC's CRDs accept is accepted and
//! stored the same way by ours. kube's derive and k8s-openapi's schemas lack Kubernetes' Go markers:
//! - the root lists `apiVersion`, `kind` and `metadata` and requires nothing (ARC's `spec` is optional);
//! - inside embedded pod specs: every list is `atomic` unless Kubernetes keys it (`containers` by `name`, `ports` by
//!   `containerPort`+`protocol`, …), selector/reference structs are atomic maps whose `name` may be empty, the
//!   API's `+default` values are declared, and Kubernetes' descriptions are dropped (as `maxDescLen=0`), which also
//!   keeps each CRD under the 262,144-byte `kubectl apply` annotation;
//! - outside pod specs: no schema defaults (serde's fill absent fields on read) and no integer widths.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Map, Value, json};

/// Lists Kubernetes merges by key (`+listType=map`), by the field name holding them. Two stay atomic, which accepts
/// every list the keyed form does: `resources.claims` (ARC's own CRDs key it in listener templates only) and
/// `imagePullSecrets` (its key `name` would need the `default: ""` kube-apiserver 1.20 refuses).
const KEYED_LISTS: &[(&str, &[&str])] = &[
    ("containers", &["name"]),
    ("initContainers", &["name"]),
    ("ephemeralContainers", &["name"]),
    ("volumes", &["name"]),
    ("resourceClaims", &["name"]),
    ("schedulingGates", &["name"]),
    ("env", &["name"]),
    ("hostAliases", &["ip"]),
    ("ports", &["containerPort", "protocol"]),
    ("volumeDevices", &["devicePath"]),
    ("volumeMounts", &["mountPath"]),
    ("topologySpreadConstraints", &["topologyKey", "whenUnsatisfiable"]),
];

/// Structs Kubernetes replaces whole (`+structType=atomic`), by their field names: selectors and references.
const ATOMIC_STRUCTS: &[&[&str]] = &[
    &["key", "name", "optional"],
    &["name"],
    &["name", "optional"],
    &["items", "name", "optional"],
    &["defaultMode", "items", "name", "optional"],
    &["apiGroup", "kind", "name"],
    &["matchExpressions", "matchFields"],
    &["matchExpressions", "matchLabels"],
    &["nodeSelectorTerms"],
    &["apiVersion", "fieldPath"],
    &["containerName", "divisor", "resource"],
    &["key", "optional", "path", "volumeName"],
];

/// `+default` values of the API, by (holding field, field); empty-string ones are left out (see
/// `relax_reference_name`).
const DEFAULTS: &[(&str, &str, &str)] = &[
    ("ports[]", "protocol", r#""TCP""#),
    ("fileKeyRef", "optional", "false"),
    ("azureDisk", "fsType", r#""ext4""#),
    ("azureDisk", "readOnly", "false"),
    ("iscsi", "iscsiInterface", r#""default""#),
    ("rbd", "keyring", r#""/etc/ceph/keyring""#),
    ("rbd", "pool", r#""rbd""#),
    ("rbd", "user", r#""admin""#),
    ("scaleIO", "fsType", r#""xfs""#),
    ("scaleIO", "storageMode", r#""ThinProvisioned""#),
];

/// `crd` shaped as controller-gen shapes ARC's.
pub(crate) fn shaped(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let Ok(mut value) = serde_json::to_value(&crd) else { return crd };
    if let Some(versions) = value.pointer_mut("/spec/versions").and_then(Value::as_array_mut) {
        for version in versions {
            if let Some(root) = version.pointer_mut("/schema/openAPIV3Schema").and_then(Value::as_object_mut) {
                shape_root(root);
                visit(root, &Place { field: "", holder: "", inside_pod_spec: false, inside_metadata: false });
            }
        }
    }
    serde_json::from_value(value).unwrap_or(crd)
}

fn shape_root(root: &mut Map<String, Value>) {
    root.remove("required");
    if let Some(properties) = root.get_mut("properties").and_then(Value::as_object_mut) {
        properties.entry("apiVersion").or_insert_with(|| json!({"type": "string"}));
        properties.entry("kind").or_insert_with(|| json!({"type": "string"}));
        properties.entry("metadata").or_insert_with(|| json!({"type": "object"}));
    }
}

/// Where a schema sits: the field holding it (`x[]` for items of list `x`), the one holding that, and what
/// encloses it.
struct Place<'a> {
    field: &'a str,
    holder: &'a str,
    inside_pod_spec: bool,
    inside_metadata: bool,
}

/// An object schema with `containers` and `volumes` is a PodSpec.
fn is_pod_spec(schema: &Map<String, Value>) -> bool {
    properties(schema).is_some_and(|p| p.contains_key("containers") && p.contains_key("volumes"))
}

fn properties(schema: &Map<String, Value>) -> Option<&Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

fn visit(schema: &mut Map<String, Value>, place: &Place) {
    let inside_pod_spec = place.inside_pod_spec || is_pod_spec(schema);
    let inside_metadata = place.inside_metadata || (inside_pod_spec && place.field == "metadata");
    if inside_pod_spec {
        schema.remove("description");
    } else {
        // Our own fields: defaults are serde's (not stored by the API server), integers are Go's `int`.
        schema.remove("default");
        if matches!(schema.get("type").and_then(Value::as_str), Some("integer" | "number")) {
            schema.remove("format");
        }
    }
    let field = place.field;
    if let Some(fields) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, child) in fields.iter_mut() {
            if let Some(child) = child.as_object_mut() {
                if inside_pod_spec && !inside_metadata {
                    add_default(child, field, name);
                }
                visit(child, &Place { field: name, holder: field, inside_pod_spec, inside_metadata });
            }
        }
    }
    let item_field = format!("{field}[]");
    for key in ["items", "additionalProperties"] {
        if let Some(child) = schema.get_mut(key).and_then(Value::as_object_mut) {
            visit(child, &Place { field: &item_field, holder: field, inside_pod_spec, inside_metadata });
        }
    }
    // After the children, whose own defaults are settled by now.
    if inside_pod_spec && !inside_metadata {
        mark(schema, place);
    } else if is_atomic_struct(schema, place.field) {
        // References outside pod specs too (the listener's image pull secrets, the GHES CA's ConfigMap key).
        mark_atomic(schema);
    }
}

/// The list and struct markers of a schema inside a pod spec.
fn mark(schema: &mut Map<String, Value>, place: &Place) {
    let field = place.field;
    match schema.get("type").and_then(Value::as_str) {
        Some("array") => match KEYED_LISTS.iter().find(|(name, _)| *name == field) {
            Some((_, keys)) => {
                schema.insert("x-kubernetes-list-type".into(), "map".into());
                schema.insert("x-kubernetes-list-map-keys".into(), json!(keys));
            }
            None if (place.holder, field) == ("exitCodes", "values") => {
                schema.insert("x-kubernetes-list-type".into(), "set".into());
            }
            None => {
                schema.insert("x-kubernetes-list-type".into(), "atomic".into());
            }
        },
        Some("object") if is_atomic_struct(schema, field) => mark_atomic(schema),
        _ => {}
    }
}

fn mark_atomic(schema: &mut Map<String, Value>) {
    schema.insert("x-kubernetes-map-type".into(), "atomic".into());
    relax_reference_name(schema);
}

fn is_atomic_struct(schema: &Map<String, Value>, field: &str) -> bool {
    if field == "nodeSelector" {
        return true;
    }
    // `os` and scheduling gates are `{name}` too, but not references.
    if field == "os" || field == "schedulingGates[]" {
        return false;
    }
    let Some(props) = properties(schema) else { return false };
    let mut names: Vec<&str> = props.keys().map(String::as_str).collect();
    names.sort_unstable();
    ATOMIC_STRUCTS.contains(&names.as_slice())
}

/// A reference's `name` may be absent (Kubernetes keeps it optional for compatibility); typed references
/// (`apiGroup`/`kind`/`name`) still need theirs. Its `default: ""` is not declared: kube-apiserver 1.20 (our
/// floor) refuses empty-string defaults, and an absent name means what an empty one does.
fn relax_reference_name(schema: &mut Map<String, Value>) {
    if properties(schema).is_some_and(|p| p.contains_key("kind")) {
        return;
    }
    if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
        required.retain(|name| name != "name");
        if required.is_empty() {
            schema.remove("required");
        }
    }
}

fn add_default(child: &mut Map<String, Value>, holder: &str, field: &str) {
    if let Some((_, _, default)) = DEFAULTS.iter().find(|(h, f, _)| *h == holder && *f == field)
        && let Ok(value) = serde_json::from_str::<Value>(default)
    {
        child.entry("default").or_insert(value);
    }
}
