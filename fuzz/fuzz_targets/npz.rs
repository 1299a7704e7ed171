//! Fuzz target: a .npz archive, through quantscope::fuzzing::npz.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quantscope::fuzzing::npz(data);
});
