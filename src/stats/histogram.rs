//! Exact histograms with numpy.histogram's bin assignment, and histograms of integer codes.
//!
//! numpy, for a float32 array, builds float32 bin edges (`np.linspace(lo, hi, bins + 1)`,
//! computed in float64 for an explicit range given as Python floats, in float32 for a range
//! taken from the data), keeps values with `edges[0] <= x <= edges[bins]`, guesses the bin as
//! `trunc((x - lo) / (hi - lo) * bins)`, and then corrects the guess by one step against the
//! float32 edges: down if `x < edges[i]`, up if `x >= edges[i + 1]` (except in the last bin,
//! which includes its right edge). We build the same edges and apply the same correction, so
//! every value (including one exactly on an edge) lands where numpy puts it; only our guess is
//! computed differently (in f64, which is at least as close).

use rayon::prelude::*;
use serde::Serialize;

use super::summary::finite_min_max;
use super::{CHUNK_LEN, StatsError};
use crate::cancel::Cancel;

/// Largest bin count accepted by the histogram functions (16 Mi bins, 128 MiB of counts).
pub const MAX_BINS: usize = 1 << 24;

/// Largest code range `qmax - qmin + 1` that [`code_histogram`] counts.
pub const MAX_CODE_BINS: usize = 1 << 24;

/// What a histogram counts of each value x: x itself, |x|, or one side's magnitude (x for
/// x > 0, −x for x < 0; the other values are left out and counted as non-finite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Magnitude {
    /// x.
    Identity,
    /// |x|.
    Abs,
    /// x where x > 0.
    Positive,
    /// −x where x < 0.
    Negative,
}

impl Magnitude {
    /// The value counted for `x` (NaN leaves it out).
    #[inline(always)]
    pub fn of(self, x: f32) -> f32 {
        match self {
            Magnitude::Identity => x,
            Magnitude::Abs => x.abs(),
            Magnitude::Positive if x > 0.0 => x,
            Magnitude::Negative if x < 0.0 => -x,
            Magnitude::Positive | Magnitude::Negative => f32::NAN,
        }
    }
}

/// A histogram of the finite values of a slice over `bins` equal bins on `[lo, hi]`.
///
/// Bins are half-open `[a, b)` except the last, which includes `hi`. `counts` sums to the
/// number of finite values inside the range; `below`, `above` and `nonfinite` count the rest,
/// so `total() + below + above + nonfinite` is the slice length.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Histogram {
    /// Lower end of the range as requested (bin assignment uses `bin_edges(0).0`, which is this
    /// value rounded to f32, as numpy does for float32 data).
    pub lo: f64,
    /// Upper end of the range as requested (assignment uses it rounded to f32).
    pub hi: f64,
    /// Number of values in each bin.
    pub counts: Vec<u64>,
    /// Finite values below the first edge.
    pub below: u64,
    /// Finite values above the last edge.
    pub above: u64,
    /// NaN and ±Inf values, never binned.
    pub nonfinite: u64,
    /// The `bins + 1` float32 edges used for assignment (numpy's `bin_edges`).
    #[serde(skip)]
    edges: Vec<f32>,
}

impl Histogram {
    /// Number of bins.
    pub fn bin_count(&self) -> usize {
        self.counts.len()
    }

    /// Nominal bin width `(hi - lo) / bins`.
    pub fn bin_width(&self) -> f64 {
        // Bin counts are at most MAX_BINS = 2^24: exact in f64.
        (self.hi - self.lo) / self.counts.len() as f64
    }

    /// The exact edges `(left, right)` of bin `i` (numpy's float32 `bin_edges[i]`,
    /// `bin_edges[i + 1]`); `(NaN, NaN)` when `i` is not a bin.
    pub fn bin_edges(&self, i: usize) -> (f64, f64) {
        match (self.edges.get(i), self.edges.get(i + 1)) {
            (Some(&a), Some(&b)) => (f64::from(a), f64::from(b)),
            _ => (f64::NAN, f64::NAN),
        }
    }

    /// All `bins + 1` edges, as numpy's float32 `bin_edges`.
    pub fn edges(&self) -> &[f32] {
        &self.edges
    }

    /// The bin that `x` falls in under numpy's rules, or `None` when it is outside the range
    /// or not finite. Exact for every `x` that is an f32 value.
    pub fn bin_of(&self, x: f64) -> Option<usize> {
        let binner = Binner::new(&self.edges)?;
        match binner.place(x) {
            Place::Bin(i) => Some(i),
            Place::Below | Place::Above | Place::NonFinite => None,
        }
    }

    /// Number of values in the bins (finite values inside `[lo, hi]`).
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Where one value goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Bin(usize),
    Below,
    Above,
    NonFinite,
}

/// Bin assignment against a fixed set of float32 edges.
struct Binner<'a> {
    edges: &'a [f32],
    first: f64,
    last: f64,
    /// bins / (last - first): the first guess of the bin index.
    scale: f64,
    last_bin: usize,
}

impl<'a> Binner<'a> {
    fn new(edges: &'a [f32]) -> Option<Self> {
        let first = f64::from(*edges.first()?);
        let last = f64::from(*edges.last()?);
        let last_bin = edges.len().checked_sub(2)?;
        // At most MAX_BINS + 1 edges: exact in f64.
        let bins = (edges.len() - 1) as f64;
        Some(Binner {
            edges,
            first,
            last,
            scale: bins / (last - first),
            last_bin,
        })
    }

