//! Operation timings, which only the workload knows (intended start, actual start, outcome):
//! hdrhistograms in microseconds (1 µs to 1 h, 3 significant digits), per run and per second.
//! Percentiles are read from histograms, never averaged.

use hdrhistogram::Histogram;
use paxbench_core::Time;
use paxbench_core::proposer::GiveUpReason;
use paxbench_core::workload::OpOutcome;
use serde::Serialize;

/// The largest latency recorded: one hour, in microseconds.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A histogram of microseconds with the project's bounds.
pub fn latency_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; a failure here is a programming error.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// A histogram that grows as needed, for per-second intervals (most stay small).
pub fn interval_histogram() -> Histogram<u64> {
    #[allow(clippy::expect_used)]
    let mut histogram = Histogram::new(3).expect("valid histogram precision");
    histogram.auto(true);
    histogram
}

/// Records `ns` nanoseconds as microseconds, clamped to the histogram's range.
pub fn record_ns(histogram: &mut Histogram<u64>, ns: u64) {
    let us = (ns / 1_000).clamp(1, MAX_LATENCY_US);
    // Clamped into range, so this cannot fail.
    let _ = histogram.record(us);
}

/// Percentiles of a histogram, in microseconds.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Smallest.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    /// Reads a histogram.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            count: histogram.len(),
            min: histogram.min(),
            mean: histogram.mean(),
            p50: histogram.value_at_quantile(0.5),
            p90: histogram.value_at_quantile(0.9),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            max: histogram.max(),
        }
    }
}

/// One second of the run.
#[derive(Clone, Debug)]
pub struct Second {
    /// Operations that ended in this second.
    pub completed: u64,
    /// Of those, the ones whose own value was chosen: each decided instance has exactly one
    /// (unless agreement broke).
    pub won: u64,
    /// Latency of the operations that ended in this second.
    latency: SecondLatency,
    /// Retries started in this second.
    pub retries: u64,
    /// Preemptions seen in this second.
    pub preemptions: u64,
}

/// A second's latency histogram: open while operations end in it, then encoded (V2, a few
/// hundred bytes where the open histogram holds 64 KiB of counters), so that an hour's run
/// keeps megabytes of seconds, not gigabytes.
#[derive(Clone, Debug)]
enum SecondLatency {
    Open(Histogram<u64>),
    Closed {
        encoded: Vec<u8>,
        p50: u64,
        p99: u64,
    },
}

impl Default for Second {
    fn default() -> Self {
        Self {
            completed: 0,
            won: 0,
            latency: SecondLatency::Open(interval_histogram()),
            retries: 0,
            preemptions: 0,
        }
    }
}

impl Second {
    /// Records an operation's latency; a closed second takes no more.
    pub fn record_latency(&mut self, ns: u64) {
        if let SecondLatency::Open(histogram) = &mut self.latency {
            record_ns(histogram, ns);
        }
    }

    /// The second's latency histogram.
    pub fn latency(&self) -> Histogram<u64> {
        match &self.latency {
            SecondLatency::Open(histogram) => histogram.clone(),
            // Encoded by `close` from a valid histogram: decoding cannot fail.
            SecondLatency::Closed { encoded, .. } => {
                hdrhistogram::serialization::Deserializer::new()
                    .deserialize(&mut encoded.as_slice())
                    .unwrap_or_else(|_| interval_histogram())
            }
        }
    }

    /// The median and 99th percentile latency, µs; zeros for a second with none.
    pub fn quantiles(&self) -> (u64, u64) {
        match &self.latency {
            SecondLatency::Open(histogram) if histogram.is_empty() => (0, 0),
            SecondLatency::Open(histogram) => (
                histogram.value_at_quantile(0.5),
                histogram.value_at_quantile(0.99),
            ),
            SecondLatency::Closed { p50, p99, .. } => (*p50, *p99),
        }
    }

    /// Encodes the histogram: the second is over.
    fn close(&mut self) {
        let (p50, p99) = self.quantiles();
        if let SecondLatency::Open(histogram) = &self.latency {
            use hdrhistogram::serialization::Serializer as _;
            let mut encoded = Vec::new();
            if hdrhistogram::serialization::V2Serializer::new()
                .serialize(histogram, &mut encoded)
                .is_ok()
            {
                self.latency = SecondLatency::Closed { encoded, p50, p99 };
            }
        }
    }
}

pub(super) fn second_of(
    seconds: &mut Vec<Second>,
    at: Time,
    warmup_end: Time,
) -> Option<&mut Second> {
    if at < warmup_end {
        return None;
    }
    let index = ((at.0 - warmup_end.0) / 1_000_000_000) as usize;
    if index >= seconds.len() {
        // Time only moves on: the seconds before this one are over.
        for second in seconds.iter_mut().rev().take_while(|s| s.is_open()) {
            second.close();
        }
        seconds.resize_with(index + 1, Second::default);
    }
    seconds.get_mut(index)
}

