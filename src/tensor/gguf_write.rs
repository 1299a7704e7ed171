//! The GGUF v3 writer: typed key/value metadata, tensor infos and aligned data, written atomically.
//!
//! The layout is the one [`super::gguf`] reads (NUMERICS.md §7): magic "GGUF", u32 version 3,
//! u64 tensor count, u64 KV count, the KV pairs (value types 0..12, arrays of any type,
//! arrays of arrays included), the tensor infos (name, u32 n_dims, u64 dims innermost-first,
//! u32 ggml type, u64 offset relative to the data section), zero padding up to
//! `general.alignment` (default 32), then each tensor's bytes, each padded to the alignment as
//! gguf-py's `GGUFWriter` and llama.cpp's `gguf_write_to_file` pad them.
//!
//! Tensors come from f32 values (stored F32, or rounded to F16/BF16 with round-to-nearest-even
//! through `half`) or from raw stored bytes of any dtype that has a ggml type id, GGUF block
//! formats included (the caller produced the blocks; their size is checked here).

use std::io::Write;
use std::path::{Path, PathBuf};

use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

use super::dtype::{DType, Packing};

/// GGUF format version written.
const VERSION: u32 = 3;
/// Alignment when none is set (GGUF's `GGUF_DEFAULT_ALIGNMENT`).
pub const DEFAULT_ALIGNMENT: u32 = 32;
/// llama.cpp's GGML_MAX_DIMS.
const MAX_DIMS: usize = 4;
/// llama.cpp's GGML_MAX_NAME is 64 bytes including the terminating NUL.
const MAX_NAME_BYTES: usize = 63;
/// The metadata key holding the alignment.
const ALIGNMENT_KEY: &str = "general.alignment";
/// The largest ggml type id searched for a dtype (ids in ggml.h are below this).
const MAX_GGML_TYPE_ID: u32 = 64;

/// Why a GGUF file could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum GgufWriteError {
    /// Creating, writing or renaming the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The destination (or its temporary sibling's folder).
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The destination is one of the files the data came from.
    #[error("{}: is an input file; refusing to overwrite it", path.display())]
    WouldOverwriteInput {
        /// The destination.
        path: PathBuf,
    },
    /// The alignment is not a power of two.
    #[error("alignment {0} is not a power of two")]
    BadAlignment(u32),
    /// `general.alignment` was given as ordinary metadata instead of through the alignment
    /// setting (the two could disagree).
    #[error("set general.alignment with GgufWriter::with_alignment, not as metadata")]
    AlignmentAsMetadata,
    /// A metadata key appears twice.
    #[error("metadata key '{0}' appears twice")]
    DuplicateKey(String),
    /// An array item's type differs from the array's declared item type.
    #[error("metadata '{key}': array of {expected:?} holds a {found:?}")]
    MixedArray {
        /// The metadata key.
        key: String,
        /// The declared item type.
        expected: GgufType,
        /// The type of the offending item.
        found: GgufType,
    },
    /// A tensor name appears twice.
    #[error("tensor '{0}' appears twice")]
    DuplicateTensor(String),
    /// A tensor name is longer than llama.cpp accepts.
    #[error("tensor name '{0}' is longer than {MAX_NAME_BYTES} bytes")]
    NameTooLong(String),
    /// A tensor has more dimensions than ggml supports.
    #[error("tensor '{name}' has {dims} dimensions (at most {MAX_DIMS})")]
    TooManyDims {
        /// The tensor.
        name: String,
        /// Its number of dimensions.
        dims: usize,
    },
    /// The dtype has no ggml type id (FP8, FP4, FP6, unsigned integers, BOOL).
    #[error("tensor '{name}': {dtype} has no GGUF (ggml) type")]
    NoGgmlType {
        /// The tensor.
        name: String,
        /// Its dtype.
        dtype: DType,
    },
    /// The row length (innermost dimension) of a block-format tensor is not a whole number of
    /// blocks.
    #[error(
        "tensor '{name}': row length {row} is not a multiple of the {dtype} block size {block}"
    )]
    PartialBlock {
        /// The tensor.
        name: String,
        /// Its innermost dimension.
        row: usize,
        /// Its dtype.
        dtype: DType,
        /// Elements per block.
        block: usize,
    },
    /// The byte count does not match dtype and shape.
    #[error(
        "tensor '{name}': {actual} bytes given, but {dtype} with shape {shape:?} needs {expected}"
    )]
    SizeMismatch {
        /// The tensor.
        name: String,
        /// Its dtype.
        dtype: DType,
        /// Its row-major shape.
        shape: Vec<usize>,
        /// Bytes the shape needs (0 when the size overflows).
        expected: u64,
        /// Bytes given.
        actual: u64,
    },
    /// The number of values does not match the shape.
    #[error("tensor '{name}': {actual} values given, but shape {shape:?} holds {expected}")]
    ValueCount {
        /// The tensor.
        name: String,
        /// Its row-major shape.
        shape: Vec<usize>,
        /// Elements the shape holds.
        expected: u64,
        /// Values given.
        actual: usize,
    },
}

