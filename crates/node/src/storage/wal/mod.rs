//! The `wal` storage engine: acceptor records go to an append-only log, one write and one
//! `fdatasync` per group commit ([`log`], read back by [`recovery`]); a background thread moves
//! the latest state of each instance into a keyed store of sorted runs ([`keyed`]) and deletes
//! the log it covers ([`checkpoint`]). The layout and its measurements: `docs/storage.md`.
//!
//! Recovery is the checkpoint plus the log after it, so restart reads a bounded amount of log
//! whatever the run's length. The node holds in memory only the instances it recently used; it
//! reads the others from the keyed store through a [`StoreReader`] before feeding a request.

pub mod checkpoint;
pub mod fuzzing;
pub mod keyed;
pub mod log;
pub mod recovery;
pub mod segment;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use paxbench_core::acceptor::Record;

pub use crate::storage::engine::{CHECKPOINT_DIR, WAL_DIR};
pub use checkpoint::{CheckpointPolicy, StoreReader};
pub use keyed::KeyedStore;

use crate::error::Error;
use crate::storage::engine::{StorageMode, refuse_foreign};
use crate::storage::ranged::{RangedFile, RangedState};
use crate::storage::store::{AcceptorStore, Recovered, StateReader, collect_records};
use checkpoint::{Batch, Sender, Shared};
use log::Log;

/// Batches the checkpoint thread may lag behind before commits wait for it: memory stays
/// bounded even when the keyed store is slower than the log, and a checkpoint's fsync (seconds,
/// when a merge left much to write) does not stall replies: at 500 commits per second this is
/// half a minute of lag, and at most a few hundred MiB of records.
const CHECKPOINT_BACKLOG: usize = 16_384;

/// How a [`WalStorage`] lays out and checkpoints its log.
#[derive(Clone, Copy, Debug)]
pub struct WalOptions {
    /// Bytes per segment file.
    pub segment_bytes: u64,
    /// When to checkpoint.
    pub checkpoint: CheckpointPolicy,
    #[cfg(test)]
    pub(crate) log_crash: Option<log::LogCrash>,
    #[cfg(test)]
    pub(crate) checkpoint_crash: Option<checkpoint::CheckpointCrash>,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            segment_bytes: log::SEGMENT_BYTES,
            checkpoint: CheckpointPolicy::default(),
            #[cfg(test)]
            log_crash: None,
            #[cfg(test)]
            checkpoint_crash: None,
        }
    }
}

/// The write-ahead log with checkpoints. See the [module documentation](self).
#[derive(Debug)]
pub struct WalStorage {
    log: Log,
    recovered: Option<Recovered>,
    ranged: RangedFile,
    shared: Arc<Shared>,
    sender: Option<Sender>,
    thread: Option<JoinHandle<()>>,
}

impl WalStorage {
    /// Opens (or creates) the engine in `data_dir`: recovers the log after the checkpoint,
    /// cutting a torn last batch, and starts the checkpoint thread.
    pub fn open(data_dir: &Path, options: WalOptions) -> Result<Self, Error> {
        refuse_foreign(data_dir, StorageMode::Wal)?;
        crate::storage::fs::create_dir(data_dir)?;
        let store = KeyedStore::open(data_dir, true)?;
        let after = store.through()?;
        let wal_dir = data_dir.join(WAL_DIR);
        let (mut log, recovery) = Log::open(&wal_dir, options.segment_bytes, after)?;
        #[cfg(test)]
        {
            log.crash = options.log_crash;
        }
        #[cfg(not(test))]
        let _ = &mut log;
        tracing::info!(
            checkpoint = after,
            log_records = recovery.records.len(),
            last = recovery.last_position,
            torn_bytes_cut = recovery.truncated_bytes,
            covered_segments_removed = recovery.removed_segments,
            "recovered the write-ahead log"
        );
        let shared = Arc::new(Shared {
            store,
            through: AtomicU64::new(after),
            checkpoints: AtomicU64::new(0),
            failure: Mutex::new(None),
            abandon: AtomicBool::new(false),
        });
        let (sender, batches) = std::sync::mpsc::sync_channel(CHECKPOINT_BACKLOG);
        let thread = checkpoint::spawn(
            shared.clone(),
            wal_dir,
            batches,
            options.checkpoint,
            #[cfg(test)]
            options.checkpoint_crash,
        )?;
        let ranged = RangedFile::new(data_dir);
        let ranged_state = ranged.load()?;
        let mut storage = Self {
            log,
            recovered: None,
            ranged,
            shared,
            sender: Some(sender),
            thread: Some(thread),
        };
        if !recovery.records.is_empty() {
            // The log after the checkpoint is the checkpoint thread's first batch.
            storage.checkpoint(recovery.last_position, recovery.records.clone())?;
        }
        storage.recovered = Some(Recovered {
            records: recovery.records,
            position: recovery.last_position,
            ranged: ranged_state,
        });
        Ok(storage)
    }

