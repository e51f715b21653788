//! The leader role's phase 2: slots for client requests, batched and pipelined ACCEPT-BATCHes
//! (to every node, or with thrifty quorums to the fastest), decisions on a phase-2 quorum,
//! retransmission, and what a follower does with a request (redirect or forward).

use std::collections::{BTreeSet, VecDeque};

use super::{ForwardMode, Leader, LeaderEvent, Role};
use crate::message::{AcceptBatch, AcceptedBatch, ClientReply, ClientRequest, Message, Redirect};
use crate::time::Time;
use crate::transmit::To;
use crate::types::{Instance, NodeId, ProposalId, ProposerId, Value};

/// The most value bytes in one ACCEPT-BATCH, whatever the count setting: with large values a
/// batch of `batch` entries could pass the frame limit between nodes, and the receiver would
/// close the stream on every retransmission.
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// How many of `values`, from the first, one batch takes: at most `count`, and no more value
/// bytes than [`MAX_BATCH_BYTES`] (but always one).
pub(super) fn batch_len<'a>(values: impl Iterator<Item = &'a Value>, count: usize) -> usize {
    let mut bytes = 0usize;
    let mut taken = 0;
    for value in values.take(count) {
        bytes = bytes.saturating_add(value.len());
        if taken > 0 && bytes > MAX_BATCH_BYTES {
            break;
        }
        taken += 1;
    }
    taken
}

/// Splits `entries` into batches of [`batch_len`].
pub(super) fn batches<T>(
    mut entries: Vec<T>,
    count: usize,
    value: impl Fn(&T) -> &Value,
) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    while !entries.is_empty() {
        let take = batch_len(entries.iter().map(&value), count);
        let rest = entries.split_off(take);
        out.push(std::mem::replace(&mut entries, rest));
    }
    out
}

/// The most slots above a key's contiguous known-chosen prefix that a node remembers: past
/// it, it forgets them, which only makes its next campaign's reports longer.
const MAX_KNOWN_ABOVE: usize = 1_024;

/// What this node knows chosen of one key (from its own decisions and commit notices): every
/// slot below `through`, and the slots in `above`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct KnownChosen {
    pub(super) through: u64,
    pub(super) above: BTreeSet<u64>,
}

impl KnownChosen {
    pub(super) fn note(&mut self, slot: u64) {
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
    pub(super) fn advance_to(&mut self, through: u64) {
        if through <= self.through {
            return;
        }
        self.through = through;
        self.above = self.above.split_off(&through);
        while self.above.remove(&self.through) {
            self.through += 1;
        }
    }

    pub(super) fn contains(&self, slot: u64) -> bool {
        slot < self.through || self.above.contains(&slot)
    }
}

/// The most keys a leader gives slots to: every PROMISE-ALL names each key written, so past
/// this an election's frames would pass the limit between nodes. A request for a new key
/// beyond it is dropped and counted.
pub const MAX_KEYS: usize = 1_000_000;

/// The most requests a leader keeps waiting for a batch; past it, a new one is dropped and
/// its client, hearing nothing, asks again later.
pub(super) const MAX_WAITING: usize = 65_536;

/// Requests waiting for a batch (or for a campaign), in arrival order, each once: a client's
/// retry of a waiting request is recognised without a scan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct RequestQueue {
    requests: VecDeque<ClientRequest>,
    waiting: BTreeSet<(ProposerId, Value)>,
}

impl RequestQueue {
    /// Queues `request` unless it already waits or the queue is full; returns whether it did.
    pub(super) fn push(&mut self, request: &ClientRequest) -> bool {
        if self.requests.len() >= MAX_WAITING
            || !self.waiting.insert((request.client, request.value.clone()))
        {
            return false;
        }
        self.requests.push_back(request.clone());
        true
    }

    /// The first `n` requests, in order.
    pub(super) fn drain(&mut self, n: usize) -> Vec<ClientRequest> {
        let n = n.min(self.requests.len());
        let taken: Vec<ClientRequest> = self.requests.drain(..n).collect();
        for request in &taken {
            self.waiting
                .remove(&(request.client, request.value.clone()));
        }
        taken
    }

    /// Every request, in order.
    pub(super) fn take_all(&mut self) -> Vec<ClientRequest> {
        self.waiting.clear();
        self.requests.drain(..).collect()
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Value> {
        self.requests.iter().map(|r| &r.value)
    }

    pub(super) fn len(&self) -> usize {
        self.requests.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Pending {
    pub(super) value: Value,
    pub(super) client: Option<ProposerId>,
    pub(super) acks: Vec<NodeId>,
    pub(super) sent: Time,
    pub(super) batch: u64,
}

impl Leader {
    /// Gives `request` its key's next slot.
    pub(super) fn assign(
        &mut self,
        request: ClientRequest,
    ) -> (Instance, Value, Option<ProposerId>) {
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

    pub(super) fn handle_request(&mut self, now: Time, request: &ClientRequest) {
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
                if !self.next_slot.contains_key(&request.key)
                    && self.next_slot.len() >= self.config.max_keys
                {
                    self.stats.refused_requests += 1;
                    return;
                }
                if self.queue.push(request) {
                    self.flush(now);
                } else if self.queue.len() >= MAX_WAITING {
                    self.stats.refused_requests += 1;
                }
            }
            // A campaign in progress is likely to win: its clients wait for it.
            Role::Candidate(_) => {
                if !self.queue.push(request) && self.queue.len() >= MAX_WAITING {
                    self.stats.refused_requests += 1;
                }
            }
            Role::Follower { .. } | Role::BackingOff { .. } => self.turn_away(request.clone()),
        }
    }

    /// A request this node will not serve: forwarded to the leader it knows, when forwarding
    /// and it came from the client itself, else redirected.
    pub(super) fn turn_away(&mut self, request: ClientRequest) {
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
    pub(super) fn flush(&mut self, now: Time) {
        let Role::Leading { ballot } = self.role else {
            return;
        };
        while !self.queue.is_empty()
            && (self.open_batches.len() < self.config.pipeline
                || self.queue.len() >= self.config.batch)
        {
            let take = batch_len(self.queue.values(), self.config.batch);
            let requests = self.queue.drain(take);
            let entries = requests.into_iter().map(|r| self.assign(r)).collect();
            self.send_batch(now, ballot, entries);
        }
    }

    pub(super) fn send_batch(
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
    pub(super) fn phase2_targets(&self) -> To {
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

    pub(super) fn handle_accepted_batch(&mut self, now: Time, accepted: &AcceptedBatch) {
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
    pub(super) fn retransmit(&mut self, now: Time, ballot: ProposalId) {
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
        for chunk in batches(stale, self.config.batch, |(_, value)| value) {
            self.send(
                To::AllNodes,
                Message::AcceptBatch(AcceptBatch {
                    ballot,
                    from: self.id,
                    entries: chunk,
                    commits: Vec::new(),
                }),
            );
        }
    }
}
