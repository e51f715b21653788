//! Multi-Paxos on the acceptor: one durable global promise that covers every instance, set by a
//! PREPARE-ALL, phase 2 in batches under the leader's ballot, and commit notices that tell the
//! node's learner what was chosen. The per-instance rules are unchanged: an instance
//! is bound by the higher of its own promise and the global one.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::{Acceptor, Slot};
use crate::message::{
    AcceptBatch, AcceptedBatch, Heartbeat, Message, PrepareAll, PromiseAll, Refused,
};
use crate::transmit::{Address, To, Transmit};
use crate::types::{Instance, NodeId, ProposalId, Value};

/// What Multi-Paxos keeps durable beside an acceptor's records: the global promise a
/// PROMISE-ALL made, and the chosen prefix per key that keeps a restarted node's PROMISE-ALL
/// the size of the work in flight.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RangedState {
    /// No instance accepts a ballot below it.
    pub global_promise: ProposalId,
    /// Per key, the slot below which every slot is known chosen, sorted by key: a lower bound,
    /// since it is written at most once per [`super::CHOSEN_PREFIX_PERIOD`] unless the global
    /// promise changes.
    pub chosen_prefix: Vec<(u64, u64)>,
}

impl Acceptor {
    /// The state to persist beside the records: the global promise and the chosen prefix.
    pub fn ranged_state(&self) -> RangedState {
        RangedState {
            global_promise: self.global,
            chosen_prefix: self.chosen_prefix(),
        }
    }

    /// Restores what [`Acceptor::ranged_state`] gave before a crash.
    pub fn restore_ranged(&mut self, ranged: &RangedState) {
        self.restore_global_promise(ranged.global_promise);
        self.raise_chosen_prefix(&ranged.chosen_prefix);
    }

    /// The global promise: no instance accepts a ballot below it.
    pub fn global_promise(&self) -> ProposalId {
        self.global
    }

    /// Restores the global promise a restarting acceptor had persisted.
    pub fn restore_global_promise(&mut self, ballot: ProposalId) {
        self.global = self.global.max(ballot);
    }

    /// Per key, the slot below which this acceptor knows every slot chosen, sorted by key.
    /// Chosen is forever, so a copy persisted at any time stays true: a restarted node that
    /// restores it reports only the slots above it.
    pub fn chosen_prefix(&self) -> Vec<(u64, u64)> {
        let mut prefix: Vec<(u64, u64)> =
            self.chosen_through.iter().map(|(k, t)| (*k, *t)).collect();
        prefix.sort_unstable();
        prefix
    }

    /// Raises the chosen prefix to what a persisted copy or a leader's heartbeat says is
    /// known chosen, then past the slots above it that commit notices marked; a prefix never
    /// moves back.
    pub fn raise_chosen_prefix(&mut self, prefix: &[(u64, u64)]) {
        for (key, through) in prefix {
            let known = self.chosen_through.entry(*key).or_insert(*through);
            *known = (*known).max(*through);
            self.advance_chosen_through(*key);
        }
    }

    /// A leader's heartbeat: its commit notices, then its chosen prefixes. Returns the values
    /// the notices say are chosen that this acceptor holds, for its learner.
    pub fn handle_heartbeat(&mut self, heartbeat: &Heartbeat) -> Vec<(Instance, Value)> {
        let chosen = self.handle_commits(heartbeat.ballot, &heartbeat.commits);
        self.raise_chosen_prefix(&heartbeat.chosen_through);
        chosen
    }

    /// Whether `instance` lies below its key's chosen prefix: its state can leave memory
    /// without a PROMISE-ALL needing it, since the prefix speaks for it.
    pub fn is_settled(&self, instance: Instance) -> bool {
        self.chosen_through
            .get(&instance.key)
            .is_some_and(|through| instance.slot < *through)
    }

