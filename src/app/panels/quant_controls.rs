//! The quantization controls: bits, scheme, granularity, calibration, preset, rounding and
//! outliers, editing the core's own [`QuantConfig`] (the CLI's settings model), each with a
//! tooltip saying what the term means and which lesson teaches it.

use egui::{RichText, Ui};

use super::super::settings::Remembered;
use super::super::state::{AppState, ClipRange, Command};
use crate::quant::{
    Calibration, Granularity, OutlierMode, OutlierThreshold, Preset, QuantConfig, Rounding, Scheme,
};

/// The calibrators the controls offer, with their labels.
pub fn calibration_label(c: &Calibration) -> &'static str {
    match c {
        Calibration::MinMax => "min-max",
        Calibration::Percentile(_) => "percentile",
        Calibration::Entropy => "entropy (KL)",
        Calibration::Mse => "MSE",
        Calibration::Manual { .. } => "manual",
    }
}

fn granularity_label(g: Granularity) -> &'static str {
    match g {
        Granularity::PerTensor => "per tensor",
        Granularity::PerChannel { .. } => "per channel",
        Granularity::PerGroup { .. } => "per group",
    }
}

fn rounding_label(r: Option<Rounding>) -> &'static str {
    match r {
        None => "preset's",
        Some(Rounding::HalfEven) => "half to even",
        Some(Rounding::HalfAway) => "half away from 0",
        Some(Rounding::HalfUp) => "half up",
    }
}

fn outliers_label(o: OutlierMode) -> &'static str {
    match o {
        OutlierMode::None => "none",
        OutlierMode::Elements => "elements",
        OutlierMode::Columns => "columns",
    }
}

/// Draws the controls for the selected tensor (with `ndim` axes); returns `SetQuant` /
/// `SetClip` commands.
pub fn controls_ui(ui: &mut Ui, state: &AppState, ndim: usize) -> Vec<Command> {
    let mut out = Vec::new();
    let current = &state.settings.quant;
    let remembered = &state.settings.remembered;
    let mut n = current.clone();
    egui::Grid::new("quant_controls")
        .num_columns(2)
        .spacing([8.0, 6.0])
        .show(ui, |ui| {
            bits_row(ui, &mut n);
            scheme_row(ui, &mut n);
            granularity_row(ui, &mut n, remembered, ndim);
            calibration_row(ui, &mut n, remembered);
            preset_row(ui, &mut n);
            rounding_row(ui, &mut n);
            outliers_row(ui, &mut n);
            clip_row(ui, state.clip, &mut out);
        });
    if n != *current {
        out.push(Command::SetQuant(n));
    }
    out
}

fn bits_row(ui: &mut Ui, n: &mut QuantConfig) {
    ui.label("Bits")
        .on_hover_text("Lesson 3: what quantization is.");
    let mut bits = i32::from(n.bits);
    ui.add(egui::Slider::new(&mut bits, 2..=8)).on_hover_text(
        "Width of each integer code: 2^bits levels (int8 = 8). Each extra bit adds about 6 dB \
         of SQNR. Lesson 3 teaches it.",
    );
    // The slider keeps the value in 2..=8.
    n.bits = u8::try_from(bits).unwrap_or(8);
    ui.end_row();
}

fn scheme_row(ui: &mut Ui, n: &mut QuantConfig) {
    ui.label("Scheme");
    ui.horizontal(|ui| {
        ui.radio_value(&mut n.scheme, Scheme::Symmetric, "symmetric")
            .on_hover_text(
                "Zero point 0; the range is [-absmax, absmax] (signed codes). Lesson 9.",
            );
        ui.radio_value(&mut n.scheme, Scheme::Asymmetric, "asymmetric")
            .on_hover_text(
                "A zero point shifts the grid so [min, max] uses every code (unsigned codes). \
                 Lesson 10.",
            );
    });
    ui.end_row();
}

fn granularity_row(ui: &mut Ui, n: &mut QuantConfig, remembered: &Remembered, ndim: usize) {
    ui.label("Granularity");
    ui.horizontal(|ui| {
        let channel = Granularity::PerChannel {
            axis: remembered.axis.min(ndim.saturating_sub(1)),
        };
        let group = Granularity::PerGroup {
            size: remembered.group_size,
        };
        egui::ComboBox::from_id_salt("granularity")
            .selected_text(granularity_label(n.granularity))
            .show_ui(ui, |ui| {
                for (g, label) in [
                    (Granularity::PerTensor, "per tensor"),
                    (channel, "per channel"),
                    (group, "per group"),
                ] {
                    let selected =
                        std::mem::discriminant(&n.granularity) == std::mem::discriminant(&g);
                    if ui.selectable_label(selected, label).clicked() && !selected {
                        n.granularity = g;
                    }
                }
            })
            .response
            .on_hover_text(
                "Which weights share one scale: the whole tensor, each channel along an axis, or \
                 each group of G consecutive weights of a row. Lesson 4 (one scale per group).",
            );
        match &mut n.granularity {
            Granularity::PerTensor => {}
            Granularity::PerChannel { axis } => {
                ui.label("axis");
                ui.add(egui::DragValue::new(axis).range(0..=ndim.saturating_sub(1)))
                    .on_hover_text(
                        "The channel axis: 0 is the output channel of a Linear/Conv weight \
                         [out, in].",
                    );
            }
            Granularity::PerGroup { size } => {
                ui.label("G");
                egui::ComboBox::from_id_salt("group_size")
                    .width(60.0)
                    .selected_text(size.to_string())
                    .show_ui(ui, |ui| {
                        for g in [16, 32, 64, 128, 256] {
                            ui.selectable_value(size, g, g.to_string());
                        }
                    })
                    .response
                    .on_hover_text(
                        "Group size along the last axis (GPTQ/AWQ use 128; llama.cpp Q8_0 uses \
                         32).",
                    );
            }
        }
    });
    ui.end_row();
}

