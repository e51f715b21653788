//! The acceptor: per-instance promise and accepted proposal, and the rules that move them; for
//! Multi-Paxos also a global promise covering every instance (in [`ranged`]).
//!
//! # Driving an acceptor
//! 1. Feed requests with [`Acceptor::handle_prepare`] and [`Acceptor::handle_accept_request`]
//!    (or [`Acceptor::handle`] for any [`Message`]). Any number may be fed before step 2; that
//!    is how a driver batches many requests into one fsync (group commit).
//! 2. Take [`Acceptor::ready`]. The [`Ready`] holds the [`Record`]s that changed, the messages
//!    that may go out at once ([`Ready::take_unpersisted_messages`], only NACKs, which promise
//!    nothing), and the messages that may go out only once the records are durable.
//! 3. Write [`Ready::records`] (and [`Ready::global_promise`], when set) to stable storage and
//!    wait until it is durable, then call
//!    [`Ready::persisted`] to get the PROMISE and ACCEPTED messages and send them. Batches must be
//!    made durable in the order they were taken. A driver that cannot persist (disk error)
//!    drops the `Ready`: nothing that depended on it is ever sent.
//!
//! # Bounded memory
//! The acceptor stays sans-IO: it never reads storage. A driver that keeps only some instances
//! in memory pre-loads an instance's persisted state with [`Acceptor::load`] before feeding a
//! request for it, and drops states with [`Acceptor::forget`] once they are durable where it
//! can read them again. A request for an instance the acceptor does not hold is handled as one
//! for a fresh instance, so a driver that forgets must always load first; `forget` refuses a
//! state whose change is not yet handed out by [`Acceptor::ready`].

mod ranged;

pub use ranged::RangedState;

use std::mem;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::message::{AcceptRequest, Accepted, Message, Nack, Prepare, Promise};
use crate::transmit::{Address, To, Transmit};
use crate::types::{Instance, NodeId, ProposalId, ProposerId, Value};

/// What an acceptor does with a request below its promise.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RejectMode {
    /// Ignore it, as the classic description has it: the proposer learns only by timing out.
    #[default]
    Silent,
    /// Reply with a [`Nack`] carrying the highest promised ID, so the proposer can retry at once.
    Nack,
}

/// Acceptor settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AcceptorConfig {
    /// What to do with requests below the promise.
    pub reject_mode: RejectMode,
    /// Send ACCEPTED to every learner as well as to the proposer. The classic description does;
    /// turning it off leaves the proposer as the only learner and saves `n × n` messages per
    /// decision.
    pub notify_learners: bool,
}

impl Default for AcceptorConfig {
    fn default() -> Self {
        Self {
            reject_mode: RejectMode::Silent,
            notify_learners: true,
        }
    }
}

/// What an acceptor must remember about one instance across crashes. Under Multi-Paxos the
/// promise that binds it is the higher of `promised` and the acceptor's global promise.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AcceptorState {
    /// The highest ID promised; requests below it are rejected.
    pub promised: ProposalId,
    /// The proposal accepted last (it always has the highest ID accepted so far).
    pub accepted: Option<(ProposalId, Value)>,
}

/// One instance's state, as it must be written to stable storage.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Record {
    /// The instance.
    pub instance: Instance,
    /// Its full state after the change.
    pub state: AcceptorState,
}

/// Counts of what an acceptor has done, for stats lines and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AcceptorStats {
    /// PREPAREs handled.
    pub prepares: u64,
    /// ACCEPT-REQUESTs handled.
    pub accept_requests: u64,
    /// PROMISEs issued.
    pub promises: u64,
    /// Proposals accepted.
    pub accepts: u64,
    /// Requests rejected (NACKed or ignored).
    pub rejections: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct Slot {
    state: AcceptorState,
    dirty: bool,
    /// A commit notice said the accepted value is chosen and the node's learner was told.
    /// Volatile: after a restart a notice teaches the learner again, which is only redundant.
    committed: bool,
}

