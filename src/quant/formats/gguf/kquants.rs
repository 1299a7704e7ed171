//! The K-quant quantizers on super-blocks of 256 — Q2_K, Q3_K, Q4_K, Q5_K, Q6_K — ported
//! from ggml 0.20.2 `quantize_row_*_K_ref` (no importance matrix) and `quantize_row_*_K_impl`
//! (with one, indexed by the super-block's columns).
//!
//! Block layouts (ggml-common.h), byte offsets:
//! - Q2_K (84): `scales[16]` @0, `qs[64]` @16, `d` @80, `dmin` @82;
//! - Q3_K (110): `hmask[32]` @0, `qs[64]` @32, `scales[12]` @96, `d` @108;
//! - Q4_K (144): `d` @0, `dmin` @2, `scales[12]` @4, `qs[128]` @16;
//! - Q5_K (176): `d` @0, `dmin` @2, `scales[12]` @4, `qh[32]` @16, `qs[128]` @48;
//! - Q6_K (210): `ql[128]` @0, `qh[64]` @128, `scales[16]` (int8) @192, `d` @208.

use super::common::{
    GROUP_MAX_EPS, MinSearch, fp16_bits, make_q3_quants_x16, make_qkx_quants, make_qp_quants,
    make_qx_quants, nearest_int, through_fp16,
};

/// Elements per super-block (ggml QK_K).
pub(super) const QK_K: usize = 256;

fn put_f16(block: &mut [u8], at: usize, value: f32) -> f32 {
    let bits = fp16_bits(value);
    block[at..at + 2].copy_from_slice(&bits.to_le_bytes());
    super::common::fp16_value(bits)
}

fn sum_squares(x: &[f32]) -> f32 {
    let mut sum = 0.0f32;
    for &v in x {
        sum += v * v;
    }
    sum
}

/// Q2_K/Q3_K code packing: per 128 elements, `qs[l] = L[l] | L[l+32]<<2 | L[l+64]<<4 |
/// L[l+96]<<6`.
fn pack_2bit(codes: &[u8; QK_K], qs: &mut [u8]) {
    for (half, q) in codes.chunks_exact(128).zip(qs.chunks_exact_mut(32)) {
        for l in 0..32 {
            q[l] = half[l] | (half[l + 32] << 2) | (half[l + 64] << 4) | (half[l + 96] << 6);
        }
    }
}

