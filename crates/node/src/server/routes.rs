//! The node's network side: frames in (Paxos messages to the host, pings, admin commands,
//! replies to relay), and the host's transmits out to peer links, to proposers' and clients'
//! links (or back through the node that forwarded a client's request), and to this node
//! itself through a local queue that never touches the network.

use std::time::{Duration, Instant};

use paxbench_core::host::{
    Authorised, NodeEvent, NodeHost, RefusalReason, client_sender, instances_read,
};
use paxbench_core::leader::LeaderEvent;
use paxbench_core::message::Message;
use paxbench_core::transmit::{Address, To, Transmit};
use paxbench_core::{NodeId, ProposerId, Time};
use paxbench_quic::{AdminCommand, AdminReply, Envelope, Inbound, Link, PeerName, Transport};
use tracing::{debug, info, warn};

use super::Node;

/// Refused frames are logged at most this often (each is counted).
const REFUSAL_LOG_PERIOD: Duration = Duration::from_secs(1);

/// The proposers' reply links are first trimmed of closed ones at this many.
pub(super) const PROPOSERS_TRIM_MIN: usize = 4096;

/// Clients whose requests another node forwarded, awaiting their answer.
const MAX_FORWARDED: usize = 65_536;

impl<T: Transport + std::fmt::Debug> Node<T> {
    /// A frame from a peer; `now` is read once for a batch of frames. A node that is not a
    /// member of this cluster gets no answer at all, not even to a ping.
    pub(super) fn handle(&mut self, now: Time, inbound: Inbound) {
        // The frame's share of the inbox budget is given back once it has been handled.
        let Inbound {
            peer,
            envelope,
            reply,
            ..
        } = inbound;
        // The node's own name may only ask for a ping: its readiness probe (`ready`).
        if let PeerName::Node(node) = peer
            && !self.peer_ids.contains(&node)
            && !(node == self.id && matches!(envelope, Envelope::Ping { .. }))
        {
            self.refuse(peer, envelope.kind(), RefusalReason::NotMember);
            return;
        }
        let Some(reply) = reply.link() else {
            // The link closed while the frame waited: nobody is there to answer.
            return;
        };
        match envelope {
            Envelope::Paxos(message) => self.handle_paxos(now, peer, message, reply),
            // A node whose storage failed is not ready: readiness checks see it.
            Envelope::Ping { .. } if self.host.storage_failed() => {}
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
            other @ (Envelope::Hello { .. }
            | Envelope::Pong { .. }
            | Envelope::AdminReply { .. }
            | Envelope::Reply { .. }) => {
                self.refuse(peer, other.kind(), RefusalReason::Role);
            }
        }
    }

