//! The lower half of the tensor view: the tab strip (Error, Heatmap, Bit layout) with its PNG
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
        ] {
            if ui
                .selectable_label(state.tab == tab, label)
                .on_hover_text(tip)
                .clicked()
            {
                out.push(Command::SetTab(tab));
            }
        }
        if state.tab != Tab::Bits {
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                save_png = ui
                    .small_button("PNG")
                    .on_hover_text("Save the plots of this tab as a PNG in the export folder.")
                    .clicked();
            });
        }
    });
    let rect = ui.available_rect_before_wrap();
    if save_png {
        let name = if state.tab == Tab::Heatmap {
            "heatmap"
        } else {
            "error"
        };
        out.push(Command::SavePlot {
            name: name.into(),
            rect,
        });
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
            None => {
                ui.spinner();
            }
        },
        Tab::Heatmap => out.extend(super::heatmap::heatmaps_ui(ui, state, view, textures)),
    }
    out
}
