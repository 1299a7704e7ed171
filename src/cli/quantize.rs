//! `quantscope quantize`: quantize tensors of a model and report ranges, scales and error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use safetensors::Dtype;
use safetensors::tensor::TensorView;

use super::args::QuantizeArgs;
use super::progress::tensor_bar;
use crate::cancel::Cancel;
use crate::quant::batches::{BatchCalibration, BatchError, BatchOptions};
use crate::quant::deployed::quantize_deployed;
use crate::quant::formats::{Fallback, PartDtype, QuantFormat, gguf};
use crate::quant::tensor::{Outputs, quantize_tensor};
use crate::quant::{
    Calibration, Granularity, OutlierThreshold, Preset, QuantConfig, Rounding, Scheme,
};
use crate::report::batches::{
    CalibrationBatches, batch_report_text, calibrate_loaded, load_batches,
};
use crate::report::recipe::{Recipe, RecipeTensor};
use crate::report::{JsonDetail, SettingsReport, TensorReport};
use crate::tensor::imatrix::read_imatrix;
use crate::tensor::{GgufTensor, GgufValue, GgufWriter, Model};

/// A usage problem (exit code 2), as opposed to bad input (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Parses `--outlier-threshold`: "6", "6.0" (absolute) or "3std" / "3xstd" (a multiple of the std).
pub fn parse_threshold(text: &str) -> Result<OutlierThreshold, UsageError> {
    let trimmed = text.trim();
    let bad = || {
        UsageError(format!(
            "--outlier-threshold '{text}' is not a number (6.0) or a multiple of the std (3std)"
        ))
    };
    let (number, is_std) = match trimmed.strip_suffix("std") {
        Some(rest) => (rest.trim_end_matches(['x', '*', ' ']), true),
        None => (trimmed, false),
    };
    let value: f32 = number.parse().map_err(|_| bad())?;
    if !(value.is_finite() && value > 0.0) {
        return Err(bad());
    }
    Ok(if is_std {
        OutlierThreshold::StdMultiple(value)
    } else {
        OutlierThreshold::Absolute(value)
    })
}

/// The configuration the arguments ask for, checked for everything that does not depend on a
/// tensor's shape.
pub fn config_from_args(args: &QuantizeArgs) -> Result<QuantConfig, UsageError> {
    let bits = u8::try_from(args.bits)
        .map_err(|_| UsageError(format!("--bits {} is not 2..=8 or 16", args.bits)))?;
    let cfg = QuantConfig {
        bits,
        scheme: args.scheme.into(),
        preset: args.preset.into(),
        rounding: args.rounding.map(Rounding::from),
        symmetric_range: None,
        granularity: args.granularity.with(args.axis, args.group_size),
        calibration: args.calibration.with(args.percentile),
        outliers: args.outliers.into(),
        outlier_threshold: parse_threshold(&args.outlier_threshold)?,
        format: args.format.0,
    };
    if cfg.format.is_none() && args.imatrix.is_some() {
        return Err(UsageError(
            "--imatrix weights the GGUF block formats' search (q4_0 … q6_k, iq4_nl): add --format"
                .into(),
        ));
    }
    if let Some(format) = cfg.format {
        if args.calibration_batches.is_some() {
            return Err(UsageError(format!(
                "--calibration-batches sets an affine clip range; {format} chooses its own scales \
                 (use --format int)"
            )));
        }
        if let Some(output) = &args.output
            && is_gguf_path(output)
            && gguf::dtype_of(format).is_none()
        {
            return Err(UsageError(format!(
                "--output {} writes GGUF, which has no {format} type: use a GGUF type (q8_0 … \
                 gguf_nvfp4) or a .safetensors output",
                output.display()
            )));
        }
    } else if let Some(output) = &args.output
        && is_gguf_path(output)
    {
        return Err(UsageError(format!(
            "--output {} writes GGUF, which stores block formats, not affine int codes: add \
             --format q8_0 (or another GGUF type) or write .safetensors",
            output.display()
        )));
    }
    // A shape with enough axes that only shape-independent checks can fail here.
    let probe_rank = match cfg.granularity {
        Granularity::PerChannel { axis } => axis.saturating_add(1).max(1),
        _ => 1,
    };
    cfg.validate(&vec![1; probe_rank])
        .map_err(|e| UsageError(e.to_string()))?;
    Ok(cfg)
}

