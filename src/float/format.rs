//! `FloatFormat`: a binary floating-point format as a table row, with exact decode and RNE encode.

use serde::{Deserialize, Serialize};

/// How a format spends its all-ones exponent (and, for E8M0, its zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SpecialValues {
    /// IEEE 754: exponent all ones with mantissa 0 is Inf, otherwise NaN.
    Ieee,
    /// OCP FP8 E4M3FN (and UE4M3): no Inf; only the all-ones pattern S.1111.111 is NaN, the rest
    /// of the top exponent holds numbers.
    FiniteOnlyAllOnesNan,
    /// OCP MX FP4 E2M1, FP6 E2M3 and E3M2: every code is a number (no Inf, no NaN); the top
    /// exponent is ordinary. Conversion saturates: overflow and ±Inf become ±max.
    FiniteOnly,
    /// OCP MX E8M0 (the MX block scale): exponent bits only, value 2^(E - bias) for every code
    /// but all ones, which is NaN. No sign, no zero, no subnormals, no Inf.
    ExponentOnly,
}

/// What a conversion does with a finite value too large for the format (NUMERICS.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Overflow {
    /// Clamp to ±max finite (PyTorch 2.x, ONNX Cast default, TensorRT). For E4M3FN, ±Inf also
    /// becomes ±max; formats that have Inf keep an Inf input as Inf. IEEE FP16/BF16/FP32
    /// conversions never saturate: there this setting has no effect.
    #[default]
    Saturate,
    /// Overflow gives Inf where the format has it, NaN where it has none (ml_dtypes, older PyTorch).
    NonFinite,
}

/// The class of one encoded value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FloatClass {
    /// +0 or -0.
    Zero,
    /// Exponent field 0, mantissa non-zero: no hidden bit, fixed exponent 1 - bias.
    Subnormal,
    /// An ordinary number with the hidden leading 1.
    Normal,
    /// ±Infinity.
    Infinite,
    /// Not a number.
    Nan,
}

impl FloatClass {
    /// The lower-case name used in CLI and JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Zero => "zero",
            Self::Subnormal => "subnormal",
            Self::Normal => "normal",
            Self::Infinite => "inf",
            Self::Nan => "nan",
        }
    }
}

/// Which of the built-in formats a [`FloatFormat`] is; used for dispatch to `half` and for CLI names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FormatId {
    /// IEEE binary32.
    Fp32,
    /// IEEE binary16.
    Fp16,
    /// bfloat16.
    Bf16,
    /// OCP FP8 E4M3FN.
    Fp8E4m3,
    /// OCP FP8 E5M2.
    Fp8E5m2,
    /// OCP MX FP6 E2M3.
    Fp6E2m3,
    /// OCP MX FP6 E3M2.
    Fp6E3m2,
    /// OCP MX FP4 E2M1.
    Fp4E2m1,
    /// OCP MX E8M0 scale.
    E8m0,
    /// Unsigned E4M3 (the NVFP4 block scale).
    Ue4m3,
}

/// A binary floating-point format described as data: a sign bit (or none), `exponent_bits`,
/// `mantissa_bits`, an exponent `bias` and a rule for special values. Every format of
/// NUMERICS.md §1, and the OCP MX element and scale formats, is one const.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct FloatFormat {
    /// Which built-in format this is.
    pub id: FormatId,
    /// Display name, e.g. "FP16".
    pub name: &'static str,
    /// The CLI spelling, e.g. "fp8-e4m3".
    pub cli_name: &'static str,
    /// Whether the top bit is a sign bit. E8M0 and UE4M3 have none: every code is non-negative.
    pub signed: bool,
    /// Width of the exponent field.
    pub exponent_bits: u32,
    /// Width of the stored mantissa (fraction) field.
    pub mantissa_bits: u32,
    /// Exponent bias: a normal value is 2^(E - bias) * 1.M.
    pub bias: i32,
    /// How the all-ones exponent is used.
    pub special: SpecialValues,
}

impl FloatFormat {
    /// IEEE binary32: 1/8/23, bias 127.
    pub const FP32: Self = Self {
        id: FormatId::Fp32,
        name: "FP32",
        cli_name: "fp32",
        signed: true,
        exponent_bits: 8,
        mantissa_bits: 23,
        bias: 127,
        special: SpecialValues::Ieee,
    };
    /// IEEE binary16: 1/5/10, bias 15.
    pub const FP16: Self = Self {
        id: FormatId::Fp16,
        name: "FP16",
        cli_name: "fp16",
        signed: true,
        exponent_bits: 5,
        mantissa_bits: 10,
        bias: 15,
        special: SpecialValues::Ieee,
    };
    /// bfloat16: 1/8/7, bias 127 (the top half of an FP32).
    pub const BF16: Self = Self {
        id: FormatId::Bf16,
        name: "BF16",
        cli_name: "bf16",
        signed: true,
        exponent_bits: 8,
        mantissa_bits: 7,
        bias: 127,
        special: SpecialValues::Ieee,
    };
    /// FP8 E4M3FN (safetensors `F8_E4M3`): 1/4/3, bias 7, max 448, no Inf.
    pub const FP8_E4M3: Self = Self {
        id: FormatId::Fp8E4m3,
        name: "FP8 E4M3",
        cli_name: "fp8-e4m3",
        signed: true,
        exponent_bits: 4,
        mantissa_bits: 3,
        bias: 7,
        special: SpecialValues::FiniteOnlyAllOnesNan,
    };
    /// FP8 E5M2 (safetensors `F8_E5M2`): 1/5/2, bias 15, max 57344, IEEE-style Inf and NaN.
    pub const FP8_E5M2: Self = Self {
        id: FormatId::Fp8E5m2,
        name: "FP8 E5M2",
        cli_name: "fp8-e5m2",
        signed: true,
        exponent_bits: 5,
        mantissa_bits: 2,
        bias: 15,
        special: SpecialValues::Ieee,
    };

