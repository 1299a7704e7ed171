//! "Explain this number": one picked weight through every step of quantization,
//! x → x/S → round (tie rule named) → + z → clamp → q → S·(q − z) → x', with the actual numbers
//! and the neighbouring grid points, from the shown quantization's own (S, z). With a deployed
//! format, the weight walks through its block instead: x → (x − offset) / scale in the block's
//! level units → code → x̂ = element_scale · level + offset, from the core's `BlockDetail`.

use egui::{RichText, Ui};

use super::super::derived::FrameView;
use super::super::derived::blocks::BlockView;
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

/// The walk of flat element `flat` through its block `b` of a deployed format, as (label,
/// value) pairs; `None` when the element is not listed in `b`.
pub fn format_explain_lines(b: &BlockView, flat: usize) -> Option<Vec<(String, String)>> {
    let d = &b.detail;
    let i = b.index_of(flat)?;
    let x = *b.inputs.get(i)?;
    let code = *d.codes.get(i)?;
    let xh = *d.values.get(i)?;
    let s = *d.element_scale.get(i)?;
    let m = *d.element_offset.get(i)?;
    // The level the code stands for, recovered from the decoder's value: x̂ = s · level + m.
    let level = if s == 0.0 {
        0.0
    } else {
        (f64::from(xh) - f64::from(m)) / f64::from(s)
    };
    // The first field is the block's main scale (d, scale, absmax, e); the block view lists
    // every field bit by bit.
    let fields = match d.fields.as_slice() {
        [] => "none".to_string(),
        [f, rest @ ..] => format!(
            "{} = {}{}",
            f.name,
            super::block_view::field_value(f),
            if rest.is_empty() {
                String::new()
            } else {
                format!(" and {} more (block view)", rest.len())
            }
        ),
    };
    let below = d.levels.iter().rev().find(|&&l| l <= x);
    let above = d.levels.iter().find(|&&l| l >= x);
    let show = |v: Option<&f32>| v.map_or_else(|| "—".to_string(), |v| v.to_string());
    let in_units = if s == 0.0 {
        "— (scale 0: every element is the offset)".to_string()
    } else {
        format!("{}", (f64::from(x) - f64::from(m)) / f64::from(s))
    };
    Some(vec![
        ("x".into(), format!("{x}")),
        if b.paged {
            ("block".into(), "the whole tensor (one scale)".to_string())
        } else {
            (
                "block".into(),
                format!(
                    "{} of {} ({} elements from #{})",
                    d.block, b.blocks, b.per_block, d.first
                ),
            )
        },
        ("stored fields".into(), fields),
        ("scale s, offset m".into(), format!("s = {s:e}, m = {m:e}")),
        ("(x − m) / s".into(), in_units),
        ("code".into(), format!("{code}")),
        // Recovered through f32 arithmetic, so shown to 6 decimals (13, not 12.9999995).
        ("level (x' − m) / s".into(), {
            let t = format!("{level:.6}");
            t.trim_end_matches('0').trim_end_matches('.').to_string()
        }),
        ("x' = s · level + m".into(), format!("{xh}")),
        ("error x' − x".into(), format!("{:e}", xh - x)),
        (
            "levels around x".into(),
            format!("{}  ≤ x ≤  {}", show(below), show(above)),
        ),
        (
            "formula".into(),
            super::block_view::shown_formula(&d.formula),
        ),
    ])
}

/// Draws the walk of the picked weight through its block (deployed formats).
fn format_explain_ui(ui: &mut Ui, state: &AppState, view: &FrameView) {
    let flat = state.picked.and_then(|p| usize::try_from(p).ok());
    let lines = flat
        .zip(view.block.value.as_deref())
        .and_then(|(flat, b)| format_explain_lines(b, flat).map(|l| (flat, l)));
    let Some((flat, lines)) = lines else {
        ui.label(
            RichText::new(
                "Click a heatmap cell, a histogram bar or a row of the block view to pick a \
                 weight and walk it through its block.",
            )
            .weak(),
        );
        return;
    };
    ui.label(RichText::new(format!("weight #{flat}")).strong());
    egui::Grid::new("explain_format_grid")
        .num_columns(2)
        .max_col_width(ui.available_width() * 0.62)
        .striped(true)
        .show(ui, |ui| {
            for (k, v) in lines {
                ui.label(k);
                ui.add(egui::Label::new(RichText::new(v).monospace()).wrap());
                ui.end_row();
            }
        });
}

/// Draws the panel for the picked weight of the shown quantization.
pub fn explain_ui(ui: &mut Ui, state: &AppState, view: &FrameView) {
    if super::compare::explain_deployed_ui(ui, state, view) {
        return;
    }
    if view
        .quant
        .value
        .as_deref()
        .is_some_and(|q| q.config.format.is_some())
    {
        format_explain_ui(ui, state, view);
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
