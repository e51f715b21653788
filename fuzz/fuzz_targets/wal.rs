//! Fuzz target: see `paxbench_node::storage::wal::fuzzing::wal_recovery`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    paxbench_node::storage::wal::fuzzing::wal_recovery(data);
});
