//! Quantizing a whole tensor: granularity layouts, per-group calibration, the outlier split and
//! the fused parallel quantize + dequantize + metrics pass (NUMERICS.md §3–§6).
//!
//! The fused pass walks fixed chunks of [`CHUNK`] elements (so sums do not depend on the thread
//! count), checks the cancel token between chunks, and inside a chunk processes runs of
//! elements that share one (S, z), with S, 1/S and z precomputed as f32. Codes and dequantized
//! values are only materialised when asked for.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::QuantError;
use super::calib::{self, EntropyResult, MseResult};
use super::config::{Calibration, Granularity, OutlierMode, QuantConfig, Scheme, element_count};
use super::kernel::{KernelParams, RHAZ, RHU, RNE, code_offset, rule_code};
use super::metrics::{LaneAcc, MetricAcc, Metrics, bits_per_weight};
use super::outliers::OutlierRule;
use super::params::{QuantParams, params_from_range};
use crate::cancel::Cancel;
use crate::stats;

/// Elements per parallel chunk and per cancellation check.
pub const CHUNK: usize = 1 << 16;

/// Which large outputs to materialise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Outputs {
    /// The integer codes (input shape).
    pub codes: bool,
    /// The dequantized values (input shape).
    pub dequantized: bool,
}

/// The short last group of each row under per-group granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailGroup {
    /// Elements in the tail group (cols % G).
    pub size: usize,
    /// Number of tail groups (one per row).
    pub count: usize,
}

/// What the outlier split did (all zero when the mode is `None`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OutlierReport {
    /// The mode in force.
    pub mode: OutlierMode,
    /// The threshold actually used: tau, or k · std (+inf when none applies).
    pub threshold: f64,
    /// What distances are measured from: 0 for an absolute tau, the mean for k · std.
    #[serde(default)]
    pub center: f64,
    /// Elements kept in FP16.
    pub count: u64,
    /// count / elements (0 for an empty tensor).
    pub fraction: f64,
    /// Last-axis columns kept in FP16 (columns mode).
    pub columns: u64,
    /// Metrics of the same settings without the split (None when the mode is `None`).
    pub without_split: Option<Metrics>,
    /// Effective bits per weight without the split.
    pub bits_per_weight_without_split: f64,
}

/// A calibration curve for plotting (per-tensor granularity only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CalibrationCurve {
    /// KL curves: one (symmetric) or positive then negative side (asymmetric).
    Entropy(Vec<EntropyResult>),
    /// The MSE calibrator's coarse scan.
    Mse(MseResult),
}

/// Everything one quantization run produced.
///
/// Equality compares every result field and ignores `calibration_ms` (a timing).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuantResult {
    /// The input shape.
    pub shape: Vec<usize>,
    /// Shape of `scales`/`zero_points` (NUMERICS.md §3): `[]` per tensor, `[dim_A]` per
    /// channel, `[leading dims..., ceil(cols / G)]` per group.
    pub scale_shape: Vec<usize>,
    /// One scale per group, row-major over `scale_shape`.
    pub scales: Vec<f32>,
    /// One zero point per group.
    pub zero_points: Vec<i32>,
    /// Calibrated lower clip bound per group (before extending to include 0).
    pub clip_min: Vec<f64>,
    /// Calibrated upper clip bound per group.
    pub clip_max: Vec<f64>,
    /// Smallest code.
    pub qmin: i32,
    /// Largest code.
    pub qmax: i32,
    /// Groups whose range was empty (the preset's degenerate rule applied).
    pub degenerate_groups: u64,
    /// The codes, when asked for (outliers kept in FP16 get code z).
    pub codes: Option<Vec<i32>>,
    /// The dequantized values, when asked for (outliers are their FP16 values).
    pub dequantized: Option<Vec<f32>>,
    /// Error metrics (with the outlier split, if any).
    pub metrics: Metrics,
    /// The outlier split.
    pub outliers: OutlierReport,
    /// Effective bits per weight, counting group parameters and FP16 outliers.
    pub bits_per_weight: f64,
    /// The short tail group, if the last axis is not a multiple of the group size.
    pub tail_group: Option<TailGroup>,
    /// The calibration curve, for per-tensor entropy or MSE calibration.
    pub curve: Option<CalibrationCurve>,
    /// Time spent choosing the clip ranges and parameters, in milliseconds (excluded from
    /// comparisons: it is a measurement, not a result). Wall time of the calibration step; in
    /// the one-pass per-row path (per-channel along a leading axis with minmax), where each
    /// row is calibrated just before it is quantized, the summed time of the rows' min/max and
    /// parameter steps over all threads.
    #[serde(default)]
    pub calibration_ms: f64,
}

impl QuantResult {
    /// A copy without the large outputs (codes, dequantized values): what reports carry.
    pub fn without_outputs(&self) -> Self {
        Self {
            codes: None,
            dequantized: None,
            shape: self.shape.clone(),
            scale_shape: self.scale_shape.clone(),
            scales: self.scales.clone(),
            zero_points: self.zero_points.clone(),
            clip_min: self.clip_min.clone(),
            clip_max: self.clip_max.clone(),
            curve: self.curve.clone(),
            ..*self
        }
    }
}

impl PartialEq for QuantResult {
    fn eq(&self, other: &Self) -> bool {
        // Destructured so that a new field cannot be forgotten here.
        let Self {
            shape,
            scale_shape,
            scales,
            zero_points,
            clip_min,
            clip_max,
            qmin,
            qmax,
            degenerate_groups,
            codes,
            dequantized,
            metrics,
            outliers,
            bits_per_weight,
            tail_group,
            curve,
            calibration_ms: _,
        } = self;
        *shape == other.shape
            && *scale_shape == other.scale_shape
            && *scales == other.scales
            && *zero_points == other.zero_points
            && *clip_min == other.clip_min
            && *clip_max == other.clip_max
            && *qmin == other.qmin
            && *qmax == other.qmax
            && *degenerate_groups == other.degenerate_groups
            && *codes == other.codes
            && *dequantized == other.dequantized
            && *metrics == other.metrics
            && *outliers == other.outliers
            && *bits_per_weight == other.bits_per_weight
            && *tail_group == other.tail_group
            && *curve == other.curve
    }
}

/// How elements map to groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tensor,
    /// One group per index of the axis: the tensor is [outer, dim, inner].
    Channel {
        outer: usize,
        dim: usize,
        inner: usize,
    },
    /// Groups of `size` along the last axis of length `cols`; `per_row` groups per row.
    Group {
        rows: usize,
        cols: usize,
        size: usize,
        per_row: usize,
    },
}

/// Which (S, z) group each element of a tensor uses: the core's own layout, public so that
/// views (heatmaps, "explain this number") map elements to groups exactly as the kernels do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLayout(Layout);

