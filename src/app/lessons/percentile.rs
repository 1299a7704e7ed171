//! Lesson 7: percentile calibration on the seed's x = [−0.2, 0.1, 0.3, 5.0], what an exact
//! (numpy-linear) percentile of four values really is, how much data the seed's idealised
//! P1 = −0.2, P99 = 0.3 needs, and the same calibration on a real tensor.

use std::sync::Arc;

use egui::{Color32, RichText, Ui};
use egui_plot::{Bar, BarChart, Legend, Plot, VLine};
use serde::{Deserialize, Serialize};

use super::super::derived::LessonReal;
use super::compute::{Quantized, quantize_range};
use super::widgets::{
    self, Memo, VectorField, bits_key, fmt_f32, fmt_g, fmt_list, formula, note, para, section,
};
use crate::quant::{Calibration, QuantConfig, Scheme, percentile_range};
use crate::stats;

/// Lesson 7's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PercentileLesson {
    /// The vector.
    pub x: VectorField,
    /// Upper percentile p (the lower one is 100 − p).
    pub p: f64,
    /// How many copies of the non-outlier values the percentile sees (1 = just the vector).
    pub copies: u8,
    /// Code width.
    pub bits: u8,
    #[serde(skip)]
    memo: Memo<(Vec<u32>, u64, u8, u8), PercentileResult>,
}

impl Default for PercentileLesson {
    fn default() -> Self {
        Self {
            x: VectorField::new(&[-0.2, 0.1, 0.3, 5.0]),
            p: 99.0,
            copies: 1,
            bits: 8,
            memo: Memo::default(),
        }
    }
}

/// Where numpy's linear method reads one percentile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interp {
    /// The virtual index (n − 1) · p / 100.
    pub index: f64,
    /// The sorted value at floor(index).
    pub below: f32,
    /// The sorted value after it (the same at the end).
    pub above: f32,
    /// The fraction index − floor(index).
    pub t: f64,
}

/// Lesson 7's numbers on the small vector.
#[derive(Debug, Clone)]
pub struct PercentileResult {
    /// Values the percentiles see (n = copies · (len − 1) + 1).
    pub n: usize,
    /// P(100 − p) from the core.
    pub p_lo: f64,
    /// P(p) from the core.
    pub p_hi: f64,
    /// How P(100 − p) was read.
    pub interp_lo: Interp,
    /// How P(p) was read.
    pub interp_hi: Interp,
    /// The vector quantized with the percentile range (clipped outside it).
    pub quantized: Quantized,
}

/// The vector the percentiles see: the value with the largest magnitude once, every other value
/// `copies` times (more ordinary data around one outlier).
pub fn padded(x: &[f32], copies: u8) -> Vec<f32> {
    let outlier = x
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .map(|(i, _)| i);
    let mut out = Vec::with_capacity(x.len() * usize::from(copies.max(1)));
    for (i, &v) in x.iter().enumerate() {
        let reps = if Some(i) == outlier { 1 } else { copies.max(1) };
        out.extend(std::iter::repeat_n(v, usize::from(reps)));
    }
    out
}

/// numpy's reading position for percentile `p` of the sorted values (display only; the value
/// itself comes from `crate::stats::percentiles`).
fn interp(sorted: &[f32], p: f64) -> Interp {
    // Lengths are tiny: exact in f64; the index is clamped into the slice.
    let index = (sorted.len().saturating_sub(1)) as f64 * (p.clamp(0.0, 100.0) / 100.0);
    let i = index.floor() as usize;
    let below = sorted.get(i).copied().unwrap_or(f32::NAN);
    let above = sorted.get(i + 1).copied().unwrap_or(below);
    Interp {
        index,
        below,
        above,
        t: index - index.floor(),
    }
}

impl PercentileLesson {
    /// The quantization settings.
    pub fn config(&self) -> QuantConfig {
        QuantConfig {
            bits: self.bits,
            scheme: Scheme::Asymmetric,
            calibration: Calibration::Percentile(self.p),
            ..QuantConfig::default()
        }
    }

    /// The computed values for the current inputs (cached).
    pub fn result(&mut self) -> Arc<PercentileResult> {
        let x = self.x.values().to_vec();
        let key = (bits_key(&x), self.p.to_bits(), self.copies, self.bits);
        let cfg = self.config();
        let (p, copies) = (self.p, self.copies);
        self.memo.get(key, |_| {
            let data = padded(&x, copies);
            let ps = stats::percentiles(&data, &[100.0 - p, p]).unwrap_or_default();
            let (p_lo, p_hi) = (
                ps.first().copied().unwrap_or(0.0),
                ps.get(1).copied().unwrap_or(0.0),
            );
            let mut sorted = data.clone();
            sorted.sort_by(f32::total_cmp);
            let (lo, hi) = percentile_range(&data, p, Scheme::Asymmetric).unwrap_or((0.0, 0.0));
            PercentileResult {
                n: data.len(),
                p_lo,
                p_hi,
                interp_lo: interp(&sorted, 100.0 - p),
                interp_hi: interp(&sorted, p),
                quantized: quantize_range(&x, lo, hi, &cfg),
            }
        })
    }

