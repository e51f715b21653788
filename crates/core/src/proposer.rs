//! The proposer: drives one value at a time through phase 1 and phase 2, retries with a new,
//! higher ID after a backoff when it is preempted or times out, and reports every step.
//!
//! # Driving a proposer
//! - Commands: [`Proposer::propose`] starts an operation; [`Proposer::cancel`] drops it.
//! - Inputs: [`Proposer::handle_promise`], [`Proposer::handle_nack`],
//!   [`Proposer::handle_accepted`] (or [`Proposer::handle`] for any [`Message`]), and
//!   [`Proposer::handle_timeout`] once `now` reaches [`Proposer::poll_timeout`].
//! - Outputs, drained after every command or input, in this order:
//!   1. [`Proposer::poll_transmit`]: messages to send to **every** acceptor;
//!   2. [`Proposer::poll_event`]: what happened, for metrics and the safety checker;
//!   3. [`Proposer::poll_timeout`]: when to call `handle_timeout` next (it replaces any earlier
//!      deadline; `None` means no timer).
//!
//! Messages from an earlier attempt or another instance are ignored, except that the IDs they
//! carry are shown to the ID scheme so it can outrun them.

use std::collections::VecDeque;
use std::time::Duration;

use crate::backoff::BackoffPolicy;
use crate::error::Error;
use crate::id::{IdGenerator, IdScheme, IdSchemeKind};
use crate::message::{AcceptRequest, Accepted, Message, Nack, Prepare, Promise};
use crate::rng::DetRng;
use crate::time::{ClockModel, Time};
use crate::transmit::{Address, To, Transmit};
use crate::types::{Instance, NodeId, ProposalId, ProposerId, Quorums, Value};

/// Proposer settings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProposerConfig {
    /// How many acceptors there are.
    pub acceptors: usize,
    /// How many of them each phase waits for: majorities unless set otherwise.
    pub quorums: Quorums,
    /// How long to wait for a majority of PROMISEs before retrying. It should exceed the
    /// round trip plus the acceptors' fsync, or slow disks look like lost races.
    pub phase1_timeout: Duration,
    /// How long to wait for a majority of ACCEPTEDs before retrying.
    pub phase2_timeout: Duration,
    /// The delay before each retry.
    pub backoff: BackoffPolicy,
    /// Attempts per operation, the first included; the operation gives up after the last.
    pub max_attempts: u32,
    /// Time from `propose` after which the operation gives up; `None` for no limit.
    pub deadline: Option<Duration>,
    /// How proposal IDs are made.
    pub id_scheme: IdSchemeKind,
    /// This proposer's wall clock, read by timestamp-based ID schemes.
    pub clock: ClockModel,
}

impl ProposerConfig {
    /// Defaults for `acceptors` acceptors on a LAN: 50 ms phase timeouts (a loopback round
    /// trip is tens of microseconds, an fsync a few milliseconds at worst), exponential backoff
    /// with full jitter from 1 ms to 100 ms, 50 attempts, no deadline, counter IDs.
    pub fn new(acceptors: usize) -> Self {
        Self {
            acceptors,
            quorums: Quorums::majority(acceptors),
            phase1_timeout: Duration::from_millis(50),
            phase2_timeout: Duration::from_millis(50),
            backoff: BackoffPolicy::LAN,
            max_attempts: 50,
            deadline: None,
            id_scheme: IdSchemeKind::Counter,
            clock: ClockModel::ideal(),
        }
    }
}

/// The two phases of an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// PREPARE / PROMISE.
    Prepare,
    /// ACCEPT-REQUEST / ACCEPTED.
    Accept,
}

/// Why an operation stopped without a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GiveUpReason {
    /// Every attempt of the retry budget was used.
    RetryBudget,
    /// The operation's deadline passed.
    Deadline,
}

