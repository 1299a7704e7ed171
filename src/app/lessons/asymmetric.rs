//! Lesson 10: asymmetric quantization and the zero point on the seed's [−2.5, −1, 0, 1, 3.5]:
//! S = 6/255 ≈ 0.02353, z = 106, q = [0, 63, 106, 149, 255] with the seed's rounding (textbook)
//! and [0, 64, 106, 148, 255] under PyTorch / ONNX Runtime (−42.5 and 42.5 are exact ties) — with
//! the same error. Then the ruler picture: data in +3 … +10 under symmetric and asymmetric codes.

use egui::{Color32, Pos2, Rect, RichText, Sense, Stroke, Ui, Vec2, pos2};
use serde::{Deserialize, Serialize};

use super::compute::{Quantized, quantize_minmax};
use super::widgets::{
    self, Memo, VectorField, bits_key, fmt_f32, fmt_g, fmt_list, formula, note, para, section,
};
use crate::quant::{
    Calibration, Preset, QuantConfig, QuantParams, Scheme, params_from_range, quantize,
};

/// Lesson 10's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AsymmetricLesson {
    /// The vector.
    pub x: VectorField,
    /// Code width.
    pub bits: u8,
    /// The library convention compared with the seed's (textbook) rounding.
    pub preset: Preset,
    /// Lower end of the ruler's data range.
    pub ruler_lo: f32,
    /// Upper end of the ruler's data range.
    pub ruler_hi: f32,
    /// Code width of the ruler (few bits so every tick is visible).
    pub ruler_bits: u8,
    #[serde(skip)]
    memo: Memo<(Vec<u32>, u8, Preset), AsymmetricResult>,
    #[serde(skip)]
    ruler_memo: Memo<(u32, u32, u8), Rulers>,
}

impl Default for AsymmetricLesson {
    fn default() -> Self {
        Self {
            x: VectorField::new(&[-2.5, -1.0, 0.0, 1.0, 3.5]),
            bits: 8,
            preset: Preset::OnnxRuntime,
            ruler_lo: 3.0,
            ruler_hi: 10.0,
            ruler_bits: 4,
            memo: Memo::default(),
            ruler_memo: Memo::default(),
        }
    }
}

/// Lesson 10's numbers: the same vector under the seed's rounding and under a library preset.
#[derive(Debug, Clone)]
pub struct AsymmetricResult {
    /// Textbook preset (round half away from zero, the seed's arithmetic).
    pub textbook: Quantized,
    /// The chosen library preset.
    pub library: Quantized,
}

/// One ruler: the real value of every code and which codes the data range uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Ruler {
    /// S, z and the code range.
    pub params: QuantParams,
    /// The real value of each code qmin..=qmax.
    pub grid: Vec<f32>,
    /// The first and last code the data range [lo, hi] maps to.
    pub used: (i32, i32),
}

impl Ruler {
    /// How many codes the data range uses.
    pub fn used_count(&self) -> i32 {
        self.used.1 - self.used.0 + 1
    }

    /// How many codes exist.
    pub fn code_count(&self) -> i32 {
        self.params.qmax - self.params.qmin + 1
    }
}

/// The three rulers of the picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Rulers {
    /// Symmetric: the range is [−max|x|, max|x|].
    pub symmetric: Ruler,
    /// Asymmetric as libraries do it: the range is extended to include 0.
    pub asymmetric: Ruler,
    /// The idealised ruler that starts exactly at the data minimum (0 not representable).
    pub shifted: Ruler,
}

/// A ruler from core parameters: codes' real values by dequantization, used codes by quantizing
/// the ends of the data range (the kernel is monotone).
fn ruler(params: QuantParams, lo: f32, hi: f32, cfg: &QuantConfig) -> Ruler {
    Ruler {
        grid: (params.qmin..=params.qmax)
            .map(|q| params.real_from_code(q))
            .collect(),
        used: (quantize(lo, &params, cfg), quantize(hi, &params, cfg)),
        params,
    }
}

