//! Speed of the GGUF block quantizers, and the Rust side of `scripts/crosscheck_formats.py`.
//!
//! `cargo bench --bench gguf_formats` times every GGUF type, without and with an importance
//! matrix, on a synthetic 1024 × 1536 N(0, 1) tensor: single-threaded (the kernel on this
//! thread, as ggml's C reference runs), parallel encode (rayon over row chunks) and the whole
//! `quantize_format` pass (encode, decode and error metrics, all threads).
//!
//! With `QS_GGUF_DIR=DIR` it runs on the tensors `scripts/crosscheck_formats.py` prepared in
//! DIR (`inputs.json` lists them as raw little-endian f32 files with their rows, columns and
//! importance matrix), writes our blocks to `DIR/rust/NAME.FORMAT.MODE.bin` for the script to
//! compare byte for byte with ggml's, and writes the timings to `DIR/rust/timings.json`.
//! Speed is never asserted.

// A benchmark's output is its report: it prints the table BENCHMARKS.md records.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use quantscope::cancel::Cancel;
use quantscope::quant::formats::gguf::quantize_rows;
use quantscope::quant::formats::{FormatOutputs, QuantFormat, quantize_format};
use rayon::prelude::*;
use serde_json::{Value, json};

/// Every GGUF format.
const GGUF: [QuantFormat; 13] = [
    QuantFormat::Q8_0,
    QuantFormat::Q4_0,
    QuantFormat::Q4_1,
    QuantFormat::Q5_0,
    QuantFormat::Q5_1,
    QuantFormat::Q2_K,
    QuantFormat::Q3_K,
    QuantFormat::Q4_K,
    QuantFormat::Q5_K,
    QuantFormat::Q6_K,
    QuantFormat::Iq4_Nl,
    QuantFormat::Gguf_Mxfp4,
    QuantFormat::Gguf_Nvfp4,
];

/// Deterministic standard-normal f32 values (xorshift64* and Box–Muller), as benches/engine.rs.
fn normal_values(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.max(1);
    let mut next_unit = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        // 53 random bits scaled into (0, 1]: exact in f64, never 0.
        (bits as f64 + 1.0) / (1u64 << 53) as f64
    };
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let radius = (-2.0 * next_unit().ln()).sqrt();
        let angle = std::f64::consts::TAU * next_unit();
        // The benchmark tensor is f32.
        out.push((radius * angle.cos()) as f32);
        out.push((radius * angle.sin()) as f32);
    }
    out.truncate(len);
    out
}

/// One input tensor.
struct Tensor {
    name: String,
    rows: usize,
    cols: usize,
    values: Vec<f32>,
    imatrix: Vec<f32>,
}

/// Best wall time of `repeat` runs of `work`, in milliseconds, and the last result.
fn best_ms<T>(repeat: usize, mut work: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        let out = work();
        best = best.min(start.elapsed().as_secs_f64() * 1e3);
        last = Some(out);
    }
    (best, last.expect("at least one run"))
}

/// Encodes whole rows in parallel chunks of about 64 Ki elements (the codec's chunking).
fn encode_parallel(format: QuantFormat, t: &Tensor, imatrix: Option<&[f32]>) -> Option<Vec<u8>> {
    let rows_per_chunk = (65_536 / t.cols).max(1);
    let parts: Option<Vec<Vec<u8>>> = t
        .values
        .par_chunks(rows_per_chunk * t.cols)
        .map(|chunk| quantize_rows(format, chunk, t.cols, imatrix))
        .collect();
    parts.map(|p| p.concat())
}

/// Times one format on one tensor; returns the single-thread blocks and the timings.
fn measure(
    format: QuantFormat,
    t: &Tensor,
    with_imatrix: bool,
    repeat: usize,
) -> Option<(Vec<u8>, Value)> {
    let imatrix = with_imatrix.then_some(t.imatrix.as_slice());
    let (single_ms, single) = best_ms(repeat, || quantize_rows(format, &t.values, t.cols, imatrix));
    let single = single?;
    let (parallel_ms, parallel) = best_ms(repeat, || encode_parallel(format, t, imatrix));
    assert_eq!(
        parallel.as_ref(),
        Some(&single),
        "{format}: parallel == sequential"
    );
    let cancel = Cancel::never();
    let (full_ms, full) = best_ms(repeat, || {
        quantize_format(
            format,
            &t.values,
            &[t.rows, t.cols],
            imatrix,
            FormatOutputs::default(),
            &cancel,
        )
    });
    full.ok()?;
    let timings = json!({
        "tensor": t.name,
        "format": format.name(),
        "mode": if with_imatrix { "imatrix" } else { "none" },
        "elements": t.values.len(),
        "single_ms": single_ms,
        "parallel_encode_ms": parallel_ms,
        "quantize_format_ms": full_ms,
    });
    Some((single, timings))
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .as_chunks::<4>()
        .0
        .iter()
        .map(|b| f32::from_le_bytes(*b))
        .collect()
}

