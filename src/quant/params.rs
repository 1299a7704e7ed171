//! Scale and zero point from a clip range, computed the way each reference library does
//! (NUMERICS.md §2).
//!
//! The range is first rounded to f32 (every reference holds ranges as float32) and extended to
//! include 0. Then, per preset:
//! - ONNX Runtime (`quant_utils.compute_scale_zp`): S = f32(f64(f32(rmax' - rmin')) /
//!   (qmax - qmin)); symmetric uses rmax' - rmin' = 2 * absmax. z = RNE(qmin - rmin'/S64) with
//!   the f64 scale (before its cast to f32); symmetric z = 0. S < f32::MIN_POSITIVE gives S = 1,
//!   z = 0.
//! - PyTorch (`MinMaxObserver._calculate_qparams`), all f32: symmetric S = absmax /
//!   ((qmax - qmin) / 2), asymmetric S = (max - min) / (qmax - qmin); S = max(S, 2^-23);
//!   z = qmin - RNE(min / S) (an f32 division), clamped.
//! - TensorRT: symmetric only, S = amax / qmax (f32 division, qmax = 2^(b-1) - 1); an empty
//!   range maps every value to code 0 (S reported as 1).
//! - TFLite and textbook: symmetric S = absmax / qmax (f32 division); asymmetric in f64,
//!   S = f32((rmax' - rmin') / (qmax - qmin)), z = qmin - rmin'/S64 nudged into [qmin, qmax] and
//!   rounded half away from zero. S < f32::MIN_POSITIVE gives S = 1, z = 0.
//!
//! A `rounding` override in the config replaces the preset's tie rule for z as well as for codes.

use serde::{Deserialize, Serialize};

use super::config::{DegenerateRule, Preset, QuantConfig, Rounding, Scheme, SymmetricScale};
use super::rounding::{round_f32, round_f64};

/// One (S, z) pair and the code range it quantizes into.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QuantParams {
    /// The scale S (real units per code step), as the reference stores it (f32).
    pub scale: f32,
    /// The integer zero point z (0 for symmetric schemes).
    pub zero_point: i32,
    /// Smallest code.
    pub qmin: i32,
    /// Largest code.
    pub qmax: i32,
    /// The range was empty (width 0 after extending to include 0, or a scale that underflows
    /// f32) and the preset's degenerate rule was applied.
    pub degenerate: bool,
}

impl QuantParams {
    /// The dequantized value of code `q`: S * (q - z), one f32 multiplication like the
    /// references (q - z is exact in f32 for every supported width).
    pub fn real_from_code(&self, q: i32) -> f32 {
        // Exact: |q - z| <= 2^16, well inside f32's 24-bit integer range.
        self.scale * (q - self.zero_point) as f32
    }
}

