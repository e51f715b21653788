//! What every chart shares: number formats that suit the range (`200k`, `0.5 ms`, `99.9%`),
//! 1-2-5 ticks on log axes and whole-number ticks on count axes, a legend beside the plot
//! rather than over the data, and the mark of an unsafe scenario.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{DrawResult, FAMILY, color};
use crate::report::summary::ScenarioSummary;

/// `1.2M`, `200k`, `950`, `12.5`, `0.25`: a count or rate in as few characters as it needs.
pub fn si(value: f64) -> String {
    let magnitude = value.abs();
    let trim = |text: String| {
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        }
    };
    if magnitude >= 1e6 {
        trim(format!("{:.1}", value / 1e6)) + "M"
    } else if magnitude >= 1e3 {
        trim(format!("{:.1}", value / 1e3)) + "k"
    } else if magnitude >= 10.0 || magnitude == 0.0 {
        format!("{value:.0}")
    } else {
        // Two significant digits: 2.5, 0.25, 0.005.
        let digits = (1 - magnitude.log10().floor() as i32).max(0) as usize;
        trim(format!("{value:.digits$}"))
    }
}

/// Milliseconds with their unit: `0.05 ms`, `2 ms`, `1.5 s`.
pub fn milliseconds(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", si(ms / 1000.0))
    } else {
        format!("{} ms", si(ms))
    }
}

/// How an axis writes its numbers: milliseconds with their unit for a latency, `si` otherwise.
pub fn axis_numbers(latency: bool) -> impl Fn(&f64) -> String {
    move |value| {
        if latency {
            milliseconds(*value)
        } else {
            si(*value)
        }
    }
}

/// A chart of two panels over one another, cleared, with the legend column beside them:
/// (top, bottom, legend).
pub type TwoPanels<DB> = (
    DrawingArea<DB, Shift>,
    DrawingArea<DB, Shift>,
    DrawingArea<DB, Shift>,
);

/// Clears `root` and splits it into [`TwoPanels`].
pub fn two_panels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
) -> Result<TwoPanels<DB>, String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (plot, side) = with_legend_column(root);
    let (_, height) = plot.dim_in_pixel();
    let (top, bottom) = plot.split_vertically(height / 2);
    Ok((top, bottom, side))
}

/// Clears `root`, titles the plot area with `title` across two panels side by side, and
/// returns the left panel, the right one, and the legend column.
pub fn titled_side_by_side<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<TwoPanels<DB>, String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (plot, side) = with_legend_column(root);
    let plot = plot
        .titled(title, (FAMILY, 18))
        .map_err(|e| e.to_string())?;
    let (width, _) = plot.dim_in_pixel();
    let (left, right) = plot.split_horizontally(width / 2);
    Ok((left, right, side))
}

/// A log axis over the proposer counts a sweep ran, ticked only at them.
pub fn proposer_axis(
    counts: impl Iterator<Item = f64>,
) -> plotters::coord::combinators::WithKeyPoints<plotters::coord::combinators::LogCoord<f64>> {
    let mut counts: Vec<f64> = counts.collect();
    counts.sort_by(f64::total_cmp);
    counts.dedup();
    let max = counts.last().copied().unwrap_or(1.0);
    let min = counts.first().copied().unwrap_or(1.0).max(1.0);
    (min * 0.8..max.max(min) * 1.25)
        .log_scale()
        .with_key_points(counts)
}

/// A percentile from its `1/(1−p)`: 2 → `50%`, 10 → `90%`, 1000 → `99.9%`.
pub fn percentile(inverse_tail: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / inverse_tail);
    let digits = (inverse_tail.log10().round() as i32 - 2).max(0) as usize;
    format!("{p:.digits$}%")
}

/// 1-2-5 ticks per decade covering `low..high` (both positive).
pub fn ticks_125(low: f64, high: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(low.log10().floor());
    while decade <= high {
        for step in [1.0, 2.0, 5.0] {
            let tick = decade * step;
            if tick >= low && tick <= high {
                ticks.push(tick);
            }
        }
        decade *= 10.0;
    }
    ticks
}

/// A tick of a whole-number axis: its number, or nothing between whole numbers. Asked for at
/// most as many labels as there are whole numbers in its range, plotters puts ticks on whole
/// numbers only; this keeps any other off the axis text.
pub fn whole(value: &f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        format!("{value:.0}")
    } else {
        String::new()
    }
}

