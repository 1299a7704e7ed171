//! The plan as one report: the object `plan --json` prints, the recipe `plan --out` writes
//! (and `quantize --recipe` reads), and llama-quantize's `--tensor-type` arguments.
//!
//! Key names are stable (the issue lists them): `budget_bpw`, `average_bpw`, `total_bytes`,
//! `total_error`, `objective`, `tensors` (`name`, `numel`, `candidate`, `format`,
//! `bits_per_weight`, `mse`, `rel_mse`, `sqnr_db`, `why`), `uniform` (`format`,
//! `average_bpw`, `total_error`). Infinite SQNRs are written as the strings "inf" / "-inf"
//! (as in `quantize --json`); errors not measured (kept tensors) are `null`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::plan::candidate::gguf_type_name;
use crate::plan::sweep::TensorStatus;
use crate::plan::{Allocation, Choice, CurvePoint, Objective, Problem, SweepTable, UniformPoint};
use crate::quant::QuantConfig;

/// One tensor of the recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecipeTensor {
    /// The tensor's name.
    pub name: String,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Element count.
    pub numel: u64,
    /// The stored dtype of the source.
    pub dtype: String,
    /// The sweep table's id of the choice; `null` for kept and not-planned tensors.
    pub candidate: Option<String>,
    /// The format: `int4` / `uint8` (with `settings`), a deployed format's name, or the
    /// float format of a kept tensor (`F16`, `BF16`, `F32`, or the stored dtype).
    pub format: String,
    /// The affine settings (`null` for formats and kept tensors).
    pub settings: Option<QuantConfig>,
    /// Stored bits per weight, every scale counted.
    pub bits_per_weight: f64,
    /// Stored bits of the tensor.
    pub storage_bits: u64,
    /// MSE the plan used (importance-weighted when `weighted`); `null` when not measured.
    pub mse: Option<f64>,
    /// Relative MSE the plan used.
    pub rel_mse: Option<f64>,
    /// SQNR matching `rel_mse`, in dB ("inf" when exact).
    #[serde(serialize_with = "ser_opt_db", deserialize_with = "de_opt_db")]
    pub sqnr_db: Option<f64>,
    /// Whether an importance matrix weighted this tensor's errors.
    pub weighted: bool,
    /// "budget", "pinned", "override", "kept" or "not-planned".
    pub why: String,
    /// The pattern or rule behind `why` (empty for budget and override).
    pub why_detail: String,
}

/// A tensor stored in another candidate than a uniform recipe's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FallbackReport {
    /// The tensor.
    pub tensor: String,
    /// What it used: a fallback candidate's id or "F16".
    pub used: String,
}

/// A uniform recipe as a point on the size–error plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UniformReport {
    /// The candidate's id.
    pub format: String,
    /// Average bits per weight over all tensors.
    pub average_bpw: f64,
    /// Bytes of tensor data (bits rounded up).
    pub total_bytes: u64,
    /// The objective's total error.
    pub total_error: f64,
    /// Tensors where the candidate did not apply.
    pub fallbacks: Vec<FallbackReport>,
}

/// One point of the size–error curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurveReport {
    /// The budget asked for.
    pub budget_bpw: f64,
    /// The assignment's average bits per weight.
    pub average_bpw: f64,
    /// Its total error.
    pub total_error: f64,
}

/// A quantized file of the same model as a point on the size–error plane (`plan --against`),
/// paired with the planned model as `compare` pairs them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgainstReport {
    /// The quantized file.
    pub file: String,
    /// Its average bits per weight over all its tensors (tensor data, headers excluded).
    pub average_bpw: f64,
    /// Its bytes of tensor data.
    pub total_bytes: u64,
    /// Σ numel × rel. MSE over the tensors this plan plans (comparable with `total_error`).
    pub total_error: f64,
    /// Σ numel × rel. MSE over every compared pair (as `compare` reports it).
    pub total_error_all_pairs: f64,
    /// Planned tensors that paired and compared.
    pub planned_compared: usize,
    /// Planned tensors with no comparable pair (their error is missing from `total_error`).
    pub planned_missing: Vec<String>,
}