impl GroupLayout {
    /// The layout of a tensor of `shape` under granularity `g`.
    pub fn new(shape: &[usize], g: Granularity) -> Result<Self, QuantError> {
        Layout::new(shape, g).map(Self)
    }

    /// The group of element `flat` (row-major): 0 per tensor; the index along the axis per
    /// channel; the row-major index into `[rows, ceil(cols / G)]` per group.
    pub fn group_of(&self, flat: usize) -> usize {
        match self.0.kind {
            Kind::Tensor => 0,
            Kind::Channel { dim, inner, .. } => (flat / inner.max(1)) % dim.max(1),
            Kind::Group {
                cols,
                size,
                per_row,
                ..
            } => (flat / cols.max(1)) * per_row + (flat % cols.max(1)) / size.max(1),
        }
    }

    /// The number of groups.
    pub fn groups(&self) -> usize {
        self.0.groups()
    }

    /// Whether one (S, z) covers the whole tensor.
    pub fn is_per_tensor(&self) -> bool {
        self.0.kind == Kind::Tensor
    }
}

/// The element-to-group map of one tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Layout {
    n: usize,
    cols: usize,
    kind: Kind,
    scale_shape: Vec<usize>,
}

impl Layout {
    fn new(shape: &[usize], g: Granularity) -> Result<Self, QuantError> {
        let n = element_count(shape)?;
        let cols = shape.last().copied().unwrap_or(1);
        let (kind, scale_shape) = match g {
            Granularity::PerTensor => (Kind::Tensor, Vec::new()),
            Granularity::PerChannel { axis } => {
                let dim = *shape.get(axis).ok_or(QuantError::Axis {
                    axis,
                    ndim: shape.len(),
                })?;
                let outer = element_count(shape.get(..axis).unwrap_or(&[]))?;
                let inner = element_count(shape.get(axis + 1..).unwrap_or(&[]))?;
                (Kind::Channel { outer, dim, inner }, vec![dim])
            }
            Granularity::PerGroup { size } => {
                if size == 0 {
                    return Err(QuantError::GroupSize);
                }
                let rows = match n.checked_div(cols) {
                    Some(r) => r,
                    None => {
                        element_count(shape.get(..shape.len().saturating_sub(1)).unwrap_or(&[]))?
                    }
                };
                let per_row = cols.div_ceil(size);
                let mut s: Vec<usize> = shape
                    .get(..shape.len().saturating_sub(1))
                    .unwrap_or(&[])
                    .to_vec();
                s.push(per_row);
                (
                    Kind::Group {
                        rows,
                        cols,
                        size,
                        per_row,
                    },
                    s,
                )
            }
        };
        Ok(Self {
            n,
            cols: cols.max(1),
            kind,
            scale_shape,
        })
    }

    /// Elements per channel row when channels are contiguous rows (per-channel, outer = 1).
    fn cols_of_rows(&self) -> usize {
        match self.kind {
            Kind::Channel { inner, .. } => inner,
            _ => self.n,
        }
    }

    fn groups(&self) -> usize {
        match self.kind {
            Kind::Tensor => 1,
            Kind::Channel { dim, .. } => dim,
            Kind::Group { rows, per_row, .. } => rows * per_row,
        }
    }

    fn tail(&self) -> Option<TailGroup> {
        match self.kind {
            Kind::Group {
                rows, cols, size, ..
            } if cols % size != 0 && rows > 0 => Some(TailGroup {
                size: cols % size,
                count: rows,
            }),
            _ => None,
        }
    }

    /// The values of group `g` (borrowed when contiguous, gathered otherwise).
    fn group_values<'a>(&self, values: &'a [f32], g: usize) -> Cow<'a, [f32]> {
        match self.kind {
            Kind::Tensor => Cow::Borrowed(values),
            Kind::Channel { outer, dim, inner } => {
                if outer == 1 {
                    Cow::Borrowed(values.get(g * inner..(g + 1) * inner).unwrap_or(&[]))
                } else {
                    let mut v = Vec::with_capacity(outer * inner);
                    for o in 0..outer {
                        let s = (o * dim + g) * inner;
                        v.extend_from_slice(values.get(s..s + inner).unwrap_or(&[]));
                    }
                    Cow::Owned(v)
                }
            }
            Kind::Group {
                cols,
                size,
                per_row,
                ..
            } => {
                let (r, k) = (g / per_row.max(1), g % per_row.max(1));
                let s = r * cols + k * size;
                let e = r * cols + ((k + 1) * size).min(cols);
                Cow::Borrowed(values.get(s..e).unwrap_or(&[]))
            }
        }
    }

    /// Calls `f(start, end, seg)` for the runs of [start, end) that share parameters.
    fn for_each_run(&self, start: usize, end: usize, mut f: impl FnMut(usize, usize, Run)) {
        let mut i = start;
        while i < end {
            let (stop, run) = match self.kind {
                Kind::Tensor => (end, Run::Same(0)),
                Kind::Channel { dim, inner: 1, .. } => {
                    let a = i % dim.max(1);
                    ((i + dim - a).min(end), Run::Consecutive(a))
                }
                Kind::Channel { dim, inner, .. } => {
                    let b = i / inner;
                    (((b + 1) * inner).min(end), Run::Same(b % dim.max(1)))
                }
                Kind::Group {
                    cols,
                    size,
                    per_row,
                    ..
                } => {
                    let (r, c) = (i / cols, i % cols);
                    let k = c / size;
                    (
                        (r * cols + ((k + 1) * size).min(cols)).min(end),
                        Run::Same(r * per_row + k),
                    )
                }
            };
            f(i, stop.max(i + 1).min(end), run);
            i = stop.max(i + 1);
        }
    }
}

/// Which parameters a run uses.
#[derive(Debug, Clone, Copy)]
enum Run {
    /// Every element uses group `g`.
    Same(usize),
    /// Element k of the run uses group `g + k`.
    Consecutive(usize),
}

/// Which elements stay FP16.
#[derive(Debug, Clone, Copy)]
enum Split<'a> {
    None,
    Elements(OutlierRule),
    Columns(&'a [bool], usize),
}

impl Split<'_> {
    #[inline(always)]
    fn is_outlier(&self, i: usize, x: f32) -> bool {
        match *self {
            Split::None => false,
            Split::Elements(rule) => rule.is_outlier(x),
            Split::Columns(mask, cols) => mask.get(i % cols.max(1)).copied().unwrap_or(false),
        }
    }
}

/// Elements per inner block of [`run_same`]: the block's x_hat and clamp flags live on the
/// stack (in L1) between the quantize loop and the metric loop.
const BLOCK: usize = 512;

