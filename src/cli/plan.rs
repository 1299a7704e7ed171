//! `quantscope plan`: sweep every tensor under every candidate, then choose one candidate per
//! tensor under a size budget; print the plan as text or JSON, write the recipe and the table.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::args::{ObjectiveArg, PlanArgs};
use super::progress::tensor_bar;
use super::quantize::UsageError;
use crate::cancel::Cancel;
use crate::plan::allocate::BitBound;
use crate::plan::candidate::{default_affine, minmax_affine};
use crate::plan::compare::compare_models;
use crate::plan::formats::QuantFormats;
use crate::plan::pair::pair;
use crate::plan::sweep::FormatEvaluator;
use crate::plan::{
    AllocError, Budget, Candidate, CandidateError, KeepFormat, NamePattern, Objective, Problem,
    Rules, SweepCache, SweepOptions, SweepTable, UniformPoint, sweep,
};
use crate::report::recipe::{Recipe, shell_quote};
use crate::report::sweep::{sweep_csv, sweep_json, sweep_rows};
use crate::tensor::Model;
use crate::tensor::imatrix::read_imatrix;

/// The budget when none is given: Q4_K's 4.5 bits per weight.
pub const DEFAULT_BUDGET_BPW: f64 = 4.5;

/// Budgets of the size–error curve: from, to, step (bits per weight).
const CURVE: (f64, f64, f64) = (2.0, 8.5, 0.25);

/// Whether `name` is a deployed format the planner measures (every `quant::formats` format).
fn format_is_known(name: &str) -> bool {
    QuantFormats.knows(name)
}

/// The default candidates: the min-max affine family, then every deployed format (the MSE
/// half of the affine family is asked for with "affine" or "mse": on all-MiniLM-L6-v2 it takes
/// 53 s where the default list takes 9 s).
fn default_list() -> Vec<Candidate> {
    let mut out = minmax_affine();
    out.extend(QuantFormats::names().into_iter().map(Candidate::format));
    out
}

/// Parses `--candidates`: comma-separated ids and the word "affine"; every unknown name is
/// named in one usage error.
pub fn parse_candidates(list: Option<&str>) -> Result<Vec<Candidate>, UsageError> {
    let Some(list) = list else {
        return Ok(default_list());
    };
    let mut out: Vec<Candidate> = Vec::new();
    let mut unknown = Vec::new();
    let mut invalid = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let parsed: Vec<Candidate> = if item == "affine" {
            default_affine()
        } else if item == "minmax" {
            minmax_affine()
        } else if item == "mse" {
            let minmax = minmax_affine();
            default_affine()
                .into_iter()
                .filter(|c| !minmax.contains(c))
                .collect()
        } else if item == "formats" {
            QuantFormats::names()
                .into_iter()
                .map(Candidate::format)
                .collect()
        } else {
            match Candidate::parse(item, format_is_known) {
                Ok(c) => vec![c],
                Err(CandidateError::Unknown(name)) => {
                    unknown.push(name);
                    continue;
                }
                Err(e) => {
                    invalid.push(e.to_string());
                    continue;
                }
            }
        };
        for c in parsed {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    if !invalid.is_empty() {
        return Err(UsageError(format!("--candidates: {}", invalid.join("; "))));
    }
    if !unknown.is_empty() {
        return Err(UsageError(format!(
            "unknown candidates: {} (affine ids look like int4_g128_minmax, int8_channel_mse, \
             uint4_g32_minmax; formats are {})",
            join(&unknown.iter().collect::<Vec<_>>()),
            QuantFormats::names().join(", ")
        )));
    }
    if out.is_empty() {
        return Err(UsageError("--candidates names no candidate".into()));
    }
    Ok(out)
}

fn join(names: &[&String]) -> String {
    names
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a size: a number of bytes with an optional unit (B; K, KiB = 1024; KB = 1000; M,
/// MiB; MB; G, GiB; GB; T, TiB; TB), case-insensitive.
pub fn parse_size(text: &str) -> Result<u64, UsageError> {
    let bad = || {
        UsageError(format!(
            "--budget-size '{text}' is not a size (12000000, 12MB, 11.5MiB, 2G)"
        ))
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| bad())?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "kb" => 1e3,
        "m" | "mib" => 1024.0 * 1024.0,
        "mb" => 1e6,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "gb" => 1e9,
        "t" | "tib" => 1024.0f64.powi(4),
        "tb" => 1e12,
        _ => return Err(bad()),
    };
    let bytes = (value * scale).floor();
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < 2f64.powi(60)) {
        return Err(bad());
    }
    // A whole number below 2^60: the conversion is exact.
    Ok(bytes as u64)
}

/// Splits "PATTERN=VALUE" at the last '=' (patterns may hold '=' in a regex; values never do).
fn split_value<'a>(flag: &str, text: &'a str) -> Result<(&'a str, &'a str), UsageError> {
    match text.rsplit_once('=') {
        Some((p, v)) if !p.is_empty() && !v.is_empty() => Ok((p, v)),
        _ => Err(UsageError(format!("{flag} '{text}' must be PATTERN=VALUE"))),
    }
}

