//! The Model view in the real app (egui_kittest, jobs inline) on a small safetensors model this
//! test writes: the budget slider re-allocates and the recipe follows; a click on a point of
//! the Pareto chart pins that candidate; the strip opens a tensor; the export writes the recipe.
#![cfg(feature = "gui")]

use std::path::{Path, PathBuf};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use egui_plot::PlotPoint;
use quantscope::app::panels::model_view::BUDGET_LABEL;
use quantscope::app::{Command, QuantscopeApp};
use quantscope::plan::{Choice, Why};
use safetensors::Dtype;
use safetensors::tensor::TensorView;

/// Deterministic values in (-1, 1) (a cheap LCG), every 61st scaled by `spike`.
fn values(n: usize, seed: u64, spike: f32) -> Vec<f32> {
    let mut s = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|i| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = ((s >> 40) as f32) / (1u64 << 24) as f32 * 2.0 - 1.0;
            if i % 61 == 0 { u * spike } else { u }
        })
        .collect()
}

/// Four weights (two layers × attn/mlp, one with 64-wide rows so the K-quants refuse it) and
/// a bias.
fn model(dir: &Path) -> PathBuf {
    let path = dir.join("model.safetensors");
    let tensors: Vec<(&str, Vec<usize>, Vec<f32>)> = vec![
        ("layer.0.attn.weight", vec![8, 256], values(2048, 1, 1.0)),
        ("layer.0.mlp.weight", vec![16, 256], values(4096, 2, 6.0)),
        ("layer.1.attn.weight", vec![8, 256], values(2048, 3, 12.0)),
        ("layer.1.mlp.weight", vec![32, 64], values(2048, 4, 2.0)),
        ("layer.1.mlp.bias", vec![32], values(32, 5, 1.0)),
    ];
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, s, _), b)| {
            (
                n.to_string(),
                TensorView::new(Dtype::F32, s.clone(), b).expect("consistent fixture"),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &path).expect("fixture written");
    path
}

fn harness(path: PathBuf) -> Harness<'static, QuantscopeApp> {
    let mut app = QuantscopeApp::new(
        quantscope::app::jobs::Runner::Inline,
        quantscope::app::settings::Settings::default(),
        vec![path],
    );
    app.apply(Command::ShowModelView(true));
    let mut h = Harness::builder()
        .with_size(egui::vec2(1500.0, 1000.0))
        .build_ui_state(|ui, app: &mut QuantscopeApp| app.ui_root(ui), app);
    h.run();
    h
}

/// The current recipe: per tensor of the sweep, (name, chosen candidate id or kept format).
fn recipe(app: &mut QuantscopeApp) -> Vec<(String, String, Why)> {
    let view = app.view();
    let data = view.model_view.expect("model view data");
    let plan = data.plan.expect("a finished sweep").expect("a plan");
    let allocation = plan.allocation.expect("an allocation");
    plan.table
        .tensors
        .iter()
        .zip(&allocation.choices)
        .map(|(t, c)| match c {
            Choice::Candidate { candidate, why } => (
                t.name.clone(),
                plan.table.candidates[*candidate].id.clone(),
                why.clone(),
            ),
            Choice::Kept { format, why, .. } => (t.name.clone(), format.clone(), why.clone()),
        })
        .collect()
}

/// Average bits per weight of the current allocation.
fn average_bpw(app: &mut QuantscopeApp) -> f64 {
    let view = app.view();
    let plan = view
        .model_view
        .and_then(|d| d.plan)
        .expect("plan")
        .expect("ok");
    plan.allocation.expect("allocation").average_bpw
}

/// The budget slider (its label is a separate node with the same text).
fn slider<'a>(h: &'a Harness<'static, QuantscopeApp>) -> egui_kittest::Node<'a> {
    h.get_by_role_and_label(egui::accesskit::Role::Slider, BUDGET_LABEL)
}

#[test]
fn the_budget_slider_changes_the_recipe() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(model(dir.path()));
    assert_eq!(h.state().state.model_view.budget_bpw, 4.5);
    let before = recipe(h.state_mut());
    assert!(average_bpw(h.state_mut()) <= 4.5 + 1e-12);
    slider(&h).set_value_accesskit(3.0);
    h.run();
    assert_eq!(h.state().state.model_view.budget_bpw, 3.0);
    let after = recipe(h.state_mut());
    let bpw = average_bpw(h.state_mut());
    assert!(bpw <= 3.0 + 1e-12, "over budget: {bpw}");
    assert_ne!(before, after, "a lower budget changes some choice");
    // The table shows the new choices.
    for (name, choice, why) in &after {
        if *why == Why::Budget {
            assert!(h.query_all_by_label(name).next().is_some(), "{name} listed");
            assert!(
                h.query_all_by_label(choice).next().is_some(),
                "{choice} shown"
            );
        }
    }
    slider(&h).set_value_accesskit(8.0);
    h.run();
    let rich = average_bpw(h.state_mut());
    assert!(rich > bpw && rich <= 8.0 + 1e-12);
}

