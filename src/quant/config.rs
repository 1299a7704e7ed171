//! Quantization settings: scheme, preset, tie rule, granularity, calibration, outliers, and
//! their validation against a tensor shape (NUMERICS.md §2–§5).
//!
//! Every type here is plain data with serde support so the CLI can print the settings in force
//! and the app can persist them. The float-carrying settings compare and hash by bit pattern so
//! a whole [`QuantConfig`] can be used as (part of) a cache key.

use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

use super::QuantError;
use super::formats::QuantFormat;

/// How a real value exactly halfway between two integers is rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rounding {
    /// Round half to even (RNE): 42.5 → 42, 43.5 → 44. PyTorch, ONNX Runtime, TensorRT.
    HalfEven,
    /// Round half away from zero (RHAZ): 42.5 → 43, -42.5 → -43. TFLite, the seed's arithmetic.
    HalfAway,
    /// Round half up (RHU), i.e. floor(v + 0.5) evaluated exactly: 42.5 → 43, -42.5 → -42.
    HalfUp,
}

impl Rounding {
    /// Short lowercase name used in reports ("half-even", ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::HalfEven => "half-even",
            Self::HalfAway => "half-away",
            Self::HalfUp => "half-up",
        }
    }
}

/// Symmetric (z = 0, signed codes) or asymmetric (zero point, unsigned codes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// Signed codes centred on 0; S from max |x|; z = 0.
    #[default]
    Symmetric,
    /// Unsigned codes [0, 2^b - 1]; S from the range extended to include 0; integer z.
    Asymmetric,
}

/// The signed code range used by symmetric schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SymmetricRange {
    /// [-(2^(b-1) - 1), 2^(b-1) - 1]: int8 -127..127 (balanced around 0).
    Narrow,
    /// [-2^(b-1), 2^(b-1) - 1]: int8 -128..127 (PyTorch's qint8).
    Full,
}

/// One library's whole convention, chosen by one setting (NUMERICS.md §2, "Presets").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Preset {
    /// ONNX Runtime's quantization tool and ONNX QuantizeLinear (the default).
    #[default]
    #[serde(rename = "onnxruntime")]
    OnnxRuntime,
    /// torch.quantize_per_*, fake_quantize_* and the MinMax observers.
    #[serde(rename = "pytorch")]
    PyTorch,
    /// TensorRT explicit quantization (symmetric only).
    #[serde(rename = "tensorrt")]
    TensorRt,
    /// TensorFlow Lite's converter and reference kernels.
    #[serde(rename = "tflite")]
    TfLite,
    /// The seed text's hand arithmetic (round half away from zero).
    #[serde(rename = "textbook")]
    Textbook,
}

impl Preset {
    /// Every preset, in display order.
    pub const ALL: [Preset; 5] = [
        Preset::OnnxRuntime,
        Preset::PyTorch,
        Preset::TensorRt,
        Preset::TfLite,
        Preset::Textbook,
    ];

