//! Building blocks shared by the lesson pages: typeset formulas, the vector text field with its
//! parser, labelled inputs that never clamp silently, number formatting and a small result cache.

use std::sync::Arc;

use egui::text::{CCursor, LayoutJob, TextFormat};
use egui::{Align, FontFamily, FontId, Response, RichText, Sense, Stroke, TextStyle, Ui, Vec2};
use serde::{Deserialize, Serialize};

use crate::quant::{Preset, QuantConfig, Scheme};

/// The most numbers a lesson vector may hold (lessons are about small, readable examples).
pub const MAX_VECTOR_LEN: usize = 256;

/// Why the text in a vector field is not a usable list of numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VectorParseError {
    /// Nothing but separators was typed.
    #[error("type at least one number, e.g. -2.5, -1, 0, 1, 3.5")]
    Empty,
    /// One item is not a number.
    #[error("item {index} ({token:?}) is not a number")]
    NotANumber {
        /// 1-based position of the item.
        index: usize,
        /// The text of the item.
        token: String,
    },
    /// One item is NaN or infinite; lessons work on finite values.
    #[error("item {index} ({token:?}) is not finite; lessons use finite numbers")]
    NotFinite {
        /// 1-based position of the item.
        index: usize,
        /// The text of the item.
        token: String,
    },
    /// More than [`MAX_VECTOR_LEN`] items.
    #[error("{got} numbers typed; a lesson vector holds at most {max}")]
    TooMany {
        /// The limit.
        max: usize,
        /// How many were typed.
        got: usize,
    },
}

/// Parses a typed vector such as `[-2.5, -1, 0, 1, 3.5]`.
///
/// Items are separated by commas, semicolons or white space; surrounding brackets or
/// parentheses are ignored; the Unicode minus sign (−) counts as `-`. Every item must be a
/// finite f32.
pub fn parse_vector(text: &str) -> Result<Vec<f32>, VectorParseError> {
    let cleaned: String = text
        .chars()
        .map(|c| match c {
            '−' | '–' => '-',
            '[' | ']' | '(' | ')' | ',' | ';' => ' ',
            other => other,
        })
        .collect();
    let tokens: Vec<&str> = cleaned.split_whitespace().collect();
    if tokens.is_empty() {
        return Err(VectorParseError::Empty);
    }
    if tokens.len() > MAX_VECTOR_LEN {
        return Err(VectorParseError::TooMany {
            max: MAX_VECTOR_LEN,
            got: tokens.len(),
        });
    }
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let v: f32 = t.parse().map_err(|_| VectorParseError::NotANumber {
                index: i + 1,
                token: (*t).to_string(),
            })?;
            if v.is_finite() {
                Ok(v)
            } else {
                Err(VectorParseError::NotFinite {
                    index: i + 1,
                    token: (*t).to_string(),
                })
            }
        })
        .collect()
}

