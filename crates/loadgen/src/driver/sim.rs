//! The simulator target: the scenario's proposers and nodes in the core's deterministic
//! simulator, in virtual time. The same seed gives the same summary.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use paxbench_core::acceptor::AcceptorConfig;
use paxbench_core::sim::{Address, Durability, Fault, Latency, LinkModel, Sim, SimConfig};
use paxbench_core::{NodeId, ProposerId, Time};
use paxbench_node::{LearnerFanout, StorageMode};
use paxbench_quic::LinkFaults;

use super::fault_plan::{FaultPlan, Planned};
use super::protocol::protocol_config;
use super::{RunOutput, proposer_configs};
use crate::config::Scenario;
use crate::driver::workload::Generator;
use crate::error::Error;
use crate::measure::ProtocolMetrics;
use crate::measure::resources::ResourceSampler;

/// Simulated steps between checks of the interrupt flag.
const STEPS_PER_CHECK: u32 = 4096;

/// The epoch of simulated proposer clocks: a fixed, realistic wall-clock reading (2026-01-01),
/// so timestamp IDs look as they would on a real machine and runs stay reproducible.
const SIM_EPOCH_NS: u64 = 1_767_225_600_000_000_000;

/// A run bounded by operation count alone stops here in virtual time.
const SIM_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// The scenario's simulated network with `extra` faults on top: a fault's drop or duplicate
/// share replaces the scenario's when set, its delay adds to the mean latency. With zones, the
/// zone pair gives each message its delay, and the link adds only a fault's.
fn links(scenario: &Scenario, extra: &LinkFaults) -> LinkModel {
    let latency = if scenario.target.zones.is_some() {
        Latency::Constant(Duration::from_micros(extra.delay_us))
    } else {
        let mut latency = scenario.target.sim.latency;
        latency.mean_us += extra.delay_us as f64;
        latency.to_latency()
    };
    let share = |fault: f64, base: f64| if fault > 0.0 { fault } else { base };
    LinkModel {
        latency,
        drop: share(extra.drop, scenario.target.sim.drop),
        duplicate: share(extra.duplicate, scenario.target.sim.duplicate),
        ..LinkModel::default()
    }
}

/// The plan as core faults. Nodes are numbered from 0 in the simulator.
fn faults(scenario: &Scenario, plan: &FaultPlan) -> Vec<(Time, Fault)> {
    let node = |n: u32| NodeId(n - 1);
    let mut faults = Vec::new();
    for step in &plan.steps {
        let at = step.at;
        match &step.action {
            Planned::Kill(n) => faults.push((at, Fault::Crash(node(*n)))),
            Planned::Restart(n) => faults.push((at, Fault::Restart(node(*n)))),
            Planned::KillLeader(down) => faults.push((at, Fault::CrashLeader { down: *down })),
            Planned::Cut(cuts) => {
                let proposer = |p: u32| Address::Proposer(ProposerId(p));
                let pairs = cuts
                    .node_pairs()
                    .iter()
                    .map(|&(a, b)| (Address::Node(node(a)), Address::Node(node(b))))
                    .chain(
                        cuts.proposer_pairs(scenario.target.nodes)
                            .into_iter()
                            .map(|(p, n)| (proposer(p), Address::Node(node(n)))),
                    )
                    .collect();
                faults.push((at, Fault::Cut(pairs)));
            }
            Planned::ClockStep {
                proposers,
                delta_ns,
            } => faults.extend(proposers.iter().map(|&proposer| {
                (
                    at,
                    Fault::ClockStep {
                        proposer,
                        delta_ns: *delta_ns,
                    },
                )
            })),
            // A node whose disk fails falls silent: in the simulator, a crash.
            Planned::DiskFail(disk) => faults.push((at, Fault::Crash(node(disk.node)))),
            Planned::Heal => {
                faults.push((at, Fault::Heal));
                faults.push((at, Fault::SetLinks(links(scenario, &LinkFaults::default()))));
            }
            Planned::Links(extra) => faults.push((at, Fault::SetLinks(links(scenario, extra)))),
        }
    }
    faults
}

