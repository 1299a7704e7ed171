//! The heatmap tab: zoomable images of mean |x' − x| and of the group scale S over the 2-D view
//! of the tensor (built off-thread by the derived layer), hover values under the pointer, a
//! click to pick that weight, and the texture slots the images are uploaded to.

use std::sync::Arc;

use egui::{Color32, ColorImage, RichText, Ui};
use egui_plot::{Plot, PlotImage, PlotPoint};

use super::super::derived::FrameView;
use super::super::derived::heat::{HeatImage, HeatKind, HeatSource, MAX_HEAT_SIDE, rows_cols};
use super::super::state::{AppState, Command, Region};

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
/// detail region the current zoom wants (so the derived layer builds it).
#[allow(clippy::too_many_arguments)]
fn heatmap_ui(
    ui: &mut Ui,
    id: &str,
    q: &dyn HeatSource,
    overview: Option<(egui::TextureId, &HeatImage)>,
    detail: Option<(egui::TextureId, &HeatImage)>,
    kind: HeatKind,
    height: f32,
) -> (Vec<Command>, Option<Region>) {
    let mut out = Vec::new();
    let (rows, cols) = rows_cols(q.shape());
    // Precision loss only for tensors with more than 2^53 rows or columns.
    let (rf, cf) = (rows as f64, cols as f64);
    let place = |img: &HeatImage| {
        let Region { r0, r1, c0, c1 } = img.region;
        // Region bounds are tensor indices, exact in f64 and f32 up to 2^24.
        let center = PlotPoint::new((c0 + c1) as f64 / 2.0, (r0 + r1) as f64 / 2.0);
        let size = egui::vec2((c1 - c0) as f32, (r1 - r0) as f32);
        (center, size)
    };
    let resp = crate::app::panels::labelled_axes(Plot::new(id))
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
                let (center, size) = place(img);
                p.image(PlotImage::new("overview", tex, center, size));
            }
            if let Some((tex, img)) = detail {
                let (center, size) = place(img);
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
        let x = q.original().get(flat).copied().unwrap_or(f32::NAN);
        let xh = q.reconstructed().get(flat).copied().unwrap_or(f32::NAN);
        let text = match kind {
            HeatKind::AbsError => format!("[{r}, {c}]  x = {x:.6}  x' − x = {:.3e}", xh - x),
            HeatKind::Scale => format!("[{r}, {c}]  {}", q.describe_scale(flat)),
        };
        resp.response.clone().on_hover_text_at_pointer(text);
        if resp.response.clicked() {
            // usize to u64 is lossless on every supported target.
            out.push(Command::PickElement(flat as u64));
        }
    }
    // The visible region, snapped outward to a 64-cell grid so small pans reuse the detail.
    let snap = 64usize;
    // Plot bounds to indices: clamped to the tensor, so the casts cannot wrap.
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
    let region = (zoomed && vr1 > vr0 && vc1 > vc0).then(|| Region {
        r0: vr0 / snap * snap,
        r1: (vr1.div_ceil(snap) * snap).min(rows),
        c0: vc0 / snap * snap,
        c1: (vc1.div_ceil(snap) * snap).min(cols),
    });
    (out, region)
}

/// The heatmap tab: both heatmaps side by side with their colour scales.
pub fn heatmaps_ui(
    ui: &mut Ui,
    state: &AppState,
    view: &FrameView,
    textures: &mut HeatTextures,
) -> Vec<Command> {
    let mut out = Vec::new();
    // A paired tensor shows the quantized file's deployed error; otherwise the simulation's.
    let deployed = view
        .compare
        .as_ref()
        .and_then(|c| c.deployed.value.as_deref());
    let q: &dyn HeatSource = match (deployed, view.quant.value.as_deref()) {
        (Some(d), _) => d,
        (None, Some(q)) => q,
        (None, None) => {
            ui.spinner();
            return out;
        }
    };
    let (rows, cols) = rows_cols(q.shape());
    ui.label(
        RichText::new(format!(
            "2-D view {rows}×{cols} · right-drag a box to zoom, double-click to reset · click a \
             cell to pick that weight"
        ))
        .weak(),
    );
    let h = (ui.available_height() - 24.0).max(100.0);
    ui.columns(2, |columns| {
        for (slot, (kind, title)) in [
            (HeatKind::AbsError, "|x' − x| (mean per cell)"),
            (
                HeatKind::Scale,
                if deployed.is_some() {
                    "stored scale per element (mean per cell)"
                } else {
                    "scale S per group"
                },
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let ui = &mut columns[slot];
            ui.label(RichText::new(title).strong());
            let pair = &view.heat[slot];
            let ctx = ui.ctx().clone();
            let ov = pair
                .overview
                .as_ref()
                .map(|img| (textures.texture(&ctx, slot * 2, img), &**img));
            let de = pair
                .detail
                .as_ref()
                .filter(|img| img.region != Region::whole(rows, cols))
                .map(|img| (textures.texture(&ctx, slot * 2 + 1, img), &**img));
            let id = if slot == 0 {
                "heat_error"
            } else {
                "heat_scale"
            };
            let (cmds, wanted) = heatmap_ui(ui, id, q, ov, de, kind, h - 20.0);
            if let Some(img) = &pair.overview {
                ui.label(
                    RichText::new(format!("colour: {:.3e} … {:.3e}", img.vmin, img.vmax)).weak(),
                );
            }
            out.extend(cmds);
            if state.heat_zoom.get(slot).copied().flatten() != wanted {
                out.push(Command::SetHeatZoom {
                    slot,
                    region: wanted,
                });
            }
        }
    });
    out
}
