//! Retry delays after a lost race or a timeout. A policy is a pure function of the retry number,
//! the previous delay and a seeded RNG, so a test can assert the exact schedule it produces.
//! The jittered policies follow the AWS Architecture Blog's "Exponential Backoff and Jitter".

use std::hash::{Hash, Hasher};
use std::time::Duration;

use crate::rng::DetRng;

/// How long a proposer waits before retrying with a new ID.
#[derive(Clone, Copy, Debug)]
pub enum BackoffPolicy {
    /// Retry at once. Dueling proposers then livelock for as long as their timing lines up.
    None,
    /// The same delay every time.
    Constant {
        /// The delay.
        delay: Duration,
    },
    /// `min(cap, base × factor^(retry-1))`, with no randomness: proposers that collided once
    /// collide again on the same schedule.
    Exponential {
        /// The first delay.
        base: Duration,
        /// The growth per retry (2.0 doubles).
        factor: f64,
        /// The largest delay.
        cap: Duration,
    },
    /// Uniform in `[0, min(cap, base × factor^(retry-1))]`: spreads retries apart.
    ExponentialFullJitter {
        /// The first delay bound.
        base: Duration,
        /// The growth per retry.
        factor: f64,
        /// The largest delay.
        cap: Duration,
    },
    /// `min(cap, uniform[base, 3 × previous])`: grows from the previous delay, not the retry count.
    DecorrelatedJitter {
        /// The smallest delay, and the first.
        base: Duration,
        /// The largest delay.
        cap: Duration,
    },
}

impl BackoffPolicy {
    /// The default on a LAN, for proposers and campaigning leaders alike: exponential with full
    /// jitter from 1 ms, doubling, capped at 100 ms.
    pub const LAN: BackoffPolicy = BackoffPolicy::ExponentialFullJitter {
        base: Duration::from_millis(1),
        factor: 2.0,
        cap: Duration::from_millis(100),
    };

    /// The name used in configs and reports.
    pub fn name(&self) -> &'static str {
        match self {
            BackoffPolicy::None => "none",
            BackoffPolicy::Constant { .. } => "constant",
            BackoffPolicy::Exponential { .. } => "exponential",
            BackoffPolicy::ExponentialFullJitter { .. } => "exponential-full-jitter",
            BackoffPolicy::DecorrelatedJitter { .. } => "decorrelated-jitter",
        }
    }

    /// The delay before retry number `retry` (1 for the first retry), given the delay used
    /// before the previous retry (zero before the first).
    pub fn delay(&self, retry: u32, previous: Duration, rng: &mut DetRng) -> Duration {
        match *self {
            BackoffPolicy::None => Duration::ZERO,
            BackoffPolicy::Constant { delay } => delay,
            BackoffPolicy::Exponential { base, factor, cap } => {
                exponential_bound(base, factor, cap, retry)
            }
            BackoffPolicy::ExponentialFullJitter { base, factor, cap } => {
                let bound = exponential_bound(base, factor, cap, retry);
                Duration::from_nanos(rng.between(0, nanos(bound)))
            }
            BackoffPolicy::DecorrelatedJitter { base, cap } => {
                let low = nanos(base);
                let high = nanos(previous).saturating_mul(3).max(low);
                Duration::from_nanos(rng.between(low, high)).min(cap)
            }
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn exponential_bound(base: Duration, factor: f64, cap: Duration, retry: u32) -> Duration {
    let exponent = retry.saturating_sub(1).min(1_024) as i32;
    let scaled = nanos(base) as f64 * factor.max(1.0).powi(exponent);
    if !scaled.is_finite() || scaled >= nanos(cap) as f64 {
        cap
    } else {
        Duration::from_nanos(scaled as u64)
    }
}

// Policies are part of a proposer's state, which the model checker hashes; the factor is
// compared by its bits, which is exact for configured constants.
impl PartialEq for BackoffPolicy {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for BackoffPolicy {}
impl Hash for BackoffPolicy {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl BackoffPolicy {
    fn key(&self) -> (u8, Duration, u64, Duration) {
        match *self {
            BackoffPolicy::None => (0, Duration::ZERO, 0, Duration::ZERO),
            BackoffPolicy::Constant { delay } => (1, delay, 0, Duration::ZERO),
            BackoffPolicy::Exponential { base, factor, cap } => (2, base, factor.to_bits(), cap),
            BackoffPolicy::ExponentialFullJitter { base, factor, cap } => {
                (3, base, factor.to_bits(), cap)
            }
            BackoffPolicy::DecorrelatedJitter { base, cap } => (4, base, 0, cap),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn none_and_constant() {
        let mut rng = DetRng::new(1);
        assert_eq!(BackoffPolicy::None.delay(3, MS, &mut rng), Duration::ZERO);
        let c = BackoffPolicy::Constant { delay: 5 * MS };
        assert_eq!(c.delay(1, Duration::ZERO, &mut rng), 5 * MS);
        assert_eq!(c.delay(9, 5 * MS, &mut rng), 5 * MS);
    }

    #[test]
    fn exponential_grows_by_factor_and_stops_at_cap() {
        let mut rng = DetRng::new(1);
        let p = BackoffPolicy::Exponential {
            base: MS,
            factor: 2.0,
            cap: 10 * MS,
        };
        let delays: Vec<_> = (1..=6)
            .map(|r| p.delay(r, Duration::ZERO, &mut rng))
            .collect();
        assert_eq!(delays, [MS, 2 * MS, 4 * MS, 8 * MS, 10 * MS, 10 * MS]);
        assert_eq!(p.delay(u32::MAX, Duration::ZERO, &mut rng), 10 * MS);
    }

    #[test]
    fn full_jitter_stays_within_the_exponential_bound_and_varies() {
        let mut rng = DetRng::new(2);
        let p = BackoffPolicy::ExponentialFullJitter {
            base: MS,
            factor: 2.0,
            cap: 100 * MS,
        };
        let draws: Vec<_> = (0..200)
            .map(|_| p.delay(4, Duration::ZERO, &mut rng))
            .collect();
        assert!(draws.iter().all(|d| *d <= 8 * MS));
        assert!(draws.iter().any(|d| *d < 4 * MS) && draws.iter().any(|d| *d > 4 * MS));
    }

    #[test]
    fn decorrelated_jitter_grows_from_the_previous_delay_and_is_capped() {
        let mut rng = DetRng::new(3);
        let p = BackoffPolicy::DecorrelatedJitter {
            base: MS,
            cap: 50 * MS,
        };
        let mut previous = Duration::ZERO;
        for retry in 1..100 {
            let d = p.delay(retry, previous, &mut rng);
            assert!(d >= MS.min(50 * MS) && d <= 50 * MS);
            assert!(d <= (previous * 3).max(MS));
            previous = d;
        }
    }

    #[test]
    fn same_seed_same_schedule() {
        let p = BackoffPolicy::ExponentialFullJitter {
            base: MS,
            factor: 2.0,
            cap: 100 * MS,
        };
        let run = |seed| {
            let mut rng = DetRng::new(seed);
            (1..10)
                .map(|r| p.delay(r, Duration::ZERO, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }
}
