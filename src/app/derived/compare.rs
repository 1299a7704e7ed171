//! The derived results of comparing the open model (the original) with a quantized file of
//! it: the pairing and per-tensor comparison (one background job with progress, through
//! `plan::pair` and `plan::compare`), the deployed error of one paired tensor (a source the
//! existing error views take: its error distributions, heatmaps, stored block levels and the
//! picked value's stored fields), and beside each tensor the best quantscope candidate at the
//! file's bits per weight.

use std::path::PathBuf;
use std::sync::Arc;

use super::super::jobs::{JobKey, JobState, Jobs, Runner};
use super::super::pairing::CompareRequest;
use super::super::state::{AppState, ModelRef, Region, Tab};
use super::heat::{self, HeatImage, HeatKind, HeatSource};
use super::results::{ErrorDetail, Upstream, error_detail_of};
use super::{HeatPair, Shown};
use crate::cancel::Cancel;
use crate::plan::compare::{TensorError, aligned_values, compare_models, error_of};
use crate::plan::pair::{self, PairPlan, Side, TensorPair};
use crate::quant::formats::{self, BlockDetail, Encoded, Part, PartDtype, QuantFormat};
use crate::report::compare::{CompareReport, no_pairs_message};
use crate::tensor::{DType, Model};

/// The comparison of the open model with the files of a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CompareKey {
    /// The original: the open model.
    pub original: ModelRef,
    /// The quantized model's files.
    pub request: CompareRequest,
}

impl JobKey for CompareKey {}

/// A finished comparison: the quantized model, the pairing and the report the CLI prints.
pub struct Paired {
    /// The quantized model.
    pub quantized: Arc<Model>,
    /// How its tensors pair with the original's.
    pub plan: PairPlan,
    /// The comparison, as `quantscope compare` reports it (`report.comparison.tensors[i]` is
    /// the comparison of `plan.pairs[i]`).
    pub report: CompareReport,
}

impl Paired {
    /// The index in `plan.pairs` of the pair of original tensor `original_index`.
    pub fn pair_index_of(&self, original_index: usize) -> Option<usize> {
        self.plan
            .pairs
            .iter()
            .position(|p| p.original_index == original_index)
    }

    /// `compare --json` of this comparison (the one report, pretty-printed as the CLI prints it).
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(&self.report.to_json()).unwrap_or_default() + "\n"
    }
}

