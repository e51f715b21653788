//! Charts of a results folder, drawn with plotters: always SVG, and PNG rendered with ab_glyph
//! and the DejaVu Sans font committed in `assets/` (never a system font). Each chart says in its
//! title what it compares, and every axis names its unit. The per-scenario charts live here;
//! the ID-scheme headline, the protocol comparison, the spread over repetitions, the resources chart and latency by
//! zone have files of their own, and `style` holds what they all share.

mod id_schemes;
mod protocols;
mod resources;
mod spread;
mod style;
mod zones;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::error::Error;
use crate::report::files::SecondRow;
use crate::report::summary::{ScenarioSummary, Summary};
use style::{Entry, Mark, legend_column, with_legend_column};

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

/// Reads what the charts need from a results folder.
pub fn load(dir: &Path) -> Result<ChartData, Error> {
    let summary = Summary::load(dir)?;
    let scenarios = &summary.scenarios;
    let mut spectra = Vec::new();
    for scenario in scenarios {
        let index = scenario.index;
        let label = scenario.label.clone();
        let path = dir.join(format!("scenario-{index:02}.hgrm"));
        let hgrm =
            fs::read_to_string(&path).map_err(Error::io(format!("reading {}", path.display())))?;
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
    let csv = fs::read_to_string(&csv_path)
        .map_err(Error::io(format!("reading {}", csv_path.display())))?;
    let mut timeseries: Vec<(String, SecondRows)> = scenarios
        .iter()
        .map(|s| (s.label.clone(), Vec::new()))
        .collect();
    // A partial second is left out: drawn as a rate, it would look like a collapse. With
    // repetitions, the first one is drawn.
    for row in csv.lines().skip(1).filter_map(SecondRow::parse) {
        if let Some((_, rows)) = timeseries.get_mut(row.scenario)
            && !row.partial
            && row.repetition == 1
        {
            rows.push((
                row.second as f64,
                row.decisions as f64,
                row.p99_us as f64 / 1e3,
            ));
        }
    }
    let resources = resources::load(dir, summary.scenarios.len());
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

fn draw_spectrum<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    title: &str,
) -> DrawResult {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (plot, side) = with_legend_column(root);
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
    let (low_y, high_y) = (min_y, max_y * 1.3);
    let x_ticks: Vec<f64> =
        std::iter::successors(Some(2.0), |x| Some(if *x < 10.0 { 10.0 } else { x * 10.0 }))
            .take_while(|x| *x <= max_x * 1.2)
            .collect();
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, (FAMILY, 20))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(75)
        .build_cartesian_2d(
            (1.0f64..max_x * 1.2).log_scale().with_key_points(x_ticks),
            (low_y..high_y)
                .log_scale()
                .with_key_points(style::ticks_125(low_y, high_y)),
        )
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("operation latency")
        .x_label_formatter(&|x| style::percentile(*x))
        .y_label_formatter(&|y| style::milliseconds(*y))
        .label_style((FAMILY, 14))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, ((_, points), s)) in data.spectra.iter().zip(scenarios(data)).enumerate() {
        let (_, unsafe_) = style::scenario_series(s);
        style::line(&mut chart, i, points.clone(), unsafe_, 0)?;
    }
    legend_column(&side, None, &style::scenario_entries(scenarios(data)))?;
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
/// from zero to `max_y` (in milliseconds when `latency`), with `caption` above it.
fn time_panel<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, Shift>,
    caption: Option<&str>,
    max_t: f64,
    max_y: f64,
    y_desc: &str,
    latency: bool,
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
    let format_y = style::axis_numbers(latency);
    chart
        .configure_mesh()
        .x_desc("seconds after the warmup")
        .y_desc(y_desc)
        .x_label_formatter(&|x| style::si(*x))
        .y_label_formatter(&format_y)
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
    let (top, bottom, side) = style::two_panels(root)?;
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
        (&bottom, max_p99 * 1.15, "p99 latency", 2usize, None),
    ] {
        let mut chart = time_panel(area, caption, max_t, max_y, y_desc, pick == 2)?;
        for (i, ((_, rows), s)) in data.timeseries.iter().zip(scenarios(data)).enumerate() {
            let (_, unsafe_) = style::scenario_series(s);
            let points = rows
                .iter()
                .map(|r| (r.0 + 0.5, if pick == 1 { r.1 } else { r.2 }))
                .collect();
            style::line(&mut chart, i, points, unsafe_, 0)?;
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
    }
    let mut entries = style::scenario_entries(scenarios(data));
    if faults.iter().any(|(at, _)| *at >= 0.0) {
        entries.push(Entry {
            label: "fault".into(),
            color: RED,
            mark: Mark::Line,
        });
    }
    let repeated = scenarios(data).iter().any(|s| s.repetitions.is_some());
    legend_column(&side, repeated.then_some("first repetition"), &entries)?;
    root.present().map_err(|e| e.to_string())
}

