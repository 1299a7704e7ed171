//! The Model view's derived results: the sweep of the whole model (a background job with
//! progress, cancellable, cached cell by cell), the per-tensor shape statistics of the
//! sensitivity strip, and the plan (problem, allocation, curve, uniform recipes) memoised on the
//! UI thread so the budget slider re-allocates within the frame.

use std::sync::Arc;

use super::super::jobs::JobKey;
use super::super::state::{CandidateSet, ModelRef, ModelViewState};
use crate::cancel::Cancel;
use crate::plan::candidate::{default_affine, minmax_affine};
use crate::plan::formats::QuantFormats;
use crate::plan::{
    Allocation, Budget, Candidate, CurvePoint, Objective, Problem, Rules, SweepCache, SweepOptions,
    SweepTable, UniformPoint, sweep,
};

/// Budgets of the model-wide curve: from, to, step (bits per weight), as the CLI draws it.
pub const CURVE: (f64, f64, f64) = (2.0, 8.5, 0.125);

/// The candidates a set names, in column order.
pub fn candidates_of(set: CandidateSet) -> Vec<Candidate> {
    let mut out = match set {
        CandidateSet::Quick => minmax_affine(),
        CandidateSet::WithMse => default_affine(),
    };
    out.extend(QuantFormats::names().into_iter().map(Candidate::format));
    out
}

/// The inputs of one sweep.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SweepKey {
    /// The model.
    pub model: ModelRef,
    /// The candidates.
    pub set: CandidateSet,
}

impl JobKey for SweepKey {
    fn same_subject(&self, other: &Self) -> bool {
        self.model == other.model
    }
}

/// Measures every tensor of the model under the set's candidates. `cache` keeps every cell,
/// so a cancelled sweep resumes where it stopped and a larger set measures only what is new.
pub fn run_sweep(
    cache: &SweepCache,
    key: &SweepKey,
    cancel: &Cancel,
) -> Result<SweepTable, String> {
    let candidates = candidates_of(key.set);
    sweep(
        &key.model.model,
        &candidates,
        SweepOptions {
            importance: None,
            formats: Some(&QuantFormats),
        },
        cache,
        cancel,
        &mut |_| {},
    )
    .map_err(|e| e.to_string())
}

/// One tensor's shape statistics for the sensitivity strip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShapeStats {
    /// Excess kurtosis m4 / m2² − 3 (0 for a normal distribution).
    pub kurtosis: f64,
    /// max |x| / std (0 when the std is 0).
    pub max_over_std: f64,
    /// Finite values more than 6 standard deviations from the mean.
    pub outliers: u64,
}

/// The inputs of one tensor's shape statistics.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShapeKey {
    /// The model.
    pub model: ModelRef,
    /// Tensor index.
    pub tensor: usize,
}

impl JobKey for ShapeKey {
    fn lane(&self) -> u64 {
        // One lane per tensor: the strip requests all of them side by side.
        self.tensor as u64
    }

    fn same_subject(&self, other: &Self) -> bool {
        self == other
    }
}

/// Computes [`ShapeStats`] of a tensor (two passes over its decoded values).
pub fn shape_stats(key: &ShapeKey, cancel: &Cancel) -> Result<ShapeStats, String> {
    let values = key
        .model
        .model
        .values_f32(key.tensor, cancel)
        .map_err(|e| e.to_string())?;
    cancel.check().map_err(|e| e.to_string())?;
    Ok(shape_stats_of(&values))
}

/// [`ShapeStats`] of `values` (non-finite values skipped).
pub fn shape_stats_of(values: &[f32]) -> ShapeStats {
    let (mut n, mut sum, mut absmax) = (0u64, 0.0f64, 0.0f64);
    for &x in values.iter().filter(|x| x.is_finite()) {
        n += 1;
        sum += f64::from(x);
        absmax = absmax.max(f64::from(x).abs());
    }
    if n == 0 {
        return ShapeStats {
            kurtosis: 0.0,
            max_over_std: 0.0,
            outliers: 0,
        };
    }
    // Counts below 2^53 convert exactly.
    let count = n as f64;
    let mean = sum / count;
    let (mut m2, mut m4) = (0.0f64, 0.0f64);
    for &x in values.iter().filter(|x| x.is_finite()) {
        let d = f64::from(x) - mean;
        m2 += d * d;
        m4 += d * d * d * d;
    }
    m2 /= count;
    m4 /= count;
    let std = m2.sqrt();
    let outliers = if std > 0.0 {
        values
            .iter()
            .filter(|x| x.is_finite() && (f64::from(**x) - mean).abs() > 6.0 * std)
            .count() as u64
    } else {
        0
    };
    ShapeStats {
        kurtosis: if m2 > 0.0 { m4 / (m2 * m2) - 3.0 } else { 0.0 },
        max_over_std: if std > 0.0 { absmax / std } else { 0.0 },
        outliers,
    }
}

/// The plan the Model view shows: the problem built from the sweep and the pins, the
/// allocation under the budget, the size–error curve and the uniform recipes.
pub struct PlanView {
    /// The sweep it was planned from.
    pub table: Arc<SweepTable>,
    /// Frontiers and hulls.
    pub problem: Arc<Problem>,
    /// The assignment under the budget (or why there is none).
    pub allocation: Result<Arc<Allocation>, String>,
    /// Total error against average bits per weight, budgets 2 to 8.5.
    pub curve: Arc<Vec<CurvePoint>>,
    /// Every candidate applied to every planned tensor (with fallbacks), as a point.
    pub uniform: Arc<Vec<UniformPoint>>,
}