/// Builds the three rulers for data in [lo, hi] with `bits`-bit codes.
pub fn rulers(lo: f32, hi: f32, bits: u8) -> Rulers {
    let (lo, hi) = (lo.min(hi), lo.max(hi));
    let sym_cfg = QuantConfig {
        bits,
        scheme: Scheme::Symmetric,
        ..QuantConfig::default()
    };
    let asym_cfg = QuantConfig {
        scheme: Scheme::Asymmetric,
        ..sym_cfg.clone()
    };
    let sym = params_from_range(f64::from(lo), f64::from(hi), &sym_cfg);
    let asym = params_from_range(f64::from(lo), f64::from(hi), &asym_cfg);
    // The idealised ruler maps lo to code 0 and hi to the top code; its grid is lo + k·S. This
    // is the seed's picture, not a library scheme (0 would fall between two codes).
    let (qmin, qmax) = asym_cfg.code_range();
    // Code counts are at most 2^16: exact in f32.
    let step = if hi > lo {
        (hi - lo) / (qmax - qmin) as f32
    } else {
        1.0
    };
    let grid: Vec<f32> = (qmin..=qmax).map(|k| lo + step * k as f32).collect();
    let shifted = Ruler {
        params: QuantParams {
            scale: step,
            zero_point: 0,
            qmin,
            qmax,
            degenerate: hi <= lo,
        },
        grid,
        used: (qmin, qmax),
    };
    Rulers {
        symmetric: ruler(sym, lo, hi, &sym_cfg),
        asymmetric: ruler(asym, lo, hi, &asym_cfg),
        shifted,
    }
}

impl AsymmetricLesson {
    /// The settings of the library preset.
    pub fn config(&self) -> QuantConfig {
        QuantConfig {
            bits: self.bits,
            scheme: Scheme::Asymmetric,
            preset: self.preset,
            calibration: Calibration::MinMax,
            ..QuantConfig::default()
        }
    }

    /// The computed values for the current inputs (cached).
    pub fn result(&mut self) -> std::sync::Arc<AsymmetricResult> {
        let x = self.x.values().to_vec();
        let cfg = self.config();
        let textbook_cfg = QuantConfig {
            preset: Preset::Textbook,
            ..cfg.clone()
        };
        self.memo.get((bits_key(&x), self.bits, self.preset), |_| {
            AsymmetricResult {
                textbook: quantize_minmax(&x, &textbook_cfg),
                library: quantize_minmax(&x, &cfg),
            }
        })
    }

    /// The ruler picture's numbers (cached).
    pub fn rulers(&mut self) -> std::sync::Arc<Rulers> {
        let key = (
            self.ruler_lo.to_bits(),
            self.ruler_hi.to_bits(),
            self.ruler_bits,
        );
        self.ruler_memo.get(key, |&(lo, hi, b)| {
            rulers(f32::from_bits(lo), f32::from_bits(hi), b)
        })
    }

