//! Property tests: random seeded simulations with message loss, duplication, reordering,
//! partitions, crashes and clock skew, for 2 to 7 acceptors, 1 to 20 proposers and every
//! ID scheme that promises unique IDs, with majorities or any flexible quorums whose phases
//! intersect (phase 1 + phase 2 > acceptors), in vanilla Paxos and in Multi-Paxos (any batch,
//! pipeline, forwarding, thrifty or not, a pinned leader or none). No safety violation may ever appear, and once the
//! faults stop every operation must finish with a decision.
//!
//! CI runs a modest number of cases; set `PROPTEST_CASES` to run more.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use paxbench_core::ProtocolConfig;
use paxbench_core::acceptor::RejectMode;
use paxbench_core::backoff::BackoffPolicy;
use paxbench_core::id::IdSchemeKind;
use paxbench_core::leader::{ForwardMode, LeaderConfig};
use paxbench_core::sim::{Address, Fault, Latency, LinkModel, Sim, SimConfig};
use paxbench_core::workload::UniformWorkload;
use paxbench_core::{NodeId, ProposerId, ProposerIndex, Quorums, Time};
use proptest::prelude::*;

const US: Duration = Duration::from_micros(1);
const MS: Duration = Duration::from_millis(1);
fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}
fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
/// Faults happen before this time; at it the network heals and every node restarts.
const FAULTS_END: Duration = Duration::from_millis(300);

#[derive(Debug, Clone)]
struct Scenario {
    seed: u64,
    acceptors: usize,
    quorums: Quorums,
    proposers: usize,
    keys: u64,
    ops: u64,
    scheme: IdSchemeKind,
    reject_mode: RejectMode,
    notify_learners: bool,
    backoff: BackoffPolicy,
    links: LinkModel,
    fsync: Duration,
    faults: Vec<(Time, Fault)>,
    /// `None`: vanilla; otherwise Multi-Paxos with (batch, pipeline, forward, thrifty, pinned).
    multi: Option<(usize, usize, bool, bool, Option<u32>)>,
}

fn latency() -> impl Strategy<Value = Latency> {
    prop_oneof![
        (1u64..200).prop_map(|n| Latency::Constant(us(n))),
        (1u64..100, 0u64..400).prop_map(|(min, extra)| Latency::Uniform {
            min: us(min),
            max: us(min + extra)
        }),
        (10u64..200, 0u64..200).prop_map(|(mean, sd)| Latency::Normal {
            mean: us(mean),
            std_dev: us(sd)
        }),
        (10u64..200).prop_map(|mean| Latency::Exponential { mean: us(mean) }),
    ]
}

fn links() -> impl Strategy<Value = LinkModel> {
    (
        latency(),
        0.0..0.3f64,
        0.0..0.3f64,
        0.0..0.5f64,
        0u64..2_000,
    )
        .prop_map(|(latency, drop, duplicate, reorder, window)| LinkModel {
            latency,
            drop,
            duplicate,
            reorder,
            reorder_window: us(window),
        })
}

fn backoff() -> impl Strategy<Value = BackoffPolicy> {
    // Only jittered policies: without randomness, symmetric duels can repeat forever, and this
    // property demands progress.
    prop_oneof![
        (1u64..5, 20u64..200).prop_map(|(base, cap)| BackoffPolicy::ExponentialFullJitter {
            base: ms(base),
            factor: 2.0,
            cap: ms(cap)
        }),
        (1u64..5, 20u64..200).prop_map(|(base, cap)| BackoffPolicy::DecorrelatedJitter {
            base: ms(base),
            cap: ms(cap)
        }),
    ]
}

fn fault(acceptors: usize, proposers: usize) -> impl Strategy<Value = (Time, Fault)> {
    let at = (0..FAULTS_END.as_micros() as u64).prop_map(|n| Time::ZERO + us(n));
    let node = (0..acceptors as u32).prop_map(NodeId);
    let endpoint = prop_oneof![
        (0..acceptors as u32).prop_map(|n| Address::Node(NodeId(n))),
        (0..proposers as u32).prop_map(|p| Address::Proposer(ProposerId(p))),
    ];
    let fault = prop_oneof![
        node.clone().prop_map(Fault::Crash),
        node.prop_map(Fault::Restart),
        proptest::collection::vec(endpoint, 1..4).prop_map(Fault::Partition),
        Just(Fault::Heal),
        links().prop_map(Fault::SetLinks),
        ((0..proposers as u32), -5_000_000i64..5_000_000).prop_map(|(p, delta_ns)| {
            Fault::ClockStep {
                proposer: ProposerIndex(p),
                delta_ns,
            }
        }),
    ];
    (at, fault)
}

