//! The entry points the fuzz targets (`fuzz/fuzz_targets/`) and their replay test
//! (`tests/fuzz_replay.rs`) share, one per target, so both run exactly the same code.
//!
//! Each entry takes arbitrary bytes, opens them the way a user's file is opened, decodes what
//! opened, and panics only when the library breaks one of its own promises (a wrong length, a
//! single-element decode that disagrees with the whole-tensor decode, a raw byte count that
//! disagrees with the listing). Malformed input must come back as a typed error, never a panic;
//! a panic here is a finding, which is why this harness (and only it) asserts with `expect`.
//! Each entry returns whether the input was accepted (opened or parsed), so the replay test can
//! check that a corpus still reaches past the first validation. Not part of the stable API.

use crate::cancel::Cancel;
use crate::cli::args::FormatArg;
use crate::cli::bits::{analyses, analysis_json, parse_input};
use crate::float::{BitsInput, FloatFormat, Overflow};
use crate::plan::candidate::Candidate;
use crate::plan::formats::QuantFormats;
use crate::plan::sweep::FormatEvaluator;
use crate::report::recipe::Recipe;
use crate::tensor::imatrix::{ImatrixFormat, read_imatrix};
use crate::tensor::{LoadError, Model};

/// The largest element count the entries decode in full. Sizes are checked against the input
/// length before this point, so from a fuzzer's small inputs every tensor is below it; the cap
/// only keeps a long replayed input from turning one case into a slow one.
const DECODE_LIMIT: u64 = 1 << 24;

/// Opens `bytes` as a `.safetensors` file (header and data) and decodes every tensor.
pub fn safetensors(bytes: &[u8]) -> bool {
    open_and_decode("fuzz.safetensors", bytes).is_ok()
}

/// Opens `bytes` as a `.gguf` file (metadata, tensor infos, every ggml block type) and decodes
/// every tensor.
pub fn gguf(bytes: &[u8]) -> bool {
    open_and_decode("fuzz.gguf", bytes).is_ok()
}

/// Opens `bytes` as a `.npy` file and decodes its array.
pub fn npy(bytes: &[u8]) -> bool {
    open_and_decode("fuzz.npy", bytes).is_ok()
}

/// Opens `bytes` as a `.npz` archive and decodes every `.npy` member.
pub fn npz(bytes: &[u8]) -> bool {
    open_and_decode("fuzz.npz", bytes).is_ok()
}

/// The name the fuzzed shard gets in [`sharded_index`].
pub const FUZZED_SHARD: &str = "model-00002-of-00002.safetensors";
/// The name of the fixed, valid shard beside it.
pub const FIXED_SHARD: &str = "model-00001-of-00002.safetensors";

/// A sharded model: `bytes` up to the first NUL is `model.safetensors.index.json`; what follows
/// the NUL (if any) is written as [`FUZZED_SHARD`]. A fixed valid shard [`FIXED_SHARD`] holding
/// tensors `a` (`F32 [2]`) and `b` (`BF16 [2]`) sits beside them. The folder is a fresh temporary
/// one per call; the model is opened from the index file and from the folder, as a user would.
pub fn sharded_index(bytes: &[u8]) -> bool {
    let (index, shard) = match bytes.iter().position(|&b| b == 0) {
        Some(nul) => (&bytes[..nul], Some(&bytes[nul + 1..])),
        None => (bytes, None),
    };
    let Ok(dir) = tempfile::tempdir() else {
        return false;
    };
    let written = std::fs::write(dir.path().join(FIXED_SHARD), fixed_shard())
        .and_then(|()| std::fs::write(dir.path().join("model.safetensors.index.json"), index))
        .and_then(|()| match shard {
            Some(shard) => std::fs::write(dir.path().join(FUZZED_SHARD), shard),
            None => Ok(()),
        });
    if written.is_err() {
        return false;
    }
    let mut opened = false;
    for path in [
        dir.path().join("model.safetensors.index.json"),
        dir.path().to_path_buf(),
    ] {
        if let Ok(model) = Model::open(&path) {
            check_model(&model);
            opened = true;
        }
    }
    opened
}

/// The safetensors bytes of [`FIXED_SHARD`]: `a` F32 [1.0, -2.0], `b` BF16 [1.0, 0.5].
pub fn fixed_shard() -> Vec<u8> {
    let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]}}"#;
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    out.extend(1.0f32.to_le_bytes());
    out.extend((-2.0f32).to_le_bytes());
    // bf16 1.0 = 0x3F80, 0.5 = 0x3F00.
    out.extend([0x80, 0x3F, 0x00, 0x3F]);
    out
}

