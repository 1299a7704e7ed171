//! One GGUF block made readable: its stored fields bit by bit (d, dmin as f16; the packed
//! sub-block scales and mins decoded per sub-block; E8M0 / UE4M3 scale bytes), each element's
//! code, the scale and offset that reconstruct it, and the values the block can take.
//!
//! Every element follows x̂ = element_scale · level(code) + element_offset, where level is the
//! integer (or table value) the format multiplies: Q8_0 q; Q4_0 q − 8; Q5_0 q − 16; Q4_1,
//! Q5_1, Q2_K, Q4_K, Q5_K q; Q3_K q − 4; Q6_K q − 32; IQ4_NL kvalues_iq4nl[q]; MXFP4 and NVFP4
//! the E2M1 value of q. The reconstructed values themselves are the decoder's (ggml's
//! `dequantize_row_*`), so they are exact whatever the stored bytes.
//!
//! `levels` is the union over the block's sub-blocks of every value an element can take
//! (for the K-quants each sub-block has its own grid; the union is what a histogram of the
//! whole block can show), ascending, without duplicates.

use super::common::fp16_value;
use super::kquants::{get_scale_min_k4, q3_k_scale};
use super::{QuantFormat, block_layout, dtype_of};
use crate::quant::formats::{BlockDetail, BlockField, Encoded};
use crate::tensor::gguf_blocks::{
    self, KVALUES_IQ4NL, KVALUES_MXFP4, e8m0_to_f32_half, ue4m3_to_f32_half,
};

/// The f16 field at `at`.
fn f16_field(name: &str, b: &[u8], at: usize) -> (BlockField, f32) {
    let bits = u16::from_le_bytes([b[at], b[at + 1]]);
    let value = fp16_value(bits);
    (
        BlockField {
            name: name.into(),
            bits: 16,
            raw: u64::from(bits),
            encoding: "f16".into(),
            value: f64::from(value),
        },
        value,
    )
}

fn int_field(name: String, bits: u32, raw: u8, encoding: &str, value: f64) -> BlockField {
    BlockField {
        name,
        bits,
        raw: u64::from(raw),
        encoding: encoding.into(),
        value,
    }
}

/// The 4-bit nibble of element `i` in a 32-element block whose `qs[16]` starts at `at`
/// (element j in the low nibble of qs[j], element j + 16 in the high nibble).
fn nibble32(b: &[u8], at: usize, i: usize) -> u8 {
    if i < 16 {
        b[at + i] & 0x0F
    } else {
        b[at + i - 16] >> 4
    }
}

/// Bit 4 of element `i` of a Q5_0/Q5_1 block from its little-endian `qh` at `at`.
fn q5_high(b: &[u8], at: usize, i: usize) -> u8 {
    let qh = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    // One bit.
    ((qh >> i) & 1) as u8
}

/// The 2-bit field of element `i` of a Q2_K/Q3_K super-block whose `qs[64]` starts at `at`.
fn two_bits(b: &[u8], at: usize, i: usize) -> u8 {
    let (n, r) = (i / 128, i % 128);
    (b[at + 32 * n + r % 32] >> (2 * (r / 32))) & 3
}

/// E2M1 value of a 4-bit code (half ggml's doubled table entry; exact).
fn e2m1(code: u8) -> f32 {
    f32::from(KVALUES_MXFP4[usize::from(code & 0x0F)]) * 0.5
}

/// The per-format account of one block (everything but `values`, `levels` and the indices).
struct Parts {
    fields: Vec<BlockField>,
    codes: Vec<i32>,
    scale: Vec<f32>,
    offset: Vec<f32>,
    /// For every element, every level its sub-block can take (collected into `levels`).
    grid: Vec<f32>,
    formula: String,
}

/// The reconstructions d·level + offset of every code level of a sub-block, as ggml computes
/// them.
fn grid_of(scale: f32, offset: f32, levels: impl IntoIterator<Item = f32>) -> Vec<f32> {
    levels.into_iter().map(|l| scale * l + offset).collect()
}

fn int_levels(lo: i32, hi: i32) -> impl Iterator<Item = f32> {
    // Code ranges are at most -128..=127: exact in f32.
    (lo..=hi).map(|l| l as f32)
}