/// How often a node persists its acceptor's [`Acceptor::chosen_prefix`] when nothing else
/// makes it write it: a restarted node then reports at most about this much work above it.
pub const CHOSEN_PREFIX_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// One acceptor. See the [module documentation](self) for how to drive it.
#[derive(Clone, Debug)]
pub struct Acceptor {
    id: NodeId,
    config: AcceptorConfig,
    slots: FxHashMap<Instance, Slot>,
    dirty: Vec<Instance>,
    /// The Multi-Paxos promise that covers every instance, and whether it changed since the
    /// last [`Acceptor::ready`].
    global: ProposalId,
    global_dirty: bool,
    /// Per key, the slot below which commit notices marked every slot chosen (volatile).
    chosen_through: FxHashMap<u64, u64>,
    unpersisted: Vec<Transmit>,
    after_persist: Vec<Transmit>,
    stats: AcceptorStats,
}

/// The output of a batch of requests. See the [module documentation](self).
#[derive(Debug, Default)]
#[must_use = "records must be persisted and the messages sent"]
pub struct Ready {
    records: Vec<Record>,
    global: Option<ProposalId>,
    unpersisted: Vec<Transmit>,
    after_persist: Vec<Transmit>,
}

impl Ready {
    /// The records to make durable before [`Ready::persisted`].
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The new global promise to make durable with the records, if it rose.
    pub fn global_promise(&self) -> Option<ProposalId> {
        self.global
    }

    /// Messages that promise nothing and may be sent before the records are durable.
    pub fn take_unpersisted_messages(&mut self) -> Vec<Transmit> {
        mem::take(&mut self.unpersisted)
    }

    /// Whether there is nothing to persist and nothing to send.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.global.is_none()
            && self.unpersisted.is_empty()
            && self.after_persist.is_empty()
    }

    /// Call only once [`Ready::records`] are durable: the messages that depended on them.
    pub fn persisted(self) -> Vec<Transmit> {
        self.after_persist
    }
}

impl Acceptor {
    /// A fresh acceptor that has promised and accepted nothing.
    pub fn new(id: NodeId, config: AcceptorConfig) -> Self {
        Self {
            id,
            config,
            slots: FxHashMap::default(),
            dirty: Vec::new(),
            global: ProposalId::ZERO,
            global_dirty: false,
            chosen_through: FxHashMap::default(),
            unpersisted: Vec::new(),
            after_persist: Vec::new(),
            stats: AcceptorStats::default(),
        }
    }

    /// An acceptor restarting from the records it persisted. Later records for the same instance
    /// replace earlier ones, so a log of records can be replayed as written.
    pub fn restore(
        id: NodeId,
        config: AcceptorConfig,
        records: impl IntoIterator<Item = Record>,
    ) -> Self {
        let mut acceptor = Self::new(id, config);
        for record in records {
            acceptor.slots.insert(
                record.instance,
                Slot {
                    state: record.state,
                    dirty: false,
                    committed: false,
                },
            );
        }
        acceptor
    }

    /// This acceptor's node.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The settings.
    pub fn config(&self) -> AcceptorConfig {
        self.config
    }

    /// What it has promised and accepted for `instance`, if anything.
    pub fn state(&self, instance: Instance) -> Option<&AcceptorState> {
        self.slots.get(&instance).map(|slot| &slot.state)
    }

    /// Every instance it knows, with its state, in no particular order.
    pub fn states(&self) -> impl Iterator<Item = (Instance, &AcceptorState)> {
        self.slots.iter().map(|(i, slot)| (*i, &slot.state))
    }

    /// How many instances it holds in memory.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether it holds no instance.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether it holds `instance` in memory.
    pub fn holds(&self, instance: Instance) -> bool {
        self.slots.contains_key(&instance)
    }

    /// Holds a persisted state again, read back by the driver. A state it already holds is
    /// newer and is kept.
    pub fn load(&mut self, record: Record) {
        self.slots.entry(record.instance).or_insert(Slot {
            state: record.state,
            dirty: false,
            committed: false,
        });
    }

    /// Drops `instance` from memory unless it changed since the last [`Acceptor::ready`];
    /// returns whether it is gone. The driver must have made its state readable first.
    pub fn forget(&mut self, instance: Instance) -> bool {
        match self.slots.get(&instance) {
            Some(slot) if slot.dirty => false,
            Some(_) => {
                self.slots.remove(&instance);
                true
            }
            None => true,
        }
    }

    /// Counts of what it has done since it was created or restored.
    pub fn stats(&self) -> AcceptorStats {
        self.stats
    }

