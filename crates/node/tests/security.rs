//! The security promises: private keys are written for their owner only, no key material
//! reaches the logs even at trace level, and admin commands come only from the cluster's
//! client certificates (see also `cluster.rs` for strangers and node certificates, and the
//! TCP refusal).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::{Outcome, TestClient, TestCluster, nodes, ops};
use paxbench_core::proposer::ProposerConfig;
use paxbench_node::StorageMode;

/// Every run of 16 or more base64 characters of each private key's PEM body.
fn key_fragments(certs: &Path) -> Vec<String> {
    let mut fragments = Vec::new();
    for entry in std::fs::read_dir(certs).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "key") {
            let pem = std::fs::read_to_string(&path).unwrap();
            for line in pem.lines().filter(|l| !l.starts_with("-----")) {
                for chunk in line.as_bytes().chunks(16).filter(|c| c.len() == 16) {
                    fragments.push(String::from_utf8(chunk.to_vec()).unwrap());
                }
            }
        }
    }
    fragments
}

#[test]
fn keys_are_private_to_their_owner_and_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(common::NODE_BIN)
        .args([
            "certs",
            "--out",
            dir.path().to_str().unwrap(),
            "--nodes",
            "3",
            "--clients",
            "1",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let mut keys = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        if path.extension().is_some_and(|e| e == "key") {
            keys += 1;
            assert_eq!(mode, 0o600, "{}", path.display());
        } else {
            assert_eq!(mode & 0o022, 0, "{} is writable by others", path.display());
        }
    }
    assert_eq!(
        keys,
        1 + 3 + 1 + 1,
        "the CA, three nodes, one client and one admin"
    );

    // Trace-level logs of a cluster that handshakes, decides, restarts and shuts down.
    let mut cluster = TestCluster::start_logging(3, nodes(StorageMode::Wal), "trace");
    let mut client = TestClient::connect(&cluster, &cluster.certs(), 0);
    client.wait_all_ready(&cluster);
    let config = ProposerConfig::new(3);
    let proposers = vec![config.clone(); 2];
    let outcomes = client.drive(
        &proposers,
        &ops(0, 10, "s"),
        Duration::from_secs(30),
        |_| {},
    );
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Chosen(_))));
    cluster.kill(2);
    cluster.spawn(2, &[]);
    assert!(client.wait_ready(2, Duration::from_secs(20)));
    for id in 1..=3 {
        assert!(cluster.terminate(id).success());
    }
    let fragments = key_fragments(&cluster.certs());
    assert!(fragments.len() > 20);
    for id in 1..=3 {
        let log = cluster.log(id);
        assert!(
            log.contains("TRACE") || log.contains("DEBUG"),
            "trace logging was on"
        );
        for fragment in &fragments {
            assert!(
                !log.contains(fragment.as_str()),
                "node {id} logged key material"
            );
        }
        assert!(
            !log.contains("PRIVATE KEY"),
            "node {id} logged a PEM header"
        );
    }
}
