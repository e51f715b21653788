//! The crate's only source of randomness: a seeded xoshiro256++ generator. It is written here,
//! not taken from a crate, so that a seed gives the same run on every version of every
//! dependency: reproducible histories are part of what the harness promises.

use serde::{Deserialize, Serialize};

/// A seeded pseudo-random generator (xoshiro256++, seeded through splitmix64).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DetRng {
    s: [u64; 4],
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl DetRng {
    /// A generator whose whole output is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        Self {
            s: [
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
            ],
        }
    }

    /// An independent generator for a sub-component, e.g. one per proposer, derived from this
    /// one's seed and a stream number.
    pub fn fork(seed: u64, stream: u64) -> Self {
        let mut sm = seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
        Self::new(splitmix64(&mut sm))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[0]
            .wrapping_add(self.s[3])
            .rotate_left(23)
            .wrapping_add(self.s[0]);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`, with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[0, bound)`; zero when `bound` is zero. Lemire's multiply-shift, whose bias is
    /// below 2^-64 per draw and irrelevant to a benchmark.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// Uniform in `[low, high]` (inclusive); `low` when `high < low`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        let span = high - low;
        if span == u64::MAX {
            return self.next_u64();
        }
        low + self.below(span + 1)
    }

    /// True with probability `p` (clamped to `[0, 1]`).
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.next_f64() < p
    }

    /// A standard normal sample (Box–Muller).
    pub fn standard_normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64(); // (0, 1], keeps ln finite
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// An exponential sample with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.next_f64()).ln()
    }
}

/// A named random stream of a run. Every consumer of randomness draws from its own stream, so
/// adding a proposer, a clock or a fault never shifts what another consumer draws.
///
/// Stream numbers are a kind tag in the high 32 bits and an index in the low 32, so no two
/// named streams share a number for any index below 2^32; [`DetRng::fork`] is injective in the
/// stream number, so no two streams of one seed start from the same state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The workload: keys, arrival times, start spreads.
    Workload,
    /// Proposer `i`'s backoff jitter (by local index).
    Proposer(u32),
    /// Proposer `i`'s clock offset and drift.
    Clock(u32),
    /// The simulated network's fates.
    Network,
    /// Injected link faults (drops, duplicates, jitter of the transport's fault layer).
    Faults,
    /// The delays the load generator adds to proposer links under WAN zones.
    Zones,
    /// Node `n`'s Multi-Paxos leader role: election timeouts and backoff.
    Leader(u32),
}

impl Stream {
    fn number(self) -> u64 {
        let (kind, index) = match self {
            Stream::Workload => (1, 0),
            Stream::Network => (2, 0),
            Stream::Faults => (3, 0),
            Stream::Zones => (6, 0),
            Stream::Proposer(i) => (4, i),
            Stream::Clock(i) => (5, i),
            Stream::Leader(n) => (7, n),
        };
        (kind << 32) | u64::from(index)
    }

    /// The generator of this stream for a run seeded with `seed`.
    pub fn rng(self, seed: u64) -> DetRng {
        DetRng::fork(seed, self.number())
    }

    /// A seed drawn from this stream, for state machines that take a `u64` seed.
    pub fn seed(self, seed: u64) -> u64 {
        self.rng(seed).next_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_streams_coincide_for_a_million_proposers() {
        // The configs allow up to 1,000,000 proposers; every stream of one seed must differ.
        const PROPOSERS: u32 = 1_000_000;
        for seed in [0, 1, u64::MAX] {
            let mut seen = std::collections::HashSet::with_capacity(3 * PROPOSERS as usize + 4);
            let named = [
                Stream::Workload,
                Stream::Network,
                Stream::Faults,
                Stream::Zones,
            ];
            let indexed = (0..PROPOSERS)
                .flat_map(|i| [Stream::Proposer(i), Stream::Clock(i), Stream::Leader(i)]);
            for stream in named.into_iter().chain(indexed) {
                assert!(
                    seen.insert(stream.seed(seed)),
                    "{stream:?} repeats another stream's first draw (seed {seed})"
                );
            }
        }
    }

    #[test]
    fn same_seed_same_stream_and_forks_differ() {
        let mut a = DetRng::new(7);
        let mut b = DetRng::new(7);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(DetRng::fork(7, 1).next_u64(), DetRng::fork(7, 2).next_u64());
    }

    #[test]
    fn ranges_hold() {
        let mut rng = DetRng::new(1);
        for _ in 0..10_000 {
            assert!(rng.below(10) < 10);
            let v = rng.between(5, 7);
            assert!((5..=7).contains(&v));
            let f = rng.next_f64();
            assert!((0.0..1.0).contains(&f));
        }
        assert_eq!(rng.below(0), 0);
        assert_eq!(rng.between(9, 3), 9);
    }

    #[test]
    fn distributions_have_roughly_the_right_mean() {
        let mut rng = DetRng::new(3);
        let n = 100_000;
        let mean_exp: f64 = (0..n).map(|_| rng.exponential(2.0)).sum::<f64>() / n as f64;
        assert!((mean_exp - 2.0).abs() < 0.05, "{mean_exp}");
        let mean_norm: f64 = (0..n).map(|_| rng.standard_normal()).sum::<f64>() / n as f64;
        assert!(mean_norm.abs() < 0.02, "{mean_norm}");
    }
}
