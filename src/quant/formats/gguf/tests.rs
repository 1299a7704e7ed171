//! Tests of the GGUF family: ggml's own bytes (fixtures from
//! scripts/gguf_reference_fixtures.py), round trips through the decoder, error bounds that
//! follow from each format, the block view, llama.cpp's fallback table and malformed input.

use std::path::PathBuf;

use super::*;

/// Every GGUF format, in the order of the fixture script.
const GGUF: [QuantFormat; 13] = [
    QuantFormat::Q8_0,
    QuantFormat::Q4_0,
    QuantFormat::Q4_1,
    QuantFormat::Q5_0,
    QuantFormat::Q5_1,
    QuantFormat::Q2_K,
    QuantFormat::Q3_K,
    QuantFormat::Q4_K,
    QuantFormat::Q5_K,
    QuantFormat::Q6_K,
    QuantFormat::Iq4_Nl,
    QuantFormat::Gguf_Mxfp4,
    QuantFormat::Gguf_Nvfp4,
];

const ROWS: usize = 4;
const COLS: usize = 512;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf")
}

fn read_f32(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(fixture_dir().join(name)).expect("fixture input");
    bytes
        .as_chunks::<4>()
        .0
        .iter()
        .map(|b| f32::from_le_bytes(*b))
        .collect()
}

fn input(case: &str) -> Vec<f32> {
    let x = read_f32(&format!("{case}.f32"));
    assert_eq!(x.len(), ROWS * COLS);
    x
}

fn run(format: QuantFormat, x: &[f32], imatrix: Option<&[f32]>) -> FormatResult {
    quantize_format(
        format,
        x,
        &[x.len() / COLS, COLS],
        imatrix,
        FormatOutputs {
            encoded: true,
            dequantized: true,
        },
        &Cancel::never(),
    )
    .expect("quantize")
}

fn blocks(result: &FormatResult) -> &[u8] {
    &result
        .encoded
        .as_ref()
        .and_then(|e| e.part("blocks"))
        .expect("blocks part")
        .bytes
}

/// The first differing block, for a readable failure.
fn first_difference(format: QuantFormat, ours: &[u8], theirs: &[u8]) -> String {
    let size = block_bytes(format);
    let at = ours
        .chunks(size)
        .zip(theirs.chunks(size))
        .position(|(a, b)| a != b);
    match at {
        Some(b) => format!(
            "block {b}: ours {:02x?} ggml {:02x?}",
            &ours[b * size..(b + 1) * size],
            &theirs[b * size..(b + 1) * size]
        ),
        None => format!("lengths {} vs {}", ours.len(), theirs.len()),
    }
}

#[test]
fn known_bytes_from_ggml() {
    // ggml 0.20.2's ggml_quantize_chunk output for every type, case and importance matrix.
    let ones = vec![1.0f32; COLS];
    let random = read_f32("imatrix_random.f32");
    assert_eq!(random.len(), COLS);
    let mut compared = 0;
    for case in ["normal", "edge", "grid"] {
        let x = input(case);
        for format in GGUF {
            let mut modes: Vec<(&str, Option<&[f32]>)> = vec![("none", None)];
            if format.uses_imatrix() {
                modes.push(("ones", Some(&ones)));
                modes.push(("random", Some(&random)));
            }
            for (mode, w) in modes {
                let path = fixture_dir().join(format!("{case}/{}.{mode}.bin", format.name()));
                let expected = std::fs::read(&path).expect("fixture blocks");
                let ours = quantize_rows(format, &x, COLS, w).expect("quantize_rows");
                assert!(
                    ours == expected,
                    "{case} {format} {mode}: {}",
                    first_difference(format, &ours, &expected)
                );
                // The parallel, chunked path stores the same bytes.
                let result = run(format, &x, w);
                assert!(
                    blocks(&result) == expected.as_slice(),
                    "{case} {format} {mode}"
                );
                compared += 1;
            }
        }
    }
    // 3 cases × (13 types + 10 imatrix types × 2 matrices).
    assert_eq!(compared, 99);
}

#[test]
fn formats_ignoring_the_imatrix_ignore_it() {
    // ggml's Q8_0, MXFP4 and NVFP4 take no weights: the same bytes with or without.
    let x = input("normal");
    let w = read_f32("imatrix_random.f32");
    for format in [
        QuantFormat::Q8_0,
        QuantFormat::Gguf_Mxfp4,
        QuantFormat::Gguf_Nvfp4,
    ] {
        assert!(!format.uses_imatrix());
        assert_eq!(
            blocks(&run(format, &x, Some(&w))),
            blocks(&run(format, &x, None))
        );
    }
}

