//! The derived layer: the value store, the job lanes and every derived result. Once per frame
//! [`Derived::view`] reads the app state, requests each result the panels may show (each key
//! once), and returns a read-only [`FrameView`]; panels draw from it and return commands.
//!
//! Adding a result type is a change here (a key, a compute function in `results`, a lane in
//! [`Derived`], a field of [`FrameView`]) and in the panel that shows it, nowhere else.

pub mod blocks;
pub mod channels;
pub mod compare;
pub mod heat;
pub mod plan;
pub mod results;
pub mod rows;

use std::sync::Arc;

use super::jobs::{JobState, Jobs, Runner};
use super::state::{AppState, Command, ModelRef, Region, Tab};
use crate::quant::{Calibration, QuantConfig, QuantResult};
use crate::tensor::TensorInfo;
use heat::{HeatImage, HeatKey, HeatKind};
use results::{
    CodeGrid, DetailKey, ErrorDetail, HistData, HistKey, MeasureKey, OpenKey, QuantKey, Quantized,
    RowError, RowKey, StatsKey, TensorStats, ThresholdLine, Upstream, ValueStore,
};
use rows::BrowserRow;

/// A result as a panel may show it: the value for exactly the current inputs, or the last one
/// of the same subject (drawn dimmed) while the new one computes, or an error.
pub struct Shown<V> {
    /// The value to draw, if any.
    pub value: Option<Arc<V>>,
    /// Whether `value` is exactly the requested one.
    pub current: bool,
    /// Fraction done of the running job, in [0, 1].
    pub progress: f32,
    /// Why the computation failed.
    pub error: Option<String>,
    /// Whether the result was asked for at all this frame.
    pub requested: bool,
}

impl<V> Default for Shown<V> {
    fn default() -> Self {
        Self {
            value: None,
            current: false,
            progress: 0.0,
            error: None,
            requested: false,
        }
    }
}

impl<V> Shown<V> {
    fn of(state: JobState<V>) -> Self {
        match state {
            JobState::Ready(v) => Self {
                value: Some(v),
                current: true,
                progress: 1.0,
                error: None,
                requested: true,
            },
            JobState::Pending { last, progress } => Self {
                value: last,
                current: false,
                progress,
                error: None,
                requested: true,
            },
            JobState::Failed(e) => Self {
                error: Some(e),
                requested: true,
                ..Self::default()
            },
        }
    }

    /// Whether the result was asked for and is still being computed.
    pub fn is_pending(&self) -> bool {
        self.requested && !self.current && self.error.is_none()
    }
}

/// The calibrators' legend: each one's clip range and error under the settings in force.
#[derive(Default)]
pub struct Legend {
    /// One line per calibrator that has finished (in legend order).
    pub lines: Vec<ThresholdLine>,
    /// Whether some calibrator is still computing.
    pub pending: bool,
    /// The group whose ranges are drawn (the picked element's; 0 when none is picked).
    pub group: usize,
    /// How many groups the settings in force have.
    pub groups: usize,
}

/// The heatmap images of one kind: the whole tensor and, when zoomed, the zoomed region.
#[derive(Default)]
pub struct HeatPair {
    /// The overview image.
    pub overview: Option<Arc<HeatImage>>,
    /// The zoomed detail image, when one is wanted and ready.
    pub detail: Option<Arc<HeatImage>>,
}

/// The real-tensor part of a lesson: the selected tensor under the lesson's settings, through
/// the same jobs (and caches) as the main views, so both show the same numbers.
pub struct LessonReal {
    /// The tensor's name.
    pub name: String,
    /// Its element count (every element is used).
    pub numel: u64,
    /// One run per configuration the lesson asked for, in its order.
    pub runs: Vec<(QuantConfig, Shown<QuantResult>)>,
    /// The tensor's histogram.
    pub hist: Shown<HistData>,
}

