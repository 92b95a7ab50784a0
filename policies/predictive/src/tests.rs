use gha_autoscaler_policy::testing::Replay;

use super::*;

const T0: u64 = 1_795_392_000_000;
const S: u64 = 1000;
const CI: &str = "acme/app/.github/workflows/ci.yml@refs/heads/main";

fn policy(json: &str) -> Predictive {
    Predictive::configure(&ScaleSetRef::default(), gha_autoscaler_policy::parse_config(json).unwrap()).unwrap()
}

fn event(phase: JobPhase, run: u64, job_id: u64, name: &str) -> JobEvent {
    JobEvent {
        phase,
        job_id,
        workflow_ref: CI.into(),
        workflow_run_id: run,
        job_display_name: name.into(),
        ..Default::default()
    }
}

fn started(run: u64, job_id: u64, name: &str, at: u64) -> JobEvent {
    JobEvent {
        started_unix_ms: Some(at),
        runner_name: format!("r{job_id}"),
        ..event(JobPhase::Started, run, job_id, name)
    }
}

fn completed(run: u64, job_id: u64, name: &str, from: u64, to: u64) -> JobEvent {
    JobEvent {
        phase: JobPhase::Completed,
        finished_unix_ms: Some(to),
        conclusion: Some("succeeded".into()),
        ..started(run, job_id, name, from)
    }
}

fn input(now: u64, assigned: u32, events: Vec<JobEvent>) -> ScaleInput {
    ScaleInput {
        now_unix_ms: now,
        statistics: JobStatistics { assigned_jobs: assigned, ..Default::default() },
        bounds: Bounds { min_runners: 0, max_runners: 200 },
        job_events_since_previous: events
            .iter()
            .filter(|e| matches!(e.phase, JobPhase::Started | JobPhase::Completed))
            .count() as u32,
        job_events: events.into_iter().collect(),
        ..Default::default()
    }
}

/// One run of `build` (300 s) → 40 tests, starting at `at`; returns the time the tests were queued.
fn teach_one_run(replay: &mut Replay<Predictive>, run: u64, at: u64) -> u64 {
    let build = run * 100;
    replay.step(input(at, 1, vec![event(JobPhase::Assigned, run, build, "build")])).unwrap();
    replay.step(input(at + 20 * S, 1, vec![started(run, build, "build", at + 20 * S)])).unwrap();
    let done = at + 320 * S;
    let mut events = vec![completed(run, build, "build", at + 20 * S, done)];
    events.extend((1..=40).map(|i| event(JobPhase::Assigned, run, build + i, &format!("test ({i}/40)"))));
    replay.step(input(done, 40, events)).unwrap();
    done
}

/// A policy that has learned run 1 (its fan-out window closed) and the time run 2's build starts.
fn taught() -> (Replay<Predictive>, u64) {
    let mut replay = Replay::new(policy(""));
    let done = teach_one_run(&mut replay, 1, T0);
    replay.step(input(done + 31 * S, 0, vec![])).unwrap();
    (replay, done + 600 * S)
}

#[test]
fn a_learned_fanout_is_warmed_before_the_predecessor_ends_and_not_counted_twice() {
    // Run 1's window closed 30 s after its build: fan-out 40 learned.
    let (mut replay, start) = taught();
    let d = replay.step(input(start, 1, vec![started(2, 200, "build", start)])).unwrap();
    assert_eq!(d.desired_runners, 1, "too early to warm: {}", d.reason);
    // Mean 300 s, deviation 30 s: warm from 300 - 1.75×30 - 25 = 222.5 s after the start; asks to be woken then.
    assert_eq!(d.requeue_after_ms, Some(222_500));
    let d = replay.step(input(start + 223 * S, 1, vec![])).unwrap();
    assert_eq!(d.desired_runners, 41, "{}", d.reason);
    // The build ends and its 40 tests are queued (assigned counts them): nothing is added on top.
    let end = start + 290 * S;
    let mut events = vec![completed(2, 200, "build", start, end)];
    events.extend((1..=40).map(|i| event(JobPhase::Assigned, 2, 200 + i, &format!("test ({i}/40)"))));
    let d = replay.step(input(end, 40, events)).unwrap();
    assert_eq!(d.desired_runners, 40, "{}", d.reason);
}

#[test]
fn fanout_assigned_before_its_predecessor_completed_in_one_batch_is_still_learned() {
    let mut replay = Replay::new(policy(""));
    replay.step(input(T0, 1, vec![started(1, 100, "build", T0)])).unwrap();
    let done = T0 + 300 * S;
    let mut events: Vec<JobEvent> =
        (1..=40).map(|i| event(JobPhase::Assigned, 1, 100 + i, &format!("test ({i}/40)"))).collect();
    events.push(completed(1, 100, "build", T0, done));
    replay.step(input(done, 40, events)).unwrap();
    replay.step(input(done + 31 * S, 0, vec![])).unwrap();
    let start = done + 600 * S;
    let d = replay.step(input(start + 223 * S, 1, vec![started(2, 200, "build", start)])).unwrap();
    assert_eq!(d.desired_runners, 41, "{}", d.reason);
}

