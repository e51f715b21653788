//! The online safety checker. Drivers feed it what they see (proposals, IDs issued, acceptor
//! records, acknowledgements, decisions) and it reports each broken Paxos invariant as a
//! [`Violation`] with the context needed to debug it. Each event costs a hash-map lookup or two.
//!
//! Its memory is bounded by what can still change: an instance that is decided and has no
//! operation in flight is retired, after a grace of [`Checker::DEFAULT_RETAIN`] younger
//! retirements, into a [`RetiredStore`], and brought back if a late message names it. Proposal
//! IDs are compared within a window of the last [`ID_WINDOW`] to [`ID_WINDOW`] × 2 issued.

mod retired;
mod violation;

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

pub use retired::{Acked, Forget, InstanceFacts, MemoryStore, RetiredStore, value_digest};
pub use violation::{ChosenBy, Violation};

use crate::acceptor::Record;
use crate::message::Message;
use crate::types::{Instance, NodeId, ProposalId, ProposerId, Value};
use crate::workload::ValueTag;

/// IDs issued are remembered in two generations of this many: a collision or reuse is found
/// when the two IDs were issued fewer than this many IDs apart, and possibly up to twice that.
/// Every scheme's IDs grow with its clock or its rounds, so a repeat comes soon or never.
pub const ID_WINDOW: usize = 1 << 16;

/// Cleared facts kept for reuse when retiring keeps nothing.
const SPARE_FACTS: usize = 1_024;

/// Counts the checker keeps whether or not anything is violated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CheckerStats {
    /// Events fed.
    pub events: u64,
    /// Instances seen decided.
    pub decided: u64,
    /// Proposal IDs issued.
    pub ids_issued: u64,
    /// IDs issued by two different proposers.
    pub id_collisions: u64,
    /// IDs issued twice by the same proposer.
    pub id_reuses: u64,
    /// PROMISE and ACCEPTED replies noted.
    pub acks: u64,
    /// Instances handed to the retired store (an instance brought back and retired again
    /// counts twice).
    pub retired: u64,
    /// Retired instances brought back by a late message.
    pub revived: u64,
    /// The most instances held in memory at once.
    pub most_retained: u64,
    /// Decisions for a value an earlier run proposed (the cluster held it before this run;
    /// see [`Origins`]).
    pub preexisting: u64,
    /// Decisions for a value another generator of this run proposed: its validity is checked
    /// where every generator's proposals meet (the load generator's `merge`).
    pub other_generators: u64,
}

/// Whose values this checker can vouch for, when its proposers share a cluster with others: a
/// value chosen that none of its own proposers proposed is a validity violation only if it is
/// one of theirs or is no paxbench value at all ([`ValueTag`]). One chosen by another run is
/// pre-existing; one chosen by another generator of the same run is checked across generators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origins {
    /// This run's tag.
    pub run: u32,
    /// This generator's proposers.
    pub proposers: std::ops::Range<u32>,
}

/// Where a chosen value that this checker never saw proposed came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stranger {
    /// From another run: the cluster held it before this run.
    EarlierRun,
    /// From another generator of this run.
    OtherGenerator,
    /// From nowhere this checker can explain.
    Unexplained,
}

impl Origins {
    fn classify(&self, value: &Value) -> Stranger {
        match ValueTag::of(value) {
            Some(tag) if tag.run != self.run => Stranger::EarlierRun,
            Some(tag) if !self.proposers.contains(&tag.proposer.0) => Stranger::OtherGenerator,
            _ => Stranger::Unexplained,
        }
    }
}

#[derive(Debug, Default)]
struct Live {
    facts: InstanceFacts,
    /// Operations in flight on the instance.
    active: u32,
    /// Whether it waits in the retirement queue.
    queued: bool,
}

/// IDs issued recently, in two generations.
#[derive(Debug, Default)]
struct IdWindow {
    current: FxHashMap<ProposalId, (ProposerId, Instance)>,
    previous: FxHashMap<ProposalId, (ProposerId, Instance)>,
}

