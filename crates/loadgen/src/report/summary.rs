//! The machine-readable summary of a run (`summary.json`). Its JSON Schema is generated from
//! these types (`paxbench schema`) and committed as `docs/summary.schema.json`; a test keeps the
//! two in step. Latencies are in microseconds; percentiles come from histograms, never averages.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use paxbench_core::Time;

use crate::analysis::stats::Spread;
use crate::config::{Scenario, TargetKind, display_value};
use crate::driver::RunOutput;
use crate::measure::Percentiles;
use crate::measure::drift::Drift;
use crate::measure::resources::ResourceSummary;
use crate::report::figures::per;
pub use crate::report::figures::{
    Contention, Counts, Ids, Latencies, LatencyHistograms, Messages, NodeFloor, NodeSummary,
    Outcomes, Retries, Safety, Throughput,
};

/// The version of this schema; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 6;
/// The oldest schema this build still reads: versions 4 and 5 only added fields, with defaults.
pub const OLDEST_READABLE_SCHEMA: u32 = 3;

/// A whole run.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The config's `name`.
    pub name: String,
    /// The config's `description`.
    pub description: String,
    /// The config file, as given on the command line.
    pub config: String,
    /// UTC start time, RFC 3339.
    #[schemars(extend("format" = "date-time"))]
    pub started_utc: String,
    /// Whether Ctrl-C cut the run short; then only some scenarios, or parts of one, ran.
    pub interrupted: bool,
    /// Where and how it ran.
    pub environment: Environment,
    /// One entry per scenario that ran, in sweep order.
    pub scenarios: Vec<ScenarioSummary>,
}

/// The machine and build.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// `git rev-parse HEAD` of the working tree, or `unknown`.
    pub git_commit: String,
    /// CPU model.
    pub cpu: String,
    /// Logical cores.
    pub cores: usize,
    /// The CPU frequency governor (`performance`, `powersave`, …), where the kernel shows it.
    #[serde(default)]
    pub cpu_governor: Option<String>,
    /// Kernel release.
    pub os: String,
    /// paxbench's version.
    pub paxbench_version: String,
    /// Versions of the main dependencies, from Cargo.lock when it is found.
    pub crates: Vec<(String, String)>,
    /// The config's seed.
    pub seed: u64,
}

/// One scenario (a cell of the sweep).
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSummary {
    /// Position in the sweep.
    pub index: usize,
    /// `field=value,…` of the swept fields, or `default`.
    pub label: String,
    /// The swept fields and their values.
    pub swept: Vec<(String, String)>,
    /// `spawn`, `attach` or `sim`.
    pub target: TargetKind,
    /// The settings reports group and label scenarios by.
    pub setup: Setup,
    /// Every setting of the scenario, as run.
    pub settings: Scenario,
    /// Whether Ctrl-C cut this scenario short.
    pub interrupted: bool,
    /// Seconds from the end of the warmup to the last outcome (virtual seconds on `sim`).
    pub measured_s: f64,
    /// When the measured window began, in seconds since the UNIX epoch (on `sim`, the
    /// scenario's wall-clock start plus its virtual warmup): the `StartTime` of its `.hlog`.
    pub window_start_unix_s: f64,
    /// Wall-clock seconds the scenario took, warmup and set-up included.
    pub wall_s: f64,
    /// How operations ended.
    pub outcomes: Outcomes,
    /// Rates.
    pub throughput: Throughput,
    /// Latency distributions, in microseconds.
    pub latency_us: Latencies,
    /// Races and livelock.
    pub contention: Contention,
    /// Retries and timeouts.
    pub retries: Retries,
    /// Proposal IDs.
    pub ids: Ids,
    /// Message cost.
    pub messages: Messages,
    /// The online safety checker.
    pub safety: Safety,
    /// Each node's counters over the scenario (real targets).
    pub nodes: Vec<NodeSummary>,
    /// Faults applied: seconds from the end of the warmup (negative during it), and what.
    pub faults: Vec<(f64, String)>,
    /// Recovery times, and the audit of the nodes' stores.
    #[serde(default)]
    pub reliability: Reliability,
    /// Memory and CPU of the generator and the spawned nodes, and the machine's noise.
    pub resources: ResourceSummary,
    /// Throughput and p99 of the second window of the run against the last (runs of 18 s or
    /// more): what a soak run drifted by.
    #[serde(default)]
    pub drift: Option<Drift>,
    /// With `measure.repeat` above 1: each repetition's headline figures and their spread.
    /// Every other field then pools the repetitions: histograms added losslessly, counts
    /// summed, rates over the summed measured time.
    #[serde(default)]
    pub repetitions: Option<Repetitions>,
    /// Attached runs: this run's place on a cluster it shares with other runs and generators.
    #[serde(default)]
    pub shared: Option<SharedCluster>,
    /// With `target.zones`: round trips configured and measured, and latency by zone.
    #[serde(default)]
    pub zones: Option<crate::report::zones::ZonesSummary>,
    /// With `protocol: multi-paxos`: what the leader roles did.
    #[serde(default)]
    pub leader: Option<crate::report::leader::LeaderSummary>,
    /// Each node's messages, bytes and fsyncs per decision: in the simulator over the measured
    /// window; on real nodes from their own counters, since their first poll after the warmup.
    #[serde(default)]
    pub node_load: Vec<crate::report::load::NodeLoadSummary>,
    /// The raw counts behind the ratios, so that runs can be merged exactly.
    pub counts: Counts,
}

