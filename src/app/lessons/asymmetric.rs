//! Lesson 10: asymmetric quantization and the zero point on the textbook example's
//! [−2.5, −1, 0, 1, 3.5]: S = 6/255 ≈ 0.02353, z = 106, q = [0, 63, 106, 149, 255] with the
//! textbook's rounding (ties away from zero) and [0, 64, 106, 148, 255] under PyTorch / ONNX
//! Runtime (−42.5 and 42.5 are exact ties) — with the same error. Then the ruler picture: data in
//! +3 … +10 under symmetric and asymmetric codes. Every sentence is written from the numbers of
//! the vector and range the learner typed.

use egui::{Color32, Pos2, Rect, RichText, Sense, Stroke, Ui, Vec2, pos2};
use serde::{Deserialize, Serialize};

use super::compute::{Quantized, quantize_minmax};
use super::derivation::{derive, general_formula, rounding_words};
use super::widgets::{
    self, Memo, VectorField, bits_key, clamp_warning, count, fmt_f32, fmt_g, fmt_list, formula,
    note, para, section,
};
use crate::quant::{
    Calibration, Preset, QuantConfig, QuantParams, Rounding, Scheme, params_from_range, quantize,
};

/// The data ranges the ruler accepts.
pub const RULER_LIMIT: std::ops::RangeInclusive<f64> = -100.0..=100.0;

/// The ruler's code widths (few, so every tick is visible).
pub const RULER_BITS: std::ops::RangeInclusive<i32> = 2..=6;

/// Lesson 10's inputs, as typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AsymmetricLesson {
    /// The vector.
    pub x: VectorField,
    /// Code width (limited to 2..=8).
    pub bits: i32,
    /// The library convention compared with the textbook example's rounding.
    pub preset: Preset,
    /// Lower end of the ruler's data range.
    pub ruler_lo: f64,
    /// Upper end of the ruler's data range.
    pub ruler_hi: f64,
    /// Code width of the ruler (limited to 2..=6).
    pub ruler_bits: i32,
    #[serde(skip)]
    memo: Memo<(Vec<u32>, u8, Preset), AsymmetricResult>,
    #[serde(skip)]
    ruler_memo: Memo<(u32, u32, u8), Rulers>,
}

impl Default for AsymmetricLesson {
    fn default() -> Self {
        Self {
            x: VectorField::new(&[-2.5, -1.0, 0.0, 1.0, 3.5]),
            bits: 8,
            preset: Preset::OnnxRuntime,
            ruler_lo: 3.0,
            ruler_hi: 10.0,
            ruler_bits: 4,
            memo: Memo::default(),
            ruler_memo: Memo::default(),
        }
    }
}

/// Lesson 10's numbers: the same vector under the textbook rounding and under a library preset.
#[derive(Debug, Clone)]
pub struct AsymmetricResult {
    /// Textbook preset (round half away from zero, the hand arithmetic).
    pub textbook: Quantized,
    /// The chosen library preset.
    pub library: Quantized,
}

/// One ruler: the real value of every code and which codes the data range uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Ruler {
    /// S, z and the code range (for the idealised ruler z is not defined: see `zero_code`).
    pub params: QuantParams,
    /// The real value of each code qmin..=qmax.
    pub grid: Vec<f32>,
    /// The first and last code the data range [lo, hi] maps to.
    pub used: (i32, i32),
    /// Where the real value 0 sits on the code axis: z for the library rulers; for the
    /// idealised one qmin − lo / S, an integer only when 0 happens to be a grid point.
    pub zero_code: f64,
}

impl Ruler {
    /// How many codes the data range uses.
    pub fn used_count(&self) -> i32 {
        self.used.1 - self.used.0 + 1
    }

    /// How many codes exist.
    pub fn code_count(&self) -> i32 {
        self.params.qmax - self.params.qmin + 1
    }

    /// The ruler's zero point in words: "z = 3", or why there is none.
    pub fn zero_words(&self) -> String {
        let z = self.zero_code;
        if z.fract() == 0.0 && z >= f64::from(self.params.qmin) && z <= f64::from(self.params.qmax)
        {
            format!("z = {}", fmt_g(z, 6))
        } else {
            format!(
                "no integer z: real 0 would sit at code {} (0 is not exact)",
                fmt_g(z, 4)
            )
        }
    }
}