    /// numpy's assignment of one value; `x` compares exactly with the f32 edges.
    #[inline]
    fn place(&self, x: f64) -> Place {
        if !x.is_finite() {
            return Place::NonFinite;
        }
        if x < self.first {
            return Place::Below;
        }
        if x > self.last {
            return Place::Above;
        }
        // `as` saturates (and maps NaN, from a zero-width f32 range, to 0); the guess is then
        // clamped to a bin, like numpy's `indices[indices == bins] -= 1`. Bins are at most
        // MAX_BINS = 2^24, so i32 holds every bin index (and converts faster than usize).
        let guess = ((x - self.first) * self.scale) as i32;
        let guess = usize::try_from(guess).unwrap_or(0).min(self.last_bin);
        let left = self.edges.get(guess).map_or(self.first, |&e| f64::from(e));
        if x < left {
            return Place::Bin(guess.saturating_sub(1));
        }
        let right = self
            .edges
            .get(guess + 1)
            .map_or(self.last, |&e| f64::from(e));
        if guess != self.last_bin && x >= right {
            return Place::Bin(guess + 1);
        }
        Place::Bin(guess)
    }
}

/// Sub-histograms per chunk: element j of every 4 goes to sub-histogram j, so consecutive
/// increments of one popular bin do not wait on each other (store-to-load forwarding).
const SUBS: usize = 4;

/// The bin-assignment tables of the fast kernel: for each bin i its left edge and the edge a
/// value must reach to move one bin up (the next edge; +inf for the last bin, which includes
/// its right end), plus the guess scale. The same assignment as [`Binner::place`], written as
/// selects.
struct Tables {
    left: Vec<f32>,
    up: Vec<f32>,
    first: f32,
    last: f32,
    first64: f64,
    scale: f64,
    last_bin: usize,
}

impl Tables {
    fn new(binner: &Binner<'_>) -> Self {
        let bins = binner.last_bin + 1;
        let left: Vec<f32> = binner.edges.iter().take(bins).copied().collect();
        let mut up: Vec<f32> = binner.edges.iter().skip(1).take(bins).copied().collect();
        if let Some(l) = up.last_mut() {
            *l = f32::INFINITY;
        }
        Tables {
            left,
            up,
            // Both ends are f32 edges widened to f64: narrowing back is exact.
            first: binner.first as f32,
            last: binner.last as f32,
            first64: binner.first,
            scale: binner.scale,
            last_bin: binner.last_bin,
        }
    }

    /// Slot of `v` in a sub-histogram of `bins + 3` slots: its bin, or `bins` (below),
    /// `bins + 1` (above) or `bins + 2` (NaN or +-Inf). Branch-free.
    #[inline(always)]
    fn slot(&self, v: f32) -> usize {
        let bins = self.last_bin + 1;
        let finite = (v.to_bits() & 0x7FFF_FFFF) < 0x7F80_0000;
        // The same first guess as `Binner::place` (saturating; NaN gives 0), clamped to a bin.
        let g = ((f64::from(v) - self.first64) * self.scale) as i32;
        // g.max(0) is non-negative: the conversion is exact.
        let g = (g.max(0) as usize).min(self.last_bin);
        let left = self.left.get(g).copied().unwrap_or(self.first);
        let up = self.up.get(g).copied().unwrap_or(f32::INFINITY);
        let bin = (g + usize::from(v >= up)).wrapping_sub(usize::from(v < left));
        let outside = if v < self.first { bins } else { bins + 1 };
        let inside = (v >= self.first) & (v <= self.last);
        let s = if inside { bin } else { outside };
        if finite { s } else { bins + 2 }
    }
}

/// The vector kernels' first guess of a bin: p = v * `scale`, taken as floor(p) when its
/// fractional part lies in [`lo_margin`, `hi_margin`] (see [`avx2::add_blocks`]).
struct FastGuess {
    scale: f32,
    lo_margin: f32,
    hi_margin: f32,
}

impl Tables {
    /// The guess of the vector kernels, or None where its error bound does not hold (the
    /// range does not start at 0, too many bins for the margin, or subnormal edges): then
    /// every value goes through [`Tables::slot`].
    fn fast_guess(&self) -> Option<FastGuess> {
        let bins = self.last_bin + 1;
        // bins <= MAX_BINS = 2^24: exact in f64; the margin is 8 times the edge error bound.
        let margin = bins as f64 / f64::from(1u32 << 20);
        // The error bound holds for edges i * step (first = 0) that are normal f32 numbers:
        // each is then within 2^-24 of its own size, at most 2^-24 * bins bins.
        let normal_edges = f64::from(self.last) >= bins as f64 * f64::from(f32::MIN_POSITIVE);
        if margin >= 0.25 || self.first != 0.0 || !normal_edges {
            return None;
        }
        Some(FastGuess {
            // bins / last in f32 is finite: last >= bins * f32::MIN_POSITIVE (checked above).
            scale: (bins as f64 / f64::from(self.last)) as f32,
            // margin < 0.25: the f32 forms are within 2^-24 of it, irrelevant to the bound.
            lo_margin: margin as f32,
            hi_margin: (1.0 - margin) as f32,
        })
    }
}

