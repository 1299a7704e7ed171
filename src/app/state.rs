//! The app state, the [`Command`]s panels return, and [`AppState::handle`], the only place the
//! state changes. Everything a frame shows is either here or derived from it by the derived
//! layer (`super::derived`), which reads this state and never writes it.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use super::settings::{HistogramSettings, Settings, Theme};
use crate::float::Overflow;
use crate::quant::{Calibration, Granularity, QuantConfig};
use crate::tensor::Model;

/// Which tensors hold a set of calibration batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchMembers {
    /// Consecutive row blocks of one tensor (the demo's activations, batches concatenated).
    Rows {
        /// The tensor.
        tensor: usize,
        /// Rows of each batch, in order.
        rows: Vec<usize>,
    },
    /// Whole tensors, one per batch, in order (an `.npz` of `batch_NN` members).
    Tensors(Vec<usize>),
}

/// Calibration batches of one layer input, as ONNX Runtime's and TensorRT's calibrators would
/// see them one after another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSet {
    /// Where the batches are.
    pub members: BatchMembers,
    /// The weights (tensor indices) that read this input, when they are in the model.
    pub input_of: Vec<usize>,
    /// Where the batches came from, in words.
    pub source: String,
}

impl BatchSet {
    /// Whether tensor `index` holds (part of) these batches.
    pub fn contains(&self, index: usize) -> bool {
        match &self.members {
            BatchMembers::Rows { tensor, .. } => *tensor == index,
            BatchMembers::Tensors(t) => t.contains(&index),
        }
    }
}

/// A loaded model with an identity that changes on every open (so caches never mix models).
#[derive(Clone)]
pub struct ModelRef {
    /// Unique per open.
    pub id: u64,
    /// The model.
    pub model: Arc<Model>,
    /// The files it came from (empty for the demo).
    pub paths: Vec<PathBuf>,
    /// The calibration batches among its tensors.
    pub batch_sets: Arc<Vec<BatchSet>>,
}

impl ModelRef {
    /// The batch set tensor `index` belongs to, if any.
    pub fn batch_set_of(&self, index: usize) -> Option<(usize, &BatchSet)> {
        self.batch_sets
            .iter()
            .enumerate()
            .find(|(_, s)| s.contains(index))
    }
}

impl ModelRef {
    /// The display name for the menu bar: the demo's name, a single file's name with its
    /// folder ("hf/model.safetensors"), or the model's name for several files.
    pub fn label(&self) -> String {
        match self.paths.as_slice() {
            [] => super::demo::DEMO_NAME.to_string(),
            [one] => {
                let file = one.file_name().map(|f| f.to_string_lossy().into_owned());
                let folder = one
                    .parent()
                    .and_then(|p| p.file_name())
                    .map(|f| f.to_string_lossy().into_owned());
                match (folder, file) {
                    (Some(d), Some(f)) => format!("{d}/{f}"),
                    (None, Some(f)) => f,
                    _ => self.model.name().to_string(),
                }
            }
            _ => self.model.name().to_string(),
        }
    }
}

impl PartialEq for ModelRef {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for ModelRef {}

impl Hash for ModelRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl std::fmt::Debug for ModelRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModelRef({}, {})", self.id, self.label())
    }
}

/// What the open lane should load: files, or the built-in demo when empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OpenRequest {
    /// The files, or empty for the built-in demo.
    pub paths: Vec<PathBuf>,
    /// Distinguishes repeated opens of the same files (reloading).
    pub generation: u64,
}

/// Rows [r0, r1) and columns [c0, c1) of the 2-D view of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region {
    /// First row.
    pub r0: usize,
    /// One past the last row.
    pub r1: usize,
    /// First column.
    pub c0: usize,
    /// One past the last column.
    pub c1: usize,
}

impl Region {
    /// The whole view of a `rows` × `cols` tensor.
    pub fn whole(rows: usize, cols: usize) -> Self {
        Self {
            r0: 0,
            r1: rows,
            c0: 0,
            c1: cols,
        }
    }
}

