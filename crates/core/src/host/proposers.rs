//! The proposer host: many proposers (or, under Multi-Paxos, the clients they become), the
//! workload that feeds them, their timers and the safety checker behind one sans-IO object, as
//! quinn-proto's `Endpoint` stands over its `Connection`s. The simulator, the load generator's real driver and the node tests are thin
//! I/O shells over it, so hosting rules (timers, drain, seeding) exist once.
//!
//! # Driving a host
//! - Build it with [`ProposerHost::new`], then call [`ProposerHost::start`] once.
//! - Inputs: [`ProposerHost::handle_reply`] for every PROMISE, NACK or ACCEPTED addressed to one
//!   of its proposers, and [`ProposerHost::handle_timeout`] once `now` reaches
//!   [`ProposerHost::poll_timeout`]. Commands: [`ProposerHost::stop`] and
//!   [`ProposerHost::step_clock`].
//! - Outputs, drained after every input or command:
//!   1. [`ProposerHost::poll_transmit`]: messages, each naming its sender and its recipients;
//!   2. [`ProposerHost::poll_timeout`]: when to call `handle_timeout` next (`None`: no timer).
//!
//!   Proposer events go to the [`Observer`] passed with each input, as they happen; the host
//!   feeds its own [`Checker`] with proposals, issued IDs and decisions.
//! - The run is over once [`ProposerHost::is_finished`]; a shell that reaches
//!   [`ProposerHost::deadline`] first calls [`ProposerHost::stop`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use crate::checker::{Checker, ChosenBy};
use crate::client::{Client, ClientConfig};
use crate::error::Error;
use crate::message::Message;
use crate::proposer::{Proposer, ProposerConfig, ProposerEvent};
use crate::protocol::ProtocolConfig;
use crate::rng::Stream;
use crate::time::Time;
use crate::transmit::Transmit;
use crate::types::{NodeId, ProposerId, ProposerIndex};
use crate::workload::{NextOp, OpOutcome, OpSpec, Workload};

/// After the workload's [`end`](Workload::end), how long operations in flight may take to
/// finish. Under the default retry budget (50 attempts of at most a 50 ms phase plus a 100 ms
/// backoff) an operation ends within 7.5 s, so what is still running after 10 s is stuck
/// behind a fault, and waiting longer would only stretch the run.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Hooks for whoever wants every proposer event as it happens: metrics, tracing, digests.
pub trait Observer {
    /// Hosted proposer `proposer` reported `event` at `now`.
    fn on_proposer_event(&mut self, _now: Time, _proposer: ProposerIndex, _event: &ProposerEvent) {}
}

impl Observer for () {}

/// Counts of what the hosted proposers did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HostStats {
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
}

/// A host timer. At equal times, due operations start before phase timeouts fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// The proposer's pending operation is due.
    Start(u32),
    /// The proposer's phase timeout or backoff, valid while it is the one armed.
    Proposer(u32),
}

/// What a hosted proposer is: a Paxos proposer, or a Multi-Paxos client of a leader.
// The slots sit in one vector and a host has one kind: boxing would add a pointer chase to
// every message of the common case to save memory no run has.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Role {
    Proposer(Proposer),
    Client(Client),
}

impl Role {
    fn propose(&mut self, now: Time, op: OpSpec) -> Result<(), Error> {
        match self {
            Role::Proposer(p) => p.propose(now, op.instance, op.value),
            Role::Client(c) => c.propose(now, op.instance, op.value),
        }
    }

