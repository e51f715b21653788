//! What the proposers did and sent, on every target alike, through the core's `Observer` hooks:
//! attempts, phases, preemptions, duels and livelock windows, message cost, faults and
//! recoveries.

use std::time::Duration;

use hdrhistogram::Histogram;
use paxbench_core::host::Observer;
use paxbench_core::message::Message;
use paxbench_core::proposer::ProposerEvent;
use paxbench_core::sim::{Address, Delivery, Fault, SimObserver};
use paxbench_core::{Instance, NodeId, ProposalId, ProposerIndex, Time};
use rustc_hash::FxHashMap;

use super::ops::{Second, latency_histogram, record_ns, second_of};

#[derive(Clone, Debug, Default)]
struct ProposerState {
    /// Whether the current operation started after the warmup (and so is measured).
    measured: bool,
    attempt_started: Option<Time>,
    promised_at: Option<Time>,
    preemptions_this_op: u32,
    instance: Option<Instance>,
}

#[derive(Clone, Debug, Default)]
struct ContentionState {
    active: Vec<ProposerIndex>,
    ids: Vec<(ProposalId, ProposerIndex)>,
    last_preemption: Option<(ProposerIndex, ProposerIndex)>,
    dueling: bool,
    contended_since: Option<Time>,
}

/// What proposers did and sent, fed through the `Observer` hooks.
#[derive(Debug)]
pub struct ProtocolMetrics {
    warmup_end: Time,
    livelock_window: u64,
    proposers: Vec<ProposerState>,
    instances: FxHashMap<Instance, ContentionState>,
    /// Cleared states of ended instances, reused.
    spare: Vec<ContentionState>,
    /// ATTEMPT to majority PROMISE.
    pub phase1: Histogram<u64>,
    /// Majority PROMISE to a decision of its own.
    pub phase2: Histogram<u64>,
    /// Attempts started (first attempts included).
    pub attempts: u64,
    /// Retries: attempts after the first.
    pub retries: u64,
    /// Preemptions (an attempt abandoned because a higher ID was promised).
    pub preemptions: u64,
    /// Operations with at least one preemption.
    pub ops_preempted: u64,
    /// Operations that ended (measured).
    pub ops_finished: u64,
    /// Phase timeouts.
    pub timeouts: u64,
    /// Time spent backing off, in nanoseconds.
    pub backoff_ns: u128,
    /// `rounds[n]`: operations that took `n` attempts.
    pub rounds: Vec<u64>,
    /// Dueling episodes: two proposers preempting each other in turn on one instance.
    pub duels: u64,
    /// Instances with two or more active proposers and no decision for a whole window.
    pub livelock_windows: u64,
    /// Time spent in such windows, in nanoseconds.
    pub livelock_ns: u128,
    /// Proposal IDs issued and the highest seen, for how fast IDs grow.
    pub first_id: Option<(Time, ProposalId)>,
    /// The highest ID issued.
    pub last_id: Option<(Time, ProposalId)>,
    /// Messages sent by proposers.
    pub messages: u64,
    /// Their framed size in bytes.
    pub bytes: u64,
    /// Messages sent by acceptors (simulator only; real nodes report their own).
    pub acceptor_messages: u64,
    /// Their framed size in bytes.
    pub acceptor_bytes: u64,
    /// Per-second retries and preemptions.
    pub seconds: Vec<Second>,
    /// Faults applied, with their time.
    pub faults: Vec<(Time, String)>,
    /// Heals and restarts, and how long the cluster took to recover from each.
    pub recoveries: Vec<Recovery>,
    /// Per key below [`KEY_RANKS`] (key 0 is the hottest under zipfian and hotspot
    /// distributions): measured operations started, and preemptions.
    pub by_key: Vec<(u64, u64)>,
    /// Per simulated node, by index: what it received, sent and persisted while measuring.
    pub node_load: Vec<NodeLoad>,
}

/// One simulated node's work while measuring: where a leader's load shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeLoad {
    /// Messages received from others.
    pub messages_in: u64,
    /// Messages sent to others.
    pub messages_out: u64,
    /// Framed bytes sent to others.
    pub bytes_out: u64,
    /// Persist batches (fsyncs).
    pub persists: u64,
}

/// A heal or a restart, and how long the cluster took to recover from it.
#[derive(Clone, Debug, PartialEq)]
pub struct Recovery {
    /// When it happened.
    pub at: Time,
    /// What it was.
    pub what: String,
    /// Nodes not heard from since (real targets).
    waiting: Vec<u32>,
    /// The first decision by an attempt that started after it: new work gets through.
    pub first_decision: Option<Time>,
    /// When every node it concerns had answered a proposer again (real targets).
    pub nodes_back: Option<Time>,
    /// Proposers with no decision of an attempt started since, one bit each.
    unserved: Vec<u64>,
    unserved_count: usize,
    /// When every proposer had a decision of an attempt started after it: all clients served.
    pub clients_back: Option<Time>,
}

