//! `compare` end to end on fixtures these tests write: a Hugging Face safetensors model and
//! GGUF files of it made with quantscope's own GGUF writer (Q/K rows permuted as llama.cpp's
//! converter permutes them), an F16 copy, Q8_0/Q4_0 blocks from a small reference quantizer
//! below, Gemma norms stored as w + 1, FP8 checkpoints with their scales, and the CLI.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use half::f16;
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use serde_json::Value;

use quantscope::cancel::Cancel;
use quantscope::plan::compare::{Comparison, TensorComparison, compare_models};
use quantscope::plan::pair::{Mapping, pair, permute_rows, unpermute_rows};
use quantscope::quant::metrics::{self, Metrics};
use quantscope::tensor::{DType, GgufTensor, GgufValue, GgufWriter, Model};

/// Deterministic values in about [-1, 1) (a 32-bit LCG), different per `seed`.
fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            // The top 24 bits as a fraction: exact in f32.
            (state >> 8) as f32 / 8_388_608.0 - 1.0
        })
        .collect()
}

/// Writes a safetensors file: (name, dtype, shape, little-endian bytes).
fn write_safetensors(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            let view = TensorView::new(*dtype, shape.clone(), bytes).expect("consistent fixture");
            (name.to_string(), view)
        })
        .collect();
    let data = safetensors::tensor::serialize(views, None).expect("serializable fixture");
    std::fs::write(path, data).expect("fixture written");
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// ggml's `quantize_row_q8_0_ref`: d = amax / 127, q = roundf(x / d) (half away from zero),
/// d stored as f16.
fn q8_0_blocks(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for block in x.chunks(32) {
        let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend(f16::from_f32(d).to_le_bytes());
        out.extend(
            block
                .iter()
                .map(|v| ((v * id).round() as i8).to_le_bytes()[0]),
        );
    }
    out
}

/// ggml's `quantize_row_q4_0_ref`: max = the value of largest magnitude, d = max / -8,
/// q = min(15, (int8)(x / d + 8.5)); low nibbles hold elements 0..16, high nibbles 16..32.
fn q4_0_blocks(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for block in x.chunks(32) {
        let max = block
            .iter()
            .fold(0.0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend(f16::from_f32(d).to_le_bytes());
        let code = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
        for (lo, hi) in block[..16].iter().zip(&block[16..]) {
            out.push(code(*lo) | (code(*hi) << 4));
        }
    }
    out
}

/// The tensors of a small llama: (HF name, shape, values).
struct Llama {
    tensors: Vec<(&'static str, Vec<usize>, Vec<f32>)>,
}

const N_HEAD: usize = 4;
const N_HEAD_KV: usize = 2;
const HIDDEN: usize = 64;
const HEAD_DIM: usize = HIDDEN / N_HEAD;

impl Llama {
    fn new() -> Self {
        let kv_rows = N_HEAD_KV * HEAD_DIM;
        let tensors = vec![
            (
                "model.embed_tokens.weight",
                vec![8, HIDDEN],
                values(8 * HIDDEN, 1),
            ),
            (
                "model.layers.0.input_layernorm.weight",
                vec![HIDDEN],
                values(HIDDEN, 2),
            ),
            (
                "model.layers.0.self_attn.q_proj.weight",
                vec![HIDDEN, HIDDEN],
                values(HIDDEN * HIDDEN, 3),
            ),
            (
                "model.layers.0.self_attn.k_proj.weight",
                vec![kv_rows, HIDDEN],
                values(kv_rows * HIDDEN, 4),
            ),
            (
                "model.layers.0.self_attn.v_proj.weight",
                vec![kv_rows, HIDDEN],
                values(kv_rows * HIDDEN, 5),
            ),
            (
                "model.layers.0.self_attn.rotary_emb.inv_freq",
                vec![HEAD_DIM / 2],
                values(HEAD_DIM / 2, 6),
            ),
            ("lm_head.weight", vec![8, HIDDEN], values(8 * HIDDEN, 7)),
        ];
        Self { tensors }
    }

    fn get(&self, name: &str) -> &[f32] {
        &self
            .tensors
            .iter()
            .find(|t| t.0 == name)
            .expect("fixture tensor")
            .2
    }

    fn write_safetensors(&self, path: &Path) {
        let entries: Vec<_> = self
            .tensors
            .iter()
            .map(|(n, s, v)| (*n, Dtype::F32, s.clone(), f32_bytes(v)))
            .collect();
        write_safetensors(path, &entries);
    }

    /// The GGUF llama.cpp's converter would write (names, Q/K permuted), each tensor stored by
    /// `store(gguf name, shape, converter-order values)`.
    fn write_gguf(&self, path: &Path, store: impl Fn(&str, Vec<usize>, &[f32]) -> GgufTensor) {
        let mut w = GgufWriter::new();
        w.add_metadata("general.architecture", GgufValue::string("llama"))
            .expect("the fixture is valid");
        w.add_metadata("llama.attention.head_count", GgufValue::U32(N_HEAD as u32))
            .expect("the fixture is valid");
        w.add_metadata(
            "llama.attention.head_count_kv",
            GgufValue::U32(N_HEAD_KV as u32),
        )
        .expect("the fixture is valid");
        let map = [
            ("model.embed_tokens.weight", "token_embd.weight"),
            (
                "model.layers.0.input_layernorm.weight",
                "blk.0.attn_norm.weight",
            ),
            (
                "model.layers.0.self_attn.q_proj.weight",
                "blk.0.attn_q.weight",
            ),
            (
                "model.layers.0.self_attn.k_proj.weight",
                "blk.0.attn_k.weight",
            ),
            (
                "model.layers.0.self_attn.v_proj.weight",
                "blk.0.attn_v.weight",
            ),
            ("lm_head.weight", "output.weight"),
        ];
        for (hf, gguf) in map {
            let (_, shape, v) = self
                .tensors
                .iter()
                .find(|t| t.0 == hf)
                .expect("the fixture is valid");
            let stored = match hf {
                "model.layers.0.self_attn.q_proj.weight" => {
                    permute_rows(v, shape[0], N_HEAD).expect("the fixture is valid")
                }
                "model.layers.0.self_attn.k_proj.weight" => {
                    permute_rows(v, shape[0], N_HEAD_KV).expect("the fixture is valid")
                }
                _ => v.clone(),
            };
            w.add_tensor(store(gguf, shape.clone(), &stored))
                .expect("the fixture is valid");
        }
        w.add_tensor(
            GgufTensor::from_f32("rope_freqs.weight", vec![8], &[1.0; 8])
                .expect("the fixture is valid"),
        )
        .expect("the fixture is valid");
        w.write_atomic(path, &[]).expect("the fixture is valid");
    }
}

fn run(original: &Path, quantized: &Path) -> (Comparison, Mapping) {
    let o = Model::open(original).expect("the fixture is valid");
    let q = Model::open(quantized).expect("the fixture is valid");
    let plan = pair(&o, &q);
    let comparison = compare_models(&o, &q, &plan, &Cancel::never(), |_, _, _| {})
        .expect("the fixture is valid");
    (comparison, plan.mapping)
}

fn entry<'a>(c: &'a Comparison, name: &str) -> &'a TensorComparison {
    c.tensors
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("{name} paired"))
}

