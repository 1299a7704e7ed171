#!/usr/bin/env python3
"""The Hugging Face -> GGUF tensor names llama.cpp's converter gives, per architecture, as JSON.

For each architecture, a list of Hugging Face tensor names (as checkpoints of that family
spell them) is passed through the same steps as convert_hf_to_gguf.py (llama.cpp's
conversion/ package, as vendored in llama-cpp-python 0.3.36):
  - ModelBase.filter_tensors: "language_model." removed anywhere in the name;
  - TextModel.filter_tensors: multimodal tensors (vision_tower, multi_modal_projector...) skipped;
  - GemmaModel / Gemma2Model.filter_tensors: "lm_head.weight" skipped;
  - BertModel.filter_tensors: "bert." prefix removed, .gamma/.beta renamed, position_ids,
    pooler and cls.predictions / cls.seq_relationship skipped;
  - TextModel.prepare_tensors: .rotary_emb.inv_freq and attention mask buffers skipped;
  - LlamaModel / Qwen2Model.modify_tensors: "model." prepended for a bare `LlamaModel` /
    `Qwen2Model` checkpoint (names without the prefix);
  - then gguf-py's TensorNameMap.get_name(name, try_suffixes=(".weight", ".bias")).
A skipped or unmappable name maps to null. The output is committed as
tests/fixtures/pairing/hf_gguf_names.json; the Rust test checks quantscope's table against it.

    /work/venv/bin/python scripts/hf_gguf_names.py > tests/fixtures/pairing/hf_gguf_names.json
"""

import json
import sys
from importlib.metadata import version

import gguf

N_BLOCKS = 2

DECODER_LAYER = [
    "input_layernorm.weight",
    "self_attn.q_proj.weight", "self_attn.q_proj.bias",
    "self_attn.k_proj.weight", "self_attn.k_proj.bias",
    "self_attn.v_proj.weight", "self_attn.v_proj.bias",
    "self_attn.o_proj.weight",
    "post_attention_layernorm.weight",
    "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
]
DECODER_TOP = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]


def decoder(extra_layer=(), prefix="model.", top=DECODER_TOP):
    names = list(top)
    for b in range(N_BLOCKS):
        for n in DECODER_LAYER + list(extra_layer):
            names.append(f"{prefix}layers.{b}.{n}")
    return names


GEMMA2_EXTRA = ["pre_feedforward_layernorm.weight", "post_feedforward_layernorm.weight"]
QK_NORM = ["self_attn.q_norm.weight", "self_attn.k_norm.weight"]

