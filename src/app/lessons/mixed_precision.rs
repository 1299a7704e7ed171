//! Lesson 2: mixed-precision training — a tiny gradient vanishing in FP16 and surviving in
//! BF16 and FP32, loss scaling (including the overflow a too-large scale causes), and why
//! inference tolerates lower precision. The sentences are written from the numbers: which
//! formats keep the gradient, whether the chosen scale rescues it, loses it or overflows.

use egui::{RichText, Ui};
use serde::{Deserialize, Serialize};

use super::data_types::{FORMATS, Rounded, round_to};
use super::widgets::{self, Memo, fmt_g, formula, note, para, section};
use crate::float::{FloatClass, FloatFormat, format_exact};
use crate::quant::QuantConfig;

/// The gradients the lesson accepts: beyond FP32's largest finite value, so every format's
/// overflow can be shown.
pub const GRADIENT_LIMIT: std::ops::RangeInclusive<f64> = -1.0e39..=1.0e39;

/// The loss-scale exponents the lesson accepts: far enough for a scaled gradient to overflow
/// FP16 (65504 ≈ 2^16) from anywhere down to FP16's vanishing point 2^−25.
pub const SCALE_EXP_LIMIT: std::ops::RangeInclusive<i32> = 0..=64;

/// Lesson 2's inputs, as typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MixedPrecisionLesson {
    /// The gradient value g (the parsed decimal).
    pub gradient: f64,
    /// Loss-scale exponent k: gradients are multiplied by 2^k before being stored in FP16.
    pub loss_scale_exp: i32,
    #[serde(skip)]
    memo: Memo<(u64, i32), MixedPrecisionResult>,
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
    /// The gradient in use.
    pub gradient: f64,
    /// The exponent k in use.
    pub k: i32,
    /// g stored in FP32, FP16 and BF16 (the order of [`FORMATS`]).
    pub stored: Vec<Rounded>,
    /// g · 2^k (exact: a power of two) stored in FP16.
    pub scaled_fp16: Rounded,
    /// The FP16 scaled gradient divided by 2^k again in FP32 (what the optimizer sees; exact,
    /// as the quotient of an FP16 value by 2^k ≤ 2^64 is a normal FP32 number).
    pub recovered: f64,
    /// The smallest k in the lesson's range whose scaled gradient is not 0 in FP16.
    pub k_rescues: Option<i32>,
    /// The largest k in the lesson's range whose scaled gradient is still finite in FP16.
    pub k_largest_finite: Option<i32>,
}

impl MixedPrecisionResult {
    /// |recovered − g| / |g|, when defined.
    pub fn recovered_relative_error(&self) -> Option<f64> {
        (self.gradient != 0.0 && self.recovered.is_finite())
            .then(|| ((self.recovered - self.gradient) / self.gradient).abs())
    }
}

/// g · 2^k in FP16.
fn scaled(g: f64, k: i32) -> Rounded {
    // 2^k for k ≤ 64 is exact in f64 and g · 2^k only shifts the exponent.
    round_to(FloatFormat::FP16, g * 2f64.powi(k))
}

/// Computes lesson 2 for gradient `g` and exponent `k`.
pub fn mixed_precision(g: f64, k: i32) -> MixedPrecisionResult {
    let scaled_fp16 = scaled(g, k);
    let ks = || SCALE_EXP_LIMIT.clone();
    MixedPrecisionResult {
        gradient: g,
        k,
        stored: FORMATS.iter().map(|&f| round_to(f, g)).collect(),
        recovered: scaled_fp16.stored() / 2f64.powi(k),
        scaled_fp16,
        k_rescues: ks().find(|&j| scaled(g, j).stored() != 0.0),
        k_largest_finite: ks().rev().find(|&j| !scaled(g, j).overflowed()),
    }
}