#[test]
fn a_click_on_a_pareto_point_pins_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(model(dir.path()));
    assert!(h.state_mut().select_by_name("layer.0.mlp.weight"));
    h.run();
    h.run();
    let transform = h.state().pareto_transform.expect("Pareto chart drawn");
    // Pick the cheapest frontier option (the allocator chose a richer one at 4.5 bits).
    let (target_id, point) = {
        let app = h.state_mut();
        let view = app.view();
        let plan = view
            .model_view
            .and_then(|d| d.plan)
            .expect("plan")
            .expect("ok");
        let row = plan
            .table
            .tensors
            .iter()
            .position(|t| t.name == "layer.0.mlp.weight")
            .expect("row");
        let numel = plan.table.tensors[row].numel as f64;
        let chooser = plan
            .problem
            .choosers
            .iter()
            .find(|c| c.tensor == row)
            .expect("planned");
        let first = *chooser.frontier.first().expect("a frontier");
        let o = chooser.options[first];
        let chosen = match &plan.allocation.as_ref().expect("allocation").choices[row] {
            Choice::Candidate { candidate, .. } => *candidate,
            Choice::Kept { .. } => panic!("planned tensor kept"),
        };
        assert_ne!(
            o.candidate, chosen,
            "the cheapest option is not the choice yet"
        );
        (
            plan.table.candidates[o.candidate].id.clone(),
            PlotPoint::new(o.bits as f64 / numel, (o.error / numel).log10()),
        )
    };
    let pos = transform.position_from_point(&point);
    h.hover_at(pos);
    h.run();
    h.drag_at(pos);
    h.run();
    h.drop_at(pos);
    h.run();
    assert_eq!(
        h.state().state.model_view.pin_of("layer.0.mlp.weight"),
        Some(target_id.as_str())
    );
    let pinned = recipe(h.state_mut())
        .into_iter()
        .find(|(n, _, _)| n == "layer.0.mlp.weight")
        .expect("listed");
    assert_eq!(pinned.1, target_id);
    assert_eq!(pinned.2, Why::Override);
    assert!(
        average_bpw(h.state_mut()) <= 4.5 + 1e-12,
        "still within budget"
    );
    // Unpin releases it to the budget.
    h.get_by_label("Unpin").click();
    h.run();
    assert_eq!(
        h.state().state.model_view.pin_of("layer.0.mlp.weight"),
        None
    );
}

#[test]
fn the_recipe_exports_as_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(model(dir.path()));
    h.get_by_label("Export recipe").click();
    h.run();
    let status = h.state().state.status.clone().expect("a status line");
    let path = status.strip_prefix("saved ").expect("saved");
    assert!(path.ends_with("recipe.json"), "{path}");
    let text = std::fs::read_to_string(path).expect("recipe written");
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(json["budget_bpw"], 4.5);
    let names: Vec<&str> = json["tensors"]
        .as_array()
        .expect("tensors")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"layer.1.mlp.weight"));
}

#[test]
fn the_channels_tab_shows_each_output_channels_range() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(model(dir.path()));
    h.state_mut().apply(Command::ShowModelView(false));
    assert!(h.state_mut().select_by_name("layer.1.attn.weight"));
    h.run();
    h.get_by_label("Channels").click();
    h.run();
    let view = h.state_mut().view();
    let ranges = view.channels.value.expect("channel ranges");
    let v = values(2048, 3, 12.0);
    let want: Vec<Option<(f32, f32)>> = v
        .chunks(256)
        .map(|row| {
            let lo = row.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            Some((lo, hi))
        })
        .collect();
    assert_eq!(ranges.rows, want);
    let absmax = v.iter().fold(0.0f32, |a, x| a.max(x.abs()));
    assert_eq!(ranges.absmax, absmax);
}

#[test]
fn a_click_on_the_strip_opens_that_tensor() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(model(dir.path()));
    let index = {
        let app = h.state();
        let model = app.state.model.as_ref().expect("model");
        model.model.find("layer.1.mlp.weight").expect("tensor")
    };
    h.get_by_label("strip cell layer.1.mlp.weight").click();
    h.run();
    assert!(!h.state().state.show_model);
    assert_eq!(h.state().state.selected, Some(index));
}
