//! What the process-level tests of `paxbench` share: the binary, the repository, and a
//! finished process's output as one text for assertion messages.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

/// The `paxbench` binary under test.
pub const PAXBENCH: &str = env!("CARGO_BIN_EXE_paxbench");

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `paxbench` with `args` to its end.
pub fn paxbench(args: &[&str]) -> Output {
    std::process::Command::new(PAXBENCH)
        .args(args)
        .output()
        .expect("the paxbench binary runs")
}

/// Standard output then standard error.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
