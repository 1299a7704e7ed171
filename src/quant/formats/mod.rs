//! Deployed quantization formats (NUMERICS.md §8): the formats runtimes load — GGUF block
//! quants, OCP microscaling, NVFP4, NF4 and scaled FP8 — each a quantizer + decoder pair that
//! reproduces its reference implementation bit for bit, with its real byte layout and its true
//! storage in bits per weight.
//!
//! One enum, [`QuantFormat`], names every format; one family module implements each group:
//! - [`gguf`]: `q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k iq4_nl gguf_mxfp4 gguf_nvfp4`
//!   (ggml 0.20.2 `ggml_quantize_chunk`, with and without an importance matrix);
//! - [`mx`]: `mxfp8_e4m3 mxfp8_e5m2 mxfp6_e3m2 mxfp6_e2m3 mxfp4 mxint8` (OCP MX v1.0 as torchao
//!   0.18 `MXTensor.to_mx` and gfloat 0.5.2 compute it);
//! - [`nvfp4`]: NVIDIA's two-level NVFP4 (torchao 0.18 `NVFP4Tensor.to_nvfp4`);
//! - [`nf4`]: `nf4`, `nf4_dq` (bitsandbytes 0.50.2 `quantize_4bit`);
//! - [`fp8`]: `fp8_e4m3[_channel]`, `fp8_e5m2[_channel]` (torch 2.15 `(x / scale).to(float8)`).
//!
//! Every family works chunk by chunk: `Codec::prepare` computes what the whole tensor shares
//! (NVFP4's per-tensor scale, a per-tensor FP8 scale, NF4-DQ's mean absmax), then independent
//! chunks of whole blocks are encoded and decoded in parallel. The fused pass
//! [`quantize_format`] measures the error chunk by chunk without keeping the dequantized
//! tensor unless asked, so its memory is bounded by the outputs requested.

pub mod fp8;
pub mod gguf;
pub mod mx;
pub mod nf4;
pub mod nvfp4;

use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::metrics::{MetricAcc, Metrics};
use crate::cancel::{Cancel, Cancelled};

/// A deployed quantization format (NUMERICS.md §8). The CLI spells each one as
/// [`QuantFormat::name`] returns it.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuantFormat {
    /// GGUF Q8_0: 32 int8 codes + f16 scale (8.5 bpw).
    Q8_0,
    /// GGUF Q4_0: 32 4-bit codes + f16 scale (4.5 bpw).
    Q4_0,
    /// GGUF Q4_1: 32 4-bit codes + f16 scale and min (5.0 bpw).
    Q4_1,
    /// GGUF Q5_0: 32 5-bit codes + f16 scale (5.5 bpw).
    Q5_0,
    /// GGUF Q5_1: 32 5-bit codes + f16 scale and min (6.0 bpw).
    Q5_1,
    /// GGUF Q2_K: super-blocks of 256 (2.625 bpw).
    Q2_K,
    /// GGUF Q3_K: super-blocks of 256 (3.4375 bpw).
    Q3_K,
    /// GGUF Q4_K: super-blocks of 256 (4.5 bpw).
    Q4_K,
    /// GGUF Q5_K: super-blocks of 256 (5.5 bpw).
    Q5_K,
    /// GGUF Q6_K: super-blocks of 256 (6.5625 bpw).
    Q6_K,
    /// GGUF IQ4_NL: 32 non-linear 4-bit codes + f16 scale (4.5 bpw).
    Iq4_Nl,
    /// ggml's MXFP4 (GGUF type 39): E2M1 in blocks of 32 + an E8M0 byte (4.25 bpw).
    Gguf_Mxfp4,
    /// ggml's own NVFP4 (GGUF type 40): 64-element blocks of 4 × 16 with UE4M3 scales (4.5 bpw).
    Gguf_Nvfp4,
    /// OCP MXFP8 E4M3 (8.25 bpw).
    Mxfp8_E4m3,
    /// OCP MXFP8 E5M2 (8.25 bpw).
    Mxfp8_E5m2,
    /// OCP MXFP6 E3M2 (6.25 bpw).
    Mxfp6_E3m2,
    /// OCP MXFP6 E2M3 (6.25 bpw).
    Mxfp6_E2m3,
    /// OCP MXFP4 E2M1 (4.25 bpw).
    Mxfp4,
    /// OCP MXINT8 (8.25 bpw).
    Mxint8,
    /// NVIDIA NVFP4: E2M1 in blocks of 16, an E4M3 scale per block, one FP32 scale per tensor.
    Nvfp4,
    /// bitsandbytes NF4, blocks of 64 over the flattened tensor, f32 absmax (4.5 bpw).
    Nf4,
    /// NF4 with double quantization of the absmax values (≈ 4.127 bpw).
    Nf4_Dq,
    /// FP8 E4M3 with one f32 scale per tensor.
    Fp8_E4m3,
    /// FP8 E4M3 with one f32 scale per output channel (row).
    Fp8_E4m3_Channel,
    /// FP8 E5M2 with one f32 scale per tensor.
    Fp8_E5m2,
    /// FP8 E5M2 with one f32 scale per output channel (row).
    Fp8_E5m2_Channel,
}

