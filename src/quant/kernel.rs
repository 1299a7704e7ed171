//! The element kernel: tie rules, quantize/dequantize of one value, and the step-by-step
//! explanation the app shows for one number (NUMERICS.md §2).
//!
//! q = clamp(round(v) + z, qmin, qmax) with v = x / S (one f32 division) or v = x * f32(1/S)
//! (PyTorch), and x_hat = S * (q - z) in f32. A tie is decided only by the tie rule: v is
//! computed with the single f32 operation the reference uses, never re-derived.
//! NaN gets code z and dequantizes to NaN; +-Inf clamp to qmax/qmin.
//!
//! `KernelParams` is the per-group form the fused tensor pass uses: S, 1/S and z as f32 and
//! the code bounds relative to z, so the inner loop is branch-free and vectorisable on plain
//! SSE2 (rounding uses the 1.5 * 2^23 trick instead of a libm call).

use serde::{Deserialize, Serialize};

use super::config::{DegenerateRule, QuantConfig, Rounding};
use super::params::QuantParams;
use super::rounding::round_f64;

/// 1.5 * 2^23: adding and subtracting it rounds any |v| < 2^22 to an integer, ties to even.
const MAGIC: f32 = 12_582_912.0;

/// Round half to even for |v| < 2^22 without a libm call (baseline x86-64 has no roundps).
#[inline(always)]
fn rne_small(v: f32) -> f32 {
    (v + MAGIC) - MAGIC
}

/// Tie rule as a const generic parameter of the fused loops.
pub(crate) const RNE: u8 = 0;
/// Round half away from zero.
pub(crate) const RHAZ: u8 = 1;
/// Round half up.
pub(crate) const RHU: u8 = 2;

/// The const-generic code of a tie rule.
pub(crate) fn rule_code(rule: Rounding) -> u8 {
    match rule {
        Rounding::HalfEven => RNE,
        Rounding::HalfAway => RHAZ,
        Rounding::HalfUp => RHU,
    }
}

/// Rounds |v| < 2^22 with tie rule `R`, exactly (see [`round_f32`](super::rounding::round_f32)).
#[inline(always)]
pub(crate) fn round_small<const R: u8>(v: f32) -> f32 {
    let r = rne_small(v);
    if R == RNE {
        return r;
    }
    // v - r is exact here (both below 2^22); it is +-0.5 exactly on a tie.
    let d = v - r;
    if R == RHAZ {
        let up = (d == 0.5) & (v > 0.0);
        let down = (d == -0.5) & (v < 0.0);
        r + f32::from(u8::from(up)) - f32::from(u8::from(down))
    } else {
        r + f32::from(u8::from(d == 0.5))
    }
}

/// One group's parameters in the form the fused loop wants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct KernelParams {
    /// S.
    pub scale: f32,
    /// f32(1 / S), used when the convention multiplies.
    pub inv_scale: f32,
    /// z as f32 (exact).
    pub zero: f32,
    /// qmin - z: the smallest value of round(v).
    pub lo: f32,
    /// qmax - z: the largest value of round(v).
    pub hi: f32,
}

impl KernelParams {
    /// Prepares `p` for the fused loop under `cfg`'s degenerate rule.
    pub fn new(p: &QuantParams, cfg: &QuantConfig) -> Self {
        let zero_codes = p.degenerate && cfg.convention().degenerate == DegenerateRule::ZeroCodes;
        // Codes and z are at most 2^16 in magnitude: exact in f32.
        let (lo, hi) = if zero_codes {
            (0.0, 0.0)
        } else {
            (
                (p.qmin - p.zero_point) as f32,
                (p.qmax - p.zero_point) as f32,
            )
        };
        Self {
            scale: p.scale,
            inv_scale: 1.0 / p.scale,
            zero: p.zero_point as f32,
            lo,
            hi,
        }
    }
}

/// Quantizes one value: returns (round(v) clamped, relative to z; clamp was active).
///
/// The caller adds z for the code and multiplies by S for x_hat. NaN returns (0, false).
#[inline(always)]
pub(crate) fn code_offset<const R: u8, const RECIP: bool>(x: f32, k: &KernelParams) -> (f32, bool) {
    let v = if RECIP { x * k.inv_scale } else { x / k.scale };
    // Clamping to one step beyond the bounds first keeps |v| < 2^22 for the rounding trick and
    // does not change the result: an integer bound rounds to itself and is clamped anyway.
    let vc = v.max(k.lo - 1.0).min(k.hi + 1.0);
    let r = round_small::<R>(vc);
    let clipped = (r < k.lo) | (r > k.hi);
    let rq = r.max(k.lo).min(k.hi);
    if x.is_nan() {
        (0.0, false)
    } else {
        (rq, clipped)
    }
}

