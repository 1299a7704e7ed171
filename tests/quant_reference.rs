//! Whole-tensor quantization against the NUMERICS.md check values, hand-computed references and
//! properties: granularity shapes, edge cases, outlier split, determinism.

use proptest::prelude::*;
use quantscope::cancel::Cancel;
use quantscope::quant::{
    Calibration, Granularity, OutlierMode, OutlierThreshold, Outputs, Preset, QuantConfig,
    QuantError, Scheme, params_from_range, quantize, quantize_tensor,
};

const X: [f32; 5] = [-2.5, -1.0, 0.0, 1.0, 3.5];
const ALL: Outputs = Outputs {
    codes: true,
    dequantized: true,
};

fn cfg(preset: Preset, scheme: Scheme) -> QuantConfig {
    QuantConfig {
        preset,
        scheme,
        ..QuantConfig::default()
    }
}

fn run(values: &[f32], shape: &[usize], c: &QuantConfig) -> quantscope::quant::QuantResult {
    quantize_tensor(values, shape, c, ALL, &Cancel::never()).expect("valid input")
}

#[test]
fn numerics_check_values_through_the_tensor_pass() {
    for preset in Preset::ALL {
        let r = run(&X, &[5], &cfg(preset, Scheme::Symmetric));
        assert_eq!(
            r.codes.as_deref(),
            Some(&[-91, -36, 0, 36, 127][..]),
            "{preset:?}"
        );
        assert!(r.scale_shape.is_empty());
        let deq = r.dequantized.expect("asked for");
        if preset == Preset::PyTorch {
            assert!((deq[4] - 3.486_275).abs() < 1e-6);
        } else {
            assert_eq!(deq[4], 3.5);
        }
    }
    for (preset, want) in [
        (Preset::OnnxRuntime, [0, 64, 106, 148, 255]),
        (Preset::PyTorch, [0, 64, 106, 148, 255]),
        (Preset::TfLite, [0, 63, 106, 149, 255]),
        (Preset::Textbook, [0, 63, 106, 149, 255]),
    ] {
        let r = run(&X, &[5], &cfg(preset, Scheme::Asymmetric));
        assert_eq!(r.codes.as_deref(), Some(&want[..]), "{preset:?}");
        assert_eq!(r.zero_points, vec![106]);
        // Same MSE and SQNR either way: ties are a convention, not an accuracy difference.
        assert!(
            (r.metrics.mse - 6.92042e-5).abs() < 1e-9,
            "{}",
            r.metrics.mse
        );
        assert!((r.metrics.sqnr_db - 47.73).abs() < 0.005);
        assert_eq!(r.metrics.clipped, 0);
        assert_eq!((r.clip_min[0], r.clip_max[0]), (-2.5, 3.5));
    }
}

#[test]
fn seed_percentile_example() {
    // Seed: x = [-0.2, 0.1, 0.3, 5.0] with the 1st/99th percentiles clipped: 5.0 saturates.
    let x = [-0.2f32, 0.1, 0.3, 5.0];
    let c = QuantConfig {
        calibration: Calibration::Percentile(99.0),
        ..cfg(Preset::Textbook, Scheme::Asymmetric)
    };
    let r = run(&x, &[4], &c);
    assert!((r.clip_min[0] + 0.191).abs() < 1e-6);
    assert_eq!(r.codes.as_ref().map(|c| c[3]), Some(255));
    assert_eq!(r.metrics.clipped, 1);
    assert!((r.metrics.clipped_fraction - 0.25).abs() < 1e-15);
}

#[test]
fn constant_tensors_reconstruct_exactly() {
    for c in [0.1f32, 1.0, 2.5, 3.0e-5, 7.77, 1234.5] {
        for preset in Preset::ALL {
            for scheme in [Scheme::Symmetric, Scheme::Asymmetric] {
                if preset == Preset::TensorRt && scheme == Scheme::Asymmetric {
                    continue;
                }
                let r = run(&[c; 7], &[7], &cfg(preset, scheme));
                let d = r.dequantized.expect("asked for");
                if preset == Preset::PyTorch && scheme == Scheme::Symmetric {
                    // PyTorch's S = c/127.5 puts c at code 127.5, clamped to 127: c comes back
                    // as 127 * S (the 3.5 → 3.486275 of NUMERICS §2).
                    let s = c / 127.5;
                    assert!(d.iter().all(|&v| v == 127.0 * s), "{c}: {:?}", d[0]);
                    continue;
                }
                if preset == Preset::PyTorch && c == 3.0e-5 {
                    // c/255 < 2^-23, so PyTorch's floor S = 2^-23 applies: c/S = 251.66 → 252.
                    assert!(d.iter().all(|&v| v == 252.0 * f32::EPSILON), "{:?}", d[0]);
                    continue;
                }
                assert!(
                    d.iter().all(|&v| v == c),
                    "{c} {preset:?} {scheme:?}: {:?}",
                    d[0]
                );
                assert_eq!(r.metrics.sqnr_db, f64::INFINITY);
            }
        }
    }
}

