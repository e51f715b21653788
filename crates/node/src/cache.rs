//! Which acceptor states a node holds in memory. Instances enter when a request needs them and
//! leave oldest first once the acceptor holds more than the capacity, but only when their last
//! write is in the checkpoint, where the node can read them back.
//!
//! It also knows, per key, the highest slot it forgot, so a request for a fresh instance (the
//! common case: a new write to a key) never searches the store. That map is bounded by the key
//! space, not by the number of decisions.

use std::collections::VecDeque;

use paxbench_core::Instance;
use paxbench_core::acceptor::Record;
use paxbench_core::host::NodeHost;
use rustc_hash::FxHashMap;

/// A write handed to storage whose commit has not returned: never forgotten.
const IN_FLIGHT: u64 = u64::MAX;
/// Instances that cannot leave yet, passed over in a row before eviction gives up for this
/// turn: the work per turn stays bounded when the checkpoint lags.
const MAX_PASSED_OVER: usize = 64;
/// Instances forgotten per turn at most. A checkpoint makes tens of thousands evictable at
/// once; forgetting them all in one turn stalled the node for milliseconds (p99 at 256
/// proposers 16 ms against 7.6 ms on redb). A node takes hundreds of turns a second, so the
/// backlog still drains within a fraction of a second.
const MAX_EVICTED_PER_TURN: usize = 1024;

/// The eviction policy beside an [`Acceptor`]. See the [module documentation](self).
#[derive(Debug)]
pub struct InstanceCache {
    capacity: usize,
    /// Instances held, in the order they entered.
    order: VecDeque<Instance>,
    /// The log position of each held instance's last durable write (0: never written here).
    written: FxHashMap<Instance, u64>,
    evicted: u64,
    most_held: usize,
    /// Per key, the highest slot forgotten (`None`: the store holds no slot of it).
    forgotten: FxHashMap<u64, Option<u64>>,
    /// Whether the store held states before this process started, so a key missing from
    /// `forgotten` may still be there.
    store_predates: bool,
}

/// Whether a state may be in the store, or the store must be asked for a key's highest slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// It may be: read it.
    Maybe,
    /// It cannot be: the instance is fresh.
    No,
    /// Unknown since the restart: ask the store for the key's highest slot, then
    /// [`InstanceCache::learn`] it.
    AskForKey,
}

impl InstanceCache {
    /// A cache that keeps the acceptor at about `capacity` instances.
    pub fn new(capacity: usize, store_predates: bool) -> Self {
        Self {
            capacity: capacity.max(1),
            order: VecDeque::new(),
            written: FxHashMap::default(),
            evicted: 0,
            most_held: 0,
            forgotten: FxHashMap::default(),
            store_predates,
        }
    }

    /// Whether `instance`, not held in memory, may be in the store.
    pub fn stored(&self, instance: Instance) -> Stored {
        match self.forgotten.get(&instance.key) {
            Some(Some(max)) if instance.slot <= *max => Stored::Maybe,
            Some(_) => Stored::No,
            None if self.store_predates => Stored::AskForKey,
            None => Stored::No,
        }
    }

    /// Notes the highest slot of `key` the store held, as the store said.
    pub fn learn(&mut self, key: u64, max_slot: Option<u64>) {
        let known = self.forgotten.entry(key).or_insert(None);
        *known = (*known).max(max_slot);
    }

    /// Notes an instance the acceptor just started to hold.
    pub fn admit(&mut self, instance: Instance) {
        if self.written.insert(instance, 0).is_none() {
            self.order.push_back(instance);
        }
    }

    /// Notes records handed to storage: they stay until their commit returns.
    pub fn committing(&mut self, records: &[Record]) {
        for record in records {
            self.mark(record.instance, IN_FLIGHT);
        }
    }

    /// Notes records made durable at log positions up to `position`.
    pub fn committed(&mut self, records: &[Record], position: u64) {
        for record in records {
            self.mark(record.instance, position);
        }
    }

    fn mark(&mut self, instance: Instance, position: u64) {
        match self.written.get_mut(&instance) {
            Some(written) => *written = position,
            None => {
                self.written.insert(instance, position);
                self.order.push_back(instance);
            }
        }
    }

    /// Forgets the oldest instances while the host holds more than the capacity and their
    /// last write is at or before `checkpointed`, as far as the host's protocol lets them
    /// leave ([`NodeHost::forget`]).
    pub fn evict(&mut self, host: &mut NodeHost, checkpointed: u64) {
        self.most_held = self.most_held.max(host.held());
        let mut passed_over = 0;
        let mut evicted = 0;
        while host.held() > self.capacity
            && passed_over < MAX_PASSED_OVER
            && evicted < MAX_EVICTED_PER_TURN
        {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            let written = self.written.get(&oldest).copied().unwrap_or(0);
            if written <= checkpointed && host.forget(oldest) {
                self.written.remove(&oldest);
                self.evicted += 1;
                evicted += 1;
                self.learn(oldest.key, Some(oldest.slot));
            } else {
                self.order.push_back(oldest);
                passed_over += 1;
            }
        }
    }

    /// Instances forgotten so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// The most instances the acceptor held at once.
    pub fn most_held(&self) -> usize {
        self.most_held
    }
}

#[cfg(test)]
mod tests {
    use paxbench_core::acceptor::{AcceptorConfig, AcceptorState, RangedState};
    use paxbench_core::host::NodeHostConfig;
    use paxbench_core::leader::LeaderConfig;
    use paxbench_core::message::{Message, Prepare};
    use paxbench_core::transmit::Address;
    use paxbench_core::{NodeId, ProposalId, ProposerId, ProtocolConfig, Time};

