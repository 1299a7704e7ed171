//! The metrics of the selected tensor's quantization (MSE, SQNR, cosine, max |e|, clipped, bits
//! per weight, outliers, scale and zero point) and the report export buttons, which go through
//! the CLI's own report ([`TensorReport`]) so the app and `quantize --json` print the same.
//! On a paired tensor the quantized file's own error comes first, labelled as such.

use egui::{RichText, Ui};

use super::super::derived::FrameView;
use super::super::derived::compare::Deployed;
use super::super::derived::results::Quantized;
use super::super::state::{AppState, Command, safe_name};
use crate::report::{JsonDetail, Spread, TensorReport};

/// Formats a dB value, including the exact-reconstruction infinity.
pub fn format_db(v: f64) -> String {
    if v.is_infinite() && v > 0.0 {
        "∞ (exact)".into()
    } else {
        format!("{v:.2} dB")
    }
}

/// "S = 1.234568e-2" for one group, "S in [a, b] (n groups)" for many.
pub fn spread_text(name: &str, values: impl Iterator<Item = f64>, integer: bool) -> String {
    let values: Vec<f64> = values.collect();
    match (Spread::of(values.iter().copied()), values.len(), integer) {
        (None, _, _) => format!("{name}: none"),
        (Some(s), 1, true) => format!("{name} = {}", s.min),
        (Some(s), 1, false) => format!("{name} = {:.6e}", s.min),
        (Some(s), n, true) => format!("{name} in [{}, {}] ({n} groups)", s.min, s.max),
        (Some(s), n, false) => format!("{name} in [{:.4e}, {:.4e}] ({n} groups)", s.min, s.max),
    }
}

/// The quantized file's error on a paired tensor (the comparison's numbers, measured again on
/// the values the error views draw).
fn deployed_metrics_ui(ui: &mut Ui, d: &Deployed) {
    ui.label(
        RichText::new(format!(
            "The quantized file: {} ({})",
            d.quantized_name,
            d.dtype.name()
        ))
        .strong(),
    );
    let m = &d.error.metrics;
    egui::Grid::new("deployed_metrics")
        .num_columns(2)
        .striped(true)
        .show(ui, |ui| {
            let row = |ui: &mut Ui, name: &str, value: String| {
                ui.label(name);
                ui.label(value);
                ui.end_row();
            };
            row(ui, "MSE", format!("{:.4e}", m.mse));
            row(ui, "SQNR", format_db(m.sqnr_db));
            row(
                ui,
                "cosine",
                m.cosine.map_or_else(|| "n/a".into(), |c| format!("{c:.6}")),
            );
            row(ui, "max |e|", format!("{:.4e}", m.max_abs_error));
            row(ui, "MAE", format!("{:.4e}", m.mae));
            row(ui, "rel. MSE", format!("{:.4e}", d.error.rel_mse));
        });
}

/// The report of the shown quantization, as the CLI builds it.
pub fn report_of(view: &FrameView, q: &Quantized) -> Option<TensorReport> {
    let (_, info) = view.tensor.as_ref()?;
    Some(TensorReport::new(
        &info.name,
        info.dtype.name(),
        &q.config,
        &q.result,
        q.elapsed_ms,
        q.decode_ms,
    ))
}

/// The report as JSON (the keys and values of `quantscope quantize --json`, one object).
pub fn report_json(report: &TensorReport) -> String {
    serde_json::to_string_pretty(&report.to_json(JsonDetail::Summary)).unwrap_or_default()
}

/// The report as CSV (the CLI's header and row).
pub fn report_csv(report: &TensorReport) -> String {
    format!("{}\n{}\n", TensorReport::CSV_HEADER, report.csv_row())
}

