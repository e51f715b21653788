//! The node host: one node's acceptor, learner and protocol role (the Multi-Paxos leader
//! today) behind one sans-IO object, in the spirit of raft-rs's `RawNode`. Every rule of a node
//! lives here: which role a message is for, what a vanilla node refuses, when the global
//! promise and the chosen prefix are saved, what may leave memory. The simulator's node and
//! `paxbench-node`'s server are I/O shells over it.
//!
//! # Driving a node host
//! - Build it with [`NodeHost::new`] (empty storage) or [`NodeHost::restore`] (what the node
//!   persisted before), then call [`NodeHost::start`] once.
//! - Inputs: [`NodeHost::handle`] for every message addressed to the node, from a peer or from
//!   itself; [`NodeHost::handle_timeout`] once `now` reaches [`NodeHost::poll_timeout`];
//!   [`NodeHost::persisted`] once a [`NodeReady`] is durable, or [`NodeHost::fail_storage`] when
//!   it cannot be made so (the `NodeReady` is then dropped, and every reply resting on it).
//! - Outputs, drained after every input in this order:
//!   1. [`NodeHost::poll_event`]: values learned chosen and the leader role's events;
//!   2. [`NodeHost::poll_transmit`]: messages, each naming its sender and recipients. A
//!      transmit that includes this node comes back through `handle`, never across a network;
//!   3. [`NodeHost::ready`]: the records and Multi-Paxos state to make durable, at most one
//!      batch in flight. Replies that rest on nothing new are released to the transmits at
//!      once; the others only through [`NodeHost::persisted`]. Drain the transmits again after
//!      each of these calls;
//!   4. [`NodeHost::poll_timeout`]: when to call `handle_timeout` next.
//! - Paging (shells that keep only some instances in memory): before `handle`, load every
//!   instance of [`instances_read`] the node does not [`hold`](NodeHost::holds) with
//!   [`NodeHost::load`]; offer old ones to [`NodeHost::forget`], which keeps the protocol's rule
//!   of what may leave.

use std::collections::VecDeque;

use super::authority::{Authority, Refusal};
use crate::acceptor::{Acceptor, AcceptorConfig, CHOSEN_PREFIX_PERIOD, RangedState, Ready, Record};
use crate::error::Error;
use crate::leader::{Leader, LeaderEvent};
use crate::learner::{Learner, RECENT_INSTANCES};
use crate::message::Message;
use crate::protocol::{Protocol, ProtocolConfig};
use crate::time::Time;
use crate::transmit::{Address, Transmit};
use crate::types::{Instance, NodeId, Value};

/// What a node is: its id, its acceptor's settings, its learner's quorum, and its protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeHostConfig {
    /// The node.
    pub id: NodeId,
    /// Every node of the cluster, this one included: node-to-node messages are taken only
    /// from these.
    pub members: Vec<NodeId>,
    /// Its acceptor's settings.
    pub acceptor: AcceptorConfig,
    /// How many ACCEPTEDs its learner waits for.
    pub phase2_quorum: usize,
    /// Its protocol, with the role's settings.
    pub protocol: ProtocolConfig,
    /// Seeds the protocol role's randomness (election timeouts, backoff).
    pub seed: u64,
}

/// What happened on a node, for checkers, metrics and logs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NodeEvent {
    /// The node learned that `value` is chosen at `instance`: its learner heard a quorum of
    /// ACCEPTEDs, or a leader's commit notice named a value its acceptor holds.
    Learned {
        /// The instance.
        instance: Instance,
        /// The value chosen.
        value: Value,
    },
    /// The leader role reported this.
    Leader(LeaderEvent),
}

/// One batch to make durable, then to hand back to [`NodeHost::persisted`]. Dropping it drops
/// every reply that rested on it.
#[derive(Debug)]
#[must_use = "records must be persisted and handed back"]
pub struct NodeReady {
    acceptor: Ready,
    ranged: Option<RangedState>,
}

impl NodeReady {
    /// The acceptor records to make durable.
    pub fn records(&self) -> &[Record] {
        self.acceptor.records()
    }

    /// The Multi-Paxos state to make durable with them, when due: always when the global
    /// promise rose (a PROMISE-ALL waits for it), and otherwise once per
    /// [`CHOSEN_PREFIX_PERIOD`] with a batch that has records, so that a restarted node reads
    /// back little above its chosen prefix.
    pub fn ranged(&self) -> Option<&RangedState> {
        self.ranged.as_ref()
    }
}

/// The instances whose acceptor state `message` reads: a shell that pages states out loads
/// these before [`NodeHost::handle`].
pub fn instances_read(message: &Message) -> impl Iterator<Item = Instance> + '_ {
    let (one, batch): (Option<Instance>, &[(Instance, Value)]) = match message {
        Message::Prepare(m) => (Some(m.instance), &[]),
        Message::AcceptRequest(m) => (Some(m.instance), &[]),
        Message::AcceptBatch(m) => (None, &m.entries),
        _ => (None, &[]),
    };
    one.into_iter()
        .chain(batch.iter().map(|(instance, _)| *instance))
}

