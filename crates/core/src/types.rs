//! Identities, instances, values and proposal IDs: the nouns every role and message shares.
//! All are small `Copy` types except [`Value`], which is reference-counted bytes so that
//! fanning a message out to many acceptors never copies the payload.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Identity of a node: the host of one acceptor and one learner.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct NodeId(pub u32);

/// Identity of a proposer. It is the tie-breaking `low` half of most ID schemes, so it must be
/// unique across every proposer that can target the same cluster.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ProposerId(pub u32);

/// A proposer's place among the proposers of one host, from 0. Workloads, metrics and faults
/// speak of proposers by index; the wire and the ID schemes by [`ProposerId`], which is the
/// host's first id plus the index, so that several generators never share an id.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ProposerIndex(pub u32);

/// One single-decree Paxos instance. Consensus is immutable, so writing a key again means
/// deciding a new `slot` of that key, never re-deciding an old one.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Instance {
    /// The key being written.
    pub key: u64,
    /// The write number for that key, starting at 0.
    pub slot: u64,
}

impl Instance {
    /// The instance for `slot` of `key`.
    pub const fn new(key: u64, slot: u64) -> Self {
        Self { key, slot }
    }
}

/// A proposed value: opaque bytes, cheap to clone.
pub type Value = Bytes;

/// A proposal ID: a totally ordered pair compared as a whole, `high` first, then `low`.
///
/// Each ID scheme decides what the halves mean (a round and a proposer, a timestamp and a
/// proposer, ...); the protocol only ever compares whole IDs. [`ProposalId::ZERO`] is below
/// every ID a scheme issues and stands for "nothing promised yet".
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ProposalId {
    /// The significant half.
    pub high: u64,
    /// The tie-breaker.
    pub low: u32,
}

impl ProposalId {
    /// Below every issued ID.
    pub const ZERO: ProposalId = ProposalId { high: 0, low: 0 };

    /// An ID from its two halves.
    pub const fn new(high: u64, low: u32) -> Self {
        Self { high, low }
    }
}

impl fmt::Display for ProposalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.high, self.low)
    }
}

impl fmt::Display for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.key, self.slot)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Display for ProposerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// The size of a majority of `acceptors`: the smallest count any two of which intersect.
pub const fn quorum(acceptors: usize) -> usize {
    acceptors / 2 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_compare_as_a_whole_high_first() {
        assert!(ProposalId::new(2, 0) > ProposalId::new(1, u32::MAX));
        assert!(ProposalId::new(1, 2) > ProposalId::new(1, 1));
        assert!(ProposalId::ZERO < ProposalId::new(0, 1));
    }

    #[test]
    fn quorum_is_a_strict_majority() {
        assert_eq!(quorum(1), 1);
        assert_eq!(quorum(2), 2);
        assert_eq!(quorum(3), 2);
        assert_eq!(quorum(4), 3);
        assert_eq!(quorum(7), 4);
    }
}
