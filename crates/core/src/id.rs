//! Proposal-ID schemes. Each is a small state machine behind the [`IdScheme`] trait: it issues
//! the next ID from a wall-clock reading and may learn from IDs seen in replies.
//! [`IdGenerator`] is the closed set the harness compares, chosen per proposer by [`IdSchemeKind`].

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::types::{ProposalId, ProposerId};

/// A way of issuing proposal IDs for one proposer.
pub trait IdScheme {
    /// The next ID, given the proposer's current wall-clock reading in nanoseconds.
    fn next_id(&mut self, clock_ns: u64) -> ProposalId;
    /// Learns from an ID seen in a PROMISE or NACK, so that later IDs can outrun it.
    fn observe(&mut self, seen: ProposalId);
}

/// The ID schemes the harness compares.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdSchemeKind {
    /// `(round, proposer)`; the round jumps past the highest round seen.
    #[default]
    Counter,
    /// Slotted nanosecond timestamps `(clock, proposer)`, strictly increasing per proposer.
    Timestamp,
    /// The clock alone, `(clock, 0)`: can collide, kept to show what collisions do.
    NaiveTimestamp,
    /// Hybrid logical clock (Kulkarni et al.), `(physical, logical:proposer)`.
    Hlc,
}

impl IdSchemeKind {
    /// Every kind, in a stable order for reports.
    pub const ALL: [IdSchemeKind; 4] = [
        IdSchemeKind::Counter,
        IdSchemeKind::Timestamp,
        IdSchemeKind::NaiveTimestamp,
        IdSchemeKind::Hlc,
    ];

    /// The name used in configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            IdSchemeKind::Counter => "counter",
            IdSchemeKind::Timestamp => "timestamp",
            IdSchemeKind::NaiveTimestamp => "naive-timestamp",
            IdSchemeKind::Hlc => "hlc",
        }
    }

    /// Whether two proposers can ever issue the same ID under this scheme.
    pub fn guarantees_unique_ids(self) -> bool {
        !matches!(self, IdSchemeKind::NaiveTimestamp)
    }
}

/// `(round, proposer)` where round = max(own round, highest round seen) + 1.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CounterIds {
    proposer: ProposerId,
    round: u64,
}

impl IdScheme for CounterIds {
    fn next_id(&mut self, _clock_ns: u64) -> ProposalId {
        self.round = self.round.saturating_add(1);
        ProposalId::new(self.round, self.proposer.0)
    }

    fn observe(&mut self, seen: ProposalId) {
        self.round = self.round.max(seen.high);
    }
}

/// Slotted timestamps `(max(clock, last + 1), proposer)`.
///
/// The proposer slot makes IDs unique across proposers; the `last + 1` floor keeps them strictly
/// increasing when the clock stalls (coarse resolution) or steps back. The scheme deliberately
/// ignores IDs it sees: a proposer whose clock lags keeps losing to the others, which is one of
/// the effects the harness measures.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TimestampIds {
    proposer: ProposerId,
    last: u64,
}

impl IdScheme for TimestampIds {
    fn next_id(&mut self, clock_ns: u64) -> ProposalId {
        self.last = clock_ns.max(self.last.saturating_add(1));
        ProposalId::new(self.last, self.proposer.0)
    }

    fn observe(&mut self, _seen: ProposalId) {}
}

/// The clock alone, `(clock, 0)`. Two proposers reading the same tick issue the same ID, and a
/// stalled clock reissues an ID: this breaks Paxos's uniqueness assumption on purpose.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct NaiveTimestampIds;

impl IdScheme for NaiveTimestampIds {
    fn next_id(&mut self, clock_ns: u64) -> ProposalId {
        ProposalId::new(clock_ns, 0)
    }

    fn observe(&mut self, _seen: ProposalId) {}
}

/// Bits of the `low` half that hold the proposer in an HLC ID; the rest hold the logical counter.
pub const HLC_PROPOSER_BITS: u32 = 20;
const HLC_MAX_LOGICAL: u32 = (1 << (32 - HLC_PROPOSER_BITS)) - 1;

/// A hybrid logical clock: `high` is the physical part `l` (the largest clock reading or ID seen),
/// `low` packs the logical counter `c` above the proposer. Seen IDs are merged as receive events,
/// so a proposer whose clock lags catches up with the IDs it loses to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HlcIds {
    proposer: ProposerId,
    physical: u64,
    logical: u32,
}

impl HlcIds {
    fn pack(&self) -> ProposalId {
        ProposalId::new(
            self.physical,
            (self.logical << HLC_PROPOSER_BITS) | self.proposer.0,
        )
    }
}

