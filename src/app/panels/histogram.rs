//! The histogram panel: its toolbar (bins, log y, code grid, thresholds, PNG), the exact
//! histogram of the selected tensor with the clip thresholds of every calibrator drawn in
//! distinct colours, a legend giving each one's error under the settings in force, and the
//! active clip range shaded with draggable edges. With a deployed format the plot draws the
//! format's real levels instead (the selected block's, each one: NF4 and FP4 grids are not
//! uniform), and no clip thresholds (they belong to the affine calibrators).

use egui::{Color32, RichText, Ui};
use egui_plot::{Bar, BarChart, HoverPosition, Plot, PlotPoint, Span, VLine};

use super::super::derived::results::HistData;
use super::super::derived::{FrameView, Legend as ThresholdLegend};
use super::super::settings::HistogramSettings;
use super::super::state::{AppState, ClipRange, Command};
use super::quant_controls::calibration_label;
use crate::quant::{Calibration, Granularity, Scheme};

/// The colour of each calibrator's lines and legend swatch (distinct in both themes).
pub fn calibration_colour(c: &Calibration) -> Color32 {
    match c {
        Calibration::MinMax => Color32::from_rgb(230, 120, 40),
        Calibration::Percentile(_) => Color32::from_rgb(170, 90, 220),
        Calibration::Entropy => Color32::from_rgb(30, 170, 170),
        Calibration::Mse => Color32::from_rgb(220, 60, 120),
        Calibration::Manual { .. } => ACTIVE_COLOUR,
    }
}

/// Colour of the active clip range.
pub const ACTIVE_COLOUR: Color32 = Color32::from_rgb(240, 200, 40);

/// What the plot needs to draw.
pub struct HistogramView<'a> {
    /// The histogram (maybe the previous one while a new one computes).
    pub data: Option<&'a HistData>,
    /// Whether `data` is stale (drawn dimmed).
    pub stale: bool,
    /// Thresholds of the calibrators, if computed.
    pub thresholds: &'a ThresholdLegend,
    /// The clip range in force (calibrated or dragged), per-tensor only.
    pub active: Option<(f64, f64)>,
    /// Whether the active range is symmetric (dragging one edge mirrors the other).
    pub symmetric: bool,
    /// Whether dragging the range is possible (per-tensor granularity).
    pub draggable: bool,
    /// View options.
    pub settings: &'a HistogramSettings,
    /// Levels to draw (each one) and the legend's name for them: a deployed format's (the
    /// selected block's), or a paired quantized file's values over the original's distribution.
    pub levels: Option<(&'a [f32], String)>,
}

/// Colour of level lines: a deployed format's, or a quantized file's over the original's.
pub const LEVEL_COLOUR: Color32 = Color32::from_rgb(60, 160, 230);

/// Which edge of the active range is being dragged (kept in egui memory between frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DragEdge {
    Lo,
    Hi,
}

/// Height of a bar for a count, on a linear or log10(1 + count) scale.
pub fn bar_height(count: u64, log_y: bool) -> f64 {
    // Counts are far below 2^53, exact in f64.
    let c = count as f64;
    if log_y { (1.0 + c).log10() } else { c }
}

