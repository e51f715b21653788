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

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backoff::BackoffPolicy;
use crate::error::Error;
use crate::message::{
    AcceptBatch, AcceptedBatch, ClientReply, ClientRequest, Heartbeat, Message, PrepareAll,
    PromiseAll, Redirect, Refused,
};
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

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Campaign {
    ballot: ProposalId,
    deadline: Time,
    ayes: Vec<NodeId>,
    nays: Vec<NodeId>,
    /// The highest-ballot accepted proposal reported for each instance.
    accepted: BTreeMap<Instance, (ProposalId, Value)>,
    high_slots: BTreeMap<u64, u64>,
    /// Per key, the highest chosen prefix any promiser knows.
    chosen_through: BTreeMap<u64, u64>,
}

/// The most slots above a key's contiguous known-chosen prefix that a node remembers: past
/// it, it forgets them, which only makes its next campaign's reports longer.
const MAX_KNOWN_ABOVE: usize = 1_024;

/// What this node knows chosen of one key (from its own decisions and commit notices): every
/// slot below `through`, and the slots in `above`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct KnownChosen {
    through: u64,
    above: BTreeSet<u64>,
}

impl KnownChosen {
    fn note(&mut self, slot: u64) {
        if slot < self.through {
            return;
        }
        if slot > self.through {
            if self.above.len() >= MAX_KNOWN_ABOVE {
                self.above.clear();
            }
            self.above.insert(slot);
            return;
        }
        self.through += 1;
        while self.above.remove(&self.through) {
            self.through += 1;
        }
    }

    /// Every slot below `through` is chosen.
    fn advance_to(&mut self, through: u64) {
        if through <= self.through {
            return;
        }
        self.through = through;
        self.above = self.above.split_off(&through);
        while self.above.remove(&self.through) {
            self.through += 1;
        }
    }

