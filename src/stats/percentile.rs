//! Exact percentiles with numpy's default 'linear' interpolation, by O(n) selection.
//!
//! For n sorted finite values and percentile p, numpy computes the virtual index
//! `v = (n - 1) * (p / 100)`, takes the order statistics `a = x[floor(v)]` and
//! `b = x[floor(v) + 1]` (both `x[n - 1]` when `v >= n - 1`), `t = v - floor(v)`, and
//! interpolates with `a + (b - a) * t` when `t < 0.5`, else `b - (b - a) * (1 - t)`.
//! We do the same in f64, so results are bit-identical to `numpy.percentile` on the float64
//! copy of the finite values. (numpy on a float32 array rounds `b - a` to f32 first, so its
//! result can differ from ours by half an f32 ulp of `b - a`.)

/// Percentile `p` (in percent) of the finite values of `values`.
///
/// `p` is clamped to [0, 100]; a NaN `p` gives a NaN result. `None` when there is no finite
/// value. See [`percentiles`] for the method.
pub fn percentile(values: &[f32], p: f64) -> Option<f64> {
    percentiles(values, &[p]).and_then(|v| v.first().copied())
}

/// Several percentiles (in percent) of the finite values of `values`, in the order of `ps`.
///
/// Copies the finite values once and finds only the needed order statistics with
/// `select_nth_unstable` (O(n) each, sharing the partitioning), never a full sort.
/// Each `p` is clamped to [0, 100]; a NaN `p` gives NaN in its place. `None` when there is no
/// finite value.
pub fn percentiles(values: &[f32], ps: &[f64]) -> Option<Vec<f64>> {
    let mut finite = Vec::with_capacity(values.len());
    finite.extend(values.iter().copied().filter(|x| x.is_finite()));
    percentiles_in_place(&mut finite, ps)
}

/// Percentile `p` of `|x|` over the finite values; used by symmetric percentile calibration.
///
/// Same rules as [`percentile`].
pub fn abs_percentile(values: &[f32], p: f64) -> Option<f64> {
    abs_percentiles(values, &[p]).and_then(|v| v.first().copied())
}

/// Several percentiles of `|x|` over the finite values; same rules as [`percentiles`].
pub fn abs_percentiles(values: &[f32], ps: &[f64]) -> Option<Vec<f64>> {
    let mut finite = Vec::with_capacity(values.len());
    finite.extend(values.iter().filter(|x| x.is_finite()).map(|x| x.abs()));
    percentiles_in_place(&mut finite, ps)
}

/// Where one percentile reads the sorted data: the two order statistics and the weight.
#[derive(Debug, Clone, Copy)]
struct Interp {
    lower: usize,
    upper: usize,
    gamma: f64,
}

/// numpy's `_get_indexes` and `_get_gamma` for the 'linear' method; `n >= 1`.
fn interp_for(n: usize, p: f64) -> Interp {
    let q = p.clamp(0.0, 100.0) / 100.0;
    // n - 1 < 2^53 for any slice that fits in memory, so the conversion is exact.
    let last = (n - 1) as f64;
    let virtual_index = last * q;
    if virtual_index >= last {
        return Interp {
            lower: n - 1,
            upper: n - 1,
            gamma: 0.0,
        };
    }
    let floor = virtual_index.floor();
    // 0 <= floor < n - 1, so the conversion is exact and in range.
    let lower = floor as usize;
    Interp {
        lower,
        upper: lower + 1,
        gamma: virtual_index - floor,
    }
}

