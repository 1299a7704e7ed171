//! Interaction and snapshot tests of the desktop app: the real app state in an egui_kittest
//! Harness with jobs run inline, asserting that the numbers shown equal the core's.
#![cfg(feature = "gui")]

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use quantscope::app::panels::metrics::format_db;
use quantscope::app::{Command, QuantscopeApp};
use quantscope::cancel::Cancel;
use quantscope::quant::outliers::OutlierRule;
use quantscope::quant::{self, Granularity, QuantConfig, Scheme};

/// A small real tensor of the demo (all-MiniLM-L6-v2's first query projection, 384 × 384) keeps
/// the unoptimised test build fast.
const SMALL: &str = "encoder.layer.0.attention.self.query.weight";

/// The demo's FFN matrix with a huge outlier input column (856, |w| up to 7.9).
const FFN: &str = "encoder.layer.0.output.dense.weight";

fn harness(select: &str) -> Harness<'static, QuantscopeApp> {
    let mut app = QuantscopeApp::new_for_tests();
    assert!(app.select_by_name(select), "demo has {select}");
    Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(|ui, app: &mut QuantscopeApp| app.ui_root(ui), app)
}

/// The values of the selected tensor, decoded by the core.
fn values(app: &QuantscopeApp) -> Vec<f32> {
    let model = app.state.model.as_ref().expect("model");
    model
        .model
        .values_f32(app.state.selected.expect("selection"), &Cancel::never())
        .expect("values")
}

/// The per-tensor min-max quantization of `values` by the core's scalar kernels: (S, z, SQNR).
fn reference(values: &[f32], cfg: &QuantConfig) -> (f32, i32, f64) {
    let (lo, hi) = quant::calib::minmax_range(values).expect("finite values");
    let p = quant::params_from_range(f64::from(lo), f64::from(hi), cfg);
    let deq: Vec<f32> = values
        .iter()
        .map(|&x| quant::dequantize(quant::quantize(x, &p, cfg), &p))
        .collect();
    let m = quant::metrics::compare(values, &deq);
    (p.scale, p.zero_point, m.sqnr_db)
}

fn has_label(h: &Harness<'_, QuantscopeApp>, text: &str) -> bool {
    h.query_by_label(text).is_some()
}

#[test]
fn selecting_a_tensor_shows_the_cores_sqnr() {
    let mut h = harness("encoder.layer.0.attention.output.LayerNorm.weight");
    h.get_by_label("Filter").click();
    h.run();
    h.get_by_label("Filter").type_text("self.query");
    h.run();
    h.get_by_label("encoder.layer.0.attention.self.query.weight")
        .click();
    h.run();
    let app = h.state();
    let model = app.state.model.as_ref().expect("model");
    assert_eq!(
        app.state.selected,
        model
            .model
            .find("encoder.layer.0.attention.self.query.weight")
    );
    let (_, _, sqnr) = reference(&values(app), &app.state.settings.quant);
    assert!(
        has_label(&h, &format_db(sqnr)),
        "SQNR {} shown",
        format_db(sqnr)
    );
}

#[test]
fn asymmetric_bits_and_granularity_change_the_shown_parameters() {
    let mut h = harness(SMALL);
    h.get_by_label("asymmetric").click();
    h.run();
    assert_eq!(h.state().state.settings.quant.scheme, Scheme::Asymmetric);
    let cfg = h.state().state.settings.quant.clone();
    let (s, z, sqnr) = reference(&values(h.state()), &cfg);
    assert!(
        has_label(&h, &format!("S = {:.6e}", f64::from(s))),
        "scale shown"
    );
    assert!(has_label(&h, &format!("z = {z}")), "zero point shown");
    assert!(has_label(&h, &format_db(sqnr)));

    // Fewer bits: the scale grows by (2^8 - 1) / (2^4 - 1) = 17 and SQNR drops.
    h.get_by_role(egui::accesskit::Role::Slider)
        .set_value_accesskit(4.0);
    h.run();
    assert_eq!(h.state().state.settings.quant.bits, 4);
    let cfg4 = h.state().state.settings.quant.clone();
    let (s4, _, sqnr4) = reference(&values(h.state()), &cfg4);
    assert!((f64::from(s4) / f64::from(s) - 17.0).abs() < 1e-4);
    assert!(sqnr4 < sqnr);
    assert!(has_label(&h, &format_db(sqnr4)));

    // Per-group with G = 128 on a 256 × 256 tensor: 256 rows × 2 groups.
    h.get_by_value("per tensor").click();
    h.run();
    h.get_by_label("per group").click();
    h.run();
    assert_eq!(
        h.state().state.settings.quant.granularity,
        Granularity::PerGroup { size: 128 }
    );
    // 384 rows × ceil(384 / 128) = 3 groups each: both summaries count 1152 groups.
    assert_eq!(h.query_all_by_label_contains("(1152 groups)").count(), 2);
}

