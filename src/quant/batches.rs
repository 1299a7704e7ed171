//! Calibration over batches: the clip thresholds as calibration batches arrive one by one.
//!
//! Activations are calibrated on several batches, and the libraries differ in how they combine
//! them. After each batch this module reports what a user of each library would hold:
//!
//! - **running min-max**, ONNX Runtime's `MinMaxCalibrater` with one `collect_data` call per
//!   batch: the range of each batch merged into the running range by min/max, or, with its
//!   `moving_average` option, by `old + c · (new − old)` in f32 (`averaging_constant` c, 0.01 by
//!   default); symmetric mode averages each batch's absmax ([`RunningMinMax`]).
//! - **a histogram of |x| accumulated over batches** ([`AbsHistogram`]), as ONNX Runtime's
//!   `HistogramCollector.collect_absolute_value` (its `PercentileCalibrater`, symmetric) and
//!   NVIDIA's `HistogramCalibrator` with `torch_hist=False` (pytorch-quantization, now Model
//!   Optimizer) build it: the first batch sets `num_bins` (2048) bins on [min|x|, max|x|]
//!   (`np.histogram(|x|, bins)`); a later batch whose max|x| passes the last edge appends bins of
//!   the first bin's width (`np.arange`, computed exactly as numpy does); values below the first
//!   edge are never counted. The two libraries differ in one detail, kept here ([`EdgeRule`]):
//!   ONNX Runtime casts the edges back to f32 after every batch, NVIDIA keeps them in f64.
//! - from the accumulated histogram: the **percentile** threshold (the edge where the
//!   cumulative fraction first reaches p/100; ONNX Runtime then clamps −edge and +edge to the
//!   observed min and max) and TensorRT's **entropy** (KL) threshold
//!   ([`super::calib::entropy_from_histogram`] on the grown histogram).
//! - **per-channel ranges**: the min and max of each feature (last axis) over all batches.
//!
//! Non-finite values are left out everywhere (NUMERICS.md §2); the references would propagate
//! NaN. Batches are row-major `[rows, features]` slices; [`batch_order`] fixes which members of
//! a file are the batches (`batch_00`, `batch_01`, …). Checked bit for bit against ONNX Runtime
//! 1.32 and Model Optimizer by `tests/batch_calibration.rs` on the committed MiniLM activations.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::calib::entropy_from_histogram;
use crate::cancel::{Cancel, Cancelled};
use crate::stats::{self, CHUNK_LEN, MAX_BINS, StatsError};

/// Why batch calibration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BatchError {
    /// The file has no member named `batch_<number>`.
    #[error("no calibration batches: expected members named batch_00, batch_01, …")]
    NoBatches,
    /// A member that is not `batch_<number>` (the layout allows nothing else).
    #[error("member '{0}' is not a calibration batch (expected batch_00, batch_01, …)")]
    UnexpectedMember(String),
    /// Two members carry the same batch number (`batch_1` and `batch_01`).
    #[error("two members are batch number {0}")]
    DuplicateBatch(u64),
    /// Zero features per row.
    #[error("calibration batches need at least one feature per row")]
    ZeroFeatures,
    /// A batch whose shape does not match the others.
    #[error("batch {batch} has {got} features per row; the first batch has {expected}")]
    Features {
        /// Position of the batch (0-based, in batch order).
        batch: usize,
        /// Features per row of the first batch.
        expected: usize,
        /// What this batch has.
        got: usize,
    },
    /// A batch whose value count is not a whole number of rows.
    #[error("batch {batch} holds {len} values, not a multiple of {features} features")]
    Ragged {
        /// Position of the batch.
        batch: usize,
        /// Its value count.
        len: usize,
        /// Features per row.
        features: usize,
    },
    /// An option outside its domain.
    #[error("{0}")]
    Options(String),
    /// The histogram grew past [`MAX_BINS`] bins (a later batch far wider than the first).
    #[error("the histogram would need {bins} bins (at most {max})")]
    TooManyBins {
        /// Bins the growth asked for.
        bins: usize,
        /// The limit.
        max: usize,
    },
    /// The job was cancelled.
    #[error("cancelled")]
    Cancelled(#[from] Cancelled),
}