/// An attached run on a cluster that other runs and generators may share (the run's tag and
/// key namespace are in `settings.run`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SharedCluster {
    /// How long after its scheduled instant (`measure.start_at`) the warmup began, in ms.
    pub start_late_ms: Option<f64>,
    /// Each node's clock against this generator's.
    pub clock_offsets: Vec<ClockOffsetSummary>,
    /// Decisions whose value an earlier run proposed: the cluster held them before this run
    /// (`keys: reuse`, or a namespace that collided). Not a violation.
    pub preexisting: u64,
    /// Decisions whose value another generator of this run proposed; `merge` checks them
    /// across the generators' evidence.
    pub other_generators: u64,
    /// Set by `merge`: how far apart the generators' measured windows began, in ms, each
    /// start read on the nodes' clock (its own plus its measured offset).
    pub window_spread_ms: Option<f64>,
    /// Set by `merge`: the check across every generator's evidence.
    pub cross_check: Option<CrossCheck>,
}

impl SharedCluster {
    /// One line on how the merged generators lined up and what the cross check found.
    pub fn merge_line(&self) -> String {
        let spread = self.window_spread_ms.map_or_else(String::new, |ms| {
            format!("windows began {ms:.1} ms apart; ")
        });
        let check = match &self.cross_check {
            Some(c) => format!(
                "cross-generator check: {} instances ({} shared by several generators), {} \
                 pre-existing, {} violations",
                c.instances, c.shared_instances, c.preexisting, c.violations
            ),
            None => "cross-generator check not run: a generator kept no evidence \
                     (`measure.evidence: true`)"
                .into(),
        };
        format!("{spread}{check}")
    }
}

/// A node's clock against the generator's, from the fastest ping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockOffsetSummary {
    /// The node.
    pub node: u32,
    /// Node clock minus generator clock, in ms.
    pub offset_ms: f64,
    /// The estimate is within this many ms (half the ping's round trip).
    pub bound_ms: f64,
}

/// `merge`'s safety check across generators: every instance any generator touched, with every
/// generator's proposals and decisions for it, read from their evidence files in instance
/// order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CrossCheck {
    /// Generators whose evidence was read.
    pub generators: u32,
    /// Instances checked.
    pub instances: u64,
    /// Instances more than one generator touched.
    pub shared_instances: u64,
    /// Decisions for values no generator of the run proposed, from earlier runs.
    pub preexisting: u64,
    /// Agreement and validity violations across generators.
    pub violations: u64,
    /// The first few, written out.
    pub examples: Vec<String>,
}

