//! Reading what Secrets and ConfigMaps hold. They are fetched directly, never list-watched, so the controller
//! needs no cluster-wide list/watch on secrets (§1.2).

use std::collections::BTreeMap;

use gha_actions_client::Credentials;
use gha_crds::{ProxyConfig, ProxyServerConfig};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};

use crate::error::{Error, Result, is_status};

/// A Secret's data as strings (binary values lossily decoded).
pub async fn read_secret(client: &Client, namespace: &str, name: &str) -> Result<BTreeMap<String, String>> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = secrets.get(name).await.map_err(|e| {
        if is_status(&e, 404) { Error::Invalid(format!("secret {namespace}/{name} not found")) } else { Error::Kube(e) }
    })?;
    let mut data: BTreeMap<String, String> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    data.extend(secret.string_data.unwrap_or_default());
    Ok(data)
}

/// A ConfigMap key, from `binaryData` or `data`.
pub async fn read_config_map_key(client: &Client, namespace: &str, name: &str, key: &str) -> Result<Vec<u8>> {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let map = maps.get(name).await.map_err(|e| {
        if is_status(&e, 404) { Error::Invalid(format!("configmap {namespace}/{name} not found")) } else { e.into() }
    })?;
    let binary = map.binary_data.as_ref().and_then(|d| d.get(key)).map(|b| b.0.clone());
    let text = map.data.as_ref().and_then(|d| d.get(key)).map(|s| s.clone().into_bytes());
    binary.or(text).ok_or_else(|| Error::Invalid(format!("configmap {namespace}/{name} has no key {key:?}")))
}

/// The GitHub credentials in a `githubConfigSecret`: `github_token`, or `github_app_id` +
/// `github_app_installation_id` + `github_app_private_key`; exactly one of the two.
pub fn credentials(secret_name: &str, data: &BTreeMap<String, String>) -> Result<Credentials> {
    let get = |key: &str| data.get(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let token = get("github_token");
    let app_id = get("github_app_id");
    match (token, app_id) {
        (Some(_), Some(_)) => Err(Error::Invalid(format!(
            "secret {secret_name} holds both github_token and github_app_id; keep exactly one method"
        ))),
        (Some(token), None) => Ok(Credentials::Token(token)),
        (None, Some(app_id)) => {
            let installation = get("github_app_installation_id").ok_or_else(|| {
                Error::Invalid(format!(
                    "secret {secret_name}: github_app_installation_id is required with github_app_id"
                ))
            })?;
            let installation_id = installation.parse().map_err(|_| {
                Error::Invalid(format!(
                    "secret {secret_name}: github_app_installation_id {installation:?} is not a number"
                ))
            })?;
            let private_key_pem =
                data.get("github_app_private_key").cloned().filter(|k| !k.trim().is_empty()).ok_or_else(|| {
                    Error::Invalid(format!(
                        "secret {secret_name}: github_app_private_key is required with github_app_id"
                    ))
                })?;
            Ok(Credentials::App { app_id, installation_id, private_key_pem })
        }
        (None, None) => Err(Error::Invalid(format!(
            "secret {secret_name} has neither github_token nor github_app_id/github_app_installation_id/github_app_private_key"
        ))),
    }
}

/// One proxy URL with the credentials of its `credentialSecretRef` filled in.
async fn proxy_url(client: &Client, namespace: &str, server: &ProxyServerConfig) -> Result<Option<String>> {
    let Some(url) = server.url.as_deref().filter(|u| !u.is_empty()) else { return Ok(None) };
    let Some(secret) = server.credential_secret_ref.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(Some(url.to_string()));
    };
    let data = read_secret(client, namespace, secret).await?;
    let mut parsed = url::Url::parse(url).map_err(|e| Error::Invalid(format!("proxy URL {url:?}: {e}")))?;
    let user = data.get("username").map(String::as_str).unwrap_or_default();
    let password = data.get("password").map(String::as_str);
    if parsed.set_username(user).is_err() || parsed.set_password(password).is_err() {
        return Err(Error::Invalid(format!("proxy URL {url:?} cannot carry credentials")));
    }
    Ok(Some(parsed.to_string()))
}

/// The proxy as `http_proxy`/`https_proxy`/`no_proxy` values (ARC's proxy secret keys).
pub async fn proxy_env(client: &Client, namespace: &str, proxy: &ProxyConfig) -> Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    if let Some(url) = match &proxy.http {
        Some(server) => proxy_url(client, namespace, server).await?,
        None => None,
    } {
        env.insert("http_proxy".to_string(), url);
    }
    if let Some(url) = match &proxy.https {
        Some(server) => proxy_url(client, namespace, server).await?,
        None => None,
    } {
        env.insert("https_proxy".to_string(), url);
    }
    if let Some(no_proxy) = proxy.no_proxy.as_ref().filter(|n| !n.is_empty()) {
        env.insert("no_proxy".to_string(), no_proxy.join(","));
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn exactly_one_credential_method() {
        assert!(matches!(credentials("s", &data(&[("github_token", "t")])), Ok(Credentials::Token(t)) if t == "t"));
        let both = credentials("s", &data(&[("github_token", "t"), ("github_app_id", "1")])).unwrap_err();
        assert!(both.to_string().contains("both"), "{both}");
        let partial = credentials("s", &data(&[("github_app_id", "1")])).unwrap_err();
        assert!(partial.to_string().contains("github_app_installation_id"), "{partial}");
        let none = credentials("s", &data(&[])).unwrap_err();
        assert!(none.to_string().contains("neither"), "{none}");
    }
}
