//! Quantization: schemes, presets, granularity, calibration, kernels, outliers, metrics.
//!
//! Everything follows NUMERICS.md §2–§6. The pieces, bottom up:
//! - [`config`]: the settings ([`QuantConfig`]) and the convention each [`Preset`] bundles;
//! - [`params`]: (S, z) from a clip range, exactly as each reference library computes it;
//! - [`kernel`]: the tie rules, scalar quantize/dequantize, and [`explain`] for one value;
//! - [`batches`]: thresholds as calibration batches arrive (running min-max, accumulated
//!   histograms, percentile and entropy over batches, per-channel activation ranges);
//! - [`calib`]: minmax, percentile, entropy (TensorRT KL) and MSE clip ranges, with curves;
//! - [`metrics`]: error metrics and effective bits per weight;
//! - [`tensor`]: granularity layouts, the outlier split and the fused parallel pass
//!   [`quantize_tensor`].
//!
//! Pure functions over slices; rayon inside; no I/O.

pub mod batches;
pub mod calib;
pub mod config;
pub mod deployed;
pub mod formats;
pub mod kernel;
pub mod metrics;
pub mod outliers;
pub mod params;
pub mod rounding;
mod simd;
pub mod tensor;

pub use calib::{EntropyResult, MseResult, entropy_amax_with_curve, mse_range, percentile_range};
pub use config::{
    Calibration, Convention, DegenerateRule, Granularity, OutlierMode, OutlierThreshold, Preset,
    QuantConfig, Rounding, Scheme, SymmetricRange, SymmetricScale, code_range,
};
pub use kernel::{Explanation, dequantize, explain, quantize};
pub use metrics::{Metrics, bits_per_weight};
pub use params::{QuantParams, params_from_range};
pub use tensor::{
    CalibrationCurve, GroupLayout, OutlierReport, Outputs, QuantResult, TailGroup, quantize_tensor,
};

use crate::cancel::Cancelled;

/// Why a quantization request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuantError {
    /// The code width is not one of 2..=8 or 16.
    #[error("bits must be 2..=8 or 16, got {0}")]
    Bits(u8),
    /// The preset has no asymmetric mode.
    #[error("preset {0} supports symmetric quantization only")]
    SymmetricOnly(&'static str),
    /// The per-channel axis does not exist in the tensor.
    #[error("axis {axis} is out of range for a tensor with {ndim} dimension(s)")]
    Axis {
        /// The requested axis.
        axis: usize,
        /// The tensor's number of dimensions.
        ndim: usize,
    },
    /// A per-group size of 0.
    #[error("group size must be at least 1")]
    GroupSize,
    /// A percentile outside (0, 100].
    #[error("percentile must be in (0, 100], got {0}")]
    Percentile(f64),
    /// A hand-chosen clip range that is not finite or not ordered.
    #[error("manual clip range [{lo}, {hi}] must be finite with lo <= hi")]
    ManualRange {
        /// Lower bound.
        lo: f32,
        /// Upper bound.
        hi: f32,
    },
    /// An outlier threshold that is not a positive finite number.
    #[error("outlier threshold must be a positive finite number, got {0}")]
    OutlierThreshold(f32),
    /// The shape's element count overflows usize.
    #[error("shape has too many elements")]
    ShapeOverflow,
    /// The value count does not match the shape.
    #[error("shape holds {expected} elements but {got} values were given")]
    ShapeMismatch {
        /// Elements implied by the shape.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// A deployed format refused the tensor or its stored bytes (NUMERICS.md §8).
    #[error(transparent)]
    Format(formats::FormatError),
    /// The job was cancelled.
    #[error("cancelled")]
    Cancelled(#[from] Cancelled),
}

impl From<formats::FormatError> for QuantError {
    fn from(error: formats::FormatError) -> Self {
        match error {
            // One cancellation variant, whichever path was cancelled.
            formats::FormatError::Cancelled(c) => Self::Cancelled(c),
            other => Self::Format(other),
        }
    }
}
