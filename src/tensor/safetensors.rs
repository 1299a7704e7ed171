//! The safetensors loader: header validation with precise errors, then the `safetensors` crate's
//! own check, over a read-only memory map (opening reads only the header).
//!
//! Layout (NUMERICS.md §7): u64 LE header length N, N bytes of JSON, then the data buffer.
//! Entries must tile the data buffer exactly, END - BEGIN = numel * bits / 8, N <= 100,000,000.

use std::path::Path;

use serde_json::Value;

use super::decode::Layout;
use super::dtype::DType;
use super::error::LoadError;
use super::store::{LoadedTensor, Parsed, Part, Store};

/// The largest header the format allows (the `safetensors` crate's limit).
pub(crate) const MAX_HEADER_LEN: u64 = 100_000_000;

/// Maps `path` read-only and parses its header.
pub(crate) fn load(path: &Path) -> Result<Part, LoadError> {
    let map = super::store::map_file(path)?;
    let (tensors, metadata) = parse(path, &map)?;
    Ok(Part {
        tensors,
        stores: vec![Store::Mapped(map)],
        metadata,
    })
}

/// Parses and validates the header of a whole safetensors file held in `buf`; the tensors
/// refer to store 0 (the buffer itself), with byte offsets from the start of `buf`.
pub(crate) fn parse(path: &Path, buf: &[u8]) -> Result<Parsed, LoadError> {
    let malformed = |message: String| LoadError::Malformed {
        path: path.to_path_buf(),
        message,
    };
    let file_len = buf.len() as u64;
    let Some(len_bytes) = buf.first_chunk::<8>() else {
        return Err(LoadError::Truncated {
            path: path.to_path_buf(),
            what: format!("{file_len} bytes, shorter than the 8-byte header length"),
        });
    };
    let header_len = u64::from_le_bytes(*len_bytes);
    if header_len > MAX_HEADER_LEN {
        return Err(LoadError::HeaderTooLarge {
            path: path.to_path_buf(),
            len: header_len,
        });
    }
    if header_len > file_len - 8 {
        return Err(LoadError::HeaderPastEnd {
            path: path.to_path_buf(),
            len: header_len,
            file_len,
        });
    }
    // header_len <= 100,000,000 fits in usize on every supported target.
    let data_start = 8 + header_len as usize;
    let header = buf.get(8..data_start).unwrap_or_default();
    let text = std::str::from_utf8(header).map_err(|e| LoadError::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.valid_up_to(),
        what: "the JSON header (a tensor name or metadata string)".into(),
    })?;
    let json: serde_json::Map<String, Value> =
        serde_json::from_str(text).map_err(|e| LoadError::BadJson {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let data_len = file_len - 8 - header_len;

    let mut metadata = Vec::new();
    let mut entries = Vec::with_capacity(json.len());
    for (name, value) in &json {
        if name == "__metadata__" {
            let Value::Object(map) = value else {
                return Err(malformed("__metadata__ is not a JSON object".into()));
            };
            for (key, v) in map {
                let Value::String(s) = v else {
                    return Err(malformed(format!(
                        "__metadata__ value for '{key}' is not a string"
                    )));
                };
                metadata.push((key.clone(), s.clone()));
            }
            continue;
        }
        entries.push(parse_entry(path, name, value, data_len)?);
    }
    metadata.sort();

    // Tiling: sorted by offsets, each entry must begin where the previous ended.
    entries.sort_by_key(|e| (e.begin, e.end));
    let mut cursor = 0u64;
    let mut previous: Option<&Entry> = None;
    for entry in &entries {
        if entry.begin < cursor {
            return Err(LoadError::Overlap {
                path: path.to_path_buf(),
                tensor: entry.name.clone(),
                begin: entry.begin,
                end: entry.end,
                other: previous.map(|p| p.name.clone()).unwrap_or_default(),
            });
        }
        if entry.begin > cursor {
            return Err(LoadError::Gap {
                path: path.to_path_buf(),
                begin: cursor,
                end: entry.begin,
            });
        }
        cursor = entry.end;
        previous = Some(entry);
    }
    if cursor != data_len {
        return Err(LoadError::Gap {
            path: path.to_path_buf(),
            begin: cursor,
            end: data_len,
        });
    }

    // The crate's own validation as a second line of defence: reject anything it rejects.
    safetensors::SafeTensors::read_metadata(buf)
        .map_err(|e| malformed(format!("rejected by the safetensors crate: {e}")))?;

    let tensors = entries
        .into_iter()
        .map(|e| {
            // Offsets are within the buffer (checked above), so they fit in usize.
            let offset = data_start + e.begin as usize;
            LoadedTensor {
                name: e.name,
                dtype: e.dtype,
                shape: e.shape,
                store: 0,
                offset,
                len: (e.end - e.begin) as usize,
                layout: Layout::default(),
            }
        })
        .collect();
    Ok((tensors, metadata))
}

struct Entry {
    name: String,
    dtype: DType,
    shape: Vec<usize>,
    begin: u64,
    end: u64,
}

fn parse_entry(path: &Path, name: &str, value: &Value, data_len: u64) -> Result<Entry, LoadError> {
    let malformed = |what: &str| LoadError::Malformed {
        path: path.to_path_buf(),
        message: format!("tensor '{name}': {what}"),
    };
    let Value::Object(obj) = value else {
        return Err(malformed("entry is not a JSON object"));
    };
    let dtype_name = obj
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("missing or non-string \"dtype\""))?;
    let dtype = DType::from_name(dtype_name)
        .filter(|d| !d.is_block())
        .ok_or_else(|| LoadError::UnknownDtype {
            path: path.to_path_buf(),
            tensor: name.to_string(),
            dtype: dtype_name.to_string(),
        })?;
    let shape = obj
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("missing or non-array \"shape\""))?
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| malformed("\"shape\" holds something other than non-negative integers"))?;
    let offsets = obj
        .get("data_offsets")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("missing or non-array \"data_offsets\""))?;
    let [begin, end] = offsets.as_slice() else {
        return Err(malformed("\"data_offsets\" must hold exactly two numbers"));
    };
    let (Some(begin), Some(end)) = (begin.as_u64(), end.as_u64()) else {
        return Err(malformed("\"data_offsets\" must be non-negative integers"));
    };
    if end < begin || end > data_len {
        return Err(LoadError::OutOfBounds {
            path: path.to_path_buf(),
            tensor: name.to_string(),
            begin,
            end,
            data_len,
        });
    }
    let numel = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| malformed("shape product overflows"))?;
    let expected = dtype.size_bytes_for(numel).ok_or_else(|| {
        malformed(&format!(
            "{numel} elements of {dtype} do not fill whole bytes"
        ))
    })?;
    if expected != end - begin {
        return Err(LoadError::SizeMismatch {
            path: path.to_path_buf(),
            tensor: name.to_string(),
            shape,
            expected,
            actual: end - begin,
        });
    }
    Ok(Entry {
        name: name.to_string(),
        dtype,
        shape,
        begin,
        end,
    })
}

