//! Lesson 9: symmetric quantization of the textbook example's [−2.5, −1, 0, 1, 3.5]:
//! S = 3.5/127 ≈ 0.02756, q = [−91, −36, 0, 36, 127]. The formula is the chosen preset's own;
//! the note (ties, the other common convention, unused codes) is written from the codes shown.

use egui::Ui;
use serde::{Deserialize, Serialize};

use super::compute::{Quantized, quantize_minmax};
use super::derivation::{derive, general_formula, rounding_sentence, rounding_words};
use super::widgets::{
    self, Memo, VectorField, bits_key, count, fmt_f32, fmt_g, fmt_list, formula, note, para,
    section,
};
use crate::quant::{Calibration, Preset, QuantConfig, Scheme};

/// Lesson 9's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SymmetricLesson {
    /// The vector.
    pub x: VectorField,
    /// Code width, as typed (limited to 2..=8).
    pub bits: i32,
    /// Library convention.
    pub preset: Preset,
    #[serde(skip)]
    memo: Memo<(Vec<u32>, QuantConfig), SymmetricResult>,
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

/// Lesson 9's numbers: the chosen preset, and the other widespread convention beside it.
#[derive(Debug, Clone)]
pub struct SymmetricResult {
    /// Under the chosen preset.
    pub main: Quantized,
    /// The preset compared with: PyTorch (S from the half span, codes −128 … 127), or ONNX
    /// Runtime when PyTorch is the chosen one.
    pub other_preset: Preset,
    /// Under `other_preset`.
    pub other: Quantized,
}

/// The preset the note compares `preset` with.
fn other_preset(preset: Preset) -> Preset {
    if preset == Preset::PyTorch {
        Preset::OnnxRuntime
    } else {
        Preset::PyTorch
    }
}

impl SymmetricLesson {
    /// The quantization settings.
    pub fn config(&self) -> QuantConfig {
        QuantConfig {
            bits: widgets::bits_of(self.bits),
            scheme: Scheme::Symmetric,
            preset: self.preset,
            calibration: Calibration::MinMax,
            ..QuantConfig::default()
        }
    }

    /// The computed values for the current inputs (cached).
    pub fn result(&mut self) -> std::sync::Arc<SymmetricResult> {
        let cfg = self.config();
        let x = self.x.values().to_vec();
        self.memo.get((bits_key(&x), cfg), |(_, cfg)| {
            let other_preset = other_preset(cfg.preset);
            let other_cfg = QuantConfig {
                preset: other_preset,
                ..cfg.clone()
            };
            SymmetricResult {
                main: quantize_minmax(&x, cfg),
                other_preset,
                other: quantize_minmax(&x, &other_cfg),
            }
        })
    }

    /// Draws the lesson; returns the settings when "Try it on a real tensor" is pressed.
    pub fn ui(&mut self, ui: &mut Ui) -> Option<QuantConfig> {
        para(
            ui,
            "Symmetric quantization centres the code range on zero: the real value 0 is always code \
             0, so the zero point is 0 and only the scale is stored. The scale comes from the largest \
             magnitude, whichever side it is on.",
        );
        section(ui, "Inputs");
        self.x.ui(ui, "Vector x:");
        ui.horizontal_wrapped(|ui| {
            widgets::int_input(ui, "Bits b:", &mut self.bits, widgets::BITS);
        });
        widgets::preset_ui(ui, "l9_preset", &mut self.preset, true);
        let cfg = self.config();
        formula(
            ui,
            &format!("{},   x\u{302} = S · q", general_formula(&cfg)),
        );
        para(ui, &rounding_sentence(&cfg));
        let r = self.result();
        let q = &r.main;
        section(ui, "The numbers");
        formula(
            ui,
            &format!(
                "q ∈ [{}, {}]",
                widgets::minus(&q.params.qmin.to_string()),
                q.params.qmax
            ),
        );
        let d = derive(&cfg, q.range, &q.params);
        if let Some(remark) = &d.remark {
            para(ui, remark);
        }
        for line in &d.lines {
            formula(ui, line);
        }
        widgets::steps_table(ui, "l9_steps", q, false);
        formula(ui, &format!("q = {}", fmt_list(&q.codes)));
        widgets::metrics_line(ui, q);
        note(ui, &symmetric_note(&cfg, self.x.values(), &r));
        widgets::try_button(ui, &cfg)
    }
}

