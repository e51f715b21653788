//! What the real driver learns from the nodes' own counters: the leader roles' work across
//! restarts, each node's load over the measured window, and whether the nodes run the
//! scenario's protocol; and the leader settings a spawned Multi-Paxos node runs with.

use std::collections::HashMap;
use std::time::Duration;

use paxbench_core::leader::LeaderStats;
use paxbench_node::LeaderSection;
use paxbench_quic::NodeStats;

use crate::config::Scenario;
use crate::error::Error;
use crate::measure::NodeLoad;

/// The node setting of a scenario's leader knobs, the proposers' phase timeouts and the
/// phase-1 quorum: what a spawned Multi-Paxos node runs with (and an attached one should).
pub fn leader_section(scenario: &Scenario) -> LeaderSection {
    let leader = &scenario.target.leader;
    let millis = |d: Duration| (d.as_millis() as u64).max(1);
    LeaderSection {
        heartbeat_ms: millis(leader.heartbeat),
        election_timeout_ms: millis(leader.election_timeout),
        phase1_timeout_ms: millis(scenario.proposer.phase1_timeout),
        phase2_timeout_ms: millis(scenario.proposer.phase2_timeout),
        batch: leader.batch as usize,
        pipeline: leader.pipeline as usize,
        forward: leader.forward,
        initial: leader.initial,
        thrifty: leader.thrifty,
        phase1_quorum: Some(scenario.quorums().phase1),
    }
}

/// Refuses a cluster whose nodes run another protocol than the scenario's: Multi-Paxos clients
/// against vanilla nodes would only be ignored, and vanilla proposers against leaders would
/// measure neither protocol.
pub fn check_protocol(scenario: &Scenario, stats: &[NodeStats]) -> Result<(), Error> {
    let wanted = scenario.target.protocol;
    for node in stats {
        if node.protocol != wanted {
            return Err(Error::Scenario(format!(
                "node {} runs {}, but `target.protocol` is {wanted}: start the nodes with \
                 `protocol: {wanted}` (node config or --protocol), or change the scenario",
                node.node, node.protocol
            )));
        }
    }
    Ok(())
}

/// One node process's life as its stats polls saw it.
#[derive(Default)]
struct Life {
    uptime_ms: u64,
    /// [`NodeStats::life`] of the life seen last (0: none yet).
    id: u64,
    leader: LeaderStats,
    /// The counts of the node's earlier lives (a killed node restarts from zero).
    earlier: LeaderStats,
}

/// The nodes' counters over a run: polled once a second, and once more at the end.
#[derive(Default)]
pub struct NodeTally {
    lives: HashMap<u32, Life>,
    /// Each node's counters when the warmup ended (its first poll after it).
    at_warmup_end: HashMap<u32, NodeStats>,
}

impl NodeTally {
    /// A poll's answer, `measuring` once the warmup is over.
    pub fn note(&mut self, stats: &NodeStats, measuring: bool) {
        let life = self.lives.entry(stats.node).or_default();
        // A new life names itself; its uptime alone can pass the old one's before it is polled.
        let restarted = (life.id != 0 && stats.life != life.id) || stats.uptime_ms < life.uptime_ms;
        if restarted {
            let ended = std::mem::take(&mut life.leader);
            life.earlier.add(&ended);
        }
        life.uptime_ms = stats.uptime_ms;
        life.id = stats.life;
        if let Some(leader) = stats.leader {
            life.leader = leader;
        }
        if measuring {
            self.at_warmup_end
                .entry(stats.node)
                .or_insert_with(|| stats.clone());
        }
    }

    /// Every leader role's counts over the run, earlier lives included; `None` for a
    /// vanilla cluster.
    pub fn leaders(&self, multi_paxos: bool) -> Option<LeaderStats> {
        multi_paxos.then(|| {
            let mut total = LeaderStats::default();
            for life in self.lives.values() {
                total.add(&life.earlier);
                total.add(&life.leader);
            }
            total
        })
    }

