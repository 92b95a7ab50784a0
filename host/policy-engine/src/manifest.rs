//! What a component imports and exports, checked against what this host speaks before anything is instantiated.

use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::{Error, Result};
use crate::types::PolicyInfo;

/// A WIT package version: (major, minor, patch).
pub type WitVersion = (u64, u64, u64);

/// The WIT package this host implements.
pub const WIT_PACKAGE: &str = "gha-autoscaler:policy";
/// Its current version: what the SDK and templates build.
pub const WIT_VERSION: WitVersion = (0, 2, 0);
/// Every version a policy may be built for: a policy built for `0.m.z` loads when `0.m.y` is here with `z` ≤ `y`.
pub const SUPPORTED_WIT_VERSIONS: &[WitVersion] = &[(0, 1, 0), WIT_VERSION];

/// Host interfaces a policy may import.
const PROVIDED_IMPORTS: &[&str] = &["types", "logging", "metrics"];

/// A policy hook (an exported function), as used in errors, limits and metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hook {
    /// `lifecycle.info`.
    Info,
    /// `lifecycle.configure`.
    Configure,
    /// `scaler.decide`.
    Decide,
    /// `scale-down.select`.
    Select,
    /// `pod-mutator.mutate-runner-pod`.
    MutateRunnerPod,
    /// `pod-mutator.on-job-event`.
    OnJobEvent,
}

impl Hook {
    /// The hook's WIT name.
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Info => "info",
            Hook::Configure => "configure",
            Hook::Decide => "decide",
            Hook::Select => "select",
            Hook::MutateRunnerPod => "mutate-runner-pod",
            Hook::OnJobEvent => "on-job-event",
        }
    }
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a loaded policy is: identity, size, WIT version and the hooks it exports.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyManifest {
    /// sha256 of the component bytes (hex).
    pub sha256: String,
    /// Component size in bytes.
    pub size: usize,
    /// Where it came from.
    pub origin: String,
    /// The policy's own name, version and SDK version (from `lifecycle.info`).
    pub info: PolicyInfo,
    /// The WIT version the policy speaks: the supported version its exports name (`0.1.0` or `0.2.0`).
    pub wit_version: String,
    /// Exports `scaler`.
    pub scaler: bool,
    /// Exports `scale-down`.
    pub scale_down: bool,
    /// Exports `pod-mutator`.
    pub pod_mutator: bool,
    /// Every import name.
    pub imports: Vec<String>,
    /// Every export name.
    pub exports: Vec<String>,
}

impl PolicyManifest {
    /// The smallest world of the package that matches the exports.
    pub fn world(&self) -> &'static str {
        match (self.scaler, self.scale_down, self.pod_mutator) {
            (true, true, true) => "full-policy",
            (true, true, false) => "selection-policy",
            (true, false, false) => "scaling-policy",
            (false, false, true) => "pod-policy",
            (false, false, false) => "base-policy",
            _ => "custom",
        }
    }
}

/// `gha-autoscaler:policy/scaler@0.1.0` → (`scaler`, (0, 1, 0)); None for names outside our package.
fn split_name(name: &str) -> Option<(&str, Option<WitVersion>)> {
    let rest = name.strip_prefix(WIT_PACKAGE)?.strip_prefix('/')?;
    let (interface, version) = match rest.split_once('@') {
        Some((interface, version)) => (interface, parse_version(version)),
        None => (rest, None),
    };
    Some((interface, version))
}

fn parse_version(text: &str) -> Option<WitVersion> {
    let core = text.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

fn version_text((a, b, c): WitVersion) -> String {
    format!("{a}.{b}.{c}")
}

fn supported_versions() -> String {
    SUPPORTED_WIT_VERSIONS.iter().map(|&v| format!("{WIT_PACKAGE}@{}", version_text(v))).collect::<Vec<_>>().join(", ")
}

/// The supported version a policy built for `v` speaks, if any.
fn supported(v: WitVersion) -> Option<WitVersion> {
    SUPPORTED_WIT_VERSIONS.iter().copied().find(|s| s.0 == v.0 && s.1 == v.1 && v.2 <= s.2)
}

fn incompatible(version: WitVersion) -> Error {
    Error::IncompatibleWit {
        found: format!("{WIT_PACKAGE}@{}", version_text(version)),
        supported: supported_versions(),
    }
}

/// Checks a component's imports and exports and reports what it is. Nothing is instantiated.
///
/// # Errors
/// [`Error::UnsupportedImport`], [`Error::IncompatibleWit`] or [`Error::MissingExport`], each naming the culprit.
pub(crate) fn inspect(engine: &Engine, component: &Component, allow_wasi: bool) -> Result<PolicyManifest> {
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(name, _)| name.to_string()).collect();
    let exports: Vec<String> = ty.exports(engine).map(|(name, _)| name.to_string()).collect();

    for import in &imports {
        match split_name(import) {
            Some((interface, version)) if PROVIDED_IMPORTS.contains(&interface) => {
                let version = version.unwrap_or(WIT_VERSION);
                if supported(version).is_none() {
                    return Err(incompatible(version));
                }
            }
            _ if allow_wasi && import.starts_with("wasi:") => {}
            _ => {
                let hint = if import.starts_with("wasi:") {
                    ": WASI is not linked for this policy; build a pure component (wasm32-unknown-unknown), or set \
                     allowWasi for JS/Python policies"
                } else {
                    ""
                };
                return Err(Error::UnsupportedImport { import: import.clone(), hint });
            }
        }
    }

    let mut wit_version = None;
    let (mut scaler, mut scale_down, mut pod_mutator) = (false, false, false);
    for export in &exports {
        let Some((interface, version)) = split_name(export) else { continue };
        let version = version.unwrap_or(WIT_VERSION);
        let Some(speaks) = supported(version) else { return Err(incompatible(version)) };
        // Every hook answers under one version: the engine calls them all through that version's bindings.
        match wit_version {
            Some(first) if first != speaks => {
                return Err(Error::IncompatibleWit {
                    found: format!(
                        "exports of both {WIT_PACKAGE}@{} and @{}",
                        version_text(first),
                        version_text(speaks)
                    ),
                    supported: "one version per policy".into(),
                });
            }
            _ => wit_version = Some(speaks),
        }
        match interface {
            "lifecycle" => {}
            "scaler" => scaler = true,
            "scale-down" => scale_down = true,
            "pod-mutator" => pod_mutator = true,
            _ => {}
        }
    }
    let lifecycle = exports.iter().any(|e| split_name(e).is_some_and(|(interface, _)| interface == "lifecycle"));
    let (Some(wit_version), true) = (wit_version, lifecycle) else {
        return Err(Error::MissingExport(format!(
            "{WIT_PACKAGE}/lifecycle (is this a gha-autoscaler policy? it exports: {})",
            if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") }
        )));
    };
    Ok(PolicyManifest {
        sha256: String::new(),
        size: 0,
        origin: String::new(),
        info: PolicyInfo::default(),
        wit_version: version_text(wit_version),
        scaler,
        scale_down,
        pod_mutator,
        imports,
        exports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_interface_and_version() {
        assert_eq!(split_name("gha-autoscaler:policy/scaler@0.1.0"), Some(("scaler", Some((0, 1, 0)))));
        assert_eq!(split_name("gha-autoscaler:policy/types"), Some(("types", None)));
        assert_eq!(split_name("wasi:cli/environment@0.2.0"), None);
        assert_eq!(parse_version("0.2.0-rc.1"), Some((0, 2, 0)));
        assert_eq!(parse_version("x"), None);
    }
}