impl IdWindow {
    /// Notes `id`; returns who issued it before, if that is remembered.
    fn insert(
        &mut self,
        id: ProposalId,
        by: (ProposerId, Instance),
    ) -> Option<(ProposerId, Instance)> {
        if self.current.len() >= ID_WINDOW {
            self.previous = std::mem::take(&mut self.current);
        }
        let earlier = self.previous.get(&id).copied();
        self.current.insert(id, by).or(earlier)
    }
}

/// The checker. Feed it with the `on_*` methods; read [`Checker::violations`].
#[derive(Debug)]
pub struct Checker {
    instances: FxHashMap<Instance, Live>,
    retiring: VecDeque<Instance>,
    retain: usize,
    /// Per key, one past the highest slot ever retired: an instance above it was never
    /// retired, so the store is asked only about instances that may be there. Kept only when
    /// the store remembers: with a million keys it costs a cache miss per decision.
    retired_below: FxHashMap<u64, u64>,
    remembers: bool,
    /// Cleared facts of instances retired into a store that keeps nothing, reused.
    spare: Vec<InstanceFacts>,
    store: Box<dyn RetiredStore>,
    issued: IdWindow,
    origins: Option<Origins>,
    violations: Vec<Violation>,
    stats: CheckerStats,
}

impl Default for Checker {
    fn default() -> Self {
        Self::new()
    }
}

impl Checker {
    /// Retirements that wait in memory before an instance goes to the store: late messages
    /// (a third ACCEPTED, a learner's notice) almost always arrive within them.
    pub const DEFAULT_RETAIN: usize = 32_768;

    /// An empty checker that retires into memory.
    pub fn new() -> Self {
        Self::with_store(Box::new(MemoryStore::new()), Self::DEFAULT_RETAIN)
    }

    /// An empty checker that retires into `store`, keeping the `retain` most recent retirements
    /// in memory.
    pub fn with_store(store: Box<dyn RetiredStore>, retain: usize) -> Self {
        Self {
            instances: FxHashMap::default(),
            retiring: VecDeque::new(),
            retain,
            retired_below: FxHashMap::default(),
            remembers: store.remembers(),
            spare: Vec::new(),
            store,
            issued: IdWindow::default(),
            origins: None,
            violations: Vec::new(),
            stats: CheckerStats::default(),
        }
    }

    /// Shares the cluster with other runs and generators: see [`Origins`]. Without it, every
    /// chosen value must have been proposed to this checker.
    pub fn set_origins(&mut self, origins: Origins) {
        self.origins = Some(origins);
    }

    /// The live facts of `instance`, brought back from the store if it was retired.
    fn live(&mut self, instance: Instance) -> &mut Live {
        if !self.instances.contains_key(&instance) {
            let maybe_retired = self
                .retired_below
                .get(&instance.key)
                .is_some_and(|below| instance.slot < *below);
            let facts = match maybe_retired.then(|| self.store.get(instance)).flatten() {
                Some(facts) => {
                    self.stats.revived += 1;
                    facts
                }
                None => self.spare.pop().unwrap_or_default(),
            };
            self.instances.insert(
                instance,
                Live {
                    facts,
                    ..Live::default()
                },
            );
            let held = self.instances.len() as u64;
            self.stats.most_retained = self.stats.most_retained.max(held);
        }
        self.instances.entry(instance).or_default()
    }

    fn facts(&mut self, instance: Instance) -> &mut InstanceFacts {
        &mut self.live(instance).facts
    }

    /// Queues `instance` for retirement if it is decided and idle, and retires the oldest
    /// queued instances beyond the grace.
    fn settle(&mut self, instance: Instance) {
        if let Some(live) = self.instances.get_mut(&instance)
            && live.active == 0
            && live.facts.chosen.is_some()
            && !live.queued
        {
            live.queued = true;
            self.retiring.push_back(instance);
        }
        while self.retiring.len() > self.retain {
            let Some(oldest) = self.retiring.pop_front() else {
                break;
            };
            self.retire(oldest);
        }
    }