    /// Draws the lesson; returns the settings when "Try it on a real tensor" is pressed.
    pub fn ui(&mut self, ui: &mut Ui) -> Option<QuantConfig> {
        para(
            ui,
            "Asymmetric quantization maps the smallest value to the lowest code and the largest to the \
             highest, using unsigned codes. Because the real 0 then no longer sits at code 0, a zero \
             point z records which code stands for 0. It is rounded to an integer so that 0 (padding, \
             ReLU outputs) is represented exactly.",
        );
        formula(
            ui,
            "S = (max − min) / (q_{max} − q_{min}),   z = q_{min} − ⌊min / S⌉,   q = clamp(⌊x / S⌉ + z, q_{min}, q_{max}),   x\u{302} = S · (q − z)",
        );
        section(ui, "Inputs");
        self.x.ui(ui, "Vector x:");
        widgets::drag_u8(ui, "Bits b:", &mut self.bits, 2..=8);
        widgets::preset_ui(ui, "l10_preset", &mut self.preset, false);
        let r = self.result();
        let (t, l) = (&r.textbook, &r.library);
        section(ui, "Scale and zero point");
        formula(
            ui,
            &format!(
                "S = ({} − ({})) / {} = {},   −min / S = {} → z = {}",
                fmt_g(t.range.1.max(0.0), 6),
                fmt_g(t.range.0.min(0.0), 6),
                t.params.qmax - t.params.qmin,
                fmt_f32(t.params.scale),
                fmt_g(-t.range.0.min(0.0) / f64::from(t.params.scale), 6),
                t.params.zero_point
            ),
        );
        section(ui, "The seed's rounding (textbook: ties away from zero)");
        widgets::steps_table(ui, "l10_textbook", t, true);
        formula(ui, &format!("q = {}", fmt_list(&t.codes)));
        widgets::metrics_line(ui, t);
        section(ui, &format!("{} (ties to even)", self.preset.name()));
        if self.preset == Preset::Textbook || self.preset == Preset::TfLite {
            ui.label("This preset also rounds ties away from zero; pick onnxruntime or pytorch to compare.");
        }
        widgets::steps_table(ui, "l10_library", l, true);
        formula(ui, &format!("q = {}", fmt_list(&l.codes)));
        widgets::metrics_line(ui, l);
        let ties = t.steps.iter().filter(|s| s.tie).count();
        if ties > 0 && t.codes != l.codes {
            note(
                ui,
                &format!(
                    "{ties} value(s) land exactly halfway between two codes (x / S = ±42.5 for ±1). \
                     The seed rounds halves away from zero (42.5 becomes 43, −42.5 becomes −43); PyTorch and ONNX \
                     Runtime round halves to the even neighbour (42.5 becomes 42, −42.5 becomes −42). The codes \
                     differ by one, yet the MSE is the same ({} vs {}): each tie is exactly half a step \
                     from both neighbours, so either choice costs the same (the last digits differ \
                     only through float32 rounding of S·(q − z)). Tie rules are a convention, \
                     not an accuracy difference — but a bit-exact reimplementation must match it.",
                    fmt_g(t.metrics.mse, 6),
                    fmt_g(l.metrics.mse, 6)
                ),
            );
        }

        section(ui, "The ruler: why a zero point pays off");
        para(
            ui,
            "Suppose the data only ranges from +3 to +10. A symmetric ruler must reach from −10 to +10, \
             so every code below +3 is spent on values that never occur. An asymmetric ruler starts \
             where the data starts. Libraries still include 0 in the range so that 0 stays exact; the \
             seed's idealised ruler starts exactly at the data minimum and uses every code.",
        );
        ui.horizontal_wrapped(|ui| {
            widgets::drag_f32(ui, "Data from:", &mut self.ruler_lo, -100.0..=100.0, 0.1);
            widgets::drag_f32(ui, "Data to:", &mut self.ruler_hi, -100.0..=100.0, 0.1);
            widgets::drag_u8(ui, "Ruler bits:", &mut self.ruler_bits, 2..=6);
        });
        let rs = self.rulers();
        draw_rulers(
            ui,
            &rs,
            self.ruler_lo.min(self.ruler_hi),
            self.ruler_lo.max(self.ruler_hi),
        );
        widgets::try_button(ui, &self.config())
    }
}

