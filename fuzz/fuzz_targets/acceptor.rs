//! Fuzz target: see `paxbench_loadgen::fuzzing::acceptor_schedule`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    paxbench_loadgen::fuzzing::acceptor_schedule(data);
});
