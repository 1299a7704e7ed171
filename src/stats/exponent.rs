//! Exponent histogram of `f32` values and, per narrower float format, how many values would
//! overflow, become subnormal or flush to zero when converted with round-to-nearest-even.

use rayon::prelude::*;
use serde::Serialize;

use super::CHUNK_LEN;
use crate::cancel::{Cancel, Cancelled};
use crate::float::FormatId;

/// Exponent `floor(log2|x|)` of the smallest positive f32 subnormal, 2^-149.
pub const MIN_F32_EXPONENT: i32 = -149;
/// Exponent of the largest finite f32 values, [2^127, 2^128).
pub const MAX_F32_EXPONENT: i32 = 127;
/// Number of exponent bins, -149..=127.
// The range has 277 values: the cast of a small positive constant is exact.
const EXPONENT_BINS: usize = (MAX_F32_EXPONENT - MIN_F32_EXPONENT + 1) as usize;

const F32_ABS_MASK: u32 = 0x7FFF_FFFF;
const F32_INF_BITS: u32 = 0x7F80_0000;
/// Magnitude bits of the smallest f32 normal, 2^-126.
const F32_MIN_NORMAL_BITS: u32 = 0x0080_0000;

/// f32 bits of 2^k, for -149 <= k <= 127 (subnormal patterns below 2^-126).
const fn pow2_bits(k: i32) -> u32 {
    if k >= -126 {
        // The biased exponent k + 127 is in 1..=254.
        ((k + 127) as u32) << 23
    } else {
        // 2^k = 2^(k + 149) * 2^-149: a subnormal with one mantissa bit.
        1u32 << (k + 149)
    }
}

/// f32 bits of 2^a - 2^b (b < a), exact in f32 for every use below.
const fn pow2_diff_bits(a: i32, b: i32) -> u32 {
    (f32::from_bits(pow2_bits(a)) - f32::from_bits(pow2_bits(b))).to_bits()
}

/// Where a format's RNE conversion changes behaviour, as f32 magnitude bit patterns (monotone
/// in the magnitude for non-negative floats, so comparisons on bits are comparisons on |x|).
///
/// With `m` mantissa bits, min normal `2^e`, min subnormal `s = 2^(e - m)` and max finite
/// `M` whose ulp is `u`:
/// - zero: `|x| <= s/2`. The tie at exactly `s/2` goes to 0, whose mantissa is even
///   (`s` has mantissa 1, odd).
/// - subnormal: `s/2 < |x| < 2^e - s/2`. The tie at `2^e - s/2` goes up to the min normal
///   (mantissa 0, even), away from the largest subnormal (mantissa all ones, odd).
/// - overflow: `|x| >= M + u/2` when `M`'s mantissa is odd (all ones: FP16, BF16, E5M2, where
///   the tie rounds up past `M`), `|x| > M + u/2` when it is even (E4M3FN: `M` = 448 has
///   mantissa 110, so the tie at 464 rounds back to 448).
#[derive(Debug, Clone, Copy)]
struct Thresholds {
    format: FormatId,
    /// Largest magnitude that rounds to zero.
    zero_max_bits: u32,
    /// Smallest magnitude that rounds to a normal value.
    normal_min_bits: u32,
    /// Smallest magnitude that overflows.
    overflow_min_bits: u32,
}