/// Whether `path` names a GGUF output (by its extension).
fn is_gguf_path(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}

/// What is done with one tensor under a deployed format that cannot store its shape.
#[derive(Debug, Clone, PartialEq)]
enum FormatPlan {
    /// Quantize under these settings (the requested format, or llama-quantize's fallback).
    Quantize {
        /// The settings to run.
        cfg: QuantConfig,
        /// The format asked for and why it was replaced, when it was.
        fallback: Option<(QuantFormat, String)>,
    },
    /// Keep the tensor unquantized (stored F16 in a GGUF output), with the reason.
    Keep(String),
}

/// The settings for a tensor of `shape`: a GGUF type whose block does not fit the row falls
/// back to the type llama.cpp's llama-quantize uses (`Fallback`); other formats keep the tensor.
fn plan_for(cfg: &QuantConfig, shape: &[usize]) -> FormatPlan {
    let Some(format) = cfg.format else {
        return FormatPlan::Quantize {
            cfg: cfg.clone(),
            fallback: None,
        };
    };
    match format.check(shape) {
        Ok(()) => FormatPlan::Quantize {
            cfg: cfg.clone(),
            fallback: None,
        },
        Err(not) => match not.fallback {
            Some(Fallback::Format(instead)) => FormatPlan::Quantize {
                cfg: QuantConfig {
                    format: Some(instead),
                    ..cfg.clone()
                },
                fallback: Some((format, not.reason)),
            },
            _ => FormatPlan::Keep(not.reason),
        },
    }
}

/// What a recipe says for one tensor: its affine settings or format, or keep it unquantized.
fn recipe_plan(entry: Option<&RecipeTensor>, cfg: &QuantConfig, shape: &[usize]) -> FormatPlan {
    let Some(entry) = entry else {
        return FormatPlan::Keep("not in the recipe".into());
    };
    if entry.candidate.is_none() {
        return FormatPlan::Keep(format!(
            "kept as {} by the recipe ({})",
            entry.format, entry.why
        ));
    }
    match (&entry.settings, QuantFormat::from_name(&entry.format)) {
        (Some(settings), _) => FormatPlan::Quantize {
            cfg: settings.clone(),
            fallback: None,
        },
        (None, Some(format)) => plan_for(
            &QuantConfig {
                format: Some(format),
                ..cfg.clone()
            },
            shape,
        ),
        // Recipe::read refuses such an entry.
        (None, None) => FormatPlan::Keep(format!("unknown format '{}'", entry.format)),
    }
}

/// The tensors to quantize: the named ones (each must exist), else every float tensor
/// quantscope can decode (a GGUF's IQ*/TQ* tensors are skipped, not fatal; named with
/// --tensor, they give an error naming the type).
fn selected_tensors(model: &Model, names: &[String], path: &Path) -> anyhow::Result<Vec<usize>> {
    if names.is_empty() {
        return Ok((0..model.tensors().len())
            .filter(|&i| {
                let dtype = model.tensors()[i].dtype;
                dtype.is_float() && dtype.is_decodable()
            })
            .collect());
    }
    names
        .iter()
        .map(|name| {
            let index = model.find(name).with_context(|| {
                let close: Vec<&str> = model
                    .tensors()
                    .iter()
                    .map(|t| t.name.as_str())
                    .filter(|t| t.contains(name.as_str()) || name.contains(*t))
                    .take(5)
                    .collect();
                let hint = if close.is_empty() {
                    String::new()
                } else {
                    format!(" (similar: {})", close.join(", "))
                };
                format!("no tensor named '{name}'{hint} in {}", path.display())
            })?;
            let dtype = model.tensors()[index].dtype;
            if !dtype.is_float() {
                bail!(
                    "'{name}' is an integer tensor ({}): only float tensors are quantized, in {}",
                    dtype.name(),
                    path.display()
                );
            }
            Ok(index)
        })
        .collect()
}

