//! Bench configs: the YAML a user writes (`bench-configs/*.yaml`), checked strictly, and its
//! expansion into concrete [`Scenario`]s, one per combination of swept values. Unknown fields
//! are refused; every error names the file, line, column and field.

use std::path::{Path, PathBuf};
use std::time::Duration;

use paxbench_core::acceptor::RejectMode;
use paxbench_core::backoff::BackoffPolicy;
use paxbench_core::id::IdSchemeKind;
use paxbench_core::sim::Latency;
use paxbench_node::{LearnerFanout, PeerAddr, StorageMode};
use paxbench_quic::{Carrier, DiskFault, LinkFaults, TransportKind};
use serde::{Deserialize, Serialize};

use crate::error::Error;
pub mod sweep;

use crate::driver::topology::Cuts;
use sweep::Sweep;

/// Where a scenario runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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
    fn applies_to(&self, scheme: IdSchemeKind) -> bool {
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
        }
    }
}

/// Nodes that are already running, and the client certificate to reach them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachSpec {
    /// Every node, by id and address. Addresses outside loopback are allowed here, and only here.
    pub nodes: Vec<PeerAddr>,
    /// The cluster CA (QUIC).
    pub ca: Option<PathBuf>,
    /// This generator's client certificate (QUIC).
    pub cert: Option<PathBuf>,
    /// Its key (QUIC).
    pub key: Option<PathBuf>,
    /// The client number in the certificate (`client-N`); it also keeps proposer ids of several
    /// generators apart.
    #[serde(default)]
    pub client: u32,
}

/// The simulated network and disk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyDistribution {
    /// Every key equally likely.
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Wait for a majority of PROMISEs this long before retrying, in milliseconds.
    pub phase1_timeout_ms: Sweep<f64>,
    /// Wait for a majority of ACCEPTEDs this long before retrying, in milliseconds.
    pub phase2_timeout_ms: Sweep<f64>,
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
            phase1_timeout_ms: Sweep::one(50.0),
            phase2_timeout_ms: Sweep::one(50.0),
            backoff: Sweep::one(BackoffSpec::default()),
            max_attempts: Sweep::one(50),
            deadline_ms: None,
        }
    }
}

/// The retry backoff.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// One step of the fault schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultStep {
    /// Seconds after the start of the run (warmup included).
    pub at_s: f64,
    /// What happens.
    #[serde(flatten)]
    pub action: FaultAction,
}

/// A fault.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultAction {
    /// Kill a node (SIGKILL when spawned; a crash in the simulator).
    Kill(u32),
    /// Restart a killed node with its data.
    Restart(u32),
    /// Kill these nodes in turn, one at a time, each for `down_s`, every `every_s` seconds,
    /// until `until_s`: a minority crash loop. Expands into `kill` and `restart` steps.
    KillLoop(KillLoop),
    /// Cut these nodes off from everyone, the generator included.
    Isolate(Vec<u32>),
    /// Split the cluster into groups of nodes: a node reaches only the nodes it shares a group
    /// with, and proposer `i` only the nodes of group `i mod groups`. Groups may overlap:
    /// `[[1,2,3],[2,3,4],[3,4,5],[4,5,1],[5,1,2]]` is the majority ring of five nodes.
    Partition(Vec<Vec<u32>>),
    /// Undo every isolation, partition and link fault.
    Heal,
    /// Step proposers' wall clocks, forward or back; timestamp IDs must stay unique and rising.
    ClockJump(ClockJump),
    /// Make a node's disk fail from its next commit on; the node then stops replying until it
    /// is killed and restarted.
    DiskFail(DiskFail),
    /// Drop this share of every message, everywhere.
    SetDrop(f64),
    /// Deliver this share of every message twice, everywhere.
    SetDuplicate(f64),
    /// Add this many microseconds to every message, everywhere.
    SetDelayUs(u64),
}

