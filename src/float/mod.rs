//! Number formats as data: bit fields, exact decode, RNE encode, neighbours and ULP.
//!
//! A format is a [`FloatFormat`] table row; adding one is adding a const, not code.

mod analysis;
mod format;

pub use analysis::{Analysis, Fields, format_exact};
pub use format::{FloatClass, FloatFormat, FormatId, Overflow, SpecialValues};
