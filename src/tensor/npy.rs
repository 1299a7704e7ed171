//! The .npy and .npz loaders: numpy array headers (v1, v2, v3) and zip archives of them.
//!
//! A `.npy` file is the magic `\x93NUMPY`, a major and minor version byte, a header length
//! (u16 LE for v1, u32 LE for v2 and v3), and a Python dict literal with `descr`,
//! `fortran_order` and `shape`; the data follows the header. Big-endian data is byte-swapped
//! on decode and Fortran-order data transposed to C order on decode. A `.npz` is a zip of
//! `.npy` members: stored members are read through the memory map, deflated ones inflated
//! into memory.

use std::io::Read;
use std::path::Path;

use super::decode::Layout;
use super::dtype::DType;
use super::error::LoadError;
use super::store::{LoadedTensor, Part, Store};

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// A parsed `.npy` header.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NpyHeader {
    /// Element type.
    pub dtype: DType,
    /// Row-major shape (as numpy reports it, whatever the memory order).
    pub shape: Vec<usize>,
    /// Byte order and memory order.
    pub layout: Layout,
    /// Offset of the data from the start of the `.npy` bytes.
    pub data_offset: usize,
    /// Data size in bytes.
    pub size_bytes: usize,
}

/// Maps a `.npy` file read-only and parses its header; the tensor is named after the file stem.
pub(crate) fn load_npy(path: &Path) -> Result<Part, LoadError> {
    npy_part(path, Store::Mapped(super::store::map_file(path)?))
}

/// The tensor of a whole `.npy` file held in `store`, named after the file stem of `path`.
pub(crate) fn npy_part(path: &Path, store: Store) -> Result<Part, LoadError> {
    let header = parse_header(path, store.bytes())?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "array".into());
    Ok(Part {
        tensors: vec![LoadedTensor {
            name,
            dtype: header.dtype,
            shape: header.shape,
            store: 0,
            offset: header.data_offset,
            len: header.size_bytes,
            layout: header.layout,
        }],
        stores: vec![store],
        metadata: Vec::new(),
    })
}

/// Reads the `.npy` members of a `.npz` archive (other members are skipped); each tensor is
/// named after its member name without `.npy`.
pub(crate) fn load_npz(path: &Path) -> Result<Part, LoadError> {
    npz_part(path, Store::Mapped(super::store::map_file(path)?))
}

/// Reads the `.npy` members of a `.npz` archive held in memory (`path` names it in errors).
pub(crate) fn load_npz_bytes(path: &Path, bytes: Vec<u8>) -> Result<Part, LoadError> {
    npz_part(path, Store::Owned(bytes))
}

/// The `.npy` members of the `.npz` archive in `archive_store` (store 0 of the part): stored
/// members are read in place, deflated ones inflated into stores of their own.
pub(crate) fn npz_part(path: &Path, archive_store: Store) -> Result<Part, LoadError> {
    let archive_bytes = archive_store.bytes();
    let zip_error = |e: zip::result::ZipError| LoadError::Malformed {
        path: path.to_path_buf(),
        message: format!("bad zip archive: {e}"),
    };
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(archive_bytes)).map_err(zip_error)?;
    let mut tensors = Vec::new();
    let mut owned: Vec<Store> = Vec::new();
    for i in 0..archive.len() {
        let mut member = archive.by_index(i).map_err(zip_error)?;
        let member_name = member.name().map_err(zip_error)?.into_owned();
        let Some(name) = member_name.strip_suffix(".npy") else {
            continue;
        };
        if member.is_dir() {
            continue;
        }
        let member_path = path.join(&member_name);
        if member.encrypted() {
            return Err(LoadError::Unsupported {
                path: member_path,
                message: "encrypted zip members are not read".into(),
            });
        }
        let stored_range = match member.compression() {
            zip::CompressionMethod::Stored => member.data_start().and_then(|start| {
                let start = usize::try_from(start).ok()?;
                let len = usize::try_from(member.size()).ok()?;
                let end = start.checked_add(len)?;
                (end <= archive_bytes.len()).then_some(start..end)
            }),
            _ => None,
        };
        let tensor = |store: usize, base: usize, header: NpyHeader| LoadedTensor {
            name: name.to_string(),
            dtype: header.dtype,
            shape: header.shape,
            store,
            offset: base + header.data_offset,
            len: header.size_bytes,
            layout: header.layout,
        };
        if let Some(range) = stored_range {
            let header = parse_header(
                &member_path,
                archive_bytes.get(range.clone()).unwrap_or_default(),
            )?;
            tensors.push(tensor(0, range.start, header));
        } else {
            // Inflate at most the size the archive declares (plus one byte to notice a member
            // that inflates past it): the buffer grows with the bytes actually produced, never
            // to a size read from the header up front, and a deflate bomb stops at the
            // declared size.
            let declared = member.size();
            let mut buf = Vec::new();
            (&mut member)
                .take(declared.saturating_add(1))
                .read_to_end(&mut buf)
                .map_err(|e| LoadError::Malformed {
                    path: member_path.clone(),
                    message: format!("cannot read zip member: {e}"),
                })?;
            if buf.len() as u64 != declared {
                return Err(LoadError::Malformed {
                    path: member_path,
                    message: format!(
                        "zip member inflates to {}{} bytes but the archive declares {declared}",
                        buf.len(),
                        if buf.len() as u64 > declared { "+" } else { "" }
                    ),
                });
            }
            let header = parse_header(&member_path, &buf)?;
            tensors.push(tensor(1 + owned.len(), 0, header));
            owned.push(Store::Owned(buf));
        }
    }
    drop(archive);
    let mut stores = vec![archive_store];
    stores.extend(owned);
    Ok(Part {
        tensors,
        stores,
        metadata: Vec::new(),
    })
}

