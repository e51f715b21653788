//! The `paxbench` binary: config errors, a short run on a spawned QUIC cluster, `--json`,
//! exit codes for unexpected violations, and Ctrl-C.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{PAXBENCH, paxbench};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn only_results_dir(results: &Path) -> PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

#[test]
fn config_errors_name_the_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.yaml",
        "name: bad\nworkload:\n  proposers: 4\n  mode: sideways\n",
    );
    let output = paxbench(&["validate", bad.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.yaml") && stderr.contains("line 4") && stderr.contains("sideways"),
        "{stderr}"
    );

    let invalid = write(
        dir.path(),
        "invalid.yaml",
        "name: x\nworkload:\n  mode: race\n  proposers: 4\n  contenders: 9\n",
    );
    let output = paxbench(&[
        "run",
        invalid.to_str().unwrap(),
        "--results",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 5") && stderr.contains("workload.contenders"),
        "{stderr}"
    );

    let good = write(
        dir.path(),
        "good.yaml",
        "name: good\nproposer:\n  id_scheme: [counter, hlc]\n",
    );
    let output = paxbench(&["validate", good.to_str().unwrap()]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("2 scenario(s)"));
}

#[test]
fn a_short_run_on_a_spawned_quic_cluster_writes_a_complete_report() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "short.yaml",
        "name: short\ntarget:\n  kind: spawn\n  nodes: 3\nworkload:\n  proposers: 8\n  keys: 8\n  warmup_s: 0.3\n  duration_s: 2.5\nmeasure:\n  pings: 20\n",
    );
    let results = dir.path().join("results");
    let output = paxbench(&[
        "run",
        config.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let dir = only_results_dir(&results);
    assert!(
        dir.file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with("-short"),
        "{}",
        dir.display()
    );
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary, on_disk);
    let s = &summary["scenarios"][0];
    let o = &s["outcomes"];
    let n = |v: &serde_json::Value| v.as_u64().unwrap();
    assert!(n(&o["won"]) > 100, "{o}");
    assert_eq!(
        n(&o["started"]),
        n(&o["won"])
            + n(&o["lost_race"])
            + n(&o["gave_up"])
            + n(&o["timed_out"])
            + n(&o["unfinished"]),
        "{o}"
    );
    assert_eq!(s["latency_us"]["floor"].as_array().unwrap().len(), 3);
    assert!(n(&s["latency_us"]["floor"][0]["rtt"]["p50"]) > 0);
    assert_eq!(n(&s["safety"]["violations"]), 0);
    // The generator and every spawned node were sampled: resident memory is never zero.
    let processes = s["resources"]["processes"].as_array().unwrap();
    let names: Vec<&str> = processes
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["generator", "node 1", "node 2", "node 3"]);
    for p in processes {
        assert!(p["peak_rss_mib"].as_f64().unwrap() > 1.0, "{p}");
        assert!(p["cpu_pct"].as_f64().unwrap() > 0.0, "{p}");
    }
    assert!(n(&s["resources"]["samples"]) >= 2, "{}", s["resources"]);
    assert!(
        s["messages"]["per_decision"].as_f64().unwrap() >= 12.0,
        "{}",
        s["messages"]
    );
    for file in [
        "config.yaml",
        "environment.json",
        "summary.md",
        "timeseries.csv",
        "resources.csv",
        "scenario-00.hgrm",
        "scenario-00.hlog",
        "charts/resources.svg",
    ] {
        assert!(dir.join(file).is_file(), "{file}");
    }
    assert!(
        !dir.join("scenario-00.evidence").exists(),
        "a memory cluster is not audited: no evidence is kept"
    );
    // Per-second telemetry: the columns are there, and every process's memory in every second.
    let timeseries = std::fs::read_to_string(dir.join("timeseries.csv")).unwrap();
    let header: Vec<&str> = timeseries.lines().next().unwrap().split(',').collect();
    for column in [
        "generator_rss_mib",
        "generator_cpu_pct",
        "node_rss_mib_max",
        "nodes_cpu_pct",
        "write_mib_per_s",
        "fsyncs_per_s",
        "steal_pct",
    ] {
        assert!(header.contains(&column), "{column} missing: {header:?}");
    }
    // Columns by name; the label is the only quoted field and has no comma here.
    let column = |csv: &str, name: &str| {
        csv.lines()
            .next()
            .unwrap()
            .split(',')
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    let first = timeseries.lines().nth(1).unwrap();
    let rss_at = column(&timeseries, "generator_rss_mib");
    let rss: f64 = first.split(',').nth(rss_at).unwrap().parse().unwrap();
    assert!(rss > 1.0, "{first}");
    let resources = std::fs::read_to_string(dir.join("resources.csv")).unwrap();
    let (process_at, rss_at, fsyncs_at) = (
        column(&resources, "process"),
        column(&resources, "rss_mib"),
        column(&resources, "fsyncs_per_s"),
    );
    for process in ["generator", "node 1", "node 2", "node 3"] {
        let rows: Vec<&str> = resources
            .lines()
            .filter(|l| l.split(',').nth(process_at) == Some(process))
            .collect();
        assert!(rows.len() >= 2, "{process}: {resources}");
        for row in rows {
            let rss: f64 = row.split(',').nth(rss_at).unwrap().parse().unwrap();
            assert!(rss > 1.0, "{row}");
        }
    }
    // Even a memory node counts its (empty) commits, and the once-a-second poll sees them.
    let fsyncs: u64 = resources
        .lines()
        .filter(|l| l.split(',').nth(process_at) == Some("node 1"))
        .map(|l| l.split(',').nth(fsyncs_at).unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(fsyncs > 0, "{resources}");
}

#[test]
fn unexpected_violations_fail_the_run_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "naive.yaml",
        "name: naive\ntarget:\n  kind: sim\nworkload:\n  proposers: 16\n  keys: 2\n  warmup_s: 0\n  duration_s: 0.2\nproposer:\n  id_scheme: naive-timestamp\n  clock_resolution_ns: 1000000\n",
    );
    let results = dir.path().join("results");
    let output = paxbench(&[
        "run",
        config.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("SAFETY VIOLATION") && stderr.contains("agreement"),
        "{stderr}"
    );
    // The report is complete: the violations are the result, not a crash.
    assert!(only_results_dir(&results).join("summary.json").is_file());
}

#[test]
fn ctrl_c_writes_what_was_measured_marked_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "long.yaml",
        "name: long\ntarget:\n  kind: spawn\nworkload:\n  proposers: 4\n  warmup_s: 0.2\n  duration_s: 120\nmeasure:\n  pings: 5\n",
    );
    let results = dir.path().join("results");
    let mut child = Command::new(PAXBENCH)
        .args([
            "run",
            config.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--no-progress",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "paxbench did not stop after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    let dir = only_results_dir(&results);
    assert!(
        dir.file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with("-long-interrupted"),
        "{}",
        dir.display()
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["interrupted"], true);
    assert!(summary["scenarios"][0]["outcomes"]["won"].as_u64().unwrap() > 0);
    assert!(
        std::fs::read_to_string(dir.join("summary.md"))
            .unwrap()
            .contains("INTERRUPTED")
    );
}
