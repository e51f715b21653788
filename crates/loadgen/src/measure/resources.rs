//! Resource and noise telemetry from `/proc`, sampled about once a second while a scenario runs:
//! the resident memory and CPU of the generator and of every spawned node, and the machine's CPU
//! steal and the CPU that other processes used. A figure measured while a neighbour took half
//! the machine is partly a measurement of the neighbour; the summary says so.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Kernel clock ticks per second in `/proc/stat` and `/proc/<pid>/stat` (`USER_HZ`): 100 on
/// every Linux architecture this project builds for.
const TICKS_PER_S: f64 = 100.0;

/// The machine's CPU time, in ticks, from the first line of `/proc/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MachineTicks {
    /// Every tick of every core.
    pub total: u64,
    /// Ticks spent idle or waiting for I/O.
    pub idle: u64,
    /// Ticks the hypervisor gave to someone else.
    pub steal: u64,
}

/// One process's resident memory and CPU time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessSample {
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// User plus system CPU time, ticks.
    pub cpu_ticks: u64,
    /// Bytes the process caused to be sent to storage (`write_bytes` of `/proc/<pid>/io`; 0
    /// where it cannot be read).
    pub write_bytes: u64,
}

/// Parses the aggregate `cpu` line of `/proc/stat`.
pub fn parse_machine(stat: &str) -> Option<MachineTicks> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice], guest time already
    // counted in user.
    let total = fields.iter().take(8).sum();
    Some(MachineTicks {
        total,
        idle: fields.get(3)? + fields.get(4).copied().unwrap_or(0),
        steal: fields.get(7).copied().unwrap_or(0),
    })
}

/// Parses `/proc/<pid>/stat` (CPU) and `/proc/<pid>/status` (RSS) of one process.
pub fn parse_process(stat: &str, status: &str) -> Option<ProcessSample> {
    // The command name may hold spaces and parentheses; the fields after it start past the
    // last `)`: state is field 3, utime field 14 and stime field 15.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    let cpu_ticks = ticks(11)? + ticks(12)?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(ProcessSample {
        rss_bytes: rss_kb * 1024,
        cpu_ticks,
        write_bytes: 0,
    })
}

/// The `write_bytes` line of `/proc/<pid>/io`.
pub fn parse_write_bytes(io: &str) -> Option<u64> {
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))?
        .trim()
        .parse()
        .ok()
}

fn read_machine() -> Option<MachineTicks> {
    parse_machine(&std::fs::read_to_string("/proc/stat").ok()?)
}

fn read_process(pid: u32) -> Option<ProcessSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut sample = parse_process(&stat, &status)?;
    sample.write_bytes = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|io| parse_write_bytes(&io))
        .unwrap_or(0);
    Some(sample)
}

/// The one-minute load average, from `/proc/loadavg`.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One process over a scenario.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessResources {
    /// `generator`, or `node N`.
    pub name: String,
    /// The largest resident set sampled, MiB.
    pub peak_rss_mib: f64,
    /// The last resident set sampled, MiB.
    pub final_rss_mib: f64,
    /// Least-squares growth of the resident set after the warmup, MiB per minute: what a long
    /// run would add.
    pub rss_slope_mib_per_min: f64,
    /// CPU used over the scenario, in percent of one core (200 is two cores busy).
    pub cpu_pct: f64,
}

/// One process in one second of the measured window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessSecond {
    /// Resident set at the end of the second, MiB.
    pub rss_mib: f64,
    /// CPU used in the second, percent of one core.
    pub cpu_pct: f64,
    /// Bytes sent to storage in the second, MiB.
    pub write_mib: f64,
    /// Storage batches committed in the second (one `fdatasync` each on a durable node), from
    /// the node's own counters; 0 for the generator.
    pub fsyncs: u64,
}

/// One second of the measured window: each tracked process (in [`ResourceSummary::processes`]
/// order) and the machine's CPU steal.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceSecond {
    /// The second of the measured window it covers (0 is the first after the warmup).
    pub second: u64,
    /// Each process.
    pub processes: Vec<ProcessSecond>,
    /// The machine's CPU steal over the second, percent.
    pub steal_pct: f64,
}

