//! Lesson 9: symmetric quantization of the seed's [−2.5, −1, 0, 1, 3.5]: S = 3.5/127 ≈ 0.02756,
//! q = [−91, −36, 0, 36, 127].

use egui::Ui;
use serde::{Deserialize, Serialize};

use super::compute::{Quantized, quantize_minmax};
use super::widgets::{
    self, Memo, VectorField, bits_key, fmt_f32, fmt_g, fmt_list, formula, note, para, section,
};
use crate::quant::{Calibration, Preset, QuantConfig, Scheme, SymmetricScale};

/// Lesson 9's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SymmetricLesson {
    /// The vector.
    pub x: VectorField,
    /// Code width.
    pub bits: u8,
    /// Library convention.
    pub preset: Preset,
    #[serde(skip)]
    memo: Memo<(Vec<u32>, QuantConfig), Quantized>,
}

impl Default for SymmetricLesson {
    fn default() -> Self {
        Self {
            x: VectorField::new(&[-2.5, -1.0, 0.0, 1.0, 3.5]),
            bits: 8,
            preset: Preset::OnnxRuntime,
            memo: Memo::default(),
        }
    }
}

impl SymmetricLesson {
    /// The quantization settings.
    pub fn config(&self) -> QuantConfig {
        QuantConfig {
            bits: self.bits,
            scheme: Scheme::Symmetric,
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
            "Symmetric quantization centres the code range on zero: the real value 0 is always code \
             0, so the zero point is 0 and only the scale is stored. The scale comes from the largest \
             magnitude, whichever side it is on.",
        );
        formula(
            ui,
            "S = max|x| / q_{max},   q = clamp(⌊x / S⌉, q_{min}, q_{max}),   x\u{302} = S · q",
        );
        section(ui, "Inputs");
        self.x.ui(ui, "Vector x:");
        ui.horizontal_wrapped(|ui| {
            widgets::drag_u8(ui, "Bits b:", &mut self.bits, 2..=8);
        });
        widgets::preset_ui(ui, "l9_preset", &mut self.preset, true);
        let q = self.result();
        let p = q.params;
        let absmax = q.range.0.abs().max(q.range.1.abs());
        let conv = self.config().convention();
        // The divisor the preset uses: qmax (narrow) or half the full span (PyTorch: 127.5).
        let divisor = match (self.preset, conv.symmetric_scale) {
            (_, SymmetricScale::HalfSpan) => f64::from(p.qmax - p.qmin) / 2.0,
            (_, SymmetricScale::Qmax) => f64::from((1i32 << (self.bits.clamp(2, 16) - 1)) - 1),
        };
        section(ui, "The numbers");
        formula(
            ui,
            &format!(
                "q ∈ [{}, {}],   S = {} / {} = {}",
                widgets::minus(&p.qmin.to_string()),
                p.qmax,
                fmt_g(absmax, 6),
                fmt_g(divisor, 6),
                fmt_f32(p.scale)
            ),
        );
        widgets::steps_table(ui, "l9_steps", &q, false);
        formula(ui, &format!("q = {}", fmt_list(&q.codes)));
        widgets::metrics_line(ui, &q);
        note(
            ui,
            "No value here lands exactly halfway between two codes, so every tie rule gives the same \
             codes. PyTorch's default observer divides by 127.5 instead of 127 (its codes run from \
             −128 to 127): the codes stay the same, but 3.5 comes back as 3.486. Try the pytorch \
             preset. Symmetric ranges waste codes when the data is lopsided: here nothing is below \
             −2.5, so the codes −127 … −92 are never used. The next lesson fixes that.",
        );
        widgets::try_button(ui, &self.config())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_symmetric_codes() {
        let mut l = SymmetricLesson::default();
        let q = l.result();
        // S = 3.5/127 = 0.027559055; −2.5/S = −90.71 → −91; −1/S = −36.29 → −36.
        assert_eq!(q.params.scale, 3.5f32 / 127.0);
        assert_eq!(q.codes, vec![-91, -36, 0, 36, 127]);
        l.preset = Preset::PyTorch;
        let q = l.result();
        // PyTorch: S = 3.5/127.5; same codes, 3.5 → 127 · S = 3.4862745.
        assert_eq!(q.codes, vec![-91, -36, 0, 36, 127]);
        assert!((q.dequant[4] - 3.486_274_5).abs() < 1e-6);
    }
}
