//! Error metrics of a quantization (NUMERICS.md §6) and effective bits per weight (§3).
//!
//! With x the reference, x_hat the dequantized value and e = x_hat - x, over the finite x only:
//! MSE = sum(e^2)/N, RMSE, MAE, max |e|, SQNR dB = 10 log10(sum(x^2)/sum(e^2)), cosine
//! x.x_hat/(|x||x_hat|) and the fraction of values whose code was clamped. Sums are f64.
//!
//! Conventions for the undefined cases (documented because scripts parse them):
//! - SQNR is `+inf` when sum(e^2) = 0 (exact reconstruction, also for an all-zero or empty
//!   tensor) and `-inf` when sum(x^2) = 0 < sum(e^2). In JSON, infinities are the strings
//!   `"inf"` / `"-inf"` (NaN would be `null`).
//! - cosine is `null` (None) when |x| or |x_hat| is 0.
//! - MSE, RMSE, MAE, max |e| and the clipped fraction are 0 for an empty set.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Error metrics of one quantization over its finite values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Finite values measured (N).
    pub count: u64,
    /// Mean squared error.
    pub mse: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Largest |e|.
    pub max_abs_error: f64,
    /// Signal-to-quantization-noise ratio in dB; +inf when the reconstruction is exact.
    #[serde(serialize_with = "ser_db", deserialize_with = "de_db")]
    pub sqnr_db: f64,
    /// Cosine similarity of x and x_hat; None when either has norm 0.
    pub cosine: Option<f64>,
    /// Fraction of the N values whose code was clamped to [qmin, qmax].
    pub clipped_fraction: f64,
    /// Number of clamped values (of N).
    pub clipped: u64,
    /// NaN inputs (excluded from the metrics).
    pub nan_count: u64,
    /// +-Inf inputs (excluded from the metrics).
    pub inf_count: u64,
}

fn ser_db<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else if v.is_nan() {
        s.serialize_none()
    } else if *v > 0.0 {
        s.serialize_str("inf")
    } else {
        s.serialize_str("-inf")
    }
}

fn de_db<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Db {
        Num(f64),
        Text(String),
        Null(()),
    }
    match Db::deserialize(d)? {
        Db::Num(v) => Ok(v),
        Db::Text(t) => match t.as_str() {
            "inf" => Ok(f64::INFINITY),
            "-inf" => Ok(f64::NEG_INFINITY),
            other => Err(serde::de::Error::custom(format!("bad dB value {other:?}"))),
        },
        Db::Null(()) => Ok(f64::NAN),
    }
}

/// Running sums of the metrics; chunk accumulators merge in a fixed order so the result does
/// not depend on the thread count.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct MetricAcc {
    pub count: u64,
    pub sum_e2: f64,
    pub sum_abs_e: f64,
    pub max_abs_e: f64,
    pub sum_x2: f64,
    pub sum_xh2: f64,
    pub sum_x_xh: f64,
    pub clipped: u64,
    pub nan: u64,
    pub inf: u64,
}

impl MetricAcc {
    /// Adds one value (x, x_hat) whose code was (or was not) clamped.
    #[inline(always)]
    pub fn push(&mut self, x: f32, xh: f32, clipped: bool) {
        if x.is_finite() {
            let (xd, hd) = (f64::from(x), f64::from(xh));
            let e = hd - xd;
            self.count += 1;
            self.sum_e2 += e * e;
            self.sum_abs_e += e.abs();
            self.max_abs_e = self.max_abs_e.max(e.abs());
            self.sum_x2 += xd * xd;
            self.sum_xh2 += hd * hd;
            self.sum_x_xh += xd * hd;
            self.clipped += u64::from(clipped);
        } else if x.is_nan() {
            self.nan += 1;
        } else {
            self.inf += 1;
        }
    }

    /// Adds another accumulator (call in a fixed order for reproducible sums).
    pub fn merge(&mut self, o: &MetricAcc) {
        self.count += o.count;
        self.sum_e2 += o.sum_e2;
        self.sum_abs_e += o.sum_abs_e;
        self.max_abs_e = self.max_abs_e.max(o.max_abs_e);
        self.sum_x2 += o.sum_x2;
        self.sum_xh2 += o.sum_xh2;
        self.sum_x_xh += o.sum_x_xh;
        self.clipped += o.clipped;
        self.nan += o.nan;
        self.inf += o.inf;
    }

    /// The metrics these sums describe.
    pub fn finish(&self) -> Metrics {
        // Counts below 2^53 convert exactly.
        let n = self.count as f64;
        let per = |v: f64| if self.count == 0 { 0.0 } else { v / n };
        let mse = per(self.sum_e2);
        let sqnr_db = if self.sum_e2 == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (self.sum_x2 / self.sum_e2).log10()
        };
        // One square root of the product: exactly 1 for identical vectors.
        let norms = (self.sum_x2 * self.sum_xh2).sqrt();
        Metrics {
            count: self.count,
            mse,
            rmse: mse.sqrt(),
            mae: per(self.sum_abs_e),
            max_abs_error: self.max_abs_e,
            sqnr_db,
            cosine: (norms > 0.0).then(|| (self.sum_x_xh / norms).clamp(-1.0, 1.0)),
            clipped_fraction: per(self.clipped as f64),
            clipped: self.clipped,
            nan_count: self.nan,
            inf_count: self.inf,
        }
    }
}

