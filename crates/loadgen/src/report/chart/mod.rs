//! Charts of a results folder, drawn with plotters: always SVG, and PNG rendered with ab_glyph
//! and the DejaVu Sans font committed in `assets/` (never a system font). Each chart says in its
//! title what it compares, and every axis names its unit.

mod resources;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::CoordTranslate;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::error::Error;
use crate::report::summary::{ScenarioSummary, Summary};

/// The font every chart uses, committed with its licence (`assets/DejaVuSans-LICENSE.txt`).
const FONT: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (960, 540);

fn register_font() -> Result<(), Error> {
    static REGISTER: Once = Once::new();
    let mut result = Ok(());
    REGISTER.call_once(|| {
        if plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            result = Err(Error::Scenario(
                "the committed chart font did not load".into(),
            ));
        }
    });
    result
}

/// A chart that was written: its name and its SVG text (for the HTML page).
#[derive(Clone, Debug)]
pub struct Chart {
    /// File stem, e.g. `latency-spectrum`.
    pub name: String,
    /// Its title.
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

/// One line of a chart over time: (second after the warmup, and two values for it: decisions
/// per second and p99 in ms, or RSS in MiB and CPU in %).
pub type SecondRows = Vec<(f64, f64, f64)>;

/// What the charts are drawn from: `summary.json`, the `.hgrm` spectra and `timeseries.csv`.
#[derive(Clone, Debug)]
pub struct ChartData {
    /// The summary.
    pub summary: Summary,
    /// Per scenario: (label, points of (1/(1−p), latency in ms)).
    pub spectra: Vec<(String, Vec<(f64, f64)>)>,
    /// Per scenario: (label, rows of (second, decisions/s, p99 in ms)).
    pub timeseries: Vec<(String, SecondRows)>,
    /// Per scenario and process: memory and CPU over time (`resources.csv`; real targets).
    pub resources: Vec<resources::ResourceLine>,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { context, source }
}

/// Reads what the charts need from a results folder.
pub fn load(dir: &Path) -> Result<ChartData, Error> {
    let summary = Summary::load(dir)?;
    let scenarios = &summary.scenarios;
    let mut spectra = Vec::new();
    for scenario in scenarios {
        let index = scenario.index;
        let label = scenario.label.clone();
        let path = dir.join(format!("scenario-{index:02}.hgrm"));
        let hgrm = fs::read_to_string(&path).map_err(io(format!("reading {}", path.display())))?;
        let points = hgrm
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let value: f64 = fields.next()?.parse().ok()?;
                let percentile: f64 = fields.next()?.parse().ok()?;
                (percentile < 1.0).then(|| (1.0 / (1.0 - percentile), value))
            })
            .collect();
        spectra.push((label, points));
    }
    let csv_path = dir.join("timeseries.csv");
    let csv =
        fs::read_to_string(&csv_path).map_err(io(format!("reading {}", csv_path.display())))?;
    let mut timeseries: Vec<(String, SecondRows)> = scenarios
        .iter()
        .map(|s| (s.label.clone(), Vec::new()))
        .collect();
    for line in csv.lines().skip(1) {
        // scenario,"label",second,ops_per_s,decisions_per_s,p50_us,p99_us,retries,preemptions
        let (head, rest) = match line.split_once(",\"") {
            Some(split) => split,
            None => continue,
        };
        let Some((_, numbers)) = rest.split_once("\",") else {
            continue;
        };
        let fields: Vec<f64> = numbers.split(',').filter_map(|f| f.parse().ok()).collect();
        if let (Ok(index), [second, _ops, decisions, _p50, p99, ..]) =
            (head.parse::<usize>(), fields.as_slice())
            && let Some((_, rows)) = timeseries.get_mut(index)
        {
            rows.push((*second, *decisions, *p99 / 1e3));
        }
    }
    // The last second of a scenario is usually partial; drawn, it would look like a collapse.
    for ((_, rows), scenario) in timeseries.iter_mut().zip(scenarios) {
        let measured = scenario.measured_s;
        rows.retain(|(second, _, _)| second + 1.0 <= measured + 1e-6);
    }
    let measured: Vec<f64> = summary.scenarios.iter().map(|s| s.measured_s).collect();
    let resources = resources::load(dir, &measured);
    Ok(ChartData {
        summary,
        spectra,
        timeseries,
        resources,
    })
}