    /// The runs the real-tensor part needs: min-max, then the percentile, under this
    /// lesson's scheme and bits.
    pub fn real_configs(&self) -> Vec<QuantConfig> {
        let cfg = self.config();
        vec![
            QuantConfig {
                calibration: Calibration::MinMax,
                ..cfg.clone()
            },
            cfg,
        ]
    }

    /// Draws the lesson; returns the settings when "Try it on a real tensor" is pressed.
    pub fn ui(&mut self, ui: &mut Ui, real: Option<&LessonReal>) -> Option<QuantConfig> {
        para(
            ui,
            "One extreme value makes min-max spend almost all codes on empty space. Percentile \
             calibration ignores the most extreme sliver of the data: it clips to the values below \
             which 1 % and 99 % of the data lie, and accepts a large error on the few clipped values \
             in exchange for fine steps everywhere else.",
        );
        formula(
            ui,
            "S = (P_{p} − P_{100−p}) / (2^{b} − 1),   q = ⌊clip(x, P_{100−p}, P_{p}) / S⌉ + z",
        );
        section(ui, "Inputs");
        self.x.ui(ui, "Vector x:");
        ui.horizontal_wrapped(|ui| {
            ui.horizontal(|ui| {
                let l = ui.label("Upper percentile p:");
                ui.add(
                    egui::DragValue::new(&mut self.p)
                        .range(50.0..=100.0)
                        .speed(0.05),
                )
                .labelled_by(l.id);
            });
            widgets::drag_u8(
                ui,
                "Copies of the ordinary values:",
                &mut self.copies,
                1..=200,
            );
            widgets::drag_u8(ui, "Bits b:", &mut self.bits, 2..=8);
        });
        let r = self.result();
        section(ui, "Exact percentiles (numpy's linear method)");
        formula(
            ui,
            "i = (n − 1) · p / 100,   P = x_{(⌊i⌋)} + (i − ⌊i⌋) · (x_{(⌊i⌋+1)} − x_{(⌊i⌋)})",
        );
        formula(
            ui,
            &format!(
                "n = {} values;  x_{{(k)}} is the k-th smallest, counting from 0",
                r.n
            ),
        );
        for (name, pv, it) in [
            (
                format!("P_{{{}}}", fmt_g(100.0 - self.p, 4)),
                r.p_lo,
                r.interp_lo,
            ),
            (format!("P_{{{}}}", fmt_g(self.p, 4)), r.p_hi, r.interp_hi),
        ] {
            formula(
                ui,
                &format!(
                    "{name}:  i = {},  {} + {} · ({} − {}) = {}",
                    fmt_g(it.index, 5),
                    fmt_f32(it.below),
                    fmt_g(it.t, 4),
                    fmt_f32(it.above),
                    fmt_f32(it.below),
                    fmt_g(pv, 6)
                ),
            );
        }
        let q = &r.quantized;
        formula(
            ui,
            &format!(
                "S = ({} − ({})) / {} = {},   z = {}",
                fmt_g(q.range.1.max(0.0), 5),
                fmt_g(q.range.0.min(0.0), 5),
                q.params.qmax - q.params.qmin,
                fmt_f32(q.params.scale),
                q.params.zero_point
            ),
        );
        widgets::steps_table(ui, "l7_steps", q, true);
        formula(ui, &format!("q = {}", fmt_list(&q.codes)));
        ui.label(format!("{} value(s) clipped", q.clipped));
        widgets::metrics_line(ui, q);
        note(
            ui,
            "The seed says P1 ≈ −0.2 and P99 ≈ 0.3, so S = 0.5/255 ≈ 0.0020. With only four values \
             that is not what a percentile gives: the 99th percentile sits 99 % of the way from the \
             third to the fourth sorted value, right next to the outlier, so it barely clips anything. \
             The seed's numbers are what percentiles mean for a large sample where the outlier is one \
             value in over a hundred. Raise the copies to 34 (n = 103): P1 becomes −0.2, P99 becomes \
             0.3, and S = 0.5/255 exactly as the seed says.",
        );

        section(ui, "The same on a real tensor");
        if let Some(real) = widgets::real_header(ui, real) {
            real_table(ui, real);
            real_plot(ui, real);
        }
        widgets::try_button(ui, &self.config())
    }
}