/// Draws the plot; returns what the user did (pick a bin, drag the clip range).
pub fn histogram_plot_ui(
    ui: &mut Ui,
    view: &HistogramView<'_>,
    height: f32,
) -> (Vec<Command>, egui::Rect, Option<egui_plot::PlotTransform>) {
    let mut out = Vec::new();
    let Some(data) = view.data else {
        let r = ui.add_sized([ui.available_width(), height], egui::Spinner::new());
        return (out, r.rect, None);
    };
    let log_y = view.settings.log_y;
    let dim = if view.stale { 0.45 } else { 1.0 };
    let bar_colour = ui
        .visuals()
        .widgets
        .inactive
        .fg_stroke
        .color
        .gamma_multiply(0.6 * dim);
    let bars: Vec<Bar> = data
        .counts
        .iter()
        .enumerate()
        .filter_map(|(i, &count)| {
            let (a, b) = (*data.edges.get(i)?, *data.edges.get(i + 1)?);
            Some(
                Bar::new(0.5 * (a + b), bar_height(count, log_y))
                    .width(b - a)
                    .fill(bar_colour),
            )
        })
        .collect();
    let drag_id = ui.scope_id().with("clip_drag");
    let plot = crate::app::panels::labelled_axes(Plot::new("histogram_plot"))
        .height(height)
        .allow_drag(false)
        .sense(egui::Sense::click_and_drag())
        .allow_boxed_zoom(true)
        .allow_scroll(false)
        .y_axis_label(if log_y { "log10(1 + count)" } else { "count" })
        .x_axis_label("value")
        .label_formatter(|pos| {
            Some(match pos {
                HoverPosition::NearDataPoint {
                    plot_name: "counts",
                    index,
                    ..
                } => {
                    let (a, b) = (data.edges.get(*index)?, data.edges.get(index + 1)?);
                    format!("[{a:.5}, {b:.5}]: {} values", data.counts.get(*index)?)
                }
                HoverPosition::NearDataPoint { plot_name, .. } => (*plot_name).to_string(),
                HoverPosition::Elsewhere { position } => format!("x = {:.5}", position.x),
            })
        });
    let thresholds = view.thresholds;
    let active = view.active;
    let show_thresholds = view.settings.show_thresholds;
    let levels = view.levels.as_ref();
    let response = plot.show(ui, |plot_ui| {
        plot_ui.bar_chart(BarChart::new("counts", bars).color(bar_colour));
        if let Some((levels, name)) = levels {
            for &level in *levels {
                plot_ui.vline(
                    VLine::new(name.clone(), f64::from(level))
                        .color(LEVEL_COLOUR.gamma_multiply(0.55))
                        .width(1.0),
                );
            }
        }
        if show_thresholds {
            for t in &thresholds.lines {
                let Some(&(lo, hi)) = t.ranges.get(thresholds.group) else {
                    continue;
                };
                let colour = calibration_colour(&t.calibration);
                let name = calibration_label(&t.calibration).to_string();
                plot_ui.vline(VLine::new(name.clone(), lo).color(colour).width(1.5));
                plot_ui.vline(VLine::new(name, hi).color(colour).width(1.5));
            }
        }
        if let Some((lo, hi)) = active {
            plot_ui.span(
                Span::new("active clip range", lo..=hi)
                    .fill(ACTIVE_COLOUR.gamma_multiply(0.06))
                    .border_color(ACTIVE_COLOUR),
            );
            plot_ui.vline(
                VLine::new("active clip range", lo)
                    .color(ACTIVE_COLOUR)
                    .width(3.0),
            );
            plot_ui.vline(
                VLine::new("active clip range", hi)
                    .color(ACTIVE_COLOUR)
                    .width(3.0),
            );
        }
        plot_ui.pointer_coordinate()
    });
    let pointer: Option<PlotPoint> = response.inner;
    let resp = &response.response;
    // Dragging an edge of the active range.
    if view.draggable
        && let Some((lo, hi)) = active
    {
        let near_at = |x: f64, pos: Option<egui::Pos2>| {
            let sx = response
                .transform
                .position_from_point(&PlotPoint::new(x, 0.0))
                .x;
            pos.is_some_and(|p| (p.x - sx).abs() < 8.0)
        };
        // A drag grabs the edge nearest to where the button went down.
        let origin = ui.input(|i| i.pointer.press_origin());
        let near = |x: f64| near_at(x, origin);
        if resp.drag_started() {
            let edge = if near(lo) {
                Some(DragEdge::Lo)
            } else if near(hi) {
                Some(DragEdge::Hi)
            } else {
                None
            };
            ui.ctx().data_mut(|d| d.insert_temp(drag_id, edge));
        }
        let edge: Option<DragEdge> = ui.ctx().data(|d| d.get_temp(drag_id)).flatten();
        if resp.dragged()
            && let (Some(edge), Some(pos)) = (edge, resp.interact_pointer_pos())
        {
            let x = response.transform.value_from_position(pos).x;
            let (new_lo, new_hi) = match (edge, view.symmetric) {
                (_, true) => (-x.abs(), x.abs()),
                (DragEdge::Lo, false) => (x.min(hi), hi),
                (DragEdge::Hi, false) => (lo, x.max(lo)),
            };
            // The core works in f32; narrowing the dragged position is intended.
            out.push(Command::SetClip(Some(ClipRange {
                lo: new_lo as f32,
                hi: new_hi as f32,
            })));
        }
        if resp.drag_stopped() {
            ui.ctx().data_mut(|d| d.remove::<Option<DragEdge>>(drag_id));
        }
        let hover = resp.hover_pos();
        if (near_at(lo, hover) || near_at(hi, hover)) && resp.hovered() {
            ui.ctx().set_cursor_icon(egui::CursorIcon::ResizeHorizontal);
        }
    }
    if resp.clicked()
        && let Some(p) = pointer
        && let Some(bin) = data.bin_at(p.x)
        && let Some(Some(flat)) = data.example.get(bin)
    {
        out.push(Command::PickElement(*flat));
    }
    resp.clone().on_hover_text(
        "Click a bar to pick a real weight from that bin. Drag a yellow edge to set the clip range. Drag a box with the right mouse button to zoom; double-click to reset.",
    );
    (out, resp.rect, Some(response.transform))
}

