//! The scenario comparison row, defined once: each column's names and how it reads and formats a
//! scenario. The same columns are rendered for a terminal, in `summary.md` and in `report.html`.

use std::fmt::Write as _;

use crate::analysis::stats::Spread;
use crate::report::summary::{Repetitions, ScenarioSummary};

/// Microseconds for people: `480 µs`, `12.5 ms`.
pub fn fmt_us(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else {
        format!("{us} µs")
    }
}

/// One column of the comparison row.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    /// The header in Markdown and HTML.
    pub name: &'static str,
    /// The header in a terminal, where width is short.
    pub short: &'static str,
    /// The cell of a scenario.
    pub cell: fn(&ScenarioSummary) -> String,
}

/// A figure as `median ± half-width` of its 95% interval when the scenario was repeated, as
/// the pooled figure otherwise.
fn spread_or(
    s: &ScenarioSummary,
    spread: fn(&Repetitions) -> &Spread,
    pooled: f64,
    format: fn(f64) -> String,
) -> String {
    match &s.repetitions {
        Some(r) => {
            let spread = spread(r);
            format!(
                "{} ± {}",
                format(spread.median),
                format(spread.half_width())
            )
        }
        None => format(pooled),
    }
}

fn rate(value: f64) -> String {
    format!("{value:.0}")
}

fn micros(value: f64) -> String {
    fmt_us(value.round() as u64)
}

fn ratio(value: f64) -> String {
    format!("{value:.3}")
}

/// Decisions per second, unless agreement broke: then several proposers "won" one instance,
/// and the count is not throughput.
fn decisions(s: &ScenarioSummary) -> String {
    if s.safety.violations > 0 {
        return format!("unsafe ({} violations)", s.safety.violations);
    }
    spread_or(
        s,
        |r| &r.decisions_per_s,
        s.throughput.decisions_per_s,
        rate,
    )
}

/// The columns after the scenario's label, in order.
pub const COLUMNS: &[Column] = &[
    Column {
        name: "decisions/s",
        short: "decisions/s",
        cell: decisions,
    },
    Column {
        name: "p50",
        short: "p50",
        cell: |s| spread_or(s, |r| &r.p50_us, s.latency_us.op.p50 as f64, micros),
    },
    Column {
        name: "p99",
        short: "p99",
        cell: |s| spread_or(s, |r| &r.p99_us, s.latency_us.op.p99 as f64, micros),
    },
    Column {
        name: "won",
        short: "won",
        cell: |s| s.outcomes.won.to_string(),
    },
    Column {
        name: "lost race",
        short: "lost",
        cell: |s| s.outcomes.lost_race.to_string(),
    },
    Column {
        name: "gave up",
        short: "gaveup",
        cell: |s| (s.outcomes.gave_up + s.outcomes.timed_out).to_string(),
    },
    Column {
        name: "retries/op",
        short: "retry/op",
        cell: |s| spread_or(s, |r| &r.retries_per_op, s.retries.retries_per_op, ratio),
    },
    Column {
        name: "preemptions/op",
        short: "preempt/op",
        cell: |s| {
            spread_or(
                s,
                |r| &r.preemptions_per_op,
                s.contention.preemptions_per_op,
                ratio,
            )
        },
    },
    Column {
        name: "duels",
        short: "duels",
        cell: |s| s.contention.dueling_episodes.to_string(),
    },
    Column {
        name: "livelock windows",
        short: "livelock",
        cell: |s| s.contention.livelock_windows.to_string(),
    },
    Column {
        name: "ID collisions",
        short: "collisions",
        cell: |s| s.ids.collisions.to_string(),
    },
    Column {
        name: "violations",
        short: "violations",
        cell: |s| s.safety.violations.to_string(),
    },
];

/// The cell of the column named `name` for `s` (empty for a column that does not exist).
pub fn cell(name: &str, s: &ScenarioSummary) -> String {
    COLUMNS
        .iter()
        .find(|c| c.name == name)
        .map(|c| (c.cell)(s))
        .unwrap_or_default()
}

