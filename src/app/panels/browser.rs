//! The tensor browser: a tree grouped by layer in natural order, a filter, dtype / shape /
//! size, and sortable statistics columns (absmax, std, outliers, SQNR under the current
//! settings) once they are computed.

use egui::{RichText, Ui};
use egui_extras::{Column, TableBuilder};

use super::super::derived::FrameView;
use super::super::derived::rows::{BrowserRow, Entry, group_of, visible_entries};
use super::super::state::{AppState, Command, Sort, SortColumn};
use crate::report::human_bytes;

/// The tail of `name` that fits in about `chars` characters, with a leading ellipsis: long
/// names differ at their end (…layer.3.attention.self.query.weight).
pub fn name_tail(name: &str, chars: usize) -> String {
    let count = name.chars().count();
    if count <= chars.max(2) {
        return name.to_string();
    }
    let skip = count - chars.max(2) + 1;
    let tail: String = name.chars().skip(skip).collect();
    format!("…{tail}")
}

/// The first numeric component of `name` with the component before it ("layer.3." of
/// "encoder.layer.3.output"), which tells layers apart, and where it starts; None when there is
/// no number.
fn numbered_head(name: &str) -> Option<(usize, &str)> {
    let parts: Vec<&str> = name.split('.').collect();
    let n = parts
        .iter()
        .position(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))?;
    let first = n.saturating_sub(1);
    let start: usize = parts[..first].iter().map(|p| p.len() + 1).sum();
    let end: usize = parts[..=n].iter().map(|p| p.len() + 1).sum();
    Some((start, name.get(start..end.min(name.len()))?))
}