#[test]
fn an_all_ones_imatrix_changes_the_bytes() {
    // NUMERICS §8: the imatrix path is a different search, so even all-ones weights change
    // the bytes of the types that use one.
    let x = input("normal");
    let ones = vec![1.0f32; COLS];
    for format in GGUF.into_iter().filter(|f| f.uses_imatrix()) {
        let plain = quantize_rows(format, &x, COLS, None).expect("plain");
        let weighted = quantize_rows(format, &x, COLS, Some(&ones)).expect("weighted");
        assert_ne!(plain, weighted, "{format}");
    }
}

/// The level an element's code stands for (see detail.rs), so that
/// x̂ = element_scale · level + element_offset.
fn level_of(format: QuantFormat, code: i32) -> f32 {
    let code_u = usize::try_from(code & 0x0F).expect("nibble");
    // Codes are small integers: exact in f32.
    match format {
        QuantFormat::Q4_0 => (code - 8) as f32,
        QuantFormat::Q5_0 => (code - 16) as f32,
        QuantFormat::Q3_K => (code - 4) as f32,
        QuantFormat::Q6_K => (code - 32) as f32,
        QuantFormat::Iq4_Nl => f32::from(gguf_blocks::KVALUES_IQ4NL[code_u]),
        QuantFormat::Gguf_Mxfp4 | QuantFormat::Gguf_Nvfp4 => {
            f32::from(gguf_blocks::KVALUES_MXFP4[code_u]) * 0.5
        }
        _ => code as f32,
    }
}

#[test]
fn round_trip_block_view_and_nearest_level() {
    for case in ["normal", "grid"] {
        let x = input(case);
        let w = read_f32("imatrix_random.f32");
        for format in GGUF {
            for imatrix in [None, Some(w.as_slice())] {
                let result = run(format, &x, imatrix);
                let encoded = result.encoded.as_ref().expect("encoded");
                let dequantized = result.dequantized.as_ref().expect("dequantized");
                // decode(encode(x)) is what quantize_format reported.
                let decoded = decode(encoded, &Cancel::never()).expect("decode");
                assert_eq!(&decoded, dequantized, "{case} {format}");
                // The stored part's shape: rows × blocks per row × bytes per block.
                let part = encoded.part("blocks").expect("blocks");
                let per = block_elements(format);
                assert_eq!(part.shape, vec![ROWS, COLS / per, block_bytes(format)]);
                assert_eq!(part.bytes.len(), part.shape.iter().product::<usize>());
                let n_blocks = ROWS * COLS / per;
                for b in 0..n_blocks {
                    let d = block_detail(encoded, b).expect("block detail");
                    assert_eq!((d.block, d.first), (b, b * per));
                    let span = b * per..(b + 1) * per;
                    assert_eq!(d.values, dequantized[span.clone()], "{format} block {b}");
                    assert!(
                        d.levels.windows(2).all(|p| p[0] < p[1]),
                        "{format}: ascending"
                    );
                    let block_amax = x[span.clone()].iter().fold(0.0f32, |a, v| a.max(v.abs()));
                    for (i, (&xi, &xh)) in x[span].iter().zip(&d.values).enumerate() {
                        // Every value is one of the block's levels, rebuilt from the fields.
                        assert!(d.levels.contains(&xh), "{format} block {b} element {i}");
                        let rebuilt =
                            d.element_scale[i] * level_of(format, d.codes[i]) + d.element_offset[i];
                        assert_eq!(rebuilt, xh, "{format} block {b} element {i}");
                        // The chosen level is the nearest of its sub-block's grid, up to the
                        // f16 rounding of the scale and min the codes were picked with (the
                        // legacy types and IQ4_NL pick with the f32 values): slack 2^-9 of the
                        // block's largest magnitude. The
                        // legacy imatrix searches keep the codes of their best trial scale and
                        // store the least-squares scale, so their codes need not be nearest.
                        if imatrix.is_some()
                            && block_elements(format) == 32
                            && format != QuantFormat::Iq4_Nl
                            && format != QuantFormat::Q8_0
                            && format != QuantFormat::Gguf_Mxfp4
                        {
                            continue;
                        }
                        let sub = sub_block_levels(format, &d, i);
                        let nearest = sub
                            .iter()
                            .map(|l| (l - xi).abs())
                            .fold(f32::INFINITY, f32::min);
                        let slack = block_amax.max(xh.abs()) * 2f32.powi(-9) + 1e-30;
                        assert!(
                            (xh - xi).abs() <= nearest + slack,
                            "{case} {format} block {b} element {i}: x {xi} x̂ {xh}, nearest level \
                             {nearest} away"
                        );
                    }
                }
            }
        }
    }
}

