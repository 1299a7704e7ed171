#!/usr/bin/env python3
"""Cross-checks quantscope's numbers against the reference libraries on a real model.

For several settings (presets onnxruntime/pytorch, symmetric/asymmetric, per-tensor/per-channel,
8 and 4 bits) it runs `quantscope quantize MODEL --json --output OUT.safetensors` and compares
the codes, scales, zero points and dequantized values in OUT with:
  - numpy: an independent implementation of NUMERICS.md for the preset;
  - ONNX Runtime: its quantization tool (quant_utils.quantize_data, per row for per-channel) and
    the runtime's QuantizeLinear/DequantizeLinear (graphs built with onnx.helper, per-axis for
    per-channel) fed quantscope's own scales and zero points;
  - PyTorch: MinMaxObserver / PerChannelMinMaxObserver parameters and torch.quantize_per_tensor /
    quantize_per_channel codes and dequantized values.
It also checks the JSON metrics and clip ranges, the entropy (TensorRT KL) and percentile
calibrators, the MSE calibrator against a brute-force grid, and `quantscope bits --json` against
numpy float16, ml_dtypes bfloat16 / float8_e4m3fn / float8_e5m2 (with `--overflow nan`, which is
what ml_dtypes does) and PyTorch's float8 casts (saturating) for random and edge values.

A reference whose package does not import is skipped with a message. Exit status 1 if any check
fails. Usage: scripts/bench.sh crosscheck MODEL.safetensors, or
    python scripts/crosscheck.py --binary target/release/quantscope MODEL.safetensors
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vs_numpy import amax_entropy_vectorised  # noqa: E402

warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
warnings.filterwarnings("ignore", category=DeprecationWarning)


def try_import(name: str):
    try:
        return __import__(name)
    except Exception as error:  # noqa: BLE001 - any failure means "skip this reference"
        print(f"SKIP {name}: does not import ({error.__class__.__name__}: {error})")
        return None


# ---------------------------------------------------------------------------------------------
# safetensors, read by hand (no dependency on the safetensors package)

_F32_ONLY = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I32": "<i4", "I64": "<i8", "I16": "<i2", "I8": "i1", "U8": "u1"}


def read_safetensors(path: Path, names: list[str] | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """Returns (header, {name: array}) for the named tensors (all when names is None)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, info in header.items():
            if name == "__metadata__" or (names is not None and name not in names):
                continue
            begin, end = info["data_offsets"]
            f.seek(base + begin)
            raw = f.read(end - begin)
            dtype = info["dtype"]
            if dtype == "BF16":
                bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
                arr = bits.view(np.float32)
            elif dtype in _F32_ONLY:
                arr = np.frombuffer(raw, dtype=_F32_ONLY[dtype])
            else:
                continue
            out[name] = arr.reshape(info["shape"])
    return header, out


# ---------------------------------------------------------------------------------------------
# Bookkeeping


@dataclass
class Check:
    """One comparison for one setting, accumulated over tensors."""

    name: str
    setting: str
    compared: int = 0
    mismatches: int = 0
    max_diff: float = 0.0
    diff_unit: str = ""
    examples: list = field(default_factory=list)
    skipped: str | None = None
    note: str | None = None

    def add(self, tensor: str, ours, ref, x=None, tol: float = 0.0, unit: str = "", rel: bool = False):
        ours = np.asarray(ours).reshape(-1)
        ref = np.asarray(ref).reshape(-1)
        if ours.shape != ref.shape:
            self.mismatches += max(ours.size, ref.size)
            self.examples.append(f"{tensor}: shape {ours.shape} vs reference {ref.shape}")
            return
        self.compared += ours.size
        if ours.size == 0:
            return
        a = ours.astype(np.float64)
        b = ref.astype(np.float64)
        both_nan = np.isnan(a) & np.isnan(b)
        same_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
        with np.errstate(invalid="ignore", over="ignore"):
            d = np.abs(a - b)
            if rel:
                d = d / np.maximum(np.abs(b), 1e-300)
        d = np.where(both_nan | same_inf, 0.0, d)
        d = np.where(np.isnan(d), np.inf, d)
        bad = d > tol
        self.max_diff = max(self.max_diff, float(d.max()))
        self.diff_unit = unit or self.diff_unit
        nbad = int(bad.sum())
        if nbad:
            self.mismatches += nbad
            if len(self.examples) < 3:
                i = int(np.flatnonzero(bad)[0])
                xs = ""
                if x is not None:
                    xv = np.asarray(x).reshape(-1)
                    if xv.size == ours.size:
                        xs = f" x={xv[i]!r}"
                self.examples.append(
                    f"{tensor}[flat {i}]{xs}: quantscope {ours[i]!r} vs reference {ref[i]!r} ({nbad} mismatches)"
                )

    @property
    def status(self) -> str:
        if self.skipped:
            return "SKIP"
        if self.compared == 0:
            return "EMPTY"
        return "FAIL" if self.mismatches else "pass"


