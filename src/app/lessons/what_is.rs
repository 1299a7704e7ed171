//! Lesson 3: what quantization is — the textbook example's toy types dt1 = {0, …, 5} and
//! dt2 = {0, 2, 4}, the vector [3, 1, 2, 3] → [4, 0, 2, 4], dequantization and the error it
//! leaves. (The seed text, ../shared/seed/quantization-101.txt, prints only the result.)
//!
//! The mapping rule is therefore ours to state: scale by max|x| onto [0, top of dt2], then round
//! *down* to the dt2 grid. That reproduces [4, 0, 2, 4]; rounding to the nearest grid point (the
//! core kernel) gives [4, 2, 2, 4] instead. Both are shown, and the sentences comparing them are
//! written from the codes and errors of the vector the learner typed.

use egui::{RichText, Ui};
use serde::{Deserialize, Serialize};

use super::widgets::{
    self, Memo, VectorField, bits_key, clamp_warning, fmt_g, fmt_list, formula, note, para, section,
};
use crate::quant::{QuantConfig, QuantParams, Scheme, dequantize, metrics, quantize};

/// The grid steps the lesson accepts.
pub const STEP_LIMIT: std::ops::RangeInclusive<i32> = 1..=8;

/// The largest dt2 values the lesson accepts.
pub const TOP_LIMIT: std::ops::RangeInclusive<i32> = 1..=16;

/// The textbook example's vector.
pub const TEXTBOOK_X: [f32; 4] = [3.0, 1.0, 2.0, 3.0];

/// Lesson 3's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WhatIsLesson {
    /// The vector to quantize (values of dt1).
    pub x: VectorField,
    /// The spacing of dt2's grid, as typed.
    pub step: i32,
    /// The largest value of dt2, as typed.
    pub top: i32,
    #[serde(skip)]
    memo: Memo<(Vec<u32>, u8, u8), WhatIsResult>,
}

impl Default for WhatIsLesson {
    fn default() -> Self {
        Self {
            x: VectorField::new(&[3.0, 1.0, 2.0, 3.0]),
            step: 2,
            top: 4,
            memo: Memo::default(),
        }
    }
}

/// Lesson 3's numbers.
#[derive(Debug, Clone)]
pub struct WhatIsResult {
    /// max |x|, the value mapped onto the top of dt2.
    pub max_abs: f32,
    /// x · top / max|x|: the values stretched onto dt2's range.
    pub stretched: Vec<f32>,
    /// Rounded down to the dt2 grid (the rule that reproduces the textbook example).
    pub floor_values: Vec<f32>,
    /// Rounded to the nearest dt2 grid point (the core kernel, ties to even).
    pub nearest_values: Vec<f32>,
    /// floor_values mapped back: q · max|x| / top.
    pub floor_dequant: Vec<f32>,
    /// nearest_values mapped back.
    pub nearest_dequant: Vec<f32>,
    /// Mean squared error of each rule (floor, nearest).
    pub mse: (f64, f64),
}

/// The toy mapping onto dt2 = {0, step, …, top} (`top` a multiple of `step`, as
/// [`WhatIsLesson::grid`] makes it). `floor` rounding is lesson-specific (no library rounds
/// down); the nearest rule is the core kernel with S = step · max|x| / top, z = 0 and codes
/// 0..=top/step.
pub fn toy_quantize(x: &[f32], step: u8, top: u8) -> WhatIsResult {
    let max_abs = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let (stepf, topf) = (f32::from(step.max(1)), f32::from(top.max(1)));
    let ratio = if max_abs > 0.0 { topf / max_abs } else { 0.0 };
    let stretched: Vec<f32> = x.iter().map(|&v| v * ratio).collect();
    let levels = top.max(1) / step.max(1);
    let floor_values: Vec<f32> = stretched
        .iter()
        .map(|&v| ((v / stepf).floor().clamp(0.0, f32::from(levels))) * stepf)
        .collect();
    let params = QuantParams {
        scale: if max_abs > 0.0 {
            stepf * max_abs / topf
        } else {
            1.0
        },
        zero_point: 0,
        qmin: 0,
        qmax: i32::from(levels),
        degenerate: max_abs == 0.0,
    };
    let cfg = QuantConfig {
        scheme: Scheme::Asymmetric,
        ..QuantConfig::default()
    };
    // Codes are 0..=levels (at most 255): exact in f32.
    let nearest_values: Vec<f32> = x
        .iter()
        .map(|&v| quantize(v, &params, &cfg) as f32 * stepf)
        .collect();
    let back = |vals: &[f32]| -> Vec<f32> {
        vals.iter()
            .map(|&v| {
                if max_abs > 0.0 {
                    v * max_abs / topf
                } else {
                    0.0
                }
            })
            .collect()
    };
    let floor_dequant = back(&floor_values);
    // Dequantizing a nearest code is the core's S · q.
    let nearest_dequant: Vec<f32> = nearest_values
        .iter()
        .map(|&v| dequantize((v / stepf) as i32, &params))
        .collect();
    let mse = (
        metrics::compare(x, &floor_dequant).mse,
        metrics::compare(x, &nearest_dequant).mse,
    );
    WhatIsResult {
        max_abs,
        stretched,
        floor_values,
        nearest_values,
        floor_dequant,
        nearest_dequant,
        mse,
    }
}

