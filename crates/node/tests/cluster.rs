//! Three node processes on 127.0.0.1 and a test proposer driving decisions through QUIC:
//! crashes (kill -9, a majority, a crash between persist and reply), strangers and bad frames,
//! and the durable stores checked against every reply the nodes sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::{Outcome, TestClient, TestCluster, decided, nodes, ops};
use paxbench_core::acceptor::RejectMode;
use paxbench_core::message::{Message, Prepare};
use paxbench_core::proposer::ProposerConfig;
use paxbench_core::{Instance, NodeId, ProposalId, ProposerId};
use paxbench_node::{LearnerFanout, NodeSettings, StorageMode};
use paxbench_quic::{
    AdminCommand, AdminReply, DiskFault, Envelope, PeerName, TlsFiles, Transport, TransportKind,
};

fn proposer_config(max_attempts: u32) -> ProposerConfig {
    ProposerConfig {
        max_attempts,
        ..ProposerConfig::new(3)
    }
}

#[test]
fn a_node_killed_mid_run_loses_nothing_and_rejoins_on_wal() {
    a_node_killed_mid_run_loses_nothing_and_rejoins(StorageMode::Wal);
}

#[test]
fn a_node_killed_mid_run_loses_nothing_and_rejoins_on_redb() {
    a_node_killed_mid_run_loses_nothing_and_rejoins(StorageMode::Redb);
}

fn a_node_killed_mid_run_loses_nothing_and_rejoins(storage: StorageMode) {
    let mut cluster = TestCluster::start(3, nodes(storage));
    let mut client = TestClient::connect(&cluster, &cluster.certs(), 0);
    client.wait_all_ready(&cluster);
    let config = proposer_config(200);
    let proposers = vec![config.clone(); 8];
    let work = ops(0, 120, "run");
    let cluster_ref = &mut cluster;
    let outcomes_before = client.drive(&proposers, &work, Duration::from_secs(90), |done| {
        if done == 40 {
            cluster_ref.kill(2);
        }
        if done == 80 {
            cluster_ref.spawn(2, &[]);
        }
    });
    assert!(
        outcomes_before
            .iter()
            .all(|o| matches!(o, Outcome::Chosen(_))),
        "{outcomes_before:?}"
    );
    assert!(client.checker.violations().is_empty());
    // The restarted node serves again and takes part in new decisions.
    assert!(client.wait_ready(2, Duration::from_secs(20)));
    let before = client.stats(2).paxos_in;
    let more = ops(1000, 20, "after");
    let outcomes = client.drive(&proposers, &more, Duration::from_secs(30), |_| {});
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Chosen(_))));
    assert!(
        client.stats(2).paxos_in > before,
        "the restarted node took part"
    );
    // No decision changed across the crash.
    client.verify_decisions(&decided(&work, &outcomes_before), &config);
}

#[test]
fn without_a_majority_nothing_is_decided_until_it_returns() {
    let mut cluster = TestCluster::start(3, nodes(StorageMode::Wal));
    let mut client = TestClient::connect(&cluster, &cluster.certs(), 0);
    client.wait_all_ready(&cluster);
    cluster.kill(2);
    cluster.kill(3);
    let config = proposer_config(4);
    let proposers = vec![config.clone(); 2];
    let work = ops(0, 4, "minority");
    let outcomes = client.drive(&proposers, &work, Duration::from_secs(30), |_| {});
    assert_eq!(outcomes, vec![Outcome::GaveUp; 4]);
    assert!(client.checker.violations().is_empty());
    cluster.spawn(2, &[]);
    cluster.spawn(3, &[]);
    client.wait_all_ready(&cluster);
    let config = proposer_config(100);
    let proposers = vec![config.clone(); 2];
    let outcomes = client.drive(&proposers, &work, Duration::from_secs(60), |_| {});
    assert!(
        outcomes.iter().all(|o| matches!(o, Outcome::Chosen(_))),
        "{outcomes:?}"
    );
    client.verify_decisions(&decided(&work, &outcomes), &config);
}

#[test]
fn a_promise_persisted_just_before_a_crash_survives_the_restart_on_wal() {
    a_promise_persisted_just_before_a_crash_survives_the_restart(StorageMode::Wal);
}

