//! Decoding stored bytes of any dtype to f32: whole tensors in parallel chunks, or one element.
//!
//! Conversions: floats exactly (F64 rounds to nearest f32), integers as their values (I32, U32,
//! I64 and U64 round to the nearest f32 above 2^24, a documented lossy cast), BOOL as 0 or 1,
//! FP8, FP6 and FP4 through lookup tables (FP6 unpacked from a little-endian bit stream, see
//! [`fp8::unpack_fp6`]), GGUF blocks as llama.cpp dequantizes them.

use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};
use rayon::prelude::*;

use super::dtype::{DType, Packing};
use super::{fp8, gguf_blocks};
use crate::cancel::Cancel;

/// Elements per parallel chunk: a multiple of every block size (32, 256) and of the elements
/// per byte group of the packed formats (2 for F4, 4 for F6), so chunks start on whole bytes
/// and whole blocks.
pub(crate) const CHUNK: usize = 1 << 16;

/// Why a decode stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeFailure {
    /// The cancel token fired.
    Cancelled,
    /// The dtype is valid but not decoded by this program.
    Unsupported(String),
    /// The bytes do not match the element count (a bug or a file changed under us).
    Corrupt(String),
}

/// Byte order and memory order of a stored tensor (numpy files may differ from the default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Multi-byte elements are stored big-endian.
    pub big_endian: bool,
    /// Elements are stored in Fortran (column-major) order; values are returned in C order.
    pub fortran_order: bool,
}

/// The byte range holding elements `start .. start + count`, if it starts and ends on whole
/// bytes (whole blocks for block formats).
pub(crate) fn byte_span(
    dtype: DType,
    start: usize,
    count: usize,
) -> Option<std::ops::Range<usize>> {
    let end = start.checked_add(count)?;
    match dtype.packing() {
        Packing::Bits(bits) => {
            let bits = usize::try_from(bits).ok()?;
            let (b0, b1) = (start.checked_mul(bits)?, end.checked_mul(bits)?);
            (b0.is_multiple_of(8) && b1.is_multiple_of(8)).then_some(b0 / 8..b1 / 8)
        }
        Packing::Block { elements, bytes } => (start.is_multiple_of(elements)
            && end.is_multiple_of(elements))
        .then(|| start / elements * bytes..end / elements * bytes),
    }
}

