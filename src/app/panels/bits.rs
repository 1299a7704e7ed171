//! The bit layout panel: one value as sign / exponent / mantissa cells in every float format,
//! with the decoded formula, stored value, conversion error, class and neighbours; click a bit
//! to flip it, type a value (or a bit pattern, read as `quantscope bits` reads it), or step to
//! the next / previous representable value; and the selected tensor's exponent histogram with
//! how many of its values each format would overflow or flush to zero.

use egui::{Color32, RichText, Role, Sense, Ui, Vec2, WidgetInfo};
use egui_plot::{Bar, BarChart, Plot};

use super::super::derived::FrameView;
use super::super::derived::results::TensorStats;
use super::super::state::{BitsState, Command, short_float};
use crate::float::{FloatClass, FloatFormat, Overflow, format_exact, parse_input};

/// Colour of a bit field: the one colour language of every float view (this panel and the
/// lessons) — sign red, exponent green, mantissa blue, the same in both themes; text on it is
/// white. [`field_legend`] names them.
pub fn field_colour(field: Field) -> Color32 {
    match field {
        Field::Sign => Color32::from_rgb(200, 70, 70),
        Field::Exponent => Color32::from_rgb(60, 150, 80),
        Field::Mantissa => Color32::from_rgb(60, 105, 200),
    }
}

/// The fill of one bit cell: the field's colour for a 1, a dimmed version of it for a 0.
pub fn bit_fill(field: Field, bit: u32) -> Color32 {
    let base = field_colour(field);
    if bit == 1 {
        base
    } else {
        base.gamma_multiply(0.35)
    }
}

/// The legend of the field colours: a swatch and the name of each field.
pub fn field_legend(ui: &mut Ui) {
    ui.horizontal(|ui| {
        for field in Field::ALL {
            let (rect, _) = ui.allocate_exact_size(Vec2::splat(12.0), Sense::hover());
            ui.painter().rect_filled(rect, 2.0, field_colour(field));
            ui.label(field.name());
            ui.add_space(6.0);
        }
    });
}

/// The three bit fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The sign bit.
    Sign,
    /// Exponent bits.
    Exponent,
    /// Mantissa (fraction) bits.
    Mantissa,
}

impl Field {
    /// The fields from the most significant bit down.
    pub const ALL: [Field; 3] = [Field::Sign, Field::Exponent, Field::Mantissa];

    /// The field's name ("sign", "exponent", "mantissa").
    pub fn name(self) -> &'static str {
        match self {
            Field::Sign => "sign",
            Field::Exponent => "exponent",
            Field::Mantissa => "mantissa",
        }
    }
}

/// Which field bit `pos` (0 = least significant) of `format` belongs to.
pub fn field_of(format: &FloatFormat, pos: u32) -> Field {
    if pos >= format.exponent_bits + format.mantissa_bits {
        Field::Sign
    } else if pos >= format.mantissa_bits {
        Field::Exponent
    } else {
        Field::Mantissa
    }
}

/// Draws the panel; returns the commands of what the user did.
pub fn bits_ui(ui: &mut Ui, state: &BitsState, view: &FrameView) -> Vec<Command> {
    let mut out = Vec::new();
    ui.horizontal(|ui| {
        ui.label("Value:");
        let mut text = state.text.clone();
        let r = ui
            .add(
                egui::TextEdit::singleline(&mut text)
                    .desired_width(140.0)
                    .hint_text("e.g. 0.1, 1e-8, 0x3f800000"),
            )
            .on_hover_text(
                "Type a number, or a bit pattern whose width picks the format: 0x7e (FP8 E4M3), \
                 0x3c00 (FP16), 0x3f800000 (FP32) — as `quantscope bits` reads it.",
            );
        if r.changed() {
            out.push(Command::SetBitsText(text.clone()));
        }
        if r.lost_focus() {
            match parse_input(&text, None) {
                Ok(input) => out.push(Command::SetBitsValue(input.value(), "typed".into())),
                Err(e) => out.push(Command::Status(e.to_string())),
            }
        }
        ui.label(RichText::new(format!("from: {}", state.source)).weak());
        ui.separator();
        let mut saturate = state.overflow == Overflow::Saturate;
        if ui
            .checkbox(&mut saturate, "FP8 saturates")
            .on_hover_text("On: FP8 overflow clamps to ±max (PyTorch, ONNX, TensorRT). Off: it becomes Inf/NaN (ml_dtypes).")
            .changed()
        {
            out.push(Command::SetOverflow(if saturate {
                Overflow::Saturate
            } else {
                Overflow::NonFinite
            }));
        }
    });
    ui.add_space(4.0);
    field_legend(ui);
    for format in FloatFormat::ALL {
        format_row_ui(ui, &format, state, &mut out);
        ui.add_space(2.0);
    }
    ui.add_space(4.0);
    ranges_table_ui(ui);
    if let Some(stats) = &view.stats {
        tensor_exponents_ui(ui, stats, view);
    }
    out
}