    /// Each node's work since the warmup ended, in node order, given its final counters. A
    /// node restarted since counts from its restart.
    pub fn node_load(&self, last: &[NodeStats]) -> Vec<NodeLoad> {
        let mut last: Vec<&NodeStats> = last.iter().collect();
        last.sort_by_key(|s| s.node);
        last.iter()
            .map(|after| {
                let since = self.at_warmup_end.get(&after.node).filter(|before| {
                    before.life == after.life && before.uptime_ms <= after.uptime_ms
                });
                let delta = |f: fn(&NodeStats) -> u64| f(after).saturating_sub(since.map_or(0, f));
                NodeLoad {
                    messages_in: delta(|s| s.paxos_in),
                    messages_out: delta(|s| s.paxos_out),
                    bytes_out: delta(|s| s.transport.bytes_out),
                    persists: delta(|s| s.batches),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(node: u32, uptime_ms: u64, elected: u64, paxos_out: u64) -> NodeStats {
        NodeStats {
            node,
            protocol: paxbench_core::Protocol::MultiPaxos,
            uptime_ms,
            paxos_out,
            leader: Some(LeaderStats {
                elected,
                ..LeaderStats::default()
            }),
            ..NodeStats::default()
        }
    }

    #[test]
    fn nodes_that_run_another_protocol_are_refused_by_name() {
        let scenario = |protocol: &str| {
            let yaml = format!(
                "name: t\ntarget:\n  kind: spawn\n  protocol: {protocol}\nworkload:\n  duration_s: 1\n"
            );
            crate::config::BenchConfig::parse(std::path::Path::new("t.yaml"), yaml)
                .unwrap()
                .scenarios[0]
                .clone()
        };
        let vanilla_node = NodeStats {
            node: 2,
            ..NodeStats::default()
        };
        let leader_node = stats(1, 10, 1, 0);
        let both = [leader_node.clone(), vanilla_node.clone()];
        let err = check_protocol(&scenario("multi-paxos"), &both)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("node 2 runs vanilla") && err.contains("protocol: multi-paxos"),
            "{err}"
        );
        let err = check_protocol(&scenario("vanilla"), &both)
            .unwrap_err()
            .to_string();
        assert!(err.contains("node 1 runs multi-paxos"), "{err}");
        assert!(check_protocol(&scenario("multi-paxos"), &[leader_node]).is_ok());
        assert!(check_protocol(&scenario("vanilla"), &[vanilla_node]).is_ok());
    }

    #[test]
    fn a_restarted_nodes_earlier_life_still_counts_and_load_starts_at_the_warmup() {
        let mut tally = NodeTally::default();
        tally.note(&stats(1, 1_000, 1, 10), false);
        tally.note(&stats(1, 2_000, 2, 50), true);
        // Killed and restarted: its counters start again.
        tally.note(&stats(1, 500, 1, 5), true);
        tally.note(&stats(2, 3_000, 0, 70), true);
        let leaders = tally.leaders(true).unwrap();
        assert_eq!(leaders.elected, 3);
        assert_eq!(tally.leaders(false), None);
        let load = tally.node_load(&[stats(2, 4_000, 0, 100), stats(1, 900, 1, 9)]);
        assert_eq!(
            load[0].messages_out, 9,
            "restarted since: counted from zero"
        );
        assert_eq!(load[1].messages_out, 30);
    }

    #[test]
    fn a_restart_is_seen_by_its_life_even_when_the_new_life_has_run_longer() {
        let life = |id: u64, uptime_ms: u64, elected: u64| NodeStats {
            life: id,
            ..stats(1, uptime_ms, elected, 0)
        };
        let mut tally = NodeTally::default();
        // Killed 1.2 s into its first life; first polled 1.5 s into its second.
        tally.note(&life(7, 1_200, 1), false);
        tally.note(&life(9, 1_500, 1), true);
        assert_eq!(tally.leaders(true).unwrap().elected, 2);
        // The load of a node whose warmup poll was in an earlier life counts from zero.
        let load = tally.node_load(&[NodeStats {
            paxos_out: 40,
            ..life(9, 2_000, 1)
        }]);
        assert_eq!(load[0].messages_out, 40);
    }
}
