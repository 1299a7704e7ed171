//! Plots as standalone SVG documents — title, the settings in force, labelled axes, bars,
//! lines, vertical markers, an embedded image and a legend — so an exported view reads on its
//! own. Also the tick rule (1-2-5 steps, as many decimals as the spacing needs) the app's live
//! plots use, so an export and the screen label their axes alike.

use std::fmt::Write;

/// An sRGB colour.
pub type Rgb = [u8; 3];

/// One drawn series.
#[derive(Debug, Clone, PartialEq)]
pub enum Series {
    /// Bars from `lo` to `hi` on x with height `y` each.
    Bars {
        /// Legend name.
        name: String,
        /// Fill colour.
        colour: Rgb,
        /// (lo, hi, y) per bar.
        bars: Vec<(f64, f64, f64)>,
    },
    /// A polyline.
    Line {
        /// Legend name.
        name: String,
        /// Stroke colour.
        colour: Rgb,
        /// Stroke width in pixels.
        width: f64,
        /// The points.
        points: Vec<(f64, f64)>,
    },
    /// A vertical line at `x` across the plot.
    VLine {
        /// Legend name (several lines may share one entry).
        name: String,
        /// Stroke colour.
        colour: Rgb,
        /// Stroke width in pixels.
        width: f64,
        /// Where.
        x: f64,
    },
    /// An image stretched over the data rectangle [x0, x1] × [y0, y1].
    Image {
        /// The image as a data URI ("data:image/png;base64,…").
        data_uri: String,
        /// Data rectangle: x0, x1, y0, y1.
        rect: [f64; 4],
    },
}

/// A plot to export.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotSpec {
    /// The title (the tensor and the view).
    pub title: String,
    /// The settings in force, one line.
    pub settings: String,
    /// The x axis label.
    pub x_label: String,
    /// The y axis label.
    pub y_label: String,
    /// Whether y grows downwards (row indices of a heatmap).
    pub y_down: bool,
    /// What is drawn, in order.
    pub series: Vec<Series>,
    /// Extra legend lines (colour swatch and text) after the series' names.
    pub notes: Vec<(Rgb, String)>,
}

/// Width of an exported plot in pixels.
pub const WIDTH: f64 = 900.0;
/// Height of an exported plot in pixels (legend below it adds more).
pub const HEIGHT: f64 = 520.0;

/// The smallest 1, 2 or 5 × 10^k at least `x` (x > 0).
pub fn nice_step_at_least(x: f64) -> f64 {
    let e = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * e)
        .find(|&s| s >= x * (1.0 - 1e-12))
        .unwrap_or(10.0 * e)
}

