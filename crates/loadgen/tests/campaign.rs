//! The short fault campaign, in CI: every `bench-configs/faults-*.yaml` at 0.5× its times on
//! spawned durable QUIC clusters of 3 and 5 nodes, each audited, then the Reliability table over
//! all of them; plus, where root and iproute2 allow, the network-namespace cluster with netem.
//! Nothing may be violated or lost, and every spawned run must have been audited.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use paxbench_loadgen::report::summary::Summary;

const PAXBENCH: &str = env!("CARGO_BIN_EXE_paxbench");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_short_fault_campaign_loses_nothing() {
    let out = tempfile::tempdir().unwrap();
    let mut configs: Vec<PathBuf> = std::fs::read_dir(repo().join("bench-configs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("faults-"))
        })
        .collect();
    configs.sort();
    assert!(configs.len() >= 7, "{configs:?}");
    let mut dirs = Vec::new();
    for config in &configs {
        let name = config.file_stem().unwrap().to_string_lossy().to_string();
        let dir = out.path().join(&name);
        let output = Command::new(PAXBENCH)
            .arg("run")
            .arg(config)
            .args([
                "--time-scale",
                "0.5",
                "--no-progress",
                "--no-charts",
                "--out",
            ])
            .arg(&dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{name}: {stderr}");
        assert!(
            stderr.contains("store audit:"),
            "{name} was not audited: {stderr}"
        );
        // Every durable node measured its disk floor as it started, and the summary says so.
        let summary = Summary::load(&dir).unwrap();
        for scenario in &summary.scenarios {
            assert!(!scenario.nodes.is_empty(), "{name}: no node counters");
            for node in &scenario.nodes {
                assert!(
                    node.disk_floor_p50_us.is_some_and(|p50| p50 > 0),
                    "{name}: node {} has no disk floor",
                    node.node
                );
            }
        }
        dirs.push(dir);
    }

    let netns = out.path().join("netns");
    let script = Command::new(repo().join("scripts/netns-cluster.sh"))
        .arg(&netns)
        .arg("0.5")
        .env("PAXBENCH", PAXBENCH)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&script.stdout);
    match script.status.code() {
        Some(0) => {
            assert!(
                said.contains("0 chosen values lost")
                    && said.contains("0 acknowledged states lost"),
                "{said}"
            );
            dirs.push(netns);
        }
        Some(77) => eprintln!(
            "netns scenario {}",
            said.lines().last().unwrap_or("skipped")
        ),
        _ => panic!(
            "netns scenario failed: {said}{}",
            String::from_utf8_lossy(&script.stderr)
        ),
    }

    let table = Command::new(PAXBENCH)
        .arg("reliability")
        .args(&dirs)
        .args(["--fuzz-stats", "/nonexistent"])
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.status.success(),
        "{md}{}",
        String::from_utf8_lossy(&table.stderr)
    );
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| faults-")).collect();
    assert!(rows.len() >= configs.len(), "{md}");
    for row in rows.iter().filter(|r| !r.starts_with("| faults-netns")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // | name | nodes | faults | decisions | violations | acks lost | chosen lost | recovery |
        assert!(
            cells[3].parse::<u64>().unwrap() > 0,
            "no fault injected: {row}"
        );
        assert!(
            cells[4].parse::<u64>().unwrap() > 0,
            "nothing decided: {row}"
        );
        assert_eq!((cells[5], cells[6], cells[7]), ("0", "0", "0"), "{row}");
        assert!(
            !row.contains("never"),
            "a heal or restart never recovered: {row}"
        );
    }
}
