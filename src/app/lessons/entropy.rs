//! Lesson 8: KL-divergence (entropy) calibration, TensorRT's algorithm from the core: the
//! textbook example's x = [0.1, 0.15, 0.2, 5.0] (where the method has almost nothing to work
//! with), then the whole selected tensor (through the app's jobs, the same runs as the main
//! views) with the KL curve over the candidate thresholds and the chosen minimum. Every sentence
//! is written from the curve and the runs shown.

use std::sync::Arc;

use egui::{Color32, RichText, Ui};
use egui_plot::{Legend, Line, Plot, PlotPoints, Points, VLine};
use serde::{Deserialize, Serialize};

use super::super::derived::LessonReal;
use super::widgets::{
    self, Memo, VectorField, bits_key, count, fmt_g, formula, note, para, section,
};
use crate::cancel::Cancel;
use crate::quant::calib::{ENTROPY_BINS, Side, kl_histogram};
use crate::quant::{
    Calibration, CalibrationCurve, EntropyResult, QuantConfig, QuantResult, Scheme,
    entropy_amax_with_curve,
};

/// Lesson 8's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EntropyLesson {
    /// The small vector.
    pub x: VectorField,
    /// Code width (2^(b−1) quantized bins), as typed (limited to 2..=8).
    pub bits: i32,
    #[serde(skip)]
    memo: Memo<(Vec<u32>, u8), ToyEntropy>,
}

impl Default for EntropyLesson {
    fn default() -> Self {
        Self {
            x: VectorField::new(&[0.1, 0.15, 0.2, 5.0]),
            bits: 8,
            memo: Memo::default(),
        }
    }
}

/// The calibrator's run on the small vector.
#[derive(Debug, Clone)]
pub struct ToyEntropy {
    /// max |x|: the histogram spans [0, max|x|].
    pub max_abs: f64,
    /// The non-empty bins of the 2048-bin histogram: (bin index, count).
    pub nonzero_bins: Vec<(usize, u64)>,
    /// The candidates, their KL and the chosen threshold.
    pub entropy: EntropyResult,
    /// How many values lie above the chosen threshold (clipped to it).
    pub clipped: usize,
}

impl ToyEntropy {
    /// How many candidates have a finite KL divergence.
    pub fn finite_count(&self) -> usize {
        self.entropy.kl.iter().filter(|k| k.is_finite()).count()
    }

    /// How many candidates have an undefined (NaN) KL: every kept bin empty.
    pub fn nan_count(&self) -> usize {
        self.entropy.kl.iter().filter(|k| k.is_nan()).count()
    }
}

/// The KL curve of a per-tensor entropy run (the positive side for symmetric schemes).
pub fn entropy_curve(result: &QuantResult) -> Option<&EntropyResult> {
    match &result.curve {
        Some(CalibrationCurve::Entropy(sides)) => sides.first(),
        _ => None,
    }
}

/// At most ~1000 finite (threshold, KL) points of a curve.
fn plot_points(e: &EntropyResult) -> Vec<[f64; 2]> {
    let step = (e.kl.len() / 1000).max(1);
    e.candidates
        .iter()
        .zip(&e.kl)
        .step_by(step)
        .filter(|(_, k)| k.is_finite())
        .map(|(&c, &k)| [c, k])
        .collect()
}

/// The histogram bin of the first candidate (candidates run from it to the last bin).
fn first_candidate_bin(e: &EntropyResult) -> usize {
    (ENTROPY_BINS + 1).saturating_sub(e.candidates.len())
}

/// Computes the calibrator's run on the small vector `x` at `bits`.
pub fn toy_entropy(x: &[f32], bits: u8) -> ToyEntropy {
    let cancel = Cancel::never();
    let max_abs = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let counts = kl_histogram(x, Side::Abs, max_abs, &cancel).unwrap_or_default();
    let nonzero_bins = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, &c)| (i, c))
        .collect();
    let entropy = entropy_amax_with_curve(x, bits, &cancel).unwrap_or(EntropyResult {
        amax: 0.0,
        candidates: Vec::new(),
        kl: Vec::new(),
        best: 0,
    });
    let clipped = x
        .iter()
        .filter(|v| f64::from(v.abs()) > entropy.amax)
        .count();
    ToyEntropy {
        max_abs: f64::from(max_abs),
        nonzero_bins,
        entropy,
        clipped,
    }
}

impl EntropyLesson {
    /// The quantization settings (symmetric, entropy calibration).
    pub fn config(&self) -> QuantConfig {
        QuantConfig {
            bits: widgets::bits_of(self.bits),
            scheme: Scheme::Symmetric,
            calibration: Calibration::Entropy,
            ..QuantConfig::default()
        }
    }

