#!/usr/bin/env python3
"""Reference thresholds for calibration over batches, from the libraries themselves.

For every activation file in assets/minilm/activations/ (an .npz of batch_00, batch_01, ...,
each [tokens, features]) it feeds the batches one at a time to
  - ONNX Runtime's MinMaxCalibrater (onnxruntime.quantization.calibrate), on a one-node ONNX
    graph (X -> MatMul) so that X is the calibrated tensor: plain, moving average
    (averaging_constant 0.01) asymmetric and symmetric, and per_channel (per feature, all
    batches in one collect_data call: ONNX Runtime cannot merge per-channel ranges across calls);
  - ONNX Runtime's PercentileCalibrater (HistogramCalibrater + HistogramCollector,
    symmetric=True, num_bins=2048, the create_calibrator defaults, at percentile P);
  - NVIDIA Model Optimizer's HistogramCalibrator (modelopt.torch.quantization.calib, the
    maintained successor of pytorch-quantization's; same code) with num_bins=2048 and
    torch_hist=False (the numpy histogram that ONNX Runtime's collector copies), and its
    percentile (P) and entropy (8 bits, start_bin 128) amax after each batch.
Each library's collect call sees exactly one batch, so "after batch k" is the state a user of
that library has after calibrating on batches 0..k. The entropy and percentile are computed on
copies of the collected histogram: modelopt's _compute_amax_entropy writes bins[0] := bins[1]
into the calibrator's own histogram (it slices a numpy view), which would change later batches.

Writes tests/data/batch_calibration_reference.json, which tests/batch_calibration.rs compares
with quantscope's quant::batches. Usage: python scripts/batch_calibration_reference.py
"""

from __future__ import annotations

import contextlib
import io
import json
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ACTIVATIONS = ROOT / "assets" / "minilm" / "activations"
OUT = ROOT / "tests" / "data" / "batch_calibration_reference.json"
PERCENTILE = 99.99
AVERAGING = 0.01
BINS = 2048


def bits(x: float) -> int:
    """The IEEE bit pattern of a float64, so readers need not parse decimals exactly."""
    return struct.unpack("<Q", struct.pack("<d", float(x)))[0]


def batches_of(path: Path) -> list[np.ndarray]:
    with np.load(path) as z:
        names = sorted(z.files, key=lambda n: int(n.removeprefix("batch_")))
        return [z[n].astype(np.float32) for n in names]


def onnx_model(features: int, folder: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.zeros((features, 1), dtype=np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        "one_matmul",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["tokens", features])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["tokens", 1])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / "model.onnx"
    onnx.save(model, path)
    return path


class Batches:
    """A CalibrationDataReader that yields the given batches."""

    def __init__(self, *batches: np.ndarray):
        self.items = [{"X": b} for b in reversed(batches)]

    def get_next(self):
        return self.items.pop() if self.items else None

    def __iter__(self):
        return self

    def __next__(self):
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item

    def __len__(self):
        return len(self.items)

    def set_range(self, start_index, end_index):
        pass


def quiet(call):
    with contextlib.redirect_stdout(io.StringIO()):
        return call()