#[test]
fn dragging_the_clip_edge_sets_a_manual_range_and_recomputes() {
    let mut h = harness(SMALL);
    h.run();
    let before = h.state().state.clip;
    assert_eq!(before, None);
    let t = h.state().hist_transform.expect("histogram drawn");
    let values = values(h.state());
    let absmax = values.iter().fold(0.0_f32, |a, v| a.max(v.abs()));
    let y = t.frame().center().y;
    let from = egui::pos2(t.position_from_point_x(f64::from(absmax)), y);
    let target = f64::from(absmax) * 0.5;
    let to = egui::pos2(t.position_from_point_x(target), y);
    h.hover_at(from);
    h.run();
    h.drag_at(from);
    h.run();
    for i in 1..=5 {
        h.hover_at(from + (to - from) * (i as f32 / 5.0));
        h.run();
    }
    h.drop_at(to);
    h.run();
    let clip = h.state().state.clip.expect("dragged range");
    let (lo, hi) = (clip.lo, clip.hi);
    // Symmetric: the range mirrors; the drag ends within a pixel of the target.
    assert_eq!(lo, -hi);
    let px = (t.value_from_position(to + egui::vec2(1.0, 0.0)).x - target).abs();
    assert!(
        (f64::from(hi) - target).abs() <= px + 1e-6,
        "hi {hi} target {target}"
    );
    // The shown SQNR is the core's for that range.
    let cfg = h.state().state.settings.quant.clone();
    let p = quant::params_from_range(f64::from(lo), f64::from(hi), &cfg);
    let deq: Vec<f32> = values
        .iter()
        .map(|&x| quant::dequantize(quant::quantize(x, &p, &cfg), &p))
        .collect();
    let m = quant::metrics::compare(&values, &deq);
    assert!(has_label(&h, &format_db(m.sqnr_db)));
    // Half the range clips the tails: the shown count is the core's count of clamped codes.
    let clipped = values
        .iter()
        .filter(|&&x| quant::explain(x, &p, &cfg).clamped)
        .count();
    assert!(clipped > 0);
    let fraction = 100.0 * clipped as f64 / values.len() as f64;
    assert!(has_label(&h, &format!("{fraction:.4} %  ({clipped})")));
}

#[test]
fn flipping_bits_changes_the_value_in_every_format() {
    let mut h = harness(SMALL);
    h.get_by_label("Bit layout").click();
    h.run();
    // The default value is the seed's 1e8: flipping FP32's sign bit gives -1e8.
    h.get_by_label("FP32 bit 31").click();
    h.run();
    assert_eq!(h.state().state.bits.value, -1.0e8);
    // In FP16, 1e8 overflows to -Inf (0xFC00); clearing the lowest exponent bit gives
    // 0xF800 = -(2^(30 - 15)) = -32768.
    h.get_by_label("FP16 bit 10").click();
    h.run();
    assert_eq!(h.state().state.bits.value, -32768.0);
    assert!(has_label(&h, "0xf800"));
}

#[test]
fn keyboard_moves_through_the_tensor_list() {
    let mut h = harness(SMALL);
    let start = h.state().state.selected.expect("selection");
    let order = h.state_mut().view().visible_order;
    let pos = order.iter().position(|&i| i == start).expect("visible");
    h.key_press(egui::Key::ArrowDown);
    h.run();
    assert_eq!(h.state().state.selected, order.get(pos + 1).copied());
    h.key_press(egui::Key::ArrowUp);
    h.run();
    assert_eq!(h.state().state.selected, Some(start));
}

