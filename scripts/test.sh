#!/usr/bin/env bash
# The README's test command: every test, including the UI snapshot tests (software Vulkan).
set -euo pipefail
cd "$(dirname "$0")/.."
# Snapshot tests render with wgpu on Mesa's lavapipe (no GPU needed).
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
cargo test --all-features --no-fail-fast