class Report:
    def __init__(self):
        self.checks: dict[tuple[str, str], Check] = {}

    def check(self, name: str, setting: str) -> Check:
        key = (name, setting)
        if key not in self.checks:
            self.checks[key] = Check(name, setting)
        return self.checks[key]

    def skip(self, name: str, setting: str, why: str):
        self.check(name, setting).skipped = why

    def print(self) -> int:
        failed = 0
        print("\n" + "=" * 100)
        print("SUMMARY (max diff: absolute unless marked; ulp = units in the last place of f32)")
        width = max((len(c.name) for c in self.checks.values()), default=10)
        for c in self.checks.values():
            diff = f"{c.max_diff:.3g}{(' ' + c.diff_unit) if c.diff_unit else ''}"
            line = f"{c.status:5s} {c.name:{width}s}  {c.setting:58s} n={c.compared:<10d} bad={c.mismatches:<8d} max diff {diff}"
            if c.skipped:
                line = f"SKIP  {c.name:{width}s}  {c.setting:58s} {c.skipped}"
            print(line)
            if c.note:
                print(f"        note: {c.note}")
            for e in c.examples:
                print(f"        e.g. {e}")
            failed += c.status == "FAIL"
        total = len(self.checks)
        passed = sum(c.status == "pass" for c in self.checks.values())
        skipped = sum(c.status == "SKIP" for c in self.checks.values())
        print(f"\n{passed} passed, {failed} failed, {skipped} skipped, of {total} checks")
        return failed


def ulp_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| in units of f32 ordering (0 = bit-identical), for same-sign finite values."""
    ia = np.asarray(a, dtype=np.float32).view(np.int32).astype(np.int64)
    ib = np.asarray(b, dtype=np.float32).view(np.int32).astype(np.int64)
    # Map the sign-magnitude order onto a monotone integer line.
    ia = np.where(ia < 0, -(ia & 0x7FFFFFFF), ia)
    ib = np.where(ib < 0, -(ib & 0x7FFFFFFF), ib)
    return np.abs(ia - ib)


# ---------------------------------------------------------------------------------------------
# The settings and the independent numpy reference (NUMERICS.md section 2)


@dataclass(frozen=True)
class Setting:
    preset: str
    scheme: str
    granularity: str
    bits: int

    def args(self) -> list[str]:
        return ["--preset", self.preset, "--scheme", self.scheme, "--granularity", self.granularity, "--bits", str(self.bits)]

    def __str__(self) -> str:
        return f"preset={self.preset} scheme={self.scheme} gran={self.granularity} bits={self.bits}"


ORT_INT4_NOTE = (
    "ORT's quantizer has no narrow INT4 range (quant_utils.ONNX_INT_TYPE_SYMMETRIC_RANGE lists INT8 "
    "and INT16 only): symmetric INT4 uses [-8, 7] and S = 2 absmax / 15 = absmax / 7.5, and so does "
    "NUMERICS.md's onnxruntime preset (section 2); int8 stays narrow, S = absmax / 127"
)
F32_EPS = np.float32(2.0**-23)
F32_TINY = np.finfo(np.float32).tiny


def code_range(s: Setting) -> tuple[int, int]:
    b = s.bits
    if s.scheme == "asymmetric":
        return 0, (1 << b) - 1
    if s.preset == "pytorch" or (s.preset == "onnxruntime" and b == 4):
        # PyTorch's qint8; ORT's int4 (get_qmin_qmax_for_qType: -8..7, NUMERICS.md section 2).
        return -(1 << (b - 1)), (1 << (b - 1)) - 1
    return -((1 << (b - 1)) - 1), (1 << (b - 1)) - 1


def rows_of(x: np.ndarray, s: Setting) -> np.ndarray:
    """The groups one (S, z) covers, as rows: one row per tensor, or per index of axis 0."""
    if s.granularity == "tensor" or x.ndim == 0:
        return x.reshape(1, -1)
    return x.reshape(x.shape[0], -1)


def numpy_params(x2: np.ndarray, s: Setting) -> tuple[np.ndarray, np.ndarray]:
    """(S f32 [rows], z int64 [rows]) exactly as the preset's library computes them."""
    qmin, qmax = code_range(s)
    mn = x2.min(axis=1) if x2.shape[1] else np.zeros(x2.shape[0], np.float32)
    mx = x2.max(axis=1) if x2.shape[1] else np.zeros(x2.shape[0], np.float32)
    rmin = np.minimum(mn, np.float32(0)).astype(np.float32)
    rmax = np.maximum(mx, np.float32(0)).astype(np.float32)
    if s.preset == "pytorch":
        # torch.ao.quantization.observer: f32 arithmetic, scale >= f32 eps.
        if s.scheme == "symmetric":
            absmax = np.maximum(-rmin, rmax)
            scale = (absmax / np.float32((qmax - qmin) / 2)).astype(np.float32)
            scale = np.maximum(scale, F32_EPS)
            zp = np.zeros(len(scale), np.int64)
        else:
            scale = ((rmax - rmin) / np.float32(qmax - qmin)).astype(np.float32)
            scale = np.maximum(scale, F32_EPS)
            zp = qmin - np.round((rmin / scale).astype(np.float32)).astype(np.int64)
            zp = np.clip(zp, qmin, qmax)
        return scale, zp
    # onnxruntime (quant_utils.compute_scale_zp): f64 arithmetic, stored as f32; the zero point
    # uses the f64 scale; a scale below f32 tiny becomes (1, 0).
    if s.scheme == "symmetric":
        # compute_scale_zp: dr = 2 absmax in f32, over qmax - qmin (= absmax / qmax when narrow).
        dr = (np.maximum(np.abs(rmin), np.abs(rmax)) * np.float32(2)).astype(np.float64)
        s64 = dr / float(qmax - qmin)
        zp = np.zeros(len(s64), np.int64)
    else:
        s64 = (rmax.astype(np.float64) - rmin.astype(np.float64)) / float(qmax - qmin)
        with np.errstate(divide="ignore", invalid="ignore"):
            zp = np.round(qmin - rmin.astype(np.float64) / s64)
        zp = np.where(s64 < F32_TINY, 0, zp).astype(np.int64)
    scale = np.where(s64 < F32_TINY, 1.0, s64).astype(np.float32)
    return scale, zp


