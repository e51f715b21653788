//! The post-run audit of acceptors' durable stores. It replays every node's log through the
//! safety checker, finds the values a majority of stores accepted under one proposal, and checks
//! that every PROMISE and ACCEPTED a node sent, and every value seen chosen, is still backed by
//! the stores: a reply a node sent before its state was durable shows up here as a lost ack.

use std::path::PathBuf;

use paxbench_core::acceptor::{AcceptorState, Record};
use paxbench_core::checker::{Checker, ChosenBy};
use paxbench_core::message::Message;
use paxbench_core::{Instance, NodeId, ProposalId, Value};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Problems quoted in a report; the counts cover all of them.
const PROBLEM_EXAMPLES: usize = 10;

/// The strongest promise and acceptance each node acknowledged for each instance, from the
/// replies a client received. Only PROMISE and ACCEPTED count: a NACK promises nothing.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AckLog {
    acks: FxHashMap<(NodeId, Instance), AcceptorState>,
    replies: u64,
}

impl AckLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes a reply a node sent.
    pub fn on_reply(&mut self, message: &Message) {
        let (node, instance, id, accepted) = match message {
            Message::Promise(p) => (p.from, p.instance, p.id, p.accepted.as_ref()),
            Message::Accepted(a) => (a.from, a.instance, a.id, None),
            _ => return,
        };
        self.replies += 1;
        let acked = self.acks.entry((node, instance)).or_default();
        acked.promised = acked.promised.max(id);
        let mut raise = |candidate: (ProposalId, &Value)| {
            if acked
                .accepted
                .as_ref()
                .is_none_or(|(held, _)| *held < candidate.0)
            {
                acked.accepted = Some((candidate.0, candidate.1.clone()));
            }
        };
        if let Message::Accepted(a) = message {
            raise((a.id, &a.value));
        }
        if let Some((id, value)) = accepted {
            raise((*id, value));
        }
    }

    /// PROMISE and ACCEPTED replies noted.
    pub fn replies(&self) -> u64 {
        self.replies
    }

    /// Distinct `(node, instance)` acknowledgements to check.
    pub fn len(&self) -> usize {
        self.acks.len()
    }

    /// Whether nothing was acknowledged.
    pub fn is_empty(&self) -> bool {
        self.acks.is_empty()
    }
}

/// What a client saw, kept so that stores it could not stop itself (attached nodes) can be
/// audited later: the values proposed and chosen, and every acknowledgement.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Evidence {
    proposed: Vec<(Instance, Vec<Value>)>,
    chosen: Vec<(Instance, Value)>,
    /// The replies received.
    pub acks: AckLog,
}

/// The first byte of an evidence file: its format.
const EVIDENCE_FORMAT: u8 = 1;

impl Evidence {
    /// What `checker` saw, and `acks`.
    pub fn new(checker: &Checker, acks: AckLog) -> Self {
        Self {
            proposed: checker
                .proposals()
                .map(|(instance, values)| (instance, values.to_vec()))
                .collect(),
            chosen: checker
                .chosen_values()
                .map(|(instance, value)| (instance, value.clone()))
                .collect(),
            acks,
        }
    }

    /// A checker that knows the proposals and decisions again.
    pub fn checker(&self) -> Checker {
        let mut checker = Checker::new();
        for (instance, values) in &self.proposed {
            for value in values {
                checker.on_proposed(*instance, value);
            }
        }
        for (instance, value) in &self.chosen {
            checker.on_chosen(*instance, value, ChosenBy::Learner(NodeId(0)));
        }
        checker
    }

    /// The file format: a format byte, then postcard.
    pub fn encode(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_extend(self, vec![EVIDENCE_FORMAT])
    }

    /// Reads what [`Evidence::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        match bytes.split_first() {
            Some((&EVIDENCE_FORMAT, rest)) => postcard::from_bytes(rest).map_err(|e| e.to_string()),
            Some((format, _)) => Err(format!("unknown evidence format {format}")),
            None => Err("empty evidence file".into()),
        }
    }
}

/// What the audit found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditReport {
    /// Stores read.
    pub stores: usize,
    /// Records read, over every store's whole log.
    pub records: u64,
    /// Distinct instances in the stores.
    pub instances: u64,
    /// Instances that a majority of stores accepted under one proposal: chosen, by the stores.
    pub chosen_in_stores: u64,
    /// Values the client saw chosen, checked against the stores.
    pub chosen_checked: u64,
    /// Of those, values no longer held by a majority of stores.
    pub chosen_lost: u64,
    /// Acknowledged `(node, instance)` states checked.
    pub acks_checked: u64,
    /// Of those, states the node's store no longer backs.
    pub acks_lost: u64,
    /// Safety violations found by replaying the stores through the checker.
    pub violations: u64,
    /// The first problems found, for the report.
    pub problems: Vec<String>,
}

impl AuditReport {
    /// Whether nothing was lost and nothing violated.
    pub fn is_clean(&self) -> bool {
        self.chosen_lost == 0 && self.acks_lost == 0 && self.violations == 0
    }

