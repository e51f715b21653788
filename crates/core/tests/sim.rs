//! Simulator scenarios with known answers: a clean cluster decides everything, a seed fixes the
//! history, naive timestamps collide and break agreement, volatile acceptors break agreement
//! and durable ones do not, group commit shares persists, and a zoned network decides in two
//! quorum round trips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::ScriptedWorkload;
use paxbench_core::acceptor::RejectMode;
use paxbench_core::checker::{Checker, Violation};
use paxbench_core::id::IdSchemeKind;
use paxbench_core::sim::{Durability, Fault, Latency, LinkModel, Sim, SimConfig, SimReport};
use paxbench_core::workload::{OpOutcome, UniformWorkload};
use paxbench_core::zones::Geography;
use paxbench_core::{Instance, NodeId, Quorums, Time};

const MS: Duration = Duration::from_millis(1);
const US: Duration = Duration::from_micros(1);

fn jittery_links() -> LinkModel {
    LinkModel {
        latency: Latency::Uniform {
            min: 20 * US,
            max: 120 * US,
        },
        ..LinkModel::default()
    }
}

fn uniform_run(config: SimConfig, keys: u64, ops: u64) -> (SimReport, Vec<Violation>) {
    let workload = UniformWorkload::new(keys, ops, 100 * US, MS, config.seed);
    let mut sim = Sim::new(config, workload).unwrap();
    let report = sim.run(&mut ());
    (report, sim.checker().violations().to_vec())
}

#[test]
fn a_clean_cluster_decides_every_operation_safely() {
    let mut config = SimConfig::new(3, 5, 11);
    config.links = jittery_links();
    let (report, violations) = uniform_run(config, 3, 20);
    assert!(violations.is_empty(), "{violations:?}");
    assert!(!report.stopped_early);
    let s = report.stats;
    assert_eq!(s.host.ops_started, 100);
    assert_eq!(s.host.ops_won + s.host.ops_lost, 100, "{s:?}");
    assert_eq!(s.host.ops_gave_up, 0);
    assert!(
        s.host.ops_lost > 0,
        "five proposers on three keys must lose some races: {s:?}"
    );
    assert!(s.host.attempts >= 100);
    assert_eq!(s.lost, 0, "perfect links lose nothing");
}

#[test]
fn the_same_seed_gives_the_same_history() {
    let config = |seed| {
        let mut c = SimConfig::new(5, 8, seed);
        c.links = LinkModel {
            drop: 0.05,
            duplicate: 0.05,
            reorder: 0.1,
            reorder_window: 200 * US,
            ..jittery_links()
        };
        c.acceptor.reject_mode = RejectMode::Nack;
        c
    };
    let (a, _) = uniform_run(config(42), 2, 10);
    let (b, _) = uniform_run(config(42), 2, 10);
    let (c, _) = uniform_run(config(43), 2, 10);
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.stats, b.stats);
    assert_eq!(a.end, b.end);
    assert_ne!(
        a.digest, c.digest,
        "a different seed gives a different history"
    );
}

/// Six proposers on one key, every clock reading in whole milliseconds.
fn coarse_clock_run(scheme: IdSchemeKind) -> Sim<UniformWorkload> {
    let mut config =
        SimConfig::new(3, 6, 7).with_clock_skew(1_700_000_000_000_000_000, Duration::ZERO, 0.0, MS);
    config.links = jittery_links();
    for p in &mut config.proposers {
        p.id_scheme = scheme;
    }
    let workload = UniformWorkload::new(1, 30, 100 * US, 100 * US, config.seed);
    let mut sim = Sim::new(config, workload).unwrap();
    sim.run(&mut ());
    sim
}

#[test]
fn naive_timestamps_on_a_coarse_clock_collide_and_break_agreement() {
    let sim = coarse_clock_run(IdSchemeKind::NaiveTimestamp);
    let checker = sim.checker();
    assert!(checker.stats().id_collisions > 0, "{:?}", checker.stats());
    let agreement = checker
        .violations()
        .iter()
        .find(|v| matches!(v, Violation::Agreement { .. }));
    assert!(
        agreement.is_some(),
        "expected an agreement violation, got {:?}",
        checker.violation_counts()
    );
    println!("{}", agreement.unwrap());
}

#[test]
fn the_same_run_with_slotted_timestamps_is_safe() {
    let sim = coarse_clock_run(IdSchemeKind::Timestamp);
    assert!(
        sim.checker().violations().is_empty(),
        "{:?}",
        sim.checker().violations()
    );
    assert_eq!(sim.checker().stats().id_collisions, 0);
    assert_eq!(sim.stats().host.ops_won + sim.stats().host.ops_lost, 180);
}