/// How a scenario is drawn: its label, with its violation count when agreement broke, and
/// whether it is unsafe (then it is drawn dashed).
pub fn scenario_series(s: &ScenarioSummary) -> (String, bool) {
    if s.safety.violations > 0 {
        // The mark first, so that cutting a long label to fit never cuts it off.
        (
            format!("UNSAFE: {} violations · {}", s.safety.violations, s.label),
            true,
        )
    } else {
        (s.label.clone(), false)
    }
}

/// A line in palette colour `i`, solid, or dashed when `unsafe_`.
pub fn line<DB: DrawingBackend, CT: plotters::coord::CoordTranslate<From = (f64, f64)>>(
    chart: &mut ChartContext<'_, DB, CT>,
    i: usize,
    points: Vec<(f64, f64)>,
    unsafe_: bool,
    point_size: u32,
) -> DrawResult {
    let c = color(i);
    if unsafe_ {
        chart
            .draw_series(DashedLineSeries::new(
                points.iter().copied(),
                6,
                4,
                c.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|p| Cross::new(*p, point_size.max(3), c.stroke_width(2))),
            )
            .map_err(|e| e.to_string())?;
    } else {
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(2)).point_size(point_size))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// One entry of a legend beside the plot.
pub struct Entry {
    /// What it names.
    pub label: String,
    /// Its colour.
    pub color: RGBColor,
    /// Dashed (unsafe), or a filled box (bars), or a solid line.
    pub mark: Mark,
}

/// How a legend entry is marked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A solid line.
    Line,
    /// A dashed line: an unsafe scenario.
    Dashed,
    /// A filled box.
    Box,
    /// A hollow circle.
    Circle,
}

/// Splits `root` into the plot (left) and the legend column (right).
pub fn with_legend_column<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
) -> (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>) {
    let (width, _) = root.dim_in_pixel();
    root.split_horizontally(width * 72 / 100)
}

/// Draws `entries` down the legend column, each label cut to fit.
pub fn legend_column<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: Option<&str>,
    entries: &[Entry],
) -> DrawResult {
    let (width, height) = area.dim_in_pixel();
    let max_chars = (width.saturating_sub(40) / 7) as usize;
    let row = 18i32;
    let mut y = 50i32;
    let font = (FAMILY, 13).into_font();
    if let Some(title) = title {
        area.draw(&Text::new(title.to_string(), (8, y - 18), font.clone()))
            .map_err(|e| e.to_string())?;
    }
    for (k, entry) in entries.iter().enumerate() {
        if y + 2 * row > height as i32 && k + 1 < entries.len() {
            let more = format!("… and {} more", entries.len() - k);
            area.draw(&Text::new(more, (8, y - 7), font.clone()))
                .map_err(|e| e.to_string())?;
            break;
        }
        let c = entry.color;
        match entry.mark {
            Mark::Line => area
                .draw(&PathElement::new(vec![(8, y), (30, y)], c.stroke_width(2)))
                .map_err(|e| e.to_string())?,
            Mark::Dashed => {
                for x in [8, 18] {
                    area.draw(&PathElement::new(
                        vec![(x, y), (x + 6, y)],
                        c.stroke_width(2),
                    ))
                    .map_err(|e| e.to_string())?;
                }
            }
            Mark::Box => area
                .draw(&Rectangle::new([(10, y - 6), (26, y + 6)], c.filled()))
                .map_err(|e| e.to_string())?,
            Mark::Circle => area
                .draw(&Circle::new((19, y), 4, c.stroke_width(2)))
                .map_err(|e| e.to_string())?,
        }
        for (line, text) in wrap(&entry.label, max_chars).into_iter().enumerate() {
            let top = y - 7 + row * line as i32;
            area.draw(&Text::new(text, (36, top), font.clone()))
                .map_err(|e| e.to_string())?;
        }
        y += row * wrap(&entry.label, max_chars).len() as i32;
    }
    Ok(())
}

/// A legend label on at most two lines of `width` characters: broken after ` · `, a comma or a
/// space where it can be, the second line cut with `…` if it is still too long.
fn wrap(label: &str, width: usize) -> Vec<String> {
    let cut = |text: &str| {
        if text.chars().count() > width {
            text.chars()
                .take(width.saturating_sub(1))
                .collect::<String>()
                + "…"
        } else {
            text.to_string()
        }
    };
    if label.chars().count() <= width {
        return vec![label.to_string()];
    }
    let head: String = label.chars().take(width).collect();
    let split = head
        .rfind(" · ")
        .map(|i| (i, i + " · ".len()))
        .or_else(|| head.rfind(',').map(|i| (i + 1, i + 1)))
        .or_else(|| head.rfind(' ').map(|i| (i, i + 1)))
        .filter(|(end, _)| *end > 0)
        .unwrap_or((head.len(), head.len()));
    vec![label[..split.0].to_string(), cut(&label[split.1..])]
}

