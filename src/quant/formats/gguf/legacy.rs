//! The legacy GGUF quantizers on blocks of 32 — Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 — ported from
//! ggml 0.20.2 `quantize_row_*_ref` (no importance matrix) and `quantize_row_*_impl` (with
//! one), one row at a time (the `_ref` functions are block-independent, so a row at a time is
//! the same as ggml's whole-chunk call).

use super::common::{
    MinSearch, c_max, fp16_bits, make_qkx_quants, make_qx_quants, round_away_i32x4, signed_absmax,
    trunc_low_bytes,
};

/// Elements per legacy block (ggml QK8_0 = QK4_0 = … = 32).
const QK: usize = 32;

/// Writes the f16 `d` at bytes 0..2 of a block.
fn put_f16(block: &mut [u8], at: usize, value: f32) {
    block[at..at + 2].copy_from_slice(&fp16_bits(value).to_le_bytes());
}

/// ggml `quantize_row_q8_0_ref`: d = amax/127, codes `roundf(x · (1/d))` (half away from
/// zero, with the f32 d), d stored f16. ggml ignores an importance matrix for Q8_0.
pub(super) fn q8_0_row(x: &[f32], out: &mut [u8]) {
    for (xb, y) in x
        .as_chunks::<QK>()
        .0
        .iter()
        .zip(out.as_chunks_mut::<34>().0)
    {
        let mut amax = 0.0f32;
        for &v in xb {
            amax = c_max(amax, v.abs());
        }
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(y, 0, d);
        let (quads, _) = xb.as_chunks::<4>();
        for (q4, x4) in y[2..].chunks_exact_mut(4).zip(quads) {
            // The C assigns roundf(x·id) to an int8_t: the low byte of the conversion.
            let codes = round_away_i32x4(x4.map(|v| v * id));
            for (q, c) in q4.iter_mut().zip(codes) {
                *q = c as u8;
            }
        }
    }
}

/// The block minimum and maximum as the Q4_1/Q5_1 `_ref` loops find them (`if (v < min) min
/// = v; if (v > max) max = v;` from ±FLT_MAX; 0 not forced in). Four interleaved lanes give
/// the same bits, except that equal extremes of different sign (±0) depend on which came
/// first: then the sequential scan decides.
fn min_max(xb: &[f32; QK]) -> (f32, f32) {
    let mut lo = [f32::MAX; 4];
    let mut hi = [-f32::MAX; 4];
    for quad in xb.as_chunks::<4>().0 {
        for j in 0..4 {
            let v = quad[j];
            if v < lo[j] {
                lo[j] = v;
            }
            if v > hi[j] {
                hi[j] = v;
            }
        }
    }
    let (mut min, mut max) = (lo[0], hi[0]);
    for j in 1..4 {
        if lo[j] < min {
            min = lo[j];
        }
        if hi[j] > max {
            max = hi[j];
        }
    }
    if min == 0.0 || max == 0.0 {
        (min, max) = (f32::MAX, -f32::MAX);
        for &v in xb {
            if v < min {
                min = v;
            }
            if v > max {
                max = v;
            }
        }
    }
    (min, max)
}

/// The low bytes of `trunc_i32(f(x))` for the 32 values of a block: what the C's
/// `(int8_t)(float)` and `(uint8_t)(float)` keep, computed as its vectorised loop does.
#[inline(always)]
fn trunc_block(xb: &[f32; QK], f: impl Fn(f32) -> f32) -> [u8; QK] {
    trunc_low_bytes(&xb.map(f))
}

/// Packs 32 codes of up to 5 bits: nibbles j | j+16 << 4 into `qs`, bit 4 of code j into bit
/// j of the little-endian `qh` (the Q5 layout; Q4 callers have no bit 4).
fn pack_q5(codes: &[u8; QK], qs: &mut [u8], qh: Option<&mut [u8]>) {
    let mut high = 0u32;
    for j in 0..16 {
        let (c0, c1) = (codes[j], codes[j + 16]);
        qs[j] = (c0 & 0x0F) | ((c1 & 0x0F) << 4);
        high |= u32::from((c0 & 0x10) >> 4) << j;
        high |= u32::from((c1 & 0x10) >> 4) << (j + 16);
    }
    if let Some(qh) = qh {
        qh.copy_from_slice(&high.to_le_bytes());
    }
}

