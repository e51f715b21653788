//! The acceptor fed arbitrary message schedules, for the cargo-fuzz target `acceptor`.

use rustc_hash::FxHashMap;

use crate::acceptor::{Acceptor, AcceptorConfig, AcceptorState, RejectMode};
use crate::checker::{Checker, ChosenBy};
use crate::message::{Message, Prepare};
use crate::proposer::{Proposer, ProposerConfig, ProposerEvent};
use crate::transmit::{self, Transmit};
use crate::{Instance, NodeId, ProposalId, ProposerId, Time, Value};

const ACCEPTORS: usize = 3;
const PROPOSERS: u32 = 2;
const ROGUE: ProposerId = ProposerId(99);

/// Where a message in flight goes.
#[derive(Clone, Copy, Debug)]
enum To {
    Acceptor(usize),
    Proposer(ProposerId),
    Learners,
}

/// The acceptor fed arbitrary message sequences. Two proposers and three acceptors exchange
/// messages on two instances; `data` is the schedule: which message in flight is delivered next,
/// duplicated or lost, when a proposer times out, when an acceptor persists its batch or crashes
/// (losing what it had not persisted), and rogue PREPAREs with arbitrary IDs. Asserted: the
/// checker finds no violation (agreement, validity, no promise going down, nothing accepted
/// above its promise, one value per proposal ID), and no acceptor ever sends a PROMISE or
/// ACCEPTED that its stable storage does not back. Returns the instances decided.
pub fn acceptor_schedule(data: &[u8]) -> u64 {
    let config = AcceptorConfig {
        reject_mode: RejectMode::Nack,
        notify_learners: true,
    };
    let mut acceptors: Vec<Acceptor> = (0..ACCEPTORS)
        .map(|i| Acceptor::new(NodeId(i as u32), config))
        .collect();
    let mut stores: Vec<FxHashMap<Instance, AcceptorState>> = vec![FxHashMap::default(); ACCEPTORS];
    let mut proposers: Vec<Proposer> = (0..PROPOSERS)
        .filter_map(|p| {
            let config = ProposerConfig {
                max_attempts: u32::MAX,
                ..ProposerConfig::new(ACCEPTORS)
            };
            Proposer::new(ProposerId(p), config, u64::from(p)).ok()
        })
        .collect();
    let mut checker = Checker::new();
    let mut learned: FxHashMap<(Instance, ProposalId), Vec<NodeId>> = FxHashMap::default();
    let mut in_flight: Vec<(To, Message)> = Vec::new();
    let mut now = Time::ZERO;

    for (p, proposer) in proposers.iter_mut().enumerate() {
        let value = Value::from(format!("value-{p}"));
        let instance = Instance::new(p as u64 % 2, 0);
        checker.on_proposed(instance, &value);
        let _ = proposer.propose(now, instance, value);
    }
    for step in data.chunks(2) {
        now = Time(now.0 + 1_000_000);
        let (op, arg) = (step[0], usize::from(step.get(1).copied().unwrap_or(0)));
        match op % 8 {
            0..=2 if !in_flight.is_empty() => {
                let index = arg % in_flight.len();
                // 0 and 1 deliver; 2 delivers a copy and leaves the original in flight.
                let (to, message) = if op % 8 == 2 {
                    in_flight[index].clone()
                } else {
                    in_flight.swap_remove(index)
                };
                deliver(
                    to,
                    &message,
                    now,
                    &mut acceptors,
                    &mut proposers,
                    &mut learned,
                    &mut checker,
                );
            }
            3 if !in_flight.is_empty() => {
                in_flight.swap_remove(arg % in_flight.len());
            }
            4 => {
                let count = proposers.len();
                let proposer = &mut proposers[arg % count];
                if let Some(at) = proposer.poll_timeout() {
                    now = now.max(at);
                    proposer.handle_timeout(now);
                }
            }
            5 => {
                let a = arg % ACCEPTORS;
                let mut ready = acceptors[a].ready();
                for outgoing in ready.take_unpersisted_messages() {
                    in_flight.push((route(outgoing.to), outgoing.message));
                }
                for record in ready.records() {
                    checker.on_acceptor_record(NodeId(a as u32), record);
                    stores[a].insert(record.instance, record.state.clone());
                }
                for outgoing in ready.persisted() {
                    assert_backed(&stores[a], &outgoing.message);
                    in_flight.push((route(outgoing.to), outgoing.message));
                }
            }
            6 => {
                let a = arg % ACCEPTORS;
                let records = stores[a]
                    .iter()
                    .map(|(instance, state)| crate::acceptor::Record {
                        instance: *instance,
                        state: state.clone(),
                    });
                acceptors[a] = Acceptor::restore(NodeId(a as u32), config, records);
            }
            7 => {
                let prepare = Message::Prepare(Prepare {
                    instance: Instance::new(arg as u64 % 2, 0),
                    id: ProposalId::new((arg as u64) >> 1, ROGUE.0),
                    from: ROGUE,
                });
                in_flight.push((To::Acceptor(arg % ACCEPTORS), prepare));
            }
            _ => {}
        }
        for proposer in &mut proposers {
            while let Some(Transmit { message, .. }) = proposer.poll_transmit() {
                for a in 0..ACCEPTORS {
                    in_flight.push((To::Acceptor(a), message.clone()));
                }
            }
            while let Some(event) = proposer.poll_event() {
                match event {
                    ProposerEvent::AttemptStarted { instance, id, .. } => {
                        checker.on_id_issued(proposer.id(), instance, id);
                    }
                    ProposerEvent::Chosen {
                        instance, value, ..
                    } => checker.on_chosen(instance, &value, ChosenBy::Proposer(proposer.id())),
                    _ => {}
                }
            }
        }
        // Bounded, like every load loop: an adversarial schedule may duplicate without end.
        in_flight.truncate(4096);
    }
    assert!(
        checker.violations().is_empty(),
        "{:?}",
        checker.violations()
    );
    checker.stats().decided
}