    fn handle(&mut self, now: Time, message: &Message) -> Result<(), Error> {
        match self {
            Role::Proposer(p) => p.handle(now, message),
            Role::Client(c) => c.handle(now, message),
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        match self {
            Role::Proposer(p) => p.handle_timeout(now),
            Role::Client(c) => c.handle_timeout(now),
        }
    }

    fn cancel(&mut self) {
        match self {
            Role::Proposer(p) => p.cancel(),
            Role::Client(c) => c.cancel(),
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        match self {
            Role::Proposer(p) => p.poll_transmit(),
            Role::Client(c) => c.poll_transmit(),
        }
    }

    fn poll_event(&mut self) -> Option<ProposerEvent> {
        match self {
            Role::Proposer(p) => p.poll_event(),
            Role::Client(c) => c.poll_event(),
        }
    }

    fn poll_timeout(&self) -> Option<Time> {
        match self {
            Role::Proposer(p) => p.poll_timeout(),
            Role::Client(c) => c.poll_timeout(),
        }
    }
}

#[derive(Debug)]
struct Slot {
    role: Role,
    armed: Option<Time>,
    pending: Option<OpSpec>,
    done: bool,
    dirty: bool,
}

/// Many proposers, their workload and their timers. See the [module documentation](self).
#[derive(Debug)]
pub struct ProposerHost<W> {
    slots: Vec<Slot>,
    first_id: u32,
    workload: W,
    checker: Checker,
    stats: HostStats,
    timers: BinaryHeap<Reverse<(Time, Timer)>>,
    transmits: VecDeque<Transmit>,
    dirty: Vec<u32>,
    waiting: Vec<u32>,
    done: usize,
}

impl<W: Workload> ProposerHost<W> {
    /// One proposer per config, with ids `first_id`, `first_id + 1`, …, each with backoff jitter
    /// from its own [`Stream::Proposer`] of `seed`.
    pub fn new(
        configs: Vec<ProposerConfig>,
        first_id: ProposerId,
        seed: u64,
        workload: W,
    ) -> Result<Self, Error> {
        Self::build(configs, first_id, seed, workload, |id, config, seed| {
            Proposer::new(id, config, seed).map(Role::Proposer)
        })
    }

    /// One Multi-Paxos client per config, numbered and seeded as [`ProposerHost::new`] numbers
    /// and seeds proposers.
    pub fn clients(
        configs: Vec<ClientConfig>,
        first_id: ProposerId,
        seed: u64,
        workload: W,
    ) -> Result<Self, Error> {
        Self::build(configs, first_id, seed, workload, |id, config, seed| {
            Client::new(id, config, seed).map(Role::Client)
        })
    }

    /// The proposer side of `protocol`: a proposer per config under vanilla Paxos, a client
    /// per config under a leader, spread over `nodes` (asking the pinned leader first).
    pub fn for_protocol(
        protocol: &ProtocolConfig,
        configs: Vec<ProposerConfig>,
        nodes: &[NodeId],
        first_id: ProposerId,
        seed: u64,
        workload: W,
    ) -> Result<Self, Error> {
        match protocol {
            ProtocolConfig::Vanilla => Self::new(configs, first_id, seed, workload),
            ProtocolConfig::MultiPaxos(leader) => {
                let clients = ClientConfig::spread(&configs, nodes, leader.initial_leader);
                Self::clients(clients, first_id, seed, workload)
            }
        }
    }

    /// One role per config, numbered from `first_id`, each seeded from its own
    /// [`Stream::Proposer`] of `seed`.
    fn build<C>(
        configs: Vec<C>,
        first_id: ProposerId,
        seed: u64,
        workload: W,
        role: impl Fn(ProposerId, C, u64) -> Result<Role, Error>,
    ) -> Result<Self, Error> {
        let count = configs.len();
        let last = u32::try_from(count.saturating_sub(1))
            .ok()
            .and_then(|last| first_id.0.checked_add(last));
        if last.is_none() {
            return Err(Error::InvalidHost(format!(
                "{count} proposers from id {first_id} overflow a 32-bit proposer id"
            )));
        }
        let slots = (0u32..)
            .zip(configs)
            .map(|(index, config)| {
                let seed = Stream::Proposer(index).seed(seed);
                Ok(Slot {
                    role: role(ProposerId(first_id.0 + index), config, seed)?,
                    armed: None,
                    pending: None,
                    done: false,
                    dirty: false,
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(Self {
            slots,
            first_id: first_id.0,
            workload,
            checker: Checker::new(),
            stats: HostStats::default(),
            timers: BinaryHeap::new(),
            transmits: VecDeque::new(),
            dirty: Vec::new(),
            waiting: Vec::new(),
            done: 0,
        })
    }

    /// Asks the workload for every proposer's first operation.
    pub fn start(&mut self, now: Time, observer: &mut impl Observer) {
        for index in 0..self.slots.len() as u32 {
            self.ask(index, now);
        }
        self.pump(now, observer);
    }

    /// A reply from an acceptor to proposer `to`. Returns false when `to` is not hosted here.
    /// Replies to an operation that already ended are stale; the proposer ignores them.
    pub fn handle_reply(
        &mut self,
        now: Time,
        to: ProposerId,
        message: &Message,
        observer: &mut impl Observer,
    ) -> bool {
        let Some(index) = self.index_of(to) else {
            return false;
        };
        if let (Role::Client(client), Message::ClientReply(reply)) =
            (&self.slots[index.0 as usize].role, message)
            && client.is_answered_by(reply)
        {
            // The slot the leader gave this client's own value: proposed by the client, chosen
            // by that leader. Every shell (the simulator, real clusters, tests) checks it here.
            self.checker.on_proposed(reply.instance, &reply.value);
            self.checker
                .on_chosen(reply.instance, &reply.value, ChosenBy::Learner(reply.from));
        }
        if self.slots[index.0 as usize]
            .role
            .handle(now, message)
            .is_ok()
        {
            self.mark(index.0);
            self.pump(now, observer);
        }
        true
    }

    /// Fires every timer due at `now`: starts due operations, times out phases and backoffs.
    pub fn handle_timeout(&mut self, now: Time, observer: &mut impl Observer) {
        while let Some(&Reverse((at, timer))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            match timer {
                // A pending operation exists only for an idle proposer, and its start timer is
                // its `at`; one stopped since has no pending operation left to start.
                Timer::Start(index) => self.start_pending(index, now),
                Timer::Proposer(index) => {
                    let slot = &mut self.slots[index as usize];
                    if slot.armed == Some(at) {
                        slot.armed = None;
                        slot.role.handle_timeout(now);
                        self.mark(index);
                    }
                }
            }
        }
        self.pump(now, observer);
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When [`ProposerHost::handle_timeout`] must be called next; `None` when no timer is set.
    pub fn poll_timeout(&mut self) -> Option<Time> {
        while let Some(&Reverse((at, timer))) = self.timers.peek() {
            let live = match timer {
                Timer::Start(index) => self.slots[index as usize].pending.is_some(),
                Timer::Proposer(index) => self.slots[index as usize].armed == Some(at),
            };
            if live {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    /// Stops the run: the workload issues nothing more and every operation in progress is
    /// dropped without an outcome (the workload still counts it as in flight).
    pub fn stop(&mut self) {
        self.workload.stop();
        for slot in &mut self.slots {
            slot.role.cancel();
            slot.pending = None;
            slot.armed = None;
            slot.done = true;
        }
        self.done = self.slots.len();
        self.timers.clear();
        self.waiting.clear();
    }

    /// Steps proposer `index`'s wall clock by `delta_ns` (negative: back), as a clock fault.
    pub fn step_clock(&mut self, index: ProposerIndex, delta_ns: i64) {
        if let Some(Slot {
            role: Role::Proposer(proposer),
            ..
        }) = self.slots.get_mut(index.0 as usize)
        {
            proposer.clock_mut().step(delta_ns);
        }
    }

    /// Whether every proposer is idle and the workload has nothing more for any of them.
    pub fn is_finished(&self) -> bool {
        self.done == self.slots.len()
    }

    /// When a shell should stop waiting for operations in flight: the workload's end plus
    /// [`DRAIN`]; `None` for a workload bounded only by its operation count.
    pub fn deadline(&self) -> Option<Time> {
        self.workload.end().map(|end| end + DRAIN)
    }

    /// How many proposers are hosted.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no proposer is hosted.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The global id of hosted proposer `index`.
    pub fn id_of(&self, index: ProposerIndex) -> ProposerId {
        ProposerId(self.first_id + index.0)
    }

    /// The index of proposer `id`, if it is hosted here.
    pub fn index_of(&self, id: ProposerId) -> Option<ProposerIndex> {
        let index = id.0.checked_sub(self.first_id)?;
        ((index as usize) < self.slots.len()).then_some(ProposerIndex(index))
    }

    /// Counts so far.
    pub fn stats(&self) -> HostStats {
        self.stats
    }

    /// The safety checker, fed with every proposal, issued ID and decision so far.
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// The checker, for a shell that also feeds it (acceptor records, learners' decisions).
    pub fn checker_mut(&mut self) -> &mut Checker {
        &mut self.checker
    }

    /// The workload.
    pub fn workload(&self) -> &W {
        &self.workload
    }

    /// Ends the host, handing back the workload and the checker with what they recorded.
    pub fn into_parts(self) -> (W, Checker) {
        (self.workload, self.checker)
    }

    fn mark(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        if !slot.dirty {
            slot.dirty = true;
            self.dirty.push(index);
        }
    }

    /// Asks the workload what idle proposer `index` does next.
    fn ask(&mut self, index: u32, now: Time) {
        match self.workload.next_op(ProposerIndex(index), now) {
            NextOp::Start(op) => {
                let at = op.at;
                self.slots[index as usize].pending = Some(op);
                if at <= now {
                    self.start_pending(index, now);
                } else {
                    self.timers.push(Reverse((at, Timer::Start(index))));
                }
            }
            NextOp::Wait => self.waiting.push(index),
            NextOp::Done => {
                let slot = &mut self.slots[index as usize];
                if !slot.done {
                    slot.done = true;
                    self.done += 1;
                }
            }
        }
    }

    fn start_pending(&mut self, index: u32, now: Time) {
        let slot = &mut self.slots[index as usize];
        let Some(op) = slot.pending.take() else {
            return;
        };
        // A client's slot is the leader's to pick: the checker hears of the proposal from the
        // leader, which is where the instance is known.
        if matches!(slot.role, Role::Proposer(_)) {
            self.checker.on_op_started(op.instance, &op.value);
        }
        // A proposer is asked for its next operation only once idle, so this cannot fail.
        if slot.role.propose(now, op).is_ok() {
            self.stats.ops_started += 1;
            self.mark(index);
        }
    }

    fn pump(&mut self, now: Time, observer: &mut impl Observer) {
        while let Some(index) = self.dirty.pop() {
            self.pump_one(index, now, observer);
        }
    }

    /// Drains proposer `index`: its messages to the transmit queue, its events to the observer,
    /// the checker and the workload; then asks for its next operation if one ended, and re-arms
    /// its timer.
    fn pump_one(&mut self, index: u32, now: Time, observer: &mut impl Observer) {
        let from = ProposerIndex(index);
        let id = self.id_of(from);
        let slot = &mut self.slots[index as usize];
        slot.dirty = false;
        let is_client = matches!(slot.role, Role::Client(_));
        while let Some(transmit) = slot.role.poll_transmit() {
            self.transmits.push_back(transmit);
        }
        let mut ended = false;
        while let Some(event) = self.slots[index as usize].role.poll_event() {
            observer.on_proposer_event(now, from, &event);
            match &event {
                ProposerEvent::AttemptStarted {
                    instance, id: pid, ..
                } => {
                    self.stats.attempts += 1;
                    if !is_client {
                        self.checker.on_id_issued(id, *instance, *pid);
                    }
                }
                ProposerEvent::Preempted { .. } => self.stats.preemptions += 1,
                ProposerEvent::TimedOut { .. } => self.stats.timeouts += 1,
                // A client's decision names its operation, not the leader's slot; the leader
                // reports the slot and its value to the checker.
                ProposerEvent::Chosen {
                    instance, value, ..
                } if !is_client => self
                    .checker
                    .on_chosen(*instance, value, ChosenBy::Proposer(id)),
                ProposerEvent::Chosen { .. } => {}
                ProposerEvent::Promised { .. }
                | ProposerEvent::BackingOff { .. }
                | ProposerEvent::GaveUp { .. } => {}
            }
            if let Some((instance, outcome)) = OpOutcome::of_event(&event) {
                match outcome {
                    OpOutcome::Won => self.stats.ops_won += 1,
                    OpOutcome::Lost => self.stats.ops_lost += 1,
                    OpOutcome::GaveUp(_) => self.stats.ops_gave_up += 1,
                }
                self.workload.on_outcome(from, now, instance, outcome);
                if !is_client {
                    self.checker.on_op_ended(instance);
                }
                ended = true;
            }
        }
        if ended {
            self.ask(index, now);
            for waiting in std::mem::take(&mut self.waiting) {
                self.ask(waiting, now);
            }
        }
        let slot = &mut self.slots[index as usize];
        let timeout = slot.role.poll_timeout();
        if timeout != slot.armed {
            slot.armed = timeout;
            if let Some(at) = timeout {
                self.timers.push(Reverse((at, Timer::Proposer(index))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Accepted, Promise};
    use crate::transmit::{Address, To};
    use crate::types::{Instance, NodeId, ProposalId, Value};
    use crate::workload::UniformWorkload;

    const MS: Duration = Duration::from_millis(1);

    fn host(proposers: usize, ops: u64) -> ProposerHost<UniformWorkload> {
        let workload = UniformWorkload::new(1_000, ops, Duration::ZERO, Duration::ZERO, 1);
        ProposerHost::new(
            vec![ProposerConfig::new(3); proposers],
            ProposerId(100),
            7,
            workload,
        )
        .unwrap()
    }

    fn drain(host: &mut ProposerHost<UniformWorkload>) -> Vec<Transmit> {
        std::iter::from_fn(|| host.poll_transmit()).collect()
    }

    /// Answers every transmit as three healthy acceptors would, at `now`.
    fn answer(host: &mut ProposerHost<UniformWorkload>, now: Time, sent: &[Transmit]) {
        for transmit in sent {
            let Address::Proposer(to) = transmit.from else {
                panic!("a proposer host sends only from its proposers");
            };
            for node in 0..3 {
                let reply = match &transmit.message {
                    Message::Prepare(m) => Message::Promise(Promise {
                        instance: m.instance,
                        id: m.id,
                        from: NodeId(node),
                        accepted: None,
                    }),
                    Message::AcceptRequest(m) => Message::Accepted(Accepted {
                        instance: m.instance,
                        id: m.id,
                        value: m.value.clone(),
                        from: NodeId(node),
                    }),
                    _ => continue,
                };
                assert!(host.handle_reply(now, to, &reply, &mut ()));
            }
        }
    }

    #[test]
    fn a_clients_answer_tells_the_checker_its_slot_and_a_stranger_answer_does_not() {
        let workload = UniformWorkload::new(1_000, 1, Duration::ZERO, Duration::ZERO, 1);
        let nodes = [NodeId(0), NodeId(1), NodeId(2)];
        let clients = ClientConfig::spread(&[ProposerConfig::new(3)], &nodes, Some(NodeId(1)));
        let mut host = ProposerHost::clients(clients, ProposerId(100), 7, workload).unwrap();
        host.start(Time::ZERO, &mut ());
        let sent = drain(&mut host);
        let Message::ClientRequest(request) = &sent[0].message else {
            panic!("{sent:?}")
        };
        let answer = |value: Value, slot: u64| {
            Message::ClientReply(crate::message::ClientReply {
                instance: Instance::new(request.key, slot),
                value,
                from: NodeId(1),
            })
        };
        // An answer to some other operation is no decision of this client's.
        host.handle_reply(
            Time(1),
            ProposerId(100),
            &answer(Value::from("other"), 3),
            &mut (),
        );
        assert_eq!(host.checker().chosen(Instance::new(request.key, 3)), None);
        let own = request.value.clone();
        host.handle_reply(Time(2), ProposerId(100), &answer(own.clone(), 9), &mut ());
        assert_eq!(
            host.checker().chosen(Instance::new(request.key, 9)),
            Some(&own)
        );
        assert!(host.checker().violations().is_empty());
        assert_eq!(host.stats().ops_won, 1);
    }

    #[test]
    fn runs_every_operation_to_a_decision_and_finishes() {
        let mut host = host(4, 3);
        host.start(Time::ZERO, &mut ());
        let mut now = Time::ZERO;
        for _ in 0..100 {
            let sent = drain(&mut host);
            if sent.is_empty() {
                break;
            }
            assert!(sent.iter().all(|t| t.to == To::AllNodes));
            now = now + MS;
            answer(&mut host, now, &sent);
        }
        assert!(host.is_finished());
        assert_eq!(host.stats().ops_started, 12);
        assert_eq!(host.stats().ops_won + host.stats().ops_lost, 12);
        assert_eq!(host.poll_timeout(), None, "no timer outlives the work");
        assert!(host.checker().violations().is_empty());
    }

    #[test]
    fn unanswered_attempts_time_out_and_retry_with_a_higher_id() {
        let mut host = host(1, 1);
        host.start(Time::ZERO, &mut ());
        let first = drain(&mut host);
        let timeout = host.poll_timeout().unwrap();
        assert_eq!(timeout, Time::ZERO + 50 * MS);
        host.handle_timeout(Time(timeout.0 - 1), &mut ());
        assert!(drain(&mut host).is_empty(), "an early call fires nothing");
        host.handle_timeout(timeout, &mut ());
        assert_eq!(host.stats().timeouts, 1);
        // The default policy backs off first; the retry goes out when that timer fires.
        let backoff = host.poll_timeout().unwrap();
        host.handle_timeout(backoff, &mut ());
        let retry = drain(&mut host);
        assert!(retry[0].message.id() > first[0].message.id());
    }

    #[test]
    fn replies_for_other_hosts_are_refused_and_stale_ones_ignored() {
        let mut host = host(2, 1);
        host.start(Time::ZERO, &mut ());
        let stale = Message::Promise(Promise {
            instance: Instance::new(5, 5),
            id: ProposalId::new(1, 100),
            from: NodeId(0),
            accepted: Some((ProposalId::new(1, 1), Value::from_static(b"x"))),
        });
        assert!(!host.handle_reply(Time::ZERO, ProposerId(99), &stale, &mut ()));
        assert!(!host.handle_reply(Time::ZERO, ProposerId(102), &stale, &mut ()));
        assert!(host.handle_reply(Time::ZERO, ProposerId(101), &stale, &mut ()));
        assert_eq!(host.stats().ops_won, 0);
    }

    #[test]
    fn stop_ends_the_run_and_clears_every_timer() {
        let mut host = host(3, 10);
        host.start(Time::ZERO, &mut ());
        assert!(!host.is_finished());
        host.stop();
        assert!(host.is_finished());
        assert_eq!(host.poll_timeout(), None);
    }

    #[test]
    fn ids_overflowing_32_bits_are_refused() {
        let workload = UniformWorkload::new(1, 1, Duration::ZERO, Duration::ZERO, 1);
        let configs = vec![ProposerConfig::new(3); 2];
        assert!(matches!(
            ProposerHost::new(configs, ProposerId(u32::MAX), 1, workload),
            Err(Error::InvalidHost(_))
        ));
    }
}