#[test]
fn a_promise_persisted_just_before_a_crash_survives_the_restart_on_redb() {
    a_promise_persisted_just_before_a_crash_survives_the_restart(StorageMode::Redb);
}

fn a_promise_persisted_just_before_a_crash_survives_the_restart(storage: StorageMode) {
    let mut cluster = TestCluster::start(
        3,
        NodeSettings {
            reject_mode: Some(RejectMode::Nack),
            ..nodes(storage)
        },
    );
    cluster.kill(1);
    cluster.spawn(1, &["--crash-after-persisting", "1"]);
    let mut client = TestClient::connect(&cluster, &cluster.certs(), 0);
    for id in 1..=3 {
        assert!(
            client.wait_ready(id, Duration::from_secs(20)),
            "node {id}: {}",
            cluster.log(id)
        );
    }
    let instance = Instance::new(7, 0);
    let promised = ProposalId::new(50, 3);
    let prepare = |id| {
        Envelope::Paxos(Message::Prepare(Prepare {
            instance,
            id,
            from: ProposerId(3),
        }))
    };
    client.links[0].send(prepare(promised));
    // Receiving also drives the client's runtime, which sends the PREPARE.
    assert_eq!(
        client.recv_paxos(Duration::from_secs(1)),
        None,
        "node 1 replied before it crashed"
    );
    let status = cluster
        .wait_exit(1, Duration::from_secs(10))
        .expect("node 1 hit its crash point");
    assert!(!status.success());
    assert_eq!(cluster.stored(1)[&instance].state.promised, promised);

    cluster.spawn(1, &[]);
    assert!(client.wait_ready(1, Duration::from_secs(20)));
    client.links[0].send(prepare(ProposalId::new(49, 9)));
    let reply = client
        .recv_paxos(Duration::from_secs(5))
        .expect("a reply after restart");
    match reply {
        Message::Nack(nack) => assert_eq!(nack.promised, promised, "the promise survived"),
        other => panic!("expected a NACK, got {other:?}"),
    }
}

