//! The policy engine against real components: the shipped policies, and a fixture that misbehaves on demand.

use std::sync::Arc;

use gha_policy_engine::types::*;
use gha_policy_engine::{
    EngineOptions, Error, FailurePolicy, Outcome, PolicyBytes, PolicyEngine, PolicyMetrics, PolicySource, PolicySpec,
    ScaleSetPolicy,
};
use serde_json::json;

mod common;

use common::{MISBEHAVING, engine, fixture, fixture_spec, input, scale_set};

fn candidates() -> ScaleDownInput {
    ScaleDownInput {
        surplus: 2,
        candidates: vec![
            RunnerInfo::busy("busy", RunnerPhase::Running, 1),
            RunnerInfo::idle("running", RunnerPhase::Running, 2),
            RunnerInfo::idle("pending", RunnerPhase::Pending, 3),
        ],
        ..Default::default()
    }
}

#[tokio::test]
async fn shipped_policies_are_pure_components_exporting_their_worlds() {
    let engine = engine();
    for (name, world) in
        [("arc-default", "selection-policy"), ("warm-pool", "scaling-policy"), ("pod-shaper", "pod-policy")]
    {
        let pre = engine.load(&PolicySource::BuiltIn(name.into()), false).await.unwrap();
        let manifest = pre.manifest();
        assert_eq!(manifest.world(), world, "{name}");
        assert_eq!(manifest.info.name, name);
        assert_eq!(manifest.wit_version, "0.2.0");
        assert!(manifest.imports.iter().all(|i| i.starts_with("gha-autoscaler:policy/")), "{:?}", manifest.imports);
    }
}

#[tokio::test]
async fn arc_default_in_the_sandbox_matches_the_native_formula() {
    let engine = engine();
    let policy = ScaleSetPolicy::load(&engine, scale_set(), PolicySpec::built_in("arc-default")).await.unwrap();
    let mut replay = gha_policy_engine::Replayer::new(&policy);
    for (assigned, events, desired, drain) in
        [(0, 0, 1, false), (0, 0, 1, true), (4, 2, 5, false), (40, 0, 10, false), (0, 1, 1, false), (0, 0, 1, true)]
    {
        let mut i = input(assigned);
        i.job_events_since_previous = events;
        let decided = replay.step(i).unwrap();
        assert_eq!(decided.outcome, Outcome::Policy);
        assert_eq!((decided.value.desired_runners, decided.value.drain), (desired, drain), "assigned {assigned}");
        assert_eq!(decided.value.max_capacity, Some(10));
    }
    let selected = policy.select(&candidates()).unwrap();
    assert_eq!(selected.value, ["pending", "running"]);
}

#[tokio::test]
async fn warm_pool_config_errors_name_the_field() {
    let spec = PolicySpec { config: json!({"scaleFactor": -2}), ..PolicySpec::built_in("warm-pool") };
    let Err(err) = ScaleSetPolicy::load(&engine(), scale_set(), spec).await else { panic!("config accepted") };
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(err.to_string().contains("scaleFactor"), "{err}");
}

#[tokio::test]
async fn a_looping_policy_is_interrupted_and_the_fallback_answers() {
    let (engine, policy) = fixture("loop", FailurePolicy::Fallback).await;
    let decided = policy.decide(&input(3)).unwrap();
    assert_eq!(decided.value.desired_runners, 4, "ARC's formula answers");
    let Outcome::Fallback { error } = &decided.outcome else { panic!("{:?}", decided.outcome) };
    assert!(error.contains("deadline"), "{error}");
    assert_eq!(engine.metrics().traps("timeout"), 1);
    assert_eq!(engine.metrics().fallbacks("decide"), 1);
}

#[tokio::test]
async fn the_breaker_opens_after_five_failures_and_stops_calling_the_policy() {
    let (engine, policy) = fixture("loop", FailurePolicy::Fallback).await;
    for _ in 0..6 {
        assert!(matches!(policy.decide(&input(1)).unwrap().outcome, Outcome::Fallback { .. }));
    }
    assert_eq!(engine.metrics().calls("decide", "timeout"), 5, "the sixth call never reached the policy");
    let Outcome::Fallback { error } = policy.decide(&input(1)).unwrap().outcome else { panic!() };
    assert!(error.contains("circuit breaker"), "{error}");
}

