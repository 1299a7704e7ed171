//! `quantscope inspect`: a model's tensors with dtype, shape, size, and optional statistics.

use anyhow::Context;
use serde::Serialize;

use super::args::InspectArgs;
use super::progress::tensor_bar;
use crate::cancel::Cancel;
use crate::quant::batches::BatchOptions;
use crate::report::batches::{batch_report_text, calibrate_loaded, load_batches};
use crate::report::human_bytes;
use crate::stats::{Summary, percentiles, summarize};
use crate::tensor::{Model, TensorInfo};

/// The percentiles `--stats` reports (numpy 'linear' method over the finite values).
pub const REPORTED_PERCENTILES: [f64; 6] = [0.01, 1.0, 50.0, 99.0, 99.9, 99.99];

/// One tensor's row of `inspect --json`.
#[derive(Debug, Serialize)]
pub struct TensorRow {
    /// Tensor name.
    pub name: String,
    /// Stored dtype, in the file format's spelling.
    pub dtype: &'static str,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Element count.
    pub numel: u64,
    /// Stored size in bytes.
    pub size_bytes: u64,
    /// Statistics, with `--stats`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<TensorStats>,
}

/// What `--stats` adds to a row.
#[derive(Debug, Serialize)]
pub struct TensorStats {
    /// Streaming summary over the finite values.
    #[serde(flatten)]
    pub summary: Summary,
    /// (p, value) pairs for [`REPORTED_PERCENTILES`]; empty without finite values.
    pub percentiles: Vec<(f64, f64)>,
}

/// The whole `inspect --json` document.
#[derive(Debug, Serialize)]
pub struct InspectReport {
    /// The model's name.
    pub model: String,
    /// The files it was read from.
    pub files: Vec<String>,
    /// Number of tensors.
    pub tensor_count: usize,
    /// Total stored bytes.
    pub total_bytes: u64,
    /// Total elements.
    pub total_elements: u64,
    /// File-level metadata (GGUF key-value pairs, safetensors `__metadata__`).
    pub metadata: Vec<(String, String)>,
    /// One row per tensor, in file order.
    pub tensors: Vec<TensorRow>,
}

fn stats_of(model: &Model, index: usize) -> anyhow::Result<TensorStats> {
    let cancel = Cancel::never();
    let values = model.values_f32(index, &cancel)?;
    let summary = summarize(&values, &cancel)?;
    let values_at = percentiles(&values, &REPORTED_PERCENTILES).unwrap_or_default();
    Ok(TensorStats {
        summary,
        percentiles: REPORTED_PERCENTILES
            .iter()
            .copied()
            .zip(values_at)
            .collect(),
    })
}

fn row(
    model: &Model,
    index: usize,
    info: &TensorInfo,
    with_stats: bool,
) -> anyhow::Result<TensorRow> {
    // Tensors of types quantscope cannot decode are listed without statistics.
    let stats = if with_stats && info.dtype.is_decodable() {
        Some(stats_of(model, index).with_context(|| format!("tensor '{}'", info.name))?)
    } else {
        None
    };
    Ok(TensorRow {
        name: info.name.clone(),
        dtype: info.dtype.name(),
        shape: info.shape.clone(),
        numel: info.numel(),
        size_bytes: info.size_bytes,
        stats,
    })
}

/// Builds the report for a model (statistics optional).
pub fn report(
    model: &Model,
    with_stats: bool,
    show_progress: bool,
) -> anyhow::Result<InspectReport> {
    let bar = tensor_bar(model.tensors().len(), show_progress && with_stats);
    let mut rows = Vec::with_capacity(model.tensors().len());
    for (index, info) in model.tensors().iter().enumerate() {
        bar.set_message(info.name.clone());
        rows.push(row(model, index, info, with_stats)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(InspectReport {
        model: model.name().to_string(),
        files: model
            .files()
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        tensor_count: rows.len(),
        total_bytes: rows.iter().map(|r| r.size_bytes).sum(),
        total_elements: rows.iter().map(|r| r.numel).sum(),
        metadata: model.metadata().to_vec(),
        tensors: rows,
    })
}

fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    format!("[{}]", dims.join(", "))
}

fn optional(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.6}"))
}

/// `inspect --batches`: the calibration-over-batches report of a calibration-batch file.
fn run_batches(args: &InspectArgs) -> anyhow::Result<()> {
    let cancel = Cancel::never();
    // BatchFileError messages name the file already.
    let batches = load_batches(&args.file, &cancel)?;
    let result = calibrate_loaded(&batches, BatchOptions::default(), &cancel)
        .with_context(|| format!("calibrating on {}", args.file.display()))?;
    if args.json {
        let document = serde_json::json!({
            "file": args.file.display().to_string(),
            "batches": batches.names,
            "rows": batches.rows,
            "calibration": result,
        });
        return super::emit(&format!("{}\n", serde_json::to_string_pretty(&document)?));
    }
    super::emit(&batch_report_text(&batches, &result))
}

/// Runs `inspect`.
pub fn run(args: &InspectArgs) -> anyhow::Result<()> {
    if args.batches {
        return run_batches(args);
    }
    // LoadError messages name the file already.
    let model = Model::open(&args.file)?;
    let report = report(&model, args.stats, !args.json)
        .with_context(|| format!("reading {}", args.file.display()))?;
    if args.json {
        return super::emit(&format!("{}\n", serde_json::to_string_pretty(&report)?));
    }
    let mut lines = Vec::new();
    lines.push(format!(
        "{}: {} tensors, {} elements, {}",
        report.model,
        report.tensor_count,
        report.total_elements,
        human_bytes(report.total_bytes)
    ));
    let name_width = report
        .tensors
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    lines.push(format!(
        "{:name_width$}  {:8}  {:>20}  {:>10}",
        "name", "dtype", "shape", "size"
    ));
    for r in &report.tensors {
        lines.push(format!(
            "{:name_width$}  {:8}  {:>20}  {:>10}",
            r.name,
            r.dtype,
            shape_text(&r.shape),
            human_bytes(r.size_bytes)
        ));
        if let Some(stats) = &r.stats {
            let s = &stats.summary;
            lines.push(format!(
                "{:name_width$}  min {}  max {}  mean {}  std {}  absmax {:.6}",
                "",
                optional(s.min),
                optional(s.max),
                optional(s.mean),
                optional(s.std),
                s.absmax
            ));
            let ps: Vec<String> = stats
                .percentiles
                .iter()
                .map(|(p, v)| format!("p{p}={v:.6}"))
                .collect();
            lines.push(format!("{:name_width$}  {}", "", ps.join("  ")));
            if s.nan_count + s.pos_inf_count + s.neg_inf_count + s.subnormal_count > 0
                || s.zero_count > 0
            {
                lines.push(format!(
                    "{:name_width$}  nan {}  +inf {}  -inf {}  zeros {}  subnormals {}",
                    "",
                    s.nan_count,
                    s.pos_inf_count,
                    s.neg_inf_count,
                    s.zero_count,
                    s.subnormal_count
                ));
            }
        }
    }
    lines.push(String::new());
    super::emit(&lines.join("\n"))
}