/// Little-endian bytes of a slice of 4-byte numbers.
fn le_bytes<T: Copy, const N: usize>(values: &[T], to_bytes: fn(T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|&v| to_bytes(v)).collect()
}

/// The tensors `--output` writes: safetensors entries, and the same tensors as GGUF tensors
/// when the output is a GGUF file (every tensor then has a GGUF type).
struct OutputTensors {
    entries: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    gguf: Vec<GgufTensor>,
    to_gguf: bool,
}

impl OutputTensors {
    fn new(to_gguf: bool) -> Self {
        Self {
            entries: Vec::new(),
            gguf: Vec::new(),
            to_gguf,
        }
    }

    fn add(&mut self, report: &mut TensorReport) -> anyhow::Result<()> {
        let name = report.name.clone();
        let r = &mut report.result;
        let Some(dequantized) = r.dequantized.take() else {
            bail!("internal: the dequantized values were not kept for '{name}'");
        };
        if let Some(encoded) = r.encoded.take() {
            let format = encoded.format;
            for part in encoded.parts {
                let (dtype, width) = match part.dtype {
                    PartDtype::U8 => (Dtype::U8, 1),
                    PartDtype::F32 => (Dtype::F32, 4),
                };
                // A part's logical shape counts elements of its dtype; GGUF blocks are whole
                // structs, so their byte array is stored flat.
                let shape = if part.shape.iter().product::<usize>() * width == part.bytes.len() {
                    part.shape
                } else {
                    vec![part.bytes.len() / width]
                };
                if self.to_gguf && part.name == "blocks" {
                    let dtype = gguf::dtype_of(format)
                        .with_context(|| format!("internal: {format} has no GGUF type"))?;
                    self.gguf.push(GgufTensor::from_raw(
                        &name,
                        report.shape.clone(),
                        dtype,
                        part.bytes,
                    )?);
                } else if !self.to_gguf {
                    self.entries
                        .push((format!("{name}.{}", part.name), dtype, shape, part.bytes));
                }
            }
        } else {
            let Some(codes) = r.codes.take() else {
                bail!("internal: codes were not kept for '{name}'");
            };
            self.entries.push((
                format!("{name}.codes"),
                Dtype::I32,
                report.shape.clone(),
                le_bytes(&codes, i32::to_le_bytes),
            ));
            self.entries.push((
                format!("{name}.scale"),
                Dtype::F32,
                r.scale_shape.clone(),
                le_bytes(&r.scales, f32::to_le_bytes),
            ));
            self.entries.push((
                format!("{name}.zero_point"),
                Dtype::I32,
                r.scale_shape.clone(),
                le_bytes(&r.zero_points, i32::to_le_bytes),
            ));
        }
        if !self.to_gguf {
            self.entries.push((
                format!("{name}.dequantized"),
                Dtype::F32,
                report.shape.clone(),
                le_bytes(&dequantized, f32::to_le_bytes),
            ));
        }
        Ok(())
    }

    /// A tensor the format could not store: kept as F16 in a GGUF output (as llama-quantize
    /// keeps such tensors), left out of a safetensors output.
    fn keep(&mut self, name: &str, shape: &[usize], values: &[f32]) -> anyhow::Result<()> {
        if self.to_gguf {
            self.gguf
                .push(GgufTensor::from_f16(name, shape.to_vec(), values)?);
        }
        Ok(())
    }