/// Writes a vector the way the field shows it: `-2.5, -1, 0, 1, 3.5`.
pub fn vector_text(values: &[f32]) -> String {
    values
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A text field holding a vector: the typed text, the last valid values and the parse error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorField {
    /// What the learner typed.
    text: String,
    /// The last successfully parsed values (kept while the text has an error).
    values: Vec<f32>,
    /// The parse error of `text`, shown inline.
    #[serde(skip)]
    error: Option<VectorParseError>,
}

impl VectorField {
    /// A field holding `values`.
    pub fn new(values: &[f32]) -> Self {
        Self {
            text: vector_text(values),
            values: values.to_vec(),
            error: None,
        }
    }

    /// The last valid values.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The current parse error, if the text is not a valid vector.
    pub fn error(&self) -> Option<&VectorParseError> {
        self.error.as_ref()
    }

    /// Replaces the text as if typed; returns whether the values changed.
    pub fn set_text(&mut self, text: &str) -> bool {
        self.text = text.to_string();
        match parse_vector(text) {
            Ok(v) => {
                self.error = None;
                let changed = v != self.values;
                self.values = v;
                changed
            }
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }

    /// Draws `label` and the text field (named by the label for tests and screen readers), and
    /// the inline error under it. Returns whether the values changed.
    pub fn ui(&mut self, ui: &mut Ui, label: &str) -> bool {
        let mut changed = false;
        ui.horizontal_wrapped(|ui| {
            let l = ui.label(label);
            let mut text = self.text.clone();
            let r = ui
                .add(
                    egui::TextEdit::singleline(&mut text)
                        .desired_width(320.0)
                        .hint_text("numbers separated by commas"),
                )
                .labelled_by(l.id)
                .on_hover_text("Type numbers separated by commas or spaces; brackets are fine.");
            if r.changed() || text != self.text {
                changed = self.set_text(&text);
            }
        });
        if let Some(e) = &self.error {
            ui.label(
                RichText::new(format!("Error: {e} — still showing the last valid vector"))
                    .color(ui.visuals().error_fg_color),
            );
        }
        changed
    }
}

/// A caller-keyed cache of one small derived result of a lesson's own inputs: recomputed only
/// when the key changes. Clones share the cache (the app draws a lesson on a copy of its state),
/// and equality ignores it (two lessons with the same inputs are equal).
#[derive(Debug)]
pub struct Memo<K, V> {
    entry: Arc<std::sync::Mutex<MemoEntry<K, V>>>,
}

/// The key and value a [`Memo`] holds, once computed.
type MemoEntry<K, V> = Option<(K, Arc<V>)>;

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Self {
            entry: Arc::new(std::sync::Mutex::new(None)),
        }
    }
}

impl<K, V> Clone for Memo<K, V> {
    fn clone(&self) -> Self {
        Self {
            entry: Arc::clone(&self.entry),
        }
    }
}

impl<K, V> PartialEq for Memo<K, V> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<K: PartialEq, V> Memo<K, V> {
    /// The cached value for `key`, computing it with `f` on a miss.
    pub fn get(&mut self, key: K, f: impl FnOnce(&K) -> V) -> Arc<V> {
        let Ok(mut entry) = self.entry.lock() else {
            // A poisoned cache (a panic while computing) is simply bypassed.
            return Arc::new(f(&key));
        };
        if let Some((k, v)) = entry.as_ref()
            && *k == key
        {
            return Arc::clone(v);
        }
        let v = Arc::new(f(&key));
        *entry = Some((key, Arc::clone(&v)));
        v
    }
}

/// The heading line of a lesson's real-tensor part: which tensor, and that every value is used
/// (the same runs as the main views); a hint when no float tensor is selected.
pub fn real_header<'a>(
    ui: &mut egui::Ui,
    real: Option<&'a super::super::derived::LessonReal>,
    on_selected: &mut bool,
) -> Option<&'a super::super::derived::LessonReal> {
    ui.checkbox(
        on_selected,
        "Run on the tensor selected in the main views instead of the built-in activations",
    );
    match real {
        Some(r) => {
            let activations = r.name.starts_with(super::super::demo::ACTIVATIONS_PREFIX);
            if activations {
                ui.label(format!(
                    "Data: {} — real activations captured from all-MiniLM-L6-v2 on 32 sentences \
                     (the input of a Linear layer); all {} values, the same runs as the main views.",
                    r.name, r.numel
                ));
            } else {
                ui.label(format!(
                    "Data: {} — all {} values, the same runs as the main views.",
                    r.name, r.numel
                ));
            }
            Some(r)
        }
        None => {
            ui.label(
                egui::RichText::new(
                    "Select a float tensor in the main views (Lessons off) to run this on real data.",
                )
                .weak(),
            );
            None
        }
    }
}

