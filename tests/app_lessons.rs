//! Lessons: the textbook example's numbers read from each lesson's own state; per lesson, inputs
//! edited through the UI to cases that flip each comparison, with the sentences on the page
//! (queried by their text) following; every clamp of an input said on screen; no text below the
//! theme's small size; navigation, the "Try it on a real tensor" action, and a snapshot of each
//! lesson after an edit.
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

/// Sets the drag value or slider named `label` (a slider's number field carries the same
/// label; the slider comes first and takes the value).
fn set_value(h: &mut Harness<'static, Host>, label: &str, value: f64) {
    h.get_all_by_label(label)
        .next()
        .expect("a control with this label")
        .set_value_accesskit(value);
    h.run();
}

/// Picks `option` in the combo box named `label`.
fn choose(h: &mut Harness<'static, Host>, label: &str, option: &str) {
    h.get_by_label(label).click();
    h.run();
    h.get_by_label(option).click();
    h.run();
}

/// Whether some label on the page contains `text`.
fn shows(h: &Harness<'static, Host>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

/// Asserts that the page shows `text`.
#[track_caller]
fn assert_shows(h: &Harness<'static, Host>, text: &str) {
    assert!(shows(h, text), "the page does not show {text:?}");
}

/// Asserts that the page does not show `text`.
#[track_caller]
fn assert_hides(h: &Harness<'static, Host>, text: &str) {
    assert!(!shows(h, text), "the page still shows {text:?}");
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
fn no_lesson_speaks_of_the_seed_and_no_text_is_below_the_small_size() {
    for id in LessonId::ALL {
        let h = harness(id);
        for word in ["seed", "Seed"] {
            assert!(!shows(&h, word), "{id:?} mentions {word:?}");
        }
        // Every text the page painted (the plots' tick labels included) is at least the
        // theme's small size.
        let small = egui::Style::default()
            .text_styles
            .get(&egui::TextStyle::Small)
            .map_or(9.0, |f| f.size);
        let mut sizes = Vec::new();
        collect_text_sizes(h.output().shapes.iter().map(|c| &c.shape), &mut sizes);
        assert!(!sizes.is_empty(), "{id:?}");
        let smallest = sizes.iter().copied().fold(f32::INFINITY, f32::min);
        assert!(
            smallest >= small,
            "{id:?}: text of {smallest} px (small is {small})"
        );
    }
}

/// The font sizes of every text section in `shapes`, nested ones included.
fn collect_text_sizes<'a>(shapes: impl Iterator<Item = &'a egui::Shape>, out: &mut Vec<f32>) {
    for shape in shapes {
        match shape {
            egui::Shape::Text(t) => {
                out.extend(t.galley.job.sections.iter().map(|s| s.format.font_id.size));
            }
            egui::Shape::Vec(v) => collect_text_sizes(v.iter(), out),
            _ => {}
        }
    }
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
    // 10000 × 10000 = 1e8: FP16 overflows (max 65504), BF16 gives 99614720 (9984² =
    // 99680256 rounded to 8 significant bits), FP32 is exact.
    assert_eq!(r.computed_in[1].class(), FloatClass::Infinite);
    assert_eq!(r.computed_in[2].stored(), 99_614_720.0);
    assert_eq!(r.computed_in[0].stored(), 1.0e8);
    // The colour legend of the bit fields.
    for field in ["sign", "exponent", "mantissa"] {
        assert!(h.query_by_label(field).is_some(), "legend entry {field}");
    }
    assert_shows(&h, "FP32: 100000000 exactly.");
    assert_shows(
        &h,
        "FP16: its largest finite number is 65504; the product of its factors rounds above it, so it becomes ∞",
    );
    assert_shows(
        &h,
        "BF16: 99614720 (0.385 % relative error): it first rounds each factor (10000 becomes 9984), then the product.",
    );
    assert_shows(
        &h,
        "Rounding the exact product in one step would give 100139008 instead.",
    );
    assert_shows(&h, "This is the textbook example");
    assert_shows(&h, "FP16 holds 10000 closer than BF16");

    // 300 × 1: every format holds it; nothing "becomes" anything, no one-step difference.
    set_value(&mut h, "Factor a:", 300.0);
    set_value(&mut h, "Factor b:", 1.0);
    assert_eq!(h.state().lessons.data_types.a, 300.0);
    assert_shows(&h, "BF16: 300 exactly.");
    assert_shows(&h, "FP16: 300 exactly.");
    assert_hides(&h, "becomes 300");
    assert_hides(&h, "would give");
    assert_hides(&h, "This is the textbook example");
    assert_shows(&h, "FP16 and BF16 both store 300 and 1 exactly");
    assert_shows(&h, "Both factors are exact in FP32.");

    // 100.3 × 3: the decimal is shown as typed, FP32's own rounding error is shown, and the
    // product is the exact decimal 300.9.
    set_value(&mut h, "Factor a:", 100.3);
    set_value(&mut h, "Factor b:", 3.0);
    assert_shows(&h, "a × b = 100.3 × 3 = 300.9");
    assert_shows(
        &h,
        "100.3 has no exact binary form: even FP32 stores 100.30000305175781 (error 3.052e−6)",
    );
    assert_shows(&h, "100.30000305175781  (error 3.052e−6)");
    assert_hides(&h, "Both factors are exact in FP32.");
    assert_shows(&h, "FP16 holds 100.3 closer than BF16");

    // 100000 is already too large for FP16 as a factor: BF16 holds it closer.
    set_value(&mut h, "Factor a:", 1.0e5);
    assert_shows(
        &h,
        "FP16: the factor 100000 is already above FP16's largest finite number 65504",
    );
    assert_shows(
        &h,
        "BF16 holds 100000 closer than FP16: it is too large for FP16",
    );
    assert_hides(&h, "FP16 holds 100000 closer");

    // Beyond the lesson's range: the clamp is said.
    set_value(&mut h, "Factor a:", 1.0e40);
    assert_shows(&h, "1e40 is outside −1e39 … 1e39: this lesson uses 1e39");
}

#[test]
fn lesson2_mixed_precision() {
    let mut h = harness(LessonId::MixedPrecision);
    let r = h.state_mut().lessons.mixed_precision.result();
    // 1e-8 < 2^-25: FP16 stores 0; BF16 and FP32 keep it.
    assert_eq!(r.stored[1].stored(), 0.0);
    assert!(r.stored[2].stored() > 0.0 && r.stored[0].stored() > 0.0);
    assert_shows(&h, "g = 1e−8 (the typed decimal)");
    assert_shows(&h, "FP16 rounds g = 1e−8 to 0: the update is lost");
    assert_shows(&h, "BF16 keeps FP32's exponent range");
    assert_shows(&h, "vanished: no update");
    assert_shows(
        &h,
        "2^0 is not enough: g · 2^0 = 1e−8 still rounds to 0 in FP16. k ≥ 2 rescues it.",
    );

    // k = 16 rescues the gradient.
    set_value(&mut h, "Loss-scale exponent k (scale 2^k):", 16.0);
    assert_eq!(h.state().lessons.mixed_precision.loss_scale_exp, 16);
    let r = h.state_mut().lessons.mixed_precision.result();
    assert_eq!(r.scaled_fp16.class(), FloatClass::Normal);
    assert_shows(
        &h,
        "Scaling by 2^16 rescued the gradient: without it FP16 stores 0",
    );
    assert_hides(&h, "is not enough");

    // k = 43 overflows FP16 (1e-8 · 2^43 ≈ 87961 > 65504): the page says so.
    set_value(&mut h, "Loss-scale exponent k (scale 2^k):", 43.0);
    assert_shows(
        &h,
        "Overflow: g · 2^43 = 8.796e4 is above FP16's largest finite number 65504",
    );
    assert_shows(&h, "For this g, k ≤ 42 stays finite.");
    assert_hides(&h, "rescued");

    // Beyond the lesson's range the clamp is said (and the overflow still shows).
    set_value(&mut h, "Loss-scale exponent k (scale 2^k):", 90.0);
    assert_shows(&h, "90 is outside 0 … 64: this lesson uses 64");
    assert_shows(&h, "Overflow: g · 2^64");

    // A gradient FP16 holds as a normal number, unscaled: FP16 is the more precise format.
    set_value(&mut h, "Loss-scale exponent k (scale 2^k):", 0.0);
    set_value(&mut h, "Gradient g:", 0.001);
    assert_shows(&h, "FP16 holds g as a normal number");
    assert_shows(&h, "FP16 is the more precise of the two here.");
    assert_shows(&h, "With k = 0 the relative error is");
    assert_hides(&h, "vanished: no update");

    // 1e-6 is an FP16 subnormal: BF16 is the more precise one now.
    set_value(&mut h, "Gradient g:", 1.0e-6);
    assert_shows(&h, "FP16 keeps g only as a subnormal with");
    assert_shows(&h, "BF16 is the more precise of the two here.");
}

#[test]
fn lesson3_what_is_quantization() {
    let mut h = harness(LessonId::WhatIsQuantization);
    let r = h.state_mut().lessons.what_is.result();
    assert_eq!(r.floor_values, vec![4.0, 0.0, 2.0, 4.0]);
    assert_eq!(r.nearest_values, vec![4.0, 2.0, 2.0, 4.0]);
    assert_shows(&h, "dt2 can only hold 0, 2 and 4");
    assert_shows(
        &h,
        "This is the textbook example: its answer [4, 0, 2, 4] is the round-down result.",
    );
    assert_shows(&h, "Element 2: x = 1 stretches to 1.333");
    assert_shows(
        &h,
        "with a smaller error (MSE 0.125 against 0.3125 for rounding down)",
    );
    assert_shows(&h, "element 2 comes back as 0 instead of 1");

    // On the grid: both rules agree, nothing is lost, and it is not the textbook example.
    type_vector(&mut h, "Vector x (in dt1):", "4, 4, 2, 2");
    assert_shows(
        &h,
        "Here both rules give the same codes [4, 4, 2, 2] and the same error (MSE 0)",
    );
    assert_shows(&h, "every element comes back exactly");
    assert_hides(&h, "This is the textbook example");
    assert_hides(&h, "a smaller error");

    // A tie: the codes differ, the error does not.
    type_vector(&mut h, "Vector x (in dt1):", "4, 3");
    assert_shows(
        &h,
        "3 is exactly halfway, and the tie goes to the even code 2",
    );
    assert_shows(&h, "with the same error");

    // max 5 → v = x · 4/5 = [2.4, 0.8, 1.6, 4] → rounded down to [2, 0, 0, 4].
    type_vector(&mut h, "Vector x (in dt1):", "3, 1, 2, 5");
    let r = h.state_mut().lessons.what_is.result();
    assert_eq!(r.floor_values, vec![2.0, 0.0, 0.0, 4.0]);
    assert_hides(&h, "that dt1 cannot");

    // Values outside dt1 are named.
    type_vector(&mut h, "Vector x (in dt1):", "3, 1, 2, 7.5");
    assert_shows(&h, "x holds [7.5] that dt1 cannot");

    // A largest value off the grid, and one beyond the range: both adjustments are said.
    set_value(&mut h, "dt2 grid step:", 3.0);
    assert_shows(
        &h,
        "4 is not a multiple of the step 3: dt2's largest value is 3",
    );
    assert_shows(&h, "dt2 can only hold 0 and 3");
    set_value(&mut h, "dt2 grid step:", 2.0);
    set_value(&mut h, "dt2 largest value:", 20.0);
    assert_shows(&h, "20 is outside 1 … 16: this lesson uses 16");
    assert_shows(&h, "dt2 can only hold 0, 2, 4, 6, 8, 10, 12, 14 and 16");
}

#[test]
fn lesson4_vector_wise() {
    let mut h = harness(LessonId::VectorWise);
    let r = h.state_mut().lessons.vector_wise.result();
    // 4 bits: S = 2·30/15 = 4 wipes B out (2/S = 0.5 → 0, even); B's own scale keeps it.
    assert_eq!(r.b_global.codes, vec![0, 0, 0, 0]);
    assert_eq!(r.b_own.codes, vec![0, 7, 7, 0]);
    assert_shows(&h, "every value of B is at most half a step");
    assert_shows(&h, "wiped out (MSE 2)");
    assert_shows(&h, "its MSE drops from 2 to 0: B comes back exactly");
    assert_shows(
        &h,
        "A holds the largest magnitude, so it sets the shared scale",
    );

    // B with a value its own scale cannot hit exactly: still wiped out, no longer exact.
    type_vector(&mut h, "Group B:", "0, 2, 2, 0.3");
    assert_shows(&h, "every value of B is at most half a step");
    assert_hides(&h, "B comes back exactly");
    assert_shows(&h, "Its own scale S_B");

    // 8 bits: 2/S = 8.47 → 8, B is no longer wiped out.
    set_value(&mut h, "Bits b:", 8.0);
    let r = h.state_mut().lessons.vector_wise.result();
    assert_eq!(r.b_global.codes, vec![0, 8, 8, 1]);
    assert_hides(&h, "wiped out");
    assert_shows(
        &h,
        "With the shared scale, B uses codes 0 … 8 of −127 … 127",
    );

    // Swap the groups: the sentences follow the names.
    set_value(&mut h, "Bits b:", 4.0);
    type_vector(&mut h, "Group A:", "0, 2, 2, 0");
    type_vector(&mut h, "Group B:", "30, 10, 20, 30");
    assert_shows(&h, "every value of A is at most half a step");
    assert_shows(&h, "A comes back exactly");
    assert_shows(&h, "B holds the largest magnitude");

    set_value(&mut h, "Bits b:", 12.0);
    assert_shows(&h, "12 is outside 2 … 8: this lesson uses 8");
}

#[test]
fn lesson5_outliers() {
    let mut h = harness(LessonId::Outliers);
    let r = h.state_mut().lessons.outliers.result();
    assert_eq!(r.is_outlier.iter().filter(|&&o| o).count(), 1);
    assert!(r.after_metrics.mse * 100.0 < r.before.metrics.mse);
    assert_shows(&h, "1 outlier kept in FP16");
    assert_shows(&h, "The outlier made the step");
    assert_shows(&h, "The MSE drops from");
    assert_shows(
        &h,
        "on a real tensor with 0.1 % outliers they would add 0.048 bits",
    );

    // τ above every value: nothing is split, after equals before.
    set_value(&mut h, "Outlier threshold τ:", 50.0);
    let r = h.state_mut().lessons.outliers.result();
    assert_eq!(r.after, r.before.dequant);
    assert_shows(&h, "No value has |x| ≥ τ = 50: nothing is split off");
    assert_hides(&h, "The MSE drops");

    // τ = 0.5: six values are split off.
    set_value(&mut h, "Outlier threshold τ:", 0.5);
    assert_shows(&h, "6 outliers kept in FP16");
    assert_shows(&h, "The 6 outliers made the step");

    // τ below every value: everything stays FP16.
    set_value(&mut h, "Outlier threshold τ:", 0.1);
    assert_shows(&h, "Every value has |x| ≥ τ = 0.1: all 8 are kept in FP16");

    // Exact both ways: the error stays, and no step is claimed for an all-zero rest.
    set_value(&mut h, "Outlier threshold τ:", 100.0);
    type_vector(&mut h, "Vector x:", "127, 0");
    assert_shows(&h, "The MSE stays 0.");
    assert_shows(&h, "need no step at all");
    assert_hides(&h, "The MSE drops");

    set_value(&mut h, "Outlier threshold τ:", -1.0);
    assert_shows(&h, "−1 is outside 1e−6 … 1e6: this lesson uses 1e−6");
}

#[test]
fn lesson6_minmax() {
    let mut h = harness(LessonId::MinMax);
    let q = h.state_mut().lessons.minmax.result();
    // S = (0.5 − (−0.2))/255 ≈ 0.002745; z = 73; codes [0, 109, 182, 255].
    assert!((f64::from(q.params.scale) - 0.7 / 255.0).abs() < 1e-9);
    assert_eq!(q.codes, vec![0, 109, 182, 255]);
    assert_shows(
        &h,
        "Asymmetric codes are unsigned: the code range is [0, 255] (uint8); here they run from 0 to 255.",
    );
    assert_shows(&h, "The textbook example calls them int8");
    assert_shows(
        &h,
        "as the textbook example does, gives the same codes here",
    );
    assert_shows(&h, "z = q_min − ⌊min′ / S⌉ = 0 − ⌊−72.8571⌉ = 73");

    // Symmetric: signed codes, the symmetric formula of ONNX Runtime.
    h.get_by_label("symmetric").click();
    h.run();
    assert_eq!(h.state().lessons.minmax.scheme, Scheme::Symmetric);
    assert_shows(
        &h,
        "Symmetric codes are signed: the code range is [−127, 127] (int8); here they run from −51 to 127.",
    );
    assert_shows(
        &h,
        "S = 2 · max|x| / (q_max − q_min) = 2 · 0.5 / 254 = 0.003937008,   z = 0",
    );
    assert_hides(&h, "uint8");
    assert_hides(&h, "z = q_min − ⌊min′ / S⌉");

    // PyTorch: its own formula, 0.5 / 127.5, and codes −128 … 127.
    choose(&mut h, "Convention (preset):", "pytorch");
    assert_eq!(h.state().lessons.minmax.preset, Preset::PyTorch);
    assert_shows(
        &h,
        "S = max|x| / ((q_max − q_min) / 2) = 0.5 / 127.5 = 0.003921569,   z = 0",
    );
    assert_shows(&h, "the code range is [−128, 127] (int8)");
    assert_hides(&h, "/ 127 =");

    // Asymmetric at 2 bits: rounding once differs from rounding x/S and z separately.
    h.get_by_label("asymmetric").click();
    h.run();
    choose(&mut h, "Convention (preset):", "onnxruntime");
    set_value(&mut h, "Bits b:", 2.0);
    type_vector(&mut h, "Vector x:", "-0.35, 0.3, 1");
    assert_shows(&h, "as the textbook example does, gives [0, 1, 3] here");
    assert_hides(&h, "gives the same codes here");
    assert_hides(&h, "The textbook example calls them int8");

    // All positive: the range is extended to include 0, and the page says so.
    type_vector(&mut h, "Vector x:", "0.1, 0.3, 0.5");
    assert_shows(
        &h,
        "Every value is positive (min = 0.1), so the range is extended down to 0.",
    );
}

#[test]
fn lesson7_percentile() {
    let mut h = harness(LessonId::Percentile);
    let r = h.state_mut().lessons.percentile.result();
    // Exact numpy-linear percentiles of four values: P1 = −0.191, P99 = 4.859.
    assert!((r.run.p_lo + 0.191).abs() < 1e-6, "{}", r.run.p_lo);
    assert!((r.run.p_hi - 4.859).abs() < 1e-6, "{}", r.run.p_hi);
    assert_shows(&h, "below which 1 % and 99 % of the data lie");
    assert_shows(&h, "still reaches toward the outlier 5");
    assert_shows(
        &h,
        "Raise the copies to 34 (n = 103): P_1 becomes −0.2, P_99 becomes 0.3",
    );
    assert_shows(&h, "1 value clipped");

    // 34 copies of the ordinary values (n = 103) give P1 = −0.2, P99 = 0.3, S = 0.5/255.
    set_value(&mut h, "Copies of the ordinary values:", 34.0);
    let r = h.state_mut().lessons.percentile.result();
    assert_eq!(r.run.p_hi, f64::from(0.3f32));
    assert_eq!(r.run.p_lo, f64::from(-0.2f32));
    assert!((f64::from(r.quantized.params.scale) - 0.5 / 255.0).abs() < 1e-9);
    assert_shows(
        &h,
        "With n = 103 values the clip range [−0.2, 0.3] leaves the outlier 5 outside",
    );
    assert_hides(&h, "Raise the copies");
    assert_hides(&h, "would already do");

    set_value(&mut h, "Copies of the ordinary values:", 50.0);
    assert_shows(&h, "34 copies would already do.");

    // p = 100: the percentile is the maximum itself.
    set_value(&mut h, "Copies of the ordinary values:", 1.0);
    set_value(&mut h, "Upper percentile p:", 100.0);
    assert_shows(&h, "below which 0 % and 100 % of the data lie");
    assert_shows(&h, "At p = 100 the percentile is the extreme value itself");
    assert_hides(&h, "Raise the copies");
    assert_hides(&h, "The textbook example says");

    set_value(&mut h, "Upper percentile p:", 120.0);
    assert_shows(&h, "120 is outside 50 … 100: this lesson uses 100");
    set_value(&mut h, "Copies of the ordinary values:", 500.0);
    assert_shows(&h, "500 is outside 1 … 200: this lesson uses 200");
}

#[test]
fn lesson8_entropy() {
    let mut h = harness(LessonId::Entropy);
    let r = h.state_mut().lessons.entropy.result();
    // Four values: only the full range has a finite KL, so T* = max|x| = 5.
    assert_eq!(r.finite_count(), 1);
    assert_eq!(r.entropy.amax, 5.0);
    assert_shows(&h, "1920 of 1921 candidates have an infinite KL");
    assert_shows(
        &h,
        "Only the one threshold ending on a non-empty bin is finite.",
    );
    assert_shows(&h, "T* = 5 (100 % of max|x|), keeping every value");
    assert_shows(&h, "almost nothing to choose from");

    // [0.1, 0.15, 0.2, 0.25] fill bins 819, 1228, 1638, 2047 of [0, 0.25]; a candidate is
    // finite only when its last kept bin is non-empty: i = 820, 1229, 1639, 2048.
    type_vector(&mut h, "Vector x:", "0.1, 0.15, 0.2, 0.25");
    let r = h.state_mut().lessons.entropy.result();
    assert_eq!(
        r.nonzero_bins.iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![819, 1228, 1638, 2047]
    );
    assert_eq!(r.finite_count(), 4);
    assert_shows(
        &h,
        "Only the 4 thresholds ending on a non-empty bin are finite.",
    );
    assert_hides(&h, "Only the one threshold");
    // Thresholds below 0.1 keep only empty bins (NaN); as in NVIDIA's code the last of them
    // (bin 692 of 2048, T* = 692 · 0.25/2048 − half a bin) wins and clips all four values.
    assert_eq!(r.nan_count(), 692);
    assert_eq!(r.entropy.best, 691);
    assert_eq!(r.entropy.amax, 0.0999755859375);
    assert_eq!(r.clipped, 4);
    assert_shows(
        &h,
        "the last undefined candidate wins: T* = 0.099976 lies below every |x| and clips all 4 values",
    );
    assert_hides(&h, "keeping every value");

    // Two values near the top: every early candidate keeps only empty bins (NaN), and as in
    // NVIDIA's code the last of them wins, below every |x|.
    type_vector(&mut h, "Vector x:", "5, 5.1");
    let r = h.state_mut().lessons.entropy.result();
    assert!(r.nan_count() > 0);
    assert!(r.entropy.amax < 5.0);
    assert_shows(&h, "keep only empty bins (every |x| lies above them)");
    assert_shows(&h, "the last undefined candidate wins");
    assert_shows(&h, "clips all 2 values");
    assert_hides(&h, "keeping every value");

    set_value(&mut h, "Bits b:", 2.0);
    assert_shows(&h, "2 levels;  candidates T = bins 2 … 2048");
}

#[test]
fn lesson9_symmetric() {
    let mut h = harness(LessonId::Symmetric);
    let r = h.state_mut().lessons.symmetric.result();
    assert_eq!(r.main.params.scale, 3.5f32 / 127.0);
    assert_eq!(r.main.codes, vec![-91, -36, 0, 36, 127]);
    assert_shows(&h, "No value lands exactly halfway between two codes");
    assert_shows(
        &h,
        "The pytorch preset computes S = 0.02745098 instead of 0.027559055 (its codes run from −128 to 127): the codes stay the same, but 3.5 comes back as 3.486274 instead of 3.5",
    );
    assert_shows(
        &h,
        "nothing is below −2.5, so the codes −127 … −92 are never used (36 of 255)",
    );

    // max|x| = 7 → S = 7/127; −2.5/S = −45.36, ∓1/S = ∓18.14; the codes change under PyTorch?
    type_vector(&mut h, "Vector x:", "-2.5, -1, 0, 1, 7");
    let r = h.state_mut().lessons.symmetric.result();
    assert_eq!(r.main.params.scale, 7.0f32 / 127.0);
    assert_eq!(r.main.codes, vec![-45, -18, 0, 18, 127]);
    assert_shows(
        &h,
        "nothing is below −2.5, so the codes −127 … −46 are never used",
    );

    // A tie and balanced data: the tie rule is named, both ends are used.
    type_vector(&mut h, "Vector x:", "-127, 63.5, 127");
    assert_shows(
        &h,
        "1 value lands exactly halfway between two codes (x / S = 63.5); onnxruntime rounds ties to even",
    );
    assert_shows(&h, "Both ends of the code range are used here.");
    assert_hides(&h, "never used");

    // The negative side is the larger one: the unused codes are at the top.
    type_vector(&mut h, "Vector x:", "-7, 1, 2");
    assert_shows(
        &h,
        "nothing is above 2, so the codes 37 … 127 are never used (91 of 255)",
    );

    // Under PyTorch the comparison is with ONNX Runtime.
    choose(&mut h, "Convention (preset):", "pytorch");
    assert_shows(&h, "The onnxruntime preset computes");
    assert_shows(&h, "S = max|x| / ((q_max − q_min) / 2)");
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
    assert_shows(&h, "onnxruntime: ties to even");
    assert_shows(
        &h,
        "2 values land exactly halfway between two codes (x / S = −42.5 for x = −1, x / S = 42.5 for x = 1).",
    );
    assert_shows(&h, "yet the MSE is the same up to float32 rounding");
    assert_shows(
        &h,
        "The textbook arithmetic and onnxruntime give the same S and z here.",
    );
    // The ruler of the textbook ideal starts at 3: no integer zero point.
    assert_shows(
        &h,
        "no integer z: real 0 would sit at code −6.429 (0 is not exact)",
    );
    assert_shows(
        &h,
        "The data ranges from 3 to 10. A symmetric ruler must reach from −10 to +10, so the data uses 6 of its 15 codes.",
    );

    // TFLite rounds ties away from zero too: the codes agree.
    choose(&mut h, "Convention (preset):", "tflite");
    assert_shows(&h, "tflite: ties away from zero");
    assert_shows(&h, "This preset also rounds ties away from zero");
    assert_shows(
        &h,
        "tflite also rounds ties away from zero, so the codes agree.",
    );
    assert_hides(&h, "yet the MSE is the same");

    // max 5.5 → S = 8/255, z = round(2.5/S = 79.69) = 80, and no tie.
    choose(&mut h, "Convention (preset):", "onnxruntime");
    type_vector(&mut h, "Vector x:", "-2.5, -1, 0, 1, 5.5");
    let r = h.state_mut().lessons.asymmetric.result();
    assert_eq!(r.textbook.params.scale, 8.0f32 / 255.0);
    assert_eq!(r.textbook.params.zero_point, 80);
    assert_shows(&h, "No value lands exactly halfway between two codes");
    assert_hides(&h, "values land exactly halfway");

    // Ruler: data from 0 to 10 uses all 16 asymmetric codes, only 8 of 15 symmetric ones.
    set_value(&mut h, "Data from:", 0.0);
    let rs = h.state_mut().lessons.asymmetric.rulers();
    assert_eq!(rs.asymmetric.used_count(), 16);
    assert_eq!(rs.symmetric.used_count(), 8);
    assert_shows(&h, "already includes 0");

    // From −3 to 12: 0 is a grid point of the ideal ruler (z = 3).
    set_value(&mut h, "Data from:", -3.0);
    set_value(&mut h, "Data to:", 12.0);
    assert_shows(
        &h,
        "asymmetric (textbook ideal: starts at min): S = 1, z = 3, data uses 16 of 16 codes",
    );
    assert_hides(&h, "no integer z");

    // Swapped ends and out-of-range inputs are said.
    set_value(&mut h, "Data from:", 20.0);
    assert_shows(
        &h,
        "\"Data from\" is above \"Data to\": the ruler uses the range [12, 20].",
    );
    set_value(&mut h, "Data to:", 200.0);
    assert_shows(&h, "200 is outside −100 … 100: this lesson uses 100");
    set_value(&mut h, "Ruler bits:", 9.0);
    assert_shows(&h, "9 is outside 2 … 6: this lesson uses 6");
}

#[test]
fn bad_vector_input_shows_an_inline_error_and_keeps_the_last_values() {
    let mut h = harness(LessonId::Symmetric);
    type_vector(&mut h, "Vector x:", "-2.5, oops, 3");
    assert!(h.query_by_label_contains("is not a number").is_some());
    let r = h.state_mut().lessons.symmetric.result();
    assert_eq!(r.main.codes, vec![-91, -36, 0, 36, 127]);
}

/// A wgpu harness of the lessons panel at `size`, showing `lesson`.
fn snapshot_harness(lesson: LessonId, size: egui::Vec2) -> Harness<'static, Host> {
    let mut host = Host::default();
    host.lessons.open(lesson);
    let mut h = Harness::builder().with_size(size).wgpu().build_ui_state(
        |ui, host: &mut Host| {
            host.lessons.ui(ui, None);
        },
        host,
    );
    h.run();
    h
}