def numpy_codes(x2: np.ndarray, scale: np.ndarray, zp: np.ndarray, s: Setting) -> np.ndarray:
    qmin, qmax = code_range(s)
    if s.preset == "pytorch":
        inv = (np.float32(1) / scale).astype(np.float32)
        v = np.round(x2 * inv[:, None])
    else:
        v = np.round(x2 / scale[:, None])
    return np.clip(v.astype(np.float64) + zp[:, None], qmin, qmax).astype(np.int64)


def numpy_dequant(q2: np.ndarray, scale: np.ndarray, zp: np.ndarray) -> np.ndarray:
    return ((q2 - zp[:, None]).astype(np.float32) * scale[:, None]).astype(np.float32)


def numpy_metrics(x: np.ndarray, xh: np.ndarray, clipped: int) -> dict:
    x64 = x.reshape(-1).astype(np.float64)
    h64 = xh.reshape(-1).astype(np.float64)
    e = h64 - x64
    n = max(e.size, 1)
    sse = float(np.dot(e, e))
    sxx = float(np.dot(x64, x64))
    shh = float(np.dot(h64, h64))
    return {
        "mse": sse / n,
        "rmse": math.sqrt(sse / n),
        "mae": float(np.abs(e).sum()) / n,
        "max_abs_error": float(np.abs(e).max()) if e.size else 0.0,
        "sqnr_db": 10 * math.log10(sxx / sse) if sse > 0 and sxx > 0 else None,
        "cosine": float(np.dot(x64, h64)) / math.sqrt(sxx * shh) if sxx > 0 and shh > 0 else None,
        "clipped_fraction": clipped / n,
    }


# ---------------------------------------------------------------------------------------------
# Reference libraries


class OrtRef:
    def __init__(self, ort, onnx):
        self.ort = ort
        self.onnx = onnx
        from onnx import TensorProto  # noqa: PLC0415

        self.TP = TensorProto
        try:
            from onnxruntime.quantization import quant_utils  # noqa: PLC0415

            self.qu = quant_utils
        except Exception as error:  # noqa: BLE001
            print(f"SKIP onnxruntime.quantization tool: {error}")
            self.qu = None

    def qtype(self, s: Setting):
        TP = self.TP
        if s.bits == 8:
            return TP.UINT8 if s.scheme == "asymmetric" else TP.INT8
        if s.bits == 4:
            return TP.UINT4 if s.scheme == "asymmetric" else TP.INT4
        if s.bits == 16:
            return TP.UINT16 if s.scheme == "asymmetric" else TP.INT16
        return None

    def tool(self, x2: np.ndarray, s: Setting):
        """quant_utils.quantize_data per row: (z, S, q) as ORT's quantizer stores a weight."""
        qt = self.qtype(s)
        zs, ss, qs = [], [], []
        for row in x2:
            z, sc, q = self.qu.quantize_data(row, qt, s.scheme == "symmetric")
            zs.append(int(np.asarray(z).astype(np.int64)))
            ss.append(np.float32(sc))
            qs.append(np.asarray(q).astype(np.int64))
        return np.array(ss, np.float32), np.array(zs, np.int64), np.stack(qs)

    def runtime(self, x2: np.ndarray, scale: np.ndarray, zp: np.ndarray, s: Setting):
        """QuantizeLinear + DequantizeLinear (opset 21) with the given (S, z): (codes, x_hat)."""
        from onnx import helper, numpy_helper  # noqa: PLC0415

        TP = self.TP
        qt = self.qtype(s)
        per_axis = x2.shape[0] > 1
        attrs = {"axis": 0} if per_axis else {}
        sc = scale.astype(np.float32) if per_axis else scale.astype(np.float32).reshape(())
        zl = zp.astype(np.int64) if per_axis else zp.astype(np.int64).reshape(())
        s_init = numpy_helper.from_array(sc, "s")
        z_init = helper.make_tensor("z", qt, list(zl.shape), zl.reshape(-1).tolist())
        graph = helper.make_graph(
            [
                helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], **attrs),
                helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], **attrs),
                helper.make_node("Cast", ["q"], ["qi"], to=TP.INT32),
            ],
            "qdq",
            [helper.make_tensor_value_info("x", TP.FLOAT, list(x2.shape))],
            [
                helper.make_tensor_value_info("qi", TP.INT32, list(x2.shape)),
                helper.make_tensor_value_info("y", TP.FLOAT, list(x2.shape)),
            ],
            initializer=[s_init, z_init],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
        opts = self.ort.SessionOptions()
        opts.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = self.ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        q, y = sess.run(None, {"x": np.ascontiguousarray(x2, dtype=np.float32)})
        return q.astype(np.int64), y