fn metrics_of(t: &TensorComparison) -> Metrics {
    t.outcome
        .as_ref()
        .unwrap_or_else(|e| panic!("{}: {e}", t.name))
        .metrics
}

/// The comparison's metrics equal a direct sequential computation (sums to 1e-12 relative:
/// the parallel reduction adds in another order; max |e| exactly).
fn assert_same(got: &Metrics, want: &Metrics, what: &str) {
    assert_eq!(got.count, want.count, "{what}");
    assert_eq!(got.max_abs_error, want.max_abs_error, "{what}");
    let close = |a: f64, b: f64| a == b || (a - b).abs() <= 1e-12 * b.abs().max(a.abs());
    assert!(
        close(got.mse, want.mse),
        "{what}: mse {} vs {}",
        got.mse,
        want.mse
    );
    assert!(
        close(got.sqnr_db, want.sqnr_db),
        "{what}: sqnr {} vs {}",
        got.sqnr_db,
        want.sqnr_db
    );
    match (got.cosine, want.cosine) {
        (Some(a), Some(b)) => assert!((a - b).abs() < 1e-12, "{what}: cosine {a} vs {b}"),
        (a, b) => assert_eq!(a, b, "{what}"),
    }
}

fn loader_values(path: &Path, name: &str) -> Vec<f32> {
    let m = Model::open(path).expect("the fixture is valid");
    m.values_f32(
        m.find(name).expect("the fixture is valid"),
        &Cancel::never(),
    )
    .expect("the fixture is valid")
}