#[test]
fn nan_and_inf_policy_in_the_tensor_pass() {
    let x = [1.0f32, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -1.0];
    let r = run(&x, &[5], &cfg(Preset::OnnxRuntime, Scheme::Asymmetric));
    // Range [-1, 1] from the finite values: S = 2/255, z = round(127.5) = 128 (RNE).
    assert_eq!(r.zero_points, vec![128]);
    let codes = r.codes.expect("asked for");
    assert_eq!(&codes[1..4], &[128, 255, 0]);
    let d = r.dequantized.expect("asked for");
    assert!(d[1].is_nan());
    assert_eq!(
        (r.metrics.count, r.metrics.nan_count, r.metrics.inf_count),
        (2, 1, 2)
    );
    // All NaN: degenerate range, every code z.
    let r = run(
        &[f32::NAN; 3],
        &[3],
        &cfg(Preset::OnnxRuntime, Scheme::Symmetric),
    );
    assert_eq!(r.degenerate_groups, 1);
    assert_eq!(r.codes, Some(vec![0, 0, 0]));
}

#[test]
fn scalars_and_empty_tensors_are_valid() {
    let r = run(&[2.0], &[], &cfg(Preset::OnnxRuntime, Scheme::Symmetric));
    assert_eq!(r.codes, Some(vec![127]));
    assert_eq!(r.dequantized, Some(vec![2.0]));
    for g in [
        Granularity::PerTensor,
        Granularity::PerChannel { axis: 1 },
        Granularity::PerGroup { size: 4 },
    ] {
        let c = QuantConfig {
            granularity: g,
            ..QuantConfig::default()
        };
        let r = run(&[], &[0, 3], &c);
        assert_eq!(r.codes, Some(vec![]));
        assert_eq!(r.metrics.count, 0);
        assert_eq!(r.bits_per_weight, 8.0);
    }
    let c = QuantConfig {
        granularity: Granularity::PerChannel { axis: 1 },
        ..QuantConfig::default()
    };
    assert_eq!(run(&[], &[0, 3], &c).scale_shape, vec![3]);
    assert_eq!(
        quantize_tensor(&[1.0; 5], &[2, 3], &c, ALL, &Cancel::never()),
        Err(QuantError::ShapeMismatch {
            expected: 6,
            got: 5
        })
    );
}

/// Pseudo-random values in [-scale, scale).
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

#[test]
fn per_channel_along_each_axis_matches_independent_groups() {
    let shape = [3usize, 4, 5];
    let x = values(60, 9, 2.0);
    for axis in 0..3 {
        for scheme in [Scheme::Symmetric, Scheme::Asymmetric] {
            let c = QuantConfig {
                granularity: Granularity::PerChannel { axis },
                ..cfg(Preset::OnnxRuntime, scheme)
            };
            let r = run(&x, &shape, &c);
            assert_eq!(r.scale_shape, vec![shape[axis]]);
            assert_eq!(r.scales.len(), shape[axis]);
            let codes = r.codes.expect("asked for");
            for (i, &v) in x.iter().enumerate() {
                let idx = [i / 20, (i / 5) % 4, i % 5];
                let g = idx[axis];
                // The group's own min/max, over all other axes.
                let members: Vec<f32> = x
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| [j / 20, (j / 5) % 4, j % 5][axis] == g)
                    .map(|(_, &v)| v)
                    .collect();
                let lo = members.iter().fold(f32::INFINITY, |a, &b| a.min(b));
                let hi = members.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                let p = params_from_range(f64::from(lo), f64::from(hi), &c);
                assert_eq!(r.scales[g], p.scale);
                assert_eq!(codes[i], quantize(v, &p, &c), "axis {axis} i {i}");
            }
        }
    }
}

