//! Lessons: the seed text's walk-through (../shared/seed/quantization-101.txt) as ten live,
//! interactive pages. Every number on a page is computed by the core library from the lesson's
//! own editable inputs; results are cached by their inputs so nothing is recomputed per frame.
//!
//! Mount: the [`LessonsState`] lives in the persisted settings (the current lesson and the
//! learner's inputs persist). The app draws [`LessonsState::ui`] on a copy, commits the copy
//! through a command when an input changed, acts on the returned [`LessonAction`], and passes the
//! real-tensor runs of [`LessonsState::real_configs`], computed by the derived layer's jobs on
//! the whole selected tensor (the same jobs and caches as the main views).

pub mod asymmetric;
pub mod compute;
pub mod data_types;
pub mod demo;
pub mod derivation;
pub mod entropy;
pub mod minmax;
pub mod mixed_precision;
pub mod outliers;
pub mod percentile;
pub mod symmetric;
pub mod vector_wise;
pub mod what_is;
pub mod widgets;

use egui::{RichText, Ui};
use serde::{Deserialize, Serialize};

use super::derived::LessonReal;
use crate::quant::QuantConfig;

/// What the learner asked the app to do from a lesson page.
#[derive(Debug, Clone, PartialEq)]
pub enum LessonAction {
    /// "Try it on a real tensor": open the main views with these settings. The float-format
    /// lessons (1 and 2) send the default settings.
    TryOnRealTensor(QuantConfig),
}

/// The ten lessons, in teaching order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum LessonId {
    /// 1. FP32 / FP16 / BF16: range versus precision.
    #[default]
    DataTypes,
    /// 2. Mixed-precision training: tiny gradients.
    MixedPrecision,
    /// 3. What quantization is: the toy data types.
    WhatIsQuantization,
    /// 4. One scale per group (vector-wise).
    VectorWise,
    /// 5. Outliers kept in high precision.
    Outliers,
    /// 6. Min-max calibration.
    MinMax,
    /// 7. Percentile calibration.
    Percentile,
    /// 8. KL-divergence (entropy) calibration.
    Entropy,
    /// 9. Symmetric quantization.
    Symmetric,
    /// 10. Asymmetric quantization and the zero point.
    Asymmetric,
}

impl LessonId {
    /// Every lesson in order.
    pub const ALL: [LessonId; 10] = [
        Self::DataTypes,
        Self::MixedPrecision,
        Self::WhatIsQuantization,
        Self::VectorWise,
        Self::Outliers,
        Self::MinMax,
        Self::Percentile,
        Self::Entropy,
        Self::Symmetric,
        Self::Asymmetric,
    ];

    /// The lesson's title as shown in the list.
    pub fn title(self) -> &'static str {
        match self {
            Self::DataTypes => "Data types: range vs precision",
            Self::MixedPrecision => "Mixed-precision training",
            Self::WhatIsQuantization => "What quantization is",
            Self::VectorWise => "One scale per group",
            Self::Outliers => "Outliers in high precision",
            Self::MinMax => "Calibration: min-max",
            Self::Percentile => "Calibration: percentile",
            Self::Entropy => "Calibration: KL divergence",
            Self::Symmetric => "Symmetric quantization",
            Self::Asymmetric => "Asymmetric and the zero point",
        }
    }

    /// 1-based position in the course.
    pub fn number(self) -> usize {
        Self::ALL
            .iter()
            .position(|&l| l == self)
            .map_or(1, |i| i + 1)
    }

    /// The lesson after this one, if any.
    pub fn next(self) -> Option<Self> {
        Self::ALL.get(self.number()).copied()
    }

    /// The lesson before this one, if any.
    pub fn previous(self) -> Option<Self> {
        self.number()
            .checked_sub(2)
            .and_then(|i| Self::ALL.get(i).copied())
    }
}

/// Bins of the real-tensor histograms of the lessons.
pub const REAL_PLOT_BINS: usize = 160;