class TorchRef:
    def __init__(self, torch):
        self.torch = torch
        from torch.ao.quantization import observer  # noqa: PLC0415

        self.obs = observer
        torch.set_num_threads(2)

    def dtype(self, s: Setting):
        return self.torch.quint8 if s.scheme == "asymmetric" else self.torch.qint8

    def observer_params(self, x: np.ndarray, s: Setting):
        torch = self.torch
        qmin, qmax = code_range(s)
        if s.granularity == "channel" and x.ndim == 1:
            x = x.reshape(-1, 1)  # the per-channel observer needs a second axis
        xt = torch.from_numpy(np.ascontiguousarray(x))
        if s.granularity == "tensor" or x.ndim == 0:
            qscheme = torch.per_tensor_affine if s.scheme == "asymmetric" else torch.per_tensor_symmetric
            o = self.obs.MinMaxObserver(dtype=self.dtype(s), qscheme=qscheme, quant_min=qmin, quant_max=qmax)
        else:
            qscheme = torch.per_channel_affine if s.scheme == "asymmetric" else torch.per_channel_symmetric
            o = self.obs.PerChannelMinMaxObserver(
                ch_axis=0, dtype=self.dtype(s), qscheme=qscheme, quant_min=qmin, quant_max=qmax
            )
        o(xt)
        sc, zp = o.calculate_qparams()
        return sc.reshape(-1).float().numpy().astype(np.float32), zp.reshape(-1).long().numpy().astype(np.int64)

    def quantize(self, x: np.ndarray, scale: np.ndarray, zp: np.ndarray, s: Setting):
        """torch.quantize_per_tensor / per_channel: (codes clamped to the b-bit range, x_hat)."""
        torch = self.torch
        qmin, qmax = code_range(s)
        shape_in = x.shape
        if s.granularity == "channel" and x.ndim == 1:
            x = x.reshape(-1, 1)
        xt = torch.from_numpy(np.ascontiguousarray(x))
        if s.granularity == "tensor" or x.ndim == 0:
            q = torch.quantize_per_tensor(xt, float(scale[0]), int(zp[0]), self.dtype(s))
            sc_b, zp_b = float(scale[0]), int(zp[0])
        else:
            q = torch.quantize_per_channel(
                xt, torch.from_numpy(scale.astype(np.float64)), torch.from_numpy(zp), 0, self.dtype(s)
            )
            shape = (-1,) + (1,) * (x.ndim - 1)
            sc_b, zp_b = scale.reshape(shape), zp.reshape(shape)
        codes = q.int_repr().numpy().astype(np.int64)
        if s.bits == 8:
            return codes.reshape(shape_in), q.dequantize().numpy().reshape(shape_in)
        # quint8/qint8 clamp to 8 bits; clamping again to the b-bit range gives b-bit codes,
        # and the dequantized values follow torch's formula (q - z) * S in f32.
        codes = np.clip(codes, qmin, qmax)
        xh = ((codes - zp_b).astype(np.float32) * np.asarray(sc_b, dtype=np.float32)).astype(np.float32)
        return codes.reshape(shape_in), xh.reshape(shape_in)


# ---------------------------------------------------------------------------------------------
# quantscope runs


def run_quantize(binary: Path, model: Path, tensors: list[str], extra: list[str], output: Path | None):
    cmd = [str(binary), "quantize", str(model), "--json", "--full", *extra]
    for t in tensors:
        cmd += ["--tensor", t]
    if output is not None:
        cmd += ["--output", str(output)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}\n  exit {out.returncode}: {out.stderr.strip()[:500]}")
    return {o["name"]: o for o in json.loads(out.stdout)}, cmd


def as_rows(a: np.ndarray, rows: int) -> np.ndarray:
    return np.asarray(a).reshape(rows, -1) if rows else np.asarray(a).reshape(0, 0)


