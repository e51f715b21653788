//! The deterministic simulator: acceptors and learners on a seeded virtual network, in virtual
//! time, with a [`ProposerHost`] for the proposers, crashes, partitions and clock faults on a
//! schedule, and the safety checker fed at every step. It is an I/O shell: it moves the host's
//! transmits through the network and fires its timers. The same [`SimConfig`] and workload give
//! the same history, down to the [`Sim::digest`].

mod network;

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use rustc_hash::{FxHashMap, FxHasher};

pub use network::{Address, Delivery, Latency, LinkModel, Network};

use crate::acceptor::{Acceptor, AcceptorConfig, Destination, Outgoing, Ready, Record};
use crate::checker::{Checker, ChosenBy};
use crate::error::Error;
use crate::host::{HostStats, Observer, ProposerHost, Transmit};
use crate::learner::{Learner, RECENT_INSTANCES};
use crate::message::Message;
use crate::proposer::{ProposerConfig, ProposerEvent};
use crate::rng::{DetRng, Stream};
use crate::time::{ClockModel, Time};
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
    PersistDone {
        node: u32,
        epoch: u64,
        ready: Ready,
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
    acceptor: Option<Acceptor>,
    learner: Learner,
    store: FxHashMap<Instance, Record>,
    persisting: bool,
    epoch: u64,
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
                Fault::Heal | Fault::SetLinks(_) => true,
            };
            if !ok {
                return Err(Error::InvalidSimulation(format!(
                    "fault {fault:?} names a node or proposer that does not exist"
                )));
            }
        }
        let host = ProposerHost::new(
            config.proposers.clone(),
            ProposerId(0),
            config.seed,
            workload,
        )?;
        let nodes = (0..config.acceptors)
            .map(|n| SimNode {
                id: NodeId(n as u32),
                acceptor: Some(Acceptor::new(NodeId(n as u32), config.acceptor)),
                learner: Learner::with_quorum(config.quorums.phase2, RECENT_INSTANCES),
                store: FxHashMap::default(),
                persisting: false,
                epoch: 0,
            })
            .collect();
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
        SimStats {
            host: self.host.stats(),
            ..self.stats
        }
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
                    self.complete_persist(node, ready, observer);
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
            let from = Address::Proposer(self.host.id_of(from));
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

    fn deliver(
        &mut self,
        from: Address,
        to: Address,
        message: Message,
        observer: &mut impl SimObserver,
    ) {
        (self.now, from, to, &message).hash(&mut self.digest);
        match to {
            Address::Node(n) => {
                let node = &mut self.nodes[n.0 as usize];
                let Some(acceptor) = node.acceptor.as_mut() else {
                    self.stats.lost += 1;
                    return;
                };
                self.stats.delivered += 1;
                match &message {
                    Message::Prepare(m) => acceptor.handle_prepare(m),
                    Message::AcceptRequest(m) => acceptor.handle_accept_request(m),
                    Message::Accepted(m) => {
                        if let Some(chosen) = node.learner.handle_accepted(m) {
                            self.host.checker_mut().on_chosen(
                                chosen.instance,
                                &chosen.value,
                                ChosenBy::Learner(node.id),
                            );
                        }
                        return;
                    }
                    Message::Promise(_) | Message::Nack(_) => return,
                }
                self.flush_node(n.0, observer);
            }
            Address::Proposer(p) => {
                self.stats.delivered += 1;
                let mut tap = Tap {
                    digest: &mut self.digest,
                    inner: observer,
                };
                self.host.handle_reply(self.now, p, &message, &mut tap);
                self.flush_host(observer);
            }
        }
    }

    fn flush_node(&mut self, node: u32, observer: &mut impl SimObserver) {
        let n = &mut self.nodes[node as usize];
        if n.persisting {
            return;
        }
        let Some(acceptor) = n.acceptor.as_mut() else {
            return;
        };
        if !acceptor.has_ready() {
            return;
        }
        let mut ready = acceptor.ready();
        let epoch = n.epoch;
        let immediate = ready.take_unpersisted_messages();
        if self.config.fsync.is_zero() || ready.records().is_empty() {
            self.route(node, immediate, observer);
            self.complete_persist(node, ready, observer);
        } else {
            n.persisting = true;
            self.route(node, immediate, observer);
            self.schedule(
                self.now + self.config.fsync,
                Event::PersistDone { node, epoch, ready },
            );
        }
    }

    fn complete_persist(&mut self, node: u32, ready: Ready, observer: &mut impl SimObserver) {
        let n = &mut self.nodes[node as usize];
        if !ready.records().is_empty() {
            self.stats.persists += 1;
        }
        for record in ready.records() {
            self.host.checker_mut().on_acceptor_record(n.id, record);
            n.store.insert(record.instance, record.clone());
        }
        n.persisting = false;
        self.route(node, ready.persisted(), observer);
        self.flush_node(node, observer);
    }

    fn route(&mut self, node: u32, outgoing: Vec<Outgoing>, observer: &mut impl SimObserver) {
        let from = Address::Node(NodeId(node));
        for Outgoing { to, message } in outgoing {
            match to {
                Destination::Proposer(p) => {
                    if (p.0 as usize) < self.host.len() {
                        self.send(from, Address::Proposer(p), message, observer);
                    }
                }
                Destination::Learners => {
                    for learner in 0..self.nodes.len() as u32 {
                        let to = Address::Node(NodeId(learner));
                        self.send(from, to, message.clone(), observer);
                    }
                }
            }
        }
    }

    fn apply_fault(&mut self, fault: Fault, observer: &mut impl SimObserver) {
        self.stats.faults += 1;
        (self.now, format!("{fault:?}")).hash(&mut self.digest);
        observer.on_fault(self.now, &fault);
        match &fault {
            Fault::Crash(n) => {
                let node = &mut self.nodes[n.0 as usize];
                node.acceptor = None;
                node.learner = Learner::with_quorum(self.config.quorums.phase2, RECENT_INSTANCES);
                node.persisting = false;
                node.epoch += 1;
                if self.config.durability == Durability::Volatile {
                    node.store.clear();
                }
            }
            Fault::Restart(n) => {
                let node = &mut self.nodes[n.0 as usize];
                if node.acceptor.is_none() {
                    let mut records: Vec<Record> = node.store.values().cloned().collect();
                    records.sort_unstable_by_key(|r| r.instance);
                    node.acceptor = Some(Acceptor::restore(node.id, self.config.acceptor, records));
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
}
