//! Exports: the selected tensor's report as JSON (the keys of the CLI's `quantize --json`) or
//! CSV, and where saved files go.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::engine::QuantView;

/// The folder exports are written to: `$HOME/quantscope-exports`, else the temp directory.
pub fn export_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join("quantscope-exports")
}

/// A file name made safe from a tensor name ("layers.0/x" → "layers.0_x").
pub fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn number(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else if v.is_nan() {
        Value::Null
    } else if v > 0.0 {
        json!("inf")
    } else {
        json!("-inf")
    }
}

/// The report of one tensor as a JSON object.
pub fn report_json(name: &str, shape: &[usize], view: &QuantView) -> Value {
    let m = &view.metrics;
    let (clip_min, clip_max) = match view.clip {
        Some((lo, hi)) => (number(lo), number(hi)),
        None => {
            let lo: Vec<Value> = view
                .params
                .iter()
                .map(|p| number(f64::from(p.real_from_code(p.qmin))))
                .collect();
            let hi: Vec<Value> = view
                .params
                .iter()
                .map(|p| number(f64::from(p.real_from_code(p.qmax))))
                .collect();
            (Value::Array(lo), Value::Array(hi))
        }
    };
    json!({
        "name": name,
        "shape": shape,
        "settings": serde_json::to_value(&view.config).unwrap_or(Value::Null),
        "clip_min": clip_min,
        "clip_max": clip_max,
        "scale": view.scale_summary,
        "zero_point": view.zero_point_summary,
        "metrics": {
            "mse": number(m.mse),
            "rmse": number(m.rmse),
            "mae": number(m.mae),
            "max_abs_error": number(m.max_abs_error),
            "sqnr_db": number(m.sqnr_db),
            "cosine": m.cosine.map_or(Value::Null, number),
            "clipped_fraction": number(m.clipped_fraction),
        },
        "bits_per_weight": number(view.bits_per_weight),
        "outliers": {"count": view.outlier_count, "fraction": number(view.outlier_fraction)},
        "elapsed_ms": number(view.elapsed_ms),
    })
}

/// The report as CSV: a header line and one line of values.
pub fn report_csv(name: &str, shape: &[usize], view: &QuantView) -> String {
    let m = &view.metrics;
    let c = &view.config;
    let shape_text = shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x");
    let (clip_min, clip_max) = view.clip.map_or((String::new(), String::new()), |(a, b)| {
        (a.to_string(), b.to_string())
    });
    let fields = [
        ("name", format!("\"{}\"", name.replace('"', "\"\""))),
        ("shape", shape_text),
        ("bits", c.bits.to_string()),
        ("scheme", format!("{:?}", c.scheme).to_lowercase()),
        ("preset", c.preset.name().to_string()),
        ("granularity", format!("\"{:?}\"", c.granularity)),
        ("calibration", c.calibration.name().to_string()),
        ("clip_min", clip_min),
        ("clip_max", clip_max),
        ("mse", m.mse.to_string()),
        ("rmse", m.rmse.to_string()),
        ("mae", m.mae.to_string()),
        ("max_abs_error", m.max_abs_error.to_string()),
        ("sqnr_db", m.sqnr_db.to_string()),
        ("cosine", m.cosine.map_or(String::new(), |v| v.to_string())),
        ("clipped_fraction", m.clipped_fraction.to_string()),
        ("bits_per_weight", view.bits_per_weight.to_string()),
        ("outliers", view.outlier_count.to_string()),
        ("elapsed_ms", format!("{:.1}", view.elapsed_ms)),
    ];
    let header: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
    let values: Vec<&str> = fields.iter().map(|(_, v)| v.as_str()).collect();
    format!("{}\n{}\n", header.join(","), values.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe() {
        assert_eq!(safe_name("layers.0/x y"), "layers.0_x_y");
    }

    #[test]
    fn infinite_db_is_a_string() {
        assert_eq!(number(f64::INFINITY), json!("inf"));
        assert_eq!(number(f64::NAN), Value::Null);
        assert_eq!(number(1.5), json!(1.5));
    }
}
