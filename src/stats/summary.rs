//! One-pass summary of an `f32` slice: counts by class, min, max, mean, std and absmax.

use rayon::prelude::*;
use serde::Serialize;

use super::CHUNK_LEN;
use super::minmax::row_minmax;
use crate::cancel::{Cancel, Cancelled};

/// Bits of `f32` +Inf; a value whose magnitude bits are below this is finite.
const F32_INF_BITS: u32 = 0x7F80_0000;
/// Mask that clears the sign bit of an `f32` bit pattern.
const F32_ABS_MASK: u32 = 0x7FFF_FFFF;
/// Largest `f32` subnormal magnitude bit pattern (all mantissa bits set, exponent 0).
const F32_MAX_SUBNORMAL_BITS: u32 = 0x007F_FFFF;
/// Independent accumulators in the inner loops, so they vectorise and hide add latency.
const LANES: usize = 8;

/// Statistics of a slice, over its finite values, with the non-finite values counted apart.
///
/// `min`, `max`, `mean` and `std` are `None` when there is no finite value (`count == 0`);
/// they serialise as JSON `null`. `absmax` is `0.0` in that case.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Number of finite values (zeros and subnormals included).
    pub count: u64,
    /// Number of NaN values (any payload, either sign).
    pub nan_count: u64,
    /// Number of +Inf values.
    pub pos_inf_count: u64,
    /// Number of -Inf values.
    pub neg_inf_count: u64,
    /// Number of zeros (+0.0 and -0.0).
    pub zero_count: u64,
    /// Number of `f32` subnormal values (non-zero, magnitude below 2^-126).
    pub subnormal_count: u64,
    /// Smallest finite value.
    pub min: Option<f64>,
    /// Largest finite value.
    pub max: Option<f64>,
    /// Mean of the finite values, accumulated in f64.
    pub mean: Option<f64>,
    /// Population standard deviation (ddof = 0, numpy's default) of the finite values.
    pub std: Option<f64>,
    /// Largest finite magnitude, `max(|min|, |max|)`; `0.0` when there is no finite value.
    pub absmax: f64,
}

impl Summary {
    /// Number of elements summarised, finite or not.
    pub fn len(&self) -> u64 {
        self.count + self.nan_count + self.pos_inf_count + self.neg_inf_count
    }

    /// Whether the summarised slice was empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of non-finite values (NaN and ±Inf).
    pub fn nonfinite_count(&self) -> u64 {
        self.nan_count + self.pos_inf_count + self.neg_inf_count
    }
}

/// The partial summary of one chunk; partials combine with Chan's parallel update.
#[derive(Debug, Clone, Copy)]
struct Partial {
    len: u64,
    count: u64,
    pos_inf: u64,
    neg_inf: u64,
    zero: u64,
    subnormal: u64,
    min: f32,
    max: f32,
    mean: f64,
    m2: f64,
}

impl Partial {
    const EMPTY: Partial = Partial {
        len: 0,
        count: 0,
        pos_inf: 0,
        neg_inf: 0,
        zero: 0,
        subnormal: 0,
        min: f32::INFINITY,
        max: f32::NEG_INFINITY,
        mean: 0.0,
        m2: 0.0,
    };

    /// Chan, Golub and LeVeque's pairwise update of count, mean and sum of squared deviations.
    fn merge(self, other: Partial) -> Partial {
        let count = self.count + other.count;
        let (mean, m2) = if self.count == 0 {
            (other.mean, other.m2)
        } else if other.count == 0 {
            (self.mean, self.m2)
        } else {
            // Counts above 2^53 lose precision as f64; a relative error of 1e-16 in a weight
            // is far below the rounding of the sums themselves.
            let (na, nb, n) = (self.count as f64, other.count as f64, count as f64);
            let delta = other.mean - self.mean;
            (
                self.mean + delta * (nb / n),
                self.m2 + other.m2 + delta * delta * (na * nb / n),
            )
        };
        Partial {
            len: self.len + other.len,
            count,
            pos_inf: self.pos_inf + other.pos_inf,
            neg_inf: self.neg_inf + other.neg_inf,
            zero: self.zero + other.zero,
            subnormal: self.subnormal + other.subnormal,
            min: if other.min < self.min {
                other.min
            } else {
                self.min
            },
            max: if other.max > self.max {
                other.max
            } else {
                self.max
            },
            mean,
            m2,
        }
    }

