//! Lesson 6: min-max calibration on the textbook example's x = [−0.2, 0.1, 0.3, 0.5]:
//! S = 0.7/255 ≈ 0.002745 and the 8-bit codes (the extracted seed text lost the minus sign of
//! −0.2). The formulas are the chosen preset's own, for either scheme, and the note on the codes
//! (signed or not, the textbook's shortcut formula) is written from the codes shown.

use egui::Ui;
use serde::{Deserialize, Serialize};

use super::compute::{Quantized, quantize_minmax};
use super::derivation::{derive, general_formula, rounding_sentence};
use super::widgets::{self, Memo, VectorField, bits_key, fmt_list, formula, note, para, section};
use crate::quant::rounding::round_f64;
use crate::quant::{Calibration, Preset, QuantConfig, Scheme};

/// The textbook example's vector.
pub const TEXTBOOK_X: [f32; 4] = [-0.2, 0.1, 0.3, 0.5];

/// Lesson 6's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MinMaxLesson {
    /// The vector.
    pub x: VectorField,
    /// Code width, as typed (limited to 2..=8).
    pub bits: i32,
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
            x: VectorField::new(&TEXTBOOK_X),
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
            bits: widgets::bits_of(self.bits),
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
        section(ui, "Inputs");
        self.x.ui(ui, "Vector x:");
        ui.horizontal_wrapped(|ui| {
            widgets::int_input(ui, "Bits b:", &mut self.bits, widgets::BITS);
            widgets::scheme_ui(ui, &mut self.scheme);
        });
        widgets::preset_ui(ui, "l6_preset", &mut self.preset, false);
        let cfg = self.config();
        let q = self.result();
        section(ui, "The formula");
        formula(ui, &general_formula(&cfg));
        para(ui, &rounding_sentence(&cfg));
        section(ui, "The numbers");
        formula(
            ui,
            &format!(
                "min = {},   max = {},   q ∈ [{}, {}]",
                widgets::fmt_g(q.range.0, 6),
                widgets::fmt_g(q.range.1, 6),
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
        widgets::steps_table(ui, "l6_steps", &q, self.scheme == Scheme::Asymmetric);
        formula(ui, &format!("q = {}", fmt_list(&q.codes)));
        widgets::metrics_line(ui, &q);
        let textbook = self.x.values() == TEXTBOOK_X;
        note(ui, &codes_note(&cfg, self.x.values(), &q, textbook));
        widgets::try_button(ui, &cfg)
    }
}

/// The codes of `x` by the textbook example's shortcut q = round((x − min′) / S), clamped:
/// rounding once instead of rounding x/S and z separately.
pub fn shortcut_codes(cfg: &QuantConfig, x: &[f32], q: &Quantized) -> Vec<i32> {
    let lo = q.range.0.min(q.range.1).min(0.0);
    let s = f64::from(q.params.scale);
    let rule = cfg.convention().rounding;
    x.iter()
        .map(|&v| {
            let c = round_f64((f64::from(v) - lo) / s, rule)
                .clamp(f64::from(q.params.qmin), f64::from(q.params.qmax));
            // Clamped into the code range: an exact small integer.
            c as i32
        })
        .collect()
}

/// The note on the codes: their range and signedness, and (asymmetric) whether the textbook
/// example's one-rounding formula gives the same codes.
pub fn codes_note(cfg: &QuantConfig, x: &[f32], q: &Quantized, textbook: bool) -> String {
    let b = cfg.bits;
    let lo = q.codes.iter().copied().min().unwrap_or(0);
    let hi = q.codes.iter().copied().max().unwrap_or(0);
    let name = |signed: bool| {
        let kind = if signed { "int" } else { "uint" };
        format!("{kind}{b}")
    };
    let mut s = match cfg.scheme {
        Scheme::Asymmetric => format!(
            "Asymmetric codes are unsigned: the code range is [{}, {}] ({}); here they run from {} to {}.",
            q.params.qmin,
            q.params.qmax,
            name(false),
            widgets::minus(&lo.to_string()),
            hi
        ),
        Scheme::Symmetric => format!(
            "Symmetric codes are signed: the code range is [{}, {}] ({}); here they run from {} to {}.",
            widgets::minus(&q.params.qmin.to_string()),
            q.params.qmax,
            name(true),
            widgets::minus(&lo.to_string()),
            hi
        ),
    };
    if cfg.scheme == Scheme::Asymmetric {
        if textbook && b == 8 {
            s.push_str(
                " The textbook example calls them int8, but codes from 0 to 255 are uint8; it \
                 also rounds S to 0.00275, while the codes above use the unrounded S.",
            );
        }
        let alt = shortcut_codes(cfg, x, q);
        if alt == q.codes {
            s.push_str(
                " Writing q = round((x − lo) / S) in one step (lo = min(min, 0)), as the textbook \
                 example does, gives the same codes here: the zero point z = −round(lo / S) \
                 absorbs the shift.",
            );
        } else {
            s.push_str(&format!(
                " Writing q = round((x − lo) / S) in one step (lo = min(min, 0)), as the textbook \
                 example does, gives {} here: rounding x/S and lo/S separately is not the same \
                 as rounding their difference once.",
                fmt_list(&alt)
            ));
        }
        s.push_str(
            " Libraries round z to an integer first so that the real value 0 is exactly \
             representable.",
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_follows_scheme_and_codes() {
        let mut l = MinMaxLesson::default();
        let cfg = l.config();
        let q = l.result();
        let n = codes_note(&cfg, &TEXTBOOK_X, &q, true);
        assert!(n.starts_with("Asymmetric codes are unsigned: the code range is [0, 255] (uint8); here they run from 0 to 255."), "{n}");
        assert!(n.contains("gives the same codes here"), "{n}");
        l.scheme = Scheme::Symmetric;
        let cfg = l.config();
        let q = l.result();
        let n = codes_note(&cfg, &TEXTBOOK_X, &q, true);
        // S = 0.5/127: −0.2/S = −50.8 → −51, 0.5/S = 127.
        assert_eq!(
            n,
            "Symmetric codes are signed: the code range is [−127, 127] (int8); here they run from −51 to 127."
        );
        // One rounding against two at 2 bits: S = 1.35/3 = 0.45, z = round(0.778) = 1;
        // 0.3/S = 0.667 → 1, + z = 2, but (0.3 + 0.35)/S = 1.444 → 1.
        l.scheme = Scheme::Asymmetric;
        l.bits = 2;
        l.x.set_text("-0.35, 0.3, 1");
        let cfg = l.config();
        let q = l.result();
        assert_eq!(q.codes, vec![0, 2, 3]);
        assert_eq!(shortcut_codes(&cfg, l.x.values(), &q), vec![0, 1, 3]);
        let n = codes_note(&cfg, l.x.values(), &q, false);
        assert!(
            n.contains("as the textbook example does, gives [0, 1, 3] here"),
            "{n}"
        );
    }

    #[test]
    fn textbook_minmax_scale_and_codes() {
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