/// ggml's Q4_K/Q5_K packing of eight 6-bit (scale, min) pairs into 12 bytes (the inverse of
/// `get_scale_min_k4`). Values wider than 6 bits are packed as the C packs them.
fn pack_k4_scales(ls: &[u8; 8], lm: &[u8; 8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..8 {
        if j < 4 {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (ls[j] & 0x0F) | ((lm[j] & 0x0F) << 4);
            s[j - 4] |= (ls[j] >> 4) << 6;
            s[j] |= (lm[j] >> 4) << 6;
        }
    }
    s
}

/// ggml `get_scale_min_k4`: the 6-bit scale and min of sub-block `j` (0..8).
pub(super) fn get_scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// The 6-bit scale of Q3_K sub-block `j` minus 32, as the quantizers read it back.
pub(super) fn q3_k_scale(j: usize, scales: &[u8]) -> i8 {
    let low = if j < 8 {
        scales[j] & 0x0F
    } else {
        scales[j - 8] >> 4
    };
    let high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    // 0..64 minus 32 fits an i8.
    ((low | (high << 4)) as i8) - 32
}

/// Packs sixteen 6-bit Q3_K scales `l` (already offset by 32) as ggml does.
fn pack_q3_scales(levels: &[i32; 16]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for (j, &l) in levels.iter().enumerate() {
        // The C keeps these in int8/uint8 variables: the low byte.
        let l = l as u8;
        if j < 8 {
            s[j] = l & 0x0F;
        } else {
            s[j - 8] |= (l & 0x0F) << 4;
        }
        s[j % 4 + 8] |= (l >> 4) << (2 * (j / 4));
    }
    s
}

/// Q3_K's tail shared by `_ref` and `_impl`: requantize with the stored scales, split off
/// the high bit into `hmask`, pack the low two bits.
fn q3_k_finish(x: &[f32; QK_K], y: &mut [u8; 110], codes: &mut [u8; QK_K]) {
    let d_all = super::common::fp16_value(u16::from_le_bytes([y[108], y[109]]));
    let (head, tail) = y.split_at_mut(96);
    let scales = &tail[..12];
    for j in 0..16 {
        let d = d_all * f32::from(q3_k_scale(j, scales));
        if d == 0.0 {
            continue;
        }
        for ii in 0..16 {
            let l = nearest_int(x[16 * j + ii] / d).clamp(-4, 3);
            // -4..3 plus 4 is 0..7.
            codes[16 * j + ii] = (l + 4) as u8;
        }
    }
    let (hmask, qs) = head.split_at_mut(32);
    hmask.fill(0);
    for (j, c) in codes.iter_mut().enumerate() {
        // Codes are 0..8: "if (L[j] > 3) { hmask |= bit; L[j] -= 4; }" is bit 2 moved out.
        hmask[j % 32] |= ((*c >> 2) & 1) << (j / 32);
        *c &= 3;
    }
    pack_2bit(codes, qs);
}

/// Requantizes the codes of an affine K-quant block (Q2_K, Q4_K, Q5_K) with the stored
/// scales: for sub-block j of `SUB` elements with d_j = d·sc_j ≠ 0 and m_j = dmin·m_j,
/// code = clamp(nearest_int((x + m_j)/d_j), 0, nmax).
fn requantize_affine<const SUB: usize>(
    x: &[f32; QK_K],
    codes: &mut [u8; QK_K],
    nmax: i32,
    sub_scale: impl Fn(usize) -> (f32, f32),
) {
    for j in 0..QK_K / SUB {
        let (d, dm) = sub_scale(j);
        if d == 0.0 {
            continue;
        }
        for ii in 0..SUB {
            let l = nearest_int((x[SUB * j + ii] + dm) / d).clamp(0, nmax);
            // 0 ≤ l ≤ 31.
            codes[SUB * j + ii] = l as u8;
        }
    }
}

fn sub_blocks<const N: usize>(x: &[f32; QK_K]) -> &[[f32; N]] {
    x.as_chunks::<N>().0
}

// ------------------------------------------------------------------------------------ Q2_K

/// ggml `quantize_row_q2_K_ref` on one super-block.
fn q2_k_ref(x: &[f32; QK_K], y: &mut [u8; 84]) {
    let mut codes = [0u8; QK_K];
    let mut scales = [0.0f32; 16];
    let mut mins = [0.0f32; 16];
    let search = MinSearch {
        nmax: 3,
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        use_mad: true,
    };
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    let code_blocks = codes.as_chunks_mut::<16>().0;
    for (j, (xs, l)) in sub_blocks::<16>(x).iter().zip(code_blocks).enumerate() {
        let weights = xs.map(f32::abs);
        (scales[j], mins[j]) = make_qkx_quants(search, xs, &weights, l, false);
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }
    let mut sc = [0u8; 16];
    let d = if max_scale > 0.0 {
        let iscale = 15.0 / max_scale;
        for j in 0..16 {
            // The C stores the int into a uint8_t: the low byte.
            sc[j] = nearest_int(iscale * scales[j]) as u8;
        }
        put_f16(y, 80, max_scale / 15.0)
    } else {
        put_f16(y, 80, 0.0)
    };
    let dmin = if max_min > 0.0 {
        let iscale = 15.0 / max_min;
        for j in 0..16 {
            sc[j] |= (nearest_int(iscale * mins[j]) << 4) as u8;
        }
        put_f16(y, 82, max_min / 15.0)
    } else {
        put_f16(y, 82, 0.0)
    };
    q2_k_finish(x, y, &sc, d, dmin, &mut codes);
}

fn q2_k_finish(
    x: &[f32; QK_K],
    y: &mut [u8; 84],
    sc: &[u8; 16],
    d: f32,
    dmin: f32,
    codes: &mut [u8; QK_K],
) {
    y[..16].copy_from_slice(sc);
    requantize_affine::<16>(x, codes, 3, |j| {
        (d * f32::from(sc[j] & 0x0F), dmin * f32::from(sc[j] >> 4))
    });
    pack_2bit(codes, &mut y[16..80]);
}

/// ggml `quantize_row_q2_K_impl` on one super-block with its 256 importance weights.
fn q2_k_imatrix(x: &[f32; QK_K], qw: &[f32; QK_K], y: &mut [u8; 84]) {
    let mut codes = [0u8; QK_K];
    let mut scales = [0.0f32; 16];
    let mut mins = [0.0f32; 16];
    let mut sw = [0.0f32; 16];
    let sigma2 = sum_squares(x) / 256.0;
    let search = MinSearch {
        nmax: 3,
        rmin: -0.9,
        rdelta: 0.05,
        nstep: 36,
        use_mad: false,
    };
    let qw_blocks = qw.as_chunks::<16>().0;
    let code_blocks = codes.as_chunks_mut::<16>().0;
    for (j, ((xs, w), l)) in sub_blocks::<16>(x)
        .iter()
        .zip(qw_blocks)
        .zip(code_blocks)
        .enumerate()
    {
        let weight: [f32; 16] = std::array::from_fn(|l| w[l] * (sigma2 + xs[l] * xs[l]).sqrt());
        for &v in &weight {
            sw[j] += v;
        }
        (scales[j], mins[j]) = make_qkx_quants(search, xs, &weight, l, true);
    }
    let mut ls = [0u8; 16];
    let mut lm = [0u8; 16];
    let dm = make_qp_quants(15, &scales, &mut ls, &sw);
    let mm = make_qp_quants(15, &mins, &mut lm, &sw);
    let d = put_f16(y, 80, dm);
    let dmin = put_f16(y, 82, mm);
    let sc: [u8; 16] = std::array::from_fn(|j| ls[j] | (lm[j] << 4));
    q2_k_finish(x, y, &sc, d, dmin, &mut codes);
}

// ------------------------------------------------------------------------------------ Q3_K

/// ggml `quantize_row_q3_K_ref` on one super-block.
#[allow(
    clippy::needless_range_loop,
    reason = "indexes several arrays by the same position, as ggml's C does"
)]
fn q3_k_ref(x: &[f32; QK_K], y: &mut [u8; 110]) {
    let mut signed = [0i8; QK_K];
    let scales = make_q3_quants_x16(x, &mut signed);
    let mut max_scale = 0.0f32;
    let mut amax = 0.0f32;
    for j in 0..16 {
        let scale = scales[j].abs();
        if scale > amax {
            amax = scale;
            max_scale = scales[j];
        }
    }
    // A float in a C condition is true unless ±0 (NaN is true).
    if max_scale != 0.0 {
        let iscale = -32.0 / max_scale;
        let levels: [i32; 16] = std::array::from_fn(|j| {
            // int8_t l = nearest_int(…): the low byte, then clamped and offset.
            i32::from(nearest_int(iscale * scales[j]) as i8).clamp(-32, 31) + 32
        });
        y[96..108].copy_from_slice(&pack_q3_scales(&levels));
        put_f16(y, 108, 1.0 / iscale);
    } else {
        y[96..108].fill(0);
        put_f16(y, 108, 0.0);
    }
    // make_q3_quants stored codes 0..8.
    let mut codes = signed.map(|c| c as u8);
    q3_k_finish(x, y, &mut codes);
}

