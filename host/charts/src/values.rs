//! Helm's values: user layers merged over the chart's `values.yaml` (maps deep-merged, `null` deletes a key),
//! then checked against `values.schema.json`.

use std::path::Path;

use serde_json::{Map, Value};

use crate::RenderError;

/// `a.b.c` = `value` as `{a: {b: {c: value}}}`.
pub(crate) fn nested(path: &str, value: Value) -> Value {
    path.rsplit('.').fold(value, |inner, key| Value::Object(Map::from_iter([(key.to_string(), inner)])))
}

/// Merges `overlay` into `base` as Helm coalesces values.
pub(crate) fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                if value.is_null() {
                    base.remove(&key);
                } else if let Some(existing) = base.get_mut(&key) {
                    merge(existing, value);
                } else {
                    base.insert(key, value);
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// The chart's defaults with `layers` merged in, validated against the chart's schema when it has one.
pub(crate) fn coalesce(chart: &Path, layers: impl IntoIterator<Item = Value>) -> Result<Value, RenderError> {
    let read = |name: &str| std::fs::read_to_string(chart.join(name));
    let defaults = read("values.yaml").map_err(|e| RenderError::Io(format!("values.yaml: {e}")))?;
    let mut values: Value = serde_yaml::from_str(&defaults).map_err(|e| RenderError::Io(e.to_string()))?;
    if values.is_null() {
        values = Value::Object(Map::new());
    }
    for layer in layers {
        merge(&mut values, layer);
    }
    if let Ok(text) = read("values.schema.json") {
        let schema: Value = serde_json::from_str(&text).map_err(|e| RenderError::Io(format!("schema: {e}")))?;
        let validator = jsonschema::validator_for(&schema).map_err(|e| RenderError::Io(format!("schema: {e}")))?;
        let errors: Vec<String> = validator.iter_errors(&values).map(|e| format!("{}: {e}", e.instance_path)).collect();
        if !errors.is_empty() {
            return Err(RenderError::Schema(errors.join("; ")));
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn layers_deep_merge_and_null_deletes() {
        let mut base = json!({"a": {"b": 1, "c": 2}, "list": [1, 2], "gone": true});
        merge(&mut base, json!({"a": {"b": 3}, "list": [9], "gone": null}));
        assert_eq!(base, json!({"a": {"b": 3, "c": 2}, "list": [9]}));
        assert_eq!(nested("x.y.z", json!(1)), json!({"x": {"y": {"z": 1}}}));
    }
}
