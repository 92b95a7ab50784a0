//! Policies shipped inside the binary, built from `policies/` by `build.rs`.

/// Name and component bytes of every built-in policy.
pub const BUILT_IN_POLICIES: &[(&str, &[u8])] = &[
    ("arc-default", include_bytes!(concat!(env!("OUT_DIR"), "/arc_default.wasm"))),
    ("warm-pool", include_bytes!(concat!(env!("OUT_DIR"), "/warm_pool.wasm"))),
    ("predictive", include_bytes!(concat!(env!("OUT_DIR"), "/predictive.wasm"))),
    ("pod-shaper", include_bytes!(concat!(env!("OUT_DIR"), "/pod_shaper.wasm"))),
];

/// The component of a built-in policy.
pub fn built_in(name: &str) -> Option<&'static [u8]> {
    BUILT_IN_POLICIES.iter().find(|(n, _)| *n == name).map(|(_, bytes)| *bytes)
}
