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
    if (-2_147_483_648.0..2_147_483_648.0).contains(&v) {
        // In range: the saturating cast is the truncation.
        v as i32
    } else {
        i32::MIN
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
#[inline(always)]
pub(super) fn best_index_mxfp4(kvalues: &[f32; 16], x: f32, e: f32) -> u8 {
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

/// ggml `make_qx_quants(n, nmax, x, L, rmse_type = 1, qw)`: a symmetric scale for codes
/// `L ∈ [0, 2·nmax)` (stored as `l + nmax`), weights `qw` or x², refined over 18 trial
/// scales −(nmax + 0.1·is)/max. Returns the scale.
pub(super) fn make_qx_quants<const N: usize>(
    nmax: i32,
    x: &[f32; N],
    codes: &mut [i8; N],
    qw: Option<&[f32; N]>,
) -> f32 {
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        codes.fill(0);
        return 0.0;
    }
    // nmax is at most 32: exact in f32.
    let nmax_f = nmax as f32;
    let weight = |i: usize| match qw {
        Some(w) => w[i],
        None => x[i] * x[i],
    };
    let mut iscale = -nmax_f / max;
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for i in 0..N {
        let l = nearest_int(iscale * x[i]).clamp(-nmax, nmax - 1);
        // l + nmax lies in 0..2·nmax ≤ 64: fits an i8.
        codes[i] = (l + nmax) as i8;
        let w = weight(i);
        // |l| ≤ 32: exact in f32.
        let lf = l as f32;
        sumlx += w * x[i] * lf;
        suml2 += w * lf * lf;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9i32..=9 {
        if is == 0 {
            continue;
        }
        // |is| ≤ 9: exact in f32.
        iscale = -(nmax_f + 0.1 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for i in 0..N {
            let l = nearest_int(iscale * x[i]).clamp(-nmax, nmax - 1);
            let w = weight(i);
            let lf = l as f32;
            sumlx += w * x[i] * lf;
            suml2 += w * lf * lf;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for i in 0..N {
                let l = nearest_int(iscale * x[i]).clamp(-nmax, nmax - 1);
                codes[i] = (l + nmax) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// ggml `make_q3_quants(n, nmax, x, L, do_rmse = true)`: Q3_K's sub-block search, weights
/// x², up to 5 passes of coordinate descent on the codes. Codes are stored as `l + nmax`.
pub(super) fn make_q3_quants<const N: usize>(nmax: i32, x: &[f32; N], codes: &mut [i8; N]) -> f32 {
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
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

/// ggml `make_qkx2_quants` (`max == min` is the degenerate test) and `make_qkx3_quants`
/// (`max <= min`; `qkx3 = true`), with weights given: an asymmetric (scale, min ≤ 0) for
/// codes 0..=nmax by weighted least squares over trial scales. Returns (scale, −min).
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
    let mut iscale = nmax_f / (max - min);
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
    let mut aux = [0u8; N];
    for is in 0..=p.nstep {
        // is ≤ 36: exact in f32.
        iscale = (p.rmin + p.rdelta * is as f32 + nmax_f) / (max - min);
        let mut sum_l = 0.0f32;
        let mut sum_l2 = 0.0f32;
        let mut sum_xl = 0.0f32;
        for i in 0..N {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, p.nmax);
            aux[i] = l as u8;
            let w = weights[i];
            let lf = l as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..N {
                let diff = this_scale * f32::from(aux[i]) + this_min - x[i];
                let diff = if p.use_mad { diff.abs() } else { diff * diff };
                cur_error += weights[i] * diff;
            }
            if cur_error < best_error {
                *codes = aux;
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
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
    }
}
