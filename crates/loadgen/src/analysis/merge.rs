//! `paxbench merge DIR… --out DIR`: one report from several generator processes that drove
//! one cluster at the same time (from several machines, say). Histograms are added losslessly
//! and percentiles read from the sums, never averaged; counters are summed, except the nodes'
//! own counters, which every generator saw whole. Runs whose configs or clusters differ are
//! refused, naming what differs.

use crate::report::leader::LeaderSummary;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use serde_json::Value;

use crate::analysis::cross_check::cross_check;
use crate::config::{Scenario, TargetKind, display_value};
use crate::error::Error;
use crate::measure::resources::{ProcessResources, ResourceSummary};
use crate::measure::{interval_histogram, latency_histogram};
use crate::report;
use crate::report::figures::LatencyHistograms;
use crate::report::summary::{
    AuditSummary, Contention, Counts, Ids, Latencies, Messages, Outcomes, RecoverySummary,
    Reliability, Retries, Safety, ScenarioSummary, Setup, SharedCluster, Summary, Throughput,
};

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        context: format!("reading {}", path.display()),
        source,
    })
}

/// The settings that must agree, with what may differ between generators removed: their seed
/// and client number.
fn comparable_settings(settings: &Scenario) -> Value {
    let mut settings = serde_json::to_value(settings).unwrap_or(Value::Null);
    if let Some(object) = settings.as_object_mut() {
        object.remove("seed");
        object.remove("index");
        // Generators that were not synchronized each wrote keys of their own namespace.
        object.remove("run");
        if let Some(attach) = object
            .get_mut("target")
            .and_then(|target| target.get_mut("attach"))
            .and_then(Value::as_object_mut)
        {
            attach.remove("client");
            attach.remove("cert");
            attach.remove("key");
        }
    }
    settings
}

/// The first field where two JSON values differ, as a dotted path.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<(String, String, String)> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let next = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                first_difference(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    &next,
                )
            })
        }
        _ if a == b => None,
        _ => Some((path.to_string(), a.to_string(), b.to_string())),
    }
}

/// Refuses runs that are not parts of one measurement.
pub fn check_compatible(dirs: &[PathBuf], runs: &[Summary]) -> Result<(), Error> {
    let (Some(first), Some(first_dir)) = (runs.first(), dirs.first()) else {
        return Err(Error::Scenario(
            "merge needs at least two results folders".into(),
        ));
    };
    if runs.len() < 2 {
        return Err(Error::Scenario(
            "merge needs at least two results folders".into(),
        ));
    }
    for s in &first.scenarios {
        if s.repetitions.is_some() {
            return Err(Error::Scenario(format!(
                "{}: scenario {} was repeated (`measure.repeat`); each generator's repetitions \
                 ran at their own times, so merge runs of one repetition each",
                first_dir.display(),
                s.label
            )));
        }
        if s.target != TargetKind::Attach {
            return Err(Error::Scenario(format!(
                "{}: scenario {} ran on a `{}` target, where every run has its own cluster; only runs attached to one cluster can be merged",
                first_dir.display(),
                s.label,
                display_value(&s.target)
            )));
        }
    }
    for (dir, run) in dirs.iter().zip(runs).skip(1) {
        let differs = |what: String| {
            Error::Scenario(format!(
                "cannot merge {} into {}: {what}",
                dir.display(),
                first_dir.display()
            ))
        };
        if run.name != first.name {
            return Err(differs(format!(
                "the configs differ: `name` is {:?} against {:?}",
                run.name, first.name
            )));
        }
        let labels = |s: &Summary| {
            s.scenarios
                .iter()
                .map(|c| c.label.clone())
                .collect::<Vec<_>>()
        };
        if labels(run) != labels(first) {
            return Err(differs(format!(
                "the scenarios differ: {:?} against {:?}",
                labels(run),
                labels(first)
            )));
        }
        for (a, b) in first.scenarios.iter().zip(&run.scenarios) {
            if let Some((field, x, y)) = first_difference(
                &comparable_settings(&a.settings),
                &comparable_settings(&b.settings),
                "",
            ) {
                let kind = if field.starts_with("target.attach") {
                    "the clusters differ"
                } else {
                    "the configs differ"
                };
                return Err(differs(format!(
                    "{kind}: in scenario {}, `{field}` is {y} against {x}",
                    a.label
                )));
            }
        }
    }
    Ok(())
}