/// Every value element `i` of a block could take (its sub-block's grid).
fn sub_block_levels(format: QuantFormat, d: &BlockDetail, i: usize) -> Vec<f32> {
    let top = match format {
        QuantFormat::Q8_0 => {
            return (-128..=127)
                .map(|q| d.element_scale[i] * q as f32)
                .collect();
        }
        QuantFormat::Iq4_Nl | QuantFormat::Gguf_Mxfp4 | QuantFormat::Gguf_Nvfp4 => 15,
        QuantFormat::Q4_0 | QuantFormat::Q4_1 | QuantFormat::Q4_K => 15,
        QuantFormat::Q2_K => 3,
        QuantFormat::Q3_K => 7,
        QuantFormat::Q6_K => 63,
        _ => 31,
    };
    (0..=top)
        .map(|q| d.element_scale[i] * level_of(format, q) + d.element_offset[i])
        .collect()
}

#[test]
fn error_bounds_of_the_simple_block_types() {
    // Bounds that follow from each format's definition, per block of the N(0,1) input
    // (amax = the block's largest magnitude, f16 scales add at most 2^-10 relative).
    let x = input("normal");
    for format in [
        QuantFormat::Q8_0,
        QuantFormat::Q4_0,
        QuantFormat::Q4_1,
        QuantFormat::Q5_0,
        QuantFormat::Q5_1,
        QuantFormat::Gguf_Mxfp4,
        QuantFormat::Gguf_Nvfp4,
    ] {
        let result = run(format, &x, None);
        let xh = result.dequantized.as_ref().expect("dequantized");
        let per = if format == QuantFormat::Gguf_Nvfp4 {
            16
        } else {
            32
        };
        for (b, (xb, hb)) in x.chunks(per).zip(xh.chunks(per)).enumerate() {
            let amax = xb.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            let (min, max) = xb
                .iter()
                .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            let bound = match format {
                // Half a step of amax/127.
                QuantFormat::Q8_0 => amax / 254.0,
                // The clipped side loses at most one step of amax/8 (amax/16 for Q5_0).
                QuantFormat::Q4_0 => amax / 8.0,
                QuantFormat::Q5_0 => amax / 16.0,
                // Half a step of (max − min)/15 (/31).
                QuantFormat::Q4_1 => (max - min) / 30.0,
                QuantFormat::Q5_1 => (max - min) / 62.0,
                // Scale 2^(E − 2) with 2^E ≤ amax: the largest half-gap (between 4 and 6) and
                // the clipping above 6 · 2^(E − 2) are both at most 2^(E − 1) ≤ amax / 2.
                QuantFormat::Gguf_Mxfp4 if amax > 0.0 => 2f32.powi(amax.log2().floor() as i32 - 1),
                QuantFormat::Gguf_Mxfp4 => 0.0,
                // Scale s ≥ (amax/6)(1 − 2^-4) (3 mantissa bits, half up): half-gap s, clip
                // at most amax / 16.
                _ => amax / 6.0 * (1.0 + 1.0 / 16.0),
            };
            let slack = amax * 2f32.powi(-9);
            for (i, (&v, &h)) in xb.iter().zip(hb).enumerate() {
                assert!(
                    (v - h).abs() <= bound + slack,
                    "{format} block {b} element {i}: |{v} − {h}| > {bound}"
                );
            }
        }
    }
}

#[test]
fn k_quants_and_iq4_nl_reach_their_usual_accuracy() {
    // SQNR floors on the N(0,1) input with outliers, about 2.5 dB below what ggml's bytes
    // reach there (11.4, 15.9, 20.6, 26.7, 30.9 dB for Q2_K…Q6_K, 18.6 for IQ4_NL); a broken
    // search or packing falls far below them. Stronger types must also beat weaker ones.
    let x = input("normal");
    let floors = [
        (QuantFormat::Q2_K, 9.0),
        (QuantFormat::Q3_K, 13.5),
        (QuantFormat::Q4_K, 18.0),
        (QuantFormat::Q5_K, 24.0),
        (QuantFormat::Q6_K, 28.0),
        (QuantFormat::Iq4_Nl, 16.0),
    ];
    let mut last = 0.0;
    for (format, floor) in floors {
        let sqnr = run(format, &x, None).metrics.sqnr_db;
        assert!(sqnr > floor, "{format}: SQNR {sqnr} dB");
        if format != QuantFormat::Iq4_Nl {
            assert!(sqnr > last, "{format}: SQNR {sqnr} dB not above {last}");
            last = sqnr;
        }
    }
}