fn pattern(flag: &str, text: &str) -> Result<NamePattern, UsageError> {
    NamePattern::new(text).map_err(|e| UsageError(format!("{flag}: {e}")))
}

/// The rules the flags ask for; pinned candidates missing from `candidates` are appended.
fn rules_from_args(args: &PlanArgs, candidates: &mut Vec<Candidate>) -> Result<Rules, UsageError> {
    let mut rules = Rules {
        keep_vectors: !args.plan_vectors,
        ..Rules::default()
    };
    for text in &args.pins {
        let (p, id) = split_value("--pin", text)?;
        let candidate = Candidate::parse(id, format_is_known)
            .map_err(|e| UsageError(format!("--pin {text}: {e}")))?;
        if !candidates.contains(&candidate) {
            candidates.push(candidate.clone());
        }
        rules.pins.push((pattern("--pin", p)?, candidate.id));
    }
    for text in &args.keeps {
        let (p, format) = match text.rsplit_once('=') {
            Some((p, f)) if KeepFormat::parse(f).is_some() => (p, KeepFormat::parse(f)),
            _ => (text.as_str(), None),
        };
        rules.keeps.push((pattern("--keep", p)?, format));
    }
    for (flag, texts, is_min) in [
        ("--min-bpw", &args.min_bpw, true),
        ("--max-bpw", &args.max_bpw, false),
    ] {
        for text in texts {
            let (p, v) = split_value(flag, text)?;
            let bpw: f64 = v
                .parse()
                .ok()
                .filter(|b: &f64| b.is_finite() && *b >= 0.0)
                .ok_or_else(|| {
                    UsageError(format!("{flag} {text}: '{v}' is not a number of bits"))
                })?;
            rules.bounds.push(BitBound {
                pattern: pattern(flag, p)?,
                min_bpw: is_min.then_some(bpw),
                max_bpw: (!is_min).then_some(bpw),
            });
        }
    }
    Ok(rules)
}

fn budget_from_args(args: &PlanArgs) -> Result<Budget, UsageError> {
    match (&args.budget_size, args.budget_bpw) {
        (Some(size), _) => Ok(Budget::Bytes(parse_size(size)?)),
        (None, Some(b)) if b.is_finite() && b > 0.0 => Ok(Budget::BitsPerWeight(b)),
        (None, Some(b)) => Err(UsageError(format!(
            "--budget-bpw {b} is not a positive number"
        ))),
        (None, None) => Ok(Budget::BitsPerWeight(DEFAULT_BUDGET_BPW)),
    }
}

