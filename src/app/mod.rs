//! The desktop app (feature `gui`): the eframe wiring.
//!
//! One frame: the derived layer drains finished jobs (their news become [`Command`]s); the
//! keyboard and dropped files become commands; [`derived::Derived::view`] builds the read-only
//! [`derived::FrameView`] (requesting every result it needs, once); the panels in [`panels`]
//! draw from the state and that view and return commands; [`state::AppState::handle`] applies
//! them — the only place state changes; then the window effects (clipboard, screenshots, the
//! file dialog) run. ARCHITECTURE.md walks one settings change through this loop.

pub mod demo;
pub mod derived;
pub mod export;
pub mod jobs;
pub mod lessons;
pub mod pairing;
pub mod panels;
pub mod settings;
pub mod state;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use egui::{RichText, Ui};

use derived::{Derived, FrameView};
use jobs::Runner;
use panels::heatmap::HeatTextures;
use settings::{STORAGE_KEY, Settings, Theme};
pub use state::Command;
use state::{AppState, Effect};

/// The application id (window class, storage directory).
pub const APP_ID: &str = "quantscope";

/// Opens the desktop window. With no paths, the built-in demo model is shown.
pub fn run(paths: Vec<PathBuf>) -> anyhow::Result<()> {
    let mut viewport = egui::ViewportBuilder::default();
    if let Some(icon) = window_icon() {
        viewport = viewport.with_icon(icon);
    }
    let options = eframe::NativeOptions {
        viewport: viewport
            .with_title("quantscope")
            .with_app_id(APP_ID)
            .with_inner_size([1440.0, 900.0])
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
            // Statistics of every tensor get their own one-thread pool so they never queue the
            // selected tensor's work behind them.
            let background =
                Runner::named_pool(Some(cc.egui_ctx.clone()), "quantscope-background", 1)?;
            Ok(Box::new(QuantscopeApp::with_runners(
                runner, background, settings, paths,
            )))
        }),
    )
    .map_err(|e| anyhow::anyhow!("could not open the window: {e}"))
}

/// The bundled DejaVu Sans subset (assets/fonts, its licence beside it): arrows, math symbols
/// and box drawing that egui's default fonts lack.
pub const BUNDLED_FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-quantscope.ttf");

/// The font name the bundled font is registered under.
pub const BUNDLED_FONT_NAME: &str = "DejaVuSans-quantscope";

/// egui's default fonts with the bundled DejaVu Sans subset as a fallback of both families, so
/// every symbol the app writes renders on any machine.
pub fn fonts() -> egui::FontDefinitions {
    let mut fonts = egui::FontDefinitions::default();
    fonts.font_data.insert(
        BUNDLED_FONT_NAME.to_owned(),
        Arc::new(egui::FontData::from_static(BUNDLED_FONT)),
    );
    for family in [egui::FontFamily::Proportional, egui::FontFamily::Monospace] {
        if let Some(list) = fonts.families.get_mut(&family) {
            list.push(BUNDLED_FONT_NAME.to_owned());
        }
    }
    fonts
}

/// Installs [`fonts`].
pub fn install_fonts(ctx: &egui::Context) {
    ctx.set_fonts(fonts());
}

/// The window icon (assets/icon), decoded once at start.
fn window_icon() -> Option<Arc<egui::IconData>> {
    let png = include_bytes!("../../assets/icon/quantscope-256.png");
    let pixmap = resvg::tiny_skia::Pixmap::decode_png(png).ok()?;
    let rgba = pixmap
        .pixels()
        .iter()
        .flat_map(|p| {
            let c = p.demultiply();
            [c.red(), c.green(), c.blue(), c.alpha()]
        })
        .collect();
    Some(Arc::new(egui::IconData {
        rgba,
        width: pixmap.width(),
        height: pixmap.height(),
    }))
}

/// The app: its state, the derived layer, and what only the window owns (textures, the file
/// dialog's thread).
pub struct QuantscopeApp {
    /// Everything the app knows (changed only by [`AppState::handle`]).
    pub state: AppState,
    /// The caches and job lanes.
    pub derived: Derived,
    /// The heatmap panel's textures (GPU resources, not state).
    textures: HeatTextures,
    /// The histogram plot's transform of the last frame (tests drag the clip edges with it).
    pub hist_transform: Option<egui_plot::PlotTransform>,
    /// The Model view's Pareto chart transform of the last frame (tests click its points).
    pub pareto_transform: Option<egui_plot::PlotTransform>,
    /// CPU time of the last frame in ms (eframe only).
    pub frame_cpu_ms: Option<f32>,
    theme_applied: Option<Theme>,
    /// Whether the file dialog's thread is running.
    dialog_open: Arc<AtomicBool>,
    news_tx: Sender<Command>,
    news_rx: Receiver<Command>,
}

