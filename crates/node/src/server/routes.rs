//! The node's network side: frames in (Paxos messages to the host, pings, admin commands,
//! replies to relay), and the host's transmits out to peer links, to proposers' and clients'
//! links (or back through the node that forwarded a client's request), and to this node
//! itself through a local queue that never touches the network.

use paxbench_core::host::{NodeEvent, NodeHost, instances_read};
use paxbench_core::leader::LeaderEvent;
use paxbench_core::message::Message;
use paxbench_core::transmit::{Address, To, Transmit};
use paxbench_core::{NodeId, ProposerId, Time};
use paxbench_quic::{AdminCommand, AdminReply, Envelope, Inbound, Link, PeerName, Transport};
use tracing::{debug, info, warn};

use super::Node;

impl<T: Transport + std::fmt::Debug> Node<T> {
    /// A frame from a peer; `now` is read once for a batch of frames.
    pub(super) fn handle(&mut self, now: Time, inbound: Inbound) {
        let Inbound {
            peer,
            envelope,
            reply,
        } = inbound;
        let Some(reply) = reply.link() else {
            // The link closed while the frame waited: nobody is there to answer.
            return;
        };
        match envelope {
            Envelope::Paxos(message) => self.handle_paxos(now, peer, message, reply),
            Envelope::Ping { nonce } => reply.send(Envelope::Pong {
                nonce,
                unix_ns: paxbench_quic::wire::unix_now_ns(),
            }),
            Envelope::Admin { request, command } => {
                let answer = self.handle_admin(peer, command);
                reply.send(Envelope::AdminReply {
                    request,
                    reply: answer,
                });
            }
            Envelope::Reply { proposer, message } if matches!(peer, PeerName::Node(_)) => {
                self.relay(proposer, message);
            }
            Envelope::Hello { .. }
            | Envelope::Pong { .. }
            | Envelope::AdminReply { .. }
            | Envelope::Reply { .. } => {
                debug!(%peer, "ignoring an unexpected frame");
            }
        }
    }

    /// Admin commands come only from the cluster's clients, named by a certificate the cluster
    /// CA signed: plain TCP names peers by their own word, so it gets no admin at all.
    fn handle_admin(&mut self, peer: PeerName, command: AdminCommand) -> AdminReply {
        let authenticated = self.endpoint.transport().kind().authenticates_peers();
        if !(peer.is_client() && authenticated) {
            let reason = if authenticated {
                format!("{peer} is not a cluster client")
            } else {
                "admin commands need QUIC: plain TCP does not authenticate peers".to_string()
            };
            warn!(%peer, "refused an admin command: {reason}");
            return AdminReply::Refused { reason };
        }
        match command {
            AdminCommand::Stats => AdminReply::Stats(Box::new(self.stats())),
            AdminCommand::SetFaults(spec) => match self.endpoint.faults().set(&spec) {
                Ok(()) => {
                    info!(%peer, ?spec, "fault settings changed");
                    AdminReply::FaultsSet
                }
                Err(e) => AdminReply::Refused {
                    reason: e.to_string(),
                },
            },
            AdminCommand::SetDiskFault(fault) => {
                warn!(%peer, ?fault, "disk fault injected from the next commit on");
                self.disk.set(fault);
                AdminReply::FaultsSet
            }
        }
    }

    /// A Paxos message from a peer: the link its sender's replies go back on is noted, the
    /// states it reads are paged in, then the host takes it.
    fn handle_paxos(&mut self, now: Time, peer: PeerName, message: Message, reply: Link) {
        self.stats.paxos_in += 1;
        match &message {
            Message::Prepare(m) => self.note_proposer(m.from, reply),
            Message::AcceptRequest(m) => self.note_proposer(m.from, reply),
            Message::ClientRequest(request) => match (peer, request.via) {
                (PeerName::Node(_), Some(via)) => {
                    self.forwarded.insert(request.client, via);
                }
                _ => self.note_proposer(request.client, reply),
            },
            _ => {}
        }
        let from = match peer {
            PeerName::Node(node) => Address::Node(node),
            PeerName::Client(number) => Address::Proposer(ProposerId(number)),
        };
        self.deliver(now, from, &message);
    }

    /// Pages in the states `message` reads, then hands it to the host.
    fn deliver(&mut self, now: Time, from: Address, message: &Message) {
        if !self.host.storage_failed() {
            for instance in instances_read(message) {
                self.hold(instance);
            }
        }
        if let Err(e) = self.host.handle(now, from, message) {
            debug!(?from, "the node refused a message: {e}");
        }
    }

