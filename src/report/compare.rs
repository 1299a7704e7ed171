//! The report of `compare`: one struct the CLI prints as a text table or as JSON.
//!
//! JSON keys (stable; scripts parse them): `original`, `quantized`, `unmatched_original`,
//! `unmatched_quantized`, `totals` {`bytes`, `average_bpw`, `total_error`} and `tensors`, each
//! with `name`, `quantized_name`, `type`, `bits_per_weight`, `permutation_undone` and
//! `metrics` {`mse`, `rel_mse`, `sqnr_db`, `cosine`, `max_abs_error`}. A pair that could not
//! be compared has `metrics: null` and one more key, `message`, saying why. Infinite values
//! are the strings "inf" / "-inf" (an exact reconstruction has SQNR "inf"); an undefined
//! cosine (a zero vector) is null.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{human_bytes, json_float};
use crate::plan::compare::{BestCandidate, Comparison, TensorComparison};
use crate::plan::pair::{Architecture, Mapping, PairPlan};

/// How the text table is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// The original model's order.
    #[default]
    File,
    /// SQNR, worst (lowest) first.
    Sqnr,
    /// Relative MSE, worst (highest) first.
    RelMse,
    /// Name, alphabetically.
    Name,
    /// Bits per weight, highest first.
    Bpw,
}

/// The report of one comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareReport {
    /// The original model as given on the command line.
    pub original: String,
    /// The quantized model as given on the command line.
    pub quantized: String,
    /// How names were paired, for people ("Hugging Face ↔ GGUF (llama)").
    pub mapping: String,
    /// The comparison itself.
    pub comparison: Comparison,
    /// Per pair (in `comparison.tensors` order), the best candidate at no more bits when asked
    /// for (`compare --best`); empty otherwise.
    pub best: Vec<Option<BestCandidate>>,
}

impl CompareReport {
    /// The report of `comparison` between the files named `original` and `quantized`.
    pub fn new(
        original: impl Into<String>,
        quantized: impl Into<String>,
        mapping: &Mapping,
        comparison: Comparison,
    ) -> Self {
        Self {
            original: original.into(),
            quantized: quantized.into(),
            mapping: describe_mapping(mapping),
            comparison,
            best: Vec::new(),
        }
    }

