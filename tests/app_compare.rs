//! The app's comparison of a model with a quantized file of it: a small llama written by the
//! test as safetensors and as the GGUF llama.cpp's converter would write (Q/K rows permuted;
//! real Q4_0 / Q8_0 blocks from quantscope's ggml quantizers; one tensor with another shape),
//! compared in the real app (egui_kittest, jobs inline) against the core and the CLI.
#![cfg(feature = "gui")]

use std::path::{Path, PathBuf};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use safetensors::Dtype;
use safetensors::tensor::TensorView;

use quantscope::app::derived::results::error_detail_of;
use quantscope::app::jobs::Runner;
use quantscope::app::pairing::{CompareColumn, CompareCommand};
use quantscope::app::panels::compare::{deployed_lines, message_of, metric_cells};
use quantscope::app::settings::Settings;
use quantscope::app::{Command, QuantscopeApp};
use quantscope::cancel::Cancel;
use quantscope::plan::compare::{Comparison, compare_models};
use quantscope::plan::pair::{pair, permute_rows, unpermute_rows};
use quantscope::quant::formats::{QuantFormat, gguf};
use quantscope::tensor::{DType, GgufTensor, GgufValue, GgufWriter, Model};

const N_HEAD: usize = 4;
const N_HEAD_KV: usize = 2;
const HIDDEN: usize = 64;

/// Deterministic values in about [-1, 1) (a 32-bit LCG), different per `seed`.
fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            // The top 24 bits as a fraction: exact in f32.
            (state >> 8) as f32 / 8_388_608.0 - 1.0
        })
        .collect()
}

/// (HF name, GGUF name, shape, values, GGUF storage, GGUF shape when it differs).
type Fixture = (
    &'static str,
    &'static str,
    Vec<usize>,
    Vec<f32>,
    Option<QuantFormat>,
);

fn tensors() -> Vec<Fixture> {
    let kv = N_HEAD_KV * HIDDEN / N_HEAD;
    vec![
        (
            "model.embed_tokens.weight",
            "token_embd.weight",
            vec![8, HIDDEN],
            values(8 * HIDDEN, 1),
            Some(QuantFormat::Q8_0),
        ),
        (
            "model.layers.0.input_layernorm.weight",
            "blk.0.attn_norm.weight",
            vec![HIDDEN],
            values(HIDDEN, 2),
            None,
        ),
        (
            "model.layers.0.self_attn.q_proj.weight",
            "blk.0.attn_q.weight",
            vec![HIDDEN, HIDDEN],
            values(HIDDEN * HIDDEN, 3),
            Some(QuantFormat::Q4_0),
        ),
        (
            "model.layers.0.self_attn.k_proj.weight",
            "blk.0.attn_k.weight",
            vec![kv, HIDDEN],
            // Larger values: this tensor's SQNR sorts apart from q_proj's.
            values(kv * HIDDEN, 4).iter().map(|v| v * v * v).collect(),
            Some(QuantFormat::Q4_0),
        ),
        (
            "model.layers.0.self_attn.v_proj.weight",
            "blk.0.attn_v.weight",
            vec![kv, HIDDEN],
            values(kv * HIDDEN, 5),
            Some(QuantFormat::Q8_0),
        ),
        (
            "lm_head.weight",
            "output.weight",
            vec![8, HIDDEN],
            values(8 * HIDDEN, 7),
            None,
        ),
    ]
}

/// The shape-mismatched tensor: the GGUF's `output.weight` has 4 rows, the original 8.
const MISMATCHED: &str = "lm_head.weight";

