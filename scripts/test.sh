#!/usr/bin/env bash
# The README's test command: every test, including the UI snapshot tests (software Vulkan).
set -euo pipefail
cd "$(dirname "$0")/.."
# Snapshot tests render with wgpu on Mesa's lavapipe (no GPU needed).
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
# wgpu's Vulkan loader wants a runtime directory; CI and fresh shells may have none.
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "${XDG_RUNTIME_DIR}" ]; then
  XDG_RUNTIME_DIR="$(mktemp -d)"
  export XDG_RUNTIME_DIR
fi
log="$(mktemp)"
status=0
# Library, binary and integration tests (there are no doc tests); the summary line totals them.
cargo test --all-features --no-fail-fast --lib --bins --tests 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "total: %d passed, %d failed\n", passed, failed }' "$log"
rm -f "$log"
exit "$status"
