//! Drift over a long run: throughput and p99 of an early window against the last one, so that a
//! soak run says whether it slowed down as it went. The early window is the second one, not
//! the first, which still holds caches warming and the first checkpoint.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ops::{Second, interval_histogram};

/// Throughput or p99 changing by more than this fraction is drift.
pub const DRIFT_FRACTION: f64 = 0.10;
/// A process growing faster than this after the warmup is drift, MiB per minute.
pub const RSS_DRIFT_MIB_PER_MIN: f64 = 5.0;

/// One window of the measured span.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Its first second after the warmup.
    pub from_s: u64,
    /// Seconds it spans.
    pub seconds: u64,
    /// Decisions per second over it.
    pub decisions_per_s: f64,
    /// p99 of the operations that ended in it, µs.
    pub p99_us: u64,
}

/// The second window of a run against its last.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Drift {
    /// The second window: a minute, or a sixth of a run shorter than six minutes.
    pub early: Window,
    /// The last full window of the same length.
    pub late: Window,
    /// Late decisions per second over early.
    pub throughput_ratio: f64,
    /// Late p99 over early.
    pub p99_ratio: f64,
}

impl Drift {
    /// The drift of a run whose measured seconds are `seconds` (the last one, usually partial,
    /// is left out). `None` for runs too short to have two separate windows.
    pub fn of(seconds: &[Second]) -> Option<Self> {
        let full = seconds.len().saturating_sub(1);
        let window = (full / 6).min(60);
        if window == 0 || full < 3 * window {
            return None;
        }
        let early = Self::window(&seconds[window..2 * window], window as u64);
        let late = Self::window(&seconds[full - window..full], (full - window) as u64);
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        Some(Self {
            throughput_ratio: ratio(late.decisions_per_s, early.decisions_per_s),
            p99_ratio: ratio(late.p99_us as f64, early.p99_us as f64),
            early,
            late,
        })
    }

    fn window(seconds: &[Second], from_s: u64) -> Window {
        let mut latency = interval_histogram();
        let mut won = 0;
        for second in seconds {
            won += second.won;
            // Both grow as needed; adding cannot fail.
            let _ = latency.add(second.latency());
        }
        Window {
            from_s,
            seconds: seconds.len() as u64,
            decisions_per_s: won as f64 / seconds.len().max(1) as f64,
            p99_us: if latency.is_empty() {
                0
            } else {
                latency.value_at_quantile(0.99)
            },
        }
    }

    /// What drifted, in words, or nothing.
    pub fn findings(&self) -> Vec<String> {
        let mut found = Vec::new();
        let span = |w: &Window| format!("{}–{} s", w.from_s, w.from_s + w.seconds);
        if (self.throughput_ratio - 1.0).abs() > DRIFT_FRACTION {
            found.push(format!(
                "decisions per second went from {:.0} ({}) to {:.0} ({}): ×{:.2}",
                self.early.decisions_per_s,
                span(&self.early),
                self.late.decisions_per_s,
                span(&self.late),
                self.throughput_ratio
            ));
        }
        if (self.p99_ratio - 1.0).abs() > DRIFT_FRACTION {
            found.push(format!(
                "p99 went from {} µs ({}) to {} µs ({}): ×{:.2}",
                self.early.p99_us,
                span(&self.early),
                self.late.p99_us,
                span(&self.late),
                self.p99_ratio
            ));
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(rates: impl Iterator<Item = (u64, u64)>) -> Vec<Second> {
        rates
            .map(|(won, latency_us)| {
                let mut second = Second::default();
                second.won = won;
                second.completed = won;
                for _ in 0..100 {
                    second.record_latency(latency_us * 1_000);
                }
                second
            })
            .collect()
    }

    #[test]
    fn a_steady_run_has_no_drift_and_a_slowing_one_does() {
        let steady = seconds((0..601).map(|_| (1_000, 500)));
        let drift = Drift::of(&steady).unwrap();
        assert_eq!((drift.early.from_s, drift.early.seconds), (60, 60));
        assert_eq!(drift.late.from_s, 540);
        assert!(drift.findings().is_empty(), "{drift:?}");

        let slowing = seconds((0..601).map(|s| (1_000 - s, 500 + s)));
        let drift = Drift::of(&slowing).unwrap();
        assert!(drift.throughput_ratio < 0.6, "{drift:?}");
        assert!(drift.p99_ratio > 1.5, "{drift:?}");
        let found = drift.findings();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("60–120 s"), "{found:?}");
    }

    #[test]
    fn a_short_run_uses_sixths_and_a_very_short_one_none() {
        let minute = seconds((0..61).map(|_| (10, 100)));
        let drift = Drift::of(&minute).unwrap();
        assert_eq!((drift.early.from_s, drift.early.seconds), (10, 10));
        assert_eq!(drift.late.from_s, 50);
        assert!(Drift::of(&seconds((0..5).map(|_| (1, 1)))).is_none());
    }
}
