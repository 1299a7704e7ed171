//! Scaled FP8 (`fp8_e4m3 fp8_e4m3_channel fp8_e5m2 fp8_e5m2_channel`): one f32 scale per
//! tensor or per output channel (row), codes the FP8 of x / scale, as torch 2.15 computes
//! `(x / scale).to(torch.float8_e4m3fn / float8_e5m2)` (NUMERICS.md §8, FORMATS-NOTES.md §5).
//!
//! scale = f32(amax / 448) for E4M3, f32(amax / 57344) for E5M2, amax = max |x| over the finite
//! values of the tensor or row (NaN and ±Inf are left out of the range, as NUMERICS.md §2 does
//! for every calibration; no reference defines amax for this idiom); amax = 0 gives scale 1.
//! code = the cast of f32(x / scale): round to nearest even; E4M3 saturates (±Inf too), E5M2
//! does not (torch's E5M2 cast sends overflow to ±Inf); NaN becomes S.1111111 as torch gives
//! it. The value is f32(code · scale).
//!
//! Parts: "codes" (u8, the tensor's shape) and "scales" (f32: shape `[]` per tensor, `[rows]` per
//! channel).

use rayon::prelude::*;

use super::mx::{CHUNK, f32_at, scaled_levels, torch_fp8_code};
use super::*;
use crate::float::FloatFormat;
use crate::tensor::fp8 as tables;

/// The element format and its largest finite value.
fn element(format: QuantFormat) -> (FloatFormat, f32) {
    match format {
        QuantFormat::Fp8_E5m2 | QuantFormat::Fp8_E5m2_Channel => (FloatFormat::FP8_E5M2, 57344.0),
        _ => (FloatFormat::FP8_E4M3, 448.0),
    }
}

fn per_channel(format: QuantFormat) -> bool {
    matches!(
        format,
        QuantFormat::Fp8_E4m3_Channel | QuantFormat::Fp8_E5m2_Channel
    )
}

/// max |x| over the finite values (0 when there are none).
fn finite_amax(values: &[f32]) -> f32 {
    values
        .iter()
        .map(|x| x.abs())
        .filter(|a| a.is_finite())
        .fold(0.0f32, f32::max)
}

/// The scale for a range of amax: f32(amax / max), or 1 when amax is 0.
pub fn scale_for(amax: f32, max: f32) -> f32 {
    if amax == 0.0 { 1.0 } else { amax / max }
}

/// The value table of the element format.
fn table(format: QuantFormat) -> &'static [f32; 256] {
    if element(format).0.id == crate::float::FormatId::Fp8E5m2 {
        &tables::E5M2
    } else {
        &tables::E4M3FN
    }
}

fn corrupt(format: QuantFormat, detail: &str) -> FormatError {
    FormatError::Corrupt {
        format,
        detail: detail.to_string(),
    }
}

/// The scaled-FP8 codec.
pub(crate) struct Fp8Codec;

impl Codec for Fp8Codec {
    fn prepare(
        &self,
        format: QuantFormat,
        values: &[f32],
        _geometry: Geometry,
        cancel: &Cancel,
    ) -> Result<TensorParams, FormatError> {
        if per_channel(format) {
            // Each chunk holds whole rows and computes their scales itself.
            return Ok(TensorParams::default());
        }
        let amax = values
            .par_chunks(CHUNK)
            .map(|chunk| cancel.check().map(|()| finite_amax(chunk)))
            .try_reduce(|| 0.0f32, |a, b| Ok(a.max(b)))?;
        Ok(TensorParams {
            scalars: vec![scale_for(amax, element(format).1)],
        })
    }

    fn chunk_elements(&self, format: QuantFormat, geometry: Geometry) -> usize {
        if per_channel(format) {
            // Whole rows, about CHUNK elements.
            (CHUNK / geometry.row_len).max(1) * geometry.row_len
        } else {
            CHUNK
        }
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
        let (fp8, max) = element(format);
        let code = |x: f32, scale: f32| torch_fp8_code(&fp8, x / scale, false);
        let (codes, scales): (Vec<u8>, Vec<f32>) = if per_channel(format) {
            let mut codes = Vec::with_capacity(values.len());
            let mut scales = Vec::with_capacity(values.len() / geometry.row_len);
            for row in values.chunks(geometry.row_len) {
                let scale = scale_for(finite_amax(row), max);
                scales.push(scale);
                codes.extend(row.iter().map(|&x| code(x, scale)));
            }
            (codes, scales)
        } else {
            let scale = params.scalars.first().copied().unwrap_or(f32::NAN);
            let codes = values.iter().map(|&x| code(x, scale)).collect();
            // The per-tensor scale is stored once, by the first chunk.
            (codes, if first == 0 { vec![scale] } else { Vec::new() })
        };
        vec![
            ("codes", PartDtype::U8, codes),
            (
                "scales",
                PartDtype::F32,
                scales.iter().flat_map(|s| s.to_le_bytes()).collect(),
            ),
        ]
    }

    fn decode_chunk(
        &self,
        format: QuantFormat,
        params: &TensorParams,
        geometry: Geometry,
        _first: usize,
        parts: &[&[u8]],
        out: &mut [f32],
    ) -> Result<(), FormatError> {
        let (Some(codes), Some(scales)) = (parts.first(), parts.get(1)) else {
            return Err(corrupt(format, "the codes or scales part is missing"));
        };
        if codes.len() != out.len() {
            return Err(corrupt(format, "too few codes"));
        }
        let values = table(format);
        let rows: Box<dyn Iterator<Item = (usize, &mut [f32])>> = if per_channel(format) {
            Box::new(out.chunks_mut(geometry.row_len).enumerate())
        } else {
            Box::new(std::iter::once((0, out)))
        };
        let mut at = 0;
        for (r, row) in rows {
            let scale = if per_channel(format) {
                f32_at(scales, r).ok_or_else(|| corrupt(format, "too few scales"))?
            } else {
                params.scalars.first().copied().unwrap_or(f32::NAN)
            };
            for o in row.iter_mut() {
                *o = values[usize::from(codes[at])] * scale;
                at += 1;
            }
        }
        Ok(())
    }

