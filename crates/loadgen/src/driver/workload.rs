//! Operation generation: which proposer proposes what, on which instance, when. Implements the
//! core's `Workload` trait, so the simulator and the real-cluster driver ask the same object.
//! It also times every operation (intended start, actual start, outcome), because only it
//! knows when an operation was meant to start.

use std::time::Duration;

use paxbench_core::rng::{DetRng, Stream};
use paxbench_core::workload::{NextOp, OpOutcome, OpSpec, ValueTag, Workload, unique_value};
use paxbench_core::{Instance, ProposerId, ProposerIndex, Time, Value};
use rustc_hash::FxHashMap;

use crate::config::{Arrival, KeyDistribution, LoopMode, RunKeys, Scenario};
use crate::measure::OpMetrics;

/// Keys used by races start here, above any configured key range.
const RACE_KEY_BASE: u64 = crate::config::MAX_KEYS;

/// Draws keys from a distribution.
#[derive(Clone, Debug)]
pub enum KeySampler {
    /// Uniform over `0..keys`.
    Uniform {
        /// Key count.
        keys: u64,
    },
    /// Zipfian over `0..keys`, by inverse-CDF lookup in a precomputed table.
    Zipfian {
        /// Cumulative probabilities, one per key.
        cdf: Vec<f64>,
    },
    /// `hot` keys get `probability` of the draws.
    Hotspot {
        /// Key count.
        keys: u64,
        /// Hot key count.
        hot: u64,
        /// Share of draws that go to hot keys.
        probability: f64,
    },
}

impl KeySampler {
    /// A sampler for `keys` keys.
    pub fn new(distribution: KeyDistribution, keys: u64) -> Self {
        match distribution {
            KeyDistribution::Uniform => KeySampler::Uniform { keys },
            KeyDistribution::Zipfian { theta } => {
                let weights: Vec<f64> = (1..=keys)
                    .map(|rank| 1.0 / (rank as f64).powf(theta))
                    .collect();
                let total: f64 = weights.iter().sum();
                let mut running = 0.0;
                let cdf = weights
                    .iter()
                    .map(|w| {
                        running += w / total;
                        running
                    })
                    .collect();
                KeySampler::Zipfian { cdf }
            }
            KeyDistribution::Hotspot {
                fraction,
                probability,
            } => KeySampler::Hotspot {
                keys,
                hot: ((keys as f64 * fraction).ceil() as u64).clamp(1, keys),
                probability,
            },
        }
    }

    /// One key.
    pub fn sample(&self, rng: &mut DetRng) -> u64 {
        match self {
            KeySampler::Uniform { keys } => rng.below(*keys),
            KeySampler::Zipfian { cdf } => {
                let u = rng.next_f64();
                cdf.partition_point(|c| *c < u).min(cdf.len() - 1) as u64
            }
            KeySampler::Hotspot {
                keys,
                hot,
                probability,
            } => {
                if *hot == *keys || rng.chance(*probability) {
                    rng.below(*hot)
                } else {
                    hot + rng.below(keys - hot)
                }
            }
        }
    }
}

#[derive(Clone, Debug)]
struct Current {
    instance: Instance,
    intended: Time,
    started: Time,
    measured: bool,
}

#[derive(Clone, Debug, Default)]
struct InstanceState {
    active: u32,
    decided: bool,
}

#[derive(Clone, Debug, Default)]
struct RaceGroup {
    round: u64,
    finished: u32,
}

/// The next slot of each key: a new operation on a key goes to the first slot not yet decided.
/// Keys below the key space's size, up to [`SlotTable::DENSE_KEYS`], are in an array indexed by
/// key (one cache miss per access where a hash map of a million keys took two, twice per
/// decision); any other key is in a map.
#[derive(Debug, Default)]
struct SlotTable {
    dense: Vec<u64>,
    sparse: FxHashMap<u64, u64>,
}

impl SlotTable {
    /// Key spaces up to this size (128 MiB of slots) get an array.
    const DENSE_KEYS: u64 = 1 << 24;

    fn new(keys: u64) -> Self {
        Self {
            // Zeroed memory: the kernel maps its pages only as keys are touched.
            dense: vec![0; keys.min(Self::DENSE_KEYS) as usize],
            sparse: FxHashMap::default(),
        }
    }