def check_quantize(args, report: Report, model: Path, xs: dict[str, np.ndarray], ort_ref, torch_ref):
    settings = [
        Setting(p, sc, g, b)
        for p in ("onnxruntime", "pytorch")
        for sc in ("symmetric", "asymmetric")
        for g in ("tensor", "channel")
        for b in (8, 4)
    ]
    names = list(xs)
    with tempfile.TemporaryDirectory(prefix="qs-crosscheck-") as tmp:
        for s in settings:
            st = str(s)
            out_path = Path(tmp) / "out.safetensors"
            try:
                objs, cmd = run_quantize(args.binary, model, names, s.args(), out_path)
            except RuntimeError as error:
                print(f"quantscope failed for {st}: {error}")
                report.check("quantscope run", st).mismatches += 1
                report.check("quantscope run", st).examples.append(str(error)[:300])
                continue
            print(f"ran: {' '.join(cmd[:2])} ... {' '.join(s.args())} ({len(objs)} tensors)")
            _, out = read_safetensors(out_path)
            for name, x in xs.items():
                try:
                    codes = out[f"{name}.codes"].astype(np.int64)
                    scale = out[f"{name}.scale"].astype(np.float32).reshape(-1)
                    zp = out[f"{name}.zero_point"].astype(np.int64).reshape(-1)
                    xh = out[f"{name}.dequantized"].astype(np.float32)
                except KeyError as error:
                    c = report.check("output file entries", st)
                    c.mismatches += 1
                    c.examples.append(f"{name}: missing {error}")
                    continue
                x2 = rows_of(x, s)
                rows = x2.shape[0]
                c = report.check("output shapes", st)
                c.add(name, [*codes.shape, *xh.shape, scale.size, zp.size], [*x.shape, *x.shape, rows, rows])
                if codes.size != x.size or scale.size != rows or zp.size != rows:
                    continue
                q2 = as_rows(codes, rows)
                h2 = as_rows(xh, rows)

                # numpy: parameters, codes from quantscope's params and from its own, dequantization.
                ns, nz = numpy_params(x2, s)
                scale_check(report.check("numpy scale (f32 bits)", st), name, scale, ns, x2)
                report.check("numpy zero point", st).add(name, zp, nz)
                report.check("numpy codes | quantscope S,z", st).add(name, q2, numpy_codes(x2, scale, zp, s), x=x2)
                report.check("numpy codes | own S,z", st).add(name, q2, numpy_codes(x2, ns, nz, s), x=x2)
                report.check("dequantized == S*(q-z)", st).add(name, h2, numpy_dequant(q2, scale, zp), x=x2)

                # JSON metrics and clip range.
                obj = objs.get(name)
                if obj is None:
                    report.check("JSON entry", st).add(name, [0], [1])
                    continue
                qmin, qmax = code_range(s)
                with np.errstate(divide="ignore", invalid="ignore"):
                    v = (np.round(x2 * (np.float32(1) / scale)[:, None]) if s.preset == "pytorch"
                         else np.round(x2 / scale[:, None])) + zp[:, None]
                clipped = int(np.count_nonzero((v < qmin) | (v > qmax)))
                m_ref = numpy_metrics(x, xh, clipped)
                mc = report.check("JSON metrics (rel 1e-9)", st)
                for key, ref_v in m_ref.items():
                    got = obj.get("metrics", {}).get(key)
                    if ref_v is None:
                        continue
                    try:
                        got_f = float(got)
                    except (TypeError, ValueError):
                        mc.add(f"{name}.{key}", [np.nan], [ref_v])
                        continue
                    tol = 1e-9 if key != "clipped_fraction" else 0.0
                    mc.add(f"{name}.{key}", [got_f], [ref_v], tol=tol, rel=key != "clipped_fraction")
                check_clip(report.check("JSON clip range (minmax)", st), name, obj, x2, s)
                bpw = obj.get("bits_per_weight")
                if bpw is not None:
                    # NUMERICS.md section 3: b + (scale + zero point bits) / group size; accept 16 or 32.
                    group = x2.shape[1] if x2.shape[1] else 1
                    options = [s.bits + p / group for p in (16, 32, 48, 64)]
                    best = min(options, key=lambda o: abs(o - float(bpw)))
                    report.check("JSON bits_per_weight", st).add(name, [float(bpw)], [best], tol=1e-9)

                # ONNX Runtime (preset onnxruntime only: that is the convention it implements).
                if s.preset == "onnxruntime":
                    if ort_ref is None:
                        report.skip("ORT QuantizeLinear | quantscope S,z", st, "onnxruntime/onnx not importable")
                    else:
                        oq, oy = ort_ref.runtime(x2, scale, zp, s)
                        report.check("ORT QuantizeLinear | quantscope S,z", st).add(name, q2, oq, x=x2)
                        report.check("ORT DequantizeLinear | quantscope S,z", st).add(name, h2, oy, x=x2)
                        if ort_ref.qu is not None:
                            ts, tz, tq = ort_ref.tool(x2, s)
                            scale_check(report.check("ORT quantize_data scale (f32 bits)", st), name, scale, ts, x2)
                            if s.bits == 4 and s.scheme == "symmetric":
                                report.check("ORT quantize_data scale (f32 bits)", st).note = ORT_INT4_NOTE
                            report.check("ORT quantize_data zero point", st).add(name, zp, tz)
                            report.check("ORT quantize_data codes", st).add(name, q2, tq, x=x2)

                # PyTorch (preset pytorch only).
                if s.preset == "pytorch":
                    if torch_ref is None:
                        report.skip("torch observer scale (f32 bits)", st, "torch not importable")
                    else:
                        ts, tz = torch_ref.observer_params(x, s)
                        scale_check(report.check("torch observer scale (f32 bits)", st), name, scale, ts, x2)
                        report.check("torch observer zero point", st).add(name, zp, tz)
                        tq, th = torch_ref.quantize(x, scale, zp, s)
                        report.check("torch quantize codes | quantscope S,z", st).add(name, codes, tq, x=x)
                        report.check("torch dequantize | quantscope S,z", st).add(name, xh, th, x=x)
                        tq2, _ = torch_ref.quantize(x, ts, tz, s)
                        report.check("torch quantize codes | observer S,z", st).add(name, codes, tq2, x=x)
            out_path.unlink(missing_ok=True)


def scale_check(c: Check, name: str, ours: np.ndarray, ref: np.ndarray, x2: np.ndarray):
    """Scales must be bit-identical; the difference is reported in f32 ulps."""
    if ours.shape != ref.shape:
        c.mismatches += 1
        c.examples.append(f"{name}: {ours.shape} scales vs reference {ref.shape}")
        return
    d = ulp_diff(ours, ref)
    c.compared += d.size
    c.diff_unit = "ulp"
    if d.size == 0:
        return
    c.max_diff = max(c.max_diff, float(d.max()))
    bad = np.flatnonzero(d)
    if bad.size:
        c.mismatches += int(bad.size)
        if len(c.examples) < 4:
            i = int(bad[0])
            row = x2[i]
            c.examples.append(
                f"{name}[row {i}] (min {row.min()!r}, max {row.max()!r}): quantscope S={ours[i]!r} "
                f"reference S={ref[i]!r} ({bad.size} rows differ)"
            )


