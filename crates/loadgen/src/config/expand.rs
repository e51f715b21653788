//! Sweep expansion: every combination of swept values of a [`BenchFile`] becomes one concrete
//! [`Scenario`], labelled by its swept fields.

use std::time::Duration;

use serde::Serialize;

use super::faults::expand_faults;
use super::file::BenchFile;
use super::label::display_value;
use super::scenario::{
    LeaderSettings, MeasureSettings, ProposerSettings, RunKeys, Scenario, TargetSettings,
    WorkloadSettings, node_ids,
};
use super::sweep::Sweep;
use super::zones::ZonesSpec;

/// Picks one value per sweepable field; records the lengths on the first pass.
struct Cell<'a> {
    choice: &'a [usize],
    next: usize,
    lengths: Vec<usize>,
    swept: Vec<(String, String)>,
}

impl Cell<'_> {
    fn pick<T: Clone + Serialize>(&mut self, field: &str, sweep: &Sweep<T>) -> T {
        let i = self.choice.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        self.lengths.push(sweep.values().len());
        let value = sweep.values()[i.min(sweep.values().len() - 1)].clone();
        if sweep.is_swept() {
            self.swept.push((field.into(), display_value(&value)));
        }
        value
    }
}

/// Saturates instead of panicking on absurd values; [`Scenario::validate`] then refuses anything
/// above [`MAX_TIME`].
fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value.max(0.0)).unwrap_or(Duration::MAX)
}

fn millis(value: f64) -> Duration {
    seconds(value / 1e3)
}

impl BenchFile {
    fn cell(&self, index: usize, cell: &mut Cell<'_>) -> Scenario {
        let (t, w, p) = (&self.target, &self.workload, &self.proposer);
        let id_scheme = cell.pick("id_scheme", &p.id_scheme);
        let zones = Some(cell.pick("zones", &t.zones))
            .filter(|z| *z != ZonesSpec::default())
            .map(ZonesSpec::resolved);
        let node_ids = node_ids(t.kind, t.attach.as_ref(), t.nodes);
        // Unset timeouts and the livelock window scale with the zones' widest round trip.
        let mut scaled = Vec::new();
        let default_ms = ZonesSpec::default_wait(zones.as_ref(), &node_ids).as_secs_f64() * 1e3;
        let mut or_scaled = |field: &str, value: Option<f64>| {
            value.unwrap_or_else(|| {
                if zones.is_some() {
                    scaled.push(field.to_string());
                }
                default_ms
            })
        };
        let phase1_ms = p
            .phase1_timeout_ms
            .as_ref()
            .map(|s| cell.pick("phase1_timeout_ms", s));
        let phase2_ms = p
            .phase2_timeout_ms
            .as_ref()
            .map(|s| cell.pick("phase2_timeout_ms", s));
        let phase1_ms = or_scaled("proposer.phase1_timeout_ms", phase1_ms);
        let phase2_ms = or_scaled("proposer.phase2_timeout_ms", phase2_ms);
        let livelock_ms = or_scaled(
            "measure.livelock_window_ms",
            self.measure.livelock_window_ms,
        );
        let scenario = Scenario {
            index,
            label: String::new(),
            swept: Vec::new(),
            seed: self.seed,
            target: TargetSettings {
                kind: t.kind,
                nodes: t.nodes,
                storage: cell.pick("storage", &t.storage),
                reject_mode: cell.pick("reject_mode", &t.reject_mode),
                learner_fanout: cell.pick("learner_fanout", &t.learner_fanout),
                transport: cell.pick("transport", &t.transport),
                carrier: cell.pick("carrier", &t.carrier),
                attach: t.attach.clone(),
                sim: t.sim.clone(),
                cpus: cell.pick("cpus", &t.cpus),
                zones,
                quorum: cell.pick("quorum", &t.quorum),
                protocol: cell.pick("protocol", &t.protocol),
                leader: LeaderSettings {
                    heartbeat: millis(t.leader.heartbeat_ms),
                    election_timeout: millis(t.leader.election_timeout_ms),
                    batch: cell.pick("batch", &t.leader.batch),
                    pipeline: t.leader.pipeline,
                    forward: t.leader.forward,
                    initial: t.leader.initial.as_ref().map(|s| cell.pick("initial", s)),
                    thrifty: t.leader.thrifty,
                },
            },
            workload: WorkloadSettings {
                proposers: cell.pick("proposers", &w.proposers),
                keys: cell.pick("keys", &w.keys),
                distribution: cell.pick("distribution", &w.distribution),
                mode: cell.pick("mode", &w.mode),
                think_time: Duration::from_micros(cell.pick("think_time_us", &w.think_time_us)),
                rate: cell.pick("rate", &w.rate),
                arrival: cell.pick("arrival", &w.arrival),
                contenders: cell.pick("contenders", &w.contenders),
                value_size: w.value_size,
                warmup: seconds(w.warmup_s),
                duration: w.duration_s.map(seconds),
                ops: w.ops,
            },
            proposer: ProposerSettings {
                id_scheme,
                clock_resolution: Duration::from_nanos(
                    cell.pick("clock_resolution_ns", &p.clock_resolution_ns)
                        .max(1),
                ),
                clock_skew: Duration::from_micros(cell.pick("clock_skew_us", &p.clock_skew_us)),
                clock_drift_ppm: cell.pick("clock_drift_ppm", &p.clock_drift_ppm),
                phase1_timeout: millis(phase1_ms),
                phase2_timeout: millis(phase2_ms),
                backoff: cell.pick("backoff", &p.backoff),
                max_attempts: cell.pick("max_attempts", &p.max_attempts),
                deadline: p.deadline_ms.map(millis),
            },
            faults: expand_faults(&self.faults),
            expect_violations: self.expect_violations.applies_to(id_scheme),
            measure: MeasureSettings {
                livelock_window: millis(livelock_ms),
                pings: self.measure.pings,
                evidence: self.measure.evidence,
                repeat: self.measure.repeat,
                start_at: self.measure.start_at.clone(),
            },
            run: RunKeys::default(),
            scaled,
        };
        Scenario {
            label: if cell.swept.is_empty() {
                "default".into()
            } else {
                cell.swept
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            },
            swept: std::mem::take(&mut cell.swept),
            ..scenario
        }
    }

    /// How many values each sweepable field has, in the order [`BenchFile::cell`] picks them.
    fn sweep_lengths(&self) -> Vec<usize> {
        let mut probe = Cell {
            choice: &[],
            next: 0,
            lengths: Vec::new(),
            swept: Vec::new(),
        };
        self.cell(0, &mut probe);
        probe.lengths
    }

    /// How many scenarios the sweep makes, without making them.
    pub fn scenario_count(&self) -> u128 {
        self.sweep_lengths()
            .iter()
            .fold(1u128, |n, len| n.saturating_mul(*len as u128))
    }

    /// Every combination of the swept values, in order (the last field varies fastest).
    pub fn scenarios(&self) -> Vec<Scenario> {
        let lengths = self.sweep_lengths();
        let mut choice = vec![0usize; lengths.len()];
        let mut scenarios = Vec::new();
        loop {
            let mut cell = Cell {
                choice: &choice,
                next: 0,
                lengths: Vec::new(),
                swept: Vec::new(),
            };
            scenarios.push(self.cell(scenarios.len(), &mut cell));
            // Odometer increment, last field fastest.
            let mut position = lengths.len();
            loop {
                if position == 0 {
                    return scenarios;
                }
                position -= 1;
                choice[position] += 1;
                if choice[position] < lengths[position] {
                    break;
                }
                choice[position] = 0;
            }
        }
    }
}