    /// Replies go where the proposer's latest request came from: after a reconnect, that is
    /// the new stream, even before the old one is noticed dead.
    fn note_proposer(&mut self, proposer: ProposerId, reply: Link) {
        match self.proposers.get_mut(&proposer) {
            Some(link) if link.same_link(&reply) => {}
            Some(link) => *link = reply,
            None => {
                self.proposers.insert(proposer, reply);
            }
        }
    }

    /// Drains the host, and delivers what this node sent itself, until neither has anything
    /// left. Returns whether there was anything.
    pub(super) fn settle(&mut self, now: Time) -> bool {
        let mut any = false;
        loop {
            while let Some(event) = self.host.poll_event() {
                log_event(self.id, &event);
            }
            while let Some(transmit) = self.host.poll_transmit() {
                any = true;
                self.route(transmit);
            }
            let Some(message) = self.local.pop_front() else {
                return any;
            };
            self.deliver(now, Address::Node(self.id), &message);
        }
    }

    fn route(&mut self, transmit: Transmit) {
        let Transmit { to, message, .. } = transmit;
        match to {
            To::AllNodes => {
                for position in 0..self.peers.len() {
                    self.send_peer(position, Envelope::Paxos(message.clone()));
                }
                self.local.push_back(message);
            }
            To::Nodes(nodes) => {
                for node in nodes {
                    self.send_to_node(node, message.clone());
                }
            }
            To::Node(node) => self.send_to_node(node, message),
            To::Proposer(proposer) => self.answer(proposer, message),
        }
    }

    /// Sends `message` to node `node`: this one's own goes to the local queue.
    fn send_to_node(&mut self, node: NodeId, message: Message) {
        if node == self.id {
            self.local.push_back(message);
            return;
        }
        match self.peer_ids.iter().position(|id| *id == node) {
            Some(position) => self.send_peer(position, Envelope::Paxos(message)),
            None => debug!(%node, kind = message.kind(), "no link to this node"),
        }
    }

    fn send_peer(&mut self, position: usize, envelope: Envelope) {
        self.stats.paxos_out += 1;
        self.peers[position].send(envelope);
    }

    /// Answers a proposer or client: on its own link, or through the node that forwarded its
    /// request.
    fn answer(&mut self, proposer: ProposerId, message: Message) {
        let envelope = Envelope::Reply { proposer, message };
        if let Some(link) = self.proposers.get(&proposer) {
            self.stats.paxos_out += 1;
            link.send(envelope);
            return;
        }
        let via = self.forwarded.get(&proposer).copied();
        match via.and_then(|via| self.peer_ids.iter().position(|id| *id == via)) {
            Some(position) => self.send_peer(position, envelope),
            None => debug!(%proposer, "no way back to this proposer"),
        }
    }

    /// A reply another node's leader sent here for one of this node's clients (it forwarded
    /// the request): passed on.
    fn relay(&mut self, proposer: ProposerId, message: Message) {
        if let Some(link) = self.proposers.get(&proposer) {
            self.stats.paxos_out += 1;
            link.send(Envelope::Reply { proposer, message });
        }
    }

    /// The host's timer is due.
    pub(super) fn timeout(&mut self) {
        let now = self.now();
        self.host.handle_timeout(now);
    }

    /// Ends a turn: everything the host and the node's own messages set off is sent or
    /// delivered, what the host must persist is handed to storage (in memory mode that
    /// completes at once and may set off more), then old states leave memory.
    pub(super) fn finish_turn(&mut self) {
        let now = self.now();
        while self.settle(now) | self.start_commit(now) {}
        self.evict();
    }
}

fn log_event(node: NodeId, event: &NodeEvent) {
    match event {
        NodeEvent::Learned { instance, .. } => debug!(%instance, "chosen"),
        NodeEvent::Leader(LeaderEvent::Elected { ballot, reproposed }) => {
            info!(%node, %ballot, reproposed, "elected leader");
        }
        NodeEvent::Leader(LeaderEvent::SteppedDown { ballot, by }) => {
            info!(%node, %ballot, %by, "stepped down");
        }
        NodeEvent::Leader(LeaderEvent::Proposed { .. } | LeaderEvent::Chosen { .. }) => {}
    }
}

/// The host's clock: nanoseconds since `start`.
pub(super) fn host_time(start: tokio::time::Instant) -> Time {
    Time(start.elapsed().as_nanos() as u64)
}

/// When the host wants its timer, on tokio's clock.
pub(super) fn wake(host: &NodeHost, start: tokio::time::Instant) -> Option<tokio::time::Instant> {
    let at = host.poll_timeout()?;
    Some(start + std::time::Duration::from_nanos(at.0))
}
