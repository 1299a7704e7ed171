//! The app's side of the numeric core: opening models, the keys of every derived result and
//! the functions that compute them on the job pool. Everything here is O(tensor size) and runs
//! off the UI thread; the results are small, pre-digested views (downsampled plot data,
//! per-group parameters, images) that `ui()` only reads.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::demo;
use super::histogram::ThresholdLine;
use super::jobs::JobKey;
use super::qsettings::{CalibrationChoice, QuantKeyPart};
use crate::cancel::Cancel;
use crate::quant::{self, Granularity, Metrics, QuantConfig, QuantParams, calib};
use crate::stats::{self, ExponentHistogram, Summary};
use crate::tensor::{Model, OwnedTensor};

/// A loaded model with an identity that changes on every open (so caches never mix models).
#[derive(Clone)]
pub struct ModelRef {
    /// Unique per open.
    pub id: u64,
    /// The model.
    pub model: Arc<Model>,
    /// The files it came from (empty for the demo).
    pub paths: Vec<PathBuf>,
}

impl ModelRef {
    /// The display name for the window title.
    pub fn label(&self) -> String {
        if self.paths.is_empty() {
            demo::DEMO_NAME.to_string()
        } else {
            self.model.name().to_string()
        }
    }
}

impl PartialEq for ModelRef {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for ModelRef {}

impl Hash for ModelRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl std::fmt::Debug for ModelRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModelRef({}, {})", self.id, self.label())
    }
}

/// What to open.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OpenKey {
    /// The files, or empty for the built-in demo.
    pub paths: Vec<PathBuf>,
    /// Distinguishes repeated opens of the same files (reloading).
    pub generation: u64,
}

impl JobKey for OpenKey {}

/// Opens the files of `key` (one file, a folder, an index, or several shards), or generates
/// the demo model.
pub fn open_model(key: &OpenKey, cancel: &Cancel) -> Result<Arc<Model>, String> {
    let model = match key.paths.as_slice() {
        [] => demo_model(cancel)?,
        [one] => Model::open(one).map_err(|e| e.to_string())?,
        many => Model::open_many(many).map_err(|e| e.to_string())?,
    };
    Ok(Arc::new(model))
}

/// Generates the demo model (the big tensor in parallel on the current pool).
pub fn demo_model(cancel: &Cancel) -> Result<Model, String> {
    let mut tensors = Vec::new();
    for spec in demo::demo_specs() {
        let values = demo::generate(&spec, cancel).map_err(|e| e.to_string())?;
        let shape = spec.shape.clone();
        tensors.push(match spec.dtype {
            demo::DemoDtype::F32 => OwnedTensor::from_f32(spec.name, shape, &values),
            demo::DemoDtype::F16 => OwnedTensor::from_f16(spec.name, shape, &values),
            demo::DemoDtype::Bf16 => OwnedTensor::from_bf16(spec.name, shape, &values),
        });
    }
    Model::from_tensors(demo::DEMO_NAME, tensors).map_err(|e| e.to_string())
}

/// Decoded tensors shared by the jobs, so the histogram, calibration and quantization of one
/// tensor decode it once. Keeps the few most recent tensors.
#[derive(Default)]
pub struct ValueStore {
    entries: Mutex<VecDeque<(ValueId, Arc<Vec<f32>>)>>,
}

/// (model id, tensor index).
type ValueId = (u64, usize);

/// How many decoded tensors the store keeps (the 4096² demo tensor is 64 MiB).
const VALUE_STORE_CAPACITY: usize = 4;

impl ValueStore {
    /// The f32 values of tensor `index` of `model`, decoded on first use.
    pub fn values(
        &self,
        model: &ModelRef,
        index: usize,
        cancel: &Cancel,
    ) -> Result<Arc<Vec<f32>>, String> {
        let key = (model.id, index);
        if let Some(v) = self.lookup(key) {
            return Ok(v);
        }
        // Decode without holding the lock; two jobs may race to decode the same tensor, which
        // costs time but not correctness.
        let values = Arc::new(
            model
                .model
                .values_f32(index, cancel)
                .map_err(|e| e.to_string())?,
        );
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|(k, _)| *k != key);
            entries.push_back((key, Arc::clone(&values)));
            while entries.len() > VALUE_STORE_CAPACITY {
                entries.pop_front();
            }
        }
        Ok(values)
    }

    fn lookup(&self, key: ValueId) -> Option<Arc<Vec<f32>>> {
        let entries = self.entries.lock().ok()?;
        entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| Arc::clone(v))
    }
}