/// Writes `bytes` atomically: a temp file in the destination's folder, then a rename.
fn write_atomically(destination: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let folder = match destination.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(&folder)
        .with_context(|| format!("cannot create a temporary file in {}", folder.display()))?;
    std::io::Write::write_all(&mut temp, bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(destination)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", destination.display()))?;
    Ok(())
}

/// Maps allocator errors: rules that contradict each other or name unknown candidates are
/// usage errors (exit 2); the rest depend on the model (exit 1).
fn alloc_error(e: AllocError) -> anyhow::Error {
    match e {
        AllocError::UnknownCandidate(_)
        | AllocError::Conflict { .. }
        | AllocError::BadBudget(_) => UsageError(e.to_string()).into(),
        other => other.into(),
    }
}

/// A number with thousands separators.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A float in short scientific form, or "-".
fn sci(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.3e}"),
        Some(v) if v > 0.0 => "inf".into(),
        Some(_) => "-inf".into(),
        None => "-".into(),
    }
}

/// The text report.
fn text_of(
    recipe: &Recipe,
    table: &SweepTable,
    problem: &Problem,
    budget: Budget,
    imatrix: Option<&Path>,
) -> String {
    let mut out = String::new();
    let weights: u64 = recipe.tensors.iter().map(|t| t.numel).sum();
    let measured = table
        .tensors
        .iter()
        .filter(|t| !t.outcomes.is_empty())
        .count();
    out.push_str(&format!(
        "plan for {}: {} tensors, {} weights; {} candidates; objective {} (sum over planned tensors of numel x {})\n",
        recipe.model,
        recipe.tensors.len(),
        grouped(weights),
        table.candidates.len(),
        recipe.objective.name(),
        match recipe.objective {
            Objective::RelMse => "MSE / mean(x^2)",
            Objective::Mse => "MSE",
        }
    ));
    let default_note = match budget {
        Budget::BitsPerWeight(b) if b == DEFAULT_BUDGET_BPW => {
            " (default; set --budget-bpw or --budget-size)"
        }
        _ => "",
    };
    out.push_str(&format!(
        "budget {:.4} bits per weight = {} bytes of tensor data (headers excluded){default_note}\n",
        recipe.budget_bpw,
        grouped(recipe.budget_bytes)
    ));
    if let Some(path) = imatrix {
        let weighted = table
            .tensors
            .iter()
            .filter(|t| {
                matches!(
                    t.status,
                    crate::plan::TensorStatus::Measured { weighted: true }
                )
            })
            .count();
        out.push_str(&format!(
            "importance matrix {}: weights {weighted} of {measured} measured tensors ({} entries name no tensor of this model)\n",
            path.display(),
            table.importance_unmatched.len()
        ));
    }
    out.push_str(&format!(
        "sweep: {measured} tensors x {} candidates in {:.2} s ({} evaluated, {} from cache)\n\n",
        table.candidates.len(),
        table.elapsed_ms / 1e3,
        table.evaluated,
        table.cached
    ));
    let width = recipe
        .tensors
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(6)
        .clamp(6, 60);
    out.push_str(&format!(
        "{:<width$}  {:>10}  {:<22} {:>7}  {:>10}  {:>8}  why\n",
        "tensor", "numel", "choice", "bits/w", "rel. MSE", "SQNR dB"
    ));
    for t in &recipe.tensors {
        let choice = t.candidate.clone().unwrap_or_else(|| t.format.clone());
        let why = if t.why_detail.is_empty() {
            t.why.clone()
        } else {
            format!("{}: {}", t.why, t.why_detail)
        };
        let sqnr = match t.sqnr_db {
            Some(v) if v.is_finite() => format!("{v:.2}"),
            Some(_) => "inf".into(),
            None => "-".into(),
        };
        out.push_str(&format!(
            "{:<width$}  {:>10}  {:<22} {:>7.3}  {:>10}  {:>8}  {why}\n",
            t.name,
            t.numel,
            choice,
            t.bits_per_weight,
            sci(t.rel_mse),
            sqnr
        ));
    }
    out.push_str(&format!(
        "\ntotal: {:.4} bits per weight, {} bytes of tensor data; total error {:.4e} (lower bound {:.4e}, gap {:.3}%{})\n",
        recipe.average_bpw,
        grouped(recipe.total_bytes),
        recipe.total_error,
        recipe.lower_bound,
        recipe.gap * 100.0,
        if recipe.within_guarantee {
            ", within the 1% guarantee"
        } else {
            ", NOT proven within 1%"
        }
    ));
    for note in &problem.unused_rules {
        out.push_str(&format!("note: {note}\n"));
    }
    out.push_str(
        "\nuniform recipes (every planned tensor in one candidate; kept tensors as above):\n",
    );
    out.push_str(&format!(
        "  {:<22} {:>7}  {:>12}  fallbacks\n",
        "candidate", "bits/w", "total error"
    ));
    let mut uniform: Vec<&crate::report::recipe::UniformReport> = recipe.uniform.iter().collect();
    uniform.sort_by(|a, b| a.average_bpw.total_cmp(&b.average_bpw));
    for u in uniform {
        let fallbacks = if u.fallbacks.is_empty() {
            "-".to_string()
        } else {
            format!(
                "{} tensor(s), e.g. {} -> {}",
                u.fallbacks.len(),
                u.fallbacks[0].tensor,
                u.fallbacks[0].used
            )
        };
        out.push_str(&format!(
            "  {:<22} {:>7.3}  {:>12.4e}  {fallbacks}\n",
            u.format, u.average_bpw, u.total_error
        ));
    }
    if let Some(a) = &recipe.against {
        out.push_str(&format!(
            "\n--against {}: {:.3} bits/weight, {} bytes of tensor data, total error {:.4e} over \
             {} planned tensors (this plan at the same size: see the curve)\n",
            a.file,
            a.average_bpw,
            grouped(a.total_bytes),
            a.total_error,
            a.planned_compared
        ));
        if !a.planned_missing.is_empty() {
            out.push_str(&format!(
                "  {} planned tensor(s) did not pair, e.g. {}\n",
                a.planned_missing.len(),
                a.planned_missing[0]
            ));
        }
    }
    out
}

