//! Lesson 1: FP32, FP16 and BF16 — bit layouts, range versus precision, sizes in bytes, and the
//! product 10000 × 10000 = 1e8 that FP16 cannot hold. Every sentence under the numbers is
//! written from them: which format overflows, which holds the factors better, what FP32 itself
//! rounds.
//!
//! Inputs are decimals (f64): the page shows the typed decimal itself and each format's rounding
//! of it, FP32 included, so 100.3 shows FP32's error of about 3.05e−6 instead of pretending the
//! FP32 value is the input.

use egui::{RichText, Stroke, Ui, Vec2};
use serde::{Deserialize, Serialize};

use super::super::panels::bits::{Field, bit_fill, field_colour, field_legend};
use super::widgets::{self, Memo, fmt_g, formula, note, para, section};
use crate::float::{Analysis, FloatClass, FloatFormat, Overflow, format_exact};
use crate::quant::QuantConfig;

/// The three formats this lesson compares.
pub const FORMATS: [FloatFormat; 3] = [FloatFormat::FP32, FloatFormat::FP16, FloatFormat::BF16];

/// The factors the lesson accepts: beyond FP32's largest finite value (3.4e38), so an FP32
/// overflow can be shown too.
pub const FACTOR_LIMIT: std::ops::RangeInclusive<f64> = -1.0e39..=1.0e39;

/// The model sizes the bytes table accepts, in billions of parameters.
pub const PARAMS_LIMIT: std::ops::RangeInclusive<f64> = 0.0..=1.0e6;

/// Lesson 1's inputs, as typed (the page says when one is outside its limits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataTypesLesson {
    /// First factor, the parsed decimal.
    pub a: f64,
    /// Second factor.
    pub b: f64,
    /// Model size in billions of parameters (for the bytes table).
    pub params_billions: f64,
    #[serde(skip)]
    memo: Memo<(u64, u64), DataTypesResult>,
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

/// A decimal rounded to one format: the encoding, and the decimal it stands for.
#[derive(Debug, Clone)]
pub struct Rounded {
    /// The format's encoding (its `input` is only the f32 step on the way).
    pub analysis: Analysis,
    /// The exact value this encoding approximates (the typed decimal, or an exact product).
    pub input: f64,
}

impl Rounded {
    /// The stored value.
    pub fn stored(&self) -> f64 {
        self.analysis.stored
    }

    /// The class of the stored value.
    pub fn class(&self) -> FloatClass {
        self.analysis.class
    }

    /// stored − input, when both are finite.
    pub fn error(&self) -> Option<f64> {
        (self.stored().is_finite() && self.input.is_finite()).then(|| self.stored() - self.input)
    }

    /// |stored − input| / |input|, when defined.
    pub fn relative_error(&self) -> Option<f64> {
        self.error()
            .filter(|_| self.input != 0.0)
            .map(|e| (e / self.input).abs())
    }

    /// Whether the format holds the input exactly.
    pub fn exact(&self) -> bool {
        self.error() == Some(0.0)
    }

    /// The input became ±∞.
    pub fn overflowed(&self) -> bool {
        self.class() == FloatClass::Infinite && self.input.is_finite()
    }

    /// A non-zero input became 0.
    pub fn underflowed(&self) -> bool {
        self.class() == FloatClass::Zero && self.input != 0.0
    }
}

