//! Where the real binaries are: the cache `scripts/provision-real-k8s.sh` fills.

use std::path::PathBuf;

use crate::Error;

/// The directory holding `etcd`, `kube-apiserver`, `kube-controller-manager`, `helm3`, `helm4` and `kubectl`:
/// `$GHA_REAL_K8S_BIN`, else the provisioning script's default cache.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("GHA_REAL_K8S_BIN") {
        return dir.into();
    }
    let cache = std::env::var_os("GHA_REAL_K8S_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
        base.join("gha-autoscaler-real-k8s")
    });
    cache.join("bin")
}

/// The path of the provisioned binary `name`.
///
/// # Errors
/// [`Error::NotProvisioned`] when it is not there.
pub fn tool(name: &str) -> Result<PathBuf, Error> {
    let path = bin_dir().join(name);
    if path.is_file() { Ok(path) } else { Err(Error::NotProvisioned(path)) }
}

/// The two helm major versions the charts are tested with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Helm {
    /// helm 3.17.
    V3,
    /// helm 4.1.
    V4,
}

impl Helm {
    /// Both versions.
    pub const ALL: [Helm; 2] = [Helm::V3, Helm::V4];

    /// The binary.
    ///
    /// # Errors
    /// [`Error::NotProvisioned`] when it is not there.
    pub fn binary(self) -> Result<PathBuf, Error> {
        tool(match self {
            Helm::V3 => "helm3",
            Helm::V4 => "helm4",
        })
    }
}