/// How a model's files are named in the report: the path of a single file as given, else the
/// paths joined.
fn paths_label(paths: &[PathBuf], fallback: &str) -> String {
    match paths {
        [] => fallback.to_string(),
        [one] => one.display().to_string(),
        many => many
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Opens the quantized model, pairs it with the original and compares every pair.
pub fn compare(key: &CompareKey, cancel: &Cancel) -> Result<Paired, String> {
    let paths = &key.request.paths;
    let quantized = match paths.as_slice() {
        [] => return Err("no file to compare with".into()),
        [one] => Model::open(one),
        many => Model::open_many(many),
    }
    .map_err(|e| format!("could not open the quantized model: {e}"))?;
    let original = &*key.original.model;
    let plan = pair::pair(original, &quantized);
    let original_label = paths_label(&key.original.paths, original.name());
    let quantized_label = paths_label(paths, quantized.name());
    if plan.pairs.is_empty() {
        return Err(no_pairs_message(
            &original_label,
            &quantized_label,
            original.tensors().len(),
            quantized.tensors().len(),
            &plan,
        ));
    }
    // Progress counts the elements both sides decode.
    let numel = |m: &Model, i: usize| m.tensors().get(i).map_or(0, |t| t.numel());
    let total: u64 = plan
        .pairs
        .iter()
        .map(|p| numel(original, p.original_index) + numel(&quantized, p.quantized_index))
        .sum();
    cancel.reserve(total);
    let comparison = compare_models(original, &quantized, &plan, cancel, |_, _, _| {})
        .map_err(|e| e.to_string())?;
    let report = CompareReport::new(original_label, quantized_label, &plan.mapping, comparison);
    Ok(Paired {
        quantized: Arc::new(quantized),
        plan,
        report,
    })
}

/// The deployed error of one pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeployedKey {
    /// The comparison.
    pub compare: CompareKey,
    /// Its result.
    pub from: Upstream<Paired>,
    /// The pair's index in the plan.
    pub pair: usize,
}

impl JobKey for DeployedKey {
    fn same_subject(&self, other: &Self) -> bool {
        self.compare == other.compare && self.pair == other.pair
    }
}

/// A GGUF block tensor as stored, for its blocks' fields and levels.
pub struct StoredBlocks {
    /// The stored bytes as the format's one part.
    pub encoded: Encoded,
    /// Heads of llama.cpp's Q/K permutation, when the stored rows are permuted.
    pub permuted_heads: Option<usize>,
    /// Stored rows.
    pub rows: usize,
}

impl StoredBlocks {
    /// The block holding original element `flat` (row-major over the original's shape) and the
    /// element's position in it.
    pub fn block_of(&self, flat: usize) -> Option<(BlockDetail, usize)> {
        let row_len = self.encoded.shape.last().copied().unwrap_or(1).max(1);
        let (row, col) = (flat / row_len, flat % row_len);
        let stored_row = match self.permuted_heads {
            Some(heads) => pair::gguf_row_for(row, self.rows, heads).ok()?,
            None => row,
        };
        let stored = stored_row * row_len + col;
        let (block, _) = formats::block_of(self.encoded.format, &self.encoded.shape, stored);
        let detail = formats::block_detail(&self.encoded, block)?;
        let at = stored.checked_sub(detail.first)?;
        (at < detail.values.len()).then_some((detail, at))
    }
}

/// One paired tensor: the original's values and the quantized file's dequantized values
/// element for element (the pair's layout fixes applied), with everything the error views
/// draw from them.
pub struct Deployed {
    /// The original's tensor name.
    pub name: String,
    /// The quantized file's tensor name.
    pub quantized_name: String,
    /// The quantized file's stored type.
    pub dtype: DType,
    /// The shape of the compared values (the original's).
    pub shape: Vec<usize>,
    /// The original's values.
    pub original: Vec<f32>,
    /// The quantized file's dequantized values.
    pub dequantized: Vec<f32>,
    /// Their error (the comparison's numbers, measured again on these values).
    pub error: TensorError,
    /// The error distributions (the error tab).
    pub detail: Arc<ErrorDetail>,
    /// The scale each element was stored with (block types, scaled FP8), original order.
    pub element_scale: Option<Vec<f32>>,
    /// The stored blocks (GGUF block types).
    pub blocks: Option<StoredBlocks>,
    /// Whether llama.cpp's Q/K row permutation was undone.
    pub permutation_undone: bool,
}

impl HeatSource for Deployed {
    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn original(&self) -> &[f32] {
        &self.original
    }

    fn reconstructed(&self) -> &[f32] {
        &self.dequantized
    }

    fn scale_at(&self, flat: usize) -> f32 {
        self.element_scale
            .as_ref()
            .and_then(|s| s.get(flat).copied())
            .unwrap_or(f32::NAN)
    }

    fn one_scale(&self) -> bool {
        false
    }

    fn describe_scale(&self, flat: usize) -> String {
        match &self.element_scale {
            Some(_) => format!("stored scale {:.4e}", self.scale_at(flat)),
            None => format!("{} stores no scale", self.dtype.name()),
        }
    }
}

/// The format a GGUF block dtype is stored in.
fn block_format(dtype: DType) -> Option<QuantFormat> {
    QuantFormat::ALL
        .into_iter()
        .find(|&f| formats::gguf::dtype_of(f) == Some(dtype))
}

/// Computes the [`Deployed`] values of one pair.
pub fn deployed(key: &DeployedKey, cancel: &Cancel) -> Result<Deployed, String> {
    let paired = &*key.from.0;
    let original = &*key.compare.original.model;
    let quantized = &*paired.quantized;
    let p = paired.plan.pairs.get(key.pair).ok_or("no such pair")?;
    let q_info = quantized
        .tensors()
        .get(p.quantized_index)
        .ok_or("no such quantized tensor")?;
    let o_info = original
        .tensors()
        .get(p.original_index)
        .ok_or("no such original tensor")?;
    let numel = |i: usize, m: &Model| m.tensors().get(i).map_or(0, |t| t.numel());
    cancel.reserve(numel(p.original_index, original) + numel(p.quantized_index, quantized));
    let aligned = aligned_values(original, quantized, p, cancel)
        .map_err(|e| e.to_string())?
        .map_err(|message| format!("{}: {message}", p.original_name))?;
    let error = error_of(&aligned, cancel).map_err(|e| e.to_string())?;
    let detail = Arc::new(error_detail_of(
        &aligned.original,
        &aligned.dequantized,
        cancel,
    )?);
    let mut shape = o_info.shape.clone();
    if let (Some(first), Some(&row_len)) = (shape.first_mut(), o_info.shape.last()) {
        // The original may have been cut to the GGUF's leading rows (Gemma 3's vocabulary).
        let inner: usize = o_info.shape.iter().skip(1).product::<usize>().max(1);
        if o_info.shape.len() > 1 && row_len > 0 {
            *first = aligned.original.len() / inner;
        }
    }
    let (blocks, element_scale) = stored_scales(
        quantized,
        q_info.dtype,
        &q_info.shape,
        p,
        aligned.original.len(),
        cancel,
    )?;
    Ok(Deployed {
        name: p.original_name.clone(),
        quantized_name: p.quantized_name.clone(),
        dtype: q_info.dtype,
        shape,
        original: aligned.original,
        dequantized: aligned.dequantized,
        error,
        detail,
        element_scale,
        blocks,
        permutation_undone: p.permutation_undone(),
    })
}

/// The stored blocks of a GGUF block tensor and the scale of every element (block types: the
/// scale its level is multiplied with; scaled FP8: the broadcast scale), in the original's
/// element order.
fn stored_scales(
    quantized: &Model,
    dtype: DType,
    q_shape: &[usize],
    p: &TensorPair,
    len: usize,
    cancel: &Cancel,
) -> Result<(Option<StoredBlocks>, Option<Vec<f32>>), String> {
    let rows = q_shape.first().copied().unwrap_or(1).max(1);
    let gguf_side = p.fix.gguf_side == Some(Side::Quantized);
    let heads = p.fix.unpermute_heads.filter(|_| gguf_side);
    if let Some(format) = block_format(dtype) {
        let raw = quantized
            .raw_bytes(p.quantized_index)
            .map_err(|e| e.to_string())?;
        let row_len = q_shape.last().copied().unwrap_or(1).max(1);
        let per_block = formats::gguf::block_elements(format).max(1);
        let mut part_shape = q_shape.to_vec();
        part_shape.pop();
        part_shape.extend([row_len / per_block, formats::gguf::block_bytes(format)]);
        let encoded = Encoded {
            format,
            shape: q_shape.to_vec(),
            parts: vec![Part {
                name: "blocks",
                dtype: PartDtype::U8,
                shape: part_shape,
                bytes: raw.to_vec(),
            }],
        };
        let numel: usize = q_shape.iter().product();
        let mut scales = vec![f32::NAN; numel];
        for (block, chunk) in scales.chunks_mut(per_block).enumerate() {
            if block % 1024 == 0 {
                cancel.check().map_err(|e| e.to_string())?;
            }
            if let Some(d) = formats::block_detail(&encoded, block) {
                for (s, &e) in chunk.iter_mut().zip(&d.element_scale) {
                    *s = e;
                }
            }
        }
        if let Some(h) = heads {
            scales = pair::unpermute_rows(&scales, rows, h)?;
        }
        scales.truncate(len);
        return Ok((
            Some(StoredBlocks {
                encoded,
                permuted_heads: heads,
                rows,
            }),
            Some(scales),
        ));
    }
    if let Some(scale) = &p.fp8_scale {
        let values = quantized
            .values_f32(scale.index, cancel)
            .map_err(|e| e.to_string())?;
        let mut ones = vec![1.0f32; q_shape.iter().product()];
        pair::apply_fp8_scale(&mut ones, q_shape, &values, scale.layout)?;
        ones.truncate(len);
        return Ok((None, Some(ones)));
    }
    Ok((None, None))
}

/// A heatmap of a deployed error.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeployedHeatKey {
    /// The deployed error.
    pub deployed: DeployedKey,
    /// Its values.
    pub from: Upstream<Deployed>,
    /// Which quantity.
    pub kind: HeatKind,
    /// The region of the 2-D view.
    pub region: Region,
}