fn legacy(format: QuantFormat, b: &[u8]) -> Parts {
    let mut fields = Vec::new();
    let (f, d) = f16_field("d", b, 0);
    fields.push(f);
    let (min, qs_at, qh_at) = match format {
        QuantFormat::Q4_1 => {
            let (f, m) = f16_field("m", b, 2);
            fields.push(f);
            (Some(m), 4, None)
        }
        QuantFormat::Q5_0 => (None, 6, Some(2)),
        QuantFormat::Q5_1 => {
            let (f, m) = f16_field("m", b, 2);
            fields.push(f);
            (Some(m), 8, Some(4))
        }
        _ => (None, 2, None),
    };
    let codes: Vec<i32> = (0..32)
        .map(|i| {
            let high = qh_at.map_or(0, |at| q5_high(b, at, i) << 4);
            i32::from(nibble32(b, qs_at, i) | high)
        })
        .collect();
    let (bias, top, formula) = match format {
        QuantFormat::Q4_0 => (
            8,
            15,
            "x̂ = d · (q − 8): the 4-bit code q, centred on 8, times the f16 scale d",
        ),
        QuantFormat::Q5_0 => (
            16,
            31,
            "x̂ = d · (q − 16): the 5-bit code q (bit 4 from qh), centred on 16, times the f16 scale d",
        ),
        QuantFormat::Q4_1 => (
            0,
            15,
            "x̂ = d · q + m: the 4-bit code q times the f16 scale d, plus the f16 block minimum m",
        ),
        _ => (
            0,
            31,
            "x̂ = d · q + m: the 5-bit code q (bit 4 from qh) times the f16 scale d, plus the f16 block minimum m",
        ),
    };
    let offset = min.unwrap_or(0.0);
    let grid = if min.is_some() {
        // ggml computes q·d + m.
        int_levels(0, top).map(|q| q * d + offset).collect()
    } else {
        int_levels(-bias, top - bias).map(|l| l * d).collect()
    };
    Parts {
        fields,
        codes,
        scale: vec![d; 32],
        offset: vec![offset; 32],
        grid,
        formula: formula.into(),
    }
}

fn q8_0(b: &[u8]) -> Parts {
    let (f, d) = f16_field("d", b, 0);
    Parts {
        fields: vec![f],
        // The stored byte is an int8.
        codes: (0..32).map(|i| i32::from(b[2 + i] as i8)).collect(),
        scale: vec![d; 32],
        offset: vec![0.0; 32],
        grid: int_levels(-128, 127).map(|q| q * d).collect(),
        formula: "x̂ = d · q: the signed 8-bit code q times the f16 scale d".into(),
    }
}

#[allow(
    clippy::needless_range_loop,
    reason = "indexes several arrays by the same position, as ggml's C does"
)]
fn q2_k(b: &[u8]) -> Parts {
    let (fd, d) = f16_field("d", b, 80);
    let (fm, dmin) = f16_field("dmin", b, 82);
    let mut fields = vec![fd, fm];
    let mut grid = Vec::new();
    let mut sub = Vec::new();
    // j numbers the fields as ggml's struct does (scales[j]); the byte is b[j].
    #[allow(clippy::needless_range_loop)]
    for j in 0..16 {
        let (sc, m) = (b[j] & 0x0F, b[j] >> 4);
        fields.push(int_field(
            format!("scales[{j}] low (sc_{j})"),
            4,
            sc,
            "4-bit unsigned, × d",
            f64::from(sc),
        ));
        fields.push(int_field(
            format!("scales[{j}] high (m_{j})"),
            4,
            m,
            "4-bit unsigned, × dmin",
            f64::from(m),
        ));
        let dl = d * f32::from(sc);
        let ml = dmin * f32::from(m);
        grid.extend(grid_of(dl, -ml, int_levels(0, 3)));
        sub.push((dl, -ml));
    }
    Parts {
        fields,
        codes: (0..256).map(|i| i32::from(two_bits(b, 16, i))).collect(),
        scale: (0..256).map(|i| sub[i / 16].0).collect(),
        offset: (0..256).map(|i| sub[i / 16].1).collect(),
        grid,
        formula: "x̂ = d · sc_j · q − dmin · m_j: the 2-bit code q of element i, scaled by its \
                  16-element sub-block j = i / 16 (4-bit sc_j times the f16 d) and shifted down \
                  by the sub-block's 4-bit min m_j times the f16 dmin"
            .into(),
    }
}

fn q3_k(b: &[u8]) -> Parts {
    let (fd, d) = f16_field("d", b, 108);
    let mut fields = vec![fd];
    let scales = &b[96..108];
    let mut grid = Vec::new();
    let mut sub = Vec::new();
    for j in 0..16 {
        let s = q3_k_scale(j, scales);
        // s + 32 is the stored 6-bit field (0..64).
        let raw = (i16::from(s) + 32) as u8;
        fields.push(int_field(
            format!("scale {j}"),
            6,
            raw,
            "6-bit unsigned minus 32 (signed scale), × d",
            f64::from(s),
        ));
        let dl = d * f32::from(s);
        grid.extend(grid_of(dl, 0.0, int_levels(-4, 3)));
        sub.push(dl);
    }
    let codes = (0..256)
        .map(|i| {
            let high = (b[i % 32] >> (i / 32)) & 1;
            i32::from(two_bits(b, 32, i) | (high << 2))
        })
        .collect();
    Parts {
        fields,
        codes,
        scale: (0..256).map(|i| sub[i / 16]).collect(),
        offset: vec![0.0; 256],
        grid,
        formula: "x̂ = d · (sc_j − 32) · (q − 4): the 3-bit code q of element i (2 bits from qs, \
                  the third from hmask), centred on 4, times its 16-element sub-block j = i / 16's \
                  signed 6-bit scale and the f16 d"
            .into(),
    }
}