/// The type of a GGUF metadata value (the u32 written before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgufType {
    /// 0: u8.
    U8,
    /// 1: i8.
    I8,
    /// 2: u16.
    U16,
    /// 3: i16.
    I16,
    /// 4: u32.
    U32,
    /// 5: i32.
    I32,
    /// 6: f32.
    F32,
    /// 7: bool (one byte, 0 or 1).
    Bool,
    /// 8: a u64-length-prefixed UTF-8 string.
    String,
    /// 9: an array (u32 item type, u64 count, items).
    Array,
    /// 10: u64.
    U64,
    /// 11: i64.
    I64,
    /// 12: f64.
    F64,
}

impl GgufType {
    /// The type code written in the file.
    pub fn code(self) -> u32 {
        match self {
            GgufType::U8 => 0,
            GgufType::I8 => 1,
            GgufType::U16 => 2,
            GgufType::I16 => 3,
            GgufType::U32 => 4,
            GgufType::I32 => 5,
            GgufType::F32 => 6,
            GgufType::Bool => 7,
            GgufType::String => 8,
            GgufType::Array => 9,
            GgufType::U64 => 10,
            GgufType::I64 => 11,
            GgufType::F64 => 12,
        }
    }
}

/// A GGUF metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// u8.
    U8(u8),
    /// i8.
    I8(i8),
    /// u16.
    U16(u16),
    /// i16.
    I16(i16),
    /// u32.
    U32(u32),
    /// i32.
    I32(i32),
    /// f32.
    F32(f32),
    /// bool.
    Bool(bool),
    /// A UTF-8 string.
    String(String),
    /// An array whose items all have type `item_type` (arrays of arrays allowed).
    Array {
        /// The type of every item (needed even for an empty array).
        item_type: GgufType,
        /// The items.
        items: Vec<GgufValue>,
    },
    /// u64.
    U64(u64),
    /// i64.
    I64(i64),
    /// f64.
    F64(f64),
}

impl GgufValue {
    /// The value's type.
    pub fn gguf_type(&self) -> GgufType {
        match self {
            GgufValue::U8(_) => GgufType::U8,
            GgufValue::I8(_) => GgufType::I8,
            GgufValue::U16(_) => GgufType::U16,
            GgufValue::I16(_) => GgufType::I16,
            GgufValue::U32(_) => GgufType::U32,
            GgufValue::I32(_) => GgufType::I32,
            GgufValue::F32(_) => GgufType::F32,
            GgufValue::Bool(_) => GgufType::Bool,
            GgufValue::String(_) => GgufType::String,
            GgufValue::Array { .. } => GgufType::Array,
            GgufValue::U64(_) => GgufType::U64,
            GgufValue::I64(_) => GgufType::I64,
            GgufValue::F64(_) => GgufType::F64,
        }
    }

    /// A string value.
    pub fn string(text: impl Into<String>) -> Self {
        GgufValue::String(text.into())
    }

    /// An array of strings.
    pub fn strings<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Self {
        GgufValue::Array {
            item_type: GgufType::String,
            items: items
                .into_iter()
                .map(|s| GgufValue::String(s.into()))
                .collect(),
        }
    }

    /// Checks that every array item (recursively) has its array's item type.
    fn check(&self, key: &str) -> Result<(), GgufWriteError> {
        if let GgufValue::Array { item_type, items } = self {
            for item in items {
                let found = item.gguf_type();
                if found != *item_type {
                    return Err(GgufWriteError::MixedArray {
                        key: key.to_string(),
                        expected: *item_type,
                        found,
                    });
                }
                item.check(key)?;
            }
        }
        Ok(())
    }

