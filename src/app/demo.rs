//! The built-in demo model: deterministic tensors generated in code with the shapes and
//! distributions of a small transformer, so every view has something real-looking to show on a
//! fresh machine with no files.
//!
//! Values come from splitmix64 + Box-Muller, seeded per tensor and per chunk of 64K values, so
//! the big tensor is generated in parallel and still identical for any thread count.

use rayon::prelude::*;

use crate::cancel::{Cancel, Cancelled};

/// The storage type of a demo tensor (its values are generated as f32 and then rounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoDtype {
    /// Stored as f32.
    F32,
    /// Stored as f16 (values rounded RNE by `half`).
    F16,
    /// Stored as bf16 (values rounded RNE by `half`).
    Bf16,
}

/// How the values of a demo tensor are distributed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    /// Gaussian N(mean, std²).
    Normal {
        /// Mean.
        mean: f32,
        /// Standard deviation.
        std: f32,
    },
    /// Student t with 3 degrees of freedom times `scale`: a long tail (token embeddings).
    LongTail {
        /// Scale of the t variable.
        scale: f32,
    },
    /// Gaussian weights whose listed input columns (last axis) are `factor` times larger, as
    /// the outlier features of LLMs.
    OutlierColumns {
        /// Standard deviation of the ordinary weights.
        std: f32,
        /// Magnification of the outlier columns.
        factor: f32,
        /// Every `every`-th column starting at `first` is an outlier column.
        first: usize,
        /// Spacing of the outlier columns.
        every: usize,
    },
}

/// The recipe for one demo tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoSpec {
    /// Tensor name, with dotted prefixes like a PyTorch state dict.
    pub name: String,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Storage type.
    pub dtype: DemoDtype,
    /// Value distribution.
    pub distribution: Distribution,
    /// Seed of this tensor's random stream.
    pub seed: u64,
}

