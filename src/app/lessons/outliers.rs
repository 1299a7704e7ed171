//! Lesson 5: one outlier blows up the range; keeping it in FP16 (the outlier split, as in
//! LLM.int8()) and quantizing the rest with their own range, with the error before and after.

use egui::{RichText, Ui};
use serde::{Deserialize, Serialize};

use super::compute::{Quantized, min_max, quantize_range};
use super::widgets::{
    self, Memo, VectorField, bits_key, fmt_f32, fmt_g, formula, note, para, section,
};
use crate::cancel::Cancel;
use crate::quant::tensor::Outputs;
use crate::quant::{OutlierMode, OutlierThreshold, QuantConfig, Scheme, metrics, quantize_tensor};

/// Lesson 5's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutliersLesson {
    /// The vector (one value far from the rest by default).
    pub x: VectorField,
    /// Threshold τ: values with |x| ≥ τ stay in FP16.
    pub tau: f32,
    /// Code width.
    pub bits: u8,
    #[serde(skip)]
    memo: Memo<(Vec<u32>, u32, u8), OutliersResult>,
}

impl Default for OutliersLesson {
    fn default() -> Self {
        Self {
            x: VectorField::new(&[0.42, -1.17, 0.85, 0.31, -0.64, 1.08, 40.0, -0.93]),
            tau: 6.0,
            bits: 8,
            memo: Memo::default(),
        }
    }
}

/// Lesson 5's numbers.
#[derive(Debug, Clone)]
pub struct OutliersResult {
    /// Every value quantized with the full range.
    pub before: Quantized,
    /// The values with |x| < τ, quantized with their own range.
    pub inliers: Quantized,
    /// Which elements are outliers (|x| ≥ τ).
    pub is_outlier: Vec<bool>,
    /// The reconstruction after the split: inliers dequantized, outliers as stored in FP16.
    pub after: Vec<f32>,
    /// Metrics of the reconstruction after the split, over all values.
    pub after_metrics: metrics::Metrics,
    /// Effective bits per value after the split, from the core: the dense codes, the stored
    /// scale, and each outlier as a 16-bit value plus a 32-bit index.
    pub bits_per_value: f64,
    /// Effective bits per value without the split.
    pub base_bits: f64,
    /// Why the core refused the split (e.g. an invalid threshold), if it did.
    pub error: Option<String>,
}

impl OutliersLesson {
    /// The quantization settings.
    pub fn config(&self) -> QuantConfig {
        QuantConfig {
            bits: self.bits,
            scheme: Scheme::Symmetric,
            outliers: OutlierMode::Elements,
            outlier_threshold: OutlierThreshold::Absolute(self.tau),
            ..QuantConfig::default()
        }
    }

    /// The computed values for the current inputs (cached).
    pub fn result(&mut self) -> std::sync::Arc<OutliersResult> {
        let key = (bits_key(self.x.values()), self.tau.to_bits(), self.bits);
        let x = self.x.values().to_vec();
        let cfg = QuantConfig {
            outliers: OutlierMode::None,
            ..self.config()
        };
        let tau = self.tau;
        let split_cfg = self.config();
        self.memo.get(key, |_| {
            let (lo, hi) = min_max(&x);
            let before = quantize_range(&x, lo, hi, &cfg);
            let is_outlier: Vec<bool> = x.iter().map(|v| v.abs() >= tau).collect();
            let inlier_values: Vec<f32> = x
                .iter()
                .zip(&is_outlier)
                .filter(|(_, o)| !**o)
                .map(|(v, _)| *v)
                .collect();
            let (ilo, ihi) = min_max(&inlier_values);
            let inliers = quantize_range(&inlier_values, ilo, ihi, &cfg);
            // The after-split reconstruction is the core's fused pass with the outlier split.
            let split = quantize_tensor(
                &x,
                &[x.len()],
                &split_cfg,
                Outputs {
                    codes: true,
                    dequantized: true,
                },
                &Cancel::never(),
            );
            let (after, after_metrics, bits_per_value, base_bits, error) = match split {
                Ok(res) => (
                    res.dequantized.unwrap_or_default(),
                    res.metrics,
                    res.bits_per_weight,
                    res.outliers.bits_per_weight_without_split,
                    None,
                ),
                Err(e) => (
                    Vec::new(),
                    before.metrics,
                    f64::NAN,
                    f64::NAN,
                    Some(e.to_string()),
                ),
            };
            OutliersResult {
                after_metrics,
                before,
                inliers,
                is_outlier,
                after,
                bits_per_value,
                base_bits,
                error,
            }
        })
    }

