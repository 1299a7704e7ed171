#!/usr/bin/env python3
"""Agreement of quantscope's MX, NVFP4, NF4 and scaled-FP8 quantizers with their references on
real weights (all-MiniLM-L6-v2 by default), and their speed side by side.

    cargo build --release --no-default-features --example formats_dump
    /work/venv/bin/python scripts/crosscheck_formats_mx.py \
        --model /work/models/minilm/hf/model.safetensors \
        --dump $CARGO_TARGET_DIR/release/examples/formats_dump

For every format it runs examples/formats_dump.rs on every float tensor of the model, runs the
reference on the same tensors (NUMERICS.md §8; see scripts/formats_reference_fixtures.py for
the references and where NUMERICS.md departs from them), and prints per format: the scales
(scale bytes, absmax, tensor scale, ...) identical or not, the codes identical or not, and the
number of dequantized values that differ (bit for bit, NaN by class). Where NUMERICS.md departs
from the reference on purpose (nvfp4's all-zero tensor guard) the row compares with NUMERICS.md's
rule and a note line names the tensor and what the reference gives. `--time` also times the
references (best of N, CPU, torch at its default thread count) against quantscope's summed
`quantize_format` time, for BENCHMARKS.md.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import bitsandbytes.functional as bnbf
import gfloat
from gfloat.formats import format_info_mxint8
from safetensors.numpy import load_file as load_np
from safetensors.torch import load_file
from torchao.prototype.mx_formats.constants import DTYPE_FP6_E2M3, DTYPE_FP6_E3M2
from torchao.prototype.mx_formats.mx_tensor import to_dtype, to_mx
from torchao.prototype.mx_formats.nvfp4_tensor import (
    NVFP4Tensor,
    nvfp4_quantize,
    per_tensor_amax_to_scale,
)

MX = {
    "mxfp8_e4m3": torch.float8_e4m3fn,
    "mxfp8_e5m2": torch.float8_e5m2,
    "mxfp6_e3m2": DTYPE_FP6_E3M2,
    "mxfp6_e2m3": DTYPE_FP6_E2M3,
    "mxfp4": torch.float4_e2m1fn_x2,
}
FORMATS = list(MX) + [
    "mxint8",
    "nvfp4",
    "nf4",
    "nf4_dq",
    "fp8_e4m3",
    "fp8_e4m3_channel",
    "fp8_e5m2",
    "fp8_e5m2_channel",
]


def u8(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        t = t.contiguous().view(torch.uint8).numpy()
    return np.ascontiguousarray(np.asarray(t)).view(np.uint8).reshape(-1)


def rows(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, x.shape[-1]) if x.dim() > 0 else x.reshape(1, 1)


# ------------------------------------------------------------------------------ references


def ref_mx(x, name):
    scale, data = to_mx(rows(x), MX[name], 32)
    deq = to_dtype(data, scale, MX[name], 32, torch.float32)
    return {"codes": u8(data), "scales": u8(scale)}, deq


def ref_mxint8(x, name, check=True):
    blocks = rows(x).reshape(-1, 32).numpy().astype(np.float64)
    amax = np.abs(blocks).max(-1)
    with np.errstate(divide="ignore"):
        e = np.where(amax == 0, -127.0, np.clip(np.floor(np.log2(amax)), -127, 127))
    scale = np.exp2(e)[:, None]
    etype = format_info_mxint8.etype
    q = gfloat.round_ndarray(etype, blocks / scale, gfloat.RoundMode.TiesToEven, sat=True)
    codes = gfloat.encode_ndarray(etype, q).astype(np.uint8)
    deq = (gfloat.decode_ndarray(etype, codes) * scale).astype(np.float32)
    # The vectorised gfloat path equals gfloat's per-block quantize_block (spot check).
    for b in range(0, len(blocks) if check else 0, max(1, len(blocks) // 16)):
        want = gfloat.quantize_block(
            format_info_mxint8, blocks[b], gfloat.compute_scale_amax
        ).astype(np.float32)
        assert (want == deq[b]).all(), "gfloat vectorised != quantize_block"
    return {"codes": codes.reshape(-1), "scales": (e + 127).astype(np.uint8)}, torch.from_numpy(
        deq.reshape(x.shape)
    )


def ref_nvfp4(x, name):
    x2 = rows(x)
    amax = torch.max(torch.abs(x2))
    pts = per_tensor_amax_to_scale(amax)
    scales, data = nvfp4_quantize(x2, 16, pts)
    deq = NVFP4Tensor(data, scales, 16, x2.dtype, per_tensor_scale=pts).dequantize(torch.float32)
    parts = {
        "codes": u8(data),
        "scales": u8(scales),
        "tensor_scale": u8(pts.reshape(1).to(torch.float32)),
    }
    if amax == 0:
        # NUMERICS.md §8's documented departure: an all-zero tensor takes quantscope's guard
        # (codes +-0 with each zero's sign, block scales 2^-6 = 0x08, tensor scale 0, values
        # +-0) where torchao divides 0 by 0. Compare with the guard; count what torchao gives.
        signs = (x2.reshape(-1).view(torch.int32) < 0).to(torch.uint8) * 8
        guard = {
            "codes": u8(signs[0::2] | (signs[1::2] << 4)),
            "scales": np.full(x2.numel() // 16, 0x08, np.uint8),
            "tensor_scale": u8(np.float32([0.0])),
        }
        guard_deq = x2 * 0.0
        DEPARTURES.append(
            (
                CURRENT[0],
                x2.numel(),
                differing(guard_deq.numpy(), deq.numpy()),
                int(deq.isnan().sum()),
                sum(not np.array_equal(guard[k], parts[k]) for k in parts),
            )
        )
        return guard, guard_deq
    return parts, deq


def ref_nf4(x, name):
    q, st = bnbf.quantize_4bit(x, blocksize=64, quant_type="nf4")
    return {"codes": u8(q), "absmax": u8(st.absmax)}, bnbf.dequantize_4bit(q, st)


def exact_mean_f32(a: np.ndarray) -> np.float32:
    from fractions import Fraction

    if not np.isfinite(a).all():
        return np.float32(np.mean(a.astype(np.float64)))
    return np.float32(float(sum((Fraction(float(v)) for v in a), Fraction(0)) / len(a)))


def dq_exact(absmax, offset):
    """bitsandbytes' default-backend (exact nearest) quantize_blockwise, blocks of 256."""
    code = bnbf.create_dynamic_map().to(torch.float32)
    a = absmax - torch.tensor(offset)
    n = a.numel()
    rem = n % 256
    full = n - rem
    am = a[:full].reshape(-1, 256).abs().max(dim=-1)[0]
    scaled = torch.clamp(a[:full].reshape(-1, 256) * (1.0 / am.clamp(min=1e-38).view(-1, 1)), -1, 1)
    scaled = scaled.reshape(-1)
    if rem:
        t = a[full:].abs().max().clamp(min=1e-38)
        am = torch.cat([am, t.unsqueeze(0)])
        scaled = torch.cat([scaled, torch.clamp(a[full:] / t, -1, 1)])
    q = torch.bucketize(scaled, (code[:-1] + code[1:]) / 2, out_int32=True).to(torch.uint8)
    return q, am


