#!/usr/bin/env python3
"""Expected bytes of the OCP MX, NVFP4, NF4 and scaled-FP8 formats from their reference
implementations, for the byte-for-byte tests in src/quant/formats/{mx,nvfp4,nf4,fp8}.rs.

Run from the repository root with the shared venv (CPU only):

    /work/venv/bin/python scripts/formats_reference_fixtures.py

It writes tests/fixtures/formats/<case>.safetensors. Each file holds the input ("input", F32,
2-D) and, per format NAME, the parts exactly as quantscope stores them ("NAME.codes",
"NAME.scales", ... as U8 bytes, 1-D) and "NAME.dequantized" (F32, the input's shape). It also
writes tests/fixtures/formats/dq_unit.safetensors for the NF4 double quantization alone.

References (NUMERICS.md §8; FORMATS-NOTES.md §2-§5), versions pinned in /work/venv:
- MX FP8/FP6/FP4: torchao 0.18 `to_mx` (ScaleCalculationMode.FLOOR, CPU). Two blocks kinds
  follow NUMERICS.md instead, and the script says how many blocks differ from torchao:
  * a scale code 0 (amax < 2^(emax_elem - 126)): elements are x / 2^-127 exactly, as gfloat
    does (torchao divides by 2^-126 and so halves them);
  * a block holding +-Inf: scale 0xFF and elements computed as torchao computes them for a NaN
    block, i.e. x / +Inf (torchao stores code 255 - emax_elem there and saturates the Inf).
  The expected bytes are torchao's own output with exactly those blocks replaced by the
  contract, computed by the same torchao element kernels with the scale patched; the script
  asserts that every other block equals torchao byte for byte.
- MXINT8: gfloat 0.5.2 (`compute_scale_amax` on float64 input, `encode_block`), per block;
  NaN/Inf blocks (gfloat raises) store scale 0xFF and codes 0.
- NVFP4: torchao 0.18 `nvfp4_quantize` with `per_tensor_scale = per_tensor_amax_to_scale(
  max|x|)`; dequantized as `NVFP4Tensor.dequantize` computes it (e * f32(pts * s)). The
  all-zero tensor takes quantscope's guard (codes +-0, scale 2^-6, tensor scale 0, values 0)
  where torchao gives NaN.
- NF4: bitsandbytes 0.50.2 `functional.quantize_4bit(quant_type="nf4", blocksize=64)` and
  `dequantize_4bit` on CPU tensors, byte for byte.
- NF4 with double quantization: bitsandbytes' CPU path codes the absmax values with a 65536-entry
  lookup table (`cquantize_blockwise_cpu_fp32`) that is not exact nearest; NUMERICS.md takes the
  exact nearest (CUDA's rule). The expected bytes come from bitsandbytes' own exact-nearest
  kernel, the "default" backend's `quantize_blockwise` (torch.bucketize on the f32 midpoints of
  the dynamic map, blocks of 256, reciprocal multiply, the tail block divides), run here
  directly; the script checks it against the CPU lookup-table path and prints where they differ
  (the codes the LUT gets wrong). The offset is the correctly rounded f32 mean of the absmax
  values (exact sum, one rounding): torch's f32 mean depends on the machine's vector width and
  thread count and differs from it by an ulp on about 40% of arrays; the script prints whether
  it differs here.
- Scaled FP8: torch 2.15 `(x / scale).to(torch.float8_e4m3fn / float8_e5m2)` with
  scale = f32(amax / 448) or f32(amax / 57344) per tensor or per row, amax over the finite
  values (amax 0 gives scale 1); dequantized f32(code * scale).
"""

import sys
from pathlib import Path

import numpy as np
import torch

import bitsandbytes.functional as bnbf
import gfloat
from gfloat.formats import format_info_mxint8
from safetensors.numpy import save_file
from torchao.prototype.custom_fp_utils import _f32_to_floatx_unpacked, _floatx_unpacked_to_f32
from torchao.prototype.mx_formats.constants import DTYPE_FP6_E2M3, DTYPE_FP6_E3M2
from torchao.prototype.mx_formats.kernels import pack_uint4, unpack_uint4
from torchao.prototype.mx_formats.mx_tensor import to_dtype, to_mx
from torchao.prototype.mx_formats.nvfp4_tensor import (
    NVFP4Tensor,
    nvfp4_quantize,
    per_tensor_amax_to_scale,
)

