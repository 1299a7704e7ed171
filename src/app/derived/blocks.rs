//! The block view's result: one block of the selected tensor stored in a deployed format (its
//! fields, codes, reconstructed values and levels, read by the core's `block_detail` from the
//! shown quantization's stored parts) beside the block's input values, built off the UI thread.

use super::super::jobs::JobKey;
use super::results::{QuantKey, Quantized, Upstream};
use crate::cancel::Cancel;
use crate::quant::formats::{self, BlockDetail, Encoded, Part, QuantFormat};

/// Most elements of one block the view lists: a per-tensor FP8 "block" (the whole tensor)
/// longer than this is listed in pages of this many elements.
pub const MAX_LISTED: usize = 4096;

/// One block of the shown quantization.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlockKey {
    /// The quantization it belongs to.
    pub quant: QuantKey,
    /// That quantization's result (with its stored parts).
    pub from: Upstream<Quantized>,
    /// The block's index.
    pub block: usize,
}

impl JobKey for BlockKey {
    fn same_subject(&self, other: &Self) -> bool {
        self.quant.same_subject(&other.quant)
    }
}

/// Whether `format` stores one scale for the whole tensor (per-tensor FP8), so that a tensor
/// of `numel` elements is listed in pages of [`MAX_LISTED`].
fn paged(format: QuantFormat, numel: usize) -> bool {
    matches!(format, QuantFormat::Fp8_E4m3 | QuantFormat::Fp8_E5m2) && numel > MAX_LISTED
}

/// The block (or, for a paged per-tensor FP8 tensor, the page) the view lists: the chosen
/// block, except that a page is always the one holding the picked element, so a heatmap click
/// or "explain this number" brings its page, and the page buttons pick the page's first
/// element.
pub fn listed_block(q: &Quantized, chosen: Option<usize>, picked: Option<u64>) -> usize {
    match q.config.format {
        Some(f) if paged(f, q.values.len()) => {
            picked.and_then(|p| usize::try_from(p).ok()).unwrap_or(0) / MAX_LISTED
        }
        _ => chosen.unwrap_or(0),
    }
}

/// One block made readable, with the inputs it was quantized from.
#[derive(Debug, Clone)]
pub struct BlockView {
    /// The format.
    pub format: QuantFormat,
    /// The core's account of the block (for a paged per-tensor FP8 tensor, of the page's
    /// elements: the fields and levels are the whole tensor's).
    pub detail: BlockDetail,
    /// The input value of each listed element (aligned with `detail.codes`).
    pub inputs: Vec<f32>,
    /// Elements per block.
    pub per_block: usize,
    /// Blocks in the tensor (pages, when `paged`).
    pub blocks: usize,
    /// A per-tensor FP8 tensor listed in pages of [`MAX_LISTED`] elements, one scale for all.
    pub paged: bool,
}

impl BlockView {
    /// Whether flat element `flat` is one of the listed elements, and its index in the lists.
    pub fn index_of(&self, flat: usize) -> Option<usize> {
        let i = flat.checked_sub(self.detail.first)?;
        (i < self.detail.codes.len()).then_some(i)
    }

    /// "q4_k levels of block 12", the histogram legend's name of the grid drawn.
    pub fn levels_label(&self) -> String {
        if self.blocks == 1 || self.paged {
            format!("{} levels (one scale for the whole tensor)", self.format)
        } else {
            format!("{} levels of block {}", self.format, self.detail.block)
        }
    }
}

/// A per-tensor FP8 tensor seen as its elements `range` (one byte each): the scale (and so
/// every level and every listed value) is the whole tensor's, the codes those of `range`.
fn elements(encoded: &Encoded, range: std::ops::Range<usize>) -> Encoded {
    let len = range.len();
    Encoded {
        format: encoded.format,
        shape: vec![len],
        parts: encoded
            .parts
            .iter()
            .map(|p| {
                if p.name == "codes" {
                    // Only the page's bytes are copied, not the whole tensor's codes.
                    Part {
                        name: p.name,
                        dtype: p.dtype,
                        shape: vec![len],
                        bytes: p.bytes.get(range.clone()).unwrap_or_default().to_vec(),
                    }
                } else {
                    p.clone()
                }
            })
            .collect(),
    }
}

