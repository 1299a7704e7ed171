//! PLACEHOLDER: the gguf family's quantizer + decoder (being written; replaced before merging).

use super::*;

/// The gguf family's codec.
pub(crate) struct GgufCodec;

impl Codec for GgufCodec {
    fn prepare(
        &self,
        _f: QuantFormat,
        _v: &[f32],
        _g: Geometry,
        _c: &Cancel,
    ) -> Result<TensorParams, FormatError> {
        Ok(TensorParams::default())
    }
    fn chunk_elements(&self, _f: QuantFormat, g: Geometry) -> usize {
        g.row_len
    }
    fn encode_chunk(
        &self,
        _f: QuantFormat,
        _p: &TensorParams,
        _g: Geometry,
        _first: usize,
        _v: &[f32],
        _w: Option<&[f32]>,
    ) -> ChunkParts {
        Vec::new()
    }
    fn decode_chunk(
        &self,
        format: QuantFormat,
        _p: &TensorParams,
        _g: Geometry,
        _first: usize,
        _parts: &[&[u8]],
        _out: &mut [f32],
    ) -> Result<(), FormatError> {
        Err(FormatError::Corrupt {
            format,
            detail: "not implemented yet".into(),
        })
    }
    fn params_from_parts(
        &self,
        _f: QuantFormat,
        _parts: &[Part],
    ) -> Result<TensorParams, FormatError> {
        Ok(TensorParams::default())
    }
    fn part_ranges(
        &self,
        _f: QuantFormat,
        _g: Geometry,
        _first: usize,
        _n: usize,
    ) -> Vec<std::ops::Range<usize>> {
        Vec::new()
    }
    fn part_shapes(&self, _f: QuantFormat, _shape: &[usize]) -> Vec<Vec<usize>> {
        Vec::new()
    }
    fn block_detail(&self, _f: QuantFormat, _e: &Encoded, _b: usize) -> Option<BlockDetail> {
        None
    }
}

/// PLACEHOLDER: llama.cpp's fallback type for a row length its block does not divide.
pub fn fallback(_format: QuantFormat, _row: usize) -> Option<QuantFormat> {
    None
}

/// PLACEHOLDER: bits per weight of a GGUF type (bytes per block × 8 / elements per block).
pub fn bits_per_weight(_format: QuantFormat) -> f64 {
    f64::NAN
}

/// PLACEHOLDER: elements per block of a GGUF type.
pub fn block_elements(_format: QuantFormat) -> usize {
    32
}