impl From<StatsError> for BatchError {
    fn from(error: StatsError) -> Self {
        match error {
            StatsError::Cancelled(c) => BatchError::Cancelled(c),
            other => BatchError::Options(other.to_string()),
        }
    }
}

/// The batch members of a file, in batch order: indices into `names`.
///
/// The layout of a calibration-batch file (.npz, .safetensors): every member is named
/// `batch_<n>` (n decimal, any zero padding: `batch_00`, `batch_01`, …), ordered by n. Each is a
/// `[rows, features]` array (any float dtype; higher ranks are read as rows of the last axis).
pub fn batch_order(names: &[&str]) -> Result<Vec<usize>, BatchError> {
    let mut numbered = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let number = name
            .strip_prefix("batch_")
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<u64>().ok())
            .ok_or_else(|| BatchError::UnexpectedMember((*name).to_string()))?;
        numbered.push((number, index));
    }
    if numbered.is_empty() {
        return Err(BatchError::NoBatches);
    }
    numbered.sort_unstable();
    if let Some(pair) = numbered.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(BatchError::DuplicateBatch(pair[0].0));
    }
    Ok(numbered.into_iter().map(|(_, index)| index).collect())
}

/// ONNX Runtime's `MinMaxCalibrater` range, merged batch by batch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunningMinMax {
    /// `Some(c)`: `moving_average=True` with `averaging_constant` c; `None`: plain min/max.
    pub averaging_constant: Option<f32>,
    /// The running (min, max); `None` before the first batch with a finite value.
    pub range: Option<(f32, f32)>,
}

impl RunningMinMax {
    /// A plain running min-max (the global min and max of everything seen).
    pub fn plain() -> Self {
        Self {
            averaging_constant: None,
            range: None,
        }
    }

    /// ONNX Runtime's moving average with `averaging_constant` c (its default is 0.01).
    pub fn moving_average(c: f32) -> Self {
        Self {
            averaging_constant: Some(c),
            range: None,
        }
    }

    /// Merges one batch's (min, max), as `MinMaxCalibrater.merge_range` does: the first batch
    /// sets the range; then `min(old, new)` / `max(old, new)`, or `old + c · (new − old)` with
    /// every operation rounded to f32 (numpy float32 scalars with a Python-float constant).
    pub fn add(&mut self, batch: (f32, f32)) {
        self.range = Some(match (self.range, self.averaging_constant) {
            (None, _) => batch,
            (Some((lo, hi)), None) => (lo.min(batch.0), hi.max(batch.1)),
            (Some((lo, hi)), Some(c)) => (lo + c * (batch.0 - lo), hi + c * (batch.1 - hi)),
        });
    }
}

/// How the accumulated histogram keeps its edges after a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EdgeRule {
    /// ONNX Runtime's `HistogramCollector`: edges cast back to f32 after every batch.
    OnnxRuntime,
    /// NVIDIA's `HistogramCalibrator` (`torch_hist=False`): edges stay f64 once grown.
    TensorRt,
}

/// A histogram of |x| accumulated over batches (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AbsHistogram {
    /// Which library's edge handling.
    pub rule: EdgeRule,
    /// Bins of the first batch's histogram.
    pub initial_bins: usize,
    /// Counts per bin (`edges.len() - 1` bins once a batch was added).
    pub counts: Vec<u64>,
    /// Bin edges, increasing; each is an f32 value while `edges_are_f32`.
    pub edges: Vec<f64>,
    /// Whether the edges array is float32 in the reference (else float64).
    pub edges_are_f32: bool,
    /// Finite min and max of the raw values seen (ONNX Runtime clamps percentiles to them).
    pub raw_range: Option<(f32, f32)>,
    /// Finite values never counted: below the first edge or above the last.
    pub dropped: u64,
}

impl AbsHistogram {
    /// An empty histogram that starts with `bins` bins.
    pub fn new(rule: EdgeRule, bins: usize) -> Self {
        Self {
            rule,
            initial_bins: bins,
            counts: Vec::new(),
            edges: Vec::new(),
            edges_are_f32: true,
            raw_range: None,
            dropped: 0,
        }
    }