/// Reads block `key.block` of the shown quantization with the core's `block_detail`.
pub fn block_view(key: &BlockKey, cancel: &Cancel) -> Result<BlockView, String> {
    let q = &*key.from.0;
    let format = q
        .config
        .format
        .ok_or("the block view shows a deployed format's blocks")?;
    let encoded = q
        .result
        .encoded
        .as_ref()
        .ok_or("the quantization kept no stored parts")?;
    cancel.check().map_err(|e| e.to_string())?;
    let numel = q.values.len();
    let paged = paged(format, numel);
    let per_block = if paged {
        MAX_LISTED
    } else {
        formats::block_of(format, &encoded.shape, 0).1
    };
    let blocks = numel.div_ceil(per_block.max(1)).max(1);
    if key.block >= blocks {
        return Err(format!(
            "block {} does not exist: the tensor has {blocks} blocks",
            key.block
        ));
    }
    let detail = if paged {
        let first = key.block * MAX_LISTED;
        formats::block_detail(
            &elements(encoded, first..(first + MAX_LISTED).min(numel)),
            0,
        )
        .map(|d| BlockDetail {
            block: key.block,
            first,
            ..d
        })
    } else {
        formats::block_detail(encoded, key.block)
    }
    .ok_or_else(|| format!("{format}: block {} could not be read", key.block))?;
    let first = detail.first;
    let inputs = q
        .values
        .get(first..first + detail.codes.len())
        .ok_or("the block lies outside the tensor")?
        .to_vec();
    Ok(BlockView {
        format,
        detail,
        inputs,
        per_block,
        blocks,
        paged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::state::ModelRef;
    use crate::quant::{Outputs, QuantConfig, quantize_tensor};
    use crate::tensor::{Model, OwnedTensor};
    use std::sync::Arc;

    fn view_of(format: QuantFormat, shape: &[usize], x: &[f32], block: usize) -> BlockView {
        let (key, q) = quantized(format, shape, x);
        block_view(
            &BlockKey {
                quant: key,
                from: Upstream(Arc::new(q)),
                block,
            },
            &Cancel::never(),
        )
        .expect("block")
    }

    /// The key and the quantization of `x` (of `shape`) in `format`, as the view's job
    /// computes them.
    fn quantized(format: QuantFormat, shape: &[usize], x: &[f32]) -> (QuantKey, Quantized) {
        let model = ModelRef {
            id: 1,
            model: Arc::new(
                Model::from_tensors("t", vec![OwnedTensor::from_f32("w", shape.to_vec(), x)])
                    .expect("model"),
            ),
            paths: vec![],
            batch_sets: Arc::default(),
        };
        let key = QuantKey {
            model,
            tensor: 0,
            config: QuantConfig {
                format: Some(format),
                ..QuantConfig::default()
            },
        };
        let store = super::super::results::ValueStore::default();
        let q = super::super::results::quantize(&store, &key, &Cancel::never()).expect("runs");
        (key, q)
    }

    #[test]
    fn a_block_lists_its_inputs_beside_the_cores_detail() {
        let x: Vec<f32> = (0..4 * 64)
            .map(|i| ((i * 37 % 61) as f32 - 30.0) / 9.0)
            .collect();
        let v = view_of(QuantFormat::Q4_0, &[4, 64], &x, 5);
        // Q4_0 blocks are 32 long: block 5 is row 2's second half.
        assert_eq!((v.per_block, v.blocks, v.detail.first), (32, 8, 160));
        assert_eq!(v.inputs, x[160..192]);
        assert_eq!(v.index_of(170), Some(10));
        assert_eq!(v.index_of(192), None);
        assert_eq!(v.levels_label(), "q4_0 levels of block 5");
    }

    #[test]
    fn a_large_per_tensor_fp8_tensor_is_listed_in_pages_with_the_tensors_scale() {
        let n = 2 * MAX_LISTED + 100;
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 7919 % 1001) as f32 - 500.0) / 64.0)
            .collect();
        let v = view_of(QuantFormat::Fp8_E4m3, &[n], &x, 0);
        assert_eq!(
            (v.blocks, v.detail.codes.len(), v.paged),
            (3, MAX_LISTED, true)
        );
        assert_eq!(
            v.levels_label(),
            "fp8_e4m3 levels (one scale for the whole tensor)"
        );
        // The scale is amax / 448 of the whole tensor (amax 500/64 at i = 0).
        let whole = quantize_tensor(
            &x,
            &[n],
            &QuantConfig {
                format: Some(QuantFormat::Fp8_E4m3),
                ..QuantConfig::default()
            },
            Outputs {
                codes: true,
                dequantized: true,
            },
            &Cancel::never(),
        )
        .expect("runs");
        let full =
            formats::block_detail(whole.encoded.as_ref().expect("parts"), 0).expect("detail");
        assert_eq!(v.detail.fields, full.fields);
        assert_eq!(v.detail.levels, full.levels);
        assert_eq!(v.detail.values, full.values[..MAX_LISTED]);
        // The last page: its 100 elements, numbered from 2 · MAX_LISTED, the same scale.
        let last = view_of(QuantFormat::Fp8_E4m3, &[n], &x, 2);
        assert_eq!((last.detail.block, last.detail.first), (2, 2 * MAX_LISTED));
        assert_eq!(last.detail.codes, full.codes[2 * MAX_LISTED..]);
        assert_eq!(last.detail.values, full.values[2 * MAX_LISTED..]);
        assert_eq!(last.inputs, x[2 * MAX_LISTED..]);
        assert_eq!(last.detail.fields, full.fields);
        assert_eq!(last.index_of(2 * MAX_LISTED + 7), Some(7));
        // The page listed is the picked element's, whatever block was chosen before.
        let (_, q) = quantized(QuantFormat::Fp8_E4m3, &[n], &x);
        assert_eq!(listed_block(&q, Some(0), Some((MAX_LISTED + 5) as u64)), 1);
        assert_eq!(listed_block(&q, Some(2), None), 0);
        // Other formats keep the chosen block.
        let (_, q) = quantized(QuantFormat::Q8_0, &[64], &x[..64]);
        assert_eq!(listed_block(&q, Some(1), Some(5)), 1);
    }
}
