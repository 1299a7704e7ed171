//! The helpers every ggml quantizer shares, ported from ggml 0.20.2 `ggml-quants.c` and
//! `ggml-impl.h` with the C's float semantics kept: `nearest_int`, the x86 float-to-int
//! conversion, f16 rounding, the table searches and the `make_*_quants` scale searches.
//!
//! Every sum is sequential f32 in the C's loop order and every product keeps the C's
//! association (`w*x[i]*l` is `(w·x)·l`). Rust never contracts `a*b + c` into a fused
//! multiply-add, and the reference wheel is built for baseline x86-64 (SSE2, no FMA), so the
//! two compute the same bits.

use half::f16;

/// ggml `GROUP_MAX_EPS`: a group whose largest magnitude is below this is stored as zeros.
pub(super) const GROUP_MAX_EPS: f32 = 1e-15;

/// ggml `nearest_int`: adds 1.5·2^23 and reads the low mantissa bits, i.e. round to nearest,
/// ties to even, for |f| ≤ 2^22. Larger inputs (the C asserts, compiled out in release) give
/// the same wrapped bits as the C, never a panic.
#[inline(always)]
pub(super) fn nearest_int(fval: f32) -> i32 {
    let val = fval + 12_582_912.0;
    // The mask keeps 23 bits, so the value fits an i32 exactly.
    (val.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// The C conversion of a float to an integer type as ggml's x86-64 build executes it
/// (`cvttss2si`): truncation toward zero, and the "integer indefinite" `i32::MIN` for NaN and
/// values outside the i32 range. Narrower C targets (`int8_t`, `uint8_t`) then keep the low
/// bits, which callers do with a wrapping `as` cast.
#[inline(always)]
pub(super) fn trunc_i32(v: f32) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: SSE2 is part of the x86-64 baseline: every x86-64 CPU has it.
        unsafe { sse2::trunc(v) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        if (-2_147_483_648.0..2_147_483_648.0).contains(&v) {
            // In range: the saturating cast is the truncation.
            v as i32
        } else {
            i32::MIN
        }
    }
}

/// [`trunc_i32`] on four values at once (`cvttps2dq` on x86-64).
#[inline(always)]
pub(super) fn trunc_i32x4(v: [f32; 4]) -> [i32; 4] {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: SSE2 is part of the x86-64 baseline: every x86-64 CPU has it.
        unsafe { sse2::trunc4(v) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        v.map(trunc_i32)
    }
}

/// The low bytes of [`trunc_i32`] of 32 values: C's `(int8_t)` / `(uint8_t)` conversions of a
/// float, as ggml's vectorised x86-64 loops compute them (`cvttps2dq`, then the low byte).
#[inline(always)]
pub(super) fn trunc_low_bytes(v: &[f32; 32]) -> [u8; 32] {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: SSE2 is part of the x86-64 baseline: every x86-64 CPU has it.
        unsafe { sse2::trunc_low_bytes(v) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // The low byte of the conversion.
        v.map(|f| trunc_i32(f) as u8)
    }
}

/// The x86 conversion instructions themselves: exactly what ggml's x86-64 build executes for
/// a C float-to-int conversion, one instruction and no saturation fixups.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cvtsi128_si32, _mm_cvtsi128_si64, _mm_cvttps_epi32,
        _mm_cvttss_si32, _mm_packs_epi32, _mm_packus_epi16, _mm_set_ss, _mm_set1_epi32,
        _mm_setr_ps, _mm_shuffle_epi32, _mm_srli_si128,
    };

    /// `cvttps2dq` of values 4k..4k+4, keeping each lane's low byte.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn low_bytes4(v: &[f32; 32], k: usize) -> __m128i {
        let t = _mm_cvttps_epi32(_mm_setr_ps(
            v[4 * k],
            v[4 * k + 1],
            v[4 * k + 2],
            v[4 * k + 3],
        ));
        _mm_and_si128(t, _mm_set1_epi32(0xFF))
    }

    /// 16 low bytes (values 16h..16h+16), packed without saturation (each is 0..=255).
    #[inline]
    #[target_feature(enable = "sse2")]
    fn bytes16(v: &[f32; 32], h: usize) -> [u8; 16] {
        let words_a = _mm_packs_epi32(low_bytes4(v, 4 * h), low_bytes4(v, 4 * h + 1));
        let words_b = _mm_packs_epi32(low_bytes4(v, 4 * h + 2), low_bytes4(v, 4 * h + 3));
        let b = _mm_packus_epi16(words_a, words_b);
        // The two halves of the register as little-endian u64: bytes in element order.
        let lo = _mm_cvtsi128_si64(b).to_le_bytes();
        let hi = _mm_cvtsi128_si64(_mm_srli_si128::<8>(b)).to_le_bytes();
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&lo);
        out[8..].copy_from_slice(&hi);
        out
    }

    /// Low bytes of `cvttps2dq` over 32 values.
    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn trunc_low_bytes(v: &[f32; 32]) -> [u8; 32] {
        let (a, b) = (bytes16(v, 0), bytes16(v, 1));
        let mut out = [0u8; 32];
        out[..16].copy_from_slice(&a);
        out[16..].copy_from_slice(&b);
        out
    }

    /// `cvttss2si`.
    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn trunc(v: f32) -> i32 {
        _mm_cvttss_si32(_mm_set_ss(v))
    }

    /// `cvttps2dq`.
    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn trunc4(v: [f32; 4]) -> [i32; 4] {
        let t = _mm_cvttps_epi32(_mm_setr_ps(v[0], v[1], v[2], v[3]));
        [
            _mm_cvtsi128_si32(t),
            _mm_cvtsi128_si32(_mm_shuffle_epi32::<1>(t)),
            _mm_cvtsi128_si32(_mm_shuffle_epi32::<2>(t)),
            _mm_cvtsi128_si32(_mm_shuffle_epi32::<3>(t)),
        ]
    }
}

