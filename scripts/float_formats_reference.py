#!/usr/bin/env python3
"""Expected decode and encode tables of the MX element and scale formats, from ml_dtypes.

Writes tests/fixtures/float_formats.json, which `src/float/format.rs` tests compare against
code for code (CI has no Python). Run from the repository root with the shared venv:

    /work/venv/bin/python scripts/float_formats_reference.py

Formats (ml_dtypes 0.6.0 types): fp4-e2m1 = float4_e2m1fn, fp6-e2m3 = float6_e2m3fn,
fp6-e3m2 = float6_e3m2fn, e8m0 = float8_e8m0fnu, ue4m3 = the non-negative half (codes
0x00..0x7F) of float8_e4m3fn.

- "decode": the f32 bit pattern of every code, as hex.
- "encode": `np.float32(x).astype(type)` (ml_dtypes' non-saturating cast, which is
  quantscope's `Overflow::NonFinite`) for a dense set of f32 inputs: every f32 whose top 16 bits
  take any of the 65536 values and whose low 16 bits are 0x0000, 0x0001, 0x8000 or 0xFFFF, in
  that order (input i = (i // 4) << 16 | LOWS[i % 4]). Every format here has at most 3 mantissa
  bits, so each of its rounding midpoints has low 16 bits zero: the set holds every tie, the f32
  values either side of it, every exponent, both signs, subnormals, Inf and NaN. UE4M3 takes the
  first half only (non-negative inputs). The codes are stored run-length encoded as
  [first_index, code] pairs: a code holds from its index up to the next pair's.
"""

import json
import sys
from pathlib import Path

import ml_dtypes
import numpy as np

LOWS = [0x0000, 0x0001, 0x8000, 0xFFFF]

FORMATS = {
    "fp4-e2m1": (ml_dtypes.float4_e2m1fn, 16, False),
    "fp6-e2m3": (ml_dtypes.float6_e2m3fn, 64, False),
    "fp6-e3m2": (ml_dtypes.float6_e3m2fn, 64, False),
    "e8m0": (ml_dtypes.float8_e8m0fnu, 256, False),
    "ue4m3": (ml_dtypes.float8_e4m3fn, 128, True),
}


def inputs(positive_only: bool) -> np.ndarray:
    highs = np.arange(0x8000 if positive_only else 0x10000, dtype=np.uint32)
    bits = (highs[:, None] << 16) | np.array(LOWS, dtype=np.uint32)[None, :]
    return bits.reshape(-1).view(np.float32)


def runs(codes: np.ndarray) -> list:
    change = np.flatnonzero(np.diff(codes.astype(np.int32))) + 1
    starts = np.concatenate([[0], change])
    return [[int(s), int(codes[s])] for s in starts]


def main() -> int:
    out = {
        "ml_dtypes": ml_dtypes.__version__,
        "lows": LOWS,
        "formats": {},
    }
    for name, (dtype, ncodes, positive_only) in FORMATS.items():
        codes = np.arange(ncodes, dtype=np.uint8)
        decoded = codes.view(dtype).astype(np.float32).view(np.uint32)
        with np.errstate(invalid="ignore", over="ignore"):
            encoded = inputs(positive_only).astype(dtype).view(np.uint8)
        if positive_only:
            assert encoded.max() < 0x80 or name != "ue4m3"
        out["formats"][name] = {
            "decode": [f"{int(v):08x}" for v in decoded],
            "encode_inputs": len(encoded),
            "encode": runs(encoded),
        }
        print(name, "runs", len(out["formats"][name]["encode"]), file=sys.stderr)
    path = Path("tests/fixtures/float_formats.json")
    path.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print("wrote", path, path.stat().st_size, "bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