def check_clip(c: Check, name: str, obj: dict, x2: np.ndarray, s: Setting):
    """clip_min/clip_max of a minmax run: the row min/max, or with 0 included, or ±absmax."""
    cmin, cmax = obj.get("clip_min"), obj.get("clip_max")
    try:
        cmin = np.asarray(cmin, dtype=np.float64).reshape(-1)
        cmax = np.asarray(cmax, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        c.add(name, [np.nan], [0.0])
        return
    mn = x2.min(axis=1).astype(np.float64)
    mx = x2.max(axis=1).astype(np.float64)
    am = np.maximum(np.abs(mn), np.abs(mx))
    candidates = [(mn, mx), (np.minimum(mn, 0), np.maximum(mx, 0))]
    if s.scheme == "symmetric":
        candidates.append((-am, am))
    best = min(candidates, key=lambda p: float(np.max(np.abs(cmin - p[0]), initial=0) + np.max(np.abs(cmax - p[1]), initial=0)) if cmin.shape == p[0].shape else np.inf)
    c.add(name, np.concatenate([cmin, cmax]), np.concatenate([best[0], best[1]]), tol=0.0)


# ---------------------------------------------------------------------------------------------
# Calibrators


def check_calibration(args, report: Report, model: Path, xs: dict[str, np.ndarray]):
    names = list(xs)
    # Entropy (TensorRT KL, NVIDIA pytorch-quantization): symmetric per-tensor, 8 and 4 bits.
    for bits in (8, 4):
        st = f"calibration=entropy scheme=symmetric gran=tensor bits={bits}"
        try:
            objs, _ = run_quantize(
                args.binary, model, names,
                ["--calibration", "entropy", "--scheme", "symmetric", "--granularity", "tensor", "--bits", str(bits)], None,
            )
        except RuntimeError as error:
            report.check("entropy amax (bins apart)", st).examples.append(str(error)[:300])
            report.check("entropy amax (bins apart)", st).mismatches += 1
            continue
        c = report.check("entropy amax (bins apart)", st)
        c.diff_unit = "bins"
        for name, x in xs.items():
            ax = np.abs(x[np.isfinite(x)]).reshape(-1)
            if ax.size == 0 or ax.max() == 0 or name not in objs:
                continue
            hist, edges = np.histogram(ax, bins=2048, range=(0, float(ax.max())))
            amax, ibin = amax_entropy_vectorised(hist, edges, num_bits=bits, start_bin=1 << (bits - 1))
            got = objs[name].get("clip_max")
            got = float(got[0] if isinstance(got, list) else got)
            width = float(edges[1] - edges[0])
            apart = abs(got - amax) / width
            c.compared += 1
            c.max_diff = max(c.max_diff, apart)
            if apart >= 0.5:
                c.mismatches += 1
                first_nonzero = int(np.flatnonzero(hist)[0]) if hist.any() else -1
                why = ""
                if first_nonzero >= (1 << (bits - 1)):
                    amax_skip, ibin_skip = amax_entropy_vectorised(
                        hist, edges, num_bits=bits, start_bin=1 << (bits - 1), skip_nan=True
                    )
                    why = (
                        f"; the first non-empty bin is {first_nonzero} >= start {1 << (bits - 1)}, so candidates "
                        f"i <= {first_nonzero} have Q = 0 and KL = NaN, and NVIDIA's np.argmin picks the last NaN "
                        f"(edge {ibin}, below every |x|); skipping NaN candidates gives {amax_skip!r} (edge {ibin_skip})"
                        f"{' = quantscope' if abs(got - amax_skip) < 0.5 * width else ''}"
                    )
                if len(c.examples) < 4:
                    c.examples.append(
                        f"{name}: quantscope clip_max {got!r}, reference amax {amax!r} (edge {ibin}), {apart:.2f} bins{why}"
                    )

    # Percentile 99.9 (numpy 'linear'): asymmetric [P(0.1), P(99.9)], symmetric P(99.9) of |x|.
    for scheme in ("asymmetric", "symmetric"):
        st = f"calibration=percentile 99.9 scheme={scheme} gran=tensor bits=8"
        try:
            objs, _ = run_quantize(
                args.binary, model, names,
                ["--calibration", "percentile", "--percentile", "99.9", "--scheme", scheme, "--granularity", "tensor"], None,
            )
        except RuntimeError as error:
            report.check("percentile clip (rel 1e-6)", st).examples.append(str(error)[:300])
            report.check("percentile clip (rel 1e-6)", st).mismatches += 1
            continue
        c = report.check("percentile clip (rel 1e-6)", st)
        for name, x in xs.items():
            if name not in objs:
                continue
            f = x[np.isfinite(x)].astype(np.float64).reshape(-1)
            if scheme == "asymmetric":
                lo, hi = np.percentile(f, [0.1, 99.9])
                ref = [max(lo, f.min()), min(hi, f.max())]
            else:
                a = np.percentile(np.abs(f), 99.9)
                ref = [-a, a]
            got = [objs[name].get("clip_min"), objs[name].get("clip_max")]
            try:
                got = [float(g[0] if isinstance(g, list) else g) for g in got]
            except (TypeError, ValueError):
                got = [np.nan, np.nan]
            c.add(name, got, ref, tol=1e-6, rel=True)

    # MSE: within 1% of the best MSE on a brute-force grid (symmetric per-tensor int8, onnxruntime).
    small = {n: x for n, x in xs.items() if 0 < x.size <= 2_000_000}
    if small:
        st = "calibration=mse scheme=symmetric gran=tensor bits=8"
        try:
            objs, _ = run_quantize(
                args.binary, model, list(small),
                ["--calibration", "mse", "--scheme", "symmetric", "--granularity", "tensor"], None,
            )
        except RuntimeError as error:
            report.check("mse <= 1.01 x grid best", st).examples.append(str(error)[:300])
            report.check("mse <= 1.01 x grid best", st).mismatches += 1
            return
        c = report.check("mse <= 1.01 x grid best", st)
        c.diff_unit = "(ratio - 1)"
        for name, x in small.items():
            if name not in objs:
                continue
            f = x.reshape(-1).astype(np.float32)
            absmax = float(np.abs(f).max())
            if absmax == 0:
                continue
            best = np.inf
            for t in np.linspace(absmax / 400, absmax, 400, dtype=np.float64):
                sc = np.float32(t / 127)
                q = np.clip(np.round(f / sc), -127, 127)
                e = (q * sc).astype(np.float64) - f
                best = min(best, float(np.dot(e, e)) / f.size)
            got = float(objs[name]["metrics"]["mse"])
            ratio = got / best if best > 0 else (0.0 if got == 0 else np.inf)
            c.compared += 1
            c.max_diff = max(c.max_diff, ratio - 1)
            if ratio > 1.01:
                c.mismatches += 1
                if len(c.examples) < 4:
                    c.examples.append(f"{name}: quantscope mse {got:.6g}, grid best {best:.6g} (ratio {ratio:.4f})")


# ---------------------------------------------------------------------------------------------
# Float formats: `quantscope bits`


def bits_values(n_random: int, seed: int) -> np.ndarray:
    """Random f32 values (all bit patterns, and normals at many scales) plus edge values."""
    rng = np.random.default_rng(seed)
    pats = rng.integers(0, 2**32, size=n_random // 2, dtype=np.uint64).astype(np.uint32).view(np.float32)
    scaled = (rng.standard_normal(n_random // 2) * 10.0 ** rng.uniform(-9, 6, n_random // 2)).astype(np.float32)
    edges = [
        0.0, -0.0, 1.0, -1.0, 0.1, -0.1, 1e8, 1e-8, 3.0e-8, 10000.0,
        65504.0, 65519.0, 65520.0, 65536.0, -65520.0, 2.0**-14, 2.0**-24, 2.0**-25, 2.0**-25 * 1.0001,
        448.0, 449.0, 464.0, 464.0001, 465.0, 480.0, 500.0, -464.0, -465.0, 2.0**-6, 2.0**-9, 2.0**-10,
        2.0**-10 * 1.0001, 57344.0, 61439.0, 61440.0, 65536.0, 2.0**-16, 2.0**-17, 2.0**-17 * 1.0001,
        1 + 2.0**-11, 1 + 3 * 2.0**-11, 1 + 2.0**-8, 1 + 3 * 2.0**-8, 1 + 2.0**-4, 1 + 3 * 2.0**-4,
        1 + 2.0**-3, 1 + 3 * 2.0**-3, 3.3895314e38, 3.4028235e38, -3.4028235e38, 1.1754944e-38,
        1e-45, -1e-45, 9.2e-41, float("inf"), float("-inf"), float("nan"),
    ]
    # Exact ties between neighbouring values of each narrow format, and the points just beside them.
    for fmt in ("f16", "bf16", "e4m3", "e5m2"):
        for v in _format_ties(fmt, rng):
            edges.append(v)
    e = np.array(edges, dtype=np.float32)
    e = np.concatenate([e, np.nextafter(e, np.float32(np.inf)), np.nextafter(e, np.float32(-np.inf))])
    return np.concatenate([e, pats, scaled]).astype(np.float32)


def _format_ties(fmt: str, rng) -> list[float]:
    out = []
    if fmt == "f16":
        codes = rng.integers(0, 0x7BFF, 40)
        vals = np.array(codes, np.uint16).view(np.float16).astype(np.float64)
        nxt = np.array(codes + 1, np.uint16).view(np.float16).astype(np.float64)
    elif fmt == "bf16":
        codes = rng.integers(0, 0x7F7F, 40)
        vals = (np.array(codes, np.uint32) << 16).view(np.float32).astype(np.float64)
        nxt = (np.array(codes + 1, np.uint32) << 16).view(np.float32).astype(np.float64)
    else:
        try:
            import ml_dtypes  # noqa: PLC0415
        except Exception:  # noqa: BLE001
            return out
        t = ml_dtypes.float8_e4m3fn if fmt == "e4m3" else ml_dtypes.float8_e5m2
        top = 0x7E if fmt == "e4m3" else 0x7B
        codes = np.arange(0, top, dtype=np.uint8)
        vals = codes.view(t).astype(np.float64)
        nxt = (codes + 1).astype(np.uint8).view(t).astype(np.float64)
    for a, b in zip(vals, nxt):
        out.append(float((a + b) / 2))
    return out


def run_bits(binary: Path, value: np.float32, overflow: str) -> dict:
    hexv = f"0x{int(np.float32(value).view(np.uint32)):08x}"
    out = subprocess.run(
        [str(binary), "bits", hexv, "--format", "all", "--overflow", overflow, "--json"], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"bits {hexv}: exit {out.returncode}: {out.stderr.strip()}")
    return {o["format"]: o for o in json.loads(out.stdout)}


def _val(v) -> float:
    if isinstance(v, str):
        return {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}.get(v, np.nan)
    return float(v)


def check_bits(args, report: Report, ml_dtypes, torch):
    with np.errstate(all="ignore"):
        values = bits_values(args.bits_values, args.seed)
        _check_bits(args, report, ml_dtypes, torch, values)


def _check_bits(args, report: Report, ml_dtypes, torch, values: np.ndarray):
    print(f"bits: {values.size} values x 2 overflow modes ({2 * values.size} runs of `quantscope bits`)")
    jobs = [(v, mode) for v in values for mode in ("saturate", "nan")]
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futs = {pool.submit(run_bits, args.binary, v, mode): (i, mode) for i, (v, mode) in enumerate(jobs)}
        for fut in concurrent.futures.as_completed(futs):
            i, mode = futs[fut]
            try:
                results[(i // 2, mode)] = fut.result()
            except RuntimeError as error:
                report.check("bits runs", "").mismatches += 1
                if len(report.check("bits runs", "").examples) < 3:
                    report.check("bits runs", "").examples.append(str(error)[:200])

    def compare(check_name, setting, fmt_key, mode, ref_values: np.ndarray, ref_bits: np.ndarray | None):
        c = report.check(check_name, setting)
        for i, v in enumerate(values):
            r = results.get((i, mode))
            if r is None or fmt_key not in r:
                continue
            o = r[fmt_key]
            got = _val(o.get("value"))
            ref = float(ref_values[i])
            c.compared += 1
            same_class = (math.isnan(got) and math.isnan(ref)) or got == ref and (
                got != 0 or math.copysign(1, got) == math.copysign(1, ref)
            )
            same_bits = True
            if ref_bits is not None and not math.isnan(ref):
                try:
                    same_bits = int(o.get("hex"), 16) == int(ref_bits[i])
                except (TypeError, ValueError):
                    same_bits = False
            if not (same_class and same_bits):
                c.mismatches += 1
                if len(c.examples) < 4:
                    hb = f" ref bits 0x{int(ref_bits[i]):x}" if ref_bits is not None else ""
                    c.examples.append(
                        f"x={v!r} (0x{int(np.float32(v).view(np.uint32)):08x}): quantscope {o.get('hex')} = {o.get('value')!r}, "
                        f"reference {ref!r}{hb}"
                    )

    # FP32: the input itself.
    compare("bits fp32 == input", "", "fp32", "saturate", values.astype(np.float64), values.view(np.uint32))
    # FP16: numpy (RNE, Inf from 65520); the FP8 overflow mode does not apply.
    with np.errstate(over="ignore"):
        h = values.astype(np.float16)
    compare("bits fp16 vs numpy float16", "", "fp16", "saturate", h.astype(np.float64), h.view(np.uint16))
    if ml_dtypes is None:
        report.skip("bits bf16 vs ml_dtypes", "", "ml_dtypes not importable")
        report.skip("bits fp8 vs ml_dtypes", "", "ml_dtypes not importable")
    else:
        b = values.astype(ml_dtypes.bfloat16)
        compare("bits bf16 vs ml_dtypes bfloat16", "", "bf16", "saturate", b.astype(np.float64), b.view(np.uint16))
        for key, t, fmax in (("fp8-e4m3", ml_dtypes.float8_e4m3fn, 448.0), ("fp8-e5m2", ml_dtypes.float8_e5m2, 57344.0)):
            r = values.astype(t)
            compare(f"bits {key} vs ml_dtypes", "--overflow nan", key, "nan", r.astype(np.float64), r.view(np.uint8))
            # Saturation: ml_dtypes' finite results, and ±max where a finite input overflowed.
            rf = r.astype(np.float64)
            sat = np.where(np.isfinite(values) & ~np.isfinite(rf), np.sign(values) * fmax, rf)
            if key == "fp8-e4m3":
                sat = np.where(np.isinf(values), np.sign(values) * fmax, sat)
            compare(f"bits {key} vs ml_dtypes + saturation", "--overflow saturate", key, "saturate", sat, None)
    if torch is None:
        report.skip("bits fp8 vs torch", "", "torch not importable")
    else:
        tv = torch.from_numpy(values.copy())
        e4 = tv.to(torch.float8_e4m3fn)
        compare("bits fp8-e4m3 vs torch float8_e4m3fn", "--overflow saturate", "fp8-e4m3", "saturate",
                e4.float().numpy().astype(np.float64), e4.view(torch.uint8).numpy())
        bf = tv.to(torch.bfloat16)
        compare("bits bf16 vs torch bfloat16", "", "bf16", "saturate", bf.float().numpy().astype(np.float64),
                bf.view(torch.int16).numpy().view(np.uint16))


# ---------------------------------------------------------------------------------------------


def pick_tensors(header: dict, limit: int, wanted: list[str]) -> list[str]:
    floats = sorted(
        (k for k, v in header.items() if k != "__metadata__" and v["dtype"] in ("F32", "F16", "BF16", "F64")),
    )
    if wanted:
        return [w for w in wanted if w in floats]
    if len(floats) <= limit:
        return floats
    size = lambda k: int(np.prod(header[k]["shape"], dtype=np.int64))  # noqa: E731
    largest = max(floats, key=size)
    step = len(floats) / (limit - 1)
    picked = {floats[int(i * step)] for i in range(limit - 1)} | {largest}
    return sorted(picked)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, nargs="?", help="a safetensors file (e.g. all-MiniLM-L6-v2 model.safetensors)")
    ap.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "quantscope")
    ap.add_argument("--tensor", action="append", default=[], help="tensor to check (repeatable); default: a spread")
    ap.add_argument("--max-tensors", type=int, default=10)
    ap.add_argument("--bits-values", type=int, default=2000, help="random values for the float-format check")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", action="append", default=[], choices=["quantize", "calibration", "bits"])
    args = ap.parse_args()

    if not args.binary.exists():
        print(f"quantscope binary not found at {args.binary}; build it with `cargo build --release`")
        return 2
    ml_dtypes = try_import("ml_dtypes")
    torch = try_import("torch")
    ort = try_import("onnxruntime")
    onnx = try_import("onnx")
    ort_ref = OrtRef(ort, onnx) if ort is not None and onnx is not None else None
    torch_ref = TorchRef(torch) if torch is not None else None
    print(f"numpy {np.__version__}" + "".join(
        f", {m.__name__} {m.__version__}" for m in (ml_dtypes, torch, ort, onnx) if m is not None
    ))

    report = Report()
    if args.model is not None and not ({"quantize", "calibration"} <= set(args.skip)):
        header, _ = read_safetensors(args.model, names=[])
        names = pick_tensors(header, args.max_tensors, args.tensor)
        _, xs = read_safetensors(args.model, names=names)
        xs = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in xs.items()}
        nonfinite = [k for k, v in xs.items() if not np.all(np.isfinite(v))]
        for k in nonfinite:
            print(f"note: {k} has NaN/Inf values; left out of the value comparisons")
            xs.pop(k)
        print(f"model {args.model}: checking {len(xs)} tensors: " + ", ".join(f"{k} {list(v.shape)}" for k, v in xs.items()))
        if "quantize" not in args.skip:
            check_quantize(args, report, args.model, xs, ort_ref, torch_ref)
        if "calibration" not in args.skip:
            check_calibration(args, report, args.model, xs)
    elif args.model is None:
        print("no model given: checking float formats only")
    if "bits" not in args.skip:
        check_bits(args, report, ml_dtypes, torch)
    failed = report.print()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
