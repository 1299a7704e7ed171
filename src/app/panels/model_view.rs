//! The Model view: the sweep's progress, the budget slider, the selected tensor's Pareto chart
//! (a click pins a point), the model-wide size–error curve with the uniform recipes, the
//! sensitivity strip (layers × tensor kinds; a click opens the tensor) and the recipe table
//! with its export.

use std::collections::BTreeMap;

use egui::{Color32, RichText, Sense, Ui};
use egui_plot::{
    Corner, HoverPosition, Legend, Line, MarkerShape, Plot, PlotPoint, PlotPoints, PlotTransform,
    Points,
};

use super::super::derived::plan::{PlanView, layer_and_kind};
use super::super::derived::{FrameView, ModelViewData};
use super::super::state::{AppState, CandidateSet, Command, StripMetric};
use crate::plan::{Choice, SweepTable, Why};
use crate::report::recipe::Recipe;

/// The budget slider's range (bits per weight), the curve's.
pub const BUDGET_RANGE: std::ops::RangeInclusive<f64> = 2.0..=8.5;

/// The budget slider's label (tests find it by this text).
pub const BUDGET_LABEL: &str = "Budget (bits/weight)";

const FRONTIER: Color32 = Color32::from_rgb(240, 140, 50);
const CHOSEN: Color32 = Color32::from_rgb(220, 60, 80);
const OPTION: Color32 = Color32::from_rgb(90, 150, 230);

/// Draws the Model view; returns the commands and the Pareto chart's transform (tests click
/// its points through it).
pub fn model_view_ui(
    ui: &mut Ui,
    state: &AppState,
    view: &FrameView,
) -> (Vec<Command>, Option<PlotTransform>) {
    let mut out = Vec::new();
    let mut transform = None;
    let Some(data) = view.model_view.as_ref() else {
        ui.label("Open a model to plan it.");
        return (out, transform);
    };
    header_ui(ui, state, data, &mut out);
    let Some(plan) = data.plan.as_ref() else {
        ui.centered_and_justified(|ui| {
            ui.label("Measuring every tensor under every candidate…");
        });
        return (out, transform);
    };
    let plan = match plan {
        Ok(p) => p,
        Err(e) => {
            ui.colored_label(Color32::from_rgb(220, 60, 60), format!("No plan: {e}"));
            return (out, transform);
        }
    };
    budget_ui(ui, state, plan, &mut out);
    ui.separator();
    egui::ScrollArea::vertical().show(ui, |ui| {
        let height = 260.0;
        ui.columns(2, |cols| {
            transform = pareto_ui(&mut cols[0], state, view, plan, height, &mut out);
            curve_ui(&mut cols[1], plan, height);
        });
        ui.separator();
        strip_ui(ui, state, data, plan, &mut out);
        ui.separator();
        recipe_ui(ui, plan, &mut out);
    });
    (out, transform)
}

fn header_ui(ui: &mut Ui, state: &AppState, data: &ModelViewData, out: &mut Vec<Command>) {
    let mv = &state.model_view;
    ui.horizontal_wrapped(|ui| {
        ui.heading("Model plan");
        for (set, label, tip) in [
            (
                CandidateSet::Quick,
                "min-max + formats",
                "Affine 2–8 bits × channel/g32/g64/g128 with min-max ranges, and every deployed \
                 format (GGUF, MX, NVFP4, NF4, FP8).",
            ),
            (
                CandidateSet::WithMse,
                "+ MSE ranges",
                "Also the MSE-calibrated affine candidates (on all-MiniLM-L6-v2 about 53 s for the 28 of them, 9 s for all the rest).",
            ),
        ] {
            if ui
                .selectable_label(mv.candidates == set, label)
                .on_hover_text(tip)
                .clicked()
            {
                out.push(Command::SetCandidateSet(set));
            }
        }
        let sweep = &data.sweep;
        if sweep.is_pending() {
            ui.add(
                egui::ProgressBar::new(sweep.progress)
                    .desired_width(160.0)
                    .show_percentage(),
            );
            if ui.button("Cancel").clicked() {
                out.push(Command::RunSweep(false));
            }
        } else if !mv.sweep_on && !sweep.current {
            ui.label(RichText::new("sweep cancelled").weak());
            if ui.button("Resume").clicked() {
                out.push(Command::RunSweep(true));
            }
        }
        if let Some(e) = &sweep.error {
            ui.colored_label(Color32::from_rgb(220, 60, 60), e);
        }
        if let Some(t) = sweep.value.as_ref().filter(|_| sweep.current) {
            ui.label(
                RichText::new(format!(
                    "{} tensors × {} candidates; {} measured in {:.1} s, {} from cache",
                    t.tensors.len(),
                    t.candidates.len(),
                    t.evaluated,
                    t.elapsed_ms / 1e3,
                    t.cached
                ))
                .weak(),
            );
        }
    });
}

