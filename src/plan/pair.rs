//! Pairing two files of one model for `compare`: name maps, layout fixes and FP8 scales.
//!
//! Three kinds of pair are understood:
//! - **Hugging Face ↔ GGUF** (either side may be the GGUF): tensor names follow exactly the
//!   mapping llama.cpp's converter applies (`convert_hf_to_gguf.py`, its `conversion/` classes
//!   and gguf-py's `tensor_mapping.py`), chosen by the GGUF's `general.architecture`: llama
//!   (also Hugging Face Mistral, which converts as llama), mistral3, qwen2, qwen3, gemma,
//!   gemma2, gemma3 (text models, with the `language_model.` prefixes of the multimodal
//!   checkpoints removed as the converter removes them), phi3 (fused `qkv_proj` and
//!   `gate_up_proj` stay fused: `attn_qkv`, `ffn_up`) and bert (`token_types` is the
//!   token-type embedding). Layout fixes undo what the converter did to the values:
//!   - GGUF stores dimensions innermost-first; the loader already gives row-major shapes;
//!   - `LlamaModel.permute` reorders the rows of `q_proj` / `k_proj` (weights and biases) of
//!     the llama-family converters (`LlamaModel` and its subclasses kept here: llama and
//!     mistral3) so that each head's two rotary halves interleave; it is undone on the GGUF
//!     side with the GGUF's head counts (`{arch}.attention.head_count`, `head_count_kv`), and
//!     every pair records whether it was;
//!   - `GemmaModel`, `Gemma2Model` and `Gemma3Model` add 1 to every `*norm.weight` (the
//!     Gemma RMSNorm multiplies by `1 + w`); 1 is subtracted again on the GGUF side (in f32);
//!   - `Gemma3Model` drops out-of-vocabulary rows of `embed_tokens`; a shorter GGUF
//!     `token_embd` is compared with the original's first rows.
//! - **Identity**: safetensors ↔ safetensors, GGUF ↔ GGUF of the same model: same names.
//! - **FP8 checkpoints** (quantized side): an `F8_E4M3` / `F8_E5M2` weight `X.weight` with
//!   `X.weight_scale` (per tensor, per output channel, or per block) or `X.weight_scale_inv`
//!   (DeepSeek-V3 style 128×128 blocks) is dequantized as vLLM, transformers and llama.cpp's
//!   converter do: `weight.float() * scale`, the scale repeated over its block (and cut at the
//!   tensor's edge). Despite its name, `weight_scale_inv` multiplies: it is the inverse of the
//!   quantization scale. `input_scale`, `k_scale`, `v_scale` and `activation_scale` scale
//!   activations, not weights: they are set aside (and named), not compared.
//!
//! Tensors that pair with nothing are listed on both sides, never dropped; a pair whose shapes
//! differ carries a message for that tensor instead of failing the whole comparison.

use std::collections::{HashMap, HashSet};

use crate::tensor::{DType, Model};

/// The metadata key naming a GGUF's architecture.
const ARCHITECTURE_KEY: &str = "general.architecture";

/// The llama.cpp architectures whose Hugging Face ↔ GGUF names this module maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Architecture {
    /// `llama`: LlamaForCausalLM, MistralForCausalLM, MixtralForCausalLM (LlamaModel).
    Llama,
    /// `mistral3`: Ministral 3 (a LlamaModel) and Mistral-native checkpoints.
    Mistral3,
    /// `qwen2`: Qwen2ForCausalLM.
    Qwen2,
    /// `qwen3`: Qwen3ForCausalLM.
    Qwen3,
    /// `gemma`: GemmaForCausalLM.
    Gemma,
    /// `gemma2`: Gemma2ForCausalLM.
    Gemma2,
    /// `gemma3`: Gemma3ForCausalLM and the text model of Gemma3ForConditionalGeneration.
    Gemma3,
    /// `phi3`: Phi3ForCausalLM.
    Phi3,
    /// `bert`: BertModel and its task heads.
    Bert,
}

impl Architecture {
    /// Every supported architecture.
    pub const ALL: [Architecture; 9] = [
        Architecture::Llama,
        Architecture::Mistral3,
        Architecture::Qwen2,
        Architecture::Qwen3,
        Architecture::Gemma,
        Architecture::Gemma2,
        Architecture::Gemma3,
        Architecture::Phi3,
        Architecture::Bert,
    ];

    /// The name GGUF's `general.architecture` uses.
    pub fn gguf_name(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Mistral3 => "mistral3",
            Architecture::Qwen2 => "qwen2",
            Architecture::Qwen3 => "qwen3",
            Architecture::Gemma => "gemma",
            Architecture::Gemma2 => "gemma2",
            Architecture::Gemma3 => "gemma3",
            Architecture::Phi3 => "phi3",
            Architecture::Bert => "bert",
        }
    }

    /// The architecture named `name` in a GGUF's `general.architecture`.
    pub fn from_gguf_name(name: &str) -> Option<Architecture> {
        Architecture::ALL
            .into_iter()
            .find(|a| a.gguf_name() == name)
    }

    /// Whether llama.cpp's converter permutes Q/K rows (`LlamaModel.undo_permute`).
    pub fn permutes_qk(self) -> bool {
        matches!(self, Architecture::Llama | Architecture::Mistral3)
    }

    /// Whether the converter stores Gemma norm weights as `w + 1`.
    pub fn shifts_norms(self) -> bool {
        matches!(
            self,
            Architecture::Gemma | Architecture::Gemma2 | Architecture::Gemma3
        )
    }
}