type DrawResult = Result<(), String>;

fn color(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    PALETTE[i % PALETTE.len()]
}

fn scenarios(data: &ChartData) -> &[ScenarioSummary] {
    &data.summary.scenarios
}

/// Draws one line in palette colour `i`, labelled for the legend.
fn labelled_line<DB: DrawingBackend, CT: CoordTranslate<From = (f64, f64)>>(
    chart: &mut ChartContext<'_, DB, CT>,
    i: usize,
    label: &str,
    points: impl IntoIterator<Item = (f64, f64)>,
    point_size: u32,
) -> DrawResult {
    let c = color(i);
    chart
        .draw_series(LineSeries::new(points, c.stroke_width(2)).point_size(point_size))
        .map_err(|e| e.to_string())?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    Ok(())
}

/// The legend box every chart uses.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult {
    chart
        .configure_series_labels()
        .label_font((FAMILY, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(position)
        .draw()
        .map_err(|e| e.to_string())
}

fn draw_spectrum<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    title: &str,
) -> DrawResult {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let max_x = data
        .spectra
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(x, _)| *x))
        .fold(10.0f64, f64::max);
    let (min_y, max_y) = data
        .spectra
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold((f64::MAX, 0.001f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let min_y = if min_y == f64::MAX {
        0.001
    } else {
        (min_y * 0.8).max(0.001)
    };
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FAMILY, 22))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (1.0f64..max_x * 1.2).log_scale(),
            (min_y..max_y * 1.3).log_scale(),
        )
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("percentile, as 1/(1−p): 10 = p90, 100 = p99, 1000 = p99.9")
        .y_desc("operation latency (ms)")
        .label_style((FAMILY, 14))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (label, points)) in data.spectra.iter().enumerate() {
        labelled_line(&mut chart, i, label.as_str(), points.iter().copied(), 0)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present().map_err(|e| e.to_string())
}

/// The largest value of column `column` (0, 1 or 2) over every line's rows, and at least
/// `floor`.
fn column_max(lines: &[(String, SecondRows)], column: usize, floor: f64) -> f64 {
    lines
        .iter()
        .flat_map(|(_, rows)| rows.iter())
        .map(|r| match column {
            0 => r.0,
            1 => r.1,
            _ => r.2,
        })
        .fold(floor, f64::max)
}

/// A panel of seconds against a value.
type TimeChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One panel of a chart over the measured window: seconds after the warmup against `y_desc`,
/// from zero to `max_y`, with `caption` above it.
fn time_panel<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, Shift>,
    caption: Option<&str>,
    max_t: f64,
    max_y: f64,
    y_desc: &str,
) -> Result<TimeChart<'a, DB>, String> {
    let mut builder = ChartBuilder::on(area);
    if let Some(caption) = caption {
        builder.caption(caption, (FAMILY, 20));
    }
    let mut chart = builder
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0f64..max_t, 0.0f64..max_y)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds after the warmup")
        .y_desc(y_desc)
        .label_style((FAMILY, 13))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(chart)
}

