//! The keyed store of checkpointed states: sorted runs, one immutable redb file each, merged in
//! tiers (a small log-structured merge tree). A lookup probes the runs newest first.
//!
//! Why runs and not one table: instances arrive in random key order, so inserting a checkpoint
//! into one growing B-tree copied about one 4 KiB leaf per state. With 256 proposers that
//! write-back took the disk from the log's syncs and a third of each node's CPU (27.7k
//! decisions/s against 46k with runs). Why a file per run: a redb file open for writing when
//! the node is killed must be repaired at the next open, in time that grows with the file; a
//! run is written under a temporary name, closed, renamed, and from then on only opened
//! read-only, so a restart opens closed files whatever the run's length.
//!
//! `MANIFEST` lists the runs and the log position they include; it is replaced atomically
//! (written, synced, renamed, directory synced), so a crash leaves the old list or the new one.
//! Files it does not list are leftovers of an interrupted checkpoint or merge, removed at open.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use paxbench_core::Instance;
use paxbench_core::acceptor::{AcceptorState, Record};
use redb::{
    Database, Durability, ReadOnlyDatabase, ReadOnlyTable, ReadableDatabase, ReadableTable,
    TableDefinition,
};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::storage::codec::{decode_record, encode_record};
use crate::storage::fs::{replace_file, sync_dir};

/// The keyed store's directory inside the data directory.
const MANIFEST: &str = "MANIFEST";
use crate::storage::engine::CHECKPOINT_DIR;
use crate::storage::fs::CREATING;
/// The manifest format this build writes and reads.
const MANIFEST_FORMAT: u8 = 1;
/// Instance `(key, slot)` → its state, encoded as a log record.
const STATES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("states");
/// redb's page cache per run file: reads of forgotten states are rare, and the OS page cache
/// still holds the files. Its default (1 GiB) would let node memory grow with the store.
const RUN_CACHE_BYTES: usize = 1 << 20;
/// The cache of the file a checkpoint or merge is writing.
const WRITE_CACHE_BYTES: usize = 8 << 20;
/// Runs merged at once, when that many consecutive runs are of one level.
pub(crate) const MERGE_WIDTH: usize = 4;
/// States read from each source per merge step: a step is one short transaction, so
/// checkpoints never wait long behind a merge.
pub(crate) const MERGE_STEP: usize = 8_192;

type RunTable = ReadOnlyTable<(u64, u64), &'static [u8]>;

fn run_file(file: u64) -> String {
    format!("run-{file:020}.redb")
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Manifest {
    /// The last log position the runs include.
    through: u64,
    /// The runs, oldest first.
    runs: Vec<RunEntry>,
}

/// A run as the manifest lists it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct RunEntry {
    file: u64,
    states: u64,
    /// 0 for a checkpoint; a merge of [`MERGE_WIDTH`] runs of level `l` has level `l + 1`.
    /// Levels never rise from older to newer runs, so runs of one level are consecutive.
    level: u32,
}

/// One run: its file, open read-only.
pub(crate) struct Run {
    entry: RunEntry,
    db: ReadOnlyDatabase,
}

/// The runs as published: what a reader takes a snapshot of.
#[derive(Default)]
pub(crate) struct RunSet {
    manifest: Manifest,
    /// Oldest first, as in the manifest.
    runs: Vec<Arc<Run>>,
}

/// A merge in progress: its sources (consecutive, oldest first), the file it fills, and how
/// far it got.
pub(crate) struct Merge {
    sources: Vec<Arc<Run>>,
    file: u64,
    /// The file being filled, open for writing until the merge completes.
    target: Option<Database>,
    after: Option<(u64, u64)>,
    written: u64,
}

/// The keyed store. See the [module documentation](self).
pub struct KeyedStore {
    dir: PathBuf,
    set: Mutex<Arc<RunSet>>,
    /// The number the next run file gets: above every listed file. A number an interrupted
    /// checkpoint or merge used may be taken again, since its leftover is removed at open.
    next_file: AtomicU64,
}

