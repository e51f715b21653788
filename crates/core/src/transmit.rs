//! Where a message goes: one vocabulary for every role, both hosts and every shell. A role
//! names its recipients with [`To`]; the shell that moves the bytes (the simulator's network,
//! a node's links, the load generator's connections) resolves them, as quinn-proto's
//! `Transmit` leaves the socket to its driver.

use crate::message::Message;
use crate::types::{NodeId, ProposerId};

/// Who sends: a node (acceptor, learner and protocol role in one), or a proposer (under
/// Multi-Paxos, a client; clients are numbered as proposers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Address {
    /// A node.
    Node(NodeId),
    /// A proposer or client.
    Proposer(ProposerId),
}

/// Who a message is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum To {
    /// Every node of the cluster, the sender included when it is one: every acceptor, or
    /// every learner.
    AllNodes,
    /// One node.
    Node(NodeId),
    /// These nodes (a chosen quorum).
    Nodes(Vec<NodeId>),
    /// A proposer or client.
    Proposer(ProposerId),
}

impl To {
    /// Whether node `node` is one of the recipients.
    pub fn includes(&self, node: NodeId) -> bool {
        match self {
            To::AllNodes => true,
            To::Node(only) => *only == node,
            To::Nodes(nodes) => nodes.contains(&node),
            To::Proposer(_) => false,
        }
    }
}

/// A message, who sends it and who it is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Transmit {
    /// The sender.
    pub from: Address,
    /// The recipients.
    pub to: To,
    /// The message.
    pub message: Message,
}