    fn into_summary(self) -> Summary {
        let has_values = self.count > 0;
        let some = |v: f64| has_values.then_some(v);
        // Precision loss above 2^53 values is harmless here, as in `merge`.
        let variance = if has_values {
            self.m2 / self.count as f64
        } else {
            0.0
        };
        Summary {
            count: self.count,
            nan_count: self.len - self.count - self.pos_inf - self.neg_inf,
            pos_inf_count: self.pos_inf,
            neg_inf_count: self.neg_inf,
            zero_count: self.zero,
            subnormal_count: self.subnormal,
            min: some(f64::from(self.min)),
            max: some(f64::from(self.max)),
            mean: some(self.mean),
            std: some(variance.max(0.0).sqrt()),
            absmax: if has_values {
                f64::from(self.min.abs().max(self.max.abs()))
            } else {
                0.0
            },
        }
    }
}

/// Summarises one chunk (at most [`CHUNK_LEN`] elements, so u32 lane counters cannot overflow):
/// one pass for counts, range and sum, then a second pass over the cached chunk for the sum of
/// squared deviations from the chunk mean (the two-pass form is exact-er than sum of squares).
fn partial_of(chunk: &[f32]) -> Partial {
    let mut count = [0u32; LANES];
    let mut pos_inf = [0u32; LANES];
    let mut neg_inf = [0u32; LANES];
    let mut zero = [0u32; LANES];
    let mut subnormal = [0u32; LANES];
    let mut min = [f32::INFINITY; LANES];
    let mut max = [f32::NEG_INFINITY; LANES];
    let mut sum = [0.0f64; LANES];

    let mut lane = |j: usize, x: f32| {
        let bits = x.to_bits();
        let abs = bits & F32_ABS_MASK;
        let finite = abs < F32_INF_BITS;
        count[j] += u32::from(finite);
        pos_inf[j] += u32::from(bits == F32_INF_BITS);
        neg_inf[j] += u32::from(bits == (F32_INF_BITS | !F32_ABS_MASK));
        zero[j] += u32::from(abs == 0);
        // abs - 1 wraps for zero, so this is 1 <= abs <= max subnormal.
        subnormal[j] += u32::from(abs.wrapping_sub(1) < F32_MAX_SUBNORMAL_BITS);
        let lo = if finite { x } else { f32::INFINITY };
        let hi = if finite { x } else { f32::NEG_INFINITY };
        min[j] = if lo < min[j] { lo } else { min[j] };
        max[j] = if hi > max[j] { hi } else { max[j] };
        sum[j] += if finite { f64::from(x) } else { 0.0 };
    };
    let (blocks, tail) = chunk.as_chunks::<LANES>();
    for block in blocks {
        for (j, &x) in block.iter().enumerate() {
            lane(j, x);
        }
    }
    for &x in tail {
        lane(0, x);
    }

    let finite_count: u64 = count.iter().map(|&c| u64::from(c)).sum();
    let total: f64 = sum.iter().sum();
    // At most CHUNK_LEN values: exact in f64.
    let mean = if finite_count > 0 {
        total / finite_count as f64
    } else {
        0.0
    };

    let mut m2 = [0.0f64; LANES];
    let mut dev = |j: usize, x: f32| {
        let finite = (x.to_bits() & F32_ABS_MASK) < F32_INF_BITS;
        let d = if finite { f64::from(x) - mean } else { 0.0 };
        m2[j] += d * d;
    };
    if finite_count > 0 {
        for block in blocks {
            for (j, &x) in block.iter().enumerate() {
                dev(j, x);
            }
        }
        for &x in tail {
            dev(0, x);
        }
    }

    let fold_min = min
        .iter()
        .fold(f32::INFINITY, |m, &v| if v < m { v } else { m });
    let fold_max = max
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    let widen = |a: [u32; LANES]| a.iter().map(|&c| u64::from(c)).sum::<u64>();
    Partial {
        // usize fits in u64 on every supported target.
        len: chunk.len() as u64,
        count: finite_count,
        pos_inf: widen(pos_inf),
        neg_inf: widen(neg_inf),
        zero: widen(zero),
        subnormal: widen(subnormal),
        min: fold_min,
        max: fold_max,
        mean,
        m2: m2.iter().sum(),
    }
}