impl FaultAction {
    /// A short name for reports: `kill node 3`, `partition [[1, 2], [3]]`.
    pub fn label(&self) -> String {
        match self {
            FaultAction::Kill(n) => format!("kill node {n}"),
            FaultAction::Restart(n) => format!("restart node {n}"),
            FaultAction::KillLoop(l) => format!("kill loop {:?}", l.nodes),
            FaultAction::Isolate(nodes) => format!("isolate {nodes:?}"),
            FaultAction::Partition(groups) => format!("partition {groups:?}"),
            FaultAction::Heal => "heal".into(),
            FaultAction::ClockJump(jump) if jump.proposers.is_empty() => {
                format!("clock jump {:+} ms, every proposer", jump.by_ms)
            }
            FaultAction::ClockJump(jump) => {
                format!(
                    "clock jump {:+} ms, proposers {:?}",
                    jump.by_ms, jump.proposers
                )
            }
            FaultAction::DiskFail(disk) => {
                format!("disk {} on node {}", display_value(&disk.mode), disk.node)
            }
            FaultAction::SetDrop(p) => format!("drop {p}"),
            FaultAction::SetDuplicate(p) => format!("duplicate {p}"),
            FaultAction::SetDelayUs(us) => format!("delay {us} µs"),
        }
    }

    /// The faults this sets on every link, if it is `set-drop`, `set-duplicate` or
    /// `set-delay-us`.
    pub fn link_faults(&self) -> Option<LinkFaults> {
        let mut faults = LinkFaults::default();
        match self {
            FaultAction::SetDrop(p) => faults.drop = *p,
            FaultAction::SetDuplicate(p) => faults.duplicate = *p,
            FaultAction::SetDelayUs(us) => faults.delay_us = *us,
            _ => return None,
        }
        Some(faults)
    }

    /// The links this fault cuts, if it is an isolation or a partition.
    pub fn cuts(&self, nodes: u32, proposers: u32) -> Option<Cuts> {
        match self {
            FaultAction::Isolate(isolated) => Some(Cuts::isolate(isolated, nodes, proposers)),
            FaultAction::Partition(groups) => Some(Cuts::partition(groups, nodes, proposers)),
            _ => None,
        }
    }
}

impl ClockJump {
    /// The proposers whose clocks jump.
    pub fn proposer_indexes(&self, proposers: u32) -> Vec<u32> {
        if self.proposers.is_empty() {
            (0..proposers).collect()
        } else {
            self.proposers.clone()
        }
    }
}

/// A minority crash loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillLoop {
    /// The nodes killed, in turn.
    pub nodes: Vec<u32>,
    /// Seconds between one kill and the next.
    pub every_s: f64,
    /// Seconds each node stays down.
    pub down_s: f64,
    /// No kill at or after this time (seconds from the start of the run).
    pub until_s: f64,
}

/// A step of proposers' clocks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockJump {
    /// Milliseconds; negative steps the clock back.
    pub by_ms: f64,
    /// Proposer indexes (from 0); empty means every proposer.
    #[serde(default)]
    pub proposers: Vec<u32>,
}

/// A disk fault on one node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskFail {
    /// The node.
    pub node: u32,
    /// `fail-write` or `fail-fsync`.
    pub mode: DiskFault,
}

/// The schedule as run: kill loops expanded into kills and restarts, in time order. A schedule
/// that fails [`check_fault_order`] is returned as written, for validation to report.
fn expand_faults(steps: &[FaultStep]) -> Vec<FaultStep> {
    if check_fault_order(steps).is_err() {
        return steps.to_vec();
    }
    let mut expanded = Vec::new();
    for step in steps {
        match &step.action {
            FaultAction::KillLoop(kill_loop) => {
                let mut at = step.at_s;
                for &node in kill_loop.nodes.iter().cycle() {
                    if at >= kill_loop.until_s {
                        break;
                    }
                    expanded.push(FaultStep {
                        at_s: at,
                        action: FaultAction::Kill(node),
                    });
                    expanded.push(FaultStep {
                        at_s: at + kill_loop.down_s,
                        action: FaultAction::Restart(node),
                    });
                    at += kill_loop.every_s;
                }
            }
            _ => expanded.push(step.clone()),
        }
    }
    expanded.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    expanded
}

/// Measurement settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeasureSpec {
    /// An instance with two or more active proposers and no decision for this long counts as a
    /// livelock window, in milliseconds.
    pub livelock_window_ms: f64,
    /// Pings to each node at the start, to measure the transport floor.
    pub pings: u32,
}

impl Default for MeasureSpec {
    fn default() -> Self {
        Self {
            livelock_window_ms: 50.0,
            pings: 200,
        }
    }
}