/// Renders the whole window (wgpu on lavapipe) and compares it with the stored image.
fn snapshot_of(select: &str, setup: impl FnOnce(&mut Harness<'static, QuantscopeApp>), name: &str) {
    let mut app = QuantscopeApp::new_for_tests();
    app.state.show_timings = false;
    assert!(app.select_by_name(select));
    let mut h = Harness::builder()
        .with_size(egui::vec2(1440.0, 900.0))
        .wgpu()
        .build_ui_state(|ui, app: &mut QuantscopeApp| app.ui_root(ui), app);
    setup(&mut h);
    h.run();
    h.snapshot(name);
}

#[test]
fn snapshot_main_window_error_tab() {
    snapshot_of(SMALL, |_| {}, "main_error_tab");
}

#[test]
fn snapshot_heatmap_tab_per_group() {
    snapshot_of(
        FFN,
        |h| {
            h.get_by_value("per tensor").click();
            h.run();
            h.get_by_label("per group").click();
            h.run();
            h.get_by_label("Heatmap").click();
        },
        "heatmap_tab_per_group",
    );
}

#[test]
fn snapshot_bit_layout_tab() {
    snapshot_of(
        SMALL,
        |h| {
            h.get_by_label("Bit layout").click();
        },
        "bit_layout_tab",
    );
}

#[test]
fn sigma_all_fills_the_outlier_and_error_columns_with_the_cores_numbers() {
    let mut h = harness(SMALL);
    h.run();
    h.get_by_label("Σ all").click();
    h.run();
    let row_of = |app: &mut QuantscopeApp, index: usize| {
        app.view()
            .rows
            .into_iter()
            .find(|r| r.index == index)
            .expect("row of the tensor")
    };
    let index = h.state().state.selected.expect("selection");
    // Another tensor's row comes from its own background job.
    let other = h
        .state()
        .state
        .model
        .as_ref()
        .expect("model")
        .model
        .find(FFN)
        .expect("FFN");
    for tensor in [index, other] {
        let app = h.state_mut();
        let row = row_of(app, tensor);
        let model = app.state.model.as_ref().expect("model").model.clone();
        let x = model.values_f32(tensor, &Cancel::never()).expect("values");
        let shape = model.tensors()[tensor].shape.clone();
        let cfg = app.state.settings.quant.clone();
        let want = quant::quantize_tensor(
            &x,
            &shape,
            &cfg,
            quant::Outputs::default(),
            &Cancel::never(),
        )
        .expect("quantizes");
        assert_eq!(row.sqnr_db, Some(want.metrics.sqnr_db));
        // The default threshold is 6 standard deviations from the mean (NUMERICS.md §5):
        // count |x − mean| >= 6·std exactly, by hand.
        let summary = quantscope::stats::summarize(&x, &Cancel::never()).expect("summary");
        let (mean, std) = (summary.mean.expect("finite"), summary.std.expect("finite"));
        let outliers = x
            .iter()
            .filter(|v| v.is_finite() && (f64::from(**v) - mean).abs() >= 6.0 * std)
            .count() as u64;
        assert_eq!(row.outliers, Some(outliers));
        let rule = OutlierRule::new(&x, cfg.outlier_threshold, &Cancel::never()).expect("rule");
        assert_eq!(rule.count(&x, &Cancel::never()).expect("count"), outliers);
    }
    // The demo's k_proj weights carry outlier columns (values far beyond 6·std).
    let app = h.state_mut();
    assert!(
        row_of(app, index).outliers.expect("computed") > 0,
        "demo outliers expected"
    );
    let before = [index, other].map(|t| row_of(app, t).sqnr_db.expect("computed"));

    // Changing a setting refreshes every row: 4 bits lowers each SQNR (by about 6 dB per bit
    // where rounding dominates; less where the clipped-free range is set by one outlier).
    let mut q = h.state().state.settings.quant.clone();
    q.bits = 4;
    h.state_mut().apply(Command::SetQuant(q));
    h.run();
    let app = h.state_mut();
    let after = [index, other].map(|t| row_of(app, t).sqnr_db.expect("recomputed"));
    assert!(after[0] < before[0] - 20.0, "{before:?} → {after:?}");
    assert!(after[1] < before[1], "{before:?} → {after:?}");
}

#[test]
fn one_settings_change_runs_one_quantization_of_the_selected_tensor() {
    let mut h = harness(SMALL);
    h.run();
    let mut q = h.state().state.settings.quant.clone();
    q.bits = 5;
    let before = quant::tensor::quantize_calls_on_this_thread();
    h.state_mut().state.handle(Command::SetQuant(q));
    h.run();
    h.get_by_label("Heatmap").click();
    h.run();
    let calls = quant::tensor::quantize_calls_on_this_thread() - before;
    // One run feeds the metrics, the error tab, the heatmaps and the legend entry of the
    // calibrator in force; each of the other three legend entries is one run of its own.
    assert_eq!(calls, 1 + 3, "core calls after one settings change");
    // Running more frames computes nothing new.
    h.run();
    h.run();
    assert_eq!(quant::tensor::quantize_calls_on_this_thread() - before, 4);
}

#[test]
fn the_apps_json_export_equals_the_clis_for_the_same_tensor_and_settings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("m.safetensors");
    let values: Vec<f32> = (0..64 * 48)
        .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 97.0)
        .collect();
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![64, 48], &bytes)
        .expect("consistent fixture");
    std::fs::write(
        &path,
        safetensors::tensor::serialize([("w", view)], None).expect("serialize"),
    )
    .expect("fixture written");
    let cfg = QuantConfig {
        bits: 4,
        scheme: Scheme::Asymmetric,
        granularity: Granularity::PerGroup { size: 16 },
        calibration: quant::Calibration::Percentile(99.5),
        ..QuantConfig::default()
    };
    let mut app = QuantscopeApp::new(
        quantscope::app::jobs::Runner::Inline,
        quantscope::app::settings::Settings::default(),
        vec![path.clone()],
    );
    app.apply(Command::SetQuant(cfg));
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(|ui, app: &mut QuantscopeApp| app.ui_root(ui), app);
    h.run();
    h.get_by_label("Copy JSON").click();
    h.run();
    let copied = h.state().state.copied.clone().expect("copied");
    let app_json: serde_json::Value = serde_json::from_str(&copied).expect("json");
    let out = assert_cmd::Command::cargo_bin("quantscope")
        .expect("binary")
        .args([
            "quantize",
            "--json",
            "--bits",
            "4",
            "--scheme",
            "asymmetric",
        ])
        .args(["--granularity", "group", "--group-size", "16"])
        .args(["--calibration", "percentile", "--percentile", "99.5"])
        .arg(&path)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let cli_json = &cli[0];
    let keys = |v: &serde_json::Value| -> Vec<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(keys(&app_json), keys(cli_json));
    for key in keys(cli_json) {
        // Timings are measurements of each run, not results.
        if key.ends_with("_ms") {
            continue;
        }
        assert_eq!(app_json[&key], cli_json[&key], "key {key}");
    }
}