#[tokio::test]
async fn a_memory_bomb_hits_the_cap_and_the_instance_is_rebuilt() {
    let engine = engine();
    let mut spec = fixture_spec("memory-bomb", FailurePolicy::Fallback);
    // Enough time to fill 64 MiB even in a debug build: the memory cap, not the deadline, must stop it.
    spec.limits.timeout_ms = 1000;
    let policy = ScaleSetPolicy::load(&engine, scale_set(), spec).await.unwrap();
    let Outcome::Fallback { error } = policy.decide(&input(0)).unwrap().outcome else { panic!() };
    assert!(error.contains("64 MiB memory limit"), "{error}");
    assert_eq!(engine.metrics().traps("memory"), 1);
    // The poisoned instance was dropped: the next call instantiates again and is stopped again, cleanly.
    assert!(matches!(policy.decide(&input(0)).unwrap().outcome, Outcome::Fallback { .. }));
    assert_eq!(engine.metrics().traps("memory"), 2);
}

#[tokio::test]
async fn a_panic_is_a_trap_with_a_backtrace() {
    let (_, policy) = fixture("panic", FailurePolicy::Fallback).await;
    let Outcome::Fallback { error } = policy.decide(&input(0)).unwrap().outcome else { panic!() };
    assert!(error.contains("trapped") && error.contains("unreachable"), "{error}");
}

#[tokio::test]
async fn failure_policy_fail_reports_the_error_instead_of_deciding() {
    let (_, policy) = fixture("error", FailurePolicy::Fail).await;
    let err = policy.decide(&input(0)).unwrap_err();
    assert!(matches!(err, Error::Policy { .. }), "{err}");
    assert!(err.to_string().contains("fails on purpose"), "{err}");
}

#[tokio::test]
async fn hold_last_keeps_the_last_good_decision_without_draining() {
    let (engine, policy) = fixture("ok", FailurePolicy::HoldLast).await;
    let good = policy.decide(&input(5)).unwrap();
    assert_eq!(good.value.desired_runners, 6);
    policy.swap(fixture_spec("error", FailurePolicy::HoldLast)).await.unwrap();
    let held = policy.decide(&input(0)).unwrap();
    assert!(matches!(held.outcome, Outcome::HeldLast { .. }), "{:?}", held.outcome);
    assert_eq!((held.value.desired_runners, held.value.drain), (6, false));
    assert_eq!(engine.metrics().fallbacks("decide"), 1);
}

#[tokio::test]
async fn nonsense_decisions_are_clamped_into_bounds() {
    let (_, policy) = fixture("out-of-bounds", FailurePolicy::Fallback).await;
    let decided = policy.decide(&input(0)).unwrap();
    assert_eq!(decided.outcome, Outcome::Policy);
    let d = decided.value;
    assert_eq!((d.desired_runners, d.min_runners, d.max_capacity), (10, 10, Some(10)));
    assert_eq!(decided.adjustments.len(), 3, "{:?}", decided.adjustments);
}

#[tokio::test]
async fn huge_reason_is_truncated_and_huge_state_refused() {
    let (_, policy) = fixture("huge-reason", FailurePolicy::Fallback).await;
    assert_eq!(policy.decide(&input(0)).unwrap().value.reason.chars().count(), 256);
    let (_, policy) = fixture("huge-state", FailurePolicy::Fallback).await;
    let Outcome::Fallback { error } = policy.decide(&input(0)).unwrap().outcome else { panic!() };
    assert!(error.contains("state is 65536 bytes"), "{error}");
}

