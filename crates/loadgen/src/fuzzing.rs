//! The fuzz harness of the load generator's config parsing, for the cargo-fuzz target `config`
//! in `fuzz/`. The other targets' harnesses live in the crates they test:
//! `paxbench_quic::fuzzing::frames`, `paxbench_core::fuzzing::acceptor_schedule` and
//! `paxbench_node::storage::wal::fuzzing::wal_recovery`. `tests/fuzz_corpus.rs` replays every
//! saved input through all four on stable Rust, so a crash once found stays fixed.

use std::path::Path;

use crate::config::BenchConfig;

/// Bench-config parsing: any text either loads into scenarios that passed validation, or is
/// refused with an error that names the file. Nothing may panic or run away.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match BenchConfig::parse(Path::new("fuzz.yaml"), text.to_string()) {
        Ok(config) => {
            assert!(!config.scenarios.is_empty());
            for scenario in &config.scenarios {
                assert!(scenario.validate().is_ok());
            }
        }
        Err(e) => assert!(e.to_string().contains("fuzz.yaml"), "{e}"),
    }
    let _ = crate::config::locate(text, "workload.rate");
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_small_config_loads_and_garbage_is_refused_by_name() {
        super::config(b"name: x\n");
        super::config(b"\x00: [");
    }
}
