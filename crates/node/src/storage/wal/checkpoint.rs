//! Checkpoints: the latest state of every changed instance moves from the log into the keyed
//! store ([`crate::storage::wal::keyed`]) on a background thread, as one durable run, and the log
//! segments it covers are then deleted. Between checkpoints the thread merges runs, one short
//! step at a time. [`StoreReader`] serves the states of instances the node no longer holds.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use paxbench_core::Instance;
use paxbench_core::acceptor::{AcceptorState, Record};
use rustc_hash::FxHashMap;

use crate::error::Error;
use crate::storage::store::StateReader;
use crate::storage::wal::keyed::{KeyedStore, MERGE_STEP, Merge, Snapshot};
use crate::storage::wal::segment::list_segments;

/// Where a test may make a checkpoint stop as a `kill -9` would.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointCrash {
    /// The states written, the transaction not committed.
    BeforeCommit,
    /// Committed; the covered segments not yet deleted.
    BeforeDeletingSegments,
}

/// The checkpoint thread's nice value (0 is normal, 19 the lowest priority).
const CHECKPOINT_NICE: i32 = 10;

/// Records made durable in the log, up to a position, for the checkpointer.
pub(crate) struct Batch {
    pub(crate) through: u64,
    pub(crate) records: Vec<Record>,
}

/// When to checkpoint.
#[derive(Clone, Copy, Debug)]
pub struct CheckpointPolicy {
    /// Checkpoint once this many distinct instances changed...
    pub max_pending: usize,
    /// ...or this long after the first change, whichever comes first.
    pub interval: Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        Self {
            max_pending: 131_072,
            interval: Duration::from_secs(1),
        }
    }
}

/// What the node and the checkpoint thread share: the keyed store and how far it reaches.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: KeyedStore,
    pub(crate) through: AtomicU64,
    pub(crate) checkpoints: AtomicU64,
    pub(crate) failure: Mutex<Option<String>>,
    /// Set by a test that stops the engine as `kill -9` would: no last checkpoint.
    pub(crate) abandon: AtomicBool,
}

/// The checkpoint thread's loop: gathers batches, and checkpoints by the policy and once more
/// when the log closes (the sender is dropped), so a clean restart reads almost no log.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    wal_dir: PathBuf,
    batches: Receiver<Batch>,
    policy: CheckpointPolicy,
    #[cfg(test)] crash: Option<CheckpointCrash>,
) -> Result<JoinHandle<()>, Error> {
    std::thread::Builder::new()
        .name("checkpoint".into())
        .spawn(move || {
            // Checkpoints and merges are background work: on a machine the node shares, they
            // yield the CPU to the threads that reply. On Linux a thread has its own nice
            // value, and this sets the calling thread's. Failing to lower it changes nothing.
            let _ = rustix::process::setpriority_process(None, CHECKPOINT_NICE);
            let mut worker = Worker {
                shared,
                wal_dir,
                policy,
                pending: FxHashMap::default(),
                sorted: Vec::new(),
                encoded: Vec::new(),
                through: 0,
                since: None,
                merge: None,
                #[cfg(test)]
                crash,
            };
            if let Err(e) = worker.run(&batches) {
                tracing::error!("CHECKPOINT FAILED: {e}");
                if let Ok(mut failure) = worker.shared.failure.lock() {
                    *failure = Some(e.to_string());
                }
                // Dropping the receiver makes the next commit fail loudly.
            }
        })
        .map_err(|source| Error::Io {
            context: "starting the checkpoint thread".into(),
            source,
        })
}

/// The checkpoint thread's state.
struct Worker {
    shared: Arc<Shared>,
    wal_dir: PathBuf,
    policy: CheckpointPolicy,
    pending: FxHashMap<Instance, AcceptorState>,
    sorted: Vec<(Instance, AcceptorState)>,
    encoded: Vec<u8>,
    through: u64,
    since: Option<Instant>,
    merge: Option<Merge>,
    #[cfg(test)]
    crash: Option<CheckpointCrash>,
}

