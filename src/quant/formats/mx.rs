//! OCP Microscaling v1.0 (`mxfp8_e4m3 mxfp8_e5m2 mxfp6_e3m2 mxfp6_e2m3 mxfp4 mxint8`): blocks of
//! 32 along the last axis sharing one E8M0 scale, as torchao 0.18 `MXTensor.to_mx` (FLOOR) and
//! gfloat 0.5.2 compute them (NUMERICS.md §8, FORMATS-NOTES.md §2), plus the element-encoding
//! helpers the NVFP4 and scaled-FP8 families share with it.
//!
//! Per block: amax = max |x|; the shared exponent is floor(log2 amax) - emax_elem, read exactly
//! from amax's f32 exponent field (a subnormal or zero amax counts as 2^-127), clamped to
//! [-127, 127] and stored as the E8M0 code e + 127. Elements are x / 2^e (an exact f32 division)
//! rounded to nearest even in the element format and saturated to its largest finite value;
//! MXINT8 elements are clamp(RNE(64 · x / 2^e), -128, 127) as gfloat computes them. The value
//! of an element is f32(element · 2^e).
//!
//! Where NUMERICS.md departs from torchao:
//! - scale code 0 (amax < 2^(emax_elem - 126)) divides by the exact 2^-127, as gfloat does
//!   (torchao divides by 2^-126 there and so halves the elements);
//! - a block holding NaN *or* ±Inf stores scale 0xFF and decodes to NaN. Its elements are what
//!   torchao stores for a NaN block, x / 2^128 (its f32 scale for code 0xFF is +Inf): a finite
//!   x gives ±0, a NaN its own (quieted) NaN, an Inf the NaN that x86 computes for Inf / Inf
//!   (0xFFC00000). torchao itself stores code 255 - emax_elem for an Inf block.
//!
//! Stored layout (torchao's): "codes" then "scales" (u8, shape [..., cols / 32]). FP8 and
//! MXINT8 (two's complement) codes take one byte per element. FP6 codes are stored unpacked,
//! one per byte in the low six bits, exactly as torchao stores them; the bits per weight still
//! count 6 bits per element, the packed size (four codes in three bytes is the packing
//! `tensor::fp8::pack_fp6` writes for the safetensors F6 dtypes). FP4 codes are packed two per
//! byte, `byte[i] = e[2i] | e[2i + 1] << 4` (torchao's `pack_uint4`, PyTorch's
//! `float4_e2m1fn_x2`).

use super::*;
use crate::float::{FloatFormat, Overflow};
use crate::tensor::fp8 as tables;

/// Elements per MX block.
pub const BLOCK: usize = 32;

/// Elements per parallel chunk in the MX, NVFP4, NF4 and FP8 families: a multiple of every
/// block (16, 32, 64) and of NF4-DQ's 256 × 64 absmax groups, so chunks hold whole blocks.
pub(crate) const CHUNK: usize = 1 << 16;

/// What an MX element is.
#[derive(Debug, Clone, Copy)]
enum Element {
    /// A minifloat (FP8, FP6, FP4).
    Float(FloatFormat),
    /// MXINT8: a two's complement int8 with an implicit 2^-6.
    Int8,
}

/// One MX format: its element and the element's largest exponent.
#[derive(Debug, Clone, Copy)]
struct Spec {
    element: Element,
    /// emax_elem: floor(log2) of the element's largest value (8, 15, 4, 2, 2; 0 for MXINT8).
    emax: i32,
    /// Stored bits per element.
    bits: u32,
}

fn spec(format: QuantFormat) -> Spec {
    let float = |f: FloatFormat, emax| Spec {
        element: Element::Float(f),
        emax,
        bits: f.total_bits(),
    };
    match format {
        QuantFormat::Mxfp8_E4m3 => float(FloatFormat::FP8_E4M3, 8),
        QuantFormat::Mxfp8_E5m2 => float(FloatFormat::FP8_E5M2, 15),
        QuantFormat::Mxfp6_E3m2 => float(FloatFormat::FP6_E3M2, 4),
        QuantFormat::Mxfp6_E2m3 => float(FloatFormat::FP6_E2M3, 2),
        QuantFormat::Mxint8 => Spec {
            element: Element::Int8,
            emax: 0,
            bits: 8,
        },
        // Mxfp4, and (unreachable: the family dispatch) anything else.
        _ => float(FloatFormat::FP4_E2M1, 2),
    }
}

