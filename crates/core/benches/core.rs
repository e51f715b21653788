//! Criterion benchmarks of the core: ID generation per scheme, acceptor PREPARE and
//! ACCEPT-REQUEST handling, a full proposer round against in-memory acceptors, the checker's
//! cost per event, and simulator deliveries per second.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use paxbench_core::acceptor::{Acceptor, AcceptorConfig, AcceptorState, Record};
use paxbench_core::checker::{Checker, ChosenBy};
use paxbench_core::id::{IdGenerator, IdScheme, IdSchemeKind};
use paxbench_core::message::{AcceptRequest, Message, Prepare};
use paxbench_core::proposer::{Proposer, ProposerConfig, ProposerEvent};
use paxbench_core::sim::{LinkModel, Sim, SimConfig};
use paxbench_core::transmit::{To, Transmit};
use paxbench_core::workload::UniformWorkload;
use paxbench_core::{Instance, NodeId, ProposalId, ProposerId, Time, Value};

fn ids(c: &mut Criterion) {
    let mut group = c.benchmark_group("id/next");
    for kind in IdSchemeKind::ALL {
        let mut generator = IdGenerator::new(kind, ProposerId(3)).unwrap();
        let mut clock = 1_700_000_000_000_000_000u64;
        group.bench_function(kind.name(), |b| {
            b.iter(|| {
                clock += 1_000;
                black_box(generator.next_id(black_box(clock)))
            })
        });
    }
    group.finish();
}

const INSTANCES: u64 = 4_096;

fn acceptor(c: &mut Criterion) {
    let value = Value::from(vec![7u8; 64]);
    let mut group = c.benchmark_group("acceptor");
    group.throughput(Throughput::Elements(1));

    for (name, notify_learners) in [
        ("accept+ready", true),
        ("accept+ready/no-learner-fan-out", false),
    ] {
        let config = AcceptorConfig {
            notify_learners,
            ..AcceptorConfig::default()
        };
        let mut a = Acceptor::new(NodeId(1), config);
        let mut round = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                round += 1;
                a.handle_accept_request(&AcceptRequest {
                    instance: Instance::new(round % INSTANCES, 0),
                    id: ProposalId::new(round, 1),
                    value: value.clone(),
                    from: ProposerId(1),
                });
                black_box(a.ready().persisted())
            })
        });
    }

    // One PREPARE per `ready`, then 64 (group commit): each PREPARE raises the promise of one of
    // INSTANCES instances, so every one changes state and needs a record.
    for batch in [1u64, 64] {
        let mut a = Acceptor::new(NodeId(1), AcceptorConfig::default());
        let mut round = 0u64;
        group.throughput(Throughput::Elements(batch));
        group.bench_function(format!("prepare+ready/batch-{batch}"), |b| {
            b.iter(|| {
                for _ in 0..batch {
                    round += 1;
                    a.handle_prepare(&Prepare {
                        instance: Instance::new(round % INSTANCES, 0),
                        id: ProposalId::new(round, 1),
                        from: ProposerId(1),
                    });
                }
                black_box(a.ready().persisted())
            })
        });
    }
    group.finish();
}

/// One decision: a proposer and three acceptors exchanging messages in memory.
fn proposer_round(c: &mut Criterion) {
    let mut group = c.benchmark_group("proposer");
    group.throughput(Throughput::Elements(1));
    let mut acceptors: Vec<Acceptor> = (0..3)
        .map(|n| {
            Acceptor::new(
                NodeId(n),
                AcceptorConfig {
                    notify_learners: false,
                    ..AcceptorConfig::default()
                },
            )
        })
        .collect();
    let mut proposer = Proposer::new(ProposerId(1), ProposerConfig::new(3), 1).unwrap();
    let value = Value::from(vec![1u8; 64]);
    let mut key = 0u64;
    let mut inbox: Vec<Message> = Vec::with_capacity(8);
    group.bench_function("decision-3-acceptors", |b| {
        b.iter(|| {
            key += 1;
            let now = Time(key);
            proposer
                .propose(now, Instance::new(key, 0), value.clone())
                .unwrap();
            let mut chosen = false;
            while !chosen {
                while let Some(Transmit { message, .. }) = proposer.poll_transmit() {
                    for a in &mut acceptors {
                        a.handle(&message).unwrap();
                        for out in a.ready().persisted() {
                            if let To::Proposer(_) = out.to {
                                inbox.push(out.message);
                            }
                        }
                    }
                }
                for message in inbox.drain(..) {
                    proposer.handle(now, &message).unwrap();
                }
                while let Some(event) = proposer.poll_event() {
                    chosen |= matches!(event, ProposerEvent::Chosen { .. });
                }
            }
        })
    });
    group.finish();
}

/// The checker's cost per decision, fed what a run feeds it: the proposal, the ID, three
/// promise records, three accept records, three learners' and the proposer's decision. Each
/// iteration starts from an empty checker and decides 100,000 instances, so map growth is paid
/// as in a real run.
fn checker(c: &mut Criterion) {
    const DECISIONS: u64 = 100_000;
    let mut group = c.benchmark_group("checker");
    group.sample_size(10);
    group.throughput(Throughput::Elements(DECISIONS));
    let value = Value::from(vec![3u8; 64]);
    group.bench_function("decision-3-acceptors", |b| {
        b.iter_batched(
            Checker::new,
            |mut checker| {
                for n in 1..=DECISIONS {
                    let instance = Instance::new(n, 0);
                    let id = ProposalId::new(n, 1);
                    checker.on_proposed(instance, &value);
                    checker.on_id_issued(ProposerId(1), instance, id);
                    for accepted in [None, Some((id, value.clone()))] {
                        for node in 0..3 {
                            let record = Record {
                                instance,
                                state: AcceptorState {
                                    promised: id,
                                    accepted: accepted.clone(),
                                },
                            };
                            checker.on_acceptor_record(NodeId(node), &record);
                        }
                    }
                    for node in 0..3 {
                        checker.on_chosen(instance, &value, ChosenBy::Learner(NodeId(node)));
                    }
                    checker.on_chosen(instance, &value, ChosenBy::Proposer(ProposerId(1)));
                }
                black_box(checker)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn simulator(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim");
    group.sample_size(10);
    let build = || {
        let mut config = SimConfig::new(3, 64, 1);
        config.links = LinkModel::constant(Duration::from_micros(50));
        let workload =
            UniformWorkload::new(1_024, 200, Duration::ZERO, Duration::from_micros(100), 1);
        Sim::new(config, workload).unwrap()
    };
    let deliveries = build().run(&mut ()).stats.delivered;
    group.throughput(Throughput::Elements(deliveries));
    group.bench_function("deliveries-3x64", |b| {
        b.iter_batched(
            build,
            |mut sim| black_box(sim.run(&mut ())),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, ids, acceptor, proposer_round, checker, simulator);
criterion_main!(benches);
