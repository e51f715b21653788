//! Which protocol a cluster runs: the name users write in configs and read in reports
//! ([`Protocol`]), and the settings each node's protocol role is built from
//! ([`ProtocolConfig`]). A node, the simulator and the load generator all use these two.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::leader::LeaderConfig;

/// How a cluster decides (`protocol` on a node, `target.protocol` in a bench config).
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Single-decree Paxos per instance, the proposers running both phases.
    #[default]
    Vanilla,
    /// A stable leader runs phase 1 once for every instance and only phase 2 per request.
    MultiPaxos,
}

impl Protocol {
    /// Every protocol, in the order reports list them.
    pub const ALL: [Protocol; 2] = [Protocol::Vanilla, Protocol::MultiPaxos];

    /// The name configs use and logs print: `vanilla`, `multi-paxos`.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Vanilla => "vanilla",
            Protocol::MultiPaxos => "multi-paxos",
        }
    }

    /// The name charts and tables print: `vanilla`, `Multi-Paxos`.
    pub const fn label(self) -> &'static str {
        match self {
            Protocol::Vanilla => "vanilla",
            Protocol::MultiPaxos => "Multi-Paxos",
        }
    }

    /// Whether the nodes run a leader role, so that proposers become its clients.
    pub const fn has_leader(self) -> bool {
        matches!(self, Protocol::MultiPaxos)
    }

    /// Whether a leader's phase 1 covers every instance at once (PREPARE-ALL and PROMISE-ALL):
    /// then messages between nodes can be large, and nodes keep a chosen prefix per key, below
    /// which states may leave memory.
    pub const fn ranged_phase1(self) -> bool {
        matches!(self, Protocol::MultiPaxos)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A protocol with the settings of each node's role in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ProtocolConfig {
    /// Single-decree Paxos per instance: a node is an acceptor and a learner.
    #[default]
    Vanilla,
    /// A stable leader: every node also runs a leader role with these settings, and the
    /// proposers become its clients.
    MultiPaxos(LeaderConfig),
}

impl ProtocolConfig {
    /// Which protocol this is.
    pub fn protocol(&self) -> Protocol {
        match self {
            ProtocolConfig::Vanilla => Protocol::Vanilla,
            ProtocolConfig::MultiPaxos(_) => Protocol::MultiPaxos,
        }
    }

    /// The leader role's settings, under Multi-Paxos.
    pub fn leader(&self) -> Option<&LeaderConfig> {
        match self {
            ProtocolConfig::Vanilla => None,
            ProtocolConfig::MultiPaxos(leader) => Some(leader),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_config_name() {
        let names: Vec<String> = Protocol::ALL.iter().map(Protocol::to_string).collect();
        assert_eq!(names, ["vanilla", "multi-paxos"]);
        assert_eq!(Protocol::MultiPaxos.label(), "Multi-Paxos");
    }
}