impl JobKey for DeployedHeatKey {
    fn same_subject(&self, other: &Self) -> bool {
        self.deployed.same_subject(&other.deployed)
            && self.kind == other.kind
            && self.region == other.region
    }

    fn lane(&self) -> u64 {
        let full = u64::from(self.region.r0 == 0 && self.region.c0 == 0);
        match self.kind {
            HeatKind::AbsError => full,
            HeatKind::Scale => 2 + full,
        }
    }
}

/// The best candidate for one pair's original tensor at the file's bits per weight.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CandidateKey {
    /// The comparison.
    pub compare: CompareKey,
    /// Its result.
    pub from: Upstream<Paired>,
    /// The pair's index.
    pub pair: usize,
}

impl JobKey for CandidateKey {
    fn lane(&self) -> u64 {
        // One lane per tensor: the candidates of many tensors compute one after another.
        self.pair as u64
    }

    fn same_subject(&self, other: &Self) -> bool {
        self.pair == other.pair
    }
}

/// The best of quantscope's candidates at no more than the file's bits per weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Its name (a format's CLI name, or "int4 g32" for an affine integer setting).
    pub name: String,
    /// Its true bits per weight.
    pub bits_per_weight: f64,
    /// Its error on the original tensor.
    pub sqnr_db: f64,
    /// Σe² / Σx².
    pub rel_mse: f64,
    /// How many candidates fitted the budget.
    pub tried: usize,
}