/// How the tensor names of the two files correspond.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// Both files use the same names (same format, same model).
    Identity,
    /// One file uses Hugging Face names, the other GGUF names of this architecture.
    HfGguf {
        /// The GGUF's architecture.
        architecture: Architecture,
    },
    /// One file is a GGUF of an architecture this module has no name map for; only
    /// identical names can pair.
    UnknownArchitecture {
        /// The GGUF's `general.architecture` (empty when absent).
        architecture: String,
    },
}

/// One of the two files of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The reference (unquantized) model.
    Original,
    /// The quantized model.
    Quantized,
}

/// How an FP8 weight's scale tensor applies (always multiplied: `weight.float() * scale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleLayout {
    /// One scale for the whole tensor.
    PerTensor,
    /// One scale per output channel (row, axis 0).
    PerChannel,
    /// One scale per block of `rows` × `cols` elements (the last blocks may be cut short).
    Block {
        /// Block height (along axis 0).
        rows: usize,
        /// Block width (along axis 1).
        cols: usize,
    },
}

/// The scale tensor of an FP8 weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fp8Scale {
    /// Index of the scale tensor in the quantized model.
    pub index: usize,
    /// Its name (`X.weight_scale` or `X.weight_scale_inv`).
    pub name: String,
    /// How it broadcasts over the weight.
    pub layout: ScaleLayout,
}

/// What must be done to the values of a pair before they are compared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayoutFix {
    /// The side holding the GGUF tensor (when one side is GGUF and the other is not).
    pub gguf_side: Option<Side>,
    /// Undo llama.cpp's Q/K row permutation on the GGUF side with this many heads.
    pub unpermute_heads: Option<usize>,
    /// Subtract 1 from the GGUF side's values (Gemma norm weights).
    pub norm_shift: bool,
    /// Compare only the first this-many rows of the non-GGUF side (Gemma 3's `token_embd`,
    /// cut to the real vocabulary by the converter).
    pub leading_rows: Option<usize>,
}

/// Two tensors that hold the same weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorPair {
    /// Index in the original model.
    pub original_index: usize,
    /// Name in the original model.
    pub original_name: String,
    /// Index in the quantized model.
    pub quantized_index: usize,
    /// Name in the quantized model.
    pub quantized_name: String,
    /// The fixes applied before comparing.
    pub fix: LayoutFix,
    /// The scale of an FP8 quantized weight.
    pub fp8_scale: Option<Fp8Scale>,
    /// Why this pair cannot be compared (shapes differ, a layout fix does not fit), if so.
    pub problem: Option<String>,
    /// What was done to pair these, for people ("Q/K row permutation undone (8 heads)").
    pub notes: Vec<String>,
}

impl TensorPair {
    /// Whether llama.cpp's Q/K row permutation is undone for this pair.
    pub fn permutation_undone(&self) -> bool {
        self.fix.unpermute_heads.is_some() && self.problem.is_none()
    }
}

/// The pairing of two models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairPlan {
    /// How names correspond.
    pub mapping: Mapping,
    /// The pairs, in the original model's tensor order.
    pub pairs: Vec<TensorPair>,
    /// Original tensors that pair with nothing (file order).
    pub unmatched_original: Vec<String>,
    /// Quantized tensors that pair with nothing and are no weight's scale (file order).
    pub unmatched_quantized: Vec<String>,
    /// Quantized tensors used as FP8 weight scales (their bytes count in their weight's bits).
    pub weight_scales: Vec<String>,
    /// Quantized tensors that scale activations (`input_scale`, `k_scale`, ...): set aside.
    pub activation_scales: Vec<String>,
    /// Facts about the whole pairing, for people.
    pub notes: Vec<String>,
}

/// A GGUF's architecture name, if the model is a GGUF file (its metadata holds
/// `general.architecture`, or its file name ends in `.gguf`).
fn gguf_architecture(model: &Model) -> Option<String> {
    if let Some(arch) = metadata(model, ARCHITECTURE_KEY) {
        return Some(arch.to_string());
    }
    let is_gguf = model
        .files()
        .first()
        .and_then(|f| f.extension())
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
    is_gguf.then(String::new)
}

/// The text of metadata `key`.
fn metadata<'a>(model: &'a Model, key: &str) -> Option<&'a str> {
    model
        .metadata()
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A positive integer metadata value.
fn metadata_count(model: &Model, key: &str) -> Option<usize> {
    metadata(model, key)?
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|&n| n > 0)
}