#[tokio::test]
async fn scale_down_never_takes_busy_runners_or_strangers() {
    let (_, policy) = fixture("select-busy", FailurePolicy::Fallback).await;
    let selected = policy.select(&candidates()).unwrap();
    assert_eq!(selected.outcome, Outcome::Policy);
    assert_eq!(selected.value, ["running", "pending"]);
    let (_, policy) = fixture("select-unknown", FailurePolicy::Fallback).await;
    let selected = policy.select(&candidates()).unwrap();
    assert!(matches!(selected.outcome, Outcome::Fallback { ref error } if error.contains("not-a-candidate")));
    assert_eq!(selected.value, ["pending", "running"], "ARC's order");
}

#[tokio::test]
async fn pod_patches_outside_the_allowlist_leave_the_pod_untouched() {
    let template = json!({"metadata": {"labels": {"app": "runner"}}, "spec": {"containers": [{"name": "runner"}]}});
    let (_, policy) = fixture("ok", FailurePolicy::Fallback).await;
    let shaped = policy.mutate_runner_pod("r1", &template).unwrap();
    assert_eq!(shaped.value["metadata"]["labels"]["shaped-by"], "misbehaving");
    for mode in ["escalating-patch", "garbage-patch", "mistyped-patch"] {
        let (_, policy) = fixture(mode, FailurePolicy::Fallback).await;
        let refused = policy.mutate_runner_pod("r1", &template).unwrap();
        assert_eq!(refused.value, template, "{mode}");
        assert!(matches!(refused.outcome, Outcome::Fallback { .. }), "{mode}");
    }
    let event = JobEvent { job_display_name: "build".into(), ..Default::default() };
    assert_eq!(
        policy_labels(&fixture("ok", FailurePolicy::Fallback).await.1, &event),
        [("last-job".into(), "build".into())]
    );
}

fn policy_labels(policy: &ScaleSetPolicy, event: &JobEvent) -> Attributes {
    policy.on_job_event(event).unwrap().value.labels
}

#[tokio::test]
async fn pod_shaper_protects_busy_pods_and_scaling_only_policies_fall_back_to_built_ins() {
    let engine = engine();
    let shaper = ScaleSetPolicy::load(&engine, scale_set(), PolicySpec::built_in("pod-shaper")).await.unwrap();
    let started = shaper.on_job_event(&JobEvent { phase: JobPhase::Started, ..Default::default() }).unwrap();
    assert_eq!(attribute(&started.value.annotations, "karpenter.sh/do-not-disrupt"), Some("true"));
    // pod-shaper has no scaler: ARC's formula decides, and that is not a failure.
    let decided = shaper.decide(&input(2)).unwrap();
    assert_eq!((decided.value.desired_runners, decided.outcome), (3, Outcome::BuiltIn));
    assert_eq!(engine.metrics().fallbacks("decide"), 0);
}

#[tokio::test]
async fn a_broken_hot_swap_keeps_the_old_policy_serving() {
    let engine = engine();
    let policy = ScaleSetPolicy::load(&engine, scale_set(), PolicySpec::built_in("arc-default")).await.unwrap();
    let err = policy.swap(fixture_spec("reject-config", FailurePolicy::Fallback)).await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    let garbage = PolicySpec {
        source: PolicySource::Bytes { origin: "garbage".into(), bytes: b"\0asm\x0d\0\x01\0garbage".as_slice().into() },
        ..PolicySpec::built_in("x")
    };
    assert!(matches!(policy.swap(garbage).await.unwrap_err(), Error::Compile(_)));
    assert_eq!(policy.manifest().info.name, "arc-default");
    assert_eq!(policy.decide(&input(2)).unwrap().outcome, Outcome::Policy);
    policy.swap(PolicySpec::built_in("warm-pool")).await.unwrap();
    assert_eq!(policy.manifest().info.name, "warm-pool");
}