/// The Model view's data: the sweep (with its progress), the plan under the budget and pins,
/// and the strip's shape statistics.
#[derive(Default)]
pub struct ModelViewData {
    /// The sweep of the whole model.
    pub sweep: Shown<crate::plan::SweepTable>,
    /// The plan of the shown sweep (or why there is none), once a sweep has finished.
    pub plan: Option<Result<plan::PlanView, String>>,
    /// Per tensor, its shape statistics when the strip's metric needs them and they are done.
    pub shapes: Vec<Option<plan::ShapeStats>>,
}

/// Everything the panels may show in one frame, read-only.
#[derive(Default)]
pub struct FrameView {
    /// The selected tensor's index and metadata.
    pub tensor: Option<(usize, TensorInfo)>,
    /// One browser row per tensor, with the statistics computed so far.
    pub rows: Vec<BrowserRow>,
    /// Tensor indices in the order the browser shows them (for the arrow keys).
    pub visible_order: Vec<usize>,
    /// Whether statistics of some tensor are being computed.
    pub stats_busy: bool,
    /// The selected tensor's quantization under the settings in force.
    pub quant: Shown<Quantized>,
    /// The error distributions of the shown quantization.
    pub detail: Shown<ErrorDetail>,
    /// The selected tensor's histogram.
    pub hist: Shown<HistData>,
    /// The calibrators' legend.
    pub legend: Legend,
    /// The heatmaps (|error|, scale), when the heatmap tab is open.
    pub heat: [HeatPair; 2],
    /// The selected tensor's statistics (exponent histogram for the bit view), once computed.
    pub stats: Option<Arc<TensorStats>>,
    /// The model being opened, if any (a label for the menu bar).
    pub opening: Option<String>,
    /// The open lesson's real-tensor part (lessons mode only).
    pub lesson: Option<LessonReal>,
    /// Whether the selected tensor holds calibration batches (the Batches tab is offered).
    pub has_batches: bool,
    /// Its calibration over batches, when the Batches tab is open.
    pub batches: Shown<results::BatchView>,
    /// The selected tensor's per-channel ranges, when the Channels tab is open.
    pub channels: Shown<channels::ChannelRanges>,
    /// The Model view's data (Model view only).
    pub model_view: Option<ModelViewData>,
    /// The comparison with a quantized file, when one is asked for (its deployed error then
    /// feeds `detail` and `heat` for a paired tensor).
    pub compare: Option<compare::CompareView>,
    /// The selected block of the shown quantization, when a deployed format is chosen.
    pub block: Shown<blocks::BlockView>,
}

/// The result caches and the job lanes.
pub struct Derived {
    runner: Runner,
    store: Arc<ValueStore>,
    open: Jobs<OpenKey, results::OpenedModel>,
    stats: Jobs<StatsKey, TensorStats>,
    rows: Jobs<RowKey, RowError>,
    hist: Jobs<HistKey, HistData>,
    quant: Jobs<QuantKey, Quantized>,
    detail: Jobs<DetailKey, ErrorDetail>,
    measure: Jobs<MeasureKey, QuantResult>,
    heat: Jobs<HeatKey, HeatImage>,
    batches: Jobs<results::BatchKey, results::BatchView>,
    sweeps: Jobs<plan::SweepKey, crate::plan::SweepTable>,
    channels: Jobs<channels::ChannelKey, channels::ChannelRanges>,
    shapes: Jobs<plan::ShapeKey, plan::ShapeStats>,
    plan_memo: plan::PlanMemo,
    compare: compare::CompareJobs,
    blocks: Jobs<blocks::BlockKey, blocks::BlockView>,
    /// The model the caches hold results of.
    model_id: Option<u64>,
}