/// Ended instances' states kept for reuse.
const SPARE_STATES: usize = 1_024;

/// Keys whose contention is reported one by one.
pub const KEY_RANKS: usize = 64;

impl ProtocolMetrics {
    /// Empty, for `proposers` proposers.
    pub fn new(proposers: usize, warmup_end: Time, livelock_window: Duration) -> Self {
        Self {
            warmup_end,
            livelock_window: livelock_window.as_nanos() as u64,
            proposers: vec![ProposerState::default(); proposers],
            instances: FxHashMap::default(),
            spare: Vec::new(),
            phase1: latency_histogram(),
            phase2: latency_histogram(),
            attempts: 0,
            retries: 0,
            preemptions: 0,
            ops_preempted: 0,
            ops_finished: 0,
            timeouts: 0,
            backoff_ns: 0,
            rounds: Vec::new(),
            duels: 0,
            livelock_windows: 0,
            livelock_ns: 0,
            first_id: None,
            last_id: None,
            messages: 0,
            bytes: 0,
            acceptor_messages: 0,
            acceptor_bytes: 0,
            seconds: Vec::new(),
            faults: Vec::new(),
            recoveries: Vec::new(),
            by_key: vec![(0, 0); KEY_RANKS],
            node_load: Vec::new(),
        }
    }

    fn measuring(&self, now: Time) -> bool {
        now >= self.warmup_end
    }

    /// Whether proposer `index`'s current operation is measured: it started after the warmup,
    /// the same rule the workload applies to operation timings.
    fn op_measured(&self, index: usize) -> bool {
        self.proposers.get(index).is_some_and(|p| p.measured)
    }

    fn close_contention(&mut self, now: Time, instance: Instance) {
        if let Some(state) = self.instances.get_mut(&instance)
            && let Some(since) = state.contended_since.take()
        {
            let span = now.0.saturating_sub(since.0);
            if span >= self.livelock_window && self.livelock_window > 0 && now >= self.warmup_end {
                self.livelock_windows += span / self.livelock_window;
                self.livelock_ns += u128::from(span);
            }
        }
    }

    fn op_ended(
        &mut self,
        now: Time,
        proposer: ProposerIndex,
        instance: Instance,
        attempts: u32,
        decided: bool,
    ) {
        let index = proposer.0 as usize;
        let preempted = self
            .proposers
            .get_mut(index)
            .map(|p| {
                p.instance = None;
                std::mem::take(&mut p.preemptions_this_op)
            })
            .unwrap_or(0);
        if self.op_measured(index) {
            self.ops_finished += 1;
            self.ops_preempted += u64::from(preempted > 0);
            let rounds = attempts as usize;
            if self.rounds.len() <= rounds {
                self.rounds.resize(rounds + 1, 0);
            }
            self.rounds[rounds] += 1;
        }
        if decided {
            self.close_contention(now, instance);
        }
        let mut empty = false;
        if let Some(state) = self.instances.get_mut(&instance) {
            state.active.retain(|p| *p != proposer);
            if state.active.len() < 2 {
                let since = state.contended_since;
                if since.is_some() {
                    self.close_contention(now, instance);
                }
            }
            empty = self
                .instances
                .get(&instance)
                .is_none_or(|s| s.active.is_empty());
        }
        if empty && let Some(mut state) = self.instances.remove(&instance) {
            // Its vectors' capacity serves the next instance: an allocation less per attempt.
            state.active.clear();
            state.ids.clear();
            state.last_preemption = None;
            state.dueling = false;
            state.contended_since = None;
            if self.spare.len() < SPARE_STATES {
                self.spare.push(state);
            }
        }
    }

    fn load_of(&mut self, node: u32) -> &mut NodeLoad {
        let index = node as usize;
        if self.node_load.len() <= index {
            self.node_load.resize(index + 1, NodeLoad::default());
        }
        &mut self.node_load[index]
    }

    /// Records a fault of the schedule, for the report and the over-time chart.
    pub fn note_fault(&mut self, now: Time, what: String) {
        self.faults.push((now, what));
    }

    /// Starts timing the recovery from a heal or restart that concerns `nodes` (empty when the
    /// driver cannot tell when a node answers, as in the simulator).
    pub fn start_recovery(&mut self, now: Time, what: String, nodes: Vec<u32>) {
        let proposers = self.proposers.len();
        let mut unserved = vec![u64::MAX; proposers.div_ceil(64)];
        if let Some(last) = unserved.last_mut()
            && !proposers.is_multiple_of(64)
        {
            *last = (1u64 << (proposers % 64)) - 1;
        }
        self.recoveries.push(Recovery {
            at: now,
            what,
            nodes_back: None,
            waiting: nodes,
            first_decision: None,
            unserved,
            unserved_count: proposers,
            clients_back: None,
        });
    }

