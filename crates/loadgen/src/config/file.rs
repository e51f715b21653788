//! The bench config file as a user writes it: every section and field, their defaults, and
//! which fields sweep. Unknown fields are refused when the file is parsed.

use std::path::PathBuf;
use std::time::Duration;

use paxbench_core::acceptor::RejectMode;
use paxbench_core::backoff::BackoffPolicy;
use paxbench_core::id::IdSchemeKind;
use paxbench_core::leader::ForwardMode;
use paxbench_core::sim::Latency;
use paxbench_node::{LearnerFanout, PeerAddr, StorageMode};
use paxbench_quic::{Carrier, TransportKind};
use serde::{Deserialize, Serialize};

use super::faults::FaultStep;
use super::sweep::Sweep;
use super::zones::ZonesSpec;

/// Where a scenario runs.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// Node processes that `paxbench` starts on 127.0.0.1 and stops afterwards.
    #[default]
    Spawn,
    /// Nodes that are already running.
    Attach,
    /// The core's deterministic simulator, in virtual time.
    Sim,
}

/// A bench config file, as written.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchFile {
    /// Names the results folder and the report.
    pub name: String,
    /// What the scenario shows, for the report.
    #[serde(default)]
    pub description: String,
    /// Seeds every random choice: keys, backoff jitter, clock skew, the simulator.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// The cluster.
    #[serde(default)]
    pub target: TargetSpec,
    /// What the proposers do.
    #[serde(default)]
    pub workload: WorkloadSpec,
    /// How each proposer behaves.
    #[serde(default)]
    pub proposer: ProposerSpec,
    /// Faults, in time order.
    #[serde(default)]
    pub faults: Vec<FaultStep>,
    /// Safety violations that are the expected finding (the naive-timestamp demonstration)
    /// rather than a failure: `true` for every scenario, or a list of ID schemes.
    #[serde(default)]
    pub expect_violations: ExpectViolations,
    /// Measurement settings.
    #[serde(default)]
    pub measure: MeasureSpec,
}

fn default_seed() -> u64 {
    1
}

/// Where safety violations are expected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExpectViolations {
    /// In every scenario, or in none.
    All(bool),
    /// In scenarios using these ID schemes.
    Schemes(Vec<IdSchemeKind>),
}

impl Default for ExpectViolations {
    fn default() -> Self {
        ExpectViolations::All(false)
    }
}

impl ExpectViolations {
    pub(super) fn applies_to(&self, scheme: IdSchemeKind) -> bool {
        match self {
            ExpectViolations::All(all) => *all,
            ExpectViolations::Schemes(schemes) => schemes.contains(&scheme),
        }
    }
}

/// The cluster a scenario runs against.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TargetSpec {
    /// `spawn`, `attach` or `sim`.
    pub kind: TargetKind,
    /// Nodes to spawn or simulate.
    pub nodes: u32,
    /// Spawned nodes' storage: `memory` or `durable`.
    pub storage: Sweep<StorageMode>,
    /// Below-promise requests: `silent` or `nack`.
    pub reject_mode: Sweep<RejectMode>,
    /// ACCEPTED to `all` learners or only to the `proposer`.
    pub learner_fanout: Sweep<LearnerFanout>,
    /// `quic` or `tcp`.
    pub transport: Sweep<TransportKind>,
    /// `framed` (one shared stream per node) or `stream-per-request`.
    pub carrier: Sweep<Carrier>,
    /// Running nodes to attach to.
    pub attach: Option<AttachSpec>,
    /// The simulated network and disk.
    pub sim: SimSpec,
    /// CPUs to pin the generator and the spawned nodes to; `{}` (the default) pins nothing.
    /// Sweep `[{}, {generator: [0], nodes: [1]}]` to see what pinning does to the spread.
    pub cpus: Sweep<CpuPins>,
    /// WAN zones: where each node and proposer is, and the round trips between zones, on
    /// every target. Unset or `{}`: no zones, no delay added. Sweep `[{}, {preset: …}]` to
    /// compare.
    pub zones: Sweep<ZonesSpec>,
    /// Quorum sizes: `{phase1: Q1, phase2: Q2}` (flexible quorums, FPaxos); an unset phase
    /// waits for a majority. Q1 + Q2 must exceed the nodes unless `expect_violations` says the
    /// broken agreement is the finding. Sweepable.
    pub quorum: Sweep<QuorumSpec>,
    /// `vanilla` (the proposers run both phases per instance) or `multi-paxos` (a stable
    /// leader on the nodes; the proposers become its clients). Sweepable.
    pub protocol: Sweep<Protocol>,
    /// Multi-Paxos leader settings.
    pub leader: LeaderSpec,
}

