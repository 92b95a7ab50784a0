//! Metrics through the host. The host prefixes names with `gha_policy_guest_`, adds the scale-set label and caps
//! the number of series per policy. Natively they are captured by [`crate::testing`].

/// Adds `value` to a counter.
pub fn counter_add(name: &str, value: u64, labels: &[(&str, &str)]) {
    #[cfg(target_arch = "wasm32")]
    {
        let labels: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        crate::wit::shared::metrics::counter_add(name, value, &labels);
    }
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::capture_metric(name, value as f64, labels);
}

/// Sets a gauge.
pub fn gauge_set(name: &str, value: f64, labels: &[(&str, &str)]) {
    #[cfg(target_arch = "wasm32")]
    {
        let labels: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        crate::wit::shared::metrics::gauge_set(name, value, &labels);
    }
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::capture_metric(name, value, labels);
}
