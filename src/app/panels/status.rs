//! The status bar: error messages (each dismissable), the transient status line, whether
//! background work is running, and the frame time.

use egui::{RichText, Ui};

use super::super::derived::FrameView;
use super::super::state::{AppState, Command};

/// Draws the status bar; `frame_cpu_ms` is the last frame's CPU time (eframe only).
pub fn status_ui(
    ui: &mut Ui,
    state: &AppState,
    view: &FrameView,
    frame_cpu_ms: Option<f32>,
) -> Vec<Command> {
    let mut out = Vec::new();
    for (i, e) in state.errors.iter().enumerate() {
        ui.horizontal(|ui| {
            ui.label(RichText::new(format!("Error: {e}")).color(ui.visuals().error_fg_color));
            if ui
                .small_button("dismiss")
                .on_hover_text("Dismiss this message.")
                .clicked()
            {
                out.push(Command::DismissError(i));
            }
        });
    }
    ui.horizontal(|ui| {
        if view.stats_busy || view.hist.is_pending() {
            ui.spinner();
            ui.label("computing…");
        }
        if let Some(s) = &state.status {
            ui.label(s);
        }
        if let Some(ms) = frame_cpu_ms.filter(|_| state.show_timings) {
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.label(RichText::new(format!("frame {ms:.1} ms")).weak())
                    .on_hover_text("CPU time of the last frame (heavy work runs on the job pool).");
            });
        }
    });
    out
}
