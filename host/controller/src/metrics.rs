//! The controller's gauges (ARC's `gha_controller_*`), labelled by scale set.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of every controller gauge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ScaleSetLabels {
    /// ARS name.
    pub name: String,
    /// ARS namespace.
    pub namespace: String,
    /// From the config URL.
    pub repository: String,
    /// From the config URL.
    pub organization: String,
    /// From the config URL.
    pub enterprise: String,
}

/// `gha_controller_{pending,running,failed}_ephemeral_runners` and `gha_controller_running_listeners`.
#[derive(Debug, Default)]
pub struct ControllerMetrics {
    pending: Family<ScaleSetLabels, Gauge>,
    running: Family<ScaleSetLabels, Gauge>,
    failed: Family<ScaleSetLabels, Gauge>,
    listeners: Family<ScaleSetLabels, Gauge>,
}

impl ControllerMetrics {
    /// Registers the gauges.
    pub fn register(&self, registry: &mut Registry) {
        let prefixed = registry.sub_registry_with_prefix("gha_controller");
        prefixed.register("pending_ephemeral_runners", "Pending ephemeral runners.", self.pending.clone());
        prefixed.register("running_ephemeral_runners", "Running ephemeral runners.", self.running.clone());
        prefixed.register("failed_ephemeral_runners", "Failed ephemeral runners.", self.failed.clone());
        prefixed.register("running_listeners", "Listeners whose container runs.", self.listeners.clone());
    }

    /// Publishes an EphemeralRunnerSet's counts.
    pub fn runners(&self, labels: &ScaleSetLabels, pending: u32, running: u32, failed: u32) {
        self.pending.get_or_create(labels).set(i64::from(pending));
        self.running.get_or_create(labels).set(i64::from(running));
        self.failed.get_or_create(labels).set(i64::from(failed));
    }

    /// Publishes whether a scale set's listener runs.
    pub fn listener(&self, labels: &ScaleSetLabels, running: bool) {
        self.listeners.get_or_create(labels).set(i64::from(running));
    }

    /// Drops a deleted listener's series.
    pub fn forget_listener(&self, labels: &ScaleSetLabels) {
        self.listeners.remove(labels);
    }

    /// Drops a deleted scale set's series.
    pub fn forget(&self, labels: &ScaleSetLabels) {
        for family in [&self.pending, &self.running, &self.failed] {
            family.remove(labels);
        }
    }
}

impl ScaleSetLabels {
    /// A listener's: its own name and namespace (as ARC labels `running_listeners`) and its scale set's scope.
    pub fn of_listener(listener: &gha_crds::AutoscalingListener) -> Self {
        use kube::ResourceExt;
        ScaleSetLabels {
            name: listener.name_any(),
            namespace: listener.namespace().unwrap_or_default(),
            ..ScaleSetLabels::from_labels(listener.labels())
        }
    }

    /// From the labels every object of a scale set carries.
    pub fn from_labels(labels: &std::collections::BTreeMap<String, String>) -> Self {
        use crate::labels::label;
        let get = |key: &str| labels.get(key).cloned().unwrap_or_default();
        ScaleSetLabels {
            name: get(label::SCALE_SET_NAME),
            namespace: get(label::SCALE_SET_NAMESPACE),
            repository: get(label::REPOSITORY),
            organization: get(label::ORGANIZATION),
            enterprise: get(label::ENTERPRISE),
        }
    }
}