/// The plan: settings, totals, one entry per tensor, the uniform recipes and the curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    /// "quantscope VERSION" (the crate version).
    pub producer: String,
    /// The model's display name.
    pub model: String,
    /// "rel-mse" or "mse".
    pub objective: Objective,
    /// The budget in bits per weight over all tensors.
    pub budget_bpw: f64,
    /// The budget in bytes of tensor data (headers excluded).
    pub budget_bytes: u64,
    /// The plan's average bits per weight over all tensors (planned, kept, not planned).
    pub average_bpw: f64,
    /// The plan's bytes of tensor data (bits rounded up; headers excluded).
    pub total_bytes: u64,
    /// The plan's stored bits.
    pub total_bits: u64,
    /// The objective's total error over the planned tensors.
    pub total_error: f64,
    /// A proven lower bound on the best total error any assignment within the budget has.
    pub lower_bound: f64,
    /// (total_error - lower_bound) / lower_bound.
    pub gap: f64,
    /// Whether the gap is within the 1% NUMERICS.md §9 promises.
    pub within_guarantee: bool,
    /// Every tensor of the model, in file order.
    pub tensors: Vec<RecipeTensor>,
    /// The uniform recipes, one per candidate.
    pub uniform: Vec<UniformReport>,
    /// The size–error curve.
    pub curve: Vec<CurveReport>,
    /// The `--against` file's own assignment as a point, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub against: Option<AgainstReport>,
}

fn ser_opt_db<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        None => s.serialize_none(),
        Some(v) if v.is_finite() => s.serialize_f64(*v),
        Some(v) if *v > 0.0 => s.serialize_str("inf"),
        Some(v) if *v < 0.0 => s.serialize_str("-inf"),
        Some(_) => s.serialize_str("nan"),
    }
}

fn de_opt_db<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Db {
        Num(f64),
        Text(String),
    }
    match Option::<Db>::deserialize(d)? {
        None => Ok(None),
        Some(Db::Num(v)) => Ok(Some(v)),
        Some(Db::Text(t)) => match t.as_str() {
            "inf" => Ok(Some(f64::INFINITY)),
            "-inf" => Ok(Some(f64::NEG_INFINITY)),
            "nan" => Ok(Some(f64::NAN)),
            other => Err(serde::de::Error::custom(format!("bad dB value {other:?}"))),
        },
    }
}

/// Bytes holding `bits` (rounded up).
fn bytes_of(bits: u64) -> u64 {
    bits.div_ceil(8)
}

/// Why a recipe file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a recipe (bad JSON, missing keys, a format or setting quantscope does
    /// not know).
    #[error("{} is not a quantscope recipe: {detail}", path.display())]
    Malformed {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        detail: String,
    },
}

impl Recipe {
    /// Reads a recipe written by `quantscope plan --out` (or the app's Export recipe), checking
    /// that every tensor's format is one quantscope can apply.
    pub fn read(path: &std::path::Path) -> Result<Recipe, RecipeError> {
        let bytes = std::fs::read(path).map_err(|source| RecipeError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes).map_err(|detail| RecipeError::Malformed {
            path: path.to_path_buf(),
            detail,
        })
    }