/// Rounds the decimal `x` to `format` once, to nearest with ties to even.
///
/// The core's encoder reads an f32, so `x` goes through f32 first; that double rounding differs
/// from one rounding only when the f32 lands exactly halfway between two values of `format`
/// while `x` did not, and then the neighbour on `x`'s side is the correct one (checked here).
pub fn round_to(format: FloatFormat, x: f64) -> Rounded {
    // The nearest f32 (RNE; beyond f32's range it is ±∞, which is FP32's own overflow).
    let x32 = x as f32;
    let first = format.analyze(x32, Overflow::Saturate);
    let wide = f64::from(x32);
    let analysis = if wide == x || !x.is_finite() || format.id == FloatFormat::FP32.id {
        first
    } else {
        let v = first.stored;
        // The neighbour on the other side of x32 from the stored value.
        let other = if wide > v {
            format.next_up(first.bits)
        } else {
            format.next_down(first.bits)
        };
        match other {
            Some(ob) => {
                let o = format.decode(ob);
                // The midpoint between v and o; beyond the largest finite value, the midpoint
                // to the value the next binade would have (the overflow threshold).
                let midpoint = if v.is_infinite() {
                    let gap = format.ulp(ob).unwrap_or(0.0);
                    o + gap / 2.0 * o.signum()
                } else if o.is_infinite() {
                    let gap = format.ulp(first.bits).unwrap_or(0.0);
                    v + gap / 2.0 * v.signum()
                } else {
                    (v + o) / 2.0
                };
                if wide == midpoint {
                    // A tie at the f32 step that x itself is not: take x's side.
                    let x_above = x > wide;
                    let o_above = o > v || (v.is_infinite() && v < 0.0);
                    let bits = if x_above == o_above { ob } else { first.bits };
                    format.analyze_bits(bits, x32)
                } else {
                    first
                }
            }
            None => first,
        }
    };
    Rounded { analysis, input: x }
}

/// The exact decimal product of two decimals, when f64 can show it: a product of decimals with
/// at most 15 significant digits between them has at most 15 digits, and rounding the f64
/// product to 15 digits recovers it. Otherwise the f64 product and `false` (shown with ≈).
pub fn decimal_product(a: f64, b: f64) -> (f64, bool) {
    let p = a * b;
    if p == 0.0 || !p.is_finite() {
        return (p, p == 0.0);
    }
    if significant_digits(a) + significant_digits(b) <= 15 {
        let tidy: f64 = format!("{p:.14e}").parse().unwrap_or(p);
        (tidy, true)
    } else {
        (p, false)
    }
}

/// Significant digits of the shortest decimal that reads back as `v` (1e4 has 1, 100.3 has 4).
fn significant_digits(v: f64) -> usize {
    let s = format!("{:e}", v.abs());
    let mantissa = s.split('e').next().unwrap_or("");
    mantissa.chars().filter(char::is_ascii_digit).count()
}

/// Everything lesson 1 shows, computed by `crate::float`.
#[derive(Debug, Clone)]
pub struct DataTypesResult {
    /// The factor a in use (after its limit).
    pub a: f64,
    /// The factor b in use.
    pub b: f64,
    /// The exact product a × b (or its nearest f64 when `product_exact` is false).
    pub product: f64,
    /// Whether `product` is the exact decimal product.
    pub product_exact: bool,
    /// a × b computed *in* each format (FP32, FP16, BF16, the order of [`FORMATS`]): both
    /// factors rounded to the format, multiplied exactly, the product rounded to the format;
    /// errors are measured against the exact product.
    pub computed_in: Vec<Rounded>,
    /// The exact product rounded to each format in one step.
    pub stored_in: Vec<Rounded>,
    /// a rounded to each format.
    pub a_in: Vec<Rounded>,
    /// b rounded to each format.
    pub b_in: Vec<Rounded>,
}

/// Computes lesson 1 for the factors `a`, `b`.
pub fn data_types(a: f64, b: f64) -> DataTypesResult {
    let (product, product_exact) = decimal_product(a, b);
    let all = |x: f64| -> Vec<Rounded> { FORMATS.iter().map(|&f| round_to(f, x)).collect() };
    let a_in = all(a);
    let b_in = all(b);
    let computed_in = FORMATS
        .iter()
        .zip(a_in.iter().zip(&b_in))
        .map(|(&f, (x, y))| {
            // Both factors have at most 24 significant bits, so their f64 product is exact
            // (∞ or NaN when a factor overflowed); it is then rounded once to the format.
            let mut r = round_to(f, x.stored() * y.stored());
            r.input = product;
            r
        })
        .collect();
    DataTypesResult {
        a,
        b,
        product,
        product_exact,
        computed_in,
        stored_in: all(product),
        a_in,
        b_in,
    }
}

impl DataTypesLesson {
    /// The factors in use: as typed, limited to [`FACTOR_LIMIT`].
    pub fn factors(&self) -> (f64, f64) {
        (
            widgets::limit_real(self.a, &FACTOR_LIMIT),
            widgets::limit_real(self.b, &FACTOR_LIMIT),
        )
    }

