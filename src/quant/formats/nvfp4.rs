//! NVIDIA NVFP4 (`nvfp4`): E2M1 elements in blocks of 16 along the last axis, one E4M3 scale
//! per block and one FP32 scale per tensor, as torchao 0.18 `NVFP4Tensor.to_nvfp4` computes it
//! with the per-tensor scale on (NUMERICS.md §8, FORMATS-NOTES.md §3).
//!
//! pts = f32(max |x|) / 2688 (= 448 · 6, torchao's `per_tensor_amax_to_scale`); per block
//! s = E4M3_RNE(clamp(f32(f32(amax_block / 6) / pts), 2^-6, 448)); each element
//! e = E2M1_RNE(clamp(x · f32(f32(1 / pts) / s), -6, 6)) with -0 kept; the value is
//! f32(e · f32(pts · s)). Every step is the f32 operation torchao performs, NaN and Inf
//! propagating as there (a NaN anywhere makes pts NaN and the whole tensor NaN, as in torchao);
//! a NaN element code is the one torchao's bit arithmetic derives from the NaN's bits, which
//! start as the all-ones NaN torch's whole-tensor max returns on x86.
//!
//! The one departure: an all-zero tensor (max |x| = 0, where torchao computes 0 / 0 and returns
//! NaN) stores codes ±0 (the sign of each zero), block scales 2^-6 (0x08, the clamp's floor) and
//! tensor scale 0, and dequantizes to zeros. A tensor that is not all zero but whose tensor scale
//! underflows to 0 (max |x| below about 2^-138.6) is not guarded: it takes torchao's arithmetic
//! (infinite multipliers, NaN scales for its zero blocks), as NUMERICS.md §8 says.
//!
//! Layout (torchao's): "codes" packed two per byte, `byte[i] = e[2i] | e[2i + 1] << 4`, shape
//! [..., cols / 2]; "scales", the E4M3 bytes, [..., cols / 16] (not swizzled); "tensor_scale",
//! one little-endian f32, shape [].

use rayon::prelude::*;

use super::mx::{
    CHUNK, amax_nan, f32_at, max_nan, nibble_low_first, pack_low_first, scaled_levels,
    torch_fp8_code, torchao_floatx_code,
};
use super::*;
use crate::float::FloatFormat;
use crate::tensor::fp8 as tables;

/// Elements per NVFP4 block.
pub const BLOCK: usize = 16;

/// The E2M1 maximum, 6.
const E2M1_MAX: f32 = 6.0;
/// The E4M3 maximum, 448.
const E4M3_MAX: f32 = 448.0;
/// torchao's `F8E4M3_MAX * F4_E2M1_MAX`.
const PTS_DIVISOR: f32 = E4M3_MAX * E2M1_MAX;
/// The smallest normal E4M3, 2^-6 (`torch.finfo(float8_e4m3fn).tiny`): the scale clamp's floor.
const E4M3_TINY: f32 = 0.015625;
/// E4M3 code of 2^-6: the all-zero guard's block scale.
const GUARD_SCALE_CODE: u8 = 0x08;

/// The NaN torch's whole-tensor `max` returns on x86 when a value is NaN: its vectorised
/// reduction ORs an all-ones compare mask in, so the NaN is 0xFFFFFFFF, and torchao's NaN
/// element codes are derived from those bits.
const TORCH_MAX_NAN_BITS: u32 = 0xFFFF_FFFF;

/// The tensor's max |x| as torch's whole-tensor max returns it: NaN (with torch's bits) if any
/// value is NaN.
pub fn tensor_amax(values: &[f32], cancel: &Cancel) -> Result<f32, Cancelled> {
    let amax = values
        .par_chunks(CHUNK)
        .map(|chunk| cancel.check().map(|()| amax_nan(chunk)))
        .try_reduce(|| 0.0f32, |a, b| Ok(max_nan(a, b)))?;
    Ok(if amax.is_nan() {
        f32::from_bits(TORCH_MAX_NAN_BITS)
    } else {
        amax
    })
}

/// The per-tensor scale from the tensor's max |x|: f32(amax) / 2688.
pub fn tensor_scale(amax: f32) -> f32 {
    amax / PTS_DIVISOR
}

/// One block's E4M3 scale code and its f32 value, as torchao computes them from the block's
/// amax and the tensor scale (a zero pts included: x / 0 is ±Inf or NaN there too).
fn block_scale(block: &[f32], pts: f32) -> (u8, f32) {
    let scaled = amax_nan(block) / E2M1_MAX / pts;
    // torch.clamp keeps NaN (so does f32::clamp).
    let clamped = scaled.clamp(E4M3_TINY, E4M3_MAX);
    let code = torch_fp8_code(&FloatFormat::FP8_E4M3, clamped, true);
    (code, e4m3_to_f32(code))
}

/// An E4M3 code as f32 the way torch converts it: the table value, and for the NaN codes the
/// bits c10's `fp8e4m3fn_to_fp32_value` assembles (sign | 0x7FF00000), from which torchao's
/// element kernel derives the codes of a NaN block.
fn e4m3_to_f32(code: u8) -> f32 {
    if code & 0x7F == 0x7F {
        f32::from_bits((u32::from(code & 0x80) << 24) | 0x7FF0_0000)
    } else {
        tables::E4M3FN[usize::from(code)]
    }
}