/// Quantizes the pair's original tensor with the planner's quick candidates that fit the
/// file's bits per weight and keeps the best SQNR (`plan::compare::best_candidate_at`, which
/// `quantscope compare --best` runs too). `None` when the file stores the tensor in 16 bits or
/// more (no candidate is lossy there) or nothing fits.
pub fn best_candidate(key: &CandidateKey, cancel: &Cancel) -> Result<Option<Candidate>, String> {
    let paired = &*key.from.0;
    let (Some(p), Some(row)) = (
        paired.plan.pairs.get(key.pair),
        paired.report.comparison.tensors.get(key.pair),
    ) else {
        return Err("no such pair".into());
    };
    let budget = row.bits_per_weight;
    let original = &*key.compare.original.model;
    let Some(info) = original.tensors().get(p.original_index) else {
        return Err("no such tensor".into());
    };
    if budget >= 16.0 || !info.dtype.is_float() || row.outcome.is_err() {
        return Ok(None);
    }
    let values = original
        .values_f32(p.original_index, cancel)
        .map_err(|e| e.to_string())?;
    let best = crate::plan::compare::best_candidate_at(&values, &info.shape, budget, cancel)
        .map_err(|e| e.to_string())?;
    Ok(best.map(|b| Candidate {
        name: b.candidate,
        bits_per_weight: b.bits_per_weight,
        sqnr_db: b.sqnr_db,
        rel_mse: b.rel_mse,
        tried: b.tried,
    }))
}

/// The values the histogram marks over the original's distribution: the levels the selected
/// block can take, or the distinct dequantized values of the selected row.
#[derive(Debug, Clone, PartialEq)]
pub struct Levels {
    /// Where they come from, for the legend ("Q4_0 block 12's levels").
    pub label: String,
    /// The values, ascending.
    pub values: Vec<f32>,
}

/// At most this many distinct values of a row are marked (more would hide the histogram).
pub const MAX_ROW_LEVELS: usize = 256;

/// The picked element of a paired tensor: original, stored value, error and stored fields.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployedPick {
    /// Row-major index in the original.
    pub flat: u64,
    /// The original value.
    pub original: f32,
    /// The quantized file's dequantized value.
    pub stored: f32,
    /// The stored block holding it and its position there (GGUF block types).
    pub block: Option<(BlockDetail, usize)>,
    /// The quantized file's type.
    pub dtype: DType,
    /// The scale it was stored with, if any.
    pub scale: Option<f32>,
}

/// The comparison as one frame shows it.
#[derive(Default)]
pub struct CompareView {
    /// The comparison.
    pub paired: Shown<Paired>,
    /// The selected tensor's pair index, when it is paired.
    pub pair: Option<usize>,
    /// The selected pair's deployed error.
    pub deployed: Shown<Deployed>,
    /// Its heatmaps (|error|, stored scale).
    pub heat: [HeatPair; 2],
    /// The best candidate per pair, as far as computed (`Some(None)`: no lossy candidate).
    pub candidates: Vec<Option<Arc<Option<Candidate>>>>,
    /// Candidates still computing.
    pub candidates_pending: usize,
    /// The histogram's marks.
    pub levels: Option<Levels>,
    /// The picked element's stored value.
    pub pick: Option<DeployedPick>,
}

/// The comparison's caches and job lanes.
pub struct CompareJobs {
    compare: Jobs<CompareKey, Paired>,
    deployed: Jobs<DeployedKey, Deployed>,
    heat: Jobs<DeployedHeatKey, HeatImage>,
    candidates: Jobs<CandidateKey, Option<Candidate>>,
}

impl CompareJobs {
    /// The caches, with `runner` for the comparison and the selected pair, `background` for
    /// the candidates.
    pub fn new(runner: Runner, background: Runner) -> Self {
        Self {
            compare: Jobs::new("compare", runner.clone(), 2, compare),
            deployed: Jobs::new("deployed error", runner.clone(), 3, deployed),
            heat: Jobs::new("deployed heatmap", runner, 8, |k: &DeployedHeatKey, c| {
                heat::heat_image(&*k.from.0, k.kind, k.region, c)
            }),
            candidates: Jobs::new("best candidate", background, 100_000, best_candidate),
        }
    }

