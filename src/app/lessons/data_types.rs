//! Lesson 1: FP32, FP16 and BF16 — bit layouts, range versus precision, sizes in bytes, and the
//! product 10000 × 10000 = 1e8 that FP16 cannot hold.

use egui::{Color32, RichText, Stroke, Ui, Vec2};
use serde::{Deserialize, Serialize};

use super::widgets::{self, Memo, field_colors, fmt_g, formula, note, para, section};
use crate::float::{Analysis, FloatClass, FloatFormat, Overflow, format_exact};
use crate::quant::QuantConfig;

/// The three formats this lesson compares.
pub const FORMATS: [FloatFormat; 3] = [FloatFormat::FP32, FloatFormat::FP16, FloatFormat::BF16];

/// Lesson 1's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataTypesLesson {
    /// First factor.
    pub a: f32,
    /// Second factor.
    pub b: f32,
    /// Model size in billions of parameters (for the bytes table).
    pub params_billions: f32,
    #[serde(skip)]
    memo: Memo<(u32, u32), DataTypesResult>,
}

impl Default for DataTypesLesson {
    fn default() -> Self {
        Self {
            a: 10_000.0,
            b: 10_000.0,
            params_billions: 7.0,
            memo: Memo::default(),
        }
    }
}

/// Everything lesson 1 shows, computed by `crate::float`.
#[derive(Debug, Clone)]
pub struct DataTypesResult {
    /// a × b as one FP32 multiply (the exact f64 product rounded to f32).
    pub product: f32,
    /// a × b computed *in* each format (FP32, FP16, BF16, the order of [`FORMATS`]): both
    /// factors rounded to the format, multiplied exactly, the product rounded to the format.
    pub computed_in: Vec<Analysis>,
    /// The FP32 product stored in each format (one rounding).
    pub stored_in: Vec<Analysis>,
    /// a stored in each format.
    pub a_in: Vec<Analysis>,
    /// b stored in each format.
    pub b_in: Vec<Analysis>,
}

impl DataTypesLesson {
    /// The computed values for the current inputs (cached).
    pub fn result(&mut self) -> std::sync::Arc<DataTypesResult> {
        self.memo
            .get((self.a.to_bits(), self.b.to_bits()), |&(a, b)| {
                let (a, b) = (f32::from_bits(a), f32::from_bits(b));
                // The f64 product of two f32 is exact; rounding it to f32 is one FP32 multiply.
                let product = (f64::from(a) * f64::from(b)) as f32;
                let all = |x: f32| -> Vec<Analysis> {
                    FORMATS
                        .iter()
                        .map(|f| f.analyze(x, Overflow::Saturate))
                        .collect()
                };
                let a_in = all(a);
                let b_in = all(b);
                let computed_in = FORMATS
                    .iter()
                    .zip(a_in.iter().zip(&b_in))
                    .map(|(f, (x, y))| {
                        // FP16/BF16 factors have at most 11 significant bits, so their product is
                        // exact in f32 and the only rounding is the format's own; for FP32 this is
                        // one FP32 multiply. Overflowed factors give Inf, which analyze keeps.
                        let p = (x.stored * y.stored) as f32;
                        f.analyze(p, Overflow::Saturate)
                    })
                    .collect();
                DataTypesResult {
                    product,
                    computed_in,
                    stored_in: all(product),
                    a_in,
                    b_in,
                }
            })
    }