OUT = Path("tests/fixtures/formats")

# name -> (torchao element dtype, emax_elem, ebits, mbits, max)
MX = {
    "mxfp8_e4m3": (torch.float8_e4m3fn, 8, 4, 3, 448.0),
    "mxfp8_e5m2": (torch.float8_e5m2, 15, 5, 2, 57344.0),
    "mxfp6_e3m2": (DTYPE_FP6_E3M2, 4, 3, 2, 28.0),
    "mxfp6_e2m3": (DTYPE_FP6_E2M3, 2, 2, 3, 7.5),
    "mxfp4": (torch.float4_e2m1fn_x2, 2, 2, 1, 6.0),
}


def u8(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        t = t.contiguous().view(torch.uint8).numpy()
    return np.ascontiguousarray(np.asarray(t)).view(np.uint8).reshape(-1)


# ---------------------------------------------------------------- MX (contract, patched torchao)


def mx_contract(x: torch.Tensor, name: str):
    """torchao's FLOOR to_mx with NUMERICS.md's two changes (exact 2^-127; NaN/Inf -> 0xFF)."""
    dtype, emax, ebits, mbits, vmax = MX[name]
    rows, cols = x.shape
    blocks = x.reshape(-1, 32)
    amax = blocks.abs().amax(-1)
    bad = ~torch.isfinite(amax)
    exp = ((amax.view(torch.int32) >> 23) & 0xFF) - 127
    code = (torch.clamp(exp - emax, -127, 127) + 127).to(torch.int32)
    code[bad] = 255
    scale = (code << 23).view(torch.float32).clone()
    scale[code == 0] = 2.0**-127
    data = blocks / scale[:, None]
    if dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
        elems = torch.clamp(data, -vmax, vmax).to(dtype).view(torch.uint8)
        codes = elems.reshape(rows, cols)
        values = elems.view(dtype).to(torch.float32)
    else:
        elems = _f32_to_floatx_unpacked(data.contiguous(), ebits, mbits)
        values = _floatx_unpacked_to_f32(elems, ebits, mbits)
        codes = elems.reshape(rows, cols)
        if name == "mxfp4":
            codes = pack_uint4(codes)
    deq = (values * torch.exp2(code.to(torch.float32) - 127)[:, None]).reshape(rows, cols)
    deq[bad.repeat_interleave(32).reshape(rows, cols)] = float("nan")
    return codes, code.to(torch.uint8).reshape(rows, cols // 32), deq


def mx_torchao(x: torch.Tensor, name: str):
    dtype = MX[name][0]
    scale, data = to_mx(x, dtype, 32)
    deq = to_dtype(data, scale, dtype, 32, torch.float32)
    return data.view(torch.uint8), scale.view(torch.uint8), deq


def mx_case(x: torch.Tensor, name: str, report: list):
    codes, scales, deq = mx_contract(x, name)
    t_codes, t_scales, t_deq = mx_torchao(x, name)
    rows, cols = x.shape
    per_block = 16 if name == "mxfp4" else 32
    blocks = x.reshape(-1, 32)
    has_inf = torch.isinf(blocks).any(-1) & ~torch.isnan(blocks).any(-1)
    code0 = scales.reshape(-1) == 0
    contract_only = has_inf | code0
    c_codes = codes.reshape(-1, per_block)
    t_codes_b = t_codes.reshape(-1, per_block)
    same = (c_codes == t_codes_b).all(-1) & (scales.reshape(-1) == t_scales.reshape(-1))
    d = deq.reshape(-1, 32)
    td = t_deq.reshape(-1, 32)
    same_deq = ((d == td) | (torch.isnan(d) & torch.isnan(td))).all(-1)
    must = ~contract_only
    assert bool((same & same_deq)[must].all()), f"{name}: torchao differs off the contract blocks"
    differ = int((~(same & same_deq))[contract_only].sum())
    report.append(
        f"{name}: {int(must.sum())} blocks identical to torchao; {int(contract_only.sum())} "
        f"contract blocks (Inf or scale code 0), {differ} of them differ from torchao"
    )
    return {"codes": u8(codes), "scales": u8(scales)}, deq


def mxint8_case(x: torch.Tensor, report: list):
    rows, cols = x.shape
    blocks = x.reshape(-1, 32).numpy()
    codes = np.zeros(blocks.shape, np.uint8)
    scales = np.zeros(len(blocks), np.uint8)
    deq = np.zeros(blocks.shape, np.float32)
    via_gfloat = 0
    for b, vals in enumerate(blocks):
        if not np.isfinite(vals).all():
            scales[b] = 0xFF
            deq[b] = np.nan
            continue
        v64 = vals.astype(np.float64)
        scale = gfloat.compute_scale_amax(format_info_mxint8.etype.emax, v64)
        enc = list(gfloat.encode_block(format_info_mxint8, scale, v64 / scale))
        scales[b] = enc[0]
        codes[b] = enc[1:]
        deq[b] = np.fromiter(gfloat.decode_block(format_info_mxint8, enc), float).astype(np.float32)
        via_gfloat += 1
    report.append(f"mxint8: {via_gfloat} blocks from gfloat, {len(blocks) - via_gfloat} NaN/Inf blocks")
    return (
        {"codes": codes.reshape(-1), "scales": scales},
        torch.from_numpy(deq.reshape(rows, cols)),
    )


# ------------------------------------------------------------------------------------ NVFP4


def nvfp4_case(x_in: torch.Tensor, report: list):
    # torchao's nvfp4_quantize takes [rows, cols]: a 1-D tensor is one row.
    x = x_in.reshape(-1, x_in.shape[-1])
    amax = torch.max(torch.abs(x))
    if amax == 0:
        rows, cols = x.shape
        signs = (x.reshape(-1).view(torch.int32) < 0).to(torch.uint8) * 8
        codes = pack_uint4(signs.reshape(rows, cols))
        scales = torch.full((rows, cols // 16), 0x08, dtype=torch.uint8)
        report.append("nvfp4: all-zero tensor takes the guard (torchao gives NaN)")
        return (
            {"codes": u8(codes), "scales": u8(scales), "tensor_scale": u8(np.float32([0.0]))},
            # e * (pts * s) = (+-0) * 0: each zero keeps its sign, as its code does.
            (x * 0.0).reshape(x_in.shape),
        )
    pts = per_tensor_amax_to_scale(amax)
    scales, data = nvfp4_quantize(x, 16, pts)
    t = NVFP4Tensor(data, scales, 16, x.dtype, per_tensor_scale=pts)
    deq = t.dequantize(torch.float32)
    # The same formula written out (e * f32(pts * s)), as NUMERICS.md states it.
    from torchao.prototype.mx_formats.kernels import f4_unpacked_to_f32

    e = f4_unpacked_to_f32(unpack_uint4(data.view(torch.uint8)))
    s = scales.to(torch.float32)
    mine = (e.reshape(-1, 16) * (pts * s).reshape(-1, 1)).reshape(x.shape)
    assert bool(((mine == deq) | (mine.isnan() & deq.isnan())).all())
    report.append(f"nvfp4: torchao, tensor scale {pts.item()!r}")
    return (
        {
            "codes": u8(data),
            "scales": u8(scales),
            "tensor_scale": u8(pts.reshape(1).to(torch.float32)),
        },
        deq.reshape(x_in.shape),
    )


# --------------------------------------------------------------------------------------- NF4


def nf4_case(x: torch.Tensor):
    q, st = bnbf.quantize_4bit(x, blocksize=64, quant_type="nf4")
    deq = bnbf.dequantize_4bit(q, st)
    return {"codes": u8(q), "absmax": u8(st.absmax)}, deq.reshape(x.shape)


def exact_mean_f32(a: np.ndarray) -> np.float32:
    """The correctly rounded f32 mean: exact rational sum, one rounding at the end (NaN or Inf
    when an absmax is, as any mean gives)."""
    from fractions import Fraction

    if not np.isfinite(a).all():
        return np.float32(np.mean(a.astype(np.float64)))
    total = sum((Fraction(float(v)) for v in a), Fraction(0))
    return np.float32(float(total / len(a)))


def dq_exact(absmax: torch.Tensor, offset: np.float32):
    """bitsandbytes' default-backend quantize_blockwise (exact nearest), blocks of 256."""
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
    bounds = (code[:-1] + code[1:]) / 2
    q = torch.bucketize(scaled, bounds, out_int32=True).to(torch.uint8)
    return q, am, code


def dq_dequant(q, absmax2, code, offset, nabs):
    per = torch.repeat_interleave(absmax2, 256)[:nabs]
    return code[q.long()] * per + torch.tensor(offset)


def nf4_dq_case(x: torch.Tensor, report: list):
    q, st = bnbf.quantize_4bit(x, blocksize=64, quant_type="nf4")
    absmax = st.absmax
    offset = exact_mean_f32(absmax.numpy())
    torch_offset = np.float32(absmax.mean().item())
    qa, absmax2, code = dq_exact(absmax, offset)
    # bitsandbytes' own CPU double quantization, for the report.
    _, st_dq = bnbf.quantize_4bit(x, blocksize=64, quant_type="nf4", compress_statistics=True)
    lut_codes = st_dq.absmax
    if torch_offset == offset:
        lut_diff = int((lut_codes != qa).sum())
        report.append(
            f"nf4_dq {tuple(x.shape)}: offset equals torch's mean; LUT codes differ from exact "
            f"nearest on {lut_diff} of {qa.numel()} absmax"
        )
    else:
        report.append(
            f"nf4_dq {tuple(x.shape)}: torch's f32 mean {torch_offset!r} != exact {offset!r}"
        )
    rec = dq_dequant(qa, absmax2, code, offset, absmax.numel())
    nf4 = bnbf.get_4bit_type("nf4", device="cpu")
    flat = q.reshape(-1)
    nib = torch.stack([flat >> 4, flat & 0xF], -1).reshape(-1)[: x.numel()].long()
    per = torch.repeat_interleave(rec, 64)[: x.numel()]
    deq = (nf4[nib] * per).reshape(x.shape)
    # bitsandbytes' dequantize_4bit given the same stored state reproduces this.
    st_dq.absmax = qa
    st_dq.offset = torch.tensor(offset)
    st_dq.state2.absmax = absmax2
    bnb_deq = bnbf.dequantize_4bit(q, st_dq).reshape(x.shape)
    assert bool(((bnb_deq == deq) | (bnb_deq.isnan() & deq.isnan())).all())
    return (
        {
            "codes": u8(q),
            "absmax_codes": u8(qa),
            "absmax2": u8(absmax2),
            "offset": u8(np.float32([offset])),
        },
        deq,
    )


def dq_unit(report: list):
    """The double quantization alone on absmax lists where the CPU LUT and exact nearest differ."""
    rng = np.random.default_rng(7)
    absmax = np.abs(rng.standard_normal(1100).astype(np.float32) * 0.05 + 0.08).astype(np.float32)
    absmax[:3] = [0.0, 1e-38, 0.5]
    t = torch.from_numpy(absmax)
    offset = exact_mean_f32(absmax)
    qa, absmax2, code = dq_exact(t, offset)
    lut, st2 = bnbf.quantize_blockwise(t - torch.tensor(offset), blocksize=256)
    assert bool((st2.absmax == absmax2).all())
    lut_diff = int((lut != qa).sum())
    report.append(f"dq_unit: LUT path differs from exact nearest on {lut_diff} of {qa.numel()}")
    rec = dq_dequant(qa, absmax2, code, offset, len(absmax))
    return {
        "absmax": t,
        "offset": torch.tensor([offset]),
        "absmax_codes": qa,
        "absmax2": absmax2,
        "reconstructed": rec,
        "lut_codes": lut,
        "dynamic_map": code,
        "nf4_levels": bnbf.get_4bit_type("nf4", device="cpu"),
    }


# ------------------------------------------------------------------------------- scaled FP8


def fp8_case(x: torch.Tensor, name: str):
    dtype = torch.float8_e4m3fn if "e4m3" in name else torch.float8_e5m2
    vmax = 448.0 if "e4m3" in name else 57344.0
    finite = torch.where(torch.isfinite(x), x.abs(), torch.zeros_like(x))
    amax = finite.amax(-1, keepdim=True) if name.endswith("channel") else finite.max().reshape(1, 1)
    scale = torch.where(amax == 0, torch.ones_like(amax), amax / vmax)
    q = (x / scale).to(dtype)
    deq = q.to(torch.float32) * scale
    return {"codes": u8(q), "scales": u8(scale.reshape(-1))}, deq


# ------------------------------------------------------------------------------------ inputs


def f32(bits: int) -> float:
    return float(np.uint32(bits).view(np.float32))


def edges() -> torch.Tensor:
    """16 blocks of 32 (shape [8, 64]), one edge case per block."""
    rng = np.random.default_rng(2)
    b = [rng.standard_normal(32).astype(np.float32) for _ in range(16)]
    b[0][:] = 0.0
    b[1][:] = 0.0
    b[1][3] = -0.0
    b[1][7] = -1e-30
    b[2][5] = np.nan
    b[3][9] = np.inf
    b[4][0] = -np.inf
    b[5] = (rng.standard_normal(32) * 2.0**-135).astype(np.float32)  # f32 subnormals
    b[6] = (rng.uniform(-1, 1, 32) * 1.5 * 2.0**-125).astype(np.float32)
    b[6][0] = 1.5 * 2.0**-125  # code 0 for emax >= 2 (torchao would halve)
    b[7] = (rng.uniform(-1, 1, 32) * 1.9 * 2.0**-118).astype(np.float32)
    b[7][1] = -1.9 * 2.0**-118
    # FP4/FP6 ties with X = 1 for emax 2 (amax 6 -> floor log2 = 2).
    ties4 = [6.0, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 0.1, 0.3, 5.9, 0.0625, 0.125, 0.375, 7.0]
    b[8][:] = 0.0
    b[8][: len(ties4)] = ties4
    b[8][16 : 16 + len(ties4)] = [-v for v in ties4]
    # MXINT8 ties with X = 1 (amax 1.99): 64x = k + 0.5, and the -127.5 / 127.5 ends.
    b[9] = np.array([(k + 0.5) / 64 for k in range(-16, 14)] + [-127.5 / 64, 127.5 / 64], np.float32)
    # FP8 E4M3 ties with X = 1 (amax 460 -> floor log2 8 - 8 = 0).
    e4 = [460.0, 1.0625, 1.1875, 17.0, 19.0, 0.0009765625, 0.0029296875, 232.0, 240.0, 248.0]
    b[10][:] = 0.0
    b[10][: len(e4)] = e4
    b[10][16 : 16 + len(e4)] = [-v for v in e4]
    b[11] = (rng.uniform(-1, 1, 32) * 15).astype(np.float32)
    b[11][4] = f32(0x417FFFFF)  # 15.999999: one ulp below 2^4
    b[12] = (rng.standard_normal(32) * 3e37).astype(np.float32)
    b[12][0] = f32(0x7F7FFFFF)  # f32 max
    b[13] = (rng.standard_normal(32) * 1e-3).astype(np.float32)
    b[14] = (rng.standard_normal(32) * 1e4).astype(np.float32)
    b[15] = (rng.standard_normal(32) * 0.02).astype(np.float32)
    return torch.from_numpy(np.stack(b).reshape(8, 64))


def mixed() -> torch.Tensor:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 64)).astype(np.float32)
    x *= np.array([1, 1e-3, 100, 3e4, 1e-6, 0.05, 1, 7], np.float32)[:, None]
    x[6, 10] = 25.0  # an outlier
    return torch.from_numpy(x)


def nf4_ties() -> torch.Tensor:
    """Absmax 1 (scale exactly 1): the 15 f32 midpoints and their f32 neighbours."""
    c = bnbf.get_4bit_type("nf4", device="cpu")
    mids = ((c[:-1] + c[1:]) / 2).numpy()
    vals = [1.0, -1.0]
    for m in mids:
        vals += [m, np.nextafter(m, np.float32(2)), np.nextafter(m, np.float32(-2))]
    vals += [0.0, -0.0, 0.5, -0.5, 0.03, -0.03, 0.9, 0.1, -0.1, 1.0, -1.0, 0.2, 0.7, -0.7, 0.6, -0.6, 0.4]
    return torch.tensor(np.array(vals[:64], np.float32).reshape(1, 64))


def ragged() -> torch.Tensor:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 27)).astype(np.float32)  # 135 = 2 * 64 + 7, odd
    x[2, :] = 0.0
    return torch.from_numpy(x)