/// What [`NodeHost::authorise`] hands out for a message it let through; only it can make one.
#[derive(Debug)]
#[must_use = "hand the message to NodeHost::handle_authorised"]
pub struct Authorised {
    _private: (),
}

/// One node. See the [module documentation](self).
#[derive(Debug)]
pub struct NodeHost {
    id: NodeId,
    protocol: Protocol,
    authority: Authority,
    acceptor: Acceptor,
    learner: Learner,
    leader: Option<Leader>,
    /// Whether storage held state at construction: the role then rejoins as a follower.
    restored: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<NodeEvent>,
    /// A [`NodeReady`] is out and not yet handed back.
    persisting: bool,
    storage_failed: bool,
    /// When the chosen prefix was last handed out to be saved.
    prefix_saved: Time,
    /// Values the acceptor learned chosen from commit notices.
    noticed: u64,
}

impl NodeHost {
    /// A node whose storage holds nothing.
    pub fn new(config: NodeHostConfig) -> Result<Self, Error> {
        Self::restore(config, Vec::new(), &RangedState::default())
    }

    /// A node restarting from what it persisted: its records (later ones for an instance
    /// replace earlier ones) and its Multi-Paxos state.
    pub fn restore(
        config: NodeHostConfig,
        records: Vec<Record>,
        ranged: &RangedState,
    ) -> Result<Self, Error> {
        if !config.members.contains(&config.id) {
            return Err(Error::InvalidHost(format!(
                "node {} is not among the members {:?}",
                config.id, config.members
            )));
        }
        let restored = !records.is_empty() || *ranged != RangedState::default();
        let mut acceptor = Acceptor::restore(config.id, config.acceptor, records);
        acceptor.restore_ranged(ranged);
        let leader = match &config.protocol {
            ProtocolConfig::Vanilla => None,
            ProtocolConfig::MultiPaxos(leader) => {
                Some(Leader::new(config.id, leader.clone(), config.seed)?)
            }
        };
        Ok(Self {
            id: config.id,
            protocol: config.protocol.protocol(),
            authority: Authority {
                me: config.id,
                members: config.members,
                protocol: config.protocol.protocol(),
            },
            acceptor,
            learner: Learner::with_quorum(config.phase2_quorum, RECENT_INSTANCES),
            leader,
            restored,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            persisting: false,
            storage_failed: false,
            prefix_saved: Time::ZERO,
            noticed: 0,
        })
    }

    /// Begins: a node whose storage held state rejoins as a follower, a new one starts (and
    /// campaigns at once if it is the initial leader); either way above the global promise
    /// its acceptor persisted, so that no ballot is ever reused.
    pub fn start(&mut self, now: Time) {
        self.prefix_saved = now;
        let durable = self.acceptor.global_promise();
        if let Some(leader) = self.leader.as_mut() {
            if self.restored {
                leader.rejoin(now, durable);
            } else {
                leader.start(now, durable);
            }
        }
    }

    /// The node.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Its protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The acceptor, to read.
    pub fn acceptor(&self) -> &Acceptor {
        &self.acceptor
    }

    /// The leader role, under Multi-Paxos.
    pub fn leader(&self) -> Option<&Leader> {
        self.leader.as_ref()
    }

    /// Values this node learned chosen, by its learner or from commit notices.
    pub fn chosen(&self) -> u64 {
        self.learner.chosen_count() + self.noticed
    }

    /// Whether storage failed: the node then never replies again.
    pub fn storage_failed(&self) -> bool {
        self.storage_failed
    }

    /// A message for this node from `from` (itself included), as the shell authenticated it:
    /// a node by its certificate, a proposer by [`client_sender`](super::client_sender). A
    /// message its sender's role may not send (see [`authority`](super::authority)) is
    /// refused and changes nothing.
    pub fn handle(&mut self, now: Time, from: Address, message: &Message) -> Result<(), Error> {
        let authorised = self.authorise(from, message).map_err(Error::Refused)?;
        self.handle_authorised(now, authorised, message)
    }

    /// Whether `from` may send `message` to this node, as [`NodeHost::handle`] judges it: for
    /// a shell that does work (paging states in) before handing a message over, and then
    /// hands it to [`NodeHost::handle_authorised`] without judging it twice.
    pub fn authorise(&self, from: Address, message: &Message) -> Result<Authorised, Refusal> {
        self.authority.check(from, message)?;
        Ok(Authorised { _private: () })
    }

    /// A message [`NodeHost::authorise`] let through.
    pub fn handle_authorised(
        &mut self,
        now: Time,
        _authorised: Authorised,
        message: &Message,
    ) -> Result<(), Error> {
        match message {
            Message::Prepare(_) | Message::AcceptRequest(_) => {
                if !self.storage_failed {
                    self.acceptor.handle(message)?;
                }
                Ok(())
            }
            Message::Accepted(accepted) => {
                if let Some(chosen) = self.learner.handle_accepted(accepted) {
                    self.events.push_back(NodeEvent::Learned {
                        instance: chosen.instance,
                        value: chosen.value,
                    });
                }
                Ok(())
            }
            _ => self.handle_multi_paxos(now, message),
        }
    }

