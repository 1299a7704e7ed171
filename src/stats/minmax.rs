//! The finite min and max of a slice in eight select-based lanes (AVX2 when the CPU has it,
//! the same bits on every path): the one min/max kernel behind calibration and statistics.

/// Lanes of the select-based min/max: element j of every block of 8 goes to lane j.
const LANES: usize = 8;
/// Bits of f32 +Inf; a value whose magnitude bits are below this is finite.
const F32_INF_BITS: u32 = 0x7F80_0000;
/// Mask that clears the sign bit of an f32 bit pattern.
const F32_ABS_MASK: u32 = 0x7FFF_FFFF;

/// The finite (min, max) of `x`, or None when nothing is finite; vectorised (AVX2 when the
/// CPU has it), the same bits on every path.
pub fn row_minmax(x: &[f32]) -> Option<(f32, f32)> {
    #[cfg(target_arch = "x86_64")]
    if has_avx512()
        // SAFETY: the CPU supports AVX-512F, checked at run time just above.
        && let Some(r) = unsafe { avx512::plain_minmax(x) }
    {
        return Some(r);
    }
    #[cfg(target_arch = "x86_64")]
    let (lo, hi) = if has_avx2() {
        // SAFETY: the CPU supports AVX2, checked at run time just above.
        unsafe { avx2::minmax(x) }
    } else {
        row_minmax_scalar(x)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let (lo, hi) = row_minmax_scalar(x);
    (lo <= hi).then_some((lo, hi))
}

/// Lane-wise finite min/max (element j of each block of 8 in lane j), folded by
/// [`fold_minmax`]; (+inf, -inf) when nothing is finite.
fn row_minmax_scalar(x: &[f32]) -> (f32, f32) {
    let mut l = [f32::INFINITY; LANES];
    let mut h = [f32::NEG_INFINITY; LANES];
    let (blocks, tail) = x.as_chunks::<LANES>();
    for x8 in blocks {
        for j in 0..LANES {
            let v = x8[j];
            let finite = (v.to_bits() & F32_ABS_MASK) < F32_INF_BITS;
            let a = if finite { v } else { f32::INFINITY };
            let b = if finite { v } else { f32::NEG_INFINITY };
            l[j] = if a < l[j] { a } else { l[j] };
            h[j] = if b > h[j] { b } else { h[j] };
        }
    }
    fold_minmax(l, h, tail)
}

/// Folds min/max lanes in lane order, then the tail elements in order.
fn fold_minmax(l: [f32; LANES], h: [f32; LANES], tail: &[f32]) -> (f32, f32) {
    let mut lo = l
        .iter()
        .fold(f32::INFINITY, |m, &v| if v < m { v } else { m });
    let mut hi = h
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    for &v in tail {
        if (v.to_bits() & F32_ABS_MASK) < F32_INF_BITS {
            lo = if v < lo { v } else { lo };
            hi = if v > hi { v } else { hi };
        }
    }
    (lo, hi)
}

/// Whether this CPU runs AVX2 code (std caches the answer).
#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// Whether this CPU runs AVX-512F code (std caches the answer).
#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// The common case without selects: plain vector min/max ignore NaN by operand order, and
/// any result the lane order could decide (a zero, whose sign is first-come in the lanes) or
/// an infinity brings in is left to the lane loop.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __m512, _mm512_loadu_ps, _mm512_max_ps, _mm512_min_ps, _mm512_reduce_max_ps,
        _mm512_reduce_min_ps, _mm512_set1_ps,
    };

    /// Sixteen f32 from an array.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn load16(a: &[f32; 16]) -> __m512 {
        // SAFETY: `a` is 16 readable, contiguous f32 (64 bytes); loadu needs no alignment.
        unsafe { _mm512_loadu_ps(a.as_ptr()) }
    }

    /// The finite (min, max) of `x` when both are finite and non-zero (then they are the
    /// lane loop's values: a non-zero value has one bit pattern), else None.
    ///
    /// `min_ps(x, m)` returns m when x is NaN (the second operand), so NaN never enters;
    /// an infinity does, and is refused at the end, as is a zero or an empty slice.
    #[target_feature(enable = "avx512f")]
    pub(super) fn plain_minmax(x: &[f32]) -> Option<(f32, f32)> {
        let (blocks, tail) = x.as_chunks::<32>();
        let mut lo = [_mm512_set1_ps(f32::INFINITY); 2];
        let mut hi = [_mm512_set1_ps(f32::NEG_INFINITY); 2];
        for b in blocks {
            let (a, c) = b.split_at(16);
            for (k, h) in [a, c].into_iter().enumerate() {
                let Some(h) = h.first_chunk::<16>() else {
                    continue;
                };
                let v = load16(h);
                lo[k] = _mm512_min_ps(v, lo[k]);
                hi[k] = _mm512_max_ps(v, hi[k]);
            }
        }
        let mut l = _mm512_reduce_min_ps(_mm512_min_ps(lo[0], lo[1]));
        let mut h = _mm512_reduce_max_ps(_mm512_max_ps(hi[0], hi[1]));
        for &v in tail {
            // A NaN compares false.
            l = if v < l { v } else { l };
            h = if v > h { v } else { h };
        }
        (l.is_finite() && h.is_finite() && l != 0.0 && h != 0.0).then_some((l, h))
    }
}

