//! Types shared by the four CRDs, with ARC's field names.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Secret holding `username` and `password`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyServerConfig {
    /// Proxy URL.
    pub url: Option<String>,
    /// Secret with `username` and `password` keys.
    pub credential_secret_ref: Option<String>,
}

/// Proxy for the controller's client, the listener and the runners.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyConfig {
    /// Proxy for http URLs.
    pub http: Option<ProxyServerConfig>,
    /// Proxy for https URLs.
    pub https: Option<ProxyServerConfig>,
    /// Hosts that bypass the proxy.
    pub no_proxy: Option<Vec<String>>,
}

/// A key of a ConfigMap (Kubernetes' ConfigMapKeySelector).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigMapKeyRef {
    /// ConfigMap name.
    #[serde(default)]
    pub name: String,
    /// Key.
    pub key: String,
    /// Whether the ConfigMap or its key may be missing.
    pub optional: Option<bool>,
}

/// Where an extra root CA comes from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsCertificateSource {
    /// A ConfigMap key holding PEM certificates.
    pub config_map_key_ref: Option<ConfigMapKeyRef>,
}

/// TLS settings for GitHub Enterprise Server with a private CA.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsConfig {
    /// Extra root CA, added to the system pool.
    pub certificate_from: Option<TlsCertificateSource>,
}

/// Azure Key Vault settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs, reason = "ARC's field names")]
pub struct AzureKeyVaultConfig {
    pub url: String,
    pub tenant_id: String,
    pub client_id: String,
    pub certificate_path: String,
}

/// Where the GitHub credentials come from when not from a Secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultConfig {
    /// `azure_key_vault`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Azure Key Vault settings.
    pub azure_key_vault: Option<AzureKeyVaultConfig>,
    /// Proxy for the vault.
    pub proxy: Option<ProxyConfig>,
}

/// Labels and annotations for an object the controller creates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceMeta {
    /// Labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations.
    pub annotations: Option<BTreeMap<String, String>>,
}

/// One listener metric's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricSettings {
    /// Labels to attach.
    pub labels: Option<Vec<String>>,
    /// Histogram buckets.
    pub buckets: Option<Vec<f64>>,
}

/// Which listener metrics to expose.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricsConfig {
    /// Counters by name.
    pub counters: Option<BTreeMap<String, MetricSettings>>,
    /// Gauges by name.
    pub gauges: Option<BTreeMap<String, MetricSettings>>,
    /// Histograms by name.
    pub histograms: Option<BTreeMap<String, MetricSettings>>,
}