#[test]
fn block_fields_bit_by_bit() {
    let x = input("normal");
    // Q4_K: d and dmin are the f16 fields at bytes 0..4, eight 6-bit scales and mins.
    let r = run(QuantFormat::Q4_K, &x, None);
    let enc = r.encoded.as_ref().expect("encoded");
    let bytes = &enc.part("blocks").expect("blocks").bytes;
    let d = block_detail(enc, 1).expect("detail");
    let b = &bytes[144..288];
    assert_eq!(d.fields[0].name, "d");
    assert_eq!(d.fields[0].raw, u64::from(u16::from_le_bytes([b[0], b[1]])));
    assert_eq!(d.fields[1].name, "dmin");
    assert_eq!(d.fields.len(), 2 + 16);
    for j in 0..8 {
        let (sc, m) = kquants::get_scale_min_k4(j, &b[4..16]);
        assert_eq!(d.fields[2 + 2 * j].raw, u64::from(sc));
        assert_eq!(d.fields[3 + 2 * j].raw, u64::from(m));
        assert_eq!(d.fields[2 + 2 * j].bits, 6);
    }
    // Q4_K's levels: the union over 8 sub-blocks of 16 values each.
    assert!(d.levels.len() <= 8 * 16 && d.levels.len() > 16);
    // Q3_K: 16 signed 6-bit scales; the value is the raw field minus 32.
    let r = run(QuantFormat::Q3_K, &x, None);
    let d = block_detail(r.encoded.as_ref().expect("encoded"), 0).expect("detail");
    assert_eq!(d.fields.len(), 17);
    for f in &d.fields[1..] {
        assert_eq!(f.value, f.raw as f64 - 32.0);
    }
    // MXFP4: one E8M0 byte; the value is 2^(e − 127).
    let r = run(QuantFormat::Gguf_Mxfp4, &x, None);
    let enc = r.encoded.as_ref().expect("encoded");
    let d = block_detail(enc, 0).expect("detail");
    let e = enc.part("blocks").expect("blocks").bytes[0];
    assert_eq!(d.fields[0].raw, u64::from(e));
    assert_eq!(d.fields[0].value, 2f64.powi(i32::from(e) - 127));
    assert_eq!(d.levels.len(), 15, "16 E2M1 codes, ±0 merged");
    // NVFP4: four UE4M3 bytes.
    let r = run(QuantFormat::Gguf_Nvfp4, &x, None);
    let d = block_detail(r.encoded.as_ref().expect("encoded"), 0).expect("detail");
    assert_eq!(d.fields.len(), 4);
    assert!(
        d.fields
            .iter()
            .all(|f| f.encoding.starts_with("UE4M3") && f.bits == 8)
    );
    // Out of range: no block.
    assert!(block_detail(r.encoded.as_ref().expect("encoded"), ROWS * COLS / 64).is_none());
}

#[test]
fn sizes_and_bits_per_weight() {
    let expected = [
        (QuantFormat::Q8_0, 32, 34, 8.5),
        (QuantFormat::Q4_0, 32, 18, 4.5),
        (QuantFormat::Q4_1, 32, 20, 5.0),
        (QuantFormat::Q5_0, 32, 22, 5.5),
        (QuantFormat::Q5_1, 32, 24, 6.0),
        (QuantFormat::Q2_K, 256, 84, 2.625),
        (QuantFormat::Q3_K, 256, 110, 3.4375),
        (QuantFormat::Q4_K, 256, 144, 4.5),
        (QuantFormat::Q5_K, 256, 176, 5.5),
        (QuantFormat::Q6_K, 256, 210, 6.5625),
        (QuantFormat::Iq4_Nl, 32, 18, 4.5),
        (QuantFormat::Gguf_Mxfp4, 32, 17, 4.25),
        (QuantFormat::Gguf_Nvfp4, 64, 36, 4.5),
    ];
    for (format, elements, bytes, bpw) in expected {
        assert_eq!(block_elements(format), elements, "{format}");
        assert_eq!(block_bytes(format), bytes, "{format}");
        assert_eq!(bits_per_weight(format), bpw, "{format}");
        assert_eq!(format.bits_per_weight(1024, 4), bpw, "{format}");
        assert_eq!(format.row_block(), Some(elements), "{format}");
    }
    assert!(bits_per_weight(QuantFormat::Nf4).is_nan());
    assert!(dtype_of(QuantFormat::Fp8_E4m3).is_none());
}