    /// The name used on the command line and in JSON ("onnxruntime", "pytorch", ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::OnnxRuntime => "onnxruntime",
            Self::PyTorch => "pytorch",
            Self::TensorRt => "tensorrt",
            Self::TfLite => "tflite",
            Self::Textbook => "textbook",
        }
    }

    /// The convention this preset bundles (the table in NUMERICS.md §2) at every width but
    /// ONNX Runtime's int4 (see [`Preset::convention_at`]).
    pub fn convention(self) -> Convention {
        match self {
            Self::OnnxRuntime => Convention {
                rounding: Rounding::HalfEven,
                reciprocal: false,
                round_before_zero_point: true,
                symmetric_range: SymmetricRange::Narrow,
                symmetric_scale: SymmetricScale::HalfSpan,
                min_scale: None,
                degenerate: DegenerateRule::UnitScale,
                symmetric_only: false,
            },
            Self::PyTorch => Convention {
                rounding: Rounding::HalfEven,
                reciprocal: true,
                round_before_zero_point: true,
                symmetric_range: SymmetricRange::Full,
                symmetric_scale: SymmetricScale::HalfSpan,
                min_scale: Some(f32::EPSILON),
                degenerate: DegenerateRule::EpsilonScale,
                symmetric_only: false,
            },
            Self::TensorRt => Convention {
                rounding: Rounding::HalfEven,
                reciprocal: false,
                round_before_zero_point: true,
                symmetric_range: SymmetricRange::Narrow,
                symmetric_scale: SymmetricScale::Qmax,
                min_scale: None,
                degenerate: DegenerateRule::ZeroCodes,
                symmetric_only: true,
            },
            Self::TfLite | Self::Textbook => Convention {
                rounding: Rounding::HalfAway,
                reciprocal: false,
                round_before_zero_point: true,
                symmetric_range: SymmetricRange::Narrow,
                symmetric_scale: SymmetricScale::Qmax,
                min_scale: None,
                degenerate: DegenerateRule::UnitScale,
                symmetric_only: false,
            },
        }
    }
}

impl Preset {
    /// The convention at `bits` bits. ONNX Runtime's quantizer (`get_qmin_qmax_for_qType`)
    /// gives symmetric int8 the narrow -127..127 but int4 the full -8..7, so its int4 scale is
    /// S = 2·absmax/15 (NUMERICS.md §2); every other preset and width is [`Preset::convention`].
    pub fn convention_at(self, bits: u8) -> Convention {
        let mut c = self.convention();
        if self == Self::OnnxRuntime && bits == 4 {
            c.symmetric_range = SymmetricRange::Full;
        }
        c
    }
}

/// How a symmetric scale is derived from absmax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SymmetricScale {
    /// S = 2 * absmax / (qmax - qmin): absmax/127 for narrow int8, absmax/127.5 for full int8
    /// (ONNX Runtime's and PyTorch's literal formulas).
    HalfSpan,
    /// S = absmax / qmax with qmax = 2^(b-1) - 1 whatever the range (TensorRT, TFLite, textbook).
    Qmax,
}

/// What happens when the calibrated range is empty (max = min = 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DegenerateRule {
    /// S = 1, z = 0 (ONNX Runtime, TFLite, textbook).
    UnitScale,
    /// S = 2^-23 (f32 epsilon, PyTorch's observer floor), z = 0.
    EpsilonScale,
    /// Every value gets code 0 (TensorRT); S is reported as 1.
    ZeroCodes,
}

/// The separate settings a preset bundles, after any overrides from [`QuantConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Convention {
    /// Tie rule for both x/S and the zero point.
    pub rounding: Rounding,
    /// True: v = x * f32(1/S) (PyTorch); false: v = x / S, one f32 division.
    pub reciprocal: bool,
    /// Round x/S before adding the integer z. True for every preset (the kernel always does).
    pub round_before_zero_point: bool,
    /// The signed code range of symmetric schemes.
    pub symmetric_range: SymmetricRange,
    /// How a symmetric scale follows from absmax.
    pub symmetric_scale: SymmetricScale,
    /// Lower bound applied to every scale (PyTorch: 2^-23), if any.
    pub min_scale: Option<f32>,
    /// The rule for an empty range.
    pub degenerate: DegenerateRule,
    /// The preset has no asymmetric mode (TensorRT).
    pub symmetric_only: bool,
}

/// Which elements share one (S, z) pair (NUMERICS.md §3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Granularity {
    /// One (S, z) for the whole tensor; scale shape [].
    #[default]
    PerTensor,
    /// One (S, z) per index of `axis`, computed over all other axes; scale shape `[dim_axis]`.
    PerChannel {
        /// The channel axis (0 = output channel of a PyTorch Linear/Conv weight).
        axis: usize,
    },
    /// One (S, z) per `size` consecutive elements along the last axis; scale shape
    /// [leading dims..., ceil(cols / size)]; a short tail group is allowed.
    PerGroup {
        /// Elements per group (128 by default; 32 and 64 are common).
        size: usize,
    },
}

