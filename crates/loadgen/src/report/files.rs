//! The results folder of a run: the config as run, the environment, `summary.json`,
//! `summary.md`, per scenario a `.hgrm` percentile spectrum (wrk2's format) and an HDR interval
//! log (`.hlog`, V2 deflate, 1 s intervals), and `timeseries.csv`. The folder is written under a
//! `.partial` name and renamed only when complete; an interrupted run is renamed
//! `…-interrupted`, and a failed one keeps `.partial` with the error in `FAILED`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;

use crate::driver::RunOutput;
use crate::error::Error;
use crate::measure::Second;
use crate::report::summary::{Environment, ScenarioSummary};

/// A results folder being written.
#[derive(Debug)]
pub struct ReportDir {
    partial: PathBuf,
    final_path: PathBuf,
}

/// `YYYY-MM-DDTHH-MM-SSZ` for folder names, and RFC 3339 for reports, from a UNIX time.
pub fn utc_stamp(time: SystemTime, for_path: bool) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (hour, minute, second) = (rest / 3600, rest % 3600 / 60, rest % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if for_path {
        format!("{year:04}-{month:02}-{day:02}T{hour:02}-{minute:02}-{second:02}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
    }
}

/// The UNIX time of an RFC 3339 UTC stamp, `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (what
/// [`utc_stamp`] writes and `date -u +%FT%TZ` prints); `None` if it is not one.
pub fn parse_utc(stamp: &str) -> Option<SystemTime> {
    let stamp = stamp.trim();
    let body = stamp
        .strip_suffix('Z')
        .or_else(|| stamp.strip_suffix("+00:00"))?;
    let (date, time) = body.split_once(['T', 't', ' '])?;
    let mut date_parts = date.splitn(3, '-');
    let number = |s: Option<&str>, digits: usize| -> Option<i64> {
        let s = s?;
        (s.len() == digits && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let year = number(date_parts.next(), 4)?;
    let month = number(date_parts.next(), 2)?;
    let day = number(date_parts.next(), 2)?;
    let (whole, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut time_parts = whole.splitn(3, ':');
    let hour = number(time_parts.next(), 2)?;
    let minute = number(time_parts.next(), 2)?;
    let second = number(time_parts.next(), 2)?;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=days_in_month).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 9 {
        return None;
    }
    let nanos: u32 = format!("{fraction:0<9}").parse().ok()?;
    // Days-from-civil (Howard Hinnant's algorithm), the inverse of `utc_stamp`'s.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + std::time::Duration::new(secs, nanos))
}

impl ReportDir {
    /// Starts `dir` (written as `dir.partial` until [`ReportDir::finish`]).
    pub fn create(dir: &Path) -> Result<Self, Error> {
        let mut partial = dir.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        if dir.exists() {
            return Err(Error::Scenario(format!("{} already exists", dir.display())));
        }
        if partial.exists() {
            fs::remove_dir_all(&partial)
                .map_err(Error::io(format!("clearing {}", partial.display())))?;
        }
        fs::create_dir_all(&partial)
            .map_err(Error::io(format!("creating {}", partial.display())))?;
        Ok(Self {
            partial,
            final_path: dir.into(),
        })
    }

    /// Where files go while the run is in progress.
    pub fn path(&self) -> &Path {
        &self.partial
    }

    /// Writes one file.
    pub fn write(&self, name: &str, contents: &[u8]) -> Result<(), Error> {
        let path = self.partial.join(name);
        fs::write(&path, contents).map_err(Error::io(format!("writing {}", path.display())))
    }

    /// Appends to one file.
    pub fn append(&self, name: &str, contents: &[u8]) -> Result<(), Error> {
        use std::io::Write as _;
        let path = self.partial.join(name);
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(contents))
            .map_err(Error::io(format!("appending to {}", path.display())))
    }

    /// Renames the folder to its final name (with `-interrupted` when cut short); returns it.
    pub fn finish(self, interrupted: bool) -> Result<PathBuf, Error> {
        let target = if interrupted {
            let mut name = self.final_path.as_os_str().to_owned();
            name.push("-interrupted");
            PathBuf::from(name)
        } else {
            self.final_path.clone()
        };
        fs::rename(&self.partial, &target)
            .map_err(Error::io(format!("renaming {}", self.partial.display())))?;
        Ok(target)
    }

    /// Leaves the folder as `.partial`, with the error in `FAILED`.
    pub fn fail(self, error: &str) -> PathBuf {
        let _ = fs::write(self.partial.join("FAILED"), format!("{error}\n"));
        self.partial
    }
}

/// Collects the environment.
pub fn environment(seed: u64, config_path: &Path) -> Environment {
    let git_commit = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(
            config_path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
        )
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let os = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_else(|_| std::env::consts::OS.into());
    Environment {
        git_commit,
        cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_governor: fs::read_to_string("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
            .ok()
            .map(|g| g.trim().to_string()),
        os,
        paxbench_version: env!("CARGO_PKG_VERSION").into(),
        crates: crate_versions(),
        seed,
    }
}

/// Versions of the main dependencies, read from the workspace's Cargo.lock at build time.
fn crate_versions() -> Vec<(String, String)> {
    const LOCK: &str = include_str!("../../../../Cargo.lock");
    const WANTED: [&str; 8] = [
        "quinn",
        "rustls",
        "redb",
        "tokio",
        "hdrhistogram",
        "postcard",
        "serde-saphyr",
        "ring",
    ];
    let mut versions = Vec::new();
    let mut name = None;
    for line in LOCK.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"'));
        } else if let Some(v) = line.strip_prefix("version = ")
            && let Some(n) = name.take()
            && WANTED.contains(&n)
        {
            versions.push((n.to_string(), v.trim_matches('"').to_string()));
        }
    }
    versions
}

/// The percentile spectrum in wrk2's `.hgrm` format (values in milliseconds).
pub fn hgrm(histogram: &Histogram<u64>) -> String {
    let mut out = String::from("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
    let mut total = 0;
    for step in histogram.iter_quantiles(5) {
        total += step.count_since_last_iteration();
        let value = step.value_iterated_to() as f64 / 1e3;
        let quantile = step.quantile_iterated_to();
        if quantile < 1.0 {
            let _ = writeln!(
                out,
                "{value:12.3} {quantile:14.12} {total:10} {:14.2}",
                1.0 / (1.0 - quantile)
            );
        } else {
            let _ = writeln!(out, "{value:12.3} {quantile:14.12} {total:10}");
        }
    }
    let (mean, stdev) = if histogram.is_empty() {
        (0.0, 0.0)
    } else {
        (histogram.mean() / 1e3, histogram.stdev() / 1e3)
    };
    let _ = writeln!(
        out,
        "#[Mean    = {mean:12.3}, StdDeviation   = {stdev:12.3}]"
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        histogram.max() as f64 / 1e3,
        histogram.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        histogram.buckets(),
        sub_buckets(histogram)
    );
    out
}

/// The sub-bucket count as the reference implementation and wrk2 print it: the smallest power
/// of two that resolves the histogram's significant figures twice over (2048 at three figures).
fn sub_buckets(histogram: &Histogram<u64>) -> u64 {
    let largest_single_unit = 2 * 10_u64.pow(u32::from(histogram.sigfig()));
    largest_single_unit.next_power_of_two()
}

/// An HDR interval log of per-second latency histograms (microseconds), tagged, in the
/// reference writer's layout: format version, `StartTime` and `BaseTime` at `window_start` (the
/// scenario's own measured window), the legend, then one line per second of the window, the
/// last with the length the window covered of it.
/// Read it with `HistogramLogProcessor -tag <tag> -outputValueUnitRatio 1`.
pub fn hlog(
    seconds: &[Histogram<u64>],
    tag: &str,
    window_start: SystemTime,
    measured_s: f64,
) -> Result<Vec<u8>, Error> {
    let fail = |e: String| Error::Scenario(format!("writing the interval log: {e}"));
    let start = window_start
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut out = format!(
        "#paxbench operation latency, microseconds, 1 s intervals, tagged by scenario\n\
         #[Histogram log format version 1.3]\n\
         #[StartTime: {start:.3} (seconds since epoch), {}]\n\
         #[BaseTime: {start:.3} (seconds since epoch)]\n\
         \"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
        utc_stamp(window_start, false)
    )
    .into_bytes();
    let mut serializer = V2DeflateSerializer::new();
    {
        let mut writer = IntervalLogWriterBuilder::new()
            .begin_log_with(&mut out, &mut serializer)
            .map_err(|e| fail(e.to_string()))?;
        let tag = hdrhistogram::serialization::interval_log::Tag::new(tag)
            .ok_or_else(|| Error::Scenario(format!("`{tag}` is not a valid interval-log tag")))?;
        for (i, histogram) in seconds.iter().enumerate() {
            // A partial last second is logged with the length the window covered of it.
            let length = if SecondRow::is_partial(i as u64, measured_s) {
                Duration::from_secs_f64((measured_s - i as f64).clamp(0.001, 1.0))
            } else {
                Duration::from_secs(1)
            };
            writer
                .write_histogram(histogram, Duration::from_secs(i as u64), length, Some(tag))
                .map_err(|e| fail(format!("{e:?}")))?;
        }
    }
    Ok(out)
}

/// Histograms named and serialized (V2 deflate, base64), one per line: what `merge` adds up.
pub fn histograms_file(histograms: &[(&str, &Histogram<u64>)]) -> Result<String, Error> {
    use base64::Engine;
    use hdrhistogram::serialization::Serializer;
    let mut out = String::new();
    let mut serializer = V2DeflateSerializer::new();
    for (name, histogram) in histograms {
        let mut bytes = Vec::new();
        serializer
            .serialize(histogram, &mut bytes)
            .map_err(|e| Error::Scenario(format!("serializing histogram {name}: {e:?}")))?;
        let _ = writeln!(
            out,
            "{name} {}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        );
    }
    Ok(out)
}

/// Reads a file written by [`histograms_file`].
pub fn read_histograms(text: &str) -> Result<Vec<(String, Histogram<u64>)>, Error> {
    use base64::Engine;
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let bad = |what: String| Error::Scenario(format!("histograms line {}: {what}", number + 1));
        let (name, encoded) = line.split_once(' ').ok_or_else(|| bad("no name".into()))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| bad(e.to_string()))?;
        let histogram: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| bad(format!("{e:?}")))?;
        out.push((name.to_string(), histogram));
    }
    Ok(out)
}

