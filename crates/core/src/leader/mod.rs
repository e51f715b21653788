//! The Multi-Paxos leader role, hosted by every node beside its acceptor and learner. One node
//! at a time leads: it ran phase 1 once, for every instance, under its ballot (a ranged
//! PREPARE-ALL), re-proposed what a phase-1 quorum had accepted, and from then on gives each
//! client request its key's next slot and costs only phase 2, in batches.
//!
//! # Driving a leader role
//! - [`Leader::start`] once; then [`Leader::handle`] for every CLIENT-REQUEST, PROMISE-ALL,
//!   ACCEPTED-BATCH, REFUSED, HEARTBEAT, PREPARE-ALL and ACCEPT-BATCH the node receives (the
//!   last two go to its acceptor as well: here they only tell who campaigns or leads), and
//!   [`Leader::handle_timeout`] once `now` reaches [`Leader::poll_timeout`].
//! - Drain [`Leader::poll_transmit`] (messages for nodes, this one included, and for clients)
//!   and [`Leader::poll_event`] (what the checker and metrics want) after each input.
//!
//! Messages to this node's own acceptor go out like any other; the driver delivers them
//! locally, so the leader's own acceptor counts toward its quorums only once it has persisted.

mod election;
mod phase2;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use election::Campaign;
use phase2::{KnownChosen, Pending, RequestQueue};
pub use phase2::{MAX_BATCH_BYTES, MAX_KEYS};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backoff::BackoffPolicy;
use crate::error::Error;
use crate::message::{AcceptBatch, Heartbeat, Message};
use crate::rng::DetRng;
use crate::time::Time;
use crate::transmit::{Address, To, Transmit};
use crate::types::{Instance, NodeId, ProposalId, ProposerId, Quorums, Value};

/// What a follower does with a client's request.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardMode {
    /// Answer with the leader's name; the client asks again there (one more round trip for
    /// the client, none for the leader).
    #[default]
    Redirect,
    /// Pass it to the leader, which answers the client directly.
    Forward,
}

/// Leader-role settings, the same on every node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeaderConfig {
    /// Every node of the cluster, this one included.
    pub nodes: Vec<NodeId>,
    /// Phase-1 and phase-2 quorum sizes.
    pub quorums: Quorums,
    /// How often the leader tells the others it is alive.
    pub heartbeat: Duration,
    /// A follower that hears nothing from a leader for a time drawn uniformly from
    /// `[election_timeout, 2 × election_timeout)` campaigns.
    pub election_timeout: Duration,
    /// How long a campaign waits for a phase-1 quorum.
    pub phase1_timeout: Duration,
    /// How long an entry waits for a phase-2 quorum before it is sent again.
    pub phase2_timeout: Duration,
    /// The delay before campaigning again after a lost or timed-out campaign.
    pub backoff: BackoffPolicy,
    /// The most requests in one ACCEPT-BATCH.
    pub batch: usize,
    /// Batches in flight before requests wait; waiting requests then form larger batches.
    pub pipeline: usize,
    /// Followers redirect or forward requests.
    pub forward: ForwardMode,
    /// The node that campaigns at once at the start; `None`: whoever times out first.
    pub initial_leader: Option<NodeId>,
    /// Send phase 2 only to a phase-2 quorum (this node and the others that answered fastest
    /// last), and to everyone only for a retransmission.
    pub thrifty: bool,
    /// The most keys it gives slots to ([`MAX_KEYS`] unless a test wants fewer).
    pub max_keys: usize,
}

impl LeaderConfig {
    /// Defaults for `nodes` on a LAN: majorities, 10 ms heartbeats, a 100 ms election timeout,
    /// 50 ms phase timeouts, 1–100 ms full-jitter backoff, batches of up to 64, 4 in flight,
    /// redirects, no initial leader, not thrifty.
    pub fn new(nodes: Vec<NodeId>) -> Self {
        Self {
            quorums: Quorums::majority(nodes.len()),
            nodes,
            heartbeat: Duration::from_millis(10),
            election_timeout: Duration::from_millis(100),
            phase1_timeout: Duration::from_millis(50),
            phase2_timeout: Duration::from_millis(50),
            backoff: BackoffPolicy::LAN,
            batch: 64,
            pipeline: 4,
            forward: ForwardMode::Redirect,
            initial_leader: None,
            thrifty: false,
            max_keys: MAX_KEYS,
        }
    }
}