fn budget_ui(ui: &mut Ui, state: &AppState, plan: &PlanView, out: &mut Vec<Command>) {
    ui.horizontal_wrapped(|ui| {
        let mut bpw = state.model_view.budget_bpw;
        // The slider starts at the smallest feasible budget (every planned tensor at its
        // cheapest option), rounded up to the slider's step.
        let feasible = plan.problem.bpw(plan.problem.min_total_bits());
        let lo =
            ((feasible * 16.0).ceil() / 16.0).clamp(*BUDGET_RANGE.start(), *BUDGET_RANGE.end());
        let label = ui.label(BUDGET_LABEL);
        ui.spacing_mut().slider_width = 320.0;
        let r = ui
            .add(egui::Slider::new(&mut bpw, lo..=*BUDGET_RANGE.end()).step_by(0.0625))
            .labelled_by(label.id)
            .on_hover_text(
                "Average bits per weight over every tensor (kept ones included). The allocator \
                 re-plans as you drag: the least total error that fits, never over.",
            );
        if r.changed() && bpw != state.model_view.budget_bpw {
            out.push(Command::SetBudget(bpw));
        }
        match &plan.allocation {
            Ok(a) => {
                ui.label(format!(
                    "average {:.3} bits/weight · {} · total error {:.4e} (Σ numel × rel. MSE) · \
                     within {:.2}% of optimal",
                    a.average_bpw,
                    crate::report::human_bytes(a.total_bits / 8),
                    a.total_error,
                    100.0 * a.gap
                ));
            }
            Err(e) => {
                ui.colored_label(Color32::from_rgb(220, 60, 60), e);
            }
        }
    });
}

/// The chosen candidate column of table tensor `tensor`, if it was planned.
fn chosen_of(plan: &PlanView, tensor: usize) -> Option<usize> {
    let a = plan.allocation.as_ref().ok()?;
    match a.choices.get(tensor)? {
        Choice::Candidate { candidate, .. } => Some(*candidate),
        Choice::Kept { .. } => None,
    }
}

