//! The node's event loop: an I/O shell over the core's [`NodeHost`]. One current-thread task
//! owns all Paxos state; frames in and transmits out are in [`routes`], group commit and the
//! paging of acceptor states in [`commit`].

mod commit;
mod routes;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use paxbench_core::acceptor::AcceptorConfig;
use paxbench_core::host::{NodeHost, NodeHostConfig, RefusalReason};
use paxbench_core::message::Message;
use paxbench_core::rng::Stream;
use paxbench_core::{NodeId, ProposerId, Time};
use paxbench_quic::{
    Endpoint, EndpointConfig, FaultLayer, LatencySummary, Link, NodeStats, PeerName, RefusedCount,
    Transport,
};
use tracing::{info, warn};

use crate::cache::InstanceCache;
use crate::config::{LearnerFanout, NodeConfig, StorageFailure, StorageMode};
use crate::error::Error;
use crate::storage::{AcceptorStore, DiskSwitch, FaultyDisk, Recovered, StateReader};
use commit::{Commit, hold_unsettled, wait_commit};

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
/// [`MULTI_PAXOS_MAX_FRAME`] with room to spare. The leader role enforces it
/// ([`paxbench_core::leader::MAX_KEYS`]); the load generator refuses configs above it.
pub const MULTI_PAXOS_MAX_KEYS: u64 = paxbench_core::leader::MAX_KEYS as u64;

/// Inbound frames handled before the batch is handed to storage, so one slow disk cannot make a
/// batch (and the latency of its first request) grow without bound.
const MAX_FRAMES_PER_TURN: usize = 4096;

struct Node<T: Transport> {
    id: NodeId,
    endpoint: Endpoint<T>,
    host: NodeHost,
    /// The host's clock starts with the node.
    clock: tokio::time::Instant,
    peers: Vec<Link>,
    /// The node each of `peers` leads to.
    peer_ids: Vec<NodeId>,
    proposers: HashMap<ProposerId, Link>,
    /// When `proposers` is next trimmed of closed links.
    proposers_trim_at: usize,
    /// Clients heard from only through a forwarding node: their replies go back that way.
    forwarded: HashMap<ProposerId, NodeId>,
    /// Messages this node sent itself, not yet delivered.
    local: VecDeque<Message>,
    storage: Option<Box<dyn AcceptorStore>>,
    /// With `wal` storage: where forgotten states are read back.
    reader: Option<Box<dyn StateReader>>,
    /// Which states may leave memory: with `wal` storage, and with `memory` storage under
    /// Multi-Paxos (there only below their key's chosen prefix, and nothing is read back).
    cache: Option<InstanceCache>,
    disk: DiskSwitch,
    memory_storage: bool,
    commit: Option<Commit>,
    crash: CrashPoints,
    /// Whether fault and disk commands from admins are obeyed.
    admin: bool,
    on_storage_failure: StorageFailure,
    /// Set when storage failed and the node must exit: why.
    exit_reason: Option<String>,
    /// Refused frames by kind, sender role and reason.
    refusals: BTreeMap<(&'static str, &'static str, RefusalReason), u64>,
    refusals_unlogged: u64,
    refusal_logged: Option<Instant>,
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
    let recovered = storage.recover()?;
    let protocol = config.protocol.protocol();
    info!(node = %config.id, records = recovered.records.len(), global_promise = %recovered.ranged.global_promise, chosen_prefix_keys = recovered.ranged.chosen_prefix.len(), "restored acceptor state");
    let disk_floor_us = match &config.data_dir {
        Some(dir) if config.storage.is_durable() => {
            let floor = crate::disk_floor::floor(dir)?;
            info!(node = %config.id, p50_us = floor.p50, p99_us = floor.p99, samples = floor.count, "disk floor: append + fdatasync");
            floor
        }
        _ => LatencySummary::default(),
    };
    let Restored {
        host,
        reader,
        cache,
    } = restore(config, storage.as_ref(), recovered)?;
    let disk = DiskSwitch::default();
    let storage: Box<dyn AcceptorStore> = Box::new(FaultyDisk::new(storage, disk.clone()));
    let faults = FaultLayer::new(&config.faults)?;
    // Only elections between nodes need large frames: a client's frames, and those of a node
    // certificate this cluster does not list, stay at the default.
    let endpoint_config = EndpointConfig {
        max_node_frame: if protocol.ranged_phase1() {
            MULTI_PAXOS_MAX_FRAME
        } else {
            EndpointConfig::default().max_frame
        },
        members: Some(config.peers.iter().map(|p| NodeId(p.id)).collect()),
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
        host,
        clock: tokio::time::Instant::now(),
        peers,
        peer_ids: config.peers.iter().map(|p| NodeId(p.id)).collect(),
        proposers: HashMap::new(),
        proposers_trim_at: routes::PROPOSERS_TRIM_MIN,
        forwarded: HashMap::new(),
        local: VecDeque::new(),
        memory_storage: config.storage == StorageMode::Memory,
        storage: Some(storage),
        reader,
        cache,
        disk,
        commit: None,
        crash,
        admin: config.admin,
        on_storage_failure: config.on_storage_failure,
        exit_reason: None,
        refusals: BTreeMap::new(),
        refusals_unlogged: 0,
        refusal_logged: None,
        started: Instant::now(),
        stats: NodeStats {
            node: config.id.0,
            protocol,
            life: paxbench_quic::wire::unix_now_ns(),
            disk_floor_us,
            ..NodeStats::default()
        },
        commit_us: Histogram::new_with_bounds(1, 3_600_000_000, 3).map_err(|e| Error::Config {
            origin: "histogram".into(),
            message: e.to_string(),
        })?,
    };
    info!(node = %config.id, listen = %node.endpoint.transport().local_addr()?, transport = ?config.transport, storage = ?config.storage, %protocol, "serving");
    let now = node.now();
    node.host.start(now);
    node.finish_turn();

