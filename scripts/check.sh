#!/usr/bin/env bash
# What CI runs, in order: format, lints, docs, the layering rule, the tests.
# Usage: scripts/check.sh   (from anywhere inside the repository)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (all targets, all features, -D warnings)"
cargo clippy --all-targets --all-features -- -D warnings

echo "== cargo clippy (CLI alone, --no-default-features)"
cargo clippy --lib --bins --no-default-features -- -D warnings

echo "== cargo doc (no warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features

echo "== tests"
scripts/test.sh
