//! The "Open path" window: a path typed by hand, for desktops without a file dialog (no XDG
//! desktop portal) or for users who prefer it.

use egui::{RichText, Ui};

use super::super::state::{AppState, Command};

/// Draws the window when it is open; returns the commands.
pub fn open_path_ui(ui: &mut Ui, state: &AppState) -> Vec<Command> {
    let mut out = Vec::new();
    let Some(open) = &state.open_path else {
        return out;
    };
    let mut keep_open = true;
    egui::Window::new("Open path")
        .collapsible(false)
        .resizable(false)
        .open(&mut keep_open)
        .anchor(egui::Align2::CENTER_TOP, [0.0, 80.0])
        .show(ui.ctx(), |ui| {
            if let Some(note) = &open.note {
                ui.label(RichText::new(note).color(ui.visuals().warn_fg_color));
            }
            ui.label("A .safetensors, .gguf, .npy or .npz file, a model.safetensors.index.json, or a folder of shards:");
            let mut text = open.text.clone();
            let field = ui.add(
                egui::TextEdit::singleline(&mut text)
                    .desired_width(520.0)
                    .hint_text("/path/to/model.safetensors"),
            );
            if text != open.text {
                out.push(Command::SetOpenPathText(text.clone()));
            }
            let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            ui.horizontal(|ui| {
                let go = ui
                    .add_enabled(!text.trim().is_empty(), egui::Button::new("Open"))
                    .clicked();
                if (go || entered) && !text.trim().is_empty() {
                    out.push(Command::Open(vec![text.trim().into()]));
                    out.push(Command::CloseOpenPath);
                }
                if ui.button("Cancel").clicked() {
                    out.push(Command::CloseOpenPath);
                }
            });
        });
    if !keep_open {
        out.push(Command::CloseOpenPath);
    }
    out
}