/// The legend entries of a chart with one line per scenario.
pub fn scenario_entries(scenarios: &[ScenarioSummary]) -> Vec<Entry> {
    scenarios
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (label, unsafe_) = scenario_series(s);
            Entry {
                label,
                color: color(i),
                mark: if unsafe_ { Mark::Dashed } else { Mark::Line },
            }
        })
        .collect()
}

/// One line of a comparison chart: what it stands for, its points sorted by x, and the
/// violations its scenarios saw (an unsafe line is drawn dashed and named so).
pub struct Series<P> {
    /// Its legend label.
    pub name: String,
    /// Its points, by x.
    pub points: Vec<P>,
    /// Violations over its scenarios.
    pub violations: u64,
}

impl<P> Series<P> {
    /// Its legend entry in palette colour `i`.
    pub fn entry(&self, i: usize) -> Entry {
        if self.violations > 0 {
            Entry {
                label: format!("UNSAFE: {} violations · {}", self.violations, self.name),
                color: color(i),
                mark: Mark::Dashed,
            }
        } else {
            Entry {
                label: self.name.clone(),
                color: color(i),
                mark: Mark::Line,
            }
        }
    }
}

/// The scenarios grouped into lines by `name`, in order of first appearance, each point made
/// by `point` and the points sorted by `x`.
pub fn series<P>(
    scenarios: &[ScenarioSummary],
    name: impl Fn(&ScenarioSummary) -> String,
    point: impl Fn(&ScenarioSummary) -> P,
    x: impl Fn(&P) -> f64,
) -> Vec<Series<P>> {
    let mut lines: Vec<Series<P>> = Vec::new();
    for s in scenarios {
        let name = name(s);
        let index = match lines.iter().position(|l| l.name == name) {
            Some(index) => index,
            None => {
                lines.push(Series {
                    name,
                    points: Vec::new(),
                    violations: 0,
                });
                lines.len() - 1
            }
        };
        lines[index].points.push(point(s));
        lines[index].violations += s.safety.violations;
    }
    for line in &mut lines {
        line.points.sort_by(|a, b| x(a).total_cmp(&x(b)));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_for_their_range() {
        assert_eq!(si(200_000.0), "200k");
        assert_eq!(si(1_250_000.0), "1.2M");
        assert_eq!(si(1_500.0), "1.5k");
        assert_eq!(si(950.0), "950");
        assert_eq!(si(0.5), "0.5");
        assert_eq!(si(0.0), "0");
        assert_eq!(si(0.005), "0.005");
        assert_eq!(si(0.002), "0.002");
        assert_eq!(si(2.0), "2");
        assert_eq!(si(0.25), "0.25");
        assert_eq!(milliseconds(0.5), "0.5 ms");
        assert_eq!(milliseconds(20.0), "20 ms");
        assert_eq!(milliseconds(1500.0), "1.5 s");
        assert_eq!(percentile(2.0), "50%");
        assert_eq!(percentile(10.0), "90%");
        assert_eq!(percentile(100.0), "99%");
        assert_eq!(percentile(1000.0), "99.9%");
        assert_eq!(percentile(100_000.0), "99.999%");
    }

    #[test]
    fn log_axes_get_one_two_five_and_counts_get_whole_numbers() {
        assert_eq!(ticks_125(0.3, 71.0), [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0]);
        assert_eq!(ticks_125(1.0, 1.0), [1.0]);
        assert_eq!(whole(&3.0), "3");
        assert_eq!(wrap("short", 10), ["short"]);
        assert_eq!(
            wrap("UNSAFE: 3 violations · id_scheme=naive-timestamp", 24),
            ["UNSAFE: 3 violations", "id_scheme=naive-timesta…"]
        );
        assert_eq!(wrap("a=1,b=2222", 6), ["a=1,", "b=2222"]);
        assert_eq!(wrap("a=1,b=22222", 6), ["a=1,", "b=222…"]);
        assert_eq!(wrap("cpus=x: generator", 12), ["cpus=x:", "generator"]);
        assert_eq!(whole(&2.5), "");
    }
}
