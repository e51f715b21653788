//! Who may say what to a node. Each message kind is taken only from the roles that send it: a
//! node's kinds only from a cluster member that names itself truly, a client's only for the
//! proposers that client runs, and only under a protocol that has them. Ballots, proposal IDs
//! and slots at the edge of their range are refused, so no arithmetic on them can wrap.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::message::Message;
use crate::protocol::Protocol;
use crate::transmit::Address;
use crate::types::{Instance, NodeId, ProposalId, Value};

/// Proposer IDs each client runs: client `n` speaks for `n × 65,536 ..` up to the next client's
/// first. A load generator numbers its proposers (or Multi-Paxos clients) from its first.
pub const PROPOSER_IDS_PER_CLIENT: u32 = 65_536;

/// A proposal ID or ballot whose `high` reaches this is refused by every node. Clocks in
/// nanoseconds stay below it until the year 2262 and counters far longer; below it, every
/// `high + 1` a proposer or a campaign computes stays exact.
pub const ID_HIGH_LIMIT: u64 = 1 << 63;

/// A slot (or a chosen prefix) at or above this is refused by every node: 2^62 decisions on one
/// key at a billion a second take 146 years, and below it every `slot + 1` stays exact.
pub const SLOT_LIMIT: u64 = 1 << 62;

/// The largest value a node takes: it must fit a client's frame (1 MiB) with room to spare,
/// and a storage record. The load generator refuses larger `workload.value_size`s.
pub const MAX_VALUE_BYTES: usize = 512 * 1024;

/// The proposer IDs client `client` may speak for; `None` for a client number so large that
/// its range would not fit.
pub fn client_proposers(client: u32) -> Option<Range<u32>> {
    let first = client.checked_mul(PROPOSER_IDS_PER_CLIENT)?;
    let end = first.checked_add(PROPOSER_IDS_PER_CLIENT)?;
    Some(first..end)
}

/// The proposer a message from client `client` speaks for, as the address the node host takes
/// it from. A kind no client sends, or a proposer outside the client's range, is refused.
pub fn client_sender(client: u32, message: &Message) -> Result<Address, Refusal> {
    let claimed = match message {
        Message::Prepare(m) => m.from,
        Message::AcceptRequest(m) => m.from,
        Message::ClientRequest(m) => m.client,
        _ => return Err(Refusal::new(message, RefusalReason::Role)),
    };
    match client_proposers(client) {
        Some(range) if range.contains(&claimed.0) => Ok(Address::Proposer(claimed)),
        _ => Err(Refusal::new(message, RefusalReason::ForgedSender)),
    }
}

/// Why a node refused a message.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "kebab-case")]
pub enum RefusalReason {
    /// The sender's role does not send this kind to a node: a client's PREPARE-ALL, anyone's
    /// PROMISE.
    #[default]
    Role,
    /// A node-to-node kind from a node that is not a member of this cluster.
    NotMember,
    /// The message names a sender other than the authenticated one: another node, another
    /// client's proposer, or a forwarding node that is not the one it came from.
    ForgedSender,
    /// This node's protocol has no use for the kind: a vanilla PREPARE at a Multi-Paxos node.
    Protocol,
    /// A ballot, proposal ID or slot at the edge of its range.
    OutOfRange,
    /// A value, a request or a batch larger than the node will persist.
    TooLarge,
}

impl RefusalReason {
    /// A short lower-case name for logs and counters.
    pub fn name(self) -> &'static str {
        match self {
            RefusalReason::Role => "role",
            RefusalReason::NotMember => "not-member",
            RefusalReason::ForgedSender => "forged-sender",
            RefusalReason::Protocol => "protocol",
            RefusalReason::OutOfRange => "out-of-range",
            RefusalReason::TooLarge => "too-large",
        }
    }
}

/// A message a node refused: it changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Refusal {
    /// The message's kind.
    pub kind: &'static str,
    /// Why.
    pub reason: RefusalReason,
}

impl Refusal {
    /// `message` refused for `reason`.
    pub fn new(message: &Message, reason: RefusalReason) -> Self {
        Self {
            kind: message.kind(),
            reason,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} refused ({})", self.kind, self.reason.name())
    }
}

/// What a node needs to judge a sender: itself, the cluster's members and its protocol.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Authority {
    pub(super) me: NodeId,
    pub(super) members: Vec<NodeId>,
    pub(super) protocol: Protocol,
}

