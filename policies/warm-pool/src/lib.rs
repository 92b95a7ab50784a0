//! `warm-pool`: ARC's formula plus what ARC declined to build.
//!
//! - **Idle buffer proportional to load**: desired = floor + assigned + min(ceil(assigned × scaleFactor), maxExtra).
//! - **Schedules**: time-of-day/weekday windows (with a UTC offset) override the floor (minRunners), e.g. a warm
//!   pool in office hours and zero at night. The policy asks to be re-run at the next window boundary.
//! - **Idle TTL**: surplus idle runners go only after desired has stayed below the current count for
//!   `idleTtlSeconds` (and no job event arrived since the previous decision), instead of ARC's "only at min".
//! - **Scale-up rate limit**: at most `maxScaleUpPerMinute` new runners per minute.
//!
//! ```json
//! {"scaleFactor": 0.5, "maxExtra": 10, "idleTtlSeconds": 300, "maxScaleUpPerMinute": 20, "utcOffsetMinutes": 60,
//!  "schedules": [{"days": ["mon","tue","wed","thu","fri"], "start": "08:00", "end": "18:00", "minRunners": 5}]}
//! ```

mod schedule;

use gha_autoscaler_policy::prelude::*;
use serde::{Deserialize, Serialize};

pub use schedule::{Schedule, Weekday};

const MINUTE_MS: u64 = 60_000;

/// Warm-pool settings; every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// Extra idle runners per assigned job (0.5 = one spare per two jobs).
    pub scale_factor: f64,
    /// Cap on the extra runners from `scale_factor`; none = no cap.
    pub max_extra: Option<u32>,
    /// Windows that override the floor (minRunners).
    pub schedules: Vec<Schedule>,
    /// Offset of the schedules' clock from UTC, in minutes (e.g. 60 for CET, -300 for EST).
    pub utc_offset_minutes: i32,
    /// How long desired must stay below the current runner count before surplus idle runners go.
    pub idle_ttl_seconds: u64,
    /// Most runners added per minute; none = unlimited.
    pub max_scale_up_per_minute: Option<u32>,
}

/// What the policy remembers between decisions (in the decision's `state`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct State {
    /// Since when desired has been below the current runner count.
    below_since_ms: Option<u64>,
    /// Start of the current scale-up rate window.
    window_start_ms: u64,
    /// Runners added in the current window.
    added_in_window: u32,
}

/// The warm-pool policy.
#[derive(Debug, Clone)]
pub struct WarmPool {
    config: Config,
}

impl Policy for WarmPool {
    type Config = Option<Config>;
    const NAME: &'static str = "warm-pool";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn configure(_: &ScaleSetRef, config: Option<Config>) -> Result<Self, PolicyError> {
        let config = config.unwrap_or_default();
        if !config.scale_factor.is_finite() || config.scale_factor < 0.0 {
            return Err(PolicyError::InvalidConfig(format!(
                "scaleFactor must be a finite number >= 0, got {}",
                config.scale_factor
            )));
        }
        if config.utc_offset_minutes.abs() > 14 * 60 {
            return Err(PolicyError::InvalidConfig("utcOffsetMinutes must be within ±840".into()));
        }
        if config.max_scale_up_per_minute == Some(0) {
            return Err(PolicyError::InvalidConfig("maxScaleUpPerMinute must be at least 1".into()));
        }
        for (i, s) in config.schedules.iter().enumerate() {
            s.validate().map_err(|e| PolicyError::InvalidConfig(format!("schedules[{i}]: {e}")))?;
        }
        Ok(WarmPool { config })
    }
}

impl WarmPool {
    fn local_ms(&self, now_unix_ms: u64) -> i64 {
        now_unix_ms as i64 + i64::from(self.config.utc_offset_minutes) * MINUTE_MS as i64
    }

    /// The floor: the largest active schedule's minRunners, else the scale set's minRunners.
    fn floor(&self, input: &ScaleInput) -> (u32, Option<&Schedule>) {
        let local = self.local_ms(input.now_unix_ms);
        let active = self.config.schedules.iter().filter(|s| s.is_active(local)).max_by_key(|s| s.min_runners);
        match active {
            Some(s) => (s.min_runners, Some(s)),
            None => (input.bounds.min_runners, None),
        }
    }