impl WhatIsLesson {
    /// dt2's step and largest value in use: each input limited to its range, the largest value
    /// at least one step and a multiple of the step (the page says when that changed it).
    pub fn grid(&self) -> (u8, u8) {
        let step = widgets::limit_int(self.step, &STEP_LIMIT);
        let top = widgets::limit_int(self.top, &TOP_LIMIT);
        let top = (top / step).max(1) * step;
        // Both are within 1..=128 after the limits: they fit in u8.
        (
            u8::try_from(step).unwrap_or(2),
            u8::try_from(top).unwrap_or(4),
        )
    }

    /// The computed values for the current inputs (cached).
    pub fn result(&mut self) -> std::sync::Arc<WhatIsResult> {
        let (step, top) = self.grid();
        let key = (bits_key(self.x.values()), step, top);
        let x = self.x.values().to_vec();
        self.memo
            .get(key, |&(_, step, top)| toy_quantize(&x, step, top))
    }

    /// Draws the lesson; returns the settings when "Try it on a real tensor" is pressed.
    pub fn ui(&mut self, ui: &mut Ui) -> Option<QuantConfig> {
        let (step, top) = self.grid();
        let grid: Vec<u32> = (0..=u32::from(top / step))
            .map(|k| k * u32::from(step))
            .collect();
        para(
            ui,
            &format!(
                "Quantizing means re-expressing numbers in a type with fewer possible values. \
                 Picture two toy types: dt1 can hold 0, 1, 2, 3, 4 and 5; dt2 can only hold {}. \
                 Moving a vector from dt1 to dt2 needs a rule: stretch the values so the largest \
                 one lands on dt2's largest value, then snap each one onto dt2's grid.",
                words_list(&grid)
            ),
        );
        section(ui, "Inputs");
        self.x.ui(ui, "Vector x (in dt1):");
        ui.horizontal_wrapped(|ui| {
            widgets::int_input(ui, "dt2 grid step:", &mut self.step, STEP_LIMIT);
            widgets::int_input(ui, "dt2 largest value:", &mut self.top, TOP_LIMIT);
        });
        let typed_top = widgets::limit_int(self.top, &TOP_LIMIT);
        if typed_top != i32::from(top) {
            let why = if typed_top < i32::from(step) {
                format!("{typed_top} is below one step ({step})")
            } else {
                format!("{typed_top} is not a multiple of the step {step}")
            };
            clamp_warning(ui, &format!("{why}: dt2's largest value is {top}"));
        }
        ui.label(format!("dt2 = {}", fmt_list(&grid)));
        if let Some(s) = outside_dt1(self.x.values()) {
            ui.label(RichText::new(s).color(ui.visuals().warn_fg_color));
        }

        let r = self.result();
        let x = self.x.values().to_vec();
        section(ui, "Step 1: stretch by max |x|");
        if r.max_abs > 0.0 {
            formula(
                ui,
                &format!(
                    "v = x · {top} / max|x| = x · {top} / {}",
                    fmt_g(f64::from(r.max_abs), 6)
                ),
            );
        } else {
            para(
                ui,
                "Every value is 0: there is nothing to stretch, and every code is 0.",
            );
        }
        ui.label(format!("v = {}", widgets::fmt_list_g(&r.stretched, 4)));

        section(ui, "Step 2: snap onto dt2");
        egui::Grid::new("l3_table").striped(true).show(ui, |ui| {
            for h in [
                "x",
                "v",
                "round down",
                "back: q·max|x|/top",
                "nearest",
                "back",
            ] {
                ui.strong(h);
            }
            ui.end_row();
            for i in 0..x.len() {
                let g = |v: &[f32]| v.get(i).map_or("—".into(), |&x| fmt_g(f64::from(x), 4));
                ui.label(g(&x));
                ui.label(g(&r.stretched));
                ui.label(RichText::new(g(&r.floor_values)).strong());
                ui.label(g(&r.floor_dequant));
                ui.label(RichText::new(g(&r.nearest_values)).strong());
                ui.label(g(&r.nearest_dequant));
                ui.end_row();
            }
        });
        formula(
            ui,
            &format!(
                "round down: q = {}    nearest: q = {}",
                fmt_list(&r.floor_values),
                fmt_list(&r.nearest_values)
            ),
        );
        ui.label(format!(
            "Mean squared error after mapping back: round down {}, nearest {}",
            fmt_g(r.mse.0, 4),
            fmt_g(r.mse.1, 4)
        ));
        let textbook = x == TEXTBOOK_X && (step, top) == (2, 4);
        note(ui, &rules_note(&x, &r, step, textbook));
        section(ui, "Step 3: dequantize and look at the error");
        formula(ui, "x\u{302} = q · max|x| / top");
        para(ui, &error_sentence(&x, &r));
        let levels = top / step;
        // levels + 1 codes need ceil(log2(levels + 1)) bits; clamp to the core's minimum of 2.
        let bits = (u32::from(levels) + 1)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(2, 8);
        let cfg = QuantConfig {
            bits: u8::try_from(bits).unwrap_or(2),
            scheme: Scheme::Asymmetric,
            ..QuantConfig::default()
        };
        widgets::try_button(ui, &cfg)
    }
}