    node.serve(&mut inbox, shutdown, config.stats_interval_ms)
        .await;
    let failed = node.exit_reason.take();
    let stats = node.shut_down().await;
    match failed {
        Some(message) => Err(Error::Storage {
            path: config.data_dir.clone().unwrap_or_default(),
            message,
        }),
        None => Ok(stats),
    }
}

/// What a node restarts with.
struct Restored {
    host: NodeHost,
    /// Where forgotten states are read back, with `wal` storage.
    reader: Option<Box<dyn StateReader>>,
    /// Which states may leave memory.
    cache: Option<InstanceCache>,
}

/// The node host as the store left it, the reader of forgotten states, and the cache that
/// says which states may leave memory. A Multi-Paxos node also holds every checkpointed state
/// its chosen prefix does not cover.
fn restore(
    config: &NodeConfig,
    storage: &dyn AcceptorStore,
    recovered: Recovered,
) -> Result<Restored, Error> {
    let protocol = config.protocol.protocol();
    let reader = storage.reader();
    let mut cache = match &reader {
        Some(reader) => {
            let mut cache = InstanceCache::new(config.cache_instances, reader.checkpointed() > 0);
            // What the log held after the checkpoint stays until a checkpoint includes it.
            cache.committed(&recovered.records, recovered.position);
            Some(cache)
        }
        None => protocol
            .ranged_phase1()
            .then(|| InstanceCache::new(config.cache_instances, false)),
    };
    // The role's randomness (election timeouts, backoff) is seeded from the moment and the
    // process, so that nodes started together do not draw alike.
    let seed = paxbench_quic::wire::unix_now_ns() ^ (u64::from(std::process::id()) << 32);
    let host_config = NodeHostConfig {
        id: config.id,
        members: std::iter::once(config.id)
            .chain(config.peers.iter().map(|peer| NodeId(peer.id)))
            .collect(),
        acceptor: AcceptorConfig {
            reject_mode: config.reject_mode,
            notify_learners: config.learner_fanout == LearnerFanout::All,
        },
        phase2_quorum: config.phase2_quorum,
        protocol: config.protocol.clone(),
        seed: Stream::Leader(config.id.0).seed(seed),
    };
    let mut host =
        NodeHost::restore(host_config, recovered.records, &recovered.ranged).map_err(|e| {
            Error::Config {
                origin: "leader".into(),
                message: e.to_string(),
            }
        })?;
    if protocol.ranged_phase1()
        && let (Some(reader), Some(cache)) = (&reader, cache.as_mut())
    {
        hold_unsettled(&mut host, reader.as_ref(), cache)?;
    }
    Ok(Restored {
        host,
        reader,
        cache,
    })
}

