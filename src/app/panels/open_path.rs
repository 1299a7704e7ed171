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
    let title = if open.for_compare {
        "Compare with path"
    } else {
        "Open path"
    };
    egui::Window::new(title)
        .collapsible(false)
        .resizable(false)
        .open(&mut keep_open)
        .anchor(egui::Align2::CENTER_TOP, [0.0, 80.0])
        .show(ui.ctx(), |ui| {
            if let Some(note) = &open.note {
                ui.label(RichText::new(note).color(ui.visuals().warn_fg_color));
            }
            ui.label(if open.for_compare {
                "The quantized file to compare with the open model (a .gguf, or an FP8 / F16 .safetensors):"
            } else {
                "A .safetensors, .gguf, .npy or .npz file, a model.safetensors.index.json, or a folder of shards:"
            });
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
                let verb = if open.for_compare { "Compare" } else { "Open" };
                let go = ui
                    .add_enabled(!text.trim().is_empty(), egui::Button::new(verb))
                    .clicked();
                if (go || entered) && !text.trim().is_empty() {
                    let paths = vec![text.trim().into()];
                    out.push(if open.for_compare {
                        Command::Compare(crate::app::pairing::CompareCommand::Start(paths))
                    } else {
                        Command::Open(paths)
                    });
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