impl Authority {
    /// Whether `from` may send `message` to this node; see the [module documentation](self).
    pub(super) fn check(&self, from: Address, message: &Message) -> Result<(), Refusal> {
        let refuse = |reason| Err(Refusal::new(message, reason));
        let multi = self.protocol.ranged_phase1();
        match (message, from) {
            (Message::Prepare(m), Address::Proposer(p)) if m.from == p => {
                if multi {
                    return refuse(RefusalReason::Protocol);
                }
            }
            (Message::AcceptRequest(m), Address::Proposer(p)) if m.from == p => {
                if multi {
                    return refuse(RefusalReason::Protocol);
                }
            }
            (Message::ClientRequest(m), Address::Proposer(p)) if m.client == p => {
                if !multi {
                    return refuse(RefusalReason::Protocol);
                }
                if m.via.is_some() {
                    return refuse(RefusalReason::ForgedSender);
                }
            }
            (Message::ClientRequest(m), Address::Node(node)) => {
                self.member(node, message)?;
                if !multi {
                    return refuse(RefusalReason::Protocol);
                }
                // Only the follower that forwarded a request passes it on, and never its own.
                if m.via != Some(node) || node == self.me {
                    return refuse(RefusalReason::ForgedSender);
                }
            }
            (
                Message::Prepare(_) | Message::AcceptRequest(_) | Message::ClientRequest(_),
                Address::Proposer(_),
            ) => return refuse(RefusalReason::ForgedSender),
            (Message::Accepted(m), Address::Node(node)) => self.named(node, m.from, message)?,
            (
                Message::PrepareAll(_)
                | Message::PromiseAll(_)
                | Message::AcceptBatch(_)
                | Message::AcceptedBatch(_)
                | Message::Heartbeat(_)
                | Message::Refused(_),
                Address::Node(node),
            ) => {
                let named = node_sender(message).unwrap_or(node);
                self.named(node, named, message)?;
                if !multi {
                    return refuse(RefusalReason::Protocol);
                }
            }
            _ => return refuse(RefusalReason::Role),
        }
        if !in_range(message) {
            return refuse(RefusalReason::OutOfRange);
        }
        if !values_fit(message) {
            return refuse(RefusalReason::TooLarge);
        }
        Ok(())
    }

    fn member(&self, node: NodeId, message: &Message) -> Result<(), Refusal> {
        if self.members.contains(&node) {
            Ok(())
        } else {
            Err(Refusal::new(message, RefusalReason::NotMember))
        }
    }

    /// `node` is a member, and the node the message names as its sender.
    fn named(&self, node: NodeId, named: NodeId, message: &Message) -> Result<(), Refusal> {
        self.member(node, message)?;
        // A campaign's ballot carries its campaigner in its low half, which followers read as
        // the leader to send clients to.
        let owns_ballot = match message {
            Message::PrepareAll(m) => m.ballot.low == m.from.0,
            _ => true,
        };
        if named == node && owns_ballot {
            Ok(())
        } else {
            Err(Refusal::new(message, RefusalReason::ForgedSender))
        }
    }
}

/// The node a node-to-node message names as its sender.
fn node_sender(message: &Message) -> Option<NodeId> {
    Some(match message {
        Message::Accepted(m) => m.from,
        Message::PrepareAll(m) => m.from,
        Message::PromiseAll(m) => m.from,
        Message::AcceptBatch(m) => m.from,
        Message::AcceptedBatch(m) => m.from,
        Message::Heartbeat(m) => m.from,
        Message::Refused(m) => m.from,
        _ => return None,
    })
}

/// Whether every value the message carries fits [`MAX_VALUE_BYTES`].
fn values_fit(message: &Message) -> bool {
    let fits = |value: &Value| value.len() <= MAX_VALUE_BYTES;
    match message {
        Message::AcceptRequest(m) => fits(&m.value),
        Message::Accepted(m) => fits(&m.value),
        Message::ClientRequest(m) => fits(&m.value),
        Message::AcceptBatch(m) => m.entries.iter().all(|(_, value)| fits(value)),
        Message::PromiseAll(m) => m.accepted.iter().all(|(_, _, value)| fits(value)),
        _ => true,
    }
}