/// The family a format belongs to (one module each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// ggml's block quants ([`gguf`]).
    Gguf,
    /// OCP microscaling ([`mx`]).
    Mx,
    /// NVIDIA NVFP4 ([`nvfp4`]).
    Nvfp4,
    /// bitsandbytes NF4 ([`nf4`]).
    Nf4,
    /// Scaled FP8 ([`fp8`]).
    Fp8,
}

impl QuantFormat {
    /// Every format, in the order the CLI lists them.
    pub const ALL: [QuantFormat; 26] = [
        Self::Q8_0,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q5_0,
        Self::Q5_1,
        Self::Q2_K,
        Self::Q3_K,
        Self::Q4_K,
        Self::Q5_K,
        Self::Q6_K,
        Self::Iq4_Nl,
        Self::Gguf_Mxfp4,
        Self::Gguf_Nvfp4,
        Self::Mxfp4,
        Self::Mxfp6_E2m3,
        Self::Mxfp6_E3m2,
        Self::Mxfp8_E4m3,
        Self::Mxfp8_E5m2,
        Self::Mxint8,
        Self::Nvfp4,
        Self::Nf4,
        Self::Nf4_Dq,
        Self::Fp8_E4m3,
        Self::Fp8_E4m3_Channel,
        Self::Fp8_E5m2,
        Self::Fp8_E5m2_Channel,
    ];

