#!/usr/bin/env python3
"""Writes the known-bytes fixtures of the GGUF quantizers: ggml's own bytes for small inputs.

Runs ggml 0.20.2's C `ggml_quantize_chunk` (the function llama-quantize calls) from the
`libggml-python` wheel (0.20.2.post1, ggml commit 8c63e70) through ctypes on a few seeded inputs,
for every GGUF type quantscope implements, without an importance matrix and, for the types whose
reference uses one, with an all-ones and a random importance matrix (one f32 weight per column).
As a second reference, gguf-py 0.19's numpy quantizers (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, MXFP4) must
give the same bytes; the script stops if they do not. It also checks that ggml ignores the
importance matrix for Q8_0, MXFP4 and NVFP4 (same bytes with the random one).

Output, in tests/fixtures/gguf/ (read by src/quant/formats/gguf/tests.rs):
  CASE.f32                   the input, 4 rows x 512 little-endian f32 (row-major)
  imatrix_random.f32         the random importance matrix, 512 little-endian f32
  CASE/TYPE.MODE.bin         ggml's blocks for the whole input, MODE one of
                             none | ones | random (ones/random only for imatrix types)
Cases: `normal` (N(0,1) with a few large outliers), `edge` (an all-zero row, a constant row,
values ~1e-30, values ~3e4), `grid` (multiples of 1/4 in [-8, 8], where rounding ties abound).

Usage: /work/venv/bin/python scripts/gguf_reference_fixtures.py [--out DIR]
"""

from __future__ import annotations

import argparse
import ctypes
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# ggml `enum ggml_type` ids and whether ggml_quantize_chunk uses the importance matrix.
TYPES = {
    "q8_0": (8, False),
    "q4_0": (2, True),
    "q4_1": (3, True),
    "q5_0": (6, True),
    "q5_1": (7, True),
    "q2_k": (10, True),
    "q3_k": (11, True),
    "q4_k": (12, True),
    "q5_k": (13, True),
    "q6_k": (14, True),
    "iq4_nl": (20, True),
    "gguf_mxfp4": (39, False),
    "gguf_nvfp4": (40, False),
}
ROWS, COLS = 4, 512


def load_ggml():
    """ctypes bindings of ggml_quantize_chunk and ggml_row_size from the libggml-python wheel."""
    import libggml  # noqa: PLC0415 - the wheel only ships the shared libraries

    lib_dir = Path(libggml.__file__).resolve().parent / "lib64"
    lib = ctypes.CDLL(str(lib_dir / "libggml-base.so"))
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.c_void_p,
    ]
    lib.ggml_row_size.restype = ctypes.c_size_t
    lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    return lib


def ggml_quantize(lib, type_id: int, x: np.ndarray, imatrix: np.ndarray | None) -> bytes:
    """ggml_quantize_chunk over the whole 2-D array in one call (start 0)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    rows, cols = x.shape
    size = lib.ggml_row_size(type_id, cols) * rows
    out = np.zeros(size, dtype=np.uint8)
    qw = None
    if imatrix is not None:
        imatrix = np.ascontiguousarray(imatrix, dtype=np.float32)
        qw = imatrix.ctypes.data
    written = lib.ggml_quantize_chunk(type_id, x.ctypes.data, out.ctypes.data, 0, rows, cols, qw)
    assert written == size, (type_id, written, size)
    return out.tobytes()


def inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20260818)
    normal = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    # A few outliers, some in the same block as ordinary values, some alone at a block edge.
    for r, c, v in [(0, 3, 18.5), (0, 300, -27.0), (1, 31, 9.25), (2, 256, -12.0), (3, 511, 31.0), (3, 64, -6.5)]:
        normal[r, c] = v
    edge = np.empty((ROWS, COLS), dtype=np.float32)
    edge[0] = 0.0
    edge[1] = 0.37
    edge[2] = (rng.standard_normal(COLS) * 1e-30).astype(np.float32)
    edge[3] = (rng.standard_normal(COLS) * 3e4).astype(np.float32)
    grid = (rng.integers(-32, 33, size=(ROWS, COLS)) / 4.0).astype(np.float32)
    return {"normal": normal, "edge": edge, "grid": grid}


def gguf_py_check(x: np.ndarray, name: str, ggml_bytes: bytes) -> None:
    """gguf-py 0.19's numpy quantizer must give ggml's bytes where it has one."""
    try:
        from gguf import GGMLQuantizationType, quants  # noqa: PLC0415
    except Exception as error:  # noqa: BLE001 - any failure means "skip this reference"
        print(f"  SKIP gguf-py: {error}")
        return
    qtype = {
        "q8_0": GGMLQuantizationType.Q8_0,
        "q4_0": GGMLQuantizationType.Q4_0,
        "q4_1": GGMLQuantizationType.Q4_1,
        "q5_0": GGMLQuantizationType.Q5_0,
        "q5_1": GGMLQuantizationType.Q5_1,
        "gguf_mxfp4": GGMLQuantizationType.MXFP4,
    }.get(name)
    if qtype is None:
        return
    ours = quants.quantize(x, qtype).tobytes()
    if ours != ggml_bytes:
        sys.exit(f"gguf-py {name} differs from ggml")
    print(f"  gguf-py {name}: identical to ggml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "gguf")
    args = parser.parse_args()
    lib = load_ggml()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    imatrices = {
        "ones": np.ones(COLS, dtype=np.float32),
        # Positive weights spanning two decades, like column mean squares of activations.
        "random": np.exp(rng.uniform(np.log(0.05), np.log(5.0), COLS)).astype(np.float32),
    }
    imatrices["random"].astype("<f4").tofile(out / "imatrix_random.f32")
    total = 0
    for case, x in inputs().items():
        print(f"{case}:")
        x.astype("<f4").tofile(out / f"{case}.f32")
        (out / case).mkdir(exist_ok=True)
        for name, (type_id, uses_imatrix) in TYPES.items():
            plain = ggml_quantize(lib, type_id, x, None)
            (out / case / f"{name}.none.bin").write_bytes(plain)
            total += 1
            gguf_py_check(x, name, plain)
            if uses_imatrix:
                for mode, w in imatrices.items():
                    weighted = ggml_quantize(lib, type_id, x, w)
                    (out / case / f"{name}.{mode}.bin").write_bytes(weighted)
                    total += 1
            elif ggml_quantize(lib, type_id, x, imatrices["random"]) != plain:
                sys.exit(f"ggml {name} is expected to ignore the importance matrix")
    print(f"wrote {total} block files under {out}")


if __name__ == "__main__":
    main()
