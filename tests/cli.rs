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
            "--full",
            "--output",
        ])
        .arg(&out_file)
        .assert()
        .success()
        .get_output()
        .clone();
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

    // Without --full the per-channel arrays are summarised: min, max and mean of each.
    let out = quantscope()
        .arg("quantize")
        .arg(&model)
        .args(["--tensor", "matrix", "--granularity", "channel", "--json"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let report = &json_of(&out.stdout)[0];
    assert_eq!(
        report["clip_max"],
        serde_json::json!({"min": 2.0, "max": 4.0, "mean": 3.0})
    );
    // --full without --json is a usage error.
    let out = quantscope()
        .arg("quantize")
        .arg(&model)
        .arg("--full")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
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

/// One .npy member: little-endian f32, C order, version 1.0 header padded to 64 bytes.
fn npy_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    let shape_text = match dims.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&u16::try_from(header.len()).expect("short").to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    bytes
}

/// Writes an .npz of the given members (stored, as numpy's savez does).
fn write_npz(path: &Path, members: &[(&str, Vec<usize>, Vec<f32>)]) {
    use std::io::Write;
    let file = std::fs::File::create(path).expect("created");
    let mut zip = zip::ZipWriter::new(file);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, shape, values) in members {
        zip.start_file(format!("{name}.npy"), stored)
            .expect("member");
        zip.write_all(&npy_f32(shape, values)).expect("written");
    }
    zip.finish().expect("finished");
}

/// Two batches of 2 rows x 3 features. Batch 0: min -2, max 3, |x| in [0.25, 3];
/// batch 1: min -6, max 4, and a 0 that lies below batch 0's smallest |x|.
fn calibration_batches(dir: &Path) -> PathBuf {
    let path = dir.join("acts.npz");
    write_npz(
        &path,
        &[
            ("batch_01", vec![2, 3], vec![-6.0, 1.0, 2.0, 0.0, 0.5, 4.0]),
            (
                "batch_00",
                vec![2, 3],
                vec![1.0, -2.0, 0.5, 0.25, 3.0, -1.0],
            ),
        ],
    );
    path
}