    /// Draws the lesson; returns the settings when "Try it on a real tensor" is pressed.
    pub fn ui(&mut self, ui: &mut Ui) -> Option<QuantConfig> {
        para(
            ui,
            "A floating-point number is stored as three bit fields: a sign, an exponent that picks \
             a power of two (the range), and a mantissa that picks a point between that power and \
             the next (the precision). Formats differ only in how many bits each field gets.",
        );
        formula(ui, "x = (−1)^{s} · 2^{e − bias} · (1 + m / 2^{M})");
        para(
            ui,
            "Here s is the sign bit, e the exponent field read as an unsigned integer, m the \
             mantissa field and M its width. More exponent bits means a wider range; more mantissa \
             bits means finer steps.",
        );

        section(ui, "The three formats side by side");
        facts_table(ui, self.params_billions);
        widgets::drag_f32(
            ui,
            "Model size (billions of parameters):",
            &mut self.params_billions,
            0.001..=2000.0,
            0.1,
        );

        section(ui, "Range: multiply two numbers");
        ui.horizontal_wrapped(|ui| {
            widgets::drag_f32(ui, "Factor a:", &mut self.a, -1.0e19..=1.0e19, 10.0);
            widgets::drag_f32(ui, "Factor b:", &mut self.b, -1.0e19..=1.0e19, 10.0);
        });
        let r = self.result();
        formula(
            ui,
            &format!(
                "a × b = {} × {} = {}",
                format_exact(f64::from(self.a)),
                format_exact(f64::from(self.b)),
                format_exact(f64::from(r.product))
            ),
        );
        para(
            ui,
            "Computed in each format: both factors are first rounded to the format, then \
             multiplied, then the product is rounded to the format (what a GPU does in that type).",
        );
        for an in &r.computed_in {
            bit_row(ui, an);
        }
        if let (Some(h), Some(bf), Some(bf_direct)) = (
            r.computed_in.get(1),
            r.computed_in.get(2),
            r.stored_in.get(2),
        ) && h.class == FloatClass::Infinite
            && bf.class != FloatClass::Infinite
        {
            note(
                ui,
                &format!(
                    "FP16's largest finite number is {}; a result that rounds above it becomes \
                         infinity, so the product is lost. BF16 has FP32's eight exponent bits, so \
                         the product fits, but with 7 mantissa bits it comes out as {} ({} \
                         relative error). That is the seed's number: BF16 first rounds each factor \
                         ({} becomes {}), then rounds the product. Storing the exact FP32 product \
                         in BF16 in one step would give {} instead.",
                    format_exact(FloatFormat::FP16.max_finite()),
                    format_exact(bf.stored),
                    percent(f64_rel(bf.stored, f64::from(r.product))),
                    format_exact(f64::from(self.a)),
                    r.a_in.get(2).map_or("—".into(), |x| format_exact(x.stored)),
                    format_exact(bf_direct.stored),
                ),
            );
        }

        section(ui, "Precision: the inputs themselves");
        para(
            ui,
            "The factors tell the opposite story: FP16's 10 mantissa bits hold them better than \
             BF16's 7.",
        );
        egui::Grid::new("l1_inputs").striped(true).show(ui, |ui| {
            ui.strong("value");
            for f in FORMATS {
                ui.strong(format!("stored in {}", f.name));
            }
            ui.end_row();
            for (x, row) in [(self.a, &r.a_in), (self.b, &r.b_in)] {
                ui.label(format_exact(f64::from(x)));
                for an in row {
                    ui.label(format!(
                        "{}  (error {})",
                        format_exact(an.stored),
                        an.error.map_or("—".into(), |e| fmt_g(e, 4))
                    ));
                }
                ui.end_row();
            }
        });
        para(
            ui,
            "Rule of thumb: FP16 trades range for precision, BF16 trades precision for range, FP32 \
             has plenty of both at twice the memory.",
        );
        widgets::try_button(ui, &QuantConfig::default())
    }
}

/// |approx − exact| / |exact|, when defined.
fn f64_rel(approx: f64, exact: f64) -> Option<f64> {
    (exact != 0.0 && approx.is_finite()).then(|| ((approx - exact) / exact).abs())
}

/// "0.39 %" from a relative error.
fn percent(rel: Option<f64>) -> String {
    rel.map_or("—".into(), |r| format!("{} %", fmt_g(r * 100.0, 3)))
}