fn draw_outcomes<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    title: &str,
) -> DrawResult {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (plot, side) = with_legend_column(root);
    let rows: Vec<[f64; 4]> = scenarios(data)
        .iter()
        .map(|s| {
            let o = &s.outcomes;
            [o.won, o.lost_race, o.gave_up, o.timed_out].map(|n| n as f64)
        })
        .collect();
    let n = rows.len().max(1);
    let max = rows
        .iter()
        .map(|v| v.iter().sum::<f64>())
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, (FAMILY, 20))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0.0f64..max * 1.1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.min(12))
        .x_label_formatter(&style::whole)
        .y_label_formatter(&|y| style::si(*y))
        .x_desc("scenario (numbered in the key)")
        .y_desc("operations")
        .label_style((FAMILY, 13))
        .draw()
        .map_err(|e| e.to_string())?;
    for k in 0..4 {
        let c = color(k);
        chart
            .draw_series(rows.iter().enumerate().map(|(i, v)| {
                let below: f64 = v[..k].iter().sum();
                Rectangle::new(
                    [(i as f64 - 0.35, below), (i as f64 + 0.35, below + v[k])],
                    c.filled(),
                )
            }))
            .map_err(|e| e.to_string())?;
    }
    // An unsafe scenario's bar is outlined in red: its "won" counts several winners of one
    // instance.
    chart
        .draw_series(
            scenarios(data)
                .iter()
                .zip(&rows)
                .enumerate()
                .filter(|(_, (s, _))| s.safety.violations > 0)
                .map(|(i, (_, v))| {
                    Rectangle::new(
                        [
                            (i as f64 - 0.38, 0.0),
                            (i as f64 + 0.38, v.iter().sum::<f64>()),
                        ],
                        RED.stroke_width(3),
                    )
                }),
        )
        .map_err(|e| e.to_string())?;
    let mut entries: Vec<Entry> = ["won", "lost the race", "gave up", "timed out"]
        .iter()
        .enumerate()
        .map(|(k, name)| Entry {
            label: (*name).into(),
            color: color(k),
            mark: Mark::Box,
        })
        .collect();
    entries.extend(scenarios(data).iter().enumerate().map(|(i, s)| Entry {
        label: format!("{i}: {}", style::scenario_series(s).0),
        color: if s.safety.violations > 0 { RED } else { WHITE },
        mark: Mark::Box,
    }));
    legend_column(&side, None, &entries)?;
    root.present().map_err(|e| e.to_string())
}

