//! Calibrators: choosing the clip range [lo, hi] of one group of values (NUMERICS.md §4).
//!
//! - [`minmax_range`]: the finite min and max.
//! - [`percentile_range`]: exact numpy-linear percentiles, clamped to the observed range.
//! - [`entropy_amax_with_curve`] / [`entropy_from_histogram`]: TensorRT's KL-divergence
//!   threshold, a port of NVIDIA pytorch-quantization's `_compute_amax_entropy`.
//! - [`mse_range`]: the range minimising the actual quantization MSE (clipping plus rounding).
//!
//! All of them ignore NaN and +-Inf; the outlier split feeds them values with the outliers
//! replaced by NaN.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::config::{QuantConfig, Scheme};
use super::kernel::{KernelParams, RHAZ, RHU, RNE, code_offset, rule_code};
use super::params::params_from_range;
use super::tensor::{Isa, best_isa};
use crate::cancel::{Cancel, Cancelled};
use crate::stats::{self, Magnitude};

/// Histogram bins of the entropy calibrator (TensorRT's default).
pub const ENTROPY_BINS: usize = 2048;

/// Elements per parallel chunk (and per cancellation check).
const CHUNK: usize = 1 << 16;

/// Slices longer than this are split into parallel chunks inside one calibrator call.
const PARALLEL_MIN: usize = 1 << 17;

/// The finite (min, max) of `values`, or None when there is no finite value. Sequential,
/// vectorised.
pub fn minmax_range(values: &[f32]) -> Option<(f32, f32)> {
    stats::row_minmax(values)
}

/// Percentile clip range: symmetric → (-P(p) of |x|, P(p) of |x|); asymmetric →
/// (P(100 - p), P(p)), sorted. Clamped to the observed finite [min, max] (or [-absmax, absmax]).
/// None when there is no finite value.
pub fn percentile_range(values: &[f32], p: f64, scheme: Scheme) -> Option<(f64, f64)> {
    let (min, max) = minmax_range(values)?;
    let (min, max) = (f64::from(min), f64::from(max));
    match scheme {
        Scheme::Symmetric => {
            let absmax = min.abs().max(max.abs());
            let a = stats::abs_percentile(values, p)?.clamp(0.0, absmax);
            Some((-a, a))
        }
        Scheme::Asymmetric => {
            let ps = stats::percentiles(values, &[100.0 - p, p])?;
            let (a, b) = (*ps.first()?, *ps.get(1)?);
            Some((a.min(b).clamp(min, max), a.max(b).clamp(min, max)))
        }
    }
}

/// Which values a KL histogram counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// |x| of every finite value (symmetric schemes).
    Abs,
    /// x for finite x > 0 (the positive side of an asymmetric range).
    Positive,
    /// -x for finite x < 0 (the negative side).
    Negative,
}

/// numpy.linspace(0, hi, bins + 1) computed in f64 and rounded to f32 (the bin_edges numpy
/// uses for float32 data and an explicit range; identical to `stats::abs_histogram`'s).
pub fn entropy_edges(hi: f32, bins: usize) -> Vec<f32> {
    // bins <= 2048: exact in f64.
    let step = f64::from(hi) / bins as f64;
    let mut edges: Vec<f32> = (0..=bins).map(|i| (i as f64 * step) as f32).collect();
    if let Some(last) = edges.last_mut() {
        *last = hi;
    }
    edges
}

/// The 2048-bin histogram of `side` on [0, hi] with numpy's bin assignment: the counts of
/// [`stats::Histogram::of_magnitudes`] (the one histogram kernel; `stats::abs_histogram` for
/// [`Side::Abs`]). Parallel over fixed chunks (integer counts: identical for any thread
/// count). All counts are zero when `hi` is not a positive finite number.
pub fn kl_histogram(
    values: &[f32],
    side: Side,
    hi: f32,
    cancel: &Cancel,
) -> Result<Vec<u64>, Cancelled> {
    let hi = f64::from(hi);
    let hist = match side {
        Side::Abs => stats::abs_histogram(values, ENTROPY_BINS, hi, cancel),
        Side::Positive => {
            stats::Histogram::of_magnitudes(values, ENTROPY_BINS, hi, Magnitude::Positive, cancel)
        }
        Side::Negative => {
            stats::Histogram::of_magnitudes(values, ENTROPY_BINS, hi, Magnitude::Negative, cancel)
        }
    };
    match hist {
        Ok(h) => Ok(h.counts),
        Err(stats::StatsError::Cancelled(c)) => Err(c),
        // Only a range that is not positive and finite gets here: nothing to count.
        Err(_) => Ok(vec![0; ENTROPY_BINS]),
    }
}

/// The entropy calibrator's answer and the curve it minimised (for plotting).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntropyResult {
    /// The chosen threshold: the right edge of the last bin kept by the best candidate.
    pub amax: f64,
    /// Each candidate's threshold (`edges[i]` for i = 2^(b-1) ..= 2048).
    pub candidates: Vec<f64>,
    /// KL(P || Q) of each candidate (+inf where Q misses mass that P has).
    pub kl: Vec<f64>,
    /// Index into `candidates` of the minimum (the last one on ties).
    pub best: usize,
}

impl EntropyResult {
    fn empty() -> Self {
        Self {
            amax: 0.0,
            candidates: Vec::new(),
            kl: Vec::new(),
            best: 0,
        }
    }
}

