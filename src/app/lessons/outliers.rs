//! Lesson 5: one outlier blows up the range; keeping it in FP16 (the outlier split, as in
//! LLM.int8()) and quantizing the rest with their own range, with the error before and after.
//! The sentences say how many values were split off, whether the error really dropped and what
//! the split costs, from the numbers shown. The same split runs on a real activation matrix
//! (LLM.int8()'s column split, on the whole tensor through the app's jobs, the same run as the
//! main views), and its sentence is written from that run's numbers.

use egui::{RichText, Ui};
use serde::{Deserialize, Serialize};

use super::super::derived::LessonReal;

use super::compute::{Quantized, min_max, quantize_range};
use super::derivation::derive;
use super::widgets::{
    self, Memo, VectorField, bits_key, count, fmt_f32, fmt_g, formula, note, para, section,
};
use crate::cancel::Cancel;
use crate::quant::tensor::Outputs;
use crate::quant::{
    OutlierMode, OutlierThreshold, QuantConfig, QuantResult, Scheme, metrics, quantize_tensor,
};

/// The thresholds the lesson accepts (the core needs τ > 0).
pub const TAU_LIMIT: std::ops::RangeInclusive<f64> = 1.0e-6..=1.0e6;

/// Lesson 5's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutliersLesson {
    /// The vector (one value far from the rest by default).
    pub x: VectorField,
    /// Threshold τ: values with |x| ≥ τ stay in FP16 (as typed).
    pub tau: f64,
    /// Code width, as typed (limited to 2..=8).
    pub bits: i32,
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
    /// τ in use: as typed, limited to [`TAU_LIMIT`], as the f32 the core compares with.
    pub fn tau(&self) -> f32 {
        // Within 1e-6..=1e6 after the limit: the f32 rounding is the core's own storage.
        widgets::limit_real(self.tau, &TAU_LIMIT) as f32
    }

    /// The quantization settings.
    pub fn config(&self) -> QuantConfig {
        QuantConfig {
            bits: widgets::bits_of(self.bits),
            scheme: Scheme::Symmetric,
            outliers: OutlierMode::Elements,
            outlier_threshold: OutlierThreshold::Absolute(self.tau()),
            ..QuantConfig::default()
        }
    }

    /// The settings of the real-tensor run: the same τ and bits, symmetric per-tensor min-max,
    /// and LLM.int8()'s split of whole last-axis columns (input features) that hold any
    /// |x| ≥ τ.
    pub fn real_config(&self) -> QuantConfig {
        QuantConfig {
            outliers: OutlierMode::Columns,
            ..self.config()
        }
    }

    /// The runs the real-tensor part needs: one, the column split (the core reports the error
    /// and the size without the split beside it).
    pub fn real_configs(&self) -> Vec<QuantConfig> {
        vec![self.real_config()]
    }

    /// The computed values for the current inputs (cached).
    pub fn result(&mut self) -> std::sync::Arc<OutliersResult> {
        let tau = self.tau();
        let key = (
            bits_key(self.x.values()),
            tau.to_bits(),
            widgets::bits_of(self.bits),
        );
        let x = self.x.values().to_vec();
        let cfg = QuantConfig {
            outliers: OutlierMode::None,
            ..self.config()
        };
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
            // No inliers: the range [0, 0] (nothing is quantized; the page says so).
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
    pub fn ui(
        &mut self,
        ui: &mut Ui,
        real: Option<&LessonReal>,
        on_selected: &mut bool,
    ) -> Option<QuantConfig> {
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
            widgets::real_input(ui, "Outlier threshold τ:", &mut self.tau, TAU_LIMIT, 0.1);
            widgets::int_input(ui, "Bits b:", &mut self.bits, widgets::BITS);
        });
        let cfg = self.config();
        let r = self.result();
        // Real data first (τ and b above apply to it), then the small vector worked by hand.
        section(ui, "On real data: whole columns kept in FP16");
        if let Some(real) = widgets::real_header(ui, real, on_selected) {
            para(
                ui,
                "In a Linear layer's input matrix (tokens × features) the large values are not \
                 scattered: they sit in a few feature dimensions, the same ones for every token. \
                 LLM.int8() therefore keeps every column (feature) holding some |x| ≥ τ entirely \
                 in FP16, multiplies those columns in 16 bits, and quantizes the rest with a range \
                 computed without them.",
            );
            real_table(ui, real);
            note(ui, &real_sentence(real));
        }
        section(ui, "On the small vector");
        let n = r.is_outlier.len();
        let k = r.is_outlier.iter().filter(|&&o| o).count();
        if let Some(e) = &r.error {
            ui.label(RichText::new(format!("Error: {e}")).color(ui.visuals().error_fg_color));
        }

        section(ui, "Before: one range for everything");
        formula(
            ui,
            &format!(
                "range [{}, {}]",
                fmt_g(r.before.range.0, 5),
                fmt_g(r.before.range.1, 5)
            ),
        );
        derivation_ui(ui, &cfg, &r.before);
        widgets::metrics_line(ui, &r.before);

        section(ui, "After: outliers in FP16, the rest quantized");
        if k == 0 {
            para(
                ui,
                &format!(
                    "No value has |x| ≥ τ = {}: nothing is split off, so after is the same as before.",
                    fmt_g(f64::from(self.tau()), 6)
                ),
            );
        } else if k == n {
            para(
                ui,
                &format!(
                    "Every value has |x| ≥ τ = {}: all {} are kept in FP16 and nothing is quantized.",
                    fmt_g(f64::from(self.tau()), 6),
                    n
                ),
            );
        } else {
            formula(
                ui,
                &format!(
                    "{} kept in FP16;  inlier range [{}, {}]",
                    count(k, "outlier", "outliers"),
                    fmt_g(r.inliers.range.0, 5),
                    fmt_g(r.inliers.range.1, 5),
                ),
            );
            derivation_ui(ui, &cfg, &r.inliers);
        }
        ui.label(format!(
            "MSE {}   ·   SQNR {} dB   ·   max |e| {}   ·   {} bits per value (codes, scale, and each outlier as FP16 value + 32-bit index)",
            fmt_g(r.after_metrics.mse, 6),
            fmt_g(r.after_metrics.sqnr_db, 4),
            fmt_g(r.after_metrics.max_abs_error, 4),
            fmt_g(r.bits_per_value, 4)
        ));
        if k > 0 && r.error.is_none() {
            note(ui, &split_sentence(&r, k, n));
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
        widgets::try_button(ui, &cfg)
    }
}

