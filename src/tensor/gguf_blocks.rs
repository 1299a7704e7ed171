//! GGUF block dequantizers (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K, IQ4_NL, MXFP4, NVFP4),
//! as llama.cpp does it.
//!
//! Block layouts are those of llama.cpp `ggml/src/ggml-common.h`, formulas those of
//! `ggml/src/ggml-quants.c` `dequantize_row_*`. The arithmetic is done in f32 in the same order
//! as there, as separate multiply and add (no fused multiply-add), which is also what the
//! `gguf` Python package computes with numpy.

use half::f16;

use super::dtype::{DType, Packing};

/// Elements in a K-quant super-block (llama.cpp `QK_K`).
const QK_K: usize = 256;

fn f16_at(bytes: [u8; 2]) -> f32 {
    f16::from_le_bytes(bytes).to_f32()
}

/// Dequantizes whole blocks of `dtype` from `bytes` into `out`.
///
/// `bytes` must hold exactly `out.len() / elements_per_block` blocks; anything else is an
/// error (never a panic), as is a dtype that is not a block format.
pub(crate) fn dequantize(dtype: DType, bytes: &[u8], out: &mut [f32]) -> Result<(), String> {
    let Packing::Block {
        elements,
        bytes: block_bytes,
    } = dtype.packing()
    else {
        return Err(format!("{dtype} is not a block format"));
    };
    let blocks = out.len() / elements;
    if !out.len().is_multiple_of(elements) || bytes.len() != blocks * block_bytes {
        return Err(format!(
            "{dtype}: {} bytes do not hold {} elements in whole blocks",
            bytes.len(),
            out.len()
        ));
    }
    match dtype {
        DType::Q8_0 => blocks_with(bytes, out, q8_0),
        DType::Q4_0 => blocks_with(bytes, out, q4_0),
        DType::Q4_1 => blocks_with(bytes, out, q4_1),
        DType::Q5_0 => blocks_with(bytes, out, q5_0),
        DType::Q5_1 => blocks_with(bytes, out, q5_1),
        DType::Q2K => blocks_with(bytes, out, q2_k),
        DType::Q3K => blocks_with(bytes, out, q3_k),
        DType::Q4K => blocks_with(bytes, out, q4_k),
        DType::Q5K => blocks_with(bytes, out, q5_k),
        DType::Q6K => blocks_with(bytes, out, q6_k),
        DType::IQ4NL => blocks_with(bytes, out, iq4_nl),
        DType::MXFP4 => blocks_with(bytes, out, mxfp4),
        DType::NVFP4 => blocks_with(bytes, out, nvfp4),
        other => return Err(format!("{other} is not a block format")),
    }
    Ok(())
}

/// Runs `one` over matching fixed-size input blocks and output blocks.
fn blocks_with<const B: usize, const E: usize>(
    bytes: &[u8],
    out: &mut [f32],
    one: fn(&[u8; B], &mut [f32; E]),
) {
    let (input, _) = bytes.as_chunks::<B>();
    let (output, _) = out.as_chunks_mut::<E>();
    for (block, y) in input.iter().zip(output.iter_mut()) {
        one(block, y);
    }
}

/// block_q8_0 { f16 d; int8 qs[32] }: y = qs * d.
fn q8_0(b: &[u8; 34], y: &mut [f32; 32]) {
    let d = f16_at([b[0], b[1]]);
    for (j, v) in y.iter_mut().enumerate() {
        // Reinterpret the stored byte as int8.
        *v = f32::from(b[2 + j] as i8) * d;
    }
}

/// block_q4_0 { f16 d; u8 qs[16] }: low nibbles are elements 0..16, high nibbles 16..32,
/// y = (q - 8) * d.
fn q4_0(b: &[u8; 18], y: &mut [f32; 32]) {
    let d = f16_at([b[0], b[1]]);
    for j in 0..16 {
        let q = b[2 + j];
        y[j] = f32::from(i16::from(q & 0x0F) - 8) * d;
        y[j + 16] = f32::from(i16::from(q >> 4) - 8) * d;
    }
}

