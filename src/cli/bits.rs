//! `quantscope bits`: one value's bit fields, stored value and error in each float format.

use serde_json::{Value, json};

use super::args::{BitsArgs, FormatArg};
use crate::float::{self, Analysis, BitsInput, FloatFormat, Overflow, format_exact};
use crate::report::json_float;

/// Parses the VALUE argument (the shared parser of `float`, with the format flag).
pub fn parse_input(text: &str, format: FormatArg) -> anyhow::Result<BitsInput> {
    Ok(float::parse_input(text, format_of(format))?)
}

fn format_of(arg: FormatArg) -> Option<FloatFormat> {
    match arg {
        FormatArg::Fp32 => Some(FloatFormat::FP32),
        FormatArg::Fp16 => Some(FloatFormat::FP16),
        FormatArg::Bf16 => Some(FloatFormat::BF16),
        FormatArg::Fp8E4m3 => Some(FloatFormat::FP8_E4M3),
        FormatArg::Fp8E5m2 => Some(FloatFormat::FP8_E5M2),
        FormatArg::Fp6E2m3 => Some(FloatFormat::FP6_E2M3),
        FormatArg::Fp6E3m2 => Some(FloatFormat::FP6_E3M2),
        FormatArg::Fp4E2m1 => Some(FloatFormat::FP4_E2M1),
        FormatArg::E8m0 => Some(FloatFormat::E8M0),
        FormatArg::Ue4m3 => Some(FloatFormat::UE4M3),
        FormatArg::All => None,
    }
}

/// The analyses to print: the pattern's own format shows the pattern itself; every other
/// format shows the (exactly representable) decoded value converted.
pub fn analyses(input: BitsInput, format: FormatArg, overflow: Overflow) -> Vec<Analysis> {
    let formats: Vec<FloatFormat> = match format_of(format) {
        Some(f) => vec![f],
        None => FloatFormat::ALL.to_vec(),
    };
    formats
        .into_iter()
        .map(|f| match input {
            BitsInput::Number(x) => f.analyze(x, overflow),
            BitsInput::Pattern {
                format: source,
                bits,
            } => {
                // Every format here is a subset of f32, so the decoded value converts exactly.
                let value = source.decode(bits) as f32;
                if f == source {
                    f.analyze_bits(bits, value)
                } else {
                    f.analyze(value, overflow)
                }
            }
        })
        .collect()
}

/// A bit field as JSON: its bit string, or null when the format has no such field (E8M0 and
/// UE4M3 have no sign bit, E8M0 no mantissa).
fn field_json(bits: String) -> Value {
    if bits.is_empty() {
        Value::Null
    } else {
        Value::String(bits)
    }
}

/// One analysis as the stable JSON object of `bits --json`.
pub fn analysis_json(a: &Analysis, overflow: Overflow) -> Value {
    let format = a.format;
    let (sign, exponent, mantissa) = format.bit_strings(a.bits);
    json!({
        "format": format.cli_name,
        "hex": format.hex(a.bits),
        "sign": field_json(sign),
        "exponent": field_json(exponent),
        "mantissa": field_json(mantissa),
        "value": json_float(a.stored),
        "class": a.class.name(),
        "input": json_float(f64::from(a.input)),
        "error": a.error,
        "relative_error": a.relative_error,
        "exponent_value": a.fields.exponent_value,
        "significand": a.fields.significand,
        "formula": format.formula(a.bits),
        "previous": a.previous.map(json_float),
        "next": a.next.map(json_float),
        "ulp": a.ulp,
        "overflow": overflow_name(overflow),
    })
}

fn overflow_name(overflow: Overflow) -> &'static str {
    match overflow {
        Overflow::Saturate => "saturate",
        Overflow::NonFinite => "nan",
    }
}

