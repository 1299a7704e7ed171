//! Per-tensor quantization reports: the stable JSON of `quantize --json`, CSV and Markdown rows.
//!
//! The CLI and the app both build a [`TensorReport`] from a [`QuantResult`] and print or export
//! it through the same functions, so the two front-ends cannot disagree. [`batches`] reads
//! calibration-batch files and prints their calibration-over-batches report; [`compare`] is
//! the comparison of a quantized model with its original; [`plot`] draws exported plots as SVG.
//! The planner's reports are in [`recipe`] (the plan and recipe JSON, llama-quantize arguments)
//! and [`sweep`] (the measurement table).

pub mod batches;
pub mod compare;
pub mod plot;
pub mod recipe;
pub mod sweep;
mod text;

pub use text::human_bytes;

use serde::Serialize;
use serde_json::{Value, json};

use crate::quant::tensor::QuantResult;
use crate::quant::{Calibration, Granularity, Metrics, OutlierMode, OutlierThreshold, QuantConfig};

/// The settings in force for one run, spelled as on the command line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SettingsReport {
    /// Code width.
    pub bits: u8,
    /// "symmetric" or "asymmetric".
    pub scheme: &'static str,
    /// The preset's CLI name.
    pub preset: &'static str,
    /// The tie rule in force (the preset's, or the override).
    pub rounding: &'static str,
    /// "tensor", "channel" or "group".
    pub granularity: &'static str,
    /// The channel axis (per-channel only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub axis: Option<usize>,
    /// The group size (per-group only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_size: Option<usize>,
    /// "minmax", "percentile", "entropy" or "mse".
    pub calibration: &'static str,
    /// The percentile p (percentile calibration only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentile: Option<f64>,
    /// "none", "elements" or "columns".
    pub outliers: &'static str,
    /// The outlier threshold as given: "6" or "3std" (only with an outlier mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outlier_threshold: Option<String>,
    /// The code range [qmin, qmax].
    pub code_range: [i32; 2],
    /// "int" for the affine integer scheme above, else the deployed format's CLI name
    /// ("q4_k", "nvfp4", …), which then decides every bit and makes the fields above moot.
    pub format: &'static str,
}

impl SettingsReport {
    /// Describes `cfg`.
    pub fn new(cfg: &QuantConfig) -> Self {
        let (granularity, axis, group_size) = match cfg.granularity {
            Granularity::PerTensor => ("tensor", None, None),
            Granularity::PerChannel { axis } => ("channel", Some(axis), None),
            Granularity::PerGroup { size } => ("group", None, Some(size)),
        };
        let percentile = match cfg.calibration {
            Calibration::Percentile(p) => Some(p),
            _ => None,
        };
        let outliers = match cfg.outliers {
            OutlierMode::None => "none",
            OutlierMode::Elements => "elements",
            OutlierMode::Columns => "columns",
        };
        let outlier_threshold =
            (cfg.outliers != OutlierMode::None).then(|| match cfg.outlier_threshold {
                OutlierThreshold::Absolute(t) => format!("{t}"),
                OutlierThreshold::StdMultiple(k) => format!("{k}std"),
            });
        let (qmin, qmax) = cfg.code_range();
        Self {
            bits: cfg.bits,
            scheme: match cfg.scheme {
                crate::quant::Scheme::Symmetric => "symmetric",
                crate::quant::Scheme::Asymmetric => "asymmetric",
            },
            preset: cfg.preset.name(),
            rounding: crate::quant::params::rounding_of(cfg).name(),
            granularity,
            axis,
            group_size,
            calibration: cfg.calibration.name(),
            percentile,
            outliers,
            outlier_threshold,
            code_range: [qmin, qmax],
            format: cfg.format.map_or("int", |f| f.name()),
        }
    }
}

impl SettingsReport {
    /// A few words naming the settings ("int8 symmetric, per group of 128, minmax").
    pub fn short(&self) -> String {
        if self.format != "int" {
            return self.format.to_string();
        }
        let granularity = match (self.granularity, self.axis, self.group_size) {
            ("channel", Some(a), _) => format!("per channel (axis {a})"),
            ("group", _, Some(g)) => format!("per group of {g}"),
            (g, _, _) => format!("per {g}"),
        };
        let calibration = match self.percentile {
            Some(p) => format!("percentile {p}"),
            None => self.calibration.to_string(),
        };
        format!(
            "int{} {}, {granularity}, {calibration}",
            self.bits, self.scheme
        )
    }
}

