//! Geography: the zone of every node and proposer, and the one-way delay between each pair of
//! zones. The simulator draws every message's delay from it; the load generator (for proposer
//! links) and the nodes' fault layers (for node links) add delays drawn from the same table to
//! real links, so that every target emulates the same wide-area network.

use std::time::Duration;

use crate::error::Error;
use crate::latency::Latency;

/// Zones, who is in which, and the delay between them.
#[derive(Clone, Debug, PartialEq)]
pub struct Geography {
    zones: usize,
    /// `zones × zones`, row `from`, column `to`.
    one_way: Vec<Latency>,
    nodes: Vec<usize>,
    proposers: Vec<usize>,
}

impl Geography {
    /// `one_way[a][b]` is the delay of a message from zone `a` to zone `b`; `nodes[n]` is the
    /// zone of node `n` (from 0), `proposers[p]` that of proposer `p`.
    pub fn new(
        one_way: Vec<Vec<Latency>>,
        nodes: Vec<usize>,
        proposers: Vec<usize>,
    ) -> Result<Self, Error> {
        let zones = one_way.len();
        let invalid = |why: String| Err(Error::InvalidSimulation(format!("geography: {why}")));
        if zones == 0 {
            return invalid("no zones".into());
        }
        if let Some(row) = one_way.iter().position(|row| row.len() != zones) {
            return invalid(format!(
                "row {row} of the delay matrix has {} entries for {zones} zones",
                one_way[row].len()
            ));
        }
        if let Some(zone) = nodes.iter().chain(&proposers).find(|z| **z >= zones) {
            return invalid(format!("zone {zone} does not exist ({zones} zones)"));
        }
        Ok(Self {
            zones,
            one_way: one_way.into_iter().flatten().collect(),
            nodes,
            proposers,
        })
    }

    /// How many zones there are.
    pub fn zones(&self) -> usize {
        self.zones
    }

    /// The zone of node `node` (numbered from 0); zone 0 for a node it does not know.
    pub fn node_zone(&self, node: usize) -> usize {
        self.nodes.get(node).copied().unwrap_or(0)
    }

    /// The zone of proposer `index`; zone 0 for a proposer it does not know.
    pub fn proposer_zone(&self, index: usize) -> usize {
        self.proposers.get(index).copied().unwrap_or(0)
    }

    /// The delay of a message from zone `from` to zone `to`.
    pub fn between(&self, from: usize, to: usize) -> &Latency {
        &self.one_way[from.min(self.zones - 1) * self.zones + to.min(self.zones - 1)]
    }

    /// The median round trip from zone `a` to zone `b` and back.
    pub fn round_trip(&self, a: usize, b: usize) -> Duration {
        self.between(a, b).median() + self.between(b, a).median()
    }

    /// The median time for a proposer in zone `zone` to hear from `quorum` of the nodes: the
    /// `quorum`-th shortest round trip to them. One Paxos phase takes this long when nothing is
    /// lost and nothing else queues.
    pub fn quorum_round_trip(&self, zone: usize, quorum: usize) -> Duration {
        let mut trips: Vec<Duration> = self
            .nodes
            .iter()
            .map(|&node| self.round_trip(zone, node))
            .collect();
        trips.sort_unstable();
        trips
            .get(quorum.saturating_sub(1))
            .or(trips.last())
            .copied()
            .unwrap_or_default()
    }

    /// The longest round trip a message may take between any two zones, at about its 99.9th
    /// percentile: what timeouts are scaled by.
    pub fn longest_round_trip(&self) -> Duration {
        (0..self.zones)
            .flat_map(|a| (0..self.zones).map(move |b| (a, b)))
            .map(|(a, b)| self.between(a, b).high() + self.between(b, a).high())
            .max()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn three() -> Geography {
        let rtt = [[1, 80, 150], [80, 1, 210], [150, 210, 1]];
        let one_way = rtt
            .iter()
            .map(|row| row.iter().map(|r| Latency::Constant(ms(*r) / 2)).collect())
            .collect();
        Geography::new(one_way, vec![0, 1, 2], vec![0, 1, 2, 0]).unwrap()
    }

    #[test]
    fn a_phase_waits_for_the_quorum_th_fastest_round_trip() {
        let geo = three();
        assert_eq!(geo.round_trip(0, 2), ms(150));
        // From zone 0: 1, 80, 150 ms; a majority of three answers after 80.
        assert_eq!(geo.quorum_round_trip(0, 2), ms(80));
        assert_eq!(geo.quorum_round_trip(2, 2), ms(150));
        assert_eq!(geo.quorum_round_trip(1, 3), ms(210));
        assert_eq!(geo.longest_round_trip(), ms(210));
        assert_eq!(geo.proposer_zone(3), 0);
    }

    #[test]
    fn a_ragged_matrix_or_an_unknown_zone_is_refused() {
        let c = Latency::Constant(ms(1));
        let ragged = Geography::new(vec![vec![c, c], vec![c]], vec![0], vec![0]);
        assert!(ragged.unwrap_err().to_string().contains("row 1"));
        let unknown = Geography::new(vec![vec![c]], vec![0, 1], vec![0]);
        assert!(unknown.unwrap_err().to_string().contains("zone 1"));
    }
}
