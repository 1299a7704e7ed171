//! Fuzz target: an importance matrix (llama-imatrix GGUF or legacy imatrix.dat), through quantscope::fuzzing::imatrix.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quantscope::fuzzing::imatrix(data);
});