/// What happened, for the checker and the metrics.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LeaderEvent {
    /// A phase-1 quorum promised `ballot`: this node leads.
    Elected {
        /// The ballot.
        ballot: ProposalId,
        /// Accepted proposals it carries on under its ballot.
        reproposed: usize,
    },
    /// This node stopped leading or campaigning: a higher ballot exists.
    SteppedDown {
        /// Its ballot.
        ballot: ProposalId,
        /// The higher one.
        by: ProposalId,
    },
    /// A client's value was given an instance.
    Proposed {
        /// The instance.
        instance: Instance,
        /// The client's value.
        value: Value,
    },
    /// A phase-2 quorum accepted `value` for `instance`.
    Chosen {
        /// The instance.
        instance: Instance,
        /// The ballot it was accepted under.
        ballot: ProposalId,
        /// The value.
        value: Value,
    },
}

/// Counts of what a leader role did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaderStats {
    /// Campaigns (PREPARE-ALLs with a new ballot).
    pub phase1_runs: u64,
    /// Campaigns won.
    pub elected: u64,
    /// Times it stopped leading or campaigning because of a higher ballot.
    pub stepped_down: u64,
    /// Campaigns refused by so many acceptors that no quorum could promise: duels.
    pub preempted: u64,
    /// Campaigns that timed out.
    pub timed_out: u64,
    /// Accepted proposals carried on by a new leader.
    pub reproposed: u64,
    /// Empty values a new leader proposed for slots nobody reported, below a key's highest,
    /// so that every node's known-chosen prefix can grow past them.
    pub noops: u64,
    /// Requests answered with a redirect.
    pub redirects: u64,
    /// Requests forwarded to the leader.
    pub forwards: u64,
    /// Requests this node led to a decision.
    pub decided: u64,
    /// ACCEPT-BATCHes sent with new entries.
    pub batches: u64,
    /// Entries in those batches.
    pub batched: u64,
    /// Entries sent again after the phase-2 timeout.
    pub retransmitted: u64,
    /// Heartbeats sent.
    pub heartbeats: u64,
    /// PROMISE-ALLs not counted: from a node that is not a member, or reporting a key's
    /// highest slot too far above its chosen prefix to fill.
    pub refused_promises: u64,
    /// Requests dropped unanswered: for a new key past [`MAX_KEYS`], or while
    /// [`MAX_WAITING`](phase2::MAX_WAITING) requests already wait.
    pub refused_requests: u64,
}

impl LeaderStats {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &LeaderStats) {
        self.phase1_runs += other.phase1_runs;
        self.elected += other.elected;
        self.stepped_down += other.stepped_down;
        self.preempted += other.preempted;
        self.timed_out += other.timed_out;
        self.reproposed += other.reproposed;
        self.noops += other.noops;
        self.redirects += other.redirects;
        self.forwards += other.forwards;
        self.decided += other.decided;
        self.batches += other.batches;
        self.batched += other.batched;
        self.retransmitted += other.retransmitted;
        self.heartbeats += other.heartbeats;
        self.refused_promises += other.refused_promises;
        self.refused_requests += other.refused_requests;
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Role {
    /// Someone else leads, or nobody is known to; campaign at `deadline` unless it hears from
    /// a leader first.
    Follower { deadline: Time },
    /// Waiting for a phase-1 quorum.
    Candidate(Campaign),
    /// Lost a campaign; campaign again at `until`.
    BackingOff { until: Time },
    /// Leads under `ballot`.
    Leading { ballot: ProposalId },
}

/// One node's leader role. See the [module documentation](self). Its maps are ordered, and
/// equality and hashing leave out the counters and the RNG's position (which only spaces
/// timers), so that a model checker, which fires timers at any moment, treats two roles in the
/// same protocol state as one.
#[derive(Clone, Debug)]
pub struct Leader {
    id: NodeId,
    config: LeaderConfig,
    rng: DetRng,
    role: Role,
    /// The highest ballot heard of, from anyone.
    highest: ProposalId,
    /// Who leads, as far as this node knows.
    known_leader: Option<NodeId>,
    /// What it knows chosen, per key: a campaign needs reports only above it.
    known_chosen: BTreeMap<u64, KnownChosen>,
    /// Lost campaigns in a row, and the last backoff, for the backoff policy.
    failures: u32,
    last_backoff: Duration,
    // While leading:
    next_slot: BTreeMap<u64, u64>,
    in_flight: BTreeMap<Instance, Pending>,
    /// Each client's request in flight, so a retry is not given a second slot.
    by_client: BTreeMap<ProposerId, Instance>,
    /// Each client's last answer, sent again if the client asks again (its reply was lost).
    answered: BTreeMap<ProposerId, (Value, Instance)>,
    queue: RequestQueue,
    commits: Vec<Instance>,
    /// Keys whose known-chosen prefix grew since the last heartbeat, which tells the others.
    prefix_news: BTreeSet<u64>,
    open_batches: BTreeMap<u64, usize>,
    next_batch: u64,
    next_heartbeat: Time,
    next_retransmit: Time,
    /// The latest phase-2 round trip per node, and the nodes the last batch went to, for
    /// thrifty quorums.
    round_trips: BTreeMap<NodeId, Duration>,
    last_targets: Vec<NodeId>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<LeaderEvent>,
    stats: LeaderStats,
}

impl PartialEq for Leader {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.config == other.config
            && self.role == other.role
            && self.highest == other.highest
            && self.known_leader == other.known_leader
            && self.known_chosen == other.known_chosen
            && self.failures == other.failures
            && self.last_backoff == other.last_backoff
            && self.next_slot == other.next_slot
            && self.in_flight == other.in_flight
            && self.by_client == other.by_client
            && self.answered == other.answered
            && self.queue == other.queue
            && self.commits == other.commits
            && self.prefix_news == other.prefix_news
            && self.open_batches == other.open_batches
            && self.next_batch == other.next_batch
            && self.next_heartbeat == other.next_heartbeat
            && self.next_retransmit == other.next_retransmit
            && self.round_trips == other.round_trips
            && self.last_targets == other.last_targets
            && self.transmits == other.transmits
            && self.events == other.events
    }
}
impl Eq for Leader {}