/// Bit patterns of a vector: the cache key of a vector input (floats compare by bits).
pub fn bits_key(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// `v` with about `sig` significant digits, in plain notation when reasonable (like `%g`).
pub fn fmt_g(v: f64, sig: usize) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "∞".into()
        } else {
            "−∞".into()
        };
    }
    if v == 0.0 {
        return "0".into();
    }
    let mag = v.abs().log10().floor();
    // Like %g: scientific below 1e-4 or when the integer part needs more than `sig` digits.
    if mag < -4.0 || mag >= sig as f64 {
        let s = format!("{:.*e}", sig.saturating_sub(1), v);
        return tidy_exponent(&s);
    }
    // mag is within [-4, sig): the digit count is a small non-negative integer.
    let decimals = (sig as f64 - 1.0 - mag).max(0.0) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    minus(&s)
}

/// Removes trailing zeros from the mantissa of a `{:e}` string and uses a real minus sign.
fn tidy_exponent(s: &str) -> String {
    match s.split_once('e') {
        Some((m, e)) => {
            let m = if m.contains('.') {
                m.trim_end_matches('0').trim_end_matches('.')
            } else {
                m
            };
            minus(&format!("{m}e{e}"))
        }
        None => minus(s),
    }
}

/// Replaces ASCII hyphen-minus signs by the typographic minus (−).
pub fn minus(s: &str) -> String {
    s.replace('-', "−")
}

/// A formatted number as the right-hand side of a subtraction: a negative one in parentheses,
/// so "a − (−0.2)" reads as subtracting a negative number rather than a doubled sign.
pub fn subtrahend(formatted: &str) -> String {
    if formatted.starts_with(['−', '-']) {
        format!("({formatted})")
    } else {
        formatted.to_string()
    }
}

/// An f32 in its shortest round-trip form with a typographic minus.
pub fn fmt_f32(v: f32) -> String {
    if v.is_infinite() {
        return if v > 0.0 {
            "∞".into()
        } else {
            "−∞".into()
        };
    }
    minus(&v.to_string())
}

/// A list of numbers as `[a, b, c]`.
pub fn fmt_list<T: std::fmt::Display>(values: &[T]) -> String {
    let items: Vec<String> = values.iter().map(|v| minus(&v.to_string())).collect();
    format!("[{}]", items.join(", "))
}

/// A list of f32 values with `sig` significant digits.
pub fn fmt_list_g(values: &[f32], sig: usize) -> String {
    let items: Vec<String> = values.iter().map(|&v| fmt_g(f64::from(v), sig)).collect();
    format!("[{}]", items.join(", "))
}

/// One piece of a parsed formula.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    /// Ordinary text; `hat` marks the char indices (within `text`) that carry a circumflex.
    Normal(String),
    /// A subscript.
    Sub(String),
    /// A superscript.
    Sup(String),
}

/// Splits the formula mini-markup into pieces: `_{..}` / `_c` subscripts, `^{..}` / `^c`
/// superscripts, everything else verbatim.
fn parse_formula(src: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut normal = String::new();
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        if (c == '_' || c == '^') && chars.peek().is_some() {
            let mut group = String::new();
            if chars.peek() == Some(&'{') {
                chars.next();
                for g in chars.by_ref() {
                    if g == '}' {
                        break;
                    }
                    group.push(g);
                }
            } else if let Some(g) = chars.next() {
                group.push(g);
            }
            if !normal.is_empty() {
                out.push(Piece::Normal(std::mem::take(&mut normal)));
            }
            out.push(if c == '_' {
                Piece::Sub(group)
            } else {
                Piece::Sup(group)
            });
        } else {
            normal.push(c);
        }
    }
    if !normal.is_empty() {
        out.push(Piece::Normal(normal));
    }
    out
}

/// The combining circumflex (x̂): no bundled font has it, so it is drawn by hand.
const HAT: char = '\u{302}';

/// Draws a typeset formula.
///
/// Markup: `_{min}` or `_i` for subscripts, `^{b−1}` or `^2` for superscripts, and a
/// combining circumflex after a letter (`x\u{302}`) for a hat, which is painted above the
/// letter (no bundled font has the combining mark). Characters the proportional font lacks
/// (⌊ ⌉ ∈ …) are taken from the monospace font. The accessible label is the plain source text.
pub fn formula(ui: &mut Ui, src: &str) -> Response {
    formula_sized(ui, src, 17.0)
}

