//! Replays the committed fuzz inputs (the hand-named seeds in `fuzz/seeds/<target>/`, the
//! minimized corpus in `fuzz/corpus/<target>/`) and every crash input the fuzz campaign found
//! (`fuzz/regressions/<target>/`) through the same entry points the fuzz targets call
//! (`quantscope::fuzzing`), on stable, as ordinary tests. See FUZZING.md.

use std::path::{Path, PathBuf};

use quantscope::fuzzing;

/// The files of `fuzz/<kind>/<target>/`, sorted (an absent folder has none).
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// Runs every seed, corpus and regression input of `target` through `entry` (a panic fails the
/// test and names the input), and checks seeds and corpus are there and the seeds still reach
/// past validation: at least `min_accepted` of them open (or parse).
fn replay(target: &str, entry: fn(&[u8]) -> bool, min_accepted: usize) {
    let seeds = inputs("seeds", target);
    let corpus = inputs("corpus", target);
    assert!(
        !seeds.is_empty(),
        "fuzz/seeds/{target}/ is empty: run scripts/fuzz_seeds.py"
    );
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ is empty: run scripts/fuzz.sh"
    );
    let mut accepted_seeds = 0;
    for path in seeds
        .iter()
        .chain(&corpus)
        .chain(&inputs("regressions", target))
    {
        let bytes = std::fs::read(path).expect("fuzz input readable");
        eprintln!("replaying {}", path.display());
        if entry(&bytes) && seeds.contains(path) {
            accepted_seeds += 1;
        }
    }
    assert!(
        accepted_seeds >= min_accepted,
        "only {accepted_seeds} seeds of fuzz/seeds/{target}/ were accepted (want at least {min_accepted})"
    );
}

#[test]
fn safetensors_corpus_and_regressions() {
    replay("safetensors", fuzzing::safetensors, 5);
}

#[test]
fn sharded_index_corpus_and_regressions() {
    replay("sharded_index", fuzzing::sharded_index, 2);
}

#[test]
fn gguf_corpus_and_regressions() {
    replay("gguf", fuzzing::gguf, 10);
}

#[test]
fn npy_corpus_and_regressions() {
    replay("npy", fuzzing::npy, 5);
}

#[test]
fn npz_corpus_and_regressions() {
    replay("npz", fuzzing::npz, 2);
}

#[test]
fn bits_value_corpus_and_regressions() {
    replay("bits_value", fuzzing::bits_value, 5);
}

#[test]
fn imatrix_corpus_and_regressions() {
    // Both layouts: two GGUF seeds (dense, experts) and two legacy .dat seeds.
    replay("imatrix", fuzzing::imatrix, 4);
}

#[test]
fn recipe_corpus_and_regressions() {
    replay("recipe", fuzzing::recipe, 3);
}

#[test]
fn the_fixed_shard_opens_with_its_two_tensors() {
    // The entry points' fixed shard must itself be valid, or the sharded target would only
    // ever exercise error paths.
    let model =
        quantscope::tensor::Model::from_file_bytes(fuzzing::FIXED_SHARD, fuzzing::fixed_shard())
            .expect("fixed shard opens");
    let never = quantscope::cancel::Cancel::never();
    assert_eq!(model.values_f32(0, &never).unwrap(), vec![1.0, -2.0]);
    assert_eq!(model.values_f32(1, &never).unwrap(), vec![1.0, 0.5]);
}