    /// Adds one batch. A batch without finite values changes nothing.
    pub fn add_batch(&mut self, values: &[f32], cancel: &Cancel) -> Result<(), BatchError> {
        let Some((lo, hi)) = stats::finite_min_max(values, cancel)? else {
            return Ok(());
        };
        self.raw_range = Some(match self.raw_range {
            None => (lo, hi),
            Some((a, b)) => (a.min(lo), b.max(hi)),
        });
        let magnitudes: Vec<f32> = values.iter().map(|v| v.abs()).collect();
        if self.edges.is_empty() {
            // np.histogram(|x|, bins): range [min|x|, max|x|] in f32, edges by f32 linspace.
            let first = stats::histogram_auto(&magnitudes, self.initial_bins, cancel)?;
            self.edges = first.edges().iter().map(|&e| f64::from(e)).collect();
            self.counts = first.counts;
            self.edges_are_f32 = true;
            return Ok(());
        }
        let absmax = lo.abs().max(hi.abs());
        if self
            .edges
            .last()
            .is_some_and(|&last| f64::from(absmax) > last)
        {
            self.grow(absmax)?;
        }
        let (counts, dropped) = count_into(&magnitudes, &self.edges, cancel)?;
        let old = std::mem::replace(&mut self.counts, counts);
        for (c, o) in self.counts.iter_mut().zip(&old) {
            *c += o;
        }
        self.dropped += dropped;
        if self.rule == EdgeRule::OnnxRuntime && !self.edges_are_f32 {
            // hist_edges.astype(float32): RNE, as `f64 as f32` rounds.
            for e in &mut self.edges {
                *e = f64::from(*e as f32);
            }
            self.edges_are_f32 = true;
        }
        Ok(())
    }

    /// Appends `np.arange(last + width, amax + width, width)` to the edges, where width is the
    /// first bin's width, with numpy's arithmetic: float32 scalars while the edges are f32
    /// (the length is `ceil(f32((stop − start) / width))`, the second value is `f32(start +
    /// width)`), float64 otherwise; the array itself is float64, element i ≥ 2 being
    /// `start + i · (second − start)`.
    fn grow(&mut self, absmax: f32) -> Result<(), BatchError> {
        let (Some(&e0), Some(&e1), Some(&last)) =
            (self.edges.first(), self.edges.get(1), self.edges.last())
        else {
            return Ok(());
        };
        let (start, second, length) = if self.edges_are_f32 {
            // The edges hold f32 values: these casts are exact.
            let (e0, e1, last) = (e0 as f32, e1 as f32, last as f32);
            let width = e1 - e0;
            let start = last + width;
            let stop = absmax + width;
            let length = f64::from((stop - start) / width).ceil();
            (f64::from(start), f64::from(start + width), length)
        } else {
            let width = e1 - e0;
            let start = last + width;
            let stop = f64::from(absmax) + width;
            (start, start + width, ((stop - start) / width).ceil())
        };
        let max_new = MAX_BINS.saturating_sub(self.counts.len());
        // `length` is a non-negative whole number here, or NaN (treated as 0) for a degenerate
        // width; anything at or above MAX_BINS is refused before the cast can saturate.
        if length >= max_new as f64 {
            return Err(BatchError::TooManyBins {
                bins: self.counts.len().saturating_add(max_new),
                max: MAX_BINS,
            });
        }
        let length = if length > 0.0 { length as usize } else { 0 };
        let delta = second - start;
        self.edges.extend((0..length).map(|i| match i {
            0 => start,
            1 => second,
            // i < MAX_BINS = 2^24: exact in f64.
            _ => start + i as f64 * delta,
        }));
        self.edges_are_f32 = false;
        Ok(())
    }

