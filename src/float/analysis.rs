//! What one value looks like in one format: bit fields, stored value, error, neighbours, formula.

use serde::Serialize;

use super::format::{FloatClass, FloatFormat, Overflow, SpecialValues, pow2};

/// The three bit fields of one encoding, raw and decoded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fields {
    /// The sign bit (1 = negative).
    pub sign: u32,
    /// The raw exponent field.
    pub exponent: u32,
    /// The raw mantissa (fraction) field.
    pub mantissa: u32,
    /// The power of two the significand is scaled by (E - bias, or 1 - bias for subnormals);
    /// `None` for Inf and NaN.
    pub exponent_value: Option<i32>,
    /// The significand 1.M (normal) or 0.M (subnormal, zero); `None` for Inf and NaN.
    pub significand: Option<f64>,
}

/// One f32 value converted to one format: the encoding and everything the bit view shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// The format.
    pub format: FloatFormat,
    /// The input value (the f32 that was converted).
    pub input: f32,
    /// The encoding.
    pub bits: u32,
    /// The encoding's fields.
    pub fields: Fields,
    /// The exact stored value.
    pub stored: f64,
    /// stored - input; `None` when either is not finite.
    pub error: Option<f64>,
    /// |stored - input| / |input|; `None` when the input is zero or either is not finite.
    pub relative_error: Option<f64>,
    /// The class of the stored value.
    pub class: FloatClass,
    /// The next representable value below the stored one, if any.
    pub previous: Option<f64>,
    /// The next representable value above the stored one, if any.
    pub next: Option<f64>,
    /// The unit in the last place at the stored value.
    pub ulp: Option<f64>,
}

impl FloatFormat {
    /// The sign, exponent and mantissa fields of an encoding, raw and decoded.
    pub fn fields(&self, bits: u32) -> Fields {
        let bits = bits & self.bit_mask();
        let (sign, exponent, mantissa) = self.split(bits);
        let fraction = f64::from(mantissa) / pow2(self.mantissa_bits as i32);
        let (exponent_value, significand) = match self.classify(bits) {
            FloatClass::Nan | FloatClass::Infinite => (None, None),
            FloatClass::Zero | FloatClass::Subnormal => (Some(self.min_exponent()), Some(fraction)),
            // The exponent field is at most 255, so the cast to i32 is lossless.
            FloatClass::Normal => (Some(exponent as i32 - self.bias), Some(1.0 + fraction)),
        };
        Fields {
            sign,
            exponent,
            mantissa,
            exponent_value,
            significand,
        }
    }

    /// The encoding as sign, exponent and mantissa bit strings, e.g. ("0", "01111", "0000000000").
    /// A field the format does not have (E8M0's and UE4M3's sign, E8M0's mantissa) is "".
    pub fn bit_strings(&self, bits: u32) -> (String, String, String) {
        let (sign, exponent, mantissa) = self.split(bits & self.bit_mask());
        let field = |value: u32, width: u32| {
            if width == 0 {
                String::new()
            } else {
                format!("{value:0width$b}", width = width as usize)
            }
        };
        (
            field(sign, self.sign_bits()),
            field(exponent, self.exponent_bits),
            field(mantissa, self.mantissa_bits),
        )
    }

    /// The encoding in hex with as many digits as the format is wide, e.g. "0x3c00".
    pub fn hex(&self, bits: u32) -> String {
        let digits = self.total_bits().div_ceil(4) as usize;
        format!("{:#0width$x}", bits & self.bit_mask(), width = digits + 2)
    }

    /// The decoding written out, e.g. "(-1)^0 × 2^(15 - 15) × (1 + 0/1024) = 1"; unsigned
    /// formats drop the sign factor and E8M0 is "2^(E - 127) = value".
    pub fn formula(&self, bits: u32) -> String {
        let bits = bits & self.bit_mask();
        let (sign, exponent, mantissa) = self.split(bits);
        let denominator = 1u64 << self.mantissa_bits;
        let value = self.decode(bits);
        let class = self.classify(bits);
        if self.special == SpecialValues::ExponentOnly {
            return match class {
                FloatClass::Nan => "NaN (all ones)".to_string(),
                _ => format!(
                    "2^({exponent} - {bias}) = {}",
                    format_exact(value),
                    bias = self.bias
                ),
            };
        }
        let sign_factor = if self.signed {
            format!("(-1)^{sign} × ")
        } else {
            String::new()
        };
        match class {
            FloatClass::Nan if self.special == SpecialValues::FiniteOnlyAllOnesNan => {
                "NaN (exponent and mantissa all ones)".to_string()
            }
            FloatClass::Nan => "NaN (exponent all ones, mantissa not zero)".to_string(),
            FloatClass::Infinite => {
                format!(
                    "{}Inf (exponent all ones, mantissa zero)",
                    if sign == 1 { "-" } else { "+" }
                )
            }
            FloatClass::Zero | FloatClass::Subnormal => format!(
                "{sign_factor}2^(1 - {bias}) × (0 + {mantissa}/{denominator}) = {}",
                format_exact(value),
                bias = self.bias
            ),
            FloatClass::Normal => format!(
                "{sign_factor}2^({exponent} - {bias}) × (1 + {mantissa}/{denominator}) = {}",
                format_exact(value),
                bias = self.bias
            ),
        }
    }