#[test]
fn inspect_batches_reports_each_step_and_per_feature_ranges() {
    let dir = tempfile::tempdir().expect("temp dir");
    let acts = calibration_batches(dir.path());
    let out = quantscope()
        .arg("inspect")
        .arg(&acts)
        .args(["--batches", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let doc = json_of(&out.stdout);
    assert_eq!(doc["batches"], serde_json::json!(["batch_00", "batch_01"]));
    assert_eq!(doc["rows"], serde_json::json!([2, 2]));
    let steps = &doc["calibration"]["steps"];
    assert_eq!(steps[0]["minmax"], serde_json::json!([-2.0, 3.0]));
    assert_eq!(steps[1]["minmax"], serde_json::json!([-6.0, 4.0]));
    // ONNX Runtime's moving average, c = 0.01 in f32: -2 + c(-6 + 2), 3 + c(4 - 3).
    let c = 0.01f32;
    let want = [-2.0f32 + c * (-6.0 + 2.0), 3.0 + c * (4.0 - 3.0)];
    let got: Vec<f32> = steps[1]["moving_average"]
        .as_array()
        .expect("pair")
        .iter()
        .map(|v| v.as_f64().expect("number") as f32)
        .collect();
    assert_eq!(got, want);
    // The histogram starts with 2048 bins on [0.25, 3], grows past 6 in steps of the first
    // bin's width, and never counts the 0 of batch 1 (below the first edge).
    let h = &steps[1]["histogram_tensorrt"];
    assert!(h["bins"].as_u64().expect("bins") > 4096, "{h}");
    assert_eq!(h["counted"], 11);
    assert_eq!(h["dropped"], 1);
    assert_eq!(h["first_edge"], 0.25);
    let amax = steps[1]["percentile_tensorrt"].as_f64().expect("amax");
    assert!(amax > 5.99 && amax <= 6.0, "{amax}");
    let per_channel = &doc["calibration"]["per_channel"];
    assert_eq!(per_channel["min"], serde_json::json!([-6.0, -2.0, -1.0]));
    assert_eq!(per_channel["max"], serde_json::json!([1.0, 3.0, 4.0]));

    let text = quantscope()
        .arg("inspect")
        .arg(&acts)
        .arg("--batches")
        .output()
        .expect("runs");
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("2 calibration batches of 3 features (rows 2, 2)"),
        "{text}"
    );
    assert!(text.contains("batch_01"), "{text}");
    assert!(text.contains("[-6.000000, 4.000000]"), "{text}");
    assert!(
        text.contains("1 values below the first batch's smallest |x|"),
        "{text}"
    );
}

#[test]
fn quantize_with_calibration_batches_applies_the_learned_range() {
    let dir = tempfile::tempdir().expect("temp dir");
    let acts = calibration_batches(dir.path());
    let run = |extra: &[&str]| {
        quantscope()
            .arg("quantize")
            .arg(&acts)
            .arg("--calibration-batches")
            .arg(&acts)
            .args(extra)
            .output()
            .expect("runs")
    };
    // Min-max over both batches: [-6, 4]; symmetric int8 S = 6/127 for every tensor.
    let out = run(&["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json_of(&out.stdout);
    assert_eq!(
        doc["calibration_batches"]["range"],
        serde_json::json!([-6.0, 4.0])
    );
    let tensors = doc["tensors"].as_array().expect("tensors");
    assert_eq!(tensors.len(), 2);
    for t in tensors {
        assert_eq!(t["clip_max"], serde_json::json!(6.0), "{t}");
    }
    // Moving average, c = 0.5: the batch absmax 3 then 6 average to 3 + 0.5 (6 - 3) = 4.5.
    let out = run(&["--json", "--moving-average", "0.5"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json_of(&out.stdout);
    assert_eq!(
        doc["calibration_batches"]["range"],
        serde_json::json!([-4.5, 4.5])
    );
    assert_eq!(doc["tensors"][1]["clip_max"], serde_json::json!(4.5));
    // The text report prints the steps and the range it applies.
    let out = run(&["--calibration", "entropy"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("TensorRT HistogramCalibrator entropy"),
        "{text}"
    );
    // Settings that cannot work over batches are usage errors.
    for extra in [
        vec!["--calibration", "mse"],
        vec!["--granularity", "channel"],
        vec!["--calibration", "entropy", "--scheme", "asymmetric"],
        vec!["--calibration", "percentile", "--moving-average", "0.1"],
    ] {
        let out = run(&extra);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A file that is not laid out as batches is bad input, named in the message.
    let other = dir.path().join("other.npz");
    write_npz(
        &other,
        &[
            ("batch_00", vec![1, 2], vec![1.0, 2.0]),
            ("labels", vec![1], vec![0.0]),
        ],
    );
    let out = quantscope()
        .arg("inspect")
        .arg(&other)
        .arg("--batches")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("other.npz") && stderr.contains("'labels'"),
        "{stderr}"
    );
}

#[test]
fn an_integer_tensor_is_listed_but_not_quantized() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ids.safetensors");
    let ids: Vec<u8> = [0i64, 1, 2, 3]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let w: Vec<u8> = [0.5f32, -1.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let tensors = [
        (
            "position_ids",
            safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![1, 4], &ids)
                .expect("fixture"),
        ),
        (
            "w",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &w)
                .expect("fixture"),
        ),
    ];
    std::fs::write(
        &path,
        safetensors::tensor::serialize(tensors, None).expect("ok"),
    )
    .expect("written");
    let out = quantscope()
        .arg("inspect")
        .arg(&path)
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&out.stdout).contains("position_ids"));
    // The default selection skips it...
    let out = quantscope()
        .args(["quantize", "--json"])
        .arg(&path)
        .output()
        .expect("runs");
    let reports = json_of(&out.stdout);
    assert_eq!(reports.as_array().map(Vec::len), Some(1));
    assert_eq!(reports[0]["name"], "w");
    // ...and naming it is a clear error.
    let out = quantscope()
        .args(["quantize", "--tensor", "position_ids"])
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'position_ids' is an integer tensor (I64)"),
        "{err}"
    );
}

// ------------------------------------------------------------------------- deployed formats

/// "w" [4, 64] and "wide" [2, 384]: irregular sawtooth values (no ties, no zero blocks).
fn formats_model(dir: &Path) -> PathBuf {
    let path = dir.join("formats.safetensors");
    // u16 arithmetic: 255 * 37 and 767 * 53 stay below 65,536; every value is exact in f32.
    let w: Vec<f32> = (0..256u16)
        .map(|i| (f32::from(i * 37 % 101) - 50.0) / 7.0)
        .collect();
    let wide: Vec<f32> = (0..768u16)
        .map(|i| (f32::from(i * 53 % 97) - 48.0) / 13.0)
        .collect();
    write_f32(
        &path,
        &[("w", vec![4, 64], w), ("wide", vec![2, 384], wide)],
    );
    path
}

/// `quantize FILE --json ARGS...`, its one JSON array.
fn quantize_json(file: &Path, args: &[&str]) -> Vec<Value> {
    let out = quantscope()
        .arg("quantize")
        .arg(file)
        .arg("--json")
        .args(args)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "quantize {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_of(&out.stdout)
        .as_array()
        .cloned()
        .expect("a JSON array")
}

#[test]
fn quantize_format_q8_0_reports_the_format_and_its_true_storage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = formats_model(dir.path());
    let rows = quantize_json(&file, &["--format", "q8_0", "--tensor", "w"]);
    let [row] = rows.as_slice() else {
        panic!("one tensor: {rows:?}")
    };
    assert_eq!(row["format"], "q8_0");
    assert_eq!(row["settings"]["format"], "q8_0");
    // 34 bytes (an f16 scale + 32 int8) per 32 weights.
    assert_eq!(row["bits_per_weight"], 8.5);
    assert!(row.get("fallback_from").is_none(), "{row}");
}

