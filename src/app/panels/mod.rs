//! The panels: one file per panel, each a function of the app state and the frame's read-only
//! view that draws itself and returns the [`super::state::Command`]s the user asked for.

pub mod bits;
pub mod browser;
pub mod error_plots;
pub mod explain;
pub mod heatmap;
pub mod histogram;
pub mod menu;
pub mod metrics;
pub mod open_path;
pub mod quant_controls;
pub mod status;
pub mod tabs;

use egui_plot::{AxisHints, GridInput, GridMark, Plot};

use crate::report::plot::{nice_step_at_least as nice_at_least, tick_text};

/// A plot with labelled axes at any range and zoom: grid lines at 1-2-5 steps dense enough
/// that the coarsest ones are about 60 points apart, and tick labels with the decimals their
/// spacing needs. Every plot of the app goes through this.
pub fn labelled_axes(plot: Plot<'_>) -> Plot<'_> {
    // egui_plot labels x ticks only 60+ points apart; narrow plots (the error tab's halves)
    // then show a single "0". Labels that fit are drawn from 34 points on.
    plot.custom_x_axes(vec![AxisHints::new_x().label_spacing(34.0..=50.0)])
        .x_grid_spacer(nice_grid)
        .y_grid_spacer(nice_grid)
        .x_axis_formatter(|mark, _| tick_label(mark))
        .y_axis_formatter(|mark, _| tick_label(mark))
}

/// Grid marks at three 1-2-5 steps: the finest about twice egui's minimum line spacing, the
/// coarsest five times that (where the labels go).
fn nice_grid(input: GridInput) -> Vec<GridMark> {
    let base = input.base_step_size;
    if !(base.is_finite() && base > 0.0) {
        return Vec::new();
    }
    let fine = nice_at_least(2.0 * base);
    let steps = [fine, nice_at_least(2.5 * fine), nice_at_least(5.0 * fine)];
    let (lo, hi) = input.bounds;
    let mut marks: Vec<GridMark> = Vec::new();
    for step in steps {
        // Grid indices of the visible range: bounded by the range / step (the plot's pixels).
        let first = (lo / step).ceil() as i64;
        let last = (hi / step).floor() as i64;
        for i in first..=last.min(first + 10_000) {
            // Exact for every index the loop can reach.
            let value = i as f64 * step;
            marks.retain(|m| (m.value - value).abs() > step * 1e-9);
            marks.push(GridMark {
                value,
                step_size: step,
            });
        }
    }
    marks
}

/// A plot tick label with as many decimals as the tick spacing needs (the exports' rule).
pub fn tick_label(mark: GridMark) -> String {
    tick_text(mark.value, mark.step_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_marks_carry_labels_at_their_coarse_step() {
        let marks = nice_grid(GridInput {
            bounds: (-0.55, 0.55),
            base_step_size: 0.004,
        });
        // Finest 0.01, then 0.02, then 0.05: the coarse marks carry the labels.
        let coarse: Vec<f64> = marks
            .iter()
            .filter(|m| m.step_size == 0.05)
            .map(|m| m.value)
            .collect();
        assert_eq!(coarse.len(), 23);
        assert!(coarse.iter().any(|&v| (v - 0.5).abs() < 1e-12));
        let labels: Vec<String> = marks
            .iter()
            .filter(|m| m.step_size == 0.05)
            .map(|&m| tick_label(m))
            .collect();
        assert!(labels.contains(&"0.45".to_string()), "{labels:?}");
    }
}
