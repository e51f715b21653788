//! The node's configuration: a YAML file (`paxbench-node run --config node.yaml`) whose every
//! field is also a command-line flag; flags override the file. Unknown fields are refused, and
//! errors name the file, line, column and field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use clap::Args;
use paxbench_core::acceptor::RejectMode;
use paxbench_core::{NodeId, Protocol, ProtocolConfig, quorum};
use paxbench_quic::{Address, FaultSpec, TlsFiles, TransportKind};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::Error;
pub use crate::storage::StorageMode;

/// What a node does once its storage failed (its memory may then be ahead of its disk, so it
/// must never reply again).
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StorageFailure {
    /// Log why and exit with a non-zero status, so a supervisor sees it and restarts it.
    #[default]
    Exit,
    /// Stay up for inspection: no Paxos reply, no leader role, no answer to pings; the stats
    /// report `storage_failed`.
    Stay,
}

/// Where an acceptor's ACCEPTED goes.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LearnerFanout {
    /// To the proposer and to every node's learner, as the classic description has it.
    #[default]
    All,
    /// To the proposer only, which then is the only learner: n × n fewer messages per decision.
    Proposer,
}

/// The leader role's settings on a node (`leader:`, or `--leader '{…}'`), with
/// `protocol: multi-paxos`; every node of a cluster needs the same ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeaderSection {
    /// Milliseconds between the leader's heartbeats.
    pub heartbeat_ms: u64,
    /// A follower that hears no leader for this long (up to twice it, at random) campaigns.
    pub election_timeout_ms: u64,
    /// How long a campaign waits for its phase-1 quorum.
    pub phase1_timeout_ms: u64,
    /// How long an entry waits for its phase-2 quorum before it is sent again.
    pub phase2_timeout_ms: u64,
    /// The most requests in one ACCEPT batch.
    pub batch: usize,
    /// Batches in flight before requests wait (and so form larger batches).
    pub pipeline: usize,
    /// What a follower does with a request: `redirect` the client or `forward` it.
    pub forward: paxbench_core::leader::ForwardMode,
    /// The node that campaigns at once at the start; unset: whoever times out first.
    pub initial: Option<u32>,
    /// Send phase 2 only to a phase-2 quorum of the fastest nodes.
    pub thrifty: bool,
    /// PROMISE-ALLs a campaign waits for; unset: a majority of the cluster.
    pub phase1_quorum: Option<usize>,
}

impl Default for LeaderSection {
    fn default() -> Self {
        let core = paxbench_core::leader::LeaderConfig::new(Vec::new());
        Self {
            heartbeat_ms: core.heartbeat.as_millis() as u64,
            election_timeout_ms: core.election_timeout.as_millis() as u64,
            phase1_timeout_ms: core.phase1_timeout.as_millis() as u64,
            phase2_timeout_ms: core.phase2_timeout.as_millis() as u64,
            batch: core.batch,
            pipeline: core.pipeline,
            forward: core.forward,
            initial: None,
            thrifty: core.thrifty,
            phase1_quorum: None,
        }
    }
}

/// Another node of the cluster.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerAddr {
    /// Its node id.
    pub id: u32,
    /// Its address: `IP:PORT`, or `NAME:PORT`, resolved when dialled and at every redial.
    pub addr: Address,
}

impl FromStr for PeerAddr {
    type Err = String;

    /// `ID=ADDRESS`, for example `2=127.0.0.1:7002`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (id, addr) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not ID=ADDRESS (for example 2=127.0.0.1:7002)"))?;
        Ok(PeerAddr {
            id: id.parse().map_err(|_| format!("`{id}` is not a node id"))?,
            addr: addr.parse()?,
        })
    }
}

/// TLS files, as given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The cluster CA certificate (PEM).
    #[arg(long = "ca", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// This node's certificate (PEM).
    #[arg(long = "cert", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// This node's private key (PEM).
    #[arg(long = "key", value_name = "FILE")]
    pub key: Option<PathBuf>,
}

