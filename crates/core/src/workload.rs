//! What hosted proposers propose: the [`Workload`] trait the [`ProposerHost`](crate::host)
//! asks for each proposer's next operation, and [`UniformWorkload`], a closed loop over
//! uniformly chosen keys.
//! The load generator brings richer workloads (zipfian keys, races, open loop) through the trait.

use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::proposer::{GiveUpReason, ProposerEvent};
use crate::rng::{DetRng, Stream};
use crate::time::Time;
use crate::types::{Instance, ProposerId, ProposerIndex, Value};

/// One operation: propose `value` for `instance` at time `at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpSpec {
    /// The instance.
    pub instance: Instance,
    /// The value; make it unique per operation so that "won" and "lost" can be told apart.
    pub value: Value,
    /// When to start; not before the `now` it was asked at.
    pub at: Time,
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpOutcome {
    /// Its own value was chosen.
    Won,
    /// Another value was chosen for the instance: it lost the race.
    Lost,
    /// It stopped without learning a decision.
    GaveUp(GiveUpReason),
}

impl OpOutcome {
    /// How an operation ended, if `event` ends one: the one mapping from proposer events to
    /// outcomes, shared by the simulator and the load generator's real-cluster driver.
    pub fn of_event(event: &ProposerEvent) -> Option<(Instance, OpOutcome)> {
        match event {
            ProposerEvent::Chosen { instance, own, .. } => Some((
                *instance,
                if *own {
                    OpOutcome::Won
                } else {
                    OpOutcome::Lost
                },
            )),
            ProposerEvent::GaveUp {
                instance, reason, ..
            } => Some((*instance, OpOutcome::GaveUp(*reason))),
            _ => None,
        }
    }
}

/// What an idle proposer does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextOp {
    /// Start this operation.
    Start(OpSpec),
    /// Nothing yet: ask again after the next operation of any proposer ends (a race waits for
    /// its whole group).
    Wait,
    /// This proposer is done.
    Done,
}

impl From<Option<OpSpec>> for NextOp {
    fn from(op: Option<OpSpec>) -> Self {
        op.map_or(NextOp::Done, NextOp::Start)
    }
}

/// A source of operations for the proposers of a [`ProposerHost`](crate::host::ProposerHost),
/// whichever shell drives it.
pub trait Workload {
    /// The next operation for `proposer`, now idle at `now`.
    fn next_op(&mut self, proposer: ProposerIndex, now: Time) -> NextOp;
    /// How `proposer`'s operation on `instance` ended.
    fn on_outcome(
        &mut self,
        proposer: ProposerIndex,
        now: Time,
        instance: Instance,
        outcome: OpOutcome,
    );
    /// When no new operation starts, if the workload is bounded in time; the host lets
    /// operations in flight drain for [`DRAIN`](crate::host::DRAIN) after it.
    fn end(&self) -> Option<Time> {
        None
    }
    /// Stop issuing operations (Ctrl-C, or the drain deadline passed).
    fn stop(&mut self) {}
}

/// The first bytes of every value a paxbench workload proposes, so that a value met in a
/// cluster can be traced to the run, proposer and operation that proposed it.
pub const VALUE_MAGIC: [u8; 4] = *b"pxb1";
/// The length of a value's [`ValueTag`]: magic, run, proposer and operation.
pub const VALUE_TAG_LEN: usize = 20;

/// Who proposed a value: the run (shared by every generator of one run), the proposer (unique
/// across generators) and its operation number. Read back with [`ValueTag::of`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ValueTag {
    /// The run's tag: the generators of one run share it; different runs differ.
    pub run: u32,
    /// The proposer.
    pub proposer: ProposerId,
    /// The proposer's operation number.
    pub op: u64,
}

impl ValueTag {
    /// The tag a value starts with, if it was made by [`unique_value`].
    pub fn of(value: &[u8]) -> Option<Self> {
        let header = value.get(..VALUE_TAG_LEN)?;
        if header[..4] != VALUE_MAGIC {
            return None;
        }
        let run = u32::from_be_bytes(header[4..8].try_into().ok()?);
        let proposer = ProposerId(u32::from_be_bytes(header[8..12].try_into().ok()?));
        let op = u64::from_be_bytes(header[12..20].try_into().ok()?);
        Some(Self { run, proposer, op })
    }
}

/// A value no other operation proposes: its [`ValueTag`], padded to `size` bytes (never
/// shorter than the tag).
pub fn unique_value(tag: ValueTag, size: usize) -> Value {
    let mut bytes = Vec::with_capacity(size.max(VALUE_TAG_LEN));
    bytes.extend_from_slice(&VALUE_MAGIC);
    bytes.extend_from_slice(&tag.run.to_be_bytes());
    bytes.extend_from_slice(&tag.proposer.0.to_be_bytes());
    bytes.extend_from_slice(&tag.op.to_be_bytes());
    bytes.resize(size.max(VALUE_TAG_LEN), 0x2a);
    Value::from(bytes)
}