/// The per-tensor statistics job (browser columns, exponent histogram).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatsKey {
    /// The model.
    pub model: ModelRef,
    /// Tensor index.
    pub tensor: usize,
}

impl JobKey for StatsKey {
    fn lane(&self) -> u64 {
        // Every tensor has its own lane: statistics of many tensors may compute side by side.
        self.tensor as u64
    }
}

/// Statistics of one tensor.
#[derive(Debug, Clone)]
pub struct TensorStats {
    /// Min, max, mean, std, counts.
    pub summary: Summary,
    /// Binary exponents and per-format overflow / underflow counts.
    pub exponents: ExponentHistogram,
}

/// Computes [`TensorStats`].
pub fn tensor_stats(
    store: &ValueStore,
    key: &StatsKey,
    cancel: &Cancel,
) -> Result<TensorStats, String> {
    let values = store.values(&key.model, key.tensor, cancel)?;
    let summary = stats::summarize(&values, cancel).map_err(|e| e.to_string())?;
    let exponents = stats::exponent_histogram(&values, cancel).map_err(|e| e.to_string())?;
    Ok(TensorStats { summary, exponents })
}

/// The settings-dependent figures of one browser row, for every tensor of the model.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowErrorKey {
    /// The model.
    pub model: ModelRef,
    /// Tensor index.
    pub tensor: usize,
    /// The quantization settings in force (no manual clip: that belongs to one tensor).
    pub settings: QuantKeyPart,
}

impl JobKey for RowErrorKey {
    fn lane(&self) -> u64 {
        // One lane per tensor: a settings change replaces each row's older job.
        self.tensor as u64
    }

    fn same_subject(&self, other: &Self) -> bool {
        self.model == other.model && self.tensor == other.tensor
    }
}

/// A browser row's error under the current settings and its outlier count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowError {
    /// SQNR of the quantized tensor, in dB (+inf when exact).
    pub sqnr_db: f64,
    /// Finite values with |x| >= the current outlier threshold tau (absolute or k·std),
    /// counted whether or not the outlier split is switched on.
    pub outliers: u64,
}

/// Computes [`RowError`] with the core's fused kernel (no codes or dequantized values kept).
pub fn row_error(
    store: &ValueStore,
    key: &RowErrorKey,
    cancel: &Cancel,
) -> Result<RowError, String> {
    let values = store.values(&key.model, key.tensor, cancel)?;
    let shape = key
        .model
        .model
        .tensors()
        .get(key.tensor)
        .map(|t| t.shape.clone())
        .ok_or("no such tensor")?;
    let cfg = key.settings.settings().to_config();
    let result = quant::quantize_tensor(&values, &shape, &cfg, quant::Outputs::default(), cancel)
        .map_err(|e| e.to_string())?;
    let tau = match cfg.outlier_threshold {
        quant::OutlierThreshold::Absolute(t) => f64::from(t),
        quant::OutlierThreshold::StdMultiple(k) => stats::summarize(&values, cancel)
            .map_err(|e| e.to_string())?
            .std
            .map_or(f64::INFINITY, |s| f64::from(k) * s),
    };
    let outliers = values
        .par_iter()
        .filter(|x| x.is_finite() && f64::from(x.abs()) >= tau)
        .count();
    Ok(RowError {
        sqnr_db: result.metrics.sqnr_db,
        // usize to u64 is lossless on every supported target.
        outliers: outliers as u64,
    })
}

/// The histogram job of the selected tensor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HistKey {
    /// The model.
    pub model: ModelRef,
    /// Tensor index.
    pub tensor: usize,
    /// Equal-width bins over [min, max], or `None` with `grid` set.
    pub bins: usize,
    /// Bins centred on the quantization grid: (scale bits, zero point, qmin, qmax).
    pub grid: Option<(u32, i32, i32, i32)>,
}

impl JobKey for HistKey {
    fn same_subject(&self, other: &Self) -> bool {
        self.model == other.model && self.tensor == other.tensor
    }
}

