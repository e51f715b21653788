//! `paxbench compare A B [C…]`: the matching scenarios of several runs side by side, with
//! ratios against the first run and the latency spectra overlaid in one chart. With
//! repetitions on both sides a change counts only when the Mann–Whitney test says so and the
//! medians differ by more than the threshold ([`stats::judge`]); with one run a side, a ratio
//! past the threshold is flagged as possibly noise.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::analysis::stats::{self, Verdict};
use crate::error::Error;
use crate::report::chart::{self, ChartData};
use crate::report::summary::{ScenarioSummary, Summary};
use crate::report::table;

/// One figure per repetition (the figure itself for a single run).
fn samples(s: &ScenarioSummary, pick: fn(&crate::report::summary::Headline) -> f64) -> Vec<f64> {
    match &s.repetitions {
        Some(r) => r.runs.iter().map(pick).collect(),
        None => vec![pick(&crate::report::summary::Headline::of(s))],
    }
}

/// One scenario of one run, as compared.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The run's folder name.
    pub run: String,
    /// Decisions per second.
    pub decisions_per_s: f64,
    /// p50 latency, µs.
    pub p50_us: u64,
    /// p99 latency, µs.
    pub p99_us: u64,
    /// Retries per operation.
    pub retries_per_op: f64,
    /// The decisions/s, p50 and p99 cells of the scenario table: `median ± half-width` with
    /// repetitions, the figure itself otherwise.
    pub cells: [String; 3],
    /// Decisions per second relative to the first run.
    pub throughput_ratio: f64,
    /// p99 relative to the first run.
    pub p99_ratio: f64,
    /// What the comparison of decisions per second concludes.
    pub throughput: Verdict,
    /// What the comparison of p99 concludes.
    pub p99: Verdict,
    /// Throughput fell, or p99 rose, by more than the threshold: by the test with repetitions
    /// on both sides, by the ratio alone with one run.
    pub regression: bool,
    /// The generator's peak resident set, MiB.
    pub generator_peak_rss_mib: f64,
    /// The generator's RSS growth after the warmup, MiB per minute.
    pub generator_rss_slope: f64,
    /// The generator's CPU per decision, µs.
    pub generator_cpu_us_per_decision: f64,
}

/// The comparison of one scenario label across runs.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioComparison {
    /// The scenario label.
    pub label: String,
    /// One row per run that has it, the first run first.
    pub rows: Vec<Row>,
}

fn run_name(dir: &Path) -> String {
    dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().to_string(),
    )
}

/// Compares the runs in `dirs` (the first is the baseline); `threshold` is a fraction (0.1 =
/// 10%).
pub fn compare(dirs: &[PathBuf], threshold: f64) -> Result<Vec<ScenarioComparison>, Error> {
    let summaries = dirs
        .iter()
        .map(|d| Summary::load(d))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    let Some(first) = summaries.first() else {
        return Ok(out);
    };
    let rate = |h: &crate::report::summary::Headline| h.decisions_per_s;
    let p99 = |h: &crate::report::summary::Headline| h.p99_us as f64;
    for scenario in &first.scenarios {
        let label = scenario.label.clone();
        let base_rates = samples(scenario, rate);
        let base_p99s = samples(scenario, p99);
        let mut rows = Vec::new();
        for (dir, summary) in dirs.iter().zip(&summaries) {
            let Some(s) = summary.scenarios.iter().find(|s| s.label == label) else {
                continue;
            };
            let decisions_per_s = s.throughput.decisions_per_s;
            let generator = s.resources.processes.first();
            let p99_us = s.latency_us.op.p99;
            let throughput = stats::judge(&base_rates, &samples(s, rate), threshold);
            let p99_verdict = stats::judge(&base_p99s, &samples(s, p99), threshold);
            let throughput_ratio = throughput.ratio();
            let p99_ratio = p99_verdict.ratio();
            let worse = |verdict: &Verdict, ratio_is_worse: bool| match verdict {
                Verdict::Changed { .. } => ratio_is_worse,
                Verdict::WithinNoise { .. } => false,
                Verdict::CannotTell { .. } => ratio_is_worse,
            };
            let regression = worse(&throughput, throughput_ratio < 1.0 - threshold)
                || worse(&p99_verdict, p99_ratio > 1.0 + threshold);
            rows.push(Row {
                run: run_name(dir),
                decisions_per_s,
                p50_us: s.latency_us.op.p50,
                p99_us,
                retries_per_op: s.retries.retries_per_op,
                cells: ["decisions/s", "p50", "p99"].map(|column| table::cell(column, s)),
                throughput_ratio,
                p99_ratio,
                throughput,
                p99: p99_verdict,
                regression,
                generator_peak_rss_mib: generator.map_or(0.0, |g| g.peak_rss_mib),
                generator_rss_slope: generator.map_or(0.0, |g| g.rss_slope_mib_per_min),
                generator_cpu_us_per_decision: s.resources.generator_cpu_us_per_decision,
            });
        }
        out.push(ScenarioComparison { label, rows });
    }
    Ok(out)
}