    /// Converts `x` (RNE, `overflow` policy) and describes the result.
    pub fn analyze(&self, x: f32, overflow: Overflow) -> Analysis {
        let bits = self.encode(x, overflow);
        self.analyze_bits(bits, x)
    }

    /// Describes an encoding, measuring its error against `input` (pass the decoded value itself
    /// when the bits were typed or flipped by hand).
    pub fn analyze_bits(&self, bits: u32, input: f32) -> Analysis {
        let bits = bits & self.bit_mask();
        let stored = self.decode(bits);
        let reference = f64::from(input);
        let both_finite = stored.is_finite() && reference.is_finite();
        let error = both_finite.then_some(stored - reference);
        let relative_error = error
            .filter(|_| reference != 0.0)
            .map(|e| (e / reference).abs());
        Analysis {
            format: *self,
            input,
            bits,
            fields: self.fields(bits),
            stored,
            error,
            relative_error,
            class: self.classify(bits),
            previous: self.next_down(bits).map(|b| self.decode(b)),
            next: self.next_up(bits).map(|b| self.decode(b)),
            ulp: self.ulp(bits),
        }
    }
}

/// Formats a value that is exactly representable in f64 with enough digits to be exact for
/// these formats' typical values: the shortest repr that round-trips through f64.
pub fn format_exact(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 {
            "Inf".to_string()
        } else {
            "-Inf".to_string()
        }
    } else if value != 0.0 && (value.abs() >= 1e16 || value.abs() < 1e-5) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_one_in_fp16() {
        let f = FloatFormat::FP16;
        let fields = f.fields(0x3C00);
        assert_eq!(
            fields,
            Fields {
                sign: 0,
                exponent: 15,
                mantissa: 0,
                exponent_value: Some(0),
                significand: Some(1.0)
            }
        );
        assert_eq!(
            f.bit_strings(0x3C00),
            ("0".into(), "01111".into(), "0000000000".into())
        );
        assert_eq!(f.hex(0x3C00), "0x3c00");
        assert_eq!(f.formula(0x3C00), "(-1)^0 × 2^(15 - 15) × (1 + 0/1024) = 1");
        assert_eq!(FloatFormat::FP8_E4M3.hex(0x7E), "0x7e");
        assert_eq!(FloatFormat::FP32.hex(0x3F80_0000), "0x3f800000");
    }

    #[test]
    fn analysis_of_point_one() {
        // 0.1 in f16: 0x2E66 = 2^-4 * (1 + 614/1024) = 0.0999755859375.
        let a = FloatFormat::FP16.analyze(0.1, Overflow::Saturate);
        assert_eq!(a.bits, 0x2E66);
        assert_eq!(a.stored, 0.0999755859375);
        assert_eq!(a.class, FloatClass::Normal);
        assert_eq!(a.error, Some(0.0999755859375 - f64::from(0.1f32)));
        assert_eq!(a.ulp, Some(2f64.powi(-14)));
        assert_eq!(a.previous, Some(0.0999755859375 - 2f64.powi(-14)));
        assert_eq!(a.next, Some(0.0999755859375 + 2f64.powi(-14)));
    }

    #[test]
    fn subnormal_fields_and_formula() {
        // E4M3 code 0x01 = 2^-6 * 1/8 = 2^-9.
        let f = FloatFormat::FP8_E4M3;
        assert_eq!(f.fields(0x01).exponent_value, Some(-6));
        assert_eq!(f.fields(0x01).significand, Some(0.125));
        assert_eq!(
            f.formula(0x01),
            "(-1)^0 × 2^(1 - 7) × (0 + 1/8) = 0.001953125"
        );
        assert_eq!(f.classify(0x01), FloatClass::Subnormal);
        let inf = FloatFormat::FP16.analyze(1e8, Overflow::Saturate);
        assert_eq!(inf.class, FloatClass::Infinite);
        assert_eq!(inf.error, None);
    }
}