/// ggml `quantize_row_q4_0_ref`: d = max/−8 (signed), codes `min(15, (int8)(x/d + 8.5))`.
pub(super) fn q4_0_row(x: &[f32], out: &mut [u8]) {
    for (xb, y) in x
        .as_chunks::<QK>()
        .0
        .iter()
        .zip(out.as_chunks_mut::<18>().0)
    {
        let d = signed_absmax(xb).1 / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(y, 0, d);
        let t = trunc_block(xb, |v| v * id + 8.5);
        for j in 0..16 {
            // (int8_t)(float) then MIN(15, ·) stored in a uint8_t: the byte read as signed.
            let xi0 = (t[j] as i8).min(15) as u8;
            let xi1 = (t[j + 16] as i8).min(15) as u8;
            y[2 + j] = xi0 | (xi1 << 4);
        }
    }
}

/// ggml `quantize_row_q4_1_ref`: d = (max − min)/15, m = min, codes `min(15, (int8)((x −
/// min)/d + 0.5))` with the f32 min.
pub(super) fn q4_1_row(x: &[f32], out: &mut [u8]) {
    for (xb, y) in x
        .as_chunks::<QK>()
        .0
        .iter()
        .zip(out.as_chunks_mut::<20>().0)
    {
        let (min, max) = min_max(xb);
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(y, 0, d);
        put_f16(y, 2, min);
        let t = trunc_block(xb, |v| (v - min) * id + 0.5);
        for j in 0..16 {
            // The byte read as signed, as above.
            let xi0 = (t[j] as i8).min(15) as u8;
            let xi1 = (t[j + 16] as i8).min(15) as u8;
            y[4 + j] = xi0 | (xi1 << 4);
        }
    }
}

/// ggml `quantize_row_q5_0_ref`: d = max/−16, codes `min(31, (int8)(x/d + 16.5))`.
pub(super) fn q5_0_row(x: &[f32], out: &mut [u8]) {
    for (xb, y) in x
        .as_chunks::<QK>()
        .0
        .iter()
        .zip(out.as_chunks_mut::<22>().0)
    {
        let d = signed_absmax(xb).1 / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(y, 0, d);
        let t = trunc_block(xb, |v| v * id + 16.5);
        // (int8_t)(float), MIN(31, ·), uint8_t: the byte read as signed.
        let codes: [u8; QK] = t.map(|v| (v as i8).min(31) as u8);
        let (qh, qs) = y[2..].split_at_mut(4);
        pack_q5(&codes, qs, Some(qh));
    }
}

/// ggml `quantize_row_q5_1_ref`: d = (max − min)/31, m = min, codes `(uint8)((x − min)/d +
/// 0.5)` (no clamp).
pub(super) fn q5_1_row(x: &[f32], out: &mut [u8]) {
    for (xb, y) in x
        .as_chunks::<QK>()
        .0
        .iter()
        .zip(out.as_chunks_mut::<24>().0)
    {
        let (min, max) = min_max(xb);
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(y, 0, d);
        put_f16(y, 2, min);
        // (uint8_t)(float): the low byte.
        let codes: [u8; QK] = trunc_block(xb, |v| (v - min) * id + 0.5);
        let (qh, qs) = y[4..].split_at_mut(4);
        pack_q5(&codes, qs, Some(qh));
    }
}

/// ggml's imatrix weights of the legacy `_impl` quantizers: σ² = Σx²/n over the whole row,
/// w_j = qw_j · sqrt(σ² + x_j²).
fn row_sigma2(x: &[f32]) -> f32 {
    let mut sum_x2 = 0.0f32;
    for &v in x {
        sum_x2 += v * v;
    }
    // The C divides by the int64 row length converted to float (exact below 2^24).
    sum_x2 / x.len() as f32
}

fn block_weights(sigma2: f32, xb: &[f32; QK], qw: &[f32; QK]) -> [f32; QK] {
    std::array::from_fn(|j| qw[j] * (sigma2 + xb[j] * xb[j]).sqrt())
}