    fn get(&self, key: u64) -> u64 {
        match self.dense.get(key as usize) {
            Some(slot) => *slot,
            None => self.sparse.get(&key).copied().unwrap_or(0),
        }
    }

    fn raise(&mut self, key: u64, to: u64) {
        let slot = match self.dense.get_mut(key as usize) {
            Some(slot) => slot,
            None => self.sparse.entry(key).or_insert(0),
        };
        *slot = (*slot).max(to);
    }
}

/// The load generator's workload for one scenario.
#[derive(Debug)]
pub struct Generator {
    mode: LoopMode,
    arrival: Arrival,
    think_time: Duration,
    interval_ns: f64,
    contenders: u32,
    sampler: KeySampler,
    rng: DetRng,
    value_size: usize,
    run: RunKeys,
    first_proposer: ProposerId,
    warmup_end: Time,
    end: Option<Time>,
    measured_ops_limit: Option<u64>,
    measured_ops_issued: u64,
    next_arrival: f64,
    next_slot: SlotTable,
    instances: FxHashMap<Instance, InstanceState>,
    current: Vec<Option<Current>>,
    ops_issued: Vec<u64>,
    race_groups: Vec<RaceGroup>,
    race_round_of: Vec<u64>,
    stopped: bool,
    /// Operation-level measurements.
    pub metrics: OpMetrics,
}

impl Generator {
    /// The workload of `scenario`, with proposers `0..proposers`, whose ids start at
    /// `first_proposer`.
    pub fn new(scenario: &Scenario, first_proposer: ProposerId) -> Self {
        let proposers = scenario.workload.proposers as usize;
        let warmup_end = Time(scenario.workload.warmup.as_nanos() as u64);
        let groups = if scenario.workload.mode == LoopMode::Race {
            proposers.div_ceil(scenario.workload.contenders as usize)
        } else {
            0
        };
        Self {
            mode: scenario.workload.mode,
            arrival: scenario.workload.arrival,
            think_time: scenario.workload.think_time,
            interval_ns: 1e9 / scenario.workload.rate.max(1e-9),
            contenders: scenario.workload.contenders,
            sampler: KeySampler::new(scenario.workload.distribution, scenario.workload.keys),
            rng: Stream::Workload.rng(scenario.seed),
            value_size: scenario.workload.value_size as usize,
            run: scenario.run,
            first_proposer,
            warmup_end,
            end: scenario
                .workload
                .duration
                .map(|d| Time(warmup_end.0 + d.as_nanos() as u64)),
            measured_ops_limit: scenario.workload.ops,
            measured_ops_issued: 0,
            next_arrival: 0.0,
            next_slot: SlotTable::new(scenario.workload.keys),
            instances: FxHashMap::default(),
            current: vec![None; proposers],
            ops_issued: vec![0; proposers],
            race_groups: vec![RaceGroup::default(); groups],
            race_round_of: vec![0; proposers],
            stopped: false,
            metrics: match &scenario.target.zones {
                Some(zones) => OpMetrics::new(warmup_end).with_zones(
                    zones.proposer_zones(scenario.workload.proposers),
                    zones.names.len(),
                ),
                None => OpMetrics::new(warmup_end),
            },
        }
    }

    /// When measuring starts.
    pub fn warmup_end(&self) -> Time {
        self.warmup_end
    }

    /// Operations started and not yet ended.
    pub fn in_flight(&self) -> u64 {
        self.current.iter().filter(|c| c.is_some()).count() as u64
    }

    /// Whether every operation has been issued and none is in flight.
    pub fn is_finished(&self) -> bool {
        self.issuing_done(Time(u64::MAX)) && self.current.iter().all(Option::is_none)
    }

    fn issuing_done(&self, at: Time) -> bool {
        self.stopped
            || self.end.is_some_and(|end| at >= end)
            || self
                .measured_ops_limit
                .is_some_and(|limit| self.measured_ops_issued >= limit)
    }

    fn value(&self, proposer: ProposerIndex, op: u64) -> Value {
        let tag = ValueTag {
            run: self.run.tag,
            proposer: ProposerId(self.first_proposer.0 + proposer.0),
            op,
        };
        unique_value(tag, self.value_size)
    }