NOTES = []
# nvfp4 tensors where NUMERICS.md departs from torchao on purpose (the all-zero guard):
# (tensor, elements, values torchao gives differently, of which NaN, parts differing).
DEPARTURES = []
# The tensor being compared, for DEPARTURES.
CURRENT = [""]


def ref_nf4_dq(x, name):
    q, st = bnbf.quantize_4bit(x, blocksize=64, quant_type="nf4")
    offset = exact_mean_f32(st.absmax.numpy())
    qa, absmax2 = dq_exact(st.absmax, offset)
    _, st_lut = bnbf.quantize_4bit(x, blocksize=64, quant_type="nf4", compress_statistics=True)
    torch_offset = np.float32(st_lut.offset.item())
    bnb_deq = bnbf.dequantize_4bit(q, st_lut)
    lut_codes = int((st_lut.absmax != qa).sum())
    # The exact-nearest rule with torch's own offset: what differs then is the lookup table alone.
    qa_t, absmax2_t = dq_exact(st.absmax, torch_offset)
    lut_absmax = st_lut.absmax.clone()
    st_lut.absmax, st_lut.offset, st_lut.state2.absmax = qa_t, torch.tensor(torch_offset), absmax2_t
    deq_t = bnbf.dequantize_4bit(q, st_lut)
    st_lut.absmax, st_lut.offset, st_lut.state2.absmax = qa, torch.tensor(offset), absmax2
    deq = bnbf.dequantize_4bit(q, st_lut)

    def ndiff(a, b):
        return int(((a != b) & ~(a.isnan() & b.isnan())).sum())

    NOTES.append(
        (
            lut_codes,
            qa.numel(),
            int(torch_offset != offset),
            ndiff(bnb_deq, deq),
            int((lut_absmax != qa_t).sum()),
            ndiff(bnb_deq, deq_t),
        )
    )
    return {
        "codes": u8(q),
        "absmax_codes": u8(qa),
        "absmax2": u8(absmax2),
        "offset": u8(np.float32([offset])),
    }, deq


def ref_fp8(x, name):
    dtype = torch.float8_e4m3fn if "e4m3" in name else torch.float8_e5m2
    vmax = 448.0 if "e4m3" in name else 57344.0
    x2 = rows(x)
    finite = torch.where(torch.isfinite(x2), x2.abs(), torch.zeros_like(x2))
    amax = finite.amax(-1, keepdim=True) if name.endswith("channel") else finite.max().reshape(1, 1)
    scale = torch.where(amax == 0, torch.ones_like(amax), amax / vmax)
    q = (x2 / scale).to(dtype)
    return {"codes": u8(q), "scales": u8(scale.reshape(-1))}, q.to(torch.float32) * scale


