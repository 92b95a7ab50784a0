//! Registry credentials from Docker config JSON: a `kubernetes.io/dockerconfigjson` Secret's `.dockerconfigjson`
//! (or a legacy `.dockercfg`), or a user's `~/.docker/config.json`. Credential helpers are not run.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::oci::RegistryCredentials;

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The host part of a config key or registry name: no scheme, no path; Docker Hub's aliases as `docker.io`.
fn host(key: &str) -> &str {
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        other => other,
    }
}

/// The credentials a Docker config holds for `registry` (`host[:port]`).
///
/// # Errors
/// Unreadable JSON, or an entry for the registry whose `auth` is not base64 `user:password`.
pub fn credentials_for(config: &[u8], registry: &str) -> Result<Option<RegistryCredentials>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(config).map_err(|e| format!("not Docker config JSON: {e}"))?;
    // `.dockercfg` is the `auths` map itself; a config.json without `auths` (credential helpers only) has none.
    let legacy = value.get("auths").is_none() && value.as_object().is_some_and(|m| m.values().all(|v| v.is_object()));
    let config: DockerConfig = if legacy {
        serde_json::from_value(serde_json::json!({ "auths": value }))
    } else {
        serde_json::from_value(value)
    }
    .map_err(|e| format!("not Docker config JSON: {e}"))?;
    let Some(entry) = config.auths.iter().find(|(key, _)| host(key) == host(registry)).map(|(_, entry)| entry) else {
        return Ok(None);
    };
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Ok(Some(RegistryCredentials { username: username.clone(), password: password.clone() }));
    }
    let Some(auth) = &entry.auth else { return Ok(None) };
    let decoded = STANDARD.decode(auth.trim()).map_err(|e| format!("auth of {registry} is not base64: {e}"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| format!("auth of {registry} is not text"))?;
    let (username, password) =
        decoded.split_once(':').ok_or_else(|| format!("auth of {registry} is not user:password"))?;
    Ok(Some(RegistryCredentials { username: username.into(), password: password.into() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_fields_and_user_password_fields_are_read_by_host() {
        let auth = STANDARD.encode("bot:s3cret");
        let config = format!(
            r#"{{"auths": {{"https://registry.example:5000/v2/": {{"auth": "{auth}"}},
                "ghcr.io": {{"username": "u", "password": "p"}}}}}}"#
        );
        let found = credentials_for(config.as_bytes(), "registry.example:5000").unwrap().unwrap();
        assert_eq!((found.username.as_str(), found.password.as_str()), ("bot", "s3cret"));
        assert_eq!(credentials_for(config.as_bytes(), "ghcr.io").unwrap().unwrap().password, "p");
        assert!(credentials_for(config.as_bytes(), "quay.io").unwrap().is_none());
    }

    #[test]
    fn legacy_dockercfg_and_docker_hub_aliases_match() {
        let config = br#"{"https://index.docker.io/v1/": {"username": "u", "password": "p"}}"#;
        assert!(credentials_for(config, "docker.io").unwrap().is_some());
        assert!(credentials_for(b"garbage", "docker.io").unwrap_err().contains("Docker config"));
        assert!(credentials_for(br#"{"credsStore": "desktop"}"#, "docker.io").unwrap().is_none(), "helpers only");
        let bad = br#"{"auths": {"r.example": {"auth": "bm9jb2xvbg=="}}}"#;
        assert!(credentials_for(bad, "r.example").unwrap_err().contains("user:password"));
    }
}