impl Granularity {
    /// Per-channel along axis 0, the usual choice for weights.
    pub const DEFAULT_CHANNEL: Granularity = Granularity::PerChannel { axis: 0 };
    /// Per-group with the common default group size 128.
    pub const DEFAULT_GROUP: Granularity = Granularity::PerGroup { size: 128 };
}

/// How the clip range is chosen (NUMERICS.md §4).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Calibration {
    /// The finite min and max.
    #[default]
    MinMax,
    /// Exact percentiles (numpy linear): [P(100 - p), P(p)], or P(p) of |x| when symmetric.
    Percentile(f64),
    /// TensorRT's KL-divergence threshold on a 2048-bin histogram of |x|.
    Entropy,
    /// The clip range minimising this tensor's actual quantization MSE.
    Mse,
    /// A range chosen by hand (dragged in the app's histogram), applied to every group.
    Manual {
        /// Lower clip bound.
        lo: f32,
        /// Upper clip bound.
        hi: f32,
    },
}

impl Calibration {
    /// The default percentile, 99.99.
    pub const DEFAULT_PERCENTILE: f64 = 99.99;

    /// Short name used in reports ("minmax", "percentile", "entropy", "mse").
    pub fn name(self) -> &'static str {
        match self {
            Self::MinMax => "minmax",
            Self::Percentile(_) => "percentile",
            Self::Entropy => "entropy",
            Self::Mse => "mse",
            Self::Manual { .. } => "manual",
        }
    }
}

// Floats compare and hash by bit pattern so the settings can be a cache key (a changed
// percentile must be a cache miss; 0.0 and -0.0 are simply different keys).
impl PartialEq for Calibration {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Percentile(a), Self::Percentile(b)) => a.to_bits() == b.to_bits(),
            (Self::Manual { lo: a, hi: b }, Self::Manual { lo: c, hi: d }) => {
                a.to_bits() == c.to_bits() && b.to_bits() == d.to_bits()
            }
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl Eq for Calibration {}

impl Hash for Calibration {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Self::Percentile(p) => p.to_bits().hash(state),
            Self::Manual { lo, hi } => (lo.to_bits(), hi.to_bits()).hash(state),
            Self::MinMax | Self::Entropy | Self::Mse => {}
        }
    }
}

/// Whether and how outliers are kept in FP16 (NUMERICS.md §5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutlierMode {
    /// Everything is quantized.
    #[default]
    None,
    /// Elements with |x| >= tau stay FP16; the rest use a range computed without them.
    Elements,
    /// Every last-axis column holding any |x| >= tau stays FP16 (LLM.int8()).
    Columns,
}

/// The outlier threshold tau.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutlierThreshold {
    /// tau itself (LLM.int8() uses 6.0 on activations).
    Absolute(f32),
    /// tau = k * std of the finite values of the whole tensor.
    StdMultiple(f32),
}

impl Default for OutlierThreshold {
    fn default() -> Self {
        Self::Absolute(6.0)
    }
}

impl PartialEq for OutlierThreshold {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Absolute(a), Self::Absolute(b))
            | (Self::StdMultiple(a), Self::StdMultiple(b)) => a.to_bits() == b.to_bits(),
            _ => false,
        }
    }
}

impl Eq for OutlierThreshold {}

impl Hash for OutlierThreshold {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Self::Absolute(v) | Self::StdMultiple(v) => v.to_bits().hash(state),
        }
    }
}