/// ggml `quantize_row_q3_K_impl` on one super-block with its importance weights.
fn q3_k_imatrix(x: &[f32; QK_K], qw: &[f32; QK_K], y: &mut [u8; 110]) {
    let mut signed = [0i8; QK_K];
    let mut scales = [0.0f32; 16];
    let mut sw = [0.0f32; 16];
    let sigma2 = 2.0 * sum_squares(x) / 256.0;
    let qw_blocks = qw.as_chunks::<16>().0;
    let code_blocks = signed.as_chunks_mut::<16>().0;
    for (j, ((xs, w), l)) in sub_blocks::<16>(x)
        .iter()
        .zip(qw_blocks)
        .zip(code_blocks)
        .enumerate()
    {
        let weight: [f32; 16] = std::array::from_fn(|l| w[l] * (sigma2 + xs[l] * xs[l]).sqrt());
        let mut sumw = 0.0f32;
        for &v in &weight {
            sumw += v;
        }
        sw[j] = sumw;
        scales[j] = make_qx_quants(4, xs, l, Some(&weight));
    }
    let mut ls = [0i8; 16];
    let d_block = make_qx_quants(32, &scales, &mut ls, Some(&sw));
    let levels: [i32; 16] = ls.map(i32::from);
    y[96..108].copy_from_slice(&pack_q3_scales(&levels));
    put_f16(y, 108, d_block);
    let mut codes = signed.map(|c| c as u8);
    q3_k_finish(x, y, &mut codes);
}

