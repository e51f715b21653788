//! Two endpoints on loopback, over QUIC and TCP, with both carriers: frames arrive, replies find
//! their way back, strangers are refused, bad frames close only their own stream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use paxbench_core::NodeId;
use paxbench_quic::{
    Carrier, Endpoint, EndpointConfig, Envelope, FaultLayer, FaultSpec, Identity, Inbound, Inbox,
    PeerName, QuicTransport, TcpAuth, TcpTransport, TlsFiles, Transport, generate_cluster_certs,
};
use tokio::io::AsyncWriteExt;

const SERVER: PeerName = PeerName::Node(NodeId(1));
const CLIENT: PeerName = PeerName::Client(0);
const LOCALHOST: &str = "127.0.0.1:0";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn localhost() -> SocketAddr {
    LOCALHOST.parse().unwrap()
}

/// Answers every Ping on the link it came from.
fn spawn_echo<T: Transport + std::fmt::Debug>(transport: T) -> Endpoint<T> {
    let (endpoint, mut inbox) =
        Endpoint::new(transport, FaultLayer::default(), &EndpointConfig::default());
    endpoint.serve();
    tokio::spawn(async move {
        while let Some(Inbound {
            envelope, reply, ..
        }) = inbox.recv().await
        {
            if let (Envelope::Ping { nonce }, Some(reply)) = (envelope, reply.link()) {
                reply.send(Envelope::Pong { nonce, unix_ns: 0 });
            }
        }
    });
    endpoint
}

async fn ping_many(
    client: &Endpoint<impl Transport + std::fmt::Debug>,
    inbox: &mut Inbox,
    server: SocketAddr,
    count: u64,
) -> Vec<u64> {
    let link = client.dial(server, SERVER);
    for nonce in 0..count {
        link.send(Envelope::Ping { nonce });
    }
    let mut nonces = Vec::new();
    while nonces.len() < count as usize {
        let inbound = tokio::time::timeout(Duration::from_secs(10), inbox.recv())
            .await
            .unwrap_or_else(|_| panic!("replies arrive: got {} of {count}", nonces.len()))
            .expect("inbox open");
        assert_eq!(inbound.peer, SERVER);
        if let Envelope::Pong { nonce, .. } = inbound.envelope {
            nonces.push(nonce);
        }
    }
    nonces.sort_unstable();
    nonces
}

fn certs() -> (tempfile::TempDir, Identity, Identity) {
    let dir = tempfile::tempdir().unwrap();
    generate_cluster_certs(dir.path(), &paxbench_quic::CertPlan::new(1, 1)).unwrap();
    let server = Identity::load(&TlsFiles::in_dir(dir.path(), SERVER)).unwrap();
    let client = Identity::load(&TlsFiles::in_dir(dir.path(), CLIENT)).unwrap();
    (dir, server, client)
}

#[test]
fn quic_carries_frames_on_both_carriers() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let (_dir, server_id, client_id) = certs();
    runtime().block_on(async {
        let server = spawn_echo(QuicTransport::bind(localhost(), &server_id, SERVER).unwrap());
        let addr = server.transport().local_addr().unwrap();
        for carrier in [Carrier::Framed, Carrier::StreamPerRequest] {
            let transport = QuicTransport::bind(localhost(), &client_id, CLIENT).unwrap();
            let config = EndpointConfig {
                carrier,
                ..EndpointConfig::default()
            };
            let (client, mut inbox) = Endpoint::new(transport, FaultLayer::default(), &config);
            let nonces = ping_many(&client, &mut inbox, addr, 200).await;
            assert_eq!(nonces, (0..200).collect::<Vec<_>>(), "{carrier:?}");
            let counters = client.counters();
            assert_eq!(counters.frames_out, 200);
            assert_eq!(counters.frames_in, 200);
            if carrier == Carrier::Framed {
                assert!(counters.writes < 200, "writes were coalesced: {counters:?}");
            }
        }
    });
}

#[test]
fn tcp_carries_frames_and_binds_loopback_only() {
    runtime().block_on(async {
        let server =
            spawn_echo(TcpTransport::bind(localhost(), SERVER, TcpAuth::Insecure).unwrap());
        let addr = server.transport().local_addr().unwrap();
        let (client, mut inbox) = Endpoint::new(
            TcpTransport::client(CLIENT, TcpAuth::Insecure),
            FaultLayer::default(),
            &EndpointConfig::default(),
        );
        let nonces = ping_many(&client, &mut inbox, addr, 200).await;
        assert_eq!(nonces, (0..200).collect::<Vec<_>>());
        let err = TcpTransport::bind("0.0.0.0:0".parse().unwrap(), SERVER, TcpAuth::Insecure)
            .unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
    });
}

