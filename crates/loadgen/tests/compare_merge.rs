//! `compare` and `merge` on constructed inputs: a real (simulated) run is copied and its numbers
//! replaced by known ones, so every expected figure can be worked out by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use paxbench_loadgen::analysis::{compare, merge};
use paxbench_loadgen::config::BenchConfig;
use paxbench_loadgen::measure::latency_histogram;
use paxbench_loadgen::report;
use paxbench_loadgen::run::{RunOptions, run};
use serde_json::{Value, json};

const CONFIG: &str = "name: part\ntarget:\n  kind: sim\nworkload:\n  proposers: 4\n  keys: 100\n  warmup_s: 0\n  duration_s: 0.2\n";

/// A template run, copied to `name`.
fn template(root: &Path) -> PathBuf {
    let config = BenchConfig::parse(Path::new("part.yaml"), CONFIG.into()).unwrap();
    let options = RunOptions {
        results_dir: root.join("template"),
        out: Some(root.join("template/run")),
        node_exe: env!("CARGO_BIN_EXE_paxbench").into(),
        progress: false,
        charts: false,
    };
    run(&config, &options, &AtomicBool::new(false)).unwrap().dir
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Known numbers for one generator's part.
struct Known {
    client: u32,
    won: u64,
    latency_us: u64,
    preemptions: u64,
    measured_s: f64,
}

/// A generator's part of an attach run with known numbers: `won` operations, all taking
/// `latency_us`, `preemptions` preemptions, measured over `measured_s`.
fn part(root: &Path, template: &Path, name: &str, known: Known) -> PathBuf {
    let Known {
        client,
        won,
        latency_us,
        preemptions,
        measured_s,
    } = known;
    let dir = root.join(name);
    copy(template, &dir);
    let path = dir.join("summary.json");
    let mut summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let s = &mut summary["scenarios"][0];
    s["target"] = json!("attach");
    s["settings"]["target"]["kind"] = json!("attach");
    s["settings"]["target"]["attach"] = json!({"nodes": [{"id": 1, "addr": "10.0.0.1:7001"}], "ca": "ca.pem", "cert": format!("client-{client}.pem"), "key": format!("client-{client}.key"), "client": client});
    s["settings"]["seed"] = json!(client + 100);
    s["outcomes"] = json!({"started": won, "won": won, "lost_race": 0, "gave_up": 0, "timed_out": 0, "unfinished": 0});
    s["measured_s"] = json!(measured_s);
    s["throughput"]["decisions_per_s"] = json!(won as f64 / measured_s);
    s["counts"]["ops_finished"] = json!(won);
    s["counts"]["preemptions"] = json!(preemptions);
    s["contention"]["rounds"] = json!([[1, won]]);
    s["safety"] = json!({"violations": 0, "by_kind": [], "examples": [], "expected": false});
    std::fs::write(&path, serde_json::to_string_pretty(&summary).unwrap()).unwrap();
    let mut op = latency_histogram();
    op.record_n(latency_us, won).unwrap();
    let file = report::histograms_file(&[("op", &op)]).unwrap();
    std::fs::write(dir.join("scenario-00.histograms"), file).unwrap();
    dir
}

#[test]
fn merge_adds_histograms_and_counters_exactly() {
    let root = tempfile::tempdir().unwrap();
    let template = template(root.path());
    let a = part(
        root.path(),
        &template,
        "gen0",
        Known {
            client: 0,
            won: 10,
            latency_us: 100,
            preemptions: 5,
            measured_s: 2.0,
        },
    );
    let b = part(
        root.path(),
        &template,
        "gen1",
        Known {
            client: 1,
            won: 30,
            latency_us: 300,
            preemptions: 15,
            measured_s: 2.5,
        },
    );
    let merged = merge::merge(&[a, b], &root.path().join("merged")).unwrap();
    let s = &merged.scenarios[0];
    assert_eq!(s.outcomes.won, 40);
    assert_eq!(s.outcomes.started, 40);
    assert_eq!(s.latency_us.op.count, 40);
    assert_eq!(s.latency_us.op.min, 100);
    assert_eq!(
        s.latency_us.op.p50, 300,
        "30 of the 40 took 300 µs: the median is 300, not an average"
    );
    assert_eq!(s.latency_us.op.max, 300);
    assert!((s.measured_s - 2.5).abs() < 1e-12);
    assert!(
        (s.throughput.decisions_per_s - 16.0).abs() < 1e-9,
        "40 decisions over 2.5 s"
    );
    assert!(
        (s.contention.preemptions_per_op - 0.5).abs() < 1e-12,
        "(5 + 15) / (10 + 30)"
    );
    assert_eq!(s.contention.rounds, vec![(1, 40)]);
    let one_generator = report::summary::Summary::load(&template).unwrap().scenarios[0]
        .setup
        .proposers;
    assert_eq!(
        s.setup.proposers,
        2 * one_generator,
        "two generators' proposers together"
    );
    let names: Vec<&str> = s
        .resources
        .processes
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["run 0: generator", "run 1: generator"]);
    let dir = root.path().join("merged");
    for file in [
        "summary.json",
        "summary.md",
        "report.html",
        "scenario-00.hgrm",
        "timeseries.csv",
        "charts/latency-spectrum.svg",
    ] {
        assert!(dir.join(file).is_file(), "{file}");
    }
}

