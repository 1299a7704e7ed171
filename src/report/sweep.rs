//! The sweep's measurement table as rows (one per tensor × candidate) for `plan --sweep`
//! (JSON or CSV) and the app's export.
//!
//! Row keys: `name`, `numel`, `candidate`, `bits_per_weight`, `mse`, `rel_mse`, `sqnr_db`,
//! `applicable`, `reason`, plus `storage_bits`, `cosine`, `max_abs_error` and `weighted`.
//! `mse`, `rel_mse` and `sqnr_db` are the importance-weighted figures when `weighted` is true
//! (`cosine` and `max_abs_error` are always unweighted). Not-applicable rows have `null`
//! figures and the reason; tensors that are not planned have no rows.

use serde::Serialize;
use serde_json::Value;

use super::{csv_quote, json_float};
use crate::plan::sweep::{Outcome, SweepTable, TensorStatus};

/// One tensor × candidate cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    /// The tensor.
    pub name: String,
    /// Its element count.
    pub numel: u64,
    /// The candidate id.
    pub candidate: String,
    /// Stored bits per weight (None when not applicable).
    pub bits_per_weight: Option<f64>,
    /// Stored bits of the tensor.
    pub storage_bits: Option<u64>,
    /// MSE (weighted when `weighted`).
    pub mse: Option<f64>,
    /// Relative MSE (weighted when `weighted`).
    pub rel_mse: Option<f64>,
    /// SQNR in dB (weighted when `weighted`; +inf when exact).
    pub sqnr_db: Option<f64>,
    /// Cosine similarity (unweighted).
    pub cosine: Option<f64>,
    /// Largest |e| (unweighted).
    pub max_abs_error: Option<f64>,
    /// Whether the candidate applies.
    pub applicable: bool,
    /// Why not, when it does not.
    pub reason: String,
    /// Whether an importance matrix weighted the errors.
    pub weighted: bool,
}

/// Every measured cell of `table`, tensor-major.
pub fn sweep_rows(table: &SweepTable) -> Vec<SweepRow> {
    let mut rows = Vec::new();
    for t in &table.tensors {
        let TensorStatus::Measured { weighted } = t.status else {
            continue;
        };
        for (c, outcome) in table.candidates.iter().zip(&t.outcomes) {
            let mut row = SweepRow {
                name: t.name.clone(),
                numel: t.numel,
                candidate: c.id.clone(),
                bits_per_weight: None,
                storage_bits: None,
                mse: None,
                rel_mse: None,
                sqnr_db: None,
                cosine: None,
                max_abs_error: None,
                applicable: false,
                reason: String::new(),
                weighted,
            };
            match outcome {
                Outcome::Measured(m) => {
                    row.bits_per_weight = Some(m.bits_per_weight);
                    row.storage_bits = Some(m.storage_bits);
                    row.mse = Some(m.planning_mse());
                    row.rel_mse = Some(m.planning_rel_mse());
                    row.sqnr_db = Some(m.planning_sqnr_db());
                    row.cosine = m.cosine;
                    row.max_abs_error = Some(m.max_abs_error);
                    row.applicable = true;
                }
                Outcome::NotApplicable { reason } => row.reason = reason.clone(),
            }
            rows.push(row);
        }
    }
    rows
}

fn opt(v: Option<f64>) -> Value {
    v.map_or(Value::Null, json_float)
}

/// The rows as one JSON array (infinities as "inf"/"-inf").
pub fn sweep_json(rows: &[SweepRow]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name,
                    "numel": r.numel,
                    "candidate": r.candidate,
                    "bits_per_weight": opt(r.bits_per_weight),
                    "storage_bits": r.storage_bits,
                    "mse": opt(r.mse),
                    "rel_mse": opt(r.rel_mse),
                    "sqnr_db": opt(r.sqnr_db),
                    "cosine": opt(r.cosine),
                    "max_abs_error": opt(r.max_abs_error),
                    "applicable": r.applicable,
                    "reason": r.reason,
                    "weighted": r.weighted,
                })
            })
            .collect(),
    )
}

/// The CSV header matching [`sweep_csv`]'s rows.
pub const SWEEP_CSV_HEADER: &str = "name,numel,candidate,bits_per_weight,storage_bits,mse,rel_mse,sqnr_db,cosine,max_abs_error,applicable,reason,weighted";

/// The rows as CSV (header first; empty cells for missing figures; RFC 4180 quoting).
pub fn sweep_csv(rows: &[SweepRow]) -> String {
    let f = |v: Option<f64>| v.map_or_else(String::new, |x| x.to_string());
    let mut out = String::from(SWEEP_CSV_HEADER);
    out.push('\n');
    for r in rows {
        let cells = [
            csv_quote(&r.name),
            r.numel.to_string(),
            csv_quote(&r.candidate),
            f(r.bits_per_weight),
            r.storage_bits.map_or_else(String::new, |b| b.to_string()),
            f(r.mse),
            f(r.rel_mse),
            f(r.sqnr_db),
            f(r.cosine),
            f(r.max_abs_error),
            r.applicable.to_string(),
            csv_quote(&r.reason),
            r.weighted.to_string(),
        ];
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::candidate::Candidate;
    use crate::plan::sweep::{Measurement, SweepTensor};
    use crate::tensor::DType;

    #[test]
    fn rows_json_and_csv_agree() {
        let table = SweepTable {
            model: "m".into(),
            candidates: vec![Candidate::format("q4_k"), Candidate::format("q8_0")],
            tensors: vec![
                SweepTensor {
                    name: "w,1".into(),
                    shape: vec![2, 128],
                    dtype: DType::F32,
                    numel: 256,
                    stored_bits: 8192,
                    status: TensorStatus::Measured { weighted: false },
                    outcomes: vec![
                        Outcome::NotApplicable {
                            reason: "row of 128 is not a multiple of 256".into(),
                        },
                        Outcome::Measured(Measurement {
                            storage_bits: 2176,
                            bits_per_weight: 8.5,
                            mse: 0.0,
                            rel_mse: 0.0,
                            sqnr_db: f64::INFINITY,
                            cosine: Some(1.0),
                            max_abs_error: 0.0,
                            weighted: None,
                        }),
                    ],
                },
                SweepTensor {
                    name: "ids".into(),
                    shape: vec![4],
                    dtype: DType::I64,
                    numel: 4,
                    stored_bits: 256,
                    status: TensorStatus::NotPlanned {
                        reason: "I64 tensor".into(),
                    },
                    outcomes: Vec::new(),
                },
            ],
            importance_unmatched: Vec::new(),
            evaluated: 2,
            cached: 0,
            elapsed_ms: 1.0,
        };
        let rows = sweep_rows(&table);
        assert_eq!(rows.len(), 2);
        let json = sweep_json(&rows);
        assert_eq!(json[0]["applicable"], false);
        assert!(json[0]["mse"].is_null());
        assert_eq!(json[1]["sqnr_db"], "inf");
        assert_eq!(json[1]["bits_per_weight"], 8.5);
        let csv = sweep_csv(&rows);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("\"w,1\",256,q4_k,,"), "{}", lines[1]);
        assert!(lines[2].contains(",inf,"), "{}", lines[2]);
        // Every line has the header's width, plus one split inside the quoted "w,1".
        assert_eq!(
            lines[2].split(',').count(),
            SWEEP_CSV_HEADER.split(',').count() + 1
        );
    }
}
