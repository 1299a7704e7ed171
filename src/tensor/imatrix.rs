//! Importance matrices from llama.cpp's `llama-imatrix`: the GGUF format and the legacy
//! `imatrix.dat` binary, read into one per-column weight vector per tensor.
//!
//! Both layouts as llama.cpp writes and reads them (tools/imatrix/imatrix.cpp,
//! common/imatrix-loader.cpp, tools/quantize/quantize.cpp):
//! - GGUF: for each weight tensor `<name>`, an F32 tensor `<name>.in_sum2` of ggml shape
//!   [ne0 = columns, n_mat] (the sums of squared activations per input column, one row per
//!   expert) and an F32 tensor `<name>.counts` of shape [1, n_mat] (how many activation rows
//!   were summed). `<name>.in_sum` (plain sums) may also be present and is ignored. Keys
//!   `imatrix.datasets`, `imatrix.chunk_count`, `imatrix.chunk_size` are metadata.
//!   llama-quantize's weights: count = lround(counts\[m\]); w = in_sum2 / (float) count when
//!   count > 0, else 1 for that matrix's columns.
//! - Legacy `.dat` (all little-endian): i32 n_entries (>= 1); per entry i32 name length, the
//!   name bytes, i32 ncall, i32 nval (>= 1), nval f32 values (already mean squares times
//!   ncall); then optionally i32 chunk count, i32 dataset-name length and the dataset name.
//!   llama-quantize's weights: w = value / (float) ncall when ncall > 0, else the value.
//!
//! Every length is checked against the bytes that remain before anything is allocated; a
//! malformed file gives a typed [`ImatrixError`], never a panic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{DType, LoadError, Model};
use crate::cancel::Cancel;

/// Which layout a file used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImatrixFormat {
    /// `llama-imatrix`'s GGUF output (the default since 2025).
    Gguf,
    /// The legacy `imatrix.dat` binary.
    Legacy,
}

/// One tensor's importance: a weight per input column, per matrix (expert).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportanceEntry {
    /// `matrices × columns` weights, matrix-major (the weights of matrix m are
    /// `weights[m * columns .. (m + 1) * columns]`). Finite and non-negative.
    pub weights: Vec<f32>,
    /// Number of matrices the counts distinguish (experts of a 3-D MoE tensor; 1 for dense
    /// tensors and for every legacy entry, which keeps one count).
    pub matrices: usize,
}

/// How an entry's weights line up with one tensor's elements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorImportance<'a> {
    /// The weights, `weights.len() / columns` matrices of `columns` each.
    pub weights: &'a [f32],
    /// Length of the tensor's last axis (the input columns).
    pub columns: usize,
    /// Elements of the tensor per matrix (the whole tensor when there is one matrix).
    pub elements_per_matrix: usize,
}

impl TensorImportance<'_> {
    /// The weight of the element at row-major index `flat` (0 past the end).
    #[inline]
    pub fn weight_at(&self, flat: usize) -> f32 {
        let matrix = flat / self.elements_per_matrix.max(1);
        let column = flat % self.columns.max(1);
        self.weights
            .get(matrix * self.columns + column)
            .copied()
            .unwrap_or(0.0)
    }
}

impl ImportanceEntry {
    /// Lines the weights up with a tensor of row-major `shape`: one weight per last-axis column,
    /// and for several matrices one block of columns per index of the leading (expert) axis.
    /// The error says why they do not fit.
    pub fn for_shape(&self, shape: &[usize]) -> Result<TensorImportance<'_>, String> {
        let columns = match shape.last() {
            Some(&c) if c > 0 => c,
            _ => return Err(format!("a tensor of shape {shape:?} has no input columns")),
        };
        let len = self.weights.len();
        if !len.is_multiple_of(columns) {
            return Err(format!(
                "{len} importance weights do not divide into rows of {columns} columns"
            ));
        }
        let matrices = len / columns;
        let numel = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let Some(numel) = numel else {
            return Err("the tensor's element count overflows".into());
        };
        if matrices == 1 {
            return Ok(TensorImportance {
                weights: &self.weights,
                columns,
                elements_per_matrix: numel,
            });
        }
        if shape.len() < 3 || shape.first() != Some(&matrices) {
            return Err(format!(
                "{matrices} matrices of {columns} weights need a tensor [{matrices}, rows, {columns}], got {shape:?}"
            ));
        }
        Ok(TensorImportance {
            weights: &self.weights,
            columns,
            elements_per_matrix: numel / matrices,
        })
    }
}