/// A histogram ready to draw: one bar per bin plus a real element of the tensor in each bin
/// (so clicking a bar can pick a weight).
#[derive(Debug, Clone)]
pub struct HistData {
    /// Left edge of every bin, plus the right edge of the last (len = bins + 1).
    pub edges: Vec<f64>,
    /// Count per bin.
    pub counts: Vec<u64>,
    /// The first element (flat index) of the tensor in each bin, if the bin is not empty.
    pub example: Vec<Option<u64>>,
    /// Finite values outside the range.
    pub outside: u64,
    /// NaN and Inf values (never binned).
    pub nonfinite: u64,
    /// Finite values in the tensor.
    pub finite: u64,
}

impl HistData {
    /// The bin containing `x`, if inside the range.
    pub fn bin_at(&self, x: f64) -> Option<usize> {
        let first = *self.edges.first()?;
        let last = *self.edges.last()?;
        if !(first..=last).contains(&x) {
            return None;
        }
        // Edges are sorted: the bin is the last edge <= x (the last edge belongs to the last bin).
        let i = self.edges.partition_point(|&e| e <= x).saturating_sub(1);
        Some(i.min(self.counts.len().saturating_sub(1)))
    }
}

/// Computes [`HistData`] with the core's exact histogram.
pub fn histogram_data(
    store: &ValueStore,
    key: &HistKey,
    cancel: &Cancel,
) -> Result<HistData, String> {
    let values = store.values(&key.model, key.tensor, cancel)?;
    let hist = match key.grid {
        Some((scale_bits, z, qmin, qmax)) => {
            let s = f64::from(f32::from_bits(scale_bits));
            let lo = s * (f64::from(qmin - z) - 0.5);
            let hi = s * (f64::from(qmax - z) + 0.5);
            let bins = usize::try_from(qmax - qmin + 1).map_err(|e| e.to_string())?;
            stats::histogram(&values, bins, lo, hi, cancel)
        }
        None => stats::histogram_auto(&values, key.bins.max(1), cancel),
    }
    .map_err(|e| e.to_string())?;
    let edges: Vec<f64> = hist.edges().iter().map(|&e| f64::from(e)).collect();
    let example = first_element_per_bin(&values, &hist, cancel)?;
    Ok(HistData {
        edges,
        counts: hist.counts.clone(),
        example,
        outside: hist.below + hist.above,
        nonfinite: hist.nonfinite,
        finite: hist.total() + hist.below + hist.above,
    })
}

fn first_element_per_bin(
    values: &[f32],
    hist: &stats::Histogram,
    cancel: &Cancel,
) -> Result<Vec<Option<u64>>, String> {
    let bins = hist.bin_count();
    if bins == 0 {
        return Ok(Vec::new());
    }
    let edges: Vec<f64> = hist.edges().iter().map(|&e| f64::from(e)).collect();
    let (Some(&first_edge), Some(&last_edge)) = (edges.first(), edges.last()) else {
        return Ok(vec![None; bins]);
    };
    // numpy's rule: bins are [e_i, e_{i+1}) except the last, which includes its right edge.
    let bin_of = |x: f64| -> Option<usize> {
        (first_edge..=last_edge)
            .contains(&x)
            .then(|| (edges.partition_point(|&e| e <= x) - 1).min(bins - 1))
    };
    let chunk = stats::CHUNK_LEN;
    let partial: Vec<Vec<Option<u64>>> = values
        .par_chunks(chunk)
        .enumerate()
        .map(|(c, part)| {
            cancel.check().map_err(|e| e.to_string())?;
            let mut first = vec![None; bins];
            let mut missing = bins;
            for (i, &v) in part.iter().enumerate() {
                if let Some(b) = bin_of(f64::from(v))
                    && let Some(slot) = first.get_mut(b)
                    && slot.is_none()
                {
                    // usize to u64 is lossless on every supported target.
                    *slot = Some((c * chunk + i) as u64);
                    missing -= 1;
                    if missing == 0 {
                        break;
                    }
                }
            }
            Ok(first)
        })
        .collect::<Result<_, String>>()?;
    let mut first = vec![None; bins];
    for p in partial {
        for (slot, v) in first.iter_mut().zip(p) {
            if slot.is_none() {
                *slot = v;
            }
        }
    }
    Ok(first)
}

/// The 2-D view of a tensor used by heatmaps: rows = the first axis, columns = the product of
/// the others (a vector is one row).
pub fn rows_cols(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (1, *n),
        [first, rest @ ..] => (*first, rest.iter().product()),
    }
}