/// One fully specified scenario: a cell of the sweep.
#[derive(Clone, Debug, Serialize)]
pub struct Scenario {
    /// Position in the sweep, from 0.
    pub index: usize,
    /// `field=value` for each swept field, or `default` when nothing is swept.
    pub label: String,
    /// The swept fields and their values in this cell.
    pub swept: Vec<(String, String)>,
    /// The seed.
    pub seed: u64,
    /// Target kind.
    pub target: TargetKind,
    /// Nodes.
    pub nodes: u32,
    /// Storage of spawned nodes.
    pub storage: StorageMode,
    /// Reject mode of spawned and simulated nodes.
    pub reject_mode: RejectMode,
    /// Learner fan-out.
    pub learner_fanout: LearnerFanout,
    /// Transport.
    pub transport: TransportKind,
    /// Carrier.
    pub carrier: Carrier,
    /// Attach settings.
    pub attach: Option<AttachSpec>,
    /// Simulator settings.
    pub sim: SimSpec,
    /// Proposers.
    pub proposers: u32,
    /// Keys.
    pub keys: u64,
    /// Key distribution.
    pub distribution: KeyDistribution,
    /// Loop mode.
    pub mode: LoopMode,
    /// Think time.
    pub think_time: Duration,
    /// Open-loop rate.
    pub rate: f64,
    /// Open-loop arrivals.
    pub arrival: Arrival,
    /// Race contenders.
    pub contenders: u32,
    /// Value size.
    pub value_size: u32,
    /// Warmup.
    pub warmup: Duration,
    /// Measured duration limit.
    pub duration: Option<Duration>,
    /// Measured op limit.
    pub ops: Option<u64>,
    /// ID scheme.
    pub id_scheme: IdSchemeKind,
    /// Clock resolution.
    pub clock_resolution: Duration,
    /// Clock skew bound.
    pub clock_skew: Duration,
    /// Clock drift bound.
    pub clock_drift_ppm: f64,
    /// Phase-1 timeout.
    pub phase1_timeout: Duration,
    /// Phase-2 timeout.
    pub phase2_timeout: Duration,
    /// Backoff.
    pub backoff: BackoffSpec,
    /// Retry budget.
    pub max_attempts: u32,
    /// Operation deadline.
    pub deadline: Option<Duration>,
    /// Fault schedule.
    pub faults: Vec<FaultStep>,
    /// Violations expected.
    pub expect_violations: bool,
    /// Livelock window.
    pub livelock_window: Duration,
    /// Pings per node.
    pub pings: u32,
}

/// The most scenarios one config may sweep: beyond this a run would not end in a day.
pub const MAX_SCENARIOS: u128 = 10_000;

/// A loaded config: the file as written and its scenarios.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Where it came from.
    pub path: PathBuf,
    /// The text, as run.
    pub text: String,
    /// The parsed file.
    pub file: BenchFile,
    /// Every cell of the sweep.
    pub scenarios: Vec<Scenario>,
}

/// Picks one value per sweepable field; records the lengths on the first pass.
struct Cell<'a> {
    choice: &'a [usize],
    next: usize,
    lengths: Vec<usize>,
    swept: Vec<(String, String)>,
}

impl Cell<'_> {
    fn pick<T: Clone + Serialize>(&mut self, field: &str, sweep: &Sweep<T>) -> T {
        let i = self.choice.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        self.lengths.push(sweep.values().len());
        let value = sweep.values()[i.min(sweep.values().len() - 1)].clone();
        if sweep.is_swept() {
            self.swept.push((field.into(), display_value(&value)));
        }
        value
    }
}

/// A value as a short label: `counter`, `8`, `full-jitter:0.2-50ms`, `zipfian:0.99`.
pub(crate) fn display_value<T: Serialize>(value: &T) -> String {
    fn compact(value: &serde_json::Value) -> String {
        match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Object(map) => {
                // A backoff: its policy, then its delays.
                if let Some(serde_json::Value::String(policy)) = map.get("policy") {
                    let ms = |k: &str| {
                        map.get(k)
                            .and_then(serde_json::Value::as_f64)
                            .unwrap_or(0.0)
                    };
                    return match policy.as_str() {
                        "none" => "none".into(),
                        "constant" => format!("constant:{}ms", ms("base_ms")),
                        _ => format!("{policy}:{}-{}ms", ms("base_ms"), ms("cap_ms")),
                    };
                }
                // An externally tagged enum (`{zipfian: {theta: 0.99}}`): the tag, then the values.
                map.iter()
                    .map(|(k, v)| match v {
                        serde_json::Value::Object(inner) => format!(
                            "{k}:{}",
                            inner.values().map(compact).collect::<Vec<_>>().join("/")
                        ),
                        other => format!("{k}:{}", compact(other)),
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            }
            other => other.to_string(),
        }
    }
    serde_json::to_value(value).map_or_else(|_| "?".into(), |v| compact(&v))
}

/// Saturates instead of panicking on absurd values; [`Scenario::validate`] then refuses anything
/// above [`MAX_TIME`].
fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value.max(0.0)).unwrap_or(Duration::MAX)
}