#[test]
fn llama_cpp_fallback_table() {
    use Fallback::{F16, Format};
    // Rows of 384 (a multiple of 32, not of 256): llama-quantize's substitutes.
    assert_eq!(
        fallback(QuantFormat::Q2_K, 384),
        Some(Format(QuantFormat::Q4_0))
    );
    assert_eq!(
        fallback(QuantFormat::Q3_K, 384),
        Some(Format(QuantFormat::Q4_0))
    );
    assert_eq!(
        fallback(QuantFormat::Q4_K, 384),
        Some(Format(QuantFormat::Q5_0))
    );
    assert_eq!(
        fallback(QuantFormat::Q5_K, 384),
        Some(Format(QuantFormat::Q5_1))
    );
    assert_eq!(
        fallback(QuantFormat::Q6_K, 384),
        Some(Format(QuantFormat::Q8_0))
    );
    // Rows of 100 fit no 32-element block either: F16.
    assert_eq!(fallback(QuantFormat::Q4_K, 100), Some(F16));
    assert_eq!(fallback(QuantFormat::Q6_K, 100), Some(F16));
    // Rows that fit need no fallback; llama.cpp defines none for the 32/64-element types.
    assert_eq!(fallback(QuantFormat::Q4_K, 512), None);
    assert_eq!(fallback(QuantFormat::Q4_0, 100), None);
    assert_eq!(fallback(QuantFormat::Iq4_Nl, 100), None);
    assert_eq!(fallback(QuantFormat::Gguf_Nvfp4, 96), None);
    assert_eq!(fallback(QuantFormat::Mxfp4, 100), None);
    // The refusal names the reason and the substitute.
    let err = QuantFormat::Q4_K
        .check(&[1536, 384])
        .expect_err("not applicable");
    assert_eq!(err.fallback, Some(Format(QuantFormat::Q5_0)));
    assert!(
        err.reason.contains("384") && err.reason.contains("q5_0"),
        "{}",
        err.reason
    );
    assert!(QuantFormat::Q4_K.check(&[384, 1536]).is_ok());
    let refused = quantize_format(
        QuantFormat::Q6_K,
        &[0.0; 96],
        &[96],
        None,
        FormatOutputs::default(),
        &Cancel::never(),
    );
    assert!(matches!(refused, Err(FormatError::NotApplicable(_))));
}

#[test]
fn malformed_stored_blocks_are_errors() {
    let x = input("normal");
    let r = run(QuantFormat::Q4_K, &x, None);
    let good = r.encoded.expect("encoded");
    // Truncated bytes.
    let mut short = good.clone();
    short.parts[0].bytes.truncate(100);
    assert!(decode(&short, &Cancel::never()).is_err());
    // A missing part, an extra part, a wrong block size in the shape.
    let mut none = good.clone();
    none.parts.clear();
    assert!(decode(&none, &Cancel::never()).is_err());
    let mut two = good.clone();
    two.parts.push(two.parts[0].clone());
    assert!(decode(&two, &Cancel::never()).is_err());
    let mut wrong = good.clone();
    wrong.parts[0].shape = vec![ROWS, 2, 72];
    assert!(decode(&wrong, &Cancel::never()).is_err());
    // A block view past the stored bytes.
    assert!(block_detail(&short, 3).is_none());
}

#[test]
fn non_finite_and_extreme_inputs_do_not_panic() {
    // NaN, ±Inf, the largest finite values and subnormals through every type, with and
    // without weights (the C has undefined conversions here; we only promise no panic and a
    // decodable result of the right size).
    let specials = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        -f32::MAX,
        f32::MIN_POSITIVE,
        1e-45,
        0.0,
        -0.0,
        1.0,
    ];
    let x: Vec<f32> = (0..COLS)
        .map(|i| specials[i % specials.len()] * if i % 3 == 0 { -1.0 } else { 1.0 })
        .collect();
    let w: Vec<f32> = (0..COLS)
        .map(|i| if i % 7 == 0 { f32::NAN } else { 1.0 })
        .collect();
    for format in GGUF {
        for imatrix in [None, Some(w.as_slice())] {
            let r = run(format, &x, imatrix);
            assert_eq!(r.dequantized.map(|v| v.len()), Some(COLS), "{format}");
        }
    }
}
