//! The GGUF loader (v2 and v3): header, key/value metadata, tensor infos, aligned data.
//!
//! Layout (NUMERICS.md §7): magic "GGUF", u32 version, u64 tensor count, u64 KV count, KV pairs
//! (value types 0..12, arrays included), tensor infos (name, u32 n_dims, u64 dims
//! innermost-first, u32 ggml type, u64 offset), then the data section aligned to
//! `general.alignment` (default 32). Offsets are relative to the data section.

use std::collections::HashSet;
use std::path::Path;

use super::decode::Layout;
use super::dtype::DType;
use super::error::LoadError;
use super::store::{LoadedTensor, Parsed, Part, Store};

/// Alignment of the data section when `general.alignment` is absent.
const DEFAULT_ALIGNMENT: u64 = 32;
/// llama.cpp's GGML_MAX_DIMS.
const MAX_DIMS: u32 = 4;
/// Nesting limit for arrays of arrays (the format allows them; real files use one level).
const MAX_ARRAY_DEPTH: u32 = 8;
/// Array items rendered in the metadata text before "…".
const ARRAY_PREVIEW: usize = 16;

/// Maps `path` read-only and parses its GGUF header.
pub(crate) fn load(path: &Path) -> Result<Part, LoadError> {
    let map = super::store::map_file(path)?;
    let (tensors, metadata) = parse(path, &map)?;
    Ok(Part {
        tensors,
        stores: vec![Store::Mapped(map)],
        metadata,
    })
}

/// The dtype of a ggml type id, `None` for ids ggml does not define (4 and 5 were removed
/// before GGUF existed). Types quantscope cannot decode still map to a dtype, so their tensors
/// are listed with correct sizes (see [`DType::is_decodable`]).
pub(super) fn dtype_of(type_id: u32) -> Option<DType> {
    // Ids from llama.cpp ggml/include/ggml.h `enum ggml_type`.
    Some(match type_id {
        0 => DType::F32,
        1 => DType::F16,
        2 => DType::Q4_0,
        3 => DType::Q4_1,
        6 => DType::Q5_0,
        7 => DType::Q5_1,
        8 => DType::Q8_0,
        9 => DType::Q8_1,
        10 => DType::Q2K,
        11 => DType::Q3K,
        12 => DType::Q4K,
        13 => DType::Q5K,
        14 => DType::Q6K,
        15 => DType::Q8K,
        16 => DType::IQ2_XXS,
        17 => DType::IQ2_XS,
        18 => DType::IQ3_XXS,
        19 => DType::IQ1_S,
        20 => DType::IQ4NL,
        21 => DType::IQ3_S,
        22 => DType::IQ2_S,
        23 => DType::IQ4_XS,
        24 => DType::I8,
        25 => DType::I16,
        26 => DType::I32,
        27 => DType::I64,
        28 => DType::F64,
        29 => DType::IQ1_M,
        30 => DType::BF16,
        31 => DType::Q4_0_4_4,
        32 => DType::Q4_0_4_8,
        33 => DType::Q4_0_8_8,
        34 => DType::TQ1_0,
        35 => DType::TQ2_0,
        36 => DType::IQ4_NL_4_4,
        37 => DType::IQ4_NL_4_8,
        38 => DType::IQ4_NL_8_8,
        39 => DType::MXFP4,
        40 => DType::NVFP4,
        41 => DType::Q1_0,
        42 => DType::Q2_0,
        _ => return None,
    })
}

