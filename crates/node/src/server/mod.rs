//! The node's event loop: frames in, acceptor and learner stepped, records persisted in groups,
//! replies out. One current-thread task owns all Paxos state; commits run on a blocking thread
//! while the next batch accumulates, so one fsync serves every request that arrived meanwhile.
//! Under Multi-Paxos the node also hosts a leader role ([`multi`]).

mod multi;

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use paxbench_core::acceptor::{
    Acceptor, AcceptorConfig, CHOSEN_PREFIX_PERIOD, Destination, Outgoing, Ready, Record,
};
use paxbench_core::learner::{Learner, RECENT_INSTANCES};
use paxbench_core::message::Message;
use paxbench_core::{Instance, NodeId, ProposerId};
use paxbench_quic::{
    AdminCommand, AdminReply, Endpoint, EndpointConfig, Envelope, FaultLayer, Inbound,
    LatencySummary, Link, NodeStats, PeerName, Transport,
};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::cache::{InstanceCache, Stored};
use crate::config::{LearnerFanout, NodeConfig, StorageMode};
use crate::error::Error;
use crate::ranged::RangedState;
use crate::storage::{AcceptorStore, DiskSwitch, FaultyDisk};
use crate::wal::{StoreReader, WalOptions, WalStorage};

/// Test-only fault points: ways to die at the worst moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrashPoints {
    /// Abort the process right after this many batches are durable, before their replies go out.
    pub abort_after_persisting: Option<u64>,
}

/// The largest frame a Multi-Paxos node accepts. A PROMISE-ALL names every key written (its
/// highest slot and chosen prefix, about 20 bytes a key) and a PREPARE-ALL the campaigner's
/// prefix per key: at 200,000 keys they passed the 1 MiB default and no election could
/// complete. 64 MiB carries about 2.8 million keys; the load generator refuses more than
/// [`MULTI_PAXOS_MAX_KEYS`] on real clusters.
pub const MULTI_PAXOS_MAX_FRAME: usize = 64 << 20;

/// The most keys a Multi-Paxos run on real nodes may write: elections stay within
/// [`MULTI_PAXOS_MAX_FRAME`] with room to spare.
pub const MULTI_PAXOS_MAX_KEYS: u64 = 1_000_000;

/// Inbound frames handled before the batch is handed to storage, so one slow disk cannot make a
/// batch (and the latency of its first request) grow without bound.
const MAX_FRAMES_PER_TURN: usize = 4096;

/// What a commit task hands back: the storage, the batch, and how long the commit took with
/// the log position it reached.
type Committed = (
    Box<dyn AcceptorStore>,
    Ready,
    Result<(Duration, u64), Error>,
);

/// Makes a batch durable: its records, then the Multi-Paxos state if it changed. Returns how
/// long that took (zero for `memory`, which keeps nothing) and the log position reached.
fn persist(
    storage: &mut dyn AcceptorStore,
    ready: &Ready,
    ranged: Option<&RangedState>,
    timed: bool,
) -> Result<(Duration, u64), Error> {
    let started = Instant::now();
    let position = storage.commit(ready.records())?;
    if let Some(ranged) = ranged {
        storage.persist_ranged(ranged)?;
    }
    let elapsed = if timed {
        started.elapsed()
    } else {
        Duration::ZERO
    };
    Ok((elapsed, position))
}
type Commit = JoinHandle<Committed>;

struct Node<T: Transport> {
    id: NodeId,
    endpoint: Endpoint<T>,
    acceptor: Acceptor,
    learner: Learner,
    peers: Vec<Link>,
    /// The node each of `peers` leads to.
    peer_ids: Vec<NodeId>,
    proposers: HashMap<ProposerId, Link>,
    /// With `protocol: multi-paxos`: the leader role and its plumbing.
    multi: Option<multi::MultiPaxos>,
    storage: Option<Box<dyn AcceptorStore>>,
    /// With `wal` storage: where forgotten states are read back.
    reader: Option<StoreReader>,
    /// Which states may leave memory: with `wal` storage, and with `memory` storage under
    /// Multi-Paxos (there only below their key's chosen prefix, and nothing is read back).
    cache: Option<InstanceCache>,
    disk: DiskSwitch,
    memory_storage: bool,
    commit: Option<Commit>,
    crash: CrashPoints,
    started: Instant,
    stats: NodeStats,
    commit_us: Histogram<u64>,
}