fn draw_rounds<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    title: &str,
) -> DrawResult {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (plot, side) = with_legend_column(root);
    let series: Vec<Vec<(f64, f64)>> = scenarios(data)
        .iter()
        .map(|s| {
            let rounds = &s.contention.rounds;
            let total = (rounds.iter().map(|(_, ops)| ops).sum::<u64>() as f64).max(1.0);
            rounds
                .iter()
                .map(|&(attempts, ops)| (f64::from(attempts), 100.0 * ops as f64 / total))
                .collect()
        })
        .collect();
    let max_rounds = series
        .iter()
        .flat_map(|p| p.iter().map(|x| x.0))
        .fold(2.0, f64::max);
    // The smallest share sets the bottom, with room for its marker.
    let min_share = series
        .iter()
        .flat_map(|p| p.iter().map(|x| x.1))
        .filter(|y| *y > 0.0)
        .fold(100.0, f64::min);
    let low = 10f64.powf((min_share / 2.0).log10().floor());
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, (FAMILY, 20))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(
            0.5f64..max_rounds + 0.5,
            (low..150.0)
                .log_scale()
                .with_key_points(style::ticks_125(low, 100.0)),
        )
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("attempts an operation took (rounds)")
        .y_desc("share of operations")
        .x_labels((max_rounds as usize).min(15))
        .x_label_formatter(&style::whole)
        .y_label_formatter(&|y| format!("{}%", style::si(*y)))
        .label_style((FAMILY, 13))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (points, s)) in series.iter().zip(scenarios(data)).enumerate() {
        let (_, unsafe_) = style::scenario_series(s);
        style::line(&mut chart, i, points.clone(), unsafe_, 3)?;
    }
    legend_column(&side, None, &style::scenario_entries(scenarios(data)))?;
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
    let (plot, side) = with_legend_column(root);
    let lines: Vec<Vec<(f64, f64)>> = scenarios(data)
        .iter()
        .map(|s| {
            s.contention
                .by_key_rank
                .iter()
                .filter(|(_, ops, _)| *ops > 0)
                .map(|&(rank, ops, preemptions)| (f64::from(rank), preemptions as f64 / ops as f64))
                .collect()
        })
        .collect();
    let max_rank = lines
        .iter()
        .flat_map(|p| p.iter().map(|q| q.0))
        .fold(2.0, f64::max);
    let max_y = lines
        .iter()
        .flat_map(|p| p.iter().map(|q| q.1))
        .fold(0.01, f64::max);
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, (FAMILY, 20))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (1.0f64..max_rank * 1.1)
                .log_scale()
                .with_key_points(style::ticks_125(1.0, max_rank)),
            0.0f64..max_y * 1.15,
        )
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("key rank (1 = hottest key)")
        .y_desc("preemptions per operation on that key")
        .x_label_formatter(&|x| style::si(*x))
        .y_label_formatter(&|y| style::si(*y))
        .label_style((FAMILY, 13))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (points, s)) in lines.iter().zip(scenarios(data)).enumerate() {
        if !points.is_empty() {
            style::line(&mut chart, i, points.clone(), s.safety.violations > 0, 2)?;
        }
    }
    legend_column(&side, None, &style::scenario_entries(scenarios(data)))?;
    root.present().map_err(|e| e.to_string())
}

/// The charts of a run.
#[derive(Clone, Copy, Debug)]
enum Kind {
    KeyRanks,
    Headline,
    Protocols,
    Spectrum,
    OverTime,
    Outcomes,
    Rounds,
    Resources,
    Spread,
    Zones,
}

fn draw<DB: DrawingBackend>(
    kind: Kind,
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    title: &str,
) -> DrawResult {
    match kind {
        Kind::KeyRanks => draw_key_ranks(root, data, title),
        Kind::Headline => id_schemes::draw_headline(root, data, title),
        Kind::Protocols => protocols::draw(root, data, title),
        Kind::Spectrum => draw_spectrum(root, data, title),
        Kind::OverTime => draw_over_time(root, data, title),
        Kind::Outcomes => draw_outcomes(root, data, title),
        Kind::Rounds => draw_rounds(root, data, title),
        Kind::Resources => resources::draw(root, data, title),
        Kind::Spread => spread::draw_spread(root, data, title),
        Kind::Zones => zones::draw(root, data, title),
    }
}

/// Draws every chart of `data` into `dir/charts/` as SVG and PNG; returns them for the page.
pub fn draw_all(data: &ChartData, dir: &Path) -> Result<Vec<Chart>, Error> {
    register_font()?;
    let out = dir.join("charts");
    fs::create_dir_all(&out).map_err(Error::io(format!("creating {}", out.display())))?;
    let name = data.summary.name.as_str();
    let mut charts = Vec::new();
    if id_schemes::has_headline(data) {
        charts.push((
            Kind::Headline,
            "id-schemes",
            format!("{name}: retries and preemptions per operation by ID scheme"),
        ));
    }
    if protocols::has_protocols(data) {
        charts.push((
            Kind::Protocols,
            "protocols",
            format!("{name}: vanilla vs Multi-Paxos, decisions per second and p99 by contention"),
        ));
    }
    if spread::has_spread(data) {
        charts.push((
            Kind::Spread,
            "spread",
            format!("{name}: decisions per second and p99 over the repetitions"),
        ));
    }
    if zones::has_zones(data) {
        charts.push((
            Kind::Zones,
            "zones",
            format!("{name}: latency by proposer zone, beside its floor"),
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
            if scenarios(data)
                .iter()
                .any(|s| s.faults.iter().any(|(at, _)| *at >= 0.0))
            {
                format!("{name}: decisions per second and p99 over time (faults in red)")
            } else {
                format!("{name}: decisions per second and p99 over time")
            },
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
        fs::write(&svg_path, &svg).map_err(Error::io(format!("writing {}", svg_path.display())))?;
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