/// A file dropped on the window, as winit reports it.
#[derive(Debug)]
struct DroppedPath(std::path::PathBuf);

impl egui::DroppedFile for DroppedPath {
    fn path(&self) -> &std::path::Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn drop_file(h: &mut Harness<'static, QuantscopeApp>, path: &std::path::Path) {
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(DroppedPath(path.to_path_buf())));
    h.run();
}

#[test]
fn dropped_files_open_and_a_bad_one_shows_an_error_and_keeps_the_model() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("tiny.safetensors");
    let values: Vec<u8> = [-1.0f32, 0.5, 2.0, 0.25, -4.0, 3.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2, 3], &values)
        .expect("consistent fixture");
    let bytes = safetensors::tensor::serialize([("w", view)], None).expect("serializes");
    std::fs::write(&good, bytes).expect("fixture written");

    let mut h = harness(SMALL);
    h.run();
    drop_file(&mut h, &good);
    {
        let app = &h.state().state;
        let model = &app.model.as_ref().expect("a model").model;
        assert_eq!(
            model.tensors().len(),
            1,
            "the dropped file replaced the demo"
        );
        assert_eq!(model.find("w"), Some(0));
        assert!(app.errors.is_empty(), "{:?}", app.errors);
    }

    let bad = dir.path().join("broken.safetensors");
    std::fs::write(&bad, [255u8, 0, 0, 0, 0, 0, 0, 0, b'{']).expect("written");
    drop_file(&mut h, &bad);
    // With a file open, a dropped file first offers to compare; the user opens it instead.
    assert!(h.state().state.compare.offer.is_some());
    h.get_by_label("Open instead").click();
    h.run();
    let app = &h.state().state;
    assert!(
        app.errors.iter().any(|e| e.contains("broken.safetensors")),
        "a readable message naming the file: {:?}",
        app.errors
    );
    let model = &app.model.as_ref().expect("still a model").model;
    assert_eq!(model.find("w"), Some(0), "the app keeps what it had");
}

