//! Acceptor storage engines behind one trait. `wal` (the default, in [`crate::wal`]) appends
//! each group commit to a log and checkpoints off the reply path. `redb` appends every changed
//! record to a redb table keyed by a sequence number and commits each batch in one fsynced
//! transaction; loading replays the whole log. `memory` keeps nothing and is unsafe across
//! crashes. [`FaultyDisk`] wraps any of them with disk faults injected on command.
//!
//! Why redb is a log and not a `(key, slot) → state` table: benchmark keys are random, so a
//! batch of 140 records dirtied about 140 B-tree leaf pages and a commit took 3.5 ms; appended
//! under increasing keys, the same batch fills a few pages at the right edge of the tree.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use paxbench_core::Instance;
use paxbench_core::acceptor::{AcceptorState, Record};
use paxbench_quic::DiskFault;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use rustc_hash::FxHashMap;

use crate::error::Error;
use crate::ranged::{RangedFile, RangedState};
use crate::wal::StoreReader;

/// Sequence number → a format byte, then the postcard-encoded instance and [`AcceptorState`].
const ACCEPTOR_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("acceptor-log");

/// The record format this build writes and reads.
const RECORD_FORMAT: u8 = 1;

/// The file name of the durable store inside the data directory.
pub const STORE_FILE: &str = "acceptor.redb";

/// What an acceptor restarts from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The records the acceptor must hold in memory at start; later ones replace earlier ones
    /// of the same instance. An engine with a [`StoreReader`] returns only the records its
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
    /// position of the last one, to compare with [`StoreReader::checkpointed`].
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
    fn reader(&self) -> Option<StoreReader> {
        None
    }
}

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

/// redb with immediate durability: a commit returns after fsync.
#[derive(Debug)]
pub struct RedbStorage {
    db: Database,
    path: PathBuf,
    ranged: RangedFile,
    encoded: Vec<u8>,
    next_sequence: u64,
}

impl RedbStorage {
    /// Opens (or creates) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, Error> {
        refuse_other_engine(data_dir, crate::wal::WAL_DIR, "wal")?;
        std::fs::create_dir_all(data_dir).map_err(|source| Error::Io {
            context: format!("creating {}", data_dir.display()),
            source,
        })?;
        let path = data_dir.join(STORE_FILE);
        if !path.exists() {
            create_redb_atomically(data_dir, STORE_FILE, |db| {
                // The table exists from the start, so reading an empty store is not an error.
                let txn = db.begin_write().map_err(|e| e.to_string())?;
                txn.open_table(ACCEPTOR_LOG).map_err(|e| e.to_string())?;
                txn.commit().map_err(|e| e.to_string())
            })?;
        }
        let db = Database::create(&path).map_err(|e| Error::Storage {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let mut storage = Self {
            db,
            path,
            ranged: RangedFile::new(data_dir),
            encoded: Vec::new(),
            next_sequence: 0,
        };
        storage.next_sequence = storage.last_sequence()?.map_or(0, |last| last + 1);
        Ok(storage)
    }

    /// Opens the store in `data_dir` for reading, refusing to create one: an audit of a missing
    /// store must fail, not find it empty.
    pub fn open_existing(data_dir: &Path) -> Result<Self, Error> {
        let path = data_dir.join(STORE_FILE);
        if !path.exists() {
            return Err(Error::Storage {
                path,
                message: "no store here".into(),
            });
        }
        Self::open(data_dir)
    }

    /// Every record ever committed, in commit order: the acceptor's whole history, for audits.
    pub fn history(&self) -> Result<Vec<Record>, Error> {
        collect_records(|visit| self.for_each_record(visit))
    }

    /// Hands every record ever committed to `visit`, in commit order, without holding them.
    pub fn for_each_record(
        &self,
        visit: &mut dyn FnMut(Record) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = txn.open_table(ACCEPTOR_LOG).map_err(|e| self.error(e))?;
        for entry in table.iter().map_err(|e| self.error(e))? {
            let (sequence, value) = entry.map_err(|e| self.error(e))?;
            visit(
                decode_record(value.value())
                    .map_err(|e| self.error(format!("log entry {}: {e}", sequence.value())))?,
            )?;
        }
        Ok(())
    }

    fn write(&mut self, records: &[Record], durability: Durability) -> Result<(), Error> {
        let mut txn = self.db.begin_write().map_err(|e| self.error(e))?;
        txn.set_durability(durability).map_err(|e| self.error(e))?;
        {
            let mut table = txn.open_table(ACCEPTOR_LOG).map_err(|e| self.error(e))?;
            for (sequence, record) in (self.next_sequence..).zip(records) {
                encode_record(record, &mut self.encoded).map_err(|e| self.error(e))?;
                table
                    .insert(sequence, self.encoded.as_slice())
                    .map_err(|e| self.error(e))?;
            }
        }
        txn.commit().map_err(|e| self.error(e))?;
        // Only a committed batch moves the sequence on; a failed one is rewritten in full.
        self.next_sequence += records.len() as u64;
        Ok(())
    }

    fn last_sequence(&self) -> Result<Option<u64>, Error> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = txn.open_table(ACCEPTOR_LOG).map_err(|e| self.error(e))?;
        let last = table.last().map_err(|e| self.error(e))?;
        Ok(last.map(|(key, _)| key.value()))
    }

