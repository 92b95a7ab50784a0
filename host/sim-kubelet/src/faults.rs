//! Pod faults the kubelet injects on demand.

/// What goes wrong with a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodFault {
    /// The image never pulls: the pod stays Pending with `ErrImagePull` / `ImagePullBackOff`.
    ImagePull,
    /// The container is OOM-killed while running (exit 137, reason `OOMKilled`).
    OomKilled,
    /// The container runs but never becomes ready, and does nothing.
    NeverReady,
    /// The pod is evicted while running (phase Failed, reason `Evicted`).
    Evicted,
    /// The node goes away: the pod is stuck Running with no progress, then reported as Failed `NodeLost`.
    NodeLost,
    /// The container exits with this code after doing its work.
    ExitCode(i32),
}

impl PodFault {
    /// Whether the runner inside still gets to run its job.
    pub fn runs_job(self) -> bool {
        matches!(self, PodFault::ExitCode(_))
    }
}