#[test]
fn quantize_format_q4_k_on_384_columns_falls_back_to_q5_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = formats_model(dir.path());
    let rows = quantize_json(&file, &["--format", "q4_k", "--tensor", "wide"]);
    let [row] = rows.as_slice() else {
        panic!("one tensor: {rows:?}")
    };
    // 384 is not a multiple of Q4_K's 256-element super-block: llama-quantize takes Q5_0.
    assert_eq!(row["name"], "wide");
    assert_eq!(row["format"], "q5_0");
    assert_eq!(row["fallback_from"], "q4_k");
    assert_eq!(row["bits_per_weight"], 5.5);
}

#[test]
fn a_format_gguf_cannot_store_is_a_usage_error_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = formats_model(dir.path());
    let gguf = dir.path().join("x.gguf");
    let out = quantscope()
        .arg("quantize")
        .arg(&file)
        .args(["--format", "mxfp4", "--output"])
        .arg(&gguf)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("GGUF"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!gguf.exists());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("formats.safetensors")]);
}

/// The committed known bytes of `quantize --format q4_0 --tensor w --output X.gguf` and what
/// gguf-py reads back from them (scripts/gguf_py_readback.py).
const Q4_0_GGUF: &str = "tests/fixtures/formats/cli_q4_0.gguf";
const Q4_0_GGUF_PY: &str = "tests/fixtures/formats/cli_q4_0.gguf_py.json";

#[test]
fn quantize_q4_0_to_gguf_writes_known_bytes_that_gguf_py_reads_back_to_our_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = formats_model(dir.path());
    let gguf = dir.path().join("x.gguf");
    quantscope()
        .arg("quantize")
        .arg(&file)
        .args(["--format", "q4_0", "--tensor", "w", "--output"])
        .arg(&gguf)
        .assert()
        .success();
    let got = std::fs::read(&gguf).expect("written");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join(Q4_0_GGUF);
    if std::env::var_os("QUANTSCOPE_BLESS").is_some() {
        std::fs::write(&fixture, &got).expect("blessed");
    }
    let want = std::fs::read(&fixture).expect("committed fixture");
    assert!(
        got == want,
        "the GGUF bytes changed: rerun with QUANTSCOPE_BLESS=1, then scripts/gguf_py_readback.py"
    );

    // The same run to safetensors keeps w.dequantized: gguf-py's values, bit for bit.
    let st = dir.path().join("x.safetensors");
    quantscope()
        .arg("quantize")
        .arg(&file)
        .args(["--format", "q4_0", "--tensor", "w", "--output"])
        .arg(&st)
        .assert()
        .success();
    let bytes = std::fs::read(&st).expect("written");
    let tensors = SafeTensors::deserialize(&bytes).expect("valid safetensors");
    let view = tensors.tensor("w.dequantized").expect("dequantized kept");
    assert_eq!(view.dtype(), Dtype::F32);
    let ours: Vec<u32> = view
        .data()
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let readback: Value = serde_json::from_slice(
        &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(Q4_0_GGUF_PY))
            .expect("committed readback"),
    )
    .expect("json");
    let tensor = readback["tensors"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "w"))
        .expect("gguf-py saw w");
    assert_eq!(tensor["type"], "Q4_0");
    assert_eq!(tensor["dims_innermost_first"], serde_json::json!([64, 4]));
    let theirs: Vec<u32> = tensor["values_f32_bits"]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| v.as_u64().and_then(|b| u32::try_from(b).ok()).expect("u32"))
        .collect();
    assert_eq!(ours.len(), 256);
    assert_eq!(ours, theirs);
}
