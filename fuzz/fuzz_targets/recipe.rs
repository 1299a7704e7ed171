//! Fuzz target: a recipe JSON (plan --out), through quantscope::fuzzing::recipe.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quantscope::fuzzing::recipe(data);
});