impl std::fmt::Debug for KeyedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl KeyedStore {
    /// Opens (or creates) the store in `data_dir`. With `repair`, files the manifest does not
    /// list (an interrupted checkpoint or merge) are removed; without it (an audit of a
    /// stopped node) nothing on disk changes.
    pub fn open(data_dir: &Path, repair: bool) -> Result<Self, Error> {
        let dir = data_dir.join(CHECKPOINT_DIR);
        crate::storage::fs::create_dir(&dir)?;
        let manifest = read_manifest(&dir)?;
        let listed: Vec<String> = manifest.runs.iter().map(|r| run_file(r.file)).collect();
        if repair {
            for entry in std::fs::read_dir(&dir).map_err(|e| io_error(&dir, "listing", e))? {
                let entry = entry.map_err(|e| io_error(&dir, "listing", e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name != MANIFEST && !listed.contains(&name) {
                    std::fs::remove_file(entry.path())
                        .map_err(|e| io_error(&entry.path(), "removing", e))?;
                }
            }
        }
        let mut runs = Vec::with_capacity(manifest.runs.len());
        for entry in &manifest.runs {
            runs.push(Arc::new(open_run(&dir, *entry)?));
        }
        let next_file = manifest.runs.iter().map(|r| r.file).max().unwrap_or(0) + 1;
        Ok(Self {
            dir,
            next_file: AtomicU64::new(next_file),
            set: Mutex::new(Arc::new(RunSet { manifest, runs })),
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn current(&self) -> Result<Arc<RunSet>, Error> {
        self.set
            .lock()
            .map(|set| set.clone())
            .map_err(|_| self.error("the run list's lock was poisoned"))
    }

    fn publish(&self, set: RunSet) -> Result<(), Error> {
        write_manifest(&self.dir, &set.manifest)?;
        let mut current = self
            .set
            .lock()
            .map_err(|_| self.error("the run list's lock was poisoned"))?;
        *current = Arc::new(set);
        Ok(())
    }

    /// The last log position the checkpoint includes (0 before the first).
    pub fn through(&self) -> Result<u64, Error> {
        Ok(self.current()?.manifest.through)
    }

    /// Runs in the store.
    pub fn runs(&self) -> Result<usize, Error> {
        Ok(self.current()?.runs.len())
    }

    /// A read snapshot of every run, newest first.
    pub(crate) fn snapshot(&self) -> Result<Snapshot, Error> {
        let set = self.current()?;
        let mut runs = Vec::with_capacity(set.runs.len());
        for run in set.runs.iter().rev() {
            runs.push(self.open_table(run)?);
        }
        Ok(Snapshot {
            runs,
            dir: self.dir.clone(),
        })
    }

    fn open_table(&self, run: &Run) -> Result<RunTable, Error> {
        let path = self.dir.join(run_file(run.entry.file));
        let txn = run
            .db
            .begin_read()
            .map_err(|e| storage(&path, e.to_string()))?;
        txn.open_table(STATES)
            .map_err(|e| storage(&path, e.to_string()))
    }

    /// Every checkpointed state, oldest run first, so that a later record of an instance comes
    /// after an earlier one.
    pub fn states(&self) -> Result<Vec<Record>, Error> {
        crate::storage::store::collect_records(|visit| self.for_each_state(visit))
    }

    /// [`KeyedStore::states`] one at a time, oldest run first, each in instance order.
    pub fn for_each_state(
        &self,
        visit: &mut dyn FnMut(Record) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let set = self.current()?;
        for run in &set.runs {
            let path = self.dir.join(run_file(run.entry.file));
            let table = self.open_table(run)?;
            for entry in table.iter().map_err(|e| storage(&path, e.to_string()))? {
                let (_, bytes) = entry.map_err(|e| storage(&path, e.to_string()))?;
                visit(decode_record(bytes.value()).map_err(|e| storage(&path, e))?)?;
            }
        }
        Ok(())
    }

    /// The checkpointed states at or above `from(key)` for every key, oldest run first (a later
    /// state of an instance comes after an earlier one). Each run is read by seeking: to each
    /// key's first slot at or above its bound, through the key's last, then to the next key, so
    /// the work is a few seeks per key and run plus the states visited, not the whole store.
    pub fn for_each_state_from(
        &self,
        from: &dyn Fn(u64) -> u64,
        visit: &mut dyn FnMut(Record) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let set = self.current()?;
        for run in &set.runs {
            let path = self.dir.join(run_file(run.entry.file));
            let fail = |e: &dyn std::fmt::Display| storage(&path, e.to_string());
            let table = self.open_table(run)?;
            let mut next_key = Some(0u64);
            while let Some(key_at_least) = next_key {
                let first = table
                    .range((key_at_least, 0)..)
                    .map_err(|e| fail(&e))?
                    .next();
                let Some(first) = first else {
                    break;
                };
                let key = first.map_err(|e| fail(&e))?.0.value().0;
                for entry in table
                    .range((key, from(key))..=(key, u64::MAX))
                    .map_err(|e| fail(&e))?
                {
                    let (_, bytes) = entry.map_err(|e| fail(&e))?;
                    visit(decode_record(bytes.value()).map_err(|e| storage(&path, e))?)?;
                }
                next_key = key.checked_add(1);
            }
        }
        Ok(())
    }

    /// Writes `states` (sorted by instance, one per instance) as a new run file including the
    /// log up to `through`, then publishes it: when this returns, the run is durable.
    pub(crate) fn write_run(
        &self,
        states: &[(Instance, AcceptorState)],
        through: u64,
        encoded: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let current = self.current()?;
        let file = self.next_file.fetch_add(1, Ordering::Relaxed);
        let creating = self.dir.join(format!("{}{CREATING}", run_file(file)));
        let db = create_run(&creating)?;
        write_states(&db, &creating, states, Durability::Immediate, encoded)?;
        drop(db);
        let run = self.finish_run(
            &creating,
            RunEntry {
                file,
                states: states.len() as u64,
                level: 0,
            },
        )?;
        let mut manifest = current.manifest.clone();
        manifest.through = through;
        manifest.runs.push(run.entry);
        let mut runs = current.runs.clone();
        runs.push(Arc::new(run));
        self.publish(RunSet { manifest, runs })
    }

    /// Renames a complete run file into place and opens it read-only.
    fn finish_run(&self, creating: &Path, entry: RunEntry) -> Result<Run, Error> {
        let path = self.dir.join(run_file(entry.file));
        std::fs::rename(creating, &path).map_err(|e| io_error(creating, "renaming", e))?;
        sync_dir(&self.dir)?;
        open_run(&self.dir, entry)
    }

    /// The merge due, if any: the newest [`MERGE_WIDTH`] consecutive runs of one level. The
    /// runs of each level stay fewer than that, so a store of `n` states has about
    /// `3 × log4(n / checkpoint size)` runs.
    pub(crate) fn due_merge(&self) -> Result<Option<Merge>, Error> {
        let set = self.current()?;
        let Some(window) = set
            .runs
            .windows(MERGE_WIDTH)
            .rev()
            .find(|w| w.iter().all(|r| r.entry.level == w[0].entry.level))
        else {
            return Ok(None);
        };
        let file = self.next_file.fetch_add(1, Ordering::Relaxed);
        Ok(Some(Merge {
            sources: window.to_vec(),
            file,
            target: Some(create_run(&self.creating(file))?),
            after: None,
            written: 0,
        }))
    }

    /// Copies up to `budget` states of each source of `merge` into its target, newest source
    /// winning; returns whether the merge is complete (and then has replaced its sources).
    pub(crate) fn merge_step(&self, merge: &mut Merge, budget: usize) -> Result<bool, Error> {
        // The next states of each source after the cursor. A source that returns a full step
        // may hold more, so this step writes only up to the smallest such last key.
        let mut merged: BTreeMap<(u64, u64), Vec<u8>> = BTreeMap::new();
        let mut limit: Option<(u64, u64)> = None;
        let mut batches = Vec::with_capacity(merge.sources.len());
        for source in &merge.sources {
            let path = self.dir.join(run_file(source.entry.file));
            let table = self.open_table(source)?;
            let range = match merge.after {
                Some(after) => {
                    table.range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                }
                None => table.range::<(u64, u64)>(..),
            }
            .map_err(|e| storage(&path, e.to_string()))?;
            let mut batch = Vec::new();
            for entry in range.take(budget) {
                let (key, value) = entry.map_err(|e| storage(&path, e.to_string()))?;
                batch.push((key.value(), value.value().to_vec()));
            }
            if batch.len() == budget
                && let Some((last, _)) = batch.last()
            {
                limit = Some(limit.map_or(*last, |l| l.min(*last)));
            }
            batches.push(batch);
        }
        // Sources are oldest first: a later source's state replaces an earlier one's.
        for batch in batches {
            for (key, value) in batch {
                if limit.is_none_or(|l| key <= l) {
                    merged.insert(key, value);
                }
            }
        }
        let done = limit.is_none();
        let creating = self.creating(merge.file);
        if let Some(target) = &merge.target {
            let durability = if done {
                Durability::Immediate
            } else {
                Durability::None
            };
            let mut txn = target
                .begin_write()
                .map_err(|e| storage(&creating, e.to_string()))?;
            txn.set_durability(durability)
                .map_err(|e| storage(&creating, e.to_string()))?;
            {
                let mut table = txn
                    .open_table(STATES)
                    .map_err(|e| storage(&creating, e.to_string()))?;
                for (key, value) in &merged {
                    table
                        .insert(*key, value.as_slice())
                        .map_err(|e| storage(&creating, e.to_string()))?;
                }
            }
            txn.commit()
                .map_err(|e| storage(&creating, e.to_string()))?;
        }
        merge.written += merged.len() as u64;
        merge.after = merged.keys().next_back().copied().or(merge.after);
        if !done {
            return Ok(false);
        }
        merge.target = None;
        let level = merge.sources.first().map_or(0, |s| s.entry.level) + 1;
        let entry = RunEntry {
            file: merge.file,
            states: merge.written,
            level,
        };
        let run = Arc::new(self.finish_run(&creating, entry)?);
        // The merged run takes its sources' place in the order; checkpoints written since the
        // merge began stay after it.
        let current = self.current()?;
        let mut manifest = current.manifest.clone();
        let mut runs = Vec::with_capacity(current.runs.len());
        manifest.runs.clear();
        let mut placed = false;
        for existing in &current.runs {
            if merge
                .sources
                .iter()
                .any(|s| s.entry.file == existing.entry.file)
            {
                if !placed {
                    manifest.runs.push(run.entry);
                    runs.push(run.clone());
                    placed = true;
                }
                continue;
            }
            manifest.runs.push(existing.entry);
            runs.push(existing.clone());
        }
        self.publish(RunSet { manifest, runs })?;
        for source in &merge.sources {
            let path = self.dir.join(run_file(source.entry.file));
            // A reader's snapshot may still hold it open; the file lives until it is closed.
            std::fs::remove_file(&path).map_err(|e| io_error(&path, "removing", e))?;
        }
        Ok(true)
    }

    fn creating(&self, file: u64) -> PathBuf {
        self.dir.join(format!("{}{CREATING}", run_file(file)))
    }

    pub(crate) fn error(&self, e: impl std::fmt::Display) -> Error {
        storage(&self.dir, e.to_string())
    }
}

fn storage(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Storage {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

fn io_error(path: &Path, what: &str, source: std::io::Error) -> Error {
    Error::Io {
        context: format!("{what} {}", path.display()),
        source,
    }
}

fn create_run(path: &Path) -> Result<Database, Error> {
    if path.exists() {
        std::fs::remove_file(path).map_err(|e| io_error(path, "removing", e))?;
    }
    redb::Builder::new()
        .set_cache_size(WRITE_CACHE_BYTES)
        .create(path)
        .map_err(|e| storage(path, e.to_string()))
}

fn open_run(dir: &Path, entry: RunEntry) -> Result<Run, Error> {
    let path = dir.join(run_file(entry.file));
    let db = redb::Builder::new()
        .set_cache_size(RUN_CACHE_BYTES)
        .open_read_only(&path)
        .map_err(|e| storage(&path, format!("opening a checkpoint run: {e}")))?;
    Ok(Run { entry, db })
}

fn write_states(
    db: &Database,
    path: &Path,
    states: &[(Instance, AcceptorState)],
    durability: Durability,
    encoded: &mut Vec<u8>,
) -> Result<(), Error> {
    let mut txn = db.begin_write().map_err(|e| storage(path, e.to_string()))?;
    txn.set_durability(durability)
        .map_err(|e| storage(path, e.to_string()))?;
    {
        let mut table = txn
            .open_table(STATES)
            .map_err(|e| storage(path, e.to_string()))?;
        for (instance, state) in states {
            let record = Record {
                instance: *instance,
                state: state.clone(),
            };
            encode_record(&record, encoded).map_err(|e| storage(path, e.to_string()))?;
            table
                .insert((instance.key, instance.slot), encoded.as_slice())
                .map_err(|e| storage(path, e.to_string()))?;
        }
    }
    txn.commit().map_err(|e| storage(path, e.to_string()))
}

/// The manifest in `dir`: format byte, crc32c of the rest, postcard. None yet: an empty store.
fn read_manifest(dir: &Path) -> Result<Manifest, Error> {
    let path = dir.join(MANIFEST);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Manifest::default()),
        Err(e) => return Err(io_error(&path, "reading", e)),
    };
    let refuse = |why: &str| Err(storage(&path, format!("bad checkpoint manifest: {why}")));
    if bytes.len() < 5 {
        return refuse("too short");
    }
    if bytes[0] != MANIFEST_FORMAT {
        return refuse(&format!("unknown format {}", bytes[0]));
    }
    let crc = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    if crc != crc32c::crc32c(&bytes[5..]) {
        return refuse("checksum mismatch");
    }
    postcard::from_bytes(&bytes[5..]).or_else(|e| refuse(&e.to_string()))
}

fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), Error> {
    let path = dir.join(MANIFEST);
    let body = postcard::to_stdvec(manifest).map_err(|e| storage(&path, e))?;
    let mut bytes = vec![MANIFEST_FORMAT];
    bytes.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    bytes.extend_from_slice(&body);
    replace_file(dir, MANIFEST, &bytes)
}

/// The runs as of one checkpoint, newest first.
pub(crate) struct Snapshot {
    runs: Vec<RunTable>,
    dir: PathBuf,
}

impl Snapshot {
    /// The newest state of `instance` in any run.
    pub(crate) fn get(&self, instance: Instance) -> Result<Option<AcceptorState>, Error> {
        let fail =
            |e: &dyn std::fmt::Display| storage(&self.dir, format!("instance {instance}: {e}"));
        for run in &self.runs {
            if let Some(bytes) = run
                .get((instance.key, instance.slot))
                .map_err(|e| fail(&e))?
            {
                return Ok(Some(
                    decode_record(bytes.value()).map_err(|e| fail(&e))?.state,
                ));
            }
        }
        Ok(None)
    }

    /// The highest slot of `key` in any run.
    pub(crate) fn max_slot(&self, key: u64) -> Result<Option<u64>, Error> {
        let fail = |e: &dyn std::fmt::Display| storage(&self.dir, format!("key {key}: {e}"));
        let mut max = None;
        for run in &self.runs {
            let last = run
                .range((key, 0)..=(key, u64::MAX))
                .map_err(|e| fail(&e))?
                .next_back();
            if let Some(entry) = last {
                let (k, _) = entry.map_err(|e| fail(&e))?;
                max = max.max(Some(k.value().1));
            }
        }
        Ok(max)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use paxbench_core::ProposalId;

    use super::*;

    fn state(promised: u64) -> AcceptorState {
        AcceptorState {
            promised: ProposalId::new(promised, 1),
            accepted: Some((ProposalId::new(promised, 1), Bytes::from("v"))),
        }
    }

    /// A run of `keys`, each at slot 0 with promise `promised`.
    fn run(store: &KeyedStore, keys: impl Iterator<Item = u64>, promised: u64, through: u64) {
        let states: Vec<_> = keys
            .map(|k| (Instance::new(k, 0), state(promised)))
            .collect();
        store.write_run(&states, through, &mut Vec::new()).unwrap();
    }

    fn promised(store: &KeyedStore, key: u64) -> Option<ProposalId> {
        let snapshot = store.snapshot().unwrap();
        snapshot
            .get(Instance::new(key, 0))
            .unwrap()
            .map(|s| s.promised)
    }

    #[test]
    fn states_from_a_bound_per_key_are_found_by_seeking_in_every_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyedStore::open(dir.path(), true).unwrap();
        let slots = |key: u64, range: std::ops::Range<u64>, promised: u64| {
            range
                .map(move |slot| (Instance::new(key, slot), state(promised)))
                .collect::<Vec<_>>()
        };
        let mut older = slots(1, 0..10, 1);
        older.extend(slots(u64::MAX, 0..3, 1));
        store.write_run(&older, 1, &mut Vec::new()).unwrap();
        let mut newer = slots(1, 8..12, 2);
        newer.extend(slots(5, 0..2, 2));
        store.write_run(&newer, 2, &mut Vec::new()).unwrap();
        let from = |key: u64| match key {
            1 => 9,
            5 => 5,
            _ => 1,
        };
        let mut seen = Vec::new();
        store
            .for_each_state_from(&from, &mut |r| {
                seen.push((r.instance.key, r.instance.slot, r.state.promised.high));
                Ok(())
            })
            .unwrap();
        assert_eq!(
            seen,
            [
                (1, 9, 1),
                (u64::MAX, 1, 1),
                (u64::MAX, 2, 1),
                (1, 9, 2),
                (1, 10, 2),
                (1, 11, 2)
            ],
            "oldest run first, each from its key's bound; key 5 has nothing at or above 5"
        );
    }

    #[test]
    fn the_newest_run_wins_before_and_after_merging_in_small_steps() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyedStore::open(dir.path(), true).unwrap();
        // Four runs of one tier; keys overlap, and each run raises the promise.
        for r in 0..4u64 {
            run(&store, (r * 50)..(r * 50 + 100), r + 1, r + 1);
        }
        assert_eq!(store.runs().unwrap(), 4);
        assert_eq!(promised(&store, 60), Some(ProposalId::new(2, 1)));
        assert_eq!(store.snapshot().unwrap().max_slot(60).unwrap(), Some(0));
        assert_eq!(store.snapshot().unwrap().max_slot(999).unwrap(), None);
        let mut merge = store.due_merge().unwrap().expect("four runs of one tier");
        let mut steps = 1;
        while !store.merge_step(&mut merge, 7).unwrap() {
            steps += 1;
            // Mid-merge, lookups still see the sources; a checkpoint may land meanwhile.
            assert_eq!(promised(&store, 160), Some(ProposalId::new(4, 1)));
            if steps == 5 {
                run(&store, 500..510, 9, 5);
            }
        }
        assert!(steps > 10, "{steps} steps");
        assert_eq!(
            store.runs().unwrap(),
            2,
            "the merged run and the later checkpoint"
        );
        for key in 0..250 {
            let expected = (0..4u64)
                .rev()
                .find(|r| (r * 50..r * 50 + 100).contains(&key))
                .map(|r| ProposalId::new(r + 1, 1));
            assert_eq!(promised(&store, key), expected, "key {key}");
        }
        assert_eq!(promised(&store, 505), Some(ProposalId::new(9, 1)));
        assert_eq!(store.states().unwrap().len(), 260);
        drop(store);
        // Reopened, the store lists the same runs and nothing else is left in its directory.
        let store = KeyedStore::open(dir.path(), true).unwrap();
        assert_eq!((store.runs().unwrap(), store.through().unwrap()), (2, 5));
        assert_eq!(std::fs::read_dir(store.dir()).unwrap().count(), 3);
    }

    #[test]
    fn a_merge_cut_short_by_a_crash_leaves_the_sources_and_no_leftover() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = KeyedStore::open(dir.path(), true).unwrap();
            for r in 0..4u64 {
                run(&store, 0..40, r + 1, r + 1);
            }
            let mut merge = store.due_merge().unwrap().unwrap();
            assert!(!store.merge_step(&mut merge, 5).unwrap());
            // Killed here: the half-written target stays behind under its temporary name.
            std::mem::forget(merge);
        }
        let audit = KeyedStore::open(dir.path(), false).unwrap();
        assert_eq!(
            std::fs::read_dir(audit.dir()).unwrap().count(),
            6,
            "audits change nothing"
        );
        drop(audit);
        let store = KeyedStore::open(dir.path(), true).unwrap();
        assert_eq!(store.runs().unwrap(), 4);
        assert_eq!(promised(&store, 3), Some(ProposalId::new(4, 1)));
        assert_eq!(std::fs::read_dir(store.dir()).unwrap().count(), 5);
    }

    #[test]
    fn levels_keep_the_run_count_logarithmic_and_a_bad_manifest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyedStore::open(dir.path(), true).unwrap();
        // Checkpoints of uneven sizes, merged as the checkpoint thread would.
        for r in 0..64u64 {
            run(&store, (r * 7)..(r * 7 + 5 + r % 13), r + 1, r + 1);
            while let Some(mut merge) = store.due_merge().unwrap() {
                while !store.merge_step(&mut merge, 16).unwrap() {}
            }
            assert!(
                store.runs().unwrap() < MERGE_WIDTH * 4,
                "{} runs",
                store.runs().unwrap()
            );
        }
        // 64 = 4^3 checkpoints merge into one level-3 run.
        assert_eq!(store.runs().unwrap(), 1);
        assert_eq!(promised(&store, 63 * 7), Some(ProposalId::new(64, 1)));
        drop(store);
        let manifest = dir.path().join(CHECKPOINT_DIR).join(MANIFEST);
        let mut bytes = std::fs::read(&manifest).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&manifest, bytes).unwrap();
        let err = KeyedStore::open(dir.path(), true).unwrap_err().to_string();
        assert!(
            err.contains("MANIFEST") && err.contains("checksum"),
            "{err}"
        );
    }
}
