//! `quantscope compare ORIGINAL QUANTIZED`: pair two files of one model and print the error of
//! every quantized tensor against its original (text table or `--json`).

use anyhow::{Context, bail};

use super::args::{CompareArgs, CompareSortArg};
use super::progress::tensor_bar;
use crate::cancel::Cancel;
use crate::plan::compare::{BestCandidate, best_candidate_at, compare_models};
use crate::plan::pair::pair;
use crate::report::compare::{CompareReport, SortKey, no_pairs_message};
use crate::tensor::Model;

/// For every compared pair, the best candidate at no more bits than the file spends on it.
fn best_candidates(
    original: &Model,
    report: &CompareReport,
    show_progress: bool,
) -> anyhow::Result<Vec<Option<BestCandidate>>> {
    let tensors = &report.comparison.tensors;
    let bar = tensor_bar(tensors.len(), show_progress);
    let cancel = Cancel::never();
    let mut out = Vec::with_capacity(tensors.len());
    for t in tensors {
        bar.set_message(t.name.clone());
        // The original's own layout: per-row and per-block candidates measure the same error
        // on llama.cpp's permuted rows, so no unpermuting is needed here.
        let index = original.find(&t.name);
        let info = index.and_then(|i| original.tensors().get(i).map(|info| (i, info)));
        let best = match info {
            Some((i, info)) if t.outcome.is_ok() && info.dtype.is_float() => {
                let values = original.values_f32(i, &cancel)?;
                best_candidate_at(&values, &info.shape, t.bits_per_weight, &cancel)?
            }
            _ => None,
        };
        out.push(best);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}

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
    let mut report = CompareReport::new(
        args.original.display().to_string(),
        args.quantized.display().to_string(),
        &plan.mapping,
        comparison,
    );
    if args.best {
        report.best = best_candidates(&original, &report, !args.json)?;
    }
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