/// The lessons panel: which lesson is open and every lesson's inputs (persisted), plus caches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LessonsState {
    /// The open lesson.
    pub current: LessonId,
    /// Lesson 1.
    pub data_types: data_types::DataTypesLesson,
    /// Lesson 2.
    pub mixed_precision: mixed_precision::MixedPrecisionLesson,
    /// Lesson 3.
    pub what_is: what_is::WhatIsLesson,
    /// Lesson 4.
    pub vector_wise: vector_wise::VectorWiseLesson,
    /// Lesson 5.
    pub outliers: outliers::OutliersLesson,
    /// Lesson 6.
    pub minmax: minmax::MinMaxLesson,
    /// Lesson 7.
    pub percentile: percentile::PercentileLesson,
    /// Lesson 8.
    pub entropy: entropy::EntropyLesson,
    /// Lesson 9.
    pub symmetric: symmetric::SymmetricLesson,
    /// Lesson 10.
    pub asymmetric: asymmetric::AsymmetricLesson,
    /// Whether lessons 5, 7 and 8 run on the tensor selected in the main views even when the open
    /// model holds the built-in captured activations (by default they run on those, so the
    /// calibration lessons start from real activations).
    pub on_selected_tensor: bool,
}

/// The captured activation lessons 7 and 8 run on when the open model holds it: the input of
/// layer 1's FFN, whose few outlier dimensions (max |x| ≈ 30 against a 99th percentile of |x|
/// ≈ 2.2) are what percentile and KL calibration are for.
pub const LESSON_ACTIVATION: &str = "activations.encoder.layer.1.intermediate.dense.input";

/// The captured activation lesson 5 splits when the open model holds it: the input of layer 0's
/// FFN down-projection (429 tokens × 1536 features), where one feature (dimension 856, max |x|
/// = 24.7) stands alone above LLM.int8()'s τ = 6 and the next largest is 5.95 — the clearest
/// outlier column of the bundled activations.
pub const OUTLIER_ACTIVATION: &str = "activations.encoder.layer.0.output.dense.input";

impl LessonsState {
    /// The runs on the selected tensor the open lesson shows (through the app's jobs): none
    /// for lessons without a real-tensor part.
    pub fn real_configs(&self) -> Vec<QuantConfig> {
        match self.current {
            LessonId::Outliers => self.outliers.real_configs(),
            LessonId::Percentile => self.percentile.real_configs(),
            LessonId::Entropy => self.entropy.real_configs(),
            _ => Vec::new(),
        }
    }