#[test]
fn llama_gguf_with_permuted_qk_and_q8_0_q4_0_blocks() {
    let dir = tempfile::tempdir().expect("the fixture is valid");
    let llama = Llama::new();
    let st = dir.path().join("model.safetensors");
    let gguf = dir.path().join("model-q.gguf");
    llama.write_safetensors(&st);
    llama.write_gguf(&gguf, |name, shape, v| match name {
        "blk.0.attn_q.weight" | "output.weight" => {
            GgufTensor::from_raw(name, shape, DType::Q8_0, q8_0_blocks(v))
                .expect("the fixture is valid")
        }
        "blk.0.attn_k.weight" | "blk.0.attn_v.weight" => {
            GgufTensor::from_raw(name, shape, DType::Q4_0, q4_0_blocks(v))
                .expect("the fixture is valid")
        }
        _ => GgufTensor::from_f32(name, shape, v).expect("the fixture is valid"),
    });
    let (c, mapping) = run(&st, &gguf);
    assert!(matches!(mapping, Mapping::HfGguf { .. }), "{mapping:?}");
    assert_eq!(c.tensors.len(), 6);
    // The converter skips rotary_emb.inv_freq; rope_freqs is generated, not converted.
    assert_eq!(
        c.unmatched_original,
        ["model.layers.0.self_attn.rotary_emb.inv_freq"]
    );
    assert_eq!(c.unmatched_quantized, ["rope_freqs.weight"]);

    for (hf, gguf_name, heads) in [
        (
            "model.layers.0.self_attn.q_proj.weight",
            "blk.0.attn_q.weight",
            Some(N_HEAD),
        ),
        (
            "model.layers.0.self_attn.k_proj.weight",
            "blk.0.attn_k.weight",
            Some(N_HEAD_KV),
        ),
        (
            "model.layers.0.self_attn.v_proj.weight",
            "blk.0.attn_v.weight",
            None,
        ),
        ("lm_head.weight", "output.weight", None),
    ] {
        let t = entry(&c, hf);
        assert_eq!(t.quantized_name, gguf_name);
        assert_eq!(t.permutation_undone, heads.is_some(), "{hf}");
        let x = llama.get(hf);
        let rows = x.len() / HIDDEN;
        // Direct: the loader's dequantized GGUF values, rows put back in HF order by hand.
        let stored = loader_values(&gguf, gguf_name);
        let direct = match heads {
            Some(h) => unpermute_rows(&stored, rows, h).expect("the fixture is valid"),
            None => stored.clone(),
        };
        assert_same(&metrics_of(t), &metrics::compare(x, &direct), hf);
        // The same error as quantizing the unpermuted tensor: Q8_0/Q4_0 blocks lie within a
        // row, so quantizing then permuting rows equals permuting then quantizing.
        let dtype = t.dtype;
        let blocks = if dtype == DType::Q8_0 {
            q8_0_blocks(x)
        } else {
            q4_0_blocks(x)
        };
        let unpermuted = GgufTensor::from_raw("t", vec![rows, HIDDEN], dtype, blocks)
            .expect("the fixture is valid");
        let mut w = GgufWriter::new();
        w.add_tensor(unpermuted).expect("the fixture is valid");
        let plain = dir.path().join("plain.gguf");
        w.write_atomic(&plain, &[]).expect("the fixture is valid");
        assert_eq!(loader_values(&plain, "t"), direct, "{hf}");
        if heads.is_some() {
            // Without undoing the permutation the error would be several times larger.
            let naive = metrics::compare(x, &stored);
            assert!(
                naive.mse > 5.0 * metrics_of(t).mse,
                "{hf}: {} vs {}",
                naive.mse,
                metrics_of(t).mse
            );
        }
        // True bits per weight: Q8_0 34 bytes per 32 (8.5), Q4_0 18 per 32 (4.5).
        let expected_bpw = if dtype == DType::Q8_0 { 8.5 } else { 4.5 };
        assert_eq!(t.bits_per_weight, expected_bpw, "{hf}");
    }
    // F32 tensors reconstruct exactly.
    let norm = entry(&c, "model.layers.0.input_layernorm.weight");
    assert_eq!(metrics_of(norm).mse, 0.0);
    assert_eq!(metrics_of(norm).sqnr_db, f64::INFINITY);
    // Totals: Σ numel · rel_mse over the pairs; bytes of every GGUF tensor.
    let want_total: f64 = c
        .tensors
        .iter()
        .map(|t| t.numel as f64 * t.outcome.as_ref().expect("the fixture is valid").rel_mse)
        .sum();
    assert_eq!(c.totals.total_error, want_total);
    let q = Model::open(&gguf).expect("the fixture is valid");
    let bytes: u64 = q.tensors().iter().map(|t| t.size_bytes).sum();
    let numel: u64 = q.tensors().iter().map(|t| t.numel()).sum();
    assert_eq!(c.totals.bytes, bytes);
    assert_eq!(c.totals.average_bpw, bytes as f64 * 8.0 / numel as f64);
    // rel_mse = Σe² / Σx².
    let t = entry(&c, "lm_head.weight");
    let x = llama.get("lm_head.weight");
    let xh = loader_values(&gguf, "output.weight");
    let e2: f64 = x
        .iter()
        .zip(&xh)
        .map(|(a, b)| (f64::from(*b) - f64::from(*a)).powi(2))
        .sum();
    let x2: f64 = x.iter().map(|a| f64::from(*a).powi(2)).sum();
    let rel = t.outcome.as_ref().expect("the fixture is valid").rel_mse;
    assert!((rel - e2 / x2).abs() <= 1e-12 * rel, "{rel} vs {}", e2 / x2);
}