/// A clip range dragged by hand in the histogram (per-tensor granularity).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipRange {
    /// Lower bound.
    pub lo: f32,
    /// Upper bound.
    pub hi: f32,
}

/// The tabs of the lower half of the central area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// Original vs dequantized and the error histogram.
    Error,
    /// |error| and scale heatmaps.
    Heatmap,
    /// The bit layout of the picked value.
    Bits,
    /// Calibration over batches (tensors that hold calibration batches).
    Batches,
    /// Min and max per output channel.
    Channels,
}

/// Which candidates the Model view's sweep measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CandidateSet {
    /// The min-max affine family (2–8 bits × channel/g32/g64/g128) and every deployed format.
    #[default]
    Quick,
    /// Those plus the MSE-calibrated affine family (on MiniLM 53 s for the 28 of them against 9 s for everything else).
    WithMse,
}

/// What colours the Model view's sensitivity strip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StripMetric {
    /// Relative MSE under the chosen candidate (log scale).
    #[default]
    RelMse,
    /// SQNR in dB under the chosen candidate.
    Sqnr,
    /// Excess kurtosis of the weights.
    Kurtosis,
    /// max |x| / std.
    MaxOverStd,
    /// Values beyond 6 standard deviations from the mean.
    Outliers,
}

impl StripMetric {
    /// Every metric, in menu order.
    pub const ALL: [StripMetric; 5] = [
        Self::RelMse,
        Self::Sqnr,
        Self::Kurtosis,
        Self::MaxOverStd,
        Self::Outliers,
    ];

    /// The menu label.
    pub fn label(self) -> &'static str {
        match self {
            Self::RelMse => "relative MSE",
            Self::Sqnr => "SQNR (dB)",
            Self::Kurtosis => "kurtosis",
            Self::MaxOverStd => "max / std",
            Self::Outliers => "outliers (> 6σ)",
        }
    }

    /// Whether the metric reads the sweep under a candidate (else the tensor statistics).
    pub fn needs_candidate(self) -> bool {
        matches!(self, Self::RelMse | Self::Sqnr)
    }
}

/// The Model view's state (planning the whole model under a size budget).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelViewState {
    /// The budget in average bits per weight over all tensors.
    pub budget_bpw: f64,
    /// The candidates measured.
    pub candidates: CandidateSet,
    /// Whether the sweep runs (false after Cancel).
    pub sweep_on: bool,
    /// The strip's colouring metric.
    pub metric: StripMetric,
    /// The candidate (id) the strip's error metrics are read under.
    pub strip_candidate: String,
    /// Per-tensor manual choices: tensor name → candidate id (a click on a Pareto point).
    pub pins: Vec<(String, String)>,
}

impl Default for ModelViewState {
    fn default() -> Self {
        Self {
            budget_bpw: 4.5,
            candidates: CandidateSet::Quick,
            sweep_on: true,
            metric: StripMetric::RelMse,
            strip_candidate: "int4_g32_minmax".to_string(),
            pins: Vec::new(),
        }
    }
}

impl ModelViewState {
    /// The candidate pinned to tensor `name`, if any.
    pub fn pin_of(&self, name: &str) -> Option<&str> {
        self.pins
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.as_str())
    }
}

/// The browser columns one can sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    /// File order (the tree).
    File,
    /// Name.
    Name,
    /// Stored size.
    Size,
    /// max |x|.
    Absmax,
    /// Standard deviation.
    Std,
    /// Outlier count.
    Outliers,
    /// SQNR under the current settings.
    Sqnr,
}

impl SortColumn {
    /// Whether this column needs the statistics of every tensor.
    pub fn needs_stats(self) -> bool {
        matches!(self, Self::Absmax | Self::Std | Self::Outliers | Self::Sqnr)
    }
}