/// The spread of a scenario's headline figures over its repetitions.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Repetitions {
    /// Each repetition's figures, in the order they ran.
    pub runs: Vec<Headline>,
    /// Decisions per second.
    pub decisions_per_s: Spread,
    /// Median operation latency, microseconds.
    pub p50_us: Spread,
    /// 99th percentile, microseconds.
    pub p99_us: Spread,
    /// Retries per operation.
    pub retries_per_op: Spread,
    /// Preemptions per operation.
    pub preemptions_per_op: Spread,
}

/// One repetition's headline figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Headline {
    /// Its seed.
    pub seed: u64,
    /// Decisions per second.
    pub decisions_per_s: f64,
    /// Median operation latency, microseconds.
    pub p50_us: u64,
    /// 99th percentile, microseconds.
    pub p99_us: u64,
    /// Retries per operation.
    pub retries_per_op: f64,
    /// Preemptions per operation.
    pub preemptions_per_op: f64,
    /// Safety violations.
    pub violations: u64,
    /// The machine's CPU steal during it, percent.
    pub steal_pct: f64,
    /// CPU other processes used during it, percent of the machine.
    pub foreign_cpu_pct: f64,
    /// Its floor: the median over nodes of the ping round trip's p50 at its start, µs (0 on
    /// `sim`).
    pub ping_p50_us: u64,
    /// Its disk floor: the median over durable nodes of append + `fdatasync` p50, µs.
    pub disk_floor_p50_us: Option<u64>,
}

impl Headline {
    /// The headline figures of one run of a scenario.
    pub fn of(s: &ScenarioSummary) -> Self {
        Self {
            seed: s.settings.seed,
            decisions_per_s: s.throughput.decisions_per_s,
            p50_us: s.latency_us.op.p50,
            p99_us: s.latency_us.op.p99,
            retries_per_op: s.retries.retries_per_op,
            preemptions_per_op: s.contention.preemptions_per_op,
            violations: s.safety.violations,
            steal_pct: s.resources.steal_pct,
            foreign_cpu_pct: s.resources.foreign_cpu_pct,
            ping_p50_us: median_of(s.latency_us.floor.iter().map(|f| f.rtt.p50)).unwrap_or(0),
            disk_floor_p50_us: median_of(s.nodes.iter().filter_map(|n| n.disk_floor_p50_us)),
        }
    }
}

/// The median of some whole numbers (the lower middle one of an even count).
fn median_of(values: impl Iterator<Item = u64>) -> Option<u64> {
    let mut values: Vec<u64> = values.collect();
    values.sort_unstable();
    values.get(values.len().saturating_sub(1) / 2).copied()
}

impl Repetitions {
    /// The spread over `runs`.
    pub fn of(runs: Vec<Headline>) -> Self {
        let spread = |f: fn(&Headline) -> f64| Spread::of(&runs.iter().map(f).collect::<Vec<_>>());
        Self {
            decisions_per_s: spread(|h| h.decisions_per_s),
            p50_us: spread(|h| h.p50_us as f64),
            p99_us: spread(|h| h.p99_us as f64),
            retries_per_op: spread(|h| h.retries_per_op),
            preemptions_per_op: spread(|h| h.preemptions_per_op),
            runs,
        }
    }
}

/// The settings reports group and label scenarios by.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    /// Nodes in the cluster.
    pub nodes: u32,
    /// Proposers of this generator.
    pub proposers: u32,
    /// Keys of the workload.
    pub keys: u64,
    /// The ID scheme, as the config names it (`counter`, `timestamp`, …).
    pub id_scheme: String,
    /// The nodes' storage, as the config names it (`memory`, `durable`).
    pub storage: String,
}

impl Setup {
    /// The setup of `scenario`.
    pub fn of(scenario: &Scenario) -> Self {
        Self {
            nodes: scenario.target.nodes,
            proposers: scenario.workload.proposers,
            keys: scenario.workload.keys,
            id_scheme: display_value(&scenario.proposer.id_scheme),
            storage: display_value(&scenario.target.storage),
        }
    }
}