    fn contains(&self, slot: u64) -> bool {
        slot < self.through || self.above.contains(&slot)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Pending {
    value: Value,
    client: Option<ProposerId>,
    acks: Vec<NodeId>,
    sent: Time,
    batch: u64,
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
    queue: VecDeque<ClientRequest>,
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
            queue: VecDeque::new(),
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

    fn election_deadline(&mut self, now: Time) -> Time {
        let timeout = self.config.election_timeout;
        let extra = self.rng.below(timeout.as_nanos() as u64);
        now + timeout + Duration::from_nanos(extra)
    }

    fn follow(&mut self, now: Time) {
        let deadline = self.election_deadline(now);
        self.role = Role::Follower { deadline };
    }

    /// Phase 1 for every instance, under a ballot above every one heard of.
    fn campaign(&mut self, now: Time) {
        let ballot = ProposalId::new(self.highest.high + 1, self.id.0);
        self.highest = ballot;
        self.stats.phase1_runs += 1;
        // Each campaign in a row that failed gives the next one twice as long (up to 64 ×):
        // a phase 1 over many keys can outlast the timeout, and starting again with a
        // higher ballot would only throw the promises gathered away.
        let patience = 1u32 << self.failures.min(6);
        self.role = Role::Candidate(Campaign {
            ballot,
            deadline: now + self.config.phase1_timeout * patience,
            ayes: Vec::new(),
            nays: Vec::new(),
            accepted: BTreeMap::new(),
            high_slots: BTreeMap::new(),
            chosen_through: BTreeMap::new(),
        });
        let mut known: Vec<(u64, u64)> = self
            .known_chosen
            .iter()
            .filter(|(_, k)| k.through > 0)
            .map(|(key, k)| (*key, k.through))
            .collect();
        known.sort_unstable();
        self.send(
            To::AllNodes,
            Message::PrepareAll(PrepareAll {
                ballot,
                from: self.id,
                known,
            }),
        );
    }

    /// A campaign failed: clients waiting for it are sent away, and the next campaign waits
    /// for the backoff policy's delay.
    fn back_off(&mut self, now: Time) {
        for request in std::mem::take(&mut self.queue) {
            self.turn_away(request);
        }
        self.failures += 1;
        let delay = self
            .config
            .backoff
            .delay(self.failures, self.last_backoff, &mut self.rng);
        self.last_backoff = delay;
        self.role = Role::BackingOff { until: now + delay };
    }

    /// A higher ballot exists: stop leading or campaigning, hand waiting clients to whoever
    /// holds it, and drop what is in flight (a client that hears nothing asks again).
    fn step_down(&mut self, now: Time, by: ProposalId) {
        let ballot = match &self.role {
            Role::Leading { ballot } => *ballot,
            Role::Candidate(c) => c.ballot,
            Role::Follower { .. } | Role::BackingOff { .. } => return,
        };
        self.stats.stepped_down += 1;
        self.events
            .push_back(LeaderEvent::SteppedDown { ballot, by });
        self.known_leader = (by.low != self.id.0).then_some(NodeId(by.low));
        for request in std::mem::take(&mut self.queue) {
            self.turn_away(request);
        }
        self.in_flight.clear();
        self.by_client.clear();
        self.open_batches.clear();
        self.commits.clear();
        self.prefix_news.clear();
        self.next_heartbeat = Time::MAX;
        self.next_retransmit = Time::MAX;
        self.follow(now);
    }

    /// A leader at `ballot` is alive: follow it, unless a higher ballot is known.
    fn hear_leader(&mut self, now: Time, ballot: ProposalId, from: NodeId) {
        if from == self.id || ballot < self.highest {
            return;
        }
        self.highest = ballot;
        match self.role {
            Role::Leading { .. } | Role::Candidate(_) => self.step_down(now, ballot),
            Role::Follower { .. } | Role::BackingOff { .. } => self.follow(now),
        }
        self.known_leader = Some(from);
        self.failures = 0;
    }

    /// Someone campaigns with a higher ballot: a follower gives it an election timeout to win
    /// before campaigning itself. A leader learns it lost from its own acceptor's refusals.
    fn hear_campaign(&mut self, now: Time, prepare: &PrepareAll) {
        if prepare.from == self.id || prepare.ballot <= self.highest {
            return;
        }
        self.highest = prepare.ballot;
        if let Role::Follower { .. } = self.role {
            self.follow(now);
        }
    }

    fn handle_refused(&mut self, now: Time, refused: &Refused) {
        self.highest = self.highest.max(refused.promised);
        match &mut self.role {
            Role::Candidate(c) if c.ballot == refused.ballot => {
                if c.nays.contains(&refused.from) {
                    return;
                }
                c.nays.push(refused.from);
                let hopeless =
                    Quorums::hopeless_after(self.config.quorums.phase1, self.config.nodes.len());
                if c.nays.len() >= hopeless {
                    self.stats.preempted += 1;
                    let by = refused.promised;
                    self.step_down(now, by);
                    self.back_off(now);
                }
            }
            Role::Leading { ballot } if *ballot == refused.ballot => {
                self.step_down(now, refused.promised);
            }
            _ => {}
        }
    }

    fn handle_promise_all(&mut self, now: Time, promise: &PromiseAll) {
        let phase1 = self.config.quorums.phase1;
        let Role::Candidate(c) = &mut self.role else {
            return;
        };
        if promise.ballot != c.ballot || c.ayes.contains(&promise.from) {
            return;
        }
        c.ayes.push(promise.from);
        for (instance, id, value) in &promise.accepted {
            let best = c.accepted.entry(*instance).or_insert((*id, value.clone()));
            if *id > best.0 {
                *best = (*id, value.clone());
            }
        }
        for (key, slot) in &promise.high_slots {
            let high = c.high_slots.entry(*key).or_insert(*slot);
            *high = (*high).max(*slot);
        }
        for (key, through) in &promise.chosen_through {
            let known = c.chosen_through.entry(*key).or_insert(*through);
            *known = (*known).max(*through);
        }
        // Its own promise is required: it is what makes the ballot durable on this node.
        if c.ayes.len() < phase1 || !c.ayes.contains(&self.id) {
            return;
        }
        let Role::Candidate(won) = std::mem::replace(
            &mut self.role,
            Role::Leading {
                ballot: ProposalId::ZERO,
            },
        ) else {
            return;
        };
        self.lead(now, won);
    }

    /// A phase-1 quorum promised: lead, carrying on every accepted proposal reported for a slot
    /// it does not know chosen, and filling the slots nobody reported below a key's highest
    /// with empty values, before serving anything new.
    fn lead(&mut self, now: Time, won: Campaign) {
        let ballot = won.ballot;
        self.role = Role::Leading { ballot };
        self.known_leader = Some(self.id);
        self.failures = 0;
        self.last_backoff = Duration::ZERO;
        self.stats.elected += 1;
        let mut accepted = won.accepted;
        let high_slots = won.high_slots;
        let mut carried: Vec<(Instance, Value, Option<ProposerId>)> = Vec::new();
        let mut noops = Vec::new();
        self.next_slot.clear();
        // What a promiser knows chosen is chosen: it becomes this node's knowledge too.
        for (key, through) in won.chosen_through {
            self.known_chosen
                .entry(key)
                .or_default()
                .advance_to(through);
        }
        // Never below what this node knows chosen, whatever the promisers still hold: the
        // highest slot of a key is the higher of the reports and of what it knows.
        let mut high_slots: BTreeMap<u64, u64> = high_slots.into_iter().collect();
        for (key, known) in &self.known_chosen {
            let top = known.above.last().copied().or(known.through.checked_sub(1));
            if let Some(top) = top {
                let high = high_slots.entry(*key).or_insert(top);
                *high = (*high).max(top);
            }
        }
        for (key, high) in high_slots {
            self.next_slot.insert(key, high + 1);
            let known = self.known_chosen.get(&key);
            let from = known.map_or(0, |k| k.through);
            for slot in from..=high {
                let instance = Instance::new(key, slot);
                if known.is_some_and(|k| k.contains(slot)) {
                    continue;
                }
                match accepted.remove(&instance) {
                    Some((_, value)) => carried.push((instance, value, None)),
                    None => noops.push(instance),
                }
            }
        }
        self.stats.reproposed += carried.len() as u64;
        self.stats.noops += noops.len() as u64;
        self.events.push_back(LeaderEvent::Elected {
            ballot,
            reproposed: carried.len(),
        });
        for instance in noops {
            self.events.push_back(LeaderEvent::Proposed {
                instance,
                value: Value::new(),
            });
            carried.push((instance, Value::new(), None));
        }
        self.next_heartbeat = now;
        self.next_retransmit = now + self.config.phase2_timeout;
        // Requests that waited for the campaign share the carried values' batches.
        let waiting = std::mem::take(&mut self.queue);
        carried.extend(waiting.into_iter().map(|request| self.assign(request)));
        for chunk in carried.chunks(self.config.batch) {
            self.send_batch(now, ballot, chunk.to_vec());
        }
        // Heartbeat at once, so that every follower knows whom to send clients to.
        self.handle_timeout(now);
    }

    /// Gives `request` its key's next slot.
    fn assign(&mut self, request: ClientRequest) -> (Instance, Value, Option<ProposerId>) {
        let slot = self.next_slot.entry(request.key).or_insert(0);
        let instance = Instance::new(request.key, *slot);
        *slot += 1;
        self.events.push_back(LeaderEvent::Proposed {
            instance,
            value: request.value.clone(),
        });
        self.by_client.insert(request.client, instance);
        (instance, request.value, Some(request.client))
    }

    fn handle_request(&mut self, now: Time, request: &ClientRequest) {
        match self.role {
            Role::Leading { .. } => {
                if let Some((value, instance)) = self.answered.get(&request.client)
                    && *value == request.value
                {
                    let reply = ClientReply {
                        instance: *instance,
                        value: value.clone(),
                        from: self.id,
                    };
                    self.send(To::Proposer(request.client), Message::ClientReply(reply));
                    return;
                }
                if let Some(instance) = self.by_client.get(&request.client)
                    && self
                        .in_flight
                        .get(instance)
                        .is_some_and(|p| p.value == request.value)
                {
                    return;
                }
                if self
                    .queue
                    .iter()
                    .any(|q| q.client == request.client && q.value == request.value)
                {
                    return;
                }
                self.queue.push_back(request.clone());
                self.flush(now);
            }
            // A campaign in progress is likely to win: its clients wait for it.
            Role::Candidate(_) => self.queue.push_back(request.clone()),
            Role::Follower { .. } | Role::BackingOff { .. } => self.turn_away(request.clone()),
        }
    }

    /// A request this node will not serve: forwarded to the leader it knows, when forwarding
    /// and it came from the client itself, else redirected.
    fn turn_away(&mut self, request: ClientRequest) {
        match self.known_leader {
            Some(leader)
                if leader != self.id
                    && self.config.forward == ForwardMode::Forward
                    && request.via.is_none() =>
            {
                self.stats.forwards += 1;
                let forwarded = ClientRequest {
                    via: Some(self.id),
                    ..request
                };
                self.send(To::Node(leader), Message::ClientRequest(forwarded));
            }
            known => {
                self.stats.redirects += 1;
                let leader = known.filter(|l| *l != self.id);
                self.send(
                    To::Proposer(request.client),
                    Message::Redirect(Redirect {
                        key: request.key,
                        value: request.value,
                        leader,
                        from: self.id,
                    }),
                );
            }
        }
    }

    /// Sends waiting requests in batches while fewer than `pipeline` batches are open, or
    /// while a full batch waits.
    fn flush(&mut self, now: Time) {
        let Role::Leading { ballot } = self.role else {
            return;
        };
        while !self.queue.is_empty()
            && (self.open_batches.len() < self.config.pipeline
                || self.queue.len() >= self.config.batch)
        {
            let take = self.queue.len().min(self.config.batch);
            let requests: Vec<ClientRequest> = self.queue.drain(..take).collect();
            let entries = requests.into_iter().map(|r| self.assign(r)).collect();
            self.send_batch(now, ballot, entries);
        }
    }

    fn send_batch(
        &mut self,
        now: Time,
        ballot: ProposalId,
        entries: Vec<(Instance, Value, Option<ProposerId>)>,
    ) {
        let batch = self.next_batch;
        self.next_batch += 1;
        self.stats.batches += 1;
        self.stats.batched += entries.len() as u64;
        self.open_batches.insert(batch, entries.len());
        let mut wire = Vec::with_capacity(entries.len());
        for (instance, value, client) in entries {
            wire.push((instance, value.clone()));
            self.in_flight.insert(
                instance,
                Pending {
                    value,
                    client,
                    acks: Vec::new(),
                    sent: now,
                    batch,
                },
            );
        }
        let to = self.phase2_targets();
        if let To::Nodes(nodes) = &to {
            self.last_targets.clone_from(nodes);
        }
        let message = Message::AcceptBatch(AcceptBatch {
            ballot,
            from: self.id,
            entries: wire,
            commits: std::mem::take(&mut self.commits),
        });
        self.send(to, message);
    }

    /// Everyone, or with thrifty quorums this node and the phase-2 quorum's other members
    /// that answered fastest last (a node never heard from counts as fastest, so it is tried).
    fn phase2_targets(&self) -> To {
        if !self.config.thrifty {
            return To::AllNodes;
        }
        let mut others = self.others();
        others.sort_by_key(|n| (self.round_trips.get(n).copied().unwrap_or_default(), *n));
        let mut chosen = vec![self.id];
        chosen.extend(
            others
                .into_iter()
                .take(self.config.quorums.phase2.saturating_sub(1)),
        );
        To::Nodes(chosen)
    }

    fn handle_accepted_batch(&mut self, now: Time, accepted: &AcceptedBatch) {
        let Role::Leading { ballot } = self.role else {
            return;
        };
        if accepted.ballot != ballot {
            return;
        }
        let phase2 = self.config.quorums.phase2;
        let mut sampled = false;
        for instance in &accepted.instances {
            let Some(pending) = self.in_flight.get_mut(instance) else {
                continue;
            };
            if pending.acks.contains(&accepted.from) {
                continue;
            }
            if !sampled {
                sampled = true;
                self.round_trips
                    .insert(accepted.from, now.saturating_since(pending.sent));
            }
            pending.acks.push(accepted.from);
            if pending.acks.len() < phase2 {
                continue;
            }
            let Some(done) = self.in_flight.remove(instance) else {
                continue;
            };
            self.stats.decided += 1;
            self.commits.push(*instance);
            self.note_chosen(*instance);
            if let Some(open) = self.open_batches.get_mut(&done.batch) {
                *open -= 1;
                if *open == 0 {
                    self.open_batches.remove(&done.batch);
                }
            }
            self.events.push_back(LeaderEvent::Chosen {
                instance: *instance,
                ballot,
                value: done.value.clone(),
            });
            if let Some(client) = done.client {
                if self.by_client.get(&client) == Some(instance) {
                    self.by_client.remove(&client);
                }
                self.answered
                    .insert(client, (done.value.clone(), *instance));
                self.send(
                    To::Proposer(client),
                    Message::ClientReply(ClientReply {
                        instance: *instance,
                        value: done.value,
                        from: self.id,
                    }),
                );
            }
        }
        self.flush(now);
    }

    /// Sends every entry older than the phase-2 timeout again, to every node.
    fn retransmit(&mut self, now: Time, ballot: ProposalId) {
        let timeout = self.config.phase2_timeout;
        self.next_retransmit = now + timeout;
        let mut silent: Vec<NodeId> = Vec::new();
        let mut stale: Vec<(Instance, Value)> = Vec::new();
        for (instance, pending) in &mut self.in_flight {
            if now.saturating_since(pending.sent) < timeout {
                continue;
            }
            pending.sent = now;
            stale.push((*instance, pending.value.clone()));
            let asked = if self.config.thrifty {
                &self.last_targets
            } else {
                &self.config.nodes
            };
            for node in asked {
                if !pending.acks.contains(node) && !silent.contains(node) {
                    silent.push(*node);
                }
            }
        }
        if stale.is_empty() {
            return;
        }
        // A node that let an entry time out counts as slow for thrifty quorums until it
        // answers again.
        for node in silent {
            let slow = self.round_trips.entry(node).or_default();
            *slow = (*slow).max(timeout);
        }
        stale.sort_unstable_by_key(|(instance, _)| *instance);
        self.stats.retransmitted += stale.len() as u64;
        for chunk in stale.chunks(self.config.batch) {
            self.send(
                To::AllNodes,
                Message::AcceptBatch(AcceptBatch {
                    ballot,
                    from: self.id,
                    entries: chunk.to_vec(),
                    commits: Vec::new(),
                }),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn nodes() -> Vec<NodeId> {
        vec![NodeId(1), NodeId(2), NodeId(3)]
    }

    fn leader(id: u32, config: impl FnOnce(&mut LeaderConfig)) -> Leader {
        let mut c = LeaderConfig::new(nodes());
        config(&mut c);
        Leader::new(NodeId(id), c, 7).unwrap()
    }

    fn drain(l: &mut Leader) -> Vec<Transmit> {
        std::iter::from_fn(|| l.poll_transmit()).collect()
    }

    fn events(l: &mut Leader) -> Vec<LeaderEvent> {
        std::iter::from_fn(|| l.poll_event()).collect()
    }

    fn value(v: &'static str) -> Value {
        Value::from_static(v.as_bytes())
    }

    fn promise(
        from: u32,
        ballot: ProposalId,
        accepted: Vec<(Instance, ProposalId, Value)>,
        high_slots: Vec<(u64, u64)>,
    ) -> Message {
        Message::PromiseAll(PromiseAll {
            ballot,
            from: NodeId(from),
            accepted,
            high_slots,
            chosen_through: vec![],
        })
    }

    /// A pinned node 1 that campaigned; returns it with its ballot.
    fn candidate() -> (Leader, ProposalId) {
        let mut l = leader(1, |c| c.initial_leader = Some(NodeId(1)));
        l.start(Time::ZERO, ProposalId::ZERO);
        let sent = drain(&mut l);
        let Message::PrepareAll(p) = &sent[0].message else {
            panic!("{sent:?}")
        };
        assert_eq!(sent[0].to, To::AllNodes);
        (l, p.ballot)
    }

    fn request(client: u32, key: u64, v: &'static str) -> Message {
        Message::ClientRequest(ClientRequest {
            key,
            value: value(v),
            client: ProposerId(client),
            via: None,
        })
    }

    #[test]
    fn a_new_leader_carries_on_the_highest_accepted_value_whatever_the_promise_order() {
        let i = Instance::new(5, 2);
        let low = ProposalId::new(1, 2);
        let high = ProposalId::new(2, 3);
        // Node 2 accepted an old value, node 3 a newer one and slot 4; node 1 (the candidate)
        // nothing. Slot 3 nobody reported.
        let answers = [
            (2, vec![(i, low, value("old"))], vec![(5, 2)]),
            (
                3,
                vec![
                    (i, high, value("new")),
                    (Instance::new(5, 4), high, value("four")),
                ],
                vec![(5, 4)],
            ),
        ];
        for order in [[0, 1], [1, 0]] {
            let (mut l, ballot) = candidate();
            l.handle(Time::ZERO, &promise(1, ballot, vec![], vec![]))
                .unwrap();
            assert!(!l.is_leading(), "its own promise is not a quorum");
            let first = order[0];
            let (from, accepted, high_slots) = answers[first].clone();
            l.handle(Time::ZERO, &promise(from, ballot, accepted, high_slots))
                .unwrap();
            assert!(l.is_leading(), "a majority of three with one more");
            let proposed: Vec<(Instance, Value)> = drain(&mut l)
                .into_iter()
                .filter_map(|t| match t.message {
                    Message::AcceptBatch(b) => {
                        assert_eq!(b.ballot, ballot);
                        Some(b.entries)
                    }
                    _ => None,
                })
                .flatten()
                .collect();
            let expected: Vec<(Instance, Value)> = if first == 0 {
                // Only node 2 heard: its value, and empty values for slots 0 and 1.
                vec![
                    (Instance::new(5, 0), Value::new()),
                    (Instance::new(5, 1), Value::new()),
                    (i, value("old")),
                ]
            } else {
                vec![
                    (Instance::new(5, 0), Value::new()),
                    (Instance::new(5, 1), Value::new()),
                    (i, value("new")),
                    (Instance::new(5, 3), Value::new()),
                    (Instance::new(5, 4), value("four")),
                ]
            };
            let mut proposed = proposed;
            proposed.sort();
            let mut expected = expected;
            expected.sort();
            assert_eq!(proposed, expected, "order {order:?}");
            // The next slot of key 5 is above every slot a quorum member accepted.
            l.handle(Time::ZERO, &request(9, 5, "fresh")).unwrap();
            let next = events(&mut l).into_iter().rev().find_map(|e| match e {
                LeaderEvent::Proposed { instance, .. } => Some(instance),
                _ => None,
            });
            let next_free = if first == 0 { 3 } else { 5 };
            assert_eq!(next, Some(Instance::new(5, next_free)), "order {order:?}");
        }
        // With both heard, the higher ballot's value wins whichever came first.
        for order in [[0, 1], [1, 0]] {
            let (mut l, ballot) = candidate();
            for &k in &order {
                let (from, accepted, high_slots) = answers[k].clone();
                l.handle(Time::ZERO, &promise(from, ballot, accepted, high_slots))
                    .unwrap();
            }
            l.handle(Time::ZERO, &promise(1, ballot, vec![], vec![]))
                .unwrap();
            let carried: Vec<Value> = drain(&mut l)
                .into_iter()
                .filter_map(|t| match t.message {
                    Message::AcceptBatch(b) => Some(b.entries),
                    _ => None,
                })
                .flatten()
                .filter(|(instance, _)| *instance == i)
                .map(|(_, v)| v)
                .collect();
            assert_eq!(carried, [value("new")], "order {order:?}");
        }
    }

    #[test]
    fn slots_known_chosen_are_neither_asked_for_nor_proposed_again() {
        let mut l = leader(1, |_| {});
        l.start(Time::ZERO, ProposalId::ZERO);
        // A leader's notices: key 5 slots 0, 1 and 3 are chosen.
        let heartbeat = Message::Heartbeat(Heartbeat {
            ballot: ProposalId::new(1, 2),
            from: NodeId(2),
            commits: vec![
                Instance::new(5, 0),
                Instance::new(5, 1),
                Instance::new(5, 3),
            ],
            chosen_through: vec![],
        });
        l.handle(Time::ZERO, &heartbeat).unwrap();
        let at = l.poll_timeout().unwrap();
        l.handle_timeout(at);
        let sent = drain(&mut l);
        let Message::PrepareAll(p) = &sent[0].message else {
            panic!("{sent:?}")
        };
        assert_eq!(p.known, [(5, 2)]);
        let ballot = p.ballot;
        let reported = vec![(Instance::new(5, 3), ProposalId::new(1, 2), value("three"))];
        l.handle(at, &promise(1, ballot, vec![], vec![(5, 3)]))
            .unwrap();
        l.handle(at, &promise(2, ballot, reported, vec![(5, 3)]))
            .unwrap();
        let proposed: Vec<(Instance, Value)> = drain(&mut l)
            .into_iter()
            .filter_map(|t| match t.message {
                Message::AcceptBatch(b) => Some(b.entries),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(proposed, [(Instance::new(5, 2), Value::new())]);
        assert_eq!(l.stats().noops, 1);
    }

    #[test]
    fn slots_a_promiser_knows_chosen_are_not_carried_on_whatever_another_reports() {
        // Node 3's acceptor had notices that slots 0 and 1 of key 5 are chosen; whatever
        // another acceptor reports for them, a leader elected with node 3 carries none on.
        let mut from_3 = PromiseAll {
            ballot: ProposalId::ZERO,
            from: NodeId(3),
            accepted: vec![],
            high_slots: vec![(5, 1)],
            chosen_through: vec![(5, 2)],
        };
        let (mut l, ballot) = candidate();
        from_3.ballot = ballot;
        // Its own acceptor missed the decision of slot 1 and holds an older value.
        let stale = vec![(Instance::new(5, 1), ProposalId::new(1, 2), value("stale"))];
        l.handle(Time::ZERO, &promise(1, ballot, stale, vec![(5, 1)]))
            .unwrap();
        l.handle(Time::ZERO, &Message::PromiseAll(from_3)).unwrap();
        let carried: Vec<(Instance, Value)> = drain(&mut l)
            .into_iter()
            .filter_map(|t| match t.message {
                Message::AcceptBatch(b) => Some(b.entries),
                _ => None,
            })
            .flatten()
            .collect();
        assert!(carried.is_empty(), "{carried:?}");
        l.handle(Time::ZERO, &request(9, 5, "next")).unwrap();
        let next = events(&mut l).into_iter().rev().find_map(|e| match e {
            LeaderEvent::Proposed { instance, .. } => Some(instance),
            _ => None,
        });
        assert_eq!(next, Some(Instance::new(5, 2)));
    }

    #[test]
    fn requests_get_consecutive_slots_and_an_answer_once_a_quorum_accepted() {
        let (mut l, ballot) = candidate();
        l.handle(Time::ZERO, &promise(1, ballot, vec![], vec![]))
            .unwrap();
        l.handle(Time::ZERO, &promise(2, ballot, vec![], vec![]))
            .unwrap();
        let _ = drain(&mut l);
        for (client, v) in [(10, "a"), (11, "b")] {
            l.handle(Time::ZERO, &request(client, 7, v)).unwrap();
        }
        // A retry of a request in flight is not given a second slot.
        l.handle(Time::ZERO, &request(10, 7, "a")).unwrap();
        let sent = drain(&mut l);
        let entries: Vec<Instance> = sent
            .iter()
            .filter_map(|t| match &t.message {
                Message::AcceptBatch(b) => Some(b.entries.iter().map(|(i, _)| *i)),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(entries, [Instance::new(7, 0), Instance::new(7, 1)]);
        let ack = |from: u32| {
            Message::AcceptedBatch(AcceptedBatch {
                ballot,
                from: NodeId(from),
                instances: vec![Instance::new(7, 0), Instance::new(7, 1)],
            })
        };
        l.handle(Time::ZERO, &ack(1)).unwrap();
        assert!(drain(&mut l).is_empty(), "one of three is not a quorum");
        l.handle(Time::ZERO, &ack(1)).unwrap();
        assert!(drain(&mut l).is_empty(), "a duplicate counts once");
        l.handle(Time::ZERO, &ack(3)).unwrap();
        let replies: Vec<(To, Instance)> = drain(&mut l)
            .into_iter()
            .filter_map(|t| match t.message {
                Message::ClientReply(r) => Some((t.to, r.instance)),
                _ => None,
            })
            .collect();
        assert_eq!(
            replies,
            [
                (To::Proposer(ProposerId(10)), Instance::new(7, 0)),
                (To::Proposer(ProposerId(11)), Instance::new(7, 1))
            ]
        );
        assert_eq!(l.stats().decided, 2);
        // With no batch to carry them, commit notices ride on the next heartbeat, which this
        // node's own acceptor hears too; an empty heartbeat goes to the others only.
        let mut heartbeat = l.clone();
        let at = heartbeat.poll_timeout().unwrap();
        heartbeat.handle_timeout(at);
        let sent = drain(&mut heartbeat);
        assert!(
            matches!(&sent[..], [t] if t.to == To::AllNodes && matches!(&t.message, Message::Heartbeat(h) if h.commits.len() == 2 && h.chosen_through == [(7, 2)])),
            "{sent:?}"
        );
        let at = heartbeat.poll_timeout().unwrap();
        heartbeat.handle_timeout(at);
        let sent = drain(&mut heartbeat);
        assert!(
            matches!(&sent[..], [t] if t.to == To::Nodes(vec![NodeId(2), NodeId(3)])),
            "{sent:?}"
        );
        // Or on the next batch.
        l.handle(Time::ZERO, &request(12, 8, "c")).unwrap();
        let next = drain(&mut l);
        assert!(matches!(&next[0].message, Message::AcceptBatch(b) if b.commits.len() == 2));
        // The client whose reply was lost asks again and hears the same answer.
        l.handle(Time::ZERO, &request(10, 7, "a")).unwrap();
        assert!(
            matches!(&drain(&mut l)[..], [t] if matches!(&t.message, Message::ClientReply(r) if r.instance == Instance::new(7, 0)))
        );
    }

    #[test]
    fn waiting_requests_form_larger_batches_while_the_pipeline_is_full() {
        let (mut l, ballot) = candidate();
        l.config.pipeline = 1;
        l.config.batch = 3;
        l.handle(Time::ZERO, &promise(1, ballot, vec![], vec![]))
            .unwrap();
        l.handle(Time::ZERO, &promise(2, ballot, vec![], vec![]))
            .unwrap();
        let _ = drain(&mut l);
        for client in 0..5 {
            l.handle(Time::ZERO, &request(client, u64::from(client), "x"))
                .unwrap();
        }
        let sizes: Vec<usize> = drain(&mut l)
            .iter()
            .filter_map(|t| match &t.message {
                Message::AcceptBatch(b) => Some(b.entries.len()),
                _ => None,
            })
            .collect();
        // One batch of one opens the pipeline; then three wait for a full batch, which goes.
        assert_eq!(sizes, [1, 3]);
        assert_eq!(l.in_flight(), 5);
    }

    #[test]
    fn a_refused_leader_steps_down_and_sends_waiting_clients_to_the_new_one() {
        let (mut l, ballot) = candidate();
        l.config.pipeline = 1;
        l.config.batch = 8;
        l.handle(Time::ZERO, &promise(1, ballot, vec![], vec![]))
            .unwrap();
        l.handle(Time::ZERO, &promise(3, ballot, vec![], vec![]))
            .unwrap();
        l.handle(Time::ZERO, &request(1, 1, "a")).unwrap();
        l.handle(Time::ZERO, &request(2, 1, "b")).unwrap();
        let _ = drain(&mut l);
        let higher = ProposalId::new(ballot.high + 1, 2);
        l.handle(
            Time::ZERO,
            &Message::Refused(Refused {
                ballot,
                promised: higher,
                from: NodeId(3),
            }),
        )
        .unwrap();
        assert!(!l.is_leading());
        assert_eq!(l.known_leader(), Some(NodeId(2)));
        let sent = drain(&mut l);
        assert!(
            matches!(&sent[..], [t] if t.to == To::Proposer(ProposerId(2)) && matches!(&t.message, Message::Redirect(r) if r.leader == Some(NodeId(2)))),
            "{sent:?}"
        );
        assert!(
            events(&mut l)
                .iter()
                .any(|e| matches!(e, LeaderEvent::SteppedDown { by, .. } if *by == higher))
        );
    }

    #[test]
    fn followers_redirect_or_forward_once_and_campaign_when_the_leader_falls_silent() {
        let mut f = leader(2, |c| c.forward = ForwardMode::Forward);
        f.start(Time::ZERO, ProposalId::ZERO);
        let heartbeat = Message::Heartbeat(Heartbeat {
            ballot: ProposalId::new(1, 1),
            from: NodeId(1),
            commits: vec![],
            chosen_through: vec![],
        });
        f.handle(Time::ZERO, &heartbeat).unwrap();
        f.handle(Time::ZERO, &request(4, 1, "x")).unwrap();
        let sent = drain(&mut f);
        assert!(
            matches!(&sent[..], [t] if t.to == To::Node(NodeId(1)) && matches!(&t.message, Message::ClientRequest(r) if r.via == Some(NodeId(2))))
        );
        // A forwarded request reaching a node that does not lead goes back to the client.
        let forwarded = Message::ClientRequest(ClientRequest {
            key: 1,
            value: value("x"),
            client: ProposerId(4),
            via: Some(NodeId(3)),
        });
        f.handle(Time::ZERO, &forwarded).unwrap();
        assert!(matches!(&drain(&mut f)[..], [t] if matches!(t.message, Message::Redirect(_))));
        let deadline = f.poll_timeout().unwrap();
        assert!(deadline >= Time::ZERO + 100 * MS && deadline < Time::ZERO + 200 * MS);
        f.handle_timeout(deadline);
        let sent = drain(&mut f);
        assert!(
            matches!(&sent[0].message, Message::PrepareAll(p) if p.ballot == ProposalId::new(2, 2)),
            "{sent:?}"
        );
    }

    #[test]
    fn a_refused_campaign_is_a_duel_and_backs_off() {
        let (mut l, ballot) = candidate();
        let higher = ProposalId::new(ballot.high, 3);
        for from in [2, 3] {
            l.handle(
                Time::ZERO,
                &Message::Refused(Refused {
                    ballot,
                    promised: higher,
                    from: NodeId(from),
                }),
            )
            .unwrap();
        }
        assert_eq!(l.stats().preempted, 1);
        let retry = l.poll_timeout().unwrap();
        assert!(
            retry <= Time::ZERO + 2 * MS,
            "the first backoff is at most 1 ms"
        );
        l.handle_timeout(retry);
        let sent = drain(&mut l);
        assert!(matches!(&sent[0].message, Message::PrepareAll(p) if p.ballot > higher));
    }

    #[test]
    fn thrifty_phase_two_goes_to_a_quorum_of_the_fastest() {
        let (mut l, ballot) = candidate();
        l.config.thrifty = true;
        l.config.pipeline = 8;
        for from in [1, 2] {
            l.handle(Time::ZERO, &promise(from, ballot, vec![], vec![]))
                .unwrap();
        }
        let _ = drain(&mut l);
        l.handle(Time::ZERO, &request(1, 1, "a")).unwrap();
        let sent = drain(&mut l);
        assert_eq!(sent[0].to, To::Nodes(vec![NodeId(1), NodeId(2)]));
        // Node 2 stays silent past the phase-2 timeout: retransmitted to all, then avoided.
        let ack = Message::AcceptedBatch(AcceptedBatch {
            ballot,
            from: NodeId(1),
            instances: vec![Instance::new(1, 0)],
        });
        l.handle(Time::ZERO + MS, &ack).unwrap();
        l.handle_timeout(Time::ZERO + 50 * MS);
        let sent = drain(&mut l);
        assert!(
            sent.iter()
                .any(|t| t.to == To::AllNodes && matches!(t.message, Message::AcceptBatch(_)))
        );
        l.handle(Time::ZERO + 50 * MS, &request(2, 2, "b")).unwrap();
        let sent = drain(&mut l);
        assert_eq!(
            sent.last().unwrap().to,
            To::Nodes(vec![NodeId(1), NodeId(3)])
        );
    }
}
