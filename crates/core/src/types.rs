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

/// How many acceptors each phase waits for: majorities by default, or flexible quorums
/// (FPaxos, Howard, Malkhi and Spiegelman 2016), where only every phase-1 quorum must
/// intersect every phase-2 quorum: `phase1 + phase2 > acceptors`. A smaller phase 2 makes the
/// common case cheaper and the rare leader change dearer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Quorums {
    /// PROMISEs needed before phase 2.
    pub phase1: usize,
    /// ACCEPTEDs needed for a value to be chosen.
    pub phase2: usize,
}

impl Quorums {
    /// Majorities of `acceptors` in both phases.
    pub const fn majority(acceptors: usize) -> Self {
        Self {
            phase1: quorum(acceptors),
            phase2: quorum(acceptors),
        }
    }

    /// Whether both sizes are between 1 and `acceptors`: each phase can be completed at all.
    pub const fn fits(&self, acceptors: usize) -> bool {
        self.phase1 >= 1 && self.phase2 >= 1 && self.phase1 <= acceptors && self.phase2 <= acceptors
    }

    /// Whether every phase-1 quorum meets every phase-2 quorum, the one condition Paxos's
    /// agreement rests on: `phase1 + phase2 > acceptors`.
    pub const fn intersect(&self, acceptors: usize) -> bool {
        self.phase1 + self.phase2 > acceptors
    }

    /// How many refusals in a phase needing `needed` of `acceptors` make that phase hopeless.
    pub const fn hopeless_after(needed: usize, acceptors: usize) -> usize {
        acceptors.saturating_sub(needed) + 1
    }
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
    fn flexible_quorums_must_intersect_across_phases_only() {
        assert!(Quorums::majority(5).intersect(5));
        let fpaxos = Quorums {
            phase1: 4,
            phase2: 2,
        };
        assert!(fpaxos.fits(5) && fpaxos.intersect(5), "4 + 2 > 5");
        let unsafe_pair = Quorums {
            phase1: 2,
            phase2: 3,
        };
        assert!(
            unsafe_pair.fits(5) && !unsafe_pair.intersect(5),
            "2 + 3 = 5"
        );
        assert!(
            !Quorums {
                phase1: 0,
                phase2: 5
            }
            .fits(5)
        );
        assert!(
            !Quorums {
                phase1: 6,
                phase2: 1
            }
            .fits(5)
        );
        assert_eq!(Quorums::hopeless_after(2, 5), 4);
        assert_eq!(Quorums::hopeless_after(3, 3), 1);
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
