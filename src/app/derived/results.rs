//! The derived results of the app and the functions that compute them on the job pool: each
//! takes a key holding every input it depends on, runs the core, and returns a small,
//! pre-digested value (downsampled plot data, per-group parameters) that panels only read.
//! Everything here is O(tensor size) and runs off the UI thread.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::super::demo;
use super::super::jobs::JobKey;
use super::super::state::{ModelRef, OpenRequest};
use crate::cancel::Cancel;
use crate::quant::outliers::OutlierRule;
use crate::quant::{
    self, Calibration, GroupLayout, OutlierMode, Outputs, QuantConfig, QuantParams, QuantResult,
};
use crate::stats::{self, ExponentHistogram, Summary};
use crate::tensor::Model;

/// Opening a model is keyed by the request (files and generation).
pub type OpenKey = OpenRequest;

impl JobKey for OpenKey {}

/// A model that opened, with the files it came from and what could not be opened.
pub struct OpenedModel {
    /// The model.
    pub model: Arc<Model>,
    /// The files it came from (empty for the demo).
    pub paths: Vec<std::path::PathBuf>,
    /// One message per file that could not be opened (the others opened).
    pub skipped: Vec<String>,
    /// The calibration batches among its tensors.
    pub batch_sets: Arc<Vec<super::super::state::BatchSet>>,
}

/// Opens the files of `key` (one file, a folder, an index, or several shards), or generates
/// the demo model. When several files do not open together, each is tried alone: the good ones
/// open (together, if they form one model) and each broken one is reported.
pub fn open_model(key: &OpenKey, cancel: &Cancel) -> Result<OpenedModel, String> {
    let opened = |model: Model, paths: &[std::path::PathBuf], skipped: Vec<String>| OpenedModel {
        batch_sets: Arc::new(demo::batch_sets_of(&model)),
        model: Arc::new(model),
        paths: paths.to_vec(),
        skipped,
    };
    match key.paths.as_slice() {
        [] => {
            let demo = demo::demo(cancel)?;
            Ok(OpenedModel {
                model: Arc::new(demo.model),
                paths: Vec::new(),
                skipped: Vec::new(),
                batch_sets: Arc::new(demo.batch_sets),
            })
        }
        [one] => Ok(opened(
            Model::open(one).map_err(|e| e.to_string())?,
            &key.paths,
            Vec::new(),
        )),
        many => {
            let together = Model::open_many(many);
            let Err(together_error) = together else {
                return together
                    .map(|m| opened(m, many, Vec::new()))
                    .map_err(|e| e.to_string());
            };
            let (mut good, mut skipped) = (Vec::new(), Vec::new());
            for path in many {
                match Model::open(path) {
                    Ok(_) => good.push(path.clone()),
                    Err(e) => skipped.push(e.to_string()),
                }
            }
            let model = match good.as_slice() {
                [] => return Err(together_error.to_string()),
                [one] => Model::open(one),
                several => Model::open_many(several),
            }
            .map_err(|e| e.to_string())?;
            Ok(opened(model, &good, skipped))
        }
    }
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

    /// Whether tensor `index` of `model` is decoded already (then a job skips the decode stage).
    pub fn has(&self, model: &ModelRef, index: usize) -> bool {
        self.lookup((model.id, index)).is_some()
    }

    fn lookup(&self, key: ValueId) -> Option<Arc<Vec<f32>>> {
        let entries = self.entries.lock().ok()?;
        entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| Arc::clone(v))
    }
}

/// The shape of tensor `tensor` of `model`.
fn shape_of(model: &ModelRef, tensor: usize) -> Result<Vec<usize>, String> {
    model
        .model
        .tensors()
        .get(tensor)
        .map(|t| t.shape.clone())
        .ok_or_else(|| "no such tensor".to_string())
}