/// The columns of `timeseries.csv`. `partial` is 1 on a second the measured window covers only
/// in part (the last one, where in-flight operations end): read as a rate it would look like a
/// collapse.
pub const TIMESERIES_HEADER: &str = "scenario,label,repetition,second,partial,ops_per_s,\
     decisions_per_s,p50_us,p99_us,retries,preemptions,generator_rss_mib,generator_cpu_pct,node_rss_mib_max,\
     nodes_cpu_pct,write_mib_per_s,fsyncs_per_s,steal_pct\n";

/// The operation columns of one `timeseries.csv` row: what charts and `merge` read back.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SecondRow {
    /// The scenario's index.
    pub scenario: usize,
    /// The repetition, from 1.
    pub repetition: u32,
    /// Seconds after the warmup.
    pub second: u64,
    /// Whether the measured window covers the second only in part.
    pub partial: bool,
    /// Operations that ended in it.
    pub ops: u64,
    /// Of those, decisions (operations that won).
    pub decisions: u64,
    /// Median latency, microseconds.
    pub p50_us: u64,
    /// 99th percentile, microseconds.
    pub p99_us: u64,
    /// Retries started in it.
    pub retries: u64,
    /// Preemptions seen in it.
    pub preemptions: u64,
}

impl SecondRow {
    /// Whether second `second` of a window `measured_s` long is covered only in part.
    pub fn is_partial(second: u64, measured_s: f64) -> bool {
        second as f64 + 1.0 > measured_s + 1e-6
    }