impl<T: Transport + std::fmt::Debug> Node<T> {
    /// Serves frames, commits and timers until `shutdown` resolves or the endpoint closes,
    /// logging a stats line every `stats_interval_ms` (0: never).
    async fn serve(
        &mut self,
        inbox: &mut paxbench_quic::Inbox,
        shutdown: impl Future<Output = ()>,
        stats_interval_ms: u64,
    ) {
        let stats_period = Duration::from_millis(stats_interval_ms.max(1));
        let mut stats_tick =
            tokio::time::interval_at(tokio::time::Instant::now() + stats_period, stats_period);
        tokio::pin!(shutdown);
        while self.exit_reason.is_none() {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                finished = wait_commit(&mut self.commit) => {
                    self.commit = None;
                    self.finish_commit(finished);
                    self.finish_turn();
                }
                () = host_timer(routes::wake(&self.host, self.clock)) => {
                    self.timeout();
                    self.finish_turn();
                }
                inbound = inbox.recv() => {
                    let Some(inbound) = inbound else { break };
                    let now = self.now();
                    self.handle(now, inbound);
                    for _ in 1..MAX_FRAMES_PER_TURN {
                        match inbox.try_recv() {
                            Ok(inbound) => self.handle(now, inbound),
                            Err(_) => break,
                        }
                    }
                    self.finish_turn();
                }
                _ = stats_tick.tick(), if stats_interval_ms > 0 => {
                    let stats = self.stats();
                    info!(target: "paxbench_node::stats", "{}", stats_line(&stats));
                }
            }
        }
    }

    /// Finishes the batch in flight, persists and answers what was already handled, and
    /// closes connections gracefully. Returns the final stats.
    async fn shut_down(mut self) -> NodeStats {
        info!(node = %self.id, "shutting down: finishing the batch in flight");
        if let Some(commit) = self.commit.take() {
            self.finish_commit(commit.await);
        }
        self.finish_turn();
        if let Some(commit) = self.commit.take() {
            self.finish_commit(commit.await);
        }
        let now = self.now();
        self.settle(now);
        let stats = self.stats();
        self.proposers.clear();
        self.peers.clear();
        // Let the link writers flush what was just queued before the connections close.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.endpoint.shutdown().await;
        info!(node = %stats.node, "{}", stats_line(&stats));
        stats
    }
}

