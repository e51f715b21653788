//! The post-run audit of acceptors' durable stores. It replays every node's log through the
//! safety checker, finds the values a phase-2 quorum of stores accepted under one proposal, and
//! checks that every PROMISE and ACCEPTED a node sent, and every value seen chosen, is still
//! backed by the stores: a reply a node sent before its state was durable shows up here as a
//! lost ack. Under Multi-Paxos it also checks each store's persisted chosen prefix: every slot
//! a node claims chosen must be chosen in the stores.
//!
//! It works one instance at a time: the stores' records are sorted by instance on disk (a
//! [`SortedFile`]) and merged with the run's evidence file, already in instance order, so that
//! an audit of an hour's run needs the memory of a few blocks, not of the run.

use std::path::{Path, PathBuf};

use paxbench_core::acceptor::{AcceptorState, Record};
use paxbench_core::checker::{Checker, ChosenBy, InstanceFacts, MemoryStore, value_digest};
use paxbench_core::{Instance, NodeId, ProposalId, Value};

use crate::error::Error;
use crate::evidence::EvidenceFile;
use crate::sorted::SortedFile;

/// One instance's states in the stores: each node's, in its log order.
type NodeStates = Vec<(NodeId, AcceptorState)>;

/// Problems quoted in a report; the counts cover all of them.
const PROBLEM_EXAMPLES: usize = 10;
/// Store records sorted in memory before a run of the sort file is written.
const SORT_RUN: usize = 131_072;

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
    /// Multi-Paxos: slots below a node's persisted chosen prefix checked against the stores.
    pub prefix_checked: u64,
    /// Of those, slots no phase-2 quorum of stores holds one value for: a prefix that claims
    /// more than was chosen.
    pub prefix_unbacked: u64,
    /// The first problems found, for the report.
    pub problems: Vec<String>,
}

impl AuditReport {
    /// Whether nothing was lost and nothing violated.
    pub fn is_clean(&self) -> bool {
        self.chosen_lost == 0
            && self.acks_lost == 0
            && self.violations == 0
            && self.prefix_unbacked == 0
    }

    fn problem(&mut self, text: String) {
        if self.problems.len() < PROBLEM_EXAMPLES {
            self.problems.push(text);
        }
    }
}

/// Audits the stores of a `cluster_size`-node cluster whose values are chosen by `phase2`
/// ACCEPTEDs (stopped; `stores` pairs a node with its data directory) against the run's
/// evidence file, if any: without it the stores are audited alone. `scratch` is a directory
/// for the sort, emptied after.
pub fn audit_stores(
    stores: &[(NodeId, PathBuf)],
    cluster_size: usize,
    phase2: usize,
    evidence: Option<&Path>,
    scratch: &Path,
) -> Result<AuditReport, Error> {
    let sort_path = scratch.join("audit-store-records.sorted");
    let result = audit_sorted(stores, (cluster_size, phase2), evidence, &sort_path);
    let _ = std::fs::remove_file(&sort_path);
    result
}