/// What happened, reported through [`Proposer::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProposerEvent {
    /// A new attempt began: PREPARE `id` went out.
    AttemptStarted {
        /// The instance.
        instance: Instance,
        /// The new proposal ID.
        id: ProposalId,
        /// 1 for the first attempt of the operation.
        attempt: u32,
    },
    /// A majority promised `id`; ACCEPT-REQUEST went out.
    Promised {
        /// The instance.
        instance: Instance,
        /// The promised ID.
        id: ProposalId,
        /// Whether an acceptor's value was adopted instead of the proposer's own.
        adopted: bool,
    },
    /// Enough acceptors rejected `id` that no majority can accept it.
    Preempted {
        /// The instance.
        instance: Instance,
        /// The rejected ID.
        id: ProposalId,
        /// The phase it was in.
        phase: Phase,
        /// The highest promise the rejections reported.
        by: ProposalId,
    },
    /// The phase's timeout passed without a majority.
    TimedOut {
        /// The instance.
        instance: Instance,
        /// The ID of the attempt.
        id: ProposalId,
        /// The phase it was in.
        phase: Phase,
    },
    /// The next attempt waits this long.
    BackingOff {
        /// The instance.
        instance: Instance,
        /// The delay.
        delay: Duration,
    },
    /// A majority accepted: the value is chosen and the operation is over.
    Chosen {
        /// The instance.
        instance: Instance,
        /// The proposal a majority accepted.
        id: ProposalId,
        /// The chosen value.
        value: Value,
        /// Whether it is the value this proposer proposed; if not, it lost the race.
        own: bool,
        /// Attempts used.
        attempts: u32,
    },
    /// The operation stopped without learning a decision.
    GaveUp {
        /// The instance.
        instance: Instance,
        /// Why.
        reason: GiveUpReason,
        /// Attempts used.
        attempts: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Stage {
    Preparing {
        highest_accepted: Option<(ProposalId, Value)>,
    },
    Accepting {
        value: Value,
    },
    BackingOff,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Operation {
    instance: Instance,
    own_value: Value,
    deadline: Time,
    attempts: u32,
    id: ProposalId,
    stage: Stage,
    timer: Time,
    last_backoff: Duration,
    highest_rejection: ProposalId,
}

/// One proposer. See the [module documentation](self) for how to drive it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Proposer {
    id: ProposerId,
    config: ProposerConfig,
    ids: IdGenerator,
    rng: DetRng,
    operation: Option<Operation>,
    /// Acceptors that answered the current phase yes (promised or accepted) and no (NACKed).
    /// They live outside `Operation` so their buffers are reused from one operation to the next.
    ayes: Vec<NodeId>,
    nays: Vec<NodeId>,
    transmits: VecDeque<Message>,
    events: VecDeque<ProposerEvent>,
}

impl Proposer {
    /// A proposer with its own seeded RNG for backoff jitter.
    pub fn new(id: ProposerId, config: ProposerConfig, seed: u64) -> Result<Self, Error> {
        if config.acceptors == 0 {
            return Err(Error::NoAcceptors);
        }
        if config.max_attempts == 0 {
            return Err(Error::ZeroAttempts);
        }
        if !config.quorums.fits(config.acceptors) {
            return Err(Error::QuorumOutOfRange {
                quorums: config.quorums,
                acceptors: config.acceptors,
            });
        }
        Ok(Self {
            id,
            ids: IdGenerator::new(config.id_scheme, id)?,
            rng: DetRng::new(seed),
            operation: None,
            ayes: Vec::with_capacity(config.acceptors),
            nays: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            config,
        })
    }

    /// This proposer's identity.
    pub fn id(&self) -> ProposerId {
        self.id
    }

    /// The settings.
    pub fn config(&self) -> &ProposerConfig {
        &self.config
    }

    /// The wall clock, for injecting clock steps.
    pub fn clock_mut(&mut self) -> &mut ClockModel {
        &mut self.config.clock
    }

    /// The instance of the operation in progress, if any.
    pub fn busy_with(&self) -> Option<Instance> {
        self.operation.as_ref().map(|op| op.instance)
    }

    /// Starts proposing `value` for `instance`.
    pub fn propose(&mut self, now: Time, instance: Instance, value: Value) -> Result<(), Error> {
        if let Some(op) = &self.operation {
            return Err(Error::ProposerBusy {
                proposer: self.id,
                instance: op.instance,
            });
        }
        let deadline = self.config.deadline.map_or(Time::MAX, |d| now + d);
        self.operation = Some(Operation {
            instance,
            own_value: value,
            deadline,
            attempts: 0,
            id: ProposalId::ZERO,
            stage: Stage::BackingOff,
            timer: Time::MAX,
            last_backoff: Duration::ZERO,
            highest_rejection: ProposalId::ZERO,
        });
        self.start_attempt(now);
        Ok(())
    }

    /// Drops the operation in progress without an event; replies to it are then ignored.
    pub fn cancel(&mut self) {
        self.end_operation();
    }

    /// Routes any message to its handler; only PROMISE, NACK and ACCEPTED are for a proposer.
    pub fn handle(&mut self, now: Time, message: &Message) -> Result<(), Error> {
        match message {
            Message::Promise(m) => self.handle_promise(now, m),
            Message::Nack(m) => self.handle_nack(now, m),
            Message::Accepted(m) => self.handle_accepted(now, m),
            other => {
                return Err(Error::UnexpectedMessage {
                    role: "proposer",
                    kind: other.kind(),
                });
            }
        }
        Ok(())
    }

    /// A PROMISE: on a phase-1 quorum for the current ID, phase 2 begins with the value of the
    /// highest-ID piggybacked proposal, or the proposer's own value when none came back.
    pub fn handle_promise(&mut self, now: Time, promise: &Promise) {
        if let Some((accepted_id, _)) = &promise.accepted {
            self.ids.observe(*accepted_id);
        }
        let quorum = self.config.quorums.phase1;
        let Some(op) = self.operation.as_mut() else {
            return;
        };
        if op.instance != promise.instance || op.id != promise.id {
            return;
        }
        let Stage::Preparing { highest_accepted } = &mut op.stage else {
            return;
        };
        if !insert_sorted(&mut self.ayes, promise.from) {
            return;
        }
        if let Some((id, value)) = &promise.accepted
            && highest_accepted.as_ref().is_none_or(|(best, _)| id > best)
        {
            *highest_accepted = Some((*id, value.clone()));
        }
        if self.ayes.len() < quorum {
            return;
        }
        let (value, adopted) = match highest_accepted.take() {
            Some((_, value)) => {
                let adopted = value != op.own_value;
                (value, adopted)
            }
            None => (op.own_value.clone(), false),
        };
        op.stage = Stage::Accepting {
            value: value.clone(),
        };
        self.ayes.clear();
        self.nays.clear();
        op.timer = (now + self.config.phase2_timeout).min(op.deadline);
        self.transmits
            .push_back(Message::AcceptRequest(AcceptRequest {
                instance: op.instance,
                id: op.id,
                value,
                from: self.id,
            }));
        self.events.push_back(ProposerEvent::Promised {
            instance: op.instance,
            id: op.id,
            adopted,
        });
    }

    /// An ACCEPTED: on a phase-2 quorum for the current ID, the value is chosen.
    ///
    /// Votes are counted by proposal ID alone, as Paxos may: unique IDs carry one value each.
    /// When an ID scheme breaks that promise (naive timestamps), two proposers sharing an ID
    /// both count each other's votes, which is how ID collisions turn into agreement violations.
    pub fn handle_accepted(&mut self, _now: Time, accepted: &Accepted) {
        let quorum = self.config.quorums.phase2;
        let Some(op) = self.operation.as_mut() else {
            return;
        };
        if op.instance != accepted.instance || op.id != accepted.id {
            return;
        }
        let Stage::Accepting { value } = &op.stage else {
            return;
        };
        if !insert_sorted(&mut self.ayes, accepted.from) {
            return;
        }
        if self.ayes.len() < quorum {
            return;
        }
        let event = ProposerEvent::Chosen {
            instance: op.instance,
            id: op.id,
            own: *value == op.own_value,
            value: value.clone(),
            attempts: op.attempts,
        };
        self.events.push_back(event);
        self.end_operation();
    }

    /// A NACK: once so many acceptors rejected the current ID that no quorum can be reached,
    /// the attempt is preempted and a retry is scheduled.
    pub fn handle_nack(&mut self, now: Time, nack: &Nack) {
        self.ids.observe(nack.promised);
        let acceptors = self.config.acceptors;
        let quorums = self.config.quorums;
        let Some(op) = self.operation.as_mut() else {
            return;
        };
        if op.instance != nack.instance || op.id != nack.id {
            return;
        }
        let (phase, needed) = match op.stage {
            Stage::Preparing { .. } => (Phase::Prepare, quorums.phase1),
            Stage::Accepting { .. } => (Phase::Accept, quorums.phase2),
            Stage::BackingOff => return,
        };
        if !insert_sorted(&mut self.nays, nack.from) {
            return;
        }
        op.highest_rejection = op.highest_rejection.max(nack.promised);
        if self.nays.len() < Quorums::hopeless_after(needed, acceptors) {
            return;
        }
        self.events.push_back(ProposerEvent::Preempted {
            instance: op.instance,
            id: op.id,
            phase,
            by: op.highest_rejection,
        });
        self.retry_or_give_up(now);
    }

    /// The timer set by [`Proposer::poll_timeout`] fired. Calls before that deadline are ignored.
    pub fn handle_timeout(&mut self, now: Time) {
        let Some(op) = self.operation.as_ref() else {
            return;
        };
        if now < op.timer {
            return;
        }
        let phase = match op.stage {
            Stage::Preparing { .. } => Phase::Prepare,
            Stage::Accepting { .. } => Phase::Accept,
            Stage::BackingOff => {
                if now >= op.deadline {
                    self.give_up(GiveUpReason::Deadline);
                } else {
                    self.start_attempt(now);
                }
                return;
            }
        };
        self.events.push_back(ProposerEvent::TimedOut {
            instance: op.instance,
            id: op.id,
            phase,
        });
        self.retry_or_give_up(now);
    }

    /// The next message, always to every acceptor.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let message = self.transmits.pop_front()?;
        Some(Transmit {
            from: Address::Proposer(self.id),
            to: To::AllNodes,
            message,
        })
    }

    /// The next thing that happened.
    pub fn poll_event(&mut self) -> Option<ProposerEvent> {
        self.events.pop_front()
    }

    /// When [`Proposer::handle_timeout`] must be called next; `None` when idle.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.operation.as_ref().map(|op| op.timer)
    }

    fn start_attempt(&mut self, now: Time) {
        let clock_ns = self.config.clock.read(now);
        let id = self.ids.next_id(clock_ns);
        let Some(op) = self.operation.as_mut() else {
            return;
        };
        op.attempts += 1;
        op.id = id;
        op.stage = Stage::Preparing {
            highest_accepted: None,
        };
        self.ayes.clear();
        self.nays.clear();
        op.highest_rejection = ProposalId::ZERO;
        op.timer = (now + self.config.phase1_timeout).min(op.deadline);
        self.events.push_back(ProposerEvent::AttemptStarted {
            instance: op.instance,
            id,
            attempt: op.attempts,
        });
        self.transmits.push_back(Message::Prepare(Prepare {
            instance: op.instance,
            id,
            from: self.id,
        }));
    }

    fn retry_or_give_up(&mut self, now: Time) {
        let Some(op) = self.operation.as_mut() else {
            return;
        };
        if now >= op.deadline {
            self.give_up(GiveUpReason::Deadline);
            return;
        }
        if op.attempts >= self.config.max_attempts {
            self.give_up(GiveUpReason::RetryBudget);
            return;
        }
        let delay = self
            .config
            .backoff
            .delay(op.attempts, op.last_backoff, &mut self.rng);
        op.last_backoff = delay;
        if delay.is_zero() {
            self.start_attempt(now);
            return;
        }
        op.stage = Stage::BackingOff;
        op.timer = (now + delay).min(op.deadline);
        self.events.push_back(ProposerEvent::BackingOff {
            instance: op.instance,
            delay,
        });
    }

    /// Ends the operation in progress. An idle proposer holds no votes, so two idle proposers
    /// with the same history are equal, whatever their last operation's replies were.
    fn end_operation(&mut self) -> Option<Operation> {
        self.ayes.clear();
        self.nays.clear();
        self.operation.take()
    }

    fn give_up(&mut self, reason: GiveUpReason) {
        if let Some(op) = self.end_operation() {
            self.events.push_back(ProposerEvent::GaveUp {
                instance: op.instance,
                reason,
                attempts: op.attempts,
            });
        }
    }
}