/// Quantizes one value under `cfg` with parameters `p` (the scalar reference of the fused pass).
pub fn quantize(x: f32, p: &QuantParams, cfg: &QuantConfig) -> i32 {
    let k = KernelParams::new(p, cfg);
    let conv = cfg.convention();
    let (off, _) = match (rule_code(conv.rounding), conv.reciprocal) {
        (RNE, false) => code_offset::<RNE, false>(x, &k),
        (RNE, true) => code_offset::<RNE, true>(x, &k),
        (RHAZ, false) => code_offset::<RHAZ, false>(x, &k),
        (RHAZ, true) => code_offset::<RHAZ, true>(x, &k),
        (_, false) => code_offset::<RHU, false>(x, &k),
        (_, true) => code_offset::<RHU, true>(x, &k),
    };
    // off is an integer in [qmin - z, qmax - z]: the sum is an exact code.
    (off + k.zero) as i32
}

/// Dequantizes one code: S * (q - z) in f32.
pub fn dequantize(q: i32, p: &QuantParams) -> f32 {
    p.real_from_code(q)
}

/// Every step of quantizing one value, for the app's "explain this number".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The input x.
    pub x: f32,
    /// v = x / S or x * f32(1/S), as the preset computes it.
    pub x_over_s: f32,
    /// Whether v sits exactly halfway between two integers (the tie rule decides).
    pub tie: bool,
    /// round(v) with the tie rule in force.
    pub rounded: f64,
    /// round(v) + z, before clamping.
    pub plus_z: f64,
    /// Whether clamping to [qmin, qmax] changed the code.
    pub clamped: bool,
    /// The final code.
    pub q: i32,
    /// S * (q - z).
    pub x_hat: f32,
    /// x_hat - x.
    pub error: f32,
    /// The grid point at or below x within the code range (S * (clamp(floor(v) + z) - z)).
    pub below: f32,
    /// The grid point at or above x within the code range.
    pub above: f32,
}

