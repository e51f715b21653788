//! The node's leader role under Multi-Paxos: the core's `Leader` beside the acceptor and the
//! learner, its timer on the node's clock, its messages to the other nodes and the clients,
//! and the messages a node sends itself (its leader's to its own acceptor and back), which
//! never touch the network.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use paxbench_core::leader::{Leader, LeaderConfig, LeaderEvent, Target};
use paxbench_core::message::Message;
use paxbench_core::rng::Stream;
use paxbench_core::{NodeId, ProposalId, ProposerId, Time};
use paxbench_quic::{Envelope, Link, PeerName, Transport};
use tracing::{debug, info, warn};

use super::Node;
use crate::error::Error;

/// The Multi-Paxos half of a node. See the [module documentation](self).
pub(super) struct MultiPaxos {
    pub(super) leader: Leader,
    /// Messages this node sent itself, not yet delivered.
    pub(super) local: VecDeque<Message>,
    /// Clients heard from only through a forwarding node: their replies go back that way.
    forwarded: HashMap<ProposerId, NodeId>,
    /// The role's clock starts with the node.
    clock: tokio::time::Instant,
    /// Values this node's acceptor learned chosen from commit notices.
    pub(super) learned: u64,
    /// When the chosen prefix was last written without a global promise to carry it.
    pub(super) prefix_saved: Instant,
}

impl MultiPaxos {
    /// Node `id`'s role. Its randomness (election timeouts, backoff) is seeded from the
    /// moment and the process, so that nodes started together do not draw alike.
    pub(super) fn new(id: NodeId, config: LeaderConfig) -> Result<Self, Error> {
        let seed = paxbench_quic::wire::unix_now_ns() ^ (u64::from(std::process::id()) << 32);
        let leader = Leader::new(id, config, Stream::Leader(id.0).seed(seed)).map_err(|e| {
            Error::Config {
                origin: "leader".into(),
                message: e.to_string(),
            }
        })?;
        Ok(Self {
            leader,
            local: VecDeque::new(),
            forwarded: HashMap::new(),
            clock: tokio::time::Instant::now(),
            learned: 0,
            prefix_saved: Instant::now(),
        })
    }

    pub(super) fn now(&self) -> Time {
        Time(self.clock.elapsed().as_nanos() as u64)
    }

    /// When the role's timer fires next.
    pub(super) fn wake(&self) -> Option<tokio::time::Instant> {
        let at = self.leader.poll_timeout()?;
        Some(self.clock + std::time::Duration::from_nanos(at.0))
    }

    /// Begins: a node whose store held state rejoins as a follower, a new one starts (and
    /// campaigns at once if it is the initial leader). Either way above `durable`, the global
    /// promise its acceptor persisted.
    pub(super) fn begin(&mut self, restarted: bool, durable: ProposalId) {
        let now = self.now();
        if restarted {
            self.leader.rejoin(now, durable);
        } else {
            self.leader.start(now, durable);
        }
    }
}

impl<T: Transport + std::fmt::Debug> Node<T> {
    /// A Multi-Paxos message from `peer`. A vanilla node drops it, saying why.
    pub(super) fn handle_multi(&mut self, peer: PeerName, message: Message, reply: Link) {
        let Some(multi) = self.multi.as_mut() else {
            warn!(%peer, kind = message.kind(), "ignoring a Multi-Paxos message: this node runs vanilla Paxos (set `protocol: multi-paxos`)");
            return;
        };
        if let Message::ClientRequest(request) = &message {
            match (peer, request.via) {
                (PeerName::Node(_), Some(via)) => {
                    multi.forwarded.insert(request.client, via);
                }
                _ => self.note_proposer(request.client, reply),
            }
        }
        self.deliver_multi(&message);
    }

