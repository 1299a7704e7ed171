//! Lesson 2: mixed-precision training — a tiny gradient vanishing in FP16 and surviving in
//! BF16 and FP32, loss scaling, and why inference tolerates lower precision.

use egui::{RichText, Ui};
use serde::{Deserialize, Serialize};

use super::data_types::FORMATS;
use super::widgets::{self, Memo, fmt_g, formula, note, para, section};
use crate::float::{Analysis, FloatClass, FloatFormat, Overflow};
use crate::quant::QuantConfig;

/// Lesson 2's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MixedPrecisionLesson {
    /// The gradient value g.
    pub gradient: f32,
    /// Loss-scale exponent k: gradients are multiplied by 2^k before being stored in FP16.
    pub loss_scale_exp: u8,
    #[serde(skip)]
    memo: Memo<(u32, u8), MixedPrecisionResult>,
}

impl Default for MixedPrecisionLesson {
    fn default() -> Self {
        Self {
            gradient: 1e-8,
            loss_scale_exp: 0,
            memo: Memo::default(),
        }
    }
}

/// What lesson 2 shows, computed by `crate::float`.
#[derive(Debug, Clone)]
pub struct MixedPrecisionResult {
    /// g stored in FP32, FP16 and BF16.
    pub stored: Vec<Analysis>,
    /// g · 2^k stored in FP16.
    pub scaled_fp16: Analysis,
    /// The FP16 scaled gradient divided by 2^k again in FP32 (what the optimizer sees).
    pub recovered: f64,
}

impl MixedPrecisionLesson {
    /// The computed values for the current inputs (cached).
    pub fn result(&mut self) -> std::sync::Arc<MixedPrecisionResult> {
        self.memo
            .get((self.gradient.to_bits(), self.loss_scale_exp), |&(g, k)| {
                let g = f32::from_bits(g);
                let scale = 2f32.powi(i32::from(k));
                let scaled_fp16 = FloatFormat::FP16.analyze(g * scale, Overflow::Saturate);
                MixedPrecisionResult {
                    stored: FORMATS
                        .iter()
                        .map(|f| f.analyze(g, Overflow::Saturate))
                        .collect(),
                    recovered: scaled_fp16.stored / f64::from(scale),
                    scaled_fp16,
                }
            })
    }

    /// Draws the lesson; returns the settings when "Try it on a real tensor" is pressed.
    pub fn ui(&mut self, ui: &mut Ui) -> Option<QuantConfig> {
        para(
            ui,
            "Training nudges every weight against its gradient. Late in training many gradients are \
             tiny. If the format that holds them cannot represent such small numbers, they round to \
             zero and the weights they belong to stop learning.",
        );
        formula(ui, "w ← w − η · g");

        section(ui, "A tiny gradient in three formats");
        ui.horizontal_wrapped(|ui| {
            let l = ui.label("Gradient g:");
            ui.add(
                egui::Slider::new(&mut self.gradient, 1e-12..=1e-1)
                    .logarithmic(true)
                    .custom_formatter(|v, _| fmt_g(v, 4)),
            )
            .labelled_by(l.id);
        });
        let fp16 = FloatFormat::FP16;
        formula(
            ui,
            &format!(
                "FP16: smallest step 2^{{−24}} ≈ {}, so |g| < 2^{{−25}} ≈ {} rounds to 0",
                fmt_g(fp16.min_subnormal(), 4),
                fmt_g(fp16.min_subnormal() / 2.0, 4)
            ),
        );
        let r = self.result();
        egui::Grid::new("l2_grad").striped(true).show(ui, |ui| {
            for h in ["format", "stored g", "class", "relative error", ""] {
                ui.strong(h);
            }
            ui.end_row();
            for an in &r.stored {
                ui.label(an.format.name);
                ui.label(fmt_g(an.stored, 6));
                ui.label(an.class.name());
                ui.label(an.relative_error.map_or("—".into(), |e| fmt_g(e, 3)));
                let vanished = an.class == FloatClass::Zero && an.input != 0.0;
                if vanished {
                    ui.label(
                        RichText::new("vanished: no update")
                            .color(ui.visuals().error_fg_color)
                            .strong(),
                    );
                } else if an.class == FloatClass::Subnormal {
                    ui.label(
                        RichText::new("subnormal: few bits left").color(ui.visuals().warn_fg_color),
                    );
                } else {
                    ui.label("survives");
                }
                ui.end_row();
            }
        });
        para(
            ui,
            "BF16 keeps FP32's exponent range (down to about 1e−38, and subnormals below), so the \
             same gradient survives there, although with only about 2–3 correct decimal digits.",
        );

        section(ui, "Loss scaling: rescuing FP16");
        para(
            ui,
            "Mixed-precision training keeps a master copy of the weights in FP32 and runs the forward \
             and backward passes in FP16 or BF16. With FP16 it multiplies the loss (hence every \
             gradient) by a power of two before the backward pass and divides it out again in FP32.",
        );
        widgets::drag_u8(
            ui,
            "Loss-scale exponent k (scale 2^k):",
            &mut self.loss_scale_exp,
            0..=24,
        );
        let r = self.result();
        formula(
            ui,
            &format!(
                "FP16(g · 2^{{{k}}}) = {} → ÷ 2^{{{k}}} in FP32 = {}",
                fmt_g(r.scaled_fp16.stored, 6),
                fmt_g(r.recovered, 6),
                k = self.loss_scale_exp
            ),
        );
        let g = f64::from(self.gradient);
        if g != 0.0 {
            ui.label(format!(
                "Relative error of the recovered gradient: {}",
                fmt_g(((r.recovered - g) / g).abs(), 3)
            ));
        }

        section(ui, "Why inference can go lower");
        note(
            ui,
            "After training there are no gradients and no updates: a forward pass only needs each \
             weight and activation to be close enough for the output to stay the same. Errors do not \
             accumulate over millions of steps, so 16-bit floats are routine for inference, and the \
             next lessons go further, to 8 and 4-bit integers.",
        );
        widgets::try_button(ui, &QuantConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_gradient_vanishes_in_fp16_only() {
        let mut l = MixedPrecisionLesson::default();
        let r = l.result();
        // 1e-8 < 2^-25 ≈ 2.98e-8: FP16 rounds it to +0; BF16 and FP32 keep it (normal).
        assert_eq!(r.stored[1].stored, 0.0);
        assert_eq!(r.stored[0].class, FloatClass::Normal);
        assert_eq!(r.stored[2].class, FloatClass::Normal);
        assert!(
            r.stored[2]
                .relative_error
                .is_some_and(|e| e < 2f64.powi(-8))
        );
        l.loss_scale_exp = 16;
        let r = l.result();
        // 1e-8 × 65536 = 6.5536e-4 is a normal FP16 (≥ 2^-14): relative error ≤ 2^-11.
        assert!(((r.recovered - 1e-8) / 1e-8).abs() <= 2f64.powi(-11));
    }
}
