//! The deterministic simulator: acceptors, learners and proposers on a seeded virtual network,
//! in virtual time, with crashes, partitions and clock faults on a schedule, and the safety
//! checker fed at every step. The same [`SimConfig`] and workload give the same history, down
//! to the [`Sim::digest`].

mod network;
mod workload;

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::hash::{Hash, Hasher};
use std::mem;
use std::time::Duration;

use rustc_hash::{FxHashMap, FxHasher};

pub use network::{Endpoint, Fate, Latency, LinkModel, Network};
pub use workload::{NextOp, OpOutcome, OpSpec, UniformWorkload, Workload, unique_value};

use crate::acceptor::{Acceptor, AcceptorConfig, Destination, Outgoing, Ready, Record};
use crate::checker::{Checker, ChosenBy};
use crate::error::Error;
use crate::learner::Learner;
use crate::message::Message;
use crate::proposer::{Proposer, ProposerConfig, ProposerEvent};
use crate::rng::DetRng;
use crate::time::{ClockModel, Time};
use crate::types::{Instance, NodeId, ProposerId};

/// Whether acceptors keep their state across a crash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Storage {
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
    Partition(Vec<Endpoint>),
    /// Cuts these links, both ways, leaving every other link as it is: partitions in which sides
    /// overlap, such as a ring where every node sees a different majority.
    Cut(Vec<(Endpoint, Endpoint)>),
    /// Restores every cut link.
    Heal,
    /// Replaces the model of every link.
    SetLinks(LinkModel),
    /// Steps a proposer's wall clock by this many nanoseconds (negative: back).
    ClockStep {
        /// The proposer.
        proposer: ProposerId,
        /// The step.
        delta_ns: i64,
    },
}

/// Everything a simulation needs besides its workload.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seeds the network, and, through forks, every proposer's backoff RNG.
    pub seed: u64,
    /// How many nodes (acceptor + learner each), numbered from 0.
    pub acceptors: usize,
    /// Acceptor settings, the same for all.
    pub acceptor: AcceptorConfig,
    /// Durable or volatile acceptor state.
    pub storage: Storage,
    /// How long a persist takes; requests arriving meanwhile are batched into the next one.
    pub fsync: Duration,
    /// One entry per proposer, numbered from 0.
    pub proposers: Vec<ProposerConfig>,
    /// The model of every link.
    pub links: LinkModel,
    /// Faults, by time.
    pub faults: Vec<(Time, Fault)>,
    /// The simulation stops at this time even if work remains.
    pub until: Time,
}