    /// Appends the value's bytes (without its type code).
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            GgufValue::U8(v) => out.push(*v),
            GgufValue::I8(v) => out.extend(v.to_le_bytes()),
            GgufValue::U16(v) => out.extend(v.to_le_bytes()),
            GgufValue::I16(v) => out.extend(v.to_le_bytes()),
            GgufValue::U32(v) => out.extend(v.to_le_bytes()),
            GgufValue::I32(v) => out.extend(v.to_le_bytes()),
            GgufValue::F32(v) => out.extend(v.to_le_bytes()),
            GgufValue::Bool(v) => out.push(u8::from(*v)),
            GgufValue::String(s) => put_str(out, s),
            GgufValue::Array { item_type, items } => {
                out.extend(item_type.code().to_le_bytes());
                // usize fits in u64.
                out.extend((items.len() as u64).to_le_bytes());
                for item in items {
                    item.put(out);
                }
            }
            GgufValue::U64(v) => out.extend(v.to_le_bytes()),
            GgufValue::I64(v) => out.extend(v.to_le_bytes()),
            GgufValue::F64(v) => out.extend(v.to_le_bytes()),
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // usize fits in u64.
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// One tensor to write: a name, a row-major shape, a stored dtype and its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensor {
    name: String,
    shape: Vec<usize>,
    dtype: DType,
    bytes: Vec<u8>,
}

impl GgufTensor {
    /// An F32 tensor holding `values` (row-major `shape`).
    pub fn from_f32(
        name: impl Into<String>,
        shape: Vec<usize>,
        values: &[f32],
    ) -> Result<Self, GgufWriteError> {
        let name = name.into();
        check_value_count(&name, &shape, values.len())?;
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Self::from_raw(name, shape, DType::F32, bytes)
    }

    /// An F16 tensor: `values` rounded to nearest, ties to even (via `half`, which matches
    /// numpy's `astype(float16)`).
    pub fn from_f16(
        name: impl Into<String>,
        shape: Vec<usize>,
        values: &[f32],
    ) -> Result<Self, GgufWriteError> {
        let name = name.into();
        check_value_count(&name, &shape, values.len())?;
        let mut halves = vec![f16::ZERO; values.len()];
        halves.convert_from_f32_slice(values);
        let bytes = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
        Self::from_raw(name, shape, DType::F16, bytes)
    }

    /// A BF16 tensor: `values` rounded to nearest, ties to even (via `half`).
    pub fn from_bf16(
        name: impl Into<String>,
        shape: Vec<usize>,
        values: &[f32],
    ) -> Result<Self, GgufWriteError> {
        let name = name.into();
        check_value_count(&name, &shape, values.len())?;
        let mut halves = vec![bf16::ZERO; values.len()];
        halves.convert_from_f32_slice(values);
        let bytes = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
        Self::from_raw(name, shape, DType::BF16, bytes)
    }

    /// A tensor from its stored bytes: little-endian elements, or whole blocks of a GGUF block
    /// format (blocks run along the innermost dimension, which must hold whole blocks).
    pub fn from_raw(
        name: impl Into<String>,
        shape: Vec<usize>,
        dtype: DType,
        bytes: Vec<u8>,
    ) -> Result<Self, GgufWriteError> {
        let name = name.into();
        if name.len() > MAX_NAME_BYTES {
            return Err(GgufWriteError::NameTooLong(name));
        }
        if shape.len() > MAX_DIMS {
            return Err(GgufWriteError::TooManyDims {
                name,
                dims: shape.len(),
            });
        }
        if ggml_type_id(dtype).is_none() {
            return Err(GgufWriteError::NoGgmlType { name, dtype });
        }
        if let Packing::Block { elements, .. } = dtype.packing() {
            let row = shape.last().copied().unwrap_or(1);
            if !row.is_multiple_of(elements) {
                return Err(GgufWriteError::PartialBlock {
                    name,
                    row,
                    dtype,
                    block: elements,
                });
            }
        }
        let expected = numel(&shape).and_then(|n| dtype.size_bytes_for(n));
        // usize fits in u64.
        let actual = bytes.len() as u64;
        if expected != Some(actual) {
            return Err(GgufWriteError::SizeMismatch {
                name,
                dtype,
                shape,
                expected: expected.unwrap_or(0),
                actual,
            });
        }
        Ok(Self {
            name,
            shape,
            dtype,
            bytes,
        })
    }

    /// The tensor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The row-major shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The stored dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The stored bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

fn numel(shape: &[usize]) -> Option<u64> {
    shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::try_from(d).ok()?))
}

fn check_value_count(name: &str, shape: &[usize], actual: usize) -> Result<(), GgufWriteError> {
    let expected = numel(shape);
    // usize fits in u64.
    if expected != Some(actual as u64) {
        return Err(GgufWriteError::ValueCount {
            name: name.to_string(),
            shape: shape.to_vec(),
            expected: expected.unwrap_or(0),
            actual,
        });
    }
    Ok(())
}