#[test]
fn a_fan_in_is_warmed_before_the_last_job_of_the_matrix_it_needs_ends() {
    // Each run: a 4-way matrix (100 s) → deploy, which GitHub queues when the whole matrix has finished.
    let mut replay = Replay::new(policy(r#"{"baselineFactor": 0}"#));
    let matrix = |run: u64| (1..=4u64).map(move |i| (run * 100 + i, format!("test ({i}/4)")));
    let mut at = T0;
    for run in 1..=3u64 {
        let queued = matrix(run).map(|(id, name)| event(JobPhase::Assigned, run, id, &name)).collect();
        replay.step(input(at, 4, queued)).unwrap();
        let started = matrix(run).map(|(id, name)| started(run, id, &name, at)).collect();
        let d = replay.step(input(at, 4, started)).unwrap();
        if run == 3 {
            // Three of four done at 95 s: the deploy's runner is already warming (from 100 − 25 s).
            let early: Vec<JobEvent> =
                matrix(run).take(3).map(|(id, name)| completed(run, id, &name, at, at + 95 * S)).collect();
            let d = replay.step(input(at + 95 * S, 1, early)).unwrap();
            assert_eq!(d.desired_runners, 1 + 1, "{}", d.reason);
            return;
        }
        assert_eq!(d.desired_runners, 4, "nothing learned yet: {}", d.reason);
        // The first three end at 90 s, the last at 100 s; then the deploy is queued.
        let mut done: Vec<JobEvent> =
            matrix(run).take(3).map(|(id, name)| completed(run, id, &name, at, at + 90 * S)).collect();
        replay.step(input(at + 90 * S, 1, std::mem::take(&mut done))).unwrap();
        let (id, name) = matrix(run).next_back().unwrap();
        let end = at + 100 * S;
        done.push(completed(run, id, &name, at, end));
        done.push(event(JobPhase::Assigned, run, run * 100 + 50, "deploy"));
        replay.step(input(end, 1, done)).unwrap();
        replay.step(input(end + 31 * S, 0, vec![])).unwrap();
        at += 1000 * S;
    }
}

#[test]
fn a_job_queued_started_and_completed_in_one_batch_leaves_no_group_behind() {
    // Its assignment is taken after its completion; counted then, its group would never finish.
    let mut p = policy("");
    let mut events = vec![event(JobPhase::Assigned, 1, 100, "lint"), started(1, 100, "lint", T0)];
    events.push(completed(1, 100, "lint", T0, T0 + 5 * S));
    let d = p.decide(&input(T0 + 5 * S, 0, events)).unwrap();
    let state: State = state::load(&d.state).unwrap();
    assert!(state.in_flight.groups.is_empty(), "{:?}", state.in_flight.groups);
}

#[test]
fn announced_fanout_holds_runners_until_it_is_queued() {
    let (mut replay, start) = taught();
    replay.step(input(start, 1, vec![started(2, 200, "build", start)])).unwrap();
    // The build completes; its tests come a few seconds later (another message): its runners stay meanwhile.
    let end = start + 300 * S;
    let d = replay.step(input(end, 0, vec![completed(2, 200, "build", start, end)])).unwrap();
    assert_eq!(d.desired_runners, 40, "{}", d.reason);
    assert!(!d.drain);
    let tests = (1..=40).map(|i| event(JobPhase::Assigned, 2, 200 + i, &format!("test ({i}/40)"))).collect();
    assert_eq!(replay.step(input(end + 3 * S, 40, tests)).unwrap().desired_runners, 40);
}

#[test]
fn warmed_runners_are_released_when_the_fanout_does_not_come() {
    // Run 2's build fails: nothing is held for it.
    let (mut replay, start) = taught();
    replay.step(input(start, 1, vec![started(2, 200, "build", start)])).unwrap();
    let mut failed = completed(2, 200, "build", start, start + 250 * S);
    failed.conclusion = Some("failed".into());
    let d = replay.step(input(start + 250 * S, 0, vec![failed])).unwrap();
    assert_eq!(d.desired_runners, 0, "{}", d.reason);
    // Run 3's build hangs: warmed from 222.5 s, released after 300 + 52.5 + 120 s, then drained when quiet.
    let start = start + 1000 * S;
    replay.step(input(start, 1, vec![started(3, 300, "build", start)])).unwrap();
    assert!(replay.step(input(start + 300 * S, 1, vec![])).unwrap().desired_runners > 30);
    let d = replay.step(input(start + 480 * S, 1, vec![])).unwrap();
    assert_eq!((d.desired_runners, d.drain), (1, true), "{}", d.reason);
}

#[test]
fn what_was_learned_survives_a_new_instance() {
    let mut replay = Replay::new(policy(""));
    let done = teach_one_run(&mut replay, 1, T0);
    let learned = replay.step(input(done + 31 * S, 0, vec![])).unwrap();
    // A new instance (a restarted listener) gets only the persisted state.
    let mut fresh = policy("");
    let start = done + 600 * S;
    let mut first = input(start, 1, vec![started(2, 200, "build", start)]);
    first.state = learned.state;
    let d = fresh.decide(&first).unwrap();
    let mut later = input(start + 230 * S, 1, vec![]);
    later.state = d.state;
    assert_eq!(fresh.decide(&later).unwrap().desired_runners, 41);
}

#[test]
fn garbage_state_is_a_fresh_start_and_state_stays_within_its_bound() {
    let mut p = policy(r#"{"maxStateBytes": 1024, "maxLearned": 1000}"#);
    let mut garbage = input(T0, 2, vec![]);
    garbage.state = b"\xff not json".to_vec();
    assert_eq!(p.decide(&garbage).unwrap().desired_runners, 2);
    // Hundreds of workflows and runs at once: what is kept is trimmed to the bound.
    let mut replay = Replay::new(p);
    for batch in 0..20u64 {
        let now = T0 + batch * 10 * S;
        let events = (0..50u64)
            .flat_map(|i| {
                let run = batch * 50 + i + 1;
                let mut e = completed(run, run, &format!("job-{run}"), now - 5 * S, now);
                e.workflow_ref = format!("acme/repo-{run}/.github/workflows/ci.yml@main");
                [e, event(JobPhase::Assigned, run, run + 10_000, "next")]
            })
            .collect();
        let d = replay.step(input(now, 0, events)).unwrap();
        assert!(d.state.len() <= 1024, "{} bytes", d.state.len());
    }
}

#[test]
fn runs_starting_often_keep_a_small_idle_pool() {
    let mut replay = Replay::new(policy(r#"{"maxBaseline": 3}"#));
    assert_eq!(replay.step(input(T0, 0, vec![])).unwrap().desired_runners, 0);
    let root = |i: u64| vec![event(JobPhase::Assigned, 1000 + i, i, "lint")];
    // A run every 30 s for 10 minutes: ≈ 0.5 arrive while a runner starts (25 s); two idle runners cover that
    // five times in six.
    let mut d = replay.step(input(T0, 1, root(0))).unwrap();
    for i in 1..20u64 {
        d = replay.step(input(T0 + i * 30 * S, 1, root(i))).unwrap();
    }
    assert_eq!(d.desired_runners, 1 + 2, "{}", d.reason);
    // A merge-queue burst: one every 3 s for 2 minutes; the pool grows to its cap.
    for i in 0..40u64 {
        d = replay.step(input(T0 + 600 * S + i * 3 * S, 1, root(100 + i))).unwrap();
    }
    assert_eq!(d.desired_runners, 1 + 3, "{}", d.reason);
    // Quiet for an hour: no pool.
    assert_eq!(replay.step(input(T0 + 4000 * S, 0, vec![])).unwrap().desired_runners, 0);
}

#[test]
fn runs_that_start_with_two_jobs_get_their_pool_in_pairs() {
    let mut replay = Replay::new(policy(r#"{"baselineFactor": 1}"#));
    let lint = |run: u64| event(JobPhase::Assigned, run, run * 10, "lint");
    let build = |run: u64| event(JobPhase::Assigned, run, run * 10 + 1, "build");
    // A run (lint and build at once) every 30 s for 10 minutes: ≈ 0.5 run starts while a runner starts, covered
    // five times in six by two starts' worth of idle runners — four, not the three that one job at a time needs.
    // Every other run's build comes a second after its lint, in a message of its own: still the same run's start.
    let mut d = replay.step(input(T0, 2, vec![lint(1), build(1)])).unwrap();
    for i in 1..20u64 {
        let at = T0 + i * 30 * S;
        d = if i % 2 == 0 {
            replay.step(input(at, 2, vec![lint(1 + i), build(1 + i)])).unwrap()
        } else {
            replay.step(input(at, 1, vec![lint(1 + i)])).unwrap();
            replay.step(input(at + S, 2, vec![build(1 + i)])).unwrap()
        };
    }
    assert_eq!(d.desired_runners, 2 + 4, "{}", d.reason);
}

#[test]
fn settings_are_checked_by_name() {
    for (json, field) in [
        (r#"{"leadSeconds": -1}"#, "leadSeconds"),
        (r#"{"maxLearned": 0}"#, "maxLearned"),
        (r#"{"maxStateBytes": 100}"#, "maxStateBytes"),
        (r#"{"prewarmFactor": 11}"#, "prewarmFactor"),
    ] {
        let config = gha_autoscaler_policy::parse_config(json).unwrap();
        let err = Predictive::configure(&ScaleSetRef::default(), config).unwrap_err();
        assert!(err.to_string().contains(field), "{err}");
    }
    assert!(gha_autoscaler_policy::parse_config::<Option<Config>>(r#"{"leadSecond": 1}"#).is_err());
}
