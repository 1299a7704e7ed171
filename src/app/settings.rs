//! Settings that persist between runs (eframe storage): theme, recent files, the quantization
//! settings (the core's own [`QuantConfig`], as the CLI uses it), view options and the
//! lessons' inputs.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::lessons::LessonsState;
use crate::quant::{Calibration, Granularity, OutlierThreshold, QuantConfig};

/// The storage key under which [`Settings`] are saved.
pub const STORAGE_KEY: &str = "quantscope.settings.v2";

/// How many recent files the File menu remembers.
pub const MAX_RECENT: usize = 10;

/// The colour theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Theme {
    /// Light text on a dark background.
    #[default]
    Dark,
    /// Dark text on a light background.
    Light,
}

/// Options of the histogram view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistogramSettings {
    /// Number of equal-width bins over the finite range.
    pub bins: usize,
    /// Logarithmic count axis.
    pub log_y: bool,
    /// One bin per quantization code instead of equal-width bins.
    pub code_grid: bool,
    /// Draw the min-max, percentile, entropy and MSE thresholds.
    pub show_thresholds: bool,
}

impl Default for HistogramSettings {
    fn default() -> Self {
        Self {
            bins: 256,
            log_y: true,
            code_grid: false,
            show_thresholds: true,
        }
    }
}

/// Values of settings that only some choices use, remembered so that switching away and back
/// restores them (the percentile p, the group size, the channel axis).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Remembered {
    /// The last percentile p.
    pub percentile: f64,
    /// The last group size.
    pub group_size: usize,
    /// The last channel axis.
    pub axis: usize,
}

impl Default for Remembered {
    fn default() -> Self {
        Self {
            percentile: Calibration::DEFAULT_PERCENTILE,
            group_size: 128,
            axis: 0,
        }
    }
}

/// Everything the app remembers between runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Colour theme.
    pub theme: Theme,
    /// Most recent first; each entry is the list of files opened together.
    pub recent: Vec<Vec<PathBuf>>,
    /// Quantization settings.
    pub quant: QuantConfig,
    /// Inputs of settings not in force right now.
    pub remembered: Remembered,
    /// Histogram view options.
    pub histogram: HistogramSettings,
    /// The open lesson and every lesson's inputs.
    pub lessons: LessonsState,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            theme: Theme::default(),
            recent: Vec::new(),
            // Weights are the app's main subject: outliers by z-score (NUMERICS.md §5), 6 std.
            quant: QuantConfig {
                outlier_threshold: OutlierThreshold::StdMultiple(6.0),
                ..QuantConfig::default()
            },
            remembered: Remembered::default(),
            histogram: HistogramSettings::default(),
            lessons: LessonsState::default(),
        }
    }
}

impl Settings {
    /// Puts `paths` first in the recent list, without duplicates, keeping [`MAX_RECENT`].
    pub fn remember_recent(&mut self, paths: &[PathBuf]) {
        if paths.is_empty() {
            return;
        }
        self.recent.retain(|p| p.as_slice() != paths);
        self.recent.insert(0, paths.to_vec());
        self.recent.truncate(MAX_RECENT);
    }

    /// Remembers the inputs `q` carries (p, group size, axis) for when they are chosen again.
    pub fn remember(&mut self, q: &QuantConfig) {
        if let Calibration::Percentile(p) = q.calibration {
            self.remembered.percentile = p;
        }
        match q.granularity {
            Granularity::PerGroup { size } => self.remembered.group_size = size,
            Granularity::PerChannel { axis } => self.remembered.axis = axis,
            Granularity::PerTensor => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_files_move_to_front_without_duplicates() {
        let mut s = Settings::default();
        let a = vec![PathBuf::from("a.safetensors")];
        let b = vec![PathBuf::from("b.safetensors")];
        s.remember_recent(&a);
        s.remember_recent(&b);
        s.remember_recent(&a);
        assert_eq!(s.recent, vec![a, b]);
        for i in 0..20 {
            s.remember_recent(&[PathBuf::from(format!("{i}"))]);
        }
        assert_eq!(s.recent.len(), MAX_RECENT);
    }

    #[test]
    fn settings_round_trip_through_json_and_tolerate_missing_keys() {
        let s = Settings {
            theme: Theme::Light,
            histogram: HistogramSettings {
                bins: 77,
                ..HistogramSettings::default()
            },
            ..Settings::default()
        };
        let json = serde_json::to_string(&s).expect("serialize");
        let back: Settings = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, s);
        let partial: Settings = serde_json::from_str(r#"{"theme":"Light"}"#).expect("partial");
        assert_eq!(partial.theme, Theme::Light);
        assert_eq!(partial.histogram.bins, 256);
        assert_eq!(partial.quant, Settings::default().quant);
    }

    #[test]
    fn remembered_inputs_follow_the_settings() {
        let mut s = Settings::default();
        s.remember(&QuantConfig {
            calibration: Calibration::Percentile(99.9),
            granularity: Granularity::PerGroup { size: 32 },
            ..QuantConfig::default()
        });
        assert_eq!(s.remembered.percentile, 99.9);
        assert_eq!(s.remembered.group_size, 32);
        assert_eq!(s.remembered.axis, 0);
    }
}
