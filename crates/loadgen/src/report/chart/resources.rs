//! The resources chart: each process's resident memory and CPU over the measured window, from
//! `resources.csv`, so that a soak run shows at a glance whether anything grows.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{Entry, Mark, legend_column, line};
use super::{ChartData, DrawResult, color, column_max, time_panel};

/// One process of one scenario: its name and (second, RSS MiB, CPU % of a core) per second.
pub type ResourceLine = (String, super::SecondRows);

/// Reads `resources.csv` if the run wrote one: a line per scenario and process, named `process`
/// (or `label: process` when there are several scenarios), from the first repetition. Partial
/// seconds are left out, as in the over-time chart.
pub fn load(dir: &Path, scenarios: usize) -> Vec<ResourceLine> {
    let Ok(csv) = std::fs::read_to_string(dir.join("resources.csv")) else {
        return Vec::new();
    };
    let mut lines: BTreeMap<(usize, String), ResourceLine> = BTreeMap::new();
    for line in csv.lines().skip(1) {
        // scenario,"label",repetition,second,partial,process,rss_mib,cpu_pct,…
        let Some((head, rest)) = line.split_once(",\"") else {
            continue;
        };
        let Some((label, rest)) = rest.split_once("\",") else {
            continue;
        };
        let fields: Vec<&str> = rest.split(',').collect();
        let (Ok(index), [repetition, second, partial, process, rss, cpu, ..]) =
            (head.parse::<usize>(), fields.as_slice())
        else {
            continue;
        };
        if *repetition != "1" || *partial != "0" {
            continue;
        }
        let (Ok(second), Ok(rss), Ok(cpu)) = (second.parse::<f64>(), rss.parse(), cpu.parse())
        else {
            continue;
        };
        let name = if scenarios > 1 {
            format!("{label}: {process}")
        } else {
            (*process).to_string()
        };
        lines
            .entry((index, (*process).to_string()))
            .or_insert_with(|| (name, Vec::new()))
            .1
            .push((second, rss, cpu));
    }
    lines.into_values().collect()
}

/// RSS above, CPU below, one line per process.
pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    title: &str,
) -> DrawResult {
    let (top, bottom, side) = super::style::two_panels(root)?;
    let max_t = column_max(&data.resources, 0, 1.0) + 1.0;
    for (area, pick, y_desc, caption) in [
        (&top, 1usize, "resident memory (MiB)", Some(title)),
        (&bottom, 2usize, "CPU (% of one core)", None),
    ] {
        let max_y = column_max(&data.resources, pick, 1.0) * 1.15;
        let mut chart = time_panel(area, caption, max_t, max_y, y_desc, false)?;
        for (i, (_, rows)) in data.resources.iter().enumerate() {
            let points = rows
                .iter()
                .map(|r| (r.0 + 0.5, if pick == 1 { r.1 } else { r.2 }));
            line(&mut chart, i, points.collect(), false, 0)?;
        }
    }
    let entries: Vec<Entry> = data
        .resources
        .iter()
        .enumerate()
        .map(|(i, (name, _))| Entry {
            label: name.clone(),
            color: color(i),
            mark: Mark::Line,
        })
        .collect();
    let repeated = data
        .summary
        .scenarios
        .iter()
        .any(|s| s.repetitions.is_some());
    legend_column(&side, repeated.then_some("first repetition"), &entries)?;
    root.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_line_per_scenario_and_process() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("resources.csv"),
            "scenario,label,repetition,second,partial,process,rss_mib,cpu_pct,write_mib_per_s,fsyncs_per_s,steal_pct\n\
             0,\"a, b\",1,0,0,generator,100.0,50.0,0.00,0,0.00\n\
             0,\"a, b\",1,0,0,node 1,40.0,20.0,1.50,900,0.00\n\
             0,\"a, b\",1,1,0,generator,101.0,52.0,0.00,0,0.00\n\
             0,\"a, b\",2,1,0,generator,300.0,52.0,0.00,0,0.00\n\
             0,\"a, b\",1,2,1,generator,250.0,52.0,0.00,0,0.00\n",
        )
        .unwrap();
        let lines = load(dir.path(), 1);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].0, "generator");
        assert_eq!(lines[0].1, [(0.0, 100.0, 50.0), (1.0, 101.0, 52.0)]);
        assert!(load(&dir.path().join("missing"), 1).is_empty());
    }
}