/// ggml `quantize_row_q4_0_impl` with an importance matrix: `make_qx_quants(32, 8, x, L, 1,
/// w)`, d stored f16, codes from the search.
pub(super) fn q4_0_row_imatrix(x: &[f32], qw: &[f32], out: &mut [u8]) {
    let sigma2 = row_sigma2(x);
    let blocks = x.as_chunks::<QK>().0.iter().zip(qw.as_chunks::<QK>().0);
    for ((xb, wb), y) in blocks.zip(out.as_chunks_mut::<18>().0) {
        let weight = block_weights(sigma2, xb, wb);
        let mut codes = [0i8; QK];
        let d = make_qx_quants(8, xb, &mut codes, Some(&weight));
        put_f16(y, 0, d);
        for j in 0..16 {
            // Codes are 0..16 as int8; the C ORs them as ints into a uint8_t.
            y[2 + j] = (codes[j] as u8) | ((codes[j + 16] as u8) << 4);
        }
    }
}

/// ggml `quantize_row_q5_0_impl`: `make_qx_quants(32, 16, x, L, 1, w)`.
pub(super) fn q5_0_row_imatrix(x: &[f32], qw: &[f32], out: &mut [u8]) {
    let sigma2 = row_sigma2(x);
    let blocks = x.as_chunks::<QK>().0.iter().zip(qw.as_chunks::<QK>().0);
    for ((xb, wb), y) in blocks.zip(out.as_chunks_mut::<22>().0) {
        let weight = block_weights(sigma2, xb, wb);
        let mut codes = [0i8; QK];
        let d = make_qx_quants(16, xb, &mut codes, Some(&weight));
        put_f16(y, 0, d);
        // Codes are 0..32: the same bits as u8.
        let codes: [u8; QK] = codes.map(|c| c as u8);
        let (qh, qs) = y[2..].split_at_mut(4);
        pack_q5(&codes, qs, Some(qh));
    }
}

/// The `make_qkx3_quants` search the Q4_1/Q5_1 `_impl` quantizers run.
fn qkx3(nmax: i32) -> MinSearch {
    MinSearch {
        nmax,
        rmin: -0.9,
        rdelta: 0.05,
        nstep: 36,
        use_mad: false,
    }
}

/// ggml `quantize_row_q4_1_impl`: `make_qkx3_quants(32, 15, x, w, …, −0.9, 0.05, 36)`, d and
/// m = −min stored f16.
pub(super) fn q4_1_row_imatrix(x: &[f32], qw: &[f32], out: &mut [u8]) {
    let sigma2 = row_sigma2(x);
    let blocks = x.as_chunks::<QK>().0.iter().zip(qw.as_chunks::<QK>().0);
    for ((xb, wb), y) in blocks.zip(out.as_chunks_mut::<20>().0) {
        let weight = block_weights(sigma2, xb, wb);
        let mut codes = [0u8; QK];
        let (d, the_min) = make_qkx_quants(qkx3(15), xb, &weight, &mut codes, true);
        put_f16(y, 0, d);
        put_f16(y, 2, -the_min);
        for j in 0..16 {
            y[4 + j] = codes[j] | (codes[j + 16] << 4);
        }
    }
}

/// ggml `quantize_row_q5_1_impl`: `make_qkx3_quants(32, 31, …)`.
pub(super) fn q5_1_row_imatrix(x: &[f32], qw: &[f32], out: &mut [u8]) {
    let sigma2 = row_sigma2(x);
    let blocks = x.as_chunks::<QK>().0.iter().zip(qw.as_chunks::<QK>().0);
    for ((xb, wb), y) in blocks.zip(out.as_chunks_mut::<24>().0) {
        let weight = block_weights(sigma2, xb, wb);
        let mut codes = [0u8; QK];
        let (d, the_min) = make_qkx_quants(qkx3(31), xb, &weight, &mut codes, true);
        put_f16(y, 0, d);
        put_f16(y, 2, -the_min);
        let (qh, qs) = y[4..].split_at_mut(4);
        pack_q5(&codes, qs, Some(qh));
    }
}