/// The quantization job of the selected tensor under the current settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuantKey {
    /// The model.
    pub model: ModelRef,
    /// Tensor index.
    pub tensor: usize,
    /// Every setting, plus the manual clip range if one was dragged.
    pub settings: QuantKeyPart,
}

impl JobKey for QuantKey {
    fn same_subject(&self, other: &Self) -> bool {
        self.model == other.model && self.tensor == other.tensor
    }
}

/// Maps a flat (row-major) index to the index of its (S, z) group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLayout {
    /// The tensor shape.
    pub shape: Vec<usize>,
    /// The granularity in force.
    pub granularity: Granularity,
}

impl GroupLayout {
    /// The group of element `flat`: 0 per-tensor; the index along the axis per-channel; the
    /// row-major index into [rows, ceil(cols / G)] per-group.
    pub fn group_of(&self, flat: usize) -> usize {
        match self.granularity {
            Granularity::PerTensor => 0,
            Granularity::PerChannel { axis } => {
                let inner: usize = self.shape.get(axis + 1..).map_or(1, |s| s.iter().product());
                let dim = self.shape.get(axis).copied().unwrap_or(1).max(1);
                (flat / inner.max(1)) % dim
            }
            Granularity::PerGroup { size } => {
                let cols = self.shape.last().copied().unwrap_or(1).max(1);
                let per_row = cols.div_ceil(size.max(1));
                (flat / cols) * per_row + (flat % cols) / size.max(1)
            }
        }
    }
}

/// Equal-width bins with counts, ready to draw.
#[derive(Debug, Clone, Default)]
pub struct Bins {
    /// bins + 1 edges.
    pub edges: Vec<f64>,
    /// Count per bin.
    pub counts: Vec<u64>,
}

impl Bins {
    fn from_hist(h: &stats::Histogram) -> Self {
        Self {
            edges: h.edges().iter().map(|&e| f64::from(e)).collect(),
            counts: h.counts.clone(),
        }
    }
}

/// Everything the views show about one quantization of one tensor. Small except `error`, which
/// holds one f32 per element for the heatmap and hover values.
#[derive(Debug, Clone)]
pub struct QuantView {
    /// The core configuration used.
    pub config: QuantConfig,
    /// One (S, z) per group, in the order of [`GroupLayout::group_of`].
    pub params: Vec<QuantParams>,
    /// The shape of the scale tensor.
    pub scale_shape: Vec<usize>,
    /// The clip range per-tensor (None for per-channel / per-group).
    pub clip: Option<(f64, f64)>,
    /// Error metrics.
    pub metrics: Metrics,
    /// Metrics without the outlier split (when the split is on).
    pub metrics_without_split: Option<Metrics>,
    /// Effective bits per weight.
    pub bits_per_weight: f64,
    /// Values kept in FP16.
    pub outlier_count: u64,
    /// Their fraction of all values.
    pub outlier_fraction: f64,
    /// "S = …" or "S in [a, b]".
    pub scale_summary: String,
    /// "z = …" or "z in [a, b]".
    pub zero_point_summary: String,
    /// The original values (shared with the value store).
    pub values: Arc<Vec<f32>>,
    /// Element → group.
    pub layout: GroupLayout,
    /// Compute time.
    pub elapsed_ms: f64,
}

impl QuantView {
    /// The (S, z) of element `flat`.
    pub fn params_of(&self, flat: usize) -> Option<&QuantParams> {
        self.params.get(self.layout.group_of(flat))
    }
}

fn range_summary(name: &str, values: impl Iterator<Item = f64>, integer: bool) -> String {
    let (mut lo, mut hi, mut n) = (f64::INFINITY, f64::NEG_INFINITY, 0usize);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
        n += 1;
    }
    match (n, integer) {
        (0, _) => format!("{name}: none"),
        (1, true) => format!("{name} = {lo}"),
        (1, false) => format!("{name} = {lo:.6e}"),
        (_, true) => format!("{name} in [{lo}, {hi}] ({n} groups)"),
        (_, false) => format!("{name} in [{lo:.4e}, {hi:.4e}] ({n} groups)"),
    }
}

/// The core configuration of a key: the settings, with a dragged range as a per-tensor manual
/// calibration.
fn config_of(key: &QuantKey, shape: &[usize]) -> Result<QuantConfig, String> {
    let mut cfg = key.settings.settings().to_config();
    if let Some((lo, hi)) = key.settings.clip() {
        cfg.granularity = Granularity::PerTensor;
        cfg.calibration = quant::Calibration::Manual { lo, hi };
    }
    cfg.validate(shape).map_err(|e| e.to_string())?;
    Ok(cfg)
}

