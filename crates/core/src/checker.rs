//! The online safety checker. Drivers feed it what they see (proposals, IDs issued, acceptor
//! records, decisions) and it reports each broken Paxos invariant as a [`Violation`] with the
//! context needed to debug it. Each event costs a hash-map lookup or two.

use std::fmt;

use rustc_hash::FxHashMap;

use crate::acceptor::Record;
use crate::types::{Instance, NodeId, ProposalId, ProposerId, Value};

/// Who reported a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChosenBy {
    /// A learner, on a majority of ACCEPTED.
    Learner(NodeId),
    /// A proposer, on a majority of ACCEPTED for its own ACCEPT-REQUEST.
    Proposer(ProposerId),
}

impl fmt::Display for ChosenBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChosenBy::Learner(n) => write!(f, "learner {n}"),
            ChosenBy::Proposer(p) => write!(f, "proposer {p}"),
        }
    }
}

/// A broken safety invariant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Violation {
    /// Two different values were chosen for one instance.
    Agreement {
        /// The instance.
        instance: Instance,
        /// The value seen chosen first, and by whom.
        first: (Value, ChosenBy),
        /// The conflicting value, and by whom.
        second: (Value, ChosenBy),
    },
    /// A chosen value was never proposed for the instance.
    Validity {
        /// The instance.
        instance: Instance,
        /// The value.
        value: Value,
        /// Who saw it chosen.
        by: ChosenBy,
    },
    /// Acceptors accepted two different values under one proposal ID.
    ConflictingProposal {
        /// The instance.
        instance: Instance,
        /// The shared ID.
        id: ProposalId,
        /// The value accepted first.
        first: Value,
        /// The other value.
        second: Value,
        /// The acceptor that accepted the other value.
        acceptor: NodeId,
    },
    /// An acceptor's promise went down (for example after losing volatile state).
    PromiseRegressed {
        /// The acceptor.
        acceptor: NodeId,
        /// The instance.
        instance: Instance,
        /// The earlier promise.
        from: ProposalId,
        /// The lower one.
        to: ProposalId,
    },
    /// An acceptor accepted a proposal above its own promise.
    AcceptedAbovePromise {
        /// The acceptor.
        acceptor: NodeId,
        /// The instance.
        instance: Instance,
        /// The accepted ID.
        accepted: ProposalId,
        /// The promise.
        promised: ProposalId,
    },
    /// Two proposers issued the same proposal ID.
    IdCollision {
        /// The ID.
        id: ProposalId,
        /// The proposer that issued it first, and for which instance.
        first: (ProposerId, Instance),
        /// The proposer that issued it again, and for which instance.
        second: (ProposerId, Instance),
    },
    /// One proposer issued the same proposal ID twice.
    IdReused {
        /// The ID.
        id: ProposalId,
        /// The proposer.
        proposer: ProposerId,
        /// The instance it was reissued for.
        instance: Instance,
    },
}

impl Violation {
    /// A short stable name, for counters and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Violation::Agreement { .. } => "agreement",
            Violation::Validity { .. } => "validity",
            Violation::ConflictingProposal { .. } => "conflicting-proposal",
            Violation::PromiseRegressed { .. } => "promise-regressed",
            Violation::AcceptedAbovePromise { .. } => "accepted-above-promise",
            Violation::IdCollision { .. } => "id-collision",
            Violation::IdReused { .. } => "id-reused",
        }
    }
}

fn show(value: &Value) -> String {
    const MAX: usize = 32;
    let shown = String::from_utf8_lossy(&value[..value.len().min(MAX)]).into_owned();
    if value.len() > MAX {
        format!("{shown:?}… ({} bytes)", value.len())
    } else {
        format!("{shown:?}")
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Agreement {
                instance,
                first,
                second,
            } => write!(
                f,
                "agreement: instance {instance} chosen as {} by {} and as {} by {}",
                show(&first.0),
                first.1,
                show(&second.0),
                second.1
            ),
            Violation::Validity {
                instance,
                value,
                by,
            } => write!(
                f,
                "validity: {by} saw {} chosen for instance {instance}, which nobody proposed",
                show(value)
            ),
            Violation::ConflictingProposal {
                instance,
                id,
                first,
                second,
                acceptor,
            } => write!(
                f,
                "one value per proposal: instance {instance} id {id} carried {} and then {} (accepted by {acceptor})",
                show(first),
                show(second)
            ),
            Violation::PromiseRegressed {
                acceptor,
                instance,
                from,
                to,
            } => write!(
                f,
                "monotonicity: {acceptor} lowered its promise for {instance} from {from} to {to}"
            ),
            Violation::AcceptedAbovePromise {
                acceptor,
                instance,
                accepted,
                promised,
            } => write!(
                f,
                "monotonicity: {acceptor} accepted {accepted} above its promise {promised} for {instance}"
            ),
            Violation::IdCollision { id, first, second } => write!(
                f,
                "id collision: {id} issued by {} for {} and by {} for {}",
                first.0, first.1, second.0, second.1
            ),
            Violation::IdReused {
                id,
                proposer,
                instance,
            } => write!(f, "id reuse: {proposer} issued {id} again, for {instance}"),
        }
    }
}

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
}

