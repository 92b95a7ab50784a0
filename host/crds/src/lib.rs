//! ARC's four CRDs (`actions.github.com/v1alpha1`) as Rust types with ARC's field names and print columns, so
//! users migrate by changing the chart, plus gha-autoscaler's optional `spec.policy`.
#![deny(missing_docs)]

mod autoscaling_listener;
mod autoscaling_runner_set;
mod common;
mod controller_gen;
mod ephemeral_runner;
mod ephemeral_runner_set;
mod policy;

pub use autoscaling_listener::{AutoscalingListener, AutoscalingListenerSpec, AutoscalingListenerStatus};
pub use autoscaling_runner_set::{AutoscalingRunnerSet, AutoscalingRunnerSetSpec, AutoscalingRunnerSetStatus};
pub use common::*;
pub use ephemeral_runner::{EphemeralRunner, EphemeralRunnerSpec, EphemeralRunnerStatus};
pub use ephemeral_runner_set::{EphemeralRunnerSet, EphemeralRunnerSetSpec, EphemeralRunnerSetStatus};
pub use policy::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The four CRDs, shaped as controller-gen shapes ARC's (see `controller_gen`).
pub fn all() -> Vec<CustomResourceDefinition> {
    [AutoscalingRunnerSet::crd(), EphemeralRunnerSet::crd(), EphemeralRunner::crd(), AutoscalingListener::crd()]
        .into_iter()
        .map(controller_gen::shaped)
        .collect()
}

/// The CRDs as one multi-document YAML stream (what `gha-autoscaler crds` prints).
pub fn yaml() -> String {
    files().into_iter().map(|(_, text)| text).collect::<Vec<_>>().join("---\n")
}

/// Each CRD as a file name (`<group>_<plural>.yaml`, as controller-gen names them) and its YAML: the files of
/// the controller chart's `crds/` directory.
pub fn files() -> Vec<(String, String)> {
    all()
        .iter()
        .map(|crd| {
            let name = format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural);
            (name, serde_yaml::to_string(crd).unwrap_or_default())
        })
        .collect()
}