    /// The tensor the open lesson's real-tensor part prefers to the selected one, when the
    /// model holds it: a captured activation for lessons 5, 7 and 8 (unless the learner asked
    /// for the selected tensor).
    pub fn preferred_real_tensor(&self) -> Option<&'static str> {
        if self.on_selected_tensor {
            return None;
        }
        match self.current {
            LessonId::Outliers => Some(OUTLIER_ACTIVATION),
            LessonId::Percentile | LessonId::Entropy => Some(LESSON_ACTIVATION),
            _ => None,
        }
    }

    /// Opens lesson `id`.
    pub fn open(&mut self, id: LessonId) {
        self.current = id;
    }

    /// Draws the lesson list, the navigation and the current lesson. Returns an action when the
    /// learner presses "Try it on a real tensor".
    pub fn ui(&mut self, ui: &mut Ui, real: Option<&LessonReal>) -> Option<LessonAction> {
        egui::Panel::left("lessons_list")
            .resizable(false)
            .exact_size(210.0)
            .show(ui, |ui| {
                ui.add_space(6.0);
                ui.label(RichText::new("Lessons").heading());
                ui.add_space(4.0);
                for id in LessonId::ALL {
                    let text = format!("{}. {}", id.number(), id.title());
                    if ui.selectable_label(self.current == id, text).clicked() {
                        self.current = id;
                    }
                }
            });
        let mut action = None;
        egui::CentralPanel::default().show(ui, |ui| {
            self.nav_ui(ui);
            ui.separator();
            egui::ScrollArea::vertical()
                .id_salt(("lesson_scroll", self.current))
                .auto_shrink([false, false])
                .show(ui, |ui| {
                    ui.set_max_width(ui.available_width().min(980.0));
                    action = self.lesson_ui(ui, real).map(LessonAction::TryOnRealTensor);
                    ui.add_space(8.0);
                    ui.separator();
                    self.nav_ui(ui);
                    ui.add_space(16.0);
                });
        });
        action
    }

    /// Previous / title / next.
    fn nav_ui(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            let prev = self.current.previous();
            if ui
                .add_enabled(prev.is_some(), egui::Button::new("Previous lesson"))
                .clicked()
                && let Some(p) = prev
            {
                self.current = p;
            }
            ui.label(
                RichText::new(format!(
                    "Lesson {} of 10 · {}",
                    self.current.number(),
                    self.current.title()
                ))
                .strong(),
            );
            let next = self.current.next();
            if ui
                .add_enabled(next.is_some(), egui::Button::new("Next lesson"))
                .clicked()
                && let Some(n) = next
            {
                self.current = n;
            }
        });
    }

    /// The body of the current lesson.
    fn lesson_ui(&mut self, ui: &mut Ui, real: Option<&LessonReal>) -> Option<QuantConfig> {
        ui.label(
            RichText::new(format!(
                "{}. {}",
                self.current.number(),
                self.current.title()
            ))
            .heading()
            .size(24.0),
        );
        ui.add_space(4.0);
        match self.current {
            LessonId::DataTypes => self.data_types.ui(ui),
            LessonId::MixedPrecision => self.mixed_precision.ui(ui),
            LessonId::WhatIsQuantization => self.what_is.ui(ui),
            LessonId::VectorWise => self.vector_wise.ui(ui),
            LessonId::Outliers => self.outliers.ui(ui, real, &mut self.on_selected_tensor),
            LessonId::MinMax => self.minmax.ui(ui),
            LessonId::Percentile => self.percentile.ui(ui, real, &mut self.on_selected_tensor),
            LessonId::Entropy => self.entropy.ui(ui, real, &mut self.on_selected_tensor),
            LessonId::Symmetric => self.symmetric.ui(ui),
            LessonId::Asymmetric => self.asymmetric.ui(ui),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn navigation_walks_all_ten_in_order() {
        let mut id = LessonId::DataTypes;
        let mut seen = vec![id];
        while let Some(n) = id.next() {
            assert_eq!(n.previous(), Some(id));
            id = n;
            seen.push(id);
        }
        assert_eq!(seen, LessonId::ALL.to_vec());
        assert_eq!(LessonId::DataTypes.previous(), None);
        assert_eq!(LessonId::Asymmetric.number(), 10);
    }

    #[test]
    fn only_lessons_5_7_and_8_ask_for_real_tensor_runs() {
        let mut s = LessonsState::default();
        for id in LessonId::ALL {
            s.open(id);
            let n = s.real_configs().len();
            let want = match id {
                LessonId::Percentile | LessonId::Entropy => 2,
                LessonId::Outliers => 1,
                _ => 0,
            };
            assert_eq!(n, want, "{id:?}");
        }
        s.open(LessonId::Outliers);
        let cfg = &s.real_configs()[0];
        assert_eq!(cfg.outliers, crate::quant::OutlierMode::Columns);
        assert_eq!(
            cfg.outlier_threshold,
            crate::quant::OutlierThreshold::Absolute(6.0)
        );
        assert_eq!(s.preferred_real_tensor(), Some(OUTLIER_ACTIVATION));
        s.on_selected_tensor = true;
        assert_eq!(s.preferred_real_tensor(), None);
        s.on_selected_tensor = false;
        s.open(LessonId::Percentile);
        assert_eq!(
            s.real_configs()[1].calibration,
            crate::quant::Calibration::Percentile(s.percentile.p)
        );
    }

    #[test]
    fn state_round_trips_through_serde() {
        let s = LessonsState {
            current: LessonId::Entropy,
            ..Default::default()
        };
        let json = serde_json::to_string(&s).unwrap();
        let back: LessonsState = serde_json::from_str(&json).unwrap();
        assert_eq!(back.current, LessonId::Entropy);
        let partial: LessonsState = serde_json::from_str(r#"{"current":"Symmetric"}"#).unwrap();
        assert_eq!(partial.current, LessonId::Symmetric);
    }
}
