//! The quantization settings as the app edits and persists them (serde), with hashable keys.
//! They are converted to the core's `QuantConfig` in one place, [`super::engine`].

use serde::{Deserialize, Serialize};

use crate::quant::{
    Calibration, Granularity, OutlierMode, OutlierThreshold, Preset, QuantConfig, Rounding, Scheme,
};

/// Symmetric or asymmetric (affine) quantization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum SchemeChoice {
    /// Zero point 0, range [-absmax, absmax].
    #[default]
    Symmetric,
    /// A zero point shifts the grid so [min, max] uses every code.
    Asymmetric,
}

/// Which elements share one scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum GranularityChoice {
    /// One scale for the whole tensor.
    #[default]
    Tensor,
    /// One scale per index of an axis.
    Channel,
    /// One scale per group of G consecutive elements along the last axis.
    Group,
}

/// How the clip range is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum CalibrationChoice {
    /// Finite min and max.
    #[default]
    MinMax,
    /// Percentile p of the values (|x| for symmetric).
    Percentile,
    /// TensorRT's KL-divergence threshold.
    Entropy,
    /// The range minimising the quantization MSE.
    Mse,
}

impl CalibrationChoice {
    /// All calibrators, in legend order.
    pub const ALL: [Self; 4] = [Self::MinMax, Self::Percentile, Self::Entropy, Self::Mse];

    /// Short label.
    pub fn label(self) -> &'static str {
        match self {
            Self::MinMax => "min-max",
            Self::Percentile => "percentile",
            Self::Entropy => "entropy (KL)",
            Self::Mse => "MSE",
        }
    }
}

/// The library convention bundle (NUMERICS.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum PresetChoice {
    /// ONNX Runtime / ONNX QuantizeLinear (default).
    #[default]
    OnnxRuntime,
    /// PyTorch quantize_per_* and observers.
    PyTorch,
    /// TensorRT.
    TensorRt,
    /// TensorFlow Lite.
    TfLite,
    /// The seed text's arithmetic.
    Textbook,
}

impl PresetChoice {
    /// All presets.
    pub const ALL: [Self; 5] = [
        Self::OnnxRuntime,
        Self::PyTorch,
        Self::TensorRt,
        Self::TfLite,
        Self::Textbook,
    ];

    /// Name as the CLI spells it.
    pub fn label(self) -> &'static str {
        match self {
            Self::OnnxRuntime => "onnxruntime",
            Self::PyTorch => "pytorch",
            Self::TensorRt => "tensorrt",
            Self::TfLite => "tflite",
            Self::Textbook => "textbook",
        }
    }
}

/// The tie rule, or the preset's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum RoundingChoice {
    /// Whatever the preset uses.
    #[default]
    Preset,
    /// Round half to even.
    HalfEven,
    /// Round half away from zero.
    HalfAway,
    /// Round half up, floor(v + 0.5).
    HalfUp,
}

impl RoundingChoice {
    /// All choices.
    pub const ALL: [Self; 4] = [Self::Preset, Self::HalfEven, Self::HalfAway, Self::HalfUp];

    /// Label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Preset => "preset's",
            Self::HalfEven => "half to even",
            Self::HalfAway => "half away from 0",
            Self::HalfUp => "half up",
        }
    }
}

/// The outlier split (NUMERICS.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum OutlierChoice {
    /// Quantize everything.
    #[default]
    None,
    /// Elements with |x| >= tau stay FP16.
    Elements,
    /// Input columns holding any |x| >= tau stay FP16.
    Columns,
}

/// Every quantization setting the user controls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuantSettings {
    /// Bits per code, 2..=8.
    pub bits: u8,
    /// Symmetric or asymmetric.
    pub scheme: SchemeChoice,
    /// Scale sharing.
    pub granularity: GranularityChoice,
    /// Axis for per-channel.
    pub axis: usize,
    /// Group size for per-group.
    pub group_size: usize,
    /// Clip-range calibrator.
    pub calibration: CalibrationChoice,
    /// p for the percentile calibrator, in percent.
    pub percentile: f64,
    /// Library convention.
    pub preset: PresetChoice,
    /// Tie rule override.
    pub rounding: RoundingChoice,
    /// Outlier split.
    pub outliers: OutlierChoice,
    /// Outlier threshold tau (absolute, or in standard deviations when `threshold_in_std`).
    pub outlier_threshold: f32,
    /// Whether tau is k * std rather than absolute.
    pub threshold_in_std: bool,
}

