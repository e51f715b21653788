//! The Multi-Paxos client: what a proposer becomes when a stable leader decides. It sends one
//! request at a time to the node it believes leads, follows redirects, and after a timeout asks
//! the next node. It reports through the same [`ProposerEvent`]s as a proposer, so a host, its
//! workload and its metrics serve both protocols: an attempt is one request sent (with
//! [`ProposalId::ZERO`], since a client proposes no ID), and every decision is the client's own
//! value under the operation's own instance (the leader gives each request its own slot, so no
//! client ever loses a race; the leader reports the slot to the checker).
//!
//! Driving it is as for a [`Proposer`](crate::proposer::Proposer): `propose`, `handle`,
//! `handle_timeout`, then drain `poll_transmit` (each message names its node), `poll_event`
//! and `poll_timeout`.

use std::collections::VecDeque;
use std::time::Duration;

use crate::backoff::BackoffPolicy;
use crate::error::Error;
use crate::message::{ClientReply, ClientRequest, Message, Redirect};
use crate::proposer::{GiveUpReason, Phase, ProposerConfig, ProposerEvent};
use crate::rng::DetRng;
use crate::time::Time;
use crate::transmit::{Address, To, Transmit};
use crate::types::{Instance, NodeId, ProposalId, ProposerId, Value};

/// Client settings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientConfig {
    /// The cluster's nodes, in the order a client tries them when it knows no leader.
    pub nodes: Vec<NodeId>,
    /// The node asked first.
    pub first: NodeId,
    /// How long to wait for an answer before asking the next node.
    pub timeout: Duration,
    /// The delay before asking again after a redirect that names no leader.
    pub backoff: BackoffPolicy,
    /// Requests per operation, the first included.
    pub max_attempts: u32,
    /// Time from `propose` after which the operation gives up; `None` for no limit.
    pub deadline: Option<Duration>,
}

impl ClientConfig {
    /// A client with a proposer's retry settings: its phase-1 plus phase-2 timeout (a request
    /// may wait for an election), backoff, attempts and deadline.
    pub fn from_proposer(proposer: &ProposerConfig, nodes: Vec<NodeId>, first: NodeId) -> Self {
        Self {
            nodes,
            first,
            timeout: proposer.phase1_timeout + proposer.phase2_timeout,
            backoff: proposer.backoff,
            max_attempts: proposer.max_attempts,
            deadline: proposer.deadline,
        }
    }

