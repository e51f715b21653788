//! The simulator's nodes: what a delivered message does to a node's acceptor, learner and
//! leader role, group commit of the acceptor's records and global promise, and where the
//! replies and the leader's messages go.

use std::hash::Hash;

use super::{Address, Event, Sim, SimConfig, SimObserver, Tap};
use crate::acceptor::{CHOSEN_PREFIX_PERIOD, Destination, Outgoing, Ready};
use crate::checker::ChosenBy;
use crate::error::Error;
use crate::leader::{Leader, LeaderEvent, Target};
use crate::message::Message;
use crate::rng::Stream;
use crate::types::{Instance, NodeId, Value};
use crate::workload::Workload;

/// Node `id`'s leader role under Multi-Paxos, seeded from its own stream.
pub(super) fn leader_role(config: &SimConfig, id: NodeId) -> Result<Option<Leader>, Error> {
    match &config.protocol {
        super::Protocol::Vanilla => Ok(None),
        super::Protocol::MultiPaxos(leader) => Ok(Some(Leader::new(
            id,
            leader.clone(),
            Stream::Leader(id.0).seed(config.seed),
        )?)),
    }
}

impl<W: Workload> Sim<W> {
    pub(super) fn deliver(
        &mut self,
        from: Address,
        to: Address,
        message: Message,
        observer: &mut impl SimObserver,
    ) {
        (self.now, from, to, &message).hash(&mut self.digest);
        match to {
            Address::Node(n) => self.deliver_to_node(n.0, message, observer),
            Address::Proposer(p) => {
                self.stats.delivered += 1;
                let mut tap = Tap {
                    digest: &mut self.digest,
                    inner: observer,
                };
                self.host.handle_reply(self.now, p, &message, &mut tap);
                self.flush_host(observer);
            }
        }
    }

    fn deliver_to_node(&mut self, node: u32, message: Message, observer: &mut impl SimObserver) {
        let now = self.now;
        let n = &mut self.nodes[node as usize];
        let Some(acceptor) = n.acceptor.as_mut() else {
            self.stats.lost += 1;
            return;
        };
        self.stats.delivered += 1;
        let mut learned: Vec<(Instance, Value)> = Vec::new();
        let mut for_leader = false;
        match &message {
            Message::Prepare(m) => acceptor.handle_prepare(m),
            Message::AcceptRequest(m) => acceptor.handle_accept_request(m),
            Message::Accepted(m) => {
                if let Some(chosen) = n.learner.handle_accepted(m) {
                    learned.push((chosen.instance, chosen.value));
                }
            }
            Message::PrepareAll(m) => {
                acceptor.handle_prepare_all(m);
                for_leader = true;
            }
            Message::AcceptBatch(m) => {
                learned = acceptor.handle_accept_batch(m);
                for_leader = true;
            }
            Message::Heartbeat(m) => {
                learned = acceptor.handle_heartbeat(m);
                for_leader = true;
            }
            Message::PromiseAll(_)
            | Message::AcceptedBatch(_)
            | Message::Refused(_)
            | Message::ClientRequest(_) => for_leader = true,
            Message::Promise(_)
            | Message::Nack(_)
            | Message::Redirect(_)
            | Message::ClientReply(_) => {}
        }
        let id = n.id;
        for (instance, value) in learned {
            self.host
                .checker_mut()
                .on_chosen(instance, &value, ChosenBy::Learner(id));
        }
        if for_leader && let Some(leader) = self.nodes[node as usize].leader.as_mut() {
            // Only leader-role messages reach here, so the role accepts every one.
            let _ = leader.handle(now, &message);
            self.flush_leader(node, observer);
        }
        self.flush_node(node, observer);
    }