/// The x86 default NaN, what Inf / Inf gives (torchao's elements for an Inf in a NaN block).
const X86_DEFAULT_NAN_BITS: u32 = 0xFFC0_0000;

/// The E8M0 scale code of one block: 0xFF when it holds NaN or ±Inf, else
/// clamp(floor(log2 amax) - emax, -127, 127) + 127 with floor(log2) read from amax's exponent
/// field (so it is exact, and a zero or subnormal amax counts as 2^-127).
pub fn scale_code(block: &[f32], emax: i32) -> u8 {
    let mut amax_bits = 0u32;
    for x in block {
        let magnitude = x.to_bits() & 0x7FFF_FFFF;
        if magnitude >= 0x7F80_0000 {
            return 0xFF;
        }
        amax_bits = amax_bits.max(magnitude);
    }
    // The exponent field is at most 254 here: the cast to i32 is lossless.
    let floor_log2 = (amax_bits >> 23) as i32 - 127;
    let shared = (floor_log2 - emax).clamp(-127, 127);
    // 0..=254 after the clamp.
    (shared + 127) as u8
}

/// 1 / 2^(code - 127) = 2^(127 - code) for a finite scale code (0..=254). Multiplying by it
/// gives exactly the f32 that dividing by 2^(code - 127) gives (both round the same real
/// x · 2^(127 - code) once), and code 0 divides by the exact 2^-127.
fn reciprocal(code: u8) -> f32 {
    match code {
        // 2^-127, an f32 subnormal.
        254 => f32::from_bits(0x0040_0000),
        c => f32::from_bits(u32::from(254 - c.min(253)) << 23),
    }
}

/// The E8M0 scale's value (NaN for 0xFF): what the elements are multiplied by.
fn scale_value(code: u8) -> f32 {
    tables::e8m0_to_f32(code)
}

/// The FP8 code torch's `.to(float8_e4m3fn / float8_e5m2)` gives for `v` (torch 2.15, CPU):
/// RNE; E4M3 saturates to ±448 (and ±Inf to ±448); E5M2 saturates only when `saturate` (torchao
/// clamps before its MX cast; the plain cast sends overflow to Inf); NaN becomes S.1111111.
pub(crate) fn torch_fp8_code(format: &FloatFormat, v: f32, saturate: bool) -> u8 {
    let sign: u8 = if v.is_sign_negative() { 0x80 } else { 0 };
    if v.is_nan() {
        return sign | 0x7F;
    }
    let overflow = if saturate || format.id == crate::float::FormatId::Fp8E4m3 {
        Overflow::Saturate
    } else {
        Overflow::NonFinite
    };
    // An 8-bit format's code is below 256.
    format.encode_generic(v, overflow) as u8
}

/// The FP6/FP4 code torchao's `_f32_to_floatx_unpacked` gives for `v`: saturating RNE for
/// numbers (which `FloatFormat::encode_generic` computes), and for NaN, which that kernel does
/// not special-case, the bits its normal-number branch produces from the NaN's bit pattern.
pub(crate) fn torchao_floatx_code(format: &FloatFormat, v: f32) -> u8 {
    if !v.is_nan() {
        // At most 6 bits.
        return format.encode_generic(v, Overflow::Saturate) as u8;
    }
    let bits = v.to_bits();
    let sign = bits & 0x8000_0000;
    // Below 2^31 once the sign is cleared.
    let magnitude = (bits ^ sign) as i32;
    let mantissa_bits = format.mantissa_bits as i32;
    let bias = (1i32 << (format.exponent_bits - 1)) - 1;
    let shift = 23 - mantissa_bits;
    let magic = (1i32 << (shift - 1)) - 1;
    let odd = (magnitude >> shift) & 1;
    // As torchao: int32 arithmetic (no overflow: the exponent term is negative), then a cast
    // to uint8 that keeps the low byte.
    let normal = (magnitude + ((bias - 127) << 23) + magic + odd) >> shift;
    let code = normal as u8;
    let sign_code = if sign != 0 {
        1u8 << (format.exponent_bits + format.mantissa_bits)
    } else {
        0
    };
    code | sign_code
}