/// block_q4_1 { f16 d; f16 m; u8 qs[16] }: y = q * d + m.
fn q4_1(b: &[u8; 20], y: &mut [f32; 32]) {
    let d = f16_at([b[0], b[1]]);
    let m = f16_at([b[2], b[3]]);
    for j in 0..16 {
        let q = b[4 + j];
        y[j] = f32::from(q & 0x0F) * d + m;
        y[j + 16] = f32::from(q >> 4) * d + m;
    }
}

/// block_q5_0 { f16 d; u8 qh[4]; u8 qs[16] }: bit j of qh is the 5th bit of element j,
/// y = (q - 16) * d.
fn q5_0(b: &[u8; 22], y: &mut [f32; 32]) {
    let d = f16_at([b[0], b[1]]);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    for j in 0..16 {
        let q = b[6 + j];
        let xh_0 = ((qh >> j) << 4) & 0x10;
        let xh_1 = (qh >> (j + 12)) & 0x10;
        // Both codes are at most 31, so the i32 arithmetic and the f32 conversion are exact.
        let x0 = (u32::from(q & 0x0F) | xh_0) as i32 - 16;
        let x1 = (u32::from(q >> 4) | xh_1) as i32 - 16;
        y[j] = x0 as f32 * d;
        y[j + 16] = x1 as f32 * d;
    }
}

/// block_q5_1 { f16 d; f16 m; u8 qh[4]; u8 qs[16] }: y = q * d + m.
fn q5_1(b: &[u8; 24], y: &mut [f32; 32]) {
    let d = f16_at([b[0], b[1]]);
    let m = f16_at([b[2], b[3]]);
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    for j in 0..16 {
        let q = b[8 + j];
        let xh_0 = ((qh >> j) << 4) & 0x10;
        let xh_1 = (qh >> (j + 12)) & 0x10;
        // Codes are at most 31: exact in f32.
        let x0 = (u32::from(q & 0x0F) | xh_0) as f32;
        let x1 = (u32::from(q >> 4) | xh_1) as f32;
        y[j] = x0 * d + m;
        y[j + 16] = x1 * d + m;
    }
}

/// block_q2_K { u8 scales[16]; u8 qs[64]; f16 d; f16 dmin }: two halves of 128 elements; in
/// half n, 2-bit field `shift = 2j` of qs[32n + l] (l in 0..16, then 16..32) gives elements
/// 128n + 32j + l; each run of 16 has its own scale byte (low nibble scale, high nibble min);
/// y = (d * sc) * q - dmin * m.
fn q2_k(b: &[u8; 84], y: &mut [f32; QK_K]) {
    let d = f16_at([b[80], b[81]]);
    let min = f16_at([b[82], b[83]]);
    for n in 0..2 {
        for j in 0..4 {
            for h in 0..2 {
                let sc = b[8 * n + 2 * j + h];
                let dl = d * f32::from(sc & 0x0F);
                let ml = min * f32::from(sc >> 4);
                for l in 0..16 {
                    let q = (b[16 + 32 * n + 16 * h + l] >> (2 * j)) & 3;
                    y[128 * n + 32 * j + 16 * h + l] = dl * f32::from(q) - ml;
                }
            }
        }
    }
}