/// Announces a job's stages up front (decode if needed, then `passes` passes over the values)
/// so the progress bar counts all of them.
fn reserve_stages(store: &ValueStore, model: &ModelRef, tensor: usize, passes: u64, c: &Cancel) {
    let n = model.model.tensors().get(tensor).map_or(0, |t| t.numel());
    let decode = u64::from(!store.has(model, tensor));
    c.reserve(n.saturating_mul(decode + passes));
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

/// The settings-dependent figures of one browser row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowKey {
    /// The model.
    pub model: ModelRef,
    /// Tensor index.
    pub tensor: usize,
    /// The settings in force (no manual clip: that belongs to one tensor).
    pub config: QuantConfig,
}

impl JobKey for RowKey {
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
    /// Finite values that are outliers under the settings' threshold (NUMERICS.md §5),
    /// counted whether or not the outlier split is switched on.
    pub outliers: u64,
}

impl RowError {
    /// The row figures of a quantization that has already run.
    pub fn of(result: &QuantResult, outliers: u64) -> Self {
        Self {
            sqnr_db: result.metrics.sqnr_db,
            outliers,
        }
    }
}

/// How many values are outliers under `cfg`'s threshold, by the core's one rule.
fn outlier_count(values: &[f32], cfg: &QuantConfig, cancel: &Cancel) -> Result<u64, String> {
    let rule =
        OutlierRule::new(values, cfg.outlier_threshold, cancel).map_err(|e| e.to_string())?;
    rule.count(values, cancel).map_err(|e| e.to_string())
}

/// Computes [`RowError`] with the core's fused kernel (no codes or dequantized values kept).
pub fn row_error(store: &ValueStore, key: &RowKey, cancel: &Cancel) -> Result<RowError, String> {
    let values = store.values(&key.model, key.tensor, cancel)?;
    let shape = shape_of(&key.model, key.tensor)?;
    let result = quant::quantize_tensor(&values, &shape, &key.config, Outputs::default(), cancel)
        .map_err(|e| e.to_string())?;
    Ok(RowError::of(
        &result,
        outlier_count(&values, &key.config, cancel)?,
    ))
}

/// The quantization of the selected tensor under the settings in force (a dragged clip range
/// already folded into `config` as a per-tensor manual calibration).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuantKey {
    /// The model.
    pub model: ModelRef,
    /// Tensor index.
    pub tensor: usize,
    /// Every setting the run depends on.
    pub config: QuantConfig,
}

impl JobKey for QuantKey {
    fn same_subject(&self, other: &Self) -> bool {
        self.model == other.model && self.tensor == other.tensor
    }
}

/// One quantization of one tensor: the core's result (with the dequantized values), kept whole
/// so the metrics, the error plots, the heatmaps, the legend entry of the active calibrator,
/// "explain this number" and the exports all read the same run.
#[derive(Debug)]
pub struct Quantized {
    /// The configuration run.
    pub config: QuantConfig,
    /// The core's result; `dequantized` is set.
    pub result: QuantResult,
    /// One (S, z) per group, rebuilt from the core's calibrated ranges exactly as it built them.
    pub params: Vec<QuantParams>,
    /// Element → group, the core's layout.
    pub layout: GroupLayout,
    /// The original values (shared with the value store).
    pub values: Arc<Vec<f32>>,
    /// Outliers under the settings' threshold (the browser's count, computed once here too).
    pub outliers: u64,
    /// Time to decode the stored tensor (0 when it was decoded already), ms.
    pub decode_ms: f64,
    /// Time of the quantization itself, ms.
    pub elapsed_ms: f64,
}

impl Quantized {
    /// The (S, z) of element `flat`.
    pub fn params_of(&self, flat: usize) -> Option<&QuantParams> {
        self.params.get(self.layout.group_of(flat))
    }

    /// The dequantized values.
    pub fn dequantized(&self) -> &[f32] {
        self.result.dequantized.as_deref().unwrap_or(&[])
    }

    /// The range the grid covers, [S (qmin − z), S (qmax − z)], when one (S, z) covers all.
    pub fn grid_range(&self) -> Option<(f64, f64)> {
        match self.params.as_slice() {
            [p] => Some((
                f64::from(p.real_from_code(p.qmin)),
                f64::from(p.real_from_code(p.qmax)),
            )),
            _ => None,
        }
    }
}

