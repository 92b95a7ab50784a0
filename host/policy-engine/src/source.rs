//! Where a policy comes from, and fetching its bytes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::builtin::built_in;
use crate::error::{Error, Result};
use crate::limits::MAX_POLICY_BYTES;
use crate::oci::{OciSource, Registry};

/// A policy's source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum PolicySource {
    /// A policy shipped in the binary (`arc-default`, `warm-pool`, `pod-shaper`).
    BuiltIn(String),
    /// A component file on disk.
    File(PathBuf),
    /// An http(s) URL; the sha256 pin is mandatory.
    Url {
        /// Where to fetch the component.
        url: String,
        /// Hex sha256 of the component (an optional `sha256:` prefix is accepted).
        sha256: String,
    },
    /// A Wasm OCI artifact in a registry (a tag, or pinned by digest), signature-checked when keys are given.
    Oci(OciSource),
    /// Bytes the caller already has (e.g. from a ConfigMap), with a description of their origin.
    #[serde(skip)]
    Bytes {
        /// e.g. `configmap default/my-policy key policy.wasm`.
        origin: String,
        /// The component.
        bytes: Arc<[u8]>,
    },
}

/// A resolved policy: bytes, their sha256 and where they came from.
#[derive(Debug, Clone)]
pub struct PolicyBytes {
    /// Human-readable origin.
    pub origin: String,
    /// The component.
    pub bytes: Arc<[u8]>,
    /// Hex sha256 of `bytes`.
    pub sha256: String,
}

impl PolicyBytes {
    /// Wraps bytes, computing their digest.
    pub fn new(origin: impl Into<String>, bytes: impl Into<Arc<[u8]>>) -> Self {
        let bytes = bytes.into();
        PolicyBytes { origin: origin.into(), sha256: sha256_hex(&bytes), bytes }
    }
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl PolicySource {
    /// Reads a command-line policy argument: a built-in name, an http(s) URL (with `sha256`), `oci://` and an
    /// OCI reference (anonymous, HTTPS), or a file path.
    pub fn from_arg(arg: &str, sha256: Option<String>) -> PolicySource {
        if built_in(arg).is_some() {
            PolicySource::BuiltIn(arg.to_string())
        } else if let Some(reference) = arg.strip_prefix("oci://") {
            PolicySource::Oci(OciSource {
                reference: reference.to_string(),
                plain_http: false,
                credentials: None,
                public_keys: Vec::new(),
            })
        } else if arg.starts_with("http://") || arg.starts_with("https://") {
            PolicySource::Url { url: arg.to_string(), sha256: sha256.unwrap_or_default() }
        } else {
            PolicySource::File(PathBuf::from(arg))
        }
    }

    /// A short description for logs and status.
    pub fn origin(&self) -> String {
        match self {
            PolicySource::BuiltIn(name) => format!("built-in {name}"),
            PolicySource::File(path) => format!("file {}", path.display()),
            PolicySource::Url { url, .. } => format!("url {url}"),
            PolicySource::Oci(oci) => format!("oci {}", oci.reference),
            PolicySource::Bytes { origin, .. } => origin.clone(),
        }
    }

    /// Fetches or reads the bytes and checks size and (for URLs) the sha256 pin.
    ///
    /// # Errors
    /// [`Error::Source`] when the bytes cannot be had (or an OCI artifact's signature is missing or wrong),
    /// [`Error::DigestMismatch`] when a URL's content does not match its pin, [`Error::TooLarge`] over 50 MiB.
    pub async fn resolve(&self) -> Result<PolicyBytes> {
        let origin = self.origin();
        let source_error = |message: String| Error::Source { origin: origin.clone(), message };
        let resolved = match self {
            PolicySource::BuiltIn(name) => {
                let bytes = built_in(name).ok_or_else(|| {
                    source_error(format!(
                        "no built-in policy named {name:?} (built-ins: {})",
                        crate::builtin::BUILT_IN_POLICIES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                    ))
                })?;
                PolicyBytes::new(origin.clone(), bytes)
            }
            PolicySource::File(path) => {
                let bytes = tokio::fs::read(path).await.map_err(|e| source_error(e.to_string()))?;
                check_size(bytes.len())?;
                PolicyBytes::new(origin.clone(), bytes)
            }
            PolicySource::Bytes { bytes, .. } => PolicyBytes::new(origin.clone(), bytes.clone()),
            PolicySource::Oci(oci) => Registry::for_source(oci).pull(oci).await.map_err(source_error)?.policy,
            PolicySource::Url { url, sha256 } => {
                let expected = normalize_digest(sha256)
                    .ok_or_else(|| source_error("a URL source needs its sha256 (64 hex digits) pinned".to_string()))?;
                let bytes = fetch(url).await.map_err(source_error)?;
                let resolved = PolicyBytes::new(origin.clone(), bytes);
                if resolved.sha256 != expected {
                    return Err(Error::DigestMismatch { origin, expected, actual: resolved.sha256 });
                }
                resolved
            }
        };
        check_size(resolved.bytes.len())?;
        Ok(resolved)
    }
}

fn check_size(size: usize) -> Result<()> {
    if size > MAX_POLICY_BYTES { Err(Error::TooLarge { size, max: MAX_POLICY_BYTES }) } else { Ok(()) }
}

fn normalize_digest(text: &str) -> Option<String> {
    let hex = text.trim().strip_prefix("sha256:").unwrap_or(text.trim()).to_ascii_lowercase();
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

async fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))?;
    let mut response = client.get(url).send().await.map_err(|e| format!("fetch failed: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("fetch failed: HTTP {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("fetch failed: {e}"))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_POLICY_BYTES {
            return Err(format!("body exceeds {MAX_POLICY_BYTES} bytes"));
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_accept_prefix_and_case_and_reject_garbage() {
        let hex = "AB".repeat(32);
        assert_eq!(normalize_digest(&format!("sha256:{hex}")), Some("ab".repeat(32)));
        assert_eq!(normalize_digest("abc"), None);
        assert_eq!(normalize_digest(""), None);
    }

    #[test]
    fn arguments_map_to_sources() {
        assert_eq!(PolicySource::from_arg("arc-default", None), PolicySource::BuiltIn("arc-default".into()));
        assert!(matches!(PolicySource::from_arg("https://x/p.wasm", None), PolicySource::Url { .. }));
        assert!(matches!(PolicySource::from_arg("p.wasm", None), PolicySource::File(_)));
    }

    #[test]
    fn sources_read_from_json() {
        let source: PolicySource = serde_json::from_str(r#"{"builtIn": "warm-pool"}"#).unwrap();
        assert_eq!(source, PolicySource::BuiltIn("warm-pool".into()));
        let source: PolicySource = serde_json::from_str(r#"{"url": {"url": "https://x", "sha256": "00"}}"#).unwrap();
        assert!(matches!(source, PolicySource::Url { .. }));
    }

    #[tokio::test]
    async fn unknown_built_in_lists_the_known_ones() {
        let err = PolicySource::BuiltIn("nope".into()).resolve().await.unwrap_err();
        assert!(err.to_string().contains("arc-default"), "{err}");
    }

    #[tokio::test]
    async fn url_without_pin_is_refused_before_fetching() {
        let source = PolicySource::Url { url: "http://127.0.0.1:1/p.wasm".into(), sha256: String::new() };
        assert!(source.resolve().await.unwrap_err().to_string().contains("sha256"));
    }
}