    /// The JSON object of `compare --json` (keys in the module docs).
    pub fn to_json(&self) -> Value {
        let c = &self.comparison;
        json!({
            "original": self.original,
            "quantized": self.quantized,
            "unmatched_original": c.unmatched_original,
            "unmatched_quantized": c.unmatched_quantized,
            "totals": {
                "bytes": c.totals.bytes,
                "average_bpw": json_float(c.totals.average_bpw),
                "total_error": json_float(c.totals.total_error),
            },
            "tensors": c
                .tensors
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let mut object = tensor_json(t);
                    if let (false, Some(map)) = (self.best.is_empty(), object.as_object_mut()) {
                        map.insert("best".into(), best_json(self.best.get(i).and_then(Option::as_ref)));
                    }
                    object
                })
                .collect::<Vec<_>>(),
        })
    }

    /// The tensor rows in `sort` order.
    pub fn sorted(&self, sort: SortKey) -> Vec<&TensorComparison> {
        let mut rows: Vec<&TensorComparison> = self.comparison.tensors.iter().collect();
        // Uncompared pairs sort last under the metric orders.
        let sqnr = |t: &TensorComparison| {
            t.outcome
                .as_ref()
                .map_or(f64::INFINITY, |e| e.metrics.sqnr_db)
        };
        let rel =
            |t: &TensorComparison| t.outcome.as_ref().map_or(f64::NEG_INFINITY, |e| e.rel_mse);
        match sort {
            SortKey::File => {}
            SortKey::Sqnr => rows.sort_by(|a, b| sqnr(a).total_cmp(&sqnr(b))),
            SortKey::RelMse => rows.sort_by(|a, b| rel(b).total_cmp(&rel(a))),
            SortKey::Name => rows.sort_by(|a, b| a.name.cmp(&b.name)),
            SortKey::Bpw => rows.sort_by(|a, b| b.bits_per_weight.total_cmp(&a.bits_per_weight)),
        }
        rows
    }

    /// The text report: a header, one table row per pair (in `sort` order), totals, the
    /// unmatched tensors and the notes.
    pub fn to_text(&self, sort: SortKey) -> String {
        let c = &self.comparison;
        let mut out = String::new();
        let _ = writeln!(out, "original:  {}", self.original);
        let _ = writeln!(out, "quantized: {}", self.quantized);
        let _ = writeln!(out, "pairing:   {}", self.mapping);
        let rows = self.sorted(sort);
        let name_width = rows
            .iter()
            .map(|t| t.name.chars().count())
            .chain([6])
            .max()
            .unwrap_or(6);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<name_width$}  {:<8} {:>7} {:>9} {:>11} {:>11} {:>10} {:>11}  quantized name",
            "tensor", "type", "bpw", "SQNR dB", "rel MSE", "MSE", "cosine", "max |e|"
        );
        for t in rows {
            let best = self
                .comparison
                .tensors
                .iter()
                .position(|u| std::ptr::eq(u, t))
                .and_then(|i| self.best.get(i))
                .and_then(Option::as_ref);
            let best_text = match (best, &t.outcome) {
                (Some(b), Ok(e)) => format!(
                    "  best ≤ bpw: {} {:.3} bpw {} dB ({:+.2} dB)",
                    b.candidate,
                    b.bits_per_weight,
                    format_db(b.sqnr_db),
                    b.sqnr_db - e.metrics.sqnr_db
                ),
                _ => String::new(),
            };
            let flag = if t.permutation_undone {
                " [Q/K unpermuted]"
            } else {
                ""
            };
            match &t.outcome {
                Ok(e) => {
                    let m = &e.metrics;
                    let cosine = m
                        .cosine
                        .map_or_else(|| "-".to_string(), |c| format!("{c:.6}"));
                    let _ = writeln!(
                        out,
                        "{:<name_width$}  {:<8} {:>7.3} {:>9} {:>11.4e} {:>11.4e} {:>10} {:>11.4e}  {}{flag}{best_text}",
                        t.name,
                        t.dtype.name(),
                        t.bits_per_weight,
                        format_db(m.sqnr_db),
                        e.rel_mse,
                        m.mse,
                        cosine,
                        m.max_abs_error,
                        t.quantized_name,
                    );
                }
                Err(message) => {
                    let _ = writeln!(
                        out,
                        "{:<name_width$}  {:<8} {:>7.3}  not compared: {message}  ({})",
                        t.name,
                        t.dtype.name(),
                        t.bits_per_weight,
                        t.quantized_name
                    );
                }
            }
        }
        let totals = &c.totals;
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "totals: {} compared of {} pairs; quantized tensor data {} ({} bytes, headers excluded), average {:.4} bits per weight over {} weights; total error Σ numel·rel_MSE = {:.6e}",
            totals.compared,
            c.tensors.len(),
            human_bytes(totals.bytes),
            totals.bytes,
            totals.average_bpw,
            totals.numel,
            totals.total_error
        );
        list(&mut out, "unmatched in the original", &c.unmatched_original);
        list(
            &mut out,
            "unmatched in the quantized file",
            &c.unmatched_quantized,
        );
        let mut counted: BTreeMap<&str, usize> = BTreeMap::new();
        for note in c.tensors.iter().flat_map(|t| &t.notes) {
            *counted.entry(note.as_str()).or_default() += 1;
        }
        if !counted.is_empty() || !c.notes.is_empty() {
            let _ = writeln!(out, "notes:");
            for note in &c.notes {
                let _ = writeln!(out, "  {note}");
            }
            for (note, count) in counted {
                let _ = writeln!(out, "  {note}: {count} tensor(s)");
            }
        }
        out
    }
}

/// The one-line message when no tensor of `original` (with `original_tensors` tensors) pairs
/// with one of `quantized` (`quantized_tensors`): the CLI exits with it, the app shows it.
pub fn no_pairs_message(
    original: &str,
    quantized: &str,
    original_tensors: usize,
    quantized_tensors: usize,
    plan: &PairPlan,
) -> String {
    let why = plan
        .notes
        .first()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    format!(
        "no tensor of {original} pairs with a tensor of {quantized} ({original_tensors} and \
         {quantized_tensors} tensors){why}"
    )
}

fn list(out: &mut String, title: &str, names: &[String]) {
    let _ = writeln!(out, "{title} ({}):", names.len());
    for name in names {
        let _ = writeln!(out, "  {name}");
    }
}

