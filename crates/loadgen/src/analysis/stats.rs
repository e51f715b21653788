//! Statistics over repetitions of a scenario: the median with a distribution-free confidence
//! interval, and the exact Mann–Whitney U test that `compare` uses to tell a change from noise.
//! Nothing here assumes the figures are normally distributed: a shared machine's are not.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The confidence the intervals aim at.
pub const CONFIDENCE: f64 = 0.95;

/// The significance level of [`judge`]: a change is reported only when a difference this
/// large or larger would arise by chance less often than this.
pub const ALPHA: f64 = 0.05;

/// One figure over the repetitions of a scenario.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spread {
    /// Repetitions.
    pub n: u32,
    /// Their median.
    pub median: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// The lower end of the confidence interval of the median.
    pub ci_low: f64,
    /// Its upper end.
    pub ci_high: f64,
    /// The interval's exact coverage: at least 0.95 from six repetitions; with fewer, the
    /// widest interval (min to max) covers less (0.9375 with five), and this says so.
    pub confidence: f64,
}

impl Spread {
    /// The spread of `values` (NaNs are ignored).
    pub fn of(values: &[f64]) -> Self {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        if n == 0 {
            return Self::default();
        }
        let (low, high, confidence) = median_interval(n);
        Self {
            n: n as u32,
            median: median(&sorted),
            min: sorted[0],
            max: sorted[n - 1],
            ci_low: sorted[low],
            ci_high: sorted[high],
            confidence,
        }
    }

    /// Half the interval's width: the `±` of `median ± half-width`.
    pub fn half_width(&self) -> f64 {
        (self.ci_high - self.ci_low) / 2.0
    }

    /// The half-width as a fraction of the median (0 when the median is 0).
    pub fn relative_half_width(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            self.half_width() / self.median.abs()
        }
    }
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The order statistics `[low, high]` (0-based) that bound the median of `n` samples with at
/// least [`CONFIDENCE`], and the interval's exact coverage. The median lies below the `j`-th
/// smallest sample unless at least `j` samples fall below it, a Binomial(n, ½) event; so
/// `[x(j), x(n+1−j)]` covers it with probability `1 − 2·P(B < j)`. With too few samples for
/// the target, the widest interval and its lower coverage are returned.
pub fn median_interval(n: usize) -> (usize, usize, f64) {
    if n < 2 {
        return (0, n.saturating_sub(1), 0.0);
    }
    let coverage = |j: usize| 1.0 - 2.0 * binomial_half_cdf(n, j - 1);
    let mut j = 1;
    while j < n / 2 && coverage(j + 1) >= CONFIDENCE {
        j += 1;
    }
    (j - 1, n - j, coverage(j))
}

/// P(B ≤ k) for B ~ Binomial(n, ½).
fn binomial_half_cdf(n: usize, k: usize) -> f64 {
    let mut term = 0.5_f64.powi(n as i32); // C(n, 0) / 2^n
    let mut sum = term;
    for i in 1..=k.min(n) {
        term *= (n + 1 - i) as f64 / i as f64;
        sum += term;
    }
    sum
}