    fn extra(&self, assigned: u32) -> u32 {
        let extra = (f64::from(assigned) * self.config.scale_factor).ceil().min(f64::from(u32::MAX)) as u32;
        self.config.max_extra.map_or(extra, |cap| extra.min(cap))
    }

    fn next_schedule_boundary_ms(&self, now_unix_ms: u64) -> Option<u64> {
        let local = self.local_ms(now_unix_ms);
        self.config.schedules.iter().filter_map(|s| s.next_boundary(local)).min().map(|next| (next - local) as u64)
    }
}

impl Scaler for WarmPool {
    fn decide(&mut self, input: &ScaleInput) -> Result<ScaleDecision, PolicyError> {
        let now = input.now_unix_ms;
        let mut state: State = state::load(&input.state).unwrap_or_default();
        let (floor, schedule) = self.floor(input);
        let assigned = input.statistics.assigned_jobs;
        let extra = self.extra(assigned);
        let mut desired = floor.saturating_add(assigned).saturating_add(extra).min(input.bounds.max_runners);
        let mut requeue: Vec<u64> = self.next_schedule_boundary_ms(now).into_iter().collect();
        let mut notes = vec![format!("floor {floor} + assigned {assigned} + extra {extra}")];
        if let Some(s) = schedule {
            notes.push(format!("schedule {}-{}", s.start, s.end));
        }

        // Scale-up rate limit, measured against what we asked for last time (or what exists on the first call).
        let base = input.previous.map_or(input.runners.current, |p| p.desired_runners);
        if let Some(per_minute) = self.config.max_scale_up_per_minute {
            if now.saturating_sub(state.window_start_ms) >= MINUTE_MS {
                state.window_start_ms = now;
                state.added_in_window = 0;
            }
            if desired > base {
                let allowed = per_minute.saturating_sub(state.added_in_window);
                let step = (desired - base).min(allowed);
                if step < desired - base {
                    notes.push(format!("scale-up limited to {per_minute}/min"));
                    requeue.push(state.window_start_ms + MINUTE_MS - now);
                }
                desired = base + step;
                state.added_in_window += step;
            }
        }

        // Idle TTL: surplus idle runners go once desired has stayed below the current count long enough.
        let surplus = desired < input.runners.current;
        let drain = if surplus {
            let since = *state.below_since_ms.get_or_insert(now);
            let ttl_ms = self.config.idle_ttl_seconds * 1000;
            let elapsed = now.saturating_sub(since);
            if elapsed < ttl_ms {
                notes.push(format!("idle TTL: {}s left", (ttl_ms - elapsed).div_ceil(1000)));
                requeue.push(ttl_ms - elapsed);
            }
            elapsed >= ttl_ms && input.job_events_since_previous == 0
        } else {
            state.below_since_ms = None;
            false
        };

        Ok(ScaleDecision {
            desired_runners: desired,
            max_capacity: Some(input.bounds.max_runners),
            min_runners: floor,
            drain,
            requeue_after_ms: requeue.into_iter().min().map(|ms| ms.clamp(1, u64::from(u32::MAX)) as u32),
            reason: notes.join("; "),
            state: state::save(&state),
            attributes: Vec::new(),
        })
    }
}

#[cfg(target_arch = "wasm32")]
gha_autoscaler_policy::export_policy!(WarmPool: Scaler);

#[cfg(test)]
mod tests {
    use gha_autoscaler_policy::testing::Replay;

    use super::*;

    // 2026-11-23 is a Monday; 00:00 UTC.
    const MONDAY: u64 = 1_795_392_000_000;
    const HOUR: u64 = 3_600_000;

    fn policy(json: &str) -> WarmPool {
        let config = gha_autoscaler_policy::parse_config(json).unwrap();
        WarmPool::configure(&ScaleSetRef::default(), config).unwrap()
    }

    fn input(now: u64, assigned: u32, current: u32) -> ScaleInput {
        ScaleInput {
            now_unix_ms: now,
            statistics: JobStatistics { assigned_jobs: assigned, ..Default::default() },
            runners: RunnerCounts { current, running: current, ..Default::default() },
            bounds: Bounds { min_runners: 1, max_runners: 100 },
            ..Default::default()
        }
    }

    #[test]
    fn without_config_it_is_arc_formula() {
        let d = policy("").decide(&input(MONDAY, 4, 0)).unwrap();
        assert_eq!((d.desired_runners, d.min_runners), (5, 1));
    }