/// A closed loop: each proposer runs `ops_per_proposer` operations one after another, waiting
/// `think_time` between them, each on a uniformly chosen key at the next slot not yet known to
/// be decided. Proposers that pick the same key at the same time race for the same instance;
/// the losers' next operation on that key moves to the next slot.
#[derive(Clone, Debug)]
pub struct UniformWorkload {
    keys: u64,
    ops_per_proposer: u64,
    think_time: Duration,
    start_spread: Duration,
    rng: DetRng,
    next_slot: FxHashMap<u64, u64>,
    issued: FxHashMap<ProposerIndex, u64>,
}

impl UniformWorkload {
    /// `ops_per_proposer` operations per proposer over `keys` keys; first operations start
    /// uniformly within `start_spread`.
    pub fn new(
        keys: u64,
        ops_per_proposer: u64,
        think_time: Duration,
        start_spread: Duration,
        seed: u64,
    ) -> Self {
        Self {
            keys: keys.max(1),
            ops_per_proposer,
            think_time,
            start_spread,
            rng: Stream::Workload.rng(seed),
            next_slot: FxHashMap::default(),
            issued: FxHashMap::default(),
        }
    }
}

impl Workload for UniformWorkload {
    fn next_op(&mut self, proposer: ProposerIndex, now: Time) -> NextOp {
        let issued = self.issued.entry(proposer).or_insert(0);
        if *issued >= self.ops_per_proposer {
            return NextOp::Done;
        }
        let at = if *issued == 0 {
            now + Duration::from_nanos(self.rng.between(0, self.start_spread.as_nanos() as u64))
        } else {
            now + self.think_time
        };
        let op = *issued;
        *issued += 1;
        let key = self.rng.below(self.keys);
        let slot = self.next_slot.get(&key).copied().unwrap_or(0);
        NextOp::Start(OpSpec {
            instance: Instance::new(key, slot),
            value: unique_value(
                ValueTag {
                    run: 0,
                    proposer: ProposerId(proposer.0),
                    op,
                },
                VALUE_TAG_LEN,
            ),
            at,
        })
    }

    fn on_outcome(&mut self, _: ProposerIndex, _: Time, instance: Instance, outcome: OpOutcome) {
        if matches!(outcome, OpOutcome::Won | OpOutcome::Lost) {
            let next = self.next_slot.entry(instance.key).or_insert(0);
            *next = (*next).max(instance.slot + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_the_budget_and_moves_slots_after_a_decision() {
        let mut w = UniformWorkload::new(1, 2, Duration::from_millis(1), Duration::ZERO, 3);
        let p = ProposerIndex(4);
        let NextOp::Start(first) = w.next_op(p, Time::ZERO) else {
            panic!("an operation")
        };
        assert_eq!(first.instance, Instance::new(0, 0));
        assert_eq!(first.at, Time::ZERO);
        w.on_outcome(p, Time(5), first.instance, OpOutcome::Lost);
        let NextOp::Start(second) = w.next_op(p, Time(5)) else {
            panic!("an operation")
        };
        assert_eq!(second.instance, Instance::new(0, 1));
        assert_eq!(second.at, Time(5) + Duration::from_millis(1));
        assert_ne!(first.value, second.value);
        assert_eq!(w.next_op(p, Time(9)), NextOp::Done);
    }

    fn tag(run: u32, proposer: u32, op: u64) -> ValueTag {
        ValueTag {
            run,
            proposer: ProposerId(proposer),
            op,
        }
    }

    #[test]
    fn unique_values_differ_per_run_proposer_and_op() {
        let values =
            [tag(0, 1, 2), tag(0, 2, 1), tag(0, 1, 1), tag(1, 1, 2)].map(|t| unique_value(t, 64));
        for (i, a) in values.iter().enumerate() {
            for b in &values[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn a_value_tells_who_proposed_it() {
        let t = tag(0xdead_beef, 65_537, 42);
        let value = unique_value(t, 64);
        assert_eq!(value.len(), 64);
        assert_eq!(ValueTag::of(&value), Some(t));
        assert_eq!(unique_value(t, 3).len(), VALUE_TAG_LEN);
        assert_eq!(ValueTag::of(b"not a paxbench value at all"), None);
        assert_eq!(ValueTag::of(&value[..VALUE_TAG_LEN - 1]), None);
    }
}
