//! Builds the shipped policies and the test fixtures for `wasm32-unknown-unknown` and turns each core module into
//! a pure component (no WASI imports) in `OUT_DIR`, where `src/builtin.rs` embeds them.
//!
//! The nested cargo uses its own target directory (`<target>/policy-build`), shared by every profile, so the
//! policies build once per change and never contend with the outer build's lock.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Workspace packages built to components: (package, file stem).
const COMPONENTS: &[(&str, &str)] = &[
    ("arc-default", "arc_default"),
    ("warm-pool", "warm_pool"),
    ("predictive", "predictive"),
    ("pod-shaper", "pod_shaper"),
    ("misbehaving-policy", "misbehaving_policy"),
];

/// Variables the outer cargo sets for build scripts that must not leak into the nested wasm build.
const SCRUBBED_ENV: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_LLVM_COV",
    "CARGO_PRIMARY_PACKAGE",
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.join("../..").canonicalize().expect("workspace root");
    for watched in ["wit", "guest-sdk", "policies", "host/policy-engine/fixtures", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_root = env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let wasm_target_dir = target_root.join("policy-build");

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--target", "wasm32-unknown-unknown", "--profile", "policy", "--target-dir"])
        .arg(&wasm_target_dir);
    for (package, _) in COMPONENTS {
        cmd.args(["-p", package]);
    }
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("failed to run cargo for the wasm policies");
    if !status.success() {
        panic!(
            "building the policies for wasm32-unknown-unknown failed ({status}); if the target is missing, run \
             `rustup target add wasm32-unknown-unknown`"
        );
    }

    let modules = wasm_target_dir.join("wasm32-unknown-unknown/policy");
    for (_, stem) in COMPONENTS {
        componentize(&modules.join(format!("{stem}.wasm")), &out_dir.join(format!("{stem}.wasm")));
    }
}

fn componentize(module: &Path, component: &Path) {
    let bytes = std::fs::read(module).unwrap_or_else(|e| panic!("read {}: {e}", module.display()));
    let encoded = wit_component::ComponentEncoder::default()
        .module(&bytes)
        .and_then(|encoder| encoder.validate(true).encode())
        .unwrap_or_else(|e| panic!("componentize {}: {e:#}", module.display()));
    std::fs::write(component, encoded).unwrap_or_else(|e| panic!("write {}: {e}", component.display()));
}
