//! The model-wide sweep: every float tensor × every candidate → its error and its true storage,
//! streamed tensor by tensor, parallel, cancellable and cached (NUMERICS.md §9).
//!
//! One tensor at a time is decoded to f32; its missing candidates are evaluated (in parallel
//! for tensors below [`SEQUENTIAL_FROM`] elements, one after another with parallel kernels
//! above it, so at most one large working copy lives at a time), and the f32 copy is dropped
//! before the next tensor. Peak memory is therefore about the largest tensor's f32 copy plus,
//! per running candidate, a working set bounded by that tensor (less for affine candidates:
//! they measure without materialising, or in row chunks of [`WEIGHTED_CHUNK`] elements when an
//! importance matrix needs the per-element errors).
//!
//! Errors per tensor t and candidate c, over the finite values (§6, §9): MSE, relative MSE =
//! MSE / mean(x²), SQNR, cosine and max |e|; with an importance matrix (weights w_j per input
//! column), also the weighted MSE sum_ij w_j e_ij² / sum_ij w_j and the weighted relative MSE
//! sum_ij w_j e_ij² / sum_ij w_j x_ij². Storage is counted in whole bits with every scale.
//!
//! Results are cached by tensor identity (file path, size and modification time, or the
//! bytes' hash for in-memory models), tensor name, dtype, shape, candidate and importance
//! weights, so a sweep with one more candidate measures only that one.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::candidate::{Candidate, CandidateKind, FormatCandidate};
use crate::cancel::{Cancel, Cancelled};
use crate::quant::metrics::{MetricAcc, Metrics};
use crate::quant::tensor::{CHUNK, Outputs, quantize_tensor};
use crate::quant::{Granularity, QuantConfig, QuantError};
use crate::tensor::imatrix::{ImportanceMatrix, TensorImportance};
use crate::tensor::{DType, LoadError, Model};

/// Tensors with at least this many elements evaluate their candidates one after another
/// (each kernel is parallel inside); smaller tensors evaluate candidates in parallel.
pub const SEQUENTIAL_FROM: usize = 1 << 22;

/// Elements per row chunk when per-element errors are needed (importance weighting).
pub const WEIGHTED_CHUNK: usize = 1 << 20;

/// What a deployed-format quantizer produced for one tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum FormatOutcome {
    /// The format cannot store this tensor (the reason names the rule, e.g. a row length that
    /// is not a multiple of the block).
    NotApplicable(String),
    /// The dequantized values (same length as the input) and the stored size in bits, every
    /// scale, minimum and super-block field counted.
    Quantized {
        /// The reconstruction x_hat, row-major like the input.
        dequantized: Vec<f32>,
        /// Stored bits of the whole tensor.
        storage_bits: u64,
    },
    /// The error metrics measured by the evaluator itself (no importance weighting asked for;
    /// nothing is materialised), and the stored size in bits.
    Metrics {
        /// The metrics of the reconstruction against the input (NUMERICS.md §6).
        metrics: Metrics,
        /// Stored bits of the whole tensor.
        storage_bits: u64,
    },
}

/// Why a format evaluator failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatFailure {
    /// The job was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// Anything else (the message names it).
    #[error("{0}")]
    Failed(String),
}

impl From<Cancelled> for FormatFailure {
    fn from(_: Cancelled) -> Self {
        FormatFailure::Cancelled
    }
}

/// The extension point through which deployed formats join the sweep: the plan layer knows
/// formats only by name and asks this evaluator to quantize and dequantize them.
pub trait FormatEvaluator: Send + Sync {
    /// Whether this evaluator implements the format `name`.
    fn knows(&self, name: &str) -> bool;

    /// Quantizes `values` (row-major `shape`) in `format` and dequantizes them back.
    /// `importance`, when given, holds the per-column weights of an importance matrix (formats
    /// whose reference takes one use it in their search); the sweep then needs the dequantized
    /// values ([`FormatOutcome::Quantized`]) for the weighted errors, otherwise the metrics
    /// alone ([`FormatOutcome::Metrics`]) suffice.
    fn evaluate(
        &self,
        format: &FormatCandidate,
        values: &[f32],
        shape: &[usize],
        importance: Option<&TensorImportance<'_>>,
        cancel: &Cancel,
    ) -> Result<FormatOutcome, FormatFailure>;
}

/// The importance-weighted errors of one measurement (NUMERICS.md §9).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WeightedError {
    /// sum_ij w_j e_ij² / sum_ij w_j (0 when every weight is 0).
    pub mse: f64,
    /// sum_ij w_j e_ij² / sum_ij w_j x_ij².
    pub rel_mse: f64,
    /// 10 log10(sum w x² / sum w e²); +inf when the weighted error is 0.
    pub sqnr_db: f64,
}

/// The error and storage of one candidate on one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Stored bits of the whole tensor, every scale counted.
    pub storage_bits: u64,
    /// storage_bits / numel.
    pub bits_per_weight: f64,
    /// Mean squared error over the finite values.
    pub mse: f64,
    /// MSE / mean(x²) (= 10^(-SQNR/10)); 0 for an exact reconstruction, +inf when the tensor
    /// is all zeros but the reconstruction is not.
    pub rel_mse: f64,
    /// SQNR in dB (+inf for an exact reconstruction).
    pub sqnr_db: f64,
    /// Cosine similarity of x and x_hat (None when either has norm 0).
    pub cosine: Option<f64>,
    /// Largest |e|.
    pub max_abs_error: f64,
    /// The importance-weighted errors, when an importance matrix weights this tensor.
    pub weighted: Option<WeightedError>,
}