fn add(into: &mut Histogram<u64>, from: &Histogram<u64>) -> Result<(), Error> {
    into.add(from)
        .map_err(|e| Error::Scenario(format!("adding histograms: {e:?}")))
}

/// How the parts of a merged scenario relate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Combine {
    /// Generators that drove one cluster at the same time: rates add up, and the nodes'
    /// counters, which every generator read whole, are counted once.
    Concurrent,
    /// Repetitions one after another, each on a fresh cluster: the pooled rate is every
    /// decision over every measured second, and each repetition's nodes count.
    Sequential,
}

/// Merges one scenario of every run; `histograms` are the runs' named histograms.
///
/// Every struct is built field by field, without `..`: a field added to the summary does not
/// compile here until merge decides how to combine it.
pub fn merge_scenario(
    parts: &[&ScenarioSummary],
    histograms: &[Vec<(String, Histogram<u64>)>],
    combine: Combine,
) -> Result<(ScenarioSummary, BTreeMap<String, Histogram<u64>>), Error> {
    let sequential = combine == Combine::Sequential;
    let Some(first) = parts.first() else {
        return Err(Error::Scenario("nothing to merge".into()));
    };
    let sums = sum_histograms(histograms)?;
    let all = Parts { parts, sequential };
    let ScenarioSummary {
        index,
        label,
        swept,
        target,
        setup,
        settings,
        interrupted: _,
        measured_s: _,
        window_start_unix_s: _,
        wall_s: _,
        outcomes: _,
        throughput: _,
        latency_us,
        contention: _,
        retries: _,
        ids,
        messages: _,
        safety,
        nodes,
        faults,
        reliability,
        resources: _,
        drift: _,
        repetitions: _,
        shared: _,
        zones,
        leader,
        node_load,
        counts: _,
    } = (*first).clone();
    let (outcomes, counts) = merge_counts(&all);
    let measured_s = all.span(|p| p.measured_s);
    let open_loop = first.throughput.target_rate.is_some();
    // Rates, ratios and percentiles are derived below, from the combined counts and histograms.
    let throughput = Throughput {
        target_rate: if sequential {
            first.throughput.target_rate
        } else {
            open_loop.then(|| parts.iter().filter_map(|p| p.throughput.target_rate).sum())
        },
        fell_behind: parts.iter().any(|p| p.throughput.fell_behind),
        ..Throughput::default()
    };
    let Latencies { floor, .. } = latency_us;
    let latency_us = Latencies {
        // Each generator pinged the nodes before its run; the first one's floor stands for all.
        floor,
        ..Latencies::default()
    };
    let contention = merge_contention(parts);
    let Ids { highest, .. } = ids;
    let ids = Ids {
        collisions: all.sum(|p| p.ids.collisions),
        reused: all.sum(|p| p.ids.reused),
        high_growth_per_s: all.max_f(|p| p.ids.high_growth_per_s),
        // IDs are ordered by their numbers, not by this text; the first run's stands.
        highest,
    };
    let messages = Messages {
        from_proposers: all.sum(|p| p.messages.from_proposers),
        from_acceptors: all.cluster(|p| p.messages.from_acceptors),
        ..Messages::default()
    };
    let safety = merge_safety(parts, safety.expected);
    let setup = merge_setup(parts, setup, sequential);
    let resources = merge_resources(parts, combine);
    // Leader roles are the cluster's, like the nodes; repetitions each had theirs.
    let leader = if sequential {
        LeaderSummary::pooled(parts.iter().filter_map(|p| p.leader.as_ref()))
    } else {
        leader
    };
    let mut merged = ScenarioSummary {
        // Per decision, the cluster's: the first run's stand, as for `nodes`.
        node_load,
        leader,
        index,
        label,
        swept,
        target,
        setup,
        settings,
        interrupted: parts.iter().any(|p| p.interrupted),
        measured_s,
        // The earliest generator's window: the merged log's intervals count from it.
        window_start_unix_s: parts
            .iter()
            .map(|p| p.window_start_unix_s)
            .fold(f64::INFINITY, f64::min),
        wall_s: all.span(|p| p.wall_s),
        outcomes,
        throughput,
        latency_us,
        contention,
        retries: Retries::default(),
        ids,
        messages,
        safety,
        // The nodes, the fault schedule and the recoveries are the cluster's: every generator
        // saw the same ones, so the first run's stand. Repetitions each had a cluster: the
        // first repetition's nodes stand for them, and every recovery and audit counts.
        nodes,
        faults,
        reliability: if sequential {
            sequential_reliability(parts)
        } else {
            reliability
        },
        resources,
        // Each generator's drift is in its own summary; the sum of their seconds is not kept.
        drift: None,
        // The caller that pools repetitions sets their spread.
        repetitions: None,
        shared: merge_shared(parts),
        // The pairs as the first run measured them; each zone's latency pooled.
        zones: zones.map(|mut zones| {
            zones.repool(&sums);
            zones
        }),
        counts,
    };
    let empty = latency_histogram();
    merged.derive(&LatencyHistograms::named(&sums, &empty));
    Ok((merged, sums))
}