    /// Drains finished jobs.
    pub fn poll(&mut self) {
        self.compare.poll();
        self.deployed.poll();
        self.heat.poll();
        self.candidates.poll();
    }

    /// Forgets every result (a new model).
    pub fn clear(&mut self) {
        self.compare.clear();
        self.deployed.clear();
        self.heat.clear();
        self.candidates.clear();
    }

    /// Whether some candidate is computing.
    pub fn is_busy(&self) -> bool {
        self.candidates.is_busy()
    }

    /// The comparison of this frame, when one is asked for.
    pub fn view(&mut self, state: &AppState, model: &ModelRef) -> Option<CompareView> {
        let request = state.compare.request.clone()?;
        let key = CompareKey {
            original: model.clone(),
            request,
        };
        let mut view = CompareView {
            paired: Shown::of(self.compare.request(&key)),
            ..CompareView::default()
        };
        let Some(paired) = view.paired.value.clone().filter(|_| view.paired.current) else {
            return Some(view);
        };
        let from = Upstream(Arc::clone(&paired));
        for pair in 0..paired.plan.pairs.len() {
            let state = self.candidates.request(&CandidateKey {
                compare: key.clone(),
                from: from.clone(),
                pair,
            });
            if !state.is_ready() {
                view.candidates_pending += 1;
            }
            view.candidates.push(match state {
                JobState::Ready(c) => Some(c),
                _ => None,
            });
        }
        view.pair = state.selected.and_then(|i| paired.pair_index_of(i));
        let Some(pair) = view.pair else {
            return Some(view);
        };
        let deployed_key = DeployedKey {
            compare: key,
            from,
            pair,
        };
        view.deployed = Shown::of(self.deployed.request(&deployed_key));
        let Some(d) = view.deployed.value.clone() else {
            return Some(view);
        };
        view.levels = levels(&d, state.picked);
        view.pick = state.picked.and_then(|flat| pick(&d, flat));
        if state.tab == Tab::Heatmap && view.deployed.current {
            let (rows, cols) = heat::rows_cols(&d.shape);
            for (slot, kind) in HeatKind::ALL.into_iter().enumerate() {
                let key = DeployedHeatKey {
                    deployed: deployed_key.clone(),
                    from: Upstream(Arc::clone(&d)),
                    kind,
                    region: Region::whole(rows, cols),
                };
                let overview = self.heat.request(&key).value().cloned();
                let detail = state.heat_zoom[slot].and_then(|region| {
                    self.heat
                        .request(&DeployedHeatKey { region, ..key })
                        .value()
                        .cloned()
                });
                view.heat[slot] = HeatPair { overview, detail };
            }
        }
        Some(view)
    }
}

/// The histogram marks of `d` for the picked element (or the first element).
fn levels(d: &Deployed, picked: Option<u64>) -> Option<Levels> {
    let flat = picked.and_then(|f| usize::try_from(f).ok()).unwrap_or(0);
    if let Some(blocks) = &d.blocks
        && let Some((detail, _)) = blocks.block_of(flat)
    {
        return Some(Levels {
            label: format!(
                "{} levels of block {} (element {flat})",
                d.dtype.name(),
                detail.block
            ),
            values: detail.levels,
        });
    }
    let row_len = d.shape.last().copied().unwrap_or(1).max(1);
    let row = flat / row_len;
    let mut values: Vec<f32> = d
        .dequantized
        .get(row * row_len..(row + 1) * row_len)?
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    values.sort_by(f32::total_cmp);
    values.dedup();
    (values.len() <= MAX_ROW_LEVELS).then(|| Levels {
        label: format!(
            "{} distinct {} values of row {row}",
            values.len(),
            d.dtype.name()
        ),
        values,
    })
}

/// The stored value of original element `flat`.
fn pick(d: &Deployed, flat: u64) -> Option<DeployedPick> {
    let i = usize::try_from(flat).ok()?;
    Some(DeployedPick {
        flat,
        original: *d.original.get(i)?,
        stored: *d.dequantized.get(i)?,
        block: d.blocks.as_ref().and_then(|b| b.block_of(i)),
        dtype: d.dtype,
        scale: d
            .element_scale
            .as_ref()
            .and_then(|s| s.get(i).copied())
            .filter(|s| s.is_finite()),
    })
}
