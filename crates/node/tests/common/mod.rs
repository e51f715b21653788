//! A real cluster for process-level tests: node processes on 127.0.0.1 with generated
//! certificates, and a test client that drives core proposers through the QUIC transport and
//! checks every decision with the core's safety checker.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::{HashMap, VecDeque};
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use paxbench_core::Protocol;
use paxbench_core::acceptor::Record;
use paxbench_core::checker::{Checker, InstanceFacts, MemoryStore};
use paxbench_core::client::ClientConfig;
use paxbench_core::host::ProposerHost;
use paxbench_core::message::Message;
use paxbench_core::proposer::ProposerConfig;
use paxbench_core::transmit::Transmit;
use paxbench_core::workload::{NextOp, OpOutcome, OpSpec, Workload};
use paxbench_core::{Instance, NodeId, ProposerId, ProposerIndex, Time, Value};
use paxbench_node::{LeaderSection, LocalCluster, LocalClusterSpec, NodeSettings, StorageMode};
use paxbench_quic::{
    AdminCommand, AdminReply, Control, Endpoint, EndpointConfig, Envelope, FaultLayer, Identity,
    Inbound, Inbox, Link, NodeStats, PeerName, QuicTransport, TcpAuth, TlsFiles, Transport,
};

/// How long a node may take to answer an admin command.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

pub const NODE_BIN: &str = env!("CARGO_BIN_EXE_paxbench-node");

/// Settings for every node of a test cluster, with this storage mode.
pub fn nodes(storage: StorageMode) -> NodeSettings {
    NodeSettings {
        storage: Some(storage),
        ..NodeSettings::default()
    }
}

/// Multi-Paxos nodes with node 1 as the initial leader and a small cache.
pub fn multi_paxos(storage: StorageMode) -> NodeSettings {
    NodeSettings {
        protocol: Some(Protocol::MultiPaxos),
        leader: Some(LeaderSection {
            initial: Some(1),
            election_timeout_ms: 80,
            ..LeaderSection::default()
        }),
        cache_instances: Some(64),
        ..nodes(storage)
    }
}

/// `count` writes spread over `keys` keys: the leader gives each its key's next slot.
pub fn writes(count: u64, keys: u64, tag: &str) -> Vec<(Instance, Value)> {
    (0..count)
        .map(|i| {
            (
                Instance::new(i % keys, 0),
                Value::from(format!("{tag}-{i}")),
            )
        })
        .collect()
}

/// The library's local cluster of `paxbench-node` processes, with test conveniences: each
/// failure panics with what went wrong.
pub struct TestCluster(LocalCluster);

impl Deref for TestCluster {
    type Target = LocalCluster;
    fn deref(&self) -> &LocalCluster {
        &self.0
    }
}

impl DerefMut for TestCluster {
    fn deref_mut(&mut self) -> &mut LocalCluster {
        &mut self.0
    }
}