impl Second {
    fn is_open(&self) -> bool {
        matches!(self.latency, SecondLatency::Open(_))
    }
}

/// Per-operation measurements, kept by the workload.
#[derive(Debug)]
pub struct OpMetrics {
    warmup_end: Time,
    /// Intended start to outcome: what a user waits, including time queued behind a slow system.
    pub latency: Histogram<u64>,
    /// Actual start to outcome.
    pub service: Histogram<u64>,
    /// Actual start minus intended start (open loop): how far the generator fell behind.
    pub lag: Histogram<u64>,
    /// Measured operations started.
    pub started: u64,
    /// Won: their own value was chosen.
    pub won: u64,
    /// Lost the race: another value was chosen.
    pub lost: u64,
    /// Gave up after the retry budget.
    pub gave_up: u64,
    /// Gave up at the deadline.
    pub timed_out: u64,
    /// The last outcome recorded.
    pub last_outcome: Time,
    /// Per-second buckets, from the end of the warmup.
    pub seconds: Vec<Second>,
    /// With zones: each proposer's zone, and the latency of each zone's proposers.
    zone_of: Vec<usize>,
    /// Latency (intended start to outcome) by proposer zone; empty without zones.
    pub by_zone: Vec<Histogram<u64>>,
}

impl OpMetrics {
    /// Empty, measuring from `warmup_end`.
    pub fn new(warmup_end: Time) -> Self {
        Self {
            warmup_end,
            latency: latency_histogram(),
            service: latency_histogram(),
            lag: latency_histogram(),
            started: 0,
            won: 0,
            lost: 0,
            gave_up: 0,
            timed_out: 0,
            last_outcome: warmup_end,
            seconds: Vec::new(),
            zone_of: Vec::new(),
            by_zone: Vec::new(),
        }
    }

    /// Also measures latency by zone: proposer `i` is in zone `zone_of[i]` of `zones`.
    pub fn with_zones(mut self, zone_of: Vec<usize>, zones: usize) -> Self {
        self.by_zone = (0..zones).map(|_| latency_histogram()).collect();
        self.zone_of = zone_of;
        self
    }

    /// A measured operation intended at `intended` starts at `started`.
    pub fn on_start(&mut self, intended: Time, started: Time) {
        self.started += 1;
        record_ns(
            &mut self.lag,
            started.0.saturating_sub(intended.0).max(1_000),
        );
    }

    /// A measured operation of proposer `proposer` (by index) ended.
    pub fn on_outcome(
        &mut self,
        proposer: usize,
        (now, intended, started): (Time, Time, Time),
        outcome: OpOutcome,
    ) {
        let latency = now.0.saturating_sub(intended.0);
        record_ns(&mut self.latency, latency);
        if let Some(zone) = self.zone_of.get(proposer)
            && let Some(histogram) = self.by_zone.get_mut(*zone)
        {
            record_ns(histogram, latency);
        }
        record_ns(&mut self.service, now.0.saturating_sub(started.0));
        let won = match outcome {
            OpOutcome::Won => {
                self.won += 1;
                true
            }
            OpOutcome::Lost => {
                self.lost += 1;
                false
            }
            OpOutcome::GaveUp(GiveUpReason::RetryBudget) => {
                self.gave_up += 1;
                false
            }
            OpOutcome::GaveUp(GiveUpReason::Deadline) => {
                self.timed_out += 1;
                false
            }
        };
        self.last_outcome = self.last_outcome.max(now);
        if let Some(second) = second_of(&mut self.seconds, now, self.warmup_end) {
            second.completed += 1;
            second.won += u64::from(won);
            second.record_latency(latency);
        }
    }

    /// Operations that ended.
    pub fn completed(&self) -> u64 {
        self.won + self.lost + self.gave_up + self.timed_out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_is_encoded_once_the_next_begins_and_reads_back_the_same() {
        let mut seconds = Vec::new();
        let start = Time(0);
        for us in 1..=1_000u64 {
            if let Some(second) = second_of(&mut seconds, Time(us * 1_000), start) {
                second.record_latency(us * 1_000);
            }
        }
        let open = seconds[0].latency();
        assert!(seconds[0].is_open());
        let _ = second_of(&mut seconds, Time(1_500_000_000), start);
        assert!(!seconds[0].is_open(), "second 0 is over");
        assert!(seconds[1].is_open());
        let closed = seconds[0].latency();
        assert_eq!(closed, open);
        assert_eq!(seconds[0].quantiles(), (500, 990));
        // A late outcome for a closed second changes nothing.
        seconds[0].record_latency(7_000_000);
        assert_eq!(seconds[0].latency().len(), 1_000);
    }
}