/// Quantizes one run of elements with fixed parameters (the hot loop).
///
/// Works in blocks of [`BLOCK`]: one branch-free loop computes the codes (relative to z), x_hat
/// and the clamp flags; optional loops store codes and dequantized values; then the metric
/// lanes take the block. Every output is the same whichever outputs are asked for.
#[inline(always)]
fn run_same<const R: u8, const RECIP: bool>(
    x: &[f32],
    k: &KernelParams,
    mut codes: Option<&mut [i32]>,
    mut deq: Option<&mut [f32]>,
    lanes: &mut LaneAcc,
) {
    let mut off = [0f32; BLOCK];
    let mut xh = [0f32; BLOCK];
    let mut clip = [false; BLOCK];
    for (b, xb) in x.chunks(BLOCK).enumerate() {
        let n = xb.len();
        let (Some(off), Some(xh), Some(clip)) =
            (off.get_mut(..n), xh.get_mut(..n), clip.get_mut(..n))
        else {
            continue;
        };
        for (((&v, o), h), c) in xb
            .iter()
            .zip(off.iter_mut())
            .zip(xh.iter_mut())
            .zip(clip.iter_mut())
        {
            let (q, cl) = code_offset::<R, RECIP>(v, k);
            *o = q;
            *h = k.scale * q;
            *c = cl;
        }
        let s = b * BLOCK;
        if let Some(cs) = codes.as_deref_mut().and_then(|c| c.get_mut(s..s + n)) {
            for (c, &o) in cs.iter_mut().zip(off.iter()) {
                // An exact integer within the code range.
                *c = (o + k.zero) as i32;
            }
        }
        if let Some(ds) = deq.as_deref_mut().and_then(|d| d.get_mut(s..s + n)) {
            for ((d, &h), &v) in ds.iter_mut().zip(xh.iter()).zip(xb) {
                *d = if v.is_nan() { f32::NAN } else { h };
            }
        }
        lanes.push_block(xb, xh, clip);
    }
}

/// Quantizes one element at flat index `i` with parameters `k` and the outlier split.
#[inline(always)]
fn one<const R: u8, const RECIP: bool>(
    i: usize,
    v: f32,
    k: &KernelParams,
    split: &Split<'_>,
) -> (i32, f32, bool) {
    if split.is_outlier(i, v) && v.is_finite() {
        // Kept in FP16: its error is the real f16 rounding; its code slot holds z.
        return (k.zero as i32, half::f16::from_f32(v).to_f32(), false);
    }
    let (off, clip) = code_offset::<R, RECIP>(v, k);
    let xh = if v.is_nan() { f32::NAN } else { k.scale * off };
    // An exact integer within the code range.
    ((off + k.zero) as i32, xh, clip)
}

/// The fused pass over one chunk starting at flat index `base`.
fn chunk_pass<const R: u8, const RECIP: bool>(
    layout: &Layout,
    base: usize,
    x: &[f32],
    kp: &[KernelParams],
    split: &Split<'_>,
    mut codes: Option<&mut [i32]>,
    mut deq: Option<&mut [f32]>,
) -> MetricAcc {
    let mut acc = MetricAcc::default();
    let mut lanes = LaneAcc::default();
    let fast = matches!(split, Split::None);
    layout.for_each_run(base, base + x.len(), |s, e, run| {
        let (ls, le) = (s - base, e - base);
        let xs = x.get(ls..le).unwrap_or(&[]);
        let cs = codes.as_deref_mut().and_then(|c| c.get_mut(ls..le));
        let ds = deq.as_deref_mut().and_then(|d| d.get_mut(ls..le));
        match run {
            Run::Same(g) if fast => {
                if let Some(k) = kp.get(g) {
                    run_best::<R, RECIP>(xs, k, cs, ds, &mut lanes);
                }
            }
            _ => {
                let (mut cs, mut ds) = (cs, ds);
                for (j, &v) in xs.iter().enumerate() {
                    let g = match run {
                        Run::Same(g) => g,
                        Run::Consecutive(g) => g + j,
                    };
                    let Some(k) = kp.get(g) else { continue };
                    let (q, xh, clip) = one::<R, RECIP>(s + j, v, k, split);
                    if let Some(c) = cs.as_deref_mut().and_then(|c| c.get_mut(j)) {
                        *c = q;
                    }
                    if let Some(d) = ds.as_deref_mut().and_then(|d| d.get_mut(j)) {
                        *d = xh;
                    }
                    acc.push(v, xh, clip);
                }
            }
        }
    });
    lanes.flush_into(&mut acc);
    acc
}

/// [`run_same`], through the AVX2 kernel when no outputs are stored and the CPU has AVX2
/// (the same bits either way).
#[inline(always)]
fn run_best<const R: u8, const RECIP: bool>(
    x: &[f32],
    k: &KernelParams,
    codes: Option<&mut [i32]>,
    deq: Option<&mut [f32]>,
    lanes: &mut LaneAcc,
) {
    #[cfg(target_arch = "x86_64")]
    if codes.is_none() && deq.is_none() && has_avx2() {
        // SAFETY: the CPU supports AVX2, checked at run time just above.
        unsafe { avx2::measure_run::<R, RECIP>(x, k, lanes) };
        return;
    }
    run_same::<R, RECIP>(x, k, codes, deq, lanes);
}

/// Whether this CPU runs AVX2 code (std caches the answer).
#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// The fused pass's metric sums and optional codes and dequantized values.
type Fused = (MetricAcc, Option<Vec<i32>>, Option<Vec<f32>>);

/// Per-group clip ranges and the optional calibration curve.
type Calibrated = (Vec<(f64, f64)>, Option<CalibrationCurve>);

/// Runs the fused pass over the whole tensor in fixed chunks, in parallel.
fn fused<const R: u8, const RECIP: bool>(
    values: &[f32],
    layout: &Layout,
    kp: &[KernelParams],
    split: &Split<'_>,
    want: Outputs,
    cancel: &Cancel,
) -> Result<Fused, QuantError> {
    let n = values.len();
    let mut codes = want.codes.then(|| vec![0i32; n]);
    let mut deq = want.dequantized.then(|| vec![0f32; n]);
    // One optional output chunk per input chunk, zipped so each task owns its slices.
    let code_chunks: Vec<Option<&mut [i32]>> = match codes.as_deref_mut() {
        Some(c) => c.chunks_mut(CHUNK).map(Some).collect(),
        None => (0..n.div_ceil(CHUNK)).map(|_| None).collect(),
    };
    let deq_chunks: Vec<Option<&mut [f32]>> = match deq.as_deref_mut() {
        Some(d) => d.chunks_mut(CHUNK).map(Some).collect(),
        None => (0..n.div_ceil(CHUNK)).map(|_| None).collect(),
    };
    // usize fits in u64.
    cancel.add_total(n as u64);
    let parts: Vec<MetricAcc> = values
        .par_chunks(CHUNK)
        .zip(code_chunks)
        .zip(deq_chunks)
        .enumerate()
        .map(|(ci, ((x, c), d))| {
            cancel.check()?;
            let acc = chunk_pass::<R, RECIP>(layout, ci * CHUNK, x, kp, split, c, d);
            cancel.add_done(x.len() as u64);
            Ok(acc)
        })
        .collect::<Result<_, QuantError>>()?;
    let mut total = MetricAcc::default();
    for p in &parts {
        total.merge(p);
    }
    Ok((total, codes, deq))
}