/// A tick label with as many decimals as the tick spacing `step` needs ("0.45" at 0.05 steps,
/// "200" at 100); tiny or huge values switch to exponent form with enough digits to stay
/// distinct.
pub fn tick_text(value: f64, step: f64) -> String {
    let step = step.abs();
    if !(value.is_finite() && step.is_finite() && step > 0.0) {
        return format!("{value}");
    }
    let magnitude = value.abs().max(step);
    if !(1e-4..1e6).contains(&magnitude) {
        // Significant digits enough to tell neighbouring ticks apart (at most 8).
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

/// Ticks over [lo, hi]: a 1-2-5 step giving about `target` intervals, and the tick values.
pub fn ticks(lo: f64, hi: f64, target: f64) -> (f64, Vec<f64>) {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return (1.0, vec![lo]);
    }
    let step = nice_step_at_least(span / target.max(1.0));
    // Tick indices of the range: bounded by `target` intervals, so the casts cannot overflow.
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    let values = (first..=last.min(first + 1000))
        // Exact for every index the loop can reach.
        .map(|i| i as f64 * step)
        .collect();
    (step, values)
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn colour(c: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// The data range the series cover (x, then y), widened where empty.
fn data_range(spec: &PlotSpec) -> ((f64, f64), (f64, f64)) {
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    let mut take = |x: f64, y: Option<f64>| {
        if x.is_finite() {
            x0 = x0.min(x);
            x1 = x1.max(x);
        }
        if let Some(y) = y.filter(|y| y.is_finite()) {
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    };
    for s in &spec.series {
        match s {
            Series::Bars { bars, .. } => {
                for &(lo, hi, y) in bars {
                    take(lo, Some(0.0));
                    take(hi, Some(y));
                }
            }
            Series::Line { points, .. } => points.iter().for_each(|&(x, y)| take(x, Some(y))),
            Series::VLine { x, .. } => take(*x, None),
            Series::Image { rect, .. } => {
                take(rect[0], Some(rect[2]));
                take(rect[1], Some(rect[3]));
            }
        }
    }
    let widen = |lo: f64, hi: f64| {
        if !(lo.is_finite() && hi.is_finite()) {
            (0.0, 1.0)
        } else if hi > lo {
            (lo, hi)
        } else {
            (lo - 0.5, hi + 0.5)
        }
    };
    (widen(x0, x1), widen(y0, y1))
}

/// The plot as a standalone SVG document (fonts: the reader's sans-serif).
pub fn to_svg(spec: &PlotSpec) -> String {
    let ((x0, x1), (y0, y1)) = data_range(spec);
    // Margins: title and settings above, tick labels and axis names left and below.
    let (left, right, top, bottom) = (78.0, 24.0, 64.0, 56.0);
    let (pw, ph) = (WIDTH - left - right, HEIGHT - top - bottom);
    let sx = |x: f64| left + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| {
        let t = (y - y0) / (y1 - y0);
        if spec.y_down {
            top + t * ph
        } else {
            top + (1.0 - t) * ph
        }
    };
    let mut legend: Vec<(Rgb, String)> = Vec::new();
    let mut add_legend = |c: Rgb, name: &str| {
        if !name.is_empty() && !legend.iter().any(|(_, n)| n == name) {
            legend.push((c, name.to_string()));
        }
    };
    for s in &spec.series {
        match s {
            Series::Bars { name, colour, .. }
            | Series::Line { name, colour, .. }
            | Series::VLine { name, colour, .. } => add_legend(*colour, name),
            Series::Image { .. } => {}
        }
    }
    legend.extend(spec.notes.iter().cloned());
    let legend_h = 22.0 * legend.len() as f64;
    let total_h = HEIGHT + legend_h + 8.0;
    let mut svg = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{total_h}" viewBox="0 0 {WIDTH} {total_h}" font-family="DejaVu Sans, sans-serif">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{left}" y="24" font-size="17" font-weight="bold">{}</text>"#,
        esc(&spec.title)
    );
    let _ = writeln!(
        svg,
        r##"<text x="{left}" y="44" font-size="12" fill="#444">{}</text>"##,
        esc(&spec.settings)
    );
    let _ = writeln!(
        svg,
        r##"<defs><clipPath id="plot"><rect x="{left}" y="{top}" width="{pw}" height="{ph}"/></clipPath></defs>"##
    );
    // Grid and ticks.
    let (xstep, xticks) = ticks(x0, x1, 8.0);
    let (ystep, yticks) = ticks(y0, y1, 6.0);
    for x in &xticks {
        let px = sx(*x);
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.2}" y1="{top}" x2="{px:.2}" y2="{:.2}" stroke="#e4e4e4"/><text x="{px:.2}" y="{:.2}" font-size="12" text-anchor="middle">{}</text>"##,
            top + ph,
            top + ph + 16.0,
            esc(&tick_text(*x, xstep))
        );
    }
    for y in &yticks {
        let py = sy(*y);
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{py:.2}" x2="{:.2}" y2="{py:.2}" stroke="#e4e4e4"/><text x="{:.2}" y="{:.2}" font-size="12" text-anchor="end">{}</text>"##,
            left + pw,
            left - 6.0,
            py + 4.0,
            esc(&tick_text(*y, ystep))
        );
    }
    let _ = writeln!(svg, r#"<g clip-path="url(#plot)">"#);
    for s in &spec.series {
        match s {
            Series::Bars {
                colour: c, bars, ..
            } => {
                for &(lo, hi, y) in bars {
                    let (a, b) = (sx(lo), sx(hi));
                    let (ya, yb) = (sy(0.0_f64.max(y0)), sy(y));
                    let _ = writeln!(
                        svg,
                        r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="{}"/>"#,
                        a.min(b),
                        ya.min(yb),
                        (b - a).abs().max(0.5),
                        (ya - yb).abs(),
                        colour(*c)
                    );
                }
            }
            Series::Line {
                colour: c,
                width,
                points,
                ..
            } => {
                let path: Vec<String> = points
                    .iter()
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .map(|&(x, y)| format!("{:.2},{:.2}", sx(x), sy(y)))
                    .collect();
                let _ = writeln!(
                    svg,
                    r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="{width}"/>"#,
                    path.join(" "),
                    colour(*c)
                );
            }
            Series::VLine {
                colour: c,
                width,
                x,
                ..
            } => {
                let px = sx(*x);
                let _ = writeln!(
                    svg,
                    r#"<line x1="{px:.2}" y1="{top}" x2="{px:.2}" y2="{:.2}" stroke="{}" stroke-width="{width}"/>"#,
                    top + ph,
                    colour(*c)
                );
            }
            Series::Image { data_uri, rect } => {
                let (xa, xb, ya, yb) = (sx(rect[0]), sx(rect[1]), sy(rect[2]), sy(rect[3]));
                let _ = writeln!(
                    svg,
                    r#"<image x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" preserveAspectRatio="none" style="image-rendering:pixelated" href="{}"/>"#,
                    xa.min(xb),
                    ya.min(yb),
                    (xb - xa).abs(),
                    (yb - ya).abs(),
                    esc(data_uri)
                );
            }
        }
    }
    let _ = writeln!(svg, "</g>");
    let _ = writeln!(
        svg,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.2}" y="{:.2}" font-size="13" text-anchor="middle">{}</text>"#,
        left + pw / 2.0,
        top + ph + 38.0,
        esc(&spec.x_label)
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(18 {:.2}) rotate(-90)" font-size="13" text-anchor="middle">{}</text>"#,
        top + ph / 2.0,
        esc(&spec.y_label)
    );
    for (i, (c, text)) in legend.iter().enumerate() {
        let y = HEIGHT + 8.0 + 22.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<rect x="{left}" y="{:.2}" width="22" height="6" fill="{}"/><text x="{:.2}" y="{:.2}" font-size="13">{}</text>"#,
            y - 7.0,
            colour(*c),
            left + 30.0,
            y,
            esc(text)
        );
    }
    let _ = writeln!(svg, "</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_show_the_decimals_their_spacing_needs() {
        assert_eq!(tick_text(0.3, 0.1), "0.3");
        assert_eq!(tick_text(-0.45, 0.05), "-0.45");
        assert_eq!(tick_text(0.25, 0.25), "0.25");
        assert_eq!(tick_text(2.0, 1.0), "2");
        assert_eq!(tick_text(0.0, 0.05), "0");
        assert_eq!(tick_text(200.0, 100.0), "200");
        // Below 1e-4 the labels switch to exponent form and stay distinct.
        assert_eq!(tick_text(2e-5, 1e-5), "2.0e-5");
        assert_ne!(tick_text(2.5e-5, 5e-6), tick_text(3e-5, 5e-6));
    }

    #[test]
    fn steps_are_one_two_five() {
        assert_eq!(nice_step_at_least(0.013), 0.02);
        assert_eq!(nice_step_at_least(0.03), 0.05);
        assert_eq!(nice_step_at_least(0.07), 0.1);
        assert_eq!(nice_step_at_least(1.0), 1.0);
        // ±0.55 in about 8 intervals: 0.2 steps, ticks -0.4 … 0.4.
        let (step, values) = ticks(-0.55, 0.55, 8.0);
        assert_eq!(step, 0.2);
        assert_eq!(values.len(), 5);
    }

    #[test]
    fn svg_carries_title_settings_axes_series_and_legend() {
        let spec = PlotSpec {
            title: "w <histogram>".into(),
            settings: "int8 symmetric, per tensor, minmax".into(),
            x_label: "value".into(),
            y_label: "count".into(),
            y_down: false,
            series: vec![
                Series::Bars {
                    name: "counts".into(),
                    colour: [10, 20, 30],
                    bars: vec![(-1.0, 0.0, 3.0), (0.0, 1.0, 5.0)],
                },
                Series::VLine {
                    name: "min-max".into(),
                    colour: [230, 120, 40],
                    width: 2.0,
                    x: 0.9,
                },
            ],
            notes: vec![([0, 0, 0], "SQNR 26.88 dB".into())],
        };
        let svg = to_svg(&spec);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("w &lt;histogram&gt;"), "escaped title");
        assert!(svg.contains("int8 symmetric, per tensor, minmax"));
        assert_eq!(
            svg.matches("<rect x=").count(),
            2 + 2 + 3,
            "2 bars, the clip and the frame, 3 legend swatches"
        );
        assert!(svg.contains(">min-max<") && svg.contains(">SQNR 26.88 dB<"));
        assert!(svg.contains("#e67828"), "the marker's colour");
        // Tick labels of both axes: x from -1.0 to 1.0 in 0.5 steps, y from 0 to 5 in 1s.
        assert!(svg.contains(">-1.0<") && svg.contains(">0.5<") && svg.contains(">1.0<"));
        assert!(svg.contains(">0<") && svg.contains(">5<"));
    }
}