/// Encodes whole blocks: (element codes, one per element, and block scale codes).
/// `all_zero_tensor` selects the guard (the whole tensor, not only these blocks, is ±0).
fn encode_blocks(values: &[f32], pts: f32, all_zero_tensor: bool) -> (Vec<u8>, Vec<u8>) {
    let mut codes = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(values.len() / BLOCK);
    let reciprocal_pts = 1.0f32 / pts;
    for block in values.chunks(BLOCK) {
        if all_zero_tensor {
            scales.push(GUARD_SCALE_CODE);
            // Every x is ±0 here: keep its sign.
            codes.extend(
                block
                    .iter()
                    .map(|x| if x.is_sign_negative() { 8 } else { 0 }),
            );
            continue;
        }
        let (code, s) = block_scale(block, pts);
        scales.push(code);
        let multiplier = reciprocal_pts / s;
        codes.extend(block.iter().map(|&x| {
            // When both are NaN, torch's product (on x86) is the multiplier's NaN.
            let product = if multiplier.is_nan() {
                multiplier
            } else {
                x * multiplier
            };
            let v = product.clamp(-E2M1_MAX, E2M1_MAX);
            torchao_floatx_code(&FloatFormat::FP4_E2M1, v)
        }));
    }
    (codes, scales)
}

fn corrupt(detail: &str) -> FormatError {
    FormatError::Corrupt {
        format: QuantFormat::Nvfp4,
        detail: detail.to_string(),
    }
}

/// The NVFP4 codec.
pub(crate) struct Nvfp4Codec;

impl Codec for Nvfp4Codec {
    fn prepare(
        &self,
        _format: QuantFormat,
        values: &[f32],
        _geometry: Geometry,
        cancel: &Cancel,
    ) -> Result<TensorParams, FormatError> {
        // [pts, max |x|]: the amax tells the all-zero guard from a tensor scale that underflowed.
        let amax = tensor_amax(values, cancel)?;
        Ok(TensorParams {
            scalars: vec![tensor_scale(amax), amax],
        })
    }

    fn chunk_elements(&self, _format: QuantFormat, _geometry: Geometry) -> usize {
        // Rows are multiples of 16 (checked before): any multiple of 16 holds whole blocks.
        CHUNK
    }

    fn encode_chunk(
        &self,
        _format: QuantFormat,
        params: &TensorParams,
        _geometry: Geometry,
        first: usize,
        values: &[f32],
        _imatrix: Option<&[f32]>,
    ) -> ChunkParts {
        let pts = params.scalars.first().copied().unwrap_or(f32::NAN);
        let all_zero_tensor = params.scalars.get(1) == Some(&0.0);
        let (codes, scales) = encode_blocks(values, pts, all_zero_tensor);
        // The tensor scale is stored once, by the first chunk.
        let tensor_scale = if first == 0 {
            pts.to_le_bytes().to_vec()
        } else {
            Vec::new()
        };
        vec![
            ("codes", PartDtype::U8, pack_low_first(&codes)),
            ("scales", PartDtype::U8, scales),
            ("tensor_scale", PartDtype::F32, tensor_scale),
        ]
    }

    fn decode_chunk(
        &self,
        _format: QuantFormat,
        params: &TensorParams,
        _geometry: Geometry,
        _first: usize,
        parts: &[&[u8]],
        out: &mut [f32],
    ) -> Result<(), FormatError> {
        let pts = params.scalars.first().copied().unwrap_or(f32::NAN);
        let (Some(codes), Some(scales)) = (parts.first(), parts.get(1)) else {
            return Err(corrupt("the codes or scales part is missing"));
        };
        for (b, block) in out.chunks_mut(BLOCK).enumerate() {
            let s = tables::E4M3FN
                [usize::from(*scales.get(b).ok_or_else(|| corrupt("too few scales"))?)];
            let scale = pts * s;
            for (j, o) in block.iter_mut().enumerate() {
                let code = nibble_low_first(codes, b * BLOCK + j)
                    .ok_or_else(|| corrupt("too few codes"))?;
                *o = tables::E2M1[usize::from(code)] * scale;
            }
        }
        Ok(())
    }

    fn params_from_parts(
        &self,
        _format: QuantFormat,
        parts: &[Part],
    ) -> Result<TensorParams, FormatError> {
        let pts = parts
            .iter()
            .find(|p| p.name == "tensor_scale")
            .and_then(|p| f32_at(&p.bytes, 0))
            .ok_or_else(|| corrupt("the tensor_scale part is missing"))?;
        Ok(TensorParams { scalars: vec![pts] })
    }

    fn part_ranges(
        &self,
        _format: QuantFormat,
        _geometry: Geometry,
        first: usize,
        elements: usize,
    ) -> Vec<std::ops::Range<usize>> {
        let end = first + elements;
        // The tensor scale travels in the parameters, not in the chunk.
        vec![
            first / 2..end.div_ceil(2),
            first / BLOCK..end.div_ceil(BLOCK),
            0..0,
        ]
    }

