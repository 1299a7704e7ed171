//! Tensors in model files: dtypes, metadata, memory-mapped loaders, decoding to f32.
//!
//! [`Model::open`] reads safetensors (single, sharded through `model.safetensors.index.json`,
//! or a folder), GGUF, `.npy` and `.npz` files. Opening reads headers only (files are mapped
//! read-only and never written); [`Model::values_f32`] decodes a tensor on demand, in parallel
//! chunks, and [`Model::value_f32_at`] decodes a single element. [`imatrix`] reads llama.cpp
//! importance matrices (GGUF and the legacy `imatrix.dat`).

mod decode;
mod dtype;
mod error;
pub(crate) mod fp8;
mod gguf;
pub(crate) mod gguf_blocks;
mod gguf_write;
pub mod imatrix;
mod npy;
mod safetensors;
mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

pub use dtype::{DType, Packing};
pub use error::LoadError;
pub use gguf_write::{GgufTensor, GgufType, GgufValue, GgufWriteError, GgufWriter, ggml_type_id};

use crate::cancel::Cancel;
use decode::{DecodeFailure, Layout};
use store::{LoadedTensor, Part, Store};

/// What a model file says about one tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's name, unique within the model.
    pub name: String,
    /// The stored element type.
    pub dtype: DType,
    /// Row-major shape (GGUF's innermost-first dims are reversed into this order).
    pub shape: Vec<usize>,
    /// Stored size in bytes.
    pub size_bytes: u64,
    /// Index into [`Model::files`] of the file holding the tensor (0 for in-memory models,
    /// which have no files).
    pub file_index: usize,
}

impl TensorInfo {
    /// The number of elements (1 for a 0-d scalar, 0 when any dimension is 0).
    pub fn numel(&self) -> u64 {
        self.shape
            .iter()
            .fold(1u64, |acc, &d| acc.saturating_mul(d as u64))
    }
}

/// A tensor held in memory: the input of [`Model::from_tensors`].
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedTensor {
    /// The tensor's name.
    pub name: String,
    /// The element type of `bytes`.
    pub dtype: DType,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Little-endian element bytes in row-major order.
    pub bytes: Vec<u8>,
}

impl OwnedTensor {
    /// An F32 tensor holding `values` (row-major).
    pub fn from_f32(name: impl Into<String>, shape: Vec<usize>, values: &[f32]) -> Self {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Self {
            name: name.into(),
            dtype: DType::F32,
            shape,
            bytes,
        }
    }

    /// An F16 tensor from f32 `values`, rounded to nearest, ties to even (via `half`).
    pub fn from_f16(name: impl Into<String>, shape: Vec<usize>, values: &[f32]) -> Self {
        let mut halves = vec![f16::ZERO; values.len()];
        halves.convert_from_f32_slice(values);
        let bytes = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
        Self {
            name: name.into(),
            dtype: DType::F16,
            shape,
            bytes,
        }
    }

    /// A BF16 tensor from f32 `values`, rounded to nearest, ties to even (via `half`).
    pub fn from_bf16(name: impl Into<String>, shape: Vec<usize>, values: &[f32]) -> Self {
        let mut halves = vec![bf16::ZERO; values.len()];
        halves.convert_from_f32_slice(values);
        let bytes = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
        Self {
            name: name.into(),
            dtype: DType::BF16,
            shape,
            bytes,
        }
    }
}

/// Where one tensor's bytes are.
#[derive(Debug)]
struct Slot {
    store: usize,
    offset: usize,
    len: usize,
    layout: Layout,
}

/// A read-only set of named tensors from one or more files (or from memory).
///
/// `Model` is `Send + Sync`: it holds memory maps and owned buffers and never mutates them.
#[derive(Debug)]
pub struct Model {
    name: String,
    files: Vec<PathBuf>,
    tensors: Vec<TensorInfo>,
    slots: Vec<Slot>,
    stores: Vec<Store>,
    by_name: HashMap<String, usize>,
    metadata: Vec<(String, String)>,
}

