//! What the checker reports: each broken Paxos invariant as a [`Violation`] with the context
//! needed to debug it, and who saw a decision ([`ChosenBy`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::types::{Instance, NodeId, ProposalId, ProposerId, Value};

/// Who reported a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChosenBy {
    /// A learner, on a majority of ACCEPTED.
    Learner(NodeId),
    /// A proposer, on a majority of ACCEPTED for its own ACCEPT-REQUEST.
    Proposer(ProposerId),
}

impl fmt::Display for ChosenBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChosenBy::Learner(n) => write!(f, "learner {n}"),
            ChosenBy::Proposer(p) => write!(f, "proposer {p}"),
        }
    }
}

/// A broken safety invariant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Violation {
    /// Two different values were chosen for one instance.
    Agreement {
        /// The instance.
        instance: Instance,
        /// The value seen chosen first, and by whom.
        first: (Value, ChosenBy),
        /// The conflicting value, and by whom.
        second: (Value, ChosenBy),
    },
    /// A chosen value was never proposed for the instance.
    Validity {
        /// The instance.
        instance: Instance,
        /// The value.
        value: Value,
        /// Who saw it chosen.
        by: ChosenBy,
    },
    /// Acceptors accepted two different values under one proposal ID.
    ConflictingProposal {
        /// The instance.
        instance: Instance,
        /// The shared ID.
        id: ProposalId,
        /// The value accepted first.
        first: Value,
        /// The other value.
        second: Value,
        /// The acceptor that accepted the other value.
        acceptor: NodeId,
    },
    /// An acceptor's promise went down (for example after losing volatile state).
    PromiseRegressed {
        /// The acceptor.
        acceptor: NodeId,
        /// The instance.
        instance: Instance,
        /// The earlier promise.
        from: ProposalId,
        /// The lower one.
        to: ProposalId,
    },
    /// An acceptor accepted a proposal above its own promise.
    AcceptedAbovePromise {
        /// The acceptor.
        acceptor: NodeId,
        /// The instance.
        instance: Instance,
        /// The accepted ID.
        accepted: ProposalId,
        /// The promise.
        promised: ProposalId,
    },
    /// Two proposers issued the same proposal ID.
    IdCollision {
        /// The ID.
        id: ProposalId,
        /// The proposer that issued it first, and for which instance.
        first: (ProposerId, Instance),
        /// The proposer that issued it again, and for which instance.
        second: (ProposerId, Instance),
    },
    /// One proposer issued the same proposal ID twice.
    IdReused {
        /// The ID.
        id: ProposalId,
        /// The proposer.
        proposer: ProposerId,
        /// The instance it was reissued for.
        instance: Instance,
    },
}

impl Violation {
    /// A short stable name, for counters and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Violation::Agreement { .. } => "agreement",
            Violation::Validity { .. } => "validity",
            Violation::ConflictingProposal { .. } => "conflicting-proposal",
            Violation::PromiseRegressed { .. } => "promise-regressed",
            Violation::AcceptedAbovePromise { .. } => "accepted-above-promise",
            Violation::IdCollision { .. } => "id-collision",
            Violation::IdReused { .. } => "id-reused",
        }
    }
}

fn show(value: &Value) -> String {
    const MAX: usize = 32;
    let shown = String::from_utf8_lossy(&value[..value.len().min(MAX)]).into_owned();
    if value.len() > MAX {
        format!("{shown:?}… ({} bytes)", value.len())
    } else {
        format!("{shown:?}")
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Agreement {
                instance,
                first,
                second,
            } => write!(
                f,
                "agreement: instance {instance} chosen as {} by {} and as {} by {}",
                show(&first.0),
                first.1,
                show(&second.0),
                second.1
            ),
            Violation::Validity {
                instance,
                value,
                by,
            } => write!(
                f,
                "validity: {by} saw {} chosen for instance {instance}, which nobody proposed",
                show(value)
            ),
            Violation::ConflictingProposal {
                instance,
                id,
                first,
                second,
                acceptor,
            } => write!(
                f,
                "one value per proposal: instance {instance} id {id} carried {} and then {} (accepted by {acceptor})",
                show(first),
                show(second)
            ),
            Violation::PromiseRegressed {
                acceptor,
                instance,
                from,
                to,
            } => write!(
                f,
                "monotonicity: {acceptor} lowered its promise for {instance} from {from} to {to}"
            ),
            Violation::AcceptedAbovePromise {
                acceptor,
                instance,
                accepted,
                promised,
            } => write!(
                f,
                "monotonicity: {acceptor} accepted {accepted} above its promise {promised} for {instance}"
            ),
            Violation::IdCollision { id, first, second } => write!(
                f,
                "id collision: {id} issued by {} for {} and by {} for {}",
                first.0, first.1, second.0, second.1
            ),
            Violation::IdReused {
                id,
                proposer,
                instance,
            } => write!(f, "id reuse: {proposer} issued {id} again, for {instance}"),
        }
    }
}