/// "0, 2 and 4".
fn words_list(grid: &[u32]) -> String {
    match grid.split_last() {
        Some((last, rest)) if !rest.is_empty() => {
            let head: Vec<String> = rest.iter().map(u32::to_string).collect();
            format!("{} and {last}", head.join(", "))
        }
        Some((last, _)) => last.to_string(),
        None => String::new(),
    }
}

/// A warning when x holds values dt1 cannot (dt1 is the integers 0 … 5).
fn outside_dt1(x: &[f32]) -> Option<String> {
    let outside: Vec<f32> = x
        .iter()
        .copied()
        .filter(|v| !(v.fract() == 0.0 && (0.0..=5.0).contains(v)))
        .collect();
    if outside.is_empty() {
        return None;
    }
    let negative = if outside.iter().any(|&v| v < 0.0) {
        " Negative values stretch below dt2's 0 and are clamped to it."
    } else {
        ""
    };
    Some(format!(
        "x holds {} that dt1 cannot (dt1 is the integers 0 to 5); the rule below works on any \
         numbers.{negative}",
        widgets::fmt_list_g(&outside, 4)
    ))
}

/// The note comparing rounding down with rounding to nearest, written from this vector.
fn rules_note(x: &[f32], r: &WhatIsResult, step: u8, textbook: bool) -> String {
    let stepf = f32::from(step);
    let diffs: Vec<usize> = (0..x.len())
        .filter(|&i| r.floor_values.get(i) != r.nearest_values.get(i))
        .collect();
    let mut s = String::new();
    if textbook {
        s.push_str(
            "This is the textbook example: its answer [4, 0, 2, 4] is the round-down result. ",
        );
    }
    let (floor_mse, nearest_mse) = r.mse;
    match diffs.first() {
        None => s.push_str(&format!(
            "Here both rules give the same codes {} and the same error (MSE {}): no value is \
             nearer to the grid point above it than to the one below.",
            fmt_list(&r.floor_values),
            fmt_g(floor_mse, 4)
        )),
        Some(&i) => {
            let v = r.stretched.get(i).copied().unwrap_or(0.0);
            let down = r.floor_values.get(i).copied().unwrap_or(0.0);
            let near = r.nearest_values.get(i).copied().unwrap_or(0.0);
            let reason = if (v - down) * 2.0 == stepf {
                format!(
                    "{} is exactly halfway, and the tie goes to the even code {}",
                    fmt_g(f64::from(v), 4),
                    fmt_g(f64::from(near / stepf), 4)
                )
            } else {
                format!(
                    "{} is closer to {}",
                    fmt_g(f64::from(v), 4),
                    fmt_g(f64::from(near), 4)
                )
            };
            s.push_str(&format!(
                "Element {}: x = {} stretches to {}, which lies between the grid points {} and \
                 {}; rounding down picks {}, rounding to the nearest picks {} ({reason}). ",
                i + 1,
                fmt_g(f64::from(x.get(i).copied().unwrap_or(0.0)), 4),
                fmt_g(f64::from(v), 4),
                fmt_g(f64::from(down), 4),
                fmt_g(f64::from(down + stepf), 4),
                fmt_g(f64::from(down), 4),
                fmt_g(f64::from(near), 4),
            ));
            if diffs.len() > 1 {
                s.push_str(&format!(
                    "{} differ in all. ",
                    widgets::count(diffs.len(), "element", "elements")
                ));
            }
            let verdict = if nearest_mse < floor_mse {
                "a smaller error"
            } else if nearest_mse > floor_mse {
                "a larger error"
            } else {
                "the same error"
            };
            s.push_str(&format!(
                "Rounding to the nearest gives {} with {verdict} (MSE {} against {} for rounding \
                 down).",
                fmt_list(&r.nearest_values),
                fmt_g(nearest_mse, 4),
                fmt_g(floor_mse, 4)
            ));
        }
    }
    s.push_str(" Real quantizers round to nearest; the later lessons do too.");
    s
}