/// The three rulers of the picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Rulers {
    /// Symmetric: the range is [−max|x|, max|x|].
    pub symmetric: Ruler,
    /// Asymmetric as libraries do it: the range is extended to include 0.
    pub asymmetric: Ruler,
    /// The idealised ruler that starts exactly at the data minimum (0 not representable).
    pub shifted: Ruler,
}

/// A ruler from core parameters: codes' real values by dequantization, used codes by quantizing
/// the ends of the data range (the kernel is monotone).
fn ruler(params: QuantParams, lo: f32, hi: f32, cfg: &QuantConfig) -> Ruler {
    Ruler {
        grid: (params.qmin..=params.qmax)
            .map(|q| params.real_from_code(q))
            .collect(),
        used: (quantize(lo, &params, cfg), quantize(hi, &params, cfg)),
        zero_code: f64::from(params.zero_point),
        params,
    }
}

/// Builds the three rulers for data in [lo, hi] with `bits`-bit codes.
pub fn rulers(lo: f32, hi: f32, bits: u8) -> Rulers {
    let (lo, hi) = (lo.min(hi), lo.max(hi));
    let sym_cfg = QuantConfig {
        bits,
        scheme: Scheme::Symmetric,
        ..QuantConfig::default()
    };
    let asym_cfg = QuantConfig {
        scheme: Scheme::Asymmetric,
        ..sym_cfg.clone()
    };
    let sym = params_from_range(f64::from(lo), f64::from(hi), &sym_cfg);
    let asym = params_from_range(f64::from(lo), f64::from(hi), &asym_cfg);
    // The idealised ruler maps lo to code 0 and hi to the top code; its grid is lo + k·S. This
    // is the textbook example's picture, not a library scheme (0 would fall between two codes).
    let (qmin, qmax) = asym_cfg.code_range();
    // Code counts are at most 2^16: exact in f32.
    let step = if hi > lo {
        (hi - lo) / (qmax - qmin) as f32
    } else {
        1.0
    };
    let grid: Vec<f32> = (qmin..=qmax).map(|k| lo + step * k as f32).collect();
    let shifted = Ruler {
        params: QuantParams {
            scale: step,
            zero_point: 0,
            qmin,
            qmax,
            degenerate: hi <= lo,
        },
        grid,
        used: (qmin, qmax),
        zero_code: f64::from(qmin) - f64::from(lo) / f64::from(step),
    };
    Rulers {
        symmetric: ruler(sym, lo, hi, &sym_cfg),
        asymmetric: ruler(asym, lo, hi, &asym_cfg),
        shifted,
    }
}

impl AsymmetricLesson {
    /// The settings of the library preset.
    pub fn config(&self) -> QuantConfig {
        QuantConfig {
            bits: widgets::bits_of(self.bits),
            scheme: Scheme::Asymmetric,
            preset: self.preset,
            calibration: Calibration::MinMax,
            ..QuantConfig::default()
        }
    }

    /// The settings of the textbook example's hand arithmetic.
    pub fn textbook_config(&self) -> QuantConfig {
        QuantConfig {
            preset: Preset::Textbook,
            ..self.config()
        }
    }

    /// The computed values for the current inputs (cached).
    pub fn result(&mut self) -> std::sync::Arc<AsymmetricResult> {
        let x = self.x.values().to_vec();
        let cfg = self.config();
        let textbook_cfg = self.textbook_config();
        self.memo.get((bits_key(&x), cfg.bits, self.preset), |_| {
            AsymmetricResult {
                textbook: quantize_minmax(&x, &textbook_cfg),
                library: quantize_minmax(&x, &cfg),
            }
        })
    }

    /// The ruler's data range in use (limited, sorted) and code width.
    pub fn ruler_inputs(&self) -> (f32, f32, u8) {
        let a = widgets::limit_real(self.ruler_lo, &RULER_LIMIT);
        let b = widgets::limit_real(self.ruler_hi, &RULER_LIMIT);
        let bits = widgets::limit_int(self.ruler_bits, &RULER_BITS);
        // Within ±100 after the limit: the f32 rounding is all that changes.
        (
            a.min(b) as f32,
            a.max(b) as f32,
            u8::try_from(bits).unwrap_or(4),
        )
    }

