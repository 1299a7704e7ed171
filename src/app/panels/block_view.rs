//! The block view of a deployed format: the selected block's stored fields bit by bit (name,
//! bits, encoding, value), its formula, and per element the input value, its code, the
//! reconstructed value and the error; a block number to choose another block.

use egui::{RichText, Ui};

use super::super::derived::FrameView;
use super::super::derived::blocks::BlockView;
use super::super::state::{AppState, Command};
use crate::quant::formats::BlockField;

/// The stored bits of a field, most significant first, in groups of four ("0011 1010").
pub fn bit_string(raw: u64, bits: u32) -> String {
    let bits = bits.clamp(1, 64);
    let mut out = String::with_capacity(bits as usize + bits as usize / 4);
    for i in (0..bits).rev() {
        out.push(if (raw >> i) & 1 == 1 { '1' } else { '0' });
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
    }
    out
}

/// A field's value as the view prints it: every stored field (f16, f32, E8M0, UE4M3, small
/// integers) holds an f32 value, printed in its shortest round-trip form.
pub fn field_value(f: &BlockField) -> String {
    // Exact: each field's value is an f32 (or narrower) value widened to f64.
    let v = f.value as f32;
    if f64::from(v) != f.value || !v.is_finite() {
        super::super::state::short_float(f.value)
    } else if v == 0.0 || (1e-4..1e7).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// A core formula as the app shows it: the app's fonts have no combining circumflex, so x̂
/// is written x' (the app's name for a dequantized value everywhere).
pub fn shown_formula(formula: &str) -> String {
    formula.replace("x\u{302}", "x'")
}

/// One element line of the table: position, flat index, x, code, x', x' − x.
pub fn element_line(b: &BlockView, i: usize) -> Option<String> {
    let x = *b.inputs.get(i)?;
    let code = *b.detail.codes.get(i)?;
    let xh = *b.detail.values.get(i)?;
    Some(format!(
        "{i:>4} {:>9} {x:>+13.6e} {code:>4} {xh:>+13.6e} {:>+10.2e}",
        b.detail.first + i,
        xh - x
    ))
}

/// The header of the element table (aligned with [`element_line`]).
const ELEMENT_HEADER: &str = "   i      flat             x code            x'     x' − x";

/// Draws the block view of the shown quantization; returns the block and element choices.
pub fn block_view_ui(ui: &mut Ui, state: &AppState, view: &FrameView) -> Vec<Command> {
    let mut out = Vec::new();
    let shown = &view.block;
    if let Some(e) = &shown.error {
        ui.colored_label(ui.visuals().error_fg_color, e);
    }
    let Some(b) = shown.value.as_deref() else {
        if shown.is_pending() || view.quant.is_pending() {
            ui.spinner();
        } else if view.quant.error.is_none() {
            ui.label(RichText::new("Choose a format to see its blocks.").weak());
        }
        return out;
    };
    let stale = !shown.current;
    let weak = |t: String| {
        if stale {
            RichText::new(t).weak()
        } else {
            RichText::new(t)
        }
    };
    let d = &b.detail;
    // A per-tensor FP8 tensor is one block with one scale, listed a page at a time.
    let unit = if b.paged { "page" } else { "block" };
    ui.horizontal_wrapped(|ui| {
        let title = if b.paged {
            format!("{} tensor, one scale · page", b.format)
        } else {
            format!("{} block", b.format)
        };
        ui.label(RichText::new(title).strong());
        let mut n = d.block;
        let last = b.blocks.saturating_sub(1);
        let prev = ui
            .add_enabled(n > 0, egui::Button::new("◀").small())
            .on_hover_text(format!("The previous {unit}."))
            .clicked();
        ui.add(egui::DragValue::new(&mut n).range(0..=last))
            .on_hover_text(if b.paged {
                "The page of the listing (the page holding the picked weight)."
            } else {
                "The block number (row-major over rows × blocks per row)."
            });
        let next = ui
            .add_enabled(n < last, egui::Button::new("▶").small())
            .on_hover_text(format!("The next {unit}."))
            .clicked();
        if prev {
            n = n.saturating_sub(1);
        }
        if next {
            n = (n + 1).min(last);
        }
        ui.label(weak(format!(
            "of {} · {} elements each · elements {}…{}",
            b.blocks,
            b.per_block,
            d.first,
            d.first + b.per_block.max(1) - 1
        )));
        if n != d.block {
            out.push(Command::SelectBlock(n));
            // The walk-through follows: the new block's first element is picked.
            out.push(Command::PickElement((n * b.per_block) as u64));
        }
    });
    ui.add(egui::Label::new(weak(shown_formula(&d.formula)).monospace()).wrap());
    // Tables keep one line per row; a narrow column scrolls sideways instead.
    ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Extend);
    // The fields get a bounded height (a K-quant has 18) so the elements stay in view.
    egui::ScrollArea::both()
        .id_salt("block_fields_scroll")
        .max_height((ui.available_height() * 0.4).max(60.0))
        .auto_shrink([false, true])
        .show(ui, |ui| {
            egui::Grid::new("block_fields")
                .num_columns(4)
                .striped(true)
                .show(ui, |ui| {
                    for h in ["field", "bits", "encoding", "value"] {
                        ui.label(RichText::new(h).strong());
                    }
                    ui.end_row();
                    for f in &d.fields {
                        ui.label(RichText::new(&f.name).monospace());
                        ui.label(weak(bit_string(f.raw, f.bits)).monospace())
                            .on_hover_text(format!("{} bits, raw {:#x}", f.bits, f.raw));
                        ui.label(weak(f.encoding.clone()));
                        ui.label(weak(field_value(f)).monospace());
                        ui.end_row();
                    }
                });
        });
    if d.codes.len() < b.per_block {
        ui.label(
            RichText::new(format!(
                "the first {} of the block's {} elements are listed",
                d.codes.len(),
                b.per_block
            ))
            .weak(),
        );
    }
    ui.label(RichText::new(ELEMENT_HEADER).monospace().strong());
    let picked = state.picked.and_then(|p| usize::try_from(p).ok());
    let row_height = ui.text_style_height(&egui::TextStyle::Monospace);
    let mut area = egui::ScrollArea::both()
        .id_salt("block_elements")
        .auto_shrink([false, true]);
    // A newly picked element scrolls into view (a heatmap click may pick any of the block's).
    let seen_id = ui.scope_id().with("block_view_seen_pick");
    let seen: Option<usize> = ui.ctx().data(|m| m.get_temp(seen_id)).flatten();
    // Only once the block holding it is shown (its job may still be running).
    if picked != seen
        && !stale
        && let Some(i) = picked.and_then(|p| b.index_of(p))
    {
        let step = row_height + ui.spacing().item_spacing.y;
        // Row indices of a listed block (at most MAX_LISTED) are exact in f32.
        area = area.vertical_scroll_offset((i as f32 - 2.0).max(0.0) * step);
        ui.ctx().data_mut(|m| m.insert_temp(seen_id, picked));
    }
    area.show_rows(ui, row_height, d.codes.len(), |ui, range| {
        for i in range {
            let Some(line) = element_line(b, i) else {
                continue;
            };
            let flat = d.first + i;
            let is_picked = picked == Some(flat);
            if ui
                .selectable_label(is_picked, weak(line).monospace())
                .on_hover_text("Click to explain this value (Explain this number).")
                .clicked()
                && !is_picked
            {
                // usize to u64 is lossless on every supported target.
                out.push(Command::PickElement(flat as u64));
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_strings_group_by_four_from_the_top() {
        // f16 1.0 = 0x3C00.
        assert_eq!(bit_string(0x3C00, 16), "0011 1100 0000 0000");
        assert_eq!(bit_string(0b101101, 6), "10 1101");
        assert_eq!(bit_string(127, 8), "0111 1111");
    }

    #[test]
    fn field_values_print_as_the_f32_they_are() {
        let field = |value: f64| BlockField {
            name: "d".into(),
            bits: 16,
            raw: 0,
            encoding: "f16".into(),
            value,
        };
        // An f32 value prints in its shortest round-trip form, not its long f64 expansion.
        assert_eq!(
            field_value(&field(f64::from(3.0612946e-4f32))),
            "0.00030612946"
        );
        assert_eq!(field_value(&field(34.0)), "34");
        assert_eq!(field_value(&field(2f64.powi(-20))), "9.536743e-7");
    }
}
