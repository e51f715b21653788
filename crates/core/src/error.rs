//! The crate's one error type. The roles report bad commands and misrouted messages here;
//! protocol-level rejections are not errors, they are events.

use crate::types::{Instance, ProposerId, Quorums};

/// Everything that can go wrong when using this crate.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A message reached a role that has no handler for it.
    #[error("a {role} cannot handle a {kind} message")]
    UnexpectedMessage {
        /// The role that received it.
        role: &'static str,
        /// The message kind.
        kind: &'static str,
    },
    /// A node refused a message its sender may not send it.
    #[error("{0}")]
    Refused(crate::host::Refusal),
    /// `propose` was called while an operation was in progress.
    #[error("proposer {proposer} is still deciding instance {instance}")]
    ProposerBusy {
        /// The proposer.
        proposer: ProposerId,
        /// The instance it is working on.
        instance: Instance,
    },
    /// A proposer was configured with no acceptors.
    #[error("a proposer needs at least one acceptor")]
    NoAcceptors,
    /// A proposer was configured with a retry budget of zero attempts.
    #[error("max_attempts must be at least 1")]
    ZeroAttempts,
    /// The ID scheme cannot encode this proposer.
    #[error("proposer {proposer} does not fit the {scheme} ID scheme (at most {max})")]
    ProposerIdOutOfRange {
        /// The proposer.
        proposer: ProposerId,
        /// The scheme.
        scheme: &'static str,
        /// The largest proposer it can encode.
        max: u32,
    },
    /// A quorum size is zero or larger than the cluster.
    #[error(
        "quorums of {} (phase 1) and {} (phase 2) do not fit {acceptors} acceptors: each must be 1..={acceptors}",
        quorums.phase1, quorums.phase2
    )]
    QuorumOutOfRange {
        /// The sizes asked for.
        quorums: Quorums,
        /// The cluster size.
        acceptors: usize,
    },
    /// A Multi-Paxos leader role was set up inconsistently.
    #[error("invalid leader settings: {0}")]
    InvalidLeader(String),
    /// A proposer host was set up inconsistently.
    #[error("invalid proposer host: {0}")]
    InvalidHost(String),
    /// A simulation was set up inconsistently.
    #[error("invalid simulation: {0}")]
    InvalidSimulation(String),
}