/// Summarises `values` over their finite values, in parallel.
///
/// Deterministic: chunks of [`CHUNK_LEN`] are summarised independently and combined in order
/// with Chan's update (sums in f64), so the result is bit-identical for any thread count.
/// Empty and all-NaN slices give `count == 0` and `None` statistics. Reports progress in
/// elements on `cancel` and returns `Err(Cancelled)` if it is cancelled between chunks.
pub fn summarize(values: &[f32], cancel: &Cancel) -> Result<Summary, Cancelled> {
    // usize fits in u64 on every supported target.
    cancel.add_total(values.len() as u64);
    let partials = values
        .par_chunks(CHUNK_LEN)
        .map(|chunk| {
            cancel.check()?;
            let partial = partial_of(chunk);
            cancel.add_done(partial.len);
            Ok(partial)
        })
        .collect::<Result<Vec<Partial>, Cancelled>>()?;
    let total = partials
        .into_iter()
        .fold(Partial::EMPTY, |acc, p| acc.merge(p));
    Ok(total.into_summary())
}

/// Smallest and largest finite values of `values`, or `None` when there is none.
///
/// A cheaper pass than [`summarize`] for callers that only need the range.
pub fn finite_min_max(values: &[f32], cancel: &Cancel) -> Result<Option<(f32, f32)>, Cancelled> {
    let ranges = values
        .par_chunks(CHUNK_LEN)
        .map(|chunk| {
            cancel.check()?;
            Ok(row_minmax(chunk))
        })
        .collect::<Result<Vec<Option<(f32, f32)>>, Cancelled>>()?;
    let (lo, hi) = ranges
        .into_iter()
        .flatten()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), (c, d)| {
            (if c < a { c } else { a }, if d > b { d } else { b })
        });
    Ok((lo <= hi).then_some((lo, hi)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(x: &[f32]) -> Summary {
        summarize(x, &Cancel::never()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn known_values() {
        // mean 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, / 4 = 1.25 (ddof = 0).
        let s = summary(&[1.0, 2.0, 3.0, -4.0]);
        assert_eq!(s.count, 4);
        assert_eq!((s.min, s.max), (Some(-4.0), Some(3.0)));
        assert_eq!(s.mean, Some(0.5));
        // Deviations from 0.5: 0.25 + 2.25 + 6.25 + 20.25 = 29, / 4 = 7.25.
        assert_eq!(s.std, Some(7.25f64.sqrt()));
        assert_eq!(s.absmax, 4.0);
    }

    #[test]
    fn classes_are_counted_apart() {
        let tiny = f32::from_bits(1); // 2^-149, the smallest subnormal
        let x = [
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
            0.0,
            -0.0,
            tiny,
            -3.0,
        ];
        let s = summary(&x);
        assert_eq!(
            (s.count, s.nan_count, s.pos_inf_count, s.neg_inf_count),
            (4, 2, 1, 2)
        );
        assert_eq!((s.zero_count, s.subnormal_count), (2, 1));
        assert_eq!(
            (s.min, s.max, s.absmax),
            (Some(-3.0), Some(f64::from(tiny)), 3.0)
        );
        assert_eq!(s.len(), 9);
        assert_eq!(s.nonfinite_count(), 5);
    }

    #[test]
    fn empty_and_all_nan_have_no_statistics() {
        for x in [&[][..], &[f32::NAN, f32::NAN][..]] {
            let s = summary(x);
            assert_eq!(s.count, 0);
            assert_eq!((s.min, s.max, s.mean, s.std), (None, None, None, None));
            assert_eq!(s.absmax, 0.0);
        }
        let json = serde_json::to_string(&summary(&[])).unwrap_or_default();
        assert!(json.contains("\"mean\":null"), "{json}");
    }

    #[test]
    fn many_chunks_match_a_naive_two_pass() {
        // 3.5 chunks of a deterministic sawtooth with an offset (so the mean is not 0).
        let n = CHUNK_LEN * 7 / 2;
        let x: Vec<f32> = (0..n).map(|i| 1000.0 + (i % 977) as f32 * 0.25).collect();
        let s = summary(&x);
        let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
        let var = x
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        assert_eq!(s.count, n as u64);
        let got_mean = s.mean.unwrap_or(f64::NAN);
        let got_std = s.std.unwrap_or(f64::NAN);
        assert!(
            (got_mean - mean).abs() <= 1e-12 * mean.abs(),
            "{got_mean} vs {mean}"
        );
        assert!(
            (got_std - var.sqrt()).abs() <= 1e-12 * var.sqrt(),
            "{got_std}"
        );
        assert_eq!(
            finite_min_max(&x, &Cancel::never()),
            Ok(Some((1000.0, 1244.0)))
        );
    }

    #[test]
    fn cancelled_token_stops_the_kernel() {
        let c = Cancel::new();
        c.cancel();
        assert_eq!(summarize(&[1.0; 10], &c), Err(Cancelled));
        // An empty slice has no chunk to check between, and is valid.
        assert!(summarize(&[], &c).is_ok());
    }
}
