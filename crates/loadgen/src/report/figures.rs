//! The figures of a scenario's summary: the raw counters that add up across runs, and the
//! rates, ratios and percentiles derived from them (by [`super::summary::ScenarioSummary`]'s
//! one `derive`, for a run and for merged or pooled runs alike).

use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::measure::Percentiles;

/// Raw counts of measured operations.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    /// Operations that ended.
    pub ops_finished: u64,
    /// Attempts, first ones included.
    pub attempts: u64,
    /// Attempts after the first.
    pub retries: u64,
    /// Preemptions.
    pub preemptions: u64,
    /// Operations preempted at least once.
    pub ops_preempted: u64,
    /// Phase timeouts.
    pub timeouts: u64,
    /// Nanoseconds spent backing off.
    pub backoff_ns: u64,
    /// Nanoseconds spent in livelock windows.
    pub livelock_ns: u64,
    /// Bytes proposers sent.
    pub bytes_from_proposers: u64,
    /// Bytes acceptors sent.
    pub bytes_from_acceptors: u64,
}

/// One node's counters over a scenario.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeSummary {
    /// The node.
    pub node: u32,
    /// Paxos messages received.
    pub paxos_in: u64,
    /// Paxos messages sent.
    pub paxos_out: u64,
    /// Storage batches (one fsync each when durable).
    pub batches: u64,
    /// Records written.
    pub records: u64,
    /// Records per batch, on average: how much group commit shared each fsync.
    pub records_per_batch: f64,
    /// The largest batch since the node started.
    pub max_batch: u64,
    /// Commit latency since the node started, microseconds.
    pub commit_p50_us: u64,
    /// Its 99th percentile.
    pub commit_p99_us: u64,
    /// Frames per socket write: how much writes were coalesced.
    pub frames_per_write: f64,
    /// The node's disk floor, measured at its start: one small append plus `fdatasync` on its
    /// data directory, median in microseconds; `null` when it keeps nothing on disk.
    pub disk_floor_p50_us: Option<u64>,
    /// Its 99th percentile.
    pub disk_floor_p99_us: Option<u64>,
    /// The most acceptor states it held in memory at once (bounded with `wal` storage).
    #[serde(default)]
    pub most_held: u64,
    /// Acceptor states it dropped from memory once checkpointed.
    #[serde(default)]
    pub evicted: u64,
    /// Acceptor states it read back from its checkpoint for a request.
    #[serde(default)]
    pub store_reads: u64,
    /// Checkpoints it completed.
    #[serde(default)]
    pub checkpoints: u64,
}

/// How measured operations ended.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Outcomes {
    /// Started after the warmup.
    pub started: u64,
    /// Their own value was chosen.
    pub won: u64,
    /// Another value was chosen: lost the race.
    pub lost_race: u64,
    /// Used their whole retry budget.
    pub gave_up: u64,
    /// Passed their deadline.
    pub timed_out: u64,
    /// Still running when the scenario stopped.
    pub unfinished: u64,
}

/// Rates.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Throughput {
    /// Instances decided per second: operations that won (each decided instance has exactly one
    /// winner; those that lost the race learned the same decision).
    pub decisions_per_s: f64,
    /// Operations that ended, per second.
    pub ops_per_s: f64,
    /// Open loop: the configured rate.
    pub target_rate: Option<f64>,
    /// Open loop: measured operations started per second.
    pub achieved_rate: Option<f64>,
    /// Open loop: whether the generator fell behind its schedule (99th percentile of start lag
    /// above 1 ms, or an achieved rate below 95% of the target).
    pub fell_behind: bool,
}

/// Latency distributions, in microseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Latencies {
    /// Intended start to outcome (in the open loop, includes time queued: no coordinated
    /// omission).
    pub op: Percentiles,
    /// Actual start to outcome.
    pub service: Percentiles,
    /// Actual start minus intended start.
    pub start_lag: Percentiles,
    /// An attempt's PREPARE to its majority of PROMISEs.
    pub phase1: Percentiles,
    /// The majority of PROMISEs to the decision, for attempts that won.
    pub phase2: Percentiles,
    /// The raw transport round trip (ping) to each node at the start: the floor.
    pub floor: Vec<NodeFloor>,
}

