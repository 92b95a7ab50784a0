//! Fuzzing as property tests, bounded so they run in CI: every input a remote party or a user controls is
//! decoded from seeds in `fuzz/corpus/<target>/` mutated at the byte level (flips, cuts, splices of JSON tokens)
//! and at the JSON level (any node replaced by arbitrary JSON). Decoders must never panic, and what they accept
//! must hold their invariants. proptest keeps failing cases in `proptest-regressions/`.

use std::path::PathBuf;

use gha_crds::AutoscalingRunnerSet;
use gha_listener::ListenerConfig;
use gha_policy_engine::pod_patch::{PodPermissions, apply_patch, parse_patch};
use proptest::prelude::*;
use serde_json::{Value, json};

const CASES: u32 = 400;

/// The seeds of a target.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// A byte-level edit.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Truncate(usize),
    Remove(usize, usize),
    Splice(usize, &'static str),
    Duplicate(usize, usize),
}

const TOKENS: &[&str] = &[
    "null",
    "{}",
    "[]",
    "-1",
    "0",
    "1e309",
    "18446744073709551616",
    "\"",
    "\\u0000",
    "\\ud800",
    "\u{202e}",
    "true",
    ",",
    ":",
    "\"\"",
    "[[[[[[[[",
    "{\"a\":",
    "\u{feff}",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, bits)| Edit::Flip(at, bits)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), 1usize..16).prop_map(|(at, len)| Edit::Remove(at, len)),
        (any::<usize>(), proptest::sample::select(TOKENS)).prop_map(|(at, token)| Edit::Splice(at, token)),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Edit::Duplicate(at, len)),
    ]
}