impl QuantscopeApp {
    /// A new app with one runner for every job; opens `paths`, or the demo model when empty.
    pub fn new(runner: Runner, settings: Settings, paths: Vec<PathBuf>) -> Self {
        Self::with_runners(runner.clone(), runner, settings, paths)
    }

    /// A new app with a runner for interactive jobs and one for background statistics.
    pub fn with_runners(
        runner: Runner,
        background: Runner,
        settings: Settings,
        paths: Vec<PathBuf>,
    ) -> Self {
        let (news_tx, news_rx) = channel();
        let mut app = Self {
            state: AppState::new(settings),
            derived: Derived::new(runner, background),
            textures: HeatTextures::default(),
            hist_transform: None,
            pareto_transform: None,
            frame_cpu_ms: None,
            theme_applied: None,
            dialog_open: Arc::new(AtomicBool::new(false)),
            news_tx,
            news_rx,
        };
        app.state.handle(if paths.is_empty() {
            Command::OpenDemo
        } else {
            Command::Open(paths)
        });
        app.sync();
        app
    }

    /// An app for tests: jobs run inline, default settings, the demo model.
    pub fn new_for_tests() -> Self {
        Self::new(Runner::Inline, Settings::default(), Vec::new())
    }

    /// Applies what finished jobs report (a model opened) and builds the frame's view.
    fn sync(&mut self) -> FrameView {
        for c in self.derived.poll(&self.state) {
            self.state.handle(c);
        }
        while let Ok(c) = self.news_rx.try_recv() {
            self.state.handle(c);
        }
        self.derived.view(&self.state)
    }

    /// Performs one command (as a panel would return it) and brings the derived layer up to
    /// date (tests; inline jobs finish at once).
    pub fn apply(&mut self, command: Command) {
        self.state.handle(command);
        self.sync();
    }

    /// The current view (requesting whatever it needs).
    pub fn view(&mut self) -> FrameView {
        self.sync()
    }

    /// Selects the tensor named `name`; false when there is none.
    pub fn select_by_name(&mut self, name: &str) -> bool {
        let Some(i) = self.state.model.as_ref().and_then(|m| m.model.find(name)) else {
            return false;
        };
        self.apply(Command::Select(i));
        true
    }

    /// Draws the whole window into `ui` (used by `eframe::App::ui` and by kittest).
    pub fn ui_root(&mut self, ui: &mut Ui) {
        let view = self.sync();
        self.apply_look(ui);
        let mut commands = Vec::new();
        self.keyboard(ui, &view, &mut commands);
        // The demo is not a model one compares with: a file dropped on it opens.
        let file_open = self
            .state
            .model
            .as_ref()
            .is_some_and(|m| !m.paths.is_empty());
        dropped_files(ui, file_open, &mut commands);
        egui::Panel::top("menu").show(ui, |ui| {
            commands.extend(panels::menu::menu_ui(ui, &self.state, &view));
        });
        egui::Panel::bottom("status").show(ui, |ui| {
            commands.extend(panels::status::status_ui(
                ui,
                &self.state,
                &view,
                self.frame_cpu_ms,
            ));
        });
        commands.extend(panels::open_path::open_path_ui(ui, &self.state));
        commands.extend(panels::compare::offer_ui(ui, &self.state));
        if self.state.show_lessons {
            commands.extend(self.lessons_ui(ui, &view));
        } else if self.state.show_model {
            self.model_view_ui(ui, &view, &mut commands);
        } else {
            self.main_views_ui(ui, &view, &mut commands);
        }
        for c in commands {
            self.state.handle(c);
        }
        self.run_effects(ui.ctx());
    }