/// How the cluster came back from faults, and whether its stores kept every promise.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reliability {
    /// Each heal and restart.
    pub recoveries: Vec<RecoverySummary>,
    /// The post-run audit of every node's durable store (spawned durable clusters only).
    pub audit: Option<AuditSummary>,
    /// PROMISE and ACCEPTED replies the generator kept as evidence (0 when it kept none).
    #[serde(default)]
    pub acked_replies: u64,
}

/// The recovery from one heal or restart.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverySummary {
    /// Seconds from the end of the warmup.
    pub at_s: f64,
    /// What happened.
    pub what: String,
    /// Milliseconds until an attempt that started after it decided; `null`: none did.
    pub first_decision_ms: Option<f64>,
    /// Milliseconds until every node it concerned answered a proposer again; `null`: not all
    /// did, or the target cannot tell (the simulator).
    pub nodes_back_ms: Option<f64>,
    /// Milliseconds until every proposer (or client) had a decision of an attempt started
    /// after it; `null`: not all did before the run ended.
    #[serde(default)]
    pub clients_back_ms: Option<f64>,
}

/// The post-run audit of the nodes' stores.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditSummary {
    /// Stores read.
    pub stores: u64,
    /// Records read over every store's whole log.
    pub records: u64,
    /// Instances a phase-2 quorum of stores accepted under one proposal.
    pub chosen_in_stores: u64,
    /// Values the generator saw chosen, checked against the stores.
    pub chosen_checked: u64,
    /// Of those, values no longer held by a phase-2 quorum of stores (must be 0).
    pub chosen_lost: u64,
    /// PROMISE and ACCEPTED replies the generator received.
    pub replies: u64,
    /// Acknowledged `(node, instance)` states checked against the node's store.
    pub acks_checked: u64,
    /// Of those, states the store no longer backs (must be 0).
    pub acks_lost: u64,
    /// Violations found by replaying the stores' logs through the checker (must be 0).
    pub violations: u64,
    /// Multi-Paxos: slots below a store's persisted chosen prefix, checked against the stores.
    #[serde(default)]
    pub prefix_checked: u64,
    /// Of those, slots the stores do not hold chosen (must be 0).
    #[serde(default)]
    pub prefix_unbacked: u64,
    /// The first problems found.
    pub problems: Vec<String>,
}

impl AuditSummary {
    /// The summary of `report`, for a run that received `replies` PROMISEs and ACCEPTEDs.
    pub fn new(report: &paxbench_node::AuditReport, replies: u64) -> Self {
        Self {
            stores: report.stores as u64,
            records: report.records,
            chosen_in_stores: report.chosen_in_stores,
            chosen_checked: report.chosen_checked,
            chosen_lost: report.chosen_lost,
            replies,
            acks_checked: report.acks_checked,
            acks_lost: report.acks_lost,
            violations: report.violations,
            prefix_checked: report.prefix_checked,
            prefix_unbacked: report.prefix_unbacked,
            problems: report.problems.clone(),
        }
    }

    /// Problems: lost values, lost acknowledgements, violations.
    pub fn problems(&self) -> u64 {
        self.chosen_lost + self.acks_lost + self.violations + self.prefix_unbacked
    }
}

impl NodeSummary {
    /// A node's counters over the scenario.
    fn of(n: &paxbench_quic::NodeStats) -> Self {
        Self {
            node: n.node,
            paxos_in: n.paxos_in,
            paxos_out: n.paxos_out,
            batches: n.batches,
            records: n.records,
            records_per_batch: per(n.records as f64, n.batches),
            max_batch: n.max_batch,
            commit_p50_us: n.commit_us.p50,
            commit_p99_us: n.commit_us.p99,
            frames_per_write: per(n.transport.frames_out as f64, n.transport.writes),
            disk_floor_p50_us: (n.disk_floor_us.count > 0).then_some(n.disk_floor_us.p50),
            disk_floor_p99_us: (n.disk_floor_us.count > 0).then_some(n.disk_floor_us.p99),
            most_held: n.most_held,
            evicted: n.evicted,
            store_reads: n.store_reads,
            checkpoints: n.checkpoints,
        }
    }
}