    /// Counters go to anyone the cluster CA named a client or an admin; fault and disk
    /// commands only to an admin, and only while the node's `admin` setting allows. Plain TCP
    /// names peers by their own word, so it gets no admin at all.
    fn handle_admin(&mut self, peer: PeerName, command: AdminCommand) -> AdminReply {
        let authenticated = self.endpoint.transport().kind().authenticates_peers();
        let allowed = match (&command, peer) {
            (_, _) if !authenticated => {
                Err("admin commands need QUIC: plain TCP does not authenticate peers".to_string())
            }
            (AdminCommand::Stats, PeerName::Client(_) | PeerName::Admin(_)) => Ok(()),
            (_, PeerName::Admin(_)) if self.admin => Ok(()),
            (_, PeerName::Admin(_)) => Err("this node's `admin` setting is off".to_string()),
            (_, _) => Err(format!("{peer} is not an admin")),
        };
        if let Err(reason) = allowed {
            self.refuse(peer, command.name(), RefusalReason::Role);
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
                warn!(%peer, ?fault, "disk fault set from the next commit on");
                self.disk.set(fault);
                AdminReply::FaultsSet
            }
        }
    }

    /// A Paxos message from a peer, taken from whom the transport authenticated: a node as
    /// itself, a client as the proposer it speaks for. The host judges whether that sender
    /// may send it; a refused message is counted and changes nothing. The link its sender's
    /// replies go back on is noted only for a message the host took.
    fn handle_paxos(&mut self, now: Time, peer: PeerName, message: Message, reply: Link) {
        self.stats.paxos_in += 1;
        let from = match peer {
            PeerName::Node(node) => Ok(Address::Node(node)),
            // An admin proposes as the client of its number: a generator that injects faults
            // presents `admin-N` and runs client N's proposers.
            PeerName::Client(client) | PeerName::Admin(client) => client_sender(client, &message),
        };
        let checked = from.and_then(|from| Ok((from, self.host.authorise(from, &message)?)));
        let (from, authorised) = match checked {
            Ok(checked) => checked,
            Err(refusal) => {
                self.refuse(peer, refusal.kind, refusal.reason);
                return;
            }
        };
        match (&message, from) {
            (Message::ClientRequest(request), Address::Node(via)) => {
                self.note_forwarded(request.client, via);
            }
            (_, Address::Proposer(proposer)) => self.note_proposer(proposer, reply),
            _ => {}
        }
        self.deliver(now, authorised, &message);
    }

    /// Counts a refused frame by kind, sender role and reason, and logs it at most once a
    /// second, with how many went unlogged before it.
    fn refuse(&mut self, peer: PeerName, kind: &'static str, reason: RefusalReason) {
        *self
            .refusals
            .entry((kind, peer.role(), reason))
            .or_default() += 1;
        self.refusals_unlogged += 1;
        let now = Instant::now();
        if self
            .refusal_logged
            .is_none_or(|at| now.duration_since(at) >= REFUSAL_LOG_PERIOD)
        {
            warn!(%peer, kind, reason = reason.name(), since_last_logged = self.refusals_unlogged, "refused a message");
            self.refusal_logged = Some(now);
            self.refusals_unlogged = 0;
        }
    }

    /// Pages in the states an authorised `message` reads, then hands it to the host.
    fn deliver(&mut self, now: Time, authorised: Authorised, message: &Message) {
        if !self.host.storage_failed() {
            for instance in instances_read(message) {
                self.hold(instance);
            }
        }
        if let Err(e) = self.host.handle_authorised(now, authorised, message) {
            debug!(kind = message.kind(), "the node refused a message: {e}");
        }
    }

    /// Replies go where the proposer's latest request came from: after a reconnect, that is
    /// the new stream, even before the old one is noticed dead. Links of proposers that went
    /// away are dropped whenever the map doubles, so it holds about as many as are connected.
    fn note_proposer(&mut self, proposer: ProposerId, reply: Link) {
        match self.proposers.get_mut(&proposer) {
            Some(link) if link.same_link(&reply) => {}
            Some(link) => *link = reply,
            None => {
                self.proposers.insert(proposer, reply);
                if self.proposers.len() > self.proposers_trim_at {
                    self.proposers.retain(|_, link| !link.is_closed());
                    self.proposers_trim_at = (2 * self.proposers.len()).max(PROPOSERS_TRIM_MIN);
                }
            }
        }
    }

    /// A client's request came through node `via`: its answer goes back that way. Each entry
    /// lives until that answer; the map is bounded, and a client whose entry was dropped
    /// asks again.
    fn note_forwarded(&mut self, client: ProposerId, via: NodeId) {
        if self.forwarded.len() >= MAX_FORWARDED && !self.forwarded.contains_key(&client) {
            self.forwarded.clear();
        }
        self.forwarded.insert(client, via);
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
            match self.host.authorise(Address::Node(self.id), &message) {
                Ok(authorised) => self.deliver(now, authorised, &message),
                Err(refusal) => warn!(%refusal, "this node refused its own message"),
            }
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
        let via = self.forwarded.remove(&proposer);
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
