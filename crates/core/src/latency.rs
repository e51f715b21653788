//! Delay distributions: what one message waits on a link. The simulator draws every message's
//! delay from one; the transport's fault layer and the load generator draw the delays they add
//! to real links from the same ones, so every target emulates the same network.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rng::DetRng;

/// One-way delay distribution of a link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Latency {
    /// Always the same.
    Constant(Duration),
    /// Uniform between the bounds, inclusive.
    Uniform {
        /// Shortest delay.
        min: Duration,
        /// Longest delay.
        max: Duration,
    },
    /// Normal, truncated at zero.
    Normal {
        /// Mean delay.
        mean: Duration,
        /// Standard deviation.
        std_dev: Duration,
    },
    /// Exponential: many short delays and a long tail.
    Exponential {
        /// Mean delay.
        mean: Duration,
    },
    /// A floor plus a heavy (Pareto, shape 3) tail: most messages near the floor, a few far
    /// beyond it, as on a congested wide-area path.
    Pareto {
        /// The shortest delay.
        min: Duration,
        /// The tail's mean, added to `min` on average.
        tail_mean: Duration,
    },
}

/// The Pareto tail's shape: 3 keeps its variance finite while its tail stays heavy.
const PARETO_SHAPE: f64 = 3.0;

/// How jitter spreads a delay around its base: the `distribution` of a zone matrix and of a
/// fault-layer link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// No jitter: always the base.
    Constant,
    /// Uniform within base ± jitter.
    Uniform,
    /// Normal around the base, with the jitter as its standard deviation (truncated at zero).
    #[default]
    Normal,
    /// The base plus a heavy tail whose mean is the jitter.
    Pareto,
}

impl Latency {
    /// A delay of `base` spread by `jitter` in the given shape. Uniform and normal jitter keep
    /// the median at `base` (a uniform spread is clipped at zero from below).
    pub fn shaped(shape: Shape, base: Duration, jitter: Duration) -> Self {
        if jitter.is_zero() {
            return Latency::Constant(base);
        }
        match shape {
            Shape::Constant => Latency::Constant(base),
            Shape::Uniform => Latency::Uniform {
                min: base.saturating_sub(jitter),
                max: base + jitter,
            },
            Shape::Normal => Latency::Normal {
                mean: base,
                std_dev: jitter,
            },
            Shape::Pareto => Latency::Pareto {
                min: base,
                tail_mean: jitter,
            },
        }
    }

    /// One delay drawn from the distribution.
    pub fn sample(&self, rng: &mut DetRng) -> Duration {
        match *self {
            Latency::Constant(d) => d,
            Latency::Uniform { min, max } => {
                Duration::from_nanos(rng.between(nanos(min), nanos(max)))
            }
            Latency::Normal { mean, std_dev } => {
                let draw = nanos(mean) as f64 + nanos(std_dev) as f64 * rng.standard_normal();
                Duration::from_nanos(draw.max(0.0) as u64)
            }
            Latency::Exponential { mean } => {
                Duration::from_nanos(rng.exponential(nanos(mean) as f64) as u64)
            }
            Latency::Pareto { min, tail_mean } => {
                // Lomax (Pareto II) by inversion: scale × ((1 − u)^(−1/α) − 1) has mean
                // scale / (α − 1).
                let scale = nanos(tail_mean) as f64 * (PARETO_SHAPE - 1.0);
                let u = rng.next_f64();
                let tail = scale * ((1.0 - u).powf(-1.0 / PARETO_SHAPE) - 1.0);
                min + Duration::from_nanos(tail.min(1e15) as u64)
            }
        }
    }

    /// The delay half of all messages stay under, for reports and for timeouts that scale
    /// with it. Exact for every shape but the truncated normal, where it is the mean.
    pub fn median(&self) -> Duration {
        match *self {
            Latency::Constant(d) => d,
            Latency::Uniform { min, max } => (min + max) / 2,
            Latency::Normal { mean, .. } => mean,
            Latency::Exponential { mean } => mean.mul_f64(std::f64::consts::LN_2),
            Latency::Pareto { min, tail_mean } => {
                let scale = tail_mean.as_secs_f64() * (PARETO_SHAPE - 1.0);
                min + Duration::from_secs_f64(scale * (2f64.powf(1.0 / PARETO_SHAPE) - 1.0))
            }
        }
    }

    /// A delay few messages exceed (about the 99.9th percentile), so that timeouts derived
    /// from it do not fire on an ordinary message.
    pub fn high(&self) -> Duration {
        match *self {
            Latency::Constant(d) => d,
            Latency::Uniform { max, .. } => max,
            Latency::Normal { mean, std_dev } => mean + std_dev.mul_f64(3.1),
            Latency::Exponential { mean } => mean.mul_f64(6.9),
            Latency::Pareto { min, tail_mean } => {
                let scale = tail_mean.as_secs_f64() * (PARETO_SHAPE - 1.0);
                min + Duration::from_secs_f64(scale * (1000f64.powf(1.0 / PARETO_SHAPE) - 1.0))
            }
        }
    }
}

pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_samples_stay_in_range() {
        let mut rng = DetRng::new(5);
        let us = Duration::from_micros;
        let uniform = Latency::Uniform {
            min: us(10),
            max: us(20),
        };
        let normal = Latency::Normal {
            mean: us(10),
            std_dev: us(50),
        };
        let pareto = Latency::Pareto {
            min: us(100),
            tail_mean: us(20),
        };
        for _ in 0..1_000 {
            let d = uniform.sample(&mut rng);
            assert!(d >= us(10) && d <= us(20));
            let _ = normal.sample(&mut rng); // truncated at zero: cannot be negative
            assert!(pareto.sample(&mut rng) >= us(100));
        }
        assert_eq!(Latency::Constant(us(7)).sample(&mut rng), us(7));
    }

    #[test]
    fn shapes_keep_their_median_and_the_pareto_tail_its_mean() {
        let ms = Duration::from_millis;
        let mut rng = DetRng::new(11);
        for shape in [
            Shape::Constant,
            Shape::Uniform,
            Shape::Normal,
            Shape::Pareto,
        ] {
            let latency = Latency::shaped(shape, ms(40), ms(2));
            let mut draws: Vec<Duration> = (0..20_001).map(|_| latency.sample(&mut rng)).collect();
            draws.sort_unstable();
            let median = draws[10_000];
            let expected = latency.median();
            let error = median.abs_diff(expected);
            assert!(
                error < Duration::from_micros(100),
                "{shape:?}: {median:?} vs {expected:?}"
            );
            let above = draws.iter().filter(|d| **d > latency.high()).count();
            assert!(
                above <= 60,
                "{shape:?}: {above} of 20001 above {:?}",
                latency.high()
            );
        }
        let pareto = Latency::shaped(Shape::Pareto, ms(40), ms(2));
        let mean_tail = (0..100_000)
            .map(|_| (pareto.sample(&mut rng) - ms(40)).as_secs_f64())
            .sum::<f64>()
            / 100_000.0;
        assert!((mean_tail - 0.002).abs() < 0.0002, "{mean_tail}");
        assert_eq!(
            Latency::shaped(Shape::Normal, ms(5), Duration::ZERO),
            Latency::Constant(ms(5))
        );
    }
}
