//! One proposer's decisions, one after another, on three in-process nodes over QUIC (each node
//! on its own thread and current-thread runtime): the two-phase round trip to a majority, with
//! memory storage and with durable `wal` storage (one fdatasync per batch). Learner fan-out is
//! on, as in the default node configuration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use hdrhistogram::Histogram;
use paxbench_core::proposer::{Proposer, ProposerConfig, ProposerEvent};
use paxbench_core::transmit::Transmit;
use paxbench_core::{Instance, NodeId, ProposerId, Time};
use paxbench_node::{
    AcceptorStore, CrashPoints, NodeSettings, PeerAddr, WalOptions, WalStorage, run_node,
};
use paxbench_quic::{
    Endpoint, EndpointConfig, Envelope, FaultLayer, Identity, Inbound, Inbox, Link, PeerName,
    QuicTransport, TlsFiles, Transport, generate_cluster_certs,
};

const NODES: u32 = 3;

/// Starts three nodes; returns their addresses.
fn start_cluster(certs: &Path, data: Option<&Path>) -> Vec<SocketAddr> {
    let mut addr_rx = Vec::new();
    let mut peer_tx = Vec::new();
    for id in 1..=NODES {
        let (addr_send, addr_recv) = std::sync::mpsc::channel();
        let (peers_send, peers_recv) = std::sync::mpsc::channel::<Vec<PeerAddr>>();
        addr_rx.push(addr_recv);
        peer_tx.push(peers_send);
        let files = TlsFiles::in_dir(certs, PeerName::Node(NodeId(id)));
        let data_dir = data.map(|d| d.join(format!("n{id}")));
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let identity = Identity::load(&files).unwrap();
                let me = PeerName::Node(NodeId(id));
                let transport =
                    QuicTransport::bind("127.0.0.1:0".parse().unwrap(), &identity, me).unwrap();
                addr_send.send(transport.local_addr().unwrap()).unwrap();
                let peers = peers_recv.recv().unwrap();
                let storage: Box<dyn AcceptorStore> = match &data_dir {
                    Some(dir) => Box::new(WalStorage::open(dir, WalOptions::default()).unwrap()),
                    None => Box::new(paxbench_node::MemoryStorage),
                };
                let settings = NodeSettings {
                    id: Some(id),
                    listen: Some(transport.local_addr().unwrap()),
                    peers,
                    data_dir: data_dir.clone(),
                    storage: Some(if data_dir.is_some() {
                        paxbench_node::StorageMode::Wal
                    } else {
                        paxbench_node::StorageMode::Memory
                    }),
                    tls: paxbench_node::config::TlsSection {
                        ca: Some(files.ca.clone()),
                        cert: Some(files.cert.clone()),
                        key: Some(files.key.clone()),
                    },
                    stats_interval_ms: Some(0),
                    ..NodeSettings::default()
                };
                let config = settings.resolve("bench").unwrap();
                run_node(
                    &config,
                    transport,
                    storage,
                    CrashPoints::default(),
                    std::future::pending(),
                )
                .await
                .unwrap();
            });
        });
    }
    let addrs: Vec<SocketAddr> = addr_rx.iter().map(|rx| rx.recv().unwrap()).collect();
    for (i, tx) in peer_tx.iter().enumerate() {
        let peers = addrs
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(j, addr)| PeerAddr {
                id: j as u32 + 1,
                addr: (*addr).into(),
            })
            .collect();
        tx.send(peers).unwrap();
    }
    addrs
}

struct Client {
    runtime: tokio::runtime::Runtime,
    _endpoint: Endpoint<QuicTransport>,
    links: Vec<Link>,
    inbox: Inbox,
    proposer: Proposer,
    started: Instant,
    next_key: u64,
}

impl Client {
    fn new(certs: &Path, addrs: &[SocketAddr]) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let identity = Identity::load(&TlsFiles::in_dir(certs, PeerName::Client(0))).unwrap();
        let (endpoint, inbox, links) = runtime.block_on(async {
            let transport = QuicTransport::bind(
                "127.0.0.1:0".parse().unwrap(),
                &identity,
                PeerName::Client(0),
            )
            .unwrap();
            let (endpoint, inbox) =
                Endpoint::new(transport, FaultLayer::default(), &EndpointConfig::default());
            let links = addrs
                .iter()
                .enumerate()
                .map(|(i, addr)| endpoint.dial(*addr, PeerName::Node(NodeId(i as u32 + 1))))
                .collect();
            (endpoint, inbox, links)
        });
        let proposer = Proposer::new(ProposerId(1), ProposerConfig::new(addrs.len()), 1).unwrap();
        Self {
            runtime,
            _endpoint: endpoint,
            links,
            inbox,
            proposer,
            started: Instant::now(),
            next_key: 0,
        }
    }

    fn decide(&mut self) -> Duration {
        let now = |started: Instant| Time(started.elapsed().as_nanos() as u64);
        let begun = Instant::now();
        self.next_key += 1;
        let instance = Instance::new(self.next_key, 0);
        self.proposer
            .propose(now(self.started), instance, Bytes::from(vec![3u8; 64]))
            .unwrap();
        let Self {
            runtime,
            links,
            inbox,
            proposer,
            started,
            ..
        } = self;
        runtime.block_on(async {
            loop {
                while let Some(Transmit { message, .. }) = proposer.poll_transmit() {
                    for link in links.iter() {
                        link.send(Envelope::Paxos(message.clone()));
                    }
                }
                while let Some(event) = proposer.poll_event() {
                    if let ProposerEvent::Chosen { .. } | ProposerEvent::GaveUp { .. } = event {
                        return;
                    }
                }
                let wait = proposer
                    .poll_timeout()
                    .map_or(Duration::from_millis(50), |t| {
                        Duration::from_nanos(t.0.saturating_sub(now(*started).0))
                    });
                match tokio::time::timeout(wait, inbox.recv()).await {
                    Ok(Some(Inbound {
                        envelope: Envelope::Reply { message, .. },
                        ..
                    })) => {
                        let _ = proposer.handle(now(*started), &message);
                    }
                    Ok(_) => {}
                    Err(_) => proposer.handle_timeout(now(*started)),
                }
            }
        });
        begun.elapsed()
    }
}

fn decision(c: &mut Criterion) {
    let certs = tempfile::tempdir().unwrap();
    generate_cluster_certs(certs.path(), &paxbench_quic::CertPlan::new(NODES, 1)).unwrap();
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let data = tempfile::tempdir_in(target).unwrap();
    let mut summary = Vec::new();
    for (name, data_dir) in [("memory", None), ("durable", Some(data.path()))] {
        let addrs = start_cluster(certs.path(), data_dir);
        let mut client = Client::new(certs.path(), &addrs);
        for _ in 0..200 {
            client.decide();
        }
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        c.bench_function(&format!("decision/3-nodes-quic-{name}"), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let took = client.decide();
                        histogram.record(took.as_nanos() as u64).unwrap();
                        took
                    })
                    .sum()
            })
        });
        summary.push(format!(
            "3 nodes, QUIC, {name:<8} p50 {:>7.1} µs  p99 {:>7.1} µs  ({} decisions)",
            histogram.value_at_quantile(0.5) as f64 / 1e3,
            histogram.value_at_quantile(0.99) as f64 / 1e3,
            histogram.len()
        ));
    }
    println!("\ndecision latency over every decision measured:");
    for line in summary {
        println!("  {line}");
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).sample_size(30);
    targets = decision
}
criterion_main!(benches);
