//! The interface every storage engine offers the node: make a batch of acceptor records
//! durable, say what to restart from, and (where the engine checkpoints) read back the states
//! the node forgot.

use paxbench_core::Instance;
use paxbench_core::acceptor::{AcceptorState, Record};

use crate::error::Error;
use crate::storage::ranged::RangedState;

/// What an acceptor restarts from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The records the acceptor must hold in memory at start; later ones replace earlier ones
    /// of the same instance. An engine with a [`StateReader`] returns only the records its
    /// checkpoint does not include yet: the others are read when needed.
    pub records: Vec<Record>,
    /// The log position of the last of them (0 where the engine has no log positions).
    pub position: u64,
    /// The Multi-Paxos global promise and chosen prefix (the default on a vanilla node).
    pub ranged: RangedState,
}

/// Where an acceptor keeps its promises and accepted proposals.
pub trait AcceptorStore: Send + 'static {
    /// What to restore the acceptor from; the first call after opening returns it.
    fn recover(&mut self) -> Result<Recovered, Error>;
    /// Makes `records` durable; when this returns `Ok`, they survive a crash. Returns the log
    /// position of the last one, to compare with [`StateReader::checkpointed`].
    fn commit(&mut self, records: &[Record]) -> Result<u64, Error>;
    /// Writes `records` without making them durable: what reaches the disk before a failed
    /// fsync. Only [`crate::storage::FaultyDisk`] calls it.
    fn write_unsynced(&mut self, records: &[Record]) -> Result<(), Error>;
    /// Makes the Multi-Paxos state durable, replacing the last one; when this returns `Ok`,
    /// it survives a crash. Engines that keep nothing keep nothing.
    fn persist_ranged(&mut self, _state: &RangedState) -> Result<(), Error> {
        Ok(())
    }
    /// A reader of states the node need not hold in memory, if the engine has one. Without
    /// it, the node holds every instance it ever saw.
    fn reader(&self) -> Option<Box<dyn StateReader>> {
        None
    }
}

/// Reads back states a node forgot, from an engine's checkpoint. Only states written at or
/// before [`StateReader::checkpointed`] are there, so a node forgets only those.
pub trait StateReader: Send + std::fmt::Debug {
    /// The checkpointed state of `instance`.
    fn get(&mut self, instance: Instance) -> Result<Option<AcceptorState>, Error>;
    /// The highest slot of `key` in the checkpoint, for a node that does not know yet which
    /// instances of a key it forgot before it restarted.
    fn max_slot(&mut self, key: u64) -> Result<Option<u64>, Error>;
    /// Hands every checkpointed state at or above `from(key)` to `visit`, a later state of an
    /// instance after an earlier one: for a Multi-Paxos node that restarts and must hold every
    /// state its chosen prefix does not cover.
    fn for_each_state_from(
        &self,
        from: &dyn Fn(u64) -> u64,
        visit: &mut dyn FnMut(Record) -> Result<(), Error>,
    ) -> Result<(), Error>;
    /// The last log position the checkpoint includes.
    fn checkpointed(&self) -> u64;
    /// Checkpoints completed since the store was opened.
    fn checkpoints(&self) -> u64;
}

/// The records a `for_each_record`-style visitor hands out, collected: for tests and small
/// stores; audits visit instead.
pub fn collect_records(
    visit_all: impl FnOnce(&mut dyn FnMut(Record) -> Result<(), Error>) -> Result<(), Error>,
) -> Result<Vec<Record>, Error> {
    let mut records = Vec::new();
    visit_all(&mut |record| {
        records.push(record);
        Ok(())
    })?;
    Ok(records)
}
