//! Element types of stored tensors: safetensors dtypes, numpy scalars and GGUF block formats.

use std::fmt;

/// The element type of a stored tensor, as written in the file.
///
/// Scalar types hold one value per element; the GGUF block formats (`Q8_0` … `Q2_0`) hold a
/// fixed number of elements per block together with the block's scale(s). Every ggml type a
/// GGUF file may hold has a variant, so such a file always opens and lists with correct byte
/// sizes; [`DType::is_decodable`] says which ones quantscope can turn into f32.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// Boolean, one byte per element (0 is false, anything else true).
    Bool,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Unsigned 16-bit integer.
    U16,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned 32-bit integer.
    U32,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 64-bit integer.
    U64,
    /// IEEE binary16.
    F16,
    /// bfloat16 (the top half of an f32).
    BF16,
    /// IEEE binary32.
    F32,
    /// IEEE binary64.
    F64,
    /// FP8 E4M3FN: bias 7, no infinities, only S.1111.111 is NaN, max 448.
    F8E4M3,
    /// FP8 E5M2: bias 15, IEEE-like infinities and NaNs.
    F8E5M2,
    /// OCP MX scale: 8 exponent bits, value 2^(e - 127), 0xFF is NaN.
    F8E8M0,
    /// OCP MX FP6 E2M3 (packed, 6 bits per element: four elements in three bytes, a
    /// little-endian bit stream, element 0 in the low 6 bits of byte 0).
    F6E2M3,
    /// OCP MX FP6 E3M2 (packed as F6E2M3).
    F6E3M2,
    /// OCP MX FP4 E2M1 (two elements per byte, first element in the low nibble).
    F4,
    /// GGUF Q8_0: blocks of 32 int8 codes with one f16 scale.
    Q8_0,
    /// GGUF Q4_0: blocks of 32 4-bit codes with one f16 scale (offset 8).
    Q4_0,
    /// GGUF Q4_1: blocks of 32 4-bit codes with an f16 scale and an f16 minimum.
    Q4_1,
    /// GGUF Q5_0: blocks of 32 5-bit codes with one f16 scale (offset 16).
    Q5_0,
    /// GGUF Q5_1: blocks of 32 5-bit codes with an f16 scale and an f16 minimum.
    Q5_1,
    /// GGUF Q2_K: super-blocks of 256 2-bit codes, 16 sub-blocks with 4-bit scales and minimums.
    Q2K,
    /// GGUF Q3_K: super-blocks of 256 3-bit codes, 16 sub-blocks with 6-bit signed scales.
    Q3K,
    /// GGUF Q4_K: super-blocks of 256 4-bit codes, 8 sub-blocks with 6-bit scales and minimums.
    Q4K,
    /// GGUF Q5_K: super-blocks of 256 5-bit codes, 8 sub-blocks with 6-bit scales and minimums.
    Q5K,
    /// GGUF Q6_K: super-blocks of 256 6-bit codes, 16 sub-blocks with int8 scales.
    Q6K,
    /// GGUF Q8_1: blocks of 32 int8 codes with an f16 scale and an f16 sum (llama.cpp's activation format). Listed, not decoded.
    Q8_1,
    /// GGUF Q8_K: super-blocks of 256 int8 codes with an f32 scale and 16 int16 partial sums. Listed, not decoded.
    Q8K,
    /// GGUF IQ2_XXS: 2.06-bit importance quantization (E8 lattice codebook). Listed, not decoded.
    IQ2_XXS,
    /// GGUF IQ2_XS: 2.31-bit importance quantization. Listed, not decoded.
    IQ2_XS,
    /// GGUF IQ3_XXS: 3.06-bit importance quantization. Listed, not decoded.
    IQ3_XXS,
    /// GGUF IQ1_S: 1.56-bit importance quantization. Listed, not decoded.
    IQ1_S,
    /// GGUF IQ4_NL (ggml type 20): blocks of 32 4-bit indices into a fixed non-linear table of
    /// 16 int8 levels, with one f16 scale.
    IQ4NL,
    /// GGUF IQ3_S: 3.44-bit importance quantization. Listed, not decoded.
    IQ3_S,
    /// GGUF IQ2_S: 2.5-bit importance quantization. Listed, not decoded.
    IQ2_S,
    /// GGUF IQ4_XS: 4.25-bit non-linear codebook super-blocks. Listed, not decoded.
    IQ4_XS,
    /// GGUF IQ1_M: 1.75-bit importance quantization. Listed, not decoded.
    IQ1_M,
    /// GGUF Q4_0_4_4 (type 31, since removed from ggml): Q4_0 blocks interleaved 4 rows by 4 bytes. Listed, not decoded.
    Q4_0_4_4,
    /// GGUF Q4_0_4_8 (type 32, since removed from ggml): Q4_0 blocks interleaved 4 rows by 8 bytes. Listed, not decoded.
    Q4_0_4_8,
    /// GGUF Q4_0_8_8 (type 33, since removed from ggml): Q4_0 blocks interleaved 8 rows by 8 bytes. Listed, not decoded.
    Q4_0_8_8,
    /// GGUF TQ1_0: ternary weights, 1.69 bits each. Listed, not decoded.
    TQ1_0,
    /// GGUF TQ2_0: ternary weights, 2.06 bits each. Listed, not decoded.
    TQ2_0,
    /// GGUF IQ4_NL_4_4 (type 36, since removed from ggml): IQ4_NL blocks interleaved 4 by 4. Listed, not decoded.
    IQ4_NL_4_4,
    /// GGUF IQ4_NL_4_8 (type 37, since removed from ggml): IQ4_NL blocks interleaved 4 by 8. Listed, not decoded.
    IQ4_NL_4_8,
    /// GGUF IQ4_NL_8_8 (type 38, since removed from ggml): IQ4_NL blocks interleaved 8 by 8. Listed, not decoded.
    IQ4_NL_8_8,
    /// ggml's MXFP4 (GGUF type 39): blocks of 32 E2M1 codes with one E8M0 scale byte.
    MXFP4,
    /// ggml's NVFP4 (GGUF type 40): blocks of 64 E2M1 codes in 4 sub-blocks of 16, each with a
    /// UE4M3 scale byte (no per-tensor scale).
    NVFP4,
    /// GGUF Q1_0: blocks of 128 one-bit codes with one f16 scale. Listed, not decoded.
    Q1_0,
    /// GGUF Q2_0: blocks of 64 two-bit codes with one f16 scale. Listed, not decoded.
    Q2_0,
}