fn millis(value: f64) -> Duration {
    seconds(value / 1e3)
}

/// The most kills one kill loop may make.
const MAX_LOOP_KILLS: f64 = 10_000.0;

/// The largest value a proposer may propose: it must fit in a frame with room to spare.
pub const MAX_VALUE_SIZE: u32 = 512 * 1024;

/// The most nodes a cluster may have.
pub const MAX_NODES: u32 = 1_000;

/// The most proposers one generator runs.
pub const MAX_PROPOSERS: u32 = 1_000_000;

/// The longest time any setting may ask for: a week.
pub const MAX_TIME: Duration = Duration::from_secs(7 * 24 * 3600);

impl BenchFile {
    fn cell(&self, index: usize, cell: &mut Cell<'_>) -> Scenario {
        let (t, w, p) = (&self.target, &self.workload, &self.proposer);
        let id_scheme = cell.pick("id_scheme", &p.id_scheme);
        let scenario = Scenario {
            index,
            label: String::new(),
            swept: Vec::new(),
            seed: self.seed,
            target: t.kind,
            nodes: t.nodes,
            storage: cell.pick("storage", &t.storage),
            reject_mode: cell.pick("reject_mode", &t.reject_mode),
            learner_fanout: cell.pick("learner_fanout", &t.learner_fanout),
            transport: cell.pick("transport", &t.transport),
            carrier: cell.pick("carrier", &t.carrier),
            attach: t.attach.clone(),
            sim: t.sim.clone(),
            proposers: cell.pick("proposers", &w.proposers),
            keys: cell.pick("keys", &w.keys),
            distribution: cell.pick("distribution", &w.distribution),
            mode: cell.pick("mode", &w.mode),
            think_time: Duration::from_micros(cell.pick("think_time_us", &w.think_time_us)),
            rate: cell.pick("rate", &w.rate),
            arrival: cell.pick("arrival", &w.arrival),
            contenders: cell.pick("contenders", &w.contenders),
            value_size: w.value_size,
            warmup: seconds(w.warmup_s),
            duration: w.duration_s.map(seconds),
            ops: w.ops,
            id_scheme,
            clock_resolution: Duration::from_nanos(
                cell.pick("clock_resolution_ns", &p.clock_resolution_ns)
                    .max(1),
            ),
            clock_skew: Duration::from_micros(cell.pick("clock_skew_us", &p.clock_skew_us)),
            clock_drift_ppm: cell.pick("clock_drift_ppm", &p.clock_drift_ppm),
            phase1_timeout: millis(cell.pick("phase1_timeout_ms", &p.phase1_timeout_ms)),
            phase2_timeout: millis(cell.pick("phase2_timeout_ms", &p.phase2_timeout_ms)),
            backoff: cell.pick("backoff", &p.backoff),
            max_attempts: cell.pick("max_attempts", &p.max_attempts),
            deadline: p.deadline_ms.map(millis),
            faults: expand_faults(&self.faults),
            expect_violations: self.expect_violations.applies_to(id_scheme),
            livelock_window: millis(self.measure.livelock_window_ms),
            pings: self.measure.pings,
        };
        Scenario {
            label: if cell.swept.is_empty() {
                "default".into()
            } else {
                cell.swept
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            },
            swept: std::mem::take(&mut cell.swept),
            ..scenario
        }
    }

    /// How many values each sweepable field has, in the order [`BenchFile::cell`] picks them.
    fn sweep_lengths(&self) -> Vec<usize> {
        let mut probe = Cell {
            choice: &[],
            next: 0,
            lengths: Vec::new(),
            swept: Vec::new(),
        };
        self.cell(0, &mut probe);
        probe.lengths
    }