    /// The edge where the cumulative fraction first reaches `p` / 100 (numpy:
    /// `edges[searchsorted(cumsum(hist / total), p / 100)]`, the cumulative sum in f64 in bin
    /// order). `None` while nothing was counted.
    pub fn percentile_edge(&self, p: f64) -> Option<f64> {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return None;
        }
        let target = p / 100.0;
        // Counts are far below 2^53: exact in f64.
        let total = total as f64;
        let mut cumulative = 0.0f64;
        let mut index = self.counts.len();
        for (i, &count) in self.counts.iter().enumerate() {
            cumulative += count as f64 / total;
            if cumulative >= target {
                index = i;
                break;
            }
        }
        self.edges.get(index).copied()
    }

    /// ONNX Runtime's symmetric percentile range: (−edge, edge) with −edge raised to the raw
    /// min and edge lowered to the raw max when they lie beyond them. In f32, as ONNX Runtime
    /// holds them (exact when the edges are f32, as they are under [`EdgeRule::OnnxRuntime`]).
    pub fn onnxruntime_percentile_range(&self, p: f64) -> Option<(f32, f32)> {
        let edge = self.percentile_edge(p)? as f32;
        let (min, max) = self.raw_range?;
        let lo = if -edge < min { min } else { -edge };
        let hi = if edge > max { max } else { edge };
        Some((lo, hi))
    }

    /// NVIDIA's percentile amax: the edge as an f32 (`torch.tensor(edge.item())`).
    pub fn tensorrt_percentile_amax(&self, p: f64) -> Option<f32> {
        // f64 → f32 rounds to nearest even, as torch.tensor(float) does.
        self.percentile_edge(p).map(|e| e as f32)
    }

    /// NVIDIA's entropy amax (`_compute_amax_entropy`, stride 1, start bin 2^(bits−1) = 128 for
    /// 8 bits): `edges[i*]` for the candidate i* minimising KL on this histogram, as an f32.
    pub fn tensorrt_entropy_amax(&self, bits: u8) -> Option<f32> {
        let result = entropy_from_histogram(&self.counts, 1.0, bits);
        // The candidates are i = start..=n, so start = n + 1 - len.
        let start = (self.counts.len() + 1).checked_sub(result.kl.len())?;
        if result.kl.is_empty() {
            return None;
        }
        self.edges.get(start + result.best).map(|&e| e as f32)
    }
}

/// numpy.histogram(values, bins=edges) for arbitrary increasing edges: bin i holds
/// `edges[i] <= x < edges[i + 1]`, the last bin also `x == edges[n]`; values outside (and
/// non-finite ones) are returned as the dropped count. Integer counts: any thread count.
fn count_into(
    values: &[f32],
    edges: &[f64],
    cancel: &Cancel,
) -> Result<(Vec<u64>, u64), Cancelled> {
    let bins = edges.len().saturating_sub(1);
    let (Some(&first), Some(&last)) = (edges.first(), edges.last()) else {
        return Ok((Vec::new(), values.len() as u64));
    };
    values
        .par_chunks(CHUNK_LEN)
        .map(|chunk| {
            cancel.check()?;
            let mut counts = vec![0u64; bins];
            let mut dropped = 0u64;
            for &v in chunk {
                let x = f64::from(v);
                // NaN is in no range and is dropped with the out-of-range values.
                if !(first..=last).contains(&x) {
                    dropped += 1;
                    continue;
                }
                let bin = edges.partition_point(|&e| e <= x).saturating_sub(1);
                match counts.get_mut(bin.min(bins.saturating_sub(1))) {
                    Some(c) => *c += 1,
                    None => dropped += 1,
                }
            }
            Ok((counts, dropped))
        })
        .try_reduce(
            || (vec![0u64; bins], 0),
            |(mut a, da), (b, db)| {
                for (x, y) in a.iter_mut().zip(&b) {
                    *x += y;
                }
                Ok((a, da + db))
            },
        )
}

/// Settings of batch calibration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BatchOptions {
    /// p of the histogram percentile thresholds, in (0, 100] (NVIDIA's default 99.99; ONNX
    /// Runtime's is 99.999).
    pub percentile: f64,
    /// ONNX Runtime's `averaging_constant` for the moving-average min-max, in [0, 1].
    pub averaging_constant: f32,
    /// Bins of the first batch's histogram (2048 in both libraries).
    pub num_bins: usize,
    /// Code bits for the entropy threshold (8: 128 quantized bins).
    pub bits: u8,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            percentile: 99.99,
            averaging_constant: 0.01,
            num_bins: 2048,
            bits: 8,
        }
    }
}

