//! `report.html`: one self-contained page per run (inline SVG, inline style, no scripts and
//! nothing fetched) with the environment, the findings written out, the tables and every chart.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use crate::analysis::stats::Spread;
use crate::error::Error;
use crate::report::chart::{Chart, ChartData};
use crate::report::summary::{Repetitions, ScenarioSummary, Summary};
use crate::report::table::fmt_us;
use crate::report::{chart, markdown, table};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The findings, in sentences: what a reader should take away.
pub fn findings(summary: &Summary) -> Vec<String> {
    let scenarios = &summary.scenarios;
    let mut out = Vec::new();
    for s in scenarios {
        let violations = s.safety.violations;
        if violations > 0 {
            let kinds = s
                .safety
                .by_kind
                .iter()
                .map(|(kind, count)| format!("{count} {kind}"))
                .collect::<Vec<_>>()
                .join(", ");
            let verdict = if s.safety.expected {
                "as this config expects"
            } else {
                "UNEXPECTED: a safety bug"
            };
            out.push(format!(
                "Scenario {} saw {violations} safety violations ({kinds}), {verdict}. With \
                 agreement broken, several proposers \"won\" one instance: its decisions per \
                 second are not throughput, and it is ranked nowhere.",
                s.label
            ));
        }
    }
    // A scenario whose agreement broke has several "winners" per instance: its counts are
    // not a result, and it is never ranked.
    let ranked: Vec<&ScenarioSummary> = scenarios
        .iter()
        .filter(|s| s.safety.violations == 0 && s.outcomes.won + s.outcomes.lost_race > 0)
        .collect();
    if ranked.len() > 1 {
        let retries =
            |s: &ScenarioSummary| s.median_or(|r| &r.retries_per_op, s.retries.retries_per_op);
        let rate =
            |s: &ScenarioSummary| s.median_or(|r| &r.decisions_per_s, s.throughput.decisions_per_s);
        let mut by_retries = ranked.clone();
        by_retries.sort_by(|a, b| retries(a).total_cmp(&retries(b)));
        out.push(ranking(
            "Fewest retries",
            by_retries[0],
            by_retries[1],
            |r| &r.retries_per_op,
            &format!("{:.3} per operation", retries(by_retries[0])),
        ));
        let mut by_rate = ranked.clone();
        by_rate.sort_by(|a, b| rate(b).total_cmp(&rate(a)));
        out.push(ranking(
            "Most decisions per second",
            by_rate[0],
            by_rate[1],
            |r| &r.decisions_per_s,
            &format!(
                "{:.0}/s, p99 {}",
                rate(by_rate[0]),
                fmt_us(by_rate[0].latency_us.op.p99)
            ),
        ));
    }
    for s in scenarios {
        let windows = s.contention.livelock_windows;
        if windows > 0 {
            out.push(format!(
                "Livelock windows in {}: {windows} ({:.1} ms with two or more proposers and no decision).",
                s.label, s.contention.livelock_ms
            ));
        }
        if s.resources.is_noisy() {
            out.push(format!(
                "{} ran on a noisy machine: {:.0}% of its CPU time was stolen and {:.0}% went to other processes, so its figures are partly a measurement of them.",
                s.label, s.resources.steal_pct, s.resources.foreign_cpu_pct
            ));
        }
        if let Some(drift) = &s.drift {
            for found in drift.findings() {
                out.push(format!("{} drifted: {found}.", s.label));
            }
        }
        // A slope over a short run is mostly start-up; two minutes show a trend.
        if s.measured_s >= 120.0 {
            for p in &s.resources.processes {
                if p.rss_slope_mib_per_min > crate::measure::drift::RSS_DRIFT_MIB_PER_MIN {
                    out.push(format!(
                        "In {} the {} grew {:.1} MiB per minute after the warmup (to {:.0} MiB): a long run would fill memory.",
                        s.label, p.name, p.rss_slope_mib_per_min, p.final_rss_mib
                    ));
                }
            }
        }
        if s.throughput.fell_behind {
            out.push(format!(
                "In {} the open-loop generator fell behind its schedule: latency includes the queueing.",
                s.label
            ));
        }
    }
    if out.is_empty() {
        out.push("No safety violations; nothing unusual to report.".into());
    }
    out
}