/// The runs' histograms, added up by name.
fn sum_histograms(
    histograms: &[Vec<(String, Histogram<u64>)>],
) -> Result<BTreeMap<String, Histogram<u64>>, Error> {
    let mut sums: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for run in histograms {
        for (name, histogram) in run {
            let entry = sums.entry(name.clone()).or_insert_with(latency_histogram);
            add(entry, histogram)?;
        }
    }
    Ok(sums)
}

/// The parts' contention counts, added up; the ratios are derived later.
fn merge_contention(parts: &[&ScenarioSummary]) -> Contention {
    let mut rounds: BTreeMap<u32, u64> = BTreeMap::new();
    let mut by_rank: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for p in parts {
        for (attempts, n) in &p.contention.rounds {
            *rounds.entry(*attempts).or_default() += n;
        }
        for (rank, ops, preemptions) in &p.contention.by_key_rank {
            let entry = by_rank.entry(*rank).or_default();
            entry.0 += ops;
            entry.1 += preemptions;
        }
    }
    Contention {
        rounds: rounds.into_iter().collect(),
        dueling_episodes: parts.iter().map(|p| p.contention.dueling_episodes).sum(),
        livelock_windows: parts.iter().map(|p| p.contention.livelock_windows).sum(),
        by_key_rank: by_rank.into_iter().map(|(r, (o, p))| (r, o, p)).collect(),
        ..Contention::default()
    }
}

/// The parts' violations, added up by kind, with the first few examples.
fn merge_safety(parts: &[&ScenarioSummary], expected: bool) -> Safety {
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for p in parts {
        for (kind, n) in &p.safety.by_kind {
            *kinds.entry(kind.clone()).or_default() += n;
        }
    }
    Safety {
        violations: parts.iter().map(|p| p.safety.violations).sum(),
        by_kind: kinds.into_iter().collect(),
        examples: parts
            .iter()
            .flat_map(|p| p.safety.examples.clone())
            .take(5)
            .collect(),
        expected,
    }
}

/// Each generator sampled its own machine: every process is listed, named by its run, and
/// the noisiest machine's figures stand.
fn merge_resources(parts: &[&ScenarioSummary], combine: Combine) -> ResourceSummary {
    ResourceSummary {
        processes: parts
            .iter()
            .enumerate()
            .flat_map(|(run, p)| {
                p.resources
                    .processes
                    .iter()
                    .map(move |process| ProcessResources {
                        name: match combine {
                            Combine::Concurrent => format!("run {run}: {}", process.name),
                            Combine::Sequential => {
                                format!("repetition {}: {}", run + 1, process.name)
                            }
                        },
                        ..process.clone()
                    })
            })
            .collect(),
        steal_pct: parts
            .iter()
            .map(|p| p.resources.steal_pct)
            .fold(0.0, f64::max),
        foreign_cpu_pct: parts
            .iter()
            .map(|p| p.resources.foreign_cpu_pct)
            .fold(0.0, f64::max),
        load_at_start: parts
            .iter()
            .map(|p| p.resources.load_at_start)
            .fold(0.0, f64::max),
        samples: parts.iter().map(|p| p.resources.samples).sum(),
        generator_cpu_us_per_decision: parts
            .iter()
            .map(|p| p.resources.generator_cpu_us_per_decision)
            .fold(0.0, f64::max),
        series: Vec::new(),
    }
}

/// The parts of a merge and how they relate: the ways their figures combine.
struct Parts<'a> {
    parts: &'a [&'a ScenarioSummary],
    /// Repetitions one after another, not generators side by side.
    sequential: bool,
}

