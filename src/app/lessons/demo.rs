//! A deterministic weight-like demo vector for the lessons' own tests of the real-tensor parts
//! (in the app those parts run on the whole selected tensor through the derived layer's jobs).

/// Values in the demo vector.
pub const DEMO_LEN: usize = 20_000;

/// splitmix64: a tiny, well-mixed deterministic generator (Steele, Lea, Flood 2014).
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: the top 53 bits, shifted away from 0 so ln() is finite.
    fn next_unit(&mut self) -> f64 {
        // 53-bit integers convert to f64 exactly.
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }
}

/// A weight-like demo vector: 20,000 N(0, 1) values (Box–Muller) with eight large outliers
/// (±8 … ±20) at fixed positions, the shape LLM weights and activations often have.
pub fn demo_vector() -> Vec<f32> {
    let mut rng = SplitMix64(0x5EED_F00D_0A17);
    let mut out = Vec::with_capacity(DEMO_LEN);
    while out.len() < DEMO_LEN {
        let (u1, u2) = (rng.next_unit(), rng.next_unit());
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        // Gaussian values are far inside f32 range; the cast only rounds.
        out.push((r * t.cos()) as f32);
        out.push((r * t.sin()) as f32);
    }
    out.truncate(DEMO_LEN);
    let outliers = [8.0f32, -9.5, 11.0, -12.5, 14.0, -16.0, 18.0, 20.0];
    for (k, &v) in outliers.iter().enumerate() {
        if let Some(slot) = out.get_mut(k * 2_477 + 101) {
            *slot = v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_is_deterministic_gaussian_with_outliers() {
        let a = demo_vector();
        assert_eq!(a, demo_vector());
        assert_eq!(a.len(), DEMO_LEN);
        let inliers: Vec<f64> = a
            .iter()
            .filter(|v| v.abs() < 7.0)
            .map(|&v| f64::from(v))
            .collect();
        assert_eq!(inliers.len(), DEMO_LEN - 8);
        let n = inliers.len() as f64;
        let mean = inliers.iter().sum::<f64>() / n;
        let var = inliers.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        // 20k samples: the mean is within 4 standard errors (4/sqrt(20000) = 0.028) of 0 and
        // the variance within a few percent of 1.
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
        assert_eq!(a.iter().fold(0.0f32, |m, v| m.max(v.abs())), 20.0);
    }
}