/// The AVX2 form of the bin assignment (selected at run time).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        _CMP_GE_OQ, _CMP_GT_OQ, _CMP_LE_OQ, _CMP_LT_OQ, _MM_FROUND_NO_EXC, _MM_FROUND_TO_NEG_INF,
        _mm256_and_ps, _mm256_and_si256, _mm256_blendv_ps, _mm256_castps_si256,
        _mm256_castsi256_ps, _mm256_cmp_ps, _mm256_cmpgt_epi32, _mm256_cvttps_epi32,
        _mm256_extract_epi32, _mm256_movemask_ps, _mm256_mul_ps, _mm256_or_ps, _mm256_round_ps,
        _mm256_set1_epi32, _mm256_set1_ps, _mm256_setr_ps, _mm256_sub_ps,
    };

    use super::{Magnitude, SUBS, Tables};

    /// Counts the whole blocks of 8 of `chunk` into `scratch` (SUBS sub-histograms of
    /// `stride` slots) and returns the tail (fewer than 8 values) for the scalar loop.
    ///
    /// For first = 0 only. The guess p = v * f32(bins / last) is computed in f32; when its
    /// fractional part is at least `margin` = bins * 2^-20 away from an integer for every
    /// in-range value of the block, floor(p) is the bin numpy picks (normal f32 edges lie
    /// within bins * 2^-24 bins of i * step, and p within bins * 2^-23 bins of v / step, both
    /// far inside the margin), so no edge needs to be read. Otherwise the block
    /// goes through [`Tables::slot`] (exact by construction). Either way the slot is the one
    /// `Tables::slot` gives.
    #[target_feature(enable = "avx2")]
    pub(super) fn add_blocks<'a>(
        t: &Tables,
        chunk: &'a [f32],
        map: Magnitude,
        scratch: &mut [u32],
        stride: usize,
    ) -> &'a [f32] {
        let (blocks, tail) = chunk.as_chunks::<8>();
        let bins = t.last_bin + 1;
        let Some(g) = t.fast_guess() else {
            return chunk;
        };
        let first = _mm256_set1_ps(t.first);
        let last = _mm256_set1_ps(t.last);
        let scale = _mm256_set1_ps(g.scale);
        let lo_m = _mm256_set1_ps(g.lo_margin);
        let hi_m = _mm256_set1_ps(g.hi_margin);
        let abs_i = _mm256_set1_epi32(0x7FFF_FFFF);
        let inf_i = _mm256_set1_epi32(0x7F80_0000);
        // Slots are at most MAX_BINS + 2: they fit in i32.
        let below = _mm256_castsi256_ps(_mm256_set1_epi32(bins as i32));
        let above = _mm256_castsi256_ps(_mm256_set1_epi32(bins as i32 + 1));
        let nonfinite = _mm256_castsi256_ps(_mm256_set1_epi32(bins as i32 + 2));
        for b in blocks {
            let m = b.map(|x| map.of(x));
            let v = _mm256_setr_ps(m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]);
            let abs_bits = _mm256_and_si256(_mm256_castps_si256(v), abs_i);
            let finite = _mm256_castsi256_ps(_mm256_cmpgt_epi32(inf_i, abs_bits));
            let inside = _mm256_and_ps(
                _mm256_cmp_ps::<_CMP_GE_OQ>(v, first),
                _mm256_cmp_ps::<_CMP_LE_OQ>(v, last),
            );
            // p = v * f32(bins / last) in f32: within 2^-23 * bins bins of v's position
            // (two roundings), well inside the margin.
            let p = _mm256_mul_ps(v, scale);
            let fl = _mm256_round_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(p);
            let frac = _mm256_sub_ps(p, fl);
            let close = _mm256_or_ps(
                _mm256_cmp_ps::<_CMP_LT_OQ>(frac, lo_m),
                _mm256_cmp_ps::<_CMP_GT_OQ>(frac, hi_m),
            );
            let near = _mm256_movemask_ps(_mm256_and_ps(close, inside));
            // Only in-range values need an exact guess.
            if near != 0 {
                for (j, &x) in m.iter().enumerate() {
                    let i = (j % SUBS) * stride + t.slot(x);
                    if let Some(c) = scratch.get_mut(i) {
                        *c += 1;
                    }
                }
                continue;
            }
            let bin = _mm256_castsi256_ps(_mm256_cvttps_epi32(fl));
            let out = _mm256_blendv_ps(above, below, _mm256_cmp_ps::<_CMP_LT_OQ>(v, first));
            let slot = _mm256_blendv_ps(out, bin, inside);
            let slot = _mm256_castps_si256(_mm256_blendv_ps(nonfinite, slot, finite));
            let s = [
                _mm256_extract_epi32::<0>(slot),
                _mm256_extract_epi32::<1>(slot),
                _mm256_extract_epi32::<2>(slot),
                _mm256_extract_epi32::<3>(slot),
                _mm256_extract_epi32::<4>(slot),
                _mm256_extract_epi32::<5>(slot),
                _mm256_extract_epi32::<6>(slot),
                _mm256_extract_epi32::<7>(slot),
            ];
            for (j, &k) in s.iter().enumerate() {
                // Slots are non-negative (0..=bins + 2).
                let i = (j % SUBS) * stride + k.unsigned_abs() as usize;
                if let Some(c) = scratch.get_mut(i) {
                    *c += 1;
                }
            }
        }
        tail
    }
}

