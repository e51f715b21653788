//! What the types cannot check: ranges, combinations and the fault schedule of a scenario.
//! Errors name the field as written in the file, so the loader can point at its line.

use std::time::Duration;

use paxbench_quic::{DiskFault, TransportKind};

use super::faults::{FaultAction, FaultStep, check_fault_order};
use super::file::*;
use super::scenario::Scenario;

/// The largest value a proposer may propose: it must fit in a frame with room to spare.
pub const MAX_VALUE_SIZE: u32 = paxbench_core::host::MAX_VALUE_BYTES as u32;

/// The most nodes a cluster may have.
pub const MAX_NODES: u32 = 1_000;

/// The most proposers one generator runs.
pub const MAX_PROPOSERS: u32 = 1_000_000;

/// The most keys a workload may have: instance keys keep the upper 32 bits for the run's key
/// namespace, and races use the keys above this.
pub const MAX_KEYS: u64 = 1 << 31;

/// The most repetitions of a scenario.
pub const MAX_REPEAT: u32 = 1_000;

/// The longest time any setting may ask for: a week.
pub const MAX_TIME: Duration = Duration::from_secs(7 * 24 * 3600);

impl Scenario {
    /// Multi-Paxos's own rules: where it runs, and its leader settings.
    fn validate_leader(&self) -> Result<(), (String, String)> {
        let fail = |field: &str, message: String| Err((field.to_string(), message));
        if self.workload.mode == LoopMode::Race {
            return fail(
                "workload.mode",
                "a race needs proposers competing for one instance; under multi-paxos the \
                 leader gives every request its own slot"
                    .into(),
            );
        }
        if self.target.kind != TargetKind::Sim
            && self.workload.keys > paxbench_node::MULTI_PAXOS_MAX_KEYS
        {
            return fail(
                "workload.keys",
                format!(
                    "multi-paxos on real nodes takes at most {} keys: a leader's phase 1 names \
                     every key written (about 20 bytes each) in one frame, and past that an \
                     election cannot complete (the simulator has no such limit)",
                    paxbench_node::MULTI_PAXOS_MAX_KEYS
                ),
            );
        }
        let leader = &self.target.leader;
        if leader.batch == 0 || leader.pipeline == 0 {
            let field = if leader.batch == 0 {
                "target.leader.batch"
            } else {
                "target.leader.pipeline"
            };
            return fail(field, "must be at least 1".into());
        }
        if leader.heartbeat.is_zero() || leader.heartbeat > MAX_TIME {
            return fail(
                "target.leader.heartbeat_ms",
                "must be above 0 and at most a week".into(),
            );
        }
        if leader.election_timeout <= leader.heartbeat || leader.election_timeout > MAX_TIME {
            return fail(
                "target.leader.election_timeout_ms",
                "must exceed the heartbeat, or every follower campaigns between two heartbeats"
                    .into(),
            );
        }
        if let Some(initial) = leader.initial
            && !self.node_ids().contains(&initial)
        {
            return fail(
                "target.leader.initial",
                format!(
                    "node {initial} is not one of the nodes {:?}",
                    self.node_ids()
                ),
            );
        }
        Ok(())
    }

