//! Reading a value the user typed: a decimal number, or a hex bit pattern whose width picks the
//! format (2 digits FP8 E4M3, 4 FP16, 8 FP32, unless a format is named). The CLI's `bits` and
//! the app's bit view both read input through [`parse_input`], so `0x3c00` is FP16 in both.

use super::format::FloatFormat;

/// What the user typed: a number, or a bit pattern in one format.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BitsInput {
    /// A decimal number, converted to f32 with correct rounding first.
    Number(f32),
    /// A hex bit pattern read in the given format.
    Pattern {
        /// The format whose width matched (or the one named).
        format: FloatFormat,
        /// The pattern.
        bits: u32,
    },
}

impl BitsInput {
    /// The value the input stands for (a pattern decoded in its format; every format here is
    /// a subset of f32, so the conversion is exact).
    pub fn value(self) -> f32 {
        match self {
            Self::Number(x) => x,
            // Exact: the decoded value of a format narrower than f32 is an f32.
            Self::Pattern { format, bits } => format.decode(bits) as f32,
        }
    }
}

/// Why a typed value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Neither a decimal number nor a hex pattern.
    #[error("'{0}' is neither a number nor a hex bit pattern such as 0x3c00")]
    NotANumber(String),
    /// "0x" followed by something that is not hex.
    #[error("'{0}' is not a hex bit pattern")]
    BadHex(String),
    /// A pattern whose digit count names no format.
    #[error("'{text}' has {digits} hex digits; use 2 (FP8), 4 (FP16/BF16) or 8 (FP32)")]
    Width {
        /// The input.
        text: String,
        /// Its hex digit count.
        digits: usize,
    },
    /// A pattern wider than the named format.
    #[error("'{text}' does not fit in the {bits} bits of {format}")]
    TooWide {
        /// The input.
        text: String,
        /// The format's width.
        bits: u32,
        /// The format's name.
        format: &'static str,
    },
}

/// Parses `text`; `format` names the format of a hex pattern (else its width decides).
pub fn parse_input(text: &str, format: Option<FloatFormat>) -> Result<BitsInput, InputError> {
    let trimmed = text.trim();
    let hex = trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"));
    let Some(digits) = hex else {
        let value: f32 = trimmed
            .parse()
            .map_err(|_| InputError::NotANumber(text.to_string()))?;
        return Ok(BitsInput::Number(value));
    };
    if !digits.chars().all(|c| c.is_ascii_hexdigit()) || digits.is_empty() {
        return Err(InputError::BadHex(text.to_string()));
    }
    let pattern_format = match (format, digits.len()) {
        (Some(f), _) => f,
        (None, 1..=2) => FloatFormat::FP8_E4M3,
        (None, 3..=4) => FloatFormat::FP16,
        (None, 5..=8) => FloatFormat::FP32,
        (None, n) => {
            return Err(InputError::Width {
                text: text.to_string(),
                digits: n,
            });
        }
    };
    let too_wide = || InputError::TooWide {
        text: text.to_string(),
        bits: pattern_format.total_bits(),
        format: pattern_format.name,
    };
    let bits = u32::from_str_radix(digits, 16).map_err(|_| too_wide())?;
    if bits & !pattern_format.bit_mask() != 0 {
        return Err(InputError::TooWide {
            text: text.to_string(),
            bits: pattern_format.total_bits(),
            format: pattern_format.name,
        });
    }
    Ok(BitsInput::Pattern {
        format: pattern_format,
        bits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_width_picks_the_format() {
        assert_eq!(
            parse_input("0x3c00", None),
            Ok(BitsInput::Pattern {
                format: FloatFormat::FP16,
                bits: 0x3C00
            })
        );
        // f16 0x3C00 = 2^(15 - 15) = 1.0.
        assert_eq!(parse_input("0x3c00", None).map(BitsInput::value), Ok(1.0));
        assert_eq!(
            parse_input("0x3f80", Some(FloatFormat::BF16)),
            Ok(BitsInput::Pattern {
                format: FloatFormat::BF16,
                bits: 0x3F80
            })
        );
        // E4M3FN 0x7E = 2^(15 - 7) * 1.75 = 448.
        assert_eq!(parse_input("0x7e", None).map(BitsInput::value), Ok(448.0));
        assert_eq!(
            parse_input("0x3f800000", None).map(BitsInput::value),
            Ok(1.0)
        );
        assert!(matches!(
            parse_input("0x1ff", Some(FloatFormat::FP8_E4M3)),
            Err(InputError::TooWide { .. })
        ));
        assert!(matches!(
            parse_input("0x123456789", None),
            Err(InputError::Width { digits: 9, .. })
        ));
        assert!(matches!(
            parse_input("abc", None),
            Err(InputError::NotANumber(_))
        ));
        assert!(matches!(
            parse_input("0xzz", None),
            Err(InputError::BadHex(_))
        ));
        assert_eq!(
            parse_input("-inf", None),
            Ok(BitsInput::Number(f32::NEG_INFINITY))
        );
    }
}
