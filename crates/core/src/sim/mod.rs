//! The deterministic simulator: acceptors and learners (and, under Multi-Paxos, leader roles)
//! on a seeded virtual network, in virtual time, with a [`ProposerHost`] for the proposers or
//! clients, crashes, partitions and clock faults on a schedule, and the safety checker fed at
//! every step. It is an I/O shell: it moves the host's
//! transmits through the network and fires its timers. The same [`SimConfig`] and workload give
//! the same history, down to the [`Sim::digest`].

mod network;
mod node;

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use rustc_hash::{FxHashMap, FxHasher};

pub use crate::transmit::Address;
pub use network::{Delivery, Latency, LinkModel, Network};

use crate::acceptor::{AcceptorConfig, RangedState, Record};
use crate::checker::{Checker, ChosenBy};
use crate::error::Error;
use crate::host::{HostStats, NodeEvent, NodeHost, NodeReady, Observer, ProposerHost};
use crate::leader::{Leader, LeaderEvent, LeaderStats};
use crate::message::Message;
use crate::proposer::{ProposerConfig, ProposerEvent};
use crate::protocol::ProtocolConfig;
use crate::rng::{DetRng, Stream};
use crate::time::{ClockModel, Time};
use crate::transmit::Transmit;
use crate::types::{Instance, NodeId, ProposerId, ProposerIndex, Quorums};
use crate::workload::Workload;
use crate::zones::Geography;

/// Whether acceptors keep their state across a crash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Durability {
    /// Promises and accepts survive a crash, as Paxos assumes.
    #[default]
    Durable,
    /// A crash forgets everything: shows why Paxos needs stable storage.
    Volatile,
}

/// A fault, applied at a scheduled time.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// The node stops; its in-flight writes are lost, and so is its state when volatile.
    Crash(NodeId),
    /// The node comes back with what it had persisted.
    Restart(NodeId),
    /// Multi-Paxos: the node that leads (the highest ballot, if two think they do) crashes,
    /// and restarts after `down`; nothing happens when no node leads.
    CrashLeader {
        /// How long it stays down.
        down: Duration,
    },
    /// Cuts every link between these endpoints and all others.
    Partition(Vec<Address>),
    /// Cuts these links, both ways, leaving every other link as it is: partitions in which sides
    /// overlap, such as a ring where every node sees a different majority.
    Cut(Vec<(Address, Address)>),
    /// Restores every cut link.
    Heal,
    /// Replaces the model of every link.
    SetLinks(LinkModel),
    /// Steps a proposer's wall clock by this many nanoseconds (negative: back).
    ClockStep {
        /// The proposer.
        proposer: ProposerIndex,
        /// The step.
        delta_ns: i64,
    },
}

/// Everything a simulation needs besides its workload.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seeds the network and every proposer's backoff, each through its own [`Stream`].
    pub seed: u64,
    /// How many nodes (acceptor + learner each), numbered from 0.
    pub acceptors: usize,
    /// Quorum sizes, the same for every proposer and learner.
    pub quorums: Quorums,
    /// Vanilla Paxos, or Multi-Paxos with a leader role on every node (its `nodes` are
    /// `0..acceptors`) and the proposers as its clients, with their retry settings.
    pub protocol: ProtocolConfig,
    /// Acceptor settings, the same for all.
    pub acceptor: AcceptorConfig,
    /// Durable or volatile acceptor state.
    pub durability: Durability,
    /// How long a persist takes; requests arriving meanwhile are batched into the next one.
    pub fsync: Duration,
    /// One entry per proposer, numbered from 0.
    pub proposers: Vec<ProposerConfig>,
    /// The model of every link.
    pub links: LinkModel,
    /// Zones and the delays between them, added to every message's link delay.
    pub geography: Option<Geography>,
    /// Faults, by time.
    pub faults: Vec<(Time, Fault)>,
    /// The simulation stops at this time, or at the host's [`deadline`](ProposerHost::deadline)
    /// if that comes first, even if work remains.
    pub until: Time,
}

impl SimConfig {
    /// `acceptors` nodes and `proposers` proposers with default settings on default links.
    pub fn new(acceptors: usize, proposers: usize, seed: u64) -> Self {
        Self {
            seed,
            acceptors,
            quorums: Quorums::majority(acceptors),
            protocol: ProtocolConfig::Vanilla,
            acceptor: AcceptorConfig::default(),
            durability: Durability::Durable,
            fsync: Duration::ZERO,
            proposers: vec![ProposerConfig::new(acceptors); proposers],
            links: LinkModel::default(),
            geography: None,
            faults: Vec::new(),
            until: Time::ZERO + Duration::from_secs(3_600),
        }
    }

