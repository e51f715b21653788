//! The Paxos messages, one struct per message kind, and [`Message`], the enum that carries any
//! of them over a wire: single-decree Paxos's five, then Multi-Paxos's, in which a leader runs
//! phase 1 once for every instance and clients send it requests. Every message names its sender
//! so that a trace or a violation report can be read without the surrounding context.

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

/// Multi-Paxos: a client asks the node it believes leads to have `value` written to `key`'s
/// next slot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClientRequest {
    /// The key to write.
    pub key: u64,
    /// The value; unique per operation, so a retried request is recognised.
    pub value: Value,
    /// The client asking, to which the answer goes.
    pub client: ProposerId,
    /// The follower that forwarded it, if one did: a forwarded request is never forwarded
    /// again, so a stale view of the leader cannot bounce it around.
    pub via: Option<NodeId>,
}

/// Multi-Paxos: a node that does not lead turns a request away, naming the leader it knows.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Redirect {
    /// The request's key.
    pub key: u64,
    /// The request's value, so the client can tell which of its requests is meant.
    pub value: Value,
    /// The leader the node knows, if any.
    pub leader: Option<NodeId>,
    /// The node turning it away.
    pub from: NodeId,
}

/// Multi-Paxos: the leader tells a client its value was chosen for `instance`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClientReply {
    /// The slot the leader gave the request, now decided.
    pub instance: Instance,
    /// The value chosen.
    pub value: Value,
    /// The leader answering.
    pub from: NodeId,
}

/// Multi-Paxos phase 1a for every instance at once: promise to ignore every ballot below
/// `ballot`, on all instances, and report what you accepted from the first slot of each key
/// the would-be leader does not know chosen.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PrepareAll {
    /// The would-be leader's ballot; ballots order as proposal IDs do.
    pub ballot: ProposalId,
    /// The would-be leader.
    pub from: NodeId,
    /// Per key, the slot below which the would-be leader knows every slot chosen; keys not
    /// listed are reported from slot 0. Only the leader's own knowledge may shorten the
    /// report: an acceptor that skipped what it alone knew chosen could let a stale value from
    /// another acceptor win.
    pub known: Vec<(u64, u64)>,
}

/// Multi-Paxos phase 1b: a global promise, with every accepted proposal at or above the
/// would-be leader's known-chosen slots, and each key's highest accepted slot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PromiseAll {
    /// The promised ballot.
    pub ballot: ProposalId,
    /// The acceptor promising.
    pub from: NodeId,
    /// Accepted proposals the new leader must carry on: `(instance, ballot, value)`.
    pub accepted: Vec<(Instance, ProposalId, Value)>,
    /// Per key, the highest slot this acceptor accepted anything for: every chosen slot is at
    /// or below the highest a phase-1 quorum reports, so the leader's next slot is above it.
    pub high_slots: Vec<(u64, u64)>,
    /// Per key, the slot below which commit notices told this acceptor every slot is chosen.
    /// The new leader carries none of those on: they are decided, whatever another acceptor
    /// reports for them.
    pub chosen_through: Vec<(u64, u64)>,
    /// [`known_digest`] of the PREPARE-ALL's `known` this promise answers: it reports nothing
    /// below those slots. A node that crashed mid-campaign campaigns again under the same
    /// ballot (its own promise of it was not yet durable), perhaps knowing less; a promise to
    /// its earlier campaign must not count for the new one.
    pub answers: u64,
}

/// A digest of a PREPARE-ALL's `known` slots (FNV-1a over the pairs, in order): what a
/// PROMISE-ALL echoes so that a campaign counts only promises that answer it.
pub fn known_digest(known: &[(u64, u64)]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for (key, slot) in known {
        for byte in key.to_le_bytes().into_iter().chain(slot.to_le_bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Multi-Paxos phase 2a: accept these values under the leader's ballot; the commit notices
/// of earlier decisions ride along.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AcceptBatch {
    /// The leader's ballot, promised by a phase-1 quorum.
    pub ballot: ProposalId,
    /// The leader.
    pub from: NodeId,
    /// The instances and their values.
    pub entries: Vec<(Instance, Value)>,
    /// Instances chosen under `ballot` since the last notice.
    pub commits: Vec<Instance>,
}

/// Multi-Paxos phase 2b: the acceptor accepted these instances under `ballot`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AcceptedBatch {
    /// The ballot accepted.
    pub ballot: ProposalId,
    /// The acceptor.
    pub from: NodeId,
    /// The instances accepted.
    pub instances: Vec<Instance>,
}

/// Multi-Paxos: the leader is alive; its pending commit notices ride along.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The leader's ballot.
    pub ballot: ProposalId,
    /// The leader.
    pub from: NodeId,
    /// Instances chosen under `ballot` since the last notice.
    pub commits: Vec<Instance>,
    /// Per key whose prefix grew since the last heartbeat, the slot below which the leader
    /// knows every slot chosen: how a node that restarted, and so missed commit notices, gets
    /// its own prefix moving again.
    pub chosen_through: Vec<(u64, u64)>,
}