    fn issue(
        &mut self,
        proposer: ProposerIndex,
        instance: Instance,
        intended: Time,
        now: Time,
    ) -> NextOp {
        let index = proposer.0 as usize;
        if self.issuing_done(intended) {
            return NextOp::Done;
        }
        let started = intended.max(now);
        // Measured when it actually starts after the warmup: the rule the protocol metrics
        // apply too. Its latency still counts from the intended start.
        let measured = started >= self.warmup_end;
        if measured {
            self.measured_ops_issued += 1;
        }
        let op = self.ops_issued[index];
        self.ops_issued[index] += 1;
        self.instances.entry(instance).or_default().active += 1;
        self.current[index] = Some(Current {
            instance,
            intended,
            started,
            measured,
        });
        if measured {
            self.metrics.on_start(intended, started);
        }
        NextOp::Start(OpSpec {
            instance,
            value: self.value(proposer, op),
            at: started,
        })
    }

    fn next_instance(&mut self) -> Instance {
        let key = self.sampler.sample(&mut self.rng);
        let slot = self.next_slot.get(key);
        Instance::new(self.run.key(key), slot)
    }
}

impl Workload for Generator {
    fn next_op(&mut self, proposer: ProposerIndex, now: Time) -> NextOp {
        let index = proposer.0 as usize;
        if index >= self.current.len() || self.current[index].is_some() {
            return NextOp::Done;
        }
        match self.mode {
            LoopMode::Closed => {
                let first = self.ops_issued[index] == 0;
                let intended = if first { now } else { now + self.think_time };
                let instance = self.next_instance();
                self.issue(proposer, instance, intended, now)
            }
            LoopMode::Open => {
                let intended = Time(self.next_arrival as u64);
                let gap = match self.arrival {
                    Arrival::Constant => self.interval_ns,
                    Arrival::Poisson => self.rng.exponential(self.interval_ns),
                };
                if self.issuing_done(intended) {
                    return NextOp::Done;
                }
                self.next_arrival += gap;
                let instance = self.next_instance();
                self.issue(proposer, instance, intended, now)
            }
            LoopMode::Race => {
                let group_index = index / self.contenders as usize;
                let round = self.race_round_of[index];
                let group = &self.race_groups[group_index];
                if round > group.round {
                    // This proposer finished the round; the others have not.
                    return NextOp::Wait;
                }
                if self.issuing_done(now) {
                    return NextOp::Done;
                }
                let key = self.run.key(RACE_KEY_BASE + group_index as u64);
                let instance = Instance::new(key, round);
                self.issue(proposer, instance, now, now)
            }
        }
    }

    fn on_outcome(
        &mut self,
        proposer: ProposerIndex,
        now: Time,
        instance: Instance,
        outcome: OpOutcome,
    ) {
        let index = proposer.0 as usize;
        let Some(current) = self.current.get_mut(index).and_then(Option::take) else {
            return;
        };
        debug_assert_eq!(current.instance, instance);
        if current.measured {
            self.metrics
                .on_outcome(index, (now, current.intended, current.started), outcome);
        }
        let decided = matches!(outcome, OpOutcome::Won | OpOutcome::Lost);
        if let Some(state) = self.instances.get_mut(&instance) {
            state.active -= 1;
            state.decided |= decided;
            if state.decided {
                self.next_slot
                    .raise(RunKeys::local_key(instance.key), instance.slot + 1);
            }
            if state.active == 0 {
                self.instances.remove(&instance);
            }
        }
        if self.mode == LoopMode::Race {
            let group_index = index / self.contenders as usize;
            let members = (self.current.len() - group_index * self.contenders as usize)
                .min(self.contenders as usize) as u32;
            self.race_round_of[index] += 1;
            let group = &mut self.race_groups[group_index];
            group.finished += 1;
            if group.finished == members {
                group.finished = 0;
                group.round += 1;
            }
        }
    }

    fn end(&self) -> Option<Time> {
        self.end
    }

    fn stop(&mut self) {
        self.stopped = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipfian_prefers_low_ranks_and_hotspots_their_hot_keys() {
        let mut rng = DetRng::new(1);
        let zipf = KeySampler::new(KeyDistribution::Zipfian { theta: 0.99 }, 1000);
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            counts[zipf.sample(&mut rng) as usize] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[500]);
        let hot = KeySampler::new(
            KeyDistribution::Hotspot {
                fraction: 0.01,
                probability: 0.9,
            },
            1000,
        );
        let hot_draws = (0..100_000).filter(|_| hot.sample(&mut rng) < 10).count();
        assert!((88_000..92_000).contains(&hot_draws), "{hot_draws}");
    }
}