    /// Gives each proposer its own clock: an offset uniform in `±max_offset`, a drift uniform
    /// in `±max_drift_ppm`, the given resolution, and `epoch_ns` as the reading at time zero.
    pub fn with_clock_skew(
        mut self,
        epoch_ns: u64,
        max_offset: Duration,
        max_drift_ppm: f64,
        resolution: Duration,
    ) -> Self {
        for (index, config) in (0u32..).zip(&mut self.proposers) {
            config.clock = ClockModel::skewed(
                Stream::Clock(index).rng(self.seed),
                epoch_ns,
                max_offset,
                max_drift_ppm,
                resolution,
            );
        }
        self
    }
}

/// Hooks for whoever wants more than the summary: every proposer event (through
/// [`Observer`]), every send and every fault.
pub trait SimObserver: Observer {
    /// `message` was sent `from → to`, with its fate.
    fn on_send(
        &mut self,
        _now: Time,
        _from: Address,
        _to: Address,
        _message: &Message,
        _fate: Delivery,
    ) {
    }
    /// A scheduled fault was applied.
    fn on_fault(&mut self, _now: Time, _fault: &Fault) {}
    /// Node `node`'s leader role reported `event` (Multi-Paxos).
    fn on_leader_event(&mut self, _now: Time, _node: NodeId, _event: &LeaderEvent) {}
    /// Node `node` made a batch of records (or its global promise) durable: one fsync.
    fn on_persist(&mut self, _now: Time, _node: NodeId) {}
}

impl SimObserver for () {}

/// Hashes every proposer event into the history digest on its way to the caller's observer.
struct Tap<'a, O> {
    digest: &'a mut FxHasher,
    inner: &'a mut O,
}

impl<O: Observer> Observer for Tap<'_, O> {
    fn on_proposer_event(&mut self, now: Time, proposer: ProposerIndex, event: &ProposerEvent) {
        (now, proposer.0, event).hash(self.digest);
        self.inner.on_proposer_event(now, proposer, event);
    }
}

/// Counts of what happened in a simulation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SimStats {
    /// Messages sent (each copy of a broadcast counts).
    pub sent: u64,
    /// Messages delivered to a live endpoint.
    pub delivered: u64,
    /// Messages lost to drops or partitions, or arriving at a crashed node.
    pub lost: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Persist batches written (group commits).
    pub persists: u64,
    /// Faults applied.
    pub faults: u64,
    /// What the proposers did.
    pub host: HostStats,
    /// What the nodes' leader roles did, summed over nodes and restarts (Multi-Paxos).
    pub leaders: LeaderStats,
}

/// A finished (or stopped) simulation's results.
#[derive(Clone, Debug)]
pub struct SimReport {
    /// Virtual time at the end.
    pub end: Time,
    /// Counts.
    pub stats: SimStats,
    /// The history digest.
    pub digest: u64,
    /// Whether work remained when `until` was reached.
    pub stopped_early: bool,
}

enum Event {
    Deliver {
        from: Address,
        to: Address,
        message: Message,
    },
    /// The host asked to be woken at `at`; valid while it is the wake-up armed.
    HostTimer {
        at: Time,
    },
    /// Boxed: a batch is far larger than a delivery, and every event moves through the heap.
    PersistDone {
        node: u32,
        epoch: u64,
        ready: Box<NodeReady>,
    },
    /// A node's leader role asked to be woken at `at`; valid while it is the one armed.
    LeaderTimer {
        node: u32,
        epoch: u64,
        at: Time,
    },
    Fault(Fault),
}

struct Scheduled {
    at: Time,
    seq: u64,
    event: Event,
}

// Earliest first, then in scheduling order: a min-heap on (at, seq) through `BinaryHeap`'s max.
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}

struct SimNode {
    id: NodeId,
    /// The node's host while it is up.
    host: Option<NodeHost>,
    /// Its disk: the durable records, and the durable global promise and chosen prefix.
    store: FxHashMap<Instance, Record>,
    ranged: RangedState,
    /// Counts crashes, so that a persist or a timer of an earlier life is ignored.
    epoch: u64,
    leader_armed: Option<Time>,
    /// Leader counts of the node's earlier lives.
    leader_stats: LeaderStats,
}

/// A simulation. Build it with [`Sim::new`], then [`Sim::run`] it (or [`Sim::step`] through it).
pub struct Sim<W: Workload> {
    config: SimConfig,
    host: ProposerHost<W>,
    /// The host wake-up scheduled last, so that earlier ones superseded by it are ignored.
    host_armed: Option<Time>,
    started: bool,
    now: Time,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    rng: DetRng,
    network: Network,
    nodes: Vec<SimNode>,
    stats: SimStats,
    digest: FxHasher,
}