    /// The ruler picture's numbers (cached).
    pub fn rulers(&mut self) -> std::sync::Arc<Rulers> {
        let (lo, hi, bits) = self.ruler_inputs();
        self.ruler_memo
            .get((lo.to_bits(), hi.to_bits(), bits), |&(lo, hi, b)| {
                rulers(f32::from_bits(lo), f32::from_bits(hi), b)
            })
    }

    /// Draws the lesson; returns the settings when "Try it on a real tensor" is pressed.
    pub fn ui(&mut self, ui: &mut Ui) -> Option<QuantConfig> {
        para(
            ui,
            "Asymmetric quantization maps the smallest value to the lowest code and the largest to the \
             highest, using unsigned codes (libraries first extend the range to include 0). Because \
             the real 0 then no longer sits at code 0, a zero point z records which code stands for \
             0. It is rounded to an integer so that 0 (padding, ReLU outputs) is represented exactly.",
        );
        let cfg = self.config();
        formula(
            ui,
            &format!("{},   x\u{302} = S · (q − z)", general_formula(&cfg)),
        );
        section(ui, "Inputs");
        self.x.ui(ui, "Vector x:");
        widgets::int_input(ui, "Bits b:", &mut self.bits, widgets::BITS);
        widgets::preset_ui(ui, "l10_preset", &mut self.preset, false);
        let cfg = self.config();
        let textbook_cfg = self.textbook_config();
        let r = self.result();
        let (t, l) = (&r.textbook, &r.library);
        section(ui, "Scale and zero point");
        let same_params = t.params == l.params;
        for (name, c, q) in [("textbook", &textbook_cfg, t), (cfg.preset.name(), &cfg, l)] {
            let d = derive(c, q.range, &q.params);
            if !same_params {
                ui.label(RichText::new(format!("{name}:")).strong());
            }
            if let Some(remark) = &d.remark {
                para(ui, remark);
            }
            for line in &d.lines {
                formula(ui, line);
            }
            if same_params {
                para(
                    ui,
                    &format!(
                        "The textbook arithmetic and {} give the same S and z here.",
                        cfg.preset.name()
                    ),
                );
                break;
            }
        }
        section(ui, "The textbook example's rounding: ties away from zero");
        widgets::steps_table(ui, "l10_textbook", t, true);
        formula(ui, &format!("q = {}", fmt_list(&t.codes)));
        widgets::metrics_line(ui, t);
        let rule = cfg.convention().rounding;
        section(
            ui,
            &format!("{}: {}", cfg.preset.name(), rounding_words(rule)),
        );
        if rule == Rounding::HalfAway {
            ui.label(
                "This preset also rounds ties away from zero; pick onnxruntime or pytorch to compare.",
            );
        }
        widgets::steps_table(ui, "l10_library", l, true);
        formula(ui, &format!("q = {}", fmt_list(&l.codes)));
        widgets::metrics_line(ui, l);
        note(ui, &ties_note(cfg.preset, rule, t, l));

        section(ui, "The ruler: why a zero point pays off");
        ui.horizontal_wrapped(|ui| {
            widgets::real_input(ui, "Data from:", &mut self.ruler_lo, RULER_LIMIT, 0.1);
            widgets::real_input(ui, "Data to:", &mut self.ruler_hi, RULER_LIMIT, 0.1);
            widgets::int_input(ui, "Ruler bits:", &mut self.ruler_bits, RULER_BITS);
        });
        let (lo, hi, _) = self.ruler_inputs();
        if widgets::limit_real(self.ruler_lo, &RULER_LIMIT)
            > widgets::limit_real(self.ruler_hi, &RULER_LIMIT)
        {
            clamp_warning(
                ui,
                &format!(
                    "\"Data from\" is above \"Data to\": the ruler uses the range [{}, {}].",
                    fmt_g(f64::from(lo), 6),
                    fmt_g(f64::from(hi), 6)
                ),
            );
        }
        let rs = self.rulers();
        para(ui, &ruler_sentence(&rs, lo, hi));
        draw_rulers(ui, &rs, lo, hi);
        widgets::try_button(ui, &cfg)
    }
}

