//! The "vanilla vs Multi-Paxos" chart of a protocol sweep: decisions per second and p99
//! against contention (proposers per key), one line per protocol; with repetitions, each point
//! is the median. An unsafe protocol's line is dashed.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{self, Entry, Mark, legend_column, with_legend_column};
use super::{ChartData, DrawResult, FAMILY, color, scenarios};
use crate::config::file::ProtocolKind;

/// One point: (proposers per key, decisions/s, p99 ms).
type Point = (f64, f64, f64);

/// One protocol's line and the violations its scenarios saw.
struct ProtocolLine {
    name: &'static str,
    points: Vec<Point>,
    violations: u64,
}

fn by_protocol(data: &ChartData) -> Vec<ProtocolLine> {
    let mut lines: Vec<ProtocolLine> = Vec::new();
    for s in scenarios(data) {
        let name = match s.settings.target.protocol {
            ProtocolKind::Vanilla => "vanilla",
            ProtocolKind::MultiPaxos => "Multi-Paxos",
        };
        let (decisions, p99_us) = match &s.repetitions {
            Some(r) => (r.decisions_per_s.median, r.p99_us.median),
            None => (s.throughput.decisions_per_s, s.latency_us.op.p99 as f64),
        };
        let point = (
            f64::from(s.setup.proposers) / s.setup.keys.max(1) as f64,
            decisions,
            p99_us / 1e3,
        );
        let index = match lines.iter().position(|l| l.name == name) {
            Some(index) => index,
            None => {
                lines.push(ProtocolLine {
                    name,
                    points: Vec::new(),
                    violations: 0,
                });
                lines.len() - 1
            }
        };
        lines[index].points.push(point);
        lines[index].violations += s.safety.violations;
    }
    for line in &mut lines {
        line.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    lines
}

/// Whether the run compares protocols across contention: the chart.
pub fn has_protocols(data: &ChartData) -> bool {
    let lines = by_protocol(data);
    lines.len() >= 2 && lines.iter().any(|l| l.points.len() >= 2)
}

pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    title: &str,
) -> DrawResult {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let lines = by_protocol(data);
    let (plot, side) = with_legend_column(root);
    let plot = plot
        .titled(title, (FAMILY, 18))
        .map_err(|e| e.to_string())?;
    let (width, _) = plot.dim_in_pixel();
    let (left, right) = plot.split_horizontally(width / 2);
    let all = || lines.iter().flat_map(|l| l.points.iter());
    let min_x = all().map(|p| p.0).fold(f64::INFINITY, f64::min).max(1e-6);
    let max_x = all().map(|p| p.0).fold(min_x, f64::max);
    let min_rate = all().map(|p| p.1).fold(f64::INFINITY, f64::min).max(0.1);
    let max_rate = all().map(|p| p.1).fold(min_rate, f64::max);
    let max_p99 = all().map(|p| p.2).fold(0.01, f64::max);
    let x_range = || (min_x * 0.6..max_x * 1.6).log_scale();
    let mut rate = ChartBuilder::on(&left)
        .caption("decisions per second", (FAMILY, 15))
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range(), (min_rate * 0.6..max_rate * 1.6).log_scale())
        .map_err(|e| e.to_string())?;
    rate.configure_mesh()
        .x_desc("proposers (clients) per key")
        .y_desc("decisions per second")
        .x_label_formatter(&|x| style::si(*x))
        .y_label_formatter(&|y| style::si(*y))
        .label_style((FAMILY, 12))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, line) in lines.iter().enumerate() {
        let points = line.points.iter().map(|p| (p.0, p.1)).collect();
        style::line(&mut rate, i, points, line.violations > 0, 3)?;
    }
    let mut p99 = ChartBuilder::on(&right)
        .caption("p99 latency", (FAMILY, 15))
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(x_range(), 0.0f64..max_p99 * 1.15)
        .map_err(|e| e.to_string())?;
    p99.configure_mesh()
        .x_desc("proposers (clients) per key")
        .y_desc("p99 operation latency")
        .x_label_formatter(&|x| style::si(*x))
        .y_label_formatter(&|y| style::milliseconds(*y))
        .label_style((FAMILY, 12))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, line) in lines.iter().enumerate() {
        let points = line.points.iter().map(|p| (p.0, p.2)).collect();
        style::line(&mut p99, i, points, line.violations > 0, 3)?;
    }
    let entries: Vec<Entry> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| Entry {
            label: if line.violations > 0 {
                format!("UNSAFE: {} violations · {}", line.violations, line.name)
            } else {
                line.name.to_string()
            },
            color: color(i),
            mark: if line.violations > 0 {
                Mark::Dashed
            } else {
                Mark::Line
            },
        })
        .collect();
    legend_column(&side, None, &entries)?;
    root.present().map_err(|e| e.to_string())
}
