//! The `memory` engine: keeps nothing, so a restarted node has forgotten every promise. It is
//! unsafe across crashes and exists to measure what durability costs.

use paxbench_core::acceptor::Record;

use super::store::{AcceptorStore, Recovered};
use crate::error::Error;

/// Keeps nothing: a restarted node has forgotten every promise.
#[derive(Debug, Default)]
pub struct MemoryStorage;

impl AcceptorStore for MemoryStorage {
    fn recover(&mut self) -> Result<Recovered, Error> {
        Ok(Recovered::default())
    }

    fn commit(&mut self, _records: &[Record]) -> Result<u64, Error> {
        Ok(0)
    }

    fn write_unsynced(&mut self, _records: &[Record]) -> Result<(), Error> {
        Ok(())
    }
}