    /// Checks what the types cannot. Errors name the field as written in the file.
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.validate_target()?;
        self.validate_run()?;
        self.validate_workload()?;
        self.validate_timing()?;
        self.validate_faults()
    }

    /// The cluster: its size, how it is reached, its quorums, zones and CPU pins.
    fn validate_target(&self) -> Result<(), (String, String)> {
        let fail = |field: &str, message: String| Err((field.to_string(), message));
        if self.target.nodes == 0 || self.target.nodes > MAX_NODES {
            return fail(
                "target.nodes",
                format!("a cluster has between 1 and {MAX_NODES} nodes"),
            );
        }
        if self.target.kind == TargetKind::Attach {
            match &self.target.attach {
                None => {
                    return fail(
                        "target.attach",
                        "`kind: attach` needs an `attach` section with the nodes".into(),
                    );
                }
                Some(attach) if attach.nodes.is_empty() => {
                    return fail("target.attach.nodes", "list at least one node".into());
                }
                Some(attach)
                    if self.target.transport == TransportKind::Quic
                        && (attach.ca.is_none()
                            || attach.cert.is_none()
                            || attach.key.is_none()) =>
                {
                    return fail("target.attach", "QUIC needs `ca`, `cert` and `key`".into());
                }
                Some(_) => {}
            }
        }
        if self.target.protocol.has_leader() {
            self.validate_leader()?;
        }
        let nodes = self.node_ids().len();
        let quorums = self.quorums();
        if !quorums.fits(nodes) {
            return fail(
                "target.quorum",
                format!(
                    "phase1 {} and phase2 {} must each be between 1 and the {nodes} nodes",
                    quorums.phase1, quorums.phase2
                ),
            );
        }
        if !quorums.intersect(nodes) && !self.expect_violations {
            return fail(
                "target.quorum",
                format!(
                    "phase1 + phase2 = {} does not exceed the {nodes} nodes, so a phase-1 quorum \
                     can miss a chosen value and agreement can break (FPaxos needs Q1 + Q2 > N); \
                     set `expect_violations: true` to run it as a demonstration",
                    quorums.phase1 + quorums.phase2
                ),
            );
        }
        if let Some(zones) = &self.target.zones {
            zones.validate(&self.node_ids())?;
        }
        let allowed = paxbench_node::affinity::online();
        for (field, cpus) in [
            ("target.cpus.generator", &self.target.cpus.generator),
            ("target.cpus.nodes", &self.target.cpus.nodes),
        ] {
            if let Some(cpu) = cpus.iter().find(|c| !allowed.contains(c)) {
                return fail(
                    field,
                    format!("CPU {cpu} is not one of this machine's ({allowed:?})"),
                );
            }
        }
        if !self.target.cpus.nodes.is_empty() && self.target.kind != TargetKind::Spawn {
            return fail(
                "target.cpus.nodes",
                "only spawned nodes can be pinned; pin attached nodes with their own `cpus`".into(),
            );
        }
        Ok(())
    }

    /// How the run is measured: repetitions and a synchronized start.
    fn validate_run(&self) -> Result<(), (String, String)> {
        let fail = |field: &str, message: String| Err((field.to_string(), message));
        if self.measure.repeat == 0 || self.measure.repeat > MAX_REPEAT {
            return fail(
                "measure.repeat",
                format!("between 1 and {MAX_REPEAT} repetitions"),
            );
        }
        if let Some(start_at) = &self.measure.start_at {
            if crate::report::files::parse_utc(start_at).is_none() {
                return fail(
                    "measure.start_at",
                    format!(
                        "{start_at:?} is not an RFC 3339 UTC time such as 2026-11-30T07:00:00Z \
                         (`date -u -d '+2 min' +%FT%TZ` prints one)"
                    ),
                );
            }
            if self.target.kind != TargetKind::Attach {
                return fail(
                    "measure.start_at",
                    "synchronized starts are for generators attached to one cluster \
                     (`target.kind: attach`)"
                        .into(),
                );
            }
            if self.workload.duration.is_none() {
                return fail(
                    "measure.start_at",
                    "synchronized runs need `workload.duration_s`: every generator's run \
                     must end on time for the next one to start together"
                        .into(),
                );
            }
        }
        Ok(())
    }

    /// The workload: proposers, keys, values, the key distribution and the loop.
    fn validate_workload(&self) -> Result<(), (String, String)> {
        let fail = |field: &str, message: String| Err((field.to_string(), message));
        if self.workload.proposers == 0 || self.workload.proposers > MAX_PROPOSERS {
            return fail(
                "workload.proposers",
                format!("between 1 and {MAX_PROPOSERS} proposers"),
            );
        }
        if self.workload.value_size > MAX_VALUE_SIZE {
            return fail(
                "workload.value_size",
                format!("at most {MAX_VALUE_SIZE} bytes (a value travels in one frame)"),
            );
        }
        if self.workload.keys == 0 || self.workload.keys > MAX_KEYS {
            return fail(
                "workload.keys",
                format!("between 1 and {MAX_KEYS} keys (2^31)"),
            );
        }
        match self.workload.distribution {
            KeyDistribution::Zipfian { theta } if !(theta > 0.0 && theta.is_finite()) => {
                return fail(
                    "workload.distribution",
                    format!("zipfian theta must be positive, got {theta}"),
                );
            }
            KeyDistribution::Hotspot {
                fraction,
                probability,
            } if !(fraction > 0.0 && fraction <= 1.0 && (0.0..=1.0).contains(&probability)) => {
                return fail(
                    "workload.distribution",
                    "hotspot needs 0 < fraction ≤ 1 and 0 ≤ probability ≤ 1".into(),
                );
            }
            _ => {}
        }
        if self.workload.mode == LoopMode::Open
            && !(self.workload.rate > 0.0 && self.workload.rate.is_finite())
        {
            return fail(
                "workload.rate",
                format!(
                    "the open loop needs a positive rate, got {}",
                    self.workload.rate
                ),
            );
        }
        if self.workload.mode == LoopMode::Race
            && (self.workload.contenders < 2 || self.workload.contenders > self.workload.proposers)
        {
            return fail(
                "workload.contenders",
                format!(
                    "a race needs 2 ≤ contenders ≤ proposers ({}), got {}",
                    self.workload.proposers, self.workload.contenders
                ),
            );
        }
        if self.workload.duration.is_none() && self.workload.ops.is_none() {
            return fail(
                "workload.duration_s",
                "set `duration_s`, `ops`, or both".into(),
            );
        }
        Ok(())
    }

    /// Timeouts, attempts and every time the config gives, and probabilities.
    fn validate_timing(&self) -> Result<(), (String, String)> {
        let fail = |field: &str, message: String| Err((field.to_string(), message));
        if self.proposer.phase1_timeout.is_zero() || self.proposer.phase2_timeout.is_zero() {
            return fail(
                "proposer.phase1_timeout_ms",
                "phase timeouts must be positive".into(),
            );
        }
        if self.proposer.max_attempts == 0 {
            return fail("proposer.max_attempts", "at least one attempt".into());
        }
        for (field, time) in [
            ("workload.warmup_s", Some(self.workload.warmup)),
            ("workload.duration_s", self.workload.duration),
            ("workload.think_time_us", Some(self.workload.think_time)),
            (
                "proposer.phase1_timeout_ms",
                Some(self.proposer.phase1_timeout),
            ),
            (
                "proposer.phase2_timeout_ms",
                Some(self.proposer.phase2_timeout),
            ),
            ("proposer.deadline_ms", self.proposer.deadline),
        ] {
            if time.is_some_and(|t| t > MAX_TIME) {
                return fail(field, format!("at most {} s", MAX_TIME.as_secs()));
            }
        }
        if let Some(step) = self
            .faults
            .iter()
            .find(|s| s.at_s.is_nan() || s.at_s > MAX_TIME.as_secs_f64())
        {
            return fail(
                "faults",
                format!("at_s {} is past {} s", step.at_s, MAX_TIME.as_secs()),
            );
        }
        for (field, p) in [
            ("target.sim.drop", self.target.sim.drop),
            ("target.sim.duplicate", self.target.sim.duplicate),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return fail(field, format!("{p} is not a probability"));
            }
        }
        Ok(())
    }

    /// The fault schedule: in order, and each step possible on this target.
    fn validate_faults(&self) -> Result<(), (String, String)> {
        let fail = |field: &str, message: String| Err((field.to_string(), message));
        if let Err(message) = check_fault_order(&self.faults) {
            return fail("faults", message);
        }
        for step in &self.faults {
            self.validate_fault(step)?;
        }
        Ok(())
    }

    /// One fault step: its nodes and proposers exist, and the target can inject it.
    fn validate_fault(&self, step: &FaultStep) -> Result<(), (String, String)> {
        let fail = |field: &str, message: String| Err((field.to_string(), message));
        if let FaultAction::KillLeader(k) = &step.action {
            if !self.target.protocol.has_leader() {
                return fail(
                    "faults",
                    "kill-leader needs `target.protocol: multi-paxos`: vanilla Paxos has no \
                     leader"
                        .into(),
                );
            }
            if !(0.0..=MAX_TIME.as_secs_f64()).contains(&k.down_s) {
                return fail("faults", "kill-leader's down_s must be 0 to a week".into());
            }
        }
        let nodes: Vec<u32> = match &step.action {
            FaultAction::Kill(n) | FaultAction::Restart(n) => vec![*n],
            FaultAction::Isolate(ns) => ns.clone(),
            FaultAction::Partition(groups) => {
                if groups.is_empty() || groups.iter().any(Vec::is_empty) {
                    return fail("faults", "a partition needs non-empty groups".into());
                }
                groups.concat()
            }
            FaultAction::DiskFail(disk) => {
                if disk.mode == DiskFault::None {
                    return fail(
                        "faults",
                        "disk-fail needs `fail-write` or `fail-fsync`".into(),
                    );
                }
                vec![disk.node]
            }
            FaultAction::ClockJump(jump) => {
                if let Some(p) = jump
                    .proposers
                    .iter()
                    .find(|p| **p >= self.workload.proposers)
                {
                    return fail(
                        "faults",
                        format!(
                            "proposer {p} does not exist (proposers are 0..{})",
                            self.workload.proposers
                        ),
                    );
                }
                Vec::new()
            }
            FaultAction::SetDrop(p) | FaultAction::SetDuplicate(p) if !(0.0..=1.0).contains(p) => {
                return fail("faults", format!("{p} is not a probability"));
            }
            _ => Vec::new(),
        };
        if let Some(n) = nodes.iter().find(|n| **n == 0 || **n > self.target.nodes) {
            return fail(
                "faults",
                format!(
                    "node {n} does not exist (nodes are 1..={})",
                    self.target.nodes
                ),
            );
        }
        let spawned_only = matches!(
            step.action,
            FaultAction::Kill(_)
                | FaultAction::Restart(_)
                | FaultAction::KillLeader(_)
                | FaultAction::DiskFail(_)
        );
        if self.target.kind == TargetKind::Attach && spawned_only {
            return fail(
                "faults",
                "kill, kill-leader, restart and disk-fail need a spawned cluster or the \
                 simulator"
                    .into(),
            );
        }
        let needs_admin = !matches!(
            step.action,
            FaultAction::Kill(_)
                | FaultAction::Restart(_)
                | FaultAction::KillLeader(_)
                | FaultAction::ClockJump(_)
        );
        if self.target.kind != TargetKind::Sim
            && self.target.transport == TransportKind::Tcp
            && needs_admin
        {
            return fail(
                "faults",
                "network and disk faults are set through admin commands, which need QUIC \
                 (plain TCP does not authenticate the generator)"
                    .into(),
            );
        }
        Ok(())
    }
}