    /// Handles any message for an acceptor: PREPARE and ACCEPT-REQUEST, or Multi-Paxos's
    /// PREPARE-ALL and ACCEPT-BATCH.
    pub fn handle(&mut self, message: &Message) -> Result<(), Error> {
        match message {
            Message::Prepare(m) => self.handle_prepare(m),
            Message::AcceptRequest(m) => self.handle_accept_request(m),
            Message::PrepareAll(m) => self.handle_prepare_all(m),
            Message::AcceptBatch(m) => {
                self.handle_accept_batch(m);
            }
            other => {
                return Err(Error::UnexpectedMessage {
                    role: "acceptor",
                    kind: other.kind(),
                });
            }
        }
        Ok(())
    }

    /// Phase 1b: promise `id` unless a higher ID was promised, piggybacking the accepted proposal.
    /// A repeated PREPARE with the promised ID is promised again, which makes retransmissions
    /// and duplicated packets harmless.
    pub fn handle_prepare(&mut self, prepare: &Prepare) {
        self.stats.prepares += 1;
        let global = self.global;
        let slot = self.slots.entry(prepare.instance).or_default();
        if prepare.id < slot.state.promised.max(global) {
            let promised = slot.state.promised.max(global);
            self.reject(prepare.instance, prepare.id, promised, prepare.from);
            return;
        }
        if prepare.id > slot.state.promised {
            slot.state.promised = prepare.id;
            if !slot.dirty {
                slot.dirty = true;
                self.dirty.push(prepare.instance);
            }
        }
        self.stats.promises += 1;
        let promise = Promise {
            instance: prepare.instance,
            id: prepare.id,
            from: self.id,
            accepted: slot.state.accepted.clone(),
        };
        self.after_persist.push(Transmit {
            from: Address::Node(self.id),
            to: To::Proposer(prepare.from),
            message: Message::Promise(promise),
        });
    }

    /// Phase 2b: accept when `id` is at least the promise, which then rises to `id`.
    pub fn handle_accept_request(&mut self, request: &AcceptRequest) {
        self.stats.accept_requests += 1;
        let global = self.global;
        let slot = self.slots.entry(request.instance).or_default();
        if request.id < slot.state.promised.max(global) {
            let promised = slot.state.promised.max(global);
            self.reject(request.instance, request.id, promised, request.from);
            return;
        }
        let unchanged = slot.state.promised == request.id
            && slot
                .state
                .accepted
                .as_ref()
                .is_some_and(|(id, value)| *id == request.id && *value == request.value);
        if !unchanged {
            slot.state.promised = request.id;
            slot.state.accepted = Some((request.id, request.value.clone()));
            if !slot.dirty {
                slot.dirty = true;
                self.dirty.push(request.instance);
            }
        }
        self.stats.accepts += 1;
        let accepted = Message::Accepted(Accepted {
            instance: request.instance,
            id: request.id,
            value: request.value.clone(),
            from: self.id,
        });
        if self.config.notify_learners {
            self.after_persist.push(Transmit {
                from: Address::Node(self.id),
                to: To::AllNodes,
                message: accepted.clone(),
            });
        }
        self.after_persist.push(Transmit {
            from: Address::Node(self.id),
            to: To::Proposer(request.from),
            message: accepted,
        });
    }

    fn reject(&mut self, instance: Instance, id: ProposalId, promised: ProposalId, to: ProposerId) {
        self.stats.rejections += 1;
        if self.config.reject_mode == RejectMode::Nack {
            self.unpersisted.push(Transmit {
                from: Address::Node(self.id),
                to: To::Proposer(to),
                message: Message::Nack(Nack {
                    instance,
                    id,
                    promised,
                    from: self.id,
                }),
            });
        }
    }

    /// Whether [`Acceptor::ready`] has anything in it.
    pub fn has_ready(&self) -> bool {
        !self.dirty.is_empty()
            || self.global_dirty
            || !self.unpersisted.is_empty()
            || !self.after_persist.is_empty()
    }

