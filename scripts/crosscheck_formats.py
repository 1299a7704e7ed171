#!/usr/bin/env python3
"""Cross-checks quantscope's GGUF quantizers against ggml's C on a real model, byte for byte,
and times both.

For every f32 tensor of a safetensors model (all-MiniLM-L6-v2 by default; 1-D tensors as one
row), every GGUF type whose block divides the row, without an importance matrix and with a
synthetic one (the column mean squares of the weights, one per input column), it runs:
  - ggml 0.20.2's `ggml_quantize_chunk` from the libggml-python wheel (ctypes, one thread,
    the whole tensor in one call, as llama-quantize with one thread), timed;
  - quantscope's port, through `cargo bench --bench gguf_formats` with QS_GGUF_DIR set (it
    writes its blocks and its timings: one thread, parallel encode, the whole quantize_format
    pass), built in release;
then reports per type how many tensors and how many blocks are byte-identical, and with
--speed a Markdown table of the times (the BENCHMARKS.md section). Exit status 1 if any byte
differs.

Usage: /work/venv/bin/python scripts/crosscheck_formats.py [--model M.safetensors]
           [--work DIR] [--repeat N] [--speed] [--skip-rust]
When /work/cargo.lock exists (this machine's one-build-at-a-time lock), the script holds it for
the whole run, so that no build competes with the timed runs.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from gguf_reference_fixtures import TYPES, ggml_quantize, load_ggml  # noqa: E402

# Elements and bytes per block of each type (ggml-common.h).
LAYOUT = {
    "q8_0": (32, 34),
    "q4_0": (32, 18),
    "q4_1": (32, 20),
    "q5_0": (32, 22),
    "q5_1": (32, 24),
    "q2_k": (256, 84),
    "q3_k": (256, 110),
    "q4_k": (256, 144),
    "q5_k": (256, 176),
    "q6_k": (256, 210),
    "iq4_nl": (32, 18),
    "gguf_mxfp4": (32, 17),
    "gguf_nvfp4": (64, 36),
}
DEFAULT_MODEL = Path("/work/models/minilm/hf/model.safetensors")


def read_f32_tensors(path: Path) -> dict[str, np.ndarray]:
    """Every F32 tensor of a safetensors file, as 2-D [rows, last axis] arrays."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, info in sorted(header.items()):
            if name == "__metadata__" or info["dtype"] != "F32":
                continue
            begin, end = info["data_offsets"]
            f.seek(base + begin)
            arr = np.frombuffer(f.read(end - begin), dtype="<f4")
            shape = info["shape"] or [1]
            out[name] = arr.reshape(-1, shape[-1])
    return out


def prepare(work: Path, tensors: dict[str, np.ndarray], repeat: int) -> None:
    (work / "x").mkdir(parents=True, exist_ok=True)
    (work / "w").mkdir(exist_ok=True)
    listing = []
    for name, x in tensors.items():
        x.astype("<f4").tofile(work / "x" / f"{name}.f32")
        # The synthetic importance matrix: each input column's mean square.
        w = np.mean(x.astype(np.float64) ** 2, axis=0).astype(np.float32)
        w.astype("<f4").tofile(work / "w" / f"{name}.f32")
        listing.append({"name": name, "rows": x.shape[0], "cols": x.shape[1], "file": f"x/{name}.f32", "imatrix": f"w/{name}.f32"})
    spec = {"tensors": listing, "formats": list(TYPES), "repeat": repeat}
    (work / "inputs.json").write_text(json.dumps(spec, indent=1))


def run_ggml(work: Path, tensors: dict[str, np.ndarray], repeat: int) -> dict[tuple[str, str, str], float]:
    """ggml's blocks into work/ggml, and its best single-thread time per (tensor, type, mode)."""
    lib = load_ggml()
    (work / "ggml").mkdir(exist_ok=True)
    times = {}
    for fmt, (type_id, _uses) in TYPES.items():
        block = LAYOUT[fmt][0]
        for mode in ["none", "imatrix"]:
            for name, x in tensors.items():
                if x.shape[1] % block:
                    continue
                w = None
                if mode == "imatrix":
                    w = np.fromfile(work / "w" / f"{name}.f32", dtype="<f4")
                best = float("inf")
                for _ in range(repeat):
                    start = time.perf_counter()
                    blocks = ggml_quantize(lib, type_id, x, w)
                    best = min(best, (time.perf_counter() - start) * 1e3)
                (work / "ggml" / f"{name}.{fmt}.{mode}.bin").write_bytes(blocks)
                times[(name, fmt, mode)] = best
        print(f"ggml {fmt}: done", flush=True)
    return times


def run_rust(work: Path) -> None:
    cmd = ["cargo", "bench", "--no-default-features", "--bench", "gguf_formats"]
    env = dict(os.environ, QS_GGUF_DIR=str(work))
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)


