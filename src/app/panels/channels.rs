//! The channel-range tab of the tensor view: min and max of every output channel as bars, with
//! the tensor's ±absmax, so a user sees which channels force a per-channel scale.

use egui::{Color32, Ui};
use egui_plot::{Bar, BarChart, Corner, HLine, Legend, Plot};

use super::super::derived::channels::ChannelRanges;

const MAX_COLOUR: Color32 = Color32::from_rgb(240, 140, 50);
const MIN_COLOUR: Color32 = Color32::from_rgb(90, 150, 230);
const ABSMAX_COLOUR: Color32 = Color32::from_rgb(220, 60, 80);

/// Draws the per-channel min/max bars (dimmed while a newer result computes).
pub fn channels_ui(ui: &mut Ui, ranges: &ChannelRanges, stale: bool) {
    let dim = if stale { 0.45 } else { 1.0 };
    let narrowest = ranges
        .rows
        .iter()
        .flatten()
        .map(|&(lo, hi)| lo.abs().max(hi.abs()))
        .fold(f32::INFINITY, f32::min);
    ui.label(
        egui::RichText::new(format!(
            "{} channels; the widest reaches {:.4}, the narrowest {:.4}: one per-tensor scale \
             gives the narrowest channel {:.1}% of the codes",
            ranges.rows.len(),
            ranges.absmax,
            if narrowest.is_finite() {
                narrowest
            } else {
                0.0
            },
            if ranges.absmax > 0.0 && narrowest.is_finite() {
                100.0 * narrowest / ranges.absmax
            } else {
                0.0
            }
        ))
        .weak(),
    );
    // Row indices are far below 2^24: exact as f64.
    let bars = |pick: fn(&(f32, f32)) -> f32| -> Vec<Bar> {
        ranges
            .rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                r.as_ref()
                    .map(|r| Bar::new(i as f64, f64::from(pick(r))).width(1.0))
            })
            .collect()
    };
    let absmax = f64::from(ranges.absmax);
    super::labelled_axes(Plot::new("channel_range_plot"))
        .height(ui.available_height().max(120.0))
        .legend(Legend::default().position(Corner::LeftTop))
        .x_axis_label("output channel (row)")
        .y_axis_label("value")
        .show(ui, |p| {
            p.bar_chart(BarChart::new("max", bars(|r| r.1)).color(MAX_COLOUR.gamma_multiply(dim)));
            p.bar_chart(BarChart::new("min", bars(|r| r.0)).color(MIN_COLOUR.gamma_multiply(dim)));
            p.hline(HLine::new("± tensor absmax", absmax).color(ABSMAX_COLOUR));
            p.hline(HLine::new("± tensor absmax", -absmax).color(ABSMAX_COLOUR));
        });
}
