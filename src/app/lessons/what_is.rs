//! Lesson 3: what quantization is — the seed's toy types dt1 = {0, …, 5} and dt2 = {0, 2, 4},
//! the vector [3, 1, 2, 3] → [4, 0, 2, 4], dequantization and the error it leaves.
//!
//! The seed prints only the result, so the mapping rule is ours to state: scale by max|x| onto
//! [0, top of dt2], then round *down* to the dt2 grid. That reproduces [4, 0, 2, 4]; rounding to
//! the nearest grid point (the core kernel) gives [4, 2, 2, 4] instead. Both are shown.

use egui::{RichText, Ui};
use serde::{Deserialize, Serialize};

use super::widgets::{
    self, Memo, VectorField, bits_key, fmt_g, fmt_list, formula, note, para, section,
};
use crate::quant::{QuantConfig, QuantParams, Scheme, dequantize, metrics, quantize};

/// Lesson 3's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WhatIsLesson {
    /// The vector to quantize (values of dt1).
    pub x: VectorField,
    /// The spacing of dt2's grid.
    pub step: u8,
    /// The largest value of dt2.
    pub top: u8,
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
    /// Rounded down to the dt2 grid (the rule that reproduces the seed).
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

/// The toy mapping. `floor` rounding is lesson-specific (no library rounds down); the nearest
/// rule is the core kernel with S = step · max|x| / top, z = 0 and codes 0..=top/step.
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
    /// The computed values for the current inputs (cached).
    pub fn result(&mut self) -> std::sync::Arc<WhatIsResult> {
        let key = (bits_key(self.x.values()), self.step, self.top);
        let x = self.x.values().to_vec();
        self.memo
            .get(key, |&(_, step, top)| toy_quantize(&x, step, top))
    }

    /// Draws the lesson; returns the settings when "Try it on a real tensor" is pressed.
    pub fn ui(&mut self, ui: &mut Ui) -> Option<QuantConfig> {
        para(
            ui,
            "Quantizing means re-expressing numbers in a type with fewer possible values. Picture two \
             toy types: dt1 can hold 0, 1, 2, 3, 4 and 5; dt2 can only hold 0, 2 and 4. Moving a \
             vector from dt1 to dt2 needs a rule: stretch the values so the largest one lands on \
             dt2's largest value, then snap each one onto dt2's grid.",
        );
        section(ui, "Inputs");
        self.x.ui(ui, "Vector x (in dt1):");
        ui.horizontal_wrapped(|ui| {
            widgets::drag_u8(ui, "dt2 grid step:", &mut self.step, 1..=8);
            widgets::drag_u8(ui, "dt2 largest value:", &mut self.top, 1..=16);
        });
        if self.top < self.step {
            self.top = self.step;
        }
        let grid: Vec<u32> = (0..=u32::from(self.top / self.step))
            .map(|k| k * u32::from(self.step))
            .collect();
        ui.label(format!("dt2 = {}", fmt_list(&grid)));

        let r = self.result();
        section(ui, "Step 1: stretch by max |x|");
        formula(
            ui,
            &format!(
                "v = x · {} / max|x| = x · {} / {}",
                self.top,
                self.top,
                fmt_g(f64::from(r.max_abs), 6)
            ),
        );
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
            for i in 0..self.x.values().len() {
                let g = |v: &Vec<f32>| v.get(i).map_or("—".into(), |&x| fmt_g(f64::from(x), 4));
                ui.label(g(&self.x.values().to_vec()));
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
        note(
            ui,
            "The seed's answer [4, 0, 2, 4] comes from rounding down: 1 stretches to 1.33, which lies \
             between the grid points 0 and 2, and rounding down picks 0. Rounding to the nearest grid \
             point would pick 2 (1.33 is closer to 2) and gives [4, 2, 2, 4] with a smaller error. \
             Real quantizers round to nearest; the later lessons do too.",
        );
        section(ui, "Step 3: dequantize and look at the error");
        formula(ui, "x\u{302} = q · max|x| / top");
        para(
            ui,
            "Mapping back multiplies by the original maximum and divides by dt2's top. With the seed's \
             rule the second element comes back as 0 instead of 1: that gap is the quantization error, \
             information the smaller type could not keep.",
        );
        let levels = self.top / self.step;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_toy_reproduced_by_rounding_down() {
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
    fn all_zero_vector_is_safe() {
        let r = toy_quantize(&[0.0, 0.0], 2, 4);
        assert_eq!(r.floor_values, vec![0.0, 0.0]);
        assert_eq!(r.nearest_dequant, vec![0.0, 0.0]);
    }
}