impl Parts<'_> {
    fn sum(&self, f: impl Fn(&ScenarioSummary) -> u64) -> u64 {
        self.parts.iter().map(|p| f(p)).sum()
    }

    fn max_f(&self, f: impl Fn(&ScenarioSummary) -> f64) -> f64 {
        self.parts.iter().map(|p| f(p)).fold(0.0, f64::max)
    }

    /// What the cluster counted: every generator read it whole, and each repetition had its own.
    fn cluster(&self, f: impl Fn(&ScenarioSummary) -> u64) -> u64 {
        if self.sequential {
            self.sum(f)
        } else {
            self.parts.iter().map(|p| f(p)).max().unwrap_or(0)
        }
    }

    /// A length of time: repetitions ran one after another, generators side by side.
    fn span(&self, f: impl Fn(&ScenarioSummary) -> f64) -> f64 {
        if self.sequential {
            self.parts.iter().map(|p| f(p)).sum()
        } else {
            self.max_f(f)
        }
    }
}

/// The parts' outcomes and counters, added up; the cluster's own counters once per cluster.
fn merge_counts(all: &Parts) -> (Outcomes, Counts) {
    let outcomes = Outcomes {
        started: all.sum(|p| p.outcomes.started),
        won: all.sum(|p| p.outcomes.won),
        lost_race: all.sum(|p| p.outcomes.lost_race),
        gave_up: all.sum(|p| p.outcomes.gave_up),
        timed_out: all.sum(|p| p.outcomes.timed_out),
        unfinished: all.sum(|p| p.outcomes.unfinished),
    };
    let counts = Counts {
        ops_finished: all.sum(|p| p.counts.ops_finished),
        attempts: all.sum(|p| p.counts.attempts),
        retries: all.sum(|p| p.counts.retries),
        preemptions: all.sum(|p| p.counts.preemptions),
        ops_preempted: all.sum(|p| p.counts.ops_preempted),
        timeouts: all.sum(|p| p.counts.timeouts),
        backoff_ns: all.sum(|p| p.counts.backoff_ns),
        livelock_ns: all.sum(|p| p.counts.livelock_ns),
        bytes_from_proposers: all.sum(|p| p.counts.bytes_from_proposers),
        // The nodes' counters cover the whole cluster, and every generator read them all.
        bytes_from_acceptors: all.cluster(|p| p.counts.bytes_from_acceptors),
    };
    (outcomes, counts)
}

/// The parts' setup: the cluster's, with every concurrent generator's proposers counted.
fn merge_setup(parts: &[&ScenarioSummary], setup: Setup, sequential: bool) -> Setup {
    let Setup {
        nodes: cluster_nodes,
        proposers,
        keys,
        id_scheme,
        storage,
    } = setup;
    Setup {
        nodes: cluster_nodes,
        proposers: if sequential {
            proposers
        } else {
            parts.iter().map(|p| p.setup.proposers).sum()
        },
        keys,
        id_scheme,
        storage,
    }
}

/// The parts' shared-cluster figures: counts add up, the latest start stands for all, and the
/// first part's clock offsets stand for the cluster's (each part keeps its own). `merge` adds
/// the window spread and the cross-generator check.
fn merge_shared(parts: &[&ScenarioSummary]) -> Option<SharedCluster> {
    let shared: Vec<&SharedCluster> = parts.iter().filter_map(|p| p.shared.as_ref()).collect();
    let first = shared.first()?;
    Some(SharedCluster {
        start_late_ms: shared
            .iter()
            .filter_map(|s| s.start_late_ms)
            .reduce(f64::max),
        clock_offsets: first.clock_offsets.clone(),
        preexisting: shared.iter().map(|s| s.preexisting).sum(),
        other_generators: shared.iter().map(|s| s.other_generators).sum(),
        window_spread_ms: None,
        cross_check: None,
    })
}

/// Every repetition's recoveries, and their audits added up.
fn sequential_reliability(parts: &[&ScenarioSummary]) -> Reliability {
    let mut audits = parts.iter().filter_map(|p| p.reliability.audit.as_ref());
    let audit = audits.next().map(|first| {
        let first: AuditSummary = first.clone();
        audits.fold(first, |mut sum, a| {
            sum.stores += a.stores;
            sum.records += a.records;
            sum.chosen_in_stores += a.chosen_in_stores;
            sum.chosen_checked += a.chosen_checked;
            sum.chosen_lost += a.chosen_lost;
            sum.replies += a.replies;
            sum.acks_checked += a.acks_checked;
            sum.acks_lost += a.acks_lost;
            sum.violations += a.violations;
            sum.problems.extend(a.problems.iter().cloned());
            sum
        })
    });
    Reliability {
        recoveries: parts
            .iter()
            .enumerate()
            .flat_map(|(k, p)| {
                p.reliability
                    .recoveries
                    .iter()
                    .map(move |r| RecoverySummary {
                        what: format!("repetition {}: {}", k + 1, r.what),
                        ..r.clone()
                    })
            })
            .collect(),
        audit,
        acked_replies: parts.iter().map(|p| p.reliability.acked_replies).sum(),
    }
}

