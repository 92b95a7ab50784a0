//! Precompiled components on disk, keyed by the policy's sha256 and the engine's compatibility hash: the
//! process's own cache (written by this host only, created 0700) and read-only directories of artifacts a trusted
//! producer wrote (the controller stores its compiled policy in a Secret that listener pods mount, so listeners
//! never run the compiler).
//!
//! Each artifact ends with the sha256 of what precedes it, so a truncated or altered file is ignored and the
//! policy recompiled instead of being deserialised.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of precompiled components.
pub(crate) struct PrecompileCache {
    dir: PathBuf,
    engine_hash: String,
    writable: bool,
}

/// Feeds `Hash` output into sha256 so the engine's compatibility hash is stable across processes.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The engine's compatibility hash, short hex: artifacts of another wasmtime version or configuration have
/// another name and are never deserialised.
pub(crate) fn engine_hash(engine: &Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..8])
}

/// The file name of a policy's artifact for an engine.
pub(crate) fn artifact_name(sha256: &str, engine_hash: &str) -> String {
    format!("{sha256}-{engine_hash}.cwasm")
}

/// A compiled component serialised, with its integrity trailer.
pub(crate) fn artifact(component: &Component) -> Option<Vec<u8>> {
    let mut artifact = component.serialize().ok()?;
    let trailer = Sha256::digest(&artifact);
    artifact.extend_from_slice(&trailer);
    Some(artifact)
}

impl PrecompileCache {
    /// Opens (creating, private to this user) the process's own cache directory.
    pub(crate) fn open(dir: &Path, engine_hash: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(PrecompileCache { dir: dir.to_path_buf(), engine_hash: engine_hash.into(), writable: true })
    }

    /// A read-only directory of artifacts written by a producer as trusted as this binary (they are native code).
    pub(crate) fn read_only(dir: &Path, engine_hash: &str) -> Self {
        PrecompileCache { dir: dir.to_path_buf(), engine_hash: engine_hash.into(), writable: false }
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(artifact_name(sha256, &self.engine_hash))
    }

    /// A previously stored component, if present and intact.
    pub(crate) fn load(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let bytes = std::fs::read(self.path(sha256)).ok()?;
        let (artifact, trailer) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
        if Sha256::digest(artifact).as_slice() != trailer {
            tracing::warn!(sha256, "ignoring a corrupt precompiled policy");
            return None;
        }
        // SAFETY: the artifact was produced by `Component::serialize` of an engine with the same compatibility
        // hash (it is in the file name), either by this host into its private directory or by a producer the
        // operator trusts like this binary (the read-only directory), and its integrity trailer matches.
        unsafe { Component::deserialize(engine, artifact) }.ok()
    }

    /// Stores a compiled component (writable caches only); failures only cost a recompile later.
    pub(crate) fn store(&self, sha256: &str, component: &Component) {
        if !self.writable {
            return;
        }
        let Some(artifact) = artifact(component) else { return };
        let path = self.path(sha256);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if let Err(e) = std::fs::write(&tmp, &artifact).and_then(|()| std::fs::rename(&tmp, &path)) {
            tracing::warn!(error = %e, "cannot write the policy precompile cache");
        }
    }
}