impl DemoSpec {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The demo model's name as shown in the window title.
pub const DEMO_NAME: &str = "demo: tiny transformer (built in)";

/// Hidden size of the demo transformer.
const HIDDEN: usize = 256;
/// MLP width.
const MLP: usize = 1024;
/// Vocabulary size of the embedding.
const VOCAB: usize = 8192;

/// The recipes of every demo tensor, in file order.
pub fn demo_specs() -> Vec<DemoSpec> {
    let mut specs = Vec::new();
    let mut seed = 0x5EED_0000_u64;
    let mut push = |name: String, shape: Vec<usize>, dtype, distribution| {
        seed += 1;
        specs.push(DemoSpec {
            name,
            shape,
            dtype,
            distribution,
            seed,
        });
    };
    push(
        "embed_tokens.weight".into(),
        vec![VOCAB, HIDDEN],
        DemoDtype::F32,
        Distribution::LongTail { scale: 0.02 },
    );
    for layer in 0..2 {
        let p = format!("layers.{layer}");
        push(
            format!("{p}.input_layernorm.weight"),
            vec![HIDDEN],
            DemoDtype::F32,
            Distribution::Normal {
                mean: 1.0,
                std: 0.05,
            },
        );
        push(
            format!("{p}.input_layernorm.bias"),
            vec![HIDDEN],
            DemoDtype::F32,
            Distribution::Normal {
                mean: 0.0,
                std: 0.01,
            },
        );
        for proj in ["q_proj", "k_proj", "v_proj", "o_proj"] {
            // The Bf16 variant shows how a model stored in bf16 looks; the rest are f32.
            let dtype = if layer == 1 && proj == "q_proj" {
                DemoDtype::Bf16
            } else {
                DemoDtype::F32
            };
            push(
                format!("{p}.self_attn.{proj}.weight"),
                vec![HIDDEN, HIDDEN],
                dtype,
                Distribution::OutlierColumns {
                    std: 0.03,
                    factor: 12.0,
                    first: 17 + layer * 5,
                    every: 97,
                },
            );
        }
        push(
            format!("{p}.mlp.up_proj.weight"),
            vec![MLP, HIDDEN],
            DemoDtype::F32,
            Distribution::OutlierColumns {
                std: 0.025,
                factor: 20.0,
                first: 42,
                every: 128,
            },
        );
        let down_dtype = if layer == 1 {
            DemoDtype::F16
        } else {
            DemoDtype::F32
        };
        push(
            format!("{p}.mlp.down_proj.weight"),
            vec![HIDDEN, MLP],
            down_dtype,
            Distribution::OutlierColumns {
                std: 0.02,
                factor: 8.0,
                first: 300,
                every: 400,
            },
        );
    }
    push(
        "final_norm.weight".into(),
        vec![HIDDEN],
        DemoDtype::F32,
        Distribution::Normal {
            mean: 1.0,
            std: 0.08,
        },
    );
    push(
        "stress.dense_4096x4096.weight".into(),
        vec![4096, 4096],
        DemoDtype::F32,
        Distribution::OutlierColumns {
            std: 0.02,
            factor: 15.0,
            first: 1000,
            every: 1024,
        },
    );
    specs
}

/// splitmix64: a tiny, well-mixed PRNG (Vigna), enough for demo data.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in the open interval (0, 1).
    pub fn next_open01(&mut self) -> f64 {
        // 53 random bits fit an f64 mantissa exactly; +0.5 keeps the value away from 0.
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A pair of independent standard normals (Box-Muller).
    pub fn next_normal_pair(&mut self) -> (f64, f64) {
        let u1 = self.next_open01();
        let u2 = self.next_open01();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        (r * t.cos(), r * t.sin())
    }
}

/// Values per chunk: each chunk has its own seed so chunks can be generated in parallel.
const CHUNK: usize = 1 << 16;

/// Generates the values of one demo tensor (as f32, before any rounding to its dtype).
pub fn generate(spec: &DemoSpec, cancel: &Cancel) -> Result<Vec<f32>, Cancelled> {
    let n = spec.numel();
    let cols = spec.shape.last().copied().unwrap_or(1).max(1);
    let mut out = vec![0.0_f32; n];
    cancel.add_total(n as u64);
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .try_for_each(|(chunk_index, chunk)| {
            cancel.check()?;
            let mut rng = SplitMix64::new(
                spec.seed
                    .wrapping_mul(0x2545_F491_4F6C_DD1D)
                    .wrapping_add(chunk_index as u64),
            );
            let start = chunk_index * CHUNK;
            for (i, v) in chunk.iter_mut().enumerate() {
                let col = (start + i) % cols;
                *v = sample(&spec.distribution, col, &mut rng);
            }
            cancel.add_done(chunk.len() as u64);
            Ok(())
        })?;
    Ok(out)
}

fn sample(distribution: &Distribution, col: usize, rng: &mut SplitMix64) -> f32 {
    // Narrowing to f32 is the point: the demo tensors are f32 (or narrower) weights.
    match *distribution {
        Distribution::Normal { mean, std } => {
            (f64::from(mean) + f64::from(std) * rng.next_normal_pair().0) as f32
        }
        Distribution::LongTail { scale } => {
            let (z, a) = rng.next_normal_pair();
            let (b, c) = rng.next_normal_pair();
            // Student t with 3 degrees of freedom: z / sqrt(chi²(3) / 3).
            let chi2 = a * a + b * b + c * c;
            (f64::from(scale) * z / (chi2 / 3.0).sqrt().max(1e-3)) as f32
        }
        Distribution::OutlierColumns {
            std,
            factor,
            first,
            every,
        } => {
            let z = rng.next_normal_pair().0;
            let is_outlier = col >= first && (col - first).is_multiple_of(every.max(1));
            let s = if is_outlier { std * factor } else { std };
            (f64::from(s) * z) as f32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_reference_stream() {
        // First outputs of splitmix64 seeded with 0 (Vigna's reference implementation).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn specs_have_the_promised_tensors() {
        let specs = demo_specs();
        assert!(specs.iter().any(|s| s.dtype == DemoDtype::Bf16));
        assert!(specs.iter().any(|s| s.dtype == DemoDtype::F16));
        assert!(specs.iter().any(|s| s.shape == vec![4096, 4096]));
        let mut names: Vec<_> = specs.iter().map(|s| s.name.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), specs.len(), "names are unique");
    }

    #[test]
    fn generation_is_deterministic_and_has_the_right_moments() {
        let spec = DemoSpec {
            name: "n".into(),
            shape: vec![300, 1000],
            dtype: DemoDtype::F32,
            distribution: Distribution::Normal {
                mean: 1.0,
                std: 0.05,
            },
            seed: 9,
        };
        let a = generate(&spec, &Cancel::never()).expect("not cancelled");
        let b = generate(&spec, &Cancel::never()).expect("not cancelled");
        assert_eq!(a, b);
        let n = a.len() as f64;
        let mean = a.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = a
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        // 300k samples: the standard error of the mean is 0.05 / sqrt(3e5) ~ 1e-4.
        assert!((mean - 1.0).abs() < 1e-3, "mean {mean}");
        assert!((var.sqrt() - 0.05).abs() < 1e-3, "std {}", var.sqrt());
    }

    #[test]
    fn outlier_columns_are_large() {
        let spec = DemoSpec {
            name: "w".into(),
            shape: vec![512, 64],
            dtype: DemoDtype::F32,
            distribution: Distribution::OutlierColumns {
                std: 0.02,
                factor: 20.0,
                first: 5,
                every: 100,
            },
            seed: 3,
        };
        let v = generate(&spec, &Cancel::never()).expect("not cancelled");
        let col_rms = |c: usize| {
            let s: f64 = (0..512).map(|r| f64::from(v[r * 64 + c]).powi(2)).sum();
            (s / 512.0).sqrt()
        };
        // Column 5 has std 0.4, the others 0.02 (within sampling noise of 512 values).
        assert!((col_rms(5) - 0.4).abs() < 0.05);
        assert!((col_rms(6) - 0.02).abs() < 0.003);
    }

    #[test]
    fn cancelled_generation_stops() {
        let c = Cancel::new();
        c.cancel();
        let spec = &demo_specs()[0];
        assert!(generate(spec, &c).is_err());
    }
}
