//! The GGUF family: ggml's block quantizers (`q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k
//! q6_k iq4_nl gguf_mxfp4 gguf_nvfp4`), bit for bit as ggml 0.20.2 `ggml_quantize_chunk`
//! computes them (the llama-quantize path), without and with an importance matrix, and the
//! type llama.cpp falls back to when a row does not fit a type's block.
//!
//! - [`common`](self): `nearest_int`, f16 rounding, the table searches, `make_*_quants`;
//! - `legacy`: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (blocks of 32);
//! - `kquants`: Q2_K … Q6_K (super-blocks of 256);
//! - `fp4`: IQ4_NL, MXFP4 (type 39), NVFP4 (type 40);
//! - `detail`: one block made readable, field by field.
//!
//! The stored tensor is one part, `"blocks"` ([`PartDtype::U8`]), holding exactly ggml's block
//! structs row after row, as a GGUF file stores the tensor; its logical shape is the tensor's
//! shape with the last axis `row_len` replaced by `[row_len / block_elements, block_bytes]`
//! (a `[768, 384]` tensor in Q4_K is `[768, 1, 144]`, in Q8_0 `[768, 12, 34]`). Decoding
//! reuses the GGUF loader's dequantizers (`tensor::gguf_blocks`, ggml's `dequantize_row_*`).

mod common;
mod detail;
mod fp4;
mod kquants;
mod legacy;

use super::*;
use crate::tensor::{DType, Packing, gguf_blocks};

/// Elements per independently encoded chunk, rounded to whole rows.
const CHUNK_TARGET: usize = 1 << 16;

/// The GGUF family's codec.
pub(crate) struct GgufCodec;

/// The GGUF block dtype a format stores (`None` for formats of other families).
pub fn dtype_of(format: QuantFormat) -> Option<DType> {
    Some(match format {
        QuantFormat::Q8_0 => DType::Q8_0,
        QuantFormat::Q4_0 => DType::Q4_0,
        QuantFormat::Q4_1 => DType::Q4_1,
        QuantFormat::Q5_0 => DType::Q5_0,
        QuantFormat::Q5_1 => DType::Q5_1,
        QuantFormat::Q2_K => DType::Q2K,
        QuantFormat::Q3_K => DType::Q3K,
        QuantFormat::Q4_K => DType::Q4K,
        QuantFormat::Q5_K => DType::Q5K,
        QuantFormat::Q6_K => DType::Q6K,
        QuantFormat::Iq4_Nl => DType::IQ4NL,
        QuantFormat::Gguf_Mxfp4 => DType::MXFP4,
        QuantFormat::Gguf_Nvfp4 => DType::NVFP4,
        _ => return None,
    })
}

/// (elements, bytes) per block of a GGUF format.
fn block_layout(format: QuantFormat) -> Option<(usize, usize)> {
    match dtype_of(format)?.packing() {
        Packing::Block { elements, bytes } => Some((elements, bytes)),
        Packing::Bits(_) => None,
    }
}

/// Elements per block of a GGUF type (32, 64 for `gguf_nvfp4`, 256 for the K-quants); 1 for
/// formats of other families.
pub fn block_elements(format: QuantFormat) -> usize {
    block_layout(format).map_or(1, |(elements, _)| elements)
}

/// Bytes per block of a GGUF type (ggml's `sizeof(block_*)`); 0 for other families.
pub fn block_bytes(format: QuantFormat) -> usize {
    block_layout(format).map_or(0, |(_, bytes)| bytes)
}

/// Bits per weight of a GGUF type: bytes per block × 8 / elements per block, every scale and
/// min counted (Q4_K: 144 · 8 / 256 = 4.5). NaN for formats of other families.
pub fn bits_per_weight(format: QuantFormat) -> f64 {
    dtype_of(format).map_or(f64::NAN, |d| d.bits_per_element())
}