/// The tensor stem and its `.weight` / `.bias` suffix.
fn split_suffix(name: &str) -> Option<(&str, &'static str)> {
    if let Some(stem) = name.strip_suffix(".weight") {
        Some((stem, ".weight"))
    } else {
        name.strip_suffix(".bias").map(|stem| (stem, ".bias"))
    }
}

/// Whether `TextModel.filter_tensors` skips this (multimodal) tensor.
fn is_multimodal(name: &str) -> bool {
    const PREFIXES: [&str; 3] = ["mlp", "vit.", "vpm."];
    const MARKERS: [&str; 8] = [
        "visual.",
        "vision.",
        "audio.",
        "vision_",
        "audio_",
        "projector.",
        "patch_embed",
        "patch_embedding",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p)) || MARKERS.iter().any(|m| name.contains(m))
}

/// The GGUF name llama.cpp's converter gives the Hugging Face tensor `hf_name` for
/// `architecture`, or `None` when the converter skips it or has no name for it.
pub fn gguf_name_for(architecture: Architecture, hf_name: &str) -> Option<String> {
    // TextModel.prepare_tensors skips these buffers before anything else.
    if hf_name.ends_with(".attention.masked_bias")
        || hf_name.ends_with(".attention.bias")
        || hf_name.ends_with(".rotary_emb.inv_freq")
    {
        return None;
    }
    match architecture {
        Architecture::Bert => bert_name(hf_name),
        _ => decoder_name(architecture, hf_name),
    }
}

/// Names of the decoder-only families (llama, mistral3, qwen2/3, gemma/2/3, phi3).
fn decoder_name(arch: Architecture, hf_name: &str) -> Option<String> {
    use Architecture as A;
    // GemmaModel / Gemma2Model.filter_tensors skip lm_head (Gemma ties it to token_embd).
    if matches!(arch, A::Gemma | A::Gemma2) && hf_name == "lm_head.weight" {
        return None;
    }
    if is_multimodal(hf_name) {
        return None;
    }
    // ModelBase.filter_tensors removes "language_model." anywhere in the name.
    let name = hf_name.replace("language_model.", "");
    let (stem, suffix) = split_suffix(&name)?;
    if stem == "lm_head" {
        return (!matches!(arch, A::Gemma | A::Gemma2)).then(|| format!("output{suffix}"));
    }
    // A bare base-model checkpoint has no "model." prefix; the converter adds it.
    let stem = stem.strip_prefix("model.").unwrap_or(stem);
    let native = matches!(arch, A::Llama | A::Mistral3);
    let top = match stem {
        "embed_tokens" => Some("token_embd"),
        "norm" => Some("output_norm"),
        "tok_embeddings" if native => Some("token_embd"),
        "output" if native => Some("output"),
        _ => None,
    };
    if let Some(top) = top {
        return Some(format!("{top}{suffix}"));
    }
    let rest = stem.strip_prefix("layers.")?;
    let (block, inner) = rest.split_once('.')?;
    let block: usize = block.parse().ok()?;
    let gemma2_norms = matches!(arch, A::Gemma2 | A::Gemma3);
    let qk_norms = matches!(arch, A::Qwen3 | A::Gemma3);
    let mapped = match inner {
        "input_layernorm" => "attn_norm",
        "self_attn.q_proj" if arch != A::Phi3 => "attn_q",
        "self_attn.k_proj" if arch != A::Phi3 => "attn_k",
        "self_attn.v_proj" if arch != A::Phi3 => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "post_attention_layernorm" if gemma2_norms => "post_attention_norm",
        "post_attention_layernorm" => "ffn_norm",
        "pre_feedforward_layernorm" if gemma2_norms => "ffn_norm",
        "post_feedforward_layernorm" if gemma2_norms => "post_ffw_norm",
        "self_attn.q_norm" if qk_norms => "attn_q_norm",
        "self_attn.k_norm" if qk_norms => "attn_k_norm",
        "mlp.gate_proj" if arch != A::Phi3 => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "self_attn.qkv_proj" if arch == A::Phi3 => "attn_qkv",
        "mlp.gate_up_proj" if arch == A::Phi3 => "ffn_up",
        "block_sparse_moe.gate" if arch == A::Llama => "ffn_gate_inp",
        // Meta's and Mistral's native names.
        "attention_norm" if native => "attn_norm",
        "attention.wq" if native => "attn_q",
        "attention.wk" if native => "attn_k",
        "attention.wv" if native => "attn_v",
        "attention.wo" if native => "attn_output",
        "ffn_norm" if native => "ffn_norm",
        "feed_forward.w1" if native => "ffn_gate",
        "feed_forward.w2" if native => "ffn_down",
        "feed_forward.w3" if native => "ffn_up",
        _ => return None,
    };
    Some(format!("blk.{block}.{mapped}{suffix}"))
}