/// Runs `scenario` in the simulator until its workload is done, its time is up, or
/// `interrupt` is set.
pub fn run(
    scenario: &Scenario,
    evidence: &Path,
    interrupt: &AtomicBool,
    progress: &indicatif::ProgressBar,
) -> Result<RunOutput, Error> {
    let started = Instant::now();
    let started_wall = std::time::SystemTime::now();
    let nodes = scenario.target.nodes as usize;
    let proposers = scenario.workload.proposers as usize;
    let mut config = SimConfig::new(nodes, proposers, scenario.seed);
    config.acceptor = AcceptorConfig {
        reject_mode: scenario.target.reject_mode,
        notify_learners: scenario.target.learner_fanout == LearnerFanout::All,
    };
    // A memory node that crashes comes back empty, in the simulator as on a real cluster.
    config.durability = match scenario.target.storage {
        StorageMode::Wal | StorageMode::Redb => Durability::Durable,
        StorageMode::Memory => Durability::Volatile,
    };
    config.fsync = Duration::from_micros(scenario.target.sim.fsync_us);
    config.links = links(scenario, &LinkFaults::default());
    config.geography = scenario.geography()?;
    let plan = FaultPlan::new(scenario);
    config.faults = faults(scenario, &plan);
    config.proposers = proposer_configs(scenario, nodes, SIM_EPOCH_NS);
    config.quorums = scenario.quorums();
    // The simulator numbers its nodes from 0: node N of a config is NodeId(N - 1).
    let node_ids: Vec<NodeId> = (0..config.acceptors as u32).map(NodeId).collect();
    config.protocol = protocol_config(scenario, &node_ids, |n| NodeId(n.saturating_sub(1)));
    // The host's drain deadline ends a timed run; this bounds one counted in operations.
    config.until = Time::ZERO + SIM_LIMIT;
    // The simulator's host numbers its proposers from 0.
    let generator = Generator::new(scenario, paxbench_core::ProposerId(0));
    let warmup_end = generator.warmup_end();
    let mut sim = Sim::new(config, generator).map_err(|e| Error::Scenario(e.to_string()))?;
    // Acceptors and learners report on instances long after their operations ended, so the
    // checker keeps its facts on disk to check them; the file is removed after the run, since
    // the simulator has no stores to audit.
    *sim.checker_mut() = super::evidence_checker(evidence, true)?;
    let until = sim.end();
    let mut protocol =
        ProtocolMetrics::new(proposers, warmup_end, scenario.measure.livelock_window);
    let generator_process = [("generator".to_string(), std::process::id())];
    // The simulator's warmup is virtual time: the memory slope covers the whole run.
    let mut resources = ResourceSampler::new(&generator_process, Duration::ZERO);
    let mut next_sample = Instant::now() + Duration::from_secs(1);
    let mut interrupted = false;
    'run: loop {
        for _ in 0..STEPS_PER_CHECK {
            if !sim.step(&mut protocol) {
                break 'run;
            }
        }
        if Instant::now() >= next_sample {
            next_sample += Duration::from_secs(1);
            resources.sample(started.elapsed(), &generator_process);
        }
        if interrupt.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        let ops = &sim.workload().metrics;
        progress.set_message(format!(
            "virtual {:.2} s · {} ops ended",
            sim.now().0 as f64 / 1e9,
            ops.completed()
        ));
    }
    let end = sim.now().min(until);
    protocol.finish(end);
    for step in &plan.steps {
        if step.at <= end {
            protocol.note_fault(step.at, step.label.clone());
        }
    }
    let leaders = scenario
        .target
        .protocol
        .has_leader()
        .then(|| sim.stats().leaders);
    let (generator, mut checker) = sim.into_parts();
    super::finish_evidence(&mut checker, evidence, false)?;
    let mut output = RunOutput::measured(
        generator,
        &checker,
        protocol,
        started.elapsed(),
        interrupted,
        resources.finish(started.elapsed(), &generator_process),
        started_wall,
    );
    output.leaders = leaders;
    Ok(output)
}
