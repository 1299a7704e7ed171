//! End-to-end tests of `quantscope::tensor::Model` on files the tests write themselves:
//! safetensors (single, sharded, folder, corrupted, over 2 GiB), GGUF, .npy and .npz.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use quantscope::cancel::Cancel;
use quantscope::tensor::{DType, LoadError, Model};

/// safetensors bytes: entries in order, data back to back.
fn safetensors_bytes(tensors: &[(&str, &str, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let mut header = String::from("{");
    let mut offset = 0;
    for (i, (name, dtype, shape, bytes)) in tensors.iter().enumerate() {
        if i > 0 {
            header.push(',');
        }
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        header.push_str(&format!(
            "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":[{}],\"data_offsets\":[{offset},{}]}}",
            dims.join(","),
            offset + bytes.len()
        ));
        offset += bytes.len();
    }
    header.push('}');
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    for (_, _, _, bytes) in tensors {
        out.extend(bytes);
    }
    out
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).expect("write fixture");
    path
}

fn values(model: &Model, name: &str) -> Vec<f32> {
    let index = model.find(name).expect("tensor present");
    model.values_f32(index, &Cancel::never()).expect("decode")
}

#[test]
fn safetensors_every_simple_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "m.safetensors",
        &safetensors_bytes(&[
            ("f32", "F32", vec![2, 2], f32_bytes(&[1.0, -2.5, 0.0, 1e30])),
            // f16: 0x3C00 = 1.0, 0x7BFF = 65504 (max), 0x0001 = 2^-24 (min subnormal).
            (
                "f16",
                "F16",
                vec![3],
                vec![0x00, 0x3C, 0xFF, 0x7B, 0x01, 0x00],
            ),
            // bf16: 0x3F80 = 1.0, 0xC040 = -3.0.
            ("bf16", "BF16", vec![2], vec![0x80, 0x3F, 0x40, 0xC0]),
            // E4M3FN: 0x7E = 448, 0x38 = 1.0, 0x7F = NaN, 0x01 = 2^-9.
            ("e4m3", "F8_E4M3", vec![4], vec![0x7E, 0x38, 0x7F, 0x01]),
            // E5M2: 0x3C = 1.0, 0x7C = +Inf, 0x7B = 57344.
            ("e5m2", "F8_E5M2", vec![3], vec![0x3C, 0x7C, 0x7B]),
            (
                "i64",
                "I64",
                vec![2],
                [-7i64, 1 << 40]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
            ("u8", "U8", vec![2], vec![0, 255]),
            ("bool", "BOOL", vec![3], vec![0, 1, 2]),
            ("f64", "F64", vec![1], 0.25f64.to_le_bytes().to_vec()),
            // F4 (E2M1), two per byte, low nibble first: 0x21 -> 0.5, 1.0; 0xF7 -> 6, -6.
            ("f4", "F4", vec![4], vec![0x21, 0xF7]),
            ("e8m0", "F8_E8M0", vec![2], vec![127, 130]),
            // F6, four elements in three bytes, a little-endian bit stream: codes 0x01, 0x02,
            // 0x03, 0x3F pack to 0x81 0x30 0xFC. E2M3: 0.125, 0.25, 0.375, -7.5.
            ("e2m3", "F6_E2M3", vec![2, 2], vec![0x81, 0x30, 0xFC]),
            // E3M2: 0.0625, 0.125, 0.1875, -28.
            ("e3m2", "F6_E3M2", vec![4], vec![0x81, 0x30, 0xFC]),
        ]),
    );
    let model = Model::open(&path).unwrap();
    assert_eq!(model.name(), "m");
    assert_eq!(model.files(), std::slice::from_ref(&path));
    assert_eq!(model.tensors()[0].name, "f32");
    assert_eq!(model.tensors()[1].dtype, DType::F16);
    assert_eq!(values(&model, "f32"), vec![1.0, -2.5, 0.0, 1e30]);
    assert_eq!(values(&model, "f16"), vec![1.0, 65504.0, 2f32.powi(-24)]);
    assert_eq!(values(&model, "bf16"), vec![1.0, -3.0]);
    let e4m3 = values(&model, "e4m3");
    assert_eq!((e4m3[0], e4m3[1], e4m3[3]), (448.0, 1.0, 2f32.powi(-9)));
    assert!(e4m3[2].is_nan());
    assert_eq!(values(&model, "e5m2"), vec![1.0, f32::INFINITY, 57344.0]);
    assert_eq!(values(&model, "i64"), vec![-7.0, 2f32.powi(40)]);
    assert_eq!(values(&model, "u8"), vec![0.0, 255.0]);
    assert_eq!(values(&model, "bool"), vec![0.0, 1.0, 1.0]);
    assert_eq!(values(&model, "f64"), vec![0.25]);
    assert_eq!(values(&model, "f4"), vec![0.5, 1.0, 6.0, -6.0]);
    assert_eq!(values(&model, "e8m0"), vec![1.0, 8.0]);
    assert_eq!(values(&model, "e2m3"), vec![0.125, 0.25, 0.375, -7.5]);
    assert_eq!(values(&model, "e3m2"), vec![0.0625, 0.125, 0.1875, -28.0]);
    let e3m2 = model.find("e3m2").unwrap();
    assert_eq!(model.value_f32_at(e3m2, 3).unwrap(), -28.0);
    let f4 = model.find("f4").unwrap();
    assert_eq!(model.value_f32_at(f4, 3).unwrap(), -6.0);
    assert_eq!(
        model.raw_bytes(model.find("bf16").unwrap()).unwrap(),
        &[0x80, 0x3F, 0x40, 0xC0]
    );
}