/// Everything known about one instance. A handful of proposers and acceptors touch an
/// instance, so short vectors beat nested maps, and one lookup serves every check.
#[derive(Debug, Default)]
struct InstanceFacts {
    proposed: Vec<Value>,
    accepted_values: Vec<(ProposalId, Value)>,
    promises: Vec<(NodeId, ProposalId)>,
    chosen: Option<(Value, ChosenBy)>,
}

/// The checker. Feed it with the `on_*` methods; read [`Checker::violations`].
#[derive(Debug, Default)]
pub struct Checker {
    instances: FxHashMap<Instance, InstanceFacts>,
    issued: FxHashMap<ProposalId, (ProposerId, Instance)>,
    violations: Vec<Violation>,
    stats: CheckerStats,
}

impl Checker {
    /// An empty checker.
    pub fn new() -> Self {
        Self::default()
    }

    /// A client proposed `value` for `instance` (the proposer's own value, not an adopted one).
    pub fn on_proposed(&mut self, instance: Instance, value: &Value) {
        self.stats.events += 1;
        let facts = self.instances.entry(instance).or_default();
        if !facts.proposed.contains(value) {
            facts.proposed.push(value.clone());
        }
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

    /// An acceptor persisted `record`.
    pub fn on_acceptor_record(&mut self, acceptor: NodeId, record: &Record) {
        self.stats.events += 1;
        let instance = record.instance;
        let state = &record.state;
        let facts = self.instances.entry(instance).or_default();
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
            self.violations.push(Violation::PromiseRegressed {
                acceptor,
                instance,
                from: previous,
                to: state.promised,
            });
        }
        let Some((id, value)) = &state.accepted else {
            return;
        };
        if *id > state.promised {
            self.violations.push(Violation::AcceptedAbovePromise {
                acceptor,
                instance,
                accepted: *id,
                promised: state.promised,
            });
        }
        match facts.accepted_values.iter().find(|(seen, _)| seen == id) {
            Some((_, first)) if first != value => {
                self.violations.push(Violation::ConflictingProposal {
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

    /// `by` saw `value` chosen for `instance`.
    pub fn on_chosen(&mut self, instance: Instance, value: &Value, by: ChosenBy) {
        self.stats.events += 1;
        let facts = self.instances.entry(instance).or_default();
        if !facts.proposed.contains(value) {
            self.violations.push(Violation::Validity {
                instance,
                value: value.clone(),
                by,
            });
        }
        match &facts.chosen {
            None => {
                self.stats.decided += 1;
                facts.chosen = Some((value.clone(), by));
            }
            Some((first, _)) if first == value => {}
            Some(first) => {
                self.violations.push(Violation::Agreement {
                    instance,
                    first: first.clone(),
                    second: (value.clone(), by),
                });
            }
        }
    }

    /// The value seen chosen for `instance`, if any.
    pub fn chosen(&self, instance: Instance) -> Option<&Value> {
        self.instances
            .get(&instance)
            .and_then(|f| f.chosen.as_ref())
            .map(|(v, _)| v)
    }

    /// Every instance seen chosen, with its value, in no particular order.
    pub fn chosen_values(&self) -> impl Iterator<Item = (Instance, &Value)> {
        self.instances
            .iter()
            .filter_map(|(instance, facts)| facts.chosen.as_ref().map(|(v, _)| (*instance, v)))
    }

    /// Every instance with the values proposed for it, in no particular order.
    pub fn proposals(&self) -> impl Iterator<Item = (Instance, &[Value])> {
        self.instances
            .iter()
            .filter(|(_, facts)| !facts.proposed.is_empty())
            .map(|(instance, facts)| (*instance, facts.proposed.as_slice()))
    }

    /// Whether `value` was proposed for `instance`.
    pub fn was_proposed(&self, instance: Instance, value: &Value) -> bool {
        self.instances
            .get(&instance)
            .is_some_and(|facts| facts.proposed.contains(value))
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
}