    /// OCP MX FP6 E2M3: 1/2/3, bias 1, max 7.5, no Inf or NaN.
    pub const FP6_E2M3: Self = Self {
        id: FormatId::Fp6E2m3,
        name: "FP6 E2M3",
        cli_name: "fp6-e2m3",
        signed: true,
        exponent_bits: 2,
        mantissa_bits: 3,
        bias: 1,
        special: SpecialValues::FiniteOnly,
    };
    /// OCP MX FP6 E3M2: 1/3/2, bias 3, max 28, no Inf or NaN.
    pub const FP6_E3M2: Self = Self {
        id: FormatId::Fp6E3m2,
        name: "FP6 E3M2",
        cli_name: "fp6-e3m2",
        signed: true,
        exponent_bits: 3,
        mantissa_bits: 2,
        bias: 3,
        special: SpecialValues::FiniteOnly,
    };
    /// OCP MX FP4 E2M1 (safetensors `F4`): 1/2/1, bias 1, values 0, 0.5, 1, 1.5, 2, 3, 4, 6.
    pub const FP4_E2M1: Self = Self {
        id: FormatId::Fp4E2m1,
        name: "FP4 E2M1",
        cli_name: "fp4-e2m1",
        signed: true,
        exponent_bits: 2,
        mantissa_bits: 1,
        bias: 1,
        special: SpecialValues::FiniteOnly,
    };
    /// OCP MX E8M0 (safetensors `F8_E8M0`), the MX block scale: 0/8/0, bias 127, value
    /// 2^(E - 127) from 2^-127 (0x00) to 2^127 (0xFE); 0xFF is NaN.
    pub const E8M0: Self = Self {
        id: FormatId::E8m0,
        name: "E8M0",
        cli_name: "e8m0",
        signed: false,
        exponent_bits: 8,
        mantissa_bits: 0,
        bias: 127,
        special: SpecialValues::ExponentOnly,
    };
    /// Unsigned E4M3 (NVFP4's block scale, ggml's UE4M3): 0/4/3, bias 7, the non-negative
    /// half of E4M3FN (max 448 = 0x7E, 0x7F NaN).
    pub const UE4M3: Self = Self {
        id: FormatId::Ue4m3,
        name: "UE4M3",
        cli_name: "ue4m3",
        signed: false,
        exponent_bits: 4,
        mantissa_bits: 3,
        bias: 7,
        special: SpecialValues::FiniteOnlyAllOnesNan,
    };

    /// Every built-in format: the formats the bit view shows, widest first (the MX element
    /// formats, then the two scale formats).
    pub const ALL: [Self; 10] = [
        Self::FP32,
        Self::FP16,
        Self::BF16,
        Self::FP8_E4M3,
        Self::FP8_E5M2,
        Self::FP6_E2M3,
        Self::FP6_E3M2,
        Self::FP4_E2M1,
        Self::E8M0,
        Self::UE4M3,
    ];