#[test]
fn per_group_shapes_and_tail_group() {
    // 2 rows of 10 with G = 4: groups [4, 4, 2] per row → scale shape [2, 3], tail of 2.
    let x = values(20, 4, 1.0);
    let c = QuantConfig {
        granularity: Granularity::PerGroup { size: 4 },
        scheme: Scheme::Asymmetric,
        ..QuantConfig::default()
    };
    let r = run(&x, &[2, 10], &c);
    assert_eq!(r.scale_shape, vec![2, 3]);
    assert_eq!(r.scales.len(), 6);
    let tail = r.tail_group.expect("10 % 4 != 0");
    assert_eq!((tail.size, tail.count), (2, 2));
    let codes = r.codes.expect("asked for");
    for (i, &v) in x.iter().enumerate() {
        let (row, col) = (i / 10, i % 10);
        let g = row * 3 + col / 4;
        let members = &x[row * 10 + (col / 4) * 4..row * 10 + ((col / 4 + 1) * 4).min(10)];
        let lo = members.iter().fold(f32::INFINITY, |a, &b| a.min(b));
        let hi = members.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let p = params_from_range(f64::from(lo), f64::from(hi), &c);
        assert_eq!((r.scales[g], r.zero_points[g]), (p.scale, p.zero_point));
        assert_eq!(codes[i], quantize(v, &p, &c));
    }
    // Effective bits: 8 + 32 * 6 / 20 = 17.6.
    assert!((r.bits_per_weight - 17.6).abs() < 1e-12);
    // Exact multiple: no tail. A 1-D tensor gets scale shape [ceil(n / G)].
    let r = run(
        &x,
        &[20],
        &QuantConfig {
            granularity: Granularity::PerGroup { size: 5 },
            ..c.clone()
        },
    );
    assert_eq!((r.scale_shape.clone(), r.tail_group), (vec![4], None));
}

#[test]
fn thread_count_does_not_change_any_number() {
    let x = values(300_000, 21, 3.0);
    let c = QuantConfig {
        granularity: Granularity::PerChannel { axis: 0 },
        scheme: Scheme::Asymmetric,
        ..QuantConfig::default()
    };
    let many = run(&x, &[600, 500], &c);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let one = pool.install(|| run(&x, &[600, 500], &c));
    assert_eq!(many, one);
    // And the fused metrics agree with a plain sequential pass over the dequantized values.
    let deq = many.dequantized.as_ref().expect("asked for");
    let seq = quantscope::quant::metrics::compare(&x, deq);
    let rel = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs());
    assert!(rel(seq.mse, many.metrics.mse));
    assert!(rel(seq.mae, many.metrics.mae));
    assert!(rel(seq.sqnr_db, many.metrics.sqnr_db));
    assert_eq!(seq.max_abs_error, many.metrics.max_abs_error);
    // Codes-only and metrics-only runs give the same metrics.
    let lean =
        quantize_tensor(&x, &[600, 500], &c, Outputs::default(), &Cancel::never()).expect("ok");
    assert_eq!(lean.metrics, many.metrics);
    assert!(lean.codes.is_none() && lean.dequantized.is_none());
}

#[test]
fn cancellation_stops_the_pass() {
    let cancel = Cancel::new();
    cancel.cancel();
    let x = values(200_000, 1, 1.0);
    let r = quantize_tensor(&x, &[200_000], &QuantConfig::default(), ALL, &cancel);
    assert!(matches!(r, Err(QuantError::Cancelled(_))));
}