impl TestCluster {
    /// Runs `paxbench-node ready` on node `id`'s config: whether the node answered its probe.
    pub fn ready_probe(&self, id: u32, timeout: Duration) -> (bool, String) {
        let node = self.nodes().iter().find(|n| n.id == id).unwrap();
        let out = std::process::Command::new(NODE_BIN)
            .args(["ready", "--config"])
            .arg(&node.config)
            .arg(format!("--timeout-ms={}", timeout.as_millis()))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// `n` nodes sharing `settings`, all started.
    pub fn start(n: u32, settings: NodeSettings) -> Self {
        Self::start_logging(n, settings, "info")
    }

    /// The same, with the nodes' `RUST_LOG` set to `filter`.
    pub fn start_logging(n: u32, settings: NodeSettings, filter: &str) -> Self {
        Self(
            LocalCluster::start(LocalClusterSpec {
                nodes: n,
                // node-N+1: a node the cluster does not have, for the hostile-peer tests.
                extra_node_certs: 1,
                clients: 2,
                shared: settings,
                program: NODE_BIN.into(),
                program_args: vec!["run".into()],
                log_filter: filter.into(),
            })
            .unwrap(),
        )
    }

    /// Starts node `id` (again), with `extra` flags for this start only.
    pub fn spawn(&mut self, id: u32, extra: &[&str]) {
        self.0.start_node(id, extra).unwrap();
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(&mut self, id: u32) -> ExitStatus {
        self.0
            .terminate(id, Duration::from_secs(10))
            .expect("node exits on SIGTERM")
    }

    /// Audits every node's store against what `client` saw (the nodes must be stopped).
    pub fn audit<T: Transport + std::fmt::Debug>(
        &self,
        client: &mut TestClient<T>,
    ) -> paxbench_node::AuditReport {
        let stores: Vec<_> = self
            .data_dirs()
            .iter()
            .map(|(node, dir)| (*node, paxbench_node::storage::history(dir).unwrap()))
            .collect();
        let nodes = self.nodes().len();
        paxbench_node::audit(&stores, nodes, paxbench_core::quorum(nodes), client.facts())
    }

    /// The records in node `id`'s durable store (the node must be stopped).
    pub fn stored(&self, id: u32) -> HashMap<Instance, Record> {
        paxbench_node::storage::history(&self.nodes()[id as usize - 1].data_dir)
            .unwrap()
            .into_iter()
            .map(|r| (r.instance, r))
            .collect()
    }
}

/// A test's operations, handed out in order to whichever hosted proposer is idle.
pub struct OpQueue {
    ops: VecDeque<(usize, (Instance, Value))>,
    running: HashMap<ProposerIndex, usize>,
    ended: Vec<Option<OpOutcome>>,
    finished: usize,
}

impl Workload for OpQueue {
    fn next_op(&mut self, proposer: ProposerIndex, now: Time) -> NextOp {
        let Some((op, (instance, value))) = self.ops.pop_front() else {
            return NextOp::Done;
        };
        self.running.insert(proposer, op);
        NextOp::Start(OpSpec {
            instance,
            value,
            at: now,
        })
    }

    fn on_outcome(&mut self, proposer: ProposerIndex, _: Time, _: Instance, outcome: OpOutcome) {
        if let Some(op) = self.running.remove(&proposer) {
            self.ended[op] = Some(outcome);
            self.finished += 1;
        }
    }
}

/// What a decision ended as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Chosen(Value),
    GaveUp,
    Unfinished,
}

pub struct TestClient<T: Transport = QuicTransport> {
    pub runtime: tokio::runtime::Runtime,
    pub endpoint: Endpoint<T>,
    inbox: Inbox,
    pub links: Vec<Link>,
    node_ids: Vec<NodeId>,
    pub checker: Checker,
    started: Instant,
    next_proposer: u32,
    control: Control,
}

impl TestClient<QuicTransport> {
    /// A QUIC client with certificate `client-N` from `certs`.
    pub fn connect(cluster: &TestCluster, certs: &Path, client: u32) -> Self {
        let me = PeerName::Client(client);
        let identity = Identity::load(&TlsFiles::in_dir(certs, me)).unwrap();
        Self::over(cluster, client, move || {
            QuicTransport::bind("127.0.0.1:0".parse().unwrap(), &identity, me).unwrap()
        })
    }

    /// A QUIC client with certificate `admin-N`, which also proposes as client N.
    pub fn connect_admin(cluster: &TestCluster, admin: u32) -> Self {
        let me = PeerName::Admin(admin);
        let identity = Identity::load(&cluster.tls(me)).unwrap();
        Self::over(cluster, admin, move || {
            QuicTransport::bind("127.0.0.1:0".parse().unwrap(), &identity, me).unwrap()
        })
    }

    /// A QUIC client presenting another member's certificate (to test what it may do).
    pub fn connect_as(cluster: &TestCluster, files: &TlsFiles, me: PeerName) -> Self {
        let identity = Identity::load(files).unwrap();
        Self::over(cluster, 9, move || {
            QuicTransport::bind("127.0.0.1:0".parse().unwrap(), &identity, me).unwrap()
        })
    }
}

impl TestClient<paxbench_quic::TcpTransport> {
    /// A plain-TCP client.
    pub fn connect_tcp(cluster: &TestCluster, client: u32) -> Self {
        let auth = cluster.tcp_auth().unwrap();
        Self::over(cluster, client, move || {
            paxbench_quic::TcpTransport::client(PeerName::Client(client), auth)
        })
    }

    /// A plain-TCP peer naming itself `me`, proving it with `auth` (to test what it may do).
    pub fn connect_tcp_as(cluster: &TestCluster, me: PeerName, auth: TcpAuth) -> Self {
        Self::over(cluster, 9, move || {
            paxbench_quic::TcpTransport::client(me, auth)
        })
    }
}

impl<T: Transport + std::fmt::Debug> TestClient<T> {
    /// Every instance the client saw, with its facts (proposals, decisions, acknowledgements).
    pub fn facts(&self) -> Vec<(Instance, InstanceFacts)> {
        self.checker
            .live_facts()
            .map(|(instance, facts)| (instance, facts.clone()))
            .collect()
    }

    /// Distinct `(node, instance)` acknowledgements the client received.
    pub fn acked(&self) -> u64 {
        self.checker
            .live_facts()
            .map(|(_, facts)| facts.acked.len() as u64)
            .sum()
    }