    /// Parses and checks recipe JSON (see [`Recipe::read`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Recipe, String> {
        let recipe: Recipe = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        for t in &recipe.tensors {
            if t.candidate.is_some()
                && t.settings.is_none()
                && crate::quant::formats::QuantFormat::from_name(&t.format).is_none()
            {
                return Err(format!(
                    "tensor '{}' has format '{}' without affine settings",
                    t.name, t.format
                ));
            }
        }
        Ok(recipe)
    }

    /// Builds the report of `allocation` (made from `problem`, made from `table`), with the
    /// uniform recipes and the curve.
    pub fn new(
        table: &SweepTable,
        problem: &Problem,
        allocation: &Allocation,
        uniform: &[UniformPoint],
        curve: &[CurvePoint],
    ) -> Recipe {
        let tensors = table
            .tensors
            .iter()
            .zip(&allocation.choices)
            .map(|(t, choice)| {
                let weighted = matches!(t.status, TensorStatus::Measured { weighted: true });
                match choice {
                    Choice::Candidate { candidate, why } => {
                        let c = table.candidates.get(*candidate);
                        let m = t.outcomes.get(*candidate).and_then(|o| o.measurement());
                        RecipeTensor {
                            name: t.name.clone(),
                            shape: t.shape.clone(),
                            numel: t.numel,
                            dtype: t.dtype.name().to_string(),
                            candidate: c.map(|c| c.id.clone()),
                            format: c.map(|c| c.format_name()).unwrap_or_default(),
                            settings: c.and_then(|c| c.affine_config().cloned()),
                            bits_per_weight: m.map_or(0.0, |m| m.bits_per_weight),
                            storage_bits: m.map_or(0, |m| m.storage_bits),
                            mse: m.map(|m| m.planning_mse()),
                            rel_mse: m.map(|m| m.planning_rel_mse()),
                            sqnr_db: m.map(|m| m.planning_sqnr_db()),
                            weighted,
                            why: why.label().to_string(),
                            why_detail: why.detail().to_string(),
                        }
                    }
                    Choice::Kept { format, bits, why } => RecipeTensor {
                        name: t.name.clone(),
                        shape: t.shape.clone(),
                        numel: t.numel,
                        dtype: t.dtype.name().to_string(),
                        candidate: None,
                        format: format.clone(),
                        settings: None,
                        bits_per_weight: if t.numel == 0 {
                            0.0
                        } else {
                            // Counts below 2^53 convert exactly; a display ratio.
                            *bits as f64 / t.numel as f64
                        },
                        storage_bits: *bits,
                        mse: None,
                        rel_mse: None,
                        sqnr_db: None,
                        weighted: false,
                        why: why.label().to_string(),
                        why_detail: why.detail().to_string(),
                    },
                }
            })
            .collect();
        Recipe {
            producer: format!("quantscope {}", env!("CARGO_PKG_VERSION")),
            model: table.model.clone(),
            objective: problem.objective,
            budget_bpw: allocation.budget_bpw,
            budget_bytes: allocation.budget_bits / 8,
            average_bpw: allocation.average_bpw,
            total_bytes: bytes_of(allocation.total_bits),
            total_bits: allocation.total_bits,
            total_error: allocation.total_error,
            lower_bound: allocation.lower_bound,
            gap: allocation.gap,
            within_guarantee: allocation.within_guarantee,
            tensors,
            uniform: uniform
                .iter()
                .map(|u| UniformReport {
                    format: u.candidate.clone(),
                    average_bpw: u.average_bpw,
                    total_bytes: bytes_of(u.total_bits),
                    total_error: u.total_error,
                    fallbacks: u
                        .fallbacks
                        .iter()
                        .map(|(tensor, used)| FallbackReport {
                            tensor: tensor.clone(),
                            used: used.clone(),
                        })
                        .collect(),
                })
                .collect(),
            curve: curve
                .iter()
                .map(|p| CurveReport {
                    budget_bpw: p.budget_bpw,
                    average_bpw: p.average_bpw,
                    total_error: p.total_error,
                })
                .collect(),
            against: None,
        }
    }

    /// The point of a quantized file of the same model: `comparison` is `compare`'s
    /// comparison of this plan's model (original) with `file` (quantized); its error is summed
    /// over the tensors `problem` plans, so it sits on the same plane as the curve.
    pub fn against_point(
        file: &str,
        table: &SweepTable,
        problem: &Problem,
        comparison: &crate::plan::compare::Comparison,
    ) -> AgainstReport {
        let planned: std::collections::HashSet<&str> = problem
            .choosers
            .iter()
            .filter_map(|c| table.tensors.get(c.tensor).map(|t| t.name.as_str()))
            .collect();
        let mut total_error = 0.0;
        let mut compared = std::collections::HashSet::new();
        for t in &comparison.tensors {
            if let Ok(e) = &t.outcome
                && planned.contains(t.name.as_str())
            {
                // Element counts below 2^53 convert exactly.
                total_error += t.numel as f64 * e.rel_mse;
                compared.insert(t.name.as_str());
            }
        }
        let mut planned_missing: Vec<String> = planned
            .iter()
            .filter(|n| !compared.contains(*n))
            .map(|n| n.to_string())
            .collect();
        planned_missing.sort();
        AgainstReport {
            file: file.to_string(),
            average_bpw: comparison.totals.average_bpw,
            total_bytes: comparison.totals.bytes,
            total_error,
            total_error_all_pairs: comparison.totals.total_error,
            planned_compared: compared.len(),
            planned_missing,
        }
    }

    /// llama-quantize `--tensor-type PATTERN=TYPE` values for this recipe: one anchored,
    /// escaped pattern per tensor (planned tensors with their GGUF type; kept tensors of two
    /// or more dimensions with F16/BF16/F32), or why they cannot be written.
    ///
    /// llama-quantize (tools/quantize/quantize.cpp `parse_tensor_type`) splits at the first
    /// `=`, lowercases the pattern, compiles it as a `std::regex` and uses the first pattern
    /// whose `regex_search` matches a tensor name; the type is matched case-insensitively
    /// against ggml's type names. So every pattern here is `^name$` with the regex syntax
    /// characters escaped, and names with uppercase letters cannot be matched at all.
    pub fn llama_quantize_tensor_types(&self) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for t in &self.tensors {
            let ty = match (&t.candidate, t.why.as_str()) {
                (Some(id), _) => gguf_type_name(id)
                    .ok_or_else(|| format!("'{}' uses {id}, which is not a GGUF type", t.name))?,
                (None, "not-planned") => continue,
                (None, _) if t.shape.len() < 2 => continue,
                (None, _) => match t.format.as_str() {
                    "F16" => "f16",
                    "BF16" => "bf16",
                    "F32" => "f32",
                    other => {
                        return Err(format!(
                            "'{}' is kept as {other}, which llama-quantize cannot be told to keep",
                            t.name
                        ));
                    }
                },
            };
            if t.name.chars().any(|c| c.is_ascii_uppercase()) {
                return Err(format!(
                    "'{}' has uppercase letters; llama-quantize lowercases its patterns, so no pattern can name it",
                    t.name
                ));
            }
            out.push(format!("^{}$={ty}", ecmascript_escape(&t.name)));
        }
        Ok(out)
    }
}

