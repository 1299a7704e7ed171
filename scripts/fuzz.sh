#!/usr/bin/env bash
# The fuzz campaign (FUZZING.md): build the cargo-fuzz targets, run each for N executions or T
# seconds with the limits the project promises, then minimize the corpus back into
# fuzz/corpus/<target>/ (committed and replayed on stable by tests/fuzz_replay.rs).
#
# Usage (from anywhere inside the repository):
#   scripts/fuzz.sh [--runs N] [--time SECONDS] [--no-cmin] [TARGET...]
#       --runs N        executions per target (default 2000000; the promise is >= 10^6)
#       --time SECONDS  run each target for this long instead of a fixed number of executions
#       --no-cmin       leave fuzz/corpus/ as it is (a quick local run)
#       TARGET          any of: safetensors sharded_index gguf npy npz bits_value imatrix
#                       recipe (default: all)
#
# Needs the nightly toolchain (`rustup toolchain install nightly`) and cargo-fuzz
# (`cargo install cargo-fuzz`). Seeds: if /work/venv or $FUZZ_PYTHON has numpy and gguf,
# scripts/fuzz_seeds.py rewrites the committed seed files in fuzz/seeds/ first (it is
# deterministic: a clean run leaves them unchanged; the recipe seeds need a quantscope binary,
# $QUANTSCOPE_BIN or one under $CARGO_TARGET_DIR or target/). The build goes to $FUZZ_TARGET_DIR
# (default fuzz/target) under the global cargo lock; the fuzzing itself runs outside it.
#
# Limits on every run: no input may take over 1 s (-timeout=1), allocate over 1 GiB in one
# malloc (-malloc_limit_mb=1024, enforced through AddressSanitizer's allocator hooks, which
# cargo-fuzz enables by default) or grow the process past 1 GiB (-rss_limit_mb=1024). Findings
# land in fuzz/artifacts/<target>/ (crash-*, oom-*, timeout-*, slow-unit-*); once fixed, copy each
# to fuzz/regressions/<target>/ so the replay test keeps it fixed, and record it in FUZZING.md.
#
# The per-target summary (executions, seconds, corpus size, findings) is appended to
# fuzz/campaign.log (not committed) and printed at the end.
#
# The sharded_index target writes a small folder per input; temporary files go to /dev/shm
# (TMPDIR, when writable) so the run measures the loader, not the disk (~600 executions/s on
# disk, several thousand on tmpfs).
#
# The imatrix target writes each input to a temporary file too (read_imatrix takes a path).
#
# A new reader gets one entry point in src/fuzzing.rs, a target in fuzz/fuzz_targets/ and
# fuzz/Cargo.toml, seeds in scripts/fuzz_seeds.py, a replay test in tests/fuzz_replay.rs, and
# its name in ALL_TARGETS below.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

ALL_TARGETS=(safetensors sharded_index gguf npy npz bits_value imatrix recipe)
RUNS=2000000
TIME=""
CMIN=1
targets=()
while (($#)); do
    case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --time) TIME=$2; shift 2 ;;
    --no-cmin) CMIN=0; shift ;;
    -h | --help) sed -n '2,38p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
    esac
done
((${#targets[@]})) || targets=("${ALL_TARGETS[@]}")

# Inputs the size of real headers are enough to reach every check; bigger ones only slow the
# search. GGUF and npz seeds are a few hundred bytes to a few KiB.
max_len() {
    case "$1" in
    gguf | npz | imatrix | recipe) echo 16384 ;;
    bits_value) echo 256 ;;
    *) echo 8192 ;;
    esac
}

LIMITS=(-timeout=1 -malloc_limit_mb=1024 -rss_limit_mb=1024)
[[ -w /dev/shm ]] && export TMPDIR=${FUZZ_TMPDIR:-/dev/shm}

LOCK=/work/cargo.lock
[[ -e $LOCK ]] || LOCK=/tmp/qs-cargo.lock
TARGET_DIR=${FUZZ_TARGET_DIR:-$ROOT/fuzz/target}

PYTHON=${FUZZ_PYTHON:-/work/venv/bin/python}
if [[ -x $PYTHON ]] && "$PYTHON" -c "import numpy, gguf" 2>/dev/null; then
    echo "== seeds (scripts/fuzz_seeds.py)"
    "$PYTHON" scripts/fuzz_seeds.py fuzz/seeds
else
    echo "== no Python with numpy and gguf: fuzzing from the committed seeds and corpus"
fi

echo "== cargo +nightly fuzz build (every target)"
(cd fuzz && flock "$LOCK" cargo +nightly fuzz build --target-dir "$TARGET_DIR")
BIN_DIR=$TARGET_DIR/$(rustc +nightly -vV | sed -n 's/^host: //p')/release

summary=()
for target in "${targets[@]}"; do
    work=fuzz/corpus-work/$target
    artifacts=fuzz/artifacts/$target
    rm -rf "$work"
    mkdir -p "$work" "$artifacts" "fuzz/corpus/$target"
    cp -r "fuzz/corpus/$target/." "$work/" 2>/dev/null || true
    [[ -d fuzz/seeds/$target ]] && cp -r "fuzz/seeds/$target/." "$work/"
    [[ -d fuzz/regressions/$target ]] && cp -r "fuzz/regressions/$target/." "$work/"
    dict=()
    [[ -f fuzz/dicts/$target.dict ]] && dict=("-dict=fuzz/dicts/$target.dict")
    if [[ -n $TIME ]]; then
        budget=("-max_total_time=$TIME")
    else
        budget=("-runs=$RUNS")
    fi
    log=fuzz/artifacts/$target.log
    echo "== fuzz $target (${budget[*]})"
    start=$(date +%s)
    status=0
    "$BIN_DIR/$target" "$work" "${dict[@]}" "${budget[@]}" \
        "${LIMITS[@]}" -max_len="$(max_len "$target")" \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1 || status=$?
    seconds=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    findings=$(find "$artifacts" -type f | wc -l)
    if ((status != 0)); then
        echo "   $target stopped with status $status (a finding): see $log and $artifacts/"
        tail -30 "$log"
    fi
    if ((CMIN)); then
        # Merge into a fresh folder that starts with the seeds and regressions (committed on
        # their own), so it gains only the inputs that add coverage beyond them; then drop
        # those again and keep the rest as the new corpus.
        fresh=fuzz/corpus-new/$target
        rm -rf "$fresh"
        mkdir -p "$fresh"
        known=()
        for dir in "fuzz/seeds/$target" "fuzz/regressions/$target"; do
            [[ -d $dir ]] || continue
            cp -r "$dir/." "$fresh/"
            for f in "$dir"/*; do [[ -f $f ]] && known+=("$(basename "$f")"); done
        done
        "$BIN_DIR/$target" -merge=1 "$fresh" "$work" "${LIMITS[@]}" \
            -max_len="$(max_len "$target")" >"$log.cmin" 2>&1
        for name in "${known[@]}"; do rm -f "$fresh/$name"; done
        rm -rf "fuzz/corpus/$target"
        mv "$fresh" "fuzz/corpus/$target"
    fi
    files=$(find "fuzz/corpus/$target" -type f | wc -l)
    bytes=$(find "fuzz/corpus/$target" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
    line="$target: ${execs:-?} executions in ${seconds} s, exit status $status, $findings artifact(s), corpus $files files / ${bytes} bytes"
    echo "   $line"
    echo "$(date -u +%FT%TZ) $line" >>fuzz/campaign.log
    summary+=("$line")
done
rm -rf fuzz/corpus-work fuzz/corpus-new

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