fn write_pair(dir: &Path) -> (PathBuf, PathBuf) {
    let st = dir.join("model.safetensors");
    let gg = dir.join("model-q4_0.gguf");
    let all = tensors();
    let bytes: Vec<Vec<u8>> = all
        .iter()
        .map(|t| t.3.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView)> = all
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            let view = TensorView::new(Dtype::F32, t.2.clone(), b).expect("fixture");
            (t.0.to_string(), view)
        })
        .collect();
    std::fs::write(
        &st,
        safetensors::tensor::serialize(views, None).expect("fixture"),
    )
    .expect("fixture");

    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", GgufValue::string("llama"))
        .expect("fixture");
    w.add_metadata("llama.attention.head_count", GgufValue::U32(N_HEAD as u32))
        .expect("fixture");
    w.add_metadata(
        "llama.attention.head_count_kv",
        GgufValue::U32(N_HEAD_KV as u32),
    )
    .expect("fixture");
    for (hf, name, shape, v, format) in &all {
        // llama.cpp's converter permutes the Q/K rows.
        let stored = match *hf {
            "model.layers.0.self_attn.q_proj.weight" => {
                permute_rows(v, shape[0], N_HEAD).expect("fixture")
            }
            "model.layers.0.self_attn.k_proj.weight" => {
                permute_rows(v, shape[0], N_HEAD_KV).expect("fixture")
            }
            _ => v.clone(),
        };
        let tensor = match format {
            Some(f) => {
                let blocks =
                    gguf::quantize_rows(*f, &stored, shape[shape.len() - 1], None).expect("rows");
                GgufTensor::from_raw(
                    *name,
                    shape.clone(),
                    gguf::dtype_of(*f).expect("gguf"),
                    blocks,
                )
            }
            None if *hf == MISMATCHED => {
                GgufTensor::from_f32(*name, vec![4, HIDDEN], &stored[..4 * HIDDEN])
            }
            None => GgufTensor::from_f32(*name, shape.clone(), &stored),
        }
        .expect("fixture");
        w.add_tensor(tensor).expect("fixture");
    }
    w.add_tensor(GgufTensor::from_f32("rope_freqs.weight", vec![8], &[1.0; 8]).expect("fixture"))
        .expect("fixture");
    w.write_atomic(&gg, &[]).expect("fixture");
    (st, gg)
}

/// The comparison computed directly by the core.
fn direct(st: &Path, gg: &Path) -> Comparison {
    let o = Model::open(st).expect("fixture");
    let q = Model::open(gg).expect("fixture");
    let plan = pair(&o, &q);
    compare_models(&o, &q, &plan, &Cancel::never(), |_, _, _| {}).expect("compares")
}

/// The app with `st` open and compared with `gg`, in a harness (jobs inline).
fn harness(st: &Path, gg: &Path) -> Harness<'static, QuantscopeApp> {
    let mut app = QuantscopeApp::new(Runner::Inline, Settings::default(), vec![st.to_path_buf()]);
    app.state.show_timings = false;
    app.apply(Command::Compare(CompareCommand::Start(vec![
        gg.to_path_buf(),
    ])));
    let mut h = Harness::builder()
        .with_size(egui::vec2(1500.0, 1000.0))
        .build_ui_state(|ui, app: &mut QuantscopeApp| app.ui_root(ui), app);
    h.run();
    h
}

/// Clicks the lowest widget labelled `label` (the comparison panel's, below the others).
fn click_lowest(h: &Harness<'_, QuantscopeApp>, label: &str) {
    let y = table_y(h, label);
    h.query_all_by_label(label)
        .find(|n| n.rect().center().y == y)
        .expect("a widget with that label")
        .click();
}

fn has_label(h: &Harness<'_, QuantscopeApp>, text: &str) -> bool {
    h.query_all_by_label(text).next().is_some()
}

/// The vertical position of `name` in the comparison table (the lowest of its labels: the
/// table is the bottom panel, below the browser).
fn table_y(h: &Harness<'_, QuantscopeApp>, name: &str) -> f32 {
    h.query_all_by_label(name)
        .map(|n| n.rect().center().y)
        .fold(f32::NEG_INFINITY, f32::max)
}

#[test]
fn the_table_shows_the_cores_numbers_and_the_shape_mismatch_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (st, gg) = write_pair(dir.path());
    let want = direct(&st, &gg);
    let mut h = harness(&st, &gg);
    let view = h.state_mut().view();
    let c = view.compare.as_ref().expect("comparison asked for");
    let paired = c.paired.value.as_ref().expect("compared");
    // The app's comparison is the core's, number for number.
    assert_eq!(paired.report.comparison, want);
    assert_eq!(want.tensors.len(), 6);
    for t in &want.tensors {
        assert!(has_label(&h, &t.name), "row {}", t.name);
        assert!(has_label(&h, t.dtype.name()), "type {}", t.dtype.name());
        assert!(has_label(&h, &format!("{:.3}", t.bits_per_weight)));
        match metric_cells(t) {
            Some(cells) => {
                for cell in cells {
                    assert!(has_label(&h, &cell), "{}: cell {cell} shown", t.name);
                }
            }
            None => {
                // The shape mismatch is its own message row.
                assert_eq!(t.name, MISMATCHED);
                assert!(message_of(t).contains("shape"), "{}", message_of(t));
                let shown = format!("not compared: {}", message_of(t));
                assert!(has_label(&h, &shown), "{shown}");
            }
        }
    }
    // Q4_0 is 4.5 bits per weight; the Q/K rows were unpermuted, and that is shown.
    let q = want
        .tensors
        .iter()
        .find(|t| t.name == "model.layers.0.self_attn.q_proj.weight")
        .expect("q_proj");
    assert_eq!((q.dtype, q.bits_per_weight), (DType::Q4_0, 4.5));
    assert!(q.permutation_undone);
    assert_eq!(h.query_all_by_label("Q/K unpermuted").count(), 2);
    // Unmatched tensors are listed on both sides.
    assert_eq!(want.unmatched_quantized, ["rope_freqs.weight"]);
    assert!(has_label(&h, "unmatched in the quantized file (1)"));
    // The totals line carries the core's totals.
    let totals = &want.totals;
    assert!(
        h.query_all_by_label_contains(&format!(
            "average {:.4} bits per weight",
            totals.average_bpw
        ))
        .next()
        .is_some()
    );
    assert!(
        h.query_all_by_label_contains(&format!("{:.6e}", totals.total_error))
            .next()
            .is_some()
    );
}