/// Proposer 0 gets "a" chosen; then every acceptor crashes and restarts; then proposer 1
/// proposes "b" for the same instance.
fn amnesia_scenario(durability: Durability) -> (Sim<ScriptedWorkload>, Vec<Violation>) {
    let instance = Instance::new(0, 0);
    let mut config = SimConfig::new(3, 2, 1);
    config.durability = durability;
    config.links = LinkModel::constant(50 * US);
    for n in 0..3 {
        config
            .faults
            .push((Time::ZERO + 2 * MS, Fault::Crash(NodeId(n))));
        config
            .faults
            .push((Time::ZERO + 3 * MS, Fault::Restart(NodeId(n))));
    }
    let workload = ScriptedWorkload::default()
        .op(0, Time::ZERO, instance, "a")
        .op(1, Time::ZERO + 5 * MS, instance, "b");
    let mut sim = Sim::new(config, workload).unwrap();
    sim.run(&mut ());
    let violations = sim.checker().violations().to_vec();
    (sim, violations)
}

#[test]
fn volatile_acceptors_that_crash_can_break_agreement() {
    let (sim, violations) = amnesia_scenario(Durability::Volatile);
    assert!(
        violations
            .iter()
            .any(|v| matches!(v, Violation::Agreement { .. })),
        "{violations:?}"
    );
    let outcomes: Vec<_> = sim.workload().outcomes.iter().map(|o| o.2).collect();
    assert_eq!(
        outcomes,
        [OpOutcome::Won, OpOutcome::Won],
        "both think they won"
    );
}

#[test]
fn durable_acceptors_remember_and_the_late_proposer_adopts_the_chosen_value() {
    let (sim, violations) = amnesia_scenario(Durability::Durable);
    assert!(violations.is_empty(), "{violations:?}");
    let outcomes: Vec<_> = sim.workload().outcomes.iter().map(|o| o.2).collect();
    assert_eq!(outcomes, [OpOutcome::Won, OpOutcome::Lost]);
    assert_eq!(
        sim.checker()
            .chosen(Instance::new(0, 0))
            .map(|v| v.as_ref()),
        Some(&b"a"[..])
    );
    let stored = sim.stored(NodeId(2)).count();
    assert_eq!(stored, 1, "one instance on disk");
}

#[test]
fn group_commit_shares_persists_between_concurrent_requests() {
    let run = |fsync| {
        let mut config = SimConfig::new(3, 16, 5);
        config.fsync = fsync;
        config.proposers.iter_mut().for_each(|p| {
            p.phase1_timeout = 20 * MS;
            p.phase2_timeout = 20 * MS;
        });
        let (report, violations) = uniform_run(config, 64, 10);
        assert!(violations.is_empty(), "{violations:?}");
        assert_eq!(report.stats.host.ops_gave_up, 0);
        report.stats
    };
    let immediate = run(Duration::ZERO);
    let batched = run(MS);
    assert!(
        batched.persists * 2 < immediate.persists,
        "with a 1 ms fsync, requests share persists: {} batched vs {} unbatched",
        batched.persists,
        immediate.persists
    );
}

#[test]
fn a_partitioned_minority_does_not_stop_the_majority() {
    let mut config = SimConfig::new(5, 3, 9);
    config.faults.push((
        Time::ZERO,
        Fault::Partition(vec![
            paxbench_core::sim::Address::Node(NodeId(0)),
            paxbench_core::sim::Address::Node(NodeId(1)),
        ]),
    ));
    let (report, violations) = uniform_run(config, 4, 10);
    assert!(violations.is_empty(), "{violations:?}");
    assert_eq!(report.stats.host.ops_won + report.stats.host.ops_lost, 30);
    assert!(report.stats.lost > 0, "messages to the minority are cut");
}

/// Eight proposers racing on one key of three acceptors, with the given quorum sizes.
fn flexible_race(phase1: usize, phase2: usize, seed: u64) -> Vec<Violation> {
    let mut config = SimConfig::new(3, 8, seed);
    config.links = jittery_links();
    config.quorums = Quorums { phase1, phase2 };
    for p in &mut config.proposers {
        p.quorums = config.quorums;
    }
    uniform_run(config, 1, 30).1
}

#[test]
fn flexible_quorums_that_do_not_intersect_break_agreement() {
    // 1 + 2 = 3 acceptors: a proposer can be promised by the one acceptor that missed the
    // chosen value, and overwrite it.
    let found = (1..=5).any(|seed| {
        flexible_race(1, 2, seed)
            .iter()
            .any(|v| matches!(v, Violation::Agreement { .. }))
    });
    assert!(
        found,
        "no seed broke agreement with non-intersecting quorums"
    );
}

#[test]
fn flexible_quorums_that_intersect_stay_safe_on_the_same_races() {
    for seed in 1..=5 {
        for (phase1, phase2) in [(2, 2), (3, 1), (1, 3)] {
            let violations = flexible_race(phase1, phase2, seed);
            assert!(
                violations.is_empty(),
                "{phase1}/{phase2} seed {seed}: {violations:?}"
            );
        }
    }
}