    /// Everything the requests handled since the last call produced.
    pub fn ready(&mut self) -> Ready {
        let mut records = Vec::with_capacity(self.dirty.len());
        for instance in self.dirty.drain(..) {
            if let Some(slot) = self.slots.get_mut(&instance) {
                slot.dirty = false;
                records.push(Record {
                    instance,
                    state: slot.state.clone(),
                });
            }
        }
        let global = mem::take(&mut self.global_dirty).then_some(self.global);
        Ready {
            records,
            global,
            unpersisted: mem::take(&mut self.unpersisted),
            after_persist: mem::take(&mut self.after_persist),
        }
    }
}

/// Equality and hashing leave the stats out, so that a model checker treats two acceptors
/// with the same promises, accepts and pending output as one state.
impl PartialEq for Acceptor {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.config == other.config
            && self.slots == other.slots
            && self.dirty == other.dirty
            && self.global == other.global
            && self.global_dirty == other.global_dirty
            && self.chosen_through == other.chosen_through
            && self.unpersisted == other.unpersisted
            && self.after_persist == other.after_persist
    }
}
impl Eq for Acceptor {}

impl std::hash::Hash for Acceptor {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
        let mut slots: Vec<_> = self.slots.iter().collect();
        slots.sort_unstable_by_key(|(instance, _)| **instance);
        slots.hash(state);
        self.dirty.hash(state);
        self.global.hash(state);
        self.global_dirty.hash(state);
        self.unpersisted.hash(state);
        self.after_persist.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const I: Instance = Instance::new(1, 0);
    const P: ProposerId = ProposerId(9);

    fn acceptor(reject_mode: RejectMode) -> Acceptor {
        Acceptor::new(
            NodeId(1),
            AcceptorConfig {
                reject_mode,
                notify_learners: true,
            },
        )
    }

    fn prepare(high: u64) -> Prepare {
        Prepare {
            instance: I,
            id: ProposalId::new(high, 0),
            from: P,
        }
    }

    fn accept(high: u64, value: &'static str) -> AcceptRequest {
        AcceptRequest {
            instance: I,
            id: ProposalId::new(high, 0),
            value: Value::from_static(value.as_bytes()),
            from: P,
        }
    }

    fn persisted(a: &mut Acceptor) -> Vec<Message> {
        a.ready()
            .persisted()
            .into_iter()
            .map(|o| o.message)
            .collect()
    }

    #[test]
    fn a_forgotten_state_loaded_again_is_the_same_and_a_dirty_one_is_kept() {
        let mut a = acceptor(RejectMode::Nack);
        a.handle_prepare(&prepare(5));
        assert!(!a.forget(I), "not yet handed out for persisting");
        let records = a.ready().records().to_vec();
        assert!(a.forget(I) && !a.holds(I) && a.is_empty());
        a.load(records[0].clone());
        a.handle_prepare(&prepare(4));
        let mut ready = a.ready();
        assert!(ready.records().is_empty());
        let nack = ready.take_unpersisted_messages();
        assert!(
            matches!(&nack[0].message, Message::Nack(n) if n.promised == ProposalId::new(5, 0))
        );
        // A loaded state never replaces a newer one held.
        a.handle_prepare(&prepare(7));
        a.load(records[0].clone());
        assert_eq!(a.state(I).map(|s| s.promised), Some(ProposalId::new(7, 0)));
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn promises_a_higher_prepare_and_persists_before_replying() {
        let mut a = acceptor(RejectMode::Silent);
        a.handle_prepare(&prepare(5));
        let mut ready = a.ready();
        assert_eq!(
            ready.records(),
            [Record {
                instance: I,
                state: AcceptorState {
                    promised: ProposalId::new(5, 0),
                    accepted: None
                }
            }]
        );
        assert!(
            ready.take_unpersisted_messages().is_empty(),
            "a promise waits for the disk"
        );
        let out = ready.persisted();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to, To::Proposer(P));
        assert!(
            matches!(&out[0].message, Message::Promise(p) if p.id == ProposalId::new(5, 0) && p.accepted.is_none())
        );
    }

    #[test]
    fn piggybacks_the_accepted_proposal_on_a_later_promise() {
        let mut a = acceptor(RejectMode::Silent);
        a.handle_prepare(&prepare(5));
        a.handle_accept_request(&accept(5, "x"));
        let _ = a.ready();
        a.handle_prepare(&prepare(7));
        let out = persisted(&mut a);
        match &out[..] {
            [Message::Promise(p)] => {
                assert_eq!(p.id, ProposalId::new(7, 0));
                assert_eq!(
                    p.accepted,
                    Some((ProposalId::new(5, 0), Value::from_static(b"x")))
                );
            }
            other => panic!("expected one promise, got {other:?}"),
        }
    }

