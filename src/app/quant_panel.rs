//! The quantization panel: every control (bits, scheme, granularity, calibration, preset,
//! rounding, outliers) with a tooltip each, the metrics of the current result, and the report
//! export buttons.

use egui::{RichText, Ui};

use super::Command;
use super::engine::QuantView;
use super::qsettings::{
    CalibrationChoice, GranularityChoice, OutlierChoice, PresetChoice, QuantSettings,
    RoundingChoice, SchemeChoice,
};

/// Report export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// One JSON object (the CLI's `quantize --json` keys).
    Json,
    /// A header line and one value line.
    Csv,
}

/// Draws the controls; returns `SetQuant` / `SetClip` commands.
pub fn controls_ui(
    ui: &mut Ui,
    s: &QuantSettings,
    ndim: usize,
    clip: Option<(f32, f32)>,
) -> Vec<Command> {
    let mut out = Vec::new();
    let mut n = s.clone();
    egui::Grid::new("quant_controls")
        .num_columns(2)
        .spacing([8.0, 6.0])
        .show(ui, |ui| {
            ui.label("Bits");
            let mut bits = i32::from(n.bits);
            ui.add(egui::Slider::new(&mut bits, 2..=8))
                .on_hover_text("Width of each integer code: 2^bits levels (int8 = 8).");
            // The slider keeps the value in 2..=8.
            n.bits = u8::try_from(bits).unwrap_or(8);
            ui.end_row();

            ui.label("Scheme");
            ui.horizontal(|ui| {
                ui.radio_value(&mut n.scheme, SchemeChoice::Symmetric, "symmetric")
                    .on_hover_text("Zero point 0; the range is [-absmax, absmax] (signed codes).");
                ui.radio_value(&mut n.scheme, SchemeChoice::Asymmetric, "asymmetric")
                    .on_hover_text("A zero point shifts the grid so [min, max] uses every code (unsigned codes).");
            });
            ui.end_row();

            ui.label("Granularity");
            ui.horizontal(|ui| {
                egui::ComboBox::from_id_salt("granularity")
                    .selected_text(match n.granularity {
                        GranularityChoice::Tensor => "per tensor",
                        GranularityChoice::Channel => "per channel",
                        GranularityChoice::Group => "per group",
                    })
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut n.granularity, GranularityChoice::Tensor, "per tensor");
                        ui.selectable_value(&mut n.granularity, GranularityChoice::Channel, "per channel");
                        ui.selectable_value(&mut n.granularity, GranularityChoice::Group, "per group");
                    })
                    .response
                    .on_hover_text("Which weights share one scale: the whole tensor, each channel along an axis, or each group of G consecutive weights of a row (the seed's vector-wise modes).");
                match n.granularity {
                    GranularityChoice::Tensor => {}
                    GranularityChoice::Channel => {
                        ui.label("axis");
                        ui.add(egui::DragValue::new(&mut n.axis).range(0..=ndim.saturating_sub(1)))
                            .on_hover_text("The channel axis: 0 is the output channel of a Linear/Conv weight [out, in].");
                    }
                    GranularityChoice::Group => {
                        ui.label("G");
                        egui::ComboBox::from_id_salt("group_size")
                            .width(60.0)
                            .selected_text(n.group_size.to_string())
                            .show_ui(ui, |ui| {
                                for g in [16, 32, 64, 128, 256] {
                                    ui.selectable_value(&mut n.group_size, g, g.to_string());
                                }
                            })
                            .response
                            .on_hover_text("Group size along the last axis (GPTQ/AWQ use 128; llama.cpp Q8_0 uses 32).");
                    }
                }
            });
            ui.end_row();

            ui.label("Calibration");
            ui.horizontal(|ui| {
                egui::ComboBox::from_id_salt("calibration")
                    .selected_text(n.calibration.label())
                    .show_ui(ui, |ui| {
                        for c in CalibrationChoice::ALL {
                            ui.selectable_value(&mut n.calibration, c, c.label());
                        }
                    })
                    .response
                    .on_hover_text("How the clip range is chosen: min-max, a percentile, TensorRT's KL-divergence threshold, or the range with the least MSE.");
                if n.calibration == CalibrationChoice::Percentile {
                    ui.add(
                        egui::DragValue::new(&mut n.percentile)
                            .range(50.0..=100.0)
                            .speed(0.01)
                            .max_decimals(4)
                            .suffix(" %"),
                    )
                    .on_hover_text("p: clip to the p-th percentile (and 100 - p below; |x| when symmetric).");
                }
            });
            ui.end_row();

            ui.label("Preset");
            egui::ComboBox::from_id_salt("preset")
                .selected_text(n.preset.label())
                .show_ui(ui, |ui| {
                    for p in PresetChoice::ALL {
                        ui.selectable_value(&mut n.preset, p, p.label());
                    }
                })
                .response
                .on_hover_text("Whose conventions to follow: tie rule, divide vs multiply by 1/S, symmetric code range, degenerate ranges (NUMERICS.md §2).");
            ui.end_row();

            ui.label("Rounding");
            egui::ComboBox::from_id_salt("rounding")
                .selected_text(n.rounding.label())
                .show_ui(ui, |ui| {
                    for r in RoundingChoice::ALL {
                        ui.selectable_value(&mut n.rounding, r, r.label());
                    }
                })
                .response
                .on_hover_text("How x/S exactly halfway between two codes is rounded; 'preset's' uses the preset's rule.");
            ui.end_row();

            ui.label("Outliers");
            ui.horizontal(|ui| {
                egui::ComboBox::from_id_salt("outliers")
                    .selected_text(match n.outliers {
                        OutlierChoice::None => "none",
                        OutlierChoice::Elements => "elements",
                        OutlierChoice::Columns => "columns",
                    })
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut n.outliers, OutlierChoice::None, "none");
                        ui.selectable_value(&mut n.outliers, OutlierChoice::Elements, "elements");
                        ui.selectable_value(&mut n.outliers, OutlierChoice::Columns, "columns");
                    })
                    .response
                    .on_hover_text("Keep large values in FP16: single elements with |x| ≥ τ, or whole input columns holding one (LLM.int8()).");
                if n.outliers != OutlierChoice::None {
                    ui.label("τ");
                    ui.add(egui::DragValue::new(&mut n.outlier_threshold).range(0.01..=1.0e6).speed(0.05))
                        .on_hover_text("The outlier threshold τ.");
                    ui.checkbox(&mut n.threshold_in_std, "× std")
                        .on_hover_text("On: τ is this many standard deviations. Off: τ is an absolute value.");
                }
            });
            ui.end_row();

            ui.label("Clip range");
            ui.horizontal(|ui| match clip {
                Some((lo, hi)) => {
                    ui.label(format!("[{lo:.5}, {hi:.5}] (dragged)"));
                    if ui
                        .small_button("reset")
                        .on_hover_text("Go back to the calibrated clip range.")
                        .clicked()
                    {
                        out.push(Command::SetClip(None));
                    }
                }
                None => {
                    ui.label(RichText::new("calibrated").weak())
                        .on_hover_text("Drag the yellow edges in the histogram to set the range by hand (per-tensor granularity).");
                }
            });
            ui.end_row();
        });
    if n != *s {
        out.push(Command::SetQuant(n));
    }
    out
}