    /// Multi-Paxos phase 1b: promise `ballot` on every instance unless a higher global promise
    /// was made, reporting each accepted proposal at or above the slots the would-be leader
    /// knows chosen, and each key's highest accepted slot. The reply waits for the global
    /// promise to be durable.
    pub fn handle_prepare_all(&mut self, prepare: &PrepareAll) {
        self.stats.prepares += 1;
        if prepare.ballot < self.global {
            self.refuse(prepare.ballot, prepare.from);
            return;
        }
        if prepare.ballot > self.global {
            self.global = prepare.ballot;
            self.global_dirty = true;
        }
        self.stats.promises += 1;
        let known: FxHashMap<u64, u64> = prepare.known.iter().copied().collect();
        let mut accepted = Vec::new();
        let mut high_slots: FxHashMap<u64, u64> = FxHashMap::default();
        for (instance, slot) in &self.slots {
            let Some((id, value)) = &slot.state.accepted else {
                continue;
            };
            let high = high_slots.entry(instance.key).or_insert(instance.slot);
            *high = (*high).max(instance.slot);
            // Below either prefix the slot is chosen, and the reply says so through
            // `chosen_through`: the campaigner never re-proposes there, so the value is
            // not needed, and the report stays the size of the work in flight.
            let campaigner = known.get(&instance.key).copied().unwrap_or(0);
            let own = self.chosen_through.get(&instance.key).copied().unwrap_or(0);
            if instance.slot >= campaigner.max(own) {
                accepted.push((*instance, *id, value.clone()));
            }
        }
        // Sorted, so that a reply does not depend on the map's history.
        accepted.sort_unstable_by_key(|(instance, _, _)| *instance);
        // A key whose slots all left memory (below the prefix, on a node) still has its
        // highest slot reported: the new leader must never give a chosen slot again.
        for (key, through) in &self.chosen_through {
            if *through > 0 {
                let high = high_slots.entry(*key).or_insert(through - 1);
                *high = (*high).max(through - 1);
            }
        }
        // Only what the campaigner does not know already: a key whose highest slot lies below
        // the campaigner's prefix adds nothing, nor a prefix no longer than its own. A live
        // campaigner knows almost everything, so the reply stays small however many keys were
        // written (at 200,000 keys the full report took elections past their timeouts).
        let beyond = |key: &u64, slot: u64| slot >= known.get(key).copied().unwrap_or(0);
        let mut high_slots: Vec<(u64, u64)> = high_slots
            .into_iter()
            .filter(|(key, high)| beyond(key, *high))
            .collect();
        high_slots.sort_unstable();
        let mut chosen_through: Vec<(u64, u64)> = self
            .chosen_through
            .iter()
            .filter(|(key, through)| **through > known.get(key).copied().unwrap_or(0))
            .map(|(key, through)| (*key, *through))
            .collect();
        chosen_through.sort_unstable();
        self.after_persist.push(Transmit {
            from: Address::Node(self.id),
            to: To::Node(prepare.from),
            message: Message::PromiseAll(PromiseAll {
                ballot: prepare.ballot,
                from: self.id,
                accepted,
                high_slots,
                chosen_through,
                answers: crate::message::known_digest(&prepare.known),
            }),
        });
    }

    /// Multi-Paxos phase 2b: accept every entry whose instance's promise is at most `ballot`,
    /// note the commit notices, and acknowledge the accepted instances once durable. Returns
    /// the values the notices say are chosen that this acceptor holds, for its learner.
    pub fn handle_accept_batch(&mut self, batch: &AcceptBatch) -> Vec<(Instance, Value)> {
        self.stats.accept_requests += batch.entries.len() as u64;
        if batch.ballot < self.global {
            self.stats.rejections += batch.entries.len() as u64;
            self.refuse(batch.ballot, batch.from);
            return Vec::new();
        }
        let mut instances = Vec::with_capacity(batch.entries.len());
        for (instance, value) in &batch.entries {
            let slot = self.slots.entry(*instance).or_default();
            if batch.ballot < slot.state.promised {
                // Only a vanilla proposer can have raised one instance above the global
                // promise; that instance is not this leader's to decide.
                self.stats.rejections += 1;
                continue;
            }
            let unchanged = slot.state.promised == batch.ballot
                && slot
                    .state
                    .accepted
                    .as_ref()
                    .is_some_and(|(id, v)| *id == batch.ballot && v == value);
            if !unchanged {
                slot.state.promised = batch.ballot;
                slot.state.accepted = Some((batch.ballot, value.clone()));
                slot.committed = false;
                if !slot.dirty {
                    slot.dirty = true;
                    self.dirty.push(*instance);
                }
            }
            self.stats.accepts += 1;
            instances.push(*instance);
        }
        if !instances.is_empty() {
            self.after_persist.push(Transmit {
                from: Address::Node(self.id),
                to: To::Node(batch.from),
                message: Message::AcceptedBatch(AcceptedBatch {
                    ballot: batch.ballot,
                    from: self.id,
                    instances,
                }),
            });
        }
        self.handle_commits(batch.ballot, &batch.commits)
    }