impl BatchOptions {
    fn validate(&self) -> Result<(), BatchError> {
        if !(self.percentile > 0.0 && self.percentile <= 100.0) {
            return Err(BatchError::Options(format!(
                "percentile must be in (0, 100], got {}",
                self.percentile
            )));
        }
        if !(0.0..=1.0).contains(&self.averaging_constant) {
            return Err(BatchError::Options(format!(
                "averaging constant must be in [0, 1], got {}",
                self.averaging_constant
            )));
        }
        if self.num_bins == 0 || self.num_bins > MAX_BINS {
            return Err(BatchError::Options(format!(
                "histogram bins must be 1..={MAX_BINS}, got {}",
                self.num_bins
            )));
        }
        if !(2..=16).contains(&self.bits) {
            return Err(BatchError::Options(format!(
                "bits must be 2..=16, got {}",
                self.bits
            )));
        }
        Ok(())
    }
}

/// The shape of an accumulated histogram after a batch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HistogramShape {
    /// Number of bins.
    pub bins: usize,
    /// The first edge (min |x| of the first batch).
    pub first_edge: f64,
    /// The last edge.
    pub last_edge: f64,
    /// Values counted so far.
    pub counted: u64,
    /// Finite values never counted so far (below the first edge).
    pub dropped: u64,
}

impl HistogramShape {
    fn of(h: &AbsHistogram) -> Option<Self> {
        Some(Self {
            bins: h.counts.len(),
            first_edge: *h.edges.first()?,
            last_edge: *h.edges.last()?,
            counted: h.counts.iter().sum(),
            dropped: h.dropped,
        })
    }
}

/// Every threshold after one batch (each `None` until a batch with a finite value arrived).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchStep {
    /// Position of the batch (0-based).
    pub batch: usize,
    /// Rows in this batch.
    pub rows: usize,
    /// Finite values in this batch.
    pub finite: u64,
    /// This batch's own finite (min, max).
    pub batch_range: Option<(f32, f32)>,
    /// ONNX Runtime MinMaxCalibrater: the running (min, max).
    pub minmax: Option<(f32, f32)>,
    /// ONNX Runtime MinMaxCalibrater, moving_average: the averaged (min, max).
    pub moving_average: Option<(f32, f32)>,
    /// ONNX Runtime MinMaxCalibrater, moving_average and symmetric: the averaged absmax.
    pub moving_average_absmax: Option<f32>,
    /// ONNX Runtime's accumulated histogram.
    pub histogram_onnxruntime: Option<HistogramShape>,
    /// NVIDIA's accumulated histogram.
    pub histogram_tensorrt: Option<HistogramShape>,
    /// ONNX Runtime PercentileCalibrater (symmetric): the clamped (lo, hi).
    pub percentile_onnxruntime: Option<(f32, f32)>,
    /// NVIDIA HistogramCalibrator percentile amax.
    pub percentile_tensorrt: Option<f32>,
    /// NVIDIA HistogramCalibrator entropy (KL) amax.
    pub entropy_tensorrt: Option<f32>,
}

/// Min and max of each feature over every batch (NaN where a feature had no finite value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelRanges {
    /// Per-feature minimum.
    pub min: Vec<f32>,
    /// Per-feature maximum.
    pub max: Vec<f32>,
}

impl ChannelRanges {
    /// max(|min|, |max|) per feature (NaN where there was no finite value).
    pub fn absmax(&self) -> Vec<f32> {
        self.min
            .iter()
            .zip(&self.max)
            .map(|(&lo, &hi)| lo.abs().max(hi.abs()))
            .collect()
    }
}

/// The whole result: options, one step per batch, and the per-channel ranges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchCalibration {
    /// Features per row (the last axis).
    pub features: usize,
    /// The settings used.
    pub options: BatchOptions,
    /// The thresholds after each batch, in order.
    pub steps: Vec<BatchStep>,
    /// Per-feature ranges over all batches.
    pub per_channel: ChannelRanges,
}

/// Calibration fed one batch at a time (the app shows each step as it lands).
#[derive(Debug, Clone)]
pub struct BatchCalibrator {
    features: usize,
    options: BatchOptions,
    minmax: RunningMinMax,
    moving: RunningMinMax,
    moving_absmax: RunningMinMax,
    onnxruntime: AbsHistogram,
    tensorrt: AbsHistogram,
    channel_min: Vec<f32>,
    channel_max: Vec<f32>,
    steps: Vec<BatchStep>,
}

