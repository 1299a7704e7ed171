//! bitsandbytes NF4 (`nf4`) and NF4 with double quantization of the scales (`nf4_dq`), as
//! bitsandbytes 0.50.2 `functional.quantize_4bit(quant_type="nf4", blocksize=64)` stores them
//! (NUMERICS.md §8, FORMATS-NOTES.md §4).
//!
//! Blocks of 64 consecutive elements of the *flattened* tensor (a shorter tail block allowed).
//! A full block stores absmax = max |x| and scales x · f32(1 / max(absmax, 1e-38)); the tail
//! block stores max(absmax, 1e-38) and divides by it (bitsandbytes' CPU code does both, as
//! here). The scaled value, clamped to [-1, 1], takes the code of the nearest of the 16 NF4
//! levels by their f32 midpoints, an exact midpoint going to the lower code (torch.bucketize;
//! CUDA's threshold tree agrees); NaN takes code 15, as bucketize puts it. Codes are packed two
//! per byte, the first in the HIGH nibble (`code[2i] << 4 | code[2i + 1]`), an odd count padded
//! with the code of 0 (7). The value is `f32(NF4[code] · absmax)`.
//!
//! Double quantization codes absmax - offset, offset the f32 mean of the absmax values, with
//! bitsandbytes' signed 8-bit dynamic map in groups of 256 by exact nearest: the same rule one
//! level up (reciprocal multiply for full groups, division for the tail, f32 midpoints of the
//! map, ties to the lower code), which is bitsandbytes' exact kernel (its "default" backend, and
//! CUDA's binary search). bitsandbytes' CPU build instead looks the scaled value up in a
//! 65,536-entry table (`cquantize_blockwise_cpu_fp32`) that is not exact nearest and gives
//! another code for about 0.3% of absmax values (3 of the 1100 in
//! tests/fixtures/formats/dq_unit.safetensors). The offset is the correctly rounded f32 mean
//! (an f64 compensated sum, one division, one rounding); torch's f32 `mean` depends on the
//! machine's vector width and thread count and differs from it by one ulp on some inputs, which
//! moves every dequantized value of such a tensor by a rounding. The value is
//! `f32(NF4[code] · (f32(map[q] · absmax2) + offset))`.
//!
//! Parts: `nf4` "codes" (u8, `[ceil(n / 2)]`) and "absmax" (f32, `[blocks]`); `nf4_dq` "codes",
//! "absmax_codes" (u8, `[blocks]`), "absmax2" (f32, `[ceil(blocks / 256)]`) and "offset" (f32, []).

use std::sync::LazyLock;

use rayon::prelude::*;

use super::mx::{CHUNK, amax_nan, f32_at, scaled_levels};
use super::*;

/// Elements per NF4 block.
pub const BLOCK: usize = 64;
/// Absmax values per double-quantization group.
pub const DQ_GROUP: usize = 256;
/// The floor bitsandbytes clamps an absmax to before dividing (f32(1e-38), an f32 subnormal).
const ABSMAX_FLOOR: f32 = 1e-38;

/// The 16 NF4 levels as f32 bit patterns, ascending (bitsandbytes `get_4bit_type("nf4")`).
const NF4_BITS: [u32; 16] = [
    0xBF80_0000,
    0xBF32_39B1,
    0xBF06_6B30,
    0xBECA_32A0,
    0xBE91_A24D,
    0xBE3D_353F,
    0xBDBA_7871,
    0x0000_0000,
    0x3DA2_FAFF,
    0x3E24_CAE3,
    0x3E7C_04DD,
    0x3EAD_033A,
    0x3EE1_A4B8,
    0x3F10_07AB,
    0x3F39_13B3,
    0x3F80_0000,
];