/// [`formula`] with a chosen font size; small formulas (table headers) never wrap.
pub fn formula_sized(ui: &mut Ui, src: &str, size: f32) -> Response {
    let color = ui.visuals().strong_text_color();
    let mut job = LayoutJob::default();
    job.wrap.max_width = if size < 16.0 {
        f32::INFINITY
    } else {
        ui.available_width().max(50.0)
    };
    let mut hats: Vec<usize> = Vec::new();
    let mut n_chars = 0usize;
    let script = script_size(size, small_size(ui));
    for piece in parse_formula(src) {
        let (text, font_size, valign) = match &piece {
            Piece::Normal(t) => (t, size, Align::Center),
            Piece::Sub(t) => (t, script, Align::BOTTOM),
            Piece::Sup(t) => (t, script, Align::TOP),
        };
        for c in text.chars() {
            if c == HAT {
                if n_chars > 0 {
                    hats.push(n_chars - 1);
                }
                continue;
            }
            let prop = FontId::new(font_size, FontFamily::Proportional);
            let has = ui.fonts_mut(|f| f.has_glyph(&prop, c));
            let font_id = if has {
                prop
            } else {
                FontId::new(font_size, FontFamily::Monospace)
            };
            let mut buf = [0u8; 4];
            job.append(
                c.encode_utf8(&mut buf),
                0.0,
                TextFormat {
                    font_id,
                    color,
                    valign,
                    ..Default::default()
                },
            );
            n_chars += 1;
        }
    }
    let galley = ui.fonts_mut(|f| f.layout_job(job));
    let (rect, response) =
        ui.allocate_exact_size(galley.size() + Vec2::new(0.0, 4.0), Sense::hover());
    let origin = rect.min + Vec2::new(0.0, 4.0);
    if ui.is_rect_visible(rect) {
        let painter = ui.painter();
        for &i in &hats {
            let a = galley.pos_from_cursor(CCursor::new(i));
            let b = galley.pos_from_cursor(CCursor::new(i + 1));
            let mid = origin.x + (a.min.x + b.min.x) / 2.0;
            let h = a.height();
            let top = origin.y + a.min.y + h * 0.12;
            let w = (b.min.x - a.min.x).abs().max(4.0) * 0.32;
            let stroke = Stroke::new(size / 14.0, color);
            painter.line_segment(
                [egui::pos2(mid - w, top + h * 0.1), egui::pos2(mid, top)],
                stroke,
            );
            painter.line_segment(
                [egui::pos2(mid, top), egui::pos2(mid + w, top + h * 0.1)],
                stroke,
            );
        }
        painter.galley(origin, galley, color);
    }
    let label = src.replace(['{', '}'], "");
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, &label));
    response
}

/// The theme's small text size: the floor for every caption, sub- and superscript of a lesson.
pub fn small_size(ui: &Ui) -> f32 {
    ui.style()
        .text_styles
        .get(&TextStyle::Small)
        .map_or(9.0, |f| f.size)
}

/// The size of sub- and superscripts in a formula of `size`: two thirds of it, never below the
/// theme's small size `small` (so they stay readable).
pub fn script_size(size: f32, small: f32) -> f32 {
    (size * 0.68).max(small)
}

/// A heading for one part of a lesson.
pub fn section(ui: &mut Ui, title: &str) {
    ui.add_space(10.0);
    ui.label(RichText::new(title).heading().size(18.0));
}

/// A paragraph of explanation (wraps at the available width).
pub fn para(ui: &mut Ui, text: &str) {
    ui.add(egui::Label::new(text).wrap());
}

