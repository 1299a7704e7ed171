//! Calibration-batch files for the CLI and the app: loading one, and the text of its report.
//!
//! A calibration-batch file holds the batches of one tensor (usually a layer's input
//! activations): members `batch_00`, `batch_01`, … (see [`crate::quant::batches::batch_order`]),
//! each `[rows, features]` in any float dtype (F16 in quantscope's assets); a higher-rank member
//! is read as rows of its last axis. `.npz` is the usual container; `.safetensors` works too.

use std::path::{Path, PathBuf};

use crate::cancel::Cancel;
use crate::quant::batches::{
    BatchCalibration, BatchError, BatchOptions, batch_order, calibrate_batches,
};
use crate::tensor::{LoadError, Model};

/// Why a calibration-batch file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BatchFileError {
    /// The file did not open or a member did not decode.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The members are not `batch_00`, `batch_01`, … (or the batches disagree in width).
    #[error("{}: {source}", path.display())]
    Layout {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: BatchError,
    },
    /// A member that is not a float array with at least one axis.
    #[error("{}: member '{name}' is {dtype} with shape {shape:?}; a batch is a float array [rows, features]", path.display())]
    NotABatch {
        /// The file.
        path: PathBuf,
        /// The member.
        name: String,
        /// Its dtype.
        dtype: &'static str,
        /// Its shape.
        shape: Vec<usize>,
    },
}

/// The batches of one file, decoded to f32, in batch order.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationBatches {
    /// The file read.
    pub file: PathBuf,
    /// Member names in batch order (`batch_00`, …).
    pub names: Vec<String>,
    /// Features per row (the last axis, the same for every batch).
    pub features: usize,
    /// Rows of each batch.
    pub rows: Vec<usize>,
    /// Each batch's values, row-major `[rows, features]`.
    pub values: Vec<Vec<f32>>,
}

/// Reads a calibration-batch file (layout in the module docs).
pub fn load_batches(path: &Path, cancel: &Cancel) -> Result<CalibrationBatches, BatchFileError> {
    let model = Model::open(path)?;
    let layout = |source| BatchFileError::Layout {
        path: path.to_path_buf(),
        source,
    };
    let names: Vec<&str> = model.tensors().iter().map(|t| t.name.as_str()).collect();
    let order = batch_order(&names).map_err(layout)?;
    let mut batches = CalibrationBatches {
        file: path.to_path_buf(),
        names: Vec::with_capacity(order.len()),
        features: 0,
        rows: Vec::with_capacity(order.len()),
        values: Vec::with_capacity(order.len()),
    };
    for (position, index) in order.into_iter().enumerate() {
        let Some(info) = model.tensors().get(index) else {
            continue;
        };
        let features = match info.shape.last() {
            Some(&f) if info.dtype.is_float() && f > 0 => f,
            _ => {
                return Err(BatchFileError::NotABatch {
                    path: path.to_path_buf(),
                    name: info.name.clone(),
                    dtype: info.dtype.name(),
                    shape: info.shape.clone(),
                });
            }
        };
        if position == 0 {
            batches.features = features;
        } else if features != batches.features {
            return Err(layout(BatchError::Features {
                batch: position,
                expected: batches.features,
                got: features,
            }));
        }
        let values = model.values_f32(index, cancel)?;
        batches.rows.push(values.len() / features);
        batches.names.push(info.name.clone());
        batches.values.push(values);
    }
    Ok(batches)
}

/// Calibrates over the loaded batches in order.
pub fn calibrate_loaded(
    batches: &CalibrationBatches,
    options: BatchOptions,
    cancel: &Cancel,
) -> Result<BatchCalibration, BatchError> {
    let slices: Vec<&[f32]> = batches.values.iter().map(Vec::as_slice).collect();
    calibrate_batches(&slices, batches.features, options, cancel)
}

fn range_text(range: Option<(f32, f32)>) -> String {
    range.map_or_else(|| "-".into(), |(lo, hi)| format!("[{lo:.6}, {hi:.6}]"))
}

fn amax_text(amax: Option<f32>) -> String {
    amax.map_or_else(|| "-".into(), |a| format!("{a:.6}"))
}