/// The comparison as a Markdown table.
pub fn markdown(comparisons: &[ScenarioComparison], threshold: f64) -> String {
    let mut md = format!(
        "| scenario | run | decisions/s | × | p50 | p99 | × | retries/op | generator peak RSS, slope | generator CPU/decision | verdict (threshold {:.0}%) |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
        threshold * 100.0
    );
    for c in comparisons {
        for row in &c.rows {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.2} | {} | {} | {:.2} | {:.3} | {:.0} MiB, {:+.1} MiB/min | {:.1} µs | {} |",
                c.label,
                row.run,
                row.cells[0],
                row.throughput_ratio,
                row.cells[1],
                row.cells[2],
                row.p99_ratio,
                row.retries_per_op,
                row.generator_peak_rss_mib,
                row.generator_rss_slope,
                row.generator_cpu_us_per_decision,
                verdict(row, threshold)
            );
        }
    }
    md
}

/// The verdict column: what changed, by what evidence.
fn verdict(row: &Row, threshold: f64) -> String {
    let describe = |what: &str, verdict: &Verdict, worse: bool| match verdict {
        Verdict::Changed { ratio, p } => Some(format!(
            "{what} ×{ratio:.2}, {} (p = {p:.3})",
            if worse { "**REGRESSION**" } else { "improved" }
        )),
        Verdict::WithinNoise { ratio, p } if (ratio - 1.0).abs() > threshold => {
            Some(format!("{what} ×{ratio:.2}, within noise (p = {p:.3})"))
        }
        Verdict::CannotTell { ratio } if (ratio - 1.0).abs() > threshold => Some(format!(
            "{what} ×{ratio:.2}{}: one run a side cannot tell noise from change",
            if worse { ", **REGRESSION?**" } else { "" }
        )),
        _ => None,
    };
    let parts: Vec<String> = [
        describe("decisions/s", &row.throughput, row.throughput.ratio() < 1.0),
        describe("p99", &row.p99, row.p99.ratio() > 1.0),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        match row.throughput {
            Verdict::CannotTell { .. } => "no change past the threshold (one run a side)".into(),
            _ => "within noise".into(),
        }
    } else {
        parts.join("; ")
    }
}

/// Writes `compare.md` and the overlaid charts into `out`.
pub fn write(
    dirs: &[PathBuf],
    comparisons: &[ScenarioComparison],
    threshold: f64,
    out: &Path,
) -> Result<(), Error> {
    std::fs::create_dir_all(out).map_err(|source| Error::Io {
        context: format!("creating {}", out.display()),
        source,
    })?;
    let mut spectra = Vec::new();
    let mut timeseries = Vec::new();
    let mut scenarios = Vec::new();
    let mut resources = Vec::new();
    let mut first = None;
    for dir in dirs {
        let data = chart::load(dir)?;
        let run = run_name(dir);
        for (name, rows) in data.resources {
            resources.push((format!("{run}: {name}"), rows));
        }
        for ((label, points), (_, rows)) in data.spectra.into_iter().zip(data.timeseries) {
            spectra.push((format!("{run}: {label}"), points.clone()));
            timeseries.push((format!("{run}: {label}"), rows));
        }
        for mut s in data.summary.scenarios.iter().cloned() {
            s.label = format!("{run}: {}", s.label);
            scenarios.push(s);
        }
        first.get_or_insert(data.summary);
    }
    let Some(first) = first else {
        return Ok(());
    };
    let overlaid = ChartData {
        summary: Summary {
            name: "compare".into(),
            scenarios,
            ..first
        },
        spectra,
        timeseries,
        resources,
    };
    chart::draw_all(&overlaid, out)?;
    let path = out.join("compare.md");
    std::fs::write(
        &path,
        format!("# paxbench compare\n\n{}", markdown(comparisons, threshold)),
    )
    .map_err(|source| Error::Io {
        context: format!("writing {}", path.display()),
        source,
    })
}
