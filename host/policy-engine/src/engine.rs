//! One wasmtime engine per process: configuration, the epoch ticker, compilation with caching, and preparing
//! components for cheap instantiation.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Config, Engine};

use crate::bindings::{current, v0_1};
use crate::cache::{self, PrecompileCache};
use crate::contract::Indices;
use crate::error::{Error, Result};
use crate::host_state::HostState;
use crate::manifest::{PolicyManifest, inspect};
use crate::metrics::PolicyMetrics;
use crate::source::{PolicyBytes, PolicySource};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Where compiled policies are cached across restarts (an `emptyDir` in Kubernetes); None = memory only.
    pub cache_dir: Option<PathBuf>,
    /// A read-only directory of precompiled policies from a producer trusted like this binary (the controller,
    /// through a Secret listener pods mount): used instead of compiling. Artifacts of another engine build are
    /// ignored.
    pub precompiled_dir: Option<PathBuf>,
    /// Epoch tick: the granularity of call deadlines.
    pub epoch_tick: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { cache_dir: None, precompiled_dir: None, epoch_tick: Duration::from_millis(10) }
    }
}

impl EngineOptions {
    /// Sets the precompile cache directory.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }
}

/// How a component was obtained, for logs and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompiledFrom {
    /// Already compiled in this process.
    Memory,
    /// Deserialised from the precompile cache.
    Disk,
    /// Compiled now.
    Compiled,
}

/// The process-wide policy engine.
pub struct PolicyEngine {
    engine: Engine,
    /// Our imports only: what every policy gets.
    linker: Linker<HostState>,
    /// Our imports plus deny-all WASI, for policies that opt in (JS and Python toolchains import WASI).
    wasi_linker: Linker<HostState>,
    /// The process's own cache, then the read-only precompiled directory.
    caches: Vec<PrecompileCache>,
    engine_hash: String,
    compiled: Mutex<HashMap<String, Component>>,
    compiling: Mutex<()>,
    prepared: Mutex<HashMap<(String, bool), Arc<PolicyPre>>>,
    metrics: Arc<PolicyMetrics>,
    tick: Duration,
}

/// A compiled, checked and pre-linked policy: instantiating it takes microseconds.
#[derive(Clone)]
pub struct PolicyPre {
    pub(crate) engine: Arc<PolicyEngine>,
    pub(crate) pre: InstancePre<HostState>,
    pub(crate) manifest: PolicyManifest,
    pub(crate) indices: Indices,
}

/// The wasmtime configuration: Cranelift, component model, epoch interruption for deadlines. The
/// `component-model-async` feature stays off (it triples the cost of every call).
fn wasmtime_config() -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    config
}

impl PolicyEngine {
    /// Builds the engine, its linker (host imports only: logging, metrics, at every WIT version the host speaks)
    /// and the epoch ticker thread.
    ///
    /// # Errors
    /// [`Error::Instantiate`] when wasmtime cannot be set up on this machine, [`Error::Source`] when the cache
    /// directory cannot be created.
    pub fn new(options: EngineOptions, metrics: Arc<PolicyMetrics>) -> Result<Arc<Self>> {
        let engine = Engine::new(&wasmtime_config()).map_err(|e| Error::Instantiate(format!("{e:#}")))?;
        let link_error = |e: wasmtime::Error| Error::Instantiate(format!("{e:#}"));
        let mut linker = Linker::new(&engine);
        current::FullPolicy::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(link_error)?;
        v0_1::FullPolicy::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(link_error)?;
        let mut wasi_linker = linker.clone();
        wasmtime_wasi::p2::add_to_linker_sync(&mut wasi_linker).map_err(link_error)?;
        let engine_hash = cache::engine_hash(&engine);
        let mut caches = Vec::new();
        if let Some(dir) = &options.cache_dir {
            caches.push(
                PrecompileCache::open(dir, &engine_hash).map_err(|e| Error::Source {
                    origin: format!("cache {}", dir.display()),
                    message: e.to_string(),
                })?,
            );
        }
        if let Some(dir) = &options.precompiled_dir {
            caches.push(PrecompileCache::read_only(dir, &engine_hash));
        }
        spawn_epoch_ticker(&engine, options.epoch_tick);
        Ok(Arc::new(PolicyEngine {
            engine,
            linker,
            wasi_linker,
            caches,
            engine_hash,
            compiled: Mutex::new(HashMap::new()),
            compiling: Mutex::new(()),
            prepared: Mutex::new(HashMap::new()),
            metrics,
            tick: options.epoch_tick,
        }))
    }

    /// The engine's metrics.
    pub fn metrics(&self) -> &Arc<PolicyMetrics> {
        &self.metrics
    }

    /// Epoch ticks for a deadline: rounded up, plus one because the first tick may come at any moment.
    pub(crate) fn deadline_ticks(&self, deadline_ms: u32) -> u64 {
        let tick_ms = self.tick.as_millis().max(1) as u64;
        u64::from(deadline_ms).div_ceil(tick_ms) + 1
    }

    pub(crate) fn wasmtime(&self) -> &Engine {
        &self.engine
    }

