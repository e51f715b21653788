//! Where an acceptor keeps its promises and accepted proposals: one trait, [`AcceptorStore`],
//! and its engines as siblings: `wal` (the default: a group-committed log, checkpointed off the
//! reply path), `redb` and `memory`, with [`FaultyDisk`] to inject disk faults into any of them.
//! The record codec, the crash-safe file steps and Multi-Paxos's ranged file are shared here.
//!
//! This file only opens engines and re-exports; the engines and the shared pieces import one
//! another, never it, so the folder has no import circle.

pub mod codec;
pub mod engine;
pub mod faulty;
pub mod fs;
pub mod memory;
pub mod ranged;
pub mod redb;
pub mod store;
pub mod wal;

use std::path::Path;

use paxbench_core::acceptor::Record;

pub use engine::{StorageMode, engine_of};
pub use faulty::{DiskSwitch, FaultyDisk};
pub use memory::MemoryStorage;
pub use ranged::{RangedFile, RangedState};
pub use redb::RedbStorage;
pub use store::{AcceptorStore, Recovered, StateReader};
pub use wal::{WalOptions, WalStorage};

use crate::error::Error;
use store::collect_records;

/// Opens the engine `mode` names in `data_dir` (which a durable engine requires).
pub fn open(mode: StorageMode, data_dir: Option<&Path>) -> Result<Box<dyn AcceptorStore>, Error> {
    let data_dir = || {
        data_dir.ok_or_else(|| Error::Config {
            origin: "config".into(),
            message: format!(
                "field `data_dir` is required for `storage: {}`",
                mode.name()
            ),
        })
    };
    Ok(match mode {
        StorageMode::Wal => Box::new(WalStorage::open(data_dir()?, WalOptions::default())?),
        StorageMode::Redb => Box::new(RedbStorage::open(data_dir()?)?),
        StorageMode::Memory => Box::new(MemoryStorage),
    })
}

/// Everything the store of a stopped node in `data_dir` holds, whichever engine wrote it, for
/// audits: later records of an instance come after earlier ones. Nothing on disk changes, and
/// a directory without a store is an error, not an empty store.
pub fn history(data_dir: &Path) -> Result<Vec<Record>, Error> {
    collect_records(|visit| for_each_record(data_dir, visit))
}

/// [`history`] without holding it: hands each record to `visit` in the same order, so that an
/// audit of a long run's stores needs memory for one record at a time (and, for `wal`, the log
/// after the last checkpoint).
pub fn for_each_record(
    data_dir: &Path,
    visit: &mut dyn FnMut(Record) -> Result<(), Error>,
) -> Result<(), Error> {
    match engine_of(data_dir) {
        Some((StorageMode::Wal, _)) => WalStorage::for_each_record(data_dir, visit),
        Some((StorageMode::Redb, _)) => {
            RedbStorage::open_existing(data_dir)?.for_each_record(visit)
        }
        Some((StorageMode::Memory, _)) | None => Err(Error::Storage {
            path: data_dir.to_path_buf(),
            message: "no store here (neither a wal nor a redb data directory)".into(),
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use bytes::Bytes;
    use paxbench_core::acceptor::AcceptorState;
    use paxbench_core::{Instance, ProposalId};

    use super::engine::refuse_foreign;
    use super::*;

    /// A record of `key`'s slot 0, promised at `promised` and accepted at `accepted`.
    pub(crate) fn record(key: u64, promised: u64, accepted: Option<u64>) -> Record {
        Record {
            instance: Instance::new(key, 0),
            state: AcceptorState {
                promised: ProposalId::new(promised, 1),
                accepted: accepted
                    .map(|id| (ProposalId::new(id, 1), Bytes::from(format!("v{id}")))),
            },
        }
    }

    #[test]
    fn each_engine_knows_its_directory_and_refuses_the_others() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(engine_of(dir.path()), None);
        assert!(
            history(dir.path()).is_err(),
            "an empty directory is no store"
        );
        drop(RedbStorage::open(dir.path()).unwrap());
        assert_eq!(
            engine_of(dir.path()).map(|(e, _)| e),
            Some(StorageMode::Redb)
        );
        let err = WalStorage::open(dir.path(), WalOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("storage: redb"), "{err}");
        assert!(refuse_foreign(dir.path(), StorageMode::Redb).is_ok());
        assert!(open(StorageMode::Wal, None).is_err());
        assert!(open(StorageMode::Memory, None).is_ok());
    }
}