/// The table of format facts, including the memory for `params_billions` parameters.
fn facts_table(ui: &mut Ui, params_billions: f32) {
    egui::Grid::new("l1_facts").striped(true).show(ui, |ui| {
        for h in [
            "format",
            "sign/exp/mantissa",
            "bytes",
            "largest finite",
            "smallest normal",
            "step at 1 (ε)",
            "model size",
        ] {
            ui.strong(h);
        }
        ui.end_row();
        for f in FORMATS {
            let bytes = f.total_bits() / 8;
            ui.label(f.name);
            ui.label(format!("1 / {} / {}", f.exponent_bits, f.mantissa_bits));
            ui.label(bytes.to_string());
            ui.label(fmt_g(f.max_finite(), 5));
            ui.label(fmt_g(f.min_normal(), 5));
            ui.label(fmt_g(f.epsilon(), 4));
            let gb = f64::from(params_billions) * f64::from(bytes);
            ui.label(format!("{} GB", fmt_g(gb, 4)));
            ui.end_row();
        }
    });
}

/// One format's encoding as coloured sign / exponent / mantissa cells plus the decoded formula.
fn bit_row(ui: &mut Ui, an: &Analysis) {
    let f = an.format;
    let (s, e, m) = f.bit_strings(an.bits);
    let colors = field_colors();
    ui.horizontal_wrapped(|ui| {
        ui.add_sized(
            [60.0, 20.0],
            egui::Label::new(RichText::new(f.name).strong()),
        );
        for (bits, color) in [(s, colors[0]), (e, colors[1]), (m, colors[2])] {
            for ch in bits.chars() {
                bit_cell(ui, ch, color);
            }
            ui.add_space(4.0);
        }
        let class = match an.class {
            FloatClass::Infinite => RichText::new("overflow: becomes ∞")
                .color(ui.visuals().error_fg_color)
                .strong(),
            FloatClass::Zero if an.input != 0.0 => RichText::new("underflow: becomes 0")
                .color(ui.visuals().error_fg_color)
                .strong(),
            c => RichText::new(c.name()),
        };
        ui.label(class);
    });
    ui.horizontal_wrapped(|ui| {
        ui.add_space(66.0);
        ui.label(
            RichText::new(minus_formula(&f.formula(an.bits)))
                .monospace()
                .size(12.0),
        );
    });
}

/// The core's ASCII formula with real symbols.
fn minus_formula(s: &str) -> String {
    s.replace(" - ", " − ").replace("(-1)", "(−1)")
}

/// One bit as a small coloured square holding 0 or 1.
fn bit_cell(ui: &mut Ui, ch: char, color: Color32) {
    let size = Vec2::new(13.0, 20.0);
    let (rect, _) = ui.allocate_exact_size(size, egui::Sense::hover());
    let painter = ui.painter();
    painter.rect_filled(
        rect,
        2.0,
        color.gamma_multiply(if ch == '1' { 0.85 } else { 0.3 }),
    );
    painter.rect_stroke(rect, 2.0, Stroke::new(1.0, color), egui::StrokeKind::Inside);
    painter.text(
        rect.center(),
        egui::Align2::CENTER_CENTER,
        ch,
        egui::FontId::monospace(11.0),
        ui.visuals().strong_text_color(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_product_overflows_fp16_not_bf16() {
        let mut l = DataTypesLesson::default();
        let r = l.result();
        assert_eq!(r.product, 1.0e8);
        // FP32 holds 1e8 exactly (27 bits with 8 trailing zeros fit in 24).
        assert_eq!(r.computed_in[0].stored, 1.0e8);
        // FP16: 10000 is exact (0x70E2) but 1e8 > 65520 rounds to Inf.
        assert_eq!(r.a_in[1].stored, 10_000.0);
        assert_eq!(r.computed_in[1].class, FloatClass::Infinite);
        // BF16: 10000 = 1.0011100|01 × 2^13 rounds to 1.0011100 × 2^13 = 9984; 9984² = 99680256
        // = 1.4853516 × 2^26 → 7 mantissa bits: 190.125/128 → 190/128 → 99614720 (the seed's).
        assert_eq!(r.a_in[2].stored, 9_984.0);
        assert_eq!(r.computed_in[2].stored, 99_614_720.0);
        // One rounding of 1e8 (f32 0x4CBEBC20; low half 0xBC20 > 0x8000 rounds up) → 0x4CBF.
        assert_eq!(r.stored_in[2].stored, 100_139_008.0);
    }
}