    /// The browser, the quantization panel and the tensor view.
    fn main_views_ui(&mut self, ui: &mut Ui, view: &FrameView, out: &mut Vec<Command>) {
        let state = &self.state;
        if view.compare.is_some() {
            egui::Panel::bottom("compare")
                .resizable(true)
                .default_size(320.0)
                .min_size(120.0)
                .show(ui, |ui| {
                    out.extend(panels::compare::compare_ui(ui, state, view))
                });
        }
        egui::Panel::left("browser")
            .default_size(575.0)
            .min_size(260.0)
            .max_size(760.0)
            .show(ui, |ui| {
                out.extend(panels::browser::browser_ui(ui, state, view))
            });
        egui::Panel::right("quant")
            .default_size(315.0)
            .min_size(280.0)
            .max_size(460.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    ui.heading("Quantization");
                    let ndim = view.tensor.as_ref().map_or(1, |(_, t)| t.shape.len());
                    out.extend(panels::quant_controls::controls_ui(ui, state, ndim));
                    ui.separator();
                    out.extend(panels::metrics::metrics_ui(ui, state, view));
                    ui.separator();
                    egui::CollapsingHeader::new(RichText::new("Explain this number").strong())
                        .default_open(true)
                        .show(ui, |ui| panels::explain::explain_ui(ui, state, view));
                });
            });
        let textures = &mut self.textures;
        let mut transform = None;
        egui::CentralPanel::default().show(ui, |ui| {
            let Some((_, info)) = &view.tensor else {
                ui.centered_and_justified(|ui| {
                    if view.opening.is_some() {
                        ui.spinner();
                    } else if state.model.is_some() {
                        ui.label("Select a tensor on the left.");
                    } else {
                        ui.label("Open a model (File ▸ Open, Ctrl+O, or drop a file here).");
                    }
                });
                return;
            };
            ui.horizontal_wrapped(|ui| {
                ui.heading(&info.name);
                ui.label(RichText::new(format!("{} · {:?}", info.dtype.name(), info.shape)).weak());
            });
            if !info.dtype.is_float() {
                ui.label("An integer tensor: listed, not quantized.");
                return;
            }
            let height = (ui.available_height() * 0.45).max(160.0);
            let (cmds, t) = panels::histogram::histogram_panel_ui(ui, state, view, height);
            out.extend(cmds);
            transform = t;
            ui.separator();
            out.extend(panels::tabs::tabs_ui(ui, state, view, textures));
        });
        self.hist_transform = transform;
    }

    /// The browser and the Model view.
    fn model_view_ui(&mut self, ui: &mut Ui, view: &FrameView, out: &mut Vec<Command>) {
        let state = &self.state;
        egui::Panel::left("browser")
            .default_size(420.0)
            .min_size(260.0)
            .max_size(760.0)
            .show(ui, |ui| {
                out.extend(panels::browser::browser_ui(ui, state, view))
            });
        let mut transform = None;
        egui::CentralPanel::default().show(ui, |ui| {
            let (cmds, t) = panels::model_view::model_view_ui(ui, state, view);
            out.extend(cmds);
            transform = t;
        });
        self.pareto_transform = transform;
    }

    /// The lessons in the central area, drawn on a copy of their state; a changed input is
    /// committed through a command.
    fn lessons_ui(&self, ui: &mut Ui, view: &FrameView) -> Vec<Command> {
        let mut out = Vec::new();
        let mut lessons = self.state.settings.lessons.clone();
        let action = egui::CentralPanel::default()
            .show(ui, |ui| lessons.ui(ui, view.lesson.as_ref()))
            .inner;
        if lessons != self.state.settings.lessons {
            out.push(Command::SetLessons(Box::new(lessons)));
        }
        if let Some(lessons::LessonAction::TryOnRealTensor(cfg)) = action {
            out.push(Command::TryLesson(Box::new(cfg)));
        }
        out
    }

    /// Theme, fonts and the window title, when they changed.
    fn apply_look(&mut self, ui: &Ui) {
        if self.theme_applied.is_none() {
            install_fonts(ui.ctx());
        }
        if self.theme_applied != Some(self.state.settings.theme) {
            ui.ctx().set_theme(match self.state.settings.theme {
                Theme::Dark => egui::Theme::Dark,
                Theme::Light => egui::Theme::Light,
            });
            self.theme_applied = Some(self.state.settings.theme);
        }
        if self.state.title_stale
            && let Some(m) = &self.state.model
        {
            let title = match m.paths.as_slice() {
                [] => format!("quantscope: {}", m.label()),
                [one, ..] => format!("quantscope: {}", one.display()),
            };
            ui.ctx()
                .send_viewport_cmd(egui::ViewportCommand::Title(title));
            self.state.handle(Command::TitleShown);
        }
    }

    fn keyboard(&self, ui: &Ui, view: &FrameView, out: &mut Vec<Command>) {
        let ctrl_o = egui::KeyboardShortcut::new(egui::Modifiers::COMMAND, egui::Key::O);
        let ctrl_f = egui::KeyboardShortcut::new(egui::Modifiers::COMMAND, egui::Key::F);
        let typing = ui.ctx().text_edit_focused();
        ui.input_mut(|i| {
            if i.consume_shortcut(&ctrl_o) {
                out.push(Command::OpenDialog);
            }
            if i.consume_shortcut(&ctrl_f) {
                out.push(Command::FocusFilter);
            }
            if typing {
                return;
            }
            if i.consume_key(egui::Modifiers::NONE, egui::Key::Slash) {
                out.push(Command::FocusFilter);
            }
            let down = i.consume_key(egui::Modifiers::NONE, egui::Key::ArrowDown);
            let up = i.consume_key(egui::Modifiers::NONE, egui::Key::ArrowUp);
            if down || up {
                let order = &view.visible_order;
                let pos = self
                    .state
                    .selected
                    .and_then(|s| order.iter().position(|&v| v == s));
                let next = match (pos, down) {
                    (None, _) => order.first(),
                    (Some(p), true) => order.get(p + 1),
                    (Some(p), false) => p.checked_sub(1).and_then(|q| order.get(q)),
                };
                if let Some(&n) = next {
                    out.push(Command::Select(n));
                    out.push(Command::ScrollToSelected);
                }
            }
        });
    }

    /// Runs what only the window can do, queued by the state.
    fn run_effects(&mut self, ctx: &egui::Context) {
        for effect in std::mem::take(&mut self.state.effects) {
            match effect {
                Effect::Copy(text) => ctx.copy_text(text),
                Effect::OpenDialog => self.open_dialog(ctx, false),
                Effect::CompareDialog => self.open_dialog(ctx, true),
            }
        }
    }

    /// Shows the native file dialog on its own thread; its answer comes back as a command
    /// (open the files, or with `compare` compare the open model with them). Without a
    /// desktop portal (a bare X server) rfd returns at once with nothing: then the app offers
    /// a path field and says why.
    fn open_dialog(&mut self, ctx: &egui::Context, compare: bool) {
        if self.dialog_open.load(Ordering::Relaxed) || self.derived.is_inline() {
            return;
        }
        let tx = self.news_tx.clone();
        let busy = Arc::clone(&self.dialog_open);
        let ctx = ctx.clone();
        busy.store(true, Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name("quantscope-file-dialog".into())
            .spawn(move || {
                let start = std::time::Instant::now();
                let picked = rfd::FileDialog::new()
                    .set_title(if compare {
                        "Compare with: the quantized model's files"
                    } else {
                        "Open model files"
                    })
                    .add_filter(
                        "model files",
                        &["safetensors", "json", "gguf", "npy", "npz"],
                    )
                    .add_filter("all files", &["*"])
                    .pick_files();
                let news = match picked {
                    Some(paths) if compare => {
                        Some(Command::Compare(pairing::CompareCommand::Start(paths)))
                    }
                    Some(paths) => Some(Command::Open(paths)),
                    // Nobody cancels a dialog within a quarter of a second: there was none.
                    None if start.elapsed() < std::time::Duration::from_millis(250) => {
                        let note = Some(NO_DIALOG.to_string());
                        Some(if compare {
                            Command::Compare(pairing::CompareCommand::ShowPath(note))
                        } else {
                            Command::ShowOpenPath(note)
                        })
                    }
                    None => None,
                };
                if let Some(news) = news {
                    let _ = tx.send(news);
                }
                busy.store(false, Ordering::Relaxed);
                ctx.request_repaint();
            });
        if let Err(e) = spawned {
            self.dialog_open.store(false, Ordering::Relaxed);
            self.state.handle(Command::ShowOpenPath(Some(format!(
                "could not start the file dialog ({e}); type a path"
            ))));
        }
    }
}