/// The AVX-512 form of [`avx2::add_blocks`]: sixteen values per block, the magnitude taken in
/// the vector, the slots stored once and counted from memory.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    // The whole intrinsic vocabulary of one instruction set; listing the names adds nothing.
    #[allow(clippy::wildcard_imports)]
    use std::arch::x86_64::*;

    use super::{Magnitude, SUBS, Tables};

    /// `map` of sixteen values, lane by lane as [`Magnitude::of`] (NaN for a left-out value;
    /// a NaN input stays NaN).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn magnitude(v: __m512, map: Magnitude) -> __m512 {
        let abs = _mm512_castsi512_ps(_mm512_and_si512(
            _mm512_castps_si512(v),
            _mm512_set1_epi32(0x7FFF_FFFF),
        ));
        let nan = _mm512_set1_ps(f32::NAN);
        let zero = _mm512_setzero_ps();
        match map {
            Magnitude::Identity => v,
            Magnitude::Abs => abs,
            // Ordered compares: false for NaN, which then becomes the (left-out) NaN.
            Magnitude::Positive => {
                _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, zero), nan, v)
            }
            Magnitude::Negative => {
                _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(v, zero), nan, abs)
            }
        }
    }

    /// Counts the whole blocks of 16 of `chunk` into `scratch` (SUBS sub-histograms of
    /// `stride` slots; element j of a block to sub-histogram j % SUBS) and returns the tail
    /// for the scalar loop. The same guess, margin and exact fallback as
    /// [`super::avx2::add_blocks`] (see there), so every slot is the one `Tables::slot` gives.
    #[target_feature(enable = "avx512f")]
    pub(super) fn add_blocks<'a>(
        t: &Tables,
        chunk: &'a [f32],
        map: Magnitude,
        scratch: &mut [u32],
        stride: usize,
    ) -> &'a [f32] {
        // One loop per magnitude, so that the choice is made once.
        match map {
            Magnitude::Identity => add_blocks_of::<0>(t, chunk, scratch, stride),
            Magnitude::Abs => add_blocks_of::<1>(t, chunk, scratch, stride),
            Magnitude::Positive => add_blocks_of::<2>(t, chunk, scratch, stride),
            Magnitude::Negative => add_blocks_of::<3>(t, chunk, scratch, stride),
        }
    }

    /// The magnitude numbered `M` in [`add_blocks`]'s match.
    const fn magnitude_of<const M: u8>() -> Magnitude {
        match M {
            0 => Magnitude::Identity,
            1 => Magnitude::Abs,
            2 => Magnitude::Positive,
            _ => Magnitude::Negative,
        }
    }

    /// Adds one to `scratch` at each of the sixteen `slots` (an index past the end counts
    /// nothing); unrolled, one untaken branch per slot.
    #[inline(always)]
    fn count16(scratch: &mut [u32], slots: &[u32; 16]) {
        let n = scratch.len();
        macro_rules! one {
            ($($j:literal)*) => {$(
                let k = slots[$j] as usize;
                if k < n {
                    scratch[k] += 1;
                }
            )*};
        }
        one!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
    }

    /// [`add_blocks`] for one magnitude.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn add_blocks_of<'a, const M: u8>(
        t: &Tables,
        chunk: &'a [f32],
        scratch: &mut [u32],
        stride: usize,
    ) -> &'a [f32] {
        let map = const { magnitude_of::<M>() };
        let (blocks, tail) = chunk.as_chunks::<16>();
        let bins = t.last_bin + 1;
        let Some(g) = t.fast_guess() else {
            return chunk;
        };
        let first = _mm512_set1_ps(t.first);
        let last = _mm512_set1_ps(t.last);
        let scale = _mm512_set1_ps(g.scale);
        let lo_m = _mm512_set1_ps(g.lo_margin);
        let hi_m = _mm512_set1_ps(g.hi_margin);
        let abs_i = _mm512_set1_epi32(0x7FFF_FFFF);
        let inf_i = _mm512_set1_epi32(0x7F80_0000);
        // Slots are at most MAX_BINS + 2: they fit in i32.
        let below = _mm512_set1_epi32(bins as i32);
        let above = _mm512_set1_epi32(bins as i32 + 1);
        let nonfinite = _mm512_set1_epi32(bins as i32 + 2);
        // Lane j counts into sub-histogram j % SUBS, `stride` slots each (SUBS * stride is
        // at most 4 * (MAX_BINS + 3): it fits in i32).
        let st = stride as i32;
        let offsets = _mm512_setr_epi32(
            0,
            st,
            2 * st,
            3 * st,
            0,
            st,
            2 * st,
            3 * st,
            0,
            st,
            2 * st,
            3 * st,
            0,
            st,
            2 * st,
            3 * st,
        );
        // Two slot buffers: block i stores into one while the other, block i - 1's, is
        // counted, so no load waits on the store just made. At first the other holds no slot
        // (an index past the scratch, which the counting loop skips).
        let mut bufs = [[u32::MAX; 16]; 2];
        for (i, b) in blocks.iter().enumerate() {
            let [even, odd] = &mut bufs;
            let (slots, prev) = if i % 2 == 0 { (even, odd) } else { (odd, even) };
            // The line 16 KiB ahead is on its way while this one is counted (a prefetch
            // never faults, so running past the end is harmless).
            _mm_prefetch::<_MM_HINT_T0>(b.as_ptr().wrapping_add(4096).cast());
            // SAFETY: `b` is 16 readable, contiguous f32 (64 bytes); loadu needs no alignment.
            let v = magnitude(unsafe { _mm512_loadu_ps(b.as_ptr()) }, map);
            let finite =
                _mm512_cmplt_epi32_mask(_mm512_and_si512(_mm512_castps_si512(v), abs_i), inf_i);
            let ge_first = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(v, first);
            let inside = ge_first & _mm512_cmp_ps_mask::<_CMP_LE_OQ>(v, last);
            let p = _mm512_mul_ps(v, scale);
            let fl = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(p);
            let frac = _mm512_sub_ps(p, fl);
            let close = _mm512_mask_cmp_ps_mask::<_CMP_LT_OQ>(inside, frac, lo_m)
                | _mm512_mask_cmp_ps_mask::<_CMP_GT_OQ>(inside, frac, hi_m);
            // Outside the range: below where v < first (finite, not >= first), else above;
            // inside: the bin; non-finite last. Then each lane's sub-histogram offset.
            let out = _mm512_mask_blend_epi32(ge_first, below, above);
            let slot = _mm512_mask_blend_epi32(inside, out, _mm512_cvttps_epi32(fl));
            let slot = _mm512_mask_blend_epi32(finite, nonfinite, slot);
            let slot = _mm512_add_epi32(slot, offsets);
            // SAFETY: `slots` is 16 writable, contiguous u32 (64 bytes); storeu needs no
            // alignment.
            unsafe { _mm512_storeu_epi32(slots.as_mut_ptr().cast(), slot) };
            // Read back from memory: sixteen loads are cheaper than the lane extractions the
            // compiler would otherwise turn them into.
            let slots = std::hint::black_box(slots);
            if close != 0 {
                // The few lanes too near an edge for the guess: the exact assignment.
                for (j, (x, k)) in b.iter().zip(slots.iter_mut()).enumerate() {
                    if close & (1 << j) != 0 {
                        // Slots are at most MAX_BINS + 2 + 3 * stride: they fit in u32.
                        *k = ((j % SUBS) * stride + t.slot(map.of(*x))) as u32;
                    }
                }
            }
            // Count the previous block's slots while this block's store settles.
            count16(scratch, prev);
        }
        count16(scratch, &bufs[(blocks.len() + 1) % 2]);
        tail
    }
}