    /// Reads a data row (`None` for the header or a malformed line).
    pub fn parse(line: &str) -> Option<Self> {
        let (head, rest) = line.split_once(",\"")?;
        let (_, numbers) = rest.split_once("\",")?;
        let mut fields = numbers.split(',').map(|f| f.parse::<u64>().ok());
        let mut next = || fields.next().flatten();
        Some(Self {
            scenario: head.parse().ok()?,
            repetition: u32::try_from(next()?).ok()?,
            second: next()?,
            partial: next()? == 1,
            ops: next()?,
            decisions: next()?,
            p50_us: next()?,
            p99_us: next()?,
            retries: next()?,
            preemptions: next()?,
        })
    }

    /// Writes the operation columns of a row, ending in a comma before the resource columns.
    pub fn write(&self, label: &str, csv: &mut String) {
        let _ = write!(
            csv,
            "{},\"{}\",{},{},{},{},{},{},{},{},{},",
            self.scenario,
            label.replace('"', "'"),
            self.repetition,
            self.second,
            u8::from(self.partial),
            self.ops,
            self.decisions,
            self.p50_us,
            self.p99_us,
            self.retries,
            self.preemptions,
        );
    }
}

/// Appends one run of a scenario (repetition `repetition`, from 1) to `timeseries.csv`.
pub fn timeseries_rows(
    csv: &mut String,
    summary: &ScenarioSummary,
    repetition: u32,
    output: &RunOutput,
) {
    let seconds = output.ops.seconds.len().max(output.protocol.seconds.len());
    let series = &output.resources.series;
    for i in 0..seconds {
        let ops = output.ops.seconds.get(i);
        let protocol = output.protocol.seconds.get(i);
        let (p50_us, p99_us) = ops.map_or((0, 0), Second::quantiles);
        SecondRow {
            scenario: summary.index,
            repetition,
            second: i as u64,
            partial: SecondRow::is_partial(i as u64, summary.measured_s),
            ops: ops.map_or(0, |s| s.completed),
            decisions: ops.map_or(0, |s| s.won),
            p50_us,
            p99_us,
            retries: protocol.map_or(0, |s| s.retries),
            preemptions: protocol.map_or(0, |s| s.preemptions),
        }
        .write(&summary.label, csv);
        // The sample that covers second i; the simulator's seconds are virtual and have none.
        match series.iter().rev().find(|r| r.second == i as u64) {
            Some(row) => {
                let generator = row.processes.first().copied().unwrap_or_default();
                let nodes = row.processes.get(1..).unwrap_or_default();
                let _ = writeln!(
                    csv,
                    "{:.1},{:.1},{:.1},{:.1},{:.2},{},{:.2}",
                    generator.rss_mib,
                    generator.cpu_pct,
                    nodes.iter().map(|n| n.rss_mib).fold(0.0, f64::max),
                    // An empty float sum is -0.0; adding 0.0 prints it as 0.0.
                    nodes.iter().map(|n| n.cpu_pct).sum::<f64>() + 0.0,
                    row.processes.iter().map(|p| p.write_mib).sum::<f64>() + 0.0,
                    nodes.iter().map(|n| n.fsyncs).sum::<u64>(),
                    row.steal_pct,
                );
            }
            None => csv.push_str(",,,,,,\n"),
        }
    }
}