    /// Everything a stopped node's engine in `data_dir` holds, for audits: each checkpointed
    /// state, then the log records after the checkpoint in log order. Changes nothing on disk;
    /// a missing engine is an error, not an empty store.
    pub fn history(data_dir: &Path) -> Result<Vec<Record>, Error> {
        collect_records(|visit| Self::for_each_record(data_dir, visit))
    }

    /// [`WalStorage::history`] one record at a time: the checkpointed states run by run, then
    /// the log after them.
    pub fn for_each_record(
        data_dir: &Path,
        visit: &mut dyn FnMut(Record) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let path = data_dir.join(CHECKPOINT_DIR);
        if !path.exists() {
            return Err(Error::Storage {
                path,
                message: "no store here".into(),
            });
        }
        let store = KeyedStore::open(data_dir, false)?;
        store.for_each_state(visit)?;
        let (recovery, _) = recovery::read(&data_dir.join(WAL_DIR), store.through()?, false)?;
        for record in recovery.records {
            visit(record)?;
        }
        Ok(())
    }

    fn checkpoint(&mut self, through: u64, records: Vec<Record>) -> Result<(), Error> {
        let sent = self
            .sender
            .as_ref()
            .is_some_and(|sender| sender.send(Batch { through, records }).is_ok());
        if sent {
            return Ok(());
        }
        let why = self
            .shared
            .failure
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_else(|| "the checkpoint thread stopped".into());
        Err(Error::Storage {
            path: self.shared.store.dir().to_path_buf(),
            message: format!("checkpoint failed: {why}"),
        })
    }