fn apply_edits(seed: &[u8], edits: &[Edit]) -> String {
    let mut bytes = seed.to_vec();
    for edit in edits {
        let at = |i: usize| if bytes.is_empty() { 0 } else { i % (bytes.len() + 1) };
        match edit {
            Edit::Flip(i, bits) if !bytes.is_empty() => {
                let i = i % bytes.len();
                bytes[i] ^= bits;
            }
            Edit::Flip(..) => {}
            Edit::Truncate(i) => bytes.truncate(at(*i)),
            Edit::Remove(i, len) => {
                let start = at(*i);
                let end = (start + len).min(bytes.len());
                bytes.drain(start..end);
            }
            Edit::Splice(i, token) => {
                let i = at(*i);
                bytes.splice(i..i, token.bytes());
            }
            Edit::Duplicate(i, len) => {
                let start = at(*i);
                let end = (start + len).min(bytes.len());
                let copy = bytes[start..end].to_vec();
                bytes.splice(end..end, copy);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replaces the `index`-th node (depth first, modulo the count) of `value` with `replacement`.
fn replace_node(value: &mut Value, index: usize, replacement: Value) {
    fn count(value: &Value) -> usize {
        1 + match value {
            Value::Array(items) => items.iter().map(count).sum(),
            Value::Object(map) => map.values().map(count).sum(),
            _ => 0,
        }
    }
    fn walk(value: &mut Value, index: &mut usize, replacement: &mut Option<Value>) {
        if *index == 0 {
            if let Some(r) = replacement.take() {
                *value = r;
            }
            return;
        }
        *index -= 1;
        let children: Vec<&mut Value> = match value {
            Value::Array(items) => items.iter_mut().collect(),
            Value::Object(map) => map.values_mut().collect(),
            _ => Vec::new(),
        };
        for child in children {
            walk(child, index, replacement);
            if replacement.is_none() {
                return;
            }
        }
    }
    let mut index = index % count(value);
    walk(value, &mut index, &mut Some(replacement));
}

/// Inputs for a target: seeds, byte-mutated seeds and JSON-mutated seeds.
fn inputs(target: &'static str) -> impl Strategy<Value = String> {
    let seeds = corpus(target);
    let for_bytes = seeds.clone();
    let bytes = (0..seeds.len(), prop::collection::vec(edit(), 1..6))
        .prop_map(move |(seed, edits)| apply_edits(&for_bytes[seed], &edits));
    let structured = (0..seeds.len(), any::<usize>(), any_json()).prop_map(move |(seed, node, replacement)| {
        let mut value: Value = serde_json::from_slice(&seeds[seed]).unwrap_or(Value::Null);
        replace_node(&mut value, node, replacement);
        value.to_string()
    });
    prop_oneof![bytes, structured]
}

#[test]
fn every_seed_is_handled() {
    for seed in corpus("envelope") {
        let _ = gha_actions_client::message::decode("seed", &String::from_utf8_lossy(&seed));
    }
    for seed in corpus("listener-config") {
        ListenerConfig::parse(&String::from_utf8_lossy(&seed)).expect("the listener-config seeds are valid");
    }
    for seed in corpus("runner-set") {
        serde_json::from_slice::<AutoscalingRunnerSet>(&seed).expect("the runner-set seeds deserialize");
    }
    let (template, granted) = (dind_pod(), everything_grantable());
    let seeds = corpus("pod-patch");
    let accepted = seeds.iter().filter(|s| parse_patch(&String::from_utf8_lossy(s), &template, &granted).is_ok());
    assert_eq!(accepted.count(), 1, "only shape.json is on the allowlist, even with everything granted");
}

/// The chart's dind runner pod.
fn dind_pod() -> Value {
    json!({"metadata": {"labels": {"app": "runner"}}, "spec": {
        "serviceAccountName": "no-permission",
        "initContainers": [{"name": "init-dind-externals", "image": "runner:1"}],
        "containers": [
            {"name": "runner", "image": "runner:1", "command": ["/home/runner/run.sh"],
             "env": [{"name": "DOCKER_HOST", "value": "unix:///var/run/docker.sock"}]},
            {"name": "dind", "image": "docker:dind", "securityContext": {"privileged": true}}
        ],
    }})
}

/// A cluster admin who granted every permission there is.
fn everything_grantable() -> PodPermissions {
    let all = || vec!["*".to_string()];
    PodPermissions {
        containers: vec!["runner".into(), "dind".into(), "init-dind-externals".into()],
        images: all(),
        env: all(),
        metadata_keys: all(),
        priority_classes: all(),
        scheduler_names: all(),
        control_plane: true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    /// Message envelopes from the Actions service: decoding never panics; a decoded message never holds more job
    /// messages than its body has items.
    #[test]
    fn message_envelopes_decode_or_fail_cleanly(text in inputs("envelope")) {
        match gha_actions_client::message::decode("https://queue/fuzz", &text) {
            Ok(message) => {
                // (serde_json checks escapes in fields a struct ignores less strictly than `Value` does.)
                if let Ok(envelope) = serde_json::from_str::<Value>(&text) {
                    let body = envelope["body"].as_str().unwrap_or_default();
                    let items = serde_json::from_str::<Vec<Value>>(body).map(|v| v.len()).unwrap_or(0);
                    prop_assert!(message.jobs.len() <= items);
                }
            }
            Err(e) => prop_assert!(e.to_string().contains("https://queue/fuzz")),
        }
    }

    /// Listener config files: parsing never panics; errors name the field; accepted configs are valid.
    #[test]
    fn listener_configs_parse_or_name_the_field(text in inputs("listener-config")) {
        match ListenerConfig::parse(&text) {
            Ok(config) => {
                prop_assert!(config.validate().is_ok());
                let (min, max) = config.bounds();
                prop_assert!(min <= max);
            }
            Err(e) => prop_assert!(!e.field.is_empty()),
        }
    }

    /// AutoscalingRunnerSet specs: the controller's checks never panic, and accept only sane bounds.
    #[test]
    fn runner_set_specs_are_checked_without_panics(text in inputs("runner-set")) {
        if let Ok(set) = serde_json::from_str::<AutoscalingRunnerSet>(&text) {
            for force_ghes in [false, true] {
                if gha_controller::autoscaling_runner_set::check_spec(&set.spec, force_ghes).is_ok() {
                    let min = set.spec.min_runners.unwrap_or(0);
                    prop_assert!(min >= 0 && min <= set.spec.max_runners.unwrap_or(i32::MAX));
                    prop_assert!(!set.spec.github_config_secret.is_empty());
                }
            }
            let _ = gha_controller::policies::scale_set_attributes(&set);
        }
    }

    /// Pod patches from policies, with every permission granted: an accepted patch, applied to the dind runner
    /// pod, never grants privileges, host access or another service account, never drops the runner container,
    /// never touches the privileged or init containers, and never sets the runner's own env.
    #[test]
    fn accepted_pod_patches_never_escalate(text in inputs("pod-patch")) {
        let original = dind_pod();
        if let Ok(patch) = parse_patch(&text, &original, &everything_grantable()) {
            let mut template = original.clone();
            if apply_patch(&mut template, &patch).is_ok() {
                prop_assert_eq!(&template["spec"]["containers"][1], &original["spec"]["containers"][1]);
                prop_assert_eq!(&template["spec"]["initContainers"], &original["spec"]["initContainers"]);
                let runner_env = template["spec"]["containers"][0]["env"].as_array().cloned().unwrap_or_default();
                prop_assert_eq!(&runner_env[0], &original["spec"]["containers"][0]["env"][0]);
                let spec = &template["spec"];
                prop_assert_eq!(&spec["serviceAccountName"], "no-permission");
                for key in ["hostNetwork", "hostPID", "hostIPC", "volumes", "securityContext"] {
                    prop_assert!(spec.get(key).is_none(), "{key} set by {text}");
                }
                let containers = spec["containers"].as_array().unwrap();
                prop_assert!(containers.iter().any(|c| c["name"] == "runner" && c["command"][0] == "/home/runner/run.sh"));
                for container in containers {
                    let before = original["spec"]["containers"].as_array().unwrap().iter().find(|c| c["name"] == container["name"]);
                    for key in ["securityContext", "volumeMounts", "command"] {
                        prop_assert_eq!(container.get(key), before.and_then(|c| c.get(key)), "{} of {}", key, container["name"]);
                    }
                }
                for (key, _) in template["metadata"]["labels"].as_object().into_iter().flatten() {
                    prop_assert!(!key.starts_with("actions.github.com/") && key != "actions-ephemeral-runner");
                }
            }
        }
    }
}