/// Multi-Paxos: an acceptor refuses a leader's PREPARE-ALL or ACCEPT-BATCH, because it has
/// promised `promised`. Always sent: a leader that has lost its ballot must step down.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Refused {
    /// The refused ballot.
    pub ballot: ProposalId,
    /// The acceptor's promise.
    pub promised: ProposalId,
    /// The acceptor.
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
    /// Multi-Paxos: client to node.
    ClientRequest(ClientRequest),
    /// Multi-Paxos: node to client, "ask the leader".
    Redirect(Redirect),
    /// Multi-Paxos: leader to client, "chosen".
    ClientReply(ClientReply),
    /// Multi-Paxos phase 1a, for every instance.
    PrepareAll(PrepareAll),
    /// Multi-Paxos phase 1b, for every instance.
    PromiseAll(PromiseAll),
    /// Multi-Paxos phase 2a, batched.
    AcceptBatch(AcceptBatch),
    /// Multi-Paxos phase 2b, batched.
    AcceptedBatch(AcceptedBatch),
    /// Multi-Paxos leader liveness.
    Heartbeat(Heartbeat),
    /// Multi-Paxos refusal of a ballot.
    Refused(Refused),
}

impl Message {
    /// The one instance the message is about; `None` for Multi-Paxos messages, which name
    /// none or many.
    pub fn instance(&self) -> Option<Instance> {
        match self {
            Message::Prepare(m) => Some(m.instance),
            Message::Promise(m) => Some(m.instance),
            Message::Nack(m) => Some(m.instance),
            Message::AcceptRequest(m) => Some(m.instance),
            Message::Accepted(m) => Some(m.instance),
            Message::ClientReply(m) => Some(m.instance),
            _ => None,
        }
    }

    /// The proposal ID or ballot the message carries; [`ProposalId::ZERO`] for a client's.
    pub fn id(&self) -> ProposalId {
        match self {
            Message::Prepare(m) => m.id,
            Message::Promise(m) => m.id,
            Message::Nack(m) => m.id,
            Message::AcceptRequest(m) => m.id,
            Message::Accepted(m) => m.id,
            Message::PrepareAll(m) => m.ballot,
            Message::PromiseAll(m) => m.ballot,
            Message::AcceptBatch(m) => m.ballot,
            Message::AcceptedBatch(m) => m.ballot,
            Message::Heartbeat(m) => m.ballot,
            Message::Refused(m) => m.ballot,
            Message::ClientRequest(_) | Message::Redirect(_) | Message::ClientReply(_) => {
                ProposalId::ZERO
            }
        }
    }

    /// An upper bound on the message's encoded size, in bytes (every integer at its longest
    /// varint): what a queue holding it counts, so that a peer that does not read cannot make
    /// its sender hold more than the queue's budget. Linear in the message, and it allocates
    /// nothing.
    pub fn encoded_len_bound(&self) -> usize {
        const TAG: usize = 5;
        const LEN: usize = 10;
        const U64: usize = 10;
        const SMALL: usize = 5;
        const ID: usize = U64 + SMALL;
        const INSTANCE: usize = 2 * U64;
        const OPTION: usize = 1;
        let value = |v: &Value| LEN + v.len();
        let body = match self {
            Message::Prepare(_) => INSTANCE + ID + SMALL,
            Message::Promise(m) => {
                INSTANCE
                    + ID
                    + SMALL
                    + OPTION
                    + m.accepted.as_ref().map_or(0, |(_, v)| ID + value(v))
            }
            Message::Nack(_) => INSTANCE + 2 * ID + SMALL,
            Message::AcceptRequest(m) => INSTANCE + ID + value(&m.value) + SMALL,
            Message::Accepted(m) => INSTANCE + ID + value(&m.value) + SMALL,
            Message::ClientRequest(m) => U64 + value(&m.value) + SMALL + OPTION + SMALL,
            Message::Redirect(m) => U64 + value(&m.value) + OPTION + 2 * SMALL,
            Message::ClientReply(m) => INSTANCE + value(&m.value) + SMALL,
            Message::PrepareAll(m) => ID + SMALL + LEN + m.known.len() * 2 * U64,
            Message::PromiseAll(m) => {
                let accepted: usize = m
                    .accepted
                    .iter()
                    .map(|(_, _, v)| INSTANCE + ID + value(v))
                    .sum();
                ID + SMALL
                    + LEN
                    + accepted
                    + LEN
                    + m.high_slots.len() * 2 * U64
                    + LEN
                    + m.chosen_through.len() * 2 * U64
                    + U64
            }
            Message::AcceptBatch(m) => {
                let entries: usize = m.entries.iter().map(|(_, v)| INSTANCE + value(v)).sum();
                ID + SMALL + LEN + entries + LEN + m.commits.len() * INSTANCE
            }
            Message::AcceptedBatch(m) => ID + SMALL + LEN + m.instances.len() * INSTANCE,
            Message::Heartbeat(m) => {
                ID + SMALL
                    + LEN
                    + m.commits.len() * INSTANCE
                    + LEN
                    + m.chosen_through.len() * 2 * U64
            }
            Message::Refused(_) => 2 * ID + SMALL,
        };
        TAG + body
    }

    /// A short lower-case name for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Prepare(_) => "prepare",
            Message::Promise(_) => "promise",
            Message::Nack(_) => "nack",
            Message::AcceptRequest(_) => "accept-request",
            Message::Accepted(_) => "accepted",
            Message::ClientRequest(_) => "client-request",
            Message::Redirect(_) => "redirect",
            Message::ClientReply(_) => "client-reply",
            Message::PrepareAll(_) => "prepare-all",
            Message::PromiseAll(_) => "promise-all",
            Message::AcceptBatch(_) => "accept-batch",
            Message::AcceptedBatch(_) => "accepted-batch",
            Message::Heartbeat(_) => "heartbeat",
            Message::Refused(_) => "refused",
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
into_message!(
    Prepare,
    Promise,
    Nack,
    AcceptRequest,
    Accepted,
    ClientRequest,
    Redirect,
    ClientReply,
    PrepareAll,
    PromiseAll,
    AcceptBatch,
    AcceptedBatch,
    Heartbeat,
    Refused
);