#[test]
fn outlier_elements_stay_fp16_and_help() {
    let mut x = values(1000, 5, 1.0);
    x[10] = 40.0;
    x[500] = -25.0;
    let c = QuantConfig {
        outliers: OutlierMode::Elements,
        outlier_threshold: OutlierThreshold::Absolute(6.0),
        ..cfg(Preset::OnnxRuntime, Scheme::Symmetric)
    };
    let r = run(&x, &[1000], &c);
    assert_eq!(r.outliers.count, 2);
    assert!((r.outliers.fraction - 0.002).abs() < 1e-15);
    let d = r.dequantized.expect("asked for");
    assert_eq!(d[10], half::f16::from_f32(40.0).to_f32());
    assert_eq!(d[500], -25.0);
    assert_eq!(r.codes.as_ref().map(|c| c[10]), Some(0));
    // The range comes from the rest: absmax < 1.
    assert!(r.clip_max[0] < 1.0);
    let plain = r.outliers.without_split.expect("split active");
    assert!(
        r.metrics.mse < plain.mse / 100.0,
        "{} vs {}",
        r.metrics.mse,
        plain.mse
    );
    // 8 + 16/1000 for the scale, plus 0.2% of 48 bits for the sparse FP16 outliers.
    assert!((r.bits_per_weight - (8.016 + 0.002 * 48.0)).abs() < 1e-12);
    // k * std: std of this data is ~1.4, 6 std ≈ 8.6 → the same two outliers.
    let c = QuantConfig {
        outlier_threshold: OutlierThreshold::StdMultiple(6.0),
        ..c
    };
    assert_eq!(run(&x, &[1000], &c).outliers.count, 2);
}

#[test]
fn outlier_columns_follow_llm_int8() {
    // 4 rows x 5 columns; column 2 holds one |x| >= 6 → the whole column stays FP16.
    let mut x = values(20, 8, 1.0);
    x[7] = 9.0; // row 1, col 2
    let c = QuantConfig {
        outliers: OutlierMode::Columns,
        outlier_threshold: OutlierThreshold::Absolute(6.0),
        ..cfg(Preset::OnnxRuntime, Scheme::Symmetric)
    };
    let r = run(&x, &[4, 5], &c);
    assert_eq!((r.outliers.columns, r.outliers.count), (1, 4));
    let d = r.dequantized.expect("asked for");
    for row in 0..4 {
        let i = row * 5 + 2;
        assert_eq!(d[i], half::f16::from_f32(x[i]).to_f32());
    }
}

#[test]
fn manual_range_clips_and_matches_the_single_value_kernel() {
    // A hand-dragged range [-1, 1] on the seed vector: S = 2/254 = 1/127 symmetric; -2.5 and 3.5
    // clip to -127 and 127; -1 and 1 land exactly on -127 and 127.
    let manual = QuantConfig {
        calibration: Calibration::Manual { lo: -1.0, hi: 1.0 },
        ..cfg(Preset::OnnxRuntime, Scheme::Symmetric)
    };
    let r = run(&X, &[5], &manual);
    assert_eq!(r.codes.as_deref(), Some(&[-127, -127, 0, 127, 127][..]));
    assert_eq!(r.metrics.clipped, 2);
    let p = params_from_range(-1.0, 1.0, &manual);
    assert_eq!(r.scales, vec![p.scale]);
    for (&x, &q) in X.iter().zip(r.codes.as_deref().unwrap_or_default()) {
        assert_eq!(quantize(x, &p, &manual), q);
    }
    let backwards = QuantConfig {
        calibration: Calibration::Manual { lo: 1.0, hi: -1.0 },
        ..manual.clone()
    };
    assert!(matches!(
        backwards.validate(&[5]),
        Err(QuantError::ManualRange { .. })
    ));
    let infinite = QuantConfig {
        calibration: Calibration::Manual {
            lo: f32::NEG_INFINITY,
            hi: 1.0,
        },
        ..manual
    };
    assert!(matches!(
        infinite.validate(&[5]),
        Err(QuantError::ManualRange { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn error_bounded_by_half_step_inside_the_range(
        raw in prop::collection::vec(-1.0e3f32..1.0e3, 1..200),
        preset in prop::sample::select(Preset::ALL.to_vec()),
        asym in any::<bool>(),
    ) {
        let scheme = if asym && preset != Preset::TensorRt { Scheme::Asymmetric } else { Scheme::Symmetric };
        let c = cfg(preset, scheme);
        let r = run(&raw, &[raw.len()], &c);
        let d = r.dequantized.expect("asked for");
        let s = f64::from(r.scales[0]);
        for (&x, &xh) in raw.iter().zip(&d) {
            let err = (f64::from(xh) - f64::from(x)).abs();
            prop_assert!(err <= s / 2.0 * (1.0 + 1e-5) + f64::from(x.abs()) * 2.5e-7, "x={} xh={} S={}", x, xh, s);
        }
        // Only PyTorch's symmetric S = absmax/127.5 clips (absmax lands on code 127.5).
        if !(preset == Preset::PyTorch && scheme == Scheme::Symmetric) {
            prop_assert_eq!(r.metrics.clipped, 0);
        }
    }
}
