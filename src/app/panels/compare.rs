//! The comparison panel: the prompt a second dropped file raises, the table of every paired
//! tensor (the quantized file's type, true bits per weight, MSE, relative MSE, SQNR, cosine,
//! max |e| and the best candidate at the same bits per weight; sortable by each column), the
//! model totals, the unmatched tensors of both sides and the JSON export (`compare --json`,
//! from the one report); and the deployed-error parts of the shared views (the note above the
//! error tabs, "explain this number" on a stored value).

use std::cmp::Ordering;
use std::path::PathBuf;

use egui::{Color32, RichText, Ui};
use egui_extras::{Column, TableBuilder};

use super::super::derived::FrameView;
use super::super::derived::compare::{Candidate, CompareView, Paired};
use super::super::pairing::{CompareColumn, CompareCommand, CompareSort};
use super::super::state::{AppState, Command, safe_name};
use crate::plan::compare::TensorComparison;

/// The name a path is shown by (its file name, else the whole path).
fn file_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    )
}

/// The prompt "Compare X with the open model?" for files dropped while a model is open.
pub fn offer_ui(ui: &mut Ui, state: &AppState) -> Vec<Command> {
    let mut out = Vec::new();
    let Some(paths) = &state.compare.offer else {
        return out;
    };
    let names = paths
        .iter()
        .map(|p| file_name(p))
        .collect::<Vec<_>>()
        .join(", ");
    let open = state
        .model
        .as_ref()
        .map_or_else(|| "the open model".to_string(), |m| m.label());
    egui::Window::new("Compare with the open model?")
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_TOP, [0.0, 80.0])
        .show(ui.ctx(), |ui| {
            ui.label(format!("Compare {names} with the open model ({open})?"));
            ui.label(
                RichText::new(
                    "The open model is the original; the dropped file is its quantized version.",
                )
                .weak(),
            );
            ui.horizontal(|ui| {
                if ui.button("Compare").clicked() {
                    out.push(Command::Compare(CompareCommand::Start(paths.clone())));
                }
                if ui.button("Open instead").clicked() {
                    out.push(Command::Compare(CompareCommand::DismissOffer));
                    out.push(Command::Open(paths.clone()));
                }
                if ui.button("Cancel").clicked() {
                    out.push(Command::Compare(CompareCommand::DismissOffer));
                }
            });
        });
    out
}

/// The SQNR of a compared row (uncompared rows have none).
fn sqnr(t: &TensorComparison) -> Option<f64> {
    t.outcome.as_ref().ok().map(|e| e.metrics.sqnr_db)
}

/// The file's SQNR minus the best candidate's (negative: the file loses against it).
pub fn vs_best(t: &TensorComparison, best: Option<&Candidate>) -> Option<f64> {
    Some(sqnr(t)? - best?.sqnr_db)
}

/// The value a row sorts by under `column` (`None` sorts last in both directions).
fn sort_value(
    t: &TensorComparison,
    best: Option<&Candidate>,
    column: CompareColumn,
) -> Option<f64> {
    let e = t.outcome.as_ref().ok();
    match column {
        CompareColumn::File | CompareColumn::Name | CompareColumn::Type => None,
        CompareColumn::Bpw => Some(t.bits_per_weight),
        CompareColumn::Mse => e.map(|e| e.metrics.mse),
        CompareColumn::RelMse => e.map(|e| e.rel_mse),
        CompareColumn::Sqnr => e.map(|e| e.metrics.sqnr_db),
        CompareColumn::Cosine => e.and_then(|e| e.metrics.cosine),
        CompareColumn::MaxAbs => e.map(|e| e.metrics.max_abs_error),
        CompareColumn::VsBest => vs_best(t, best),
    }
}