/// The thresholds' legend: each calibrator's colour (the colour of its lines), clip range and
/// error under the settings in force; for per-channel or per-group settings the ranges shown
/// are the drawn group's and the error is the whole tensor's.
pub fn thresholds_legend_ui(ui: &mut Ui, legend: &ThresholdLegend, settings: &str) {
    ui.horizontal_wrapped(|ui| {
        for t in &legend.lines {
            let Some(&(lo, hi)) = t.ranges.get(legend.group) else {
                continue;
            };
            let colour = calibration_colour(&t.calibration);
            let name = calibration_label(&t.calibration);
            ui.label(RichText::new("━━").color(colour).strong());
            ui.label(format!(
                "{name} [{lo:.4}, {hi:.4}] SQNR {:.2} dB",
                t.sqnr_db
            ))
            .on_hover_text(format!(
                "Clip range of {name} calibration and the error of quantizing this tensor \
                     with it under the settings in force ({settings}): MSE {:.4e}, SQNR {:.2} dB.",
                t.mse, t.sqnr_db
            ));
            ui.add_space(6.0);
        }
        if legend.groups > 1 {
            ui.label(
                RichText::new(format!(
                    "(ranges of group {} of {}; SQNR of the whole tensor under {settings})",
                    legend.group, legend.groups
                ))
                .weak(),
            )
            .on_hover_text(
                "Pick a weight (click a bar or a heatmap cell) to see its group's ranges.",
            );
        }
    });
}

/// The levels the histogram draws for the chosen deployed format: the selected block's (for a
/// per-tensor FP8 scale, the whole tensor's), with the legend's name for them.
pub fn format_levels<'a>(state: &AppState, view: &'a FrameView) -> Option<(&'a [f32], String)> {
    state.settings.quant.format?;
    let b = view.block.value.as_deref()?;
    Some((b.detail.levels.as_slice(), b.levels_label()))
}

/// The legend under the plot while a deployed format is chosen: the level lines' name and
/// count, and why no clip thresholds are drawn.
fn format_legend_ui(ui: &mut Ui, levels: Option<&(&[f32], String)>, error: Option<&str>) {
    ui.horizontal_wrapped(|ui| {
        match levels {
            Some((values, name)) => {
                ui.label(RichText::new("━━").color(LEVEL_COLOUR).strong());
                ui.label(format!("{name} ({} levels)", values.len()))
                    .on_hover_text(
                        "Every value an element of this block can take (its scales applied). \
                         Click a heatmap cell or choose a block number in the block view to \
                         see another block's levels.",
                    );
            }
            None => {
                if let Some(e) = error {
                    ui.colored_label(ui.visuals().error_fg_color, e);
                }
            }
        }
        ui.label(
            RichText::new("· no clip thresholds: the affine calibrators do not apply to a format")
                .weak(),
        );
    });
}