/// A bounds-checked little-endian reader over the file bytes.
struct Reader<'a> {
    path: &'a Path,
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn truncated(&self, what: &str) -> LoadError {
        LoadError::Truncated {
            path: self.path.to_path_buf(),
            what: format!(
                "{what} at byte {} ({} bytes in file)",
                self.pos,
                self.buf.len()
            ),
        }
    }

    fn malformed(&self, message: String) -> LoadError {
        LoadError::Malformed {
            path: self.path.to_path_buf(),
            message,
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], LoadError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| self.truncated(what))?;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.truncated(what))?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], LoadError> {
        let bytes = self.take(N, what)?;
        bytes
            .first_chunk::<N>()
            .copied()
            .ok_or_else(|| self.truncated(what))
    }

    fn u32(&mut self, what: &str) -> Result<u32, LoadError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, LoadError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A length-prefixed byte string.
    fn bytes(&mut self, what: &str) -> Result<&'a [u8], LoadError> {
        let len = self.u64(what)?;
        let len = usize::try_from(len).map_err(|_| self.truncated(what))?;
        self.take(len, what)
    }

    /// A length-prefixed string that must be UTF-8 (keys and tensor names).
    fn string(&mut self, what: &str) -> Result<String, LoadError> {
        let start = self.pos;
        let bytes = self.bytes(what)?;
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|e| LoadError::NotUtf8 {
                path: self.path.to_path_buf(),
                offset: start + 8 + e.valid_up_to(),
                what: what.to_string(),
            })
    }

    /// Reads one value of GGUF type `ty`, returning it as text (arrays abbreviated) and, for
    /// unsigned integers, its numeric value. With `render` false the text is left empty: array
    /// items past the preview are only skipped over (a vocabulary holds 10^5 strings).
    fn value(
        &mut self,
        ty: u32,
        depth: u32,
        render: bool,
    ) -> Result<(String, Option<u64>), LoadError> {
        let (text, unsigned) = self.value_text(ty, depth, render)?;
        Ok((if render { text } else { String::new() }, unsigned))
    }

    fn value_text(
        &mut self,
        ty: u32,
        depth: u32,
        render: bool,
    ) -> Result<(String, Option<u64>), LoadError> {
        Ok(match ty {
            0 => {
                let v = self.array::<1>("u8 value")?[0];
                (v.to_string(), Some(u64::from(v)))
            }
            1 => (i8::from_le_bytes(self.array("i8 value")?).to_string(), None),
            2 => {
                let v = u16::from_le_bytes(self.array("u16 value")?);
                (v.to_string(), Some(u64::from(v)))
            }
            3 => (
                i16::from_le_bytes(self.array("i16 value")?).to_string(),
                None,
            ),
            4 => {
                let v = self.u32("u32 value")?;
                (v.to_string(), Some(u64::from(v)))
            }
            5 => (
                i32::from_le_bytes(self.array("i32 value")?).to_string(),
                None,
            ),
            6 => (
                f32::from_le_bytes(self.array("f32 value")?).to_string(),
                None,
            ),
            7 => {
                let [b] = self.array::<1>("bool value")?;
                let text = match b {
                    0 => "false",
                    1 => "true",
                    other => {
                        return Err(
                            self.malformed(format!("bool value {other} is neither 0 nor 1"))
                        );
                    }
                };
                (text.to_string(), None)
            }
            8 => {
                let bytes = self.bytes("string value")?;
                let text = if render {
                    String::from_utf8_lossy(bytes).into_owned()
                } else {
                    String::new()
                };
                (text, None)
            }
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(
                        self.malformed(format!("arrays nested deeper than {MAX_ARRAY_DEPTH}"))
                    );
                }
                let item_type = self.u32("array item type")?;
                let count = self.u64("array length")?;
                let mut items = Vec::new();
                let mut index = 0u64;
                while index < count {
                    let shown = render && items.len() < ARRAY_PREVIEW;
                    let (text, _) = self.value(item_type, depth + 1, shown)?;
                    if shown {
                        items.push(text);
                    }
                    index += 1;
                }
                if !render {
                    return Ok((String::new(), None));
                }
                let mut text = format!("[{}", items.join(", "));
                if count > ARRAY_PREVIEW as u64 {
                    text.push_str(&format!(", … ({count} items)"));
                }
                text.push(']');
                (text, None)
            }
            10 => {
                let v = self.u64("u64 value")?;
                (v.to_string(), Some(v))
            }
            11 => (
                i64::from_le_bytes(self.array("i64 value")?).to_string(),
                None,
            ),
            12 => (
                f64::from_le_bytes(self.array("f64 value")?).to_string(),
                None,
            ),
            other => return Err(self.malformed(format!("unknown metadata value type {other}"))),
        })
    }
}

struct RawInfo {
    name: String,
    dtype: DType,
    shape: Vec<usize>,
    offset: u64,
    size: u64,
}