fn q45_k(format: QuantFormat, b: &[u8]) -> Parts {
    let (fd, d) = f16_field("d", b, 0);
    let (fm, dmin) = f16_field("dmin", b, 2);
    let mut fields = vec![fd, fm];
    let packed = &b[4..16];
    let five = format == QuantFormat::Q5_K;
    let top = if five { 31 } else { 15 };
    let mut grid = Vec::new();
    let mut sub = Vec::new();
    for j in 0..8 {
        let (sc, m) = get_scale_min_k4(j, packed);
        fields.push(int_field(
            format!("sc_{j}"),
            6,
            sc,
            "6-bit unsigned (packed in scales[12]), × d",
            f64::from(sc),
        ));
        fields.push(int_field(
            format!("m_{j}"),
            6,
            m,
            "6-bit unsigned (packed in scales[12]), × dmin",
            f64::from(m),
        ));
        let dl = d * f32::from(sc);
        let ml = dmin * f32::from(m);
        grid.extend(grid_of(dl, -ml, int_levels(0, top)));
        sub.push((dl, -ml));
    }
    let qs_at = if five { 48 } else { 16 };
    let codes = (0..256)
        .map(|i| {
            let (g, h, l) = (i / 64, (i % 64) / 32, i % 32);
            let low = (b[qs_at + 32 * g + l] >> (4 * h)) & 0x0F;
            let high = if five {
                ((b[16 + l] >> (2 * g + h)) & 1) << 4
            } else {
                0
            };
            i32::from(low | high)
        })
        .collect();
    let formula = if five {
        "x̂ = d · sc_j · q − dmin · m_j: the 5-bit code q of element i (bit 4 from qh), scaled by \
         its 32-element sub-block j = i / 32 (6-bit sc_j times the f16 d) and shifted down by the \
         sub-block's 6-bit min m_j times the f16 dmin"
    } else {
        "x̂ = d · sc_j · q − dmin · m_j: the 4-bit code q of element i, scaled by its 32-element \
         sub-block j = i / 32 (6-bit sc_j times the f16 d) and shifted down by the sub-block's \
         6-bit min m_j times the f16 dmin"
    };
    Parts {
        fields,
        codes,
        scale: (0..256).map(|i| sub[i / 32].0).collect(),
        offset: (0..256).map(|i| sub[i / 32].1).collect(),
        grid,
        formula: formula.into(),
    }
}

fn q6_k(b: &[u8]) -> Parts {
    let (fd, d) = f16_field("d", b, 208);
    let mut fields = vec![fd];
    let mut grid = Vec::new();
    let mut sub = Vec::new();
    for j in 0..16 {
        let raw = b[192 + j];
        // Stored as int8.
        let s = raw as i8;
        fields.push(int_field(
            format!("scales[{j}]"),
            8,
            raw,
            "int8, × d",
            f64::from(s),
        ));
        let dl = d * f32::from(s);
        grid.extend(grid_of(dl, 0.0, int_levels(-32, 31)));
        sub.push(dl);
    }
    let codes = (0..256)
        .map(|i| {
            let (n, k, l) = (i / 128, (i % 128) / 32, i % 32);
            let ql = b[64 * n + l + 32 * (k % 2)];
            let low = if k < 2 { ql & 0x0F } else { ql >> 4 };
            let high = (b[128 + 32 * n + l] >> (2 * k)) & 3;
            i32::from(low | (high << 4))
        })
        .collect();
    Parts {
        fields,
        codes,
        scale: (0..256).map(|i| sub[i / 16]).collect(),
        offset: vec![0.0; 256],
        grid,
        formula: "x̂ = d · sc_j · (q − 32): the 6-bit code q of element i (4 bits from ql, 2 from \
                  qh), centred on 32, times its 16-element sub-block j = i / 16's int8 scale and \
                  the f16 d"
            .into(),
    }
}

fn iq4_nl(b: &[u8]) -> Parts {
    let (f, d) = f16_field("d", b, 0);
    Parts {
        fields: vec![f],
        codes: (0..32).map(|i| i32::from(nibble32(b, 2, i))).collect(),
        scale: vec![d; 32],
        offset: vec![0.0; 32],
        grid: KVALUES_IQ4NL.iter().map(|&k| d * f32::from(k)).collect(),
        formula: "x̂ = d · kvalues_iq4nl[q]: the 4-bit code q indexes the non-linear table \
                  {−127, −104, −83, −65, −49, −35, −22, −10, 1, 13, 25, 38, 53, 69, 89, 113}, \
                  times the f16 scale d"
            .into(),
    }
}