/// A highlighted note, e.g. where the textbook example's arithmetic is loose.
pub fn note(ui: &mut Ui, text: &str) {
    let fill = ui.visuals().faint_bg_color;
    let stroke = Stroke::new(1.0, ui.visuals().warn_fg_color);
    egui::Frame::new()
        .fill(fill)
        .stroke(stroke)
        .corner_radius(4.0)
        .inner_margin(8.0)
        .show(ui, |ui| {
            ui.add(egui::Label::new(RichText::new(text).color(ui.visuals().text_color())).wrap());
        });
}

/// A labelled integer input that never clamps silently: the field keeps what was typed or
/// dragged, and while that lies outside `allowed` a warning beside it says which value the
/// lesson uses instead ([`limit_int`]). The label names the widget. Returns whether it changed.
pub fn int_input(
    ui: &mut Ui,
    label: &str,
    raw: &mut i32,
    allowed: std::ops::RangeInclusive<i32>,
) -> bool {
    ui.horizontal(|ui| {
        let l = ui.label(label);
        let changed = ui
            .add(egui::DragValue::new(raw).speed(0.05))
            .labelled_by(l.id)
            .on_hover_text(format!(
                "From {} to {}",
                minus(&allowed.start().to_string()),
                minus(&allowed.end().to_string())
            ))
            .changed();
        let used = limit_int(*raw, &allowed);
        if used != *raw {
            clamp_warning(
                ui,
                &format!(
                    "{} is outside {} … {}: this lesson uses {}",
                    minus(&raw.to_string()),
                    minus(&allowed.start().to_string()),
                    minus(&allowed.end().to_string()),
                    minus(&used.to_string())
                ),
            );
        }
        changed
    })
    .inner
}

/// The value an integer input stands for: `raw` clamped into `allowed` (the warning of
/// [`int_input`] says so on screen).
pub fn limit_int(raw: i32, allowed: &std::ops::RangeInclusive<i32>) -> i32 {
    raw.clamp(*allowed.start(), *allowed.end())
}

/// A labelled real-number input that never clamps silently: the field shows the parsed decimal
/// in its shortest exact form and keeps what was typed; while that lies outside `allowed` (or is
/// not finite) a warning beside it says which value the lesson uses ([`limit_real`]). Returns
/// whether it changed.
pub fn real_input(
    ui: &mut Ui,
    label: &str,
    raw: &mut f64,
    allowed: std::ops::RangeInclusive<f64>,
    speed: f64,
) -> bool {
    ui.horizontal(|ui| {
        let l = ui.label(label);
        let changed = ui
            .add(
                egui::DragValue::new(raw)
                    .speed(speed)
                    .custom_formatter(|v, _| crate::float::format_exact(v))
                    .custom_parser(|t| t.trim().replace('−', "-").parse::<f64>().ok()),
            )
            .labelled_by(l.id)
            .on_hover_text(format!(
                "From {} to {}",
                fmt_g(*allowed.start(), 6),
                fmt_g(*allowed.end(), 6)
            ))
            .changed();
        let used = limit_real(*raw, &allowed);
        if used.to_bits() != raw.to_bits() {
            clamp_warning(
                ui,
                &format!(
                    "{} is outside {} … {}: this lesson uses {}",
                    fmt_g(*raw, 6),
                    fmt_g(*allowed.start(), 6),
                    fmt_g(*allowed.end(), 6),
                    fmt_g(used, 6)
                ),
            );
        }
        changed
    })
    .inner
}

/// The value a real input stands for: `raw` clamped into `allowed`; NaN counts as the lower end
/// (the warning of [`real_input`] says so on screen).
pub fn limit_real(raw: f64, allowed: &std::ops::RangeInclusive<f64>) -> f64 {
    if raw.is_nan() {
        *allowed.start()
    } else {
        raw.clamp(*allowed.start(), *allowed.end())
    }
}

/// A warning in the theme's warning colour, e.g. that an input was clamped.
pub fn clamp_warning(ui: &mut Ui, text: &str) {
    ui.label(RichText::new(text).color(ui.visuals().warn_fg_color));
}