/// An importance matrix: one entry per weight tensor name.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportanceMatrix {
    /// The layout the file used.
    pub format: ImatrixFormat,
    /// Entries by tensor name (llama.cpp's GGUF names, e.g. `blk.0.attn_q.weight`).
    pub entries: BTreeMap<String, ImportanceEntry>,
    /// Names whose data llama-quantize would skip too (no counts, or no sums).
    pub skipped: Vec<String>,
    /// The chunk count the file records, if any.
    pub chunk_count: Option<i64>,
    /// `imatrix.*` metadata as text (GGUF) or the dataset name (legacy), for display.
    pub metadata: Vec<(String, String)>,
}

impl ImportanceMatrix {
    /// The entry for tensor `name`.
    pub fn get(&self, name: &str) -> Option<&ImportanceEntry> {
        self.entries.get(name)
    }
}

/// Why an importance matrix could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImatrixError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The GGUF container itself is malformed (the GGUF loader's error names the problem).
    #[error(transparent)]
    Gguf(#[from] LoadError),
    /// The legacy file ends inside a structure.
    #[error("{}: imatrix is truncated: {what}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was being read.
        what: String,
    },
    /// Any other violation of the layouts in the module documentation.
    #[error("{}: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The file holds no importance entry at all.
    #[error("{}: no importance entries (expected <name>.in_sum2 with <name>.counts tensors, or a legacy imatrix.dat)", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Reads an importance matrix: GGUF when the file starts with "GGUF", the legacy binary
