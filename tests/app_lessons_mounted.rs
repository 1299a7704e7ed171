//! The lessons inside the whole app: the menu toggle opens them, "Try it on a real tensor"
//! carries the lesson's settings back to the main views, lessons 5, 7 and 8 start on the demo's
//! real captured activations (or the selected tensor when asked), all of it through the same
//! jobs as the main view so they agree with it, and their sentences about the real tensor
//! follow its numbers.
#![cfg(feature = "gui")]

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use quantscope::app::lessons::{LESSON_ACTIVATION, LessonId, LessonsState, OUTLIER_ACTIVATION};
use quantscope::app::{Command, QuantscopeApp};
use quantscope::cancel::Cancel;
use quantscope::quant::tensor::Outputs;
use quantscope::quant::{
    Calibration, OutlierMode, OutlierThreshold, QuantConfig, QuantResult, Scheme, quantize_tensor,
};

fn app_harness() -> Harness<'static, QuantscopeApp> {
    let mut app = QuantscopeApp::new_for_tests();
    assert!(
        app.select_by_name("encoder.layer.0.attention.output.LayerNorm.weight"),
        "demo has the LayerNorm weight"
    );
    Harness::builder()
        // Tall, so the whole lesson page (its button at the end) is laid out on screen.
        .with_size(egui::vec2(1400.0, 5000.0))
        .build_ui_state(|ui, app: &mut QuantscopeApp| app.ui_root(ui), app)
}

#[test]
fn lessons_toggle_and_try_it_on_a_real_tensor() {
    let mut h = app_harness();
    h.run();
    h.get_by_label("Lessons").click();
    h.run();
    assert!(h.state().state.show_lessons);
    let mut lessons = h.state().state.settings.lessons.clone();
    lessons.open(LessonId::Percentile);
    h.state_mut().apply(Command::SetLessons(Box::new(lessons)));
    h.run();
    // Lesson 7 starts on the demo's captured activations, all of them.
    let view = h.state_mut().view();
    let real = view.lesson.as_ref().expect("a real-tensor part");
    assert_eq!(real.name, LESSON_ACTIVATION);
    assert_eq!(real.numel, 429 * 384);
    assert_eq!(real.runs.len(), 2);
    assert!(shows(&h, "real activations captured from all-MiniLM-L6-v2"));
    // Asked to, it runs on the tensor selected in the main views instead.
    h.get_by_label(
        "Run on the tensor selected in the main views instead of the built-in activations",
    )
    .click();
    h.run();
    assert!(h.state().state.settings.lessons.on_selected_tensor);
    let view = h.state_mut().view();
    let real = view.lesson.as_ref().expect("a real-tensor part");
    assert_eq!(
        real.name,
        "encoder.layer.0.attention.output.LayerNorm.weight"
    );
    assert_eq!(real.runs.len(), 2);
    let mut lessons = h.state().state.settings.lessons.clone();
    lessons.open(LessonId::Asymmetric);
    h.state_mut().apply(Command::SetLessons(Box::new(lessons)));
    h.run();
    h.get_by_label("Try it on a real tensor").click();
    h.run();
    let app = &h.state().state;
    assert!(!app.show_lessons, "the main views are back");
    // Lesson 10 is asymmetric min-max: the main views now use exactly those settings.
    assert_eq!(app.settings.quant.scheme, Scheme::Asymmetric);
    assert_eq!(app.settings.quant.calibration, Calibration::MinMax);
    assert_eq!(app.settings.quant, app.settings.lessons.asymmetric.config());
}

