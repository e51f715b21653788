//! The proposer host decides timers and drains the same way whichever shell drives it. Two
//! shells run the same scripted cluster: one discrete-event, waking exactly at each event and
//! host timer (as the simulator does), one polling, waking at the next reply, host timer or
//! every 50 ms, firing what is due (as the real driver does). Their traces must be identical.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use paxbench_core::acceptor::{Acceptor, AcceptorConfig, RejectMode};
use paxbench_core::host::{DRAIN, Observer, ProposerHost};
use paxbench_core::message::Message;
use paxbench_core::proposer::{ProposerConfig, ProposerEvent};
use paxbench_core::transmit::{To, Transmit};
use paxbench_core::workload::{
    NextOp, OpOutcome, OpSpec, VALUE_TAG_LEN, ValueTag, Workload, unique_value,
};
use paxbench_core::{Instance, NodeId, ProposerId, ProposerIndex, Time};

const MS: Duration = Duration::from_millis(1);

/// A closed loop on a few keys that stops issuing at `end`: a timed run, so the drain matters.
struct TimedLoop {
    keys: u64,
    end: Time,
    issued: u64,
    next_slot: BTreeMap<u64, u64>,
}

impl Workload for TimedLoop {
    fn next_op(&mut self, proposer: ProposerIndex, now: Time) -> NextOp {
        if now >= self.end {
            return NextOp::Done;
        }
        self.issued += 1;
        let key = (self.issued * 7 + u64::from(proposer.0)) % self.keys;
        NextOp::Start(OpSpec {
            instance: Instance::new(key, self.next_slot.get(&key).copied().unwrap_or(0)),
            value: unique_value(
                ValueTag {
                    run: 0,
                    proposer: ProposerId(proposer.0),
                    op: self.issued,
                },
                VALUE_TAG_LEN,
            ),
            at: now + Duration::from_micros(u64::from(proposer.0) * 13),
        })
    }

    fn on_outcome(&mut self, _: ProposerIndex, _: Time, instance: Instance, outcome: OpOutcome) {
        if !matches!(outcome, OpOutcome::GaveUp(_)) {
            let next = self.next_slot.entry(instance.key).or_insert(0);
            *next = (*next).max(instance.slot + 1);
        }
    }

    fn end(&self) -> Option<Time> {
        Some(self.end)
    }
}

/// Everything a shell saw, in order.
#[derive(Debug, Default, PartialEq)]
struct Trace {
    lines: Vec<String>,
}

impl Observer for Trace {
    fn on_proposer_event(&mut self, now: Time, proposer: ProposerIndex, event: &ProposerEvent) {
        self.lines
            .push(format!("{} p{} {event:?}", now.0, proposer.0));
    }
}

/// Three acceptors answering with fixed per-node delays; `silent` nodes never answer.
struct ScriptedAcceptors {
    acceptors: Vec<Acceptor>,
    silent: Vec<u32>,
    /// Replies in flight, by delivery time (then by send order).
    in_flight: BTreeMap<(Time, u64), (ProposerId, Message)>,
    sent: u64,
}

impl ScriptedAcceptors {
    fn new(silent: &[u32]) -> Self {
        let config = AcceptorConfig {
            reject_mode: RejectMode::Nack,
            notify_learners: false,
        };
        Self {
            acceptors: (0..3).map(|n| Acceptor::new(NodeId(n), config)).collect(),
            silent: silent.to_vec(),
            in_flight: BTreeMap::new(),
            sent: 0,
        }
    }

    fn send(&mut self, now: Time, transmit: &Transmit, trace: &mut Trace) {
        trace.lines.push(format!(
            "{} send {:?} {:?}",
            now.0, transmit.from, transmit.message
        ));
        for node in 0..3u32 {
            if !transmit.to.includes(NodeId(node)) || self.silent.contains(&node) {
                continue;
            }
            let acceptor = &mut self.acceptors[node as usize];
            match &transmit.message {
                Message::Prepare(m) => acceptor.handle_prepare(m),
                Message::AcceptRequest(m) => acceptor.handle_accept_request(m),
                _ => continue,
            }
            let mut ready = acceptor.ready();
            let mut replies = ready.take_unpersisted_messages();
            replies.extend(ready.persisted());
            // Odd, node-specific delays keep two arrivals from sharing a nanosecond.
            let delay = Duration::from_nanos(150_001 + 70_003 * u64::from(node));
            for outgoing in replies {
                if let To::Proposer(to) = outgoing.to {
                    self.sent += 1;
                    self.in_flight
                        .insert((now + delay, self.sent), (to, outgoing.message));
                }
            }
        }
    }

    fn next_arrival(&self) -> Option<Time> {
        self.in_flight.keys().next().map(|(at, _)| *at)
    }