fn pareto_ui(
    ui: &mut Ui,
    state: &AppState,
    view: &FrameView,
    plan: &PlanView,
    height: f32,
    out: &mut Vec<Command>,
) -> Option<PlotTransform> {
    let Some((_, info)) = view.tensor.as_ref() else {
        ui.label("Select a tensor to see its options.");
        return None;
    };
    let table = &plan.table;
    let row = table.tensors.iter().position(|t| t.name == info.name)?;
    let chooser = plan.problem.choosers.iter().find(|c| c.tensor == row);
    ui.label(RichText::new(format!("{} — bits against error", info.name)).strong());
    let Some(chooser) = chooser else {
        let why = plan
            .problem
            .fixed
            .iter()
            .find(|f| f.tensor == row)
            .map(|f| format!("{} ({})", f.format, f.why.detail()))
            .unwrap_or_default();
        ui.label(format!("Not planned: {why}"));
        return None;
    };
    let numel = table.tensors.get(row).map_or(1, |t| t.numel.max(1)) as f64;
    // (bits per weight, log10 relative MSE) of each option.
    let point = |o: &crate::plan::allocate::OptionPoint| -> [f64; 2] {
        let rel = (o.error / numel).max(1e-30);
        (o.bits as f64 / numel, rel.log10()).into()
    };
    let all: Vec<[f64; 2]> = chooser.options.iter().map(point).collect();
    let frontier: Vec<[f64; 2]> = chooser
        .frontier
        .iter()
        .filter_map(|&i| chooser.options.get(i).map(point))
        .collect();
    let chosen = chosen_of(plan, row)
        .and_then(|c| chooser.options.iter().find(|o| o.candidate == c).map(point));
    let pinned = state.model_view.pin_of(&info.name).map(str::to_string);
    let ids: Vec<String> = chooser
        .options
        .iter()
        .map(|o| {
            table
                .candidates
                .get(o.candidate)
                .map_or(String::new(), |c| c.id.clone())
        })
        .collect();
    let response = super::labelled_axes(Plot::new("pareto_plot"))
        .label_formatter(move |pos| {
            Some(match pos {
                HoverPosition::NearDataPoint {
                    plot_name: "candidates",
                    index,
                    position,
                } => format!(
                    "{}: {:.3} bits/weight, rel. MSE {:.3e}",
                    ids.get(*index)?,
                    position.x,
                    10f64.powf(position.y)
                ),
                HoverPosition::NearDataPoint { position, .. }
                | HoverPosition::Elsewhere { position } => format!(
                    "{:.3} bits/weight, rel. MSE {:.3e}",
                    position.x,
                    10f64.powf(position.y)
                ),
            })
        })
        .height(height)
        .legend(Legend::default().position(Corner::RightTop))
        .x_axis_label("bits per weight")
        .y_axis_label("log10 relative MSE")
        .allow_drag(false)
        .allow_scroll(false)
        .allow_zoom(false)
        .allow_boxed_zoom(false)
        .show(ui, |p| {
            p.points(
                Points::new("candidates", PlotPoints::from(all.clone()))
                    .color(OPTION)
                    .radius(3.0),
            );
            p.line(Line::new("Pareto frontier", PlotPoints::from(frontier)).color(FRONTIER));
            if let Some(c) = chosen {
                p.points(
                    Points::new("chosen", PlotPoints::from(vec![c]))
                        .color(CHOSEN)
                        .shape(MarkerShape::Diamond)
                        .radius(7.0),
                );
            }
        });
    let t = response.transform;
    if response.response.clicked()
        && let Some(pos) = response.response.interact_pointer_pos()
    {
        // The nearest option within 12 points of the click.
        let nearest = chooser
            .options
            .iter()
            .zip(&all)
            .map(|(o, p)| {
                let s = t.position_from_point(&PlotPoint::new(p[0], p[1]));
                (o.candidate, s.distance(pos))
            })
            .filter(|(_, d)| *d <= 12.0)
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((c, _)) = nearest
            && let Some(cand) = table.candidates.get(c)
        {
            out.push(Command::PinTensor {
                tensor: info.name.clone(),
                candidate: Some(cand.id.clone()),
            });
        }
    }
    ui.horizontal(|ui| {
        if let Some(c) = chosen_of(plan, row).and_then(|c| table.candidates.get(c)) {
            ui.label(format!("chosen: {}", c.id));
        }
        if let Some(p) = &pinned {
            ui.label(RichText::new(format!("pinned to {p}")).color(CHOSEN));
            if ui.small_button("Unpin").clicked() {
                out.push(Command::PinTensor {
                    tensor: info.name.clone(),
                    candidate: None,
                });
            }
        } else {
            ui.label(RichText::new("click a point to pin it").weak());
        }
    });
    Some(t)
}

fn curve_ui(ui: &mut Ui, plan: &PlanView, height: f32) {
    ui.label(RichText::new("Model: size against total error").strong());
    let curve: Vec<[f64; 2]> = plan
        .curve
        .iter()
        .filter(|p| p.total_error > 0.0)
        .map(|p| [p.average_bpw, p.total_error.log10()])
        .collect();
    let uniform: Vec<(String, [f64; 2])> = plan
        .uniform
        .iter()
        .filter(|u| u.total_error > 0.0 && u.average_bpw <= 12.0)
        .map(|u| (u.candidate.clone(), [u.average_bpw, u.total_error.log10()]))
        .collect();
    let current = plan
        .allocation
        .as_ref()
        .ok()
        .filter(|a| a.total_error > 0.0)
        .map(|a| [a.average_bpw, a.total_error.log10()]);
    let names: Vec<String> = uniform.iter().map(|(n, _)| n.clone()).collect();
    let points: Vec<[f64; 2]> = uniform.iter().map(|(_, p)| *p).collect();
    super::labelled_axes(Plot::new("model_curve_plot"))
        .height(height)
        .legend(Legend::default().position(Corner::RightTop))
        .x_axis_label("average bits per weight")
        .y_axis_label("log10 total error")
        .label_formatter(move |pos| {
            Some(match pos {
                HoverPosition::NearDataPoint {
                    plot_name: "uniform recipes",
                    index,
                    position,
                } => format!(
                    "all {}: {:.3} bits/weight, total error {:.3e}",
                    names.get(*index)?,
                    position.x,
                    10f64.powf(position.y)
                ),
                HoverPosition::NearDataPoint { position, .. }
                | HoverPosition::Elsewhere { position } => format!(
                    "{:.3} bits/weight, total error {:.3e}",
                    position.x,
                    10f64.powf(position.y)
                ),
            })
        })
        .show(ui, |p| {
            p.line(Line::new("allocator", PlotPoints::from(curve)).color(FRONTIER));
            p.points(
                Points::new("uniform recipes", PlotPoints::from(points))
                    .color(OPTION)
                    .radius(3.0),
            );
            if let Some(c) = current {
                p.points(
                    Points::new("this budget", PlotPoints::from(vec![c]))
                        .color(CHOSEN)
                        .shape(MarkerShape::Diamond)
                        .radius(7.0),
                );
            }
        });
}

