//! A deployed format's quantization as a [`QuantResult`], so that reports, the app and the
//! planner treat the formats of NUMERICS.md §8 and the affine integer schemes alike.

use super::QuantError;
use super::config::OutlierMode;
use super::formats::{FormatOutputs, QuantFormat, quantize_format};
use super::tensor::{OutlierReport, Outputs, QuantResult};
use crate::cancel::Cancel;

/// Quantizes `values` (row-major, `shape`) into `format` through [`quantize_format`].
///
/// The result has no affine parameters (`scales`, `zero_points` and the clip ranges are empty:
/// a format's scales live in its blocks); asking for the codes keeps the stored parts in
/// [`QuantResult::encoded`], asking for the dequantized values keeps them as for the affine
/// schemes. `imatrix` (one weight per column) reaches the formats whose reference uses one.
pub fn quantize_deployed(
    values: &[f32],
    shape: &[usize],
    format: QuantFormat,
    imatrix: Option<&[f32]>,
    want: Outputs,
    cancel: &Cancel,
) -> Result<QuantResult, QuantError> {
    let outputs = FormatOutputs {
        encoded: want.codes,
        dequantized: want.dequantized,
    };
    let result = quantize_format(format, values, shape, imatrix, outputs, cancel)?;
    Ok(QuantResult {
        shape: result.shape,
        scale_shape: Vec::new(),
        scales: Vec::new(),
        zero_points: Vec::new(),
        clip_min: Vec::new(),
        clip_max: Vec::new(),
        qmin: 0,
        qmax: 0,
        degenerate_groups: 0,
        codes: None,
        dequantized: result.dequantized,
        metrics: result.metrics,
        outliers: OutlierReport {
            mode: OutlierMode::None,
            threshold: f64::INFINITY,
            center: 0.0,
            count: 0,
            fraction: 0.0,
            columns: 0,
            without_split: None,
            bits_per_weight_without_split: result.bits_per_weight,
        },
        bits_per_weight: result.bits_per_weight,
        tail_group: None,
        curve: None,
        calibration_ms: 0.0,
        encoded: result.encoded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::formats::{block_detail, decode};
    use crate::quant::{QuantConfig, quantize_tensor};

    #[test]
    fn a_config_with_a_format_quantizes_in_that_format() {
        // Two rows of 32: Q8_0 stores each row as one block (f16 d = absmax / 127, 32 int8).
        let values: Vec<f32> = (0..64).map(|i| (i as f32 - 31.5) / 8.0).collect();
        let cfg = QuantConfig {
            format: Some(QuantFormat::Q8_0),
            ..QuantConfig::default()
        };
        let want = Outputs {
            codes: true,
            dequantized: true,
        };
        let r = quantize_tensor(&values, &[2, 32], &cfg, want, &Cancel::never()).unwrap();
        assert_eq!(r.bits_per_weight, 8.5);
        let encoded = r.encoded.as_ref().unwrap();
        assert_eq!(encoded.part("blocks").unwrap().bytes.len(), 2 * 34);
        // The kept dequantized values are the decoder's, and the metrics measure them.
        let decoded = decode(encoded, &Cancel::never()).unwrap();
        assert_eq!(r.dequantized.as_deref(), Some(decoded.as_slice()));
        let mse: f64 = values
            .iter()
            .zip(&decoded)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum::<f64>()
            / 64.0;
        assert!((r.metrics.mse - mse).abs() <= 1e-12 * mse.max(1e-30));
        // Block 1's first element is row 1's: 0.5 / 8 = 0.0625 with d = 4 / 127 rounded to f16.
        let detail = block_detail(encoded, 1).unwrap();
        assert_eq!(detail.first, 32);
        assert_eq!(detail.codes.len(), 32);
        // The affine fields are empty: a format's scales are in its blocks.
        assert!(r.scales.is_empty() && r.clip_min.is_empty());
    }

    #[test]
    fn a_format_that_cannot_take_the_shape_says_why() {
        let cfg = QuantConfig {
            format: Some(QuantFormat::Q4_K),
            ..QuantConfig::default()
        };
        let err = quantize_tensor(
            &[0.0; 96],
            &[96],
            &cfg,
            Outputs::default(),
            &Cancel::never(),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("not a multiple of the 256-element block"),
            "{text}"
        );
        assert!(text.contains("q5_0") || text.contains("f16"), "{text}");
    }
}