/// Parses a whole GGUF file held in `buf`; tensors refer to store 0 with offsets from the
/// start of `buf`.
pub(crate) fn parse(path: &Path, buf: &[u8]) -> Result<Parsed, LoadError> {
    let mut r = Reader { path, buf, pos: 0 };
    let magic = r.array::<4>("the magic")?;
    if &magic != b"GGUF" {
        return Err(r.malformed(format!("bad magic {magic:02x?}, expected \"GGUF\"")));
    }
    let version = r.u32("the version")?;
    if !(2..=3).contains(&version) {
        return Err(LoadError::Unsupported {
            path: path.to_path_buf(),
            message: format!("GGUF version {version} (versions 2 and 3 are read)"),
        });
    }
    let tensor_count = r.u64("the tensor count")?;
    let kv_count = r.u64("the metadata count")?;

    let mut metadata = Vec::new();
    let mut alignment = DEFAULT_ALIGNMENT;
    for _ in 0..kv_count {
        let key = r.string("a metadata key")?;
        let ty = r.u32("a metadata value type")?;
        let (text, unsigned) = r.value(ty, 0, true)?;
        if key == "general.alignment" {
            alignment = match (ty, unsigned) {
                (4, Some(a)) if a > 0 && a.is_power_of_two() => a,
                _ => {
                    return Err(r.malformed(format!(
                        "general.alignment must be a u32 power of two, got {text} (type {ty})"
                    )));
                }
            };
        }
        metadata.push((key, text));
    }

    let mut infos: Vec<RawInfo> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for _ in 0..tensor_count {
        let name = r.string("a tensor name")?;
        let n_dims = r.u32("a tensor's dimension count")?;
        if n_dims > MAX_DIMS {
            return Err(r.malformed(format!(
                "tensor '{name}' has {n_dims} dimensions (at most {MAX_DIMS})"
            )));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(r.u64("a tensor dimension")?);
        }
        let type_id = r.u32("a tensor type")?;
        let offset = r.u64("a tensor offset")?;
        let dtype = dtype_of(type_id).ok_or_else(|| LoadError::UnknownDtype {
            path: path.to_path_buf(),
            tensor: name.clone(),
            dtype: format!("ggml type {type_id}"),
        })?;
        let numel = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| r.malformed(format!("tensor '{name}': element count overflows")))?;
        if let super::dtype::Packing::Block { elements, .. } = dtype.packing() {
            let row = dims.first().copied().unwrap_or(1);
            if !row.is_multiple_of(elements as u64) {
                return Err(r.malformed(format!(
                    "tensor '{name}': row length {row} is not a multiple of the {dtype} block size {elements}"
                )));
            }
        }
        let size = dtype.size_bytes_for(numel).ok_or_else(|| {
            r.malformed(format!(
                "tensor '{name}': {numel} elements of {dtype} overflow"
            ))
        })?;
        if !offset.is_multiple_of(alignment) {
            return Err(r.malformed(format!(
                "tensor '{name}': offset {offset} is not a multiple of the alignment {alignment}"
            )));
        }
        let shape = dims
            .iter()
            .rev()
            .map(|&d| usize::try_from(d))
            .collect::<Result<Vec<usize>, _>>()
            .map_err(|_| {
                r.malformed(format!(
                    "tensor '{name}': dimension too large for this machine"
                ))
            })?;
        // A set, not a scan of `infos`: a small file can hold 10^5 tensor infos.
        if !seen.insert(name.clone()) {
            return Err(r.malformed(format!("tensor name '{name}' appears twice")));
        }
        infos.push(RawInfo {
            name,
            dtype,
            shape,
            offset,
            size,
        });
    }

    let header_end = r.pos as u64;
    let data_start = header_end.div_ceil(alignment).saturating_mul(alignment);
    let file_len = buf.len() as u64;
    let data_len = file_len.saturating_sub(data_start);
    if !infos.is_empty() && data_start > file_len {
        return Err(LoadError::Truncated {
            path: path.to_path_buf(),
            what: format!("the data section starts at byte {data_start}, past the end"),
        });
    }
    let mut by_offset: Vec<&RawInfo> = infos.iter().collect();
    by_offset.sort_by_key(|i| (i.offset, i.size));
    let mut previous: Option<&RawInfo> = None;
    for info in &by_offset {
        let end = info.offset.saturating_add(info.size);
        if end > data_len {
            return Err(LoadError::OutOfBounds {
                path: path.to_path_buf(),
                tensor: info.name.clone(),
                begin: info.offset,
                end,
                data_len,
            });
        }
        if let Some(p) = previous
            && info.offset < p.offset + p.size
        {
            return Err(LoadError::Overlap {
                path: path.to_path_buf(),
                tensor: info.name.clone(),
                begin: info.offset,
                end,
                other: p.name.clone(),
            });
        }
        previous = Some(info);
    }

    let tensors = infos
        .into_iter()
        .map(|i| LoadedTensor {
            // Bounded by the file length, which fits in usize (the file is mapped).
            offset: (data_start + i.offset) as usize,
            len: i.size as usize,
            name: i.name,
            dtype: i.dtype,
            shape: i.shape,
            store: 0,
            layout: Layout::default(),
        })
        .collect();
    Ok((tensors, metadata))
}

