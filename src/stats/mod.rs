//! Streaming statistics, exact percentiles and histograms over finite values.
//!
//! Every kernel works on `f32` slices, counts only finite values (NaN and ±Inf are counted
//! separately, never mixed into sums or ranges) and runs in parallel with rayon over fixed
//! chunks of [`CHUNK_LEN`] elements. Per-chunk partial results are combined in chunk order, so
//! every result is bit-identical for any number of threads. Long kernels take a
//! [`Cancel`](crate::cancel::Cancel) token and check it between chunks.
//!
//! - [`summarize`]: count, min, max, mean, population std, absmax, NaN/Inf/zero/subnormal counts.
//! - [`percentile`], [`percentiles`], [`abs_percentile`]: exact order statistics with
//!   numpy's default 'linear' interpolation.
//! - [`histogram`], [`histogram_auto`], [`abs_histogram`]: numpy.histogram bin assignment,
//!   bit for bit; [`code_histogram`]: one bin per integer code.
//! - [`exponent_histogram`]: binary exponents and, per target float format, how many values
//!   would overflow, become subnormal or flush to zero.

mod exponent;
mod histogram;
mod minmax;
mod percentile;
mod summary;

pub use exponent::{
    ExponentHistogram, FormatRangeCounts, MAX_F32_EXPONENT, MIN_F32_EXPONENT, exponent_histogram,
    f32_exponent,
};
pub use histogram::{
    Histogram, MAX_BINS, MAX_CODE_BINS, Magnitude, abs_histogram, code_histogram, histogram,
    histogram_auto,
};
pub use minmax::row_minmax;
pub use percentile::{abs_percentile, abs_percentiles, percentile, percentiles};
pub use summary::{Summary, finite_min_max, summarize};

use crate::cancel::Cancelled;

/// Elements per parallel work unit. Chunk boundaries are fixed (they depend only on the slice
/// length), which is what makes floating-point results independent of the thread count.
pub const CHUNK_LEN: usize = 1 << 16;

/// Errors of the statistics kernels.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// A histogram was asked for with zero bins.
    #[error("a histogram needs at least one bin")]
    ZeroBins,
    /// A histogram was asked for with more bins than [`MAX_BINS`].
    #[error("{bins} histogram bins requested; at most {max} are supported")]
    TooManyBins {
        /// The requested bin count.
        bins: usize,
        /// The largest supported bin count.
        max: usize,
    },
    /// The histogram range has a NaN or infinite end.
    #[error("histogram range [{lo}, {hi}] is not finite")]
    NonFiniteRange {
        /// Requested lower end.
        lo: f64,
        /// Requested upper end.
        hi: f64,
    },
    /// The histogram range is empty or reversed (`lo >= hi`).
    #[error("histogram range [{lo}, {hi}] is empty: lo must be below hi")]
    EmptyRange {
        /// Requested lower end.
        lo: f64,
        /// Requested upper end.
        hi: f64,
    },
    /// The job was cancelled between chunks.
    #[error("cancelled")]
    Cancelled(#[from] Cancelled),
}
