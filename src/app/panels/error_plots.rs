//! The error tab: the original and dequantized distributions overlaid, and the histogram of
//! the error x' − x, of the shown quantization (dimmed while a newer one computes).

use egui::{Color32, Ui};
use egui_plot::{Bar, BarChart, Corner, Legend, Line, Plot, PlotPoints};

use super::super::derived::results::{Bins, ErrorDetail};
use super::histogram::bar_height;

/// Draws a distribution as a step line.
fn step_line(name: &str, bins: &Bins, log_y: bool, colour: Color32) -> Line<'static> {
    let mut pts = Vec::with_capacity(bins.counts.len() * 2);
    for (i, &c) in bins.counts.iter().enumerate() {
        if let (Some(&a), Some(&b)) = (bins.edges.get(i), bins.edges.get(i + 1)) {
            let y = bar_height(c, log_y);
            pts.push([a, y]);
            pts.push([b, y]);
        }
    }
    Line::new(name.to_string(), PlotPoints::from(pts))
        .color(colour)
        .width(1.5)
}

/// The error tab: overlay and error histogram side by side.
pub fn error_plots_ui(ui: &mut Ui, view: &ErrorDetail, stale: bool, log_y: bool) {
    let dim = if stale { 0.45 } else { 1.0 };
    if view.sample_every > 1 {
        ui.label(
            egui::RichText::new(format!(
                "distributions of every {}th value (metrics and heatmaps use all)",
                view.sample_every
            ))
            .weak(),
        );
    }
    let orig = Color32::from_rgb(90, 150, 230).gamma_multiply(dim);
    let deq = Color32::from_rgb(240, 140, 50).gamma_multiply(dim);
    let overlay = |ui: &mut Ui, height: f32| {
        crate::app::panels::labelled_axes(Plot::new("overlay_plot"))
            .height(height)
            .legend(Legend::default().position(Corner::LeftTop))
            .y_axis_label(if log_y { "log10(1 + count)" } else { "count" })
            .x_axis_label("value")
            .show(ui, |p| {
                // The dequantized values pile up on the grid; the original is drawn on top.
                p.line(step_line("dequantized", &view.dequantized, log_y, deq));
                p.line(step_line("original", &view.original, log_y, orig).width(2.0));
            });
    };
    let error_hist = |ui: &mut Ui, height: f32| {
        let bars: Vec<Bar> = view
            .error_hist
            .counts
            .iter()
            .enumerate()
            .filter_map(|(i, &c)| {
                let (a, b) = (
                    *view.error_hist.edges.get(i)?,
                    *view.error_hist.edges.get(i + 1)?,
                );
                // The rounding error is nearly uniform: a linear axis shows its shape best.
                Some(Bar::new(0.5 * (a + b), bar_height(c, false)).width(b - a))
            })
            .collect();
        crate::app::panels::labelled_axes(Plot::new("error_hist_plot"))
            .height(height)
            .legend(Legend::default().position(Corner::LeftTop))
            .x_axis_label("x' − x")
            .y_axis_label("count")
            .show(ui, |p| {
                p.bar_chart(
                    BarChart::new("error x' − x", bars)
                        .color(Color32::from_rgb(220, 70, 90).gamma_multiply(dim)),
                );
            });
    };
    let h = ui.available_height().max(120.0);
    // Side by side when there is room for axis labels on both; stacked otherwise.
    if ui.available_width() >= 560.0 {
        ui.columns(2, |cols| {
            overlay(&mut cols[0], h - 4.0);
            error_hist(&mut cols[1], h - 4.0);
        });
    } else {
        let half = (h / 2.0 - 6.0).max(60.0);
        overlay(ui, half);
        error_hist(ui, half);
    }
}