impl SimConfig {
    /// `acceptors` nodes and `proposers` proposers with default settings on default links.
    pub fn new(acceptors: usize, proposers: usize, seed: u64) -> Self {
        Self {
            seed,
            acceptors,
            acceptor: AcceptorConfig::default(),
            storage: Storage::Durable,
            fsync: Duration::ZERO,
            proposers: vec![ProposerConfig::new(acceptors); proposers],
            links: LinkModel::default(),
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
        let mut rng = DetRng::fork(self.seed, 0xc10c);
        let max_offset = max_offset.as_nanos().min(i64::MAX as u128) as i64;
        for config in &mut self.proposers {
            let offset = (rng.next_f64() * 2.0 - 1.0) * max_offset as f64;
            let drift = (rng.next_f64() * 2.0 - 1.0) * max_drift_ppm;
            config.clock = ClockModel::ideal()
                .with_epoch(epoch_ns)
                .with_offset(offset as i64)
                .with_drift_ppm(drift)
                .with_resolution(resolution);
        }
        self
    }
}

/// Hooks for whoever wants more than the summary: every proposer event and every send.
pub trait Observer {
    /// A proposer reported `event`.
    fn on_proposer_event(&mut self, _now: Time, _proposer: ProposerId, _event: &ProposerEvent) {}
    /// `message` was sent `from → to`, with its fate.
    fn on_send(
        &mut self,
        _now: Time,
        _from: Endpoint,
        _to: Endpoint,
        _message: &Message,
        _fate: Fate,
    ) {
    }
    /// A scheduled fault was applied.
    fn on_fault(&mut self, _now: Time, _fault: &Fault) {}
}

impl Observer for () {}

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
    /// Operations started.
    pub ops_started: u64,
    /// Operations whose own value was chosen.
    pub ops_won: u64,
    /// Operations that saw another value chosen.
    pub ops_lost: u64,
    /// Operations that gave up.
    pub ops_gave_up: u64,
    /// Attempts (PREPAREs with a new ID) across all operations.
    pub attempts: u64,
    /// Attempts preempted by NACKs.
    pub preemptions: u64,
    /// Phase timeouts.
    pub timeouts: u64,
    /// Persist batches written (group commits).
    pub persists: u64,
    /// Faults applied.
    pub faults: u64,
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
        from: Endpoint,
        to: Endpoint,
        message: Message,
    },
    Timer {
        proposer: u32,
        at: Time,
    },
    StartOp {
        proposer: u32,
        op: OpSpec,
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

struct SimProposer {
    proposer: Proposer,
    armed: Option<Time>,
}

/// A simulation. Build it with [`Sim::new`], then [`Sim::run`] it (or [`Sim::step`] through it).
pub struct Sim<W: Workload> {
    config: SimConfig,
    workload: W,
    now: Time,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    rng: DetRng,
    network: Network,
    nodes: Vec<SimNode>,
    proposers: Vec<SimProposer>,
    checker: Checker,
    stats: SimStats,
    digest: FxHasher,
    scratch: Vec<Message>,
    waiting: Vec<u32>,
}

impl<W: Workload> Sim<W> {
    /// Sets up the cluster and schedules each proposer's first operation and every fault.
    pub fn new(config: SimConfig, workload: W) -> Result<Self, Error> {
        if config.acceptors == 0 {
            return Err(Error::InvalidSimulation("no acceptors".into()));
        }
        let mut proposers = Vec::with_capacity(config.proposers.len());
        for (i, proposer_config) in config.proposers.iter().enumerate() {
            if proposer_config.acceptors != config.acceptors {
                return Err(Error::InvalidSimulation(format!(
                    "proposer {i} expects {} acceptors, the cluster has {}",
                    proposer_config.acceptors, config.acceptors
                )));
            }
            let id = ProposerId(i as u32);
            let seed = DetRng::fork(config.seed, 1 + i as u64).next_u64();
            proposers.push(SimProposer {
                proposer: Proposer::new(id, proposer_config.clone(), seed)?,
                armed: None,
            });
        }
        for (_, fault) in &config.faults {
            let node_ok = |n: &NodeId| (n.0 as usize) < config.acceptors;
            let ok = match fault {
                Fault::Crash(n) | Fault::Restart(n) => node_ok(n),
                Fault::ClockStep { proposer, .. } => (proposer.0 as usize) < proposers.len(),
                Fault::Partition(side) => side.iter().all(|e| match e {
                    Endpoint::Node(n) => node_ok(n),
                    Endpoint::Proposer(p) => (p.0 as usize) < proposers.len(),
                }),
                Fault::Cut(pairs) => pairs.iter().all(|(a, b)| {
                    [a, b].iter().all(|e| match e {
                        Endpoint::Node(n) => node_ok(n),
                        Endpoint::Proposer(p) => (p.0 as usize) < proposers.len(),
                    })
                }),
                Fault::Heal | Fault::SetLinks(_) => true,
            };
            if !ok {
                return Err(Error::InvalidSimulation(format!(
                    "fault {fault:?} names a node or proposer that does not exist"
                )));
            }
        }
        let nodes = (0..config.acceptors)
            .map(|n| SimNode {
                id: NodeId(n as u32),
                acceptor: Some(Acceptor::new(NodeId(n as u32), config.acceptor)),
                learner: Learner::new(config.acceptors),
                store: FxHashMap::default(),
                persisting: false,
                epoch: 0,
            })
            .collect();
        let mut sim = Self {
            rng: DetRng::fork(config.seed, 0),
            network: Network::new(config.links),
            workload,
            now: Time::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            proposers,
            checker: Checker::new(),
            waiting: Vec::new(),
            stats: SimStats::default(),
            digest: FxHasher::default(),
            scratch: Vec::new(),
            config,
        };
        for (at, fault) in sim.config.faults.clone() {
            sim.schedule(at, Event::Fault(fault));
        }
        for p in 0..sim.proposers.len() as u32 {
            sim.next_op(p);
        }
        Ok(sim)
    }

    /// Current virtual time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// The safety checker, fed with everything so far.
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// Counts so far.
    pub fn stats(&self) -> SimStats {
        self.stats
    }

    /// The workload.
    pub fn workload(&self) -> &W {
        &self.workload
    }

    /// Stops the simulation and hands back the workload, with whatever it recorded.
    pub fn into_workload(self) -> W {
        self.workload
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

    /// Runs until no event remains or the next one is after `until`.
    pub fn run(&mut self, observer: &mut impl Observer) -> SimReport {
        while self.step(observer) {}
        SimReport {
            end: self.now,
            stats: self.stats,
            digest: self.digest(),
            stopped_early: !self.queue.is_empty(),
        }
    }

    /// Processes one event; false when there is none left before `until`.
    pub fn step(&mut self, observer: &mut impl Observer) -> bool {
        match self.queue.peek() {
            Some(next) if next.at <= self.config.until => {}
            _ => return false,
        }
        let Some(Scheduled { at, event, .. }) = self.queue.pop() else {
            return false;
        };
        self.now = at;
        match event {
            Event::Deliver { from, to, message } => self.deliver(from, to, message, observer),
            Event::Timer { proposer, at } => {
                let p = &mut self.proposers[proposer as usize];
                if p.armed == Some(at) {
                    p.armed = None;
                    p.proposer.handle_timeout(at);
                    self.pump_proposer(proposer, observer);
                }
            }
            Event::StartOp { proposer, op } => {
                self.stats.ops_started += 1;
                self.checker.on_proposed(op.instance, &op.value);
                let p = &mut self.proposers[proposer as usize];
                // A proposer is asked for its next operation only once idle, so this cannot fail.
                if p.proposer.propose(at, op.instance, op.value).is_ok() {
                    self.pump_proposer(proposer, observer);
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

    fn send(
        &mut self,
        from: Endpoint,
        to: Endpoint,
        message: Message,
        observer: &mut impl Observer,
    ) {
        self.stats.sent += 1;
        let fate = self.network.fate(from, to, &mut self.rng);
        observer.on_send(self.now, from, to, &message, fate);
        match fate {
            Fate::Lost => self.stats.lost += 1,
            Fate::Delivered(delay, None) => {
                self.schedule(self.now + delay, Event::Deliver { from, to, message });
            }
            Fate::Delivered(delay, Some(again)) => {
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
        from: Endpoint,
        to: Endpoint,
        message: Message,
        observer: &mut impl Observer,
    ) {
        (self.now, from, to, &message).hash(&mut self.digest);
        match to {
            Endpoint::Node(n) => {
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
                            self.checker.on_chosen(
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
            Endpoint::Proposer(p) => {
                self.stats.delivered += 1;
                let proposer = &mut self.proposers[p.0 as usize].proposer;
                if proposer.handle(self.now, &message).is_ok() {
                    self.pump_proposer(p.0, observer);
                }
            }
        }
    }

    fn flush_node(&mut self, node: u32, observer: &mut impl Observer) {
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

    fn complete_persist(&mut self, node: u32, ready: Ready, observer: &mut impl Observer) {
        let n = &mut self.nodes[node as usize];
        if !ready.records().is_empty() {
            self.stats.persists += 1;
        }
        for record in ready.records() {
            self.checker.on_acceptor_record(n.id, record);
            n.store.insert(record.instance, record.clone());
        }
        n.persisting = false;
        self.route(node, ready.persisted(), observer);
        self.flush_node(node, observer);
    }

    fn route(&mut self, node: u32, outgoing: Vec<Outgoing>, observer: &mut impl Observer) {
        let from = Endpoint::Node(NodeId(node));
        for Outgoing { to, message } in outgoing {
            match to {
                Destination::Proposer(p) => {
                    if (p.0 as usize) < self.proposers.len() {
                        self.send(from, Endpoint::Proposer(p), message, observer);
                    }
                }
                Destination::Learners => {
                    for learner in 0..self.nodes.len() as u32 {
                        let to = Endpoint::Node(NodeId(learner));
                        self.send(from, to, message.clone(), observer);
                    }
                }
            }
        }
    }

    fn pump_proposer(&mut self, index: u32, observer: &mut impl Observer) {
        let id = ProposerId(index);
        let mut transmits = mem::take(&mut self.scratch);
        transmits.extend(std::iter::from_fn(|| {
            self.proposers[index as usize].proposer.poll_transmit()
        }));
        for message in transmits.drain(..) {
            for node in 0..self.nodes.len() as u32 {
                let to = Endpoint::Node(NodeId(node));
                self.send(Endpoint::Proposer(id), to, message.clone(), observer);
            }
        }
        self.scratch = transmits;
        while let Some(event) = self.proposers[index as usize].proposer.poll_event() {
            (self.now, index, &event).hash(&mut self.digest);
            observer.on_proposer_event(self.now, id, &event);
            match &event {
                ProposerEvent::AttemptStarted {
                    instance, id: pid, ..
                } => {
                    self.stats.attempts += 1;
                    self.checker.on_id_issued(id, *instance, *pid);
                }
                ProposerEvent::Preempted { .. } => self.stats.preemptions += 1,
                ProposerEvent::TimedOut { .. } => self.stats.timeouts += 1,
                ProposerEvent::Chosen {
                    instance, value, ..
                } => {
                    self.checker
                        .on_chosen(*instance, value, ChosenBy::Proposer(id));
                }
                ProposerEvent::GaveUp { .. } => {}
                ProposerEvent::Promised { .. } | ProposerEvent::BackingOff { .. } => {}
            }
            if let Some((instance, outcome)) = OpOutcome::of_event(&event) {
                match outcome {
                    OpOutcome::Won => self.stats.ops_won += 1,
                    OpOutcome::Lost => self.stats.ops_lost += 1,
                    OpOutcome::GaveUp(_) => self.stats.ops_gave_up += 1,
                }
                self.workload.on_outcome(id, self.now, instance, outcome);
                self.next_op(index);
                self.wake_waiting();
            }
        }
        let p = &mut self.proposers[index as usize];
        let timeout = p.proposer.poll_timeout();
        if timeout.is_some() && timeout != p.armed {
            p.armed = timeout;
            if let Some(at) = timeout {
                self.schedule(
                    at,
                    Event::Timer {
                        proposer: index,
                        at,
                    },
                );
            }
        }
    }

    fn next_op(&mut self, index: u32) {
        match self.workload.next_op(ProposerId(index), self.now) {
            NextOp::Start(op) => {
                let at = op.at.max(self.now);
                self.schedule(
                    at,
                    Event::StartOp {
                        proposer: index,
                        op,
                    },
                );
            }
            NextOp::Wait => self.waiting.push(index),
            NextOp::Done => {}
        }
    }

    /// After an operation ends, proposers that were told to wait are asked again, in order.
    fn wake_waiting(&mut self) {
        for index in std::mem::take(&mut self.waiting) {
            self.next_op(index);
        }
    }

    fn apply_fault(&mut self, fault: Fault, observer: &mut impl Observer) {
        self.stats.faults += 1;
        (self.now, format!("{fault:?}")).hash(&mut self.digest);
        observer.on_fault(self.now, &fault);
        match &fault {
            Fault::Crash(n) => {
                let node = &mut self.nodes[n.0 as usize];
                node.acceptor = None;
                node.learner = Learner::new(self.config.acceptors);
                node.persisting = false;
                node.epoch += 1;
                if self.config.storage == Storage::Volatile {
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
                let everyone: Vec<Endpoint> = (0..self.nodes.len() as u32)
                    .map(|n| Endpoint::Node(NodeId(n)))
                    .chain(
                        (0..self.proposers.len() as u32).map(|p| Endpoint::Proposer(ProposerId(p))),
                    )
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
                self.proposers[proposer.0 as usize]
                    .proposer
                    .clock_mut()
                    .step(*delta_ns);
            }
        }
    }
}