impl<W: Workload> Sim<W> {
    /// Sets up the cluster, its proposers (ids from 0) and the fault schedule.
    pub fn new(config: SimConfig, workload: W) -> Result<Self, Error> {
        if config.acceptors == 0 {
            return Err(Error::InvalidSimulation("no acceptors".into()));
        }
        for (i, proposer_config) in config.proposers.iter().enumerate() {
            if proposer_config.acceptors != config.acceptors {
                return Err(Error::InvalidSimulation(format!(
                    "proposer {i} expects {} acceptors, the cluster has {}",
                    proposer_config.acceptors, config.acceptors
                )));
            }
            if proposer_config.quorums != config.quorums {
                return Err(Error::InvalidSimulation(format!(
                    "proposer {i} waits for {:?}, the cluster's learners for {:?}",
                    proposer_config.quorums, config.quorums
                )));
            }
        }
        let proposers = config.proposers.len();
        let node_ok = |n: &NodeId| (n.0 as usize) < config.acceptors;
        let endpoint_ok = |e: &Address| match e {
            Address::Node(n) => node_ok(n),
            Address::Proposer(p) => (p.0 as usize) < proposers,
        };
        for (_, fault) in &config.faults {
            let ok = match fault {
                Fault::Crash(n) | Fault::Restart(n) => node_ok(n),
                Fault::ClockStep { proposer, .. } => (proposer.0 as usize) < proposers,
                Fault::Partition(side) => side.iter().all(endpoint_ok),
                Fault::Cut(pairs) => pairs.iter().all(|(a, b)| endpoint_ok(a) && endpoint_ok(b)),
                Fault::Heal | Fault::SetLinks(_) | Fault::CrashLeader { .. } => true,
            };
            if !ok {
                return Err(Error::InvalidSimulation(format!(
                    "fault {fault:?} names a node or proposer that does not exist"
                )));
            }
        }
        let node_ids: Vec<NodeId> = (0..config.acceptors as u32).map(NodeId).collect();
        if let Some(leader) = config.protocol.leader()
            && (leader.nodes != node_ids || leader.quorums != config.quorums)
        {
            return Err(Error::InvalidSimulation(format!(
                "the leader roles expect nodes {:?} and {:?}; the cluster has {} nodes and {:?}",
                leader.nodes, leader.quorums, config.acceptors, config.quorums
            )));
        }
        let host = ProposerHost::for_protocol(
            &config.protocol,
            config.proposers.clone(),
            &node_ids,
            ProposerId(0),
            config.seed,
            workload,
        )?;
        let nodes = node_ids
            .iter()
            .map(|&id| -> Result<SimNode, Error> {
                Ok(SimNode {
                    id,
                    host: Some(NodeHost::new(node::host_config(&config, id))?),
                    store: FxHashMap::default(),
                    ranged: RangedState::default(),
                    epoch: 0,
                    leader_armed: None,
                    leader_stats: LeaderStats::default(),
                })
            })
            .collect::<Result<_, _>>()?;
        let mut network = Network::new(config.links);
        network.set_geography(config.geography.clone());
        let mut sim = Self {
            rng: Stream::Network.rng(config.seed),
            network,
            host,
            host_armed: None,
            started: false,
            now: Time::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            stats: SimStats::default(),
            digest: FxHasher::default(),
            config,
        };
        for (at, fault) in sim.config.faults.clone() {
            sim.schedule(at, Event::Fault(fault));
        }
        Ok(sim)
    }

    /// Delivers `message` from `from` to `to` at `at`, past the network: a scripted input, for
    /// tests that feed the same sequence to a node through this shell and another.
    pub fn inject(&mut self, at: Time, from: Address, to: Address, message: Message) {
        self.schedule(at, Event::Deliver { from, to, message });
    }

    /// Current virtual time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// The safety checker, fed with everything so far.
    pub fn checker(&self) -> &Checker {
        self.host.checker()
    }

    /// The checker, to give it another [`RetiredStore`](crate::checker::RetiredStore) before
    /// the run.
    pub fn checker_mut(&mut self) -> &mut Checker {
        self.host.checker_mut()
    }

    /// Counts so far.
    pub fn stats(&self) -> SimStats {
        let mut leaders = LeaderStats::default();
        for node in &self.nodes {
            leaders.add(&node.leader_stats);
            if let Some(leader) = node.host.as_ref().and_then(NodeHost::leader) {
                leaders.add(&leader.stats());
            }
        }
        SimStats {
            host: self.host.stats(),
            leaders,
            ..self.stats
        }
    }

