//! The 4-bit table formats — IQ4_NL, ggml's MXFP4 (type 39) and ggml's NVFP4 (type 40) —
//! ported from ggml 0.20.2: `quantize_iq4_nl` (which runs `quantize_row_iq4_nl_impl` with
//! ntry = 7, with or without importance weights), `quantize_row_mxfp4_ref` and
//! `quantize_row_nvfp4_ref` (both ignore importance weights).

use super::common::{
    GROUP_MAX_EPS, best_index_int8, best_indices_mxfp4, fp16_bits, signed_absmax, trunc_i32,
};
use crate::tensor::gguf_blocks::{
    KVALUES_IQ4NL, KVALUES_MXFP4, e8m0_to_f32_half, ue4m3_to_f32_half,
};

/// The IQ4_NL levels as f32 (the C compares floats with the int8 table promoted).
fn iq4nl_levels() -> [f32; 16] {
    KVALUES_IQ4NL.map(f32::from)
}

/// The doubled E2M1 levels as f32.
fn mxfp4_levels() -> [f32; 16] {
    KVALUES_MXFP4.map(f32::from)
}

/// ggml `quantize_row_iq4_nl_impl(32, 32, x, …, values = kvalues_iq4nl, qw, ntry = 7)` on one
/// block of 32: the weighted best scale over the start d = −max/−127 and 15 trial inverse
/// scales (t − 127)/max, then codes re-picked with 1/d (the f32 d; d is stored f16).
fn iq4_nl_block(x: &[f32; 32], qw: Option<&[f32; 32]>, y: &mut [u8; 18]) {
    const NTRY: i32 = 7;
    let values = iq4nl_levels();
    let mut sigma2 = 0.0f32;
    for &v in x {
        sigma2 += v * v;
    }
    sigma2 *= 2.0 / 32.0;
    let weight: [f32; 32] = match qw {
        Some(w) => std::array::from_fn(|j| w[j] * (sigma2 + x[j] * x[j]).sqrt()),
        None => x.map(|v| v * v),
    };
    let (amax, max) = signed_absmax(x);
    let scale = if amax < GROUP_MAX_EPS {
        0.0
    } else {
        let mut d = -max / values[0];
        let mut id = 1.0 / d;
        let mut sumqx = 0.0f32;
        let mut sumq2 = 0.0f32;
        for j in 0..32 {
            let q = values[best_index_int8(&values, id * x[j])];
            let w = weight[j];
            sumqx += w * q * x[j];
            sumq2 += w * q * q;
        }
        d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
        let mut best = d * sumqx;
        for itry in -NTRY..=NTRY {
            // itry + values[0] is an int in -134..-120: exact in f32.
            id = (itry - 127) as f32 / max;
            sumqx = 0.0;
            sumq2 = 0.0;
            for j in 0..32 {
                let q = values[best_index_int8(&values, id * x[j])];
                let w = weight[j];
                sumqx += w * q * x[j];
                sumq2 += w * q * q;
            }
            if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        d
    };
    y[..2].copy_from_slice(&fp16_bits(scale).to_le_bytes());
    let id = if scale != 0.0 { 1.0 / scale } else { 0.0 };
    let codes: [u8; 32] = std::array::from_fn(|j| {
        // best_index_int8 returns 0..16.
        best_index_int8(&values, id * x[j]) as u8
    });
    for j in 0..16 {
        y[2 + j] = codes[j] | (codes[j + 16] << 4);
    }
}

/// IQ4_NL: one row, with or without importance weights (one per column).
pub(super) fn iq4_nl_row(x: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
    let qw_blocks = qw.map(|w| w.as_chunks::<32>().0);
    let blocks = x
        .as_chunks::<32>()
        .0
        .iter()
        .zip(out.as_chunks_mut::<18>().0);
    for (i, (xb, y)) in blocks.enumerate() {
        iq4_nl_block(xb, qw_blocks.map(|b| &b[i]), y);
    }
}

/// ggml's MXFP4 shared exponent: `amax > 0 ? (uint8_t)(floorf(log2f(amax)) − 2 + 127) : 0`.
/// `f32::log2` is the platform's `log2f` (glibc's on Linux, the library ggml's wheel calls);
/// the float-to-uint8 conversion keeps the low byte as ggml's x86 build does (so amax below
/// 2^-125 wraps, as there).
pub(super) fn mxfp4_exponent(amax: f32) -> u8 {
    if amax > 0.0 {
        trunc_i32(amax.log2().floor() - 2.0 + 127.0) as u8
    } else {
        0
    }
}

/// ggml `quantize_row_mxfp4_ref`: one E8M0 byte per 32, elements by `best_index_mxfp4`
/// against d = 2^(e − 128) (half the E8M0 value; the levels are doubled).
pub(super) fn mxfp4_row(x: &[f32], out: &mut [u8]) {
    let kv = mxfp4_levels();
    for (xb, y) in x
        .as_chunks::<32>()
        .0
        .iter()
        .zip(out.as_chunks_mut::<17>().0)
    {
        let mut amax = 0.0f32;
        for &v in xb {
            if amax < v.abs() {
                amax = v.abs();
            }
        }
        let e = mxfp4_exponent(amax);
        let d = e8m0_to_f32_half(e);
        y[0] = e;
        // Two halves of 16 (the comparisons per element are the same either way).
        let [lo, hi] = xb.as_chunks::<16>().0 else {
            unreachable!("32 = 2 × 16")
        };
        let (c0, c1) = (
            best_indices_mxfp4(&kv, lo, d),
            best_indices_mxfp4(&kv, hi, d),
        );
        for j in 0..16 {
            y[1 + j] = c0[j] | (c1[j] << 4);
        }
    }
}

/// ggml `ggml_fp32_to_ue4m3`: an unsigned E4M3 byte for a positive scale, mantissa rounded
/// half up (bit 19 of the f32), subnormals `(int)(x·512 + 0.5)` clamped to 7, everything
/// from 256 up stored as 0x7E (448); x ≤ 0 or NaN gives 0.
#[allow(
    clippy::neg_cmp_op_on_partial_ord,
    reason = "one test that NaN fails too, as ggml's `!(x > 0)`"
)]
pub(super) fn ue4m3_from_f32(x: f32) -> u8 {
    // NaN fails the comparison too: C's `!(x > 0)`, kept literally.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    if !(x > 0.0) {
        return 0;
    }
    let x = if x > 448.0 { 448.0 } else { x };
    let bits = x.to_bits();
    // An 8-bit field minus the bias: -127..128.
    let fp32_exp = ((bits >> 23) & 0xFF) as i32 - 127;
    let fp32_man = ((bits >> 20) & 0x7) as i32;
    let mut exp = fp32_exp + 7;
    if exp <= 0 {
        let man = trunc_i32(x * 512.0 + 0.5).min(7);
        if man < 1 {
            return 0;
        }
        // 1..=7.
        return man as u8;
    }
    if exp >= 15 {
        return 0x7E;
    }
    let round_bit = ((bits >> 19) & 1) as i32;
    let mut man = fp32_man + round_bit;
    if man > 7 {
        man = 0;
        exp += 1;
        if exp >= 15 {
            return 0x7E;
        }
    }
    // exp in 1..15, man in 0..8: one byte.
    ((exp << 3) | man) as u8
}