/// Runs `plan`.
pub fn run(args: &PlanArgs) -> anyhow::Result<()> {
    let mut candidates = parse_candidates(args.candidates.as_deref())?;
    let rules = rules_from_args(args, &mut candidates)?;
    let budget = budget_from_args(args)?;
    if let Some(path) = &args.sweep {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if !matches!(ext.as_deref(), Some("json" | "csv")) {
            return Err(UsageError(format!(
                "--sweep {}: the table is written as .json or .csv",
                path.display()
            ))
            .into());
        }
    }
    let objective = match args.objective {
        ObjectiveArg::RelMse => Objective::RelMse,
        ObjectiveArg::Mse => Objective::Mse,
    };
    // LoadError messages name the file already.
    let model = Model::open(&args.model)?;
    let importance = match &args.imatrix {
        Some(path) => Some(read_imatrix(path)?),
        None => None,
    };
    let bar = tensor_bar(model.tensors().len(), !args.json);
    let cancel = Cancel::never();
    let table = sweep(
        &model,
        &candidates,
        SweepOptions {
            importance: importance.as_ref(),
            formats: Some(&QuantFormats),
        },
        &SweepCache::new(),
        &cancel,
        &mut |p| {
            bar.set_message(p.name.to_string());
            bar.inc(1);
        },
    )
    .with_context(|| format!("sweeping {}", args.model.display()))?;
    bar.finish_and_clear();
    if let Some(path) = &args.sweep {
        let rows = sweep_rows(&table);
        let is_csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let bytes = if is_csv {
            sweep_csv(&rows).into_bytes()
        } else {
            let mut text = serde_json::to_string_pretty(&sweep_json(&rows))?;
            text.push('\n');
            text.into_bytes()
        };
        write_atomically(path, &bytes)?;
    }
    let problem = Problem::new(&table, &rules, objective).map_err(alloc_error)?;
    let allocation = problem.allocate(budget).map_err(alloc_error)?;
    let uniform: Vec<UniformPoint> = (0..table.candidates.len())
        .filter_map(|c| problem.uniform(&table, c))
        .collect();
    let curve = problem.curve(CURVE.0, CURVE.1, CURVE.2);
    let mut recipe = Recipe::new(&table, &problem, &allocation, &uniform, &curve);
    if let Some(path) = &args.against {
        let quantized = Model::open(path)?;
        let pairs = pair(&model, &quantized);
        let comparison = compare_models(&model, &quantized, &pairs, &cancel, |_, _, _| {})
            .map_err(|_| anyhow::anyhow!("cancelled"))?;
        if comparison.totals.compared == 0 {
            return Err(anyhow::anyhow!(
                "--against {}: no tensor pairs with {}",
                path.display(),
                args.model.display()
            ));
        }
        recipe.against = Some(Recipe::against_point(
            &path.display().to_string(),
            &table,
            &problem,
            &comparison,
        ));
    }
    if args.json {
        super::emit(&format!("{}\n", serde_json::to_string_pretty(&recipe)?))?;
    } else {
        super::emit(&text_of(
            &recipe,
            &table,
            &problem,
            budget,
            args.imatrix.as_deref(),
        ))?;
    }
    if let Some(out) = &args.out {
        let mut text = serde_json::to_string_pretty(&recipe)?;
        text.push('\n');
        write_atomically(out, text.as_bytes())?;
        let mut note = format!("wrote {}\n", out.display());
        match recipe.llama_quantize_tensor_types() {
            Ok(lines) => {
                note.push_str(
                    "llama-quantize arguments (add --imatrix and the base type as usual):\n",
                );
                for line in lines {
                    note.push_str(&format!("  --tensor-type {}\n", shell_quote(&line)));
                }
            }
            Err(why) => note.push_str(&format!("no llama-quantize arguments: {why}\n")),
        }
        if args.json {
            eprint!("{note}");
        } else {
            super::emit(&note)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("1000").ok(), Some(1000));
        assert_eq!(parse_size("12MB").ok(), Some(12_000_000));
        assert_eq!(parse_size("1.5KiB").ok(), Some(1536));
        assert_eq!(parse_size("2g").ok(), Some(2 << 30));
        assert_eq!(parse_size(" 3 k ").ok(), Some(3072));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("-5MB").is_err());
    }

    #[test]
    fn candidate_lists_name_every_unknown() {
        let all = parse_candidates(Some("affine")).expect("the default family");
        assert_eq!(all.len(), 56);
        let two = parse_candidates(Some("int4_g128_minmax, int8_channel_mse,int4_g128_minmax"))
            .expect("valid ids");
        assert_eq!(two.len(), 2);
        let mixed = parse_candidates(Some("q4_k,int4_g128_minmax,mxfp4")).expect("formats");
        assert_eq!(
            mixed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["q4_k", "int4_g128_minmax", "mxfp4"]
        );
        assert_eq!(
            parse_candidates(Some("formats")).map(|c| c.len()).ok(),
            Some(26)
        );
        let e = parse_candidates(Some("q4_k,bogus,q9_k")).expect_err("unknown");
        assert!(e.0.contains("bogus, q9_k"), "{}", e.0);
        assert!(parse_candidates(Some("int9_g32_minmax")).is_err());
        assert!(parse_candidates(Some(",")).is_err());
        assert_eq!(parse_candidates(None).map(|c| c.len()).ok(), Some(28 + 26));
        assert_eq!(
            parse_candidates(Some("minmax,mse")).map(|c| c.len()).ok(),
            Some(56)
        );
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(22_713_216), "22,713,216");
    }
}
