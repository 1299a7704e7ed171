#!/usr/bin/env bash
# Size benchmarks (BENCHMARKS.md, "Size"): builds the release CLI and times opening, listing and
# quantizing multi-GB sparse models with scripts/bench_sizes.py (Python 3 standard library only).
# Usage: scripts/bench_sizes.sh [--repeats N] [--dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=/work/cargo.lock
[[ -e $LOCK ]] || LOCK=/tmp/qs-cargo.lock
echo "== cargo build --release --no-default-features"
flock "$LOCK" cargo build --release --no-default-features
BIN=${CARGO_TARGET_DIR:-target}/release/quantscope
exec flock "$LOCK" python3 scripts/bench_sizes.py --binary "$BIN" "$@"