    /// The computed values for the small vector (cached).
    pub fn result(&mut self) -> Arc<ToyEntropy> {
        let x = self.x.values().to_vec();
        let bits = widgets::bits_of(self.bits);
        self.memo
            .get((bits_key(&x), bits), |&(_, bits)| toy_entropy(&x, bits))
    }

    /// The runs the real-tensor part needs: symmetric min-max, then entropy, at these bits.
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
        para(
            ui,
            "Instead of fixing a percentage to throw away, KL calibration (TensorRT's method) asks \
             which threshold keeps the shape of the data best. It builds a fine histogram of |x|, \
             then for every candidate threshold T it folds everything above T into the last kept \
             bin (that is clipping), squeezes the kept bins into as many levels as the integer type \
             has, and measures how much information the squeezed histogram Q loses against the \
             clipped original P. The threshold with the smallest loss wins.",
        );
        formula(
            ui,
            "D_{KL}(P ‖ Q) = Σ_{i} P_{i} · ln(P_{i} / Q_{i}),   T* = argmin_{T} D_{KL}",
        );
        section(ui, "Inputs");
        self.x.ui(ui, "Vector x:");
        widgets::int_input(ui, "Bits b:", &mut self.bits, widgets::BITS);
        let cfg = self.config();
        let r = self.result();
        let levels = 1usize << (cfg.bits.clamp(2, 16) - 1);
        // Real data first (b above applies to it), then the small vector worked by hand.
        section(ui, "On real data");
        if let Some(real) = widgets::real_header(ui, real, on_selected) {
            real_part_ui(ui, real);
        }
        section(ui, "On the small vector");
        if r.entropy.candidates.is_empty() {
            para(
                ui,
                "max|x| = 0: the histogram is empty and there is no threshold to choose.",
            );
        } else {
            formula(
                ui,
                &format!(
                    "{} bins on [0, {}], bin width {};  {} levels;  candidates T = bins {} … {}",
                    ENTROPY_BINS,
                    fmt_g(r.max_abs, 4),
                    fmt_g(r.max_abs / ENTROPY_BINS as f64, 4),
                    levels,
                    first_candidate_bin(&r.entropy),
                    ENTROPY_BINS
                ),
            );
            let shown = 12;
            let mut bins: Vec<String> = r
                .nonzero_bins
                .iter()
                .take(shown)
                .map(|(i, c)| format!("bin {i}: {c}"))
                .collect();
            if r.nonzero_bins.len() > shown {
                bins.push(format!("… and {} more", r.nonzero_bins.len() - shown));
            }
            ui.label(format!("Non-empty bins: {}", bins.join(", ")));
            candidates_table(ui, &r.entropy);
            ui.label(
                RichText::new(format!(
                    "{} candidates, {} with a finite KL; chosen threshold T* = {}",
                    r.entropy.candidates.len(),
                    r.finite_count(),
                    fmt_g(r.entropy.amax, 5)
                ))
                .strong(),
            );
            kl_plot(
                ui,
                "l8_toy_plot",
                &plot_points(&r.entropy),
                &r.entropy,
                140.0,
            );
        }
        note(ui, &toy_note(&r));

        widgets::try_button(ui, &cfg)
    }
}