/// The pair indices of `paired` in the table's order; `best[i]` is pair i's candidate.
pub fn sorted_rows(paired: &Paired, best: &[Option<&Candidate>], sort: CompareSort) -> Vec<usize> {
    let rows = &paired.report.comparison.tensors;
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let best_of = |i: usize| best.get(i).copied().flatten();
    let directed = |o: Ordering| if sort.ascending { o } else { o.reverse() };
    match sort.column {
        CompareColumn::File => {
            if !sort.ascending {
                order.reverse();
            }
        }
        CompareColumn::Name => order.sort_by(|&a, &b| directed(rows[a].name.cmp(&rows[b].name))),
        CompareColumn::Type => {
            order.sort_by(|&a, &b| directed(rows[a].dtype.name().cmp(rows[b].dtype.name())))
        }
        column => order.sort_by(|&a, &b| {
            let va = sort_value(&rows[a], best_of(a), column);
            let vb = sort_value(&rows[b], best_of(b), column);
            match (va, vb) {
                (Some(x), Some(y)) => directed(x.total_cmp(&y)),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
        }),
    }
    order
}

/// A dB value as the table shows it.
fn db(v: f64) -> String {
    if v.is_infinite() && v > 0.0 {
        "∞ (exact)".into()
    } else {
        format!("{v:.2}")
    }
}

/// The metric cells of one compared row, as the table shows them: MSE, relative MSE, SQNR
/// (dB), cosine, max |e| (the tests compare these with the core's numbers).
pub fn metric_cells(t: &TensorComparison) -> Option<[String; 5]> {
    let e = t.outcome.as_ref().ok()?;
    let m = &e.metrics;
    Some([
        format!("{:.4e}", m.mse),
        format!("{:.4e}", e.rel_mse),
        db(m.sqnr_db),
        m.cosine.map_or_else(|| "n/a".into(), |c| format!("{c:.6}")),
        format!("{:.4e}", m.max_abs_error),
    ])
}

/// The best-candidate cell of a row.
pub fn candidate_cell(best: Option<&Option<Candidate>>) -> String {
    match best {
        None => "…".into(),
        Some(None) => "—".into(),
        Some(Some(c)) => format!("{} {} dB", c.name, db(c.sqnr_db)),
    }
}

/// The next sort after clicking `column`'s header.
fn next_sort(current: CompareSort, column: CompareColumn) -> CompareSort {
    if current.column == column {
        CompareSort {
            column,
            ascending: !current.ascending,
        }
    } else {
        CompareSort {
            column,
            // Errors worst first; SQNR, cosine and the margin worst (lowest) first.
            ascending: !matches!(
                column,
                CompareColumn::Mse
                    | CompareColumn::RelMse
                    | CompareColumn::MaxAbs
                    | CompareColumn::Bpw
            ),
        }
    }
}

/// Draws the comparison panel; returns the commands.
pub fn compare_ui(ui: &mut Ui, state: &AppState, view: &FrameView) -> Vec<Command> {
    let mut out = Vec::new();
    let Some(c) = &view.compare else {
        return out;
    };
    ui.horizontal(|ui| {
        ui.heading("Comparison");
        if let Some(r) = &state.compare.request {
            let names = r
                .paths
                .iter()
                .map(|p| file_name(p))
                .collect::<Vec<_>>()
                .join(", ");
            let original = state.model.as_ref().map(|m| m.label()).unwrap_or_default();
            ui.label(format!("{names} (quantized) against {original} (original)"));
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui
                .button("Close")
                .on_hover_text("Stop comparing.")
                .clicked()
            {
                out.push(Command::Compare(CompareCommand::Close));
            }
            if let Some(p) = c.paired.value.as_deref().filter(|_| c.paired.current) {
                if ui
                    .button("Save JSON")
                    .on_hover_text("Save the comparison as `quantscope compare --json` prints it.")
                    .clicked()
                {
                    let stem = state
                        .compare
                        .request
                        .as_ref()
                        .and_then(|r| r.paths.first())
                        .map_or_else(|| "model".to_string(), |p| safe_name(&file_name(p)));
                    out.push(Command::SaveText {
                        file_name: format!("compare-{stem}.json"),
                        contents: p.json(),
                    });
                }
                if ui
                    .button("Copy JSON")
                    .on_hover_text(
                        "Copy the comparison as JSON (exactly `quantscope compare --json`).",
                    )
                    .clicked()
                {
                    out.push(Command::CopyText {
                        text: p.json(),
                        what: "the comparison".into(),
                    });
                }
            }
        });
    });
    if let Some(e) = &c.paired.error {
        ui.colored_label(ui.visuals().error_fg_color, e);
        return out;
    }
    let Some(paired) = c.paired.value.as_deref() else {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("pairing and comparing every tensor…");
            ui.add(
                egui::ProgressBar::new(c.paired.progress)
                    .desired_width(220.0)
                    .show_percentage(),
            );
        });
        return out;
    };
    let report = &paired.report;
    let totals = &report.comparison.totals;
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(format!("pairing: {}", report.mapping)).weak());
        ui.separator();
        ui.label(format!(
            "{} of {} pairs compared · {} ({} bytes) of tensor data · average {:.4} bits per weight · total error Σ numel·rel MSE = {:.6e}",
            totals.compared,
            report.comparison.tensors.len(),
            crate::report::human_bytes(totals.bytes),
            totals.bytes,
            totals.average_bpw,
            totals.total_error
        ))
        .on_hover_text("NUMERICS.md §9: bytes of every tensor of the quantized file (headers excluded) × 8 / its weights; the total error sums each compared tensor's elements × relative MSE.");
        if c.candidates_pending > 0 {
            ui.spinner();
            ui.label(
                RichText::new(format!("best candidates: {} to go", c.candidates_pending)).weak(),
            );
        }
    });
    let unmatched = |ui: &mut Ui, title: &str, names: &[String]| {
        if names.is_empty() {
            return;
        }
        ui.collapsing(format!("{title} ({})", names.len()), |ui| {
            egui::ScrollArea::vertical()
                .id_salt(title)
                .max_height(80.0)
                .show(ui, |ui| {
                    for n in names {
                        ui.label(RichText::new(n).monospace());
                    }
                });
        });
    };
    ui.horizontal(|ui| {
        unmatched(
            ui,
            "unmatched in the original",
            &report.comparison.unmatched_original,
        );
        unmatched(
            ui,
            "unmatched in the quantized file",
            &report.comparison.unmatched_quantized,
        );
    });
    out.extend(table_ui(ui, state, c, paired));
    out
}