/// Runs a node until `shutdown` resolves, then finishes the batch in flight, persists and
/// answers what was already handled, and closes connections gracefully. Returns the final stats.
pub async fn run_node<T: Transport + std::fmt::Debug>(
    config: &NodeConfig,
    transport: T,
    mut storage: Box<dyn AcceptorStore>,
    crash: CrashPoints,
    shutdown: impl Future<Output = ()>,
) -> Result<NodeStats, Error> {
    let acceptor_config = AcceptorConfig {
        reject_mode: config.reject_mode,
        notify_learners: config.learner_fanout == LearnerFanout::All,
    };
    let recovered = storage.recover()?;
    let ranged = recovered.ranged.clone();
    let restarted = !recovered.records.is_empty() || ranged != RangedState::default();
    info!(node = %config.id, records = recovered.records.len(), global_promise = %ranged.global_promise, chosen_prefix_keys = ranged.chosen_prefix.len(), "restored acceptor state");
    let disk_floor_us = match &config.data_dir {
        Some(dir) if config.storage.is_durable() => {
            let floor = crate::disk_floor::floor(dir)?;
            info!(node = %config.id, p50_us = floor.p50, p99_us = floor.p99, samples = floor.count, "disk floor: append + fdatasync");
            floor
        }
        _ => LatencySummary::default(),
    };
    let reader = storage.reader();
    let mut cache = match &reader {
        Some(reader) => {
            let mut cache = InstanceCache::new(config.cache_instances, reader.checkpointed() > 0);
            // What the log held after the checkpoint stays until a checkpoint includes it.
            cache.committed(&recovered.records, recovered.position);
            Some(cache)
        }
        None => config
            .leader
            .is_some()
            .then(|| InstanceCache::new(config.cache_instances, false)),
    };
    let mut acceptor = Acceptor::restore(config.id, acceptor_config, recovered.records);
    acceptor.restore_global_promise(ranged.global_promise);
    acceptor.raise_chosen_prefix(&ranged.chosen_prefix);
    if config.leader.is_some()
        && let (Some(reader), Some(cache)) = (&reader, cache.as_mut())
    {
        hold_unsettled(&mut acceptor, reader, cache)?;
    }
    let mut multi = match &config.leader {
        Some(leader) => Some(multi::MultiPaxos::new(config.id, leader.clone())?),
        None => None,
    };
    let disk = DiskSwitch::default();
    let storage: Box<dyn AcceptorStore> = Box::new(FaultyDisk::new(storage, disk.clone()));
    let faults = FaultLayer::new(&config.faults)?;
    let endpoint_config = EndpointConfig {
        max_frame: if config.leader.is_some() {
            MULTI_PAXOS_MAX_FRAME
        } else {
            EndpointConfig::default().max_frame
        },
        ..EndpointConfig::default()
    };
    let (endpoint, mut inbox) = Endpoint::new(transport, faults, &endpoint_config);
    endpoint.serve();
    let peers = config
        .peers
        .iter()
        .map(|peer| endpoint.dial(peer.addr.clone(), PeerName::Node(NodeId(peer.id))))
        .collect();
    let mut node = Node {
        id: config.id,
        endpoint,
        acceptor,
        learner: Learner::with_quorum(config.phase2_quorum, RECENT_INSTANCES),
        peers,
        peer_ids: config.peers.iter().map(|p| NodeId(p.id)).collect(),
        proposers: HashMap::new(),
        multi: None,
        memory_storage: config.storage == StorageMode::Memory,
        storage: Some(storage),
        reader,
        cache,
        disk,
        commit: None,
        crash,
        started: Instant::now(),
        stats: NodeStats {
            node: config.id.0,
            disk_floor_us,
            ..NodeStats::default()
        },
        commit_us: Histogram::new_with_bounds(1, 3_600_000_000, 3).map_err(|e| Error::Config {
            origin: "histogram".into(),
            message: e.to_string(),
        })?,
    };
    info!(node = %config.id, listen = %node.endpoint.transport().local_addr()?, transport = ?config.transport, storage = ?config.storage, protocol = if multi.is_some() { "multi-paxos" } else { "vanilla" }, "serving");
    if let Some(multi) = multi.as_mut() {
        multi.begin(restarted, node.acceptor.global_promise());
    }
    node.multi = multi;
    node.finish_turn();

    let stats_period = Duration::from_millis(config.stats_interval_ms.max(1));
    let mut stats_tick =
        tokio::time::interval_at(tokio::time::Instant::now() + stats_period, stats_period);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            finished = wait_commit(&mut node.commit) => {
                node.commit = None;
                node.finish_commit(finished);
                node.finish_turn();
            }
            () = leader_timer(node.multi.as_ref().and_then(multi::MultiPaxos::wake)) => {
                node.leader_timeout();
                node.finish_turn();
            }
            inbound = inbox.recv() => {
                let Some(inbound) = inbound else { break };
                node.handle(inbound);
                for _ in 1..MAX_FRAMES_PER_TURN {
                    match inbox.try_recv() {
                        Ok(inbound) => node.handle(inbound),
                        Err(_) => break,
                    }
                }
                node.finish_turn();
            }
            _ = stats_tick.tick(), if config.stats_interval_ms > 0 => {
                let stats = node.stats();
                info!(target: "paxbench_node::stats", "{}", stats_line(&stats));
            }
        }
    }

    info!(node = %node.id, "shutting down: finishing the batch in flight");
    if let Some(commit) = node.commit.take() {
        node.finish_commit(commit.await);
    }
    node.settle();
    node.start_commit();
    if let Some(commit) = node.commit.take() {
        node.finish_commit(commit.await);
    }
    node.settle();
    let stats = node.stats();
    node.proposers.clear();
    node.peers.clear();
    // Let the link writers flush what was just queued before the connections close.
    tokio::time::sleep(Duration::from_millis(50)).await;
    node.endpoint.shutdown().await;
    info!(node = %stats.node, "{}", stats_line(&stats));
    Ok(stats)
}