/// Accumulator lanes of [`LaneAcc`]: element j of every block of `LANES` goes to lane j.
pub(crate) const LANES: usize = 8;

/// `|x|` bits below this are finite.
pub(crate) const F32_INF_BITS: u32 = 0x7F80_0000;

/// Sign-clearing mask of an f32's bits.
pub(crate) const F32_ABS_MASK: u32 = 0x7FFF_FFFF;

/// Metric sums in [`LANES`] independent lanes, so the loop has no long dependency chains and
/// vectorises; non-finite inputs are handled by selects, not branches.
///
/// Element j of every block of `LANES` consecutive pushed values goes to lane j; lanes are
/// merged in one fixed order by [`LaneAcc::flush_into`]. The sums therefore depend only on how
/// the caller splits its data into `push_block` calls (fixed chunks and runs), never on the
/// thread count. No fused multiply-add is used, so every build (SSE2 or AVX2) gives the same
/// bits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LaneAcc {
    pub e2: [f64; LANES],
    pub abs_e: [f64; LANES],
    pub max_e: [f64; LANES],
    pub x2: [f64; LANES],
    pub xh2: [f64; LANES],
    pub x_xh: [f64; LANES],
    pub finite: [u64; LANES],
    pub clipped: [u64; LANES],
    pub nan: [u64; LANES],
    pub seen: u64,
}

impl Default for LaneAcc {
    fn default() -> Self {
        Self {
            e2: [0.0; LANES],
            abs_e: [0.0; LANES],
            max_e: [0.0; LANES],
            x2: [0.0; LANES],
            xh2: [0.0; LANES],
            x_xh: [0.0; LANES],
            finite: [0; LANES],
            clipped: [0; LANES],
            nan: [0; LANES],
            seen: 0,
        }
    }
}

impl LaneAcc {
    /// Adds element (x, x_hat, clipped) to lane `j` (j < LANES).
    #[inline(always)]
    pub fn lane(&mut self, j: usize, x: f32, xh: f32, clipped: bool) {
        let abs_bits = x.to_bits() & F32_ABS_MASK;
        let finite = abs_bits < F32_INF_BITS;
        let nan = abs_bits > F32_INF_BITS;
        // Non-finite inputs contribute zeros to every sum (and 0 to the max, which starts at 0).
        let xd = if finite { f64::from(x) } else { 0.0 };
        let hd = if finite { f64::from(xh) } else { 0.0 };
        let e = hd - xd;
        let ae = e.abs();
        self.e2[j] += e * e;
        self.abs_e[j] += ae;
        self.max_e[j] = if ae > self.max_e[j] {
            ae
        } else {
            self.max_e[j]
        };
        self.x2[j] += xd * xd;
        self.xh2[j] += hd * hd;
        self.x_xh[j] += xd * hd;
        self.finite[j] += u64::from(finite);
        self.clipped[j] += u64::from(clipped & finite);
        self.nan[j] += u64::from(nan);
    }

    /// Adds `x.len()` elements: the references, their reconstructions and whether each code
    /// was clamped (the three slices have the same length; extra elements are ignored).
    #[inline(always)]
    pub fn push_block(&mut self, x: &[f32], xh: &[f32], clipped: &[bool]) {
        let n = x.len().min(xh.len()).min(clipped.len());
        let (x, xh, clipped) = (&x[..n], &xh[..n], &clipped[..n]);
        let (xb, xt) = x.as_chunks::<LANES>();
        let (hb, ht) = xh.as_chunks::<LANES>();
        let (cb, ct) = clipped.as_chunks::<LANES>();
        for ((x8, h8), c8) in xb.iter().zip(hb).zip(cb) {
            for j in 0..LANES {
                self.lane(j, x8[j], h8[j], c8[j]);
            }
        }
        for (j, ((&x, &h), &c)) in xt.iter().zip(ht).zip(ct).enumerate() {
            self.lane(j, x, h, c);
        }
        // usize fits in u64.
        self.seen += n as u64;
    }

    /// Adds the lanes to `acc` in a fixed order.
    pub fn flush_into(&self, acc: &mut MetricAcc) {
        // Pairwise over the lanes: (0+1)+(2+3) ... always the same tree.
        fn tree(v: &[f64; LANES]) -> f64 {
            ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]))
        }
        let count: u64 = self.finite.iter().sum();
        let nan: u64 = self.nan.iter().sum();
        acc.count += count;
        acc.sum_e2 += tree(&self.e2);
        acc.sum_abs_e += tree(&self.abs_e);
        acc.max_abs_e = self.max_e.iter().fold(acc.max_abs_e, |m, &v| m.max(v));
        acc.sum_x2 += tree(&self.x2);
        acc.sum_xh2 += tree(&self.xh2);
        acc.sum_x_xh += tree(&self.x_xh);
        acc.clipped += self.clipped.iter().sum::<u64>();
        acc.nan += nan;
        acc.inf += self.seen - count - nan;
    }
}