/// The `--format` choices of the `bits` command, in the order the selector byte of
/// [`bits_value`] picks them (its low 7 bits modulo the count).
const FORMATS: [FormatArg; 11] = [
    FormatArg::All,
    FormatArg::Fp32,
    FormatArg::Fp16,
    FormatArg::Bf16,
    FormatArg::Fp8E4m3,
    FormatArg::Fp8E5m2,
    FormatArg::Fp6E2m3,
    FormatArg::Fp6E3m2,
    FormatArg::Fp4E2m1,
    FormatArg::E8m0,
    FormatArg::Ue4m3,
];

/// The `bits` command's VALUE parser and analyses: the first byte picks `--format` (its low 7
/// bits, see `FORMATS`) and the overflow policy (its high bit), the rest (as UTF-8, lossily)
/// is the VALUE text.
pub fn bits_value(bytes: &[u8]) -> bool {
    let Some((&selector, text)) = bytes.split_first() else {
        return false;
    };
    let format = FORMATS[usize::from(selector & 0x7F) % FORMATS.len()];
    let overflow = if selector & 0x80 == 0 {
        Overflow::Saturate
    } else {
        Overflow::NonFinite
    };
    let text = String::from_utf8_lossy(text);
    let Ok(input) = parse_input(&text, format) else {
        return false;
    };
    let rows = analyses(input, format, overflow);
    let expected_rows = if format == FormatArg::All {
        FloatFormat::ALL.len()
    } else {
        1
    };
    assert_eq!(rows.len(), expected_rows, "one analysis per format shown");
    for row in &rows {
        let json = analysis_json(row, overflow);
        assert!(json.get("hex").is_some_and(|h| h.is_string()));
        if let BitsInput::Pattern { format, bits } = input
            && row.format == format
        {
            assert_eq!(
                row.bits, bits,
                "a pattern's own format shows the pattern itself"
            );
        }
    }
    true
}

/// Reads `bytes` as an importance matrix (`llama-imatrix`'s GGUF output when they start with
/// "GGUF", the legacy `imatrix.dat` binary otherwise) with [`read_imatrix`], which takes a
/// path: the bytes are written to a fresh temporary file (in `TMPDIR`, which `scripts/fuzz.sh`
/// points at tmpfs). A read matrix must keep the reader's promises: at least one entry, each
/// with at least one matrix of at least one column, its weights finite and non-negative, and
/// lined up with a tensor of matching shape so that every element's weight is the weight of
/// its column in its matrix.
pub fn imatrix(bytes: &[u8]) -> bool {
    let Ok(mut file) = tempfile::Builder::new().suffix(".imatrix").tempfile() else {
        return false;
    };
    {
        use std::io::Write;
        if file.write_all(bytes).and_then(|()| file.flush()).is_err() {
            return false;
        }
    }
    let Ok(matrix) = read_imatrix(file.path()) else {
        return false;
    };
    let gguf = bytes.starts_with(b"GGUF");
    assert_eq!(
        matrix.format,
        if gguf {
            ImatrixFormat::Gguf
        } else {
            ImatrixFormat::Legacy
        },
        "the layout follows the magic"
    );
    assert!(!matrix.entries.is_empty(), "a read imatrix has entries");
    for (name, entry) in &matrix.entries {
        let len = entry.weights.len();
        assert!(entry.matrices >= 1, "'{name}': at least one matrix");
        if !gguf {
            assert_eq!(entry.matrices, 1, "'{name}': legacy entries keep one count");
        }
        assert!(
            len > 0 && len.is_multiple_of(entry.matrices),
            "'{name}': {len} weights in {} matrices",
            entry.matrices
        );
        assert!(
            entry.weights.iter().all(|w| w.is_finite() && *w >= 0.0),
            "'{name}': weights are finite and non-negative"
        );
        let columns = len / entry.matrices;
        // A tensor the entry fits: [rows, columns] for one matrix, [experts, rows, columns]
        // for several (two rows each, so the columns repeat).
        let shape = if entry.matrices == 1 {
            vec![2, columns]
        } else {
            vec![entry.matrices, 2, columns]
        };
        let lined_up = entry
            .for_shape(&shape)
            .expect("an entry fits a tensor of its own shape");
        for matrix_index in [0, entry.matrices - 1] {
            for column in [0, columns / 2, columns - 1] {
                let flat = (matrix_index * 2 + 1) * columns + column;
                let weight = lined_up.weight_at(flat);
                let expected = entry.weights[matrix_index * columns + column];
                assert_eq!(
                    weight.to_bits(),
                    expected.to_bits(),
                    "'{name}': element {flat} weighs its column's weight"
                );
            }
        }
    }
    true
}