    /// Writes GGUF (the tensors and the settings as metadata) atomically.
    fn write_gguf(
        &mut self,
        destination: &Path,
        settings: &SettingsReport,
        inputs: &[PathBuf],
    ) -> anyhow::Result<()> {
        let mut writer = GgufWriter::new();
        writer.add_metadata(
            "general.quantized_by",
            GgufValue::string(format!("quantscope {}", env!("CARGO_PKG_VERSION"))),
        )?;
        writer.add_metadata(
            "quantscope.settings",
            GgufValue::string(serde_json::to_string(settings)?),
        )?;
        for tensor in std::mem::take(&mut self.gguf) {
            writer.add_tensor(tensor)?;
        }
        writer.write_atomic(destination, inputs)?;
        Ok(())
    }

    /// Writes atomically: a temp file in the destination's folder, then a rename over it.
    fn write(&self, destination: &Path, settings: &SettingsReport) -> anyhow::Result<()> {
        let views = self
            .entries
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                Ok((name.clone(), TensorView::new(*dtype, shape.clone(), bytes)?))
            })
            .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
        let metadata = HashMap::from([
            (
                "producer".to_string(),
                format!("quantscope {}", env!("CARGO_PKG_VERSION")),
            ),
            ("settings".to_string(), serde_json::to_string(settings)?),
        ]);
        let bytes = safetensors::tensor::serialize(views, Some(metadata))?;
        let folder = match destination.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut temp = tempfile::NamedTempFile::new_in(&folder)
            .with_context(|| format!("cannot create a temporary file in {}", folder.display()))?;
        std::io::Write::write_all(&mut temp, &bytes)?;
        temp.as_file().sync_all()?;
        temp.persist(destination)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot write {}", destination.display()))?;
        Ok(())
    }
}

/// Refuses an output path that is one of the model's input files.
fn check_output_is_not_an_input(output: &Path, model: &Model) -> anyhow::Result<()> {
    let Ok(output_canonical) = output.canonicalize() else {
        // The output does not exist yet, so it cannot be an input.
        return Ok(());
    };
    for input in model.files() {
        if input.canonicalize().is_ok_and(|i| i == output_canonical) {
            bail!(
                "--output {} is an input file of the model; refusing to overwrite it",
                output.display()
            );
        }
    }
    Ok(())
}

/// Quantizes one tensor of `model` and times it; `imatrix` (one weight per column) reaches the
/// deployed formats whose reference uses one.
pub fn quantize_one(
    model: &Model,
    index: usize,
    cfg: &QuantConfig,
    imatrix: Option<&[f32]>,
    keep_outputs: bool,
) -> anyhow::Result<TensorReport> {
    let info = &model.tensors()[index];
    let cancel = Cancel::never();
    let decode_start = Instant::now();
    let values = model.values_f32(index, &cancel)?;
    let decode_ms = decode_start.elapsed().as_secs_f64() * 1e3;
    let want = Outputs {
        codes: keep_outputs,
        dequantized: keep_outputs,
    };
    let start = Instant::now();
    let result = match (cfg.format, imatrix) {
        (Some(format), Some(weights)) => {
            quantize_deployed(&values, &info.shape, format, Some(weights), want, &cancel)?
        }
        _ => quantize_tensor(&values, &info.shape, cfg, want, &cancel)?,
    };
    let elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
    let mut report = TensorReport::new(
        &info.name,
        info.dtype.name(),
        cfg,
        &result,
        elapsed_ms,
        decode_ms,
    );
    // --output needs the large outputs; the report alone never carries them.
    report.result.codes = result.codes;
    report.result.dequantized = result.dequantized;
    report.result.encoded = result.encoded;
    Ok(report)
}