pub use paxbench_core::Protocol;

/// Multi-Paxos leader settings (`target.leader`), used when `protocol: multi-paxos`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeaderSpec {
    /// Milliseconds between the leader's heartbeats.
    pub heartbeat_ms: f64,
    /// A follower that hears no leader for this long (up to twice it, at random) campaigns.
    pub election_timeout_ms: f64,
    /// The most requests in one ACCEPT batch. Sweepable: `[1, 8, 64]` shows what batching buys.
    pub batch: Sweep<u32>,
    /// Batches in flight before requests wait (and so form larger batches).
    pub pipeline: u32,
    /// What a follower does with a request: `redirect` the client or `forward` it.
    pub forward: ForwardMode,
    /// The node that campaigns at once at the start; unset: whoever times out first.
    /// Sweepable: `[1, 2, 3]` compares leader placements.
    pub initial: Option<Sweep<u32>>,
    /// Send phase 2 only to a phase-2 quorum of the fastest nodes.
    pub thrifty: bool,
}

impl Default for LeaderSpec {
    fn default() -> Self {
        Self {
            heartbeat_ms: 10.0,
            election_timeout_ms: 100.0,
            batch: Sweep::one(64),
            pipeline: 4,
            forward: ForwardMode::Redirect,
            initial: None,
            thrifty: false,
        }
    }
}

/// How many nodes each phase waits for (`target.quorum`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct QuorumSpec {
    /// PROMISEs before phase 2; unset: a majority.
    pub phase1: Option<usize>,
    /// ACCEPTEDs for a decision; unset: a majority.
    pub phase2: Option<usize>,
}

impl QuorumSpec {
    /// The sizes for a cluster of `nodes`.
    pub fn resolve(&self, nodes: usize) -> paxbench_core::Quorums {
        let majority = paxbench_core::Quorums::majority(nodes);
        paxbench_core::Quorums {
            phase1: self.phase1.unwrap_or(majority.phase1),
            phase2: self.phase2.unwrap_or(majority.phase2),
        }
    }
}

/// Where the generator and the spawned nodes may run (`target.cpus`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CpuPins {
    /// The generator's CPUs; empty: not pinned.
    pub generator: Vec<usize>,
    /// Every spawned node's CPUs; empty: not pinned.
    pub nodes: Vec<usize>,
}

impl Default for TargetSpec {
    fn default() -> Self {
        Self {
            kind: TargetKind::Spawn,
            nodes: 3,
            storage: Sweep::one(StorageMode::Memory),
            reject_mode: Sweep::one(RejectMode::Nack),
            learner_fanout: Sweep::one(LearnerFanout::All),
            transport: Sweep::one(TransportKind::Quic),
            carrier: Sweep::one(Carrier::Framed),
            attach: None,
            sim: SimSpec::default(),
            cpus: Sweep::default(),
            zones: Sweep::default(),
            quorum: Sweep::default(),
            protocol: Sweep::default(),
            leader: LeaderSpec::default(),
        }
    }
}

