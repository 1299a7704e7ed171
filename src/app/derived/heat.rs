//! Heatmap images of one quantization over the 2-D view of the tensor (rows = the first axis,
//! columns = the product of the others): mean |x' − x| or the group's scale per cell,
//! aggregated down to at most [`MAX_HEAT_SIDE`] pixels a side, built off the UI thread.

use egui::{Color32, ColorImage};
use rayon::prelude::*;

use super::super::jobs::JobKey;
use super::super::state::Region;
use super::results::{QuantKey, Quantized, Upstream};
use crate::cancel::Cancel;

/// Largest heatmap image side in pixels (images are aggregated down to this).
pub const MAX_HEAT_SIDE: usize = 512;

/// The 2-D view of a tensor used by heatmaps: rows = the first axis, columns = the product of
/// the others (a vector is one row).
pub fn rows_cols(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (1, *n),
        [first, rest @ ..] => (*first, rest.iter().product()),
    }
}

/// Which quantity a heatmap shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeatKind {
    /// mean |x' − x| per cell.
    AbsError,
    /// The scale S of the group each element belongs to (mean per cell).
    Scale,
}

impl HeatKind {
    /// Both kinds, in the order the panel shows them.
    pub const ALL: [Self; 2] = [Self::AbsError, Self::Scale];
}

/// A heatmap request: one quantization, a quantity, and a region of the 2-D view.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeatKey {
    /// The quantization it belongs to.
    pub quant: QuantKey,
    /// That quantization's result.
    pub from: Upstream<Quantized>,
    /// Which quantity.
    pub kind: HeatKind,
    /// The region of the 2-D view.
    pub region: Region,
}

impl JobKey for HeatKey {
    fn same_subject(&self, other: &Self) -> bool {
        self.quant.same_subject(&other.quant)
            && self.kind == other.kind
            && self.region == other.region
    }

    fn lane(&self) -> u64 {
        // The overview and the zoomed detail of each kind compete only with themselves.
        let full = u64::from(self.region.r0 == 0 && self.region.c0 == 0);
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
    /// The region covered.
    pub region: Region,
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
    // A value between two u8 stops stays in 0..=255.
    let mix = |x: u8, y: u8| (f32::from(x) + (f32::from(y) - f32::from(x)) * f).round() as u8;
    Color32::from_rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// What a heatmap is drawn from: original and reconstructed values of one tensor and the
/// scale each element was stored with (a simulated quantization, or a deployed file's tensor
/// against its original).
pub trait HeatSource: Sync {
    /// The tensor's shape (row-major).
    fn shape(&self) -> &[usize];
    /// The original values.
    fn original(&self) -> &[f32];
    /// The reconstructed values, element for element.
    fn reconstructed(&self) -> &[f32];
    /// The scale element `flat` was stored with (NaN when there is none).
    fn scale_at(&self, flat: usize) -> f32;
    /// Whether one scale covers the whole tensor (the scale heatmap is then one colour).
    fn one_scale(&self) -> bool;
    /// The hover text of the scale heatmap at element `flat`.
    fn describe_scale(&self, flat: usize) -> String;
}

impl HeatSource for Quantized {
    fn shape(&self) -> &[usize] {
        &self.result.shape
    }

    fn original(&self) -> &[f32] {
        &self.values
    }

    fn reconstructed(&self) -> &[f32] {
        self.dequantized()
    }

    fn scale_at(&self, flat: usize) -> f32 {
        self.params_of(flat).map_or(f32::NAN, |p| p.scale)
    }

    fn one_scale(&self) -> bool {
        self.layout.is_per_tensor()
    }

    fn describe_scale(&self, flat: usize) -> String {
        format!(
            "group {}  S = {:.4e}",
            self.layout.group_of(flat),
            self.scale_at(flat)
        )
    }
}

/// Builds the heatmap of `key` from its quantization.
pub fn build_heat(key: &HeatKey, cancel: &Cancel) -> Result<HeatImage, String> {
    heat_image(&*key.from.0, key.kind, key.region, cancel)
}

/// Builds the heatmap of `kind` over `region` of `source`'s 2-D view.
pub fn heat_image(
    source: &dyn HeatSource,
    kind: HeatKind,
    region: Region,
    cancel: &Cancel,
) -> Result<HeatImage, String> {
    let (rows, cols) = rows_cols(source.shape());
    let Region { r0, r1, c0, c1 } = region;
    let (r1, c1) = (r1.min(rows), c1.min(cols));
    if r0 >= r1 || c0 >= c1 {
        return Err("empty heatmap region".into());
    }
    let (h_rows, w_cols) = (r1 - r0, c1 - c0);
    let h = h_rows.min(MAX_HEAT_SIDE);
    let w = w_cols.min(MAX_HEAT_SIDE);
    let (values, deq) = (source.original(), source.reconstructed());
    let cell_value = |flat: usize| -> f32 {
        match kind {
            HeatKind::AbsError => match (values.get(flat), deq.get(flat)) {
                (Some(&x), Some(&xh)) if x.is_finite() => (xh - x).abs(),
                _ => f32::NAN,
            },
            HeatKind::Scale => source.scale_at(flat),
        }
    };
    let per_tensor = source.one_scale();
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
                    if kind == HeatKind::Scale && per_tensor {
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
    if kind == HeatKind::AbsError {
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
        region: Region { r0, r1, c0, c1 },
        vmin,
        vmax,
    })
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

    #[test]
    fn rows_cols_flattens_trailing_axes() {
        assert_eq!(rows_cols(&[]), (1, 1));
        assert_eq!(rows_cols(&[7]), (1, 7));
        assert_eq!(rows_cols(&[4, 3, 2]), (4, 6));
    }
}
