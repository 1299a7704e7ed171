//! Fuzz target: a .safetensors file (header and data), through quantscope::fuzzing::safetensors.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quantscope::fuzzing::safetensors(data);
});
