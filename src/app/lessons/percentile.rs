//! Lesson 7: percentile calibration on the textbook example's x = [−0.2, 0.1, 0.3, 5.0], what
//! an exact (numpy-linear) percentile of four values really is, how much data the textbook's
//! idealised P1 = −0.2, P99 = 0.3 needs, and the same calibration on the whole selected tensor
//! (through the app's jobs, the same runs as the main views). Every sentence is written from the
//! numbers shown: whether the clip range leaves the outlier out, how many copies it takes, and
//! whether percentile beats min-max on the real tensor.

use std::sync::Arc;

use egui::{Color32, RichText, Ui};
use egui_plot::{Bar, BarChart, Legend, Plot, VLine};
use serde::{Deserialize, Serialize};

use super::super::derived::LessonReal;
use super::compute::{Quantized, quantize_range};
use super::derivation::derive;
use super::widgets::{
    self, Memo, VectorField, bits_key, count, fmt_f32, fmt_g, fmt_list, formula, note, para,
    section,
};
use crate::quant::{Calibration, QuantConfig, QuantResult, Scheme, percentile_range};
use crate::stats;

/// The upper percentiles the lesson accepts (the lower one is 100 − p).
pub const P_LIMIT: std::ops::RangeInclusive<f64> = 50.0..=100.0;

/// The copy counts the lesson accepts.
pub const COPIES_LIMIT: std::ops::RangeInclusive<i32> = 1..=200;

/// The textbook example's vector.
pub const TEXTBOOK_X: [f32; 4] = [-0.2, 0.1, 0.3, 5.0];

/// Lesson 7's inputs, as typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PercentileLesson {
    /// The vector.
    pub x: VectorField,
    /// Upper percentile p (the lower one is 100 − p).
    pub p: f64,
    /// How many copies of the non-outlier values the percentile sees (1 = just the vector).
    pub copies: i32,
    /// Code width (limited to 2..=8).
    pub bits: i32,
    #[serde(skip)]
    memo: Memo<(Vec<u32>, u64, i32, u8), PercentileResult>,
}