/// `name` fitted into `width` points of the body font: whole when it fits; else its numbered
/// head (which layer) and the longest tail that fits (which tensor), joined by an ellipsis;
/// else just that tail.
fn fitted_name(ui: &Ui, name: &str, width: f32) -> String {
    let font = egui::TextStyle::Body.resolve(ui.style());
    let text_width = |text: &str| {
        ui.fonts_mut(|f| {
            f.layout_no_wrap(text.to_owned(), font.clone(), egui::Color32::WHITE)
                .size()
                .x
        })
    };
    if text_width(name) <= width {
        return name.to_string();
    }
    let (head, rest) = match numbered_head(name) {
        Some((start, head)) => {
            let prefix = if start > 0 { "…" } else { "" };
            (
                format!("{prefix}{head}"),
                name.get(start + head.len()..).unwrap_or(name),
            )
        }
        None => (String::new(), name),
    };
    let room = width - text_width(&head);
    // The longest tail of `rest` (with its ellipsis) fitting in `room`, by binary search.
    let longest_tail = |room: f32| {
        let count = rest.chars().count();
        let (mut lo, mut hi) = (0usize, count);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if text_width(&name_tail(rest, mid)) <= room {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        name_tail(rest, lo.max(1))
    };
    if !head.is_empty() && room > width * 0.4 {
        return format!("{head}{}", longest_tail(room));
    }
    let count = name.chars().count();
    let (mut lo, mut hi) = (1usize, count);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if text_width(&name_tail(name, mid)) <= width {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    name_tail(name, lo)
}

/// The next sort when a column header is clicked.
fn next_sort(current: Sort, column: SortColumn) -> Sort {
    if current.column == column {
        Sort {
            column,
            ascending: column == SortColumn::File || !current.ascending,
        }
    } else {
        // SQNR sorts worst first; the others ascending.
        Sort {
            column,
            ascending: column != SortColumn::Sqnr,
        }
    }
}

/// What the browser says while its columns are being computed: after "Σ all", how many of
/// the float tensors have both their statistics and their error so far.
fn progress_text(rows: &[BrowserRow], all_stats: bool) -> String {
    if !all_stats {
        return "computing…".to_string();
    }
    let floats = rows.iter().filter(|r| r.float).count();
    let done = rows
        .iter()
        .filter(|r| r.float && r.absmax.is_some() && r.sqnr_db.is_some())
        .count();
    format!("computing… {done} of {floats} tensors")
}

/// Draws the browser; returns the commands.
pub fn browser_ui(ui: &mut Ui, state: &AppState, view: &FrameView) -> Vec<Command> {
    let mut out = Vec::new();
    let browser = &state.browser;
    let rows = &view.rows;
    let busy = view.stats_busy;
    ui.horizontal(|ui| {
        let mut filter = browser.filter.clone();
        let label = ui.label("Filter");
        let r = ui
            .add(
                egui::TextEdit::singleline(&mut filter)
                    .hint_text("name contains…  ( / )")
                    .desired_width(ui.available_width() - 70.0),
            )
            .labelled_by(label.id)
            .on_hover_text("Show tensors whose name contains this text (/ or Ctrl+F; Esc clears).");
        if browser.focus_filter {
            r.request_focus();
            out.push(Command::FilterFocused);
        }
        if r.changed() {
            out.push(Command::SetFilter(filter));
        }
        if r.has_focus() && ui.input(|i| i.key_pressed(egui::Key::Escape)) {
            out.push(Command::SetFilter(String::new()));
        }
        if ui
            .add_enabled(!busy, egui::Button::new("Σ all"))
            .on_hover_text(
                "Compute the statistics columns (absmax, std, outliers, SQNR under the current \
                 settings) for every float tensor, and keep them current as settings change.",
            )
            .clicked()
        {
            out.push(Command::ComputeAllStats);
        }
    });
    ui.horizontal(|ui| {
        ui.label(RichText::new(format!("{} tensors", rows.len())).weak());
        if browser.sort.column != SortColumn::File
            && ui
                .small_button("tree")
                .on_hover_text("Back to the tree of layers.")
                .clicked()
        {
            out.push(Command::SetSort(Sort {
                column: SortColumn::File,
                ascending: true,
            }));
        }
        if busy {
            ui.spinner();
            ui.label(RichText::new(progress_text(rows, state.all_stats)).weak());
        }
    });
    let entries = visible_entries(rows, browser);
    let scroll_row = if browser.scroll_to_selected {
        entries.iter().position(|e| {
            matches!(e, Entry::Tensor { row, .. } if rows.get(*row).map(|r| r.index) == state.selected)
        })
    } else {
        None
    };
    let header = |ui: &mut Ui,
                  label: &str,
                  column: SortColumn,
                  tip: &str,
                  out: &mut Vec<Command>| {
        let current = browser.sort;
        let arrow = match (current.column == column, current.ascending) {
            (true, true) => " ↑",
            (true, false) => " ↓",
            (false, _) => "",
        };
        if ui
            .add(egui::Button::new(RichText::new(format!("{label}{arrow}")).strong()).frame(false))
            .on_hover_text(tip)
            .clicked()
        {
            out.push(Command::SetSort(next_sort(current, column)));
        }
    };
    egui::ScrollArea::horizontal()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            let mut table = TableBuilder::new(ui)
                .id_salt("tensor_table")
                .striped(true)
                .resizable(true)
                .sense(egui::Sense::click())
                .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
                .column(Column::initial(175.0).at_least(90.0).clip(true))
                .column(Column::auto().at_least(34.0))
                .column(Column::auto().at_least(50.0))
                .column(Column::auto().at_least(44.0))
                .column(Column::auto().at_least(42.0))
                .column(Column::auto().at_least(42.0))
                .column(Column::auto().at_least(32.0))
                .column(Column::remainder().at_least(44.0));
            if let Some(r) = scroll_row {
                table = table.scroll_to_row(r, Some(egui::Align::Center));
                out.push(Command::ScrolledToSelected);
            }
            table
                .header(20.0, |mut h| {
                    h.col(|ui| {
                        header(ui, "name", SortColumn::Name, "Sort by name (numbers as numbers); click again to reverse. 'tree' goes back to the layers.", &mut out)
                    });
                    h.col(|ui| {
                        ui.label(RichText::new("dtype").strong());
                    });
                    h.col(|ui| {
                        ui.label(RichText::new("shape").strong());
                    });
                    h.col(|ui| header(ui, "size", SortColumn::Size, "Sort by stored size.", &mut out));
                    h.col(|ui| {
                        header(ui, "absmax", SortColumn::Absmax, "Sort by max |x| (computes it for every tensor).", &mut out)
                    });
                    h.col(|ui| header(ui, "std", SortColumn::Std, "Sort by standard deviation.", &mut out));
                    h.col(|ui| {
                        header(ui, "outl.", SortColumn::Outliers, "Sort by the number of outliers under the threshold τ of the quantization settings (|x| ≥ τ, or |x − mean| ≥ τ·std).", &mut out)
                    });
                    h.col(|ui| {
                        header(ui, "SQNR dB", SortColumn::Sqnr, "Sort by the signal-to-quantization-noise ratio under the current settings (worst first).", &mut out)
                    });
                })
                .body(|body| {
                    body.rows(20.0, entries.len(), |mut row| {
                        let Some(entry) = entries.get(row.index()) else {
                            return;
                        };
                        match entry {
                            Entry::Group { name, count } => {
                                let collapsed = browser.collapsed.contains(name);
                                row.col(|ui| {
                                    let icon = if collapsed { "▶" } else { "▼" };
                                    ui.label(RichText::new(format!("{icon} {name}  ({count})")).strong());
                                });
                                for _ in 0..7 {
                                    row.col(|_| {});
                                }
                                if row.response().clicked() {
                                    out.push(Command::ToggleGroup(name.clone()));
                                }
                            }
                            Entry::Tensor { row: i, indented } => {
                                let Some(r) = rows.get(*i) else {
                                    return;
                                };
                                tensor_row_ui(&mut row, r, *indented, state.selected, &mut out);
                            }
                        }
                    });
                });
        });
    out
}