fn text_of(report: &TensorReport) -> String {
    let r = &report.result;
    let m = &r.metrics;
    let shape: Vec<String> = report.shape.iter().map(ToString::to_string).collect();
    let (lows, highs) = report.clip_ranges();
    let lo = lows.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = highs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let clip = if report.settings.format != "int" {
        format!(
            "format {} (its scales are in its blocks)",
            report.settings.format
        )
    } else if report.is_per_tensor() {
        format!(
            "[{lo:.6}, {hi:.6}]  S {:.6e}  z {}",
            r.scales.first().copied().unwrap_or(0.0),
            r.zero_points.first().copied().unwrap_or(0)
        )
    } else {
        format!("{} groups, clip within [{lo:.6}, {hi:.6}]", r.scales.len())
    };
    let mut lines = vec![format!(
        "{} [{}] {}",
        report.name,
        shape.join(", "),
        report.dtype
    )];
    lines.push(format!("  range   {clip}"));
    lines.push(format!(
        "  error   SQNR {:.2} dB  MSE {:.4e}  max|e| {:.4e}  cosine {}  clipped {:.4}%",
        m.sqnr_db,
        m.mse,
        m.max_abs_error,
        m.cosine
            .map_or_else(|| "-".to_string(), |c| format!("{c:.6}")),
        m.clipped_fraction * 100.0
    ));
    lines.push(if report.settings.format == "int" {
        format!(
            "  size    {:.3} bits/weight  outliers {} ({:.4}%)  {:.1} ms",
            r.bits_per_weight,
            r.outliers.count,
            r.outliers.fraction * 100.0,
            report.elapsed_ms
        )
    } else {
        format!(
            "  size    {:.3} bits/weight (every scale counted)  {:.1} ms",
            r.bits_per_weight, report.elapsed_ms
        )
    });
    lines.push(String::new());
    lines.join("\n")
}

/// `--calibration-batches`: the clip range learned over the batches, the name of the rule that
/// chose it, and the report of every step.
struct BatchRange {
    range: (f32, f32),
    rule: &'static str,
    batches: CalibrationBatches,
    result: BatchCalibration,
}

/// Calibrates on `path` under `cfg` (see `QuantizeArgs::calibration_batches`).
fn range_from_batches(
    path: &Path,
    cfg: &QuantConfig,
    args: &QuantizeArgs,
) -> anyhow::Result<BatchRange> {
    if cfg.granularity != Granularity::PerTensor {
        return Err(UsageError(
            "--calibration-batches learns one range per tensor; use --granularity tensor".into(),
        )
        .into());
    }
    let symmetric = cfg.scheme == Scheme::Symmetric;
    if let Some(c) = args.moving_average
        && (!(0.0..=1.0).contains(&c) || cfg.calibration != Calibration::MinMax)
    {
        return Err(UsageError(format!(
            "--moving-average {c} needs --calibration minmax and a constant in [0, 1]"
        ))
        .into());
    }
    match cfg.calibration {
        Calibration::Mse | Calibration::Manual { .. } => {
            return Err(UsageError(
                "--calibration-batches works with --calibration minmax, percentile or entropy"
                    .into(),
            )
            .into());
        }
        Calibration::Entropy if !symmetric => {
            return Err(UsageError(
                "entropy over batches is TensorRT's symmetric amax; use --scheme symmetric".into(),
            )
            .into());
        }
        _ => {}
    }
    let cancel = Cancel::never();
    // BatchFileError messages name the file already.
    let batches = load_batches(path, &cancel)?;
    let options = BatchOptions {
        percentile: args.percentile,
        averaging_constant: args.moving_average.unwrap_or(0.01),
        bits: cfg.bits,
        ..BatchOptions::default()
    };
    let result = calibrate_loaded(&batches, options, &cancel).map_err(|e| match e {
        BatchError::Options(message) => anyhow::Error::from(UsageError(message)),
        other => anyhow::Error::from(other).context(format!("calibrating on {}", path.display())),
    })?;
    let last = result.steps.last();
    let symmetric_of = |amax: Option<f32>| amax.map(|a| (-a, a));
    let (range, rule) = match (cfg.calibration, args.moving_average) {
        (Calibration::MinMax, Some(_)) if symmetric => (
            symmetric_of(last.and_then(|s| s.moving_average_absmax)),
            "ONNX Runtime MinMaxCalibrater, moving average, symmetric",
        ),
        (Calibration::MinMax, Some(_)) => (
            last.and_then(|s| s.moving_average),
            "ONNX Runtime MinMaxCalibrater, moving average",
        ),
        (Calibration::Percentile(_), _) if cfg.preset == Preset::TensorRt => (
            symmetric_of(last.and_then(|s| s.percentile_tensorrt)),
            "TensorRT HistogramCalibrator percentile",
        ),
        (Calibration::Percentile(_), _) => (
            last.and_then(|s| s.percentile_onnxruntime),
            "ONNX Runtime PercentileCalibrater",
        ),
        (Calibration::Entropy, _) => (
            symmetric_of(last.and_then(|s| s.entropy_tensorrt)),
            "TensorRT HistogramCalibrator entropy",
        ),
        _ => (last.and_then(|s| s.minmax), "ONNX Runtime MinMaxCalibrater"),
    };
    let range = range.with_context(|| format!("no finite value in {}", path.display()))?;
    Ok(BatchRange {
        range,
        rule,
        batches,
        result,
    })
}