impl Measurement {
    /// The MSE the planner optimises: the weighted one when present.
    pub fn planning_mse(&self) -> f64 {
        self.weighted.map_or(self.mse, |w| w.mse)
    }

    /// The relative MSE the planner optimises: the weighted one when present.
    pub fn planning_rel_mse(&self) -> f64 {
        self.weighted.map_or(self.rel_mse, |w| w.rel_mse)
    }

    /// The SQNR matching [`Measurement::planning_rel_mse`].
    pub fn planning_sqnr_db(&self) -> f64 {
        self.weighted.map_or(self.sqnr_db, |w| w.sqnr_db)
    }
}

/// One cell of the sweep table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Measured.
    Measured(Measurement),
    /// The candidate cannot store this tensor; never silently replaced.
    NotApplicable {
        /// Why (e.g. "a group of 128 is larger than the row of 64").
        reason: String,
    },
}

impl Outcome {
    /// The measurement, if the candidate applies.
    pub fn measurement(&self) -> Option<&Measurement> {
        match self {
            Outcome::Measured(m) => Some(m),
            Outcome::NotApplicable { .. } => None,
        }
    }
}

/// Whether a tensor was measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TensorStatus {
    /// Every candidate has an outcome.
    Measured {
        /// An importance matrix weights this tensor's errors.
        weighted: bool,
    },
    /// Not planned (integers, empty tensors, dtypes that do not decode); kept as stored.
    NotPlanned {
        /// Why.
        reason: String,
    },
}

/// One tensor's row of the sweep table.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepTensor {
    /// The tensor's name.
    pub name: String,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Stored dtype.
    pub dtype: DType,
    /// Element count.
    pub numel: u64,
    /// Bits the tensor takes as stored in the file (its data size × 8).
    pub stored_bits: u64,
    /// Measured or not planned.
    pub status: TensorStatus,
    /// One outcome per candidate of the table, in the table's order (empty when not planned).
    pub outcomes: Vec<Outcome>,
}

/// The whole measurement: tensors × candidates.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepTable {
    /// The model's display name.
    pub model: String,
    /// The candidates, in column order.
    pub candidates: Vec<Candidate>,
    /// Every tensor of the model, in file order.
    pub tensors: Vec<SweepTensor>,
    /// Importance-matrix entries that name no tensor of the model (sorted).
    pub importance_unmatched: Vec<String>,
    /// Evaluations actually run (the rest came from the cache).
    pub evaluated: usize,
    /// Evaluations served by the cache.
    pub cached: usize,
    /// Wall time of the sweep in milliseconds.
    pub elapsed_ms: f64,
}

impl SweepTable {
    /// The column of candidate `id`.
    pub fn candidate_index(&self, id: &str) -> Option<usize> {
        self.candidates.iter().position(|c| c.id == id)
    }
}

/// Why a sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A tensor could not be read.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The importance matrix's entry does not fit the tensor of the same name.
    #[error("importance matrix entry for '{tensor}' does not fit the tensor: {reason}")]
    Importance {
        /// The tensor.
        tensor: String,
        /// Why.
        reason: String,
    },
    /// A format evaluator failed (as opposed to declaring the format not applicable).
    #[error("format {format} failed on tensor '{tensor}': {message}")]
    Format {
        /// The format.
        format: String,
        /// The tensor.
        tensor: String,
        /// The evaluator's message.
        message: String,
    },
    /// The job was cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl From<Cancelled> for SweepError {
    fn from(_: Cancelled) -> Self {
        SweepError::Cancelled
    }
}

/// What the sweep reads besides the model and the candidates.
#[derive(Clone, Copy, Default)]
pub struct SweepOptions<'a> {
    /// Per-column importance weights (llama.cpp imatrix), matched to tensors by exact name.
    pub importance: Option<&'a ImportanceMatrix>,
    /// The deployed formats; without it format candidates are "not applicable".
    pub formats: Option<&'a dyn FormatEvaluator>,
}

/// Where a tensor's bytes come from, for the cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Source {
    /// A file, by path, size and modification time.
    File {
        path: PathBuf,
        size: u64,
        modified: Option<SystemTime>,
    },
    /// In-memory bytes, by hash.
    Content(u64),
}

/// The cache key of one (tensor, candidate) evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    source: Source,
    tensor: String,
    dtype: DType,
    shape: Vec<usize>,
    candidate: CandidateKind,
    /// Hash of the importance weights applied (None: unweighted).
    importance: Option<u64>,
}

/// Results of earlier sweeps, shared across sweeps of the same (or another) model. Cheap to
/// keep: one small [`Outcome`] per (tensor, candidate).
#[derive(Debug, Default)]
pub struct SweepCache {
    entries: Mutex<HashMap<CacheKey, Outcome>>,
}

impl SweepCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cached evaluations.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |m| m.len())
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, key: &CacheKey) -> Option<Outcome> {
        self.entries.lock().ok()?.get(key).cloned()
    }

    fn insert(&self, key: CacheKey, outcome: Outcome) {
        if let Ok(mut map) = self.entries.lock() {
            map.insert(key, outcome);
        }
    }
}

/// Progress of a sweep, reported after each tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepProgress<'a> {
    /// Index of the tensor just finished.
    pub index: usize,
    /// Number of tensors.
    pub count: usize,
    /// Its name.
    pub name: &'a str,
}