    /// Looks a format up by its CLI spelling ("fp32", "fp16", "bf16", "fp8-e4m3", "fp8-e5m2",
    /// "fp6-e2m3", "fp6-e3m2", "fp4-e2m1", "e8m0", "ue4m3").
    pub fn from_cli_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.cli_name == name)
    }

    /// Total width in bits (sign + exponent + mantissa).
    pub const fn total_bits(&self) -> u32 {
        self.sign_bits() + self.exponent_bits + self.mantissa_bits
    }

    /// Width of the sign field: 1, or 0 for the unsigned formats.
    pub const fn sign_bits(&self) -> u32 {
        if self.signed { 1 } else { 0 }
    }

    /// Mask of all valid bits of an encoding.
    pub const fn bit_mask(&self) -> u32 {
        if self.total_bits() == 32 {
            u32::MAX
        } else {
            (1u32 << self.total_bits()) - 1
        }
    }

    /// The sign bit's mask (0 for the unsigned formats).
    const fn sign_mask(&self) -> u32 {
        if self.signed {
            1u32 << (self.exponent_bits + self.mantissa_bits)
        } else {
            0
        }
    }

    const fn mantissa_mask(&self) -> u32 {
        (1u32 << self.mantissa_bits) - 1
    }

    const fn exponent_all_ones(&self) -> u32 {
        (1u32 << self.exponent_bits) - 1
    }

    /// The smallest exponent of a normal number, 1 - bias.
    pub const fn min_exponent(&self) -> i32 {
        1 - self.bias
    }

    /// Bits of the largest finite positive value.
    pub const fn max_finite_bits(&self) -> u32 {
        match self.special {
            // Exponent all ones minus one, mantissa all ones.
            SpecialValues::Ieee => {
                ((self.exponent_all_ones() - 1) << self.mantissa_bits) | self.mantissa_mask()
            }
            // Exponent all ones, mantissa all ones minus one (all ones is NaN).
            SpecialValues::FiniteOnlyAllOnesNan => {
                (self.exponent_all_ones() << self.mantissa_bits) | (self.mantissa_mask() - 1)
            }
            // Every magnitude bit set: the top exponent is ordinary.
            SpecialValues::FiniteOnly => {
                (self.exponent_all_ones() << self.mantissa_bits) | self.mantissa_mask()
            }
            // E8M0: 0xFE = 2^127 (0xFF is NaN).
            SpecialValues::ExponentOnly => self.exponent_all_ones() - 1,
        }
    }

    /// The bits of +Inf, if the format has Inf.
    pub const fn infinity_bits(&self) -> Option<u32> {
        match self.special {
            SpecialValues::Ieee => Some(self.exponent_all_ones() << self.mantissa_bits),
            SpecialValues::FiniteOnlyAllOnesNan
            | SpecialValues::FiniteOnly
            | SpecialValues::ExponentOnly => None,
        }
    }

    /// The canonical quiet NaN (positive sign): top mantissa bit set, all ones for E4M3FN and
    /// UE4M3, 0xFF for E8M0; `None` for the MX element formats, which have no NaN.
    pub const fn nan_bits(&self) -> Option<u32> {
        match self.special {
            SpecialValues::Ieee => Some(
                (self.exponent_all_ones() << self.mantissa_bits)
                    | (1u32 << (self.mantissa_bits - 1)),
            ),
            SpecialValues::FiniteOnlyAllOnesNan => {
                Some((self.exponent_all_ones() << self.mantissa_bits) | self.mantissa_mask())
            }
            SpecialValues::FiniteOnly => None,
            SpecialValues::ExponentOnly => Some(self.exponent_all_ones()),
        }
    }

    /// The largest finite value.
    pub fn max_finite(&self) -> f64 {
        self.decode(self.max_finite_bits())
    }

    /// The smallest positive normal value, 2^(1 - bias); for E8M0, whose exponent field 0 is an
    /// ordinary exponent, 2^-bias = 2^-127.
    pub fn min_normal(&self) -> f64 {
        match self.special {
            SpecialValues::ExponentOnly => pow2(-self.bias),
            _ => pow2(self.min_exponent()),
        }
    }

    /// The smallest positive subnormal value, 2^(1 - bias - mantissa_bits). E8M0 has no
    /// subnormals: there this is its smallest value, 2^-127.
    pub fn min_subnormal(&self) -> f64 {
        match self.special {
            SpecialValues::ExponentOnly => self.min_normal(),
            _ => pow2(self.min_exponent() - self.mantissa_bits as i32),
        }
    }

    /// Machine epsilon: the gap between 1 and the next value, 2^-mantissa_bits.
    pub fn epsilon(&self) -> f64 {
        pow2(-(self.mantissa_bits as i32))
    }

    /// Splits an encoding into (sign, exponent field, mantissa field).
    pub const fn split(&self, bits: u32) -> (u32, u32, u32) {
        let sign = (bits & self.sign_mask()) >> (self.exponent_bits + self.mantissa_bits);
        let exponent = (bits >> self.mantissa_bits) & self.exponent_all_ones();
        let mantissa = bits & self.mantissa_mask();
        (sign, exponent, mantissa)
    }

    /// The class of an encoding.
    pub fn classify(&self, bits: u32) -> FloatClass {
        let (_, exponent, mantissa) = self.split(bits & self.bit_mask());
        let top = exponent == self.exponent_all_ones();
        match self.special {
            SpecialValues::ExponentOnly if top => FloatClass::Nan,
            // Exponent field 0 is the ordinary value 2^-bias: E8M0 has no zero or subnormals.
            SpecialValues::ExponentOnly => FloatClass::Normal,
            SpecialValues::Ieee if top => {
                if mantissa == 0 {
                    FloatClass::Infinite
                } else {
                    FloatClass::Nan
                }
            }
            SpecialValues::FiniteOnlyAllOnesNan if top && mantissa == self.mantissa_mask() => {
                FloatClass::Nan
            }
            _ if exponent == 0 && mantissa == 0 => FloatClass::Zero,
            _ if exponent == 0 => FloatClass::Subnormal,
            _ => FloatClass::Normal,
        }
    }

    /// The exact value of an encoding (every format here is a subset of f64). Bits above the
    /// format's width are ignored.
    pub fn decode(&self, bits: u32) -> f64 {
        let bits = bits & self.bit_mask();
        let (sign, exponent, mantissa) = self.split(bits);
        let sign_factor = if sign == 1 { -1.0 } else { 1.0 };
        let magnitude = match self.classify(bits) {
            FloatClass::Nan => return f64::NAN,
            FloatClass::Infinite => f64::INFINITY,
            FloatClass::Zero => 0.0,
            // 0.M * 2^(1 - bias) = M * 2^(1 - bias - m); the mantissa field is below 2^23, exact in f64.
            FloatClass::Subnormal => {
                f64::from(mantissa) * pow2(self.min_exponent() - self.mantissa_bits as i32)
            }
            FloatClass::Normal => {
                let significand = f64::from((1u32 << self.mantissa_bits) | mantissa);
                // The exponent field is at most 255, so the cast to i32 is lossless.
                significand * pow2(exponent as i32 - self.bias - self.mantissa_bits as i32)
            }
        };
        sign_factor * magnitude
    }

    /// Encodes an f32 with round-to-nearest, ties to even (subnormals too); overflow is decided on
    /// the rounded value and handled per `overflow`. FP16 and BF16 go through the `half` crate,
    /// which matches numpy and PyTorch bit for bit; the 8-, 6- and 4-bit formats use
    /// [`encode_generic`], which the tests check against `half` on every FP16/BF16 case and
    /// against ml_dtypes on a dense table of f32 inputs. E8M0 and the unsigned formats follow
    /// ml_dtypes' rules (see [`encode_e8m0`] and [`encode_unsigned`]).
    ///
    /// [`encode_generic`]: FloatFormat::encode_generic
    /// [`encode_e8m0`]: FloatFormat::encode_e8m0
    /// [`encode_unsigned`]: FloatFormat::encode_unsigned
    pub fn encode(&self, x: f32, overflow: Overflow) -> u32 {
        match self.id {
            FormatId::Fp32 => x.to_bits(),
            FormatId::Fp16 => u32::from(half::f16::from_f32(x).to_bits()),
            FormatId::Bf16 => u32::from(half::bf16::from_f32(x).to_bits()),
            FormatId::E8m0 => self.encode_e8m0(x, overflow),
            FormatId::Ue4m3 => self.encode_unsigned(x, overflow),
            FormatId::Fp8E4m3
            | FormatId::Fp8E5m2
            | FormatId::Fp6E2m3
            | FormatId::Fp6E3m2
            | FormatId::Fp4E2m1 => self.encode_generic(x, overflow),
        }
    }

    /// E8M0 from f32 as ml_dtypes 0.6 converts it: to the nearest power of two, a midpoint
    /// 1.5 · 2^k going up to 2^(k+1) (ml_dtypes rounds the significand 1.f to zero fraction
    /// bits, and its implicit 1 makes every tie round up). Below 2^-127 everything becomes code
    /// 0 (2^-127); just above it, code 1. NaN is 0xFF. E8M0 has no zero, no sign and no Inf:
    /// with [`Overflow::NonFinite`] (ml_dtypes' `astype`) zero, negatives, +Inf and values
    /// rounding past 2^127 become NaN; with [`Overflow::Saturate`] they clamp: zero and
    /// negatives to 0x00 (2^-127), +Inf and overflow to 0xFE (2^127).
    pub fn encode_e8m0(&self, x: f32, overflow: Overflow) -> u32 {
        const NAN: u32 = 0xFF;
        const MAX: u32 = 0xFE;
        let saturate = overflow == Overflow::Saturate;
        if x.is_nan() {
            return NAN;
        }
        if x <= 0.0 || x.is_sign_negative() {
            return if saturate { 0 } else { NAN };
        }
        if x.is_infinite() {
            return if saturate { MAX } else { NAN };
        }
        let bits = x.to_bits();
        let exponent_field = bits >> 23;
        let code = if exponent_field == 0 {
            // f32 subnormal: 2^-127 is the bit pattern 0x0040_0000; anything above rounds to
            // 2^-126, anything below to 2^-127.
            u32::from(bits > 0x0040_0000)
        } else {
            // 2^(E - 127) · 1.f: the fraction's top bit decides (ties, f = 0.5, go up).
            exponent_field + ((bits >> 22) & 1)
        };
        if code > MAX {
            if saturate { MAX } else { NAN }
        } else {
            code
        }
    }

    /// An unsigned format (UE4M3) from f32: a non-negative value is encoded by
    /// [`encode_generic`] (the unsigned format is the non-negative half of its signed twin);
    /// ±0 is 0; NaN is NaN. A negative value has no encoding: NaN with
    /// [`Overflow::NonFinite`] (ml_dtypes' rule for unsigned targets), 0 with
    /// [`Overflow::Saturate`] (ml_dtypes' saturating rule: the lowest value).
    ///
    /// [`encode_generic`]: FloatFormat::encode_generic
    pub fn encode_unsigned(&self, x: f32, overflow: Overflow) -> u32 {
        let nan = self.nan_bits().unwrap_or(self.max_finite_bits());
        if x.is_nan() {
            return nan;
        }
        if x == 0.0 {
            return 0;
        }
        if x < 0.0 {
            return match overflow {
                Overflow::Saturate => 0,
                Overflow::NonFinite => nan,
            };
        }
        self.encode_generic(x, overflow)
    }

    /// The format-independent RNE encoder for formats narrower than f32 (FP16, BF16, FP8, FP6,
    /// FP4, UE4M3), on the f32's bits: in the target's normal range it rounds the fraction with
    /// the round-to-nearest-even bias and re-biases the exponent; below it one f32 addition of
    /// a power of two aligns the value to the target's subnormal quantum, which the FPU rounds
    /// to nearest even. Overflow is decided on the rounded value. The tests check it against an
    /// exact integer implementation, against `half` on every FP16/BF16 case and against
    /// ml_dtypes on a dense table. For the MX element formats, which have no NaN, a NaN input
    /// gives the pattern ml_dtypes returns for it (its stand-in quiet NaN is the -0 pattern,
    /// negated for a negative NaN: +NaN -> -0, -NaN -> +0), so the element tables agree code for
    /// code. FP32 itself is returned unchanged.
    pub fn encode_generic(&self, x: f32, overflow: Overflow) -> u32 {
        let bits = x.to_bits();
        if self.mantissa_bits >= 23 {
            return bits;
        }
        let sign = if bits >> 31 == 1 { self.sign_mask() } else { 0 };
        let magnitude_f32 = bits & 0x7FFF_FFFF;
        if magnitude_f32 > 0x7F80_0000 {
            return match self.nan_bits() {
                Some(nan) => sign | nan,
                None => sign ^ self.sign_mask(),
            };
        }
        if magnitude_f32 == 0x7F80_0000 {
            return sign | self.overflow_bits(overflow, true);
        }
        let mantissa_bits = self.mantissa_bits;
        let shift = 23 - mantissa_bits;
        // bias is 1..=127 for every format here: the re-biasing amount is 0..=126.
        let rebias = (127 - self.bias) as u32;
        let min_normal_f32 = (rebias + 1) << 23;
        let magnitude = if magnitude_f32 >= min_normal_f32 {
            let half_minus_one = (1u32 << (shift - 1)) - 1;
            let rounded = magnitude_f32 + half_minus_one + ((magnitude_f32 >> shift) & 1);
            (rounded >> shift) - (rebias << mantissa_bits)
        } else {
            // 2^(shift + 1 - bias): its ulp is the target's smallest subnormal, and |x| is far
            // below it, so the sum's rounding is the RNE rounding to a subnormal (possibly up to
            // the smallest normal, which the subtraction then encodes correctly).
            let magic_bits = (rebias + shift + 1) << 23;
            (f32::from_bits(magnitude_f32) + f32::from_bits(magic_bits)).to_bits() - magic_bits
        };
        if magnitude > self.max_finite_bits() {
            return sign | self.overflow_bits(overflow, false);
        }
        sign | magnitude
    }

    /// The exact integer RNE encoder the fast one is checked against.
    #[cfg(test)]
    pub(crate) fn encode_exact_reference(&self, x: f32, overflow: Overflow) -> u32 {
        let sign = if x.is_sign_negative() {
            self.sign_mask()
        } else {
            0
        };
        if x.is_nan() {
            return match self.nan_bits() {
                Some(nan) => sign | nan,
                None => sign ^ self.sign_mask(),
            };
        }
        if x.is_infinite() {
            return sign | self.overflow_bits(overflow, true);
        }
        let f32_bits = x.to_bits();
        let f32_exponent_field = (f32_bits >> 23) & 0xFF;
        let f32_fraction = f32_bits & 0x7F_FFFF;
        if f32_exponent_field == 0 && f32_fraction == 0 {
            return sign;
        }
        // |x| = significand * 2^scale with an integer significand below 2^24.
        let (significand, scale) = if f32_exponent_field == 0 {
            (u64::from(f32_fraction), -149i32)
        } else {
            // The field is at most 254 here, so the cast to i32 is lossless.
            (
                u64::from(f32_fraction | 0x80_0000),
                f32_exponent_field as i32 - 150,
            )
        };
        // floor(log2 |x|): the position of the leading one.
        let leading = 63 - significand.leading_zeros() as i32 + scale;
        let max_exponent = self.decode_exponent_of(self.max_finite_bits());
        if leading > max_exponent + 1 {
            return sign | self.overflow_bits(overflow, false);
        }
        // The quantum (value of one unit in the last place) at this magnitude.
        let quantum_exponent = leading.max(self.min_exponent()) - self.mantissa_bits as i32;
        let shift = quantum_exponent - scale;
        let units = if shift <= 0 {
            // At most 2^24 * 2^(mantissa_bits + 1): fits easily in u64.
            significand << (-shift)
        } else if shift >= 64 {
            0
        } else {
            let kept = significand >> shift;
            let remainder = significand & ((1u64 << shift) - 1);
            let halfway = 1u64 << (shift - 1);
            if remainder > halfway || (remainder == halfway && kept & 1 == 1) {
                kept + 1
            } else {
                kept
            }
        };
        // Compose the magnitude bits; a carry out of the mantissa lands in the exponent by itself.
        let magnitude = if leading < self.min_exponent() {
            units
        } else {
            // `leading + bias` is at least 1 here.
            let biased = u64::from((leading + self.bias) as u32);
            (biased << self.mantissa_bits) + units - (1u64 << self.mantissa_bits)
        };
        if magnitude > u64::from(self.max_finite_bits()) {
            return sign | self.overflow_bits(overflow, false);
        }
        // Checked above: magnitude <= max_finite_bits, a u32.
        sign | magnitude as u32
    }

    fn decode_exponent_of(&self, bits: u32) -> i32 {
        let (_, exponent, _) = self.split(bits);
        // The exponent field is at most 255, so the cast to i32 is lossless.
        exponent as i32 - self.bias
    }

    /// The magnitude bits an overflow (or an Inf input) becomes under `overflow`.
    fn overflow_bits(&self, overflow: Overflow, input_is_infinite: bool) -> u32 {
        match (self.infinity_bits(), self.nan_bits(), overflow) {
            (Some(infinity), _, _) if input_is_infinite => infinity,
            (Some(_), _, Overflow::Saturate) if self.id.is_fp8() => self.max_finite_bits(),
            (Some(infinity), _, _) => infinity,
            // No Inf and no NaN (the MX element formats): always ±max, as ml_dtypes does.
            (None, None, _) | (None, _, Overflow::Saturate) => self.max_finite_bits(),
            (None, Some(nan), Overflow::NonFinite) => nan,
        }
    }

    /// The next representable value toward +Inf, as bits; `None` from NaN, +Inf, or from the
    /// largest finite value of a format without Inf.
    pub fn next_up(&self, bits: u32) -> Option<u32> {
        let bits = bits & self.bit_mask();
        match self.classify(bits) {
            FloatClass::Nan => None,
            FloatClass::Infinite if bits & self.sign_mask() == 0 => None,
            // -Inf steps to -max.
            FloatClass::Infinite => Some(self.sign_mask() | self.max_finite_bits()),
            // Both zeros step to the smallest positive subnormal.
            FloatClass::Zero => Some(1),
            _ if bits & self.sign_mask() != 0 => Some(bits - 1),
            _ if bits == self.max_finite_bits() => self.infinity_bits(),
            _ => Some(bits + 1),
        }
    }

    /// The next representable value toward -Inf, as bits (the mirror of [`FloatFormat::next_up`]);
    /// `None` from NaN and from the smallest value of an unsigned format.
    pub fn next_down(&self, bits: u32) -> Option<u32> {
        let bits = bits & self.bit_mask();
        if !self.signed {
            return match self.classify(bits) {
                FloatClass::Nan => None,
                _ => bits.checked_sub(1),
            };
        }
        let flipped = bits ^ self.sign_mask();
        self.next_up(flipped).map(|up| up ^ self.sign_mask())
    }

    /// The unit in the last place at this encoding: the gap from |x| to the next larger magnitude
    /// (at the largest finite value, the gap the next binade would have). `None` for NaN and Inf.
    pub fn ulp(&self, bits: u32) -> Option<f64> {
        let bits = bits & self.bit_mask();
        match self.classify(bits) {
            FloatClass::Nan | FloatClass::Infinite => None,
            FloatClass::Zero | FloatClass::Subnormal => Some(self.min_subnormal()),
            FloatClass::Normal => {
                let exponent = self.decode_exponent_of(bits);
                Some(pow2(exponent - self.mantissa_bits as i32))
            }
        }
    }
}