    /// The CLI and JSON spelling ("q4_k", "mxfp6_e2m3", "fp8_e4m3_channel", …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Q8_0 => "q8_0",
            Self::Q4_0 => "q4_0",
            Self::Q4_1 => "q4_1",
            Self::Q5_0 => "q5_0",
            Self::Q5_1 => "q5_1",
            Self::Q2_K => "q2_k",
            Self::Q3_K => "q3_k",
            Self::Q4_K => "q4_k",
            Self::Q5_K => "q5_k",
            Self::Q6_K => "q6_k",
            Self::Iq4_Nl => "iq4_nl",
            Self::Gguf_Mxfp4 => "gguf_mxfp4",
            Self::Gguf_Nvfp4 => "gguf_nvfp4",
            Self::Mxfp8_E4m3 => "mxfp8_e4m3",
            Self::Mxfp8_E5m2 => "mxfp8_e5m2",
            Self::Mxfp6_E3m2 => "mxfp6_e3m2",
            Self::Mxfp6_E2m3 => "mxfp6_e2m3",
            Self::Mxfp4 => "mxfp4",
            Self::Mxint8 => "mxint8",
            Self::Nvfp4 => "nvfp4",
            Self::Nf4 => "nf4",
            Self::Nf4_Dq => "nf4_dq",
            Self::Fp8_E4m3 => "fp8_e4m3",
            Self::Fp8_E4m3_Channel => "fp8_e4m3_channel",
            Self::Fp8_E5m2 => "fp8_e5m2",
            Self::Fp8_E5m2_Channel => "fp8_e5m2_channel",
        }
    }

    /// The format named `name` (the CLI spelling), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The family (module) implementing this format.
    pub fn family(self) -> Family {
        match self {
            Self::Q8_0
            | Self::Q4_0
            | Self::Q4_1
            | Self::Q5_0
            | Self::Q5_1
            | Self::Q2_K
            | Self::Q3_K
            | Self::Q4_K
            | Self::Q5_K
            | Self::Q6_K
            | Self::Iq4_Nl
            | Self::Gguf_Mxfp4
            | Self::Gguf_Nvfp4 => Family::Gguf,
            Self::Mxfp8_E4m3
            | Self::Mxfp8_E5m2
            | Self::Mxfp6_E3m2
            | Self::Mxfp6_E2m3
            | Self::Mxfp4
            | Self::Mxint8 => Family::Mx,
            Self::Nvfp4 => Family::Nvfp4,
            Self::Nf4 | Self::Nf4_Dq => Family::Nf4,
            Self::Fp8_E4m3 | Self::Fp8_E4m3_Channel | Self::Fp8_E5m2 | Self::Fp8_E5m2_Channel => {
                Family::Fp8
            }
        }
    }

    /// Elements per block along the last axis, which a row length must be a multiple of
    /// (NUMERICS.md §8's last rule). NF4 blocks the flattened tensor and scaled FP8 has no
    /// blocks: both return `None`.
    pub fn row_block(self) -> Option<usize> {
        match self {
            Self::Q2_K | Self::Q3_K | Self::Q4_K | Self::Q5_K | Self::Q6_K => Some(256),
            Self::Gguf_Nvfp4 => Some(64),
            Self::Nvfp4 => Some(16),
            Self::Nf4 | Self::Nf4_Dq => None,
            Self::Fp8_E4m3 | Self::Fp8_E4m3_Channel | Self::Fp8_E5m2 | Self::Fp8_E5m2_Channel => {
                None
            }
            _ => Some(32),
        }
    }

    /// Whether the reference quantizer takes a different path with an importance matrix
    /// (FORMATS-NOTES.md §1: Q4_0…Q5_1, the K-quants and IQ4_NL; Q8_0, MXFP4, NVFP4 ignore it;
    /// no other family has one).
    pub fn uses_imatrix(self) -> bool {
        matches!(
            self,
            Self::Q4_0
                | Self::Q4_1
                | Self::Q5_0
                | Self::Q5_1
                | Self::Q2_K
                | Self::Q3_K
                | Self::Q4_K
                | Self::Q5_K
                | Self::Q6_K
                | Self::Iq4_Nl
        )
    }

    /// Whether the format can store a tensor of `shape`, and if not, why (and, for the GGUF
    /// types, which type llama.cpp falls back to).
    pub fn check(self, shape: &[usize]) -> Result<(), NotApplicable> {
        let Some(block) = self.row_block() else {
            return Ok(());
        };
        let row = shape.last().copied().unwrap_or(1);
        if row.is_multiple_of(block) {
            return Ok(());
        }
        let fallback = gguf::fallback(self, row);
        let instead = match fallback {
            Some(to) => format!("; llama.cpp's llama-quantize stores such a tensor as {to}"),
            None => String::new(),
        };
        Err(NotApplicable {
            format: self,
            reason: format!(
                "{}: the row length {row} is not a multiple of the {block}-element block{instead}",
                self.name()
            ),
            fallback,
        })
    }

    /// The true storage of a tensor of `numel` elements and `rows` rows in bits per weight,
    /// every scale, min and super-block field counted (NUMERICS.md §8).
    pub fn bits_per_weight(self, numel: usize, rows: usize) -> f64 {
        match self.family() {
            Family::Gguf => gguf::bits_per_weight(self),
            Family::Mx => mx::bits_per_weight(self),
            Family::Nvfp4 => nvfp4::bits_per_weight(numel),
            Family::Nf4 => nf4::bits_per_weight(self, numel),
            Family::Fp8 => fp8::bits_per_weight(self, numel, rows),
        }
    }

    fn codec(self) -> &'static dyn Codec {
        match self.family() {
            Family::Gguf => &gguf::GgufCodec,
            Family::Mx => &mx::MxCodec,
            Family::Nvfp4 => &nvfp4::Nvfp4Codec,
            Family::Nf4 => &nf4::Nf4Codec,
            Family::Fp8 => &fp8::Fp8Codec,
        }
    }
}

