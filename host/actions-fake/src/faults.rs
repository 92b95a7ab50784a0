//! Faults on demand: the next N requests matching a path (and method) fail with a status or are delayed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A fault rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    /// Requests whose path (with query) contains this.
    pub path_contains: String,
    /// Only this method (any when unset).
    #[serde(default)]
    pub method: Option<String>,
    /// How many requests it hits.
    pub count: u32,
    /// Answer with this status instead of serving.
    #[serde(default)]
    pub status: Option<u16>,
    /// Wait this long first.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// `Retry-After` seconds to send with the status.
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
    /// Serve the request first, then answer with `status`: the service acted, the client never saw it (a
    /// response lost on the way back).
    #[serde(default)]
    pub after_acting: bool,
}

/// What to do with one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Injection {
    pub(crate) delay: Option<Duration>,
    pub(crate) status: Option<u16>,
    pub(crate) retry_after_secs: Option<u64>,
    pub(crate) after_acting: bool,
}

/// Takes one hit from the first matching rule; spent rules are removed.
pub(crate) fn take(faults: &mut Vec<Fault>, method: &str, path: &str) -> Option<Injection> {
    let index = faults.iter().position(|f| {
        path.contains(&f.path_contains) && f.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
    })?;
    let fault = &mut faults[index];
    fault.count = fault.count.saturating_sub(1);
    let injection = Injection {
        delay: fault.delay_ms.map(Duration::from_millis),
        status: fault.status,
        retry_after_secs: fault.retry_after_secs,
        after_acting: fault.after_acting,
    };
    if fault.count == 0 {
        faults.remove(index);
    }
    Some(injection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_hit_their_count_then_vanish() {
        let mut faults = vec![Fault {
            path_contains: "/sessions".into(),
            method: Some("POST".into()),
            count: 2,
            status: Some(503),
            delay_ms: None,
            retry_after_secs: None,
            after_acting: false,
        }];
        assert!(take(&mut faults, "GET", "/x/sessions").is_none());
        assert_eq!(take(&mut faults, "post", "/x/sessions").unwrap().status, Some(503));
        assert!(take(&mut faults, "POST", "/x/sessions").is_some());
        assert!(take(&mut faults, "POST", "/x/sessions").is_none());
        assert!(faults.is_empty());
    }
}
