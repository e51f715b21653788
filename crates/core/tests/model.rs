//! Exhaustive model check of the real roles (the crate's `Acceptor` and `Proposer`, not a
//! re-implementation) with stateright: 2 proposers racing for one instance, 3 acceptors, every
//! interleaving of deliveries. Agreement must hold in every reachable state; with volatile
//! acceptors the checker must find a counterexample.
//!
//! Two bounded models, each exhaustive, because their union does not fit a CI machine
//! (measured on 2 cores / 24 GiB: duplication × loss × crash ran out of memory past 24 GiB):
//! - loss and one acceptor crash (recovering from its durable records), on a network that
//!   reorders freely and delivers each message at most once: about 6.2 M states, 110 s, 4.7 GiB;
//! - duplication on a reordering network with no crash: about 3.3 M states, 180 s, 4.3 GiB.
//!   Loss adds nothing here for safety (a lost message is one never delivered yet).
//!
//! Both use silent rejection, as the classic description does; NACKs multiply the messages in
//! flight and, with duplication, took the model past 24 GiB. NACK handling is covered by unit
//! tests and by the simulator's property tests.
//!
//! Each proposer makes one attempt (retries are covered by the simulator's property tests):
//! the proposers' IDs differ, so the later one must adopt any value the earlier one got
//! accepted, which is the case that makes Paxos safe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use paxbench_core::acceptor::{Acceptor, AcceptorConfig, Record, RejectMode};
use paxbench_core::backoff::BackoffPolicy;
use paxbench_core::id::IdSchemeKind;
use paxbench_core::message::Message;
use paxbench_core::proposer::{Proposer, ProposerConfig, ProposerEvent};
use paxbench_core::transmit::{To, Transmit};
use paxbench_core::{Instance, NodeId, ProposalId, ProposerId, Time, Value};
use stateright::actor::{
    Actor, ActorModel, ActorModelState, Envelope, Id, LossyNetwork, Network, Out, model_timeout,
};
use stateright::{Checker, Expectation, HasDiscoveries, Model};

const ACCEPTORS: usize = 3;
const PROPOSERS: usize = 2;
const INSTANCE: Instance = Instance::new(0, 0);

