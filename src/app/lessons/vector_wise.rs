//! Lesson 4: one scale for everything versus one scale per group (vector-wise quantization),
//! on the textbook example's groups A = [30, 10, 20, 30] and B = [0, 2, 2, 0]. The sentences
//! under the tables say, group by group, whether the shared scale wipes it out and what its own
//! scale changes, from the codes and errors shown.

use egui::{RichText, Ui};
use serde::{Deserialize, Serialize};

use super::compute::{Quantized, min_max, quantize_params, quantize_range};
use super::derivation::{derive, general_formula};
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
    /// Code width, as typed (limited to 2..=8).
    pub bits: i32,
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
            bits: widgets::bits_of(self.bits),
            scheme: Scheme::Symmetric,
            ..QuantConfig::default()
        }
    }

    /// The computed values for the current inputs (cached).
    pub fn result(&mut self) -> std::sync::Arc<VectorWiseResult> {
        let key = (
            bits_key(self.a.values()),
            bits_key(self.b.values()),
            widgets::bits_of(self.bits),
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
            &format!("{},   x\u{302} = S · q", general_formula(&self.config())),
        );
        section(ui, "Inputs");
        self.a.ui(ui, "Group A:");
        self.b.ui(ui, "Group B:");
        widgets::int_input(ui, "Bits b:", &mut self.bits, widgets::BITS);
        let cfg = self.config();
        let r = self.result();
        formula(
            ui,
            &format!(
                "signed {}-bit codes: q ∈ [{}, {}]",
                cfg.bits,
                widgets::minus(&r.a_own.params.qmin.to_string()),
                r.a_own.params.qmax
            ),
        );

        section(ui, "One rule for both groups");
        derivation_ui(ui, &cfg, &r.a_global, "");
        group_rows(ui, "l4_global", &[("A", &r.a_global), ("B", &r.b_global)]);

        section(ui, "One rule per group");
        derivation_ui(ui, &cfg, &r.a_own, "A");
        derivation_ui(ui, &cfg, &r.b_own, "B");
        group_rows(ui, "l4_own", &[("A", &r.a_own), ("B", &r.b_own)]);
        let sentences = [
            group_sentence("A", self.a.values(), &r.a_global, &r.a_own),
            group_sentence("B", self.b.values(), &r.b_global, &r.b_own),
        ];
        note(ui, &sentences.join("\n"));
        para(
            ui,
            "The textbook example calls this vector-wise quantization. In practice it is \
             per-channel (one scale per output row of a weight matrix) or per-group (one scale per \
             32, 64 or 128 consecutive weights, as GPTQ, AWQ and llama.cpp do). The cost is the \
             stored scales: 16 bits per group of 128 adds 0.125 bits per weight.",
        );
        let cfg = QuantConfig {
            granularity: Granularity::DEFAULT_GROUP,
            ..cfg
        };
        widgets::try_button(ui, &cfg)
    }
}

/// The derivation of one scale, its symbol subscripted with `group` (none for the shared one).
fn derivation_ui(ui: &mut Ui, cfg: &QuantConfig, q: &Quantized, group: &str) {
    let d = derive(cfg, q.range, &q.params);
    let name = if group.is_empty() {
        "Shared scale".to_string()
    } else {
        format!("Group {group}")
    };
    if let Some(remark) = d.remark {
        para(ui, &format!("{name}: {remark}"));
    }
    for line in d.lines {
        let line = if group.is_empty() {
            line
        } else {
            line.replacen("S = ", &format!("S_{{{group}}} = "), 1)
        };
        formula(ui, &line);
    }
}

/// What the shared scale does to one group and what its own scale changes, from the numbers.
pub fn group_sentence(name: &str, values: &[f32], global: &Quantized, own: &Quantized) -> String {
    let max_abs = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if max_abs == 0.0 {
        return format!("Group {name} is all zeros: every scale gives it codes 0 and no error.");
    }
    let (g, o) = (global.metrics.mse, own.metrics.mse);
    let s = global.params.scale;
    let mut out = if global.codes.iter().all(|&c| c == 0) {
        format!(
            "With the shared scale S = {}, every value of {name} is at most half a step \
             (max|{name}| = {} ≤ S/2 = {}), so all of {name} rounds to code 0: the group is \
             wiped out (MSE {}). ",
            fmt_f32(s),
            fmt_g(f64::from(max_abs), 4),
            fmt_g(f64::from(s) / 2.0, 4),
            fmt_g(g, 4)
        )
    } else {
        let lo = global.codes.iter().copied().min().unwrap_or(0);
        let hi = global.codes.iter().copied().max().unwrap_or(0);
        format!(
            "With the shared scale, {name} uses codes {} … {} of {} … {} (MSE {}). ",
            widgets::minus(&lo.to_string()),
            hi,
            widgets::minus(&global.params.qmin.to_string()),
            global.params.qmax,
            fmt_g(g, 4)
        )
    };
    if own.params.scale == global.params.scale {
        out.push_str(&format!(
            "{name} holds the largest magnitude, so it sets the shared scale: its own scale is the \
             same and nothing changes."
        ));
        return out;
    }
    let verdict = if o < g {
        if o == 0.0 {
            format!(
                "its MSE drops from {} to 0: {name} comes back exactly",
                fmt_g(g, 4)
            )
        } else {
            format!("its MSE drops from {} to {}", fmt_g(g, 4), fmt_g(o, 4))
        }
    } else if o > g {
        format!("its MSE rises from {} to {}", fmt_g(g, 4), fmt_g(o, 4))
    } else {
        format!("its MSE stays {}", fmt_g(g, 4))
    };
    out.push_str(&format!(
        "Its own scale S_{name} = {} spends the whole code range on {name}: {verdict}.",
        fmt_f32(own.params.scale)
    ));
    out
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
    fn sentences_follow_the_groups() {
        let mut l = VectorWiseLesson::default();
        let r = l.result();
        let b = group_sentence("B", l.b.values(), &r.b_global, &r.b_own);
        assert!(b.contains("wiped out (MSE 2)"), "{b}");
        assert!(b.contains("drops from 2 to 0: B comes back exactly"), "{b}");
        let a = group_sentence("A", l.a.values(), &r.a_global, &r.a_own);
        assert!(a.contains("nothing changes"), "{a}");
        // B = [0, 2, 2, 0.3]: own scale 2/7; 0.3 / S = 1.05 → 1, back 0.286: not exact.
        l.b.set_text("0, 2, 2, 0.3");
        let r = l.result();
        let b = group_sentence("B", l.b.values(), &r.b_global, &r.b_own);
        assert!(!b.contains("exactly"), "{b}");
        assert!(b.contains("drops from"), "{b}");
    }

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