    /// Node `node` answered a proposer.
    pub fn on_node_reply(&mut self, now: Time, node: u32) {
        for recovery in &mut self.recoveries {
            if recovery.nodes_back.is_none() && !recovery.waiting.is_empty() {
                recovery.waiting.retain(|n| *n != node);
                if recovery.waiting.is_empty() {
                    recovery.nodes_back = Some(now);
                }
            }
        }
    }

    /// Closes contention windows still open at the end of the run.
    pub fn finish(&mut self, now: Time) {
        let open: Vec<Instance> = self.instances.keys().copied().collect();
        for instance in open {
            self.close_contention(now, instance);
        }
    }

    /// Counts a message a proposer sent to `copies` acceptors: its size is measured once.
    pub fn on_broadcast(&mut self, now: Time, message: &Message, copies: u64) {
        if self.measuring(now) {
            let size = Self::framed_size(message);
            self.messages += copies;
            self.bytes += size * copies;
        }
    }

    /// A message's framed size: the frame header, the envelope's variant tag, and the message,
    /// measured without encoding it.
    fn framed_size(message: &Message) -> u64 {
        const FRAME_OVERHEAD: u64 = paxbench_quic::frame::HEADER_LEN as u64 + 1;
        postcard::experimental::serialized_size(message).map_or(0, |n| n as u64) + FRAME_OVERHEAD
    }

    /// Counts a message of `size` framed bytes (see [`Self::framed_size`]).
    fn count_sized(&mut self, size: u64, from_acceptor: bool) {
        if from_acceptor {
            self.acceptor_messages += 1;
            self.acceptor_bytes += size;
        } else {
            self.messages += 1;
            self.bytes += size;
        }
    }
}

impl Observer for ProtocolMetrics {
    fn on_proposer_event(&mut self, now: Time, proposer: ProposerIndex, event: &ProposerEvent) {
        let index = proposer.0 as usize;
        if index >= self.proposers.len() {
            return;
        }
        if let ProposerEvent::AttemptStarted { attempt: 1, .. } = event {
            self.proposers[index].measured = self.measuring(now);
        }
        let measuring = self.op_measured(index);
        match event {
            ProposerEvent::AttemptStarted {
                instance,
                id,
                attempt,
            } => {
                self.proposers[index].attempt_started = Some(now);
                self.proposers[index].promised_at = None;
                // A Multi-Paxos client's request carries no proposal ID: the leader picks the
                // slot, so no two clients share an instance and there is no contention to track.
                let client = *id == ProposalId::ZERO;
                if !client && self.first_id.is_none() {
                    self.first_id = Some((now, *id));
                }
                if !client && self.last_id.is_none_or(|(_, last)| *id > last) {
                    self.last_id = Some((now, *id));
                }
                if measuring
                    && *attempt == 1
                    && let Some(key) = self.by_key.get_mut(instance.key as usize)
                {
                    key.0 += 1;
                }
                if measuring {
                    self.attempts += 1;
                    if *attempt > 1 {
                        self.retries += 1;
                        if let Some(second) = second_of(&mut self.seconds, now, self.warmup_end) {
                            second.retries += 1;
                        }
                    }
                }
                if client {
                    return;
                }
                let spare = &mut self.spare;
                let state = self
                    .instances
                    .entry(*instance)
                    .or_insert_with(|| spare.pop().unwrap_or_default());
                if *attempt == 1 || !state.active.contains(&proposer) {
                    if !state.active.contains(&proposer) {
                        state.active.push(proposer);
                    }
                    self.proposers[index].instance = Some(*instance);
                }
                state.ids.push((*id, proposer));
                if state.active.len() >= 2 && state.contended_since.is_none() {
                    state.contended_since = Some(now);
                }
            }
            ProposerEvent::Promised { .. } => {
                let state = &mut self.proposers[index];
                if let Some(started) = state.attempt_started
                    && measuring
                {
                    record_ns(&mut self.phase1, now.0.saturating_sub(started.0));
                }
                state.promised_at = Some(now);
            }
            ProposerEvent::Preempted { instance, by, .. } => {
                self.proposers[index].preemptions_this_op += 1;
                if measuring && let Some(key) = self.by_key.get_mut(instance.key as usize) {
                    key.1 += 1;
                }
                if measuring {
                    self.preemptions += 1;
                    if let Some(second) = second_of(&mut self.seconds, now, self.warmup_end) {
                        second.preemptions += 1;
                    }
                }
                if let Some(state) = self.instances.get_mut(instance) {
                    let aggressor = state.ids.iter().find(|(id, _)| id == by).map(|(_, p)| *p);
                    if let Some(aggressor) = aggressor.filter(|a| *a != proposer) {
                        let alternates = state.last_preemption == Some((aggressor, proposer));
                        if alternates && !state.dueling {
                            state.dueling = true;
                            if measuring {
                                self.duels += 1;
                            }
                        }
                        state.last_preemption = Some((proposer, aggressor));
                    }
                }
            }
            ProposerEvent::TimedOut { .. } => {
                if measuring {
                    self.timeouts += 1;
                }
            }
            ProposerEvent::BackingOff { delay, .. } => {
                if measuring {
                    self.backoff_ns += delay.as_nanos();
                }
            }
            ProposerEvent::Chosen {
                instance,
                own,
                attempts,
                ..
            } => {
                if let Some(started) = self.proposers[index].attempt_started {
                    for recovery in &mut self.recoveries {
                        if started < recovery.at {
                            continue;
                        }
                        if recovery.first_decision.is_none() {
                            recovery.first_decision = Some(now);
                        }
                        let (word, bit) = (index / 64, 1u64 << (index % 64));
                        if let Some(unserved) = recovery.unserved.get_mut(word)
                            && *unserved & bit != 0
                        {
                            *unserved &= !bit;
                            recovery.unserved_count -= 1;
                            if recovery.unserved_count == 0 {
                                recovery.clients_back = Some(now);
                                // Done with: kill loops must not keep a bitmap per kill.
                                recovery.unserved = Vec::new();
                            }
                        }
                    }
                }
                if *own
                    && measuring
                    && let Some(promised) = self.proposers[index].promised_at
                {
                    record_ns(&mut self.phase2, now.0.saturating_sub(promised.0));
                }
                self.op_ended(now, proposer, *instance, *attempts, true);
            }
            ProposerEvent::GaveUp {
                instance, attempts, ..
            } => {
                self.op_ended(now, proposer, *instance, *attempts, false);
            }
        }
    }
}