// ------------------------------------------------------------------------------ Q4_K, Q5_K

/// Which of the two 6-bit-scale K-quants.
#[derive(Clone, Copy, PartialEq, Eq)]
enum K45 {
    Q4,
    Q5,
}

impl K45 {
    fn nmax(self) -> i32 {
        match self {
            K45::Q4 => 15,
            K45::Q5 => 31,
        }
    }
}

/// Writes d, dmin, the packed scales, requantizes and packs the codes of a Q4_K/Q5_K block.
#[allow(
    clippy::too_many_arguments,
    reason = "the block's parts as ggml's C passes them"
)]
fn k45_finish(
    kind: K45,
    x: &[f32; QK_K],
    y: &mut [u8],
    ls: &[u8; 8],
    lm: &[u8; 8],
    d: f32,
    dmin: f32,
    codes: &mut [u8; QK_K],
) {
    let packed = pack_k4_scales(ls, lm);
    y[4..16].copy_from_slice(&packed);
    let d = put_f16(y, 0, d);
    let dmin = put_f16(y, 2, dmin);
    requantize_affine::<32>(x, codes, kind.nmax(), |j| {
        let (sc, m) = get_scale_min_k4(j, &packed);
        (d * f32::from(sc), dmin * f32::from(m))
    });
    match kind {
        K45::Q4 => {
            for (group, q) in codes.chunks_exact(64).zip(y[16..144].chunks_exact_mut(32)) {
                for l in 0..32 {
                    q[l] = group[l] | (group[l + 32] << 4);
                }
            }
        }
        K45::Q5 => {
            let (qh, ql) = y[16..176].split_at_mut(32);
            qh.fill(0);
            let (mut m1, mut m2) = (1u8, 2u8);
            for (group, q) in codes.chunks_exact(64).zip(ql.chunks_exact_mut(32)) {
                for j in 0..32 {
                    // Codes are 0..32: "if (l > 15) { l -= 16; qh |= m; }" is bit 4 moved out.
                    let (l1, l2) = (group[j], group[j + 32]);
                    qh[j] |= ((l1 >> 4) * m1) | ((l2 >> 4) * m2);
                    q[j] = (l1 & 0x0F) | ((l2 & 0x0F) << 4);
                }
                m1 <<= 2;
                m2 <<= 2;
            }
        }
    }
}