/// The AVX2 form of the lane loop (value intrinsics only; same operations in the same order).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256, _mm256_and_ps, _mm256_and_si256, _mm256_andnot_ps, _mm256_castps_si256,
        _mm256_castps256_ps128, _mm256_castsi256_ps, _mm256_cmpgt_epi32, _mm256_extractf128_ps,
        _mm256_max_ps, _mm256_min_ps, _mm256_or_ps, _mm256_set1_epi32, _mm256_set1_ps,
        _mm256_setr_ps,
    };

    use super::{F32_ABS_MASK, F32_INF_BITS};

    /// Eight f32 from an array (one unaligned load after optimisation).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn load8(a: &[f32; 8]) -> __m256 {
        _mm256_setr_ps(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
    }

    /// The finite (min, max) of `x` in 8 select-based lanes, folded in lane order; (+inf,
    /// -inf) when nothing is finite. Same bits as `super::row_minmax_scalar`.
    #[target_feature(enable = "avx2")]
    pub(super) fn minmax(x: &[f32]) -> (f32, f32) {
        let abs_i = _mm256_set1_epi32(F32_ABS_MASK as i32);
        let inf_i = _mm256_set1_epi32(F32_INF_BITS as i32);
        let pinf = _mm256_set1_ps(f32::INFINITY);
        let ninf = _mm256_set1_ps(f32::NEG_INFINITY);
        let (blocks, tail) = x.as_chunks::<8>();
        let mut lo = pinf;
        let mut hi = ninf;
        for x8 in blocks {
            let xv = load8(x8);
            let abs_bits = _mm256_and_si256(_mm256_castps_si256(xv), abs_i);
            let fm = _mm256_castsi256_ps(_mm256_cmpgt_epi32(inf_i, abs_bits));
            // finite ? x : +-inf, then `if a < m { a } else { m }` (min_ps(a, m)).
            let a = _mm256_or_ps(_mm256_and_ps(fm, xv), _mm256_andnot_ps(fm, pinf));
            let b = _mm256_or_ps(_mm256_and_ps(fm, xv), _mm256_andnot_ps(fm, ninf));
            lo = _mm256_min_ps(a, lo);
            hi = _mm256_max_ps(b, hi);
        }
        let mut l = [0f32; 8];
        let mut h = [0f32; 8];
        let (l0, l1) = (_mm256_castps256_ps128(lo), _mm256_extractf128_ps::<1>(lo));
        let (h0, h1) = (_mm256_castps256_ps128(hi), _mm256_extractf128_ps::<1>(hi));
        lanes_of(l0, &mut l[..4]);
        lanes_of(l1, &mut l[4..]);
        lanes_of(h0, &mut h[..4]);
        lanes_of(h1, &mut h[4..]);
        super::fold_minmax(l, h, tail)
    }

    /// The four lanes of an SSE vector.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn lanes_of(v: std::arch::x86_64::__m128, out: &mut [f32]) {
        use std::arch::x86_64::{_mm_cvtss_f32, _mm_shuffle_ps};
        let v = [
            _mm_cvtss_f32(v),
            _mm_cvtss_f32(_mm_shuffle_ps::<0b01_01_01_01>(v, v)),
            _mm_cvtss_f32(_mm_shuffle_ps::<0b10_10_10_10>(v, v)),
            _mm_cvtss_f32(_mm_shuffle_ps::<0b11_11_11_11>(v, v)),
        ];
        for (o, x) in out.iter_mut().zip(v) {
            *o = x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Awkward inputs: NaN, +-Inf, +-0, subnormals, raw bit patterns, an odd length.
    fn awkward(n: usize) -> Vec<f32> {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                match i % 7 {
                    0 => f32::NAN,
                    1 => f32::INFINITY,
                    2 => -0.0,
                    3 => f32::NEG_INFINITY,
                    4 => 1e-40,
                    // Raw bit patterns (any class); the cast keeps the high 32 bits.
                    5 => f32::from_bits((s >> 32) as u32),
                    _ => ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 20.0,
                }
            })
            .collect()
    }

    #[test]
    fn the_plain_vector_path_gives_the_lane_loop_bits() {
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            // 24 high bits, exact in f32: uniform in [-1, 1).
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        };
        let ordinary: Vec<f32> = (0..4099).map(|_| next() * 37.0).collect();
        // Non-negative rows whose minimum is a zero of either sign (first-come in the lanes),
        // one with a NaN, and all-zero rows: the cases the plain path hands back.
        let mut zeros: Vec<f32> = ordinary.iter().map(|v| v.abs()).collect();
        zeros[5] = -0.0;
        zeros[77] = 0.0;
        let mut with_nan = ordinary.clone();
        with_nan[100] = f32::NAN;
        let signed_zeros = [0.0f32, -0.0, 0.0, -0.0].repeat(20);
        for (name, x) in [
            ("ordinary", &ordinary),
            ("zero minimum", &zeros),
            ("a NaN", &with_nan),
            ("signed zeros", &signed_zeros),
        ] {
            for len in [0, 1, 15, 16, 31, 32, 33, 80, 1000, x.len()] {
                let s = &x[..len.min(x.len())];
                let (lo, hi) = row_minmax_scalar(s);
                let want = (lo <= hi).then_some((lo.to_bits(), hi.to_bits()));
                let got = row_minmax(s).map(|(a, b)| (a.to_bits(), b.to_bits()));
                assert_eq!(got, want, "{name}, length {len}");
            }
        }
    }

    #[test]
    fn row_minmax_matches_the_scalar_reference() {
        let x = awkward(1031);
        for len in [0, 1, 7, 8, 9, 100, 1031] {
            let s = &x[..len];
            // The plain sequential fold the vectorised version replaces.
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for &v in s.iter().filter(|v| v.is_finite()) {
                lo = lo.min(v);
                hi = hi.max(v);
            }
            let want = (lo <= hi).then_some((lo, hi));
            let got = row_minmax(s);
            assert_eq!(got, want, "len {len}");
            let (lo, hi) = row_minmax_scalar(s);
            assert_eq!((lo <= hi).then_some((lo, hi)), got);
        }
        assert_eq!(row_minmax(&[f32::NAN, f32::INFINITY]), None);
    }
}
