//! Policies in a real OCI registry (the CNCF distribution server on loopback): push, pull by tag and by digest,
//! private registries, cosign-format signatures.

use std::sync::Arc;

use gha_policy_engine::oci::{OciSource, Registry, RegistryCredentials, parse_reference};
use gha_policy_engine::signature::{generate_key_pair, signing_key};
use gha_policy_engine::{EngineOptions, PolicyEngine, PolicyMetrics, PolicySource, built_in};
use gha_real_kube::RealRegistry;

fn source(registry: &RealRegistry, path: &str, credentials: Option<&RegistryCredentials>) -> OciSource {
    OciSource {
        reference: format!("{}/{path}", registry.address()),
        plain_http: true,
        credentials: credentials.cloned(),
        public_keys: Vec::new(),
    }
}

#[tokio::test]
async fn a_pushed_policy_loads_from_its_tag_and_its_digest() {
    let registry = RealRegistry::start(None).await.unwrap();
    let client = Registry::new(true, None);
    let warm_pool = built_in("warm-pool").unwrap();
    let tag = source(&registry, "policies/warm-pool:v1", None);
    let pinned = client.push_policy(&parse_reference(&tag.reference).unwrap(), warm_pool).await.unwrap();
    assert!(pinned.starts_with(&format!("{}/policies/warm-pool@sha256:", registry.address())), "{pinned}");

    let pulled = client.pull(&tag).await.unwrap();
    assert_eq!(pulled.pinned, pinned);
    assert_eq!(&*pulled.policy.bytes, warm_pool);
    assert_eq!(pulled.policy.origin, format!("oci {pinned}"));

    let engine = PolicyEngine::new(EngineOptions::default(), Arc::new(PolicyMetrics::default())).unwrap();
    let by_digest = OciSource { reference: pinned.clone(), ..tag.clone() };
    let pre = engine.load(&PolicySource::Oci(by_digest), false).await.unwrap();
    assert_eq!(pre.manifest().info.name, "warm-pool");

    // A tag that moves is seen by its digest; a digest reference never moves.
    let arc_default = built_in("arc-default").unwrap();
    let moved = client.push_policy(&parse_reference(&tag.reference).unwrap(), arc_default).await.unwrap();
    assert_ne!(moved, pinned);
    let current = client.digest(&parse_reference(&tag.reference).unwrap()).await.unwrap();
    assert!(moved.ends_with(&current), "{moved} vs {current}");
    let old = client.pull(&OciSource { reference: pinned.clone(), ..tag.clone() }).await.unwrap();
    assert_eq!(&*old.policy.bytes, warm_pool);

    let missing = client.pull(&source(&registry, "policies/none:v1", None)).await.unwrap_err();
    assert!(missing.contains("policies/none"), "{missing}");
}

#[tokio::test]
async fn a_private_registry_needs_its_credentials() {
    let registry = RealRegistry::start(Some(("ci-bot", "s3cret"))).await.unwrap();
    let credentials = RegistryCredentials { username: "ci-bot".into(), password: "s3cret".into() };
    let tag = source(&registry, "private/policy:v1", Some(&credentials));
    let reference = parse_reference(&tag.reference).unwrap();
    let anonymous = Registry::new(true, None).push_policy(&reference, built_in("arc-default").unwrap()).await;
    assert!(anonymous.is_err(), "an anonymous push was accepted");
    Registry::for_source(&tag).push_policy(&reference, built_in("arc-default").unwrap()).await.unwrap();

    assert!(Registry::for_source(&tag).pull(&tag).await.is_ok());
    let refused = Registry::new(true, None).pull(&source(&registry, "private/policy:v1", None)).await.unwrap_err();
    assert!(refused.to_lowercase().contains("auth") || refused.contains("401"), "{refused}");
    let wrong = RegistryCredentials { password: "guess".into(), ..credentials };
    assert!(Registry::new(true, Some(&wrong)).pull(&tag).await.is_err());
}

#[tokio::test]
async fn signatures_are_required_when_keys_are_configured_and_a_tampered_artifact_is_refused() {
    let registry = RealRegistry::start(None).await.unwrap();
    let client = Registry::new(true, None);
    let (private, public) = generate_key_pair().unwrap();
    let key = signing_key(&private).unwrap();
    let tag = source(&registry, "signed/policy:v1", None);
    let reference = parse_reference(&tag.reference).unwrap();
    let verified = OciSource { public_keys: vec![public.clone()], ..tag.clone() };

    let pinned = client.push_policy(&reference, built_in("warm-pool").unwrap()).await.unwrap();
    let unsigned = client.pull(&verified).await.unwrap_err();
    assert!(unsigned.contains("not signed"), "{unsigned}");

    let signed = gha_policy_engine::signature::sign(&client, &reference, &key).await.unwrap();
    assert!(pinned.ends_with(&signed));
    let pulled = client.pull(&verified).await.unwrap();
    assert_eq!(pulled.pinned, pinned);
    // Signing twice keeps one signature; a second key's signature is added beside it.
    gha_policy_engine::signature::sign(&client, &reference, &key).await.unwrap();
    let (other_private, other_public) = generate_key_pair().unwrap();
    gha_policy_engine::signature::sign(&client, &reference, &signing_key(&other_private).unwrap()).await.unwrap();
    client.pull(&OciSource { public_keys: vec![other_public], ..tag.clone() }).await.unwrap();
    client.pull(&verified).await.unwrap();

    // Someone pushes other bytes under the signed tag: its digest carries no signature.
    client.push_policy(&reference, built_in("arc-default").unwrap()).await.unwrap();
    let tampered = client.pull(&verified).await.unwrap_err();
    assert!(tampered.contains("not signed"), "{tampered}");
    // The signed digest still verifies; a stranger's key does not.
    client.pull(&OciSource { reference: pinned.clone(), ..verified.clone() }).await.unwrap();
    let (_, stranger) = generate_key_pair().unwrap();
    let refused = client.pull(&OciSource { reference: pinned, public_keys: vec![stranger], ..tag }).await.unwrap_err();
    assert!(refused.contains("no valid signature"), "{refused}");
}