impl FormatId {
    /// Whether this is one of the two FP8 element formats (where saturation applies to E5M2's
    /// overflow too).
    pub const fn is_fp8(self) -> bool {
        matches!(self, Self::Fp8E4m3 | Self::Fp8E5m2)
    }
}

/// 2^e exactly, for any exponent these formats need (f64 covers 2^-1074..2^1023).
pub(crate) fn pow2(exponent: i32) -> f64 {
    2f64.powi(exponent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_facts_match_numerics_table() {
        // NUMERICS.md §1, column by column.
        assert_eq!(FloatFormat::FP32.max_finite(), f64::from(f32::MAX));
        assert_eq!(FloatFormat::FP32.max_finite_bits(), 0x7F7F_FFFF);
        assert_eq!(FloatFormat::FP32.min_subnormal(), 2f64.powi(-149));
        assert_eq!(FloatFormat::FP16.max_finite(), 65504.0);
        assert_eq!(FloatFormat::FP16.max_finite_bits(), 0x7BFF);
        assert_eq!(FloatFormat::FP16.min_normal(), 6.103515625e-5);
        assert_eq!(FloatFormat::FP16.min_subnormal(), 2f64.powi(-24));
        assert_eq!(FloatFormat::FP16.epsilon(), 2f64.powi(-10));
        assert_eq!(FloatFormat::BF16.max_finite_bits(), 0x7F7F);
        assert_eq!(FloatFormat::BF16.max_finite(), 3.3895313892515355e38);
        assert_eq!(FloatFormat::BF16.min_subnormal(), 2f64.powi(-133));
        assert_eq!(FloatFormat::BF16.epsilon(), 2f64.powi(-7));
        assert_eq!(FloatFormat::FP8_E4M3.max_finite(), 448.0);
        assert_eq!(FloatFormat::FP8_E4M3.max_finite_bits(), 0x7E);
        assert_eq!(FloatFormat::FP8_E4M3.min_normal(), 2f64.powi(-6));
        assert_eq!(FloatFormat::FP8_E4M3.min_subnormal(), 2f64.powi(-9));
        assert_eq!(FloatFormat::FP8_E4M3.epsilon(), 0.125);
        assert_eq!(FloatFormat::FP8_E4M3.infinity_bits(), None);
        assert_eq!(FloatFormat::FP8_E5M2.max_finite(), 57344.0);
        assert_eq!(FloatFormat::FP8_E5M2.max_finite_bits(), 0x7B);
        assert_eq!(FloatFormat::FP8_E5M2.min_normal(), 2f64.powi(-14));
        assert_eq!(FloatFormat::FP8_E5M2.min_subnormal(), 2f64.powi(-16));
        assert_eq!(FloatFormat::FP8_E5M2.infinity_bits(), Some(0x7C));
    }

    #[test]
    fn known_encodings() {
        let sat = Overflow::Saturate;
        // f16 1.0: exponent 15 (biased 0), mantissa 0 -> 0 01111 0000000000 = 0x3C00.
        assert_eq!(FloatFormat::FP16.encode(1.0, sat), 0x3C00);
        // E4M3FN 448 = 1.75 * 2^8: exponent 8 + 7 = 15, mantissa 110 -> 0 1111 110 = 0x7E.
        assert_eq!(FloatFormat::FP8_E4M3.encode(448.0, sat), 0x7E);
        // 464 is the midpoint of 448 (mantissa 110, even) and 480 (would be 111 = NaN): ties to 448.
        assert_eq!(
            FloatFormat::FP8_E4M3.encode(464.0, Overflow::NonFinite),
            0x7E
        );
        assert_eq!(
            FloatFormat::FP8_E4M3.encode(464.1, Overflow::NonFinite),
            0x7F
        );
        assert_eq!(FloatFormat::FP8_E4M3.encode(464.1, sat), 0x7E);
        assert_eq!(FloatFormat::FP8_E4M3.encode(f32::INFINITY, sat), 0x7E);
        assert_eq!(FloatFormat::FP8_E4M3.encode(f32::NEG_INFINITY, sat), 0xFE);
        // E5M2: 61440 is the midpoint of 57344 (mantissa 11, odd) and 65536 (Inf): ties to Inf.
        assert_eq!(
            FloatFormat::FP8_E5M2.encode(61439.0, Overflow::NonFinite),
            0x7B
        );
        assert_eq!(
            FloatFormat::FP8_E5M2.encode(61440.0, Overflow::NonFinite),
            0x7C
        );
        assert_eq!(FloatFormat::FP8_E5M2.encode(61440.0, sat), 0x7B);
        assert_eq!(FloatFormat::FP8_E5M2.encode(f32::INFINITY, sat), 0x7C);
        // f16 overflows to Inf from 65520 = midpoint of 65504 (odd mantissa) and 65536.
        assert_eq!(FloatFormat::FP16.encode(65519.996, sat), 0x7BFF);
        assert_eq!(FloatFormat::FP16.encode(65520.0, sat), 0x7C00);
        // bf16: f32::MAX (0x7F7FFFFF) rounds up to Inf; 0x7F7F8000 is the tie that goes to Inf.
        assert_eq!(FloatFormat::BF16.encode(f32::MAX, sat), 0x7F80);
        assert_eq!(
            FloatFormat::BF16.encode(f32::from_bits(0x7F7F_8000), sat),
            0x7F80
        );
        assert_eq!(
            FloatFormat::BF16.encode(f32::from_bits(0x7F7F_7FFF), sat),
            0x7F7F
        );
        // E4M3 smallest subnormal 2^-9; half of it (2^-10) is a tie that rounds to even (zero).
        assert_eq!(FloatFormat::FP8_E4M3.encode(2f32.powi(-10), sat), 0x00);
        assert_eq!(
            FloatFormat::FP8_E4M3.encode(2f32.powi(-10) * 1.01, sat),
            0x01
        );
        // 1.5 * 2^-9 ties between subnormals 1 and 2: goes to 2 (even).
        assert_eq!(FloatFormat::FP8_E4M3.encode(1.5 * 2f32.powi(-9), sat), 0x02);
        assert_eq!(FloatFormat::FP8_E4M3.encode(-0.0, sat), 0x80);
        assert_eq!(FloatFormat::FP8_E4M3.encode(f32::NAN, sat), 0x7F);
    }

    #[test]
    fn seed_facts_overflow_and_underflow() {
        let sat = Overflow::Saturate;
        // 10000 * 10000 = 1e8 overflows FP16 ...
        assert_eq!(
            FloatFormat::FP16.classify(FloatFormat::FP16.encode(1e8, sat)),
            FloatClass::Infinite
        );
        // ... but not BF16. Computed in BF16, 10000 is stored as 9984 (1.21875 * 2^13: 10000 / 8192
        // = 1.2207 * 128 = 156.25 -> 156), the product 9984^2 = 99680256 is exact in f32, and its
        // BF16 rounding is 99614720 = 1.484375 * 2^26 (190.125 / 128 -> 190): the seed's number.
        let ten_thousand = FloatFormat::BF16.decode(FloatFormat::BF16.encode(10_000.0, sat));
        assert_eq!(ten_thousand, 9984.0);
        let product = (ten_thousand * ten_thousand) as f32;
        assert_eq!(product, 99_680_256.0);
        let bf16 = FloatFormat::BF16.encode(product, sat);
        assert_eq!(FloatFormat::BF16.decode(bf16), 99_614_720.0);
        // The value 1e8 itself rounds (RNE, as ml_dtypes and PyTorch) to 191/128 * 2^26 = 100139008:
        // 1e8 / 2^26 * 128 = 190.73 -> 191. 99614720 is its lower neighbour.
        let direct = FloatFormat::BF16.encode(1e8, sat);
        assert_eq!(FloatFormat::BF16.decode(direct), 100_139_008.0);
        assert_eq!(
            FloatFormat::BF16
                .next_down(direct)
                .map(|b| FloatFormat::BF16.decode(b)),
            Some(99_614_720.0)
        );
        // 1e-8 is below 2^-25 (half the smallest f16 subnormal, 2.98e-8): it becomes 0 in FP16.
        assert_eq!(FloatFormat::FP16.encode(1e-8, sat), 0);
        let bf16_tiny = FloatFormat::BF16.decode(FloatFormat::BF16.encode(1e-8, sat));
        assert!((bf16_tiny - 1e-8).abs() < 1e-10, "{bf16_tiny}");
    }

    #[test]
    fn generic_encoder_matches_half_on_every_f16_and_bf16_neighbourhood() {
        // Every f32 whose top 16 bits take any value, with low halves that hit exact ties,
        // just-below and just-above ties, and extremes: covers every rounding case of bf16 and,
        // through the shared exponent range, every f16 case.
        for high in 0u32..=0xFFFF {
            for low in [
                0u32, 1, 0x0FFF, 0x1000, 0x1001, 0x7FFF, 0x8000, 0x8001, 0xFFFF,
            ] {
                let x = f32::from_bits((high << 16) | low);
                let want_bf16 = u32::from(half::bf16::from_f32(x).to_bits());
                let got_bf16 = FloatFormat::BF16.encode_generic(x, Overflow::Saturate);
                let want_f16 = u32::from(half::f16::from_f32(x).to_bits());
                let got_f16 = FloatFormat::FP16.encode_generic(x, Overflow::Saturate);
                if x.is_nan() {
                    assert_eq!(FloatFormat::BF16.classify(got_bf16), FloatClass::Nan);
                    assert_eq!(FloatFormat::FP16.classify(got_f16), FloatClass::Nan);
                } else {
                    assert_eq!(got_bf16, want_bf16, "bf16 of {x:e} ({:#010x})", x.to_bits());
                    assert_eq!(got_f16, want_f16, "f16 of {x:e} ({:#010x})", x.to_bits());
                }
            }
        }
    }

    #[test]
    fn decode_matches_half_for_all_65536_patterns() {
        for bits in 0u16..=u16::MAX {
            let f16 = half::f16::from_bits(bits).to_f64();
            let bf16 = half::bf16::from_bits(bits).to_f64();
            let ours16 = FloatFormat::FP16.decode(u32::from(bits));
            let oursbf = FloatFormat::BF16.decode(u32::from(bits));
            assert!(
                f16 == ours16 || (f16.is_nan() && ours16.is_nan()),
                "f16 {bits:#06x}"
            );
            assert!(
                bf16 == oursbf || (bf16.is_nan() && oursbf.is_nan()),
                "bf16 {bits:#06x}"
            );
            if !ours16.is_nan() {
                assert_eq!(
                    ours16.is_sign_negative(),
                    bits & 0x8000 != 0,
                    "f16 sign {bits:#06x}"
                );
            }
        }
    }

    /// An independent FP8 decoder written straight from the definition in NUMERICS.md §1.
    fn reference_fp8(code: u8, exponent_bits: u32, bias: i32, finite_only: bool) -> f64 {
        let mantissa_bits = 7 - exponent_bits;
        let sign = if code & 0x80 != 0 { -1.0 } else { 1.0 };
        let e = i32::from((code >> mantissa_bits) & ((1 << exponent_bits) - 1));
        let m = f64::from(code & ((1 << mantissa_bits) - 1));
        let top = (1 << exponent_bits) - 1;
        let scale = f64::from(1u32 << mantissa_bits);
        if finite_only && e == top && m == scale - 1.0 {
            return f64::NAN;
        }
        if !finite_only && e == top {
            return if m == 0.0 {
                sign * f64::INFINITY
            } else {
                f64::NAN
            };
        }
        if e == 0 {
            sign * 2f64.powi(1 - bias) * (m / scale)
        } else {
            sign * 2f64.powi(e - bias) * (1.0 + m / scale)
        }
    }

    #[test]
    fn all_256_fp8_codes_decode_and_round_trip() {
        for (format, finite_only) in [
            (FloatFormat::FP8_E4M3, true),
            (FloatFormat::FP8_E5M2, false),
        ] {
            for code in 0u8..=255 {
                let want = reference_fp8(code, format.exponent_bits, format.bias, finite_only);
                let got = format.decode(u32::from(code));
                if want.is_nan() {
                    assert!(got.is_nan(), "{} {code:#04x}", format.name);
                    continue;
                }
                assert_eq!(got, want, "{} {code:#04x}", format.name);
                // Every finite value and Inf encodes back to its own code (both policies).
                let back = format.encode(want as f32, Overflow::NonFinite);
                assert_eq!(
                    back,
                    u32::from(code),
                    "{} {code:#04x} round trip",
                    format.name
                );
            }
        }
    }

    #[test]
    fn mx_element_and_scale_range_facts() {
        // OCP MX v1.0 §5.3: E2M1 max 6 = 2^2 · 1.5, min subnormal 0.5; E2M3 max 7.5 = 2^2 · 1.875,
        // min subnormal 0.125; E3M2 max 28 = 2^4 · 1.75, min subnormal 0.0625.
        let fp4 = FloatFormat::FP4_E2M1;
        assert_eq!((fp4.total_bits(), fp4.max_finite_bits()), (4, 0x7));
        assert_eq!(fp4.max_finite(), 6.0);
        assert_eq!((fp4.min_normal(), fp4.min_subnormal()), (1.0, 0.5));
        assert_eq!((fp4.infinity_bits(), fp4.nan_bits()), (None, None));
        let e2m3 = FloatFormat::FP6_E2M3;
        assert_eq!((e2m3.max_finite(), e2m3.max_finite_bits()), (7.5, 0x1F));
        assert_eq!(e2m3.min_subnormal(), 0.125);
        let e3m2 = FloatFormat::FP6_E3M2;
        assert_eq!((e3m2.max_finite(), e3m2.max_finite_bits()), (28.0, 0x1F));
        assert_eq!((e3m2.min_normal(), e3m2.min_subnormal()), (0.25, 0.0625));
        // E8M0: 2^(E - 127), 0x00 = 2^-127 (a value, not zero), 0xFE = 2^127, 0xFF NaN.
        let e8 = FloatFormat::E8M0;
        assert_eq!(e8.total_bits(), 8);
        assert_eq!(e8.decode(0x00), 2f64.powi(-127));
        assert_eq!(e8.classify(0x00), FloatClass::Normal);
        assert_eq!(e8.decode(0x7F), 1.0);
        assert_eq!(e8.max_finite(), 2f64.powi(127));
        assert!(e8.decode(0xFF).is_nan());
        assert_eq!(
            (e8.min_normal(), e8.min_subnormal()),
            (2f64.powi(-127), 2f64.powi(-127))
        );
        assert_eq!(e8.ulp(0x7F), Some(1.0));
        // UE4M3: the non-negative half of E4M3FN, 7 bits.
        let ue = FloatFormat::UE4M3;
        assert_eq!((ue.total_bits(), ue.bit_mask()), (7, 0x7F));
        assert_eq!((ue.max_finite(), ue.max_finite_bits()), (448.0, 0x7E));
        assert!(ue.decode(0x7F).is_nan());
        assert_eq!(ue.decode(0x01), 2f64.powi(-9));
        for f in [fp4, e2m3, e3m2, e8, ue] {
            assert_eq!(FloatFormat::from_cli_name(f.cli_name), Some(f));
        }
    }

    /// The hex digits of one fixture entry as u32.
    fn hex_u32(v: &serde_json::Value) -> u32 {
        u32::from_str_radix(v.as_str().unwrap_or("zz"), 16).expect("hex")
    }

    #[test]
    fn mx_formats_match_ml_dtypes_code_for_code() {
        // tests/fixtures/float_formats.json is written by scripts/float_formats_reference.py
        // from ml_dtypes 0.6.0: the f32 value of every code, and the non-saturating cast
        // (Overflow::NonFinite) of 262144 f32 inputs covering every tie and its neighbours.
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/float_formats.json"))
                .expect("fixture parses");
        let lows: Vec<u32> = fixture["lows"]
            .as_array()
            .expect("lows")
            .iter()
            .map(|v| v.as_u64().expect("low") as u32)
            .collect();
        for f in [
            FloatFormat::FP4_E2M1,
            FloatFormat::FP6_E2M3,
            FloatFormat::FP6_E3M2,
            FloatFormat::E8M0,
            FloatFormat::UE4M3,
        ] {
            let table = &fixture["formats"][f.cli_name];
            let decode = table["decode"].as_array().expect("decode table");
            assert_eq!(decode.len(), 1 << f.total_bits(), "{}", f.name);
            for (code, want) in decode.iter().enumerate() {
                let want = f32::from_bits(hex_u32(want));
                let got = f.decode(code as u32) as f32;
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "{} decode {code:#x}: {got} vs {want}",
                    f.name
                );
                // f32 holds every value exactly (E8M0's 2^-127 is an f32 subnormal).
                if !got.is_nan() {
                    assert_eq!(f64::from(got), f.decode(code as u32), "{}", f.name);
                }
            }
            let count = table["encode_inputs"].as_u64().expect("count") as usize;
            let runs = table["encode"].as_array().expect("runs");
            let mut checked = 0usize;
            for (r, run) in runs.iter().enumerate() {
                let start = run[0].as_u64().expect("start") as usize;
                let code = run[1].as_u64().expect("code") as u32;
                let end = runs
                    .get(r + 1)
                    .map_or(count, |next| next[0].as_u64().expect("start") as usize);
                for i in start..end {
                    let bits = ((i / lows.len()) as u32) << 16 | lows[i % lows.len()];
                    let x = f32::from_bits(bits);
                    let got = f.encode(x, Overflow::NonFinite);
                    assert_eq!(got, code, "{} encode {x:e} ({bits:#010x})", f.name);
                    checked += 1;
                }
            }
            assert_eq!(checked, count, "{}", f.name);
        }
    }

    #[test]
    fn fast_encoder_equals_the_exact_one() {
        // Every top-16-bit pattern with low halves at, around and between ties, both policies.
        let formats = [
            FloatFormat::FP16,
            FloatFormat::BF16,
            FloatFormat::FP8_E4M3,
            FloatFormat::FP8_E5M2,
            FloatFormat::FP6_E2M3,
            FloatFormat::FP6_E3M2,
            FloatFormat::FP4_E2M1,
            FloatFormat::UE4M3,
        ];
        for high in 0u32..=0xFFFF {
            for low in [0u32, 1, 0x7FFF, 0x8000, 0xFFFF] {
                let x = f32::from_bits((high << 16) | low);
                for f in &formats {
                    if !f.signed && x.is_sign_negative() {
                        continue;
                    }
                    for overflow in [Overflow::Saturate, Overflow::NonFinite] {
                        assert_eq!(
                            f.encode_generic(x, overflow),
                            f.encode_exact_reference(x, overflow),
                            "{} {x:e} ({:#010x})",
                            f.name,
                            x.to_bits()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn mx_formats_round_to_nearest_even_and_saturate() {
        let sat = Overflow::Saturate;
        let fp4 = FloatFormat::FP4_E2M1;
        // Ties to even: 0.25 (0 | 0.5) -> 0, 0.75 (0.5 | 1) -> 1, 1.25 -> 1, 1.75 -> 2, 2.5 -> 2,
        // 3.5 -> 4, 5 -> 4 (4 = 0 11 0 has the even mantissa).
        let codes: Vec<u32> = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0]
            .iter()
            .map(|&x| fp4.encode(x, sat))
            .collect();
        assert_eq!(codes, [0x0, 0x2, 0x2, 0x4, 0x4, 0x6, 0x6]);
        // No Inf or NaN: overflow and Inf saturate under both policies; -0 keeps its sign.
        for overflow in [Overflow::Saturate, Overflow::NonFinite] {
            assert_eq!(fp4.encode(100.0, overflow), 0x7);
            assert_eq!(fp4.encode(f32::NEG_INFINITY, overflow), 0xF);
        }
        assert_eq!(fp4.encode(-0.1, sat), 0x8);
        // E3M2: 30 is the tie between 28 (mantissa 11, odd) and 32 (would overflow): saturates.
        assert_eq!(FloatFormat::FP6_E3M2.encode(30.0, sat), 0x1F);
        // E8M0: nearest power of two, ties up; 0 and negatives have no code.
        let e8 = FloatFormat::E8M0;
        assert_eq!(e8.encode(1.0, sat), 127);
        assert_eq!(e8.encode(1.4999999, sat), 127);
        assert_eq!(e8.encode(1.5, sat), 128);
        assert_eq!(e8.encode(3.0, sat), 129);
        assert_eq!(e8.encode(0.0, Overflow::NonFinite), 0xFF);
        assert_eq!(e8.encode(0.0, sat), 0x00);
        assert_eq!(e8.encode(-2.0, Overflow::NonFinite), 0xFF);
        assert_eq!(e8.encode(-2.0, sat), 0x00);
        assert_eq!(e8.encode(f32::MAX, Overflow::NonFinite), 0xFF);
        assert_eq!(e8.encode(f32::MAX, sat), 0xFE);
        assert_eq!(e8.encode(f32::INFINITY, sat), 0xFE);
        assert_eq!(e8.encode(f32::NAN, sat), 0xFF);
        // 2^-127 exactly is code 0; the next f32 up rounds to 2^-126.
        assert_eq!(e8.encode(f32::from_bits(0x0040_0000), sat), 0);
        assert_eq!(e8.encode(f32::from_bits(0x0040_0001), sat), 1);
        // UE4M3: as E4M3FN for non-negative values; negatives NaN or 0.
        let ue = FloatFormat::UE4M3;
        assert_eq!(ue.encode(448.0, sat), 0x7E);
        assert_eq!(ue.encode(1000.0, sat), 0x7E);
        assert_eq!(ue.encode(1000.0, Overflow::NonFinite), 0x7F);
        assert_eq!(ue.encode(-1.0, Overflow::NonFinite), 0x7F);
        assert_eq!(ue.encode(-1.0, sat), 0x00);
        assert_eq!(ue.encode(-0.0, sat), 0x00);
        assert_eq!(ue.encode(1.0, sat), 0x38);
    }

    #[test]
    fn neighbours_of_unsigned_and_finite_only_formats() {
        let e8 = FloatFormat::E8M0;
        assert_eq!(e8.next_down(0x00), None);
        assert_eq!(e8.next_up(0x00), Some(0x01));
        assert_eq!(e8.next_up(0xFE), None);
        assert_eq!(e8.next_down(0xFE), Some(0xFD));
        assert_eq!(e8.next_up(0xFF), None);
        let ue = FloatFormat::UE4M3;
        assert_eq!(ue.next_down(0x00), None);
        assert_eq!(ue.next_down(0x01), Some(0x00));
        assert_eq!(ue.next_up(0x7E), None);
        let fp4 = FloatFormat::FP4_E2M1;
        assert_eq!(fp4.next_up(0x7), None);
        assert_eq!(fp4.next_down(0xF), None);
        assert_eq!(fp4.next_down(0x0), Some(0x9));
        assert_eq!(fp4.ulp(0x7), Some(2.0));
    }

    #[test]
    fn neighbours_and_ulp() {
        let f = FloatFormat::FP16;
        assert_eq!(f.next_up(0x3C00), Some(0x3C01));
        assert_eq!(f.next_down(0x3C00), Some(0x3BFF));
        assert_eq!(f.ulp(0x3C00), Some(2f64.powi(-10)));
        assert_eq!(f.next_up(0x0000), Some(0x0001));
        assert_eq!(f.next_up(0x8000), Some(0x0001));
        assert_eq!(f.next_down(0x0000), Some(0x8001));
        assert_eq!(f.next_up(0x7BFF), Some(0x7C00));
        assert_eq!(f.next_up(0x7C00), None);
        assert_eq!(f.next_up(0xFC00), Some(0xFBFF));
        assert_eq!(f.next_up(0x8001), Some(0x8000));
        let e4 = FloatFormat::FP8_E4M3;
        assert_eq!(e4.next_up(0x7E), None);
        assert_eq!(e4.next_down(0xFE), None);
        assert_eq!(e4.ulp(0x7E), Some(32.0));
    }
}