/// Serialised as its CLI name ("q4_k"), the spelling every report and recipe uses.
impl Serialize for QuantFormat {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for QuantFormat {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown format '{name}' (see quantize --help)"))
        })
    }
}

impl std::fmt::Display for QuantFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a format cannot store a tensor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{reason}")]
pub struct NotApplicable {
    /// The format asked for.
    pub format: QuantFormat,
    /// A sentence naming the problem.
    pub reason: String,
    /// The type llama.cpp uses instead for such a tensor (GGUF types only), if any.
    pub fallback: Option<Fallback>,
}

/// The type llama.cpp's llama-quantize stores a tensor in when its row does not fit the
/// block of the type asked for ([`gguf::fallback`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// Another quantized format (e.g. Q4_K → Q5_0).
    Format(QuantFormat),
    /// Unquantized f16: the fallback type's 32-element block does not fit the row either.
    F16,
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fallback::Format(format) => f.write_str(format.name()),
            Fallback::F16 => f.write_str("f16"),
        }
    }
}

/// Why a format quantization was refused or failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    /// The format cannot store a tensor of this shape.
    #[error(transparent)]
    NotApplicable(#[from] NotApplicable),
    /// The value count does not match the shape.
    #[error("shape holds {expected} elements but {got} values were given")]
    ShapeMismatch {
        /// Elements implied by the shape.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// The importance matrix does not have one weight per column.
    #[error("the importance matrix has {got} weights for rows of {row} columns")]
    ImatrixLength {
        /// Weights given.
        got: usize,
        /// The row length.
        row: usize,
    },
    /// Stored bytes that do not hold the tensor (wrong length or part missing).
    #[error("{format}: {detail}")]
    Corrupt {
        /// The format being decoded.
        format: QuantFormat,
        /// What is wrong.
        detail: String,
    },
    /// The job was cancelled.
    #[error("cancelled")]
    Cancelled(#[from] Cancelled),
}

/// The storage type of one stored part, as a safetensors dtype would name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PartDtype {
    /// Raw bytes (GGUF blocks, packed 4/6-bit codes, E8M0 or E4M3 scale bytes).
    U8,
    /// Little-endian f32 values.
    F32,
}

/// One stored array of an encoded tensor, in the reference's layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// "blocks" for GGUF types (the whole block structs); for the others "codes" (the element
    /// codes, packed as the reference packs them) then the scale arrays ("scales", "absmax",
    /// "absmax_codes", "absmax2", "offset", "tensor_scale").
    pub name: &'static str,
    /// How the bytes are typed.
    pub dtype: PartDtype,
    /// The part's logical shape (e.g. scales `[rows, cols / 32]`).
    pub shape: Vec<usize>,
    /// The bytes, little-endian.
    pub bytes: Vec<u8>,
}

/// A tensor stored in a format: the parts exactly as the reference stores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The format.
    pub format: QuantFormat,
    /// The tensor's shape (row-major; blocks run along the last axis).
    pub shape: Vec<usize>,
    /// The stored arrays, in a fixed order per format.
    pub parts: Vec<Part>,
}

impl Encoded {
    /// The part named `name`.
    pub fn part(&self, name: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.name == name)
    }
}