    /// The computed values for the current inputs (cached).
    pub fn result(&mut self) -> std::sync::Arc<DataTypesResult> {
        let (a, b) = self.factors();
        self.memo.get((a.to_bits(), b.to_bits()), |&(a, b)| {
            data_types(f64::from_bits(a), f64::from_bits(b))
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
        let billions = widgets::limit_real(self.params_billions, &PARAMS_LIMIT);
        facts_table(ui, billions);
        widgets::real_input(
            ui,
            "Model size (billions of parameters):",
            &mut self.params_billions,
            PARAMS_LIMIT,
            0.1,
        );

        section(ui, "Range: multiply two numbers");
        ui.horizontal_wrapped(|ui| {
            widgets::real_input(ui, "Factor a:", &mut self.a, FACTOR_LIMIT, 10.0);
            widgets::real_input(ui, "Factor b:", &mut self.b, FACTOR_LIMIT, 10.0);
        });
        let r = self.result();
        formula(
            ui,
            &format!(
                "a × b = {} × {} {} {}",
                dec(r.a),
                dec(r.b),
                if r.product_exact { "=" } else { "≈" },
                dec(r.product)
            ),
        );
        para(
            ui,
            "Computed in each format: both factors are first rounded to the format, then \
             multiplied, then the product is rounded to the format (what a GPU does in that type).",
        );
        field_legend(ui);
        for an in &r.computed_in {
            bit_row(ui, an);
        }
        let lines: Vec<String> = (0..FORMATS.len())
            .filter_map(|i| product_sentence(&r, i))
            .collect();
        let textbook = r.a == 10_000.0 && r.b == 10_000.0;
        let mut text = lines.join("\n");
        if textbook {
            text.push_str(
                "\nThis is the textbook example: 10k × 10k = 100M is far above FP16's largest \
                 value, about 65k.",
            );
        }
        note(ui, &text);

        section(ui, "Precision: the factors themselves");
        para(ui, &precision_sentence(&r));
        egui::Grid::new("l1_inputs").striped(true).show(ui, |ui| {
            ui.strong("typed decimal");
            for f in FORMATS {
                ui.strong(format!("stored in {}", f.name));
            }
            ui.end_row();
            for (x, row) in [(r.a, &r.a_in), (r.b, &r.b_in)] {
                ui.label(dec(x));
                for an in row {
                    ui.label(format!(
                        "{}  (error {})",
                        dec(an.stored()),
                        an.error().map_or("—".into(), |e| fmt_g(e, 4))
                    ));
                }
                ui.end_row();
            }
        });
        if let Some(s) = fp32_sentence(&r) {
            para(ui, &s);
        }
        para(
            ui,
            "Rule of thumb: FP16 trades range for precision, BF16 trades precision for range, FP32 \
             has plenty of both at twice the memory.",
        );
        widgets::try_button(ui, &QuantConfig::default())
    }
}

/// A decimal as the page writes it: exact shortest form, typographic minus.
fn dec(v: f64) -> String {
    widgets::minus(&format_exact(v))
}

/// "0.39 %" from a relative error.
fn percent(rel: Option<f64>) -> String {
    rel.map_or("—".into(), |r| format!("{} %", fmt_g(r * 100.0, 3)))
}

/// Which factor(s) a format rounds, e.g. "10000 becomes 9984" (None when both are exact).
fn factor_changes(r: &DataTypesResult, i: usize) -> Option<String> {
    let mut parts = Vec::new();
    for (x, row) in [(r.a, &r.a_in), (r.b, &r.b_in)] {
        if let Some(an) = row.get(i)
            && !an.exact()
        {
            let part = format!("{} becomes {}", dec(x), dec(an.stored()));
            if !parts.contains(&part) {
                parts.push(part);
            }
        }
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The sentence about the product computed in format `i`: exact, rounded (and why), overflow,
/// underflow or NaN, with the cause (a factor or the product).
fn product_sentence(r: &DataTypesResult, i: usize) -> Option<String> {
    let f = FORMATS.get(i)?;
    let c = r.computed_in.get(i)?;
    let (ai, bi) = (r.a_in.get(i)?, r.b_in.get(i)?);
    let max = dec(f.max_finite());
    let name = f.name;
    let s = if ai.overflowed() || bi.overflowed() {
        let which = if ai.overflowed() { r.a } else { r.b };
        format!(
            "{name}: the factor {} is already above {name}'s largest finite number {max}, so it \
             becomes ∞ before the multiplication{}.",
            dec(which),
            if c.class() == FloatClass::Nan {
                " and 0 × ∞ is not a number (NaN)"
            } else {
                ""
            }
        )
    } else if c.overflowed() {
        format!(
            "{name}: its largest finite number is {max}; the product of its factors rounds above \
             it, so it becomes ∞: the result is lost."
        )
    } else if ai.underflowed() || bi.underflowed() {
        let which = if ai.underflowed() { r.a } else { r.b };
        format!(
            "{name}: the factor {} is below half of {name}'s smallest positive number {}, so it \
             becomes 0 and so does the product.",
            dec(which),
            fmt_g(f.min_subnormal(), 4)
        )
    } else if c.underflowed() {
        format!(
            "{name}: the product is below half of its smallest positive number {}, so it becomes \
             0: the result is lost.",
            fmt_g(f.min_subnormal(), 4)
        )
    } else if c.exact() {
        let rounded = factor_changes(r, i);
        match rounded {
            None => format!("{name}: {} exactly.", dec(c.stored())),
            Some(ch) => format!(
                "{name}: {} exactly, although it rounds a factor first ({ch}).",
                dec(c.stored())
            ),
        }
    } else {
        let order = match factor_changes(r, i) {
            Some(ch) => format!("it first rounds each factor ({ch}), then the product"),
            None => "both factors are exact in it; only the product is rounded".to_string(),
        };
        let one_step = r.stored_in.get(i).map_or(String::new(), |d| {
            if d.stored() == c.stored() {
                " Rounding the exact product in one step gives the same number.".to_string()
            } else {
                format!(
                    " Rounding the exact product in one step would give {} instead.",
                    dec(d.stored())
                )
            }
        });
        let bits = if f.id == FloatFormat::BF16.id {
            " BF16 has FP32's eight exponent bits, so the product fits, but only 7 mantissa bits."
        } else {
            ""
        };
        format!(
            "{name}: {} ({} relative error): {order}.{bits}{one_step}",
            dec(c.stored()),
            percent(c.relative_error()),
        )
    };
    Some(s)
}

/// How close FP16 and BF16 hold the factors, compared factor by factor.
fn precision_sentence(r: &DataTypesResult) -> String {
    // |error|, with a lost value (overflow, underflow, NaN) counting as infinitely far.
    let dist = |an: &Rounded| -> f64 {
        if an.overflowed() || an.underflowed() {
            f64::INFINITY
        } else {
            an.error().map_or(f64::INFINITY, f64::abs)
        }
    };
    let mut fp16_closer: Vec<String> = Vec::new();
    let mut bf16_closer: Vec<String> = Vec::new();
    let mut equal: Vec<String> = Vec::new();
    let mut lost: Vec<String> = Vec::new();
    let mut all_exact = true;
    for (x, row) in [(r.a, &r.a_in), (r.b, &r.b_in)] {
        let (Some(h), Some(bf)) = (row.get(1), row.get(2)) else {
            continue;
        };
        all_exact &= h.exact() && bf.exact();
        let label = dec(x);
        let (dh, db) = (dist(h), dist(bf));
        if dh < db {
            if !fp16_closer.contains(&label) {
                fp16_closer.push(label);
            }
        } else if db < dh {
            let why = if h.overflowed() {
                "it is too large for FP16"
            } else if h.underflowed() {
                "it is too small for FP16"
            } else {
                "it lies in FP16's subnormal range, where FP16 has fewer significant bits"
            };
            let part = format!("BF16 holds {label} closer than FP16: {why}");
            if !bf16_closer.contains(&part) {
                bf16_closer.push(part);
            }
        } else if dh.is_infinite() {
            if !lost.contains(&label) {
                lost.push(label);
            }
        } else if !equal.contains(&label) {
            equal.push(label);
        }
    }
    let join = |v: &[String]| v.join(" and ");
    if all_exact {
        let mut both = vec![dec(r.a)];
        if r.b != r.a {
            both.push(dec(r.b));
        }
        return format!(
            "FP16 and BF16 both store {} exactly, so neither loses precision here.",
            join(&both)
        );
    }
    let mut parts = Vec::new();
    if !fp16_closer.is_empty() {
        parts.push(format!(
            "FP16 holds {} closer than BF16: its 10 mantissa bits against BF16's 7",
            join(&fp16_closer)
        ));
    }
    parts.extend(bf16_closer);
    if !equal.is_empty() {
        parts.push(format!("FP16 and BF16 hold {} equally close", join(&equal)));
    }
    if !lost.is_empty() {
        parts.push(format!("neither FP16 nor BF16 can hold {}", join(&lost)));
    }
    let mut s = parts.join("; ");
    s.push('.');
    s
}

/// What FP32 itself does to the typed factors: nothing, or a rounding error.
fn fp32_sentence(r: &DataTypesResult) -> Option<String> {
    let mut parts = Vec::new();
    for (x, row) in [(r.a, &r.a_in), (r.b, &r.b_in)] {
        let Some(an) = row.first() else { continue };
        if an.overflowed() {
            parts.push(format!(
                "{} is above FP32's largest finite number, so even FP32 makes it ∞.",
                dec(x)
            ));
        } else if !an.exact() {
            parts.push(format!(
                "{} has no exact binary form: even FP32 stores {} (error {}).",
                dec(x),
                dec(an.stored()),
                an.error().map_or("—".into(), |e| fmt_g(e, 4))
            ));
        }
    }
    parts.dedup();
    if parts.is_empty() {
        Some("Both factors are exact in FP32.".to_string())
    } else {
        Some(parts.join(" "))
    }
}

/// The table of format facts, including the memory for `params_billions` parameters.
fn facts_table(ui: &mut Ui, params_billions: f64) {
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
            let gb = params_billions * f64::from(bytes);
            ui.label(format!("{} GB", fmt_g(gb, 4)));
            ui.end_row();
        }
    });
}

/// One format's encoding as coloured sign / exponent / mantissa cells plus the decoded formula.
fn bit_row(ui: &mut Ui, r: &Rounded) {
    let an = &r.analysis;
    let f = an.format;
    let (s, e, m) = f.bit_strings(an.bits);
    ui.horizontal_wrapped(|ui| {
        ui.add_sized(
            [60.0, 20.0],
            egui::Label::new(RichText::new(f.name).strong()),
        );
        for (bits, field) in [(s, Field::Sign), (e, Field::Exponent), (m, Field::Mantissa)] {
            for ch in bits.chars() {
                bit_cell(ui, ch, field);
            }
            ui.add_space(4.0);
        }
        let class = if r.overflowed() {
            RichText::new("overflow: becomes ∞")
                .color(ui.visuals().error_fg_color)
                .strong()
        } else if r.underflowed() {
            RichText::new("underflow: becomes 0")
                .color(ui.visuals().error_fg_color)
                .strong()
        } else if an.class == FloatClass::Nan {
            RichText::new("not a number (0 × ∞)")
                .color(ui.visuals().error_fg_color)
                .strong()
        } else {
            RichText::new(an.class.name())
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

/// One bit as a small cell in its field's colour (the bit view's colours) holding 0 or 1.
fn bit_cell(ui: &mut Ui, ch: char, field: Field) {
    let size = Vec2::new(13.0, 20.0);
    let (rect, _) = ui.allocate_exact_size(size, egui::Sense::hover());
    let painter = ui.painter();
    painter.rect_filled(rect, 2.0, bit_fill(field, u32::from(ch == '1')));
    painter.rect_stroke(
        rect,
        2.0,
        Stroke::new(1.0, field_colour(field)),
        egui::StrokeKind::Inside,
    );
    painter.text(
        rect.center(),
        egui::Align2::CENTER_CENTER,
        ch,
        egui::FontId::monospace(11.0),
        egui::Color32::WHITE,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_product_overflows_fp16_not_bf16() {
        let mut l = DataTypesLesson::default();
        let r = l.result();
        assert_eq!(r.product, 1.0e8);
        assert!(r.product_exact);
        // FP32 holds 1e8 exactly (27 bits with 8 trailing zeros fit in 24).
        assert_eq!(r.computed_in[0].stored(), 1.0e8);
        // FP16: 10000 is exact (0x70E2) but 1e8 > 65520 rounds to Inf.
        assert_eq!(r.a_in[1].stored(), 10_000.0);
        assert!(r.computed_in[1].overflowed());
        // BF16: 10000 = 1.0011100|01 × 2^13 rounds to 1.0011100 × 2^13 = 9984; 9984² = 99680256
        // = 1.4853516 × 2^26 → 7 mantissa bits: 190.125/128 → 190/128 → 99614720.
        assert_eq!(r.a_in[2].stored(), 9_984.0);
        assert_eq!(r.computed_in[2].stored(), 99_614_720.0);
        // One rounding of 1e8 (f32 0x4CBEBC20; low half 0xBC20 > 0x8000 rounds up) → 0x4CBF.
        assert_eq!(r.stored_in[2].stored(), 100_139_008.0);
    }

    #[test]
    fn a_decimal_keeps_its_exact_value_and_fp32_error() {
        let r = data_types(100.3, 1.0);
        // f32(100.3) = 100.30000305175781 (0x42C8999A); the error is against the decimal.
        assert_eq!(r.a_in[0].stored(), f64::from(100.3f32));
        let e = r.a_in[0].error().expect("finite");
        assert!((e - 3.0517578125e-6).abs() < 1e-12, "{e}");
        assert!(!r.a_in[0].exact());
        assert!(
            fp32_sentence(&r).is_some_and(|s| s.contains("even FP32 stores 100.30000305175781"))
        );
        // 0.1 × 3 is exactly 0.3 as decimals, not the f64 product 0.30000000000000004.
        assert_eq!(decimal_product(0.1, 3.0), (0.3, true));
        assert!(!decimal_product(0.123_456_789, 0.987_654_321).1);
    }

    #[test]
    fn one_rounding_of_the_decimal_not_two() {
        // 1 + 2^-8 + 2^-30: f32 rounds it to 1 + 2^-8, exactly halfway between the BF16
        // neighbours 1 and 1 + 2^-7 (even: 1); the decimal itself is above the midpoint.
        let x = 1.0 + 2f64.powi(-8) + 2f64.powi(-30);
        assert_eq!(round_to(FloatFormat::BF16, x).stored(), 1.0 + 2f64.powi(-7));
        assert_eq!(
            round_to(FloatFormat::BF16, 1.0 + 2f64.powi(-8)).stored(),
            1.0
        );
        // FP16: 65519.999 rounds to f32 65520, FP16's overflow threshold, yet is below it.
        assert_eq!(round_to(FloatFormat::FP16, 65_519.999).stored(), 65_504.0);
        assert!(round_to(FloatFormat::FP16, 65_520.0).overflowed());
        assert!(round_to(FloatFormat::FP16, -65_520.001).overflowed());
        assert_eq!(round_to(FloatFormat::FP16, -65_519.999).stored(), -65_504.0);
        // Half the smallest FP16 subnormal (2^-25) ties to 0; a hair above it does not.
        assert_eq!(round_to(FloatFormat::FP16, 2f64.powi(-25)).stored(), 0.0);
        assert_eq!(
            round_to(FloatFormat::FP16, 2f64.powi(-25) * (1.0 + 1e-12)).stored(),
            2f64.powi(-24)
        );
    }

    #[test]
    fn sentences_follow_the_numbers() {
        // 300 × 1: every format holds 300 exactly, so nothing "becomes" anything.
        let r = data_types(300.0, 1.0);
        let bf = product_sentence(&r, 2).expect("sentence");
        assert_eq!(bf, "BF16: 300 exactly.");
        // 10000 × 10000: BF16 rounds a factor and the one-step rounding differs.
        let r = data_types(10_000.0, 10_000.0);
        let bf = product_sentence(&r, 2).expect("sentence");
        assert!(bf.contains("10000 becomes 9984"), "{bf}");
        assert!(bf.contains("would give 100139008 instead"), "{bf}");
        assert!(product_sentence(&r, 1).is_some_and(|s| s.contains("becomes ∞")));
        // 1e5 is too large for FP16 already as a factor: BF16 holds it closer.
        let r = data_types(1.0e5, 1.0);
        assert!(precision_sentence(&r).starts_with("BF16 holds 100000 closer"));
        let r = data_types(100.3, 3.0);
        assert!(precision_sentence(&r).starts_with("FP16 holds 100.3 closer"));
    }
}