impl Derived {
    /// The caches with `runner` for interactive jobs and `background` for statistics of every
    /// tensor (so they never queue the selected tensor's work behind them).
    pub fn new(runner: Runner, background: Runner) -> Self {
        let store = Arc::new(ValueStore::default());
        let sweep_cache = Arc::new(crate::plan::SweepCache::new());
        let s7 = Arc::clone(&store);
        let (s1, s2, s3, s4, s5, s6) = (
            Arc::clone(&store),
            Arc::clone(&store),
            Arc::clone(&store),
            Arc::clone(&store),
            Arc::clone(&store),
            Arc::clone(&store),
        );
        Self {
            open: Jobs::new("open", runner.clone(), 2, results::open_model),
            stats: Jobs::new("statistics", background.clone(), 100_000, move |k, c| {
                results::tensor_stats(&s1, k, c)
            }),
            compare: compare::CompareJobs::new(runner.clone(), background.clone()),
            rows: Jobs::new("row errors", background.clone(), 100_000, move |k, c| {
                results::row_error(&s2, k, c)
            }),
            hist: Jobs::new("histogram", runner.clone(), 16, move |k, c| {
                results::histogram_data(&s3, k, c)
            }),
            quant: Jobs::new("quantization", runner.clone(), 3, move |k, c| {
                results::quantize(&s4, k, c)
            }),
            detail: Jobs::new("error detail", runner.clone(), 3, results::error_detail),
            measure: Jobs::new("calibration", runner.clone(), 16, move |k, c| {
                results::measure(&s5, k, c)
            }),
            heat: Jobs::new("heatmap", runner.clone(), 8, heat::build_heat),
            batches: Jobs::new("batch calibration", runner.clone(), 4, move |k, c| {
                results::batch_view(&s6, k, c)
            }),
            blocks: Jobs::new("block view", runner.clone(), 4, blocks::block_view),
            sweeps: Jobs::new("sweep", runner.clone(), 4, move |k, c| {
                plan::run_sweep(&sweep_cache, k, c)
            }),
            channels: Jobs::new("channel ranges", runner.clone(), 8, move |k, c| {
                channels::channel_ranges(&s7, k, c)
            }),
            shapes: Jobs::new(
                "shape statistics",
                background.clone(),
                100_000,
                plan::shape_stats,
            ),
            plan_memo: plan::PlanMemo::default(),
            runner,
            store,
            model_id: None,
        }
    }

    /// Whether jobs run synchronously (tests).
    pub fn is_inline(&self) -> bool {
        self.runner.is_inline()
    }

    /// Drains finished jobs into the caches and reports what the state must learn (a model
    /// opened or failed to open). Call once per frame before [`Derived::view`].
    pub fn poll(&mut self, state: &AppState) -> Vec<Command> {
        self.open.poll();
        self.stats.poll();
        self.rows.poll();
        self.hist.poll();
        self.quant.poll();
        self.detail.poll();
        self.measure.poll();
        self.heat.poll();
        self.batches.poll();
        self.sweeps.poll();
        self.shapes.poll();
        self.channels.poll();
        self.compare.poll();
        self.blocks.poll();
        let mut out = Vec::new();
        if let Some(key) = &state.opening {
            match self.open.request(key) {
                JobState::Ready(opened) => out.push(Command::Opened {
                    model: Arc::clone(&opened.model),
                    paths: opened.paths.clone(),
                    generation: key.generation,
                    skipped: opened.skipped.clone(),
                    batch_sets: Arc::clone(&opened.batch_sets),
                }),
                JobState::Failed(error) => out.push(Command::OpenFailed {
                    error,
                    generation: key.generation,
                }),
                JobState::Pending { .. } => {}
            }
        }
        out
    }