    /// A Multi-Paxos message: first to the acceptor (unless its storage failed), then to the
    /// leader role. A vanilla node has no such role and refuses it before its acceptor sees it.
    fn handle_multi_paxos(&mut self, now: Time, message: &Message) -> Result<(), Error> {
        let Some(leader) = self.leader.as_mut() else {
            return Err(Error::UnexpectedMessage {
                role: "vanilla node",
                kind: message.kind(),
            });
        };
        if !self.storage_failed {
            let learned = match message {
                Message::PrepareAll(m) => {
                    self.acceptor.handle_prepare_all(m);
                    Vec::new()
                }
                Message::AcceptBatch(m) => self.acceptor.handle_accept_batch(m),
                Message::Heartbeat(m) => self.acceptor.handle_heartbeat(m),
                _ => Vec::new(),
            };
            self.noticed += learned.len() as u64;
            self.events.extend(
                learned
                    .into_iter()
                    .map(|(instance, value)| NodeEvent::Learned { instance, value }),
            );
        }
        if self.storage_failed {
            // A node that cannot persist neither leads nor campaigns: its heartbeats would
            // keep the others from electing a leader that can.
            return Ok(());
        }
        leader.handle(now, message)
    }

    /// The role's timer is due.
    pub fn handle_timeout(&mut self, now: Time) {
        if self.storage_failed {
            return;
        }
        if let Some(leader) = self.leader.as_mut() {
            leader.handle_timeout(now);
        }
    }

    /// When [`NodeHost::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Option<Time> {
        if self.storage_failed {
            return None;
        }
        self.leader.as_ref().and_then(Leader::poll_timeout)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        self.leader
            .as_mut()
            .and_then(Leader::poll_event)
            .map(NodeEvent::Leader)
    }

    /// The next message to send: the leader role's first, then the acceptor's replies.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(transmit) = self.leader.as_mut().and_then(Leader::poll_transmit) {
            if self.storage_failed {
                // The role leads nothing any more: what it queued never leaves.
                while self
                    .leader
                    .as_mut()
                    .and_then(Leader::poll_transmit)
                    .is_some()
                {}
            } else {
                return Some(transmit);
            }
        }
        self.transmits.pop_front()
    }

    /// What to make durable now, if anything: `None` while a batch is out, after a storage
    /// failure, or when the replies rest on nothing new (they go to the transmits at once, as
    /// do NACKs, which promise nothing).
    pub fn ready(&mut self, now: Time) -> Option<NodeReady> {
        if self.persisting || self.storage_failed || !self.acceptor.has_ready() {
            return None;
        }
        let mut ready = self.acceptor.ready();
        self.transmits.extend(ready.take_unpersisted_messages());
        let ranged = self.ranged_due(now, &ready);
        if ready.records().is_empty() && ranged.is_none() {
            self.transmits.extend(ready.persisted());
            return None;
        }
        self.persisting = true;
        Some(NodeReady {
            acceptor: ready,
            ranged,
        })
    }

    /// The rule of [`NodeReady::ranged`]. Vanilla Paxos has no such state.
    fn ranged_due(&mut self, now: Time, ready: &Ready) -> Option<RangedState> {
        self.leader.as_ref()?;
        let due = !ready.records().is_empty()
            && now.saturating_since(self.prefix_saved) >= CHOSEN_PREFIX_PERIOD;
        if ready.global_promise().is_none() && !due {
            return None;
        }
        self.prefix_saved = now;
        Some(self.acceptor.ranged_state())
    }

    /// `ready` is durable: its replies may go.
    pub fn persisted(&mut self, ready: NodeReady) {
        self.persisting = false;
        self.transmits.extend(ready.acceptor.persisted());
    }

    /// Storage failed: the in-memory state may be ahead of the disk, so from now on nothing the
    /// acceptor says may leave this node, and the leader role stops (no heartbeat, campaign or
    /// batch). The shell drops the batch it was writing.
    pub fn fail_storage(&mut self) {
        self.storage_failed = true;
    }

    /// Whether the acceptor holds `instance` in memory.
    pub fn holds(&self, instance: Instance) -> bool {
        self.acceptor.holds(instance)
    }

    /// How many instances the acceptor holds in memory.
    pub fn held(&self) -> usize {
        self.acceptor.len()
    }

    /// Holds a persisted state again, read back by the shell.
    pub fn load(&mut self, record: Record) {
        self.acceptor.load(record);
    }

    /// Drops `instance` from memory if the protocol allows; returns whether it is gone. The
    /// shell must be able to read its state back. Under Multi-Paxos only instances below
    /// their key's chosen prefix may leave: a PROMISE-ALL reports the others from memory.
    pub fn forget(&mut self, instance: Instance) -> bool {
        if self.leader.is_some() && !self.acceptor.is_settled(instance) {
            return false;
        }
        self.acceptor.forget(instance)
    }
}
