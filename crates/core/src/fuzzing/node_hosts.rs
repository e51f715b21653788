//! Three Multi-Paxos node hosts (leader role, ranged acceptor, learner and the authority that
//! judges senders) fed arbitrary schedules, for the cargo-fuzz target `leader`.

use std::collections::BTreeMap;

use crate::acceptor::{RangedState, Record};
use crate::checker::{Checker, ChosenBy};
use crate::host::{NodeEvent, NodeHost, NodeHostConfig, NodeReady};
use crate::leader::{LeaderConfig, LeaderEvent};
use crate::message::{
    AcceptBatch, ClientRequest, Heartbeat, Message, PrepareAll, PromiseAll, Refused,
};
use crate::protocol::ProtocolConfig;
use crate::transmit::{Address, To, Transmit};
use crate::{Instance, NodeId, ProposalId, ProposerId, Time, Value};

const NODES: u32 = 3;
const KEYS: u64 = 2;

/// One node: its host (`None` while crashed), the batch it is persisting, and its stable
/// storage.
struct Node {
    host: Option<NodeHost>,
    persisting: Option<NodeReady>,
    records: BTreeMap<Instance, Record>,
    ranged: RangedState,
}

/// Three Multi-Paxos nodes and their clients on a network the schedule runs. `data` says, two
/// bytes a step, which message in flight is delivered next (or duplicated, or lost), when a
/// node's timer fires, when its batch becomes durable, when it crashes (losing what it had not
/// persisted) and restarts, when a client asks, and forged messages with arbitrary ballots,
/// slots and senders: from a client, from a node that is not a member, and from a member
/// naming another. Asserted: the checker finds no violation (one value per instance, values
/// only from clients or no-ops), and no node panics. Returns the instances decided.
pub fn multi_paxos_schedule(data: &[u8]) -> u64 {
    let members: Vec<NodeId> = (0..NODES).map(NodeId).collect();
    let mut nodes: Vec<Node> = members
        .iter()
        .map(|&id| Node {
            host: Some(start(id, &members, Vec::new(), &RangedState::default())),
            persisting: None,
            records: BTreeMap::new(),
            ranged: RangedState::default(),
        })
        .collect();
    let mut checker = Checker::new();
    let mut in_flight: Vec<(Address, NodeId, Message)> = Vec::new();
    let mut now = Time::ZERO;
    let mut requests = 0u64;
    for step in data.chunks(2) {
        now = Time(now.0 + 1_000_000);
        let (op, arg) = (step[0], step.get(1).copied().unwrap_or(0));
        let node = usize::from(arg) % nodes.len();
        match op % 10 {
            0..=2 if !in_flight.is_empty() => {
                let index = usize::from(arg) % in_flight.len();
                let (from, to, message) = if op % 10 == 2 {
                    in_flight[index].clone()
                } else {
                    in_flight.swap_remove(index)
                };
                if let Some(host) = nodes[to.0 as usize].host.as_mut() {
                    let _ = host.handle(now, from, &message);
                }
            }
            3 if !in_flight.is_empty() => {
                in_flight.swap_remove(usize::from(arg) % in_flight.len());
            }
            4 => {
                if let Some(host) = nodes[node].host.as_mut()
                    && let Some(at) = host.poll_timeout()
                {
                    now = now.max(at);
                    host.handle_timeout(now);
                }
            }
            5 => {
                let n = &mut nodes[node];
                if let (Some(host), Some(ready)) = (n.host.as_mut(), n.persisting.take()) {
                    for record in ready.records() {
                        checker.on_acceptor_record(NodeId(node as u32), record);
                        n.records.insert(record.instance, record.clone());
                    }
                    if let Some(ranged) = ready.ranged() {
                        n.ranged = ranged.clone();
                    }
                    host.persisted(ready);
                }
            }
            6 => {
                let n = &mut nodes[node];
                n.persisting = None;
                n.host = match n.host {
                    Some(_) => None,
                    None => {
                        let records = n.records.values().cloned().collect();
                        Some(start(NodeId(node as u32), &members, records, &n.ranged))
                    }
                };
            }
            7 => {
                requests += 1;
                let client = ProposerId(u32::from(arg) % 4);
                let request = ClientRequest {
                    key: u64::from(arg) % KEYS,
                    value: Value::from(format!("request-{requests}")),
                    client,
                    via: None,
                };
                in_flight.push((
                    Address::Proposer(client),
                    NodeId(node as u32),
                    request.into(),
                ));
            }
            8 | 9 => {
                let (from, message) = forgery(op, arg, step);
                in_flight.push((from, NodeId(node as u32), message));
            }
            _ => {}
        }
        for (index, n) in nodes.iter_mut().enumerate() {
            drain(NodeId(index as u32), n, now, &mut in_flight, &mut checker);
        }
        // Bounded, like every load loop: an adversarial schedule may duplicate without end.
        in_flight.truncate(4096);
    }
    assert!(
        checker.violations().is_empty(),
        "{:?}",
        checker.violations()
    );
    checker.stats().decided
}

