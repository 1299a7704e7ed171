//! The lessons inside the whole app: the menu toggle opens them, "Try it on a real tensor"
//! carries the lesson's settings back to the main views, and the selected tensor feeds them.
#![cfg(feature = "gui")]

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use quantscope::app::lessons::LessonId;
use quantscope::app::{Command, QuantscopeApp};
use quantscope::quant::{Calibration, Scheme};

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
    // The selected tensor feeds the lessons' real-tensor parts, all of it.
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
    assert!(app.select_by_name("embeddings.word_embeddings.weight"));
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
