//! Policies built for WIT 0.1.0 (the real components in `fixtures/wit-0.1.0`) load next to 0.2.0 ones and behave
//! exactly as they did; 0.2.0 policies receive the job events.

use gha_policy_engine::types::*;
use gha_policy_engine::{Outcome, PolicySource, PolicySpec, ScaleSetPolicy};
use serde_json::json;

mod common;

use common::{engine, input, scale_set};

const WARM_POOL_0_1: &[u8] = include_bytes!("../fixtures/wit-0.1.0/warm_pool.wasm");
const POD_SHAPER_0_1: &[u8] = include_bytes!("../fixtures/wit-0.1.0/pod_shaper.wasm");

fn spec(origin: &str, bytes: &[u8], config: serde_json::Value) -> PolicySpec {
    PolicySpec {
        source: PolicySource::Bytes { origin: origin.into(), bytes: bytes.into() },
        config,
        ..PolicySpec::built_in("unused")
    }
}

fn with_config(mut spec: PolicySpec, config: serde_json::Value) -> PolicySpec {
    spec.config = config;
    spec
}

/// A job message of run 9 as the listener passes it.
fn event(phase: JobPhase, job_id: u64) -> JobEvent {
    JobEvent {
        phase,
        job_id,
        runner_name: if matches!(phase, JobPhase::Started | JobPhase::Completed) { "r1".into() } else { String::new() },
        repository: "acme/app".into(),
        workflow_ref: "acme/app/.github/workflows/ci.yml@refs/heads/main".into(),
        workflow_run_id: 9,
        job_display_name: "build".into(),
        event_name: "push".into(),
        labels: vec!["linux".into()],
        queued_unix_ms: Some(1_795_392_000_000),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_0_1_policy_loads_and_decides_as_the_same_policy_built_for_0_2() {
    let engine = engine();
    let config = json!({"scaleFactor": 0.5, "maxExtra": 4, "idleTtlSeconds": 60});
    let old = ScaleSetPolicy::load(&engine, scale_set(), spec("warm-pool 0.1.0", WARM_POOL_0_1, config.clone()))
        .await
        .unwrap();
    let new = ScaleSetPolicy::load(&engine, scale_set(), with_config(PolicySpec::built_in("warm-pool"), config))
        .await
        .unwrap();
    assert_eq!(old.manifest().wit_version, "0.1.0");
    assert_eq!(new.manifest().wit_version, "0.2.0");
    assert_eq!(old.manifest().world(), new.manifest().world());
    let (mut old_replay, mut new_replay) =
        (gha_policy_engine::Replayer::new(&old), gha_policy_engine::Replayer::new(&new));
    for (step, assigned) in [0u32, 4, 20, 20, 3, 0, 0].into_iter().enumerate() {
        let mut i = input(assigned);
        i.now_unix_ms += step as u64 * 30_000;
        i.bounds.max_runners = 50;
        i.runners = RunnerCounts { current: assigned, running: assigned, ..Default::default() };
        i.job_events =
            [event(JobPhase::Available, step as u64), event(JobPhase::Started, step as u64)].into_iter().collect();
        i.job_events_since_previous = 1;
        let (a, b) = (old_replay.step(i.clone()).unwrap(), new_replay.step(i).unwrap());
        assert_eq!(a.outcome, Outcome::Policy, "step {step}: {:?}", a.outcome);
        assert_eq!(a.value, b.value, "step {step}");
    }
}

#[tokio::test]
async fn a_0_1_pod_policy_shapes_pods_and_labels_jobs_as_before() {
    let engine = engine();
    let config = json!({"default": {"resources": {"requests": {"cpu": "2"}}}});
    let old = ScaleSetPolicy::load(&engine, scale_set(), spec("pod-shaper 0.1.0", POD_SHAPER_0_1, config.clone()))
        .await
        .unwrap();
    let new = ScaleSetPolicy::load(&engine, scale_set(), with_config(PolicySpec::built_in("pod-shaper"), config))
        .await
        .unwrap();
    assert_eq!(old.manifest().wit_version, "0.1.0");
    let template = json!({"spec": {"containers": [{"name": "runner", "image": "runner:1"}]}});
    let shaped = old.mutate_runner_pod("r1", &template).unwrap();
    assert_eq!(shaped.outcome, Outcome::Policy);
    assert_eq!(shaped.value, new.mutate_runner_pod("r1", &template).unwrap().value);
    assert_eq!(shaped.value["spec"]["containers"][0]["resources"]["requests"]["cpu"], "2");
    for phase in [JobPhase::Started, JobPhase::Completed] {
        let (a, b) = (old.on_job_event(&event(phase, 1)).unwrap(), new.on_job_event(&event(phase, 1)).unwrap());
        assert_eq!(a.outcome, Outcome::Policy);
        assert_eq!(a.value, b.value, "{phase:?}");
    }
    let started = old.on_job_event(&event(JobPhase::Started, 1)).unwrap().value;
    assert_eq!(attribute(&started.annotations, "karpenter.sh/do-not-disrupt"), Some("true"));
    // Queue-side phases are not job events for a pod: neither version's hook sees them.
    let queued = old.on_job_event(&event(JobPhase::Available, 1)).unwrap();
    assert_eq!(queued.value, PodMetadata::default());
}