impl Default for PercentileLesson {
    fn default() -> Self {
        Self {
            x: VectorField::new(&TEXTBOOK_X),
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

/// The percentile run on the vector with some number of copies.
#[derive(Debug, Clone)]
pub struct PaddedRun {
    /// Copies of the ordinary values.
    pub copies: i32,
    /// Values the percentiles see (n = copies · (len − 1) + 1).
    pub n: usize,
    /// P(100 − p) from the core.
    pub p_lo: f64,
    /// P(p) from the core.
    pub p_hi: f64,
    /// The clip range the core's percentile calibration uses.
    pub range: (f64, f64),
}

/// Lesson 7's numbers on the small vector.
#[derive(Debug, Clone)]
pub struct PercentileResult {
    /// The run with the copies chosen.
    pub run: PaddedRun,
    /// How P(100 − p) was read.
    pub interp_lo: Interp,
    /// How P(p) was read.
    pub interp_hi: Interp,
    /// The vector quantized with the percentile range (clipped outside it).
    pub quantized: Quantized,
    /// The outlier (the value of largest magnitude) and whether it lies outside the clip range.
    pub outlier: Option<(f32, bool)>,
    /// The fewest copies (within the lesson's range) for which the clip range leaves the outlier
    /// out, with that run and its scale.
    pub enough: Option<(PaddedRun, f32)>,
}

/// The vector the percentiles see: the value with the largest magnitude once, every other value
/// `copies` times (more ordinary data around one outlier).
pub fn padded(x: &[f32], copies: usize) -> Vec<f32> {
    let outlier = outlier_index(x);
    let mut out = Vec::with_capacity(x.len() * copies.max(1));
    for (i, &v) in x.iter().enumerate() {
        let reps = if Some(i) == outlier { 1 } else { copies.max(1) };
        out.extend(std::iter::repeat_n(v, reps));
    }
    out
}

/// The index of the value with the largest magnitude (the first of equals).
fn outlier_index(x: &[f32]) -> Option<usize> {
    x.iter()
        .enumerate()
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()).then(b.0.cmp(&a.0)))
        .map(|(i, _)| i)
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

/// The percentiles and clip range of `x` with `copies` copies of its ordinary values.
fn padded_run(x: &[f32], copies: i32, p: f64) -> PaddedRun {
    let data = padded(x, usize::try_from(copies).unwrap_or(1));
    let ps = stats::percentiles(&data, &[100.0 - p, p]).unwrap_or_default();
    PaddedRun {
        copies,
        n: data.len(),
        p_lo: ps.first().copied().unwrap_or(0.0),
        p_hi: ps.get(1).copied().unwrap_or(0.0),
        range: percentile_range(&data, p, Scheme::Asymmetric).unwrap_or((0.0, 0.0)),
    }
}

/// Whether the clip range of `run` leaves the outlier `o` of `x` out: the range ends at or
/// inside the nearest other value on the outlier's side.
fn leaves_out(x: &[f32], o: f32, run: &PaddedRun) -> bool {
    let others = x.iter().filter(|&&v| v != o);
    if o >= 0.0 {
        let next = others.fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
        run.range.1 <= next && f64::from(o) > next
    } else {
        let next = others.fold(f64::INFINITY, |m, &v| m.min(f64::from(v)));
        run.range.0 >= next && f64::from(o) < next
    }
}

/// Computes lesson 7 for `x`, percentile `p`, `copies` and the settings `cfg`.
pub fn percentile_lesson(x: &[f32], p: f64, copies: i32, cfg: &QuantConfig) -> PercentileResult {
    let run = padded_run(x, copies, p);
    let data = padded(x, usize::try_from(copies).unwrap_or(1));
    let mut sorted = data;
    sorted.sort_by(f32::total_cmp);
    let outlier = outlier_index(x)
        .and_then(|i| x.get(i).copied())
        .map(|o| (o, leaves_out(x, o, &run)));
    // The fewest copies: (n − 1)(100 − p)/100 ≥ 1 puts the percentile on ordinary values, so
    // start from c = ceil(100 / ((100 − p)(len − 1))) and let the core confirm (ties and
    // rounding can move it by one).
    let enough = outlier.and_then(|(o, _)| {
        let others = x.len().checked_sub(1).filter(|&k| k > 0)?;
        if p >= 100.0 {
            return None;
        }
        // Small positive numbers: the guess is a copy count in 1..=200 after the clamp.
        let guess = (100.0 / ((100.0 - p) * others as f64)).ceil();
        let mut c = (guess.clamp(1.0, 200.0)) as i32;
        while c > 1 && leaves_out(x, o, &padded_run(x, c - 1, p)) {
            c -= 1;
        }
        while c <= *COPIES_LIMIT.end() && !leaves_out(x, o, &padded_run(x, c, p)) {
            c += 1;
        }
        if c > *COPIES_LIMIT.end() {
            return None;
        }
        let r = padded_run(x, c, p);
        let scale = crate::quant::params_from_range(r.range.0, r.range.1, cfg).scale;
        Some((r, scale))
    });
    PercentileResult {
        interp_lo: interp(&sorted, 100.0 - p),
        interp_hi: interp(&sorted, p),
        quantized: quantize_range(x, run.range.0, run.range.1, cfg),
        run,
        outlier,
        enough,
    }
}

impl PercentileLesson {
    /// The upper percentile in use (limited to [`P_LIMIT`]).
    pub fn p(&self) -> f64 {
        widgets::limit_real(self.p, &P_LIMIT)
    }

    /// The copies in use (limited to [`COPIES_LIMIT`]).
    pub fn copies(&self) -> i32 {
        widgets::limit_int(self.copies, &COPIES_LIMIT)
    }

    /// The quantization settings.
    pub fn config(&self) -> QuantConfig {
        QuantConfig {
            bits: widgets::bits_of(self.bits),
            scheme: Scheme::Asymmetric,
            calibration: Calibration::Percentile(self.p()),
            ..QuantConfig::default()
        }
    }

    /// The computed values for the current inputs (cached).
    pub fn result(&mut self) -> Arc<PercentileResult> {
        let x = self.x.values().to_vec();
        let cfg = self.config();
        let (p, copies) = (self.p(), self.copies());
        let key = (bits_key(&x), p.to_bits(), copies, cfg.bits);
        self.memo
            .get(key, |_| percentile_lesson(&x, p, copies, &cfg))
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
    pub fn ui(
        &mut self,
        ui: &mut Ui,
        real: Option<&LessonReal>,
        on_selected: &mut bool,
    ) -> Option<QuantConfig> {
        let p = self.p();
        para(
            ui,
            &format!(
                "One extreme value makes min-max spend almost all codes on empty space. Percentile \
                 calibration ignores the most extreme sliver of the data: it clips to the values \
                 below which {} % and {} % of the data lie, and accepts a large error on the few \
                 clipped values in exchange for fine steps everywhere else.",
                fmt_g(100.0 - p, 4),
                fmt_g(p, 4)
            ),
        );
        formula(
            ui,
            "min′ = min(P_{100−p}, 0),   max′ = max(P_{p}, 0),   S = (max′ − min′) / (2^{b} − 1),   \
             q = clamp(⌊x / S⌉ + z, 0, 2^{b} − 1)",
        );
        section(ui, "Inputs");
        self.x.ui(ui, "Vector x:");
        ui.horizontal_wrapped(|ui| {
            widgets::real_input(ui, "Upper percentile p:", &mut self.p, P_LIMIT, 0.05);
            widgets::int_input(
                ui,
                "Copies of the ordinary values:",
                &mut self.copies,
                COPIES_LIMIT,
            );
            widgets::int_input(ui, "Bits b:", &mut self.bits, widgets::BITS);
        });
        let p = self.p();
        let cfg = self.config();
        let r = self.result();
        // Real data first (p and b above apply to it), then the small vector worked by hand.
        section(ui, "On real data");
        if let Some(real) = widgets::real_header(ui, real, on_selected) {
            real_table(ui, real);
            para(ui, &real_sentence(real));
            real_plot(ui, real);
        }
        section(ui, "Exact percentiles (numpy's linear method)");
        formula(
            ui,
            "i = (n − 1) · p / 100,   P = x_{(⌊i⌋)} + (i − ⌊i⌋) · (x_{(⌊i⌋+1)} − x_{(⌊i⌋)})",
        );
        formula(
            ui,
            &format!(
                "n = {} values;  x_{{(k)}} is the k-th smallest, counting from 0",
                r.run.n
            ),
        );
        for (name, pv, it) in [
            (
                format!("P_{{{}}}", fmt_g(100.0 - p, 4)),
                r.run.p_lo,
                r.interp_lo,
            ),
            (format!("P_{{{}}}", fmt_g(p, 4)), r.run.p_hi, r.interp_hi),
        ] {
            formula(
                ui,
                &format!(
                    "{name}:  i = {},  {} + {} · ({} − {}) = {}",
                    fmt_g(it.index, 5),
                    fmt_f32(it.below),
                    fmt_g(it.t, 4),
                    fmt_f32(it.above),
                    widgets::subtrahend(&fmt_f32(it.below)),
                    fmt_g(pv, 6)
                ),
            );
        }
        let q = &r.quantized;
        let d = derive(&cfg, q.range, &q.params);
        if let Some(remark) = &d.remark {
            para(ui, remark);
        }
        for line in &d.lines {
            formula(ui, line);
        }
        widgets::steps_table(ui, "l7_steps", q, true);
        formula(ui, &format!("q = {}", fmt_list(&q.codes)));
        ui.label(format!("{} clipped", count(q.clipped, "value", "values")));
        widgets::metrics_line(ui, q);
        let textbook = self.x.values() == TEXTBOOK_X && p == 99.0;
        note(ui, &small_note(&r, p, self.copies(), textbook));

        widgets::try_button(ui, &cfg)
    }
}

/// The note on the small vector: does the clip range leave the outlier out, and how many
/// copies of the ordinary values it takes.
pub fn small_note(r: &PercentileResult, p: f64, copies: i32, textbook: bool) -> String {
    let mut s = String::new();
    if textbook {
        s.push_str(
            "The textbook example says P1 ≈ −0.2 and P99 ≈ 0.3, so S = 0.5/255 ≈ 0.0020: what \
             percentiles give on a large sample where the outlier is one value in over a hundred. ",
        );
    }
    let (lo, hi) = (r.run.range.0, r.run.range.1);
    let Some((o, out)) = r.outlier else {
        return s;
    };
    if out {
        s.push_str(&format!(
            "With n = {} values the clip range [{}, {}] leaves the outlier {} outside: it is \
             clipped, and the other values get fine steps (S = {}).",
            r.run.n,
            fmt_g(lo, 6),
            fmt_g(hi, 6),
            fmt_f32(o),
            fmt_f32(r.quantized.params.scale)
        ));
        if let Some((e, _)) = &r.enough
            && e.copies < copies
        {
            s.push_str(&format!(
                " {} would already do.",
                count(usize::try_from(e.copies).unwrap_or(1), "copy", "copies")
            ));
        }
        return s;
    }
    let reaches = if o >= 0.0 {
        hi >= f64::from(o)
    } else {
        lo <= f64::from(o)
    };
    if reaches {
        s.push_str(&format!(
            "With n = {} values the clip range [{}, {}] reaches the outlier {} itself: nothing \
             is ignored, and {} clipped.",
            r.run.n,
            fmt_g(lo, 6),
            fmt_g(hi, 6),
            fmt_f32(o),
            count(r.quantized.clipped, "value is", "values are")
        ));
    } else {
        s.push_str(&format!(
        "With n = {} values the clip range [{}, {}] still reaches toward the outlier {}: {} % of \
         {} values is less than one value, so the percentile reads between the outlier and its \
         neighbour, and {} clipped.",
        r.run.n,
        fmt_g(lo, 6),
        fmt_g(hi, 6),
        fmt_f32(o),
        fmt_g(100.0 - p, 4),
        r.run.n,
        count(r.quantized.clipped, "value is", "values are")
    ));
    }
    match &r.enough {
        Some((e, scale)) => s.push_str(&format!(
            " Raise the copies to {} (n = {}): P_{} becomes {}, P_{} becomes {}, and S = {}.",
            e.copies,
            e.n,
            fmt_g(100.0 - p, 4),
            fmt_g(e.p_lo, 6),
            fmt_g(p, 4),
            fmt_g(e.p_hi, 6),
            fmt_f32(*scale)
        )),
        None if p >= 100.0 => s.push_str(
            " At p = 100 the percentile is the extreme value itself: no amount of data lets it \
             ignore the outlier.",
        ),
        None => s.push_str(&format!(
            " Even {} copies are not enough at p = {}.",
            COPIES_LIMIT.end(),
            fmt_g(p, 6)
        )),
    }
    s
}

/// The finished runs on the real tensor, when both are for the current settings.
fn current_runs(real: &LessonReal) -> Option<(&QuantResult, &QuantResult)> {
    let get = |i: usize| {
        real.runs
            .get(i)
            .filter(|(_, run)| run.current)
            .and_then(|(_, run)| run.value.as_deref())
    };
    Some((get(0)?, get(1)?))
}

/// Min-max against percentile on the real tensor, in one sentence from the two runs.
pub fn real_sentence(real: &LessonReal) -> String {
    let Some((mm, pc)) = current_runs(real) else {
        return "Computing both runs for the current settings…".to_string();
    };
    let (a, b) = (mm.metrics.sqnr_db, pc.metrics.sqnr_db);
    let lo = pc.clip_min.first().copied().unwrap_or(0.0);
    let hi = pc.clip_max.first().copied().unwrap_or(0.0);
    let verdict = if b > a {
        format!(
            "percentile wins: {} dB against {} dB for min-max — clipping the rare extremes buys \
             finer steps for everything else",
            fmt_g(b, 4),
            fmt_g(a, 4)
        )
    } else if b < a {
        format!(
            "min-max wins: {} dB against {} dB for percentile — on this tensor the error on the \
             clipped values outweighs what the finer steps save",
            fmt_g(a, 4),
            fmt_g(b, 4)
        )
    } else {
        format!("both give {} dB", fmt_g(a, 4))
    };
    format!(
        "On {}, the percentile range [{}, {}] clips {} % of the values, and {verdict}.",
        real.name,
        fmt_g(lo, 4),
        fmt_g(hi, 4),
        fmt_g(pc.metrics.clipped_fraction * 100.0, 3)
    )
}

/// Min-max versus percentile on the real data (a run still computing for the current
/// settings is drawn dimmed).
fn real_table(ui: &mut Ui, real: &LessonReal) {
    egui::Grid::new("l7_real").striped(true).show(ui, |ui| {
        for h in ["calibration", "clip range", "S", "clipped", "MSE", "SQNR"] {
            ui.strong(h);
        }
        ui.end_row();
        for (name, (_, run)) in ["min-max", "percentile"].iter().zip(&real.runs) {
            ui.label(*name);
            let cell = |ui: &mut Ui, text: String| {
                let t = RichText::new(text);
                ui.label(if run.current { t } else { t.weak() });
            };
            match (run.value.as_deref(), &run.error) {
                (Some(r), _) => {
                    let lo = r.clip_min.first().copied().unwrap_or(0.0);
                    let hi = r.clip_max.first().copied().unwrap_or(0.0);
                    cell(ui, format!("[{}, {}]", fmt_g(lo, 4), fmt_g(hi, 4)));
                    cell(ui, r.scales.first().map_or("—".into(), |&s| fmt_f32(s)));
                    cell(
                        ui,
                        format!("{} %", fmt_g(r.metrics.clipped_fraction * 100.0, 3)),
                    );
                    cell(ui, fmt_g(r.metrics.mse, 4));
                    cell(ui, format!("{} dB", fmt_g(r.metrics.sqnr_db, 4)));
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
        assert!((r.run.p_lo - -0.191).abs() < 1e-6, "{}", r.run.p_lo);
        assert!((r.run.p_hi - 4.859).abs() < 1e-6, "{}", r.run.p_hi);
        assert_eq!(r.run.n, 4);
        // The outlier is inside the range; 34 copies are the fewest that leave it out.
        assert_eq!(r.outlier, Some((5.0, false)));
        assert_eq!(
            r.enough.as_ref().map(|e| (e.0.copies, e.0.n)),
            Some((34, 103))
        );
        let n = small_note(&r, 99.0, 1, true);
        assert!(n.contains("still reaches toward the outlier 5"), "{n}");
        assert!(
            n.contains("Raise the copies to 34 (n = 103): P_1 becomes −0.2, P_99 becomes 0.3"),
            "{n}"
        );
    }

    #[test]
    fn enough_data_gives_the_textbook_idealised_numbers() {
        let mut l = PercentileLesson {
            copies: 34,
            ..Default::default()
        };
        let r = l.result();
        // n = 34·3 + 1 = 103: P99 reads i = 100.98, between two copies of 0.3; P1 reads
        // i = 1.02, between two copies of −0.2.
        assert_eq!(r.run.n, 103);
        assert_eq!(r.run.p_hi, f64::from(0.3f32));
        assert_eq!(r.run.p_lo, f64::from(-0.2f32));
        assert_eq!(r.outlier, Some((5.0, true)));
        assert!(small_note(&r, 99.0, 34, true).contains("leaves the outlier 5 outside"));
        assert!((f64::from(r.quantized.params.scale) - 0.5 / 255.0).abs() < 1e-9);
        // 5.0 is clipped to the top code.
        assert_eq!(r.quantized.codes.last(), Some(&255));
        assert_eq!(r.quantized.clipped, 1);
    }
}