    use super::*;

    fn host(protocol: ProtocolConfig, records: Vec<Record>, prefix: Vec<(u64, u64)>) -> NodeHost {
        let config = NodeHostConfig {
            id: NodeId(1),
            members: vec![NodeId(1)],
            acceptor: AcceptorConfig::default(),
            phase2_quorum: 1,
            protocol,
            seed: 1,
        };
        let ranged = RangedState {
            global_promise: ProposalId::ZERO,
            chosen_prefix: prefix,
        };
        NodeHost::restore(config, records, &ranged).unwrap()
    }

    fn vanilla() -> NodeHost {
        host(ProtocolConfig::Vanilla, Vec::new(), Vec::new())
    }

    fn prepare(host: &mut NodeHost, cache: &mut InstanceCache, key: u64) -> Vec<Record> {
        let instance = Instance::new(key, 0);
        if !host.holds(instance) {
            cache.admit(instance);
        }
        let prepare = Message::Prepare(Prepare {
            instance,
            id: ProposalId::new(1, 1),
            from: ProposerId(1),
        });
        host.handle(Time::ZERO, Address::Proposer(ProposerId(1)), &prepare)
            .unwrap();
        let ready = host.ready(Time::ZERO).unwrap();
        let records = ready.records().to_vec();
        cache.committing(&records);
        host.persisted(ready);
        records
    }

    #[test]
    fn only_checkpointed_instances_leave_and_the_acceptor_stays_at_the_bound() {
        let mut node = vanilla();
        let mut cache = InstanceCache::new(10, false);
        assert_eq!(cache.stored(Instance::new(0, 0)), Stored::No);
        for key in 0..30 {
            let records = prepare(&mut node, &mut cache, key);
            cache.committed(&records, key + 1);
            cache.evict(&mut node, 0);
        }
        assert_eq!(
            node.held(),
            30,
            "nothing is checkpointed: nothing may leave"
        );
        cache.evict(&mut node, 25);
        assert_eq!(node.held(), 10);
        // Turns forget a bounded number each; the backlog drains over a few.
        let mut cache = InstanceCache::new(10, false);
        let mut big = vanilla();
        for key in 0..3000 {
            let records = prepare(&mut big, &mut cache, key);
            cache.committed(&records, key + 1);
        }
        cache.evict(&mut big, 3000);
        assert_eq!(big.held(), 3000 - MAX_EVICTED_PER_TURN);
        cache.evict(&mut big, 3000);
        cache.evict(&mut big, 3000);
        assert_eq!(big.held(), 10);
        assert!(node.holds(Instance::new(29, 0)) && !node.holds(Instance::new(0, 0)));
        // Forgotten instances may be read back; a later slot of the same key is fresh.
        assert_eq!(cache.stored(Instance::new(0, 0)), Stored::Maybe);
        assert_eq!(cache.stored(Instance::new(0, 1)), Stored::No);
        // After a restart over a store with data, a key is unknown until the store is asked.
        let mut restarted = InstanceCache::new(10, true);
        assert_eq!(restarted.stored(Instance::new(5, 3)), Stored::AskForKey);
        restarted.learn(5, Some(2));
        assert_eq!(restarted.stored(Instance::new(5, 3)), Stored::No);
        assert_eq!(restarted.stored(Instance::new(5, 2)), Stored::Maybe);
        restarted.learn(6, None);
        assert_eq!(restarted.stored(Instance::new(6, 0)), Stored::No);
        // A commit in flight is never forgotten, whatever the checkpoint says.
        let mut cache = InstanceCache::new(1, false);
        let mut node = vanilla();
        for key in [1, 2] {
            let instance = Instance::new(key, 0);
            cache.admit(instance);
            cache.committing(&[Record {
                instance,
                state: AcceptorState::default(),
            }]);
            node.load(Record {
                instance,
                state: AcceptorState::default(),
            });
        }
        cache.evict(&mut node, u64::MAX - 1);
        assert_eq!((node.held(), cache.evicted()), (2, 0));
        assert_eq!(cache.most_held(), 2);
    }

    #[test]
    fn under_multi_paxos_only_settled_instances_leave() {
        let multi = || ProtocolConfig::MultiPaxos(LeaderConfig::new(vec![NodeId(1)]));
        let records: Vec<Record> = (0..4)
            .map(|key| Record {
                instance: Instance::new(key, 0),
                state: AcceptorState::default(),
            })
            .collect();
        let fill = |cache: &mut InstanceCache| {
            for (position, record) in (1..).zip(&records) {
                cache.admit(record.instance);
                cache.committed(std::slice::from_ref(record), position);
            }
        };
        let mut node = host(multi(), records.clone(), Vec::new());
        let mut cache = InstanceCache::new(1, false);
        fill(&mut cache);
        cache.evict(&mut node, 10);
        assert_eq!(node.held(), 4, "no key has a chosen prefix: all stay");
        let mut node = host(multi(), records.clone(), vec![(0, 1), (2, 1)]);
        let mut cache = InstanceCache::new(1, false);
        fill(&mut cache);
        cache.evict(&mut node, 10);
        assert_eq!(node.held(), 2);
        assert!(node.holds(Instance::new(1, 0)) && node.holds(Instance::new(3, 0)));
        // The same states under vanilla Paxos leave down to the capacity.
        let mut node = host(ProtocolConfig::Vanilla, records.clone(), Vec::new());
        let mut cache = InstanceCache::new(1, false);
        fill(&mut cache);
        cache.evict(&mut node, 10);
        assert_eq!(node.held(), 1);
    }
}