/// The finished column-split run on the real tensor, when it is for the current settings.
fn current_run(real: &LessonReal) -> Option<(&QuantConfig, &QuantResult)> {
    real.runs
        .first()
        .filter(|(_, run)| run.current)
        .and_then(|(cfg, run)| Some((cfg, run.value.as_deref()?)))
}

/// Without against with the column split on the real tensor (a run still computing for the
/// current settings is drawn dimmed).
fn real_table(ui: &mut Ui, real: &LessonReal) {
    let Some((_, run)) = real.runs.first() else {
        return;
    };
    let r = match (run.value.as_deref(), &run.error) {
        (Some(r), _) => r,
        (None, Some(e)) => {
            ui.label(RichText::new(e).color(ui.visuals().error_fg_color));
            return;
        }
        (None, None) => {
            ui.spinner();
            return;
        }
    };
    let cell = |ui: &mut Ui, text: String| {
        let t = RichText::new(text);
        ui.label(if run.current { t } else { t.weak() });
    };
    let o = &r.outliers;
    egui::Grid::new("l5_real").striped(true).show(ui, |ui| {
        for h in [
            "",
            "columns in FP16",
            "values in FP16",
            "MSE",
            "SQNR",
            "bits per value",
        ] {
            ui.strong(h);
        }
        ui.end_row();
        cell(ui, "one range for everything".into());
        cell(ui, "0".into());
        cell(ui, "0".into());
        match &o.without_split {
            Some(m) => {
                cell(ui, fmt_g(m.mse, 4));
                cell(ui, format!("{} dB", fmt_g(m.sqnr_db, 4)));
            }
            None => {
                cell(ui, "—".into());
                cell(ui, "—".into());
            }
        }
        cell(ui, fmt_g(o.bits_per_weight_without_split, 5));
        ui.end_row();
        cell(ui, format!("split at τ = {}", fmt_g(o.threshold, 6)));
        cell(
            ui,
            format!(
                "{} of {}",
                o.columns,
                r.shape.last().copied().unwrap_or_default()
            ),
        );
        cell(
            ui,
            format!("{} ({} %)", o.count, fmt_g(o.fraction * 100.0, 3)),
        );
        cell(ui, fmt_g(r.metrics.mse, 4));
        cell(ui, format!("{} dB", fmt_g(r.metrics.sqnr_db, 4)));
        cell(ui, fmt_g(r.bits_per_weight, 5));
        ui.end_row();
    });
}