/// The 16 six-bit scales of a Q3_K block, unpacked as llama.cpp `dequantize_row_q3_K` does
/// with its kmask1/kmask2 shuffle of three little-endian u32 words.
fn q3_k_scales(packed: [u8; 12]) -> [i8; 16] {
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let word = |i: usize| {
        u32::from_le_bytes([
            packed[4 * i],
            packed[4 * i + 1],
            packed[4 * i + 2],
            packed[4 * i + 3],
        ])
    };
    let (a0, a1, tmp) = (word(0), word(1), word(2));
    let aux = [
        (a0 & KMASK2) | ((tmp & KMASK1) << 4),
        (a1 & KMASK2) | (((tmp >> 2) & KMASK1) << 4),
        ((a0 >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4),
        ((a1 >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4),
    ];
    // Each byte holds a 6-bit value (0..64); llama.cpp reads them as int8.
    std::array::from_fn(|i| aux[i / 4].to_le_bytes()[i % 4] as i8)
}

/// block_q3_K { u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d }: like Q2_K's layout, with a
/// third bit from hmask (bit 4n + j of hmask[16h + l]; a clear bit subtracts 4);
/// y = (d * (sc - 32)) * q.
fn q3_k(b: &[u8; 110], y: &mut [f32; QK_K]) {
    let d_all = f16_at([b[108], b[109]]);
    let scales = q3_k_scales(std::array::from_fn(|i| b[96 + i]));
    for n in 0..2 {
        for j in 0..4 {
            let m = 1u8 << (4 * n + j);
            for h in 0..2 {
                let dl = d_all * f32::from(i16::from(scales[8 * n + 2 * j + h]) - 32);
                for l in 0..16 {
                    let q = i16::from((b[32 + 32 * n + 16 * h + l] >> (2 * j)) & 3);
                    let high = if b[16 * h + l] & m != 0 { 0 } else { 4 };
                    y[128 * n + 32 * j + 16 * h + l] = dl * f32::from(q - high);
                }
            }
        }
    }
}

/// llama.cpp `get_scale_min_k4`: the 6-bit scale and minimum of sub-block `j` (0..8) from the
/// 12 packed bytes of a Q4_K/Q5_K block.
fn scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

fn k_scales(b: &[u8], at: usize) -> [u8; 12] {
    std::array::from_fn(|i| b[at + i])
}

/// block_q4_K { f16 d; f16 dmin; u8 scales[12]; u8 qs[128] }: 4 groups of 64 elements, each
/// 32 low nibbles (sub-block 2g) then 32 high nibbles (sub-block 2g+1) of the same 32 bytes;
/// y = (d * sc) * q - dmin * m.
fn q4_k(b: &[u8; 144], y: &mut [f32; QK_K]) {
    let d = f16_at([b[0], b[1]]);
    let min = f16_at([b[2], b[3]]);
    let scales = k_scales(b, 4);
    for g in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * g, &scales);
        let (sc2, m2) = scale_min_k4(2 * g + 1, &scales);
        let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
        let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
        for l in 0..32 {
            let q = b[16 + 32 * g + l];
            y[64 * g + l] = d1 * f32::from(q & 0x0F) - m1;
            y[64 * g + 32 + l] = d2 * f32::from(q >> 4) - m2;
        }
    }
}

/// block_q5_K { f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128] }: as Q4_K, plus a 5th
/// bit from qh (bit 2g for the low nibbles of group g, bit 2g+1 for the high nibbles).
fn q5_k(b: &[u8; 176], y: &mut [f32; QK_K]) {
    let d = f16_at([b[0], b[1]]);
    let min = f16_at([b[2], b[3]]);
    let scales = k_scales(b, 4);
    for g in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * g, &scales);
        let (sc2, m2) = scale_min_k4(2 * g + 1, &scales);
        let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
        let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
        let (u1, u2) = (1u8 << (2 * g), 2u8 << (2 * g));
        for l in 0..32 {
            let ql = b[48 + 32 * g + l];
            let qh = b[16 + l];
            let hi1 = if qh & u1 != 0 { 16 } else { 0 };
            let hi2 = if qh & u2 != 0 { 16 } else { 0 };
            y[64 * g + l] = d1 * f32::from((ql & 0x0F) + hi1) - m1;
            y[64 * g + 32 + l] = d2 * f32::from((ql >> 4) + hi2) - m2;
        }
    }
}

/// block_q6_K { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d }: two halves of 128 elements;
/// y = (d * sc) * (q - 32) with q = 4 low bits from ql and 2 high bits from qh.
fn q6_k(b: &[u8; 210], y: &mut [f32; QK_K]) {
    let d = f16_at([b[208], b[209]]);
    for half in 0..2 {
        let ql = 64 * half;
        let qh = 128 + 32 * half;
        let sc = 192 + 8 * half;
        let y0 = 128 * half;
        for l in 0..32 {
            let is = l / 16;
            let h = b[qh + l];
            let low = b[ql + l];
            let high = b[ql + l + 32];
            // 6-bit codes minus 32 lie in -32..=31.
            let q1 = i16::from((low & 0x0F) | ((h & 3) << 4)) - 32;
            let q2 = i16::from((high & 0x0F) | (((h >> 2) & 3) << 4)) - 32;
            let q3 = i16::from((low >> 4) | (((h >> 4) & 3) << 4)) - 32;
            let q4 = i16::from((high >> 4) | (((h >> 6) & 3) << 4)) - 32;
            // Scales are stored as int8.
            let s = |k: usize| f32::from(b[sc + is + k] as i8);
            y[y0 + l] = d * s(0) * f32::from(q1);
            y[y0 + l + 32] = d * s(2) * f32::from(q2);
            y[y0 + l + 64] = d * s(4) * f32::from(q3);
            y[y0 + l + 96] = d * s(6) * f32::from(q4);
        }
    }
}