    /// How many scenarios the sweep makes, without making them.
    pub fn scenario_count(&self) -> u128 {
        self.sweep_lengths()
            .iter()
            .fold(1u128, |n, len| n.saturating_mul(*len as u128))
    }

    /// Every combination of the swept values, in order (the last field varies fastest).
    pub fn scenarios(&self) -> Vec<Scenario> {
        let lengths = self.sweep_lengths();
        let mut choice = vec![0usize; lengths.len()];
        let mut scenarios = Vec::new();
        loop {
            let mut cell = Cell {
                choice: &choice,
                next: 0,
                lengths: Vec::new(),
                swept: Vec::new(),
            };
            scenarios.push(self.cell(scenarios.len(), &mut cell));
            // Odometer increment, last field fastest.
            let mut position = lengths.len();
            loop {
                if position == 0 {
                    return scenarios;
                }
                position -= 1;
                choice[position] += 1;
                if choice[position] < lengths[position] {
                    break;
                }
                choice[position] = 0;
            }
        }
    }
}

impl Scenario {
    /// Checks what the types cannot. Errors name the field as written in the file.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let fail = |field: &str, message: String| Err((field.to_string(), message));
        if self.nodes == 0 || self.nodes > MAX_NODES {
            return fail(
                "target.nodes",
                format!("a cluster has between 1 and {MAX_NODES} nodes"),
            );
        }
        if self.target == TargetKind::Attach {
            match &self.attach {
                None => {
                    return fail(
                        "target.attach",
                        "`kind: attach` needs an `attach` section with the nodes".into(),
                    );
                }
                Some(attach) if attach.nodes.is_empty() => {
                    return fail("target.attach.nodes", "list at least one node".into());
                }
                Some(attach)
                    if self.transport == TransportKind::Quic
                        && (attach.ca.is_none()
                            || attach.cert.is_none()
                            || attach.key.is_none()) =>
                {
                    return fail("target.attach", "QUIC needs `ca`, `cert` and `key`".into());
                }
                Some(_) => {}
            }
        }
        if self.proposers == 0 || self.proposers > MAX_PROPOSERS {
            return fail(
                "workload.proposers",
                format!("between 1 and {MAX_PROPOSERS} proposers"),
            );
        }
        if self.value_size > MAX_VALUE_SIZE {
            return fail(
                "workload.value_size",
                format!("at most {MAX_VALUE_SIZE} bytes (a value travels in one frame)"),
            );
        }
        if self.keys == 0 {
            return fail("workload.keys", "at least one key".into());
        }
        match self.distribution {
            KeyDistribution::Zipfian { theta } if !(theta > 0.0 && theta.is_finite()) => {
                return fail(
                    "workload.distribution",
                    format!("zipfian theta must be positive, got {theta}"),
                );
            }
            KeyDistribution::Hotspot {
                fraction,
                probability,
            } if !(fraction > 0.0 && fraction <= 1.0 && (0.0..=1.0).contains(&probability)) => {
                return fail(
                    "workload.distribution",
                    "hotspot needs 0 < fraction ≤ 1 and 0 ≤ probability ≤ 1".into(),
                );
            }
            _ => {}
        }
        if self.mode == LoopMode::Open && !(self.rate > 0.0 && self.rate.is_finite()) {
            return fail(
                "workload.rate",
                format!("the open loop needs a positive rate, got {}", self.rate),
            );
        }
        if self.mode == LoopMode::Race && (self.contenders < 2 || self.contenders > self.proposers)
        {
            return fail(
                "workload.contenders",
                format!(
                    "a race needs 2 ≤ contenders ≤ proposers ({}), got {}",
                    self.proposers, self.contenders
                ),
            );
        }
        if self.duration.is_none() && self.ops.is_none() {
            return fail(
                "workload.duration_s",
                "set `duration_s`, `ops`, or both".into(),
            );
        }
        if self.phase1_timeout.is_zero() || self.phase2_timeout.is_zero() {
            return fail(
                "proposer.phase1_timeout_ms",
                "phase timeouts must be positive".into(),
            );
        }
        if self.max_attempts == 0 {
            return fail("proposer.max_attempts", "at least one attempt".into());
        }
        for (field, time) in [
            ("workload.warmup_s", Some(self.warmup)),
            ("workload.duration_s", self.duration),
            ("workload.think_time_us", Some(self.think_time)),
            ("proposer.phase1_timeout_ms", Some(self.phase1_timeout)),
            ("proposer.phase2_timeout_ms", Some(self.phase2_timeout)),
            ("proposer.deadline_ms", self.deadline),
        ] {
            if time.is_some_and(|t| t > MAX_TIME) {
                return fail(field, format!("at most {} s", MAX_TIME.as_secs()));
            }
        }
        if let Some(step) = self
            .faults
            .iter()
            .find(|s| s.at_s.is_nan() || s.at_s > MAX_TIME.as_secs_f64())
        {
            return fail(
                "faults",
                format!("at_s {} is past {} s", step.at_s, MAX_TIME.as_secs()),
            );
        }
        for (field, p) in [
            ("target.sim.drop", self.sim.drop),
            ("target.sim.duplicate", self.sim.duplicate),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return fail(field, format!("{p} is not a probability"));
            }
        }
        if let Err(message) = check_fault_order(&self.faults) {
            return fail("faults", message);
        }
        for step in &self.faults {
            let nodes: Vec<u32> = match &step.action {
                FaultAction::Kill(n) | FaultAction::Restart(n) => vec![*n],
                FaultAction::Isolate(ns) => ns.clone(),
                FaultAction::Partition(groups) => {
                    if groups.is_empty() || groups.iter().any(Vec::is_empty) {
                        return fail("faults", "a partition needs non-empty groups".into());
                    }
                    groups.concat()
                }
                FaultAction::DiskFail(disk) => {
                    if disk.mode == DiskFault::None {
                        return fail(
                            "faults",
                            "disk-fail needs `fail-write` or `fail-fsync`".into(),
                        );
                    }
                    vec![disk.node]
                }
                FaultAction::ClockJump(jump) => {
                    if let Some(p) = jump.proposers.iter().find(|p| **p >= self.proposers) {
                        return fail(
                            "faults",
                            format!(
                                "proposer {p} does not exist (proposers are 0..{})",
                                self.proposers
                            ),
                        );
                    }
                    Vec::new()
                }
                FaultAction::SetDrop(p) | FaultAction::SetDuplicate(p)
                    if !(0.0..=1.0).contains(p) =>
                {
                    return fail("faults", format!("{p} is not a probability"));
                }
                _ => Vec::new(),
            };
            if let Some(n) = nodes.iter().find(|n| **n == 0 || **n > self.nodes) {
                return fail(
                    "faults",
                    format!("node {n} does not exist (nodes are 1..={})", self.nodes),
                );
            }
            let spawned_only = matches!(
                step.action,
                FaultAction::Kill(_) | FaultAction::Restart(_) | FaultAction::DiskFail(_)
            );
            if self.target == TargetKind::Attach && spawned_only {
                return fail(
                    "faults",
                    "kill, restart and disk-fail need a spawned cluster or the simulator".into(),
                );
            }
            let needs_admin = !matches!(
                step.action,
                FaultAction::Kill(_) | FaultAction::Restart(_) | FaultAction::ClockJump(_)
            );
            if self.target != TargetKind::Sim && self.transport == TransportKind::Tcp && needs_admin
            {
                return fail(
                    "faults",
                    "network and disk faults are set through admin commands, which need QUIC \
                     (plain TCP does not authenticate the generator)"
                        .into(),
                );
            }
        }
        Ok(())
    }
}