fn shape_of(model: &ModelRef, tensor: usize) -> Result<Vec<usize>, String> {
    model
        .model
        .tensors()
        .get(tensor)
        .map(|t| t.shape.clone())
        .ok_or_else(|| "no such tensor".to_string())
}

/// Computes the [`QuantView`] of a tensor: the fused quantize + measure pass of the core, without
/// materialising codes or dequantized values (those are [`error_detail`]'s job).
pub fn quant_view(
    store: &ValueStore,
    key: &QuantKey,
    cancel: &Cancel,
) -> Result<QuantView, String> {
    let start = std::time::Instant::now();
    let values = store.values(&key.model, key.tensor, cancel)?;
    let shape = shape_of(&key.model, key.tensor)?;
    let cfg = config_of(key, &shape)?;
    let result = quant::quantize_tensor(&values, &shape, &cfg, quant::Outputs::default(), cancel)
        .map_err(|e| e.to_string())?;
    // The core's (S, z) per group, rebuilt from its calibrated ranges exactly as it built them
    // (so the explanation of one weight uses the very same parameters).
    let params: Vec<QuantParams> = result
        .clip_min
        .iter()
        .zip(&result.clip_max)
        .map(|(&lo, &hi)| quant::params_from_range(lo, hi, &cfg))
        .collect();
    // The range the grid really covers, [S (qmin - z), S (qmax - z)], per-tensor only.
    let clip = match params.as_slice() {
        [p] => Some((
            f64::from(p.real_from_code(p.qmin)),
            f64::from(p.real_from_code(p.qmax)),
        )),
        _ => None,
    };
    let scale_summary = range_summary("S", params.iter().map(|p| f64::from(p.scale)), false);
    let zero_point_summary =
        range_summary("z", params.iter().map(|p| f64::from(p.zero_point)), true);
    Ok(QuantView {
        layout: GroupLayout {
            shape,
            granularity: cfg.granularity,
        },
        config: cfg,
        params,
        scale_shape: result.scale_shape,
        clip,
        metrics: result.metrics,
        metrics_without_split: result.outliers.without_split,
        bits_per_weight: result.bits_per_weight,
        outlier_count: result.outliers.count,
        outlier_fraction: result.outliers.fraction,
        scale_summary,
        zero_point_summary,
        values: Arc::clone(&values),
        elapsed_ms: start.elapsed().as_secs_f64() * 1e3,
    })
}

/// The per-element error of one quantization and the distributions the error tab draws.
#[derive(Debug, Clone)]
pub struct ErrorDetail {
    /// Histogram of the original values.
    pub original: Bins,
    /// Histogram of the dequantized values on the same edges.
    pub dequantized: Bins,
    /// Histogram of e = x' - x.
    pub error_hist: Bins,
    /// e = x' - x per element (NaN where x is not finite).
    pub error: Arc<Vec<f32>>,
    /// The distributions use every `sample_every`-th element (1 = all).
    pub sample_every: usize,
}

/// Above this many elements the distributions of the error tab use a regular sample.
const DETAIL_SAMPLE_LIMIT: usize = 1 << 21;

