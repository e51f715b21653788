//! The Paxos messages, one struct per message kind, and [`Message`], the enum that carries any
//! of them over a wire. Every message names its instance and its sender so that a trace or a
//! violation report can be read without the surrounding context.

use serde::{Deserialize, Serialize};

use crate::types::{Instance, NodeId, ProposalId, ProposerId, Value};

/// Phase 1a: a proposer asks acceptors to promise to ignore every ID below `id`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Prepare {
    /// The instance being decided.
    pub instance: Instance,
    /// The proposal ID to be promised.
    pub id: ProposalId,
    /// The proposer asking.
    pub from: ProposerId,
}

/// Phase 1b: an acceptor promises `id`, piggybacking what it already accepted, if anything.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Promise {
    /// The instance being decided.
    pub instance: Instance,
    /// The promised proposal ID (the one from the PREPARE).
    pub id: ProposalId,
    /// The acceptor promising.
    pub from: NodeId,
    /// The highest-ID proposal this acceptor accepted for the instance.
    pub accepted: Option<(ProposalId, Value)>,
}

/// A rejection, sent only in [`RejectMode::Nack`](crate::acceptor::RejectMode::Nack): the
/// request's `id` is below what the acceptor promised, and `promised` says how far below.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Nack {
    /// The instance being decided.
    pub instance: Instance,
    /// The ID that was rejected.
    pub id: ProposalId,
    /// The acceptor's highest promise for the instance.
    pub promised: ProposalId,
    /// The acceptor rejecting.
    pub from: NodeId,
}

/// Phase 2a: a proposer asks acceptors to accept `value` under `id`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AcceptRequest {
    /// The instance being decided.
    pub instance: Instance,
    /// The proposal ID, promised by a majority in phase 1.
    pub id: ProposalId,
    /// The value: the highest-ID piggybacked one, or the proposer's own.
    pub value: Value,
    /// The proposer asking.
    pub from: ProposerId,
}

/// Phase 2b: an acceptor accepted `value` under `id`. Sent to the proposer and to learners.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Accepted {
    /// The instance being decided.
    pub instance: Instance,
    /// The accepted proposal ID.
    pub id: ProposalId,
    /// The accepted value.
    pub value: Value,
    /// The acceptor accepting.
    pub from: NodeId,
}

/// Any Paxos message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Message {
    /// Phase 1a.
    Prepare(Prepare),
    /// Phase 1b.
    Promise(Promise),
    /// Rejection of a PREPARE or ACCEPT-REQUEST.
    Nack(Nack),
    /// Phase 2a.
    AcceptRequest(AcceptRequest),
    /// Phase 2b.
    Accepted(Accepted),
}

impl Message {
    /// The instance the message is about.
    pub fn instance(&self) -> Instance {
        match self {
            Message::Prepare(m) => m.instance,
            Message::Promise(m) => m.instance,
            Message::Nack(m) => m.instance,
            Message::AcceptRequest(m) => m.instance,
            Message::Accepted(m) => m.instance,
        }
    }

    /// The proposal ID the message carries.
    pub fn id(&self) -> ProposalId {
        match self {
            Message::Prepare(m) => m.id,
            Message::Promise(m) => m.id,
            Message::Nack(m) => m.id,
            Message::AcceptRequest(m) => m.id,
            Message::Accepted(m) => m.id,
        }
    }

    /// A short lower-case name for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Prepare(_) => "prepare",
            Message::Promise(_) => "promise",
            Message::Nack(_) => "nack",
            Message::AcceptRequest(_) => "accept-request",
            Message::Accepted(_) => "accepted",
        }
    }
}

macro_rules! into_message {
    ($($kind:ident),*) => {$(
        impl From<$kind> for Message {
            fn from(m: $kind) -> Self {
                Message::$kind(m)
            }
        }
    )*};
}
into_message!(Prepare, Promise, Nack, AcceptRequest, Accepted);