/// ggml `quantize_row_q4_K_ref` / `quantize_row_q5_K_ref` on one super-block.
fn k45_ref(kind: K45, x: &[f32; QK_K], y: &mut [u8]) {
    let mut codes = [0u8; QK_K];
    let mut scales = [0.0f32; 8];
    let mut mins = [0.0f32; 8];
    let search = match kind {
        K45::Q4 => MinSearch {
            nmax: 15,
            rmin: -1.0,
            rdelta: 0.1,
            nstep: 20,
            use_mad: false,
        },
        K45::Q5 => MinSearch {
            nmax: 31,
            rmin: -0.5,
            rdelta: 0.1,
            nstep: 15,
            use_mad: false,
        },
    };
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    let code_blocks = codes.as_chunks_mut::<32>().0;
    for (j, (xs, l)) in sub_blocks::<32>(x).iter().zip(code_blocks).enumerate() {
        let av_x = (sum_squares(xs) / 32.0).sqrt();
        let weights = xs.map(|v| av_x + v.abs());
        (scales[j], mins[j]) = make_qkx_quants(search, xs, &weights, l, false);
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    // uint8_t ls = nearest_int(…): the low byte, then MIN(63, ·).
    let ls: [u8; 8] = std::array::from_fn(|j| (nearest_int(inv_scale * scales[j]) as u8).min(63));
    let lm: [u8; 8] = std::array::from_fn(|j| (nearest_int(inv_min * mins[j]) as u8).min(63));
    k45_finish(
        kind,
        x,
        y,
        &ls,
        &lm,
        max_scale / 63.0,
        max_min / 63.0,
        &mut codes,
    );
}

/// ggml `quantize_row_q4_K_impl` / `quantize_row_q5_K_impl` with importance weights.
fn k45_imatrix(kind: K45, x: &[f32; QK_K], qw: &[f32; QK_K], y: &mut [u8]) {
    let mut codes = [0u8; QK_K];
    let mut scales = [0.0f32; 8];
    let mut mins = [0.0f32; 8];
    let mut sw = [0.0f32; 8];
    let sigma2 = 2.0 * sum_squares(x) / 256.0;
    let search = MinSearch {
        nmax: kind.nmax(),
        rmin: -0.9,
        rdelta: 0.05,
        nstep: 36,
        use_mad: false,
    };
    let qw_blocks = qw.as_chunks::<32>().0;
    let code_blocks = codes.as_chunks_mut::<32>().0;
    for (j, ((xs, w), l)) in sub_blocks::<32>(x)
        .iter()
        .zip(qw_blocks)
        .zip(code_blocks)
        .enumerate()
    {
        let weights: [f32; 32] = std::array::from_fn(|l| w[l] * (sigma2 + xs[l] * xs[l]).sqrt());
        let mut sumw = 0.0f32;
        for &v in &weights {
            sumw += v;
        }
        sw[j] = sumw;
        (scales[j], mins[j]) = make_qkx_quants(search, xs, &weights, l, true);
    }
    let mut ls = [0u8; 8];
    let mut lm = [0u8; 8];
    let d_block = make_qp_quants(63, &scales, &mut ls, &sw);
    let m_block = make_qp_quants(63, &mins, &mut lm, &sw);
    if kind == K45::Q5 {
        // Only the Q5_K _impl clamps to 63 again (Q4_K's packs the bytes as they are).
        ls = ls.map(|v| v.min(63));
        lm = lm.map(|v| v.min(63));
    }
    k45_finish(kind, x, y, &ls, &lm, d_block, m_block, &mut codes);
}

// ------------------------------------------------------------------------------------ Q6_K

/// ggml `quantize_row_q6_K_ref` (`qw = None`) and `quantize_row_q6_K_impl` (the raw
/// importance weights as `make_qx_quants`' weights) on one super-block.
fn q6_k(x: &[f32; QK_K], qw: Option<&[f32; QK_K]>, y: &mut [u8; 210]) {
    let mut signed = [0i8; QK_K];
    let mut scales = [0.0f32; 16];
    let mut max_scale = 0.0f32;
    let mut max_abs_scale = 0.0f32;
    let qw_blocks = qw.map(|w| w.as_chunks::<16>().0);
    let code_blocks = signed.as_chunks_mut::<16>().0;
    for (ib, (xs, l)) in sub_blocks::<16>(x).iter().zip(code_blocks).enumerate() {
        let w = qw_blocks.map(|b| &b[ib]);
        let scale = make_qx_quants(32, xs, l, w);
        scales[ib] = scale;
        let abs_scale = scale.abs();
        if abs_scale > max_abs_scale {
            max_abs_scale = abs_scale;
            max_scale = scale;
        }
    }
    if max_abs_scale < GROUP_MAX_EPS {
        y.fill(0);
        put_f16(y, 208, 0.0);
        return;
    }
    let iscale = -128.0 / max_scale;
    let d = through_fp16(1.0 / iscale);
    put_f16(y, 208, 1.0 / iscale);
    let mut sc = [0i8; 16];
    for ib in 0..16 {
        // MIN(127, nearest_int(…)) stored in an int8_t: the low byte.
        sc[ib] = nearest_int(iscale * scales[ib]).min(127) as i8;
        y[192 + ib] = sc[ib] as u8;
    }
    let mut codes = signed.map(|c| c as u8);
    for j in 0..16 {
        let dd = d * f32::from(sc[j]);
        if dd == 0.0 {
            continue;
        }
        for ii in 0..16 {
            let l = nearest_int(x[16 * j + ii] / dd).clamp(-32, 31);
            // -32..31 plus 32 is 0..63.
            codes[16 * j + ii] = (l + 32) as u8;
        }
    }
    let (ql, rest) = y.split_at_mut(128);
    let qh = &mut rest[..64];
    for ((half, ql), qh) in codes
        .chunks_exact(128)
        .zip(ql.chunks_exact_mut(64))
        .zip(qh.chunks_exact_mut(32))
    {
        for l in 0..32 {
            let q1 = half[l] & 0x0F;
            let q2 = half[l + 32] & 0x0F;
            let q3 = half[l + 64] & 0x0F;
            let q4 = half[l + 96] & 0x0F;
            ql[l] = q1 | (q3 << 4);
            ql[l + 32] = q2 | (q4 << 4);
            qh[l] = (half[l] >> 4)
                | ((half[l + 32] >> 4) << 2)
                | ((half[l + 64] >> 4) << 4)
                | ((half[l + 96] >> 4) << 6);
        }
    }
}

// ------------------------------------------------------------------------------------ rows

/// Runs `one` over the super-blocks of a row and the matching output blocks.
fn each_block<const B: usize>(
    x: &[f32],
    out: &mut [u8],
    mut one: impl FnMut(usize, &[f32; QK_K], &mut [u8; B]),
) {
    let blocks = x
        .as_chunks::<QK_K>()
        .0
        .iter()
        .zip(out.as_chunks_mut::<B>().0);
    for (i, (xb, y)) in blocks.enumerate() {
        one(i, xb, y);
    }
}

/// The importance weights of super-block `i`.
fn qw_block(qw: &[f32], i: usize) -> &[f32; QK_K] {
    &qw.as_chunks::<QK_K>().0[i]
}

/// Q2_K: one row, with or without importance weights (one per column).
pub(super) fn q2_k_row(x: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
    each_block::<84>(x, out, |i, xb, y| match qw {
        Some(w) => q2_k_imatrix(xb, qw_block(w, i), y),
        None => q2_k_ref(xb, y),
    });
}

/// Q3_K: one row.
pub(super) fn q3_k_row(x: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
    each_block::<110>(x, out, |i, xb, y| match qw {
        Some(w) => q3_k_imatrix(xb, qw_block(w, i), y),
        None => q3_k_ref(xb, y),
    });
}

/// Q4_K: one row.
pub(super) fn q4_k_row(x: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
    each_block::<144>(x, out, |i, xb, y| match qw {
        Some(w) => k45_imatrix(K45::Q4, xb, qw_block(w, i), y),
        None => k45_ref(K45::Q4, xb, y),
    });
}

/// Q5_K: one row.
pub(super) fn q5_k_row(x: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
    each_block::<176>(x, out, |i, xb, y| match qw {
        Some(w) => k45_imatrix(K45::Q5, xb, qw_block(w, i), y),
        None => k45_ref(K45::Q5, xb, y),
    });
}

/// Q6_K: one row.
pub(super) fn q6_k_row(x: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
    each_block::<210>(x, out, |i, xb, y| q6_k(xb, qw.map(|w| qw_block(w, i)), y));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k4_scales_pack_and_unpack() {
        let ls = [1, 2, 63, 4, 17, 33, 48, 63];
        let lm = [63, 0, 5, 40, 16, 31, 62, 1];
        let packed = pack_k4_scales(&ls, &lm);
        for j in 0..8 {
            assert_eq!(
                get_scale_min_k4(j, &packed),
                (ls[j], lm[j]),
                "sub-block {j}"
            );
        }
    }

    #[test]
    fn q3_scales_pack_and_unpack() {
        let levels: [i32; 16] = [0, 1, 63, 32, 31, 16, 47, 5, 60, 2, 33, 48, 15, 7, 40, 63];
        let packed = pack_q3_scales(&levels);
        for (j, &l) in levels.iter().enumerate() {
            assert_eq!(i32::from(q3_k_scale(j, &packed)), l - 32, "scale {j}");
        }
    }
}