/// A ranking finding: `best` leads `runner_up`, unless their repetitions' intervals of the
/// figure overlap, in which case the finding says they are within noise of each other.
fn ranking(
    what: &str,
    best: &ScenarioSummary,
    runner_up: &ScenarioSummary,
    spread: fn(&Repetitions) -> &Spread,
    figure: &str,
) -> String {
    match (&best.repetitions, &runner_up.repetitions) {
        (Some(a), Some(b)) => {
            let (a, b) = (spread(a), spread(b));
            if a.ci_low <= b.ci_high && b.ci_low <= a.ci_high {
                format!(
                    "{what}: {} ({figure}), but within noise of {}: their {:.0}% intervals overlap.",
                    best.label,
                    runner_up.label,
                    100.0 * a.confidence.min(b.confidence)
                )
            } else {
                format!(
                    "{what}: {} ({figure}); its {:.0}% interval clears the next one's ({}).",
                    best.label,
                    100.0 * a.confidence.min(b.confidence),
                    runner_up.label
                )
            }
        }
        _ => format!(
            "{what}: {} ({figure}; one run each, so noise is not ruled out).",
            best.label
        ),
    }
}

/// What a chart shows and where its raw figures are: the caption under it (the title is
/// drawn in the chart itself).
fn caption(name: &str) -> &'static str {
    match name {
        "id-schemes" => {
            "Lines: retries per operation; circles: preemptions per operation; right: p99. \
             Dashed lines are ID schemes whose agreement broke. Raw figures: summary.json."
        }
        "spread" => {
            "Each scenario's median over its repetitions, with the interval of the median as an \
             error bar; unsafe scenarios get no throughput point. Every repetition's figures: \
             summary.json (repetitions.runs)."
        }
        "key-ranks" => "Preemptions per operation on each of the hottest keys. Raw: summary.json.",
        "latency-spectrum" => {
            "Read across at a percentile to compare scenarios at the tail. Raw spectra: \
             scenario-NN.hgrm (wrk2's format) and the histograms in scenario-NN.histograms."
        }
        "over-time" => {
            "Per second of the measured window, partial seconds left out. Raw: timeseries.csv \
             and the interval logs scenario-NN.hlog."
        }
        "outcomes" => {
            "Stacked counts of how measured operations ended; a red outline marks a scenario \
             whose agreement broke. Raw: summary.json (outcomes)."
        }
        "rounds" => {
            "How many attempts operations needed, as a share of operations. Raw: summary.json."
        }
        "resources" => "Memory and CPU per process, per second. Raw: resources.csv.",
        _ => "",
    }
}