/// numpy's `_lerp`, in f64.
fn lerp(a: f32, b: f32, gamma: f64) -> f64 {
    let (a, b) = (f64::from(a), f64::from(b));
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

/// Percentiles of `data` (finite values, any order); reorders `data`.
fn percentiles_in_place(data: &mut [f32], ps: &[f64]) -> Option<Vec<f64>> {
    let n = data.len();
    if n == 0 {
        return None;
    }
    let plan: Vec<Option<Interp>> = ps
        .iter()
        .map(|&p| (!p.is_nan()).then(|| interp_for(n, p)))
        .collect();
    let mut ranks: Vec<usize> = plan
        .iter()
        .flatten()
        .flat_map(|i| [i.lower, i.upper])
        .collect();
    ranks.sort_unstable();
    ranks.dedup();
    select_ranks(data, &ranks, 0);
    let result = plan
        .iter()
        .map(|step| match step {
            None => Some(f64::NAN),
            Some(i) => Some(lerp(*data.get(i.lower)?, *data.get(i.upper)?, i.gamma)),
        })
        .collect::<Option<Vec<f64>>>()?;
    Some(result)
}

/// Rearranges `data` so that each rank in `ranks` (sorted, absolute, offset by `base`) holds
/// its order statistic: select the middle rank, then recurse into both sides.
fn select_ranks(data: &mut [f32], ranks: &[usize], base: usize) {
    let mid = ranks.len() / 2;
    let Some(&rank) = ranks.get(mid) else {
        return;
    };
    let Some(local) = rank.checked_sub(base).filter(|&k| k < data.len()) else {
        return;
    };
    let (left, _, right) = data.select_nth_unstable_by(local, f32::total_cmp);
    let (below, above) = ranks.split_at(mid);
    select_ranks(left, below, base);
    select_ranks(right, above.get(1..).unwrap_or(&[]), rank + 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_linear_known_values() {
        // [1,2,3,4] at 25: v = 3 * 0.25 = 0.75, t = 0.75 >= 0.5 so 2 - 1 * 0.25 = 1.75
        // (np.percentile([1,2,3,4], 25) == 1.75).
        assert_eq!(percentile(&[4.0, 1.0, 3.0, 2.0], 25.0), Some(1.75));
        // Median of an even count: v = 1.5, 2 + ... = 2.5 exactly.
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), Some(2.5));
        // Extremes are the min and max.
        assert_eq!(percentile(&[3.0, -7.5, 2.0], 0.0), Some(-7.5));
        assert_eq!(percentile(&[3.0, -7.5, 2.0], 100.0), Some(3.0));
    }

    #[test]
    fn matches_numpy_on_float64_copy() {
        // np.percentile(np.float32([-0.2, 0.1, 0.3, 5.0]).astype(np.float64), 99) printed
        // 4.859000000357627 (numpy 2.4.6). Derivation: v = 3 * 0.99 = 2.97, a = f32(0.3),
        // b = 5, t = 0.97 >= 0.5 so 5 - (5 - f32(0.3)) * 0.03 = 4.859 + 0.03 * 1.19e-8.
        let x = [-0.2f32, 0.1, 0.3, 5.0];
        assert_eq!(percentile(&x, 99.0), Some(4.859000000357627));
        let a = f64::from(0.3f32);
        let t = 3.0 * 0.99 - 2.0;
        assert_eq!(percentile(&x, 99.0), Some(5.0 - (5.0 - a) * (1.0 - t)));
        // The same numpy run: at 25 -> 0.02500000037252903, at 50 -> 0.20000000670552254
        // (the mean of f32(0.1) and f32(0.3)).
        let got = percentiles(&x, &[25.0, 50.0]).unwrap_or_default();
        assert_eq!(got, [0.02500000037252903, 0.20000000670552254]);
        let mid = (f64::from(0.1f32) + f64::from(0.3f32)) / 2.0;
        assert_eq!(got.get(1), Some(&mid));
        let lo = f64::from(-0.2f32) + (f64::from(0.1f32) - f64::from(-0.2f32)) * 0.75;
        let lo_numpy = f64::from(0.1f32) - (f64::from(0.1f32) - f64::from(-0.2f32)) * 0.25;
        assert_eq!(got.first(), Some(&lo_numpy));
        assert!((lo - lo_numpy).abs() < 1e-15);
    }

    #[test]
    fn nonfinite_values_are_ignored_and_empty_is_none() {
        let x = [f32::NAN, 1.0, f32::INFINITY, 3.0, f32::NEG_INFINITY];
        assert_eq!(percentile(&x, 50.0), Some(2.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[f32::NAN, f32::INFINITY], 50.0), None);
        assert_eq!(percentiles(&[], &[]), None);
    }

    #[test]
    fn p_is_clamped_and_nan_p_is_nan() {
        let x = [1.0f32, 2.0, 3.0];
        assert_eq!(percentile(&x, -5.0), Some(1.0));
        assert_eq!(percentile(&x, 250.0), Some(3.0));
        assert!(percentile(&x, f64::NAN).is_some_and(f64::is_nan));
    }

    #[test]
    fn abs_percentile_uses_magnitudes() {
        // |x| = [0.5, 1, 2, 4]; at 100 -> 4, at 50 -> 1.5.
        let x = [-4.0f32, 0.5, -1.0, 2.0];
        assert_eq!(abs_percentile(&x, 100.0), Some(4.0));
        assert_eq!(abs_percentile(&x, 50.0), Some(1.5));
    }

    #[test]
    fn many_percentiles_agree_with_full_sort() {
        // A deterministic scramble of 0..1000 with duplicates.
        let x: Vec<f32> = (0..1000u32)
            .map(|i| ((i * 7919) % 613) as f32 * 0.5)
            .collect();
        let mut sorted = x.clone();
        sorted.sort_by(f32::total_cmp);
        let ps: Vec<f64> = (0..=200).map(|i| f64::from(i) * 0.5).collect();
        let got = percentiles(&x, &ps).unwrap_or_default();
        assert_eq!(got.len(), ps.len());
        for (&p, &g) in ps.iter().zip(&got) {
            let i = interp_for(sorted.len(), p);
            assert_eq!(
                g,
                lerp(sorted[i.lower], sorted[i.upper], i.gamma),
                "p = {p}"
            );
        }
    }
}