/// Nodes that are already running, and the client certificate to reach them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachSpec {
    /// Every node, by id and address. Addresses outside loopback are allowed here, and only here.
    pub nodes: Vec<PeerAddr>,
    /// The cluster CA (QUIC).
    pub ca: Option<PathBuf>,
    /// This generator's client certificate (QUIC); `{client}` in it becomes `client`.
    pub cert: Option<PathBuf>,
    /// Its key (QUIC); `{client}` in it becomes `client`.
    pub key: Option<PathBuf>,
    /// The client number in the certificate (`client-N`); it also keeps proposer ids of several
    /// generators apart.
    #[serde(default)]
    pub client: u32,
    /// Which keys the run writes on a cluster that may already hold decisions.
    #[serde(default)]
    pub keys: KeyReuse,
    /// Plain TCP: the members' shared secret (`tcp.secret` from `paxbench node certs`).
    #[serde(default)]
    pub tcp_secret: Option<PathBuf>,
    /// Plain TCP against nodes run with `insecure_tcp`: no secret.
    #[serde(default)]
    pub insecure_tcp: bool,
}

impl AttachSpec {
    /// A certificate or key path with `{client}` replaced by the client number, so that one
    /// config serves every generator (`--client N`).
    pub fn client_file(&self, path: &std::path::Path) -> PathBuf {
        PathBuf::from(
            path.to_string_lossy()
                .replace("{client}", &self.client.to_string()),
        )
    }
}

/// Which keys an attached run writes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum KeyReuse {
    /// Every generator's run (and every scenario and repetition of it) writes keys of a
    /// namespace of its own, so its instances are fresh whatever the cluster decided before,
    /// and generators running together never meet on an instance.
    #[default]
    Fresh,
    /// Like `fresh`, but the generators that share a `measure.start_at` share the namespace:
    /// they contend on the same instances, and learn each other's decisions only by losing.
    Shared,
    /// Write the configured keys themselves, from slot 0: instances earlier runs decided are
    /// learned again (reported as pre-existing), which measures recovery of old instances.
    Reuse,
}

/// The simulated network and disk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SimSpec {
    /// One-way latency of every link.
    pub latency: LatencySpec,
    /// Probability that a message is lost.
    pub drop: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// How long an acceptor's persist takes, in microseconds (0: instant).
    pub fsync_us: u64,
}

impl Default for SimSpec {
    fn default() -> Self {
        Self {
            latency: LatencySpec::default(),
            drop: 0.0,
            duplicate: 0.0,
            fsync_us: 0,
        }
    }
}

/// A latency distribution.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LatencySpec {
    /// `constant`, `uniform`, `normal` or `exponential`.
    pub kind: LatencyKind,
    /// The mean, in microseconds.
    pub mean_us: f64,
    /// Uniform: half the width; normal: the standard deviation (microseconds).
    pub spread_us: f64,
}

impl Default for LatencySpec {
    fn default() -> Self {
        Self {
            kind: LatencyKind::Normal,
            mean_us: 50.0,
            spread_us: 10.0,
        }
    }
}

/// The shape of a latency distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LatencyKind {
    /// Always the mean.
    Constant,
    /// Uniform in mean ± spread.
    Uniform,
    /// Normal, truncated at zero.
    Normal,
    /// Exponential with the given mean.
    Exponential,
}

impl LatencySpec {
    /// The simulator's latency model.
    pub fn to_latency(self) -> Latency {
        let us = |v: f64| Duration::from_nanos((v.max(0.0) * 1e3) as u64);
        match self.kind {
            LatencyKind::Constant => Latency::Constant(us(self.mean_us)),
            LatencyKind::Uniform => Latency::Uniform {
                min: us(self.mean_us - self.spread_us),
                max: us(self.mean_us + self.spread_us),
            },
            LatencyKind::Normal => Latency::Normal {
                mean: us(self.mean_us),
                std_dev: us(self.spread_us),
            },
            LatencyKind::Exponential => Latency::Exponential {
                mean: us(self.mean_us),
            },
        }
    }
}

/// How keys are chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum KeyDistribution {
    /// Every key equally likely.
    #[default]
    Uniform,
    /// Zipfian with exponent `theta` (0.99 is the YCSB default); key 0 is the hottest.
    Zipfian {
        /// The skew.
        theta: f64,
    },
    /// A `fraction` of the keys receives a `probability` share of the operations.
    Hotspot {
        /// Share of keys that are hot, in (0, 1].
        fraction: f64,
        /// Share of operations that go to hot keys, in [0, 1].
        probability: f64,
    },
}