    fn retire(&mut self, instance: Instance) {
        let Some(live) = self.instances.get_mut(&instance) else {
            return;
        };
        live.queued = false;
        if live.active > 0 {
            // An operation started on it again; it is queued anew once idle.
            return;
        }
        if let Some(mut live) = self.instances.remove(&instance) {
            self.stats.retired += 1;
            if self.remembers {
                let below = self.retired_below.entry(instance.key).or_insert(0);
                *below = (*below).max(instance.slot + 1);
                self.store.put(instance, live.facts);
            } else if self.spare.len() < SPARE_FACTS {
                // Nothing keeps the facts: their vectors' capacity serves the next instance.
                let facts = &mut live.facts;
                facts.proposed.clear();
                facts.accepted_values.clear();
                facts.promises.clear();
                facts.chosen = None;
                facts.acked.clear();
                self.spare.push(live.facts);
            }
        }
    }

    /// A client proposed `value` for `instance` (the proposer's own value, not an adopted one).
    pub fn on_proposed(&mut self, instance: Instance, value: &Value) {
        self.stats.events += 1;
        let facts = self.facts(instance);
        if !facts.proposed.contains(value) {
            facts.proposed.push(value.clone());
        }
    }

    /// An operation proposing `value` for `instance` started; the instance is not retired
    /// before [`Checker::on_op_ended`].
    pub fn on_op_started(&mut self, instance: Instance, value: &Value) {
        self.on_proposed(instance, value);
        self.live(instance).active += 1;
    }

    /// An operation on `instance` ended.
    pub fn on_op_ended(&mut self, instance: Instance) {
        if let Some(live) = self.instances.get_mut(&instance) {
            live.active = live.active.saturating_sub(1);
        }
        self.settle(instance);
    }

    /// A proposer issued `id` for an attempt on `instance`.
    pub fn on_id_issued(&mut self, proposer: ProposerId, instance: Instance, id: ProposalId) {
        self.stats.events += 1;
        self.stats.ids_issued += 1;
        match self.issued.insert(id, (proposer, instance)) {
            None => {}
            Some((first, _)) if first == proposer => {
                self.stats.id_reuses += 1;
                self.violations.push(Violation::IdReused {
                    id,
                    proposer,
                    instance,
                });
            }
            Some(first) => {
                self.stats.id_collisions += 1;
                self.violations.push(Violation::IdCollision {
                    id,
                    first,
                    second: (proposer, instance),
                });
            }
        }
    }

    /// A node sent `message` to a client: a PROMISE or ACCEPTED is an acknowledgement its store
    /// must back, kept for the audit. Other messages are ignored.
    pub fn on_reply(&mut self, message: &Message) {
        let instance = match message {
            Message::Promise(p) => p.instance,
            Message::Accepted(a) => a.instance,
            _ => return,
        };
        self.stats.events += 1;
        if self.facts(instance).on_ack(message) {
            self.stats.acks += 1;
        }
        self.settle(instance);
    }

