//! The `redb` engine: appends every changed record to a redb table keyed by a sequence number
//! and commits each batch in one fsynced transaction; recovery replays the whole table. Kept to
//! show what the storage engine costs beside `wal`.
//!
//! Why a log and not a `(key, slot) → state` table: benchmark keys are random, so a batch of
//! 140 records dirtied about 140 B-tree leaf pages and a commit took 3.5 ms; appended under
//! increasing keys, the same batch fills a few pages at the right edge of the tree.

use std::path::{Path, PathBuf};

use paxbench_core::Instance;
use paxbench_core::acceptor::{AcceptorState, Record};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use rustc_hash::FxHashMap;

use super::codec::{decode_record, encode_record};
use super::engine::{REDB_FILE, StorageMode, refuse_foreign};
use super::fs::create_file;
use super::ranged::{RangedFile, RangedState};
use super::store::{AcceptorStore, Recovered, collect_records};
use crate::error::Error;

/// Sequence number → an encoded record ([`super::codec`]).
const ACCEPTOR_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("acceptor-log");

/// The file name of the store inside the data directory.
pub const STORE_FILE: &str = REDB_FILE;

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
        refuse_foreign(data_dir, StorageMode::Redb)?;
        crate::storage::fs::create_dir(data_dir)?;
        let path = data_dir.join(STORE_FILE);
        if !path.exists() {
            create_file(data_dir, STORE_FILE, |creating| {
                let failed = |e: &dyn std::fmt::Display| Error::Storage {
                    path: creating.to_path_buf(),
                    message: e.to_string(),
                };
                let db = Database::create(creating).map_err(|e| failed(&e))?;
                // The table exists from the start, so reading an empty store is not an error.
                let txn = db.begin_write().map_err(|e| failed(&e))?;
                txn.open_table(ACCEPTOR_LOG).map_err(|e| failed(&e))?;
                txn.commit().map_err(|e| failed(&e))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::tests::record;

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
}