/// The machine and the processes over a scenario.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceSummary {
    /// The generator first, then each spawned node.
    pub processes: Vec<ProcessResources>,
    /// Share of the machine's CPU time the hypervisor gave to others, percent.
    pub steal_pct: f64,
    /// Share of the machine's CPU time used by processes other than these, percent.
    pub foreign_cpu_pct: f64,
    /// The one-minute load average when the scenario started.
    pub load_at_start: f64,
    /// Samples taken.
    pub samples: u64,
    /// The generator's CPU time per decision over the measured window, µs: its cost, which
    /// caps every throughput figure on a shared machine (0 where not sampled per second).
    #[serde(default)]
    pub generator_cpu_us_per_decision: f64,
    /// The per-second samples after the warmup (real targets), for `timeseries.csv`,
    /// `resources.csv` and the resources chart; not part of `summary.json`.
    #[serde(skip)]
    pub series: Vec<ResourceSecond>,
}

impl ResourceSummary {
    /// Sets [`ResourceSummary::generator_cpu_us_per_decision`] from the per-second series and
    /// the decisions made in each second (`decided[i]`: second `i` after the warmup).
    pub fn set_cpu_per_decision(&mut self, decided: &[u64]) {
        let (mut cpu_s, mut decisions) = (0.0, 0);
        for row in &self.series {
            if let (Some(generator), Some(won)) =
                (row.processes.first(), decided.get(row.second as usize))
            {
                cpu_s += generator.cpu_pct / 100.0;
                decisions += won;
            }
        }
        self.generator_cpu_us_per_decision = if decisions > 0 {
            cpu_s * 1e6 / decisions as f64
        } else {
            0.0
        };
    }

    /// Steal or foreign CPU above which a scenario's figures are flagged as disturbed, percent.
    pub const NOISY_PCT: f64 = 10.0;

    /// Whether other tenants or processes took enough of the machine to distort the figures.
    pub fn is_noisy(&self) -> bool {
        self.steal_pct > Self::NOISY_PCT || self.foreign_cpu_pct > Self::NOISY_PCT
    }
}

#[derive(Debug)]
struct Tracked {
    name: String,
    pid: u32,
    cpu_ticks: u64,
    cpu_at_pid_start: u64,
    cpu_before: u64,
    peak_rss: u64,
    final_rss: u64,
    after_warmup: Slope,
    /// CPU ticks, bytes written and fsyncs at the previous sample, for per-second rates.
    last_ticks: u64,
    last_write_bytes: u64,
    fsyncs: u64,
    last_fsyncs: u64,
}

impl Tracked {
    /// CPU ticks over the scenario, every pid the process had included.
    fn ticks(&self) -> u64 {
        self.cpu_before + self.cpu_ticks.saturating_sub(self.cpu_at_pid_start)
    }
}

/// A least-squares slope kept as running sums, so that it costs the same after an hour as
/// after a second.
#[derive(Clone, Copy, Debug, Default)]
struct Slope {
    n: f64,
    x: f64,
    y: f64,
    xx: f64,
    xy: f64,
}

impl Slope {
    fn add(&mut self, x: f64, y: f64) {
        self.n += 1.0;
        self.x += x;
        self.y += y;
        self.xx += x * x;
        self.xy += x * y;
    }

    /// Growth of `y` per unit of `x`; zero with fewer than two distinct `x`.
    fn value(&self) -> f64 {
        let sxx = self.xx - self.x * self.x / self.n;
        if self.n < 2.0 || sxx <= 0.0 {
            return 0.0;
        }
        (self.xy - self.x * self.y / self.n) / sxx
    }
}

/// Samples the generator and the given processes about once a second.
#[derive(Debug)]
pub struct ResourceSampler {
    warmup: Duration,
    load_at_start: f64,
    machine_start: Option<MachineTicks>,
    machine_last: Option<MachineTicks>,
    tracked: Vec<Tracked>,
    samples: u64,
    last_sample: Duration,
    series: Vec<ResourceSecond>,
}

impl ResourceSampler {
    /// Starts sampling `processes` (`(name, pid)`: the generator itself first) for a scenario
    /// whose warmup lasts `warmup`.
    pub fn new(processes: &[(String, u32)], warmup: Duration) -> Self {
        let mut sampler = Self {
            warmup,
            load_at_start: load_average().unwrap_or(0.0),
            machine_start: read_machine(),
            machine_last: None,
            tracked: Vec::new(),
            samples: 0,
            last_sample: Duration::ZERO,
            series: Vec::new(),
        };
        sampler.sample(Duration::ZERO, processes);
        sampler
    }