impl BatchCalibrator {
    /// A calibrator for rows of `features` values.
    pub fn new(features: usize, options: BatchOptions) -> Result<Self, BatchError> {
        options.validate()?;
        if features == 0 {
            return Err(BatchError::ZeroFeatures);
        }
        Ok(Self {
            features,
            options,
            minmax: RunningMinMax::plain(),
            moving: RunningMinMax::moving_average(options.averaging_constant),
            moving_absmax: RunningMinMax::moving_average(options.averaging_constant),
            onnxruntime: AbsHistogram::new(EdgeRule::OnnxRuntime, options.num_bins),
            tensorrt: AbsHistogram::new(EdgeRule::TensorRt, options.num_bins),
            channel_min: vec![f32::INFINITY; features],
            channel_max: vec![f32::NEG_INFINITY; features],
            steps: Vec::new(),
        })
    }

    /// Adds the next batch (row-major `[rows, features]`) and returns the thresholds after it.
    pub fn add_batch(&mut self, values: &[f32], cancel: &Cancel) -> Result<BatchStep, BatchError> {
        let batch = self.steps.len();
        if !values.len().is_multiple_of(self.features) {
            return Err(BatchError::Ragged {
                batch,
                len: values.len(),
                features: self.features,
            });
        }
        let batch_range = stats::finite_min_max(values, cancel)?;
        if let Some(range) = batch_range {
            self.minmax.add(range);
            self.moving.add(range);
            let absmax = range.0.abs().max(range.1.abs());
            self.moving_absmax.add((-absmax, absmax));
        }
        self.onnxruntime.add_batch(values, cancel)?;
        self.tensorrt.add_batch(values, cancel)?;
        for row in values.chunks_exact(self.features) {
            let lanes = self.channel_min.iter_mut().zip(self.channel_max.iter_mut());
            for ((lo, hi), &v) in lanes.zip(row) {
                if v.is_finite() {
                    *lo = lo.min(v);
                    *hi = hi.max(v);
                }
            }
        }
        let p = self.options.percentile;
        let step = BatchStep {
            batch,
            rows: values.len() / self.features,
            finite: values.iter().filter(|v| v.is_finite()).count() as u64,
            batch_range,
            minmax: self.minmax.range,
            moving_average: self.moving.range,
            moving_average_absmax: self.moving_absmax.range.map(|r| r.1),
            histogram_onnxruntime: HistogramShape::of(&self.onnxruntime),
            histogram_tensorrt: HistogramShape::of(&self.tensorrt),
            percentile_onnxruntime: self.onnxruntime.onnxruntime_percentile_range(p),
            percentile_tensorrt: self.tensorrt.tensorrt_percentile_amax(p),
            entropy_tensorrt: self.tensorrt.tensorrt_entropy_amax(self.options.bits),
        };
        self.steps.push(step.clone());
        Ok(step)
    }

    /// The thresholds after each batch so far.
    pub fn steps(&self) -> &[BatchStep] {
        &self.steps
    }

    /// The accumulated histogram under one library's edge rule (to draw it).
    pub fn histogram(&self, rule: EdgeRule) -> &AbsHistogram {
        match rule {
            EdgeRule::OnnxRuntime => &self.onnxruntime,
            EdgeRule::TensorRt => &self.tensorrt,
        }
    }

    /// Per-feature (min, max) over the batches so far (NaN where nothing finite was seen).
    pub fn channel_ranges(&self) -> ChannelRanges {
        let unseen = |v: f32| if v.is_finite() { v } else { f32::NAN };
        ChannelRanges {
            min: self.channel_min.iter().map(|&v| unseen(v)).collect(),
            max: self.channel_max.iter().map(|&v| unseen(v)).collect(),
        }
    }

    /// The result so far.
    pub fn finish(&self) -> BatchCalibration {
        BatchCalibration {
            features: self.features,
            options: self.options,
            steps: self.steps.clone(),
            per_channel: self.channel_ranges(),
        }
    }
}