    /// Compiles a component, or takes it from memory or the precompile cache.
    ///
    /// # Errors
    /// [`Error::Compile`] for bytes that are not a valid component (a core module gets advice on converting it).
    pub fn compile(&self, policy: &PolicyBytes) -> Result<(Component, CompiledFrom)> {
        if let Some(component) = self.compiled.lock().unwrap_or_else(|e| e.into_inner()).get(&policy.sha256) {
            return Ok((component.clone(), CompiledFrom::Memory));
        }
        // One compile at a time: scale sets loading the same policy at once wait for the first compile instead
        // of each compiling it (each compile holds megabytes that the allocator keeps afterwards).
        let _compiling = self.compiling.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(component) = self.compiled.lock().unwrap_or_else(|e| e.into_inner()).get(&policy.sha256) {
            return Ok((component.clone(), CompiledFrom::Memory));
        }
        let (component, from) = match self.caches.iter().find_map(|c| c.load(&self.engine, &policy.sha256)) {
            Some(component) => {
                tracing::info!(sha256 = %policy.sha256, origin = %policy.origin, "policy loaded precompiled");
                (component, CompiledFrom::Disk)
            }
            None => {
                check_component_header(&policy.bytes)?;
                let component =
                    Component::new(&self.engine, &policy.bytes).map_err(|e| Error::Compile(format!("{e:#}")))?;
                for cache in &self.caches {
                    cache.store(&policy.sha256, &component);
                }
                (component, CompiledFrom::Compiled)
            }
        };
        self.compiled.lock().unwrap_or_else(|e| e.into_inner()).insert(policy.sha256.clone(), component.clone());
        Ok((component, from))
    }

    /// The file name and bytes of a policy this engine has compiled, in the format of
    /// [`EngineOptions::precompiled_dir`]: what the controller hands to listeners so they need not compile.
    pub fn precompiled(&self, sha256: &str) -> Option<(String, Vec<u8>)> {
        let component = self.compiled.lock().unwrap_or_else(|e| e.into_inner()).get(sha256).cloned()?;
        Some((self.precompiled_name(sha256), cache::artifact(&component)?))
    }

    /// The file name [`PolicyEngine::precompiled`] gives a policy's artifact (it names this engine build).
    pub fn precompiled_name(&self, sha256: &str) -> String {
        cache::artifact_name(sha256, &self.engine_hash)
    }

    /// Compiles, checks imports and exports, pre-links, and reads the policy's `info`. `allow_wasi` links a
    /// deny-all WASI for policies whose toolchain imports it.
    ///
    /// # Errors
    /// Any load error: compile, WIT version, unsupported import, missing export, instantiation.
    pub fn prepare(self: &Arc<Self>, policy: &PolicyBytes, allow_wasi: bool) -> Result<Arc<PolicyPre>> {
        let key = (policy.sha256.clone(), allow_wasi);
        if let Some(prepared) = self.prepared.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            let mut prepared = (**prepared).clone();
            prepared.manifest.origin = policy.origin.clone();
            return Ok(Arc::new(prepared));
        }
        let (component, _) = self.compile(policy)?;
        let mut manifest = inspect(&self.engine, &component, allow_wasi)?;
        manifest.sha256 = policy.sha256.clone();
        manifest.size = policy.bytes.len();
        manifest.origin = policy.origin.clone();
        let linker = if allow_wasi { &self.wasi_linker } else { &self.linker };
        let pre = linker.instantiate_pre(&component).map_err(|e| Error::Instantiate(format!("{e:#}")))?;
        let indices = Indices::new(&pre, &manifest).map_err(|e| Error::MissingExport(format!("{e:#}")))?;
        let mut prepared = PolicyPre { engine: self.clone(), pre, manifest, indices };
        prepared.manifest.info = crate::instance::read_info(&prepared)?;
        let prepared = Arc::new(prepared);
        self.prepared.lock().unwrap_or_else(|e| e.into_inner()).insert(key, prepared.clone());
        Ok(prepared)
    }

    /// Resolves a source and prepares it, compiling on a blocking thread.
    ///
    /// # Errors
    /// Source and load errors.
    pub async fn load(self: &Arc<Self>, source: &PolicySource, allow_wasi: bool) -> Result<Arc<PolicyPre>> {
        let bytes = source.resolve().await?;
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.prepare(&bytes, allow_wasi))
            .await
            .map_err(|e| Error::Instantiate(format!("policy loading task failed: {e}")))?
    }
}

impl std::fmt::Debug for PolicyPre {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyPre").field("manifest", &self.manifest).finish_non_exhaustive()
    }
}

impl PolicyPre {
    /// What the policy is and exports.
    pub fn manifest(&self) -> &PolicyManifest {
        &self.manifest
    }
}

fn check_component_header(bytes: &[u8]) -> Result<()> {
    const MAGIC: &[u8] = b"\0asm";
    match bytes {
        [m0, m1, m2, m3, _, _, layer0, layer1, ..] if [*m0, *m1, *m2, *m3] == MAGIC => match (layer0, layer1) {
            (1, 0) => Ok(()),
            (0, 0) => Err(Error::Compile(
                "this is a core WebAssembly module, not a component; convert it with `gha-autoscaler policy \
                 componentize` (or `wasm-tools component new`)"
                    .into(),
            )),
            _ => Err(Error::Compile("unknown WebAssembly layer or version".into())),
        },
        _ => Err(Error::Compile("not WebAssembly (missing \\0asm header)".into())),
    }
}

/// Ticks the engine's epoch until the engine is dropped; deadlines are counted in ticks.
fn spawn_epoch_ticker(engine: &Engine, tick: Duration) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new().name("policy-epoch".into()).spawn(move || {
        loop {
            std::thread::sleep(tick);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the policy epoch ticker; policy deadlines will not fire");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_checked_before_compiling() {
        assert!(check_component_header(b"\0asm\x0d\0\x01\0").is_ok());
        let core = check_component_header(b"\0asm\x01\0\0\0").unwrap_err();
        assert!(core.to_string().contains("core WebAssembly module"), "{core}");
        assert!(check_component_header(b"garbage!").unwrap_err().to_string().contains("header"));
        assert!(check_component_header(b"\0as").is_err());
    }
}
