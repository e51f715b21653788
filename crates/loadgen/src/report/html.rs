//! `report.html`: one self-contained page per run (inline SVG, inline style, no scripts and
//! nothing fetched) with the environment, the findings written out, the tables and every chart.

use std::fmt::Write as _;

use crate::report::chart::{Chart, ChartData};
use crate::report::fmt_us;
use crate::report::summary::{ScenarioSummary, Summary};
use crate::report::table;

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
                "Scenario {} saw {violations} safety violations ({kinds}), {verdict}.",
                s.label
            ));
        }
    }
    if scenarios.len() > 1 {
        let finished = |s: &&ScenarioSummary| s.outcomes.won + s.outcomes.lost_race > 0;
        if let Some(least) = scenarios.iter().filter(finished).min_by(|a, b| {
            a.retries
                .retries_per_op
                .total_cmp(&b.retries.retries_per_op)
        }) {
            out.push(format!(
                "Fewest retries: {} ({:.3} per operation).",
                least.label, least.retries.retries_per_op
            ));
        }
        if let Some(fastest) = scenarios.iter().max_by(|a, b| {
            a.throughput
                .decisions_per_s
                .total_cmp(&b.throughput.decisions_per_s)
        }) {
            out.push(format!(
                "Most decisions per second: {} ({:.0}/s, p99 {}).",
                fastest.label,
                fastest.throughput.decisions_per_s,
                fmt_us(fastest.latency_us.op.p99)
            ));
        }
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

/// The page.
pub fn page(data: &ChartData, charts: &[Chart]) -> String {
    let summary = &data.summary;
    let env = &summary.environment;
    let name = escape(&summary.name);
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>paxbench: {name}</title>\n\
         <style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0;font-size:0.85em}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}td{{white-space:nowrap}}\
         th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}figure{{margin:1.5em 0}}\
         .warn{{color:#b00;font-weight:bold}}</style></head><body>\n<h1>paxbench run: {name}</h1>\n"
    );
    if summary.interrupted {
        html.push_str("<p class=\"warn\">INTERRUPTED: Ctrl-C stopped this run; what was measured is below.</p>\n");
    }
    let _ = writeln!(html, "<p>{}</p>", escape(&summary.description));
    let _ = writeln!(
        html,
        "<h2>Environment</h2>\n<p>Started {} · config <code>{}</code> · seed {} · {} ({} cores) · {} · commit <code>{}</code> · paxbench {}</p>",
        escape(&summary.started_utc),
        escape(&summary.config),
        env.seed,
        escape(&env.cpu),
        env.cores,
        escape(&env.os),
        escape(&env.git_commit),
        escape(&env.paxbench_version),
    );
    html.push_str("<h2>Findings</h2>\n<ul>\n");
    for finding in findings(summary) {
        let _ = writeln!(html, "<li>{}</li>", escape(&finding));
    }
    html.push_str("</ul>\n<h2>Scenarios</h2>\n");
    html.push_str(&table::html(&summary.scenarios, "summary-table", escape));
    html.push_str("<table id=\"latency-table\"><tr><th>scenario</th><th>op p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>service p50</th><th>phase 1 p50</th><th>phase 2 p50</th><th>messages/decision</th><th>bytes/decision</th></tr>\n");
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
    html.push_str("</table>\n<h2>Charts</h2>\n");
    for chart in charts {
        let _ = writeln!(
            html,
            "<figure id=\"chart-{}\">{}<figcaption>{}</figcaption></figure>",
            chart.name,
            chart
                .svg
                .trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
                .trim(),
            escape(&chart.title)
        );
    }
    html.push_str("</body></html>\n");
    html
}