/// The selected tensor's binary exponents and what each narrower format would do to them.
fn tensor_exponents_ui(ui: &mut Ui, stats: &TensorStats, view: &FrameView) {
    let e = &stats.exponents;
    let name = view.tensor.as_ref().map_or("", |(_, t)| t.name.as_str());
    egui::CollapsingHeader::new(format!("Exponents of {name}"))
        .default_open(true)
        .show(ui, |ui| {
            let bars: Vec<Bar> = e
                .counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(i, &c)| {
                    // i < 277, exact in f64; counts far below 2^53.
                    let exponent = f64::from(e.min_exponent) + i as f64;
                    Bar::new(exponent, (1.0 + c as f64).log10()).width(0.9)
                })
                .collect();
            crate::app::panels::labelled_axes(Plot::new("tensor_exponents"))
                .height(120.0)
                .allow_scroll(false)
                .x_axis_label("floor(log2 |x|)")
                .y_axis_label("log10(1 + count)")
                .show(ui, |p| {
                    p.bar_chart(BarChart::new("values", bars));
                });
            egui::Grid::new("exponent_ranges")
                .striped(true)
                .show(ui, |ui| {
                    for h in ["format", "overflow", "subnormal", "flush to 0"] {
                        ui.label(RichText::new(h).strong());
                    }
                    ui.end_row();
                    for f in &e.formats {
                        let format = FloatFormat::ALL.iter().find(|x| x.id == f.format);
                        ui.label(format.map_or("?", |x| x.name));
                        ui.label(f.overflow.to_string());
                        ui.label(f.subnormal.to_string());
                        ui.label(f.underflow_to_zero.to_string());
                        ui.end_row();
                    }
                });
            ui.label(
                RichText::new(format!(
                    "{} zeros, {} NaN, {} ±Inf, {} f32 subnormals",
                    e.zero_count, e.nan_count, e.inf_count, e.f32_subnormal_count
                ))
                .weak(),
            );
        });
}

fn format_row_ui(ui: &mut Ui, format: &FloatFormat, state: &BitsState, out: &mut Vec<Command>) {
    let a = format.analyze(state.value, state.overflow);
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.add_sized(
                [62.0, 18.0],
                egui::Label::new(RichText::new(format.name).strong()),
            );
            ui.spacing_mut().item_spacing.x = 1.0;
            let total = format.total_bits();
            // Cells shrink to fit the panel (with room for the hex code), 6 to 12 points wide.
            // A bit count is at most 32: exact in f32.
            let cell = ((ui.available_width() - 90.0) / total as f32 - 1.0).clamp(6.0, 12.0);
            for pos in (0..total).rev() {
                let bit = (a.bits >> pos) & 1;
                let field = field_of(format, pos);
                if pos + 1 == format.exponent_bits + format.mantissa_bits
                    || pos + 1 == format.mantissa_bits
                {
                    ui.add_space(3.0);
                }
                if bit_cell_ui(ui, format, pos, bit, field, cell).clicked() {
                    let flipped = a.bits ^ (1 << pos);
                    // Every value of these formats is exactly representable in f32.
                    let v = format.decode(flipped) as f32;
                    out.push(Command::SetBitsValue(
                        v,
                        format!("{} bit {pos} flipped", format.name),
                    ));
                }
            }
            ui.spacing_mut().item_spacing.x = 6.0;
            ui.add_space(6.0);
            ui.monospace(format.hex(a.bits));
        });
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(format.formula(a.bits)).monospace().small());
        });
        ui.horizontal(|ui| {
            let class_text = a.class.name();
            let class_colour = match a.class {
                FloatClass::Infinite | FloatClass::Nan => ui.visuals().error_fg_color,
                FloatClass::Subnormal => ui.visuals().warn_fg_color,
                FloatClass::Normal | FloatClass::Zero => ui.visuals().text_color(),
            };
            ui.label(RichText::new(class_text).color(class_colour))
                .on_hover_text("normal, subnormal (no hidden 1), zero, inf or nan");
            ui.label(format!("stored {}", format_exact(a.stored)));
            match a.error {
                Some(e) => ui.label(format!("error {}", short_float(e))),
                None => ui.label("error n/a"),
            }
            .on_hover_text(
                "Stored value minus the input value (rounding to nearest, ties to even).",
            );
            if let Some(u) = a.ulp {
                ui.label(format!("ulp {}", short_float(u)));
            }
            let prev = format.next_down(a.bits);
            let next = format.next_up(a.bits);
            if ui
                .add_enabled(prev.is_some(), egui::Button::new("◀").small())
                .on_hover_text(match a.previous {
                    Some(p) => format!(
                        "Step down to the previous {} value, {}",
                        format.name,
                        format_exact(p)
                    ),
                    None => "No smaller value".into(),
                })
                .clicked()
                && let Some(b) = prev
            {
                out.push(Command::SetBitsValue(
                    format.decode(b) as f32,
                    format!("previous {} value", format.name),
                ));
            }
            if ui
                .add_enabled(next.is_some(), egui::Button::new("▶").small())
                .on_hover_text(match a.next {
                    Some(n) => format!(
                        "Step up to the next {} value, {}",
                        format.name,
                        format_exact(n)
                    ),
                    None => "No larger value".into(),
                })
                .clicked()
                && let Some(b) = next
            {
                out.push(Command::SetBitsValue(
                    format.decode(b) as f32,
                    format!("next {} value", format.name),
                ));
            }
        });
    });
}