/// "1 value" / "3 values": `n` with the singular or plural noun.
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The code width of a lesson's bits input: `raw` limited to 2..=8 (the lessons' widths).
pub fn bits_of(raw: i32) -> u8 {
    u8::try_from(limit_int(raw, &BITS)).unwrap_or(8)
}

/// The code widths the lessons offer.
pub const BITS: std::ops::RangeInclusive<i32> = 2..=8;

/// Radio buttons for the scheme. Returns whether it changed.
pub fn scheme_ui(ui: &mut Ui, scheme: &mut Scheme) -> bool {
    let before = *scheme;
    ui.horizontal(|ui| {
        ui.label("Scheme:");
        ui.radio_value(scheme, Scheme::Symmetric, "symmetric");
        ui.radio_value(scheme, Scheme::Asymmetric, "asymmetric");
    });
    before != *scheme
}

/// A combo box choosing the library convention. `allow_symmetric_only` admits TensorRT.
pub fn preset_ui(ui: &mut Ui, id: &str, preset: &mut Preset, allow_symmetric_only: bool) -> bool {
    let before = *preset;
    ui.horizontal(|ui| {
        let l = ui.label("Convention (preset):");
        egui::ComboBox::from_id_salt(id)
            .selected_text(preset.name())
            .show_ui(ui, |ui| {
                for p in Preset::ALL {
                    if allow_symmetric_only || !p.convention().symmetric_only {
                        ui.selectable_value(preset, p, p.name());
                    }
                }
            })
            .response
            .labelled_by(l.id);
    });
    before != *preset
}

/// The "Try it on a real tensor" button; returns the config when pressed.
pub fn try_button(ui: &mut Ui, cfg: &QuantConfig) -> Option<QuantConfig> {
    ui.add_space(12.0);
    let r = ui
        .button(RichText::new("Try it on a real tensor").strong())
        .on_hover_text(
            "Open the main views with this lesson's settings applied to the selected tensor.",
        );
    r.clicked().then(|| cfg.clone())
}

/// The per-element table: x, x/S, rounded, + z, q, x̂ and the error, with ties and clamps marked.
pub fn steps_table(ui: &mut Ui, id: &str, q: &super::compute::Quantized, with_zero_point: bool) {
    egui::Grid::new(id).striped(true).show(ui, |ui| {
        let mut heads = vec!["x", "x / S", "rounded"];
        if with_zero_point {
            heads.push("+ z");
        }
        heads.extend(["q", "x\u{302} = S·(q − z)", "error x\u{302} − x"]);
        for h in heads {
            if h.contains(HAT) {
                formula_sized(ui, h, 14.0);
            } else {
                ui.strong(h);
            }
        }
        ui.end_row();
        for s in &q.steps {
            ui.label(fmt_f32(s.x));
            ui.label(fmt_g(f64::from(s.x_over_s), 6));
            let mut r = fmt_g(s.rounded, 6);
            if s.tie {
                r.push_str("  (tie)");
            }
            ui.label(r);
            if with_zero_point {
                ui.label(fmt_g(s.plus_z, 6));
            }
            let code = if s.clamped {
                format!("{} (clamped)", minus(&s.q.to_string()))
            } else {
                minus(&s.q.to_string())
            };
            ui.label(RichText::new(code).strong());
            ui.label(fmt_g(f64::from(s.x_hat), 7));
            ui.label(fmt_g(f64::from(s.error), 4));
            ui.end_row();
        }
    });
}