/// The ggml type id of `dtype`, found in the loader's own table (so reader and writer cannot
/// disagree), or `None` when ggml has no such type.
pub fn ggml_type_id(dtype: DType) -> Option<u32> {
    (0..MAX_GGML_TYPE_ID).find(|&id| super::gguf::dtype_of(id) == Some(dtype))
}

/// A GGUF file being assembled: metadata in insertion order, tensors in insertion order.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufWriter {
    alignment: u32,
    alignment_set: bool,
    metadata: Vec<(String, GgufValue)>,
    tensors: Vec<GgufTensor>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    /// An empty file with the default alignment (32 bytes, no `general.alignment` key).
    pub fn new() -> Self {
        Self {
            alignment: DEFAULT_ALIGNMENT,
            alignment_set: false,
            metadata: Vec::new(),
            tensors: Vec::new(),
        }
    }

    /// Sets the data alignment and writes it as the first metadata pair,
    /// `general.alignment` (u32), as gguf-py does when an alignment is given.
    pub fn with_alignment(mut self, alignment: u32) -> Result<Self, GgufWriteError> {
        if !alignment.is_power_of_two() {
            return Err(GgufWriteError::BadAlignment(alignment));
        }
        self.alignment = alignment;
        self.alignment_set = true;
        Ok(self)
    }

    /// The data alignment in bytes.
    pub fn alignment(&self) -> u32 {
        self.alignment
    }

    /// Adds a metadata pair (checked: unique key, homogeneous arrays).
    pub fn add_metadata(
        &mut self,
        key: impl Into<String>,
        value: GgufValue,
    ) -> Result<(), GgufWriteError> {
        let key = key.into();
        if key == ALIGNMENT_KEY {
            return Err(GgufWriteError::AlignmentAsMetadata);
        }
        if self.metadata.iter().any(|(k, _)| *k == key) {
            return Err(GgufWriteError::DuplicateKey(key));
        }
        value.check(&key)?;
        self.metadata.push((key, value));
        Ok(())
    }

    /// Adds a tensor (its name must be new).
    pub fn add_tensor(&mut self, tensor: GgufTensor) -> Result<(), GgufWriteError> {
        if self.tensors.iter().any(|t| t.name == tensor.name) {
            return Err(GgufWriteError::DuplicateTensor(tensor.name));
        }
        self.tensors.push(tensor);
        Ok(())
    }

    /// The tensors added so far.
    pub fn tensors(&self) -> &[GgufTensor] {
        &self.tensors
    }

    /// The header: everything before the data section, padded to the alignment.
    fn header(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(VERSION.to_le_bytes());
        // usize fits in u64.
        out.extend((self.tensors.len() as u64).to_le_bytes());
        let kv_count = self.metadata.len() + usize::from(self.alignment_set);
        out.extend((kv_count as u64).to_le_bytes());
        if self.alignment_set {
            put_str(&mut out, ALIGNMENT_KEY);
            out.extend(GgufType::U32.code().to_le_bytes());
            out.extend(self.alignment.to_le_bytes());
        }
        for (key, value) in &self.metadata {
            put_str(&mut out, key);
            out.extend(value.gguf_type().code().to_le_bytes());
            value.put(&mut out);
        }
        let mut offset = 0u64;
        for tensor in &self.tensors {
            put_str(&mut out, &tensor.name);
            // At most MAX_DIMS dimensions (checked on construction).
            out.extend((tensor.shape.len() as u32).to_le_bytes());
            for &dim in tensor.shape.iter().rev() {
                // usize fits in u64.
                out.extend((dim as u64).to_le_bytes());
            }
            // Checked on construction: every stored dtype has an id.
            let id = ggml_type_id(tensor.dtype).unwrap_or(u32::MAX);
            out.extend(id.to_le_bytes());
            out.extend(offset.to_le_bytes());
            offset += self.padded(tensor.bytes.len()) as u64;
        }
        let header_len = self.padded(out.len());
        out.resize(header_len, 0);
        out
    }

    /// `len` rounded up to the alignment.
    fn padded(&self, len: usize) -> usize {
        // The alignment is a power of two no larger than u32::MAX.
        let a = self.alignment as usize;
        len.div_ceil(a) * a
    }

    /// Writes the whole file to `out`.
    pub fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(&self.header())?;
        let zeros = vec![0u8; self.alignment as usize];
        for tensor in &self.tensors {
            out.write_all(&tensor.bytes)?;
            let pad = self.padded(tensor.bytes.len()) - tensor.bytes.len();
            out.write_all(&zeros[..pad])?;
        }
        Ok(())
    }

    /// The whole file as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.write_to(&mut out);
        out
    }

    /// Writes the file to `path` atomically: into a temporary file in the same folder, then
    /// renamed over `path`, so a reader never sees half a file. Refuses a `path` that is one
    /// of `inputs` (the files the data came from).
    pub fn write_atomic(&self, path: &Path, inputs: &[PathBuf]) -> Result<(), GgufWriteError> {
        if let Ok(destination) = path.canonicalize()
            && inputs
                .iter()
                .any(|input| input.canonicalize().is_ok_and(|i| i == destination))
        {
            return Err(GgufWriteError::WouldOverwriteInput {
                path: path.to_path_buf(),
            });
        }
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let io = |source| GgufWriteError::Io {
            path: path.to_path_buf(),
            source,
        };
        let temp = tempfile::NamedTempFile::new_in(&folder).map_err(io)?;
        {
            let mut buffered = std::io::BufWriter::new(temp.as_file());
            self.write_to(&mut buffered).map_err(io)?;
            buffered.flush().map_err(io)?;
        }
        temp.as_file().sync_all().map_err(io)?;
        temp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::Cancel;
    use crate::tensor::Model;
    use std::path::Path;

    fn q8_0_block(scale: f32, codes: [i8; 32]) -> Vec<u8> {
        let mut b = f16::from_f32(scale).to_le_bytes().to_vec();
        b.extend(codes.iter().map(|&c| c.to_le_bytes()[0]));
        b
    }

    #[test]
    fn type_ids_are_ggml_s() {
        // ggml.h enum ggml_type: F32 0, F16 1, Q4_0 2, Q8_0 8, Q4_K 12, Q6_K 14, I8 24, BF16 30.
        assert_eq!(ggml_type_id(DType::F32), Some(0));
        assert_eq!(ggml_type_id(DType::F16), Some(1));
        assert_eq!(ggml_type_id(DType::Q4_0), Some(2));
        assert_eq!(ggml_type_id(DType::Q8_0), Some(8));
        assert_eq!(ggml_type_id(DType::Q4K), Some(12));
        assert_eq!(ggml_type_id(DType::Q6K), Some(14));
        assert_eq!(ggml_type_id(DType::I8), Some(24));
        assert_eq!(ggml_type_id(DType::BF16), Some(30));
        assert_eq!(ggml_type_id(DType::F8E4M3), None);
        for d in DType::ALL.into_iter().filter(DType::is_block) {
            assert!(ggml_type_id(d).is_some(), "{d}");
        }
    }

    #[test]
    fn header_bytes_by_hand() {
        // One u8 KV and one 2-element F32 tensor, default alignment 32.
        let mut w = GgufWriter::new();
        w.add_metadata("k", GgufValue::U8(7)).unwrap();
        w.add_tensor(GgufTensor::from_f32("t", vec![2], &[1.0, 2.0]).unwrap())
            .unwrap();
        let bytes = w.to_bytes();
        let mut expected = b"GGUF".to_vec();
        expected.extend(3u32.to_le_bytes());
        expected.extend(1u64.to_le_bytes()); // tensors
        expected.extend(1u64.to_le_bytes()); // KVs
        expected.extend(1u64.to_le_bytes());
        expected.push(b'k');
        expected.extend(0u32.to_le_bytes()); // type u8
        expected.push(7);
        expected.extend(1u64.to_le_bytes());
        expected.push(b't');
        expected.extend(1u32.to_le_bytes()); // n_dims
        expected.extend(2u64.to_le_bytes());
        expected.extend(0u32.to_le_bytes()); // F32
        expected.extend(0u64.to_le_bytes()); // offset
        // 24 + 14 (KV) + 33 (tensor info) = 71 header bytes, padded to 96.
        assert_eq!(expected.len(), 71);
        expected.resize(96, 0);
        expected.extend(1.0f32.to_le_bytes());
        expected.extend(2.0f32.to_le_bytes());
        expected.resize(128, 0); // 8 data bytes padded to 32
        assert_eq!(bytes, expected);
    }

    #[test]
    fn round_trips_through_the_loader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        let values: Vec<f32> = (0..64).map(|i| (i as f32 - 31.5) / 7.0).collect();
        let mut codes = [0i8; 32];
        for (j, c) in codes.iter_mut().enumerate() {
            *c = j as i8 - 16;
        }
        let mut q8 = q8_0_block(0.25, codes);
        q8.extend(q8_0_block(-0.5, codes));
        let mut w = GgufWriter::new().with_alignment(64).unwrap();
        w.add_metadata("general.architecture", GgufValue::string("llama"))
            .unwrap();
        w.add_metadata("llama.attention.head_count", GgufValue::U32(4))
            .unwrap();
        w.add_metadata("a.strings", GgufValue::strings(["x", "yz"]))
            .unwrap();
        w.add_metadata(
            "a.nested",
            GgufValue::Array {
                item_type: GgufType::Array,
                items: vec![GgufValue::Array {
                    item_type: GgufType::I16,
                    items: vec![GgufValue::I16(-3)],
                }],
            },
        )
        .unwrap();
        w.add_tensor(GgufTensor::from_f32("f32", vec![4, 16], &values).unwrap())
            .unwrap();
        w.add_tensor(GgufTensor::from_f16("f16", vec![2, 32], &values).unwrap())
            .unwrap();
        w.add_tensor(GgufTensor::from_bf16("bf16", vec![64], &values).unwrap())
            .unwrap();
        w.add_tensor(GgufTensor::from_raw("q8", vec![2, 32], DType::Q8_0, q8).unwrap())
            .unwrap();
        w.write_atomic(&path, &[]).unwrap();

        let model = Model::open(&path).unwrap();
        let never = Cancel::never();
        let names: Vec<&str> = model.tensors().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["f32", "f16", "bf16", "q8"]);
        assert_eq!(model.tensors()[0].shape, vec![4, 16]);
        assert_eq!(model.values_f32(0, &never).unwrap(), values);
        let f16_back = model.values_f32(1, &never).unwrap();
        let bf16_back = model.values_f32(2, &never).unwrap();
        for (i, &v) in values.iter().enumerate() {
            assert_eq!(f16_back[i], f16::from_f32(v).to_f32());
            assert_eq!(bf16_back[i], bf16::from_f32(v).to_f32());
        }
        let q = model.values_f32(3, &never).unwrap();
        // Block 0: (j - 16) * 0.25; block 1: (j - 16) * -0.5.
        assert_eq!(q[0], -4.0);
        assert_eq!(q[31], 3.75);
        assert_eq!(q[32], 8.0);
        assert_eq!(q[63], -7.5);
        let meta = model.metadata();
        assert_eq!(meta[0], ("general.alignment".into(), "64".into()));
        assert_eq!(meta[1], ("general.architecture".into(), "llama".into()));
        assert_eq!(meta[2].1, "4");
        assert_eq!(meta[3].1, "[x, yz]");
        assert_eq!(meta[4].1, "[[-3]]");
        // Every tensor starts on a 64-byte boundary of the file.
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() % 64, 0);
    }

    #[test]
    fn bad_input_gives_typed_errors() {
        assert!(matches!(
            GgufTensor::from_f32("t", vec![3], &[1.0]),
            Err(GgufWriteError::ValueCount {
                expected: 3,
                actual: 1,
                ..
            })
        ));
        assert!(matches!(
            GgufTensor::from_raw("t", vec![2, 16], DType::Q8_0, vec![0; 34]),
            Err(GgufWriteError::PartialBlock { row: 16, .. })
        ));
        assert!(matches!(
            GgufTensor::from_raw("t", vec![32], DType::Q8_0, vec![0; 33]),
            Err(GgufWriteError::SizeMismatch {
                expected: 34,
                actual: 33,
                ..
            })
        ));
        assert!(matches!(
            GgufTensor::from_raw("t", vec![4], DType::F8E4M3, vec![0; 4]),
            Err(GgufWriteError::NoGgmlType { .. })
        ));
        assert!(matches!(
            GgufTensor::from_f32("t", vec![1, 1, 1, 1, 1], &[0.0]),
            Err(GgufWriteError::TooManyDims { dims: 5, .. })
        ));
        assert!(matches!(
            GgufTensor::from_f32("x".repeat(64), vec![1], &[0.0]),
            Err(GgufWriteError::NameTooLong(_))
        ));
        assert!(matches!(
            GgufWriter::new().with_alignment(48),
            Err(GgufWriteError::BadAlignment(48))
        ));
        let mut w = GgufWriter::new();
        w.add_metadata("a", GgufValue::U8(1)).unwrap();
        assert!(matches!(
            w.add_metadata("a", GgufValue::U8(2)),
            Err(GgufWriteError::DuplicateKey(_))
        ));
        assert!(matches!(
            w.add_metadata("general.alignment", GgufValue::U32(64)),
            Err(GgufWriteError::AlignmentAsMetadata)
        ));
        let mixed = GgufValue::Array {
            item_type: GgufType::U8,
            items: vec![GgufValue::U8(1), GgufValue::I8(1)],
        };
        assert!(matches!(
            w.add_metadata("m", mixed),
            Err(GgufWriteError::MixedArray {
                expected: GgufType::U8,
                found: GgufType::I8,
                ..
            })
        ));
        let t = GgufTensor::from_f32("t", vec![1], &[0.0]).unwrap();
        w.add_tensor(t.clone()).unwrap();
        assert!(matches!(
            w.add_tensor(t),
            Err(GgufWriteError::DuplicateTensor(_))
        ));
    }

    /// Pseudo-random bytes below 0x3C: every f16 field of a block (its high byte is below
    /// 0x3C) is then finite and below 1, so the fixture decodes without NaN or Inf.
    fn block_bytes(len: usize, seed: u32) -> Vec<u8> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                // The high byte modulo 0x3C fits in u8.
                ((state >> 24) % 0x3C) as u8
            })
            .collect()
    }

    /// The file committed as tests/fixtures/gguf_writer/sample.gguf: every metadata value
    /// type and every tensor type the writer can store.
    fn sample_writer() -> GgufWriter {
        let mut w = GgufWriter::new().with_alignment(64).unwrap();
        let kvs = [
            ("general.architecture", GgufValue::string("llama")),
            ("t.u8", GgufValue::U8(200)),
            ("t.i8", GgufValue::I8(-100)),
            ("t.u16", GgufValue::U16(60000)),
            ("t.i16", GgufValue::I16(-30000)),
            ("t.u32", GgufValue::U32(4_000_000_000)),
            ("t.i32", GgufValue::I32(-2_000_000_000)),
            ("t.f32", GgufValue::F32(0.1)),
            ("t.bool", GgufValue::Bool(true)),
            ("t.string", GgufValue::string("héllo")),
            ("t.u64", GgufValue::U64(u64::MAX)),
            ("t.i64", GgufValue::I64(i64::MIN)),
            ("t.f64", GgufValue::F64(-0.1)),
            ("t.strings", GgufValue::strings(["a", "bc", ""])),
            (
                "t.f32s",
                GgufValue::Array {
                    item_type: GgufType::F32,
                    items: vec![GgufValue::F32(1.5), GgufValue::F32(-0.25)],
                },
            ),
            (
                "t.empty",
                GgufValue::Array {
                    item_type: GgufType::I32,
                    items: vec![],
                },
            ),
            (
                "t.nested",
                GgufValue::Array {
                    item_type: GgufType::Array,
                    items: vec![
                        GgufValue::Array {
                            item_type: GgufType::U16,
                            items: vec![GgufValue::U16(1), GgufValue::U16(2)],
                        },
                        GgufValue::Array {
                            item_type: GgufType::U16,
                            items: vec![GgufValue::U16(3)],
                        },
                    ],
                },
            ),
        ];
        for (key, value) in kvs {
            w.add_metadata(key, value).unwrap();
        }
        let values: Vec<f32> = (0..96).map(|i| (i as f32 - 47.5) / 9.0).collect();
        w.add_tensor(GgufTensor::from_f32("f32", vec![2, 3, 16], &values).unwrap())
            .unwrap();
        w.add_tensor(GgufTensor::from_f16("f16", vec![96], &values).unwrap())
            .unwrap();
        w.add_tensor(GgufTensor::from_bf16("bf16", vec![3, 32], &values).unwrap())
            .unwrap();
        let codes: Vec<u8> = (0..16u8).map(|c| c.wrapping_mul(37)).collect();
        w.add_tensor(GgufTensor::from_raw("i8", vec![4, 4], DType::I8, codes).unwrap())
            .unwrap();
        // The block types the loader decodes (gguf-py's dequantized values are compared with
        // the loader's below); the listed-only ones (IQ*, TQ*, ...) have no values to compare.
        let decodable_blocks = DType::ALL
            .into_iter()
            .filter(|d| d.is_block() && d.is_decodable());
        for (i, dtype) in decodable_blocks.enumerate() {
            let Packing::Block { elements, bytes } = dtype.packing() else {
                continue;
            };
            let name = format!("blocks.{}", dtype.name());
            let data = block_bytes(2 * bytes, i as u32 + 1);
            let t = GgufTensor::from_raw(name, vec![2, elements], dtype, data).unwrap();
            w.add_tensor(t).unwrap();
        }
        w
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/gguf_writer")
            .join(name)
    }

    #[test]
    fn gguf_py_reads_what_the_writer_wrote() {
        let bytes = sample_writer().to_bytes();
        if std::env::var_os("QUANTSCOPE_BLESS").is_some() {
            std::fs::write(fixture("sample.gguf"), &bytes).unwrap();
        }
        // The committed file is the one scripts/gguf_py_readback.py read.
        let committed = std::fs::read(fixture("sample.gguf")).unwrap();
        assert!(
            bytes == committed,
            "the writer's bytes changed: rerun with QUANTSCOPE_BLESS=1, then the script"
        );
        let text = std::fs::read_to_string(fixture("sample.gguf_py.json")).unwrap();
        let seen: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(seen["alignment"], 64);
        let fields = seen["fields"].as_array().unwrap();
        let field = |key: &str| {
            fields
                .iter()
                .find(|f| f["key"] == key)
                .unwrap_or_else(|| panic!("gguf-py sees {key}"))
        };
        let expect = |key: &str, types: &[&str], value: serde_json::Value| {
            let f = field(key);
            assert_eq!(f["types"], serde_json::json!(types), "{key}");
            assert_eq!(f["value"], value, "{key}");
        };
        use serde_json::json;
        expect("general.alignment", &["UINT32"], json!(64));
        expect("general.architecture", &["STRING"], json!("llama"));
        expect("t.u8", &["UINT8"], json!(200));
        expect("t.i8", &["INT8"], json!(-100));
        expect("t.u16", &["UINT16"], json!(60000));
        expect("t.i16", &["INT16"], json!(-30000));
        expect("t.u32", &["UINT32"], json!(4_000_000_000u32));
        expect("t.i32", &["INT32"], json!(-2_000_000_000));
        expect("t.f32", &["FLOAT32"], json!(f64::from(0.1f32)));
        expect("t.bool", &["BOOL"], json!(true));
        expect("t.string", &["STRING"], json!("héllo"));
        expect("t.u64", &["UINT64"], json!(u64::MAX));
        expect("t.i64", &["INT64"], json!(i64::MIN));
        expect("t.f64", &["FLOAT64"], json!(-0.1));
        expect("t.strings", &["ARRAY", "STRING"], json!(["a", "bc", ""]));
        expect("t.f32s", &["ARRAY", "FLOAT32"], json!([1.5, -0.25]));
        expect("t.empty", &["ARRAY"], json!([]));
        // gguf-py flattens nested arrays.
        expect("t.nested", &["ARRAY", "ARRAY", "UINT16"], json!([1, 2, 3]));
        assert_eq!(fields.len(), 18);

        // Tensors: names, types, dims innermost-first, aligned offsets, and gguf-py's own
        // dequantization equal to the loader's, bit for bit.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sample.gguf");
        std::fs::write(&path, &bytes).unwrap();
        let model = Model::open(&path).unwrap();
        let tensors = seen["tensors"].as_array().unwrap();
        assert_eq!(tensors.len(), model.tensors().len());
        for (t, info) in tensors.iter().zip(model.tensors()) {
            assert_eq!(t["name"], info.name.as_str());
            assert_eq!(t["type"], info.dtype.name(), "{}", info.name);
            let dims: Vec<usize> = info.shape.iter().rev().copied().collect();
            assert_eq!(t["dims_innermost_first"], json!(dims), "{}", info.name);
            assert_eq!(t["data_offset"].as_u64().unwrap() % 64, 0);
            assert_eq!(t["n_bytes"], info.size_bytes);
            let index = model.find(&info.name).unwrap();
            let ours: Vec<u32> = model
                .values_f32(index, &Cancel::never())
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect();
            assert_eq!(t["values_f32_bits"], json!(ours), "{}", info.name);
        }
    }

    #[test]
    fn never_writes_over_an_input() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.gguf");
        std::fs::write(&input, b"original").unwrap();
        let w = GgufWriter::new();
        let e = w.write_atomic(&input, std::slice::from_ref(&input));
        assert!(matches!(e, Err(GgufWriteError::WouldOverwriteInput { .. })));
        assert_eq!(std::fs::read(&input).unwrap(), b"original");
        // Another destination in the same folder is fine and leaves no temporary file behind.
        let out = dir.path().join("out.gguf");
        w.write_atomic(&out, std::slice::from_ref(&input)).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
