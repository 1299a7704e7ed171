#!/usr/bin/env python3
"""Cross-checks `quantscope compare ORIGINAL.safetensors QUANTIZED.gguf --json` against a direct
computation with the reference readers: safetensors (numpy) for the original, gguf-py's
GGUFReader + gguf.quants.dequantize for the GGUF, names through llama.cpp's converter steps
(scripts/hf_gguf_names.py), Q/K rows un-permuted as LlamaModel.permute defines, Gemma norms - 1.

    /work/venv/bin/python scripts/compare_crosscheck.py ORIGINAL.safetensors QUANTIZED.gguf report.json

Prints one line per tensor with both MSE and SQNR values and the largest relative difference.
"""

import json
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
from safetensors.numpy import load_file

sys.path.insert(0, str(Path(__file__).parent))
import hf_gguf_names  # noqa: E402


def unpermute(w, n_head):
    # Inverse of LlamaModel.permute: reshape(n_head, head_dim/2, 2, ...) -> swap back.
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main(original, quantized, report_path):
    hf = load_file(original)
    reader = GGUFReader(quantized)
    arch = reader.fields["general.architecture"].contents()
    hf_gguf_names.N_BLOCKS = int(reader.fields[f"{arch}.block_count"].contents())
    heads = reader.fields.get(f"{arch}.attention.head_count")
    heads_kv = reader.fields.get(f"{arch}.attention.head_count_kv")
    n_head = heads.contents() if heads else None
    n_head_kv = heads_kv.contents() if heads_kv else n_head
    gguf_tensors = {t.name: t for t in reader.tensors}
    report = json.load(open(report_path))
    by_name = {t["name"]: t for t in report["tensors"]}
    worst = 0.0
    for name, x in hf.items():
        g = hf_gguf_names.convert_name(arch, name)
        if g is None or g not in gguf_tensors:
            assert name in report["unmatched_original"], name
            continue
        t = gguf_tensors[g]
        xh = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(x.shape)
        if arch in ("llama", "mistral3") and name.endswith(("q_proj.weight", "q_proj.bias")):
            xh = unpermute(xh, n_head)
        if arch in ("llama", "mistral3") and name.endswith(("k_proj.weight", "k_proj.bias")):
            xh = unpermute(xh, n_head_kv)
        if arch.startswith("gemma") and name.replace("language_model.", "").endswith("norm.weight"):
            xh = xh - np.float32(1)
        x64, e = x.astype(np.float64), xh.astype(np.float64) - x.astype(np.float64)
        mse = float(np.mean(e * e))
        sum_e2, sum_x2 = float(np.sum(e * e)), float(np.sum(x64 * x64))
        sqnr = float("inf") if sum_e2 == 0 else 10 * np.log10(sum_x2 / sum_e2)
        ours = by_name[name]["metrics"]
        ours_sqnr = float("inf") if ours["sqnr_db"] == "inf" else ours["sqnr_db"]
        rel = 0.0 if mse == ours["mse"] else abs(mse - ours["mse"]) / mse
        worst = max(worst, rel)
        assert ours["max_abs_error"] == float(np.max(np.abs(e))), name
        print(f"{name:60s} {t.tensor_type.name:5s} mse {mse:.6e} ours {ours['mse']:.6e} "
              f"sqnr {sqnr:8.3f} ours {ours_sqnr:8.3f}")
    print(f"largest relative MSE difference: {worst:.3e}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
