//! The desktop app (feature `gui`): eframe App, state, background jobs, one file per panel.
//!
//! Frame structure: [`QuantscopeApp::poll_jobs`] (from `logic()`) drains finished jobs into the
//! caches; then [`QuantscopeApp::ui_root`] draws every panel from the caches (never
//! O(tensor size)); panels return [`Command`]s and [`QuantscopeApp::apply`] is the one place
//! that changes state.

pub mod bits;
pub mod browser;
pub mod demo;
pub mod engine;
pub mod error_view;
pub mod explain;
pub mod export;
pub mod histogram;
pub mod jobs;
pub mod lessons;
pub mod png;
pub mod qsettings;
pub mod quant_panel;
pub mod settings;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};

use egui::{RichText, Ui};

use crate::float::Overflow;
use bits::BitsState;
use browser::{BrowserRow, BrowserState, SortColumn};
use engine::{
    CalibKey, ErrorDetail, HistData, HistKey, ModelRef, OpenKey, QuantKey, QuantView, RowError,
    RowErrorKey, StatsKey, TensorStats, ValueStore,
};
use error_view::{HeatImage, HeatKey, HeatKind, HeatTextures, ViewRef};
use histogram::ThresholdLine;
use jobs::{JobState, Jobs, Runner};
use qsettings::{GranularityChoice, QuantKeyPart, QuantSettings, SchemeChoice};
use quant_panel::ReportFormat;
use settings::{HistogramSettings, STORAGE_KEY, Settings, Theme};

/// The application id (window class, storage directory).
pub const APP_ID: &str = "quantscope";