#[derive(Clone)]
enum Role {
    Acceptor {
        durable: bool,
        reject_mode: RejectMode,
    },
    Proposer {
        id_scheme: IdSchemeKind,
        max_attempts: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ProposerState {
    proposer: Proposer,
    attempt: u32,
    decided: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum State {
    Acceptor(Acceptor),
    Proposer(Box<ProposerState>),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct PhaseTimer;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum NoRandom {}

/// Votes seen in ACCEPTED messages: (id, value) -> acceptors.
type Votes = BTreeMap<(ProposalId, Value), BTreeSet<NodeId>>;

fn proposer_actor(index: usize) -> Id {
    Id::from(ACCEPTORS + index)
}

fn own_value(index: usize) -> Value {
    Value::from(vec![b'a' + index as u8])
}

fn drain_proposer(state: &mut ProposerState, o: &mut Out<Role>) {
    while let Some(Transmit { message, .. }) = state.proposer.poll_transmit() {
        for acceptor in 0..ACCEPTORS {
            o.send(Id::from(acceptor), message.clone());
        }
    }
    while let Some(event) = state.proposer.poll_event() {
        match event {
            ProposerEvent::Chosen { value, .. } => state.decided = Some(value),
            ProposerEvent::AttemptStarted { attempt, .. } => state.attempt = attempt,
            _ => {}
        }
    }
    // A timeout on the last attempt only makes the proposer give up, which is
    // indistinguishable from waiting forever; arming it would only multiply states.
    let can_retry = state.attempt < state.proposer.config().max_attempts;
    match state.proposer.poll_timeout() {
        Some(_) if can_retry => o.set_timer(PhaseTimer, model_timeout()),
        _ => o.cancel_timer(PhaseTimer),
    }
}

fn drain_acceptor(acceptor: &mut Acceptor, durable: bool, o: &mut Out<Role>) {
    let mut ready = acceptor.ready();
    let send = |o: &mut Out<Role>, to: To, message: Message| {
        if let To::Proposer(p) = to {
            o.send(proposer_actor(p.0 as usize), message);
        }
    };
    for out in ready.take_unpersisted_messages() {
        send(o, out.to, out.message);
    }
    if durable && !ready.records().is_empty() {
        let mut all: Vec<Record> = acceptor
            .states()
            .map(|(instance, state)| Record {
                instance,
                state: state.clone(),
            })
            .collect();
        all.sort_by_key(|r| r.instance);
        o.save(all);
    }
    for out in ready.persisted() {
        send(o, out.to, out.message);
    }
}

impl Actor for Role {
    type Msg = Message;
    type Timer = PhaseTimer;
    type State = State;
    type Storage = Vec<Record>;
    type Random = NoRandom;

    fn on_start(&self, id: Id, storage: &Option<Vec<Record>>, o: &mut Out<Self>) -> State {
        let index = usize::from(id);
        match self {
            Role::Acceptor { reject_mode, .. } => {
                let config = AcceptorConfig {
                    reject_mode: *reject_mode,
                    notify_learners: false,
                };
                let node = NodeId(index as u32);
                State::Acceptor(Acceptor::restore(
                    node,
                    config,
                    storage.clone().unwrap_or_default(),
                ))
            }
            Role::Proposer {
                id_scheme,
                max_attempts,
            } => {
                let p = index - ACCEPTORS;
                let config = ProposerConfig {
                    phase1_timeout: Duration::from_millis(10),
                    phase2_timeout: Duration::from_millis(10),
                    backoff: BackoffPolicy::None,
                    max_attempts: *max_attempts,
                    id_scheme: *id_scheme,
                    ..ProposerConfig::new(ACCEPTORS)
                };
                let mut proposer = Proposer::new(ProposerId(p as u32), config, 0).unwrap();
                proposer
                    .propose(Time::ZERO, INSTANCE, own_value(p))
                    .unwrap();
                let mut state = ProposerState {
                    proposer,
                    attempt: 0,
                    decided: None,
                };
                drain_proposer(&mut state, o);
                State::Proposer(Box::new(state))
            }
        }
    }

    fn on_msg(&self, _: Id, state: &mut Cow<State>, _: Id, msg: Message, o: &mut Out<Self>) {
        match (self, state.to_mut()) {
            (Role::Acceptor { durable, .. }, State::Acceptor(acceptor)) => {
                if acceptor.handle(&msg).is_ok() {
                    drain_acceptor(acceptor, *durable, o);
                }
            }
            (Role::Proposer { .. }, State::Proposer(p)) => {
                // Message handling takes no time in the model; only timeouts move the clock.
                let now = p
                    .proposer
                    .poll_timeout()
                    .map_or(Time::ZERO, |t| Time(t.0.saturating_sub(1)));
                if p.proposer.handle(now, &msg).is_ok() {
                    drain_proposer(p, o);
                }
            }
            _ => unreachable!("roles and states are paired in on_start"),
        }
    }

    fn on_timeout(&self, _: Id, state: &mut Cow<State>, _: &PhaseTimer, o: &mut Out<Self>) {
        if let State::Proposer(p) = state.to_mut()
            && let Some(deadline) = p.proposer.poll_timeout()
        {
            p.proposer.handle_timeout(deadline);
            drain_proposer(p, o);
        }
    }
}

fn chosen_values(state: &ActorModelState<Role, Votes>) -> BTreeSet<Value> {
    let quorum = paxbench_core::quorum(ACCEPTORS);
    let mut chosen: BTreeSet<Value> = state
        .history
        .iter()
        .filter(|(_, voters)| voters.len() >= quorum)
        .map(|((_, value), _)| value.clone())
        .collect();
    for actor in &state.actor_states {
        if let State::Proposer(p) = &**actor
            && let Some(value) = &p.decided
        {
            chosen.insert(value.clone());
        }
    }
    chosen
}

#[derive(Clone, Copy)]
struct Bounds {
    durable: bool,
    reject_mode: RejectMode,
    duplicating: bool,
    lossy: bool,
    crashes: usize,
}

fn model(b: Bounds) -> ActorModel<Role, (), Votes> {
    let acceptors = (0..ACCEPTORS).map(|_| Role::Acceptor {
        durable: b.durable,
        reject_mode: b.reject_mode,
    });
    let proposers = (0..PROPOSERS).map(|_| Role::Proposer {
        id_scheme: IdSchemeKind::Counter,
        max_attempts: 1,
    });
    let network = if b.duplicating {
        Network::new_unordered_duplicating([])
    } else {
        Network::new_unordered_nonduplicating([])
    };
    ActorModel::new((), Votes::new())
        .actors(acceptors.chain(proposers))
        .init_network(network)
        .lossy_network(if b.lossy {
            LossyNetwork::Yes
        } else {
            LossyNetwork::No
        })
        .max_crashes(b.crashes)
        .record_msg_out(|_, votes, envelope: Envelope<&Message>| {
            let Message::Accepted(a) = envelope.msg else {
                return None;
            };
            let mut votes = votes.clone();
            votes
                .entry((a.id, a.value.clone()))
                .or_default()
                .insert(a.from);
            Some(votes)
        })
        // Only acceptors crash: a proposer that forgot its last ID would reuse it, which is an
        // ID-scheme question the simulator covers, not the protocol question checked here.
        .within_boundary(|_, state| state.crashed[ACCEPTORS..].iter().all(|c| !c))
        .property(Expectation::Always, "agreement", |_, state| {
            chosen_values(state).len() <= 1
        })
        .property(Expectation::Sometimes, "a value is chosen", |_, state| {
            !chosen_values(state).is_empty()
        })
        .property(Expectation::Sometimes, "a value is adopted", |_, state| {
            // The second proposer decided the first one's value: the adoption path was explored.
            state.actor_states.iter().any(|s| {
                matches!(&**s, State::Proposer(p)
                    if p.decided.as_ref().is_some_and(|v| *v != own_value(p.proposer.id().0 as usize)))
            })
        })
}

fn check_exhaustively(bounds: Bounds) {
    let checker = model(bounds).checker().threads(2).spawn_bfs().join();
    println!(
        "{} unique states, max depth {}",
        checker.unique_state_count(),
        checker.max_depth()
    );
    assert!(checker.is_done());
    checker.assert_properties();
}

#[test]
fn agreement_holds_with_loss_and_an_acceptor_crash() {
    check_exhaustively(Bounds {
        durable: true,
        reject_mode: RejectMode::Silent,
        duplicating: false,
        lossy: true,
        crashes: 1,
    });
}

#[test]
fn agreement_holds_with_duplicated_and_reordered_messages() {
    check_exhaustively(Bounds {
        durable: true,
        reject_mode: RejectMode::Silent,
        duplicating: true,
        lossy: false,
        crashes: 0,
    });
}

#[test]
fn volatile_acceptors_lose_agreement_and_the_model_finds_it() {
    let bounds = Bounds {
        durable: false,
        reject_mode: RejectMode::Silent,
        duplicating: false,
        lossy: false,
        crashes: 1,
    };
    let checker = model(bounds)
        .checker()
        .threads(2)
        .finish_when(HasDiscoveries::AnyFailures)
        .spawn_bfs()
        .join();
    let path = checker.assert_any_discovery("agreement");
    println!("counterexample in {} steps", path.into_actions().len());
}
