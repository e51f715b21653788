//! The fuzz harnesses of the core, for the cargo-fuzz targets `acceptor` and `leader` in
//! `fuzz/`. They live here, beside what they test, and panic on a bug;
//! `crates/loadgen/tests/fuzz_corpus.rs` replays every saved input through them on stable Rust,
//! so a crash once found stays fixed.

mod acceptor;
mod node_hosts;

pub use acceptor::acceptor_schedule;
pub use node_hosts::multi_paxos_schedule;
