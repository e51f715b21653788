//! Disk faults injected on command: [`FaultyDisk`] wraps any engine and fails its commits the
//! way a real disk does (the write fails, or the data is written and its fsync fails), when
//! the [`DiskSwitch`] the admin handler holds says so.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use paxbench_core::acceptor::Record;
use paxbench_quic::DiskFault;

use super::ranged::RangedState;
use super::store::{AcceptorStore, Recovered, StateReader};
use crate::error::Error;

/// The switch of a [`FaultyDisk`], shared with whoever injects the fault (the node's admin
/// handler).
#[derive(Clone, Debug, Default)]
pub struct DiskSwitch(Arc<AtomicU8>);

impl DiskSwitch {
    /// Sets the fault in force from the next commit on.
    pub fn set(&self, fault: DiskFault) {
        let code = match fault {
            DiskFault::None => 0,
            DiskFault::FailWrite => 1,
            DiskFault::FailFsync => 2,
        };
        self.0.store(code, Ordering::SeqCst);
    }

    /// The fault in force.
    pub fn get(&self) -> DiskFault {
        match self.0.load(Ordering::SeqCst) {
            1 => DiskFault::FailWrite,
            2 => DiskFault::FailFsync,
            _ => DiskFault::None,
        }
    }
}

/// Wraps a store with a disk that fails on command: the write fails outright, or the data is
/// written but its fsync fails. Either way the commit returns an error, as a real disk would.
pub struct FaultyDisk {
    inner: Box<dyn AcceptorStore>,
    switch: DiskSwitch,
}

impl FaultyDisk {
    /// `inner`, failing whenever `switch` says so.
    pub fn new(inner: Box<dyn AcceptorStore>, switch: DiskSwitch) -> Self {
        Self { inner, switch }
    }
}

impl AcceptorStore for FaultyDisk {
    fn recover(&mut self) -> Result<Recovered, Error> {
        self.inner.recover()
    }

    fn reader(&self) -> Option<Box<dyn StateReader>> {
        self.inner.reader()
    }

    fn commit(&mut self, records: &[Record]) -> Result<u64, Error> {
        match self.switch.get() {
            DiskFault::None => self.inner.commit(records),
            DiskFault::FailWrite => Err(Error::Storage {
                path: "injected".into(),
                message: "write failed: Input/output error (injected disk fault)".into(),
            }),
            DiskFault::FailFsync => {
                self.inner.write_unsynced(records)?;
                Err(Error::Storage {
                    path: "injected".into(),
                    message: "fsync failed: Input/output error (injected disk fault)".into(),
                })
            }
        }
    }

    fn write_unsynced(&mut self, records: &[Record]) -> Result<(), Error> {
        self.inner.write_unsynced(records)
    }

    fn persist_ranged(&mut self, state: &RangedState) -> Result<(), Error> {
        match self.switch.get() {
            DiskFault::None => self.inner.persist_ranged(state),
            DiskFault::FailWrite | DiskFault::FailFsync => Err(Error::Storage {
                path: "injected".into(),
                message: "writing the ranged promise failed: Input/output error (injected disk \
                          fault)"
                    .into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RedbStorage;
    use crate::storage::tests::record;

    #[test]
    fn an_injected_fault_fails_the_commit_and_a_failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let switch = DiskSwitch::default();
        {
            let store = RedbStorage::open(dir.path()).unwrap();
            let mut disk = FaultyDisk::new(Box::new(store), switch.clone());
            disk.commit(&[record(1, 1, None)]).unwrap();
            switch.set(DiskFault::FailWrite);
            let err = disk.commit(&[record(2, 2, None)]).unwrap_err().to_string();
            assert!(err.contains("write failed"), "{err}");
            switch.set(DiskFault::FailFsync);
            let err = disk.commit(&[record(3, 3, None)]).unwrap_err().to_string();
            assert!(err.contains("fsync failed"), "{err}");
        }
        // The failed write never reached the store. The unsynced record may or may not have:
        // redb makes it durable on a clean close, and a crash loses it. Either way its commit
        // failed, so no reply ever rested on it.
        let store = RedbStorage::open_existing(dir.path()).unwrap();
        let history = store.history().unwrap();
        assert_eq!(history[0], record(1, 1, None));
        assert!(!history.contains(&record(2, 2, None)), "{history:?}");
        assert!(RedbStorage::open_existing(&dir.path().join("missing")).is_err());
    }
}
