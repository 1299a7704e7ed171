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
pub mod quant_controls;
pub mod status;
pub mod tabs;

use egui_plot::{AxisHints, GridInput, GridMark, Plot};

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

/// The smallest 1, 2 or 5 × 10^k at least `x` (x > 0).
fn nice_at_least(x: f64) -> f64 {
    let e = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * e)
        .find(|&s| s >= x * (1.0 - 1e-12))
        .unwrap_or(10.0 * e)
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

/// A plot tick label with as many decimals as the tick spacing needs, so every range and zoom
/// is labelled (0.05 steps read 0.05, 0.10, …; tiny or huge values switch to 1.5e-4 form).
pub fn tick_label(mark: GridMark) -> String {
    let (value, step) = (mark.value, mark.step_size.abs());
    if !(value.is_finite() && step.is_finite() && step > 0.0) {
        return format!("{value}");
    }
    let magnitude = value.abs().max(step);
    if !(1e-4..1e6).contains(&magnitude) {
        // Significant digits enough to tell neighbouring ticks apart.
        let digits = ((magnitude / step).log10().ceil().max(0.0) as usize).min(8);
        return format!("{value:.digits$e}");
    }
    // The fewest decimals d with step · 10^d an integer (to a part in 10^6), at most 10.
    let mut decimals = 0usize;
    while decimals < 10 {
        let scaled = step * 10f64.powi(decimals as i32);
        if (scaled - scaled.round()).abs() <= 1e-6 * scaled.max(1.0) {
            break;
        }
        decimals += 1;
    }
    if value.abs() < step * 1e-9 {
        return "0".into();
    }
    format!("{value:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(value: f64, step: f64) -> String {
        tick_label(GridMark {
            value,
            step_size: step,
        })
    }

    #[test]
    fn grid_steps_are_one_two_five() {
        assert_eq!(nice_at_least(0.013), 0.02);
        assert_eq!(nice_at_least(0.03), 0.05);
        assert_eq!(nice_at_least(0.07), 0.1);
        assert_eq!(nice_at_least(1.0), 1.0);
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

    #[test]
    fn ticks_show_the_decimals_their_spacing_needs() {
        assert_eq!(label(0.3, 0.1), "0.3");
        assert_eq!(label(-0.45, 0.05), "-0.45");
        assert_eq!(label(0.25, 0.25), "0.25");
        assert_eq!(label(2.0, 1.0), "2");
        assert_eq!(label(0.0, 0.05), "0");
        assert_eq!(label(200.0, 100.0), "200");
        // Below 1e-4 the labels switch to exponent form and stay distinct.
        assert_eq!(label(2e-5, 1e-5), "2.0e-5");
        assert_ne!(label(2.5e-5, 5e-6), label(3e-5, 5e-6));
    }
}
