//! Multi-Paxos in the simulator, with known answers: a stable leader decides everything with
//! no duel and no lost race; a killed leader is replaced and nothing decided is lost; a
//! partitioned leader decides nothing without a quorum; dueling candidates back off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use paxbench_core::ProtocolConfig;
use paxbench_core::leader::{ForwardMode, LeaderConfig, LeaderEvent};
use paxbench_core::sim::{
    Address, Fault, Latency, LinkModel, Sim, SimConfig, SimObserver, SimReport,
};
use paxbench_core::workload::UniformWorkload;
use paxbench_core::{NodeId, Quorums, Time, host::Observer};

const MS: Duration = Duration::from_millis(1);
const US: Duration = Duration::from_micros(1);

/// Every leader event, with its time and node.
#[derive(Default)]
struct Leaders(Vec<(Time, NodeId, LeaderEvent)>);

impl Observer for Leaders {}
impl SimObserver for Leaders {
    fn on_leader_event(&mut self, now: Time, node: NodeId, event: &LeaderEvent) {
        self.0.push((now, node, event.clone()));
    }
}

impl Leaders {
    fn elected(&self) -> Vec<(Time, NodeId)> {
        self.0
            .iter()
            .filter(|(_, _, e)| matches!(e, LeaderEvent::Elected { .. }))
            .map(|(t, n, _)| (*t, *n))
            .collect()
    }

    fn chosen_by(&self, node: NodeId, after: Time) -> usize {
        self.0
            .iter()
            .filter(|(t, n, e)| *n == node && *t > after && matches!(e, LeaderEvent::Chosen { .. }))
            .count()
    }
}

fn multi(nodes: usize, clients: usize, seed: u64, pinned: Option<u32>) -> SimConfig {
    let mut config = SimConfig::new(nodes, clients, seed);
    config.links = LinkModel {
        latency: Latency::Uniform {
            min: 20 * US,
            max: 120 * US,
        },
        ..LinkModel::default()
    };
    let mut leader = LeaderConfig::new((0..nodes as u32).map(NodeId).collect());
    leader.initial_leader = pinned.map(NodeId);
    config.protocol = ProtocolConfig::MultiPaxos(leader);
    config
}

fn run(config: SimConfig, keys: u64, ops: u64) -> (SimReport, Leaders, Sim<UniformWorkload>) {
    let workload = UniformWorkload::new(keys, ops, 100 * US, MS, config.seed);
    let mut sim = Sim::new(config, workload).unwrap();
    let mut leaders = Leaders::default();
    let report = sim.run(&mut leaders);
    (report, leaders, sim)
}

#[test]
fn a_stable_leader_decides_every_request_with_no_duel_and_no_lost_race() {
    let (report, leaders, sim) = run(multi(3, 16, 3, Some(0)), 1, 20);
    let violations = sim.checker().violations();
    assert!(violations.is_empty(), "{violations:?}");
    let s = report.stats;
    assert_eq!(s.host.ops_started, 320);
    assert_eq!(s.host.ops_won, 320, "{s:?}");
    assert_eq!(
        (s.host.ops_lost, s.host.preemptions, s.host.timeouts),
        (0, 0, 0)
    );
    assert_eq!(leaders.elected(), [(leaders.elected()[0].0, NodeId(0))]);
    assert_eq!(s.leaders.phase1_runs, 1, "phase 1 once for every instance");
    assert_eq!(s.leaders.decided, 320);
    assert!(s.leaders.batched >= s.leaders.decided);
    assert!(
        s.leaders.batched > s.leaders.batches,
        "sixteen clients on one leader share batches: {:?}",
        s.leaders
    );
    assert_eq!(
        sim.checker().stats().decided,
        320,
        "one instance per request"
    );
}

#[test]
fn without_a_pinned_leader_one_is_elected_and_clients_find_it() {
    let mut config = multi(5, 8, 11, None);
    if let ProtocolConfig::MultiPaxos(leader) = &mut config.protocol {
        leader.forward = ForwardMode::Forward;
    }
    let (report, leaders, sim) = run(config, 4, 10);
    assert!(sim.checker().violations().is_empty());
    assert_eq!(report.stats.host.ops_won, 80);
    assert!(!leaders.elected().is_empty());
    assert!(report.stats.leaders.forwards + report.stats.leaders.redirects > 0);
}

#[test]
fn a_killed_leader_is_replaced_and_nothing_decided_is_lost() {
    let mut config = multi(3, 8, 5, Some(0));
    let crash = Time::ZERO + 5 * MS;
    config.faults = vec![
        (crash, Fault::Crash(NodeId(0))),
        (Time::ZERO + 600 * MS, Fault::Restart(NodeId(0))),
    ];
    let (report, leaders, sim) = run(config, 2, 60);
    let violations = sim.checker().violations();
    assert!(violations.is_empty(), "{violations:?}");
    let s = report.stats;
    assert_eq!(s.host.ops_won, s.host.ops_started, "{s:?}");
    let elected = leaders.elected();
    assert!(
        elected.iter().any(|(t, n)| *t > crash && *n != NodeId(0)),
        "{elected:?}"
    );
    assert!(
        leaders.chosen_by(NodeId(0), Time::ZERO) > 0,
        "it led before the crash"
    );
    assert!(
        s.host.timeouts > 0,
        "clients of the dead leader timed out: {s:?} {elected:?}"
    );
    // The restarted node rejoins as a follower; it does not unseat the new leader.
    assert!(elected.iter().all(|(t, n)| *n != NodeId(0) || *t < crash));
}

#[test]
fn a_partitioned_leader_decides_nothing_without_a_quorum() {
    let mut config = multi(3, 6, 9, Some(0));
    let cut = Time::ZERO + 5 * MS;
    config.faults = vec![
        (
            cut,
            Fault::Cut(vec![
                (Address::Node(NodeId(0)), Address::Node(NodeId(1))),
                (Address::Node(NodeId(0)), Address::Node(NodeId(2))),
            ]),
        ),
        (Time::ZERO + 2_000 * MS, Fault::Heal),
    ];
    let (report, leaders, sim) = run(config, 3, 60);
    assert!(sim.checker().violations().is_empty());
    // In flight at the cut: a phase-2 round trip at most, then nothing.
    assert_eq!(leaders.chosen_by(NodeId(0), cut + MS), 0);
    assert!(
        leaders
            .elected()
            .iter()
            .any(|(t, n)| *t > cut && *n != NodeId(0))
    );
    assert_eq!(report.stats.host.ops_won, report.stats.host.ops_started);
}

#[test]
fn flexible_quorums_decide_with_a_phase2_quorum_of_two_of_five() {
    let mut config = multi(5, 8, 4, Some(0));
    config.quorums = Quorums {
        phase1: 4,
        phase2: 2,
    };
    for p in &mut config.proposers {
        p.quorums = config.quorums;
    }
    if let ProtocolConfig::MultiPaxos(leader) = &mut config.protocol {
        leader.quorums = config.quorums;
        leader.thrifty = true;
    }
    config.faults = vec![(Time::ZERO + 5 * MS, Fault::Crash(NodeId(0)))];
    let (report, leaders, sim) = run(config, 2, 40);
    assert!(sim.checker().violations().is_empty());
    assert_eq!(report.stats.host.ops_won, report.stats.host.ops_started);
    assert!(
        leaders.elected().len() >= 2,
        "a four-node phase 1 after the crash"
    );
    // Thrifty: a batch goes to this node and one other, not to all five.
    assert!(
        report.stats.sent < report.stats.host.ops_started * 20,
        "{:?}",
        report.stats
    );
}