/// Dispatches [`fused`] on the tie rule and the divide/reciprocal choice.
fn fused_dispatch(
    values: &[f32],
    layout: &Layout,
    kp: &[KernelParams],
    split: &Split<'_>,
    want: Outputs,
    cfg: &QuantConfig,
    cancel: &Cancel,
) -> Result<Fused, QuantError> {
    let conv = cfg.convention();
    match (rule_code(conv.rounding), conv.reciprocal) {
        (RNE, false) => fused::<RNE, false>(values, layout, kp, split, want, cancel),
        (RNE, true) => fused::<RNE, true>(values, layout, kp, split, want, cancel),
        (RHAZ, false) => fused::<RHAZ, false>(values, layout, kp, split, want, cancel),
        (RHAZ, true) => fused::<RHAZ, true>(values, layout, kp, split, want, cancel),
        (_, false) => fused::<RHU, false>(values, layout, kp, split, want, cancel),
        (_, true) => fused::<RHU, true>(values, layout, kp, split, want, cancel),
    }
}

/// Per-row results of [`fused_rows`]: the clip range and parameters of each row, the metric
/// sums, the outputs and the summed time spent on the rows' min/max and parameters.
type FusedRows = (Vec<((f64, f64), QuantParams)>, Fused, f64);

/// Rows shorter than this take the two-pass path (calibrate, then quantize).
const FUSED_ROW_MIN: usize = 64;

/// Per-channel along a leading axis (contiguous rows of `inner` elements) with minmax
/// calibration, in ONE pass over memory: each row's finite min/max, then its (S, z), then the
/// row is quantized, dequantized and measured while it is still in cache.
///
/// Tasks take whole rows (about [`CHUNK`] elements each), so the work split, and therefore
/// every sum, depends only on the shape, never on the thread count. Each row's metric lanes
/// are flushed in row order.
fn fused_rows<const R: u8, const RECIP: bool>(
    values: &[f32],
    inner: usize,
    cfg: &QuantConfig,
    want: Outputs,
    cancel: &Cancel,
) -> Result<FusedRows, QuantError> {
    let n = values.len();
    let inner = inner.max(1);
    let per_task = inner * (CHUNK / inner).max(1);
    let tasks = n.div_ceil(per_task);
    let mut codes = want.codes.then(|| vec![0i32; n]);
    let mut deq = want.dequantized.then(|| vec![0f32; n]);
    let code_chunks: Vec<Option<&mut [i32]>> = match codes.as_deref_mut() {
        Some(c) => c.chunks_mut(per_task).map(Some).collect(),
        None => (0..tasks).map(|_| None).collect(),
    };
    let deq_chunks: Vec<Option<&mut [f32]>> = match deq.as_deref_mut() {
        Some(d) => d.chunks_mut(per_task).map(Some).collect(),
        None => (0..tasks).map(|_| None).collect(),
    };
    // usize fits in u64.
    cancel.add_total(n as u64);
    type Part = (Vec<((f64, f64), QuantParams)>, MetricAcc, Duration);
    let parts: Vec<Part> = values
        .par_chunks(per_task)
        .zip(code_chunks)
        .zip(deq_chunks)
        .map(|((x, mut c), mut d)| {
            cancel.check()?;
            let mut acc = MetricAcc::default();
            let mut rows = Vec::with_capacity(x.len() / inner + 1);
            let mut spent = Duration::ZERO;
            for (r, row) in x.chunks(inner).enumerate() {
                let t = Instant::now();
                let range = stats::row_minmax(row)
                    .map_or((0.0, 0.0), |(a, b)| (f64::from(a), f64::from(b)));
                let p = params_from_range(range.0, range.1, cfg);
                spent += t.elapsed();
                let k = KernelParams::new(&p, cfg);
                let (s, e) = (r * inner, r * inner + row.len());
                let cs = c.as_deref_mut().and_then(|c| c.get_mut(s..e));
                let ds = d.as_deref_mut().and_then(|d| d.get_mut(s..e));
                let mut lanes = LaneAcc::default();
                run_best::<R, RECIP>(row, &k, cs, ds, &mut lanes);
                lanes.flush_into(&mut acc);
                rows.push((range, p));
            }
            cancel.add_done(x.len() as u64);
            Ok((rows, acc, spent))
        })
        .collect::<Result<_, QuantError>>()?;
    let mut total = MetricAcc::default();
    let mut rows = Vec::with_capacity(n / inner + 1);
    let mut spent = Duration::ZERO;
    for (r, a, t) in parts {
        total.merge(&a);
        rows.extend(r);
        spent += t;
    }
    Ok((rows, (total, codes, deq), spent.as_secs_f64() * 1e3))
}

/// Dispatches [`fused_rows`] on the tie rule and the divide/reciprocal choice.
fn fused_rows_dispatch(
    values: &[f32],
    inner: usize,
    cfg: &QuantConfig,
    want: Outputs,
    cancel: &Cancel,
) -> Result<FusedRows, QuantError> {
    let conv = cfg.convention();
    match (rule_code(conv.rounding), conv.reciprocal) {
        (RNE, false) => fused_rows::<RNE, false>(values, inner, cfg, want, cancel),
        (RNE, true) => fused_rows::<RNE, true>(values, inner, cfg, want, cancel),
        (RHAZ, false) => fused_rows::<RHAZ, false>(values, inner, cfg, want, cancel),
        (RHAZ, true) => fused_rows::<RHAZ, true>(values, inner, cfg, want, cancel),
        (_, false) => fused_rows::<RHU, false>(values, inner, cfg, want, cancel),
        (_, true) => fused_rows::<RHU, true>(values, inner, cfg, want, cancel),
    }
}