fn route(to: transmit::To) -> To {
    match to {
        transmit::To::Proposer(p) => To::Proposer(p),
        transmit::To::AllNodes => To::Learners,
        // Only Multi-Paxos requests, which this harness never sends, are answered to a node.
        transmit::To::Node(n) => To::Acceptor(n.0 as usize),
        transmit::To::Nodes(_) => unreachable!("an acceptor answers one sender or every node"),
    }
}

/// A reply sent after persisting must rest on the stored state.
fn assert_backed(store: &FxHashMap<Instance, AcceptorState>, message: &Message) {
    match message {
        Message::Promise(promise) => {
            let state = store.get(&promise.instance);
            assert!(
                state.is_some_and(|s| s.promised >= promise.id),
                "PROMISE {} not backed by {state:?}",
                promise.id
            );
        }
        Message::Accepted(accepted) => {
            let state = store.get(&accepted.instance);
            assert!(
                state
                    .and_then(|s| s.accepted.as_ref())
                    .is_some_and(|(id, value)| *id > accepted.id
                        || (*id == accepted.id && *value == accepted.value)),
                "ACCEPTED {} not backed by {state:?}",
                accepted.id
            );
        }
        _ => {}
    }
}

fn deliver(
    to: To,
    message: &Message,
    now: Time,
    acceptors: &mut [Acceptor],
    proposers: &mut [Proposer],
    learned: &mut FxHashMap<(Instance, ProposalId), Vec<NodeId>>,
    checker: &mut Checker,
) {
    match to {
        To::Acceptor(a) => {
            let _ = acceptors[a].handle(message);
        }
        To::Proposer(p) => {
            if let Some(proposer) = proposers.iter_mut().find(|x| x.id() == p) {
                let _ = proposer.handle(now, message);
            }
        }
        To::Learners => {
            if let Message::Accepted(accepted) = message {
                let nodes = learned.entry((accepted.instance, accepted.id)).or_default();
                if !nodes.contains(&accepted.from) {
                    nodes.push(accepted.from);
                }
                if nodes.len() > ACCEPTORS / 2 {
                    checker.on_chosen(
                        accepted.instance,
                        &accepted.value,
                        ChosenBy::Learner(accepted.from),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_that_delivers_everything_decides_both_instances() {
        // Persist, deliver the oldest message, over and over: a fair schedule.
        let data: Vec<u8> = (0..400u32)
            .flat_map(|i| {
                if i % 2 == 0 {
                    [5, (i / 2 % 3) as u8]
                } else {
                    [0, 0]
                }
            })
            .collect();
        assert_eq!(acceptor_schedule(&data), 2);
    }

    #[test]
    #[should_panic(expected = "not backed")]
    fn a_reply_ahead_of_the_store_is_caught() {
        let store = FxHashMap::default();
        assert_backed(
            &store,
            &Message::Promise(crate::message::Promise {
                instance: Instance::new(0, 0),
                id: ProposalId::new(1, 1),
                from: NodeId(0),
                accepted: None,
            }),
        );
    }
}
