//! The tensor browser's rows and their order: one row per tensor with the statistics computed
//! so far, grouped by layer and sorted in natural order (blk.2 before blk.10), or flat when
//! filtered or sorted by a column.

use std::cmp::Ordering;

use super::super::state::{BrowserState, SortColumn};
use super::results::{RowError, TensorStats};
use crate::tensor::TensorInfo;

/// One tensor as the browser shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct BrowserRow {
    /// Index in the model.
    pub index: usize,
    /// Full name.
    pub name: String,
    /// Stored dtype.
    pub dtype: String,
    /// Shape, e.g. "4096×4096".
    pub shape: String,
    /// Stored size in bytes.
    pub size_bytes: u64,
    /// Whether the tensor holds floats (integer tensors are listed, never quantized).
    pub float: bool,
    /// max |x| over finite values, once computed.
    pub absmax: Option<f64>,
    /// Standard deviation, once computed.
    pub std: Option<f64>,
    /// Outliers under the settings' threshold, once computed.
    pub outliers: Option<u64>,
    /// SQNR in dB under the current settings, once computed.
    pub sqnr_db: Option<f64>,
}

impl BrowserRow {
    /// The row of tensor `index` with what has been computed of it.
    pub fn new(
        index: usize,
        info: &TensorInfo,
        stats: Option<&TensorStats>,
        error: Option<RowError>,
    ) -> Self {
        Self {
            index,
            name: info.name.clone(),
            dtype: info.dtype.name().to_string(),
            shape: info
                .shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("×"),
            size_bytes: info.size_bytes,
            float: info.dtype.is_float(),
            absmax: stats.map(|s| s.summary.absmax),
            std: stats.and_then(|s| s.summary.std),
            outliers: error.map(|r| r.outliers),
            sqnr_db: error.map(|r| r.sqnr_db),
        }
    }
}

/// The group a tensor name belongs to: up to and including the first numeric component
/// ("layers.0.mlp.up_proj.weight" → "layers.0"), else the first component; the demo's captured
/// layer inputs form one "activations" group.
pub fn group_of(name: &str) -> &str {
    if name.starts_with(super::super::demo::ACTIVATIONS_PREFIX) {
        return "activations";
    }
    let mut end = 0;
    for (i, part) in name.split('.').enumerate() {
        end += part.len() + usize::from(i > 0);
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            return name.get(..end).unwrap_or(name);
        }
    }
    name.split('.').next().unwrap_or(name)
}

/// Compares names with runs of digits as numbers ("blk.2" < "blk.10").
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) if p.is_ascii_digit() && q.is_ascii_digit() => {
                let dx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let dy = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (nx, ny) = (&x[..dx], &y[..dy]);
                // Longer digit runs (without leading zeros) are larger numbers.
                let strip = |s: &[u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
                let (sx, sy) = (&nx[strip(nx)..], &ny[strip(ny)..]);
                let order = sx.len().cmp(&sy.len()).then_with(|| sx.cmp(sy));
                if order != Ordering::Equal {
                    return order;
                }
                (x, y) = (&x[dx..], &y[dy..]);
            }
            (Some(p), Some(q)) => {
                if p != q {
                    return p.cmp(q);
                }
                (x, y) = (&x[1..], &y[1..]);
            }
        }
    }
}

/// An entry of the visible list: a group header or a tensor row.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A group header.
    Group {
        /// The group's name prefix.
        name: String,
        /// Tensors in it.
        count: usize,
    },
    /// A tensor (an index into the rows), indented under a group header.
    Tensor {
        /// Index into the rows slice.
        row: usize,
        /// Whether it is listed under a group header.
        indented: bool,
    },
}

/// The visible entries for the current filter and sort: a tree in natural name order, or a
/// flat sorted list when filtering or sorting by a column.
pub fn visible_entries(rows: &[BrowserRow], state: &BrowserState) -> Vec<Entry> {
    let needle = state.filter.to_lowercase();
    let mut matching: Vec<usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| needle.is_empty() || r.name.to_lowercase().contains(&needle))
        .map(|(i, _)| i)
        .collect();
    let (column, ascending) = (state.sort.column, state.sort.ascending);
    if column == SortColumn::File && needle.is_empty() {
        matching.sort_by(|&a, &b| natural_cmp(&rows[a].name, &rows[b].name));
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(&first) = matching.get(i) {
            let group = group_of(&rows[first].name).to_string();
            let members: Vec<usize> = matching[i..]
                .iter()
                .copied()
                .take_while(|&j| group_of(&rows[j].name) == group)
                .collect();
            i += members.len().max(1);
            if members.len() == 1 {
                out.extend(members.into_iter().map(|row| Entry::Tensor {
                    row,
                    indented: false,
                }));
                continue;
            }
            let collapsed = state.collapsed.contains(&group);
            out.push(Entry::Group {
                name: group,
                count: members.len(),
            });
            if !collapsed {
                out.extend(members.into_iter().map(|row| Entry::Tensor {
                    row,
                    indented: true,
                }));
            }
        }
        return out;
    }
    let key = |r: &BrowserRow| -> Option<f64> {
        match column {
            SortColumn::File | SortColumn::Name => None,
            // Display ordering only.
            SortColumn::Size => Some(r.size_bytes as f64),
            SortColumn::Absmax => r.absmax,
            SortColumn::Std => r.std,
            SortColumn::Outliers => r.outliers.map(|o| o as f64),
            SortColumn::Sqnr => r.sqnr_db,
        }
    };
    match column {
        SortColumn::File | SortColumn::Name => {
            matching.sort_by(|&a, &b| natural_cmp(&rows[a].name, &rows[b].name));
        }
        _ => matching.sort_by(|&a, &b| {
            // Uncomputed values sort last in either direction.
            match (key(&rows[a]), key(&rows[b])) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => natural_cmp(&rows[a].name, &rows[b].name),
            }
        }),
    }
    if !ascending {
        // Reverse only the computed part so missing values stay at the end.
        let named = matches!(column, SortColumn::Name | SortColumn::File);
        let computed = matching
            .iter()
            .take_while(|&&i| named || key(&rows[i]).is_some())
            .count();
        matching[..computed].reverse();
    }
    matching
        .into_iter()
        .map(|row| Entry::Tensor {
            row,
            indented: false,
        })
        .collect()
}

