//! One node host, two shells: a scripted sequence of messages fed to node 0 through the
//! simulator and through the real server (over TCP, the test playing the other two nodes and
//! a proposer) gives the same transmits to each recipient, in the same order, and leaves the
//! same states in the store. Neither shell holds a protocol rule of its own, so they cannot drift apart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use paxbench_core::acceptor::{Record, RejectMode};
use paxbench_core::host::Observer;
use paxbench_core::message::{AcceptRequest, Accepted, Message, Prepare, PrepareAll};
use paxbench_core::sim::{Address, Delivery, Sim, SimConfig, SimObserver};
use paxbench_core::workload::UniformWorkload;
use paxbench_core::{Instance, NodeId, ProposalId, ProposerId, ProtocolConfig, Time};
use paxbench_node::config::{LearnerFanout, NodeConfig, PeerAddr};
use paxbench_node::{AcceptorStore, CrashPoints, Error, Recovered, StorageMode, run_node};
use paxbench_quic::{
    Endpoint, EndpointConfig, Envelope, FaultLayer, FaultSpec, PeerName, TcpAuth, TcpTransport,
    Transport, TransportKind,
};

const PROPOSER: ProposerId = ProposerId(0);
const I1: Instance = Instance::new(7, 0);
const I2: Instance = Instance::new(8, 0);

/// Who sends each step of the script to node 0, and what.
fn script() -> Vec<(Address, Message)> {
    let proposer = Address::Proposer(PROPOSER);
    let id = |high| ProposalId::new(high, 0);
    vec![
        (
            proposer,
            Message::Prepare(Prepare {
                instance: I1,
                id: id(5),
                from: PROPOSER,
            }),
        ),
        (
            proposer,
            Message::AcceptRequest(AcceptRequest {
                instance: I1,
                id: id(5),
                value: Bytes::from_static(b"a"),
                from: PROPOSER,
            }),
        ),
        // Below the promise: a NACK, which waits for no disk.
        (
            proposer,
            Message::Prepare(Prepare {
                instance: I1,
                id: id(3),
                from: PROPOSER,
            }),
        ),
        // Node 1's ACCEPTED completes the learner's quorum with node 0's own.
        (
            Address::Node(NodeId(1)),
            Message::Accepted(Accepted {
                instance: I1,
                id: id(5),
                value: Bytes::from_static(b"a"),
                from: NodeId(1),
            }),
        ),
        // A vanilla node has no leader role: refused before its acceptor sees it.
        (
            Address::Node(NodeId(1)),
            Message::PrepareAll(PrepareAll {
                ballot: id(9),
                from: NodeId(1),
                known: Vec::new(),
            }),
        ),
        (
            proposer,
            Message::Prepare(Prepare {
                instance: I2,
                id: id(6),
                from: PROPOSER,
            }),
        ),
    ]
}

/// What node 0 sent, by recipient, in order; and what it made durable, in order.
#[derive(Debug, Default, PartialEq)]
struct Trace {
    sent: BTreeMap<String, Vec<Message>>,
    records: Vec<Record>,
}

fn recipient(to: Address) -> String {
    match to {
        Address::Node(n) => format!("node {}", n.0),
        Address::Proposer(p) => format!("proposer {}", p.0),
    }
}

struct SimTrace(Trace);

impl Observer for SimTrace {}

impl SimObserver for SimTrace {
    fn on_send(&mut self, _: Time, from: Address, to: Address, message: &Message, _: Delivery) {
        // What a node sends itself never leaves the server's process: not compared.
        if from == Address::Node(NodeId(0)) && to != from {
            self.0
                .sent
                .entry(recipient(to))
                .or_default()
                .push(message.clone());
        }
    }
}

fn through_the_simulator() -> Trace {
    let mut config = SimConfig::new(3, 1, 1);
    config.acceptor.reject_mode = RejectMode::Nack;
    config.fsync = Duration::from_millis(1);
    config.protocol = ProtocolConfig::Vanilla;
    let workload = UniformWorkload::new(1, 0, Duration::ZERO, Duration::ZERO, 1);
    let mut sim = Sim::new(config, workload).unwrap();
    for (step, (from, message)) in (1..).zip(script()) {
        let at = Time::ZERO + Duration::from_millis(10 * step);
        sim.inject(at, from, Address::Node(NodeId(0)), message);
    }
    let mut observer = SimTrace(Trace::default());
    sim.run(&mut observer);
    let mut records: Vec<Record> = sim.stored(NodeId(0)).cloned().collect();
    records.sort_by_key(|r| r.instance);
    Trace {
        records,
        ..observer.0
    }
}

/// A store that keeps every committed record, in order, where the test can read it.
struct Recording(Arc<Mutex<Vec<Record>>>);

impl AcceptorStore for Recording {
    fn recover(&mut self) -> Result<Recovered, Error> {
        Ok(Recovered::default())
    }