/// The thresholds after each batch and the widest features, as the CLI prints them.
pub fn batch_report_text(batches: &CalibrationBatches, result: &BatchCalibration) -> String {
    let o = &result.options;
    let rows: Vec<String> = batches.rows.iter().map(ToString::to_string).collect();
    let mut lines = vec![
        format!(
            "{}: {} calibration batches of {} features (rows {})",
            batches.file.display(),
            batches.names.len(),
            result.features,
            rows.join(", ")
        ),
        "thresholds after each batch (ONNX Runtime MinMaxCalibrater and PercentileCalibrater; \
         NVIDIA HistogramCalibrator, numpy histogram):"
            .into(),
        format!(
            "{:10} {:>6}  {:26} {:26} {:>11} {:>6}  {:26} {:>11} {:>11}",
            "batch",
            "rows",
            "min-max",
            format!("moving avg (c = {})", o.averaging_constant),
            "sym. avg",
            "bins",
            format!("percentile {} (ORT)", o.percentile),
            "(TensorRT)",
            "entropy"
        ),
    ];
    for (step, name) in result.steps.iter().zip(&batches.names) {
        lines.push(format!(
            "{:10} {:>6}  {:26} {:26} {:>11} {:>6}  {:26} {:>11} {:>11}",
            name,
            step.rows,
            range_text(step.minmax),
            range_text(step.moving_average),
            amax_text(step.moving_average_absmax),
            step.histogram_tensorrt
                .map_or_else(|| "-".into(), |h| h.bins.to_string()),
            range_text(step.percentile_onnxruntime),
            amax_text(step.percentile_tensorrt),
            amax_text(step.entropy_tensorrt),
        ));
    }
    if let Some(h) = result.steps.last().and_then(|s| s.histogram_tensorrt)
        && h.dropped > 0
    {
        lines.push(format!(
            "  {} values below the first batch's smallest |x| ({:.3e}) were never counted, as in both libraries",
            h.dropped, h.first_edge
        ));
    }
    let absmax = result.per_channel.absmax();
    let mut order: Vec<usize> = (0..absmax.len())
        .filter(|&j| absmax[j].is_finite())
        .collect();
    order.sort_by(|&a, &b| absmax[b].total_cmp(&absmax[a]).then(a.cmp(&b)));
    let mut sorted: Vec<f32> = order.iter().map(|&j| absmax[j]).collect();
    sorted.sort_by(f32::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f32::NAN);
    lines.push(format!(
        "per-feature ranges over all batches: median |x| max {median:.4}; the widest:"
    ));
    for &j in order.iter().take(8) {
        let (lo, hi) = (result.per_channel.min[j], result.per_channel.max[j]);
        lines.push(format!(
            "  feature {j:>5}  [{lo:.4}, {hi:.4}]  {:.1}x the median",
            absmax[j] / median
        ));
    }
    lines.push(String::new());
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::OwnedTensor;

    #[test]
    fn layout_errors_name_the_file_and_the_member() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, tensors: Vec<OwnedTensor>| {
            let model = Model::from_tensors("m", tensors).expect("valid");
            let path = dir.path().join(name);
            let views: Vec<_> = model
                .tensors()
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let bytes = model.raw_bytes(i).expect("bytes").to_vec();
                    (t.name.clone(), t.shape.clone(), bytes)
                })
                .collect();
            let data = safetensors::tensor::serialize(
                views.iter().map(|(n, s, b)| {
                    (
                        n.clone(),
                        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                            .expect("view"),
                    )
                }),
                None,
            )
            .expect("serialized");
            std::fs::write(&path, data).expect("written");
            path
        };
        let ok = write(
            "ok.safetensors",
            vec![
                OwnedTensor::from_f32("batch_1", vec![1, 2], &[1.0, -3.0]),
                OwnedTensor::from_f32("batch_0", vec![2, 2], &[0.5, 2.0, -1.0, 4.0]),
            ],
        );
        let b = load_batches(&ok, &Cancel::never()).expect("loads");
        assert_eq!(b.names, vec!["batch_0", "batch_1"]);
        assert_eq!(b.rows, vec![2, 1]);
        assert_eq!(b.features, 2);
        let r =
            calibrate_loaded(&b, BatchOptions::default(), &Cancel::never()).expect("calibrates");
        let text = batch_report_text(&b, &r);
        assert!(
            text.contains("2 calibration batches of 2 features (rows 2, 1)"),
            "{text}"
        );
        assert!(text.contains("[-3.000000, 4.000000]"), "{text}");
        // Feature 1 (|x| up to 4) is listed before feature 0 (up to 1).
        let f1 = text.find("feature     1").expect("feature 1 listed");
        let f0 = text.find("feature     0").expect("feature 0 listed");
        assert!(f1 < f0, "{text}");

        let odd = write(
            "odd.safetensors",
            vec![
                OwnedTensor::from_f32("batch_0", vec![1, 2], &[1.0, 2.0]),
                OwnedTensor::from_f32("labels", vec![1], &[0.0]),
            ],
        );
        let e = load_batches(&odd, &Cancel::never()).expect_err("not a batch file");
        assert!(e.to_string().contains("odd.safetensors"), "{e}");
        assert!(e.to_string().contains("'labels'"), "{e}");

        let ragged = write(
            "ragged.safetensors",
            vec![
                OwnedTensor::from_f32("batch_0", vec![1, 2], &[1.0, 2.0]),
                OwnedTensor::from_f32("batch_1", vec![1, 3], &[1.0, 2.0, 3.0]),
            ],
        );
        let e = load_batches(&ragged, &Cancel::never()).expect_err("widths differ");
        assert!(
            e.to_string()
                .contains("batch 1 has 3 features per row; the first batch has 2"),
            "{e}"
        );
    }
}