/// What the column split did on the real tensor, in sentences from its run.
pub fn real_sentence(real: &LessonReal) -> String {
    let Some((cfg, r)) = current_run(real) else {
        return "Computing the split on the whole tensor for the current settings…".to_string();
    };
    let o = &r.outliers;
    let Some(before) = o.without_split else {
        return "The core did not report the error without the split.".to_string();
    };
    let after = r.metrics;
    let cols = r.shape.last().copied().unwrap_or_default();
    let tau = fmt_g(o.threshold, 6);
    // Counts far below 2^53: exact in f64 and usize.
    let k = usize::try_from(o.columns).unwrap_or(usize::MAX);
    if k == 0 {
        return format!(
            "On {}, no value reaches |x| ≥ τ = {tau}: no column is split off, so the error is \
             the one without the split ({} dB, MSE {}) at {} bits per value. Lower τ to split \
             the outlier features off.",
            real.name,
            fmt_g(after.sqnr_db, 4),
            fmt_g(after.mse, 4),
            fmt_g(r.bits_per_weight, 5)
        );
    }
    let mut s = format!(
        "On {}, {} of its {} {} a value with |x| ≥ τ = {tau}; keeping {} whole in FP16 means \
         {} values ({} % of the tensor). ",
        real.name,
        k,
        count(cols, "column", "columns"),
        if k == 1 { "holds" } else { "hold" },
        if k == 1 { "it" } else { "them" },
        o.count,
        fmt_g(o.fraction * 100.0, 3)
    );
    if k == cols {
        s.push_str("Every column is kept: nothing is quantized at all. ");
    } else if after.sqnr_db > before.sqnr_db {
        s.push_str(&format!(
            "The rest get a range without the outliers, and the error drops: SQNR {} dB instead \
             of {} dB, MSE {} instead of {}. ",
            fmt_g(after.sqnr_db, 4),
            fmt_g(before.sqnr_db, 4),
            fmt_g(after.mse, 4),
            fmt_g(before.mse, 4)
        ));
    } else if after.sqnr_db < before.sqnr_db {
        s.push_str(&format!(
            "Here the split does not pay: SQNR {} dB instead of {} dB (MSE {} instead of {}). ",
            fmt_g(after.sqnr_db, 4),
            fmt_g(before.sqnr_db, 4),
            fmt_g(after.mse, 4),
            fmt_g(before.mse, 4)
        ));
    } else {
        s.push_str(&format!(
            "The error does not change: SQNR {} dB either way. ",
            fmt_g(after.sqnr_db, 4)
        ));
    }
    s.push_str(&format!(
        "The price: {} bits per value instead of {} — the kept values are 16-bit floats instead \
         of {}-bit codes, plus a 32-bit index per column.",
        fmt_g(r.bits_per_weight, 5),
        fmt_g(o.bits_per_weight_without_split, 5),
        cfg.bits
    ));
    s
}

/// The derivation of S for one range (symmetric, so z = 0).
fn derivation_ui(ui: &mut Ui, cfg: &QuantConfig, q: &Quantized) {
    let d = derive(cfg, q.range, &q.params);
    if let Some(remark) = d.remark {
        para(ui, &remark);
    }
    for line in d.lines {
        formula(ui, &line);
    }
}

/// What splitting off `k` of `n` values did to the step, the error and the size.
pub fn split_sentence(r: &OutliersResult, k: usize, n: usize) -> String {
    let (before_s, after_s) = (r.before.params.scale, r.inliers.params.scale);
    let (before, after) = (r.before.metrics.mse, r.after_metrics.mse);
    let who = if k == 1 {
        "The outlier".to_string()
    } else {
        format!("The {k} outliers")
    };
    let mut s = if k < n && r.inliers.params.degenerate {
        "The remaining values are all 0: they need no step at all. ".to_string()
    } else if k < n && after_s > 0.0 {
        format!(
            "{who} made the step {}× wider: without {} the inliers get a step of {} instead of \
             {}. ",
            fmt_g(f64::from(before_s / after_s), 3),
            if k == 1 { "it" } else { "them" },
            fmt_f32(after_s),
            fmt_f32(before_s)
        )
    } else {
        String::new()
    };
    s.push_str(&if after < before {
        if after == 0.0 {
            format!("The MSE drops from {} to 0. ", fmt_g(before, 4))
        } else {
            format!(
                "The MSE drops from {} to {}, a factor of {}. ",
                fmt_g(before, 4),
                fmt_g(after, 4),
                fmt_g(before / after, 3)
            )
        }
    } else if after > before {
        format!(
            "The MSE rises from {} to {}: FP16 rounds the kept values more coarsely than the \
             codes did. ",
            fmt_g(before, 4),
            fmt_g(after, 4)
        )
    } else {
        format!("The MSE stays {}. ", fmt_g(before, 4))
    });
    // The core's cost of each kept value, from its own bit counts.
    let per_outlier = (r.bits_per_value - r.base_bits) * n as f64 / k as f64;
    s.push_str(&format!(
        "The price: {} bits per value instead of {}. Each outlier is stored as a 16-bit value \
         plus a 32-bit position ({} bits): {} among {} values add {} bits per value here; on a \
         real tensor with 0.1 % outliers they would add {} bits.",
        fmt_g(r.bits_per_value, 4),
        fmt_g(r.base_bits, 4),
        fmt_g(per_outlier, 4),
        count(k, "outlier", "outliers"),
        n,
        fmt_g(r.bits_per_value - r.base_bits, 4),
        fmt_g(per_outlier * 0.001, 3)
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_follow_the_split() {
        let mut l = OutliersLesson::default();
        let r = l.result();
        let s = split_sentence(&r, 1, 8);
        assert!(s.starts_with("The outlier made the step"), "{s}");
        assert!(s.contains("The MSE drops from"), "{s}");
        assert!(s.contains("(48 bits)"), "{s}");
        assert!(s.contains("they would add 0.048 bits"), "{s}");
        // [127, 0] at 8 bits: S = 1 is exact before; τ = 100 keeps 127 (exact in FP16) and the
        // rest is all 0: the MSE stays 0 and no step is claimed.
        l.x.set_text("127, 0");
        l.tau = 100.0;
        let r = l.result();
        let s = split_sentence(&r, 1, 2);
        assert!(s.contains("The MSE stays 0."), "{s}");
        assert!(s.contains("need no step"), "{s}");
    }

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