    /// Stops as a `kill -9` would: no last checkpoint, nothing flushed.
    #[cfg(test)]
    pub(crate) fn kill(mut self) {
        self.shared
            .abandon
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl AcceptorStore for WalStorage {
    fn recover(&mut self) -> Result<Recovered, Error> {
        Ok(self.recovered.take().unwrap_or_default())
    }

    fn commit(&mut self, records: &[Record]) -> Result<u64, Error> {
        if records.is_empty() {
            return Ok(self.log.next_position() - 1);
        }
        let through = self.log.append(records)?;
        self.checkpoint(through, records.to_vec())?;
        Ok(through)
    }

    fn write_unsynced(&mut self, records: &[Record]) -> Result<(), Error> {
        self.log.write(records)
    }

    fn persist_ranged(&mut self, state: &RangedState) -> Result<(), Error> {
        self.ranged.store(state)
    }

    fn reader(&self) -> Option<Box<dyn StateReader>> {
        Some(Box::new(StoreReader::new(self.shared.clone())))
    }
}

impl Drop for WalStorage {
    /// Closing the channel makes the thread checkpoint what it holds, then stop.
    fn drop(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use paxbench_core::acceptor::AcceptorState;
    use paxbench_core::{Instance, ProposalId};
    use rustc_hash::FxHashMap;

    use super::checkpoint::CheckpointCrash;
    use super::log::LogCrash;
    use super::*;

    fn options() -> WalOptions {
        WalOptions {
            segment_bytes: 4096,
            checkpoint: CheckpointPolicy {
                max_pending: 50,
                interval: Duration::from_millis(20),
            },
            ..WalOptions::default()
        }
    }

    /// Round `round` writes a higher promise for keys `round..round + 8`, so instances are
    /// rewritten across checkpoints.
    fn round(round: u64) -> Vec<Record> {
        (round..round + 8)
            .map(|key| Record {
                instance: Instance::new(key, 0),
                state: AcceptorState {
                    promised: ProposalId::new(round + 1, 1),
                    accepted: Some((ProposalId::new(round + 1, 1), Bytes::from("value"))),
                },
            })
            .collect()
    }

    fn latest(records: impl IntoIterator<Item = Record>) -> FxHashMap<Instance, AcceptorState> {
        records.into_iter().map(|r| (r.instance, r.state)).collect()
    }

    fn wait_for_checkpoint(reader: &dyn StateReader, position: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while reader.checkpointed() < position {
            assert!(
                Instant::now() < deadline,
                "no checkpoint reached {position}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Every acknowledged state is there after the restart, and no promise went down.
    fn assert_nothing_lost(dir: &Path, acknowledged: &FxHashMap<Instance, AcceptorState>) {
        let mut storage = WalStorage::open(dir, options()).unwrap();
        let mut reader = storage.reader().unwrap();
        let tail = latest(storage.recover().unwrap().records);
        for (instance, acked) in acknowledged {
            let held = match tail.get(instance) {
                Some(state) => state.clone(),
                None => reader.get(*instance).unwrap().expect("acknowledged state"),
            };
            assert!(
                held.promised >= acked.promised,
                "{instance}: {held:?} < {acked:?}"
            );
            assert!(held.accepted >= acked.accepted, "{instance}");
        }
        drop((storage, reader));
        let history = latest(WalStorage::history(dir).unwrap());
        assert!(history.len() >= acknowledged.len());
    }

    #[test]
    fn checkpoints_move_states_to_the_keyed_store_and_delete_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = WalStorage::open(dir.path(), options()).unwrap();
        let mut reader = storage.reader().unwrap();
        let mut acknowledged = FxHashMap::default();
        let mut position = 0;
        for r in 0..400 {
            position = storage.commit(&round(r)).unwrap();
            acknowledged.extend(latest(round(r)));
        }
        wait_for_checkpoint(reader.as_ref(), position);
        std::thread::sleep(Duration::from_millis(50));
        let segments = segment::list_segments(&dir.path().join(WAL_DIR), false).unwrap();
        assert!(segments.len() <= 2, "{} segments left", segments.len());
        assert!(reader.checkpoints() >= 2);
        assert_eq!(
            reader.get(Instance::new(3, 0)).unwrap(),
            acknowledged.get(&Instance::new(3, 0)).cloned()
        );
        drop((storage, reader));
        // A clean stop checkpointed everything: the restart reads no log.
        let mut again = WalStorage::open(dir.path(), options()).unwrap();
        assert!(again.recover().unwrap().records.is_empty());
        drop(again);
        assert_eq!(
            latest(WalStorage::history(dir.path()).unwrap()),
            acknowledged
        );
        assert_nothing_lost(dir.path(), &acknowledged);
    }

    #[test]
    fn a_kill_at_every_fault_point_loses_nothing_acknowledged() {
        let points: Vec<(Option<LogCrash>, Option<CheckpointCrash>)> = vec![
            (Some(LogCrash::MidAppend), None),
            (Some(LogCrash::BeforeSync), None),
            (Some(LogCrash::MidRotation), None),
            (None, Some(CheckpointCrash::BeforeCommit)),
            (None, Some(CheckpointCrash::BeforeDeletingSegments)),
        ];
        for (log_crash, checkpoint_crash) in points {
            let dir = tempfile::tempdir().unwrap();
            let mut acknowledged = FxHashMap::default();
            // A clean first life, so the crash happens over an existing checkpoint.
            let mut storage = WalStorage::open(dir.path(), options()).unwrap();
            for r in 0..100 {
                storage.commit(&round(r)).unwrap();
                acknowledged.extend(latest(round(r)));
            }
            drop(storage);
            let mut storage = WalStorage::open(
                dir.path(),
                WalOptions {
                    checkpoint_crash,
                    ..options()
                },
            )
            .unwrap();
            for r in 100..400 {
                if r == 300 {
                    storage.log.crash = log_crash;
                }
                match storage.commit(&round(r)) {
                    Ok(_) => acknowledged.extend(latest(round(r))),
                    Err(_) => break,
                }
            }
            if checkpoint_crash.is_some() {
                // The checkpoint thread must have stopped at its crash point before the kill,
                // or this case would test nothing.
                let deadline = Instant::now() + Duration::from_secs(10);
                let reached = loop {
                    let failure = storage.shared.failure.lock().unwrap().clone();
                    if let Some(failure) = failure {
                        break failure;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "{checkpoint_crash:?} never reached"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                };
                assert!(reached.contains("crash point"), "{reached}");
            }
            storage.kill();
            assert_nothing_lost(dir.path(), &acknowledged);
        }
    }

    #[test]
    fn a_data_directory_of_the_other_engine_is_refused_not_started_empty() {
        let dir = tempfile::tempdir().unwrap();
        drop(crate::storage::RedbStorage::open(dir.path()).unwrap());
        let err = WalStorage::open(dir.path(), options())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(crate::storage::redb::STORE_FILE) && err.contains("storage: redb"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        drop(WalStorage::open(dir.path(), options()).unwrap());
        let err = crate::storage::RedbStorage::open(dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(WAL_DIR) && err.contains("storage: wal"),
            "{err}"
        );
    }

    #[test]
    fn a_failed_checkpoint_fails_the_next_commit_loudly() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = WalStorage::open(
            dir.path(),
            WalOptions {
                checkpoint_crash: Some(CheckpointCrash::BeforeCommit),
                ..options()
            },
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let err = loop {
            assert!(Instant::now() < deadline);
            if let Err(e) = storage.commit(&round(1)) {
                break e.to_string();
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(
            err.contains("checkpoint failed") && err.contains("crash point"),
            "{err}"
        );
        assert!(WalStorage::history(&dir.path().join("missing")).is_err());
    }
}
