//! Lessons: the seed's numbers read from each lesson's own state, one interaction per lesson
//! through the UI (typing a vector or setting a drag value), navigation, the "Try it on a real
//! tensor" action, and a snapshot of lesson 10 for the README.
#![cfg(feature = "gui")]

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use quantscope::app::lessons::{LessonAction, LessonId, LessonsState};
use quantscope::float::FloatClass;
use quantscope::quant::{Calibration, Preset, Scheme};

/// The lessons panel plus the last action it returned.
#[derive(Default)]
struct Host {
    lessons: LessonsState,
    action: Option<LessonAction>,
}

/// A harness showing `lesson`. Tall, so every widget of a long lesson is laid out on screen.
fn harness(lesson: LessonId) -> Harness<'static, Host> {
    let mut host = Host::default();
    host.lessons.open(lesson);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 5000.0))
        .build_ui_state(
            |ui, host: &mut Host| {
                if let Some(a) = host.lessons.ui(ui, None) {
                    host.action = Some(a);
                }
            },
            host,
        );
    h.run();
    h
}

/// Types `text` into the text field named `label` (replacing its content).
fn type_vector(h: &mut Harness<'static, Host>, label: &str, text: &str) {
    h.get_by_label(label).set_text_value_accesskit(text);
    h.run();
}

/// Sets the drag value or slider named `label`.
fn set_value(h: &mut Harness<'static, Host>, label: &str, value: f64) {
    h.get_by_label(label).set_value_accesskit(value);
    h.run();
}

#[test]
fn every_lesson_renders_and_navigation_walks_them_in_order() {
    let mut h = harness(LessonId::DataTypes);
    for expected in LessonId::ALL.iter().skip(1) {
        h.get_all_by_label("Next lesson")
            .next()
            .expect("next button")
            .click();
        h.run();
        assert_eq!(h.state().lessons.current, *expected);
    }
    h.get_all_by_label("Previous lesson")
        .next()
        .expect("previous button")
        .click();
    h.run();
    assert_eq!(h.state().lessons.current, LessonId::Symmetric);
    h.get_by_label("1. Data types: range vs precision").click();
    h.run();
    assert_eq!(h.state().lessons.current, LessonId::DataTypes);
}

#[test]
fn try_on_a_real_tensor_returns_the_lessons_settings() {
    let mut h = harness(LessonId::Percentile);
    h.get_by_label("Try it on a real tensor").click();
    h.run();
    let Some(LessonAction::TryOnRealTensor(cfg)) = h.state().action.clone() else {
        panic!("no action");
    };
    assert_eq!(cfg.calibration, Calibration::Percentile(99.0));
    assert_eq!(cfg.scheme, Scheme::Asymmetric);
}

#[test]
fn lesson1_data_types() {
    let mut h = harness(LessonId::DataTypes);
    let r = h.state_mut().lessons.data_types.result();
    // 10000 × 10000 = 1e8: FP16 overflows (max 65504), BF16 gives the seed's 99614720
    // (9984² = 99680256 rounded to 8 significant bits), FP32 is exact.
    assert_eq!(r.computed_in[1].class, FloatClass::Infinite);
    assert_eq!(r.computed_in[2].stored, 99_614_720.0);
    assert_eq!(r.computed_in[0].stored, 1.0e8);
    // Interaction: a = 1 → 1 × 10000 = 10000 fits FP16 exactly.
    set_value(&mut h, "Factor a:", 1.0);
    assert_eq!(h.state().lessons.data_types.a, 1.0);
    let r = h.state_mut().lessons.data_types.result();
    assert_eq!(r.computed_in[1].class, FloatClass::Normal);
    assert_eq!(r.computed_in[1].stored, 10_000.0);
}

#[test]
fn lesson2_mixed_precision() {
    let mut h = harness(LessonId::MixedPrecision);
    let r = h.state_mut().lessons.mixed_precision.result();
    // 1e-8 < 2^-25: FP16 stores 0; BF16 and FP32 keep it.
    assert_eq!(r.stored[1].stored, 0.0);
    assert!(r.stored[2].stored > 0.0 && r.stored[0].stored > 0.0);
    // Interaction: k = 16 scales 1e-8 to 6.55e-4, a normal FP16 (relative error ≤ 2^-11).
    set_value(&mut h, "Loss-scale exponent k (scale 2^k):", 16.0);
    assert_eq!(h.state().lessons.mixed_precision.loss_scale_exp, 16);
    let r = h.state_mut().lessons.mixed_precision.result();
    assert_eq!(r.scaled_fp16.class, FloatClass::Normal);
    assert!(((r.recovered - 1e-8) / 1e-8).abs() <= 2f64.powi(-11));
}

