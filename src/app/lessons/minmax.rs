//! Lesson 6: min-max calibration on the seed's x = [−0.2, 0.1, 0.3, 0.5]: S = 0.7/255 ≈ 0.002745
//! and the 8-bit codes. (The extracted seed lost the minus sign of −0.2.)

use egui::Ui;
use serde::{Deserialize, Serialize};

use super::compute::{Quantized, quantize_minmax};
use super::widgets::{
    self, Memo, VectorField, bits_key, fmt_f32, fmt_g, fmt_list, formula, note, para, section,
};
use crate::quant::{Calibration, Preset, QuantConfig, Scheme};

/// Lesson 6's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MinMaxLesson {
    /// The vector.
    pub x: VectorField,
    /// Code width.
    pub bits: u8,
    /// Symmetric or asymmetric.
    pub scheme: Scheme,
    /// Library convention.
    pub preset: Preset,
    #[serde(skip)]
    memo: Memo<(Vec<u32>, QuantConfig), Quantized>,
}

impl Default for MinMaxLesson {
    fn default() -> Self {
        Self {
            x: VectorField::new(&[-0.2, 0.1, 0.3, 0.5]),
            bits: 8,
            scheme: Scheme::Asymmetric,
            preset: Preset::OnnxRuntime,
            memo: Memo::default(),
        }
    }
}

impl MinMaxLesson {
    /// The quantization settings.
    pub fn config(&self) -> QuantConfig {
        QuantConfig {
            bits: self.bits,
            scheme: self.scheme,
            preset: self.preset,
            calibration: Calibration::MinMax,
            ..QuantConfig::default()
        }
    }

    /// The computed values for the current inputs (cached).
    pub fn result(&mut self) -> std::sync::Arc<Quantized> {
        let cfg = self.config();
        let x = self.x.values().to_vec();
        self.memo
            .get((bits_key(&x), cfg), |(_, cfg)| quantize_minmax(&x, cfg))
    }

    /// Draws the lesson; returns the settings when "Try it on a real tensor" is pressed.
    pub fn ui(&mut self, ui: &mut Ui) -> Option<QuantConfig> {
        para(
            ui,
            "Calibration chooses the real interval that the integer codes will cover. The simplest \
             choice takes the smallest and the largest value seen: nothing is clipped, and every code \
             step has the same width.",
        );
        formula(
            ui,
            "S = (max − min) / (2^{b} − 1),   z = −⌊min / S⌉,   q = clamp(⌊x / S⌉ + z, 0, 2^{b} − 1)",
        );
        section(ui, "Inputs");
        self.x.ui(ui, "Vector x:");
        ui.horizontal_wrapped(|ui| {
            widgets::drag_u8(ui, "Bits b:", &mut self.bits, 2..=8);
            widgets::scheme_ui(ui, &mut self.scheme);
        });
        widgets::preset_ui(ui, "l6_preset", &mut self.preset, false);
        let q = self.result();
        let p = q.params;
        section(ui, "The numbers");
        formula(
            ui,
            &format!(
                "min = {},   max = {}",
                fmt_g(q.range.0, 6),
                fmt_g(q.range.1, 6)
            ),
        );
        match self.scheme {
            Scheme::Asymmetric => {
                formula(
                    ui,
                    &format!(
                        "S = ({} − ({})) / {} = {} / {} = {}",
                        fmt_g(q.range.1.max(0.0), 6),
                        fmt_g(q.range.0.min(0.0), 6),
                        p.qmax - p.qmin,
                        fmt_g(q.range.1.max(0.0) - q.range.0.min(0.0), 6),
                        p.qmax - p.qmin,
                        fmt_f32(p.scale)
                    ),
                );
                formula(ui, &format!("z = {}", p.zero_point));
            }
            Scheme::Symmetric => {
                formula(
                    ui,
                    &format!(
                        "S = max(|min|, |max|) / {} = {}   (z = 0)",
                        p.qmax,
                        fmt_f32(p.scale)
                    ),
                );
            }
        }
        widgets::steps_table(ui, "l6_steps", &q, self.scheme == Scheme::Asymmetric);
        formula(ui, &format!("q = {}", fmt_list(&q.codes)));
        widgets::metrics_line(ui, &q);
        note(
            ui,
            "The seed rounds the scale to 0.00275 and calls the codes int8; they run from 0 to 255, so \
             they are unsigned 8-bit (uint8). Writing q = round((x − min) / S) as the seed does gives the \
             same codes here, because the zero point z = round(−min / S) absorbs the shift; libraries \
             round z to an integer first so that the real value 0 is exactly representable.",
        );
        widgets::try_button(ui, &self.config())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_minmax_scale_and_codes() {
        let mut l = MinMaxLesson::default();
        let q = l.result();
        // S = 0.7/255 = 0.0027450980 (within f32 rounding of the f32 range ends).
        assert!((f64::from(q.params.scale) - 0.7 / 255.0).abs() < 1e-9);
        // z = round(0.2 / S) = round(72.857) = 73; 0.1/S = 36.43 → 36 + 73 = 109; 0.3/S = 109.29
        // → 109 + 73 = 182; 0.5/S = 182.14 → 182 + 73 = 255.
        assert_eq!(q.params.zero_point, 73);
        assert_eq!(q.codes, vec![0, 109, 182, 255]);
    }
}
