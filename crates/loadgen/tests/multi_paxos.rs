//! Multi-Paxos on spawned QUIC clusters: both protocols side by side, the leader killed with
//! SIGKILL and restarted with its durable store and audited, and flexible quorums (Q1 = 4,
//! Q2 = 2 of 5) with thrifty phase 2, and the largest values under the largest batch setting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

mod common;

use common::{paxbench, text};
use serde_json::Value;

/// Runs `yaml` with `--json` and returns its scenarios.
fn run(dir: &Path, yaml: &str) -> Vec<Value> {
    let config = dir.join("config.yaml");
    std::fs::write(&config, yaml).unwrap();
    let results = dir.join("results");
    let output = paxbench(&[
        "run",
        config.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--json",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    summary["scenarios"].as_array().unwrap().clone()
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn both_protocols_run_side_by_side_on_a_spawned_quic_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = run(
        dir.path(),
        "name: protocols\ntarget:\n  kind: spawn\n  storage: memory\n  protocol: [vanilla, multi-paxos]\n  leader:\n    initial: 2\nworkload:\n  proposers: 16\n  keys: 1\n  warmup_s: 0.3\n  duration_s: 1.5\n",
    );
    let (vanilla, multi) = (&scenarios[0], &scenarios[1]);
    assert!(vanilla["leader"].is_null());
    assert!(
        n(&vanilla["outcomes"]["won"]) > 0,
        "{}",
        vanilla["outcomes"]
    );
    // The leader gives every request its own slot: no race is lost, nobody duels.
    let o = &multi["outcomes"];
    assert!(n(&o["won"]) > 100, "{o}");
    assert_eq!(n(&o["lost_race"]), 0, "{o}");
    let leader = &multi["leader"];
    assert_eq!(n(&leader["elected"]), 1, "{leader}");
    assert_eq!(n(&leader["duels"]), 0, "{leader}");
    assert!(n(&leader["decided"]) >= n(&o["won"]), "{leader}");
    assert_eq!(n(&multi["safety"]["violations"]), 0);
    // Node 2 leads: it sends the batches and the answers, the others only acknowledge.
    let load = multi["node_load"].as_array().unwrap();
    assert_eq!(load.len(), 3);
    let out = |i: usize| load[i]["messages_out"].as_f64().unwrap();
    assert!(out(1) > out(0) && out(1) > out(2), "{load:?}");
}

#[test]
fn a_killed_leader_is_replaced_and_its_store_audits_clean_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = run(
        dir.path(),
        "name: failover\ntarget:\n  kind: spawn\n  storage: wal\n  protocol: multi-paxos\n  leader:\n    initial: 1\n    election_timeout_ms: 60\nworkload:\n  proposers: 8\n  keys: 50\n  warmup_s: 0.3\n  duration_s: 3\nproposer:\n  phase1_timeout_ms: 50\n  phase2_timeout_ms: 50\n  max_attempts: 1000\nfaults:\n  - {at_s: 0.8, kill-leader: {down_s: 0.6}}\n",
    );
    let s = &scenarios[0];
    assert_eq!(n(&s["safety"]["violations"]), 0);
    let leader = &s["leader"];
    assert!(
        n(&leader["elected"]) >= 2,
        "another node took over: {leader}"
    );
    let recoveries = s["reliability"]["recoveries"].as_array().unwrap();
    assert_eq!(recoveries.len(), 1, "{recoveries:?}");
    assert!(
        recoveries[0]["first_decision_ms"].as_f64().is_some(),
        "decisions resumed after the kill: {recoveries:?}"
    );
    // The killed leader came back on its store; every reply the clients saw is still held by
    // a quorum of stores, and every persisted chosen prefix is backed by them.
    let audit = &s["reliability"]["audit"];
    assert_eq!(n(&audit["stores"]), 3, "{audit}");
    assert!(n(&audit["chosen_checked"]) > 100, "{audit}");
    assert_eq!(n(&audit["chosen_lost"]), 0, "{audit}");
    assert_eq!(n(&audit["violations"]), 0, "{audit}");
    assert!(n(&audit["prefix_checked"]) > 0, "{audit}");
    assert_eq!(n(&audit["prefix_unbacked"]), 0, "{audit}");
}

#[test]
fn five_nodes_decide_with_a_phase1_quorum_of_four_and_a_phase2_quorum_of_two() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = run(
        dir.path(),
        "name: fpaxos\ntarget:\n  kind: spawn\n  nodes: 5\n  storage: wal\n  protocol: multi-paxos\n  quorum: {phase1: 4, phase2: 2}\n  leader:\n    initial: 3\n    thrifty: true\n    election_timeout_ms: 500\nworkload:\n  proposers: 8\n  keys: 20\n  warmup_s: 0.3\n  duration_s: 1.5\n",
    );
    let s = &scenarios[0];
    assert_eq!(n(&s["safety"]["violations"]), 0);
    assert!(n(&s["outcomes"]["won"]) > 100, "{}", s["outcomes"]);
    // One election: the idle followers hear heartbeats although they acknowledge nothing. The
    // timeout is five times the default so that a loaded CI machine cannot starve them.
    assert_eq!(n(&s["leader"]["elected"]), 1, "{}", s["leader"]);
    // Thrifty phase 2 goes to one other node: two of the four followers acknowledge nothing.
    let load = s["node_load"].as_array().unwrap();
    let idle = load
        .iter()
        .filter(|l| l["messages_out"].as_f64().unwrap() < 0.05)
        .count();
    assert!(idle >= 2, "{load:?}");
    // Chosen by two ACCEPTEDs: the audit counts a value held by two stores as chosen.
    let audit = &s["reliability"]["audit"];
    assert!(n(&audit["chosen_checked"]) > 100, "{audit}");
    assert_eq!(n(&audit["chosen_lost"]), 0, "{audit}");
    assert_eq!(n(&audit["violations"]), 0, "{audit}");
}

#[test]
fn the_largest_values_with_the_largest_batch_setting_are_decided_on_the_log() {
    // The largest value a config may ask for (512 KiB) and a batch count with no practical
    // bound: batches are capped by bytes as well, so no frame passes the nodes' limit and no
    // record fails the log.
    let dir = tempfile::tempdir().unwrap();
    let scenarios = run(
        dir.path(),
        "name: large\ntarget:\n  kind: spawn\n  storage: wal\n  protocol: multi-paxos\n  leader:\n    initial: 1\n    batch: 4294967295\nworkload:\n  proposers: 16\n  keys: 4\n  value_size: 524288\n  warmup_s: 0.3\n  duration_s: 1.5\n",
    );
    let s = &scenarios[0];
    assert_eq!(n(&s["safety"]["violations"]), 0);
    assert!(n(&s["outcomes"]["won"]) > 10, "{}", s["outcomes"]);
    // Not how many elections: under load a follower may rightly time out behind large writes.
    assert!(n(&s["leader"]["elected"]) >= 1, "{}", s["leader"]);
    let audit = &s["reliability"]["audit"];
    assert_eq!(n(&audit["chosen_lost"]), 0, "{audit}");
    assert_eq!(n(&audit["violations"]), 0, "{audit}");
}
