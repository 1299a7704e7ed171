//! Property tests of `quantscope::stats` over raw f32 bit patterns (so NaN, ±Inf, zeros and
//! subnormals appear by construction): counts add up, results match naive references, and
//! parallel runs equal single-threaded runs bit for bit.

use std::sync::OnceLock;

use proptest::prelude::*;
use quantscope::cancel::Cancel;
use quantscope::float::{FloatClass, FloatFormat, Overflow};
use quantscope::stats::{
    CHUNK_LEN, abs_histogram, code_histogram, exponent_histogram, f32_exponent, histogram,
    histogram_auto, percentiles, summarize,
};
use rayon::{ThreadPool, ThreadPoolBuilder};

fn pool(threads: usize) -> &'static ThreadPool {
    static ONE: OnceLock<ThreadPool> = OnceLock::new();
    static FOUR: OnceLock<ThreadPool> = OnceLock::new();
    let cell = if threads == 1 { &ONE } else { &FOUR };
    cell.get_or_init(|| {
        ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(move |i| format!("stats-test-{threads}-{i}"))
            .build()
            .unwrap_or_else(|e| panic!("thread pool: {e}"))
    })
}

/// Values from raw bit patterns: a small random vector, or a long one (up to 3.5 chunks) drawn
/// from a seeded generator so that several chunks are combined.
fn raw_values() -> impl Strategy<Value = Vec<f32>> {
    prop_oneof![
        3 => prop::collection::vec(any::<u32>().prop_map(f32::from_bits), 0..600),
        1 => (any::<u64>(), 0..CHUNK_LEN * 7 / 2).prop_map(|(seed, n)| {
            let mut state = seed;
            (0..n)
                .map(|_| {
                    // splitmix64; the top 32 bits become the f32 pattern (truncation intended).
                    state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                    let mut z = state;
                    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                    f32::from_bits(((z ^ (z >> 31)) >> 32) as u32)
                })
                .collect()
        }),
        // Ordinary-looking data with ties and a few specials.
        1 => prop::collection::vec(
            prop_oneof![8 => (-50i32..50).prop_map(|i| i as f32 * 0.125), 1 => Just(f32::NAN),
                        1 => Just(f32::INFINITY), 1 => Just(-0.0f32)],
            0..600,
        ),
    ]
}

/// Shewchuk's exact partial sums (Python's math.fsum): an accurate reference sum.
fn fsum(values: impl Iterator<Item = f64>) -> f64 {
    let mut partials: Vec<f64> = Vec::new();
    for mut x in values {
        let mut kept = 0;
        for i in 0..partials.len() {
            let mut y = partials[i];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                partials[kept] = lo;
                kept += 1;
            }
            x = hi;
        }
        partials.truncate(kept);
        partials.push(x);
    }
    partials.iter().rev().sum()
}