impl std::hash::Hash for Leader {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
        self.role.hash(state);
        self.highest.hash(state);
        self.known_leader.hash(state);
        self.known_chosen.hash(state);
        self.failures.hash(state);
        self.next_slot.hash(state);
        self.in_flight.hash(state);
        self.by_client.hash(state);
        self.answered.hash(state);
        self.queue.hash(state);
        self.commits.hash(state);
        self.prefix_news.hash(state);
        self.open_batches.hash(state);
        self.next_batch.hash(state);
        self.transmits.hash(state);
        self.events.hash(state);
    }
}

impl Leader {
    /// The leader role of node `id`, with its own seeded RNG.
    pub fn new(id: NodeId, config: LeaderConfig, seed: u64) -> Result<Self, Error> {
        if !config.nodes.contains(&id) {
            return Err(Error::InvalidLeader(format!(
                "node {id} is not among the nodes {:?}",
                config.nodes
            )));
        }
        if !config.quorums.fits(config.nodes.len()) {
            return Err(Error::QuorumOutOfRange {
                quorums: config.quorums,
                acceptors: config.nodes.len(),
            });
        }
        if config.batch == 0 || config.pipeline == 0 {
            return Err(Error::InvalidLeader(
                "batch and pipeline must be at least 1".into(),
            ));
        }
        if config.heartbeat.is_zero() || config.election_timeout <= config.heartbeat {
            return Err(Error::InvalidLeader(format!(
                "the election timeout ({:?}) must exceed the heartbeat ({:?})",
                config.election_timeout, config.heartbeat
            )));
        }
        Ok(Self {
            id,
            config,
            rng: DetRng::new(seed),
            role: Role::Follower {
                deadline: Time::MAX,
            },
            highest: ProposalId::ZERO,
            known_leader: None,
            known_chosen: BTreeMap::new(),
            failures: 0,
            last_backoff: Duration::ZERO,
            next_slot: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            by_client: BTreeMap::new(),
            answered: BTreeMap::new(),
            queue: RequestQueue::default(),
            commits: Vec::new(),
            prefix_news: BTreeSet::new(),
            open_batches: BTreeMap::new(),
            next_batch: 0,
            next_heartbeat: Time::MAX,
            next_retransmit: Time::MAX,
            round_trips: BTreeMap::new(),
            last_targets: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: LeaderStats::default(),
        })
    }

    /// This node.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Whether this node leads now.
    pub fn is_leading(&self) -> bool {
        matches!(self.role, Role::Leading { .. })
    }

    /// The ballot it leads under, if it leads.
    pub fn ballot(&self) -> Option<ProposalId> {
        match self.role {
            Role::Leading { ballot } => Some(ballot),
            _ => None,
        }
    }

    /// Who leads, as far as this node knows (itself, when it does).
    pub fn known_leader(&self) -> Option<NodeId> {
        self.known_leader
    }

    /// Counts so far.
    pub fn stats(&self) -> LeaderStats {
        self.stats
    }