#[test]
fn safetensors_is_sniffed_without_extension_and_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = safetensors_bytes(&[("w", "F32", vec![1], f32_bytes(&[3.0]))]);
    let path = write(dir.path(), "weights.bin", &bytes);
    let model = Model::open(&path).unwrap();
    assert_eq!(values(&model, "w"), vec![3.0]);
    drop(model);
    assert_eq!(fs::read(&path).unwrap(), bytes);
    let junk = write(dir.path(), "junk.bin", b"hello world, not a model");
    assert!(matches!(
        Model::open(&junk),
        Err(LoadError::UnknownFormat { .. })
    ));
    assert!(matches!(
        Model::open(&dir.path().join("missing.safetensors")),
        Err(LoadError::Io { .. })
    ));
}

#[test]
fn corrupted_safetensors_give_specific_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = safetensors_bytes(&[
        ("x", "F32", vec![2], f32_bytes(&[1.0, 2.0])),
        ("y", "F32", vec![1], f32_bytes(&[3.0])),
    ]);
    let open = |name: &str, bytes: &[u8]| Model::open(&write(dir.path(), name, bytes)).unwrap_err();

    let e = open("truncated.safetensors", &good[..good.len() - 2]);
    assert!(matches!(e, LoadError::OutOfBounds { .. }), "{e}");
    let e = open("short.safetensors", &good[..5]);
    assert!(matches!(e, LoadError::Truncated { .. }), "{e}");
    let e = open("empty.safetensors", &[]);
    assert!(matches!(e, LoadError::Truncated { .. }), "{e}");

    let mut past_end = good.clone();
    past_end[..8].copy_from_slice(&(good.len() as u64).to_le_bytes());
    let e = open("past.safetensors", &past_end);
    assert!(matches!(e, LoadError::HeaderPastEnd { .. }), "{e}");

    let mut too_large = good.clone();
    too_large[..8].copy_from_slice(&100_000_001u64.to_le_bytes());
    let e = open("large.safetensors", &too_large);
    assert!(
        matches!(
            e,
            LoadError::HeaderTooLarge {
                len: 100_000_001,
                ..
            }
        ),
        "{e}"
    );

    let bad_json = good
        .iter()
        .map(|&b| if b == b':' { b';' } else { b })
        .collect::<Vec<_>>();
    let e = open("json.safetensors", &bad_json);
    assert!(matches!(e, LoadError::BadJson { .. }), "{e}");

    let header = r#"{"x":{"dtype":"U8","shape":[10],"data_offsets":[10,20]},"y":{"dtype":"U8","shape":[10],"data_offsets":[0,10]},"z":{"dtype":"U8","shape":[5],"data_offsets":[15,20]}}"#;
    let mut overlap = (header.len() as u64).to_le_bytes().to_vec();
    overlap.extend(header.as_bytes());
    overlap.extend([0u8; 20]);
    let e = open("overlap2.safetensors", &overlap);
    assert!(
        e.to_string()
            .ends_with("overlap2.safetensors: tensor 'z' offsets [15, 20) overlap 'x'"),
        "{e}"
    );

    let header = r#"{"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"y":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}}"#;
    let mut gap = (header.len() as u64).to_le_bytes().to_vec();
    gap.extend(header.as_bytes());
    gap.extend([0u8; 12]);
    let e = open("gap.safetensors", &gap);
    assert!(
        matches!(
            e,
            LoadError::Gap {
                begin: 4,
                end: 8,
                ..
            }
        ),
        "{e}"
    );

    let header = r#"{"x":{"dtype":"F7","shape":[4],"data_offsets":[0,4]}}"#;
    let mut unknown = (header.len() as u64).to_le_bytes().to_vec();
    unknown.extend(header.as_bytes());
    unknown.extend([0u8; 4]);
    let e = open("dtype.safetensors", &unknown);
    assert!(matches!(e, LoadError::UnknownDtype { .. }), "{e}");

    let header = r#"{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#;
    let mut mismatch = (header.len() as u64).to_le_bytes().to_vec();
    mismatch.extend(header.as_bytes());
    mismatch.extend([0u8; 8]);
    let e = open("size.safetensors", &mismatch);
    assert!(
        matches!(
            e,
            LoadError::SizeMismatch {
                expected: 12,
                actual: 8,
                ..
            }
        ),
        "{e}"
    );

    let mut header = br#"{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#.to_vec();
    header[2] = 0xFF; // the tensor name "x" becomes the invalid UTF-8 byte 0xFF
    let mut not_utf8 = (header.len() as u64).to_le_bytes().to_vec();
    not_utf8.extend(&header);
    not_utf8.push(0);
    let e = open("utf8.safetensors", &not_utf8);
    assert!(matches!(e, LoadError::NotUtf8 { offset: 2, .. }), "{e}");
}