/// The strip value of table tensor `row` (model tensor `index`) under the state's metric.
fn strip_value(
    state: &AppState,
    data: &ModelViewData,
    table: &SweepTable,
    column: Option<usize>,
    row: usize,
    index: usize,
) -> Option<f64> {
    let mv = &state.model_view;
    match mv.metric {
        StripMetric::RelMse | StripMetric::Sqnr => {
            let m = table
                .tensors
                .get(row)?
                .outcomes
                .get(column?)?
                .measurement()?;
            Some(if mv.metric == StripMetric::RelMse {
                m.planning_rel_mse().max(1e-30).log10()
            } else {
                m.planning_sqnr_db()
            })
        }
        StripMetric::Kurtosis => data
            .shapes
            .get(index)
            .copied()
            .flatten()
            .map(|s| s.kurtosis),
        StripMetric::MaxOverStd => data
            .shapes
            .get(index)
            .copied()
            .flatten()
            .map(|s| s.max_over_std),
        StripMetric::Outliers => data
            .shapes
            .get(index)
            .copied()
            .flatten()
            .map(|s| s.outliers as f64),
    }
}

/// A strip cell: (model tensor index, sweep table row, value under the metric).
type Cell = (usize, usize, Option<f64>);

/// A cold-to-hot colour for t in [0, 1] (hot = more sensitive).
fn heat_colour(t: f64) -> Color32 {
    let t = t.clamp(0.0, 1.0);
    // Value in [0, 1]: the cast picks a channel level.
    let lerp = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
    Color32::from_rgb(lerp(40, 235), lerp(90, 70), lerp(180, 60))
}

fn strip_ui(
    ui: &mut Ui,
    state: &AppState,
    data: &ModelViewData,
    plan: &PlanView,
    out: &mut Vec<Command>,
) {
    let mv = &state.model_view;
    let table = &plan.table;
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("Sensitivity").strong());
        let label = ui.label("coloured by");
        egui::ComboBox::from_id_salt("strip_metric")
            .selected_text(mv.metric.label())
            .show_ui(ui, |ui| {
                for m in StripMetric::ALL {
                    if ui.selectable_label(mv.metric == m, m.label()).clicked() {
                        out.push(Command::SetStripMetric(m));
                    }
                }
            })
            .response
            .labelled_by(label.id);
        if mv.metric.needs_candidate() {
            let label = ui.label("under");
            egui::ComboBox::from_id_salt("strip_candidate")
                .selected_text(&mv.strip_candidate)
                .height(400.0)
                .show_ui(ui, |ui| {
                    for c in &table.candidates {
                        if ui
                            .selectable_label(mv.strip_candidate == c.id, &c.id)
                            .clicked()
                        {
                            out.push(Command::SetStripCandidate(c.id.clone()));
                        }
                    }
                })
                .response
                .labelled_by(label.id);
        }
    });
    let column = table.candidate_index(&mv.strip_candidate);
    let Some(model) = state.model.as_ref() else {
        return;
    };
    // Cells: kind → layer → (model tensor index, table row, value).
    let mut layers: Vec<Option<usize>> = Vec::new();
    let mut cells: BTreeMap<String, BTreeMap<Option<usize>, Cell>> = BTreeMap::new();
    for (row, t) in table.tensors.iter().enumerate() {
        if t.shape.len() < 2 {
            continue;
        }
        let Some(index) = model.model.find(&t.name) else {
            continue;
        };
        let (layer, kind) = layer_and_kind(&t.name);
        if !layers.contains(&layer) {
            layers.push(layer);
        }
        let v = strip_value(state, data, table, column, row, index);
        cells
            .entry(kind)
            .or_default()
            .insert(layer, (index, row, v));
    }
    layers.sort();
    let values: Vec<f64> = cells
        .values()
        .flat_map(|m| m.values().filter_map(|c| c.2))
        .filter(|v| v.is_finite())
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // SQNR is the one metric where higher is better.
    let hot = |v: f64| {
        let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
        if mv.metric == StripMetric::Sqnr {
            1.0 - t
        } else {
            t
        }
    };
    egui::ScrollArea::horizontal()
        .id_salt("strip")
        .show(ui, |ui| {
            egui::Grid::new("strip_grid")
                .spacing([2.0, 2.0])
                .show(ui, |ui| {
                    ui.label("");
                    for l in &layers {
                        ui.label(
                            RichText::new(l.map_or("–".to_string(), |l| l.to_string())).small(),
                        );
                    }
                    ui.end_row();
                    for (kind, by_layer) in &cells {
                        ui.label(RichText::new(kind).small().monospace());
                        for l in &layers {
                            match by_layer.get(l) {
                                Some(&(index, row, v)) => {
                                    let (rect, resp) = ui.allocate_exact_size(
                                        egui::vec2(22.0, 14.0),
                                        Sense::click(),
                                    );
                                    let colour = v.map_or(Color32::GRAY, |v| heat_colour(hot(v)));
                                    ui.painter().rect_filled(rect, 2.0, colour);
                                    if state.selected == Some(index) {
                                        ui.painter().rect_stroke(
                                            rect,
                                            2.0,
                                            egui::Stroke::new(2.0, Color32::WHITE),
                                            egui::StrokeKind::Inside,
                                        );
                                    }
                                    let name = &table.tensors[row].name;
                                    let shown =
                                        v.map_or("computing…".to_string(), |v| match mv.metric {
                                            StripMetric::RelMse => {
                                                format!("rel. MSE {:.3e}", 10f64.powf(v))
                                            }
                                            StripMetric::Sqnr => format!("SQNR {v:.2} dB"),
                                            StripMetric::Outliers => format!("{v:.0} outliers"),
                                            _ => format!("{} {v:.3}", mv.metric.label()),
                                        });
                                    resp.widget_info(|| {
                                        egui::WidgetInfo::labeled(
                                            egui::Role::Button,
                                            true,
                                            format!("strip cell {name}"),
                                        )
                                    });
                                    let resp = resp.on_hover_text(format!("{name}\n{shown}"));
                                    if resp.clicked() {
                                        out.push(Command::OpenTensor(index));
                                    }
                                }
                                None => {
                                    ui.label("");
                                }
                            }
                        }
                        ui.end_row();
                    }
                });
        });
}