/// Decodes `out.len()` consecutive elements whose little-endian bytes are exactly `bytes`.
pub(crate) fn decode_slice(
    dtype: DType,
    bytes: &[u8],
    out: &mut [f32],
) -> Result<(), DecodeFailure> {
    let expected = byte_span(dtype, 0, out.len()).map(|r| r.end);
    if expected != Some(bytes.len()) {
        return Err(DecodeFailure::Corrupt(format!(
            "{dtype}: {} bytes for {} elements",
            bytes.len(),
            out.len()
        )));
    }
    match dtype {
        DType::F32 => map_le(bytes, out, f32::from_le_bytes),
        DType::F64 => map_le(bytes, out, |b: [u8; 8]| {
            // Rounds to nearest f32 (overflow to Inf), like numpy's astype(float32).
            f64::from_le_bytes(b) as f32
        }),
        DType::F16 => {
            let bits: Vec<u16> = bytes
                .as_chunks::<2>()
                .0
                .iter()
                .map(|b| u16::from_le_bytes(*b))
                .collect();
            let halves: &[f16] = half::slice::HalfBitsSliceExt::reinterpret_cast(bits.as_slice());
            halves.convert_to_f32_slice(out);
        }
        DType::BF16 => {
            let bits: Vec<u16> = bytes
                .as_chunks::<2>()
                .0
                .iter()
                .map(|b| u16::from_le_bytes(*b))
                .collect();
            let halves: &[bf16] = half::slice::HalfBitsSliceExt::reinterpret_cast(bits.as_slice());
            halves.convert_to_f32_slice(out);
        }
        DType::Bool => map_le(bytes, out, |[b]: [u8; 1]| if b != 0 { 1.0 } else { 0.0 }),
        DType::U8 => map_le(bytes, out, |[b]: [u8; 1]| f32::from(b)),
        DType::I8 => map_le(bytes, out, |b| f32::from(i8::from_le_bytes(b))),
        DType::I16 => map_le(bytes, out, |b| f32::from(i16::from_le_bytes(b))),
        DType::U16 => map_le(bytes, out, |b| f32::from(u16::from_le_bytes(b))),
        // Lossy above 2^24 by design: values round to the nearest f32.
        DType::I32 => map_le(bytes, out, |b| i32::from_le_bytes(b) as f32),
        DType::U32 => map_le(bytes, out, |b| u32::from_le_bytes(b) as f32),
        DType::I64 => map_le(bytes, out, |b| i64::from_le_bytes(b) as f32),
        DType::U64 => map_le(bytes, out, |b| u64::from_le_bytes(b) as f32),
        DType::F8E4M3 => {
            let table = &*fp8::E4M3FN;
            map_le(bytes, out, |[b]: [u8; 1]| table[usize::from(b)]);
        }
        DType::F8E5M2 => {
            let table = &*fp8::E5M2;
            map_le(bytes, out, |[b]: [u8; 1]| table[usize::from(b)]);
        }
        DType::F8E8M0 => map_le(bytes, out, |[b]: [u8; 1]| fp8::e8m0_to_f32(b)),
        DType::F4 => {
            let table = &*fp8::E2M1;
            // Two elements per byte, the first in the low nibble (PyTorch float4_e2m1fn_x2).
            for (pair, b) in out.as_chunks_mut::<2>().0.iter_mut().zip(bytes) {
                pair[0] = table[usize::from(b & 0x0F)];
                pair[1] = table[usize::from(b >> 4)];
            }
        }
        DType::F6E2M3 | DType::F6E3M2 => {
            let table = fp6_table(dtype);
            // Four elements per three bytes (byte_span checked the count is a multiple of 4).
            for (four, b) in out
                .as_chunks_mut::<4>()
                .0
                .iter_mut()
                .zip(bytes.as_chunks::<3>().0)
            {
                for (o, code) in four.iter_mut().zip(fp8::unpack_fp6(*b)) {
                    *o = table[usize::from(code)];
                }
            }
        }
        DType::Q8_0
        | DType::Q4_0
        | DType::Q4_1
        | DType::Q5_0
        | DType::Q5_1
        | DType::Q2K
        | DType::Q3K
        | DType::Q4K
        | DType::Q5K
        | DType::Q6K
        | DType::IQ4NL
        | DType::MXFP4
        | DType::NVFP4 => {
            gguf_blocks::dequantize(dtype, bytes, out).map_err(DecodeFailure::Corrupt)?
        }
        DType::Q8_1
        | DType::Q8K
        | DType::IQ2_XXS
        | DType::IQ2_XS
        | DType::IQ3_XXS
        | DType::IQ1_S
        | DType::IQ3_S
        | DType::IQ2_S
        | DType::IQ4_XS
        | DType::IQ1_M
        | DType::Q4_0_4_4
        | DType::Q4_0_4_8
        | DType::Q4_0_8_8
        | DType::TQ1_0
        | DType::TQ2_0
        | DType::IQ4_NL_4_4
        | DType::IQ4_NL_4_8
        | DType::IQ4_NL_8_8
        | DType::Q1_0
        | DType::Q2_0 => return Err(unsupported_block(dtype)),
    }
    Ok(())
}

/// The refusal for a GGUF block type quantscope lists but has no dequantizer for.
fn unsupported_block(dtype: DType) -> DecodeFailure {
    let id = super::ggml_type_id(dtype)
        .map(|id| format!(" (ggml type {id})"))
        .unwrap_or_default();
    DecodeFailure::Unsupported(format!(
        "{dtype}{id} blocks are not decoded by quantscope: the tensor is listed with its size, \
         but its values cannot be shown or quantized"
    ))
}

/// The 64-entry table of an FP6 dtype (E3M2 for anything but E2M3).
fn fp6_table(dtype: DType) -> &'static [f32; 64] {
    if dtype == DType::F6E2M3 {
        &fp8::E2M3
    } else {
        &fp8::E3M2
    }
}