#[test]
fn several_files_where_one_is_broken_open_the_good_ones_and_name_the_broken_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, tensor: &str| {
        let values: Vec<u8> = [1.0f32, -2.0, 0.5, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2, 2], &values)
                .expect("consistent fixture");
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            safetensors::tensor::serialize([(tensor, view)], None).expect("ok"),
        )
        .expect("written");
        path
    };
    let a = write("a.safetensors", "first");
    let b = write("b.safetensors", "second");
    let broken = dir.path().join("broken.safetensors");
    std::fs::write(&broken, b"not a model").expect("written");
    let mut app = QuantscopeApp::new(
        quantscope::app::jobs::Runner::Inline,
        quantscope::app::settings::Settings::default(),
        vec![a, broken, b],
    );
    app.view();
    let model = &app
        .state
        .model
        .as_ref()
        .expect("the good files opened")
        .model;
    assert_eq!(model.find("first"), Some(0).or(model.find("first")));
    assert!(model.find("first").is_some() && model.find("second").is_some());
    assert_eq!(app.state.errors.len(), 1, "{:?}", app.state.errors);
    assert!(app.state.errors[0].contains("broken.safetensors"));
}

#[test]
fn the_batches_tab_shows_the_cores_calibration_over_the_captured_batches() {
    let mut h = harness("activations.encoder.layer.1.intermediate.dense.input");
    h.run();
    h.get_by_label("Batches").click();
    h.run();
    let view = h.state_mut().view();
    let b = view.batches.value.as_deref().expect("computed inline");
    let c = &b.calibration;
    assert_eq!(c.steps.len(), 4);
    assert_eq!(
        c.steps.iter().map(|s| s.rows).collect::<Vec<_>>(),
        vec![98, 123, 101, 107]
    );
    // The same numbers as the core fed the four row blocks directly.
    let x = values(h.state());
    let mut start = 0;
    let mut batches: Vec<&[f32]> = Vec::new();
    for rows in [98, 123, 101, 107] {
        batches.push(&x[start..start + rows * 384]);
        start += rows * 384;
    }
    let direct = quant::batches::calibrate_batches(
        &batches,
        384,
        quant::batches::BatchOptions {
            bits: 8,
            percentile: 99.99,
            ..Default::default()
        },
        &Cancel::never(),
    )
    .expect("calibrates");
    assert_eq!(c.steps, direct.steps);
    // Feature 99 dominates this input (assets/README.md: max |x| 30.29 in layer 1).
    let absmax = c.per_channel.absmax();
    let top = (0..absmax.len()).max_by(|&a, &b| absmax[a].total_cmp(&absmax[b]));
    assert_eq!(top, Some(99));
    let mut sorted = absmax.clone();
    sorted.sort_by(f32::total_cmp);
    let median = sorted[sorted.len() / 2];
    let line = format!(
        "Largest activation feature: 99 with max |x| = {:.3}; the median feature's is {median:.3}.",
        absmax[99]
    );
    assert!(has_label(&h, &line), "{line}");
    assert!((absmax[99] - 30.29).abs() < 0.01, "{}", absmax[99]);
}
