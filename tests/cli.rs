//! The CLI end to end: the built binary on safetensors fixtures these tests write themselves.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

fn quantscope() -> Command {
    Command::cargo_bin("quantscope").expect("the binary is built")
}

/// Writes a safetensors file of F32 tensors.
fn write_f32(path: &Path, tensors: &[(&str, Vec<usize>, Vec<f32>)]) {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), b).expect("consistent fixture");
            (name.to_string(), view)
        })
        .collect();
    let data = safetensors::tensor::serialize(views, None).expect("serializable fixture");
    std::fs::write(path, data).expect("fixture written");
}

/// The seed vector of NUMERICS.md §2 plus a 2x3 matrix for per-channel runs.
fn seed_model(dir: &Path) -> PathBuf {
    let path = dir.join("seed.safetensors");
    write_f32(
        &path,
        &[
            ("seed", vec![5], vec![-2.5, -1.0, 0.0, 1.0, 3.5]),
            ("matrix", vec![2, 3], vec![-1.2, 0.0, 2.0, 0.5, 0.25, -4.0]),
        ],
    );
    path
}

fn json_of(output: &[u8]) -> Value {
    serde_json::from_slice(output).expect("stdout is JSON")
}

fn i32_tensor(file: &Path, name: &str) -> Vec<i32> {
    let bytes = std::fs::read(file).expect("output exists");
    let st = SafeTensors::deserialize(&bytes).expect("valid safetensors");
    let view = st.tensor(name).expect("tensor present");
    assert_eq!(view.dtype(), Dtype::I32);
    view.data()
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[test]
fn bits_json_has_the_stable_keys_and_known_patterns() {
    let out = quantscope()
        .args(["bits", "1", "--json"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let rows = json_of(&out.stdout);
    let rows = rows.as_array().expect("an array");
    assert_eq!(rows.len(), 10);
    // 1.0: FP32 0x3f800000, FP16 0x3c00, BF16 0x3f80, E4M3 0x38 (exponent 7 = bias), E5M2 0x3c,
    // FP6 E2M3 0 01 000 = 0x08, FP6 E3M2 0 011 00 = 0x0c, FP4 E2M1 0 01 0 = 0x2, E8M0 127 = 0x7f,
    // UE4M3 0111 000 = 0x38.
    let hexes: Vec<&str> = rows
        .iter()
        .map(|r| r["hex"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        hexes,
        [
            "0x3f800000",
            "0x3c00",
            "0x3f80",
            "0x38",
            "0x3c",
            "0x08",
            "0x0c",
            "0x2",
            "0x7f",
            "0x38"
        ]
    );
    let fp16 = &rows[1];
    assert_eq!(fp16["format"], "fp16");
    assert_eq!(fp16["sign"], "0");
    assert_eq!(fp16["exponent"], "01111");
    assert_eq!(fp16["mantissa"], "0000000000");
    assert_eq!(fp16["value"], 1.0);
    assert_eq!(fp16["class"], "normal");
}

#[test]
fn bits_shows_the_seed_overflow_and_underflow() {
    let out = quantscope()
        .args(["bits", "1e8", "--format", "fp16", "--json"])
        .output()
        .expect("runs");
    let row = &json_of(&out.stdout)[0];
    assert_eq!(row["value"], "inf");
    assert_eq!(row["class"], "inf");
    assert_eq!(row["hex"], "0x7c00");
    let out = quantscope()
        .args(["bits", "1e-8", "--format", "fp16", "--json"])
        .output()
        .expect("runs");
    assert_eq!(json_of(&out.stdout)[0]["class"], "zero");
    // FP8 E4M3 overflow: saturate by default (448), NaN with --overflow nan.
    let out = quantscope()
        .args(["bits", "1000", "--format", "fp8-e4m3", "--json"])
        .output()
        .expect("runs");
    assert_eq!(json_of(&out.stdout)[0]["value"], 448.0);
    let out = quantscope()
        .args([
            "bits",
            "1000",
            "--format",
            "fp8-e4m3",
            "--overflow",
            "nan",
            "--json",
        ])
        .output()
        .expect("runs");
    assert_eq!(json_of(&out.stdout)[0]["value"], "nan");
    // A hex pattern is read in the format its width names.
    let out = quantscope()
        .args(["bits", "0x7e", "--format", "fp8-e4m3", "--json"])
        .output()
        .expect("runs");
    assert_eq!(json_of(&out.stdout)[0]["value"], 448.0);
}

/// `bits VALUE --format FORMAT --json [extra...]`, the one row it prints.
fn bits_row(value: &str, format: &str, extra: &[&str]) -> serde_json::Value {
    let out = quantscope()
        .args(["bits", value, "--format", format, "--json"])
        .args(extra)
        .output()
        .expect("runs");
    assert!(out.status.success(), "bits {value} --format {format}");
    json_of(&out.stdout)[0].clone()
}

#[test]
fn bits_shows_the_mx_element_and_scale_formats() {
    // FP4 E2M1: 5 is the tie between 4 (0 11 0, even) and 6 (0 11 1): RNE gives 4.
    let row = bits_row("5", "fp4-e2m1", &[]);
    assert_eq!(
        (row["hex"].clone(), row["value"].clone()),
        ("0x6".into(), 4.0.into())
    );
    assert_eq!(row["exponent"], "11");
    assert_eq!(row["mantissa"], "0");
    // No Inf or NaN: 100 saturates to 6 even with --overflow nan.
    assert_eq!(
        bits_row("100", "fp4-e2m1", &["--overflow", "nan"])["value"],
        6.0
    );
    // FP6 E3M2 max 28 = 0 111 11; FP6 E2M3 0.125 is its smallest subnormal 0 00 001.
    let row = bits_row("28", "fp6-e3m2", &[]);
    assert_eq!(
        (row["hex"].clone(), row["class"].clone()),
        ("0x1f".into(), "normal".into())
    );
    let row = bits_row("0.125", "fp6-e2m3", &[]);
    assert_eq!(
        (row["hex"].clone(), row["class"].clone()),
        ("0x01".into(), "subnormal".into())
    );
    // E8M0: no sign and no mantissa; 3 = 1.5 · 2 is a tie that goes up to 4 (code 129).
    let row = bits_row("3", "e8m0", &[]);
    assert_eq!(
        (row["hex"].clone(), row["value"].clone()),
        ("0x81".into(), 4.0.into())
    );
    assert!(row["sign"].is_null() && row["mantissa"].is_null());
    assert_eq!(row["exponent"], "10000001");
    assert_eq!(row["formula"], "2^(129 - 127) = 4");
    // The pattern 0x00 read as E8M0 is 2^-127, not zero.
    let row = bits_row("0x00", "e8m0", &[]);
    assert_eq!(row["value"], 2f64.powi(-127));
    assert_eq!(row["class"], "normal");
    assert_eq!(
        bits_row("0", "e8m0", &["--overflow", "nan"])["value"],
        "nan"
    );
    // UE4M3: 448 = 1111 110 with no sign bit; a negative value is NaN under --overflow nan.
    let row = bits_row("448", "ue4m3", &[]);
    assert_eq!(
        (row["hex"].clone(), row["sign"].clone()),
        ("0x7e".into(), serde_json::Value::Null)
    );
    assert_eq!(
        bits_row("-1", "ue4m3", &["--overflow", "nan"])["class"],
        "nan"
    );
}

#[test]
fn quantize_reproduces_the_numerics_check_values_through_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = seed_model(dir.path());
    let cases = [
        ("onnxruntime", "asymmetric", vec![0, 64, 106, 148, 255]),
        ("pytorch", "asymmetric", vec![0, 64, 106, 148, 255]),
        ("textbook", "asymmetric", vec![0, 63, 106, 149, 255]),
        ("tflite", "asymmetric", vec![0, 63, 106, 149, 255]),
        ("onnxruntime", "symmetric", vec![-91, -36, 0, 36, 127]),
        ("pytorch", "symmetric", vec![-91, -36, 0, 36, 127]),
    ];
    for (preset, scheme, want) in cases {
        let out_file = dir.path().join(format!("{preset}-{scheme}.safetensors"));
        let out = quantscope()
            .args(["quantize"])
            .arg(&model)
            .args([
                "--tensor", "seed", "--preset", preset, "--scheme", scheme, "--json", "--output",
            ])
            .arg(&out_file)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{preset} {scheme}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            i32_tensor(&out_file, "seed.codes"),
            want,
            "{preset} {scheme}"
        );
        let report = &json_of(&out.stdout)[0];
        if scheme == "asymmetric" {
            assert_eq!(i32_tensor(&out_file, "seed.zero_point"), vec![106]);
            // Same MSE and SQNR whichever way the two ties go (NUMERICS.md §2).
            let mse = report["metrics"]["mse"].as_f64().unwrap_or(f64::NAN);
            assert!((mse - 6.92042e-5).abs() < 1e-9, "{preset}: mse {mse}");
            let sqnr = report["metrics"]["sqnr_db"].as_f64().unwrap_or(f64::NAN);
            assert!((sqnr - 47.73).abs() < 0.005, "{preset}: sqnr {sqnr}");
        }
    }
}

#[test]
fn quantize_json_keys_and_per_channel_shapes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = seed_model(dir.path());
    let out_file = dir.path().join("q.safetensors");
    let out = quantscope()
        .arg("quantize")
        .arg(&model)
        .args([
            "--tensor",
            "matrix",
            "--granularity",
            "channel",
            "--json",
            "--output",
        ])
        .arg(&out_file)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = &json_of(&out.stdout)[0];
    for key in [
        "name",
        "shape",
        "settings",
        "clip_min",
        "clip_max",
        "metrics",
        "bits_per_weight",
        "outliers",
        "elapsed_ms",
    ] {
        assert!(report.get(key).is_some(), "missing {key}");
    }
    for key in [
        "mse",
        "rmse",
        "mae",
        "max_abs_error",
        "sqnr_db",
        "cosine",
        "clipped_fraction",
    ] {
        assert!(
            report["metrics"].get(key).is_some(),
            "missing metrics.{key}"
        );
    }
    assert!(report["outliers"]["count"].is_u64() && report["outliers"]["fraction"].is_number());
    // Per channel along axis 0 of [2, 3]: two rows, absmax 2 and 4 -> clip arrays of two.
    assert_eq!(report["clip_max"], serde_json::json!([2.0, 4.0]));
    assert_eq!(report["clip_min"], serde_json::json!([-2.0, -4.0]));
    // Row 0 [-1.2, 0, 2], S = 2/127: -76.2 -> -76, 0, 127.
    // Row 1 [0.5, 0.25, -4], S = 4/127: 15.875 -> 16, 7.9375 -> 8, -127.
    assert_eq!(
        i32_tensor(&out_file, "matrix.codes"),
        vec![-76, 0, 127, 16, 8, -127]
    );
    assert_eq!(i32_tensor(&out_file, "matrix.zero_point"), vec![0, 0]);
}

#[test]
fn inspect_lists_tensors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = seed_model(dir.path());
    let out = quantscope()
        .arg("inspect")
        .arg(&model)
        .args(["--json", "--stats"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let report = json_of(&out.stdout);
    assert_eq!(report["tensor_count"], 2);
    let seed = report["tensors"]
        .as_array()
        .and_then(|t| t.iter().find(|r| r["name"] == "seed"))
        .cloned()
        .expect("seed listed");
    assert_eq!(seed["dtype"], "F32");
    assert_eq!(seed["shape"], serde_json::json!([5]));
    let stats = &seed["stats"];
    assert_eq!(stats["min"], -2.5);
    assert_eq!(stats["max"], 3.5);
    assert_eq!(stats["absmax"], 3.5);
    // numpy.mean([-2.5, -1, 0, 1, 3.5]) = 0.2; numpy.percentile(x, 50) = 0.
    assert!((stats["mean"].as_f64().unwrap_or(f64::NAN) - 0.2).abs() < 1e-12);
    assert_eq!(stats["percentiles"][2], serde_json::json!([50.0, 0.0]));
}

#[test]
fn bad_input_exits_1_and_bad_usage_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.safetensors");
    let out = quantscope()
        .arg("inspect")
        .arg(&missing)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("missing.safetensors") && stderr.lines().count() == 1,
        "{stderr}"
    );

    let corrupt = dir.path().join("corrupt.safetensors");
    std::fs::write(&corrupt, [200u8, 0, 0, 0, 0, 0, 0, 0, b'{']).expect("written");
    let out = quantscope()
        .arg("quantize")
        .arg(&corrupt)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt.safetensors"));

    let model = seed_model(dir.path());
    for args in [
        vec!["--bits", "9"],
        vec!["--bits", "1"],
        vec!["--percentile", "0", "--calibration", "percentile"],
        vec!["--nonsense"],
    ] {
        let out = quantscope()
            .arg("quantize")
            .arg(&model)
            .args(&args)
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = quantscope()
        .arg("quantize")
        .arg(&model)
        .args(["--tensor", "nope"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tensor named 'nope'"));
}

#[test]
fn output_never_overwrites_an_input_and_failures_leave_files_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = seed_model(dir.path());
    let before = std::fs::read(&model).expect("fixture");
    let out = quantscope()
        .arg("quantize")
        .arg(&model)
        .arg("--output")
        .arg(&model)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read(&model).expect("still there"), before);

    let existing = dir.path().join("existing.safetensors");
    std::fs::write(&existing, b"keep me").expect("written");
    let out = quantscope()
        .arg("quantize")
        .arg(&model)
        .args(["--tensor", "nope", "--output"])
        .arg(&existing)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read(&existing).expect("still there"), b"keep me");
}
