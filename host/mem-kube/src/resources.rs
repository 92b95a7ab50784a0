//! The resource types the server knows: built-in kinds and CRDs installed at run time.

use serde_json::Value;

/// A resource type (one version of one resource).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for core.
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural name used in paths.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Whether `/status` is a subresource (status then only changes through it).
    pub status_subresource: bool,
    /// kubectl short names (`cm`, `po`, ...).
    pub short_names: Vec<String>,
    /// A custom resource's `openAPIV3Schema` (objects are pruned and validated against it on every write).
    pub schema: Option<std::sync::Arc<Value>>,
}

impl ResourceType {
    fn builtin(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool, status: bool) -> Self {
        let short = match plural {
            "namespaces" => "ns",
            "pods" => "po",
            "configmaps" => "cm",
            "serviceaccounts" => "sa",
            "services" => "svc",
            "events" if group.is_empty() => "ev",
            "customresourcedefinitions" => "crd",
            _ => "",
        };
        ResourceType {
            short_names: if short.is_empty() { Vec::new() } else { vec![short.to_string()] },
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: kind.to_ascii_lowercase(),
            kind: kind.into(),
            namespaced,
            status_subresource: status,
            schema: None,
        }
    }

    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// Identity across versions: (group, plural).
    pub fn key(&self) -> (String, String) {
        (self.group.clone(), self.plural.clone())
    }
}

/// The built-in kinds controllers and the demo use.
pub fn builtins() -> Vec<ResourceType> {
    vec![
        ResourceType::builtin("", "v1", "namespaces", "Namespace", false, true),
        ResourceType::builtin("", "v1", "pods", "Pod", true, true),
        ResourceType::builtin("", "v1", "secrets", "Secret", true, false),
        ResourceType::builtin("", "v1", "configmaps", "ConfigMap", true, false),
        ResourceType::builtin("", "v1", "serviceaccounts", "ServiceAccount", true, false),
        ResourceType::builtin("", "v1", "events", "Event", true, false),
        ResourceType::builtin("", "v1", "services", "Service", true, true),
        ResourceType::builtin("events.k8s.io", "v1", "events", "Event", true, false),
        ResourceType::builtin("rbac.authorization.k8s.io", "v1", "roles", "Role", true, false),
        ResourceType::builtin("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true, false),
        ResourceType::builtin("coordination.k8s.io", "v1", "leases", "Lease", true, false),
        ResourceType::builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            true,
        ),
    ]
}

/// The resource types a CustomResourceDefinition object declares (one per served version).
pub fn from_crd(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let names = &spec["names"];
    let (Some(plural), Some(kind)) = (names["plural"].as_str(), names["kind"].as_str()) else { return Vec::new() };
    let singular = names["singular"].as_str().map_or_else(|| kind.to_ascii_lowercase(), str::to_string);
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let short_names: Vec<String> =
        names["shortNames"].as_array().into_iter().flatten().filter_map(|n| n.as_str().map(str::to_string)).collect();
    spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"].as_bool().unwrap_or(true))
        .filter_map(|v| {
            Some(ResourceType {
                group: group.into(),
                version: v["name"].as_str()?.into(),
                plural: plural.into(),
                singular: singular.clone(),
                kind: kind.into(),
                namespaced,
                status_subresource: v["subresources"]["status"].is_object(),
                short_names: short_names.clone(),
                schema: v["schema"]["openAPIV3Schema"]
                    .is_object()
                    .then(|| v["schema"]["openAPIV3Schema"].clone().into()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crds_declare_one_type_per_served_version() {
        let crd = serde_json::json!({"spec": {
        "group": "actions.github.com", "scope": "Namespaced",
        "names": {"plural": "ephemeralrunners", "kind": "EphemeralRunner"},
        "versions": [
            {"name": "v1alpha1", "served": true, "subresources": {"status": {}}},
            {"name": "v1beta1", "served": false}
        ]}});
        let types = from_crd(&crd);
        assert_eq!(types.len(), 1);
        assert_eq!(types[0].api_version(), "actions.github.com/v1alpha1");
        assert!(types[0].status_subresource && types[0].namespaced);
        assert!(from_crd(&serde_json::json!({})).is_empty());
    }
}