#[test]
fn merge_refuses_runs_that_differ() {
    let root = tempfile::tempdir().unwrap();
    let template = template(root.path());
    let a = part(
        root.path(),
        &template,
        "gen0",
        Known {
            client: 0,
            won: 10,
            latency_us: 100,
            preemptions: 0,
            measured_s: 1.0,
        },
    );
    let b = part(
        root.path(),
        &template,
        "gen1",
        Known {
            client: 1,
            won: 10,
            latency_us: 100,
            preemptions: 0,
            measured_s: 1.0,
        },
    );
    // Another workload.
    let path = b.join("summary.json");
    let original = std::fs::read_to_string(&path).unwrap();
    let mut changed: Value = serde_json::from_str(&original).unwrap();
    changed["scenarios"][0]["settings"]["workload"]["proposers"] = json!(99);
    std::fs::write(&path, changed.to_string()).unwrap();
    let err = merge::merge(&[a.clone(), b.clone()], &root.path().join("m1"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("configs differ")
            && err.contains("`workload.proposers`")
            && err.contains("99"),
        "{err}"
    );
    // Another cluster.
    let mut changed: Value = serde_json::from_str(&original).unwrap();
    changed["scenarios"][0]["settings"]["target"]["attach"]["nodes"][0]["addr"] =
        json!("10.0.0.9:7001");
    std::fs::write(&path, changed.to_string()).unwrap();
    let err = merge::merge(&[a.clone(), b.clone()], &root.path().join("m2"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("clusters differ") && err.contains("10.0.0.9"),
        "{err}"
    );
    // Separate simulated clusters are never one measurement.
    let err = merge::merge(&[template.clone(), template], &root.path().join("m3"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("only runs attached to one cluster"), "{err}");
    // Generators that did not run at the same time, by the nodes' clock: the second began
    // 100 s later by its own clock, which its measured offset does not explain.
    let mut later: Value = serde_json::from_str(&original).unwrap();
    let start = later["scenarios"][0]["window_start_unix_s"]
        .as_f64()
        .unwrap();
    later["scenarios"][0]["window_start_unix_s"] = json!(start + 100.0);
    later["scenarios"][0]["shared"] = json!({"start_late_ms": null, "clock_offsets": [{"node": 1, "offset_ms": -2.0, "bound_ms": 0.1}], "preexisting": 0, "other_generators": 0, "window_spread_ms": null, "cross_check": null});
    std::fs::write(&path, later.to_string()).unwrap();
    let err = merge::merge(&[a.clone(), b.clone()], &root.path().join("m4"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("measured windows do not overlap") && err.contains("--start-at"),
        "{err}"
    );
    // The same start once the offset is applied: a node clock 100 s behind this generator's.
    later["scenarios"][0]["shared"]["clock_offsets"][0]["offset_ms"] = json!(-100_000.0);
    std::fs::write(&path, later.to_string()).unwrap();
    let merged = merge::merge(&[a, b], &root.path().join("m5")).unwrap();
    let shared = merged.scenarios[0].shared.as_ref().unwrap();
    assert!(shared.window_spread_ms.unwrap() < 1.0, "{shared:?}");
    assert!(shared.cross_check.is_none(), "no evidence was kept");
    assert!(!root.path().join("m1").exists() && !root.path().join("m2").exists());
}

#[test]
fn compare_gives_ratios_and_flags_regressions() {
    let root = tempfile::tempdir().unwrap();
    let template = template(root.path());
    let base = part(
        root.path(),
        &template,
        "base",
        Known {
            client: 0,
            won: 100,
            latency_us: 200,
            preemptions: 0,
            measured_s: 1.0,
        },
    );
    let slower = part(
        root.path(),
        &template,
        "slower",
        Known {
            client: 0,
            won: 50,
            latency_us: 200,
            preemptions: 0,
            measured_s: 1.0,
        },
    );
    let comparisons = compare::compare(&[base.clone(), slower.clone(), base.clone()], 0.1).unwrap();
    let rows = &comparisons[0].rows;
    assert_eq!(rows.len(), 3);
    assert!((rows[1].throughput_ratio - 0.5).abs() < 1e-12);
    assert!((rows[1].p99_ratio - 1.0).abs() < 1e-12);
    assert!(rows[1].regression);
    assert!(!rows[0].regression && !rows[2].regression);
    let out = root.path().join("compared");
    compare::write(&[base, slower], &comparisons, 0.1, &out).unwrap();
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(md.contains("REGRESSION") && md.contains("0.50"), "{md}");
    let svg = std::fs::read_to_string(out.join("charts/latency-spectrum.svg")).unwrap();
    assert!(
        svg.contains("base: default") && svg.contains("slower: default"),
        "overlaid"
    );
}

/// `dir`'s scenario 0 with repetitions whose decisions per second are `rates`.
fn with_repetitions(dir: &Path, rates: &[f64]) {
    let path = dir.join("summary.json");
    let mut summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let runs: Vec<Value> = rates
        .iter()
        .enumerate()
        .map(|(k, rate)| {
            json!({"seed": k, "decisions_per_s": rate, "p50_us": 200, "p99_us": 200,
                   "retries_per_op": 0.0, "preemptions_per_op": 0.0, "violations": 0,
                   "steal_pct": 0.0, "foreign_cpu_pct": 0.0, "ping_p50_us": 30,
                   "disk_floor_p50_us": null})
        })
        .collect();
    let headlines: Vec<paxbench_loadgen::report::summary::Headline> =
        serde_json::from_value(Value::Array(runs)).unwrap();
    let repetitions = paxbench_loadgen::report::summary::Repetitions::of(headlines);
    summary["scenarios"][0]["repetitions"] = serde_json::to_value(repetitions).unwrap();
    std::fs::write(&path, serde_json::to_string_pretty(&summary).unwrap()).unwrap();
}

#[test]
fn compare_with_repetitions_tells_a_change_from_noise() {
    let root = tempfile::tempdir().unwrap();
    let template = template(root.path());
    let known = |won| Known {
        client: 0,
        won,
        latency_us: 200,
        preemptions: 0,
        measured_s: 1.0,
    };
    let base = part(root.path(), &template, "base", known(100));
    with_repetitions(&base, &[100.0, 104.0, 97.0, 101.0, 99.0]);
    // 20% slower in every repetition: a regression, by the test.
    let slower = part(root.path(), &template, "slower", known(80));
    with_repetitions(&slower, &[80.0, 83.0, 78.0, 81.0, 79.0]);
    // A median 12% lower, but the samples overlap the baseline's: noise.
    let noisy = part(root.path(), &template, "noisy", known(88));
    with_repetitions(&noisy, &[60.0, 88.0, 101.0, 70.0, 103.0]);
    let comparisons =
        compare::compare(&[base.clone(), slower.clone(), noisy.clone()], 0.1).unwrap();
    let rows = &comparisons[0].rows;
    assert!(
        rows[1].regression && rows[1].throughput.changed(),
        "{:?}",
        rows[1]
    );
    assert!((rows[1].throughput_ratio - 0.8).abs() < 1e-9);
    assert!(
        !rows[2].regression && !rows[2].throughput.changed(),
        "{:?}",
        rows[2]
    );
    let md = compare::markdown(&comparisons, 0.1);
    assert!(md.contains("**REGRESSION** (p = 0.008)"), "{md}");
    assert!(md.contains("within noise"), "{md}");
    assert!(md.contains("| 100 ± "), "the spread is shown: {md}");
    // One run a side: the ratio is flagged, and said to be possibly noise.
    let single = part(root.path(), &template, "single", known(80));
    let comparisons = compare::compare(&[single.clone(), base.clone()], 0.1).unwrap();
    let md = compare::markdown(&comparisons, 0.1);
    assert!(md.contains("cannot tell noise from change"), "{md}");
}
