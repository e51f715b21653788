//! `report.html`: one self-contained page per run (inline SVG, inline style, no scripts and
//! nothing fetched) with the environment, the findings written out, the tables and every chart.

use std::fmt::Write as _;

use serde_json::Value;

use crate::chart::{Chart, ChartData};
use crate::report::fmt_us;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// The findings, in sentences: what a reader should take away.
pub fn findings(summary: &Value) -> Vec<String> {
    let scenarios = summary["scenarios"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for s in &scenarios {
        let violations = u(&s["safety"]["violations"]);
        if violations > 0 {
            let kinds = s["safety"]["by_kind"]
                .as_array()
                .map(|k| {
                    k.iter()
                        .map(|p| format!("{} {}", u(&p[1]), p[0].as_str().unwrap_or("?")))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let verdict = if s["safety"]["expected"].as_bool() == Some(true) {
                "as this config expects"
            } else {
                "UNEXPECTED: a safety bug"
            };
            out.push(format!(
                "Scenario {} saw {violations} safety violations ({kinds}), {verdict}.",
                s["label"].as_str().unwrap_or("?")
            ));
        }
    }
    if scenarios.len() > 1 {
        let finished = |s: &&Value| u(&s["outcomes"]["won"]) + u(&s["outcomes"]["lost_race"]) > 0;
        if let Some(least) = scenarios.iter().filter(finished).min_by(|a, b| {
            f(&a["retries"]["retries_per_op"]).total_cmp(&f(&b["retries"]["retries_per_op"]))
        }) {
            out.push(format!(
                "Fewest retries: {} ({:.3} per operation).",
                least["label"].as_str().unwrap_or("?"),
                f(&least["retries"]["retries_per_op"])
            ));
        }
        if let Some(fastest) = scenarios.iter().max_by(|a, b| {
            f(&a["throughput"]["decisions_per_s"])
                .total_cmp(&f(&b["throughput"]["decisions_per_s"]))
        }) {
            out.push(format!(
                "Most decisions per second: {} ({:.0}/s, p99 {}).",
                fastest["label"].as_str().unwrap_or("?"),
                f(&fastest["throughput"]["decisions_per_s"]),
                fmt_us(u(&fastest["latency_us"]["op"]["p99"]))
            ));
        }
    }
    for s in &scenarios {
        let windows = u(&s["contention"]["livelock_windows"]);
        if windows > 0 {
            out.push(format!(
                "Livelock windows in {}: {windows} ({:.1} ms with two or more proposers and no decision).",
                s["label"].as_str().unwrap_or("?"),
                f(&s["contention"]["livelock_ms"])
            ));
        }
        if s["throughput"]["fell_behind"].as_bool() == Some(true) {
            out.push(format!(
                "In {} the open-loop generator fell behind its schedule: latency includes the queueing.",
                s["label"].as_str().unwrap_or("?")
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
    let env = &summary["environment"];
    let name = escape(summary["name"].as_str().unwrap_or("run"));
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>paxbench: {name}</title>\n\
         <style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0;font-size:0.85em}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}\
         th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}figure{{margin:1.5em 0}}\
         .warn{{color:#b00;font-weight:bold}}</style></head><body>\n<h1>paxbench run: {name}</h1>\n"
    );
    if summary["interrupted"].as_bool() == Some(true) {
        html.push_str("<p class=\"warn\">INTERRUPTED: Ctrl-C stopped this run; what was measured is below.</p>\n");
    }
    let _ = writeln!(
        html,
        "<p>{}</p>",
        escape(summary["description"].as_str().unwrap_or(""))
    );
    let _ = writeln!(
        html,
        "<h2>Environment</h2>\n<p>Started {} · config <code>{}</code> · seed {} · {} ({} cores) · {} · commit <code>{}</code> · paxbench {}</p>",
        escape(summary["started_utc"].as_str().unwrap_or("")),
        escape(summary["config"].as_str().unwrap_or("")),
        u(&env["seed"]),
        escape(env["cpu"].as_str().unwrap_or("")),
        u(&env["cores"]),
        escape(env["os"].as_str().unwrap_or("")),
        escape(env["git_commit"].as_str().unwrap_or("")),
        escape(env["paxbench_version"].as_str().unwrap_or("")),
    );
    html.push_str("<h2>Findings</h2>\n<ul>\n");
    for finding in findings(summary) {
        let _ = writeln!(html, "<li>{}</li>", escape(&finding));
    }
    html.push_str("</ul>\n<h2>Scenarios</h2>\n<table id=\"summary-table\"><tr><th>scenario</th><th>decisions/s</th><th>p50</th><th>p99</th><th>won</th><th>lost race</th><th>gave up</th><th>retries/op</th><th>preemptions/op</th><th>duels</th><th>livelock windows</th><th>ID collisions</th><th>violations</th></tr>\n");
    let scenarios = summary["scenarios"].as_array().cloned().unwrap_or_default();
    for s in &scenarios {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(s["label"].as_str().unwrap_or("?")),
            f(&s["throughput"]["decisions_per_s"]),
            fmt_us(u(&s["latency_us"]["op"]["p50"])),
            fmt_us(u(&s["latency_us"]["op"]["p99"])),
            u(&s["outcomes"]["won"]),
            u(&s["outcomes"]["lost_race"]),
            u(&s["outcomes"]["gave_up"]) + u(&s["outcomes"]["timed_out"]),
            f(&s["retries"]["retries_per_op"]),
            f(&s["contention"]["preemptions_per_op"]),
            u(&s["contention"]["dueling_episodes"]),
            u(&s["contention"]["livelock_windows"]),
            u(&s["ids"]["collisions"]),
            u(&s["safety"]["violations"]),
        );
    }
    html.push_str("</table>\n<table id=\"latency-table\"><tr><th>scenario</th><th>op p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>service p50</th><th>phase 1 p50</th><th>phase 2 p50</th><th>messages/decision</th><th>bytes/decision</th></tr>\n");
    for s in &scenarios {
        let l = &s["latency_us"];
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.0}</td></tr>",
            escape(s["label"].as_str().unwrap_or("?")),
            fmt_us(u(&l["op"]["p50"])),
            fmt_us(u(&l["op"]["p90"])),
            fmt_us(u(&l["op"]["p99"])),
            fmt_us(u(&l["op"]["p999"])),
            fmt_us(u(&l["op"]["max"])),
            fmt_us(u(&l["service"]["p50"])),
            fmt_us(u(&l["phase1"]["p50"])),
            fmt_us(u(&l["phase2"]["p50"])),
            f(&s["messages"]["per_decision"]),
            f(&s["messages"]["bytes_per_decision"]),
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
