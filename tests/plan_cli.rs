//! `quantscope plan` end to end: the built binary on safetensors and imatrix fixtures these
//! tests write themselves.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use quantscope::report::recipe::Recipe;
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use serde_json::Value;

fn quantscope() -> Command {
    Command::cargo_bin("quantscope").expect("the binary is built")
}

/// Deterministic values in (-1, 1) (a cheap LCG).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32) / (1u64 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

/// A small "model": two 2-D weights, a bias and an integer buffer.
fn model(dir: &Path) -> PathBuf {
    write_model(&dir.join("model.safetensors"), Dtype::F32, f32_bytes)
}

/// The small model at `path` with its float tensors stored as `dtype` (bytes by `encode`).
fn write_model(path: &Path, dtype: Dtype, encode: fn(&[f32]) -> Vec<u8>) -> PathBuf {
    let tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = vec![
        (
            "layer.0.attn.weight",
            dtype,
            vec![16, 64],
            encode(&values(1024, 1)),
        ),
        (
            "layer.0.mlp.weight",
            dtype,
            vec![32, 64],
            encode(&values(2048, 2)),
        ),
        ("layer.0.mlp.bias", dtype, vec![32], encode(&values(32, 3))),
        ("position_ids", Dtype::I64, vec![4], vec![0; 32]),
    ];
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.to_string(),
                TensorView::new(*d, s.clone(), b).expect("consistent fixture"),
            )
        })
        .collect();
    let data = safetensors::tensor::serialize(views, None).expect("serializable fixture");
    std::fs::write(path, data).expect("fixture written");
    path.to_path_buf()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A GGUF imatrix with `<name>.in_sum2` and `<name>.counts` for one tensor.
fn imatrix(path: &Path, name: &str, sums: &[f32], count: f32) {
    fn put_str(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }
    let tensors = [
        (
            format!("{name}.in_sum2"),
            vec![sums.len() as u64, 1],
            sums.to_vec(),
        ),
        (format!("{name}.counts"), vec![1u64, 1], vec![count]),
    ];
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend((tensors.len() as u64).to_le_bytes());
    out.extend(0u64.to_le_bytes());
    let mut offset = 0u64;
    for (n, dims, v) in &tensors {
        put_str(&mut out, n);
        out.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            out.extend(d.to_le_bytes());
        }
        out.extend(0u32.to_le_bytes());
        out.extend(offset.to_le_bytes());
        offset += (v.len() as u64 * 4).div_ceil(32) * 32;
    }
    while !out.len().is_multiple_of(32) {
        out.push(0);
    }
    for (_, _, v) in &tensors {
        let start = out.len();
        out.extend(f32_bytes(v));
        while !(out.len() - start).is_multiple_of(32) {
            out.push(0);
        }
    }
    std::fs::write(path, out).expect("imatrix written");
}

fn json_of(output: &[u8]) -> Value {
    serde_json::from_slice(output).expect("stdout is JSON")
}

const CANDIDATES: &str = "int2_g32_minmax,int4_g32_minmax,int8_channel_minmax,int4_g128_minmax";