/// Runs the quantization of `key`: one call of the core for everything the views show.
pub fn quantize(store: &ValueStore, key: &QuantKey, cancel: &Cancel) -> Result<Quantized, String> {
    reserve_stages(store, &key.model, key.tensor, 1, cancel);
    let decode_start = std::time::Instant::now();
    let decoded_before = store.has(&key.model, key.tensor);
    let values = store.values(&key.model, key.tensor, cancel)?;
    let decode_ms = if decoded_before {
        0.0
    } else {
        decode_start.elapsed().as_secs_f64() * 1e3
    };
    let shape = shape_of(&key.model, key.tensor)?;
    key.config.validate(&shape).map_err(|e| e.to_string())?;
    let start = std::time::Instant::now();
    let want = Outputs {
        codes: false,
        dequantized: true,
    };
    let result = quant::quantize_tensor(&values, &shape, &key.config, want, cancel)
        .map_err(|e| e.to_string())?;
    let elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
    let params = result
        .clip_min
        .iter()
        .zip(&result.clip_max)
        .map(|(&lo, &hi)| quant::params_from_range(lo, hi, &key.config))
        .collect();
    let layout = GroupLayout::new(&shape, key.config.granularity).map_err(|e| e.to_string())?;
    let outliers = match key.config.outliers {
        // The split counted them under the same rule.
        OutlierMode::Elements => result.outliers.count,
        _ => outlier_count(&values, &key.config, cancel)?,
    };
    Ok(Quantized {
        config: key.config.clone(),
        result,
        params,
        layout,
        values,
        outliers,
        decode_ms,
        elapsed_ms,
    })
}

/// A result computed from a finished [`Quantized`]: equality and hashing ignore the value (the
/// [`QuantKey`] beside it identifies it).
pub struct Upstream<T>(pub Arc<T>);

impl<T> Clone for Upstream<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> PartialEq for Upstream<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> Eq for Upstream<T> {}

impl<T> Hash for Upstream<T> {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

impl<T> std::fmt::Debug for Upstream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Upstream(..)")
    }
}

/// The error distributions of one quantization.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DetailKey {
    /// The quantization.
    pub quant: QuantKey,
    /// Its result.
    pub from: Upstream<Quantized>,
}

impl JobKey for DetailKey {
    fn same_subject(&self, other: &Self) -> bool {
        self.quant.same_subject(&other.quant)
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

/// The distributions the error tab draws.
#[derive(Debug, Clone)]
pub struct ErrorDetail {
    /// Histogram of the original values.
    pub original: Bins,
    /// Histogram of the dequantized values on the same edges.
    pub dequantized: Bins,
    /// Histogram of e = x' − x.
    pub error_hist: Bins,
    /// The distributions use every `sample_every`-th element (1 = all).
    pub sample_every: usize,
}

/// Above this many elements the distributions of the error tab use a regular sample.
const DETAIL_SAMPLE_LIMIT: usize = 1 << 21;

/// Computes the [`ErrorDetail`] of a finished quantization (no new quantization).
pub fn error_detail(key: &DetailKey, cancel: &Cancel) -> Result<ErrorDetail, String> {
    let q = &*key.from.0;
    error_detail_of(&q.values, q.dequantized(), cancel)
}

/// The [`ErrorDetail`] of original `values` against their reconstruction `dequantized` (a
/// simulated quantization or a deployed file's tensor).
pub fn error_detail_of(
    values: &[f32],
    dequantized: &[f32],
    cancel: &Cancel,
) -> Result<ErrorDetail, String> {
    let sample_every = values.len().div_ceil(DETAIL_SAMPLE_LIMIT).max(1);
    let sample = |v: &[f32]| -> Vec<f32> { v.iter().step_by(sample_every).copied().collect() };
    let (xs, xhs) = (sample(values), sample(dequantized));
    let es: Vec<f32> = xs
        .par_iter()
        .zip(xhs.par_iter())
        .map(|(&x, &xh)| if x.is_finite() { xh - x } else { f32::NAN })
        .collect();
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
        sample_every,
    })
}