fn format_db(db: f64) -> String {
    if db.is_infinite() {
        if db > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else {
        format!("{db:.2}")
    }
}

fn describe_mapping(mapping: &Mapping) -> String {
    match mapping {
        Mapping::Identity => "identical names".into(),
        Mapping::HfGguf { architecture } => format!(
            "Hugging Face ↔ GGUF names of {} (llama.cpp's converter){}",
            architecture.gguf_name(),
            match architecture {
                a if a.permutes_qk() => "; Q/K row permutation undone",
                Architecture::Gemma | Architecture::Gemma2 | Architecture::Gemma3 =>
                    "; norm weights' +1 undone",
                _ => "",
            }
        ),
        Mapping::UnknownArchitecture { architecture } => {
            format!("identical names (GGUF architecture '{architecture}' has no name map)")
        }
    }
}

/// The `best` object of a tensor (`null` when no lossy candidate fits its bits).
fn best_json(best: Option<&BestCandidate>) -> Value {
    match best {
        Some(b) => json!({
            "candidate": b.candidate,
            "bits_per_weight": json_float(b.bits_per_weight),
            "sqnr_db": json_float(b.sqnr_db),
            "rel_mse": json_float(b.rel_mse),
        }),
        None => Value::Null,
    }
}

fn tensor_json(t: &TensorComparison) -> Value {
    let mut object = json!({
        "name": t.name,
        "quantized_name": t.quantized_name,
        "type": t.dtype.name(),
        "bits_per_weight": json_float(t.bits_per_weight),
        "permutation_undone": t.permutation_undone,
        "metrics": match &t.outcome {
            Ok(e) => json!({
                "mse": json_float(e.metrics.mse),
                "rel_mse": json_float(e.rel_mse),
                "sqnr_db": json_float(e.metrics.sqnr_db),
                "cosine": e.metrics.cosine.map(json_float),
                "max_abs_error": json_float(e.metrics.max_abs_error),
            }),
            Err(_) => Value::Null,
        },
    });
    if let (Err(message), Some(map)) = (&t.outcome, object.as_object_mut()) {
        map.insert("message".into(), json!(message));
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::compare::{TensorError, Totals};
    use crate::quant::metrics::compare;
    use crate::tensor::DType;

    fn entry(name: &str, sqnr_x: f32, outcome_ok: bool) -> TensorComparison {
        let m = compare(&[1.0, 2.0], &[1.0, 2.0 + sqnr_x]);
        TensorComparison {
            name: name.into(),
            quantized_name: format!("q.{name}"),
            dtype: DType::Q8_0,
            numel: 64,
            stored_bytes: 68,
            bits_per_weight: 8.5,
            permutation_undone: name == "b",
            notes: vec!["n".into()],
            outcome: if outcome_ok {
                Ok(TensorError {
                    metrics: m,
                    rel_mse: 0.25,
                })
            } else {
                Err("shapes differ".into())
            },
        }
    }

    fn report() -> CompareReport {
        let comparison = Comparison {
            tensors: vec![
                entry("b", 0.5, true),
                entry("a", 0.1, true),
                entry("c", 0.0, false),
            ],
            unmatched_original: vec!["pooler.dense.weight".into()],
            unmatched_quantized: vec![],
            totals: Totals {
                bytes: 136,
                numel: 128,
                average_bpw: 8.5,
                total_error: 32.0,
                compared: 2,
            },
            notes: vec![],
        };
        CompareReport::new("o.safetensors", "q.gguf", &Mapping::Identity, comparison)
    }

    #[test]
    fn json_has_exactly_the_issue_s_keys() {
        let json = report().to_json();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "original",
                "quantized",
                "tensors",
                "totals",
                "unmatched_original",
                "unmatched_quantized"
            ]
        );
        let mut total_keys: Vec<&str> = json["totals"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        total_keys.sort_unstable();
        assert_eq!(total_keys, ["average_bpw", "bytes", "total_error"]);
        let t = &json["tensors"][0];
        let mut tensor_keys: Vec<&str> =
            t.as_object().unwrap().keys().map(String::as_str).collect();
        tensor_keys.sort_unstable();
        assert_eq!(
            tensor_keys,
            [
                "bits_per_weight",
                "metrics",
                "name",
                "permutation_undone",
                "quantized_name",
                "type"
            ]
        );
        let mut metric_keys: Vec<&str> = t["metrics"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        metric_keys.sort_unstable();
        assert_eq!(
            metric_keys,
            ["cosine", "max_abs_error", "mse", "rel_mse", "sqnr_db"]
        );
        assert_eq!(t["type"], "Q8_0");
        assert_eq!(t["permutation_undone"], true);
        assert_eq!(t["metrics"]["rel_mse"], 0.25);
        // The uncompared pair: metrics null and the reason.
        assert_eq!(json["tensors"][2]["metrics"], Value::Null);
        assert_eq!(json["tensors"][2]["message"], "shapes differ");
        assert_eq!(json["totals"]["bytes"], 136);
    }

    #[test]
    fn text_sorts_and_lists_everything() {
        let r = report();
        let names = |k| {
            r.sorted(k)
                .iter()
                .map(|t| t.name.clone())
                .collect::<Vec<_>>()
        };
        // SQNR of b (error 0.5) is below a's (error 0.1); the uncompared c sorts last.
        assert_eq!(names(SortKey::Sqnr), ["b", "a", "c"]);
        assert_eq!(names(SortKey::Name), ["a", "b", "c"]);
        assert_eq!(names(SortKey::File), ["b", "a", "c"]);
        let text = r.to_text(SortKey::Sqnr);
        assert!(text.contains("not compared: shapes differ"), "{text}");
        assert!(text.contains("[Q/K unpermuted]"), "{text}");
        assert!(
            text.contains("unmatched in the original (1):\n  pooler.dense.weight"),
            "{text}"
        );
        assert!(text.contains("n: 3 tensor(s)"), "{text}");
    }
}
