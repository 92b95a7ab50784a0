//! Parsing API paths: `/api/v1/...` and `/apis/{group}/{version}/...`, namespaced or cluster-scoped.

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/api`, `/apis`, `/apis/{group}`: version and group discovery.
    Discovery(Vec<String>),
    /// `/api/v1`, `/apis/{group}/{version}`: the resource list of a group version.
    Resources {
        /// Group ("" for core).
        group: String,
        /// Version.
        version: String,
    },
    /// A collection, an object or an object's subresource.
    Object(ObjectPath),
}

/// A resource path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPath {
    /// Group ("" for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Namespace from the path (None for cluster-wide requests).
    pub namespace: Option<String>,
    /// Plural.
    pub plural: String,
    /// Object name.
    pub name: Option<String>,
    /// Subresource (`status`).
    pub subresource: Option<String>,
}

/// Parses a path; None when it is not an API path.
pub fn parse(path: &str) -> Option<Target> {
    let segments: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
    let (group, version, rest) = match segments.first().map(String::as_str) {
        Some("api") if segments.len() == 1 => return Some(Target::Discovery(segments)),
        Some("api") => (String::new(), segments[1].clone(), &segments[2..]),
        Some("apis") if segments.len() <= 2 => return Some(Target::Discovery(segments)),
        Some("apis") => (segments[1].clone(), segments[2].clone(), &segments[3..]),
        _ => return None,
    };
    let object = |namespace: Option<String>, rest: &[String]| -> Option<Target> {
        Some(Target::Object(ObjectPath {
            group: group.clone(),
            version: version.clone(),
            namespace,
            plural: rest.first()?.clone(),
            name: rest.get(1).cloned(),
            subresource: rest.get(2).cloned(),
        }))
    };
    match rest {
        [] => Some(Target::Resources { group: group.clone(), version: version.clone() }),
        [ns_word, ns, tail @ ..] if ns_word == "namespaces" && !tail.is_empty() && tail[0] != "status" => {
            if tail.len() > 3 {
                return None;
            }
            object(Some(ns.clone()), tail)
        }
        _ if rest.len() <= 3 => object(None, rest),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(path: &str) -> ObjectPath {
        match parse(path) {
            Some(Target::Object(o)) => o,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths_parse_into_namespaced_and_cluster_targets() {
        let o = object("/apis/actions.github.com/v1alpha1/namespaces/ci/ephemeralrunners/r1/status");
        assert_eq!(
            (o.group.as_str(), o.namespace.as_deref(), o.plural.as_str(), o.name.as_deref(), o.subresource.as_deref()),
            ("actions.github.com", Some("ci"), "ephemeralrunners", Some("r1"), Some("status"))
        );
        let o = object("/api/v1/namespaces/ci");
        assert_eq!((o.plural.as_str(), o.name.as_deref(), o.namespace), ("namespaces", Some("ci"), None));
        let o = object("/api/v1/namespaces/ci/status");
        assert_eq!((o.name.as_deref(), o.subresource.as_deref()), (Some("ci"), Some("status")));
        let o = object("/api/v1/pods");
        assert_eq!((o.plural.as_str(), o.namespace, o.name), ("pods", None, None));
        assert_eq!(parse("/apis/g/v1"), Some(Target::Resources { group: "g".into(), version: "v1".into() }));
        assert!(matches!(parse("/apis"), Some(Target::Discovery(_))));
        assert_eq!(parse("/healthz"), None);
    }
}
