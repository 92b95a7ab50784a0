//! What kube-apiserver does with a custom resource's structural schema on every write: unknown fields are
//! pruned (unless `x-kubernetes-preserve-unknown-fields`), nulls in fields that are not `nullable` are dropped,
//! and what is left is validated: types (`x-kubernetes-int-or-string` included), `required`, `enum`, and the
//! numeric, length and item-count bounds. Errors read as the real server's do.

use serde_json::{Map, Value};

/// Prunes `object` in place and validates it against the version's `openAPIV3Schema`.
///
/// # Errors
/// Every violation, each as `path: message`.
pub(crate) fn prune_and_validate(schema: &Value, object: &mut Value) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    // apiVersion, kind and metadata of the root are the server's, never pruned by the schema.
    walk(schema, object, "", &mut errors, true);
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

fn walk(schema: &Value, value: &mut Value, path: &str, errors: &mut Vec<String>, root: bool) {
    if value.is_null() {
        if !flag(schema, "nullable") {
            errors.push(format!(
                "{path}: Invalid value: \"null\": {path} in body must be of type {}: \"null\"",
                schema["type"].as_str().unwrap_or("object")
            ));
        }
        return;
    }
    if !type_matches(schema, value) {
        let (expected, got) = (expected_type(schema), type_name(value));
        errors.push(format!("{path}: Invalid value: \"{got}\": {path} in body must be of type {expected}: \"{got}\""));
        return;
    }
    check_bounds(schema, value, path, errors);
    match value {
        Value::Object(map) => walk_object(schema, map, path, errors, root),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item_schema, item, &format!("{path}[{i}]"), errors, false);
                }
            }
        }
        _ => {}
    }
}

fn walk_object(schema: &Value, map: &mut Map<String, Value>, path: &str, errors: &mut Vec<String>, root: bool) {
    let server_owned = |key: &str| {
        (root || flag(schema, "x-kubernetes-embedded-resource")) && matches!(key, "apiVersion" | "kind" | "metadata")
    };
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
    // Nulls are dropped before validation where the field is not nullable (as upstream does on create/update).
    map.retain(|key, child_value| {
        if server_owned(key) {
            return true;
        }
        let field_schema = properties.and_then(|p| p.get(key)).or(additional);
        match field_schema {
            Some(field) => !child_value.is_null() || flag(field, "nullable"),
            None => preserve,
        }
    });
    for (key, child_value) in map.iter_mut() {
        if server_owned(key) {
            continue;
        }
        if let Some(field) = properties.and_then(|p| p.get(key)).or(additional) {
            walk(field, child_value, &child(path, key), errors, false);
        }
    }
    for name in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        if !map.contains_key(name) {
            errors.push(format!("{}: Required value", child(path, name)));
        }
    }
}

fn expected_type(schema: &Value) -> &str {
    if flag(schema, "x-kubernetes-int-or-string") {
        "integer or string"
    } else {
        schema["type"].as_str().unwrap_or("any")
    }
}

fn type_matches(schema: &Value, value: &Value) -> bool {
    if flag(schema, "x-kubernetes-int-or-string") {
        return matches!(type_name(value), "integer" | "string");
    }
    match schema.get("type").and_then(Value::as_str) {
        None => true,
        Some("number") => value.is_number(),
        Some(expected) => type_name(value) == expected,
    }
}

fn check_bounds(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        errors.push(format!("{path}: Unsupported value: {value}: supported values: {}", list.join(", ")));
    }
    if let Some(number) = value.as_f64() {
        if let Some(min) = bound("minimum").filter(|min| number < *min) {
            errors.push(format!(
                "{path}: Invalid value: {value}: {path} in body should be greater than or equal to {min}"
            ));
        }
        if let Some(max) = bound("maximum").filter(|max| number > *max) {
            errors
                .push(format!("{path}: Invalid value: {value}: {path} in body should be less than or equal to {max}"));
        }
    }
    let length = match value {
        Value::String(text) => Some((text.chars().count() as f64, "Length")),
        Value::Array(items) => Some((items.len() as f64, "Items")),
        _ => None,
    };
    if let Some((length, unit)) = length {
        if let Some(min) = bound(&format!("min{unit}")).filter(|min| length < *min) {
            errors.push(format!(
                "{path}: Invalid value: {value}: {path} in body should have at least {min} {}",
                unit.to_lowercase()
            ));
        }
        if let Some(max) = bound(&format!("max{unit}")).filter(|max| length > *max) {
            errors.push(format!("{path}: Too long: {path} in body should have at most {max} {}", unit.to_lowercase()));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["url"], "properties": {
                "url": {"type": "string", "minLength": 1},
                "min": {"type": "integer", "format": "int32", "minimum": 0, "nullable": true},
                "port": {"x-kubernetes-int-or-string": true},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "template": {"type": "object", "properties": {"spec": {"type": "object", "properties": {
                    "volumes": {"type": "array", "items": {"type": "object"}}}}}}
            }},
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
        }})
    }

    #[test]
    fn unknown_fields_are_pruned_nulls_dropped_and_preserved_subtrees_kept() {
        let mut object = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a", "extra": 1},
            "spec": {"url": "u", "unknown": true, "min": null, "labels": {"a": "1"},
                     "items": [{"name": "n", "bogus": 1}], "config": {"anything": {"deep": [1]}},
                     "template": {"spec": {"volumes": null}}},
            "stray": 1});
        prune_and_validate(&schema(), &mut object).unwrap();
        assert_eq!(
            object,
            json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a", "extra": 1},
            "spec": {"url": "u", "min": null, "labels": {"a": "1"}, "items": [{"name": "n"}],
                     "config": {"anything": {"deep": [1]}}, "template": {"spec": {}}}})
        );
    }

    #[test]
    fn types_required_enums_and_bounds_are_enforced_with_the_servers_wording() {
        let mut object = json!({"spec": {"min": "3", "port": true, "mode": "c", "labels": {"a": 1}, "items": {}}});
        let errors = prune_and_validate(&schema(), &mut object).unwrap_err();
        assert!(errors.contains(&"spec.url: Required value".to_string()), "{errors:?}");
        assert!(
            errors.contains(
                &"spec.min: Invalid value: \"string\": spec.min in body must be of type integer: \"string\""
                    .to_string()
            ),
            "{errors:?}"
        );
        assert!(errors.iter().any(|e| e.starts_with("spec.port: Invalid value: \"boolean\"")), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("spec.mode: Unsupported value")), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("spec.labels.a: Invalid value: \"integer\"")), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("spec.items: Invalid value: \"object\"")), "{errors:?}");
        let mut negative = json!({"spec": {"url": "", "min": -1, "port": "http"}});
        let errors = prune_and_validate(&schema(), &mut negative).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
    }
}