    fn problem(&mut self, text: String) {
        if self.problems.len() < PROBLEM_EXAMPLES {
            self.problems.push(text);
        }
    }
}

/// Reads each node's store (for `wal`, the checkpointed states and the log after them); `stores` pairs a node with its data directory.
/// The nodes must have stopped. A missing or unreadable store is an error, not an empty store.
pub fn read_stores(stores: &[(NodeId, PathBuf)]) -> Result<Vec<(NodeId, Vec<Record>)>, Error> {
    stores
        .iter()
        .map(|(node, dir)| Ok((*node, crate::storage::history(dir)?)))
        .collect()
}

/// Audits the stores of a `cluster_size`-node cluster against what a client saw: `checker` holds
/// its proposals and decisions (a fresh checker audits the stores alone), `acks` the replies it
/// received. Store records are fed into `checker`; its new violations are the audit's.
pub fn audit(
    stores: &[(NodeId, Vec<Record>)],
    cluster_size: usize,
    checker: &mut Checker,
    acks: &AckLog,
) -> AuditReport {
    let majority = cluster_size / 2 + 1;
    let violations_before = checker.violations().len();
    let mut report = AuditReport {
        stores: stores.len(),
        ..AuditReport::default()
    };
    let mut last: FxHashMap<(NodeId, Instance), &AcceptorState> = FxHashMap::default();
    // For each instance and proposal: its value and the nodes that ever accepted it.
    let mut accepted_by: FxHashMap<(Instance, ProposalId), (&Value, Vec<NodeId>)> =
        FxHashMap::default();
    for (node, records) in stores {
        for record in records {
            report.records += 1;
            checker.on_acceptor_record(*node, record);
            last.insert((*node, record.instance), &record.state);
            if let Some((id, value)) = &record.state.accepted {
                let (_, nodes) = accepted_by
                    .entry((record.instance, *id))
                    .or_insert((value, Vec::new()));
                if !nodes.contains(node) {
                    nodes.push(*node);
                }
            }
        }
    }
    let mut instances: Vec<Instance> = last.keys().map(|(_, i)| *i).collect();
    instances.sort_unstable();
    instances.dedup();
    report.instances = instances.len() as u64;

    let mut store_chosen: Vec<(Instance, Value, NodeId)> = accepted_by
        .iter()
        .filter(|(_, (_, nodes))| nodes.len() >= majority)
        .map(|((instance, _), (value, nodes))| (*instance, (*value).clone(), nodes[0]))
        .collect();
    store_chosen.sort_unstable_by_key(|(instance, ..)| *instance);
    let mut counted = None;
    for (instance, value, node) in store_chosen {
        if counted != Some(instance) {
            report.chosen_in_stores += 1;
            counted = Some(instance);
        }
        if !checker.was_proposed(instance, &value) && checker.chosen(instance).is_none() {
            // Audited without the client's log: the stores are the only witness of proposals.
            checker.on_proposed(instance, &value);
        }
        checker.on_chosen(instance, &value, ChosenBy::Learner(node));
    }

    let mut chosen: Vec<(Instance, Value)> = checker
        .chosen_values()
        .map(|(i, v)| (i, v.clone()))
        .collect();
    chosen.sort_unstable_by_key(|(instance, _)| *instance);
    for (instance, value) in chosen {
        report.chosen_checked += 1;
        let holders = stores
            .iter()
            .filter(|(node, _)| {
                last.get(&(*node, instance))
                    .and_then(|s| s.accepted.as_ref())
                    .is_some_and(|(_, v)| *v == value)
            })
            .count();
        if holders < majority {
            report.chosen_lost += 1;
            report.problem(format!(
                "instance {instance}: the chosen value is held by {holders} of {cluster_size} \
                 stores, fewer than a majority ({majority})"
            ));
        }
    }

    let mut acked: Vec<(&(NodeId, Instance), &AcceptorState)> = acks.acks.iter().collect();
    acked.sort_unstable_by_key(|(key, _)| **key);
    for ((node, instance), ack) in acked {
        if !stores.iter().any(|(n, _)| n == node) {
            continue;
        }
        report.acks_checked += 1;
        let stored = last.get(&(*node, *instance));
        let backed = stored.is_some_and(|s| {
            s.promised >= ack.promised
                && match (&ack.accepted, &s.accepted) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some((id, value)), Some((held, held_value))) => {
                        held > id || (held == id && held_value == value)
                    }
                }
        });
        if !backed {
            report.acks_lost += 1;
            report.problem(format!(
                "node {}, instance {instance}: acknowledged promise {} and accepted {:?}, \
                 but its store holds {:?}",
                node.0,
                ack.promised,
                ack.accepted.as_ref().map(|(id, _)| id.to_string()),
                stored.map(|s| (
                    s.promised.to_string(),
                    s.accepted.as_ref().map(|(id, _)| id.to_string())
                )),
            ));
        }
    }

    for violation in &checker.violations()[violations_before..] {
        report.violations += 1;
        report.problem(format!("store replay: {violation}"));
    }
    report
}