    /// Notes process `name`'s storage batches committed so far (a node's own counter), for
    /// the next sample's fsyncs per second.
    pub fn note_fsyncs(&mut self, name: &str, batches: u64) {
        if let Some(tracked) = self.tracked.iter_mut().find(|t| t.name == name) {
            if batches < tracked.fsyncs {
                // A restarted node counts from zero again.
                tracked.last_fsyncs = 0;
            }
            tracked.fsyncs = batches;
        }
    }

    /// A sample at `elapsed` since the start; `processes` as now (a restarted node has a new
    /// pid, whose CPU time starts again from zero). A sample after the warmup adds a row to
    /// the per-second series.
    pub fn sample(&mut self, elapsed: Duration, processes: &[(String, u32)]) {
        self.samples += 1;
        let machine_before = self.machine_last;
        self.machine_last = read_machine();
        let span_time = elapsed.saturating_sub(self.last_sample);
        let span = span_time.as_secs_f64();
        self.last_sample = elapsed;
        // The sample covers the span since the previous one; it belongs to the second of the
        // measured window that holds the span's middle.
        let middle = elapsed.saturating_sub(span_time / 2);
        let mut row = ResourceSecond {
            second: middle.saturating_sub(self.warmup).as_secs(),
            processes: Vec::new(),
            steal_pct: match (machine_before, self.machine_last) {
                (Some(a), Some(b)) if b.total > a.total => {
                    100.0 * b.steal.saturating_sub(a.steal) as f64 / (b.total - a.total) as f64
                }
                _ => 0.0,
            },
        };
        for (name, pid) in processes {
            let Some(now) = read_process(*pid) else {
                continue;
            };
            let first = self.samples == 1;
            let index = match self.tracked.iter().position(|t| t.name == *name) {
                Some(index) => index,
                None => {
                    self.tracked.push(Tracked {
                        name: name.clone(),
                        pid: *pid,
                        cpu_ticks: 0,
                        // CPU a process had used before the scenario is not the scenario's.
                        cpu_at_pid_start: if first { now.cpu_ticks } else { 0 },
                        cpu_before: 0,
                        peak_rss: 0,
                        final_rss: 0,
                        after_warmup: Slope::default(),
                        last_ticks: 0,
                        last_write_bytes: now.write_bytes,
                        fsyncs: 0,
                        last_fsyncs: 0,
                    });
                    let index = self.tracked.len() - 1;
                    self.tracked[index].last_ticks = self.tracked[index].ticks();
                    index
                }
            };
            let tracked = &mut self.tracked[index];
            if tracked.pid != *pid {
                tracked.cpu_before += tracked.cpu_ticks.saturating_sub(tracked.cpu_at_pid_start);
                tracked.pid = *pid;
                tracked.cpu_at_pid_start = 0;
                tracked.last_write_bytes = 0;
            }
            tracked.cpu_ticks = now.cpu_ticks;
            tracked.peak_rss = tracked.peak_rss.max(now.rss_bytes);
            tracked.final_rss = now.rss_bytes;
            let ticks = tracked.ticks();
            let second = ProcessSecond {
                rss_mib: mib(now.rss_bytes),
                cpu_pct: if span > 0.0 {
                    100.0 * ticks.saturating_sub(tracked.last_ticks) as f64 / TICKS_PER_S / span
                } else {
                    0.0
                },
                write_mib: mib(now.write_bytes.saturating_sub(tracked.last_write_bytes)),
                fsyncs: tracked.fsyncs.saturating_sub(tracked.last_fsyncs),
            };
            tracked.last_ticks = ticks;
            tracked.last_write_bytes = now.write_bytes;
            tracked.last_fsyncs = tracked.fsyncs;
            if elapsed >= self.warmup {
                tracked
                    .after_warmup
                    .add(elapsed.as_secs_f64() / 60.0, mib(now.rss_bytes));
                // Rows follow the tracked order; a process not sampled this time has zeros.
                if row.processes.len() <= index {
                    row.processes.resize(index + 1, ProcessSecond::default());
                }
                row.processes[index] = second;
            }
        }
        if middle >= self.warmup && span > 0.0 && !row.processes.is_empty() {
            self.series.push(row);
        }
    }