/// Applies `f` to each `N`-byte element of `bytes`.
fn map_le<const N: usize>(bytes: &[u8], out: &mut [f32], f: impl Fn([u8; N]) -> f32) {
    for (o, b) in out.iter_mut().zip(bytes.as_chunks::<N>().0) {
        *o = f(*b);
    }
}

/// Reverses the bytes of every element (for big-endian numpy data), returning a copy.
pub(crate) fn swap_bytes(dtype: DType, bytes: &[u8]) -> Vec<u8> {
    let width = match dtype.packing() {
        Packing::Bits(bits) if bits >= 16 => usize::try_from(bits / 8).unwrap_or(1),
        _ => 1,
    };
    let mut swapped = bytes.to_vec();
    if width > 1 {
        for element in swapped.chunks_exact_mut(width) {
            element.reverse();
        }
    }
    swapped
}

/// Decodes a whole tensor of `numel` elements in parallel chunks of [`CHUNK`] elements,
/// checking `cancel` between chunks and reporting progress in elements.
#[cfg(test)]
pub(crate) fn decode_all(
    dtype: DType,
    bytes: &[u8],
    numel: usize,
    layout: &Layout,
    shape: &[usize],
    cancel: &Cancel,
) -> Result<Vec<f32>, DecodeFailure> {
    decode_all_releasing(dtype, bytes, numel, layout, shape, cancel, &|_| {})
}

/// As `decode_all`, calling `release` with each chunk's source bytes once they are decoded
/// (the model drops those pages of a memory map from the process, so decoding a file-backed
/// tensor holds only its f32 copy, not also the mapped file).
pub(crate) fn decode_all_releasing(
    dtype: DType,
    bytes: &[u8],
    numel: usize,
    layout: &Layout,
    shape: &[usize],
    cancel: &Cancel,
    release: &(dyn Fn(&[u8]) + Sync),
) -> Result<Vec<f32>, DecodeFailure> {
    // Refuse before allocating the output.
    if dtype.is_block() && !dtype.is_decodable() {
        return Err(unsupported_block(dtype));
    }
    let mut out = vec![0.0f32; numel];
    cancel.add_total(u64::try_from(numel).unwrap_or(u64::MAX));
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .try_for_each(|(i, chunk)| {
            cancel.check().map_err(|_| DecodeFailure::Cancelled)?;
            let span = byte_span(dtype, i * CHUNK, chunk.len()).ok_or_else(|| {
                DecodeFailure::Corrupt(format!("{dtype}: chunk {i} is not byte-aligned"))
            })?;
            let src = bytes.get(span).ok_or_else(|| {
                DecodeFailure::Corrupt(format!(
                    "{dtype}: {} bytes are too few for {numel} elements",
                    bytes.len()
                ))
            })?;
            if layout.big_endian {
                decode_slice(dtype, &swap_bytes(dtype, src), chunk)?;
            } else {
                decode_slice(dtype, src, chunk)?;
            }
            release(src);
            cancel.add_done(u64::try_from(chunk.len()).unwrap_or(0));
            Ok(())
        })?;
    if layout.fortran_order && shape.len() > 1 {
        out = fortran_to_c(&out, shape);
    }
    Ok(out)
}

/// Decodes a whole tensor in one sequential pass (the reference the parallel path must equal).
#[cfg(test)]
pub(crate) fn decode_all_sequential(
    dtype: DType,
    bytes: &[u8],
    numel: usize,
) -> Result<Vec<f32>, DecodeFailure> {
    let mut out = vec![0.0f32; numel];
    decode_slice(dtype, bytes, &mut out)?;
    Ok(out)
}