/// The note: ties, the other convention beside this one, and the codes the data never uses.
pub fn symmetric_note(cfg: &QuantConfig, x: &[f32], r: &SymmetricResult) -> String {
    let q = &r.main;
    let mut parts = Vec::new();
    let ties: Vec<String> = q
        .steps
        .iter()
        .filter(|s| s.tie)
        .map(|s| fmt_g(f64::from(s.x_over_s), 6))
        .collect();
    if ties.is_empty() {
        parts.push(
            "No value lands exactly halfway between two codes, so every tie rule gives the same \
             codes."
                .to_string(),
        );
    } else {
        parts.push(format!(
            "{} exactly halfway between two codes (x / S = {}); {} rounds {}, so the tie rule \
             matters here.",
            count(ties.len(), "value lands", "values land"),
            ties.join(", "),
            cfg.preset.name(),
            rounding_words(cfg.convention().rounding)
        ));
    }
    let o = &r.other;
    let codes = if o.codes == q.codes {
        "the codes stay the same".to_string()
    } else {
        format!("the codes become {}", fmt_list(&o.codes))
    };
    // The value of largest magnitude shows the scale's difference most.
    let back = x
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .and_then(|(i, &v)| Some((v, *q.dequant.get(i)?, *o.dequant.get(i)?)));
    let back = match back {
        Some((v, mine, theirs)) if mine != theirs => format!(
            ", but {} comes back as {} instead of {}",
            fmt_f32(v),
            fmt_g(f64::from(theirs), 7),
            fmt_g(f64::from(mine), 7)
        ),
        _ => " and every value comes back the same".to_string(),
    };
    if o.params.scale == q.params.scale {
        parts.push(format!(
            "The {} preset computes the same S = {} here (its codes run from {} to {}), so {}.",
            r.other_preset.name(),
            fmt_f32(q.params.scale),
            widgets::minus(&o.params.qmin.to_string()),
            o.params.qmax,
            codes
        ));
    } else {
        parts.push(format!(
            "The {} preset computes S = {} instead of {} (its codes run from {} to {}): {}{}. Try \
             the {} preset.",
            r.other_preset.name(),
            fmt_f32(o.params.scale),
            fmt_f32(q.params.scale),
            widgets::minus(&o.params.qmin.to_string()),
            o.params.qmax,
            codes,
            back,
            r.other_preset.name()
        ));
    }
    let lo = q.codes.iter().copied().min().unwrap_or(0);
    let hi = q.codes.iter().copied().max().unwrap_or(0);
    let (qmin, qmax) = (q.params.qmin, q.params.qmax);
    let span = |a: i32, b: i32| {
        if a == b {
            format!("the code {} is", widgets::minus(&a.to_string()))
        } else {
            format!(
                "the codes {} … {} are",
                widgets::minus(&a.to_string()),
                widgets::minus(&b.to_string())
            )
        }
    };
    let (data_lo, data_hi) = (q.range.0.min(q.range.1), q.range.0.max(q.range.1));
    let mut wasted = Vec::new();
    if lo > qmin {
        wasted.push(format!(
            "nothing is below {}, so {} never used",
            fmt_g(data_lo, 6),
            span(qmin, lo - 1)
        ));
    }
    if hi < qmax {
        wasted.push(format!(
            "nothing is above {}, so {} never used",
            fmt_g(data_hi, 6),
            span(hi + 1, qmax)
        ));
    }
    if wasted.is_empty() {
        parts.push("Both ends of the code range are used here.".to_string());
    } else {
        let unused = (lo - qmin).max(0) + (qmax - hi).max(0);
        parts.push(format!(
            "Symmetric ranges waste codes when the data is lopsided: here {} ({} of {}). The \
             next lesson fixes that.",
            wasted.join("; "),
            unused,
            qmax - qmin + 1
        ));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_symmetric_codes() {
        let mut l = SymmetricLesson::default();
        let r = l.result();
        let q = &r.main;
        // S = 3.5/127 = 0.027559055; −2.5/S = −90.71 → −91; −1/S = −36.29 → −36.
        assert_eq!(q.params.scale, 3.5f32 / 127.0);
        assert_eq!(q.codes, vec![-91, -36, 0, 36, 127]);
        let n = symmetric_note(&l.config(), l.x.values(), &r);
        assert!(n.starts_with("No value lands exactly halfway"), "{n}");
        assert!(
            n.contains("the codes stay the same, but 3.5 comes back as 3.486274 instead of 3.5"),
            "{n}"
        );
        assert!(
            n.contains("nothing is below −2.5, so the codes −127 … −92 are never used (36 of 255)"),
            "{n}"
        );
        l.preset = Preset::PyTorch;
        let r = l.result();
        let q = &r.main;
        // PyTorch: S = 3.5/127.5; same codes, 3.5 → 127 · S = 3.4862745.
        assert_eq!(q.codes, vec![-91, -36, 0, 36, 127]);
        assert!((q.dequant[4] - 3.486_274_5).abs() < 1e-6);
        // Balanced data uses both ends; a tie is named.
        l.preset = Preset::OnnxRuntime;
        l.x.set_text("-127, 63.5, 127");
        let r = l.result();
        let n = symmetric_note(&l.config(), l.x.values(), &r);
        // S = 2 · 127 / 254 = 1, so 63.5 / S = 63.5: a tie, even → 64.
        assert!(
            n.starts_with("1 value lands exactly halfway between two codes (x / S = 63.5)"),
            "{n}"
        );
        assert!(
            n.contains("Both ends of the code range are used here."),
            "{n}"
        );
    }
}