#[test]
fn the_json_export_is_the_clis_compare_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (st, gg) = write_pair(dir.path());
    let mut h = harness(&st, &gg);
    click_lowest(&h, "Copy JSON");
    h.run();
    let copied = h.state().state.copied.clone().expect("copied");
    let cli = assert_cmd::Command::cargo_bin("quantscope")
        .expect("binary")
        .arg("compare")
        .arg(&st)
        .arg(&gg)
        .arg("--json")
        .assert()
        .success();
    let stdout = String::from_utf8(cli.get_output().stdout.clone()).expect("utf-8");
    assert_eq!(copied, stdout);
    assert!(copied.contains("\"permutation_undone\": true"));
}

#[test]
fn sorting_by_sqnr_orders_the_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (st, gg) = write_pair(dir.path());
    let want = direct(&st, &gg);
    let mut h = harness(&st, &gg);
    click_lowest(&h, "SQNR dB");
    h.run();
    let sort = h.state().state.compare.sort;
    assert_eq!(sort.column, CompareColumn::Sqnr);
    assert!(sort.ascending, "worst (lowest) SQNR first");
    // The compared rows by the core's SQNR, ascending; the uncompared row last.
    let mut rows: Vec<(f64, &str)> = want
        .tensors
        .iter()
        .filter_map(|t| {
            t.outcome
                .as_ref()
                .ok()
                .map(|e| (e.metrics.sqnr_db, t.name.as_str()))
        })
        .collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut names: Vec<&str> = rows.iter().map(|r| r.1).collect();
    names.push(MISMATCHED);
    let ys: Vec<f32> = names.iter().map(|n| table_y(&h, n)).collect();
    assert!(
        ys.windows(2).all(|w| w[0] < w[1]),
        "rows in SQNR order {names:?}: {ys:?}"
    );
    // Clicking again reverses the compared rows; the uncompared one stays last.
    click_lowest(&h, "SQNR dB ↑");
    h.run();
    assert!(!h.state().state.compare.sort.ascending);
    names.pop();
    names.reverse();
    names.push(MISMATCHED);
    let ys: Vec<f32> = names.iter().map(|n| table_y(&h, n)).collect();
    assert!(ys.windows(2).all(|w| w[0] < w[1]), "{names:?}: {ys:?}");
}