impl SharedCluster {
    /// What one generator saw of a shared cluster; `merge` adds the cross-generator figures.
    fn of(output: &RunOutput) -> Self {
        Self {
            start_late_ms: output.start_late.map(|d| d.as_secs_f64() * 1e3),
            clock_offsets: output
                .clock_offsets
                .iter()
                .map(|c| ClockOffsetSummary {
                    node: c.node,
                    offset_ms: c.offset_ns as f64 / 1e6,
                    bound_ms: c.bound_ns as f64 / 1e6,
                })
                .collect(),
            preexisting: output.checker.preexisting,
            other_generators: output.checker.other_generators,
            window_spread_ms: None,
            cross_check: None,
        }
    }
}

impl Reliability {
    /// The recoveries after each fault, timed from it, and the audit of the nodes' stores.
    fn of(output: &RunOutput, since_warmup: &dyn Fn(Time) -> f64) -> Self {
        Self {
            recoveries: output
                .protocol
                .recoveries
                .iter()
                .map(|r| {
                    let after =
                        |t: Option<Time>| t.map(|t| t.0.saturating_sub(r.at.0) as f64 / 1e6);
                    RecoverySummary {
                        at_s: since_warmup(r.at),
                        what: r.what.clone(),
                        first_decision_ms: after(r.first_decision),
                        nodes_back_ms: after(r.nodes_back),
                        clients_back_ms: after(r.clients_back),
                    }
                })
                .collect(),
            audit: output
                .audit
                .as_ref()
                .map(|a| AuditSummary::new(a, output.acked_replies)),
            acked_replies: output.acked_replies,
        }
    }
}