#[test]
fn a_peer_from_another_ca_is_refused() {
    let (_dir, server_id, _) = certs();
    let stranger_dir = tempfile::tempdir().unwrap();
    generate_cluster_certs(stranger_dir.path(), &paxbench_quic::CertPlan::new(0, 1)).unwrap();
    let stranger = Identity::load(&TlsFiles::in_dir(stranger_dir.path(), CLIENT)).unwrap();
    runtime().block_on(async {
        let server = spawn_echo(QuicTransport::bind(localhost(), &server_id, SERVER).unwrap());
        let addr = server.transport().local_addr().unwrap();
        let transport = QuicTransport::bind(localhost(), &stranger, CLIENT).unwrap();
        let (client, mut inbox) =
            Endpoint::new(transport, FaultLayer::default(), &EndpointConfig::default());
        let link = client.dial(addr, SERVER);
        link.send(Envelope::Ping { nonce: 1 });
        let reply = tokio::time::timeout(Duration::from_millis(1500), inbox.recv()).await;
        assert!(reply.is_err(), "a stranger got a reply: {reply:?}");
        assert!(
            server.counters().refused_peers >= 1,
            "{:?}",
            server.counters()
        );
        assert_eq!(server.counters().frames_in, 0);
    });
}

#[test]
fn bad_frames_close_only_their_stream() {
    runtime().block_on(async {
        let server =
            spawn_echo(TcpTransport::bind(localhost(), SERVER, TcpAuth::Insecure).unwrap());
        let addr = server.transport().local_addr().unwrap();
        let mut hello = Vec::new();
        paxbench_quic::frame::encode_frame(
            &Envelope::Hello {
                peer: CLIENT,
                proof: Vec::new(),
            },
            &mut hello,
        )
        .unwrap();
        let oversized = [&hello[..], &u32::MAX.to_le_bytes()[..]].concat();
        let garbage = [
            &hello[..],
            &[
                9, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ][..],
        ]
        .concat();
        let truncated = [&hello[..], &[200, 0, 0, 0, 1, 2, 3][..]].concat();
        for (bytes, expected) in [
            (oversized, 1),
            (garbage, 2),
            (truncated, 3),
            (b"not a hello".to_vec(), 4),
        ] {
            let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
            socket.write_all(&bytes).await.unwrap();
            socket.shutdown().await.unwrap();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while server.counters().malformed_frames < expected {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{:?}",
                    server.counters()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let (client, mut inbox) = Endpoint::new(
            TcpTransport::client(CLIENT, TcpAuth::Insecure),
            FaultLayer::default(),
            &EndpointConfig::default(),
        );
        assert_eq!(ping_many(&client, &mut inbox, addr, 10).await.len(), 10);
    });
}

#[test]
fn a_partition_cuts_a_link_until_healed() {
    runtime().block_on(async {
        let server =
            spawn_echo(TcpTransport::bind(localhost(), SERVER, TcpAuth::Insecure).unwrap());
        let addr = server.transport().local_addr().unwrap();
        let faults = FaultLayer::new(&FaultSpec {
            partitioned: vec![SERVER.to_string()],
            ..FaultSpec::default()
        })
        .unwrap();
        let (client, mut inbox) = Endpoint::new(
            TcpTransport::client(CLIENT, TcpAuth::Insecure),
            faults.clone(),
            &EndpointConfig::default(),
        );
        let link = client.dial(addr, SERVER);
        link.send(Envelope::Ping { nonce: 1 });
        assert!(
            tokio::time::timeout(Duration::from_millis(300), inbox.recv())
                .await
                .is_err()
        );
        assert_eq!(client.counters().dropped, 1);
        faults.set(&FaultSpec::default()).unwrap();
        assert_eq!(ping_many(&client, &mut inbox, addr, 5).await.len(), 5);
    });
}

/// A raw TCP peer named `peer` on an insecure server: its hello, then `frames`.
async fn raw_peer(addr: SocketAddr, peer: PeerName, frames: &[Envelope]) -> tokio::net::TcpStream {
    let mut bytes = Vec::new();
    let hello = Envelope::Hello {
        peer,
        proof: Vec::new(),
    };
    for envelope in std::iter::once(&hello).chain(frames) {
        paxbench_quic::frame::encode_frame(envelope, &mut bytes).unwrap();
    }
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(&bytes).await.unwrap();
    socket
}

/// An insecure TCP server with `config`, serving, and where it listens.
fn tcp_server(config: &EndpointConfig) -> (Endpoint<TcpTransport>, Inbox, SocketAddr) {
    let (server, inbox) = Endpoint::new(
        TcpTransport::bind(localhost(), SERVER, TcpAuth::Insecure).unwrap(),
        FaultLayer::default(),
        config,
    );
    server.serve();
    let addr = server.transport().local_addr().unwrap();
    (server, inbox, addr)
}

/// The next frame in `inbox`, within 10 s.
async fn next_inbound(inbox: &mut Inbox) -> Inbound {
    tokio::time::timeout(Duration::from_secs(10), inbox.recv())
        .await
        .unwrap()
        .unwrap()
}

fn accepted(bytes: usize) -> Envelope {
    use paxbench_core::message::{Accepted, Message};
    use paxbench_core::types::{Instance, ProposalId, Value};
    Envelope::Paxos(Message::Accepted(Accepted {
        instance: Instance { key: 0, slot: 0 },
        id: ProposalId::new(1, 1),
        value: Value::from(vec![0u8; bytes]),
        from: NodeId(1),
    }))
}

#[test]
fn a_peer_that_never_reads_costs_its_sender_a_bounded_queue() {
    runtime().block_on(async {
        // The server answers a ping with 300 frames of 512 KiB (150 MiB) to a peer that reads
        // none: past the link's byte budget they are dropped, not held.
        let (server, mut inbox, addr) = tcp_server(&EndpointConfig::default());
        let _socket = raw_peer(addr, CLIENT, &[Envelope::Ping { nonce: 1 }]).await;
        let inbound = next_inbound(&mut inbox).await;
        let link = inbound.reply.link().unwrap();
        let frame = accepted(512 << 10);
        for _ in 0..300 {
            link.send(frame.clone());
        }
        let counters = server.counters();
        // The budget holds 127 of them; what the writer took into the socket's buffers before
        // it stopped is no longer queued, and is at most a few MiB.
        assert!(
            counters.dropped >= 130,
            "{} of 300 dropped: {counters:?}",
            counters.dropped
        );
        let budgeted = paxbench_quic::budget::MAX_QUEUED_BYTES / frame.encoded_len_bound();
        assert_eq!(budgeted, 127);
    });
}

#[test]
fn only_a_member_node_may_send_node_sized_frames() {
    runtime().block_on(async {
        let config = EndpointConfig {
            max_node_frame: 8 << 20,
            members: Some(vec![NodeId(1), NodeId(2)]),
            ..EndpointConfig::default()
        };
        let (server, mut inbox, addr) = tcp_server(&config);
        let large = accepted(2 << 20);
        let _member = raw_peer(
            addr,
            PeerName::Node(NodeId(2)),
            std::slice::from_ref(&large),
        )
        .await;
        let inbound = next_inbound(&mut inbox).await;
        assert_eq!(inbound.peer, PeerName::Node(NodeId(2)));
        assert_eq!(server.counters().malformed_frames, 0);
        // A node certificate the cluster does not list gets a client's limit (1 MiB).
        let _stranger = raw_peer(addr, PeerName::Node(NodeId(9)), &[large]).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while server.counters().malformed_frames == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?}",
                server.counters()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            inbox.try_recv().is_err(),
            "nothing of the stranger's arrived"
        );
    });
}

#[test]
fn the_stream_of_a_peer_that_never_reads_is_closed_after_the_stall_timeout() {
    runtime().block_on(async {
        let config = EndpointConfig {
            stall_timeout: Duration::from_millis(300),
            ..EndpointConfig::default()
        };
        let (server, mut inbox, addr) = tcp_server(&config);
        let _socket = raw_peer(addr, CLIENT, &[Envelope::Ping { nonce: 1 }]).await;
        let inbound = next_inbound(&mut inbox).await;
        let link = inbound.reply.link().unwrap();
        // 32 MiB: more than the socket buffers take, so the writer waits on the peer.
        for _ in 0..64 {
            link.send(accepted(512 << 10));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !link.is_closed() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the stream stays open: {:?}",
                server.counters()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // What is sent to it now is dropped at once, not queued.
        let dropped = server.counters().dropped;
        link.send(accepted(1));
        assert_eq!(server.counters().dropped, dropped + 1);
    });
}