#[test]
fn lesson3_what_is_quantization() {
    let mut h = harness(LessonId::WhatIsQuantization);
    let r = h.state_mut().lessons.what_is.result();
    assert_eq!(r.floor_values, vec![4.0, 0.0, 2.0, 4.0]);
    assert_eq!(r.nearest_values, vec![4.0, 2.0, 2.0, 4.0]);
    // Interaction: max 6 → v = x · 4/6 = [2, 0.67, 1.33, 4] → rounded down to [2, 0, 0, 4].
    type_vector(&mut h, "Vector x (in dt1):", "3, 1, 2, 6");
    let r = h.state_mut().lessons.what_is.result();
    assert_eq!(r.floor_values, vec![2.0, 0.0, 0.0, 4.0]);
}

#[test]
fn lesson4_vector_wise() {
    let mut h = harness(LessonId::VectorWise);
    let r = h.state_mut().lessons.vector_wise.result();
    // 4 bits: S = 30/7 wipes B out (2/S = 0.47 → 0); B's own scale keeps it.
    assert_eq!(r.b_global.codes, vec![0, 0, 0, 0]);
    assert_eq!(r.b_own.codes, vec![0, 7, 7, 0]);
    // Interaction: 8 bits → S = 30/127, 2/S = 8.47 → 8.
    set_value(&mut h, "Bits b:", 8.0);
    let r = h.state_mut().lessons.vector_wise.result();
    assert_eq!(r.b_global.codes, vec![0, 8, 8, 0]);
}

#[test]
fn lesson5_outliers() {
    let mut h = harness(LessonId::Outliers);
    let r = h.state_mut().lessons.outliers.result();
    assert_eq!(r.is_outlier.iter().filter(|&&o| o).count(), 1);
    assert!(r.after_metrics.mse * 100.0 < r.before.metrics.mse);
    // Interaction: τ = 50 is above the outlier (40): nothing is split, after equals before.
    set_value(&mut h, "Outlier threshold τ:", 50.0);
    let r = h.state_mut().lessons.outliers.result();
    assert_eq!(r.is_outlier.iter().filter(|&&o| o).count(), 0);
    assert_eq!(r.after, r.before.dequant);
}

#[test]
fn lesson6_minmax() {
    let mut h = harness(LessonId::MinMax);
    let q = h.state_mut().lessons.minmax.result();
    // S = (0.5 − (−0.2))/255 ≈ 0.002745; z = 73; codes [0, 109, 182, 255].
    assert!((f64::from(q.params.scale) - 0.7 / 255.0).abs() < 1e-9);
    assert_eq!(q.codes, vec![0, 109, 182, 255]);
    // Interaction: max 0.8 → S = 1.0/255.
    type_vector(&mut h, "Vector x:", "-0.2, 0.1, 0.3, 0.8");
    let q = h.state_mut().lessons.minmax.result();
    assert!((f64::from(q.params.scale) - 1.0 / 255.0).abs() < 1e-9);
}

#[test]
fn lesson7_percentile() {
    let mut h = harness(LessonId::Percentile);
    let r = h.state_mut().lessons.percentile.result();
    // Exact numpy-linear percentiles of four values: P1 = −0.191, P99 = 4.859.
    assert!((r.p_lo + 0.191).abs() < 1e-6, "{}", r.p_lo);
    assert!((r.p_hi - 4.859).abs() < 1e-6, "{}", r.p_hi);
    // Interaction: 34 copies of the ordinary values (n = 103) give the seed's P1 = −0.2,
    // P99 = 0.3 and S = 0.5/255 ≈ 0.0020.
    set_value(&mut h, "Copies of the ordinary values:", 34.0);
    let r = h.state_mut().lessons.percentile.result();
    assert_eq!(r.p_hi, f64::from(0.3f32));
    assert_eq!(r.p_lo, f64::from(-0.2f32));
    assert!((f64::from(r.quantized.params.scale) - 0.5 / 255.0).abs() < 1e-9);
}