/// How a dtype lays out its elements in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// Elements of `bits` bits each, packed back to back (8, 16, 32, 64, or 4 and 6 for the
    /// packed MX formats).
    Bits(u32),
    /// Blocks of `elements` elements stored in `bytes` bytes each.
    Block {
        /// Elements per block.
        elements: usize,
        /// Bytes per block.
        bytes: usize,
    },
}

impl DType {
    /// Every dtype, in declaration order (handy for tests and menus).
    pub const ALL: [DType; 52] = [
        DType::Bool,
        DType::U8,
        DType::I8,
        DType::I16,
        DType::U16,
        DType::I32,
        DType::U32,
        DType::I64,
        DType::U64,
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
        DType::F8E4M3,
        DType::F8E5M2,
        DType::F8E8M0,
        DType::F6E2M3,
        DType::F6E3M2,
        DType::F4,
        DType::Q8_0,
        DType::Q4_0,
        DType::Q4_1,
        DType::Q5_0,
        DType::Q5_1,
        DType::Q2K,
        DType::Q3K,
        DType::Q4K,
        DType::Q5K,
        DType::Q6K,
        DType::Q8_1,
        DType::Q8K,
        DType::IQ2_XXS,
        DType::IQ2_XS,
        DType::IQ3_XXS,
        DType::IQ1_S,
        DType::IQ4NL,
        DType::IQ3_S,
        DType::IQ2_S,
        DType::IQ4_XS,
        DType::IQ1_M,
        DType::Q4_0_4_4,
        DType::Q4_0_4_8,
        DType::Q4_0_8_8,
        DType::TQ1_0,
        DType::TQ2_0,
        DType::IQ4_NL_4_4,
        DType::IQ4_NL_4_8,
        DType::IQ4_NL_8_8,
        DType::MXFP4,
        DType::NVFP4,
        DType::Q1_0,
        DType::Q2_0,
    ];