/// Escapes the ECMAScript regex syntax characters (`^ $ \ . * + ? ( ) [ ] { } |`).
fn ecmascript_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if "^$\\.*+?()[]{}|".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A value quoted for a POSIX shell (single quotes, with embedded ones closed and escaped).
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::candidate::Candidate;
    use crate::plan::sweep::{Measurement, Outcome, SweepTensor};
    use crate::plan::{Budget, Rules};
    use crate::tensor::DType;

    /// ggml's type names (ggml.c `type_traits[].type_name`) that llama-quantize accepts.
    const GGML_TYPE_NAMES: [&str; 31] = [
        "f32", "f16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q8_1", "q2_K", "q3_K", "q4_K",
        "q5_K", "q6_K", "q8_K", "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s", "iq4_nl", "iq3_s",
        "iq2_s", "iq4_xs", "i8", "i16", "i32", "i64", "f64", "iq1_m", "bf16", "mxfp4", "nvfp4",
    ];

    /// llama-quantize's reading of `--tensor-type` values: split at the first '=', lowercase
    /// the pattern, regex-search names in order (first match wins), types case-insensitive.
    fn llama_type_of(args: &[String], tensor: &str) -> Option<&'static str> {
        let parsed: Vec<(regex::Regex, &'static str)> = args
            .iter()
            .map(|a| {
                let (pattern, ty) = a.split_once('=').expect("has '='");
                assert!(!pattern.is_empty() && !ty.is_empty());
                let ty = GGML_TYPE_NAMES
                    .iter()
                    .find(|n| n.eq_ignore_ascii_case(ty))
                    .expect("a ggml type name");
                (
                    regex::Regex::new(&pattern.to_lowercase()).expect("compiles"),
                    *ty,
                )
            })
            .collect();
        parsed
            .iter()
            .find(|(re, _)| re.is_match(tensor))
            .map(|(_, t)| *t)
    }

    fn measured(bits: u64, rel: f64) -> Outcome {
        Outcome::Measured(Measurement {
            storage_bits: bits,
            bits_per_weight: bits as f64 / 256.0,
            mse: rel,
            rel_mse: rel,
            sqnr_db: if rel == 0.0 {
                f64::INFINITY
            } else {
                -10.0 * rel.log10()
            },
            cosine: Some(1.0),
            max_abs_error: 0.0,
            weighted: None,
        })
    }

    /// Three 1×256 tensors whose names differ only where an unescaped '.' would match, plus a
    /// 1-D norm, under two GGUF candidates.
    fn gguf_table() -> SweepTable {
        let names = [
            "blk.1.attn_q.weight",
            "blk.11.attn_q.weight",
            "blk.1xattn_q.weight",
        ];
        let mut tensors: Vec<SweepTensor> = names
            .iter()
            .enumerate()
            .map(|(i, n)| SweepTensor {
                name: n.to_string(),
                shape: vec![1, 256],
                dtype: DType::F16,
                numel: 256,
                stored_bits: 256 * 16,
                status: TensorStatus::Measured { weighted: false },
                outcomes: vec![
                    measured(256 * 9 / 2, 0.01 * (i + 1) as f64),
                    measured(256 * 17 / 2, 0.0),
                ],
            })
            .collect();
        tensors.push(SweepTensor {
            name: "blk.1.attn_norm.weight".into(),
            shape: vec![256],
            dtype: DType::F32,
            numel: 256,
            stored_bits: 256 * 32,
            status: TensorStatus::Measured { weighted: false },
            outcomes: vec![measured(256 * 9 / 2, 0.1), measured(256 * 17 / 2, 0.0)],
        });
        SweepTable {
            model: "m".into(),
            candidates: vec![Candidate::format("q4_k"), Candidate::format("q8_0")],
            tensors,
            importance_unmatched: Vec::new(),
            evaluated: 8,
            cached: 0,
            elapsed_ms: 1.0,
        }
    }

    fn recipe_for(table: &SweepTable, budget: Budget) -> Recipe {
        let problem = Problem::new(table, &Rules::default(), Objective::RelMse).expect("valid");
        let allocation = problem.allocate(budget).expect("feasible");
        let uniform: Vec<UniformPoint> = (0..table.candidates.len())
            .filter_map(|c| problem.uniform(table, c))
            .collect();
        let curve = problem.curve(2.0, 8.5, 0.5);
        Recipe::new(table, &problem, &allocation, &uniform, &curve)
    }

    #[test]
    fn recipe_round_trips_through_json_with_the_issue_keys() {
        let table = gguf_table();
        let recipe = recipe_for(&table, Budget::BitsPerWeight(14.0));
        let json = serde_json::to_value(&recipe).expect("serialise");
        for key in [
            "budget_bpw",
            "average_bpw",
            "total_bytes",
            "total_error",
            "objective",
            "tensors",
            "uniform",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert_eq!(json["objective"], "rel-mse");
        let t0 = &json["tensors"][0];
        for key in [
            "name",
            "numel",
            "candidate",
            "format",
            "bits_per_weight",
            "mse",
            "rel_mse",
            "sqnr_db",
            "why",
        ] {
            assert!(t0.get(key).is_some(), "missing tensors[].{key}");
        }
        for key in ["format", "average_bpw", "total_error"] {
            assert!(
                json["uniform"][0].get(key).is_some(),
                "missing uniform[].{key}"
            );
        }
        // The norm is kept in F32 with null errors.
        let norm = &json["tensors"][3];
        assert_eq!(norm["format"], "F32");
        assert_eq!(norm["why"], "kept");
        assert!(norm["candidate"].is_null() && norm["sqnr_db"].is_null());
        let text = serde_json::to_string(&recipe).expect("serialise");
        let back: Recipe = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, recipe);
        // 14 bpw over 1024 weights = 14336 bits. The F32 norm takes 8192; q4_k is 1152 bits
        // per tensor and q8_0 2176: all q8_0 (6528) does not fit the 6144 left, two q8_0 and
        // one q4_k (5504) do, and the one left in q4_k is the one with the least error (t0).
        assert_eq!(recipe.budget_bytes, 1792);
        assert_eq!(recipe.total_bits, 8192 + 5504);
        let ids: Vec<Option<&str>> = recipe
            .tensors
            .iter()
            .map(|t| t.candidate.as_deref())
            .collect();
        assert_eq!(ids, [Some("q4_k"), Some("q8_0"), Some("q8_0"), None]);
    }

    #[test]
    fn tensor_type_lines_parse_as_llama_quantize_reads_them() {
        let table = gguf_table();
        let recipe = recipe_for(&table, Budget::BitsPerWeight(14.0));
        let args = recipe
            .llama_quantize_tensor_types()
            .expect("all GGUF types");
        // The 1-D norm is not quantized by llama-quantize, so it gets no line.
        assert_eq!(args.len(), 3);
        assert_eq!(
            args[0].split_once('=').map(|p| p.0),
            Some(r"^blk\.1\.attn_q\.weight$")
        );
        for t in &recipe.tensors[..3] {
            let want = gguf_type_name(t.candidate.as_deref().expect("planned")).expect("GGUF");
            let got = llama_type_of(&args, &t.name).expect("a pattern matches");
            assert!(
                got.eq_ignore_ascii_case(want),
                "{}: {got} vs {want}",
                t.name
            );
        }
        assert_eq!(llama_type_of(&args, "blk.1.attn_norm.weight"), None);
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
        // An affine choice has no GGUF type.
        let mut mixed = recipe.clone();
        mixed.tensors[0].candidate = Some("int4_g32_minmax".into());
        assert!(mixed.llama_quantize_tensor_types().is_err());
        let mut upper = recipe.clone();
        upper.tensors[0].name = "Blk.1.W".into();
        assert!(upper.llama_quantize_tensor_types().is_err());
    }
}