/// The columns of `resources.csv`: each process's resident set, CPU, storage writes and fsyncs
/// in each second of each run's measured window (real targets), long format, one row per
/// process.
pub const RESOURCES_HEADER: &str = "scenario,label,repetition,second,partial,process,rss_mib,\
     cpu_pct,write_mib_per_s,fsyncs_per_s,steal_pct\n";

/// Appends one run of a scenario (repetition `repetition`, from 1) to `resources.csv`.
pub fn resources_rows(
    csv: &mut String,
    summary: &ScenarioSummary,
    repetition: u32,
    output: &RunOutput,
) {
    let names = &output.resources.processes;
    for row in &output.resources.series {
        for (process, second) in names.iter().zip(&row.processes) {
            let _ = writeln!(
                csv,
                "{},\"{}\",{},{},{},{},{:.1},{:.1},{:.2},{},{:.2}",
                summary.index,
                summary.label.replace('"', "'"),
                repetition,
                row.second,
                u8::from(SecondRow::is_partial(row.second, summary.measured_s)),
                process.name,
                second.rss_mib,
                second.cpu_pct,
                second.write_mib,
                second.fsyncs,
                row.steal_pct,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps_parse_back() {
        for secs in [0u64, 951_782_400, 1_764_460_800, 4_107_542_399] {
            let time = UNIX_EPOCH + std::time::Duration::from_secs(secs);
            assert_eq!(parse_utc(&utc_stamp(time, false)), Some(time), "{secs}");
        }
        assert_eq!(
            parse_utc("2026-11-30T07:00:00.25Z"),
            Some(UNIX_EPOCH + std::time::Duration::from_millis(1_796_022_000_250))
        );
        for bad in [
            "2026-11-30T07:00:00",
            "2026-11-31T07:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-1-30T07:00:00Z",
            "2026-11-30T24:00:00Z",
            "2026-11-30T07:00:00+02:00",
            "tomorrow",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
    }

    #[test]
    fn utc_stamps_are_calendar_dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_694_400); // 2026-11-26T12:00:00Z
        assert_eq!(utc_stamp(t, false), "2026-11-26T12:00:00Z");
        assert_eq!(utc_stamp(t, true), "2026-11-26T12-00-00Z");
        assert_eq!(utc_stamp(UNIX_EPOCH, false), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn hgrm_ends_at_the_maximum_and_counts_everything() {
        let mut h = crate::measure::latency_histogram();
        for v in 1..=1000 {
            h.record(v).unwrap();
        }
        let text = hgrm(&h);
        assert!(text.contains("Total count    =         1000"), "{text}");
        let last_data = text
            .lines()
            .rfind(|l| !l.starts_with('#') && !l.trim().is_empty())
            .unwrap();
        assert!(last_data.contains("1.000000000000"), "{last_data}");
        // The reference implementation and wrk2 print the sub-bucket count, not the array length.
        assert!(text.contains("SubBuckets     =         2048]"), "{text}");
    }

    #[test]
    fn a_timeseries_row_reads_back_as_written() {
        let row = SecondRow {
            scenario: 3,
            repetition: 2,
            second: 7,
            partial: true,
            ops: 10,
            decisions: 9,
            p50_us: 120,
            p99_us: 900,
            retries: 2,
            preemptions: 1,
        };
        let mut csv = String::new();
        row.write("a=\"x\",b", &mut csv);
        csv.push_str("1.0,2.0,,,,,\n");
        assert_eq!(SecondRow::parse(csv.trim_end()), Some(row));
        assert_eq!(SecondRow::parse(TIMESERIES_HEADER.trim_end()), None);
        assert!(!SecondRow::is_partial(9, 10.0) && SecondRow::is_partial(10, 10.004));
    }
}