/// min / max / mean of a parameter array, for summaries of per-group scales.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Mean value.
    pub mean: f64,
}

impl Spread {
    /// The spread of `values`; `None` when empty.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut count = 0u64;
        let (mut min, mut max, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
        for v in values {
            count += 1;
            min = min.min(v);
            max = max.max(v);
            sum += v;
        }
        // Display statistic: precision loss past 2^53 groups does not matter.
        (count > 0).then(|| Self {
            min,
            max,
            mean: sum / count as f64,
        })
    }
}

/// The report of one quantized tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorReport {
    /// Tensor name.
    pub name: String,
    /// Stored dtype of the source tensor.
    pub dtype: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Settings in force.
    pub settings: SettingsReport,
    /// The run's result.
    pub result: QuantResult,
    /// Compute time in milliseconds (quantize, dequantize, measure; excludes opening and decoding).
    pub elapsed_ms: f64,
    /// Time spent decoding the stored tensor to f32, in milliseconds.
    pub decode_ms: f64,
}

/// A float for JSON: numbers stay numbers; NaN and ±Inf become "nan", "inf", "-inf".
pub fn json_float(value: f64) -> Value {
    if value.is_nan() {
        json!("nan")
    } else if value.is_infinite() {
        json!(if value > 0.0 { "inf" } else { "-inf" })
    } else {
        json!(value)
    }
}

fn metrics_json(m: &Metrics) -> Value {
    json!({
        "mse": json_float(m.mse),
        "rmse": json_float(m.rmse),
        "mae": json_float(m.mae),
        "max_abs_error": json_float(m.max_abs_error),
        "sqnr_db": json_float(m.sqnr_db),
        "cosine": m.cosine.map(json_float),
        "clipped_fraction": json_float(m.clipped_fraction),
        "clipped": m.clipped,
        "count": m.count,
        "nan_count": m.nan_count,
        "inf_count": m.inf_count,
    })
}

/// How much of the per-group arrays the JSON carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JsonDetail {
    /// Per-channel and per-group arrays as their spread {min, max, mean} (the default: a
    /// per-group int4 report of a large model stays small).
    #[default]
    Summary,
    /// Every value of every array (`--full`).
    Full,
}

/// One value for per-tensor results; otherwise the array, or its spread.
fn per_group(values: &[f64], per_tensor: bool, detail: JsonDetail) -> Value {
    match (values, detail) {
        ([single], _) if per_tensor => json_float(*single),
        (_, JsonDetail::Full) => Value::Array(values.iter().copied().map(json_float).collect()),
        (_, JsonDetail::Summary) => spread_json(Spread::of(values.iter().copied())),
    }
}

fn spread_json(spread: Option<Spread>) -> Value {
    match spread {
        Some(s) => json!({
            "min": json_float(s.min),
            "max": json_float(s.max),
            "mean": json_float(s.mean),
        }),
        None => Value::Null,
    }
}

impl TensorReport {
    /// Whether the run had one (S, z) for the whole tensor.
    pub fn is_per_tensor(&self) -> bool {
        self.settings.granularity == "tensor"
    }

    /// The clip range in force per group: the calibrated [min, max] for asymmetric schemes, and
    /// [-a, a] with a = max(|min|, |max|) for symmetric ones, whose calibrators choose one
    /// threshold a.
    pub fn clip_ranges(&self) -> (Vec<f64>, Vec<f64>) {
        let r = &self.result;
        if self.settings.scheme == "symmetric" {
            let amax: Vec<f64> = r
                .clip_min
                .iter()
                .zip(&r.clip_max)
                .map(|(lo, hi)| lo.abs().max(hi.abs()))
                .collect();
            (amax.iter().map(|a| -a).collect(), amax)
        } else {
            (r.clip_min.clone(), r.clip_max.clone())
        }
    }

