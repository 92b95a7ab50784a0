//! Keeps the CRDs small enough for `kubectl apply` (its last-applied annotation holds the whole object, and
//! `metadata.annotations` may hold at most 262,144 bytes): the descriptions inside embedded pod specs are
//! Kubernetes' own documentation, repeated in every CRD, and are dropped, as controller-gen's `maxDescLen=0` does.
//! Our own fields keep theirs.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// An object schema with `containers` and `volumes` is a PodSpec.
fn is_pod_spec(schema: &serde_json::Map<String, Value>) -> bool {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| p.contains_key("containers") && p.contains_key("volumes"))
}

fn strip(node: &mut Value, inside_pod_spec: bool) {
    match node {
        Value::Object(schema) => {
            let inside = inside_pod_spec || is_pod_spec(schema);
            if inside {
                schema.remove("description");
            }
            for (key, child) in schema.iter_mut() {
                match (key.as_str(), child) {
                    // Under `properties` the keys are field names (a field may be called `description`).
                    ("properties", Value::Object(fields)) => fields.values_mut().for_each(|f| strip(f, inside)),
                    (_, child) => strip(child, inside),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| strip(item, inside_pod_spec)),
        _ => {}
    }
}

/// `crd` without the descriptions inside pod specs.
pub(crate) fn without_pod_spec_descriptions(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let Ok(mut value) = serde_json::to_value(&crd) else { return crd };
    strip(&mut value, false);
    serde_json::from_value(value).unwrap_or(crd)
}