    /// One client per proposer config, spread over `nodes`: each asks the initial leader
    /// first if one is pinned, else the node its index falls on.
    pub fn spread(
        proposers: &[ProposerConfig],
        nodes: &[NodeId],
        initial: Option<NodeId>,
    ) -> Vec<Self> {
        (0..)
            .zip(proposers)
            .map(|(index, p): (usize, _)| {
                let first = initial
                    .or_else(|| nodes.get(index % nodes.len().max(1)).copied())
                    .unwrap_or_default();
                Self::from_proposer(p, nodes.to_vec(), first)
            })
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Operation {
    /// The workload's instance: its key is what is written; the leader picks the slot.
    instance: Instance,
    value: Value,
    attempts: u32,
    timer: Time,
    deadline: Time,
    backing_off: bool,
    last_backoff: Duration,
    /// Redirects since the last backoff: nodes with stale views of the leader can send a
    /// client round a ring, so after one redirect per node it waits before following more.
    redirects: usize,
}

/// One Multi-Paxos client. See the [module documentation](self).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Client {
    id: ProposerId,
    config: ClientConfig,
    rng: DetRng,
    /// The node it sends to: the leader, as far as it knows.
    leader: NodeId,
    operation: Option<Operation>,
    transmits: VecDeque<(NodeId, Message)>,
    events: VecDeque<ProposerEvent>,
}

impl Client {
    /// A client with its own seeded RNG for backoff jitter.
    pub fn new(id: ProposerId, config: ClientConfig, seed: u64) -> Result<Self, Error> {
        if config.nodes.is_empty() {
            return Err(Error::NoAcceptors);
        }
        if config.max_attempts == 0 {
            return Err(Error::ZeroAttempts);
        }
        Ok(Self {
            id,
            leader: config.first,
            config,
            rng: DetRng::new(seed),
            operation: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// This client's identity.
    pub fn id(&self) -> ProposerId {
        self.id
    }

    /// The node it believes leads.
    pub fn leader(&self) -> NodeId {
        self.leader
    }

    /// Starts writing `value` to `instance`'s key; the leader picks the slot.
    pub fn propose(&mut self, now: Time, instance: Instance, value: Value) -> Result<(), Error> {
        if let Some(op) = &self.operation {
            return Err(Error::ProposerBusy {
                proposer: self.id,
                instance: op.instance,
            });
        }
        self.operation = Some(Operation {
            instance,
            value,
            attempts: 0,
            timer: Time::MAX,
            deadline: self.config.deadline.map_or(Time::MAX, |d| now + d),
            backing_off: false,
            last_backoff: Duration::ZERO,
            redirects: 0,
        });
        self.send(now);
        Ok(())
    }

    /// Drops the operation in progress without an event.
    pub fn cancel(&mut self) {
        self.operation = None;
    }

    /// A REDIRECT or CLIENT-REPLY; answers to an earlier operation are ignored.
    pub fn handle(&mut self, now: Time, message: &Message) -> Result<(), Error> {
        match message {
            Message::ClientReply(reply) => self.handle_reply(reply),
            Message::Redirect(redirect) => self.handle_redirect(now, redirect),
            other => {
                return Err(Error::UnexpectedMessage {
                    role: "client",
                    kind: other.kind(),
                });
            }
        }
        Ok(())
    }

    /// The timer fired: a request unanswered is sent to the next node; a backoff is over.
    pub fn handle_timeout(&mut self, now: Time) {
        let Some(op) = self.operation.as_mut() else {
            return;
        };
        if now < op.timer {
            return;
        }
        if op.backing_off {
            op.backing_off = false;
            self.retry(now);
            return;
        }
        self.events.push_back(ProposerEvent::TimedOut {
            instance: op.instance,
            id: ProposalId::ZERO,
            phase: Phase::Accept,
        });
        self.leader = self.next_node(self.leader);
        self.retry(now);
    }

    /// The next message, always to one node.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let (node, message) = self.transmits.pop_front()?;
        Some(Transmit {
            from: Address::Proposer(self.id),
            to: To::Node(node),
            message,
        })
    }

    /// The next thing that happened.
    pub fn poll_event(&mut self) -> Option<ProposerEvent> {
        self.events.pop_front()
    }

    /// When [`Client::handle_timeout`] is due; `None` when idle.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.operation.as_ref().map(|op| op.timer)
    }

    /// Whether `reply` answers the operation in progress (answers to earlier ones are
    /// ignored).
    pub fn is_answered_by(&self, reply: &ClientReply) -> bool {
        self.operation
            .as_ref()
            .is_some_and(|op| op.value == reply.value)
    }

    fn handle_reply(&mut self, reply: &ClientReply) {
        if !self.is_answered_by(reply) {
            return;
        }
        let Some(op) = &self.operation else {
            return;
        };
        self.leader = reply.from;
        // The operation's own instance, not the slot the leader gave it: the workload and the
        // metrics know the operation by it. The checker hears the slot from the leader.
        self.events.push_back(ProposerEvent::Chosen {
            instance: op.instance,
            id: ProposalId::ZERO,
            value: reply.value.clone(),
            own: true,
            attempts: op.attempts,
        });
        self.operation = None;
    }

    fn handle_redirect(&mut self, now: Time, redirect: &Redirect) {
        let Some(op) = self.operation.as_mut() else {
            return;
        };
        if redirect.value != op.value || op.backing_off {
            return;
        }
        op.redirects += 1;
        match redirect.leader {
            Some(leader) if op.redirects <= self.config.nodes.len() => {
                self.leader = leader;
                self.retry(now);
            }
            // No leader known yet (an election is on), or the nodes disagree on who leads: wait,
            // then ask the next node, or the one named.
            _ => {
                op.redirects = 0;
                let delay = self
                    .config
                    .backoff
                    .delay(op.attempts, op.last_backoff, &mut self.rng);
                op.last_backoff = delay;
                self.leader = redirect
                    .leader
                    .unwrap_or_else(|| next_of(&self.config.nodes, redirect.from));
                if delay.is_zero() {
                    self.retry(now);
                    return;
                }
                op.backing_off = true;
                op.timer = (now + delay).min(op.deadline);
                self.events.push_back(ProposerEvent::BackingOff {
                    instance: op.instance,
                    delay,
                });
            }
        }
    }

    fn retry(&mut self, now: Time) {
        let Some(op) = &self.operation else {
            return;
        };
        let reason = if now >= op.deadline {
            GiveUpReason::Deadline
        } else if op.attempts >= self.config.max_attempts {
            GiveUpReason::RetryBudget
        } else {
            self.send(now);
            return;
        };
        if let Some(op) = self.operation.take() {
            self.events.push_back(ProposerEvent::GaveUp {
                instance: op.instance,
                reason,
                attempts: op.attempts,
            });
        }
    }

    fn send(&mut self, now: Time) {
        let Some(op) = self.operation.as_mut() else {
            return;
        };
        op.attempts += 1;
        op.timer = (now + self.config.timeout).min(op.deadline);
        self.events.push_back(ProposerEvent::AttemptStarted {
            instance: op.instance,
            id: ProposalId::ZERO,
            attempt: op.attempts,
        });
        self.transmits.push_back((
            self.leader,
            Message::ClientRequest(ClientRequest {
                key: op.instance.key,
                value: op.value.clone(),
                client: self.id,
                via: None,
            }),
        ));
    }

    fn next_node(&self, after: NodeId) -> NodeId {
        next_of(&self.config.nodes, after)
    }
}

/// The node after `after` in `nodes`, round the ring.
fn next_of(nodes: &[NodeId], after: NodeId) -> NodeId {
    let at = nodes.iter().position(|n| *n == after).map_or(0, |i| i + 1);
    nodes[at % nodes.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn client() -> Client {
        let config = ClientConfig {
            nodes: vec![NodeId(1), NodeId(2), NodeId(3)],
            first: NodeId(1),
            timeout: 10 * MS,
            backoff: BackoffPolicy::Constant { delay: 2 * MS },
            max_attempts: 4,
            deadline: None,
        };
        Client::new(ProposerId(7), config, 1).unwrap()
    }

    fn value() -> Value {
        Value::from_static(b"v")
    }

    fn sent_to(c: &mut Client) -> Vec<NodeId> {
        std::iter::from_fn(|| c.poll_transmit())
            .filter_map(|t| match t.to {
                To::Node(n) => Some(n),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn follows_a_redirect_at_once_and_reports_the_leaders_slot() {
        let mut c = client();
        c.propose(Time::ZERO, Instance::new(4, 0), value()).unwrap();
        assert_eq!(sent_to(&mut c), [NodeId(1)]);
        let redirect = Redirect {
            key: 4,
            value: value(),
            leader: Some(NodeId(3)),
            from: NodeId(1),
        };
        c.handle(Time::ZERO, &Message::Redirect(redirect)).unwrap();
        assert_eq!(sent_to(&mut c), [NodeId(3)]);
        let reply = ClientReply {
            instance: Instance::new(4, 9),
            value: value(),
            from: NodeId(3),
        };
        c.handle(Time::ZERO, &Message::ClientReply(reply)).unwrap();
        let events: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
        assert!(matches!(
            events.last(),
            Some(ProposerEvent::Chosen { instance, own: true, attempts: 2, .. }) if *instance == Instance::new(4, 0)
        ));
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn a_silent_node_is_replaced_by_the_next_and_the_budget_ends_it() {
        let mut c = client();
        c.propose(Time::ZERO, Instance::new(4, 0), value()).unwrap();
        let mut order = sent_to(&mut c);
        for _ in 0..4 {
            let at = c.poll_timeout().unwrap();
            c.handle_timeout(at);
            order.extend(sent_to(&mut c));
        }
        assert_eq!(order, [NodeId(1), NodeId(2), NodeId(3), NodeId(1)]);
        let events: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
        assert!(matches!(
            events.last(),
            Some(ProposerEvent::GaveUp {
                reason: GiveUpReason::RetryBudget,
                attempts: 4,
                ..
            })
        ));
    }

    #[test]
    fn nodes_that_name_each_other_cannot_spin_a_client_without_pause() {
        let mut c = client();
        c.propose(Time::ZERO, Instance::new(4, 0), value()).unwrap();
        let _ = sent_to(&mut c);
        for hop in 0..4u32 {
            let redirect = Redirect {
                key: 4,
                value: value(),
                leader: Some(NodeId(1 + (hop + 1) % 2)),
                from: NodeId(1 + hop % 2),
            };
            c.handle(Time::ZERO, &Message::Redirect(redirect)).unwrap();
        }
        let sent = sent_to(&mut c);
        assert_eq!(
            sent.len(),
            3,
            "one redirect per node is followed at once: {sent:?}"
        );
        assert_eq!(c.poll_timeout(), Some(Time::ZERO + 2 * MS), "then it waits");
    }

    #[test]
    fn no_known_leader_means_waiting_then_asking_the_next_node() {
        let mut c = client();
        c.propose(Time::ZERO, Instance::new(4, 0), value()).unwrap();
        let _ = sent_to(&mut c);
        let redirect = Redirect {
            key: 4,
            value: value(),
            leader: None,
            from: NodeId(1),
        };
        c.handle(Time::ZERO, &Message::Redirect(redirect)).unwrap();
        assert!(sent_to(&mut c).is_empty());
        assert_eq!(c.poll_timeout(), Some(Time::ZERO + 2 * MS));
        c.handle_timeout(Time::ZERO + 2 * MS);
        assert_eq!(sent_to(&mut c), [NodeId(2)]);
        // A reply for another value (an earlier operation) is ignored.
        let stale = ClientReply {
            instance: Instance::new(4, 1),
            value: Value::from_static(b"old"),
            from: NodeId(2),
        };
        c.handle(Time::ZERO, &Message::ClientReply(stale)).unwrap();
        assert!(c.poll_timeout().is_some());
    }
}