/// bitsandbytes' signed 8-bit dynamic map (`create_dynamic_map(signed=True)`, sorted), as f32
/// bit patterns: 256 values from -0.99297 to 1.
#[rustfmt::skip]
const DYNAMIC_MAP_BITS: [u32; 256] = [
    0xBF7E3333, 0xBF7A999A, 0xBF770000, 0xBF736666, 0xBF6FCCCD, 0xBF6C3333, 0xBF68999A, 0xBF650000,
    0xBF616666, 0xBF5DCCCD, 0xBF5A3333, 0xBF56999A, 0xBF530000, 0xBF4F6666, 0xBF4BCCCD, 0xBF483333,
    0xBF44999A, 0xBF410000, 0xBF3D6666, 0xBF39CCCD, 0xBF363334, 0xBF32999A, 0xBF2F0000, 0xBF2B6666,
    0xBF27CCCD, 0xBF243334, 0xBF20999A, 0xBF1D0000, 0xBF196666, 0xBF15CCCD, 0xBF123334, 0xBF0E999A,
    0xBF0B0000, 0xBF076666, 0xBF03CCCC, 0xBF003333, 0xBEF93332, 0xBEF20000, 0xBEEACCCC, 0xBEE3999A,
    0xBEDC6666, 0xBED53333, 0xBECE0000, 0xBEC6CCCC, 0xBEBF999A, 0xBEB86666, 0xBEB13333, 0xBEAA0000,
    0xBEA2CCCC, 0xBE9B999A, 0xBE946666, 0xBE8D3334, 0xBE860000, 0xBE7D9999, 0xBE6F3333, 0xBE60CCCD,
    0xBE526666, 0xBE440000, 0xBE35999A, 0xBE273333, 0xBE18CCCD, 0xBE0A6666, 0xBDF80000, 0xBDDB3334,
    0xBDC9EB85, 0xBDC428F7, 0xBDBE6667, 0xBDB8A3D7, 0xBDB2E148, 0xBDAD1EB8, 0xBDA75C2A, 0xBDA1999A,
    0xBD9BD70A, 0xBD96147B, 0xBD9051EB, 0xBD8A8F5D, 0xBD84CCCD, 0xBD7E147B, 0xBD728F5D, 0xBD670A3D,
    0xBD5B851F, 0xBD500000, 0xBD447AE1, 0xBD38F5C3, 0xBD2D70A3, 0xBD21EB85, 0xBD166667, 0xBD0AE148,
    0xBCFEB852, 0xBCE7AE15, 0xBCD0A3D7, 0xBCB9999A, 0xBCA28F5D, 0xBC8B851F, 0xBC68F5C3, 0xBC3AE148,
    0xBC1F3B64, 0xBC160418, 0xBC0CCCCD, 0xBC039581, 0xBBF4BC6A, 0xBBE24DD3, 0xBBCFDF3B, 0xBBBD70A4,
    0xBBAB020D, 0xBB989374, 0xBB8624DD, 0xBB676C8A, 0xBB428F5C, 0xBB1DB22D, 0xBAF1A9FC, 0xBAA7EF9D,
    0xBA7765FF, 0xBA59E83E, 0xBA3C6A80, 0xBA1EECC1, 0xBA016F01, 0xB9C7E283, 0xB98CE705, 0xB923D70B,
    0xB8BA1F4B, 0xB88AEFB3, 0xB8378034, 0xB7B24206, 0xB70205FF, 0xB65A1A94, 0xB513A3B7, 0x00000000,
    0x3513A3B7, 0x365A1A94, 0x370205FF, 0x37B24206, 0x38378034, 0x388AEFB3, 0x38BA1F4B, 0x3923D70B,
    0x398CE705, 0x39C7E283, 0x3A016F01, 0x3A1EECC1, 0x3A3C6A80, 0x3A59E83E, 0x3A7765FF, 0x3AA7EF9D,
    0x3AF1A9FC, 0x3B1DB22D, 0x3B428F5C, 0x3B676C8A, 0x3B8624DD, 0x3B989374, 0x3BAB020D, 0x3BBD70A4,
    0x3BCFDF3B, 0x3BE24DD3, 0x3BF4BC6A, 0x3C039581, 0x3C0CCCCD, 0x3C160418, 0x3C1F3B64, 0x3C3AE148,
    0x3C68F5C3, 0x3C8B851F, 0x3CA28F5D, 0x3CB9999A, 0x3CD0A3D7, 0x3CE7AE15, 0x3CFEB852, 0x3D0AE148,
    0x3D166667, 0x3D21EB85, 0x3D2D70A3, 0x3D38F5C3, 0x3D447AE1, 0x3D500000, 0x3D5B851F, 0x3D670A3D,
    0x3D728F5D, 0x3D7E147B, 0x3D84CCCD, 0x3D8A8F5D, 0x3D9051EB, 0x3D96147B, 0x3D9BD70A, 0x3DA1999A,
    0x3DA75C2A, 0x3DAD1EB8, 0x3DB2E148, 0x3DB8A3D7, 0x3DBE6667, 0x3DC428F7, 0x3DC9EB85, 0x3DDB3334,
    0x3DF80000, 0x3E0A6666, 0x3E18CCCD, 0x3E273333, 0x3E35999A, 0x3E440000, 0x3E526666, 0x3E60CCCD,
    0x3E6F3333, 0x3E7D9999, 0x3E860000, 0x3E8D3334, 0x3E946666, 0x3E9B999A, 0x3EA2CCCC, 0x3EAA0000,
    0x3EB13333, 0x3EB86666, 0x3EBF999A, 0x3EC6CCCC, 0x3ECE0000, 0x3ED53333, 0x3EDC6666, 0x3EE3999A,
    0x3EEACCCC, 0x3EF20000, 0x3EF93332, 0x3F003333, 0x3F03CCCC, 0x3F076666, 0x3F0B0000, 0x3F0E999A,
    0x3F123334, 0x3F15CCCD, 0x3F196666, 0x3F1D0000, 0x3F20999A, 0x3F243334, 0x3F27CCCD, 0x3F2B6666,
    0x3F2F0000, 0x3F32999A, 0x3F363334, 0x3F39CCCD, 0x3F3D6666, 0x3F410000, 0x3F44999A, 0x3F483333,
    0x3F4BCCCD, 0x3F4F6666, 0x3F530000, 0x3F56999A, 0x3F5A3333, 0x3F5DCCCD, 0x3F616666, 0x3F650000,
    0x3F68999A, 0x3F6C3333, 0x3F6FCCCD, 0x3F736666, 0x3F770000, 0x3F7A999A, 0x3F7E3333, 0x3F800000,
];