/// Whether every proposal ID, ballot and slot the message carries is below its limit.
fn in_range(message: &Message) -> bool {
    let id = |id: &ProposalId| id.high < ID_HIGH_LIMIT;
    let slot = |slot: u64| slot < SLOT_LIMIT;
    let instance = |i: &Instance| slot(i.slot);
    let prefixes = |pairs: &[(u64, u64)]| pairs.iter().all(|(_, through)| slot(*through));
    id(&message.id())
        && match message {
            Message::Prepare(m) => instance(&m.instance),
            Message::AcceptRequest(m) => instance(&m.instance),
            Message::Accepted(m) => instance(&m.instance),
            Message::PrepareAll(m) => prefixes(&m.known),
            Message::PromiseAll(m) => {
                m.accepted.iter().all(|(i, b, _)| instance(i) && id(b))
                    && prefixes(&m.high_slots)
                    && prefixes(&m.chosen_through)
            }
            Message::AcceptBatch(m) => {
                m.entries.iter().all(|(i, _)| instance(i)) && m.commits.iter().all(instance)
            }
            Message::AcceptedBatch(m) => m.instances.iter().all(instance),
            Message::Heartbeat(m) => m.commits.iter().all(instance) && prefixes(&m.chosen_through),
            Message::Refused(m) => id(&m.promised),
            _ => true,
        }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::message::*;
    use crate::types::ProposerId;

    const ID: ProposalId = ProposalId::new(5, 2);
    const AT: Instance = Instance::new(1, 0);

    fn authority(protocol: Protocol) -> Authority {
        Authority {
            me: NodeId(1),
            members: vec![NodeId(1), NodeId(2), NodeId(3)],
            protocol,
        }
    }

    /// One message of every kind, each naming node 2 or proposer 7 as its sender.
    fn every_kind() -> Vec<Message> {
        let v = Bytes::from_static(b"v");
        vec![
            Prepare {
                instance: AT,
                id: ID,
                from: ProposerId(7),
            }
            .into(),
            Promise {
                instance: AT,
                id: ID,
                from: NodeId(2),
                accepted: None,
            }
            .into(),
            Nack {
                instance: AT,
                id: ID,
                promised: ID,
                from: NodeId(2),
            }
            .into(),
            AcceptRequest {
                instance: AT,
                id: ID,
                value: v.clone(),
                from: ProposerId(7),
            }
            .into(),
            Accepted {
                instance: AT,
                id: ID,
                value: v.clone(),
                from: NodeId(2),
            }
            .into(),
            ClientRequest {
                key: 1,
                value: v.clone(),
                client: ProposerId(7),
                via: None,
            }
            .into(),
            Redirect {
                key: 1,
                value: v.clone(),
                leader: None,
                from: NodeId(2),
            }
            .into(),
            ClientReply {
                instance: AT,
                value: v.clone(),
                from: NodeId(2),
            }
            .into(),
            PrepareAll {
                ballot: ID,
                from: NodeId(2),
                known: vec![],
            }
            .into(),
            PromiseAll {
                ballot: ID,
                from: NodeId(2),
                accepted: vec![],
                high_slots: vec![],
                chosen_through: vec![],
                answers: 0,
            }
            .into(),
            AcceptBatch {
                ballot: ID,
                from: NodeId(2),
                entries: vec![(AT, v)],
                commits: vec![],
            }
            .into(),
            AcceptedBatch {
                ballot: ID,
                from: NodeId(2),
                instances: vec![AT],
            }
            .into(),
            Heartbeat {
                ballot: ID,
                from: NodeId(2),
                commits: vec![],
                chosen_through: vec![],
            }
            .into(),
            Refused {
                ballot: ID,
                promised: ID,
                from: NodeId(2),
            }
            .into(),
        ]
    }

    /// The kinds each sender may send, per protocol.
    fn allowed(protocol: Protocol, from: Address) -> Vec<&'static str> {
        let multi = protocol.ranged_phase1();
        match (from, multi) {
            (Address::Proposer(ProposerId(7)), false) => vec!["prepare", "accept-request"],
            (Address::Proposer(ProposerId(7)), true) => vec!["client-request"],
            (Address::Node(NodeId(2)), false) => vec!["accepted"],
            (Address::Node(NodeId(2)), true) => vec![
                "accepted",
                "prepare-all",
                "promise-all",
                "accept-batch",
                "accepted-batch",
                "heartbeat",
                "refused",
            ],
            _ => vec![],
        }
    }

    #[test]
    fn each_kind_is_taken_only_from_the_roles_that_send_it() {
        for protocol in [Protocol::Vanilla, Protocol::MultiPaxos] {
            let authority = authority(protocol);
            for from in [
                Address::Proposer(ProposerId(7)),
                Address::Proposer(ProposerId(8)),
                Address::Node(NodeId(2)),
                Address::Node(NodeId(3)),
                Address::Node(NodeId(9)),
            ] {
                let allowed = allowed(protocol, from);
                for message in every_kind() {
                    let verdict = authority.check(from, &message);
                    assert_eq!(
                        verdict.is_ok(),
                        allowed.contains(&message.kind()),
                        "{protocol} {from:?} {}: {verdict:?}",
                        message.kind()
                    );
                }
            }
        }
    }

    #[test]
    fn refusals_say_why() {
        let multi = authority(Protocol::MultiPaxos);
        let vanilla = authority(Protocol::Vanilla);
        let every = every_kind();
        let kind = |name: &str| every.iter().find(|m| m.kind() == name).unwrap().clone();
        let reason = |a: &Authority, from, m: &Message| a.check(from, m).unwrap_err().reason;
        let prepare_all = kind("prepare-all");
        assert_eq!(
            reason(&multi, Address::Proposer(ProposerId(7)), &prepare_all),
            RefusalReason::Role
        );
        assert_eq!(
            reason(&multi, Address::Node(NodeId(9)), &prepare_all),
            RefusalReason::NotMember
        );
        assert_eq!(
            reason(&multi, Address::Node(NodeId(3)), &prepare_all),
            RefusalReason::ForgedSender
        );
        assert_eq!(
            reason(&vanilla, Address::Node(NodeId(2)), &prepare_all),
            RefusalReason::Protocol
        );
        let prepare = kind("prepare");
        assert_eq!(
            reason(&multi, Address::Proposer(ProposerId(7)), &prepare),
            RefusalReason::Protocol
        );
        assert_eq!(
            reason(&vanilla, Address::Proposer(ProposerId(8)), &prepare),
            RefusalReason::ForgedSender
        );
        // A campaign whose ballot names another node as its owner.
        let stolen = PrepareAll {
            ballot: ProposalId::new(9, 3),
            from: NodeId(2),
            known: vec![],
        };
        assert_eq!(
            reason(&multi, Address::Node(NodeId(2)), &stolen.into()),
            RefusalReason::ForgedSender
        );
        // A request forwarded by a node that did not forward it.
        let forwarded = ClientRequest {
            key: 1,
            value: Bytes::new(),
            client: ProposerId(7),
            via: Some(NodeId(3)),
        };
        assert_eq!(
            reason(&multi, Address::Node(NodeId(2)), &forwarded.clone().into()),
            RefusalReason::ForgedSender
        );
        assert!(
            multi
                .check(Address::Node(NodeId(3)), &forwarded.clone().into())
                .is_ok()
        );
        assert_eq!(
            reason(&multi, Address::Proposer(ProposerId(7)), &forwarded.into()),
            RefusalReason::ForgedSender
        );
    }

    #[test]
    fn values_larger_than_a_node_persists_are_refused() {
        let vanilla = authority(Protocol::Vanilla);
        let at_limit = AcceptRequest {
            instance: AT,
            id: ID,
            value: Bytes::from(vec![0; MAX_VALUE_BYTES]),
            from: ProposerId(7),
        };
        assert!(
            vanilla
                .check(Address::Proposer(ProposerId(7)), &at_limit.clone().into())
                .is_ok()
        );
        let over = AcceptRequest {
            value: Bytes::from(vec![0; MAX_VALUE_BYTES + 1]),
            ..at_limit
        };
        assert_eq!(
            vanilla
                .check(Address::Proposer(ProposerId(7)), &over.into())
                .map_err(|r| r.reason),
            Err(RefusalReason::TooLarge)
        );
    }

    #[test]
    fn ballots_and_slots_at_the_edge_of_their_range_are_refused() {
        let multi = authority(Protocol::MultiPaxos);
        let vanilla = authority(Protocol::Vanilla);
        let node = Address::Node(NodeId(2));
        let top = ProposalId::new(u64::MAX, 2);
        let edge: Vec<(Authority, Address, Message)> = vec![
            (
                multi.clone(),
                node,
                PrepareAll {
                    ballot: top,
                    from: NodeId(2),
                    known: vec![],
                }
                .into(),
            ),
            (
                multi.clone(),
                node,
                Heartbeat {
                    ballot: ID,
                    from: NodeId(2),
                    commits: vec![],
                    chosen_through: vec![(1, SLOT_LIMIT)],
                }
                .into(),
            ),
            (
                multi.clone(),
                node,
                AcceptBatch {
                    ballot: ID,
                    from: NodeId(2),
                    entries: vec![(Instance::new(1, u64::MAX - 1), Bytes::new())],
                    commits: vec![],
                }
                .into(),
            ),
            (
                multi,
                node,
                Refused {
                    ballot: ID,
                    promised: top,
                    from: NodeId(2),
                }
                .into(),
            ),
            (
                vanilla.clone(),
                Address::Proposer(ProposerId(7)),
                Prepare {
                    instance: AT,
                    id: ProposalId::new(ID_HIGH_LIMIT, 7),
                    from: ProposerId(7),
                }
                .into(),
            ),
            (
                vanilla,
                Address::Proposer(ProposerId(7)),
                AcceptRequest {
                    instance: Instance::new(3, SLOT_LIMIT),
                    id: ID,
                    value: Bytes::new(),
                    from: ProposerId(7),
                }
                .into(),
            ),
        ];
        for (authority, from, message) in edge {
            assert_eq!(
                authority.check(from, &message).map_err(|r| r.reason),
                Err(RefusalReason::OutOfRange),
                "{message:?}"
            );
        }
    }

    #[test]
    fn client_ranges_do_not_overlap_and_never_wrap() {
        assert_eq!(client_proposers(0), Some(0..65_536));
        assert_eq!(client_proposers(2), Some(131_072..196_608));
        assert_eq!(client_proposers(65_535), None);
        assert_eq!(client_proposers(u32::MAX), None);
    }
}