#[test]
fn json_plan_has_the_issue_keys_and_stays_under_budget() {
    let dir = tempfile::tempdir().expect("temp dir");
    let m = model(dir.path());
    let out = quantscope()
        .args([
            "plan",
            m.to_str().expect("utf-8"),
            "--budget-bpw",
            "7",
            "--candidates",
            CANDIDATES,
            "--json",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let plan = json_of(&out.stdout);
    for key in [
        "budget_bpw",
        "average_bpw",
        "total_bytes",
        "total_error",
        "objective",
        "tensors",
        "uniform",
    ] {
        assert!(plan.get(key).is_some(), "missing {key}");
    }
    assert_eq!(plan["objective"], "rel-mse");
    let avg = plan["average_bpw"].as_f64().expect("number");
    assert!(avg <= 7.0, "{avg}");
    let tensors = plan["tensors"].as_array().expect("array");
    assert_eq!(tensors.len(), 4);
    // 1-D bias kept in F32; integers not planned; the weights get candidates.
    let by_name = |n: &str| {
        tensors
            .iter()
            .find(|t| t["name"] == n)
            .expect("tensor listed")
    };
    assert_eq!(by_name("layer.0.mlp.bias")["why"], "kept");
    assert_eq!(by_name("layer.0.mlp.bias")["format"], "F32");
    assert_eq!(by_name("position_ids")["why"], "not-planned");
    for w in ["layer.0.attn.weight", "layer.0.mlp.weight"] {
        let t = by_name(w);
        assert_eq!(t["why"], "budget");
        let c = t["candidate"].as_str().expect("a candidate");
        assert!(CANDIDATES.split(',').any(|k| k == c), "{c}");
        for key in [
            "numel",
            "format",
            "bits_per_weight",
            "mse",
            "rel_mse",
            "sqnr_db",
        ] {
            assert!(!t[key].is_null(), "{w}.{key}");
        }
    }
    // Total bits: 4 I64 (256) + 32 F32 (1024) + the two weights' candidate bits.
    let total_bits: u64 = tensors
        .iter()
        .map(|t| t["storage_bits"].as_u64().expect("bits"))
        .sum();
    assert_eq!(plan["total_bytes"].as_u64(), Some(total_bits.div_ceil(8)));
    let uniform = plan["uniform"].as_array().expect("array");
    assert_eq!(uniform.len(), 4);
    // int4_g128 does not fit rows of 64: its uniform point falls back to int4_channel_minmax,
    // which was not measured, so F16.
    let g128 = uniform
        .iter()
        .find(|u| u["format"] == "int4_g128_minmax")
        .expect("listed");
    assert_eq!(g128["fallbacks"].as_array().map(Vec::len), Some(2));
}

#[test]
fn pins_keeps_and_objective_are_honoured() {
    let dir = tempfile::tempdir().expect("temp dir");
    let m = model(dir.path());
    let out = quantscope()
        .args([
            "plan",
            m.to_str().expect("utf-8"),
            "--budget-bpw",
            "16",
            "--candidates",
            CANDIDATES,
            "--pin",
            "*.attn.*=int2_g32_minmax",
            "--keep",
            "re:mlp\\.weight$=bf16",
            "--objective",
            "mse",
            "--json",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let plan = json_of(&out.stdout);
    assert_eq!(plan["objective"], "mse");
    let tensors = plan["tensors"].as_array().expect("array");
    let by_name = |n: &str| {
        tensors
            .iter()
            .find(|t| t["name"] == n)
            .expect("tensor listed")
    };
    let attn = by_name("layer.0.attn.weight");
    assert_eq!(attn["candidate"], "int2_g32_minmax");
    assert_eq!(attn["why"], "pinned");
    assert_eq!(attn["why_detail"], "*.attn.*");
    let mlp = by_name("layer.0.mlp.weight");
    assert_eq!(mlp["format"], "BF16");
    assert_eq!(mlp["why"], "kept");
    assert_eq!(mlp["storage_bits"], 2048 * 16);
    assert!(mlp["candidate"].is_null());
}

#[test]
fn out_and_sweep_files_are_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let m = model(dir.path());
    let recipe_path = dir.path().join("recipe.json");
    let csv_path = dir.path().join("table.csv");
    let json_path = dir.path().join("table.json");
    for table in [&csv_path, &json_path] {
        let out = quantscope()
            .args([
                "plan",
                m.to_str().expect("utf-8"),
                "--budget-size",
                "3KiB",
                "--candidates",
                CANDIDATES,
            ])
            .arg("--out")
            .arg(&recipe_path)
            .arg("--sweep")
            .arg(table)
            .assert()
            .success()
            .get_output()
            .clone();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("total:"), "{text}");
        assert!(text.contains("uniform recipes"), "{text}");
        // Affine choices are not GGUF types: the reason is printed instead of arguments.
        assert!(text.contains("no llama-quantize arguments"), "{text}");
    }
    let recipe: Recipe =
        serde_json::from_str(&std::fs::read_to_string(&recipe_path).expect("written"))
            .expect("a recipe");
    assert_eq!(recipe.budget_bytes, 3072);
    assert!(recipe.total_bits <= 3072 * 8);
    let w = recipe
        .tensors
        .iter()
        .find(|t| t.name == "layer.0.attn.weight")
        .expect("listed");
    assert!(w.settings.is_some(), "affine settings are in the recipe");
    let csv = std::fs::read_to_string(&csv_path).expect("written");
    // Header + 2 weights × 4 candidates + the 1-D bias × 4 (measured, kept by the allocator).
    assert_eq!(csv.lines().count(), 1 + 3 * 4);
    assert!(
        csv.lines()
            .any(|l| l.contains("int4_g128_minmax") && l.contains("larger than the row of 64"))
    );
    let rows: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).expect("written")).expect("JSON");
    assert_eq!(rows.as_array().map(Vec::len), Some(12));
}