/// The file formats [`Model::open`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Safetensors,
    SafetensorsIndex,
    Gguf,
    Npy,
    Npz,
}

impl Model {
    /// Opens a model: a `.safetensors` file, a `*.safetensors.index.json` (sharded model), a
    /// folder (its index file, else every `*.safetensors` in it in name order), a `.gguf`, a
    /// `.npy` or a `.npz` file. Unknown extensions are recognised by their magic bytes.
    pub fn open(path: &Path) -> Result<Model, LoadError> {
        if path.is_dir() {
            return Self::open_folder(path);
        }
        match detect_format(path)? {
            Format::SafetensorsIndex => Self::open_index(path),
            format => {
                let part = load_part(path, format)?;
                Self::assemble(display_name(path), vec![(path.to_path_buf(), part)])
            }
        }
    }

    /// Opens several files as one model; tensor names must be unique across them.
    pub fn open_many(paths: &[PathBuf]) -> Result<Model, LoadError> {
        let mut parts = Vec::with_capacity(paths.len());
        for path in paths {
            let format = match detect_format(path)? {
                Format::SafetensorsIndex => {
                    return Err(LoadError::Unsupported {
                        path: path.clone(),
                        message: "an index file cannot be combined with other files; open it alone"
                            .into(),
                    });
                }
                format => format,
            };
            parts.push((path.clone(), load_part(path, format)?));
        }
        let name = match paths {
            [one] => display_name(one),
            _ => paths
                .first()
                .and_then(|p| p.parent())
                .map(display_name)
                .unwrap_or_else(|| "model".into()),
        };
        Self::assemble(name, parts)
    }

    /// Opens one model file whose bytes are already in memory, exactly as [`Model::open`] opens
    /// that file from disk: the format comes from `file_name`'s extension, else from the magic
    /// bytes; the same parser validates it; error messages name `file_name`. An index file
    /// (`*.index.json`) names other files and cannot be opened this way.
    pub fn from_file_bytes(file_name: &str, bytes: Vec<u8>) -> Result<Model, LoadError> {
        let path = PathBuf::from(file_name);
        let format = match format_from_name(&path) {
            Some(format) => format,
            None => format_from_magic(&path, bytes.get(..9).unwrap_or(&bytes))?,
        };
        let part = match format {
            Format::Safetensors => store::part_from(safetensors::parse(&path, &bytes)?, bytes),
            Format::Gguf => store::part_from(gguf::parse(&path, &bytes)?, bytes),
            Format::Npy => npy::npy_part(&path, Store::Owned(bytes))?,
            Format::Npz => npy::npz_part(&path, Store::Owned(bytes))?,
            Format::SafetensorsIndex => {
                return Err(LoadError::Unsupported {
                    path,
                    message: "an index file names other files; open it from disk".into(),
                });
            }
        };
        Self::assemble(display_name(&path), vec![(path, part)])
    }

    /// An in-memory model (the app's built-in demo, tests). Byte sizes must match dtype and
    /// shape, and names must be unique.
    pub fn from_tensors(
        name: impl Into<String>,
        tensors: Vec<OwnedTensor>,
    ) -> Result<Model, LoadError> {
        let name = name.into();
        let path = PathBuf::from(&name);
        let mut loaded = Vec::with_capacity(tensors.len());
        let mut stores = Vec::with_capacity(tensors.len());
        for (i, t) in tensors.into_iter().enumerate() {
            let numel = t
                .shape
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
            let expected = numel.and_then(|n| t.dtype.size_bytes_for(n));
            if expected != Some(t.bytes.len() as u64) {
                return Err(LoadError::SizeMismatch {
                    path,
                    tensor: t.name,
                    shape: t.shape,
                    expected: expected.unwrap_or(0),
                    actual: t.bytes.len() as u64,
                });
            }
            loaded.push(LoadedTensor {
                name: t.name,
                dtype: t.dtype,
                shape: t.shape,
                store: i,
                offset: 0,
                len: t.bytes.len(),
                layout: Layout::default(),
            });
            stores.push(Store::Owned(t.bytes));
        }
        let part = Part {
            tensors: loaded,
            stores,
            metadata: Vec::new(),
        };
        let mut model = Self::assemble(name, vec![(path, part)])?;
        model.files.clear();
        Ok(model)
    }