fn mxfp4(b: &[u8]) -> Parts {
    let e = b[0];
    // 2^(e − 127) = 2 · 2^(e − 128); f32 overflows only for e = 255 (foreign bytes).
    let scale = 2.0 * e8m0_to_f32_half(e);
    Parts {
        fields: vec![int_field(
            "e".into(),
            8,
            e,
            "E8M0 (2^(e − 127))",
            2f64.powi(i32::from(e) - 127),
        )],
        codes: (0..32).map(|i| i32::from(nibble32(b, 1, i))).collect(),
        scale: vec![scale; 32],
        offset: vec![0.0; 32],
        grid: (0..16u8).map(|c| e2m1(c) * scale).collect(),
        formula: "x̂ = E2M1(q) · 2^(e − 127): the 4-bit E2M1 code q (sign, 2 exponent bits, 1 \
                  mantissa bit: 0, 0.5, 1, 1.5, 2, 3, 4, 6) times the block's E8M0 power of two"
            .into(),
    }
}

#[allow(
    clippy::needless_range_loop,
    reason = "indexes several arrays by the same position, as ggml's C does"
)]
fn nvfp4(b: &[u8]) -> Parts {
    let mut fields = Vec::new();
    let mut grid = Vec::new();
    let mut sub = Vec::new();
    // s numbers the sub-blocks (d[s]); the byte is b[s].
    #[allow(clippy::needless_range_loop)]
    for s in 0..4 {
        let ue = b[s];
        let value = 2.0 * ue4m3_to_f32_half(ue);
        fields.push(int_field(
            format!("d[{s}]"),
            8,
            ue,
            "UE4M3 (unsigned E4M3, bias 7)",
            f64::from(value),
        ));
        grid.extend((0..16u8).map(|c| e2m1(c) * value));
        sub.push(value);
    }
    let codes = (0..64)
        .map(|i| {
            let (s, r) = (i / 16, i % 16);
            let byte = b[4 + 8 * s + r % 8];
            i32::from(if r < 8 { byte & 0x0F } else { byte >> 4 })
        })
        .collect();
    Parts {
        fields,
        codes,
        scale: (0..64).map(|i| sub[i / 16]).collect(),
        offset: vec![0.0; 64],
        grid,
        formula: "x̂ = E2M1(q) · UE4M3(d_s): the 4-bit E2M1 code q of element i times the \
                  unsigned E4M3 scale of its 16-element sub-block s = i / 16 (ggml's NVFP4: no \
                  per-tensor scale)"
            .into(),
    }
}

/// A readable account of block `block` (row-major over rows × blocks per row) of a GGUF
/// tensor, or `None` if the block does not exist or the parts are not this format's.
pub(super) fn block_detail(
    format: QuantFormat,
    encoded: &Encoded,
    block: usize,
) -> Option<BlockDetail> {
    let dtype = dtype_of(format)?;
    let (elements, size) = block_layout(format)?;
    let part = encoded.part("blocks")?;
    let numel = encoded
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))?;
    if block >= numel / elements {
        return None;
    }
    let start = block.checked_mul(size)?;
    let b = part.bytes.get(start..start.checked_add(size)?)?;
    let mut values = vec![0.0f32; elements];
    gguf_blocks::dequantize(dtype, b, &mut values).ok()?;
    let parts = match format {
        QuantFormat::Q8_0 => q8_0(b),
        QuantFormat::Q4_0 | QuantFormat::Q4_1 | QuantFormat::Q5_0 | QuantFormat::Q5_1 => {
            legacy(format, b)
        }
        QuantFormat::Q2_K => q2_k(b),
        QuantFormat::Q3_K => q3_k(b),
        QuantFormat::Q4_K | QuantFormat::Q5_K => q45_k(format, b),
        QuantFormat::Q6_K => q6_k(b),
        QuantFormat::Iq4_Nl => iq4_nl(b),
        QuantFormat::Gguf_Mxfp4 => mxfp4(b),
        QuantFormat::Gguf_Nvfp4 => nvfp4(b),
        _ => return None,
    };
    let mut levels = parts.grid;
    levels.sort_by(f32::total_cmp);
    // -0 and +0 are one level.
    levels.dedup_by(|a, b| a == b || (a.is_nan() && b.is_nan()));
    Some(BlockDetail {
        block,
        first: block * elements,
        fields: parts.fields,
        codes: parts.codes,
        values,
        element_scale: parts.scale,
        element_offset: parts.offset,
        levels,
        formula: parts.formula,
    })
}