    /// The read-only view of this frame: requests every result the state asks for, once.
    pub fn view(&mut self, state: &AppState) -> FrameView {
        let mut view = FrameView {
            opening: state.opening.as_ref().map(|k| match k.paths.as_slice() {
                [] => "generating the demo model…".to_string(),
                [one, ..] => format!("opening {}…", one.display()),
            }),
            ..FrameView::default()
        };
        let Some(model) = state.model.clone() else {
            return view;
        };
        if self.model_id != Some(model.id) {
            self.forget_model();
            self.model_id = Some(model.id);
        }
        let selected = state
            .selected
            .and_then(|i| model.model.tensors().get(i).map(|t| (i, t.clone())));
        if state.show_lessons {
            // The lessons replace the main views: only their real-tensor runs are needed.
            // Lessons 5, 7 and 8 prefer the built-in captured activations when the model has them.
            let preferred = state
                .settings
                .lessons
                .preferred_real_tensor()
                .and_then(|name| model.model.find(name))
                .and_then(|i| model.model.tensors().get(i).map(|t| (i, t.clone())));
            view.lesson = preferred
                .as_ref()
                .or(selected.as_ref())
                .filter(|(_, info)| info.dtype.is_float())
                .map(|(index, info)| self.lesson_real(state, &model, *index, info));
            view.tensor = selected;
            return view;
        }
        if state.show_model {
            view.model_view = Some(self.model_view(state, &model));
            view.rows = self.rows(state, &model, &view);
            view.visible_order = rows::visible_order(&view.rows, &state.browser);
            view.stats_busy = self.stats.is_busy() || self.rows.is_busy();
            view.tensor = selected;
            return view;
        }
        // The selected tensor's quantization first: every other result of it reads this one.
        if let Some((index, info)) = &selected
            && info.dtype.is_float()
        {
            let key = QuantKey {
                model: model.clone(),
                tensor: *index,
                config: state.effective_config(),
            };
            view.quant = Shown::of(self.quant.request(&key));
            if let Some(q) = view.quant.value.clone() {
                self.derived_of_quantization(state, &model, *index, &q, &mut view);
            }
            view.hist = Shown::of(self.hist.request(&HistKey {
                model: model.clone(),
                tensor: *index,
                bins: state.settings.histogram.bins,
                grid: code_grid(state, view.quant.value.as_deref()),
            }));
            view.legend = self.legend(state, &model, *index, &view);
            if let Some((set, _)) = model.batch_set_of(*index) {
                view.has_batches = true;
                if state.tab == Tab::Batches {
                    let percentile = match state.settings.quant.calibration {
                        Calibration::Percentile(p) => p,
                        _ => state.settings.remembered.percentile,
                    };
                    view.batches = Shown::of(self.batches.request(&results::BatchKey {
                        model: model.clone(),
                        set,
                        bits: state.settings.quant.bits,
                        percentile_bits: percentile.to_bits(),
                    }));
                }
            }
            if state.tab == Tab::Channels {
                view.channels = Shown::of(self.channels.request(&channels::ChannelKey {
                    model: model.clone(),
                    tensor: *index,
                }));
            }
            view.stats = self.stats.get(&StatsKey {
                model: model.clone(),
                tensor: *index,
            });
            if view.stats.is_none() && state.tab == Tab::Bits {
                view.stats = Shown::of(self.stats.request(&StatsKey {
                    model: model.clone(),
                    tensor: *index,
                }))
                .value;
            }
        }
        view.rows = self.rows(state, &model, &view);
        view.visible_order = rows::visible_order(&view.rows, &state.browser);
        view.stats_busy = self.stats.is_busy() || self.rows.is_busy();
        view.tensor = selected;
        self.compare_view(state, &model, &mut view);
        view
    }

    /// The Model view's sweep, plan and strip statistics.
    fn model_view(&mut self, state: &AppState, model: &ModelRef) -> ModelViewData {
        let mv = &state.model_view;
        let key = plan::SweepKey {
            model: model.clone(),
            set: mv.candidates,
        };
        let sweep = if mv.sweep_on {
            Shown::of(self.sweeps.request(&key))
        } else {
            self.sweeps.cancel_running();
            Shown {
                requested: false,
                ..Shown::of(self.sweeps.peek(&key))
            }
        };
        let plan = sweep
            .value
            .as_ref()
            .map(|table| self.plan_memo.plan(table, mv));
        let tensors = model.model.tensors();
        let shapes = if mv.metric.needs_candidate() {
            Vec::new()
        } else {
            tensors
                .iter()
                .enumerate()
                .map(|(tensor, t)| {
                    if !t.dtype.is_float() {
                        return None;
                    }
                    let key = plan::ShapeKey {
                        model: model.clone(),
                        tensor,
                    };
                    self.shapes.request(&key).value().map(|s| **s)
                })
                .collect()
        };
        ModelViewData {
            sweep,
            plan,
            shapes,
        }
    }