#[test]
fn sharded_model_opens_from_index_and_folder() {
    let dir = tempfile::tempdir().unwrap();
    let shard = |name: &str, tensors: &[(&str, f32)]| {
        let list: Vec<_> = tensors
            .iter()
            .map(|(n, v)| (*n, "F32", vec![1], f32_bytes(&[*v])))
            .collect();
        write(dir.path(), name, &safetensors_bytes(&list))
    };
    shard(
        "model-00001-of-00002.safetensors",
        &[("a", 1.0), ("b", 2.0)],
    );
    shard("model-00002-of-00002.safetensors", &[("c", 3.0)]);
    let index = write(
        dir.path(),
        "model.safetensors.index.json",
        br#"{"metadata": {"total_size": 12}, "weight_map": {"c": "model-00002-of-00002.safetensors", "a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors"}, "extra": 1}"#,
    );
    for model in [
        Model::open(&index).unwrap(),
        Model::open(dir.path()).unwrap(),
    ] {
        let names: Vec<_> = model.tensors().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(model.files().len(), 2);
        assert_eq!(model.tensors()[2].file_index, 1);
        assert_eq!(values(&model, "c"), vec![3.0]);
    }

    // An index that places a tensor in the wrong shard is an error.
    fs::write(
        &index,
        br#"{"weight_map": {"c": "model-00001-of-00002.safetensors", "a": "model-00001-of-00002.safetensors"}}"#,
    )
    .unwrap();
    assert!(matches!(
        Model::open(&index),
        Err(LoadError::Malformed { .. })
    ));
    fs::write(&index, b"{\"weight_map\": 3}").unwrap();
    assert!(matches!(
        Model::open(&index),
        Err(LoadError::Malformed { .. })
    ));
}