/// What a family computes once for the whole tensor before the chunks (all-zero defaults for
/// families that need nothing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TensorParams {
    /// One f32 per tensor (NVFP4's per-tensor scale, a per-tensor FP8 scale, NF4-DQ's offset).
    pub scalars: Vec<f32>,
}

/// The geometry a chunk is encoded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Elements in the tensor.
    pub numel: usize,
    /// Elements per row (the last axis; 1 for a 0-d tensor).
    pub row_len: usize,
}

/// The parts of one chunk, in the same order and with the same names as [`Encoded::parts`];
/// concatenating the chunks' parts in chunk order gives the tensor's parts.
pub type ChunkParts = Vec<(&'static str, PartDtype, Vec<u8>)>;

/// A family's quantizer + decoder pair. Implementations are stateless unit structs.
pub(crate) trait Codec: Sync {
    /// Tensor-wide values computed by a first pass over all values.
    fn prepare(
        &self,
        format: QuantFormat,
        values: &[f32],
        geometry: Geometry,
        cancel: &Cancel,
    ) -> Result<TensorParams, FormatError>;

    /// Elements per independently encoded chunk: whole rows (or, for NF4, a multiple of its
    /// flattened blocks), about 64 Ki elements so chunks parallelise and check cancellation.
    fn chunk_elements(&self, format: QuantFormat, geometry: Geometry) -> usize;

    /// Encodes `values`, the chunk starting at element `first`. `imatrix` has one weight per
    /// column (row_len) when given.
    fn encode_chunk(
        &self,
        format: QuantFormat,
        params: &TensorParams,
        geometry: Geometry,
        first: usize,
        values: &[f32],
        imatrix: Option<&[f32]>,
    ) -> ChunkParts;

    /// Decodes the chunk that starts at element `first` into `out` (its length is the chunk's
    /// element count). `parts` holds the chunk's slices of each part, in order.
    fn decode_chunk(
        &self,
        format: QuantFormat,
        params: &TensorParams,
        geometry: Geometry,
        first: usize,
        parts: &[&[u8]],
        out: &mut [f32],
    ) -> Result<(), FormatError>;

    /// The tensor-wide parameters recovered from stored parts (for decoding a stored tensor).
    fn params_from_parts(
        &self,
        format: QuantFormat,
        parts: &[Part],
    ) -> Result<TensorParams, FormatError>;

    /// Bytes of each part that belong to a chunk of `elements` elements starting at `first`
    /// (same order as the parts).
    fn part_ranges(
        &self,
        format: QuantFormat,
        geometry: Geometry,
        first: usize,
        elements: usize,
    ) -> Vec<std::ops::Range<usize>>;

    /// The logical shape of each part of a whole tensor of `shape` (same order as the parts).
    fn part_shapes(&self, format: QuantFormat, shape: &[usize]) -> Vec<Vec<usize>>;

    /// A readable account of block `block`: its fields bit by bit, its codes and values.
    fn block_detail(
        &self,
        format: QuantFormat,
        encoded: &Encoded,
        block: usize,
    ) -> Option<BlockDetail>;
}

/// Which large outputs [`quantize_format`] keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FormatOutputs {
    /// The stored parts.
    pub encoded: bool,
    /// The dequantized values.
    pub dequantized: bool,
}

/// Everything one format quantization produced.
#[derive(Debug, Clone)]
pub struct FormatResult {
    /// The format.
    pub format: QuantFormat,
    /// The input shape.
    pub shape: Vec<usize>,
    /// The stored parts, when asked for.
    pub encoded: Option<Encoded>,
    /// The dequantized values, when asked for.
    pub dequantized: Option<Vec<f32>>,
    /// Error of the dequantized values against the input (NUMERICS.md §6).
    pub metrics: Metrics,
    /// True storage in bits per weight, every stored field counted.
    pub bits_per_weight: f64,
    /// Compute time in milliseconds.
    pub elapsed_ms: f64,
}

