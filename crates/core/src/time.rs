//! Time as an input: [`Time`] is the driver's monotonic "now", and [`ClockModel`] turns it into
//! the wall-clock reading a proposer would see, with offset, drift, steps and a resolution.
//! Nothing in this crate reads a clock; drivers pass `now` into every `handle_*` call.

use std::ops::{Add, Sub};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rng::DetRng;

/// A point on the driver's monotonic timeline, in nanoseconds since the driver's epoch.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Time(pub u64);

impl Time {
    /// The driver's epoch.
    pub const ZERO: Time = Time(0);
    /// Later than any time a run reaches; used for "no deadline".
    pub const MAX: Time = Time(u64::MAX);

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// `secs` seconds after the epoch (config times are seconds); negative or NaN is the epoch,
    /// and a time past `Time::MAX` saturates.
    pub fn from_secs_f64(secs: f64) -> Time {
        Time((secs * 1e9) as u64)
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Time) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Time(self.0.saturating_add(nanos))
    }
}

impl Sub for Time {
    type Output = Duration;
    fn sub(self, earlier: Time) -> Duration {
        self.saturating_since(earlier)
    }
}

/// How a proposer's wall clock relates to the driver's monotonic time.
///
/// `read(now) = truncate(epoch + now × (1 + drift) + offset + steps, resolution)`, never below
/// zero. The simulator gives each proposer its own model; a real driver sets `epoch_ns` to the
/// system clock at the start of the run and adds the configured skew as `offset_ns`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClockModel {
    /// Wall-clock nanoseconds at driver time zero.
    pub epoch_ns: u64,
    /// Constant skew added to every reading.
    pub offset_ns: i64,
    /// Rate error in parts per billion (1 ppm = 1,000 ppb); positive runs fast.
    pub drift_ppb: i64,
    /// Granularity of readings; a 1 ms clock returns multiples of 1,000,000 ns.
    pub resolution_ns: u64,
    /// Sum of the steps applied with [`ClockModel::step`] (NTP jumps, operator changes).
    pub stepped_ns: i64,
}

impl Default for ClockModel {
    fn default() -> Self {
        Self::ideal()
    }
}

impl ClockModel {
    /// A perfect nanosecond clock that starts at zero.
    pub const fn ideal() -> Self {
        Self {
            epoch_ns: 0,
            offset_ns: 0,
            drift_ppb: 0,
            resolution_ns: 1,
            stepped_ns: 0,
        }
    }

    /// A clock reading `epoch_ns` at time zero, at `resolution`, with an offset uniform in
    /// `±max_offset` and a drift uniform in `±max_drift_ppm`, both drawn from `rng` (a
    /// proposer's [`Stream::Clock`](crate::rng::Stream::Clock)).
    pub fn skewed(
        mut rng: DetRng,
        epoch_ns: u64,
        max_offset: Duration,
        max_drift_ppm: f64,
        resolution: Duration,
    ) -> Self {
        let max_offset = max_offset.as_nanos().min(i64::MAX as u128) as f64;
        let offset = (rng.next_f64() * 2.0 - 1.0) * max_offset;
        let drift = (rng.next_f64() * 2.0 - 1.0) * max_drift_ppm;
        Self::ideal()
            .with_epoch(epoch_ns)
            .with_offset(offset as i64)
            .with_drift_ppm(drift)
            .with_resolution(resolution)
    }

    /// Sets the skew.
    pub fn with_offset(mut self, offset_ns: i64) -> Self {
        self.offset_ns = offset_ns;
        self
    }

    /// Moves the clock by `by_ns` more (a zone's clock offset on top of a proposer's own).
    pub fn shifted(mut self, by_ns: i64) -> Self {
        self.offset_ns = self.offset_ns.saturating_add(by_ns);
        self
    }

    /// Sets the drift, in parts per million.
    pub fn with_drift_ppm(mut self, ppm: f64) -> Self {
        self.drift_ppb = (ppm * 1_000.0).round() as i64;
        self
    }

    /// Sets the resolution; zero is taken as one nanosecond.
    pub fn with_resolution(mut self, resolution: Duration) -> Self {
        self.resolution_ns = u64::try_from(resolution.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        self
    }

    /// Sets the wall-clock reading at driver time zero.
    pub fn with_epoch(mut self, epoch_ns: u64) -> Self {
        self.epoch_ns = epoch_ns;
        self
    }

    /// Jumps the clock forward (positive) or back (negative) from now on.
    pub fn step(&mut self, delta_ns: i64) {
        self.stepped_ns = self.stepped_ns.saturating_add(delta_ns);
    }

    /// The wall-clock reading at driver time `now`.
    pub fn read(&self, now: Time) -> u64 {
        let t = i128::from(now.0);
        let drifted = t + t * i128::from(self.drift_ppb) / 1_000_000_000;
        let raw = i128::from(self.epoch_ns)
            + drifted
            + i128::from(self.offset_ns)
            + i128::from(self.stepped_ns);
        let clamped = raw.clamp(0, i128::from(u64::MAX)) as u64;
        let resolution = self.resolution_ns.max(1);
        clamped - clamped % resolution
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_truncates_readings() {
        let clock = ClockModel::ideal().with_resolution(Duration::from_millis(1));
        assert_eq!(clock.read(Time(1_999_999)), 1_000_000);
        assert_eq!(clock.read(Time(2_000_000)), 2_000_000);
    }

    #[test]
    fn drift_offset_and_steps_apply() {
        let mut clock = ClockModel::ideal().with_drift_ppm(100.0).with_offset(-500);
        // 1 s at +100 ppm is 100 µs fast, then 500 ns behind.
        assert_eq!(clock.read(Time(1_000_000_000)), 1_000_100_000 - 500);
        clock.step(-2_000_000_000);
        assert_eq!(clock.read(Time(1_000_000_000)), 0, "readings clamp at zero");
    }

    #[test]
    fn time_arithmetic_saturates() {
        assert_eq!(Time(5) - Time(9), Duration::ZERO);
        assert_eq!(Time(u64::MAX - 1) + Duration::from_secs(1), Time::MAX);
    }
}