/// How operations are issued.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum LoopMode {
    /// Each proposer issues its next operation when the last ends, after the think time.
    #[default]
    Closed,
    /// Operations arrive at a set rate whatever the latency; latency counts from the intended
    /// start, so a slow system is not hidden (no coordinated omission).
    Open,
    /// Groups of `contenders` proposers start on the same fresh instance together: the classic
    /// A-against-B duel, measured directly.
    Race,
}

/// Arrival process of the open loop.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Arrival {
    /// Evenly spaced.
    #[default]
    Constant,
    /// Exponential gaps (a Poisson process).
    Poisson,
}

/// What the proposers do.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadSpec {
    /// Concurrent proposers.
    pub proposers: Sweep<u32>,
    /// Distinct keys; each write to a key is a fresh instance `(key, next slot)`.
    pub keys: Sweep<u64>,
    /// `uniform`, `{zipfian: {theta: 0.99}}` or `{hotspot: {fraction: 0.01, probability: 0.9}}`.
    pub distribution: Sweep<KeyDistribution>,
    /// `closed`, `open` or `race`.
    pub mode: Sweep<LoopMode>,
    /// Closed loop: pause between a proposer's operations, in microseconds.
    pub think_time_us: Sweep<u64>,
    /// Open loop: operations per second, over all proposers.
    pub rate: Sweep<f64>,
    /// Open loop: `constant` or `poisson`.
    pub arrival: Sweep<Arrival>,
    /// Race: proposers per instance.
    pub contenders: Sweep<u32>,
    /// Bytes per proposed value.
    pub value_size: u32,
    /// Seconds run before measuring starts.
    pub warmup_s: f64,
    /// Seconds measured (after the warmup); the run ends at whichever of this and `ops` comes
    /// first.
    pub duration_s: Option<f64>,
    /// Operations measured (after the warmup).
    pub ops: Option<u64>,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        Self {
            proposers: Sweep::one(4),
            keys: Sweep::one(1000),
            distribution: Sweep::one(KeyDistribution::Uniform),
            mode: Sweep::one(LoopMode::Closed),
            think_time_us: Sweep::one(0),
            rate: Sweep::one(1000.0),
            arrival: Sweep::one(Arrival::Constant),
            contenders: Sweep::one(2),
            value_size: 64,
            warmup_s: 1.0,
            duration_s: Some(10.0),
            ops: None,
        }
    }
}

/// How each proposer behaves.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProposerSpec {
    /// `counter`, `timestamp`, `naive-timestamp` or `hlc`.
    pub id_scheme: Sweep<IdSchemeKind>,
    /// Clock resolution in nanoseconds (1 000 000 models a millisecond clock).
    pub clock_resolution_ns: Sweep<u64>,
    /// Each proposer's clock is offset by a value uniform in ±this many microseconds.
    pub clock_skew_us: Sweep<u64>,
    /// Each proposer's clock drifts by a value uniform in ±this many ppm.
    pub clock_drift_ppm: Sweep<f64>,
    /// Wait for a majority of PROMISEs this long before retrying, in milliseconds. Unset: 50,
    /// or with `target.zones`, 50 plus two of the longest round trips.
    pub phase1_timeout_ms: Option<Sweep<f64>>,
    /// Wait for a majority of ACCEPTEDs this long before retrying, in milliseconds; unset, as
    /// `phase1_timeout_ms`.
    pub phase2_timeout_ms: Option<Sweep<f64>>,
    /// The delay before each retry.
    pub backoff: Sweep<BackoffSpec>,
    /// Attempts per operation, the first included.
    pub max_attempts: Sweep<u32>,
    /// Give up on an operation after this many milliseconds.
    pub deadline_ms: Option<f64>,
}