/// One line with MSE, SQNR and max |e| of a quantization.
pub fn metrics_line(ui: &mut Ui, q: &super::compute::Quantized) {
    let m = &q.metrics;
    ui.label(format!(
        "MSE {}   ·   SQNR {} dB   ·   max |e| {}",
        fmt_g(m.mse, 4),
        fmt_g(m.sqnr_db, 4),
        fmt_g(m.max_abs_error, 4)
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negative_subtrahend_gets_parentheses() {
        assert_eq!(subtrahend(&fmt_f32(-0.2)), "(−0.2)");
        assert_eq!(subtrahend(&fmt_f32(0.3)), "0.3");
        assert_eq!(subtrahend(&fmt_g(-1.5e-7, 3)), "(−1.5e−7)");
    }

    #[test]
    fn parses_brackets_commas_and_unicode_minus() {
        assert_eq!(
            parse_vector("[-2.5, −1, 0;1  3.5]"),
            Ok(vec![-2.5, -1.0, 0.0, 1.0, 3.5])
        );
        assert_eq!(parse_vector("3 1 2 3,"), Ok(vec![3.0, 1.0, 2.0, 3.0]));
    }

    #[test]
    fn parse_errors_name_the_item() {
        assert_eq!(parse_vector(" , [] "), Err(VectorParseError::Empty));
        assert_eq!(
            parse_vector("1, two, 3"),
            Err(VectorParseError::NotANumber {
                index: 2,
                token: "two".into()
            })
        );
        assert_eq!(
            parse_vector("1, inf"),
            Err(VectorParseError::NotFinite {
                index: 2,
                token: "inf".into()
            })
        );
        let long = vec!["1"; MAX_VECTOR_LEN + 1].join(",");
        assert_eq!(
            parse_vector(&long),
            Err(VectorParseError::TooMany {
                max: MAX_VECTOR_LEN,
                got: MAX_VECTOR_LEN + 1
            })
        );
    }

    #[test]
    fn field_keeps_last_valid_values_on_error() {
        let mut f = VectorField::new(&[1.0, 2.0]);
        assert!(!f.set_text("1, x"));
        assert_eq!(f.values(), &[1.0, 2.0]);
        assert!(f.error().is_some());
        assert!(f.set_text("4"));
        assert_eq!(f.values(), &[4.0]);
        assert!(f.error().is_none());
    }

    #[test]
    fn formats_like_percent_g() {
        assert_eq!(fmt_g(6.9204845e-5, 6), "6.92048e−5");
        assert_eq!(fmt_g(0.0027450980, 4), "0.002745");
        assert_eq!(fmt_g(47.7318, 4), "47.73");
        assert_eq!(fmt_g(-0.191, 4), "−0.191");
        assert_eq!(fmt_g(f64::INFINITY, 4), "∞");
        assert_eq!(fmt_g(99614720.0, 8), "99614720");
    }

    #[test]
    fn formula_markup_splits_sub_and_superscripts() {
        assert_eq!(
            parse_formula("q_{min} = 2^b − 1"),
            vec![
                Piece::Normal("q".into()),
                Piece::Sub("min".into()),
                Piece::Normal(" = 2".into()),
                Piece::Sup("b".into()),
                Piece::Normal(" − 1".into()),
            ]
        );
    }

    #[test]
    fn scripts_never_go_below_the_small_size() {
        assert_eq!(script_size(17.0, 9.0), 17.0 * 0.68);
        assert_eq!(script_size(12.0, 9.0), 9.0);
    }

    #[test]
    fn inputs_are_limited_visibly_not_silently() {
        assert_eq!(limit_int(24, &(0..=64)), 24);
        assert_eq!(limit_int(90, &(0..=64)), 64);
        assert_eq!(limit_real(f64::NAN, &(1.0..=2.0)), 1.0);
        assert_eq!(limit_real(f64::INFINITY, &(1.0..=2.0)), 2.0);
        assert_eq!(bits_of(12), 8);
        assert_eq!(bits_of(4), 4);
        assert_eq!(count(1, "value", "values"), "1 value");
        assert_eq!(count(0, "value", "values"), "0 values");
    }

    #[test]
    fn memo_recomputes_only_on_a_new_key() {
        let mut m: Memo<u32, u32> = Memo::default();
        let mut calls = 0;
        for k in [1, 1, 2, 2, 1] {
            m.get(k, |k| {
                calls += 1;
                *k * 10
            });
        }
        assert_eq!(calls, 3);
        assert_eq!(*m.get(1, |_| 0), 10);
    }
}
