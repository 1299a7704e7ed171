//! Fuzz target: a sharded model: model.safetensors.index.json, then NUL, then a shard, through quantscope::fuzzing::sharded_index.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quantscope::fuzzing::sharded_index(data);
});