/// The sentence naming the element that rounding down hurts most, or saying none is hurt.
fn error_sentence(x: &[f32], r: &WhatIsResult) -> String {
    let worst = x
        .iter()
        .zip(&r.floor_dequant)
        .enumerate()
        .map(|(i, (&v, &back))| (i, v, back, (back - v).abs()))
        .max_by(|a, b| a.3.total_cmp(&b.3));
    match worst {
        Some((i, v, back, e)) if e > 0.0 => format!(
            "Mapping back multiplies by the original maximum and divides by dt2's top. With \
             rounding down, element {} comes back as {} instead of {}: that gap of {} is the \
             quantization error, information the smaller type could not keep.",
            i + 1,
            fmt_g(f64::from(back), 4),
            fmt_g(f64::from(v), 4),
            fmt_g(f64::from(e), 4)
        ),
        _ => "Mapping back multiplies by the original maximum and divides by dt2's top. With \
              rounding down every element comes back exactly: this vector fits dt2's grid, and \
              nothing is lost."
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_toy_reproduced_by_rounding_down() {
        // v = [3, 1, 2, 3] · 4/3 = [4, 1.33, 2.67, 4]; ⌊v/2⌋·2 = [4, 0, 2, 4].
        let r = toy_quantize(&[3.0, 1.0, 2.0, 3.0], 2, 4);
        assert_eq!(r.floor_values, vec![4.0, 0.0, 2.0, 4.0]);
        // Nearest: 1.33 → 2 and 2.67 → 2.
        assert_eq!(r.nearest_values, vec![4.0, 2.0, 2.0, 4.0]);
        // Back: q · 3/4 → [3, 0, 1.5, 3]: the second element lost its 1.
        assert_eq!(r.floor_dequant, vec![3.0, 0.0, 1.5, 3.0]);
        assert_eq!(r.nearest_dequant, vec![3.0, 1.5, 1.5, 3.0]);
        // MSE: floor (0 + 1 + 0.25 + 0)/4; nearest (0 + 0.25 + 0.25 + 0)/4.
        assert_eq!(r.mse, (0.3125, 0.125));
    }

    #[test]
    fn sentences_follow_the_codes() {
        let r = toy_quantize(&TEXTBOOK_X, 2, 4);
        let n = rules_note(&TEXTBOOK_X, &r, 2, true);
        assert!(n.contains("x = 1 stretches to 1.333"), "{n}");
        assert!(
            n.contains("with a smaller error (MSE 0.125 against 0.3125"),
            "{n}"
        );
        assert!(error_sentence(&TEXTBOOK_X, &r).contains("element 2 comes back as 0 instead of 1"));
        // [4, 4, 2, 2]: v = [4, 4, 2, 2] sits on the grid: same codes, no error.
        let x = [4.0, 4.0, 2.0, 2.0];
        let r = toy_quantize(&x, 2, 4);
        assert!(rules_note(&x, &r, 2, false).starts_with("Here both rules give the same codes"));
        assert!(error_sentence(&x, &r).contains("every element comes back exactly"));
        // [4, 3]: v = [4, 3]; 3 is halfway between 2 and 4, the tie goes to code 2 (4): the
        // codes differ, the error is the same.
        let x = [4.0, 3.0];
        let r = toy_quantize(&x, 2, 4);
        let n = rules_note(&x, &r, 2, false);
        assert!(n.contains("exactly halfway"), "{n}");
        assert!(n.contains("with the same error"), "{n}");
        assert_eq!(words_list(&[0, 2, 4]), "0, 2 and 4");
    }

    #[test]
    fn all_zero_vector_is_safe() {
        let r = toy_quantize(&[0.0, 0.0], 2, 4);
        assert_eq!(r.floor_values, vec![0.0, 0.0]);
        assert_eq!(r.nearest_dequant, vec![0.0, 0.0]);
    }
}