/// Adds `node` to a sorted set of voters; false if it was there. Keeping the set sorted makes
/// a proposer's state independent of arrival order, which a model checker relies on.
fn insert_sorted(voters: &mut Vec<NodeId>, node: NodeId) -> bool {
    match voters.binary_search(&node) {
        Ok(_) => false,
        Err(at) => {
            voters.insert(at, node);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const I: Instance = Instance::new(1, 0);
    const MS: Duration = Duration::from_millis(1);

    fn config() -> ProposerConfig {
        ProposerConfig {
            backoff: BackoffPolicy::Constant { delay: 2 * MS },
            max_attempts: 3,
            ..ProposerConfig::new(3)
        }
    }

    fn proposer(config: ProposerConfig) -> Proposer {
        Proposer::new(ProposerId(7), config, 1).unwrap()
    }

    fn drain_events(p: &mut Proposer) -> Vec<ProposerEvent> {
        std::iter::from_fn(|| p.poll_event()).collect()
    }

    fn drain_transmits(p: &mut Proposer) -> Vec<Message> {
        std::iter::from_fn(|| p.poll_transmit().map(|t| t.message)).collect()
    }

    fn promise(p: &Proposer, from: u32, accepted: Option<(u64, &'static str)>) -> Promise {
        let op = p.operation.as_ref().unwrap();
        Promise {
            instance: op.instance,
            id: op.id,
            from: NodeId(from),
            accepted: accepted
                .map(|(high, v)| (ProposalId::new(high, 1), Value::from_static(v.as_bytes()))),
        }
    }

    fn accepted(p: &Proposer, from: u32, value: &Value) -> Accepted {
        let op = p.operation.as_ref().unwrap();
        Accepted {
            instance: op.instance,
            id: op.id,
            value: value.clone(),
            from: NodeId(from),
        }
    }

    fn nack(p: &Proposer, from: u32, promised: u64) -> Nack {
        let op = p.operation.as_ref().unwrap();
        Nack {
            instance: op.instance,
            id: op.id,
            promised: ProposalId::new(promised, 99),
            from: NodeId(from),
        }
    }

    #[test]
    fn uncontended_decision_in_two_phases() {
        let mut p = proposer(config());
        let own = Value::from_static(b"mine");
        p.propose(Time::ZERO, I, own.clone()).unwrap();
        let sent = drain_transmits(&mut p);
        assert!(matches!(&sent[..], [Message::Prepare(m)] if m.id == ProposalId::new(1, 7)));
        assert_eq!(p.poll_timeout(), Some(Time::ZERO + 50 * MS));

        p.handle_promise(Time(10), &promise(&p, 1, None));
        assert!(
            drain_transmits(&mut p).is_empty(),
            "one promise is not a majority"
        );
        p.handle_promise(Time(20), &promise(&p, 1, None));
        assert!(
            drain_transmits(&mut p).is_empty(),
            "a duplicate promise counts once"
        );
        p.handle_promise(Time(30), &promise(&p, 2, None));
        let sent = drain_transmits(&mut p);
        assert!(matches!(&sent[..], [Message::AcceptRequest(m)] if m.value == own));
        assert_eq!(p.poll_timeout(), Some(Time(30) + 50 * MS));

        p.handle_accepted(Time(40), &accepted(&p, 3, &own));
        p.handle_accepted(Time(50), &accepted(&p, 1, &own));
        let events = drain_events(&mut p);
        assert_eq!(
            events.last(),
            Some(&ProposerEvent::Chosen {
                instance: I,
                id: ProposalId::new(1, 7),
                value: own,
                own: true,
                attempts: 1
            })
        );
        assert_eq!(p.poll_timeout(), None);
        assert_eq!(p.busy_with(), None);
        assert!(
            p.ayes.is_empty() && p.nays.is_empty(),
            "an idle proposer holds no votes"
        );
    }

    #[test]
    fn adopts_the_value_with_the_highest_piggybacked_id() {
        let mut p = proposer(config());
        p.ids.observe(ProposalId::new(10, 0)); // so our ID beats the piggybacked ones
        p.propose(Time::ZERO, I, Value::from_static(b"mine"))
            .unwrap();
        drain_transmits(&mut p);
        p.handle_promise(Time(1), &promise(&p, 1, Some((4, "older"))));
        p.handle_promise(Time(2), &promise(&p, 2, Some((6, "newer"))));
        let sent = drain_transmits(&mut p);
        let Some(Message::AcceptRequest(request)) = sent.first() else {
            panic!("expected an accept request, got {sent:?}");
        };
        assert_eq!(request.value, Value::from_static(b"newer"));
        assert!(drain_events(&mut p).contains(&ProposerEvent::Promised {
            instance: I,
            id: request.id,
            adopted: true
        }));
        let value = request.value.clone();
        p.handle_accepted(Time(3), &accepted(&p, 1, &value));
        p.handle_accepted(Time(4), &accepted(&p, 3, &value));
        assert!(drain_events(&mut p).iter().any(
            |e| matches!(e, ProposerEvent::Chosen { own: false, value: v, .. } if *v == value)
        ));
    }

    #[test]
    fn highest_piggybacked_id_wins_whatever_the_arrival_order() {
        let mut p = proposer(config());
        p.ids.observe(ProposalId::new(10, 0));
        p.propose(Time::ZERO, I, Value::from_static(b"mine"))
            .unwrap();
        drain_transmits(&mut p);
        p.handle_promise(Time(1), &promise(&p, 1, Some((6, "newer"))));
        p.handle_promise(Time(2), &promise(&p, 2, Some((4, "older"))));
        assert!(matches!(drain_transmits(&mut p).first(),
            Some(Message::AcceptRequest(r)) if r.value == Value::from_static(b"newer")));
    }

    #[test]
    fn one_nack_of_three_is_not_a_preemption_but_two_are() {
        let mut p = proposer(config());
        p.propose(Time::ZERO, I, Value::from_static(b"v")).unwrap();
        drain_transmits(&mut p);
        drain_events(&mut p);
        p.handle_nack(Time(5), &nack(&p, 1, 40));
        assert!(drain_events(&mut p).is_empty());
        p.handle_nack(Time(6), &nack(&p, 2, 41));
        let events = drain_events(&mut p);
        assert_eq!(
            events,
            [
                ProposerEvent::Preempted {
                    instance: I,
                    id: ProposalId::new(1, 7),
                    phase: Phase::Prepare,
                    by: ProposalId::new(41, 99)
                },
                ProposerEvent::BackingOff {
                    instance: I,
                    delay: 2 * MS
                },
            ]
        );
        assert_eq!(p.poll_timeout(), Some(Time(6) + 2 * MS));
        p.handle_timeout(Time(6) + 2 * MS);
        let sent = drain_transmits(&mut p);
        assert!(
            matches!(&sent[..], [Message::Prepare(m)] if m.id == ProposalId::new(42, 7)),
            "the counter jumps past the NACKed promise: {sent:?}"
        );
    }

    #[test]
    fn timeouts_retry_with_a_higher_id_then_give_up_after_the_budget() {
        let mut p = proposer(config());
        p.propose(Time::ZERO, I, Value::from_static(b"v")).unwrap();
        let mut ids = Vec::new();
        let mut now = Time::ZERO;
        loop {
            for m in drain_transmits(&mut p) {
                ids.push(m.id());
            }
            let Some(deadline) = p.poll_timeout() else {
                break;
            };
            now = deadline;
            p.handle_timeout(now);
        }
        assert_eq!(ids.len(), 3);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        let events = drain_events(&mut p);
        let timeouts = events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    ProposerEvent::TimedOut {
                        phase: Phase::Prepare,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(timeouts, 3);
        assert_eq!(
            events.last(),
            Some(&ProposerEvent::GaveUp {
                instance: I,
                reason: GiveUpReason::RetryBudget,
                attempts: 3
            })
        );
        assert_eq!(now, Time::ZERO + (50 + 2 + 50 + 2 + 50) * MS);
    }

    #[test]
    fn deadline_ends_the_operation() {
        let mut p = proposer(ProposerConfig {
            deadline: Some(70 * MS),
            max_attempts: 100,
            ..config()
        });
        p.propose(Time::ZERO, I, Value::from_static(b"v")).unwrap();
        while let Some(t) = p.poll_timeout() {
            p.handle_timeout(t);
            assert!(t <= Time::ZERO + 70 * MS);
        }
        let events = drain_events(&mut p);
        assert!(matches!(
            events.last(),
            Some(ProposerEvent::GaveUp {
                reason: GiveUpReason::Deadline,
                attempts: 2,
                ..
            })
        ));
    }

    #[test]
    fn early_timeout_calls_and_stale_replies_are_ignored() {
        let mut p = proposer(config());
        p.propose(Time::ZERO, I, Value::from_static(b"v")).unwrap();
        drain_events(&mut p);
        p.handle_timeout(Time(1));
        assert!(drain_events(&mut p).is_empty());
        let mut stale = promise(&p, 1, None);
        stale.id = ProposalId::new(0, 7);
        p.handle_promise(Time(2), &stale);
        let mut other = promise(&p, 2, None);
        other.instance = Instance::new(9, 9);
        p.handle_promise(Time(3), &other);
        p.handle_promise(Time(4), &promise(&p, 3, None));
        assert!(
            drain_transmits(&mut p)
                .iter()
                .all(|m| !matches!(m, Message::AcceptRequest(_)))
        );
    }

    #[test]
    fn busy_proposer_refuses_a_second_operation() {
        let mut p = proposer(config());
        p.propose(Time::ZERO, I, Value::from_static(b"v")).unwrap();
        assert!(matches!(
            p.propose(Time::ZERO, Instance::new(2, 0), Value::from_static(b"w")),
            Err(Error::ProposerBusy { .. })
        ));
        p.cancel();
        assert!(
            p.propose(Time::ZERO, Instance::new(2, 0), Value::from_static(b"w"))
                .is_ok()
        );
    }

    #[test]
    fn zero_backoff_retries_at_once() {
        let mut p = proposer(ProposerConfig {
            backoff: BackoffPolicy::None,
            ..config()
        });
        p.propose(Time::ZERO, I, Value::from_static(b"v")).unwrap();
        drain_transmits(&mut p);
        p.handle_timeout(Time::ZERO + 50 * MS);
        let sent = drain_transmits(&mut p);
        assert!(matches!(&sent[..], [Message::Prepare(m)] if m.id == ProposalId::new(2, 7)));
    }

    #[test]
    fn timestamp_ids_come_from_the_clock_model() {
        let mut p = proposer(ProposerConfig {
            id_scheme: IdSchemeKind::Timestamp,
            clock: ClockModel::ideal().with_offset(1_000),
            ..config()
        });
        p.propose(Time(500), I, Value::from_static(b"v")).unwrap();
        assert_eq!(
            p.poll_transmit().unwrap().message.id(),
            ProposalId::new(1_500, 7)
        );
    }

    #[test]
    fn rejects_impossible_configs() {
        assert!(matches!(
            Proposer::new(ProposerId(1), ProposerConfig::new(0), 0),
            Err(Error::NoAcceptors)
        ));
        let zero = ProposerConfig {
            max_attempts: 0,
            ..ProposerConfig::new(3)
        };
        assert!(matches!(
            Proposer::new(ProposerId(1), zero, 0),
            Err(Error::ZeroAttempts)
        ));
    }
}
