//! The Batches tab: calibration as the batches of a layer input arrive one by one — ONNX
//! Runtime's running and moving-average min-max beside the thresholds read from a histogram
//! accumulated over the batches (ONNX Runtime's percentile, TensorRT's percentile and KL
//! entropy) — and the input's per-feature ranges next to the per-input-column ranges of the
//! weights that read it.

use egui::{Color32, RichText, Ui};
use egui_plot::{Legend, Line, Plot, PlotPoints, Points};

use super::super::derived::FrameView;
use super::super::derived::results::BatchView;
use super::super::state::{AppState, Command};
use crate::quant::batches::BatchStep;

/// The thresholds of one step, each as the |x| it clips at.
fn thresholds(step: &BatchStep) -> [(&'static str, Option<f64>, Color32); 5] {
    let absmax = |r: Option<(f32, f32)>| r.map(|(lo, hi)| f64::from(lo.abs().max(hi.abs())));
    [
        (
            "running min-max (ONNX Runtime)",
            absmax(step.minmax),
            Color32::from_rgb(230, 120, 40),
        ),
        (
            "moving average c = 0.01 (ONNX Runtime)",
            step.moving_average_absmax.map(f64::from),
            Color32::from_rgb(200, 170, 60),
        ),
        (
            "percentile of the histogram (ONNX Runtime)",
            absmax(step.percentile_onnxruntime),
            Color32::from_rgb(170, 90, 220),
        ),
        (
            "percentile of the histogram (TensorRT)",
            step.percentile_tensorrt.map(f64::from),
            Color32::from_rgb(110, 130, 240),
        ),
        (
            "entropy (KL) of the histogram (TensorRT)",
            step.entropy_tensorrt.map(f64::from),
            Color32::from_rgb(30, 170, 170),
        ),
    ]
}

fn fmt(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{v:.4}"))
}

/// Draws the tab.
pub fn batches_ui(ui: &mut Ui, state: &AppState, view: &FrameView) -> Vec<Command> {
    let out = Vec::new();
    if let Some(e) = &view.batches.error {
        ui.colored_label(ui.visuals().error_fg_color, e);
    }
    let Some(b) = view.batches.value.as_deref() else {
        ui.spinner();
        return out;
    };
    let c = &b.calibration;
    ui.label(
        RichText::new(format!(
            "{} batches of {} features: {} — {}-bit thresholds, percentile {}",
            c.steps.len(),
            c.features,
            b.source,
            c.options.bits,
            c.options.percentile
        ))
        .weak(),
    )
    .on_hover_text(
        "Calibrators see activations batch by batch. Min-max keeps the running extremes; the \
         moving average smooths them; histogram calibrators accumulate |x| into 2048 bins \
         (growing the range when a later batch exceeds it) and read a threshold from the \
         histogram. Lessons 6–8 teach the calibrators.",
    );
    let h = (ui.available_height() / 2.0 - 60.0).max(120.0);
    thresholds_plot(ui, c.steps.as_slice(), h);
    steps_table(ui, &c.steps);
    ui.separator();
    channels_plot(ui, b, h);
    let _ = state;
    out
}

fn thresholds_plot(ui: &mut Ui, steps: &[BatchStep], height: f32) {
    super::labelled_axes(Plot::new("batch_thresholds"))
        .height(height)
        .legend(Legend::default())
        .allow_scroll(false)
        .x_axis_label("batches seen")
        .y_axis_label("threshold |x|")
        .show(ui, |p| {
            for k in 0..5 {
                let mut points = Vec::new();
                let (mut name, mut colour) = ("", Color32::GRAY);
                for step in steps {
                    let t = thresholds(step)[k];
                    (name, colour) = (t.0, t.2);
                    if let Some(v) = t.1 {
                        // Batch counts are tiny: exact in f64.
                        points.push([(step.batch + 1) as f64, v]);
                    }
                }
                p.line(
                    Line::new(name, PlotPoints::from(points.clone()))
                        .color(colour)
                        .width(2.0),
                );
                p.points(Points::new(name, points).color(colour).radius(3.0));
            }
        });
}

fn steps_table(ui: &mut Ui, steps: &[BatchStep]) {
    egui::Grid::new("batch_steps").striped(true).show(ui, |ui| {
        for h in [
            "batch",
            "rows",
            "its range",
            "running min-max",
            "moving avg",
            "pct (ORT)",
            "pct (TRT)",
            "KL (TRT)",
            "bins (ORT / TRT)",
            "dropped",
        ] {
            ui.label(RichText::new(h).strong());
        }
        ui.end_row();
        for s in steps {
            let t = thresholds(s);
            ui.label((s.batch + 1).to_string());
            ui.label(s.rows.to_string());
            ui.label(
                s.batch_range
                    .map_or_else(|| "—".into(), |(lo, hi)| format!("[{lo:.3}, {hi:.3}]")),
            );
            for (_, v, _) in t {
                ui.label(fmt(v));
            }
            ui.label(format!(
                "{} / {}",
                s.histogram_onnxruntime.map_or(0, |h| h.bins),
                s.histogram_tensorrt.map_or(0, |h| h.bins)
            ))
            .on_hover_text("Bins grow when a later batch exceeds the first batch's range.");
            ui.label(
                s.histogram_tensorrt
                    .map_or_else(|| "—".into(), |h| h.dropped.to_string()),
            )
            .on_hover_text(
                "Values below the first batch's smallest |x| are never counted (the first edge \
                 is that batch's minimum).",
            );
            ui.end_row();
        }
    });
}

/// The input's per-feature max |x| and each reading weight's per-input-column max |w|, on a log
/// axis: the features that force a large activation scale, and whether the weights are large
/// there too (the picture behind SmoothQuant).
fn channels_plot(ui: &mut Ui, b: &BatchView, height: f32) {
    let act = b.calibration.per_channel.absmax();
    let log = |v: f32| f64::from(v.max(1e-6)).log10();
    // Feature indices are far below 2^53: exact in f64.
    let act_points: Vec<[f64; 2]> = act
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, &v)| [i as f64, log(v)])
        .collect();
    let top = act
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .max_by(|a, b| a.1.total_cmp(b.1));
    if let Some((i, v)) = top {
        ui.label(format!(
            "Largest activation feature: {i} with max |x| = {v:.3}; the median feature's is {:.3}.",
            median(&act)
        ));
    }
    super::labelled_axes(Plot::new("batch_channels"))
        .height(height)
        .legend(Legend::default())
        .allow_scroll(false)
        .x_axis_label("feature (input column)")
        .y_axis_label("log10 max |value|")
        .show(ui, |p| {
            p.line(
                Line::new(
                    "activation: max |x| per feature",
                    PlotPoints::from(act_points),
                )
                .color(Color32::from_rgb(240, 140, 50)),
            );
            for (name, cols) in &b.weight_columns {
                let pts: Vec<[f64; 2]> = cols
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| [i as f64, log(v)])
                    .collect();
                p.line(
                    Line::new(
                        format!("{name}: max |w| per input column (its int8 scale is that / 127)"),
                        PlotPoints::from(pts),
                    )
                    .color(Color32::from_rgb(60, 120, 210)),
                );
            }
        });
    if b.weight_columns.is_empty() {
        ui.label(
            RichText::new("No weight reading this input is in the model, so only the activation ranges are shown.")
                .weak(),
        );
    }
}

/// The median of the finite values (NaN when none).
fn median(values: &[f32]) -> f32 {
    let mut v: Vec<f32> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f32::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f32::NAN)
}