#[tokio::test]
async fn a_config_that_loops_fails_the_load_within_its_deadline() {
    let Err(err) =
        ScaleSetPolicy::load(&engine(), scale_set(), fixture_spec("loop-configure", FailurePolicy::Fallback)).await
    else {
        panic!("loaded")
    };
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn shadow_policies_are_run_and_counted_but_never_act() {
    let engine = engine();
    let spec = PolicySpec {
        shadow: Some(Box::new(PolicySpec { config: json!({"scaleFactor": 1.0}), ..PolicySpec::built_in("warm-pool") })),
        ..PolicySpec::built_in("arc-default")
    };
    let policy = ScaleSetPolicy::load(&engine, scale_set(), spec).await.unwrap();
    assert_eq!(policy.decide(&input(4)).unwrap().value.desired_runners, 5);
    let mut text = String::new();
    let mut registry = prometheus_client::registry::Registry::default();
    engine.metrics().register(&mut registry);
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(text.contains("gha_policy_shadow_disagreements_total 1"), "{text}");
}

/// Builds a component from WIT text with wit-component's dummy module (functions that trap).
fn dummy_component(wit: &str, world: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve.push_str("test.wit", wit).unwrap();
    let world = resolve.select_world(&[package], Some(world)).unwrap();
    let mut module = wit_component::dummy_module(&resolve, world, wit_parser::ManglingAndAbi::Standard32);
    wit_component::embed_component_metadata(&mut module, &resolve, world, wit_component::StringEncoding::UTF8).unwrap();
    wit_component::ComponentEncoder::default().module(&module).unwrap().validate(true).encode().unwrap()
}

async fn load_bytes(bytes: Vec<u8>) -> Result<Arc<gha_policy_engine::PolicyPre>, Error> {
    load_bytes_with(bytes, false).await
}

async fn load_bytes_with(bytes: Vec<u8>, allow_wasi: bool) -> Result<Arc<gha_policy_engine::PolicyPre>, Error> {
    engine().load(&PolicySource::Bytes { origin: "test".into(), bytes: bytes.into() }, allow_wasi).await
}

#[tokio::test]
async fn a_component_importing_wasi_is_refused_with_advice() {
    let wit = r#"package test:p;
        interface environment { get-environment: func() -> list<tuple<string, string>>; }
        world w { import environment; export run: func(); }"#;
    let wit = wit.replace("package test:p;", "package wasi:cli@0.2.0;");
    let err = load_bytes(dummy_component(&wit, "w")).await.unwrap_err();
    assert!(matches!(err, Error::UnsupportedImport { .. }), "{err}");
    assert!(err.to_string().contains("wasi:cli/environment@0.2.0") && err.to_string().contains("WASI"), "{err}");
}

#[tokio::test]
async fn wasi_links_only_for_policies_that_opt_in() {
    let wit = r#"package test:p;
        world w { import wasi:cli/environment@0.2.0; export gha-autoscaler:policy/lifecycle@0.1.0; }
        package gha-autoscaler:policy@0.1.0 {
            interface lifecycle { info: func() -> string; }
        }
        package wasi:cli@0.2.0 {
            interface environment { get-environment: func() -> list<tuple<string, string>>; }
        }"#;
    let component = dummy_component(wit, "w");
    assert!(matches!(load_bytes(component.clone()).await.unwrap_err(), Error::UnsupportedImport { .. }));
    // With the opt-in the WASI import links; this stripped-down lifecycle then fails the export check.
    let err = load_bytes_with(component, true).await.unwrap_err();
    assert!(matches!(err, Error::MissingExport(ref m) if m.contains("configure")), "{err}");
}

#[tokio::test]
async fn a_component_for_another_wit_version_is_refused_by_name() {
    let wit = r#"package gha-autoscaler:policy@0.3.0;
        interface lifecycle { info: func() -> string; }
        world w { export lifecycle; }"#;
    let err = load_bytes(dummy_component(wit, "w")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "policy built for WIT gha-autoscaler:policy@0.3.0, host supports gha-autoscaler:policy@0.1.0, \
         gha-autoscaler:policy@0.2.0"
    );
}

#[tokio::test]
async fn something_that_is_not_a_policy_is_refused() {
    let wit = "package test:other; world w { export run: func(); }";
    let err = load_bytes(dummy_component(wit, "w")).await.unwrap_err();
    assert!(matches!(err, Error::MissingExport(_)) && err.to_string().contains("run"), "{err}");
    let truncated = MISBEHAVING[..MISBEHAVING.len() / 2].to_vec();
    assert!(matches!(load_bytes(truncated).await.unwrap_err(), Error::Compile(_)));
    let core = b"\0asm\x01\0\0\0".to_vec();
    assert!(load_bytes(core).await.unwrap_err().to_string().contains("componentize"));
    assert!(matches!(load_bytes(b"hello".to_vec()).await.unwrap_err(), Error::Compile(_)));
}

#[tokio::test]
async fn the_precompile_cache_survives_restarts_and_ignores_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let policy = PolicyBytes::new("fixture", MISBEHAVING);
    let options = EngineOptions::default().with_cache_dir(dir.path());
    let metrics = Arc::new(PolicyMetrics::default());
    let first = PolicyEngine::new(options.clone(), metrics.clone()).unwrap();
    assert_eq!(first.compile(&policy).unwrap().1, gha_policy_engine::CompiledFrom::Compiled);
    assert_eq!(first.compile(&policy).unwrap().1, gha_policy_engine::CompiledFrom::Memory);
    let restarted = PolicyEngine::new(options.clone(), metrics.clone()).unwrap();
    assert_eq!(restarted.compile(&policy).unwrap().1, gha_policy_engine::CompiledFrom::Disk);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
    }
    let again = PolicyEngine::new(options, metrics).unwrap();
    assert_eq!(again.compile(&policy).unwrap().1, gha_policy_engine::CompiledFrom::Compiled);
}