/// Calibrates over `batches` (each row-major `[rows, features]`) in order.
pub fn calibrate_batches(
    batches: &[&[f32]],
    features: usize,
    options: BatchOptions,
    cancel: &Cancel,
) -> Result<BatchCalibration, BatchError> {
    let mut calibrator = BatchCalibrator::new(features, options)?;
    for batch in batches {
        calibrator.add_batch(batch, cancel)?;
    }
    Ok(calibrator.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_order_sorts_by_number_and_rejects_other_members() {
        let names = ["batch_10", "batch_2", "batch_01"];
        assert_eq!(batch_order(&names), Ok(vec![2, 1, 0]));
        assert_eq!(batch_order(&[]), Err(BatchError::NoBatches));
        assert_eq!(
            batch_order(&["batch_00", "weights"]),
            Err(BatchError::UnexpectedMember("weights".into()))
        );
        assert_eq!(
            batch_order(&["batch_", "batch_00"]),
            Err(BatchError::UnexpectedMember("batch_".into()))
        );
        assert_eq!(
            batch_order(&["batch_1", "batch_01"]),
            Err(BatchError::DuplicateBatch(1))
        );
        assert_eq!(
            batch_order(&["batch_-1"]),
            Err(BatchError::UnexpectedMember("batch_-1".into()))
        );
    }

    #[test]
    fn running_min_max_merges_and_averages_in_f32() {
        let mut plain = RunningMinMax::plain();
        plain.add((-1.0, 2.0));
        plain.add((-0.5, 3.0));
        plain.add((-2.0, 1.0));
        assert_eq!(plain.range, Some((-2.0, 3.0)));
        // Moving average, c = 0.5 (exact in binary): -1 + 0.5(-0.5 + 1) = -0.75,
        // 2 + 0.5(3 - 2) = 2.5; then -0.75 + 0.5(-2 + 0.75) = -1.375, 2.5 + 0.5(1 - 2.5) = 1.75.
        let mut moving = RunningMinMax::moving_average(0.5);
        moving.add((-1.0, 2.0));
        moving.add((-0.5, 3.0));
        moving.add((-2.0, 1.0));
        assert_eq!(moving.range, Some((-1.375, 1.75)));
        // c = 0.01 rounds to the f32 0.00999999977648: 1 + c * (2 - 1) = 1.00999999 in f32.
        let mut ema = RunningMinMax::moving_average(0.01);
        ema.add((0.0, 1.0));
        ema.add((0.0, 2.0));
        assert_eq!(ema.range, Some((0.0, 1.0f32 + 0.01f32)));
        assert_eq!(ema.range.map(|r| r.1.to_bits()), Some(0x3F81_47AE));
    }

    #[test]
    fn histogram_grows_by_numpy_arange_and_drops_values_below_the_first_edge() {
        // Batch 0: |x| in [1, 5], 4 bins: f32 linspace edges [1, 2, 3, 4, 5].
        let mut h = AbsHistogram::new(EdgeRule::TensorRt, 4);
        h.add_batch(&[1.0, -2.5, 5.0, 3.0], &Cancel::never())
            .expect("finite");
        assert_eq!(h.edges, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(h.counts, vec![1, 1, 1, 1]);
        // Batch 1: max 7.5 > 5: np.arange(6, 8.5, 1) = [6, 7, 8]; 0.5 < 1 is dropped; 5 now
        // falls in [5, 6) and 7.5 in [7, 8].
        h.add_batch(&[0.5, 5.0, -7.5], &Cancel::never())
            .expect("finite");
        assert_eq!(h.edges, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        assert_eq!(h.counts, vec![1, 1, 1, 1, 1, 0, 1]);
        assert_eq!(h.dropped, 1);
        assert!(!h.edges_are_f32);
        assert_eq!(h.raw_range, Some((-7.5, 5.0)));
        // Percentile (numpy: cumsum(hist / 6) = [1/6, 1/3, 0.5, ..., 0.8333, 0.9999999999999999]):
        // 40% is first reached at index 2 (edge 3); 100% never is, so the index is past the
        // last bin, 7, and the edge is the last one, 8 (np.searchsorted gives the same).
        assert_eq!(h.percentile_edge(40.0), Some(3.0));
        assert_eq!(h.percentile_edge(100.0), Some(8.0));
        // ONNX Runtime's clamp: (-3, 3) stays inside the raw range [-7.5, 5]; (-8, 8) becomes
        // (-7.5, 5).
        assert_eq!(h.onnxruntime_percentile_range(40.0), Some((-3.0, 3.0)));
        assert_eq!(h.onnxruntime_percentile_range(100.0), Some((-7.5, 5.0)));
        assert_eq!(h.tensorrt_percentile_amax(100.0), Some(8.0));
    }

    #[test]
    fn onnxruntime_rounds_grown_edges_to_f32() {
        // First batch on [0.1, 0.3] with 2 bins: f32 edges; growth by width 0.1 in f32 gives
        // f64 arange values that ONNX Runtime casts back to f32 and NVIDIA keeps.
        let batch0 = [0.1f32, 0.3];
        let batch1 = [0.55f32];
        let mut ort = AbsHistogram::new(EdgeRule::OnnxRuntime, 2);
        let mut trt = AbsHistogram::new(EdgeRule::TensorRt, 2);
        for h in [&mut ort, &mut trt] {
            h.add_batch(&batch0, &Cancel::never()).expect("finite");
            h.add_batch(&batch1, &Cancel::never()).expect("finite");
        }
        assert!(ort.edges_are_f32 && !trt.edges_are_f32);
        assert_eq!(ort.edges.len(), trt.edges.len());
        for (a, b) in ort.edges.iter().zip(&trt.edges) {
            assert_eq!(*a, f64::from(*b as f32));
        }
        // Every value was counted (0.55 lies inside the grown range).
        assert_eq!(ort.counts.iter().sum::<u64>(), 3);
        assert_eq!(trt.counts.iter().sum::<u64>(), 3);
    }

    #[test]
    fn calibrator_reports_each_step_and_channel_ranges() {
        // Two features; batch 0 rows (1, -2), (3, 0.5); batch 1 rows (-4, 1), (NaN, 2).
        let b0 = [1.0f32, -2.0, 3.0, 0.5];
        let b1 = [-4.0f32, 1.0, f32::NAN, 2.0];
        let r = calibrate_batches(&[&b0, &b1], 2, BatchOptions::default(), &Cancel::never())
            .expect("valid");
        assert_eq!(r.steps.len(), 2);
        assert_eq!(r.steps[0].minmax, Some((-2.0, 3.0)));
        assert_eq!(r.steps[1].minmax, Some((-4.0, 3.0)));
        assert_eq!(r.steps[1].finite, 3);
        assert_eq!(r.steps[1].rows, 2);
        // EMA: -2 + 0.01(-4 + 2) and 3 + 0.01(2 - 3), in f32.
        let c = 0.01f32;
        assert_eq!(
            r.steps[1].moving_average,
            Some((-2.0 + c * (-4.0 + 2.0), 3.0 + c * (2.0 - 3.0)))
        );
        assert_eq!(
            r.steps[1].moving_average_absmax,
            Some(3.0 + c * (4.0 - 3.0))
        );
        assert_eq!(r.per_channel.min, vec![-4.0, -2.0]);
        assert_eq!(r.per_channel.max, vec![3.0, 2.0]);
        assert_eq!(r.per_channel.absmax(), vec![4.0, 2.0]);
        assert_eq!(
            calibrate_batches(&[&b0[..3]], 2, BatchOptions::default(), &Cancel::never()),
            Err(BatchError::Ragged {
                batch: 0,
                len: 3,
                features: 2
            })
        );
        let bad = BatchOptions {
            percentile: 0.0,
            ..BatchOptions::default()
        };
        assert!(matches!(
            BatchCalibrator::new(2, bad),
            Err(BatchError::Options(_))
        ));
        assert_eq!(
            BatchCalibrator::new(0, BatchOptions::default()).err(),
            Some(BatchError::ZeroFeatures)
        );
    }

    #[test]
    fn absurd_growth_is_refused() {
        let mut h = AbsHistogram::new(EdgeRule::TensorRt, 2048);
        h.add_batch(&[0.0, 1e-6], &Cancel::never()).expect("finite");
        assert!(matches!(
            h.add_batch(&[1e30], &Cancel::never()),
            Err(BatchError::TooManyBins { .. })
        ));
    }
}
