//! The lower half of the tensor view: the tab strip (Error, Heatmap, Bit layout, Channels) with its PNG
//! button, and the open tab.

use egui::Ui;

use super::super::derived::FrameView;
use super::super::state::{AppState, Command, Tab};
use super::heatmap::HeatTextures;

/// Draws the tab strip and the open tab; returns the commands.
pub fn tabs_ui(
    ui: &mut Ui,
    state: &AppState,
    view: &FrameView,
    textures: &mut HeatTextures,
) -> Vec<Command> {
    let mut out = Vec::new();
    let mut save_png = false;
    ui.horizontal(|ui| {
        for (tab, label, tip) in [
            (
                Tab::Error,
                "Error",
                "Original vs dequantized distribution and the error histogram.",
            ),
            (
                Tab::Heatmap,
                "Heatmap",
                "|error| and per-group scale over the 2-D view of the tensor.",
            ),
            (
                Tab::Bits,
                "Bit layout",
                "The picked value in FP32, FP16, BF16 and FP8; the tensor's exponents. Lesson 1.",
            ),
            (
                Tab::Channels,
                "Channels",
                "Min and max of every output channel: the channels whose range is much narrower \
                 than the tensor's lose most under one per-tensor scale.",
            ),
            (
                Tab::Batches,
                "Batches",
                "Calibration over this input's batches, one by one, and its per-feature ranges \
                 beside the weights that read it. Lessons 6–8.",
            ),
        ] {
            if tab == Tab::Batches && !view.has_batches {
                continue;
            }
            if ui
                .selectable_label(state.tab == tab, label)
                .on_hover_text(tip)
                .clicked()
            {
                out.push(Command::SetTab(tab));
            }
        }
        if matches!(state.tab, Tab::Error | Tab::Heatmap) {
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                save_png = ui
                    .small_button("Export")
                    .on_hover_text(
                        "Save the plots of this tab as SVG and PNG in the export folder, with \
                         title, settings, axes and legend.",
                    )
                    .clicked();
            });
        }
    });
    if save_png {
        let tensor = view.tensor.as_ref().map_or("", |(_, t)| t.name.as_str());
        let (name, plots) = if state.tab == Tab::Heatmap {
            match crate::app::export::heatmaps(state, view) {
                Ok(p) => ("heatmap", p),
                Err(e) => {
                    out.push(Command::Status(format!("could not export: {e}")));
                    ("heatmap", Vec::new())
                }
            }
        } else {
            ("error", crate::app::export::error_tab(state, view))
        };
        if !plots.is_empty() {
            out.push(Command::Export(Box::new(crate::app::export::Export {
                stem: format!("{name}-{tensor}"),
                plots,
            })));
        }
    }
    if matches!(state.tab, Tab::Error | Tab::Heatmap) {
        super::compare::deployed_note_ui(ui, view);
    }
    match state.tab {
        Tab::Bits => {
            egui::ScrollArea::vertical().show(ui, |ui| {
                out.extend(super::bits::bits_ui(ui, &state.bits, view))
            });
        }
        Tab::Error => match view.detail.value.as_deref() {
            Some(d) => super::error_plots::error_plots_ui(
                ui,
                d,
                !(view.detail.current && view.quant.current),
                state.settings.histogram.log_y,
            ),
            None => match &view.quant.error {
                // Nothing will come: say why instead of spinning.
                Some(e) => {
                    ui.colored_label(ui.visuals().error_fg_color, e);
                }
                None => {
                    ui.spinner();
                }
            },
        },
        Tab::Heatmap => out.extend(super::heatmap::heatmaps_ui(ui, state, view, textures)),
        Tab::Batches if view.has_batches => {
            egui::ScrollArea::vertical().show(ui, |ui| {
                out.extend(super::batches::batches_ui(ui, state, view))
            });
        }
        Tab::Batches => {
            ui.label("This tensor holds no calibration batches.");
        }
        Tab::Channels => match view.channels.value.as_deref() {
            Some(r) => super::channels::channels_ui(ui, r, !view.channels.current),
            None => {
                ui.spinner();
            }
        },
    }
    out
}