/// The number of significant bits an FP16 subnormal keeps (the width of its mantissa field).
fn subnormal_bits(r: &Rounded) -> u32 {
    32 - r.analysis.fields.mantissa.leading_zeros()
}

impl MixedPrecisionLesson {
    /// The gradient and exponent in use (limited to the lesson's ranges).
    pub fn inputs(&self) -> (f64, i32) {
        (
            widgets::limit_real(self.gradient, &GRADIENT_LIMIT),
            widgets::limit_int(self.loss_scale_exp, &SCALE_EXP_LIMIT),
        )
    }

    /// The computed values for the current inputs (cached).
    pub fn result(&mut self) -> std::sync::Arc<MixedPrecisionResult> {
        let (g, k) = self.inputs();
        self.memo.get((g.to_bits(), k), |&(g, k)| {
            mixed_precision(f64::from_bits(g), k)
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
                    .clamping(egui::SliderClamping::Never)
                    .custom_formatter(|v, _| format_exact(v))
                    .custom_parser(|t| t.trim().replace('−', "-").parse::<f64>().ok()),
            )
            .labelled_by(l.id)
            .on_hover_text("Drag from 1e−12 to 0.1, or type any value into the number.");
            let used = widgets::limit_real(self.gradient, &GRADIENT_LIMIT);
            if used.to_bits() != self.gradient.to_bits() {
                widgets::clamp_warning(
                    ui,
                    &format!(
                        "{} is outside ±1e39: this lesson uses {}",
                        fmt_g(self.gradient, 6),
                        fmt_g(used, 6)
                    ),
                );
            }
        });
        let fp16 = FloatFormat::FP16;
        formula(
            ui,
            &format!(
                "FP16: smallest step 2^{{−24}} ≈ {}, so |g| ≤ 2^{{−25}} ≈ {} rounds to 0",
                fmt_g(fp16.min_subnormal(), 4),
                fmt_g(fp16.min_subnormal() / 2.0, 4)
            ),
        );
        let r = self.result();
        ui.label(format!("g = {} (the typed decimal)", dec(r.gradient)));
        egui::Grid::new("l2_grad").striped(true).show(ui, |ui| {
            for h in ["format", "stored g", "class", "relative error", ""] {
                ui.strong(h);
            }
            ui.end_row();
            for an in &r.stored {
                ui.label(an.analysis.format.name);
                ui.label(dec(an.stored()));
                ui.label(an.class().name());
                ui.label(an.relative_error().map_or("—".into(), |e| fmt_g(e, 3)));
                ui.label(fate_label(ui, an));
                ui.end_row();
            }
        });
        para(ui, &fate_sentence(&r));

