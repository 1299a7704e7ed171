//! Element types of stored tensors: safetensors dtypes, numpy scalars and GGUF block formats.

use std::fmt;

/// The element type of a stored tensor, as written in the file.
///
/// Scalar types hold one value per element; the GGUF block formats (`Q8_0` … `Q6K`, `IQ4NL`,
/// `MXFP4`, `NVFP4`) hold a fixed number of elements per block together with the block's
/// scale(s).
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
    /// GGUF IQ4_NL (ggml type 20): blocks of 32 4-bit indices into a fixed non-linear table of
    /// 16 int8 levels, with one f16 scale.
    IQ4NL,
    /// ggml's MXFP4 (GGUF type 39): blocks of 32 E2M1 codes with one E8M0 scale byte.
    MXFP4,
    /// ggml's NVFP4 (GGUF type 40): blocks of 64 E2M1 codes in 4 sub-blocks of 16, each with a
    /// UE4M3 scale byte (no per-tensor scale).
    NVFP4,
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
    pub const ALL: [DType; 32] = [
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
        DType::IQ4NL,
        DType::MXFP4,
        DType::NVFP4,
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
            DType::IQ4NL => "IQ4_NL",
            DType::MXFP4 => "MXFP4",
            DType::NVFP4 => "NVFP4",
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
            | DType::IQ4NL
            | DType::MXFP4
            | DType::NVFP4 => true,
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
            DType::IQ4NL => Packing::Block {
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
                numel
                    .is_multiple_of(elements)
                    .then(|| numel / elements * bytes)
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
    }

    #[test]
    fn float_classification() {
        assert!(DType::BF16.is_float() && DType::Q6K.is_float() && DType::F8E4M3.is_float());
        assert!(!DType::I32.is_float() && !DType::Bool.is_float() && !DType::F8E8M0.is_float());
    }
}