impl Default for ProposerSpec {
    fn default() -> Self {
        Self {
            id_scheme: Sweep::one(IdSchemeKind::Counter),
            clock_resolution_ns: Sweep::one(1),
            clock_skew_us: Sweep::one(0),
            clock_drift_ppm: Sweep::one(0.0),
            phase1_timeout_ms: None,
            phase2_timeout_ms: None,
            backoff: Sweep::one(BackoffSpec::default()),
            max_attempts: Sweep::one(50),
            deadline_ms: None,
        }
    }
}

/// The retry backoff.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BackoffSpec {
    /// `none`, `constant`, `exponential`, `full-jitter` or `decorrelated-jitter`.
    pub policy: BackoffKind,
    /// The first (or constant) delay, in milliseconds.
    pub base_ms: f64,
    /// The largest delay, in milliseconds.
    pub cap_ms: f64,
    /// Growth per retry (exponential policies).
    pub factor: f64,
}

impl Default for BackoffSpec {
    fn default() -> Self {
        Self {
            policy: BackoffKind::FullJitter,
            base_ms: 1.0,
            cap_ms: 100.0,
            factor: 2.0,
        }
    }
}

/// Backoff policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BackoffKind {
    /// Retry at once.
    None,
    /// Always `base_ms`.
    Constant,
    /// `base × factor^retry`, capped, no jitter: proposers that collide keep colliding.
    Exponential,
    /// Uniform in `[0, min(cap, base × factor^retry)]` (AWS "full jitter").
    FullJitter,
    /// Uniform in `[base, 3 × previous]`, capped (AWS "decorrelated jitter").
    DecorrelatedJitter,
}

impl BackoffSpec {
    /// The core's policy.
    pub fn to_policy(self) -> BackoffPolicy {
        let ms = |v: f64| Duration::from_nanos((v.max(0.0) * 1e6) as u64);
        match self.policy {
            BackoffKind::None => BackoffPolicy::None,
            BackoffKind::Constant => BackoffPolicy::Constant {
                delay: ms(self.base_ms),
            },
            BackoffKind::Exponential => BackoffPolicy::Exponential {
                base: ms(self.base_ms),
                factor: self.factor,
                cap: ms(self.cap_ms),
            },
            BackoffKind::FullJitter => BackoffPolicy::ExponentialFullJitter {
                base: ms(self.base_ms),
                factor: self.factor,
                cap: ms(self.cap_ms),
            },
            BackoffKind::DecorrelatedJitter => BackoffPolicy::DecorrelatedJitter {
                base: ms(self.base_ms),
                cap: ms(self.cap_ms),
            },
        }
    }
}

/// Measurement settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeasureSpec {
    /// An instance with two or more active proposers and no decision for this long counts as a
    /// livelock window, in milliseconds. Unset: 50, or with `target.zones`, 50 plus two of
    /// the longest round trips.
    pub livelock_window_ms: Option<f64>,
    /// Pings to each node at the start, to measure the transport floor.
    pub pings: u32,
    /// `attach` only: keep the evidence the store audit needs (every proposal, decision and
    /// acknowledged reply) in `scenario-NN.evidence`, for `paxbench audit --results`. It grows
    /// with the run, so it is off unless asked for; spawned durable runs always keep it, since
    /// they are audited as they end.
    pub evidence: bool,
    /// Run every scenario this many times, each on a fresh cluster, interleaved (A B C A B C
    /// …); the summary gives each headline figure's median and 95% interval over them.
    pub repeat: u32,
    /// `attach` only: when the first scenario's warmup starts, as RFC 3339 UTC
    /// (`2026-11-30T07:00:00Z`), so that several generators start together. Run `k` (in run
    /// order, repetitions included) starts at `start_at + k × slot`, where the slot is the
    /// longest warmup plus duration plus [`SYNC_GAP`]. Generators that share it share their
    /// key namespace too. `--start-at` overrides it.
    pub start_at: Option<String>,
}

/// Between two synchronized runs: time to drain the last operations, stop, and connect and
/// ping for the next one.
pub const SYNC_GAP: Duration = Duration::from_secs(10);

impl Default for MeasureSpec {
    fn default() -> Self {
        Self {
            livelock_window_ms: None,
            pings: 200,
            evidence: false,
            repeat: 1,
            start_at: None,
        }
    }
}