/// Runs `quantize`.
pub fn run(args: &QuantizeArgs) -> anyhow::Result<()> {
    let mut cfg = config_from_args(args)?;
    let from_batches = match &args.calibration_batches {
        Some(path) => {
            let learned = range_from_batches(path, &cfg, args)?;
            let (lo, hi) = learned.range;
            if !args.json {
                super::emit(&batch_report_text(&learned.batches, &learned.result))?;
                super::emit(&format!(
                    "clip range from the batches: [{lo:.6}, {hi:.6}] ({})\n\n",
                    learned.rule
                ))?;
            }
            cfg.calibration = Calibration::Manual { lo, hi };
            Some(learned)
        }
        None => None,
    };
    // LoadError messages name the file already.
    let model = Model::open(&args.file)?;
    if let Some(output) = &args.output {
        check_output_is_not_an_input(output, &model)?;
    }
    let indices = selected_tensors(&model, &args.tensors, &args.file)?;
    if indices.is_empty() {
        bail!(
            "no float tensors quantscope can decode in {} (name some with --tensor)",
            args.file.display()
        );
    }
    let bar = tensor_bar(indices.len(), !args.json);
    let mut reports = Vec::with_capacity(indices.len());
    let mut skipped: Vec<serde_json::Value> = Vec::new();
    let to_gguf = args.output.as_deref().is_some_and(is_gguf_path);
    let mut outputs = OutputTensors::new(to_gguf);
    let named = !args.tensors.is_empty();
    let importance = match &args.imatrix {
        Some(path) => Some(read_imatrix(path)?),
        None => None,
    };
    let recipe = match &args.recipe {
        Some(path) => Some(Recipe::read(path)?),
        None => None,
    };
    for index in indices {
        let info = &model.tensors()[index];
        let name = info.name.clone();
        bar.set_message(name.clone());
        let planned = recipe
            .as_ref()
            .map(|r| r.tensors.iter().find(|t| t.name == name));
        let chosen = match planned {
            None => plan_for(&cfg, &info.shape),
            Some(entry) => recipe_plan(entry, &cfg, &info.shape),
        };
        let (tensor_cfg, fallback) = match chosen {
            FormatPlan::Quantize { cfg, fallback } => (cfg, fallback),
            FormatPlan::Keep(reason) if named => {
                bail!("tensor '{name}' of {}: {reason}", args.file.display())
            }
            FormatPlan::Keep(reason) => {
                if to_gguf {
                    let values = model
                        .values_f32(index, &Cancel::never())
                        .with_context(|| format!("tensor '{name}' of {}", args.file.display()))?;
                    outputs.keep(&name, &info.shape, &values)?;
                }
                let kept = if to_gguf { " (kept as f16)" } else { "" };
                if !args.json {
                    bar.suspend(|| {
                        super::emit(&format!("{name}: not quantized{kept}: {reason}\n\n"))
                    })?;
                }
                skipped.push(serde_json::json!({
                    "name": name,
                    "dtype": info.dtype.name(),
                    "shape": info.shape,
                    "format": null,
                    "not_applicable": reason,
                }));
                bar.inc(1);
                continue;
            }
        };
        // The importance weights of this tensor, when the matrix names it and it is one matrix.
        let weights = match importance.as_ref().and_then(|m| m.get(&name)) {
            Some(entry) => {
                let fit = entry
                    .for_shape(&info.shape)
                    .map_err(|why| anyhow::anyhow!("--imatrix entry '{name}': {why}"))?;
                if fit.elements_per_matrix != info.shape.iter().product::<usize>() {
                    bail!(
                        "--imatrix entry '{name}' holds several matrices (experts); quantize \
                         takes one weight per column (plan handles experts)"
                    );
                }
                Some(fit.weights)
            }
            None => None,
        };
        let mut report = quantize_one(&model, index, &tensor_cfg, weights, args.output.is_some())
            .with_context(|| format!("tensor '{name}' of {}", args.file.display()))?;
        if args.output.is_some() {
            // The large outputs move into the output buffers; the report stays small.
            outputs.add(&mut report)?;
        }
        bar.inc(1);
        if !args.json {
            let mut note = match &fallback {
                Some((_, reason)) => format!("{reason}\n"),
                None => String::new(),
            };
            if importance.is_some() {
                note.push_str(if weights.is_some() {
                    "  weighted by the importance matrix\n"
                } else {
                    "  (the importance matrix has no entry for this tensor: unweighted)\n"
                });
            }
            bar.suspend(|| super::emit(&format!("{note}{}", text_of(&report))))?;
        }
        let planned_mse = planned.flatten().and_then(|t| t.mse);
        reports.push((
            report,
            fallback.map(|(asked, _)| asked),
            weights.is_some(),
            planned_mse,
        ));
    }
    bar.finish_and_clear();
    if let Some(output) = &args.output {
        if to_gguf {
            outputs.write_gguf(output, &SettingsReport::new(&cfg), model.files())?;
        } else {
            outputs.write(output, &SettingsReport::new(&cfg))?;
        }
        if !args.json {
            super::emit(&format!("wrote {}\n", output.display()))?;
        }
    }
    if args.json {
        let detail = if args.full {
            JsonDetail::Full
        } else {
            JsonDetail::Summary
        };
        let mut array: Vec<serde_json::Value> = reports
            .iter()
            .map(|(report, asked, weighted, planned_mse)| {
                let mut object = report.to_json(detail);
                if let Some(map) = object.as_object_mut() {
                    if let Some(asked) = asked {
                        // llama-quantize's fallback replaced the format asked for.
                        map.insert("fallback_from".into(), serde_json::json!(asked.name()));
                    }
                    if args.imatrix.is_some() {
                        map.insert("imatrix".into(), serde_json::json!(weighted));
                    }
                    if args.recipe.is_some() {
                        // The error the plan measured for this choice, to set beside `metrics`.
                        map.insert("planned_mse".into(), serde_json::json!(planned_mse));
                    }
                }
                object
            })
            .collect();
        array.extend(skipped);
        let document = match from_batches {
            // With --calibration-batches the document also carries what the batches gave.
            Some(learned) => serde_json::json!({
                "calibration_batches": {
                    "file": learned.batches.file.display().to_string(),
                    "batches": learned.batches.names,
                    "rule": learned.rule,
                    "range": [learned.range.0, learned.range.1],
                    "calibration": learned.result,
                },
                "tensors": array,
            }),
            None => serde_json::Value::Array(array),
        };
        super::emit(&format!("{}\n", serde_json::to_string_pretty(&document)?))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse() {
        assert_eq!(
            parse_threshold("6.0").ok(),
            Some(OutlierThreshold::Absolute(6.0))
        );
        assert_eq!(
            parse_threshold("3std").ok(),
            Some(OutlierThreshold::StdMultiple(3.0))
        );
        assert_eq!(
            parse_threshold("2.5xstd").ok(),
            Some(OutlierThreshold::StdMultiple(2.5))
        );
        assert!(parse_threshold("-1").is_err());
        assert!(parse_threshold("abc").is_err());
        assert!(parse_threshold("nan").is_err());
    }
}