/// Parses the header of `.npy` bytes and checks the data is all there.
pub(crate) fn parse_header(path: &Path, buf: &[u8]) -> Result<NpyHeader, LoadError> {
    let malformed = |message: String| LoadError::Malformed {
        path: path.to_path_buf(),
        message,
    };
    let truncated = |what: &str| LoadError::Truncated {
        path: path.to_path_buf(),
        what: what.to_string(),
    };
    let prefix = buf
        .get(..8)
        .ok_or_else(|| truncated("the .npy magic and version"))?;
    if !prefix.starts_with(MAGIC) {
        return Err(malformed("not a .npy file (bad magic)".into()));
    }
    let major = prefix.get(6).copied().unwrap_or(0);
    let (header_len, header_start) = match major {
        1 => {
            let b = buf
                .get(8..10)
                .ok_or_else(|| truncated("the header length"))?;
            (usize::from(u16::from_le_bytes([b[0], b[1]])), 10usize)
        }
        2 | 3 => {
            let b = buf
                .get(8..12)
                .ok_or_else(|| truncated("the header length"))?;
            let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            (
                usize::try_from(len).map_err(|_| truncated("the header"))?,
                12usize,
            )
        }
        other => {
            return Err(LoadError::Unsupported {
                path: path.to_path_buf(),
                message: format!(".npy format version {other} (versions 1, 2 and 3 are read)"),
            });
        }
    };
    let data_offset = header_start
        .checked_add(header_len)
        .ok_or_else(|| truncated("the header"))?;
    let header_bytes = buf
        .get(header_start..data_offset)
        .ok_or_else(|| truncated("the header"))?;
    // v1 and v2 headers are latin-1, v3 UTF-8; the keys and values we read are ASCII either way.
    let text: String = if major == 3 {
        std::str::from_utf8(header_bytes)
            .map_err(|e| LoadError::NotUtf8 {
                path: path.to_path_buf(),
                offset: header_start + e.valid_up_to(),
                what: "the .npy header".into(),
            })?
            .to_string()
    } else {
        header_bytes.iter().map(|&b| char::from(b)).collect()
    };
    let dict =
        parse_dict(&text).map_err(|e| malformed(format!("bad .npy header {text:?}: {e}")))?;
    let mut descr = None;
    let mut fortran_order = None;
    let mut shape = None;
    for (key, value) in dict {
        match (key.as_str(), value) {
            ("descr", PyValue::Str(s)) => descr = Some(s),
            ("descr", _) => {
                return Err(LoadError::Unsupported {
                    path: path.to_path_buf(),
                    message: "structured (record) .npy dtypes are not read".into(),
                });
            }
            ("fortran_order", PyValue::Bool(b)) => fortran_order = Some(b),
            ("shape", PyValue::Tuple(dims)) => shape = Some(dims),
            (other, _) => {
                return Err(malformed(format!(
                    "unexpected or mistyped header key '{other}'"
                )));
            }
        }
    }
    let (Some(descr), Some(fortran_order), Some(shape)) = (descr, fortran_order, shape) else {
        return Err(malformed(
            "header lacks descr, fortran_order or shape".into(),
        ));
    };
    let (dtype, big_endian) = dtype_of_descr(&descr).ok_or_else(|| LoadError::UnknownDtype {
        path: path.to_path_buf(),
        tensor: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        dtype: descr.clone(),
    })?;
    let shape = shape
        .into_iter()
        .map(usize::try_from)
        .collect::<Result<Vec<usize>, _>>()
        .map_err(|_| malformed("shape dimension too large".into()))?;
    let numel = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| malformed("shape product overflows".into()))?;
    let size_bytes = dtype
        .size_bytes_for(numel)
        .and_then(|s| usize::try_from(s).ok())
        .ok_or_else(|| malformed("data size overflows".into()))?;
    let available = buf.len().saturating_sub(data_offset);
    if available < size_bytes {
        return Err(LoadError::Truncated {
            path: path.to_path_buf(),
            what: format!("the data needs {size_bytes} bytes but {available} follow the header"),
        });
    }
    Ok(NpyHeader {
        dtype,
        shape,
        layout: Layout {
            big_endian,
            fortran_order,
        },
        data_offset,
        size_bytes,
    })
}

