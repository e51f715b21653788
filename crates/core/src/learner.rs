//! The learner: counts ACCEPTED messages per `(instance, proposal ID)` and announces the value
//! once a quorum (a majority, or a flexible phase-2 quorum) of distinct acceptors accepted the
//! same proposal. Memory is bounded: it keeps the most recent instances it heard of (tallies, or
//! the chosen value) and a count of the rest.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::message::Accepted;
use crate::types::{Instance, NodeId, ProposalId, Value, quorum};

/// Instances a learner remembers by default. ACCEPTED messages of one instance arrive within a
/// round trip of each other, so this covers every instance in flight many times over; an
/// instance older than that is forgotten, and a late ACCEPTED for it starts a fresh tally that
/// a lone straggler cannot bring to a majority again.
pub const RECENT_INSTANCES: usize = 1 << 16;

/// A value the learner saw chosen.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Chosen {
    /// The instance decided.
    pub instance: Instance,
    /// The proposal that a majority accepted.
    pub id: ProposalId,
    /// The value.
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Progress {
    /// Acceptors that accepted each proposal so far. A handful of proposals compete per instance,
    /// so a vector beats a map.
    Voting(Vec<(ProposalId, Vec<NodeId>)>),
    Chosen(ProposalId, Value),
}

/// A learner for every instance of one cluster.
///
/// Feed it with [`Learner::handle_accepted`]; it returns the [`Chosen`] value the first time a
/// majority is reached for an instance and `None` otherwise. It holds no durable state: a
/// restarted learner learns again from later ACCEPTED messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Learner {
    quorum: usize,
    capacity: usize,
    instances: FxHashMap<Instance, Progress>,
    /// The instances held, oldest first.
    order: VecDeque<Instance>,
    chosen: u64,
}

impl Learner {
    /// A learner for a cluster of `acceptors` acceptors that remembers [`RECENT_INSTANCES`].
    pub fn new(acceptors: usize) -> Self {
        Self::with_capacity(acceptors, RECENT_INSTANCES)
    }

    /// A learner that remembers the `capacity` most recent instances (at least one).
    pub fn with_capacity(acceptors: usize, capacity: usize) -> Self {
        Self::with_quorum(quorum(acceptors), capacity)
    }

    /// A learner that announces a value once `phase2` distinct acceptors accepted it (a
    /// flexible phase-2 quorum), remembering the `capacity` most recent instances.
    pub fn with_quorum(phase2: usize, capacity: usize) -> Self {
        Self {
            quorum: phase2.max(1),
            capacity: capacity.max(1),
            instances: FxHashMap::default(),
            order: VecDeque::new(),
            chosen: 0,
        }
    }

    /// Counts one ACCEPTED; duplicates from the same acceptor count once.
    pub fn handle_accepted(&mut self, accepted: &Accepted) -> Option<Chosen> {
        if !self.instances.contains_key(&accepted.instance) {
            if self.order.len() >= self.capacity
                && let Some(oldest) = self.order.pop_front()
            {
                self.instances.remove(&oldest);
            }
            self.order.push_back(accepted.instance);
        }
        let progress = self
            .instances
            .entry(accepted.instance)
            .or_insert_with(|| Progress::Voting(Vec::new()));
        let Progress::Voting(tallies) = progress else {
            return None;
        };
        let voters = match tallies.iter_mut().find(|(id, _)| *id == accepted.id) {
            Some((_, voters)) => voters,
            None => {
                tallies.push((accepted.id, Vec::with_capacity(self.quorum)));
                &mut tallies.last_mut()?.1
            }
        };
        if voters.contains(&accepted.from) {
            return None;
        }
        voters.push(accepted.from);
        if voters.len() < self.quorum {
            return None;
        }
        *progress = Progress::Chosen(accepted.id, accepted.value.clone());
        self.chosen += 1;
        Some(Chosen {
            instance: accepted.instance,
            id: accepted.id,
            value: accepted.value.clone(),
        })
    }

    /// The value chosen for `instance`, if this learner saw it and still remembers it.
    pub fn chosen(&self, instance: Instance) -> Option<&Value> {
        match self.instances.get(&instance) {
            Some(Progress::Chosen(_, value)) => Some(value),
            _ => None,
        }
    }

    /// How many instances it has seen decided.
    pub fn chosen_count(&self) -> u64 {
        self.chosen
    }

    /// How many instances it holds in memory (never more than its capacity).
    pub fn held(&self) -> usize {
        self.instances.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const I: Instance = Instance::new(3, 1);

    fn accepted(from: u32, high: u64, value: &'static str) -> Accepted {
        Accepted {
            instance: I,
            id: ProposalId::new(high, 0),
            value: Value::from_static(value.as_bytes()),
            from: NodeId(from),
        }
    }

    #[test]
    fn announces_once_on_a_majority_of_distinct_acceptors() {
        let mut l = Learner::new(3);
        assert_eq!(l.handle_accepted(&accepted(1, 5, "x")), None);
        assert_eq!(
            l.handle_accepted(&accepted(1, 5, "x")),
            None,
            "a duplicate counts once"
        );
        let chosen = l.handle_accepted(&accepted(2, 5, "x")).unwrap();
        assert_eq!(chosen.value, Value::from_static(b"x"));
        assert_eq!(chosen.id, ProposalId::new(5, 0));
        assert_eq!(
            l.handle_accepted(&accepted(3, 5, "x")),
            None,
            "announced once"
        );
        assert_eq!(l.chosen(I), Some(&Value::from_static(b"x")));
        assert_eq!(l.chosen_count(), 1);
    }

    #[test]
    fn votes_for_different_proposals_do_not_add_up() {
        let mut l = Learner::new(3);
        assert_eq!(l.handle_accepted(&accepted(1, 5, "x")), None);
        assert_eq!(l.handle_accepted(&accepted(2, 6, "y")), None);
        assert_eq!(l.chosen(I), None);
        let chosen = l.handle_accepted(&accepted(3, 6, "y")).unwrap();
        assert_eq!(chosen.value, Value::from_static(b"y"));
    }

    #[test]
    fn memory_stays_at_the_capacity_while_the_count_grows() {
        let mut l = Learner::with_capacity(3, 100);
        for key in 0..1_000u64 {
            let mut a = accepted(1, 1, "x");
            a.instance = Instance::new(key, 0);
            assert_eq!(l.handle_accepted(&a), None);
            a.from = NodeId(2);
            assert!(l.handle_accepted(&a).is_some());
            assert!(l.held() <= 100);
        }
        assert_eq!((l.chosen_count(), l.held()), (1_000, 100));
        let mut recent = accepted(3, 1, "x");
        recent.instance = Instance::new(999, 0);
        assert_eq!(
            l.handle_accepted(&recent),
            None,
            "a recent instance is remembered"
        );
        assert_eq!(l.chosen_count(), 1_000);
    }

    #[test]
    fn five_acceptors_need_three() {
        let mut l = Learner::new(5);
        assert_eq!(l.handle_accepted(&accepted(1, 1, "x")), None);
        assert_eq!(l.handle_accepted(&accepted(2, 1, "x")), None);
        assert!(l.handle_accepted(&accepted(3, 1, "x")).is_some());
    }
}