/// What the path field says when the desktop has no file dialog.
const NO_DIALOG: &str = "No file dialog is available on this desktop (no XDG desktop portal \
                         answered). Type the path of a model file, an index or a folder.";

/// Files dropped on the window become an open command, or, while a model is open, the
/// prompt offering to compare them with it.
fn dropped_files(ui: &Ui, model_open: bool, out: &mut Vec<Command>) {
    let dropped: Vec<PathBuf> = ui.input(|i| {
        i.raw
            .dropped_files
            .iter()
            .map(|f| f.path().to_path_buf())
            .filter(|p| !p.as_os_str().is_empty())
            .collect()
    });
    if dropped.is_empty() {
        return;
    }
    out.push(if model_open {
        Command::Compare(pairing::CompareCommand::Offer(dropped))
    } else {
        Command::Open(dropped)
    });
}

impl eframe::App for QuantscopeApp {
    fn ui(&mut self, ui: &mut Ui, frame: &mut eframe::Frame) {
        // CPU time of the previous frame, shown in the status bar.
        self.frame_cpu_ms = frame.info().cpu_usage.map(|s| s * 1e3);
        self.ui_root(ui);
        if self.state.opening.is_some() {
            // The open job reports through a channel.
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(100));
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, STORAGE_KEY, &self.state.settings);
    }
}
