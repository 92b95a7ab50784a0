//! Helpers shared by the engine's test binaries: an engine, the misbehaving fixture, a scale set and an input.
#![allow(dead_code, unused_imports)]

use std::sync::Arc;

use gha_policy_engine::types::*;
use gha_policy_engine::{
    EngineOptions, FailurePolicy, PolicyEngine, PolicyLimits, PolicyMetrics, PolicySource, PolicySpec, ScaleSetPolicy,
};
use serde_json::json;

pub const MISBEHAVING: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/misbehaving_policy.wasm"));

pub fn engine() -> Arc<PolicyEngine> {
    PolicyEngine::new(EngineOptions::default(), Arc::new(PolicyMetrics::default())).unwrap()
}

pub fn fixture_spec(mode: &str, failure_policy: FailurePolicy) -> PolicySpec {
    PolicySpec {
        source: PolicySource::Bytes { origin: "fixture misbehaving".into(), bytes: MISBEHAVING.into() },
        config: json!({ "mode": mode }),
        failure_policy,
        limits: PolicyLimits { timeout_ms: 20, ..Default::default() },
        allow_wasi: false,
        shadow: None,
        permissions: Default::default(),
    }
}

pub async fn fixture(mode: &str, failure_policy: FailurePolicy) -> (Arc<PolicyEngine>, ScaleSetPolicy) {
    let engine = engine();
    let policy = ScaleSetPolicy::load(&engine, scale_set(), fixture_spec(mode, failure_policy)).await.unwrap();
    (engine, policy)
}

pub fn scale_set() -> ScaleSetRef {
    ScaleSetRef { namespace: "ci".into(), name: "linux".into(), id: 7, ..Default::default() }
}

pub fn input(assigned: u32) -> ScaleInput {
    ScaleInput {
        now_unix_ms: 1_795_392_000_000,
        statistics: JobStatistics { assigned_jobs: assigned, ..Default::default() },
        bounds: Bounds { min_runners: 1, max_runners: 10 },
        ..Default::default()
    }
}
