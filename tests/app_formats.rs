//! The deployed formats in the desktop app (egui_kittest, jobs inline): the format choice, its
//! bits per weight and error equal to the core's, the histogram's levels of the selected block,
//! the heatmap click that selects a block and the block view of its fields, "explain this
//! number" through a block, a format that cannot store a tensor, and the JSON export.
#![cfg(feature = "gui")]

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use quantscope::app::panels::block_view::bit_string;
use quantscope::app::panels::metrics::format_db;
use quantscope::app::{Command, QuantscopeApp};
use quantscope::cancel::Cancel;
use quantscope::quant::formats::{QuantFormat, block_detail};
use quantscope::quant::{self, QuantConfig};

/// A fixture of `rows` × `cols` smooth-but-irregular values, written as one safetensors file.
fn fixture(dir: &std::path::Path, rows: usize, cols: usize) -> (std::path::PathBuf, Vec<f32>) {
    let path = dir.join(format!("w{rows}x{cols}.safetensors"));
    let values: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 97.0 * (1.0 + (i % 13) as f32 / 7.0))
        .collect();
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![rows, cols], &bytes)
            .expect("consistent fixture");
    std::fs::write(
        &path,
        safetensors::tensor::serialize([("w", view)], None).expect("serialize"),
    )
    .expect("fixture written");
    (path, values)
}

fn harness_of(path: &std::path::Path) -> Harness<'static, QuantscopeApp> {
    let mut app = QuantscopeApp::new(
        quantscope::app::jobs::Runner::Inline,
        quantscope::app::settings::Settings::default(),
        vec![path.to_path_buf()],
    );
    app.state.show_timings = false;
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(|ui, app: &mut QuantscopeApp| app.ui_root(ui), app);
    h.run();
    h
}

fn with_format(format: QuantFormat) -> QuantConfig {
    QuantConfig {
        format: Some(format),
        ..QuantConfig::default()
    }
}

/// The core's run of `format` on the fixture, with its stored parts.
fn core_run(values: &[f32], shape: &[usize], format: QuantFormat) -> quant::QuantResult {
    quant::quantize_tensor(
        values,
        shape,
        &with_format(format),
        quant::Outputs {
            codes: true,
            dequantized: true,
        },
        &Cancel::never(),
    )
    .expect("the core quantizes")
}

fn has_label(h: &Harness<'_, QuantscopeApp>, text: &str) -> bool {
    h.query_all_by_label(text).next().is_some()
}

fn set_format(h: &mut Harness<'static, QuantscopeApp>, format: QuantFormat) {
    h.state_mut().apply(Command::SetQuant(with_format(format)));
    h.run();
}

#[test]
fn choosing_q4_k_shows_its_4_5_bits_per_weight_and_the_cores_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, values) = fixture(dir.path(), 6, 512);
    let mut h = harness_of(&path);
    h.get_by_value("int (affine)").click();
    h.run();
    h.get_by_label("q4_k · 4.5 bits/weight").click();
    h.run();
    assert_eq!(
        h.state().state.settings.quant.format,
        Some(QuantFormat::Q4_K)
    );
    let core = core_run(&values, &[6, 512], QuantFormat::Q4_K);
    assert_eq!(core.bits_per_weight, 4.5);
    assert!(has_label(&h, "4.500"), "bits/weight shown");
    assert!(
        has_label(&h, &format_db(core.metrics.sqnr_db)),
        "SQNR shown"
    );
    assert!(
        has_label(&h, &format!("{:.4e}", core.metrics.mse)),
        "MSE shown"
    );
    // The app's run is the core's, bit for bit.
    let q = h.state_mut().view().quant.value.expect("quantized");
    assert_eq!(q.result.dequantized, core.dequantized);
    assert_eq!(q.result.encoded, core.encoded);
    // The affine controls are disabled while a format decides.
    assert!(h.get_by_label("asymmetric").accesskit_node().is_disabled());
}

#[test]
fn nf4_histogram_draws_the_16_non_uniform_levels_of_the_selected_block() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, values) = fixture(dir.path(), 4, 256);
    let mut h = harness_of(&path);
    set_format(&mut h, QuantFormat::Nf4);
    // Element 200 lies in NF4 block 3 (blocks of 64 over the flattened tensor).
    h.state_mut().apply(Command::PickElement(200));
    h.run();
    assert_eq!(h.state().state.block, Some(3));
    let core = core_run(&values, &[4, 256], QuantFormat::Nf4);
    let want = block_detail(core.encoded.as_ref().expect("parts"), 3).expect("block 3");
    let app = h.state_mut();
    let view = app.view();
    let (levels, name) =
        quantscope::app::panels::histogram::format_levels(&app.state, &view).expect("levels");
    assert_eq!(levels, want.levels.as_slice());
    assert_eq!(levels.len(), 16);
    assert_eq!(name, "nf4 levels of block 3");
    // Not a uniform grid: the gaps between neighbouring levels differ.
    let gaps: Vec<f32> = levels.windows(2).map(|p| p[1] - p[0]).collect();
    let (lo, hi) = gaps
        .iter()
        .fold((f32::INFINITY, 0.0f32), |(a, b), &g| (a.min(g), b.max(g)));
    assert!(hi > 1.5 * lo, "NF4 gaps {gaps:?}");
    // The legend names the grid and says why no clip thresholds are drawn.
    assert!(has_label(&h, "nf4 levels of block 3 (16 levels)"));
    assert!(
        h.query_by_label_contains("no clip thresholds").is_some(),
        "the legend explains the missing thresholds"
    );
}

