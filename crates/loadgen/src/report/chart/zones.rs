//! The latency-by-zone chart of zoned scenarios: each proposer zone's p50 (top) and p99
//! (bottom), one line per scenario, beside the zone's floor (see `report::zones`), drawn as a
//! grey dash.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{self, Entry, Mark, legend_column};
use super::{ChartData, DrawResult, FAMILY, color, scenarios};
use crate::report::zones::ZoneLatency;

/// Whether any scenario ran in zones.
pub fn has_zones(data: &ChartData) -> bool {
    scenarios(data).iter().any(|s| s.zones.is_some())
}

/// p50 and p99 by proposer zone, per zoned scenario, with each zone's floor.
pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    title: &str,
) -> DrawResult {
    let (top, bottom, side) = style::two_panels(root)?;
    let zoned: Vec<(usize, &crate::report::summary::ScenarioSummary)> = scenarios(data)
        .iter()
        .enumerate()
        .filter(|(_, s)| s.zones.is_some())
        .collect();
    let by_zone = |s: &crate::report::summary::ScenarioSummary| -> Vec<ZoneLatency> {
        s.zones
            .as_ref()
            .map(|z| z.by_zone.clone())
            .unwrap_or_default()
    };
    // The zones of the first zoned scenario name the axis; a sweep keeps the same zones.
    let names: Vec<String> = zoned
        .first()
        .map(|(_, s)| by_zone(s).into_iter().map(|z| z.zone).collect())
        .unwrap_or_default();
    let n = names.len().max(1);
    type Pick = fn(&ZoneLatency) -> u64;
    /// A panel: where, its axis, its figure, its caption.
    type Panel<'a, DB> = (&'a DrawingArea<DB, Shift>, &'a str, Pick, Option<&'a str>);
    let panels: [Panel<'_, DB>; 2] = [
        (&top, "p50 latency", |z| z.latency.p50, Some(title)),
        (&bottom, "p99 latency", |z| z.latency.p99, None),
    ];
    for (area, y_desc, pick, caption) in panels {
        let max_ms = zoned
            .iter()
            .flat_map(|(_, s)| by_zone(s))
            .map(|z| (pick(&z) as f64 / 1e3).max(z.floor_ms))
            .fold(0.001, f64::max);
        let mut builder = ChartBuilder::on(area);
        if let Some(caption) = caption {
            builder.caption(caption, (FAMILY, 18));
        }
        let mut chart = builder
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0.0f64..max_ms * 1.15)
            .map_err(|e| e.to_string())?;
        let zone_name = |x: &f64| {
            let whole = style::whole(x);
            whole
                .parse::<usize>()
                .ok()
                .and_then(|i| names.get(i).cloned())
                .unwrap_or_default()
        };
        let format_y = style::axis_numbers(true);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("proposer zone")
            .y_desc(y_desc)
            .x_labels(n)
            .x_label_formatter(&zone_name)
            .y_label_formatter(&format_y)
            .label_style((FAMILY, 12))
            .draw()
            .map_err(|e| e.to_string())?;
        // Each zone's floor, from the first zoned scenario (the same for every scenario of
        // one geography).
        if let Some((_, first)) = zoned.first() {
            let floors = by_zone(first).into_iter().enumerate().map(|(i, z)| {
                let x = i as f64;
                PathElement::new(
                    vec![(x - 0.3, z.floor_ms), (x + 0.3, z.floor_ms)],
                    RGBColor(127, 127, 127).stroke_width(3),
                )
            });
            chart.draw_series(floors).map_err(|e| e.to_string())?;
        }
        for (i, s) in &zoned {
            let points: Vec<(f64, f64)> = by_zone(s)
                .iter()
                .enumerate()
                .filter(|(_, z)| z.proposers > 0 && z.latency.count > 0)
                .map(|(x, z)| (x as f64, pick(z) as f64 / 1e3))
                .collect();
            style::line(&mut chart, *i, points, style::scenario_series(s).1, 4)?;
        }
    }
    let mut entries: Vec<Entry> = zoned
        .iter()
        .map(|(i, s)| {
            let (label, unsafe_) = style::scenario_series(s);
            Entry {
                label: format!("{i}: {label}"),
                color: color(*i),
                mark: if unsafe_ { Mark::Dashed } else { Mark::Line },
            }
        })
        .collect();
    entries.push(Entry {
        label: "floor: 2 round trips to the nearest majority".into(),
        color: RGBColor(127, 127, 127),
        mark: Mark::Box,
    });
    legend_column(&side, Some("scenario"), &entries)?;
    root.present().map_err(|e| e.to_string())
}
