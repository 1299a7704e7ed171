//! Thin wrappers that run the core kernels over a lesson's small vector and keep every
//! intermediate value the page shows.

use crate::cancel::Cancel;
use crate::quant::{Explanation, QuantConfig, QuantParams, explain, metrics, params_from_range};
use crate::stats;

/// One vector quantized with one (S, z): every step of every element plus the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized {
    /// The clip range the parameters were computed from.
    pub range: (f64, f64),
    /// S, z and the code range.
    pub params: QuantParams,
    /// Each element's steps (x/S, rounding, + z, clamp, q, x̂, error).
    pub steps: Vec<Explanation>,
    /// The codes q.
    pub codes: Vec<i32>,
    /// The dequantized values x̂.
    pub dequant: Vec<f32>,
    /// Error metrics of x̂ against x.
    pub metrics: metrics::Metrics,
    /// How many codes were clamped to [qmin, qmax].
    pub clipped: usize,
}

/// The finite (min, max) of `x` from the core's statistics, (0, 0) when there is none.
pub fn min_max(x: &[f32]) -> (f64, f64) {
    match stats::finite_min_max(x, &Cancel::never()) {
        Ok(Some((lo, hi))) => (f64::from(lo), f64::from(hi)),
        _ => (0.0, 0.0),
    }
}

/// Quantizes `x` with the parameters the core derives from the clip range [lo, hi] under `cfg`.
pub fn quantize_range(x: &[f32], lo: f64, hi: f64, cfg: &QuantConfig) -> Quantized {
    let params = params_from_range(lo, hi, cfg);
    quantize_params(x, (lo, hi), params, cfg)
}

/// Quantizes `x` with given parameters (per-element steps from the core's `explain`).
pub fn quantize_params(
    x: &[f32],
    range: (f64, f64),
    params: QuantParams,
    cfg: &QuantConfig,
) -> Quantized {
    let steps: Vec<Explanation> = x.iter().map(|&v| explain(v, &params, cfg)).collect();
    let codes = steps.iter().map(|s| s.q).collect();
    let dequant: Vec<f32> = steps.iter().map(|s| s.x_hat).collect();
    let clipped = steps.iter().filter(|s| s.clamped).count();
    Quantized {
        range,
        params,
        metrics: metrics::compare(x, &dequant),
        steps,
        codes,
        dequant,
        clipped,
    }
}

/// Quantizes `x` with its own min-max range.
pub fn quantize_minmax(x: &[f32], cfg: &QuantConfig) -> Quantized {
    let (lo, hi) = min_max(x);
    quantize_range(x, lo, hi, cfg)
}
