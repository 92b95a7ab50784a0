//! How our processes name themselves to the Kubernetes API server: `User-Agent: gha-autoscaler-<component>/<version>`,
//! which audit logs, `apiserver_request_total` and our request-counting benchmarks group requests by.

/// Sets the `User-Agent` of clients built from `config` to `gha-autoscaler-<component>/<version>`.
pub fn identify(config: &mut kube::Config, component: &str) {
    let agent = format!("gha-autoscaler-{component}/{}", env!("CARGO_PKG_VERSION"));
    if let Ok(value) = http::HeaderValue::from_str(&agent) {
        config.headers.retain(|(name, _)| name != http::header::USER_AGENT);
        config.headers.push((http::header::USER_AGENT, value));
    }
}