fn tensor_row_ui(
    row: &mut egui_extras::TableRow<'_, '_>,
    r: &BrowserRow,
    indented: bool,
    selected: Option<usize>,
    out: &mut Vec<Command>,
) {
    row.set_selected(selected == Some(r.index));
    let group = group_of(&r.name);
    let name = if indented {
        r.name.get(group.len() + 1..).unwrap_or(&r.name)
    } else {
        &r.name
    };
    let mut label_clicked = false;
    row.col(|ui| {
        // Fit the name's distinguishing end into the column.
        if indented {
            ui.add_space(12.0);
        }
        let shown = fitted_name(ui, name, ui.available_width() - 2.0);
        let mut text = RichText::new(shown);
        if !r.float {
            text = text.weak();
        }
        let response = ui.add(
            egui::Label::new(text)
                .truncate()
                .selectable(false)
                .sense(egui::Sense::click()),
        );
        // Screen readers (and tests) see the full name, whatever the column shows of it.
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, &r.name));
        label_clicked = response
            .on_hover_text(if r.float {
                r.name.clone()
            } else {
                format!("{} (integer tensor: listed, not quantized)", r.name)
            })
            .clicked();
    });
    row.col(|ui| {
        ui.label(&r.dtype);
    });
    row.col(|ui| {
        ui.label(&r.shape);
    });
    row.col(|ui| {
        ui.label(human_bytes(r.size_bytes));
    });
    let opt = |v: Option<f64>, digits: usize| {
        v.map_or_else(|| "·".to_string(), |v| format!("{v:.digits$}"))
    };
    row.col(|ui| {
        ui.label(opt(r.absmax, 3));
    });
    row.col(|ui| {
        ui.label(opt(r.std, 4));
    });
    row.col(|ui| {
        ui.label(r.outliers.map_or_else(|| "·".into(), |o| o.to_string()));
    });
    row.col(|ui| {
        ui.label(opt(r.sqnr_db, 1));
    });
    if row.response().clicked() || label_clicked {
        out.push(Command::Select(r.index));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_keep_their_end() {
        assert_eq!(name_tail("short", 10), "short");
        let shown = name_tail("encoder.layer.3.attention.self.query.weight", 20);
        assert_eq!(shown, "…n.self.query.weight");
        assert_eq!(shown.chars().count(), 20);
    }

    #[test]
    fn the_numbered_head_names_the_layer() {
        assert_eq!(
            numbered_head("encoder.layer.3.intermediate.dense.input"),
            Some((8, "layer.3."))
        );
        assert_eq!(numbered_head("blk.12.attn_q.weight"), Some((0, "blk.12.")));
        assert_eq!(numbered_head("token_embd.weight"), None);
    }

    #[test]
    fn sigma_all_counts_the_float_tensors_done() {
        let row = |float: bool, absmax: Option<f64>, sqnr_db: Option<f64>| BrowserRow {
            index: 0,
            name: "t".into(),
            dtype: if float { "F32" } else { "I64" }.into(),
            shape: "2×2".into(),
            size_bytes: 16,
            float,
            absmax,
            std: absmax,
            outliers: absmax.map(|_| 0),
            sqnr_db,
        };
        let rows = [
            row(true, Some(1.0), Some(40.0)),
            row(true, Some(1.0), None),
            row(true, None, None),
            row(false, None, None),
        ];
        assert_eq!(progress_text(&rows, true), "computing… 1 of 3 tensors");
        assert_eq!(progress_text(&rows, false), "computing…");
    }

    #[test]
    fn header_clicks_toggle_direction_and_sqnr_starts_worst_first() {
        let tree = Sort {
            column: SortColumn::File,
            ascending: true,
        };
        let sqnr = next_sort(tree, SortColumn::Sqnr);
        assert_eq!((sqnr.column, sqnr.ascending), (SortColumn::Sqnr, false));
        assert!(next_sort(sqnr, SortColumn::Sqnr).ascending);
        assert!(next_sort(tree, SortColumn::File).ascending);
    }
}