/// The node's settings as written in the file or on the command line; every field is optional
/// here, and [`NodeSettings::resolve`] checks that the required ones are set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    /// This node's id (1, 2, …); it must match the node-N name in its certificate.
    #[arg(long)]
    pub id: Option<u32>,
    /// Without `id`: take it from the host name's trailing number plus one, as a Kubernetes
    /// StatefulSet names its pods (`paxbench-node-0` is node 1). `{id}` in the TLS paths
    /// becomes the id, so one config serves every node.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    #[serde(default)]
    pub id_from_hostname: Option<bool>,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Another node, as ID=ADDRESS; repeat for each. Learner fan-out goes to them. The list
    /// may hold this node too (one list for the whole cluster): its own entry is skipped.
    #[arg(long = "peer", value_name = "ID=ADDR")]
    #[serde(default)]
    pub peers: Vec<PeerAddr>,
    /// Directory of the durable store.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// `wal` (the default; `durable` means it), `redb`, or `memory` (unsafe across crashes).
    #[arg(long, value_parser = parse_yaml_scalar::<StorageMode>)]
    pub storage: Option<StorageMode>,
    /// Acceptor states held in memory (`wal` storage); older ones are read back from the
    /// checkpoint when needed. Default 131072.
    #[arg(long, value_name = "N")]
    pub cache_instances: Option<usize>,
    /// `quic` (mutual TLS) or `tcp` (plain, loopback only).
    #[arg(long, value_parser = parse_yaml_scalar::<TransportKind>)]
    pub transport: Option<TransportKind>,
    /// TLS files (QUIC only).
    #[command(flatten)]
    #[serde(default)]
    pub tls: TlsSection,
    /// Below-promise requests: `silent` (ignored) or `nack` (answered with the promise).
    #[arg(long, value_parser = parse_yaml_scalar::<RejectMode>)]
    pub reject_mode: Option<RejectMode>,
    /// ACCEPTED to `all` learners or only to the `proposer`.
    #[arg(long, value_parser = parse_yaml_scalar::<LearnerFanout>)]
    pub learner_fanout: Option<LearnerFanout>,
    /// ACCEPTEDs this node's learner waits for before it counts a value chosen: the
    /// proposers' phase-2 quorum under flexible quorums. Unset: a majority of the cluster.
    #[arg(long, value_name = "N")]
    pub phase2_quorum: Option<usize>,
    /// `vanilla` (proposers run both phases) or `multi-paxos` (this node hosts a leader role
    /// beside its acceptor and learner, and serves clients' requests).
    #[arg(long, value_parser = parse_yaml_scalar::<Protocol>)]
    pub protocol: Option<Protocol>,
    /// The leader role's settings, as inline YAML (`{batch: 64, initial: 1}`); unset fields
    /// keep their defaults.
    #[arg(long, value_name = "YAML", value_parser = parse_yaml_scalar::<LeaderSection>)]
    pub leader: Option<LeaderSection>,
    /// Log filter, as in RUST_LOG (`info`, `paxbench_node=debug`, …).
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Milliseconds between stats lines; 0 turns them off.
    #[arg(long, value_name = "MS")]
    pub stats_interval_ms: Option<u64>,
    /// Fault settings at start, as inline YAML (`{all: {drop: 0.01}}`).
    #[arg(long, value_name = "YAML", value_parser = parse_yaml_scalar::<FaultSpec>)]
    pub faults: Option<FaultSpec>,
    /// Plain TCP: the file holding the members' shared secret (`tcp.secret` from
    /// `paxbench-node certs`), with which peers prove their names.
    #[arg(long, value_name = "FILE")]
    pub tcp_secret: Option<PathBuf>,
    /// Plain TCP without a secret: any local user can then claim to be any member. Logged as
    /// a warning.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub insecure_tcp: Option<bool>,
    /// What to do once storage fails: `exit` (default) or `stay` up for inspection.
    #[arg(long, value_parser = parse_yaml_scalar::<StorageFailure>)]
    pub on_storage_failure: Option<StorageFailure>,
    /// Obey fault and disk commands from `admin-N` certificates (default `true`); `false`
    /// refuses them from everyone, for a cluster that others share.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub admin: Option<bool>,
    /// Run only on these CPUs (`--cpus 1 --cpus 2`, or `cpus: [1, 2]`); unset: wherever the
    /// scheduler likes.
    #[arg(long = "cpus", value_name = "CPU")]
    #[serde(default)]
    pub cpus: Vec<usize>,
}