def nan_tensor() -> torch.Tensor:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 32)).astype(np.float32)
    x[1, 3] = np.nan
    return torch.from_numpy(x)


def inf_tensor() -> torch.Tensor:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 32)).astype(np.float32)
    x[0, 30] = -np.inf
    return torch.from_numpy(x)


def zeros_row() -> torch.Tensor:
    """A 1-D all-zero bias of 384 (all-MiniLM-L6-v2's pooler.dense.bias), one -0 in it."""
    x = np.zeros(384, np.float32)
    x[5] = -0.0
    return torch.from_numpy(x)


def nvfp4_underflow() -> torch.Tensor:
    """max|x| < 2688 * 2^-150: the tensor scale rounds to 0 although the tensor is not all zero,
    so torchao divides by 0 (block scale 448, infinite multipliers, 0 * Inf = NaN codes) and a
    block whose amax / 6 underflows too, or that is all zero, gets 0 / 0 = NaN scales."""
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((2, 32)) * 3e-43).astype(np.float32)
    x[0, 3] = 0.0
    x[0, 4] = -0.0
    x[1, :16] = 0.0
    x[1, 2] = f32(1)  # 2^-149: 2^-149 / 6 underflows to 0
    x[1, 7] = -f32(1)
    x[1, 16:] = 0.0  # an all-zero block
    x[1, 20] = -0.0
    return torch.from_numpy(x)