/// The C-order (row-major) copy of values stored in Fortran (column-major) order.
pub(crate) fn fortran_to_c(values: &[f32], shape: &[usize]) -> Vec<f32> {
    let mut f_strides = Vec::with_capacity(shape.len());
    let mut stride = 1usize;
    for &d in shape {
        f_strides.push(stride);
        stride = stride.saturating_mul(d);
    }
    let mut out = Vec::with_capacity(values.len());
    let mut index = vec![0usize; shape.len()];
    let mut offset = 0usize;
    for _ in 0..values.len() {
        out.push(values.get(offset).copied().unwrap_or(f32::NAN));
        // Advance the C-order multi-index (last axis fastest), tracking the Fortran offset.
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            offset += f_strides[axis];
            if index[axis] < shape[axis] {
                break;
            }
            offset -= f_strides[axis] * shape[axis];
            index[axis] = 0;
        }
    }
    out
}

/// The storage position (flat element index) of C-order element `flat` for a Fortran-order
/// array of this shape.
pub(crate) fn fortran_position(flat: u64, shape: &[usize]) -> u64 {
    let mut rest = flat;
    let mut position = 0u64;
    let mut f_strides = Vec::with_capacity(shape.len());
    let mut stride = 1u64;
    for &d in shape {
        f_strides.push(stride);
        stride = stride.saturating_mul(d as u64);
    }
    for (axis, &d) in shape.iter().enumerate().rev() {
        let d = (d as u64).max(1);
        position += (rest % d) * f_strides[axis];
        rest /= d;
    }
    position
}

