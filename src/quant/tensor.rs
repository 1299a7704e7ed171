//! Quantizing a whole tensor: granularity layouts, per-group calibration, the outlier split and
//! the fused parallel quantize + dequantize + metrics pass (NUMERICS.md §3–§6).
//!
//! The fused pass walks fixed chunks of [`CHUNK`] elements (so sums do not depend on the thread
//! count), checks the cancel token between chunks, and inside a chunk processes runs of
//! elements that share one (S, z), with S, 1/S and z precomputed as f32. Codes and dequantized
//! values are only materialised when asked for.

use std::borrow::Cow;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::QuantError;
use super::calib::{self, EntropyResult, MseResult};
use super::config::{
    Calibration, Granularity, OutlierMode, OutlierThreshold, QuantConfig, Scheme, element_count,
};
use super::kernel::{KernelParams, RHAZ, RHU, RNE, code_offset, rule_code};
use super::metrics::{MetricAcc, Metrics, bits_per_weight};
use super::params::params_from_range;
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
    /// The threshold tau actually used (+inf when none applies).
    pub threshold: f64,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantResult {
    /// The input shape.
    pub shape: Vec<usize>,
    /// Shape of `scales`/`zero_points` (NUMERICS.md §3): [] per tensor, [dim_A] per channel,
    /// [leading dims..., ceil(cols / G)] per group.
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
    Elements(f32),
    Columns(&'a [bool], usize),
}

impl Split<'_> {
    #[inline(always)]
    fn is_outlier(&self, i: usize, x: f32) -> bool {
        match *self {
            Split::None => false,
            Split::Elements(tau) => x.abs() >= tau,
            Split::Columns(mask, cols) => mask.get(i % cols.max(1)).copied().unwrap_or(false),
        }
    }
}

/// Quantizes one run of elements with fixed parameters (the hot loop).
#[inline(always)]
fn run_same<const R: u8, const RECIP: bool>(
    x: &[f32],
    k: &KernelParams,
    codes: Option<&mut [i32]>,
    deq: Option<&mut [f32]>,
    acc: &mut MetricAcc,
) {
    match (codes, deq) {
        (None, None) => {
            for &v in x {
                let (off, clip) = code_offset::<R, RECIP>(v, k);
                acc.push(v, k.scale * off, clip);
            }
        }
        (Some(c), None) => {
            for (&v, c) in x.iter().zip(c) {
                let (off, clip) = code_offset::<R, RECIP>(v, k);
                // An exact integer within the code range.
                *c = (off + k.zero) as i32;
                acc.push(v, k.scale * off, clip);
            }
        }
        (None, Some(d)) => {
            for (&v, d) in x.iter().zip(d) {
                let (off, clip) = code_offset::<R, RECIP>(v, k);
                let xh = if v.is_nan() { f32::NAN } else { k.scale * off };
                *d = xh;
                acc.push(v, xh, clip);
            }
        }
        (Some(c), Some(d)) => {
            for ((&v, c), d) in x.iter().zip(c).zip(d) {
                let (off, clip) = code_offset::<R, RECIP>(v, k);
                let xh = if v.is_nan() { f32::NAN } else { k.scale * off };
                *c = (off + k.zero) as i32;
                *d = xh;
                acc.push(v, xh, clip);
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

/// The fused pass over one chunk starting at flat index `base`.
#[allow(clippy::too_many_arguments)]
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
    let fast = matches!(split, Split::None);
    layout.for_each_run(base, base + x.len(), |s, e, run| {
        let (ls, le) = (s - base, e - base);
        let xs = x.get(ls..le).unwrap_or(&[]);
        let cs = codes.as_deref_mut().and_then(|c| c.get_mut(ls..le));
        let ds = deq.as_deref_mut().and_then(|d| d.get_mut(ls..le));
        match run {
            Run::Same(g) if fast => {
                if let Some(k) = kp.get(g) {
                    run_same::<R, RECIP>(xs, k, cs, ds, &mut acc);
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

    // The outlier split: tau, the mask, and the values calibration sees (outliers as NaN).
    let tau = match (cfg.outliers, cfg.outlier_threshold) {
        (OutlierMode::None, _) => f64::INFINITY,
        (_, OutlierThreshold::Absolute(t)) => f64::from(t),
        (_, OutlierThreshold::StdMultiple(k)) => stats::summarize(values, cancel)?
            .std
            .map_or(f64::INFINITY, |s| f64::from(k) * s),
    };
    // Rounded up to the next f32 so |x| >= tau compares exactly as in f64.
    let tau32 = f32_at_least(tau);
    let col_mask: Vec<bool> = match cfg.outliers {
        OutlierMode::Columns => column_mask(values, layout.cols, tau32, cancel)?,
        _ => Vec::new(),
    };
    let split = match cfg.outliers {
        OutlierMode::None => Split::None,
        OutlierMode::Elements => Split::Elements(tau32),
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

    let (ranges, curve) = calibrate(&masked, &layout, cfg, cancel)?;
    let params: Vec<_> = ranges
        .iter()
        .map(|&(lo, hi)| params_from_range(lo, hi, cfg))
        .collect();
    let kp: Vec<KernelParams> = params.iter().map(|p| KernelParams::new(p, cfg)).collect();
    let (acc, codes, dequantized) =
        fused_dispatch(values, &layout, &kp, &split, want, cfg, cancel)?;

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
            threshold: tau,
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
    })
}

/// The smallest f32 >= `t` (so `|x| >= result` iff `|x| >= t` for f32 x); +inf stays +inf.
fn f32_at_least(t: f64) -> f32 {
    let r = t as f32;
    if f64::from(r) >= t || r.is_infinite() {
        r
    } else {
        r.next_up()
    }
}

/// Which last-axis columns hold any finite |x| >= tau.
fn column_mask(
    values: &[f32],
    cols: usize,
    tau: f32,
    cancel: &Cancel,
) -> Result<Vec<bool>, QuantError> {
    let cols = cols.max(1);
    let rows_per_task = (CHUNK / cols).max(1);
    let parts: Vec<Vec<bool>> = values
        .par_chunks(cols * rows_per_task)
        .map(|chunk| {
            cancel.check()?;
            let mut m = vec![false; cols];
            for row in chunk.chunks(cols) {
                for (slot, &x) in m.iter_mut().zip(row) {
                    *slot |= x.is_finite() && x.abs() >= tau;
                }
            }
            Ok(m)
        })
        .collect::<Result<_, QuantError>>()?;
    let mut mask = vec![false; cols];
    for p in &parts {
        for (a, &b) in mask.iter_mut().zip(p) {
            *a |= b;
        }
    }
    Ok(mask)
}
