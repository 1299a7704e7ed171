//! Lookup tables from 8-, 6- and 4-bit float codes to f32 (FP8 E4M3FN, FP8 E5M2, E8M0, FP6 E2M3
//! and E3M2, FP4 E2M1), and the bit order of packed 6-bit elements.
//!
//! The tables are computed once, at first use, from the format formula in NUMERICS.md §1:
//! normal = (-1)^S * 2^(E - bias) * (1 + M / 2^m), subnormal = (-1)^S * 2^(1 - bias) * M / 2^m.
//! Every finite value of these formats is exact in f32.

use std::sync::LazyLock;

/// The value of a finite code of a small float format with `exp_bits` exponent bits,
/// `man_bits` mantissa bits and the given bias (no special cases).
fn finite_value(code: u32, exp_bits: u32, man_bits: u32, bias: i32) -> f32 {
    let sign = if (code >> (exp_bits + man_bits)) & 1 == 1 {
        -1.0
    } else {
        1.0
    };
    // Field widths are at most 5 bits, so these fit in i32 without loss.
    let exponent = ((code >> man_bits) & ((1 << exp_bits) - 1)) as i32;
    let mantissa = f64::from(code & ((1 << man_bits) - 1));
    let scale = f64::from(1u32 << man_bits);
    let magnitude = if exponent == 0 {
        2f64.powi(1 - bias) * mantissa / scale
    } else {
        2f64.powi(exponent - bias) * (1.0 + mantissa / scale)
    };
    // Exact: these formats have at most 3 mantissa bits and exponents well inside f32's range.
    (sign * magnitude) as f32
}

/// FP8 E4M3FN (safetensors `F8_E4M3`): bias 7, no infinities, only S.1111.111 is NaN.
pub(crate) static E4M3FN: LazyLock<[f32; 256]> = LazyLock::new(|| {
    std::array::from_fn(|code| {
        // `code` < 256 by construction of the array.
        let code = code as u32;
        if code & 0x7F == 0x7F {
            f32::NAN
        } else {
            finite_value(code, 4, 3, 7)
        }
    })
});

/// FP8 E5M2 (safetensors `F8_E5M2`): bias 15, exponent 31 is Inf (M = 0) or NaN.
pub(crate) static E5M2: LazyLock<[f32; 256]> = LazyLock::new(|| {
    std::array::from_fn(|code| {
        let code = code as u32;
        let negative = code & 0x80 != 0;
        match (code >> 2) & 0x1F {
            31 if code & 3 == 0 && negative => f32::NEG_INFINITY,
            31 if code & 3 == 0 => f32::INFINITY,
            31 => f32::NAN,
            _ => finite_value(code, 5, 2, 15),
        }
    })
});

/// FP4 E2M1 (safetensors `F4`, OCP MX): bias 1, no Inf or NaN; values 0, 0.5, 1, 1.5, 2, 3, 4, 6.
pub(crate) static E2M1: LazyLock<[f32; 16]> =
    LazyLock::new(|| std::array::from_fn(|code| finite_value(code as u32, 2, 1, 1)));

/// FP6 E2M3 (safetensors `F6_E2M3`, OCP MX): bias 1, no Inf or NaN; max 7.5.
pub(crate) static E2M3: LazyLock<[f32; 64]> =
    LazyLock::new(|| std::array::from_fn(|code| finite_value(code as u32, 2, 3, 1)));

/// FP6 E3M2 (safetensors `F6_E3M2`, OCP MX): bias 3, no Inf or NaN; max 28.
pub(crate) static E3M2: LazyLock<[f32; 64]> =
    LazyLock::new(|| std::array::from_fn(|code| finite_value(code as u32, 3, 2, 3)));

/// The four 6-bit codes packed in three bytes. The safetensors format fixes no bit order for
/// its F6 dtypes and PyTorch has no 6-bit dtype; we read them as one little-endian bit stream,
/// element i in bits 6i..6i+6 counted from the least significant bit of byte 0 — the order F4
/// uses (PyTorch's `float4_e2m1fn_x2`: first element in the low nibble) extended to 6 bits,
/// and the order AMD's rocRoller (`getFp6`) reads packed FP6 in.
pub(crate) fn unpack_fp6([b0, b1, b2]: [u8; 3]) -> [u8; 4] {
    [
        b0 & 0x3F,
        (b0 >> 6) | ((b1 & 0x0F) << 2),
        (b1 >> 4) | ((b2 & 0x03) << 4),
        b2 >> 2,
    ]
}

/// Packs four 6-bit codes into three bytes, the inverse of [`unpack_fp6`] (bits above the low
/// six of each code are ignored). Only tests write F6 today.
#[cfg(test)]
pub(crate) fn pack_fp6(codes: [u8; 4]) -> [u8; 3] {
    let [e0, e1, e2, e3] = codes.map(|c| c & 0x3F);
    [e0 | (e1 << 6), (e1 >> 2) | (e2 << 4), (e2 >> 4) | (e3 << 2)]
}

