//! One fully specified scenario: a cell of the sweep, with every setting resolved. It nests as
//! the file does (target, workload, proposer, measure), so a new sweepable field is one field
//! of one part, and its validation.

use std::time::Duration;

use paxbench_core::acceptor::RejectMode;
use paxbench_core::id::IdSchemeKind;
use paxbench_node::{LearnerFanout, StorageMode};
use paxbench_quic::{Carrier, TransportKind};
use serde::{Deserialize, Serialize};

use super::faults::FaultStep;
use super::file::{
    Arrival, AttachSpec, BackoffSpec, CpuPins, KeyDistribution, LoopMode, Protocol, QuorumSpec,
    SimSpec, TargetKind,
};
use super::zones::ZonesSpec;

/// One fully specified scenario: a cell of the sweep. (`Default` is an empty scenario, for
/// summaries built in tests.)
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Position in the sweep, from 0.
    pub index: usize,
    /// `field=value` for each swept field, or `default` when nothing is swept.
    pub label: String,
    /// The swept fields and their values in this cell.
    pub swept: Vec<(String, String)>,
    /// The seed.
    pub seed: u64,
    /// The cluster.
    pub target: TargetSettings,
    /// What the proposers do.
    pub workload: WorkloadSettings,
    /// How each proposer behaves.
    pub proposer: ProposerSettings,
    /// Fault schedule, kill loops expanded.
    pub faults: Vec<FaultStep>,
    /// Whether safety violations are this scenario's expected finding.
    pub expect_violations: bool,
    /// Measurement settings.
    pub measure: MeasureSettings,
    /// Where this run's instances live and how its values are tagged; set per run by the
    /// runner, not by the config.
    #[serde(default)]
    pub run: RunKeys,
    /// Settings left unset that took a default scaled to the zones' longest round trip, by
    /// field name (`proposer.phase1_timeout_ms`), so that the report can say so.
    #[serde(default)]
    pub scaled: Vec<String>,
}

/// The ids of a target's nodes: the attached ones, or 1 to `nodes`.
pub(crate) fn node_ids(kind: TargetKind, attach: Option<&AttachSpec>, nodes: u32) -> Vec<u32> {
    match (kind, attach) {
        (TargetKind::Attach, Some(attach)) => attach.nodes.iter().map(|n| n.id).collect(),
        _ => (1..=nodes).collect(),
    }
}

/// What keeps runs on a shared cluster apart. Instance keys are `namespace << 32 | key`;
/// values start with the run's `tag` ([`paxbench_core::workload::ValueTag`]), so that a value
/// chosen by an earlier run is recognised as pre-existing rather than as a validity violation.
/// Spawned and simulated clusters are fresh, and use zeros.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct RunKeys {
    /// The run's tag; generators that share `measure.start_at` share it.
    pub tag: u32,
    /// The key namespace (0 with `keys: reuse`).
    pub namespace: u32,
    /// When this run's warmup is to start, in UNIX nanoseconds (`measure.start_at`).
    pub start_unix_ns: Option<u64>,
}

impl RunKeys {
    /// The instance key of configured key `key`.
    pub fn key(&self, key: u64) -> u64 {
        (u64::from(self.namespace) << 32) | key
    }

    /// The configured key of an instance key.
    pub fn local_key(key: u64) -> u64 {
        key & 0xffff_ffff
    }
}

/// The cluster a scenario runs against.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetSettings {
    /// Spawned, attached or simulated.
    pub kind: TargetKind,
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
    /// CPU pinning.
    pub cpus: CpuPins,
    /// WAN zones, a preset's names and matrix filled in.
    #[serde(default)]
    pub zones: Option<ZonesSpec>,
    /// Quorum sizes as configured; [`Scenario::quorums`] resolves them.
    #[serde(default)]
    pub quorum: QuorumSpec,
    /// Vanilla Paxos or Multi-Paxos.
    #[serde(default)]
    pub protocol: Protocol,
    /// Multi-Paxos leader settings (used with `protocol: multi-paxos`).
    #[serde(default)]
    pub leader: LeaderSettings,
}

/// Multi-Paxos leader settings of one scenario (`target.leader`, its batch picked).
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaderSettings {
    /// Between heartbeats.
    pub heartbeat: Duration,
    /// A follower's election timeout (up to twice it, at random).
    pub election_timeout: Duration,
    /// The most requests per ACCEPT batch.
    pub batch: u32,
    /// Batches in flight.
    pub pipeline: u32,
    /// Followers redirect or forward.
    pub forward: paxbench_core::leader::ForwardMode,
    /// The node that campaigns first.
    pub initial: Option<u32>,
    /// Phase 2 to a phase-2 quorum only.
    pub thrifty: bool,
}

/// What the proposers do.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSettings {
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
}

/// How each proposer behaves.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposerSettings {
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
}

/// Measurement settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasureSettings {
    /// Livelock window.
    pub livelock_window: Duration,
    /// Pings per node.
    pub pings: u32,
    /// Keep the audit's evidence of an `attach` run.
    pub evidence: bool,
    /// Repetitions of every scenario.
    pub repeat: u32,
    /// When the first run starts (`measure.start_at`, RFC 3339 UTC).
    pub start_at: Option<String>,
}

impl Scenario {
    /// Whether the run sends nodes admin commands (fault settings, disk faults, zone delays),
    /// which only an admin certificate may.
    pub fn needs_admin(&self) -> bool {
        !self.faults.is_empty() || self.target.zones.is_some()
    }

    /// The ids of the nodes: the attached ones, or 1 to `target.nodes`.
    pub fn node_ids(&self) -> Vec<u32> {
        node_ids(
            self.target.kind,
            self.target.attach.as_ref(),
            self.target.nodes,
        )
    }

    /// The quorum sizes for this scenario's cluster.
    pub fn quorums(&self) -> paxbench_core::Quorums {
        self.target.quorum.resolve(self.node_ids().len())
    }

    /// The core geography of this scenario's zones, for its nodes and proposers; `None`
    /// without zones.
    pub fn geography(
        &self,
    ) -> Result<Option<paxbench_core::zones::Geography>, crate::error::Error> {
        self.target
            .zones
            .as_ref()
            .map(|zones| zones.geography(&self.node_ids(), self.workload.proposers))
            .transpose()
            .map_err(|e| crate::error::Error::Scenario(format!("target.zones: {e}")))
    }

    /// Repetition `k` (from 0) of this scenario: the same settings under a seed of its own, so
    /// that repetitions on the simulator differ; repetition 0 of client 0 keeps the config's
    /// seed, and other clients of an attached run fork theirs.
    pub fn repetition(&self, k: u32) -> Scenario {
        let mut scenario = self.clone();
        if k > 0 {
            scenario.seed = paxbench_core::rng::DetRng::fork(self.seed, u64::from(k)).next_u64();
        }
        // Generators of one attached run draw keys and jitter of their own: with one seed
        // they would pick the same keys in the same order and race in lock-step.
        if let Some(client) = self.target.attach.as_ref().map(|a| a.client)
            && client > 0
        {
            scenario.seed =
                paxbench_core::rng::DetRng::fork(scenario.seed, (1 << 32) | u64::from(client))
                    .next_u64();
        }
        scenario
    }
}