/// The page: every detail of `summary.md`, the spread from repetitions, every chart, and links
/// to every raw file of the folder, which it lists from `files` (names beside `report.html`).
pub fn page(data: &ChartData, charts: &[Chart], files: &[String]) -> String {
    let summary = &data.summary;
    let env = &summary.environment;
    let name = escape(&summary.name);
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>paxbench: {name}</title>\n\
         <style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}}\
         .scroll{{overflow-x:auto;max-width:100%}}\
         table{{border-collapse:collapse;margin:1em 0;font-size:0.85em}}\
         td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right;white-space:nowrap}}\
         th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}\
         table.details td{{white-space:normal}}table.details td:first-child{{width:40%}}\
         figure{{margin:1.5em 0}}figure svg{{max-width:100%;height:auto}}\
         figcaption{{color:#555;font-size:0.9em}}\
         .warn{{color:#b00;font-weight:bold}}</style></head><body>\n<h1>paxbench run: {name}</h1>\n"
    );
    if summary.interrupted {
        html.push_str("<p class=\"warn\">INTERRUPTED: Ctrl-C stopped this run; what was measured is below.</p>\n");
    }
    let _ = writeln!(html, "<p>{}</p>", escape(&summary.description));
    let _ = writeln!(
        html,
        "<h2>Environment</h2>\n<p>Started {} · config <code>{}</code> · seed {} · {} ({} cores) · {} · CPU governor {} · commit <code>{}</code> · paxbench {}</p>",
        escape(&summary.started_utc),
        escape(&summary.config),
        env.seed,
        escape(&env.cpu),
        env.cores,
        escape(&env.os),
        escape(env.cpu_governor.as_deref().unwrap_or("unknown")),
        escape(&env.git_commit),
        escape(&env.paxbench_version),
    );
    html.push_str("<h2>Findings</h2>\n<ul>\n");
    for finding in findings(summary) {
        let _ = writeln!(html, "<li>{}</li>", escape(&finding));
    }
    html.push_str("</ul>\n<h2>Scenarios</h2>\n");
    if summary.scenarios.iter().any(|s| s.repetitions.is_some()) {
        html.push_str("<p>With repetitions, figures read <i>median ± half-width</i> of the interval of the median; the interval's coverage is in each scenario's details.</p>\n");
    }
    html.push_str("<div class=\"scroll\">");
    html.push_str(&table::html(&summary.scenarios, "summary-table", escape));
    html.push_str("</div>\n<div class=\"scroll\"><table id=\"latency-table\"><tr><th>scenario</th><th>op p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>service p50</th><th>phase 1 p50</th><th>phase 2 p50</th><th>messages/decision</th><th>bytes/decision</th></tr>\n");
    for s in &summary.scenarios {
        let l = &s.latency_us;
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.0}</td></tr>",
            escape(&s.label),
            fmt_us(l.op.p50),
            fmt_us(l.op.p90),
            fmt_us(l.op.p99),
            fmt_us(l.op.p999),
            fmt_us(l.op.max),
            fmt_us(l.service.p50),
            fmt_us(l.phase1.p50),
            fmt_us(l.phase2.p50),
            s.messages.per_decision,
            s.messages.bytes_per_decision,
        );
    }
    html.push_str("</table></div>\n<h2>Charts</h2>\n");
    for chart in charts {
        let _ = writeln!(
            html,
            "<figure id=\"chart-{}\">{}<figcaption>{} <a href=\"charts/{}.svg\">SVG</a> · <a href=\"charts/{}.png\">PNG</a></figcaption></figure>",
            chart.name,
            chart
                .svg
                .trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
                .trim(),
            escape(caption(&chart.name)),
            chart.name,
            chart.name,
        );
    }
    html.push_str("<h2>Details</h2>\n");
    for s in &summary.scenarios {
        let _ = writeln!(
            html,
            "<h3 id=\"scenario-{}\">Scenario {}: {}</h3>",
            s.index,
            s.index,
            escape(&s.label)
        );
        if s.interrupted {
            html.push_str("<p class=\"warn\">Interrupted.</p>\n");
        }
        html.push_str("<table class=\"details\"><tr><th>measure</th><th>value</th></tr>\n");
        for (measure, value) in markdown::details(s) {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(&measure),
                escape(&value)
            );
        }
        html.push_str("</table>\n");
        for note in markdown::notes(s) {
            let _ = writeln!(html, "<blockquote>{}</blockquote>", escape(&note));
        }
    }
    html.push_str("<h2>Raw files</h2>\n<ul id=\"raw-files\">\n");
    for file in files {
        let _ = writeln!(
            html,
            "<li><a href=\"{}\">{}</a></li>",
            escape(file),
            escape(file)
        );
    }
    html.push_str("</ul>\n</body></html>\n");
    html
}
/// Charts and `report.html` for the results folder `dir`; returns the files written.
pub fn render(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let data = chart::load(dir)?;
    let charts = chart::draw_all(&data, dir)?;
    let mut files: Vec<String> = fs::read_dir(dir)
        .map_err(Error::io(format!("listing {}", dir.display())))?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().to_string_lossy().to_string();
            (entry.file_type().ok()?.is_file() && name != "report.html").then_some(name)
        })
        .collect();
    files.sort();
    let page = page(&data, &charts, &files);
    let page_path = dir.join("report.html");
    fs::write(&page_path, page).map_err(Error::io(format!("writing {}", page_path.display())))?;
    let mut files: Vec<PathBuf> = charts
        .iter()
        .flat_map(|c| {
            ["svg", "png"].map(|ext| dir.join("charts").join(format!("{}.{ext}", c.name)))
        })
        .collect();
    files.push(page_path);
    Ok(files)
}