/// The note comparing the two tie rules, written from the codes, ties and errors shown.
pub fn ties_note(preset: Preset, rule: Rounding, t: &Quantized, l: &Quantized) -> String {
    let ties: Vec<(f32, f32)> = t
        .steps
        .iter()
        .filter(|s| s.tie)
        .map(|s| (s.x, s.x_over_s))
        .collect();
    let name = preset.name();
    if t.params != l.params {
        return format!(
            "The two conventions compute different parameters here (S = {} and z = {} for the \
             textbook arithmetic, S = {} and z = {} for {name}), so their codes {} for that \
             reason, not only because of ties.",
            fmt_f32(t.params.scale),
            t.params.zero_point,
            fmt_f32(l.params.scale),
            l.params.zero_point,
            if t.codes == l.codes {
                "agree"
            } else {
                "differ"
            }
        );
    }
    if ties.is_empty() {
        return format!(
            "No value lands exactly halfway between two codes, so the textbook rounding and \
             {name} give the same codes and the same error."
        );
    }
    let list: Vec<String> = ties
        .iter()
        .map(|(x, v)| {
            format!(
                "x / S = {} for x = {}",
                fmt_g(f64::from(*v), 6),
                fmt_f32(*x)
            )
        })
        .collect();
    let lead = format!(
        "{} exactly halfway between two codes ({}).",
        count(ties.len(), "value lands", "values land"),
        list.join(", ")
    );
    if t.codes == l.codes {
        return format!(
            "{lead} {name} also rounds {}, so the codes agree.",
            rounding_words(rule)
        );
    }
    let examples: Vec<String> = ties
        .iter()
        .map(|&(_, v)| {
            let v = f64::from(v);
            let away = crate::quant::rounding::round_f64(v, Rounding::HalfAway);
            let theirs = crate::quant::rounding::round_f64(v, rule);
            format!(
                "{} becomes {} against {}",
                fmt_g(v, 6),
                fmt_g(away, 6),
                fmt_g(theirs, 6)
            )
        })
        .collect();
    let (mt, ml) = (t.metrics.mse, l.metrics.mse);
    let rel = if mt == ml {
        0.0
    } else {
        ((mt - ml) / mt.max(ml)).abs()
    };
    let mse = if rel == 0.0 {
        format!("yet the MSE is the same ({})", fmt_g(mt, 6))
    } else if rel < 1e-4 {
        format!(
            "yet the MSE is the same up to float32 rounding of S·(q − z) ({} against {})",
            fmt_g(mt, 6),
            fmt_g(ml, 6)
        )
    } else {
        format!(
            "and the MSE differs ({} against {})",
            fmt_g(mt, 6),
            fmt_g(ml, 6)
        )
    };
    format!(
        "{lead} The textbook example rounds halves away from zero, {name} rounds them {} \
         ({}). The codes differ by one there, {mse}: each tie is exactly half a step from both \
         neighbours, so either choice costs the same. Tie rules are a convention, not an accuracy \
         difference — but a bit-exact reimplementation must match it.",
        rounding_words(rule),
        examples.join("; ")
    )
}

/// The paragraph above the rulers, from their counts.
pub fn ruler_sentence(rs: &Rulers, lo: f32, hi: f32) -> String {
    let (s, a, i) = (&rs.symmetric, &rs.asymmetric, &rs.shifted);
    if hi <= lo {
        return format!(
            "The data is the single value {}: there is no range to spread codes over.",
            fmt_g(f64::from(lo), 6)
        );
    }
    let m = lo.abs().max(hi.abs());
    let mut out = format!(
        "The data ranges from {} to {}. A symmetric ruler must reach from −{} to +{}, so the data \
         uses {} of its {} codes.",
        fmt_g(f64::from(lo), 6),
        fmt_g(f64::from(hi), 6),
        fmt_g(f64::from(m), 6),
        fmt_g(f64::from(m), 6),
        s.used_count(),
        s.code_count()
    );
    if lo <= 0.0 && hi >= 0.0 {
        out.push_str(&format!(
            " The range already includes 0, so the asymmetric ruler of the libraries starts where \
             the data starts, as the idealised one does, and the data uses {} of its {} codes.",
            a.used_count(),
            a.code_count()
        ));
    } else {
        out.push_str(&format!(
            " An asymmetric ruler starts where the data starts — almost: libraries still include 0 \
             in the range so that 0 stays exact, and the data uses {} of its {} codes. The \
             textbook example's idealised ruler starts exactly at the data minimum and uses all \
             {}, at the price of an exact 0.",
            a.used_count(),
            a.code_count(),
            i.code_count()
        ));
    }
    out
}