/// Draws the metrics of the shown quantization (dimmed while a newer one computes) and the
/// export buttons.
pub fn metrics_ui(ui: &mut Ui, state: &AppState, view: &FrameView) -> Vec<Command> {
    let mut out = Vec::new();
    // A paired tensor: the quantized file's own error first, then what the settings above
    // would do, so the two are never mistaken for each other.
    if let Some(d) = view
        .compare
        .as_ref()
        .and_then(|c| c.deployed.value.as_deref())
    {
        deployed_metrics_ui(ui, d);
        ui.separator();
        ui.label(RichText::new("Simulated with the settings above").strong())
            .on_hover_text(
                "What these settings would do to the original tensor, beside what the quantized                  file did.",
            );
    }
    let shown = &view.quant;
    if shown.is_pending() {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.add(
                egui::ProgressBar::new(shown.progress)
                    .desired_width(160.0)
                    .show_percentage(),
            );
        });
    }
    if let Some(e) = &shown.error {
        ui.colored_label(ui.visuals().error_fg_color, e);
    }
    let Some(q) = shown.value.as_deref() else {
        return out;
    };
    if let Some((_, info)) = &view.tensor
        && info.dtype.is_block()
    {
        ui.label(
            RichText::new(format!(
                "This tensor is stored as {}: the \"original\" here is the file's dequantized \
                 values, not the model's float weights.",
                info.dtype.name()
            ))
            .color(ui.visuals().warn_fg_color),
        );
    }
    let stale = !shown.current;
    let m = &q.result.metrics;
    let weak = |t: String| {
        if stale {
            RichText::new(t).weak()
        } else {
            RichText::new(t)
        }
    };
    egui::Grid::new("quant_metrics")
        .num_columns(2)
        .striped(true)
        .show(ui, |ui| {
            let row = |ui: &mut Ui, name: &str, value: String, tip: &str| {
                ui.label(name).on_hover_text(tip);
                ui.label(weak(value));
                ui.end_row();
            };
            row(
                ui,
                "MSE",
                format!("{:.4e}", m.mse),
                "Mean squared error over the finite values.",
            );
            row(
                ui,
                "SQNR",
                format_db(m.sqnr_db),
                "10·log10(Σx² / Σe²): higher is better; about +6 dB per extra bit.",
            );
            row(
                ui,
                "cosine",
                m.cosine.map_or_else(|| "n/a".into(), |c| format!("{c:.6}")),
                "Cosine similarity of the original and dequantized tensors.",
            );
            row(
                ui,
                "max |e|",
                format!("{:.4e}", m.max_abs_error),
                "Largest absolute error.",
            );
            row(ui, "MAE", format!("{:.4e}", m.mae), "Mean absolute error.");
            if let Some(format) = q.config.format {
                row(
                    ui,
                    "format",
                    format.name().to_string(),
                    "The deployed format: its reference decides every bit. Its scales live in \
                     its blocks (the heatmap tab's block view shows them).",
                );
            }
            let affine = q.config.format.is_none();
            if affine {
                row(
                    ui,
                    "clipped",
                    format!("{:.4} %  ({})", 100.0 * m.clipped_fraction, m.clipped),
                    "Share of values outside the clip range (their codes were clamped).",
                );
            }
            row(
                ui,
                "bits/weight",
                format!("{:.3}", q.result.bits_per_weight),
                "Effective bits per weight, counting stored scales and zero points (and FP16 \
                 outliers).",
            );
            let o = &q.result.outliers;
            row(
                ui,
                "outliers",
                format!(
                    "{} ({:.4} %)",
                    q.outliers,
                    100.0 * fraction(q.outliers, q.values.len())
                ),
                "Values beyond the outlier threshold τ (the browser's count); kept in FP16 only \
                 when the outlier split is on.",
            );
            if let Some(without) = &o.without_split {
                row(
                    ui,
                    "SQNR w/o split",
                    format_db(without.sqnr_db),
                    "The same settings without the outlier split, for comparison.",
                );
            }
            if affine {
                row(
                    ui,
                    "scale",
                    spread_text("S", q.result.scales.iter().map(|&s| f64::from(s)), false),
                    "The scale S (range per group when not per-tensor).",
                );
                row(
                    ui,
                    "zero point",
                    spread_text(
                        "z",
                        q.result.zero_points.iter().map(|&z| f64::from(z)),
                        true,
                    ),
                    "The zero point z.",
                );
            }
            if state.show_timings {
                row(
                    ui,
                    "time",
                    format!("{:.0} ms", q.elapsed_ms),
                    "Compute time of this result on the job pool.",
                );
            }
        });
    let (mut copy, mut save_json, mut save_csv) = (false, false, false);
    ui.horizontal(|ui| {
        copy = ui
            .button("Copy JSON")
            .on_hover_text(
                "Copy this tensor's report as JSON (exactly `quantscope quantize --json`).",
            )
            .clicked();
        save_json = ui
            .button("Save JSON")
            .on_hover_text("Save the report as a .json file in the export folder.")
            .clicked();
        save_csv = ui
            .button("Save CSV")
            .on_hover_text(
                "Save the report as a .csv file in the export folder (the CLI's columns).",
            )
            .clicked();
    });
    // The report is built only when asked for (it copies the per-group parameters).
    if (copy || save_json || save_csv)
        && let Some(report) = report_of(view, q)
    {
        let file = safe_name(&report.name);
        if copy {
            out.push(Command::CopyText {
                text: report_json(&report),
                what: "the report".into(),
            });
        }
        if save_json {
            out.push(Command::SaveText {
                file_name: format!("{file}.report.json"),
                contents: report_json(&report),
            });
        }
        if save_csv {
            out.push(Command::SaveText {
                file_name: format!("{file}.report.csv"),
                contents: report_csv(&report),
            });
        }
    }
    out
}

fn fraction(count: u64, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        // Counts below 2^53 convert exactly.
        count as f64 / n as f64
    }
}
