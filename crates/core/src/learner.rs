//! The learner: counts ACCEPTED messages per `(instance, proposal ID)` and announces the value
//! once a majority of distinct acceptors accepted the same proposal. After that the instance's
//! tallies are dropped; only the chosen value is kept.

use rustc_hash::FxHashMap;

use crate::message::Accepted;
use crate::types::{Instance, NodeId, ProposalId, Value, quorum};

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
    instances: FxHashMap<Instance, Progress>,
}

impl Learner {
    /// A learner for a cluster of `acceptors` acceptors.
    pub fn new(acceptors: usize) -> Self {
        Self {
            quorum: quorum(acceptors),
            instances: FxHashMap::default(),
        }
    }

    /// Counts one ACCEPTED; duplicates from the same acceptor count once.
    pub fn handle_accepted(&mut self, accepted: &Accepted) -> Option<Chosen> {
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
        Some(Chosen {
            instance: accepted.instance,
            id: accepted.id,
            value: accepted.value.clone(),
        })
    }

    /// The value chosen for `instance`, once this learner has seen it.
    pub fn chosen(&self, instance: Instance) -> Option<&Value> {
        match self.instances.get(&instance) {
            Some(Progress::Chosen(_, value)) => Some(value),
            _ => None,
        }
    }

    /// How many instances it has seen decided.
    pub fn chosen_count(&self) -> usize {
        self.instances
            .values()
            .filter(|p| matches!(p, Progress::Chosen(..)))
            .count()
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
    fn five_acceptors_need_three() {
        let mut l = Learner::new(5);
        assert_eq!(l.handle_accepted(&accepted(1, 1, "x")), None);
        assert_eq!(l.handle_accepted(&accepted(2, 1, "x")), None);
        assert!(l.handle_accepted(&accepted(3, 1, "x")).is_some());
    }
}