/// Per-group clip ranges (lo, hi) and, for one group, the calibration curve.
fn calibrate(
    values: &[f32],
    layout: &Layout,
    cfg: &QuantConfig,
    cancel: &Cancel,
) -> Result<Calibrated, QuantError> {
    let groups = layout.groups();
    // Fast paths for minmax: one parallel pass.
    if cfg.calibration == Calibration::MinMax {
        if layout.kind == Kind::Tensor {
            let r = stats::finite_min_max(values, cancel)?;
            return Ok((
                vec![r.map_or((0.0, 0.0), |(a, b)| (f64::from(a), f64::from(b)))],
                None,
            ));
        }
        if let Kind::Channel { outer, dim, inner } = layout.kind
            && outer > 1
        {
            return Ok((strided_minmax(values, dim, inner, cancel)?, None));
        }
    }
    if groups == 1 {
        let (range, curve) = calibrate_one(values, cfg, cancel, true)?;
        return Ok((vec![range], curve));
    }
    let ranges = (0..groups)
        .into_par_iter()
        .map(|g| {
            cancel.check()?;
            let v = layout.group_values(values, g);
            Ok(calibrate_one(&v, cfg, cancel, false)?.0)
        })
        .collect::<Result<Vec<_>, QuantError>>()?;
    Ok((ranges, None))
}

/// Per-channel finite min/max when the channel is not contiguous, in one parallel pass.
fn strided_minmax(
    values: &[f32],
    dim: usize,
    inner: usize,
    cancel: &Cancel,
) -> Result<Vec<(f64, f64)>, QuantError> {
    let block = (dim * inner).max(1);
    let init = || vec![(f32::INFINITY, f32::NEG_INFINITY); dim];
    let rows_per_task = (CHUNK / block).max(1);
    let parts: Vec<Vec<(f32, f32)>> = values
        .par_chunks(block * rows_per_task)
        .map(|chunk| {
            cancel.check()?;
            let mut acc = init();
            for blk in chunk.chunks(block) {
                for (a, run) in blk.chunks(inner.max(1)).enumerate() {
                    if let Some(slot) = acc.get_mut(a) {
                        for &x in run {
                            if x.is_finite() {
                                slot.0 = slot.0.min(x);
                                slot.1 = slot.1.max(x);
                            }
                        }
                    }
                }
            }
            Ok(acc)
        })
        .collect::<Result<_, QuantError>>()?;
    let mut total = init();
    for p in &parts {
        for (t, q) in total.iter_mut().zip(p) {
            t.0 = t.0.min(q.0);
            t.1 = t.1.max(q.1);
        }
    }
    Ok(total
        .into_iter()
        .map(|(a, b)| {
            if a <= b {
                (f64::from(a), f64::from(b))
            } else {
                (0.0, 0.0)
            }
        })
        .collect())
}

/// The clip range of one group under `cfg.calibration` ((0, 0) when nothing is finite).
fn calibrate_one(
    values: &[f32],
    cfg: &QuantConfig,
    cancel: &Cancel,
    keep_curve: bool,
) -> Result<((f64, f64), Option<CalibrationCurve>), QuantError> {
    let none = (0.0, 0.0);
    Ok(match cfg.calibration {
        Calibration::MinMax => (
            calib::minmax_range(values).map_or(none, |(a, b)| (f64::from(a), f64::from(b))),
            None,
        ),
        Calibration::Percentile(p) => (
            calib::percentile_range(values, p, cfg.scheme).unwrap_or(none),
            None,
        ),
        Calibration::Entropy => {
            let (range, curves) = calib::entropy_range(values, cfg.bits, cfg.scheme, cancel)?;
            (
                range,
                keep_curve.then_some(CalibrationCurve::Entropy(curves)),
            )
        }
        Calibration::Mse => match calib::mse_range(values, cfg, cancel)? {
            Some(r) => ((r.lo, r.hi), keep_curve.then_some(CalibrationCurve::Mse(r))),
            None => (none, None),
        },
        Calibration::Manual { lo, hi } => ((f64::from(lo), f64::from(hi)), None),
    })
}

/// Bits of one (S, z) pair: an f16 scale, plus a 16-bit zero point when asymmetric.
fn param_bits(cfg: &QuantConfig) -> u32 {
    match cfg.scheme {
        Scheme::Symmetric => 16,
        Scheme::Asymmetric => 32,
    }
}