    #[test]
    fn idle_buffer_grows_with_load_up_to_the_cap() {
        let mut p = policy(r#"{"scaleFactor": 0.5, "maxExtra": 3}"#);
        assert_eq!(p.decide(&input(MONDAY, 3, 0)).unwrap().desired_runners, 1 + 3 + 2);
        assert_eq!(p.decide(&input(MONDAY, 20, 0)).unwrap().desired_runners, 1 + 20 + 3);
    }

    #[test]
    fn schedule_overrides_the_floor_in_local_time() {
        let json = r#"{"utcOffsetMinutes": 60, "schedules": [{"days": ["mon"], "start": "08:00", "end": "18:00", "minRunners": 5}]}"#;
        let mut p = policy(json);
        // 06:30 UTC = 07:30 local: before the window; asks to be re-run at 08:00 local (30 min).
        let early = p.decide(&input(MONDAY + 6 * HOUR + HOUR / 2, 0, 1)).unwrap();
        assert_eq!((early.min_runners, early.desired_runners), (1, 1));
        assert_eq!(early.requeue_after_ms, Some(30 * 60_000));
        // 07:00 UTC = 08:00 local: the window starts.
        let open = p.decide(&input(MONDAY + 7 * HOUR, 2, 1)).unwrap();
        assert_eq!((open.min_runners, open.desired_runners), (5, 7));
        // Tuesday is not in the window.
        assert_eq!(p.decide(&input(MONDAY + 31 * HOUR, 0, 1)).unwrap().min_runners, 1);
    }

    #[test]
    fn surplus_drains_only_after_the_idle_ttl() {
        let mut replay = Replay::new(policy(r#"{"idleTtlSeconds": 300}"#));
        let d = replay.step(input(MONDAY, 0, 6)).unwrap();
        assert!(!d.drain);
        assert_eq!(d.requeue_after_ms, Some(300_000));
        assert!(!replay.step(input(MONDAY + 299_000, 0, 6)).unwrap().drain);
        assert!(replay.step(input(MONDAY + 300_000, 0, 6)).unwrap().drain);
        // Load returns: the cooldown resets.
        assert!(!replay.step(input(MONDAY + 301_000, 8, 6)).unwrap().drain);
        assert!(!replay.step(input(MONDAY + 302_000, 0, 9)).unwrap().drain);
    }

    #[test]
    fn job_events_block_the_drain() {
        let mut replay = Replay::new(policy(""));
        let mut busy = input(MONDAY, 0, 3);
        busy.job_events_since_previous = 1;
        assert!(!replay.step(busy).unwrap().drain);
        assert!(replay.step(input(MONDAY + 1, 0, 3)).unwrap().drain);
    }

    #[test]
    fn scale_up_is_rate_limited_per_minute() {
        let mut replay = Replay::new(policy(r#"{"maxScaleUpPerMinute": 10}"#));
        let d = replay.step(input(MONDAY, 50, 0)).unwrap();
        assert_eq!(d.desired_runners, 10);
        assert_eq!(d.requeue_after_ms, Some(60_000));
        assert_eq!(replay.step(input(MONDAY + 30_000, 50, 10)).unwrap().desired_runners, 10);
        assert_eq!(replay.step(input(MONDAY + 60_000, 50, 10)).unwrap().desired_runners, 20);
    }

    #[test]
    fn bad_config_is_rejected_with_the_field() {
        for (json, needle) in [
            (r#"{"scaleFactor": -1}"#, "scaleFactor"),
            (
                r#"{"schedules": [{"days": ["mon"], "start": "25:00", "end": "18:00", "minRunners": 1}]}"#,
                "schedules[0]",
            ),
            (r#"{"schedules": [{"days": ["funday"], "start": "08:00", "end": "18:00", "minRunners": 1}]}"#, "funday"),
            (r#"{"maxScaleUpPerMinute": 0}"#, "maxScaleUpPerMinute"),
            (r#"{"idleTTL": 5}"#, "idleTTL"),
        ] {
            let err = gha_autoscaler_policy::parse_config::<Option<Config>>(json)
                .and_then(|c| WarmPool::configure(&ScaleSetRef::default(), c))
                .unwrap_err();
            assert!(err.to_string().contains(needle), "{json}: {err}");
        }
    }
}