fn audit_sorted(
    stores: &[(NodeId, PathBuf)],
    (cluster_size, phase2): (usize, usize),
    evidence: Option<&Path>,
    sort_path: &Path,
) -> Result<AuditReport, Error> {
    let mut sorted: SortedFile<(Instance, NodeId, u64), AcceptorState> =
        SortedFile::create(sort_path, SORT_RUN)?;
    for (node, dir) in stores {
        let mut sequence = 0u64;
        crate::storage::for_each_record(dir, &mut |record| {
            sequence += 1;
            sorted.push((record.instance, *node, sequence), record.state)
        })?;
    }
    let mut evidence = evidence.map(EvidenceFile::open).transpose()?;
    let mut facts = match evidence.as_mut() {
        Some(file) => Some(file.instances()?.peekable()),
        None => None,
    };
    let mut auditor = Auditor::new(stores, cluster_size, phase2);
    for (node, dir) in stores {
        let ranged = crate::storage::RangedFile::new(dir).load()?;
        auditor.claim(*node, &ranged.chosen_prefix);
    }
    let mut records = sorted.merged()?.peekable();
    let mut group: NodeStates = Vec::new();
    loop {
        let next_record = match records.peek() {
            Some(Ok(((instance, _, _), _))) => Some(*instance),
            Some(Err(_)) => {
                return Err(records.next().and_then(Result::err).unwrap_or_else(|| {
                    Error::Storage {
                        path: sort_path.to_path_buf(),
                        message: "unreadable".into(),
                    }
                }));
            }
            None => None,
        };
        let next_fact = match facts.as_mut().and_then(|f| f.peek()) {
            Some(Ok((instance, _))) => Some(*instance),
            Some(Err(_)) => {
                let error = facts.as_mut().and_then(|f| f.next()).and_then(Result::err);
                return Err(error.unwrap_or_else(|| Error::Storage {
                    path: sort_path.to_path_buf(),
                    message: "unreadable evidence".into(),
                }));
            }
            None => None,
        };
        let instance = match (next_record, next_fact) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => break,
        };
        group.clear();
        while let Some(Ok(((at, _, _), _))) = records.peek()
            && *at == instance
        {
            if let Some(Ok(((_, node, _), state))) = records.next() {
                group.push((node, state));
            }
        }
        let instance_facts = if next_fact == Some(instance) {
            facts
                .as_mut()
                .and_then(|f| f.next())
                .and_then(Result::ok)
                .map(|(_, f)| f)
        } else {
            None
        };
        auditor.instance(instance, instance_facts, &group);
    }
    auditor.finish_key();
    Ok(auditor.report)
}

/// Audits in-memory stores against in-memory evidence (what a test's client saw): the same
/// checks as [`audit_stores`], for histories small enough to hold.
pub fn audit(
    stores: &[(NodeId, Vec<Record>)],
    cluster_size: usize,
    phase2: usize,
    evidence: impl IntoIterator<Item = (Instance, InstanceFacts)>,
) -> AuditReport {
    let mut instances: std::collections::BTreeMap<Instance, (Option<InstanceFacts>, NodeStates)> =
        std::collections::BTreeMap::new();
    for (node, records) in stores {
        for record in records {
            instances
                .entry(record.instance)
                .or_default()
                .1
                .push((*node, record.state.clone()));
        }
    }
    for (instance, facts) in evidence {
        instances.entry(instance).or_default().0 = Some(facts);
    }
    let nodes: Vec<(NodeId, PathBuf)> = stores.iter().map(|(n, _)| (*n, PathBuf::new())).collect();
    let mut auditor = Auditor::new(&nodes, cluster_size, phase2);
    for (instance, (facts, group)) in instances {
        auditor.instance(instance, facts, &group);
    }
    auditor.finish_key();
    auditor.report
}

/// The checks, one instance at a time.
struct Auditor {
    nodes: Vec<NodeId>,
    cluster_size: usize,
    quorum: usize,
    /// Per key, the highest chosen prefix a store persisted, and whose it is.
    claims: rustc_hash::FxHashMap<u64, (u64, NodeId)>,
    /// The key audited now and the slot after the last one seen, to find claimed slots that
    /// no store holds at all.
    at: Option<(u64, u64)>,
    report: AuditReport,
}

impl Auditor {
    fn new(stores: &[(NodeId, PathBuf)], cluster_size: usize, quorum: usize) -> Self {
        Self {
            nodes: stores.iter().map(|(n, _)| *n).collect(),
            cluster_size,
            quorum,
            claims: rustc_hash::FxHashMap::default(),
            at: None,
            report: AuditReport {
                stores: stores.len(),
                ..AuditReport::default()
            },
        }
    }

    /// Node `node` persisted `prefix`: every slot below it must be chosen in the stores.
    fn claim(&mut self, node: NodeId, prefix: &[(u64, u64)]) {
        for (key, through) in prefix {
            let claim = self.claims.entry(*key).or_insert((*through, node));
            if *through > claim.0 {
                *claim = (*through, node);
            }
        }
    }