    fn over(cluster: &TestCluster, client: u32, make: impl FnOnce() -> T) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (endpoint, inbox) = runtime.block_on(async {
            Endpoint::new(make(), FaultLayer::default(), &EndpointConfig::default())
        });
        let links = runtime.block_on(async {
            cluster
                .nodes()
                .iter()
                .map(|n| endpoint.dial(n.addr, PeerName::Node(NodeId(n.id))))
                .collect()
        });
        Self {
            runtime,
            endpoint,
            inbox,
            links,
            node_ids: cluster.nodes().iter().map(|n| NodeId(n.id)).collect(),
            // Nothing retires: the test reads every instance's facts back for its audit.
            checker: Checker::with_store(Box::new(MemoryStore::new()), usize::MAX),
            started: Instant::now(),
            // Nodes take proposals from client N only for its own proposers.
            next_proposer: paxbench_core::host::client_proposers(client).unwrap().start,
            control: Control::new(),
        }
    }

    /// The next Paxos message any node sends us, within `timeout`.
    pub fn recv_paxos(&mut self, timeout: Duration) -> Option<Message> {
        let deadline = Instant::now() + timeout;
        loop {
            let inbound = self.recv(deadline.saturating_duration_since(Instant::now()))?;
            if let Envelope::Paxos(message) | Envelope::Reply { message, .. } = inbound.envelope {
                return Some(message);
            }
        }
    }

    fn now(&self) -> Time {
        Time(self.started.elapsed().as_nanos() as u64)
    }

    fn recv(&mut self, timeout: Duration) -> Option<Inbound> {
        let inbox = &mut self.inbox;
        self.runtime.block_on(async {
            tokio::time::timeout(timeout, inbox.recv())
                .await
                .ok()
                .flatten()
        })
    }

    /// Pings node `id` until it answers or `timeout` passes.
    pub fn wait_ready(&mut self, id: u32, timeout: Duration) -> bool {
        let link = &self.links[id as usize - 1];
        let ping = self.control.ping(link, &mut self.inbox, timeout);
        self.runtime.block_on(ping).is_ok()
    }

    pub fn wait_all_ready(&mut self, cluster: &TestCluster) {
        for node in cluster.nodes() {
            assert!(
                self.wait_ready(node.id, Duration::from_secs(20)),
                "node {} never answered",
                node.id
            );
        }
    }

    /// Sends an admin command to node `id` and waits for its answer.
    pub fn admin(&mut self, id: u32, command: AdminCommand) -> Option<AdminReply> {
        let link = &self.links[id as usize - 1];
        let call = self
            .control
            .call(link, &mut self.inbox, command, ADMIN_TIMEOUT);
        self.runtime.block_on(call).ok()
    }

    pub fn stats(&mut self, id: u32) -> NodeStats {
        let link = &self.links[id as usize - 1];
        let stats = self.control.stats(link, &mut self.inbox, ADMIN_TIMEOUT);
        match self.runtime.block_on(stats) {
            Ok(stats) => stats,
            Err(e) => panic!("no stats from node {id}: {e}"),
        }
    }

    /// Runs `ops` on one hosted proposer per config, concurrently (one op per proposer at a
    /// time). After every finished op, `after_each(decided_so_far)` runs (to kill or restart
    /// nodes mid-run). Stops at `budget`; returns each op's outcome, in op order.
    pub fn drive(
        &mut self,
        proposers: &[ProposerConfig],
        ops: &[(Instance, Value)],
        budget: Duration,
        mut after_each: impl FnMut(usize),
    ) -> Vec<Outcome> {
        let first_id = ProposerId(self.next_proposer);
        self.next_proposer += proposers.len() as u32;
        let queue = OpQueue {
            ops: ops.iter().cloned().enumerate().collect(),
            running: HashMap::new(),
            ended: vec![None; ops.len()],
            finished: 0,
        };
        let host =
            ProposerHost::new(proposers.to_vec(), first_id, u64::from(first_id.0), queue).unwrap();
        let queue = self.run_host(host, budget, &mut after_each);
        queue
            .ended
            .iter()
            .zip(ops)
            .map(|(ended, (instance, _))| match ended {
                None => Outcome::Unfinished,
                Some(OpOutcome::GaveUp(_)) => Outcome::GaveUp,
                Some(OpOutcome::Won | OpOutcome::Lost) => Outcome::Chosen(
                    self.checker
                        .chosen(*instance)
                        .cloned()
                        .expect("a decided instance has a chosen value"),
                ),
            })
            .collect()
    }

