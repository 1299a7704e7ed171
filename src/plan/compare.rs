//! Comparing a quantized model with its original, tensor by tensor (`quantscope compare`).
//!
//! For every pair of [`super::pair`], one pair at a time (so memory holds two tensors, not two
//! models): both tensors are decoded to f32 in parallel chunks, the quantized side is
//! dequantized exactly as its format defines (GGUF blocks as llama.cpp, FP8 times its scale),
//! the pair's layout fixes are applied, and the error of the dequantized values against the
//! original is measured with the metrics of NUMERICS.md §6 (in parallel, with a fixed
//! reduction order, so the result does not depend on the thread count). Per tensor it reports
//! the quantized file's stored type and true bits per weight (stored bytes × 8 / elements,
//! the FP8 scale tensors counted); for the model, the totals of NUMERICS.md §9.

use rayon::prelude::*;

use super::pair::{LayoutFix, PairPlan, Side, TensorPair, apply_fp8_scale, unpermute_rows};
use crate::cancel::{Cancel, Cancelled};
use crate::quant::metrics::{LaneAcc, MetricAcc, Metrics};
use crate::tensor::{DType, LoadError, Model};

/// Elements per parallel metrics chunk (fixed, so sums do not depend on the thread count).
const METRIC_CHUNK: usize = 1 << 16;

/// The comparison of one pair.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorComparison {
    /// The tensor's name in the original model.
    pub name: String,
    /// Its name in the quantized model.
    pub quantized_name: String,
    /// The quantized file's stored type of the tensor.
    pub dtype: DType,
    /// Elements of the quantized tensor.
    pub numel: u64,
    /// Bytes the quantized file stores for it (with its FP8 scale tensor).
    pub stored_bytes: u64,
    /// stored_bytes × 8 / numel.
    pub bits_per_weight: f64,
    /// Whether llama.cpp's Q/K row permutation was undone before comparing.
    pub permutation_undone: bool,
    /// What was done to pair and compare the two (for people).
    pub notes: Vec<String>,
    /// The error of the dequantized values against the original, or why the pair could not
    /// be compared (shapes differ, a value could not be decoded).
    pub outcome: Result<TensorError, String>,
}

/// The error of one compared pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorError {
    /// MSE, SQNR, cosine, max |e| and the rest (NUMERICS.md §6).
    pub metrics: Metrics,
    /// MSE / mean(x²) = Σe² / Σx² over the finite values (NUMERICS.md §9): 0 for an exact
    /// reconstruction, +inf when Σx² = 0 < Σe².
    pub rel_mse: f64,
}

/// Totals over the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Totals {
    /// Bytes of tensor data in the quantized file (every tensor, headers excluded).
    pub bytes: u64,
    /// Elements of the quantized file's weights (every tensor except the FP8 weight and
    /// activation scale tensors, whose bytes count but which are not weights).
    pub numel: u64,
    /// bytes × 8 / numel (NUMERICS.md §9: over all tensors of the model).
    pub average_bpw: f64,
    /// Σ numel_t · rel_mse_t over the compared tensors (NUMERICS.md §9's objective).
    pub total_error: f64,
    /// Tensors compared with a result.
    pub compared: usize,
}

/// A whole comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// One entry per pair, in the original model's order.
    pub tensors: Vec<TensorComparison>,
    /// Original tensors that pair with nothing.
    pub unmatched_original: Vec<String>,
    /// Quantized tensors that pair with nothing (scale tensors excluded).
    pub unmatched_quantized: Vec<String>,
    /// Totals.
    pub totals: Totals,
    /// Facts about the pairing, for people.
    pub notes: Vec<String>,
}