/// One field of a block as stored: its name, its bits and what they mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockField {
    /// The field's name in the reference's struct (`d`, `dmin`, `scales[3]`, `e`, …).
    pub name: String,
    /// Its width in bits.
    pub bits: u32,
    /// Its raw value (the stored bits, right-aligned).
    pub raw: u64,
    /// How it is read ("f16", "E8M0", "UE4M3", "6-bit unsigned", …).
    pub encoding: String,
    /// The value it stands for.
    pub value: f64,
}

/// One block of an encoded tensor, made readable for the block view and "explain this number".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockDetail {
    /// The block's index (row-major over rows × blocks per row; flattened for NF4).
    pub block: usize,
    /// The flat index of the block's first element.
    pub first: usize,
    /// The stored fields other than the element codes (scales, mins, sub-block scales).
    pub fields: Vec<BlockField>,
    /// The element codes, one per element.
    pub codes: Vec<i32>,
    /// The reconstructed value of each element.
    pub values: Vec<f32>,
    /// For each element, the scale actually multiplied with its level (sub-block scale ×
    /// super-block scale …), for "explain this number".
    pub element_scale: Vec<f32>,
    /// For each element, the additive offset (a min; 0 for symmetric formats).
    pub element_offset: Vec<f32>,
    /// Every value an element of this block can take, ascending (the histogram's code grid).
    pub levels: Vec<f32>,
    /// How a value is reconstructed, as a formula in words ("x̂ = d · sc_j · q − dmin · m_j").
    pub formula: String,
}

/// The block holding flat element `flat` of a tensor of `shape` in `format`, and the number
/// of elements per block.
pub fn block_of(format: QuantFormat, shape: &[usize], flat: usize) -> (usize, usize) {
    let per = match format.family() {
        Family::Gguf => gguf::block_elements(format),
        Family::Mx => 32,
        Family::Nvfp4 => 16,
        Family::Nf4 => 64,
        Family::Fp8 => match format {
            QuantFormat::Fp8_E4m3_Channel | QuantFormat::Fp8_E5m2_Channel => {
                shape.last().copied().unwrap_or(1).max(1)
            }
            _ => shape.iter().product::<usize>().max(1),
        },
    };
    (flat / per, per)
}

fn geometry_of(shape: &[usize], len: usize) -> Geometry {
    Geometry {
        numel: len,
        row_len: shape.last().copied().unwrap_or(1).max(1),
    }
}

fn check_input(
    format: QuantFormat,
    values: &[f32],
    shape: &[usize],
    imatrix: Option<&[f32]>,
) -> Result<Geometry, FormatError> {
    let expected = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .unwrap_or(usize::MAX);
    if expected != values.len() {
        return Err(FormatError::ShapeMismatch {
            expected,
            got: values.len(),
        });
    }
    format.check(shape)?;
    let geometry = geometry_of(shape, values.len());
    if let Some(w) = imatrix
        && w.len() != geometry.row_len
    {
        return Err(FormatError::ImatrixLength {
            got: w.len(),
            row: geometry.row_len,
        });
    }
    Ok(geometry)
}