    #[test]
    fn silent_mode_ignores_requests_below_the_promise() {
        let mut a = acceptor(RejectMode::Silent);
        a.handle_prepare(&prepare(5));
        let _ = a.ready();
        a.handle_prepare(&prepare(4));
        a.handle_accept_request(&accept(4, "y"));
        let ready = a.ready();
        assert!(ready.is_empty(), "{ready:?}");
        assert_eq!(a.state(I).unwrap().accepted, None);
        assert_eq!(a.stats().rejections, 2);
    }

    #[test]
    fn nack_mode_replies_with_the_highest_promise_without_waiting_for_the_disk() {
        let mut a = acceptor(RejectMode::Nack);
        a.handle_prepare(&prepare(5));
        let _ = a.ready();
        a.handle_accept_request(&accept(3, "y"));
        let mut ready = a.ready();
        assert!(ready.records().is_empty());
        let now = ready.take_unpersisted_messages();
        assert_eq!(
            now,
            [Transmit {
                from: Address::Node(NodeId(1)),
                to: To::Proposer(P),
                message: Message::Nack(Nack {
                    instance: I,
                    id: ProposalId::new(3, 0),
                    promised: ProposalId::new(5, 0),
                    from: NodeId(1),
                })
            }]
        );
        assert!(ready.persisted().is_empty());
    }

    #[test]
    fn accepts_at_or_above_the_promise_and_raises_the_promise() {
        let mut a = acceptor(RejectMode::Silent);
        a.handle_prepare(&prepare(5));
        a.handle_accept_request(&accept(5, "x"));
        let out = persisted(&mut a);
        assert_eq!(
            out.len(),
            3,
            "promise, accepted to learners and to the proposer"
        );
        // An ACCEPT-REQUEST above the promise, with no PREPARE, is accepted too.
        a.handle_accept_request(&accept(8, "z"));
        let ready = a.ready();
        assert_eq!(ready.records()[0].state.promised, ProposalId::new(8, 0));
        let out = ready.persisted();
        assert_eq!(out[0].to, To::AllNodes);
        assert_eq!(out[1].to, To::Proposer(P));
        // Now a PREPARE between the two is below the promise.
        a.handle_prepare(&prepare(6));
        assert!(a.ready().is_empty());
    }

    #[test]
    fn a_repeated_prepare_is_promised_again_but_not_rewritten() {
        let mut a = acceptor(RejectMode::Silent);
        a.handle_prepare(&prepare(5));
        let _ = a.ready();
        a.handle_prepare(&prepare(5));
        let ready = a.ready();
        assert!(ready.records().is_empty());
        assert_eq!(ready.persisted().len(), 1);
    }

    #[test]
    fn one_record_per_instance_per_batch() {
        let mut a = acceptor(RejectMode::Silent);
        a.handle_prepare(&prepare(5));
        a.handle_prepare(&prepare(6));
        a.handle_accept_request(&accept(6, "x"));
        let ready = a.ready();
        assert_eq!(ready.records().len(), 1);
        assert_eq!(
            ready.records()[0].state.accepted,
            Some((ProposalId::new(6, 0), Value::from_static(b"x")))
        );
        assert_eq!(ready.persisted().len(), 4);
    }

    #[test]
    fn without_learner_fan_out_accepted_goes_only_to_the_proposer() {
        let mut a = Acceptor::new(
            NodeId(2),
            AcceptorConfig {
                reject_mode: RejectMode::Silent,
                notify_learners: false,
            },
        );
        a.handle_accept_request(&accept(1, "x"));
        let out = a.ready().persisted();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to, To::Proposer(P));
    }

    #[test]
    fn restore_remembers_promises_and_accepts() {
        let mut a = acceptor(RejectMode::Silent);
        a.handle_prepare(&prepare(5));
        a.handle_accept_request(&accept(5, "x"));
        let records = a.ready().records().to_vec();
        let mut b = Acceptor::restore(NodeId(1), a.config(), records);
        assert_eq!(b.state(I), a.state(I));
        b.handle_prepare(&prepare(4));
        assert!(b.ready().is_empty(), "the restored promise still holds");
    }

    #[test]
    fn handle_refuses_messages_for_other_roles() {
        let mut a = acceptor(RejectMode::Silent);
        let promise = Message::Promise(Promise {
            instance: I,
            id: ProposalId::new(1, 0),
            from: NodeId(3),
            accepted: None,
        });
        assert!(matches!(
            a.handle(&promise),
            Err(Error::UnexpectedMessage {
                role: "acceptor",
                kind: "promise"
            })
        ));
    }
}