#[test]
fn lesson8_entropy() {
    let mut h = harness(LessonId::Entropy);
    let r = h.state_mut().lessons.entropy.result();
    // Four values: only the full range has a finite KL, so T* = max|x| = 5.
    assert_eq!(r.finite_count(), 1);
    assert_eq!(r.entropy.amax, 5.0);
    // Interaction: [0.1, 0.15, 0.2, 0.25] fill bins 819, 1228, 1638, 2047 of [0, 0.25]; a
    // candidate is finite only when its last kept bin is non-empty: i = 820, 1229, 1639, 2048.
    type_vector(&mut h, "Vector x:", "0.1, 0.15, 0.2, 0.25");
    let r = h.state_mut().lessons.entropy.result();
    assert_eq!(
        r.nonzero_bins.iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![819, 1228, 1638, 2047]
    );
    assert_eq!(r.finite_count(), 4);
}

#[test]
fn lesson9_symmetric() {
    let mut h = harness(LessonId::Symmetric);
    let q = h.state_mut().lessons.symmetric.result();
    assert_eq!(q.params.scale, 3.5f32 / 127.0);
    assert_eq!(q.codes, vec![-91, -36, 0, 36, 127]);
    // Interaction: max|x| = 7 → S = 7/127; −2.5/S = −45.36, ∓1/S = ∓18.14.
    type_vector(&mut h, "Vector x:", "-2.5, -1, 0, 1, 7");
    let q = h.state_mut().lessons.symmetric.result();
    assert_eq!(q.params.scale, 7.0f32 / 127.0);
    assert_eq!(q.codes, vec![-45, -18, 0, 18, 127]);
}

#[test]
fn lesson10_asymmetric() {
    let mut h = harness(LessonId::Asymmetric);
    let r = h.state_mut().lessons.asymmetric.result();
    assert_eq!(r.textbook.params.scale, 6.0f32 / 255.0);
    assert_eq!(r.textbook.params.zero_point, 106);
    assert_eq!(r.textbook.codes, vec![0, 63, 106, 149, 255]);
    assert_eq!(h.state().lessons.asymmetric.preset, Preset::OnnxRuntime);
    assert_eq!(r.library.codes, vec![0, 64, 106, 148, 255]);
    assert!((r.textbook.metrics.sqnr_db - 47.73).abs() < 0.005);
    assert!((r.library.metrics.sqnr_db - 47.73).abs() < 0.005);
    // Interaction: max 5.5 → S = 8/255, z = round(2.5/S = 79.69) = 80.
    type_vector(&mut h, "Vector x:", "-2.5, -1, 0, 1, 5.5");
    let r = h.state_mut().lessons.asymmetric.result();
    assert_eq!(r.textbook.params.scale, 8.0f32 / 255.0);
    assert_eq!(r.textbook.params.zero_point, 80);
    // Ruler: data from 0 to 10 uses all 16 asymmetric codes, only 8 of 15 symmetric ones.
    set_value(&mut h, "Data from:", 0.0);
    let rs = h.state_mut().lessons.asymmetric.rulers();
    assert_eq!(rs.asymmetric.used_count(), 16);
    assert_eq!(rs.symmetric.used_count(), 8);
}

#[test]
fn bad_vector_input_shows_an_inline_error_and_keeps_the_last_values() {
    let mut h = harness(LessonId::Symmetric);
    type_vector(&mut h, "Vector x:", "-2.5, oops, 3");
    assert!(h.query_by_label_contains("is not a number").is_some());
    let q = h.state_mut().lessons.symmetric.result();
    assert_eq!(q.codes, vec![-91, -36, 0, 36, 127]);
}

#[test]
fn snapshot_lesson_asymmetric() {
    let mut host = Host::default();
    host.lessons.open(LessonId::Asymmetric);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .wgpu()
        .build_ui_state(
            |ui, host: &mut Host| {
                host.lessons.ui(ui, None);
            },
            host,
        );
    h.run();
    h.snapshot("lesson_asymmetric");
}