    /// The name as the file formats spell it: safetensors names (`"F8_E4M3"`, `"BF16"`) and
    /// GGUF names (`"Q4_K"`).
    pub fn name(&self) -> &'static str {
        match self {
            DType::Bool => "BOOL",
            DType::U8 => "U8",
            DType::I8 => "I8",
            DType::I16 => "I16",
            DType::U16 => "U16",
            DType::I32 => "I32",
            DType::U32 => "U32",
            DType::I64 => "I64",
            DType::U64 => "U64",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::F32 => "F32",
            DType::F64 => "F64",
            DType::F8E4M3 => "F8_E4M3",
            DType::F8E5M2 => "F8_E5M2",
            DType::F8E8M0 => "F8_E8M0",
            DType::F6E2M3 => "F6_E2M3",
            DType::F6E3M2 => "F6_E3M2",
            DType::F4 => "F4",
            DType::Q8_0 => "Q8_0",
            DType::Q4_0 => "Q4_0",
            DType::Q4_1 => "Q4_1",
            DType::Q5_0 => "Q5_0",
            DType::Q5_1 => "Q5_1",
            DType::Q2K => "Q2_K",
            DType::Q3K => "Q3_K",
            DType::Q4K => "Q4_K",
            DType::Q5K => "Q5_K",
            DType::Q6K => "Q6_K",
            DType::Q8_1 => "Q8_1",
            DType::Q8K => "Q8_K",
            DType::IQ2_XXS => "IQ2_XXS",
            DType::IQ2_XS => "IQ2_XS",
            DType::IQ3_XXS => "IQ3_XXS",
            DType::IQ1_S => "IQ1_S",
            DType::IQ4NL => "IQ4_NL",
            DType::IQ3_S => "IQ3_S",
            DType::IQ2_S => "IQ2_S",
            DType::IQ4_XS => "IQ4_XS",
            DType::IQ1_M => "IQ1_M",
            DType::Q4_0_4_4 => "Q4_0_4_4",
            DType::Q4_0_4_8 => "Q4_0_4_8",
            DType::Q4_0_8_8 => "Q4_0_8_8",
            DType::TQ1_0 => "TQ1_0",
            DType::TQ2_0 => "TQ2_0",
            DType::IQ4_NL_4_4 => "IQ4_NL_4_4",
            DType::IQ4_NL_4_8 => "IQ4_NL_4_8",
            DType::IQ4_NL_8_8 => "IQ4_NL_8_8",
            DType::MXFP4 => "MXFP4",
            DType::NVFP4 => "NVFP4",
            DType::Q1_0 => "Q1_0",
            DType::Q2_0 => "Q2_0",
        }
    }

    /// The dtype with this name (the spelling of [`DType::name`]).
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// True for floating-point and GGUF block formats: the tensors `quantize` works on by
    /// default. False for integers, booleans and the E8M0 scale format (which holds scales,
    /// not weights).
    pub fn is_float(&self) -> bool {
        match self {
            DType::Bool
            | DType::U8
            | DType::I8
            | DType::I16
            | DType::U16
            | DType::I32
            | DType::U32
            | DType::I64
            | DType::U64
            | DType::F8E8M0 => false,
            DType::F16
            | DType::BF16
            | DType::F32
            | DType::F64
            | DType::F8E4M3
            | DType::F8E5M2
            | DType::F6E2M3
            | DType::F6E3M2
            | DType::F4
            | DType::Q8_0
            | DType::Q4_0
            | DType::Q4_1
            | DType::Q5_0
            | DType::Q5_1
            | DType::Q2K
            | DType::Q3K
            | DType::Q4K
            | DType::Q5K
            | DType::Q6K
            | DType::Q8_1
            | DType::Q8K
            | DType::IQ2_XXS
            | DType::IQ2_XS
            | DType::IQ3_XXS
            | DType::IQ1_S
            | DType::IQ4NL
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
            | DType::MXFP4
            | DType::NVFP4
            | DType::Q1_0
            | DType::Q2_0 => true,
        }
    }

    /// True when quantscope decodes this type to f32. False for the GGUF block types it has no
    /// dequantizer for (IQ* but IQ4_NL, TQ*, Q8_1, Q8_K, Q1_0, Q2_0 and the removed interleaved
    /// Q4_0/IQ4_NL types): tensors of those types are listed with their sizes, and
    /// decoding one gives [`LoadError::Unsupported`] naming the type.
    ///
    /// [`LoadError::Unsupported`]: super::LoadError::Unsupported
    pub fn is_decodable(&self) -> bool {
        match self {
            DType::Bool
            | DType::U8
            | DType::I8
            | DType::I16
            | DType::U16
            | DType::I32
            | DType::U32
            | DType::I64
            | DType::U64
            | DType::F16
            | DType::BF16
            | DType::F32
            | DType::F64
            | DType::F8E4M3
            | DType::F8E5M2
            | DType::F8E8M0
            | DType::F4
            | DType::F6E2M3
            | DType::F6E3M2
            | DType::Q8_0
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
            | DType::NVFP4 => true,
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
            | DType::Q2_0 => false,
        }
    }

    /// True for the GGUF block formats.
    pub fn is_block(&self) -> bool {
        matches!(self.packing(), Packing::Block { .. })
    }

    /// How elements are laid out in bytes.
    pub fn packing(&self) -> Packing {
        match self {
            DType::Bool | DType::U8 | DType::I8 => Packing::Bits(8),
            DType::F8E4M3 | DType::F8E5M2 | DType::F8E8M0 => Packing::Bits(8),
            DType::I16 | DType::U16 | DType::F16 | DType::BF16 => Packing::Bits(16),
            DType::I32 | DType::U32 | DType::F32 => Packing::Bits(32),
            DType::I64 | DType::U64 | DType::F64 => Packing::Bits(64),
            DType::F6E2M3 | DType::F6E3M2 => Packing::Bits(6),
            DType::F4 => Packing::Bits(4),
            // Layouts from llama.cpp ggml/src/ggml-common.h.
            DType::Q8_0 => Packing::Block {
                elements: 32,
                bytes: 34,
            },
            DType::Q4_0 => Packing::Block {
                elements: 32,
                bytes: 18,
            },
            DType::Q4_1 => Packing::Block {
                elements: 32,
                bytes: 20,
            },
            DType::Q5_0 => Packing::Block {
                elements: 32,
                bytes: 22,
            },
            DType::Q5_1 => Packing::Block {
                elements: 32,
                bytes: 24,
            },
            DType::Q2K => Packing::Block {
                elements: 256,
                bytes: 84,
            },
            DType::Q3K => Packing::Block {
                elements: 256,
                bytes: 110,
            },
            DType::Q4K => Packing::Block {
                elements: 256,
                bytes: 144,
            },
            DType::Q5K => Packing::Block {
                elements: 256,
                bytes: 176,
            },
            DType::Q6K => Packing::Block {
                elements: 256,
                bytes: 210,
            },
            // Sizes from ggml_blck_size / ggml_type_size of the ggml library (libggml 0.20.2, see
            // scripts/ggml_type_sizes.py); the removed interleaved types kept Q4_0's and IQ4_NL's.
            DType::Q8_1 => Packing::Block {
                elements: 32,
                bytes: 36,
            },
            DType::Q8K => Packing::Block {
                elements: 256,
                bytes: 292,
            },
            DType::IQ2_XXS => Packing::Block {
                elements: 256,
                bytes: 66,
            },
            DType::IQ2_XS => Packing::Block {
                elements: 256,
                bytes: 74,
            },
            DType::IQ3_XXS => Packing::Block {
                elements: 256,
                bytes: 98,
            },
            DType::IQ1_S => Packing::Block {
                elements: 256,
                bytes: 50,
            },
            DType::IQ4NL => Packing::Block {
                elements: 32,
                bytes: 18,
            },
            DType::IQ3_S => Packing::Block {
                elements: 256,
                bytes: 110,
            },
            DType::IQ2_S => Packing::Block {
                elements: 256,
                bytes: 82,
            },
            DType::IQ4_XS => Packing::Block {
                elements: 256,
                bytes: 136,
            },
            DType::IQ1_M => Packing::Block {
                elements: 256,
                bytes: 56,
            },
            DType::Q4_0_4_4 => Packing::Block {
                elements: 32,
                bytes: 18,
            },
            DType::Q4_0_4_8 => Packing::Block {
                elements: 32,
                bytes: 18,
            },
            DType::Q4_0_8_8 => Packing::Block {
                elements: 32,
                bytes: 18,
            },
            DType::TQ1_0 => Packing::Block {
                elements: 256,
                bytes: 54,
            },
            DType::TQ2_0 => Packing::Block {
                elements: 256,
                bytes: 66,
            },
            DType::IQ4_NL_4_4 => Packing::Block {
                elements: 32,
                bytes: 18,
            },
            DType::IQ4_NL_4_8 => Packing::Block {
                elements: 32,
                bytes: 18,
            },
            DType::IQ4_NL_8_8 => Packing::Block {
                elements: 32,
                bytes: 18,
            },
            DType::MXFP4 => Packing::Block {
                elements: 32,
                bytes: 17,
            },
            DType::NVFP4 => Packing::Block {
                elements: 64,
                bytes: 36,
            },
            DType::Q1_0 => Packing::Block {
                elements: 128,
                bytes: 18,
            },
            DType::Q2_0 => Packing::Block {
                elements: 64,
                bytes: 18,
            },
        }
    }

    /// Storage bits per element; for block formats the effective figure including the block
    /// scales (Q4_K: 144 * 8 / 256 = 4.5).
    pub fn bits_per_element(&self) -> f64 {
        match self.packing() {
            Packing::Bits(bits) => f64::from(bits),
            // Block sizes are small constants, exact in f64.
            Packing::Block { elements, bytes } => (bytes * 8) as f64 / elements as f64,
        }
    }

    /// The number of bytes `numel` elements take, or `None` when the count does not fill
    /// whole bytes or whole blocks (or overflows).
    pub fn size_bytes_for(&self, numel: u64) -> Option<u64> {
        match self.packing() {
            Packing::Bits(bits) => {
                let total_bits = numel.checked_mul(u64::from(bits))?;
                total_bits.is_multiple_of(8).then_some(total_bits / 8)
            }
            Packing::Block { elements, bytes } => {
                let elements = u64::try_from(elements).ok()?;
                let bytes = u64::try_from(bytes).ok()?;
                // A header may declare any element count: the byte count must not overflow.
                if !numel.is_multiple_of(elements) {
                    return None;
                }
                (numel / elements).checked_mul(bytes)
            }
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for d in DType::ALL {
            assert_eq!(DType::from_name(d.name()), Some(d));
        }
        let mut names: Vec<_> = DType::ALL.iter().map(|d| d.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DType::ALL.len());
        assert_eq!(DType::from_name("F8_E4M3FNUZ"), None);
    }

    #[test]
    fn effective_bits_per_element() {
        // Q4_K: 2 + 2 + 12 + 128 = 144 bytes per 256 elements = 4.5 bits.
        assert_eq!(DType::Q4K.bits_per_element(), 4.5);
        // Q6_K: 128 + 64 + 16 + 2 = 210 bytes per 256 = 6.5625 bits.
        assert_eq!(DType::Q6K.bits_per_element(), 6.5625);
        // Q8_0: 2 + 32 = 34 bytes per 32 = 8.5 bits.
        assert_eq!(DType::Q8_0.bits_per_element(), 8.5);
        assert_eq!(DType::F4.bits_per_element(), 4.0);
        assert_eq!(DType::BF16.bits_per_element(), 16.0);
    }

    #[test]
    fn sizes_need_whole_bytes_and_blocks() {
        assert_eq!(DType::F32.size_bytes_for(3), Some(12));
        assert_eq!(DType::F4.size_bytes_for(3), None);
        assert_eq!(DType::F4.size_bytes_for(4), Some(2));
        assert_eq!(DType::F6E2M3.size_bytes_for(4), Some(3));
        assert_eq!(DType::Q4_0.size_bytes_for(64), Some(36));
        assert_eq!(DType::Q4_0.size_bytes_for(48), None);
        assert_eq!(DType::F64.size_bytes_for(u64::MAX), None);
        // Whole blocks whose byte count overflows u64 (a fuzzed GGUF header, fuzz/regressions/
        // gguf/): Q8_0 is 32 elements in 34 bytes, so a block count that fits as elements can
        // overflow as bytes.
        assert_eq!(DType::Q8_0.size_bytes_for(u64::MAX / 32 * 32), None);
        let most_blocks = u64::MAX / 34;
        assert_eq!(
            DType::Q8_0.size_bytes_for(most_blocks * 32),
            Some(most_blocks * 34)
        );
    }

    #[test]
    fn ggml_block_sizes_match_the_ggml_library() {
        // (name, ggml_blck_size, ggml_type_size) as libggml 0.20.2 reports them
        // (scripts/ggml_type_sizes.py); the removed interleaved types as ggml defined them.
        let table: [(&str, usize, usize); 33] = [
            ("Q4_0", 32, 18),
            ("Q4_1", 32, 20),
            ("Q5_0", 32, 22),
            ("Q5_1", 32, 24),
            ("Q8_0", 32, 34),
            ("Q8_1", 32, 36),
            ("Q2_K", 256, 84),
            ("Q3_K", 256, 110),
            ("Q4_K", 256, 144),
            ("Q5_K", 256, 176),
            ("Q6_K", 256, 210),
            ("Q8_K", 256, 292),
            ("IQ2_XXS", 256, 66),
            ("IQ2_XS", 256, 74),
            ("IQ3_XXS", 256, 98),
            ("IQ1_S", 256, 50),
            ("IQ4_NL", 32, 18),
            ("IQ3_S", 256, 110),
            ("IQ2_S", 256, 82),
            ("IQ4_XS", 256, 136),
            ("IQ1_M", 256, 56),
            ("Q4_0_4_4", 32, 18),
            ("Q4_0_4_8", 32, 18),
            ("Q4_0_8_8", 32, 18),
            ("TQ1_0", 256, 54),
            ("TQ2_0", 256, 66),
            ("IQ4_NL_4_4", 32, 18),
            ("IQ4_NL_4_8", 32, 18),
            ("IQ4_NL_8_8", 32, 18),
            ("MXFP4", 32, 17),
            ("NVFP4", 64, 36),
            ("Q1_0", 128, 18),
            ("Q2_0", 64, 18),
        ];
        for (name, elements, bytes) in table {
            let dtype = DType::from_name(name).unwrap();
            assert_eq!(
                dtype.packing(),
                Packing::Block { elements, bytes },
                "{name}"
            );
        }
        let blocks = DType::ALL.iter().filter(|d| d.is_block()).count();
        assert_eq!(blocks, table.len());
    }

    #[test]
    fn undecodable_types_are_the_ones_without_a_decoder() {
        let undecodable: Vec<&str> = DType::ALL
            .iter()
            .filter(|d| !d.is_decodable())
            .map(|d| d.name())
            .collect();
        assert_eq!(undecodable.len(), 20);
        assert!(undecodable.contains(&"IQ2_XXS") && undecodable.contains(&"TQ1_0"));
        assert!(DType::IQ4NL.is_decodable() && DType::MXFP4.is_decodable());
        assert!(DType::Q4K.is_decodable() && DType::F4.is_decodable());
        assert!(DType::F6E2M3.is_decodable() && DType::F6E3M2.is_decodable());
        // MXFP4: 32 elements in 17 bytes = 4.25 bits; NVFP4: 64 in 36 = 4.5 bits.
        assert_eq!(DType::MXFP4.bits_per_element(), 4.25);
        assert_eq!(DType::NVFP4.bits_per_element(), 4.5);
        assert_eq!(DType::IQ2_XXS.size_bytes_for(512), Some(132));
    }

    #[test]
    fn float_classification() {
        assert!(DType::BF16.is_float() && DType::Q6K.is_float() && DType::F8E4M3.is_float());
        assert!(!DType::I32.is_float() && !DType::Bool.is_float() && !DType::F8E8M0.is_float());
    }
}