/// otherwise.
pub fn read_imatrix(path: &Path) -> Result<ImportanceMatrix, ImatrixError> {
    let io = |source| ImatrixError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut head = [0u8; 4];
    let n = {
        use std::io::Read;
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mut filled = 0;
        while filled < head.len() {
            match file.read(&mut head[filled..]) {
                Ok(0) => break,
                Ok(k) => filled += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
        filled
    };
    if n == 4 && &head == b"GGUF" {
        read_gguf(path)
    } else {
        let bytes = std::fs::read(path).map_err(io)?;
        parse_legacy(path, &bytes)
    }
}

/// The GGUF layout, read through the crate's GGUF loader (which validates every size).
fn read_gguf(path: &Path) -> Result<ImportanceMatrix, ImatrixError> {
    let model = Model::open(path)?;
    let malformed = |message: String| ImatrixError::Malformed {
        path: path.to_path_buf(),
        message,
    };
    // name → (in_sum2 index, counts index), in name order.
    let mut pairs: BTreeMap<&str, (Option<usize>, Option<usize>)> = BTreeMap::new();
    for (index, info) in model.tensors().iter().enumerate() {
        if let Some(name) = info.name.strip_suffix(".in_sum2") {
            pairs.entry(name).or_default().0 = Some(index);
        } else if let Some(name) = info.name.strip_suffix(".counts") {
            pairs.entry(name).or_default().1 = Some(index);
        }
    }
    let never = Cancel::never();
    let mut entries = BTreeMap::new();
    let mut skipped = Vec::new();
    for (name, pair) in pairs {
        let (Some(sums_index), Some(counts_index)) = pair else {
            return Err(malformed(format!(
                "mismatched sums and counts for '{name}'"
            )));
        };
        for index in [sums_index, counts_index] {
            let info = &model.tensors()[index];
            if info.dtype != DType::F32 {
                return Err(malformed(format!(
                    "'{}' is {}, but sums and counts must be F32",
                    info.name, info.dtype
                )));
            }
        }
        let sums = model.values_f32(sums_index, &never)?;
        let counts = model.values_f32(counts_index, &never)?;
        if counts.is_empty() || sums.is_empty() {
            skipped.push(name.to_string());
            continue;
        }
        if !sums.len().is_multiple_of(counts.len()) {
            return Err(malformed(format!(
                "'{name}': {} sums do not divide into {} matrices",
                sums.len(),
                counts.len()
            )));
        }
        let columns = sums.len() / counts.len();
        let mut weights = Vec::with_capacity(sums.len());
        for (matrix, &count) in counts.iter().enumerate() {
            let row = sums
                .get(matrix * columns..(matrix + 1) * columns)
                .unwrap_or(&[]);
            // llama.cpp: std::lround (half away from zero, as f32::round) into an int64, then
            // back to float for the division. Counts are far below 2^24 in practice, and any
            // count converts to the nearest f32 exactly as C++'s (float) conversion does.
            let count = if count.is_finite() {
                count.round()
            } else {
                0.0
            };
            if count > 0.0 {
                weights.extend(row.iter().map(|&s| s / count));
            } else {
                weights.extend(std::iter::repeat_n(1.0f32, row.len()));
            }
        }
        check_weights(path, name, &weights)?;
        entries.insert(
            name.to_string(),
            ImportanceEntry {
                weights,
                matrices: counts.len(),
            },
        );
    }
    if entries.is_empty() {
        return Err(ImatrixError::Empty {
            path: path.to_path_buf(),
        });
    }
    let metadata: Vec<(String, String)> = model
        .metadata()
        .iter()
        .filter(|(k, _)| k.starts_with("imatrix."))
        .cloned()
        .collect();
    let chunk_count = metadata
        .iter()
        .find(|(k, _)| k == "imatrix.chunk_count")
        .and_then(|(_, v)| v.parse::<i64>().ok());
    Ok(ImportanceMatrix {
        format: ImatrixFormat::Gguf,
        entries,
        skipped,
        chunk_count,
        metadata,
    })
}

/// Importance weights must be finite and non-negative (they are means of squares).
fn check_weights(path: &Path, name: &str, weights: &[f32]) -> Result<(), ImatrixError> {
    match weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
        None => Ok(()),
        Some(i) => Err(ImatrixError::Malformed {
            path: path.to_path_buf(),
            message: format!(
                "'{name}': importance weight {i} is {}, not a finite non-negative number",
                weights[i]
            ),
        }),
    }
}

/// A bounds-checked little-endian reader over the legacy file.
struct Reader<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ImatrixError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(ImatrixError::Truncated {
                path: self.path.to_path_buf(),
                what: format!(
                    "{what}: {n} bytes needed at byte {}, {} left",
                    self.pos,
                    self.remaining()
                ),
            });
        };
        let out = self.bytes.get(self.pos..end).unwrap_or(&[]);
        self.pos = end;
        Ok(out)
    }

    fn i32(&mut self, what: &str) -> Result<i32, ImatrixError> {
        let b = self.take(4, what)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A count of `unit`-byte items that must be at least `min` and fit in the bytes left
    /// (checked before anything is allocated for them).
    fn length(&mut self, what: &str, min: i32, unit: usize) -> Result<usize, ImatrixError> {
        let value = self.i32(what)?;
        let Some(n) = usize::try_from(value).ok().filter(|_| value >= min) else {
            return Err(ImatrixError::Malformed {
                path: self.path.to_path_buf(),
                message: format!("{what} is {value}, below {min}"),
            });
        };
        if n.checked_mul(unit).is_none_or(|b| b > self.remaining()) {
            return Err(ImatrixError::Truncated {
                path: self.path.to_path_buf(),
                what: format!(
                    "{what} is {value}, but only {} bytes are left",
                    self.remaining()
                ),
            });
        }
        Ok(n)
    }
}