/// The NF4 levels as f32.
pub static NF4_LEVELS: LazyLock<[f32; 16]> = LazyLock::new(|| NF4_BITS.map(f32::from_bits));

/// The dynamic map as f32.
pub static DYNAMIC_MAP: LazyLock<[f32; 256]> =
    LazyLock::new(|| DYNAMIC_MAP_BITS.map(f32::from_bits));

/// f32 midpoints of consecutive entries, (c[i] + c[i + 1]) / 2 as torch computes them.
fn midpoints<const N: usize, const M: usize>(levels: &[f32; N]) -> [f32; M] {
    std::array::from_fn(|i| (levels[i] + levels[i + 1]) / 2.0)
}

static NF4_MIDPOINTS: LazyLock<[f32; 15]> = LazyLock::new(|| midpoints(&NF4_LEVELS));
static DYNAMIC_MIDPOINTS: LazyLock<[f32; 255]> = LazyLock::new(|| midpoints(&DYNAMIC_MAP));

/// torch.bucketize(x, midpoints) (right = false): how many midpoints lie strictly below x, so
/// an exact midpoint goes to the lower code; NaN sorts above everything.
fn bucketize(x: f32, midpoints: &[f32]) -> u8 {
    let index = if x.is_nan() {
        midpoints.len()
    } else {
        midpoints.partition_point(|&m| m < x)
    };
    // At most 255 midpoints.
    index as u8
}

/// torch's `clamp(min=1e-38)`, which keeps NaN (f32::max would drop it).
fn floor_absmax(a: f32) -> f32 {
    if a.is_nan() { a } else { a.max(ABSMAX_FLOOR) }
}

/// One block (or group) as bitsandbytes scales it: the stored absmax and the scaled values.
/// A full block multiplies by the reciprocal and stores the raw absmax; the tail block divides
/// and stores the floored one.
fn scale_block(block: &[f32], tail: bool) -> (f32, impl Iterator<Item = f32> + '_) {
    let amax = amax_nan(block);
    let floored = floor_absmax(amax);
    let reciprocal = 1.0f32 / floored;
    let stored = if tail { floored } else { amax };
    let scaled = block.iter().map(move |&x| {
        let v = if tail { x / floored } else { x * reciprocal };
        v.clamp(-1.0, 1.0)
    });
    (stored, scaled)
}

