//! What the generator knows of each protocol, in one place: the protocol settings the
//! simulator's nodes and the proposer host are built from, the node settings a spawned
//! cluster runs with, and the check that a cluster's nodes run the scenario's protocol.

use std::time::Duration;

use paxbench_core::leader::LeaderConfig;
use paxbench_core::{NodeId, Protocol, ProtocolConfig};
use paxbench_node::LeaderSection;
use paxbench_quic::NodeStats;

use crate::config::Scenario;
use crate::error::Error;

/// The scenario's protocol with its role settings, for a cluster of `nodes`; `id_of` turns a
/// node number as configs write it (`leader.initial`) into the cluster's node id.
pub fn protocol_config(
    scenario: &Scenario,
    nodes: &[NodeId],
    id_of: impl Fn(u32) -> NodeId,
) -> ProtocolConfig {
    match scenario.target.protocol {
        Protocol::Vanilla => ProtocolConfig::Vanilla,
        Protocol::MultiPaxos => {
            let leader = &scenario.target.leader;
            let mut settings = LeaderConfig::new(nodes.to_vec());
            settings.quorums = scenario.quorums();
            settings.heartbeat = leader.heartbeat;
            settings.election_timeout = leader.election_timeout;
            settings.phase1_timeout = scenario.proposer.phase1_timeout;
            settings.phase2_timeout = scenario.proposer.phase2_timeout;
            settings.backoff = scenario.proposer.backoff.to_policy();
            settings.batch = leader.batch as usize;
            settings.pipeline = leader.pipeline as usize;
            settings.forward = leader.forward;
            settings.initial_leader = leader.initial.map(id_of);
            settings.thrifty = leader.thrifty;
            ProtocolConfig::MultiPaxos(settings)
        }
    }
}

/// What a spawned node of the scenario's protocol is started with beyond `protocol:` itself:
/// the leader section under Multi-Paxos, nothing under vanilla.
pub fn node_role(scenario: &Scenario) -> Option<LeaderSection> {
    scenario
        .target
        .protocol
        .has_leader()
        .then(|| leader_section(scenario))
}

/// The node setting of a scenario's leader knobs, the proposers' phase timeouts and the
/// phase-1 quorum: what a spawned Multi-Paxos node runs with (and an attached one should).
fn leader_section(scenario: &Scenario) -> LeaderSection {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let leader_node = NodeStats {
            node: 1,
            protocol: Protocol::MultiPaxos,
            ..NodeStats::default()
        };
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
}