    /// The comparison, and for a paired tensor its deployed error as the source of the error
    /// distributions and heatmaps.
    fn compare_view(&mut self, state: &AppState, model: &ModelRef, view: &mut FrameView) {
        view.compare = self.compare.view(state, model);
        let Some(c) = view.compare.as_mut() else {
            return;
        };
        view.stats_busy |= self.compare.is_busy();
        if let Some(d) = &c.deployed.value {
            view.detail = Shown {
                value: Some(Arc::clone(&d.detail)),
                current: c.deployed.current,
                progress: c.deployed.progress,
                error: None,
                requested: true,
            };
            view.heat = std::mem::take(&mut c.heat);
        }
    }

    /// The error detail, the heatmaps and the legend entry that come from the quantization
    /// `q` of the selected tensor (no new quantization).
    fn derived_of_quantization(
        &mut self,
        state: &AppState,
        model: &ModelRef,
        index: usize,
        q: &Arc<Quantized>,
        view: &mut FrameView,
    ) {
        let quant_key = QuantKey {
            model: model.clone(),
            tensor: index,
            config: q.config.clone(),
        };
        view.detail = Shown::of(self.detail.request(&DetailKey {
            quant: quant_key.clone(),
            from: Upstream(Arc::clone(q)),
        }));
        if q.config.format.is_some() {
            view.block = Shown::of(self.blocks.request(&blocks::BlockKey {
                quant: quant_key.clone(),
                from: Upstream(Arc::clone(q)),
                block: blocks::listed_block(q, state.block, state.picked),
            }));
        }
        if state.tab != Tab::Heatmap {
            return;
        }
        let (rows, cols) = heat::rows_cols(&q.result.shape);
        for (slot, kind) in HeatKind::ALL.into_iter().enumerate() {
            // A format's scales live in its blocks: the block view shows them instead.
            if kind == HeatKind::Scale && q.config.format.is_some() {
                continue;
            }
            let key = HeatKey {
                quant: quant_key.clone(),
                from: Upstream(Arc::clone(q)),
                kind,
                region: Region::whole(rows, cols),
            };
            let overview = self.heat.request(&key).value().cloned();
            let detail = state.heat_zoom[slot].and_then(|region| {
                self.heat
                    .request(&HeatKey { region, ..key })
                    .value()
                    .cloned()
            });
            view.heat[slot] = HeatPair { overview, detail };
        }
    }

    /// Every calibrator's clip range and error under the settings in force; the one in force
    /// is read from the selected tensor's quantization (no second run).
    fn legend(
        &mut self,
        state: &AppState,
        model: &ModelRef,
        index: usize,
        view: &FrameView,
    ) -> Legend {
        let mut legend = Legend::default();
        // The affine calibrators' clip ranges do not apply to a deployed format.
        if !state.settings.histogram.show_thresholds || state.settings.quant.format.is_some() {
            return legend;
        }
        let base = &state.settings.quant;
        let main = view.quant.value.as_ref().filter(|_| view.quant.current);
        let p = match base.calibration {
            Calibration::Percentile(p) => p,
            _ => Calibration::DEFAULT_PERCENTILE,
        };
        for calibration in results::legend_calibrations(p) {
            let config = QuantConfig {
                calibration,
                ..base.clone()
            };
            if let Some(q) = main
                && q.config == config
            {
                legend.lines.push(ThresholdLine::of(&config, &q.result));
                continue;
            }
            let key = MeasureKey {
                model: model.clone(),
                tensor: index,
                config,
            };
            // The legend waits for the selected tensor's quantization: on two cores the
            // numbers the user changed come first, the comparison after.
            let state = if view.quant.current {
                self.measure.request(&key)
            } else {
                self.measure.peek(&key)
            };
            match state {
                JobState::Ready(result) => {
                    legend.lines.push(ThresholdLine::of(&key.config, &result));
                }
                JobState::Pending { last, .. } => {
                    legend.pending = true;
                    if let Some(result) = last {
                        legend.lines.push(ThresholdLine::of(&key.config, &result));
                    }
                }
                // A calibrator that cannot run on this tensor is left out of the legend.
                JobState::Failed(_) => {}
            }
        }
        if let Some(q) = view.quant.value.as_ref() {
            legend.groups = q.layout.groups();
            legend.group = state
                .picked
                .and_then(|flat| usize::try_from(flat).ok())
                .map_or(0, |flat| q.layout.group_of(flat));
        }
        legend
    }