/// The two-sided p-value of the Mann–Whitney U test that `a` and `b` come from one
/// distribution: exact (by counting rank arrangements) for samples up to 30 each without
/// ties, the normal approximation with a tie correction otherwise.
pub fn mann_whitney_p(a: &[f64], b: &[f64]) -> f64 {
    let (m, n) = (a.len(), b.len());
    if m == 0 || n == 0 {
        return 1.0;
    }
    // Mid-ranks over the pooled samples.
    let mut pooled: Vec<(f64, bool)> = a
        .iter()
        .map(|v| (*v, true))
        .chain(b.iter().map(|v| (*v, false)))
        .collect();
    pooled.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut rank_sum_a = 0.0;
    let mut ties = Vec::new();
    let mut i = 0;
    while i < pooled.len() {
        let mut j = i;
        while j + 1 < pooled.len() && pooled[j + 1].0 == pooled[i].0 {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_a += mid * pooled[i..=j].iter().filter(|(_, in_a)| *in_a).count() as f64;
        if j > i {
            ties.push(j - i + 1);
        }
        i = j + 1;
    }
    let u = rank_sum_a - (m * (m + 1)) as f64 / 2.0;
    let u = u.min((m * n) as f64 - u);
    if ties.is_empty() && m <= 30 && n <= 30 {
        let counts = u_distribution(m, n);
        let total: f64 = counts.iter().sum();
        let tail: f64 = counts[..=(u.floor() as usize)].iter().sum();
        return (2.0 * tail / total).min(1.0);
    }
    let (m, n) = (m as f64, n as f64);
    let total = m + n;
    let tie_term: f64 = ties
        .iter()
        .map(|t| {
            let t = *t as f64;
            t * t * t - t
        })
        .sum();
    let variance = m * n / 12.0 * ((total + 1.0) - tie_term / (total * (total - 1.0)));
    if variance <= 0.0 {
        return 1.0;
    }
    let z = ((m * n / 2.0 - u) - 0.5).max(0.0) / variance.sqrt();
    (2.0 * normal_upper_tail(z)).min(1.0)
}

/// How many arrangements of `m` and `n` ranks give each U, 0 ..= m·n.
fn u_distribution(m: usize, n: usize) -> Vec<f64> {
    // counts[i][u] for i of the m first-sample values placed so far, built up over n.
    let max = m * n;
    let mut table = vec![vec![vec![0.0; max + 1]; n + 1]; m + 1];
    for row in table[0].iter_mut() {
        row[0] = 1.0;
    }
    for column in table.iter_mut() {
        column[0][0] = 1.0;
    }
    for i in 1..=m {
        for j in 1..=n {
            for u in 0..=i * j {
                let with_a_last = if u >= j { table[i - 1][j][u - j] } else { 0.0 };
                table[i][j][u] = with_a_last + table[i][j - 1][u];
            }
        }
    }
    table[m][n].clone()
}

/// P(Z > z) for a standard normal Z (Abramowitz and Stegun 26.2.17, error below 7.5e-8).
fn normal_upper_tail(z: f64) -> f64 {
    if z < 0.0 {
        return 1.0 - normal_upper_tail(-z);
    }
    let t = 1.0 / (1.0 + 0.231_641_9 * z);
    let poly = t
        * (0.319_381_530
            + t * (-0.356_563_782
                + t * (1.781_477_937 + t * (-1.821_255_978 + t * 1.330_274_429))));
    (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt() * poly
}

/// What a comparison of one figure concludes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// The test says the samples differ and the medians differ by more than the threshold.
    Changed {
        /// The new median over the baseline's.
        ratio: f64,
        /// The test's two-sided p-value.
        p: f64,
    },
    /// The difference is within the threshold, or the test cannot tell it from noise.
    WithinNoise {
        /// The new median over the baseline's.
        ratio: f64,
        /// The test's two-sided p-value.
        p: f64,
    },
    /// One run on a side: the ratio is known, whether it is noise is not.
    CannotTell {
        /// The new figure over the baseline's.
        ratio: f64,
    },
}

impl Verdict {
    /// Whether the figure changed, by the test.
    pub fn changed(&self) -> bool {
        matches!(self, Verdict::Changed { .. })
    }

    /// The new median (or figure) over the baseline's.
    pub fn ratio(&self) -> f64 {
        match self {
            Verdict::Changed { ratio, .. }
            | Verdict::WithinNoise { ratio, .. }
            | Verdict::CannotTell { ratio } => *ratio,
        }
    }
}

/// Compares `new` with `base` (each one figure per repetition): a change needs both the
/// Mann–Whitney test at [`ALPHA`] and a ratio of medians outside `1 ± threshold`. With a single
/// run on either side it says that it cannot tell.
pub fn judge(base: &[f64], new: &[f64], threshold: f64) -> Verdict {
    let ratio = {
        let (b, n) = (Spread::of(base).median, Spread::of(new).median);
        if b != 0.0 { n / b } else { f64::NAN }
    };
    if base.len() < 2 || new.len() < 2 {
        return Verdict::CannotTell { ratio };
    }
    let p = mann_whitney_p(base, new);
    if p < ALPHA && (ratio - 1.0).abs() > threshold {
        Verdict::Changed { ratio, p }
    } else {
        Verdict::WithinNoise { ratio, p }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxbench_core::rng::DetRng as Rng;

    #[test]
    fn the_median_interval_has_its_stated_coverage() {
        // n = 5: min..max, 1 − 2/32.
        assert_eq!(median_interval(5), (0, 4, 1.0 - 2.0 / 32.0));
        // n = 6: min..max covers 1 − 2/64 ≥ 0.95; the next one in would cover only 1 − 14/64.
        assert_eq!(median_interval(6), (0, 5, 1.0 - 2.0 / 64.0));
        // n = 10: x(2)..x(9), 1 − 2·(1 + 10)/1024 = 0.9785.
        let (low, high, confidence) = median_interval(10);
        assert_eq!((low, high), (1, 8));
        assert!((confidence - (1.0 - 22.0 / 1024.0)).abs() < 1e-12);
        // Always at least 95% once there are enough samples, and never more than needed.
        for n in 6..200 {
            let (low, _, confidence) = median_interval(n);
            assert!(confidence >= CONFIDENCE, "n={n}");
            let narrower = 1.0 - 2.0 * binomial_half_cdf(n, low + 1);
            assert!(narrower < CONFIDENCE, "n={n}: a narrower interval would do");
        }
        let spread = Spread::of(&[5.0, 1.0, 4.0, 2.0, 3.0]);
        assert_eq!(
            (spread.median, spread.ci_low, spread.ci_high),
            (3.0, 1.0, 5.0)
        );
        assert_eq!(spread.half_width(), 2.0);
    }

    #[test]
    fn the_exact_u_test_matches_the_tables() {
        // Completely separated samples of 5 and 5: the smallest two-sided p, 2/252.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [6.0, 7.0, 8.0, 9.0, 10.0];
        assert!((mann_whitney_p(&a, &b) - 2.0 / 252.0).abs() < 1e-12);
        assert!((mann_whitney_p(&b, &a) - 2.0 / 252.0).abs() < 1e-12);
        // Interleaved samples: no evidence at all.
        let c = [1.0, 3.0, 5.0, 7.0, 9.0];
        let d = [2.0, 4.0, 6.0, 8.0, 10.0];
        assert!(mann_whitney_p(&c, &d) > 0.5);
        // Ties take the normal approximation and stay in [0, 1].
        let p = mann_whitney_p(&[1.0, 1.0, 2.0], &[1.0, 2.0, 2.0]);
        assert!((0.0..=1.0).contains(&p));
    }

    /// A shared machine's figures: ±5% of noise and, with `slow_runs`, one run in ten 20%
    /// slow.
    fn noisy(rng: &mut Rng, median: f64, n: usize, slow_runs: bool) -> Vec<f64> {
        (0..n)
            .map(|_| {
                let noise = (rng.next_f64() - 0.5) * 0.10;
                let slow = if slow_runs && rng.next_f64() < 0.1 {
                    0.8
                } else {
                    1.0
                };
                median * (1.0 + noise) * slow
            })
            .collect()
    }

    #[test]
    fn samples_of_one_distribution_are_flagged_no_more_often_than_alpha() {
        let mut rng = Rng::new(7);
        let trials = 4_000;
        // With no threshold the test alone decides: its false alarms stay at or below α.
        let flagged = (0..trials)
            .filter(|_| {
                let a = noisy(&mut rng, 100_000.0, 5, true);
                let b = noisy(&mut rng, 100_000.0, 5, true);
                judge(&a, &b, 0.0).changed()
            })
            .count();
        let rate = flagged as f64 / trials as f64;
        assert!(rate <= ALPHA, "false alarms {rate}");
        // With the usual 10% threshold, they are rarer still.
        let flagged = (0..trials)
            .filter(|_| {
                let a = noisy(&mut rng, 100_000.0, 5, true);
                let b = noisy(&mut rng, 100_000.0, 5, true);
                judge(&a, &b, 0.1).changed()
            })
            .count();
        assert!((flagged as f64 / trials as f64) < 0.01, "{flagged}");
    }

    #[test]
    fn a_twenty_percent_shift_over_five_repetitions_is_flagged() {
        let mut rng = Rng::new(11);
        let trials = 1_000;
        let flagged = (0..trials)
            .filter(|_| {
                let a = noisy(&mut rng, 100_000.0, 5, false);
                let b = noisy(&mut rng, 80_000.0, 5, false);
                let verdict = judge(&a, &b, 0.1);
                verdict.changed() && verdict.ratio() < 1.0
            })
            .count();
        assert_eq!(flagged, trials);
        // With a slow run now and then on either side, it is still flagged most of the time.
        let flagged = (0..trials)
            .filter(|_| {
                let a = noisy(&mut rng, 100_000.0, 5, true);
                let b = noisy(&mut rng, 80_000.0, 5, true);
                judge(&a, &b, 0.1).changed()
            })
            .count();
        assert!(
            flagged as f64 / trials as f64 > 0.7,
            "{flagged} of {trials}"
        );
        // And one run a side is never called a change, however large the difference.
        assert!(matches!(
            judge(&[100.0], &[50.0], 0.1),
            Verdict::CannotTell { ratio } if ratio == 0.5
        ));
    }
}