/// Serializes tensors to safetensors bytes (for tests and fixtures): entries in the given
/// order, data packed back to back, header padded with spaces to a multiple of 8.
#[cfg(test)]
pub(crate) fn to_bytes(tensors: &[(&str, DType, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, dtype, shape, bytes) in tensors {
        header.insert(
            (*name).to_string(),
            serde_json::json!({"dtype": dtype.name(), "shape": shape, "data_offsets": [offset, offset + bytes.len()]}),
        );
        offset += bytes.len();
    }
    let mut text = serde_json::to_string(&header).unwrap_or_default();
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text.as_bytes());
    for (_, _, _, bytes) in tensors {
        out.extend(bytes);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("m.safetensors")
    }

    fn with_header(header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn valid_file_parses_in_offset_order() {
        let buf = with_header(
            r#"{"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"__metadata__":{"format":"pt"}}"#,
            &[0u8; 12],
        );
        let (tensors, metadata) = parse(p(), &buf).unwrap();
        let names: Vec<_> = tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(metadata, vec![("format".to_string(), "pt".to_string())]);
        let header_len = buf.len() - 12;
        assert_eq!(tensors[1].offset, header_len + 4);
        assert_eq!(tensors[1].len, 8);
    }

    #[test]
    fn malformed_headers_give_specific_errors() {
        let e = parse(p(), &[1, 0, 0]).unwrap_err();
        assert!(matches!(e, LoadError::Truncated { .. }), "{e}");
        let e = parse(p(), &with_header("{}", &[])[..9]).unwrap_err();
        assert!(matches!(e, LoadError::HeaderPastEnd { len: 2, .. }), "{e}");
        let mut huge = (MAX_HEADER_LEN + 1).to_le_bytes().to_vec();
        huge.extend(b"{}");
        assert!(matches!(
            parse(p(), &huge).unwrap_err(),
            LoadError::HeaderTooLarge { .. }
        ));
        let e = parse(p(), &with_header("{\"a\":", &[])).unwrap_err();
        assert!(matches!(e, LoadError::BadJson { .. }), "{e}");
        let mut bad_utf8 = 8u64.to_le_bytes().to_vec();
        bad_utf8.extend(b"{\"\xff\":1}  ");
        let e = parse(p(), &bad_utf8[..16]).unwrap_err();
        assert!(matches!(e, LoadError::NotUtf8 { offset: 2, .. }), "{e}");
    }

    #[test]
    fn offsets_must_tile_the_buffer() {
        let overlap = with_header(
            r#"{"x":{"dtype":"U8","shape":[10],"data_offsets":[0,10]},"y":{"dtype":"U8","shape":[10],"data_offsets":[5,15]}}"#,
            &[0; 15],
        );
        let e = parse(p(), &overlap).unwrap_err();
        assert_eq!(
            e.to_string(),
            "m.safetensors: tensor 'y' offsets [5, 15) overlap 'x'"
        );
        let gap = with_header(
            r#"{"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"y":{"dtype":"U8","shape":[4],"data_offsets":[6,10]}}"#,
            &[0; 10],
        );
        assert!(matches!(
            parse(p(), &gap).unwrap_err(),
            LoadError::Gap {
                begin: 4,
                end: 6,
                ..
            }
        ));
        let trailing = with_header(
            r#"{"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#,
            &[0; 6],
        );
        assert!(matches!(
            parse(p(), &trailing).unwrap_err(),
            LoadError::Gap {
                begin: 4,
                end: 6,
                ..
            }
        ));
        let past = with_header(
            r#"{"x":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}"#,
            &[0; 4],
        );
        assert!(matches!(
            parse(p(), &past).unwrap_err(),
            LoadError::OutOfBounds {
                end: 8,
                data_len: 4,
                ..
            }
        ));
        let backwards = with_header(
            r#"{"x":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}"#,
            &[0; 4],
        );
        assert!(matches!(
            parse(p(), &backwards).unwrap_err(),
            LoadError::OutOfBounds { .. }
        ));
    }

    #[test]
    fn dtype_and_size_are_checked() {
        let unknown = with_header(
            r#"{"x":{"dtype":"F8_E4M3FNUZ","shape":[4],"data_offsets":[0,4]}}"#,
            &[0; 4],
        );
        let e = parse(p(), &unknown).unwrap_err();
        assert!(
            matches!(&e, LoadError::UnknownDtype { dtype, .. } if dtype == "F8_E4M3FNUZ"),
            "{e}"
        );
        let gguf_name = with_header(
            r#"{"x":{"dtype":"Q4_K","shape":[4],"data_offsets":[0,4]}}"#,
            &[0; 4],
        );
        assert!(matches!(
            parse(p(), &gguf_name).unwrap_err(),
            LoadError::UnknownDtype { .. }
        ));
        let mismatch = with_header(
            r#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#,
            &[0; 4],
        );
        assert!(matches!(
            parse(p(), &mismatch).unwrap_err(),
            LoadError::SizeMismatch {
                expected: 8,
                actual: 4,
                ..
            }
        ));
        let odd_f4 = with_header(
            r#"{"x":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#,
            &[0; 2],
        );
        assert!(matches!(
            parse(p(), &odd_f4).unwrap_err(),
            LoadError::Malformed { .. }
        ));
        let overflow = with_header(
            r#"{"x":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}}"#,
            &[],
        );
        assert!(matches!(
            parse(p(), &overflow).unwrap_err(),
            LoadError::Malformed { .. }
        ));
        let negative = with_header(
            r#"{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}"#,
            &[],
        );
        assert!(matches!(
            parse(p(), &negative).unwrap_err(),
            LoadError::Malformed { .. }
        ));
    }

    #[test]
    fn writer_output_round_trips_through_the_crate() {
        let buf = to_bytes(&[("w", DType::F16, vec![2], vec![0, 0x3C, 0, 0xC0])]);
        let st = safetensors::SafeTensors::deserialize(&buf).unwrap();
        assert_eq!(st.tensor("w").unwrap().data(), &[0, 0x3C, 0, 0xC0]);
        assert_eq!(parse(p(), &buf).unwrap().0.len(), 1);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                let _ = parse(p(), &bytes);
            }

            #[test]
            fn truncations_and_flips_of_a_valid_file_never_panic(cut in 0usize..200, flip in 0usize..200, bit in 0u8..8) {
                let mut buf = to_bytes(&[
                    ("a", DType::F32, vec![2, 2], vec![1; 16]),
                    ("b", DType::BF16, vec![3], vec![2; 6]),
                ]);
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