    /// An in-memory `.npz` archive (the app's built-in activation batches), named `name`.
    pub fn from_npz_bytes(name: &str, bytes: Vec<u8>) -> Result<Model, LoadError> {
        let path = PathBuf::from(name);
        let part = npy::load_npz_bytes(&path, bytes)?;
        let mut model = Self::assemble(name.to_string(), vec![(path, part)])?;
        model.files.clear();
        Ok(model)
    }

    /// The model's display name (file stem, folder name, or the in-memory name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The files the model was read from (empty for in-memory models).
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// All tensors, in file order (files in the order given, tensors by position in the file).
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The index of the tensor called `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// File-level metadata as (key, value-as-text) pairs: GGUF key/value pairs (in file order)
    /// or safetensors `__metadata__` (sorted by key).
    pub fn metadata(&self) -> &[(String, String)] {
        &self.metadata
    }

    fn info(&self, index: usize) -> Result<(&TensorInfo, &Slot), LoadError> {
        match (self.tensors.get(index), self.slots.get(index)) {
            (Some(info), Some(slot)) => Ok((info, slot)),
            _ => Err(LoadError::NoSuchTensor {
                index,
                count: self.tensors.len(),
            }),
        }
    }

    fn path_of(&self, info: &TensorInfo) -> PathBuf {
        self.files
            .get(info.file_index)
            .cloned()
            .unwrap_or_else(|| PathBuf::from(&self.name))
    }

    /// The stored bytes of tensor `index`, exactly as in the file (for bit views). For `.npy`
    /// data stored big-endian or in Fortran order these are in that stored order.
    pub fn raw_bytes(&self, index: usize) -> Result<&[u8], LoadError> {
        let (info, slot) = self.info(index)?;
        self.stores
            .get(slot.store)
            .and_then(|s| {
                s.bytes()
                    .get(slot.offset..slot.offset.checked_add(slot.len)?)
            })
            .ok_or_else(|| LoadError::Malformed {
                path: self.path_of(info),
                message: format!("tensor '{}' lies outside its buffer", info.name),
            })
    }

    /// Every element of tensor `index` as f32, in row-major order, decoded in parallel chunks
    /// (checking `cancel` between chunks and reporting progress in elements to it).
    ///
    /// Integers decode to their values (I32/U32/I64/U64 round to the nearest f32 beyond 2^24),
    /// BOOL to 0 or 1, F8_E8M0 to 2^(e - 127), F4 (E2M1, first element in the low nibble),
    /// F6_E2M3/F6_E3M2 (four elements in three bytes, a little-endian bit stream), GGUF blocks
    /// as llama.cpp's `dequantize_row_*`.
    pub fn values_f32(&self, index: usize, cancel: &Cancel) -> Result<Vec<f32>, LoadError> {
        let (info, slot) = self.info(index)?;
        let numel = info.numel();
        let count = usize::try_from(numel).map_err(|_| LoadError::TooLarge {
            tensor: info.name.clone(),
            numel,
        })?;
        let bytes = self.raw_bytes(index)?;
        let store = self.stores.get(slot.store);
        let release = |done: &[u8]| {
            if let Some(store) = store {
                store.release(done);
            }
        };
        decode::decode_all_releasing(
            info.dtype,
            bytes,
            count,
            &slot.layout,
            &info.shape,
            cancel,
            &release,
        )
        .map_err(|f| self.failure(info, f))
    }

    /// Element `flat` (row-major index) of tensor `index`, decoding only what it needs (one
    /// element, or one block for GGUF block formats).
    pub fn value_f32_at(&self, index: usize, flat: u64) -> Result<f32, LoadError> {
        let (info, slot) = self.info(index)?;
        let numel = info.numel();
        if flat >= numel {
            return Err(LoadError::NoSuchElement {
                tensor: info.name.clone(),
                flat,
                numel,
            });
        }
        let stored = if slot.layout.fortran_order {
            decode::fortran_position(flat, &info.shape)
        } else {
            flat
        };
        let position = usize::try_from(stored).map_err(|_| LoadError::TooLarge {
            tensor: info.name.clone(),
            numel,
        })?;
        let bytes = self.raw_bytes(index)?;
        decode::decode_one(info.dtype, bytes, position, &slot.layout)
            .map_err(|f| self.failure(info, f))
    }

    fn failure(&self, info: &TensorInfo, failure: DecodeFailure) -> LoadError {
        match failure {
            DecodeFailure::Cancelled => LoadError::Cancelled,
            DecodeFailure::Unsupported(message) => LoadError::Unsupported {
                path: self.path_of(info),
                message: format!("tensor '{}': {message}", info.name),
            },
            DecodeFailure::Corrupt(message) => LoadError::Malformed {
                path: self.path_of(info),
                message: format!("tensor '{}': {message}", info.name),
            },
        }
    }

    fn open_folder(dir: &Path) -> Result<Model, LoadError> {
        let io = |source| LoadError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let is_index = |p: &PathBuf| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".safetensors.index.json"))
        };
        if let Some(index) = files.iter().find(|p| is_index(p)) {
            let mut model = Self::open_index(index)?;
            model.name = display_name(dir);
            return Ok(model);
        }
        let shards: Vec<PathBuf> = files
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect();
        if shards.is_empty() {
            return Err(LoadError::Malformed {
                path: dir.to_path_buf(),
                message: "folder holds no *.safetensors files and no *.safetensors.index.json"
                    .into(),
            });
        }
        let mut model = Self::open_many(&shards)?;
        model.name = display_name(dir);
        Ok(model)
    }

    fn open_index(index: &Path) -> Result<Model, LoadError> {
        let io = |source| LoadError::Io {
            path: index.to_path_buf(),
            source,
        };
        let file = store::open_regular_file(index)?;
        let len = file.metadata().map_err(io)?.len();
        // Real index files are kilobytes to a few megabytes; refuse to read a huge one.
        if len > MAX_INDEX_LEN {
            return Err(LoadError::Malformed {
                path: index.to_path_buf(),
                message: format!(
                    "index file of {len} bytes is over the {MAX_INDEX_LEN}-byte limit"
                ),
            });
        }
        let mut text = String::new();
        {
            use std::io::Read;
            // `take` bounds the read even if the file grows after the length check.
            file.take(MAX_INDEX_LEN)
                .read_to_string(&mut text)
                .map_err(io)?;
        }
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| LoadError::BadJson {
                path: index.to_path_buf(),
                message: e.to_string(),
            })?;
        let malformed = |message: String| LoadError::Malformed {
            path: index.to_path_buf(),
            message,
        };
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| malformed("no \"weight_map\" object".into()))?;
        let mut wanted: Vec<(String, String)> = Vec::with_capacity(map.len());
        for (tensor, file) in map {
            let file = file.as_str().ok_or_else(|| {
                malformed(format!("weight_map entry for '{tensor}' is not a string"))
            })?;
            wanted.push((tensor.clone(), file.to_string()));
        }
        let mut shard_names: Vec<String> = wanted.iter().map(|(_, f)| f.clone()).collect();
        shard_names.sort();
        shard_names.dedup();
        let dir = index.parent().unwrap_or(Path::new("."));
        // Shards live beside the index: a name that is absolute or climbs out with `..` could
        // make a downloaded index open any file on the machine.
        for file in &shard_names {
            let plain = Path::new(file)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !plain || file.is_empty() {
                return Err(malformed(format!(
                    "weight_map names shard '{file}', which is not a relative path inside the index's folder"
                )));
            }
        }
        let shards: Vec<PathBuf> = shard_names.iter().map(|f| dir.join(f)).collect();
        let mut model = Self::open_many(&shards)?;
        for (tensor, file) in &wanted {
            let found = model
                .find(tensor)
                .and_then(|i| model.tensors.get(i))
                .and_then(|t| model.files.get(t.file_index))
                .is_some_and(|p| *p == dir.join(file));
            if !found {
                return Err(malformed(format!(
                    "weight_map places tensor '{tensor}' in '{file}', but that file does not hold it"
                )));
            }
        }
        let stem = index
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".safetensors.index.json"))
            .map(str::to_string);
        model.name = match (dir.file_name(), stem.as_deref()) {
            (Some(d), Some("model")) => d.to_string_lossy().into_owned(),
            (_, Some(s)) => s.to_string(),
            _ => display_name(index),
        };
        Ok(model)
    }

    fn assemble(name: String, parts: Vec<(PathBuf, Part)>) -> Result<Model, LoadError> {
        let mut model = Model {
            name,
            files: Vec::with_capacity(parts.len()),
            tensors: Vec::new(),
            slots: Vec::new(),
            stores: Vec::new(),
            by_name: HashMap::new(),
            metadata: Vec::new(),
        };
        for (file_index, (path, part)) in parts.into_iter().enumerate() {
            let store_base = model.stores.len();
            for t in part.tensors {
                if let Some(&first) = model.by_name.get(&t.name) {
                    let first_path = model
                        .tensors
                        .get(first)
                        .and_then(|f| model.files.get(f.file_index))
                        .cloned()
                        .unwrap_or_else(|| path.clone());
                    return Err(LoadError::DuplicateName {
                        name: t.name,
                        first: first_path,
                        second: path,
                    });
                }
                model.by_name.insert(t.name.clone(), model.tensors.len());
                model.tensors.push(TensorInfo {
                    name: t.name,
                    dtype: t.dtype,
                    shape: t.shape,
                    size_bytes: t.len as u64,
                    file_index,
                });
                model.slots.push(Slot {
                    store: store_base + t.store,
                    offset: t.offset,
                    len: t.len,
                    layout: t.layout,
                });
            }
            model.stores.extend(part.stores);
            model.metadata.extend(part.metadata);
            model.files.push(path);
        }
        Ok(model)
    }
}

fn display_name(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let stem = path.file_stem().map(|n| n.to_string_lossy().into_owned());
    let chosen = if path.is_dir() { name } else { stem.or(name) };
    chosen.unwrap_or_else(|| path.display().to_string())
}

fn load_part(path: &Path, format: Format) -> Result<Part, LoadError> {
    match format {
        Format::Safetensors => safetensors::load(path),
        Format::Gguf => gguf::load(path),
        Format::Npy => npy::load_npy(path),
        Format::Npz => npy::load_npz(path),
        Format::SafetensorsIndex => Err(LoadError::Unsupported {
            path: path.to_path_buf(),
            message: "index files are opened with Model::open".into(),
        }),
    }
}

/// The longest `*.safetensors.index.json` file [`Model::open`] reads (100 MB, the limit the
/// safetensors format sets for a header).
const MAX_INDEX_LEN: u64 = 100_000_000;

/// The format of `path` by its name alone, if the name says.
fn format_from_name(path: &Path) -> Option<Format> {
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if file_name.ends_with(".index.json") {
        return Some(Format::SafetensorsIndex);
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => Some(Format::Safetensors),
        Some("gguf") => Some(Format::Gguf),
        Some("npy") => Some(Format::Npy),
        Some("npz") => Some(Format::Npz),
        _ => None,
    }
}

/// The format whose magic bytes start `head` (up to the first 9 bytes of the file).
fn format_from_magic(path: &Path, head: &[u8]) -> Result<Format, LoadError> {
    if head.starts_with(b"GGUF") {
        Ok(Format::Gguf)
    } else if head.starts_with(b"\x93NUMPY") {
        Ok(Format::Npy)
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Ok(Format::Npz)
    } else if head.len() == 9 && head[8] == b'{' {
        Ok(Format::Safetensors)
    } else {
        Err(LoadError::UnknownFormat {
            path: path.to_path_buf(),
        })
    }
}

/// The format of `path`, by extension, else by its first bytes.
fn detect_format(path: &Path) -> Result<Format, LoadError> {
    if let Some(format) = format_from_name(path) {
        return Ok(format);
    }
    let mut head = [0u8; 9];
    let n = {
        use std::io::Read;
        let mut file = store::open_regular_file(path)?;
        let mut filled = 0;
        while filled < head.len() {
            match file.read(&mut head[filled..]) {
                Ok(0) => break,
                Ok(k) => filled += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(LoadError::Io {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            }
        }
        filled
    };
    format_from_magic(path, &head[..n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Model>();
    }

    #[test]
    fn in_memory_model_round_trips() {
        let model = Model::from_tensors(
            "demo",
            vec![
                OwnedTensor::from_f32("a", vec![2, 2], &[1.0, -2.0, 3.5, 0.0]),
                // 0.1 in f16 is 0x2E66 = (1 + 614/1024) * 2^-4 = 1638/16384 (RNE); in bf16 0x3DCD =
                // (1 + 77/128) * 2^-4 = 205/2048.
                OwnedTensor::from_f16("h", vec![1], &[0.1]),
                OwnedTensor::from_bf16("b", vec![1], &[0.1]),
            ],
        )
        .unwrap();
        assert_eq!(model.name(), "demo");
        assert!(model.files().is_empty());
        assert_eq!(model.find("h"), Some(1));
        let never = Cancel::never();
        assert_eq!(
            model.values_f32(0, &never).unwrap(),
            vec![1.0, -2.0, 3.5, 0.0]
        );
        assert_eq!(model.raw_bytes(1).unwrap(), &[0x66, 0x2E]);
        assert_eq!(model.values_f32(1, &never).unwrap(), vec![1638.0 / 16384.0]);
        assert_eq!(model.value_f32_at(2, 0).unwrap(), 205.0 / 2048.0);
        assert_eq!(model.value_f32_at(0, 2).unwrap(), 3.5);
        assert!(matches!(
            model.value_f32_at(0, 4),
            Err(LoadError::NoSuchElement { .. })
        ));
        assert!(matches!(
            model.values_f32(3, &never),
            Err(LoadError::NoSuchTensor { index: 3, count: 3 })
        ));
        assert_eq!(model.tensors()[0].numel(), 4);
        assert_eq!(model.tensors()[0].size_bytes, 16);
    }

    #[test]
    fn in_memory_model_rejects_bad_sizes_and_duplicates() {
        let bad = OwnedTensor::from_f32("a", vec![3], &[1.0]);
        assert!(matches!(
            Model::from_tensors("m", vec![bad]),
            Err(LoadError::SizeMismatch {
                expected: 12,
                actual: 4,
                ..
            })
        ));
        let a = OwnedTensor::from_f32("a", vec![1], &[1.0]);
        assert!(matches!(
            Model::from_tensors("m", vec![a.clone(), a]),
            Err(LoadError::DuplicateName { .. })
        ));
    }

    #[test]
    fn scalars_and_empty_tensors() {
        let model = Model::from_tensors(
            "m",
            vec![
                OwnedTensor::from_f32("s", vec![], &[2.5]),
                OwnedTensor::from_f32("e", vec![0, 3], &[]),
            ],
        )
        .unwrap();
        let never = Cancel::never();
        assert_eq!(model.values_f32(0, &never).unwrap(), vec![2.5]);
        assert_eq!(model.values_f32(1, &never).unwrap(), Vec::<f32>::new());
        assert_eq!(model.tensors()[1].numel(), 0);
    }
}
