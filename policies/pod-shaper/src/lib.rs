//! `pod-shaper`: shapes runner pods from config and protects busy runners from node consolidation.
//!
//! - `default` and `rules` give resources, nodeSelector, tolerations, labels and annotations; a rule applies when
//!   all of its `when` attributes equal the scale set's attributes (e.g. `{"label:gpu": "true"}`). Later rules win.
//! - While a job runs, the pod carries `karpenter.sh/do-not-disrupt: "true"` (and the cluster-autoscaler
//!   equivalent); it is set back to `"false"` when the job completes.
//!
//! ```json
//! {"container": "runner",
//!  "default": {"resources": {"requests": {"cpu": "2", "memory": "4Gi"}}},
//!  "rules": [{"when": {"label:gpu": "true"}, "nodeSelector": {"gpu": "nvidia"},
//!             "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}]}
//! ```

use std::collections::BTreeMap;

use gha_autoscaler_policy::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Karpenter's "leave this pod alone" annotation.
pub const DO_NOT_DISRUPT: &str = "karpenter.sh/do-not-disrupt";
/// The cluster autoscaler's equivalent.
pub const SAFE_TO_EVICT: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict";

/// A pod shape; every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Shape {
    /// Resources of the runner container (a ResourceRequirements object).
    pub resources: Option<Value>,
    /// Pod nodeSelector entries.
    pub node_selector: BTreeMap<String, String>,
    /// Pod tolerations (Toleration objects).
    pub tolerations: Vec<Value>,
    /// Pod labels.
    pub labels: BTreeMap<String, String>,
    /// Pod annotations.
    pub annotations: BTreeMap<String, String>,
}

impl Shape {
    fn overlay(&mut self, other: &Shape) {
        if other.resources.is_some() {
            self.resources = other.resources.clone();
        }
        self.node_selector.extend(other.node_selector.clone());
        self.tolerations.extend(other.tolerations.iter().cloned());
        self.labels.extend(other.labels.clone());
        self.annotations.extend(other.annotations.clone());
    }

    fn is_empty(&self) -> bool {
        self.resources.is_none()
            && self.node_selector.is_empty()
            && self.tolerations.is_empty()
            && self.labels.is_empty()
            && self.annotations.is_empty()
    }
}

/// A shape applied when every `when` attribute matches the scale set's attributes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// Attribute key/value pairs that must all match.
    pub when: BTreeMap<String, String>,
    /// The shape to apply.
    #[serde(flatten)]
    pub shape: Shape,
}

fn default_container() -> String {
    "runner".into()
}

fn yes() -> bool {
    true
}

/// pod-shaper settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Name of the runner container.
    #[serde(default = "default_container")]
    pub container: String,
    /// Shape for every scale set.
    #[serde(default)]
    pub default: Shape,
    /// Shapes for matching scale sets.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Annotate busy pods so node consolidation leaves them alone.
    #[serde(default = "yes")]
    pub do_not_disrupt: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config { container: default_container(), default: Shape::default(), rules: Vec::new(), do_not_disrupt: true }
    }
}

/// The pod-shaper policy, with the shape for its scale set worked out at configure time.
#[derive(Debug, Clone)]
pub struct PodShaper {
    container: String,
    shape: Shape,
    do_not_disrupt: bool,
}

impl Policy for PodShaper {
    type Config = Option<Config>;
    const NAME: &'static str = "pod-shaper";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn configure(scale_set: &ScaleSetRef, config: Option<Config>) -> Result<Self, PolicyError> {
        let config = config.unwrap_or_default();
        if config.container.is_empty() {
            return Err(PolicyError::InvalidConfig("container must not be empty".into()));
        }
        if let Some(r) = config.default.resources.as_ref().filter(|r| !r.is_object()) {
            return Err(PolicyError::InvalidConfig(format!("default.resources must be an object, got {r}")));
        }
        let mut shape = config.default.clone();
        for rule in &config.rules {
            let matches = rule.when.iter().all(|(k, v)| attribute(&scale_set.attributes, k) == Some(v.as_str()));
            if matches {
                shape.overlay(&rule.shape);
            }
        }
        Ok(PodShaper { container: config.container, shape, do_not_disrupt: config.do_not_disrupt })
    }
}