/// The tensors listed in DIR/inputs.json.
fn load_inputs(dir: &Path) -> (Vec<Tensor>, Vec<QuantFormat>, usize) {
    let text = std::fs::read_to_string(dir.join("inputs.json")).expect("inputs.json");
    let spec: Value = serde_json::from_str(&text).expect("inputs.json is JSON");
    let field = |v: &Value, k: &str| v[k].as_u64().and_then(|n| usize::try_from(n).ok());
    let tensors = spec["tensors"]
        .as_array()
        .expect("tensors")
        .iter()
        .map(|t| Tensor {
            name: t["name"].as_str().expect("name").to_owned(),
            rows: field(t, "rows").expect("rows"),
            cols: field(t, "cols").expect("cols"),
            values: read_f32(&dir.join(t["file"].as_str().expect("file"))),
            imatrix: read_f32(&dir.join(t["imatrix"].as_str().expect("imatrix"))),
        })
        .collect();
    let formats = spec["formats"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().and_then(QuantFormat::from_name))
                .collect()
        })
        .unwrap_or_else(|| GGUF.to_vec());
    (tensors, formats, field(&spec, "repeat").unwrap_or(1))
}

fn crosscheck(dir: &Path) {
    let (tensors, formats, repeat) = load_inputs(dir);
    let out_dir: PathBuf = dir.join("rust");
    std::fs::create_dir_all(&out_dir).expect("output directory");
    let mut timings = Vec::new();
    for format in formats {
        for with_imatrix in [false, true] {
            for t in &tensors {
                let Some((blocks, timing)) = measure(format, t, with_imatrix, repeat) else {
                    continue;
                };
                let mode = if with_imatrix { "imatrix" } else { "none" };
                let path = out_dir.join(format!("{}.{}.{mode}.bin", t.name, format.name()));
                std::fs::write(&path, blocks).expect("write blocks");
                timings.push(timing);
            }
        }
        eprintln!("{format}: done");
    }
    let text = serde_json::to_string_pretty(&timings).expect("timings to JSON");
    std::fs::write(out_dir.join("timings.json"), text).expect("write timings");
}

fn synthetic() {
    let (rows, cols) = (1024, 1536);
    let values = normal_values(rows * cols, 7);
    // Column mean squares as the importance matrix, as the cross-check script makes one.
    let mut imatrix = vec![0.0f32; cols];
    for row in values.chunks_exact(cols) {
        for (w, &v) in imatrix.iter_mut().zip(row) {
            *w += v * v / rows as f32;
        }
    }
    let t = Tensor {
        name: "synthetic".into(),
        rows,
        cols,
        values,
        imatrix,
    };
    println!(
        "GGUF quantizers on a {rows} × {cols} N(0,1) f32 tensor ({} threads), best of 3, ms:",
        rayon::current_num_threads()
    );
    println!(
        "{:<12} {:>8} {:>12} {:>14} {:>16}",
        "format", "imatrix", "1 thread", "parallel enc.", "quantize_format"
    );
    for format in GGUF {
        for with_imatrix in [false, true] {
            if with_imatrix && !format.uses_imatrix() {
                continue;
            }
            let Some((_, timing)) = measure(format, &t, with_imatrix, 3) else {
                continue;
            };
            println!(
                "{:<12} {:>8} {:>12.1} {:>14.1} {:>16.1}",
                format.name(),
                if with_imatrix { "yes" } else { "no" },
                timing["single_ms"].as_f64().unwrap_or(f64::NAN),
                timing["parallel_encode_ms"].as_f64().unwrap_or(f64::NAN),
                timing["quantize_format_ms"].as_f64().unwrap_or(f64::NAN),
            );
        }
    }
}

fn main() {
    match std::env::var_os("QS_GGUF_DIR") {
        Some(dir) => crosscheck(Path::new(&dir)),
        None => synthetic(),
    }
}