/// Compares every pair of `plan`, one pair at a time. `on_tensor` is called after each pair
/// with (pairs done, pairs in all, name). Cancelling `cancel` stops between decode and metric
/// chunks and returns [`Cancelled`]; its unit counters advance by the elements decoded (the
/// loaders report there), so front-ends show progress in pairs through `on_tensor`.
pub fn compare_models(
    original: &Model,
    quantized: &Model,
    plan: &PairPlan,
    cancel: &Cancel,
    mut on_tensor: impl FnMut(usize, usize, &str),
) -> Result<Comparison, Cancelled> {
    let mut tensors = Vec::with_capacity(plan.pairs.len());
    let mut total_error = 0.0f64;
    let mut compared = 0usize;
    for (done, pair) in plan.pairs.iter().enumerate() {
        cancel.check()?;
        let entry = compare_pair(original, quantized, pair, cancel)?;
        if let Ok(error) = &entry.outcome {
            // Element counts below 2^53 convert exactly.
            total_error += entry.numel as f64 * error.rel_mse;
            compared += 1;
        }
        on_tensor(done + 1, plan.pairs.len(), &pair.original_name);
        tensors.push(entry);
    }
    let (bytes, numel) = quantized.tensors().iter().fold((0u64, 0u64), |(b, n), t| {
        let is_scale =
            plan.weight_scales.contains(&t.name) || plan.activation_scales.contains(&t.name);
        (b + t.size_bytes, if is_scale { n } else { n + t.numel() })
    });
    let average_bpw = if numel == 0 {
        0.0
    } else {
        // Sizes below 2^53 convert exactly.
        bytes as f64 * 8.0 / numel as f64
    };
    Ok(Comparison {
        tensors,
        unmatched_original: plan.unmatched_original.clone(),
        unmatched_quantized: plan.unmatched_quantized.clone(),
        totals: Totals {
            bytes,
            numel,
            average_bpw,
            total_error,
            compared,
        },
        notes: plan.notes.clone(),
    })
}

/// Compares one pair (a per-tensor failure is a message in the outcome, not an error).
pub fn compare_pair(
    original: &Model,
    quantized: &Model,
    pair: &TensorPair,
    cancel: &Cancel,
) -> Result<TensorComparison, Cancelled> {
    let Some(q_info) = quantized.tensors().get(pair.quantized_index) else {
        return Ok(TensorComparison {
            name: pair.original_name.clone(),
            quantized_name: pair.quantized_name.clone(),
            dtype: DType::F32,
            numel: 0,
            stored_bytes: 0,
            bits_per_weight: 0.0,
            permutation_undone: false,
            notes: pair.notes.clone(),
            outcome: Err("the pair does not belong to this quantized model".into()),
        });
    };
    let scale_bytes = pair
        .fp8_scale
        .as_ref()
        .and_then(|s| quantized.tensors().get(s.index))
        .map_or(0, |s| s.size_bytes);
    let stored_bytes = q_info.size_bytes + scale_bytes;
    let numel = q_info.numel();
    let bits_per_weight = if numel == 0 {
        0.0
    } else {
        // Sizes below 2^53 convert exactly.
        stored_bytes as f64 * 8.0 / numel as f64
    };
    let outcome = match &pair.problem {
        Some(problem) => Err(problem.clone()),
        None => measure(original, quantized, pair, cancel)?,
    };
    Ok(TensorComparison {
        name: pair.original_name.clone(),
        quantized_name: pair.quantized_name.clone(),
        dtype: q_info.dtype,
        numel,
        stored_bytes,
        bits_per_weight,
        permutation_undone: pair.permutation_undone(),
        notes: pair.notes.clone(),
        outcome,
    })
}

/// Turns a decode failure into a per-tensor message, keeping cancellation apart.
fn decoded(result: Result<Vec<f32>, LoadError>) -> Result<Result<Vec<f32>, String>, Cancelled> {
    match result {
        Ok(values) => Ok(Ok(values)),
        Err(LoadError::Cancelled) => Err(Cancelled),
        Err(other) => Ok(Err(other.to_string())),
    }
}

/// The two sides of one pair as they are compared: the original's values and the quantized
/// file's dequantized values, with the pair's layout fixes applied (Q/K rows unpermuted, the
/// Gemma norm shift undone, FP8 scales multiplied, the original cut to the GGUF's rows), in
/// the original's element order and of equal length.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignedPair {
    /// The original's values.
    pub original: Vec<f32>,
    /// The quantized file's dequantized values, element for element.
    pub dequantized: Vec<f32>,
}