impl ScenarioSummary {
    /// Summarises what a driver measured.
    pub fn new(scenario: &Scenario, output: &RunOutput) -> Self {
        let ops = &output.ops;
        let protocol = &output.protocol;
        let measured_s = output.measured.as_secs_f64();
        let warmup = scenario.workload.warmup.as_secs_f64();
        let since_warmup = |at: Time| at.0 as f64 / 1e9 - warmup;
        let decisions = ops.won;
        let finished = protocol.ops_finished;
        let open = scenario.workload.mode == crate::config::LoopMode::Open;
        let (from_acceptors, acceptor_bytes) = if output.node_stats.is_empty() {
            (protocol.acceptor_messages, protocol.acceptor_bytes)
        } else {
            output.node_messages
        };
        let high_growth = match (protocol.first_id, protocol.last_id) {
            (Some((t0, first)), Some((t1, last))) if t1 > t0 => {
                (last.high.saturating_sub(first.high)) as f64 / ((t1.0 - t0.0) as f64 / 1e9)
            }
            _ => 0.0,
        };
        let violations: u64 = output.violation_counts.iter().map(|(_, n)| n).sum();
        let mut summary = Self {
            index: scenario.index,
            label: scenario.label.clone(),
            swept: scenario.swept.clone(),
            target: scenario.target.kind,
            setup: Setup::of(scenario),
            settings: scenario.clone(),
            interrupted: output.interrupted,
            measured_s,
            window_start_unix_s: output
                .window_start
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            wall_s: output.wall.as_secs_f64(),
            outcomes: Outcomes {
                started: ops.started,
                won: ops.won,
                lost_race: ops.lost,
                gave_up: ops.gave_up,
                timed_out: ops.timed_out,
                unfinished: output.unfinished,
            },
            throughput: Throughput {
                target_rate: open.then_some(scenario.workload.rate),
                ..Throughput::default()
            },
            latency_us: Latencies {
                floor: output
                    .floor
                    .iter()
                    .map(|(node, rtt)| NodeFloor {
                        node: *node,
                        rtt: *rtt,
                    })
                    .collect(),
                ..Latencies::default()
            },
            contention: Contention {
                rounds: protocol
                    .rounds
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(attempts, n)| (attempts as u32, *n))
                    .collect(),
                dueling_episodes: protocol.duels,
                livelock_windows: protocol.livelock_windows,
                by_key_rank: if scenario.workload.distribution
                    == crate::config::KeyDistribution::Uniform
                {
                    Vec::new()
                } else {
                    protocol
                        .by_key
                        .iter()
                        .enumerate()
                        .filter(|(_, (ops, _))| *ops > 0)
                        .map(|(key, (ops, preemptions))| (key as u32 + 1, *ops, *preemptions))
                        .collect()
                },
                ..Contention::default()
            },
            retries: Retries::default(),
            ids: Ids {
                collisions: output.checker.id_collisions,
                reused: output.checker.id_reuses,
                high_growth_per_s: high_growth,
                highest: protocol
                    .last_id
                    .map(|(_, id)| id.to_string())
                    .unwrap_or_default(),
            },
            messages: Messages {
                from_proposers: protocol.messages,
                from_acceptors,
                ..Messages::default()
            },
            safety: Safety {
                violations,
                by_kind: output
                    .violation_counts
                    .iter()
                    .map(|(kind, n)| ((*kind).to_string(), *n))
                    .collect(),
                examples: output.violation_examples.clone(),
                expected: scenario.expect_violations,
            },
            nodes: output.node_stats.iter().map(NodeSummary::of).collect(),
            resources: {
                let mut resources = output.resources.clone();
                let decided: Vec<u64> = output.ops.seconds.iter().map(|s| s.won).collect();
                resources.set_cpu_per_decision(&decided);
                resources
            },
            drift: Drift::of(&output.ops.seconds),
            repetitions: None,
            shared: (scenario.target.kind == TargetKind::Attach).then(|| SharedCluster::of(output)),
            zones: crate::report::zones::ZonesSummary::new(scenario, output),
            node_load: crate::report::load::NodeLoadSummary::of(&protocol.node_load, decisions),
            leader: output
                .leaders
                .as_ref()
                .map(crate::report::leader::LeaderSummary::new),
            counts: Counts {
                ops_finished: finished,
                attempts: protocol.attempts,
                retries: protocol.retries,
                preemptions: protocol.preemptions,
                ops_preempted: protocol.ops_preempted,
                timeouts: protocol.timeouts,
                backoff_ns: protocol.backoff_ns.min(u128::from(u64::MAX)) as u64,
                livelock_ns: protocol.livelock_ns.min(u128::from(u64::MAX)) as u64,
                bytes_from_proposers: protocol.bytes,
                bytes_from_acceptors: acceptor_bytes,
            },
            faults: output
                .protocol
                .faults
                .iter()
                .map(|(at, what)| (since_warmup(*at), what.clone()))
                .collect(),
            reliability: Reliability::of(output, &since_warmup),
        };
        summary.derive(&output.latency_histograms());
        summary
    }

    /// Derives every figure that is a rate, a ratio or a percentile from what adds up across
    /// runs: `measured_s`, `outcomes`, `counts`, the message totals, and `histograms`. The one
    /// place that does, for a run and for merged or pooled runs alike. Each struct is built
    /// field by field, so a figure added to one does not compile until it is derived here.
    pub(crate) fn derive(&mut self, histograms: &LatencyHistograms) {
        let measured_s = self.measured_s;
        let rate = |n: u64| {
            if measured_s > 0.0 {
                n as f64 / measured_s
            } else {
                0.0
            }
        };
        let outcomes = &self.outcomes;
        let counts = &self.counts;
        let decisions = outcomes.won;
        let completed = outcomes.won + outcomes.lost_race + outcomes.gave_up + outcomes.timed_out;
        let finished = counts.ops_finished;
        let start_lag = Percentiles::of(histograms.start_lag);
        let target_rate = self.throughput.target_rate;
        let achieved_rate = target_rate.map(|_| rate(outcomes.started));
        let behind = match (target_rate, achieved_rate) {
            (Some(target), Some(achieved)) => start_lag.p99 > 1_000 || achieved < 0.95 * target,
            _ => false,
        };
        self.throughput = Throughput {
            decisions_per_s: rate(decisions),
            ops_per_s: rate(completed),
            target_rate,
            achieved_rate,
            // A part that fell behind stays behind in a merge, whatever the pooled figures say.
            fell_behind: self.throughput.fell_behind || behind,
        };
        self.latency_us = Latencies {
            op: Percentiles::of(histograms.op),
            service: Percentiles::of(histograms.service),
            start_lag,
            phase1: Percentiles::of(histograms.phase1),
            phase2: Percentiles::of(histograms.phase2),
            floor: std::mem::take(&mut self.latency_us.floor),
        };
        let contention = std::mem::take(&mut self.contention);
        self.contention = Contention {
            preemptions_per_op: per(counts.preemptions as f64, finished),
            preempted_share: per(counts.ops_preempted as f64, finished),
            rounds: contention.rounds,
            dueling_episodes: contention.dueling_episodes,
            livelock_windows: contention.livelock_windows,
            livelock_ms: counts.livelock_ns as f64 / 1e6,
            by_key_rank: contention.by_key_rank,
        };
        self.retries = Retries {
            retries_per_op: per(counts.retries as f64, finished),
            timeouts_per_op: per(counts.timeouts as f64, finished),
            backoff_ms_per_op: per(counts.backoff_ns as f64 / 1e6, finished),
        };
        let Messages {
            from_proposers,
            from_acceptors,
            ..
        } = self.messages;
        self.messages = Messages {
            from_proposers,
            from_acceptors,
            per_decision: per((from_proposers + from_acceptors) as f64, decisions),
            bytes_per_decision: per(
                (counts.bytes_from_proposers + counts.bytes_from_acceptors) as f64,
                decisions,
            ),
        };
    }

    /// A figure's median over the repetitions, or `single` (the figure itself) without them.
    pub fn median_or(&self, spread: fn(&Repetitions) -> &Spread, single: f64) -> f64 {
        self.repetitions
            .as_ref()
            .map_or(single, |r| spread(r).median)
    }

    /// Violations that were not expected, the audit's problems included.
    pub fn unexpected_violations(&self) -> u64 {
        if self.safety.expected {
            0
        } else {
            self.safety.violations
                + self
                    .reliability
                    .audit
                    .as_ref()
                    .map_or(0, AuditSummary::problems)
        }
    }
}

