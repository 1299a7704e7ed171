//! "Explain this number": one picked weight through every step of quantization,
//! x → x/S → round (tie rule named) → + z → clamp → q → S·(q − z) → x', with the actual numbers
//! and the neighbouring grid points, from the shown quantization's own (S, z).

use egui::{RichText, Ui};

use super::super::derived::FrameView;
use super::super::derived::results::Quantized;
use super::super::state::AppState;
use crate::quant::{self, Explanation, QuantParams};

/// The steps of one picked weight, ready to show (computed in O(1) from the cached result).
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainView {
    /// Row-major index of the weight.
    pub flat: u64,
    /// Its group.
    pub group: usize,
    /// The group's (S, z).
    pub params: QuantParams,
    /// The core's explanation.
    pub explanation: Explanation,
    /// Name of the tie rule in force.
    pub rounding: &'static str,
    /// Whether x/S was computed as x · f32(1/S).
    pub reciprocal: bool,
}

/// Explains element `flat` under the quantization `q` (O(1): reads the cached result).
pub fn explain_element(q: &Quantized, flat: u64) -> Option<ExplainView> {
    let index = usize::try_from(flat).ok()?;
    let x = *q.values.get(index)?;
    let group = q.layout.group_of(index);
    let params = *q.params.get(group)?;
    let conv = q.config.convention();
    Some(ExplainView {
        flat,
        group,
        params,
        explanation: quant::explain(x, &params, &q.config),
        rounding: conv.rounding.name(),
        reciprocal: conv.reciprocal,
    })
}

/// The lines of the explanation as (label, value) pairs; the panel and the tests use them.
pub fn explain_lines(e: &ExplainView) -> Vec<(String, String)> {
    let x = &e.explanation;
    let p = &e.params;
    let division = if e.reciprocal {
        format!("x · (1/S) = {} · {:e}", x.x, 1.0 / p.scale)
    } else {
        format!("x / S = {} / {:e}", x.x, p.scale)
    };
    vec![
        ("x".into(), format!("{}", x.x)),
        (
            "group".into(),
            format!("{} (S = {:e}, z = {})", e.group, p.scale, p.zero_point),
        ),
        (division, format!("{}", x.x_over_s)),
        (
            format!("round ({})", e.rounding),
            if x.tie {
                format!("{}  (an exact tie: the rule decides)", x.rounded)
            } else {
                format!("{}", x.rounded)
            },
        ),
        ("+ z".into(), format!("{}", x.plus_z)),
        (
            format!("clamp to [{}, {}]", p.qmin, p.qmax),
            if x.clamped {
                format!("{}  (clipped)", x.q)
            } else {
                format!("{}", x.q)
            },
        ),
        ("q".into(), format!("{}", x.q)),
        (
            "dequantized x' = S·(q − z)".into(),
            format!("{:e} · ({} − {}) = {}", p.scale, x.q, p.zero_point, x.x_hat),
        ),
        ("error x' − x".into(), format!("{:e}", x.error)),
        (
            "grid neighbours".into(),
            format!("{}  ≤ x ≤  {}", x.below, x.above),
        ),
    ]
}

/// Draws the panel for the picked weight of the shown quantization.
pub fn explain_ui(ui: &mut Ui, state: &AppState, view: &FrameView) {
    if super::compare::explain_deployed_ui(ui, state, view) {
        return;
    }
    let e = state
        .picked
        .zip(view.quant.value.as_deref())
        .and_then(|(flat, q)| explain_element(q, flat));
    let Some(e) = e.as_ref() else {
        ui.label(
            RichText::new("Click a histogram bar or a heatmap cell to pick a weight and see each step of its quantization.")
                .weak(),
        );
        return;
    };
    ui.label(RichText::new(format!("weight #{}", e.flat)).strong());
    egui::Grid::new("explain_grid")
        .num_columns(2)
        .max_col_width(ui.available_width() * 0.62)
        .striped(true)
        .show(ui, |ui| {
            for (k, v) in explain_lines(e) {
                ui.label(k);
                ui.add(egui::Label::new(RichText::new(v).monospace()).wrap());
                ui.end_row();
            }
        });
}