/// The ping round trip to one node.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeFloor {
    /// The node.
    pub node: u32,
    /// Its round trip.
    pub rtt: Percentiles,
}

/// Races and livelock.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Contention {
    /// Preemptions per finished operation.
    pub preemptions_per_op: f64,
    /// Share of finished operations preempted at least once.
    pub preempted_share: f64,
    /// `[attempts, operations]` pairs: how many operations took that many attempts.
    pub rounds: Vec<(u32, u64)>,
    /// Two proposers preempting each other in turn on one instance.
    pub dueling_episodes: u64,
    /// Windows of the configured length with two or more active proposers on an instance and
    /// no decision.
    pub livelock_windows: u64,
    /// Milliseconds spent in such windows.
    pub livelock_ms: f64,
    /// `[rank, operations, preemptions]` for the hottest keys (key 0 is rank 1 under zipfian and
    /// hotspot distributions); empty for uniform keys.
    pub by_key_rank: Vec<(u32, u64, u64)>,
}

/// Retries and timeouts.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retries {
    /// Attempts after the first, per finished operation.
    pub retries_per_op: f64,
    /// Phase timeouts per finished operation.
    pub timeouts_per_op: f64,
    /// Milliseconds spent backing off, per finished operation.
    pub backoff_ms_per_op: f64,
}

/// Proposal IDs.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ids {
    /// The same ID issued by two proposers for one instance.
    pub collisions: u64,
    /// One proposer issuing an ID twice.
    pub reused: u64,
    /// Growth of the ID's high part per second (a round for counters, nanoseconds for
    /// timestamps).
    pub high_growth_per_s: f64,
    /// The highest ID issued, `high.low`.
    pub highest: String,
}

/// Message cost.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Messages {
    /// Messages proposers sent.
    pub from_proposers: u64,
    /// Messages acceptors sent (replies and learner fan-out).
    pub from_acceptors: u64,
    /// All messages per decision.
    pub per_decision: f64,
    /// All bytes (framed) per decision.
    pub bytes_per_decision: f64,
}

/// The online safety checker.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Safety {
    /// Violations of agreement, validity or ID uniqueness seen.
    pub violations: u64,
    /// By kind.
    pub by_kind: Vec<(String, u64)>,
    /// The first few, written out.
    pub examples: Vec<String>,
    /// Whether the config declared violations as the expected finding.
    pub expected: bool,
}

pub(crate) fn per(numerator: f64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator / denominator as f64
    }
}

/// The histograms a scenario's latency percentiles come from, under the names
/// `histograms.hlog` and `.histograms` files give them.
#[derive(Clone, Copy, Debug)]
pub struct LatencyHistograms<'a> {
    /// Whole operations, from their scheduled start.
    pub op: &'a Histogram<u64>,
    /// Operations from their actual start.
    pub service: &'a Histogram<u64>,
    /// How late operations started against the open-loop schedule.
    pub start_lag: &'a Histogram<u64>,
    /// Phase-1 round trips.
    pub phase1: &'a Histogram<u64>,
    /// Phase-2 round trips.
    pub phase2: &'a Histogram<u64>,
}

impl<'a> LatencyHistograms<'a> {
    /// The histograms by name; a missing one is `empty`.
    pub fn named(
        histograms: &'a std::collections::BTreeMap<String, Histogram<u64>>,
        empty: &'a Histogram<u64>,
    ) -> Self {
        let get = |name: &str| histograms.get(name).unwrap_or(empty);
        Self {
            op: get("op"),
            service: get("service"),
            start_lag: get("start_lag"),
            phase1: get("phase1"),
            phase2: get("phase2"),
        }
    }

    /// Each with its name.
    pub fn pairs(&self) -> [(&'static str, &'a Histogram<u64>); 5] {
        [
            ("op", self.op),
            ("service", self.service),
            ("start_lag", self.start_lag),
            ("phase1", self.phase1),
            ("phase2", self.phase2),
        ]
    }
}