/// How the browser is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// The column.
    pub column: SortColumn,
    /// Ascending (true) or descending.
    pub ascending: bool,
}

/// The tensor browser's state.
#[derive(Debug, Clone, PartialEq)]
pub struct BrowserState {
    /// Substring filter (case-insensitive) on tensor names.
    pub filter: String,
    /// Sort column and direction.
    pub sort: Sort,
    /// Collapsed group prefixes.
    pub collapsed: BTreeSet<String>,
    /// Focus the filter box on the next frame (/ or Ctrl+F).
    pub focus_filter: bool,
    /// Scroll the selected row into view on the next frame (arrow keys, a sort change).
    pub scroll_to_selected: bool,
}

impl Default for BrowserState {
    fn default() -> Self {
        Self {
            filter: String::new(),
            sort: Sort {
                column: SortColumn::File,
                ascending: true,
            },
            collapsed: BTreeSet::new(),
            focus_filter: false,
            scroll_to_selected: false,
        }
    }
}

/// The value the bit layout view studies and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct BitsState {
    /// The value converted into every format.
    pub value: f32,
    /// The text box contents (kept separately so typing is not reformatted mid-edit).
    pub text: String,
    /// Where the value came from ("typed", or a weight of the selected tensor).
    pub source: String,
    /// The FP8 overflow convention in force.
    pub overflow: Overflow,
}

impl Default for BitsState {
    fn default() -> Self {
        // The seed's example: 10000 × 10000 overflows FP16 but not BF16.
        Self {
            value: 1.0e8,
            text: "1e8".into(),
            source: "typed".into(),
            overflow: Overflow::Saturate,
        }
    }
}

/// Something only the window can do, queued by [`AppState::handle`] for the eframe wiring.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Put text on the clipboard.
    Copy(String),
    /// Show the native file dialog.
    OpenDialog,
    /// Show the native file dialog for the quantized file to compare with the open model.
    CompareDialog,
}

