//! The quantization error views: original vs dequantized distributions, the error histogram,
//! and zoomable heatmaps of |error| and of the per-group scale over the 2-D view of the tensor
//! (images built off-thread; hover shows the exact values under the pointer).

use std::sync::Arc;

use egui::{Color32, ColorImage, Ui};
use egui_plot::{Bar, BarChart, Corner, Legend, Line, Plot, PlotImage, PlotPoint, PlotPoints};
use rayon::prelude::*;

use super::Command;
use super::engine::{Bins, ErrorDetail, QuantKey, QuantView, rows_cols};
use super::histogram::bar_height;
use super::jobs::JobKey;
use crate::cancel::Cancel;
use crate::quant::Granularity;

/// Rows [r0, r1) and columns [c0, c1) of the 2-D view of a tensor.
pub type Region = (usize, usize, usize, usize);

/// Largest heatmap image side in pixels (images are aggregated down to this).
pub const MAX_HEAT_SIDE: usize = 512;

/// Which quantity a heatmap shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeatKind {
    /// mean |x' - x| per cell.
    AbsError,
    /// The scale S of the group each element belongs to (mean per cell).
    Scale,
}

/// The quantization result (and its per-element error) a heatmap is built from. Equality and
/// hashing ignore it: the [`QuantKey`] next to it in [`HeatKey`] identifies it.
#[derive(Clone)]
pub struct ViewRef(pub Arc<QuantView>, pub Arc<ErrorDetail>);

impl PartialEq for ViewRef {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ViewRef {}

impl std::hash::Hash for ViewRef {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl std::fmt::Debug for ViewRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ViewRef")
    }
}

/// A heatmap request: one quantization result, a quantity, and a region of the 2-D view.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeatKey {
    /// The quantization it belongs to.
    pub quant: QuantKey,
    /// That quantization's result.
    pub view: ViewRef,
    /// Which quantity.
    pub kind: HeatKind,
    /// Rows [r0, r1) and columns [c0, c1) of the 2-D view.
    pub region: (usize, usize, usize, usize),
}

impl JobKey for HeatKey {
    fn same_subject(&self, other: &Self) -> bool {
        self.quant.same_subject(&other.quant)
            && self.kind == other.kind
            && self.region == other.region
    }

    fn lane(&self) -> u64 {
        // The overview and the zoomed detail of each kind compete only with themselves.
        let full = u64::from(self.region.0 == 0 && self.region.2 == 0);
        match self.kind {
            HeatKind::AbsError => full,
            HeatKind::Scale => 2 + full,
        }
    }
}

/// A heatmap image with the value of each cell.
pub struct HeatImage {
    /// The colours.
    pub image: ColorImage,
    /// The aggregated value of each cell, row-major, image-sized.
    pub values: Vec<f32>,
    /// Rows [r0, r1) and columns [c0, c1) covered.
    pub region: (usize, usize, usize, usize),
    /// Colour scale maximum.
    pub vmax: f32,
    /// Colour scale minimum.
    pub vmin: f32,
}

