#!/usr/bin/env bash
# Speed and reference checks against numpy / PyTorch / ONNX Runtime / ml_dtypes, in one venv.
#
# Usage (from anywhere inside the repository):
#   scripts/bench.sh [ARGS...]                     quantscope vs numpy, PyTorch, memcpy (bench_vs_numpy.py)
#   scripts/bench.sh crosscheck MODEL.safetensors  codes/scales/values vs the reference libraries
#
# It creates a venv in target/bench-venv (or $BENCH_VENV), installs numpy and PyTorch (CPU is
# enough; plain `pip install torch` pulls the CUDA wheels, which is slow but works) plus, for the
# cross-check, onnxruntime, onnx, ml-dtypes and gguf. PyTorch is optional: if it does not install
# or import, the scripts report without it (BENCH_NO_TORCH=1 skips installing it). Then it
# builds the release CLI binary and runs the script. Builds and timed runs hold $QS_CARGO_LOCK
# so that no other cargo build on this machine competes for the CPU while we measure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

VENV=${BENCH_VENV:-$ROOT/target/bench-venv}
PY=$VENV/bin/python
# The machine-wide build lock (QS_CARGO_LOCK, default /tmp/qs-cargo.lock) and cargo's target dir.
LOCK=${QS_CARGO_LOCK:-/tmp/qs-cargo.lock}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/quantscope

if [[ ! -x $PY ]]; then
    echo "== creating venv $VENV"
    python3 -m venv "$VENV"
    "$PY" -m pip install --quiet --upgrade pip
fi

# Install only what is missing (a re-run does not touch the network).
need=()
for spec in numpy:numpy onnxruntime:onnxruntime onnx:onnx ml_dtypes:ml-dtypes gguf:gguf; do
    module=${spec%%:*}
    package=${spec#*:}
    "$PY" -c "import $module" 2>/dev/null || need+=("$package")
done
if ((${#need[@]})); then
    echo "== pip install ${need[*]}"
    "$PY" -m pip install --quiet "${need[@]}" || echo "warning: pip install ${need[*]} failed; the scripts skip what does not import"
fi
if [[ -z ${BENCH_NO_TORCH:-} ]] && ! "$PY" -c "import torch" 2>/dev/null; then
    echo "== pip install torch (large download; optional)"
    "$PY" -m pip install --quiet torch || echo "warning: PyTorch did not install; reporting without it"
fi

# The CLI build: the kernels are the same with the GUI, and it builds much faster.
echo "== cargo build --release --no-default-features"
flock "$LOCK" cargo build --release --no-default-features

case "${1:-}" in
crosscheck)
    shift
    exec flock "$LOCK" "$PY" scripts/crosscheck.py --binary "$BIN" "$@"
    ;;
*)
    exec flock "$LOCK" "$PY" scripts/bench_vs_numpy.py --binary "$BIN" "$@"
    ;;
esac
