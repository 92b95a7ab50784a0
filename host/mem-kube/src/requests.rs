//! Counts of the requests the server answered, by client (`User-Agent`), verb and resource — the way an API
//! server's audit log or `apiserver_request_total` would show them, so benchmarks can count what a controller
//! asks per object.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, Method};

/// One kind of request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestKind {
    /// The client's `User-Agent` (empty when it sent none).
    pub agent: String,
    /// The Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: &'static str,
    /// The resource plural, with `/subresource` when one was addressed (`ephemeralrunners/status`).
    pub resource: String,
}

/// Request counts by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts(pub BTreeMap<RequestKind, u64>);

impl RequestCounts {
    /// Requests whose agent starts with `agent`.
    pub fn by(&self, agent: &str) -> RequestCounts {
        RequestCounts(self.0.iter().filter(|(k, _)| k.agent.starts_with(agent)).map(|(k, v)| (k.clone(), *v)).collect())
    }

    /// Requests other than watches (a watch is one long-lived request, not work per object).
    pub fn without_watches(&self) -> RequestCounts {
        RequestCounts(self.0.iter().filter(|(k, _)| k.verb != "watch").map(|(k, v)| (k.clone(), *v)).collect())
    }

    /// The number of requests.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Counts since `earlier` (a snapshot of the same server).
    pub fn since(&self, earlier: &RequestCounts) -> RequestCounts {
        let delta = self.0.iter().map(|(k, v)| (k.clone(), v - earlier.0.get(k).copied().unwrap_or(0)));
        RequestCounts(delta.filter(|(_, v)| *v > 0).collect())
    }

    /// `verb resource` → count, the agent left out.
    pub fn by_verb_and_resource(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (kind, count) in &self.0 {
            *out.entry(format!("{} {}", kind.verb, kind.resource)).or_default() += count;
        }
        out
    }

    pub(crate) fn record(&mut self, kind: RequestKind) {
        *self.0.entry(kind).or_default() += 1;
    }
}

/// The verb of a request on a collection (`name` None) or an object.
pub(crate) fn verb(method: &Method, named: bool, watch: bool) -> &'static str {
    match (method.as_str(), named) {
        ("GET", _) if watch => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "other",
    }
}

/// The `User-Agent` of a request.
pub(crate) fn agent(headers: &HeaderMap) -> String {
    headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}
