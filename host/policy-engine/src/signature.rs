//! cosign-compatible signatures of policy artifacts, verified with public keys.
//!
//! The format is cosign's "simple signing" one: the signature of the manifest `sha256:<hex>` lives in the same
//! repository under the tag `sha256-<hex>.sig`, as an image whose layers (media type
//! `application/vnd.dev.cosign.simplesigning.v1+json`) are JSON payloads naming the signed manifest digest, each
//! with its ECDSA P-256 / SHA-256 signature (DER, base64) in the annotation `dev.cosignproject.cosign/signature`.
//! So `cosign sign --key` and `cosign verify --key` (with `--insecure-ignore-tlog`: we do not consult a
//! transparency log) interoperate with `gha-autoscaler policy sign` and `policy verify`.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use oci_client::Reference;
use oci_client::client::{Config, ImageLayer};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use serde::{Deserialize, Serialize};

use crate::oci::Registry;

/// Media type of a simple-signing payload layer.
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Annotation holding a payload's signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The payload's `critical.type`.
const SIGNATURE_TYPE: &str = "cosign container image signature";
/// Largest payload read (cosign's are a few hundred bytes).
const MAX_PAYLOAD_BYTES: usize = 64 << 10;

/// What a signature asserts.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    critical: Critical,
    #[serde(default)]
    optional: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// A new signing key pair: (PKCS#8 private key PEM, public key PEM).
///
/// # Errors
/// Encoding failures (not expected).
pub fn generate_key_pair() -> Result<(String, String), String> {
    let key = loop {
        // A uniformly random 32-byte string is a valid scalar except with negligible probability.
        if let Ok(key) = SigningKey::from_slice(&rand::random::<[u8; 32]>()) {
            break key;
        }
    };
    let private = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| e.to_string())?.to_string();
    let public = key.verifying_key().to_public_key_pem(LineEnding::LF).map_err(|e| e.to_string())?;
    Ok((private, public))
}

/// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey` or `policy
/// generate-key-pair` write; cosign's own password-encrypted keys are not read).
///
/// # Errors
/// Not a P-256 private key.
pub fn signing_key(pem: &str) -> Result<SigningKey, String> {
    if pem.contains("ENCRYPTED") {
        return Err("password-encrypted keys (cosign's default) are not read; export the key unencrypted as \
                    PKCS#8 PEM, or generate one with `gha-autoscaler policy generate-key-pair`"
            .into());
    }
    SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| format!("not an ECDSA P-256 PKCS#8 private key: {e}"))
}

/// Reads the public keys in a PEM text (one or several `-----BEGIN PUBLIC KEY-----` blocks).
///
/// # Errors
/// No key, or a block that is not a P-256 public key.
pub fn verifying_keys(pem: &str) -> Result<Vec<VerifyingKey>, String> {
    const END: &str = "-----END PUBLIC KEY-----";
    let keys = pem
        .split_inclusive(END)
        .filter(|block| block.contains("-----BEGIN"))
        .map(|block| {
            VerifyingKey::from_public_key_pem(block.trim())
                .map_err(|e| format!("not an ECDSA P-256 public key (PEM): {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() { Err("no PEM public key found".into()) } else { Ok(keys) }
}

/// The tag under which cosign stores the signatures of manifest `digest`.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replace(':', "-"))
}

fn signature_reference(reference: &Reference, digest: &str) -> Reference {
    Reference::with_tag(reference.registry().into(), reference.repository().into(), signature_tag(digest))
}

/// The simple-signing payload for `digest` in `reference`'s repository.
fn payload(reference: &Reference, digest: &str) -> Vec<u8> {
    let payload = Payload {
        critical: Critical {
            identity: Identity { docker_reference: format!("{}/{}", reference.registry(), reference.repository()) },
            image: Image { docker_manifest_digest: digest.to_string() },
            kind: SIGNATURE_TYPE.into(),
        },
        optional: None,
    };
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// Signs the manifest `reference` names and pushes the signature beside it (keeping signatures already there);
/// returns the signed digest.
///
/// # Errors
/// Registry errors.
pub async fn sign(registry: &Registry, reference: &Reference, key: &SigningKey) -> Result<String, String> {
    let digest = registry.digest(reference).await?;
    let payload = payload(reference, &digest);
    let signature: Signature = key.sign(&payload);
    let encoded = STANDARD.encode(signature.to_der().as_bytes());
    let target = signature_reference(reference, &digest);
    let mut layers = existing_layers(registry, &target).await;
    layers.retain(|layer| {
        layer.annotations.as_ref().and_then(|a| a.get(SIGNATURE_ANNOTATION)) != Some(&encoded) || layer.data != payload
    });
    let annotations = BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), encoded)]);
    layers.push(ImageLayer::new(payload, PAYLOAD_MEDIA_TYPE.into(), Some(annotations)));
    let config = serde_json::json!({
        "architecture": "", "os": "", "config": {}, "created": "0001-01-01T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(ImageLayer::sha256_digest).collect::<Vec<_>>()},
    });
    let config = Config::oci_v1(config.to_string().into_bytes(), None);
    registry.push(&target, layers, config, None).await?;
    Ok(digest)
}