thread_local! {
    /// Calls of [`quantize_tensor`] on this thread.
    static CALLS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many times [`quantize_tensor`] has run on the calling thread: instrumentation for tests
/// that count the core's work per user action (the app's tests run jobs inline, on the test's
/// own thread, so parallel tests do not see each other's calls).
pub fn quantize_calls_on_this_thread() -> u64 {
    CALLS.with(std::cell::Cell::get)
}

/// Quantizes a tensor under `cfg`: calibrates per group, splits outliers, then quantizes,
/// dequantizes and measures in one fused parallel pass.
///
/// `values` must hold exactly the elements of `shape` (row-major); a 0-d scalar has shape []
/// and one value; empty tensors are valid. Codes and dequantized values are returned only when
/// `want` asks for them. Cancellable between chunks.
pub fn quantize_tensor(
    values: &[f32],
    shape: &[usize],
    cfg: &QuantConfig,
    want: Outputs,
    cancel: &Cancel,
) -> Result<QuantResult, QuantError> {
    CALLS.with(|c| c.set(c.get() + 1));
    cfg.validate(shape)?;
    let layout = Layout::new(shape, cfg.granularity)?;
    if layout.n != values.len() {
        return Err(QuantError::ShapeMismatch {
            expected: layout.n,
            got: values.len(),
        });
    }
    let groups = layout.groups();
    let base_bits = bits_per_weight(cfg.bits, layout.n, groups, param_bits(cfg));

    // The outlier split: the rule (NUMERICS.md §5), the column mask, and the values
    // calibration sees (outliers as NaN).
    let rule = match cfg.outliers {
        OutlierMode::None => OutlierRule::NONE,
        _ => OutlierRule::new(values, cfg.outlier_threshold, cancel)?,
    };
    let col_mask: Vec<bool> = match cfg.outliers {
        OutlierMode::Columns => rule.column_mask(values, layout.cols, cancel)?,
        _ => Vec::new(),
    };
    let split = match cfg.outliers {
        OutlierMode::None => Split::None,
        OutlierMode::Elements => Split::Elements(rule),
        OutlierMode::Columns => Split::Columns(&col_mask, layout.cols),
    };
    let masked: Cow<[f32]> = if matches!(split, Split::None) {
        Cow::Borrowed(values)
    } else {
        let mut m = values.to_vec();
        m.par_chunks_mut(CHUNK).enumerate().for_each(|(ci, c)| {
            for (j, x) in c.iter_mut().enumerate() {
                if split.is_outlier(ci * CHUNK + j, *x) && x.is_finite() {
                    *x = f32::NAN;
                }
            }
        });
        Cow::Owned(m)
    };
    let outlier_count = if matches!(split, Split::None) {
        0
    } else {
        // The masked copy has NaN exactly at the outliers plus the original NaNs.
        let nan_masked = masked.par_iter().filter(|x| x.is_nan()).count();
        let nan_orig = values.par_iter().filter(|x| x.is_nan()).count();
        nan_masked - nan_orig
    };

    let one_pass = match layout.kind {
        Kind::Channel {
            outer: 1, inner, ..
        } => {
            matches!(split, Split::None)
                && cfg.calibration == Calibration::MinMax
                && inner >= FUSED_ROW_MIN
        }
        _ => false,
    };
    let (ranges, params, curve, calibration_ms, (acc, codes, dequantized)) = if one_pass {
        let (rows, fused, ms) =
            fused_rows_dispatch(values, layout.cols_of_rows(), cfg, want, cancel)?;
        let (ranges, params): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
        (ranges, params, None, ms, fused)
    } else {
        let started = Instant::now();
        let (ranges, curve) = calibrate(&masked, &layout, cfg, cancel)?;
        let params: Vec<_> = ranges
            .iter()
            .map(|&(lo, hi)| params_from_range(lo, hi, cfg))
            .collect();
        let calibration_ms = started.elapsed().as_secs_f64() * 1e3;
        let kp: Vec<KernelParams> = params.iter().map(|p| KernelParams::new(p, cfg)).collect();
        let fused = fused_dispatch(values, &layout, &kp, &split, want, cfg, cancel)?;
        (ranges, params, curve, calibration_ms, fused)
    };

    let (without_split, bits) = if matches!(split, Split::None) {
        (None, base_bits)
    } else {
        let (plain_ranges, _) = calibrate(values, &layout, cfg, cancel)?;
        let plain: Vec<KernelParams> = plain_ranges
            .iter()
            .map(|&(lo, hi)| KernelParams::new(&params_from_range(lo, hi, cfg), cfg))
            .collect();
        let (plain_acc, _, _) = fused_dispatch(
            values,
            &layout,
            &plain,
            &Split::None,
            Outputs::default(),
            cfg,
            cancel,
        )?;
        // Counts below 2^53 convert exactly.
        let frac = if layout.n == 0 {
            0.0
        } else {
            outlier_count as f64 / layout.n as f64
        };
        let bits = match cfg.outliers {
            // Sparse FP16 values with a 32-bit index each, on top of the dense codes.
            OutlierMode::Elements => base_bits + frac * 48.0,
            // Outlier columns are stored in FP16 instead of codes (plus a 32-bit column index).
            _ => {
                let cols = col_mask.iter().filter(|&&m| m).count() as f64;
                let per_col = if layout.n == 0 {
                    0.0
                } else {
                    32.0 * cols / layout.n as f64
                };
                (1.0 - frac) * base_bits + frac * 16.0 + per_col
            }
        };
        (Some(plain_acc.finish()), bits)
    };
    let n = layout.n;
    Ok(QuantResult {
        shape: shape.to_vec(),
        scale_shape: layout.scale_shape.clone(),
        scales: params.iter().map(|p| p.scale).collect(),
        zero_points: params.iter().map(|p| p.zero_point).collect(),
        clip_min: ranges.iter().map(|r| r.0).collect(),
        clip_max: ranges.iter().map(|r| r.1).collect(),
        qmin: cfg.code_range().0,
        qmax: cfg.code_range().1,
        degenerate_groups: params.iter().filter(|p| p.degenerate).count() as u64,
        codes,
        dequantized,
        metrics: acc.finish(),
        outliers: OutlierReport {
            mode: cfg.outliers,
            threshold: rule.radius,
            center: rule.center,
            count: outlier_count as u64,
            fraction: if n == 0 {
                0.0
            } else {
                outlier_count as f64 / n as f64
            },
            columns: col_mask.iter().filter(|&&m| m).count() as u64,
            without_split,
            bits_per_weight_without_split: base_bits,
        },
        bits_per_weight: bits,
        tail_group: layout.tail(),
        curve,
        calibration_ms,
    })
}

/// Hand-vectorised AVX2 kernels (selected at run time; see [`has_avx2`]).
///
/// Each one performs, lane for lane, exactly the IEEE operations of its scalar counterpart
/// (`code_offset`, `LaneAcc::lane`, the select-based min/max) in the same order and without
/// FMA, so both give the same bits. Element j of every block of 8 is lane j, as in
/// [`LaneAcc`]. Only value intrinsics are used (no pointer loads or stores): vectors are built
/// from `&[f32; 8]` and lanes read back with extract intrinsics.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256, __m256d, __m256i, _CMP_EQ_OQ, _CMP_GT_OQ, _CMP_LT_OQ, _CMP_UNORD_Q, _mm_cvtsd_f64,
        _mm_unpackhi_pd, _mm256_add_pd, _mm256_add_ps, _mm256_and_pd, _mm256_and_ps,
        _mm256_and_si256, _mm256_andnot_ps, _mm256_castpd256_pd128, _mm256_castps_si256,
        _mm256_castps256_ps128, _mm256_castsi256_pd, _mm256_castsi256_ps, _mm256_cmp_ps,
        _mm256_cmpgt_epi32, _mm256_cvtps_pd, _mm256_div_ps, _mm256_extract_epi32,
        _mm256_extractf128_pd, _mm256_extractf128_ps, _mm256_max_pd, _mm256_max_ps, _mm256_min_ps,
        _mm256_mul_pd, _mm256_mul_ps, _mm256_or_ps, _mm256_set1_epi32, _mm256_set1_epi64x,
        _mm256_set1_ps, _mm256_setr_pd, _mm256_setr_ps, _mm256_setzero_si256, _mm256_sub_epi32,
        _mm256_sub_pd, _mm256_sub_ps,
    };

    use super::super::kernel::{KernelParams, RHAZ, RNE, code_offset};
    use super::super::metrics::{F32_ABS_MASK, F32_INF_BITS, LANES, LaneAcc};

    /// 1.5 * 2^23, the rounding constant of `kernel::round_small` (same value).
    const MAGIC: f32 = 12_582_912.0;

    /// Blocks of 8 between flushes of the i32 count lanes (far below 2^31 per lane).
    const COUNT_FLUSH: usize = 1 << 16;

    /// Eight f32 from an array (one unaligned load after optimisation).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn load8(a: &[f32; 8]) -> __m256 {
        _mm256_setr_ps(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
    }

    /// Lanes 0..4 or 4..8 of an accumulator array.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn load4(a: &[f64; LANES], hi: bool) -> __m256d {
        let o = if hi { 4 } else { 0 };
        _mm256_setr_pd(a[o], a[o + 1], a[o + 2], a[o + 3])
    }

    /// Writes a vector back to lanes 0..4 or 4..8.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn store4(v: __m256d, a: &mut [f64; LANES], hi: bool) {
        let o = if hi { 4 } else { 0 };
        let l = _mm256_castpd256_pd128(v);
        let h = _mm256_extractf128_pd::<1>(v);
        a[o] = _mm_cvtsd_f64(l);
        a[o + 1] = _mm_cvtsd_f64(_mm_unpackhi_pd(l, l));
        a[o + 2] = _mm_cvtsd_f64(h);
        a[o + 3] = _mm_cvtsd_f64(_mm_unpackhi_pd(h, h));
    }

    /// Adds the eight i32 count lanes to u64 lanes.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn flush_counts(c: __m256i, a: &mut [u64; LANES]) {
        let v = [
            _mm256_extract_epi32::<0>(c),
            _mm256_extract_epi32::<1>(c),
            _mm256_extract_epi32::<2>(c),
            _mm256_extract_epi32::<3>(c),
            _mm256_extract_epi32::<4>(c),
            _mm256_extract_epi32::<5>(c),
            _mm256_extract_epi32::<6>(c),
            _mm256_extract_epi32::<7>(c),
        ];
        for (slot, n) in a.iter_mut().zip(v) {
            // Counts are non-negative and below 2^31.
            *slot += u64::from(n.unsigned_abs());
        }
    }

    /// Quantizes `x` with `k` and adds the errors to `lanes` (codes and x_hat not stored):
    /// the vector form of `run_same` without outputs.
    #[target_feature(enable = "avx2")]
    pub(super) fn measure_run<const R: u8, const RECIP: bool>(
        x: &[f32],
        k: &KernelParams,
        lanes: &mut LaneAcc,
    ) {
        let scale = _mm256_set1_ps(k.scale);
        let inv = _mm256_set1_ps(k.inv_scale);
        let lo1 = _mm256_set1_ps(k.lo - 1.0);
        let hi1 = _mm256_set1_ps(k.hi + 1.0);
        let lo = _mm256_set1_ps(k.lo);
        let hi = _mm256_set1_ps(k.hi);
        let magic = _mm256_set1_ps(MAGIC);
        let one = _mm256_set1_ps(1.0);
        let half = _mm256_set1_ps(0.5);
        let neg_half = _mm256_set1_ps(-0.5);
        let zero = _mm256_set1_ps(0.0);
        // Bit masks: reinterpreting the u32/u64 constants as i32/i64 is the point.
        let abs_i = _mm256_set1_epi32(F32_ABS_MASK as i32);
        let inf_i = _mm256_set1_epi32(F32_INF_BITS as i32);
        let abs_pd = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7FFF_FFFF_FFFF_FFFF));

        let (blocks, tail) = x.as_chunks::<8>();
        let mut acc = [[_mm256_castsi256_pd(_mm256_setzero_si256()); 2]; 6];
        for (h, hi_half) in [false, true].into_iter().enumerate() {
            acc[0][h] = load4(&lanes.e2, hi_half);
            acc[1][h] = load4(&lanes.abs_e, hi_half);
            acc[2][h] = load4(&lanes.max_e, hi_half);
            acc[3][h] = load4(&lanes.x2, hi_half);
            acc[4][h] = load4(&lanes.xh2, hi_half);
            acc[5][h] = load4(&lanes.x_xh, hi_half);
        }
        for group in blocks.chunks(COUNT_FLUSH) {
            let mut n_fin = _mm256_setzero_si256();
            let mut n_nan = _mm256_setzero_si256();
            let mut n_clip = _mm256_setzero_si256();
            for x8 in group {
                let xv = load8(x8);
                let v = if RECIP {
                    _mm256_mul_ps(xv, inv)
                } else {
                    _mm256_div_ps(xv, scale)
                };
                // v.max(lo - 1).min(hi + 1): max_ps returns its second operand for NaN.
                let vc = _mm256_min_ps(_mm256_max_ps(v, lo1), hi1);
                let r0 = _mm256_sub_ps(_mm256_add_ps(vc, magic), magic);
                let r = if R == RNE {
                    r0
                } else {
                    let d = _mm256_sub_ps(vc, r0);
                    let up = _mm256_cmp_ps::<_CMP_EQ_OQ>(d, half);
                    if R == RHAZ {
                        let up = _mm256_and_ps(up, _mm256_cmp_ps::<_CMP_GT_OQ>(vc, zero));
                        let down = _mm256_and_ps(
                            _mm256_cmp_ps::<_CMP_EQ_OQ>(d, neg_half),
                            _mm256_cmp_ps::<_CMP_LT_OQ>(vc, zero),
                        );
                        _mm256_sub_ps(
                            _mm256_add_ps(r0, _mm256_and_ps(up, one)),
                            _mm256_and_ps(down, one),
                        )
                    } else {
                        _mm256_add_ps(r0, _mm256_and_ps(up, one))
                    }
                };
                let clipped = _mm256_or_ps(
                    _mm256_cmp_ps::<_CMP_LT_OQ>(r, lo),
                    _mm256_cmp_ps::<_CMP_GT_OQ>(r, hi),
                );
                let rq = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
                let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(xv, xv);
                let off = _mm256_andnot_ps(nan, rq);
                let clipped = _mm256_andnot_ps(nan, clipped);
                let xh = _mm256_mul_ps(scale, off);

                let abs_bits = _mm256_and_si256(_mm256_castps_si256(xv), abs_i);
                let finite = _mm256_cmpgt_epi32(inf_i, abs_bits);
                let is_nan = _mm256_cmpgt_epi32(abs_bits, inf_i);
                let fm = _mm256_castsi256_ps(finite);
                let xf = _mm256_and_ps(xv, fm);
                let hf = _mm256_and_ps(xh, fm);
                let xd = [
                    _mm256_cvtps_pd(_mm256_castps256_ps128(xf)),
                    _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(xf)),
                ];
                let hd = [
                    _mm256_cvtps_pd(_mm256_castps256_ps128(hf)),
                    _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(hf)),
                ];
                for h in 0..2 {
                    let e = _mm256_sub_pd(hd[h], xd[h]);
                    let ae = _mm256_and_pd(e, abs_pd);
                    acc[0][h] = _mm256_add_pd(acc[0][h], _mm256_mul_pd(e, e));
                    acc[1][h] = _mm256_add_pd(acc[1][h], ae);
                    acc[2][h] = _mm256_max_pd(ae, acc[2][h]);
                    acc[3][h] = _mm256_add_pd(acc[3][h], _mm256_mul_pd(xd[h], xd[h]));
                    acc[4][h] = _mm256_add_pd(acc[4][h], _mm256_mul_pd(hd[h], hd[h]));
                    acc[5][h] = _mm256_add_pd(acc[5][h], _mm256_mul_pd(xd[h], hd[h]));
                }
                n_fin = _mm256_sub_epi32(n_fin, finite);
                n_nan = _mm256_sub_epi32(n_nan, is_nan);
                n_clip = _mm256_sub_epi32(
                    n_clip,
                    _mm256_and_si256(_mm256_castps_si256(clipped), finite),
                );
            }
            flush_counts(n_fin, &mut lanes.finite);
            flush_counts(n_nan, &mut lanes.nan);
            flush_counts(n_clip, &mut lanes.clipped);
        }
        for (h, hi_half) in [false, true].into_iter().enumerate() {
            store4(acc[0][h], &mut lanes.e2, hi_half);
            store4(acc[1][h], &mut lanes.abs_e, hi_half);
            store4(acc[2][h], &mut lanes.max_e, hi_half);
            store4(acc[3][h], &mut lanes.x2, hi_half);
            store4(acc[4][h], &mut lanes.xh2, hi_half);
            store4(acc[5][h], &mut lanes.x_xh, hi_half);
        }
        // usize fits in u64.
        lanes.seen += (blocks.len() * 8) as u64;
        for (j, &v) in tail.iter().enumerate() {
            let (off, cl) = code_offset::<R, RECIP>(v, k);
            lanes.lane(j, v, k.scale * off, cl);
        }
        lanes.seen += tail.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::config::{Preset, Rounding};

    /// Awkward inputs: NaN, +-Inf, +-0, exact ties x/S = k + 0.5 for S = 0.25, values far
    /// outside the range, subnormals, and an odd length so every path has a tail.
    fn awkward(n: usize) -> Vec<f32> {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut v: Vec<f32> = (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                match i % 11 {
                    0 => f32::NAN,
                    1 => f32::INFINITY,
                    2 => -0.0,
                    3 => 0.125 * ((s % 64) as f32) - 4.0,
                    4 => f32::NEG_INFINITY,
                    5 => 1e-40,
                    6 => 300.0,
                    // Raw bit patterns (any class).
                    7 => f32::from_bits((s >> 32) as u32),
                    _ => ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 20.0,
                }
            })
            .collect();
        v.push(2.125);
        v
    }

    #[test]
    fn vector_and_scalar_kernels_give_the_same_bits() {
        let x = awkward(4099);
        let cases = [
            (Preset::OnnxRuntime, None),
            (Preset::PyTorch, None),
            (Preset::TfLite, None),
            (Preset::OnnxRuntime, Some(Rounding::HalfUp)),
        ];
        for (preset, rounding) in cases {
            for scheme in [Scheme::Symmetric, Scheme::Asymmetric] {
                let cfg = QuantConfig {
                    scheme,
                    preset,
                    rounding,
                    ..QuantConfig::default()
                };
                // S = 0.25 (or close) makes x/S land exactly on .5 for the 0.125 steps.
                let p = params_from_range(-31.75, 31.75, &cfg);
                let k = KernelParams::new(&p, &cfg);
                let conv = cfg.convention();
                let (mut a, mut b) = (LaneAcc::default(), LaneAcc::default());
                let mut deq = vec![0f32; x.len()];
                match (rule_code(conv.rounding), conv.reciprocal) {
                    (RNE, false) => {
                        run_best::<RNE, false>(&x, &k, None, None, &mut a);
                        run_same::<RNE, false>(&x, &k, None, Some(&mut deq), &mut b);
                    }
                    (RNE, true) => {
                        run_best::<RNE, true>(&x, &k, None, None, &mut a);
                        run_same::<RNE, true>(&x, &k, None, Some(&mut deq), &mut b);
                    }
                    (RHAZ, false) => {
                        run_best::<RHAZ, false>(&x, &k, None, None, &mut a);
                        run_same::<RHAZ, false>(&x, &k, None, Some(&mut deq), &mut b);
                    }
                    (RHU, false) => {
                        run_best::<RHU, false>(&x, &k, None, None, &mut a);
                        run_same::<RHU, false>(&x, &k, None, Some(&mut deq), &mut b);
                    }
                    other => panic!("unexpected convention {other:?}"),
                }
                let (mut ma, mut mb) = (MetricAcc::default(), MetricAcc::default());
                a.flush_into(&mut ma);
                b.flush_into(&mut mb);
                assert_eq!(ma, mb, "{preset:?} {scheme:?}");
                // And both agree with the per-element reference on every code.
                for (&v, &d) in x.iter().zip(&deq) {
                    let q = crate::quant::quantize(v, &p, &cfg);
                    let want = if v.is_nan() {
                        f32::NAN
                    } else {
                        p.real_from_code(q)
                    };
                    assert!(
                        d.to_bits() == want.to_bits() || (d.is_nan() && want.is_nan()),
                        "{v}: {d} vs {want}"
                    );
                }
                // The lanes count every element once.
                assert_eq!(ma.count + ma.nan + ma.inf, x.len() as u64);
            }
        }
    }

    #[test]
    fn one_pass_rows_equal_the_two_pass_path() {
        // Per-channel axis 0 with minmax takes the one-pass path: it must give the ranges,
        // parameters and codes of calibrating each row alone and quantizing each value with
        // the scalar reference, which is what the two-pass path does.
        let x = awkward(40 * 130);
        let x = &x[..40 * 130];
        let cfg = QuantConfig {
            scheme: Scheme::Asymmetric,
            granularity: Granularity::PerChannel { axis: 0 },
            ..QuantConfig::default()
        };
        let all = Outputs {
            codes: true,
            dequantized: true,
        };
        let r = quantize_tensor(x, &[40, 130], &cfg, all, &Cancel::never()).expect("ok");
        let lean =
            quantize_tensor(x, &[40, 130], &cfg, Outputs::default(), &Cancel::never()).expect("ok");
        assert_eq!(r.metrics, lean.metrics);
        let codes = r.codes.as_ref().expect("asked for");
        for (row, chunk) in x.chunks(130).enumerate() {
            let (lo, hi) = calib::minmax_range(chunk)
                .map_or((0.0, 0.0), |(a, b)| (f64::from(a), f64::from(b)));
            assert_eq!((r.clip_min[row], r.clip_max[row]), (lo, hi));
            let p = params_from_range(lo, hi, &cfg);
            assert_eq!((r.scales[row], r.zero_points[row]), (p.scale, p.zero_point));
            for (j, &v) in chunk.iter().enumerate() {
                assert_eq!(codes[row * 130 + j], crate::quant::quantize(v, &p, &cfg));
            }
        }
        let seq = crate::quant::metrics::compare(x, r.dequantized.as_ref().expect("asked for"));
        let rel = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(b.abs());
        assert!(rel(seq.mse, r.metrics.mse), "{} {}", seq.mse, r.metrics.mse);
        assert_eq!(seq.max_abs_error, r.metrics.max_abs_error);
        assert_eq!(
            (seq.count, seq.nan_count, seq.inf_count),
            (r.metrics.count, r.metrics.nan_count, r.metrics.inf_count)
        );
    }
}
