//! The spread chart of a repeated run: each scenario's median decisions per second and p99,
//! with the interval of the median as an error bar.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{self, Entry, Mark, legend_column};
use super::{ChartData, DrawResult, FAMILY, color, scenarios};
use crate::analysis::stats::Spread;
use crate::report::summary::Repetitions;

/// Whether the scenarios were repeated: the spread chart.
pub fn has_spread(data: &ChartData) -> bool {
    scenarios(data).iter().any(|s| s.repetitions.is_some())
}

/// Decisions per second and p99 per scenario: the median over the repetitions with an error
/// bar for its interval.
pub fn draw_spread<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    title: &str,
) -> DrawResult {
    let (top, bottom, side) = style::two_panels(root)?;
    let all = scenarios(data);
    let n = all.len().max(1);
    let x = || -0.5f64..n as f64 - 0.5;
    type Pick = fn(&Repetitions) -> Spread;
    /// A panel: where, its axis, its figure, whether it is a latency, its caption.
    type Panel<'a, DB> = (
        &'a DrawingArea<DB, Shift>,
        &'a str,
        Pick,
        bool,
        Option<&'a str>,
    );
    let panels: [Panel<'_, DB>; 2] = [
        (
            &top,
            "decisions per second",
            |r| r.decisions_per_s,
            false,
            Some(title),
        ),
        (&bottom, "p99 latency", |r| r.p99_us, true, None),
    ];
    for (area, y_desc, pick, latency, caption) in panels {
        let scale = if latency { 1e-3 } else { 1.0 };
        let max_y = all
            .iter()
            .filter_map(|s| s.repetitions.as_ref())
            .map(|r| pick(r).ci_high * scale)
            .fold(0.001, f64::max);
        let mut builder = ChartBuilder::on(area);
        if let Some(caption) = caption {
            builder.caption(caption, (FAMILY, 18));
        }
        let mut chart = builder
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(x(), 0.0f64..max_y * 1.15)
            .map_err(|e| e.to_string())?;
        let format_y = style::axis_numbers(latency);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("scenario (numbered in the key)")
            .y_desc(y_desc)
            .x_labels(n.min(12))
            .x_label_formatter(&style::whole)
            .y_label_formatter(&format_y)
            .label_style((FAMILY, 12))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, s) in all.iter().enumerate() {
            let Some(r) = &s.repetitions else { continue };
            // Agreement broke: its "decisions" are not throughput, so none is drawn.
            if s.safety.violations > 0 && !latency {
                continue;
            }
            let spread = pick(r);
            let c = color(i);
            chart
                .draw_series(std::iter::once(ErrorBar::new_vertical(
                    i as f64,
                    spread.ci_low * scale,
                    spread.median * scale,
                    spread.ci_high * scale,
                    c.stroke_width(2),
                    16,
                )))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(std::iter::once(Circle::new(
                    (i as f64, spread.median * scale),
                    4,
                    c.filled(),
                )))
                .map_err(|e| e.to_string())?;
        }
    }
    let confidence = all
        .iter()
        .filter_map(|s| s.repetitions.as_ref())
        .map(|r| r.decisions_per_s.confidence)
        .fold(1.0, f64::min);
    let entries: Vec<Entry> = all
        .iter()
        .enumerate()
        .map(|(i, s)| Entry {
            label: format!("{i}: {}", style::scenario_series(s).0),
            color: color(i),
            mark: Mark::Line,
        })
        .collect();
    let key = format!("median, {:.0}% interval", 100.0 * confidence);
    legend_column(&side, Some(&key), &entries)?;
    root.present().map_err(|e| e.to_string())
}