#[test]
fn an_f16_copy_gives_exactly_the_f16_rounding_error() {
    let dir = tempfile::tempdir().expect("the fixture is valid");
    let llama = Llama::new();
    let st = dir.path().join("model.safetensors");
    let gguf = dir.path().join("model-f16.gguf");
    llama.write_safetensors(&st);
    llama.write_gguf(&gguf, |name, shape, v| {
        GgufTensor::from_f16(name, shape, v).expect("the fixture is valid")
    });
    let (c, _) = run(&st, &gguf);
    assert_eq!(c.tensors.len(), 6);
    for t in &c.tensors {
        let x = llama.get(&t.name);
        let rounded: Vec<f32> = x.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
        assert_same(&metrics_of(t), &metrics::compare(x, &rounded), &t.name);
        assert!(metrics_of(t).mse > 0.0, "{}", t.name);
        assert_eq!(t.bits_per_weight, 16.0);
        assert_eq!(t.dtype, DType::F16);
    }
    // The same F16 copy as safetensors pairs by identical names, with the same errors.
    let st16 = dir.path().join("model-f16.safetensors");
    let entries: Vec<_> = llama
        .tensors
        .iter()
        .map(|(n, s, v)| {
            let b: Vec<u8> = v
                .iter()
                .flat_map(|x| f16::from_f32(*x).to_le_bytes())
                .collect();
            (*n, Dtype::F16, s.clone(), b)
        })
        .collect();
    write_safetensors(&st16, &entries);
    let (c16, mapping) = run(&st, &st16);
    assert_eq!(mapping, Mapping::Identity);
    assert_eq!(c16.tensors.len(), 7);
    let q = entry(&c16, "model.layers.0.self_attn.q_proj.weight");
    assert!(!q.permutation_undone);
    assert_eq!(
        metrics_of(q).mse,
        metrics_of(entry(&c, "model.layers.0.self_attn.q_proj.weight")).mse
    );
}

#[test]
fn gguf_against_gguf_pairs_by_name_and_shapes_that_differ_are_per_tensor_messages() {
    let dir = tempfile::tempdir().expect("the fixture is valid");
    let llama = Llama::new();
    let f32_gguf = dir.path().join("f32.gguf");
    let q8_gguf = dir.path().join("q8.gguf");
    llama.write_gguf(&f32_gguf, |name, shape, v| {
        GgufTensor::from_f32(name, shape, v).expect("the fixture is valid")
    });
    llama.write_gguf(&q8_gguf, |name, shape, v| match name {
        // A different shape for one tensor: reported for it alone.
        "blk.0.attn_v.weight" => {
            GgufTensor::from_f32(name, vec![shape[0] / 2, shape[1]], &v[..v.len() / 2])
                .expect("the fixture is valid")
        }
        n if shape.len() == 2 => GgufTensor::from_raw(n, shape, DType::Q8_0, q8_0_blocks(v))
            .expect("the fixture is valid"),
        n => GgufTensor::from_f32(n, shape, v).expect("the fixture is valid"),
    });
    let (c, mapping) = run(&f32_gguf, &q8_gguf);
    assert_eq!(mapping, Mapping::Identity);
    assert_eq!(c.tensors.len(), 7);
    let v = entry(&c, "blk.0.attn_v.weight");
    assert_eq!(
        v.outcome.as_ref().unwrap_err(),
        "shapes differ: original [32, 64], quantized [16, 64]"
    );
    let q = entry(&c, "blk.0.attn_q.weight");
    // Both sides hold permuted rows: nothing to undo, and the error is the Q8_0 error.
    assert!(!q.permutation_undone);
    let x = loader_values(&f32_gguf, "blk.0.attn_q.weight");
    let xh = loader_values(&q8_gguf, "blk.0.attn_q.weight");
    assert_same(&metrics_of(q), &metrics::compare(&x, &xh), "attn_q");
    assert_eq!(c.totals.compared, 6);
}