/// Per-second latency histograms from a run's `.hlog`.
fn read_hlog(path: &Path) -> Result<Vec<Histogram<u64>>, Error> {
    use base64::Engine;
    let text = read(path)?;
    let mut seconds: Vec<Histogram<u64>> = Vec::new();
    for entry in IntervalLogIterator::new(text.as_bytes()) {
        let entry = entry.map_err(|e| Error::Scenario(format!("{}: {e:?}", path.display())))?;
        if let LogEntry::Interval(interval) = entry {
            let second = interval.start_timestamp().as_secs_f64().round() as usize;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(interval.encoded_histogram())
                .map_err(|e| Error::Scenario(format!("{}: {e}", path.display())))?;
            let histogram: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
                .deserialize(&mut bytes.as_slice())
                .map_err(|e| Error::Scenario(format!("{}: {e:?}", path.display())))?;
            if seconds.len() <= second {
                seconds.resize_with(second + 1, interval_histogram);
            }
            add(&mut seconds[second], &histogram)?;
        }
    }
    Ok(seconds)
}

/// Where each generator's measured window lay, on the nodes' clock: its own start plus the
/// offset it measured to the nodes (their mean), and its length.
fn window_on_nodes(part: &ScenarioSummary) -> (f64, f64) {
    let offsets = part
        .shared
        .as_ref()
        .map(|s| s.clock_offsets.as_slice())
        .unwrap_or_default();
    let offset_s = if offsets.is_empty() {
        0.0
    } else {
        offsets.iter().map(|c| c.offset_ms).sum::<f64>() / offsets.len() as f64 / 1e3
    };
    let start = part.window_start_unix_s + offset_s;
    (start, start + part.measured_s)
}