    /// The summary, with a last sample at `elapsed`.
    pub fn finish(mut self, elapsed: Duration, processes: &[(String, u32)]) -> ResourceSummary {
        self.sample(elapsed, processes);
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let processes: Vec<ProcessResources> = self
            .tracked
            .iter()
            .map(|t| ProcessResources {
                name: t.name.clone(),
                peak_rss_mib: mib(t.peak_rss),
                final_rss_mib: mib(t.final_rss),
                rss_slope_mib_per_min: t.after_warmup.value(),
                cpu_pct: 100.0 * t.ticks() as f64 / TICKS_PER_S / seconds,
            })
            .collect();
        let ours: u64 = self.tracked.iter().map(Tracked::ticks).sum();
        let (steal_pct, foreign_cpu_pct) = match (self.machine_start, self.machine_last) {
            (Some(start), Some(end)) if end.total > start.total => {
                let total = (end.total - start.total) as f64;
                let busy = total - end.idle.saturating_sub(start.idle) as f64;
                let steal = end.steal.saturating_sub(start.steal) as f64;
                (
                    100.0 * steal / total,
                    (100.0 * (busy - steal - ours as f64) / total).max(0.0),
                )
            }
            _ => (0.0, 0.0),
        };
        ResourceSummary {
            processes,
            steal_pct,
            foreign_cpu_pct,
            load_at_start: self.load_at_start,
            samples: self.samples,
            generator_cpu_us_per_decision: 0.0,
            series: self.series,
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_machine_line() {
        let stat = "cpu  503473 40 103834 264119 12566 0 14809 740 0 0\ncpu0 1 2 3 4\n";
        let m = parse_machine(stat).unwrap();
        assert_eq!(m.total, 503473 + 40 + 103834 + 264119 + 12566 + 14809 + 740);
        assert_eq!(m.idle, 264119 + 12566);
        assert_eq!(m.steal, 740);
        assert_eq!(parse_machine("intr 1 2 3\n"), None);
    }

    #[test]
    fn parses_a_process_whose_name_has_spaces_and_parentheses() {
        let stat = "4242 (paxbench (node) x) S 1 2 3 0 -1 4194304 10 0 0 0 700 55 0 0 20 0 3 0";
        let status = "Name:\tpaxbench\nVmPeak:\t 9000 kB\nVmRSS:\t    2020 kB\n";
        assert_eq!(
            parse_process(stat, status),
            Some(ProcessSample {
                rss_bytes: 2020 * 1024,
                cpu_ticks: 755,
                write_bytes: 0,
            })
        );
        let io =
            "rchar: 10\nwchar: 20\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n";
        assert_eq!(parse_write_bytes(io), Some(8192));
        assert_eq!(parse_process(stat, "Name: x\n"), None, "no VmRSS line");
    }

    #[test]
    fn slope_is_growth_per_minute() {
        let mut slope = Slope::default();
        for i in 0..10 {
            slope.add(f64::from(i), 100.0 + 3.0 * f64::from(i));
        }
        assert!((slope.value() - 3.0).abs() < 1e-9);
        let mut one = Slope::default();
        one.add(1.0, 5.0);
        assert_eq!(one.value(), 0.0);
        one.add(1.0, 9.0);
        assert_eq!(one.value(), 0.0, "two samples at one time have no slope");
    }

    #[test]
    fn samples_this_process() {
        let me = vec![("generator".to_string(), std::process::id())];
        let mut sampler = ResourceSampler::new(&me, Duration::ZERO);
        sampler.sample(Duration::from_millis(500), &me);
        let summary = sampler.finish(Duration::from_secs(1), &me);
        let generator = &summary.processes[0];
        assert_eq!(generator.name, "generator");
        assert!(generator.peak_rss_mib > 1.0, "{summary:?}");
        assert!(generator.final_rss_mib > 1.0);
        assert_eq!(summary.samples, 3);
        assert_eq!(
            summary.series.len(),
            2,
            "one row per sample after the warmup"
        );
        assert!(summary.series.iter().all(|r| r.processes[0].rss_mib > 1.0));
        assert!((0.0..=100.0).contains(&summary.steal_pct));
    }

    #[test]
    fn fsyncs_per_second_count_from_zero_again_after_a_node_restart() {
        let node = vec![("node 1".to_string(), std::process::id())];
        let mut sampler = ResourceSampler::new(&node, Duration::ZERO);
        sampler.note_fsyncs("node 1", 1_000);
        sampler.sample(Duration::from_millis(500), &node);
        // The node restarted: its counter went back to zero and has reached 40.
        sampler.note_fsyncs("node 1", 40);
        sampler.sample(Duration::from_millis(1_000), &node);
        let summary = sampler.finish(Duration::from_millis(1_500), &node);
        let fsyncs: Vec<u64> = summary
            .series
            .iter()
            .map(|row| row.processes[0].fsyncs)
            .collect();
        assert_eq!(fsyncs, [1_000, 40, 0]);
    }
}