/// ggml `quantize_row_nvfp4_ref`: per 16 elements ue = ue4m3(amax/6), elements by
/// `best_index_mxfp4` against ue4m3 value / 2; sub-block s stores element j in the low nibble
/// and j + 8 in the high nibble of `qs[8s + j]`.
pub(super) fn nvfp4_row(x: &[f32], out: &mut [u8]) {
    let kv = mxfp4_levels();
    for (xb, y) in x
        .as_chunks::<64>()
        .0
        .iter()
        .zip(out.as_chunks_mut::<36>().0)
    {
        for (s, sub) in xb.as_chunks::<16>().0.iter().enumerate() {
            let mut amax = 0.0f32;
            for &v in sub {
                if amax < v.abs() {
                    amax = v.abs();
                }
            }
            let ue = ue4m3_from_f32(amax / 6.0);
            y[s] = ue;
            let d = ue4m3_to_f32_half(ue);
            let codes = best_indices_mxfp4(&kv, sub, d);
            for j in 0..8 {
                y[4 + 8 * s + j] = codes[j] | (codes[j + 8] << 4);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ue4m3_rounds_half_up_and_saturates_at_256() {
        // FORMATS-NOTES §1.3: amax 6.375 -> 6.375/6 = 1.0625 = 1 + 1/16, exactly between 1.0
        // (0x38) and 1.125 (0x39): half up gives 0x39 where RNE would give 0x38.
        assert_eq!(ue4m3_from_f32(6.375 / 6.0), 0x39);
        // amax 1700 -> 283.3: every value from 256 up is 0x7E (448).
        assert_eq!(ue4m3_from_f32(1700.0 / 6.0), 0x7E);
        assert_eq!(ue4m3_from_f32(256.0), 0x7E);
        assert_eq!(ue4m3_from_f32(1e30), 0x7E);
        // Just below 256: 1.875 · 2^7 = 240 = 0x77 (exp 14, man 7).
        assert_eq!(ue4m3_from_f32(240.0), 0x77);
        // 1.0 = 0x38; subnormals: 3 · 2^-9 = 0x03; 7.9 · 2^-9 clamps to 7 (never 0x08).
        assert_eq!(ue4m3_from_f32(1.0), 0x38);
        assert_eq!(ue4m3_from_f32(3.0 / 512.0), 0x03);
        assert_eq!(ue4m3_from_f32(7.9 / 512.0), 0x07);
        // Below half the smallest subnormal: 0. Non-positive and NaN: 0.
        assert_eq!(ue4m3_from_f32(0.4 / 512.0), 0);
        assert_eq!(ue4m3_from_f32(0.0), 0);
        assert_eq!(ue4m3_from_f32(-1.0), 0);
        assert_eq!(ue4m3_from_f32(f32::NAN), 0);
    }

    #[test]
    fn mxfp4_exponent_as_ggml() {
        // amax 1: floor(log2 1) = 0 -> 0 - 2 + 127 = 125. amax 6: floor(2.58) = 2 -> 127.
        assert_eq!(mxfp4_exponent(1.0), 125);
        assert_eq!(mxfp4_exponent(6.0), 127);
        assert_eq!(mxfp4_exponent(0.0), 0);
        // amax 2^-126: -126 - 2 + 127 = -1 -> the low byte 0xFF, as ggml's x86 build stores it.
        assert_eq!(mxfp4_exponent(f32::MIN_POSITIVE), 0xFF);
    }
}
