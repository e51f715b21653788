//! Where an acceptor keeps its promises and accepted proposals: one trait, [`AcceptorStore`],
//! and its engines as siblings: `wal` (the default: a group-committed log, checkpointed off the
//! reply path), `redb` and `memory`, with [`FaultyDisk`] to inject disk faults into any of them.
//! The record codec, the crash-safe file steps and Multi-Paxos's ranged file are shared here.
//!
//! Each engine that keeps files names the marks its data directory carries, so an engine
//! refuses another's directory, and an audit finds which engine wrote one, from one table.

pub mod codec;
pub mod faulty;
pub mod fs;
pub mod memory;
pub mod ranged;
pub mod redb;
pub mod wal;

use std::path::{Path, PathBuf};

use paxbench_core::Instance;
use paxbench_core::acceptor::{AcceptorState, Record};
use serde::{Deserialize, Serialize};

pub use faulty::{DiskSwitch, FaultyDisk};
pub use memory::MemoryStorage;
pub use ranged::{RangedFile, RangedState};
pub use redb::RedbStorage;
pub use wal::{WalOptions, WalStorage};

use crate::error::Error;

/// Where acceptor state is kept.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StorageMode {
    /// The write-ahead log: one append and one `fdatasync` per group commit before any reply
    /// that depends on it, checkpointed into redb off the reply path. `durable` means this.
    #[default]
    #[serde(alias = "durable")]
    Wal,
    /// redb: every batch committed in one fsynced transaction before any reply that depends on
    /// it. Kept to show what the storage engine costs.
    Redb,
    /// In memory only. Unsafe across crashes: a restarted node forgets its promises, which can
    /// break agreement. For benchmarks that leave the disk out.
    Memory,
}

impl StorageMode {
    /// Whether it survives a crash (and so needs a data directory).
    pub fn is_durable(self) -> bool {
        self != StorageMode::Memory
    }

    /// The name a config gives it.
    pub fn name(self) -> &'static str {
        match self {
            StorageMode::Wal => "wal",
            StorageMode::Redb => "redb",
            StorageMode::Memory => "memory",
        }
    }
}

/// The engines that keep files, each with the names that mark a data directory as its own.
const ENGINES: [(StorageMode, &[&str]); 2] = [
    (StorageMode::Wal, wal::MARKS),
    (StorageMode::Redb, redb::MARKS),
];

/// Which engine's store `data_dir` holds, and the file that says so; `None` for a directory
/// without one.
pub fn engine_of(data_dir: &Path) -> Option<(StorageMode, PathBuf)> {
    ENGINES.iter().find_map(|(engine, marks)| {
        marks
            .iter()
            .map(|mark| data_dir.join(mark))
            .find(|path| path.exists())
            .map(|path| (*engine, path))
    })
}

/// Refuses to open `engine` on a data directory that holds another engine's store: it would
/// start empty and forget every promise the other one kept. (Before the `wal` engine,
/// `durable` meant redb.)
pub(crate) fn refuse_foreign(data_dir: &Path, engine: StorageMode) -> Result<(), Error> {
    match engine_of(data_dir) {
        Some((other, found)) if other != engine => Err(Error::Storage {
            path: found,
            message: format!(
                "this data directory holds the {other} engine's store: start the node with \
                 `storage: {other}`, or give it an empty data directory (starting the {engine} \
                 engine here would forget every promise the store keeps)",
                other = other.name(),
                engine = engine.name(),
            ),
        }),
        _ => Ok(()),
    }
}

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
    /// fsync. Only [`FaultyDisk`] calls it.
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

/// The records a `for_each_record`-style visitor hands out, collected: for tests and small
/// stores; audits visit instead.
pub(crate) fn collect_records(
    visit_all: impl FnOnce(&mut dyn FnMut(Record) -> Result<(), Error>) -> Result<(), Error>,
) -> Result<Vec<Record>, Error> {
    let mut records = Vec::new();
    visit_all(&mut |record| {
        records.push(record);
        Ok(())
    })?;
    Ok(records)
}

#[cfg(test)]
pub(crate) mod tests {
    use bytes::Bytes;
    use paxbench_core::ProposalId;

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