#[test]
fn snapshot_lesson_asymmetric() {
    let mut h = snapshot_harness(LessonId::Asymmetric, egui::vec2(1280.0, 800.0));
    h.snapshot("lesson_asymmetric");
}

/// Each lesson after an edit that flips one of its sentences, the whole page in one image.
#[test]
fn snapshot_every_lesson_after_an_edit() {
    type Edit = fn(&mut Harness<'static, Host>);
    let cases: [(LessonId, &str, f32, Edit); 10] = [
        (
            LessonId::DataTypes,
            "lesson_01_data_types_edited",
            1500.0,
            |h| {
                set_value(h, "Factor a:", 100.3);
                set_value(h, "Factor b:", 3.0);
            },
        ),
        (
            LessonId::MixedPrecision,
            "lesson_02_mixed_precision_edited",
            1150.0,
            |h| {
                set_value(h, "Loss-scale exponent k (scale 2^k):", 43.0);
            },
        ),
        (
            LessonId::WhatIsQuantization,
            "lesson_03_what_is_edited",
            1250.0,
            |h| {
                type_vector(h, "Vector x (in dt1):", "4, 3, 1, 2");
            },
        ),
        (
            LessonId::VectorWise,
            "lesson_04_vector_wise_edited",
            1250.0,
            |h| {
                type_vector(h, "Group B:", "0, 2, 2, 0.3");
            },
        ),
        (
            LessonId::Outliers,
            "lesson_05_outliers_edited",
            1500.0,
            |h| {
                set_value(h, "Outlier threshold τ:", 0.5);
            },
        ),
        (LessonId::MinMax, "lesson_06_minmax_edited", 1350.0, |h| {
            h.get_by_label("symmetric").click();
            h.run();
            choose(h, "Convention (preset):", "pytorch");
        }),
        (
            LessonId::Percentile,
            "lesson_07_percentile_edited",
            1600.0,
            |h| {
                set_value(h, "Copies of the ordinary values:", 34.0);
            },
        ),
        (LessonId::Entropy, "lesson_08_entropy_edited", 1450.0, |h| {
            type_vector(h, "Vector x:", "0.1, 0.15, 0.2, 0.25");
        }),
        (
            LessonId::Symmetric,
            "lesson_09_symmetric_edited",
            1300.0,
            |h| {
                type_vector(h, "Vector x:", "-7, 1, 2");
            },
        ),
        (
            LessonId::Asymmetric,
            "lesson_10_asymmetric_edited",
            2000.0,
            |h| {
                choose(h, "Convention (preset):", "tflite");
                set_value(h, "Data from:", -3.0);
                set_value(h, "Data to:", 12.0);
            },
        ),
    ];
    let mut failures = Vec::new();
    for (id, name, height, edit) in cases {
        let mut h = snapshot_harness(id, egui::vec2(1280.0, height));
        edit(&mut h);
        h.run();
        if let Err(e) = h.try_snapshot(name) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