    /// Draws the lesson; returns the settings when "Try it on a real tensor" is pressed.
    pub fn ui(&mut self, ui: &mut Ui) -> Option<QuantConfig> {
        para(
            ui,
            "Per-group scales help until a group contains one value far larger than the others. The \
             scale must stretch to reach it, every ordinary value falls into the few codes around 0, \
             and their information is gone. Large language models are known for such outliers in a \
             few hidden dimensions.",
        );
        para(
            ui,
            "The remedy is mixed precision: keep the rare outliers in a 16-bit float and quantize \
             everything else with a range computed without them (LLM.int8() does this with τ = 6).",
        );
        formula(
            ui,
            "|x| ≥ τ → FP16,   otherwise q = ⌊x / S⌉ with S = max_{|x|<τ}|x| / q_{max}",
        );
        section(ui, "Inputs");
        self.x.ui(ui, "Vector x:");
        ui.horizontal_wrapped(|ui| {
            widgets::drag_f32(
                ui,
                "Outlier threshold τ:",
                &mut self.tau,
                0.001..=1.0e6,
                0.1,
            );
            widgets::drag_u8(ui, "Bits b:", &mut self.bits, 2..=8);
        });
        let r = self.result();
        let k = r.is_outlier.iter().filter(|&&o| o).count();
        if let Some(e) = &r.error {
            ui.label(RichText::new(format!("Error: {e}")).color(ui.visuals().error_fg_color));
        }

        section(ui, "Before: one range for everything");
        formula(
            ui,
            &format!(
                "range [{}, {}] → S = {}",
                fmt_g(r.before.range.0, 5),
                fmt_g(r.before.range.1, 5),
                fmt_f32(r.before.params.scale)
            ),
        );
        widgets::metrics_line(ui, &r.before);

        section(ui, "After: outliers in FP16, the rest quantized");
        formula(
            ui,
            &format!(
                "{} outlier(s) kept;  inlier range [{}, {}] → S = {}",
                k,
                fmt_g(r.inliers.range.0, 5),
                fmt_g(r.inliers.range.1, 5),
                fmt_f32(r.inliers.params.scale)
            ),
        );
        ui.label(format!(
            "MSE {}   ·   SQNR {} dB   ·   max |e| {}   ·   {} bits per value (codes, scale, and each outlier as FP16 value + 32-bit index)",
            fmt_g(r.after_metrics.mse, 6),
            fmt_g(r.after_metrics.sqnr_db, 4),
            fmt_g(r.after_metrics.max_abs_error, 4),
            fmt_g(r.bits_per_value, 4)
        ));
        let before_s = r.before.params.scale;
        let after_s = r.inliers.params.scale;
        if k > 0 && after_s > 0.0 {
            note(
                ui,
                &format!(
                    "The outlier made the step {}× wider. Without it the inliers get a step of {} \
                     and the MSE drops by a factor of {}. The price: {} bits per value instead of {} \
                     (each outlier is stored as a 16-bit value plus a 32-bit position; on a vector \
                     this short one outlier is expensive, on a real tensor with 0.1 % outliers it \
                     adds about 0.05 bits).",
                    fmt_g(f64::from(before_s / after_s), 3),
                    fmt_f32(after_s),
                    fmt_g(
                        r.before.metrics.mse / r.after_metrics.mse.max(f64::MIN_POSITIVE),
                        3
                    ),
                    fmt_g(r.bits_per_value, 4),
                    fmt_g(r.base_bits, 4)
                ),
            );
        }

        section(ui, "Element by element");
        egui::Grid::new("l5_table").striped(true).show(ui, |ui| {
            for h in [
                "x",
                "before: q",
                "before: x\u{302}",
                "after: kept as",
                "after: x\u{302}",
            ] {
                if h.contains('\u{302}') {
                    widgets::formula_sized(ui, h, 14.0);
                } else {
                    ui.strong(h);
                }
            }
            ui.end_row();
            let mut inlier_codes = r.inliers.codes.iter();
            for (i, &v) in self.x.values().iter().enumerate() {
                ui.label(fmt_f32(v));
                ui.label(
                    r.before
                        .codes
                        .get(i)
                        .map_or("—".into(), |c| widgets::minus(&c.to_string())),
                );
                ui.label(
                    r.before
                        .dequant
                        .get(i)
                        .map_or("—".into(), |&d| fmt_g(f64::from(d), 5)),
                );
                if r.is_outlier.get(i).copied().unwrap_or(false) {
                    ui.label(
                        RichText::new("FP16")
                            .strong()
                            .color(ui.visuals().warn_fg_color),
                    );
                } else {
                    let c = inlier_codes
                        .next()
                        .map_or("—".into(), |c| widgets::minus(&c.to_string()));
                    ui.label(format!("q = {c}"));
                }
                ui.label(
                    r.after
                        .get(i)
                        .map_or("—".into(), |&d| fmt_g(f64::from(d), 5)),
                );
                ui.end_row();
            }
        });
        widgets::try_button(ui, &self.config())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_outlier_and_shrinks_the_error() {
        let mut l = OutliersLesson::default();
        let r = l.result();
        assert_eq!(r.is_outlier.iter().filter(|&&o| o).count(), 1);
        // Before: S = 40/127; after: S = 1.17/127.
        assert_eq!(r.before.params.scale, 40.0 / 127.0);
        assert_eq!(r.inliers.params.scale, 1.17f32 / 127.0);
        // 40 is exact in FP16.
        assert_eq!(r.after[6], 40.0);
        assert!(r.after_metrics.mse * 100.0 < r.before.metrics.mse);
        // The core's fused split agrees with quantizing the inliers alone.
        let inlier_hat: Vec<f32> = r
            .after
            .iter()
            .zip(&r.is_outlier)
            .filter(|(_, o)| !**o)
            .map(|(v, _)| *v)
            .collect();
        assert_eq!(inlier_hat, r.inliers.dequant);
        // Without the split: 8 bits + one 16-bit scale over 8 values = 10. The core stores each
        // outlier sparsely (16-bit value + 32-bit index) on top of the dense codes: 10 + 48/8 = 16.
        assert_eq!(r.base_bits, 10.0);
        assert_eq!(r.bits_per_value, 16.0);
    }
}
