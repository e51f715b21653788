//! Hostile peers against real node processes: every message kind from every identity (a
//! client, an admin, a member whose `from` lies, a node the cluster does not have), the forged
//! PROMISE-ALL quorum, the ballot at `u64::MAX` with a restart after it, the slot near 2^64 and
//! the forged chosen prefix. Each is refused and counted, changes nothing, and the cluster
//! keeps deciding, before and after a restart, with stores that audit clean. Over plain TCP a
//! peer that cannot prove its name with the cluster's secret is refused at the handshake.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{TestClient, TestCluster, multi_paxos, nodes, writes};
use paxbench_core::message::*;
use paxbench_core::{Instance, NodeId, ProposalId, ProposerId};
use paxbench_node::StorageMode;
use paxbench_quic::{Envelope, PeerName, TcpAuth, Transport};

const TOP: ProposalId = ProposalId::new(u64::MAX, 7);

/// One forged message of every kind, each naming `liar` as its sender where it names a node,
/// and proposer `proposer` where it names one.
fn forgeries(liar: NodeId, proposer: ProposerId) -> Vec<Message> {
    let v = Bytes::from_static(b"forged");
    let chosen = Instance::new(0, 0);
    let far = Instance::new(0, u64::MAX - 5);
    let high = ProposalId::new(1 << 40, liar.0);
    vec![
        // The reproduced one: a global promise at the top of the range.
        PrepareAll {
            ballot: TOP,
            from: liar,
            known: vec![],
        }
        .into(),
        PrepareAll {
            ballot: high,
            from: liar,
            known: vec![],
        }
        .into(),
        // A quorum's worth of promises from made-up nodes.
        PromiseAll {
            ballot: high,
            from: NodeId(7),
            accepted: vec![],
            high_slots: vec![(0, 1 << 30)],
            chosen_through: vec![],
            answers: paxbench_core::message::known_digest(&[]),
        }
        .into(),
        // A value for a slot that was already chosen, with its commit notice.
        AcceptBatch {
            ballot: high,
            from: liar,
            entries: vec![(chosen, v.clone())],
            commits: vec![chosen],
        }
        .into(),
        AcceptedBatch {
            ballot: high,
            from: liar,
            instances: vec![chosen],
        }
        .into(),
        // The forged chosen prefix.
        Heartbeat {
            ballot: high,
            from: liar,
            commits: vec![],
            chosen_through: vec![(0, 1 << 40)],
        }
        .into(),
        Refused {
            ballot: high,
            promised: TOP,
            from: liar,
        }
        .into(),
        Accepted {
            instance: chosen,
            id: high,
            value: v.clone(),
            from: liar,
        }
        .into(),
        // The slot near 2^64, through the vanilla kinds.
        Prepare {
            instance: far,
            id: high,
            from: proposer,
        }
        .into(),
        AcceptRequest {
            instance: far,
            id: high,
            value: v.clone(),
            from: proposer,
        }
        .into(),
        // Answers no node takes.
        Promise {
            instance: chosen,
            id: high,
            from: liar,
            accepted: None,
        }
        .into(),
        Nack {
            instance: chosen,
            id: high,
            promised: TOP,
            from: liar,
        }
        .into(),
        Redirect {
            key: 0,
            value: v.clone(),
            leader: Some(liar),
            from: liar,
        }
        .into(),
        ClientReply {
            instance: chosen,
            value: v.clone(),
            from: liar,
        }
        .into(),
        // A request "forwarded" by a node that did not forward it.
        ClientRequest {
            key: 0,
            value: v,
            client: proposer,
            via: Some(NodeId(2)),
        }
        .into(),
    ]
}

/// Sends every forgery to every node, then waits until node 1 has counted `at_least` more
/// refusals than `before` (or 10 s pass).
fn forge_all<T: Transport + std::fmt::Debug>(
    forger: &mut TestClient<T>,
    witness: &mut TestClient,
    liar: NodeId,
    proposer: ProposerId,
) -> u64 {
    let before = witness.stats(1).refused_total();
    let messages = forgeries(liar, proposer);
    for link in &forger.links {
        for message in &messages {
            link.send(Envelope::Paxos(message.clone()));
        }
    }
    let expected = messages.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // The forger's runtime runs only when driven: its links connect and write now.
        pause(forger, Duration::from_millis(50));
        let counted = witness.stats(1).refused_total() - before;
        if counted >= expected || Instant::now() > deadline {
            return counted;
        }
    }
}

