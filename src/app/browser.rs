//! The tensor browser: a tree grouped by name prefix (layers), a filter, dtype / shape / size,
//! and sortable statistics columns once they are computed.

use std::collections::BTreeSet;

use egui::{RichText, Ui};
use egui_extras::{Column, TableBuilder};

use super::Command;

/// One tensor as the browser shows it (prepared by the app each frame: O(tensor count)).
#[derive(Debug, Clone, PartialEq)]
pub struct BrowserRow {
    /// Index in the model.
    pub index: usize,
    /// Full name.
    pub name: String,
    /// Stored dtype.
    pub dtype: String,
    /// Shape, e.g. "4096×4096".
    pub shape: String,
    /// Stored size in bytes.
    pub size_bytes: u64,
    /// max |x| over finite values, once computed.
    pub absmax: Option<f64>,
    /// Standard deviation, once computed.
    pub std: Option<f64>,
    /// Values with |x| >= the outlier threshold, once computed.
    pub outliers: Option<u64>,
    /// SQNR in dB under the current settings, once computed.
    pub sqnr_db: Option<f64>,
}

/// The columns one can sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    /// File order (the tree).
    File,
    /// Name.
    Name,
    /// Stored size.
    Size,
    /// max |x|.
    Absmax,
    /// Standard deviation.
    Std,
    /// Outlier count.
    Outliers,
    /// SQNR under the current settings.
    Sqnr,
}

impl SortColumn {
    /// Whether this column needs the statistics of every tensor.
    pub fn needs_stats(self) -> bool {
        matches!(self, Self::Absmax | Self::Std | Self::Outliers | Self::Sqnr)
    }
}

/// The browser's own state.
#[derive(Debug, Clone, PartialEq)]
pub struct BrowserState {
    /// Substring filter (case-insensitive) on tensor names.
    pub filter: String,
    /// Sort column and direction (true = ascending).
    pub sort: (SortColumn, bool),
    /// Collapsed group prefixes.
    pub collapsed: BTreeSet<String>,
    /// Set to focus the filter box on the next frame (/ or Ctrl+F).
    pub focus_filter: bool,
    /// Set to scroll the selected row into view on the next frame (arrow keys).
    pub scroll_to_selected: bool,
}

impl Default for BrowserState {
    fn default() -> Self {
        Self {
            filter: String::new(),
            sort: (SortColumn::File, true),
            collapsed: BTreeSet::new(),
            focus_filter: false,
            scroll_to_selected: false,
        }
    }
}

/// The group a tensor name belongs to: up to and including the first numeric component
/// ("layers.0.mlp.up_proj.weight" → "layers.0"), else the first component.
pub fn group_of(name: &str) -> &str {
    let mut end = 0;
    for (i, part) in name.split('.').enumerate() {
        end += part.len() + usize::from(i > 0);
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            return name.get(..end).unwrap_or(name);
        }
    }
    name.split('.').next().unwrap_or(name)
}

/// Human-readable byte size.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    // Display only: precision loss beyond 2^53 bytes is irrelevant.
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// An entry of the visible list: a group header or a tensor row.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A group header with its tensor count.
    Group(String, usize),
    /// A tensor (index into the rows slice), indented when under a group header.
    Tensor(usize, bool),
}

/// The visible entries for the current filter and sort: a tree in file order, or a flat sorted
/// list when filtering or sorting by a column.
pub fn visible_entries(rows: &[BrowserRow], state: &BrowserState) -> Vec<Entry> {
    let needle = state.filter.to_lowercase();
    let mut matching: Vec<usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| needle.is_empty() || r.name.to_lowercase().contains(&needle))
        .map(|(i, _)| i)
        .collect();
    let (column, ascending) = state.sort;
    if column == SortColumn::File && needle.is_empty() {
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(first) = rows.get(i) {
            let group = group_of(&first.name).to_string();
            let members: Vec<usize> = (i..rows.len())
                .take_while(|&j| rows.get(j).is_some_and(|r| group_of(&r.name) == group))
                .collect();
            i += members.len().max(1);
            if members.len() == 1 {
                out.extend(members.into_iter().map(|m| Entry::Tensor(m, false)));
                continue;
            }
            let collapsed = state.collapsed.contains(&group);
            out.push(Entry::Group(group, members.len()));
            if !collapsed {
                out.extend(members.into_iter().map(|m| Entry::Tensor(m, true)));
            }
        }
        return out;
    }
    let key = |r: &BrowserRow| -> Option<f64> {
        match column {
            SortColumn::File | SortColumn::Name => None,
            // Display ordering only.
            SortColumn::Size => Some(r.size_bytes as f64),
            SortColumn::Absmax => r.absmax,
            SortColumn::Std => r.std,
            SortColumn::Outliers => r.outliers.map(|o| o as f64),
            SortColumn::Sqnr => r.sqnr_db,
        }
    };
    match column {
        SortColumn::File => {}
        SortColumn::Name => matching.sort_by(|&a, &b| rows[a].name.cmp(&rows[b].name)),
        _ => matching.sort_by(|&a, &b| {
            // Uncomputed values sort last in either direction.
            match (key(&rows[a]), key(&rows[b])) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => a.cmp(&b),
            }
        }),
    }
    if !ascending {
        // Reverse only the computed part so missing values stay at the end.
        let computed = matching
            .iter()
            .take_while(|&&i| column == SortColumn::Name || key(&rows[i]).is_some())
            .count();
        matching[..computed].reverse();
    }
    matching
        .into_iter()
        .map(|m| Entry::Tensor(m, false))
        .collect()
}