/// Decodes and fixes one pair (a per-tensor failure is a message, not an error): what
/// [`compare_pair`] measures, for views that show the deployed error element by element.
pub fn aligned_values(
    original: &Model,
    quantized: &Model,
    pair: &TensorPair,
    cancel: &Cancel,
) -> Result<Result<AlignedPair, String>, Cancelled> {
    if let Some(problem) = &pair.problem {
        return Ok(Err(problem.clone()));
    }
    let mut reference = match decoded(original.values_f32(pair.original_index, cancel))? {
        Ok(v) => v,
        Err(message) => return Ok(Err(message)),
    };
    let mut approx = match decoded(quantized.values_f32(pair.quantized_index, cancel))? {
        Ok(v) => v,
        Err(message) => return Ok(Err(message)),
    };
    let (Some(o_info), Some(q_info)) = (
        original.tensors().get(pair.original_index),
        quantized.tensors().get(pair.quantized_index),
    ) else {
        return Ok(Err("the pair does not belong to these models".into()));
    };
    let (o_shape, q_shape) = (&o_info.shape, &q_info.shape);
    if let Some(scale) = &pair.fp8_scale {
        let scale_values = match decoded(quantized.values_f32(scale.index, cancel))? {
            Ok(v) => v,
            Err(message) => return Ok(Err(message)),
        };
        if let Err(message) = apply_fp8_scale(&mut approx, q_shape, &scale_values, scale.layout) {
            return Ok(Err(format!("{}: {message}", scale.name)));
        }
    }
    let fixed = fix_side(&mut reference, o_shape, &pair.fix, Side::Original)
        .and_then(|()| fix_side(&mut approx, q_shape, &pair.fix, Side::Quantized));
    if let Err(message) = fixed {
        return Ok(Err(message));
    }
    if reference.len() != approx.len() {
        return Ok(Err(format!(
            "{} original values against {} quantized values",
            reference.len(),
            approx.len()
        )));
    }
    Ok(Ok(AlignedPair {
        original: reference,
        dequantized: approx,
    }))
}

/// Decodes, fixes and measures one pair.
fn measure(
    original: &Model,
    quantized: &Model,
    pair: &TensorPair,
    cancel: &Cancel,
) -> Result<Result<TensorError, String>, Cancelled> {
    let aligned = match aligned_values(original, quantized, pair, cancel)? {
        Ok(a) => a,
        Err(message) => return Ok(Err(message)),
    };
    Ok(Ok(error_of(&aligned, cancel)?))
}

/// The error of an aligned pair: the metrics of NUMERICS.md §6 and the relative MSE of §9.
pub fn error_of(aligned: &AlignedPair, cancel: &Cancel) -> Result<TensorError, Cancelled> {
    let acc = parallel_metrics(&aligned.original, &aligned.dequantized, cancel)?;
    let rel_mse = if acc.sum_e2 == 0.0 {
        0.0
    } else if acc.sum_x2 == 0.0 {
        f64::INFINITY
    } else {
        acc.sum_e2 / acc.sum_x2
    };
    Ok(TensorError {
        metrics: acc.finish(),
        rel_mse,
    })
}

/// Applies the layout fixes that belong to `side`: on the GGUF side the Q/K row
/// un-permutation and the Gemma norm shift, on the other side the leading-rows cut.
fn fix_side(
    values: &mut Vec<f32>,
    shape: &[usize],
    fix: &LayoutFix,
    side: Side,
) -> Result<(), String> {
    let Some(gguf_side) = fix.gguf_side else {
        return Ok(());
    };
    let rows = shape.first().copied().unwrap_or(1);
    if side == gguf_side {
        if let Some(heads) = fix.unpermute_heads {
            *values = unpermute_rows(values, rows, heads)?;
        }
        if fix.norm_shift {
            values.par_iter_mut().for_each(|v| *v -= 1.0);
        }
    } else if let Some(keep) = fix.leading_rows {
        let row_len = values.len().checked_div(rows).unwrap_or(0);
        values.truncate(keep.saturating_mul(row_len));
    }
    Ok(())
}

/// The metric sums of `approx` against `reference` (same length), in parallel chunks of
/// [`METRIC_CHUNK`] merged in chunk order.
pub(crate) fn parallel_metrics(
    reference: &[f32],
    approx: &[f32],
    cancel: &Cancel,
) -> Result<MetricAcc, Cancelled> {
    let no_clipping = vec![false; METRIC_CHUNK.min(reference.len())];
    let parts: Vec<MetricAcc> = reference
        .par_chunks(METRIC_CHUNK)
        .zip(approx.par_chunks(METRIC_CHUNK))
        .map(|(x, xh)| {
            cancel.check()?;
            let mut lanes = LaneAcc::default();
            lanes.push_block(x, xh, &no_clipping[..x.len()]);
            let mut acc = MetricAcc::default();
            lanes.flush_into(&mut acc);
            Ok(acc)
        })
        .collect::<Result<_, Cancelled>>()?;
    let mut total = MetricAcc::default();
    for part in &parts {
        total.merge(part);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_metrics_agree_with_the_sequential_reference() {
        // Three chunks and a tail, with a NaN and an infinity in the reference.
        let n = METRIC_CHUNK * 3 + 17;
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0)
            .collect();
        let mut xh: Vec<f32> = x.iter().map(|v| (v * 8.0).round() / 8.0).collect();
        let mut x = x;
        x[5] = f32::NAN;
        x[6] = f32::INFINITY;
        xh[7] += 1.0;
        let acc = parallel_metrics(&x, &xh, &Cancel::never()).unwrap();
        let par = acc.finish();
        let seq = crate::quant::metrics::compare(&x, &xh);
        assert_eq!(par.count, seq.count);
        assert_eq!((par.nan_count, par.inf_count), (1, 1));
        assert_eq!(par.max_abs_error, seq.max_abs_error);
        assert!(
            (par.mse - seq.mse).abs() <= 1e-12 * seq.mse,
            "{} {}",
            par.mse,
            seq.mse
        );
        assert!((par.sqnr_db - seq.sqnr_db).abs() < 1e-9);
        let cancel = Cancel::new();
        cancel.cancel();
        assert_eq!(parallel_metrics(&x, &xh, &cancel), Err(Cancelled));
    }
}