impl IdScheme for HlcIds {
    fn next_id(&mut self, clock_ns: u64) -> ProposalId {
        if clock_ns > self.physical {
            self.physical = clock_ns;
            self.logical = 0;
        } else if self.logical < HLC_MAX_LOGICAL {
            self.logical += 1;
        } else {
            // The logical counter is full: borrow one nanosecond from the future, which keeps
            // IDs increasing and only makes `physical` run a hair ahead of real time.
            self.physical = self.physical.saturating_add(1);
            self.logical = 0;
        }
        self.pack()
    }

    fn observe(&mut self, seen: ProposalId) {
        let seen_logical = seen.low >> HLC_PROPOSER_BITS;
        if (seen.high, seen_logical) > (self.physical, self.logical) {
            self.physical = seen.high;
            self.logical = seen_logical;
        }
    }
}

/// One proposer's ID generator: the scheme chosen for it, dispatched without boxing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IdGenerator {
    /// See [`CounterIds`].
    Counter(CounterIds),
    /// See [`TimestampIds`].
    Timestamp(TimestampIds),
    /// See [`NaiveTimestampIds`].
    NaiveTimestamp(NaiveTimestampIds),
    /// See [`HlcIds`].
    Hlc(HlcIds),
}

impl IdGenerator {
    /// A fresh generator of `kind` for `proposer`.
    ///
    /// Fails for [`IdSchemeKind::Hlc`] when the proposer does not fit in
    /// [`HLC_PROPOSER_BITS`] bits.
    pub fn new(kind: IdSchemeKind, proposer: ProposerId) -> Result<Self, Error> {
        Ok(match kind {
            IdSchemeKind::Counter => IdGenerator::Counter(CounterIds { proposer, round: 0 }),
            IdSchemeKind::Timestamp => IdGenerator::Timestamp(TimestampIds { proposer, last: 0 }),
            IdSchemeKind::NaiveTimestamp => IdGenerator::NaiveTimestamp(NaiveTimestampIds),
            IdSchemeKind::Hlc => {
                if proposer.0 >= 1 << HLC_PROPOSER_BITS {
                    return Err(Error::ProposerIdOutOfRange {
                        proposer,
                        scheme: kind.name(),
                        max: (1 << HLC_PROPOSER_BITS) - 1,
                    });
                }
                IdGenerator::Hlc(HlcIds {
                    proposer,
                    physical: 0,
                    logical: 0,
                })
            }
        })
    }

    /// The scheme this generator follows.
    pub fn kind(&self) -> IdSchemeKind {
        match self {
            IdGenerator::Counter(_) => IdSchemeKind::Counter,
            IdGenerator::Timestamp(_) => IdSchemeKind::Timestamp,
            IdGenerator::NaiveTimestamp(_) => IdSchemeKind::NaiveTimestamp,
            IdGenerator::Hlc(_) => IdSchemeKind::Hlc,
        }
    }
}

impl IdScheme for IdGenerator {
    #[inline]
    fn next_id(&mut self, clock_ns: u64) -> ProposalId {
        match self {
            IdGenerator::Counter(g) => g.next_id(clock_ns),
            IdGenerator::Timestamp(g) => g.next_id(clock_ns),
            IdGenerator::NaiveTimestamp(g) => g.next_id(clock_ns),
            IdGenerator::Hlc(g) => g.next_id(clock_ns),
        }
    }

