//! The hostile-policy suite: every attack of the misbehaving fixture through the engine, each refused (or damped)
//! with the host's cost measured — wall time, log bytes written, and the process's peak RSS. Run with
//! `--nocapture` to see the table.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use gha_policy_engine::types::*;
use gha_policy_engine::{FailurePolicy, Outcome, PolicyEngine, PolicyLimits, ScaleSetPolicy};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

use common::{engine, fixture_spec, input, scale_set};

/// Bytes every policy log line written so far took.
fn log_bytes() -> &'static Arc<AtomicUsize> {
    static BYTES: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
    BYTES.get_or_init(Arc::default)
}

struct Counting;

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        log_bytes().fetch_add(buf.len(), Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process's peak RSS since the last reset, KiB, and a reset.
fn peak_rss_kib(reset: bool) -> u64 {
    if reset {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The chart's dind pod: a runner and a privileged dind container, an init container.
fn dind_template() -> Value {
    json!({
        "metadata": {"labels": {"app": "runner"}},
        "spec": {
            "initContainers": [{"name": "init-dind-externals", "image": "ghcr.io/actions/actions-runner:latest"}],
            "containers": [
                {"name": "runner", "image": "ghcr.io/actions/actions-runner:latest"},
                {"name": "dind", "image": "docker:dind", "securityContext": {"privileged": true}}
            ]
        }
    })
}

/// What one attack is checked on.
enum Attack {
    /// The pod template must come back unchanged, the patch refused for `because`.
    Pod(&'static str),
    /// The job-event metadata must be empty, refused for `because`.
    JobEvent(&'static str),
    /// Selection falls back to ARC's order, refused for `because`.
    Select(&'static str),
    /// Decisions must go on, with `check` on the engine and decision afterwards.
    Decide(fn(&PolicyEngine, &ScaleSetPolicy)),
}

/// Refused for `because` (after five refusals the breaker stops calling the policy for a while).
fn refused<T>(decided: &gha_policy_engine::Decided<T>, because: &str) {
    match &decided.outcome {
        Outcome::Fallback { error } => assert!(
            error.contains(because) || error.contains("circuit breaker open"),
            "refused for {error:?}, not {because:?}"
        ),
        other => panic!("not refused: {other:?}"),
    }
}

fn exposition(engine: &PolicyEngine) -> String {
    let mut registry = Registry::default();
    engine.metrics().register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text
}

fn attacks() -> Vec<(&'static str, Attack)> {
    vec![
        ("dind-image", Attack::Pod("permissions.containers")),
        ("runner-env", Attack::Pod("never a policy's")),
        ("control-plane", Attack::Pod("not granted")),
        ("null-image", Attack::Pod("permissions.images")),
        ("escalating-patch", Attack::Pod("allowlist")),
        ("mistyped-patch", Attack::Pod("not a valid pod template")),
        ("label-hijack", Attack::Pod("reserved for the controller")),
        ("label-hijack", Attack::JobEvent("reserved for the controller")),
        ("huge-metadata", Attack::JobEvent("bytes at once")),
        ("select-flood", Attack::Select("bytes at once")),
        (
            "huge-outputs",
            Attack::Decide(|engine, _| assert!(engine.metrics().traps("output_limit") > 0, "refused before copying")),
        ),
        (
            "fast-requeue",
            Attack::Decide(|_, policy| {
                let decided = policy.decide(&input(0)).unwrap();
                assert_eq!(decided.value.requeue_after_ms, Some(1000), "the floor");
            }),
        ),
        (
            "churn",
            Attack::Decide(|engine, _| {
                assert!(engine.metrics().churn_damped("scale-up") > 0, "raises over the minute's budget are cut");
            }),
        ),
        (
            "metric-injection",
            Attack::Decide(|engine, _| {
                let text = exposition(engine);
                let forged = text.lines().any(|l| l.starts_with("gha_policy_calls_total") && l.ends_with(" 999999"));
                assert!(!forged, "a forged line: {text}");
                assert!(text.lines().all(|l| l.starts_with('#') || !l.contains("l_label") || l.ends_with(" 1.0")));
            }),
        ),
        (
            "log-flood",
            Attack::Decide(|engine, _| assert!(engine.metrics().log_dropped() > 0, "lines over budget dropped")),
        ),
    ]
}

/// Calls the attack's hooks the way the listener and controller would, 50 times (a minute of churn, decisions a
/// second apart).
async fn run(mode: &str, attack: &Attack) -> (Arc<PolicyEngine>, ScaleSetPolicy) {
    let engine = engine();
    // Production limits: the attacks meet the deadlines a scale set gets by default.
    let spec = gha_policy_engine::PolicySpec {
        limits: PolicyLimits::default(),
        ..fixture_spec(mode, FailurePolicy::Fallback)
    };
    let policy = ScaleSetPolicy::load(&engine, scale_set(), spec).await.unwrap();
    let mut replay = gha_policy_engine::Replayer::new(&policy);
    let event = JobEvent { phase: JobPhase::Started, runner_name: "r1".into(), ..Default::default() };
    for call in 0..50u64 {
        match attack {
            Attack::Pod(because) => {
                let template = dind_template();
                let decided = policy.mutate_runner_pod("r1", &template).unwrap();
                refused(&decided, because);
                assert_eq!(decided.value, template, "{mode}: the pod is untouched");
            }
            Attack::JobEvent(because) => {
                let decided = policy.on_job_event(&event).unwrap();
                refused(&decided, because);
                assert_eq!(decided.value, PodMetadata::default());
            }
            Attack::Select(because) => {
                let candidates = ScaleDownInput {
                    surplus: 1,
                    candidates: vec![
                        RunnerInfo::busy("busy", RunnerPhase::Running, 1),
                        RunnerInfo::idle("idle", RunnerPhase::Running, 2),
                    ],
                    ..Default::default()
                };
                let decided = policy.select(&candidates).unwrap();
                refused(&decided, because);
                assert_eq!(decided.value, ["idle"]);
            }
            Attack::Decide(_) => {
                let mut i = input(0);
                i.now_unix_ms += call * 1000;
                let decided = replay.step(i.clone()).unwrap();
                assert!(decided.value.desired_runners <= i.bounds.max_runners);
            }
        }
    }
    drop(replay);
    (engine, policy)
}

#[tokio::test(flavor = "current_thread")]
async fn every_attack_is_refused_or_damped_and_costs_the_host_little() {
    let subscriber = tracing_subscriber::fmt().with_writer(|| Counting).with_max_level(tracing::Level::TRACE).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    println!("{:<18} {:>9} {:>11} {:>12}", "attack", "wall ms", "log bytes", "peak RSS MiB");
    for (mode, attack) in attacks() {
        peak_rss_kib(true);
        let logged_before = log_bytes().load(Ordering::Relaxed);
        let started = Instant::now();
        let (engine, policy) = run(mode, &attack).await;
        if let Attack::Decide(check) = &attack {
            check(&engine, &policy);
        }
        let wall = started.elapsed();
        let logged = log_bytes().load(Ordering::Relaxed) - logged_before;
        let peak_mib = peak_rss_kib(false) / 1024;
        println!("{mode:<18} {:>9} {logged:>11} {peak_mib:>12}", wall.as_millis());
        // 50 calls may log at most the per-minute budget, plus the host's own lines (a warning per refusal).
        assert!(logged < 512 << 10, "{mode}: {logged} log bytes");
        assert!(peak_mib < 512, "{mode}: peak RSS {peak_mib} MiB");
    }
}