        section(ui, "Loss scaling: rescuing FP16");
        para(
            ui,
            "Mixed-precision training keeps a master copy of the weights in FP32 and runs the forward \
             and backward passes in FP16 or BF16. With FP16 it multiplies the loss (hence every \
             gradient) by a power of two before the backward pass and divides it out again in FP32.",
        );
        widgets::int_input(
            ui,
            "Loss-scale exponent k (scale 2^k):",
            &mut self.loss_scale_exp,
            SCALE_EXP_LIMIT,
        );
        let r = self.result();
        formula(
            ui,
            &format!(
                "FP16(g · 2^{{{k}}}) = {} → ÷ 2^{{{k}}} in FP32 = {}",
                dec(r.scaled_fp16.stored()),
                dec(r.recovered),
                k = r.k
            ),
        );
        if let Some(e) = r.recovered_relative_error() {
            ui.label(format!(
                "Relative error of the recovered gradient: {}",
                fmt_g(e, 3)
            ));
        }
        let (text, warn) = scaling_sentence(&r);
        if warn {
            ui.label(
                RichText::new(text)
                    .color(ui.visuals().error_fg_color)
                    .strong(),
            );
        } else {
            para(ui, &text);
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

/// A decimal as the page writes it: exact shortest form, typographic minus.
fn dec(v: f64) -> String {
    widgets::minus(&format_exact(v))
}

/// The last column of the table: what the format did to g.
fn fate_label(ui: &Ui, an: &Rounded) -> RichText {
    if an.underflowed() {
        RichText::new("vanished: no update")
            .color(ui.visuals().error_fg_color)
            .strong()
    } else if an.overflowed() {
        RichText::new("overflow: ∞")
            .color(ui.visuals().error_fg_color)
            .strong()
    } else if an.class() == FloatClass::Subnormal {
        RichText::new(format!(
            "subnormal: {} left",
            widgets::count(
                subnormal_bits(an) as usize,
                "significant bit",
                "significant bits"
            )
        ))
        .color(ui.visuals().warn_fg_color)
    } else if an.input == 0.0 {
        RichText::new("zero stays zero")
    } else {
        RichText::new("survives")
    }
}

/// What happened to g in FP16 against BF16 (and FP32), in one paragraph.
fn fate_sentence(r: &MixedPrecisionResult) -> String {
    let (Some(f32r), Some(h), Some(bf)) = (r.stored.first(), r.stored.get(1), r.stored.get(2))
    else {
        return String::new();
    };
    if r.gradient == 0.0 {
        return "g = 0: every format stores 0 exactly, there is nothing to lose.".into();
    }
    let rel = |x: &Rounded| x.relative_error().map_or("—".into(), |e| fmt_g(e, 3));
    let bf_part = if bf.underflowed() {
        format!(
            "BF16 loses it too: its smallest positive number is {}",
            fmt_g(FloatFormat::BF16.min_subnormal(), 3)
        )
    } else if bf.overflowed() {
        "BF16 overflows too: it is beyond even FP32's range".to_string()
    } else if bf.class() == FloatClass::Subnormal {
        format!(
            "BF16 keeps it only as a subnormal (relative error {})",
            rel(bf)
        )
    } else {
        format!(
            "BF16 keeps FP32's exponent range (normal numbers down to about 1.2e−38), so g \
             survives there with a relative error of {}",
            rel(bf)
        )
    };
    let fp16_part = if h.underflowed() {
        format!(
            "FP16 rounds g = {} to 0: the update is lost",
            dec(r.gradient)
        )
    } else if h.overflowed() {
        "FP16 overflows: |g| is above its largest finite number 65504".to_string()
    } else if h.class() == FloatClass::Subnormal {
        format!(
            "FP16 keeps g only as a subnormal with {} (relative error {})",
            widgets::count(
                subnormal_bits(h) as usize,
                "significant bit",
                "significant bits"
            ),
            rel(h)
        )
    } else {
        format!(
            "FP16 holds g as a normal number (relative error {})",
            rel(h)
        )
    };
    let fp32_part = if f32r.overflowed() || f32r.underflowed() {
        " FP32 cannot hold it either."
    } else if f32r.exact() {
        ""
    } else {
        " (FP32 itself rounds the decimal too, see its relative error.)"
    };
    // Which 16-bit format comes closer.
    let cmp = match (h.relative_error(), bf.relative_error()) {
        _ if h.underflowed() || h.overflowed() || bf.underflowed() || bf.overflowed() => {
            String::new()
        }
        (Some(eh), Some(eb)) if eh < eb => " FP16 is the more precise of the two here.".into(),
        (Some(eh), Some(eb)) if eb < eh => " BF16 is the more precise of the two here.".into(),
        (Some(_), Some(_)) => " Both are equally precise here.".into(),
        _ => String::new(),
    };
    format!("{fp16_part}; {bf_part}.{cmp}{fp32_part}")
}

/// What the chosen loss scale did, and whether the page should show it as a warning.
fn scaling_sentence(r: &MixedPrecisionResult) -> (String, bool) {
    let g = r.gradient;
    if g == 0.0 {
        return ("g = 0: scaling changes nothing.".into(), false);
    }
    let unscaled = r.stored.get(1);
    let s = &r.scaled_fp16;
    if s.overflowed() {
        let limit = r.k_largest_finite.map_or(String::new(), |k| {
            format!(" For this g, k ≤ {k} stays finite.")
        });
        return (
            format!(
                "Overflow: g · 2^{} = {} is above FP16's largest finite number 65504, so the \
                 scaled gradient becomes ∞ and so does the update. Training frameworks detect \
                 this, skip the step and halve the scale (dynamic loss scaling).{limit}",
                r.k,
                fmt_g(s.input, 4)
            ),
            true,
        );
    }
    if s.underflowed() {
        let hint = r
            .k_rescues
            .map_or("No k in this lesson's range is enough.".to_string(), |k| {
                format!("k ≥ {k} rescues it.")
            });
        return (
            format!(
                "2^{} is not enough: g · 2^{} = {} still rounds to 0 in FP16. {hint}",
                r.k,
                r.k,
                fmt_g(s.input, 4)
            ),
            true,
        );
    }
    let e = r
        .recovered_relative_error()
        .map_or("—".into(), |e| fmt_g(e, 3));
    let s = match unscaled {
        Some(u) if u.underflowed() => format!(
            "Scaling by 2^{} rescued the gradient: without it FP16 stores 0; with it the optimizer \
             sees {} (relative error {e}).",
            r.k,
            dec(r.recovered)
        ),
        Some(u) => {
            let before = u.relative_error().unwrap_or(0.0);
            let after = r.recovered_relative_error().unwrap_or(0.0);
            let lifted = if u.class() == FloatClass::Subnormal && s.class() == FloatClass::Normal {
                " Scaling lifts it out of FP16's subnormal range."
            } else {
                ""
            };
            let verdict = if after < before {
                "smaller than"
            } else if after > before {
                "larger than"
            } else {
                "the same as"
            };
            format!(
                "With k = {} the relative error is {e}, {verdict} the {} of FP16 without scaling.{lifted}",
                r.k,
                fmt_g(before, 3)
            )
        }
        None => String::new(),
    };
    (s, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_gradient_vanishes_in_fp16_only() {
        let mut l = MixedPrecisionLesson::default();
        let r = l.result();
        // 1e-8 < 2^-25 ≈ 2.98e-8: FP16 rounds it to +0; BF16 and FP32 keep it (normal).
        assert_eq!(r.stored[1].stored(), 0.0);
        assert_eq!(r.stored[0].class(), FloatClass::Normal);
        assert_eq!(r.stored[2].class(), FloatClass::Normal);
        assert!(
            r.stored[2]
                .relative_error()
                .is_some_and(|e| e < 2f64.powi(-8))
        );
        // FP32 stores the decimal 1e-8 with an error of its own (f32(1e-8) ≈ 9.99999994e-9).
        assert!(
            r.stored[0]
                .relative_error()
                .is_some_and(|e| e > 0.0 && e < 2f64.powi(-24))
        );
        // 1e-8 · 2^k > 2^-25 from k = 2 on (4e-8 rounds to 2^-24 · 1 = 5.96e-8... nonzero).
        assert_eq!(r.k_rescues, Some(2));
        // 1e-8 · 2^42 = 43980 < 65504; 2^43 gives 87961 > 65520: overflow.
        assert_eq!(r.k_largest_finite, Some(42));
        l.loss_scale_exp = 16;
        let r = l.result();
        // 1e-8 × 65536 = 6.5536e-4 is a normal FP16 (≥ 2^-14): relative error ≤ 2^-11.
        assert!(
            r.recovered_relative_error()
                .is_some_and(|e| e <= 2f64.powi(-11))
        );
        l.loss_scale_exp = 43;
        let r = l.result();
        assert!(r.scaled_fp16.overflowed());
        assert!(scaling_sentence(&r).0.starts_with("Overflow"));
    }
}