fn draw_over_time<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    title: &str,
) -> DrawResult {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(SIZE.1 / 2);
    let max_t = column_max(&data.timeseries, 0, 1.0) + 1.0;
    let max_rate = column_max(&data.timeseries, 1, 1.0);
    let max_p99 = column_max(&data.timeseries, 2, 0.01);
    let faults: Vec<(f64, String)> = scenarios(data)
        .first()
        .map(|s| s.faults.clone())
        .unwrap_or_default();
    for (area, max_y, y_desc, pick, caption) in [
        (
            &top,
            max_rate * 1.15,
            "decisions per second",
            1usize,
            Some(title),
        ),
        (&bottom, max_p99 * 1.15, "p99 latency (ms)", 2usize, None),
    ] {
        let mut chart = time_panel(area, caption, max_t, max_y, y_desc)?;
        for (i, (label, rows)) in data.timeseries.iter().enumerate() {
            let c = color(i);
            let points = rows
                .iter()
                .map(|r| (r.0 + 0.5, if pick == 1 { r.1 } else { r.2 }));
            let series = chart
                .draw_series(LineSeries::new(points, c.stroke_width(2)))
                .map_err(|e| e.to_string())?;
            if pick == 1 {
                series.label(label.as_str()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            }
        }
        for (at, what) in &faults {
            if *at >= 0.0 {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(*at, 0.0), (*at, max_y)],
                        RED.stroke_width(1),
                    )))
                    .map_err(|e| e.to_string())?;
                if pick == 1 {
                    chart
                        .draw_series(std::iter::once(Text::new(
                            what.clone(),
                            (*at, max_y * 0.95),
                            (FAMILY, 12).into_font().color(&RED),
                        )))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        if pick == 1 {
            chart
                .configure_series_labels()
                .label_font((FAMILY, 12))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::LowerRight)
                .draw()
                .map_err(|e| e.to_string())?;
        }
    }
    root.present().map_err(|e| e.to_string())
}

fn draw_outcomes<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    title: &str,
) -> DrawResult {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let rows: Vec<(String, [f64; 4])> = scenarios(data)
        .iter()
        .map(|s| {
            let o = &s.outcomes;
            (
                s.label.clone(),
                [o.won, o.lost_race, o.gave_up, o.timed_out].map(|n| n as f64),
            )
        })
        .collect();
    let n = rows.len().max(1);
    let max = rows
        .iter()
        .map(|(_, v)| v.iter().sum::<f64>())
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FAMILY, 20))
        .margin(12)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0f64..n as f64, 0.0f64..max * 1.1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|_| String::new())
        .x_desc("scenario (labelled above each bar)")
        .y_desc("operations")
        .label_style((FAMILY, 12))
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(rows.iter().enumerate().map(|(i, (label, v))| {
            let total: f64 = v.iter().sum();
            Text::new(
                label.chars().take(40).collect::<String>(),
                (i as f64 + 0.15, total + max * 0.02),
                (FAMILY, 12),
            )
        }))
        .map_err(|e| e.to_string())?;
    let names = ["won", "lost the race", "gave up", "timed out"];
    for (k, name) in names.iter().enumerate() {
        let c = color(k);
        chart
            .draw_series(rows.iter().enumerate().map(|(i, (_, v))| {
                let below: f64 = v[..k].iter().sum();
                Rectangle::new(
                    [(i as f64 + 0.15, below), (i as f64 + 0.85, below + v[k])],
                    c.filled(),
                )
            }))
            .map_err(|e| e.to_string())?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present().map_err(|e| e.to_string())
}

fn draw_rounds<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    title: &str,
) -> DrawResult {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let series: Vec<(String, Vec<(f64, f64)>)> = scenarios(data)
        .iter()
        .map(|s| {
            let rounds = &s.contention.rounds;
            let total = (rounds.iter().map(|(_, ops)| ops).sum::<u64>() as f64).max(1.0);
            let points = rounds
                .iter()
                .map(|&(attempts, ops)| (f64::from(attempts), 100.0 * ops as f64 / total))
                .collect();
            (s.label.clone(), points)
        })
        .collect();
    let max_rounds = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.0))
        .fold(2.0, f64::max);
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FAMILY, 20))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0.5f64..max_rounds + 0.5, (0.001f64..100.0).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("attempts an operation took (rounds)")
        .y_desc("share of operations (%)")
        .label_style((FAMILY, 13))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (label, points)) in series.iter().enumerate() {
        labelled_line(&mut chart, i, label.as_str(), points.iter().copied(), 3)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present().map_err(|e| e.to_string())
}