/// Parses the legacy `imatrix.dat` layout held in `bytes`.
fn parse_legacy(path: &Path, bytes: &[u8]) -> Result<ImportanceMatrix, ImatrixError> {
    let malformed = |message: String| ImatrixError::Malformed {
        path: path.to_path_buf(),
        message,
    };
    let mut r = Reader {
        path,
        bytes,
        pos: 0,
    };
    let n_entries = r.i32("the entry count")?;
    if n_entries < 1 {
        return Err(malformed(format!(
            "entry count is {n_entries} (not an imatrix.dat, or it holds no data)"
        )));
    }
    let mut entries = BTreeMap::new();
    for index in 0..n_entries {
        let len = r.length(&format!("name length of entry {index}"), 0, 1)?;
        let raw = r.take(len, "a name")?;
        // llama.cpp builds the name with std::string(char*), which stops at a NUL.
        let raw = raw.split(|&b| b == 0).next().unwrap_or(&[]);
        let name = std::str::from_utf8(raw)
            .map_err(|e| malformed(format!("name of entry {index} is not UTF-8: {e}")))?
            .to_string();
        let ncall = r.i32("a call count")?;
        let nval = r.length(&format!("value count of '{name}'"), 1, 4)?;
        let data = r.take(nval * 4, "values")?;
        // C++ divides a float by an int64: the int64 converts to the nearest float first.
        let divisor = (ncall > 0).then_some(ncall as f32);
        let weights: Vec<f32> = data
            .chunks_exact(4)
            .map(|c| {
                let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                divisor.map_or(v, |d| v / d)
            })
            .collect();
        check_weights(path, &name, &weights)?;
        if entries.contains_key(&name) {
            return Err(malformed(format!("entry '{name}' appears twice")));
        }
        entries.insert(
            name,
            ImportanceEntry {
                weights,
                matrices: 1,
            },
        );
    }
    // Optional trailer: the chunk count, then the dataset name.
    let mut chunk_count = None;
    let mut metadata = Vec::new();
    if r.remaining() >= 4 {
        chunk_count = Some(i64::from(r.i32("the chunk count")?));
        if r.remaining() >= 4 {
            let len = r.i32("the dataset name length")?;
            if let Ok(len) = usize::try_from(len)
                && len > 0
                && len <= r.remaining()
            {
                let raw = r.take(len, "the dataset name")?;
                metadata.push((
                    "dataset".to_string(),
                    String::from_utf8_lossy(raw).into_owned(),
                ));
            }
        }
    }
    Ok(ImportanceMatrix {
        format: ImatrixFormat::Legacy,
        entries,
        skipped: Vec::new(),
        chunk_count,
        metadata,
    })
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Test-only writers of both imatrix layouts.

    /// GGUF v3 bytes holding F32 tensors (name, ggml dims innermost-first, values) and the
    /// three `imatrix.*` keys llama-imatrix writes.
    pub(crate) fn gguf(tensors: &[(&str, Vec<u64>, Vec<f32>)], datasets: &[&str]) -> Vec<u8> {
        fn put_str(out: &mut Vec<u8>, s: &str) {
            out.extend((s.len() as u64).to_le_bytes());
            out.extend(s.as_bytes());
        }
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend((tensors.len() as u64).to_le_bytes());
        out.extend(4u64.to_le_bytes());
        put_str(&mut out, "general.type");
        out.extend(8u32.to_le_bytes());
        put_str(&mut out, "imatrix");
        put_str(&mut out, "imatrix.datasets");
        out.extend(9u32.to_le_bytes());
        out.extend(8u32.to_le_bytes());
        out.extend((datasets.len() as u64).to_le_bytes());
        for d in datasets {
            put_str(&mut out, d);
        }
        for (key, value) in [("imatrix.chunk_count", 7u32), ("imatrix.chunk_size", 512)] {
            put_str(&mut out, key);
            out.extend(4u32.to_le_bytes());
            out.extend(value.to_le_bytes());
        }
        let mut offset = 0u64;
        for (name, dims, values) in tensors {
            put_str(&mut out, name);
            out.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(0u32.to_le_bytes());
            out.extend(offset.to_le_bytes());
            offset += (values.len() as u64 * 4).div_ceil(32) * 32;
        }
        while !out.len().is_multiple_of(32) {
            out.push(0);
        }
        for (_, _, values) in tensors {
            let start = out.len();
            out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            while !(out.len() - start).is_multiple_of(32) {
                out.push(0);
            }
        }
        out
    }

    /// Legacy `imatrix.dat` bytes: entries (name, ncall, values), then the trailer.
    pub(crate) fn legacy(
        entries: &[(&str, i32, Vec<f32>)],
        trailer: Option<(i32, &str)>,
    ) -> Vec<u8> {
        let mut out = (entries.len() as i32).to_le_bytes().to_vec();
        for (name, ncall, values) in entries {
            out.extend((name.len() as i32).to_le_bytes());
            out.extend(name.as_bytes());
            out.extend(ncall.to_le_bytes());
            out.extend((values.len() as i32).to_le_bytes());
            out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        }
        if let Some((chunks, dataset)) = trailer {
            out.extend(chunks.to_le_bytes());
            out.extend((dataset.len() as i32).to_le_bytes());
            out.extend(dataset.as_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{gguf, legacy};
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("fixture written");
        path
    }

    #[test]
    fn gguf_weights_are_sums_over_rounded_counts() {
        let dir = tempfile::tempdir().expect("temp dir");
        // A dense 3-column entry summed over 4 rows (count stored as 3.6: lround gives 4), and
        // a 2-expert entry whose second expert saw no rows (its weights become 1).
        let bytes = gguf(
            &[
                (
                    "blk.0.attn_q.weight.in_sum2",
                    vec![3, 1],
                    vec![4.0, 2.0, 1.0],
                ),
                ("blk.0.attn_q.weight.counts", vec![1, 1], vec![3.6]),
                (
                    "blk.0.attn_q.weight.in_sum",
                    vec![3, 1],
                    vec![0.5, 0.5, 0.5],
                ),
                (
                    "blk.0.ffn_up_exps.weight.in_sum2",
                    vec![2, 2],
                    vec![6.0, 3.0, 5.0, 5.0],
                ),
                (
                    "blk.0.ffn_up_exps.weight.counts",
                    vec![1, 2],
                    vec![3.0, 0.0],
                ),
            ],
            &["wiki.train.raw"],
        );
        let path = write(dir.path(), "imatrix.gguf", &bytes);
        let m = read_imatrix(&path).expect("valid imatrix");
        assert_eq!(m.format, ImatrixFormat::Gguf);
        assert_eq!(m.entries.len(), 2);
        let q = m.get("blk.0.attn_q.weight").expect("dense entry");
        assert_eq!(q.weights, vec![1.0, 0.5, 0.25]);
        assert_eq!(q.matrices, 1);
        let e = m.get("blk.0.ffn_up_exps.weight").expect("expert entry");
        assert_eq!(e.weights, vec![2.0, 1.0, 1.0, 1.0]);
        assert_eq!(e.matrices, 2);
        assert_eq!(m.chunk_count, Some(7));
        assert!(
            m.metadata
                .iter()
                .any(|(k, v)| k == "imatrix.datasets" && v.contains("wiki"))
        );
    }

    #[test]
    fn weights_line_up_with_tensor_shapes() {
        let dense = ImportanceEntry {
            weights: vec![1.0, 2.0, 3.0],
            matrices: 1,
        };
        let t = dense.for_shape(&[2, 3]).expect("fits");
        // Element (1, 2) is flat index 5: column 2.
        assert_eq!(t.weight_at(5), 3.0);
        assert_eq!(t.weight_at(3), 1.0);
        assert!(dense.for_shape(&[3, 2]).is_err());
        assert!(dense.for_shape(&[]).is_err());
        let experts = ImportanceEntry {
            weights: vec![1.0, 2.0, 10.0, 20.0],
            matrices: 2,
        };
        let t = experts.for_shape(&[2, 3, 2]).expect("two experts of 3x2");
        // Expert 1, row 2, column 1: flat 6 + 4 + 1 = 11.
        assert_eq!(t.weight_at(11), 20.0);
        assert_eq!(t.weight_at(4), 1.0);
        assert!(experts.for_shape(&[3, 2]).is_err());
        assert!(experts.for_shape(&[4, 3, 2]).is_err());
    }

    #[test]
    fn legacy_weights_divide_by_ncall_and_read_the_trailer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bytes = legacy(
            &[
                ("blk.0.attn_k.weight", 4, vec![2.0, 6.0]),
                ("output.weight", 0, vec![0.5]),
            ],
            Some((12, "calibration.txt")),
        );
        let path = write(dir.path(), "imatrix.dat", &bytes);
        let m = read_imatrix(&path).expect("valid legacy imatrix");
        assert_eq!(m.format, ImatrixFormat::Legacy);
        assert_eq!(
            m.get("blk.0.attn_k.weight").map(|e| e.weights.clone()),
            Some(vec![0.5, 1.5])
        );
        // ncall 0: llama-quantize keeps the stored values.
        assert_eq!(
            m.get("output.weight").map(|e| e.weights.clone()),
            Some(vec![0.5])
        );
        assert_eq!(m.chunk_count, Some(12));
        assert_eq!(
            m.metadata,
            vec![("dataset".to_string(), "calibration.txt".to_string())]
        );
        // The trailer is optional.
        let bare = legacy(&[("a", 1, vec![1.0])], None);
        let m = parse_legacy(Path::new("x.dat"), &bare).expect("no trailer");
        assert_eq!(m.chunk_count, None);
    }

    #[test]
    fn corrupt_files_give_typed_errors() {
        let p = Path::new("bad.dat");
        assert!(matches!(
            parse_legacy(p, &[]),
            Err(ImatrixError::Truncated { .. })
        ));
        assert!(matches!(
            parse_legacy(p, &0i32.to_le_bytes()),
            Err(ImatrixError::Malformed { .. })
        ));
        let good = legacy(&[("w", 1, vec![1.0, 2.0])], None);
        // A value count far beyond the file must be refused before any allocation.
        let mut huge = good.clone();
        let nval_at = 4 + 4 + 1 + 4;
        huge[nval_at..nval_at + 4].copy_from_slice(&i32::MAX.to_le_bytes());
        let e = parse_legacy(p, &huge).expect_err("huge count");
        assert!(matches!(e, ImatrixError::Truncated { .. }), "{e}");
        let mut negative_name = good.clone();
        negative_name[4..8].copy_from_slice(&(-5i32).to_le_bytes());
        assert!(matches!(
            parse_legacy(p, &negative_name),
            Err(ImatrixError::Malformed { .. })
        ));
        assert!(matches!(
            parse_legacy(p, &good[..good.len() - 1]),
            Err(ImatrixError::Truncated { .. })
        ));
        let negative = legacy(&[("w", 1, vec![-1.0])], None);
        assert!(matches!(
            parse_legacy(p, &negative),
            Err(ImatrixError::Malformed { .. })
        ));
        let twice = legacy(&[("w", 1, vec![1.0]), ("w", 1, vec![2.0])], None);
        assert!(matches!(
            parse_legacy(p, &twice),
            Err(ImatrixError::Malformed { .. })
        ));

        let dir = tempfile::tempdir().expect("temp dir");
        let unpaired = gguf(&[("w.in_sum2", vec![2, 1], vec![1.0, 2.0])], &[]);
        let e = read_imatrix(&write(dir.path(), "u.gguf", &unpaired)).expect_err("no counts");
        assert!(matches!(e, ImatrixError::Malformed { .. }), "{e}");
        let uneven = gguf(
            &[
                ("w.in_sum2", vec![3, 1], vec![1.0, 2.0, 3.0]),
                ("w.counts", vec![1, 2], vec![1.0, 1.0]),
            ],
            &[],
        );
        let e = read_imatrix(&write(dir.path(), "v.gguf", &uneven)).expect_err("uneven");
        assert!(matches!(e, ImatrixError::Malformed { .. }), "{e}");
        let none = gguf(&[("token_embd.weight", vec![2, 1], vec![1.0, 2.0])], &[]);
        let e =
            read_imatrix(&write(dir.path(), "m.gguf", &none)).expect_err("a model, not an imatrix");
        assert!(matches!(e, ImatrixError::Empty { .. }), "{e}");
        let mut cut = gguf(
            &[
                ("w.in_sum2", vec![1, 1], vec![1.0]),
                ("w.counts", vec![1, 1], vec![1.0]),
            ],
            &[],
        );
        cut.truncate(cut.len() - 40);
        let e = read_imatrix(&write(dir.path(), "c.gguf", &cut)).expect_err("truncated");
        assert!(matches!(e, ImatrixError::Gguf(_)), "{e}");
        let missing = read_imatrix(&dir.path().join("absent.dat")).expect_err("absent");
        assert!(matches!(missing, ImatrixError::Io { .. }));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
                let _ = parse_legacy(Path::new("x.dat"), &bytes);
            }

            #[test]
            fn flipped_legacy_files_never_panic(flip in 0usize..64, bit in 0u8..8, cut in 0usize..64) {
                let mut bytes = legacy(&[("blk.0.w", 3, vec![1.0, 2.0, 3.0]), ("b", 1, vec![4.0])], Some((2, "d")));
                if let Some(b) = bytes.get_mut(flip) {
                    *b ^= 1 << bit;
                }
                let _ = parse_legacy(Path::new("x.dat"), &bytes);
                let cut = cut.min(bytes.len());
                let _ = parse_legacy(Path::new("x.dat"), &bytes[..cut]);
            }
        }
    }
}