/// Per-thread accumulator.
#[derive(Debug, Clone)]
struct Tally {
    counts: Vec<u64>,
    below: u64,
    above: u64,
    nonfinite: u64,
    /// SUBS sub-histograms of bins + 3 u32 slots, emptied into the u64 fields after each chunk.
    scratch: Vec<u32>,
}

impl Tally {
    fn new(bins: usize) -> Self {
        Tally {
            counts: vec![0; bins],
            below: 0,
            above: 0,
            nonfinite: 0,
            scratch: Vec::new(),
        }
    }

    /// Counts one chunk (at most 2^32 - 1 values, so the u32 slots cannot overflow).
    fn add(&mut self, tables: &Tables, chunk: &[f32], map: Magnitude) {
        let bins = self.counts.len();
        let stride = bins + 3;
        self.scratch.clear();
        self.scratch.resize(SUBS * stride, 0);
        let scratch = &mut self.scratch;
        #[cfg(target_arch = "x86_64")]
        let chunk = if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked at run time just above.
            unsafe { avx512::add_blocks(tables, chunk, map, scratch, stride) }
        } else if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked at run time just above.
            unsafe { avx2::add_blocks(tables, chunk, map, scratch, stride) }
        } else {
            chunk
        };
        let map = |x: f32| map.of(x);
        let (blocks, tail) = chunk.as_chunks::<SUBS>();
        for b in blocks {
            for (j, &x) in b.iter().enumerate() {
                let i = j * stride + tables.slot(map(x));
                if let Some(c) = scratch.get_mut(i) {
                    *c += 1;
                }
            }
        }
        for &x in tail {
            if let Some(c) = scratch.get_mut(tables.slot(map(x))) {
                *c += 1;
            }
        }
        for sub in scratch.chunks(stride) {
            for (c, &n) in self.counts.iter_mut().zip(sub) {
                *c += u64::from(n);
            }
            let tail = sub.get(bins..).unwrap_or(&[]);
            self.below += tail.first().map_or(0, |&n| u64::from(n));
            self.above += tail.get(1).map_or(0, |&n| u64::from(n));
            self.nonfinite += tail.get(2).map_or(0, |&n| u64::from(n));
        }
    }

    fn merge(mut self, other: Tally) -> Tally {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.below += other.below;
        self.above += other.above;
        self.nonfinite += other.nonfinite;
        self
    }
}

fn check_bins(bins: usize) -> Result<(), StatsError> {
    if bins == 0 {
        return Err(StatsError::ZeroBins);
    }
    if bins > MAX_BINS {
        return Err(StatsError::TooManyBins {
            bins,
            max: MAX_BINS,
        });
    }
    Ok(())
}

/// numpy.linspace(lo, hi, bins + 1) computed in f64 and rounded to f32: the edges numpy uses
/// for float32 data and a range given as Python floats.
fn edges_from_f64_range(lo: f64, hi: f64, bins: usize) -> Vec<f32> {
    // bins <= MAX_BINS = 2^24: exact in f64.
    let div = bins as f64;
    let delta = hi - lo;
    let step = delta / div;
    let mut edges: Vec<f32> = (0..=bins)
        .map(|i| {
            // i <= 2^24: exact in f64.
            let i = i as f64;
            // numpy divides first when the step underflows to zero (gh-5437).
            let y = if step == 0.0 {
                i / div * delta
            } else {
                i * step
            };
            // Rounding to f32 is the point: numpy's bin_edges have the data's dtype.
            (y + lo) as f32
        })
        .collect();
    if let Some(last) = edges.last_mut() {
        // numpy sets the endpoint to `stop` exactly; rounded to f32 as above.
        *last = hi as f32;
    }
    edges
}

/// numpy.linspace(lo, hi, bins + 1) computed in f32 arithmetic: the edges numpy 2 uses when
/// the range comes from the data's own float32 min and max. If the f32 width overflows (a range
/// wider than f32::MAX, where numpy's edges degenerate to NaN), the f64 path is used instead.
fn edges_from_f32_range(lo: f32, hi: f32, bins: usize) -> Vec<f32> {
    let delta = hi - lo;
    if !delta.is_finite() {
        return edges_from_f64_range(f64::from(lo), f64::from(hi), bins);
    }
    // bins <= MAX_BINS = 2^24: exact in f32.
    let div = bins as f32;
    let step = delta / div;
    let mut edges: Vec<f32> = (0..=bins)
        .map(|i| {
            // i <= 2^24: exact in f32 (numpy's float32 arange).
            let i = i as f32;
            let y = if step == 0.0 {
                i / div * delta
            } else {
                i * step
            };
            y + lo
        })
        .collect();
    if let Some(last) = edges.last_mut() {
        *last = hi;
    }
    edges
}

