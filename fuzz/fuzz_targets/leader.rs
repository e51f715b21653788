//! Fuzz target: see `paxbench_core::fuzzing::multi_paxos_schedule`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    paxbench_core::fuzzing::multi_paxos_schedule(data);
});