/// A change the user (or a finished job) asked for; [`AppState::handle`] performs it.
#[derive(Debug, Clone)]
pub enum Command {
    /// Open these files as one model.
    Open(Vec<PathBuf>),
    /// Show the native file dialog.
    OpenDialog,
    /// Show the path field (with a note saying why, when the file dialog is unavailable).
    ShowOpenPath(Option<String>),
    /// Edit the path field.
    SetOpenPathText(String),
    /// Close the path field.
    CloseOpenPath,
    /// Switch to the built-in demo.
    OpenDemo,
    /// A model finished opening.
    Opened {
        /// The model.
        model: Arc<Model>,
        /// Its files (empty for the demo).
        paths: Vec<PathBuf>,
        /// Which open request it answers.
        generation: u64,
        /// Files of the request that could not be opened (each message names its file).
        skipped: Vec<String>,
        /// The calibration batches among its tensors.
        batch_sets: Arc<Vec<BatchSet>>,
    },
    /// A model could not be opened.
    OpenFailed {
        /// Why (names the file).
        error: String,
        /// Which open request it answers.
        generation: u64,
    },
    /// Change the theme.
    SetTheme(Theme),
    /// Dismiss the error message at this index.
    DismissError(usize),
    /// Show a transient status line.
    Status(String),
    /// Select a tensor by index.
    Select(usize),
    /// Change the browser filter.
    SetFilter(String),
    /// Focus the browser filter on the next frame.
    FocusFilter,
    /// The filter box took the focus it was asked to take.
    FilterFocused,
    /// Scroll the selected browser row into view on the next frame.
    ScrollToSelected,
    /// The browser scrolled the selection into view.
    ScrolledToSelected,
    /// Sort the browser.
    SetSort(Sort),
    /// Collapse or expand a browser group.
    ToggleGroup(String),
    /// Compute the statistics columns for every tensor (and keep them current).
    ComputeAllStats,
    /// Edit the bit view's text box.
    SetBitsText(String),
    /// Show a value in the bit view, with where it came from.
    SetBitsValue(f32, String),
    /// Change the FP8 overflow convention.
    SetOverflow(Overflow),
    /// Pick element `flat` (row-major) of the selected tensor.
    PickElement(u64),
    /// Set (or clear) the manual clip range.
    SetClip(Option<ClipRange>),
    /// Replace the quantization settings.
    SetQuant(QuantConfig),
    /// Show block `n` of the selected tensor in the block view (deployed formats).
    SelectBlock(usize),
    /// Replace the histogram options.
    SetHistogram(HistogramSettings),
    /// Switch the lower tab.
    SetTab(Tab),
    /// The zoomed region a heatmap wants in detail (slot 0 |error|, 1 scale).
    SetHeatZoom {
        /// Which heatmap.
        slot: usize,
        /// The region, or none when not zoomed.
        region: Option<Region>,
    },
    /// Show the lessons (true) or the main views (false).
    ShowLessons(bool),
    /// Take a lesson's settings to the main views.
    TryLesson(Box<QuantConfig>),
    /// Replace the lessons' state (the learner edited an input, or changed lesson).
    SetLessons(Box<super::lessons::LessonsState>),
    /// The window title now names the open model.
    TitleShown,
    /// Put text on the clipboard (`what` names it in the status line).
    CopyText {
        /// The text.
        text: String,
        /// What it is ("the report").
        what: String,
    },
    /// Write a file into the export folder.
    SaveText {
        /// The file name (no folder).
        file_name: String,
        /// The contents.
        contents: String,
    },
    /// Write a view's plots as SVG and PNG into the export folder.
    Export(Box<super::export::Export>),
    /// Show the Model view (true) or the tensor view (false).
    ShowModelView(bool),
    /// Set the Model view's budget (average bits per weight).
    SetBudget(f64),
    /// Choose the candidates the Model view's sweep measures.
    SetCandidateSet(CandidateSet),
    /// Start (true) or cancel (false) the Model view's sweep.
    RunSweep(bool),
    /// Colour the sensitivity strip by this metric.
    SetStripMetric(StripMetric),
    /// Read the strip's error metrics under this candidate (id).
    SetStripCandidate(String),
    /// Pin a tensor to a candidate (Some(id)) or release it to the budget (None).
    PinTensor {
        /// The tensor's name.
        tensor: String,
        /// The candidate id, or None to unpin.
        candidate: Option<String>,
    },
    /// Open a tensor in the tensor view (a click on the sensitivity strip).
    OpenTensor(usize),
    /// Compare the open model with a quantized file of it (see `super::pairing`).
    Compare(super::pairing::CompareCommand),
}

/// The "Open path" field: typing a path instead of using the file dialog.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OpenPath {
    /// What is typed.
    pub text: String,
    /// Why the field is shown instead of the dialog, if that is the reason.
    pub note: Option<String>,
    /// Whether the typed path is the quantized file to compare with the open model.
    pub for_compare: bool,
}