/// Runs `bits`.
pub fn run(args: &BitsArgs) -> anyhow::Result<()> {
    let input = parse_input(&args.value, args.format)?;
    let overflow = Overflow::from(args.overflow);
    let rows = analyses(input, args.format, overflow);
    if args.json {
        let array: Vec<Value> = rows.iter().map(|a| analysis_json(a, overflow)).collect();
        return super::emit(&format!("{}\n", serde_json::to_string_pretty(&array)?));
    }
    let shown_input = match input {
        BitsInput::Number(x) => format_exact(f64::from(x)),
        BitsInput::Pattern { format, bits } => {
            format!("{} read as {}", format.hex(bits), format.name)
        }
    };
    let mut lines = vec![format!(
        "input {shown_input} (overflow: {})\n",
        overflow_name(overflow)
    )];
    for a in &rows {
        let format = a.format;
        let (sign, exponent, mantissa) = format.bit_strings(a.bits);
        lines.push(format!(
            "{} (sign {}, exponent {}, mantissa {}; bias {})",
            format.name,
            format.sign_bits(),
            format.exponent_bits,
            format.mantissa_bits,
            format.bias
        ));
        let fields: Vec<&str> = [sign.as_str(), exponent.as_str(), mantissa.as_str()]
            .into_iter()
            .filter(|f| !f.is_empty())
            .collect();
        lines.push(format!(
            "  bits       {}   ({})",
            fields.join(" | "),
            format.hex(a.bits)
        ));
        lines.push(format!(
            "  stored     {}   class {}",
            format_exact(a.stored),
            a.class.name()
        ));
        lines.push(format!("  formula    {}", format.formula(a.bits)));
        lines.push(match (a.error, a.relative_error) {
            (Some(e), Some(r)) => format!("  error      {} (relative {r:.3e})", format_exact(e)),
            (Some(e), None) => format!("  error      {}", format_exact(e)),
            _ => "  error      not finite".to_string(),
        });
        let neighbour = |v: Option<f64>| v.map_or_else(|| "none".to_string(), format_exact);
        lines.push(format!(
            "  neighbours {} below, {} above; ulp {}\n",
            neighbour(a.previous),
            neighbour(a.next),
            neighbour(a.ulp)
        ));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    super::emit(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_width_picks_the_format() {
        assert_eq!(
            parse_input("0x3c00", FormatArg::All).ok(),
            Some(BitsInput::Pattern {
                format: FloatFormat::FP16,
                bits: 0x3C00
            })
        );
        assert_eq!(
            parse_input("0x3f80", FormatArg::Bf16).ok(),
            Some(BitsInput::Pattern {
                format: FloatFormat::BF16,
                bits: 0x3F80
            })
        );
        assert_eq!(
            parse_input("0x7e", FormatArg::All).ok(),
            Some(BitsInput::Pattern {
                format: FloatFormat::FP8_E4M3,
                bits: 0x7E
            })
        );
        assert!(parse_input("0x1ff", FormatArg::Fp8E4m3).is_err());
        assert!(parse_input("0x123456789", FormatArg::All).is_err());
        assert!(parse_input("abc", FormatArg::All).is_err());
        assert_eq!(
            parse_input("-inf", FormatArg::All).ok(),
            Some(BitsInput::Number(f32::NEG_INFINITY))
        );
    }

    #[test]
    fn pattern_row_keeps_the_pattern_and_others_convert() {
        let input = parse_input("0x3c00", FormatArg::All).ok();
        let rows = analyses(
            input.unwrap_or(BitsInput::Number(f32::NAN)),
            FormatArg::All,
            Overflow::Saturate,
        );
        let hexes: Vec<String> = rows.iter().map(|a| a.format.hex(a.bits)).collect();
        // 1.0 in FP32, FP16, BF16, E4M3 (exponent 7 = bias), E5M2 (exponent 15 = bias), then
        // FP6 E2M3 and E3M2, FP4 E2M1 (exponent = bias 1 or 3), E8M0 (127) and UE4M3.
        assert_eq!(
            hexes,
            [
                "0x3f800000",
                "0x3c00",
                "0x3f80",
                "0x38",
                "0x3c",
                "0x08",
                "0x0c",
                "0x2",
                "0x7f",
                "0x38"
            ]
        );
        assert!(rows.iter().all(|a| a.stored == 1.0 && a.error == Some(0.0)));
    }
}
