//! quantscope: see neural-network quantization on real model files.
//!
//! The library is layered; each layer may use only the ones after it:
//! `app` (feature `gui`) and `cli` → `report` → `plan` → `quant` → `stats` → `tensor` →
//! `float`, with `cancel` (cooperative cancellation and progress) usable by all.
//! Nothing outside `app` names the GUI crates (a test in `tests/layering.rs` checks it).

pub mod cancel;
pub mod cli;
pub mod float;
#[doc(hidden)]
pub mod fuzzing;
pub mod plan;
pub mod quant;
pub mod report;
pub mod stats;
pub mod tensor;

#[cfg(feature = "gui")]
pub mod app;