/// Computes the [`ErrorDetail`] of the quantization `key` (dequantized values from the core).
pub fn error_detail(
    store: &ValueStore,
    key: &QuantKey,
    cancel: &Cancel,
) -> Result<ErrorDetail, String> {
    let values = store.values(&key.model, key.tensor, cancel)?;
    let shape = shape_of(&key.model, key.tensor)?;
    let cfg = config_of(key, &shape)?;
    let want = quant::Outputs {
        codes: false,
        dequantized: true,
    };
    let result =
        quant::quantize_tensor(&values, &shape, &cfg, want, cancel).map_err(|e| e.to_string())?;
    let dequantized = result.dequantized.unwrap_or_default();
    let error: Vec<f32> = values
        .par_iter()
        .zip(dequantized.par_iter())
        .map(|(&x, &xh)| if x.is_finite() { xh - x } else { f32::NAN })
        .collect();
    let sample_every = values.len().div_ceil(DETAIL_SAMPLE_LIMIT).max(1);
    let sample = |v: &[f32]| -> Vec<f32> { v.iter().step_by(sample_every).copied().collect() };
    let (xs, xhs, es) = if sample_every > 1 {
        (sample(&values), sample(&dequantized), sample(&error))
    } else {
        (values.to_vec(), dequantized, error.clone())
    };
    let (lo, hi) = stats::finite_min_max(&xs, cancel)
        .map_err(|e| e.to_string())?
        .map_or((0.0, 1.0), |(a, b)| (f64::from(a), f64::from(b)));
    let (lo, hi) = if lo < hi {
        (lo, hi)
    } else {
        (lo - 0.5, hi + 0.5)
    };
    let bins = 200;
    let original = stats::histogram(&xs, bins, lo, hi, cancel).map_err(|e| e.to_string())?;
    let deq = stats::histogram(&xhs, bins, lo, hi, cancel).map_err(|e| e.to_string())?;
    let error_hist = stats::histogram_auto(&es, 128, cancel).map_err(|e| e.to_string())?;
    Ok(ErrorDetail {
        original: Bins::from_hist(&original),
        dequantized: Bins::from_hist(&deq),
        error_hist: Bins::from_hist(&error_hist),
        error: Arc::new(error),
        sample_every,
    })
}

/// The calibration job: the per-tensor clip range of every calibrator and its error.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CalibKey {
    /// The model.
    pub model: ModelRef,
    /// Tensor index.
    pub tensor: usize,
    /// The settings (without a manual clip range).
    pub settings: QuantKeyPart,
}

impl JobKey for CalibKey {
    fn same_subject(&self, other: &Self) -> bool {
        self.model == other.model && self.tensor == other.tensor
    }
}