impl Default for QuantSettings {
    fn default() -> Self {
        Self {
            bits: 8,
            scheme: SchemeChoice::Symmetric,
            granularity: GranularityChoice::Tensor,
            axis: 0,
            group_size: 128,
            calibration: CalibrationChoice::MinMax,
            percentile: 99.99,
            preset: PresetChoice::OnnxRuntime,
            rounding: RoundingChoice::Preset,
            outliers: OutlierChoice::None,
            outlier_threshold: 6.0,
            threshold_in_std: true,
        }
    }
}

impl QuantSettings {
    /// Settings that reproduce `cfg` (a lesson's "try it on a real tensor"). A manual clip range
    /// and a symmetric-range override have no control here: they fall back to min-max and the
    /// preset's range.
    pub fn from_config(cfg: &QuantConfig) -> Self {
        let defaults = Self::default();
        let (granularity, axis, group_size) = match cfg.granularity {
            Granularity::PerTensor => (
                GranularityChoice::Tensor,
                defaults.axis,
                defaults.group_size,
            ),
            Granularity::PerChannel { axis } => {
                (GranularityChoice::Channel, axis, defaults.group_size)
            }
            Granularity::PerGroup { size } => (GranularityChoice::Group, defaults.axis, size),
        };
        let (calibration, percentile) = match cfg.calibration {
            Calibration::Percentile(p) => (CalibrationChoice::Percentile, p),
            Calibration::Entropy => (CalibrationChoice::Entropy, defaults.percentile),
            Calibration::Mse => (CalibrationChoice::Mse, defaults.percentile),
            Calibration::MinMax | Calibration::Manual { .. } => {
                (CalibrationChoice::MinMax, defaults.percentile)
            }
        };
        let (outlier_threshold, threshold_in_std) = match cfg.outlier_threshold {
            OutlierThreshold::Absolute(t) => (t, false),
            OutlierThreshold::StdMultiple(k) => (k, true),
        };
        Self {
            bits: cfg.bits,
            scheme: match cfg.scheme {
                Scheme::Symmetric => SchemeChoice::Symmetric,
                Scheme::Asymmetric => SchemeChoice::Asymmetric,
            },
            granularity,
            axis,
            group_size,
            calibration,
            percentile,
            preset: match cfg.preset {
                Preset::OnnxRuntime => PresetChoice::OnnxRuntime,
                Preset::PyTorch => PresetChoice::PyTorch,
                Preset::TensorRt => PresetChoice::TensorRt,
                Preset::TfLite => PresetChoice::TfLite,
                Preset::Textbook => PresetChoice::Textbook,
            },
            rounding: match cfg.rounding {
                None => RoundingChoice::Preset,
                Some(Rounding::HalfEven) => RoundingChoice::HalfEven,
                Some(Rounding::HalfAway) => RoundingChoice::HalfAway,
                Some(Rounding::HalfUp) => RoundingChoice::HalfUp,
            },
            outliers: match cfg.outliers {
                OutlierMode::None => OutlierChoice::None,
                OutlierMode::Elements => OutlierChoice::Elements,
                OutlierMode::Columns => OutlierChoice::Columns,
            },
            outlier_threshold,
            threshold_in_std,
        }
    }

    /// The core's configuration for these settings (the clip override is applied separately).
    pub fn to_config(&self) -> QuantConfig {
        QuantConfig {
            bits: self.bits,
            scheme: match self.scheme {
                SchemeChoice::Symmetric => Scheme::Symmetric,
                SchemeChoice::Asymmetric => Scheme::Asymmetric,
            },
            preset: match self.preset {
                PresetChoice::OnnxRuntime => Preset::OnnxRuntime,
                PresetChoice::PyTorch => Preset::PyTorch,
                PresetChoice::TensorRt => Preset::TensorRt,
                PresetChoice::TfLite => Preset::TfLite,
                PresetChoice::Textbook => Preset::Textbook,
            },
            rounding: match self.rounding {
                RoundingChoice::Preset => None,
                RoundingChoice::HalfEven => Some(Rounding::HalfEven),
                RoundingChoice::HalfAway => Some(Rounding::HalfAway),
                RoundingChoice::HalfUp => Some(Rounding::HalfUp),
            },
            symmetric_range: None,
            granularity: match self.granularity {
                GranularityChoice::Tensor => Granularity::PerTensor,
                GranularityChoice::Channel => Granularity::PerChannel { axis: self.axis },
                GranularityChoice::Group => Granularity::PerGroup {
                    size: self.group_size,
                },
            },
            calibration: self.calibration_config(self.calibration),
            outliers: match self.outliers {
                OutlierChoice::None => OutlierMode::None,
                OutlierChoice::Elements => OutlierMode::Elements,
                OutlierChoice::Columns => OutlierMode::Columns,
            },
            outlier_threshold: if self.threshold_in_std {
                OutlierThreshold::StdMultiple(self.outlier_threshold)
            } else {
                OutlierThreshold::Absolute(self.outlier_threshold)
            },
        }
    }

