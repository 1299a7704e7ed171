//! Criterion benchmarks of the planner's allocator on a synthetic 300-tensor × 40-candidate
//! table: building the problem (frontiers, hulls, sorted segments) once, then re-allocating
//! for a new budget (the app's budget slider; target < 20 ms), the curve and the uniform
//! recipes.
//!
//! Run with `cargo bench --bench plan`. Speed is never asserted.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use quantscope::plan::sweep::{Measurement, Outcome, SweepTable, SweepTensor, TensorStatus};
use quantscope::plan::{Budget, Candidate, Objective, Problem, Rules};
use quantscope::quant::{Calibration, Granularity};
use quantscope::tensor::DType;

/// Tensors and candidates of the benchmark table.
const TENSORS: usize = 300;
const CANDIDATES: usize = 40;

/// A plausible table: candidate k stores 2 + k·0.16 bits per weight with a relative error
/// falling about 6 dB per bit, perturbed per tensor (a deterministic LCG) so hulls differ;
/// every seventh candidate is not applicable to every fifth tensor.
fn table() -> SweepTable {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // 24 random bits as a fraction in [0, 1).
        ((s >> 40) as f64) / f64::from(1u32 << 24)
    };
    let candidates: Vec<Candidate> = (0..CANDIDATES)
        .map(|k| {
            let bits = 2 + (k % 7) as u8;
            let size = 32usize << (k % 3);
            let cal = if k % 2 == 0 {
                Calibration::MinMax
            } else {
                Calibration::Mse
            };
            let mut c = Candidate::affine(bits, Granularity::PerGroup { size }, cal);
            c.id = format!("c{k}");
            c
        })
        .collect();
    let tensors = (0..TENSORS)
        .map(|t| {
            let numel = 4096u64 * (1 + (t as u64 % 16));
            let sensitivity = 0.2 + 4.0 * next();
            let outcomes = (0..CANDIDATES)
                .map(|k| {
                    if k % 7 == 3 && t % 5 == 0 {
                        return Outcome::NotApplicable {
                            reason: "bench".into(),
                        };
                    }
                    let bpw = 2.0 + 0.16 * k as f64 + 0.05 * next();
                    let rel = sensitivity * 4f64.powf(-bpw) * (1.0 + 0.3 * next());
                    let storage_bits = (bpw * numel as f64).round() as u64;
                    Outcome::Measured(Measurement {
                        storage_bits,
                        bits_per_weight: storage_bits as f64 / numel as f64,
                        mse: rel,
                        rel_mse: rel,
                        sqnr_db: -10.0 * rel.log10(),
                        cosine: None,
                        max_abs_error: 0.0,
                        weighted: None,
                    })
                })
                .collect();
            SweepTensor {
                name: format!("blk.{t}.weight"),
                shape: vec![64, numel as usize / 64],
                dtype: DType::BF16,
                numel,
                stored_bits: numel * 16,
                status: TensorStatus::Measured { weighted: false },
                outcomes,
            }
        })
        .collect();
    SweepTable {
        model: "bench".into(),
        candidates,
        tensors,
        importance_unmatched: Vec::new(),
        evaluated: TENSORS * CANDIDATES,
        cached: 0,
        elapsed_ms: 0.0,
    }
}

fn allocator(c: &mut Criterion) {
    let t = table();
    let rules = Rules::default();
    let mut group = c.benchmark_group("allocate_300x40");
    group.bench_function("problem_new", |b| {
        b.iter(|| Problem::new(black_box(&t), &rules, Objective::RelMse))
    });
    let Ok(problem) = Problem::new(&t, &rules, Objective::RelMse) else {
        return;
    };
    for bpw in [2.5, 4.5, 6.0] {
        group.bench_function(format!("allocate_{bpw}_bpw"), |b| {
            b.iter(|| problem.allocate(Budget::BitsPerWeight(black_box(bpw))))
        });
    }
    group.bench_function("curve_2_to_8.5_step_0.25", |b| {
        b.iter(|| problem.curve(2.0, 8.5, black_box(0.25)))
    });
    group.bench_function("uniform_all_40", |b| {
        b.iter(|| {
            (0..CANDIDATES)
                .filter_map(|k| problem.uniform(&t, k))
                .count()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    targets = allocator
}
criterion_main!(benches);
