#!/usr/bin/env bash
# Builds app.py into policy.wasm with componentize-py (pinned), in a local virtualenv.
set -euo pipefail
cd "$(dirname "$0")"
[ -x venv/bin/componentize-py ] || { python3 -m venv venv && venv/bin/pip install -q componentize-py==0.25.1; }
venv/bin/componentize-py -d wit -w scaling-policy componentize app -o policy.wasm
echo "wrote policy.wasm ($(wc -c < policy.wasm) bytes)"