/// Resolves when the host's timer is due; never without one.
async fn host_timer(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One line with every counter, for logs.
pub fn stats_line(stats: &NodeStats) -> String {
    let t = &stats.transport;
    format!(
        "stats node={} protocol={} up={}s paxos_in={} paxos_out={} frames_in={} frames_out={} writes={} \
         batches={} records={} max_batch={} commit_p50={}us commit_p99={}us \
         disk_floor_p50={}us chosen={} held={} most_held={} evicted={} store_reads={} \
         checkpoints={} refused_peers={} refused={} malformed_frames={} dropped={} storage_failed={}",
        stats.node,
        stats.protocol,
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
        stats.refused_total(),
        t.malformed_frames,
        t.dropped,
        stats.storage_failed,
    )
}

impl<T: Transport + std::fmt::Debug> Node<T> {
    fn now(&self) -> Time {
        routes::host_time(self.clock)
    }

    fn stats(&self) -> NodeStats {
        let h = &self.commit_us;
        let leader = self.host.leader();
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
            chosen: self.host.chosen(),
            held_instances: self.host.held() as u64,
            most_held: self
                .cache
                .as_ref()
                .map_or(self.host.held(), InstanceCache::most_held) as u64,
            evicted: self.cache.as_ref().map_or(0, InstanceCache::evicted),
            checkpoints: self
                .reader
                .as_ref()
                .map_or(0, |reader| reader.checkpoints()),
            leading: leader.filter(|l| l.is_leading()).and_then(|l| l.ballot()),
            leader: leader.map(|l| l.stats()),
            refused: self
                .refusals
                .iter()
                .map(|(&(kind, role, reason), &count)| RefusedCount {
                    kind: kind.into(),
                    role: role.into(),
                    reason,
                    count,
                })
                .collect(),
            ..self.stats.clone()
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
    let storage = crate::storage::open(config.storage, config.data_dir.as_deref())?;
    let me = PeerName::Node(config.id);
    match config.transport {
        paxbench_quic::TransportKind::Quic => {
            let identity = node_identity(config)?;
            let transport = paxbench_quic::QuicTransport::bind(config.listen, &identity, me)?;
            run_node(config, transport, storage, crash, shutdown).await
        }
        paxbench_quic::TransportKind::Tcp => {
            let auth = node_tcp_auth(config)?;
            if matches!(auth, paxbench_quic::TcpAuth::Insecure) {
                warn!(node = %config.id, "insecure_tcp: TCP peers are taken at their word; any local user can claim to be any member");
            }
            let transport = paxbench_quic::TcpTransport::bind(config.listen, me, auth)?;
            run_node(config, transport, storage, crash, shutdown).await
        }
    }
}

/// The node's QUIC identity, checked to name the node its config's `id` says it is.
pub(crate) fn node_identity(config: &NodeConfig) -> Result<paxbench_quic::Identity, Error> {
    let me = PeerName::Node(config.id);
    let Some(tls) = &config.tls else {
        return Err(Error::Config {
            origin: "config".into(),
            message: "QUIC needs the `tls` files".into(),
        });
    };
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
    Ok(identity)
}

/// How the node proves itself over TCP: the members' secret, or nothing (`insecure_tcp`).
pub(crate) fn node_tcp_auth(config: &NodeConfig) -> Result<paxbench_quic::TcpAuth, Error> {
    Ok(match &config.tcp_secret {
        Some(path) => paxbench_quic::TcpAuth::Secret(paxbench_quic::TcpSecret::load(path)?),
        None => paxbench_quic::TcpAuth::Insecure,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use paxbench_core::acceptor::{AcceptorState, RangedState, Record};
    use paxbench_core::{Instance, NodeId, ProposalId};

    use super::*;
    use crate::storage::wal::CheckpointPolicy;
    use crate::storage::{WalOptions, WalStorage};

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
        // Slots 0..4 of key 1 are known chosen; key 2 has no prefix.
        let ranged = RangedState {
            global_promise: ProposalId::ZERO,
            chosen_prefix: vec![(1, 4)],
        };
        let config = NodeHostConfig {
            id: NodeId(1),
            members: vec![NodeId(1)],
            acceptor: AcceptorConfig::default(),
            phase2_quorum: 2,
            protocol: paxbench_core::ProtocolConfig::Vanilla,
            seed: 1,
        };
        let mut host = NodeHost::restore(config, Vec::new(), &ranged).unwrap();
        hold_unsettled(&mut host, reader.as_ref(), &mut cache).unwrap();
        let mut held: Vec<Instance> = host.acceptor().states().map(|(i, _)| i).collect();
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