/// Everything the app knows that is not derived from something else.
pub struct AppState {
    /// Persisted settings (theme, recent files, quantization and view options, lessons).
    pub settings: Settings,
    /// The open model.
    pub model: Option<ModelRef>,
    /// The model being opened.
    pub opening: Option<OpenRequest>,
    /// The "Open path" field, when shown.
    pub open_path: Option<OpenPath>,
    /// The comparison with a quantized file of the open model.
    pub compare: super::pairing::CompareState,
    /// The selected tensor.
    pub selected: Option<usize>,
    /// The picked element of the selected tensor (row-major index).
    pub picked: Option<u64>,
    /// The manual clip range (dragged in the histogram).
    pub clip: Option<ClipRange>,
    /// The bit layout view's state.
    pub bits: BitsState,
    /// The tensor browser's state.
    pub browser: BrowserState,
    /// The lower tab.
    pub tab: Tab,
    /// The zoomed heatmap region per kind (|error|, scale).
    pub heat_zoom: [Option<Region>; 2],
    /// Whether the lessons replace the main views.
    pub show_lessons: bool,
    /// Whether the Model view replaces the tensor view.
    pub show_model: bool,
    /// The Model view's state.
    pub model_view: ModelViewState,
    /// Whether the statistics columns are computed for every tensor.
    pub all_stats: bool,
    /// Messages shown in the window until dismissed.
    pub errors: Vec<String>,
    /// A transient status line (saved files, copied reports).
    pub status: Option<String>,
    /// The last text put on the clipboard (tests read it; the clipboard is the window's).
    pub copied: Option<String>,
    /// Show compute times (tests turn this off so snapshots are deterministic).
    pub show_timings: bool,
    /// Work for the window, taken by the eframe wiring after each frame.
    pub effects: Vec<Effect>,
    /// The block of the selected tensor the block view shows when a deployed format is chosen
    /// (none: block 0); picking an element selects the block holding it.
    pub block: Option<usize>,
    /// Whether the window title must be set again (a new model).
    pub title_stale: bool,
    next_model_id: u64,
    open_generation: u64,
}

