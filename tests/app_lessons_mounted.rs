//! The lessons inside the whole app: the menu toggle opens them, "Try it on a real tensor"
//! carries the lesson's settings back to the main views, and the selected tensor feeds them.
#![cfg(feature = "gui")]

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use quantscope::app::QuantscopeApp;
use quantscope::app::lessons::LessonId;
use quantscope::app::qsettings::{CalibrationChoice, QuantSettings, SchemeChoice};

fn app_harness() -> Harness<'static, QuantscopeApp> {
    let mut app = QuantscopeApp::new_for_tests();
    assert!(
        app.select_by_name("final_norm.weight"),
        "demo has final_norm.weight"
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
    assert!(h.state().show_lessons);
    h.state_mut().lessons.open(LessonId::Asymmetric);
    h.run();
    // The selected tensor feeds the lessons' real-tensor parts.
    assert_eq!(h.state_mut().lessons.real_data().name, "final_norm.weight");
    h.get_by_label("Try it on a real tensor").click();
    h.run();
    let app = h.state();
    assert!(!app.show_lessons, "the main views are back");
    // Lesson 10 is asymmetric min-max: the main views now use exactly those settings.
    assert_eq!(app.settings.quant.scheme, SchemeChoice::Asymmetric);
    assert_eq!(app.settings.quant.calibration, CalibrationChoice::MinMax);
    let lesson_cfg = h.state().lessons.asymmetric.config();
    assert_eq!(
        h.state().settings.quant,
        QuantSettings::from_config(&lesson_cfg)
    );
}