/// The NF4 codes and stored absmax of a chunk of whole blocks starting at flat element
/// `first` of a tensor of `numel` elements.
fn encode_nf4(values: &[f32], first: usize, numel: usize) -> (Vec<u8>, Vec<f32>) {
    let full_end = numel - numel % BLOCK;
    let mut codes = Vec::with_capacity(values.len());
    let mut absmax = Vec::with_capacity(values.len().div_ceil(BLOCK));
    for (b, block) in values.chunks(BLOCK).enumerate() {
        let tail = first + b * BLOCK >= full_end;
        let (stored, scaled) = scale_block(block, tail);
        absmax.push(stored);
        codes.extend(scaled.map(|v| bucketize(v, &*NF4_MIDPOINTS)));
    }
    (codes, absmax)
}

/// The absmax values of a chunk's blocks alone (the first pass of double quantization).
fn block_absmax(values: &[f32], first: usize, numel: usize) -> Vec<f32> {
    let full_end = numel - numel % BLOCK;
    values
        .chunks(BLOCK)
        .enumerate()
        .map(|(b, block)| {
            let amax = amax_nan(block);
            if first + b * BLOCK >= full_end {
                floor_absmax(amax)
            } else {
                amax
            }
        })
        .collect()
}

/// Packs codes two per byte, the first in the high nibble; an odd count pads with 7 (the code
/// of 0.0, as bitsandbytes pads the scaled values with zero).
fn pack_high_first(codes: &[u8]) -> Vec<u8> {
    codes
        .chunks(2)
        .map(|pair| (pair[0] << 4) | pair.get(1).copied().unwrap_or(7))
        .collect()
}

/// Code `i` of codes packed by [`pack_high_first`].
fn nibble_high_first(bytes: &[u8], i: usize) -> Option<u8> {
    let byte = bytes.get(i / 2)?;
    Some(if i.is_multiple_of(2) {
        byte >> 4
    } else {
        byte & 0x0F
    })
}

/// The correctly rounded f32 mean of `values` (NaN or Inf when any value is; 0 for none): a
/// compensated f64 sum (Neumaier), one division, one rounding to f32.
pub fn mean_f32(values: &[f32]) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let (mut sum, mut compensation) = (0.0f64, 0.0f64);
    let mut plain = 0.0f64;
    for &v in values {
        let v = f64::from(v);
        plain += v;
        let t = sum + v;
        compensation += if sum.abs() >= v.abs() {
            (sum - t) + v
        } else {
            (v - t) + sum
        };
        sum = t;
    }
    let total = if plain.is_finite() {
        sum + compensation
    } else {
        plain
    };
    // Rounding to f32 is the point: the mean is stored as f32.
    (total / values.len() as f64) as f32
}

/// Double quantization of absmax values (all of a tensor's, or a chunk's whole groups starting
/// at group `first_group`, of `total` absmax values): the 8-bit codes of absmax - offset and one
/// absmax2 per group of 256.
pub fn double_quantize(
    absmax: &[f32],
    offset: f32,
    first_group: usize,
    total: usize,
) -> (Vec<u8>, Vec<f32>) {
    let full_end = total - total % DQ_GROUP;
    let centred: Vec<f32> = absmax.iter().map(|&a| a - offset).collect();
    let mut codes = Vec::with_capacity(absmax.len());
    let mut absmax2 = Vec::with_capacity(absmax.len().div_ceil(DQ_GROUP));
    for (g, group) in centred.chunks(DQ_GROUP).enumerate() {
        let tail = (first_group + g) * DQ_GROUP >= full_end;
        let (stored, scaled) = scale_block(group, tail);
        absmax2.push(stored);
        codes.extend(scaled.map(|v| bucketize(v, &*DYNAMIC_MIDPOINTS)));
    }
    (codes, absmax2)
}

/// The absmax a double-quantized block is dequantized with: `f32(map[q] · absmax2) + offset`.
pub fn reconstructed_absmax(code: u8, absmax2: f32, offset: f32) -> f32 {
    DYNAMIC_MAP[usize::from(code)] * absmax2 + offset
}