    /// The report of `result` for tensor `name` (with the settings `cfg` it ran under), without
    /// the large outputs (codes, dequantized values), which reports never print.
    pub fn new(
        name: &str,
        dtype: &str,
        cfg: &QuantConfig,
        result: &QuantResult,
        elapsed_ms: f64,
        decode_ms: f64,
    ) -> Self {
        Self {
            name: name.to_string(),
            dtype: dtype.to_string(),
            shape: result.shape.clone(),
            settings: SettingsReport::new(cfg),
            result: result.without_outputs(),
            elapsed_ms,
            decode_ms,
        }
    }

    /// The stable JSON object of `quantize --json` (keys documented in the README).
    pub fn to_json(&self, detail: JsonDetail) -> Value {
        let r = &self.result;
        let per_tensor = self.is_per_tensor();
        let scales: Vec<f64> = r.scales.iter().map(|&s| f64::from(s)).collect();
        let zero_points: Vec<f64> = r.zero_points.iter().map(|&z| f64::from(z)).collect();
        let outliers = &r.outliers;
        let (clip_min, clip_max) = self.clip_ranges();
        json!({
            "name": self.name,
            "dtype": self.dtype,
            "shape": self.shape,
            "format": self.settings.format,
            "settings": self.settings,
            "clip_min": per_group(&clip_min, per_tensor, detail),
            "clip_max": per_group(&clip_max, per_tensor, detail),
            "scale": per_group(&scales, per_tensor, detail),
            "zero_point": per_group(&zero_points, per_tensor, detail),
            "scale_shape": r.scale_shape,
            "scale_summary": Spread::of(scales.iter().copied()),
            "zero_point_summary": Spread::of(zero_points.iter().copied()),
            "degenerate_groups": r.degenerate_groups,
            "tail_group": r.tail_group,
            "metrics": metrics_json(&r.metrics),
            "bits_per_weight": json_float(r.bits_per_weight),
            "outliers": {
                "mode": self.settings.outliers,
                "threshold": json_float(outliers.threshold),
                "center": json_float(outliers.center),
                "count": outliers.count,
                "fraction": json_float(outliers.fraction),
                "columns": outliers.columns,
                "metrics_without_split": outliers.without_split.as_ref().map(metrics_json),
                "bits_per_weight_without_split": json_float(outliers.bits_per_weight_without_split),
            },
            "elapsed_ms": self.elapsed_ms,
            "calibration_ms": r.calibration_ms,
            "decode_ms": self.decode_ms,
        })
    }

    /// The CSV header matching [`TensorReport::csv_row`].
    pub const CSV_HEADER: &'static str = "name,dtype,shape,bits,scheme,preset,rounding,granularity,calibration,outliers,clip_min,clip_max,mse,rmse,mae,max_abs_error,sqnr_db,cosine,clipped_fraction,bits_per_weight,outlier_count,outlier_fraction,elapsed_ms,format";

    /// One CSV line (per-group clip ranges are summarised by their extremes).
    pub fn csv_row(&self) -> String {
        let r = &self.result;
        let m = &r.metrics;
        let (lows, highs) = self.clip_ranges();
        // A deployed format has no clip range (its scales live in its blocks): empty cells.
        let extreme = |values: Vec<f64>, start: f64, pick: fn(f64, f64) -> f64| {
            if values.is_empty() {
                String::new()
            } else {
                values.into_iter().fold(start, pick).to_string()
            }
        };
        let clip_min = extreme(lows, f64::INFINITY, f64::min);
        let clip_max = extreme(highs, f64::NEG_INFINITY, f64::max);
        let shape: Vec<String> = self.shape.iter().map(ToString::to_string).collect();
        let s = &self.settings;
        let cells = [
            csv_quote(&self.name),
            self.dtype.clone(),
            shape.join("x"),
            s.bits.to_string(),
            s.scheme.to_string(),
            s.preset.to_string(),
            s.rounding.to_string(),
            s.granularity.to_string(),
            s.calibration.to_string(),
            s.outliers.to_string(),
            clip_min,
            clip_max,
            m.mse.to_string(),
            m.rmse.to_string(),
            m.mae.to_string(),
            m.max_abs_error.to_string(),
            m.sqnr_db.to_string(),
            m.cosine.map_or_else(String::new, |c| c.to_string()),
            m.clipped_fraction.to_string(),
            r.bits_per_weight.to_string(),
            r.outliers.count.to_string(),
            r.outliers.fraction.to_string(),
            format!("{:.3}", self.elapsed_ms),
            self.settings.format.to_string(),
        ];
        cells.join(",")
    }

