//! How much a policy may log: lines and bytes per call and per minute, so a policy that logs in a loop costs the
//! host a bounded amount of output whatever it does.

use std::time::{Duration, Instant};

/// Lines one hook call may log.
pub const MAX_LOG_LINES_PER_CALL: u32 = 32;
/// Bytes (message and fields) one hook call may log.
pub const MAX_LOG_BYTES_PER_CALL: usize = 16 << 10;
/// Lines one policy instance may log per minute.
pub const MAX_LOG_LINES_PER_MINUTE: u32 = 600;
/// Bytes one policy instance may log per minute.
pub const MAX_LOG_BYTES_PER_MINUTE: usize = 256 << 10;
/// Longest log message kept, characters (longer ones are cut).
pub const MAX_LOG_MESSAGE_CHARS: usize = 4096;
/// Most fields kept per line, and the longest key and value, characters.
pub const MAX_LOG_FIELDS: usize = 16;
/// Longest field key or value kept, characters.
pub const MAX_LOG_FIELD_CHARS: usize = 256;

const WINDOW: Duration = Duration::from_secs(60);

/// Lines and bytes spent.
#[derive(Debug, Default, Clone, Copy)]
struct Spent {
    lines: u32,
    bytes: usize,
}

impl Spent {
    fn fits(&self, bytes: usize, max_lines: u32, max_bytes: usize) -> bool {
        self.lines < max_lines && self.bytes + bytes <= max_bytes
    }

    fn add(&mut self, bytes: usize) {
        self.lines += 1;
        self.bytes += bytes;
    }
}

/// What a log line may do under the budget.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Write it.
    Write,
    /// Drop it, and say once that the budget is spent (the first line dropped in this call or window).
    DropAndWarn,
    /// Drop it silently.
    Drop,
}

/// A policy instance's log budget; the per-minute window outlives instantiations.
#[derive(Debug)]
pub(crate) struct LogBudget {
    call: Spent,
    window: Spent,
    window_started: Instant,
    warned: bool,
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget { call: Spent::default(), window: Spent::default(), window_started: Instant::now(), warned: false }
    }
}

impl LogBudget {
    /// A hook call starts: its own budget is fresh.
    pub(crate) fn start_call(&mut self) {
        self.call = Spent::default();
    }

    /// Whether anything more may be logged now.
    pub(crate) fn open(&mut self, now: Instant) -> bool {
        self.roll(now);
        self.call.fits(0, MAX_LOG_LINES_PER_CALL, MAX_LOG_BYTES_PER_CALL)
            && self.window.fits(0, MAX_LOG_LINES_PER_MINUTE, MAX_LOG_BYTES_PER_MINUTE)
    }

    /// Spends a line of `bytes` if both budgets allow it.
    pub(crate) fn spend(&mut self, bytes: usize, now: Instant) -> Verdict {
        self.roll(now);
        if self.call.fits(bytes, MAX_LOG_LINES_PER_CALL, MAX_LOG_BYTES_PER_CALL)
            && self.window.fits(bytes, MAX_LOG_LINES_PER_MINUTE, MAX_LOG_BYTES_PER_MINUTE)
        {
            self.call.add(bytes);
            self.window.add(bytes);
            return Verdict::Write;
        }
        if self.warned {
            Verdict::Drop
        } else {
            self.warned = true;
            Verdict::DropAndWarn
        }
    }

    fn roll(&mut self, now: Instant) {
        if now.duration_since(self.window_started) >= WINDOW {
            self.window = Spent::default();
            self.window_started = now;
            self.warned = false;
        }
    }
}

/// A message cut to [`MAX_LOG_MESSAGE_CHARS`], and fields to [`MAX_LOG_FIELDS`] of [`MAX_LOG_FIELD_CHARS`].
pub(crate) fn bounded_line(message: &str, fields: &[(String, String)]) -> (String, String) {
    let cut = |text: &str, max: usize| -> String { text.chars().take(max).collect() };
    let fields: Vec<String> = fields
        .iter()
        .take(MAX_LOG_FIELDS)
        .map(|(k, v)| format!("{}={}", cut(k, MAX_LOG_FIELD_CHARS), cut(v, MAX_LOG_FIELD_CHARS)))
        .collect();
    (cut(message, MAX_LOG_MESSAGE_CHARS), fields.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_and_a_minute_have_budgets_and_the_first_drop_warns_once() {
        let mut budget = LogBudget::default();
        let now = Instant::now();
        budget.start_call();
        let verdicts: Vec<Verdict> = (0..40).map(|_| budget.spend(10, now)).collect();
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Write).count(), MAX_LOG_LINES_PER_CALL as usize);
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::DropAndWarn).count(), 1);
        assert!(!budget.open(now));
        let mut written = 0;
        for _ in 0..100 {
            budget.start_call();
            while budget.spend(1000, now) == Verdict::Write {
                written += 1000;
            }
        }
        assert!(written + 320 <= MAX_LOG_BYTES_PER_MINUTE, "the minute's bytes bound every call: {written}");
        assert!(budget.open(now + WINDOW), "a new minute, a new budget");
    }

    #[test]
    fn lines_are_cut_to_their_caps() {
        let fields: Vec<(String, String)> = (0..100).map(|i| (format!("k{i}"), "v".repeat(10_000))).collect();
        let (message, fields) = bounded_line(&"m".repeat(1 << 20), &fields);
        assert_eq!(message.len(), MAX_LOG_MESSAGE_CHARS);
        assert!(fields.len() <= MAX_LOG_FIELDS * (2 * MAX_LOG_FIELD_CHARS + 2), "{}", fields.len());
    }
}