/// The RNE thresholds of NUMERICS.md §1, one row per target format.
const THRESHOLDS: [Thresholds; 4] = [
    // FP16: e = -14, m = 10, s = 2^-24; M = 65504 (0x7BFF, mantissa all ones), u = 32:
    // overflow from 65520 = 0x477FF000.
    Thresholds {
        format: FormatId::Fp16,
        zero_max_bits: pow2_bits(-25),
        normal_min_bits: pow2_diff_bits(-14, -25),
        overflow_min_bits: 65520.0f32.to_bits(),
    },
    // BF16: e = -126, m = 7, s = 2^-133; M = 0x7F7F (mantissa all ones), u = 2^120: overflow
    // from M + 2^119, the f32 pattern 0x7F7F8000 (3.3961775e38).
    Thresholds {
        format: FormatId::Bf16,
        zero_max_bits: pow2_bits(-134),
        normal_min_bits: pow2_diff_bits(-126, -134),
        overflow_min_bits: 0x7F7F_8000,
    },
    // FP8 E4M3FN: e = -6, m = 3, s = 2^-9; M = 448 = 1.75 * 2^8 (mantissa 110, even), u = 32:
    // only values above 464 overflow, so the threshold is the next f32 after 464.
    Thresholds {
        format: FormatId::Fp8E4m3,
        zero_max_bits: pow2_bits(-10),
        normal_min_bits: pow2_diff_bits(-6, -10),
        overflow_min_bits: 464.0f32.to_bits() + 1,
    },
    // FP8 E5M2: e = -14, m = 2, s = 2^-16; M = 57344 = 1.75 * 2^15 (mantissa 11, odd),
    // u = 8192: overflow from 61440.
    Thresholds {
        format: FormatId::Fp8E5m2,
        zero_max_bits: pow2_bits(-17),
        normal_min_bits: pow2_diff_bits(-14, -17),
        overflow_min_bits: 61440.0f32.to_bits(),
    },
];

/// What converting the finite non-zero values to one narrower format would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FormatRangeCounts {
    /// The target format.
    pub format: FormatId,
    /// Values whose magnitude rounds above the format's max finite (they become Inf, NaN or
    /// ±max depending on the overflow setting).
    pub overflow: u64,
    /// Values that round to a non-zero subnormal of the format.
    pub subnormal: u64,
    /// Non-zero values that round to zero (underflow).
    pub underflow_to_zero: u64,
}

/// Histogram of the binary exponents of the finite non-zero values of an `f32` slice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExponentHistogram {
    /// The exponent of `counts[0]`: always [`MIN_F32_EXPONENT`] (-149).
    pub min_exponent: i32,
    /// `counts[i]` is the number of finite non-zero values with `floor(log2|x|)` equal to
    /// `min_exponent + i`; 277 bins covering -149..=127, f32 subnormals included.
    pub counts: Vec<u64>,
    /// Number of zeros (either sign).
    pub zero_count: u64,
    /// Number of f32 subnormals (exponents -149..=-127).
    pub f32_subnormal_count: u64,
    /// Number of NaN values.
    pub nan_count: u64,
    /// Number of ±Inf values.
    pub inf_count: u64,
    /// Per target format (FP16, BF16, FP8 E4M3FN, FP8 E5M2, in that order): overflow,
    /// subnormal and underflow counts over the finite non-zero values under RNE.
    pub formats: Vec<FormatRangeCounts>,
}

impl ExponentHistogram {
    /// Count of values with exponent `exponent` (0 outside -149..=127).
    pub fn count_at(&self, exponent: i32) -> u64 {
        usize::try_from(exponent - self.min_exponent)
            .ok()
            .and_then(|i| self.counts.get(i).copied())
            .unwrap_or(0)
    }

    /// The counts for one target format, if it is one of the four listed.
    pub fn format(&self, format: FormatId) -> Option<&FormatRangeCounts> {
        self.formats.iter().find(|f| f.format == format)
    }

    /// Number of finite non-zero values (the sum of `counts`).
    pub fn nonzero_count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// `floor(log2|x|)` for a finite non-zero `x`, exact from the bits (subnormals included);
/// `None` for zero, NaN and ±Inf.
pub fn f32_exponent(x: f32) -> Option<i32> {
    let abs = x.to_bits() & F32_ABS_MASK;
    (abs != 0 && abs < F32_INF_BITS).then(|| exponent_of_abs_bits(abs))
}

/// Exponent of a finite non-zero magnitude bit pattern.
#[inline]
fn exponent_of_abs_bits(abs: u32) -> i32 {
    if abs >= F32_MIN_NORMAL_BITS {
        // The biased exponent field is at most 254: the cast is exact.
        (abs >> 23) as i32 - 127
    } else {
        // A subnormal is M * 2^-149 with 1 <= M < 2^23, so floor(log2) = -149 + bit index of M;
        // leading_zeros is at most 31, the cast is exact.
        MIN_F32_EXPONENT + (31 - abs.leading_zeros() as i32)
    }
}

/// Per-thread accumulator.
#[derive(Debug, Clone)]
struct Tally {
    counts: [u64; EXPONENT_BINS],
    zero: u64,
    nan: u64,
    inf: u64,
    /// Per row of `THRESHOLDS`: overflow, subnormal, underflow.
    formats: [[u64; 3]; 4],
}

impl Tally {
    fn new() -> Self {
        Tally {
            counts: [0; EXPONENT_BINS],
            zero: 0,
            nan: 0,
            inf: 0,
            formats: [[0; 3]; 4],
        }
    }