/// Steps must be in time order; a kill loop must make progress.
fn check_fault_order(steps: &[FaultStep]) -> Result<(), String> {
    let mut last = 0.0;
    for step in steps {
        if step.at_s < last {
            return Err(format!(
                "steps must be in time order ({} after {last})",
                step.at_s
            ));
        }
        last = step.at_s;
        if let FaultAction::KillLoop(kill_loop) = &step.action {
            if kill_loop.nodes.is_empty()
                || kill_loop.every_s.is_nan()
                || kill_loop.every_s <= 0.0
                || !(0.0..kill_loop.every_s).contains(&kill_loop.down_s)
            {
                return Err(
                    "a kill loop needs nodes, `every_s` > 0 and 0 ≤ `down_s` < `every_s`".into(),
                );
            }
            let kills = (kill_loop.until_s - step.at_s) / kill_loop.every_s;
            if kills.is_nan() || kills > MAX_LOOP_KILLS {
                return Err(format!(
                    "a kill loop may kill at most {MAX_LOOP_KILLS} times, this one {kills:.0}"
                ));
            }
        }
    }
    Ok(())
}

/// The line and column of `field` (a dotted path such as `workload.rate`) in block-style YAML,
/// for errors found after parsing. Falls back to the closest parent that is written.
pub fn locate(text: &str, field: &str) -> Option<(usize, usize)> {
    let mut found = None;
    let mut path: Vec<(usize, String)> = Vec::new();
    let wanted: Vec<&str> = field.split('.').collect();
    let mut best_depth = 0;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('-') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let Some((key, _)) = trimmed.split_once(':') else {
            continue;
        };
        while path.last().is_some_and(|(i, _)| *i >= indent) {
            path.pop();
        }
        path.push((indent, key.trim().to_string()));
        let depth = path
            .iter()
            .zip(&wanted)
            .take_while(|((_, k), w)| k == *w)
            .count();
        if depth == path.len() && depth > best_depth {
            best_depth = depth;
            found = Some((number + 1, indent + 1));
            if depth == wanted.len() {
                break;
            }
        }
    }
    found
}

