//! What the real driver learns from the nodes' own counters: the leader roles' work across
//! restarts, and each node's load over the measured window.

use std::collections::HashMap;

use paxbench_core::leader::LeaderStats;
use paxbench_quic::NodeStats;

use crate::measure::NodeLoad;

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
