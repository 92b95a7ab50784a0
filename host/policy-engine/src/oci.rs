//! Policies as OCI artifacts: the Wasm OCI artifact layout (one `application/wasm` layer, a
//! `application/vnd.wasm.config.v0+json` config), pulled and pushed with `oci-client` (which does the registry
//! protocol: token and basic auth challenges, chunked uploads, digest checks of every blob it returns).

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use oci_client::Client;
/// An OCI reference (`registry/repository[:tag][@digest]`).
pub use oci_client::Reference;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use serde::{Deserialize, Serialize};

use crate::limits::MAX_POLICY_BYTES;
use crate::signature;
use crate::source::PolicyBytes;

/// The layer media type of a Wasm component (CNCF Wasm OCI artifact layout).
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The config media type of a Wasm OCI artifact.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Layer media types accepted on pull: the CNCF layout's and the older wasm-to-oci one.
const ACCEPTED_LAYER_MEDIA_TYPES: [&str; 2] = [WASM_LAYER_MEDIA_TYPE, oci_client::manifest::WASM_LAYER_MEDIA_TYPE];

/// A policy in an OCI registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OciSource {
    /// `registry/repository:tag` or `registry/repository@sha256:…`.
    pub reference: String,
    /// Plain HTTP instead of HTTPS (a registry on loopback or inside the cluster without TLS).
    #[serde(default)]
    pub plain_http: bool,
    /// Credentials for the registry; anonymous when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<RegistryCredentials>,
    /// PEM public keys (ECDSA P-256, as `cosign generate-key-pair` makes): when any is given, the artifact must
    /// carry a cosign signature by one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_keys: Vec<String>,
}

/// A registry user name and password (or token).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryCredentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCredentials").field("username", &self.username).finish_non_exhaustive()
    }
}

/// A pulled policy: its bytes and the manifest digest it was pulled at.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The component; its origin is the reference pinned by digest.
    pub policy: PolicyBytes,
    /// `registry/repository@sha256:…` of the manifest.
    pub pinned: String,
}

/// A connection to the registry of one reference.
pub struct Registry {
    client: Client,
    auth: RegistryAuth,
}

/// Parses a reference, with a clear error.
///
/// # Errors
/// The reference is not `registry/repository[:tag][@digest]`.
pub fn parse_reference(text: &str) -> Result<Reference, String> {
    let text = text.strip_prefix("oci://").unwrap_or(text);
    text.parse::<Reference>().map_err(|e| format!("{text:?} is not an OCI reference (registry/repository:tag): {e}"))
}

/// The reference pinned to `digest`, as text.
pub fn pinned(reference: &Reference, digest: &str) -> String {
    format!("{}/{}@{digest}", reference.registry(), reference.repository())
}

impl Registry {
    /// A client for `plain_http` or HTTPS registries, with `credentials` or anonymous.
    pub fn new(plain_http: bool, credentials: Option<&RegistryCredentials>) -> Self {
        let config = ClientConfig {
            protocol: if plain_http { ClientProtocol::Http } else { ClientProtocol::Https },
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            ..ClientConfig::default()
        };
        let auth = credentials
            .map_or(RegistryAuth::Anonymous, |c| RegistryAuth::Basic(c.username.clone(), c.password.clone()));
        Registry { client: Client::new(config), auth }
    }

    /// For a source.
    pub fn for_source(source: &OciSource) -> Self {
        Registry::new(source.plain_http, source.credentials.as_ref())
    }

    /// The digest a reference names now (a tag's current manifest; a digest reference as is).
    ///
    /// # Errors
    /// The registry cannot be reached or does not have the reference.
    pub async fn digest(&self, reference: &Reference) -> Result<String, String> {
        if let Some(digest) = reference.digest() {
            return Ok(digest.to_string());
        }
        self.client.fetch_manifest_digest(reference, &self.auth).await.map_err(|e| describe(reference, &e))
    }

    /// An image manifest and its digest.
    pub(crate) async fn manifest(&self, reference: &Reference) -> Result<(OciImageManifest, String), String> {
        self.client.pull_image_manifest(reference, &self.auth).await.map_err(|e| describe(reference, &e))
    }

    /// A blob of the reference's repository, at most `max` bytes, its digest checked.
    pub(crate) async fn blob(
        &self,
        reference: &Reference,
        descriptor: &OciDescriptor,
        max: usize,
    ) -> Result<Vec<u8>, String> {
        if usize::try_from(descriptor.size).map_or(true, |size| size > max) {
            return Err(format!("{} is {} bytes, over the limit of {max}", descriptor.digest, descriptor.size));
        }
        let mut out = LimitedBuffer { bytes: Vec::new(), max };
        self.client.pull_blob(reference, descriptor, &mut out).await.map_err(|e| describe(reference, &e))?;
        Ok(out.bytes)
    }