/// The note on the small vector, from its curve.
pub fn toy_note(r: &ToyEntropy) -> String {
    let mut s = String::from(
        "The textbook example only says that thresholds are tried and the one with the lowest \
         divergence is kept; it never finishes the example. ",
    );
    let e = &r.entropy;
    let total = e.candidates.len();
    if total == 0 {
        s.push_str("Here there is nothing to try: every value is 0.");
        return s;
    }
    let (finite, nan) = (r.finite_count(), r.nan_count());
    let infinite = total - finite - nan;
    if infinite == 0 && nan == 0 {
        s.push_str("Every candidate has a finite KL here. ");
    } else {
        if infinite > 0 {
            s.push_str(&format!(
                "{} of {total} candidates have an infinite KL: a threshold whose last kept bin is \
                 empty in the original histogram puts the clipped values' mass into that bin, \
                 where the squeezed Q is zero. {} ",
                infinite,
                match finite {
                    0 => "No threshold ends on a non-empty bin.".to_string(),
                    1 => "Only the one threshold ending on a non-empty bin is finite.".to_string(),
                    n => format!("Only the {n} thresholds ending on a non-empty bin are finite."),
                }
            ));
        }
        if nan > 0 {
            s.push_str(&format!(
                "{} keep only empty bins (every |x| lies above them): Q has no mass at all and \
                 KL is undefined (NaN). ",
                count(nan, "candidate", "candidates")
            ));
        }
    }
    let best_kl = e.kl.get(e.best).copied().unwrap_or(f64::NAN);
    let pct = if r.max_abs > 0.0 {
        e.amax / r.max_abs * 100.0
    } else {
        0.0
    };
    if best_kl.is_nan() {
        s.push_str(&format!(
            "As in NVIDIA's code, the last undefined candidate wins: T* = {} lies below every |x| \
             and clips all {}.",
            fmt_g(e.amax, 5),
            count(r.clipped, "value", "values")
        ));
    } else {
        let keeps = if r.clipped == 0 {
            "keeping every value".to_string()
        } else {
            format!("clipping {}", count(r.clipped, "value", "values"))
        };
        s.push_str(&format!(
            "The minimum is T* = {} ({} % of max|x|), {keeps}.",
            fmt_g(e.amax, 5),
            fmt_g(pct, 3)
        ));
    }
    if finite * 10 < total {
        s.push_str(
            " With so few comparable thresholds KL has almost nothing to choose from: it needs a \
             histogram with mass everywhere, that is, real data.",
        );
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

/// Where the minimum of the real curve lies, in words.
pub fn curve_sentence(curve: &EntropyResult) -> String {
    let n = curve.candidates.len();
    let best_kl = curve.kl.get(curve.best).copied().unwrap_or(f64::NAN);
    if best_kl.is_nan() {
        "Every kept bin of the chosen candidate is empty (KL undefined); as in NVIDIA's code, the \
         last such candidate wins."
            .to_string()
    } else if curve.best + 1 >= n {
        "The minimum is the last candidate: on this tensor KL keeps the whole range and clips \
         nothing."
            .to_string()
    } else if curve.best == 0 {
        "The minimum is the smallest candidate: KL clips as much as it is allowed to.".to_string()
    } else {
        "Left of the minimum the threshold clips too much of the tail; right of it the levels get \
         too coarse for the bulk of the data."
            .to_string()
    }
}

/// KL against min-max on the real tensor, from the two runs.
pub fn real_sentence(real: &LessonReal) -> String {
    let Some((mm, kl)) = current_runs(real) else {
        return "Computing both runs for the current settings…".to_string();
    };
    let (a, b) = (mm.metrics.sqnr_db, kl.metrics.sqnr_db);
    let clipped = fmt_g(kl.metrics.clipped_fraction * 100.0, 3);
    if b > a {
        format!(
            "On {}, KL wins: {} dB against {} dB for min-max — clipping {clipped} % of the values \
             buys finer steps for the rest.",
            real.name,
            fmt_g(b, 4),
            fmt_g(a, 4)
        )
    } else if b < a {
        format!(
            "On {}, min-max wins: {} dB against {} dB for KL. KL keeps the shape of the histogram, \
             not the mean squared error: here the {clipped} % of clipped values cost more squared \
             error than the finer steps save. Whether that matters depends on the model; the MSE \
             calibrator in the main views optimises the error directly.",
            real.name,
            fmt_g(a, 4),
            fmt_g(b, 4)
        )
    } else {
        format!(
            "On {}, KL and min-max give the same {} dB.",
            real.name,
            fmt_g(a, 4)
        )
    }
}

/// The KL curve of the real tensor and min-max beside KL (a run still computing for the
/// current settings is drawn dimmed).
fn real_part_ui(ui: &mut Ui, real: &LessonReal) {
    let minmax = real.runs.first().map(|(_, r)| r);
    let entropy = real.runs.get(1).map(|(_, r)| r);
    let Some(curve) = entropy
        .and_then(|r| r.value.as_deref())
        .and_then(entropy_curve)
    else {
        ui.spinner();
        return;
    };
    let maxabs = curve.candidates.last().copied().unwrap_or(0.0);
    formula(
        ui,
        &format!(
            "max|x| = {},   T* = {}  ({} % of max|x|)",
            fmt_g(maxabs, 5),
            fmt_g(curve.amax, 5),
            fmt_g(
                if maxabs > 0.0 {
                    curve.amax / maxabs * 100.0
                } else {
                    0.0
                },
                3
            )
        ),
    );
    kl_plot(ui, "l8_real_plot", &plot_points(curve), curve, 220.0);
    egui::Grid::new("l8_real").striped(true).show(ui, |ui| {
        for h in ["calibration", "threshold", "clipped", "MSE", "SQNR"] {
            ui.strong(h);
        }
        ui.end_row();
        for (name, run) in [("min-max", minmax), ("KL (entropy)", entropy)] {
            ui.label(name);
            match run.and_then(|r| r.value.as_deref().map(|v| (v, r.current))) {
                Some((q, current)) => {
                    let cell = |ui: &mut Ui, text: String| {
                        let t = RichText::new(text);
                        ui.label(if current { t } else { t.weak() });
                    };
                    cell(ui, fmt_g(q.clip_max.first().copied().unwrap_or(0.0), 5));
                    cell(
                        ui,
                        format!("{} %", fmt_g(q.metrics.clipped_fraction * 100.0, 3)),
                    );
                    cell(ui, fmt_g(q.metrics.mse, 4));
                    cell(ui, format!("{} dB", fmt_g(q.metrics.sqnr_db, 4)));
                }
                None => {
                    ui.spinner();
                }
            }
            ui.end_row();
        }
    });
    if current_runs(real).is_some() {
        para(ui, &curve_sentence(curve));
    }
    para(ui, &real_sentence(real));
}

/// A few candidates around the start, the chosen one and the end.
fn candidates_table(ui: &mut Ui, e: &EntropyResult) {
    let n = e.candidates.len();
    let mut idx: Vec<usize> = (0..n.min(3)).chain(n.saturating_sub(3)..n).collect();
    idx.push(e.best);
    idx.sort_unstable();
    idx.dedup();
    egui::Grid::new("l8_candidates")
        .striped(true)
        .show(ui, |ui| {
            for h in ["candidate", "threshold T", "KL(P||Q)", ""] {
                ui.strong(h);
            }
            ui.end_row();
            for i in idx {
                ui.label(format!("#{i}"));
                ui.label(e.candidates.get(i).map_or("—".into(), |&c| fmt_g(c, 5)));
                ui.label(e.kl.get(i).map_or("—".into(), |&k| fmt_g(k, 5)));
                ui.label(if i == e.best { "minimum" } else { "" });
                ui.end_row();
            }
        });
}

/// The KL curve with the chosen threshold.
fn kl_plot(ui: &mut Ui, id: &str, points: &[[f64; 2]], e: &EntropyResult, height: f32) {
    let best = e
        .candidates
        .get(e.best)
        .copied()
        .zip(e.kl.get(e.best).copied())
        .filter(|(_, k)| k.is_finite());
    let orange = Color32::from_rgb(0xE0, 0x8A, 0x20);
    crate::app::panels::labelled_axes(Plot::new(id))
        .height(height)
        .legend(Legend::default())
        .allow_scroll(false)
        .x_axis_label("threshold T")
        .y_axis_label("KL(P||Q)")
        .show(ui, |plot| {
            plot.line(Line::new("KL divergence", PlotPoints::new(points.to_vec())));
            if let Some((t, k)) = best {
                plot.points(
                    Points::new("chosen T*", vec![[t, k]])
                        .radius(5.0)
                        .color(orange),
                );
                plot.vline(VLine::new("chosen T*", t).color(orange));
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toy_vector_only_the_full_range_is_finite() {
        let mut l = EntropyLesson::default();
        let r = l.result();
        let n = toy_note(&r);
        assert!(
            n.contains("1920 of 1921 candidates have an infinite KL"),
            "{n}"
        );
        assert!(
            n.contains("Only the one threshold ending on a non-empty bin is finite."),
            "{n}"
        );
        assert!(
            n.contains("T* = 5 (100 % of max|x|), keeping every value"),
            "{n}"
        );
        assert!(n.contains("almost nothing to choose from"), "{n}");
        // 2048 bins on [0, 5]: 0.1 → bin 40, 0.15 → 61, 0.2 → 81, 5.0 → 2047.
        assert_eq!(r.nonzero_bins, vec![(40, 1), (61, 1), (81, 1), (2047, 1)]);
        // Candidates 128..=2048; only i = 2048 keeps the outlier's bin, all others are +inf.
        assert_eq!(r.entropy.candidates.len(), 2048 - 128 + 1);
        assert_eq!(r.finite_count(), 1);
        assert_eq!(r.entropy.amax, 5.0);
    }

    #[test]
    fn the_real_part_reads_the_kl_curve_of_the_cores_run() {
        let l = EntropyLesson::default();
        let configs = l.real_configs();
        assert_eq!(configs[0].calibration, Calibration::MinMax);
        // The demo vector: N(0, 1) with outliers up to 20; KL clips well below max|x| = 20.
        let x = super::super::demo::demo_vector();
        let q = crate::quant::quantize_tensor(
            &x,
            &[x.len()],
            &configs[1],
            crate::quant::Outputs::default(),
            &Cancel::never(),
        )
        .expect("quantizes");
        let curve = entropy_curve(&q).expect("per-tensor entropy carries its curve");
        assert_eq!(curve.candidates.last(), Some(&20.0));
        assert!(curve.amax < 15.0 && curve.amax > 2.0, "{}", curve.amax);
        assert!(!plot_points(curve).is_empty());
        assert_eq!(q.clip_max.first().copied(), Some(curve.amax));
    }
}