    /// An acceptor persisted `record`.
    pub fn on_acceptor_record(&mut self, acceptor: NodeId, record: &Record) {
        self.stats.events += 1;
        let instance = record.instance;
        let state = &record.state;
        let mut found = Vec::new();
        let facts = self.facts(instance);
        let previous = match facts
            .promises
            .iter_mut()
            .find(|(node, _)| *node == acceptor)
        {
            Some((_, promised)) => std::mem::replace(promised, state.promised),
            None => {
                facts.promises.push((acceptor, state.promised));
                ProposalId::ZERO
            }
        };
        if state.promised < previous {
            found.push(Violation::PromiseRegressed {
                acceptor,
                instance,
                from: previous,
                to: state.promised,
            });
        }
        if let Some((id, value)) = &state.accepted {
            if *id > state.promised {
                found.push(Violation::AcceptedAbovePromise {
                    acceptor,
                    instance,
                    accepted: *id,
                    promised: state.promised,
                });
            }
            match facts.accepted_values.iter().find(|(seen, _)| seen == id) {
                Some((_, first)) if first != value => {
                    found.push(Violation::ConflictingProposal {
                        instance,
                        id: *id,
                        first: first.clone(),
                        second: value.clone(),
                        acceptor,
                    });
                }
                Some(_) => {}
                None => facts.accepted_values.push((*id, value.clone())),
            }
        }
        self.violations.extend(found);
        self.settle(instance);
    }

    /// `by` saw `value` chosen for `instance`.
    pub fn on_chosen(&mut self, instance: Instance, value: &Value, by: ChosenBy) {
        self.stats.events += 1;
        let mut found = Vec::new();
        let mut decided = false;
        // Sixteen bytes, no allocation: it frees `self` for the facts' mutable borrow.
        let origins = self.origins.clone();
        let facts = self.facts(instance);
        let proposed = facts.proposed.contains(value);
        let first = facts.chosen.is_none();
        // Only a value nobody here proposed needs its tag read: never on the common path.
        let stranger = if proposed {
            None
        } else {
            origins.as_ref().map(|o| o.classify(value))
        };
        if !proposed && matches!(stranger, None | Some(Stranger::Unexplained)) {
            found.push(Violation::Validity {
                instance,
                value: value.clone(),
                by,
            });
        }
        match &facts.chosen {
            None => {
                decided = true;
                facts.chosen = Some((value.clone(), by));
            }
            Some((first, _)) if first == value => {}
            Some(first) => {
                found.push(Violation::Agreement {
                    instance,
                    first: first.clone(),
                    second: (value.clone(), by),
                });
            }
        }
        self.stats.decided += u64::from(decided);
        if first && !proposed {
            match stranger {
                Some(Stranger::EarlierRun) => self.stats.preexisting += 1,
                Some(Stranger::OtherGenerator) => self.stats.other_generators += 1,
                _ => {}
            }
        }
        self.violations.extend(found);
        self.settle(instance);
    }

    /// Puts back the facts of `instance` read from evidence, as if they had been seen.
    pub fn restore(&mut self, instance: Instance, facts: InstanceFacts) {
        self.stats.decided += u64::from(facts.chosen.is_some());
        self.live(instance).facts = facts;
        self.settle(instance);
    }

    /// The value seen chosen for `instance`, if any, among the instances in memory.
    pub fn chosen(&self, instance: Instance) -> Option<&Value> {
        self.instances
            .get(&instance)
            .and_then(|live| live.facts.chosen.as_ref())
            .map(|(v, _)| v)
    }

    /// Whether `value` was proposed for `instance`, among the instances in memory.
    pub fn was_proposed(&self, instance: Instance, value: &Value) -> bool {
        self.instances
            .get(&instance)
            .is_some_and(|live| live.facts.proposed.contains(value))
    }

    /// The facts of `instance`, if it is in memory.
    pub fn facts_of(&self, instance: Instance) -> Option<&InstanceFacts> {
        self.instances.get(&instance).map(|live| &live.facts)
    }

    /// Every instance in memory with its facts, in no particular order.
    pub fn live_facts(&self) -> impl Iterator<Item = (Instance, &InstanceFacts)> {
        self.instances.iter().map(|(i, live)| (*i, &live.facts))
    }

    /// Instances held in memory now.
    pub fn retained(&self) -> usize {
        self.instances.len()
    }