/// How a forger connects.
type Connect = dyn Fn(&TestCluster) -> TestClient;

fn pause<T: Transport + std::fmt::Debug>(client: &mut TestClient<T>, pause: Duration) {
    client
        .runtime
        .block_on(async { tokio::time::sleep(pause).await });
}

#[test]
fn forged_messages_from_every_identity_are_refused_counted_and_change_nothing() {
    let mut cluster = TestCluster::start(3, multi_paxos(StorageMode::Wal));
    let mut client = TestClient::connect(&cluster, &cluster.certs(), 0);
    client.wait_all_ready(&cluster);
    let first = writes(50, 5, "before");
    assert_eq!(
        client.drive_clients(4, &first, Duration::from_secs(30), |_| {}),
        50
    );
    let ballot = client.stats(1).leading.expect("node 1 leads");

    // Another client, an admin, a member that lies about who it is, and a node the cluster
    // does not have (its certificate is signed by the cluster's CA).
    let other_client = |c: &TestCluster| TestClient::connect(c, &c.certs(), 1);
    let admin = |c: &TestCluster| TestClient::connect_admin(c, 0);
    let member = |c: &TestCluster| {
        let me = PeerName::Node(NodeId(3));
        TestClient::connect_as(c, &c.tls(me), me)
    };
    let stranger = |c: &TestCluster| {
        let me = PeerName::Node(NodeId(4));
        TestClient::connect_as(c, &c.tls(me), me)
    };
    let forgers: [(&str, &Connect, NodeId); 4] = [
        ("client", &other_client, NodeId(2)),
        ("admin", &admin, NodeId(2)),
        ("node", &member, NodeId(1)),
        ("node", &stranger, NodeId(4)),
    ];
    let mut forgeries_sent = 0;
    for (role, connect, liar) in forgers {
        let mut forger = connect(&cluster);
        // Proposer 0 belongs to client 0, not to the forger.
        let counted = forge_all(&mut forger, &mut client, liar, ProposerId(0));
        forgeries_sent += forgeries(liar, ProposerId(0)).len() as u64;
        let stats = client.stats(1);
        assert_eq!(
            counted,
            forgeries(liar, ProposerId(0)).len() as u64,
            "{role} {liar}: {:?}",
            stats.refused
        );
        assert!(
            stats.refused_of("prepare-all", role) >= 2,
            "{:?}",
            stats.refused
        );
    }
    for id in 1..=3 {
        let stats = client.stats(id);
        assert!(
            stats.refused_total() >= forgeries_sent,
            "node {id}: {:?}",
            stats.refused
        );
        assert!(!stats.storage_failed, "node {id}");
    }
    // Nothing changed: node 1 still leads under its ballot, and the cluster decides.
    assert_eq!(client.stats(1).leading, Some(ballot));
    let during = writes(50, 5, "after-forgeries");
    assert_eq!(
        client.drive_clients(4, &during, Duration::from_secs(30), |_| {}),
        50
    );

    // Restarted on their logs, the nodes hold no forged promise: they elect and decide.
    for id in 1..=3 {
        assert!(cluster.terminate(id).success(), "node {id}");
    }
    for id in 1..=3 {
        cluster.spawn(id, &[]);
    }
    client.wait_all_ready(&cluster);
    let after = writes(50, 5, "after-restart");
    assert_eq!(
        client.drive_clients(4, &after, Duration::from_secs(60), |_| {}),
        50
    );
    let leading = (1..=3)
        .filter_map(|id| client.stats(id).leading)
        .collect::<Vec<_>>();
    assert_eq!(leading.len(), 1, "{leading:?}");
    assert!(
        leading[0].high < 1 << 20,
        "a forged ballot leaked: {leading:?}"
    );
    assert!(client.checker.violations().is_empty());
    for id in 1..=3 {
        assert!(cluster.terminate(id).success(), "node {id}");
    }
    let report = cluster.audit(&mut client);
    assert!(report.is_clean(), "{report:?}");
}

