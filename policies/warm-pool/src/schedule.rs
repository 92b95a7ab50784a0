//! Weekly time windows in the schedule's local time.

use serde::Deserialize;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;

/// Day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs, reason = "day names")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// The weekday of a day number counted from 1970-01-01 (a Thursday).
    fn of_day(day: i64) -> Weekday {
        const DAYS: [Weekday; 7] =
            [Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun, Weekday::Mon, Weekday::Tue, Weekday::Wed];
        DAYS[day.rem_euclid(7) as usize]
    }
}

/// A weekly window: on each of `days`, from `start` to `end` ("HH:MM", local time), the floor is `min_runners`.
/// An `end` at or before `start` runs past midnight into the next day.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schedule {
    /// Days the window starts on.
    pub days: Vec<Weekday>,
    /// Start, "HH:MM".
    pub start: String,
    /// End, "HH:MM".
    pub end: String,
    /// Floor while the window is open.
    pub min_runners: u32,
}

fn minutes(hhmm: &str) -> Result<i64, String> {
    let parse = || -> Option<i64> {
        let (h, m) = hhmm.split_once(':')?;
        let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
        ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
    };
    parse().ok_or_else(|| format!("{hhmm:?} is not a time of day (HH:MM)"))
}

impl Schedule {
    /// Checks days and times.
    pub fn validate(&self) -> Result<(), String> {
        if self.days.is_empty() {
            return Err("days must name at least one day".into());
        }
        minutes(&self.start)?;
        minutes(&self.end)?;
        Ok(())
    }

    /// The windows starting on `day` as [start, end) in local milliseconds, if the window runs that day.
    fn window(&self, day: i64) -> Option<(i64, i64)> {
        let (start, end) = (minutes(&self.start).ok()?, minutes(&self.end).ok()?);
        if !self.days.contains(&Weekday::of_day(day)) {
            return None;
        }
        let end = if end <= start { end + 24 * 60 } else { end };
        Some((day * DAY_MS + start * MINUTE_MS, day * DAY_MS + end * MINUTE_MS))
    }

    /// Whether the window is open at `local_ms` (local milliseconds since the epoch).
    pub fn is_active(&self, local_ms: i64) -> bool {
        let today = local_ms.div_euclid(DAY_MS);
        [today - 1, today].into_iter().filter_map(|d| self.window(d)).any(|(s, e)| (s..e).contains(&local_ms))
    }

    /// The next time the window opens or closes after `local_ms`.
    pub fn next_boundary(&self, local_ms: i64) -> Option<i64> {
        let today = local_ms.div_euclid(DAY_MS);
        (today - 1..=today + 8).filter_map(|d| self.window(d)).flat_map(|(s, e)| [s, e]).filter(|&t| t > local_ms).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(days: &[Weekday], start: &str, end: &str) -> Schedule {
        Schedule { days: days.to_vec(), start: start.into(), end: end.into(), min_runners: 3 }
    }

    #[test]
    fn epoch_day_zero_is_a_thursday() {
        assert_eq!(Weekday::of_day(0), Weekday::Thu);
        assert_eq!(Weekday::of_day(4), Weekday::Mon);
        assert_eq!(Weekday::of_day(-1), Weekday::Wed);
    }

    #[test]
    fn overnight_windows_run_into_the_next_day() {
        let s = schedule(&[Weekday::Thu], "22:00", "06:00");
        assert!(s.is_active(23 * 60 * MINUTE_MS));
        assert!(s.is_active(DAY_MS + 5 * 60 * MINUTE_MS));
        assert!(!s.is_active(DAY_MS + 6 * 60 * MINUTE_MS));
        assert_eq!(s.next_boundary(DAY_MS + 60 * MINUTE_MS), Some(DAY_MS + 6 * 60 * MINUTE_MS));
    }
}