    /// Retires every instance still in memory, decided or not, and finishes the store: after
    /// this the store holds the facts of every instance seen (the run's evidence). Returns the
    /// store's first failure.
    pub fn finish(&mut self) -> Result<(), String> {
        self.retiring.clear();
        let mut all: Vec<Instance> = self.instances.keys().copied().collect();
        all.sort_unstable();
        for instance in all {
            if let Some(live) = self.instances.get_mut(&instance) {
                live.active = 0;
            }
            self.retire(instance);
        }
        self.store.finish()
    }

    /// Every violation so far, in the order found.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Counts of what was checked.
    pub fn stats(&self) -> CheckerStats {
        self.stats
    }

    /// Violations of each kind, by [`Violation::kind`], sorted by kind.
    pub fn violation_counts(&self) -> Vec<(&'static str, u64)> {
        let mut counts: Vec<(&'static str, u64)> = Vec::new();
        for v in &self.violations {
            match counts.iter_mut().find(|(k, _)| *k == v.kind()) {
                Some((_, n)) => *n += 1,
                None => counts.push((v.kind(), 1)),
            }
        }
        counts.sort_unstable();
        counts
    }

    /// Whether any violation of a kind other than ID uniqueness was found: the ones that mean
    /// Paxos itself failed rather than an ID scheme's contract.
    pub fn has_protocol_violation(&self) -> bool {
        self.violations.iter().any(|v| {
            !matches!(
                v,
                Violation::IdCollision { .. } | Violation::IdReused { .. }
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acceptor::AcceptorState;

    const I: Instance = Instance::new(1, 0);

    fn v(s: &'static str) -> Value {
        Value::from_static(s.as_bytes())
    }

    fn record(promised: u64, accepted: Option<(u64, &'static str)>) -> Record {
        Record {
            instance: I,
            state: AcceptorState {
                promised: ProposalId::new(promised, 0),
                accepted: accepted.map(|(id, value)| (ProposalId::new(id, 0), v(value))),
            },
        }
    }

    #[test]
    fn a_clean_history_has_no_violations() {
        let mut c = Checker::new();
        c.on_proposed(I, &v("x"));
        c.on_id_issued(ProposerId(1), I, ProposalId::new(1, 1));
        c.on_acceptor_record(NodeId(1), &record(1, None));
        c.on_acceptor_record(NodeId(1), &record(1, Some((1, "x"))));
        c.on_chosen(I, &v("x"), ChosenBy::Learner(NodeId(1)));
        c.on_chosen(I, &v("x"), ChosenBy::Proposer(ProposerId(1)));
        assert!(c.violations().is_empty(), "{:?}", c.violations());
        assert_eq!(c.stats().decided, 1);
        assert_eq!(c.chosen(I), Some(&v("x")));
    }

    #[test]
    fn agreement_and_validity() {
        let mut c = Checker::new();
        c.on_proposed(I, &v("x"));
        c.on_proposed(I, &v("y"));
        c.on_chosen(I, &v("x"), ChosenBy::Learner(NodeId(1)));
        c.on_chosen(I, &v("y"), ChosenBy::Learner(NodeId(2)));
        c.on_chosen(I, &v("z"), ChosenBy::Proposer(ProposerId(3)));
        let kinds: Vec<_> = c.violations().iter().map(Violation::kind).collect();
        assert_eq!(kinds, ["agreement", "validity", "agreement"]);
        let text = c.violations()[0].to_string();
        assert!(
            text.contains("\"x\"") && text.contains("\"y\"") && text.contains("n2"),
            "{text}"
        );
        assert!(c.has_protocol_violation());
    }

    #[test]
    fn values_of_other_runs_and_generators_are_no_validity_violation() {
        use crate::workload::unique_value;
        let value = |run, proposer| {
            unique_value(
                ValueTag {
                    run,
                    proposer: ProposerId(proposer),
                    op: 1,
                },
                32,
            )
        };
        let by = ChosenBy::Learner(NodeId(1));
        let mut c = Checker::new();
        c.set_origins(Origins {
            run: 7,
            proposers: 100..200,
        });
        let earlier = value(6, 150);
        let other_generator = value(7, 250);
        let mine_unproposed = value(7, 150);
        c.on_chosen(Instance::new(1, 0), &earlier, by);
        c.on_chosen(Instance::new(1, 0), &earlier, by);
        c.on_chosen(Instance::new(2, 0), &other_generator, by);
        assert!(c.violations().is_empty(), "{:?}", c.violations());
        assert_eq!((c.stats().preexisting, c.stats().other_generators), (1, 1));
        // A value this generator says it proposed but did not, or no paxbench value at all.
        c.on_chosen(Instance::new(3, 0), &mine_unproposed, by);
        c.on_chosen(Instance::new(4, 0), &v("garbage"), by);
        // A pre-existing value still must agree with what else is learned there.
        c.on_chosen(Instance::new(1, 0), &other_generator, by);
        let kinds: Vec<_> = c.violations().iter().map(Violation::kind).collect();
        assert_eq!(kinds, ["validity", "validity", "agreement"]);

        // Without origins, every stranger is a validity violation, as before.
        let mut plain = Checker::new();
        plain.on_chosen(Instance::new(1, 0), &earlier, by);
        assert_eq!(plain.violations().len(), 1);
    }

    #[test]
    fn one_value_per_proposal_id() {
        let mut c = Checker::new();
        c.on_acceptor_record(NodeId(1), &record(5, Some((5, "x"))));
        c.on_acceptor_record(NodeId(2), &record(5, Some((5, "x"))));
        assert!(c.violations().is_empty());
        c.on_acceptor_record(NodeId(3), &record(5, Some((5, "y"))));
        assert!(matches!(
            c.violations(),
            [Violation::ConflictingProposal {
                acceptor: NodeId(3),
                ..
            }]
        ));
    }

    #[test]
    fn acceptor_monotonicity() {
        let mut c = Checker::new();
        c.on_acceptor_record(NodeId(1), &record(5, None));
        c.on_acceptor_record(NodeId(1), &record(3, None));
        c.on_acceptor_record(NodeId(2), &record(3, Some((4, "x"))));
        let kinds: Vec<_> = c.violations().iter().map(Violation::kind).collect();
        assert_eq!(kinds, ["promise-regressed", "accepted-above-promise"]);
    }

    #[test]
    fn id_collisions_and_reuse_are_counted() {
        let mut c = Checker::new();
        let id = ProposalId::new(1_000, 0);
        c.on_id_issued(ProposerId(1), I, id);
        c.on_id_issued(ProposerId(2), I, id);
        c.on_id_issued(ProposerId(2), Instance::new(2, 0), id);
        let stats = c.stats();
        assert_eq!(
            (stats.id_collisions, stats.id_reuses, stats.ids_issued),
            (1, 1, 3)
        );
        assert_eq!(
            c.violation_counts(),
            [("id-collision", 1), ("id-reused", 1)]
        );
        assert!(!c.has_protocol_violation());
    }

    fn decide(c: &mut Checker, instance: Instance, value: &'static str) {
        c.on_op_started(instance, &v(value));
        c.on_chosen(instance, &v(value), ChosenBy::Proposer(ProposerId(1)));
        c.on_op_ended(instance);
    }

    #[test]
    fn decided_idle_instances_retire_beyond_the_grace_and_come_back_for_late_messages() {
        let mut c = Checker::with_store(Box::new(MemoryStore::new()), 2);
        decide(&mut c, I, "x");
        // Three phase-2 acceptances recorded, a majority chose "x" under id 1.
        for node in 1..=2 {
            c.on_acceptor_record(NodeId(node), &record(1, Some((1, "x"))));
        }
        for key in 2..=5 {
            decide(&mut c, Instance::new(key, 0), "y");
        }
        assert_eq!(c.retained(), 2, "only the grace stays in memory");
        assert_eq!(c.stats().retired, 3);
        assert!(c.chosen(I).is_none(), "I was retired");

        // A late ACCEPTED under the chosen ID with another value: still one value per ID.
        c.on_acceptor_record(NodeId(3), &record(1, Some((1, "z"))));
        assert!(matches!(
            c.violations(),
            [Violation::ConflictingProposal {
                acceptor: NodeId(3),
                ..
            }]
        ));
        assert_eq!(c.stats().revived, 1);
        // A late learner's notice of another value: agreement, against the retired decision.
        for key in 6..=9 {
            decide(&mut c, Instance::new(key, 0), "y");
        }
        assert!(c.chosen(I).is_none(), "I was retired again");
        c.on_chosen(I, &v("z"), ChosenBy::Learner(NodeId(3)));
        let kinds: Vec<_> = c.violations().iter().map(Violation::kind).collect();
        assert_eq!(kinds, ["conflicting-proposal", "validity", "agreement"]);
        // And a late promise below the one the acceptor persisted before retirement.
        c.on_acceptor_record(NodeId(1), &record(0, None));
        assert_eq!(
            c.violations().last().map(Violation::kind),
            Some("promise-regressed")
        );
    }

    #[test]
    fn an_instance_with_an_operation_in_flight_is_not_retired() {
        let mut c = Checker::with_store(Box::new(MemoryStore::new()), 0);
        c.on_op_started(I, &v("x"));
        c.on_op_started(I, &v("y"));
        c.on_chosen(I, &v("x"), ChosenBy::Proposer(ProposerId(1)));
        c.on_op_ended(I);
        assert_eq!((c.retained(), c.stats().retired), (1, 0));
        c.on_op_ended(I);
        assert_eq!((c.retained(), c.stats().retired), (0, 1));
        // A fresh slot of the same key is never looked up.
        c.on_op_started(Instance::new(1, 1), &v("w"));
        assert_eq!(c.stats().revived, 0);
    }

    #[test]
    fn finishing_hands_every_instance_to_the_store_with_its_acks() {
        use crate::message::Accepted;
        let mut c = Checker::new();
        c.on_op_started(I, &v("x"));
        c.on_reply(&Message::Accepted(Accepted {
            instance: I,
            id: ProposalId::new(4, 0),
            value: v("x"),
            from: NodeId(2),
        }));
        assert_eq!(c.stats().acks, 1);
        let facts = c.facts_of(I).cloned().unwrap();
        assert_eq!(facts.acked[0].0, NodeId(2));
        assert_eq!(facts.acked[0].1.promised, ProposalId::new(4, 0));
        c.finish().unwrap();
        assert_eq!(c.retained(), 0);
        assert_eq!(c.stats().retired, 1, "undecided instances go too");
    }

    #[test]
    fn ids_are_compared_within_the_window() {
        let mut c = Checker::new();
        let id = ProposalId::new(7, 0);
        c.on_id_issued(ProposerId(1), I, id);
        for n in 0..ID_WINDOW as u64 {
            c.on_id_issued(ProposerId(3), I, ProposalId::new(1_000 + n, 3));
        }
        c.on_id_issued(ProposerId(2), I, id);
        assert_eq!(
            c.stats().id_collisions,
            1,
            "found in the previous generation"
        );
        for n in 0..2 * ID_WINDOW as u64 {
            c.on_id_issued(ProposerId(3), I, ProposalId::new(1 << 40 | n, 3));
        }
        c.on_id_issued(ProposerId(4), I, id);
        assert_eq!(
            c.stats().id_collisions,
            1,
            "forgotten two generations later"
        );
    }

    #[test]
    fn a_forgetful_store_keeps_no_note_of_what_it_retired() {
        let mut c = Checker::with_store(Box::new(Forget), 0);
        decide(&mut c, I, "x");
        assert_eq!((c.retained(), c.stats().retired), (0, 1));
        assert!(c.retired_below.is_empty());
    }
}
