//! Lesson 8: KL-divergence (entropy) calibration, TensorRT's algorithm from the core: the seed's
//! x = [0.1, 0.15, 0.2, 5.0] (where the method has almost nothing to work with), then a real
//! tensor with the KL curve over the candidate thresholds and the chosen minimum.

use std::sync::Arc;

use egui::{Color32, RichText, Ui};
use egui_plot::{Legend, Line, Plot, PlotPoints, Points, VLine};
use serde::{Deserialize, Serialize};

use super::super::derived::LessonReal;
use super::widgets::{self, Memo, VectorField, bits_key, fmt_g, formula, note, para, section};
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
    /// Code width (2^(b−1) quantized bins).
    pub bits: u8,
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
}

impl ToyEntropy {
    /// How many candidates have a finite KL divergence.
    pub fn finite_count(&self) -> usize {
        self.entropy.kl.iter().filter(|k| k.is_finite()).count()
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

impl EntropyLesson {
    /// The quantization settings (symmetric, entropy calibration).
    pub fn config(&self) -> QuantConfig {
        QuantConfig {
            bits: self.bits,
            scheme: Scheme::Symmetric,
            calibration: Calibration::Entropy,
            ..QuantConfig::default()
        }
    }

    /// The computed values for the small vector (cached).
    pub fn result(&mut self) -> Arc<ToyEntropy> {
        let x = self.x.values().to_vec();
        self.memo.get((bits_key(&x), self.bits), |&(_, bits)| {
            let cancel = Cancel::never();
            let max_abs = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let counts = kl_histogram(&x, Side::Abs, max_abs, &cancel).unwrap_or_default();
            let nonzero_bins = counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(i, &c)| (i, c))
                .collect();
            let entropy = entropy_amax_with_curve(&x, bits, &cancel).unwrap_or(EntropyResult {
                amax: 0.0,
                candidates: Vec::new(),
                kl: Vec::new(),
                best: 0,
            });
            ToyEntropy {
                max_abs: f64::from(max_abs),
                nonzero_bins,
                entropy,
            }
        })
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
    pub fn ui(&mut self, ui: &mut Ui, real: Option<&LessonReal>) -> Option<QuantConfig> {
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
        widgets::drag_u8(ui, "Bits b:", &mut self.bits, 2..=8);
        let r = self.result();
        let levels = 1usize << (self.bits.clamp(2, 16) - 1);
        section(ui, "On the small vector");
        formula(
            ui,
            &format!(
                "{} bins on [0, {}], bin width {};  {} levels;  candidates T = bins {} … {}",
                ENTROPY_BINS,
                fmt_g(r.max_abs, 4),
                fmt_g(r.max_abs / ENTROPY_BINS as f64, 4),
                levels,
                levels.min(ENTROPY_BINS),
                ENTROPY_BINS
            ),
        );
        let bins: Vec<String> = r
            .nonzero_bins
            .iter()
            .map(|(i, c)| format!("bin {i}: {c}"))
            .collect();
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
        note(
            ui,
            "The seed only says that thresholds are tried and the one with the lowest divergence is \
             kept; it never finishes the example, and with four values it cannot be finished \
             usefully. The three small values share a few bins near 0 and the outlier sits alone in \
             the last bin. Every threshold below it dumps the outlier's mass into a bin that is \
             empty in the original histogram, where the squeezed Q is zero, so the divergence is \
             infinite. Only the threshold that keeps everything is finite — KL needs a histogram \
             with mass everywhere, that is, real data.",
        );

        section(ui, "On a real tensor");
        if let Some(real) = widgets::real_header(ui, real) {
            real_part_ui(ui, real);
        }
        widgets::try_button(ui, &self.config())
    }
}

/// The KL curve of the real tensor and min-max beside KL.
fn real_part_ui(ui: &mut Ui, real: &LessonReal) {
    let minmax = real.runs.first().and_then(|(_, r)| r.value.as_deref());
    let entropy = real.runs.get(1).and_then(|(_, r)| r.value.as_deref());
    let Some(curve) = entropy.and_then(entropy_curve) else {
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
            match run {
                Some(q) => {
                    ui.label(fmt_g(q.clip_max.first().copied().unwrap_or(0.0), 5));
                    ui.label(format!(
                        "{} %",
                        fmt_g(q.metrics.clipped_fraction * 100.0, 3)
                    ));
                    ui.label(fmt_g(q.metrics.mse, 4));
                    ui.label(format!("{} dB", fmt_g(q.metrics.sqnr_db, 4)));
                }
                None => {
                    ui.spinner();
                }
            }
            ui.end_row();
        }
    });
    para(
        ui,
        "Left of the minimum the threshold clips too much of the tail; right of it the levels \
         get too coarse for the bulk of the data.",
    );
    if let (Some(kl), Some(mm)) = (entropy, minmax)
        && kl.metrics.mse > mm.metrics.mse
    {
        note(
            ui,
            "KL keeps the shape of the histogram, not the mean squared error: on this data the \
             few clipped outliers cost more squared error than the finer steps save. Whether \
             that matters depends on the model; the MSE calibrator in the main views optimises \
             the error directly.",
        );
    }
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