/// Refuses generators whose measured windows do not overlap (they did not drive the cluster
/// together), warns when they overlap by less than half of the shortest, and returns how far
/// apart the windows began, in ms.
fn check_windows(dirs: &[PathBuf], parts: &[&ScenarioSummary]) -> Result<f64, Error> {
    let windows: Vec<(f64, f64)> = parts.iter().map(|p| window_on_nodes(p)).collect();
    let latest_start = windows.iter().map(|w| w.0).fold(f64::MIN, f64::max);
    let earliest_start = windows.iter().map(|w| w.0).fold(f64::MAX, f64::min);
    let earliest_end = windows.iter().map(|w| w.1).fold(f64::MAX, f64::min);
    let shortest = windows.iter().map(|w| w.1 - w.0).fold(f64::MAX, f64::min);
    let label = &parts[0].label;
    let listing = || {
        dirs.iter()
            .zip(&windows)
            .map(|(d, (start, end))| {
                format!(
                    "{}: {} + {:.3} s",
                    d.display(),
                    report::utc_stamp(
                        std::time::UNIX_EPOCH + Duration::from_secs_f64(*start),
                        false
                    ),
                    end - start
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    if latest_start >= earliest_end {
        return Err(Error::Scenario(format!(
            "scenario {label}: the generators' measured windows do not overlap ({}); merge adds \
             up generators that drove the cluster at the same time: start them together with \
             `--start-at`",
            listing()
        )));
    }
    if earliest_end - latest_start < shortest / 2.0 {
        tracing::warn!(
            "scenario {label}: the generators' measured windows overlap by {:.3} s only ({}); \
             the merged rates count time when not every generator was running",
            earliest_end - latest_start,
            listing()
        );
    }
    Ok((latest_start - earliest_start) * 1e3)
}

/// Merges the runs in `dirs` into a new results folder `out`; returns the merged summary.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Summary, Error> {
    let runs = dirs
        .iter()
        .map(|d| Summary::load(d))
        .collect::<Result<Vec<_>, _>>()?;
    check_compatible(dirs, &runs)?;
    let folder = report::ReportDir::create(out)?;
    let mut merged = runs[0].clone();
    merged.interrupted = runs.iter().any(|r| r.interrupted);
    merged.description = format!(
        "{} (merged from {} generators: {})",
        merged.description.trim(),
        dirs.len(),
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    merged.scenarios.clear();
    let mut csv = String::from(report::files::TIMESERIES_HEADER);
    for (i, first) in runs[0].scenarios.iter().enumerate() {
        let parts: Vec<&ScenarioSummary> = runs.iter().map(|r| &r.scenarios[i]).collect();
        let stem = format!("scenario-{:02}", first.index);
        let histograms = dirs
            .iter()
            .map(|d| report::read_histograms(&read(&d.join(format!("{stem}.histograms")))?))
            .collect::<Result<Vec<_>, _>>()?;
        let (mut scenario, sums) = merge_scenario(&parts, &histograms, Combine::Concurrent)?;
        let spread_ms = check_windows(dirs, &parts)?;
        let evidence_everywhere = dirs
            .iter()
            .all(|d| d.join(format!("{stem}.evidence")).exists());
        let cross = if evidence_everywhere {
            Some(cross_check(dirs, &stem, first.settings.run.tag)?)
        } else {
            tracing::warn!(
                "scenario {}: not every generator kept its evidence (`measure.evidence: true`), \
                 so agreement across generators was not checked",
                first.label
            );
            None
        };
        if let Some(check) = &cross {
            scenario.safety.violations += check.violations;
            if check.violations > 0 {
                scenario
                    .safety
                    .by_kind
                    .push(("across-generators".into(), check.violations));
                scenario
                    .safety
                    .examples
                    .extend(check.examples.iter().cloned());
            }
        }
        if let Some(shared) = &mut scenario.shared {
            shared.window_spread_ms = Some(spread_ms);
            shared.cross_check = cross;
        }
        let op = sums.get("op").cloned().unwrap_or_else(latency_histogram);
        folder.write(&format!("{stem}.hgrm"), report::hgrm(&op).as_bytes())?;
        let named: Vec<(&str, &Histogram<u64>)> =
            sums.iter().map(|(n, h)| (n.as_str(), h)).collect();
        folder.write(
            &format!("{stem}.histograms"),
            report::histograms_file(&named)?.as_bytes(),
        )?;
        // Per-second latency from the interval logs, and per-second counts from the CSVs.
        let mut seconds: Vec<Histogram<u64>> = Vec::new();
        for dir in dirs {
            for (s, histogram) in read_hlog(&dir.join(format!("{stem}.hlog")))?
                .into_iter()
                .enumerate()
            {
                if seconds.len() <= s {
                    seconds.resize_with(s + 1, interval_histogram);
                }
                add(&mut seconds[s], &histogram)?;
            }
        }
        folder.write(
            &format!("{stem}.hlog"),
            &report::hlog(
                &seconds,
                &format!("scenario-{}", first.index),
                std::time::UNIX_EPOCH + Duration::from_secs_f64(scenario.window_start_unix_s),
                scenario.measured_s,
            )?,
        )?;
        // Per-second counts add up; the generators' own resource columns do not merge.
        let mut counts: BTreeMap<u64, report::files::SecondRow> = BTreeMap::new();
        for dir in dirs {
            let csv = read(&dir.join("timeseries.csv"))?;
            for row in csv
                .lines()
                .skip(1)
                .filter_map(report::files::SecondRow::parse)
            {
                if row.scenario != first.index {
                    continue;
                }
                let sum = counts.entry(row.second).or_default();
                sum.scenario = row.scenario;
                sum.repetition = row.repetition;
                sum.second = row.second;
                sum.partial |= row.partial;
                sum.ops += row.ops;
                sum.decisions += row.decisions;
                sum.retries += row.retries;
                sum.preemptions += row.preemptions;
            }
        }
        for (second, mut row) in counts {
            (row.p50_us, row.p99_us) = seconds
                .get(second as usize)
                .filter(|h| !h.is_empty())
                .map_or((0, 0), |h| {
                    (h.value_at_quantile(0.5), h.value_at_quantile(0.99))
                });
            row.write(&first.label, &mut csv);
            csv.push_str(",,,,,,\n");
        }
        merged.scenarios.push(scenario);
    }
    folder.write("timeseries.csv", csv.as_bytes())?;
    folder.write(
        "config.yaml",
        read(&dirs[0].join("config.yaml"))?.as_bytes(),
    )?;
    folder.write("summary.md", report::markdown(&merged).as_bytes())?;
    folder.write(
        "summary.json",
        (serde_json::to_string_pretty(&merged).unwrap_or_default() + "\n").as_bytes(),
    )?;
    crate::report::html::render(folder.path())?;
    folder.finish(merged.interrupted)?;
    Ok(merged)
}
