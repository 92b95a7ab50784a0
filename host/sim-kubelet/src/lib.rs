//! A simulated kubelet for the in-memory Kubernetes API: it binds pods to its node, moves them Pending → Running
//! → Succeeded/Failed with container statuses after configurable delays, and plays the GitHub Actions runner in
//! runner pods (reads the JIT config from the pod's env or its Secret, registers with the Actions service's
//! simulated-runner API, takes its job, works for the job's duration, reports the result, exits).
//!
//! Faults on demand, by pod name: image-pull failure, OOM kill, never ready, eviction, node loss, a chosen exit
//! code.
#![deny(missing_docs)]

mod faults;
mod kubelet;
mod process;
mod runner;

pub use faults::PodFault;
pub use kubelet::{KubeletOptions, ServiceAccountAccess, SimulatedKubelet};
pub use runner::RunnerOutcome;