/// Reads `bytes` as a recipe (the JSON `plan --out` writes and `quantize --recipe` reads,
/// [`Recipe::from_bytes`]), then uses it as its readers do: each tensor's candidate id
/// parsed back ([`Candidate::parse`] against the deployed formats) and llama-quantize's
/// `--tensor-type` arguments (a list or the reason there is none). A read recipe must write
/// back to JSON that reads again to the same tensors.
pub fn recipe(bytes: &[u8]) -> bool {
    // The reader `quantize --recipe` uses: JSON, then the check that every format is known.
    let Ok(recipe) = Recipe::from_bytes(bytes) else {
        return false;
    };
    for tensor in &recipe.tensors {
        if let Some(id) = &tensor.candidate {
            // Either a candidate or a typed reason; the result itself is not promised.
            let _ = Candidate::parse(id, |name| QuantFormats.knows(name));
        }
    }
    if let Ok(arguments) = recipe.llama_quantize_tensor_types() {
        assert!(
            arguments.len() <= recipe.tensors.len(),
            "at most one --tensor-type per tensor"
        );
        for argument in &arguments {
            assert!(
                argument.starts_with('^') && argument.contains("$="),
                "an anchored pattern: {argument}"
            );
        }
    }
    let text = serde_json::to_string(&recipe).expect("a read recipe writes as JSON");
    let again: Recipe = serde_json::from_str(&text).expect("a written recipe reads back");
    assert_eq!(again.tensors.len(), recipe.tensors.len());
    for (a, b) in again.tensors.iter().zip(&recipe.tensors) {
        assert_eq!(
            (&a.name, &a.shape, a.numel, &a.candidate, &a.format, &a.why),
            (&b.name, &b.shape, b.numel, &b.candidate, &b.format, &b.why),
            "a tensor reads back as written"
        );
    }
    true
}

/// Opens `bytes` as the file `file_name` and checks every tensor.
fn open_and_decode(file_name: &str, bytes: &[u8]) -> Result<(), LoadError> {
    let model = Model::from_file_bytes(file_name, bytes.to_vec())?;
    check_model(&model);
    Ok(())
}

/// Decodes every tensor of `model` (up to [`DECODE_LIMIT`] elements each) and checks what the
/// listing promises: raw byte counts, whole-tensor lengths, and single elements equal to the
/// whole-tensor decode at the first, middle and last position.
fn check_model(model: &Model) {
    let never = Cancel::never();
    for (index, info) in model.tensors().iter().enumerate() {
        let raw = model
            .raw_bytes(index)
            .expect("a listed tensor's bytes lie inside its file");
        assert_eq!(raw.len() as u64, info.size_bytes, "{}", info.name);
        assert_eq!(
            info.dtype.size_bytes_for(info.numel()),
            Some(info.size_bytes),
            "{}: size matches dtype and shape",
            info.name
        );
        let numel = info.numel();
        if numel > DECODE_LIMIT {
            continue;
        }
        let values = match model.values_f32(index, &never) {
            Ok(values) => values,
            Err(LoadError::Unsupported { .. }) => {
                assert!(!info.dtype.is_decodable(), "{} decodes", info.dtype);
                assert!(matches!(
                    model.value_f32_at(index, 0),
                    Err(LoadError::Unsupported { .. }) | Err(LoadError::NoSuchElement { .. })
                ));
                continue;
            }
            Err(e) => panic!("a listed {} tensor failed to decode: {e}", info.dtype),
        };
        assert_eq!(values.len() as u64, numel, "{}", info.name);
        for flat in [0, numel / 2, numel.saturating_sub(1)] {
            let Some(&whole) = values.get(flat as usize) else {
                continue;
            };
            let one = model
                .value_f32_at(index, flat)
                .expect("an element of a decodable tensor decodes");
            assert!(
                one.to_bits() == whole.to_bits() || (one.is_nan() && whole.is_nan()),
                "{} element {flat}: {one} alone, {whole} in the whole tensor",
                info.name
            );
        }
    }
}
