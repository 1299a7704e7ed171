//! Fuzz target: a .npy file, through quantscope::fuzzing::npy.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quantscope::fuzzing::npy(data);
});
