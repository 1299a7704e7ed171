//! The panels: one file per panel, each a function of the app state and the frame's read-only
//! view that draws itself and returns the [`super::state::Command`]s the user asked for.

pub mod batches;
pub mod bits;
pub mod block_view;
pub mod browser;
pub mod channels;
pub mod compare;
pub mod error_plots;
pub mod explain;
pub mod heatmap;
pub mod histogram;
pub mod menu;
pub mod metrics;
pub mod model_view;
pub mod open_path;
pub mod quant_controls;
pub mod status;
pub mod tabs;

use egui_plot::{AxisHints, GridInput, GridMark, Plot};

use crate::report::plot::tick_text;

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

/// The smallest 1 or 5 × 10^k at least `x` (x > 0): the ladder 1, 5, 10, 50, … where each
/// step divides the next.
fn ladder_at_least(x: f64) -> f64 {
    let e = 10f64.powf(x.log10().floor());
    [1.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * e)
        .find(|&s| s >= x * (1.0 - 1e-12))
        .unwrap_or(10.0 * e)
}

/// Grid marks at three nested steps of the ladder 1, 5, 10, 50, …: fine lines about twice
/// egui's minimum spacing apart, then the next two rungs, so every coarser mark is also a finer
/// one (0, 5, 10 — never 2, 4, 5, 6). Labels go on whichever rung leaves room for them.
fn nice_grid(input: GridInput) -> Vec<GridMark> {
    let base = input.base_step_size;
    if !(base.is_finite() && base > 0.0) {
        return Vec::new();
    }
    let fine = ladder_at_least(2.0 * base);
    let mid = ladder_at_least(fine * 1.5);
    let coarse = ladder_at_least(mid * 1.5);
    let (lo, hi) = input.bounds;
    let mut marks: Vec<GridMark> = Vec::new();
    for step in [fine, mid, coarse] {
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
        // Fine 0.01, then 0.05, then 0.1: the 0.05 marks carry the labels, and every mark of a
        // rung is a multiple of the rung below.
        let coarse: Vec<f64> = marks
            .iter()
            .filter(|m| m.step_size >= 0.05)
            .map(|m| m.value)
            .collect();
        // -0.55 … 0.55 in 0.05 steps: 23 marks, 11 of them on the 0.1 rung.
        assert_eq!(coarse.len(), 23);
        assert_eq!(marks.iter().filter(|m| m.step_size == 0.1).count(), 11);
        assert!(coarse.iter().any(|&v| (v - 0.5).abs() < 1e-12));
        assert!(
            marks
                .iter()
                .all(|m| [0.01, 0.05, 0.1].contains(&m.step_size))
        );
        assert_eq!(ladder_at_least(0.33), 0.5);
        assert_eq!(ladder_at_least(0.75), 1.0);
        let labels: Vec<String> = marks
            .iter()
            .filter(|m| m.step_size >= 0.05)
            .map(|&m| tick_label(m))
            .collect();
        assert!(labels.contains(&"0.45".to_string()), "{labels:?}");
    }
}
