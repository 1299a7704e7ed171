//! Rounding a real value to an integer under each tie rule (NUMERICS.md §2), exactly, in f32
//! and f64. The kernels and the parameter derivation both use these.

use super::config::Rounding;

/// Rounds `v` to an integer with tie rule `rule` (exact for every f64).
pub fn round_f64(v: f64, rule: Rounding) -> f64 {
    match rule {
        Rounding::HalfEven => v.round_ties_even(),
        Rounding::HalfAway => v.round(),
        Rounding::HalfUp => {
            // floor(v + 0.5) evaluated exactly: v - floor(v) is exact, no double rounding.
            let f = v.floor();
            if v - f >= 0.5 { f + 1.0 } else { f }
        }
    }
}

/// Rounds `v` to an integer with tie rule `rule` (exact for every f32).
pub fn round_f32(v: f32, rule: Rounding) -> f32 {
    match rule {
        Rounding::HalfEven => v.round_ties_even(),
        Rounding::HalfAway => v.round(),
        Rounding::HalfUp => {
            let f = v.floor();
            if v - f >= 0.5 { f + 1.0 } else { f }
        }
    }
}
