//! Disk faults on a real durable cluster: a node whose write or fsync fails stops replying at
//! once and says so, never sends a reply its store does not back, and serves again once it is
//! restarted on a healthy disk. By default such a node exits, non-zero and saying why, and a
//! leader's place is taken by another.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Outcome, TestClient, TestCluster, multi_paxos, nodes, ops, writes};
use paxbench_core::proposer::ProposerConfig;
use paxbench_node::{NodeSettings, StorageFailure, StorageMode};
use paxbench_quic::{AdminCommand, AdminReply, DiskFault};

fn proposer_config() -> ProposerConfig {
    ProposerConfig {
        max_attempts: 50,
        ..ProposerConfig::new(3)
    }
}

/// Drives one operation on each of `count` fresh keys from `first`; every one must be decided.
fn decide_all(
    client: &mut TestClient,
    proposers: &[ProposerConfig],
    first: u64,
    count: u64,
    tag: &str,
) {
    let outcomes = client.drive(
        proposers,
        &ops(first, count, tag),
        Duration::from_secs(30),
        |_| {},
    );
    assert!(
        outcomes.iter().all(|o| matches!(o, Outcome::Chosen(_))),
        "{tag}: {outcomes:?}"
    );
}

fn a_failing_disk_silences_the_node_until_it_restarts(fault: DiskFault, storage: StorageMode) {
    let settings = NodeSettings {
        on_storage_failure: Some(StorageFailure::Stay),
        ..nodes(storage)
    };
    let mut cluster = TestCluster::start(3, settings);
    // Disk faults are admin commands; an admin proposes as its client number too.
    let mut client = TestClient::connect_admin(&cluster, 0);
    client.wait_all_ready(&cluster);
    let config = proposer_config();
    let proposers = vec![config.clone(); 4];
    decide_all(&mut client, &proposers, 0, 20, "before");
    let (ready, said) = cluster.ready_probe(1, Duration::from_secs(5));
    assert!(ready && said.contains("node 1 is ready"), "{said}");

    assert_eq!(
        client.admin(1, AdminCommand::SetDiskFault(fault)),
        Some(AdminReply::FaultsSet)
    );
    // Nodes 2 and 3 are a majority: the cluster decides without node 1. A batch node 1 had
    // already made durable when the fault came may still be answered; nothing after it.
    decide_all(&mut client, &proposers, 20, 20, "during");
    let stats = client.stats(1);
    assert!(stats.storage_failed, "{stats:?}");
    decide_all(&mut client, &proposers, 40, 20, "while failed");
    assert_eq!(
        client.stats(1).paxos_out,
        stats.paxos_out,
        "a node whose commit failed sends no Paxos reply"
    );
    assert!(
        !client.wait_ready(1, Duration::from_millis(500)),
        "a node whose storage failed answers no ping"
    );
    // Its readiness probe fails with it, so Kubernetes takes it out of its Service.
    let (ready, said) = cluster.ready_probe(1, Duration::from_millis(500));
    assert!(!ready && said.contains("node 1 at"), "{said}");
    assert!(cluster.ready_probe(2, Duration::from_secs(5)).0);
    let log = cluster.log(1);
    assert!(log.contains("STORAGE FAILED"), "{log}");
    assert!(log.contains("injected disk fault"), "{log}");

    // Restarted, node 1 has a healthy disk again. With node 2 down, nothing is decided unless
    // node 1 takes part.
    cluster.kill(1);
    cluster.spawn(1, &[]);
    cluster.kill(2);
    assert!(client.wait_ready(1, Duration::from_secs(20)));
    decide_all(&mut client, &proposers, 60, 20, "after");
    assert!(!client.stats(1).storage_failed);
    assert!(
        client.checker.violations().is_empty(),
        "{:?}",
        client.checker.violations()
    );

    cluster.spawn(2, &[]);
    assert!(client.wait_ready(2, Duration::from_secs(20)));
    for id in 1..=3 {
        assert!(cluster.terminate(id).success());
    }
    // Every PROMISE and ACCEPTED any node sent, before, during and after the fault, is in its
    // store; every decision is held by a majority of the stores.
    let report = cluster.audit(&mut client);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.chosen_checked, 80);
}

#[test]
fn a_failed_write_silences_a_wal_node_until_it_restarts() {
    a_failing_disk_silences_the_node_until_it_restarts(DiskFault::FailWrite, StorageMode::Wal);
}

#[test]
fn a_failed_fsync_silences_a_wal_node_until_it_restarts() {
    a_failing_disk_silences_the_node_until_it_restarts(DiskFault::FailFsync, StorageMode::Wal);
}

#[test]
fn a_failed_write_silences_a_redb_node_until_it_restarts() {
    a_failing_disk_silences_the_node_until_it_restarts(DiskFault::FailWrite, StorageMode::Redb);
}

#[test]
fn a_failed_fsync_silences_a_redb_node_until_it_restarts() {
    a_failing_disk_silences_the_node_until_it_restarts(DiskFault::FailFsync, StorageMode::Redb);
}

#[test]
fn a_leader_whose_disk_fails_exits_saying_why_and_another_node_leads() {
    let mut cluster = TestCluster::start(3, multi_paxos(StorageMode::Wal));
    let mut admin = TestClient::connect_admin(&cluster, 0);
    admin.wait_all_ready(&cluster);
    let before = writes(40, 4, "before");
    assert_eq!(
        admin.drive_clients(4, &before, Duration::from_secs(30), |_| {}),
        40
    );
    assert!(
        admin.stats(1).leading.is_some(),
        "node 1 is the initial leader"
    );
    assert_eq!(
        admin.admin(1, AdminCommand::SetDiskFault(DiskFault::FailFsync)),
        Some(AdminReply::FaultsSet)
    );
    // Its next commit fails; the node exits and the others elect a leader that can persist.
    let after = writes(40, 4, "after");
    assert_eq!(
        admin.drive_clients(4, &after, Duration::from_secs(60), |_| {}),
        40
    );
    let status = cluster
        .wait_exit(1, Duration::from_secs(10))
        .expect("node 1 exited");
    assert!(!status.success(), "{status:?}");
    let log = cluster.log(1);
    assert!(
        log.contains("STORAGE FAILED") && log.contains("Exiting"),
        "{log}"
    );
    let leaders: Vec<u32> = (2..=3)
        .filter(|&id| admin.stats(id).leading.is_some())
        .collect();
    assert_eq!(leaders.len(), 1, "{leaders:?}");
    assert!(admin.checker.violations().is_empty());
}