/// Counts `values` (through `map`) against `edges` in parallel chunks.
fn tally(
    values: &[f32],
    lo: f64,
    hi: f64,
    edges: Vec<f32>,
    map: Magnitude,
    cancel: &Cancel,
) -> Result<Histogram, StatsError> {
    let bins = edges.len().saturating_sub(1);
    let binner = Binner::new(&edges).ok_or(StatsError::ZeroBins)?;
    let tables = Tables::new(&binner);
    // usize fits in u64 on every supported target.
    cancel.add_total(values.len() as u64);
    let total = values
        .par_chunks(CHUNK_LEN)
        .try_fold(
            || Tally::new(bins),
            |mut acc, chunk| {
                cancel.check()?;
                acc.add(&tables, chunk, map);
                cancel.add_done(chunk.len() as u64);
                Ok::<Tally, StatsError>(acc)
            },
        )
        .try_reduce(|| Tally::new(bins), |a, b| Ok(a.merge(b)))?;
    Ok(Histogram {
        lo,
        hi,
        counts: total.counts,
        below: total.below,
        above: total.above,
        nonfinite: total.nonfinite,
        edges,
    })
}

fn check_range(lo: f64, hi: f64) -> Result<(), StatsError> {
    if !(lo.is_finite() && hi.is_finite() && (hi - lo).is_finite()) {
        return Err(StatsError::NonFiniteRange { lo, hi });
    }
    if lo >= hi {
        return Err(StatsError::EmptyRange { lo, hi });
    }
    Ok(())
}

/// Histogram of the finite values of `values` with `bins` equal bins on `[lo, hi]`.
///
/// Bit-identical bin assignment to `numpy.histogram(values_f32, bins, range=(lo, hi))`:
/// bins are `[a, b)` except the last, which includes `hi`; a value exactly on an inner edge
/// goes to the bin on its right. Values outside the range are counted in `below`/`above`,
/// NaN/±Inf in `nonfinite`. Counts are integers, so the result is identical for any thread
/// count. Errors: `bins == 0` or above [`MAX_BINS`], a non-finite end, `lo >= hi` (unlike
/// numpy, which widens an explicit `lo == hi` by 0.5 on each side), cancellation.
pub fn histogram(
    values: &[f32],
    bins: usize,
    lo: f64,
    hi: f64,
    cancel: &Cancel,
) -> Result<Histogram, StatsError> {
    check_bins(bins)?;
    check_range(lo, hi)?;
    tally(
        values,
        lo,
        hi,
        edges_from_f64_range(lo, hi, bins),
        Magnitude::Identity,
        cancel,
    )
}

/// Histogram over the finite range of the data, as `numpy.histogram(values_f32, bins)`.
///
/// `lo`/`hi` are the finite min and max; a single distinct value `x` gives
/// `[x - 0.5, x + 0.5]` (computed in f32, like numpy); no finite value gives `[0, 1]` (numpy's
/// range for an empty array; numpy raises for an all-NaN array, we count them as non-finite).
/// Edges are computed in f32 arithmetic as numpy does for a range from float32 data.
pub fn histogram_auto(
    values: &[f32],
    bins: usize,
    cancel: &Cancel,
) -> Result<Histogram, StatsError> {
    check_bins(bins)?;
    let edges = match finite_min_max(values, cancel)? {
        None => edges_from_f64_range(0.0, 1.0, bins),
        Some((lo, hi)) if lo == hi => edges_from_f32_range(lo - 0.5, hi + 0.5, bins),
        Some((lo, hi)) => edges_from_f32_range(lo, hi, bins),
    };
    let lo = edges.first().map_or(0.0, |&e| f64::from(e));
    let hi = edges.last().map_or(1.0, |&e| f64::from(e));
    tally(values, lo, hi, edges, Magnitude::Identity, cancel)
}

/// Histogram of `|x|` over the finite values, with `bins` equal bins on `[0, hi]`.
///
/// As `numpy.histogram(np.abs(values_f32), bins, range=(0, hi))`; the entropy (KL) calibrator
/// uses 2048 bins on `[0, max|x|]`. Errors as [`histogram`]; in particular `hi <= 0` is an
/// `EmptyRange` (an all-zero tensor has nothing to calibrate).
pub fn abs_histogram(
    values: &[f32],
    bins: usize,
    hi: f64,
    cancel: &Cancel,
) -> Result<Histogram, StatsError> {
    Histogram::of_magnitudes(values, bins, hi, Magnitude::Abs, cancel)
}

impl Histogram {
    /// Histogram of `magnitude(x)` with `bins` equal bins on `[0, hi]`, numpy's bin
    /// assignment: the one kernel behind [`abs_histogram`] and the entropy calibrator's
    /// one-sided histograms (`x` for x > 0, `-x` for x < 0).
    ///
    /// Values `magnitude` leaves out and NaN/+-Inf inputs are counted in `nonfinite`. Branch-free bin assignment with four interleaved
    /// sub-histograms per chunk; integer counts, so identical for any thread count. Errors as
    /// [`abs_histogram`].
    pub fn of_magnitudes(
        values: &[f32],
        bins: usize,
        hi: f64,
        magnitude: Magnitude,
        cancel: &Cancel,
    ) -> Result<Histogram, StatsError> {
        check_bins(bins)?;
        check_range(0.0, hi)?;
        tally(
            values,
            0.0,
            hi,
            edges_from_f64_range(0.0, hi, bins),
            magnitude,
            cancel,
        )
    }
}