/// The best of the planner's quick candidates for one tensor within a bit budget.
#[derive(Debug, Clone, PartialEq)]
pub struct BestCandidate {
    /// The candidate's id (the sweep table's: `int4_g128_minmax`, `q4_k`, …).
    pub candidate: String,
    /// Its true bits per weight.
    pub bits_per_weight: f64,
    /// Its SQNR on the original tensor.
    pub sqnr_db: f64,
    /// Σe² / Σx² (NUMERICS.md §9).
    pub rel_mse: f64,
    /// How many candidates fitted the budget and were measured.
    pub tried: usize,
}

/// The best candidate of the planner's quick list (the min-max affine family and every
/// deployed format, [`super::candidate::minmax_affine`] and `QuantFormat::ALL`) for `values`
/// (row-major `shape`) at no more than `budget_bpw` bits per weight: the highest SQNR, ties to
/// fewer bits. `None` when the budget is 16 bits or more (nothing lossy is worth comparing) or
/// no candidate fits. Cancellable between candidates.
pub fn best_candidate_at(
    values: &[f32],
    shape: &[usize],
    budget_bpw: f64,
    cancel: &Cancel,
) -> Result<Option<BestCandidate>, Cancelled> {
    use crate::quant::formats::QuantFormat;
    use crate::quant::{Outputs, QuantConfig, quantize_tensor};
    if budget_bpw >= 16.0 {
        return Ok(None);
    }
    let numel = values.len();
    let rows = numel / shape.last().copied().unwrap_or(1).max(1);
    let formats = QuantFormat::ALL
        .into_iter()
        .filter(|f| f.check(shape).is_ok() && f.bits_per_weight(numel, rows) <= budget_bpw)
        .map(|f| {
            let config = QuantConfig {
                format: Some(f),
                ..QuantConfig::default()
            };
            (f.name().to_string(), config)
        });
    let affine = super::candidate::minmax_affine()
        .into_iter()
        .filter_map(|c| {
            let config = c.affine_config()?.clone();
            // Fewer code bits than the budget leaves room for the scales.
            (f64::from(config.bits) < budget_bpw && config.validate(shape).is_ok())
                .then_some((c.id, config))
        });
    let mut best: Option<BestCandidate> = None;
    let mut tried = 0;
    for (candidate, config) in formats.chain(affine) {
        cancel.check()?;
        let result = match quantize_tensor(values, shape, &config, Outputs::default(), cancel) {
            Ok(r) => r,
            Err(crate::quant::QuantError::Cancelled(c)) => return Err(c),
            // A candidate that cannot take this tensor is simply not a choice.
            Err(_) => continue,
        };
        if result.bits_per_weight > budget_bpw {
            continue;
        }
        tried += 1;
        let sqnr_db = result.metrics.sqnr_db;
        let better = best.as_ref().is_none_or(|b| {
            sqnr_db > b.sqnr_db
                || (sqnr_db == b.sqnr_db && result.bits_per_weight < b.bits_per_weight)
        });
        if better {
            best = Some(BestCandidate {
                candidate,
                bits_per_weight: result.bits_per_weight,
                sqnr_db,
                // SQNR = 10·log10(Σx² / Σe²), so Σe² / Σx² = 10^(−SQNR/10).
                rel_mse: 10f64.powf(-sqnr_db / 10.0),
                tried: 0,
            });
        }
    }
    Ok(best.map(|b| BestCandidate { tried, ..b }))
}