/// Min-max versus percentile on the real data.
fn real_table(ui: &mut Ui, real: &LessonReal) {
    egui::Grid::new("l7_real").striped(true).show(ui, |ui| {
        for h in ["calibration", "clip range", "S", "clipped", "MSE", "SQNR"] {
            ui.strong(h);
        }
        ui.end_row();
        for (name, (_, run)) in ["min-max", "percentile"].iter().zip(&real.runs) {
            ui.label(*name);
            match (run.value.as_deref(), &run.error) {
                (Some(r), _) => {
                    let lo = r.clip_min.first().copied().unwrap_or(0.0);
                    let hi = r.clip_max.first().copied().unwrap_or(0.0);
                    ui.label(format!("[{}, {}]", fmt_g(lo, 4), fmt_g(hi, 4)));
                    ui.label(r.scales.first().map_or("—".into(), |&s| fmt_f32(s)));
                    ui.label(format!(
                        "{} %",
                        fmt_g(r.metrics.clipped_fraction * 100.0, 3)
                    ));
                    ui.label(fmt_g(r.metrics.mse, 4));
                    ui.label(format!("{} dB", fmt_g(r.metrics.sqnr_db, 4)));
                }
                (None, Some(e)) => {
                    ui.label(RichText::new(e).color(ui.visuals().error_fg_color));
                }
                (None, None) => {
                    ui.spinner();
                }
            }
            ui.end_row();
        }
    });
}

/// The tensor's histogram with the percentile clip range.
fn real_plot(ui: &mut Ui, real: &LessonReal) {
    let Some(h) = real.hist.value.as_deref() else {
        ui.spinner();
        return;
    };
    let bars: Vec<Bar> = h
        .counts
        .iter()
        .enumerate()
        .filter_map(|(i, &c)| {
            let (a, b) = (*h.edges.get(i)?, *h.edges.get(i + 1)?);
            // Counts are far below 2^53: exact in f64.
            Some(Bar::new((a + b) / 2.0, (1.0 + c as f64).log10()).width(b - a))
        })
        .collect();
    let pct: Option<(f64, f64)> = real.runs.get(1).and_then(|(_, run)| {
        let r = run.value.as_deref()?;
        Some((*r.clip_min.first()?, *r.clip_max.first()?))
    });
    crate::app::panels::labelled_axes(Plot::new("l7_hist"))
        .height(200.0)
        .legend(Legend::default())
        .allow_scroll(false)
        .x_axis_label("value")
        .y_axis_label("log10(1 + count)")
        .show(ui, |plot| {
            plot.bar_chart(
                BarChart::new("values", bars).color(Color32::from_rgb(0x4C, 0x9A, 0xD9)),
            );
            if let Some((lo, hi)) = pct {
                plot.vline(
                    VLine::new("percentile clip range", lo)
                        .color(Color32::from_rgb(0xE0, 0x8A, 0x20)),
                );
                plot.vline(
                    VLine::new("percentile clip range", hi)
                        .color(Color32::from_rgb(0xE0, 0x8A, 0x20)),
                );
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_percentiles_of_four_values() {
        let mut l = PercentileLesson::default();
        let r = l.result();
        // Sorted [−0.2, 0.1, 0.3, 5.0]; P1: i = 0.03 → −0.2 + 0.03 · 0.3 = −0.191;
        // P99: i = 2.97 → 5.0 − 0.03 · (5.0 − 0.3) = 4.859 (numpy, f64 of the f32 values).
        assert!((r.p_lo - -0.191).abs() < 1e-6, "{}", r.p_lo);
        assert!((r.p_hi - 4.859).abs() < 1e-6, "{}", r.p_hi);
        assert_eq!(r.n, 4);
    }

    #[test]
    fn enough_data_gives_the_seed_idealised_numbers() {
        let mut l = PercentileLesson {
            copies: 34,
            ..Default::default()
        };
        let r = l.result();
        // n = 34·3 + 1 = 103: P99 reads i = 100.98, between two copies of 0.3; P1 reads
        // i = 1.02, between two copies of −0.2.
        assert_eq!(r.n, 103);
        assert_eq!(r.p_hi, f64::from(0.3f32));
        assert_eq!(r.p_lo, f64::from(-0.2f32));
        assert!((f64::from(r.quantized.params.scale) - 0.5 / 255.0).abs() < 1e-9);
        // 5.0 is clipped to the top code.
        assert_eq!(r.quantized.codes.last(), Some(&255));
        assert_eq!(r.quantized.clipped, 1);
    }
}