def fp8_ties() -> torch.Tensor:
    """amax 448 (E4M3 scale 1) in row 0, 57344 (E5M2 scale 1) in row 1, per-row ties."""
    r0 = [448.0, 1.0625, 1.1875, 17.0, 19.0, 2.0**-10, 3 * 2.0**-10, 232.0, 240.0, -0.0, np.nan, np.inf, -np.inf, 1e-30, 447.9, -440.0]
    r1 = [57344.0, 1.125, 1.375, 40960.0, 2.0**-17, 3 * 2.0**-17, 0.6, -3.5, np.nan, np.inf, -np.inf, -53248.0, 2.0**-18, 28672.0, 1.0, 5e4]
    return torch.tensor(np.array([r0, r1], np.float32))


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    report = []
    cases = {
        "mixed": (mixed(), "all"),
        "edges": (edges(), "mx nf4 fp8"),
        "zeros": (torch.zeros(2, 32), "all"),
        "zeros_row": (zeros_row(), "nvfp4"),
        "nvfp4_underflow": (nvfp4_underflow(), "nvfp4"),
        "nan": (nan_tensor(), "nvfp4 nf4"),
        "inf": (inf_tensor(), "nvfp4 nf4"),
        "ragged": (ragged(), "nf4"),
        "nf4_ties": (nf4_ties(), "nf4"),
        "fp8_ties": (fp8_ties(), "fp8"),
    }
    for case, (x, which) in cases.items():
        x = x.contiguous().to(torch.float32)
        tensors = {"input": x.numpy()}

        def put(name, parts, deq):
            for part, data in parts.items():
                tensors[f"{name}.{part}"] = np.ascontiguousarray(data).view(np.uint8).reshape(-1)
            tensors[f"{name}.dequantized"] = deq.to(torch.float32).contiguous().numpy()

        if which in ("all",) or "mx" in which.split():
            for name in MX:
                parts, deq = mx_case(x, name, report)
                put(name, parts, deq)
            parts, deq = mxint8_case(x, report)
            put("mxint8", parts, deq)
        if which == "all" or "nvfp4" in which.split():
            parts, deq = nvfp4_case(x, report)
            put("nvfp4", parts, deq)
        if which == "all" or "nf4" in which.split():
            parts, deq = nf4_case(x)
            put("nf4", parts, deq)
            parts, deq = nf4_dq_case(x, report)
            put("nf4_dq", parts, deq)
        if which == "all" or "fp8" in which.split():
            for name in ["fp8_e4m3", "fp8_e4m3_channel", "fp8_e5m2", "fp8_e5m2_channel"]:
                parts, deq = fp8_case(x, name)
                put(name, parts, deq)
        save_file(tensors, str(OUT / f"{case}.safetensors"))
        report.append(f"wrote {case}.safetensors ({len(tensors)} tensors)")
    unit = dq_unit(report)
    save_file({k: v.contiguous().numpy() for k, v in unit.items()}, str(OUT / "dq_unit.safetensors"))
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