    /// The open lesson's runs on the selected tensor.
    fn lesson_real(
        &mut self,
        state: &AppState,
        model: &ModelRef,
        index: usize,
        info: &TensorInfo,
    ) -> LessonReal {
        let runs = state
            .settings
            .lessons
            .real_configs()
            .into_iter()
            .map(|config| {
                let key = MeasureKey {
                    model: model.clone(),
                    tensor: index,
                    config,
                };
                let shown = Shown::of(self.measure.request(&key));
                (key.config, shown)
            })
            .collect();
        let hist = Shown::of(self.hist.request(&HistKey {
            model: model.clone(),
            tensor: index,
            bins: super::lessons::REAL_PLOT_BINS,
            grid: None,
        }));
        LessonReal {
            name: info.name.clone(),
            numel: info.numel(),
            runs,
            hist,
        }
    }

    /// The browser rows: metadata, plus the statistics and errors computed so far (requested
    /// for every tensor once the user asked for them).
    fn rows(&mut self, state: &AppState, model: &ModelRef, view: &FrameView) -> Vec<BrowserRow> {
        let config = &state.settings.quant;
        let selected_row = view
            .quant
            .value
            .as_ref()
            .filter(|_| view.quant.current && state.clip.is_none())
            .map(|q| RowError::of(&q.result, q.outliers));
        model
            .model
            .tensors()
            .iter()
            .enumerate()
            .map(|(index, t)| {
                let float = t.dtype.is_float();
                let stats_key = StatsKey {
                    model: model.clone(),
                    tensor: index,
                };
                let stats = if state.all_stats && float {
                    self.stats.request(&stats_key).value().cloned()
                } else {
                    self.stats.get(&stats_key)
                };
                let row = if float && state.selected == Some(index) && selected_row.is_some() {
                    selected_row
                } else if float {
                    let key = RowKey {
                        model: model.clone(),
                        tensor: index,
                        config: config.clone(),
                    };
                    let shown = if state.all_stats {
                        self.rows.request(&key).value().cloned()
                    } else {
                        self.rows.get(&key)
                    };
                    shown.map(|r| *r)
                } else {
                    None
                };
                BrowserRow::new(index, t, stats.as_deref(), row)
            })
            .collect()
    }

    fn forget_model(&mut self) {
        self.stats.clear();
        self.rows.clear();
        self.hist.clear();
        self.quant.clear();
        self.detail.clear();
        self.measure.clear();
        self.heat.clear();
        self.batches.clear();
        self.sweeps.clear();
        self.shapes.clear();
        self.channels.clear();
        self.plan_memo.clear();
        self.compare.clear();
        self.blocks.clear();
    }

    /// The decoded values of a tensor (decoding it if needed), for tests and lessons.
    pub fn values(&self, model: &ModelRef, index: usize) -> Result<Arc<Vec<f32>>, String> {
        self.store
            .values(model, index, &crate::cancel::Cancel::never())
    }
}

/// The histogram's code grid: one bin per code of the shown quantization's single (S, z).
fn code_grid(state: &AppState, q: Option<&Quantized>) -> Option<CodeGrid> {
    if !state.settings.histogram.code_grid {
        return None;
    }
    match q?.params.as_slice() {
        [p] => Some(CodeGrid::of(p)),
        _ => None,
    }
}
