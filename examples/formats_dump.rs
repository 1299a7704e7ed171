//! Quantizes every float tensor of a model into deployed formats and writes the stored parts and
//! the dequantized values, for scripts/crosscheck_formats_mx.py to compare with the references.
//!
//! `cargo run --release --no-default-features --example formats_dump -- MODEL OUT_DIR FORMAT...`
//! writes OUT_DIR/FORMAT.safetensors holding, per tensor NAME the format can store,
//! "NAME.PART" (U8, the part's bytes) and "NAME.dequantized" (F32, NAME's shape), and prints one
//! line per format: tensors, elements, and the summed `elapsed_ms` of `quantize_format`.
// Printing the per-format lines is this example's output (scripts/crosscheck_formats_mx.py reads it).
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use quantscope::cancel::Cancel;
use quantscope::quant::formats::{FormatOutputs, QuantFormat, quantize_format};
use quantscope::tensor::Model;
use safetensors::tensor::{Dtype, TensorView};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model_path, out_dir, formats @ ..] = args.as_slice() else {
        bail!("usage: formats_dump MODEL OUT_DIR FORMAT...");
    };
    let model = Model::open(&PathBuf::from(model_path)).context("opening the model")?;
    let cancel = Cancel::never();
    for name in formats {
        let format = QuantFormat::from_name(name).with_context(|| format!("format {name}"))?;
        let mut stored: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)> = BTreeMap::new();
        let (mut elapsed_ms, mut elements, mut tensors) = (0.0, 0usize, 0usize);
        let wall = Instant::now();
        for (index, info) in model.tensors().iter().enumerate() {
            if !info.dtype.is_float() || format.check(&info.shape).is_err() {
                continue;
            }
            let values = model.values_f32(index, &cancel)?;
            let outputs = FormatOutputs {
                encoded: true,
                dequantized: true,
            };
            let result = quantize_format(format, &values, &info.shape, None, outputs, &cancel)
                .with_context(|| format!("{name} {}", info.name))?;
            elapsed_ms += result.elapsed_ms;
            elements += values.len();
            tensors += 1;
            for part in result.encoded.map(|e| e.parts).unwrap_or_default() {
                let len = part.bytes.len();
                stored.insert(
                    format!("{}.{}", info.name, part.name),
                    (Dtype::U8, vec![len], part.bytes),
                );
            }
            let deq: Vec<u8> = result
                .dequantized
                .unwrap_or_default()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            stored.insert(
                format!("{}.dequantized", info.name),
                (Dtype::F32, info.shape.clone(), deq),
            );
        }
        let views: Vec<(String, TensorView<'_>)> = stored
            .iter()
            .map(|(k, (dtype, shape, bytes))| {
                TensorView::new(*dtype, shape.clone(), bytes).map(|v| (k.clone(), v))
            })
            .collect::<Result<_, _>>()?;
        let path = PathBuf::from(out_dir).join(format!("{name}.safetensors"));
        safetensors::tensor::serialize_to_file(views, None, &path)?;
        println!(
            "{name}: {tensors} tensors, {elements} elements, quantize_format {elapsed_ms:.1} ms \
             (wall {:.1} ms with decoding and copies)",
            wall.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(())
}
