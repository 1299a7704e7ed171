//! Number formats as data: bit fields, exact decode, RNE encode, neighbours and ULP.
//!
//! A format is a [`FloatFormat`] table row; adding one is adding a const, not code.

mod analysis;
mod format;
mod input;

pub use analysis::{Analysis, Fields, format_exact};
pub use format::{FloatClass, FloatFormat, FormatId, Overflow, SpecialValues};
pub use input::{BitsInput, InputError, parse_input};
