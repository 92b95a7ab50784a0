//! Every property path of ARC 0.14.2's CRDs exists in ours with the same type, list/map markers, enum and
//! default, and ours requires nothing ARC does not: an object ARC's API server accepts, ours accepts and stores the
//! same way (ours may add optional fields).
//!
//! `tests/data/arc-0.14.2-crd-shapes.tsv` is ARC's CRDs reduced to that shape (one line per path). To write it
//! anew from ARC's chart: `ARC_CRDS_DIR=<actions-runner-controller>/charts/gha-runner-scale-set-controller/crds
//! cargo test -p gha-crds --test arc_compatibility -- --ignored`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

const FIXTURE: &str = "tests/data/arc-0.14.2-crd-shapes.tsv";

/// What of one schema node decides which values are accepted and how they are stored and merged.
fn node_shape(schema: &Value) -> Value {
    let mut shape = serde_json::Map::new();
    for key in [
        "type",
        "format",
        "enum",
        "default",
        "required",
        "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
    ] {
        if let Some(value) = schema.get(key) {
            shape.insert(key.into(), value.clone());
        }
    }
    Value::Object(shape)
}

/// Path → shape of every node (`.a.b`, `[]` for list items, `{}` for map values).
fn shapes(schema: &Value, path: String, out: &mut BTreeMap<String, Value>) {
    out.insert(path.clone(), node_shape(schema));
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            shapes(child, format!("{path}.{name}"), out);
        }
    }
    if let Some(items) = schema.get("items") {
        shapes(items, format!("{path}[]"), out);
    }
    if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        shapes(values, format!("{path}{{}}"), out);
    }
}

/// Kind → path → shape, from CRD documents.
fn crd_shapes(crds: &[Value]) -> BTreeMap<String, BTreeMap<String, Value>> {
    crds.iter()
        .map(|crd| {
            let mut paths = BTreeMap::new();
            shapes(&crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"], String::new(), &mut paths);
            (crd["spec"]["names"]["kind"].as_str().unwrap_or_default().to_string(), paths)
        })
        .collect()
}

fn ours() -> BTreeMap<String, BTreeMap<String, Value>> {
    let crds: Vec<Value> = gha_crds::all().iter().map(|crd| serde_json::to_value(crd).unwrap()).collect();
    crd_shapes(&crds)
}

fn arc() -> BTreeMap<String, BTreeMap<String, Value>> {
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    let mut kinds: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.splitn(3, '\t');
        let (Some(kind), Some(path), Some(shape)) = (fields.next(), fields.next(), fields.next()) else {
            panic!("bad fixture line {line:?}")
        };
        kinds.entry(kind.into()).or_default().insert(path.into(), serde_json::from_str(shape).unwrap());
    }
    kinds
}

/// A list without a marker is atomic (Kubernetes' rule for CRDs).
fn list_type(shape: &Value) -> Value {
    match shape.get("type") {
        Some(t) if t == "array" => shape.get("x-kubernetes-list-type").cloned().unwrap_or(json!("atomic")),
        _ => Value::Null,
    }
}

/// Two lists ARC keys stay atomic in ours, which accepts every list the keyed form does: `resources.claims` (ARC's
/// own CRDs key it in listener templates only) and `imagePullSecrets` (its key `name` would need the `default: ""`
/// kube-apiserver 1.20 refuses).
fn atomic_allowance(path: &str, arc: &Value, ours: &Value) -> bool {
    let allowed = path.ends_with("resources.claims") || path.ends_with("spec.imagePullSecrets");
    allowed && list_type(ours) == "atomic" && list_type(arc) == "map"
}

/// Why `ours` would refuse or store differently what `arc` accepts, if it would. ARC's `default: ""` may be
/// missing: kube-apiserver 1.20 refuses empty-string defaults (an absent string field reads as empty anyway).
fn incompatibility(path: &str, arc: &Value, ours: &Value) -> Option<String> {
    let same = |key: &str| arc.get(key) == ours.get(key);
    for key in ["type", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields"] {
        if !same(key) {
            return Some(format!("{key}: ARC {:?}, ours {:?}", arc.get(key), ours.get(key)));
        }
    }
    let empty_default = arc.get("default") == Some(&json!("")) && ours.get("default").is_none();
    if !same("default") && !empty_default {
        return Some(format!("default: ARC {:?}, ours {:?}", arc.get("default"), ours.get("default")));
    }
    if let Some(format) = ours.get("format").filter(|_| !same("format")) {
        return Some(format!("format {format} where ARC has {:?}", arc.get("format")));
    }
    if !atomic_allowance(path, arc, ours)
        && (list_type(arc) != list_type(ours) || !same("x-kubernetes-list-map-keys") || !same("x-kubernetes-map-type"))
    {
        return Some(format!("markers: ARC {arc}, ours {ours}"));
    }
    let listed = |shape: &Value, key: &str| -> Vec<Value> {
        shape.get(key).and_then(Value::as_array).cloned().unwrap_or_default()
    };
    let arc_required = listed(arc, "required");
    if let Some(extra) = listed(ours, "required").into_iter().find(|field| !arc_required.contains(field)) {
        return Some(format!("ours requires {extra}, ARC does not"));
    }
    let ours_enum = listed(ours, "enum");
    if ours.get("enum").is_some() && listed(arc, "enum").iter().any(|value| !ours_enum.contains(value)) {
        return Some(format!("enum: ARC {:?}, ours {:?}", arc.get("enum"), ours.get("enum")));
    }
    None
}

#[test]
fn every_path_of_arcs_crds_is_accepted_and_stored_alike_by_ours() {
    let ours = ours();
    let mut problems = Vec::new();
    for (kind, paths) in arc() {
        let Some(our_paths) = ours.get(&kind) else {
            problems.push(format!("{kind}: no such CRD"));
            continue;
        };
        for (path, arc_shape) in paths {
            match our_paths.get(&path) {
                None => problems.push(format!("{kind} {path}: missing (pruned)")),
                Some(our_shape) => {
                    if let Some(why) = incompatibility(&path, &arc_shape, our_shape) {
                        problems.push(format!("{kind} {path}: {why}"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{} incompatibilities:\n{}", problems.len(), problems.join("\n"));
}

#[test]
#[ignore = "writes the fixture from ARC's CRDs in ARC_CRDS_DIR"]
fn write_the_fixture_from_arcs_crds() {
    let dir = std::env::var("ARC_CRDS_DIR").expect("ARC_CRDS_DIR");
    let mut crds = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(document).unwrap();
            if !value.is_null() {
                crds.push(value);
            }
        }
    }
    let mut out = String::new();
    for (kind, paths) in crd_shapes(&crds) {
        for (path, shape) in paths {
            out.push_str(&format!("{kind}\t{path}\t{shape}\n"));
        }
    }
    std::fs::write(FIXTURE, out).unwrap();
}