#[test]
fn strangers_and_bad_frames_leave_the_cluster_serving() {
    let cluster = TestCluster::start(3, nodes(StorageMode::Memory));
    let mut client = TestClient::connect(&cluster, &cluster.certs(), 0);
    client.wait_all_ready(&cluster);

    // A client whose certificate another CA signed gets no answer and is logged.
    let stranger_dir = tempfile::tempdir().unwrap();
    paxbench_quic::generate_cluster_certs(stranger_dir.path(), &paxbench_quic::CertPlan::new(0, 1))
        .unwrap();
    let mut stranger = TestClient::connect(&cluster, stranger_dir.path(), 0);
    assert!(
        !stranger.wait_ready(1, Duration::from_secs(2)),
        "a stranger was answered"
    );
    assert!(client.stats(1).transport.refused_peers >= 1);
    assert_eq!(
        client.stats(1).disk_floor_us.count,
        0,
        "a memory node keeps nothing on disk, so it has no disk floor"
    );
    assert!(
        cluster.log(1).contains("refused peer"),
        "{}",
        cluster.log(1)
    );

    // A node certificate may neither read stats nor change faults or the disk.
    let node_files = TlsFiles::in_dir(&cluster.certs(), PeerName::Node(NodeId(3)));
    let mut impostor = TestClient::connect_as(&cluster, &node_files, PeerName::Node(NodeId(3)));
    assert!(impostor.wait_ready(1, Duration::from_secs(10)));
    for command in [
        AdminCommand::Stats,
        AdminCommand::SetFaults(Box::default()),
        AdminCommand::SetDiskFault(DiskFault::FailWrite),
    ] {
        let reply = impostor.admin(1, command);
        assert!(
            matches!(reply, Some(AdminReply::Refused { .. })),
            "{reply:?}"
        );
    }
    // A client may read counters but not change faults or the disk; an admin may.
    assert!(!client.stats(1).storage_failed);
    for command in [
        AdminCommand::SetFaults(Box::default()),
        AdminCommand::SetDiskFault(DiskFault::FailWrite),
    ] {
        let reply = client.admin(1, command);
        assert!(
            matches!(reply, Some(AdminReply::Refused { .. })),
            "{reply:?}"
        );
    }
    assert!(!client.stats(1).storage_failed);
    let mut admin = TestClient::connect_admin(&cluster, 0);
    let reply = admin.admin(1, AdminCommand::SetFaults(Box::default()));
    assert_eq!(reply, Some(AdminReply::FaultsSet));
    let stats = client.stats(1);
    assert_eq!(
        stats.refused_of("set-disk-fault", "client"),
        1,
        "{:?}",
        stats.refused
    );
    assert_eq!(stats.refused_of("stats", "node"), 1, "{:?}", stats.refused);

    // Garbage, a truncated frame and an oversized frame, each on its own stream.
    let addr = cluster.nodes()[0].addr;
    let transport = client.endpoint.transport().clone();
    let mut frame = Vec::new();
    paxbench_quic::frame::encode_frame(&Envelope::Ping { nonce: 1 }, &mut frame).unwrap();
    let payloads: Vec<Vec<u8>> = vec![
        vec![
            9, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
        frame[..frame.len() - 1].to_vec(),
        u32::MAX.to_le_bytes().to_vec(),
    ];
    client.runtime.block_on(async {
        for payload in &payloads {
            let (_reader, mut writer) = transport
                .open(addr, PeerName::Node(NodeId(1)))
                .await
                .unwrap();
            writer.write_all(payload).await.unwrap();
            writer.finish().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    });
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"\x00garbage that is not QUIC at all", addr)
        .unwrap();
    assert!(
        client.stats(1).transport.malformed_frames >= 3,
        "{:?}",
        client.stats(1)
    );

    let config = proposer_config(50);
    let proposers = vec![config.clone(); 4];
    let work = ops(0, 40, "after-garbage");
    let outcomes = client.drive(&proposers, &work, Duration::from_secs(30), |_| {});
    assert!(
        outcomes.iter().all(|o| matches!(o, Outcome::Chosen(_))),
        "{outcomes:?}"
    );
}

#[test]
fn durable_stores_hold_every_acknowledged_record_after_a_clean_shutdown_on_wal() {
    durable_stores_hold_every_acknowledged_record_after_a_clean_shutdown(StorageMode::Wal);
}

#[test]
fn durable_stores_hold_every_acknowledged_record_after_a_clean_shutdown_on_redb() {
    durable_stores_hold_every_acknowledged_record_after_a_clean_shutdown(StorageMode::Redb);
}

fn durable_stores_hold_every_acknowledged_record_after_a_clean_shutdown(storage: StorageMode) {
    let mut cluster = TestCluster::start(3, nodes(storage));
    let mut client = TestClient::connect(&cluster, &cluster.certs(), 0);
    client.wait_all_ready(&cluster);
    let config = proposer_config(100);
    // Two proposers per key range collide, so the stores see promises, re-promises and
    // adopted values, not just first-time accepts.
    let proposers = vec![config.clone(); 6];
    let mut work = ops(0, 60, "a");
    work.extend(ops(0, 60, "b"));
    let outcomes = client.drive(&proposers, &work, Duration::from_secs(60), |_| {});
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Chosen(_))));
    assert!(client.checker.violations().is_empty());
    // Learner fan-out: every node learned every decision.
    for id in 1..=3 {
        let stats = client.stats(id);
        assert_eq!(stats.chosen, 60, "node {id}");
        // Each durable node measured its own append + fdatasync as it started.
        let floor = stats.disk_floor_us;
        assert!(
            floor.count >= 20 && floor.p50 > 0 && floor.p50 <= floor.p99,
            "node {id}: {floor:?}"
        );
    }
    for id in 1..=3 {
        let status = cluster.terminate(id);
        assert!(status.success(), "node {id} exited with {status}");
        assert!(cluster.log(id).contains("shutting down"));
    }
    assert!(client.acked() > 0);
    let report = cluster.audit(&mut client);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.stores, 3);
    assert_eq!(report.acks_checked, client.acked());
    assert_eq!(report.chosen_checked, 60);
    assert_eq!(report.chosen_in_stores, 60);
}

