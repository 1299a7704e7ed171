//! The per-channel range plot's data: min and max of every output channel (row of the 2-D
//! view) of the selected tensor, so a user sees which channels force a per-channel scale.

use super::super::jobs::JobKey;
use super::super::state::ModelRef;
use super::results::ValueStore;
use crate::cancel::Cancel;

/// The inputs of one tensor's channel ranges.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelKey {
    /// The model.
    pub model: ModelRef,
    /// Tensor index.
    pub tensor: usize,
}

impl JobKey for ChannelKey {
    fn same_subject(&self, other: &Self) -> bool {
        self == other
    }
}

/// Min and max per output channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRanges {
    /// Per row, (min, max) of its finite values; None for a row without any.
    pub rows: Vec<Option<(f32, f32)>>,
    /// The largest |x| of the tensor (the per-tensor scale's reach).
    pub absmax: f32,
}

/// Rows of a tensor of `shape`: the first axis for two or more axes (the 2-D view's rows),
/// one row for a vector.
pub fn row_count(shape: &[usize]) -> usize {
    if shape.len() >= 2 {
        shape.first().copied().unwrap_or(1).max(1)
    } else {
        1
    }
}

/// Computes [`ChannelRanges`].
pub fn channel_ranges(
    store: &ValueStore,
    key: &ChannelKey,
    cancel: &Cancel,
) -> Result<ChannelRanges, String> {
    let values = store.values(&key.model, key.tensor, cancel)?;
    let shape = key
        .model
        .model
        .tensors()
        .get(key.tensor)
        .map(|t| t.shape.clone())
        .unwrap_or_default();
    Ok(ranges_of(&values, row_count(&shape)))
}

/// [`ChannelRanges`] of `values` split into `rows` equal rows.
pub fn ranges_of(values: &[f32], rows: usize) -> ChannelRanges {
    let per = (values.len() / rows.max(1)).max(1);
    let rows: Vec<Option<(f32, f32)>> = values.chunks(per).map(crate::stats::row_minmax).collect();
    let absmax = rows
        .iter()
        .flatten()
        .fold(0.0f32, |a, &(lo, hi)| a.max(lo.abs()).max(hi.abs()));
    ChannelRanges { rows, absmax }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_per_row() {
        let v = [1.0, -2.0, 3.0, 0.5, f32::NAN, -7.0];
        let r = ranges_of(&v, 2);
        assert_eq!(r.rows, vec![Some((-2.0, 3.0)), Some((-7.0, 0.5))]);
        assert_eq!(r.absmax, 7.0);
        assert_eq!(row_count(&[4, 6]), 4);
        assert_eq!(row_count(&[6]), 1);
    }
}