/// The histogram of the selected tensor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HistKey {
    /// The model.
    pub model: ModelRef,
    /// Tensor index.
    pub tensor: usize,
    /// Equal-width bins over [min, max] (ignored with a grid).
    pub bins: usize,
    /// One bin per code, centred on the grid points of one (S, z).
    pub grid: Option<CodeGrid>,
}

impl JobKey for HistKey {
    fn same_subject(&self, other: &Self) -> bool {
        self.model == other.model && self.tensor == other.tensor
    }
}

/// The grid of one (S, z): bins [S (q − z − ½), S (q − z + ½)] for q in [qmin, qmax].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodeGrid {
    /// The scale S, as f32 bits (so the key hashes exactly).
    pub scale_bits: u32,
    /// The zero point z.
    pub zero_point: i32,
    /// The smallest code.
    pub qmin: i32,
    /// The largest code.
    pub qmax: i32,
}

impl CodeGrid {
    /// The grid of `p`.
    pub fn of(p: &QuantParams) -> Self {
        Self {
            scale_bits: p.scale.to_bits(),
            zero_point: p.zero_point,
            qmin: p.qmin,
            qmax: p.qmax,
        }
    }
}

/// A histogram ready to draw, with a real element of the tensor in each bin (so clicking a bar
/// can pick a weight).
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
    /// The core's histogram (its bin rule decides which bin a value is in).
    hist: stats::Histogram,
}

impl HistData {
    /// The bin containing `x`, if inside the range (numpy's rule, as the core bins).
    pub fn bin_at(&self, x: f64) -> Option<usize> {
        self.hist.bin_of(x)
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
        Some(g) => {
            let s = f64::from(f32::from_bits(g.scale_bits));
            let lo = s * (f64::from(g.qmin - g.zero_point) - 0.5);
            let hi = s * (f64::from(g.qmax - g.zero_point) + 0.5);
            let bins = usize::try_from(g.qmax - g.qmin + 1).map_err(|e| e.to_string())?;
            stats::histogram(&values, bins, lo, hi, cancel)
        }
        None => stats::histogram_auto(&values, key.bins.max(1), cancel),
    }
    .map_err(|e| e.to_string())?;
    let example = first_element_per_bin(&values, &hist, cancel)?;
    Ok(HistData {
        edges: hist.edges().iter().map(|&e| f64::from(e)).collect(),
        counts: hist.counts.clone(),
        example,
        outside: hist.below + hist.above,
        nonfinite: hist.nonfinite,
        finite: hist.total() + hist.below + hist.above,
        hist,
    })
}

