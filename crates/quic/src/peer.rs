//! Peer names: who is at the other end of a link, as the cluster CA certified it
//! (`node-3`, `client-0`, `admin-0`) or, on plain TCP, as the peer introduced itself. The name
//! is the peer's role: a node's peers, a client's proposals, an admin's fault commands.

use std::fmt;
use std::str::FromStr;

use paxbench_core::NodeId;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A cluster member: a node (acceptor and learner host), a client (load generator) or an admin
/// (the tool that injects faults).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PeerName {
    /// A node, by its id.
    Node(NodeId),
    /// A client, by its number.
    Client(u32),
    /// An admin, by its number.
    Admin(u32),
}

impl PeerName {
    /// The role's name, for counters and logs.
    pub fn role(self) -> &'static str {
        match self {
            PeerName::Node(_) => "node",
            PeerName::Client(_) => "client",
            PeerName::Admin(_) => "admin",
        }
    }
}

impl fmt::Display for PeerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerName::Node(id) => write!(f, "node-{}", id.0),
            PeerName::Client(n) => write!(f, "client-{n}"),
            PeerName::Admin(n) => write!(f, "admin-{n}"),
        }
    }
}

impl FromStr for PeerName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let parse = |digits: &str| digits.parse::<u32>().map_err(|_| Error::PeerName(s.into()));
        if let Some(digits) = s.strip_prefix("node-") {
            Ok(PeerName::Node(NodeId(parse(digits)?)))
        } else if let Some(digits) = s.strip_prefix("client-") {
            Ok(PeerName::Client(parse(digits)?))
        } else if let Some(digits) = s.strip_prefix("admin-") {
            Ok(PeerName::Admin(parse(digits)?))
        } else {
            Err(Error::PeerName(s.into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_refused() {
        for name in [
            PeerName::Node(NodeId(3)),
            PeerName::Client(0),
            PeerName::Admin(2),
        ] {
            assert_eq!(name.to_string().parse::<PeerName>().unwrap(), name);
        }
        for bad in ["node-", "node-x", "client--1", "peer-1", ""] {
            assert!(bad.parse::<PeerName>().is_err(), "{bad}");
        }
    }
}