def ort_runs(model: Path, batches: list[np.ndarray], folder: Path) -> dict[str, list]:
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator

    def run(method, options, pick):
        cal = create_calibrator(
            model,
            ["MatMul"],
            augmented_model_path=str(folder / f"augmented_{len(options)}_{method.name}.onnx"),
            calibrate_method=method,
            extra_options=options,
        )
        out = []
        for batch in batches:
            quiet(lambda: cal.collect_data(Batches(batch)))
            out.append(pick(cal, quiet(cal.compute_data)["X"]))
        return out

    def pair(_, data):
        lo, hi = data.range_value
        return [float(np.asarray(lo).reshape(-1)[0]), float(np.asarray(hi).reshape(-1)[0])]

    def per_channel(_, data):
        lo, hi = data.range_value
        return [np.asarray(lo, dtype=np.float32).tolist(), np.asarray(hi, dtype=np.float32).tolist()]

    def hist(cal, data):
        h = cal.collector.histogram_dict["X"]
        counts, edges = h[0], h[1]
        return {
            "range": pair(None, data),
            "bins": int(len(counts)),
            "first_edge": float(edges[0]),
            "last_edge": float(edges[-1]),
            "first_edge_bits": bits(edges[0]),
            "last_edge_bits": bits(edges[-1]),
            "edge_dtype": str(edges.dtype),
            "total": int(counts.sum()),
        }

    # per_channel ranges cannot be merged across collect_data calls (ONNX Runtime 1.32's
    # merge_range calls Python's min() on arrays and raises), so all batches go in one call:
    # the per-feature min and max over every batch.
    cal = create_calibrator(
        model,
        ["MatMul"],
        augmented_model_path=str(folder / "augmented_per_channel.onnx"),
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"per_channel": True},
    )
    quiet(lambda: cal.collect_data(Batches(*batches)))
    per_channel_range = per_channel(None, quiet(cal.compute_data)["X"])
    return {
        "per_channel": per_channel_range,
        "minmax": run(CalibrationMethod.MinMax, {}, pair),
        "moving_average": run(
            CalibrationMethod.MinMax, {"moving_average": True, "averaging_constant": AVERAGING}, pair
        ),
        "moving_average_symmetric": run(
            CalibrationMethod.MinMax,
            {"moving_average": True, "averaging_constant": AVERAGING, "symmetric": True},
            pair,
        ),
        "percentile": run(
            CalibrationMethod.Percentile,
            {"symmetric": True, "num_bins": BINS, "percentile": PERCENTILE},
            hist,
        ),
    }


def modelopt_runs(batches: list[np.ndarray]) -> list[dict]:
    import torch
    from modelopt.torch.quantization.calib import histogram as mh

    cal = mh.HistogramCalibrator(num_bits=8, axis=None, unsigned=False, num_bins=BINS, torch_hist=False)
    out = []
    for batch in batches:
        cal.collect(torch.from_numpy(batch))
        hist = np.array(cal._calib_hist, copy=True)
        edges = np.array(cal._calib_bin_edges, copy=True)
        percentile = mh._compute_amax_percentile(hist.copy(), edges, PERCENTILE)
        entropy = quiet(lambda: mh._compute_amax_entropy(hist.copy(), edges, 8, False, 1, 128))
        out.append(
            {
                "bins": int(len(hist)),
                "first_edge": float(edges[0]),
                "last_edge": float(edges[-1]),
                "first_edge_bits": bits(edges[0]),
                "last_edge_bits": bits(edges[-1]),
                "edge_dtype": str(edges.dtype),
                "total": int(hist.sum()),
                "percentile_amax": float(percentile),
                "entropy_amax": float(entropy),
                "percentile_amax_dtype": str(percentile.dtype),
            }
        )
    return out


def main() -> None:
    import modelopt
    import onnxruntime

    files = {}
    for path in sorted(ACTIVATIONS.glob("*.npz")):
        batches = batches_of(path)
        with tempfile.TemporaryDirectory() as folder:
            model = onnx_model(batches[0].shape[1], Path(folder))
            ort = ort_runs(model, batches, Path(folder))
        files[path.name] = {
            "rows": [int(b.shape[0]) for b in batches],
            "features": int(batches[0].shape[1]),
            "onnxruntime": ort,
            "tensorrt": modelopt_runs(batches),
        }
        print(path.name, file=sys.stderr)
    document = {
        "generator": "scripts/batch_calibration_reference.py",
        "onnxruntime": onnxruntime.__version__,
        "modelopt": modelopt.__version__,
        "numpy": np.__version__,
        "percentile": PERCENTILE,
        "averaging_constant": AVERAGING,
        "num_bins": BINS,
        "files": files,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