    /// Commit notices: each instance whose accepted proposal is `ballot`'s is chosen. Returns
    /// those instances with their values. Notices change nothing durable.
    pub fn handle_commits(
        &mut self,
        ballot: ProposalId,
        commits: &[Instance],
    ) -> Vec<(Instance, Value)> {
        let mut chosen = Vec::new();
        for instance in commits {
            if let Some(Slot {
                state, committed, ..
            }) = self.slots.get_mut(instance)
                && let Some((id, value)) = &state.accepted
                && *id == ballot
                && !*committed
            {
                *committed = true;
                chosen.push((*instance, value.clone()));
                self.advance_chosen_through(instance.key);
            }
        }
        chosen
    }

    /// Moves `key`'s chosen prefix past every slot now marked committed.
    fn advance_chosen_through(&mut self, key: u64) {
        let through = self.chosen_through.entry(key).or_insert(0);
        while self
            .slots
            .get(&Instance::new(key, *through))
            .is_some_and(|slot| slot.committed)
        {
            *through += 1;
        }
    }

    /// A leader's ballot is below the global promise: tell it at once, so it steps down. The
    /// refusal promises nothing and needs no disk.
    fn refuse(&mut self, ballot: ProposalId, leader: NodeId) {
        self.stats.rejections += 1;
        self.unpersisted.push(Transmit {
            from: Address::Node(self.id),
            to: To::Node(leader),
            message: Message::Refused(Refused {
                ballot,
                promised: self.global,
                from: self.id,
            }),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acceptor::{AcceptorConfig, Record};
    use crate::message::{AcceptRequest, Prepare};
    use crate::types::ProposerId;

    const LEADER: NodeId = NodeId(2);

    fn ballot(round: u64) -> ProposalId {
        ProposalId::new(round, LEADER.0)
    }

    fn prepare_all(round: u64) -> PrepareAll {
        PrepareAll {
            ballot: ballot(round),
            from: LEADER,
            known: vec![(7, 1)],
        }
    }

    fn batch(
        round: u64,
        entries: &[(u64, u64, &'static str)],
        commits: &[(u64, u64)],
    ) -> AcceptBatch {
        AcceptBatch {
            ballot: ballot(round),
            from: LEADER,
            entries: entries
                .iter()
                .map(|(k, s, v)| (Instance::new(*k, *s), Value::from_static(v.as_bytes())))
                .collect(),
            commits: commits.iter().map(|(k, s)| Instance::new(*k, *s)).collect(),
        }
    }

    /// What `a` answers a PREPARE-ALL at `round` from a campaigner that knows `known` chosen.
    fn promise_all(a: &mut Acceptor, round: u64, known: &[(u64, u64)]) -> PromiseAll {
        a.handle_prepare_all(&PrepareAll {
            ballot: ballot(round),
            from: LEADER,
            known: known.to_vec(),
        });
        let (_, _, out) = replies(a);
        match out.into_iter().next() {
            Some(Message::PromiseAll(p)) => p,
            other => panic!("{other:?}"),
        }
    }

    fn replies(a: &mut Acceptor) -> (Option<ProposalId>, Vec<Record>, Vec<Message>) {
        let mut ready = a.ready();
        let mut out: Vec<Message> = ready
            .take_unpersisted_messages()
            .into_iter()
            .map(|o| o.message)
            .collect();
        let global = ready.global_promise();
        let records = ready.records().to_vec();
        out.extend(ready.persisted().into_iter().map(|o| o.message));
        (global, records, out)
    }

    #[test]
    fn a_ranged_promise_is_durable_before_it_is_sent_and_covers_every_instance() {
        let mut a = Acceptor::new(NodeId(1), AcceptorConfig::default());
        a.handle_prepare_all(&prepare_all(3));
        let mut ready = a.ready();
        assert_eq!(ready.global_promise(), Some(ballot(3)));
        assert!(
            ready.take_unpersisted_messages().is_empty(),
            "waits for the disk"
        );
        assert!(
            matches!(&ready.persisted()[0].message, Message::PromiseAll(p) if p.ballot == ballot(3))
        );
        // A vanilla request on an instance never seen is below the global promise.
        a.handle_prepare(&Prepare {
            instance: Instance::new(9, 9),
            id: ProposalId::new(2, 0),
            from: ProposerId(1),
        });
        a.handle_accept_request(&AcceptRequest {
            instance: Instance::new(9, 9),
            id: ProposalId::new(3, 0),
            value: Value::from_static(b"v"),
            from: ProposerId(1),
        });
        let (_, records, out) = replies(&mut a);
        assert!(records.is_empty() && out.is_empty(), "{out:?}");
        assert_eq!(a.stats().rejections, 2);
    }

    #[test]
    fn a_lower_ballot_is_refused_at_once_and_a_repeat_is_promised_again() {
        let mut a = Acceptor::new(NodeId(1), AcceptorConfig::default());
        a.handle_prepare_all(&prepare_all(5));
        let _ = replies(&mut a);
        a.handle_prepare_all(&prepare_all(4));
        a.handle_accept_batch(&batch(4, &[(1, 0, "x")], &[]));
        let (global, records, out) = replies(&mut a);
        assert_eq!((global, records.len()), (None, 0));
        assert!(
            out.iter()
                .all(|m| matches!(m, Message::Refused(r) if r.promised == ballot(5))),
            "{out:?}"
        );
        assert_eq!(out.len(), 2);
        a.handle_prepare_all(&prepare_all(5));
        let (global, _, out) = replies(&mut a);
        assert_eq!(global, None, "nothing new to persist");
        assert!(matches!(&out[..], [Message::PromiseAll(_)]));
    }

    #[test]
    fn a_ranged_promise_reports_what_the_leader_does_not_know_chosen_and_the_highest_slots() {
        let mut a = Acceptor::new(NodeId(1), AcceptorConfig::default());
        a.handle_prepare_all(&prepare_all(1));
        a.handle_accept_batch(&batch(1, &[(7, 0, "a"), (7, 1, "b"), (8, 4, "c")], &[]));
        let (_, records, out) = replies(&mut a);
        assert_eq!(records.len(), 3);
        assert!(matches!(&out[1], Message::AcceptedBatch(b) if b.instances.len() == 3));
        // Slot 7/0 is chosen under ballot 1; the notice rides on the next batch. The leader
        // to come knows it (its PREPARE-ALL says key 7 is known chosen below slot 1).
        let chosen = a.handle_accept_batch(&batch(1, &[], &[(7, 0), (9, 9)]));
        assert_eq!(
            chosen,
            vec![(Instance::new(7, 0), Value::from_static(b"a"))]
        );
        a.handle_prepare_all(&prepare_all(2));
        let (global, _, out) = replies(&mut a);
        assert_eq!(global, Some(ballot(2)));
        let Message::PromiseAll(p) = &out[0] else {
            panic!("{out:?}")
        };
        let reported: Vec<Instance> = p.accepted.iter().map(|(i, _, _)| *i).collect();
        assert_eq!(reported, [Instance::new(7, 1), Instance::new(8, 4)]);
        assert!(p.accepted.iter().all(|(_, id, _)| *id == ballot(1)));
        assert_eq!(
            p.high_slots,
            [(7, 1), (8, 4)],
            "chosen slots count for the next slot"
        );
        assert!(
            p.chosen_through.is_empty(),
            "the campaigner already knows key 7 below slot 1: {:?}",
            p.chosen_through
        );
        // A campaigner that knows nothing (it restarted) still hears nothing below the
        // promiser's own prefix, only the prefix: the report stays the size of the work in
        // flight, not of the run.
        let p = &promise_all(&mut a, 3, &[]);
        let reported: Vec<Instance> = p.accepted.iter().map(|(i, _, _)| *i).collect();
        assert_eq!(reported, [Instance::new(7, 1), Instance::new(8, 4)]);
        assert_eq!(p.chosen_through, [(7, 1)]);
        // A campaigner that knows more hears only what lies beyond it.
        let p = &promise_all(&mut a, 4, &[(7, 5), (8, 2)]);
        assert_eq!(p.high_slots, [(8, 4)]);
        assert!(p.chosen_through.is_empty());
        let reported: Vec<Instance> = p.accepted.iter().map(|(i, _, _)| *i).collect();
        assert_eq!(reported, [Instance::new(8, 4)]);
    }

    #[test]
    fn a_leaders_prefix_gets_a_restarted_acceptors_prefix_moving_again() {
        // Restarted holding slots 0..3 of key 7, whose commit notices it missed.
        let records = [0, 1, 2].map(|slot| Record {
            instance: Instance::new(7, slot),
            state: crate::acceptor::AcceptorState {
                promised: ballot(1),
                accepted: Some((ballot(1), Value::from_static(b"v"))),
            },
        });
        let mut a = Acceptor::restore(NodeId(1), AcceptorConfig::default(), records);
        a.handle_accept_batch(&batch(1, &[(7, 3, "w")], &[]));
        let heartbeat = |commits: Vec<Instance>, chosen_through: Vec<(u64, u64)>| Heartbeat {
            ballot: ballot(1),
            from: LEADER,
            commits,
            chosen_through,
        };
        let learned = a.handle_heartbeat(&heartbeat(vec![Instance::new(7, 3)], vec![]));
        assert_eq!(learned.len(), 1);
        assert_eq!(a.chosen_prefix(), [(7, 0)], "slots 0..3 hold it back");
        a.handle_heartbeat(&heartbeat(vec![], vec![(7, 3)]));
        assert_eq!(
            a.chosen_prefix(),
            [(7, 4)],
            "the leader's prefix, then the slot the notice marked"
        );
        assert!(a.is_settled(Instance::new(7, 3)));
    }

    #[test]
    fn a_restored_chosen_prefix_shortens_the_report_and_never_moves_back() {
        let records = [(7, 0, "a"), (7, 1, "b"), (7, 2, "c")].map(|(key, slot, v)| Record {
            instance: Instance::new(key, slot),
            state: crate::acceptor::AcceptorState {
                promised: ballot(1),
                accepted: Some((ballot(1), Value::from_static(v.as_bytes()))),
            },
        });
        let mut a = Acceptor::restore(NodeId(1), AcceptorConfig::default(), records);
        a.raise_chosen_prefix(&[(7, 2)]);
        a.raise_chosen_prefix(&[(7, 1)]);
        assert_eq!(a.chosen_prefix(), [(7, 2)]);
        assert!(a.is_settled(Instance::new(7, 1)));
        assert!(!a.is_settled(Instance::new(7, 2)));
        assert!(!a.is_settled(Instance::new(8, 0)));
        let p = &promise_all(&mut a, 2, &[]);
        let reported: Vec<Instance> = p.accepted.iter().map(|(i, _, _)| *i).collect();
        assert_eq!(reported, [Instance::new(7, 2)]);
        assert_eq!(p.high_slots, [(7, 2)]);
        assert_eq!(p.chosen_through, [(7, 2)]);
        // Every slot of key 7 left memory, as a node evicts settled states: the prefix still
        // names the key's highest slot.
        for slot in 0..3 {
            a.forget(Instance::new(7, slot));
        }
        a.raise_chosen_prefix(&[(7, 3)]);
        let p = &promise_all(&mut a, 3, &[]);
        assert!(p.accepted.is_empty());
        assert_eq!(p.high_slots, [(7, 2)]);
    }

    #[test]
    fn the_effective_promise_is_the_higher_of_the_instances_and_the_global() {
        let mut a = Acceptor::new(NodeId(1), AcceptorConfig::default());
        // A vanilla proposer promised instance 1/0 at round 9.
        a.handle_prepare(&Prepare {
            instance: Instance::new(1, 0),
            id: ProposalId::new(9, 0),
            from: ProposerId(1),
        });
        a.handle_prepare_all(&prepare_all(5));
        let _ = replies(&mut a);
        a.handle_accept_batch(&batch(5, &[(1, 0, "low"), (1, 1, "ok")], &[]));
        let (_, records, out) = replies(&mut a);
        assert_eq!(records.len(), 1, "only the instance not promised higher");
        assert!(
            matches!(&out[..], [Message::AcceptedBatch(b)] if b.instances == [Instance::new(1, 1)])
        );
        assert_eq!(
            a.state(Instance::new(1, 0)).unwrap().promised,
            ProposalId::new(9, 0)
        );
    }

    #[test]
    fn a_restored_global_promise_still_binds() {
        let mut a = Acceptor::restore(NodeId(1), AcceptorConfig::default(), Vec::new());
        a.restore_global_promise(ballot(4));
        a.handle_prepare_all(&prepare_all(3));
        let (_, _, out) = replies(&mut a);
        assert!(matches!(&out[..], [Message::Refused(_)]));
        assert_eq!(a.global_promise(), ballot(4));
    }
}