#[test]
fn gemma_norms_lose_their_plus_one_and_gemma3_embeddings_their_cut_rows() {
    let dir = tempfile::tempdir().expect("the fixture is valid");
    let st = dir.path().join("gemma.safetensors");
    let gguf = dir.path().join("gemma.gguf");
    // Gemma 3 multimodal naming (model.language_model.*), with a vision tensor.
    let norm = values(64, 11);
    let q_norm = values(16, 12);
    let embed = values(10 * 64, 13);
    let vision = values(4, 14);
    write_safetensors(
        &st,
        &[
            (
                "model.language_model.layers.0.input_layernorm.weight",
                Dtype::F32,
                vec![64],
                f32_bytes(&norm),
            ),
            (
                "model.language_model.layers.0.self_attn.q_norm.weight",
                Dtype::F32,
                vec![16],
                f32_bytes(&q_norm),
            ),
            (
                "model.language_model.embed_tokens.weight",
                Dtype::F32,
                vec![10, 64],
                f32_bytes(&embed),
            ),
            (
                "model.vision_tower.vision_model.post_layernorm.weight",
                Dtype::F32,
                vec![4],
                f32_bytes(&vision),
            ),
        ],
    );
    // The converter: norm + 1 in f32, embed_tokens cut to the 8 real tokens, stored as F32/Q8_0.
    let plus_one = |v: &[f32]| v.iter().map(|x| x + 1.0).collect::<Vec<f32>>();
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", GgufValue::string("gemma3"))
        .expect("the fixture is valid");
    w.add_tensor(
        GgufTensor::from_f32("blk.0.attn_norm.weight", vec![64], &plus_one(&norm))
            .expect("the fixture is valid"),
    )
    .expect("the fixture is valid");
    w.add_tensor(
        GgufTensor::from_f32("blk.0.attn_q_norm.weight", vec![16], &plus_one(&q_norm))
            .expect("the fixture is valid"),
    )
    .expect("the fixture is valid");
    w.add_tensor(
        GgufTensor::from_raw(
            "token_embd.weight",
            vec![8, 64],
            DType::Q8_0,
            q8_0_blocks(&embed[..8 * 64]),
        )
        .expect("the fixture is valid"),
    )
    .expect("the fixture is valid");
    w.write_atomic(&gguf, &[]).expect("the fixture is valid");
    let (c, _) = run(&st, &gguf);
    assert_eq!(
        c.unmatched_original,
        ["model.vision_tower.vision_model.post_layernorm.weight"]
    );
    assert!(c.unmatched_quantized.is_empty());
    for (name, x) in [
        (
            "model.language_model.layers.0.input_layernorm.weight",
            &norm,
        ),
        (
            "model.language_model.layers.0.self_attn.q_norm.weight",
            &q_norm,
        ),
    ] {
        let t = entry(&c, name);
        // Direct: (f32(w + 1)) - 1 against w: only the f32 rounding of w + 1 remains.
        let back: Vec<f32> = plus_one(x).iter().map(|v| v - 1.0).collect();
        assert_same(&metrics_of(t), &metrics::compare(x, &back), name);
        assert!(metrics_of(t).max_abs_error < 1e-7, "{name}");
        assert!(t.notes.iter().any(|n| n.contains("w + 1")), "{:?}", t.notes);
    }
    let e = entry(&c, "model.language_model.embed_tokens.weight");
    let xh = loader_values(&gguf, "token_embd.weight");
    assert_same(
        &metrics_of(e),
        &metrics::compare(&embed[..8 * 64], &xh),
        "embed",
    );
}

#[test]
fn bert_names_and_token_types() {
    let dir = tempfile::tempdir().expect("the fixture is valid");
    let st = dir.path().join("bert.safetensors");
    let gguf = dir.path().join("bert.gguf");
    let names = [
        (
            "embeddings.word_embeddings.weight",
            "token_embd.weight",
            vec![8, 32],
        ),
        (
            "embeddings.token_type_embeddings.weight",
            "token_types.weight",
            vec![2, 32],
        ),
        (
            "embeddings.LayerNorm.weight",
            "token_embd_norm.weight",
            vec![32],
        ),
        (
            "encoder.layer.0.attention.self.query.weight",
            "blk.0.attn_q.weight",
            vec![32, 32],
        ),
        (
            "encoder.layer.0.attention.self.query.bias",
            "blk.0.attn_q.bias",
            vec![32],
        ),
        (
            "encoder.layer.0.output.LayerNorm.bias",
            "blk.0.layer_output_norm.bias",
            vec![32],
        ),
        ("pooler.dense.weight", "", vec![32, 32]),
    ];
    let data: Vec<Vec<f32>> = names
        .iter()
        .enumerate()
        .map(|(i, (_, _, s))| values(s.iter().product(), 20 + i as u32))
        .collect();
    let entries: Vec<_> = names
        .iter()
        .zip(&data)
        .map(|((n, _, s), v)| (*n, Dtype::F32, s.clone(), f32_bytes(v)))
        .collect();
    write_safetensors(&st, &entries);
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", GgufValue::string("bert"))
        .expect("the fixture is valid");
    w.add_metadata("bert.attention.head_count", GgufValue::U32(2))
        .expect("the fixture is valid");
    for ((_, g, s), v) in names
        .iter()
        .zip(&data)
        .filter(|((_, g, _), _)| !g.is_empty())
    {
        w.add_tensor(GgufTensor::from_f16(*g, s.clone(), v).expect("the fixture is valid"))
            .expect("the fixture is valid");
    }
    w.write_atomic(&gguf, &[]).expect("the fixture is valid");
    let (c, _) = run(&st, &gguf);
    assert_eq!(c.tensors.len(), 6);
    assert_eq!(c.unmatched_original, ["pooler.dense.weight"]);
    // BERT is not a permuting architecture.
    assert!(c.tensors.iter().all(|t| !t.permutation_undone));
    let t = entry(&c, "embeddings.token_type_embeddings.weight");
    assert_eq!(t.quantized_name, "token_types.weight");
    let rounded: Vec<f32> = data[1].iter().map(|&v| f16::from_f32(v).to_f32()).collect();
    assert_same(
        &metrics_of(t),
        &metrics::compare(&data[1], &rounded),
        "token_types",
    );
}

