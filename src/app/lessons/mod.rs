//! Lessons: the seed text's walk-through (../shared/seed/quantization-101.txt) as ten live,
//! interactive pages. Every number on a page is computed by the core library from the lesson's
//! own editable inputs; results are cached by their inputs so nothing is recomputed per frame.
//!
//! Mount: keep a [`LessonsState`] in the app state (it is serde, so the current lesson and the
//! learner's inputs persist), call [`LessonsState::ui`] where the lessons are shown, act on the
//! returned [`LessonAction`], and pass the selected tensor with
//! [`LessonsState::set_real_tensor`] (cheap to call every frame).

pub mod asymmetric;
pub mod compute;
pub mod data_types;
pub mod demo;
pub mod entropy;
pub mod minmax;
pub mod mixed_precision;
pub mod outliers;
pub mod percentile;
pub mod symmetric;
pub mod vector_wise;
pub mod what_is;
pub mod widgets;

use std::sync::Arc;

use egui::{RichText, Ui};
use serde::{Deserialize, Serialize};

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

/// The data the real-tensor parts of lessons 7 and 8 work on: the app's selected tensor or,
/// until one is given, a deterministic demo vector. Always a bounded sample.
#[derive(Debug, Clone)]
pub struct RealData {
    /// Where the values come from (tensor name or "demo …").
    pub name: String,
    /// Values in the full tensor.
    pub total_len: usize,
    /// At most [`demo::SAMPLE_MAX`] values, strided.
    pub sample: Arc<Vec<f32>>,
    /// Changes whenever the data changes: the cache key part for "which tensor".
    pub generation: u64,
    /// The tensor the sample was taken from (to notice repeated calls with the same data).
    source: Option<Arc<Vec<f32>>>,
}

impl RealData {
    /// The built-in demo vector.
    fn demo() -> Self {
        let v = demo::demo_vector();
        Self {
            name: format!(
                "demo: {} N(0, 1) values with 8 outliers (no tensor selected)",
                v.len()
            ),
            total_len: v.len(),
            sample: Arc::new(v),
            generation: 0,
            source: None,
        }
    }
}

/// The lessons panel: which lesson is open and every lesson's inputs (persisted), plus caches.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
    /// The real tensor (or demo) for lessons 7 and 8; created on first use.
    #[serde(skip)]
    real: Option<RealData>,
}

impl LessonsState {
    /// Gives lessons 7 and 8 the app's selected tensor. Cheap to call every frame: the same
    /// name and the same `Arc` are a no-op; otherwise a strided sample of at most
    /// [`demo::SAMPLE_MAX`] values is taken once.
    pub fn set_real_tensor(&mut self, name: String, values: Arc<Vec<f32>>) {
        if let Some(r) = &self.real
            && r.name == name
            && r.source.as_ref().is_some_and(|s| Arc::ptr_eq(s, &values))
        {
            return;
        }
        let generation = self.real.as_ref().map_or(1, |r| r.generation + 1);
        let sample = demo::strided_sample(&values);
        self.real = Some(RealData {
            name,
            total_len: values.len(),
            sample: Arc::new(sample),
            generation,
            source: Some(values),
        });
    }

    /// The data lessons 7 and 8 use (the demo vector until [`Self::set_real_tensor`]).
    pub fn real_data(&mut self) -> RealData {
        self.real.get_or_insert_with(RealData::demo).clone()
    }

    /// Opens lesson `id`.
    pub fn open(&mut self, id: LessonId) {
        self.current = id;
    }

    /// Draws the lesson list, the navigation and the current lesson. Returns an action when the
    /// learner presses "Try it on a real tensor".
    pub fn ui(&mut self, ui: &mut Ui) -> Option<LessonAction> {
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
                    action = self.lesson_ui(ui).map(LessonAction::TryOnRealTensor);
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
    fn lesson_ui(&mut self, ui: &mut Ui) -> Option<QuantConfig> {
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
            LessonId::Outliers => self.outliers.ui(ui),
            LessonId::MinMax => self.minmax.ui(ui),
            LessonId::Percentile => {
                let real = self.real_data();
                self.percentile.ui(ui, &real)
            }
            LessonId::Entropy => {
                let real = self.real_data();
                self.entropy.ui(ui, &real)
            }
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
    fn set_real_tensor_is_idempotent_for_the_same_arc() {
        let mut s = LessonsState::default();
        let v = Arc::new(vec![1.0f32, 2.0, 3.0]);
        s.set_real_tensor("t".into(), Arc::clone(&v));
        let g = s.real_data().generation;
        s.set_real_tensor("t".into(), Arc::clone(&v));
        assert_eq!(s.real_data().generation, g);
        s.set_real_tensor("t".into(), Arc::new(vec![4.0]));
        assert_eq!(s.real_data().generation, g + 1);
        assert_eq!(*s.real_data().sample, vec![4.0]);
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