/// Tensor indices in the order the browser shows them (collapsed groups hide theirs).
pub fn visible_order(rows: &[BrowserRow], state: &BrowserState) -> Vec<usize> {
    visible_entries(rows, state)
        .into_iter()
        .filter_map(|e| match e {
            Entry::Tensor { row, .. } => rows.get(row).map(|r| r.index),
            Entry::Group { .. } => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::state::Sort;

    fn row(index: usize, name: &str, absmax: Option<f64>) -> BrowserRow {
        BrowserRow {
            index,
            name: name.into(),
            dtype: "F32".into(),
            shape: "2".into(),
            size_bytes: 8,
            float: true,
            absmax,
            std: None,
            outliers: None,
            sqnr_db: None,
        }
    }

    fn tensor(row: usize, indented: bool) -> Entry {
        Entry::Tensor { row, indented }
    }

    #[test]
    fn groups_end_at_the_first_numeric_component() {
        assert_eq!(group_of("layers.0.mlp.up_proj.weight"), "layers.0");
        assert_eq!(
            group_of("encoder.layer.11.attention.self.query.weight"),
            "encoder.layer.11"
        );
        assert_eq!(group_of("embeddings.word_embeddings.weight"), "embeddings");
        assert_eq!(group_of("bias"), "bias");
        assert_eq!(
            group_of("activations.encoder.layer.3.intermediate.dense.input"),
            "activations"
        );
    }

    #[test]
    fn natural_order_reads_numbers_as_numbers() {
        assert_eq!(natural_cmp("blk.2.attn", "blk.10.attn"), Ordering::Less);
        assert_eq!(natural_cmp("blk.10", "blk.9"), Ordering::Greater);
        assert_eq!(natural_cmp("a.007", "a.7"), Ordering::Equal);
        assert_eq!(natural_cmp("a.b", "a.c"), Ordering::Less);
        assert_eq!(natural_cmp("a", "a.1"), Ordering::Less);
    }

    #[test]
    fn tree_groups_in_natural_order_and_collapses() {
        let rows = vec![
            row(0, "blk.10.a", None),
            row(1, "blk.10.b", None),
            row(2, "blk.2.a", None),
            row(3, "blk.2.b", None),
            row(4, "token_embd", None),
        ];
        let mut state = BrowserState::default();
        assert_eq!(
            visible_entries(&rows, &state),
            vec![
                Entry::Group {
                    name: "blk.2".into(),
                    count: 2
                },
                tensor(2, true),
                tensor(3, true),
                Entry::Group {
                    name: "blk.10".into(),
                    count: 2
                },
                tensor(0, true),
                tensor(1, true),
                tensor(4, false),
            ]
        );
        state.collapsed.insert("blk.2".into());
        assert_eq!(visible_order(&rows, &state), vec![0, 1, 4]);
    }

    #[test]
    fn filter_and_sort_give_a_flat_list_with_missing_values_last() {
        let rows = vec![
            row(0, "a.x", Some(2.0)),
            row(1, "b.x", None),
            row(2, "c.x", Some(5.0)),
            row(3, "d.y", Some(1.0)),
        ];
        let mut state = BrowserState {
            sort: Sort {
                column: SortColumn::Absmax,
                ascending: false,
            },
            ..BrowserState::default()
        };
        assert_eq!(
            visible_entries(&rows, &state),
            vec![
                tensor(2, false),
                tensor(0, false),
                tensor(3, false),
                tensor(1, false)
            ]
        );
        state.sort.ascending = true;
        state.filter = "X".into();
        assert_eq!(
            visible_entries(&rows, &state),
            vec![tensor(0, false), tensor(2, false), tensor(1, false)]
        );
    }
}