/// Every setting of one quantization run. `Eq + Hash` (floats by bits) so it can key a cache.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QuantConfig {
    /// Code width: 2..=8 or 16.
    pub bits: u8,
    /// Symmetric or asymmetric.
    pub scheme: Scheme,
    /// The library convention (tie rule, divide vs reciprocal, symmetric range, degenerate rule).
    pub preset: Preset,
    /// Overrides the preset's tie rule when set.
    pub rounding: Option<Rounding>,
    /// Overrides the preset's symmetric code range when set.
    pub symmetric_range: Option<SymmetricRange>,
    /// Which elements share one (S, z).
    pub granularity: Granularity,
    /// How the clip range is chosen.
    pub calibration: Calibration,
    /// Outlier split mode.
    pub outliers: OutlierMode,
    /// Outlier threshold (used when `outliers` is not `None`).
    pub outlier_threshold: OutlierThreshold,
    /// A deployed format (NUMERICS.md §8) instead of the affine integer scheme: when set, the
    /// format alone decides every bit and the fields above are not used (the CLI's `--format`;
    /// `None` is its `int`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<QuantFormat>,
}

impl Default for QuantConfig {
    fn default() -> Self {
        Self {
            bits: 8,
            scheme: Scheme::Symmetric,
            preset: Preset::OnnxRuntime,
            rounding: None,
            symmetric_range: None,
            granularity: Granularity::PerTensor,
            calibration: Calibration::MinMax,
            outliers: OutlierMode::None,
            outlier_threshold: OutlierThreshold::default(),
            format: None,
        }
    }
}

/// The integer code range [qmin, qmax] for `bits` bits.
///
/// Signed narrow: [-(2^(b-1) - 1), 2^(b-1) - 1]; signed full: [-2^(b-1), 2^(b-1) - 1];
/// unsigned: [0, 2^b - 1]. `bits` must be in 1..=16 (callers validate first).
pub fn code_range(bits: u8, signed: bool, range: SymmetricRange) -> (i32, i32) {
    let b = u32::from(bits.clamp(1, 16));
    if signed {
        let half = 1i32 << (b - 1);
        match range {
            SymmetricRange::Narrow => (-(half - 1), half - 1),
            SymmetricRange::Full => (-half, half - 1),
        }
    } else {
        (0, (1i32 << b) - 1)
    }
}

impl QuantConfig {
    /// The preset's convention at this config's bits, with this config's overrides applied.
    pub fn convention(&self) -> Convention {
        let mut c = self.preset.convention_at(self.bits);
        if let Some(r) = self.rounding {
            c.rounding = r;
        }
        if let Some(r) = self.symmetric_range {
            c.symmetric_range = r;
        }
        c
    }

    /// The code range [qmin, qmax] in force: unsigned for asymmetric, the convention's signed
    /// range for symmetric.
    pub fn code_range(&self) -> (i32, i32) {
        match self.scheme {
            Scheme::Asymmetric => code_range(self.bits, false, SymmetricRange::Narrow),
            Scheme::Symmetric => code_range(self.bits, true, self.convention().symmetric_range),
        }
    }

    /// Checks every setting against a tensor of `shape`; the error names the problem.
    pub fn validate(&self, shape: &[usize]) -> Result<(), QuantError> {
        if !matches!(self.bits, 2..=8 | 16) {
            return Err(QuantError::Bits(self.bits));
        }
        if self.preset.convention().symmetric_only && self.scheme == Scheme::Asymmetric {
            return Err(QuantError::SymmetricOnly(self.preset.name()));
        }
        match self.granularity {
            Granularity::PerTensor => {}
            Granularity::PerChannel { axis } => {
                if axis >= shape.len() {
                    return Err(QuantError::Axis {
                        axis,
                        ndim: shape.len(),
                    });
                }
            }
            Granularity::PerGroup { size } => {
                if size == 0 {
                    return Err(QuantError::GroupSize);
                }
            }
        }
        if let Calibration::Percentile(p) = self.calibration
            && (p.is_nan() || p <= 0.0 || p > 100.0)
        {
            return Err(QuantError::Percentile(p));
        }
        if let Calibration::Manual { lo, hi } = self.calibration
            && !(lo.is_finite() && hi.is_finite() && lo <= hi)
        {
            return Err(QuantError::ManualRange { lo, hi });
        }
        if self.outliers != OutlierMode::None {
            let t = match self.outlier_threshold {
                OutlierThreshold::Absolute(t) | OutlierThreshold::StdMultiple(t) => t,
            };
            if !(t.is_finite() && t > 0.0) {
                return Err(QuantError::OutlierThreshold(t));
            }
        }
        element_count(shape)?;
        Ok(())
    }
}