impl Summary {
    /// The `summary.json` of a results folder: the one reader that compare, merge, charts and
    /// the reliability table share.
    pub fn load(dir: &std::path::Path) -> Result<Self, crate::error::Error> {
        let path = dir.join("summary.json");
        let text = std::fs::read_to_string(&path).map_err(|source| crate::error::Error::Io {
            context: format!("reading {}", path.display()),
            source,
        })?;
        let fail = |message: String| {
            crate::error::Error::Scenario(format!("{}: {message}", path.display()))
        };
        #[derive(Deserialize)]
        struct Version {
            schema_version: u32,
        }
        let version: Version = serde_json::from_str(&text)
            .map_err(|e| fail(format!("not a paxbench summary: {e}")))?;
        if !(OLDEST_READABLE_SCHEMA..=SCHEMA_VERSION).contains(&version.schema_version) {
            return Err(fail(format!(
                "summary schema {}, this paxbench reads schema {SCHEMA_VERSION}: run it again \
                 with this version",
                version.schema_version
            )));
        }
        serde_json::from_str(&text).map_err(|e| fail(format!("not a paxbench summary: {e}")))
    }
}

/// The JSON Schema of [`Summary`], pretty-printed.
pub fn schema_json() -> String {
    let mut schema = schemars::schema_for!(Summary);
    // std's `Duration` is `{secs, nanos}`, and serde refuses any other field in it; schemars
    // leaves its schema open.
    if let Some(duration) = schema
        .get_mut("$defs")
        .and_then(|defs| defs.get_mut("Duration"))
        .and_then(serde_json::Value::as_object_mut)
    {
        duration.insert("additionalProperties".into(), false.into());
    }
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_of_another_schema_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("summary.json"),
            r#"{"schema_version": 1, "name": "old"}"#,
        )
        .unwrap();
        let error = Summary::load(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("summary.json") && error.contains("summary schema 1"),
            "{error}"
        );
    }
}