    /// Node `node`'s leader role, if the node is up and runs Multi-Paxos.
    pub fn leader(&self, node: NodeId) -> Option<&Leader> {
        self.nodes.get(node.0 as usize)?.host.as_ref()?.leader()
    }

    /// The workload.
    pub fn workload(&self) -> &W {
        self.host.workload()
    }

    /// Stops the simulation and hands back the workload and the checker, with what they recorded.
    pub fn into_parts(self) -> (W, Checker) {
        self.host.into_parts()
    }

    /// A digest of every delivery and proposer event so far, in order: equal digests mean
    /// (with overwhelming likelihood) identical histories.
    pub fn digest(&self) -> u64 {
        self.digest.finish()
    }

    /// What `node` has durably stored.
    pub fn stored(&self, node: NodeId) -> impl Iterator<Item = &Record> {
        self.nodes
            .get(node.0 as usize)
            .into_iter()
            .flat_map(|n| n.store.values())
    }

    /// When the simulation stops: `until`, or the host's drain deadline if earlier.
    pub fn end(&self) -> Time {
        self.host.deadline().map_or(self.config.until, |deadline| {
            deadline.min(self.config.until)
        })
    }

    /// Runs until no event remains or the next one is after [`Sim::end`].
    pub fn run(&mut self, observer: &mut impl SimObserver) -> SimReport {
        while self.step(observer) {}
        SimReport {
            end: self.now,
            stats: self.stats(),
            digest: self.digest(),
            stopped_early: !self.queue.is_empty(),
        }
    }

    /// Processes one event; false when there is none left before [`Sim::end`].
    pub fn step(&mut self, observer: &mut impl SimObserver) -> bool {
        if !self.started {
            self.started = true;
            let mut tap = Tap {
                digest: &mut self.digest,
                inner: observer,
            };
            self.host.start(self.now, &mut tap);
            self.flush_host(observer);
            for node in 0..self.nodes.len() as u32 {
                if let Some(host) = self.nodes[node as usize].host.as_mut() {
                    host.start(self.now);
                    self.flush_node(node, observer);
                }
            }
        }
        match self.queue.peek() {
            Some(next) if next.at <= self.end() => {}
            _ => return false,
        }
        let Some(Scheduled { at, event, .. }) = self.queue.pop() else {
            return false;
        };
        self.now = at;
        match event {
            Event::Deliver { from, to, message } => self.deliver(from, to, message, observer),
            Event::HostTimer { at } => {
                if self.host_armed == Some(at) {
                    self.host_armed = None;
                    let mut tap = Tap {
                        digest: &mut self.digest,
                        inner: observer,
                    };
                    self.host.handle_timeout(at, &mut tap);
                    self.flush_host(observer);
                }
            }
            Event::PersistDone { node, epoch, ready } => {
                if self.nodes[node as usize].epoch == epoch {
                    self.complete_persist(node, *ready, observer);
                }
            }
            // Leaders heartbeat forever; once every client is done, their timers stop, so that
            // the run ends when the messages in flight are delivered.
            Event::LeaderTimer { node, epoch, at } => {
                let n = &mut self.nodes[node as usize];
                if n.epoch == epoch && n.leader_armed == Some(at) && !self.host.is_finished() {
                    n.leader_armed = None;
                    if let Some(host) = n.host.as_mut() {
                        host.handle_timeout(at);
                    }
                    self.flush_node(node, observer);
                }
            }
            Event::Fault(fault) => self.apply_fault(fault, observer),
        }
        true
    }