impl SimObserver for ProtocolMetrics {
    fn on_send(
        &mut self,
        now: Time,
        from: Address,
        to: Address,
        message: &Message,
        _fate: Delivery,
    ) {
        if self.measuring(now) {
            // Sized once: the encoder's size pass is the costly part of counting.
            let size = Self::framed_size(message);
            self.count_sized(size, matches!(from, Address::Node(_)));
            // What a node sends itself never leaves its process.
            if from != to {
                if let Address::Node(n) = from {
                    let load = self.load_of(n.0);
                    load.messages_out += 1;
                    load.bytes_out += size;
                }
                if let Address::Node(n) = to {
                    self.load_of(n.0).messages_in += 1;
                }
            }
        }
    }

    fn on_persist(&mut self, now: Time, node: NodeId) {
        if self.measuring(now) {
            self.load_of(node.0).persists += 1;
        }
    }

    /// The simulator's faults are noted by the driver from the schedule, under the names the
    /// config gives them; here only recoveries start.
    fn on_fault(&mut self, now: Time, fault: &Fault) {
        match fault {
            Fault::Restart(node) => {
                self.start_recovery(now, format!("restart node {}", node.0 + 1), Vec::new());
            }
            Fault::Heal => self.start_recovery(now, "heal".into(), Vec::new()),
            // A kill is a recovery too: under Multi-Paxos, killing the leader is the
            // unavailability window.
            Fault::Crash(node) => {
                self.start_recovery(now, format!("kill node {}", node.0 + 1), Vec::new());
            }
            Fault::CrashLeader { .. } => {
                self.start_recovery(now, "kill the leader".into(), Vec::new());
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use paxbench_core::message::{Message, Promise};
    use paxbench_core::{Instance, NodeId, ProposalId};
    use paxbench_quic::Envelope;

    use super::*;

    #[test]
    fn counted_sizes_are_the_framed_sizes() {
        let message = Message::Promise(Promise {
            instance: Instance::new(1 << 40, 3),
            id: ProposalId::new(1_790_000_000_000_000_000, 7),
            from: NodeId(2),
            accepted: Some((ProposalId::new(5, 1), Bytes::from(vec![1u8; 64]))),
        });
        let mut framed = Vec::new();
        paxbench_quic::frame::encode_frame(&Envelope::Paxos(message.clone()), &mut framed).unwrap();
        let mut metrics = ProtocolMetrics::new(1, Time::ZERO, Duration::from_millis(1));
        metrics.count_sized(ProtocolMetrics::framed_size(&message), false);
        assert_eq!(metrics.bytes, framed.len() as u64);
        metrics.on_broadcast(Time::ZERO, &message, 3);
        assert_eq!(metrics.messages, 4);
        assert_eq!(metrics.bytes, 4 * framed.len() as u64);
    }
}
