//! The real targets' WAN emulation: delays drawn from the scenario's zones, added in the
//! generator to each proposer's messages (both ways, by the proposer's zone) and, through the
//! fault layer, by each node to its links to other nodes. The simulator applies the same
//! [`Geography`] to its own network.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use paxbench_core::NodeId;
use paxbench_core::rng::{DetRng, Stream};
use paxbench_core::zones::Geography;
use paxbench_quic::{DelayLine, FaultSpec, Inbound, LinkFaults, PeerName};
use tokio::sync::mpsc;

use crate::config::{NodeDelays, Scenario, ZonesSpec};
use crate::error::Error;

/// The generator's side of the emulation: one delay per message to a node, and replies held
/// for the way back before their proposer sees them.
pub struct ZoneShaper {
    geography: Geography,
    rng: DetRng,
    inbound: DelayLine<Inbound>,
}

impl ZoneShaper {
    /// The shaper of `scenario`'s zones, if it has any, for nodes in `node_ids`' order, and
    /// the channel where held replies come out at their time.
    pub fn new(
        scenario: &Scenario,
    ) -> Result<Option<(Self, mpsc::UnboundedReceiver<Inbound>)>, Error> {
        let Some(geography) = scenario.geography()? else {
            return Ok(None);
        };
        let (released, rx) = mpsc::unbounded_channel();
        let inbound = DelayLine::new("paxbench-zones", move |inbound: Inbound| {
            let _ = released.send(inbound);
        })
        .map_err(|e| Error::Io {
            context: "starting the zone delay thread".into(),
            source: e,
        })?;
        let shaper = Self {
            geography,
            rng: Stream::Zones.rng(scenario.seed),
            inbound,
        };
        Ok(Some((shaper, rx)))
    }

    /// The zones.
    pub fn geography(&self) -> &Geography {
        &self.geography
    }

    /// The delay of one message from a proposer in `zone` to the node at `node` (its position
    /// in the target's node list).
    pub fn to_node(&mut self, zone: usize, node: usize) -> Duration {
        let to = self.geography.node_zone(node);
        self.geography.between(zone, to).sample(&mut self.rng)
    }

    /// The delay of one message back from the node at `node` to a proposer in `zone`.
    pub fn from_node(&mut self, node: usize, zone: usize) -> Duration {
        let from = self.geography.node_zone(node);
        self.geography.between(from, zone).sample(&mut self.rng)
    }

    /// The zone of proposer `index`.
    pub fn proposer_zone(&self, index: usize) -> usize {
        self.geography.proposer_zone(index)
    }

    /// Holds `inbound` for `delay`; hands it back at once when there is none.
    pub fn hold(&self, inbound: Inbound, delay: Duration) -> Option<Inbound> {
        if delay.is_zero() {
            return Some(inbound);
        }
        self.inbound.push(Instant::now() + delay, inbound);
        None
    }
}

/// The fault-layer delays node `id` adds to its links to the other nodes, one per peer, with
/// `all` (a fault's drop, duplicate and delay) on top.
pub fn node_links(
    zones: &ZonesSpec,
    node_ids: &[u32],
    id: u32,
    all: LinkFaults,
) -> BTreeMap<String, LinkFaults> {
    let from = zones.node_zone(id);
    let jitter_us = (zones.jitter_ms * 1e3).round() as u64;
    node_ids
        .iter()
        .filter(|peer| **peer != id)
        .map(|peer| {
            let to = zones.node_zone(*peer);
            let rtt_ms = zones.rtt_ms[from][to];
            let faults = LinkFaults {
                delay_us: (rtt_ms * 1e3 / 2.0).round() as u64 + all.delay_us,
                jitter_us,
                shape: Some(zones.distribution),
                ..all
            };
            (PeerName::Node(NodeId(*peer)).to_string(), faults)
        })
        .collect()
}

/// Node `id`'s fault settings: `all` on every link, cut off from `partitioned`, and with zones
/// (unless the network delays node links itself), its links to other nodes delayed as the
/// matrix says.
pub fn node_fault_spec(
    scenario: &Scenario,
    id: u32,
    all: LinkFaults,
    partitioned: Vec<String>,
    seed: u64,
) -> FaultSpec {
    let links = scenario
        .target
        .zones
        .as_ref()
        .filter(|zones| zones.node_delays == NodeDelays::FaultLayer)
        .map(|zones| node_links(zones, &scenario.node_ids(), id, all))
        .unwrap_or_default();
    FaultSpec {
        all,
        links,
        partitioned,
        seed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_links_carry_half_the_round_trip_plus_a_faults_delay() {
        let zones: ZonesSpec = serde_saphyr::from_str(
            "names: [a, b]\nrtt_ms: [[0.5, 80], [70, 0.5]]\njitter_ms: 1\ndistribution: uniform\nnodes: {1: a, 2: b, 3: b}\n",
        )
        .unwrap();
        let all = LinkFaults {
            drop: 0.1,
            delay_us: 500,
            ..LinkFaults::default()
        };
        let links = node_links(&zones, &[1, 2, 3], 2, all);
        assert_eq!(links.len(), 2, "no link to itself");
        let to_1 = links["node-1"];
        assert_eq!(to_1.delay_us, 35_000 + 500, "b → a is half of 70 ms");
        assert_eq!((to_1.jitter_us, to_1.drop), (1_000, 0.1));
        assert_eq!(links["node-3"].delay_us, 250 + 500);
    }

    #[test]
    fn nodes_add_no_zone_delay_when_the_network_delays_their_links() {
        let scenario = |node_delays: &str| {
            let yaml = format!(
                "name: t\ntarget:\n  kind: sim\n  zones:\n    names: [a, b]\n    rtt_ms: [[0, 80], [80, 0]]\n    nodes: {{1: a, 2: b, 3: b}}\n    node_delays: {node_delays}\n"
            );
            crate::config::BenchConfig::parse(std::path::Path::new("t.yaml"), yaml)
                .unwrap()
                .scenarios[0]
                .clone()
        };
        let spec = |s: &Scenario| node_fault_spec(s, 1, LinkFaults::default(), Vec::new(), 0);
        assert_eq!(
            spec(&scenario("fault-layer")).links["node-2"].delay_us,
            40_000
        );
        assert!(spec(&scenario("external")).links.is_empty());
    }
}