/// Replaces a non-finite bound by 0 (a group with no finite values has range [0, 0]).
fn finite_or_zero(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

/// Clamps a rounded f64 zero point into the code range and converts it.
fn clamp_zero_point(z: f64, qmin: i32, qmax: i32) -> i32 {
    // In range after the clamp, so the cast is exact; NaN (impossible here) would become qmin.
    z.clamp(f64::from(qmin), f64::from(qmax)) as i32
}

/// Computes (S, z) for the clip range [rmin, rmax] under `cfg` exactly as the preset's reference
/// library does (see the module documentation for each formula).
///
/// The range is sorted, non-finite bounds count as 0, and it is extended to include 0 (for
/// symmetric schemes absmax = max(|rmin|, |rmax|)).
pub fn params_from_range(rmin: f64, rmax: f64, cfg: &QuantConfig) -> QuantParams {
    let conv = cfg.convention();
    let (qmin, qmax) = cfg.code_range();
    let (a, b) = (finite_or_zero(rmin), finite_or_zero(rmax));
    // Every reference holds its range as float32; rounding to nearest here is that storage.
    let lo = (a.min(b) as f32).min(0.0);
    let hi = (a.max(b) as f32).max(0.0);
    let span = f64::from(qmax) - f64::from(qmin);
    let rounding = conv.rounding;
    let unit = QuantParams {
        scale: 1.0,
        zero_point: 0,
        qmin,
        qmax,
        degenerate: true,
    };

    let symmetric = cfg.scheme == Scheme::Symmetric;
    if symmetric {
        let absmax = (-lo).max(hi);
        // 2^(b-1) - 1 as f32: exact (at most 32767).
        let qmax_pos = ((1i32 << (u32::from(cfg.bits.clamp(2, 16)) - 1)) - 1) as f32;
        let scale = match (cfg.preset, conv.symmetric_scale) {
            // ORT: dr = rmax - rmin in f32 (= 2 * absmax), divided in f64, then cast.
            (Preset::OnnxRuntime, SymmetricScale::HalfSpan) => {
                ((absmax + absmax) as f64 / span) as f32
            }
            // PyTorch: absmax / ((qmax - qmin) / 2) in f32; the half span is exact in f32.
            (_, SymmetricScale::HalfSpan) => absmax / ((span / 2.0) as f32),
            (_, SymmetricScale::Qmax) => absmax / qmax_pos,
        };
        return finish_symmetric(scale, absmax, &conv.degenerate, conv.min_scale, unit);
    }

    match cfg.preset {
        Preset::OnnxRuntime => {
            // ORT (quant_utils.compute_scale_zp) widens both ends to f64 before subtracting.
            let s64 = (f64::from(hi) - f64::from(lo)) / span;
            if s64 < f64::from(f32::MIN_POSITIVE) {
                return unit;
            }
            let z = round_f64(f64::from(qmin) - f64::from(lo) / s64, rounding);
            QuantParams {
                scale: s64 as f32,
                zero_point: clamp_zero_point(z, qmin, qmax),
                qmin,
                qmax,
                degenerate: false,
            }
        }
        Preset::PyTorch => {
            let raw = (hi - lo) / (span as f32);
            let scale = raw.max(conv.min_scale.unwrap_or(0.0));
            let z = f64::from(qmin) - f64::from(round_f32(lo / scale, rounding));
            QuantParams {
                scale,
                zero_point: clamp_zero_point(z, qmin, qmax),
                qmin,
                qmax,
                degenerate: hi == lo,
            }
        }
        // TensorRT has no asymmetric mode (validate rejects it); the f64 path below is a
        // well-defined fallback for direct callers.
        Preset::TfLite | Preset::Textbook | Preset::TensorRt => {
            let s64 = (f64::from(hi) - f64::from(lo)) / span;
            if s64 < f64::from(f32::MIN_POSITIVE) {
                return unit;
            }
            let from_min = f64::from(qmin) - f64::from(lo) / s64;
            let z = if from_min < f64::from(qmin) {
                f64::from(qmin)
            } else if from_min > f64::from(qmax) {
                f64::from(qmax)
            } else {
                round_f64(from_min, rounding)
            };
            QuantParams {
                scale: s64 as f32,
                zero_point: clamp_zero_point(z, qmin, qmax),
                qmin,
                qmax,
                degenerate: false,
            }
        }
    }
}

/// Applies the floor and the degenerate rule to a symmetric scale (z = 0 always).
fn finish_symmetric(
    scale: f32,
    absmax: f32,
    rule: &DegenerateRule,
    min_scale: Option<f32>,
    unit: QuantParams,
) -> QuantParams {
    match rule {
        DegenerateRule::EpsilonScale => QuantParams {
            scale: scale.max(min_scale.unwrap_or(f32::EPSILON)),
            degenerate: absmax == 0.0,
            ..unit
        },
        DegenerateRule::UnitScale | DegenerateRule::ZeroCodes => {
            if absmax == 0.0 || scale < f32::MIN_POSITIVE {
                unit
            } else {
                QuantParams {
                    scale,
                    degenerate: false,
                    ..unit
                }
            }
        }
    }
}

/// The tie rule in force for `cfg` (its override, else the preset's).
pub fn rounding_of(cfg: &QuantConfig) -> Rounding {
    cfg.convention().rounding
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::config::SymmetricRange;

    fn cfg(preset: Preset, scheme: Scheme) -> QuantConfig {
        QuantConfig {
            preset,
            scheme,
            ..QuantConfig::default()
        }
    }

    #[test]
    fn symmetric_int8_scales_per_preset() {
        // absmax 3.5: narrow S = 3.5/127 = 0.027559055; PyTorch S = 3.5/127.5 = 0.02745098.
        for preset in Preset::ALL {
            let p = params_from_range(-2.5, 3.5, &cfg(preset, Scheme::Symmetric));
            assert_eq!(p.zero_point, 0);
            if preset == Preset::PyTorch {
                assert_eq!(p.scale, 3.5f32 / 127.5f32);
                assert!((p.scale - 0.027_450_98).abs() < 1e-9);
                assert_eq!((p.qmin, p.qmax), (-128, 127));
            } else {
                assert_eq!(p.scale, 3.5f32 / 127.0f32, "{preset:?}");
                assert!((p.scale - 0.027_559_055).abs() < 1e-9);
                assert_eq!((p.qmin, p.qmax), (-127, 127));
            }
            assert!(!p.degenerate);
        }
    }

    #[test]
    fn asymmetric_uint8_scale_and_zero_point() {
        // S = 6/255 = 0.023529412; z = round(2.5 / S) = round(106.25) = 106 under every rule.
        for preset in [
            Preset::OnnxRuntime,
            Preset::PyTorch,
            Preset::TfLite,
            Preset::Textbook,
        ] {
            let p = params_from_range(-2.5, 3.5, &cfg(preset, Scheme::Asymmetric));
            assert_eq!(p.scale, 6.0f32 / 255.0f32, "{preset:?}");
            assert_eq!(p.zero_point, 106, "{preset:?}");
            assert_eq!((p.qmin, p.qmax), (0, 255));
        }
    }

    #[test]
    fn seed_minmax_example() {
        // Seed: x = [-0.2, 0.1, 0.3, 0.5], scale = (0.5 - (-0.2)) / 255 = 0.7/255 ≈ 0.00275.
        let p = params_from_range(-0.2, 0.5, &cfg(Preset::Textbook, Scheme::Asymmetric));
        assert!((f64::from(p.scale) - 0.7 / 255.0).abs() < 1e-9);
        // z = round(0.2 / (0.7/255)) = round(72.857) = 73.
        assert_eq!(p.zero_point, 73);
        // Seed percentile example: [-0.2, 0.3] → scale = 0.5/255 ≈ 0.00196.
        let p = params_from_range(-0.2, 0.3, &cfg(Preset::Textbook, Scheme::Asymmetric));
        assert!((f64::from(p.scale) - 0.5 / 255.0).abs() < 1e-9);
        assert_eq!(p.zero_point, 102); // round(0.2 * 255 / 0.5) = round(102.0) = 102
    }

    #[test]
    fn degenerate_ranges_per_preset() {
        for scheme in [Scheme::Symmetric, Scheme::Asymmetric] {
            for preset in Preset::ALL {
                if preset == Preset::TensorRt && scheme == Scheme::Asymmetric {
                    continue;
                }
                let p = params_from_range(0.0, 0.0, &cfg(preset, scheme));
                assert!(p.degenerate, "{preset:?} {scheme:?}");
                assert_eq!(p.zero_point, 0, "{preset:?} {scheme:?}");
                let want = if preset == Preset::PyTorch {
                    f32::EPSILON
                } else {
                    1.0
                };
                assert_eq!(p.scale, want, "{preset:?} {scheme:?}");
            }
        }
        // f32::EPSILON is 2^-23, PyTorch's floor.
        assert_eq!(f32::EPSILON, 2f32.powi(-23));
        // Non-finite bounds count as 0 (an all-NaN group).
        let p = params_from_range(f64::NAN, f64::NAN, &QuantConfig::default());
        assert!(p.degenerate);
    }

    #[test]
    fn pytorch_scale_floor_applies_to_tiny_ranges() {
        let p = params_from_range(0.0, 1e-9, &cfg(Preset::PyTorch, Scheme::Symmetric));
        assert_eq!(p.scale, f32::EPSILON);
        assert!(!p.degenerate);
        let p = params_from_range(0.0, 1e-9, &cfg(Preset::OnnxRuntime, Scheme::Symmetric));
        assert_eq!(p.scale, 1e-9f32 / 127.0);
    }

    #[test]
    fn range_is_extended_to_include_zero() {
        // Constant c = 2 > 0: range [0, 2]; asymmetric S = 2/255, z = 0.
        let p = params_from_range(2.0, 2.0, &cfg(Preset::OnnxRuntime, Scheme::Asymmetric));
        assert_eq!(p.scale, 2.0f32 / 255.0);
        assert_eq!(p.zero_point, 0);
        // Negative-only [-3, -1]: range [-3, 0], z = qmax.
        let p = params_from_range(-3.0, -1.0, &cfg(Preset::OnnxRuntime, Scheme::Asymmetric));
        assert_eq!(p.zero_point, 255);
        // Swapped bounds are sorted.
        let q = params_from_range(-1.0, -3.0, &cfg(Preset::OnnxRuntime, Scheme::Asymmetric));
        assert_eq!(p, q);
    }

    #[test]
    fn onnxruntime_int4_symmetric_scale_is_two_absmax_over_15() {
        // ORT: int4 symmetric is -8..7 and S = (rmax - rmin) / 15 = 7 / 15 for absmax 3.5
        // (dr in f32, divided in f64), not the narrow 3.5 / 7 = 0.5.
        let mut c = cfg(Preset::OnnxRuntime, Scheme::Symmetric);
        c.bits = 4;
        let p = params_from_range(-2.5, 3.5, &c);
        assert_eq!(p.scale, (7.0f64 / 15.0) as f32);
        assert_eq!(p.scale.to_bits(), 0x3EEE_EEEF);
        assert_eq!((p.qmin, p.qmax, p.zero_point), (-8, 7, 0));
        // TFLite keeps the narrow range and absmax / 7 at 4 bits.
        c.preset = Preset::TfLite;
        let p = params_from_range(-2.5, 3.5, &c);
        assert_eq!((p.scale, p.qmin, p.qmax), (0.5, -7, 7));
    }

    #[test]
    fn full_range_override_changes_symmetric_scale_formula() {
        let mut c = cfg(Preset::OnnxRuntime, Scheme::Symmetric);
        c.symmetric_range = Some(SymmetricRange::Full);
        // ORT's literal formula: (rmax - rmin) / (qmax - qmin) = 7 / 255.
        assert_eq!(
            params_from_range(-3.5, 3.5, &c).scale,
            (7.0f64 / 255.0) as f32
        );
        c.preset = Preset::TfLite;
        assert_eq!(params_from_range(-3.5, 3.5, &c).scale, 3.5f32 / 127.0);
        let p = params_from_range(-3.5, 3.5, &c);
        assert_eq!((p.qmin, p.qmax), (-128, 127));
    }

    #[test]
    fn rounding_override_changes_zero_point_ties() {
        // rmin = -1.5 * S with S = 4/255 → qmin - rmin/S: choose rmin = -0.5*4/255*... use
        // [-x, y] with x/S = 42.5: x = 42.5 * 1/255 * 6 when span is 6 → x = 1.0, range [-1, 5].
        let mut c = cfg(Preset::OnnxRuntime, Scheme::Asymmetric);
        let p = params_from_range(-1.0, 5.0, &c);
        assert_eq!(p.zero_point, 42); // RNE(42.5) = 42
        c.rounding = Some(Rounding::HalfAway);
        assert_eq!(params_from_range(-1.0, 5.0, &c).zero_point, 43);
        c.preset = Preset::TfLite;
        c.rounding = None;
        assert_eq!(params_from_range(-1.0, 5.0, &c).zero_point, 43);
        assert_eq!(rounding_of(&c), Rounding::HalfAway);
    }
}