fn start(id: NodeId, members: &[NodeId], records: Vec<Record>, ranged: &RangedState) -> NodeHost {
    let mut leader = LeaderConfig::new(members.to_vec());
    leader.initial_leader = Some(NodeId(0));
    leader.batch = 2;
    let config = NodeHostConfig {
        id,
        members: members.to_vec(),
        acceptor: crate::acceptor::AcceptorConfig::default(),
        phase2_quorum: leader.quorums.phase2,
        protocol: ProtocolConfig::MultiPaxos(leader),
        seed: u64::from(id.0),
    };
    let Ok(mut host) = NodeHost::restore(config, records, ranged) else {
        unreachable!("a valid configuration")
    };
    host.start(Time::ZERO);
    host
}

/// A message no honest peer sends: arbitrary ballots, slots and senders.
fn forgery(op: u8, arg: u8, step: &[u8]) -> (Address, Message) {
    let high = match arg % 4 {
        0 => u64::MAX,
        1 => u64::MAX - 1,
        2 => 1 << 63,
        _ => u64::from(arg),
    };
    let ballot = ProposalId::new(high, u32::from(arg) % 5);
    // A member that speaks for itself is trusted (a malicious node is out of scope), so a
    // member's forgery always names another node.
    let (from, liar) = match (op, arg % 3) {
        (8, _) => (
            Address::Proposer(ProposerId(u32::from(arg))),
            NodeId(u32::from(arg) % 5),
        ),
        (_, 0) => (Address::Node(NodeId(7)), NodeId(7)),
        _ => {
            let member = u32::from(arg) % NODES;
            (
                Address::Node(NodeId(member)),
                NodeId((member + 1 + u32::from(arg) % 4) % 5),
            )
        }
    };
    let slot = if arg.is_multiple_of(2) {
        u64::MAX - 3
    } else {
        u64::from(arg)
    };
    let instance = Instance::new(u64::from(arg) % KEYS, slot);
    let message = match step.len() + usize::from(arg) % 5 {
        1 | 6 => PrepareAll {
            ballot,
            from: liar,
            known: vec![(0, slot)],
        }
        .into(),
        2 => PromiseAll {
            ballot,
            from: liar,
            accepted: vec![(instance, ballot, Value::from_static(b"forged"))],
            high_slots: vec![(instance.key, slot)],
            chosen_through: vec![(instance.key, slot)],
            answers: crate::message::known_digest(&[]),
        }
        .into(),
        3 => AcceptBatch {
            ballot,
            from: liar,
            entries: vec![(instance, Value::from_static(b"forged"))],
            commits: vec![instance],
        }
        .into(),
        4 => Heartbeat {
            ballot,
            from: liar,
            commits: vec![instance],
            chosen_through: vec![(instance.key, slot)],
        }
        .into(),
        _ => Refused {
            ballot,
            promised: ballot,
            from: liar,
        }
        .into(),
    };
    (from, message)
}

/// Takes what node `id` produced: events to the checker, transmits to the network, the next
/// batch to persist.
fn drain(
    id: NodeId,
    node: &mut Node,
    now: Time,
    in_flight: &mut Vec<(Address, NodeId, Message)>,
    checker: &mut Checker,
) {
    let Some(host) = node.host.as_mut() else {
        return;
    };
    loop {
        while let Some(event) = host.poll_event() {
            match event {
                NodeEvent::Learned { instance, value } => {
                    checker.on_chosen(instance, &value, ChosenBy::Learner(id));
                }
                NodeEvent::Leader(LeaderEvent::Proposed { instance, value }) => {
                    checker.on_proposed(instance, &value);
                }
                NodeEvent::Leader(LeaderEvent::Chosen {
                    instance, value, ..
                }) => checker.on_chosen(instance, &value, ChosenBy::Learner(id)),
                NodeEvent::Leader(_) => {}
            }
        }
        let mut sent = false;
        while let Some(Transmit { from, to, message }) = host.poll_transmit() {
            sent = true;
            let recipients: Vec<NodeId> = match to {
                To::AllNodes => (0..NODES).map(NodeId).collect(),
                To::Nodes(nodes) => nodes,
                To::Node(node) => vec![node],
                To::Proposer(_) => Vec::new(),
            };
            for to in recipients {
                in_flight.push((from, to, message.clone()));
            }
        }
        if node.persisting.is_none()
            && let Some(ready) = host.ready(now)
        {
            node.persisting = Some(ready);
            continue;
        }
        if !sent {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests, deliveries and persists in turn, and now and then the initial leader's timer
    /// (a timer op jumps to the timer, so firing it often would time every campaign out): a
    /// fair schedule with a stable leader.
    fn fair() -> Vec<u8> {
        let mut data = Vec::new();
        for round in 0..300u32 {
            let step: [u8; 2] = match round % 6 {
                _ if round % 60 == 59 => [4, 0],
                0 if round < 60 => [7, (round / 6 * 3) as u8],
                1..=3 => [0, 0],
                4 => [5, (round / 6 % 3) as u8],
                _ => [0, 0],
            };
            data.extend_from_slice(&step);
        }
        data
    }

    #[test]
    fn a_fair_schedule_decides_requests() {
        assert!(multi_paxos_schedule(&fair()) > 0);
    }

    #[test]
    fn forgeries_and_crashes_amid_a_fair_schedule_break_nothing() {
        let mut data = fair();
        for (i, op) in [8u8, 9, 6, 8, 9, 6, 9, 8].into_iter().enumerate() {
            data.splice(i * 40..i * 40, [op, (i * 37) as u8]);
        }
        multi_paxos_schedule(&data);
    }
}