/// The dtype and byte order of a numpy `descr` such as `'<f4'`, `'|u1'` or `'>i8'`.
fn dtype_of_descr(descr: &str) -> Option<(DType, bool)> {
    let (order, code) = match descr.chars().next()? {
        c @ ('<' | '>' | '|' | '=') => (c, descr.get(1..)?),
        _ => ('=', descr),
    };
    let dtype = match code {
        "f2" | "e" => DType::F16,
        "f4" | "f" => DType::F32,
        "f8" | "d" => DType::F64,
        "i1" | "b" => DType::I8,
        "i2" | "h" => DType::I16,
        "i4" | "i" => DType::I32,
        "i8" | "q" => DType::I64,
        "u1" | "B" => DType::U8,
        "u2" | "H" => DType::U16,
        "u4" | "I" => DType::U32,
        "u8" | "Q" => DType::U64,
        "b1" | "?" => DType::Bool,
        _ => return None,
    };
    // '=' is native order; this program targets little-endian machines.
    Some((
        dtype,
        order == '>' && cfg!(target_endian = "little")
            || order == '<' && cfg!(target_endian = "big"),
    ))
}

/// A value in a `.npy` header dict.
#[derive(Debug, Clone, PartialEq)]
enum PyValue {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
    /// Anything else (lists of fields for structured dtypes).
    Other,
}

/// Parses the Python dict literal of a `.npy` header (string keys; string, bool, int-tuple
/// or list values).
fn parse_dict(text: &str) -> Result<Vec<(String, PyValue)>, String> {
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
    };
    p.expect('{')?;
    let mut items = Vec::new();
    loop {
        p.skip_ws();
        if p.eat('}') {
            break;
        }
        let key = p.string()?;
        p.skip_ws();
        p.expect(':')?;
        p.skip_ws();
        let value = p.value(0)?;
        items.push((key, value));
        p.skip_ws();
        if p.eat(',') {
            continue;
        }
        p.skip_ws();
        p.expect('}')?;
        break;
    }
    Ok(items)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        self.skip_ws();
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{c}' at character {}", self.pos))
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = match self.peek() {
            Some(q @ ('\'' | '"')) => q,
            _ => return Err(format!("expected a string at character {}", self.pos)),
        };
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err("unterminated string".into()),
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn word(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            out.push(c);
            self.pos += 1;
        }
        out
    }

    fn value(&mut self, depth: u32) -> Result<PyValue, String> {
        if depth > 16 {
            return Err("nesting too deep".into());
        }
        match self.peek() {
            Some('\'' | '"') => Ok(PyValue::Str(self.string()?)),
            Some('(') => {
                self.pos += 1;
                let mut dims = Vec::new();
                let mut all_integers = true;
                loop {
                    self.skip_ws();
                    if self.eat(')') {
                        break;
                    }
                    if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        let digits = self.word();
                        // Python 2 wrote longs with an 'L' suffix.
                        let digits = digits.strip_suffix('L').unwrap_or(&digits);
                        let d: u64 = digits
                            .parse()
                            .map_err(|_| format!("bad shape entry '{digits}'"))?;
                        dims.push(d);
                    } else {
                        self.value(depth + 1)?;
                        all_integers = false;
                    }
                    self.skip_ws();
                    if !self.eat(',') {
                        self.expect(')')?;
                        break;
                    }
                }
                Ok(if all_integers {
                    PyValue::Tuple(dims)
                } else {
                    PyValue::Other
                })
            }
            Some('[') => {
                self.pos += 1;
                loop {
                    self.skip_ws();
                    if self.eat(']') {
                        break;
                    }
                    self.value(depth + 1)?;
                    self.skip_ws();
                    if !self.eat(',') {
                        self.expect(']')?;
                        break;
                    }
                }
                Ok(PyValue::Other)
            }
            _ => match self.word().as_str() {
                "True" => Ok(PyValue::Bool(true)),
                "False" => Ok(PyValue::Bool(false)),
                other => Err(format!(
                    "unexpected value '{other}' at character {}",
                    self.pos
                )),
            },
        }
    }
}