    #[inline]
    fn observe(&mut self, seen: ProposalId) {
        match self {
            IdGenerator::Counter(g) => g.observe(seen),
            IdGenerator::Timestamp(g) => g.observe(seen),
            IdGenerator::NaiveTimestamp(g) => g.observe(seen),
            IdGenerator::Hlc(g) => g.observe(seen),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator(kind: IdSchemeKind, proposer: u32) -> IdGenerator {
        IdGenerator::new(kind, ProposerId(proposer)).unwrap()
    }

    #[test]
    fn counter_jumps_past_the_highest_round_seen() {
        let mut ids = generator(IdSchemeKind::Counter, 3);
        assert_eq!(ids.next_id(0), ProposalId::new(1, 3));
        ids.observe(ProposalId::new(41, 9));
        assert_eq!(ids.next_id(0), ProposalId::new(42, 3));
        ids.observe(ProposalId::new(5, 1)); // lower: ignored
        assert_eq!(ids.next_id(0), ProposalId::new(43, 3));
    }

    #[test]
    fn timestamp_is_strictly_increasing_when_the_clock_stalls_or_steps_back() {
        let mut ids = generator(IdSchemeKind::Timestamp, 7);
        let a = ids.next_id(1_000);
        let b = ids.next_id(1_000); // stalled
        let c = ids.next_id(10); // stepped back
        let d = ids.next_id(5_000);
        assert!(a < b && b < c && c < d, "{a} {b} {c} {d}");
        assert_eq!(d, ProposalId::new(5_000, 7));
        assert!(ids.next_id(0).low == 7, "the proposer slot is kept");
    }

    #[test]
    fn timestamp_ids_of_two_proposers_never_collide_on_the_same_tick() {
        let mut a = generator(IdSchemeKind::Timestamp, 1);
        let mut b = generator(IdSchemeKind::Timestamp, 2);
        assert_ne!(a.next_id(1_000_000), b.next_id(1_000_000));
    }

    #[test]
    fn naive_timestamps_collide_and_repeat() {
        let mut a = generator(IdSchemeKind::NaiveTimestamp, 1);
        let mut b = generator(IdSchemeKind::NaiveTimestamp, 2);
        assert_eq!(a.next_id(1_000_000), b.next_id(1_000_000));
        assert_eq!(a.next_id(1_000_000), a.next_id(1_000_000));
        assert!(!IdSchemeKind::NaiveTimestamp.guarantees_unique_ids());
    }

    #[test]
    fn hlc_follows_the_clock_and_counts_within_a_tick() {
        let mut ids = generator(IdSchemeKind::Hlc, 5);
        let a = ids.next_id(100);
        let b = ids.next_id(100);
        let c = ids.next_id(50); // clock behind: logical keeps counting
        let d = ids.next_id(200);
        assert_eq!(a, ProposalId::new(100, 5));
        assert_eq!(b, ProposalId::new(100, (1 << HLC_PROPOSER_BITS) | 5));
        assert!(a < b && b < c && c < d);
        assert_eq!(d, ProposalId::new(200, 5));
    }

    #[test]
    fn hlc_outruns_ids_it_has_seen_even_with_a_lagging_clock() {
        let mut ids = generator(IdSchemeKind::Hlc, 1);
        let seen = ProposalId::new(1_000_000, (3 << HLC_PROPOSER_BITS) | 2);
        ids.observe(seen);
        let next = ids.next_id(10);
        assert!(next > seen, "{next} must beat {seen}");
        assert_eq!(next.high, 1_000_000);
    }

    #[test]
    fn hlc_logical_overflow_moves_physical_forward() {
        let mut ids = generator(IdSchemeKind::Hlc, 1);
        let mut last = ids.next_id(7);
        for _ in 0..(HLC_MAX_LOGICAL + 3) {
            let next = ids.next_id(7);
            assert!(next > last);
            last = next;
        }
        assert_eq!(last.high, 8);
    }

    #[test]
    fn hlc_refuses_proposers_that_do_not_fit() {
        assert!(IdGenerator::new(IdSchemeKind::Hlc, ProposerId(1 << HLC_PROPOSER_BITS)).is_err());
        assert!(IdGenerator::new(IdSchemeKind::Counter, ProposerId(u32::MAX)).is_ok());
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn unique_kind() -> impl Strategy<Value = IdSchemeKind> {
        prop_oneof![
            Just(IdSchemeKind::Counter),
            Just(IdSchemeKind::Timestamp),
            Just(IdSchemeKind::Hlc)
        ]
    }

    /// One step of a proposer's life: read the clock and issue an ID, or observe another's ID.
    #[derive(Debug, Clone)]
    enum Step {
        Issue { proposer: usize, clock: u64 },
        Observe { proposer: usize, from: usize },
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        proptest::collection::vec(
            prop_oneof![
                // Clocks that stall, jump and go backwards.
                (0usize..4, 0u64..50).prop_map(|(proposer, clock)| Step::Issue { proposer, clock }),
                (0usize..4, 0usize..4)
                    .prop_map(|(proposer, from)| Step::Observe { proposer, from }),
            ],
            1..200,
        )
    }

    proptest! {
        #[test]
        fn ids_increase_per_proposer_and_never_collide(kind in unique_kind(), steps in steps()) {
            let mut generators: Vec<IdGenerator> = (0..4)
                .map(|p| IdGenerator::new(kind, ProposerId(p + 1)).unwrap())
                .collect();
            let mut last: Vec<Option<ProposalId>> = vec![None; 4];
            let mut issued = std::collections::HashMap::new();
            for step in steps {
                match step {
                    Step::Issue { proposer, clock } => {
                        let id = generators[proposer].next_id(clock);
                        prop_assert!(id > ProposalId::ZERO);
                        if let Some(previous) = last[proposer] {
                            prop_assert!(id > previous, "{kind:?}: {id} after {previous}");
                        }
                        last[proposer] = Some(id);
                        if let Some(other) = issued.insert(id, proposer) {
                            prop_assert!(false, "{kind:?}: {id} issued by {other} and {proposer}");
                        }
                    }
                    Step::Observe { proposer, from } => {
                        if let Some(seen) = last[from] {
                            generators[proposer].observe(seen);
                            // Counter and HLC outrun what they saw; slotted timestamps may not.
                            if kind != IdSchemeKind::Timestamp {
                                let next = generators[proposer].clone().next_id(0);
                                prop_assert!(next > seen, "{kind:?}: {next} does not outrun {seen}");
                            }
                        }
                    }
                }
            }
        }
    }
}