def timed(name):
    """The reference library's own quantize + dequantize, for timing (no comparison work)."""
    if name == "nf4_dq":

        def run(x, name):
            q, st = bnbf.quantize_4bit(x, blocksize=64, quant_type="nf4", compress_statistics=True)
            return bnbf.dequantize_4bit(q, st)

        return run
    if name == "mxint8":
        # gfloat's vectorised path (its per-block quantize_block is pure Python per element).
        return lambda x, name: ref_mxint8(x, name, check=False)
    return reference(name)


def reference(name):
    if name in MX:
        return ref_mx
    return {
        "mxint8": ref_mxint8,
        "nvfp4": ref_nvfp4,
        "nf4": ref_nf4,
        "nf4_dq": ref_nf4_dq,
    }.get(name, ref_fp8)


# ------------------------------------------------------------------------------------ main


def differing(a: np.ndarray, b: np.ndarray) -> int:
    a = a.reshape(-1)
    b = b.reshape(-1)
    if a.shape != b.shape:
        return max(a.size, b.size)
    same = (a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))
    return int((~same).sum())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="/work/models/minilm/hf/model.safetensors")
    p.add_argument("--dump", required=True, help="the built examples/formats_dump binary")
    p.add_argument("--formats", nargs="*", default=FORMATS)
    p.add_argument(
        "--time", type=int, default=0, help="time the references and quantscope, best of N"
    )
    args = p.parse_args()
    weights = {k: v.to(torch.float32).contiguous() for k, v in load_file(args.model).items()}
    print(f"model {args.model}: {len(weights)} tensors, "
          f"{sum(v.numel() for v in weights.values())} elements; torch threads "
          f"{torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as out:
        ours_ms = {}
        for _ in range(max(1, args.time)):
            run = subprocess.run(
                [args.dump, args.model, out, *args.formats],
                check=True,
                capture_output=True,
                text=True,
            )
            for line in run.stdout.splitlines():
                name, rest = line.split(":", 1)
                ms = float(rest.split("quantize_format")[1].split("ms")[0])
                ours_ms[name] = min(ms, ours_ms.get(name, ms))
        print(
            f"\n| format | tensors | elements | scales identical | codes identical | "
            f"dequantized values differing |{' reference ms | quantscope ms | ratio |' if args.time else ''}"
        )
        print(f"|---|---:|---:|---|---|---:|{'---:|---:|---:|' if args.time else ''}")
        for name in args.formats:
            ours = load_np(str(Path(out) / f"{name}.safetensors"))
            ref = reference(name)
            NOTES.clear()
            DEPARTURES.clear()
            tensors = elements = 0
            scales_same = codes_same = 0
            deq_diff = 0
            ref_seconds = 0.0
            for tname, x in weights.items():
                key = f"{tname}.dequantized"
                if key not in ours:
                    continue
                CURRENT[0] = tname
                parts, deq = ref(x, name)
                tensors += 1
                elements += x.numel()
                for part, want in parts.items():
                    got = ours[f"{tname}.{part}"]
                    same = got.shape == want.shape and bool((got == want).all())
                    if part == "codes":
                        codes_same += same
                    else:
                        scales_same += same
                deq_diff += differing(ours[key], deq.to(torch.float32).numpy())
                if args.time:
                    best = float("inf")
                    for _ in range(args.time):
                        t0 = time.perf_counter()
                        timed(name)(x, name)
                        best = min(best, time.perf_counter() - t0)
                    ref_seconds += best
            scale_parts = max(1, len(parts) - 1)
            row = (
                f"| {name} | {tensors} | {elements} | {scales_same}/{tensors * scale_parts} parts | "
                f"{codes_same}/{tensors} | {deq_diff} |"
            )
            if args.time:
                r = ref_seconds * 1e3
                row += f" {r:.0f} | {ours_ms[name]:.0f} | {r / ours_ms[name]:.1f}× |"
            print(row)
            # dict.fromkeys: --time runs the reference again on the same tensors.
            for tname, n, diff, nan, nparts in dict.fromkeys(DEPARTURES):
                print(
                    f"|  | documented departure (NUMERICS.md §8): {tname} is all zero ({n} "
                    f"values); compared with quantscope's guard (zeros); torchao itself gives "
                    f"{diff} values differing ({nan} NaN) and {nparts} parts differing |"
                )
            if name == "nf4_dq" and NOTES:
                lut = sum(n[0] for n in NOTES)
                total = sum(n[1] for n in NOTES)
                off = sum(n[2] for n in NOTES)
                bnb = sum(n[3] for n in NOTES)
                lut_t = sum(n[4] for n in NOTES)
                bnb_t = sum(n[5] for n in NOTES)
                print(
                    f"|  | nf4_dq against bitsandbytes' own CPU double quantization: its f32 mean "
                    f"differs from the correctly rounded offset in {off} of {tensors} tensors and its "
                    f"lookup table codes {lut} of {total} absmax differently, so {bnb} values "
                    f"differ; with its offset, the table alone moves {lut_t} codes and {bnb_t} values |"
                )
        print("\nquantscope run:\n" + run.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