/// Test helpers: a minimal GGUF writer.
#[cfg(test)]
pub(crate) mod writer {
    /// A metadata value to write.
    pub(crate) enum Kv {
        U32(u32),
        Str(&'static str),
        F32(f32),
        ArrI32(Vec<i32>),
    }

    fn put_str(out: &mut Vec<u8>, s: &[u8]) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s);
    }

    /// GGUF v3 bytes: `tensors` are (name, dims innermost-first, ggml type id, data).
    pub(crate) fn to_bytes(
        kvs: &[(&str, Kv)],
        tensors: &[(&str, Vec<u64>, u32, Vec<u8>)],
        alignment: usize,
    ) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend((tensors.len() as u64).to_le_bytes());
        out.extend((kvs.len() as u64).to_le_bytes());
        for (key, v) in kvs {
            put_str(&mut out, key.as_bytes());
            match v {
                Kv::U32(x) => {
                    out.extend(4u32.to_le_bytes());
                    out.extend(x.to_le_bytes());
                }
                Kv::Str(s) => {
                    out.extend(8u32.to_le_bytes());
                    put_str(&mut out, s.as_bytes());
                }
                Kv::F32(x) => {
                    out.extend(6u32.to_le_bytes());
                    out.extend(x.to_le_bytes());
                }
                Kv::ArrI32(items) => {
                    out.extend(9u32.to_le_bytes());
                    out.extend(5u32.to_le_bytes());
                    out.extend((items.len() as u64).to_le_bytes());
                    for i in items {
                        out.extend(i.to_le_bytes());
                    }
                }
            }
        }
        let mut offset = 0usize;
        let mut offsets = Vec::new();
        for (name, dims, ty, data) in tensors {
            put_str(&mut out, name.as_bytes());
            out.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(ty.to_le_bytes());
            out.extend((offset as u64).to_le_bytes());
            offsets.push(offset);
            offset = (offset + data.len()).div_ceil(alignment) * alignment;
        }
        while !out.len().is_multiple_of(alignment) {
            out.push(0);
        }
        let start = out.len();
        for ((_, _, _, data), off) in tensors.iter().zip(offsets) {
            out.resize(start + off, 0);
            out.extend(data);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::writer::{Kv, to_bytes};
    use super::*;

    fn p() -> &'static Path {
        Path::new("m.gguf")
    }

    fn sample() -> Vec<u8> {
        // A 2x3 F32 tensor stored with dims [3, 2] (innermost first) and a Q8_0 row of 32.
        let f32_data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let mut q8 = half::f16::from_f32(0.5).to_le_bytes().to_vec();
        q8.extend((0..32).map(|j: u8| j));
        to_bytes(
            &[
                ("general.architecture", Kv::Str("llama")),
                ("general.alignment", Kv::U32(64)),
                ("some.float", Kv::F32(0.5)),
                ("some.array", Kv::ArrI32((0..20).collect())),
            ],
            &[("w", vec![3, 2], 0, f32_data), ("q", vec![32], 8, q8)],
            64,
        )
    }

    #[test]
    fn parses_kv_and_tensors() {
        let buf = sample();
        let (tensors, metadata) = parse(p(), &buf).unwrap();
        assert_eq!(tensors.len(), 2);
        assert_eq!(tensors[0].shape, vec![2, 3]);
        assert_eq!(tensors[0].dtype, DType::F32);
        assert_eq!(tensors[0].offset % 64, 0);
        assert_eq!(tensors[1].dtype, DType::Q8_0);
        assert_eq!(tensors[1].len, 34);
        assert_eq!(
            metadata[0],
            ("general.architecture".to_string(), "llama".to_string())
        );
        assert_eq!(metadata[1].1, "64");
        assert_eq!(metadata[2].1, "0.5");
        assert_eq!(
            metadata[3].1,
            "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, … (20 items)]"
        );
        let w = &buf[tensors[0].offset..tensors[0].offset + 24];
        assert_eq!(&w[..4], &1.0f32.to_le_bytes());
    }

    #[test]
    fn corrupt_files_give_typed_errors() {
        let buf = sample();
        let mut bad_magic = buf.clone();
        bad_magic[0] = b'X';
        assert!(matches!(
            parse(p(), &bad_magic).unwrap_err(),
            LoadError::Malformed { .. }
        ));
        let mut v1 = buf.clone();
        v1[4] = 1;
        assert!(matches!(
            parse(p(), &v1).unwrap_err(),
            LoadError::Unsupported { .. }
        ));
        assert!(matches!(
            parse(p(), &buf[..30]).unwrap_err(),
            LoadError::Truncated { .. }
        ));
        assert!(matches!(
            parse(p(), &buf[..buf.len() - 1]).unwrap_err(),
            LoadError::OutOfBounds { .. }
        ));
        let unknown = to_bytes(&[], &[("t", vec![4], 99, vec![0; 4])], 32);
        assert!(matches!(
            parse(p(), &unknown).unwrap_err(),
            LoadError::UnknownDtype { .. }
        ));
        let removed = to_bytes(&[], &[("t", vec![32], 4, vec![0; 32])], 32);
        let e = parse(p(), &removed).unwrap_err();
        assert!(
            matches!(&e, LoadError::UnknownDtype { dtype, .. } if dtype == "ggml type 4"),
            "{e}"
        );
        let short_row = to_bytes(&[], &[("t", vec![16], 8, vec![0; 17])], 32);
        assert!(matches!(
            parse(p(), &short_row).unwrap_err(),
            LoadError::Malformed { .. }
        ));
        let bad_align = to_bytes(&[("general.alignment", Kv::U32(3))], &[], 32);
        assert!(matches!(
            parse(p(), &bad_align).unwrap_err(),
            LoadError::Malformed { .. }
        ));
    }

    #[test]
    fn undecodable_types_list_with_their_sizes() {
        // One tensor of every ggml type id 0..=42 that ggml defines, 512 elements each (a
        // multiple of every block size), in id order.
        let ids: Vec<u32> = (0..=42).filter(|&id| dtype_of(id).is_some()).collect();
        assert_eq!(ids.len(), 41);
        let names: Vec<String> = ids.iter().map(|id| format!("t{id}")).collect();
        let tensors: Vec<(&str, Vec<u64>, u32, Vec<u8>)> = ids
            .iter()
            .zip(&names)
            .map(|(&id, name)| {
                let size = dtype_of(id).and_then(|d| d.size_bytes_for(512)).unwrap();
                (name.as_str(), vec![512], id, vec![0u8; size as usize])
            })
            .collect();
        let buf = to_bytes(&[], &tensors, 32);
        let (loaded, _) = parse(p(), &buf).unwrap();
        assert_eq!(loaded.len(), 41);
        let by_id = |id: u32| &loaded[ids.iter().position(|&i| i == id).unwrap()];
        // IQ2_XXS: 2 super-blocks of 66 bytes; MXFP4: 16 blocks of 17; NVFP4: 8 blocks of 36;
        // Q8_1: 16 blocks of 36 (ggml's block_q8_1, not gguf-py's 40).
        assert_eq!((by_id(16).dtype, by_id(16).len), (DType::IQ2_XXS, 132));
        assert_eq!((by_id(39).dtype, by_id(39).len), (DType::MXFP4, 272));
        assert_eq!((by_id(40).dtype, by_id(40).len), (DType::NVFP4, 288));
        assert_eq!((by_id(9).dtype, by_id(9).len), (DType::Q8_1, 576));
        for id in ids {
            let dtype = dtype_of(id).unwrap();
            assert_eq!(super::super::ggml_type_id(dtype), Some(id), "{dtype}");
        }
    }

    #[test]
    fn overlapping_offsets_are_rejected() {
        let mut buf = to_bytes(
            &[],
            &[
                ("a", vec![8], 0, vec![0; 32]),
                ("b", vec![8], 0, vec![0; 32]),
            ],
            32,
        );
        // The data section is the last 64 bytes; b's tensor info ends with its u64 offset 32,
        // the last such 8-byte pattern before the data. Point it at 0, inside a.
        let header_end = buf.len() - 64;
        let pos = (0..header_end)
            .rev()
            .find(|&i| buf[i..i + 8] == 32u64.to_le_bytes())
            .unwrap();
        buf[pos..pos + 8].copy_from_slice(&0u64.to_le_bytes());
        let e = parse(p(), &buf).unwrap_err();
        assert!(
            matches!(&e, LoadError::Overlap { tensor, other, .. } if tensor == "b" && other == "a"),
            "{e}"
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                let mut with_magic = b"GGUF\x03\x00\x00\x00".to_vec();
                with_magic.extend(&bytes);
                let _ = parse(p(), &bytes);
                let _ = parse(p(), &with_magic);
            }

            #[test]
            fn truncations_and_flips_never_panic(cut in 0usize..400, flip in 0usize..400, bit in 0u8..8) {
                let mut buf = sample();
                if let Some(b) = buf.get_mut(flip) {
                    *b ^= 1 << bit;
                }
                let cut = cut.min(buf.len());
                let _ = parse(p(), &buf[..cut]);
                let _ = parse(p(), &buf);
            }
        }
    }
}