/// The table of pairs.
fn table_ui(ui: &mut Ui, state: &AppState, c: &CompareView, paired: &Paired) -> Vec<Command> {
    let mut out = Vec::new();
    let rows = &paired.report.comparison.tensors;
    let best: Vec<Option<&Candidate>> = (0..rows.len())
        .map(|i| {
            c.candidates
                .get(i)
                .and_then(|b| b.as_deref())
                .and_then(Option::as_ref)
        })
        .collect();
    let order = sorted_rows(paired, &best, state.compare.sort);
    let sort = state.compare.sort;
    let header = |ui: &mut Ui,
                  label: &str,
                  column: CompareColumn,
                  tip: &str,
                  out: &mut Vec<Command>| {
        let arrow = match (sort.column == column, sort.ascending) {
            (true, true) => " ↑",
            (true, false) => " ↓",
            _ => "",
        };
        if ui
            .add(egui::Button::new(RichText::new(format!("{label}{arrow}")).strong()).frame(false))
            .on_hover_text(tip)
            .clicked()
        {
            out.push(Command::Compare(CompareCommand::SetSort(next_sort(
                sort, column,
            ))));
        }
    };
    let selected_pair = c.pair;
    let warn = ui.visuals().warn_fg_color;
    // Text selection would take the clicks that select a row.
    ui.style_mut().interaction.selectable_labels = false;
    TableBuilder::new(ui)
        .id_salt("compare_table")
        .striped(true)
        .sense(egui::Sense::click())
        .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
        .column(Column::initial(330.0).at_least(120.0).clip(true))
        .column(Column::auto().at_least(46.0))
        .column(Column::auto().at_least(44.0))
        .column(Column::auto().at_least(70.0))
        .column(Column::auto().at_least(70.0))
        .column(Column::auto().at_least(56.0))
        .column(Column::auto().at_least(60.0))
        .column(Column::auto().at_least(70.0))
        .column(Column::initial(200.0).at_least(120.0).clip(true))
        .column(Column::remainder().at_least(50.0))
        .header(20.0, |mut h| {
            h.col(|ui| header(ui, "tensor", CompareColumn::Name, "Sort by name; click again to reverse. 'file order' is the original's order.", &mut out));
            h.col(|ui| header(ui, "type", CompareColumn::Type, "The quantized file's stored type.", &mut out));
            h.col(|ui| header(ui, "bpw", CompareColumn::Bpw, "True bits per weight: stored bytes × 8 / elements (FP8 scale tensors counted).", &mut out));
            h.col(|ui| header(ui, "MSE", CompareColumn::Mse, "Mean squared error of the dequantized values against the original.", &mut out));
            h.col(|ui| header(ui, "rel MSE", CompareColumn::RelMse, "Σe² / Σx² (NUMERICS.md §9).", &mut out));
            h.col(|ui| header(ui, "SQNR dB", CompareColumn::Sqnr, "10·log10(Σx² / Σe²): higher is better.", &mut out));
            h.col(|ui| header(ui, "cosine", CompareColumn::Cosine, "Cosine similarity of original and dequantized.", &mut out));
            h.col(|ui| header(ui, "max |e|", CompareColumn::MaxAbs, "Largest absolute error.", &mut out));
            h.col(|ui| {
                ui.label(RichText::new("best at ≤ bpw").strong()).on_hover_text(
                    "quantscope's best candidate for the original tensor at no more than the \
                     file's bits per weight: every applicable deployed format and affine int \
                     (2–8 bits, per channel, groups of 32 and 128), by SQNR.",
                );
            });
            h.col(|ui| header(ui, "vs best dB", CompareColumn::VsBest, "The file's SQNR minus the best candidate's: negative where the file's recipe loses against what was available.", &mut out));
        })
        .body(|body| {
            body.rows(20.0, order.len(), |mut row| {
                let Some(&i) = order.get(row.index()) else {
                    return;
                };
                let Some(t) = rows.get(i) else {
                    return;
                };
                row.set_selected(selected_pair == Some(i));
                let original_index = paired.plan.pairs.get(i).map(|p| p.original_index);
                row.col(|ui| {
                    let mut name = RichText::new(name_tail(&t.name, NAME_CHARS)).monospace();
                    if t.outcome.is_err() {
                        name = name.color(warn);
                    }
                    let r = ui.label(name);
                    if t.permutation_undone {
                        ui.label(RichText::new("Q/K unpermuted").small().color(Color32::from_rgb(90, 150, 230)))
                            .on_hover_text("llama.cpp's converter permuted this tensor's rows; the permutation was undone before comparing.");
                    }
                    r.on_hover_text(format!("{}\nquantized name: {}", t.name, t.quantized_name));
                });
                row.col(|ui| {
                    ui.label(t.dtype.name());
                });
                row.col(|ui| {
                    ui.label(format!("{:.3}", t.bits_per_weight));
                });
                if let Some(cells) = metric_cells(t) {
                    for cell in cells {
                        row.col(|ui| {
                            ui.label(cell);
                        });
                    }
                    let best = c.candidates.get(i).and_then(|b| b.as_deref());
                    row.col(|ui| {
                        ui.label(candidate_cell(best));
                    });
                    row.col(|ui| {
                        if let Some(d) = vs_best(t, best.and_then(Option::as_ref)) {
                            // Equal runs may differ in the last bits of their sums: no "-0.00".
                            let d = if d.abs() < 0.005 { 0.0 } else { d };
                            let text = RichText::new(format!("{d:+.2}"));
                            ui.label(if d < -1.0 { text.color(warn) } else { text });
                        }
                    });
                } else {
                    // The message spans the empty cells to its right.
                    row.col(|ui| {
                        ui.label(
                            RichText::new(format!("not compared: {}", message_of(t))).color(warn),
                        );
                    });
                    for _ in 0..6 {
                        row.col(|_| {});
                    }
                }
                if row.response().clicked()
                    && let Some(o) = original_index
                {
                    out.push(Command::Select(o));
                    out.push(Command::ScrollToSelected);
                }
            });
        });
    out
}