/// Resolves when the leader role's timer is due; never without one.
async fn leader_timer(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// After a restart under Multi-Paxos: holds in memory every checkpointed state its key's
/// chosen prefix does not cover, since a PROMISE-ALL reports from memory. States the log
/// after the checkpoint restored are newer and stay. The prefix was persisted at most a
/// second before the crash, so what is read back is about a second's work and what was in
/// flight, found with a few seeks per key: restart time grows with the key space, not the run.
fn hold_unsettled(
    acceptor: &mut Acceptor,
    reader: &StoreReader,
    cache: &mut InstanceCache,
) -> Result<(), Error> {
    if reader.checkpointed() == 0 {
        return Ok(());
    }
    let prefix: HashMap<u64, u64> = acceptor.chosen_prefix().into_iter().collect();
    let from = |key: u64| prefix.get(&key).copied().unwrap_or(0);
    let mut unsettled: HashMap<Instance, Record> = HashMap::new();
    reader.for_each_state_from(&from, &mut |record| {
        if !acceptor.holds(record.instance) {
            unsettled.insert(record.instance, record);
        }
        Ok(())
    })?;
    let held = unsettled.len();
    for (instance, record) in unsettled {
        acceptor.load(record);
        cache.admit(instance);
    }
    info!(held, "held the checkpointed states above the chosen prefix");
    Ok(())
}

async fn wait_commit(commit: &mut Option<Commit>) -> Result<Committed, tokio::task::JoinError> {
    match commit.as_mut() {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

/// One line with every counter, for logs.
pub fn stats_line(stats: &NodeStats) -> String {
    let t = &stats.transport;
    format!(
        "stats node={} up={}s paxos_in={} paxos_out={} frames_in={} frames_out={} writes={} \
         batches={} records={} max_batch={} commit_p50={}us commit_p99={}us \
         disk_floor_p50={}us chosen={} held={} most_held={} evicted={} store_reads={} \
         checkpoints={} refused_peers={} malformed_frames={} dropped={} storage_failed={}",
        stats.node,
        stats.uptime_ms / 1000,
        stats.paxos_in,
        stats.paxos_out,
        t.frames_in,
        t.frames_out,
        t.writes,
        stats.batches,
        stats.records,
        stats.max_batch,
        stats.commit_us.p50,
        stats.commit_us.p99,
        stats.disk_floor_us.p50,
        stats.chosen,
        stats.held_instances,
        stats.most_held,
        stats.evicted,
        stats.store_reads,
        stats.checkpoints,
        t.refused_peers,
        t.malformed_frames,
        t.dropped,
        stats.storage_failed,
    )
}

impl<T: Transport + std::fmt::Debug> Node<T> {
    fn stats(&self) -> NodeStats {
        let h = &self.commit_us;
        NodeStats {
            uptime_ms: self.started.elapsed().as_millis() as u64,
            transport: self.endpoint.counters(),
            commit_us: LatencySummary {
                count: h.len(),
                mean: h.mean(),
                p50: h.value_at_quantile(0.5),
                p99: h.value_at_quantile(0.99),
                max: h.max(),
            },
            chosen: self.learner.chosen_count() + self.multi.as_ref().map_or(0, |m| m.learned),
            held_instances: self.acceptor.len() as u64,
            most_held: self
                .cache
                .as_ref()
                .map_or(self.acceptor.len(), InstanceCache::most_held)
                as u64,
            evicted: self.cache.as_ref().map_or(0, InstanceCache::evicted),
            checkpoints: self.reader.as_ref().map_or(0, StoreReader::checkpoints),
            leading: self
                .multi
                .as_ref()
                .filter(|m| m.leader.is_leading())
                .and_then(|m| m.leader.ballot()),
            leader: self.multi.as_ref().map(|m| m.leader.stats()),
            ..self.stats.clone()
        }
    }

    fn handle(&mut self, inbound: Inbound) {
        let Inbound {
            peer,
            envelope,
            reply,
        } = inbound;
        let Some(reply) = reply.link() else {
            // The link closed while the frame waited: nobody is there to answer.
            return;
        };
        match envelope {
            Envelope::Paxos(message) => self.handle_paxos(peer, message, reply),
            Envelope::Ping { nonce } => reply.send(Envelope::Pong {
                nonce,
                unix_ns: paxbench_quic::wire::unix_now_ns(),
            }),
            Envelope::Admin { request, command } => {
                let answer = self.handle_admin(peer, command);
                reply.send(Envelope::AdminReply {
                    request,
                    reply: answer,
                });
            }
            Envelope::Reply { proposer, message } if matches!(peer, PeerName::Node(_)) => {
                self.relay(proposer, message);
            }
            Envelope::Hello { .. }
            | Envelope::Pong { .. }
            | Envelope::AdminReply { .. }
            | Envelope::Reply { .. } => {
                debug!(%peer, "ignoring an unexpected frame");
            }
        }
    }

    /// Admin commands come only from the cluster's clients, named by a certificate the cluster
    /// CA signed: plain TCP names peers by their own word, so it gets no admin at all.
    fn handle_admin(&mut self, peer: PeerName, command: AdminCommand) -> AdminReply {
        let authenticated = self.endpoint.transport().kind().authenticates_peers();
        if !(peer.is_client() && authenticated) {
            let reason = if authenticated {
                format!("{peer} is not a cluster client")
            } else {
                "admin commands need QUIC: plain TCP does not authenticate peers".to_string()
            };
            warn!(%peer, "refused an admin command: {reason}");
            return AdminReply::Refused { reason };
        }
        match command {
            AdminCommand::Stats => AdminReply::Stats(Box::new(self.stats())),
            AdminCommand::SetFaults(spec) => match self.endpoint.faults().set(&spec) {
                Ok(()) => {
                    info!(%peer, ?spec, "fault settings changed");
                    AdminReply::FaultsSet
                }
                Err(e) => AdminReply::Refused {
                    reason: e.to_string(),
                },
            },
            AdminCommand::SetDiskFault(fault) => {
                warn!(%peer, ?fault, "disk fault injected from the next commit on");
                self.disk.set(fault);
                AdminReply::FaultsSet
            }
        }
    }

    fn handle_paxos(&mut self, peer: PeerName, message: Message, reply: Link) {
        self.stats.paxos_in += 1;
        match &message {
            Message::Prepare(p) => {
                self.note_proposer(p.from, reply);
                self.hold(p.instance);
                self.step_acceptor(&message);
            }
            Message::AcceptRequest(a) => {
                self.note_proposer(a.from, reply);
                self.hold(a.instance);
                self.step_acceptor(&message);
            }
            Message::Accepted(accepted) => {
                if let Some(chosen) = self.learner.handle_accepted(accepted) {
                    debug!(instance = %chosen.instance, id = %chosen.id, "chosen");
                }
            }
            Message::Promise(_)
            | Message::Nack(_)
            | Message::Redirect(_)
            | Message::ClientReply(_) => {
                debug!(%peer, kind = message.kind(), "ignoring a client-bound message");
            }
            Message::ClientRequest(_)
            | Message::PrepareAll(_)
            | Message::PromiseAll(_)
            | Message::AcceptBatch(_)
            | Message::AcceptedBatch(_)
            | Message::Heartbeat(_)
            | Message::Refused(_) => self.handle_multi(peer, message, reply),
        }
    }

    /// Replies go where the proposer's latest request came from: after a reconnect, that is
    /// the new stream, even before the old one is noticed dead.
    fn note_proposer(&mut self, proposer: ProposerId, reply: Link) {
        match self.proposers.get_mut(&proposer) {
            Some(link) if link.same_link(&reply) => {}
            Some(link) => *link = reply,
            None => {
                self.proposers.insert(proposer, reply);
            }
        }
    }

    /// Makes sure the acceptor holds `instance` before a request for it is fed: a state it
    /// forgot is read back from the checkpoint, since the acceptor would otherwise take the
    /// instance for a fresh one.
    fn hold(&mut self, instance: Instance) {
        let (Some(reader), Some(cache)) = (self.reader.as_mut(), self.cache.as_mut()) else {
            return;
        };
        if self.acceptor.holds(instance) || self.stats.storage_failed {
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
                self.acceptor.load(Record { instance, state });
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
    fn evict(&mut self) {
        let Some(cache) = self.cache.as_mut() else {
            return;
        };
        // Without a store to read back from, every write counts as checkpointed.
        let checkpointed = self
            .reader
            .as_ref()
            .map_or(u64::MAX - 1, StoreReader::checkpointed);
        cache.evict(&mut self.acceptor, checkpointed, self.multi.is_some());
    }

    /// Ends a turn: everything the leader role and the node's own messages set off is sent or
    /// delivered, what the acceptor must persist is handed to storage (in memory mode that
    /// completes at once and may set off more), then old states leave memory.
    fn finish_turn(&mut self) {
        loop {
            self.settle();
            self.start_commit();
            if self.multi.as_ref().is_none_or(|m| m.local.is_empty()) {
                break;
            }
        }
        self.evict();
    }

    fn step_acceptor(&mut self, message: &Message) {
        if self.stats.storage_failed {
            // Storage failed: the in-memory state is ahead of the disk, so nothing it says may
            // leave this node.
            return;
        }
        if let Err(e) = self.acceptor.handle(message) {
            debug!("acceptor refused a message: {e}");
        }
    }

    /// Hands the pending records to storage unless a commit is running (then they wait and
    /// join the next group).
    fn start_commit(&mut self) {
        if self.commit.is_some() || self.stats.storage_failed || !self.acceptor.has_ready() {
            return;
        }
        let mut ready = self.acceptor.ready();
        for outgoing in ready.take_unpersisted_messages() {
            self.route(outgoing);
        }
        let ranged = self.ranged_to_persist(&ready);
        if ready.records().is_empty() && ranged.is_none() {
            // Nothing to write (a repeated promise, or only NACKs): the replies rest on state
            // that is already durable.
            for outgoing in ready.persisted() {
                self.route(outgoing);
            }
            return;
        }
        let Some(mut storage) = self.storage.take() else {
            return;
        };
        if let Some(cache) = self.cache.as_mut() {
            cache.committing(ready.records());
        }
        if self.memory_storage {
            let result = persist(storage.as_mut(), &ready, ranged.as_ref(), false);
            self.storage = Some(storage);
            self.on_persisted(ready, result);
            return;
        }
        self.commit = Some(tokio::task::spawn_blocking(move || {
            let result = persist(storage.as_mut(), &ready, ranged.as_ref(), true);
            (storage, ready, result)
        }));
    }

    /// The Multi-Paxos state to persist with this batch: always when the global promise rose
    /// (the PROMISE-ALL waits for it), and otherwise once per [`CHOSEN_PREFIX_PERIOD`] with a
    /// batch that has records, so that a restart reads back little above the prefix.
    fn ranged_to_persist(&mut self, ready: &Ready) -> Option<RangedState> {
        let multi = self.multi.as_mut()?;
        let due =
            !ready.records().is_empty() && multi.prefix_saved.elapsed() >= CHOSEN_PREFIX_PERIOD;
        if ready.global_promise().is_none() && !due {
            return None;
        }
        multi.prefix_saved = Instant::now();
        Some(RangedState {
            global_promise: self.acceptor.global_promise(),
            chosen_prefix: self.acceptor.chosen_prefix(),
        })
    }

    fn finish_commit(&mut self, finished: Result<Committed, tokio::task::JoinError>) {
        match finished {
            Ok((storage, ready, result)) => {
                self.storage = Some(storage);
                self.on_persisted(ready, result);
            }
            Err(e) => self.fail_storage(&format!("the commit task died: {e}")),
        }
    }

    fn on_persisted(&mut self, ready: Ready, result: Result<(Duration, u64), Error>) {
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
                for outgoing in ready.persisted() {
                    self.route(outgoing);
                }
            }
            Err(e) => {
                // Dropping `ready` drops every reply that depended on it.
                self.fail_storage(&e.to_string());
            }
        }
    }

    fn fail_storage(&mut self, reason: &str) {
        self.stats.storage_failed = true;
        error!(
            node = %self.id,
            "STORAGE FAILED: {reason}. This acceptor no longer replies to anything; restart it once the disk is healthy"
        );
    }

    fn route(&mut self, outgoing: Outgoing) {
        match outgoing.to {
            Destination::Proposer(proposer) => {
                if let Some(link) = self.proposers.get(&proposer) {
                    self.stats.paxos_out += 1;
                    link.send(Envelope::Reply {
                        proposer,
                        message: outgoing.message,
                    });
                }
            }
            // Replies to a leader's PREPARE-ALL or ACCEPT-BATCH.
            Destination::Node(node) => self.send_to_node(node, outgoing.message),
            Destination::Learners => {
                if let Message::Accepted(accepted) = &outgoing.message {
                    self.learner.handle_accepted(accepted);
                }
                let envelope = Envelope::Paxos(outgoing.message);
                for peer in &self.peers {
                    self.stats.paxos_out += 1;
                    peer.send(envelope.clone());
                }
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                warn!("cannot listen for SIGTERM: {e}");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Builds the transport a config asks for and runs the node on it (on the current runtime).
pub async fn run_configured(
    config: &NodeConfig,
    crash: CrashPoints,
    shutdown: impl Future<Output = ()>,
) -> Result<NodeStats, Error> {
    let data_dir = || {
        config.data_dir.as_deref().ok_or_else(|| Error::Config {
            origin: "config".into(),
            message: "field `data_dir` is required for durable storage".into(),
        })
    };
    let storage: Box<dyn AcceptorStore> = match config.storage {
        StorageMode::Wal => Box::new(WalStorage::open(data_dir()?, WalOptions::default())?),
        StorageMode::Redb => Box::new(crate::storage::RedbStorage::open(data_dir()?)?),
        StorageMode::Memory => Box::new(crate::storage::MemoryStorage),
    };
    let me = PeerName::Node(config.id);
    match (&config.transport, &config.tls) {
        (paxbench_quic::TransportKind::Quic, Some(tls)) => {
            let identity = paxbench_quic::Identity::load(tls)?;
            if identity.name() != Some(me) {
                return Err(Error::Config {
                    origin: tls.cert.display().to_string(),
                    message: format!(
                        "this certificate names {}, but the node's `id` makes it {me}",
                        identity
                            .name()
                            .map_or("no member".into(), |n| n.to_string())
                    ),
                });
            }
            let transport = paxbench_quic::QuicTransport::bind(config.listen, &identity, me)?;
            run_node(config, transport, storage, crash, shutdown).await
        }
        (paxbench_quic::TransportKind::Quic, None) => Err(Error::Config {
            origin: "config".into(),
            message: "QUIC needs the `tls` files".into(),
        }),
        (paxbench_quic::TransportKind::Tcp, _) => {
            let transport = paxbench_quic::TcpTransport::bind(config.listen, me)?;
            run_node(config, transport, storage, crash, shutdown).await
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use paxbench_core::acceptor::AcceptorState;
    use paxbench_core::{Instance, NodeId, ProposalId};

    use super::*;
    use crate::wal::{CheckpointPolicy, WalOptions, WalStorage};

    #[test]
    fn a_restarted_multi_paxos_node_holds_the_checkpointed_states_above_its_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let options = WalOptions {
            checkpoint: CheckpointPolicy {
                max_pending: 1,
                interval: Duration::from_millis(1),
            },
            ..WalOptions::default()
        };
        let accepted = |key: u64, slot: u64| Record {
            instance: Instance::new(key, slot),
            state: AcceptorState {
                promised: ProposalId::new(1, 1),
                accepted: Some((ProposalId::new(1, 1), Bytes::from_static(b"v"))),
            },
        };
        let records: Vec<Record> = (0..6)
            .map(|slot| accepted(1, slot))
            .chain([accepted(2, 0)])
            .collect();
        let position = {
            let mut store = WalStorage::open(dir.path(), options).unwrap();
            store.recover().unwrap();
            let position = store.commit(&records).unwrap();
            let reader = store.reader().unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while reader.checkpointed() < position {
                assert!(Instant::now() < deadline, "no checkpoint");
                std::thread::sleep(Duration::from_millis(5));
            }
            position
        };
        let mut store = WalStorage::open(dir.path(), options).unwrap();
        let recovered = store.recover().unwrap();
        assert!(recovered.records.is_empty(), "all of it is checkpointed");
        let reader = store.reader().unwrap();
        assert!(reader.checkpointed() >= position);
        let mut cache = InstanceCache::new(100, true);
        let mut acceptor = Acceptor::new(NodeId(1), AcceptorConfig::default());
        // Slots 0..4 of key 1 are known chosen; key 2 has no prefix.
        acceptor.raise_chosen_prefix(&[(1, 4)]);
        hold_unsettled(&mut acceptor, &reader, &mut cache).unwrap();
        let mut held: Vec<Instance> = acceptor.states().map(|(i, _)| i).collect();
        held.sort_unstable();
        assert_eq!(
            held,
            [
                Instance::new(1, 4),
                Instance::new(1, 5),
                Instance::new(2, 0)
            ]
        );
    }
}