/// Majorities half the time, otherwise any phase-1 size with a phase-2 size that meets it.
fn quorums(acceptors: usize) -> impl Strategy<Value = Quorums> {
    prop_oneof![
        Just(Quorums::majority(acceptors)),
        (1..=acceptors).prop_flat_map(move |phase1| {
            ((acceptors + 1 - phase1).max(1)..=acceptors)
                .prop_map(move |phase2| Quorums { phase1, phase2 })
        }),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (2usize..=7, 1usize..=20).prop_flat_map(|(acceptors, proposers)| {
        (
            (any::<u64>(), 1u64..8, 1u64..10, quorums(acceptors)),
            prop_oneof![
                Just(IdSchemeKind::Counter),
                Just(IdSchemeKind::Timestamp),
                Just(IdSchemeKind::Hlc)
            ],
            (
                prop_oneof![Just(RejectMode::Silent), Just(RejectMode::Nack)],
                any::<bool>(),
            ),
            backoff(),
            links(),
            prop_oneof![Just(Duration::ZERO), (1u64..2_000).prop_map(us)],
            proptest::collection::vec(fault(acceptors, proposers), 0..12),
            proptest::option::of((
                1usize..8,
                1usize..4,
                any::<bool>(),
                any::<bool>(),
                proptest::option::of(0..acceptors as u32),
            )),
        )
            .prop_map(
                move |(
                    (seed, keys, ops, quorums),
                    scheme,
                    (reject_mode, notify_learners),
                    backoff,
                    links,
                    fsync,
                    faults,
                    multi,
                )| Scenario {
                    seed,
                    acceptors,
                    quorums,
                    proposers,
                    keys,
                    ops,
                    scheme,
                    reject_mode,
                    notify_learners,
                    backoff,
                    links,
                    fsync,
                    faults,
                    multi,
                },
            )
    })
}

fn run(s: &Scenario) -> Result<(), TestCaseError> {
    let mut config = SimConfig::new(s.acceptors, s.proposers, s.seed).with_clock_skew(
        1_700_000_000_000_000_000,
        5 * MS,
        100.0,
        US,
    );
    config.acceptor.reject_mode = s.reject_mode;
    config.acceptor.notify_learners = s.notify_learners;
    config.fsync = s.fsync;
    config.links = s.links;
    config.until = Time::ZERO + Duration::from_secs(600);
    config.quorums = s.quorums;
    for p in &mut config.proposers {
        p.quorums = s.quorums;
        p.id_scheme = s.scheme;
        p.backoff = s.backoff;
        p.max_attempts = u32::MAX;
        p.phase1_timeout = 20 * MS;
        p.phase2_timeout = 20 * MS;
    }
    if let Some((batch, pipeline, forward, thrifty, pinned)) = s.multi {
        let mut leader = LeaderConfig::new((0..s.acceptors as u32).map(NodeId).collect());
        leader.quorums = s.quorums;
        leader.batch = batch;
        leader.pipeline = pipeline;
        leader.forward = if forward {
            ForwardMode::Forward
        } else {
            ForwardMode::Redirect
        };
        leader.thrifty = thrifty;
        leader.initial_leader = pinned.map(NodeId);
        leader.heartbeat = 5 * MS;
        leader.election_timeout = 20 * MS;
        leader.phase1_timeout = 20 * MS;
        leader.phase2_timeout = 20 * MS;
        leader.backoff = s.backoff;
        config.protocol = ProtocolConfig::MultiPaxos(leader);
    }
    config.faults = s.faults.clone();
    let healed = Time::ZERO + FAULTS_END;
    config.faults.push((healed, Fault::Heal));
    config
        .faults
        .push((healed, Fault::SetLinks(LinkModel::default())));
    for n in 0..s.acceptors as u32 {
        config.faults.push((healed, Fault::Restart(NodeId(n))));
    }
    let workload = UniformWorkload::new(s.keys, s.ops, 500 * US, 50 * MS, s.seed);
    let mut sim = Sim::new(config, workload).unwrap();
    let report = sim.run(&mut ());
    let checker = sim.checker();
    prop_assert!(
        checker.violations().is_empty(),
        "violations: {:#?}",
        checker.violations()
    );
    prop_assert!(
        !report.stopped_early,
        "no progress after the faults stopped: {:?}",
        report.stats
    );
    let st = report.stats;
    prop_assert_eq!(st.host.ops_started, s.proposers as u64 * s.ops);
    prop_assert_eq!(
        st.host.ops_won + st.host.ops_lost,
        st.host.ops_started,
        "{:?}",
        st
    );
    prop_assert_eq!(st.host.ops_gave_up, 0);
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn faulty_simulations_stay_safe_and_progress_after_healing(s in scenario()) {
        run(&s)?;
    }
}