    /// Pushes one artifact: `layers` (data, media type, annotations) under `config`, with `subject` (OCI 1.1) when
    /// given; returns the manifest digest.
    ///
    /// # Errors
    /// The registry refuses or cannot be reached.
    pub(crate) async fn push(
        &self,
        reference: &Reference,
        layers: Vec<ImageLayer>,
        config: Config,
        annotations: Option<BTreeMap<String, String>>,
    ) -> Result<String, String> {
        let manifest = OciImageManifest::build(&layers, &config, annotations);
        self.client
            .push(reference, &layers, config, &self.auth, Some(manifest))
            .await
            .map_err(|e| describe(reference, &e))?;
        self.client.fetch_manifest_digest(reference, &self.auth).await.map_err(|e| describe(reference, &e))
    }

    /// Pulls the policy a source names: resolves the manifest, checks the signature when keys are configured,
    /// and fetches the one Wasm layer (size-limited, digest-checked).
    ///
    /// # Errors
    /// Registry errors, a manifest without exactly one Wasm layer, an oversized layer, a missing or invalid
    /// signature.
    pub async fn pull(&self, source: &OciSource) -> Result<Pulled, String> {
        let reference = parse_reference(&source.reference)?;
        let (manifest, digest) = self.manifest(&reference).await?;
        if let Some(expected) = reference.digest()
            && expected != digest
        {
            return Err(format!("{} served manifest {digest}, not the pinned {expected}", reference.whole()));
        }
        if !source.public_keys.is_empty() {
            signature::verify(self, &reference, &digest, &source.public_keys).await?;
        }
        let mut wasm = manifest.layers.iter().filter(|l| ACCEPTED_LAYER_MEDIA_TYPES.contains(&l.media_type.as_str()));
        let (Some(layer), None) = (wasm.next(), wasm.next()) else {
            return Err(format!(
                "{} is not a Wasm OCI artifact: it needs exactly one layer of media type {WASM_LAYER_MEDIA_TYPE} \
                 (layers: {})",
                reference.whole(),
                manifest.layers.iter().map(|l| l.media_type.as_str()).collect::<Vec<_>>().join(", ")
            ));
        };
        let bytes = self.blob(&reference, layer, MAX_POLICY_BYTES).await?;
        let pinned = pinned(&reference, &digest);
        Ok(Pulled { policy: PolicyBytes::new(format!("oci {pinned}"), bytes), pinned })
    }

    /// Publishes a component as a Wasm OCI artifact under `reference`; returns the reference pinned by digest.
    ///
    /// # Errors
    /// Registry errors.
    pub async fn push_policy(&self, reference: &Reference, component: &[u8]) -> Result<String, String> {
        let layer = ImageLayer::new(component.to_vec(), WASM_LAYER_MEDIA_TYPE.into(), None);
        let config = serde_json::json!({
            "created": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "architecture": "wasm",
            "os": "wasip2",
            "layerDigests": [layer.sha256_digest()],
        });
        let config = Config::new(config.to_string().into_bytes(), WASM_CONFIG_MEDIA_TYPE.into(), None);
        let digest = self.push(reference, vec![layer], config, None).await?;
        Ok(pinned(reference, &digest))
    }
}

fn describe(reference: &Reference, error: &oci_client::errors::OciDistributionError) -> String {
    format!("{}: {error}", reference.whole())
}

/// An in-memory `AsyncWrite` that refuses to grow past `max` bytes.
struct LimitedBuffer {
    bytes: Vec<u8>,
    max: usize,
}

impl tokio::io::AsyncWrite for LimitedBuffer {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.bytes.len() + buf.len() > this.max {
            return Poll::Ready(Err(std::io::Error::other(format!("blob exceeds {} bytes", this.max))));
        }
        this.bytes.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_with_or_without_the_oci_scheme() {
        let reference = parse_reference("oci://127.0.0.1:5000/policies/warm-pool:v1").unwrap();
        assert_eq!(
            (reference.registry(), reference.repository(), reference.tag()),
            ("127.0.0.1:5000", "policies/warm-pool", Some("v1"))
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(pinned(&reference, &digest), format!("127.0.0.1:5000/policies/warm-pool@{digest}"));
        assert!(parse_reference("Not A Reference!").unwrap_err().contains("not an OCI reference"));
    }

    #[test]
    fn credentials_never_print_the_password() {
        let credentials = RegistryCredentials { username: "bot".into(), password: "hunter2".into() };
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }
}