#[test]
fn lessons_7_and_8_agree_with_the_main_view_on_the_same_tensor() {
    let mut app = QuantscopeApp::new_for_tests();
    // The main view on the same captured activation the lesson runs on.
    assert!(app.select_by_name(LESSON_ACTIVATION));
    // Lesson 7's percentile run under the main view's settings: the same job, the same result.
    let mut lessons = app.state.settings.lessons.clone();
    lessons.open(LessonId::Percentile);
    app.apply(Command::SetLessons(Box::new(lessons)));
    let lesson_cfg = app.state.settings.lessons.percentile.config();
    app.apply(Command::SetQuant(lesson_cfg.clone()));
    let main = app.view();
    let main_q = main.quant.value.clone().expect("main quantization");
    app.apply(Command::ShowLessons(true));
    let view = app.view();
    let real = view.lesson.as_ref().expect("real part");
    assert_eq!(real.name, LESSON_ACTIVATION);
    let (cfg, run) = &real.runs[1];
    assert_eq!(*cfg, lesson_cfg);
    let lesson_result = run.value.as_deref().expect("ran inline");
    assert_eq!(lesson_result.clip_min, main_q.result.clip_min);
    assert_eq!(lesson_result.clip_max, main_q.result.clip_max);
    assert_eq!(lesson_result.metrics, main_q.result.metrics);
    // Every element counts: the tensor's own min and max bound the min-max run.
    let (_, minmax) = &real.runs[0];
    let values = app
        .derived
        .values(
            app.state.model.as_ref().expect("model"),
            app.state.selected.expect("sel"),
        )
        .expect("values");
    let lo = values.iter().copied().fold(f32::INFINITY, f32::min);
    let mm = minmax.value.as_deref().expect("min-max run");
    assert_eq!(mm.clip_min.first().copied(), Some(f64::from(lo)));
}

/// The main view's quantization of the selected tensor under `cfg`, and the lesson's run with
/// the same settings (index `run` of the open lesson's real-tensor part).
fn main_and_lesson(
    app: &mut QuantscopeApp,
    lessons: LessonsState,
    cfg: &QuantConfig,
    run: usize,
) -> (QuantResult, QuantResult) {
    app.apply(Command::SetLessons(Box::new(lessons)));
    app.apply(Command::ShowLessons(false));
    app.apply(Command::SetQuant(cfg.clone()));
    let main = app.view();
    let main_q = main.quant.value.clone().expect("main quantization");
    app.apply(Command::ShowLessons(true));
    let view = app.view();
    let real = view.lesson.as_ref().expect("real part");
    let (lesson_cfg, shown) = &real.runs[run];
    assert_eq!(lesson_cfg, cfg);
    assert!(
        shown.current,
        "the lesson's run is for the current settings"
    );
    let lesson_q = shown.value.as_deref().expect("ran inline").clone();
    (main_q.result.clone(), lesson_q)
}

#[test]
fn lesson_8_agrees_with_the_main_view_on_the_same_tensor() {
    let mut app = QuantscopeApp::new_for_tests();
    assert!(app.select_by_name(LESSON_ACTIVATION));
    let mut lessons = app.state.settings.lessons.clone();
    lessons.open(LessonId::Entropy);
    let cfg = lessons.entropy.config();
    let (main, lesson) = main_and_lesson(&mut app, lessons, &cfg, 1);
    // The same KL threshold (the whole tensor's histogram) and the same error.
    assert_eq!(lesson.clip_max, main.clip_max);
    assert_eq!(lesson.scales, main.scales);
    assert_eq!(lesson.metrics, main.metrics);
}

/// A harness drawing the whole app with `lessons` open on `tensor`.
fn lessons_harness(tensor: &str, lessons: LessonsState) -> Harness<'static, QuantscopeApp> {
    let mut app = QuantscopeApp::new_for_tests();
    assert!(app.select_by_name(tensor), "demo has {tensor}");
    app.apply(Command::SetLessons(Box::new(lessons)));
    app.apply(Command::ShowLessons(true));
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 5000.0))
        .build_ui_state(|ui, app: &mut QuantscopeApp| app.ui_root(ui), app);
    h.run();
    h
}