/// OCP MX E8M0 scale: 2^(e - 127); 0xFF is NaN. Code 0 is 2^-127, an f32 subnormal.
pub(crate) fn e8m0_to_f32(code: u8) -> f32 {
    match code {
        0xFF => f32::NAN,
        0 => f32::from_bits(0x0040_0000),
        e => f32::from_bits(u32::from(e) << 23),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// E4M3FN by assembling f32 bits directly (independent of `finite_value`).
    fn e4m3fn_by_bits(code: u8) -> f32 {
        let sign = u32::from(code >> 7) << 31;
        let e = u32::from((code >> 3) & 0xF);
        let m = u32::from(code & 7);
        if e == 15 && m == 7 {
            return f32::NAN;
        }
        if e == 0 {
            // Subnormal: m * 2^-9; m * 2^-9 is exact, apply the sign bit.
            let v = m as f32 / 512.0;
            return f32::from_bits(v.to_bits() | sign);
        }
        // Re-bias from 7 to 127 and move the 3 mantissa bits to the top of f32's 23.
        f32::from_bits(sign | ((e + 120) << 23) | (m << 20))
    }

    fn same(a: f32, b: f32) -> bool {
        (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
    }

    #[test]
    fn e4m3fn_all_codes_match_bit_assembly() {
        for code in 0..=255u8 {
            let got = E4M3FN[usize::from(code)];
            assert!(same(got, e4m3fn_by_bits(code)), "code {code:#04x}: {got}");
        }
    }

    #[test]
    fn e4m3fn_known_values() {
        assert_eq!(E4M3FN[0x7E], 448.0); // S=0 E=1111 M=110: 2^8 * 1.75
        assert_eq!(E4M3FN[0xFE], -448.0);
        assert_eq!(E4M3FN[0x38], 1.0); // E=0111 = bias
        assert_eq!(E4M3FN[0x08], 2f32.powi(-6)); // min normal
        assert_eq!(E4M3FN[0x01], 2f32.powi(-9)); // min subnormal
        assert_eq!(E4M3FN[0x78], 256.0); // E=15 is an ordinary exponent in E4M3FN
        assert_eq!(E4M3FN[0x80].to_bits(), (-0.0f32).to_bits());
        assert!(E4M3FN[0x7F].is_nan() && E4M3FN[0xFF].is_nan());
        let nans = E4M3FN.iter().filter(|v| v.is_nan()).count();
        assert_eq!(nans, 2);
        assert!(E4M3FN.iter().all(|v| !v.is_infinite()));
    }

    #[test]
    fn e5m2_all_codes_match_f16_top_byte() {
        // E5M2 is exactly the top byte of an IEEE binary16.
        for code in 0..=255u8 {
            let want = half::f16::from_bits(u16::from(code) << 8).to_f32();
            let got = E5M2[usize::from(code)];
            assert!(same(got, want), "code {code:#04x}: {got} vs {want}");
        }
        assert_eq!(E5M2[0x7B], 57344.0);
        assert_eq!(E5M2[0x7C], f32::INFINITY);
        assert_eq!(E5M2[0xFC], f32::NEG_INFINITY);
        assert_eq!(E5M2[0x01], 2f32.powi(-16));
    }

    #[test]
    fn e2m1_values() {
        let want: [f32; 16] = [
            0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0,
        ];
        for (code, w) in want.iter().enumerate() {
            assert_eq!(E2M1[code].to_bits(), w.to_bits(), "code {code}");
        }
    }

    #[test]
    fn fp6_tables_match_the_float_module() {
        // Two independent derivations: fp8.rs's formula and crate::float's FloatFormat (which
        // its own tests check code for code against ml_dtypes).
        for code in 0..64u32 {
            let e2m3 = crate::float::FloatFormat::FP6_E2M3.decode(code) as f32;
            let e3m2 = crate::float::FloatFormat::FP6_E3M2.decode(code) as f32;
            assert_eq!(
                E2M3[code as usize].to_bits(),
                e2m3.to_bits(),
                "E2M3 {code:#x}"
            );
            assert_eq!(
                E3M2[code as usize].to_bits(),
                e3m2.to_bits(),
                "E3M2 {code:#x}"
            );
        }
        assert_eq!(E2M3[0x1F], 7.5);
        assert_eq!(E3M2[0x1F], 28.0);
        assert_eq!(E3M2[0x3F], -28.0);
        assert_eq!(E2M3[0x01], 0.125);
    }

    #[test]
    fn fp6_packing_is_a_little_endian_bit_stream() {
        // Codes 0x01, 0x02, 0x03, 0x3F: bits ...111111 000011 000010 000001 from the LSB:
        // byte 0 = 10 000001 = 0x81, byte 1 = 0011 0000 = 0x30, byte 2 = 111111 00 = 0xFC.
        assert_eq!(pack_fp6([0x01, 0x02, 0x03, 0x3F]), [0x81, 0x30, 0xFC]);
        assert_eq!(unpack_fp6([0x81, 0x30, 0xFC]), [0x01, 0x02, 0x03, 0x3F]);
        for seed in 0u32..4096 {
            let bytes = [seed as u8, (seed >> 4) as u8 ^ 0x5A, (seed * 37) as u8];
            assert_eq!(pack_fp6(unpack_fp6(bytes)), bytes);
        }
    }

    #[test]
    fn e8m0_values() {
        assert_eq!(e8m0_to_f32(127), 1.0);
        assert_eq!(e8m0_to_f32(128), 2.0);
        assert_eq!(e8m0_to_f32(254), 2f32.powi(127));
        assert_eq!(e8m0_to_f32(1), 2f32.powi(-126));
        assert_eq!(f64::from(e8m0_to_f32(0)), 2f64.powi(-127));
        assert!(e8m0_to_f32(255).is_nan());
    }
}