/// BERT names, after `BertModel.filter_tensors`.
fn bert_name(hf_name: &str) -> Option<String> {
    let name = hf_name.strip_prefix("bert.").unwrap_or(hf_name);
    let name = if let Some(stem) = name.strip_suffix(".gamma") {
        format!("{stem}.weight")
    } else if let Some(stem) = name.strip_suffix(".beta") {
        format!("{stem}.bias")
    } else {
        name.to_string()
    };
    if name.starts_with("pooler.")
        || name == "embeddings.position_ids"
        || name.starts_with("cls.predictions")
        || name.starts_with("cls.seq_relationship")
        || is_multimodal(&name)
    {
        return None;
    }
    let (stem, suffix) = split_suffix(&name)?;
    let top = match stem {
        "embeddings.word_embeddings" => Some("token_embd"),
        "embeddings.position_embeddings" => Some("position_embd"),
        "embeddings.token_type_embeddings" => Some("token_types"),
        "embeddings.LayerNorm" => Some("token_embd_norm"),
        _ => None,
    };
    if let Some(top) = top {
        return Some(format!("{top}{suffix}"));
    }
    let rest = stem.strip_prefix("encoder.layer.")?;
    let (block, inner) = rest.split_once('.')?;
    let block: usize = block.parse().ok()?;
    let mapped = match inner {
        "attention.self.query" => "attn_q",
        "attention.self.key" => "attn_k",
        "attention.self.value" => "attn_v",
        "attention.output.dense" => "attn_output",
        "attention.output.LayerNorm" => "attn_output_norm",
        "intermediate.dense" => "ffn_up",
        "output.dense" => "ffn_down",
        "output.LayerNorm" => "layer_output_norm",
        _ => return None,
    };
    Some(format!("blk.{block}.{mapped}{suffix}"))
}

/// Which heads count `LlamaModel.permute` used for this Hugging Face tensor: `n_head` for
/// `q_proj`, `n_head_kv` for `k_proj` (the converter passes `n_head` when they are equal);
/// `None` for every other tensor.
fn permutation_heads(hf_name: &str, n_head: usize, n_head_kv: Option<usize>) -> Option<usize> {
    if hf_name.ends_with("q_proj.weight") || hf_name.ends_with("q_proj.bias") {
        Some(n_head)
    } else if hf_name.ends_with("k_proj.weight") || hf_name.ends_with("k_proj.bias") {
        Some(n_head_kv.unwrap_or(n_head))
    } else {
        None
    }
}

/// The row index llama.cpp's `LlamaModel.permute` moves Hugging Face row `hf_row` to.
///
/// `permute(w, n_head)` reshapes the rows to `(n_head, 2, head_dim / 2)`, swaps the last two
/// axes and flattens again: within each head, HF row `i * head_dim / 2 + j` (`i` in {0, 1})
/// goes to row `2 j + i`, so the two rotary halves interleave.
fn gguf_row_of(hf_row: usize, head_dim: usize) -> usize {
    let half = head_dim / 2;
    let (head, within) = (hf_row / head_dim, hf_row % head_dim);
    let (i, j) = (within / half, within % half);
    head * head_dim + 2 * j + i
}

/// The GGUF row holding Hugging Face row `hf_row` of a Q/K tensor of `rows` rows that
/// llama.cpp's converter permuted with `n_head` heads (for pointing at a stored block).
pub fn gguf_row_for(hf_row: usize, rows: usize, n_head: usize) -> Result<usize, String> {
    Ok(gguf_row_of(hf_row, head_dim(rows, n_head)?))
}

/// Checks that `rows` rows split into `n_head` heads of an even size.
fn head_dim(rows: usize, n_head: usize) -> Result<usize, String> {
    if n_head == 0 || !rows.is_multiple_of(n_head) || !(rows / n_head).is_multiple_of(2) {
        return Err(format!(
            "cannot undo the Q/K row permutation: {rows} rows do not split into {n_head} heads of even size"
        ));
    }
    Ok(rows / n_head)
}

/// Applies llama.cpp's `LlamaModel.permute(w, n_head, n_head)` to `values` (row-major,
/// `rows` rows): the GGUF order of Hugging Face Q/K rows. Used to write test fixtures.
pub fn permute_rows(values: &[f32], rows: usize, n_head: usize) -> Result<Vec<f32>, String> {
    reorder_rows(values, rows, n_head, true)
}

/// Undoes [`permute_rows`]: GGUF-ordered Q/K rows back in Hugging Face order.
pub fn unpermute_rows(values: &[f32], rows: usize, n_head: usize) -> Result<Vec<f32>, String> {
    reorder_rows(values, rows, n_head, false)
}

fn reorder_rows(
    values: &[f32],
    rows: usize,
    n_head: usize,
    to_gguf: bool,
) -> Result<Vec<f32>, String> {
    let head_dim = head_dim(rows, n_head)?;
    if rows == 0 || !values.len().is_multiple_of(rows) {
        return Err(format!(
            "{} values do not form {rows} equal rows",
            values.len()
        ));
    }
    let row_len = values.len() / rows;
    let mut out = vec![0.0f32; values.len()];
    for hf_row in 0..rows {
        let gguf_row = gguf_row_of(hf_row, head_dim);
        let (from, to) = if to_gguf {
            (hf_row, gguf_row)
        } else {
            (gguf_row, hf_row)
        };
        out[to * row_len..(to + 1) * row_len]
            .copy_from_slice(&values[from * row_len..(from + 1) * row_len]);
    }
    Ok(out)
}

