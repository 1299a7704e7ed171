//! The deployed formats of `quant::formats` as sweep candidates: a [`FormatEvaluator`] that
//! quantizes through [`quantize_format`] and reports the format's own "not applicable" reason.

use super::candidate::FormatCandidate;
use super::sweep::{FormatEvaluator, FormatFailure, FormatOutcome};
use crate::cancel::Cancel;
use crate::quant::formats::{FormatError, FormatOutputs, QuantFormat, quantize_format};
use crate::tensor::imatrix::TensorImportance;

/// Every [`QuantFormat`], evaluated by its bit-exact reference port.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuantFormats;

impl QuantFormats {
    /// The names of every format, in [`QuantFormat::ALL`] order (the default candidate list).
    pub fn names() -> Vec<&'static str> {
        QuantFormat::ALL.iter().map(|f| f.name()).collect()
    }
}

/// Stored bits of a tensor of `numel` elements and `rows` rows in `format`.
///
/// `bits_per_weight` is an exact ratio of whole stored bits to elements (every format stores
/// whole bytes or whole fields), so rounding the product recovers the integer count.
pub fn storage_bits(format: QuantFormat, numel: usize, rows: usize) -> u64 {
    let bits = format.bits_per_weight(numel, rows) * numel as f64;
    // Non-negative and far below 2^53 for any real tensor: the cast is exact after rounding.
    bits.round() as u64
}

impl FormatEvaluator for QuantFormats {
    fn knows(&self, name: &str) -> bool {
        QuantFormat::from_name(name).is_some()
    }

    fn evaluate(
        &self,
        format: &FormatCandidate,
        values: &[f32],
        shape: &[usize],
        importance: Option<&TensorImportance<'_>>,
        cancel: &Cancel,
    ) -> Result<FormatOutcome, FormatFailure> {
        let Some(quant) = QuantFormat::from_name(&format.name) else {
            return Err(FormatFailure::Failed(format!(
                "unknown format {}",
                format.name
            )));
        };
        if let Err(na) = quant.check(shape) {
            return Ok(FormatOutcome::NotApplicable(na.reason));
        }
        let row_len = shape.last().copied().unwrap_or(1).max(1);
        let rows = values.len() / row_len;
        let outputs = FormatOutputs {
            encoded: false,
            dequantized: true,
        };
        let failed = |e: FormatError| match e {
            FormatError::Cancelled(_) => FormatFailure::Cancelled,
            FormatError::NotApplicable(na) => FormatFailure::Failed(na.reason),
            other => FormatFailure::Failed(other.to_string()),
        };
        let storage_bits = storage_bits(quant, values.len(), rows);
        let Some(importance) = importance else {
            // Unweighted: the fused pass measures chunk by chunk and keeps nothing.
            let r = quantize_format(quant, values, shape, None, FormatOutputs::default(), cancel)
                .map_err(failed)?;
            return Ok(FormatOutcome::Metrics {
                metrics: r.metrics,
                storage_bits,
            });
        };
        // The references take one weight per column. A stack of matrices (experts) with one
        // block of weights each is quantized matrix by matrix, as llama-quantize does; formats
        // that ignore the importance matrix see the whole tensor at once (their per-tensor
        // scales span all of it).
        let weights = Some(importance).filter(|_| quant.uses_imatrix());
        let dequantized = match weights {
            Some(w) if w.weights.len() > row_len && w.elements_per_matrix > 0 => {
                let mut out = Vec::with_capacity(values.len());
                let matrix_shape = [w.elements_per_matrix / row_len, row_len];
                for (m, chunk) in values.chunks(w.elements_per_matrix).enumerate() {
                    let cols = w
                        .weights
                        .get(m * row_len..(m + 1) * row_len)
                        .ok_or_else(|| {
                            FormatFailure::Failed(format!("no importance weights for matrix {m}"))
                        })?;
                    let r =
                        quantize_format(quant, chunk, &matrix_shape, Some(cols), outputs, cancel)
                            .map_err(failed)?;
                    out.extend(r.dequantized.unwrap_or_default());
                }
                out
            }
            _ => {
                let cols = weights.map(|w| w.weights);
                quantize_format(quant, values, shape, cols, outputs, cancel)
                    .map_err(failed)?
                    .dequantized
                    .unwrap_or_default()
            }
        };
        Ok(FormatOutcome::Quantized {
            dequantized,
            storage_bits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::candidate::Candidate;
    use crate::plan::sweep::{Outcome, SweepCache, SweepOptions, sweep};
    use crate::tensor::{Model, OwnedTensor};

    fn ramp(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0)
            .collect()
    }

    #[test]
    fn storage_bits_count_every_field() {
        // Q8_0: 34 bytes per 32 elements; Q4_K: 144 bytes per 256.
        assert_eq!(storage_bits(QuantFormat::Q8_0, 64, 2), 2 * 34 * 8);
        assert_eq!(storage_bits(QuantFormat::Q4_K, 512, 2), 2 * 144 * 8);
        // MXFP4: 32 × 4 bits + one E8M0 byte per block.
        assert_eq!(storage_bits(QuantFormat::Mxfp4, 64, 1), 2 * (32 * 4 + 8));
    }

    #[test]
    fn formats_measure_like_quantize_format_and_refuse_with_the_reason() {
        let wide = ramp(2 * 256);
        let narrow = ramp(4 * 96);
        let model = Model::from_tensors(
            "m",
            vec![
                OwnedTensor::from_f32("wide", vec![2, 256], &wide),
                OwnedTensor::from_f32("narrow", vec![4, 96], &narrow),
            ],
        )
        .expect("valid model");
        let cands = vec![Candidate::format("q4_k"), Candidate::format("nf4")];
        let table = sweep(
            &model,
            &cands,
            SweepOptions {
                importance: None,
                formats: Some(&QuantFormats),
            },
            &SweepCache::new(),
            &Cancel::never(),
            &mut |_| {},
        )
        .expect("sweep");
        let want = quantize_format(
            QuantFormat::Q4_K,
            &wide,
            &[2, 256],
            None,
            FormatOutputs::default(),
            &Cancel::never(),
        )
        .expect("q4_k");
        let wide_row = table
            .tensors
            .iter()
            .find(|t| t.name == "wide")
            .expect("wide");
        let m = wide_row.outcomes[0].measurement().expect("measured");
        assert_eq!(m.storage_bits, 2 * 144 * 8);
        assert!((m.mse - want.metrics.mse).abs() <= 1e-12 * want.metrics.mse.max(1e-30));
        let narrow_row = table
            .tensors
            .iter()
            .find(|t| t.name == "narrow")
            .expect("narrow");
        match &narrow_row.outcomes[0] {
            Outcome::NotApplicable { reason } => {
                assert!(
                    reason.contains("not a multiple of the 256-element block"),
                    "{reason}"
                );
                assert!(reason.contains("q5_0"), "{reason}");
            }
            other => panic!("expected not applicable, got {other:?}"),
        }
        // NF4 blocks the flattened tensor: it applies to both.
        assert!(narrow_row.outcomes[1].measurement().is_some());
    }
}
