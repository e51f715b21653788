//! Drivers run one scenario's proposers against a target and hand back what was measured:
//! [`sim`] in the core's simulator (virtual time), [`real`] against QUIC or TCP nodes. Both are
//! I/O shells over the core's proposer host, fed by the same [`workload`], applying the same
//! [`fault_plan`] and [`topology`], and reporting to the same metrics and checker, so their
//! results compare directly.

pub mod fault_plan;
pub mod nodes;
pub mod protocol;
pub mod real;
pub mod sim;
pub mod topology;
pub mod workload;
pub mod zones;

use std::path::Path;
use std::time::{Duration, SystemTime};

use paxbench_core::checker::{Checker, CheckerStats, Forget};
use paxbench_core::proposer::ProposerConfig;
use paxbench_core::rng::Stream;
use paxbench_core::time::ClockModel;
use paxbench_quic::NodeStats;

use crate::config::Scenario;
use crate::measure::resources::ResourceSummary;
use crate::measure::{OpMetrics, Percentiles, ProtocolMetrics};
use workload::Generator;

/// Everything a driver measured in one scenario.
#[derive(Debug)]
pub struct RunOutput {
    /// Operation timings and outcomes.
    pub ops: OpMetrics,
    /// Proposer behaviour and messages.
    pub protocol: ProtocolMetrics,
    /// Checker counters.
    pub checker: CheckerStats,
    /// Each kind of violation and how often it was seen.
    pub violation_counts: Vec<(&'static str, u64)>,
    /// The first few violations, written out.
    pub violation_examples: Vec<String>,
    /// The measured span (end of warmup to the last outcome).
    pub measured: Duration,
    /// The wall-clock instant the measured window began (the end of the warmup); on `sim`, the
    /// scenario's wall-clock start plus its virtual warmup.
    pub window_start: SystemTime,
    /// Wall-clock time the scenario took.
    pub wall: Duration,
    /// The raw transport round trip to each node at the start (real targets).
    pub floor: Vec<(u32, Percentiles)>,
    /// Nodes' counters over the scenario (real targets): the difference of two snapshots.
    pub node_stats: Vec<NodeStats>,
    /// Messages and bytes the nodes sent (real targets; the simulator counts them itself).
    pub node_messages: (u64, u64),
    /// The audit of the nodes' durable stores after the run (spawned durable clusters).
    pub audit: Option<paxbench_node::AuditReport>,
    /// PROMISE and ACCEPTED replies received, when they were logged for the audit.
    pub acked_replies: u64,
    /// Whether Ctrl-C cut the scenario short.
    pub interrupted: bool,
    /// Operations that had not ended when the driver stopped.
    pub unfinished: u64,
    /// Memory and CPU of the generator and the spawned nodes, and the machine's noise.
    pub resources: ResourceSummary,
    /// Each node's clock against this generator's, from the fastest ping (real targets).
    pub clock_offsets: Vec<ClockOffset>,
    /// How long after its scheduled instant (`measure.start_at`) the warmup began.
    pub start_late: Option<Duration>,
    /// With zones (real targets): the round trip from each proposer zone to each node, delays
    /// included, measured at the start.
    pub zone_pings: Vec<ZonePing>,
    /// Multi-Paxos: what the nodes' leader roles did (the simulator).
    pub leaders: Option<paxbench_core::leader::LeaderStats>,
}

/// The measured round trip from a proposer zone to a node, emulated delays included.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ZonePing {
    /// The proposer zone, by index.
    pub zone: usize,
    /// The node.
    pub node: u32,
    /// The round trips.
    pub rtt: Percentiles,
}

/// One node's wall clock against the generator's, estimated as NTP does from the ping with the
/// shortest round trip: the node read its clock somewhere within that round trip, so the
/// estimate is within half of it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ClockOffset {
    /// The node.
    pub node: u32,
    /// Node clock minus generator clock, in nanoseconds.
    pub offset_ns: i64,
    /// Half the round trip of the ping it came from: the estimate's error bound.
    pub bound_ns: u64,
}

/// Violation examples kept in the report.
pub const VIOLATION_EXAMPLES: usize = 5;