/// Computes every calibrator's per-tensor clip range and the error of quantizing the whole
/// tensor with it under the current scheme, preset and bits.
pub fn thresholds(
    store: &ValueStore,
    key: &CalibKey,
    cancel: &Cancel,
) -> Result<Vec<ThresholdLine>, String> {
    let values = store.values(&key.model, key.tensor, cancel)?;
    let settings = key.settings.settings();
    let mut cfg = settings.to_config();
    cfg.granularity = Granularity::PerTensor;
    cfg.outliers = quant::OutlierMode::None;
    let shape = key
        .model
        .model
        .tensors()
        .get(key.tensor)
        .map(|t| t.shape.clone())
        .ok_or("no such tensor")?;
    if calib::minmax_range(&values).is_none() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for choice in CalibrationChoice::ALL {
        cfg.calibration = settings.calibration_config(choice);
        let r = quant::quantize_tensor(&values, &shape, &cfg, quant::Outputs::default(), cancel)
            .map_err(|e| e.to_string())?;
        let (Some(&lo), Some(&hi)) = (r.clip_min.first(), r.clip_max.first()) else {
            continue;
        };
        // Symmetric schemes clip at ±absmax of the range.
        let (lo, hi) = if cfg.scheme == quant::Scheme::Symmetric {
            let a = lo.abs().max(hi.abs());
            (-a, a)
        } else {
            (lo, hi)
        };
        out.push(ThresholdLine {
            calibration: choice,
            lo,
            hi,
            mse: r.metrics.mse,
            sqnr_db: r.metrics.sqnr_db,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_model_opens_with_every_tensor() {
        let m = demo_model(&Cancel::never()).expect("demo");
        assert_eq!(m.tensors().len(), demo::demo_specs().len());
        let big = m.find("stress.dense_4096x4096.weight").expect("big tensor");
        assert_eq!(m.tensors()[big].shape, vec![4096, 4096]);
    }

    #[test]
    fn histogram_examples_are_real_elements_of_their_bin() {
        let model = Arc::new(
            Model::from_tensors(
                "t",
                vec![OwnedTensor::from_f32(
                    "w",
                    vec![2, 3],
                    &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
                )],
            )
            .expect("model"),
        );
        let store = ValueStore::default();
        let key = HistKey {
            model: ModelRef {
                id: 1,
                model,
                paths: vec![],
            },
            tensor: 0,
            bins: 5,
            grid: None,
        };
        let h = histogram_data(&store, &key, &Cancel::never()).expect("hist");
        // numpy.histogram([0..5], bins=5): edges 0,1,2,3,4,5; the last bin holds 4 and 5.
        assert_eq!(h.counts, vec![1, 1, 1, 1, 2]);
        assert_eq!(h.example, vec![Some(0), Some(1), Some(2), Some(3), Some(4)]);
        assert_eq!(h.bin_at(4.5), Some(4));
        assert_eq!(h.bin_at(5.0), Some(4));
        assert_eq!(h.bin_at(0.0), Some(0));
        assert_eq!(h.bin_at(-0.1), None);
    }

    /// Timing of the jobs on the 4096 × 4096 demo tensor (run with --release --ignored).
    #[test]
    #[ignore = "timing, run by hand in release"]
    fn timing_of_the_big_tensor() {
        let model = Arc::new(demo_model(&Cancel::never()).expect("demo"));
        let tensor = model.find("stress.dense_4096x4096.weight").expect("big");
        let mref = ModelRef {
            id: 1,
            model,
            paths: vec![],
        };
        let store = ValueStore::default();
        let t = std::time::Instant::now();
        store
            .values(&mref, tensor, &Cancel::never())
            .expect("values");
        eprintln!("decode {:?}", t.elapsed());
        let values = store
            .values(&mref, tensor, &Cancel::never())
            .expect("values");
        for want in [
            quant::Outputs::default(),
            quant::Outputs {
                codes: false,
                dequantized: true,
            },
        ] {
            let cfg = QuantConfig::default();
            let t = std::time::Instant::now();
            quant::quantize_tensor(&values, &[4096, 4096], &cfg, want, &Cancel::never())
                .expect("q");
            eprintln!("quantize_tensor {want:?} {:?}", t.elapsed());
        }
        for c in [
            quant::Calibration::Entropy,
            quant::Calibration::Mse,
            quant::Calibration::Percentile(99.99),
        ] {
            let cfg = QuantConfig {
                calibration: c,
                ..QuantConfig::default()
            };
            let t = std::time::Instant::now();
            quant::quantize_tensor(
                &values,
                &[4096, 4096],
                &cfg,
                quant::Outputs::default(),
                &Cancel::never(),
            )
            .expect("q");
            eprintln!("quantize_tensor {c:?} {:?}", t.elapsed());
        }
        let t = std::time::Instant::now();
        stats::histogram(&values, 200, -1.0, 1.0, &Cancel::never()).expect("h");
        eprintln!("one histogram {:?}", t.elapsed());
        for clip in [None, Some((-0.5, 0.5))] {
            let key = QuantKey {
                model: mref.clone(),
                tensor,
                settings: QuantKeyPart::new(&crate::app::qsettings::QuantSettings::default(), clip),
            };
            let t = std::time::Instant::now();
            let v = quant_view(&store, &key, &Cancel::never()).expect("quant");
            eprintln!(
                "quant_view {clip:?} {:?} (inner {:.0} ms)",
                t.elapsed(),
                v.elapsed_ms
            );
            let t = std::time::Instant::now();
            let ck = CalibKey {
                model: mref.clone(),
                tensor,
                settings: key.settings.clone(),
            };
            thresholds(&store, &ck, &Cancel::never()).expect("thresholds");
            eprintln!("thresholds {:?}", t.elapsed());
        }
        let hk = HistKey {
            model: mref.clone(),
            tensor,
            bins: 256,
            grid: None,
        };
        let t = std::time::Instant::now();
        histogram_data(&store, &hk, &Cancel::never()).expect("hist");
        eprintln!("histogram {:?}", t.elapsed());
    }

    #[test]
    fn examples_fall_in_the_bins_the_core_assigns() {
        let spec = &demo::demo_specs()[0];
        let values: Vec<f32> = demo::generate(spec, &Cancel::never())
            .expect("values")
            .into_iter()
            .take(50_000)
            .collect();
        let hist = stats::histogram_auto(&values, 97, &Cancel::never()).expect("hist");
        let ex = first_element_per_bin(&values, &hist, &Cancel::never()).expect("examples");
        for (bin, e) in ex.iter().enumerate() {
            match e {
                Some(i) => {
                    let x = values[usize::try_from(*i).expect("index")];
                    assert_eq!(hist.bin_of(f64::from(x)), Some(bin));
                }
                None => assert_eq!(hist.counts[bin], 0),
            }
        }
    }

    #[test]
    fn rows_cols_flattens_trailing_axes() {
        assert_eq!(rows_cols(&[]), (1, 1));
        assert_eq!(rows_cols(&[7]), (1, 7));
        assert_eq!(rows_cols(&[4, 3, 2]), (4, 6));
    }
}