/// One point of the headline chart: (proposers, retries/op, preemptions/op, p99 ms).
type SchemePoint = (f64, f64, f64, f64);

/// The headline chart's lines, one per ID scheme.
fn by_scheme(data: &ChartData) -> Vec<(String, Vec<SchemePoint>)> {
    let mut lines: Vec<(String, Vec<SchemePoint>)> = Vec::new();
    for s in scenarios(data) {
        let scheme = s.setup.id_scheme.clone();
        let point = (
            f64::from(s.setup.proposers),
            s.retries.retries_per_op,
            s.contention.preemptions_per_op,
            s.latency_us.op.p99 as f64 / 1e3,
        );
        match lines.iter_mut().find(|(name, _)| *name == scheme) {
            Some((_, points)) => points.push(point),
            None => lines.push((scheme, vec![point])),
        }
    }
    for (_, points) in &mut lines {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    lines
}

/// Whether the run compares ID schemes across proposer counts: the headline chart.
fn has_headline(data: &ChartData) -> bool {
    let lines = by_scheme(data);
    lines.len() >= 2 && lines.iter().any(|(_, points)| points.len() >= 2)
}

fn draw_headline<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    title: &str,
) -> DrawResult {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let lines = by_scheme(data);
    let (left, right) = root.split_horizontally(SIZE.0 * 11 / 20);
    let max_x = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .fold(1.0, f64::max);
    let min_x = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .fold(max_x, f64::min)
        .max(1.0);
    let max_per_op = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1.max(q.2)))
        .fold(0.01, f64::max);
    let max_p99 = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.3))
        .fold(0.01, f64::max);
    let x_range = (min_x * 0.8..max_x * 1.25).log_scale();
    let mut chart = ChartBuilder::on(&left)
        .caption(title, (FAMILY, 17))
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range.clone(), 0.0f64..max_per_op * 1.15)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("proposers")
        .y_desc("per operation: retries (solid), preemptions (dashed)")
        .label_style((FAMILY, 12))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (scheme, points)) in lines.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(
                LineSeries::new(points.iter().map(|q| (q.0, q.1)), c.stroke_width(2)).point_size(3),
            )
            .map_err(|e| e.to_string())?
            .label(scheme.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(DashedLineSeries::new(
                points.iter().map(|q| (q.0, q.2)),
                6,
                4,
                c.stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    let mut p99 = ChartBuilder::on(&right)
        .caption("p99 latency by ID scheme", (FAMILY, 17))
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range, 0.0f64..max_p99 * 1.15)
        .map_err(|e| e.to_string())?;
    p99.configure_mesh()
        .x_desc("proposers")
        .y_desc("p99 operation latency (ms)")
        .label_style((FAMILY, 12))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (_, points)) in lines.iter().enumerate() {
        p99.draw_series(
            LineSeries::new(points.iter().map(|q| (q.0, q.3)), color(i).stroke_width(2))
                .point_size(3),
        )
        .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

fn has_key_ranks(data: &ChartData) -> bool {
    scenarios(data)
        .iter()
        .any(|s| s.contention.by_key_rank.len() >= 2)
}

fn draw_key_ranks<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    title: &str,
) -> DrawResult {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let lines: Vec<(String, Vec<(f64, f64)>)> = scenarios(data)
        .iter()
        .map(|s| {
            let points = s
                .contention
                .by_key_rank
                .iter()
                .filter(|(_, ops, _)| *ops > 0)
                .map(|&(rank, ops, preemptions)| (f64::from(rank), preemptions as f64 / ops as f64))
                .collect();
            (s.label.clone(), points)
        })
        .filter(|(_, points): &(String, Vec<(f64, f64)>)| !points.is_empty())
        .collect();
    let max_rank = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .fold(2.0, f64::max);
    let max_y = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .fold(0.01, f64::max);
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FAMILY, 20))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d((1.0f64..max_rank * 1.1).log_scale(), 0.0f64..max_y * 1.15)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("key rank (1 = hottest key)")
        .y_desc("preemptions per operation on that key")
        .label_style((FAMILY, 13))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (label, points)) in lines.iter().enumerate() {
        labelled_line(&mut chart, i, label.as_str(), points.iter().copied(), 2)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present().map_err(|e| e.to_string())
}