#[cfg(test)]
mod tests {
    use paxbench_core::message::{Accepted, Promise};

    use super::*;

    const I: Instance = Instance::new(1, 0);

    fn id(n: u64) -> ProposalId {
        ProposalId::new(n, 1)
    }

    fn record(promised: u64, accepted: Option<(u64, &'static str)>) -> Record {
        Record {
            instance: I,
            state: AcceptorState {
                promised: id(promised),
                accepted: accepted.map(|(n, v)| (id(n), Value::from_static(v.as_bytes()))),
            },
        }
    }

    fn accepted(node: u32, n: u64, value: &'static str) -> Message {
        Message::Accepted(Accepted {
            instance: I,
            id: id(n),
            value: Value::from_static(value.as_bytes()),
            from: NodeId(node),
        })
    }

    fn client_saw_chosen(value: &'static str) -> Checker {
        let mut checker = Checker::new();
        let value = Value::from_static(value.as_bytes());
        checker.on_proposed(I, &value);
        checker.on_chosen(I, &value, ChosenBy::Learner(NodeId(1)));
        checker
    }

    #[test]
    fn consistent_stores_pass() {
        let stores = vec![
            (NodeId(1), vec![record(1, None), record(1, Some((1, "a")))]),
            (NodeId(2), vec![record(1, Some((1, "a")))]),
            (NodeId(3), vec![record(1, None)]),
        ];
        let mut acks = AckLog::new();
        acks.on_reply(&accepted(1, 1, "a"));
        acks.on_reply(&accepted(2, 1, "a"));
        let report = audit(&stores, 3, &mut client_saw_chosen("a"), &acks);
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(
            (report.records, report.chosen_in_stores, report.acks_checked),
            (4, 1, 2)
        );
    }

    #[test]
    fn a_lost_ack_and_a_lost_chosen_value_are_found() {
        // Node 2 acknowledged ACCEPTED but its store never got the record.
        let stores = vec![
            (NodeId(1), vec![record(1, Some((1, "a")))]),
            (NodeId(2), vec![record(1, None)]),
            (NodeId(3), vec![]),
        ];
        let mut acks = AckLog::new();
        acks.on_reply(&accepted(1, 1, "a"));
        acks.on_reply(&accepted(2, 1, "a"));
        let report = audit(&stores, 3, &mut client_saw_chosen("a"), &acks);
        assert_eq!((report.acks_lost, report.chosen_lost), (1, 1), "{report:?}");
        assert!(!report.is_clean());
        assert!(report.problems.iter().any(|p| p.contains("node 2")));
    }

    #[test]
    fn a_piggybacked_value_counts_as_acknowledged() {
        let mut acks = AckLog::new();
        acks.on_reply(&Message::Promise(Promise {
            instance: I,
            id: id(5),
            from: NodeId(1),
            accepted: Some((id(3), Value::from_static(b"a"))),
        }));
        let stores = vec![(NodeId(1), vec![record(5, Some((2, "a")))])];
        let report = audit(&stores, 1, &mut Checker::new(), &acks);
        assert_eq!(report.acks_lost, 1, "accepted 3 acknowledged, 2 stored");
    }

    #[test]
    fn stores_that_chose_two_values_are_a_violation() {
        let stores = vec![
            (
                NodeId(1),
                vec![record(1, Some((1, "a"))), record(2, Some((2, "b")))],
            ),
            (NodeId(2), vec![record(1, Some((1, "a")))]),
            (NodeId(3), vec![record(2, Some((2, "b")))]),
        ];
        let report = audit(&stores, 3, &mut Checker::new(), &AckLog::new());
        assert!(report.violations >= 1, "{report:?}");
        assert!(report.problems.iter().any(|p| p.contains("store replay")));
    }

    #[test]
    fn evidence_survives_its_file_and_audits_the_same() {
        let mut acks = AckLog::new();
        acks.on_reply(&accepted(1, 1, "a"));
        acks.on_reply(&accepted(2, 1, "a"));
        let evidence = Evidence::new(&client_saw_chosen("a"), acks);
        let again = Evidence::decode(&evidence.encode().unwrap()).unwrap();
        let stores = vec![
            (NodeId(1), vec![record(1, Some((1, "a")))]),
            (NodeId(2), vec![record(1, None)]),
            (NodeId(3), vec![]),
        ];
        let report = audit(&stores, 3, &mut again.checker(), &again.acks);
        assert_eq!(
            (report.acks_lost, report.chosen_lost, report.chosen_checked),
            (1, 1, 1)
        );
        assert!(Evidence::decode(&[9]).is_err());
    }

    #[test]
    fn a_promise_that_went_down_in_the_log_is_a_violation() {
        let stores = vec![(NodeId(1), vec![record(5, None), record(3, None)])];
        let report = audit(&stores, 1, &mut Checker::new(), &AckLog::new());
        assert_eq!(report.violations, 1, "{report:?}");
    }
}