/// The widest label a terminal row shows; longer ones end in `…`.
const LABEL_WIDTH: usize = 40;

/// Fixed-width rows for a terminal: the label left-aligned, every number right-aligned under
/// a header as wide as its widest cell.
pub fn terminal(scenarios: &[ScenarioSummary]) -> String {
    let cells: Vec<Vec<String>> = scenarios
        .iter()
        .map(|s| COLUMNS.iter().map(|c| (c.cell)(s)).collect())
        .collect();
    let widths: Vec<usize> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .chain([c.short.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!("{:<LABEL_WIDTH$}", "scenario");
    for (column, width) in COLUMNS.iter().zip(&widths) {
        let _ = write!(out, " {:>width$}", column.short);
    }
    out.push('\n');
    for (scenario, row) in scenarios.iter().zip(&cells) {
        let mut label = scenario.label.clone();
        if label.chars().count() > LABEL_WIDTH {
            label = label.chars().take(LABEL_WIDTH - 1).collect::<String>() + "…";
        }
        let _ = write!(out, "{label:<LABEL_WIDTH$}");
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(out, " {cell:>width$}");
        }
        out.push('\n');
    }
    out
}

/// A Markdown table.
pub fn markdown(scenarios: &[ScenarioSummary]) -> String {
    let mut out = String::from("| scenario |");
    for column in COLUMNS {
        let _ = write!(out, " {} |", column.name);
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(COLUMNS.len()));
    out.push('\n');
    for s in scenarios {
        let _ = write!(out, "| {} |", s.label);
        for column in COLUMNS {
            let _ = write!(out, " {} |", (column.cell)(s));
        }
        out.push('\n');
    }
    out
}

/// An HTML table with the given `id`; text is escaped with `escape`.
pub fn html(scenarios: &[ScenarioSummary], id: &str, escape: fn(&str) -> String) -> String {
    let mut out = format!("<table id=\"{id}\"><tr><th>scenario</th>");
    for column in COLUMNS {
        let _ = write!(out, "<th>{}</th>", escape(column.name));
    }
    out.push_str("</tr>\n");
    for s in scenarios {
        let _ = write!(out, "<tr><td>{}</td>", escape(&s.label));
        for column in COLUMNS {
            let _ = write!(out, "<td>{}</td>", escape(&(column.cell)(s)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(label: &str, decisions_per_s: f64, violations: u64) -> ScenarioSummary {
        let mut s = ScenarioSummary {
            label: label.into(),
            ..ScenarioSummary::default()
        };
        s.throughput.decisions_per_s = decisions_per_s;
        s.latency_us.op.p99 = 12_345;
        s.contention.livelock_windows = 3;
        s.safety.violations = violations;
        s
    }

    #[test]
    fn terminal_markdown_and_html_show_the_same_cells() {
        let scenarios = [scenario("x=1", 1234.4, 0), scenario("y=long", 7.0, 2)];
        let terminal = terminal(&scenarios);
        let markdown = markdown(&scenarios);
        let html = html(&scenarios, "t", |s| s.to_string());
        for s in &scenarios {
            let cells: Vec<String> = COLUMNS.iter().map(|c| (c.cell)(s)).collect();
            let row = |text: &str| {
                text.lines()
                    .find(|l| l.contains(&s.label))
                    .unwrap()
                    .to_string()
            };
            let words: Vec<String> = row(&terminal)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            let md: Vec<String> = row(&markdown)
                .split('|')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect();
            let html_row = row(&html);
            assert_eq!(md[1..], cells[..], "markdown row of {}", s.label);
            for cell in &cells {
                assert!(html_row.contains(&format!("<td>{cell}</td>")), "{html_row}");
                assert!(
                    words.join(" ").contains(cell.as_str()),
                    "{cell} in {words:?}"
                );
            }
        }
        assert!(terminal.lines().next().unwrap().contains("livelock"));
        assert!(markdown.contains("12.3 ms"));
        assert_eq!(html.matches("<th>").count(), COLUMNS.len() + 1);
    }
}