/// KL(P || Q) of candidate `i` (bins 0..i kept) — see [`entropy_from_histogram`].
///
/// `b` are the counts (bins[0] already replaced), `lnb` their logs (0 for empty bins), `total`
/// their sum and `tail` the mass of bins i.. .
///
/// `cache` remembers, by first bin, the last group seen with its end and ln(Q) (None for a
/// group without nonzero bins): neighbouring candidates share most groups, and ln(Q) of a
/// group depends only on its bins, so a hit gives the bits the sums and the logarithm would.
fn kl_of_candidate(
    b: &[f64],
    lnb: &[f64],
    total: f64,
    tail: f64,
    i: usize,
    levels: usize,
    cache: &mut GroupCache,
) -> f64 {
    let (Some(kept), Some(lnkept)) = (b.get(..i), lnb.get(..i)) else {
        return f64::INFINITY;
    };
    let last = i - 1;
    let total_q = total - tail;
    if total_q == 0.0 {
        // Every kept bin is empty, so Q is all zeros: NVIDIA normalises it by its sum (0/0) and
        // scipy.stats.entropy then returns NaN. Kept as NaN: see `entropy_from_histogram`.
        return f64::NAN;
    }
    let b_last = kept.get(last).copied().unwrap_or(0.0);
    if b_last == 0.0 && tail > 0.0 {
        // P keeps the tail mass in its last bin, where Q (zero bins stay zero) has nothing.
        return f64::INFINITY;
    }
    let mut sum = 0.0f64;
    for g in 0..levels {
        // np.digitize(range(i), linspace(0, i, levels + 1)) - 1 puts j in group
        // floor(j * levels / i): the edges k * i / levels are exact in f64 (levels is a power
        // of two), so the group of j is exactly [ceil(g * i / levels), ceil((g+1) * i / levels)).
        let start = (g * i).div_ceil(levels);
        let end = ((g + 1) * i).div_ceil(levels).min(i);
        let (Some(gb), Some(glnb)) = (kept.get(start..end), lnkept.get(start..end)) else {
            continue;
        };
        let Some(lnq) = cache.lnq(start, end, || {
            let mass: f64 = gb.iter().sum();
            let nonzero = gb.iter().filter(|&&v| v > 0.0).count();
            // Q spreads the group's mass evenly over its nonzero bins; counts are exact in
            // f64.
            (nonzero > 0).then(|| (mass / nonzero as f64).ln())
        }) else {
            continue;
        };
        for (k, (&v, &lv)) in gb.iter().zip(glnb).enumerate() {
            if start + k == last {
                let p = v + tail;
                if p > 0.0 {
                    sum += p * (p.ln() - lnq);
                }
            } else {
                // v = 0 contributes 0 (lv is 0 and lnq finite).
                sum += v * (lv - lnq);
            }
        }
    }
    // scipy.stats.entropy normalises both: sum p ln(p/q) with p = P/T, q = Q/TQ equals
    // (1/T) sum P (ln P - ln Q) + ln(TQ/T). With no tail this is exactly 0 when P = Q.
    sum / total + (total_q / total).ln()
}

/// The groups of [`kl_of_candidate`] already seen: for each first bin, the last group's end
/// and its ln(Q) (None when the group has no nonzero bin).
struct GroupCache {
    end: Vec<usize>,
    lnq: Vec<Option<f64>>,
}

impl GroupCache {
    /// A cache for groups starting in `0..bins`.
    fn new(bins: usize) -> Self {
        Self {
            end: vec![usize::MAX; bins],
            lnq: vec![None; bins],
        }
    }

    /// ln(Q) of the group `start..end`, computed by `compute` unless it is the last group
    /// seen at `start`.
    #[inline]
    fn lnq(
        &mut self,
        start: usize,
        end: usize,
        compute: impl FnOnce() -> Option<f64>,
    ) -> Option<f64> {
        match (self.end.get_mut(start), self.lnq.get_mut(start)) {
            (Some(e), Some(l)) => {
                if *e != end {
                    *e = end;
                    *l = compute();
                }
                *l
            }
            _ => compute(),
        }
    }
}

/// TensorRT's entropy calibration on a histogram of magnitudes (NVIDIA pytorch-quantization
/// `_compute_amax_entropy`, symmetric: 2^(b-1) quantized bins).
///
/// `counts` are the 2048 bins on [0, hi] (edges from [`entropy_edges`]). `bins[0] := bins[1]`;
/// for each i in 2^(b-1)..=2048: P = bins[..i] with the mass of bins[i..] added to P[i-1];
/// Q = bins[..i] merged into 2^(b-1) groups (np.digitize), each group's total spread evenly
/// over its nonzero bins; KL(P || Q) with both normalised (scipy.stats.entropy); amax =
/// `edges[i*]` for the i* minimising KL, the last minimum winning ties; a candidate whose
/// kept bins are all empty has KL = NaN and, as in NVIDIA's code, the last such candidate wins
/// (see `last_argmin`). For 16 bits (2^15 groups
/// > 2048 bins) every candidate from 2048 on is lossless, so amax = hi.
pub fn entropy_from_histogram(counts: &[u64], hi: f32, bits: u8) -> EntropyResult {
    let n = counts.len();
    if n < 2 || hi <= 0.0 {
        return EntropyResult::empty();
    }
    let edges = entropy_edges(hi, n);
    // Counts of one tensor are far below 2^53: exact in f64.
    let mut b: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
    let second = b.get(1).copied();
    if let (Some(second), Some(first)) = (second, b.first_mut()) {
        *first = second;
    }
    let total: f64 = b.iter().sum();
    if total == 0.0 {
        return EntropyResult::empty();
    }
    let lnb: Vec<f64> = b
        .iter()
        .map(|&v| if v > 0.0 { v.ln() } else { 0.0 })
        .collect();
    let mut tails = vec![0.0f64; n + 1];
    for j in (0..n).rev() {
        tails[j] = tails[j + 1] + b[j];
    }
    let levels = 1usize << (u32::from(bits.clamp(2, 16)) - 1);
    let start = levels.min(n);
    let kl: Vec<f64> = (start..=n)
        .into_par_iter()
        .map_init(
            || GroupCache::new(n),
            |cache, i| {
                kl_of_candidate(
                    &b,
                    &lnb,
                    total,
                    tails.get(i).copied().unwrap_or(0.0),
                    i,
                    levels,
                    cache,
                )
            },
        )
        .collect();
    let best = last_argmin(&kl);
    let candidates: Vec<f64> = (start..=n)
        .map(|i| edges.get(i).map_or(f64::from(hi), |&e| f64::from(e)))
        .collect();
    EntropyResult {
        amax: candidates.get(best).copied().unwrap_or(f64::from(hi)),
        candidates,
        kl,
        best,
    }
}

