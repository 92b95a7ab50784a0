//! Figures of the benchmarks, in one format: each `cargo bench` target reports through [`figure`], which prints
//! an aligned line and, when `GHA_BENCH_JSON` names a file, appends the figure to it as a JSON line. The
//! `gha-bench` binary runs every benchmark that way and prints them as one table (`cargo run -p gha-bench
//! --release`).

use std::io::Write;

use serde::{Deserialize, Serialize};

/// The environment variable naming the JSON-lines file figures are appended to.
pub const JSON_ENV: &str = "GHA_BENCH_JSON";

/// One measured figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// What was measured.
    pub name: String,
    /// The measurement.
    pub value: f64,
    /// Its unit.
    pub unit: String,
    /// The target, in words (e.g. `<= 5 ms`), if the issue named one.
    pub target: Option<String>,
    /// Whether the target is met, when it is a plain bound (`<= N` or `>= N`) in the same unit.
    pub met: Option<bool>,
}

impl Figure {
    /// A figure with a target in words (`<= N unit` and `>= N unit` targets are judged).
    pub fn new(name: &str, value: f64, unit: &str, target: Option<&str>) -> Figure {
        let met = target.and_then(|t| bound(t, unit)).map(
            |(at_most, bound)| {
                if at_most { value <= bound } else { value >= bound }
            },
        );
        Figure { name: name.into(), value, unit: unit.into(), target: target.map(Into::into), met }
    }

    /// A figure held to an upper bound in its own unit (None: reported only).
    pub fn at_most(name: &str, value: f64, unit: &str, bound: Option<f64>) -> Figure {
        Figure::new(name, value, unit, bound.map(|b| format!("<= {b} {unit}")).as_deref())
    }

    /// Prints the figure and records it for the report.
    pub fn report(&self) {
        println!("{}", line(self));
        if let Ok(path) = std::env::var(JSON_ENV)
            && let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path)
        {
            let _ = writeln!(file, "{}", serde_json::to_string(self).unwrap_or_default());
        }
    }
}

/// Reports a figure: prints it and records it for the report.
pub fn figure(name: &str, value: f64, unit: &str, target: Option<&str>) {
    Figure::new(name, value, unit, target).report();
}

/// `<= N unit` (or `≤`) as (true, N) and `>= N unit` (or `≥`) as (false, N), when the unit is `unit`.
fn bound(target: &str, unit: &str) -> Option<(bool, f64)> {
    let target = target.trim();
    let strip = |ascii: &str, symbol: char| target.strip_prefix(ascii).or_else(|| target.strip_prefix(symbol));
    let (at_most, rest) = match strip("<=", '≤') {
        Some(rest) => (true, rest),
        None => (false, strip(">=", '≥')?),
    };
    let (number, target_unit) = rest.trim().split_once(' ').unwrap_or((rest.trim(), ""));
    let number: f64 = number.replace(',', "").parse().ok()?;
    (target_unit.trim() == unit).then_some((at_most, number))
}

/// A figure as one aligned line: name, value and unit, target, verdict.
pub fn line(figure: &Figure) -> String {
    let verdict = match figure.met {
        Some(true) => "ok",
        Some(false) => "MISSED",
        None => "",
    };
    let value = if figure.value.abs() >= 100.0 || figure.value.fract() == 0.0 {
        format!("{:.0}", figure.value)
    } else {
        format!("{:.3}", figure.value)
    };
    format!(
        "{:<78} {:>10} {:<5} {:<14} {}",
        figure.name,
        value,
        figure.unit,
        figure.target.as_deref().unwrap_or("—"),
        verdict
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_in_the_same_unit_are_judged() {
        assert_eq!(bound("<= 5 ms", "ms"), Some((true, 5.0)));
        assert_eq!(bound("≤ 2,000 req/s", "ms"), None);
        assert_eq!(bound(">= 2,000 req/s", "req/s"), Some((false, 2000.0)));
        assert_eq!(bound("≥ 5 x", "x"), Some((false, 5.0)));
        assert_eq!(bound("about 5 x", "x"), None);
        assert_eq!(Figure::new("x", 4.0, "x", Some(">= 5 x")).met, Some(false));
        assert_eq!(Figure::new("x", 6.0, "x", Some(">= 5 x")).met, Some(true));
        let f = Figure {
            name: "x".into(),
            value: 6.0,
            unit: "ms".into(),
            target: Some("<= 5 ms".into()),
            met: Some(false),
        };
        assert!(line(&f).ends_with("MISSED"));
    }
}