/// The type llama.cpp's llama-quantize stores a tensor in when its row length `row` is not a
/// multiple of `format`'s block (`tensor_type_fallback` in `src/llama-quant.cpp`, the
/// version contemporary with ggml 0.20.2, which knows Q2_0): Q2_K and Q3_K → Q4_0, Q4_K →
/// Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, and F16 when the row is not a multiple of 32 either.
/// llama.cpp defines no fallback for the 32- and 64-element types (it stops with "no tensor
/// type fallback is defined"): `None`, as for rows that fit and for other families.
/// (Older llama.cpp sent Q2_K and Q3_K to IQ4_NL.)
pub fn fallback(format: QuantFormat, row: usize) -> Option<Fallback> {
    if row.is_multiple_of(block_elements(format)) || dtype_of(format).is_none() {
        return None;
    }
    let to = match format {
        QuantFormat::Q2_K | QuantFormat::Q3_K => QuantFormat::Q4_0,
        QuantFormat::Q4_K => QuantFormat::Q5_0,
        QuantFormat::Q5_K => QuantFormat::Q5_1,
        QuantFormat::Q6_K => QuantFormat::Q8_0,
        _ => return None,
    };
    Some(if row.is_multiple_of(block_elements(to)) {
        Fallback::Format(to)
    } else {
        Fallback::F16
    })
}

/// Quantizes one row (`x.len()` a multiple of the block) into `out` (exactly the row's
/// blocks), as `ggml_quantize_chunk` does; `qw` has one importance weight per column and is
/// ignored by Q8_0, MXFP4 and NVFP4, as in ggml.
fn quantize_row(format: QuantFormat, x: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
    match (format, qw) {
        (QuantFormat::Q8_0, _) => legacy::q8_0_row(x, out),
        (QuantFormat::Q4_0, None) => legacy::q4_0_row(x, out),
        (QuantFormat::Q4_0, Some(w)) => legacy::q4_0_row_imatrix(x, w, out),
        (QuantFormat::Q4_1, None) => legacy::q4_1_row(x, out),
        (QuantFormat::Q4_1, Some(w)) => legacy::q4_1_row_imatrix(x, w, out),
        (QuantFormat::Q5_0, None) => legacy::q5_0_row(x, out),
        (QuantFormat::Q5_0, Some(w)) => legacy::q5_0_row_imatrix(x, w, out),
        (QuantFormat::Q5_1, None) => legacy::q5_1_row(x, out),
        (QuantFormat::Q5_1, Some(w)) => legacy::q5_1_row_imatrix(x, w, out),
        (QuantFormat::Q2_K, w) => kquants::q2_k_row(x, w, out),
        (QuantFormat::Q3_K, w) => kquants::q3_k_row(x, w, out),
        (QuantFormat::Q4_K, w) => kquants::q4_k_row(x, w, out),
        (QuantFormat::Q5_K, w) => kquants::q5_k_row(x, w, out),
        (QuantFormat::Q6_K, w) => kquants::q6_k_row(x, w, out),
        (QuantFormat::Iq4_Nl, w) => fp4::iq4_nl_row(x, w, out),
        (QuantFormat::Gguf_Mxfp4, _) => fp4::mxfp4_row(x, out),
        (QuantFormat::Gguf_Nvfp4, _) => fp4::nvfp4_row(x, out),
        // Other families never reach the GGUF codec.
        _ => {}
    }
}

/// Quantizes whole rows of `row_len` values into ggml's block bytes (the `"blocks"` part),
/// single-threaded: the kernel the codec runs per chunk, exposed for benchmarks and for
/// comparing with ggml directly. `values.len()` must be a multiple of `row_len` and
/// `row_len` of the format's block; `imatrix`, if given, has `row_len` weights. Returns
/// `None` for formats of other families or lengths that do not fit.
pub fn quantize_rows(
    format: QuantFormat,
    values: &[f32],
    row_len: usize,
    imatrix: Option<&[f32]>,
) -> Option<Vec<u8>> {
    let (elements, bytes) = block_layout(format)?;
    if row_len == 0
        || !row_len.is_multiple_of(elements)
        || !values.len().is_multiple_of(row_len)
        || imatrix.is_some_and(|w| w.len() != row_len)
    {
        return None;
    }
    let row_bytes = row_len / elements * bytes;
    let mut out = vec![0u8; values.len() / row_len * row_bytes];
    for (x, y) in values
        .chunks_exact(row_len)
        .zip(out.chunks_exact_mut(row_bytes))
    {
        quantize_row(format, x, imatrix, y);
    }
    Some(out)
}