/// The SQNRs (dB) of the open lesson's two real-tensor runs (min-max first).
fn real_sqnrs(app: &mut QuantscopeApp) -> (f64, f64) {
    let view = app.view();
    let real = view.lesson.as_ref().expect("real part");
    let db = |i: usize| {
        let (_, shown) = &real.runs[i];
        assert!(shown.current);
        shown.value.as_deref().expect("ran inline").metrics.sqnr_db
    };
    (db(0), db(1))
}

/// Whether some label of the window contains `text`.
fn shows(h: &Harness<'static, QuantscopeApp>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

#[test]
fn lesson_7_real_sentence_follows_the_runs() {
    let mut lessons = LessonsState::default();
    lessons.open(LessonId::Percentile);
    // On the captured activations p = 99.99 clips only 16 of 164,736 values, none of the
    // outlier dimensions: the finer step wins (numpy: 25.37 dB against 25.25 dB).
    lessons.percentile.p = 99.99;
    let mut h = lessons_harness(
        "encoder.layer.0.attention.output.LayerNorm.weight",
        lessons.clone(),
    );
    let (mm, pc) = real_sqnrs(h.state_mut());
    assert!(pc > mm, "percentile {pc} dB against min-max {mm} dB");
    assert!(shows(
        &h,
        &format!("On {LESSON_ACTIVATION}, the percentile range")
    ));
    assert!(shows(&h, "and percentile wins"));
    assert!(!shows(&h, "min-max wins"));
    // p = 50 clips half of the values: min-max wins, and the sentence turns around.
    lessons.percentile.p = 50.0;
    h.state_mut().apply(Command::SetLessons(Box::new(lessons)));
    h.run();
    let (mm, pc) = real_sqnrs(h.state_mut());
    assert!(mm > pc, "min-max {mm} dB against percentile {pc} dB");
    assert!(shows(&h, "and min-max wins"));
    assert!(!shows(&h, "percentile wins"));
}

#[test]
fn lesson_8_real_sentence_follows_the_runs() {
    let mut lessons = LessonsState::default();
    lessons.open(LessonId::Entropy);
    let mut h = lessons_harness(
        "encoder.layer.0.attention.output.LayerNorm.weight",
        lessons.clone(),
    );
    let (mm, kl) = real_sqnrs(h.state_mut());
    let winner = if kl > mm { "KL wins" } else { "min-max wins" };
    let loser = if kl > mm { "min-max wins" } else { "KL wins" };
    assert!(
        shows(&h, &format!("On {LESSON_ACTIVATION}, {winner}")),
        "{winner}"
    );
    assert!(!shows(&h, loser));
    // On the selected LayerNorm weight (no long tail) the verdict is read afresh.
    lessons.on_selected_tensor = true;
    let mut h = lessons_harness("encoder.layer.0.attention.output.LayerNorm.weight", lessons);
    let (mm2, kl2) = real_sqnrs(h.state_mut());
    let winner2 = if kl2 > mm2 {
        "KL wins"
    } else if kl2 < mm2 {
        "min-max wins"
    } else {
        "give the same"
    };
    assert!(
        shows(
            &h,
            &format!("On encoder.layer.0.attention.output.LayerNorm.weight, {winner2}")
        ) || shows(&h, winner2),
        "{winner2}"
    );
}

#[test]
fn lesson_5_splits_the_real_activation_as_the_main_view_and_the_core_do() {
    let mut app = QuantscopeApp::new_for_tests();
    assert!(app.select_by_name(OUTLIER_ACTIVATION));
    let mut lessons = app.state.settings.lessons.clone();
    lessons.open(LessonId::Outliers);
    let cfg = lessons.outliers.real_config();
    assert_eq!(cfg.outliers, OutlierMode::Columns);
    assert_eq!(cfg.outlier_threshold, OutlierThreshold::Absolute(6.0));
    let (main, lesson) = main_and_lesson(&mut app, lessons, &cfg, 0);
    // The core on the same values with the same column split and τ.
    let values = app
        .derived
        .values(
            app.state.model.as_ref().expect("model"),
            app.state.selected.expect("sel"),
        )
        .expect("values");
    let core = quantize_tensor(
        &values,
        &[429, 1536],
        &cfg,
        Outputs::default(),
        &Cancel::never(),
    )
    .expect("core run");
    for other in [&main, &core] {
        assert_eq!(lesson.outliers, other.outliers);
        assert_eq!(lesson.metrics, other.metrics);
        assert_eq!(lesson.bits_per_weight, other.bits_per_weight);
        assert_eq!(lesson.scales, other.scales);
    }
    // At τ = 6 only feature 856 (max |x| = 24.69; the next is 5.95) is split: one whole column
    // of 429 tokens, and the finer step for the rest raises the SQNR.
    assert_eq!(lesson.outliers.columns, 1);
    assert_eq!(lesson.outliers.count, 429);
    let before = lesson
        .outliers
        .without_split
        .expect("error without the split");
    assert!(lesson.metrics.sqnr_db > before.sqnr_db);
    // 8-bit codes + one 16-bit scale; the column costs 16 − 8 bits per value plus its index.
    let n = 429.0 * 1536.0;
    assert_eq!(
        lesson.outliers.bits_per_weight_without_split,
        8.0 + 16.0 / n
    );
    let f = 429.0 / n;
    assert_eq!(
        lesson.bits_per_weight,
        (1.0 - f) * (8.0 + 16.0 / n) + f * 16.0 + 32.0 / n
    );
}

#[test]
fn lesson_5_real_sentence_follows_the_split() {
    let mut lessons = LessonsState::default();
    lessons.open(LessonId::Outliers);
    let mut h = lessons_harness(
        "encoder.layer.0.attention.output.LayerNorm.weight",
        lessons.clone(),
    );
    let view = h.state_mut().view();
    let real = view.lesson.as_ref().expect("real part");
    assert_eq!(real.name, OUTLIER_ACTIVATION);
    assert!(shows(
        &h,
        &format!("On {OUTLIER_ACTIVATION}, 1 of its 1536 columns holds a value with |x| ≥ τ = 6")
    ));
    assert!(shows(&h, "and the error drops: SQNR"));
    assert!(!shows(&h, "no column is split off"));
    // τ above every |x| of the tensor: nothing is split and the sentence says so.
    lessons.outliers.tau = 1000.0;
    h.state_mut().apply(Command::SetLessons(Box::new(lessons)));
    h.run();
    let view = h.state_mut().view();
    let real = view.lesson.as_ref().expect("real part");
    let run = real.runs[0].1.value.as_deref().expect("ran inline");
    assert_eq!(run.outliers.columns, 0);
    // With nothing split the error is the one without the split (the two passes sum in a
    // different order: equal to NUMERICS.md's 1e-9 relative).
    let without = run.outliers.without_split.expect("error without the split");
    assert!((run.metrics.mse - without.mse).abs() <= 1e-9 * without.mse);
    assert!(shows(
        &h,
        "no value reaches |x| ≥ τ = 1000: no column is split off"
    ));
    assert!(!shows(&h, "the error drops"));
}

#[test]
fn snapshot_lesson_5_on_real_activations() {
    let mut app = QuantscopeApp::new_for_tests();
    assert!(app.select_by_name("encoder.layer.0.attention.output.LayerNorm.weight"));
    let mut lessons = LessonsState::default();
    lessons.open(LessonId::Outliers);
    app.apply(Command::SetLessons(Box::new(lessons)));
    app.apply(Command::ShowLessons(true));
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 1500.0))
        .wgpu()
        .build_ui_state(|ui, app: &mut QuantscopeApp| app.ui_root(ui), app);
    h.run();
    h.snapshot("lesson_05_outliers_real");
}
