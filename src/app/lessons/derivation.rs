//! How a lesson writes out S and z: the general formula of the convention in force and the same
//! formula with the lesson's numbers, per scheme and preset, following the arithmetic of
//! `quant::params_from_range` step by step (so the page never shows one preset's formula beside
//! another preset's number).

use super::widgets::{fmt_f32, fmt_g, minus};
use crate::quant::{
    DegenerateRule, Preset, QuantConfig, QuantParams, Rounding, Scheme, SymmetricScale,
};

/// The tie rule in words ("ties to even", ...).
pub fn rounding_words(rule: Rounding) -> &'static str {
    match rule {
        Rounding::HalfEven => "ties to even",
        Rounding::HalfAway => "ties away from zero",
        Rounding::HalfUp => "ties upward",
    }
}

/// How a symmetric scale follows from max|x| under `cfg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SymmetricDivisor {
    /// ONNX Runtime: S = 2 · max|x| / (q_max − q_min).
    TwiceOverSpan,
    /// PyTorch: S = max|x| / ((q_max − q_min) / 2).
    HalfSpan,
    /// TensorRT, TFLite, textbook: S = max|x| / (2^(b−1) − 1).
    Qmax,
}

/// The symmetric divisor rule of `cfg`, as `params_from_range` picks it.
fn symmetric_divisor(cfg: &QuantConfig) -> SymmetricDivisor {
    match (cfg.preset, cfg.convention().symmetric_scale) {
        (Preset::OnnxRuntime, SymmetricScale::HalfSpan) => SymmetricDivisor::TwiceOverSpan,
        (_, SymmetricScale::HalfSpan) => SymmetricDivisor::HalfSpan,
        (_, SymmetricScale::Qmax) => SymmetricDivisor::Qmax,
    }
}

/// The general formula of S, z and q under `cfg` (formula markup).
pub fn general_formula(cfg: &QuantConfig) -> String {
    match cfg.scheme {
        Scheme::Symmetric => {
            let scale = match symmetric_divisor(cfg) {
                SymmetricDivisor::TwiceOverSpan => "S = 2 · max|x| / (q_{max} − q_{min})",
                SymmetricDivisor::HalfSpan => "S = max|x| / ((q_{max} − q_{min}) / 2)",
                SymmetricDivisor::Qmax => "S = max|x| / (2^{b−1} − 1)",
            };
            format!("{scale},   z = 0,   q = clamp(⌊x / S⌉, q_{{min}}, q_{{max}})")
        }
        Scheme::Asymmetric => "S = (max′ − min′) / (q_{max} − q_{min}),   \
             z = q_{min} − ⌊min′ / S⌉,   q = clamp(⌊x / S⌉ + z, q_{min}, q_{max})"
            .to_string(),
    }
}

/// One sentence on what ⌊·⌉ means under `cfg`.
pub fn rounding_sentence(cfg: &QuantConfig) -> String {
    let symbols = match cfg.scheme {
        Scheme::Symmetric => "max|x| is the larger of |min| and |max|",
        Scheme::Asymmetric => {
            "the primed bounds are min and max widened to include 0, so 0 always has a code"
        }
    };
    format!(
        "The brackets in the formula round to the nearest integer, {} (the {} convention); {symbols}.",
        rounding_words(cfg.convention().rounding),
        cfg.preset.name()
    )
}

/// The written-out derivation of (S, z) for one clip range.
#[derive(Debug, Clone, PartialEq)]
pub struct Derivation {
    /// A sentence when the range had to be extended to include 0 (asymmetric) or is empty.
    pub remark: Option<String>,
    /// Formula lines with the numbers (formula markup).
    pub lines: Vec<String>,
}

/// The range ends as the references hold them: float32, extended to include 0.
fn range_f32(range: (f64, f64)) -> (f32, f32) {
    let fin = |v: f64| if v.is_finite() { v } else { 0.0 };
    let (a, b) = (fin(range.0), fin(range.1));
    // Every reference holds its range as float32 (params_from_range does the same rounding).
    ((a.min(b) as f32).min(0.0), (a.max(b) as f32).max(0.0))
}