#[cfg(test)]
mod properties {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Step {
        Prepare {
            key: u64,
            round: u64,
        },
        /// One value per proposal ID, as unique IDs guarantee: the value is the round's.
        Accept {
            key: u64,
            round: u64,
        },
        /// Take `ready`, persist it, then release its messages.
        Persist,
        /// Take `ready` and crash before the write completes, then restart from the store.
        CrashBeforePersist,
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        proptest::collection::vec(
            prop_oneof![
                (0u64..2, 0u64..8).prop_map(|(key, round)| Step::Prepare { key, round }),
                (0u64..2, 0u64..8).prop_map(|(key, round)| Step::Accept { key, round }),
                Just(Step::Persist),
                Just(Step::CrashBeforePersist),
            ],
            1..120,
        )
    }

    proptest! {
        /// Whatever arrives and whenever it crashes, a released reply is backed by the store,
        /// promises never go down on disk, and nothing is accepted above its promise.
        #[test]
        fn replies_are_always_backed_by_durable_state(
            nack in any::<bool>(),
            steps in steps(),
        ) {
            let config = AcceptorConfig {
                reject_mode: if nack { RejectMode::Nack } else { RejectMode::Silent },
                notify_learners: true,
            };
            let mut acceptor = Acceptor::new(NodeId(0), config);
            let mut store: HashMap<Instance, AcceptorState> = HashMap::new();
            for step in steps {
                match step {
                    Step::Prepare { key, round } => acceptor.handle_prepare(&Prepare {
                        instance: Instance::new(key, 0),
                        id: ProposalId::new(round, 1),
                        from: ProposerId(1),
                    }),
                    Step::Accept { key, round } => {
                        acceptor.handle_accept_request(&AcceptRequest {
                            instance: Instance::new(key, 0),
                            id: ProposalId::new(round, 1),
                            value: Value::from(vec![round as u8]),
                            from: ProposerId(1),
                        })
                    }
                    Step::CrashBeforePersist => {
                        let _lost = acceptor.ready();
                        let records = store.iter().map(|(instance, state)| Record {
                            instance: *instance,
                            state: state.clone(),
                        });
                        acceptor = Acceptor::restore(NodeId(0), config, records);
                    }
                    Step::Persist => {
                        let mut ready = acceptor.ready();
                        for out in ready.take_unpersisted_messages() {
                            prop_assert!(matches!(out.message, Message::Nack(_)));
                        }
                        for record in ready.records() {
                            let previous = store
                                .get(&record.instance)
                                .map_or(ProposalId::ZERO, |s| s.promised);
                            prop_assert!(record.state.promised >= previous);
                            if let Some((id, _)) = &record.state.accepted {
                                prop_assert!(*id <= record.state.promised);
                            }
                            store.insert(record.instance, record.state.clone());
                        }
                        for out in ready.persisted() {
                            let durable = out.message.instance().and_then(|i| store.get(&i));
                            prop_assert!(durable.is_some(), "reply with nothing on disk: {out:?}");
                            let durable = durable.unwrap();
                            match &out.message {
                                Message::Promise(p) => {
                                    prop_assert!(durable.promised >= p.id);
                                    if let Some((id, _)) = &p.accepted {
                                        prop_assert!(*id <= p.id);
                                    }
                                }
                                Message::Accepted(a) => {
                                    let (id, value) = durable.accepted.as_ref().unwrap();
                                    prop_assert!(*id >= a.id);
                                    if *id == a.id {
                                        prop_assert_eq!(value, &a.value);
                                    }
                                }
                                other => prop_assert!(false, "unexpected {other:?}"),
                            }
                        }
                    }
                }
            }
        }
    }
}