/// NVIDIA's `last_argmin = len(d) - 1 - np.argmin(d[::-1])`, NaN included as numpy treats it.
///
/// np.argmin propagates NaN: if the array holds a NaN, the index of its FIRST NaN is returned.
/// Over the reversed list that is the LAST NaN of `d`. NaN appears exactly for the candidates
/// whose kept bins are all empty (Q sums to 0), i.e. when every |x| lies above the first
/// candidates (LayerNorm weights in [0.38, 1.5], say); NVIDIA then returns the last of them,
/// whose threshold edges[i] is the left edge of the first non-empty bin (below every |x|).
/// quantscope's numbers are checked against NVIDIA's, so this is replicated, not "fixed".
/// Without NaN: the last minimum (ties go to the larger threshold). 0 for an empty list.
fn last_argmin(d: &[f64]) -> usize {
    if let Some(k) = d.iter().rposition(|v| v.is_nan()) {
        return k;
    }
    let mut best = 0;
    for (k, &v) in d.iter().enumerate() {
        if d.get(best).is_none_or(|&b| v <= b) {
            best = k;
        }
    }
    best
}

/// Entropy calibration of one side of `values` (see [`Side`]), with its KL curve.
pub fn entropy_side(
    values: &[f32],
    side: Side,
    bits: u8,
    cancel: &Cancel,
) -> Result<EntropyResult, Cancelled> {
    let hi = side_max(values, side);
    if hi <= 0.0 {
        return Ok(EntropyResult::empty());
    }
    let counts = kl_histogram(values, side, hi, cancel)?;
    Ok(entropy_from_histogram(&counts, hi, bits))
}

/// Symmetric entropy calibration: amax of |x| and the KL curve (TensorRT's algorithm).
pub fn entropy_amax_with_curve(
    values: &[f32],
    bits: u8,
    cancel: &Cancel,
) -> Result<EntropyResult, Cancelled> {
    entropy_side(values, Side::Abs, bits, cancel)
}

/// The largest finite value on `side` (0 when there is none), from one vectorised finite
/// min/max pass: max|x| = max(-min, max), the positive side max(max, 0), the negative side
/// max(-min, 0).
fn side_max(values: &[f32], side: Side) -> f32 {
    let (lo, hi) = if values.len() < PARALLEL_MIN {
        stats::row_minmax(values).unwrap_or((0.0, 0.0))
    } else {
        values
            .par_chunks(CHUNK)
            .map(stats::row_minmax)
            .reduce(
                || None,
                |a, b| match (a, b) {
                    (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
                    (a, None) => a,
                    (None, b) => b,
                },
            )
            .unwrap_or((0.0, 0.0))
    };
    let m = match side {
        Side::Abs => (-lo).max(hi),
        Side::Positive => hi,
        Side::Negative => -lo,
    };
    m.max(0.0)
}

/// Entropy clip range: symmetric → [-amax, amax] on |x|; asymmetric → the same algorithm on
/// the positive and the negative side separately. Returns the range and the curve(s) (one for
/// symmetric; positive then negative for asymmetric).
pub fn entropy_range(
    values: &[f32],
    bits: u8,
    scheme: Scheme,
    cancel: &Cancel,
) -> Result<((f64, f64), Vec<EntropyResult>), Cancelled> {
    match scheme {
        Scheme::Symmetric => {
            let r = entropy_amax_with_curve(values, bits, cancel)?;
            Ok(((-r.amax, r.amax), vec![r]))
        }
        Scheme::Asymmetric => {
            let pos = entropy_side(values, Side::Positive, bits, cancel)?;
            let neg = entropy_side(values, Side::Negative, bits, cancel)?;
            Ok(((-neg.amax, pos.amax), vec![pos, neg]))
        }
    }
}

/// The MSE calibrator's answer and the curve of its coarse scan (for plotting).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MseResult {
    /// Chosen lower clip bound.
    pub lo: f64,
    /// Chosen upper clip bound.
    pub hi: f64,
    /// The MSE of the chosen range (over the finite values).
    pub mse: f64,
    /// Coarse scan: the range shrunk by t = k/100 (k = 1..=100): upper bounds...
    pub curve_hi: Vec<f64>,
    /// ... lower bounds ...
    pub curve_lo: Vec<f64>,
    /// ... and their MSE (on a strided sample of about 2^20 values when the slice is larger).
    pub curve_mse: Vec<f64>,
}

