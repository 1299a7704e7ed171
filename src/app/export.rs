//! Exporting a view as SVG and PNG: the plot rebuilt from the frame's data (not a screenshot)
//! with its title, the settings in force, labelled axes and a legend, written as SVG and
//! rasterised by resvg to the PNG beside it.

use std::path::{Path, PathBuf};

use base64::Engine;
use resvg::{tiny_skia, usvg};

use super::derived::FrameView;
use super::derived::heat::{HeatImage, rows_cols};
use super::panels::histogram::{ACTIVE_COLOUR, calibration_colour};
use super::panels::quant_controls::calibration_label;
use super::state::AppState;
use crate::report::SettingsReport;
use crate::report::plot::{PlotSpec, Rgb, Series};

/// An exported view: its file stem and the plots it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    /// The file name without extension ("histogram-layers.0.mlp.up_proj.weight").
    pub stem: String,
    /// One or more plots (the error tab has two).
    pub plots: Vec<PlotSpec>,
}

fn rgb(c: egui::Color32) -> Rgb {
    [c.r(), c.g(), c.b()]
}

fn settings_line(state: &AppState) -> String {
    let mut line = SettingsReport::new(&state.effective_config()).short();
    line.push_str(&format!(", {} preset", state.settings.quant.preset.name()));
    line
}

fn tensor_name(view: &FrameView) -> String {
    view.tensor
        .as_ref()
        .map_or_else(String::new, |(_, t)| t.name.clone())
}

/// The histogram with the calibrators' thresholds and the active clip range.
pub fn histogram(state: &AppState, view: &FrameView) -> Option<PlotSpec> {
    let h = view.hist.value.as_deref()?;
    let log_y = state.settings.histogram.log_y;
    let bars = h
        .counts
        .iter()
        .enumerate()
        .filter_map(|(i, &c)| {
            let y = super::panels::histogram::bar_height(c, log_y);
            Some((*h.edges.get(i)?, *h.edges.get(i + 1)?, y))
        })
        .collect();
    let mut series = vec![Series::Bars {
        name: "values".into(),
        colour: [120, 120, 130],
        bars,
    }];
    let mut notes = Vec::new();
    if state.settings.histogram.show_thresholds {
        for t in &view.legend.lines {
            let Some(&(lo, hi)) = t.ranges.get(view.legend.group) else {
                continue;
            };
            let colour = rgb(calibration_colour(&t.calibration));
            let name = calibration_label(&t.calibration).to_string();
            for x in [lo, hi] {
                series.push(Series::VLine {
                    name: String::new(),
                    colour,
                    width: 1.5,
                    x,
                });
            }
            notes.push((
                colour,
                format!("{name} [{lo:.4}, {hi:.4}]  SQNR {:.2} dB", t.sqnr_db),
            ));
        }
    }
    if let Some((lo, hi)) = view.quant.value.as_ref().and_then(|q| q.grid_range()) {
        for x in [lo, hi] {
            series.push(Series::VLine {
                name: "range the grid covers".into(),
                colour: rgb(ACTIVE_COLOUR),
                width: 2.5,
                x,
            });
        }
    }
    Some(PlotSpec {
        title: format!("{} — histogram", tensor_name(view)),
        settings: settings_line(state),
        x_label: "value".into(),
        y_label: if log_y { "log10(1 + count)" } else { "count" }.into(),
        y_down: false,
        series,
        notes,
    })
}

/// The error tab: original vs dequantized, and the error histogram.
pub fn error_tab(state: &AppState, view: &FrameView) -> Vec<PlotSpec> {
    let Some(d) = view.detail.value.as_deref() else {
        return Vec::new();
    };
    let log_y = state.settings.histogram.log_y;
    let steps = |bins: &super::derived::results::Bins| -> Vec<(f64, f64)> {
        let mut points = Vec::with_capacity(bins.counts.len() * 2);
        for (i, &c) in bins.counts.iter().enumerate() {
            if let (Some(&a), Some(&b)) = (bins.edges.get(i), bins.edges.get(i + 1)) {
                let y = super::panels::histogram::bar_height(c, log_y);
                points.push((a, y));
                points.push((b, y));
            }
        }
        points
    };
    let name = tensor_name(view);
    let mut notes = Vec::new();
    if let Some(q) = view.quant.value.as_deref() {
        notes.push((
            [0, 0, 0],
            format!(
                "SQNR {:.2} dB, MSE {:.4e}, {:.3} bits per weight",
                q.result.metrics.sqnr_db, q.result.metrics.mse, q.result.bits_per_weight
            ),
        ));
    }
    let error_bars = d
        .error_hist
        .counts
        .iter()
        .enumerate()
        .filter_map(|(i, &c)| {
            let y = super::panels::histogram::bar_height(c, false);
            Some((
                *d.error_hist.edges.get(i)?,
                *d.error_hist.edges.get(i + 1)?,
                y,
            ))
        })
        .collect();
    vec![
        PlotSpec {
            title: format!("{name} — original and dequantized"),
            settings: settings_line(state),
            x_label: "value".into(),
            y_label: if log_y { "log10(1 + count)" } else { "count" }.into(),
            y_down: false,
            series: vec![
                Series::Line {
                    name: "dequantized".into(),
                    colour: [240, 140, 50],
                    width: 1.5,
                    points: steps(&d.dequantized),
                },
                Series::Line {
                    name: "original".into(),
                    colour: [60, 120, 210],
                    width: 2.0,
                    points: steps(&d.original),
                },
            ],
            notes: notes.clone(),
        },
        PlotSpec {
            title: format!("{name} — error x' − x"),
            settings: settings_line(state),
            x_label: "x' − x".into(),
            y_label: "count".into(),
            y_down: false,
            series: vec![Series::Bars {
                name: "error x' − x".into(),
                colour: [220, 70, 90],
                bars: error_bars,
            }],
            notes,
        },
    ]
}