impl AppState {
    /// A state with `settings` and nothing open yet.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            model: None,
            opening: None,
            open_path: None,
            compare: super::pairing::CompareState::default(),
            selected: None,
            picked: None,
            clip: None,
            bits: BitsState::default(),
            browser: BrowserState::default(),
            tab: Tab::Error,
            heat_zoom: [None, None],
            show_lessons: false,
            show_model: false,
            model_view: ModelViewState::default(),
            all_stats: false,
            errors: Vec::new(),
            status: None,
            copied: None,
            show_timings: true,
            effects: Vec::new(),
            block: None,
            title_stale: true,
            next_model_id: 1,
            open_generation: 0,
        }
    }

    /// The settings the selected tensor is quantized with: the settings in force, with a
    /// dragged clip range as a per-tensor manual calibration.
    pub fn effective_config(&self) -> QuantConfig {
        let mut config = self.settings.quant.clone();
        // A deployed format has no clip range: it alone decides every bit.
        if config.format.is_none()
            && let Some(ClipRange { lo, hi }) = self.clip
        {
            config.granularity = Granularity::PerTensor;
            config.calibration = Calibration::Manual { lo, hi };
        }
        config
    }

    /// The selected tensor's name.
    pub fn selected_name(&self) -> Option<&str> {
        let model = self.model.as_ref()?;
        model
            .model
            .tensors()
            .get(self.selected?)
            .map(|t| t.name.as_str())
    }

    /// Performs one command: the only place the state changes.
    pub fn handle(&mut self, command: Command) {
        match command {
            Command::Open(paths) => self.start_open(paths),
            Command::OpenDemo => self.start_open(Vec::new()),
            Command::OpenDialog => self.effects.push(Effect::OpenDialog),
            Command::ShowOpenPath(note) => {
                let text = self.open_path.take().map(|o| o.text).unwrap_or_default();
                self.open_path = Some(OpenPath {
                    text,
                    note,
                    for_compare: false,
                });
            }
            Command::SetOpenPathText(text) => {
                if let Some(o) = &mut self.open_path {
                    o.text = text;
                }
            }
            Command::CloseOpenPath => self.open_path = None,
            Command::Opened {
                model,
                paths,
                generation,
                skipped,
                batch_sets,
            } => {
                if self.opening.as_ref().map(|o| o.generation) == Some(generation) {
                    self.opening = None;
                    self.errors.extend(skipped);
                    self.install_model(model, paths, batch_sets);
                }
            }
            Command::OpenFailed { error, generation } => {
                if self.opening.as_ref().map(|o| o.generation) == Some(generation) {
                    self.opening = None;
                    self.errors.push(error);
                }
            }
            Command::SetTheme(t) => self.settings.theme = t,
            Command::DismissError(i) => {
                if i < self.errors.len() {
                    self.errors.remove(i);
                }
            }
            Command::Status(s) => self.status = Some(s),
            Command::Select(i) => self.select(i),
            Command::SetFilter(f) => self.browser.filter = f,
            Command::FocusFilter => self.browser.focus_filter = true,
            Command::FilterFocused => self.browser.focus_filter = false,
            Command::ScrollToSelected => self.browser.scroll_to_selected = true,
            Command::ScrolledToSelected => self.browser.scroll_to_selected = false,
            Command::SetSort(sort) => {
                self.browser.sort = sort;
                // The selection stays in view when the order changes.
                self.browser.scroll_to_selected = true;
                if sort.column.needs_stats() {
                    self.all_stats = true;
                }
            }
            Command::ToggleGroup(g) => {
                if !self.browser.collapsed.remove(&g) {
                    self.browser.collapsed.insert(g);
                }
            }
            Command::ComputeAllStats => self.all_stats = true,
            Command::SetBitsText(t) => self.bits.text = t,
            Command::SetBitsValue(v, source) => self.set_bits_value(v, source),
            Command::SetOverflow(o) => self.bits.overflow = o,
            Command::PickElement(flat) => self.pick(flat),
            Command::SetClip(c) => self.clip = c,
            Command::SetQuant(q) => self.set_quant(q),
            Command::SelectBlock(b) => self.block = Some(b),
            Command::SetHistogram(h) => self.settings.histogram = h,
            Command::SetTab(t) => self.tab = t,
            Command::SetHeatZoom { slot, region } => {
                if let Some(z) = self.heat_zoom.get_mut(slot) {
                    *z = region;
                }
            }
            Command::ShowLessons(on) => {
                self.show_lessons = on;
                if on {
                    self.show_model = false;
                }
            }
            Command::TryLesson(cfg) => {
                self.show_lessons = false;
                self.set_quant(*cfg);
            }
            Command::SetLessons(lessons) => self.settings.lessons = *lessons,
            Command::TitleShown => self.title_stale = false,
            Command::CopyText { text, what } => {
                self.copied = Some(text.clone());
                self.effects.push(Effect::Copy(text));
                self.status = Some(format!("{what} copied to the clipboard"));
            }
            Command::SaveText {
                file_name,
                contents,
            } => self.save_text(&file_name, &contents),
            Command::Export(export) => self.export(&export),
            Command::ShowModelView(on) => {
                self.show_model = on;
                if on {
                    self.show_lessons = false;
                }
            }
            Command::SetBudget(bpw) => {
                if bpw.is_finite() {
                    self.model_view.budget_bpw = bpw.clamp(0.5, 64.0);
                }
            }
            Command::SetCandidateSet(set) => {
                self.model_view.candidates = set;
                self.model_view.sweep_on = true;
            }
            Command::RunSweep(on) => self.model_view.sweep_on = on,
            Command::SetStripMetric(m) => {
                self.model_view.metric = m;
                if !m.needs_candidate() {
                    self.all_stats = true;
                }
            }
            Command::SetStripCandidate(id) => self.model_view.strip_candidate = id,
            Command::PinTensor { tensor, candidate } => {
                self.model_view.pins.retain(|(n, _)| *n != tensor);
                if let Some(c) = candidate {
                    self.model_view.pins.push((tensor, c));
                }
            }
            Command::OpenTensor(index) => {
                self.show_model = false;
                self.select(index);
                self.browser.scroll_to_selected = true;
            }
            Command::Compare(c) => self.handle_compare(c),
        }
    }

    fn start_open(&mut self, paths: Vec<PathBuf>) {
        self.open_generation += 1;
        self.opening = Some(OpenRequest {
            paths,
            generation: self.open_generation,
        });
    }

    fn install_model(
        &mut self,
        model: Arc<Model>,
        paths: Vec<PathBuf>,
        batch_sets: Arc<Vec<BatchSet>>,
    ) {
        let id = self.next_model_id;
        self.next_model_id += 1;
        if !paths.is_empty() {
            self.settings.remember_recent(&paths);
        }
        // Start on the first weight matrix in the browser's order (a float tensor of two or more
        // axes), else the first float tensor, else the first tensor.
        let tensors = model.tensors();
        let mut order: Vec<usize> = (0..tensors.len()).collect();
        order.sort_by(|&a, &b| {
            super::derived::rows::natural_cmp(&tensors[a].name, &tensors[b].name)
        });
        let first = order
            .iter()
            .copied()
            .find(|&i| {
                tensors[i].dtype.is_float() && tensors[i].shape.len() >= 2 && tensors[i].numel() > 1
            })
            .or_else(|| {
                order
                    .iter()
                    .copied()
                    .find(|&i| tensors[i].dtype.is_float() && tensors[i].numel() > 1)
            })
            .or_else(|| order.first().copied());
        self.model = Some(ModelRef {
            id,
            model,
            paths,
            batch_sets,
        });
        self.all_stats = false;
        self.model_view.pins.clear();
        self.model_view.sweep_on = true;
        self.forget_comparison();
        self.title_stale = true;
        self.selected = None;
        self.heat_zoom = [None, None];
        if let Some(i) = first {
            self.select(i);
        }
    }

    fn select(&mut self, index: usize) {
        if self.selected != Some(index) {
            self.selected = Some(index);
            self.picked = None;
            self.clip = None;
            self.heat_zoom = [None, None];
            self.block = None;
        }
    }

    /// The block of the chosen format holding the picked element, if both exist.
    fn block_of_picked(&self) -> Option<usize> {
        let format = self.settings.quant.format?;
        let flat = usize::try_from(self.picked?).ok()?;
        let model = self.model.as_ref()?;
        let info = model.model.tensors().get(self.selected?)?;
        Some(crate::quant::formats::block_of(format, &info.shape, flat).0)
    }

    fn set_bits_value(&mut self, value: f32, source: String) {
        self.bits.value = value;
        self.bits.text = short_float(f64::from(value));
        self.bits.source = source;
    }

    fn pick(&mut self, flat: u64) {
        let (Some(model), Some(sel)) = (&self.model, self.selected) else {
            return;
        };
        match model.model.value_f32_at(sel, flat) {
            Ok(v) => {
                let source = format!("{}[{flat}]", self.selected_name().unwrap_or_default());
                self.picked = Some(flat);
                self.set_bits_value(v, source);
                if let Some(b) = self.block_of_picked() {
                    self.block = Some(b);
                }
            }
            Err(e) => self.errors.push(e.to_string()),
        }
    }

    fn set_quant(&mut self, q: QuantConfig) {
        let old = &self.settings.quant;
        if q.granularity != old.granularity || q.scheme != old.scheme {
            self.clip = None;
        }
        let format_changed = q.format != old.format;
        self.settings.remember(&q);
        self.settings.quant = q;
        if format_changed {
            // Blocks are numbered per format: follow the picked element into the new one.
            self.block = self.block_of_picked();
        }
    }

    fn export(&mut self, export: &super::export::Export) {
        let dir = export_dir();
        let mut written = Vec::new();
        for (i, plot) in export.plots.iter().enumerate() {
            let stem = if export.plots.len() == 1 {
                export.stem.clone()
            } else {
                format!("{}-{}", export.stem, i + 1)
            };
            let svg = crate::report::plot::to_svg(plot);
            match super::export::write_svg_and_png(&dir, &safe_name(&stem), &svg) {
                Ok((svg_path, _)) => written.push(svg_path.with_extension("{svg,png}")),
                Err(e) => {
                    self.errors.push(format!("could not export {stem}: {e}"));
                    return;
                }
            }
        }
        self.status = Some(match written.as_slice() {
            [] => "nothing to export yet".to_string(),
            paths => format!(
                "saved {}",
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }

    fn save_text(&mut self, file_name: &str, contents: &str) {
        let dir = export_dir();
        let path = dir.join(file_name);
        match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, contents)) {
            Ok(()) => self.status = Some(format!("saved {}", path.display())),
            Err(e) => self.errors.push(format!(
                "could not save {file_name}: {e}: {}",
                path.display()
            )),
        }
    }
}