#[test]
fn over_tcp_a_peer_is_held_to_the_role_it_names() {
    let mut cluster = TestCluster::start(
        3,
        paxbench_node::NodeSettings {
            transport: Some(paxbench_quic::TransportKind::Tcp),
            ..nodes(StorageMode::Memory)
        },
    );
    let mut client = TestClient::connect_tcp(&cluster, 0);
    client.wait_all_ready(&cluster);
    // A local process that claims to be node 2 without the cluster's secret, or with another
    // secret, is refused at the handshake.
    let wrong = tempfile::tempdir().unwrap();
    let wrong_secret = wrong.path().join(paxbench_quic::TCP_SECRET_FILE);
    paxbench_quic::TcpSecret::generate(&wrong_secret).unwrap();
    let impostors = [
        TcpAuth::Insecure,
        TcpAuth::Secret(paxbench_quic::TcpSecret::load(&wrong_secret).unwrap()),
    ];
    for auth in impostors {
        let mut impostor = TestClient::connect_tcp_as(&cluster, PeerName::Node(NodeId(2)), auth);
        assert!(
            !impostor.wait_ready(1, Duration::from_secs(1)),
            "an impostor was answered"
        );
    }
    assert!(
        cluster
            .log(1)
            .contains("claims to be node-2 but does not prove it"),
        "{}",
        cluster.log(1)
    );
    let mut forger = TestClient::connect_tcp(&cluster, 1);
    assert!(forger.wait_ready(1, Duration::from_secs(10)));
    let messages = forgeries(NodeId(2), ProposerId(0));
    for message in &messages {
        forger.links[0].send(Envelope::Paxos(message.clone()));
    }
    pause(&mut forger, Duration::from_millis(300));
    // Vanilla nodes still decide; the counts are in node 1's last stats line.
    let config = paxbench_core::proposer::ProposerConfig::new(3);
    let outcomes = client.drive(
        &vec![config; 2],
        &common::ops(0, 20, "tcp"),
        Duration::from_secs(30),
        |_| {},
    );
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, common::Outcome::Chosen(_)))
    );
    assert!(cluster.terminate(1).success());
    let log = cluster.log(1);
    let refused: u64 = log
        .lines()
        .rev()
        .find_map(|line| line.split(" refused=").nth(1))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("a final stats line with refusals");
    assert_eq!(refused, messages.len() as u64, "{log}");
}

/// Node `id`'s resident memory, in KiB.
fn rss_kib(cluster: &TestCluster, id: u32) -> u64 {
    let pid = cluster
        .pids()
        .into_iter()
        .find_map(|(node, pid)| (node == id).then_some(pid))
        .expect("node is running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

#[test]
fn a_thousand_stalled_streams_from_one_peer_hold_bounded_memory() {
    const STREAMS: usize = 1_000;
    let cluster = TestCluster::start(3, multi_paxos(StorageMode::Memory));
    let mut client = TestClient::connect(&cluster, &cluster.certs(), 0);
    client.wait_all_ready(&cluster);
    let warm = writes(50, 5, "warm");
    assert_eq!(
        client.drive_clients(4, &warm, Duration::from_secs(30), |_| {}),
        50
    );
    let idle = rss_kib(&cluster, 1);

    // A member's certificate gets the largest frame limit (Multi-Paxos elections); a member
    // gone rogue opens the streams: each declares a frame just under it, then half send
    // nothing and half send 64 KiB, slowly.
    let me = PeerName::Node(NodeId(2));
    let hog = TestClient::connect_as(&cluster, &cluster.tls(me), me);
    let addr = cluster.nodes()[0].addr;
    let transport = hog.endpoint.transport().clone();
    let declared = (64u32 << 20) - 1;
    let streams = hog.runtime.block_on(async {
        let mut streams = Vec::with_capacity(STREAMS);
        for n in 0..STREAMS {
            let (reader, mut writer) = transport
                .open(addr, PeerName::Node(NodeId(1)))
                .await
                .unwrap();
            writer.write_all(&declared.to_le_bytes()).await.unwrap();
            if n % 2 == 1 {
                let chunk = vec![0u8; 64 << 10];
                // Flow control may hold part of it back: what is not accepted in a moment
                // stays with the sender.
                let _ =
                    tokio::time::timeout(Duration::from_millis(20), writer.write_all(&chunk)).await;
            }
            streams.push((reader, writer));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        streams
    });
    let loaded = rss_kib(&cluster, 1);
    // Honest clients are still served.
    let during = writes(50, 5, "during");
    assert_eq!(
        client.drive_clients(4, &during, Duration::from_secs(30), |_| {}),
        50
    );
    let grown_mib = loaded.saturating_sub(idle) / 1024;
    println!(
        "node 1 RSS: idle {} MiB, with {STREAMS} stalled streams {} MiB (+{grown_mib} MiB)",
        idle / 1024,
        loaded / 1024
    );
    assert!(grown_mib < 256, "+{grown_mib} MiB");
    drop(streams);
}