/// What the plan memo was built from.
struct PlanInputs {
    table: Arc<SweepTable>,
    pins: Vec<(String, String)>,
}

/// The sweep-dependent part of a plan: problem, curve and uniform recipes.
type Planned = (Arc<Problem>, Arc<Vec<CurvePoint>>, Arc<Vec<UniformPoint>>);

/// The plan memo: rebuilt only when the sweep or the pins change; the allocation only when
/// the budget changes too.
#[derive(Default)]
pub struct PlanMemo {
    inputs: Option<PlanInputs>,
    problem: Option<Result<Planned, String>>,
    allocation: Option<(u64, Result<Arc<Allocation>, String>)>,
}

impl PlanMemo {
    /// Forgets everything (a new model).
    pub fn clear(&mut self) {
        *self = PlanMemo::default();
    }

    /// The plan of `table` under the Model view's pins and budget.
    pub fn plan(
        &mut self,
        table: &Arc<SweepTable>,
        state: &ModelViewState,
    ) -> Result<PlanView, String> {
        let same = self
            .inputs
            .as_ref()
            .is_some_and(|i| Arc::ptr_eq(&i.table, table) && i.pins == state.pins);
        if !same {
            self.inputs = Some(PlanInputs {
                table: Arc::clone(table),
                pins: state.pins.clone(),
            });
            let rules = Rules {
                overrides: state.pins.clone(),
                ..Rules::default()
            };
            self.problem = Some(
                Problem::new(table, &rules, Objective::RelMse)
                    .map(|p| {
                        let curve = p.curve(CURVE.0, CURVE.1, CURVE.2);
                        let uniform: Vec<UniformPoint> = (0..table.candidates.len())
                            .filter_map(|c| p.uniform(table, c))
                            .collect();
                        (Arc::new(p), Arc::new(curve), Arc::new(uniform))
                    })
                    .map_err(|e| e.to_string()),
            );
            self.allocation = None;
        }
        let (problem, curve, uniform) = match &self.problem {
            Some(Ok(p)) => p.clone(),
            Some(Err(e)) => return Err(e.clone()),
            None => return Err("no plan".into()),
        };
        let budget = Budget::BitsPerWeight(state.budget_bpw);
        let bits = problem.budget_bits(budget).map_err(|e| e.to_string())?;
        let allocation = match &self.allocation {
            Some((b, a)) if *b == bits => a.clone(),
            _ => {
                let a = problem
                    .allocate(budget)
                    .map(Arc::new)
                    .map_err(|e| e.to_string());
                self.allocation = Some((bits, a.clone()));
                a
            }
        };
        Ok(PlanView {
            table: Arc::clone(table),
            problem,
            allocation,
            curve,
            uniform,
        })
    }
}

/// A tensor name split for the strip: its layer number (the first all-digit dot-separated
/// part) and its kind (the name with the layer prefix removed); names without a number are
/// layer None and their own kind.
pub fn layer_and_kind(name: &str) -> (Option<usize>, String) {
    let parts: Vec<&str> = name.split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        if !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && let Ok(layer) = p.parse::<usize>()
        {
            let kind = parts.get(i + 1..).map(|r| r.join(".")).unwrap_or_default();
            return (Some(layer), kind);
        }
    }
    (None, name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_layer_and_kind() {
        assert_eq!(
            layer_and_kind("encoder.layer.3.attention.self.query.weight"),
            (Some(3), "attention.self.query.weight".to_string())
        );
        assert_eq!(
            layer_and_kind("blk.12.ffn_down.weight"),
            (Some(12), "ffn_down.weight".to_string())
        );
        assert_eq!(
            layer_and_kind("token_embd.weight"),
            (None, "token_embd.weight".to_string())
        );
    }

    #[test]
    fn shape_statistics_of_a_known_vector() {
        // 99 zeros and one 10: mean 0.1, m2 = 0.99, m4 = (0.1⁴·99 + 9.9⁴) / 100.
        let mut v = vec![0.0f32; 99];
        v.push(10.0);
        let s = shape_stats_of(&v);
        let m2 = 0.99f64;
        let m4 = (0.1f64.powi(4) * 99.0 + 9.9f64.powi(4)) / 100.0;
        assert!((s.kurtosis - (m4 / (m2 * m2) - 3.0)).abs() < 1e-9);
        assert!((s.max_over_std - 10.0 / m2.sqrt()).abs() < 1e-9);
        // |10 − 0.1| = 9.9 > 6σ = 5.97: one outlier.
        assert_eq!(s.outliers, 1);
        assert_eq!(shape_stats_of(&[f32::NAN]).outliers, 0);
    }

    #[test]
    fn the_quick_set_is_minmax_and_every_format() {
        let quick = candidates_of(CandidateSet::Quick);
        assert_eq!(quick.len(), 28 + 26);
        assert_eq!(candidates_of(CandidateSet::WithMse).len(), 56 + 26);
        assert!(quick.iter().any(|c| c.id == "q4_k"));
    }
}