/// The histogram toolbar, the plot and the legend of the selected tensor. Returns the commands
/// and the plot's transform (tests drag the clip edges with it).
pub fn histogram_panel_ui(
    ui: &mut Ui,
    state: &AppState,
    view: &FrameView,
    height: f32,
) -> (Vec<Command>, Option<egui_plot::PlotTransform>) {
    let mut out = Vec::new();
    let config = &state.settings.quant;
    let format = config.format;
    let per_tensor = config.granularity == Granularity::PerTensor && format.is_none();
    let data = view.hist.value.as_deref();
    if let Some(e) = &view.hist.error {
        ui.colored_label(ui.visuals().error_fg_color, e);
    }
    let mut save_png = false;
    ui.horizontal_wrapped(|ui| {
        let mut h = state.settings.histogram.clone();
        ui.label("bins");
        ui.add_enabled(
            !h.code_grid,
            egui::DragValue::new(&mut h.bins).range(8..=4096).speed(4.0),
        )
        .on_hover_text("Number of equal-width bins over [min, max] (exact counts).");
        ui.checkbox(&mut h.log_y, "log y")
            .on_hover_text("Logarithmic count axis: shows the rare large values in the tails.");
        ui.add_enabled(
            per_tensor,
            egui::Checkbox::new(&mut h.code_grid, "code grid"),
        )
        .on_hover_text(
            "One bin per quantization code (centred on the grid points); per-tensor \
                 granularity only. Lesson 3 shows what the grid is.",
        )
        .on_disabled_hover_text(if format.is_some() {
            "A format's levels are drawn as lines, each one (the selected block's)."
        } else {
            "Per-tensor granularity only: with many scales there is no single grid."
        });
        ui.add_enabled(
            format.is_none(),
            egui::Checkbox::new(&mut h.show_thresholds, "thresholds"),
        )
        .on_hover_text(
            "Draw the clip thresholds of min-max, percentile, entropy (KL) and MSE calibration; \
             the legend gives each one's error under the settings in force. Lessons 6–8.",
        )
        .on_disabled_hover_text(
            "The clip thresholds belong to the affine calibrators; a deployed format has none.",
        );
        if h != state.settings.histogram {
            out.push(Command::SetHistogram(h));
        }
        if let Some(d) = data {
            let nonfinite = if d.nonfinite > 0 {
                format!(" · {} NaN/Inf", d.nonfinite)
            } else {
                String::new()
            };
            ui.label(
                RichText::new(format!(
                    "{} bins · {} finite{nonfinite}",
                    d.counts.len(),
                    d.finite
                ))
                .weak(),
            );
        }
        if view.legend.pending && state.settings.histogram.show_thresholds {
            ui.spinner();
            ui.label(RichText::new("calibrating…").weak())
                .on_hover_text("Computing the calibrators' thresholds in the background.");
        }
        save_png = ui
            .small_button("Export")
            .on_hover_text(
                "Save this histogram as SVG and PNG in the export folder, with title, settings, \
                 axes, thresholds and legend.",
            )
            .clicked();
    });
    let compare_levels = view.compare.as_ref().and_then(|c| c.levels.as_ref());
    let active = if per_tensor && compare_levels.is_none() {
        view.quant.value.as_ref().and_then(|q| q.grid_range())
    } else {
        None
    };
    let plot = HistogramView {
        data,
        stale: !view.hist.current,
        thresholds: &view.legend,
        active,
        symmetric: config.scheme == Scheme::Symmetric,
        draggable: per_tensor,
        settings: &state.settings.histogram,
        levels: match compare_levels {
            Some(l) => Some((l.values.as_slice(), l.label.clone())),
            None => format_levels(state, view),
        },
    };
    let (cmds, _, transform) = histogram_plot_ui(ui, &plot, height);
    out.extend(cmds);
    if let Some(l) = compare_levels {
        ui.horizontal(|ui| {
            ui.label(RichText::new("━━").color(LEVEL_COLOUR).strong());
            ui.label(format!(
                "the quantized file's values: {} (pick a weight to choose its block or row)",
                l.label
            ));
        });
    } else if format.is_some() {
        format_legend_ui(ui, plot.levels.as_ref(), view.block.error.as_deref());
    }
    if state.settings.histogram.show_thresholds && !view.legend.lines.is_empty() {
        let settings = crate::report::SettingsReport::new(config).short();
        thresholds_legend_ui(ui, &view.legend, &settings);
    }
    if save_png && let Some(plot) = crate::app::export::histogram(state, view) {
        let tensor = view.tensor.as_ref().map_or("", |(_, t)| t.name.as_str());
        out.push(Command::Export(Box::new(crate::app::export::Export {
            stem: format!("histogram-{tensor}"),
            plots: vec![plot],
        })));
    }
    (out, transform)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_heights_are_log10_of_one_plus_count() {
        assert_eq!(bar_height(0, true), 0.0);
        assert_eq!(bar_height(9, true), 1.0);
        assert_eq!(bar_height(99, true), 2.0);
        assert_eq!(bar_height(42, false), 42.0);
    }

    #[test]
    fn calibrator_colours_are_distinct() {
        let cs: Vec<_> = crate::app::derived::results::legend_calibrations(99.9)
            .iter()
            .map(calibration_colour)
            .chain([ACTIVE_COLOUR])
            .collect();
        for (i, a) in cs.iter().enumerate() {
            for b in &cs[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
