//! On-disk precompile cache: compiled components keyed by the policy's sha256 and the engine's compatibility hash.
//!
//! Only this host writes the directory (created 0700). Each artifact ends with the sha256 of what precedes it,
//! so a truncated or altered file is ignored and recompiled instead of being deserialised.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The cache directory.
pub(crate) struct PrecompileCache {
    dir: PathBuf,
    engine_hash: String,
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

impl PrecompileCache {
    /// Opens (creating) the cache directory.
    pub(crate) fn open(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = hex::encode(&hasher.0.finalize()[..8]);
        Ok(PrecompileCache { dir: dir.to_path_buf(), engine_hash })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_hash))
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
        // hash (it is in the file name), written by this host into its private directory, and its integrity
        // trailer matches, so it is exactly what we wrote.
        unsafe { Component::deserialize(engine, artifact) }.ok()
    }

    /// Stores a compiled component; failures only cost a recompile later.
    pub(crate) fn store(&self, sha256: &str, component: &Component) {
        let Ok(mut artifact) = component.serialize() else { return };
        let trailer = Sha256::digest(&artifact);
        artifact.extend_from_slice(&trailer);
        let path = self.path(sha256);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if let Err(e) = std::fs::write(&tmp, &artifact).and_then(|()| std::fs::rename(&tmp, &path)) {
            tracing::warn!(error = %e, "cannot write the policy precompile cache");
        }
    }
}
