//! The simulator's nodes: an I/O shell over each node's [`NodeHost`]. It delivers messages,
//! moves the host's transmits through the simulated network, models the disk (a persist
//! takes `fsync`, and a crash loses it), and hands what the node made durable and learned to
//! the simulator ([`Sim::observe_node_event`]), which tells the checker.

use std::hash::Hash;

use super::{Address, Event, Sim, SimConfig, SimObserver, Tap};
use crate::host::{NodeHost, NodeHostConfig, NodeReady};
use crate::message::Message;
use crate::rng::Stream;
use crate::transmit::{To, Transmit};
use crate::types::NodeId;
use crate::workload::Workload;

/// Node `id`'s settings: the cluster's, with its role seeded from its own stream.
pub(super) fn host_config(config: &SimConfig, id: NodeId) -> NodeHostConfig {
    NodeHostConfig {
        id,
        members: (0..config.acceptors as u32).map(NodeId).collect(),
        acceptor: config.acceptor,
        phase2_quorum: config.quorums.phase2,
        protocol: config.protocol.clone(),
        seed: Stream::Leader(id.0).seed(config.seed),
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
            Address::Node(n) => {
                // A scripted message (`Sim::inject`) may name a node the cluster does not have.
                let Some(host) = self
                    .nodes
                    .get_mut(n.0 as usize)
                    .and_then(|node| node.host.as_mut())
                else {
                    self.stats.lost += 1;
                    return;
                };
                self.stats.delivered += 1;
                // A message no role of the node takes changes nothing.
                let _ = host.handle(self.now, from, &message);
                self.flush_node(n.0, observer);
            }
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

    /// Drains node `node`: its events, its transmits and its timer, then what it has to
    /// persist, for `fsync` or at once, until nothing is left.
    pub(super) fn flush_node(&mut self, node: u32, observer: &mut impl SimObserver) {
        loop {
            self.drain_node(node, observer);
            let now = self.now;
            let n = &mut self.nodes[node as usize];
            let Some(ready) = n.host.as_mut().and_then(|host| host.ready(now)) else {
                // Replies that rested on nothing new were released.
                self.drain_node(node, observer);
                return;
            };
            self.drain_node(node, observer);
            if !self.config.fsync.is_zero() {
                let epoch = self.nodes[node as usize].epoch;
                self.schedule(
                    self.now + self.config.fsync,
                    Event::PersistDone {
                        node,
                        epoch,
                        ready: Box::new(ready),
                    },
                );
                return;
            }
            self.make_durable(node, ready, observer);
        }
    }

    /// A persist of node `node` finished: the records join its store, then its replies go.
    pub(super) fn complete_persist(
        &mut self,
        node: u32,
        ready: NodeReady,
        observer: &mut impl SimObserver,
    ) {
        self.make_durable(node, ready, observer);
        self.flush_node(node, observer);
    }

    fn make_durable(&mut self, node: u32, ready: NodeReady, observer: &mut impl SimObserver) {
        let n = &mut self.nodes[node as usize];
        self.stats.persists += 1;
        observer.on_persist(self.now, n.id);
        for record in ready.records() {
            n.store.insert(record.instance, record.clone());
        }
        let id = n.id;
        self.observe_durable(id, ready.records());
        let n = &mut self.nodes[node as usize];
        if let Some(ranged) = ready.ranged() {
            n.ranged = ranged.clone();
        }
        if let Some(host) = n.host.as_mut() {
            host.persisted(ready);
        }
    }

    /// Feeds node `node`'s events to the checker and the observer, sends its transmits, and
    /// re-arms its timer.
    fn drain_node(&mut self, node: u32, observer: &mut impl SimObserver) {
        let id = NodeId(node);
        while let Some(event) = self.nodes[node as usize]
            .host
            .as_mut()
            .and_then(NodeHost::poll_event)
        {
            self.observe_node_event(id, event, observer);
        }
        while let Some(transmit) = self.nodes[node as usize]
            .host
            .as_mut()
            .and_then(NodeHost::poll_transmit)
        {
            self.route(transmit, observer);
        }
        let n = &mut self.nodes[node as usize];
        let wake = n.host.as_ref().and_then(NodeHost::poll_timeout);
        if wake.is_some() && wake != n.leader_armed {
            n.leader_armed = wake;
            let epoch = n.epoch;
            if let Some(at) = wake {
                self.schedule(at, Event::LeaderTimer { node, epoch, at });
            }
        }
    }

    /// Sends a node's transmit to each of its recipients; a proposer that is not hosted here
    /// gets nothing.
    fn route(&mut self, transmit: Transmit, observer: &mut impl SimObserver) {
        let Transmit { from, to, message } = transmit;
        match to {
            To::AllNodes => {
                for to in 0..self.nodes.len() as u32 {
                    self.send(from, Address::Node(NodeId(to)), message.clone(), observer);
                }
            }
            To::Nodes(nodes) => {
                for to in nodes {
                    self.send(from, Address::Node(to), message.clone(), observer);
                }
            }
            To::Node(to) => self.send(from, Address::Node(to), message, observer),
            To::Proposer(p) => {
                if (p.0 as usize) < self.host.len() {
                    self.send(from, Address::Proposer(p), message, observer);
                }
            }
        }
    }
}
