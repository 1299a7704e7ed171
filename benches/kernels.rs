//! Criterion benchmarks of the core's hot kernels on a 4096×4096 (16M element) f32 tensor.
//!
//! Run with `cargo bench --bench kernels` (about a minute: ten samples per kernel, short
//! measurement windows). The same work timed against numpy, PyTorch and memcpy is in
//! `scripts/bench_vs_numpy.py`; BENCHMARKS.md records the figures. Speed is never asserted.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quantscope::cancel::Cancel;
use quantscope::quant::{
    self, Calibration, Granularity, Outputs, QuantConfig, Scheme, quantize_tensor,
};
use quantscope::stats;
use quantscope::tensor::{Model, OwnedTensor};

/// Rows and columns of the benchmark tensor (the size the speed targets name).
const SIDE: usize = 4096;

/// Deterministic standard-normal f32 values (xorshift64* and Box–Muller), so every run and
/// every kernel sees the same data without a random-number crate.
fn normal_values(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.max(1);
    let mut next_unit = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        // 53 random bits scaled into (0, 1]: exact in f64, and never 0 so ln() is finite.
        (bits as f64 + 1.0) / (1u64 << 53) as f64
    };
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let radius = (-2.0 * next_unit().ln()).sqrt();
        let angle = std::f64::consts::TAU * next_unit();
        // Narrowing to f32 is the point: the benchmark tensor is f32.
        out.push((radius * angle.cos()) as f32);
        out.push((radius * angle.sin()) as f32);
    }
    out.truncate(len);
    out
}

/// Bytes of `len` f32 values, for criterion's throughput figures.
fn f32_bytes(len: usize) -> u64 {
    u64::try_from(len * std::mem::size_of::<f32>()).unwrap_or(u64::MAX)
}

fn quant_kernels(c: &mut Criterion) {
    let values = normal_values(SIDE * SIDE, 0);
    let shape = [SIDE, SIDE];
    let cancel = Cancel::never();
    let per_channel = QuantConfig {
        bits: 8,
        scheme: Scheme::Asymmetric,
        granularity: Granularity::DEFAULT_CHANNEL,
        ..QuantConfig::default()
    };
    let mut group = c.benchmark_group("quant_4096x4096_f32");
    group.throughput(Throughput::Bytes(f32_bytes(values.len())));
    // The speed target: calibrate, quantize, dequantize and measure, nothing stored.
    group.bench_function("per_channel_asym_int8_metrics", |b| {
        b.iter(|| {
            quantize_tensor(
                black_box(&values),
                &shape,
                &per_channel,
                Outputs::default(),
                &cancel,
            )
        })
    });
    // The same with codes and dequantized values written out (what `--output` needs).
    let both = Outputs {
        codes: true,
        dequantized: true,
    };
    group.bench_function("per_channel_asym_int8_with_outputs", |b| {
        b.iter(|| quantize_tensor(black_box(&values), &shape, &per_channel, both, &cancel))
    });
    let entropy = QuantConfig {
        calibration: Calibration::Entropy,
        ..QuantConfig::default()
    };
    group.bench_function("per_tensor_entropy_int8_metrics", |b| {
        b.iter(|| {
            quantize_tensor(
                black_box(&values),
                &shape,
                &entropy,
                Outputs::default(),
                &cancel,
            )
        })
    });
    // The calibrator alone: |x| histogram (2048 bins) and the KL search over 1921 candidates.
    group.bench_function("entropy_amax", |b| {
        b.iter(|| quant::entropy_amax_with_curve(black_box(&values), 8, &cancel))
    });
    group.finish();
}

fn stats_kernels(c: &mut Criterion) {
    let values = normal_values(SIDE * SIDE, 1);
    let cancel = Cancel::never();
    let mut group = c.benchmark_group("stats_16M_f32");
    group.throughput(Throughput::Bytes(f32_bytes(values.len())));
    group.bench_function("summarize", |b| {
        b.iter(|| stats::summarize(black_box(&values), &cancel))
    });
    group.bench_function("histogram_2048", |b| {
        b.iter(|| stats::histogram(black_box(&values), 2048, -6.0, 6.0, &cancel))
    });
    group.bench_function("abs_histogram_2048", |b| {
        b.iter(|| stats::abs_histogram(black_box(&values), 2048, 6.0, &cancel))
    });
    group.finish();
}

fn decode_kernels(c: &mut Criterion) {
    let values = normal_values(SIDE * SIDE, 2);
    let shape = vec![SIDE, SIDE];
    let tensors = vec![
        OwnedTensor::from_f16("f16", shape.clone(), &values),
        OwnedTensor::from_bf16("bf16", shape, &values),
    ];
    let Ok(model) = Model::from_tensors("bench", tensors) else {
        return;
    };
    let cancel = Cancel::never();
    let mut group = c.benchmark_group("decode_16M_to_f32");
    // Throughput counts the f32 output written (the input is half as many bytes).
    group.throughput(Throughput::Bytes(f32_bytes(values.len())));
    for (index, info) in model.tensors().iter().enumerate() {
        group.bench_function(info.name.as_str(), |b| {
            b.iter(|| model.values_f32(black_box(index), &cancel))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = quant_kernels, stats_kernels, decode_kernels
}
criterion_main!(benches);