/// A perceptually ordered colour map (viridis control points, linearly interpolated).
pub fn colormap(t: f32) -> Color32 {
    const STOPS: [(u8, u8, u8); 6] = [
        (68, 1, 84),
        (65, 68, 135),
        (42, 120, 142),
        (34, 168, 132),
        (122, 209, 81),
        (253, 231, 37),
    ];
    if t.is_nan() {
        return Color32::from_gray(128);
    }
    let t = t.clamp(0.0, 1.0) * 5.0;
    // t in [0, 5]: the index is the integer part.
    let i = (t.floor() as usize).min(4);
    let f = t - i as f32;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |x: u8, y: u8| (f32::from(x) + (f32::from(y) - f32::from(x)) * f).round() as u8;
    Color32::from_rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Builds the heatmap of `key` from the quantization result `view`.
pub fn build_heat(key: &HeatKey, cancel: &Cancel) -> Result<HeatImage, String> {
    let view = &*key.view.0;
    let detail = &*key.view.1;
    let (rows, cols) = rows_cols(&view.layout.shape);
    let (r0, r1, c0, c1) = key.region;
    let (r1, c1) = (r1.min(rows), c1.min(cols));
    if r0 >= r1 || c0 >= c1 {
        return Err("empty heatmap region".into());
    }
    let (h_rows, w_cols) = (r1 - r0, c1 - c0);
    let h = h_rows.min(MAX_HEAT_SIDE);
    let w = w_cols.min(MAX_HEAT_SIDE);
    let cell_value = |flat: usize| -> f32 {
        match key.kind {
            HeatKind::AbsError => detail.error.get(flat).map_or(f32::NAN, |e| e.abs()),
            HeatKind::Scale => view.params_of(flat).map_or(f32::NAN, |p| p.scale),
        }
    };
    let per_tensor = matches!(view.layout.granularity, Granularity::PerTensor);
    let values: Vec<f32> = (0..h)
        .into_par_iter()
        .map(|y| {
            if cancel.is_cancelled() {
                return vec![f32::NAN; w];
            }
            let ya = r0 + y * h_rows / h;
            let yb = (r0 + (y + 1) * h_rows / h).max(ya + 1);
            (0..w)
                .map(|x| {
                    let xa = c0 + x * w_cols / w;
                    let xb = (c0 + (x + 1) * w_cols / w).max(xa + 1);
                    if key.kind == HeatKind::Scale && per_tensor {
                        return cell_value(0);
                    }
                    // Mean of the finite values of the cell (f64 sums), NaN when there is none.
                    let (mut sum, mut n) = (0.0_f64, 0_u32);
                    for r in ya..yb {
                        for c in xa..xb {
                            let v = cell_value(r * cols + c);
                            if v.is_finite() {
                                sum += f64::from(v);
                                n += 1;
                            }
                        }
                    }
                    // Narrowing the mean back to f32 is the image's precision.
                    if n == 0 {
                        f32::NAN
                    } else {
                        (sum / f64::from(n)) as f32
                    }
                })
                .collect::<Vec<f32>>()
        })
        .flatten()
        .collect();
    cancel.check().map_err(|e| e.to_string())?;
    let (mut vmin, mut vmax) = (f32::INFINITY, f32::NEG_INFINITY);
    for &v in values.iter().filter(|v| v.is_finite()) {
        vmin = vmin.min(v);
        vmax = vmax.max(v);
    }
    if !vmin.is_finite() {
        (vmin, vmax) = (0.0, 1.0);
    }
    if key.kind == HeatKind::AbsError {
        vmin = 0.0;
    }
    let span = if vmax > vmin { vmax - vmin } else { 1.0 };
    let pixels = values
        .iter()
        .map(|&v| colormap((v - vmin) / span))
        .collect();
    Ok(HeatImage {
        image: ColorImage::new([w, h], pixels),
        values,
        region: (r0, r1, c0, c1),
        vmin,
        vmax,
    })
}

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
pub fn error_plots_ui(ui: &mut Ui, view: &ErrorDetail, stale: bool, log_y: bool) -> Vec<Command> {
    let out = Vec::new();
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
    let h = ui.available_height().max(120.0);
    ui.columns(2, |cols| {
        let orig = Color32::from_rgb(90, 150, 230).gamma_multiply(dim);
        let deq = Color32::from_rgb(240, 140, 50).gamma_multiply(dim);
        Plot::new("overlay_plot")
            .height(h - 4.0)
            .legend(Legend::default().position(Corner::LeftTop))
            .y_axis_label(if log_y { "log10(1 + count)" } else { "count" })
            .show(&mut cols[0], |p| {
                // The dequantized values pile up on the grid; the original is drawn on top.
                p.line(step_line("dequantized", &view.dequantized, log_y, deq));
                p.line(step_line("original", &view.original, log_y, orig).width(2.0));
            });
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
        Plot::new("error_hist_plot")
            .height(h - 4.0)
            .legend(Legend::default().position(Corner::LeftTop))
            .x_axis_label("x' − x")
            .show(&mut cols[1], |p| {
                p.bar_chart(
                    BarChart::new("error x' − x", bars)
                        .color(Color32::from_rgb(220, 70, 90).gamma_multiply(dim)),
                );
            });
    });
    out
}

/// Texture handles of the heatmap images, refreshed when the image Arc changes.
#[derive(Default)]
pub struct HeatTextures {
    slots: Vec<(usize, egui::TextureHandle)>,
}

impl HeatTextures {
    /// The texture for `img` (uploaded once per new image).
    pub fn texture(
        &mut self,
        ctx: &egui::Context,
        slot: usize,
        img: &Arc<HeatImage>,
    ) -> egui::TextureId {
        // The Arc's address identifies the image while it is alive (we hold it in the cache).
        let id = Arc::as_ptr(img) as usize;
        while self.slots.len() <= slot {
            self.slots.push((
                0,
                ctx.load_texture(
                    "heat",
                    // A texture may not be empty (wgpu rejects zero-sized textures).
                    ColorImage::new([1, 1], vec![Color32::TRANSPARENT]),
                    egui::TextureOptions::NEAREST,
                ),
            ));
        }
        if let Some((cur, handle)) = self.slots.get_mut(slot) {
            if *cur != id && img.image.size.iter().all(|&d| d > 0) {
                handle.set(img.image.clone(), egui::TextureOptions::NEAREST);
                *cur = id;
            }
            return handle.id();
        }
        egui::TextureId::default()
    }
}

/// Draws one heatmap (overview plus a zoomed detail when available). Returns commands and the
/// detail region the current zoom wants (so the app requests it).
#[allow(clippy::too_many_arguments)]
pub fn heatmap_ui(
    ui: &mut Ui,
    id: &str,
    view: &QuantView,
    detail_data: &ErrorDetail,
    overview: Option<(egui::TextureId, &HeatImage)>,
    detail: Option<(egui::TextureId, &HeatImage)>,
    kind: HeatKind,
    values: &[f32],
    height: f32,
) -> (Vec<Command>, Option<Region>) {
    let mut out = Vec::new();
    let (rows, cols) = rows_cols(&view.layout.shape);
    // Precision loss only for tensors with more than 2^53 rows or columns.
    let (rf, cf) = (rows as f64, cols as f64);
    let resp = Plot::new(id)
        .height(height)
        .invert_y(true)
        .show_grid(false)
        .allow_boxed_zoom(true)
        .allow_scroll(false)
        .include_x(0.0)
        .include_x(cf)
        .include_y(0.0)
        .include_y(rf)
        .x_axis_label("column")
        .y_axis_label("row")
        .label_formatter(|_| None)
        .show(ui, |p| {
            if let Some((tex, img)) = overview {
                let (r0, r1, c0, c1) = img.region;
                let center = PlotPoint::new((c0 + c1) as f64 / 2.0, (r0 + r1) as f64 / 2.0);
                let size = egui::vec2((c1 - c0) as f32, (r1 - r0) as f32);
                p.image(PlotImage::new("overview", tex, center, size));
            }
            if let Some((tex, img)) = detail {
                let (r0, r1, c0, c1) = img.region;
                let center = PlotPoint::new((c0 + c1) as f64 / 2.0, (r0 + r1) as f64 / 2.0);
                let size = egui::vec2((c1 - c0) as f32, (r1 - r0) as f32);
                p.image(PlotImage::new("detail", tex, center, size));
            }
            (p.pointer_coordinate(), p.plot_bounds())
        });
    let (pointer, bounds) = resp.inner;
    // The element under the pointer, exactly.
    let element = pointer.and_then(|p| {
        // Plot coordinates to indices: floor of a non-negative position.
        (p.x >= 0.0 && p.y >= 0.0 && p.x < cf && p.y < rf).then_some((p.y as usize, p.x as usize))
    });
    if let Some((r, c)) = element {
        let flat = r * cols + c;
        let x = values.get(flat).copied().unwrap_or(f32::NAN);
        let e = detail_data.error.get(flat).copied().unwrap_or(f32::NAN);
        let text = match kind {
            HeatKind::AbsError => format!("[{r}, {c}]  x = {x:.6}  x' − x = {e:.3e}"),
            HeatKind::Scale => format!(
                "[{r}, {c}]  group {}  S = {:.4e}",
                view.layout.group_of(flat),
                view.params_of(flat).map_or(f32::NAN, |p| p.scale)
            ),
        };
        resp.response.clone().on_hover_text_at_pointer(text);
        if resp.response.clicked() {
            // usize to u64 is lossless on every supported target.
            out.push(Command::PickElement(flat as u64));
        }
    }
    // The visible region, snapped outward to a 64-cell grid so small pans reuse the detail.
    let snap = 64usize;
    let clampi = |v: f64, max: usize| (v.max(0.0) as usize).min(max);
    let (vr0, vr1) = (
        clampi(bounds.min()[1], rows),
        clampi(bounds.max()[1].ceil(), rows),
    );
    let (vc0, vc1) = (
        clampi(bounds.min()[0], cols),
        clampi(bounds.max()[0].ceil(), cols),
    );
    let large = rows > MAX_HEAT_SIDE || cols > MAX_HEAT_SIDE;
    let zoomed = large && ((vr1 - vr0) * 2 <= rows || (vc1 - vc0) * 2 <= cols);
    let region = (zoomed && vr1 > vr0 && vc1 > vc0).then(|| {
        (
            vr0 / snap * snap,
            (vr1.div_ceil(snap) * snap).min(rows),
            vc0 / snap * snap,
            (vc1.div_ceil(snap) * snap).min(cols),
        )
    });
    (out, region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colormap_ends_are_viridis_ends_and_nan_is_grey() {
        assert_eq!(colormap(0.0), Color32::from_rgb(68, 1, 84));
        assert_eq!(colormap(1.0), Color32::from_rgb(253, 231, 37));
        assert_eq!(colormap(f32::NAN), Color32::from_gray(128));
        assert_eq!(colormap(7.0), colormap(1.0));
    }
}
