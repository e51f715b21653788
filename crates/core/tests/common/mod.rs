//! Helpers shared by the simulator's integration tests.
#![allow(dead_code)]

use std::collections::VecDeque;

use paxbench_core::workload::{NextOp, OpOutcome, OpSpec, Workload};
use paxbench_core::{Instance, ProposerIndex, Time, Value};

/// Operations given up front: each proposer runs its own list in order, each at its time.
#[derive(Default)]
pub struct ScriptedWorkload {
    ops: Vec<(ProposerIndex, VecDeque<OpSpec>)>,
    pub outcomes: Vec<(ProposerIndex, Instance, OpOutcome)>,
    /// When each outcome came, in the order of `outcomes`.
    pub ended: Vec<Time>,
}

impl ScriptedWorkload {
    pub fn op(mut self, proposer: u32, at: Time, instance: Instance, value: &str) -> Self {
        let spec = OpSpec {
            instance,
            value: Value::from(value.as_bytes().to_vec()),
            at,
        };
        let id = ProposerIndex(proposer);
        match self.ops.iter_mut().find(|(p, _)| *p == id) {
            Some((_, list)) => list.push_back(spec),
            None => self.ops.push((id, VecDeque::from([spec]))),
        }
        self
    }
}

impl Workload for ScriptedWorkload {
    fn next_op(&mut self, proposer: ProposerIndex, now: Time) -> NextOp {
        let Some((_, list)) = self.ops.iter_mut().find(|(p, _)| *p == proposer) else {
            return NextOp::Done;
        };
        match list.pop_front() {
            Some(mut op) => {
                op.at = op.at.max(now);
                NextOp::Start(op)
            }
            None => NextOp::Done,
        }
    }

    fn on_outcome(
        &mut self,
        proposer: ProposerIndex,
        now: Time,
        instance: Instance,
        outcome: OpOutcome,
    ) {
        self.outcomes.push((proposer, instance, outcome));
        self.ended.push(now);
    }
}