    /// One line of a Markdown table: name, settings, SQNR, MSE, bits per weight.
    pub fn markdown_row(&self) -> String {
        let m = &self.result.metrics;
        let settings = if self.settings.format == "int" {
            format!(
                "{}-bit {} {} {}",
                self.settings.bits,
                self.settings.scheme,
                self.settings.granularity,
                self.settings.calibration
            )
        } else {
            self.settings.format.to_string()
        };
        format!(
            "| {} | {} | {settings} | {:.2} | {:.4e} | {:.3} |",
            self.name.replace('|', "\\|"),
            self.dtype,
            m.sqnr_db,
            m.mse,
            self.result.bits_per_weight
        )
    }
}

/// Quotes a CSV cell when it holds a comma, quote or newline (RFC 4180).
pub fn csv_quote(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::Cancel;
    use crate::quant::Scheme;
    use crate::quant::tensor::{Outputs, quantize_tensor};

    fn seed_report(cfg: QuantConfig) -> TensorReport {
        let x = [-2.5f32, -1.0, 0.0, 1.0, 3.5];
        let result = quantize_tensor(&x, &[5], &cfg, Outputs::default(), &Cancel::never())
            .expect("valid settings");
        TensorReport {
            name: "seed".into(),
            dtype: "F32".into(),
            shape: vec![5],
            settings: SettingsReport::new(&cfg),
            result,
            elapsed_ms: 0.0,
            decode_ms: 0.0,
        }
    }

    #[test]
    fn json_keys_and_seed_values() {
        let cfg = QuantConfig {
            scheme: Scheme::Asymmetric,
            ..QuantConfig::default()
        };
        let json = seed_report(cfg).to_json(JsonDetail::Summary);
        // NUMERICS.md §2: asymmetric uint8 of the seed vector, S = 6/255, z = 106.
        assert_eq!(json["clip_min"], json!(-2.5));
        assert_eq!(json["clip_max"], json!(3.5));
        assert_eq!(json["zero_point"], json!(106.0));
        assert_eq!(json["settings"]["code_range"], json!([0, 255]));
        assert_eq!(json["settings"]["rounding"], json!("half-even"));
        let sqnr = json["metrics"]["sqnr_db"].as_f64().unwrap_or(f64::NAN);
        assert!((sqnr - 47.73).abs() < 0.005, "{sqnr}");
        for key in [
            "mse",
            "rmse",
            "mae",
            "max_abs_error",
            "cosine",
            "clipped_fraction",
        ] {
            assert!(json["metrics"][key].is_number(), "{key}");
        }
        assert!(json["outliers"]["count"].is_u64());
        assert!(json["bits_per_weight"].is_number());
    }

    #[test]
    fn per_group_arrays_are_summarised_unless_full() {
        let x = [-2.5f32, -1.0, 0.0, 1.0, 3.5, 0.5];
        let cfg = QuantConfig {
            granularity: crate::quant::Granularity::PerGroup { size: 2 },
            ..QuantConfig::default()
        };
        let result = quantize_tensor(&x, &[6], &cfg, Outputs::default(), &Cancel::never())
            .expect("valid settings");
        let report = TensorReport::new("g", "F32", &cfg, &result, 0.0, 0.0);
        let summary = report.to_json(JsonDetail::Summary);
        // Three groups of two: absmax 2.5, 1.0, 3.5; symmetric clip_max = absmax.
        assert_eq!(summary["clip_max"]["max"], json!(3.5));
        assert_eq!(summary["clip_max"]["min"], json!(1.0));
        let full = report.to_json(JsonDetail::Full);
        assert_eq!(full["clip_max"], json!([2.5, 1.0, 3.5]));
        assert_eq!(full["scale"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn csv_quotes_and_row_width() {
        assert_eq!(csv_quote("a,b"), "\"a,b\"");
        assert_eq!(csv_quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        let row = seed_report(QuantConfig::default()).csv_row();
        assert_eq!(
            row.split(',').count(),
            TensorReport::CSV_HEADER.split(',').count()
        );
    }
}
