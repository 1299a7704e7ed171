//! Lesson 4: one scale for everything versus one scale per group (vector-wise quantization),
//! on the seed's groups A = [30, 10, 20, 30] and B = [0, 2, 2, 0].

use egui::{RichText, Ui};
use serde::{Deserialize, Serialize};

use super::compute::{Quantized, min_max, quantize_params, quantize_range};
use super::widgets::{
    self, Memo, VectorField, bits_key, fmt_f32, fmt_g, fmt_list, formula, note, para, section,
};
use crate::quant::{Granularity, QuantConfig, Scheme, params_from_range};

/// Lesson 4's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VectorWiseLesson {
    /// Group A.
    pub a: VectorField,
    /// Group B.
    pub b: VectorField,
    /// Code width.
    pub bits: u8,
    #[serde(skip)]
    memo: Memo<(Vec<u32>, Vec<u32>, u8), VectorWiseResult>,
}

impl Default for VectorWiseLesson {
    fn default() -> Self {
        Self {
            a: VectorField::new(&[30.0, 10.0, 20.0, 30.0]),
            b: VectorField::new(&[0.0, 2.0, 2.0, 0.0]),
            bits: 4,
            memo: Memo::default(),
        }
    }
}

/// Lesson 4's numbers: each group under the global scale and under its own scale.
#[derive(Debug, Clone)]
pub struct VectorWiseResult {
    /// Group A with the scale of A ∪ B.
    pub a_global: Quantized,
    /// Group B with the scale of A ∪ B.
    pub b_global: Quantized,
    /// Group A with its own scale.
    pub a_own: Quantized,
    /// Group B with its own scale.
    pub b_own: Quantized,
}

impl VectorWiseLesson {
    /// The quantization settings (symmetric, the lesson's bits, one scale per group).
    pub fn config(&self) -> QuantConfig {
        QuantConfig {
            bits: self.bits,
            scheme: Scheme::Symmetric,
            ..QuantConfig::default()
        }
    }

    /// The computed values for the current inputs (cached).
    pub fn result(&mut self) -> std::sync::Arc<VectorWiseResult> {
        let key = (
            bits_key(self.a.values()),
            bits_key(self.b.values()),
            self.bits,
        );
        let (a, b, cfg) = (
            self.a.values().to_vec(),
            self.b.values().to_vec(),
            self.config(),
        );
        self.memo.get(key, |_| {
            let all: Vec<f32> = a.iter().chain(&b).copied().collect();
            let (lo, hi) = min_max(&all);
            let global = params_from_range(lo, hi, &cfg);
            let (alo, ahi) = min_max(&a);
            let (blo, bhi) = min_max(&b);
            VectorWiseResult {
                a_global: quantize_params(&a, (lo, hi), global, &cfg),
                b_global: quantize_params(&b, (lo, hi), global, &cfg),
                a_own: quantize_range(&a, alo, ahi, &cfg),
                b_own: quantize_range(&b, blo, bhi, &cfg),
            }
        })
    }

    /// Draws the lesson; returns the settings when "Try it on a real tensor" is pressed.
    pub fn ui(&mut self, ui: &mut Ui) -> Option<QuantConfig> {
        para(
            ui,
            "A scale S says how much real value one integer step is worth. With one scale for a whole \
             tensor, the group with the largest numbers sets it, and a group of small numbers gets only \
             a few of the available steps — sometimes none. Giving every group (a row, a channel, or a \
             block of consecutive weights) its own scale fixes that for the price of storing one extra \
             number per group.",
        );
        formula(
            ui,
            "S = max|x| / q_{max},   q = ⌊x / S⌉,   x\u{302} = S · q",
        );
        section(ui, "Inputs");
        self.a.ui(ui, "Group A:");
        self.b.ui(ui, "Group B:");
        widgets::drag_u8(ui, "Bits b:", &mut self.bits, 2..=8);
        let r = self.result();
        let qmax = r.a_own.params.qmax;
        formula(
            ui,
            &format!(
                "signed {}-bit codes: q ∈ [{}, {}]",
                self.bits,
                widgets::minus(&r.a_own.params.qmin.to_string()),
                qmax
            ),
        );

        section(ui, "One rule for both groups");
        formula(
            ui,
            &format!(
                "S = {} / {} = {}",
                fmt_g(r.a_global.range.0.abs().max(r.a_global.range.1.abs()), 6),
                qmax,
                fmt_f32(r.a_global.params.scale)
            ),
        );
        group_rows(ui, "l4_global", &[("A", &r.a_global), ("B", &r.b_global)]);

        section(ui, "One rule per group");
        formula(
            ui,
            &format!(
                "S_{{A}} = {},   S_{{B}} = {}",
                fmt_f32(r.a_own.params.scale),
                fmt_f32(r.b_own.params.scale)
            ),
        );
        group_rows(ui, "l4_own", &[("A", &r.a_own), ("B", &r.b_own)]);
        if r.b_global.codes.iter().all(|&c| c == 0) && r.b_own.codes.iter().any(|&c| c != 0) {
            note(
                ui,
                "With the shared scale every value of B is smaller than half a step, so all of B \
                 rounds to code 0: the group is wiped out. Its own scale spends the full code range on \
                 B, and B comes back exactly.",
            );
        }
        para(
            ui,
            "The seed calls this vector-wise quantization. In practice it is per-channel (one scale per \
             output row of a weight matrix) or per-group (one scale per 32, 64 or 128 consecutive \
             weights, as GPTQ, AWQ and llama.cpp do). The cost is the stored scales: 16 bits per group \
             of 128 adds 0.125 bits per weight.",
        );
        let cfg = QuantConfig {
            granularity: Granularity::DEFAULT_GROUP,
            ..self.config()
        };
        widgets::try_button(ui, &cfg)
    }
}

/// Codes, dequantized values and error of each group.
fn group_rows(ui: &mut Ui, id: &str, rows: &[(&str, &Quantized)]) {
    egui::Grid::new(id).striped(true).show(ui, |ui| {
        for h in ["group", "codes q", "dequantized", "MSE", "max |e|"] {
            ui.strong(h);
        }
        ui.end_row();
        for (name, q) in rows {
            ui.label(*name);
            ui.label(RichText::new(fmt_list(&q.codes)).strong());
            ui.label(widgets::fmt_list_g(&q.dequant, 4));
            ui.label(fmt_g(q.metrics.mse, 4));
            ui.label(fmt_g(q.metrics.max_abs_error, 4));
            ui.end_row();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_scale_wipes_out_group_b_at_4_bits() {
        let mut l = VectorWiseLesson::default();
        let r = l.result();
        // 4-bit narrow symmetric: qmax = 7, S = 30/7; 2/S = 0.467 rounds to 0.
        assert_eq!(r.b_global.codes, vec![0, 0, 0, 0]);
        // A: 30/S = 7, 10/S = 2.33 → 2, 20/S = 4.67 → 5.
        assert_eq!(r.a_global.codes, vec![7, 2, 5, 7]);
        // Own scale for B: S = 2/7, codes [0, 7, 7, 0], exact.
        assert_eq!(r.b_own.codes, vec![0, 7, 7, 0]);
        assert!(r.b_own.metrics.mse < 1e-12);
        assert_eq!(r.b_global.metrics.mse, 2.0);
    }
}
