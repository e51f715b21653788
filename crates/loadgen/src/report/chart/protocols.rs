//! The "vanilla vs Multi-Paxos" chart of a protocol sweep: decisions per second and p99
//! against contention (the proposers on a key space), one line per protocol and key count;
//! with repetitions, each point is the median. An unsafe line is dashed.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{self, Entry, Series, legend_column};
use super::{ChartData, DrawResult, FAMILY, scenarios};

/// One point: (proposers, decisions/s, p99 ms).
type Point = (f64, f64, f64);

/// One line per protocol and key count.
fn by_protocol(data: &ChartData) -> Vec<Series<Point>> {
    style::series(
        scenarios(data),
        |s| {
            let protocol = s.settings.target.protocol.label();
            let keys = s.setup.keys;
            format!(
                "{protocol}, {} key{}",
                style::si(keys as f64),
                if keys == 1 { "" } else { "s" }
            )
        },
        |s| {
            let (decisions, p99_us) = match &s.repetitions {
                Some(r) => (r.decisions_per_s.median, r.p99_us.median),
                None => (s.throughput.decisions_per_s, s.latency_us.op.p99 as f64),
            };
            (f64::from(s.setup.proposers), decisions, p99_us / 1e3)
        },
        |p| p.0,
    )
}

/// Whether the run compares both protocols across proposer counts: the chart.
pub fn has_protocols(data: &ChartData) -> bool {
    let lines = by_protocol(data);
    let both = lines.iter().any(|l| l.name.starts_with("vanilla"))
        && lines.iter().any(|l| l.name.starts_with("Multi-Paxos"));
    both && lines.iter().any(|l| l.points.len() >= 2)
}

pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    title: &str,
) -> DrawResult {
    let lines = by_protocol(data);
    let (left, right, side) = style::titled_side_by_side(root, title)?;
    let all = || lines.iter().flat_map(|l| l.points.iter());
    let min_rate = all().map(|p| p.1).fold(f64::INFINITY, f64::min).max(0.1);
    let max_rate = all().map(|p| p.1).fold(min_rate, f64::max);
    let min_p99 = all().map(|p| p.2).fold(f64::INFINITY, f64::min).max(0.001);
    let max_p99 = all().map(|p| p.2).fold(min_p99, f64::max);
    let x_range = || style::proposer_axis(all().map(|p| p.0));
    let mut rate = ChartBuilder::on(&left)
        .caption("decisions per second", (FAMILY, 15))
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range(), (min_rate * 0.6..max_rate * 1.6).log_scale())
        .map_err(|e| e.to_string())?;
    rate.configure_mesh()
        .x_desc("proposers (clients)")
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
        .build_cartesian_2d(x_range(), (min_p99 * 0.6..max_p99 * 1.6).log_scale())
        .map_err(|e| e.to_string())?;
    p99.configure_mesh()
        .x_desc("proposers (clients)")
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
        .map(|(i, line)| line.entry(i))
        .collect();
    legend_column(&side, None, &entries)?;
    root.present().map_err(|e| e.to_string())
}