/// Explains how `x` becomes a code and back under `cfg` with parameters `p`.
///
/// Agrees with [`quantize`] and the fused tensor pass for every input; NaN gives q = z and
/// x_hat = NaN.
pub fn explain(x: f32, p: &QuantParams, cfg: &QuantConfig) -> Explanation {
    let conv = cfg.convention();
    let k = KernelParams::new(p, cfg);
    let v = if conv.reciprocal {
        x * k.inv_scale
    } else {
        x / p.scale
    };
    let vf = f64::from(v);
    let rounded = round_f64(vf, conv.rounding);
    let tie = vf.is_finite() && (vf - vf.floor()) == 0.5;
    let z = f64::from(k.zero);
    let plus_z = rounded + z;
    let (lo, hi) = (f64::from(k.lo) + z, f64::from(k.hi) + z);
    let q = quantize(x, p, cfg);
    let clamped = !x.is_nan() && (plus_z < lo || plus_z > hi);
    let x_hat = if x.is_nan() {
        f32::NAN
    } else {
        p.real_from_code(q)
    };
    let grid = |c: f64| -> f32 {
        // Clamped into the code range: an exact small integer.
        let code = if c.is_nan() { z } else { c.clamp(lo, hi) };
        p.scale * (code - z) as f32
    };
    Explanation {
        x,
        x_over_s: v,
        tie,
        rounded,
        plus_z,
        clamped,
        q,
        x_hat,
        error: x_hat - x,
        below: grid(vf.floor() + z),
        above: grid(vf.ceil() + z),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::config::{Preset, Scheme};
    use crate::quant::params::params_from_range;
    use crate::quant::rounding::round_f32;
    use proptest::prelude::*;

    const X: [f32; 5] = [-2.5, -1.0, 0.0, 1.0, 3.5];

    fn cfg(preset: Preset, scheme: Scheme) -> QuantConfig {
        QuantConfig {
            preset,
            scheme,
            ..QuantConfig::default()
        }
    }

    fn codes(c: &QuantConfig) -> (Vec<i32>, QuantParams) {
        let p = params_from_range(-2.5, 3.5, c);
        (X.iter().map(|&x| quantize(x, &p, c)).collect(), p)
    }

    #[test]
    fn symmetric_check_values_under_every_preset() {
        // NUMERICS §2: S = 3.5/127, q = [-91, -36, 0, 36, 127] (-2.5/S = -90.71, 1/S = 36.29).
        for preset in Preset::ALL {
            let (q, p) = codes(&cfg(preset, Scheme::Symmetric));
            assert_eq!(q, [-91, -36, 0, 36, 127], "{preset:?}");
            if preset == Preset::PyTorch {
                // S = 3.5/127.5: same codes, but 3.5 comes back as 127 * S = 3.486275.
                let back = dequantize(127, &p);
                assert_eq!(back, 127.0 * (3.5f32 / 127.5));
                assert!((back - 3.486_275).abs() < 1e-6, "{back}");
            } else {
                assert_eq!(dequantize(127, &p), 3.5, "{preset:?}");
            }
        }
    }

    #[test]
    fn asymmetric_ties_are_exact_in_f32() {
        // S = f32(6/255); both the single division (ORT, TFLite, textbook) and PyTorch's
        // multiplication by f32(1/S) give exactly +-42.5 for x = +-1: genuine ties, so only the
        // tie rule separates the presets.
        let s = 6.0f32 / 255.0;
        assert_eq!(-1.0f32 / s, -42.5);
        assert_eq!(1.0f32 / s, 42.5);
        let inv = 1.0f32 / s;
        assert_eq!(-inv, -42.5);
        assert_eq!(inv, 42.5);
        // -2.5/S = -106.25 (z = 106) and 3.5/S = 148.75.
        assert_eq!(-2.5f32 / s, -106.25);
    }

    #[test]
    fn asymmetric_check_values_per_tie_rule() {
        // RNE: -42.5 → -42, 42.5 → 42: q = [0, 64, 106, 148, 255].
        for preset in [Preset::OnnxRuntime, Preset::PyTorch] {
            let (q, p) = codes(&cfg(preset, Scheme::Asymmetric));
            assert_eq!(q, [0, 64, 106, 148, 255], "{preset:?}");
            assert_eq!(p.zero_point, 106);
        }
        // RHAZ before adding z: -43 and 43: q = [0, 63, 106, 149, 255], the seed's numbers.
        for preset in [Preset::TfLite, Preset::Textbook] {
            let (q, _) = codes(&cfg(preset, Scheme::Asymmetric));
            assert_eq!(q, [0, 63, 106, 149, 255], "{preset:?}");
        }
        // Half up: -42.5 → -42, 42.5 → 43.
        let mut c = cfg(Preset::OnnxRuntime, Scheme::Asymmetric);
        c.rounding = Some(Rounding::HalfUp);
        assert_eq!(codes(&c).0, [0, 64, 106, 149, 255]);
    }

    #[test]
    fn rounding_rules_on_ties_and_non_ties() {
        let cases: [(f32, f32, f32, f32); 7] = [
            // v, RNE, RHAZ, RHU
            (42.5, 42.0, 43.0, 43.0),
            (43.5, 44.0, 44.0, 44.0),
            (-42.5, -42.0, -43.0, -42.0),
            (-0.5, -0.0, -1.0, 0.0),
            (0.49999997, 0.0, 0.0, 0.0),
            (-1.2, -1.0, -1.0, -1.0),
            (2.7, 3.0, 3.0, 3.0),
        ];
        for (v, even, away, up) in cases {
            assert_eq!(round_f32(v, Rounding::HalfEven), even, "{v}");
            assert_eq!(round_f32(v, Rounding::HalfAway), away, "{v}");
            assert_eq!(round_f32(v, Rounding::HalfUp), up, "{v}");
            assert_eq!(round_small::<RNE>(v), even, "{v}");
            assert_eq!(round_small::<RHAZ>(v), away, "{v}");
            assert_eq!(round_small::<RHU>(v), up, "{v}");
            assert_eq!(round_f64(f64::from(v), Rounding::HalfUp), f64::from(up));
        }
    }

    #[test]
    fn nan_and_infinity_policy() {
        let c = cfg(Preset::OnnxRuntime, Scheme::Asymmetric);
        let p = params_from_range(-2.5, 3.5, &c);
        assert_eq!(quantize(f32::NAN, &p, &c), 106);
        assert_eq!(quantize(f32::INFINITY, &p, &c), 255);
        assert_eq!(quantize(f32::NEG_INFINITY, &p, &c), 0);
        let e = explain(f32::NAN, &p, &c);
        assert_eq!(e.q, 106);
        assert!(e.x_hat.is_nan());
        assert!(!e.clamped);
        let e = explain(f32::INFINITY, &p, &c);
        assert_eq!(e.q, 255);
        assert!(e.clamped);
        // Same under PyTorch's reciprocal.
        let c = cfg(Preset::PyTorch, Scheme::Symmetric);
        let p = params_from_range(-2.5, 3.5, &c);
        assert_eq!(quantize(f32::NAN, &p, &c), 0);
        assert_eq!(quantize(f32::INFINITY, &p, &c), 127);
        assert_eq!(quantize(f32::NEG_INFINITY, &p, &c), -128);
    }

    #[test]
    fn tensorrt_degenerate_range_maps_to_code_zero() {
        let c = cfg(Preset::TensorRt, Scheme::Symmetric);
        let p = params_from_range(0.0, 0.0, &c);
        assert!(p.degenerate);
        assert_eq!(quantize(5.0, &p, &c), 0);
        assert_eq!(quantize(-5.0, &p, &c), 0);
        // ORT's unit scale instead quantizes 5.0 to 5.
        let c = cfg(Preset::OnnxRuntime, Scheme::Symmetric);
        let p = params_from_range(0.0, 0.0, &c);
        assert_eq!(quantize(5.0, &p, &c), 5);
    }

    #[test]
    fn explain_shows_the_tie_and_neighbours() {
        let c = cfg(Preset::Textbook, Scheme::Asymmetric);
        let p = params_from_range(-2.5, 3.5, &c);
        let e = explain(-1.0, &p, &c);
        assert_eq!(e.x_over_s, -42.5);
        assert!(e.tie);
        assert_eq!(e.rounded, -43.0);
        assert_eq!(e.plus_z, 63.0);
        assert_eq!(e.q, 63);
        assert!(!e.clamped);
        // Grid points around -1.0: codes 63 and 64 → S * -43 and S * -42.
        assert_eq!(e.below, p.scale * -43.0);
        assert_eq!(e.above, p.scale * -42.0);
        assert_eq!(e.x_hat, p.scale * -43.0);
        let e = explain(100.0, &p, &c);
        assert!(e.clamped);
        assert_eq!(e.q, 255);
        assert_eq!(e.above, p.real_from_code(255));
    }

    fn any_cfg() -> impl Strategy<Value = QuantConfig> {
        (
            prop::sample::select(vec![2u8, 3, 4, 8, 16]),
            prop::sample::select(Preset::ALL.to_vec()),
            any::<bool>(),
            prop::sample::select(vec![
                None,
                Some(Rounding::HalfEven),
                Some(Rounding::HalfAway),
                Some(Rounding::HalfUp),
            ]),
        )
            .prop_map(|(bits, preset, sym, rounding)| {
                let scheme = if sym || preset == Preset::TensorRt {
                    Scheme::Symmetric
                } else {
                    Scheme::Asymmetric
                };
                QuantConfig {
                    bits,
                    preset,
                    scheme,
                    rounding,
                    ..QuantConfig::default()
                }
            })
    }

    proptest! {
        #[test]
        fn error_is_at_most_half_a_step_inside_the_clip_range(
            c in any_cfg(),
            lo in -1.0e4f32..0.0,
            hi in 1.0e-3f32..1.0e4,
            t in 0.0f32..=1.0,
        ) {
            let p = params_from_range(f64::from(lo), f64::from(hi), &c);
            // A point of the calibrated range.
            let x = lo + (hi - lo) * t;
            let q = quantize(x, &p, &c);
            let xh = dequantize(q, &p);
            let err = (f64::from(xh) - f64::from(x)).abs();
            // Inside the representable span the error is at most S/2 (+ f32 rounding of x/S
            // and of S * (q - z)).
            let lo_grid = f64::from(p.real_from_code(p.qmin));
            let hi_grid = f64::from(p.real_from_code(p.qmax));
            if f64::from(x) >= lo_grid && f64::from(x) <= hi_grid {
                let s = f64::from(p.scale);
                prop_assert!(err <= s / 2.0 * (1.0 + 1e-5) + f64::from(x.abs()) * 2e-7,
                    "x={x} q={q} xh={xh} S={s}");
            }
        }

        #[test]
        fn explain_agrees_with_quantize_on_raw_bits(
            c in any_cfg(),
            bits in any::<u32>(),
            lo in -1.0e3f32..0.0,
            hi in 0.0f32..1.0e3,
        ) {
            let x = f32::from_bits(bits);
            let p = params_from_range(f64::from(lo), f64::from(hi), &c);
            let q = quantize(x, &p, &c);
            let e = explain(x, &p, &c);
            prop_assert_eq!(e.q, q);
            prop_assert!(q >= p.qmin && q <= p.qmax);
            if x.is_finite() {
                // The unclamped scalar formula with the exact tie rule, in f64.
                let conv = c.convention();
                let v = if conv.reciprocal { x * (1.0 / p.scale) } else { x / p.scale };
                let r = round_f64(f64::from(v), conv.rounding) + f64::from(p.zero_point);
                let want = r.clamp(f64::from(p.qmin), f64::from(p.qmax)) as i32;
                if !(p.degenerate && c.preset == Preset::TensorRt) {
                    prop_assert_eq!(q, want);
                }
            }
        }

        #[test]
        fn fast_rounding_matches_std_for_all_small_values(bits in any::<u32>()) {
            let v = f32::from_bits(bits);
            if v.is_finite() && v.abs() < 4_194_304.0 {
                prop_assert_eq!(round_small::<RNE>(v), round_f32(v, Rounding::HalfEven));
                prop_assert_eq!(round_small::<RHAZ>(v), round_f32(v, Rounding::HalfAway));
                prop_assert_eq!(round_small::<RHU>(v), round_f32(v, Rounding::HalfUp));
            }
        }
    }
}