fn recipe_ui(ui: &mut Ui, plan: &PlanView, out: &mut Vec<Command>) {
    let Ok(allocation) = plan.allocation.as_ref() else {
        return;
    };
    let table = &plan.table;
    ui.horizontal(|ui| {
        ui.label(RichText::new("Recipe").strong());
        if ui
            .button("Export recipe")
            .on_hover_text("Save the recipe (tensor → format, bits and error) as JSON.")
            .clicked()
        {
            let recipe = Recipe::new(table, &plan.problem, allocation, &plan.uniform, &plan.curve);
            match serde_json::to_string_pretty(&recipe) {
                Ok(mut text) => {
                    text.push('\n');
                    out.push(Command::SaveText {
                        file_name: "recipe.json".into(),
                        contents: text,
                    });
                }
                Err(e) => out.push(Command::Status(format!("recipe not exported: {e}"))),
            }
        }
    });
    egui::Grid::new("recipe_grid")
        .striped(true)
        .num_columns(5)
        .show(ui, |ui| {
            for h in ["tensor", "format", "bits/w", "rel. MSE", "why"] {
                ui.label(RichText::new(h).strong());
            }
            ui.end_row();
            for (row, t) in table.tensors.iter().enumerate() {
                let Some(choice) = allocation.choices.get(row) else {
                    continue;
                };
                ui.label(RichText::new(&t.name).monospace());
                match choice {
                    Choice::Candidate { candidate, why } => {
                        let m = t.outcomes.get(*candidate).and_then(|o| o.measurement());
                        ui.label(
                            table
                                .candidates
                                .get(*candidate)
                                .map_or("?", |c| c.id.as_str()),
                        );
                        ui.label(m.map_or("–".into(), |m| format!("{:.3}", m.bits_per_weight)));
                        ui.label(m.map_or("–".into(), |m| format!("{:.3e}", m.planning_rel_mse())));
                        ui.label(why_text(why));
                    }
                    Choice::Kept { format, bits, why } => {
                        ui.label(format);
                        ui.label(format!("{:.3}", *bits as f64 / t.numel.max(1) as f64));
                        ui.label("–");
                        ui.label(why_text(why));
                    }
                }
                ui.end_row();
            }
        });
}

fn why_text(why: &Why) -> String {
    match why.detail() {
        "" => why.label().to_string(),
        d => format!("{}: {d}", why.label()),
    }
}
