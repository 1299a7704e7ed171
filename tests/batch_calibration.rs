//! Calibration over batches against ONNX Runtime and NVIDIA Model Optimizer, bit for bit, on the
//! committed MiniLM activations (tests/data/batch_calibration_reference.json, written by
//! scripts/batch_calibration_reference.py from the libraries themselves).

use std::path::{Path, PathBuf};

use quantscope::cancel::Cancel;
use quantscope::quant::batches::{
    BatchCalibration, BatchOptions, HistogramShape, calibrate_batches,
};
use quantscope::report::batches::load_batches;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn reference() -> Value {
    let path = root().join("tests/data/batch_calibration_reference.json");
    let text = std::fs::read_to_string(&path).expect("the reference JSON is committed");
    serde_json::from_str(&text).expect("valid JSON")
}

/// A JSON number as the f32 it holds. The references are f32 values printed as the shortest
/// f64 decimal; serde_json's default parser may miss that f64 by an ulp, which rounding to f32
/// undoes exactly (an f32 value lies 2^29 f64 ulps from the nearest f32 midpoint).
fn f32_of(v: &Value) -> f32 {
    let x = v.as_f64().expect("a number");
    let f = x as f32;
    assert!(
        (f64::from(f) - x).abs() <= x.abs() * 1e-15,
        "{x} is not an f32 value"
    );
    f
}

/// An f64 given by its IEEE bit pattern (decimal f64 values do not survive serde_json exactly).
fn f64_of_bits(v: &Value) -> f64 {
    f64::from_bits(v.as_u64().expect("a bit pattern"))
}

fn pair(v: &Value) -> (f32, f32) {
    (f32_of(&v[0]), f32_of(&v[1]))
}

fn check_histogram(name: &str, step: usize, ours: Option<HistogramShape>, theirs: &Value) {
    let ours = ours.unwrap_or_else(|| panic!("{name} step {step}: no histogram"));
    let context = format!("{name} step {step}");
    assert_eq!(
        ours.bins as u64,
        theirs["bins"].as_u64().expect("bins"),
        "{context}"
    );
    assert_eq!(
        ours.first_edge.to_bits(),
        f64_of_bits(&theirs["first_edge_bits"]).to_bits(),
        "{context}"
    );
    assert_eq!(
        ours.last_edge.to_bits(),
        f64_of_bits(&theirs["last_edge_bits"]).to_bits(),
        "{context}"
    );
    assert_eq!(
        ours.counted,
        theirs["total"].as_u64().expect("total"),
        "{context}"
    );
}

fn calibrate(path: &Path, options: BatchOptions) -> BatchCalibration {
    let batches = load_batches(path, &Cancel::never()).expect("the activation file loads");
    let slices: Vec<&[f32]> = batches.values.iter().map(Vec::as_slice).collect();
    calibrate_batches(&slices, batches.features, options, &Cancel::never()).expect("calibrates")
}

#[test]
fn thresholds_after_each_batch_match_onnxruntime_and_tensorrt() {
    let reference = reference();
    let options = BatchOptions {
        percentile: reference["percentile"].as_f64().expect("p"),
        // ONNX Runtime multiplies float32 values by the Python float 0.01, which numpy rounds
        // to float32 first.
        averaging_constant: reference["averaging_constant"].as_f64().expect("c") as f32,
        num_bins: 2048,
        bits: 8,
    };
    let files = reference["files"].as_object().expect("files");
    assert_eq!(
        files.len(),
        9,
        "every committed activation file has a reference"
    );
    let mut grown = 0;
    let mut dropped = 0;
    for (name, expected) in files {
        let path = root().join("assets/minilm/activations").join(name);
        let result = calibrate(&path, options);
        let ort = &expected["onnxruntime"];
        let trt = &expected["tensorrt"];
        assert_eq!(
            result.features as u64,
            expected["features"].as_u64().expect("features")
        );
        assert_eq!(result.steps.len(), 4, "{name}");
        for (k, step) in result.steps.iter().enumerate() {
            let context = format!("{name} after batch {k}");
            assert_eq!(
                step.rows as u64,
                expected["rows"][k].as_u64().expect("rows"),
                "{context}"
            );
            assert_eq!(step.minmax, Some(pair(&ort["minmax"][k])), "{context}");
            assert_eq!(
                step.moving_average,
                Some(pair(&ort["moving_average"][k])),
                "{context}"
            );
            let (lo, hi) = pair(&ort["moving_average_symmetric"][k]);
            assert_eq!(lo, -hi, "{context}");
            assert_eq!(step.moving_average_absmax, Some(hi), "{context}");
            let percentile = &ort["percentile"][k];
            check_histogram(name, k, step.histogram_onnxruntime, percentile);
            assert_eq!(
                step.percentile_onnxruntime,
                Some(pair(&percentile["range"])),
                "{context}"
            );
            check_histogram(name, k, step.histogram_tensorrt, &trt[k]);
            assert_eq!(
                step.percentile_tensorrt,
                Some(f32_of(&trt[k]["percentile_amax"])),
                "{context}"
            );
            assert_eq!(
                step.entropy_tensorrt,
                Some(f32_of(&trt[k]["entropy_amax"])),
                "{context}"
            );
            let shape = step.histogram_tensorrt.expect("checked above");
            grown += usize::from(shape.bins > 2048);
            dropped += usize::from(shape.dropped > 0);
        }
        let per_channel = &ort["per_channel"];
        let want_min: Vec<f32> = per_channel[0]
            .as_array()
            .expect("min")
            .iter()
            .map(f32_of)
            .collect();
        let want_max: Vec<f32> = per_channel[1]
            .as_array()
            .expect("max")
            .iter()
            .map(f32_of)
            .collect();
        assert_eq!(result.per_channel.min, want_min, "{name}");
        assert_eq!(result.per_channel.max, want_max, "{name}");
    }
    // The data exercise what matters: histograms that grow, and values below the first edge.
    assert!(grown >= 10, "{grown} grown steps");
    assert!(dropped >= 5, "{dropped} steps with dropped values");
}

#[test]
fn the_outlier_dimension_is_what_the_entropy_threshold_clips() {
    // Layer 1's FFN input: dimension 99 reaches 30.29 over the four batches while the median
    // feature stays below 2. Min-max keeps the outlier; the 99.99th percentile still sits on
    // it; TensorRT's entropy threshold cuts well below it.
    let path =
        root().join("assets/minilm/activations/encoder.layer.1.intermediate.dense.input.npz");
    let result = calibrate(&path, BatchOptions::default());
    let absmax = result.per_channel.absmax();
    let (top, &largest) = absmax
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .expect("384 features");
    assert_eq!(top, 99);
    assert!(largest > 30.0, "{largest}");
    let mut sorted = absmax.clone();
    sorted.sort_by(f32::total_cmp);
    assert!(sorted[sorted.len() / 2] < 2.0);
    let last = result.steps.last().expect("four steps");
    let (lo, hi) = last.minmax.expect("finite");
    assert_eq!(lo.abs().max(hi.abs()), largest);
    let entropy = last.entropy_tensorrt.expect("entropy");
    assert!(entropy < largest / 2.0, "{entropy}");
}
