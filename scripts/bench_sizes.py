#!/usr/bin/env python3
"""Times quantscope on multi-GB models (the size cases of tests/large_models.rs): how long
`inspect` takes to open and list them from the header, and how fast `quantize` streams through
them, with each run's peak RSS. Files are sparse (header, set_len, a few values), so they cost
no disk; their holes read as zeros from the page cache, so quantize throughput here is the
decode + quantize + metrics cost without disk reads. Figures go to BENCHMARKS.md; tests never
assert times.

Usage: scripts/bench_sizes.py --binary target/release/quantscope [--repeats 5] [--dir DIR]
(scripts/bench_sizes.sh builds the release binary and runs this.)
"""
import argparse
import json
import os
import pathlib
import struct
import subprocess
import tempfile
import time

WIDTH = {"F16": 2, "F32": 4, "F64": 8}
PACK = {"F16": "<e", "F32": "<f", "F64": "<d"}


def sparse_safetensors(path, tensors):
    """tensors: (name, dtype, shape, [(index, value)]); data zero except the listed values."""
    header, offset, begins = {}, 0, []
    for name, dtype, shape, _ in tensors:
        n = 1
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n * WIDTH[dtype]]}
        begins.append(offset)
        offset += n * WIDTH[dtype]
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    start = 8 + len(text)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        f.truncate(start + offset)
        for (name, dtype, shape, values), begin in zip(tensors, begins):
            for index, value in values:
                f.seek(start + begin + index * WIDTH[dtype])
                f.write(struct.pack(PACK[dtype], value))
    return start + offset


def run(binary, args):
    """Wall seconds and peak RSS (bytes) of one child run; raises on a non-zero exit."""
    started = time.perf_counter()
    child = subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    err = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{binary} {' '.join(args)} failed: {err}")
    return seconds, usage.ru_maxrss * 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tmp = pathlib.Path(tmp)
        cases = []

        numel = (1 << 29) + (1 << 16)
        big = tmp / "big.safetensors"
        size = sparse_safetensors(big, [("big", "F32", [8193, 65536], [(0, -3.0), (numel - 1, 5.0)])])
        cases.append(("one F32 tensor of 2^29 + 2^16 values", big, size, numel, numel * 4, True))

        shards = tmp / "sharded"
        shards.mkdir()
        weight_map, total = {}, 0
        for s in range(3):
            file = f"model-{s + 1:05}-of-00003.safetensors"
            names = [f"layers.{s}.w{t}" for t in range(2)]
            total += sparse_safetensors(
                shards / file,
                [(n, "F64", [8192, 8192], [(0, -1.0), ((1 << 26) - 1, 2.0)]) for n in names])
            weight_map.update({n: file for n in names})
        (shards / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
        cases.append(("3 shards x 2 F64 tensors of 2^26 values", shards, total, 6 << 26, (1 << 26) * 4, True))

        huge = tmp / "huge.safetensors"
        size = sparse_safetensors(huge, [(f"blk.{i}.ffn", "F16", [20000, 25000], []) for i in range(30)])
        cases.append(("30 F16 tensors of 5e8 values (30 GB)", huge, size, 30 * 500_000_000, 0, False))

        print("| model | stored | inspect (open + list) best of %d | peak RSS | quantize | stored GB/s | Melem/s | peak RSS | bound (f32 copy + 300 MB) |" % args.repeats)
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for label, path, stored, elements, f32_copy, quantize in cases:
            opens = [run(args.binary, ["inspect", "--json", str(path)]) for _ in range(args.repeats)]
            open_s = min(t for t, _ in opens)
            open_rss = max(r for _, r in opens)
            row = f"| {label} | {stored / 1e9:.2f} GB | {open_s * 1e3:.1f} ms | {open_rss / 2**20:.0f} MiB |"
            if quantize:
                q_s, q_rss = run(args.binary, ["quantize", "--json", str(path)])
                row += (f" {q_s:.2f} s | {stored / q_s / 1e9:.2f} | {elements / q_s / 1e6:.0f} |"
                        f" {q_rss / 2**20:.0f} MiB | {(f32_copy + 300e6) / 2**20:.0f} MiB |")
            else:
                row += " - | - | - | - | - |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