/// Characters of a tensor name the table shows (its end, which tells the tensors apart).
const NAME_CHARS: usize = 38;

/// The last `chars` characters of `name`, with an ellipsis when cut.
pub fn name_tail(name: &str, chars: usize) -> String {
    let count = name.chars().count();
    if count <= chars {
        return name.to_string();
    }
    let tail: String = name.chars().skip(count - chars + 1).collect();
    format!("…{tail}")
}

/// Why a pair was not compared.
pub fn message_of(t: &TensorComparison) -> &str {
    match &t.outcome {
        Err(m) => m,
        Ok(_) => "",
    }
}

/// The note above the error tabs when they show a file's deployed error.
pub fn deployed_note_ui(ui: &mut Ui, view: &FrameView) {
    let Some(d) = view
        .compare
        .as_ref()
        .and_then(|c| c.deployed.value.as_deref())
    else {
        if let Some(e) = view
            .compare
            .as_ref()
            .and_then(|c| c.deployed.error.as_ref())
        {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        return;
    };
    let undone = if d.permutation_undone {
        " · Q/K row permutation undone"
    } else {
        ""
    };
    ui.label(
        RichText::new(format!(
            "deployed error: {} ({}) against the original · SQNR {} dB{undone}",
            d.quantized_name,
            d.dtype.name(),
            db(d.error.metrics.sqnr_db)
        ))
        .color(Color32::from_rgb(90, 150, 230)),
    );
}

/// "Explain this number" for a paired tensor: the picked weight's original value, the value
/// the quantized file stores for it and the error, with the stored block's fields. Returns
/// false when the selected tensor is not paired (the simulated explanation applies).
pub fn explain_deployed_ui(ui: &mut Ui, state: &AppState, view: &FrameView) -> bool {
    let Some(c) = view.compare.as_ref().filter(|c| c.pair.is_some()) else {
        return false;
    };
    let Some(p) = &c.pick else {
        ui.label(
            RichText::new(if state.picked.is_some() {
                "computing the stored value…"
            } else {
                "Click a histogram bar or a heatmap cell to pick a weight and see the value the quantized file stores for it."
            })
            .weak(),
        );
        return true;
    };
    ui.label(RichText::new(format!("weight #{} as the file stores it", p.flat)).strong());
    egui::Grid::new("explain_deployed")
        .num_columns(2)
        .max_col_width(ui.available_width() * 0.62)
        .striped(true)
        .show(ui, |ui| {
            for (k, v) in deployed_lines(p) {
                ui.label(k);
                ui.add(egui::Label::new(RichText::new(v).monospace()).wrap());
                ui.end_row();
            }
        });
    true
}

/// The lines of the deployed explanation as (label, value) pairs.
pub fn deployed_lines(p: &super::super::derived::compare::DeployedPick) -> Vec<(String, String)> {
    let mut lines = vec![
        ("original x".to_string(), format!("{}", p.original)),
        (
            format!("stored ({}) x'", p.dtype.name()),
            format!("{}", p.stored),
        ),
        (
            "error x' − x".into(),
            format!("{:e}", p.stored - p.original),
        ),
    ];
    if let Some((block, at)) = &p.block {
        lines.push((
            "block".into(),
            format!("{} (element {at} of {})", block.block, block.values.len()),
        ));
        for f in &block.fields {
            lines.push((
                format!("  {} ({} bits, {})", f.name, f.bits, f.encoding),
                format!("raw {:#x} = {}", f.raw, f.value),
            ));
        }
        if let Some(code) = block.codes.get(*at) {
            lines.push(("  code q".into(), format!("{code}")));
        }
        if let (Some(s), Some(o)) = (block.element_scale.get(*at), block.element_offset.get(*at)) {
            lines.push(("  scale · offset".into(), format!("{s:e} · {o:e}")));
        }
        lines.push(("  formula".into(), block.formula.clone()));
    } else if let Some(s) = p.scale {
        lines.push(("stored scale".into(), format!("{s:e}")));
    }
    lines
}

/// The file names of dropped paths, for tests.
pub fn names_of(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| file_name(p)).collect()
}