#[tokio::test]
async fn a_precompiled_policy_from_another_engine_loads_without_compiling() {
    let policy = PolicyBytes::new("fixture", MISBEHAVING);
    let metrics = Arc::new(PolicyMetrics::default());
    let producer = PolicyEngine::new(EngineOptions::default(), metrics.clone()).unwrap();
    assert!(producer.precompiled(&policy.sha256).is_none(), "nothing compiled yet");
    producer.compile(&policy).unwrap();
    let (file, artifact) = producer.precompiled(&policy.sha256).unwrap();
    assert!(file.starts_with(&policy.sha256) && file.ends_with(".cwasm"), "{file}");

    // A read-only directory, as a mounted Secret is: nothing is written into it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(&file), &artifact).unwrap();
    let options = EngineOptions { precompiled_dir: Some(dir.path().into()), ..EngineOptions::default() };
    let consumer = PolicyEngine::new(options.clone(), metrics.clone()).unwrap();
    assert_eq!(consumer.compile(&policy).unwrap().1, gha_policy_engine::CompiledFrom::Disk);
    let other = PolicyBytes::new("other", gha_policy_engine::built_in("arc-default").unwrap());
    assert_eq!(consumer.compile(&other).unwrap().1, gha_policy_engine::CompiledFrom::Compiled);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "a read-only directory is never written");

    let mut altered = artifact;
    altered[100] ^= 1;
    std::fs::write(dir.path().join(&file), &altered).unwrap();
    let consumer = PolicyEngine::new(options, metrics).unwrap();
    assert_eq!(consumer.compile(&policy).unwrap().1, gha_policy_engine::CompiledFrom::Compiled);
}

/// Serves `body` once per connection over plain HTTP on loopback.
async fn serve(body: &'static [u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body).await;
        }
    });
    format!("http://{addr}/policy.wasm")
}

#[tokio::test]
async fn url_sources_are_pinned_by_sha256() {
    let url = serve(MISBEHAVING).await;
    let wrong = PolicySource::Url { url: url.clone(), sha256: "0".repeat(64) };
    let err = wrong.resolve().await.unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    let digest = PolicyBytes::new("x", MISBEHAVING).sha256;
    let right = PolicySource::Url { url, sha256: format!("sha256:{}", digest.to_uppercase()) };
    let pre = engine().load(&right, false).await.unwrap();
    assert_eq!(pre.manifest().info.name, "misbehaving");
}