    fn params_from_parts(
        &self,
        format: QuantFormat,
        parts: &[Part],
    ) -> Result<TensorParams, FormatError> {
        if per_channel(format) {
            return Ok(TensorParams::default());
        }
        let scale = parts
            .iter()
            .find(|p| p.name == "scales")
            .and_then(|p| f32_at(&p.bytes, 0))
            .ok_or_else(|| corrupt(format, "the scales part is missing"))?;
        Ok(TensorParams {
            scalars: vec![scale],
        })
    }

    fn part_ranges(
        &self,
        format: QuantFormat,
        geometry: Geometry,
        first: usize,
        elements: usize,
    ) -> Vec<std::ops::Range<usize>> {
        let end = first + elements;
        let scales = if per_channel(format) {
            first / geometry.row_len * 4..end.div_ceil(geometry.row_len) * 4
        } else {
            // The per-tensor scale travels in the parameters.
            0..0
        };
        vec![first..end, scales]
    }

    fn part_shapes(&self, format: QuantFormat, shape: &[usize]) -> Vec<Vec<usize>> {
        let scales = if per_channel(format) {
            let numel: usize = shape.iter().product();
            let row = shape.last().copied().unwrap_or(1).max(1);
            vec![numel / row]
        } else {
            Vec::new()
        };
        vec![shape.to_vec(), scales]
    }

    fn block_detail(
        &self,
        format: QuantFormat,
        encoded: &Encoded,
        block: usize,
    ) -> Option<BlockDetail> {
        let numel: usize = encoded.shape.iter().product();
        let row = encoded.shape.last().copied().unwrap_or(1).max(1);
        let (first, len) = if per_channel(format) {
            (block.checked_mul(row)?, row)
        } else if block == 0 {
            (0, numel)
        } else {
            return None;
        };
        let codes = encoded.part("codes")?.bytes.get(first..first + len)?;
        let scale = f32_at(&encoded.part("scales")?.bytes, block)?;
        let values = table(format);
        let (fp8, _) = element(format);
        Some(BlockDetail {
            block,
            first,
            fields: vec![BlockField {
                name: "scale".into(),
                bits: 32,
                raw: u64::from(scale.to_bits()),
                encoding: "f32".into(),
                value: f64::from(scale),
            }],
            codes: codes.iter().map(|&c| i32::from(c)).collect(),
            values: codes
                .iter()
                .map(|&c| values[usize::from(c)] * scale)
                .collect(),
            element_scale: vec![scale; len],
            element_offset: vec![0.0; len],
            levels: scaled_levels(values.iter().copied(), scale),
            formula: format!("x̂ = {} code × scale", fp8.name),
        })
    }
}

/// Storage in bits per weight: 8-bit codes plus one f32 scale per tensor or per row.
pub fn bits_per_weight(format: QuantFormat, numel: usize, rows: usize) -> f64 {
    if numel == 0 {
        return 8.0;
    }
    let scales = if per_channel(format) { rows.max(1) } else { 1 };
    8.0 + 32.0 * scales as f64 / numel as f64
}

#[cfg(test)]
mod tests {
    use super::super::mx::fixture::{Fixture, check_against_fixture};
    use super::*;

    const ALL: [QuantFormat; 4] = [
        QuantFormat::Fp8_E4m3,
        QuantFormat::Fp8_E4m3_Channel,
        QuantFormat::Fp8_E5m2,
        QuantFormat::Fp8_E5m2_Channel,
    ];

    #[test]
    fn casts_follow_torch() {
        let e4 = FloatFormat::FP8_E4M3;
        let e5 = FloatFormat::FP8_E5M2;
        // E4M3 saturates (Inf too), E5M2 overflows to Inf; NaN keeps its sign, all mantissa ones.
        assert_eq!(torch_fp8_code(&e4, 500.0, false), 0x7E);
        assert_eq!(torch_fp8_code(&e4, f32::NEG_INFINITY, false), 0xFE);
        assert_eq!(torch_fp8_code(&e5, 61440.0, false), 0x7C);
        assert_eq!(torch_fp8_code(&e5, f32::NEG_INFINITY, false), 0xFC);
        assert_eq!(torch_fp8_code(&e5, f32::NAN, false), 0x7F);
        assert_eq!(torch_fp8_code(&e4, -f32::NAN, false), 0xFF);
        assert_eq!(scale_for(0.0, 448.0), 1.0);
        assert_eq!(scale_for(896.0, 448.0), 2.0);
    }

    #[test]
    fn bits_per_weight_counts_the_scales() {
        assert_eq!(bits_per_weight(QuantFormat::Fp8_E4m3, 1024, 4), 8.03125);
        assert_eq!(
            bits_per_weight(QuantFormat::Fp8_E5m2_Channel, 1024, 4),
            8.125
        );
    }

    #[test]
    fn matches_torch_byte_for_byte() {
        for case in ["mixed", "edges", "zeros", "fp8_ties"] {
            let fixture = Fixture::load(case);
            for format in ALL {
                check_against_fixture(&fixture, format);
            }
        }
    }
}