impl RunOutput {
    /// What every target measures alike, once the run is over: the workload's timings, the
    /// protocol metrics and the checker's verdict. The real targets then add the floors, the
    /// nodes' counters and the evidence.
    /// The histograms the summary's latency percentiles come from.
    pub fn latency_histograms(&self) -> crate::report::figures::LatencyHistograms<'_> {
        crate::report::figures::LatencyHistograms {
            op: &self.ops.latency,
            service: &self.ops.service,
            start_lag: &self.ops.lag,
            phase1: &self.protocol.phase1,
            phase2: &self.protocol.phase2,
        }
    }

    fn measured(
        generator: Generator,
        checker: &Checker,
        protocol: ProtocolMetrics,
        wall: Duration,
        interrupted: bool,
        resources: ResourceSummary,
        run_start: SystemTime,
    ) -> Self {
        let measured = generator
            .metrics
            .last_outcome
            .saturating_since(generator.warmup_end());
        let unfinished = generator.in_flight();
        let window_start = run_start
            + generator
                .warmup_end()
                .saturating_since(paxbench_core::Time::ZERO);
        Self {
            ops: generator.metrics,
            protocol,
            checker: checker.stats(),
            violation_counts: checker.violation_counts(),
            violation_examples: checker
                .violations()
                .iter()
                .take(VIOLATION_EXAMPLES)
                .map(ToString::to_string)
                .collect(),
            measured,
            window_start,
            wall,
            floor: Vec::new(),
            node_stats: Vec::new(),
            node_messages: (0, 0),
            audit: None,
            acked_replies: checker.stats().acks,
            interrupted,
            unfinished,
            resources,
            clock_offsets: Vec::new(),
            start_late: None,
            zone_pings: Vec::new(),
            leaders: None,
        }
    }
}

/// A checker whose memory is bounded by the work in flight. With `keep` it retires decided
/// instances into the evidence file at `path` (the audit's input, and what a late message is
/// checked against); without, into nothing: a shell that feeds only its proposers' events
/// never reports on an instance after its operations ended, so there is nothing to check late,
/// and writing the file would cost a fifth of the generator's CPU.
pub fn evidence_checker(path: &Path, keep: bool) -> Result<Checker, crate::error::Error> {
    Ok(if keep {
        let file = paxbench_node::EvidenceWriter::create(path)?;
        Checker::with_store(Box::new(file), Checker::DEFAULT_RETAIN)
    } else {
        Checker::with_store(Box::new(Forget), FORGET_RETAIN)
    })
}

/// Retirements kept in memory when nothing is kept after them.
const FORGET_RETAIN: usize = 1_024;

/// Finishes `checker`'s evidence file: an error if any of it was lost. The file is kept when
/// `keep`, and removed otherwise.
pub fn finish_evidence(
    checker: &mut Checker,
    path: &Path,
    keep: bool,
) -> Result<(), crate::error::Error> {
    let finished = checker.finish();
    if !keep || finished.is_err() {
        let _ = std::fs::remove_file(path);
    }
    finished.map_err(|e| {
        crate::error::Error::Scenario(format!("the evidence file {}: {e}", path.display()))
    })
}

/// Every proposer's settings, each with its own clock: offset and drift drawn from its
/// [`Stream::Clock`] within the scenario's skew bounds, plus its zone's offset, reading
/// `epoch_ns` at time zero.
pub fn proposer_configs(
    scenario: &Scenario,
    acceptors: usize,
    epoch_ns: u64,
) -> Vec<ProposerConfig> {
    let zones = scenario.target.zones.as_ref();
    let placed = zones.map(|z| z.proposer_zones(scenario.workload.proposers));
    let zone_offset = |index: u32| match (zones, &placed) {
        (Some(zones), Some(placed)) => zones.clock_offset_ns(placed[index as usize]),
        _ => 0,
    };
    let quorums = scenario.target.quorum.resolve(acceptors);
    (0..scenario.workload.proposers)
        .map(|index| ProposerConfig {
            acceptors,
            quorums,
            phase1_timeout: scenario.proposer.phase1_timeout,
            phase2_timeout: scenario.proposer.phase2_timeout,
            backoff: scenario.proposer.backoff.to_policy(),
            max_attempts: scenario.proposer.max_attempts,
            deadline: scenario.proposer.deadline,
            id_scheme: scenario.proposer.id_scheme,
            clock: ClockModel::skewed(
                Stream::Clock(index).rng(scenario.seed),
                epoch_ns,
                scenario.proposer.clock_skew,
                scenario.proposer.clock_drift_ppm,
                scenario.proposer.clock_resolution,
            )
            .shifted(zone_offset(index)),
        })
        .collect()
}