#[test]
fn imatrix_weights_the_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let m = model(dir.path());
    let im = dir.path().join("imatrix.gguf");
    let sums: Vec<f32> = (0..64).map(|j| if j < 8 { 100.0 } else { 1.0 }).collect();
    imatrix(&im, "layer.0.attn.weight", &sums, 10.0);
    let table = dir.path().join("t.json");
    let out = quantscope()
        .args([
            "plan",
            m.to_str().expect("utf-8"),
            "--candidates",
            CANDIDATES,
            "--budget-bpw",
            "8",
        ])
        .arg("--imatrix")
        .arg(&im)
        .arg("--sweep")
        .arg(&table)
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stdout).contains("weights 1 of 3 measured tensors"));
    let rows: Value =
        serde_json::from_str(&std::fs::read_to_string(&table).expect("written")).expect("JSON");
    let rows = rows.as_array().expect("array");
    assert!(
        rows.iter()
            .filter(|r| r["name"] == "layer.0.attn.weight")
            .all(|r| r["weighted"] == true)
    );
    assert!(
        rows.iter()
            .filter(|r| r["name"] == "layer.0.mlp.weight")
            .all(|r| r["weighted"] == false)
    );
    // A corrupt imatrix is bad input.
    std::fs::write(&im, b"GGUF\x03\x00\x00\x00junk").expect("written");
    let out = quantscope()
        .args([
            "plan",
            m.to_str().expect("utf-8"),
            "--candidates",
            CANDIDATES,
        ])
        .arg("--imatrix")
        .arg(&im)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn usage_and_input_errors_have_their_exit_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let m = model(dir.path());
    let m = m.to_str().expect("utf-8");
    let run = |args: &[&str]| {
        let out = quantscope()
            .arg("plan")
            .arg(m)
            .args(args)
            .output()
            .expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--candidates", "q4_k,int4_g32_minmax,nonsense"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("q4_k") && err.contains("nonsense"), "{err}");
    assert_eq!(
        run(&["--budget-bpw", "4", "--budget-size", "1MB"]).0,
        Some(2)
    );
    assert_eq!(run(&["--budget-size", "12 parsecs"]).0, Some(2));
    assert_eq!(run(&["--pin", "[=int4_g32_minmax"]).0, Some(2));
    assert_eq!(run(&["--sweep", "table.txt"]).0, Some(2));
    // 1 bit per weight cannot hold the kept bias and the integer buffer: bad input.
    let (code, err) = run(&["--candidates", CANDIDATES, "--budget-bpw", "1"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("below the smallest possible size"), "{err}");
    let out = quantscope()
        .args(["plan", "/nonexistent/model.safetensors"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
}

/// The model of [`model`] stored in BF16 (the integer buffer as is).
fn bf16_model(dir: &Path) -> PathBuf {
    let bf = |v: &[f32]| -> Vec<u8> {
        v.iter()
            .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
            .collect()
    };
    write_model(&dir.join("model-bf16.safetensors"), Dtype::BF16, bf)
}

#[test]
fn against_places_the_quantized_files_own_assignment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let original = model(dir.path());
    let quantized = bf16_model(dir.path());
    let out = quantscope()
        .arg("plan")
        .arg(&original)
        .args([
            "--candidates",
            "int4_g32_minmax,int8_channel_minmax",
            "--json",
            "--budget-bpw",
            "8",
        ])
        .arg("--against")
        .arg(&quantized)
        .assert()
        .success()
        .get_output()
        .clone();
    let plan = json_of(&out.stdout);
    let against = &plan["against"];
    // Σ numel × Σe²/Σx² over the two planned weights (the bias is kept), BF16 rounding by RNE.
    let rel = |v: &[f32]| {
        let (e2, x2) = v.iter().fold((0.0f64, 0.0f64), |(e, x), &a| {
            let d = f64::from(half::bf16::from_f32(a).to_f32()) - f64::from(a);
            (e + d * d, x + f64::from(a) * f64::from(a))
        });
        e2 / x2
    };
    let want = 1024.0 * rel(&values(1024, 1)) + 2048.0 * rel(&values(2048, 2));
    let got = against["total_error"].as_f64().expect("number");
    assert!((got - want).abs() <= 1e-9 * want, "{got} vs {want}");
    assert_eq!(against["planned_compared"], 2);
    // Bytes: 3104 BF16 values and 4 i64; weights 3108 elements.
    assert_eq!(against["total_bytes"], 3104 * 2 + 32);
    let bpw = against["average_bpw"].as_f64().expect("number");
    assert!((bpw - (3104.0 * 16.0 + 256.0) / 3108.0).abs() < 1e-12);
    // A file of another model pairs nothing: exit 1.
    let other = dir.path().join("other.safetensors");
    let v = values(16, 9);
    let bytes = f32_bytes(&v);
    let data = safetensors::tensor::serialize(
        vec![(
            "unrelated".to_string(),
            TensorView::new(Dtype::F32, vec![4, 4], &bytes).expect("view"),
        )],
        None,
    )
    .expect("serializable");
    std::fs::write(&other, data).expect("written");
    let out = quantscope()
        .arg("plan")
        .arg(&original)
        .args(["--candidates", "int8_channel_minmax", "--budget-bpw", "9"])
        .arg("--against")
        .arg(&other)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no tensor pairs"), "{stderr}");
}

#[test]
fn quantize_with_an_imatrix_takes_ggml_weighted_path() {
    use quantscope::cancel::Cancel;
    use quantscope::quant::formats::{FormatOutputs, QuantFormat, quantize_format};
    let dir = tempfile::tempdir().expect("temp dir");
    let m = model(dir.path());
    let im = dir.path().join("imatrix.gguf");
    let sums: Vec<f32> = (0..64).map(|j| if j < 8 { 100.0 } else { 1.0 }).collect();
    imatrix(&im, "layer.0.attn.weight", &sums, 10.0);
    let run = |extra: &[&str]| {
        let out = quantscope()
            .args([
                "quantize",
                m.to_str().expect("utf-8"),
                "--format",
                "q4_0",
                "--json",
            ])
            .args([
                "--tensor",
                "layer.0.attn.weight",
                "--tensor",
                "layer.0.mlp.weight",
            ])
            .args(extra)
            .assert()
            .success()
            .get_output()
            .clone();
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        v
    };
    let im_path = im.to_str().expect("utf-8");
    let weighted = run(&["--imatrix", im_path]);
    let plain = run(&[]);
    // llama-quantize's weights: in_sum2 / count, one per column.
    let w: Vec<f32> = sums.iter().map(|s| s / 10.0).collect();
    let x = values(1024, 1);
    let expect = |imatrix: Option<&[f32]>| {
        quantize_format(
            QuantFormat::Q4_0,
            &x,
            &[16, 64],
            imatrix,
            FormatOutputs::default(),
            &Cancel::never(),
        )
        .expect("quantizes")
        .metrics
        .mse
    };
    let mse = |v: &Value, i: usize| v[i]["metrics"]["mse"].as_f64().expect("number");
    assert_eq!(mse(&weighted, 0), expect(Some(&w)));
    assert_eq!(mse(&plain, 0), expect(None));
    assert_ne!(mse(&weighted, 0), mse(&plain, 0));
    assert_eq!(weighted[0]["imatrix"], true);
    // A tensor the matrix does not name is quantized unweighted, and says so.
    assert_eq!(weighted[1]["imatrix"], false);
    assert_eq!(mse(&weighted, 1), mse(&plain, 1));
    // --imatrix without a format is a usage error (exit 2).
    let out = quantscope()
        .args(["quantize", m.to_str().expect("utf-8"), "--imatrix", im_path])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn quantize_recipe_reproduces_the_planned_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let m = model(dir.path());
    let recipe_path = dir.path().join("recipe.json");
    // Affine candidates and two formats, so both kinds of choice are applied.
    quantscope()
        .args(["plan", m.to_str().expect("utf-8"), "--budget-bpw", "5.2"])
        .args(["--candidates", &format!("{CANDIDATES},q4_0,q8_0")])
        .arg("--out")
        .arg(&recipe_path)
        .assert()
        .success();
    let recipe: Recipe =
        serde_json::from_str(&std::fs::read_to_string(&recipe_path).expect("written"))
            .expect("a recipe");
    let out = quantscope()
        .args(["quantize", m.to_str().expect("utf-8"), "--json", "--recipe"])
        .arg(&recipe_path)
        .assert()
        .success()
        .get_output()
        .clone();
    let reports: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let reports = reports.as_array().expect("array");
    let mut applied = 0;
    for t in recipe.tensors.iter().filter(|t| t.candidate.is_some()) {
        let r = reports
            .iter()
            .find(|r| r["name"] == t.name.as_str())
            .expect("every planned tensor is reported");
        // The same core call the sweep measured with: the same error, and the planned bits.
        assert_eq!(r["metrics"]["mse"].as_f64(), t.mse, "{}", t.name);
        assert_eq!(r["planned_mse"].as_f64(), t.mse);
        assert_eq!(
            r["bits_per_weight"].as_f64(),
            Some(t.bits_per_weight),
            "{}",
            t.name
        );
        let format = r["format"].as_str().expect("format");
        if t.settings.is_none() {
            assert_eq!(format, t.format);
        } else {
            assert_eq!(format, "int");
        }
        applied += 1;
    }
    // The two weight matrices are planned; the bias is kept (as runtimes keep biases) and is
    // reported as not quantized, with the recipe's reason.
    assert_eq!(applied, 2);
    let bias = reports
        .iter()
        .find(|r| r["name"] == "layer.0.mlp.bias")
        .expect("the kept bias is listed");
    assert!(
        bias["not_applicable"]
            .as_str()
            .is_some_and(|why| why.contains("kept")),
        "{bias}"
    );
    // A file that is not a recipe is bad input (exit 1), naming the file.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"tensors\": 3}").expect("written");
    let out = quantscope()
        .args(["quantize", m.to_str().expect("utf-8"), "--recipe"])
        .arg(&bad)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a quantscope recipe"));
}