    /// Requests waiting for a decision or for a batch, for gauges.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len() + self.queue.len()
    }

    /// Begins: the initial leader campaigns at once, every other node waits an election
    /// timeout for its heartbeats. `durable` is this node's acceptor's persisted global
    /// promise: every ballot this node ever led under is at most that, so campaigning above
    /// it never reuses one (see [`Leader::rejoin`]).
    pub fn start(&mut self, now: Time, durable: ProposalId) {
        self.highest = self.highest.max(durable);
        self.known_leader = self.config.initial_leader;
        if self.config.initial_leader == Some(self.id) {
            self.campaign(now);
        } else {
            self.follow(now);
        }
    }

    /// Begins again after a crash: as a follower, whatever the placement, so that a node that
    /// comes back does not unseat the leader that took over from it.
    ///
    /// A ballot is never reused: a campaign wins only with this node's own acceptor among its
    /// promises, and that promise is durable before it is sent, so `durable` (the acceptor's
    /// persisted global promise) is at least every ballot this node led under.
    pub fn rejoin(&mut self, now: Time, durable: ProposalId) {
        self.highest = self.highest.max(durable);
        self.known_leader = None;
        self.follow(now);
    }

    /// Any message for the leader role.
    pub fn handle(&mut self, now: Time, message: &Message) -> Result<(), Error> {
        match message {
            Message::ClientRequest(m) => self.handle_request(now, m),
            Message::PromiseAll(m) => self.handle_promise_all(now, m),
            Message::AcceptedBatch(m) => self.handle_accepted_batch(now, m),
            Message::Refused(m) => self.handle_refused(now, m),
            Message::Heartbeat(Heartbeat {
                ballot,
                from,
                commits,
                chosen_through,
            }) => {
                for instance in commits {
                    self.note_chosen(*instance);
                }
                for (key, through) in chosen_through {
                    self.known_chosen
                        .entry(*key)
                        .or_default()
                        .advance_to(*through);
                }
                self.hear_leader(now, *ballot, *from)
            }
            Message::AcceptBatch(AcceptBatch {
                ballot,
                from,
                commits,
                ..
            }) => {
                for instance in commits {
                    self.note_chosen(*instance);
                }
                self.hear_leader(now, *ballot, *from)
            }
            Message::PrepareAll(m) => self.hear_campaign(now, m),
            other => {
                return Err(Error::UnexpectedMessage {
                    role: "leader",
                    kind: other.kind(),
                });
            }
        }
        Ok(())
    }

    /// Fires what is due at `now`: a campaign, a lost campaign's retry, heartbeats and
    /// retransmissions.
    pub fn handle_timeout(&mut self, now: Time) {
        match &self.role {
            Role::Follower { deadline } | Role::BackingOff { until: deadline } => {
                if now >= *deadline {
                    self.campaign(now);
                }
            }
            Role::Candidate(c) => {
                if now >= c.deadline {
                    self.stats.timed_out += 1;
                    self.back_off(now);
                }
            }
            Role::Leading { ballot } => {
                let ballot = *ballot;
                if now >= self.next_heartbeat {
                    self.next_heartbeat = now + self.config.heartbeat;
                    self.stats.heartbeats += 1;
                    let commits = std::mem::take(&mut self.commits);
                    let chosen_through: Vec<(u64, u64)> = std::mem::take(&mut self.prefix_news)
                        .into_iter()
                        .filter_map(|key| Some((key, self.known_chosen.get(&key)?.through)))
                        .collect();
                    // Commit notices go to this node's acceptor too: a slot it never hears is
                    // chosen holds its key's chosen prefix back, and with it what the node may
                    // forget.
                    let to = if commits.is_empty() && chosen_through.is_empty() {
                        To::Nodes(self.others())
                    } else {
                        To::AllNodes
                    };
                    self.send(
                        to,
                        Message::Heartbeat(Heartbeat {
                            ballot,
                            from: self.id,
                            commits,
                            chosen_through,
                        }),
                    );
                }
                if now >= self.next_retransmit {
                    self.retransmit(now, ballot);
                }
            }
        }
    }

    /// When [`Leader::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Option<Time> {
        let at = match &self.role {
            Role::Follower { deadline } => *deadline,
            Role::BackingOff { until } => *until,
            Role::Candidate(c) => c.deadline,
            Role::Leading { .. } => self.next_heartbeat.min(self.next_retransmit),
        };
        (at != Time::MAX).then_some(at)
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<LeaderEvent> {
        self.events.pop_front()
    }

    fn send(&mut self, to: To, message: Message) {
        self.transmits.push_back(Transmit {
            from: Address::Node(self.id),
            to,
            message,
        });
    }

    fn others(&self) -> Vec<NodeId> {
        self.config
            .nodes
            .iter()
            .copied()
            .filter(|n| *n != self.id)
            .collect()
    }

    fn note_chosen(&mut self, instance: Instance) {
        let known = self.known_chosen.entry(instance.key).or_default();
        let before = known.through;
        known.note(instance.slot);
        // Only a leader tells: its heartbeats carry what grew in one period, a few keys.
        if known.through > before && matches!(self.role, Role::Leading { .. }) {
            self.prefix_news.insert(instance.key);
        }
    }
}
