//! The fault schedule applied to a real cluster: process kills and restarts (a leader's only
//! once its last counters are in), partitions and link faults through every node's fault
//! layer, clock steps on proposers, and disk faults, all by admin commands.

use std::time::Duration;

use paxbench_core::rng::Stream;
use paxbench_core::{NodeId, Time};
use paxbench_quic::{AdminCommand, FaultSpec, Link, LinkFaults, PeerName, Transport};
use tracing::{info, warn};

use super::cluster::TargetCluster;
use super::{Doomed, Driver};
use crate::driver::fault_plan::Planned;
use crate::driver::topology::Cuts;
use crate::driver::zones::node_fault_spec;

impl<T: Transport + std::fmt::Debug> Driver<'_, T> {
    /// Applies step `index` of the fault plan: a process kill or restart, a clock step, or
    /// fault-layer and disk settings for the generator and (through admin commands) the nodes.
    pub(super) fn apply_fault(&mut self, index: usize, cluster: &mut TargetCluster) {
        let step = self.plan.steps[index].clone();
        let now = self.now();
        let label = step.label;
        self.protocol.note_fault(now, label.clone());
        info!(at_ns = step.at.0, "fault: {label}");
        match step.action {
            Planned::Kill(node) => cluster.kill_node(node),
            Planned::KillLeader(down) => match self.leader.take() {
                Some(node) => {
                    let request = self
                        .link_to(node)
                        .map(|link| self.control.send(&link, AdminCommand::Stats));
                    self.doomed = Some(Doomed {
                        node,
                        request,
                        answered: false,
                        deadline: now + Duration::from_millis(200),
                        down,
                        label,
                    });
                }
                None => warn!("kill-leader: no node has answered a client as leader yet; skipped"),
            },
            Planned::Restart(node) => {
                if let Err(e) = cluster.start_node(node) {
                    warn!("restarting node {node}: {e}");
                }
                self.protocol.start_recovery(now, label, vec![node]);
            }
            Planned::Cut(cuts) => {
                self.cuts = cuts;
                for (link, id) in self.links.clone().iter().zip(self.node_ids.clone()) {
                    let partitioned = self
                        .cuts
                        .cut_from(id)
                        .into_iter()
                        .map(|n| PeerName::Node(NodeId(n)).to_string())
                        .collect();
                    let spec =
                        node_fault_spec(self.scenario, id, LinkFaults::default(), partitioned, 0);
                    self.set_node_faults(link, spec);
                }
            }
            Planned::Heal => {
                // Nodes some proposer could not reach must be heard from again; after a link
                // fault, every node.
                let mut concerned: Vec<u32> = self
                    .node_ids
                    .iter()
                    .copied()
                    .filter(|n| {
                        (0..self.scenario.workload.proposers).any(|p| !self.cuts.can_reach(p, *n))
                    })
                    .collect();
                if concerned.is_empty() {
                    concerned = self.node_ids.clone();
                }
                self.cuts = Cuts::default();
                let _ = self.endpoint.faults().set(&FaultSpec::default());
                for (link, id) in self.links.clone().iter().zip(self.node_ids.clone()) {
                    let spec =
                        node_fault_spec(self.scenario, id, LinkFaults::default(), Vec::new(), 0);
                    self.set_node_faults(link, spec);
                }
                self.protocol.start_recovery(now, label, concerned);
            }
            Planned::ClockStep {
                proposers,
                delta_ns,
            } => {
                for proposer in proposers {
                    self.host.step_clock(proposer, delta_ns);
                }
            }
            Planned::DiskFail(disk) => {
                if let Some(link) = self
                    .node_ids
                    .iter()
                    .position(|n| *n == disk.node)
                    .map(|i| self.links[i].clone())
                {
                    self.control
                        .send(&link, AdminCommand::SetDiskFault(disk.mode));
                }
            }
            Planned::Links(all) => {
                let seed = Stream::Faults.seed(self.scenario.seed);
                let spec = FaultSpec {
                    all,
                    seed,
                    ..FaultSpec::default()
                };
                let _ = self.endpoint.faults().set(&spec);
                for (link, id) in self.links.clone().iter().zip(self.node_ids.clone()) {
                    let spec = node_fault_spec(self.scenario, id, all, Vec::new(), seed);
                    self.set_node_faults(link, spec);
                }
            }
        }
    }

    /// The link to node `node`.
    fn link_to(&self, node: u32) -> Option<Link> {
        let position = self.node_ids.iter().position(|n| *n == node)?;
        self.links.get(position).cloned()
    }

    /// Kills the doomed leader once its counters are in (or after 200 ms without them), and
    /// restarts the killed leaders whose time down is over.
    pub(super) fn restart_due(&mut self, now: Time, cluster: &mut TargetCluster) {
        if let Some(doomed) = self.doomed.take_if(|d| d.answered || now >= d.deadline) {
            info!(
                "killing the leader, node {}, for {:?}",
                doomed.node, doomed.down
            );
            cluster.kill_node(doomed.node);
            self.restarts.push((now + doomed.down, doomed.node));
            self.protocol.start_recovery(now, doomed.label, Vec::new());
        }
        let (due, later): (Vec<_>, Vec<_>) = self.restarts.iter().partition(|(at, _)| *at <= now);
        self.restarts = later;
        for (_, node) in due {
            info!("restarting node {node}, the leader killed earlier");
            self.protocol
                .note_fault(now, format!("restart node {node} (the killed leader)"));
            if let Err(e) = cluster.start_node(node) {
                warn!("restarting node {node}: {e}");
            }
        }
    }

    /// Sends a fault setting without waiting for the answer: replies and Paxos traffic share the
    /// inbox, and the driver loop must keep serving proposers.
    fn set_node_faults(&mut self, link: &Link, spec: FaultSpec) {
        self.control
            .send(link, AdminCommand::SetFaults(Box::new(spec)));
    }
}