fn calibration_row(ui: &mut Ui, n: &mut QuantConfig, remembered: &Remembered) {
    ui.label("Calibration");
    ui.horizontal(|ui| {
        let p = match n.calibration {
            Calibration::Percentile(p) => p,
            _ => remembered.percentile,
        };
        egui::ComboBox::from_id_salt("calibration")
            .selected_text(calibration_label(&n.calibration))
            .show_ui(ui, |ui| {
                for c in [
                    Calibration::MinMax,
                    Calibration::Percentile(p),
                    Calibration::Entropy,
                    Calibration::Mse,
                ] {
                    let selected =
                        std::mem::discriminant(&n.calibration) == std::mem::discriminant(&c);
                    if ui
                        .selectable_label(selected, calibration_label(&c))
                        .clicked()
                        && !selected
                    {
                        n.calibration = c;
                    }
                }
            })
            .response
            .on_hover_text(
                "How the clip range is chosen: min-max (lesson 6), a percentile (lesson 7), \
                 TensorRT's KL-divergence threshold (lesson 8), or the range with the least \
                 MSE.",
            );
        if let Calibration::Percentile(p) = &mut n.calibration {
            ui.add(
                egui::DragValue::new(p)
                    .range(50.0..=100.0)
                    .speed(0.01)
                    .max_decimals(4)
                    .suffix(" %"),
            )
            .on_hover_text(
                "p: clip to the p-th percentile (and 100 − p below; |x| when symmetric). \
                 Lesson 7.",
            );
        }
    });
    ui.end_row();
}

fn preset_row(ui: &mut Ui, n: &mut QuantConfig) {
    ui.label("Preset");
    egui::ComboBox::from_id_salt("preset")
        .selected_text(n.preset.name())
        .show_ui(ui, |ui| {
            for p in Preset::ALL {
                ui.selectable_value(&mut n.preset, p, p.name());
            }
        })
        .response
        .on_hover_text(
            "Whose conventions to follow: tie rule, divide vs multiply by 1/S, symmetric code \
             range, degenerate ranges. Lessons 9 and 10 show where libraries differ.",
        );
    ui.end_row();
}

fn rounding_row(ui: &mut Ui, n: &mut QuantConfig) {
    ui.label("Rounding");
    egui::ComboBox::from_id_salt("rounding")
        .selected_text(rounding_label(n.rounding))
        .show_ui(ui, |ui| {
            for r in [
                None,
                Some(Rounding::HalfEven),
                Some(Rounding::HalfAway),
                Some(Rounding::HalfUp),
            ] {
                ui.selectable_value(&mut n.rounding, r, rounding_label(r));
            }
        })
        .response
        .on_hover_text(
            "How x/S exactly halfway between two codes is rounded; 'preset's' uses the preset's \
             rule. Ties change codes, not accuracy (lesson 10).",
        );
    ui.end_row();
}

fn outliers_row(ui: &mut Ui, n: &mut QuantConfig) {
    ui.label("Outliers");
    ui.horizontal(|ui| {
        egui::ComboBox::from_id_salt("outliers")
            .selected_text(outliers_label(n.outliers))
            .show_ui(ui, |ui| {
                for o in [
                    OutlierMode::None,
                    OutlierMode::Elements,
                    OutlierMode::Columns,
                ] {
                    ui.selectable_value(&mut n.outliers, o, outliers_label(o));
                }
            })
            .response
            .on_hover_text(
                "Keep large values in FP16: single elements, or whole input columns holding one \
                 (LLM.int8()). Lesson 5.",
            );
        let (mut tau, mut in_std) = match n.outlier_threshold {
            OutlierThreshold::Absolute(t) => (t, false),
            OutlierThreshold::StdMultiple(k) => (k, true),
        };
        ui.label("τ");
        ui.add(
            egui::DragValue::new(&mut tau)
                .range(0.01..=1.0e6)
                .speed(0.05),
        )
        .on_hover_text(
            "The outlier threshold τ: |x| ≥ τ, or with × std, |x − mean| ≥ τ · std (a z-score). \
             The browser's outlier column counts with it even when the split is off.",
        );
        ui.checkbox(&mut in_std, "× std").on_hover_text(
            "On: τ is a number of standard deviations from the mean. Off: τ is an absolute value.",
        );
        n.outlier_threshold = if in_std {
            OutlierThreshold::StdMultiple(tau)
        } else {
            OutlierThreshold::Absolute(tau)
        };
    });
    ui.end_row();
}

fn clip_row(ui: &mut Ui, clip: Option<ClipRange>, out: &mut Vec<Command>) {
    ui.label("Clip range");
    ui.horizontal(|ui| match clip {
        Some(ClipRange { lo, hi }) => {
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
            ui.label(RichText::new("calibrated").weak()).on_hover_text(
                "Drag the yellow edges in the histogram to set the range by hand (per-tensor \
                 granularity).",
            );
        }
    });
    ui.end_row();
}