/// The charts of a run.
#[derive(Clone, Copy, Debug)]
enum Kind {
    KeyRanks,
    Headline,
    Spectrum,
    OverTime,
    Outcomes,
    Rounds,
    Resources,
}

fn draw<DB: DrawingBackend>(
    kind: Kind,
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    title: &str,
) -> DrawResult {
    match kind {
        Kind::KeyRanks => draw_key_ranks(root, data, title),
        Kind::Headline => draw_headline(root, data, title),
        Kind::Spectrum => draw_spectrum(root, data, title),
        Kind::OverTime => draw_over_time(root, data, title),
        Kind::Outcomes => draw_outcomes(root, data, title),
        Kind::Rounds => draw_rounds(root, data, title),
        Kind::Resources => resources::draw(root, data, title),
    }
}

/// Draws every chart of `data` into `dir/charts/` as SVG and PNG; returns them for the page.
pub fn draw_all(data: &ChartData, dir: &Path) -> Result<Vec<Chart>, Error> {
    register_font()?;
    let out = dir.join("charts");
    fs::create_dir_all(&out).map_err(io(format!("creating {}", out.display())))?;
    let name = data.summary.name.as_str();
    let mut charts = Vec::new();
    if has_headline(data) {
        charts.push((
            Kind::Headline,
            "id-schemes",
            format!("{name}: retries and preemptions per operation by ID scheme"),
        ));
    }
    if has_key_ranks(data) {
        charts.push((
            Kind::KeyRanks,
            "key-ranks",
            format!("{name}: contention by key rank (skewed keys)"),
        ));
    }
    charts.extend([
        (
            Kind::Spectrum,
            "latency-spectrum",
            format!("{name}: operation latency by percentile, per scenario"),
        ),
        (
            Kind::OverTime,
            "over-time",
            format!("{name}: decisions per second and p99 over time (faults in red)"),
        ),
        (
            Kind::Outcomes,
            "outcomes",
            format!("{name}: how operations ended, per scenario"),
        ),
        (
            Kind::Rounds,
            "rounds",
            format!("{name}: attempts per operation, per scenario"),
        ),
    ]);
    if !data.resources.is_empty() {
        charts.push((
            Kind::Resources,
            "resources",
            format!("{name}: memory and CPU of the generator and each node over time"),
        ));
    }
    let mut written = Vec::new();
    for (kind, stem, title) in charts {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
            draw(kind, &root, data, &title)
                .map_err(|e| Error::Scenario(format!("drawing {stem}: {e}")))?;
        }
        let svg_path = out.join(format!("{stem}.svg"));
        fs::write(&svg_path, &svg).map_err(io(format!("writing {}", svg_path.display())))?;
        let png_path: PathBuf = out.join(format!("{stem}.png"));
        {
            let root = BitMapBackend::new(&png_path, SIZE).into_drawing_area();
            draw(kind, &root, data, &title)
                .map_err(|e| Error::Scenario(format!("drawing {stem}.png: {e}")))?;
        }
        written.push(Chart {
            name: stem.into(),
            title,
            svg,
        });
    }
    Ok(written)
}

/// Charts and `report.html` for the results folder `dir`; returns the files written.
pub fn render(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let data = load(dir)?;
    let charts = draw_all(&data, dir)?;
    let page = crate::report::html::page(&data, &charts);
    let page_path = dir.join("report.html");
    fs::write(&page_path, page).map_err(io(format!("writing {}", page_path.display())))?;
    let mut files: Vec<PathBuf> = charts
        .iter()
        .flat_map(|c| {
            ["svg", "png"].map(|ext| dir.join("charts").join(format!("{}.{ext}", c.name)))
        })
        .collect();
    files.push(page_path);
    Ok(files)
}