/// The folder exports are written to: `$HOME/quantscope-exports`, else the temp directory.
pub fn export_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join("quantscope-exports")
}

/// A file name made safe from a tensor name ("layers.0/x" → "layers.0_x").
pub fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A compact but round-trippable rendering of a float (shortest repr).
pub fn short_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Inf".into() } else { "-Inf".into() }
    } else if v == 0.0 || (1e-4..1e7).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::OwnedTensor;

    fn opened(state: &mut AppState, names: &[&str]) {
        let tensors = names
            .iter()
            .map(|n| OwnedTensor::from_f32(*n, vec![2], &[1.0, -2.0]))
            .collect();
        let model = Arc::new(Model::from_tensors("m", tensors).expect("model"));
        state.handle(Command::OpenDemo);
        let generation = state
            .opening
            .as_ref()
            .map(|o| o.generation)
            .expect("opening");
        state.handle(Command::Opened {
            model,
            paths: vec![],
            generation,
            skipped: vec![],
            batch_sets: Arc::default(),
        });
    }

    #[test]
    fn a_stale_open_result_is_ignored_and_the_newest_installs() {
        let mut s = AppState::new(Settings::default());
        s.handle(Command::OpenDemo);
        let first = s.opening.as_ref().map(|o| o.generation);
        s.handle(Command::Open(vec![PathBuf::from("b.safetensors")]));
        let model = Arc::new(Model::from_tensors("m", vec![]).expect("empty model"));
        s.handle(Command::Opened {
            model,
            paths: vec![],
            generation: first.expect("generation"),
            skipped: vec![],
            batch_sets: Arc::default(),
        });
        assert!(s.model.is_none(), "the older request's model is dropped");
        assert!(s.opening.is_some());
    }

    #[test]
    fn selecting_resets_the_pick_and_the_dragged_range() {
        let mut s = AppState::new(Settings::default());
        opened(&mut s, &["a", "b"]);
        assert_eq!(s.selected, Some(0));
        s.handle(Command::PickElement(1));
        assert_eq!(s.picked, Some(1));
        assert_eq!(s.bits.value, -2.0);
        assert_eq!(s.bits.source, "a[1]");
        s.handle(Command::SetClip(Some(ClipRange { lo: -1.0, hi: 1.0 })));
        assert!(matches!(
            s.effective_config().calibration,
            Calibration::Manual { lo: -1.0, hi: 1.0 }
        ));
        s.handle(Command::Select(1));
        assert_eq!((s.picked, s.clip), (None, None));
        assert_eq!(s.effective_config(), s.settings.quant);
    }

    #[test]
    fn a_scheme_change_drops_the_dragged_range_and_a_bits_change_keeps_it() {
        let mut s = AppState::new(Settings::default());
        let clip = Some(ClipRange { lo: -1.0, hi: 1.0 });
        s.handle(Command::SetClip(clip));
        let mut q = s.settings.quant.clone();
        q.bits = 4;
        s.handle(Command::SetQuant(q.clone()));
        assert_eq!(s.clip, clip);
        q.scheme = crate::quant::Scheme::Asymmetric;
        s.handle(Command::SetQuant(q));
        assert_eq!(s.clip, None);
    }

    #[test]
    fn names_are_made_safe_and_floats_short() {
        assert_eq!(safe_name("layers.0/x y"), "layers.0_x_y");
        assert_eq!(short_float(0.1), "0.1");
        assert_eq!(short_float(1e8), "1e8");
        assert_eq!(short_float(f64::NEG_INFINITY), "-Inf");
    }
}
