#!/usr/bin/env bash
# Builds the policy into policy.wasm: cargo for wasm32-unknown-unknown, then `gha-autoscaler policy componentize`.
set -euo pipefail
cd "$(dirname "$0")"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
cargo build --quiet --target wasm32-unknown-unknown --profile policy
gha-autoscaler policy componentize "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/policy/{{crate}}.wasm" -o policy.wasm