/// Parses a flag value with the same YAML rules as the file, so `--storage memory` and
/// `storage: memory` accept the same words.
pub fn parse_yaml_scalar<T: DeserializeOwned>(value: &str) -> Result<T, String> {
    serde_saphyr::from_str(value).map_err(|e| first_line(&e.to_string()))
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).to_string()
}

/// Acceptor states a `wal` node holds in memory unless told otherwise: about 25 MiB.
pub const DEFAULT_CACHE_INSTANCES: usize = 1 << 17;

/// A node's complete, checked settings.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeConfig {
    /// This node.
    pub id: NodeId,
    /// Where it listens.
    pub listen: SocketAddr,
    /// The other nodes.
    pub peers: Vec<PeerAddr>,
    /// The store's directory (durable mode).
    pub data_dir: Option<PathBuf>,
    /// Storage mode.
    pub storage: StorageMode,
    /// Acceptor states held in memory, with `wal` storage.
    pub cache_instances: usize,
    /// Transport.
    pub transport: TransportKind,
    /// TLS files (QUIC).
    pub tls: Option<TlsFiles>,
    /// Rejection mode.
    pub reject_mode: RejectMode,
    /// Learner fan-out.
    pub learner_fanout: LearnerFanout,
    /// ACCEPTEDs the learner waits for.
    pub phase2_quorum: usize,
    /// The protocol, with the leader role's settings (checked) under Multi-Paxos.
    pub protocol: ProtocolConfig,
    /// Log filter.
    pub log_level: String,
    /// Stats line period in milliseconds (0: off).
    pub stats_interval_ms: u64,
    /// Faults at start.
    pub faults: FaultSpec,
    /// Whether fault and disk commands from admins are obeyed.
    pub admin: bool,
    /// What to do once storage fails.
    pub on_storage_failure: StorageFailure,
    /// Plain TCP: the shared secret's file, or `None` when `insecure_tcp` was given.
    pub tcp_secret: Option<PathBuf>,
    /// CPUs to run on (empty: not pinned).
    pub cpus: Vec<usize>,
}