/// Opens the desktop window. With no paths, the built-in demo model is shown.
pub fn run(paths: Vec<PathBuf>) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("quantscope")
            .with_app_id(APP_ID)
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([900.0, 600.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        APP_ID,
        options,
        Box::new(move |cc| {
            let settings = cc
                .storage
                .and_then(|s| eframe::get_value::<Settings>(s, STORAGE_KEY))
                .unwrap_or_default();
            let runner = Runner::pool(Some(cc.egui_ctx.clone()))?;
            // Slow background work (every calibrator, statistics of every tensor) gets its own
            // one-thread pool so it never queues the interactive jobs behind it.
            let slow = Runner::named_pool(Some(cc.egui_ctx.clone()), "quantscope-background", 1)?;
            let app = QuantscopeApp::with_runners(runner, slow, settings, paths);
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("could not open the window: {e}"))
}

/// Adds the bundled monospace font (Hack) as a fallback of the proportional family, so arrows
/// and box-drawing symbols render with the default fonts on any machine.
pub fn install_fonts(ctx: &egui::Context) {
    let mut fonts = egui::FontDefinitions::default();
    if let Some(list) = fonts.families.get_mut(&egui::FontFamily::Proportional)
        && !list.iter().any(|f| f == "Hack")
    {
        list.push("Hack".to_owned());
    }
    ctx.set_fonts(fonts);
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
}

/// A change the user asked for; panels return these and [`QuantscopeApp::apply`] performs them.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Open these files as one model.
    Open(Vec<PathBuf>),
    /// Show the native file dialog.
    OpenDialog,
    /// Switch to the built-in demo.
    OpenDemo,
    /// Change the theme.
    SetTheme(Theme),
    /// Dismiss the error message at this index.
    DismissError(usize),
    /// Select a tensor by index.
    Select(usize),
    /// Change the browser filter.
    SetFilter(String),
    /// The filter box took the focus it was asked to take.
    FilterFocused,
    /// The browser scrolled the selection into view.
    ScrolledToSelected,
    /// Sort the browser.
    SetSort(SortColumn, bool),
    /// Collapse or expand a browser group.
    ToggleGroup(String),
    /// Compute the statistics columns for every tensor.
    ComputeAllStats,
    /// Edit the bit panel's text box.
    SetBitsText(String),
    /// Show a value in the bit panel, with where it came from.
    SetBitsValue(f32, String),
    /// Change the FP8 overflow convention.
    SetOverflow(Overflow),
    /// Pick element `flat` (row-major) of the selected tensor.
    PickElement(u64),
    /// Set (or clear) the manual clip range.
    SetClip(Option<(f32, f32)>),
    /// Replace the quantization settings.
    SetQuant(QuantSettings),
    /// Replace the histogram options.
    SetHistogram(HistogramSettings),
    /// Switch the lower tab.
    SetTab(Tab),
    /// Show the lessons (true) or the main views (false).
    ShowLessons(bool),
    /// Take a lesson's settings to the main views.
    TryLesson(Box<crate::quant::QuantConfig>),
    /// Copy the selected tensor's report to the clipboard.
    CopyReport(ReportFormat),
    /// Save the selected tensor's report in the export folder.
    SaveReport(ReportFormat),
    /// Save the plot drawn in this screen rectangle as PNG (named by the first field).
    SavePlot(String, egui::Rect),
}

/// The whole app state.
pub struct QuantscopeApp {
    runner: Runner,
    /// Persisted settings.
    pub settings: Settings,
    /// Messages shown in the window until dismissed.
    pub errors: Vec<String>,
    /// A transient status line (saved files, copied reports).
    pub status: Option<String>,
    theme_applied: Option<Theme>,
    title_applied: bool,
    /// The open model.
    pub model: Option<ModelRef>,
    next_model_id: u64,
    open_generation: u64,
    opening: Option<OpenKey>,
    open_jobs: Jobs<OpenKey, Arc<crate::tensor::Model>>,
    stats_jobs: Jobs<StatsKey, TensorStats>,
    row_jobs: Jobs<RowErrorKey, RowError>,
    /// Whether statistics were asked for every tensor (then settings changes refresh the rows).
    all_rows_requested: bool,
    hist_jobs: Jobs<HistKey, HistData>,
    quant_jobs: Jobs<QuantKey, QuantView>,
    detail_jobs: Jobs<QuantKey, ErrorDetail>,
    calib_jobs: Jobs<CalibKey, Vec<ThresholdLine>>,
    heat_jobs: Jobs<HeatKey, HeatImage>,
    heat_textures: HeatTextures,
    /// The zoomed heatmap region per kind (error, scale) wanted by the last frame.
    heat_detail: [Option<(usize, usize, usize, usize)>; 2],
    last_heat: [Option<Arc<HeatImage>>; 2],
    status_rx: Receiver<String>,
    status_tx: std::sync::mpsc::Sender<String>,
    /// The selected tensor.
    pub selected: Option<usize>,
    /// The picked element of the selected tensor (row-major index).
    pub picked: Option<u64>,
    /// The manual clip range (dragged in the histogram), per-tensor granularity only.
    pub clip: Option<(f32, f32)>,
    /// The bit layout panel's state.
    pub bits: BitsState,
    /// The tensor browser's state.
    pub browser: BrowserState,
    /// The lower tab.
    pub tab: Tab,
    /// The lessons: the open page and every lesson's inputs.
    pub lessons: lessons::LessonsState,
    /// Whether the lessons replace the main views.
    pub show_lessons: bool,
    /// CPU time of the last frame in ms (eframe only).
    pub frame_cpu_ms: Option<f32>,
    /// Show compute times (tests turn this off so snapshots are deterministic).
    pub show_timings: bool,
    /// The histogram plot's transform of the last frame (tests use it to drag thresholds).
    pub hist_transform: Option<egui_plot::PlotTransform>,
    /// The last report copied (tests read it; the clipboard is the window's).
    pub copied_report: Option<String>,
    copy_requests: Vec<String>,
    screenshot_requests: Vec<(egui::Rect, PathBuf)>,
    /// Tensor indices in the order the browser shows them (for arrow keys).
    visible_order: Vec<usize>,
    dialog: Option<Receiver<Option<Vec<PathBuf>>>>,
}

impl QuantscopeApp {
    /// A new app with one runner for every job; opens `paths`, or the demo model when empty.
    pub fn new(runner: Runner, settings: Settings, paths: Vec<PathBuf>) -> Self {
        Self::with_runners(runner.clone(), runner, settings, paths)
    }

    /// A new app with a runner for interactive jobs and one for slow background jobs.
    pub fn with_runners(
        runner: Runner,
        slow: Runner,
        settings: Settings,
        paths: Vec<PathBuf>,
    ) -> Self {
        let store = Arc::new(ValueStore::default());
        let s1 = Arc::clone(&store);
        let s2 = Arc::clone(&store);
        let s3 = Arc::clone(&store);
        let s4 = Arc::clone(&store);
        let s5 = Arc::clone(&store);
        let s6 = Arc::clone(&store);
        let (status_tx, status_rx) = channel();
        let mut app = Self {
            calib_jobs: Jobs::new("calibration", slow.clone(), 8, move |k, c| {
                engine::thresholds(&s4, k, c)
            }),
            detail_jobs: Jobs::new("error detail", runner.clone(), 2, move |k, c| {
                engine::error_detail(&s5, k, c)
            }),
            heat_jobs: Jobs::new("heatmap", runner.clone(), 8, error_view::build_heat),
            heat_textures: HeatTextures::default(),
            heat_detail: [None, None],
            last_heat: [None, None],
            status_rx,
            status_tx,
            open_jobs: Jobs::new("open", runner.clone(), 2, engine::open_model),
            row_jobs: Jobs::new("row errors", slow.clone(), 100_000, move |k, c| {
                engine::row_error(&s6, k, c)
            }),
            all_rows_requested: false,
            stats_jobs: Jobs::new("statistics", slow.clone(), 100_000, move |k, c| {
                engine::tensor_stats(&s1, k, c)
            }),
            hist_jobs: Jobs::new("histogram", runner.clone(), 16, move |k, c| {
                engine::histogram_data(&s2, k, c)
            }),
            quant_jobs: Jobs::new("quantization", runner.clone(), 3, move |k, c| {
                engine::quant_view(&s3, k, c)
            }),
            runner,
            settings,
            errors: Vec::new(),
            status: None,
            theme_applied: None,
            title_applied: false,
            model: None,
            next_model_id: 1,
            open_generation: 0,
            opening: None,
            selected: None,
            picked: None,
            clip: None,
            bits: BitsState::default(),
            browser: BrowserState::default(),
            tab: Tab::Error,
            lessons: lessons::LessonsState::default(),
            show_lessons: false,
            visible_order: Vec::new(),
            copied_report: None,
            hist_transform: None,
            show_timings: true,
            frame_cpu_ms: None,
            copy_requests: Vec::new(),
            screenshot_requests: Vec::new(),
            dialog: None,
        };
        let first = if paths.is_empty() {
            Command::OpenDemo
        } else {
            Command::Open(paths)
        };
        app.apply(first);
        app.poll_jobs();
        app
    }

    /// An app for tests: jobs run inline, default settings, the demo model.
    pub fn new_for_tests() -> Self {
        Self::new(Runner::Inline, Settings::default(), Vec::new())
    }

    /// Whether jobs run synchronously (tests).
    pub fn is_inline(&self) -> bool {
        self.runner.is_inline()
    }

    /// Moves finished background results into the caches; installs a newly opened model.
    pub fn poll_jobs(&mut self) {
        self.open_jobs.poll();
        self.stats_jobs.poll();
        self.row_jobs.poll();
        self.hist_jobs.poll();
        self.quant_jobs.poll();
        self.calib_jobs.poll();
        self.detail_jobs.poll();
        self.heat_jobs.poll();
        while let Ok(s) = self.status_rx.try_recv() {
            self.status = Some(s);
        }
        if let Some(key) = self.opening.clone() {
            match self.open_jobs.request(&key) {
                JobState::Ready(model) => {
                    self.opening = None;
                    self.install_model(Arc::clone(&model), key.paths);
                }
                JobState::Failed(e) => {
                    self.opening = None;
                    self.errors.push(e);
                }
                JobState::Pending { .. } => {}
            }
        }
        if let Some(rx) = &self.dialog
            && let Ok(result) = rx.try_recv()
        {
            self.dialog = None;
            if let Some(paths) = result {
                self.apply(Command::Open(paths));
            }
        }
    }

    fn install_model(&mut self, model: Arc<crate::tensor::Model>, paths: Vec<PathBuf>) {
        let id = self.next_model_id;
        self.next_model_id += 1;
        self.stats_jobs.clear();
        self.row_jobs.clear();
        self.all_rows_requested = false;
        self.hist_jobs.clear();
        self.quant_jobs.clear();
        self.calib_jobs.clear();
        self.detail_jobs.clear();
        self.heat_jobs.clear();
        if !paths.is_empty() {
            self.settings.remember_recent(&paths);
        }
        // Select the first float tensor with at least two elements (the most interesting start).
        let first = model
            .tensors()
            .iter()
            .position(|t| t.numel() > 1 && t.dtype.is_float())
            .or_else(|| (!model.tensors().is_empty()).then_some(0));
        self.model = Some(ModelRef { id, model, paths });
        self.title_applied = false;
        self.selected = None;
        if let Some(i) = first {
            self.apply(Command::Select(i));
        }
    }

    /// A tensor's key for its browser-row error under the current settings.
    fn row_key(&self, tensor: usize) -> Option<RowErrorKey> {
        Some(RowErrorKey {
            model: self.model.clone()?,
            tensor,
            settings: QuantKeyPart::new(&self.settings.quant, None),
        })
    }

    /// The selected tensor's key for statistics.
    fn stats_key(&self, tensor: usize) -> Option<StatsKey> {
        Some(StatsKey {
            model: self.model.clone()?,
            tensor,
        })
    }

    /// The histogram key for the selected tensor under the current options (the code grid
    /// needs the per-tensor (S, z) of the current quantization).
    fn hist_key(&self, quant: Option<&QuantView>) -> Option<HistKey> {
        let grid = if self.settings.histogram.code_grid {
            quant
                .filter(|q| q.params.len() == 1)
                .and_then(|q| q.params.first())
                .map(|p| (p.scale.to_bits(), p.zero_point, p.qmin, p.qmax))
        } else {
            None
        };
        Some(HistKey {
            model: self.model.clone()?,
            tensor: self.selected?,
            bins: self.settings.histogram.bins,
            grid,
        })
    }

    /// Selects the tensor named `name`; false when there is none.
    pub fn select_by_name(&mut self, name: &str) -> bool {
        let Some(i) = self.model.as_ref().and_then(|m| m.model.find(name)) else {
            return false;
        };
        self.apply(Command::Select(i));
        true
    }

    /// The quantization key for the selected tensor under the current settings.
    pub fn quant_key(&self) -> Option<QuantKey> {
        Some(QuantKey {
            model: self.model.clone()?,
            tensor: self.selected?,
            settings: QuantKeyPart::new(&self.settings.quant, self.clip),
        })
    }

    /// The quantization result for the current settings (requesting it if needed).
    pub fn quant_state(&mut self) -> Option<JobState<QuantView>> {
        let key = self.quant_key()?;
        Some(self.quant_jobs.request(&key))
    }

    /// Draws the whole window into `ui` (used by `eframe::App::ui` and by kittest).
    pub fn ui_root(&mut self, ui: &mut Ui) {
        self.poll_jobs();
        if self.theme_applied.is_none() {
            install_fonts(ui.ctx());
        }
        if self.theme_applied != Some(self.settings.theme) {
            ui.ctx().set_theme(match self.settings.theme {
                Theme::Dark => egui::Theme::Dark,
                Theme::Light => egui::Theme::Light,
            });
            self.theme_applied = Some(self.settings.theme);
        }
        if !self.title_applied
            && let Some(m) = &self.model
        {
            let title = match m.paths.as_slice() {
                [] => format!("quantscope: {}", m.label()),
                [one, ..] => format!("quantscope: {}", one.display()),
            };
            ui.ctx()
                .send_viewport_cmd(egui::ViewportCommand::Title(title));
            self.title_applied = true;
        }
        let mut commands = Vec::new();
        self.keyboard(ui, &mut commands);
        self.dropped_files(ui, &mut commands);
        egui::Panel::top("menu").show(ui, |ui| self.menu_ui(ui, &mut commands));
        egui::Panel::bottom("status").show(ui, |ui| self.status_ui(ui, &mut commands));
        if self.show_lessons {
            self.lessons_ui(ui, &mut commands);
            for c in commands {
                self.apply(c);
            }
            return;
        }
        egui::Panel::left("browser")
            .default_size(400.0)
            .min_size(260.0)
            .max_size(700.0)
            .show(ui, |ui| self.browser_panel_ui(ui, &mut commands));
        egui::Panel::right("quant")
            .default_size(330.0)
            .min_size(280.0)
            .max_size(440.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.quant_panel_ui(ui, &mut commands));
            });
        egui::CentralPanel::default().show(ui, |ui| self.central_ui(ui, &mut commands));
        for c in commands {
            self.apply(c);
        }
        for text in self.copy_requests.drain(..) {
            ui.ctx().copy_text(text);
        }
        for (rect, path) in self.screenshot_requests.drain(..) {
            let ppp = ui.ctx().pixels_per_point();
            let tx = self.status_tx.clone();
            let ctx = ui.ctx().clone();
            let callback = egui::ScreenshotCallback::new(move |image| {
                let px = egui::Rect::from_min_max(
                    (rect.min.to_vec2() * ppp).to_pos2(),
                    (rect.max.to_vec2() * ppp).to_pos2(),
                );
                let result = path
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .map_err(|e| e.to_string())
                    .and_then(|()| png::save_color_image(&image, px, &path));
                let _ = tx.send(match result {
                    Ok(()) => format!("saved {}", path.display()),
                    Err(e) => format!("could not save the plot: {e}"),
                });
                ctx.request_repaint();
            });
            ui.ctx()
                .send_viewport_cmd(egui::ViewportCommand::Screenshot(callback));
        }
    }

    /// The lessons in the central area; the selected tensor feeds their real-tensor parts.
    fn lessons_ui(&mut self, ui: &mut Ui, out: &mut Vec<Command>) {
        let name = self
            .model
            .as_ref()
            .zip(self.selected)
            .and_then(|(m, i)| m.model.tensors().get(i).map(|t| t.name.clone()));
        let values = self
            .quant_state()
            .and_then(|state| state.value().map(|view| Arc::clone(&view.values)));
        if let (Some(name), Some(values)) = (name, values) {
            self.lessons.set_real_tensor(name, values);
        }
        let action = egui::CentralPanel::default()
            .show(ui, |ui| self.lessons.ui(ui))
            .inner;
        if let Some(lessons::LessonAction::TryOnRealTensor(cfg)) = action {
            out.push(Command::TryLesson(Box::new(cfg)));
        }
    }

    fn keyboard(&mut self, ui: &Ui, out: &mut Vec<Command>) {
        let ctrl_o = egui::KeyboardShortcut::new(egui::Modifiers::COMMAND, egui::Key::O);
        let ctrl_f = egui::KeyboardShortcut::new(egui::Modifiers::COMMAND, egui::Key::F);
        let typing = ui.ctx().text_edit_focused();
        ui.input_mut(|i| {
            if i.consume_shortcut(&ctrl_o) {
                out.push(Command::OpenDialog);
            }
            if i.consume_shortcut(&ctrl_f) {
                self.browser.focus_filter = true;
            }
            if !typing {
                if i.consume_key(egui::Modifiers::NONE, egui::Key::Slash) {
                    self.browser.focus_filter = true;
                }
                let down = i.consume_key(egui::Modifiers::NONE, egui::Key::ArrowDown);
                let up = i.consume_key(egui::Modifiers::NONE, egui::Key::ArrowUp);
                if down || up {
                    let pos = self
                        .selected
                        .and_then(|s| self.visible_order.iter().position(|&v| v == s));
                    let next = match (pos, down) {
                        (None, _) => self.visible_order.first(),
                        (Some(p), true) => self.visible_order.get(p + 1),
                        (Some(p), false) => {
                            p.checked_sub(1).and_then(|q| self.visible_order.get(q))
                        }
                    };
                    if let Some(&n) = next {
                        out.push(Command::Select(n));
                        self.browser.scroll_to_selected = true;
                    }
                }
            }
        });
    }

    fn dropped_files(&self, ui: &Ui, out: &mut Vec<Command>) {
        let dropped: Vec<PathBuf> = ui.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        if !dropped.is_empty() {
            out.push(Command::Open(dropped));
        }
    }

    fn menu_ui(&self, ui: &mut Ui, out: &mut Vec<Command>) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui
                    .add(egui::Button::new("Open…").shortcut_text("Ctrl+O"))
                    .on_hover_text("Open a .safetensors, sharded index, .gguf, .npy or .npz file.")
                    .clicked()
                {
                    out.push(Command::OpenDialog);
                }
                if ui
                    .button("Open demo model")
                    .on_hover_text("The built-in tiny transformer, generated in code.")
                    .clicked()
                {
                    out.push(Command::OpenDemo);
                }
                ui.menu_button("Recent", |ui| {
                    if self.settings.recent.is_empty() {
                        ui.label(RichText::new("(none yet)").weak());
                    }
                    for paths in &self.settings.recent {
                        let label = paths
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ");
                        if ui.button(label).clicked() {
                            out.push(Command::Open(paths.clone()));
                        }
                    }
                });
            });
            ui.menu_button("View", |ui| {
                let dark = self.settings.theme == Theme::Dark;
                if ui.radio(dark, "Dark theme").clicked() {
                    out.push(Command::SetTheme(Theme::Dark));
                }
                if ui.radio(!dark, "Light theme").clicked() {
                    out.push(Command::SetTheme(Theme::Light));
                }
            });
            if ui
                .selectable_label(self.show_lessons, "Lessons")
                .on_hover_text(
                    "Ten interactive lessons: float formats, scales, calibration, zero points.",
                )
                .clicked()
            {
                out.push(Command::ShowLessons(!self.show_lessons));
            }
            ui.menu_button("Help", |ui| {
                ui.label("Ctrl+O open · / or Ctrl+F search tensors · ↑/↓ move through tensors");
                ui.label("Drop model files onto the window to open them.");
                ui.label("Click a histogram bar or a heatmap cell to pick a weight.");
            });
            ui.separator();
            let title = match (&self.model, &self.opening) {
                (_, Some(k)) if k.paths.is_empty() => "generating the demo model…".to_string(),
                (_, Some(k)) => format!(
                    "opening {}…",
                    k.paths
                        .first()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ),
                (Some(m), None) => m.label(),
                (None, None) => "no model".to_string(),
            };
            ui.label(RichText::new(title).strong());
            if self.opening.is_some() {
                ui.spinner();
            }
        });
    }

    fn status_ui(&self, ui: &mut Ui, out: &mut Vec<Command>) {
        for (i, e) in self.errors.iter().enumerate() {
            ui.horizontal(|ui| {
                ui.label(RichText::new(format!("Error: {e}")).color(ui.visuals().error_fg_color));
                if ui
                    .small_button("dismiss")
                    .on_hover_text("Dismiss this message.")
                    .clicked()
                {
                    out.push(Command::DismissError(i));
                }
            });
        }
        ui.horizontal(|ui| {
            let busy = self.stats_jobs.is_busy() || self.hist_jobs.is_busy();
            if busy {
                ui.spinner();
                ui.label("computing…");
            }
            if let Some(s) = &self.status {
                ui.label(s);
            }
            if let Some(ms) = self.frame_cpu_ms {
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    ui.label(RichText::new(format!("frame {ms:.1} ms")).weak())
                        .on_hover_text(
                            "CPU time of the last frame (heavy work runs on the job pool).",
                        );
                });
            }
        });
    }

    /// The tensor browser's rows: metadata plus whatever statistics and errors are computed.
    pub fn browser_rows(&self) -> Vec<BrowserRow> {
        let Some(model) = &self.model else {
            return Vec::new();
        };
        model
            .model
            .tensors()
            .iter()
            .enumerate()
            .map(|(index, t)| {
                let stats = self.stats_key(index).and_then(|k| self.stats_jobs.get(&k));
                let row = self.row_key(index).and_then(|k| self.row_jobs.get(&k));
                BrowserRow {
                    index,
                    name: t.name.clone(),
                    dtype: t.dtype.name().to_string(),
                    shape: t
                        .shape
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join("×"),
                    size_bytes: t.size_bytes,
                    absmax: stats.as_ref().map(|s| s.summary.absmax),
                    std: stats.as_ref().and_then(|s| s.summary.std),
                    outliers: row.as_ref().map(|r| r.outliers),
                    sqnr_db: row.as_ref().map(|r| r.sqnr_db),
                }
            })
            .collect()
    }

    fn browser_panel_ui(&mut self, ui: &mut Ui, out: &mut Vec<Command>) {
        let rows = self.browser_rows();
        self.visible_order = browser::visible_entries(&rows, &self.browser)
            .into_iter()
            .filter_map(|e| match e {
                browser::Entry::Tensor(i, _) => rows.get(i).map(|r| r.index),
                browser::Entry::Group(..) => None,
            })
            .collect();
        let busy = self.stats_jobs.is_busy();
        out.extend(browser::browser_ui(
            ui,
            &rows,
            &self.browser,
            self.selected,
            busy,
        ));
    }

    fn quant_panel_ui(&mut self, ui: &mut Ui, out: &mut Vec<Command>) {
        ui.heading("Quantization");
        let ndim = self
            .model
            .as_ref()
            .zip(self.selected)
            .and_then(|(m, s)| m.model.tensors().get(s).map(|t| t.shape.len()))
            .unwrap_or(1);
        out.extend(quant_panel::controls_ui(
            ui,
            &self.settings.quant,
            ndim,
            self.clip,
        ));
        ui.separator();
        match self.quant_state() {
            Some(JobState::Ready(v)) => {
                out.extend(quant_panel::metrics_ui(ui, &v, false, self.show_timings))
            }
            Some(JobState::Pending { last, progress }) => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.add(
                        egui::ProgressBar::new(progress)
                            .desired_width(160.0)
                            .show_percentage(),
                    );
                });
                if let Some(v) = last {
                    out.extend(quant_panel::metrics_ui(ui, &v, true, self.show_timings));
                }
            }
            Some(JobState::Failed(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            None => {}
        }
        ui.separator();
        egui::CollapsingHeader::new(RichText::new("Explain this number").strong())
            .default_open(true)
            .show(ui, |ui| {
                let e = self.explain_view();
                explain::explain_ui(ui, e.as_ref());
            });
    }

    /// The explanation of the picked weight under the current (or last) quantization result.
    pub fn explain_view(&mut self) -> Option<explain::ExplainView> {
        let flat = self.picked?;
        let view = self.quant_state()?.value().cloned()?;
        let x = *view.values.get(usize::try_from(flat).ok()?)?;
        explain::explain_element(&view, flat, x)
    }

    /// The calibration thresholds of the selected tensor (requesting them if needed).
    pub fn thresholds_state(&mut self) -> Option<JobState<Vec<ThresholdLine>>> {
        let key = CalibKey {
            model: self.model.clone()?,
            tensor: self.selected?,
            settings: QuantKeyPart::new(&self.settings.quant, None),
        };
        Some(self.calib_jobs.request(&key))
    }

    fn central_ui(&mut self, ui: &mut Ui, out: &mut Vec<Command>) {
        let Some(model) = self.model.clone() else {
            ui.centered_and_justified(|ui| {
                if self.opening.is_some() {
                    ui.spinner();
                } else {
                    ui.label("Open a model (File ▸ Open, Ctrl+O, or drop a file here).");
                }
            });
            return;
        };
        let Some(sel) = self.selected else {
            ui.label("Select a tensor on the left.");
            return;
        };
        let Some(info) = model.model.tensors().get(sel) else {
            return;
        };
        ui.horizontal_wrapped(|ui| {
            ui.heading(&info.name);
            ui.label(RichText::new(format!("{} · {:?}", info.dtype.name(), info.shape)).weak());
        });
        let quant = self.quant_state();
        let quant_value = quant.as_ref().and_then(|q| q.value().cloned());
        let quant_stale = quant.as_ref().is_some_and(|q| !q.is_ready());
        let per_tensor = self.settings.quant.granularity == GranularityChoice::Tensor;
        let hist_state = self
            .hist_key(quant_value.as_deref())
            .map(|k| self.hist_jobs.request(&k));
        let height = (ui.available_height() * 0.45).max(160.0);
        let (data, stale) = match &hist_state {
            Some(JobState::Ready(d)) => (Some(Arc::clone(d)), false),
            Some(JobState::Pending { last, .. }) => (last.clone(), true),
            Some(JobState::Failed(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
                (None, false)
            }
            None => (None, false),
        };
        let active = if per_tensor {
            quant_value.as_ref().and_then(|v| v.clip)
        } else {
            None
        };
        let thresholds_state = self.thresholds_state();
        let thresholds_pending = thresholds_state.as_ref().is_some_and(|t| !t.is_ready());
        let thresholds = thresholds_state
            .and_then(|t| t.value().cloned())
            .unwrap_or_default();
        let mut save_png = false;
        ui.horizontal_wrapped(|ui| {
            let mut h = self.settings.histogram.clone();
            ui.label("bins");
            ui.add_enabled(
                !h.code_grid,
                egui::DragValue::new(&mut h.bins).range(8..=4096).speed(4.0),
            )
            .on_hover_text("Number of equal-width bins over [min, max] (exact counts).");
            ui.checkbox(&mut h.log_y, "log y")
                .on_hover_text("Logarithmic count axis: shows the rare large values in the tails.");
            ui.add_enabled(per_tensor, egui::Checkbox::new(&mut h.code_grid, "code grid"))
                .on_hover_text("One bin per quantization code (centred on the grid points); per-tensor granularity only.");
            ui.checkbox(&mut h.show_thresholds, "thresholds")
                .on_hover_text("Draw the clip thresholds of min-max, percentile, entropy (KL) and MSE calibration; the legend gives each one's error.");
            if h != self.settings.histogram {
                out.push(Command::SetHistogram(h));
            }
            if let Some(d) = &data {
                ui.label(
                    RichText::new(format!(
                        "{} bins · {} finite{}",
                        d.counts.len(),
                        d.finite,
                        if d.nonfinite > 0 { format!(" · {} NaN/Inf", d.nonfinite) } else { String::new() }
                    ))
                    .weak(),
                );
            }
            if thresholds_pending && self.settings.histogram.show_thresholds {
                ui.spinner();
                ui.label(RichText::new("calibrating…").weak())
                    .on_hover_text("Computing the four calibrators' thresholds in the background.");
            }
            save_png = ui
                .small_button("PNG")
                .on_hover_text("Save this plot as a PNG in the export folder.")
                .clicked();
        });
        let view = histogram::HistogramView {
            data: data.as_deref(),
            stale,
            thresholds: &thresholds,
            active,
            symmetric: self.settings.quant.scheme == SchemeChoice::Symmetric,
            draggable: per_tensor,
            settings: &self.settings.histogram,
        };
        let (cmds, plot_rect, transform) = histogram::histogram_plot_ui(ui, &view, height);
        self.hist_transform = transform;
        out.extend(cmds);
        if save_png {
            out.push(Command::SavePlot("histogram".into(), plot_rect));
        }
        ui.separator();
        let mut save_tab_png = false;
        ui.horizontal(|ui| {
            for (tab, label, tip) in [
                (
                    Tab::Error,
                    "Error",
                    "Original vs dequantized distribution and the error histogram.",
                ),
                (
                    Tab::Heatmap,
                    "Heatmap",
                    "|error| and per-group scale over the 2-D view of the tensor.",
                ),
                (
                    Tab::Bits,
                    "Bit layout",
                    "The picked value in FP32, FP16, BF16 and FP8.",
                ),
            ] {
                if ui
                    .selectable_label(self.tab == tab, label)
                    .on_hover_text(tip)
                    .clicked()
                {
                    out.push(Command::SetTab(tab));
                }
            }
            if self.tab != Tab::Bits {
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    save_tab_png = ui
                        .small_button("PNG")
                        .on_hover_text("Save the plots of this tab as a PNG in the export folder.")
                        .clicked();
                });
            }
        });
        let tab_rect = ui.available_rect_before_wrap();
        if save_tab_png {
            let name = if self.tab == Tab::Heatmap {
                "heatmap"
            } else {
                "error"
            };
            out.push(Command::SavePlot(name.into(), tab_rect));
        }
        match self.tab {
            Tab::Bits => {
                egui::ScrollArea::vertical()
                    .show(ui, |ui| out.extend(bits::bits_ui(ui, &self.bits)));
            }
            Tab::Error => match self.detail_state() {
                Some((d, ready)) => {
                    out.extend(error_view::error_plots_ui(
                        ui,
                        &d,
                        !ready,
                        self.settings.histogram.log_y,
                    ));
                }
                None => {
                    ui.spinner();
                }
            },
            Tab::Heatmap => match (quant_value, self.detail_state()) {
                (Some(v), Some((d, ready))) => {
                    self.heatmaps_ui(ui, &v, &d, ready && !quant_stale, out);
                }
                _ => {
                    ui.spinner();
                }
            },
        }
    }

    /// The error detail of the current quantization (or the last one of the same tensor while it
    /// computes), and whether it is current.
    fn detail_state(&mut self) -> Option<(Arc<ErrorDetail>, bool)> {
        let key = self.quant_key()?;
        let state = self.detail_jobs.request(&key);
        let ready = state.is_ready();
        state.value().cloned().map(|d| (d, ready))
    }

    fn heatmaps_ui(
        &mut self,
        ui: &mut Ui,
        view: &Arc<QuantView>,
        detail: &Arc<ErrorDetail>,
        current: bool,
        out: &mut Vec<Command>,
    ) {
        let Some(qkey) = self.quant_key() else {
            return;
        };
        let (rows, cols) = engine::rows_cols(&view.layout.shape);
        ui.label(
            RichText::new(format!(
                "2-D view {rows}×{cols} · right-drag a box to zoom, double-click to reset · click a cell to pick that weight"
            ))
            .weak(),
        );
        let h = (ui.available_height() - 24.0).max(100.0);
        ui.columns(2, |columns| {
            for (slot, (kind, title)) in [
                (HeatKind::AbsError, "|x' − x| (mean per cell)"),
                (HeatKind::Scale, "scale S per group"),
            ]
            .into_iter()
            .enumerate()
            {
                let ui = &mut columns[slot];
                ui.label(RichText::new(title).strong());
                let full = HeatKey {
                    quant: qkey.clone(),
                    view: ViewRef(Arc::clone(view), Arc::clone(detail)),
                    kind,
                    region: (0, rows, 0, cols),
                };
                // Heat images are keyed by the quantization: build them only from the current
                // result, and keep showing the last ones while a new result computes.
                let (overview, detail_img) = if current {
                    let overview = self.heat_jobs.request(&full).value().cloned();
                    let detail_img = self.heat_detail[slot].and_then(|region| {
                        let key = HeatKey {
                            region,
                            ..full.clone()
                        };
                        self.heat_jobs.request(&key).value().cloned()
                    });
                    self.last_heat[slot] = overview.clone();
                    (overview, detail_img)
                } else {
                    (self.last_heat[slot].clone(), None)
                };
                let ctx = ui.ctx().clone();
                let ov = overview
                    .as_ref()
                    .map(|img| (self.heat_textures.texture(&ctx, slot * 2, img), &**img));
                let de = detail_img
                    .as_ref()
                    .filter(|img| img.region != (0, rows, 0, cols))
                    .map(|img| (self.heat_textures.texture(&ctx, slot * 2 + 1, img), &**img));
                let (cmds, wanted) = error_view::heatmap_ui(
                    ui,
                    if slot == 0 {
                        "heat_error"
                    } else {
                        "heat_scale"
                    },
                    view,
                    detail,
                    ov,
                    de,
                    kind,
                    &view.values,
                    h - 20.0,
                );
                if let Some(img) = &overview {
                    ui.label(
                        RichText::new(format!("colour: {:.3e} … {:.3e}", img.vmin, img.vmax))
                            .weak(),
                    );
                }
                out.extend(cmds);
                self.heat_detail[slot] = wanted;
            }
        });
    }

    /// Performs one command.
    pub fn apply(&mut self, command: Command) {
        match command {
            Command::Open(paths) => self.start_open(paths),
            Command::OpenDemo => self.start_open(Vec::new()),
            Command::OpenDialog => self.open_dialog(),
            Command::SetTheme(t) => self.settings.theme = t,
            Command::ShowLessons(on) => self.show_lessons = on,
            Command::TryLesson(cfg) => {
                self.show_lessons = false;
                self.apply(Command::SetQuant(QuantSettings::from_config(&cfg)));
            }
            Command::DismissError(i) => {
                if i < self.errors.len() {
                    self.errors.remove(i);
                }
            }
            Command::Select(i) => {
                if self.selected != Some(i) {
                    self.selected = Some(i);
                    self.picked = None;
                    self.clip = None;
                }
            }
            Command::SetFilter(f) => self.browser.filter = f,
            Command::FilterFocused => self.browser.focus_filter = false,
            Command::ScrolledToSelected => self.browser.scroll_to_selected = false,
            Command::SetSort(c, asc) => {
                self.browser.sort = (c, asc);
                if c.needs_stats() {
                    self.request_all_stats();
                }
            }
            Command::ToggleGroup(g) => {
                if !self.browser.collapsed.remove(&g) {
                    self.browser.collapsed.insert(g);
                }
            }
            Command::ComputeAllStats => self.request_all_stats(),
            Command::SetBitsText(t) => self.bits.text = t,
            Command::SetBitsValue(v, source) => self.bits.set(v, source),
            Command::SetOverflow(o) => self.bits.overflow = o,
            Command::PickElement(flat) => self.pick(flat),
            Command::SetClip(c) => self.clip = c,
            Command::SetQuant(q) => {
                if q.granularity != self.settings.quant.granularity
                    || q.scheme != self.settings.quant.scheme
                {
                    self.clip = None;
                }
                self.settings.quant = q;
                if self.all_rows_requested {
                    self.request_all_rows();
                }
            }
            Command::SetHistogram(h) => self.settings.histogram = h,
            Command::SetTab(t) => self.tab = t,
            Command::CopyReport(f) => self.copy_report(f),
            Command::SaveReport(f) => self.save_report(f),
            Command::SavePlot(name, rect) => self.save_plot(name, rect),
        }
    }

    fn pick(&mut self, flat: u64) {
        let (Some(model), Some(sel)) = (&self.model, self.selected) else {
            return;
        };
        match model.model.value_f32_at(sel, flat) {
            Ok(v) => {
                let name = model
                    .model
                    .tensors()
                    .get(sel)
                    .map(|t| t.name.clone())
                    .unwrap_or_default();
                self.picked = Some(flat);
                self.bits.set(v, format!("{name}[{flat}]"));
            }
            Err(e) => self.errors.push(e.to_string()),
        }
    }

    fn report_text(&mut self, format: ReportFormat) -> Option<(String, String)> {
        let view = self.quant_state()?.value().cloned()?;
        let model = self.model.as_ref()?;
        let info = model.model.tensors().get(self.selected?)?;
        let text = match format {
            ReportFormat::Json => {
                serde_json::to_string_pretty(&export::report_json(&info.name, &info.shape, &view))
                    .ok()?
            }
            ReportFormat::Csv => export::report_csv(&info.name, &info.shape, &view),
        };
        Some((info.name.clone(), text))
    }

    fn copy_report(&mut self, format: ReportFormat) {
        if let Some((_, text)) = self.report_text(format) {
            self.copied_report = Some(text.clone());
            self.copy_requests.push(text);
            self.status = Some("report copied to the clipboard".into());
        }
    }

    fn save_report(&mut self, format: ReportFormat) {
        let Some((name, text)) = self.report_text(format) else {
            return;
        };
        let dir = export::export_dir();
        let ext = match format {
            ReportFormat::Json => "json",
            ReportFormat::Csv => "csv",
        };
        let path = dir.join(format!("{}.report.{ext}", export::safe_name(&name)));
        let result = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text));
        match result {
            Ok(()) => self.status = Some(format!("saved {}", path.display())),
            Err(e) => self.errors.push(format!(
                "could not save the report: {e}: {}",
                path.display()
            )),
        }
    }

    fn save_plot(&mut self, name: String, rect: egui::Rect) {
        let tensor = self
            .model
            .as_ref()
            .zip(self.selected)
            .and_then(|(m, s)| m.model.tensors().get(s).map(|t| export::safe_name(&t.name)))
            .unwrap_or_default();
        let dir = export::export_dir();
        let path = dir.join(format!("{name}-{tensor}.png"));
        self.screenshot_requests.push((rect, path));
    }

    fn request_all_stats(&mut self) {
        let Some(model) = &self.model else {
            return;
        };
        for tensor in 0..model.model.tensors().len() {
            let key = StatsKey {
                model: model.clone(),
                tensor,
            };
            // Failures show up when the tensor is selected.
            let _ = self.stats_jobs.request(&key);
        }
        self.request_all_rows();
    }

    /// Asks for every row's error under the current settings (after Σ all or a stats sort).
    fn request_all_rows(&mut self) {
        let Some(model) = &self.model else {
            return;
        };
        self.all_rows_requested = true;
        for tensor in 0..model.model.tensors().len() {
            if let Some(key) = self.row_key(tensor) {
                // A tensor the settings cannot apply to (an axis it lacks) keeps an empty cell.
                let _ = self.row_jobs.request(&key);
            }
        }
    }

    fn start_open(&mut self, paths: Vec<PathBuf>) {
        self.open_generation += 1;
        let key = OpenKey {
            paths,
            generation: self.open_generation,
        };
        let _ = self.open_jobs.request(&key);
        self.opening = Some(key);
        self.poll_jobs();
    }

    fn open_dialog(&mut self) {
        if self.dialog.is_some() || self.runner.is_inline() {
            return;
        }
        let (tx, rx) = channel();
        let spawned = std::thread::Builder::new()
            .name("quantscope-file-dialog".into())
            .spawn(move || {
                let picked = rfd::FileDialog::new()
                    .set_title("Open model files")
                    .add_filter(
                        "model files",
                        &["safetensors", "json", "gguf", "npy", "npz"],
                    )
                    .add_filter("all files", &["*"])
                    .pick_files();
                let _ = tx.send(picked);
            });
        match spawned {
            Ok(_) => self.dialog = Some(rx),
            Err(e) => self
                .errors
                .push(format!("could not open the file dialog: {e}")),
        }
    }
}

impl eframe::App for QuantscopeApp {
    fn logic(&mut self, _ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.poll_jobs();
    }

    fn ui(&mut self, ui: &mut Ui, frame: &mut eframe::Frame) {
        // CPU time of the previous frame, shown in the status bar.
        self.frame_cpu_ms = frame.info().cpu_usage.map(|s| s * 1e3);
        self.ui_root(ui);
        if self.opening.is_some() || self.dialog.is_some() {
            // The file dialog thread and the open job report through channels.
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(100));
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, STORAGE_KEY, &self.settings);
    }
}