CASES = {
    # LlamaForCausalLM / MistralForCausalLM (both convert as LlamaModel, arch "llama"), plus
    # a bare LlamaModel checkpoint, Mixtral's router, and Meta / Mistral native names.
    "llama": decoder(["block_sparse_moe.gate.weight", "self_attn.rotary_emb.inv_freq"]),
    # A bare LlamaModel / Qwen2Model checkpoint (no "model." prefix; the converter adds it).
    "llama/LlamaModel": ["embed_tokens.weight", "norm.weight", "layers.0.self_attn.q_proj.weight",
                         "layers.1.mlp.down_proj.weight"],
    # Meta's and Mistral's native names (consolidated.safetensors), which the tensor map knows.
    "llama/native": ["tok_embeddings.weight", "norm.weight", "output.weight",
                     "layers.0.attention_norm.weight", "layers.0.attention.wq.weight",
                     "layers.0.attention.wk.weight", "layers.0.attention.wv.weight",
                     "layers.0.attention.wo.weight", "layers.0.ffn_norm.weight",
                     "layers.0.feed_forward.w1.weight", "layers.0.feed_forward.w2.weight",
                     "layers.0.feed_forward.w3.weight"],
    # Ministral 3 (a LlamaModel with its own arch name).
    "mistral3": decoder(),
    "qwen2": decoder(),
    "qwen2/Qwen2Model": ["embed_tokens.weight", "norm.weight", "layers.1.mlp.up_proj.weight"],
    "qwen3": decoder(QK_NORM),
    "gemma": decoder(),
    "gemma2": decoder(GEMMA2_EXTRA),
    # Gemma3ForCausalLM (text only, e.g. gemma-3-270m) and Gemma3ForConditionalGeneration with
    # both prefixes transformers has used for its text model.
    "gemma3": decoder(GEMMA2_EXTRA + QK_NORM)
    + decoder(GEMMA2_EXTRA + QK_NORM, prefix="language_model.model.",
              top=["language_model.model.embed_tokens.weight", "language_model.model.norm.weight",
                   "language_model.lm_head.weight"])
    + decoder(GEMMA2_EXTRA + QK_NORM, prefix="model.language_model.",
              top=["model.language_model.embed_tokens.weight", "model.language_model.norm.weight"])
    + ["vision_tower.vision_model.embeddings.patch_embedding.weight",
       "multi_modal_projector.mm_input_projection_weight",
       "model.vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight"],
    "phi3": ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]
    + [f"model.layers.{b}.{n}" for b in range(N_BLOCKS) for n in [
        "input_layernorm.weight", "self_attn.qkv_proj.weight", "self_attn.o_proj.weight",
        "post_attention_layernorm.weight", "mlp.gate_up_proj.weight", "mlp.down_proj.weight"]],
    "bert": [
        "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
        "embeddings.LayerNorm.bias", "embeddings.position_ids", "pooler.dense.weight",
        "pooler.dense.bias", "bert.embeddings.word_embeddings.weight",
        "bert.embeddings.LayerNorm.gamma", "bert.embeddings.LayerNorm.beta",
        "cls.predictions.bias", "cls.seq_relationship.weight",
    ] + [f"{p}encoder.layer.{b}.{n}" for p in ("", "bert.") for b in range(N_BLOCKS) for n in [
        "attention.self.query.weight", "attention.self.query.bias",
        "attention.self.key.weight", "attention.self.key.bias",
        "attention.self.value.weight", "attention.self.value.bias",
        "attention.output.dense.weight", "attention.output.dense.bias",
        "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
        "intermediate.dense.weight", "intermediate.dense.bias",
        "output.dense.weight", "output.dense.bias",
        "output.LayerNorm.weight", "output.LayerNorm.bias"]],
}

MULTIMODAL_MARKERS = ("visual.", "vision.", "audio.", "vision_", "audio_", "projector.",
                      "patch_embed", "patch_embedding")


def convert_name(case, name):
    arch, _, hf_arch = case.partition("/")
    # TextModel.prepare_tensors skips these before anything else.
    if name.endswith((".attention.masked_bias", ".attention.bias", ".rotary_emb.inv_freq")):
        return None
    # BertModel.filter_tensors
    if arch == "bert":
        if name.startswith("bert."):
            name = name[5:]
        if name.endswith(".gamma"):
            name = name[:-6] + ".weight"
        if name.endswith(".beta"):
            name = name[:-5] + ".bias"
        if name in ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"):
            return None
        if name.startswith(("cls.predictions", "cls.seq_relationship")):
            return None
    # GemmaModel / Gemma2Model.filter_tensors (Gemma3Model keeps lm_head).
    if arch in ("gemma", "gemma2") and name == "lm_head.weight":
        return None
    # TextModel.filter_tensors: skip multimodal tensors.
    if name.startswith(("mlp", "vit.", "vpm.")) or any(m in name for m in MULTIMODAL_MARKERS):
        return None
    # ModelBase.filter_tensors
    if "language_model." in name:
        name = name.replace("language_model.", "")
    # LlamaModel / Qwen2Model.modify_tensors for a bare base-model checkpoint.
    if hf_arch in ("LlamaModel", "Qwen2Model"):
        name = "model." + name
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], N_BLOCKS)
    return tmap.get_name(name, try_suffixes=(".weight", ".bias"))


def main():
    out = {"gguf_py_version": version("gguf"), "architectures": {}}
    for arch, names in CASES.items():
        out["architectures"][arch] = [[n, convert_name(arch, n)] for n in names]
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