/// The two heatmaps, each as an image over its rows and columns.
pub fn heatmaps(state: &AppState, view: &FrameView) -> Result<Vec<PlotSpec>, String> {
    let Some(q) = view.quant.value.as_deref() else {
        return Ok(Vec::new());
    };
    let (rows, cols) = rows_cols(&q.result.shape);
    let name = tensor_name(view);
    let mut plots = Vec::new();
    for (pair, what) in view
        .heat
        .iter()
        .zip(["|x' − x| (mean per cell)", "scale S per group"])
    {
        let Some(img) = pair.overview.as_deref() else {
            continue;
        };
        // Row and column counts are far below 2^53: exact in f64.
        let rect = [0.0, cols as f64, 0.0, rows as f64];
        plots.push(PlotSpec {
            title: format!("{name} — {what}"),
            settings: settings_line(state),
            x_label: "column".into(),
            y_label: "row".into(),
            y_down: true,
            series: vec![Series::Image {
                data_uri: png_data_uri(img)?,
                rect,
            }],
            notes: vec![(
                [0, 0, 0],
                format!(
                    "colour: viridis from {:.3e} (dark) to {:.3e} (yellow)",
                    img.vmin, img.vmax
                ),
            )],
        });
    }
    Ok(plots)
}

/// A heat image as a PNG data URI.
fn png_data_uri(img: &HeatImage) -> Result<String, String> {
    let [w, h] = img.image.size;
    let (w, h) = (
        u32::try_from(w).map_err(|e| e.to_string())?,
        u32::try_from(h).map_err(|e| e.to_string())?,
    );
    let mut pixmap = tiny_skia::Pixmap::new(w, h).ok_or("an empty heatmap")?;
    for (dst, c) in pixmap.pixels_mut().iter_mut().zip(&img.image.pixels) {
        // Heatmap colours are opaque, so premultiplied equals straight RGB.
        *dst = tiny_skia::PremultipliedColorU8::from_rgba(c.r(), c.g(), c.b(), 255)
            .ok_or("a pixel out of range")?;
    }
    let png = pixmap.encode_png().map_err(|e| e.to_string())?;
    Ok(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    ))
}

/// The font exports are drawn with: the bundled DejaVu Sans subset as the sans-serif family, so
/// a machine without system fonts renders the same PNG.
fn font_options() -> usvg::Options<'static> {
    let mut options = usvg::Options::default();
    let db = options.fontdb_mut();
    db.load_font_data(super::BUNDLED_FONT.to_vec());
    let family = db
        .faces()
        .next()
        .and_then(|f| f.families.first().map(|(n, _)| n.clone()));
    if let Some(family) = family {
        db.set_sans_serif_family(family);
    }
    options
}

/// Writes `svg` to `dir/stem.svg` and its rendering to `dir/stem.png`; returns both paths.
pub fn write_svg_and_png(dir: &Path, stem: &str, svg: &str) -> Result<(PathBuf, PathBuf), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{e}: {}", dir.display()))?;
    let svg_path = dir.join(format!("{stem}.svg"));
    let png_path = dir.join(format!("{stem}.png"));
    std::fs::write(&svg_path, svg).map_err(|e| format!("{e}: {}", svg_path.display()))?;
    let tree = usvg::Tree::from_str(svg, &font_options()).map_err(|e| e.to_string())?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).ok_or("an empty plot")?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap
        .save_png(&png_path)
        .map_err(|e| format!("{e}: {}", png_path.display()))?;
    Ok((svg_path, png_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exported_plot_is_an_svg_and_a_png_of_the_same_size() {
        let spec = PlotSpec {
            title: "t — histogram".into(),
            settings: "int8 symmetric, per tensor, minmax".into(),
            x_label: "value".into(),
            y_label: "count".into(),
            y_down: false,
            series: vec![Series::Bars {
                name: "values".into(),
                colour: [120, 120, 130],
                bars: vec![(-1.0, 0.0, 2.0), (0.0, 1.0, 4.0)],
            }],
            notes: vec![],
        };
        let dir = tempfile::tempdir().expect("temp dir");
        if let Ok(keep) = std::env::var("QUANTSCOPE_KEEP_EXPORT") {
            let _ = write_svg_and_png(
                std::path::Path::new(&keep),
                "h",
                &crate::report::plot::to_svg(&spec),
            );
        }
        let (svg, png) = write_svg_and_png(dir.path(), "h", &crate::report::plot::to_svg(&spec))
            .expect("written");
        assert!(
            std::fs::read_to_string(svg)
                .expect("svg")
                .contains("t — histogram")
        );
        let bytes = std::fs::read(png).expect("png");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        // IHDR width and height: the SVG's 900 × (520 + one legend line + 8).
        let w = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
        let h = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
        assert_eq!((w, h), (900, 550));
        // Text was drawn: the title row holds dark pixels (the app's font is in the database).
        let pixmap = tiny_skia::Pixmap::decode_png(&bytes).expect("decodes");
        let dark = (8..30)
            .flat_map(|y| (0..900).map(move |x| (x, y)))
            .filter(|&(x, y)| pixmap.pixel(x, y).is_some_and(|p| p.red() < 128))
            .count();
        assert!(dark > 100, "title pixels: {dark}");
    }
}