/// E4M3FN bytes of `x` chosen from exactly representable values (the decode tables decide).
fn e4m3_codes(n: usize, seed: u32) -> Vec<u8> {
    // Codes 0x00..=0x7E and 0x80..=0xFE are finite; skip NaN (0x7F, 0xFF).
    values(n, seed)
        .iter()
        .map(|v| {
            let c = ((v + 1.0) * 127.0) as u8;
            if c & 0x7F == 0x7F { c - 1 } else { c }
        })
        .collect()
}

#[test]
fn fp8_checkpoints_are_dequantized_with_their_scales() {
    let dir = tempfile::tempdir().expect("the fixture is valid");
    let original = dir.path().join("bf16.safetensors");
    let fp8_dir = dir.path().join("fp8");
    std::fs::create_dir(&fp8_dir).expect("the fixture is valid");
    let fp8 = fp8_dir.join("model.safetensors");
    // Block-wise (DeepSeek-V3 style, 128x128 blocks, the last ones cut short), per-channel,
    // per-tensor; an input_scale that is set aside; a BF16 norm kept as is.
    let (br, bc) = (130usize, 200usize);
    let block_w = values(br * bc, 30);
    let chan_w = values(4 * 64, 31);
    let tens_w = values(8 * 32, 32);
    let norm = values(32, 33);
    write_safetensors(
        &original,
        &[
            (
                "model.layers.0.mlp.down_proj.weight",
                Dtype::F32,
                vec![br, bc],
                f32_bytes(&block_w),
            ),
            (
                "model.layers.0.self_attn.o_proj.weight",
                Dtype::F32,
                vec![4, 64],
                f32_bytes(&chan_w),
            ),
            (
                "model.layers.0.mlp.up_proj.weight",
                Dtype::F32,
                vec![8, 32],
                f32_bytes(&tens_w),
            ),
            ("model.norm.weight", Dtype::F32, vec![32], f32_bytes(&norm)),
        ],
    );
    let block_codes = e4m3_codes(br * bc, 40);
    let chan_codes = e4m3_codes(4 * 64, 41);
    let tens_codes = e4m3_codes(8 * 32, 42);
    let block_scale = [0.5f32, 0.25, 0.125, 2.0];
    let chan_scale = [0.01f32, 0.02, 0.03, 0.04];
    let tens_scale = [0.003f32];
    let norm_bf16: Vec<u8> = norm
        .iter()
        .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
        .collect();
    write_safetensors(
        &fp8,
        &[
            (
                "model.layers.0.mlp.down_proj.weight",
                Dtype::F8_E4M3,
                vec![br, bc],
                block_codes.clone(),
            ),
            (
                "model.layers.0.mlp.down_proj.weight_scale_inv",
                Dtype::F32,
                vec![2, 2],
                f32_bytes(&block_scale),
            ),
            (
                "model.layers.0.self_attn.o_proj.weight",
                Dtype::F8_E4M3,
                vec![4, 64],
                chan_codes,
            ),
            (
                "model.layers.0.self_attn.o_proj.weight_scale",
                Dtype::F32,
                vec![4, 1],
                f32_bytes(&chan_scale),
            ),
            (
                "model.layers.0.self_attn.o_proj.input_scale",
                Dtype::F32,
                vec![],
                f32_bytes(&[0.5]),
            ),
            (
                "model.layers.0.mlp.up_proj.weight",
                Dtype::F8_E4M3,
                vec![8, 32],
                tens_codes,
            ),
            (
                "model.layers.0.mlp.up_proj.weight_scale",
                Dtype::F32,
                vec![],
                f32_bytes(&tens_scale),
            ),
            ("model.norm.weight", Dtype::BF16, vec![32], norm_bf16),
        ],
    );
    let (c, mapping) = run(&original, &fp8);
    assert_eq!(mapping, Mapping::Identity);
    assert_eq!(c.tensors.len(), 4);
    assert!(
        c.unmatched_original.is_empty() && c.unmatched_quantized.is_empty(),
        "{:?}",
        c.unmatched_quantized
    );
    // Direct: decoded E4M3 codes times the scale of their block / row / tensor, in f32.
    let codes = loader_values(&fp8, "model.layers.0.mlp.down_proj.weight");
    let want: Vec<f32> = codes
        .iter()
        .enumerate()
        .map(|(i, &v)| v * block_scale[(i / bc / 128) * 2 + (i % bc) / 128])
        .collect();
    let t = entry(&c, "model.layers.0.mlp.down_proj.weight");
    assert_same(&metrics_of(t), &metrics::compare(&block_w, &want), "block");
    assert_eq!(t.dtype, DType::F8E4M3);
    // 1 byte per weight plus 4 f32 scales.
    assert_eq!(
        t.bits_per_weight,
        (br * bc + 16) as f64 * 8.0 / (br * bc) as f64
    );
    let codes = loader_values(&fp8, "model.layers.0.self_attn.o_proj.weight");
    let want: Vec<f32> = codes
        .iter()
        .enumerate()
        .map(|(i, &v)| v * chan_scale[i / 64])
        .collect();
    let t = entry(&c, "model.layers.0.self_attn.o_proj.weight");
    assert_same(&metrics_of(t), &metrics::compare(&chan_w, &want), "channel");
    let codes = loader_values(&fp8, "model.layers.0.mlp.up_proj.weight");
    let want: Vec<f32> = codes.iter().map(|&v| v * tens_scale[0]).collect();
    let t = entry(&c, "model.layers.0.mlp.up_proj.weight");
    assert_same(&metrics_of(t), &metrics::compare(&tens_w, &want), "tensor");
    // Totals count the scale bytes but not the scales as weights.
    let weights = (br * bc + 4 * 64 + 8 * 32 + 32) as u64;
    assert_eq!(c.totals.numel, weights);
    assert!(
        c.notes.iter().any(|n| n.contains("activation scale")),
        "{:?}",
        c.notes
    );
}

