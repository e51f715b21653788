//! WAN zones end to end: a bad matrix is refused by file, line and field; in the simulator a
//! zone's fastest operation is exactly two round trips to its nearest majority (and the chart
//! of latency by zone is drawn); on a spawned QUIC cluster, and on nodes in network namespaces,
//! the round trip measured from each zone to each node matches the matrix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use std::process::Command;

use paxbench_loadgen::config::NodeDelays;
use paxbench_loadgen::report::summary::{ScenarioSummary, Summary};

mod common;

use common::{PAXBENCH, paxbench, repo, text};

/// Round trips from 20 to 200 ms, one pair asymmetric (a → b 80, b → a 70).
const ZONES: &str = "  zones:
    names: [a, b, c]
    rtt_ms: [[20, 80, 200], [70, 20, 130], [200, 130, 20]]
    distribution: constant
    nodes: {1: a, 2: b, 3: c}
";

fn run(dir: &Path, yaml: &str) -> Summary {
    let config = dir.join("zones.yaml");
    std::fs::write(&config, yaml).unwrap();
    let out = dir.join("out");
    let output = paxbench(&[
        "run",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    Summary::load(&out).unwrap()
}

#[test]
fn a_ragged_matrix_is_refused_by_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.yaml");
    std::fs::write(
        &config,
        "name: bad\ntarget:\n  kind: sim\n  zones:\n    names: [a, b]\n    rtt_ms: [[1, 2], [3]]\n    nodes: {1: a, 2: b, 3: b}\n",
    )
    .unwrap();
    let output = paxbench(&["validate", config.to_str().unwrap()]);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("bad.yaml"), "{said}");
    assert!(said.contains("target.zones.rtt_ms"), "{said}");
    assert!(said.contains("line 6"), "{said}");
    assert!(said.contains("row 2"), "{said}");
}

#[test]
fn in_the_simulator_the_fastest_operation_is_two_round_trips_to_the_nearest_majority() {
    let dir = tempfile::tempdir().unwrap();
    let summary = run(
        dir.path(),
        &format!(
            "name: zones-sim\ntarget:\n  kind: sim\n{ZONES}workload:\n  proposers: 3\n  keys: 1000\n  warmup_s: 0.5\n  duration_s: 5\n"
        ),
    );
    let zones = summary.scenarios[0].zones.as_ref().unwrap();
    // a: itself (20) and b (half of 80 + half of 70 = 75); b: itself and a (75); c: itself
    // and b (130). Two round trips each.
    let floors: Vec<f64> = zones.by_zone.iter().map(|z| z.floor_ms).collect();
    assert_eq!(floors, [150.0, 150.0, 260.0]);
    for zone in &zones.by_zone {
        assert_eq!(zone.proposers, 1);
        assert!(zone.latency.count > 10, "{zone:?}");
        // One proposer per zone on 1000 keys never contends: every operation takes the floor,
        // to the histogram's precision (three significant digits).
        let floor_us = zone.floor_ms * 1e3;
        for value in [zone.latency.min, zone.latency.max] {
            assert!(
                (value as f64 - floor_us).abs() <= floor_us * 1e-3,
                "{}: {value} µs against {floor_us} µs",
                zone.zone
            );
        }
    }
    assert!(zones.pairs.is_empty(), "the simulator has no pings");
    let chart = std::fs::read_to_string(dir.path().join("out/charts/zones.svg")).unwrap();
    assert!(
        chart.contains("latency by proposer zone"),
        "the zones chart"
    );
    let settings = &summary.scenarios[0].settings;
    assert_eq!(
        settings.scaled,
        [
            "proposer.phase1_timeout_ms",
            "proposer.phase2_timeout_ms",
            "measure.livelock_window_ms"
        ]
    );
    // 50 ms + 2 × the longest round trip (200 ms).
    assert_eq!(settings.proposer.phase2_timeout.as_millis(), 450);
    assert_eq!(settings.measure.livelock_window.as_millis(), 450);
    assert_eq!(settings.proposer.phase1_timeout.as_millis(), 450);
}

#[test]
fn on_a_spawned_cluster_each_zone_pair_measures_its_configured_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let summary = run(
        dir.path(),
        &format!(
            "name: zones-spawn\ntarget:\n  kind: spawn\n{ZONES}workload:\n  proposers: 6\n  keys: 1000\n  warmup_s: 0.5\n  duration_s: 2\nmeasure:\n  pings: 20\n"
        ),
    );
    let scenario = &summary.scenarios[0];
    assert_pairs_match(scenario);
    let zones = scenario.zones.as_ref().unwrap();
    let a_to_2 = zones.pairs.iter().find(|p| p.from == "a" && p.node == 2);
    assert_eq!(
        a_to_2.map(|p| p.configured_ms),
        Some(75.0),
        "asymmetric halves"
    );
    for zone in &zones.by_zone {
        // No operation beats the emulated floor.
        assert!(zone.latency.count > 0, "{zone:?}");
        assert!(
            zone.latency.min as f64 >= zone.floor_ms * 1e3 * 0.999,
            "{zone:?}"
        );
    }
    assert_eq!(scenario.safety.violations, 0);
}

/// Every zone was pinged to every node, `measure.pings` times, each pair's p50 within
/// 10% + 1 ms of the matrix.
fn assert_pairs_match(scenario: &ScenarioSummary) {
    let zones = scenario.zones.as_ref().unwrap();
    let settings = &scenario.settings;
    let names = settings.target.zones.as_ref().unwrap().names.len();
    assert_eq!(
        zones.pairs.len(),
        names * settings.node_ids().len(),
        "every zone to every node"
    );
    for pair in &zones.pairs {
        assert_eq!(
            pair.measured.count,
            u64::from(settings.measure.pings),
            "{pair:?}"
        );
        let measured_ms = pair.measured.p50 as f64 / 1e3;
        let allowed = pair.configured_ms * 0.1 + 1.0;
        assert!(
            (measured_ms - pair.configured_ms).abs() <= allowed,
            "{} → node {}: measured {measured_ms} ms, configured {} ms",
            pair.from,
            pair.node,
            pair.configured_ms
        );
    }
}

/// Nodes in network namespaces (`scripts/netns-cluster.sh --zones`): netem delays the links
/// between nodes where the kernel has it, the nodes' fault layer where it does not (the script
/// says which, and the config says so); either way each zone pair measures its round trip, and
/// the stores audit clean. Skipped, with the reason, where namespaces cannot be made.
#[test]
fn nodes_in_network_namespaces_run_in_zones() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("netns");
    let script = Command::new(repo().join("scripts/netns-cluster.sh"))
        .arg(&dir)
        .arg("0.5")
        .arg("--zones")
        .env("PAXBENCH", PAXBENCH)
        .output()
        .unwrap();
    let said = text(&script);
    if script.status.code() == Some(77) {
        eprintln!("{}", said.lines().last().unwrap_or("skipped"));
        return;
    }
    assert!(script.status.success(), "{said}");
    let summary = Summary::load(&dir).unwrap();
    let scenario = &summary.scenarios[0];
    let node_delays = scenario.settings.target.zones.as_ref().unwrap().node_delays;
    let fell_back = said.contains("the nodes' fault layer delays their links");
    let expected = if fell_back {
        NodeDelays::FaultLayer
    } else {
        NodeDelays::External
    };
    assert_eq!(node_delays, expected, "{said}");
    assert_pairs_match(scenario);
    assert!(said.contains("0 chosen values lost"), "{said}");
}