/// Packs 4-bit codes two per byte, the first in the low nibble (torchao's `pack_uint4`; a code
/// wider than 4 bits ORs into the high nibble exactly as there). An odd count pads with 0.
pub(crate) fn pack_low_first(codes: &[u8]) -> Vec<u8> {
    codes
        .chunks(2)
        .map(|pair| pair[0] | pair.get(1).copied().unwrap_or(0) << 4)
        .collect()
}

/// The 4-bit code `i` of codes packed by [`pack_low_first`].
pub(crate) fn nibble_low_first(bytes: &[u8], i: usize) -> Option<u8> {
    let byte = bytes.get(i / 2)?;
    Some(if i.is_multiple_of(2) {
        byte & 0x0F
    } else {
        byte >> 4
    })
}

/// Little-endian f32 number `i` of `bytes`.
pub(crate) fn f32_at(bytes: &[u8], i: usize) -> Option<f32> {
    let start = i.checked_mul(4)?;
    let b = bytes.get(start..start.checked_add(4)?)?;
    Some(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// max |x| as torch's `amax`/`max` compute it: NaN if any value is NaN.
pub(crate) fn amax_nan(values: &[f32]) -> f32 {
    let mut amax = 0.0f32;
    for &x in values {
        let a = x.abs();
        if a.is_nan() {
            return f32::NAN;
        }
        if a > amax {
            amax = a;
        }
    }
    amax
}

/// The larger of two magnitudes, NaN if either is (torch's max).
pub(crate) fn max_nan(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

/// Every finite value of `levels` times `scale` (f32), ascending, without repeats (±0 once).
pub(crate) fn scaled_levels(levels: impl Iterator<Item = f32>, scale: f32) -> Vec<f32> {
    let mut out: Vec<f32> = levels
        .map(|v| v * scale)
        .filter(|v| v.is_finite())
        .map(|v| if v == 0.0 { 0.0 } else { v })
        .collect();
    out.sort_by(f32::total_cmp);
    out.dedup();
    out
}

/// One element's code in a finite block: x / X (computed as x · (1 / X), the same f32) rounded
/// as the reference rounds it.
fn element_code(element: Element, x: f32, inverse_scale: f32) -> u8 {
    let v = x * inverse_scale;
    match element {
        Element::Float(f) if f.total_bits() == 8 => torch_fp8_code(&f, v, true),
        Element::Float(f) => torchao_floatx_code(&f, v),
        Element::Int8 => {
            // |v| < 2, so 64 · v is exact and within ±128; RNE then clamp, as gfloat.
            let q = (64.0 * v).round_ties_even().clamp(-128.0, 127.0);
            // In -128..=127 after the clamp: the cast to i8 is exact, the byte its two's complement.
            (q as i8) as u8
        }
    }
}

/// One element's code in a block holding NaN or Inf (scale 0xFF): torchao's x / +Inf.
fn nonfinite_block_code(element: Element, x: f32) -> u8 {
    let v = if x.is_nan() {
        f32::from_bits(x.to_bits() | 0x0040_0000)
    } else if x.is_infinite() {
        f32::from_bits(X86_DEFAULT_NAN_BITS)
    } else {
        // A finite x over +Inf is a zero of x's sign.
        f32::from_bits(x.to_bits() & 0x8000_0000)
    };
    match element {
        Element::Float(f) if f.total_bits() == 8 => torch_fp8_code(&f, v, true),
        Element::Float(f) => torchao_floatx_code(&f, v),
        // gfloat refuses such a block; the scale already makes it NaN.
        Element::Int8 => 0,
    }
}

/// The value of one stored element code (before the scale).
fn element_value(element: Element, code: u8) -> f32 {
    match element {
        Element::Float(f) => match f.id {
            crate::float::FormatId::Fp8E4m3 => tables::E4M3FN[usize::from(code)],
            crate::float::FormatId::Fp8E5m2 => tables::E5M2[usize::from(code)],
            crate::float::FormatId::Fp6E2m3 => tables::E2M3[usize::from(code & 0x3F)],
            crate::float::FormatId::Fp6E3m2 => tables::E3M2[usize::from(code & 0x3F)],
            _ => tables::E2M1[usize::from(code & 0x0F)],
        },
        // The byte is the int8's two's complement; q / 64 is exact.
        Element::Int8 => f32::from(code as i8) / 64.0,
    }
}

/// Encodes whole blocks: (element codes, one byte per element, and scale codes).
fn encode_blocks(spec: Spec, values: &[f32]) -> (Vec<u8>, Vec<u8>) {
    let mut codes = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(values.len() / BLOCK);
    for block in values.chunks(BLOCK) {
        let code = scale_code(block, spec.emax);
        scales.push(code);
        if code == 0xFF {
            codes.extend(block.iter().map(|&x| nonfinite_block_code(spec.element, x)));
        } else {
            let inverse_scale = reciprocal(code);
            codes.extend(
                block
                    .iter()
                    .map(|&x| element_code(spec.element, x, inverse_scale)),
            );
        }
    }
    (codes, scales)
}

/// The element code `i` of a chunk's stored codes (FP4 unpacked from its nibbles).
fn stored_code(format: QuantFormat, codes: &[u8], i: usize) -> Option<u8> {
    if format == QuantFormat::Mxfp4 {
        nibble_low_first(codes, i)
    } else {
        codes.get(i).copied()
    }
}

fn corrupt(format: QuantFormat, detail: &str) -> FormatError {
    FormatError::Corrupt {
        format,
        detail: detail.to_string(),
    }
}

/// The MX family's codec.
pub(crate) struct MxCodec;

impl Codec for MxCodec {
    fn prepare(
        &self,
        _format: QuantFormat,
        _values: &[f32],
        _geometry: Geometry,
        _cancel: &Cancel,
    ) -> Result<TensorParams, FormatError> {
        // Every block is independent.
        Ok(TensorParams::default())
    }

    fn chunk_elements(&self, _format: QuantFormat, _geometry: Geometry) -> usize {
        // Rows are multiples of 32 (checked before), so any multiple of 32 holds whole blocks.
        CHUNK
    }

    fn encode_chunk(
        &self,
        format: QuantFormat,
        _params: &TensorParams,
        _geometry: Geometry,
        _first: usize,
        values: &[f32],
        _imatrix: Option<&[f32]>,
    ) -> ChunkParts {
        let (codes, scales) = encode_blocks(spec(format), values);
        let codes = if format == QuantFormat::Mxfp4 {
            pack_low_first(&codes)
        } else {
            codes
        };
        vec![
            ("codes", PartDtype::U8, codes),
            ("scales", PartDtype::U8, scales),
        ]
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
        let (Some(codes), Some(scales)) = (parts.first(), parts.get(1)) else {
            return Err(corrupt(format, "the codes or scales part is missing"));
        };
        let element = spec(format).element;
        for (b, block) in out.chunks_mut(BLOCK).enumerate() {
            let scale = scale_value(
                *scales
                    .get(b)
                    .ok_or_else(|| corrupt(format, "too few scales"))?,
            );
            for (j, o) in block.iter_mut().enumerate() {
                let code = stored_code(format, codes, b * BLOCK + j)
                    .ok_or_else(|| corrupt(format, "too few codes"))?;
                *o = element_value(element, code) * scale;
            }
        }
        Ok(())
    }

    fn params_from_parts(
        &self,
        _format: QuantFormat,
        _parts: &[Part],
    ) -> Result<TensorParams, FormatError> {
        Ok(TensorParams::default())
    }

    fn part_ranges(
        &self,
        format: QuantFormat,
        _geometry: Geometry,
        first: usize,
        elements: usize,
    ) -> Vec<std::ops::Range<usize>> {
        let end = first + elements;
        let codes = if format == QuantFormat::Mxfp4 {
            first / 2..end.div_ceil(2)
        } else {
            first..end
        };
        vec![codes, first / BLOCK..end.div_ceil(BLOCK)]
    }

    fn part_shapes(&self, format: QuantFormat, shape: &[usize]) -> Vec<Vec<usize>> {
        let (last, lead) = match shape.split_last() {
            Some((&last, lead)) => (last, lead.to_vec()),
            None => (1, Vec::new()),
        };
        let with_last = |n: usize| {
            let mut s = lead.clone();
            s.push(n);
            s
        };
        let codes = if format == QuantFormat::Mxfp4 {
            with_last(last / 2)
        } else {
            with_last(last)
        };
        vec![codes, with_last(last / BLOCK)]
    }

    fn block_detail(
        &self,
        format: QuantFormat,
        encoded: &Encoded,
        block: usize,
    ) -> Option<BlockDetail> {
        let codes = encoded.part("codes")?;
        let scales = encoded.part("scales")?;
        let code = *scales.bytes.get(block)?;
        let first = block.checked_mul(BLOCK)?;
        let spec = spec(format);
        let scale = scale_value(code);
        let element_codes: Vec<u8> = (first..first + BLOCK)
            .map(|i| stored_code(format, &codes.bytes, i))
            .collect::<Option<_>>()?;
        let values: Vec<f32> = element_codes
            .iter()
            .map(|&c| element_value(spec.element, c) * scale)
            .collect();
        let shown_codes: Vec<i32> = element_codes
            .iter()
            .map(|&c| match spec.element {
                // The byte is the int8's two's complement.
                Element::Int8 => i32::from(c as i8),
                Element::Float(_) => i32::from(c),
            })
            .collect();
        let all_codes: Vec<u8> = match spec.element {
            // At most 256 codes: the range fits u8 after the cast.
            Element::Float(f) => (0..1u32 << f.total_bits()).map(|c| c as u8).collect(),
            Element::Int8 => (0..=255u8).collect(),
        };
        let levels = scaled_levels(
            all_codes.iter().map(|&c| element_value(spec.element, c)),
            scale,
        );
        let element_name = match spec.element {
            Element::Int8 => "q / 64".to_string(),
            Element::Float(f) => f.name.to_string(),
        };
        Some(BlockDetail {
            block,
            first,
            fields: vec![BlockField {
                name: "scale".into(),
                bits: 8,
                raw: u64::from(code),
                encoding: "E8M0".into(),
                value: f64::from(scale),
            }],
            codes: shown_codes,
            values,
            element_scale: vec![scale; BLOCK],
            element_offset: vec![0.0; BLOCK],
            levels,
            formula: format!(
                "x̂ = {element_name} element × 2^(E − 127); E = {code}{}",
                if code == 0xFF {
                    " is NaN: the block held NaN or Inf".to_string()
                } else {
                    format!(", so × 2^{}", i32::from(code) - 127)
                }
            ),
        })
    }
}

/// Storage in bits per weight: the element bits plus the 8-bit scale shared by 32 elements
/// (FP6 counted at 6 bits, its packed size).
pub fn bits_per_weight(format: QuantFormat) -> f64 {
    f64::from(spec(format).bits) + 8.0 / BLOCK as f64
}

/// Reference fixtures for the byte-for-byte tests of the MX, NVFP4, NF4 and FP8 families:
/// tests/fixtures/formats/*.safetensors, written by scripts/formats_reference_fixtures.py.
#[cfg(test)]
pub(crate) mod fixture {
    use super::*;
    use crate::cancel::Cancel;

    /// One fixture file, read whole.
    pub(crate) struct Fixture {
        /// The case name (the file stem).
        pub name: &'static str,
        bytes: Vec<u8>,
    }

    impl Fixture {
        /// Reads tests/fixtures/formats/<name>.safetensors.
        pub(crate) fn load(name: &'static str) -> Self {
            let path = format!(
                "{}/tests/fixtures/formats/{name}.safetensors",
                env!("CARGO_MANIFEST_DIR")
            );
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            Self { name, bytes }
        }

        /// The tensor `key`: its shape and raw bytes, if present.
        pub(crate) fn tensor(&self, key: &str) -> Option<(Vec<usize>, Vec<u8>)> {
            let st = safetensors::SafeTensors::deserialize(&self.bytes).expect("fixture parses");
            let view = st.tensor(key).ok()?;
            Some((view.shape().to_vec(), view.data().to_vec()))
        }

        /// The tensor `key` as f32 values.
        pub(crate) fn f32s(&self, key: &str) -> Option<Vec<f32>> {
            let (_, bytes) = self.tensor(key)?;
            Some(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            )
        }
    }

    /// Whether two f32 slices are equal bit for bit, NaNs compared by class.
    pub(crate) fn same_values(a: &[f32], b: &[f32]) -> Result<(), String> {
        if a.len() != b.len() {
            return Err(format!("{} values vs {}", a.len(), b.len()));
        }
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            if !(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())) {
                return Err(format!(
                    "value {i}: {x:e} ({:#010x}) vs {y:e} ({:#010x})",
                    x.to_bits(),
                    y.to_bits()
                ));
            }
        }
        Ok(())
    }

    /// Quantizes the fixture's input in `format` and compares every part and the dequantized
    /// values with the reference's bytes; then decodes the stored parts and compares again.
    pub(crate) fn check_against_fixture(fixture: &Fixture, format: QuantFormat) {
        let name = format.name();
        let Some((shape, _)) = fixture.tensor("input") else {
            panic!("{}: no input", fixture.name);
        };
        let input = fixture.f32s("input").expect("input");
        let result = quantize_format(
            format,
            &input,
            &shape,
            None,
            FormatOutputs {
                encoded: true,
                dequantized: true,
            },
            &Cancel::never(),
        )
        .unwrap_or_else(|e| panic!("{} {name}: {e}", fixture.name));
        let encoded = result.encoded.expect("encoded");
        let mut compared = 0;
        for part in &encoded.parts {
            let key = format!("{name}.{}", part.name);
            let (_, want) = fixture
                .tensor(&key)
                .unwrap_or_else(|| panic!("{}: fixture lacks {key}", fixture.name));
            if part.dtype == PartDtype::F32 {
                // Stored f32 scales: NaN compared by class (payloads differ between libraries).
                let as_f32 = |b: &[u8]| -> Vec<f32> {
                    b.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect()
                };
                if let Err(e) = same_values(&as_f32(&part.bytes), &as_f32(&want)) {
                    panic!("{} {key}: {e}", fixture.name);
                }
            } else if let Some(i) = part.bytes.iter().zip(&want).position(|(a, b)| a != b) {
                panic!(
                    "{} {key}: byte {i} is {:#04x}, the reference's {:#04x}",
                    fixture.name, part.bytes[i], want[i]
                );
            }
            assert_eq!(
                part.bytes.len(),
                want.len(),
                "{} {key} length",
                fixture.name
            );
            compared += 1;
        }
        assert!(
            compared >= 2,
            "{} {name}: only {compared} parts",
            fixture.name
        );
        let want = fixture
            .f32s(&format!("{name}.dequantized"))
            .expect("dequantized");
        let got = result.dequantized.expect("dequantized");
        if let Err(e) = same_values(&got, &want) {
            panic!("{} {name} dequantized: {e}", fixture.name);
        }
        let decoded = decode(&encoded, &Cancel::never()).expect("decodes");
        if let Err(e) = same_values(&decoded, &want) {
            panic!("{} {name} decoded: {e}", fixture.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::{Fixture, check_against_fixture};
    use super::*;

    const ALL: [QuantFormat; 6] = [
        QuantFormat::Mxfp8_E4m3,
        QuantFormat::Mxfp8_E5m2,
        QuantFormat::Mxfp6_E3m2,
        QuantFormat::Mxfp6_E2m3,
        QuantFormat::Mxfp4,
        QuantFormat::Mxint8,
    ];

    #[test]
    fn scale_codes_are_exact_floor_log2_minus_emax() {
        // amax 1.0 -> floor log2 0; E4M3 emax 8 -> e = -8 -> code 119.
        assert_eq!(scale_code(&[1.0, -0.5], 8), 119);
        // One ulp below 16 is floor log2 3, not 4 (log2f rounding would say 4).
        assert_eq!(scale_code(&[f32::from_bits(0x417F_FFFF)], 2), 128);
        assert_eq!(scale_code(&[16.0], 2), 129);
        // All zeros and subnormal amax: code 0; NaN or Inf: 0xFF.
        assert_eq!(scale_code(&[0.0, -0.0], 0), 0);
        assert_eq!(scale_code(&[f32::from_bits(1)], 2), 0);
        assert_eq!(scale_code(&[1.0, f32::NAN], 2), 0xFF);
        assert_eq!(scale_code(&[f32::NEG_INFINITY], 2), 0xFF);
        // f32::MAX: floor log2 127; MXINT8 (emax 0) clamps at 127 -> code 254.
        assert_eq!(scale_code(&[f32::MAX], 0), 254);
    }

    #[test]
    fn reciprocals_are_exact_powers_of_two() {
        for code in 0u8..=254 {
            let scale = scale_value(code);
            assert_eq!(reciprocal(code) * scale, 1.0, "code {code}");
            // Multiplying by the reciprocal is dividing by the scale, bit for bit.
            for x in [1.0f32, -3.7e-20, 6.1e30, f32::from_bits(0x0000_0003), 0.1] {
                assert_eq!((x * reciprocal(code)).to_bits(), (x / scale).to_bits());
            }
        }
    }

    #[test]
    fn mxfp4_ties_go_to_even_and_minus_zero_is_kept() {
        // amax 6 -> X = 2^(2 - 2) = 1. Ties 0.75 -> 1, 1.75 -> 2, 2.5 -> 2, 3.5 -> 4, 5 -> 4.
        let mut block = [0.0f32; 32];
        block[..7].copy_from_slice(&[6.0, 0.75, 1.75, 2.5, 3.5, 5.0, -0.1]);
        let (codes, scales) = encode_blocks(spec(QuantFormat::Mxfp4), &block);
        assert_eq!(scales, [127]);
        assert_eq!(codes[..7], [0x7, 0x2, 0x4, 0x4, 0x6, 0x6, 0x8]);
    }

    #[test]
    fn mxint8_uses_minus_128_and_rounds_half_even() {
        // amax 1.99 -> X = 1; 64x = -127.5 -> -128 (even), 127.5 -> 128 -> 127, 2.5 -> 2.
        let mut block = [0.0f32; 32];
        block[..4].copy_from_slice(&[-127.5 / 64.0, 127.5 / 64.0, 2.5 / 64.0, 1.99]);
        let (codes, scales) = encode_blocks(spec(QuantFormat::Mxint8), &block);
        assert_eq!(scales, [127]);
        assert_eq!(codes[..4], [0x80, 127, 2, 127]);
    }

    #[test]
    fn bits_per_weight_counts_the_shared_scale() {
        let bpw: Vec<f64> = ALL.iter().map(|&f| bits_per_weight(f)).collect();
        assert_eq!(bpw, [8.25, 8.25, 6.25, 6.25, 4.25, 8.25]);
    }

    #[test]
    fn torchao_nan_codes_follow_its_bit_arithmetic() {
        // torchao's f32_to_f6/f4 kernels on NaN (checked in scripts/formats_reference_fixtures.py
        // runs): +qNaN -> E2M3 0x0C, E3M2 0x0E, E2M1 0x3; -qNaN adds the sign bit.
        let nan = f32::from_bits(0x7FC0_0000);
        let neg = f32::from_bits(0xFFC0_0000);
        assert_eq!(torchao_floatx_code(&FloatFormat::FP6_E2M3, nan), 0x0C);
        assert_eq!(torchao_floatx_code(&FloatFormat::FP6_E2M3, neg), 0x2C);
        assert_eq!(torchao_floatx_code(&FloatFormat::FP6_E3M2, nan), 0x0E);
        assert_eq!(torchao_floatx_code(&FloatFormat::FP4_E2M1, nan), 0x3);
        assert_eq!(torchao_floatx_code(&FloatFormat::FP4_E2M1, neg), 0xB);
        assert_eq!(torch_fp8_code(&FloatFormat::FP8_E5M2, neg, true), 0xFF);
    }

    #[test]
    fn matches_torchao_and_gfloat_byte_for_byte() {
        for case in ["mixed", "edges", "zeros"] {
            let fixture = Fixture::load(case);
            for format in ALL {
                check_against_fixture(&fixture, format);
            }
        }
    }
}