    fn take_due(&mut self, now: Time) -> Vec<(ProposerId, Message)> {
        let later = self.in_flight.split_off(&(Time(now.0 + 1), 0));
        std::mem::replace(&mut self.in_flight, later)
            .into_values()
            .collect()
    }
}

fn host(max_attempts: u32) -> ProposerHost<TimedLoop> {
    let config = ProposerConfig {
        max_attempts,
        ..ProposerConfig::new(3)
    };
    let workload = TimedLoop {
        keys: 2,
        end: Time::ZERO + 300 * MS,
        issued: 0,
        next_slot: BTreeMap::new(),
    };
    ProposerHost::new(vec![config; 4], ProposerId(40), 11, workload).unwrap()
}

fn flush(
    host: &mut ProposerHost<TimedLoop>,
    cluster: &mut ScriptedAcceptors,
    now: Time,
    trace: &mut Trace,
) {
    while let Some(transmit) = host.poll_transmit() {
        cluster.send(now, &transmit, trace);
    }
}

/// A host with its first operations sent to the cluster at time zero.
fn started(
    silent: &[u32],
    max_attempts: u32,
) -> (ProposerHost<TimedLoop>, ScriptedAcceptors, Trace) {
    let mut host = host(max_attempts);
    let mut cluster = ScriptedAcceptors::new(silent);
    let mut trace = Trace::default();
    host.start(Time::ZERO, &mut trace);
    flush(&mut host, &mut cluster, Time::ZERO, &mut trace);
    (host, cluster, trace)
}

/// Wakes exactly at each arrival and host timer, as the simulator schedules them.
fn discrete_event_shell(silent: &[u32], max_attempts: u32) -> (Trace, Time) {
    let (mut host, mut cluster, mut trace) = started(silent, max_attempts);
    let deadline = host.deadline().unwrap();
    let mut now = Time::ZERO;
    while !host.is_finished() {
        let arrival = cluster.next_arrival();
        let timer = host.poll_timeout();
        let next = [arrival, timer].into_iter().flatten().min();
        match next {
            Some(at) if at <= deadline => now = at,
            _ => {
                host.stop();
                now = deadline;
                break;
            }
        }
        if arrival == Some(now) {
            for (to, message) in cluster.take_due(now) {
                host.handle_reply(now, to, &message, &mut trace);
            }
        } else {
            host.handle_timeout(now, &mut trace);
        }
        flush(&mut host, &mut cluster, now, &mut trace);
    }
    (trace, now)
}

/// Wakes at the next arrival, host timer, or after 50 ms, whichever is first, and fires what
/// is due, as the real driver's loop does.
fn polling_shell(silent: &[u32], max_attempts: u32) -> (Trace, Time) {
    let (mut host, mut cluster, mut trace) = started(silent, max_attempts);
    let deadline = host.deadline().unwrap();
    let mut now = Time::ZERO;
    loop {
        if host.poll_timeout().is_some_and(|at| at <= now) {
            host.handle_timeout(now, &mut trace);
            flush(&mut host, &mut cluster, now, &mut trace);
        }
        if host.is_finished() {
            break;
        }
        if now >= deadline {
            host.stop();
            break;
        }
        let wait = host
            .poll_timeout()
            .map_or(Duration::MAX, |at| at.saturating_since(now))
            .min(50 * MS);
        let wake = now + wait;
        match cluster.next_arrival() {
            Some(arrival) if arrival <= wake => {
                now = arrival;
                for (to, message) in cluster.take_due(now) {
                    host.handle_reply(now, to, &message, &mut trace);
                }
                flush(&mut host, &mut cluster, now, &mut trace);
            }
            _ => now = wake.min(deadline),
        }
    }
    (trace, now)
}

#[test]
fn both_shells_make_the_same_decisions_on_a_contended_run() {
    let (event, event_end) = discrete_event_shell(&[], 50);
    let (polling, polling_end) = polling_shell(&[], 50);
    assert!(
        event.lines.len() > 100,
        "a real run: {} lines",
        event.lines.len()
    );
    assert!(
        event.lines.iter().any(|l| l.contains("Preempted")),
        "four proposers on two keys must duel"
    );
    assert_eq!(event, polling);
    assert!(event_end < Time::ZERO + 300 * MS + DRAIN);
    assert_eq!(
        event_end, polling_end,
        "both finish when the last operation ends"
    );
}

#[test]
fn both_shells_time_out_and_stop_at_the_drain_deadline() {
    // Two of three acceptors silent: no majority, every attempt times out until the deadline.
    let (event, event_end) = discrete_event_shell(&[1, 2], 1_000);
    let (polling, polling_end) = polling_shell(&[1, 2], 1_000);
    assert!(event.lines.iter().any(|l| l.contains("TimedOut")));
    assert_eq!(event, polling);
    assert_eq!(event_end, Time::ZERO + 300 * MS + DRAIN);
    assert_eq!(polling_end, event_end);
}