/// The payload layers of an existing signature image (none when there is none or it cannot be read).
async fn existing_layers(registry: &Registry, target: &Reference) -> Vec<ImageLayer> {
    let Ok((manifest, _)) = registry.manifest(target).await else { return Vec::new() };
    let mut layers = Vec::new();
    for layer in manifest.layers.iter().filter(|l| l.media_type == PAYLOAD_MEDIA_TYPE) {
        if let Ok(data) = registry.blob(target, layer, MAX_PAYLOAD_BYTES).await {
            layers.push(ImageLayer::new(data, layer.media_type.clone(), layer.annotations.clone()));
        }
    }
    layers
}

/// Checks that manifest `digest` of `reference`'s repository carries a signature by one of `public_keys` (PEM).
///
/// # Errors
/// Why not: no signature image, no valid signature by these keys, or a valid signature of another digest.
pub async fn verify(
    registry: &Registry,
    reference: &Reference,
    digest: &str,
    public_keys: &[String],
) -> Result<(), String> {
    let keys = public_keys.iter().map(|pem| verifying_keys(pem)).collect::<Result<Vec<_>, _>>()?.concat();
    let target = signature_reference(reference, digest);
    let (manifest, _) = registry.manifest(&target).await.map_err(|e| {
        format!("{} is not signed (no signature at {}): {e}", pinned(reference, digest), target.whole())
    })?;
    let mut findings = Vec::new();
    for layer in manifest.layers.iter().filter(|l| l.media_type == PAYLOAD_MEDIA_TYPE) {
        let Some(encoded) = layer.annotations.as_ref().and_then(|a| a.get(SIGNATURE_ANNOTATION)) else { continue };
        let payload = registry.blob(&target, layer, MAX_PAYLOAD_BYTES).await?;
        match check(&payload, encoded, &keys, digest) {
            Ok(()) => return Ok(()),
            Err(why) => findings.push(why),
        }
    }
    if findings.is_empty() {
        findings.push("no signature layers".into());
    }
    Err(format!("{} has no valid signature by the configured keys: {}", pinned(reference, digest), findings.join("; ")))
}

fn pinned(reference: &Reference, digest: &str) -> String {
    crate::oci::pinned(reference, digest)
}

/// One payload and its signature: signed by one of `keys`, and asserting `digest`.
fn check(payload: &[u8], encoded: &str, keys: &[VerifyingKey], digest: &str) -> Result<(), String> {
    let der = STANDARD.decode(encoded.trim()).map_err(|e| format!("signature is not base64: {e}"))?;
    let signature = Signature::from_der(&der).map_err(|e| format!("signature is not DER ECDSA: {e}"))?;
    if !keys.iter().any(|key| key.verify(payload, &signature).is_ok()) {
        return Err("a signature by another key (or over other bytes)".into());
    }
    let payload: Payload = serde_json::from_slice(payload).map_err(|e| format!("signed payload unreadable: {e}"))?;
    if payload.critical.kind != SIGNATURE_TYPE {
        return Err(format!("signed payload of type {:?}", payload.critical.kind));
    }
    if payload.critical.image.docker_manifest_digest != digest {
        return Err(format!(
            "a valid signature of {}, not of this manifest",
            payload.critical.image.docker_manifest_digest
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Reference {
        "registry.example/acme/policy:v1".parse().unwrap()
    }

    #[test]
    fn a_payload_signed_by_the_key_verifies_and_only_for_its_digest() {
        let (private, public) = generate_key_pair().unwrap();
        let key = signing_key(&private).unwrap();
        let keys = verifying_keys(&public).unwrap();
        let digest = format!("sha256:{}", "1".repeat(64));
        let payload = payload(&reference(), &digest);
        let signature: Signature = key.sign(&payload);
        let encoded = STANDARD.encode(signature.to_der().as_bytes());
        assert_eq!(check(&payload, &encoded, &keys, &digest), Ok(()));
        let other = format!("sha256:{}", "2".repeat(64));
        assert!(check(&payload, &encoded, &keys, &other).unwrap_err().contains("not of this manifest"));
        let mut tampered = payload.clone();
        tampered[10] ^= 1;
        assert!(check(&tampered, &encoded, &keys, &digest).unwrap_err().contains("another key"));
        let (_, stranger) = generate_key_pair().unwrap();
        let stranger = verifying_keys(&stranger).unwrap();
        assert!(check(&payload, &encoded, &stranger, &digest).unwrap_err().contains("another key"));
    }

    #[test]
    fn payloads_have_cosign_shape_and_tags_cosign_names() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let json: serde_json::Value = serde_json::from_slice(&payload(&reference(), &digest)).unwrap();
        assert_eq!(json["critical"]["identity"]["docker-reference"], "registry.example/acme/policy");
        assert_eq!(json["critical"]["image"]["docker-manifest-digest"], digest.as_str());
        assert_eq!(json["critical"]["type"], SIGNATURE_TYPE);
        assert_eq!(signature_tag(&digest), format!("sha256-{}.sig", "ab".repeat(32)));
    }

    #[test]
    fn several_public_keys_read_from_one_text_and_garbage_is_refused() {
        let (_, one) = generate_key_pair().unwrap();
        let (_, two) = generate_key_pair().unwrap();
        assert_eq!(verifying_keys(&format!("{one}\n{two}")).unwrap().len(), 2);
        assert!(verifying_keys("hello").is_err());
        assert!(signing_key("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----").unwrap_err().contains("unencrypted"));
    }
}