/// Sum of squared quantization errors of `values` for each candidate range, added to `out`,
/// with the widest kernel `isa` allows (every kernel gives these bits, which a test checks).
fn sse_of<const R: u8, const RECIP: bool>(
    isa: Isa,
    values: &[f32],
    cands: &[KernelParams],
    out: &mut [f64],
) {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        // SAFETY: `isa` is Avx512 only when the CPU runs AVX-512F (`best_isa`).
        unsafe { super::simd::avx512::sse::<R, RECIP>(values, cands, out) };
        return;
    }
    let _ = isa;
    for (k, s) in cands.iter().zip(out.iter_mut()) {
        let mut acc = 0.0f64;
        for &x in values {
            if x.is_finite() {
                let (off, _) = code_offset::<R, RECIP>(x, k);
                let e = f64::from(k.scale * off) - f64::from(x);
                acc += e * e;
            }
        }
        *s += acc;
    }
}

/// Evaluates the exact SSE of every candidate (lo, hi) on `values` under `cfg`.
fn evaluate(values: &[f32], ranges: &[(f64, f64)], cfg: &QuantConfig) -> Vec<f64> {
    evaluate_with(best_isa(), values, ranges, cfg)
}

/// [`evaluate`] with the kernels of `isa` (which the CPU must run).
fn evaluate_with(isa: Isa, values: &[f32], ranges: &[(f64, f64)], cfg: &QuantConfig) -> Vec<f64> {
    let conv = cfg.convention();
    let cands: Vec<KernelParams> = ranges
        .iter()
        .map(|&(lo, hi)| KernelParams::new(&params_from_range(lo, hi, cfg), cfg))
        .collect();
    let run = |chunk: &[f32]| -> Vec<f64> {
        let mut out = vec![0.0; cands.len()];
        match (rule_code(conv.rounding), conv.reciprocal) {
            (RNE, false) => sse_of::<RNE, false>(isa, chunk, &cands, &mut out),
            (RNE, true) => sse_of::<RNE, true>(isa, chunk, &cands, &mut out),
            (RHAZ, false) => sse_of::<RHAZ, false>(isa, chunk, &cands, &mut out),
            (RHAZ, true) => sse_of::<RHAZ, true>(isa, chunk, &cands, &mut out),
            (_, false) => sse_of::<RHU, false>(isa, chunk, &cands, &mut out),
            (_, true) => sse_of::<RHU, true>(isa, chunk, &cands, &mut out),
        }
        out
    };
    if values.len() < PARALLEL_MIN {
        return run(values);
    }
    let parts: Vec<Vec<f64>> = values.par_chunks(CHUNK).map(run).collect();
    let mut total = vec![0.0; cands.len()];
    for p in &parts {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    total
}

/// Index of the smallest value (the first on ties); 0 for an empty slice.
fn argmin(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x < v.get(best).copied().unwrap_or(f64::INFINITY) {
            best = i;
        }
    }
    best
}

/// Refines one bound by two rounds of 21 exact evaluations around `start` within
/// [floor, ceil]; `make` builds the candidate range from the bound.
fn refine(
    values: &[f32],
    cfg: &QuantConfig,
    start: f64,
    step: f64,
    floor: f64,
    ceil: f64,
    make: impl Fn(f64) -> (f64, f64),
) -> (f64, f64) {
    let mut best = start;
    let mut best_sse = evaluate(values, &[make(start)], cfg)
        .first()
        .copied()
        .unwrap_or(f64::INFINITY);
    let mut step = step;
    for _ in 0..2 {
        let ranges: Vec<f64> = (-10..=10)
            .map(|k| (best + f64::from(k) * step / 10.0).clamp(floor, ceil))
            .collect();
        let cands: Vec<(f64, f64)> = ranges.iter().map(|&b| make(b)).collect();
        let sse = evaluate(values, &cands, cfg);
        let i = argmin(&sse);
        if let (Some(&s), Some(&b)) = (sse.get(i), ranges.get(i))
            && s < best_sse
        {
            best_sse = s;
            best = b;
        }
        step /= 10.0;
    }
    (best, best_sse)
}

