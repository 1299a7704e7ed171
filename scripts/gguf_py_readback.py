#!/usr/bin/env python3
"""Reads a GGUF file with the reference `gguf` package (gguf-py, llama.cpp's own Python reader)
and prints what it sees as JSON: every metadata field (its types and contents), the alignment,
and every tensor (name, ggml type, dims innermost-first, data offset, and its values
dequantized by gguf-py, as f32 bit patterns so the comparison is exact).

The output is committed next to the GGUF file the quantscope writer produced
(tests/fixtures/gguf_writer/), so the Rust test checks the writer against gguf-py without
Python on CI. Regenerate with:

    QUANTSCOPE_BLESS=1 cargo test --no-default-features --lib gguf_write
    /work/venv/bin/python scripts/gguf_py_readback.py \
        tests/fixtures/gguf_writer/sample.gguf > tests/fixtures/gguf_writer/sample.gguf_py.json

The CLI's GGUF output (tests/cli.rs, `quantize --format q4_0 --output X.gguf`) likewise:

    QUANTSCOPE_BLESS=1 cargo test --no-default-features --test cli quantize_q4_0
    /work/venv/bin/python scripts/gguf_py_readback.py \
        tests/fixtures/formats/cli_q4_0.gguf > tests/fixtures/formats/cli_q4_0.gguf_py.json
"""

import json
import sys
from importlib.metadata import version

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def field_json(field):
    # Floats are exact: every f32 and f64 is a double, and JSON keeps doubles exactly. Nested
    # arrays come back flattened (gguf-py's reader flattens them).
    return {"key": field.name, "types": [t.name for t in field.types], "value": field.contents()}


def main(path):
    reader = GGUFReader(path)
    fields = [field_json(f) for f in reader.fields.values() if not f.name.startswith("GGUF.")]
    tensors = []
    for t in reader.tensors:
        if t.tensor_type.name in ("I8", "I16", "I32", "I64", "F64"):
            # Plain numbers: gguf-py reads them typed; their f32 values are what we compare.
            values = t.data.astype(np.float32).reshape(-1)
        else:
            values = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        tensors.append({
            "name": t.name,
            "type": t.tensor_type.name,
            "dims_innermost_first": [int(d) for d in t.shape],
            "data_offset": int(t.data_offset),
            "n_bytes": int(t.n_bytes),
            "values_f32_bits": [int(v) for v in values.view(np.uint32)],
        })
    out = {
        "gguf_py_version": version("gguf"),
        "alignment": int(reader.alignment),
        "data_offset": int(reader.data_offset),
        "fields": fields,
        "tensors": tensors,
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