fn corrupt(format: QuantFormat, detail: &str) -> FormatError {
    FormatError::Corrupt {
        format,
        detail: detail.to_string(),
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The NF4 codec.
pub(crate) struct Nf4Codec;

impl Codec for Nf4Codec {
    fn prepare(
        &self,
        format: QuantFormat,
        values: &[f32],
        geometry: Geometry,
        cancel: &Cancel,
    ) -> Result<TensorParams, FormatError> {
        if format != QuantFormat::Nf4_Dq {
            return Ok(TensorParams::default());
        }
        let per_chunk: Vec<Vec<f32>> = values
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(c, chunk)| {
                cancel.check()?;
                Ok(block_absmax(chunk, c * CHUNK, geometry.numel))
            })
            .collect::<Result<_, Cancelled>>()?;
        let absmax: Vec<f32> = per_chunk.concat();
        Ok(TensorParams {
            scalars: vec![mean_f32(&absmax)],
        })
    }

    fn chunk_elements(&self, _format: QuantFormat, _geometry: Geometry) -> usize {
        // Whole 64-blocks and whole groups of 256 of them, over the flattened tensor.
        CHUNK
    }

    fn encode_chunk(
        &self,
        format: QuantFormat,
        params: &TensorParams,
        geometry: Geometry,
        first: usize,
        values: &[f32],
        _imatrix: Option<&[f32]>,
    ) -> ChunkParts {
        let (codes, absmax) = encode_nf4(values, first, geometry.numel);
        let packed = pack_high_first(&codes);
        if format != QuantFormat::Nf4_Dq {
            return vec![
                ("codes", PartDtype::U8, packed),
                ("absmax", PartDtype::F32, f32_bytes(&absmax)),
            ];
        }
        let offset = params.scalars.first().copied().unwrap_or(f32::NAN);
        let total = geometry.numel.div_ceil(BLOCK);
        let (absmax_codes, absmax2) =
            double_quantize(&absmax, offset, first / BLOCK / DQ_GROUP, total);
        let offset_bytes = if first == 0 {
            offset.to_le_bytes().to_vec()
        } else {
            Vec::new()
        };
        vec![
            ("codes", PartDtype::U8, packed),
            ("absmax_codes", PartDtype::U8, absmax_codes),
            ("absmax2", PartDtype::F32, f32_bytes(&absmax2)),
            ("offset", PartDtype::F32, offset_bytes),
        ]
    }

    fn decode_chunk(
        &self,
        format: QuantFormat,
        params: &TensorParams,
        _geometry: Geometry,
        _first: usize,
        parts: &[&[u8]],
        out: &mut [f32],
    ) -> Result<(), FormatError> {
        let codes = parts
            .first()
            .ok_or_else(|| corrupt(format, "the codes part is missing"))?;
        let offset = params.scalars.first().copied().unwrap_or(f32::NAN);
        for (b, block) in out.chunks_mut(BLOCK).enumerate() {
            let absmax = if format == QuantFormat::Nf4_Dq {
                let code = parts.get(1).and_then(|p| p.get(b).copied());
                let absmax2 = parts.get(2).and_then(|p| f32_at(p, b / DQ_GROUP));
                match (code, absmax2) {
                    (Some(q), Some(a2)) => reconstructed_absmax(q, a2, offset),
                    _ => return Err(corrupt(format, "too few absmax codes or absmax2")),
                }
            } else {
                parts
                    .get(1)
                    .and_then(|p| f32_at(p, b))
                    .ok_or_else(|| corrupt(format, "too few absmax"))?
            };
            for (j, o) in block.iter_mut().enumerate() {
                let code = nibble_high_first(codes, b * BLOCK + j)
                    .ok_or_else(|| corrupt(format, "too few codes"))?;
                *o = NF4_LEVELS[usize::from(code)] * absmax;
            }
        }
        Ok(())
    }

    fn params_from_parts(
        &self,
        format: QuantFormat,
        parts: &[Part],
    ) -> Result<TensorParams, FormatError> {
        if format != QuantFormat::Nf4_Dq {
            return Ok(TensorParams::default());
        }
        let offset = parts
            .iter()
            .find(|p| p.name == "offset")
            .and_then(|p| f32_at(&p.bytes, 0))
            .ok_or_else(|| corrupt(format, "the offset part is missing"))?;
        Ok(TensorParams {
            scalars: vec![offset],
        })
    }

    fn part_ranges(
        &self,
        format: QuantFormat,
        _geometry: Geometry,
        first: usize,
        elements: usize,
    ) -> Vec<std::ops::Range<usize>> {
        let end = first + elements;
        let (block0, block1) = (first / BLOCK, end.div_ceil(BLOCK));
        let codes = first / 2..end.div_ceil(2);
        if format != QuantFormat::Nf4_Dq {
            return vec![codes, block0 * 4..block1 * 4];
        }
        vec![
            codes,
            block0..block1,
            block0 / DQ_GROUP * 4..block1.div_ceil(DQ_GROUP) * 4,
            0..0,
        ]
    }

    fn part_shapes(&self, format: QuantFormat, shape: &[usize]) -> Vec<Vec<usize>> {
        let numel: usize = shape.iter().product();
        let blocks = numel.div_ceil(BLOCK);
        if format != QuantFormat::Nf4_Dq {
            return vec![vec![numel.div_ceil(2)], vec![blocks]];
        }
        vec![
            vec![numel.div_ceil(2)],
            vec![blocks],
            vec![blocks.div_ceil(DQ_GROUP)],
            Vec::new(),
        ]
    }

    fn block_detail(
        &self,
        format: QuantFormat,
        encoded: &Encoded,
        block: usize,
    ) -> Option<BlockDetail> {
        let numel: usize = encoded.shape.iter().product();
        let first = block.checked_mul(BLOCK)?;
        if first >= numel {
            return None;
        }
        let len = BLOCK.min(numel - first);
        let codes_part = encoded.part("codes")?;
        let (fields, absmax, formula) = if format == QuantFormat::Nf4_Dq {
            let q = *encoded.part("absmax_codes")?.bytes.get(block)?;
            let absmax2 = f32_at(&encoded.part("absmax2")?.bytes, block / DQ_GROUP)?;
            let offset = f32_at(&encoded.part("offset")?.bytes, 0)?;
            let absmax = reconstructed_absmax(q, absmax2, offset);
            let f32_field = |name: &str, v: f32| BlockField {
                name: name.into(),
                bits: 32,
                raw: u64::from(v.to_bits()),
                encoding: "f32".into(),
                value: f64::from(v),
            };
            (
                vec![
                    BlockField {
                        name: "absmax_code".into(),
                        bits: 8,
                        raw: u64::from(q),
                        encoding: "index into the signed 8-bit dynamic map".into(),
                        value: f64::from(DYNAMIC_MAP[usize::from(q)]),
                    },
                    f32_field("absmax2", absmax2),
                    f32_field("offset", offset),
                ],
                absmax,
                format!(
                    "x̂ = NF4[code] × absmax, absmax = map[{q}] × absmax2 + offset = {absmax:e}"
                ),
            )
        } else {
            let absmax = f32_at(&encoded.part("absmax")?.bytes, block)?;
            (
                vec![BlockField {
                    name: "absmax".into(),
                    bits: 32,
                    raw: u64::from(absmax.to_bits()),
                    encoding: "f32".into(),
                    value: f64::from(absmax),
                }],
                absmax,
                "x̂ = NF4[code] × absmax".to_string(),
            )
        };
        let codes: Vec<u8> = (first..first + len)
            .map(|i| nibble_high_first(&codes_part.bytes, i))
            .collect::<Option<_>>()?;
        Some(BlockDetail {
            block,
            first,
            fields,
            codes: codes.iter().map(|&c| i32::from(c)).collect(),
            values: codes
                .iter()
                .map(|&c| NF4_LEVELS[usize::from(c)] * absmax)
                .collect(),
            element_scale: vec![absmax; len],
            element_offset: vec![0.0; len],
            levels: scaled_levels(NF4_LEVELS.iter().copied(), absmax),
            formula,
        })
    }
}

/// True storage in bits per weight of `numel` elements: 4-bit codes (the byte count rounded
/// up), one f32 absmax per 64 — or, double-quantized, one byte per 64, one f32 absmax2 per
/// 256 blocks and the f32 offset. For whole groups: 4.5 and 4 + 1/8 + 1/512 + 32/n ≈ 4.127.
pub fn bits_per_weight(format: QuantFormat, numel: usize) -> f64 {
    if numel == 0 {
        return if format == QuantFormat::Nf4_Dq {
            4.0 + 8.0 / 64.0 + 32.0 / (64.0 * 256.0)
        } else {
            4.5
        };
    }
    let blocks = numel.div_ceil(BLOCK);
    let codes_bits = 8 * numel.div_ceil(2);
    let scale_bits = if format == QuantFormat::Nf4_Dq {
        8 * blocks + 32 * blocks.div_ceil(DQ_GROUP) + 32
    } else {
        32 * blocks
    };
    (codes_bits + scale_bits) as f64 / numel as f64
}

#[cfg(test)]
mod tests {
    use super::super::mx::fixture::{Fixture, check_against_fixture, same_values};
    use super::*;

    #[test]
    fn exact_midpoints_go_to_the_lower_code() {
        let mids = &*NF4_MIDPOINTS;
        for (i, &m) in mids.iter().enumerate() {
            assert_eq!(usize::from(bucketize(m, mids)), i, "midpoint {i}");
            assert_eq!(usize::from(bucketize(m.next_up(), mids)), i + 1);
        }
        // 0.03979015 (the midpoint of 0 and 0.0796...) -> code 7 (0.0), FORMATS-NOTES's example.
        assert_eq!(mids[7], 0.039_790_15);
        assert_eq!(bucketize(f32::NAN, mids), 15);
        assert_eq!(bucketize(f32::NEG_INFINITY, mids), 0);
    }

    #[test]
    fn packing_is_high_nibble_first_with_a_zero_pad() {
        assert_eq!(pack_high_first(&[1, 2, 15]), [0x12, 0xF7]);
        assert_eq!(nibble_high_first(&[0x12, 0xF7], 2), Some(15));
    }

    #[test]
    fn bits_per_weight_counts_every_field() {
        assert_eq!(bits_per_weight(QuantFormat::Nf4, 64 * 1024), 4.5);
        let n = 64 * 256 * 4;
        let dq = bits_per_weight(QuantFormat::Nf4_Dq, n);
        assert_eq!(dq, 4.0 + 0.125 + 32.0 / 16384.0 + 32.0 / n as f64);
        // 135 elements: 68 bytes of codes + 3 absmax = 544 + 96 bits.
        assert_eq!(bits_per_weight(QuantFormat::Nf4, 135), 640.0 / 135.0);
    }

    #[test]
    fn tables_and_double_quantization_match_bitsandbytes() {
        // dq_unit: 1100 absmax values; the expected codes are bitsandbytes' exact-nearest
        // kernel, "lut_codes" its CPU lookup table, which differs on a few.
        let f = Fixture::load("dq_unit");
        let levels = f.f32s("nf4_levels").expect("levels");
        assert_eq!(levels, NF4_LEVELS.to_vec());
        assert_eq!(f.f32s("dynamic_map").expect("map"), DYNAMIC_MAP.to_vec());
        let absmax = f.f32s("absmax").expect("absmax");
        let offset = mean_f32(&absmax);
        assert_eq!(f.f32s("offset").expect("offset"), [offset]);
        let (codes, absmax2) = double_quantize(&absmax, offset, 0, absmax.len());
        let (_, want_codes) = f.tensor("absmax_codes").expect("codes");
        assert_eq!(codes, want_codes);
        assert_eq!(absmax2, f.f32s("absmax2").expect("absmax2"));
        let rec: Vec<f32> = codes
            .iter()
            .enumerate()
            .map(|(i, &q)| reconstructed_absmax(q, absmax2[i / DQ_GROUP], offset))
            .collect();
        same_values(&rec, &f.f32s("reconstructed").expect("rec")).expect("reconstructed");
        let (_, lut) = f.tensor("lut_codes").expect("lut");
        let differ = lut.iter().zip(&codes).filter(|(a, b)| a != b).count();
        assert_eq!(differ, 3, "the CPU table's departures from exact nearest");
    }

    #[test]
    fn matches_bitsandbytes_byte_for_byte() {
        for case in [
            "mixed", "edges", "zeros", "nan", "inf", "ragged", "nf4_ties",
        ] {
            let fixture = Fixture::load(case);
            check_against_fixture(&fixture, QuantFormat::Nf4);
            check_against_fixture(&fixture, QuantFormat::Nf4_Dq);
        }
    }
}