/// Draws the three rulers on one real axis, shading the data range.
fn draw_rulers(ui: &mut Ui, rs: &Rulers, lo: f32, hi: f32) {
    let rows: [(&str, &Ruler); 3] = [
        ("symmetric", &rs.symmetric),
        ("asymmetric (library: includes 0)", &rs.asymmetric),
        ("asymmetric (textbook ideal: starts at min)", &rs.shifted),
    ];
    let all = rows.iter().flat_map(|(_, r)| r.grid.iter().copied());
    let (mut amin, mut amax) = all.fold((lo, hi), |(a, b), v| (a.min(v), b.max(v)));
    if amax <= amin {
        amax = amin + 1.0;
    }
    let pad = (amax - amin) * 0.04;
    amin -= pad;
    amax += pad;
    let visuals = ui.visuals().clone();
    let used_color = if visuals.dark_mode {
        Color32::from_rgb(0x6C, 0xC0, 0xFF)
    } else {
        Color32::from_rgb(0x10, 0x5C, 0xB0)
    };
    let wasted_color = visuals.weak_text_color();
    let band = Color32::from_rgba_unmultiplied(0x5F, 0xB0, 0x5F, 60);
    let tick_font = egui::FontId::proportional(12.0);
    for (name, r) in rows {
        ui.label(
            RichText::new(format!(
                "{name}: S = {}, {}, data uses {} of {} codes",
                fmt_f32(r.params.scale),
                r.zero_words(),
                r.used_count(),
                r.code_count()
            ))
            .strong(),
        );
        let width = ui.available_width().clamp(200.0, 900.0);
        let (rect, _) = ui.allocate_exact_size(Vec2::new(width, 48.0), Sense::hover());
        let painter = ui.painter_at(rect.expand(2.0));
        let x_of = |v: f32| rect.left() + (v - amin) / (amax - amin) * rect.width();
        let base = rect.top() + 22.0;
        painter.rect_filled(
            Rect::from_min_max(pos2(x_of(lo), rect.top() + 4.0), pos2(x_of(hi), base + 2.0)),
            2.0,
            band,
        );
        painter.line_segment(
            [pos2(rect.left(), base), pos2(rect.right(), base)],
            Stroke::new(1.0, visuals.text_color()),
        );
        for (i, &g) in r.grid.iter().enumerate() {
            // i < 2^16: exact in i32.
            let code = r.params.qmin + i as i32;
            let used = code >= r.used.0 && code <= r.used.1;
            let (color, h, w) = if used {
                (used_color, 14.0, 2.0)
            } else {
                (wasted_color, 8.0, 1.0)
            };
            let x = x_of(g);
            painter.line_segment([pos2(x, base - h), pos2(x, base)], Stroke::new(w, color));
        }
        let mut marks = vec![amin + pad, 0.0, lo, hi, amax - pad];
        marks.sort_by(f32::total_cmp);
        marks.dedup();
        for v in marks {
            if v >= amin && v <= amax {
                painter.text(
                    Pos2::new(x_of(v), base + 4.0),
                    egui::Align2::CENTER_TOP,
                    fmt_g(f64::from(v), 3),
                    tick_font.clone(),
                    visuals.text_color(),
                );
            }
        }
    }
    ui.label(
        RichText::new(
            "Long blue ticks: codes the data uses · short grey ticks: wasted codes · green band: \
             the data range",
        )
        .weak(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_asymmetric_codes_under_both_tie_rules() {
        let mut l = AsymmetricLesson::default();
        let r = l.result();
        // S = 6/255 = 0.023529412, z = round(2.5/S = 106.25) = 106.
        assert_eq!(r.textbook.params.scale, 6.0f32 / 255.0);
        assert_eq!(r.textbook.params.zero_point, 106);
        assert_eq!(r.library.params.zero_point, 106);
        // ±1/S = ±42.5 exactly: RHAZ → ∓43 (63, 149); RNE → ∓42 (64, 148).
        assert_eq!(r.textbook.codes, vec![0, 63, 106, 149, 255]);
        assert_eq!(r.library.codes, vec![0, 64, 106, 148, 255]);
        // Same error: MSE 6.92042e-5 and SQNR 47.73 dB (NUMERICS.md §2). In exact arithmetic
        // the errors are (1.5, 3, 0, 3, 1.5)/255 under both rules, so MSE = 22.5/65025/5 =
        // 6.920415e-5; the f32 S and x̂ = S·(q − z) in f32 (as the libraries compute) move it by
        // about 1e-5 relative (6.92048e-5).
        for q in [&r.textbook, &r.library] {
            assert!(
                (q.metrics.mse / 6.920415e-5 - 1.0).abs() < 2e-5,
                "{}",
                q.metrics.mse
            );
            assert!(
                (q.metrics.sqnr_db - 47.73).abs() < 0.005,
                "{}",
                q.metrics.sqnr_db
            );
        }
        assert!((r.textbook.metrics.mse / r.library.metrics.mse - 1.0).abs() < 2e-5);
        let n = ties_note(l.preset, Rounding::HalfEven, &r.textbook, &r.library);
        assert!(n.starts_with("2 values land exactly halfway between two codes (x / S = −42.5 for x = −1, x / S = 42.5 for x = 1)."), "{n}");
        assert!(
            n.contains("−42.5 becomes −43 against −42; 42.5 becomes 43 against 42"),
            "{n}"
        );
        assert!(
            n.contains("yet the MSE is the same up to float32 rounding"),
            "{n}"
        );
        // No tie: −2.5 … 5.5 gives S = 8/255 and no x/S ends in .5.
        l.x.set_text("-2.5, -1, 0, 1, 5.5");
        let r = l.result();
        let n = ties_note(l.preset, Rounding::HalfEven, &r.textbook, &r.library);
        assert!(n.starts_with("No value lands exactly halfway"), "{n}");
    }

    #[test]
    fn ruler_counts_used_codes() {
        let r = rulers(3.0, 10.0, 4);
        // Symmetric 4-bit (ONNX Runtime: −8..=7): S = 20/15; 3/S = 2.25 → 2, 10/S = 7.5 → 7.
        assert_eq!((r.symmetric.used, r.symmetric.code_count()), ((2, 7), 16));
        // Asymmetric on [0, 10]: S = 10/15, z = 0; 3/S = 4.5 (tie, even → 4), 10/S = 15.
        assert_eq!(
            (r.asymmetric.used, r.asymmetric.code_count()),
            ((4, 15), 16)
        );
        assert_eq!(r.shifted.used_count(), 16);
        assert_eq!(r.shifted.grid.first(), Some(&3.0));
        assert!(
            r.shifted
                .grid
                .last()
                .is_some_and(|&g| (g - 10.0).abs() < 1e-5)
        );
        // The ideal ruler's code 0 is 3, so real 0 sits at code −3 / (7/15) = −6.43: no z.
        assert!(
            r.shifted
                .zero_words()
                .starts_with("no integer z: real 0 would sit at code −6.429")
        );
        assert_eq!(r.asymmetric.zero_words(), "z = 0");
        // From −3 to 12 at 4 bits: S = 1 and 0 is code 3 on both asymmetric rulers.
        let r = rulers(-3.0, 12.0, 4);
        assert_eq!(r.shifted.zero_words(), "z = 3");
        assert_eq!(r.asymmetric.zero_words(), "z = 3");
        let s = ruler_sentence(&r, -3.0, 12.0);
        assert!(s.contains("already includes 0"), "{s}");
    }
}