    fn deliver(&mut self, host: &mut ProposerHost<OpQueue>, inbound: Inbound) {
        let Envelope::Reply { proposer, message } = inbound.envelope else {
            return;
        };
        host.checker_mut().on_reply(&message);
        host.handle_reply(self.now(), proposer, &message, &mut ());
    }

    /// Drives `host` until its work is done or `budget` is spent, calling `after_each` with
    /// the count of finished operations as it grows; returns the workload.
    fn run_host(
        &mut self,
        mut host: ProposerHost<OpQueue>,
        budget: Duration,
        after_each: &mut impl FnMut(usize),
    ) -> OpQueue {
        // One checker across drives, so that later probes are checked against earlier decisions.
        std::mem::swap(host.checker_mut(), &mut self.checker);
        let deadline = Instant::now() + budget;
        let mut reported = 0;
        host.start(self.now(), &mut ());
        while !host.is_finished() && Instant::now() < deadline {
            while let Some(Transmit { to, message, .. }) = host.poll_transmit() {
                for (link, node) in self.links.iter().zip(&self.node_ids) {
                    if to.includes(*node) {
                        link.send(Envelope::Paxos(message.clone()));
                    }
                }
            }
            while reported < host.workload().finished {
                reported += 1;
                after_each(reported);
            }
            let now = self.now();
            let wait = host
                .poll_timeout()
                .map_or(Duration::MAX, |at| at.saturating_since(now))
                .min(Duration::from_millis(20));
            if let Some(inbound) = self.recv(wait) {
                self.deliver(&mut host, inbound);
                while let Ok(inbound) = self.inbox.try_recv() {
                    self.deliver(&mut host, inbound);
                }
            }
            let now = self.now();
            if host.poll_timeout().is_some_and(|at| at <= now) {
                host.handle_timeout(now, &mut ());
            }
        }
        host.stop();
        std::mem::swap(host.checker_mut(), &mut self.checker);
        host.into_parts().0
    }

    /// Runs `ops` through `clients` Multi-Paxos clients (each asks node 1 first), within
    /// `budget`; returns how many were decided. Only the key of each op matters: the leader
    /// gives it the key's next slot.
    pub fn drive_clients(
        &mut self,
        clients: usize,
        ops: &[(Instance, Value)],
        budget: Duration,
        mut after_each: impl FnMut(usize),
    ) -> usize {
        let first_id = ProposerId(self.next_proposer);
        self.next_proposer += clients as u32;
        let queue = OpQueue {
            ops: ops.iter().cloned().enumerate().collect(),
            running: HashMap::new(),
            ended: vec![None; ops.len()],
            finished: 0,
        };
        let configs = vec![
            ProposerConfig {
                max_attempts: 1000,
                ..ProposerConfig::new(self.links.len())
            };
            clients
        ];
        let clients = ClientConfig::spread(&configs, &self.node_ids, Some(NodeId(1)));
        let host = ProposerHost::clients(clients, first_id, u64::from(first_id.0), queue).unwrap();
        let queue = self.run_host(host, budget, &mut after_each);
        queue
            .ended
            .iter()
            .filter(|e| matches!(e, Some(OpOutcome::Won)))
            .count()
    }

    /// Proposes a different value on every instance that was decided: the proposer must learn
    /// the value already chosen. This is how a test proves no decision changed.
    pub fn verify_decisions(&mut self, decided: &[(Instance, Value)], config: &ProposerConfig) {
        let proposers = vec![config.clone(); 8];
        let probes: Vec<(Instance, Value)> = decided
            .iter()
            .map(|(instance, _)| (*instance, Value::from(format!("probe-{instance}"))))
            .collect();
        let outcomes = self.drive(&proposers, &probes, Duration::from_secs(60), |_| {});
        for ((instance, value), outcome) in decided.iter().zip(outcomes) {
            assert_eq!(
                outcome,
                Outcome::Chosen(value.clone()),
                "instance {instance} changed its decision"
            );
        }
        assert!(
            self.checker.violations().is_empty(),
            "{:?}",
            self.checker.violations()
        );
    }
}

/// Ops on fresh instances `(key, 0)` for keys `first..first + count`.
pub fn ops(first: u64, count: u64, tag: &str) -> Vec<(Instance, Value)> {
    (first..first + count)
        .map(|key| (Instance::new(key, 0), Value::from(format!("{tag}-{key}"))))
        .collect()
}

/// The decided ops and their chosen values.
pub fn decided(ops: &[(Instance, Value)], outcomes: &[Outcome]) -> Vec<(Instance, Value)> {
    ops.iter()
        .zip(outcomes)
        .filter_map(|((instance, _), outcome)| match outcome {
            Outcome::Chosen(value) => Some((*instance, value.clone())),
            _ => None,
        })
        .collect()
}