    fn commit(&mut self, records: &[Record]) -> Result<u64, Error> {
        let mut kept = self.0.lock().unwrap();
        kept.extend_from_slice(records);
        Ok(kept.len() as u64)
    }

    fn write_unsynced(&mut self, _records: &[Record]) -> Result<(), Error> {
        Ok(())
    }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn through_the_server() -> Trace {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = EndpointConfig::default();
        let peer = |id: u32| {
            let transport = TcpTransport::bind(loopback(), PeerName::Node(NodeId(id)), TcpAuth::Insecure).unwrap();
            let addr = transport.local_addr().unwrap();
            let (endpoint, inbox) = Endpoint::new(transport, FaultLayer::default(), &config);
            endpoint.serve();
            (endpoint, inbox, addr)
        };
        let (node1, mut inbox1, addr1) = peer(1);
        let (_node2, mut inbox2, addr2) = peer(2);
        let transport = TcpTransport::bind(loopback(), PeerName::Node(NodeId(0)), TcpAuth::Insecure).unwrap();
        let addr0 = transport.local_addr().unwrap();
        let node_config = NodeConfig {
            id: NodeId(0),
            listen: addr0,
            peers: vec![
                PeerAddr {
                    id: 1,
                    addr: addr1.into(),
                },
                PeerAddr {
                    id: 2,
                    addr: addr2.into(),
                },
            ],
            data_dir: None,
            storage: StorageMode::Memory,
            cache_instances: 1_000,
            transport: TransportKind::Tcp,
            tls: None,
            reject_mode: RejectMode::Nack,
            learner_fanout: LearnerFanout::All,
            phase2_quorum: 2,
            protocol: ProtocolConfig::Vanilla,
            log_level: "warn".into(),
            stats_interval_ms: 0,
            faults: FaultSpec::default(),
            admin: true,
            on_storage_failure: paxbench_node::StorageFailure::Stay,
            tcp_secret: None,
            cpus: Vec::new(),
        };
        let records = Arc::new(Mutex::new(Vec::new()));
        let store = Box::new(Recording(records.clone()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            run_node(&node_config, transport, store, CrashPoints::default(), async {
                let _ = stopped.await;
            })
            .await
        });
        let client_transport = TcpTransport::bind(loopback(), PeerName::Client(0), TcpAuth::Insecure).unwrap();
        let (client, mut client_inbox) =
            Endpoint::new(client_transport, FaultLayer::default(), &config);
        let to_node0 = client.dial(addr0, PeerName::Node(NodeId(0)));
        let from_node1 = node1.dial(addr0, PeerName::Node(NodeId(0)));
        let mut trace = Trace::default();
        for (from, message) in script() {
            let link = match from {
                Address::Proposer(_) => &to_node0,
                Address::Node(_) => &from_node1,
            };
            link.send(Envelope::Paxos(message));
            // Each step's answers arrive before the next step is sent.
            let quiet = Instant::now() + Duration::from_millis(300);
            while Instant::now() < quiet {
                tokio::select! {
                    Some(inbound) = client_inbox.recv() => {
                        if let Envelope::Reply { proposer, message } = inbound.envelope {
                            trace.sent.entry(recipient(Address::Proposer(proposer))).or_default().push(message);
                        }
                    }
                    Some(inbound) = inbox1.recv() => {
                        if let Envelope::Paxos(message) = inbound.envelope {
                            trace.sent.entry(recipient(Address::Node(NodeId(1)))).or_default().push(message);
                        }
                    }
                    Some(inbound) = inbox2.recv() => {
                        if let Envelope::Paxos(message) = inbound.envelope {
                            trace.sent.entry(recipient(Address::Node(NodeId(2)))).or_default().push(message);
                        }
                    }
                    () = tokio::time::sleep_until(quiet.into()) => {}
                }
            }
        }
        stop.send(()).unwrap();
        let stats = server.await.unwrap().unwrap();
        assert_eq!(stats.chosen, 1, "node 0's learner saw I1 chosen");
        // What the store holds: a later record of an instance replaces an earlier one.
        let held: BTreeMap<Instance, Record> = records
            .lock()
            .unwrap()
            .iter()
            .map(|r| (r.instance, r.clone()))
            .collect();
        trace.records = held.into_values().collect();
        trace
    })
}

#[test]
fn the_simulator_and_the_server_drive_a_node_alike() {
    let simulated = through_the_simulator();
    let served = through_the_server();
    assert_eq!(simulated, served);
    // The script says something: promises, an accept told to every learner, a NACK.
    let to_proposer = &simulated.sent["proposer 0"];
    let kinds: Vec<&str> = to_proposer.iter().map(Message::kind).collect();
    assert_eq!(kinds, ["promise", "accepted", "nack", "promise"]);
    assert_eq!(simulated.sent["node 1"].len(), 1);
    assert_eq!(simulated.sent["node 2"].len(), 1);
    assert_eq!(simulated.records.len(), 2, "I1 accepted, I2 promised");
}
