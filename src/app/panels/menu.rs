//! The menu bar: File (open, demo, recent), View (theme), the Lessons toggle, Help (keyboard
//! shortcuts and mouse actions), and the open model's name.

use egui::{RichText, Ui};

use super::super::derived::FrameView;
use super::super::pairing::CompareCommand;
use super::super::settings::Theme;
use super::super::state::{AppState, Command};

/// Every keyboard shortcut and mouse action, as Help lists them.
pub const SHORTCUTS: [(&str, &str); 9] = [
    ("Ctrl+O", "open model files"),
    ("/ or Ctrl+F", "search tensor names"),
    ("Esc (in the filter)", "clear the filter"),
    ("↑ / ↓", "previous / next tensor in the browser"),
    ("drop files", "open them (several shards open as one model)"),
    ("click a histogram bar", "pick a real weight from that bin"),
    (
        "drag a yellow edge",
        "set the clip range by hand (per tensor)",
    ),
    ("right-drag a box", "zoom a plot; double-click resets"),
    ("click a heatmap cell", "pick that weight"),
];

/// Draws the menu bar; returns the commands.
pub fn menu_ui(ui: &mut Ui, state: &AppState, view: &FrameView) -> Vec<Command> {
    let mut out = Vec::new();
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| {
            if ui
                .add(egui::Button::new("Open…").shortcut_text("Ctrl+O"))
                .on_hover_text("Open a .safetensors, sharded index, .gguf, .npy or .npz file.")
                .clicked()
            {
                out.push(Command::OpenDialog);
            }
            if ui
                .button("Open path…")
                .on_hover_text("Type the path of a model file, an index or a folder.")
                .clicked()
            {
                out.push(Command::ShowOpenPath(None));
            }
            if ui
                .add_enabled(state.model.is_some(), egui::Button::new("Compare with…"))
                .on_hover_text(
                    "Compare the open model (the original) with a quantized file of it: a GGUF, \
                     an FP8 or F16 safetensors. Dropping a second file offers the same.",
                )
                .clicked()
            {
                out.push(Command::Compare(CompareCommand::Dialog));
            }
            if ui
                .add_enabled(
                    state.model.is_some(),
                    egui::Button::new("Compare with path…"),
                )
                .on_hover_text("Type the path of the quantized file to compare with.")
                .clicked()
            {
                out.push(Command::Compare(CompareCommand::ShowPath(None)));
            }
            if ui
                .button("Open demo model")
                .on_hover_text("The built-in demo model.")
                .clicked()
            {
                out.push(Command::OpenDemo);
            }
            ui.menu_button("Recent", |ui| {
                if state.settings.recent.is_empty() {
                    ui.label(RichText::new("(none yet)").weak());
                }
                for paths in &state.settings.recent {
                    let label = paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ");
                    if ui.button(label).clicked() {
                        out.push(Command::Open(paths.clone()));
                    }
                }
            });
        });
        ui.menu_button("View", |ui| {
            let dark = state.settings.theme == Theme::Dark;
            if ui.radio(dark, "Dark theme").clicked() {
                out.push(Command::SetTheme(Theme::Dark));
            }
            if ui.radio(!dark, "Light theme").clicked() {
                out.push(Command::SetTheme(Theme::Light));
            }
        });
        if ui
            .selectable_label(state.show_model, "Model")
            .on_hover_text(
                "Plan the whole model: every tensor under every candidate, a recipe under a size \
                 budget, its Pareto fronts and sensitivity.",
            )
            .clicked()
        {
            out.push(Command::ShowModelView(!state.show_model));
        }
        if ui
            .selectable_label(state.show_lessons, "Lessons")
            .on_hover_text(
                "Ten interactive lessons: float formats, scales, calibration, zero points.",
            )
            .clicked()
        {
            out.push(Command::ShowLessons(!state.show_lessons));
        }
        ui.menu_button("Help", |ui| {
            ui.label(RichText::new("Keyboard shortcuts and mouse actions").strong());
            egui::Grid::new("shortcuts").striped(true).show(ui, |ui| {
                for (keys, action) in SHORTCUTS {
                    ui.label(RichText::new(keys).monospace());
                    ui.label(action);
                    ui.end_row();
                }
            });
            ui.label(
                "Every control explains itself on hover and names the lesson that teaches it.",
            );
        });
        ui.separator();
        let title = match (&state.model, &view.opening) {
            (_, Some(label)) => label.clone(),
            (Some(m), None) => m.label(),
            (None, None) => "no model".to_string(),
        };
        ui.label(RichText::new(title).strong());
        if view.opening.is_some() {
            ui.spinner();
        }
    });
    out
}