/// ggml `kvalues_iq4nl`: the 16 non-linear IQ4_NL levels (ggml-common.h).
pub(crate) const KVALUES_IQ4NL: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// ggml `kvalues_mxfp4`: twice the E2M1 value of each 4-bit code (sign in bit 3), shared by
/// MXFP4 and NVFP4; the scales carry the matching factor 1/2.
pub(crate) const KVALUES_MXFP4: [i8; 16] =
    [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// ggml `ggml_e8m0_to_fp32_half`: 2^(e - 128), i.e. half the E8M0 value, built from its bits
/// (codes 0 and 1 are the f32 subnormals 2^-128 and 2^-127; 0xFF is not treated as NaN).
pub(crate) fn e8m0_to_f32_half(e: u8) -> f32 {
    let bits = if e < 2 {
        0x0020_0000u32 << e
    } else {
        u32::from(e - 1) << 23
    };
    f32::from_bits(bits)
}

/// ggml `ggml_ue4m3_to_fp32`: half the value of an unsigned E4M3 byte (bias 7, subnormals
/// man · 2^-9); 0 and 0x7F (E4M3's NaN) give 0. Every step is exact in f32.
pub(crate) fn ue4m3_to_f32_half(x: u8) -> f32 {
    if x == 0 || x == 0x7F {
        return 0.0;
    }
    let exp = i32::from((x >> 3) & 0x0F);
    let man = f32::from(x & 0x07);
    let raw = if exp == 0 {
        man * 2f32.powi(-9)
    } else {
        (1.0 + man / 8.0) * 2f32.powi(exp - 7)
    };
    raw * 0.5
}

/// block_iq4_nl { f16 d; u8 qs[16] }: low nibbles are elements 0..16, high nibbles 16..32,
/// y = d * kvalues_iq4nl[q].
fn iq4_nl(b: &[u8; 18], y: &mut [f32; 32]) {
    let d = f16_at([b[0], b[1]]);
    for j in 0..16 {
        let q = b[2 + j];
        y[j] = d * f32::from(KVALUES_IQ4NL[usize::from(q & 0x0F)]);
        y[j + 16] = d * f32::from(KVALUES_IQ4NL[usize::from(q >> 4)]);
    }
}

/// block_mxfp4 { u8 e; u8 qs[16] }: y = kvalues_mxfp4[q] * 2^(e - 128) (nibbles as Q4_0).
fn mxfp4(b: &[u8; 17], y: &mut [f32; 32]) {
    let d = e8m0_to_f32_half(b[0]);
    for j in 0..16 {
        let q = b[1 + j];
        y[j] = f32::from(KVALUES_MXFP4[usize::from(q & 0x0F)]) * d;
        y[j + 16] = f32::from(KVALUES_MXFP4[usize::from(q >> 4)]) * d;
    }
}

/// block_nvfp4 { u8 d[4]; u8 qs[32] }: 4 sub-blocks of 16; in sub-block s, byte qs[8s + j]
/// holds element j (low nibble) and j + 8 (high); y = kvalues_mxfp4[q] * ue4m3(d[s]) / 2.
fn nvfp4(b: &[u8; 36], y: &mut [f32; 64]) {
    for s in 0..4 {
        let d = ue4m3_to_f32_half(b[s]);
        for j in 0..8 {
            let q = b[4 + 8 * s + j];
            y[16 * s + j] = f32::from(KVALUES_MXFP4[usize::from(q & 0x0F)]) * d;
            y[16 * s + j + 8] = f32::from(KVALUES_MXFP4[usize::from(q >> 4)]) * d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16_bytes(v: f32) -> [u8; 2] {
        f16::from_f32(v).to_le_bytes()
    }

    fn run(dtype: DType, bytes: &[u8], n: usize) -> Vec<f32> {
        let mut out = vec![f32::NAN; n];
        dequantize(dtype, bytes, &mut out).expect("dequantize");
        out
    }

    #[test]
    fn q8_0_scales_signed_codes() {
        // d = 0.5; codes j - 16 for j in 0..32, so y = (j - 16) / 2.
        let mut b = vec![];
        b.extend(f16_bytes(0.5));
        b.extend((0..32).map(|j: i8| (j - 16) as u8));
        let y = run(DType::Q8_0, &b, 32);
        for (j, v) in y.iter().enumerate() {
            assert_eq!(*v, (j as f32 - 16.0) * 0.5);
        }
    }

    #[test]
    fn q4_0_low_nibbles_first_then_high() {
        // d = 2; byte j = (hi << 4) | lo with lo = j, hi = 15 - j.
        // y[j] = (j - 8) * 2, y[j + 16] = (15 - j - 8) * 2 = (7 - j) * 2.
        let mut b = vec![];
        b.extend(f16_bytes(2.0));
        b.extend((0..16u8).map(|j| ((15 - j) << 4) | j));
        let y = run(DType::Q4_0, &b, 32);
        for j in 0..16 {
            assert_eq!(y[j], (j as f32 - 8.0) * 2.0);
            assert_eq!(y[j + 16], (7.0 - j as f32) * 2.0);
        }
        assert_eq!(y[0], -16.0);
        assert_eq!(y[16], 14.0);
    }

    #[test]
    fn q4_1_adds_the_minimum() {
        // d = 0.25, m = -1; every byte 0x3A: lo = 10, hi = 3.
        // y[j] = 10 * 0.25 - 1 = 1.5, y[j + 16] = 3 * 0.25 - 1 = -0.25.
        let mut b = vec![];
        b.extend(f16_bytes(0.25));
        b.extend(f16_bytes(-1.0));
        b.extend([0x3Au8; 16]);
        let y = run(DType::Q4_1, &b, 32);
        assert!(y[..16].iter().all(|&v| v == 1.5));
        assert!(y[16..].iter().all(|&v| v == -0.25));
    }

    #[test]
    fn q5_0_takes_the_fifth_bit_from_qh() {
        // d = 1; qs all 0x00; qh = bit 0 (element 0) and bit 16 (element 16) and bit 31.
        // y[0] = (0 | 16) - 16 = 0; y[1] = 0 - 16 = -16; y[16] = 16 - 16 = 0;
        // y[31] = 16 - 16 = 0; y[17] = -16.
        let mut b = vec![];
        b.extend(f16_bytes(1.0));
        b.extend((1u32 | (1 << 16) | (1 << 31)).to_le_bytes());
        b.extend([0u8; 16]);
        let y = run(DType::Q5_0, &b, 32);
        assert_eq!(
            (y[0], y[1], y[16], y[17], y[31]),
            (0.0, -16.0, 0.0, -16.0, 0.0)
        );
    }

    #[test]
    fn q5_1_full_code_range() {
        // d = 1, m = 0.5; qs byte j = 0xF0 | 0x0F (lo = hi = 15); qh all ones:
        // every code = 31, y = 31 * 1 + 0.5 = 31.5.
        let mut b = vec![];
        b.extend(f16_bytes(1.0));
        b.extend(f16_bytes(0.5));
        b.extend(u32::MAX.to_le_bytes());
        b.extend([0xFFu8; 16]);
        let y = run(DType::Q5_1, &b, 32);
        assert!(y.iter().all(|&v| v == 31.5));
    }

    /// Packs 8 six-bit (scale, min) pairs the way llama.cpp quantize_row_q4_K_ref does.
    fn pack_k_scales(ls: [u8; 8], lm: [u8; 8]) -> [u8; 12] {
        let mut s = [0u8; 12];
        for j in 0..8 {
            if j < 4 {
                s[j] = ls[j];
                s[j + 4] = lm[j];
            } else {
                s[j + 4] = (ls[j] & 0xF) | ((lm[j] & 0xF) << 4);
                s[j - 4] |= (ls[j] >> 4) << 6;
                s[j] |= (lm[j] >> 4) << 6;
            }
        }
        s
    }

    #[test]
    fn k_scales_unpack_what_llama_cpp_packs() {
        let ls = [1, 2, 63, 4, 17, 33, 48, 63];
        let lm = [63, 0, 5, 40, 16, 31, 62, 1];
        let packed = pack_k_scales(ls, lm);
        for j in 0..8 {
            assert_eq!(scale_min_k4(j, &packed), (ls[j], lm[j]), "sub-block {j}");
        }
    }

    #[test]
    fn q4_k_sub_block_scales_and_mins() {
        // d = 0.5, dmin = 0.25; sub-block s has scale s + 1 and min 2 * s.
        // All qs bytes 0x21: low nibble 1 (sub-blocks 0, 2, 4, 6), high nibble 2 (1, 3, 5, 7).
        // y in sub-block s = 0.5 * (s + 1) * q - 0.25 * 2 * s.
        let ls = [1, 2, 3, 4, 5, 6, 7, 8];
        let lm = [0, 2, 4, 6, 8, 10, 12, 14];
        let mut b = vec![];
        b.extend(f16_bytes(0.5));
        b.extend(f16_bytes(0.25));
        b.extend(pack_k_scales(ls, lm));
        b.extend([0x21u8; 128]);
        let y = run(DType::Q4K, &b, 256);
        for (i, v) in y.iter().enumerate() {
            let s = i / 32;
            let q = if s % 2 == 0 { 1.0 } else { 2.0 };
            let want = 0.5 * (s as f32 + 1.0) * q - 0.25 * (2.0 * s as f32);
            assert_eq!(*v, want, "element {i}");
        }
        // Spot checks: element 0 = 0.5 * 1 * 1 - 0 = 0.5; element 255 (sub-block 7, high
        // nibble 2) = 0.5 * 8 * 2 - 0.25 * 14 = 8 - 3.5 = 4.5.
        assert_eq!((y[0], y[255]), (0.5, 4.5));
    }

    #[test]
    fn q5_k_high_bits_by_group() {
        // d = 1, dmin = 0; all scales 1, mins 0; qs all 0; qh[l] = 0b0000_0110 for every l:
        // bit 1 -> high nibbles of group 0 (elements 32..64) get +16, bit 2 -> low nibbles of
        // group 1 (elements 64..96) get +16; everything else is 0.
        let mut b = vec![];
        b.extend(f16_bytes(1.0));
        b.extend(f16_bytes(0.0));
        b.extend(pack_k_scales([1; 8], [0; 8]));
        b.extend([0b0000_0110u8; 32]);
        b.extend([0u8; 128]);
        let y = run(DType::Q5K, &b, 256);
        for (i, v) in y.iter().enumerate() {
            let want = if (32..96).contains(&i) { 16.0 } else { 0.0 };
            assert_eq!(*v, want, "element {i}");
        }
    }

    #[test]
    fn q6_k_layout() {
        // d = 0.5; scales[k] = k - 8 (int8, so negative for k < 8); ql all 0x00; qh all 0xFF
        // (high bits 3 for every element), so every code = 3 << 4 = 48, q - 32 = 16.
        // Element i lies in scale group i / 16; y = 0.5 * (i/16 - 8) * 16.
        let mut b = vec![0u8; 128];
        b.extend([0xFFu8; 64]);
        b.extend((0..16i8).map(|k| (k - 8) as u8));
        b.extend(f16_bytes(0.5));
        let y = run(DType::Q6K, &b, 256);
        for (i, v) in y.iter().enumerate() {
            let want = 0.5 * ((i / 16) as f32 - 8.0) * 16.0;
            assert_eq!(*v, want, "element {i}");
        }
    }

    #[test]
    fn q6_k_low_and_high_nibbles() {
        // d = 1, scales all 1, qh all 0; ql[l] = 0x51 for the first 32 bytes of each half and
        // 0x73 for the next 32: q1 = 1, q3 = 5, q2 = 3, q4 = 7 (minus 32 each).
        let mut b = vec![];
        for _ in 0..2 {
            b.extend([0x51u8; 32]);
            b.extend([0x73u8; 32]);
        }
        b.extend([0u8; 64]);
        b.extend([1u8; 16]);
        b.extend(f16_bytes(1.0));
        let y = run(DType::Q6K, &b, 256);
        for half in 0..2 {
            for l in 0..32 {
                let base = 128 * half + l;
                assert_eq!(y[base], 1.0 - 32.0);
                assert_eq!(y[base + 32], 3.0 - 32.0);
                assert_eq!(y[base + 64], 5.0 - 32.0);
                assert_eq!(y[base + 96], 7.0 - 32.0);
            }
        }
    }

    #[test]
    fn q2_k_two_bit_fields() {
        // d = 1, dmin = 0.5; scale byte k = (k % 4) << 4 | (k % 8 + 1): sc = k % 8 + 1, m = k % 4.
        // qs all 0b11_10_01_00: field j holds code j. Element i lies in scale run k = i / 16
        // and uses field j = (i % 128) / 32, so y = (k % 8 + 1) * j - 0.5 * (k % 4).
        let mut b: Vec<u8> = (0..16u8).map(|k| ((k % 4) << 4) | (k % 8 + 1)).collect();
        b.extend([0b11_10_01_00u8; 64]);
        b.extend(f16_bytes(1.0));
        b.extend(f16_bytes(0.5));
        let y = run(DType::Q2K, &b, 256);
        for (i, v) in y.iter().enumerate() {
            let k = i / 16;
            let code = ((i % 128) / 32) as f32;
            let want = ((k % 8) as f32 + 1.0) * code - 0.5 * (k % 4) as f32;
            assert_eq!(*v, want, "element {i}");
        }
        // Element 255: k = 15, j = 3: 8 * 3 - 0.5 * 3 = 22.5.
        assert_eq!(y[255], 22.5);
    }

    /// Packs 16 six-bit Q3_K scales the way llama.cpp quantize_row_q3_K_ref does.
    fn pack_q3_scales(ls: [u8; 16]) -> [u8; 12] {
        let mut s = [0u8; 12];
        for (j, &l) in ls.iter().enumerate() {
            if j < 8 {
                s[j] = l & 0xF;
            } else {
                s[j - 8] |= (l & 0xF) << 4;
            }
            s[j % 4 + 8] |= (l >> 4) << (2 * (j / 4));
        }
        s
    }

    #[test]
    fn q3_k_scales_unpack_what_llama_cpp_packs() {
        let ls = [0, 1, 63, 32, 31, 16, 47, 5, 60, 2, 33, 48, 15, 7, 40, 63];
        let got = q3_k_scales(pack_q3_scales(ls));
        for j in 0..16 {
            assert_eq!(got[j], ls[j] as i8, "scale {j}");
        }
    }

    #[test]
    fn q3_k_high_bit_and_signed_scales() {
        // d = 0.5; scale k stored as k + 24, so sc - 32 = k - 8. qs all 0b11_10_01_00 (field j
        // holds code j); hmask[l] = 0x0F for l < 16 (bits 0..4: half 0, first run of each
        // pair, no subtraction) and 0x00 for l >= 16 (subtract 4). Element
        // i = 128n + 32j + 16h + l has run k = 8n + 2j + h and
        // y = 0.5 * (k - 8) * (j - (n == 0 && h == 0 ? 0 : 4)).
        let ls: [u8; 16] = std::array::from_fn(|k| k as u8 + 24);
        let mut b = vec![0x0Fu8; 16];
        b.extend([0u8; 16]);
        b.extend([0b11_10_01_00u8; 64]);
        b.extend(pack_q3_scales(ls));
        b.extend(f16_bytes(0.5));
        let y = run(DType::Q3K, &b, 256);
        for (i, v) in y.iter().enumerate() {
            let (n, j, h) = (i / 128, (i % 128) / 32, (i % 32) / 16);
            let k = 8 * n + 2 * j + h;
            let sub = if n == 0 && h == 0 { 0.0 } else { 4.0 };
            let want = 0.5 * (k as f32 - 8.0) * (j as f32 - sub);
            assert_eq!(*v, want, "element {i}");
        }
        // Element 0: k = 0, j = 0, no subtraction: 0.5 * -8 * 0 = 0; element 16 (h = 1):
        // 0.5 * (1 - 8) * (0 - 4) = 14.
        assert_eq!((y[0], y[16]), (0.0, 14.0));
    }

    #[test]
    fn iq4_nl_table_lookup() {
        // d = 0.5; byte j = (15 - j) << 4 | j: y[j] = 0.5 * kv[j], y[j + 16] = 0.5 * kv[15 - j].
        // kv[0] = -127 -> -63.5, kv[15] = 113 -> 56.5.
        let mut b = vec![];
        b.extend(f16_bytes(0.5));
        b.extend((0..16u8).map(|j| ((15 - j) << 4) | j));
        let y = run(DType::IQ4NL, &b, 32);
        for j in 0..16 {
            assert_eq!(y[j], 0.5 * f32::from(KVALUES_IQ4NL[j]));
            assert_eq!(y[j + 16], 0.5 * f32::from(KVALUES_IQ4NL[15 - j]));
        }
        assert_eq!((y[0], y[16]), (-63.5, 56.5));
    }

    #[test]
    fn mxfp4_e8m0_half_scale() {
        // e = 127 + 1 = 128: d = 2^(128 - 128) = 1, so y = kvalues (twice E2M1) * 1... with the
        // E8M0 value 2^1 and E2M1 code 7 (6.0): 6 * 2 = 12 = kvalues[7] * d.
        // Bytes: low nibble j, high nibble 15 - j.
        let mut b = vec![128u8];
        b.extend((0..16u8).map(|j| ((15 - j) << 4) | j));
        let y = run(DType::MXFP4, &b, 32);
        for j in 0..16 {
            assert_eq!(y[j], f32::from(KVALUES_MXFP4[j]));
            assert_eq!(y[j + 16], f32::from(KVALUES_MXFP4[15 - j]));
        }
        assert_eq!((y[7], y[16]), (12.0, -12.0));
        // e = 0 and 1 are f32 subnormals: 2^-128 and 2^-127; e = 2 is 2^-126, the smallest normal.
        assert_eq!(e8m0_to_f32_half(0), f32::from_bits(0x0020_0000));
        assert_eq!(e8m0_to_f32_half(1), f32::from_bits(0x0040_0000));
        assert_eq!(e8m0_to_f32_half(2), f32::MIN_POSITIVE);
        assert_eq!(e8m0_to_f32_half(254), 2f32.powi(126));
    }

    #[test]
    fn nvfp4_sub_blocks_of_sixteen() {
        // UE4M3 scales: 0x38 = 2^(7-7) = 1, 0x7E = 1.75 * 2^8 = 448, 0x01 = 2^-9 (subnormal),
        // 0x7F = NaN code -> 0 in ggml. Values are halved (kvalues are doubled).
        assert_eq!(ue4m3_to_f32_half(0x38), 0.5);
        assert_eq!(ue4m3_to_f32_half(0x7E), 224.0);
        assert_eq!(ue4m3_to_f32_half(0x01), 2f32.powi(-10));
        assert_eq!(ue4m3_to_f32_half(0x7F), 0.0);
        // Sub-block s has scale byte 0x38 + 8s (2^s); every code byte 0x71: element j < 8 has
        // code 1 (kv 1), element j + 8 code 7 (kv 12). y = kv * 2^s / 2.
        let mut b = vec![0x38u8, 0x40, 0x48, 0x50];
        b.extend([0x71u8; 32]);
        let y = run(DType::NVFP4, &b, 64);
        for (i, v) in y.iter().enumerate() {
            let s = i / 16;
            let kv = if i % 16 < 8 { 1.0 } else { 12.0 };
            assert_eq!(*v, kv * 2f32.powi(s as i32) / 2.0, "element {i}");
        }
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let mut out = vec![0.0; 32];
        assert!(dequantize(DType::Q8_0, &[0u8; 33], &mut out).is_err());
        assert!(dequantize(DType::F32, &[0u8; 128], &mut out).is_err());
        let mut odd = vec![0.0; 31];
        assert!(dequantize(DType::Q8_0, &[0u8; 34], &mut odd).is_err());
    }
}