/// Decodes element `flat` of a tensor whose stored bytes are `bytes`, without decoding the rest.
pub(crate) fn decode_one(
    dtype: DType,
    bytes: &[u8],
    flat: usize,
    layout: &Layout,
) -> Result<f32, DecodeFailure> {
    let too_short = || {
        DecodeFailure::Corrupt(format!(
            "{dtype}: element {flat} lies past the stored bytes"
        ))
    };
    match dtype.packing() {
        Packing::Bits(4) => {
            let byte = *bytes.get(flat / 2).ok_or_else(too_short)?;
            let code = if flat.is_multiple_of(2) {
                byte & 0x0F
            } else {
                byte >> 4
            };
            Ok(fp8::E2M1[usize::from(code)])
        }
        Packing::Bits(6) => {
            let group = flat / 4;
            let start = group.checked_mul(3).ok_or_else(too_short)?;
            let three = bytes
                .get(start..start + 3)
                .and_then(|b| <[u8; 3]>::try_from(b).ok())
                .ok_or_else(too_short)?;
            let code = fp8::unpack_fp6(three)[flat % 4];
            Ok(fp6_table(dtype)[usize::from(code)])
        }
        Packing::Bits(_) => {
            let span = byte_span(dtype, flat, 1).ok_or_else(too_short)?;
            let src = bytes.get(span).ok_or_else(too_short)?;
            let mut out = [0.0f32];
            if layout.big_endian {
                decode_slice(dtype, &swap_bytes(dtype, src), &mut out)?;
            } else {
                decode_slice(dtype, src, &mut out)?;
            }
            Ok(out[0])
        }
        Packing::Block { elements, .. } => {
            let block = flat / elements;
            let span = byte_span(dtype, block * elements, elements).ok_or_else(too_short)?;
            let src = bytes.get(span).ok_or_else(too_short)?;
            let mut out = vec![0.0f32; elements];
            decode_slice(dtype, src, &mut out)?;
            out.get(flat % elements).copied().ok_or_else(too_short)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_bools_decode_as_values() {
        let mut out = [0.0f32; 3];
        decode_slice(DType::I16, &[0xFF, 0xFF, 0x00, 0x80, 0x05, 0x00], &mut out).unwrap();
        assert_eq!(out, [-1.0, -32768.0, 5.0]);
        decode_slice(DType::Bool, &[0, 1, 7], &mut out).unwrap();
        assert_eq!(out, [0.0, 1.0, 1.0]);
        let mut one = [0.0f32];
        // 2^24 + 1 is not an f32: rounds to even, 2^24.
        decode_slice(DType::I64, &16_777_217i64.to_le_bytes(), &mut one).unwrap();
        assert_eq!(one[0], 16_777_216.0);
        decode_slice(DType::U64, &u64::MAX.to_le_bytes(), &mut one).unwrap();
        assert_eq!(one[0], 2f32.powi(64));
    }

    #[test]
    fn floats_decode_exactly() {
        let mut out = [0.0f32; 2];
        decode_slice(DType::F16, &[0x00, 0x3C, 0x00, 0xFC], &mut out).unwrap(); // 1.0, -Inf
        assert_eq!(out, [1.0, f32::NEG_INFINITY]);
        decode_slice(DType::BF16, &[0x80, 0x3F, 0xC0, 0x40], &mut out).unwrap(); // 1.0, 6.0
        assert_eq!(out, [1.0, 6.0]);
        let mut bytes = 0.1f64.to_le_bytes().to_vec();
        bytes.extend(1e300f64.to_le_bytes());
        decode_slice(DType::F64, &bytes, &mut out).unwrap();
        assert_eq!(out, [0.1f32, f32::INFINITY]);
        decode_slice(DType::F4, &[0x71], &mut out).unwrap(); // low nibble 1 = 0.5, high 7 = 6
        assert_eq!(out, [0.5, 6.0]);
        decode_slice(DType::F8E8M0, &[127, 0xFF], &mut out).unwrap();
        assert_eq!(out[0], 1.0);
        assert!(out[1].is_nan());
    }

    #[test]
    fn mx_element_dtypes_decode_with_their_packing() {
        // F6: codes 0x01 (E2M3 0.125), 0x02, 0x03, 0x3F (E2M3 -7.5) in one little-endian bit
        // stream: bytes 0x81 0x30 0xFC (see fp8::pack_fp6).
        let mut out = [0.0f32; 4];
        decode_slice(DType::F6E2M3, &[0x81, 0x30, 0xFC], &mut out).unwrap();
        assert_eq!(out, [0.125, 0.25, 0.375, -7.5]);
        // The same bytes as E3M2: 0x01 = 2^-2 · 1/4 = 0.0625, then 0.125, 0.1875, -28.
        decode_slice(DType::F6E3M2, &[0x81, 0x30, 0xFC], &mut out).unwrap();
        assert_eq!(out, [0.0625, 0.125, 0.1875, -28.0]);
        for (flat, want) in [(0, 0.0625), (1, 0.125), (2, 0.1875), (3, -28.0)] {
            let one = decode_one(DType::F6E3M2, &[0x81, 0x30, 0xFC], flat, &Layout::default());
            assert_eq!(one, Ok(want));
        }
        // F4: low nibble first, as torch.float4_e2m1fn_x2 and torchao's packed MXFP4 qdata.
        // 0xF9: low 9 = -0.5, high F = -6.
        decode_slice(DType::F4, &[0xF9, 0x08], &mut out).unwrap();
        assert_eq!(out[..3], [-0.5, -6.0, -0.0]);
        assert!(out[2].is_sign_negative());
        // F8_E8M0: 0 is 2^-127 (an f32 subnormal), 0xFE is 2^127.
        decode_slice(DType::F8E8M0, &[0x00, 0xFE], &mut out[..2]).unwrap();
        assert_eq!(out[..2], [f32::from_bits(0x0040_0000), 2f32.powi(127)]);
    }

    #[test]
    fn all_f16_and_bf16_patterns_match_half() {
        let bytes: Vec<u8> = (0..=u16::MAX).flat_map(u16::to_le_bytes).collect();
        for dtype in [DType::F16, DType::BF16] {
            let got = decode_all(
                dtype,
                &bytes,
                65536,
                &Layout::default(),
                &[65536],
                &Cancel::never(),
            )
            .unwrap();
            for (bits, v) in (0..=u16::MAX).zip(&got) {
                let want = if dtype == DType::F16 {
                    f16::from_bits(bits).to_f32()
                } else {
                    bf16::from_bits(bits).to_f32()
                };
                assert!(
                    want.to_bits() == v.to_bits() || (want.is_nan() && v.is_nan()),
                    "{dtype} {bits:#06x}"
                );
            }
        }
    }

    #[test]
    fn wrong_byte_counts_are_errors_not_panics() {
        let mut out = [0.0f32; 2];
        assert!(matches!(
            decode_slice(DType::F32, &[0; 7], &mut out),
            Err(DecodeFailure::Corrupt(_))
        ));
        assert!(matches!(
            decode_all(
                DType::F32,
                &[0; 4],
                2,
                &Layout::default(),
                &[2],
                &Cancel::never()
            ),
            Err(DecodeFailure::Corrupt(_))
        ));
        assert!(matches!(
            decode_one(DType::F32, &[0; 4], 1, &Layout::default()),
            Err(DecodeFailure::Corrupt(_))
        ));
        assert!(matches!(
            decode_one(DType::F6E2M3, &[0; 3], 4, &Layout::default()),
            Err(DecodeFailure::Corrupt(_))
        ));
        // Two F6 elements are 12 bits: not whole bytes.
        assert!(matches!(
            decode_slice(DType::F6E3M2, &[0; 2], &mut out),
            Err(DecodeFailure::Corrupt(_))
        ));
    }

    #[test]
    fn cancel_stops_the_decode() {
        let cancel = Cancel::new();
        cancel.cancel();
        let bytes = vec![0u8; 4 * 10];
        assert_eq!(
            decode_all(DType::F32, &bytes, 10, &Layout::default(), &[10], &cancel),
            Err(DecodeFailure::Cancelled)
        );
    }

    #[test]
    fn fortran_order_transposes() {
        // shape [2, 3]; Fortran storage lists column by column: a00 a10 a01 a11 a02 a12.
        let stored = [0.0, 10.0, 1.0, 11.0, 2.0, 12.0];
        assert_eq!(
            fortran_to_c(&stored, &[2, 3]),
            vec![0.0, 1.0, 2.0, 10.0, 11.0, 12.0]
        );
        for (flat, want) in [(0u64, 0u64), (1, 2), (2, 4), (3, 1), (4, 3), (5, 5)] {
            assert_eq!(fortran_position(flat, &[2, 3]), want);
        }
        // 3-d: shape [2, 2, 2], C element (i, j, k) sits at F offset i + 2j + 4k.
        let stored3: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let c = fortran_to_c(&stored3, &[2, 2, 2]);
        assert_eq!(c, vec![0.0, 4.0, 2.0, 6.0, 1.0, 5.0, 3.0, 7.0]);
    }

    #[test]
    fn big_endian_swaps_per_element() {
        let layout = Layout {
            big_endian: true,
            fortran_order: false,
        };
        let bytes = 1.5f32.to_be_bytes();
        assert_eq!(decode_one(DType::F32, &bytes, 0, &layout).unwrap(), 1.5);
        let all = decode_all(DType::F32, &bytes, 1, &layout, &[1], &Cancel::never()).unwrap();
        assert_eq!(all, vec![1.5]);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(24))]

            #[test]
            fn parallel_equals_sequential_and_single(
                seed in any::<u64>(),
                dtype_index in 0usize..DType::ALL.len(),
                blocks in 1usize..600,
            ) {
                let dtype = DType::ALL[dtype_index];
                prop_assume!(dtype.is_decodable());
                // Enough elements to span several chunks for small blocks.
                let numel = match dtype.packing() {
                    Packing::Block { elements, .. } => blocks * elements,
                    // A multiple of 4 so F6 ends on a whole byte, +4 so a chunk is partial.
                    Packing::Bits(_) => blocks * 256 + 4,
                };
                let len = byte_span(dtype, 0, numel).unwrap().end;
                let mut state = seed | 1;
                let bytes: Vec<u8> = (0..len).map(|_| {
                    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                    (state >> 24) as u8
                }).collect();
                let par = decode_all(dtype, &bytes, numel, &Layout::default(), &[numel], &Cancel::never()).unwrap();
                let seq = decode_all_sequential(dtype, &bytes, numel).unwrap();
                prop_assert_eq!(par.len(), seq.len());
                for (a, b) in par.iter().zip(&seq) {
                    prop_assert!(a.to_bits() == b.to_bits());
                }
                for flat in [0, numel / 3, numel - 1] {
                    let one = decode_one(dtype, &bytes, flat, &Layout::default()).unwrap();
                    prop_assert_eq!(one.to_bits(), seq[flat].to_bits());
                }
            }
        }
    }
}