#[test]
fn folder_without_index_takes_all_shards_and_rejects_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "b.safetensors",
        &safetensors_bytes(&[("y", "F32", vec![1], f32_bytes(&[2.0]))]),
    );
    write(
        dir.path(),
        "a.safetensors",
        &safetensors_bytes(&[("x", "F32", vec![1], f32_bytes(&[1.0]))]),
    );
    let model = Model::open(dir.path()).unwrap();
    let names: Vec<_> = model.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["x", "y"]);

    let dup = write(
        dir.path(),
        "c.safetensors",
        &safetensors_bytes(&[("x", "F32", vec![1], f32_bytes(&[9.0]))]),
    );
    let e = Model::open_many(&[dir.path().join("a.safetensors"), dup]).unwrap_err();
    assert!(
        matches!(&e, LoadError::DuplicateName { name, .. } if name == "x"),
        "{e}"
    );
    assert!(matches!(
        Model::open(dir.path()),
        Err(LoadError::DuplicateName { .. })
    ));
}

#[test]
fn tensor_over_2_gib_reads_its_last_element() {
    // 600,000,000 F32 elements = 2,400,000,000 bytes > 2^31. The file is sparse (set_len),
    // so it costs no disk; only the header and the last element are written.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.safetensors");
    let numel: u64 = 600_000_000;
    let header = format!(
        "{{\"big\":{{\"dtype\":\"F32\",\"shape\":[{numel}],\"data_offsets\":[0,{}]}}}}",
        numel * 4
    );
    let total = 8 + header.len() as u64 + numel * 4;
    {
        let mut file = fs::File::create(&path).unwrap();
        file.write_all(&(header.len() as u64).to_le_bytes())
            .unwrap();
        file.write_all(header.as_bytes()).unwrap();
        file.set_len(total).unwrap();
        use std::io::{Seek, SeekFrom};
        file.seek(SeekFrom::Start(total - 4)).unwrap();
        file.write_all(&1.5f32.to_le_bytes()).unwrap();
    }
    let model = Model::open(&path).unwrap();
    let info = &model.tensors()[0];
    assert_eq!(info.size_bytes, 2_400_000_000);
    assert_eq!(info.numel(), numel);
    assert_eq!(model.value_f32_at(0, numel - 1).unwrap(), 1.5);
    assert_eq!(model.value_f32_at(0, numel - 2).unwrap(), 0.0);
    assert_eq!(model.raw_bytes(0).unwrap().len(), 2_400_000_000);
}

/// GGUF v3 bytes with one string KV and the given tensors (name, dims innermost-first, type,
/// data), data aligned to 32.
fn gguf_bytes(tensors: &[(&str, Vec<u64>, u32, Vec<u8>)]) -> Vec<u8> {
    let put_str = |out: &mut Vec<u8>, s: &str| {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    };
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend((tensors.len() as u64).to_le_bytes());
    out.extend(2u64.to_le_bytes());
    put_str(&mut out, "general.name");
    out.extend(8u32.to_le_bytes());
    put_str(&mut out, "tiny");
    put_str(&mut out, "tokenizer.scores");
    out.extend(9u32.to_le_bytes()); // array
    out.extend(6u32.to_le_bytes()); // of f32
    out.extend(2u64.to_le_bytes());
    out.extend(f32_bytes(&[0.5, -1.0]));
    let mut offset = 0u64;
    let mut offsets = vec![];
    for (name, dims, ty, data) in tensors {
        put_str(&mut out, name);
        out.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            out.extend(d.to_le_bytes());
        }
        out.extend(ty.to_le_bytes());
        out.extend(offset.to_le_bytes());
        offsets.push(offset);
        offset = (offset + data.len() as u64).div_ceil(32) * 32;
    }
    while !out.len().is_multiple_of(32) {
        out.push(0);
    }
    let start = out.len();
    for ((_, _, _, data), off) in tensors.iter().zip(offsets) {
        out.resize(start + off as usize, 0);
        out.extend(data);
    }
    out
}