impl NodeSettings {
    /// Reads a settings file.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigFile {
            path: path.into(),
            source,
        })?;
        serde_saphyr::from_str(&text).map_err(|e| Error::Config {
            origin: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// These settings with every field that `overrides` sets replaced.
    pub fn overridden_by(self, overrides: NodeSettings) -> NodeSettings {
        NodeSettings {
            id: overrides.id.or(self.id),
            id_from_hostname: overrides.id_from_hostname.or(self.id_from_hostname),
            listen: overrides.listen.or(self.listen),
            peers: if overrides.peers.is_empty() {
                self.peers
            } else {
                overrides.peers
            },
            data_dir: overrides.data_dir.or(self.data_dir),
            storage: overrides.storage.or(self.storage),
            cache_instances: overrides.cache_instances.or(self.cache_instances),
            transport: overrides.transport.or(self.transport),
            tls: TlsSection {
                ca: overrides.tls.ca.or(self.tls.ca),
                cert: overrides.tls.cert.or(self.tls.cert),
                key: overrides.tls.key.or(self.tls.key),
            },
            reject_mode: overrides.reject_mode.or(self.reject_mode),
            learner_fanout: overrides.learner_fanout.or(self.learner_fanout),
            phase2_quorum: overrides.phase2_quorum.or(self.phase2_quorum),
            protocol: overrides.protocol.or(self.protocol),
            leader: overrides.leader.or(self.leader),
            log_level: overrides.log_level.or(self.log_level),
            stats_interval_ms: overrides.stats_interval_ms.or(self.stats_interval_ms),
            faults: overrides.faults.or(self.faults),
            admin: overrides.admin.or(self.admin),
            on_storage_failure: overrides.on_storage_failure.or(self.on_storage_failure),
            tcp_secret: overrides.tcp_secret.or(self.tcp_secret),
            insecure_tcp: overrides.insecure_tcp.or(self.insecure_tcp),
            cpus: if overrides.cpus.is_empty() {
                self.cpus
            } else {
                overrides.cpus
            },
        }
    }

    /// Checks that required fields are set and consistent. `origin` names where the settings
    /// came from, for the error message.
    pub fn resolve(self, origin: &str) -> Result<NodeConfig, Error> {
        let missing = |field: &str, flag: &str| Error::Config {
            origin: origin.into(),
            message: format!("field `{field}` is required (set it in the file or with --{flag})"),
        };
        let invalid = |message: String| Error::Config {
            origin: origin.into(),
            message,
        };
        let id = match (self.id, self.id_from_hostname) {
            (Some(id), _) => id,
            (None, Some(true)) => {
                let host = hostname();
                id_from_hostname(&host).ok_or_else(|| {
                    invalid(format!(
                        "field `id_from_hostname`: the host name {host:?} does not end in -N \
                         (a StatefulSet pod's ordinal); set `id` instead"
                    ))
                })?
            }
            (None, _) => return Err(missing("id", "id")),
        };
        if id == 0 {
            return Err(invalid("field `id`: node ids start at 1".into()));
        }
        let with_id = |path: Option<PathBuf>| {
            path.map(|p| PathBuf::from(p.to_string_lossy().replace("{id}", &id.to_string())))
        };
        let mut tls = self.tls;
        tls.cert = with_id(tls.cert);
        tls.key = with_id(tls.key);
        let peers: Vec<PeerAddr> = self.peers.into_iter().filter(|p| p.id != id).collect();
        let listen = self.listen.ok_or_else(|| missing("listen", "listen"))?;
        let storage = self.storage.unwrap_or_default();
        let transport = self.transport.unwrap_or_default();
        let tcp_secret = match (transport, self.tcp_secret, self.insecure_tcp) {
            (TransportKind::Tcp, Some(_), Some(true)) => {
                return Err(invalid(
                    "fields `tcp_secret` and `insecure_tcp`: give one, not both".into(),
                ));
            }
            (TransportKind::Tcp, None, None | Some(false)) => {
                return Err(invalid(
                    "field `tcp_secret` is required with `transport: tcp`: the file of the \
                     members' shared secret (`tcp.secret` from `paxbench-node certs`), so that \
                     peers prove their names; or set `insecure_tcp: true` to take them at \
                     their word"
                        .into(),
                ));
            }
            (TransportKind::Tcp, secret, _) => secret,
            (TransportKind::Quic, _, _) => None,
        };
        if storage.is_durable() && self.data_dir.is_none() {
            return Err(missing("data_dir", "data-dir"));
        }
        let mut seen = vec![id];
        for peer in &peers {
            if seen.contains(&peer.id) {
                return Err(invalid(format!(
                    "field `peers`: node id {} appears twice",
                    peer.id
                )));
            }
            seen.push(peer.id);
        }
        let cluster = peers.len() + 1;
        let phase2_quorum = self.phase2_quorum.unwrap_or(quorum(cluster));
        if phase2_quorum == 0 || phase2_quorum > cluster {
            return Err(invalid(format!(
                "field `phase2_quorum`: {phase2_quorum} does not fit a cluster of {cluster} \
                 nodes (1..={cluster})"
            )));
        }
        let protocol = match (self.protocol.unwrap_or_default(), self.leader) {
            (Protocol::Vanilla, Some(_)) => {
                return Err(invalid(
                    "field `leader` needs `protocol: multi-paxos`: a vanilla node has no \
                     leader role"
                        .into(),
                ));
            }
            (Protocol::Vanilla, None) => ProtocolConfig::Vanilla,
            (Protocol::MultiPaxos, section) => ProtocolConfig::MultiPaxos(
                leader_config(section.unwrap_or_default(), id, &peers, phase2_quorum)
                    .map_err(invalid)?,
            ),
        };
        let tls = match transport {
            TransportKind::Quic => Some(TlsFiles {
                ca: tls.ca.ok_or_else(|| missing("tls.ca", "ca"))?,
                cert: tls.cert.ok_or_else(|| missing("tls.cert", "cert"))?,
                key: tls.key.ok_or_else(|| missing("tls.key", "key"))?,
            }),
            TransportKind::Tcp => None,
        };
        Ok(NodeConfig {
            id: NodeId(id),
            listen,
            peers,
            data_dir: self.data_dir,
            storage,
            cache_instances: self
                .cache_instances
                .unwrap_or(DEFAULT_CACHE_INSTANCES)
                .max(1),
            transport,
            tls,
            reject_mode: self.reject_mode.unwrap_or_default(),
            learner_fanout: self.learner_fanout.unwrap_or_default(),
            phase2_quorum,
            protocol,
            log_level: self.log_level.unwrap_or_else(|| "info".into()),
            stats_interval_ms: self.stats_interval_ms.unwrap_or(10_000),
            faults: self.faults.unwrap_or_default(),
            admin: self.admin.unwrap_or(true),
            on_storage_failure: self.on_storage_failure.unwrap_or_default(),
            tcp_secret,
            cpus: self.cpus,
        })
    }
}

/// The core's leader settings for node `id` among `peers`, or what is wrong, by field.
fn leader_config(
    section: LeaderSection,
    id: u32,
    peers: &[PeerAddr],
    phase2: usize,
) -> Result<paxbench_core::leader::LeaderConfig, String> {
    use std::time::Duration;
    let mut nodes: Vec<NodeId> = std::iter::once(id)
        .chain(peers.iter().map(|p| p.id))
        .map(NodeId)
        .collect();
    nodes.sort_unstable();
    let cluster = nodes.len();
    let phase1 = section.phase1_quorum.unwrap_or(quorum(cluster));
    if phase1 == 0 || phase1 > cluster {
        return Err(format!(
            "field `leader.phase1_quorum`: {phase1} does not fit a cluster of {cluster} nodes \
             (1..={cluster})"
        ));
    }
    if let Some(initial) = section.initial
        && !nodes.contains(&NodeId(initial))
    {
        return Err(format!(
            "field `leader.initial`: node {initial} is not in the cluster ({})",
            nodes
                .iter()
                .map(|n| n.0.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for (field, value) in [
        ("heartbeat_ms", section.heartbeat_ms),
        ("election_timeout_ms", section.election_timeout_ms),
        ("phase1_timeout_ms", section.phase1_timeout_ms),
        ("phase2_timeout_ms", section.phase2_timeout_ms),
        ("batch", section.batch as u64),
        ("pipeline", section.pipeline as u64),
    ] {
        if value == 0 {
            return Err(format!("field `leader.{field}` must be at least 1"));
        }
    }
    let mut config = paxbench_core::leader::LeaderConfig::new(nodes);
    config.quorums = paxbench_core::Quorums { phase1, phase2 };
    config.heartbeat = Duration::from_millis(section.heartbeat_ms);
    config.election_timeout = Duration::from_millis(section.election_timeout_ms);
    config.phase1_timeout = Duration::from_millis(section.phase1_timeout_ms);
    config.phase2_timeout = Duration::from_millis(section.phase2_timeout_ms);
    config.batch = section.batch;
    config.pipeline = section.pipeline;
    config.forward = section.forward;
    config.initial_leader = section.initial.map(NodeId);
    config.thrifty = section.thrifty;
    Ok(config)
}

/// The machine's host name (a pod's name, in Kubernetes).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
}

/// Node `k + 1` for a host named `…-k`.
fn id_from_hostname(host: &str) -> Option<u32> {
    let (_, ordinal) = host.rsplit_once('-')?;
    ordinal.parse::<u32>().ok()?.checked_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statefulset_ordinals_are_node_ids_from_one() {
        assert_eq!(id_from_hostname("paxbench-node-0"), Some(1));
        assert_eq!(id_from_hostname("paxbench-node-12"), Some(13));
        assert_eq!(id_from_hostname("laptop"), None);
        assert_eq!(id_from_hostname("node-x"), None);
    }

    #[test]
    fn one_config_serves_every_node() {
        let settings = parse(
            "listen: 0.0.0.0:7000\nstorage: memory\npeers:\n  - {id: 1, addr: n-0.n:7000}\n  - {id: 2, addr: n-1.n:7000}\ntls:\n  ca: /c/ca.pem\n  cert: /c/node-{id}.pem\n  key: /c/node-{id}.key\n",
        )
        .unwrap();
        let config = NodeSettings {
            id: Some(2),
            ..settings
        }
        .resolve("test")
        .unwrap();
        assert_eq!(config.peers.len(), 1, "its own entry is skipped");
        assert_eq!(config.peers[0].addr.to_string(), "n-0.n:7000");
        let tls = config.tls.unwrap();
        assert_eq!(tls.cert, PathBuf::from("/c/node-2.pem"));
        assert_eq!(tls.key, PathBuf::from("/c/node-2.key"));
    }

    fn parse(yaml: &str) -> Result<NodeSettings, String> {
        serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_file_parses_and_flags_override_it() {
        let file = parse(
            "id: 1\nlisten: 127.0.0.1:7001\npeers:\n  - id: 2\n    addr: 127.0.0.1:7002\n\
             data_dir: /tmp/n1\nstorage: memory\ntransport: tcp\ntcp_secret: /c/tcp.secret\n\
             reject_mode: nack\n\
             learner_fanout: proposer\nfaults:\n  all:\n    drop: 0.1\n",
        )
        .unwrap();
        let flags = NodeSettings {
            listen: Some("127.0.0.1:9000".parse().unwrap()),
            ..NodeSettings::default()
        };
        let config = file.overridden_by(flags).resolve("test").unwrap();
        assert_eq!(config.id, NodeId(1));
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.storage, StorageMode::Memory);
        assert_eq!(config.reject_mode, RejectMode::Nack);
        assert_eq!(config.learner_fanout, LearnerFanout::Proposer);
        assert_eq!(
            config.peers,
            vec![PeerAddr {
                id: 2,
                addr: "127.0.0.1:7002".parse().unwrap()
            }]
        );
        assert!((config.faults.all.drop - 0.1).abs() < 1e-12);
        assert!(config.tls.is_none());
        assert_eq!(config.tcp_secret, Some(PathBuf::from("/c/tcp.secret")));
        assert!(
            config.admin,
            "admin commands are obeyed unless switched off"
        );
        assert_eq!(config.on_storage_failure, StorageFailure::Exit);
    }

    #[test]
    fn plain_tcp_needs_a_secret_or_an_explicit_insecure_setting() {
        let tcp = "id: 1\nlisten: 127.0.0.1:7001\ntransport: tcp\nstorage: memory\n";
        let err = parse(tcp)
            .unwrap()
            .resolve("n.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("n.yaml") && err.contains("tcp_secret"),
            "{err}"
        );
        let insecure = parse(&format!("{tcp}insecure_tcp: true\n")).unwrap();
        assert_eq!(insecure.resolve("n.yaml").unwrap().tcp_secret, None);
        let both = parse(&format!("{tcp}insecure_tcp: true\ntcp_secret: /s\n")).unwrap();
        assert!(both.resolve("n.yaml").is_err());
    }

    #[test]
    fn errors_name_the_line_and_field() {
        let err = parse("id: 1\nlisten: 127.0.0.1:7001\nstorage: floppy\n").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
        let err = parse("id: 1\nlisten_on: 127.0.0.1:7001\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("listen_on"), "{err}");
        let err = NodeSettings::default()
            .resolve("node.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("node.yaml") && err.contains("`id`"), "{err}");
        let quic_without_tls = parse("id: 1\nlisten: 127.0.0.1:1\nstorage: memory\n").unwrap();
        let err = quic_without_tls
            .resolve("node.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls.ca"), "{err}");
    }

    #[test]
    fn the_learner_quorum_defaults_to_a_majority_and_must_fit_the_cluster() {
        let three = "id: 1\nlisten: 127.0.0.1:7001\ntransport: tcp\ninsecure_tcp: true\nstorage: memory\npeers:\n  - {id: 2, addr: 127.0.0.1:7002}\n  - {id: 3, addr: 127.0.0.1:7003}\n";
        let config = parse(three).unwrap().resolve("test").unwrap();
        assert_eq!(config.phase2_quorum, 2);
        let flexible = parse(&format!("{three}phase2_quorum: 1\n")).unwrap();
        assert_eq!(flexible.resolve("test").unwrap().phase2_quorum, 1);
        let err = parse(&format!("{three}phase2_quorum: 4\n"))
            .unwrap()
            .resolve("n.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("n.yaml") && err.contains("phase2_quorum"),
            "{err}"
        );
    }

    #[test]
    fn peers_parse_from_flags() {
        assert_eq!(
            "2=127.0.0.1:7002".parse::<PeerAddr>().unwrap(),
            PeerAddr {
                id: 2,
                addr: "127.0.0.1:7002".parse().unwrap()
            }
        );
        assert!("2:127.0.0.1".parse::<PeerAddr>().is_err());
        assert!(parse_yaml_scalar::<StorageMode>("memory").is_ok());
        assert!(parse_yaml_scalar::<StorageMode>("floppy").is_err());
    }
}