/// Formats a dB value, including the exact-reconstruction infinity.
pub fn format_db(v: f64) -> String {
    if v.is_infinite() && v > 0.0 {
        "∞ (exact)".into()
    } else {
        format!("{v:.2} dB")
    }
}

/// Draws the metrics of `view` (dimmed when stale); returns export commands.
pub fn metrics_ui(ui: &mut Ui, view: &QuantView, stale: bool, show_time: bool) -> Vec<Command> {
    let mut out = Vec::new();
    let m = &view.metrics;
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
            row(ui, "MSE", format!("{:.4e}", m.mse), "Mean squared error over the finite values.");
            row(ui, "SQNR", format_db(m.sqnr_db), "10·log10(Σx² / Σe²): higher is better; +6 dB per extra bit.");
            row(
                ui,
                "cosine",
                m.cosine.map_or_else(|| "n/a".into(), |c| format!("{c:.6}")),
                "Cosine similarity of the original and dequantized tensors.",
            );
            row(ui, "max |e|", format!("{:.4e}", m.max_abs_error), "Largest absolute error.");
            row(ui, "MAE", format!("{:.4e}", m.mae), "Mean absolute error.");
            row(
                ui,
                "clipped",
                format!("{:.4} %  ({})", 100.0 * m.clipped_fraction, m.clipped),
                "Share of values outside the clip range (their codes were clamped).",
            );
            row(
                ui,
                "bits/weight",
                format!("{:.3}", view.bits_per_weight),
                "Effective bits per weight, counting stored scales and zero points (and FP16 outliers).",
            );
            row(
                ui,
                "outliers",
                format!("{} ({:.4} %)", view.outlier_count, 100.0 * view.outlier_fraction),
                "Values kept in FP16 by the outlier split.",
            );
            if let Some(without) = &view.metrics_without_split {
                row(
                    ui,
                    "SQNR w/o split",
                    format_db(without.sqnr_db),
                    "The same settings without the outlier split, for comparison.",
                );
            }
            row(ui, "scale", view.scale_summary.clone(), "The scale S (range per group when not per-tensor).");
            row(ui, "zero point", view.zero_point_summary.clone(), "The zero point z.");
            if show_time {
                row(ui, "time", format!("{:.0} ms", view.elapsed_ms), "Compute time of this result on the job pool.");
            }
        });
    ui.horizontal(|ui| {
        if ui
            .button("Copy JSON")
            .on_hover_text("Copy this tensor's report as JSON (the CLI's quantize --json keys).")
            .clicked()
        {
            out.push(Command::CopyReport(ReportFormat::Json));
        }
        if ui
            .button("Save JSON")
            .on_hover_text("Save the report as a .json file in the export folder.")
            .clicked()
        {
            out.push(Command::SaveReport(ReportFormat::Json));
        }
        if ui
            .button("Save CSV")
            .on_hover_text("Save the report as a .csv file in the export folder.")
            .clicked()
        {
            out.push(Command::SaveReport(ReportFormat::Csv));
        }
    });
    out
}