/// Histogram on the quantization grid: one bin per integer code `qmin..=qmax`.
///
/// `counts[i]` is the number of codes equal to `qmin + i`; codes outside `[qmin, qmax]` are not
/// counted. Returns an empty vector when `qmax < qmin` or the range has more than
/// [`MAX_CODE_BINS`] codes. Parallel; integer counts, so identical for any thread count.
pub fn code_histogram(codes: &[i32], qmin: i32, qmax: i32) -> Vec<u64> {
    let width = i64::from(qmax) - i64::from(qmin) + 1;
    let Ok(bins) = usize::try_from(width) else {
        return Vec::new();
    };
    if bins > MAX_CODE_BINS {
        return Vec::new();
    }
    codes
        .par_chunks(CHUNK_LEN)
        .fold(
            || vec![0u64; bins],
            |mut acc, chunk| {
                for &c in chunk {
                    let offset = i64::from(c) - i64::from(qmin);
                    if let Some(n) = usize::try_from(offset).ok().and_then(|i| acc.get_mut(i)) {
                        *n += 1;
                    }
                }
                acc
            },
        )
        .reduce(
            || vec![0u64; bins],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(&b) {
                    *x += y;
                }
                a
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> Cancel {
        Cancel::never()
    }

    #[test]
    fn values_on_edges_follow_numpy() {
        // np.histogram(np.float32([0, .25, .5, .75, 1]), 4, range=(0, 1)) -> [1, 1, 1, 2]:
        // an inner edge goes to the bin on its right, hi goes to the last bin.
        let h = histogram(&[0.0, 0.25, 0.5, 0.75, 1.0], 4, 0.0, 1.0, &never());
        let h = h.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.counts, [1, 1, 1, 2]);
        assert_eq!((h.below, h.above, h.nonfinite), (0, 0, 0));
        assert_eq!(h.bin_edges(1), (0.25, 0.5));
        assert_eq!(h.bin_of(1.0), Some(3));
        assert_eq!(h.bin_of(0.5), Some(2));
        assert_eq!(h.bin_of(1.0000001), None);
        assert_eq!(h.bin_width(), 0.25);
    }

    #[test]
    fn edge_correction_matches_numpy_where_the_naive_formula_does_not() {
        // Found by comparing numpy 2.4.6 with trunc((x - lo) * bins / (hi - lo)) in f64: each
        // x is a float32 bin edge, which the naive formula puts one bin too low.
        let cases: [(f64, f64, usize, u32, usize); 3] = [
            (
                -2.0991712400376326,
                -0.5913414783306177,
                14,
                0xbf32_f486,
                13,
            ),
            (-2.978938781737701, 1.1289910259923022, 7, 0x3f0a_c9f1, 6),
            (
                -1.9805216493835016,
                0.25040911697090484,
                24,
                0xbf5d_7454,
                12,
            ),
        ];
        for (lo, hi, bins, bits, numpy_bin) in cases {
            let x = f32::from_bits(bits);
            let naive = ((f64::from(x) - lo) * bins as f64 / (hi - lo)) as usize;
            assert_eq!(
                naive + 1,
                numpy_bin,
                "the case must exercise the correction"
            );
            let h = histogram(&[x], bins, lo, hi, &never()).unwrap_or_else(|e| panic!("{e}"));
            let mut expected = vec![0u64; bins];
            expected[numpy_bin] = 1;
            assert_eq!(h.counts, expected);
            assert_eq!(h.bin_of(f64::from(x)), Some(numpy_bin));
        }
    }

    #[test]
    fn range_ends_are_compared_as_f32_like_numpy() {
        // lo is just above f32(0.1) but rounds to it; numpy keeps x = f32(0.1) in bin 0.
        let x = 0.1f32;
        let lo = 0.100_000_001_490_116_2;
        assert!(f64::from(x) < lo);
        let h = histogram(&[x], 2, lo, 1.0, &never()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((h.counts.as_slice(), h.below), ([1, 0].as_slice(), 0));
        // np.histogram(np.float32([0.1]), 2, range=(0.0, 0.1 - 1e-12)) -> [0, 1]: hi rounds
        // to f32(0.1), so x is on the closed right end.
        let h = histogram(&[x], 2, 0.0, f64::from(x) - 1e-12, &never());
        let h = h.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((h.counts.as_slice(), h.above), ([0, 1].as_slice(), 0));
    }

    #[test]
    fn outside_and_nonfinite_are_counted_apart() {
        let x = [
            -1.0,
            0.5,
            2.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1.0,
        ];
        let h = histogram(&x, 2, 0.0, 1.0, &never()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.counts, [0, 2]);
        assert_eq!((h.below, h.above, h.nonfinite, h.total()), (1, 1, 3, 2));
    }

    #[test]
    fn auto_range_uses_f32_edges_like_numpy() {
        // np.histogram(a, 27) for these float32 values (numpy 2.4.6): edge 5 is 0xc1bdcf48
        // (linspace in f32 arithmetic); linspace in f64 would give 0xc1bdcf47, one f32 step
        // towards zero. numpy puts the edge value itself in bin 5 and the next value below it,
        // 0xc1bdcf49, in bin 4; with f64 edges the edge value would land in bin 4.
        let a = [
            f32::from_bits(0xc1fe_4d58),
            f32::from_bits(0x413b_ea04),
            f32::from_bits(0xc1bd_cf48),
            f32::from_bits(0xc1bd_cf49),
        ];
        let h = histogram_auto(&a, 27, &never()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.edges().get(5).map(|e| e.to_bits()), Some(0xc1bd_cf48));
        let mut expected = vec![0u64; 27];
        expected[0] = 1;
        expected[4] = 1;
        expected[5] = 1;
        expected[26] = 1;
        assert_eq!(h.counts, expected);
    }

    #[test]
    fn auto_range_degenerate_and_empty() {
        // np.histogram(np.float32([1.5]), 4) -> [0, 0, 1, 0], edges [1, 1.25, 1.5, 1.75, 2].
        let h = histogram_auto(&[1.5], 4, &never()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.counts, [0, 0, 1, 0]);
        assert_eq!(h.edges(), [1.0, 1.25, 1.5, 1.75, 2.0]);
        assert_eq!((h.lo, h.hi), (1.0, 2.0));
        // Empty: numpy uses [0, 1].
        let h = histogram_auto(&[], 4, &never()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((h.lo, h.hi, h.total()), (0.0, 1.0, 0));
        let h = histogram_auto(&[f32::NAN; 3], 4, &never()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((h.total(), h.nonfinite), (0, 3));
    }

    #[test]
    fn abs_histogram_bins_magnitudes() {
        let x = [-4.0, -0.5, 0.0, 0.5, 3.0, f32::NAN];
        let h = abs_histogram(&x, 4, 4.0, &never()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.counts, [3, 0, 0, 2]);
        assert_eq!(h.nonfinite, 1);
        assert_eq!(
            abs_histogram(&x, 4, 0.0, &never()),
            Err(StatsError::EmptyRange { lo: 0.0, hi: 0.0 })
        );
    }

    /// Values that stress the fast kernel: pseudo-random magnitudes, every edge exactly, one
    /// ulp either side of every edge, the range ends, NaN, +-Inf and values above the range.
    fn edge_heavy(edges: &[f32], seed: u64) -> Vec<f32> {
        let hi = *edges.last().unwrap_or(&1.0);
        let mut s = seed | 1;
        let mut v: Vec<f32> = (0..20_000)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                // 24 random bits scaled to [-1.1 hi, 1.1 hi].
                ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.2 - 1.1) * hi
            })
            .collect();
        for &e in edges {
            v.extend_from_slice(&[e, -e, e.next_up(), e.next_down(), -e.next_up()]);
        }
        v.extend_from_slice(&[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, hi * 2.0]);
        v
    }

    #[test]
    fn fast_kernel_matches_per_value_assignment() {
        // bin_of goes through `Binner::place`, the plain numpy rule, one value at a time.
        for (hi, bins) in [
            (4.0, 2048),
            (15.5, 2048),
            (1e-3, 2048),
            (4.7353563, 2048),
            (3.0e-36, 2048),
            (1e-39, 2048),
            (1000.0, 7),
            (2.5, 1),
            (1.0, 1 << 18),
        ] {
            let edges = edges_from_f64_range(0.0, hi, bins);
            let x = edge_heavy(&edges, 5);
            let h = abs_histogram(&x, bins, hi, &never()).unwrap_or_else(|e| panic!("{e}"));
            let mut want = vec![0u64; bins];
            let (mut above, mut nonfinite) = (0, 0);
            for &v in &x {
                match h.bin_of(f64::from(v.abs())) {
                    Some(i) => want[i] += 1,
                    None if v.is_finite() => above += 1,
                    None => nonfinite += 1,
                }
            }
            assert_eq!(h.counts, want, "hi {hi} bins {bins}");
            assert_eq!((h.above, h.nonfinite, h.below), (above, nonfinite, 0));
            // One side only: x > 0 (others left out, counted as non-finite).
            let pos = Histogram::of_magnitudes(&x, bins, hi, Magnitude::Positive, &never())
                .unwrap_or_else(|e| panic!("{e}"));
            let mut want = vec![0u64; bins];
            for &v in x.iter().filter(|&&v| v > 0.0) {
                if let Some(i) = h.bin_of(f64::from(v)) {
                    want[i] += 1;
                }
            }
            assert_eq!(pos.counts, want, "positive side, hi {hi} bins {bins}");
            // Every magnitude, every count, against the per-value rule.
            for map in [
                Magnitude::Identity,
                Magnitude::Abs,
                Magnitude::Positive,
                Magnitude::Negative,
            ] {
                let got = Histogram::of_magnitudes(&x, bins, hi, map, &never())
                    .unwrap_or_else(|e| panic!("{e}"));
                let mut want = vec![0u64; bins];
                let (mut below, mut above, mut nonfinite) = (0, 0, 0);
                for &v in &x {
                    let m = map.of(v);
                    match h.bin_of(f64::from(m)) {
                        Some(i) => want[i] += 1,
                        None if !m.is_finite() => nonfinite += 1,
                        None if m < 0.0 => below += 1,
                        None => above += 1,
                    }
                }
                let what = format!("{map:?}, hi {hi} bins {bins}");
                assert_eq!(got.counts, want, "{what}");
                assert_eq!(
                    (got.below, got.above, got.nonfinite),
                    (below, above, nonfinite),
                    "{what}"
                );
            }
        }
    }

    #[test]
    fn invalid_arguments_are_typed_errors() {
        let c = never();
        assert_eq!(histogram(&[], 0, 0.0, 1.0, &c), Err(StatsError::ZeroBins));
        assert_eq!(
            histogram(&[], 4, 1.0, 1.0, &c),
            Err(StatsError::EmptyRange { lo: 1.0, hi: 1.0 })
        );
        assert!(matches!(
            histogram(&[], 4, f64::NAN, 1.0, &c),
            Err(StatsError::NonFiniteRange { .. })
        ));
        assert!(matches!(
            histogram(&[], 4, -f64::MAX, f64::MAX, &c),
            Err(StatsError::NonFiniteRange { .. })
        ));
        assert_eq!(
            histogram(&[], MAX_BINS + 1, 0.0, 1.0, &c),
            Err(StatsError::TooManyBins {
                bins: MAX_BINS + 1,
                max: MAX_BINS
            })
        );
        let cancelled = Cancel::new();
        cancelled.cancel();
        assert!(matches!(
            histogram(&[1.0], 4, 0.0, 1.0, &cancelled),
            Err(StatsError::Cancelled(_))
        ));
    }

    #[test]
    fn code_histogram_counts_each_code() {
        let codes = [-128, -127, 0, 0, 127, 127, 127, 500, -500];
        let h = code_histogram(&codes, -127, 127);
        assert_eq!(h.len(), 255);
        assert_eq!(h.first(), Some(&1));
        assert_eq!(h.get(127), Some(&2));
        assert_eq!(h.last(), Some(&3));
        assert_eq!(h.iter().sum::<u64>(), 6);
        assert!(code_histogram(&codes, 1, 0).is_empty());
        assert!(code_histogram(&codes, i32::MIN, i32::MAX).is_empty());
        assert_eq!(code_histogram(&[], 0, 3), [0, 0, 0, 0]);
    }
}
