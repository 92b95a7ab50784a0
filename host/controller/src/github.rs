//! Actions-service clients, cached per (namespace, config URL, secret) and rebuilt when the credentials, proxy
//! or root CA change, so admin tokens are reused across reconciles (ARC's `multiclient`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gha_actions_client::{ActionsClient, ClientOptions, UserAgent};
use gha_crds::{ProxyConfig, TlsConfig};
use kube::Client;

use crate::error::{Error, Result};
use crate::labels::hash_of;
use crate::secrets;

/// Where a resource's GitHub settings come from (the fields ARS, ERS, ER and AL share).
#[derive(Debug, Clone, Copy)]
pub struct GitHubSettings<'a> {
    /// Namespace of the secret.
    pub namespace: &'a str,
    /// `githubConfigUrl`.
    pub config_url: &'a str,
    /// `githubConfigSecret`.
    pub secret: &'a str,
    /// `proxy`.
    pub proxy: Option<&'a ProxyConfig>,
    /// `githubServerTLS`.
    pub tls: Option<&'a TlsConfig>,
}

impl<'a> GitHubSettings<'a> {
    /// The settings a runner template carries (EphemeralRunnerSet and EphemeralRunner specs), in `namespace`.
    pub fn of_runner(namespace: &'a str, spec: &'a gha_crds::EphemeralRunnerSpec) -> Self {
        GitHubSettings {
            namespace,
            config_url: &spec.github_config_url,
            secret: &spec.github_config_secret,
            proxy: spec.proxy.as_ref(),
            tls: spec.github_server_tls.as_ref(),
        }
    }
}

/// Clients by (namespace, config URL, secret), with the fingerprint of what they were built from and when the
/// secret was last read.
type ClientMap = HashMap<(String, String, String), (String, Instant, Arc<ActionsClient>)>;

/// How long a client is used without reading its secret again (credential rotation is noticed within this).
const RECHECK_AFTER: Duration = Duration::from_secs(60);

/// Secrets' data by (namespace, name), with when it was read.
type SecretMap = HashMap<(String, String), (Instant, Arc<BTreeMap<String, String>>)>;

/// The cache.
#[derive(Default)]
pub struct GitHubClients {
    force_ghes: bool,
    clients: Mutex<ClientMap>,
    secrets: Mutex<SecretMap>,
}

impl GitHubClients {
    /// An empty cache.
    pub fn new(force_ghes: bool) -> Self {
        GitHubClients { force_ghes, clients: Mutex::default(), secrets: Mutex::default() }
    }

    /// The data of the credentials secret `namespace`/`name`, read again when the last read is a minute old
    /// (the scale set, its listener and its runners' clients share one read).
    ///
    /// # Errors
    /// The secret is missing (Invalid) or cannot be read.
    pub async fn secret(&self, kube: &Client, namespace: &str, name: &str) -> Result<Arc<BTreeMap<String, String>>> {
        let key = (namespace.to_string(), name.to_string());
        if let Some((read_at, data)) = self.secrets.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
            && read_at.elapsed() < RECHECK_AFTER
        {
            return Ok(data.clone());
        }
        let data = Arc::new(secrets::read_secret(kube, namespace, name).await?);
        self.secrets.lock().unwrap_or_else(|e| e.into_inner()).insert(key, (Instant::now(), data.clone()));
        Ok(data)
    }

    /// The client for `settings`. The secret (and proxy secrets, CA ConfigMap) is read again after a minute, and
    /// a new client built when it changed.
    ///
    /// # Errors
    /// A missing secret or key, both or neither credential method, a bad URL, proxy or CA.
    pub async fn client(&self, kube: &Client, settings: GitHubSettings<'_>) -> Result<Arc<ActionsClient>> {
        let key = (settings.namespace.to_string(), settings.config_url.to_string(), settings.secret.to_string());
        if let Some((_, read_at, client)) = self.lock().get(&key)
            && read_at.elapsed() < RECHECK_AFTER
        {
            return Ok(client.clone());
        }
        let data = self.secret(kube, settings.namespace, settings.secret).await?;
        let credentials = secrets::credentials(settings.secret, &data)?;
        let proxy = match settings.proxy {
            Some(proxy) => secrets::proxy_env(kube, settings.namespace, proxy).await?,
            None => Default::default(),
        };
        let root_ca =
            match settings.tls.and_then(|t| t.certificate_from.as_ref()).and_then(|c| c.config_map_key_ref.as_ref()) {
                Some(key_ref) => Some(
                    String::from_utf8(
                        secrets::read_config_map_key(kube, settings.namespace, &key_ref.name, &key_ref.key).await?,
                    )
                    .map_err(|_| {
                        Error::Invalid(format!("configmap {} key {} is not PEM text", key_ref.name, key_ref.key))
                    })?,
                ),
                None => None,
            };
        let fingerprint = hash_of(&(settings.config_url, &*data, &proxy, &root_ca));
        if let Some((hash, read_at, client)) = self.lock().get_mut(&key)
            && *hash == fingerprint
        {
            *read_at = Instant::now();
            return Ok(client.clone());
        }
        let mut options = ClientOptions::new(settings.config_url, credentials);
        options.force_ghes = self.force_ghes;
        options.root_ca_pem = root_ca;
        options.proxy = proxy.get("https_proxy").or_else(|| proxy.get("http_proxy")).cloned();
        options.no_proxy = proxy.get("no_proxy").cloned();
        options.user_agent = UserAgent { subsystem: "controller".into(), ..UserAgent::default() };
        let client = Arc::new(ActionsClient::new(options).map_err(|e| Error::Invalid(e.to_string()))?);
        self.lock().insert(key, (fingerprint, Instant::now(), client.clone()));
        Ok(client)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClientMap> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }
}
