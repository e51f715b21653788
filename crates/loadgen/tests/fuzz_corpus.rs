//! Replays every saved fuzz input (the seeds, and every crash the fuzzers ever found, kept in
//! `fuzz/regressions/`) through the harnesses the cargo-fuzz targets use, each in the crate it
//! tests, on stable Rust: a crash once fixed stays fixed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut files = Vec::new();
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_file() && !hidden {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn replay(target: &str, harness: impl Fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no saved inputs for {target}");
    for path in files {
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| harness(&data)));
        assert!(
            outcome.is_ok(),
            "{} crashes the {target} harness",
            path.display()
        );
    }
}

#[test]
fn frame_inputs_replay_cleanly() {
    replay("frames", paxbench_quic::fuzzing::frames);
}

#[test]
fn config_inputs_replay_cleanly() {
    replay("config", paxbench_loadgen::fuzzing::config);
}

#[test]
fn acceptor_schedules_replay_cleanly() {
    replay("acceptor", |data| {
        paxbench_core::fuzzing::acceptor_schedule(data);
    });
}

#[test]
fn multi_paxos_schedules_replay_cleanly() {
    replay("leader", |data| {
        paxbench_core::fuzzing::multi_paxos_schedule(data);
    });
}

#[test]
fn wal_segments_replay_cleanly() {
    replay("wal", paxbench_node::storage::wal::fuzzing::wal_recovery);
}
