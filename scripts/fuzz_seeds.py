#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz campaign into fuzz/seeds/<target>/ (one small valid file
per dtype, block type and layout), written by the reference writers where they exist (numpy for
.npy/.npz, the gguf package's GGUFWriter for GGUF and imatrix GGUF, quantscope's own
`plan --out` for recipes) and by hand where they do not (safetensors dtypes numpy lacks, the
legacy imatrix.dat layout of llama.cpp's tools/imatrix/imatrix.cpp). The seeds are committed (deterministic output: rerunning this script leaves
them unchanged) and replayed by tests/fuzz_replay.rs; scripts/fuzz.sh starts every run from them
and keeps in fuzz/corpus/<target>/ only the inputs that add coverage beyond them.

Usage: /work/venv/bin/python scripts/fuzz_seeds.py [OUT_DIR]   (needs numpy and gguf)

The recipe seeds need a built quantscope binary: $QUANTSCOPE_BIN, else quantscope under
$CARGO_TARGET_DIR or target/ (release, then debug). Without one, the committed recipe seeds are
left as they are.
"""
import io
import json
import os
import pathlib
import struct
import subprocess
import sys
import tempfile

import numpy as np
import gguf

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fuzz" / "seeds"
RNG = np.random.default_rng(13)


def put(target, name, data):
    folder = OUT / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def safetensors_bytes(entries, metadata=None):
    """entries: (name, dtype, shape, raw bytes), packed back to back in the given order."""
    header = {}
    offset = 0
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(e[3] for e in entries)


def safetensors_seeds():
    sizes = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "I32": 4, "U32": 4, "I64": 8,
             "U64": 8, "F16": 2, "BF16": 2, "F32": 4, "F64": 8, "F8_E4M3": 1, "F8_E5M2": 1,
             "F8_E8M0": 1}
    for dtype, width in sizes.items():
        raw = RNG.integers(0, 256, size=6 * width, dtype=np.uint8).tobytes()
        put("safetensors", f"{dtype.lower()}.safetensors", safetensors_bytes([("w", dtype, (2, 3), raw)]))
    # Packed sub-byte formats: 8 elements of F4 in 4 bytes, 4 of F6 in 3 bytes.
    put("safetensors", "f4.safetensors", safetensors_bytes([("w", "F4", (2, 4), bytes([0x71, 0x2F, 0x88, 0x07]))]))
    put("safetensors", "f6.safetensors", safetensors_bytes([("w", "F6_E2M3", (4,), bytes([1, 2, 3]))]))
    f32 = np.array([1.0, -2.5, 0.0, 3.5], dtype="<f4").tobytes()
    put("safetensors", "two_and_metadata.safetensors", safetensors_bytes(
        [("a.weight", "F32", (2, 2), f32), ("a.bias", "F16", (2,), np.array([1, -1], "<f2").tobytes())],
        metadata={"format": "pt", "note": "seed"}))
    put("safetensors", "scalar_and_empty.safetensors", safetensors_bytes(
        [("s", "F32", (), f32[:4]), ("e", "F32", (0, 3), b"")]))
    put("safetensors", "empty_header.safetensors", safetensors_bytes([]))


def gguf_file(build, arch="llama"):
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "seed.gguf"
        w = gguf.GGUFWriter(str(path), arch=arch)
        build(w)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path.read_bytes()


def gguf_seeds():
    plain = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I8": "|i1", "I16": "<i2", "I32": "<i4",
             "I64": "<i8", "BF16": "<u2"}
    for qtype in gguf.GGMLQuantizationType:
        block, type_size = gguf.GGML_QUANT_SIZES[qtype]
        if block == 1:
            raw = RNG.integers(-100, 100, size=(2, 4)).astype(plain[qtype.name])
        else:
            # Raw quantized data is given as bytes, shaped [rows, bytes per row]; gguf-py turns
            # it into the element shape with its own block table (which says 40 bytes for
            # Q8_1 where ggml says 36: that seed then simply has padding after its tensor).
            raw = RNG.integers(0, 256, size=(1, 2 * type_size), dtype=np.uint8)

        def build(w, qtype=qtype, raw=raw):
            w.add_tensor("t", raw, raw_dtype=qtype)
            w.add_uint32("seed.u32", 7)

        put("gguf", f"{qtype.name.lower()}.gguf", gguf_file(build))

    def metadata(w):
        w.add_uint8("k.u8", 200)
        w.add_int8("k.i8", -3)
        w.add_uint16("k.u16", 60000)
        w.add_int16("k.i16", -300)
        w.add_int32("k.i32", -70000)
        w.add_float32("k.f32", 0.5)
        w.add_bool("k.bool", True)
        w.add_string("k.str", "héllo")
        w.add_array("k.arr_i32", list(range(20)))
        w.add_array("k.arr_str", ["a", "bb", "ccc"])
        w.add_uint64("k.u64", 2**40)
        w.add_int64("k.i64", -(2**40))
        w.add_float64("k.f64", 1e-300)
        w.add_uint32("general.alignment", 64)
        w.add_tensor("w", np.arange(6, dtype=np.float32).reshape(2, 3))
        w.add_tensor("h", np.array([1.0, -2.0], dtype=np.float16))

    put("gguf", "metadata_kinds.gguf", gguf_file(metadata))


def npy_bytes(array, version=None, fortran=False):
    buf = io.BytesIO()
    array = np.asfortranarray(array) if fortran else array
    if version is None:
        np.save(buf, array)
    else:
        np.lib.format.write_array(buf, array, version=version)
    return buf.getvalue()


def npy_seeds():
    base = np.array([[1.5, -2.0, 0.0], [3.25, 65504.0, -1e-3]])
    for descr in ["<f2", "<f4", "<f8", ">f4", "|i1", "<i2", "<i4", ">i8", "|u1", "<u2", "<u4", "<u8", "|b1"]:
        arr = base.astype(np.dtype(descr)) if descr != "|b1" else base > 0
        put("npy", f"{descr.replace('<', 'le_').replace('>', 'be_').replace('|', 'na_')}.npy", npy_bytes(arr))
    put("npy", "fortran.npy", npy_bytes(np.arange(24, dtype="<f4").reshape(2, 3, 4), fortran=True))
    put("npy", "scalar.npy", npy_bytes(np.float32(2.5)))
    put("npy", "empty.npy", npy_bytes(np.zeros((0, 4), dtype="<f4")))
    put("npy", "v2.npy", npy_bytes(base.astype("<f4"), version=(2, 0)))
    put("npy", "v3.npy", npy_bytes(base.astype("<f4"), version=(3, 0)))


def npz_seeds():
    a = np.arange(6, dtype="<f4").reshape(2, 3)
    b = np.array([1, -1, 7], dtype=">i2")
    for name, save in [("stored.npz", np.savez), ("deflated.npz", np.savez_compressed)]:
        buf = io.BytesIO()
        save(buf, a=a, b=b, f=np.asfortranarray(a))
        put("npz", name, buf.getvalue())


def index_seeds():
    shard2 = safetensors_bytes([("c", "F16", (2,), np.array([0.5, -4], "<f2").tobytes())])
    both = {"metadata": {"total_size": 16},
            "weight_map": {"a": "model-00001-of-00002.safetensors",
                           "b": "model-00001-of-00002.safetensors",
                           "c": "model-00002-of-00002.safetensors"}}
    put("sharded_index", "two_shards", json.dumps(both).encode() + b"\0" + shard2)
    one = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors"}}
    put("sharded_index", "one_shard", json.dumps(one).encode())
    put("sharded_index", "escape", json.dumps({"weight_map": {"a": "../x.safetensors"}}).encode())


def bits_seeds():
    for i, text in enumerate(["1.0", "0x3c00", "-inf", "nan", "1e8", "0x7e", "0x3f800000",
                              "65504", "1e-45", "0x1ff", "-0.1", "448", "0X7F800001"]):
        put("bits_value", f"seed{i:02}", bytes([i % 11 | (0x80 if i % 2 else 0)]) + text.encode())


def imatrix_gguf(build):
    """llama-imatrix's GGUF layout (tools/imatrix/imatrix.cpp): per weight tensor an F32
    `<name>.in_sum2` of ggml shape [columns, n_mat] and an F32 `<name>.counts` of [1, n_mat]."""

    def whole(w):
        w.add_string("general.type", "imatrix")
        build(w)

    return gguf_file(whole, arch="imatrix")


def imatrix_legacy(entries, trailer):
    """The legacy imatrix.dat layout: i32 entry count; per entry i32 name length, name, i32
    ncall, i32 nval, nval f32; then optionally i32 chunk count, i32 length and dataset name."""
    out = struct.pack("<i", len(entries))
    for name, ncall, values in entries:
        raw = name.encode()
        out += struct.pack("<i", len(raw)) + raw + struct.pack("<ii", ncall, len(values))
        out += np.asarray(values, dtype="<f4").tobytes()
    if trailer is not None:
        chunks, dataset = trailer
        out += struct.pack("<ii", chunks, len(dataset)) + dataset.encode()
    return out


def imatrix_seeds():
    def dense(w):
        w.add_array("imatrix.datasets", ["wiki.train.raw"])
        w.add_uint32("imatrix.chunk_count", 100)
        w.add_uint32("imatrix.chunk_size", 512)
        for name, columns, count in [("blk.0.attn_q.weight", 8, 512.0), ("blk.0.ffn_down.weight", 16, 1023.6)]:
            sums = RNG.random(columns, dtype=np.float32).reshape(1, columns)
            w.add_tensor(f"{name}.in_sum", sums * 0.5)
            w.add_tensor(f"{name}.in_sum2", sums * count)
            w.add_tensor(f"{name}.counts", np.array([[count]], dtype=np.float32))

    put("imatrix", "dense.gguf", imatrix_gguf(dense))

    def experts(w):
        # Three experts: one row of sums and one count per expert; a zero count weighs 1.
        w.add_uint32("imatrix.chunk_count", 4)
        w.add_tensor("blk.0.ffn_up_exps.weight.in_sum2", RNG.random((3, 8), dtype=np.float32) * 40)
        w.add_tensor("blk.0.ffn_up_exps.weight.counts", np.array([[40.0], [0.0], [7.4]], dtype=np.float32))

    put("imatrix", "experts.gguf", imatrix_gguf(experts))

    entries = [("blk.0.attn_q.weight", 100, RNG.random(8, dtype=np.float32) * 100),
               ("blk.0.ffn_down.weight", 0, RNG.random(16, dtype=np.float32))]
    put("imatrix", "legacy_trailer.dat", imatrix_legacy(entries, (100, "wiki.train.raw")))
    put("imatrix", "legacy_plain.dat", imatrix_legacy(entries[:1], None))


def quantscope_binary():
    if os.environ.get("QUANTSCOPE_BIN"):
        return pathlib.Path(os.environ["QUANTSCOPE_BIN"])
    for base in [os.environ.get("CARGO_TARGET_DIR"), ROOT / "target"]:
        for profile in ["release", "debug"]:
            if base and (pathlib.Path(base) / profile / "quantscope").is_file():
                return pathlib.Path(base) / profile / "quantscope"
    return None


def recipe_seeds():
    binary = quantscope_binary()
    if binary is None:
        print("no quantscope binary (set QUANTSCOPE_BIN): recipe seeds left as committed")
        return
    model = safetensors_bytes([
        ("blk.0.attn_q.weight", "F32", (4, 256), RNG.standard_normal(1024).astype("<f4").tobytes()),
        ("blk.0.ffn_down.weight", "F32", (8, 256), RNG.standard_normal(2048).astype("<f4").tobytes()),
        ("blk.0.attn_norm.weight", "F32", (64,), np.ones(64, "<f4").tobytes()),
        ("Blk.0.Upper.weight", "F16", (4, 32), RNG.standard_normal(128).astype("<f2").tobytes()),
        ("position_ids", "I64", (4,), np.arange(4, dtype="<i8").tobytes()),
    ])
    plans = {
        "affine.json": ["--budget-bpw", "4.5", "--candidates",
                        "int2_g32_minmax,int4_g32_minmax,int8_channel_minmax"],
        "formats_pinned_kept.json": ["--budget-bpw", "10", "--candidates", "q4_0,q8_0,mxfp4,int4_g32_minmax",
                                     "--pin", "*ffn_down*=q8_0", "--keep", "Blk.*=F32", "--plan-vectors"],
        "weighted_mse.json": ["--budget-size", "3KiB", "--candidates", "q4_k,q6_k,int4_g32_minmax",
                              "--objective", "mse", "--imatrix", "IMATRIX"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "model.safetensors").write_bytes(model)
        (tmp / "imatrix.dat").write_bytes(imatrix_legacy(
            [("blk.0.attn_q.weight", 10, RNG.random(256, dtype=np.float32) * 10),
             ("blk.0.ffn_down.weight", 10, RNG.random(256, dtype=np.float32) * 10)], None))
        for name, args in plans.items():
            args = [str(tmp / "imatrix.dat") if a == "IMATRIX" else a for a in args]
            out = tmp / name
            subprocess.run([str(binary), "plan", str(tmp / "model.safetensors"), *args, "--out", str(out)],
                           check=True, stdout=subprocess.DEVNULL)
            put("recipe", name, out.read_bytes())


safetensors_seeds()
gguf_seeds()
npy_seeds()
npz_seeds()
index_seeds()
bits_seeds()
imatrix_seeds()
recipe_seeds()
for target in sorted(OUT.iterdir()):
    print(target.name, len(list(target.iterdir())), "seeds")