impl PodMutator for PodShaper {
    fn mutate_runner_pod(&mut self, _runner: &str, _template: &Value) -> Result<Option<Value>, PolicyError> {
        if self.shape.is_empty() {
            return Ok(None);
        }
        let mut spec = Map::new();
        if let Some(resources) = &self.shape.resources {
            spec.insert("containers".into(), json!([{ "name": self.container, "resources": resources }]));
        }
        if !self.shape.node_selector.is_empty() {
            spec.insert("nodeSelector".into(), json!(self.shape.node_selector));
        }
        if !self.shape.tolerations.is_empty() {
            spec.insert("tolerations".into(), Value::Array(self.shape.tolerations.clone()));
        }
        let mut metadata = Map::new();
        if !self.shape.labels.is_empty() {
            metadata.insert("labels".into(), json!(self.shape.labels));
        }
        if !self.shape.annotations.is_empty() {
            metadata.insert("annotations".into(), json!(self.shape.annotations));
        }
        let mut patch = Map::new();
        if !metadata.is_empty() {
            patch.insert("metadata".into(), Value::Object(metadata));
        }
        if !spec.is_empty() {
            patch.insert("spec".into(), Value::Object(spec));
        }
        Ok(Some(Value::Object(patch)))
    }

    fn on_job_event(&mut self, event: &JobEvent) -> Result<PodMetadata, PolicyError> {
        if !self.do_not_disrupt {
            return Ok(PodMetadata::default());
        }
        let busy = event.phase == JobPhase::Started;
        Ok(PodMetadata {
            labels: Vec::new(),
            annotations: vec![(DO_NOT_DISRUPT.into(), busy.to_string()), (SAFE_TO_EVICT.into(), (!busy).to_string())],
        })
    }
}

#[cfg(target_arch = "wasm32")]
gha_autoscaler_policy::export_policy!(PodShaper: PodMutator);

#[cfg(test)]
mod tests {
    use super::*;

    fn shaper(json: &str, attributes: &[(&str, &str)]) -> Result<PodShaper, PolicyError> {
        let scale_set = ScaleSetRef {
            attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        };
        PodShaper::configure(&scale_set, gha_autoscaler_policy::parse_config(json)?)
    }

    const CONFIG: &str = r#"{
        "default": {"resources": {"requests": {"cpu": "1"}}},
        "rules": [{"when": {"label:gpu": "true"}, "nodeSelector": {"gpu": "nvidia"},
                   "resources": {"limits": {"nvidia.com/gpu": "1"}},
                   "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}]}"#;

    #[test]
    fn rules_apply_by_scale_set_attribute() {
        let patch = shaper(CONFIG, &[("label:gpu", "true")]).unwrap().mutate_runner_pod("r", &json!({})).unwrap();
        assert_eq!(
            patch.unwrap(),
            json!({"spec": {
                "containers": [{"name": "runner", "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
                "nodeSelector": {"gpu": "nvidia"},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}})
        );
        let plain = shaper(CONFIG, &[]).unwrap().mutate_runner_pod("r", &json!({})).unwrap().unwrap();
        assert_eq!(
            plain,
            json!({"spec": {"containers": [{"name": "runner", "resources": {"requests": {"cpu": "1"}}}]}})
        );
    }

    #[test]
    fn no_shape_means_no_patch() {
        assert_eq!(shaper("", &[]).unwrap().mutate_runner_pod("r", &json!({})).unwrap(), None);
    }

    #[test]
    fn busy_pods_are_protected_from_disruption() {
        let mut p = shaper("", &[]).unwrap();
        let started = p.on_job_event(&JobEvent { phase: JobPhase::Started, ..Default::default() }).unwrap();
        assert_eq!(attribute(&started.annotations, DO_NOT_DISRUPT), Some("true"));
        let done = p.on_job_event(&JobEvent { phase: JobPhase::Completed, ..Default::default() }).unwrap();
        assert_eq!(attribute(&done.annotations, DO_NOT_DISRUPT), Some("false"));
        let mut off = shaper(r#"{"doNotDisrupt": false}"#, &[]).unwrap();
        assert!(off.on_job_event(&JobEvent::default()).unwrap().annotations.is_empty());
    }

    #[test]
    fn bad_config_is_rejected() {
        assert!(shaper(r#"{"default": {"resources": 3}}"#, &[]).is_err());
        assert!(shaper(r#"{"default": {"cpu": 3}}"#, &[]).is_err());
        assert!(shaper(r#"{"container": ""}"#, &[]).is_err());
    }
}