    /// Claimed slots of the key audited last, from the one after the last seen, that no
    /// store held at all.
    fn finish_key(&mut self) {
        self.missing_before(u64::MAX);
    }

    fn missing_before(&mut self, slot: u64) {
        let Some((key, next)) = self.at else {
            return;
        };
        if let Some(&(through, node)) = self.claims.get(&key) {
            let end = through.min(slot);
            if next < end {
                self.report.prefix_checked += end - next;
                self.report.prefix_unbacked += end - next;
                self.report.problem(format!(
                    "key {key}: node {}'s chosen prefix claims slots {next}..{end} chosen, but \
                     no store holds them",
                    node.0
                ));
            }
        }
    }

    /// Moves to `instance`, reporting claimed slots skipped on the way.
    fn reach(&mut self, instance: Instance) {
        match self.at {
            Some((key, _)) if key == instance.key => self.missing_before(instance.slot),
            _ => {
                self.finish_key();
                self.at = Some((instance.key, 0));
                self.missing_before(instance.slot);
            }
        }
        self.at = Some((instance.key, instance.slot + 1));
    }

    /// Audits `instance`: what the client saw of it (`facts`) against every store record of
    /// it (`records`, each node's in its log order).
    fn instance(
        &mut self,
        instance: Instance,
        facts: Option<InstanceFacts>,
        records: &[(NodeId, AcceptorState)],
    ) {
        self.reach(instance);
        let claimed = self
            .claims
            .get(&instance.key)
            .filter(|(through, _)| instance.slot < *through)
            .map(|(_, node)| *node);
        let report = &mut self.report;
        let mut checker = Checker::with_store(Box::new(MemoryStore::new()), usize::MAX);
        let acked = facts.as_ref().map(|f| f.acked.clone()).unwrap_or_default();
        if let Some(facts) = facts {
            checker.restore(instance, facts);
        }
        let mut last: Vec<(NodeId, &AcceptorState)> = Vec::new();
        // Each proposal's value and the nodes that ever accepted it.
        let mut accepted_by: Vec<(ProposalId, &Value, Vec<NodeId>)> = Vec::new();
        for (node, state) in records {
            report.records += 1;
            checker.on_acceptor_record(
                *node,
                &Record {
                    instance,
                    state: state.clone(),
                },
            );
            match last.iter_mut().find(|(n, _)| n == node) {
                Some(held) => held.1 = state,
                None => last.push((*node, state)),
            }
            if let Some((id, value)) = &state.accepted {
                match accepted_by.iter_mut().find(|(seen, ..)| seen == id) {
                    Some((_, _, nodes)) => {
                        if !nodes.contains(node) {
                            nodes.push(*node);
                        }
                    }
                    None => accepted_by.push((*id, value, vec![*node])),
                }
            }
        }
        if !records.is_empty() {
            report.instances += 1;
        }
        let mut counted = false;
        for (_, value, nodes) in &accepted_by {
            if nodes.len() < self.quorum {
                continue;
            }
            if !counted {
                report.chosen_in_stores += 1;
                counted = true;
            }
            if !checker.was_proposed(instance, value) && checker.chosen(instance).is_none() {
                // Audited without the client's log: the stores are the only witness of proposals.
                checker.on_proposed(instance, value);
            }
            checker.on_chosen(instance, value, ChosenBy::Learner(nodes[0]));
        }

        if let Some(node) = claimed {
            report.prefix_checked += 1;
            if !counted {
                report.prefix_unbacked += 1;
                report.problem(format!(
                    "instance {instance}: node {}'s chosen prefix claims it chosen, but no \
                     {} stores accepted one proposal for it",
                    node.0, self.quorum
                ));
            }
        }

        if let Some(value) = checker.chosen(instance) {
            report.chosen_checked += 1;
            let holders = last
                .iter()
                .filter(|(_, s)| s.accepted.as_ref().is_some_and(|(_, v)| v == value))
                .count();
            if holders < self.quorum {
                report.chosen_lost += 1;
                let text = format!(
                    "instance {instance}: the chosen value is held by {holders} of {} \
                     stores, fewer than a phase-2 quorum ({})",
                    self.cluster_size, self.quorum
                );
                report.problem(text);
            }
        }

        for (node, ack) in &acked {
            if !self.nodes.contains(node) {
                continue;
            }
            report.acks_checked += 1;
            let stored = last.iter().find(|(n, _)| n == node).map(|(_, s)| *s);
            let backed = stored.is_some_and(|s| {
                s.promised >= ack.promised
                    && match (&ack.accepted, &s.accepted) {
                        (None, _) => true,
                        (Some(_), None) => false,
                        (Some((id, digest)), Some((held, held_value))) => {
                            held > id || (held == id && value_digest(held_value) == *digest)
                        }
                    }
            });
            if !backed {
                report.acks_lost += 1;
                let text = format!(
                    "node {}, instance {instance}: acknowledged promise {} and accepted {:?}, \
                     but its store holds {:?}",
                    node.0,
                    ack.promised,
                    ack.accepted.as_ref().map(|(id, _)| id.to_string()),
                    stored.map(|s| (
                        s.promised.to_string(),
                        s.accepted.as_ref().map(|(id, _)| id.to_string())
                    )),
                );
                report.problem(text);
            }
        }

        for violation in checker.violations() {
            report.violations += 1;
            report.problem(format!("store replay: {violation}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use paxbench_core::message::{Accepted, Message, Promise};

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

    /// What a client saw: `chosen` proposed and chosen (if any), and `replies`.
    fn client(chosen: Option<&'static str>, replies: &[Message]) -> Vec<(Instance, InstanceFacts)> {
        let mut checker = Checker::new();
        if let Some(value) = chosen {
            let value = Value::from_static(value.as_bytes());
            checker.on_proposed(I, &value);
            checker.on_chosen(I, &value, ChosenBy::Learner(NodeId(1)));
        }
        for reply in replies {
            checker.on_reply(reply);
        }
        checker
            .facts_of(I)
            .cloned()
            .map(|f| (I, f))
            .into_iter()
            .collect()
    }

    #[test]
    fn consistent_stores_pass() {
        let stores = vec![
            (NodeId(1), vec![record(1, None), record(1, Some((1, "a")))]),
            (NodeId(2), vec![record(1, Some((1, "a")))]),
            (NodeId(3), vec![record(1, None)]),
        ];
        let seen = client(Some("a"), &[accepted(1, 1, "a"), accepted(2, 1, "a")]);
        let report = audit(&stores, 3, 2, seen);
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
        let seen = client(Some("a"), &[accepted(1, 1, "a"), accepted(2, 1, "a")]);
        let report = audit(&stores, 3, 2, seen);
        assert_eq!((report.acks_lost, report.chosen_lost), (1, 1), "{report:?}");
        assert!(!report.is_clean());
        assert!(report.problems.iter().any(|p| p.contains("node 2")));
    }

    #[test]
    fn a_piggybacked_value_counts_as_acknowledged() {
        let promise = Message::Promise(Promise {
            instance: I,
            id: id(5),
            from: NodeId(1),
            accepted: Some((id(3), Value::from_static(b"a"))),
        });
        let stores = vec![(NodeId(1), vec![record(5, Some((2, "a")))])];
        let report = audit(&stores, 1, 1, client(None, &[promise]));
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
        let report = audit(&stores, 3, 2, Vec::new());
        assert!(report.violations >= 1, "{report:?}");
        assert!(report.problems.iter().any(|p| p.contains("store replay")));
    }

    #[test]
    fn a_promise_that_went_down_in_the_log_is_a_violation() {
        let stores = vec![(NodeId(1), vec![record(5, None), record(3, None)])];
        let report = audit(&stores, 1, 1, Vec::new());
        assert_eq!(report.violations, 1, "{report:?}");
    }

    #[test]
    fn a_chosen_prefix_that_claims_more_than_the_stores_chose_is_found() {
        use crate::storage::AcceptorStore;
        use crate::storage::{RangedFile, RangedState};
        let dir = tempfile::tempdir().unwrap();
        let stores: Vec<(NodeId, PathBuf)> = (1..=3)
            .map(|n| (NodeId(n), dir.path().join(format!("node-{n}"))))
            .collect();
        let at = |slot: u64, value: &'static str| Record {
            instance: Instance::new(1, slot),
            ..record(1, Some((1, value)))
        };
        // Slots 0 and 1 are chosen (nodes 1 and 2 hold them); slot 2 only node 1 accepted,
        // and slot 3 nobody holds.
        for (node, data) in &stores {
            std::fs::create_dir_all(data).unwrap();
            let mut store = crate::storage::RedbStorage::open(data).unwrap();
            let records = match node.0 {
                1 => vec![at(0, "a"), at(1, "b"), at(2, "c")],
                2 => vec![at(0, "a"), at(1, "b")],
                _ => vec![],
            };
            store.commit(&records).unwrap();
        }
        let claim = |node: usize, through: u64| {
            RangedFile::new(&stores[node].1)
                .store(&RangedState {
                    global_promise: id(1),
                    chosen_prefix: vec![(1, through)],
                })
                .unwrap();
        };
        claim(0, 2);
        claim(1, 1);
        let report = audit_stores(&stores, 3, 2, None, dir.path()).unwrap();
        assert_eq!((report.prefix_checked, report.prefix_unbacked), (2, 0));
        assert!(report.is_clean(), "{report:?}");
        claim(2, 4);
        let report = audit_stores(&stores, 3, 2, None, dir.path()).unwrap();
        assert_eq!(
            (report.prefix_checked, report.prefix_unbacked),
            (4, 2),
            "{report:?}"
        );
        assert!(!report.is_clean());
        assert!(
            report.problems.iter().any(|p| p.contains("node 3")),
            "{report:?}"
        );
    }

    #[test]
    fn the_streaming_audit_reads_stores_and_evidence_files_alike() {
        use crate::storage::AcceptorStore;
        let dir = tempfile::tempdir().unwrap();
        let stores: Vec<(NodeId, PathBuf)> = (1..=3)
            .map(|n| (NodeId(n), dir.path().join(format!("node-{n}"))))
            .collect();
        // Node 1 and 2 hold "a"; node 3 lost what it acknowledged.
        for (node, data) in &stores {
            std::fs::create_dir_all(data).unwrap();
            let mut store = crate::storage::RedbStorage::open(data).unwrap();
            let records = if node.0 == 3 {
                vec![record(1, None)]
            } else {
                vec![record(1, None), record(1, Some((1, "a")))]
            };
            store.commit(&records).unwrap();
        }
        let path = dir.path().join("scenario-00.evidence");
        let mut file = crate::evidence::EvidenceWriter::create(&path).unwrap();
        let seen = client(Some("a"), &[accepted(1, 1, "a"), accepted(3, 1, "a")]);
        for (instance, facts) in seen {
            paxbench_core::checker::RetiredStore::put(&mut file, instance, facts);
        }
        paxbench_core::checker::RetiredStore::finish(&mut file).unwrap();
        let report = audit_stores(&stores, 3, 2, Some(&path), dir.path()).unwrap();
        assert_eq!(
            (report.records, report.chosen_checked, report.chosen_lost),
            (5, 1, 0),
            "{report:?}"
        );
        assert_eq!(
            (report.acks_checked, report.acks_lost),
            (2, 1),
            "{report:?}"
        );
        assert!(!dir.path().join("audit-store-records.sorted").exists());

        // A damaged evidence file is refused, naming it and the offset.
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x55;
        std::fs::write(&path, &bytes).unwrap();
        let e = audit_stores(&stores, 3, 2, Some(&path), dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("scenario-00.evidence") && e.contains("offset 8"),
            "{e}"
        );
    }
}