impl BenchConfig {
    /// Reads, parses and validates a config; every scenario of the sweep is checked.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigFile {
            path: path.into(),
            source,
        })?;
        Self::parse(path, text)
    }

    /// Parses and validates config text that came from `path`.
    pub fn parse(path: &Path, text: String) -> Result<Self, Error> {
        let file: BenchFile = serde_saphyr::from_str(&text).map_err(|e| Error::Config {
            path: path.into(),
            message: e.to_string(),
        })?;
        let count = file.scenario_count();
        if count > MAX_SCENARIOS {
            return Err(Error::Config {
                path: path.into(),
                message: format!(
                    "the sweeps make {count} scenarios; at most {MAX_SCENARIOS} fit in one run"
                ),
            });
        }
        let scenarios = file.scenarios();
        for scenario in &scenarios {
            if let Err((field, message)) = scenario.validate() {
                let location = locate(&text, &field)
                    .map(|(line, column)| format!("line {line} column {column}: "))
                    .unwrap_or_default();
                let cell = if scenarios.len() > 1 {
                    format!(" (scenario {})", scenario.label)
                } else {
                    String::new()
                };
                return Err(Error::Config {
                    path: path.into(),
                    message: format!("{location}field `{field}`{cell}: {message}"),
                });
            }
        }
        Ok(Self {
            path: path.into(),
            text,
            file,
            scenarios,
        })
    }

    /// The same config on another target kind.
    pub fn with_target(mut self, kind: TargetKind) -> Result<Self, Error> {
        self.file.target.kind = kind;
        self.rebuild(&format!("with --target {kind:?}"))
    }

    /// The same config with every time in it (warmup, duration, fault times) multiplied by
    /// `factor`: the short version of a campaign, or a longer soak.
    pub fn with_time_scale(mut self, factor: f64) -> Result<Self, Error> {
        if !(factor > 0.0 && factor.is_finite()) {
            return Err(Error::Config {
                path: self.path,
                message: format!("--time-scale must be positive, got {factor}"),
            });
        }
        let workload = &mut self.file.workload;
        workload.warmup_s *= factor;
        workload.duration_s = workload.duration_s.map(|d| d * factor);
        for step in &mut self.file.faults {
            step.at_s *= factor;
            if let FaultAction::KillLoop(kill_loop) = &mut step.action {
                kill_loop.every_s *= factor;
                kill_loop.down_s *= factor;
                kill_loop.until_s *= factor;
            }
        }
        self.rebuild(&format!("with --time-scale {factor}"))
    }

    fn rebuild(mut self, change: &str) -> Result<Self, Error> {
        let scenarios = self.file.scenarios();
        for scenario in &scenarios {
            if let Err((field, message)) = scenario.validate() {
                return Err(Error::Config {
                    path: self.path,
                    message: format!("{change}: field `{field}`: {message}"),
                });
            }
        }
        self.scenarios = scenarios;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BenchConfig, String> {
        BenchConfig::parse(Path::new("bench.yaml"), text.to_string()).map_err(|e| e.to_string())
    }

    #[test]
    fn absurd_sizes_and_times_are_refused_not_panicked_on() {
        for (text, field) in [
            (
                "name: t\nworkload:\n  warmup_s: 1e300\n",
                "workload.warmup_s",
            ),
            (
                "name: t\nworkload:\n  proposers: 4000000000\n",
                "workload.proposers",
            ),
            (
                "name: t\nworkload:\n  value_size: 4000000000\n",
                "workload.value_size",
            ),
            ("name: t\ntarget:\n  nodes: 100000\n", "target.nodes"),
            (
                "name: t\nfaults:\n  - {at_s: 0, kill-loop: {nodes: [1], every_s: 1e-9, down_s: 0, until_s: 10}}\n",
                "faults",
            ),
            (
                "name: t\nworkload:\n  proposers: [1,2,3,4,5,6,7,8,9,10]\n  keys: [1,2,3,4,5,6,7,8,9,10]\n  think_time_us: [1,2,3,4,5,6,7,8,9,10]\n  contenders: [2,3,4,5,6,7,8,9,10,11]\n  rate: [1,2,3,4,5,6,7,8,9,10]\n",
                "scenarios",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(field), "{text}: {err}");
        }
    }

    #[test]
    fn defaults_make_one_scenario() {
        let config = parse("name: t\n").unwrap();
        assert_eq!(config.scenarios.len(), 1);
        let s = &config.scenarios[0];
        assert_eq!(s.label, "default");
        assert_eq!(s.proposers, 4);
        assert_eq!(s.target, TargetKind::Spawn);
        assert_eq!(s.backoff.policy, BackoffKind::FullJitter);
    }

    #[test]
    fn sweeps_expand_to_the_cartesian_product() {
        let config = parse(
            "name: t\nworkload:\n  proposers: [1, 2, 4]\nproposer:\n  id_scheme: [counter, timestamp]\n",
        )
        .unwrap();
        let labels: Vec<_> = config.scenarios.iter().map(|s| s.label.clone()).collect();
        assert_eq!(labels.len(), 6);
        // The ID scheme varies slowest, so a report groups scenarios by scheme.
        assert_eq!(labels[0], "id_scheme=counter,proposers=1");
        assert_eq!(labels[1], "id_scheme=counter,proposers=2");
        assert_eq!(labels[5], "id_scheme=timestamp,proposers=4");
    }

    #[test]
    fn swept_structs_get_short_labels() {
        let config = parse(
            "name: t\nworkload:\n  distribution: [uniform, {zipfian: {theta: 0.99}}]\nproposer:\n  backoff: [{policy: none}, {policy: full-jitter, base_ms: 0.5, cap_ms: 20}]\n",
        )
        .unwrap();
        let labels: Vec<_> = config.scenarios.iter().map(|s| s.label.clone()).collect();
        assert_eq!(labels[0], "distribution=uniform,backoff=none");
        assert_eq!(
            labels[3],
            "distribution=zipfian:0.99,backoff=full-jitter:0.5-20ms"
        );
    }

    #[test]
    fn errors_name_file_line_column_and_field() {
        let err = parse("name: t\nworkload:\n  proposrs: 3\n").unwrap_err();
        assert!(
            err.contains("bench.yaml") && err.contains("line 3") && err.contains("proposrs"),
            "{err}"
        );
        let err = parse("name: t\nworkload:\n  mode: open\n  rate: 0\n").unwrap_err();
        assert!(
            err.contains("line 4") && err.contains("workload.rate"),
            "{err}"
        );
        let err = parse("name: t\nproposer:\n  id_scheme: [counter, sundial]\n").unwrap_err();
        assert!(err.contains("line 3") && err.contains("sundial"), "{err}");
        let err = parse("name: t\nfaults:\n  - at_s: 1\n    kill: 9\n").unwrap_err();
        assert!(err.contains("node 9"), "{err}");
    }

    #[test]
    fn locate_finds_nested_fields() {
        let text =
            "name: x\nworkload:\n  # comment\n  proposers: 3\n  rate: 5\nproposer:\n  rate: 1\n";
        assert_eq!(locate(text, "workload.rate"), Some((5, 3)));
        assert_eq!(locate(text, "proposer.rate"), Some((7, 3)));
        assert_eq!(locate(text, "workload.keys"), Some((2, 1)));
    }
}
