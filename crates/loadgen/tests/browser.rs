//! `report.html` in a real browser: `scripts/check-report-in-browser.sh` loads a report with
//! repetitions and an unsafe scenario in headless Chromium and checks its layout (no horizontal
//! overflow, every chart drawn, no table cell wrapped). Skips, saying why, only where Chromium
//! is missing and cannot be installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::atomic::AtomicBool;

use paxbench_loadgen::config::BenchConfig;
use paxbench_loadgen::run::{RunOptions, run};

const CONFIG: &str = "name: browser\nseed: 3\ntarget:\n  kind: sim\nworkload:\n  proposers: [4, 16]\n  keys: 4\n  warmup_s: 0\n  duration_s: 0.2\nproposer:\n  id_scheme: [naive-timestamp, counter]\n  clock_resolution_ns: 1000000\nexpect_violations: [naive-timestamp]\nmeasure:\n  repeat: 2\n";

#[test]
fn the_report_lays_out_in_a_browser() {
    let root = tempfile::tempdir().unwrap();
    let config = BenchConfig::parse(Path::new("browser.yaml"), CONFIG.into()).unwrap();
    let options = RunOptions {
        results_dir: root.path().into(),
        out: Some(root.path().join("run")),
        node_exe: env!("CARGO_BIN_EXE_paxbench").into(),
        progress: false,
        charts: true,
    };
    let result = run(&config, &options, &AtomicBool::new(false)).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/check-report-in-browser.sh"
    );
    let shot = root.path().join("shot.png");
    let output = std::process::Command::new("bash")
        .arg(script)
        .arg(&result.dir)
        .arg(&shot)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stdout.contains("SKIPPED") {
        eprintln!("{stdout}");
        return;
    }
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("layout ok"), "{stdout}");
    assert!(shot.metadata().unwrap().len() > 0);
    // Every chart of the run was laid out.
    let charts = std::fs::read_dir(result.dir.join("charts"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "svg")
        })
        .count();
    assert!(stdout.contains(&format!("charts={charts} ")), "{stdout}");
}
