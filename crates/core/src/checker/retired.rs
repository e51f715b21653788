//! What the checker knows about one instance ([`InstanceFacts`]), and where it puts the facts of
//! instances that can no longer change ([`RetiredStore`]), so that its memory is bounded by the
//! work in flight and not by the length of the run. The store is the shell's: a file in the
//! results folder for the load generator, a map for tests.

use std::fmt;
use std::hash::Hasher;

use rustc_hash::{FxHashMap, FxHasher};
use serde::{Deserialize, Serialize};

use super::ChosenBy;
use crate::message::Message;
use crate::types::{Instance, NodeId, ProposalId, Value};

/// Everything seen about one instance. A handful of proposers and acceptors touch an instance,
/// so short vectors beat nested maps, and one lookup serves every check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceFacts {
    /// The values clients proposed for it.
    pub proposed: Vec<Value>,
    /// Every (proposal, value) an acceptor persisted.
    pub accepted_values: Vec<(ProposalId, Value)>,
    /// Each acceptor's last persisted promise.
    pub promises: Vec<(NodeId, ProposalId)>,
    /// The value seen chosen first, and by whom.
    pub chosen: Option<(Value, ChosenBy)>,
    /// The strongest promise and acceptance each node acknowledged to a client (PROMISE and
    /// ACCEPTED replies; a NACK promises nothing): what the node's store must still back.
    pub acked: Vec<(NodeId, Acked)>,
}

/// What one node acknowledged for one instance. The value is kept as a digest: the audit only
/// compares it with the stored value, and a run keeps one per node and instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acked {
    /// The highest promise acknowledged.
    pub promised: ProposalId,
    /// The highest proposal acknowledged as accepted, and its value's [`value_digest`].
    pub accepted: Option<(ProposalId, u64)>,
}

/// A 64-bit digest of a value, to compare values without keeping them. Stable across builds
/// and platforms (evidence files hold it).
pub fn value_digest(value: &[u8]) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(value);
    hasher.write_usize(value.len());
    hasher.finish()
}

impl InstanceFacts {
    /// Notes a PROMISE or ACCEPTED a node sent; other messages are ignored. Returns whether the
    /// message was an acknowledgement.
    pub fn on_ack(&mut self, message: &Message) -> bool {
        let (node, id, accepted) = match message {
            Message::Promise(p) => (p.from, p.id, p.accepted.clone()),
            Message::Accepted(a) => (a.from, a.id, Some((a.id, a.value.clone()))),
            _ => return false,
        };
        let index = match self.acked.iter().position(|(n, _)| *n == node) {
            Some(index) => index,
            None => {
                self.acked.push((node, Acked::default()));
                self.acked.len() - 1
            }
        };
        let acked = &mut self.acked[index].1;
        acked.promised = acked.promised.max(id);
        if let Some((id, value)) = accepted
            && acked.accepted.is_none_or(|(held, _)| held < id)
        {
            acked.accepted = Some((id, value_digest(&value)));
        }
        true
    }
}

/// Where the checker keeps the facts of retired instances: decided, with no operation in
/// flight. It asks for them back only when a late message names a retired instance.
pub trait RetiredStore: fmt::Debug {
    /// Keeps `facts` for `instance`, replacing any earlier facts of it.
    fn put(&mut self, instance: Instance, facts: InstanceFacts);
    /// The facts last put for `instance`.
    fn get(&mut self, instance: Instance) -> Option<InstanceFacts>;
    /// Makes everything put so far readable by whoever reads the store after the run. Returns
    /// the first failure of any call so far: a store that lost facts fails the run.
    fn finish(&mut self) -> Result<(), String>;
    /// Whether [`RetiredStore::get`] returns what was put. The checker asks a store that
    /// forgets nothing back, and so keeps no note of what it retired.
    fn remembers(&self) -> bool {
        true
    }
}

/// A [`RetiredStore`] that keeps nothing, so that retiring costs nothing: for a shell that
/// never reports on an instance after its operations ended, as the load generator's host does
/// when it keeps no evidence (it feeds the checker only its proposers' events, and a proposer
/// reports a decision before its operation ends). A report that came later anyway would be
/// checked as if about a fresh instance.
#[derive(Debug, Default)]
pub struct Forget;

impl RetiredStore for Forget {
    fn put(&mut self, _instance: Instance, _facts: InstanceFacts) {}

    fn get(&mut self, _instance: Instance) -> Option<InstanceFacts> {
        None
    }

    fn finish(&mut self) -> Result<(), String> {
        Ok(())
    }

    fn remembers(&self) -> bool {
        false
    }
}

/// A [`RetiredStore`] in memory: for tests, fuzzing and short runs that keep no evidence.
#[derive(Debug, Default)]
pub struct MemoryStore {
    facts: FxHashMap<Instance, InstanceFacts>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl RetiredStore for MemoryStore {
    fn put(&mut self, instance: Instance, facts: InstanceFacts) {
        self.facts.insert(instance, facts);
    }

    fn get(&mut self, instance: Instance) -> Option<InstanceFacts> {
        self.facts.get(&instance).cloned()
    }

    fn finish(&mut self) -> Result<(), String> {
        Ok(())
    }
}