impl Worker {
    fn run(&mut self, batches: &Receiver<Batch>) -> Result<(), Error> {
        loop {
            let wait = if self.merge.is_some() {
                Duration::ZERO
            } else {
                self.since.map_or(Duration::from_secs(3600), |s| {
                    self.policy.interval.saturating_sub(s.elapsed())
                })
            };
            let mut closed = false;
            match batches.recv_timeout(wait) {
                Ok(batch) => {
                    self.absorb(batch);
                    // Take everything waiting, so a merge step never leaves the log's owner
                    // blocked on a full channel.
                    loop {
                        match batches.try_recv() {
                            Ok(batch) => self.absorb(batch),
                            Err(TryRecvError::Empty) => break,
                            Err(TryRecvError::Disconnected) => {
                                closed = true;
                                break;
                            }
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => closed = true,
            }
            if closed && self.shared.abandon.load(Ordering::SeqCst) {
                return Ok(());
            }
            let due = closed
                || self.pending.len() >= self.policy.max_pending
                || self
                    .since
                    .is_some_and(|s| s.elapsed() >= self.policy.interval);
            if due && !self.pending.is_empty() {
                self.checkpoint()?;
            } else if let Some(merge) = self.merge.as_mut()
                && self.shared.store.merge_step(merge, MERGE_STEP)?
            {
                self.merge = self.shared.store.due_merge()?;
            }
            if closed {
                return Ok(());
            }
        }
    }

    fn absorb(&mut self, batch: Batch) {
        for record in batch.records {
            self.pending.insert(record.instance, record.state);
        }
        self.through = batch.through;
        self.since.get_or_insert_with(Instant::now);
    }

    /// Writes the pending states as a durable run, then deletes the log it covers.
    fn checkpoint(&mut self) -> Result<(), Error> {
        // In key order, a run fills its pages one after another.
        self.sorted.extend(self.pending.drain());
        self.sorted.sort_unstable_by_key(|(instance, _)| *instance);
        #[cfg(test)]
        if self.crash == Some(CheckpointCrash::BeforeCommit) {
            return Err(self
                .shared
                .store
                .error("crash point: before the checkpoint committed"));
        }
        self.shared
            .store
            .write_run(&self.sorted, self.through, &mut self.encoded)?;
        self.sorted.clear();
        self.since = None;
        self.shared.through.store(self.through, Ordering::Release);
        self.shared.checkpoints.fetch_add(1, Ordering::Relaxed);
        if self.merge.is_none() {
            self.merge = self.shared.store.due_merge()?;
        }
        #[cfg(test)]
        if self.crash == Some(CheckpointCrash::BeforeDeletingSegments) {
            return Err(self
                .shared
                .store
                .error("crash point: before deleting segments"));
        }
        delete_covered(&self.wal_dir, self.through)
    }
}

/// Deletes the segments whose records the checkpoint includes. The newest segment is never
/// deleted. A deletion lost to a crash is done again at the next open.
fn delete_covered(wal_dir: &Path, through: u64) -> Result<(), Error> {
    let segments = list_segments(wal_dir, false)?;
    for pair in segments.windows(2) {
        if pair[1].first <= through + 1 {
            std::fs::remove_file(&pair[0].path).map_err(|source| Error::Io {
                context: format!("removing {}", pair[0].path.display()),
                source,
            })?;
        }
    }
    Ok(())
}

/// A handle on the checkpoint, for a node that holds only some instances in memory. It reads
/// through a snapshot that it renews only when a newer checkpoint exists, so a lookup is a few
/// B-tree searches, not a transaction.
pub struct StoreReader {
    shared: Arc<Shared>,
    /// The snapshot, and the checkpoint position that was published before it was taken.
    snapshot: Option<(u64, Snapshot)>,
}

impl StoreReader {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            snapshot: None,
        }
    }

    fn snapshot(&mut self) -> Result<&Snapshot, Error> {
        let through = self.checkpointed();
        let stale = self
            .snapshot
            .as_ref()
            .is_none_or(|(seen, _)| *seen < through);
        if stale {
            // `through` is published after its transaction commits, so a snapshot taken after
            // reading it includes that checkpoint.
            self.snapshot = None;
            self.snapshot = Some((through, self.shared.store.snapshot()?));
        }
        match &self.snapshot {
            Some((_, snapshot)) => Ok(snapshot),
            None => Err(self.shared.store.error("no snapshot")),
        }
    }
}

impl StateReader for StoreReader {
    fn get(&mut self, instance: Instance) -> Result<Option<AcceptorState>, Error> {
        self.snapshot()?.get(instance)
    }

    fn max_slot(&mut self, key: u64) -> Result<Option<u64>, Error> {
        self.snapshot()?.max_slot(key)
    }

    /// Oldest run first; the work grows with the key space and the states visited, not with
    /// the store.
    fn for_each_state_from(
        &self,
        from: &dyn Fn(u64) -> u64,
        visit: &mut dyn FnMut(Record) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.shared.store.for_each_state_from(from, visit)
    }

    fn checkpointed(&self) -> u64 {
        self.shared.through.load(Ordering::Acquire)
    }

    fn checkpoints(&self) -> u64 {
        self.shared.checkpoints.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for StoreReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreReader")
            .field("checkpointed", &self.checkpointed())
            .finish_non_exhaustive()
    }
}

/// The sending half kept by the log's owner.
pub(crate) type Sender = SyncSender<Batch>;