/// Measures every float tensor of `model` under every candidate (see the module
/// documentation). `on_tensor` is called after each tensor; `cancel` is checked between
/// kernel chunks and its progress counts elements × candidates still to evaluate.
pub fn sweep(
    model: &Model,
    candidates: &[Candidate],
    options: SweepOptions<'_>,
    cache: &SweepCache,
    cancel: &Cancel,
    on_tensor: &mut dyn FnMut(SweepProgress<'_>),
) -> Result<SweepTable, SweepError> {
    let started = Instant::now();
    let files = file_sources(model);
    // First pass: what each tensor needs (cheap; no decoding), so progress has a total.
    let mut plans = Vec::with_capacity(model.tensors().len());
    let mut total_units = 0u64;
    for (index, info) in model.tensors().iter().enumerate() {
        let plan = plan_tensor(model, index, candidates, options, cache, &files)?;
        if let TensorPlan::Measure { missing, .. } = &plan {
            // At most 2^64 element-evaluations: saturate rather than wrap.
            total_units =
                total_units.saturating_add(info.numel().saturating_mul(missing.len() as u64));
        }
        plans.push(plan);
    }
    cancel.add_total(total_units);

    let mut tensors = Vec::with_capacity(plans.len());
    let (mut evaluated, mut cached) = (0usize, 0usize);
    let count = plans.len();
    for (index, plan) in plans.into_iter().enumerate() {
        cancel.check()?;
        let info = &model.tensors()[index];
        let mut row = SweepTensor {
            name: info.name.clone(),
            shape: info.shape.clone(),
            dtype: info.dtype,
            numel: info.numel(),
            stored_bits: info.size_bytes.saturating_mul(8),
            status: TensorStatus::NotPlanned {
                reason: String::new(),
            },
            outcomes: Vec::new(),
        };
        match plan {
            TensorPlan::Skip(reason) => row.status = TensorStatus::NotPlanned { reason },
            TensorPlan::Measure {
                keys,
                mut outcomes,
                missing,
            } => {
                let weighted = keys.first().is_some_and(|k| k.importance.is_some());
                cached += outcomes.iter().filter(|o| o.is_some()).count();
                if !missing.is_empty() {
                    match model.values_f32(index, &cancel.child()) {
                        Ok(values) => {
                            let fresh = measure_tensor(
                                &values, info, candidates, &missing, options, cancel,
                            )?;
                            evaluated += missing.len();
                            for (&c, outcome) in missing.iter().zip(fresh) {
                                if let Some(key) = keys.get(c) {
                                    cache.insert(key.clone(), outcome.clone());
                                }
                                if let Some(slot) = outcomes.get_mut(c) {
                                    *slot = Some(outcome);
                                }
                            }
                        }
                        Err(LoadError::Cancelled) => return Err(SweepError::Cancelled),
                        Err(LoadError::Unsupported { message, .. }) => {
                            row.status = TensorStatus::NotPlanned {
                                reason: format!("cannot decode: {message}"),
                            };
                            tensors.push(row);
                            on_tensor(SweepProgress {
                                index,
                                count,
                                name: &info.name,
                            });
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                row.status = TensorStatus::Measured { weighted };
                row.outcomes = outcomes
                    .into_iter()
                    .map(|o| {
                        o.unwrap_or_else(|| Outcome::NotApplicable {
                            reason: "not measured".into(),
                        })
                    })
                    .collect();
            }
        }
        on_tensor(SweepProgress {
            index,
            count,
            name: &info.name,
        });
        tensors.push(row);
    }
    let mut importance_unmatched: Vec<String> = options
        .importance
        .map(|m| {
            m.entries
                .keys()
                .filter(|name| model.find(name).is_none())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    importance_unmatched.sort();
    Ok(SweepTable {
        model: model.name().to_string(),
        candidates: candidates.to_vec(),
        tensors,
        importance_unmatched,
        evaluated,
        cached,
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

/// What one tensor needs.
enum TensorPlan {
    /// Not planned, with the reason.
    Skip(String),
    /// Measured: a key per candidate, the cached outcomes, the candidates still to evaluate.
    Measure {
        keys: Vec<CacheKey>,
        outcomes: Vec<Option<Outcome>>,
        missing: Vec<usize>,
    },
}

/// The identity of each model file (None for in-memory models and unreadable metadata).
fn file_sources(model: &Model) -> Vec<Option<Source>> {
    model
        .files()
        .iter()
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some(Source::File {
                path: path.canonicalize().unwrap_or_else(|_| path.clone()),
                size: meta.len(),
                modified: meta.modified().ok(),
            })
        })
        .collect()
}

/// Decides whether tensor `index` is planned, and which candidates the cache already holds.
fn plan_tensor(
    model: &Model,
    index: usize,
    candidates: &[Candidate],
    options: SweepOptions<'_>,
    cache: &SweepCache,
    files: &[Option<Source>],
) -> Result<TensorPlan, SweepError> {
    let info = &model.tensors()[index];
    if !info.dtype.is_float() {
        return Ok(TensorPlan::Skip(format!(
            "{} tensor: not a float weight",
            info.dtype
        )));
    }
    if info.numel() == 0 {
        return Ok(TensorPlan::Skip("empty tensor".into()));
    }
    let importance = match options.importance.and_then(|m| m.get(&info.name)) {
        None => None,
        Some(entry) => {
            let fit = entry
                .for_shape(&info.shape)
                .map_err(|reason| SweepError::Importance {
                    tensor: info.name.clone(),
                    reason,
                })?;
            Some(importance_hash(&fit))
        }
    };
    let source = match files.get(info.file_index).cloned().flatten() {
        Some(source) => source,
        None => {
            let mut h = DefaultHasher::new();
            model.raw_bytes(index)?.hash(&mut h);
            Source::Content(h.finish())
        }
    };
    let keys: Vec<CacheKey> = candidates
        .iter()
        .map(|c| CacheKey {
            source: source.clone(),
            tensor: info.name.clone(),
            dtype: info.dtype,
            shape: info.shape.clone(),
            candidate: c.kind.clone(),
            importance,
        })
        .collect();
    let outcomes: Vec<Option<Outcome>> = keys.iter().map(|k| cache.get(k)).collect();
    let missing = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| o.is_none())
        .map(|(i, _)| i)
        .collect();
    Ok(TensorPlan::Measure {
        keys,
        outcomes,
        missing,
    })
}

/// A stable hash of the importance weights applied to one tensor.
fn importance_hash(fit: &TensorImportance<'_>) -> u64 {
    let mut h = DefaultHasher::new();
    fit.columns.hash(&mut h);
    fit.elements_per_matrix.hash(&mut h);
    for w in fit.weights {
        w.to_bits().hash(&mut h);
    }
    h.finish()
}

/// Everything the evaluation of one tensor shares across candidates.
struct TensorContext<'a> {
    name: &'a str,
    values: &'a [f32],
    shape: &'a [usize],
    /// Sum of x² over the finite values, and their count.
    sum_x2: f64,
    finite: u64,
    importance: Option<TensorImportance<'a>>,
}

/// Evaluates the candidates `missing` (indices into `candidates`) on one decoded tensor.
fn measure_tensor(
    values: &[f32],
    info: &crate::tensor::TensorInfo,
    candidates: &[Candidate],
    missing: &[usize],
    options: SweepOptions<'_>,
    cancel: &Cancel,
) -> Result<Vec<Outcome>, SweepError> {
    let (sum_x2, finite) = sum_of_squares(values, cancel)?;
    let importance = match options.importance.and_then(|m| m.get(&info.name)) {
        None => None,
        Some(entry) => {
            Some(
                entry
                    .for_shape(&info.shape)
                    .map_err(|reason| SweepError::Importance {
                        tensor: info.name.clone(),
                        reason,
                    })?,
            )
        }
    };
    let ctx = TensorContext {
        name: &info.name,
        values,
        shape: &info.shape,
        sum_x2,
        finite,
        importance,
    };
    // usize fits in u64.
    let units = values.len() as u64;
    let todo: Vec<&Candidate> = missing.iter().filter_map(|&c| candidates.get(c)).collect();
    let one = |candidate: &&Candidate| -> Result<Outcome, SweepError> {
        let outcome = evaluate(&ctx, candidate, options.formats, cancel)?;
        cancel.add_done(units);
        Ok(outcome)
    };
    if values.len() >= SEQUENTIAL_FROM {
        todo.iter().map(one).collect()
    } else {
        todo.par_iter().map(one).collect()
    }
}

/// Sum of x² over the finite values and their count, in fixed chunks (thread-count
/// independent).
fn sum_of_squares(values: &[f32], cancel: &Cancel) -> Result<(f64, u64), Cancelled> {
    let parts: Vec<(f64, u64)> = values
        .par_chunks(CHUNK)
        .map(|chunk| {
            cancel.check()?;
            let mut s = 0.0f64;
            let mut n = 0u64;
            for &x in chunk {
                if x.is_finite() {
                    let d = f64::from(x);
                    s += d * d;
                    n += 1;
                }
            }
            Ok((s, n))
        })
        .collect::<Result<_, Cancelled>>()?;
    Ok(parts
        .iter()
        .fold((0.0, 0), |(s, n), &(ps, pn)| (s + ps, n + pn)))
}

/// Evaluates one candidate on one tensor.
fn evaluate(
    ctx: &TensorContext<'_>,
    candidate: &Candidate,
    formats: Option<&dyn FormatEvaluator>,
    cancel: &Cancel,
) -> Result<Outcome, SweepError> {
    match &candidate.kind {
        CandidateKind::Affine(cfg) => evaluate_affine(ctx, cfg, cancel),
        CandidateKind::Format(format) => {
            let Some(evaluator) = formats.filter(|f| f.knows(&format.name)) else {
                return Ok(Outcome::NotApplicable {
                    reason: format!("format {} is not available in this build", format.name),
                });
            };
            let outcome = evaluator
                .evaluate(
                    format,
                    ctx.values,
                    ctx.shape,
                    ctx.importance.as_ref(),
                    &cancel.child(),
                )
                .map_err(|e| match e {
                    FormatFailure::Cancelled => SweepError::Cancelled,
                    FormatFailure::Failed(message) => SweepError::Format {
                        format: format.name.clone(),
                        tensor: ctx.name.to_string(),
                        message,
                    },
                })?;
            match outcome {
                FormatOutcome::NotApplicable(reason) => Ok(Outcome::NotApplicable { reason }),
                FormatOutcome::Metrics {
                    metrics,
                    storage_bits,
                } => {
                    if ctx.importance.is_some() {
                        return Err(SweepError::Format {
                            format: format.name.clone(),
                            tensor: ctx.name.to_string(),
                            message: "returned metrics where weighted errors need the values"
                                .into(),
                        });
                    }
                    Ok(Outcome::Measured(unweighted(ctx, &metrics, storage_bits)))
                }
                FormatOutcome::Quantized {
                    dequantized,
                    storage_bits,
                } => {
                    if dequantized.len() != ctx.values.len() {
                        return Err(SweepError::Format {
                            format: format.name.clone(),
                            tensor: ctx.name.to_string(),
                            message: format!(
                                "returned {} values for {} elements",
                                dequantized.len(),
                                ctx.values.len()
                            ),
                        });
                    }
                    let acc =
                        accumulate(ctx.values, &dequantized, 0, ctx.importance.as_ref(), cancel)?;
                    Ok(Outcome::Measured(acc.finish(storage_bits, ctx)))
                }
            }
        }
    }
}

/// Why an affine candidate cannot apply to a tensor of `shape`, if it cannot.
pub fn affine_not_applicable(cfg: &QuantConfig, shape: &[usize]) -> Option<String> {
    let cols = shape.last().copied().unwrap_or(1);
    match cfg.granularity {
        Granularity::PerGroup { size } if size > cols => {
            return Some(format!(
                "a group of {size} is larger than the row of {cols}"
            ));
        }
        Granularity::PerChannel { axis } if axis >= shape.len() => {
            return Some(format!(
                "no channel axis {axis} in a {}-D tensor",
                shape.len()
            ));
        }
        _ => {}
    }
    cfg.validate(shape).err().map(|e| e.to_string())
}

/// Maps a kernel error: cancellation stops the sweep; anything else makes the candidate not
/// applicable to this tensor, with the kernel's reason.
fn kernel_error(e: QuantError) -> Result<Outcome, SweepError> {
    match e {
        QuantError::Cancelled(_) => Err(SweepError::Cancelled),
        other => Ok(Outcome::NotApplicable {
            reason: other.to_string(),
        }),
    }
}

/// Stored bits of `elements` values at `bits_per_weight` (an exact integer up to f64
/// rounding, which `round` removes).
fn storage_bits_of(bits_per_weight: f64, elements: usize) -> u64 {
    // Sizes below 2^53 are exact in f64; the product is a whole number of bits.
    (bits_per_weight * elements as f64).round() as u64
}

/// Evaluates an affine candidate through `quant::quantize_tensor`.
/// The measurement of unweighted `metrics`: relative MSE against the tensor's mean x².
fn unweighted(ctx: &TensorContext<'_>, m: &Metrics, storage_bits: u64) -> Measurement {
    let mean_x2 = if ctx.finite == 0 {
        0.0
    } else {
        // Counts below 2^53 convert exactly.
        ctx.sum_x2 / ctx.finite as f64
    };
    Measurement {
        storage_bits,
        bits_per_weight: bits_per_weight_of(storage_bits, ctx.values.len()),
        mse: m.mse,
        rel_mse: ratio(m.mse, mean_x2),
        sqnr_db: m.sqnr_db,
        cosine: m.cosine,
        max_abs_error: m.max_abs_error,
        weighted: None,
    }
}

fn evaluate_affine(
    ctx: &TensorContext<'_>,
    cfg: &QuantConfig,
    cancel: &Cancel,
) -> Result<Outcome, SweepError> {
    if let Some(reason) = affine_not_applicable(cfg, ctx.shape) {
        return Ok(Outcome::NotApplicable { reason });
    }
    let kernel_cancel = cancel.child();
    let Some(importance) = ctx.importance.as_ref() else {
        // Metrics only: nothing is materialised.
        let r = match quantize_tensor(
            ctx.values,
            ctx.shape,
            cfg,
            Outputs::default(),
            &kernel_cancel,
        ) {
            Ok(r) => r,
            Err(e) => return kernel_error(e),
        };
        let storage_bits = storage_bits_of(r.bits_per_weight, ctx.values.len());
        return Ok(Outcome::Measured(unweighted(ctx, &r.metrics, storage_bits)));
    };
    // Per-element errors are needed: quantize independent row chunks with their dequantized
    // values (rows quantize independently under per-channel axis 0 and per-group).
    let n = ctx.values.len();
    let (unit, chunk_shape): (usize, Box<dyn Fn(usize) -> Vec<usize>>) = match cfg.granularity {
        Granularity::PerChannel { axis: 0 } => {
            let rows = ctx.shape.first().copied().unwrap_or(1).max(1);
            let unit = (n / rows).max(1);
            (unit, Box::new(move |len| vec![len / unit, unit]))
        }
        Granularity::PerGroup { .. } => {
            let cols = ctx.shape.last().copied().unwrap_or(1).max(1);
            (cols, Box::new(move |len| vec![len / cols, cols]))
        }
        _ => {
            let shape = ctx.shape.to_vec();
            (n.max(1), Box::new(move |_| shape.clone()))
        }
    };
    let per_chunk = unit * (WEIGHTED_CHUNK / unit).max(1);
    let want = Outputs {
        codes: false,
        dequantized: true,
    };
    let mut total = Accumulated::default();
    let mut storage_bits = 0u64;
    for (c, chunk) in ctx.values.chunks(per_chunk).enumerate() {
        let r = match quantize_tensor(chunk, &chunk_shape(chunk.len()), cfg, want, &kernel_cancel) {
            Ok(r) => r,
            Err(e) => return kernel_error(e),
        };
        let Some(deq) = r.dequantized.as_deref() else {
            return kernel_error(QuantError::ShapeMismatch {
                expected: chunk.len(),
                got: 0,
            });
        };
        storage_bits += storage_bits_of(r.bits_per_weight, chunk.len());
        total.merge(&accumulate(
            chunk,
            deq,
            c * per_chunk,
            Some(importance),
            cancel,
        )?);
    }
    Ok(Outcome::Measured(total.finish(storage_bits, ctx)))
}

/// a / b with the conventions of a relative error: 0 when a = 0, +inf when only b = 0.
fn ratio(a: f64, b: f64) -> f64 {
    if a == 0.0 {
        0.0
    } else if b == 0.0 {
        f64::INFINITY
    } else {
        a / b
    }
}

/// storage_bits / elements.
fn bits_per_weight_of(storage_bits: u64, elements: usize) -> f64 {
    if elements == 0 {
        0.0
    } else {
        // Sizes below 2^53 convert exactly; the quotient is a display figure.
        storage_bits as f64 / elements as f64
    }
}

/// Plain and weighted error sums.
#[derive(Debug, Clone, Copy, Default)]
struct Accumulated {
    plain: MetricAcc,
    /// sum w e², sum w x², sum w (finite x only).
    w_e2: f64,
    w_x2: f64,
    w: f64,
    weighted: bool,
}

impl Accumulated {
    fn merge(&mut self, o: &Accumulated) {
        self.plain.merge(&o.plain);
        self.w_e2 += o.w_e2;
        self.w_x2 += o.w_x2;
        self.w += o.w;
        self.weighted |= o.weighted;
    }

    fn finish(&self, storage_bits: u64, ctx: &TensorContext<'_>) -> Measurement {
        let m = self.plain.finish();
        let weighted = self.weighted.then(|| WeightedError {
            mse: if self.w == 0.0 {
                0.0
            } else {
                self.w_e2 / self.w
            },
            rel_mse: ratio(self.w_e2, self.w_x2),
            sqnr_db: if self.w_e2 == 0.0 {
                f64::INFINITY
            } else {
                10.0 * (self.w_x2 / self.w_e2).log10()
            },
        });
        Measurement {
            storage_bits,
            bits_per_weight: bits_per_weight_of(storage_bits, ctx.values.len()),
            mse: m.mse,
            rel_mse: ratio(self.plain.sum_e2, self.plain.sum_x2),
            sqnr_db: m.sqnr_db,
            cosine: m.cosine,
            max_abs_error: m.max_abs_error,
            weighted,
        }
    }
}

/// Error sums of `approx` against `reference` (equal lengths), whose first element has flat
/// index `base` in the tensor; weighted too when `importance` is given. Fixed chunks merged in
/// order, so the sums do not depend on the thread count.
fn accumulate(
    reference: &[f32],
    approx: &[f32],
    base: usize,
    importance: Option<&TensorImportance<'_>>,
    cancel: &Cancel,
) -> Result<Accumulated, Cancelled> {
    let parts: Vec<Accumulated> = reference
        .par_chunks(CHUNK)
        .zip(approx.par_chunks(CHUNK))
        .enumerate()
        .map(|(ci, (x, xh))| {
            cancel.check()?;
            let mut acc = Accumulated {
                weighted: importance.is_some(),
                ..Accumulated::default()
            };
            for (j, (&v, &h)) in x.iter().zip(xh).enumerate() {
                acc.plain.push(v, h, false);
                if let Some(imp) = importance
                    && v.is_finite()
                {
                    let w = f64::from(imp.weight_at(base + ci * CHUNK + j));
                    let (xd, e) = (f64::from(v), f64::from(h) - f64::from(v));
                    acc.w_e2 += w * e * e;
                    acc.w_x2 += w * xd * xd;
                    acc.w += w;
                }
            }
            Ok(acc)
        })
        .collect::<Result<_, Cancelled>>()?;
    let mut total = Accumulated {
        weighted: importance.is_some(),
        ..Accumulated::default()
    };
    for p in &parts {
        total.merge(p);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::candidate::Candidate;
    use crate::quant::Calibration;
    use crate::quant::metrics::compare;
    use crate::tensor::OwnedTensor;
    use crate::tensor::imatrix::{ImatrixFormat, ImportanceEntry};
    use std::collections::BTreeMap;

    /// Deterministic values in (-1, 1) with a few larger ones (a cheap LCG; no RNG crate).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|i| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = ((s >> 40) as f32) / (1u64 << 24) as f32 * 2.0 - 1.0;
                if i % 97 == 0 { u * 8.0 } else { u }
            })
            .collect()
    }

    fn model() -> Model {
        Model::from_tensors(
            "m",
            vec![
                OwnedTensor::from_f32("w", vec![6, 80], &values(480, 1)),
                OwnedTensor::from_f32("experts", vec![2, 3, 64], &values(384, 2)),
                OwnedTensor::from_f32("norm", vec![80], &values(80, 3)),
                OwnedTensor {
                    name: "ids".into(),
                    dtype: DType::I32,
                    shape: vec![2],
                    bytes: vec![0; 8],
                },
            ],
        )
        .expect("valid model")
    }

    fn candidates() -> Vec<Candidate> {
        vec![
            Candidate::affine(4, Granularity::PerGroup { size: 32 }, Calibration::MinMax),
            Candidate::affine(8, Granularity::PerChannel { axis: 0 }, Calibration::Mse),
            Candidate::affine(4, Granularity::PerGroup { size: 128 }, Calibration::MinMax),
        ]
    }

    fn run(
        model: &Model,
        cands: &[Candidate],
        options: SweepOptions<'_>,
        cache: &SweepCache,
    ) -> SweepTable {
        sweep(model, cands, options, cache, &Cancel::never(), &mut |_| {}).expect("sweep runs")
    }

    fn measured<'a>(t: &'a SweepTable, tensor: &str, c: usize) -> &'a Measurement {
        let row = t.tensors.iter().find(|r| r.name == tensor).expect("tensor");
        row.outcomes[c].measurement().expect("measured")
    }

    #[test]
    fn affine_cells_match_quantize_tensor() {
        let m = model();
        let table = run(
            &m,
            &candidates(),
            SweepOptions::default(),
            &SweepCache::new(),
        );
        let x = values(480, 1);
        let cands = candidates();
        let cfg = cands[0].affine_config().expect("affine");
        let r =
            quantize_tensor(&x, &[6, 80], cfg, Outputs::default(), &Cancel::never()).expect("runs");
        let cell = measured(&table, "w", 0);
        assert_eq!(cell.mse, r.metrics.mse);
        assert_eq!(cell.sqnr_db, r.metrics.sqnr_db);
        // 4 bits × 480 + 16-bit scales × 6 rows × ceil(80 / 32) = 1920 + 288 bits.
        assert_eq!(cell.storage_bits, 1920 + 16 * 18);
        assert_eq!(cell.bits_per_weight, 2208.0 / 480.0);
        let mean_x2 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / 480.0;
        assert!((cell.rel_mse - r.metrics.mse / mean_x2).abs() <= 1e-12 * cell.rel_mse);
        assert!((cell.rel_mse - 10f64.powf(-cell.sqnr_db / 10.0)).abs() <= 1e-9 * cell.rel_mse);
        assert!(cell.weighted.is_none());
        // Groups of 128 do not fit rows of 80 (nor of 64); integers are not planned; the
        // 1-D norm is measured (the allocator keeps it by default).
        let w = table.tensors.iter().find(|r| r.name == "w").expect("w");
        assert_eq!(
            w.outcomes[2],
            Outcome::NotApplicable {
                reason: "a group of 128 is larger than the row of 80".into()
            }
        );
        let ids = table.tensors.iter().find(|r| r.name == "ids").expect("ids");
        assert!(
            matches!(&ids.status, TensorStatus::NotPlanned { reason } if reason.contains("I32"))
        );
        assert!(ids.outcomes.is_empty());
        assert!(measured(&table, "norm", 0).mse > 0.0);
        assert_eq!(table.evaluated, 3 * 3);
    }

    #[test]
    fn cache_measures_only_new_candidates() {
        let m = model();
        let cache = SweepCache::new();
        let cands = candidates();
        let first = run(&m, &cands[..2], SweepOptions::default(), &cache);
        assert_eq!((first.evaluated, first.cached), (6, 0));
        assert_eq!(cache.len(), 6);
        let second = run(&m, &cands, SweepOptions::default(), &cache);
        assert_eq!((second.evaluated, second.cached), (3, 6));
        for (a, b) in first.tensors.iter().zip(&second.tensors) {
            assert_eq!(a.outcomes.len(), b.outcomes.len().min(2));
            assert!(a.outcomes.iter().zip(&b.outcomes).all(|(x, y)| x == y));
        }
        // Another model with the same tensor names but other bytes misses the cache.
        let other = Model::from_tensors(
            "m",
            vec![OwnedTensor::from_f32("w", vec![6, 80], &values(480, 9))],
        )
        .expect("valid");
        let third = run(&other, &cands, SweepOptions::default(), &cache);
        assert_eq!(third.cached, 0);
    }

    fn importance(entries: &[(&str, Vec<f32>, usize)]) -> ImportanceMatrix {
        ImportanceMatrix {
            format: ImatrixFormat::Gguf,
            entries: entries
                .iter()
                .map(|(n, w, m)| {
                    (
                        n.to_string(),
                        ImportanceEntry {
                            weights: w.clone(),
                            matrices: *m,
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
            skipped: Vec::new(),
            chunk_count: None,
            metadata: Vec::new(),
        }
    }

    #[test]
    fn weighted_errors_follow_the_formula() {
        let m = model();
        let cands = candidates();
        let w: Vec<f32> = (0..80).map(|j| (j % 5) as f32 * 0.5).collect();
        let ew: Vec<f32> = (0..128).map(|j| 1.0 + (j % 3) as f32).collect();
        let imatrix = importance(&[
            ("w", w.clone(), 1),
            ("experts", ew.clone(), 2),
            ("absent", vec![1.0], 1),
        ]);
        let options = SweepOptions {
            importance: Some(&imatrix),
            formats: None,
        };
        let table = run(&m, &cands, options, &SweepCache::new());
        assert_eq!(table.importance_unmatched, vec!["absent".to_string()]);
        for (name, shape, seed, weights, per_matrix) in [
            ("w", vec![6usize, 80], 1u64, &w, 480usize),
            ("experts", vec![2, 3, 64], 2, &ew, 192),
        ] {
            let x = values(shape.iter().product(), seed);
            for (c, cand) in cands.iter().enumerate().take(2) {
                let cfg = cand.affine_config().expect("affine");
                let want = Outputs {
                    codes: false,
                    dequantized: true,
                };
                let r = quantize_tensor(&x, &shape, cfg, want, &Cancel::never()).expect("runs");
                let xh = r.dequantized.expect("asked for");
                let cols = *shape.last().expect("2-D or 3-D");
                let (mut we2, mut wx2, mut ws) = (0.0f64, 0.0f64, 0.0f64);
                for (i, (&v, &h)) in x.iter().zip(&xh).enumerate() {
                    let wi = f64::from(weights[(i / per_matrix) * cols + i % cols]);
                    let e = f64::from(h) - f64::from(v);
                    we2 += wi * e * e;
                    wx2 += wi * f64::from(v) * f64::from(v);
                    ws += wi;
                }
                let cell = measured(&table, name, c);
                let wt = cell.weighted.expect("weighted");
                assert!((wt.mse - we2 / ws).abs() <= 1e-12 * wt.mse, "{name} {c}");
                assert!(
                    (wt.rel_mse - we2 / wx2).abs() <= 1e-12 * wt.rel_mse,
                    "{name} {c}"
                );
                // The plain figures and the storage agree with the whole-tensor run.
                let plain = compare(&x, &xh);
                assert!((cell.mse - plain.mse).abs() <= 1e-12 * plain.mse);
                assert!((cell.mse - r.metrics.mse).abs() <= 1e-12 * r.metrics.mse);
                assert_eq!(
                    cell.storage_bits,
                    storage_bits_of(r.bits_per_weight, x.len())
                );
                assert_eq!(cell.planning_rel_mse(), wt.rel_mse);
            }
        }
        // The 1-D norm has no entry: unweighted.
        let norm = table
            .tensors
            .iter()
            .find(|r| r.name == "norm")
            .expect("norm");
        assert_eq!(norm.status, TensorStatus::Measured { weighted: false });
        // An entry whose width does not fit the tensor is an error naming it.
        let bad = importance(&[("w", vec![1.0; 7], 1)]);
        let e = sweep(
            &m,
            &cands,
            SweepOptions {
                importance: Some(&bad),
                formats: None,
            },
            &SweepCache::new(),
            &Cancel::never(),
            &mut |_| {},
        )
        .expect_err("misfit");
        assert!(
            matches!(e, SweepError::Importance { ref tensor, .. } if tensor == "w"),
            "{e}"
        );
    }

    #[test]
    fn uniform_weights_give_the_plain_errors() {
        let m = model();
        let cands = candidates();
        let ones = importance(&[("w", vec![2.0; 80], 1)]);
        let weighted = run(
            &m,
            &cands,
            SweepOptions {
                importance: Some(&ones),
                formats: None,
            },
            &SweepCache::new(),
        );
        let plain = run(&m, &cands, SweepOptions::default(), &SweepCache::new());
        for c in 0..2 {
            let (a, b) = (measured(&weighted, "w", c), measured(&plain, "w", c));
            let w = a.weighted.expect("weighted");
            assert!((w.mse - b.mse).abs() <= 1e-12 * b.mse);
            assert!((w.rel_mse - b.rel_mse).abs() <= 1e-12 * b.rel_mse);
            assert!((w.sqnr_db - b.sqnr_db).abs() <= 1e-9);
            assert_eq!(a.storage_bits, b.storage_bits);
        }
    }

    /// Rounds to multiples of 0.25, 3 bits per element; not applicable to odd row lengths.
    struct Grid;

    impl FormatEvaluator for Grid {
        fn knows(&self, name: &str) -> bool {
            name == "grid"
        }

        fn evaluate(
            &self,
            _format: &FormatCandidate,
            values: &[f32],
            shape: &[usize],
            _importance: Option<&TensorImportance<'_>>,
            cancel: &Cancel,
        ) -> Result<FormatOutcome, FormatFailure> {
            cancel.check()?;
            if shape.last().is_some_and(|c| c % 2 == 1) {
                return Ok(FormatOutcome::NotApplicable("odd rows".into()));
            }
            Ok(FormatOutcome::Quantized {
                dequantized: values.iter().map(|v| (v * 4.0).round() / 4.0).collect(),
                storage_bits: 3 * values.len() as u64,
            })
        }
    }

    #[test]
    fn formats_are_measured_through_the_evaluator() {
        let m = Model::from_tensors(
            "m",
            vec![
                OwnedTensor::from_f32(
                    "even",
                    vec![2, 4],
                    &[0.1, 0.3, -0.6, 1.0, 2.2, -0.05, 0.0, 0.9],
                ),
                OwnedTensor::from_f32("odd", vec![1, 3], &[0.1, 0.2, 0.3]),
            ],
        )
        .expect("valid");
        let cands = vec![Candidate::format("grid"), Candidate::format("q4_k")];
        let table = run(
            &m,
            &cands,
            SweepOptions {
                importance: None,
                formats: Some(&Grid),
            },
            &SweepCache::new(),
        );
        let cell = measured(&table, "even", 0);
        let x = [0.1f32, 0.3, -0.6, 1.0, 2.2, -0.05, 0.0, 0.9];
        let xh: Vec<f32> = x.iter().map(|v| (v * 4.0).round() / 4.0).collect();
        assert_eq!(cell.mse, compare(&x, &xh).mse);
        assert_eq!(cell.storage_bits, 24);
        assert_eq!(cell.bits_per_weight, 3.0);
        let odd = table.tensors.iter().find(|r| r.name == "odd").expect("odd");
        assert_eq!(
            odd.outcomes[0],
            Outcome::NotApplicable {
                reason: "odd rows".into()
            }
        );
        assert!(
            matches!(&odd.outcomes[1], Outcome::NotApplicable { reason } if reason.contains("not available"))
        );
    }

    #[test]
    fn cancellation_stops_and_progress_reaches_one() {
        let m = model();
        let cancel = Cancel::new();
        let mut seen = Vec::new();
        sweep(
            &m,
            &candidates(),
            SweepOptions::default(),
            &SweepCache::new(),
            &cancel,
            &mut |p| {
                seen.push(p.name.to_string());
            },
        )
        .expect("runs");
        assert_eq!(seen, ["w", "experts", "norm", "ids"]);
        assert_eq!(cancel.fraction_done(), 1.0);
        let stopped = Cancel::new();
        stopped.cancel();
        let e = sweep(
            &m,
            &candidates(),
            SweepOptions::default(),
            &SweepCache::new(),
            &stopped,
            &mut |_| {},
        );
        assert!(matches!(e, Err(SweepError::Cancelled)));
    }

    #[test]
    fn not_applicable_reasons() {
        let c = Candidate::affine(4, Granularity::PerGroup { size: 64 }, Calibration::MinMax);
        let cfg = c.affine_config().expect("affine");
        assert_eq!(affine_not_applicable(cfg, &[3, 64]), None);
        assert_eq!(affine_not_applicable(cfg, &[3, 100]), None);
        assert_eq!(
            affine_not_applicable(cfg, &[3, 32]).as_deref(),
            Some("a group of 64 is larger than the row of 32")
        );
        let ch = Candidate::affine(4, Granularity::PerChannel { axis: 0 }, Calibration::MinMax);
        assert!(affine_not_applicable(ch.affine_config().expect("affine"), &[]).is_some());
    }
}