#[test]
fn quorums_the_learners_do_not_share_are_refused() {
    let mut config = SimConfig::new(3, 1, 1);
    config.quorums = Quorums {
        phase1: 3,
        phase2: 1,
    };
    assert!(Sim::new(config.clone(), UniformWorkload::new(1, 1, MS, MS, 1)).is_err());
    config.proposers[0].quorums = Quorums {
        phase1: 4,
        phase2: 1,
    };
    config.quorums = config.proposers[0].quorums;
    assert!(Sim::new(config, UniformWorkload::new(1, 1, MS, MS, 1)).is_err());
}

#[test]
fn bad_setups_are_refused() {
    let mut config = SimConfig::new(3, 1, 0);
    config.faults.push((Time::ZERO, Fault::Crash(NodeId(3))));
    assert!(Sim::new(config, UniformWorkload::new(1, 1, MS, MS, 0)).is_err());
    let mut config = SimConfig::new(3, 1, 0);
    config.proposers[0].acceptors = 5;
    assert!(Sim::new(config, UniformWorkload::new(1, 1, MS, MS, 0)).is_err());
}

#[test]
fn the_checker_holds_only_what_can_still_change_over_two_million_decisions() {
    // 64 proposers × 31,250 operations on 100,000 keys: two million operations, nearly all
    // decided on first try, each on a fresh instance.
    let proposers = 64;
    let config = SimConfig::new(3, proposers, 5);
    let workload = UniformWorkload::new(100_000, 31_250, US, MS, 5);
    let mut sim = Sim::new(config, workload).unwrap();
    let report = sim.run(&mut ());
    let stats = sim.checker().stats();
    assert_eq!(report.stats.host.ops_started, 2_000_000);
    assert!(stats.decided >= 1_990_000, "{stats:?}");
    assert!(sim.checker().violations().is_empty());
    // What is held in memory is the grace plus the instances operations are on, never a
    // number that grows with the decisions.
    let bound = (Checker::DEFAULT_RETAIN + 4 * proposers) as u64;
    assert!(stats.most_retained <= bound, "{stats:?}");
    assert!(stats.retired >= stats.decided - bound, "{stats:?}");
}

/// Three zones with unequal, asymmetric round trips; one node and one proposer in each. With
/// constant delays and nothing lost, every operation takes exactly two round trips (PREPARE,
/// ACCEPT) to the second-nearest node: a majority of three is the proposer's own zone's node
/// and the next nearest.
#[test]
fn a_zoned_decision_takes_two_round_trips_to_the_nearest_majority() {
    let rtt_ms = [[0.5, 77.0, 190.0], [76.0, 0.5, 130.0], [191.0, 131.0, 0.5]];
    let one_way = rtt_ms
        .iter()
        .map(|row| {
            row.iter()
                .map(|r| Latency::Constant(Duration::from_secs_f64(r / 2e3)))
                .collect()
        })
        .collect();
    let geography = Geography::new(one_way, vec![0, 1, 2], vec![0, 1, 2]).unwrap();
    let mut config = SimConfig::new(3, 3, 5);
    config.links = LinkModel::constant(Duration::ZERO);
    config.geography = Some(geography.clone());
    for proposer in &mut config.proposers {
        // Longer than the longest round trip, so that no attempt times out.
        proposer.phase1_timeout = Duration::from_secs(1);
        proposer.phase2_timeout = Duration::from_secs(1);
    }
    let mut workload = ScriptedWorkload::default();
    for proposer in 0..3u32 {
        for op in 0..4u64 {
            let instance = Instance::new(u64::from(proposer), op);
            workload = workload.op(proposer, Time::ZERO, instance, "v");
        }
    }
    let mut sim = Sim::new(config, workload).unwrap();
    sim.run(&mut ());
    assert!(sim.checker().violations().is_empty());
    let workload = sim.workload();
    assert_eq!(workload.outcomes.len(), 12);
    for proposer in 0..3usize {
        let expected = 2 * geography.quorum_round_trip(proposer, 2);
        // Round trip = half of a→b plus half of b→a: zone 0's majority is itself and zone 1,
        // (77 + 76) / 2 = 76.5 ms.
        let by_hand = [76.5, 76.5, 130.5][proposer];
        assert_eq!(expected, Duration::from_secs_f64(2.0 * by_hand / 1e3));
        let mut previous = Time::ZERO;
        for (i, (who, _, outcome)) in workload.outcomes.iter().enumerate() {
            if who.0 as usize != proposer {
                continue;
            }
            assert_eq!(*outcome, OpOutcome::Won);
            let ended = workload.ended[i];
            assert_eq!(
                ended.saturating_since(previous),
                expected,
                "proposer {proposer}"
            );
            previous = ended;
        }
    }
}