#[test]
fn clicking_a_heatmap_cell_selects_its_block_and_the_block_view_shows_its_fields() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, values) = fixture(dir.path(), 6, 512);
    let mut h = harness_of(&path);
    set_format(&mut h, QuantFormat::Q4_K);
    h.get_by_label("Heatmap").click();
    h.run();
    let t = quantscope::app::panels::heatmap::heat_transform(&h.ctx, "heat_error")
        .expect("heatmap drawn");
    // Row 4, column 300: flat 4·512 + 300 = 2348, in Q4_K super-block 2348 / 256 = 9.
    let at = t.position_from_point(&egui_plot::PlotPoint::new(300.5, 4.5));
    h.hover_at(at);
    h.run();
    h.drag_at(at);
    h.run();
    h.drop_at(at);
    h.run();
    assert_eq!(h.state().state.picked, Some(2348));
    assert_eq!(h.state().state.block, Some(9));
    let core = core_run(&values, &[6, 512], QuantFormat::Q4_K);
    let want = block_detail(core.encoded.as_ref().expect("parts"), 9).expect("block 9");
    assert_eq!(want.first, 2304);
    // Every stored field: its name and its bits.
    assert!(!want.fields.is_empty());
    for f in &want.fields {
        assert!(has_label(&h, &f.name), "field {} shown", f.name);
        assert!(
            h.query_all_by_label(&bit_string(f.raw, f.bits))
                .next()
                .is_some(),
            "bits of {} shown",
            f.name
        );
    }
    assert!(
        has_label(
            &h,
            &quantscope::app::panels::block_view::shown_formula(&want.formula)
        ),
        "formula shown"
    );
    // The picked element's line: its input, code, reconstruction and error.
    let i = 2348 - 2304;
    let (x, code, xh) = (values[2348], want.codes[i], want.values[i]);
    let line = format!(
        "{i:>4} {:>9} {x:>+13.6e} {code:>4} {xh:>+13.6e} {:>+10.2e}",
        2348,
        xh - x
    );
    assert!(has_label(&h, &line), "element line {line}");
    // Explain this number walks it through the block: x' = s · level + m.
    assert!(has_label(&h, "x' = s · level + m"));
    assert!(has_label(&h, &format!("{xh}")));
    assert!(has_label(&h, &format!("{code}")));
    // Q4_K multiplies the code itself: the level shown is the code.
    assert!(
        h.query_all_by_label("level (x' − m) / s").next().is_some(),
        "level row shown"
    );

    // Choosing the next block by its number moves the view and the walk-through.
    h.get_by_label("▶").click();
    h.run();
    assert_eq!(h.state().state.block, Some(10));
    assert_eq!(h.state().state.picked, Some(2560));
}

#[test]
fn a_format_that_cannot_store_the_tensor_says_why_and_what_llama_cpp_uses() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Rows of 160 = 5 × 32: no 256-element super-block fits.
    let (path, _) = fixture(dir.path(), 4, 160);
    let mut h = harness_of(&path);
    set_format(&mut h, QuantFormat::Q4_K);
    let reason = QuantFormat::Q4_K
        .check(&[4, 160])
        .expect_err("not applicable")
        .reason;
    assert!(reason.contains("llama.cpp"), "{reason}");
    assert!(
        h.query_all_by_label(&reason).next().is_some(),
        "{reason} shown"
    );
    let view = h.state_mut().view();
    assert!(view.quant.value.is_none());
    assert!(view.quant.error.is_some());
    // The heatmap tab and the block view draw without a result (no panic).
    h.get_by_label("Heatmap").click();
    h.run();
}

#[test]
fn the_apps_json_export_equals_the_clis_for_a_format() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, _) = fixture(dir.path(), 6, 512);
    let mut h = harness_of(&path);
    set_format(&mut h, QuantFormat::Q5_K);
    h.get_by_label("Copy JSON").click();
    h.run();
    let copied = h.state().state.copied.clone().expect("copied");
    let app_json: serde_json::Value = serde_json::from_str(&copied).expect("json");
    let out = assert_cmd::Command::cargo_bin("quantscope")
        .expect("binary")
        .args(["quantize", "--json", "--format", "q5_k"])
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
    assert_eq!(app_json["settings"]["format"], "q5_k", "{app_json}");
    for key in keys(cli_json) {
        if key.ends_with("_ms") {
            continue;
        }
        assert_eq!(app_json[&key], cli_json[&key], "key {key}");
    }
}