/// The number of elements of `shape` (1 for a 0-d scalar), or an error on overflow.
pub fn element_count(shape: &[usize]) -> Result<usize, QuantError> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or(QuantError::ShapeOverflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_ranges_match_numerics_section_2() {
        // int8: narrow -127..127, full -128..127, unsigned 0..255.
        assert_eq!(code_range(8, true, SymmetricRange::Narrow), (-127, 127));
        assert_eq!(code_range(8, true, SymmetricRange::Full), (-128, 127));
        assert_eq!(code_range(8, false, SymmetricRange::Narrow), (0, 255));
        // int4: narrow -7..7, full -8..7, unsigned 0..15; int2 narrow -1..1.
        assert_eq!(code_range(4, true, SymmetricRange::Narrow), (-7, 7));
        assert_eq!(code_range(4, true, SymmetricRange::Full), (-8, 7));
        assert_eq!(code_range(4, false, SymmetricRange::Full), (0, 15));
        assert_eq!(code_range(2, true, SymmetricRange::Narrow), (-1, 1));
        assert_eq!(code_range(16, true, SymmetricRange::Full), (-32768, 32767));
        assert_eq!(code_range(16, false, SymmetricRange::Full), (0, 65535));
    }

    #[test]
    fn presets_pick_their_code_ranges() {
        let mut cfg = QuantConfig::default();
        assert_eq!(cfg.code_range(), (-127, 127));
        cfg.preset = Preset::PyTorch;
        assert_eq!(cfg.code_range(), (-128, 127));
        cfg.symmetric_range = Some(SymmetricRange::Narrow);
        assert_eq!(cfg.code_range(), (-127, 127));
        cfg.scheme = Scheme::Asymmetric;
        assert_eq!(cfg.code_range(), (0, 255));
    }

    #[test]
    fn onnxruntime_int4_takes_the_full_range_as_ort_does() {
        // ORT's get_qmin_qmax_for_qType: int8 symmetric -127..127, int4 symmetric -8..7.
        let mut cfg = QuantConfig {
            bits: 4,
            ..QuantConfig::default()
        };
        assert_eq!(cfg.code_range(), (-8, 7));
        assert_eq!(cfg.convention().symmetric_range, SymmetricRange::Full);
        // Other widths keep the preset's narrow range; so do the other presets at 4 bits.
        for (bits, range) in [(2, (-1, 1)), (3, (-3, 3)), (5, (-15, 15)), (8, (-127, 127))] {
            cfg.bits = bits;
            assert_eq!(cfg.code_range(), range, "{bits} bits");
        }
        cfg.bits = 4;
        for preset in [Preset::TensorRt, Preset::TfLite, Preset::Textbook] {
            cfg.preset = preset;
            assert_eq!(cfg.code_range(), (-7, 7), "{preset:?}");
        }
        // An explicit range still overrides the preset.
        cfg.preset = Preset::OnnxRuntime;
        cfg.symmetric_range = Some(SymmetricRange::Narrow);
        assert_eq!(cfg.code_range(), (-7, 7));
        // Asymmetric int4 is unsigned whatever the preset.
        cfg.symmetric_range = None;
        cfg.scheme = Scheme::Asymmetric;
        assert_eq!(cfg.code_range(), (0, 15));
    }

    #[test]
    fn validate_names_each_problem() {
        let ok = QuantConfig::default();
        assert_eq!(ok.validate(&[2, 3]), Ok(()));
        assert_eq!(ok.validate(&[]), Ok(()));
        let bad_bits = QuantConfig {
            bits: 9,
            ..ok.clone()
        };
        assert_eq!(bad_bits.validate(&[2]), Err(QuantError::Bits(9)));
        assert_eq!(
            QuantConfig {
                bits: 1,
                ..ok.clone()
            }
            .validate(&[2]),
            Err(QuantError::Bits(1))
        );
        assert_eq!(
            QuantConfig {
                bits: 16,
                ..ok.clone()
            }
            .validate(&[2]),
            Ok(())
        );
        let axis = QuantConfig {
            granularity: Granularity::PerChannel { axis: 2 },
            ..ok.clone()
        };
        assert_eq!(
            axis.validate(&[2, 3]),
            Err(QuantError::Axis { axis: 2, ndim: 2 })
        );
        assert_eq!(axis.validate(&[2, 3, 4]), Ok(()));
        let group = QuantConfig {
            granularity: Granularity::PerGroup { size: 0 },
            ..ok.clone()
        };
        assert_eq!(group.validate(&[4]), Err(QuantError::GroupSize));
        for p in [0.0, -1.0, 100.5, f64::NAN] {
            let c = QuantConfig {
                calibration: Calibration::Percentile(p),
                ..ok.clone()
            };
            assert!(matches!(c.validate(&[4]), Err(QuantError::Percentile(_))));
        }
        let c = QuantConfig {
            calibration: Calibration::Percentile(100.0),
            ..ok.clone()
        };
        assert_eq!(c.validate(&[4]), Ok(()));
        let trt = QuantConfig {
            preset: Preset::TensorRt,
            scheme: Scheme::Asymmetric,
            ..ok.clone()
        };
        assert_eq!(
            trt.validate(&[4]),
            Err(QuantError::SymmetricOnly("tensorrt"))
        );
        let tau = QuantConfig {
            outliers: OutlierMode::Elements,
            outlier_threshold: OutlierThreshold::StdMultiple(-1.0),
            ..ok.clone()
        };
        assert!(matches!(
            tau.validate(&[4]),
            Err(QuantError::OutlierThreshold(_))
        ));
        assert_eq!(
            ok.validate(&[usize::MAX, 2]),
            Err(QuantError::ShapeOverflow)
        );
    }

    #[test]
    fn config_round_trips_through_json_and_hashes_floats_by_bits() {
        let cfg = QuantConfig {
            bits: 4,
            scheme: Scheme::Asymmetric,
            preset: Preset::TfLite,
            rounding: Some(Rounding::HalfUp),
            symmetric_range: Some(SymmetricRange::Full),
            granularity: Granularity::PerGroup { size: 32 },
            calibration: Calibration::Percentile(99.9),
            outliers: OutlierMode::Columns,
            outlier_threshold: OutlierThreshold::StdMultiple(3.0),
            format: None,
        };
        let json = serde_json::to_string(&cfg).expect("serialise");
        // Settings saved before formats existed (no "format" key) still load, as `int`.
        assert!(!json.contains("format"), "{json}");
        let with_format = QuantConfig {
            format: Some(crate::quant::formats::QuantFormat::Q4_K),
            ..cfg.clone()
        };
        let text = serde_json::to_string(&with_format).expect("serialise");
        assert!(text.contains("\"format\":\"q4_k\""), "{text}");
        assert_eq!(
            serde_json::from_str::<QuantConfig>(&text).ok(),
            Some(with_format)
        );
        assert!(json.contains("\"tflite\""), "{json}");
        assert!(json.contains("\"half-up\""), "{json}");
        let back: QuantConfig = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, cfg);
        let other = QuantConfig {
            calibration: Calibration::Percentile(99.99),
            ..cfg.clone()
        };
        assert_ne!(other, cfg);
        let mut set = std::collections::HashSet::new();
        set.insert(cfg.clone());
        assert!(set.contains(&back));
        assert!(!set.contains(&other));
    }
}