/// Quantizes `values` (row-major, `shape`) into `format`, measures the error of the decoded
/// values against them, and keeps the outputs asked for. `imatrix` (one weight per column) is
/// passed to the formats whose reference uses it and ignored by the others.
pub fn quantize_format(
    format: QuantFormat,
    values: &[f32],
    shape: &[usize],
    imatrix: Option<&[f32]>,
    outputs: FormatOutputs,
    cancel: &Cancel,
) -> Result<FormatResult, FormatError> {
    let start = Instant::now();
    let geometry = check_input(format, values, shape, imatrix)?;
    let codec = format.codec();
    let params = codec.prepare(format, values, geometry, cancel)?;
    let chunk = codec.chunk_elements(format, geometry).max(1);
    let imatrix = if format.uses_imatrix() { imatrix } else { None };
    cancel.add_total(values.len() as u64);
    let per_chunk: Vec<(MetricAcc, Option<ChunkParts>, Option<Vec<f32>>)> = values
        .par_chunks(chunk)
        .enumerate()
        .map(|(c, part)| {
            cancel.check()?;
            let first = c * chunk;
            let parts = codec.encode_chunk(format, &params, geometry, first, part, imatrix);
            let slices: Vec<&[u8]> = parts.iter().map(|(_, _, b)| b.as_slice()).collect();
            let mut decoded = vec![0.0f32; part.len()];
            codec.decode_chunk(format, &params, geometry, first, &slices, &mut decoded)?;
            let mut acc = MetricAcc::default();
            for (&x, &xh) in part.iter().zip(&decoded) {
                acc.push(x, xh, false);
            }
            cancel.add_done(part.len() as u64);
            Ok((
                acc,
                outputs.encoded.then_some(parts),
                outputs.dequantized.then_some(decoded),
            ))
        })
        .collect::<Result<_, FormatError>>()?;
    let mut acc = MetricAcc::default();
    let mut encoded_parts: Vec<Part> = Vec::new();
    let mut dequantized = outputs
        .dequantized
        .then(|| Vec::with_capacity(values.len()));
    let shapes = codec.part_shapes(format, shape);
    for (a, parts, decoded) in per_chunk {
        acc.merge(&a);
        if let Some(parts) = parts {
            if encoded_parts.is_empty() {
                encoded_parts = parts
                    .iter()
                    .zip(shapes.iter().cloned().chain(std::iter::repeat(Vec::new())))
                    .map(|((name, dtype, _), shape)| Part {
                        name,
                        dtype: *dtype,
                        shape,
                        bytes: Vec::new(),
                    })
                    .collect();
            }
            for (whole, (_, _, bytes)) in encoded_parts.iter_mut().zip(parts) {
                whole.bytes.extend_from_slice(&bytes);
            }
        }
        if let (Some(all), Some(d)) = (dequantized.as_mut(), decoded) {
            all.extend_from_slice(&d);
        }
    }
    let rows = values.len() / geometry.row_len.max(1);
    Ok(FormatResult {
        format,
        shape: shape.to_vec(),
        encoded: outputs.encoded.then(|| Encoded {
            format,
            shape: shape.to_vec(),
            parts: encoded_parts,
        }),
        dequantized,
        metrics: acc.finish(),
        bits_per_weight: format.bits_per_weight(values.len(), rows),
        elapsed_ms: start.elapsed().as_secs_f64() * 1e3,
    })
}

/// Decodes a stored tensor back to f32 values (row-major).
pub fn decode(encoded: &Encoded, cancel: &Cancel) -> Result<Vec<f32>, FormatError> {
    let format = encoded.format;
    let numel = encoded
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| FormatError::Corrupt {
            format,
            detail: "shape overflows".into(),
        })?;
    format.check(&encoded.shape)?;
    let geometry = geometry_of(&encoded.shape, numel);
    let codec = format.codec();
    let params = codec.params_from_parts(format, &encoded.parts)?;
    let chunk = codec.chunk_elements(format, geometry).max(1);
    let mut out = vec![0.0f32; numel];
    out.par_chunks_mut(chunk)
        .enumerate()
        .try_for_each(|(c, dst)| {
            cancel.check()?;
            let first = c * chunk;
            let ranges = codec.part_ranges(format, geometry, first, dst.len());
            let slices: Vec<&[u8]> = ranges
                .iter()
                .zip(&encoded.parts)
                .map(|(r, p)| {
                    p.bytes.get(r.clone()).ok_or_else(|| FormatError::Corrupt {
                        format,
                        detail: format!("part {} is too short", p.name),
                    })
                })
                .collect::<Result<_, _>>()?;
            codec.decode_chunk(format, &params, geometry, first, &slices, dst)
        })?;
    Ok(out)
}

/// A readable account of block `block` of a stored tensor, if it exists.
pub fn block_detail(encoded: &Encoded, block: usize) -> Option<BlockDetail> {
    encoded
        .format
        .codec()
        .block_detail(encoded.format, encoded, block)
}
