//! Fuzz target: the `bits` command's VALUE (first byte: --format and overflow), through quantscope::fuzzing::bits_value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quantscope::fuzzing::bits_value(data);
});
