//! A scenario's fault schedule, resolved once into typed steps: times in [`Time`], clock steps in
//! nanoseconds, partitions as [`Cuts`]. Both drivers apply the same plan; the simulator turns a
//! step into core faults, the real driver into process kills and fault-layer settings.

use std::time::Duration;

use paxbench_core::{ProposerIndex, Time};
use paxbench_quic::LinkFaults;

use crate::config::{DiskFail, FaultAction, Scenario};
use crate::driver::topology::Cuts;

/// One step of the plan.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedFault {
    /// When, from the start of the run (warmup included).
    pub at: Time,
    /// The config's name for it, for reports.
    pub label: String,
    /// What happens.
    pub action: Planned,
}

/// What a step does, in driver terms. Nodes are numbered from 1, as in configs.
#[derive(Clone, Debug, PartialEq)]
pub enum Planned {
    /// Kill a node.
    Kill(u32),
    /// Restart a killed node with its data.
    Restart(u32),
    /// Kill the Multi-Paxos leader, and restart it this much later.
    KillLeader(Duration),
    /// Cut these links until the next heal (replacing any earlier cut).
    Cut(Cuts),
    /// Undo every cut and every link fault.
    Heal,
    /// Step these proposers' wall clocks.
    ClockStep {
        /// The proposers.
        proposers: Vec<ProposerIndex>,
        /// The step, in nanoseconds (negative: back).
        delta_ns: i64,
    },
    /// Make a node's disk fail.
    DiskFail(DiskFail),
    /// Set these faults on every link.
    Links(LinkFaults),
}

/// The whole schedule, in time order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultPlan {
    /// The steps.
    pub steps: Vec<PlannedFault>,
}

impl FaultPlan {
    /// The plan of `scenario` (whose kill loops were expanded when it was made).
    pub fn new(scenario: &Scenario) -> Self {
        let steps = scenario
            .faults
            .iter()
            .filter_map(|step| {
                let action = match &step.action {
                    FaultAction::Kill(node) => Planned::Kill(*node),
                    FaultAction::Restart(node) => Planned::Restart(*node),
                    FaultAction::KillLeader(k) => {
                        Planned::KillLeader(Duration::from_secs_f64(k.down_s.max(0.0)))
                    }
                    FaultAction::Isolate(_) | FaultAction::Partition(_) => Planned::Cut(
                        step.action
                            .cuts(scenario.target.nodes, scenario.workload.proposers)?,
                    ),
                    FaultAction::Heal => Planned::Heal,
                    FaultAction::ClockJump(jump) => Planned::ClockStep {
                        proposers: jump
                            .proposer_indexes(scenario.workload.proposers)
                            .into_iter()
                            .map(ProposerIndex)
                            .collect(),
                        delta_ns: (jump.by_ms * 1e6) as i64,
                    },
                    FaultAction::DiskFail(disk) => Planned::DiskFail(disk.clone()),
                    FaultAction::SetDrop(_)
                    | FaultAction::SetDuplicate(_)
                    | FaultAction::SetDelayUs(_) => Planned::Links(step.action.link_faults()?),
                    FaultAction::KillLoop(_) => return None,
                };
                Some(PlannedFault {
                    at: Time::from_secs_f64(step.at_s),
                    label: step.action.label(),
                    action,
                })
            })
            .collect();
        Self { steps }
    }
}