#[test]
fn a_gguf_original_pairs_with_a_hugging_face_quantized_file() {
    let dir = tempfile::tempdir().expect("the fixture is valid");
    let llama = Llama::new();
    let gguf = dir.path().join("f32.gguf");
    llama.write_gguf(&gguf, |name, shape, v| {
        GgufTensor::from_f32(name, shape, v).expect("the fixture is valid")
    });
    let st16 = dir.path().join("f16.safetensors");
    let entries: Vec<_> = llama
        .tensors
        .iter()
        .map(|(n, s, v)| {
            let b: Vec<u8> = v
                .iter()
                .flat_map(|x| f16::from_f32(*x).to_le_bytes())
                .collect();
            (*n, Dtype::F16, s.clone(), b)
        })
        .collect();
    write_safetensors(&st16, &entries);
    let (c, mapping) = run(&gguf, &st16);
    assert!(matches!(mapping, Mapping::HfGguf { .. }), "{mapping:?}");
    assert_eq!(c.tensors.len(), 6);
    assert_eq!(c.unmatched_original, ["rope_freqs.weight"]);
    assert_eq!(
        c.unmatched_quantized,
        ["model.layers.0.self_attn.rotary_emb.inv_freq"]
    );
    for t in &c.tensors {
        // The GGUF original's Q/K rows are put back in Hugging Face order before comparing.
        let x = llama.get(&t.quantized_name);
        let rounded: Vec<f32> = x.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
        assert_same(&metrics_of(t), &metrics::compare(x, &rounded), &t.name);
        assert_eq!(
            t.permutation_undone,
            t.name == "blk.0.attn_q.weight" || t.name == "blk.0.attn_k.weight",
            "{}",
            t.name
        );
    }
}

fn quantscope() -> Command {
    Command::cargo_bin("quantscope").expect("the binary is built")
}

fn llama_pair(dir: &Path) -> (PathBuf, PathBuf) {
    let llama = Llama::new();
    let st = dir.join("model.safetensors");
    let gguf = dir.join("model-q8.gguf");
    llama.write_safetensors(&st);
    llama.write_gguf(&gguf, |name, shape, v| {
        if shape.len() == 2 {
            GgufTensor::from_raw(name, shape, DType::Q8_0, q8_0_blocks(v))
                .expect("the fixture is valid")
        } else {
            GgufTensor::from_f32(name, shape, v).expect("the fixture is valid")
        }
    });
    (st, gguf)
}