/// The clip range minimising the actual MSE (clipping plus rounding) of `values` under `cfg`.
///
/// A coarse scan shrinks the finite range by t = k/100 (k = 1..=100) — on a strided sample of
/// about 2^20 values when the slice is larger — then each bound is refined on all values by
/// two rounds of 21 exact evaluations (symmetric: amax; asymmetric: three rounds of coordinate
/// descent on hi and lo). None when there is no finite value.
pub fn mse_range(
    values: &[f32],
    cfg: &QuantConfig,
    cancel: &Cancel,
) -> Result<Option<MseResult>, Cancelled> {
    let Some((min, max)) = minmax_range(values) else {
        return Ok(None);
    };
    let (min, max) = (f64::from(min), f64::from(max));
    let stride = (values.len() >> 20).max(1);
    let sample: Vec<f32>;
    let coarse_values: &[f32] = if stride > 1 {
        sample = values.iter().step_by(stride).copied().collect();
        &sample
    } else {
        values
    };
    let n = values.iter().filter(|x| x.is_finite()).count().max(1) as f64;
    let ts: Vec<f64> = (1..=100).map(|k| f64::from(k) / 100.0).collect();
    cancel.check()?;
    let symmetric = cfg.scheme == Scheme::Symmetric;
    let absmax = min.abs().max(max.abs());
    let coarse: Vec<(f64, f64)> = ts
        .iter()
        .map(|&t| {
            if symmetric {
                (-t * absmax, t * absmax)
            } else {
                (t * min, t * max)
            }
        })
        .collect();
    let sse = evaluate(coarse_values, &coarse, cfg);
    let cn = coarse_values
        .iter()
        .filter(|x| x.is_finite())
        .count()
        .max(1) as f64;
    let curve_mse: Vec<f64> = sse.iter().map(|s| s / cn).collect();
    let k = argmin(&sse);
    let t = ts.get(k).copied().unwrap_or(1.0);
    cancel.check()?;
    let (lo, hi, best) = if symmetric {
        let (a, s) = refine(values, cfg, t * absmax, absmax / 100.0, 0.0, absmax, |a| {
            (-a, a)
        });
        (-a, a, s)
    } else {
        let (mut lo, mut hi) = (t * min, t * max);
        let mut s = f64::INFINITY;
        let width = max - min;
        for _ in 0..3 {
            cancel.check()?;
            let (h, _) = refine(values, cfg, hi, width / 100.0, 0.0f64.min(max), max, |h| {
                (lo, h)
            });
            hi = h;
            let (l, sl) = refine(values, cfg, lo, width / 100.0, min, 0.0f64.max(min), |l| {
                (l, hi)
            });
            lo = l;
            s = sl;
        }
        (lo, hi, s)
    };
    Ok(Some(MseResult {
        lo,
        hi,
        mse: best / n,
        curve_hi: coarse.iter().map(|c| c.1).collect(),
        curve_lo: coarse.iter().map(|c| c.0).collect(),
        curve_mse,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::config::Preset;

    #[test]
    fn every_sse_kernel_gives_the_scalar_bits() {
        use crate::quant::config::Rounding;
        // Exact ties at S = 0.25 (the 0.125 steps), NaN, ±Inf, subnormals, values far out of
        // every range, and pseudo-random values in between.
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let x: Vec<f32> = (0..3001)
            .map(|i| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                match i % 9 {
                    0 => (i % 200) as f32 * 0.125 - 12.5,
                    1 => f32::NAN,
                    2 if i % 2 == 0 => f32::INFINITY,
                    2 => f32::NEG_INFINITY,
                    3 => 1e-40,
                    4 => -3e5,
                    // Top 24 bits of the state as a fraction in [0, 1), scaled.
                    _ => ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 40.0,
                }
            })
            .collect();
        let mut isas = Vec::new();
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            isas.push(Isa::Avx512);
        }
        for preset in [Preset::OnnxRuntime, Preset::PyTorch] {
            for rounding in [None, Some(Rounding::HalfAway), Some(Rounding::HalfUp)] {
                for scheme in [Scheme::Symmetric, Scheme::Asymmetric] {
                    let cfg = QuantConfig {
                        scheme,
                        preset,
                        rounding,
                        ..QuantConfig::default()
                    };
                    // 1, 21, 100 and 130 candidates: one to four registers, and two groups.
                    for n in [1usize, 21, 100, 130] {
                        // With three or more: an empty range (the degenerate rule) and a
                        // tiny one (v far out of range) among them.
                        let ranges: Vec<(f64, f64)> = (1..=n)
                            .map(|k| match k {
                                2 if n > 2 => (0.0, 0.0),
                                3 if n > 2 => (-1e-30, 1e-30),
                                _ => {
                                    let t = k as f64 / n as f64;
                                    (-31.75 * t, 20.0 * t)
                                }
                            })
                            .collect();
                        // Near-ties of the first candidates' own scales: (j + 1/2) · S and a
                        // few ulps either side, where x · f32(1/S) and x / S can round apart;
                        // also alone, where no far-out value's error drowns a code one step
                        // off.
                        let mut ties = Vec::new();
                        for &(lo, hi) in ranges.iter().take(8) {
                            let scale = params_from_range(lo, hi, &cfg).scale;
                            for j in -20..20 {
                                let t = (j as f32 + 0.5) * scale;
                                let b = t.to_bits();
                                ties.extend([t, t.next_up(), t.next_down()]);
                                ties.extend((2..5).map(|u| f32::from_bits(b + u)));
                                ties.extend((2..5).map(|u| f32::from_bits(b.saturating_sub(u))));
                            }
                        }
                        let all: Vec<f32> = x.iter().chain(&ties).copied().collect();
                        for (what, x) in [("awkward values", &all), ("near-ties", &ties)] {
                            let reference = evaluate_with(Isa::Scalar, x, &ranges, &cfg);
                            assert!(reference.iter().all(|v| v.is_finite() && *v > 0.0));
                            let ref_bits: Vec<u64> =
                                reference.iter().map(|v| v.to_bits()).collect();
                            for &isa in &isas {
                                let got = evaluate_with(isa, x, &ranges, &cfg);
                                let bits: Vec<u64> = got.iter().map(|v| v.to_bits()).collect();
                                assert_eq!(
                                    bits, ref_bits,
                                    "{isa:?} {cfg:?} {n} candidates, {what}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// A straight port of NVIDIA's `_compute_amax_entropy` (numpy + scipy.stats.entropy),
    /// dense and literal, as the reference for the optimised version.
    fn reference_entropy(calib_hist: &[u64], edges: &[f32], num_bits: u32) -> f64 {
        let mut bins: Vec<f64> = calib_hist.iter().map(|&c| c as f64).collect();
        bins[0] = bins[1];
        let total_data: f64 = bins.iter().sum();
        let nbins = 1usize << (num_bits - 1);
        let stop = bins.len();
        let mut divergences = Vec::new();
        for i in nbins..=stop {
            let mut new_density_counts = vec![0.0f64; nbins];
            // space = np.linspace(0, i, nbins + 1); np.digitize(range(i), space) - 1
            let space: Vec<f64> = (0..=nbins)
                .map(|k| k as f64 * (i as f64 / nbins as f64))
                .collect();
            let mut digitized: Vec<i64> = (0..i)
                .map(|j| space.iter().filter(|&&e| e <= j as f64).count() as i64 - 1)
                .collect();
            for j in 0..i {
                if bins[j] == 0.0 {
                    digitized[j] = -1;
                }
            }
            for (idx, &d) in digitized.iter().enumerate() {
                if d != -1 {
                    new_density_counts[d as usize] += bins[idx];
                }
            }
            let mut counter = vec![0usize; nbins];
            for &d in &digitized {
                if d != -1 {
                    counter[d as usize] += 1;
                }
            }
            for key in 0..nbins {
                if counter[key] > 0 {
                    new_density_counts[key] /= counter[key] as f64;
                }
            }
            let mut new_density = vec![0.0f64; i];
            for (idx, &d) in digitized.iter().enumerate() {
                if d != -1 {
                    new_density[idx] = new_density_counts[d as usize];
                }
            }
            let mut reference_density: Vec<f64> = bins[..i].to_vec();
            let tail: f64 = bins[i..].iter().sum();
            reference_density[i - 1] += tail;
            assert_eq!(reference_density.iter().sum::<f64>(), total_data);
            // scipy.stats.entropy(pk, qk): normalise both, sum rel_entr.
            let sp: f64 = reference_density.iter().sum();
            let sq: f64 = new_density.iter().sum();
            let mut ent = 0.0;
            for (p, q) in reference_density.iter().zip(&new_density) {
                // An all-zero Q normalises to 0/0 = NaN, and scipy's rel_entr(p, NaN) is NaN.
                let (p, q) = (p / sp, q / sq);
                ent += if q.is_nan() {
                    f64::NAN
                } else if p > 0.0 && q > 0.0 {
                    p * (p / q).ln()
                } else if p == 0.0 {
                    0.0
                } else {
                    f64::INFINITY
                };
            }
            divergences.push(ent);
        }
        // last_argmin = len - 1 - np.argmin(reversed): np.argmin returns the first NaN if
        // there is one, else the first minimum; over the reversed list, the last of either.
        let reversed: Vec<f64> = divergences.iter().rev().copied().collect();
        let mut arg = 0;
        for (k, &d) in reversed.iter().enumerate() {
            if d.is_nan() {
                arg = k;
                break;
            }
            if d < reversed[arg] {
                arg = k;
            }
        }
        let best = divergences.len() - 1 - arg;
        f64::from(edges[best + nbins])
    }

    /// Deterministic pseudo-random normals (xorshift + Box–Muller).
    fn normals(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (u, v) = (next(), next());
                ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
            })
            .collect()
    }

    #[test]
    fn histogram_matches_stats_abs_histogram() {
        let mut x = normals(50_000, 7);
        x.push(f32::NAN);
        x.push(f32::INFINITY);
        // Values exactly on edges.
        let hi = 4.0f32;
        let edges = entropy_edges(hi, ENTROPY_BINS);
        x.extend_from_slice(&edges[..50]);
        x.retain(|v| !v.is_finite() || v.abs() <= hi);
        let ours = kl_histogram(&x, Side::Abs, hi, &Cancel::never()).expect("never cancelled");
        let theirs =
            stats::abs_histogram(&x, ENTROPY_BINS, f64::from(hi), &Cancel::never()).expect("hist");
        assert_eq!(ours, theirs.counts);
        assert_eq!(theirs.edges(), edges.as_slice());
        // Each side against the per-value numpy rule (Histogram::bin_of).
        for (side, pick) in [
            (
                Side::Positive,
                (|v: f32| (v > 0.0).then_some(v)) as fn(f32) -> Option<f32>,
            ),
            (Side::Negative, |v: f32| (v < 0.0).then_some(-v)),
        ] {
            let got = kl_histogram(&x, side, hi, &Cancel::never()).expect("never cancelled");
            let mut want = vec![0u64; ENTROPY_BINS];
            for m in x.iter().filter_map(|&v| pick(v)) {
                if let Some(i) = theirs.bin_of(f64::from(m)) {
                    want[i] += 1;
                }
            }
            assert_eq!(got, want, "{side:?}");
        }
    }

    #[test]
    fn entropy_matches_the_literal_reference_on_a_gaussian_with_outliers() {
        let mut x = normals(20_000, 3);
        x.extend_from_slice(&[9.0, -12.0, 15.5]);
        let r = entropy_amax_with_curve(&x, 8, &Cancel::never()).expect("never cancelled");
        let hi = 15.5f32;
        let counts = kl_histogram(&x, Side::Abs, hi, &Cancel::never()).expect("hist");
        let want = reference_entropy(&counts, &entropy_edges(hi, ENTROPY_BINS), 8);
        assert_eq!(r.amax, want);
        assert_eq!(r.candidates.len(), 2048 - 128 + 1);
        assert_eq!(r.kl.len(), r.candidates.len());
        // The threshold clips the outliers: well below 15.5, above the Gaussian bulk.
        assert!(r.amax < 12.0 && r.amax > 2.0, "{}", r.amax);
        // 4-bit too (8 groups, candidates from 8).
        let r4 = entropy_from_histogram(&counts, hi, 4);
        assert_eq!(
            r4.amax,
            reference_entropy(&counts, &entropy_edges(hi, ENTROPY_BINS), 4)
        );
    }

    #[test]
    fn entropy_hand_checked_small_case() {
        // 4 bins, 2 levels (bits = 2), hi = 4: edges [0, 1, 2, 3, 4].
        // counts [0, 2, 0, 2] → bins[0] := bins[1] → b = [2, 2, 0, 2], T = 6.
        // i = 2: P = [2, 2 + 2] = [2, 4], groups {0}, {1}: Q = [2, 2];
        //   KL = (2/6) ln((2/6)/(2/4)) + (4/6) ln((4/6)/(2/4)) = 0.0566330.
        // i = 3: b[2] = 0 but tail 2 > 0 → inf.
        // i = 4: groups floor(j*2/4): {0,1}, {2,3}; Q = [2, 2, 0, 2] = P → KL = 0.
        // Minimum at i = 4 → amax = edges[4] = 4.
        let counts = [0u64, 2, 0, 2];
        let r = entropy_from_histogram(&counts, 4.0, 2);
        assert_eq!(r.candidates, vec![2.0, 3.0, 4.0]);
        let want = (2.0f64 / 6.0) * ((2.0 / 6.0) / 0.5f64).ln()
            + (4.0 / 6.0) * ((4.0 / 6.0) / 0.5f64).ln();
        assert!((r.kl[0] - want).abs() < 1e-12, "{:?}", r.kl);
        assert!((want - 0.056_633).abs() < 1e-6);
        assert_eq!(r.kl[1], f64::INFINITY);
        assert_eq!(r.kl[2], 0.0);
        assert_eq!(r.amax, 4.0);
        assert_eq!(
            reference_entropy(&counts, &[0.0, 1.0, 2.0, 3.0, 4.0], 2),
            4.0
        );
        // Ties: counts [3, 3, 3, 3] give KL 0 at i = 2 and i = 4... i = 2 has a tail: P = [3, 9]
        // vs Q = [3, 3]; not a tie. Flat [1, 1, 1, 1] with bits 3 (4 levels, start 4): one
        // candidate, exact.
        let r = entropy_from_histogram(&[1, 1, 1, 1], 4.0, 3);
        assert_eq!((r.kl.clone(), r.amax), (vec![0.0], 4.0));
    }

    #[test]
    fn entropy_ties_pick_the_last_minimum() {
        // 8 bins, 2 levels: counts [5, 5, 5, 5, 5, 5, 5, 5]. i = 2..8; any i with no tail (i = 8)
        // gives KL 0, and no other does; now make two zero-KL candidates: with all mass in bins
        // < 4 and 4 levels, i = 4 (groups of 1) and i = 8 (groups of 2 with zero bins 4..8 as
        // their own groups) both reproduce P exactly.
        let counts = [5u64, 5, 5, 5, 0, 0, 0, 0];
        let r = entropy_from_histogram(&counts, 8.0, 3);
        let zeros: Vec<usize> =
            r.kl.iter()
                .enumerate()
                .filter(|(_, v)| **v == 0.0)
                .map(|(k, _)| k)
                .collect();
        assert!(zeros.len() >= 2, "{:?}", r.kl);
        assert_eq!(r.best, *zeros.last().expect("nonempty"));
        assert_eq!(
            r.amax,
            reference_entropy(&counts, &entropy_edges(8.0, 8), 3)
        );
    }

    #[test]
    fn entropy_replicates_nvidia_when_all_mass_is_above_the_first_candidates() {
        // 2048 bins on [0, 2048]: edges[i] = i exactly. Mass only in bins 300 (10 values) and
        // 1000 (5 values); bins[0] := bins[1] = 0. For every candidate i <= 300 the kept bins
        // 0..i are all empty, so Q sums to 0, NVIDIA's _normalize_distr gives 0/0 = NaN and
        // scipy.stats.entropy returns NaN. np.argmin over the reversed KL list returns the
        // first NaN it meets, i.e. the LAST NaN candidate, i = 300 (bins 0..300 empty, bin 300
        // full). So NVIDIA's amax = edges[300] = 300: the left edge of the first non-empty bin.
        // (Skipping the NaNs would pick a finite-KL candidate instead: i = 301 keeps bin 300,
        // and i >= 1001 keeps everything.)
        let mut counts = vec![0u64; 2048];
        counts[300] = 10;
        counts[1000] = 5;
        let r = entropy_from_histogram(&counts, 2048.0, 8);
        let edges = entropy_edges(2048.0, 2048);
        assert_eq!(edges[300], 300.0);
        // Candidates i = 128..=300 are NaN (indices 0..=172), i = 301 is finite.
        assert!(r.kl[..=172].iter().all(|v| v.is_nan()), "{:?}", &r.kl[..4]);
        assert!(r.kl[173].is_finite(), "{}", r.kl[173]);
        assert_eq!(r.best, 172);
        assert_eq!(r.amax, 300.0);
        assert_eq!(reference_entropy(&counts, &edges, 8), 300.0);
        // Through the whole calibrator: values 0.38.. (all in the upper bins) as in a
        // LayerNorm weight: amax is the left edge of the first non-empty bin, below min|x|.
        let x: Vec<f32> = (0..1000).map(|k| 0.38 + k as f32 * 0.001).collect();
        let r = entropy_amax_with_curve(&x, 8, &Cancel::never()).expect("ok");
        let hi = side_max(&x, Side::Abs);
        let counts = kl_histogram(&x, Side::Abs, hi, &Cancel::never()).expect("ok");
        let first = counts.iter().position(|&c| c > 0).expect("non-empty");
        assert!(first > 128);
        let edges = entropy_edges(hi, ENTROPY_BINS);
        assert_eq!(r.amax, f64::from(edges[first]));
        assert!(r.amax <= 0.38, "{}", r.amax);
        assert_eq!(r.amax, reference_entropy(&counts, &edges, 8));
    }

    #[test]
    fn entropy_asymmetric_uses_both_sides() {
        let mut x: Vec<f32> = normals(20_000, 11).iter().map(|v| v.abs() * 2.0).collect();
        x.extend(normals(5_000, 12).iter().map(|v| -v.abs() * 0.5));
        let ((lo, hi), curves) =
            entropy_range(&x, 8, Scheme::Asymmetric, &Cancel::never()).expect("ok");
        assert_eq!(curves.len(), 2);
        assert!(lo < 0.0 && lo > -3.0 && hi > 2.0, "{lo} {hi}");
        assert_eq!(hi, curves[0].amax);
        assert_eq!(lo, -curves[1].amax);
        // 16 bits: lossless at every candidate from 2048 → amax = max.
        let r = entropy_amax_with_curve(&x, 16, &Cancel::never()).expect("ok");
        assert_eq!(r.amax, f64::from(side_max(&x, Side::Abs)));
    }

    #[test]
    fn percentile_ranges() {
        // numpy.percentile([-0.2, 0.1, 0.3, 5.0], [1, 99]) = [-0.191, 4.856]: virtual index
        // 3 * 0.01 = 0.03 → -0.2 + 0.3 * 0.03 = -0.191; 3 * 0.99 = 2.97 → 0.3 + 4.7 * 0.97.
        let x = [-0.2f32, 0.1, 0.3, 5.0];
        let (lo, hi) = percentile_range(&x, 99.0, Scheme::Asymmetric).expect("finite");
        assert!((lo - (-0.191)).abs() < 1e-6, "{lo}");
        assert!((hi - 4.859).abs() < 1e-6, "{hi}");
        // 100 → the observed range exactly.
        let (lo, hi) = percentile_range(&x, 100.0, Scheme::Asymmetric).expect("finite");
        assert_eq!((lo, hi), (f64::from(-0.2f32), 5.0));
        // Symmetric: P(p) of |x| = [0.1, 0.2, 0.3, 5.0].
        let (lo, hi) = percentile_range(&x, 50.0, Scheme::Symmetric).expect("finite");
        assert!((hi - 0.25).abs() < 1e-7 && lo == -hi, "{hi}");
        assert_eq!(percentile_range(&[f32::NAN], 99.0, Scheme::Symmetric), None);
    }

    /// Brute-force MSE over a fine grid of ranges.
    fn brute_force(values: &[f32], cfg: &QuantConfig) -> f64 {
        let (min, max) = minmax_range(values).expect("finite");
        let (min, max) = (f64::from(min), f64::from(max));
        let n = values.len() as f64;
        let grid: Vec<(f64, f64)> = if cfg.scheme == Scheme::Symmetric {
            let a = min.abs().max(max.abs());
            (1..=2000)
                .map(|k| f64::from(k) / 2000.0 * a)
                .map(|t| (-t, t))
                .collect()
        } else {
            let mut g = Vec::new();
            for i in 1..=120 {
                for j in 1..=120 {
                    g.push((min * f64::from(i) / 120.0, max * f64::from(j) / 120.0));
                }
            }
            g
        };
        evaluate(values, &grid, cfg)
            .iter()
            .fold(f64::INFINITY, |a, &b| a.min(b))
            / n
    }

    #[test]
    fn mse_is_within_one_percent_of_brute_force() {
        let mut x = normals(4_000, 5);
        x.extend_from_slice(&[8.0, -6.5]);
        for (scheme, preset, bits) in [
            (Scheme::Symmetric, Preset::OnnxRuntime, 8),
            (Scheme::Symmetric, Preset::PyTorch, 4),
            (Scheme::Asymmetric, Preset::OnnxRuntime, 4),
            (Scheme::Asymmetric, Preset::Textbook, 8),
        ] {
            let cfg = QuantConfig {
                bits,
                scheme,
                preset,
                ..QuantConfig::default()
            };
            let r = mse_range(&x, &cfg, &Cancel::never())
                .expect("ok")
                .expect("finite");
            let bf = brute_force(&x, &cfg);
            // The reported MSE is the real MSE of the reported range.
            let real = evaluate(&x, &[(r.lo, r.hi)], &cfg)[0] / x.len() as f64;
            assert!((real - r.mse).abs() <= 1e-12 * real, "{real} {}", r.mse);
            assert!(
                r.mse <= bf * 1.01,
                "{scheme:?} {preset:?} {bits}: {} vs brute {}",
                r.mse,
                bf
            );
            // Clipping the outliers beats minmax.
            let full = evaluate(&x, &[(-8.0, 8.0)], &cfg)[0] / x.len() as f64;
            assert!(r.mse < full);
            assert_eq!(r.curve_mse.len(), 100);
        }
    }
}