fn corrupt(format: QuantFormat, detail: impl Into<String>) -> FormatError {
    FormatError::Corrupt {
        format,
        detail: detail.into(),
    }
}

impl Codec for GgufCodec {
    fn prepare(
        &self,
        _format: QuantFormat,
        _values: &[f32],
        _geometry: Geometry,
        _cancel: &Cancel,
    ) -> Result<TensorParams, FormatError> {
        // Every GGUF block is independent: nothing tensor-wide.
        Ok(TensorParams::default())
    }

    fn chunk_elements(&self, _format: QuantFormat, geometry: Geometry) -> usize {
        // Whole rows: the imatrix types compute per-row statistics (σ² of the row).
        let row = geometry.row_len.max(1);
        (CHUNK_TARGET / row).max(1) * row
    }

    fn encode_chunk(
        &self,
        format: QuantFormat,
        _params: &TensorParams,
        geometry: Geometry,
        _first: usize,
        values: &[f32],
        imatrix: Option<&[f32]>,
    ) -> ChunkParts {
        let imatrix = if format.uses_imatrix() { imatrix } else { None };
        // quantize_format checked the shape and the imatrix length: this cannot miss.
        let bytes = quantize_rows(format, values, geometry.row_len, imatrix).unwrap_or_default();
        vec![("blocks", PartDtype::U8, bytes)]
    }

    fn decode_chunk(
        &self,
        format: QuantFormat,
        _params: &TensorParams,
        _geometry: Geometry,
        _first: usize,
        parts: &[&[u8]],
        out: &mut [f32],
    ) -> Result<(), FormatError> {
        let dtype = dtype_of(format).ok_or_else(|| corrupt(format, "not a GGUF type"))?;
        let bytes = parts
            .first()
            .ok_or_else(|| corrupt(format, "the blocks part is missing"))?;
        gguf_blocks::dequantize(dtype, bytes, out).map_err(|e| corrupt(format, e))
    }

    fn params_from_parts(
        &self,
        format: QuantFormat,
        parts: &[Part],
    ) -> Result<TensorParams, FormatError> {
        match parts {
            [p] if p.name == "blocks" && p.dtype == PartDtype::U8 => {
                let expected = p.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                if expected == Some(p.bytes.len()) && p.shape.last() == Some(&block_bytes(format)) {
                    Ok(TensorParams::default())
                } else {
                    Err(corrupt(
                        format,
                        format!(
                            "the blocks part holds {} bytes for shape {:?}",
                            p.bytes.len(),
                            p.shape
                        ),
                    ))
                }
            }
            _ => Err(corrupt(format, "expected exactly one U8 part named blocks")),
        }
    }

    fn part_ranges(
        &self,
        format: QuantFormat,
        _geometry: Geometry,
        first: usize,
        elements: usize,
    ) -> Vec<std::ops::Range<usize>> {
        let (per, bytes) = block_layout(format).unwrap_or((1, 0));
        // Chunks are whole rows and rows whole blocks, so both ends are block boundaries.
        let range = first / per * bytes..(first + elements) / per * bytes;
        vec![range]
    }

    fn part_shapes(&self, format: QuantFormat, shape: &[usize]) -> Vec<Vec<usize>> {
        let (per, bytes) = block_layout(format).unwrap_or((1, 0));
        let mut blocks_shape: Vec<usize> = shape.to_vec();
        let row = blocks_shape.pop().unwrap_or(1);
        blocks_shape.extend([row / per, bytes]);
        vec![blocks_shape]
    }

    fn block_detail(
        &self,
        format: QuantFormat,
        encoded: &Encoded,
        block: usize,
    ) -> Option<BlockDetail> {
        detail::block_detail(format, encoded, block)
    }
}

#[cfg(test)]
mod tests;
