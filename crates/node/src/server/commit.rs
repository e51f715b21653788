//! The node's disk side: group commit of what the host hands out to persist (on a blocking
//! thread while the next batch accumulates, so one fsync serves every request that arrived
//! meanwhile), and paging of acceptor states between memory and the store.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use paxbench_core::acceptor::Record;
use paxbench_core::host::{NodeHost, NodeReady};
use paxbench_core::{Instance, Time};
use paxbench_quic::Transport;
use tokio::task::JoinHandle;
use tracing::{error, info};

use crate::config::StorageFailure;

use super::Node;
use crate::cache::{InstanceCache, Stored};
use crate::error::Error;
use crate::storage::{AcceptorStore, StateReader};

/// What a commit task hands back: the storage, the batch, and how long the commit took with
/// the log position it reached.
pub(super) type Committed = (
    Box<dyn AcceptorStore>,
    NodeReady,
    Result<(Duration, u64), Error>,
);
pub(super) type Commit = JoinHandle<Committed>;

/// Makes a batch durable: its records, then the Multi-Paxos state if it is due. Returns how
/// long that took (zero for `memory`, which keeps nothing) and the log position reached.
fn persist(
    storage: &mut dyn AcceptorStore,
    ready: &NodeReady,
    timed: bool,
) -> Result<(Duration, u64), Error> {
    let started = Instant::now();
    let position = storage.commit(ready.records())?;
    if let Some(ranged) = ready.ranged() {
        storage.persist_ranged(ranged)?;
    }
    let elapsed = if timed {
        started.elapsed()
    } else {
        Duration::ZERO
    };
    Ok((elapsed, position))
}