    /// What a Multi-Paxos message does to this node's acceptor, then to its leader role.
    fn deliver_multi(&mut self, message: &Message) {
        let mut learned = 0;
        if !self.stats.storage_failed {
            match message {
                Message::PrepareAll(m) => self.acceptor.handle_prepare_all(m),
                Message::AcceptBatch(m) => {
                    for (instance, _) in &m.entries {
                        self.hold(*instance);
                    }
                    learned = self.acceptor.handle_accept_batch(m).len();
                }
                Message::Heartbeat(m) => {
                    learned = self.acceptor.handle_heartbeat(m).len();
                }
                _ => {}
            }
        }
        let Some(multi) = self.multi.as_mut() else {
            return;
        };
        multi.learned += learned as u64;
        let now = multi.now();
        if let Err(e) = multi.leader.handle(now, message) {
            debug!("the leader role refused a message: {e}");
        }
    }

    /// The role's timer fired.
    pub(super) fn leader_timeout(&mut self) {
        if let Some(multi) = self.multi.as_mut() {
            let now = multi.now();
            multi.leader.handle_timeout(now);
        }
    }

    /// Sends what the leader role has to send and delivers what this node sent itself, until
    /// neither has anything left.
    pub(super) fn settle(&mut self) {
        loop {
            self.flush_leader();
            let Some(message) = self.multi.as_mut().and_then(|m| m.local.pop_front()) else {
                return;
            };
            self.deliver_multi(&message);
        }
    }

    fn flush_leader(&mut self) {
        loop {
            let Some(multi) = self.multi.as_mut() else {
                return;
            };
            if let Some(event) = multi.leader.poll_event() {
                match event {
                    LeaderEvent::Elected { ballot, reproposed } => {
                        info!(node = %self.id, %ballot, reproposed, "elected leader");
                    }
                    LeaderEvent::SteppedDown { ballot, by } => {
                        info!(node = %self.id, %ballot, %by, "stepped down");
                    }
                    LeaderEvent::Proposed { .. } | LeaderEvent::Chosen { .. } => {}
                }
                continue;
            }
            let Some(transmit) = multi.leader.poll_transmit() else {
                return;
            };
            match transmit.to {
                Target::AllNodes => {
                    for position in 0..self.peers.len() {
                        self.send_peer(position, transmit.message.clone());
                    }
                    self.send_to_node(self.id, transmit.message);
                }
                Target::Nodes(nodes) => {
                    for node in nodes {
                        self.send_to_node(node, transmit.message.clone());
                    }
                }
                Target::Node(node) => self.send_to_node(node, transmit.message),
                Target::Client(client) => self.answer_client(client, transmit.message),
            }
        }
    }

    /// Sends `message` to node `node`: this one's own goes to the local queue.
    pub(super) fn send_to_node(&mut self, node: NodeId, message: Message) {
        if node == self.id {
            if let Some(multi) = self.multi.as_mut() {
                multi.local.push_back(message);
            }
            return;
        }
        match self.peer_ids.iter().position(|id| *id == node) {
            Some(position) => self.send_peer(position, message),
            None => debug!(%node, kind = message.kind(), "no link to this node"),
        }
    }

    fn send_peer(&mut self, position: usize, message: Message) {
        self.stats.paxos_out += 1;
        self.peers[position].send(Envelope::Paxos(message));
    }

    /// Answers a client: on its own link, or through the node that forwarded its request.
    fn answer_client(&mut self, client: ProposerId, message: Message) {
        let envelope = Envelope::Reply {
            proposer: client,
            message,
        };
        if let Some(link) = self.proposers.get(&client) {
            self.stats.paxos_out += 1;
            link.send(envelope);
            return;
        }
        let via = self
            .multi
            .as_ref()
            .and_then(|m| m.forwarded.get(&client).copied());
        match via.and_then(|via| self.peer_ids.iter().position(|id| *id == via)) {
            Some(position) => {
                self.stats.paxos_out += 1;
                self.peers[position].send(envelope);
            }
            None => debug!(%client, "no way back to this client"),
        }
    }

    /// A reply another node's leader sent here for one of this node's clients (it forwarded
    /// the request): passed on.
    pub(super) fn relay(&mut self, proposer: ProposerId, message: Message) {
        if let Some(link) = self.proposers.get(&proposer) {
            self.stats.paxos_out += 1;
            link.send(Envelope::Reply { proposer, message });
        }
    }
}
