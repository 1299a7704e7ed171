//! Fuzz target: a .gguf file (metadata, tensor infos, every ggml block type), through quantscope::fuzzing::gguf.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quantscope::fuzzing::gguf(data);
});