/// Draws the browser. `selected` is the selected tensor index. Returns the commands.
pub fn browser_ui(
    ui: &mut Ui,
    rows: &[BrowserRow],
    state: &BrowserState,
    selected: Option<usize>,
    busy: bool,
) -> Vec<Command> {
    let mut out = Vec::new();
    ui.horizontal(|ui| {
        let mut filter = state.filter.clone();
        let label = ui.label("Filter");
        let r = ui
            .add(
                egui::TextEdit::singleline(&mut filter)
                    .hint_text("name contains…  ( / )")
                    .desired_width(ui.available_width() - 70.0),
            )
            .labelled_by(label.id);
        if state.focus_filter {
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
            .on_hover_text("Compute the statistics columns (absmax, std, outliers, SQNR under the current settings) for every tensor.")
            .clicked()
        {
            out.push(Command::ComputeAllStats);
        }
    });
    ui.horizontal(|ui| {
        ui.label(RichText::new(format!("{} tensors", rows.len())).weak());
        if state.sort.0 != SortColumn::File
            && ui
                .small_button("tree")
                .on_hover_text("Back to the tree in file order.")
                .clicked()
        {
            out.push(Command::SetSort(SortColumn::File, true));
        }
        if busy {
            ui.spinner();
        }
    });
    let entries = visible_entries(rows, state);
    let scroll_row = if state.scroll_to_selected {
        entries.iter().position(
            |e| matches!(e, Entry::Tensor(i, _) if rows.get(*i).map(|r| r.index) == selected),
        )
    } else {
        None
    };
    let header = |ui: &mut Ui,
                  label: &str,
                  column: SortColumn,
                  tip: &str,
                  out: &mut Vec<Command>| {
        let (current, ascending) = state.sort;
        let arrow = if current == column {
            if ascending { " ↑" } else { " ↓" }
        } else {
            ""
        };
        if ui
            .add(egui::Button::new(RichText::new(format!("{label}{arrow}")).strong()).frame(false))
            .on_hover_text(tip)
            .clicked()
        {
            let next = if current == column {
                if column == SortColumn::File {
                    (SortColumn::File, true)
                } else {
                    (column, !ascending)
                }
            } else {
                (
                    column,
                    column != SortColumn::Sqnr && column != SortColumn::File,
                )
            };
            out.push(Command::SetSort(next.0, next.1));
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
            .column(Column::initial(170.0).at_least(90.0).clip(true))
            .column(Column::auto().at_least(40.0))
            .column(Column::auto().at_least(60.0))
            .column(Column::auto().at_least(50.0))
            .column(Column::auto().at_least(50.0))
            .column(Column::auto().at_least(50.0))
            .column(Column::auto().at_least(40.0))
            .column(Column::remainder().at_least(50.0));
        if let Some(r) = scroll_row {
            table = table.scroll_to_row(r, Some(egui::Align::Center));
            out.push(Command::ScrolledToSelected);
        }
        table
            .header(20.0, |mut h| {
                h.col(|ui| header(ui, "name", SortColumn::Name, "Sort by name; click again to reverse. 'tree' goes back to file order.", &mut out));
                h.col(|ui| {
                    ui.label(RichText::new("dtype").strong());
                });
                h.col(|ui| {
                    ui.label(RichText::new("shape").strong());
                });
                h.col(|ui| header(ui, "size", SortColumn::Size, "Sort by stored size.", &mut out));
                h.col(|ui| header(ui, "absmax", SortColumn::Absmax, "Sort by max |x| (computes it for every tensor).", &mut out));
                h.col(|ui| header(ui, "std", SortColumn::Std, "Sort by standard deviation.", &mut out));
                h.col(|ui| header(ui, "outl.", SortColumn::Outliers, "Sort by the number of values with |x| at or above the outlier threshold of the quantization settings.", &mut out));
                h.col(|ui| header(ui, "SQNR dB", SortColumn::Sqnr, "Sort by the signal-to-quantization-noise ratio under the current settings (worst first).", &mut out));
            })
            .body(|body| {
                body.rows(20.0, entries.len(), |mut row| {
                    let Some(entry) = entries.get(row.index()) else {
                        return;
                    };
                    match entry {
                        Entry::Group(name, count) => {
                            let collapsed = state.collapsed.contains(name);
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
                        Entry::Tensor(i, indented) => {
                            let Some(r) = rows.get(*i) else {
                                return;
                            };
                            row.set_selected(selected == Some(r.index));
                            let group = group_of(&r.name);
                            let short = if *indented {
                                format!("   {}", r.name.get(group.len() + 1..).unwrap_or(&r.name))
                            } else {
                                r.name.clone()
                            };
                            let mut label_clicked = false;
                            row.col(|ui| {
                                label_clicked = ui
                                    .add(
                                        egui::Label::new(short)
                                            .truncate()
                                            .selectable(false)
                                            .sense(egui::Sense::click()),
                                    )
                                    .on_hover_text(&r.name)
                                    .clicked();
                            });
                            row.col(|ui| {
                                ui.label(&r.dtype);
                            });
                            row.col(|ui| {
                                ui.label(&r.shape);
                            });
                            row.col(|ui| {
                                ui.label(format_bytes(r.size_bytes));
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
                    }
                });
            });
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(index: usize, name: &str, absmax: Option<f64>) -> BrowserRow {
        BrowserRow {
            index,
            name: name.into(),
            dtype: "F32".into(),
            shape: "2".into(),
            size_bytes: 8,
            absmax,
            std: None,
            outliers: None,
            sqnr_db: None,
        }
    }

    #[test]
    fn groups_end_at_the_first_numeric_component() {
        assert_eq!(group_of("layers.0.mlp.up_proj.weight"), "layers.0");
        assert_eq!(
            group_of("encoder.layer.11.attention.self.query.weight"),
            "encoder.layer.11"
        );
        assert_eq!(group_of("embeddings.word_embeddings.weight"), "embeddings");
        assert_eq!(group_of("bias"), "bias");
    }

    #[test]
    fn tree_groups_and_collapses() {
        let rows = vec![
            row(0, "embed.weight", None),
            row(1, "layers.0.a", None),
            row(2, "layers.0.b", None),
            row(3, "head", None),
        ];
        let mut state = BrowserState::default();
        assert_eq!(
            visible_entries(&rows, &state),
            vec![
                Entry::Tensor(0, false),
                Entry::Group("layers.0".into(), 2),
                Entry::Tensor(1, true),
                Entry::Tensor(2, true),
                Entry::Tensor(3, false),
            ]
        );
        state.collapsed.insert("layers.0".into());
        assert_eq!(visible_entries(&rows, &state).len(), 3);
    }

    #[test]
    fn filter_and_sort_give_a_flat_list_with_missing_values_last() {
        let rows = vec![
            row(0, "a.x", Some(2.0)),
            row(1, "b.x", None),
            row(2, "c.x", Some(5.0)),
            row(3, "d.y", Some(1.0)),
        ];
        let mut state = BrowserState {
            sort: (SortColumn::Absmax, false),
            ..BrowserState::default()
        };
        assert_eq!(
            visible_entries(&rows, &state),
            vec![
                Entry::Tensor(2, false),
                Entry::Tensor(0, false),
                Entry::Tensor(3, false),
                Entry::Tensor(1, false)
            ]
        );
        state.sort = (SortColumn::Absmax, true);
        state.filter = "X".into();
        assert_eq!(
            visible_entries(&rows, &state),
            vec![
                Entry::Tensor(0, false),
                Entry::Tensor(2, false),
                Entry::Tensor(1, false)
            ]
        );
    }

    #[test]
    fn bytes_are_human_readable() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(64 * 1024 * 1024), "64.0 MiB");
    }
}