    fn add(&mut self, chunk: &[f32]) {
        for &x in chunk {
            let abs = x.to_bits() & F32_ABS_MASK;
            if abs >= F32_INF_BITS {
                self.inf += u64::from(abs == F32_INF_BITS);
                self.nan += u64::from(abs != F32_INF_BITS);
                continue;
            }
            if abs == 0 {
                self.zero += 1;
                continue;
            }
            let bin = exponent_of_abs_bits(abs) - MIN_F32_EXPONENT;
            if let Some(c) = usize::try_from(bin)
                .ok()
                .and_then(|i| self.counts.get_mut(i))
            {
                *c += 1;
            }
            for (t, f) in THRESHOLDS.iter().zip(self.formats.iter_mut()) {
                f[0] += u64::from(abs >= t.overflow_min_bits);
                f[1] += u64::from(abs > t.zero_max_bits && abs < t.normal_min_bits);
                f[2] += u64::from(abs <= t.zero_max_bits);
            }
        }
    }

    fn merge(mut self, other: Tally) -> Tally {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
        self.zero += other.zero;
        self.nan += other.nan;
        self.inf += other.inf;
        for (a, b) in self.formats.iter_mut().zip(other.formats) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self
    }
}

/// Exponent histogram of `values` plus per-format overflow/subnormal/underflow counts.
///
/// Parallel in chunks with integer counts, so identical for any thread count. Reports progress
/// in elements on `cancel`; `Err(Cancelled)` if cancelled between chunks.
pub fn exponent_histogram(values: &[f32], cancel: &Cancel) -> Result<ExponentHistogram, Cancelled> {
    // usize fits in u64 on every supported target.
    cancel.add_total(values.len() as u64);
    let total = values
        .par_chunks(CHUNK_LEN)
        .try_fold(Tally::new, |mut acc, chunk| {
            cancel.check()?;
            acc.add(chunk);
            cancel.add_done(chunk.len() as u64);
            Ok::<Tally, Cancelled>(acc)
        })
        .try_reduce(Tally::new, |a, b| Ok(a.merge(b)))?;
    let f32_subnormal_count = total
        .counts
        .iter()
        .take(usize::try_from(-126 - MIN_F32_EXPONENT).unwrap_or(0))
        .sum();
    Ok(ExponentHistogram {
        min_exponent: MIN_F32_EXPONENT,
        counts: total.counts.to_vec(),
        zero_count: total.zero,
        f32_subnormal_count,
        nan_count: total.nan,
        inf_count: total.inf,
        formats: THRESHOLDS
            .iter()
            .zip(total.formats)
            .map(
                |(t, [overflow, subnormal, underflow_to_zero])| FormatRangeCounts {
                    format: t.format,
                    overflow,
                    subnormal,
                    underflow_to_zero,
                },
            )
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::float::{FloatClass, FloatFormat, Overflow};

    #[test]
    fn exponents_from_bits() {
        assert_eq!(f32_exponent(1.0), Some(0));
        assert_eq!(f32_exponent(-0.75), Some(-1));
        assert_eq!(f32_exponent(3.0), Some(1));
        assert_eq!(f32_exponent(f32::MAX), Some(127));
        assert_eq!(f32_exponent(f32::MIN_POSITIVE), Some(-126));
        // Largest subnormal (2^-126 - 2^-149) and the smallest (2^-149).
        assert_eq!(f32_exponent(f32::from_bits(0x007F_FFFF)), Some(-127));
        assert_eq!(f32_exponent(f32::from_bits(1)), Some(-149));
        // 3 * 2^-149: floor(log2 3) = 1.
        assert_eq!(f32_exponent(f32::from_bits(3)), Some(-148));
        assert_eq!(f32_exponent(0.0), None);
        assert_eq!(f32_exponent(f32::NAN), None);
        assert_eq!(f32_exponent(f32::NEG_INFINITY), None);
    }

    fn format_of(id: FormatId) -> FloatFormat {
        FloatFormat::ALL
            .into_iter()
            .find(|f| f.id == id)
            .unwrap_or_else(|| panic!("{id:?} missing"))
    }

    /// The class RNE conversion gives, with overflow to Inf/NaN so that overflow is visible.
    fn converted_class(id: FormatId, abs_bits: u32) -> FloatClass {
        let f = format_of(id);
        f.classify(f.encode(f32::from_bits(abs_bits), Overflow::NonFinite))
    }

    #[test]
    fn thresholds_agree_with_the_float_module_encoder() {
        // Each threshold and its f32 neighbours, converted by crate::float (which the float tests
        // check against `half` and every FP8 code), must fall on the stated side.
        for t in THRESHOLDS {
            let id = t.format;
            assert_eq!(
                converted_class(id, t.zero_max_bits),
                FloatClass::Zero,
                "{id:?}"
            );
            assert_eq!(
                converted_class(id, t.zero_max_bits + 1),
                FloatClass::Subnormal
            );
            assert_eq!(
                converted_class(id, t.normal_min_bits - 1),
                FloatClass::Subnormal
            );
            assert_eq!(
                converted_class(id, t.normal_min_bits),
                FloatClass::Normal,
                "{id:?}"
            );
            assert_eq!(
                converted_class(id, t.overflow_min_bits - 1),
                FloatClass::Normal
            );
            let over = converted_class(id, t.overflow_min_bits);
            assert!(
                matches!(over, FloatClass::Infinite | FloatClass::Nan),
                "{id:?}"
            );
        }
    }

    #[test]
    fn counts_per_format_and_the_seed_examples() {
        // 1e8 (10000 * 10000) overflows FP16 but not BF16; 1e-8 underflows FP16 (below
        // 2^-25) but is a BF16 normal; 1e-6 is an FP16 subnormal; 500 overflows E4M3 only.
        let x = [
            1e8f32,
            1e-8,
            1e-6,
            500.0,
            0.0,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            1.0,
        ];
        let h = exponent_histogram(&x, &Cancel::never()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((h.zero_count, h.nan_count, h.inf_count), (2, 1, 1));
        assert_eq!(h.nonzero_count(), 5);
        // 1e8 is in [2^26, 2^27); 500 in [2^8, 2^9).
        assert_eq!((h.count_at(26), h.count_at(8), h.count_at(0)), (1, 1, 1));
        let fp16 = h.format(FormatId::Fp16).copied();
        let counts = |f: Option<FormatRangeCounts>| {
            f.map(|c| (c.overflow, c.subnormal, c.underflow_to_zero))
        };
        assert_eq!(counts(fp16), Some((1, 1, 1)));
        assert_eq!(counts(h.format(FormatId::Bf16).copied()), Some((0, 0, 0)));
        // E4M3: 1e8 and 500 overflow; 1e-6, 1e-8 are below 2^-10 and flush to zero.
        assert_eq!(
            counts(h.format(FormatId::Fp8E4m3).copied()),
            Some((2, 0, 2))
        );
        // E5M2: 1e8 overflows; 1e-6 and 1e-8 are below 2^-17 (7.6e-6) and flush to zero.
        assert_eq!(
            counts(h.format(FormatId::Fp8E5m2).copied()),
            Some((1, 0, 2))
        );
    }

    #[test]
    fn f32_subnormals_are_binned_and_counted() {
        let x = [
            f32::from_bits(1),
            f32::from_bits(0x0040_0000),
            f32::MIN_POSITIVE,
        ];
        let h = exponent_histogram(&x, &Cancel::never()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (h.count_at(-149), h.count_at(-127), h.count_at(-126)),
            (1, 1, 1)
        );
        assert_eq!(h.f32_subnormal_count, 2);
        assert_eq!(h.counts.len(), 277);
    }
}
