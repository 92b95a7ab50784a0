//! Validation and clamping of policy outputs. The host acts only on what passes here.

use std::collections::{HashMap, HashSet};

use crate::limits::{MAX_REASON_CHARS, PolicyLimits};
use crate::types::{ScaleDecision, ScaleDownInput, ScaleInput};

/// Longest re-evaluation delay a policy may ask for (the shortest is `limits.min_requeue_ms`).
pub const MAX_REQUEUE_MS: u32 = 3_600_000;
/// Most attributes a decision may carry.
const MAX_ATTRIBUTES: usize = 64;
/// Most bytes (keys and values) of a decision's attributes: the decision is kept as the last good one, the
/// previous one and in the decision log.
pub const MAX_ATTRIBUTE_BYTES: usize = 8 << 10;

/// A validated output and what the host changed to make it acceptable.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated<T> {
    /// The output the host acts on.
    pub value: T,
    /// Human-readable notes on every clamp or correction.
    pub adjustments: Vec<String>,
}

/// Clamps a decision into the scale set's bounds: floor within [min, max], desired within [floor, max], capacity
/// at most max; truncates the reason; bounds the requeue delay.
///
/// # Errors
/// A state larger than the limit (truncating it would corrupt it).
pub fn decision(
    raw: ScaleDecision,
    input: &ScaleInput,
    limits: &PolicyLimits,
) -> Result<Validated<ScaleDecision>, String> {
    if raw.state.len() > limits.max_state_bytes as usize {
        return Err(format!("state is {} bytes, over the {}-byte limit", raw.state.len(), limits.max_state_bytes));
    }
    let mut adjustments = Vec::new();
    let mut note = |what: &str, from: String, to: String| adjustments.push(format!("{what} {from} -> {to}"));
    let bounds = input.bounds;
    let max = bounds.max_runners.max(bounds.min_runners);

    let min_runners = bounds.clamp(raw.min_runners);
    if min_runners != raw.min_runners {
        note("minRunners", raw.min_runners.to_string(), min_runners.to_string());
    }
    let desired_runners = raw.desired_runners.clamp(min_runners, max);
    if desired_runners != raw.desired_runners {
        note("desiredRunners", raw.desired_runners.to_string(), desired_runners.to_string());
    }
    let max_capacity = raw.max_capacity.unwrap_or(max).min(max);
    if raw.max_capacity.is_some_and(|c| c != max_capacity) {
        note("maxCapacity", format!("{:?}", raw.max_capacity), max_capacity.to_string());
    }
    let requeue_after_ms = raw.requeue_after_ms.map(|ms| ms.clamp(limits.min_requeue_ms, MAX_REQUEUE_MS));
    if requeue_after_ms != raw.requeue_after_ms {
        note("requeueAfterMs", format!("{:?}", raw.requeue_after_ms), format!("{requeue_after_ms:?}"));
    }
    let mut reason = raw.reason;
    if reason.chars().count() > MAX_REASON_CHARS {
        reason = reason.chars().take(MAX_REASON_CHARS - 1).chain(['…']).collect();
        adjustments.push(format!("reason truncated to {MAX_REASON_CHARS} characters"));
    }
    let mut attributes = raw.attributes;
    let mut bytes = 0;
    let within = attributes
        .iter()
        .take(MAX_ATTRIBUTES)
        .take_while(|(k, v)| {
            bytes += k.len() + v.len();
            bytes <= MAX_ATTRIBUTE_BYTES
        })
        .count();
    if within < attributes.len() {
        attributes.truncate(within);
        adjustments
            .push(format!("attributes cut to {within} ({MAX_ATTRIBUTES} and {MAX_ATTRIBUTE_BYTES} bytes at most)"));
    }
    Ok(Validated {
        value: ScaleDecision {
            desired_runners,
            max_capacity: Some(max_capacity),
            min_runners,
            drain: raw.drain,
            requeue_after_ms,
            reason,
            state: raw.state,
            attributes,
        },
        adjustments,
    })
}