/// Draws the three rulers on one real axis, shading the data range.
fn draw_rulers(ui: &mut Ui, rs: &Rulers, lo: f32, hi: f32) {
    let rows: [(&str, &Ruler); 3] = [
        ("symmetric", &rs.symmetric),
        ("asymmetric (library: includes 0)", &rs.asymmetric),
        ("asymmetric (seed's ideal: starts at min)", &rs.shifted),
    ];
    let all = rows.iter().flat_map(|(_, r)| r.grid.iter().copied());
    let (mut amin, mut amax) = all.fold((lo, hi), |(a, b), v| (a.min(v), b.max(v)));
    if amax <= amin {
        amax = amin + 1.0;
    }
    let pad = (amax - amin) * 0.04;
    amin -= pad;
    amax += pad;
    let visuals = ui.visuals().clone();
    let used_color = if visuals.dark_mode {
        Color32::from_rgb(0x6C, 0xC0, 0xFF)
    } else {
        Color32::from_rgb(0x10, 0x5C, 0xB0)
    };
    let wasted_color = visuals.weak_text_color();
    let band = Color32::from_rgba_unmultiplied(0x5F, 0xB0, 0x5F, 60);
    for (name, r) in rows {
        ui.label(
            RichText::new(format!(
                "{name}: S = {}, z = {}, data uses {} of {} codes",
                fmt_f32(r.params.scale),
                r.params.zero_point,
                r.used_count(),
                r.code_count()
            ))
            .strong(),
        );
        let width = ui.available_width().clamp(200.0, 900.0);
        let (rect, _) = ui.allocate_exact_size(Vec2::new(width, 46.0), Sense::hover());
        let painter = ui.painter_at(rect.expand(2.0));
        let x_of = |v: f32| rect.left() + (v - amin) / (amax - amin) * rect.width();
        let base = rect.top() + 22.0;
        painter.rect_filled(
            Rect::from_min_max(pos2(x_of(lo), rect.top() + 4.0), pos2(x_of(hi), base + 2.0)),
            2.0,
            band,
        );
        painter.line_segment(
            [pos2(rect.left(), base), pos2(rect.right(), base)],
            Stroke::new(1.0, visuals.text_color()),
        );
        for (i, &g) in r.grid.iter().enumerate() {
            // i < 2^16: exact in i32.
            let code = r.params.qmin + i as i32;
            let used = code >= r.used.0 && code <= r.used.1;
            let (color, h, w) = if used {
                (used_color, 14.0, 2.0)
            } else {
                (wasted_color, 8.0, 1.0)
            };
            let x = x_of(g);
            painter.line_segment([pos2(x, base - h), pos2(x, base)], Stroke::new(w, color));
        }
        for v in [amin + pad, 0.0, lo, hi, amax - pad] {
            if v >= amin && v <= amax {
                painter.text(
                    Pos2::new(x_of(v), base + 4.0),
                    egui::Align2::CENTER_TOP,
                    fmt_g(f64::from(v), 3),
                    egui::FontId::proportional(11.0),
                    visuals.text_color(),
                );
            }
        }
    }
    ui.label(
        RichText::new("Long blue ticks: codes the data uses · short grey ticks: wasted codes · green band: the data range")
            .small(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_asymmetric_codes_under_both_tie_rules() {
        let mut l = AsymmetricLesson::default();
        let r = l.result();
        // S = 6/255 = 0.023529412, z = round(2.5/S = 106.25) = 106.
        assert_eq!(r.textbook.params.scale, 6.0f32 / 255.0);
        assert_eq!(r.textbook.params.zero_point, 106);
        assert_eq!(r.library.params.zero_point, 106);
        // ±1/S = ±42.5 exactly: RHAZ → ∓43 (63, 149); RNE → ∓42 (64, 148).
        assert_eq!(r.textbook.codes, vec![0, 63, 106, 149, 255]);
        assert_eq!(r.library.codes, vec![0, 64, 106, 148, 255]);
        // Same error: MSE 6.92042e-5 and SQNR 47.73 dB (NUMERICS.md §2). In exact arithmetic
        // the errors are (1.5, 3, 0, 3, 1.5)/255 under both rules, so MSE = 22.5/65025/5 =
        // 6.920415e-5; the f32 S and x̂ = S·(q − z) in f32 (as the libraries compute) move it by
        // about 1e-5 relative (6.92048e-5).
        for q in [&r.textbook, &r.library] {
            assert!(
                (q.metrics.mse / 6.920415e-5 - 1.0).abs() < 2e-5,
                "{}",
                q.metrics.mse
            );
            assert!(
                (q.metrics.sqnr_db - 47.73).abs() < 0.005,
                "{}",
                q.metrics.sqnr_db
            );
        }
        assert!((r.textbook.metrics.mse / r.library.metrics.mse - 1.0).abs() < 2e-5);
    }

    #[test]
    fn ruler_counts_used_codes() {
        let r = rulers(3.0, 10.0, 4);
        // Symmetric 4-bit narrow: S = 10/7; 3/S = 2.1 → 2, 10/S = 7 → codes 2..=7 of −7..=7.
        assert_eq!((r.symmetric.used, r.symmetric.code_count()), ((2, 7), 15));
        // Asymmetric on [0, 10]: S = 10/15, z = 0; 3/S = 4.5 (tie, even → 4), 10/S = 15.
        assert_eq!(
            (r.asymmetric.used, r.asymmetric.code_count()),
            ((4, 15), 16)
        );
        assert_eq!(r.shifted.used_count(), 16);
        assert_eq!(r.shifted.grid.first(), Some(&3.0));
        assert!(
            r.shifted
                .grid
                .last()
                .is_some_and(|&g| (g - 10.0).abs() < 1e-5)
        );
    }
}