    fn schedule(&mut self, at: Time, event: Event) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            event,
        });
    }

    /// Sends what the host has to send, and schedules its next wake-up.
    fn flush_host(&mut self, observer: &mut impl SimObserver) {
        while let Some(Transmit { from, to, message }) = self.host.poll_transmit() {
            for node in (0..self.nodes.len() as u32).map(NodeId) {
                if to.includes(node) {
                    self.send(from, Address::Node(node), message.clone(), observer);
                }
            }
        }
        let wake = self.host.poll_timeout();
        if wake.is_some() && wake != self.host_armed {
            self.host_armed = wake;
            if let Some(at) = wake {
                self.schedule(at, Event::HostTimer { at });
            }
        }
    }

    fn send(
        &mut self,
        from: Address,
        to: Address,
        message: Message,
        observer: &mut impl SimObserver,
    ) {
        self.stats.sent += 1;
        if from == to {
            // A node's leader role and its own acceptor share a process: no network between.
            observer.on_send(
                self.now,
                from,
                to,
                &message,
                Delivery::Delivered(Duration::ZERO, None),
            );
            self.schedule(self.now, Event::Deliver { from, to, message });
            return;
        }
        let fate = self.network.fate(from, to, &mut self.rng);
        observer.on_send(self.now, from, to, &message, fate);
        match fate {
            Delivery::Lost => self.stats.lost += 1,
            Delivery::Delivered(delay, None) => {
                self.schedule(self.now + delay, Event::Deliver { from, to, message });
            }
            Delivery::Delivered(delay, Some(again)) => {
                self.stats.duplicated += 1;
                let copy = message.clone();
                self.schedule(self.now + delay, Event::Deliver { from, to, message });
                self.schedule(
                    self.now + again,
                    Event::Deliver {
                        from,
                        to,
                        message: copy,
                    },
                );
            }
        }
    }

    /// Node `n` stops: its in-flight writes are lost, and so is its state when volatile.
    fn crash(&mut self, n: NodeId) {
        let node = &mut self.nodes[n.0 as usize];
        node.epoch += 1;
        node.leader_armed = None;
        if let Some(leader) = node.host.take().as_ref().and_then(NodeHost::leader) {
            node.leader_stats.add(&leader.stats());
        }
        if self.config.durability == Durability::Volatile {
            node.store.clear();
            node.ranged = RangedState::default();
        }
    }

    fn apply_fault(&mut self, fault: Fault, observer: &mut impl SimObserver) {
        self.stats.faults += 1;
        (self.now, format!("{fault:?}")).hash(&mut self.digest);
        observer.on_fault(self.now, &fault);
        match &fault {
            Fault::Crash(n) => self.crash(*n),
            Fault::Restart(n) => {
                let node = &mut self.nodes[n.0 as usize];
                if node.host.is_none() {
                    let mut records: Vec<Record> = node.store.values().cloned().collect();
                    records.sort_unstable_by_key(|r| r.instance);
                    let config = node::host_config(&self.config, node.id);
                    // The settings were checked when the simulation was built.
                    if let Ok(mut host) = NodeHost::restore(config, records, &node.ranged) {
                        host.start(self.now);
                        node.host = Some(host);
                        self.flush_node(n.0, observer);
                    }
                }
            }
            Fault::CrashLeader { down } => {
                let leader = self
                    .nodes
                    .iter()
                    .filter_map(|n| Some((n.host.as_ref()?.leader()?.ballot()?, n.id)))
                    .max()
                    .map(|(_, id)| id);
                if let Some(id) = leader {
                    self.crash(id);
                    self.schedule(self.now + *down, Event::Fault(Fault::Restart(id)));
                }
            }
            Fault::Partition(side) => {
                let everyone: Vec<Address> = (0..self.nodes.len() as u32)
                    .map(|n| Address::Node(NodeId(n)))
                    .chain((0..self.host.len() as u32).map(|p| Address::Proposer(ProposerId(p))))
                    .collect();
                self.network.partition(side, &everyone);
            }
            Fault::Cut(pairs) => {
                for (a, b) in pairs {
                    self.network.partition(&[*a], &[*b]);
                }
            }
            Fault::Heal => self.network.heal(),
            Fault::SetLinks(model) => self.network.set_default(*model),
            Fault::ClockStep { proposer, delta_ns } => {
                self.host.step_clock(*proposer, *delta_ns);
            }
        }
    }

    /// What a node made durable: the checker holds acceptors to it.
    fn observe_durable(&mut self, node: NodeId, records: &[Record]) {
        let checker = self.host.checker_mut();
        for record in records {
            checker.on_acceptor_record(node, record);
        }
    }

    /// What a node learned or its leader role did: the checker and the observer hear of it here,
    /// and the node shell never touches the checker.
    fn observe_node_event(
        &mut self,
        node: NodeId,
        event: NodeEvent,
        observer: &mut impl SimObserver,
    ) {
        let checker = self.host.checker_mut();
        match event {
            NodeEvent::Learned { instance, value } => {
                checker.on_chosen(instance, &value, ChosenBy::Learner(node));
            }
            NodeEvent::Leader(event) => {
                (self.now, node.0, &event).hash(&mut self.digest);
                match &event {
                    LeaderEvent::Proposed { instance, value } => {
                        checker.on_proposed(*instance, value);
                    }
                    LeaderEvent::Chosen {
                        instance, value, ..
                    } => checker.on_chosen(*instance, value, ChosenBy::Learner(node)),
                    LeaderEvent::Elected { .. } | LeaderEvent::SteppedDown { .. } => {}
                }
                observer.on_leader_event(self.now, node, &event);
            }
        }
    }
}
