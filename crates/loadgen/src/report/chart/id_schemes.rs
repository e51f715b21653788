//! The headline chart of an ID-scheme sweep: retries and preemptions per operation, and p99,
//! against the proposer counts that ran, one line per ID scheme; an unsafe scheme dashed.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{self, Entry, Mark, Series, legend_column};
use super::{ChartData, DrawResult, FAMILY, color, scenarios};

/// One point of the headline chart: (proposers, retries/op, preemptions/op, p99 ms).
type SchemePoint = (f64, f64, f64, f64);

/// The headline chart's lines, one per ID scheme.
fn by_scheme(data: &ChartData) -> Vec<Series<SchemePoint>> {
    style::series(
        scenarios(data),
        |s| s.setup.id_scheme.clone(),
        |s| {
            (
                f64::from(s.setup.proposers),
                s.retries.retries_per_op,
                s.contention.preemptions_per_op,
                s.latency_us.op.p99 as f64 / 1e3,
            )
        },
        |p| p.0,
    )
}

/// Whether the run compares ID schemes across proposer counts: the headline chart.
pub fn has_headline(data: &ChartData) -> bool {
    let lines = by_scheme(data);
    lines.len() >= 2 && lines.iter().any(|l| l.points.len() >= 2)
}

pub fn draw_headline<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    title: &str,
) -> DrawResult {
    let lines = by_scheme(data);
    // The title spans both panels; each panel names its own figure.
    let (left, right, side) = style::titled_side_by_side(root, title)?;
    let max_per_op = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|q| q.1.max(q.2)))
        .fold(0.01, f64::max);
    let max_p99 = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|q| q.3))
        .fold(0.01, f64::max);
    let x_range = || style::proposer_axis(lines.iter().flat_map(|l| l.points.iter().map(|q| q.0)));
    let mut chart = ChartBuilder::on(&left)
        .caption("retries and preemptions", (FAMILY, 15))
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(x_range(), 0.0f64..max_per_op * 1.15)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("proposers")
        .y_desc("per operation")
        .x_label_formatter(&|x| style::si(*x))
        .y_label_formatter(&|y| style::si(*y))
        .label_style((FAMILY, 12))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, line) in lines.iter().enumerate() {
        let c = color(i);
        let retries = line.points.iter().map(|q| (q.0, q.1)).collect();
        style::line(&mut chart, i, retries, line.violations > 0, 3)?;
        // Preemptions as hollow circles, so that they show where they equal the retries.
        chart
            .draw_series(
                line.points
                    .iter()
                    .map(|q| Circle::new((q.0, q.2), 6, c.stroke_width(2))),
            )
            .map_err(|e| e.to_string())?;
    }
    let mut p99 = ChartBuilder::on(&right)
        .caption("p99 latency", (FAMILY, 15))
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(x_range(), 0.0f64..max_p99 * 1.15)
        .map_err(|e| e.to_string())?;
    p99.configure_mesh()
        .x_desc("proposers")
        .y_desc("p99 operation latency")
        .x_label_formatter(&|x| style::si(*x))
        .y_label_formatter(&|y| style::milliseconds(*y))
        .label_style((FAMILY, 12))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, line) in lines.iter().enumerate() {
        let points = line.points.iter().map(|q| (q.0, q.3)).collect();
        style::line(&mut p99, i, points, line.violations > 0, 3)?;
    }
    let mut entries: Vec<Entry> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| line.entry(i))
        .collect();
    entries.push(Entry {
        label: "line: retries/op".into(),
        color: BLACK,
        mark: Mark::Line,
    });
    entries.push(Entry {
        label: "circle: preemptions/op".into(),
        color: BLACK,
        mark: Mark::Circle,
    });
    legend_column(&side, None, &entries)?;
    root.present().map_err(|e| e.to_string())
}