/// `.npy` bytes (format 1.0) for tests: header padded so the data starts at a multiple of 64.
#[cfg(test)]
pub(crate) fn to_bytes(descr: &str, fortran: bool, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let fortran = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend([1, 0]);
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("a.npy")
    }

    #[test]
    fn parses_numpy_headers() {
        let buf = to_bytes("<f4", false, &[2, 3], &[0; 24]);
        let h = parse_header(p(), &buf).unwrap();
        assert_eq!(h.dtype, DType::F32);
        assert_eq!(h.shape, vec![2, 3]);
        // The writer pads the 59-character dict so the data starts at a multiple of 64.
        assert_eq!(h.data_offset, buf.len() - 24);
        assert_eq!(h.data_offset % 64, 0);
        assert_eq!(h.size_bytes, 24);
        assert_eq!(h.layout, Layout::default());

        let scalar = to_bytes("<f8", false, &[], &[0; 8]);
        assert_eq!(
            parse_header(p(), &scalar).unwrap().shape,
            Vec::<usize>::new()
        );
        let big = to_bytes(">i4", true, &[4], &[0; 16]);
        let h = parse_header(p(), &big).unwrap();
        assert_eq!(
            (h.dtype, h.layout.big_endian, h.layout.fortran_order),
            (DType::I32, true, true)
        );
        let byte = to_bytes("|b1", false, &[3], &[0; 3]);
        assert_eq!(parse_header(p(), &byte).unwrap().dtype, DType::Bool);
    }

    #[test]
    fn version_2_and_3_headers() {
        let header = "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }\n";
        for major in [2u8, 3] {
            let mut buf = MAGIC.to_vec();
            buf.extend([major, 0]);
            buf.extend((header.len() as u32).to_le_bytes());
            buf.extend(header.as_bytes());
            buf.extend([0, 0x3C, 0, 0x40]);
            let h = parse_header(p(), &buf).unwrap();
            assert_eq!(
                (h.dtype, h.data_offset, h.size_bytes),
                (DType::F16, 12 + header.len(), 4)
            );
        }
    }

    #[test]
    fn bad_headers_give_typed_errors() {
        let buf = to_bytes("<f4", false, &[2, 3], &[0; 24]);
        assert!(matches!(
            parse_header(p(), &buf[..5]),
            Err(LoadError::Truncated { .. })
        ));
        assert!(matches!(
            parse_header(p(), &buf[..40]),
            Err(LoadError::Truncated { .. })
        ));
        assert!(matches!(
            parse_header(p(), &buf[..70]),
            Err(LoadError::Truncated { .. })
        ));
        let complex = to_bytes("<c8", false, &[1], &[0; 8]);
        assert!(matches!(
            parse_header(p(), &complex),
            Err(LoadError::UnknownDtype { .. })
        ));
        let mut v9 = buf.clone();
        v9[6] = 9;
        assert!(matches!(
            parse_header(p(), &v9),
            Err(LoadError::Unsupported { .. })
        ));
        let mut bad = buf.clone();
        bad[11] = b'[';
        assert!(matches!(
            parse_header(p(), &bad),
            Err(LoadError::Malformed { .. })
        ));
        assert!(
            parse_dict("{'descr': [('a', '<f4')], 'shape': (1,), 'fortran_order': False}").is_ok()
        );
        let record = "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }";
        let mut rec = MAGIC.to_vec();
        rec.extend([1, 0]);
        rec.extend((record.len() as u16).to_le_bytes());
        rec.extend(record.as_bytes());
        rec.extend([0; 4]);
        assert!(matches!(
            parse_header(p(), &rec),
            Err(LoadError::Unsupported { .. })
        ));
    }

    #[test]
    fn dict_parser_handles_python_spellings() {
        let d =
            parse_dict("{\"descr\": \"<u2\", 'fortran_order': True, 'shape': (3L, 4L)}").unwrap();
        assert_eq!(d[2].1, PyValue::Tuple(vec![3, 4]));
        assert_eq!(d[1].1, PyValue::Bool(true));
        assert!(parse_dict("{'shape': (3, x)}").is_err());
        assert!(parse_dict("{'shape': (3,").is_err());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
                let mut with_magic = MAGIC.to_vec();
                with_magic.extend([1, 0]);
                with_magic.extend(&bytes);
                let _ = parse_header(p(), &bytes);
                let _ = parse_header(p(), &with_magic);
            }

            #[test]
            fn truncations_and_flips_never_panic(cut in 0usize..100, flip in 0usize..100, bit in 0u8..8) {
                let mut buf = to_bytes("<f4", false, &[2, 3], &[7; 24]);
                if let Some(b) = buf.get_mut(flip) {
                    *b ^= 1 << bit;
                }
                let cut = cut.min(buf.len());
                let _ = parse_header(p(), &buf[..cut]);
                let _ = parse_header(p(), &buf);
            }
        }
    }
}