/// ggml `GGML_FP32_TO_FP16`: round to nearest even (as `half` does), with every NaN stored as
/// the quiet NaN 0x7E00 carrying the input's sign, as ggml's bit trick does.
#[inline(always)]
pub(super) fn fp16_bits(v: f32) -> u16 {
    if v.is_nan() {
        // The sign bit of the f32 moved to bit 15.
        ((v.to_bits() >> 16) & 0x8000) as u16 | 0x7E00
    } else {
        f16::from_f32(v).to_bits()
    }
}

/// ggml `GGML_FP16_TO_FP32` (exact).
#[inline(always)]
pub(super) fn fp16_value(bits: u16) -> f32 {
    f16::from_bits(bits).to_f32()
}

/// `GGML_FP16_TO_FP32(GGML_FP32_TO_FP16(v))`: the f32 an f16 field stored from `v` reads back.
#[inline(always)]
pub(super) fn through_fp16(v: f32) -> f32 {
    fp16_value(fp16_bits(v))
}

/// ggml `MAX(a, b)` = `a > b ? a : b` (so a NaN `b` wins and a NaN `a` loses).
#[inline(always)]
pub(super) fn c_max(a: f32, b: f32) -> f32 {
    if a > b { a } else { b }
}

/// ggml `best_index_int8`: the index of the table entry nearest to `x` by binary search over
/// the ascending `values`; an exact tie goes to the upper entry, NaN to the last.
#[inline(always)]
pub(super) fn best_index_int8(values: &[f32; 16], x: f32) -> usize {
    if x <= values[0] {
        return 0;
    }
    if x >= values[15] {
        return 15;
    }
    let (mut ml, mut mu) = (0usize, 15usize);
    while mu - ml > 1 {
        let mav = (ml + mu) / 2;
        if x < values[mav] {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    if x - values[mu - 1] < values[mu] - x {
        mu - 1
    } else {
        mu
    }
}

/// ggml `best_index_mxfp4`: the first index `i` minimising |kvalues_mxfp4[i]·e − x| (strict `<`,
/// so a tie keeps the smaller magnitude; NaN gives 0).
#[cfg(test)]
fn best_index_mxfp4(kvalues: &[f32; 16], x: f32, e: f32) -> u8 {
    let mut best_index = 0u8;
    let mut best_err = (kvalues[0] * e - x).abs();
    for (i, &kv) in (1u8..).zip(&kvalues[1..]) {
        let err = (kv * e - x).abs();
        if err < best_err {
            best_index = i;
            best_err = err;
        }
    }
    best_index
}

/// ggml's `if (ax > amax) { amax = ax; max = x[i]; }` over `x` from amax = max = 0: the
/// largest magnitude and the signed value that first reaches it (NaN never wins; all zeros
/// give +0). The magnitude comes from four branch-free lanes (a maximum does not depend on
/// the order), then the first element of that magnitude is the one the sequential scan keeps.
#[inline(always)]
pub(super) fn signed_absmax<const N: usize>(x: &[f32; N]) -> (f32, f32) {
    let mut lanes = [0.0f32; 4];
    let (quads, tail) = x.as_chunks::<4>();
    for quad in quads {
        for j in 0..4 {
            let a = quad[j].abs();
            lanes[j] = if a > lanes[j] { a } else { lanes[j] };
        }
    }
    let mut amax = 0.0f32;
    for a in lanes.into_iter().chain(tail.iter().map(|v| v.abs())) {
        amax = if a > amax { a } else { amax };
    }
    if amax > 0.0
        && let Some(&v) = x.iter().find(|v| v.abs() == amax)
    {
        return (amax, v);
    }
    (amax, 0.0)
}

/// `trunc_i32(roundf(v))`: C's `(int)roundf(v)` as ggml's x86-64 build computes it (round
/// half away from zero, then truncating conversion), four at a time and without a libm call.
/// Below 2^23 the fraction v − trunc(v) is exact and decides; from 2^23 up v is an integer
/// (roundf(v) = v); NaN and out-of-range values give `i32::MIN`, as the conversion does.
#[inline(always)]
pub(super) fn round_away_i32x4(v: [f32; 4]) -> [i32; 4] {
    let t = trunc_i32x4(v);
    std::array::from_fn(|k| {
        // t is v truncated (exact in f32 when in range); MIN flags NaN or out of range.
        let frac = v[k] - t[k] as f32;
        let up = i32::from(t[k] != i32::MIN && frac >= 0.5);
        let down = i32::from(t[k] != i32::MIN && frac <= -0.5);
        t[k] + up - down
    })
}

/// ggml `best_index_mxfp4` for every element of a block: the same comparisons per element, with
/// the elements side by side (branch-free, so they vectorise).
#[inline(always)]
pub(super) fn best_indices_mxfp4<const N: usize>(
    kvalues: &[f32; 16],
    x: &[f32; N],
    e: f32,
) -> [u8; N] {
    let mut best_err: [f32; N] = std::array::from_fn(|j| (kvalues[0] * e - x[j]).abs());
    let mut best_index = [0u8; N];
    for (i, &kv) in (1u8..).zip(&kvalues[1..]) {
        let level = kv * e;
        for j in 0..N {
            let err = (level - x[j]).abs();
            let better = err < best_err[j];
            best_err[j] = if better { err } else { best_err[j] };
            best_index[j] = if better { i } else { best_index[j] };
        }
    }
    best_index
}

/// ggml `make_qx_quants(n, nmax, x, L, rmse_type = 1, qw)`: a symmetric scale for codes
/// `L ∈ [0, 2·nmax)` (stored as `l + nmax`), weights `qw` or x², refined over 18 trial
/// scales −(nmax + 0.1·is)/max. Returns the scale.
///
/// The trials are independent (only the decisions depend on earlier ones), so their sums are
/// accumulated side by side — each still in ggml's element order — and the decisions are then
/// taken in ggml's trial order: the same bits, without waiting on one sum chain at a time.
pub(super) fn make_qx_quants<const N: usize>(
    nmax: i32,
    x: &[f32; N],
    codes: &mut [i8; N],
    qw: Option<&[f32; N]>,
) -> f32 {
    const TRIALS: usize = 18;
    let (amax, max) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        codes.fill(0);
        return 0.0;
    }
    // nmax is at most 32: exact in f32.
    let nmax_f = nmax as f32;
    let weights: [f32; N] = match qw {
        Some(w) => *w,
        None => x.map(|v| v * v),
    };
    let iscale = -nmax_f / max;
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for i in 0..N {
        let l = nearest_int(iscale * x[i]).clamp(-nmax, nmax - 1);
        // l + nmax lies in 0..2·nmax ≤ 64: fits an i8.
        codes[i] = (l + nmax) as i8;
        let w = weights[i];
        // |l| ≤ 32: exact in f32.
        let lf = l as f32;
        sumlx += w * x[i] * lf;
        suml2 += w * lf * lf;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    // Trial k is is = k − 9 for k < 9, k − 8 after (is = −9…−1, 1…9); |is| ≤ 9 is exact.
    let trial_is = |k: usize| if k < 9 { k as i32 - 9 } else { k as i32 - 8 };
    let trial_iscale: [f32; TRIALS] =
        std::array::from_fn(|k| -(nmax_f + 0.1 * trial_is(k) as f32) / max);
    let mut t_sumlx = [0.0f32; TRIALS];
    let mut t_suml2 = [0.0f32; TRIALS];
    for i in 0..N {
        let w = weights[i];
        let wx = w * x[i];
        for k in 0..TRIALS {
            let lf = nearest_int(trial_iscale[k] * x[i]).clamp(-nmax, nmax - 1) as f32;
            t_sumlx[k] += wx * lf;
            t_suml2[k] += w * lf * lf;
        }
    }
    for k in 0..TRIALS {
        let (sx, s2) = (t_sumlx[k], t_suml2[k]);
        if s2 > 0.0 && sx * sx > best * s2 {
            for i in 0..N {
                let l = nearest_int(trial_iscale[k] * x[i]).clamp(-nmax, nmax - 1);
                codes[i] = (l + nmax) as i8;
            }
            scale = sx / s2;
            best = scale * sx;
        }
    }
    scale
}

/// ggml `make_q3_quants(n, nmax, x, L, do_rmse = true)`: Q3_K's sub-block search, weights
/// x², up to 5 passes of coordinate descent on the codes. Codes are stored as `l + nmax`.
#[cfg(test)]
pub(super) fn make_q3_quants<const N: usize>(nmax: i32, x: &[f32; N], codes: &mut [i8; N]) -> f32 {
    let (amax, max) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        codes.fill(0);
        return 0.0;
    }
    // nmax = 4: exact.
    let iscale = -(nmax as f32) / max;
    let mut l_of = [0i32; N];
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for i in 0..N {
        let l = nearest_int(iscale * x[i]).clamp(-nmax, nmax - 1);
        l_of[i] = l;
        let w = x[i] * x[i];
        let lf = l as f32;
        sumlx += w * x[i] * lf;
        suml2 += w * lf * lf;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for i in 0..N {
            let w = x[i] * x[i];
            // Codes are in -nmax..nmax: exact in f32.
            let li = l_of[i] as f32;
            let mut slx = sumlx - w * x[i] * li;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * li * li;
                let new_l = nearest_int(x[i] * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != l_of[i] {
                    let nl = new_l as f32;
                    slx += w * x[i] * nl;
                    sl2 += w * nl * nl;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        l_of[i] = new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    for (c, &l) in codes.iter_mut().zip(&l_of) {
        // l + nmax lies in 0..8.
        *c = (l + nmax) as i8;
    }
    if suml2 > 0.0 { sumlx / suml2 } else { 0.0 }
}

/// ggml `make_q3_quants(16, 4, x, L, do_rmse = true)` on the 16 sub-blocks of a Q3_K
/// super-block at once: each sub-block's sums and coordinate-descent decisions are exactly
/// ggml's (in its element order), computed with the sub-blocks side by side and the branches
/// turned into selects. A sub-block whose pass changed nothing would change nothing in a
/// further pass either, so running the passes until every sub-block has settled (at most 5)
/// gives each one ggml's result. Returns the 16 scales; codes are stored as `l + 4`.
pub(super) fn make_q3_quants_x16(x: &[f32; 256], codes: &mut [i8; 256]) -> [f32; 16] {
    const NMAX: i32 = 4;
    const SUB: usize = 16;
    let subs = x.as_chunks::<SUB>().0;
    let mut zero = [false; SUB];
    let mut iscale = [0.0f32; SUB];
    for (j, sub) in subs.iter().enumerate() {
        let (amax, max) = signed_absmax(sub);
        zero[j] = amax < GROUP_MAX_EPS;
        iscale[j] = -(NMAX as f32) / max;
    }
    // Element i of every sub-block side by side: xt[i][j] = x[16j + i].
    let xt: [[f32; SUB]; SUB] = std::array::from_fn(|i| std::array::from_fn(|j| subs[j][i]));
    let mut l_of = [[0i32; SUB]; SUB];
    let mut sumlx = [0.0f32; SUB];
    let mut suml2 = [0.0f32; SUB];
    for i in 0..SUB {
        for j in 0..SUB {
            let xi = xt[i][j];
            let l = nearest_int(iscale[j] * xi).clamp(-NMAX, NMAX - 1);
            l_of[i][j] = l;
            let w = xi * xi;
            let lf = l as f32;
            sumlx[j] += w * xi * lf;
            suml2[j] += w * lf * lf;
        }
    }
    for _ in 0..5 {
        let mut changed = [false; SUB];
        for i in 0..SUB {
            for j in 0..SUB {
                let xi = xt[i][j];
                let w = xi * xi;
                let wx = w * xi;
                // Codes are in -4..4: exact in f32.
                let li = l_of[i][j] as f32;
                let slx = sumlx[j] - wx * li;
                let sl2 = suml2[j] - w * li * li;
                let new_l = nearest_int(xi * sl2 / slx).clamp(-NMAX, NMAX - 1);
                let nl = new_l as f32;
                let slx_new = slx + wx * nl;
                let sl2_new = sl2 + w * nl * nl;
                let accept = slx > 0.0
                    && new_l != l_of[i][j]
                    && sl2_new > 0.0
                    && slx_new * slx_new * suml2[j] > sumlx[j] * sumlx[j] * sl2_new;
                l_of[i][j] = if accept { new_l } else { l_of[i][j] };
                sumlx[j] = if accept { slx_new } else { sumlx[j] };
                suml2[j] = if accept { sl2_new } else { suml2[j] };
                changed[j] |= accept;
            }
        }
        if !changed.contains(&true) {
            break;
        }
    }
    let mut scales = [0.0f32; SUB];
    for j in 0..SUB {
        for i in 0..SUB {
            // l + 4 lies in 0..8; an all-zero sub-block stores codes 0, as ggml.
            codes[SUB * j + i] = if zero[j] {
                0
            } else {
                (l_of[i][j] + NMAX) as i8
            };
        }
        scales[j] = if !zero[j] && suml2[j] > 0.0 {
            sumlx[j] / suml2[j]
        } else {
            0.0
        };
    }
    scales
}

/// The fixed parameters of one `make_qkx2_quants` / `make_qkx3_quants` search.
#[derive(Clone, Copy)]
pub(super) struct MinSearch {
    /// Largest code.
    pub nmax: i32,
    /// First trial offset (added to nmax).
    pub rmin: f32,
    /// Step between trials.
    pub rdelta: f32,
    /// Trials after the first: is = 0..=nstep.
    pub nstep: i32,
    /// Weighted absolute error instead of squared error.
    pub use_mad: bool,
}

/// Trial scales of `make_qkx_quants` evaluated side by side (one speculative window).
const QKX_LANES: usize = 8;

/// ggml `make_qkx2_quants` (`max == min` is the degenerate test) and `make_qkx3_quants`
/// (`max <= min`; `qkx3 = true`), with weights given: an asymmetric (scale, min ≤ 0) for
/// codes 0..=nmax by weighted least squares over trial scales. Returns (scale, −min).
///
/// ggml runs the trials one after another, and a trial that improves the error moves `min`,
/// which the following trials use. Here a window of [`QKX_LANES`] trials is evaluated side by
/// side with the current `min` (each sum in ggml's element order), then the decisions are
/// taken in trial order; when an accepted trial changes `min`, the window restarts at the
/// next trial with the new `min`. Every trial that counts is thus computed exactly as in
/// ggml, with the same bits.
pub(super) fn make_qkx_quants<const N: usize>(
    p: MinSearch,
    x: &[f32; N],
    weights: &[f32; N],
    codes: &mut [u8; N],
    qkx3: bool,
) -> (f32, f32) {
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..N {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    let degenerate = if qkx3 { max <= min } else { max == min };
    if degenerate {
        codes.fill(0);
        return (0.0, -min);
    }
    // nmax ≤ 31: exact in f32.
    let nmax_f = p.nmax as f32;
    let iscale = nmax_f / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..N {
        let l = nearest_int(iscale * (x[i] - min)).clamp(0, p.nmax);
        // 0 ≤ l ≤ nmax ≤ 31.
        codes[i] = l as u8;
        let diff = scale * f32::from(codes[i]) + min - x[i];
        let diff = if p.use_mad { diff.abs() } else { diff * diff };
        best_error += weights[i] * diff;
    }
    if p.nstep < 1 {
        return (scale, -min);
    }
    let mut first = 0i32;
    while first <= p.nstep {
        // is ≤ nstep + 7 ≤ 43: exact in f32. Lanes past nstep are computed and ignored.
        let trial_iscale: [f32; QKX_LANES] = std::array::from_fn(|g| {
            (p.rmin + p.rdelta * (first + g as i32) as f32 + nmax_f) / (max - min)
        });
        let mut aux = [[0u8; QKX_LANES]; N];
        let mut sum_l = [0.0f32; QKX_LANES];
        let mut sum_l2 = [0.0f32; QKX_LANES];
        let mut sum_xl = [0.0f32; QKX_LANES];
        for i in 0..N {
            let (w, xi) = (weights[i], x[i]);
            let xm = xi - min;
            for g in 0..QKX_LANES {
                let l = nearest_int(trial_iscale[g] * xm).clamp(0, p.nmax);
                aux[i][g] = l as u8;
                let lf = l as f32;
                let wl = w * lf;
                sum_l[g] += wl;
                sum_l2[g] += wl * lf;
                sum_xl[g] += wl * xi;
            }
        }
        let mut det = [0.0f32; QKX_LANES];
        let mut this_scale = [0.0f32; QKX_LANES];
        let mut this_min = [0.0f32; QKX_LANES];
        for g in 0..QKX_LANES {
            det[g] = sum_w * sum_l2[g] - sum_l[g] * sum_l[g];
            this_scale[g] = (sum_w * sum_xl[g] - sum_x * sum_l[g]) / det[g];
            this_min[g] = (sum_l2[g] * sum_x - sum_l[g] * sum_xl[g]) / det[g];
            if this_min[g] > 0.0 {
                this_min[g] = 0.0;
                this_scale[g] = sum_xl[g] / sum_l2[g];
            }
        }
        let mut cur_error = [0.0f32; QKX_LANES];
        for i in 0..N {
            let (w, xi) = (weights[i], x[i]);
            for g in 0..QKX_LANES {
                let diff = this_scale[g] * f32::from(aux[i][g]) + this_min[g] - xi;
                let diff = if p.use_mad { diff.abs() } else { diff * diff };
                cur_error[g] += w * diff;
            }
        }
        let mut next = first + QKX_LANES as i32;
        for g in 0..QKX_LANES {
            let is = first + g as i32;
            if is > p.nstep {
                break;
            }
            // ggml evaluates the error only when det > 0.
            if det[g] > 0.0 && cur_error[g] < best_error {
                for (c, a) in codes.iter_mut().zip(&aux) {
                    *c = a[g];
                }
                best_error = cur_error[g];
                scale = this_scale[g];
                let moved = this_min[g].to_bits() != min.to_bits();
                min = this_min[g];
                if moved {
                    // Later trials must see the new min: restart the window after this one.
                    next = is + 1;
                    break;
                }
            }
        }
        first = next;
    }
    (scale, -min)
}

/// ggml `make_qp_quants(n, nmax, x, L, quant_weights)`: the unsigned scale of the sub-block
/// scales (or mins) of the imatrix K-quants, codes `L` stored as the C's `uint8_t` (a
/// negative code wraps, as there). Returns the scale.
pub(super) fn make_qp_quants<const N: usize>(
    nmax: i32,
    x: &[f32; N],
    codes: &mut [u8; N],
    quant_weights: &[f32; N],
) -> f32 {
    let mut max = 0.0f32;
    for &v in x {
        max = c_max(max, v);
    }
    if max < GROUP_MAX_EPS {
        codes.fill(0);
        return 0.0;
    }
    // nmax ≤ 63: exact.
    let nmax_f = nmax as f32;
    let mut iscale = nmax_f / max;
    for i in 0..N {
        // The C stores the int into a uint8_t: keep the low byte.
        codes[i] = nearest_int(iscale * x[i]) as u8;
    }
    let scale = 1.0 / iscale;
    let mut best_mse = 0.0f32;
    for i in 0..N {
        let diff = x[i] - scale * f32::from(codes[i]);
        let w = quant_weights[i];
        best_mse += w * diff * diff;
    }
    for is in -4i32..=4 {
        if is == 0 {
            continue;
        }
        // |is| ≤ 4: exact.
        let iscale_is = (0.1 * is as f32 + nmax_f) / max;
        let scale_is = 1.0 / iscale_is;
        let mut mse = 0.0f32;
        for i in 0..N {
            let l = nearest_int(iscale_is * x[i]).min(nmax);
            // |l| < 2^23: exact in f32.
            let diff = x[i] - scale_is * l as f32;
            let w = quant_weights[i];
            mse += w * diff * diff;
        }
        if mse < best_mse {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for i in 0..N {
        let l = nearest_int(iscale * x[i]).min(nmax);
        codes[i] = l as u8;
        let w = quant_weights[i];
        let lf = l as f32;
        sumlx += w * x[i] * lf;
        suml2 += w * lf * lf;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for i in 0..N {
            let w = quant_weights[i];
            let li = f32::from(codes[i]);
            let mut slx = sumlx - w * x[i] * li;
            let mut sl2 = suml2 - w * li * li;
            if slx > 0.0 && sl2 > 0.0 {
                let new_l = nearest_int(x[i] * sl2 / slx).min(nmax);
                if new_l != i32::from(codes[i]) {
                    let nl = new_l as f32;
                    slx += w * x[i] * nl;
                    sl2 += w * nl * nl;
                    if slx * slx * suml2 > sumlx * sumlx * sl2 {
                        codes[i] = new_l as u8;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    if suml2 > 0.0 { sumlx / suml2 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        assert_eq!(nearest_int(0.5), 0);
        assert_eq!(nearest_int(1.5), 2);
        assert_eq!(nearest_int(2.5), 2);
        assert_eq!(nearest_int(-0.5), 0);
        assert_eq!(nearest_int(-1.5), -2);
        assert_eq!(nearest_int(-2.5), -2);
        assert_eq!(nearest_int(3.49), 3);
        assert_eq!(nearest_int(-7.51), -8);
        assert_eq!(nearest_int(4_194_303.0), 4_194_303);
        // Out of the documented range the C gives wrapped bits, not a panic.
        let _ = nearest_int(f32::NAN);
        let _ = nearest_int(f32::INFINITY);
        let _ = nearest_int(1e30);
    }

    #[test]
    fn float_to_int_like_x86() {
        assert_eq!(trunc_i32(8.99), 8);
        assert_eq!(trunc_i32(-8.99), -8);
        assert_eq!(trunc_i32(f32::NAN), i32::MIN);
        assert_eq!(trunc_i32(3e9), i32::MIN);
        assert_eq!(trunc_i32(-2_147_483_648.0), i32::MIN);
        // (uint8_t)(-24.0f) keeps the low byte of -24: 0xE8.
        assert_eq!(trunc_i32(-24.0) as u8, 0xE8);
    }

    #[test]
    fn fp16_is_rne_and_nan_is_canonical() {
        // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even gives 1.0 = 0x3C00.
        assert_eq!(fp16_bits(1.0 + 2f32.powi(-11)), 0x3C00);
        // 1 + 3·2^-11 is halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even): 0x3C02.
        assert_eq!(fp16_bits(1.0 + 3.0 * 2f32.powi(-11)), 0x3C02);
        assert_eq!(fp16_bits(65520.0), 0x7C00);
        assert_eq!(fp16_bits(f32::from_bits(0x7F80_0001)), 0x7E00);
        assert_eq!(fp16_bits(-f32::NAN), 0xFE00);
    }

    #[test]
    fn best_index_int8_ties_go_up() {
        let v: [f32; 16] = std::array::from_fn(|i| f32::from(i as u8) * 2.0);
        assert_eq!(best_index_int8(&v, -1.0), 0);
        assert_eq!(best_index_int8(&v, 31.0), 15);
        // 3.0 is halfway between 2 (index 1) and 4 (index 2): the upper entry.
        assert_eq!(best_index_int8(&v, 3.0), 2);
        assert_eq!(best_index_int8(&v, 2.9), 1);
        assert_eq!(best_index_int8(&v, f32::NAN), 15);
    }

    #[test]
    fn round_away_matches_roundf_then_truncation() {
        // roundf is half away from zero (f32::round); the conversion truncates, NaN and out of
        // range give i32::MIN. 0.49999997 is the classic case floor(v + 0.5) gets wrong.
        let mut values = vec![
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            0.49999997,
            -0.49999997,
            126.5,
            -127.5,
            0.0,
            -0.0,
            8_388_607.5,
            8_388_608.0,
            2.0e9,
            -2.147_483_6e9,
            3.0e9,
            -3.0e9,
            1e-40,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ];
        // A sweep over every 2^-6 step in [-200, 200] and every 1009th f32 bit pattern.
        values.extend((-12_800..=12_800).map(|k| k as f32 / 64.0));
        values.extend((0..u32::MAX / 1009).map(|k| f32::from_bits(k * 1009)));
        for quad in values.chunks(4) {
            let mut v = [0.0f32; 4];
            v[..quad.len()].copy_from_slice(quad);
            let got = round_away_i32x4(v);
            for k in 0..4 {
                let r = v[k].round();
                let want = if (-2_147_483_648.0..2_147_483_648.0).contains(&r) {
                    r as i32
                } else {
                    i32::MIN
                };
                assert_eq!(got[k], want, "{:e} ({:#010x})", v[k], v[k].to_bits());
                assert_eq!(trunc_i32(v[k]), trunc_i32x4(v)[k]);
            }
        }
    }

    #[test]
    fn q3_quants_side_by_side_equal_one_at_a_time() {
        // Sub-blocks of N(0,1)-like values (a fixed LCG), one all-zero sub-block, one with a
        // single outlier, one constant, one of tiny values.
        let mut state = 0x2545_F491u32;
        let mut x: [f32; 256] = std::array::from_fn(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            // 24 random bits to a value in [-2, 2).
            (state >> 8) as f32 / 4_194_304.0 - 2.0
        });
        x[16..32].fill(0.0);
        x[40] = 25.0;
        x[64..80].fill(0.37);
        for v in &mut x[80..96] {
            *v *= 1e-20;
        }
        let mut lanes = [0i8; 256];
        let scales = make_q3_quants_x16(&x, &mut lanes);
        for j in 0..16 {
            let sub: &[f32; 16] = x[16 * j..16 * j + 16].try_into().expect("16");
            let mut codes = [0i8; 16];
            let scale = make_q3_quants(4, sub, &mut codes);
            assert_eq!(scales[j].to_bits(), scale.to_bits(), "sub-block {j}");
            assert_eq!(&lanes[16 * j..16 * j + 16], &codes, "sub-block {j}");
        }
    }

    #[test]
    fn trunc_low_bytes_keep_the_low_byte() {
        let v: [f32; 32] = std::array::from_fn(|k| match k {
            0 => f32::NAN,
            1 => 1e10,
            2 => -1.5,
            3 => 300.7,
            4 => -129.9,
            _ => k as f32 * 7.3 - 100.0,
        });
        let bytes = trunc_low_bytes(&v);
        for k in 0..32 {
            assert_eq!(bytes[k], trunc_i32(v[k]) as u8, "{}", v[k]);
        }
        // NaN and out of range: i32::MIN, low byte 0; -1.5 -> -1 -> 0xFF; 300.7 -> 300 -> 0x2C.
        assert_eq!(&bytes[..4], &[0, 0, 0xFF, 0x2C]);
    }

    #[test]
    fn signed_absmax_is_the_first_largest_magnitude() {
        fn sequential(x: &[f32]) -> (f32, f32) {
            let (mut amax, mut max) = (0.0f32, 0.0f32);
            for &v in x {
                if v.abs() > amax {
                    amax = v.abs();
                    max = v;
                }
            }
            (amax, max)
        }
        let cases: [[f32; 8]; 6] = [
            [1.0, -3.0, 3.0, 2.0, -1.0, 0.0, 0.5, -3.0],
            [3.0, -3.0, 0.0, 0.0, 0.0, 0.0, 0.0, -3.0],
            [0.0, -0.0, 0.0, -0.0, 0.0, 0.0, 0.0, 0.0],
            [f32::NAN, 1.0, -2.0, f32::NAN, 2.0, 0.0, 0.0, 0.0],
            [f32::NAN; 8],
            [-f32::INFINITY, 5.0, f32::INFINITY, 0.0, 0.0, 0.0, 0.0, 0.0],
        ];
        for x in cases {
            let (a, m) = signed_absmax(&x);
            let (sa, sm) = sequential(&x);
            assert_eq!(
                (a.to_bits(), m.to_bits()),
                (sa.to_bits(), sm.to_bits()),
                "{x:?}"
            );
        }
    }

    #[test]
    fn best_index_mxfp4_ties_keep_the_smaller_magnitude() {
        let kv: [f32; 16] = [
            0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 0.0, -1.0, -2.0, -3.0, -4.0, -6.0, -8.0, -12.0,
        ];
        // With e = 1: 5.0 is between 4 (index 4) and 6 (index 5): index 4; -5.0 -> index 12.
        assert_eq!(best_index_mxfp4(&kv, 5.0, 1.0), 4);
        assert_eq!(best_index_mxfp4(&kv, -5.0, 1.0), 12);
        assert_eq!(best_index_mxfp4(&kv, 0.4, 1.0), 0);
        assert_eq!(best_index_mxfp4(&kv, -0.6, 1.0), 9);
        assert_eq!(best_index_mxfp4(&kv, f32::NAN, 1.0), 0);
        assert_eq!(best_index_mxfp4(&kv, 100.0, 1.0), 7);
        // The block version makes the same choice for every element.
        let x: [f32; 16] = [
            5.0,
            -5.0,
            0.4,
            -0.6,
            f32::NAN,
            100.0,
            0.25,
            -0.25,
            2.5,
            -2.5,
            7.0,
            -7.0,
            10.0,
            -10.0,
            0.0,
            -0.0,
        ];
        let block = best_indices_mxfp4(&kv, &x, 1.0);
        for (j, &v) in x.iter().enumerate() {
            assert_eq!(block[j], best_index_mxfp4(&kv, v, 1.0), "{v}");
        }
    }
}