    /// The core's calibration for `choice` with this percentile.
    pub fn calibration_config(&self, choice: CalibrationChoice) -> Calibration {
        match choice {
            CalibrationChoice::MinMax => Calibration::MinMax,
            CalibrationChoice::Percentile => Calibration::Percentile(self.percentile),
            CalibrationChoice::Entropy => Calibration::Entropy,
            CalibrationChoice::Mse => Calibration::Mse,
        }
    }

    /// The preset's tie rule, or the override.
    pub fn rounding_in_force(&self) -> Rounding {
        self.to_config().convention().rounding
    }
}

/// [`QuantSettings`] with floats as bits, so it can key a cache, plus an optional manual clip
/// range (dragged in the histogram) that overrides the calibrator.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuantKeyPart {
    bits: u8,
    scheme: SchemeChoice,
    granularity: GranularityChoice,
    axis: usize,
    group_size: usize,
    calibration: CalibrationChoice,
    percentile_bits: u64,
    preset: PresetChoice,
    rounding: RoundingChoice,
    outliers: OutlierChoice,
    outlier_threshold_bits: u32,
    threshold_in_std: bool,
    clip_bits: Option<(u32, u32)>,
}

impl QuantKeyPart {
    /// The key for `s` with an optional manual clip range.
    pub fn new(s: &QuantSettings, clip: Option<(f32, f32)>) -> Self {
        Self {
            bits: s.bits,
            scheme: s.scheme,
            granularity: s.granularity,
            axis: s.axis,
            group_size: s.group_size,
            calibration: s.calibration,
            percentile_bits: s.percentile.to_bits(),
            preset: s.preset,
            rounding: s.rounding,
            outliers: s.outliers,
            outlier_threshold_bits: s.outlier_threshold.to_bits(),
            threshold_in_std: s.threshold_in_std,
            clip_bits: clip.map(|(a, b)| (a.to_bits(), b.to_bits())),
        }
    }

    /// The settings back (exactly: floats round-trip through their bits).
    pub fn settings(&self) -> QuantSettings {
        QuantSettings {
            bits: self.bits,
            scheme: self.scheme,
            granularity: self.granularity,
            axis: self.axis,
            group_size: self.group_size,
            calibration: self.calibration,
            percentile: f64::from_bits(self.percentile_bits),
            preset: self.preset,
            rounding: self.rounding,
            outliers: self.outliers,
            outlier_threshold: f32::from_bits(self.outlier_threshold_bits),
            threshold_in_std: self.threshold_in_std,
        }
    }

    /// The manual clip range, if any.
    pub fn clip(&self) -> Option<(f32, f32)> {
        self.clip_bits
            .map(|(a, b)| (f32::from_bits(a), f32::from_bits(b)))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn settings_round_trip_through_the_core_config() {
        let mut s = QuantSettings {
            bits: 4,
            scheme: SchemeChoice::Asymmetric,
            granularity: GranularityChoice::Group,
            group_size: 64,
            calibration: CalibrationChoice::Percentile,
            percentile: 99.9,
            preset: PresetChoice::Textbook,
            rounding: RoundingChoice::HalfUp,
            outliers: OutlierChoice::Columns,
            outlier_threshold: 6.0,
            threshold_in_std: false,
            ..QuantSettings::default()
        };
        assert_eq!(QuantSettings::from_config(&s.to_config()), s);
        s = QuantSettings::default();
        assert_eq!(QuantSettings::from_config(&s.to_config()), s);
    }

    use super::*;

    #[test]
    fn key_round_trips_settings_and_distinguishes_floats_by_bits() {
        let s = QuantSettings {
            percentile: 99.9,
            ..QuantSettings::default()
        };
        let k = QuantKeyPart::new(&s, Some((-1.5, 2.0)));
        assert_eq!(k.settings(), s);
        assert_eq!(k.clip(), Some((-1.5, 2.0)));
        // 0.0 and -0.0 are different inputs and must be different keys.
        assert_ne!(
            QuantKeyPart::new(&s, Some((0.0, 1.0))),
            QuantKeyPart::new(&s, Some((-0.0, 1.0)))
        );
    }
}
