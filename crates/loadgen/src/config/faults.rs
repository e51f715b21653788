//! The fault schedule as written (`faults:` steps and their actions), its expansion (kill
//! loops into kills and restarts) and its ordering rules.

use paxbench_quic::{DiskFault, LinkFaults};
use serde::{Deserialize, Serialize};

use super::label::display_value;
use crate::driver::topology::Cuts;

/// One step of the fault schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
// The action is flattened in, which `additionalProperties` cannot see past.
#[schemars(extend("unevaluatedProperties" = false))]
pub struct FaultStep {
    /// Seconds after the start of the run (warmup included).
    pub at_s: f64,
    /// What happens.
    #[serde(flatten)]
    pub action: FaultAction,
}

/// A fault.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FaultAction {
    /// Kill a node (SIGKILL when spawned; a crash in the simulator).
    Kill(u32),
    /// Restart a killed node with its data.
    Restart(u32),
    /// Multi-Paxos (simulator): kill whichever node leads at that moment and restart it after
    /// `down_s`.
    KillLeader(KillLeader),
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
            FaultAction::KillLeader(_) => "kill the leader".into(),
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

/// A kill of the Multi-Paxos leader, whoever it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KillLeader {
    /// Seconds it stays down before it restarts (and rejoins as a follower).
    pub down_s: f64,
}

/// A minority crash loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockJump {
    /// Milliseconds; negative steps the clock back.
    pub by_ms: f64,
    /// Proposer indexes (from 0); empty means every proposer.
    #[serde(default)]
    pub proposers: Vec<u32>,
}

/// A disk fault on one node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiskFail {
    /// The node.
    pub node: u32,
    /// `fail-write` or `fail-fsync`.
    pub mode: DiskFault,
}

/// The schedule as run: kill loops expanded into kills and restarts, in time order. A schedule
/// that fails [`check_fault_order`] is returned as written, for validation to report.
pub(super) fn expand_faults(steps: &[FaultStep]) -> Vec<FaultStep> {
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

/// The most kills one kill loop may make.
const MAX_LOOP_KILLS: f64 = 10_000.0;

/// Steps must be in time order; a kill loop must make progress.
pub(super) fn check_fault_order(steps: &[FaultStep]) -> Result<(), String> {
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