    fn error(&self, e: impl std::fmt::Display) -> Error {
        Error::Storage {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }
}

/// Refuses to open an engine on a data directory that holds `marker`, another engine's store:
/// it would start empty and forget every promise the other one kept. (Before the `wal`
/// engine, `durable` meant redb.)
pub(crate) fn refuse_other_engine(
    data_dir: &Path,
    marker: &str,
    engine: &str,
) -> Result<(), Error> {
    let found = data_dir.join(marker);
    if found.exists() {
        return Err(Error::Storage {
            path: found,
            message: format!(
                "this data directory holds the {engine} engine's store: start the node with \
                 `storage: {engine}`, or give it an empty data directory (starting another \
                 engine here would forget every promise the store keeps)"
            ),
        });
    }
    Ok(())
}

/// Everything the store of a stopped node in `data_dir` holds, whichever engine wrote it, for
/// audits: later records of an instance come after earlier ones. Nothing on disk changes, and
/// a directory without a store is an error, not an empty store.
pub fn history(data_dir: &Path) -> Result<Vec<Record>, Error> {
    collect_records(|visit| for_each_record(data_dir, visit))
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

/// [`history`] without holding it: hands each record to `visit` in the same order, so that an
/// audit of a long run's stores needs memory for one record at a time (and, for `wal`, the log
/// after the last checkpoint).
pub fn for_each_record(
    data_dir: &Path,
    visit: &mut dyn FnMut(Record) -> Result<(), Error>,
) -> Result<(), Error> {
    if data_dir.join(crate::wal::CHECKPOINT_DIR).exists() {
        crate::wal::WalStorage::for_each_record(data_dir, visit)
    } else {
        RedbStorage::open_existing(data_dir)?.for_each_record(visit)
    }
}

/// Creates the redb file `name` in `data_dir` under a temporary name, runs `init` on it, and
/// renames it into place once complete, so a node killed while creating it leaves either no
/// store or a valid one, never a half-written file that would refuse to open. A leftover
/// temporary file held no records.
pub(crate) fn create_redb_atomically(
    data_dir: &Path,
    name: &str,
    init: impl FnOnce(&Database) -> Result<(), String>,
) -> Result<(), Error> {
    let io = |context: String| move |source| Error::Io { context, source };
    std::fs::create_dir_all(data_dir).map_err(io(format!("creating {}", data_dir.display())))?;
    let creating = data_dir.join(format!("{name}.creating"));
    if creating.exists() {
        std::fs::remove_file(&creating).map_err(io(format!("removing {}", creating.display())))?;
    }
    {
        let db = Database::create(&creating).map_err(|e| Error::Storage {
            path: creating.clone(),
            message: e.to_string(),
        })?;
        init(&db).map_err(|message| Error::Storage {
            path: creating.clone(),
            message,
        })?;
    }
    std::fs::rename(&creating, data_dir.join(name))
        .map_err(io(format!("renaming {}", creating.display())))?;
    crate::wal::log::sync_dir(data_dir)
}

/// Encodes a record as stored.
pub fn encode_record(record: &Record, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
    out.clear();
    out.push(RECORD_FORMAT);
    let encoded = postcard::to_extend(&(record.instance, &record.state), std::mem::take(out))?;
    *out = encoded;
    Ok(())
}

/// Decodes a stored record.
pub fn decode_record(bytes: &[u8]) -> Result<Record, String> {
    match bytes.split_first() {
        Some((&RECORD_FORMAT, rest)) => {
            let (instance, state): (Instance, AcceptorState) =
                postcard::from_bytes(rest).map_err(|e| e.to_string())?;
            Ok(Record { instance, state })
        }
        Some((format, _)) => Err(format!("unknown record format {format}")),
        None => Err("empty record".into()),
    }
}

impl AcceptorStore for RedbStorage {
    fn recover(&mut self) -> Result<Recovered, Error> {
        let mut latest: FxHashMap<Instance, AcceptorState> = FxHashMap::default();
        for record in self.history()? {
            latest.insert(record.instance, record.state);
        }
        let records = latest
            .into_iter()
            .map(|(instance, state)| Record { instance, state })
            .collect();
        Ok(Recovered {
            records,
            position: 0,
            ranged: self.ranged.load()?,
        })
    }

    fn persist_ranged(&mut self, state: &RangedState) -> Result<(), Error> {
        self.ranged.store(state)
    }

    fn commit(&mut self, records: &[Record]) -> Result<u64, Error> {
        self.write(records, Durability::Immediate)?;
        Ok(self.next_sequence)
    }

    fn write_unsynced(&mut self, records: &[Record]) -> Result<(), Error> {
        // redb keeps a non-durable commit out of the file's committed state until a durable
        // commit follows, so after a crash it is gone, as unsynced pages would be.
        self.write(records, Durability::None)
    }
}

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

    fn reader(&self) -> Option<StoreReader> {
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
    use bytes::Bytes;
    use paxbench_core::ProposalId;

    use super::*;

    fn record(key: u64, promised: u64, accepted: Option<u64>) -> Record {
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
    fn committed_records_survive_reopening_and_later_ones_win() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = RedbStorage::open(dir.path()).unwrap();
            assert!(store.recover().unwrap().records.is_empty());
            store
                .commit(&[record(1, 5, None), record(2, 3, Some(3))])
                .unwrap();
            store.commit(&[record(1, 7, Some(7))]).unwrap();
        }
        let mut store = RedbStorage::open(dir.path()).unwrap();
        let mut loaded = store.recover().unwrap().records;
        loaded.sort_by_key(|r| r.instance);
        assert_eq!(loaded, vec![record(1, 7, Some(7)), record(2, 3, Some(3))]);
    }

    #[test]
    fn a_store_killed_while_being_created_is_created_again() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(format!("{STORE_FILE}.creating")),
            b"half a header",
        )
        .unwrap();
        let mut store = RedbStorage::open(dir.path()).unwrap();
        store.commit(&[record(1, 1, None)]).unwrap();
        assert!(!dir.path().join(format!("{STORE_FILE}.creating")).exists());
        drop(store);
        assert_eq!(
            RedbStorage::open(dir.path())
                .unwrap()
                .recover()
                .unwrap()
                .records
                .len(),
            1
        );
    }

    #[test]
    fn a_damaged_store_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STORE_FILE), b"not a database").unwrap();
        let err = RedbStorage::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains(STORE_FILE), "{err}");
    }

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

    #[test]
    fn the_history_keeps_every_record_in_commit_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = RedbStorage::open(dir.path()).unwrap();
        store.commit(&[record(1, 1, None)]).unwrap();
        store.commit(&[record(1, 2, Some(2))]).unwrap();
        assert_eq!(
            store.history().unwrap(),
            vec![record(1, 1, None), record(1, 2, Some(2))]
        );
    }

    #[test]
    fn bad_records_are_reported_not_trusted() {
        assert!(decode_record(&[]).is_err());
        assert!(decode_record(&[9, 1, 2]).is_err());
        let mut bytes = Vec::new();
        encode_record(&record(1, 2, Some(2)), &mut bytes).unwrap();
        assert_eq!(decode_record(&bytes).unwrap(), record(1, 2, Some(2)));
        assert!(decode_record(&bytes[..bytes.len() - 1]).is_err());
    }
}
