//! Fuzz target: see `paxbench_quic::fuzzing::frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| paxbench_quic::fuzzing::frames(data));