fn bit_cell_ui(
    ui: &mut Ui,
    format: &FloatFormat,
    pos: u32,
    bit: u32,
    field: Field,
    width: f32,
) -> egui::Response {
    let size = Vec2::new(width, 18.0);
    let (rect, response) = ui.allocate_exact_size(size, Sense::click());
    let label = format!("{} bit {pos}", format.name);
    response.widget_info(|| WidgetInfo::labeled(Role::Button, true, &label));
    if ui.is_rect_visible(rect) {
        let fill = bit_fill(field, bit);
        let fill = if response.hovered() {
            fill.gamma_multiply(1.3)
        } else {
            fill
        };
        ui.painter().rect_filled(rect, 2.0, fill);
        ui.painter().text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            if bit == 1 { "1" } else { "0" },
            egui::FontId::monospace(10.0),
            Color32::WHITE,
        );
    }
    response.on_hover_text(format!("{label} ({}): click to flip", field.name()))
}

fn ranges_table_ui(ui: &mut Ui) {
    egui::CollapsingHeader::new("Range facts per format")
        .default_open(false)
        .show(ui, |ui| {
            egui::Grid::new("float_ranges")
                .striped(true)
                .show(ui, |ui| {
                    for h in [
                        "format",
                        "S/E/M",
                        "bias",
                        "max",
                        "min normal",
                        "min subnormal",
                        "epsilon",
                    ] {
                        ui.label(RichText::new(h).strong());
                    }
                    ui.end_row();
                    for f in FloatFormat::ALL {
                        ui.label(f.name);
                        ui.label(format!("1/{}/{}", f.exponent_bits, f.mantissa_bits));
                        ui.label(f.bias.to_string());
                        ui.label(short_float(f.max_finite()));
                        ui.label(short_float(f.min_normal()));
                        ui.label(short_float(f.min_subnormal()));
                        ui.label(short_float(f.epsilon()));
                        ui.end_row();
                    }
                });
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_patterns_read_as_the_cli_reads_them() {
        let value = |t: &str| {
            parse_input(t, None)
                .map(crate::float::BitsInput::value)
                .ok()
        };
        assert_eq!(value(" 1e8 "), Some(1.0e8));
        // 4 hex digits are FP16, as in `quantscope bits 0x3c00`: 1.0.
        assert_eq!(value("0x3c00"), Some(1.0));
        assert_eq!(value("0x3f800000"), Some(1.0));
        assert_eq!(value("inf"), Some(f32::INFINITY));
        assert!(value("nan").is_some_and(f32::is_nan));
        assert_eq!(value("abc"), None);
    }

    #[test]
    fn fields_split_fp16_as_1_5_10() {
        let f = FloatFormat::FP16;
        assert_eq!(field_of(&f, 15), Field::Sign);
        assert_eq!(field_of(&f, 14), Field::Exponent);
        assert_eq!(field_of(&f, 10), Field::Exponent);
        assert_eq!(field_of(&f, 9), Field::Mantissa);
        assert_eq!(field_of(&f, 0), Field::Mantissa);
    }

    #[test]
    fn short_float_round_trips() {
        for v in [1.0e8, 0.1, -3.5, 6.103515625e-5, 0.0] {
            let s = short_float(v);
            assert_eq!(s.parse::<f64>().ok(), Some(v), "{s}");
        }
        assert_eq!(short_float(1.0e8), "1e8");
        assert_eq!(short_float(2.5), "2.5");
    }
}