    /// Sends what node `node`'s leader role has to send, feeds its events to the checker and
    /// the observer, and re-arms its timer.
    pub(super) fn flush_leader(&mut self, node: u32, observer: &mut impl SimObserver) {
        let from = Address::Node(NodeId(node));
        let id = NodeId(node);
        loop {
            let Some(leader) = self.nodes[node as usize].leader.as_mut() else {
                return;
            };
            if let Some(event) = leader.poll_event() {
                (self.now, node, &event).hash(&mut self.digest);
                observer.on_leader_event(self.now, id, &event);
                match &event {
                    LeaderEvent::Proposed { instance, value } => {
                        self.host.checker_mut().on_proposed(*instance, value);
                    }
                    LeaderEvent::Chosen {
                        instance, value, ..
                    } => {
                        self.host
                            .checker_mut()
                            .on_chosen(*instance, value, ChosenBy::Learner(id));
                    }
                    LeaderEvent::Elected { .. } | LeaderEvent::SteppedDown { .. } => {}
                }
                continue;
            }
            let Some(transmit) = leader.poll_transmit() else {
                break;
            };
            match transmit.to {
                Target::AllNodes => {
                    for to in 0..self.nodes.len() as u32 {
                        let to = Address::Node(NodeId(to));
                        self.send(from, to, transmit.message.clone(), observer);
                    }
                }
                Target::Nodes(nodes) => {
                    for to in nodes {
                        let to = Address::Node(to);
                        self.send(from, to, transmit.message.clone(), observer);
                    }
                }
                Target::Node(to) => self.send(from, Address::Node(to), transmit.message, observer),
                Target::Client(client) => {
                    if (client.0 as usize) < self.host.len() {
                        self.send(from, Address::Proposer(client), transmit.message, observer);
                    }
                }
            }
        }
        let n = &mut self.nodes[node as usize];
        let wake = n.leader.as_ref().and_then(Leader::poll_timeout);
        if wake.is_some() && wake != n.leader_armed {
            n.leader_armed = wake;
            let epoch = n.epoch;
            if let Some(at) = wake {
                self.schedule(at, Event::LeaderTimer { node, epoch, at });
            }
        }
    }

    pub(super) fn flush_node(&mut self, node: u32, observer: &mut impl SimObserver) {
        let n = &mut self.nodes[node as usize];
        if n.persisting {
            return;
        }
        let Some(acceptor) = n.acceptor.as_mut() else {
            return;
        };
        if !acceptor.has_ready() {
            return;
        }
        let mut ready = acceptor.ready();
        let epoch = n.epoch;
        let immediate = ready.take_unpersisted_messages();
        let nothing_to_write = ready.records().is_empty() && ready.global_promise().is_none();
        if self.config.fsync.is_zero() || nothing_to_write {
            self.route(node, immediate, observer);
            self.complete_persist(node, ready, observer);
        } else {
            n.persisting = true;
            self.route(node, immediate, observer);
            self.schedule(
                self.now + self.config.fsync,
                Event::PersistDone { node, epoch, ready },
            );
        }
    }

    pub(super) fn complete_persist(
        &mut self,
        node: u32,
        ready: Ready,
        observer: &mut impl SimObserver,
    ) {
        let n = &mut self.nodes[node as usize];
        if !ready.records().is_empty() || ready.global_promise().is_some() {
            self.stats.persists += 1;
            observer.on_persist(self.now, n.id);
        }
        for record in ready.records() {
            self.host.checker_mut().on_acceptor_record(n.id, record);
            n.store.insert(record.instance, record.clone());
        }
        if let Some(global) = ready.global_promise() {
            n.global = n.global.max(global);
        }
        if let Some(acceptor) = &n.acceptor
            && (ready.global_promise().is_some()
                || self.now.saturating_since(n.prefix_saved) >= CHOSEN_PREFIX_PERIOD)
        {
            n.prefix = acceptor.chosen_prefix();
            n.prefix_saved = self.now;
        }
        n.persisting = false;
        self.route(node, ready.persisted(), observer);
        self.flush_node(node, observer);
    }

    fn route(&mut self, node: u32, outgoing: Vec<Outgoing>, observer: &mut impl SimObserver) {
        let from = Address::Node(NodeId(node));
        for Outgoing { to, message } in outgoing {
            match to {
                Destination::Proposer(p) => {
                    if (p.0 as usize) < self.host.len() {
                        self.send(from, Address::Proposer(p), message, observer);
                    }
                }
                Destination::Node(to) => self.send(from, Address::Node(to), message, observer),
                Destination::Learners => {
                    for learner in 0..self.nodes.len() as u32 {
                        let to = Address::Node(NodeId(learner));
                        self.send(from, to, message.clone(), observer);
                    }
                }
            }
        }
    }
}