/// What a preset does with an empty range, in words.
fn degenerate_words(cfg: &QuantConfig, p: &QuantParams) -> String {
    match cfg.convention().degenerate {
        DegenerateRule::ZeroCodes => {
            format!(
                "{} maps every value to code 0 (S is reported as {})",
                cfg.preset.name(),
                fmt_f32(p.scale)
            )
        }
        DegenerateRule::EpsilonScale => format!(
            "{} uses its smallest scale S = 2^{{−23}} = {}, z = {}",
            cfg.preset.name(),
            fmt_f32(p.scale),
            minus(&p.zero_point.to_string())
        ),
        DegenerateRule::UnitScale => format!(
            "{} uses S = {}, z = {}",
            cfg.preset.name(),
            fmt_f32(p.scale),
            minus(&p.zero_point.to_string())
        ),
    }
}

/// S and z for the clip range `range` under `cfg`, written out with the numbers `p` came from.
pub fn derive(cfg: &QuantConfig, range: (f64, f64), p: &QuantParams) -> Derivation {
    let (lo, hi) = range_f32(range);
    let (qmin, qmax) = (p.qmin, p.qmax);
    let span = f64::from(qmax) - f64::from(qmin);
    match cfg.scheme {
        Scheme::Symmetric => {
            let absmax = (-lo).max(hi);
            if p.degenerate && absmax == 0.0 {
                return Derivation {
                    remark: Some(format!(
                        "max|x| = 0: the range is empty, so {}.",
                        degenerate_words(cfg, p)
                    )),
                    lines: Vec::new(),
                };
            }
            if p.degenerate {
                return Derivation {
                    remark: Some(format!(
                        "max|x| = {} is so small that S would underflow float32, so {}.",
                        fmt_g(f64::from(absmax), 6),
                        degenerate_words(cfg, p)
                    )),
                    lines: Vec::new(),
                };
            }
            let line = match symmetric_divisor(cfg) {
                SymmetricDivisor::TwiceOverSpan => format!(
                    "S = 2 · max|x| / (q_{{max}} − q_{{min}}) = 2 · {} / {} = {}",
                    fmt_g(f64::from(absmax), 6),
                    fmt_g(span, 6),
                    fmt_f32(p.scale)
                ),
                SymmetricDivisor::HalfSpan => {
                    // PyTorch's arithmetic: absmax / (span / 2) in f32 (the half span is exact).
                    let raw = absmax / ((span / 2.0) as f32);
                    let floor = if raw < p.scale {
                        format!(
                            ", raised to PyTorch's smallest scale 2^{{−23}} = {}",
                            fmt_f32(p.scale)
                        )
                    } else {
                        String::new()
                    };
                    format!(
                        "S = max|x| / ((q_{{max}} − q_{{min}}) / 2) = {} / {} = {}{floor}",
                        fmt_g(f64::from(absmax), 6),
                        fmt_g(span / 2.0, 6),
                        fmt_f32(raw)
                    )
                }
                SymmetricDivisor::Qmax => {
                    let bits = u32::from(cfg.bits.clamp(2, 16));
                    format!(
                        "S = max|x| / (2^{{{}}} − 1) = {} / {} = {}",
                        bits - 1,
                        fmt_g(f64::from(absmax), 6),
                        (1i32 << (bits - 1)) - 1,
                        fmt_f32(p.scale)
                    )
                }
            };
            Derivation {
                remark: None,
                lines: vec![format!("{line},   z = 0")],
            }
        }
        Scheme::Asymmetric => {
            let remark = extension_remark(range);
            if p.degenerate && hi == lo {
                return Derivation {
                    remark: Some(format!(
                        "Both bounds are 0: the range is empty, so {}.",
                        degenerate_words(cfg, p)
                    )),
                    lines: Vec::new(),
                };
            }
            if p.degenerate {
                return Derivation {
                    remark: Some(format!(
                        "The range [{}, {}] is so narrow that S would underflow float32, so {}.",
                        fmt_g(f64::from(lo), 6),
                        fmt_g(f64::from(hi), 6),
                        degenerate_words(cfg, p)
                    )),
                    lines: Vec::new(),
                };
            }
            let scale_line = format!(
                "S = (max′ − min′) / (q_{{max}} − q_{{min}}) = ({} − ({})) / {} = {}",
                fmt_g(f64::from(hi), 6),
                fmt_g(f64::from(lo), 6),
                fmt_g(span, 6),
                fmt_f32(p.scale)
            );
            // min′ / S as the preset divides: PyTorch in f32 with the stored S, the others in
            // f64 with the unrounded f64 scale.
            let v = match cfg.preset {
                Preset::PyTorch => f64::from(lo / p.scale),
                _ => f64::from(lo) / ((f64::from(hi) - f64::from(lo)) / span),
            };
            let tie = v.is_finite() && (v - v.floor()) == 0.5;
            let tie_note = if tie {
                format!("   (a tie, {})", rounding_words(cfg.convention().rounding))
            } else {
                String::new()
            };
            let zero_line = format!(
                "z = q_{{min}} − ⌊min′ / S⌉ = {} − ⌊{}⌉ = {}{tie_note}",
                minus(&qmin.to_string()),
                fmt_g(v, 6),
                minus(&p.zero_point.to_string())
            );
            Derivation {
                remark,
                lines: vec![scale_line, zero_line],
            }
        }
    }
}

