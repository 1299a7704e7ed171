//! `quantscope compare ORIGINAL QUANTIZED`: pair two files of one model and print the error of
//! every quantized tensor against its original (text table or `--json`).

use anyhow::{Context, bail};

use super::args::{CompareArgs, CompareSortArg};
use super::progress::tensor_bar;
use crate::cancel::Cancel;
use crate::plan::compare::compare_models;
use crate::plan::pair::pair;
use crate::report::compare::{CompareReport, SortKey, no_pairs_message};
use crate::tensor::Model;

/// Runs `compare`.
pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    let original = Model::open(&args.original)
        .with_context(|| format!("opening the original {}", args.original.display()))?;
    let quantized = Model::open(&args.quantized)
        .with_context(|| format!("opening the quantized model {}", args.quantized.display()))?;
    let plan = pair(&original, &quantized);
    if plan.pairs.is_empty() {
        bail!(
            "{}",
            no_pairs_message(
                &args.original.display().to_string(),
                &args.quantized.display().to_string(),
                original.tensors().len(),
                quantized.tensors().len(),
                &plan
            )
        );
    }
    let bar = tensor_bar(plan.pairs.len(), !args.json);
    let comparison = compare_models(
        &original,
        &quantized,
        &plan,
        &Cancel::never(),
        |done, _, name| {
            // usize fits in u64.
            bar.set_position(done as u64);
            bar.set_message(name.to_string());
        },
    )?;
    bar.finish_and_clear();
    let report = CompareReport::new(
        args.original.display().to_string(),
        args.quantized.display().to_string(),
        &plan.mapping,
        comparison,
    );
    if args.json {
        super::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&report.to_json())?
        ))
    } else {
        let sort = match args.sort {
            CompareSortArg::File => SortKey::File,
            CompareSortArg::Sqnr => SortKey::Sqnr,
            CompareSortArg::RelMse => SortKey::RelMse,
            CompareSortArg::Name => SortKey::Name,
            CompareSortArg::Bpw => SortKey::Bpw,
        };
        super::emit(&report.to_text(sort))
    }
}