/// The first element of the tensor in each bin of `hist` (the core's bin rule).
fn first_element_per_bin(
    values: &[f32],
    hist: &stats::Histogram,
    cancel: &Cancel,
) -> Result<Vec<Option<u64>>, String> {
    let bins = hist.bin_count();
    let chunk = stats::CHUNK_LEN;
    let partial: Vec<Vec<Option<u64>>> = values
        .par_chunks(chunk)
        .enumerate()
        .map(|(c, part)| {
            cancel.check().map_err(|e| e.to_string())?;
            let mut first = vec![None; bins];
            let mut missing = bins;
            for (i, &v) in part.iter().enumerate() {
                if let Some(b) = hist.bin_of(f64::from(v))
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

/// The calibrators the histogram legend compares, in legend order (`p` for the percentile).
pub fn legend_calibrations(p: f64) -> [Calibration; 4] {
    [
        Calibration::MinMax,
        Calibration::Percentile(p),
        Calibration::Entropy,
        Calibration::Mse,
    ]
}

/// One measurement of the selected tensor under some settings (a legend entry, a lesson's
/// run): one calibration pass and one metrics pass of the core, no large outputs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MeasureKey {
    /// The model.
    pub model: ModelRef,
    /// Tensor index.
    pub tensor: usize,
    /// The settings of the run.
    pub config: QuantConfig,
}

impl JobKey for MeasureKey {
    fn lane(&self) -> u64 {
        // One lane per calibrator: the four compute side by side and replace only themselves.
        match self.config.calibration {
            Calibration::MinMax | Calibration::Manual { .. } => 0,
            Calibration::Percentile(_) => 1,
            Calibration::Entropy => 2,
            Calibration::Mse => 3,
        }
    }

    fn same_subject(&self, other: &Self) -> bool {
        self.model == other.model && self.tensor == other.tensor
    }
}

/// One calibrator's clip range per group and the error of quantizing the tensor with it under
/// the settings in force.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdLine {
    /// Which calibrator (its configuration in force).
    pub calibration: Calibration,
    /// The clip range in force per group: [−a, a] for symmetric schemes.
    pub ranges: Vec<(f64, f64)>,
    /// MSE of quantizing the tensor with this calibrator.
    pub mse: f64,
    /// SQNR in dB.
    pub sqnr_db: f64,
}

impl ThresholdLine {
    /// The legend entry of a finished quantization.
    pub fn of(config: &QuantConfig, result: &QuantResult) -> Self {
        let symmetric = config.scheme == quant::Scheme::Symmetric;
        let ranges = result
            .clip_min
            .iter()
            .zip(&result.clip_max)
            .map(|(&lo, &hi)| {
                if symmetric {
                    let a = lo.abs().max(hi.abs());
                    (-a, a)
                } else {
                    (lo, hi)
                }
            })
            .collect();
        Self {
            calibration: config.calibration,
            ranges,
            mse: result.metrics.mse,
            sqnr_db: result.metrics.sqnr_db,
        }
    }
}

/// Runs the core under `key.config` (metrics only; per-tensor entropy and MSE runs carry their
/// calibration curve).
pub fn measure(
    store: &ValueStore,
    key: &MeasureKey,
    cancel: &Cancel,
) -> Result<QuantResult, String> {
    let values = store.values(&key.model, key.tensor, cancel)?;
    let shape = shape_of(&key.model, key.tensor)?;
    quant::quantize_tensor(&values, &shape, &key.config, Outputs::default(), cancel)
        .map_err(|e| e.to_string())
}

/// Calibration over the batches of one batch set of the model.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BatchKey {
    /// The model.
    pub model: ModelRef,
    /// The batch set's index in the model's list.
    pub set: usize,
    /// Code bits of the entropy threshold.
    pub bits: u8,
    /// The percentile p, as f64 bits.
    pub percentile_bits: u64,
}

impl JobKey for BatchKey {
    fn same_subject(&self, other: &Self) -> bool {
        self.model == other.model && self.set == other.set
    }
}

/// One batch set calibrated batch by batch, and the weights that read it.
#[derive(Debug)]
pub struct BatchView {
    /// The thresholds after each batch and the per-feature ranges.
    pub calibration: crate::quant::batches::BatchCalibration,
    /// Per weight that reads this input: its name and each input column's max |w|.
    pub weight_columns: Vec<(String, Vec<f32>)>,
    /// Where the batches came from.
    pub source: String,
}

/// Feeds the batches of `key.set` to the core's batch calibrator in order, and measures each
/// weight that reads them per input column.
pub fn batch_view(
    store: &ValueStore,
    key: &BatchKey,
    cancel: &Cancel,
) -> Result<BatchView, String> {
    use super::super::state::BatchMembers;
    use crate::quant::batches::{BatchCalibrator, BatchOptions};
    let set = key
        .model
        .batch_sets
        .get(key.set)
        .ok_or("no such batch set")?;
    let options = BatchOptions {
        bits: key.bits,
        percentile: f64::from_bits(key.percentile_bits),
        ..BatchOptions::default()
    };
    let tensors = key.model.model.tensors();
    let features = |index: usize| tensors.get(index).and_then(|t| t.shape.last().copied());
    let err = |e: crate::quant::batches::BatchError| e.to_string();
    let mut calibrator;
    match &set.members {
        BatchMembers::Rows { tensor, rows } => {
            let f = features(*tensor).ok_or("no such tensor")?;
            calibrator = BatchCalibrator::new(f, options).map_err(err)?;
            let values = store.values(&key.model, *tensor, cancel)?;
            let mut start = 0usize;
            for &r in rows {
                let end = (start + r * f).min(values.len());
                calibrator
                    .add_batch(values.get(start..end).unwrap_or(&[]), cancel)
                    .map_err(err)?;
                start = end;
            }
        }
        BatchMembers::Tensors(members) => {
            let f = members
                .first()
                .and_then(|&m| features(m))
                .ok_or("no batches")?;
            calibrator = BatchCalibrator::new(f, options).map_err(err)?;
            for &m in members {
                let values = store.values(&key.model, m, cancel)?;
                calibrator.add_batch(&values, cancel).map_err(err)?;
            }
        }
    }
    let mut weight_columns = Vec::new();
    for &w in &set.input_of {
        let Some(info) = tensors.get(w) else { continue };
        let cols = info.shape.last().copied().unwrap_or(1).max(1);
        let values = store.values(&key.model, w, cancel)?;
        let mut absmax = vec![0.0f32; cols];
        for row in values.chunks_exact(cols) {
            for (m, &v) in absmax.iter_mut().zip(row) {
                if v.is_finite() {
                    *m = m.max(v.abs());
                }
            }
        }
        weight_columns.push((info.name.clone(), absmax));
    }
    Ok(BatchView {
        calibration: calibrator.finish(),
        weight_columns,
        source: set.source.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::OwnedTensor;

    fn model_ref(model: Model) -> ModelRef {
        ModelRef {
            id: 1,
            model: Arc::new(model),
            paths: vec![],
            batch_sets: Arc::default(),
        }
    }

    #[test]
    fn histogram_examples_are_real_elements_of_their_bin() {
        let model = Model::from_tensors(
            "t",
            vec![OwnedTensor::from_f32(
                "w",
                vec![2, 3],
                &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            )],
        )
        .expect("model");
        let store = ValueStore::default();
        let key = HistKey {
            model: model_ref(model),
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
    fn one_quantization_feeds_the_view_and_its_error_detail() {
        let x: Vec<f32> = (0..600)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let model = model_ref(
            Model::from_tensors("t", vec![OwnedTensor::from_f32("w", vec![20, 30], &x)])
                .expect("model"),
        );
        let store = ValueStore::default();
        let key = QuantKey {
            model: model.clone(),
            tensor: 0,
            config: QuantConfig {
                bits: 4,
                granularity: quant::Granularity::PerGroup { size: 8 },
                ..QuantConfig::default()
            },
        };
        let before = quant::tensor::quantize_calls_on_this_thread();
        let q = Arc::new(quantize(&store, &key, &Cancel::never()).expect("quantizes"));
        let detail = error_detail(
            &DetailKey {
                quant: key.clone(),
                from: Upstream(Arc::clone(&q)),
            },
            &Cancel::never(),
        )
        .expect("detail");
        assert_eq!(quant::tensor::quantize_calls_on_this_thread() - before, 1);
        // The same numbers as the core's direct call.
        let direct = quant::quantize_tensor(
            &x,
            &[20, 30],
            &key.config,
            Outputs {
                codes: false,
                dequantized: true,
            },
            &Cancel::never(),
        )
        .expect("direct");
        assert_eq!(q.result, direct);
        // 20 rows × ceil(30 / 8) = 4 groups per row; element 29 is in group 3 of row 0.
        assert_eq!(q.layout.groups(), 80);
        assert_eq!(q.params_of(29), q.params.get(3));
        assert_eq!(detail.original.counts.iter().sum::<u64>(), 600);
        assert_eq!(detail.error_hist.counts.iter().sum::<u64>(), 600);
    }
}