/// Resolves when the commit in flight finishes; never without one.
pub(super) async fn wait_commit(
    commit: &mut Option<Commit>,
) -> Result<Committed, tokio::task::JoinError> {
    match commit.as_mut() {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

/// After a restart under Multi-Paxos: holds in memory every checkpointed state its key's
/// chosen prefix does not cover, since a PROMISE-ALL reports from memory. States the log
/// after the checkpoint restored are newer and stay. The prefix was persisted at most a
/// second before the crash, so what is read back is about a second's work and what was in
/// flight, found with a few seeks per key: restart time grows with the key space, not the run.
pub(super) fn hold_unsettled(
    host: &mut NodeHost,
    reader: &dyn StateReader,
    cache: &mut InstanceCache,
) -> Result<(), Error> {
    if reader.checkpointed() == 0 {
        return Ok(());
    }
    let prefix: HashMap<u64, u64> = host.acceptor().chosen_prefix().into_iter().collect();
    let from = |key: u64| prefix.get(&key).copied().unwrap_or(0);
    let mut unsettled: HashMap<Instance, Record> = HashMap::new();
    reader.for_each_state_from(&from, &mut |record| {
        if !host.holds(record.instance) {
            unsettled.insert(record.instance, record);
        }
        Ok(())
    })?;
    let held = unsettled.len();
    for (instance, record) in unsettled {
        host.load(record);
        cache.admit(instance);
    }
    info!(held, "held the checkpointed states above the chosen prefix");
    Ok(())
}

impl<T: Transport + std::fmt::Debug> Node<T> {
    /// Makes sure the acceptor holds `instance` before a request for it is fed: a state it
    /// forgot is read back from the checkpoint, since the acceptor would otherwise take the
    /// instance for a fresh one.
    pub(super) fn hold(&mut self, instance: Instance) {
        let (Some(reader), Some(cache)) = (self.reader.as_mut(), self.cache.as_mut()) else {
            return;
        };
        if self.host.holds(instance) || self.host.storage_failed() {
            return;
        }
        let mut stored = cache.stored(instance);
        if stored == Stored::AskForKey {
            match reader.max_slot(instance.key) {
                Ok(max) => cache.learn(instance.key, max),
                Err(e) => {
                    self.fail_storage(&format!("reading key {} back: {e}", instance.key));
                    return;
                }
            }
            stored = cache.stored(instance);
        }
        if stored == Stored::No {
            cache.admit(instance);
            return;
        }
        match reader.get(instance) {
            Ok(Some(state)) => {
                self.stats.store_reads += 1;
                self.host.load(Record { instance, state });
            }
            Ok(None) => {}
            Err(e) => {
                self.fail_storage(&format!("reading instance {instance} back: {e}"));
                return;
            }
        }
        cache.admit(instance);
    }

    /// Forgets the oldest states once the acceptor holds more than the cache's capacity.
    pub(super) fn evict(&mut self) {
        let Some(cache) = self.cache.as_mut() else {
            return;
        };
        // Without a store to read back from, every write counts as checkpointed.
        let checkpointed = self
            .reader
            .as_ref()
            .map_or(u64::MAX - 1, |reader| reader.checkpointed());
        cache.evict(&mut self.host, checkpointed);
    }

    /// Hands what the host has to persist to storage unless a commit is running (then it
    /// waits and joins the next group). Returns whether the host may have new output.
    pub(super) fn start_commit(&mut self, now: Time) -> bool {
        if self.commit.is_some() || self.host.storage_failed() || !self.host.acceptor().has_ready()
        {
            return false;
        }
        let Some(ready) = self.host.ready(now) else {
            // The replies rested on nothing new and were released.
            return true;
        };
        let Some(mut storage) = self.storage.take() else {
            return true;
        };
        if let Some(cache) = self.cache.as_mut() {
            cache.committing(ready.records());
        }
        if self.memory_storage {
            let result = persist(storage.as_mut(), &ready, false);
            self.storage = Some(storage);
            self.on_persisted(ready, result);
            return true;
        }
        self.commit = Some(tokio::task::spawn_blocking(move || {
            let result = persist(storage.as_mut(), &ready, true);
            (storage, ready, result)
        }));
        true
    }

    pub(super) fn finish_commit(&mut self, finished: Result<Committed, tokio::task::JoinError>) {
        match finished {
            Ok((storage, ready, result)) => {
                self.storage = Some(storage);
                self.on_persisted(ready, result);
            }
            Err(e) => self.fail_storage(&format!("the commit task died: {e}")),
        }
    }

    fn on_persisted(&mut self, ready: NodeReady, result: Result<(Duration, u64), Error>) {
        match result {
            Ok((elapsed, position)) => {
                if let Some(cache) = self.cache.as_mut() {
                    cache.committed(ready.records(), position);
                }
                let records = ready.records().len() as u64;
                self.stats.batches += 1;
                self.stats.records += records;
                self.stats.max_batch = self.stats.max_batch.max(records);
                if !self.memory_storage {
                    let _ = self.commit_us.record((elapsed.as_micros() as u64).max(1));
                }
                if self.crash.abort_after_persisting == Some(self.stats.batches) {
                    error!(
                        batch = self.stats.batches,
                        "crash point: aborting after persisting, before replying"
                    );
                    std::process::abort();
                }
                self.host.persisted(ready);
            }
            Err(e) => {
                // Dropping `ready` drops every reply that depended on it.
                self.fail_storage(&e.to_string());
            }
        }
    }

    pub(super) fn fail_storage(&mut self, reason: &str) {
        self.stats.storage_failed = true;
        self.host.fail_storage();
        match self.on_storage_failure {
            StorageFailure::Exit => {
                error!(
                    node = %self.id,
                    "STORAGE FAILED: {reason}. Exiting; restart this node once the disk is healthy"
                );
                self.exit_reason = Some(reason.to_string());
            }
            StorageFailure::Stay => error!(
                node = %self.id,
                "STORAGE FAILED: {reason}. This node no longer replies to anything, leads nothing and answers no ping; restart it once the disk is healthy"
            ),
        }
    }
}