/// Metrics of `approx` against `reference` (same length; extra values are ignored), with no
/// clipping information. Sequential; a plain reference for tests and small inputs.
pub fn compare(reference: &[f32], approx: &[f32]) -> Metrics {
    let mut acc = MetricAcc::default();
    for (&x, &xh) in reference.iter().zip(approx) {
        acc.push(x, xh, false);
    }
    acc.finish()
}

/// Effective bits per weight: b + param_bits * groups / elements (NUMERICS.md §3).
///
/// `param_bits` is the storage of one (S, z) pair: 16 for an f16 scale alone (symmetric), 32
/// for an f16 scale plus a 16-bit zero point or min (asymmetric), as llama.cpp's Q8_0 (8.5) and
/// Q4_1 (5.0) count them. An empty tensor costs `bits`.
pub fn bits_per_weight(bits: u8, elements: usize, groups: usize, param_bits: u32) -> f64 {
    if elements == 0 {
        return f64::from(bits);
    }
    // Sizes below 2^53 convert exactly.
    f64::from(bits) + f64::from(param_bits) * groups as f64 / elements as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_of_the_asymmetric_check_values() {
        // x = [-2.5, -1, 0, 1, 3.5], S = 6/255, z = 106, RNE codes [0, 64, 106, 148, 255]:
        // x_hat = S * [-106, -42, 0, 42, 149] (RNE) or S * [-106, -43, 0, 43, 149] (RHAZ).
        let s = 6.0f32 / 255.0;
        let x = [-2.5f32, -1.0, 0.0, 1.0, 3.5];
        let rne: Vec<f32> = [-106, -42, 0, 42, 149]
            .iter()
            .map(|&k: &i32| s * k as f32)
            .collect();
        let rhaz: Vec<f32> = [-106, -43, 0, 43, 149]
            .iter()
            .map(|&k: &i32| s * k as f32)
            .collect();
        let a = compare(&x, &rne);
        let b = compare(&x, &rhaz);
        // |e| = [1/170, 1/85, 0, 1/85, 1/170] either way: sum e^2 = 2/170^2 + 2/85^2
        // = 3.46021e-4, MSE = 6.92042e-5; sum x^2 = 6.25 + 1 + 0 + 1 + 12.25 = 20.5, so
        // SQNR = 10 log10(20.5 / 3.46021e-4) = 47.73 dB.
        assert!((a.mse - 6.92042e-5).abs() < 1e-9, "{}", a.mse);
        assert!((b.mse - 6.92042e-5).abs() < 1e-9, "{}", b.mse);
        assert!((a.sqnr_db - 47.73).abs() < 0.005, "{}", a.sqnr_db);
        assert!((b.sqnr_db - 47.73).abs() < 0.005, "{}", b.sqnr_db);
        assert!((a.max_abs_error - 1.0 / 85.0).abs() < 1e-7);
        assert!((a.rmse - a.mse.sqrt()).abs() < 1e-15);
        assert_eq!(a.count, 5);
        let cos = a.cosine.expect("nonzero norms");
        assert!(cos > 0.99999 && cos <= 1.0 + 1e-12, "{cos}");
    }

    #[test]
    fn exact_reconstruction_has_infinite_sqnr_serialised_as_text() {
        let x = [1.0f32, -2.0, f32::NAN, f32::INFINITY];
        let m = compare(&x, &x);
        assert_eq!(m.sqnr_db, f64::INFINITY);
        assert_eq!(m.mse, 0.0);
        assert_eq!((m.count, m.nan_count, m.inf_count), (2, 1, 1));
        assert_eq!(m.cosine, Some(1.0));
        let json = serde_json::to_string(&m).expect("serialise");
        assert!(json.contains("\"sqnr_db\":\"inf\""), "{json}");
        let back: Metrics = serde_json::from_str(&json).expect("parse");
        assert_eq!(back.sqnr_db, f64::INFINITY);
        let empty = compare(&[], &[]);
        assert_eq!((empty.mse, empty.clipped_fraction), (0.0, 0.0));
        assert_eq!(empty.cosine, None);
        let zero_signal = compare(&[0.0], &[0.5]);
        assert_eq!(zero_signal.sqnr_db, f64::NEG_INFINITY);
        assert!(
            serde_json::to_string(&zero_signal)
                .expect("ser")
                .contains("\"-inf\"")
        );
    }

    #[test]
    fn bits_per_weight_counts_group_parameters() {
        // Q8_0: 8 bits + f16 scale per 32 → 8.5; Q4_1: 4 + 32/32 = 5.0; per-tensor ≈ b.
        assert_eq!(bits_per_weight(8, 32 * 10, 10, 16), 8.5);
        assert_eq!(bits_per_weight(4, 32 * 10, 10, 32), 5.0);
        assert_eq!(bits_per_weight(4, 128, 1, 32), 4.25);
        assert_eq!(bits_per_weight(8, 0, 0, 32), 8.0);
    }
}