/// Activation-scale suffixes of FP8 checkpoints (not needed to rebuild a weight).
const ACTIVATION_SCALE_SUFFIXES: [&str; 5] = [
    ".input_scale",
    ".k_scale",
    ".v_scale",
    ".activation_scale",
    "_activation_scale",
];

/// The `weight_block_size` of a `quantization_config` in a `config.json` beside the file.
fn configured_block_size(model: &Model) -> Option<(usize, usize)> {
    let folder = model.files().first()?.parent()?;
    let text = std::fs::read_to_string(folder.join("config.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let block = json.get("quantization_config")?.get("weight_block_size")?;
    let dims: Vec<usize> = block
        .as_array()?
        .iter()
        .filter_map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
        .collect();
    match dims[..] {
        [rows, cols] if rows > 0 && cols > 0 => Some((rows, cols)),
        _ => None,
    }
}

/// How a scale of shape `scale_shape` broadcasts over a weight of shape `weight_shape`.
fn scale_layout(
    weight_shape: &[usize],
    scale_shape: &[usize],
    configured: Option<(usize, usize)>,
) -> Result<ScaleLayout, String> {
    let scale_numel: usize = scale_shape.iter().product();
    let rows = weight_shape.first().copied().unwrap_or(1);
    if scale_numel == 1 {
        return Ok(ScaleLayout::PerTensor);
    }
    let squeezed: Vec<usize> = scale_shape.iter().copied().filter(|&d| d != 1).collect();
    if squeezed == [rows] && (scale_shape.len() == 1 || scale_shape.get(1) == Some(&1)) {
        return Ok(ScaleLayout::PerChannel);
    }
    if let ([w_rows, w_cols], [s_rows, s_cols]) = (weight_shape, scale_shape)
        && *s_rows > 0
        && *s_cols > 0
    {
        let candidates = configured.into_iter().chain([
            (128, 128),
            (w_rows.div_ceil(*s_rows), w_cols.div_ceil(*s_cols)),
        ]);
        for (b_rows, b_cols) in candidates {
            if b_rows > 0
                && b_cols > 0
                && w_rows.div_ceil(b_rows) == *s_rows
                && w_cols.div_ceil(b_cols) == *s_cols
            {
                return Ok(ScaleLayout::Block {
                    rows: b_rows,
                    cols: b_cols,
                });
            }
        }
    }
    Err(format!(
        "scale shape {scale_shape:?} fits neither per-tensor, per-channel nor blocks of the weight shape {weight_shape:?}"
    ))
}

/// The values an FP8 weight stands for: `weight * scale`, the scale broadcast by `layout`,
/// in f32 (as `weight.float() * scale.float()`).
pub fn apply_fp8_scale(
    weight: &mut [f32],
    shape: &[usize],
    scale: &[f32],
    layout: ScaleLayout,
) -> Result<(), String> {
    let rows = shape.first().copied().unwrap_or(1);
    let row_len = weight.len().checked_div(rows).unwrap_or(0);
    match layout {
        ScaleLayout::PerTensor => {
            let s = *scale.first().ok_or("empty scale tensor")?;
            weight.iter_mut().for_each(|w| *w *= s);
        }
        ScaleLayout::PerChannel => {
            if scale.len() != rows {
                return Err(format!("{} channel scales for {rows} rows", scale.len()));
            }
            for (row, &s) in weight.chunks_mut(row_len.max(1)).zip(scale) {
                row.iter_mut().for_each(|w| *w *= s);
            }
        }
        ScaleLayout::Block {
            rows: b_rows,
            cols: b_cols,
        } => {
            if b_rows == 0 || b_cols == 0 {
                return Err(format!("empty {b_rows}x{b_cols} scale blocks"));
            }
            let scale_cols = row_len.div_ceil(b_cols);
            if scale.len() != rows.div_ceil(b_rows) * scale_cols {
                return Err(format!(
                    "{} block scales do not cover {rows}x{row_len} in {b_rows}x{b_cols} blocks",
                    scale.len()
                ));
            }
            for (r, row) in weight.chunks_mut(row_len.max(1)).enumerate() {
                let scale_row = &scale[(r / b_rows) * scale_cols..][..scale_cols];
                for (c, w) in row.iter_mut().enumerate() {
                    *w *= scale_row[c / b_cols];
                }
            }
        }
    }
    Ok(())
}

/// The FP8 weights of a model and its scale tensors.
struct Fp8Scales {
    /// Weight index → its scale (or why the scale does not fit the weight).
    by_weight: HashMap<usize, Result<Fp8Scale, String>>,
    /// Names of the weight-scale tensors.
    weight_scales: Vec<String>,
    /// Names of the activation-scale tensors.
    activation_scales: Vec<String>,
}

/// Finds the FP8 weights of `quantized` and their scale tensors.
fn fp8_scales(quantized: &Model) -> Fp8Scales {
    let configured = configured_block_size(quantized);
    let mut by_weight = HashMap::new();
    let mut weight_scales = Vec::new();
    let mut activation_scales = Vec::new();
    for (index, info) in quantized.tensors().iter().enumerate() {
        let name = info.name.as_str();
        if ACTIVATION_SCALE_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            activation_scales.push(name.to_string());
            continue;
        }
        let weight_name = name
            .strip_suffix("_scale_inv")
            .or_else(|| name.strip_suffix("_scale"));
        let Some(weight_name) = weight_name.filter(|w| w.ends_with(".weight")) else {
            continue;
        };
        let Some(weight_index) = quantized.find(weight_name) else {
            continue;
        };
        let weight = &quantized.tensors()[weight_index];
        if !matches!(weight.dtype, DType::F8E4M3 | DType::F8E5M2) {
            continue;
        }
        weight_scales.push(name.to_string());
        let scale = scale_layout(&weight.shape, &info.shape, configured).map(|layout| Fp8Scale {
            index,
            name: name.to_string(),
            layout,
        });
        by_weight.insert(weight_index, scale);
    }
    Fp8Scales {
        by_weight,
        weight_scales,
        activation_scales,
    }
}

/// Pairs the tensors of `original` and `quantized` (see the module docs for the rules).
pub fn pair_models(original: &Model, quantized: &Model) -> PairPlan {
    let original_arch = gguf_architecture(original);
    let quantized_arch = gguf_architecture(quantized);
    let mut notes = Vec::new();
    // Which side is GGUF, when exactly one is.
    let (gguf_side, arch_name) = match (&original_arch, &quantized_arch) {
        (None, Some(a)) => (Some(Side::Quantized), a.clone()),
        (Some(a), None) => (Some(Side::Original), a.clone()),
        _ => (None, String::new()),
    };
    let architecture = Architecture::from_gguf_name(&arch_name);
    let mapping = match (gguf_side, architecture) {
        (None, _) => Mapping::Identity,
        (Some(_), Some(architecture)) => Mapping::HfGguf { architecture },
        (Some(_), None) => {
            let supported: Vec<&str> = Architecture::ALL.iter().map(|a| a.gguf_name()).collect();
            notes.push(format!(
                "GGUF architecture '{arch_name}' has no Hugging Face name map (known: {}); only identical names pair",
                supported.join(", ")
            ));
            Mapping::UnknownArchitecture {
                architecture: arch_name.clone(),
            }
        }
    };
    let gguf_model = match gguf_side {
        Some(Side::Original) => original,
        _ => quantized,
    };
    let n_head = metadata_count(gguf_model, &format!("{arch_name}.attention.head_count"));
    let n_head_kv = metadata_count(gguf_model, &format!("{arch_name}.attention.head_count_kv"));

    let Fp8Scales {
        by_weight: scales,
        weight_scales,
        activation_scales,
    } = fp8_scales(quantized);
    let set_aside: HashSet<&str> = weight_scales
        .iter()
        .chain(&activation_scales)
        .map(String::as_str)
        .collect();
    if !activation_scales.is_empty() {
        notes.push(format!(
            "{} activation scale tensor(s) (input_scale, k_scale, v_scale) scale activations, not weights: set aside",
            activation_scales.len()
        ));
    }

    // With a GGUF original, the quantized (Hugging Face) names are mapped once.
    let quantized_by_gguf_name: HashMap<String, usize> = match (&mapping, gguf_side) {
        (Mapping::HfGguf { architecture }, Some(Side::Original)) => quantized
            .tensors()
            .iter()
            .enumerate()
            .filter(|(_, q)| !set_aside.contains(q.name.as_str()))
            .filter_map(|(i, q)| gguf_name_for(*architecture, &q.name).map(|g| (g, i)))
            .collect(),
        _ => HashMap::new(),
    };
    let mut pairs = Vec::new();
    let mut used_quantized = vec![false; quantized.tensors().len()];
    let mut unmatched_original = Vec::new();
    for (original_index, info) in original.tensors().iter().enumerate() {
        // The name the quantized file would give this tensor.
        let quantized_index = match (&mapping, gguf_side) {
            (Mapping::HfGguf { architecture }, Some(Side::Quantized)) => {
                gguf_name_for(*architecture, &info.name).and_then(|n| quantized.find(&n))
            }
            (Mapping::HfGguf { .. }, Some(Side::Original)) => {
                quantized_by_gguf_name.get(&info.name).copied()
            }
            _ => quantized
                .find(&info.name)
                .filter(|&q| !set_aside.contains(quantized.tensors()[q].name.as_str())),
        };
        let Some(quantized_index) = quantized_index.filter(|&q| !used_quantized[q]) else {
            unmatched_original.push(info.name.clone());
            continue;
        };
        used_quantized[quantized_index] = true;
        let q_info = &quantized.tensors()[quantized_index];
        let mut pair = TensorPair {
            original_index,
            original_name: info.name.clone(),
            quantized_index,
            quantized_name: q_info.name.clone(),
            fix: LayoutFix {
                gguf_side,
                ..LayoutFix::default()
            },
            fp8_scale: None,
            problem: None,
            notes: Vec::new(),
        };
        if let Mapping::HfGguf { architecture } = mapping {
            let hf_name = match gguf_side {
                Some(Side::Original) => &q_info.name,
                _ => &info.name,
            };
            fix_hf_gguf(&mut pair, architecture, hf_name, n_head, n_head_kv);
        }
        if let Some(scale) = scales.get(&quantized_index) {
            match scale {
                Ok(scale) => {
                    pair.notes.push(format!(
                        "FP8 weight dequantized with {} ({})",
                        scale.name,
                        describe_scale(scale.layout)
                    ));
                    pair.fp8_scale = Some(scale.clone());
                }
                Err(message) => pair.problem = Some(message.clone()),
            }
        } else if matches!(q_info.dtype, DType::F8E4M3 | DType::F8E5M2) {
            pair.notes
                .push("FP8 weight without a scale tensor: compared as stored (scale 1)".into());
        }
        if pair.problem.is_none() {
            pair.problem = shape_problem(&pair, &info.shape, &q_info.shape);
        }
        pairs.push(pair);
    }
    let unmatched_quantized = quantized
        .tensors()
        .iter()
        .enumerate()
        .filter(|(i, t)| !used_quantized[*i] && !set_aside.contains(t.name.as_str()))
        .map(|(_, t)| t.name.clone())
        .collect();
    PairPlan {
        mapping,
        pairs,
        unmatched_original,
        unmatched_quantized,
        weight_scales,
        activation_scales,
        notes,
    }
}

fn describe_scale(layout: ScaleLayout) -> String {
    match layout {
        ScaleLayout::PerTensor => "per tensor".into(),
        ScaleLayout::PerChannel => "per output channel".into(),
        ScaleLayout::Block { rows, cols } => format!("per {rows}x{cols} block"),
    }
}

/// Sets the layout fixes of a Hugging Face ↔ GGUF pair.
fn fix_hf_gguf(
    pair: &mut TensorPair,
    architecture: Architecture,
    hf_name: &str,
    n_head: Option<usize>,
    n_head_kv: Option<usize>,
) {
    if architecture.permutes_qk() && permutation_heads(hf_name, 1, None).is_some() {
        match n_head {
            Some(n_head) => {
                let heads = permutation_heads(hf_name, n_head, n_head_kv);
                pair.fix.unpermute_heads = heads;
                if let Some(h) = heads {
                    pair.notes.push(format!(
                        "llama.cpp's Q/K row permutation undone ({h} heads)"
                    ));
                }
            }
            None => {
                pair.problem = Some(format!(
                    "the GGUF has no {}.attention.head_count, needed to undo llama.cpp's Q/K row permutation",
                    architecture.gguf_name()
                ));
            }
        }
    }
    let filtered = hf_name.replace("language_model.", "");
    if architecture.shifts_norms() && filtered.ends_with("norm.weight") {
        pair.fix.norm_shift = true;
        pair.notes.push(
            "Gemma norm weight: llama.cpp's converter stores w + 1; 1 subtracted again".into(),
        );
    }
}

/// Why the two shapes cannot be compared after the pair's fixes (or `None`). Also sets the
/// leading-rows fix of Gemma 3's `token_embd`.
fn shape_problem(
    pair: &TensorPair,
    original_shape: &[usize],
    quantized_shape: &[usize],
) -> Option<String> {
    let mut original_shape = original_shape.to_vec();
    let mut quantized_shape = quantized_shape.to_vec();
    if let Some(rows) = pair.fix.leading_rows {
        match pair.fix.gguf_side {
            Some(Side::Original) => quantized_shape[0] = rows,
            _ => original_shape[0] = rows,
        }
    }
    if original_shape != quantized_shape {
        return Some(format!(
            "shapes differ: original {original_shape:?}, quantized {quantized_shape:?}"
        ));
    }
    if let Some(heads) = pair.fix.unpermute_heads {
        let rows = quantized_shape.first().copied().unwrap_or(1);
        if let Err(message) = head_dim(rows, heads) {
            return Some(message);
        }
    }
    None
}

/// Applies Gemma 3's vocabulary cut: a GGUF `token_embd` with fewer rows than the Hugging
/// Face `embed_tokens` (same row length) compares with the first rows.
fn apply_vocab_cut(plan: &mut PairPlan, original: &Model, quantized: &Model) {
    if plan.mapping
        != (Mapping::HfGguf {
            architecture: Architecture::Gemma3,
        })
    {
        return;
    }
    for pair in &mut plan.pairs {
        let gguf_name = match pair.fix.gguf_side {
            Some(Side::Original) => &pair.original_name,
            _ => &pair.quantized_name,
        };
        if gguf_name != "token_embd.weight" {
            continue;
        }
        let o = &original.tensors()[pair.original_index].shape;
        let q = &quantized.tensors()[pair.quantized_index].shape;
        let (gguf_shape, hf_shape) = match pair.fix.gguf_side {
            Some(Side::Original) => (o, q),
            _ => (q, o),
        };
        if let ([g_rows, g_cols], [h_rows, h_cols]) = (&gguf_shape[..], &hf_shape[..])
            && g_cols == h_cols
            && g_rows < h_rows
        {
            pair.fix.leading_rows = Some(*g_rows);
            pair.notes.push(format!(
                "Gemma 3 vocabulary cut: the converter kept the first {g_rows} of {h_rows} rows; compared on those"
            ));
            pair.problem = shape_problem(pair, o, q);
        }
    }
}

/// Pairs two models and applies every fix (see [`pair_models`]).
pub fn pair(original: &Model, quantized: &Model) -> PairPlan {
    let mut plan = pair_models(original, quantized);
    apply_vocab_cut(&mut plan, original, quantized);
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_llama_cpp_s_converter() {
        // Produced by scripts/hf_gguf_names.py from gguf-py's TensorNameMap and the converter's
        // filter/modify steps.
        let text = include_str!("../../tests/fixtures/pairing/hf_gguf_names.json");
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        let cases = json["architectures"].as_object().unwrap();
        let mut checked = 0;
        for (case, names) in cases {
            let arch_name = case.split('/').next().unwrap();
            let arch = Architecture::from_gguf_name(arch_name).unwrap();
            for pair in names.as_array().unwrap() {
                let hf = pair[0].as_str().unwrap();
                let expected = pair[1].as_str();
                assert_eq!(gguf_name_for(arch, hf).as_deref(), expected, "{case}: {hf}");
                checked += 1;
            }
        }
        // Every supported architecture is covered by the fixture.
        for arch in Architecture::ALL {
            assert!(
                cases
                    .keys()
                    .any(|k| k.split('/').next() == Some(arch.gguf_name())),
                "{arch:?}"
            );
        }
        assert!(checked > 300, "{checked}");
    }

    #[test]
    fn permutation_matches_llama_cpp_by_hand() {
        // One head of dim 4, rows [r0, r1, r2, r3]: reshape (1, 2, 2) = [[r0, r1], [r2, r3]],
        // swap -> [[r0, r2], [r1, r3]] -> rows [r0, r2, r1, r3].
        let x = [0.0f32, 1.0, 2.0, 3.0];
        assert_eq!(permute_rows(&x, 4, 1).unwrap(), vec![0.0, 2.0, 1.0, 3.0]);
        // Two heads of dim 4, rows of length 2.
        let x: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let p = permute_rows(&x, 8, 2).unwrap();
        let rows: Vec<f32> = p.chunks(2).map(|r| r[0] / 2.0).collect();
        assert_eq!(rows, vec![0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]);
        assert_eq!(unpermute_rows(&p, 8, 2).unwrap(), x);
        // Head dim 6: rows [0..6) -> [0, 3, 1, 4, 2, 5].
        let x: Vec<f32> = (0..6).map(|v| v as f32).collect();
        assert_eq!(
            permute_rows(&x, 6, 1).unwrap(),
            vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
        );
        assert!(permute_rows(&x, 6, 4).is_err());
        assert!(permute_rows(&x, 3, 1).is_err());
    }

    #[test]
    fn scale_layouts_by_shape() {
        assert_eq!(
            scale_layout(&[256, 512], &[], None),
            Ok(ScaleLayout::PerTensor)
        );
        assert_eq!(
            scale_layout(&[256, 512], &[1], None),
            Ok(ScaleLayout::PerTensor)
        );
        assert_eq!(
            scale_layout(&[256, 512], &[256, 1], None),
            Ok(ScaleLayout::PerChannel)
        );
        assert_eq!(
            scale_layout(&[256, 512], &[256], None),
            Ok(ScaleLayout::PerChannel)
        );
        // DeepSeek-V3: 128x128 blocks, the last ones cut short (300 rows -> 3 block rows).
        assert_eq!(
            scale_layout(&[300, 512], &[3, 4], None),
            Ok(ScaleLayout::Block {
                rows: 128,
                cols: 128
            })
        );
        assert_eq!(
            scale_layout(&[256, 512], &[4, 8], Some((64, 64))),
            Ok(ScaleLayout::Block { rows: 64, cols: 64 })
        );
        assert!(scale_layout(&[256, 512], &[7], None).is_err());
    }

    #[test]
    fn block_scales_repeat_and_cut_at_the_edge() {
        // A 3x3 weight of ones with 2x2 blocks: scales [[1, 2], [3, 4]].
        let mut w = vec![1.0f32; 9];
        apply_fp8_scale(
            &mut w,
            &[3, 3],
            &[1.0, 2.0, 3.0, 4.0],
            ScaleLayout::Block { rows: 2, cols: 2 },
        )
        .unwrap();
        assert_eq!(w, vec![1.0, 1.0, 2.0, 1.0, 1.0, 2.0, 3.0, 3.0, 4.0]);
        let mut w = vec![2.0f32; 4];
        apply_fp8_scale(&mut w, &[2, 2], &[0.5, 4.0], ScaleLayout::PerChannel).unwrap();
        assert_eq!(w, vec![1.0, 1.0, 8.0, 8.0]);
        assert!(apply_fp8_scale(&mut w, &[2, 2], &[1.0], ScaleLayout::PerChannel).is_err());
    }
}