/// numpy's 'linear' percentile over sorted values, written out independently.
fn numpy_linear(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    let v = (n - 1) as f64 * (p / 100.0);
    if v >= (n - 1) as f64 {
        return sorted[n - 1];
    }
    let lower = v.floor();
    let t = v - lower;
    let (a, b) = (sorted[lower as usize], sorted[lower as usize + 1]);
    if t >= 0.5 {
        b - (b - a) * (1.0 - t)
    } else {
        a + (b - a) * t
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn summary_matches_naive_reference(x in raw_values()) {
        let s = summarize(&x, &Cancel::never()).unwrap_or_else(|e| panic!("{e}"));
        let finite: Vec<f64> = x.iter().filter(|v| v.is_finite()).map(|&v| f64::from(v)).collect();
        prop_assert_eq!(s.count, finite.len() as u64);
        prop_assert_eq!(s.nan_count, x.iter().filter(|v| v.is_nan()).count() as u64);
        prop_assert_eq!(s.pos_inf_count, x.iter().filter(|&&v| v == f32::INFINITY).count() as u64);
        prop_assert_eq!(s.neg_inf_count, x.iter().filter(|&&v| v == f32::NEG_INFINITY).count() as u64);
        prop_assert_eq!(s.zero_count, x.iter().filter(|&&v| v == 0.0).count() as u64);
        prop_assert_eq!(s.subnormal_count, x.iter().filter(|v| v.is_subnormal()).count() as u64);
        prop_assert_eq!(s.len(), x.len() as u64);
        if finite.is_empty() {
            prop_assert_eq!((s.min, s.max, s.mean, s.std), (None, None, None, None));
            return Ok(());
        }
        let n = finite.len() as f64;
        let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        prop_assert_eq!((s.min, s.max), (Some(min), Some(max)));
        prop_assert_eq!(s.absmax, min.abs().max(max.abs()));
        // Two-pass reference with exact sums. The tolerances are relative to the problem's
        // scale (mean |x| for the mean, mean x^2 for the variance): with cancellation the
        // result itself can be near 0, where no f64 method is accurate relative to it.
        let mean = fsum(finite.iter().copied()) / n;
        let var = fsum(finite.iter().map(|v| (v - mean) * (v - mean))) / n;
        let mean_abs = fsum(finite.iter().map(|v| v.abs())) / n;
        let mean_sq = fsum(finite.iter().map(|v| v * v)) / n;
        let got_mean = s.mean.unwrap_or(f64::NAN);
        let got_var = s.std.unwrap_or(f64::NAN).powi(2);
        prop_assert!((got_mean - mean).abs() <= 1e-12 * mean_abs, "mean {} vs {}", got_mean, mean);
        prop_assert!((got_var - var).abs() <= 1e-12 * mean_sq, "var {} vs {}", got_var, var);
    }

    #[test]
    fn parallel_equals_single_threaded(x in raw_values(), bins in 1usize..300) {
        let run = |threads: usize| {
            pool(threads).install(|| {
                let c = Cancel::never();
                format!(
                    "{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
                    summarize(&x, &c),
                    histogram_auto(&x, bins, &c),
                    abs_histogram(&x, bins, 1e3, &c),
                    exponent_histogram(&x, &c),
                    percentiles(&x, &[0.0, 1.0, 50.0, 99.99, 100.0]),
                )
            })
        };
        prop_assert_eq!(run(1), run(4));
    }

    #[test]
    fn histogram_counts_add_up_and_follow_the_edges(x in raw_values(), bins in 1usize..300,
                                                     lo in -1e3f64..1e3, width in 1e-3f64..1e4) {
        let c = Cancel::never();
        let auto = histogram_auto(&x, bins, &c).unwrap_or_else(|e| panic!("{e}"));
        let finite = x.iter().filter(|v| v.is_finite()).count() as u64;
        prop_assert_eq!(auto.total(), finite);
        prop_assert_eq!((auto.below, auto.above), (0, 0));
        prop_assert_eq!(auto.nonfinite, x.len() as u64 - finite);

        let h = histogram(&x, bins, lo, lo + width, &c).unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!(h.total() + h.below + h.above + h.nonfinite, x.len() as u64);
        prop_assert_eq!(h.bin_count(), bins);
        // Reference: numpy's documented rule over its float32 edges (bins [a, b), the last
        // one closed), by binary search.
        let edges = h.edges();
        prop_assume!(edges.windows(2).all(|w| w[0] < w[1]));
        let (first, last) = (edges[0], edges[bins]);
        let reference = |values: &[f32]| {
            let mut expected = vec![0u64; bins];
            for &v in values.iter().filter(|v| v.is_finite() && **v >= first && **v <= last) {
                let i = edges[1..bins].partition_point(|&e| e <= v);
                expected[i] += 1;
            }
            expected
        };
        prop_assert_eq!(&h.counts, &reference(&x));
        // Random values seldom hit an edge, so also bin every edge and its f32 neighbours.
        let on_edges: Vec<f32> = edges.iter().flat_map(|&e| [e.next_down(), e, e.next_up()]).collect();
        let h = histogram(&on_edges, bins, lo, lo + width, &c).unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!((h.below, h.above), (1, 1));
        prop_assert_eq!(&h.counts, &reference(&on_edges));
    }

    #[test]
    fn percentiles_are_exact_monotone_and_in_range(x in raw_values(),
                                                   mut ps in prop::collection::vec(0.0f64..=100.0, 1..20)) {
        ps.sort_by(f64::total_cmp);
        let mut sorted: Vec<f32> = x.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f32::total_cmp);
        let sorted: Vec<f64> = sorted.into_iter().map(f64::from).collect();
        let Some(got) = percentiles(&x, &ps) else {
            prop_assert!(sorted.is_empty());
            return Ok(());
        };
        let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
        let scale = min.abs().max(max.abs());
        for (i, (&p, &g)) in ps.iter().zip(&got).enumerate() {
            prop_assert_eq!(g.to_bits(), numpy_linear(&sorted, p).to_bits(), "p = {}", p);
            prop_assert!(min <= g && g <= max, "{} outside [{}, {}]", g, min, max);
            if i > 0 {
                // numpy's interpolation switches formula at t = 0.5; when b - a is inexact in
                // f64 the two sides differ by one rounding, hence the one-ulp allowance.
                prop_assert!(g >= got[i - 1] - 2.0 * f64::EPSILON * scale, "not monotone at p = {}", p);
            }
        }
    }

    #[test]
    fn exponent_histogram_agrees_with_the_encoders(
        x in prop::collection::vec(any::<u32>().prop_map(f32::from_bits), 0..400)
    ) {
        let c = Cancel::never();
        let h = exponent_histogram(&x, &c).unwrap_or_else(|e| panic!("{e}"));
        let s = summarize(&x, &c).unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!(h.nonzero_count() + h.zero_count, s.count);
        prop_assert_eq!(h.f32_subnormal_count, s.subnormal_count);
        prop_assert_eq!(h.zero_count, s.zero_count);
        let mut expected = vec![0u64; 277];
        for v in x.iter().filter(|v| v.is_finite() && **v != 0.0) {
            let k = f32_exponent(*v).unwrap_or(i32::MIN);
            let a = f64::from(v.abs());
            prop_assert!(2f64.powi(k) <= a && a < 2f64.powi(k + 1), "{} has exponent {}", a, k);
            expected[(k - h.min_exponent) as usize] += 1;
        }
        prop_assert_eq!(&h.counts, &expected);
        for counts in &h.formats {
            let f = FloatFormat::ALL.into_iter().find(|f| f.id == counts.format)
                .unwrap_or_else(|| panic!("format"));
            let (mut over, mut sub, mut zero) = (0u64, 0u64, 0u64);
            for v in x.iter().filter(|v| v.is_finite() && **v != 0.0) {
                match f.classify(f.encode(*v, Overflow::NonFinite)) {
                    FloatClass::Infinite | FloatClass::Nan => over += 1,
                    FloatClass::Subnormal => sub += 1,
                    FloatClass::Zero => zero += 1,
                    FloatClass::Normal => {}
                }
            }
            prop_assert_eq!((counts.overflow, counts.subnormal, counts.underflow_to_zero),
                            (over, sub, zero), "{:?}", counts.format);
        }
    }

    #[test]
    fn code_histogram_counts_codes_in_range(codes in prop::collection::vec(-300i32..300, 0..2000),
                                            qmin in -200i32..0, span in 0i32..300) {
        let qmax = qmin + span;
        let h = code_histogram(&codes, qmin, qmax);
        prop_assert_eq!(h.len(), (span + 1) as usize);
        let inside = codes.iter().filter(|&&c| c >= qmin && c <= qmax).count() as u64;
        prop_assert_eq!(h.iter().sum::<u64>(), inside);
        for (i, &n) in h.iter().enumerate() {
            let code = qmin + i as i32;
            prop_assert_eq!(n, codes.iter().filter(|&&c| c == code).count() as u64);
        }
    }
}