    fn part_shapes(&self, _format: QuantFormat, shape: &[usize]) -> Vec<Vec<usize>> {
        let (last, lead) = match shape.split_last() {
            Some((&last, lead)) => (last, lead.to_vec()),
            None => (1, Vec::new()),
        };
        let with_last = |n: usize| {
            let mut s = lead.clone();
            s.push(n);
            s
        };
        vec![with_last(last / 2), with_last(last / BLOCK), Vec::new()]
    }

    fn block_detail(
        &self,
        _format: QuantFormat,
        encoded: &Encoded,
        block: usize,
    ) -> Option<BlockDetail> {
        let codes = encoded.part("codes")?;
        let code = *encoded.part("scales")?.bytes.get(block)?;
        let pts_part = encoded.part("tensor_scale")?;
        let pts = f32_at(&pts_part.bytes, 0)?;
        let s = tables::E4M3FN[usize::from(code)];
        let scale = pts * s;
        let first = block.checked_mul(BLOCK)?;
        let element_codes: Vec<u8> = (first..first + BLOCK)
            .map(|i| nibble_low_first(&codes.bytes, i))
            .collect::<Option<_>>()?;
        Some(BlockDetail {
            block,
            first,
            fields: vec![
                BlockField {
                    name: "scale".into(),
                    bits: 8,
                    raw: u64::from(code),
                    encoding: "E4M3".into(),
                    value: f64::from(s),
                },
                BlockField {
                    name: "tensor_scale".into(),
                    bits: 32,
                    raw: u64::from(pts.to_bits()),
                    encoding: "f32".into(),
                    value: f64::from(pts),
                },
            ],
            codes: element_codes.iter().map(|&c| i32::from(c)).collect(),
            values: element_codes
                .iter()
                .map(|&c| tables::E2M1[usize::from(c)] * scale)
                .collect(),
            element_scale: vec![scale; BLOCK],
            element_offset: vec![0.0; BLOCK],
            levels: scaled_levels(tables::E2M1.iter().copied(), scale),
            formula: "x̂ = E2M1 element × (tensor_scale × scale), the product rounded to f32 first"
                .into(),
        })
    }
}

/// Storage in bits per weight: 4-bit elements, an 8-bit scale per 16, one f32 per tensor.
pub fn bits_per_weight(numel: usize) -> f64 {
    let per_tensor = if numel == 0 { 0.0 } else { 32.0 / numel as f64 };
    4.0 + 8.0 / BLOCK as f64 + per_tensor
}

#[cfg(test)]
mod tests {
    use super::super::mx::fixture::{Fixture, check_against_fixture};
    use super::*;

    #[test]
    fn tensor_scale_is_amax_over_2688() {
        let cancel = Cancel::never();
        assert_eq!(tensor_amax(&[1.0, -2688.0, 3.0], &cancel), Ok(2688.0));
        assert_eq!(tensor_scale(2688.0), 1.0);
        assert!(tensor_amax(&[1.0, f32::NAN, 3.0], &cancel).is_ok_and(f32::is_nan));
        assert_eq!(tensor_amax(&[0.0, -0.0], &cancel), Ok(0.0));
        // A tiny tensor's scale underflows to 0 although the tensor is not all zero.
        assert_eq!(tensor_scale(1e-42), 0.0);
    }

    #[test]
    fn block_scales_clamp_at_the_smallest_normal_e4m3() {
        // pts = 1: a block of amax 0.06 wants 0.01, below 2^-6: clamped to 0x08.
        assert_eq!(block_scale(&[0.06, 0.0], 1.0), (0x08, E4M3_TINY));
        // amax 6 · 448 = 2688 wants 448 = 0x7E.
        assert_eq!(block_scale(&[2688.0], 1.0), (0x7E, 448.0));
        // amax 6 · 1.0625 is the tie between 1.0 (0x38) and 1.125 (0x39): even, 1.0.
        assert_eq!(block_scale(&[6.375], 1.0).0, 0x38);
    }

    #[test]
    fn bits_per_weight_counts_both_scales() {
        assert_eq!(bits_per_weight(32), 4.0 + 0.5 + 1.0);
        assert_eq!(bits_per_weight(1 << 20), 4.5 + 32.0 / f64::from(1u32 << 20));
    }

    #[test]
    fn matches_torchao_byte_for_byte() {
        // "zeros" and "zeros_row" (a 1-D all-zero bias, as all-MiniLM-L6-v2's pooler.dense.bias)
        // check the all-zero guard; "nan", "inf" and "nvfp4_underflow" (a tensor scale that
        // underflows to 0 in a tensor that is not all zero) torchao's propagation.
        for case in [
            "mixed",
            "zeros",
            "zeros_row",
            "nan",
            "inf",
            "nvfp4_underflow",
        ] {
            check_against_fixture(&Fixture::load(case), QuantFormat::Nvfp4);
        }
    }
}