fn f16(v: f32) -> [u8; 2] {
    half::f16::from_f32(v).to_le_bytes()
}

#[test]
fn gguf_decodes_blocks_and_keeps_metadata() {
    // Q4_0, one block: d = 0.5, all bytes 0x9F: lo = 15 -> (15 - 8) * 0.5 = 3.5,
    // hi = 9 -> (9 - 8) * 0.5 = 0.5.
    let mut q4 = f16(0.5).to_vec();
    q4.extend([0x9Fu8; 16]);
    // Q8_0, two blocks along a row of 64: d = 1 and d = -2, codes all 3: 3 and -6.
    let mut q8 = f16(1.0).to_vec();
    q8.extend([3u8; 32]);
    q8.extend(f16(-2.0));
    q8.extend([3u8; 32]);
    let f32_data = f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    // F16 and BF16 in GGUF (types 1 and 30).
    let f16_data: Vec<u8> = [1.0f32, -0.5].iter().flat_map(|&v| f16(v)).collect();
    let bf16_data = vec![0x80, 0x3F, 0x00, 0x40]; // 1.0, 2.0
    let bytes = gguf_bytes(&[
        ("blk.0.q4", vec![32], 2, q4),
        ("blk.0.q8", vec![64, 1], 8, q8),
        ("w", vec![3, 2], 0, f32_data),
        ("h", vec![2], 1, f16_data),
        ("b", vec![2], 30, bf16_data),
    ]);
    let dir = tempfile::tempdir().unwrap();
    for name in ["tiny.gguf", "tiny.model"] {
        let path = write(dir.path(), name, &bytes);
        let model = Model::open(&path).unwrap();
        assert_eq!(model.tensors().len(), 5);
        let q4 = values(&model, "blk.0.q4");
        assert!(q4[..16].iter().all(|&v| v == 3.5) && q4[16..].iter().all(|&v| v == 0.5));
        let q8_index = model.find("blk.0.q8").unwrap();
        assert_eq!(model.tensors()[q8_index].shape, vec![1, 64]);
        assert_eq!(model.tensors()[q8_index].dtype, DType::Q8_0);
        assert_eq!(model.tensors()[q8_index].size_bytes, 68);
        let q8 = values(&model, "blk.0.q8");
        assert!(q8[..32].iter().all(|&v| v == 3.0) && q8[32..].iter().all(|&v| v == -6.0));
        assert_eq!(model.value_f32_at(q8_index, 40).unwrap(), -6.0);
        // dims [3, 2] innermost-first -> row-major shape [2, 3].
        let w = model.find("w").unwrap();
        assert_eq!(model.tensors()[w].shape, vec![2, 3]);
        assert_eq!(values(&model, "w"), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(values(&model, "h"), vec![1.0, -0.5]);
        assert_eq!(values(&model, "b"), vec![1.0, 2.0]);
        assert_eq!(
            model.metadata(),
            &[
                ("general.name".to_string(), "tiny".to_string()),
                ("tokenizer.scores".to_string(), "[0.5, -1]".to_string())
            ]
        );
    }
    // Truncated: the last tensor runs past the end of the file.
    let path = write(dir.path(), "cut.gguf", &bytes[..bytes.len() - 1]);
    assert!(matches!(
        Model::open(&path),
        Err(LoadError::OutOfBounds { .. })
    ));
}

#[test]
fn gguf_with_types_quantscope_cannot_decode_opens_lists_and_refuses_only_those() {
    // Q4_0, one block: d = 1, every byte 0x9A: lo = 10 -> (10 - 8) * 1 = 2 (elements 0..16),
    // hi = 9 -> (9 - 8) * 1 = 1 (elements 16..32).
    let mut q4 = f16(1.0).to_vec();
    q4.extend([0x9Au8; 16]);
    // (name, dims innermost-first, ggml type id, dtype name, stored bytes): sizes are ggml's
    // ggml_type_size per block of ggml_blck_size elements.
    let undecodable: [(&str, Vec<u64>, u32, &str, usize); 7] = [
        ("blk.0.attn_q", vec![256, 2], 16, "IQ2_XXS", 2 * 66),
        ("blk.0.ffn_up", vec![256], 34, "TQ1_0", 54),
        ("blk.0.ffn_gate", vec![256], 15, "Q8_K", 292),
        ("blk.0.ffn_down", vec![128], 41, "Q1_0", 18),
        ("blk.1.ffn_down", vec![128], 42, "Q2_0", 2 * 18),
        ("blk.1.attn_k", vec![256], 22, "IQ2_S", 82),
        ("blk.1.attn_v", vec![256, 3], 23, "IQ4_XS", 3 * 136),
    ];
    let mut tensors: Vec<(&str, Vec<u64>, u32, Vec<u8>)> = vec![
        ("token_embd", vec![32], 2, q4),
        ("norm", vec![2], 0, f32_bytes(&[0.5, -1.5])),
    ];
    for (name, dims, id, _, size) in &undecodable {
        tensors.push((name, dims.clone(), *id, vec![0x5Au8; *size]));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "mixed.gguf", &gguf_bytes(&tensors));
    let model = Model::open(&path).unwrap();
    assert_eq!(model.tensors().len(), 9);
    assert_eq!(values(&model, "token_embd")[..2], [2.0, 2.0]);
    assert_eq!(values(&model, "token_embd")[16..18], [1.0, 1.0]);
    assert_eq!(values(&model, "norm"), vec![0.5, -1.5]);
    for (name, dims, id, dtype, size) in &undecodable {
        let index = model.find(name).unwrap();
        let info = &model.tensors()[index];
        assert_eq!(info.dtype.name(), *dtype);
        assert!(!info.dtype.is_decodable());
        assert_eq!(info.size_bytes, *size as u64, "{name}");
        let shape: Vec<usize> = dims.iter().rev().map(|&d| d as usize).collect();
        assert_eq!(info.shape, shape);
        assert_eq!(model.raw_bytes(index).unwrap().len(), *size);
        let want = format!("tensor '{name}': {dtype} (ggml type {id}) blocks are not decoded");
        for error in [
            model.values_f32(index, &Cancel::never()).unwrap_err(),
            model.value_f32_at(index, 0).unwrap_err(),
        ] {
            assert!(
                matches!(&error, LoadError::Unsupported { .. }),
                "{name}: {error}"
            );
            assert!(error.to_string().contains(&want), "{error}");
        }
    }

    // The CLI lists all nine, quantizes the two it can decode by default, and names the type
    // when asked for one it cannot.
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_quantscope"))
            .args(args)
            .arg(&path)
            .output()
            .unwrap()
    };
    let out = cli(&["inspect", "--json", "--stats"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = json["tensors"].as_array().unwrap();
    assert_eq!(rows.len(), 9);
    let nv = rows.iter().find(|r| r["name"] == "blk.1.ffn_down").unwrap();
    assert_eq!(
        (nv["dtype"].as_str(), nv["size_bytes"].as_u64()),
        (Some("Q2_0"), Some(36))
    );
    assert!(nv.get("stats").is_none());
    assert_eq!(rows[1]["stats"]["max"], 0.5);
    let out = cli(&["quantize", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["token_embd", "norm"]);
    let out = cli(&["quantize", "--tensor", "blk.1.ffn_down"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Q2_0 (ggml type 42) blocks are not decoded by quantscope"),
        "{stderr}"
    );
}

/// .npy v1 bytes.
fn npy_bytes(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let fortran = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

#[test]
fn npy_orders_and_byte_orders() {
    let dir = tempfile::tempdir().unwrap();
    let c = write(
        dir.path(),
        "c.npy",
        &npy_bytes(
            "<f4",
            false,
            "(2, 3)",
            &f32_bytes(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
        ),
    );
    let model = Model::open(&c).unwrap();
    assert_eq!(model.tensors()[0].name, "c");
    assert_eq!(model.tensors()[0].shape, vec![2, 3]);
    assert_eq!(values(&model, "c"), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);

    // Fortran order: the stored sequence lists columns; values come back in C order.
    let stored: Vec<u8> = [0.0f64, 10.0, 1.0, 11.0, 2.0, 12.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let f = write(
        dir.path(),
        "f.npy",
        &npy_bytes("<f8", true, "(2, 3)", &stored),
    );
    let model = Model::open(&f).unwrap();
    assert_eq!(values(&model, "f"), vec![0.0, 1.0, 2.0, 10.0, 11.0, 12.0]);
    assert_eq!(model.value_f32_at(0, 3).unwrap(), 10.0);
    assert_eq!(model.value_f32_at(0, 2).unwrap(), 2.0);

    let be: Vec<u8> = [1.5f32, -2.0]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let b = write(dir.path(), "b.npy", &npy_bytes(">f4", false, "(2,)", &be));
    let model = Model::open(&b).unwrap();
    assert_eq!(values(&model, "b"), vec![1.5, -2.0]);
    assert_eq!(model.value_f32_at(0, 1).unwrap(), -2.0);

    let u = write(
        dir.path(),
        "u.npy",
        &npy_bytes("|u1", false, "(3,)", &[1, 2, 250]),
    );
    assert_eq!(
        values(&Model::open(&u).unwrap(), "u"),
        vec![1.0, 2.0, 250.0]
    );
    let i = write(
        dir.path(),
        "i.npy",
        &npy_bytes("<i8", false, "()", &(-3i64).to_le_bytes()),
    );
    assert_eq!(values(&Model::open(&i).unwrap(), "i"), vec![-3.0]);
    let h = write(
        dir.path(),
        "h.npy",
        &npy_bytes("<f2", false, "(1,)", &[0x00, 0x3C]),
    );
    assert_eq!(values(&Model::open(&h).unwrap(), "h"), vec![1.0]);

    let short = write(
        dir.path(),
        "short.npy",
        &npy_bytes("<f4", false, "(4,)", &[0; 8]),
    );
    assert!(matches!(
        Model::open(&short),
        Err(LoadError::Truncated { .. })
    ));
    let sniffed = write(
        dir.path(),
        "arr.data",
        &npy_bytes("<i4", false, "(1,)", &7i32.to_le_bytes()),
    );
    assert_eq!(values(&Model::open(&sniffed).unwrap(), "arr"), vec![7.0]);
}

#[test]
fn npz_stored_and_deflated_members() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("arrays.npz");
    {
        let file = fs::File::create(&path).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        let deflated = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("weight.npy", stored).unwrap();
        zip.write_all(&npy_bytes("<f4", false, "(2,)", &f32_bytes(&[1.0, 2.0])))
            .unwrap();
        zip.start_file("bias.npy", deflated).unwrap();
        zip.write_all(&npy_bytes(
            "<f4",
            false,
            "(3,)",
            &f32_bytes(&[0.0, 0.0, -4.0]),
        ))
        .unwrap();
        zip.start_file("notes.txt", stored).unwrap();
        zip.write_all(b"skipped").unwrap();
        zip.finish().unwrap();
    }
    let model = Model::open(&path).unwrap();
    let names: Vec<_> = model.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["weight", "bias"]);
    assert_eq!(values(&model, "weight"), vec![1.0, 2.0]);
    assert_eq!(values(&model, "bias"), vec![0.0, 0.0, -4.0]);
    assert_eq!(model.value_f32_at(1, 2).unwrap(), -4.0);

    let bad = write(
        dir.path(),
        "bad.npz",
        b"PK\x03\x04 this is not really a zip",
    );
    assert!(matches!(
        Model::open(&bad),
        Err(LoadError::Malformed { .. })
    ));
}