/// The sentence saying that an asymmetric range was extended to include 0, when it was.
fn extension_remark(range: (f64, f64)) -> Option<String> {
    let (a, b) = (range.0.min(range.1), range.0.max(range.1));
    if a > 0.0 {
        Some(format!(
            "Every value is positive (min = {}), so the range is extended down to 0.",
            fmt_g(a, 6)
        ))
    } else if b < 0.0 {
        Some(format!(
            "Every value is negative (max = {}), so the range is extended up to 0.",
            fmt_g(b, 6)
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::params_from_range;

    fn cfg(preset: Preset, scheme: Scheme) -> QuantConfig {
        QuantConfig {
            preset,
            scheme,
            ..QuantConfig::default()
        }
    }

    #[test]
    fn symmetric_formula_is_the_presets_own() {
        // max|x| = 0.5: PyTorch divides by 127.5 (codes −128..127), the others by 127.
        let c = cfg(Preset::PyTorch, Scheme::Symmetric);
        let p = params_from_range(-0.2, 0.5, &c);
        let d = derive(&c, (-0.2, 0.5), &p);
        assert_eq!(
            d.lines,
            vec!["S = max|x| / ((q_{max} − q_{min}) / 2) = 0.5 / 127.5 = 0.003921569,   z = 0"]
        );
        assert!(general_formula(&c).contains("/ 2)"));
        let c = cfg(Preset::OnnxRuntime, Scheme::Symmetric);
        let p = params_from_range(-0.2, 0.5, &c);
        assert_eq!(
            derive(&c, (-0.2, 0.5), &p).lines,
            vec!["S = 2 · max|x| / (q_{max} − q_{min}) = 2 · 0.5 / 254 = 0.003937008,   z = 0"]
        );
        let c = cfg(Preset::TensorRt, Scheme::Symmetric);
        let p = params_from_range(-0.2, 0.5, &c);
        assert_eq!(
            derive(&c, (-0.2, 0.5), &p).lines,
            vec!["S = max|x| / (2^{7} − 1) = 0.5 / 127 = 0.003937008,   z = 0"]
        );
    }

    #[test]
    fn asymmetric_derivation_names_ties_and_the_extension() {
        // [−1, 5]: S = 6/255, −min′/S = 42.5 exactly: a tie, even → 42.
        let c = cfg(Preset::OnnxRuntime, Scheme::Asymmetric);
        let p = params_from_range(-1.0, 5.0, &c);
        let d = derive(&c, (-1.0, 5.0), &p);
        assert_eq!(d.remark, None);
        assert_eq!(
            d.lines[1],
            "z = q_{min} − ⌊min′ / S⌉ = 0 − ⌊−42.5⌉ = 42   (a tie, ties to even)"
        );
        let p = params_from_range(0.1, 0.5, &c);
        let d = derive(&c, (0.1, 0.5), &p);
        assert!(d.remark.is_some_and(|r| r.contains("extended down to 0")));
        assert_eq!(d.lines[1], "z = q_{min} − ⌊min′ / S⌉ = 0 − ⌊0⌉ = 0");
        // An empty range says what the preset does instead of dividing by zero.
        let p = params_from_range(0.0, 0.0, &c);
        let d = derive(&c, (0.0, 0.0), &p);
        assert!(d.lines.is_empty());
        assert!(d.remark.is_some_and(|r| r.contains("S = 1")));
    }
}