/// Checks a scale-down selection: names must be candidates; busy runners are dropped whatever the policy says;
/// duplicates are removed; at most `surplus` names are kept. Linear in the selection and the candidates.
///
/// # Errors
/// A name that is not a candidate (the policy is confused, so its whole answer is refused).
pub fn selection(raw: Vec<String>, input: &ScaleDownInput) -> Result<Validated<Vec<String>>, String> {
    let mut adjustments = Vec::new();
    let candidates: HashMap<&str, _> = input.candidates.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut seen = HashSet::new();
    let mut chosen = Vec::new();
    for name in raw {
        let Some(candidate) = candidates.get(name.as_str()) else {
            return Err(format!("selected {name:?}, which is not a candidate"));
        };
        if !seen.insert(name.clone()) {
            continue;
        }
        if candidate.is_busy() {
            adjustments.push(format!("{name} is busy and stays"));
            continue;
        }
        chosen.push(name);
    }
    if chosen.len() > input.surplus as usize {
        adjustments.push(format!("selection cut from {} to the surplus of {}", chosen.len(), input.surplus));
        chosen.truncate(input.surplus as usize);
    }
    Ok(Validated { value: chosen, adjustments })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Bounds, RunnerInfo, RunnerPhase};

    fn input(min: u32, max: u32) -> ScaleInput {
        ScaleInput { bounds: Bounds { min_runners: min, max_runners: max }, ..Default::default() }
    }

    #[test]
    fn out_of_bounds_decisions_are_clamped_and_noted() {
        let raw = ScaleDecision {
            desired_runners: 0,
            min_runners: 50,
            max_capacity: Some(99),
            requeue_after_ms: Some(1),
            ..Default::default()
        };
        let v = decision(raw, &input(1, 10), &PolicyLimits::default()).unwrap();
        assert_eq!(v.value.min_runners, 10);
        assert_eq!(v.value.desired_runners, 10, "desired is raised to the policy's floor");
        assert_eq!(v.value.max_capacity, Some(10));
        assert_eq!(v.value.requeue_after_ms, Some(1000));
        assert_eq!(v.adjustments.len(), 4, "{:?}", v.adjustments);
    }

    #[test]
    fn sane_decisions_pass_untouched() {
        let raw = ScaleDecision { desired_runners: 3, min_runners: 1, ..Default::default() };
        let v = decision(raw, &input(1, 10), &PolicyLimits::default()).unwrap();
        assert_eq!((v.value.desired_runners, v.value.max_capacity), (3, Some(10)));
        assert!(v.adjustments.is_empty());
    }

    #[test]
    fn attributes_are_bounded_in_count_and_bytes() {
        let limits = PolicyLimits::default();
        let many = ScaleDecision {
            attributes: (0..100).map(|i| (format!("k{i}"), "v".into())).collect(),
            ..Default::default()
        };
        assert_eq!(decision(many, &input(0, 5), &limits).unwrap().value.attributes.len(), MAX_ATTRIBUTES);
        let large = ScaleDecision {
            attributes: (0..16).map(|i| (format!("k{i}"), "v".repeat(1 << 10))).collect(),
            ..Default::default()
        };
        let kept = decision(large, &input(0, 5), &limits).unwrap();
        let bytes: usize = kept.value.attributes.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(bytes <= MAX_ATTRIBUTE_BYTES && kept.value.attributes.len() == 7, "{bytes} bytes");
        assert!(kept.adjustments.iter().any(|a| a.contains("attributes cut")));
    }

    #[test]
    fn huge_state_is_refused_and_huge_reason_truncated() {
        let limits = PolicyLimits::default();
        let big_state = ScaleDecision { state: vec![0; 4097], ..Default::default() };
        assert!(decision(big_state, &input(0, 5), &limits).unwrap_err().contains("state"));
        let long = ScaleDecision { reason: "é".repeat(1000), ..Default::default() };
        let v = decision(long, &input(0, 5), &limits).unwrap();
        assert_eq!(v.value.reason.chars().count(), MAX_REASON_CHARS);
    }

    #[test]
    fn selections_never_include_busy_runners_or_strangers() {
        let input = ScaleDownInput {
            surplus: 1,
            candidates: vec![
                RunnerInfo::busy("busy", RunnerPhase::Running, 1),
                RunnerInfo::idle("a", RunnerPhase::Running, 1),
                RunnerInfo::idle("b", RunnerPhase::Running, 1),
            ],
            ..Default::default()
        };
        let v = selection(vec!["busy".into(), "a".into(), "a".into(), "b".into()], &input).unwrap();
        assert_eq!(v.value, ["a"]);
        assert_eq!(v.adjustments.len(), 2, "{:?}", v.adjustments);
        assert!(selection(vec!["ghost".into()], &input).unwrap_err().contains("ghost"));
    }
}