#[test]
fn tcp_and_memory_without_fanout_decide_too() {
    let mut cluster = TestCluster::start(
        3,
        NodeSettings {
            transport: Some(TransportKind::Tcp),
            learner_fanout: Some(LearnerFanout::Proposer),
            ..nodes(StorageMode::Memory)
        },
    );
    let mut client = TestClient::connect_tcp(&cluster, 0);
    client.wait_all_ready(&cluster);
    let config = proposer_config(50);
    let proposers = vec![config.clone(); 4];
    let work = ops(0, 40, "tcp");
    let outcomes = client.drive(&proposers, &work, Duration::from_secs(30), |_| {});
    assert!(
        outcomes.iter().all(|o| matches!(o, Outcome::Chosen(_))),
        "{outcomes:?}"
    );
    // Plain TCP does not authenticate peers, so no admin command is accepted over it.
    match client.admin(1, AdminCommand::Stats) {
        Some(AdminReply::Refused { reason }) => assert!(reason.contains("QUIC"), "{reason}"),
        other => panic!("admin over TCP must be refused, got {other:?}"),
    }
    assert!(cluster.terminate(1).success());
    // The final stats line, logged at shutdown.
    let log = cluster.log(1);
    assert!(
        log.contains("chosen=0 "),
        "no fan-out: the learner hears nothing\n{log}"
    );
    // Group commit writes an instance once per batch: a PREPARE and an ACCEPT of one instance
    // that land in the same batch make one record.
    let records: u64 = log
        .rsplit("records=")
        .next()
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a records= field in the final stats line");
    assert!(
        (40..=80).contains(&records),
        "between one record per instance and one per request: {records}\n{log}"
    );
    assert!(
        log.contains("paxos_out=80 "),
        "one reply per request\n{log}"
    );
}

#[test]
fn a_bad_config_names_the_file_line_and_field_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.yaml");
    std::fs::write(&path, "id: 1\nlisten: 127.0.0.1:7001\nstorage: floppy\n").unwrap();
    let output = std::process::Command::new(common::NODE_BIN)
        .args(["run", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("node.yaml") && stderr.contains("line 3"),
        "{stderr}"
    );
    assert!(stderr.contains("floppy"), "{stderr}");
}

#[test]
fn wal_nodes_hold_a_bounded_number_of_states_and_read_forgotten_ones_back() {
    const CACHE: u64 = 64;
    let mut cluster = TestCluster::start(
        3,
        NodeSettings {
            cache_instances: Some(CACHE as usize),
            ..nodes(StorageMode::Wal)
        },
    );
    let mut client = TestClient::connect(&cluster, &cluster.certs(), 0);
    client.wait_all_ready(&cluster);
    let config = proposer_config(100);
    let proposers = vec![config.clone(); 8];
    let first = ops(0, 1500, "first");
    let outcomes = client.drive(&proposers, &first, Duration::from_secs(120), |_| {});
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Chosen(_))));
    // A checkpoint follows within its interval (1 s); a node forgets on its next turn, and a
    // stats request is one.
    for id in 1..=3 {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut stats = client.stats(id);
        while stats.held_instances != CACHE && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            stats = client.stats(id);
        }
        assert!(stats.checkpoints > 0, "node {id}: {stats:?}");
        assert_eq!(stats.held_instances, CACHE, "node {id}: {stats:?}");
        assert!(
            stats.evicted >= 1500 - stats.most_held,
            "node {id} forgot what it held beyond its cache: {stats:?}"
        );
    }
    // The oldest instances were forgotten long ago: proposing to them again must find the
    // values chosen then, read back from the checkpoint.
    let again = ops(0, 40, "again");
    let outcomes_again = client.drive(&proposers, &again, Duration::from_secs(60), |_| {});
    assert_eq!(outcomes_again, outcomes[..40].to_vec());
    assert!(client.checker.violations().is_empty());
    let reads: u64 = (1..=3).map(|id| client.stats(id).store_reads).sum();
    assert!(reads >= 40, "{reads} states read back");
    // Restarted, a node reads only the log after its last checkpoint: the cache bound holds.
    let status = cluster.terminate(1);
    assert!(status.success());
    cluster.spawn(1, &[]);
    assert!(client.wait_ready(1, Duration::from_secs(20)));
    assert!(
        client.stats(1).held_instances <= CACHE,
        "{:?}",
        client.stats(1)
    );
    client.verify_decisions(&decided(&first[..40], &outcomes[..40]), &config);
}
