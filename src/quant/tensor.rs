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
use super::formats::Encoded;
use super::kernel::{KernelParams, RHAZ, RHU, RNE, code_offset, rule_code};
use super::metrics::{LANES, LaneAcc, MetricAcc, Metrics, bits_per_weight};
use super::outliers::OutlierRule;
use super::params::{QuantParams, params_from_range};
use super::simd::{self, ParamColumns, Run, Seg};
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
    /// The stored parts of a deployed format (NUMERICS.md §8), when the codes were asked for:
    /// a format's codes live in its blocks, not in `codes`.
    #[serde(skip)]
    pub encoded: Option<Encoded>,
}

impl QuantResult {
    /// A copy without the large outputs (codes, dequantized values): what reports carry.
    pub fn without_outputs(&self) -> Self {
        Self {
            codes: None,
            dequantized: None,
            encoded: None,
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
            encoded,
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
            && *encoded == other.encoded
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

/// Quantizes one run whose element k uses parameters `kp[k]` (per channel along an axis with
/// inner size 1): the scalar reference of the vector kernels' consecutive-group runs. Element k
/// goes to metric lane k % 8, as in [`run_same`].
fn run_consecutive<const R: u8, const RECIP: bool>(
    x: &[f32],
    kp: &[KernelParams],
    mut codes: Option<&mut [i32]>,
    mut deq: Option<&mut [f32]>,
    lanes: &mut LaneAcc,
) {
    for (j, (&v, k)) in x.iter().zip(kp).enumerate() {
        let (q, cl) = code_offset::<R, RECIP>(v, k);
        let h = k.scale * q;
        if let Some(c) = codes.as_deref_mut().and_then(|c| c.get_mut(j)) {
            // An exact integer within the code range.
            *c = (q + k.zero) as i32;
        }
        if let Some(d) = deq.as_deref_mut().and_then(|d| d.get_mut(j)) {
            *d = if v.is_nan() { f32::NAN } else { h };
        }
        lanes.lane(j % LANES, v, h, cl);
    }
    // usize fits in u64.
    lanes.seen += x.len().min(kp.len()) as u64;
}

/// The instruction set the fused kernels run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Isa {
    /// Plain Rust ([`run_same`], [`run_consecutive`]): the reference, and the fallback.
    Scalar,
    /// [`simd::avx2`]: AVX2 with FMA.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// [`simd::avx512`]: AVX-512F.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

/// The widest instruction set this CPU runs, capped by the environment variable
/// `QUANTSCOPE_SIMD` (`scalar` or `avx2`), a diagnostic for comparing the kernels on one
/// machine. Read once; every kernel gives the same bits, so the choice changes only speed.
pub(super) fn best_isa() -> Isa {
    static BEST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *BEST.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        let found = if std::arch::is_x86_feature_detected!("avx512f") {
            Isa::Avx512
        } else if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
        {
            Isa::Avx2
        } else {
            Isa::Scalar
        };
        #[cfg(not(target_arch = "x86_64"))]
        let found = Isa::Scalar;
        let cap = match std::env::var("QUANTSCOPE_SIMD").as_deref() {
            Ok("scalar") => Isa::Scalar,
            #[cfg(target_arch = "x86_64")]
            Ok("avx2") => Isa::Avx2,
            _ => found,
        };
        found.min(cap)
    })
}

/// Quantizes, dequantizes and measures the runs `segs` of the chunk `x` (no outlier split)
/// with instruction set `isa` (which the CPU must support), into `lanes`; codes and
/// dequantized values are written when given (chunk-relative, like the runs). `cols` holds
/// the parameters of consecutive-group runs. Every `isa` gives the same bits.
#[allow(clippy::too_many_arguments)]
fn measure_segs<const R: u8, const RECIP: bool>(
    isa: Isa,
    x: &[f32],
    segs: &[Seg],
    kp: &[KernelParams],
    cols: &ParamColumns,
    mut codes: Option<&mut [i32]>,
    mut deq: Option<&mut [f32]>,
    lanes: &mut LaneAcc,
) {
    #[cfg(target_arch = "x86_64")]
    {
        /// Calls `simd::$isa::segs` with the outputs asked for as const parameters.
        macro_rules! vector {
            ($isa:ident) => {
                // SAFETY (every arm): the caller checked that the CPU runs `$isa` (see
                // `best_isa`).
                match (codes, deq) {
                    (None, None) => unsafe {
                        simd::$isa::segs::<R, RECIP, false, false>(
                            x,
                            segs,
                            kp,
                            cols,
                            &mut [],
                            &mut [],
                            lanes,
                        )
                    },
                    (Some(c), None) => unsafe {
                        simd::$isa::segs::<R, RECIP, true, false>(
                            x,
                            segs,
                            kp,
                            cols,
                            c,
                            &mut [],
                            lanes,
                        )
                    },
                    (None, Some(d)) => unsafe {
                        simd::$isa::segs::<R, RECIP, false, true>(
                            x,
                            segs,
                            kp,
                            cols,
                            &mut [],
                            d,
                            lanes,
                        )
                    },
                    (Some(c), Some(d)) => unsafe {
                        simd::$isa::segs::<R, RECIP, true, true>(x, segs, kp, cols, c, d, lanes)
                    },
                }
            };
        }
        match isa {
            Isa::Avx512 => return vector!(avx512),
            Isa::Avx2 => return vector!(avx2),
            Isa::Scalar => {}
        }
    }
    let _ = (isa, cols);
    for s in segs {
        let Some(xs) = x.get(s.start..s.end) else {
            continue;
        };
        let cs = codes.as_deref_mut().and_then(|c| c.get_mut(s.start..s.end));
        let ds = deq.as_deref_mut().and_then(|d| d.get_mut(s.start..s.end));
        match s.run {
            Run::Same(g) => {
                if let Some(k) = kp.get(g) {
                    run_same::<R, RECIP>(xs, k, cs, ds, lanes);
                }
            }
            Run::Consecutive(g) => {
                if let Some(ks) = kp.get(g..g + xs.len()) {
                    run_consecutive::<R, RECIP>(xs, ks, cs, ds, lanes);
                }
            }
        }
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

/// The fused pass over one chunk starting at flat index `base`: the vector kernels over the
/// chunk's runs without an outlier split, the per-element path with one.
#[allow(clippy::too_many_arguments)]
fn chunk_pass<const R: u8, const RECIP: bool>(
    isa: Isa,
    layout: &Layout,
    base: usize,
    x: &[f32],
    kp: &[KernelParams],
    cols: &ParamColumns,
    split: &Split<'_>,
    mut codes: Option<&mut [i32]>,
    mut deq: Option<&mut [f32]>,
) -> MetricAcc {
    let mut acc = MetricAcc::default();
    let mut lanes = LaneAcc::default();
    if matches!(split, Split::None) {
        let mut segs = Vec::new();
        layout.for_each_run(base, base + x.len(), |s, e, run| {
            segs.push(Seg {
                start: s - base,
                end: e - base,
                run,
                unclamped: false,
            });
        });
        measure_segs::<R, RECIP>(isa, x, &segs, kp, cols, codes, deq, &mut lanes);
    } else {
        layout.for_each_run(base, base + x.len(), |s, e, run| {
            let (ls, le) = (s - base, e - base);
            let xs = x.get(ls..le).unwrap_or(&[]);
            let mut cs = codes.as_deref_mut().and_then(|c| c.get_mut(ls..le));
            let mut ds = deq.as_deref_mut().and_then(|d| d.get_mut(ls..le));
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
        });
    }
    lanes.flush_into(&mut acc);
    acc
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
    isa: Isa,
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
    let cols = if matches!(layout.kind, Kind::Channel { inner: 1, .. }) {
        ParamColumns::new(kp)
    } else {
        ParamColumns::default()
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
            let acc = chunk_pass::<R, RECIP>(isa, layout, ci * CHUNK, x, kp, &cols, split, c, d);
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
#[allow(clippy::too_many_arguments)]
fn fused_dispatch(
    values: &[f32],
    layout: &Layout,
    kp: &[KernelParams],
    split: &Split<'_>,
    want: Outputs,
    cfg: &QuantConfig,
    isa: Isa,
    cancel: &Cancel,
) -> Result<Fused, QuantError> {
    let conv = cfg.convention();
    let (v, l, k, s, w, i, c) = (values, layout, kp, split, want, isa, cancel);
    match (rule_code(conv.rounding), conv.reciprocal) {
        (RNE, false) => fused::<RNE, false>(v, l, k, s, w, i, c),
        (RNE, true) => fused::<RNE, true>(v, l, k, s, w, i, c),
        (RHAZ, false) => fused::<RHAZ, false>(v, l, k, s, w, i, c),
        (RHAZ, true) => fused::<RHAZ, true>(v, l, k, s, w, i, c),
        (_, false) => fused::<RHU, false>(v, l, k, s, w, i, c),
        (_, true) => fused::<RHU, true>(v, l, k, s, w, i, c),
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
    isa: Isa,
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
                let finite_range = stats::row_minmax(row);
                let range = finite_range.map_or((0.0, 0.0), |(a, b)| (f64::from(a), f64::from(b)));
                let p = params_from_range(range.0, range.1, cfg);
                spent += t.elapsed();
                let k = KernelParams::new(&p, cfg);
                let (s, e) = (r * inner, r * inner + row.len());
                let cs = c.as_deref_mut().and_then(|c| c.get_mut(s..e));
                let ds = d.as_deref_mut().and_then(|d| d.get_mut(s..e));
                let mut lanes = LaneAcc::default();
                // Codes are monotonic in x, so when the finite min and max are not clamped,
                // no finite element of the row is.
                let unclamped = finite_range.is_some_and(|(a, b)| {
                    !code_offset::<R, RECIP>(a, &k).1 && !code_offset::<R, RECIP>(b, &k).1
                });
                let seg = Seg {
                    start: 0,
                    end: row.len(),
                    run: Run::Same(0),
                    unclamped,
                };
                let none = ParamColumns::default();
                measure_segs::<R, RECIP>(isa, row, &[seg], &[k], &none, cs, ds, &mut lanes);
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
    isa: Isa,
    cancel: &Cancel,
) -> Result<FusedRows, QuantError> {
    let conv = cfg.convention();
    let (v, n, c, w, i, x) = (values, inner, cfg, want, isa, cancel);
    match (rule_code(conv.rounding), conv.reciprocal) {
        (RNE, false) => fused_rows::<RNE, false>(v, n, c, w, i, x),
        (RNE, true) => fused_rows::<RNE, true>(v, n, c, w, i, x),
        (RHAZ, false) => fused_rows::<RHAZ, false>(v, n, c, w, i, x),
        (RHAZ, true) => fused_rows::<RHAZ, true>(v, n, c, w, i, x),
        (_, false) => fused_rows::<RHU, false>(v, n, c, w, i, x),
        (_, true) => fused_rows::<RHU, true>(v, n, c, w, i, x),
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
    if let Some(format) = cfg.format {
        return super::deployed::quantize_deployed(values, shape, format, None, want, cancel);
    }
    quantize_with(values, shape, cfg, want, best_isa(), cancel)
}

/// [`quantize_tensor`] (without a deployed format) with the fused kernels of instruction set
/// `isa` (which the CPU must run): every `isa` gives the same result, which the tests check.
fn quantize_with(
    values: &[f32],
    shape: &[usize],
    cfg: &QuantConfig,
    want: Outputs,
    isa: Isa,
    cancel: &Cancel,
) -> Result<QuantResult, QuantError> {
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
            fused_rows_dispatch(values, layout.cols_of_rows(), cfg, want, isa, cancel)?;
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
        let fused = fused_dispatch(values, &layout, &kp, &split, want, cfg, isa, cancel)?;
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
            isa,
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
        encoded: None,
    })
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

    /// The vector instruction sets this CPU runs (each is compared with the scalar reference).
    fn vector_isas() -> Vec<Isa> {
        let mut v = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                v.push(Isa::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                v.push(Isa::Avx512);
            }
        }
        v
    }

    /// Every field of `m` as bits, so that equal NaN metrics (a range with an infinity gives
    /// them) compare equal and any other difference, down to the last bit, does not.
    fn metric_bits(m: &crate::quant::Metrics) -> [u64; 11] {
        [
            m.count,
            m.mse.to_bits(),
            m.rmse.to_bits(),
            m.mae.to_bits(),
            m.max_abs_error.to_bits(),
            m.sqnr_db.to_bits(),
            m.cosine.map_or(u64::MAX, f64::to_bits),
            m.clipped_fraction.to_bits(),
            m.clipped,
            m.nan_count,
            m.inf_count,
        ]
    }

    /// Every (tie rule, divide/reciprocal) pair the kernels are instantiated for.
    fn conventions() -> Vec<QuantConfig> {
        let mut out = Vec::new();
        for preset in [Preset::OnnxRuntime, Preset::PyTorch] {
            for rounding in [None, Some(Rounding::HalfAway), Some(Rounding::HalfUp)] {
                for scheme in [Scheme::Symmetric, Scheme::Asymmetric] {
                    out.push(QuantConfig {
                        scheme,
                        preset,
                        rounding,
                        ..QuantConfig::default()
                    });
                }
            }
        }
        out
    }

    /// [`measure_segs`] with the const parameters of `cfg`'s convention.
    #[allow(clippy::too_many_arguments)]
    fn measure(
        cfg: &QuantConfig,
        isa: Isa,
        x: &[f32],
        segs: &[Seg],
        kp: &[KernelParams],
        codes: Option<&mut [i32]>,
        deq: Option<&mut [f32]>,
        lanes: &mut LaneAcc,
    ) {
        let cols = ParamColumns::new(kp);
        let conv = cfg.convention();
        let (i, c) = (isa, &cols);
        match (rule_code(conv.rounding), conv.reciprocal) {
            (RNE, false) => measure_segs::<RNE, false>(i, x, segs, kp, c, codes, deq, lanes),
            (RNE, true) => measure_segs::<RNE, true>(i, x, segs, kp, c, codes, deq, lanes),
            (RHAZ, false) => measure_segs::<RHAZ, false>(i, x, segs, kp, c, codes, deq, lanes),
            (RHAZ, true) => measure_segs::<RHAZ, true>(i, x, segs, kp, c, codes, deq, lanes),
            (_, false) => measure_segs::<RHU, false>(i, x, segs, kp, c, codes, deq, lanes),
            (_, true) => measure_segs::<RHU, true>(i, x, segs, kp, c, codes, deq, lanes),
        }
    }

    /// [`measure`] into fresh lanes and outputs (codes and dequantized values when asked
    /// for; sentinels elsewhere): every lane as bits, the codes, the dequantized bits.
    #[allow(clippy::too_many_arguments)]
    fn measured(
        cfg: &QuantConfig,
        isa: Isa,
        x: &[f32],
        segs: &[Seg],
        kp: &[KernelParams],
        want_codes: bool,
        want_deq: bool,
    ) -> (Vec<u64>, Vec<i32>, Vec<u32>) {
        let n = x.len();
        let mut lanes = LaneAcc::default();
        let mut codes = vec![i32::MIN; n];
        let mut deq = vec![-1.0f32; n];
        measure(
            cfg,
            isa,
            x,
            segs,
            kp,
            want_codes.then_some(&mut codes[..]),
            want_deq.then_some(&mut deq[..]),
            &mut lanes,
        );
        let deq: Vec<u32> = deq.iter().map(|d| d.to_bits()).collect();
        (lane_bits(&lanes), codes, deq)
    }

    /// Every lane of every sum and count, as bits.
    fn lane_bits(l: &LaneAcc) -> Vec<u64> {
        let sums = [&l.e2, &l.abs_e, &l.max_e, &l.x2, &l.xh2, &l.x_xh];
        let mut v: Vec<u64> = sums.iter().flat_map(|a| a.map(f64::to_bits)).collect();
        v.extend(l.finite.iter().chain(&l.clipped).chain(&l.nan));
        v.push(l.seen);
        v
    }

    /// Awkward runs over `n` elements: one run of everything; runs of assorted lengths (1 to
    /// 100, many with a partial last block) each with its own group; and rows of 37 (and a
    /// first partial row starting at group 5) whose elements use consecutive groups.
    fn awkward_segs(n: usize) -> Vec<(&'static str, Vec<Seg>)> {
        let whole = vec![Seg {
            start: 0,
            end: n,
            run: Run::Same(0),
            unclamped: false,
        }];
        let mut assorted = Vec::new();
        let mut at = 0;
        for (g, len) in [1, 5, 8, 13, 16, 17, 31, 32, 100, 7, 24, 40]
            .iter()
            .cycle()
            .enumerate()
        {
            if at >= n {
                break;
            }
            let end = (at + len).min(n);
            assorted.push(Seg {
                start: at,
                end,
                run: Run::Same(g % 37),
                unclamped: false,
            });
            at = end;
        }
        let mut rows = vec![Seg {
            start: 0,
            end: 32,
            run: Run::Consecutive(5),
            unclamped: false,
        }];
        let mut at = 32;
        while at < n {
            let end = (at + 37).min(n);
            rows.push(Seg {
                start: at,
                end,
                run: Run::Consecutive(0),
                unclamped: false,
            });
            at = end;
        }
        vec![("whole", whole), ("assorted", assorted), ("rows", rows)]
    }

    #[test]
    fn every_kernel_gives_the_scalar_bits_on_awkward_runs() {
        let x = awkward(4099);
        let n = x.len();
        // 37 groups: S = 0.25 (x/S lands exactly on .5 for the 0.125 steps), narrow and wide
        // ranges, an empty range (the degenerate rule) and a tiny one (v far out of range).
        let ranges = [
            (-31.75, 31.75),
            (-3.0, 5.0),
            (0.0, 0.0),
            (-1e-30, 1e-30),
            (-300.0, 2.0),
            (-0.5, 1e6),
        ];
        for cfg in conventions() {
            let kp: Vec<KernelParams> = (0..37)
                .map(|g| {
                    let (lo, hi) = ranges[g % ranges.len()];
                    KernelParams::new(&params_from_range(lo, hi, &cfg), &cfg)
                })
                .collect();
            for (name, segs) in awkward_segs(n) {
                for (want_codes, want_deq) in
                    [(false, false), (true, false), (false, true), (true, true)]
                {
                    let run = |isa: Isa| measured(&cfg, isa, &x, &segs, &kp, want_codes, want_deq);
                    let reference = run(Isa::Scalar);
                    assert_eq!(
                        reference.0.last(),
                        Some(&(n as u64)),
                        "{name}: every element seen"
                    );
                    for isa in vector_isas() {
                        let got = run(isa);
                        let what =
                            format!("{isa:?} {name} {cfg:?} codes {want_codes} deq {want_deq}");
                        assert_eq!(got.0, reference.0, "lanes, {what}");
                        assert_eq!(got.1, reference.1, "codes, {what}");
                        assert_eq!(got.2, reference.2, "dequantized, {what}");
                    }
                    // The scalar reference agrees with the per-element kernel on every value.
                    if want_codes && want_deq {
                        for s in &segs {
                            for (j, &v) in x.iter().enumerate().take(s.end).skip(s.start) {
                                let g = match s.run {
                                    Run::Same(g) => g,
                                    Run::Consecutive(g) => g + j - s.start,
                                };
                                let (lo, hi) = ranges[g % ranges.len()];
                                let p = params_from_range(lo, hi, &cfg);
                                let q = crate::quant::quantize(v, &p, &cfg);
                                let d = if v.is_nan() {
                                    f32::NAN
                                } else {
                                    p.real_from_code(q)
                                };
                                assert_eq!(reference.1[j], q, "{name} {cfg:?} x = {v}");
                                assert_eq!(reference.2[j], d.to_bits(), "{name} {cfg:?} x = {v}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// Mostly ordinary values (whole blocks the AVX-512 fast path takes) with, here and
    /// there, exact ties of `scale` (x / S = k + 0.5), their neighbours a few ulps away (where
    /// x · f32(1/S) and x / S can round apart), small negatives (round to −0.0 before the
    /// clamp), an occasional NaN, infinity or far-out value, and a partial last block.
    fn mostly_ordinary(n: usize, scale: f32) -> Vec<f32> {
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        (0..n)
            .map(|i| {
                let r = next();
                // Uniform in [-4, 6); the cast keeps 24 high bits, exact in f32.
                let u = (r >> 40) as f32 / (1u64 << 24) as f32 * 10.0 - 4.0;
                let k = ((r >> 8) % 41) as f32 - 20.0;
                let tie = (k + 0.5) * scale;
                match i % 61 {
                    3 => tie,
                    5 => f32::from_bits(tie.to_bits() + 1 + (r % 3) as u32),
                    7 => f32::from_bits(tie.to_bits().saturating_sub(1 + (r % 3) as u32)),
                    11 => -scale * 0.25,
                    _ if i % 997 == 13 => [f32::NAN, f32::INFINITY, -1e30, 1e-42][i % 4],
                    _ => u,
                }
            })
            .collect()
    }

    /// Whether `v` is clamped under `cfg`'s convention (the scalar kernel).
    fn clamped_under(cfg: &QuantConfig, v: f32, k: &KernelParams) -> bool {
        let conv = cfg.convention();
        match (rule_code(conv.rounding), conv.reciprocal) {
            (RNE, false) => code_offset::<RNE, false>(v, k).1,
            (RNE, true) => code_offset::<RNE, true>(v, k).1,
            (RHAZ, false) => code_offset::<RHAZ, false>(v, k).1,
            (RHAZ, true) => code_offset::<RHAZ, true>(v, k).1,
            (_, false) => code_offset::<RHU, false>(v, k).1,
            (_, true) => code_offset::<RHU, true>(v, k).1,
        }
    }

    #[test]
    fn the_fast_path_gives_the_scalar_bits() {
        let n = 16 * 300 + 9;
        for cfg in conventions() {
            for bits in [8u8, 4, 16] {
                let cfg = QuantConfig {
                    bits,
                    ..cfg.clone()
                };
                // An odd scale (x / S and x · f32(1/S) differ in the last bit here and there),
                // and S = 0.25 (exact ties at the multiples of 0.125).
                for (lo, hi) in [(-4.0f64, 6.0f64), (-1.7, 2.9), (-31.75, 31.75)] {
                    let p = params_from_range(lo, hi, &cfg);
                    let k = KernelParams::new(&p, &cfg);
                    let x = mostly_ordinary(n, p.scale);
                    // Runs of whole rows: clean ones (no NaN, infinity or far value) carry
                    // the `unclamped` hint exactly when their finite min and max are not
                    // clamped, as the per-channel pass sets it.
                    let mut segs = Vec::new();
                    for (r, row) in x.chunks(512).enumerate() {
                        let start = r * 512;
                        let clean = row.iter().all(|v| v.is_finite() && v.abs() < 1e6);
                        let unclamped = clean
                            && stats::row_minmax(row).is_some_and(|(a, b)| {
                                !clamped_under(&cfg, a, &k) && !clamped_under(&cfg, b, &k)
                            });
                        segs.push(Seg {
                            start,
                            end: start + row.len(),
                            run: Run::Same(0),
                            unclamped,
                        });
                    }
                    for (want_codes, want_deq) in [(false, false), (true, true)] {
                        let run =
                            |isa: Isa| measured(&cfg, isa, &x, &segs, &[k], want_codes, want_deq);
                        let reference = run(Isa::Scalar);
                        for isa in vector_isas() {
                            let got = run(isa);
                            let what = format!("{isa:?} {cfg:?} range ({lo}, {hi})");
                            assert_eq!(got.0, reference.0, "lanes, {what}");
                            assert_eq!(got.1, reference.1, "codes, {what}");
                            assert_eq!(got.2, reference.2, "dequantized, {what}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn quantize_tensor_gives_the_same_result_on_every_kernel() {
        let data = awkward(29 * 141);
        let cases: Vec<(Vec<usize>, Granularity, Calibration)> = vec![
            (vec![29 * 141], Granularity::PerTensor, Calibration::MinMax),
            // One pass over contiguous rows (minmax), and the two-pass path (percentile).
            (
                vec![29, 141],
                Granularity::PerChannel { axis: 0 },
                Calibration::MinMax,
            ),
            (
                vec![29, 141],
                Granularity::PerChannel { axis: 0 },
                Calibration::Percentile(99.0),
            ),
            // Consecutive groups (inner size 1), and strided channels of 59 (outer 3).
            (
                vec![29, 141],
                Granularity::PerChannel { axis: 1 },
                Calibration::MinMax,
            ),
            (
                vec![3, 23, 59],
                Granularity::PerChannel { axis: 1 },
                Calibration::MinMax,
            ),
            // Groups with a tail of 13 and of 1 per row.
            (
                vec![29, 141],
                Granularity::PerGroup { size: 32 },
                Calibration::MinMax,
            ),
            (
                vec![29, 141],
                Granularity::PerGroup { size: 7 },
                Calibration::MinMax,
            ),
        ];
        let all = Outputs {
            codes: true,
            dequantized: true,
        };
        for base in conventions() {
            for (shape, granularity, calibration) in &cases {
                let cfg = QuantConfig {
                    granularity: *granularity,
                    calibration: *calibration,
                    ..base.clone()
                };
                let x = &data[..shape.iter().product::<usize>()];
                let go = |isa: Isa, want: Outputs| {
                    quantize_with(x, shape, &cfg, want, isa, &Cancel::never()).expect("valid")
                };
                let reference = go(Isa::Scalar, all);
                let lean = go(Isa::Scalar, Outputs::default());
                assert_eq!(
                    metric_bits(&lean.metrics),
                    metric_bits(&reference.metrics),
                    "{cfg:?}"
                );
                let bits = |r: &QuantResult| -> Vec<u32> {
                    r.dequantized
                        .iter()
                        .flatten()
                        .map(|d| d.to_bits())
                        .collect()
                };
                for isa in vector_isas() {
                    for want in [
                        all,
                        Outputs::default(),
                        Outputs {
                            codes: false,
                            dequantized: true,
                        },
                    ] {
                        let got = go(isa, want);
                        let what = format!("{isa:?} {cfg:?} {want:?}");
                        assert_eq!(
                            metric_bits(&got.metrics),
                            metric_bits(&reference.metrics),
                            "{what}"
                        );
                        let scale_bits = |r: &QuantResult| -> Vec<u32> {
                            r.scales.iter().map(|s| s.to_bits()).collect()
                        };
                        assert_eq!(scale_bits(&got), scale_bits(&reference), "{what}");
                        assert_eq!(got.zero_points, reference.zero_points, "{what}");
                        if want.codes {
                            assert_eq!(got.codes, reference.codes, "{what}");
                        }
                        if want.dequantized {
                            assert_eq!(bits(&got), bits(&reference), "{what}");
                        }
                    }
                }
                // Codes and dequantized values are the per-element kernel's.
                let layout = GroupLayout::new(shape, *granularity).expect("layout");
                let codes = reference.codes.as_ref().expect("asked for");
                let deq = reference.dequantized.as_ref().expect("asked for");
                for (i, &v) in x.iter().enumerate() {
                    let g = layout.group_of(i);
                    let p = params_from_range(reference.clip_min[g], reference.clip_max[g], &cfg);
                    let q = crate::quant::quantize(v, &p, &cfg);
                    assert_eq!(codes[i], q, "{cfg:?} element {i}");
                    let d = if v.is_nan() {
                        f32::NAN
                    } else {
                        p.real_from_code(q)
                    };
                    assert_eq!(deq[i].to_bits(), d.to_bits(), "{cfg:?} element {i}");
                }
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