def compare(work: Path, tensors: dict[str, np.ndarray]) -> bool:
    print("\n## Byte agreement with ggml 0.20.2 (ggml_quantize_chunk)\n")
    print("| type | imatrix | tensors identical | blocks identical | not applicable (row % block) |")
    print("|---|---|---|---|---|")
    all_ok = True
    for fmt in TYPES:
        block, size = LAYOUT[fmt]
        for mode in ["none", "imatrix"]:
            t_same = t_total = b_same = b_total = skipped = 0
            first_bad = None
            for name, x in tensors.items():
                if x.shape[1] % block:
                    skipped += 1
                    continue
                theirs = np.fromfile(work / "ggml" / f"{name}.{fmt}.{mode}.bin", dtype=np.uint8)
                ours_path = work / "rust" / f"{name}.{fmt}.{mode}.bin"
                ours = np.fromfile(ours_path, dtype=np.uint8) if ours_path.exists() else np.zeros(0, np.uint8)
                t_total += 1
                n_blocks = theirs.size // size
                b_total += n_blocks
                if ours.size != theirs.size:
                    first_bad = first_bad or f"{name}: {ours.size} bytes vs {theirs.size}"
                    continue
                same = np.all(ours.reshape(n_blocks, size) == theirs.reshape(n_blocks, size), axis=1)
                b_same += int(same.sum())
                if same.all():
                    t_same += 1
                elif first_bad is None:
                    first_bad = f"{name} block {int(np.argmin(same))}"
            ok = t_same == t_total
            all_ok &= ok
            print(f"| {fmt} | {'yes' if mode == 'imatrix' else 'no'} | {t_same}/{t_total} | {b_same}/{b_total} | {skipped} |" + ("" if ok else f" FIRST DIFFERENCE {first_bad}"))
    return all_ok


def speed_table(work: Path, tensors: dict[str, np.ndarray], ggml_ms: dict) -> None:
    timings = json.loads((work / "rust" / "timings.json").read_text())
    ours = {(t["tensor"], t["format"], t["mode"]): t for t in timings}
    print("\n## Speed: ggml C (1 thread) vs quantscope (1 thread; parallel encode; quantize_format), all applicable tensors\n")
    print(f"{os.cpu_count()} hardware threads. Times are the sum over the tensors of the best of the repeats, in ms; M/s = million elements per second.\n")
    print("| type | imatrix | elements | ggml 1 thread ms (M/s) | ours 1 thread ms (M/s) | ours / ggml (1 thread) | ours parallel encode ms | quantize_format ms |")
    print("|---|---|---|---|---|---|---|---|")
    for fmt in TYPES:
        uses = TYPES[fmt][1]
        for mode in ["none", "imatrix"]:
            if mode == "imatrix" and not uses:
                continue
            keys = [(n, fmt, mode) for n in tensors if (n, fmt, mode) in ggml_ms and (n, fmt, mode) in ours]
            if not keys:
                continue
            elements = sum(ours[k]["elements"] for k in keys)
            g = sum(ggml_ms[k] for k in keys)
            s = sum(ours[k]["single_ms"] for k in keys)
            p = sum(ours[k]["parallel_encode_ms"] for k in keys)
            q = sum(ours[k]["quantize_format_ms"] for k in keys)
            rate = lambda ms: elements / ms / 1e3  # noqa: E731 - million elements per second
            print(f"| {fmt} | {'yes' if mode == 'imatrix' else 'no'} | {elements} | {g:.1f} ({rate(g):.1f}) | {s:.1f} ({rate(s):.1f}) | {g / s:.2f}× faster | {p:.1f} | {q:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--work", type=Path, default=None, help="working directory (default: a temporary one)")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per (tensor, type, mode); the best counts")
    parser.add_argument("--speed", action="store_true", help="print the speed table")
    parser.add_argument("--skip-rust", action="store_true", help="reuse WORK/rust from an earlier run")
    args = parser.parse_args()
    lock_path = Path("/work/cargo.lock")
    if lock_path.exists():
        lock = open(lock_path, "a")  # noqa: SIM115 - held until the process exits
        print(f"waiting for {lock_path} ...", flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)
    tensors = read_f32_tensors(args.model)
    print(f"{args.model}: {len(tensors)} f32 tensors, {sum(x.size for x in tensors.values())} elements")
    with tempfile.TemporaryDirectory(prefix="qs-gguf-") as tmp:
        work = args.work or Path(tmp)
        prepare(work, tensors, args.repeat)
        ggml_ms = run_ggml(work, tensors, args.repeat)
        if not args.skip_rust:
            run_rust(work)
        ok = compare(work, tensors)
        if args.speed:
            speed_table(work, tensors, ggml_ms)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
