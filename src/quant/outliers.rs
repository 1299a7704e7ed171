//! What counts as an outlier (NUMERICS.md §5): |x| >= tau for an absolute threshold, or the
//! z-score rule |x − mean| >= k · std for a multiple of the standard deviation. One rule, used
//! by the outlier split, the reports and the app's browser, so every count agrees.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::config::OutlierThreshold;
use crate::cancel::{Cancel, Cancelled};
use crate::stats;

/// A finite x is an outlier when |x − center| >= radius (both in f64, so the comparison is
/// exact for every f32 input).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OutlierRule {
    /// 0 for an absolute threshold, the mean of the finite values for k · std.
    pub center: f64,
    /// tau, or k · std (+inf when the tensor has no finite value, so nothing is an outlier).
    pub radius: f64,
}

impl OutlierRule {
    /// The rule that never fires.
    pub const NONE: Self = Self {
        center: 0.0,
        radius: f64::INFINITY,
    };

    /// The rule of `threshold` for `values` (computes the mean and std for k · std).
    pub fn new(
        values: &[f32],
        threshold: OutlierThreshold,
        cancel: &Cancel,
    ) -> Result<Self, Cancelled> {
        Ok(match threshold {
            OutlierThreshold::Absolute(t) => Self {
                center: 0.0,
                radius: f64::from(t),
            },
            OutlierThreshold::StdMultiple(k) => {
                let s = stats::summarize(values, cancel)?;
                match (s.mean, s.std) {
                    (Some(mean), Some(std)) => Self {
                        center: mean,
                        radius: f64::from(k) * std,
                    },
                    _ => Self::NONE,
                }
            }
        })
    }

    /// Whether `x` is an outlier (never for NaN or ±Inf: those are counted separately).
    #[inline]
    pub fn is_outlier(&self, x: f32) -> bool {
        x.is_finite() && (f64::from(x) - self.center).abs() >= self.radius
    }

    /// How many values are outliers.
    pub fn count(&self, values: &[f32], cancel: &Cancel) -> Result<u64, Cancelled> {
        let counts = values
            .par_chunks(stats::CHUNK_LEN)
            .map(|c| {
                cancel.check()?;
                // usize to u64 is lossless on every supported target.
                Ok(c.iter().filter(|&&x| self.is_outlier(x)).count() as u64)
            })
            .collect::<Result<Vec<u64>, Cancelled>>()?;
        Ok(counts.iter().sum())
    }

    /// Which last-axis columns (of `cols`) hold any outlier.
    pub fn column_mask(
        &self,
        values: &[f32],
        cols: usize,
        cancel: &Cancel,
    ) -> Result<Vec<bool>, Cancelled> {
        let cols = cols.max(1);
        let rows_per_task = (stats::CHUNK_LEN / cols).max(1);
        let parts: Vec<Vec<bool>> = values
            .par_chunks(cols * rows_per_task)
            .map(|chunk| {
                cancel.check()?;
                let mut m = vec![false; cols];
                for row in chunk.chunks(cols) {
                    for (slot, &x) in m.iter_mut().zip(row) {
                        *slot |= self.is_outlier(x);
                    }
                }
                Ok(m)
            })
            .collect::<Result<_, Cancelled>>()?;
        let mut mask = vec![false; cols];
        for p in &parts {
            for (a, &b) in mask.iter_mut().zip(p) {
                *a |= b;
            }
        }
        Ok(mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_threshold_is_a_magnitude() {
        let r = OutlierRule::new(&[0.0], OutlierThreshold::Absolute(6.0), &Cancel::never())
            .expect("not cancelled");
        assert!(r.is_outlier(6.0));
        assert!(r.is_outlier(-6.0));
        assert!(!r.is_outlier(5.999_999_5));
        assert!(!r.is_outlier(f32::INFINITY));
        assert!(!r.is_outlier(f32::NAN));
    }

    #[test]
    fn std_multiple_is_a_z_score_around_the_mean() {
        // A LayerNorm-like vector near 0.9: far from 0 but no value far from its mean.
        let mut v: Vec<f32> = (0..384).map(|i| 0.9 + 0.001 * (i % 7) as f32).collect();
        let c = Cancel::never();
        let r = OutlierRule::new(&v, OutlierThreshold::StdMultiple(3.0), &c).expect("ok");
        assert_eq!(r.count(&v, &c).expect("ok"), 0);
        // One value 1.5 away from the mean is an outlier; mean and std computed as numpy does.
        v[17] = 2.4;
        let r = OutlierRule::new(&v, OutlierThreshold::StdMultiple(3.0), &c).expect("ok");
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let std = (v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        assert!((r.center - mean).abs() < 1e-12);
        assert!((r.radius - 3.0 * std).abs() < 1e-12);
        assert_eq!(r.count(&v, &c).expect("ok"), 1);
        let mask = r.column_mask(&v, 96, &c).expect("ok");
        assert_eq!(mask.iter().filter(|&&m| m).count(), 1);
        assert!(mask[17]);
    }

    #[test]
    fn no_finite_values_means_no_outliers() {
        let v = [f32::NAN, f32::INFINITY];
        let c = Cancel::never();
        let r = OutlierRule::new(&v, OutlierThreshold::StdMultiple(3.0), &c).expect("ok");
        assert_eq!(r, OutlierRule::NONE);
        assert_eq!(r.count(&v, &c).expect("ok"), 0);
    }
}