#[test]
fn cli_json_and_text() {
    let dir = tempfile::tempdir().expect("the fixture is valid");
    let (st, gguf) = llama_pair(dir.path());
    let out = quantscope()
        .arg("compare")
        .arg(&st)
        .arg(&gguf)
        .arg("--json")
        .assert()
        .success();
    let json: Value =
        serde_json::from_slice(&out.get_output().stdout).expect("the fixture is valid");
    assert_eq!(json["original"], st.display().to_string());
    assert_eq!(json["unmatched_quantized"][0], "rope_freqs.weight");
    let tensors = json["tensors"].as_array().expect("the fixture is valid");
    assert_eq!(tensors.len(), 6);
    let q = tensors
        .iter()
        .find(|t| t["quantized_name"] == "blk.0.attn_q.weight")
        .expect("the fixture is valid");
    assert_eq!(q["name"], "model.layers.0.self_attn.q_proj.weight");
    assert_eq!(q["type"], "Q8_0");
    assert_eq!(q["bits_per_weight"], 8.5);
    assert_eq!(q["permutation_undone"], true);
    assert!(
        q["metrics"]["sqnr_db"]
            .as_f64()
            .expect("the fixture is valid")
            > 30.0
    );
    let norm = tensors
        .iter()
        .find(|t| t["type"] == "F32")
        .expect("the fixture is valid");
    assert_eq!(norm["metrics"]["sqnr_db"], "inf");
    assert!(
        json["totals"]["total_error"]
            .as_f64()
            .expect("the fixture is valid")
            > 0.0
    );

    let out = quantscope()
        .args(["compare", "--sort", "sqnr"])
        .arg(&st)
        .arg(&gguf)
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).expect("the fixture is valid");
    assert!(text.contains("[Q/K unpermuted]"), "{text}");
    assert!(
        text.contains("unmatched in the quantized file (1):\n  rope_freqs.weight"),
        "{text}"
    );
    // Sorted by SQNR, worst first: the exact F32 norm (inf) comes last among the rows.
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("model.") || l.starts_with("lm_head"))
        .collect();
    assert!(
        rows.last()
            .expect("the fixture is valid")
            .contains("input_layernorm"),
        "{text}"
    );
}

#[test]
fn cli_exits_1_with_one_line_when_nothing_pairs() {
    let dir = tempfile::tempdir().expect("the fixture is valid");
    let (st, _) = llama_pair(dir.path());
    let other = dir.path().join("other.safetensors");
    write_safetensors(
        &other,
        &[("unrelated", Dtype::F32, vec![2], f32_bytes(&[1.0, 2.0]))],
    );
    let out = quantscope()
        .arg("compare")
        .arg(&st)
        .arg(&other)
        .assert()
        .code(1);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).expect("the fixture is valid");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: no tensor of"), "{stderr}");
    assert!(out.get_output().stdout.is_empty());
}

#[test]
fn cli_best_is_the_planners_best_candidate_at_no_more_bits() {
    use quantscope::quant::formats::QuantFormat;
    use quantscope::quant::{Outputs, QuantConfig, quantize_tensor};
    let dir = tempfile::tempdir().expect("the fixture is valid");
    let (st, gguf) = llama_pair(dir.path());
    let out = quantscope()
        .args(["compare", "--json", "--best"])
        .arg(&st)
        .arg(&gguf)
        .assert()
        .success();
    let json: Value =
        serde_json::from_slice(&out.get_output().stdout).expect("the fixture is valid");
    let tensors = json["tensors"].as_array().expect("the fixture is valid");
    let q = tensors
        .iter()
        .find(|t| t["quantized_name"] == "blk.0.attn_q.weight")
        .expect("the fixture is valid");
    let best = &q["best"];
    let bpw = best["bits_per_weight"]
        .as_f64()
        .expect("a candidate fits 8.5 bpw");
    assert!(bpw <= 8.5, "{best}");
    // Q8_0 itself is a candidate, so the best is at least as good as the file's own choice.
    let sqnr = best["sqnr_db"].as_f64().expect("number");
    assert!(
        sqnr >= q["metrics"]["sqnr_db"].as_f64().expect("number"),
        "{best}"
    );
    // It is the core's own quantization of the original tensor with that candidate.
    let name = best["candidate"].as_str().expect("an id");
    let x = loader_values(&st, "model.layers.0.self_attn.q_proj.weight");
    let shape = [x.len() / HIDDEN, HIDDEN];
    let config = match QuantFormat::from_name(name) {
        Some(f) => QuantConfig {
            format: Some(f),
            ..QuantConfig::default()
        },
        None => quantscope::plan::candidate::minmax_affine()
            .into_iter()
            .find(|c| c.id == name)
            .and_then(|c| c.affine_config().cloned())
            .expect("an affine id of the quick list"),
    };
    let r = quantize_tensor(&x, &shape, &config, Outputs::default(), &Cancel::never())
        .expect("quantizes");
    assert_eq!(r.metrics.sqnr_db, sqnr);
    assert_eq!(r.bits_per_weight, bpw);
    // An unquantized F32 norm has no lossy candidate within its 32 bits: null.
    let norm = tensors
        .iter()
        .find(|t| t["type"] == "F32")
        .expect("the fixture is valid");
    assert!(norm["best"].is_null(), "{norm}");
    // Without --best the key is absent (the app's Copy JSON is the same document).
    let plain = quantscope()
        .args(["compare", "--json"])
        .arg(&st)
        .arg(&gguf)
        .assert()
        .success();
    let plain: Value =
        serde_json::from_slice(&plain.get_output().stdout).expect("the fixture is valid");
    assert!(plain["tensors"][0].get("best").is_none());
}