#[test]
fn a_paired_tensor_shows_its_deployed_error_in_the_error_views() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (st, gg) = write_pair(dir.path());
    let q_name = "model.layers.0.self_attn.q_proj.weight";
    let mut h = harness(&st, &gg);
    // Select q_proj from the table.
    click_lowest(&h, q_name);
    h.run();
    let original = Model::open(&st).expect("fixture");
    let quantized = Model::open(&gg).expect("fixture");
    let index = original.find(q_name).expect("q_proj");
    assert_eq!(h.state().state.selected, Some(index));
    // The deployed values: the GGUF's Q4_0 values with the rows unpermuted.
    let x = original.values_f32(index, &Cancel::never()).expect("x");
    let stored = quantized
        .values_f32(
            quantized.find("blk.0.attn_q.weight").expect("q"),
            &Cancel::never(),
        )
        .expect("stored");
    let xh = unpermute_rows(&stored, HIDDEN, N_HEAD).expect("unpermuted");
    let want_detail = error_detail_of(&x, &xh, &Cancel::never()).expect("detail");
    // Pick element 70 (row 1, column 6): its stored value, error and block.
    h.state_mut().apply(Command::PickElement(70));
    h.run();
    let view = h.state_mut().view();
    let detail = view.detail.value.as_ref().expect("error detail");
    assert_eq!(detail.error_hist.counts, want_detail.error_hist.counts);
    assert_eq!(detail.error_hist.edges, want_detail.error_hist.edges);
    let c = view.compare.as_ref().expect("comparison");
    let d = c.deployed.value.as_ref().expect("deployed");
    assert_eq!(d.dequantized, xh);
    let pick = c.pick.as_ref().expect("picked");
    assert_eq!((pick.original, pick.stored), (x[70], xh[70]));
    // Row 1 of q_proj is GGUF row 2 (head 0's halves interleave); column 6 is in its block 0:
    // block 2 · 2 + 0 = 4 of the stored tensor (two Q4_0 blocks per 64-wide row).
    let (block, at) = pick.block.as_ref().expect("Q4_0 block");
    assert_eq!((block.block, *at), (4, 6));
    assert_eq!(block.values[6], xh[70]);
    // The histogram marks the block's 16 levels.
    let levels = c.levels.as_ref().expect("levels");
    assert_eq!(levels.values.len(), 16);
    assert!(levels.values.contains(&xh[70]));
    let lines = deployed_lines(pick);
    assert_eq!(lines[0].1, format!("{}", x[70]));
    assert_eq!(lines[1].1, format!("{}", xh[70]));
    assert!(
        lines.iter().any(|(k, _)| k.starts_with("  d ")),
        "{lines:?}"
    );
    h.run();
    assert!(has_label(&h, &format!("{}", xh[70])));
    // The metrics panel names the file's error first, with its numbers, then the simulation.
    assert!(has_label(
        &h,
        "The quantized file: blk.0.attn_q.weight (Q4_0)"
    ));
    assert!(has_label(&h, &format!("{:.4e}", d.error.metrics.mse)));
    assert!(has_label(&h, "Simulated with the settings above"));
}

#[test]
fn a_dropped_file_offers_the_comparison_and_the_best_candidate_is_the_cores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (st, gg) = write_pair(dir.path());
    let app = QuantscopeApp::new(Runner::Inline, Settings::default(), vec![st.clone()]);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1500.0, 1000.0))
        .build_ui_state(|ui, app: &mut QuantscopeApp| app.ui_root(ui), app);
    h.run();
    // A second file dropped while a model is open asks first.
    h.state_mut()
        .apply(Command::Compare(CompareCommand::Offer(vec![gg.clone()])));
    h.run();
    assert!(
        has_label(
            &h,
            "Compare model-q4_0.gguf with the open model (tmp/model.safetensors)?"
        ) || h
            .query_all_by_label_contains("Compare model-q4_0.gguf with the open model")
            .next()
            .is_some()
    );
    assert!(h.state().state.compare.request.is_none());
    h.get_by_label("Compare").click();
    h.run();
    let request = h.state().state.compare.request.clone().expect("started");
    assert_eq!(request.paths, std::slice::from_ref(&gg));
    assert!(h.state().state.compare.offer.is_none());
    // The best candidate of q_proj at Q4_0's 4.5 bits per weight is the core's own run.
    let view = h.state_mut().view();
    let c = view.compare.as_ref().expect("comparison");
    let paired = c.paired.value.as_ref().expect("compared");
    let i = paired
        .report
        .comparison
        .tensors
        .iter()
        .position(|t| t.name == "model.layers.0.self_attn.q_proj.weight")
        .expect("q_proj");
    let best = c.candidates[i]
        .as_deref()
        .expect("computed")
        .as_ref()
        .expect("a lossy candidate fits 4.5 bpw");
    assert!(best.bits_per_weight <= 4.5, "{best:?}");
    assert!(best.tried >= 3, "{best:?}");
    let original = Model::open(&st).expect("fixture");
    let x = original
        .values_f32(
            original
                .find("model.layers.0.self_attn.q_proj.weight")
                .expect("q"),
            &Cancel::never(),
        )
        .expect("x");
    let format = QuantFormat::from_name(&best.name);
    if let Some(f) = format {
        let config = quantscope::quant::QuantConfig {
            format: Some(f),
            ..Default::default()
        };
        let r = quantscope::quant::quantize_tensor(
            &x,
            &[HIDDEN, HIDDEN],
            &config,
            quantscope::quant::Outputs::default(),
            &Cancel::never(),
        )
        .expect("runs");
        assert_eq!(r.metrics.sqnr_db, best.sqnr_db);
    }
    // Q4_0 itself is among the candidates: the best is at least as good as the file's.
    let file = paired.report.comparison.tensors[i]
        .outcome
        .as_ref()
        .expect("compared");
    assert!(best.sqnr_db >= file.metrics.sqnr_db - 1e-9, "{best:?}");
}
