//! The leader role's elections: following, campaigning with a ranged PREPARE-ALL, backing
//! off after a duel, stepping down for a higher ballot, and taking over once a phase-1 quorum
//! promised: re-proposing what it reported accepted and no-ops for the gaps below.

use std::collections::BTreeMap;
use std::time::Duration;

use super::phase2::KnownChosen;
use super::{Leader, LeaderEvent, Role};
use crate::message::{Message, PrepareAll, PromiseAll, Refused};
use crate::time::Time;
use crate::transmit::To;
use crate::types::{Instance, NodeId, ProposalId, ProposerId, Quorums, Value};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Campaign {
    pub(super) ballot: ProposalId,
    pub(super) deadline: Time,
    pub(super) ayes: Vec<NodeId>,
    pub(super) nays: Vec<NodeId>,
    /// The highest-ballot accepted proposal reported for each instance.
    pub(super) accepted: BTreeMap<Instance, (ProposalId, Value)>,
    pub(super) high_slots: BTreeMap<u64, u64>,
    /// Per key, the highest chosen prefix any promiser knows.
    pub(super) chosen_through: BTreeMap<u64, u64>,
    /// The digest of the `known` slots this campaign's PREPARE-ALL sent.
    pub(super) asked: u64,
}

impl Leader {
    pub(super) fn election_deadline(&mut self, now: Time) -> Time {
        let timeout = self.config.election_timeout;
        let extra = self.rng.below(timeout.as_nanos() as u64);
        now + timeout + Duration::from_nanos(extra)
    }

    pub(super) fn follow(&mut self, now: Time) {
        let deadline = self.election_deadline(now);
        self.role = Role::Follower { deadline };
    }

    /// Phase 1 for every instance, under a ballot above every one heard of.
    pub(super) fn campaign(&mut self, now: Time) {
        // Nodes refuse ballots near the top of the range, so this never saturates in a cluster
        // that took only what it should; saturating keeps a node that holds such a promise
        // from an older build alive (its campaigns then lose, rather than wrap).
        let ballot = ProposalId::new(self.highest.high.saturating_add(1), self.id.0);
        self.highest = ballot;
        self.stats.phase1_runs += 1;
        // Each campaign in a row that failed gives the next one twice as long (up to 64 ×):
        // a phase 1 over many keys can outlast the timeout, and starting again with a
        // higher ballot would only throw the promises gathered away.
        let patience = 1u32 << self.failures.min(6);
        let mut known: Vec<(u64, u64)> = self
            .known_chosen
            .iter()
            .filter(|(_, k)| k.through > 0)
            .map(|(key, k)| (*key, k.through))
            .collect();
        known.sort_unstable();
        self.role = Role::Candidate(Campaign {
            ballot,
            deadline: now + self.config.phase1_timeout * patience,
            ayes: Vec::new(),
            nays: Vec::new(),
            accepted: BTreeMap::new(),
            high_slots: BTreeMap::new(),
            chosen_through: BTreeMap::new(),
            asked: crate::message::known_digest(&known),
        });
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
    pub(super) fn back_off(&mut self, now: Time) {
        for request in self.queue.take_all() {
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
    pub(super) fn step_down(&mut self, now: Time, by: ProposalId) {
        let ballot = match &self.role {
            Role::Leading { ballot } => *ballot,
            Role::Candidate(c) => c.ballot,
            Role::Follower { .. } | Role::BackingOff { .. } => return,
        };
        self.stats.stepped_down += 1;
        self.events
            .push_back(LeaderEvent::SteppedDown { ballot, by });
        self.known_leader = (by.low != self.id.0).then_some(NodeId(by.low));
        for request in self.queue.take_all() {
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
    pub(super) fn hear_leader(&mut self, now: Time, ballot: ProposalId, from: NodeId) {
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
    pub(super) fn hear_campaign(&mut self, now: Time, prepare: &PrepareAll) {
        if prepare.from == self.id || prepare.ballot <= self.highest {
            return;
        }
        self.highest = prepare.ballot;
        if let Role::Follower { .. } = self.role {
            self.follow(now);
        }
    }

    pub(super) fn handle_refused(&mut self, now: Time, refused: &Refused) {
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

    pub(super) fn handle_promise_all(&mut self, now: Time, promise: &PromiseAll) {
        let phase1 = self.config.quorums.phase1;
        let Role::Candidate(c) = &mut self.role else {
            return;
        };
        // A promise to an earlier campaign under the same ballot (before a crash) may leave
        // out slots this one needs reported.
        if promise.ballot != c.ballot
            || promise.answers != c.asked
            || c.ayes.contains(&promise.from)
        {
            return;
        }
        if !self.config.nodes.contains(&promise.from)
            || !fills_fit(&self.known_chosen, &c.chosen_through, promise)
        {
            // Counted toward nothing: a quorum of made-up nodes elects nobody, and a report
            // that would have the leader fill millions of empty slots costs it nothing.
            self.stats.refused_promises += 1;
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
    pub(super) fn lead(&mut self, now: Time, won: Campaign) {
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
            self.next_slot.insert(key, high.saturating_add(1));
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
        let waiting = self.queue.take_all();
        carried.extend(waiting.into_iter().map(|request| self.assign(request)));
        for chunk in super::phase2::batches(carried, self.config.batch, |(_, value, _)| value) {
            self.send_batch(now, ballot, chunk);
        }
        // Heartbeat at once, so that every follower knows whom to send clients to.
        self.handle_timeout(now);
    }
}

/// The most empty slots a new leader fills for one key: a promise reporting a key's highest
/// slot further than this above what the campaign knows chosen is not counted. An honest
/// acceptor's highest slot lies within the leader's pipeline, plus what commit notices have not
/// yet told, above the chosen prefix some promiser knows.
pub(super) const MAX_FILL_PER_KEY: u64 = 1 << 20;

/// Whether every key `promise` reports lies within [`MAX_FILL_PER_KEY`] of the best chosen
/// prefix known: this node's, the campaign's so far, or the promise's own.
fn fills_fit(
    known: &BTreeMap<u64, KnownChosen>,
    campaign: &BTreeMap<u64, u64>,
    promise: &PromiseAll,
) -> bool {
    let reported: BTreeMap<u64, u64> = promise.chosen_through.iter().copied().collect();
    promise.high_slots.iter().all(|(key, high)| {
        let through = [
            known.get(key).map_or(0, |k| k.through),
            campaign.get(key).copied().unwrap_or(0),
            reported.get(key).copied().unwrap_or(0),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        high.saturating_sub(through) <= MAX_FILL_PER_KEY
    })
}
