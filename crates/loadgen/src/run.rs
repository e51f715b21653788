//! A whole run: every scenario of a config on its target, one after another, each measured and
//! written into the results folder as it ends.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::analysis::merge::{Combine, merge_scenario};
use crate::config::shared::SharedPlan;
use crate::config::{BenchConfig, TargetKind};
use crate::driver::{real, sim};
use crate::error::Error;
use crate::measure::{Second, latency_histogram};
use crate::report::files::{RESOURCES_HEADER, TIMESERIES_HEADER};
use crate::report::summary::{Headline, Repetitions, SCHEMA_VERSION, ScenarioSummary, Summary};
use crate::report::{self, ReportDir};

/// How to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The folder under which `<UTC time>-<name>/` is made.
    pub results_dir: PathBuf,
    /// An exact folder instead.
    pub out: Option<PathBuf>,
    /// The binary that runs `node run …` for spawned clusters (normally `paxbench` itself).
    pub node_exe: PathBuf,
    /// Show progress bars (they are hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// Draw the charts and `report.html` at the end.
    pub charts: bool,
}

/// What a run produced.
#[derive(Debug)]
pub struct RunResult {
    /// The results folder, under its final name.
    pub dir: PathBuf,
    /// The summary written there.
    pub summary: Summary,
}

impl RunResult {
    /// Violations in scenarios that did not declare them expected.
    pub fn unexpected_violations(&self) -> u64 {
        self.summary
            .scenarios
            .iter()
            .map(ScenarioSummary::unexpected_violations)
            .sum()
    }
}

/// A progress bar for one scenario, hidden when stderr is not a terminal.
pub fn scenario_bar(enabled: bool, index: usize, count: usize, label: &str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {prefix} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(format!("scenario {}/{} {label}", index + 1, count));
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Runs every scenario of `config`; writes the results folder; returns it with the summary.
pub fn run(
    config: &BenchConfig,
    options: &RunOptions,
    interrupt: &AtomicBool,
) -> Result<RunResult, Error> {
    let started = SystemTime::now();
    let dir = options.out.clone().unwrap_or_else(|| {
        options.results_dir.join(format!(
            "{}-{}",
            report::utc_stamp(started, true),
            config.file.name
        ))
    });
    // A config that cannot run is refused before any folder is made.
    let plan = SharedPlan::new(config)?;
    let report = ReportDir::create(&dir)?;
    match run_into(config, &plan, options, interrupt, &report, started) {
        Ok((summary, interrupted)) => {
            let dir = report.finish(interrupted)?;
            Ok(RunResult { dir, summary })
        }
        Err(e) => {
            let partial = report.fail(&e.to_string());
            Err(Error::Scenario(format!(
                "{e} (partial results in {})",
                partial.display()
            )))
        }
    }
}

/// The stem of a run's per-run files: `scenario-NN`, or `scenario-NN-rK` (K from 1) when the
/// scenarios are repeated.
fn run_stem(index: usize, repetition: u32, repeat: u32) -> String {
    if repeat > 1 {
        format!("scenario-{index:02}-r{repetition}")
    } else {
        format!("scenario-{index:02}")
    }
}

/// One finished run of a scenario: its summary and its named histograms, kept to pool.
type Finished = (ScenarioSummary, Vec<(String, Histogram<u64>)>);

fn run_into(
    config: &BenchConfig,
    plan: &SharedPlan,
    options: &RunOptions,
    interrupt: &AtomicBool,
    report: &ReportDir,
    started: SystemTime,
) -> Result<(Summary, bool), Error> {
    report.write("config.yaml", config.text.as_bytes())?;
    let environment = report::environment(config.file.seed, &config.path);
    report.write(
        "environment.json",
        serde_json::to_string_pretty(&environment)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    let repeat = config.repeat();
    let count = config.scenarios.len();
    let mut finished: Vec<Vec<Finished>> = vec![Vec::new(); count];
    // Per-second rows go to disk as each run ends: a long run keeps none of them in memory.
    report.write("timeseries.csv", TIMESERIES_HEADER.as_bytes())?;
    report.write("resources.csv", RESOURCES_HEADER.as_bytes())?;
    let mut interrupted = false;
    // Interleaved, A B C A B C …: drift on the machine hits every scenario alike.
    'runs: for repetition in 1..=repeat {
        for base in &config.scenarios {
            if interrupt.load(Ordering::Relaxed) {
                interrupted = true;
                break 'runs;
            }
            let mut scenario = base.repetition(repetition - 1);
            scenario.run = plan.keys((repetition as usize - 1) * count + scenario.index);
            // Before the driver starts its threads, so that they inherit it.
            paxbench_node::affinity::pin_current_thread(&scenario.target.cpus.generator)?;
            let label = if repeat > 1 {
                format!("{} (repetition {repetition}/{repeat})", scenario.label)
            } else {
                scenario.label.clone()
            };
            let bar = scenario_bar(options.progress, scenario.index, count, &label);
            let stem = run_stem(scenario.index, repetition, repeat);
            let evidence = report.path().join(format!("{stem}.evidence"));
            let output = match scenario.target.kind {
                TargetKind::Sim => sim::run(&scenario, &evidence, interrupt, &bar)?,
                TargetKind::Spawn | TargetKind::Attach => {
                    real::run(&scenario, &options.node_exe, &evidence, interrupt, &bar)?
                }
            };
            bar.finish_and_clear();
            let summary = ScenarioSummary::new(&scenario, &output);
            let seconds: Vec<_> = output.ops.seconds.iter().map(Second::latency).collect();
            report.write(
                &format!("{stem}.hlog"),
                &report::hlog(
                    &seconds,
                    &format!("scenario-{}", scenario.index),
                    output.window_start,
                    summary.measured_s,
                )?,
            )?;
            let mut rows = String::new();
            report::timeseries_rows(&mut rows, &summary, repetition, &output);
            report.append("timeseries.csv", rows.as_bytes())?;
            rows.clear();
            report::resources_rows(&mut rows, &summary, repetition, &output);
            report.append("resources.csv", rows.as_bytes())?;
            let histograms = output
                .latency_histograms()
                .pairs()
                .map(|(name, h)| (name.to_string(), h.clone()))
                .into_iter()
                .chain(
                    scenario
                        .target
                        .zones
                        .iter()
                        .flat_map(|zones| &zones.names)
                        .zip(&output.ops.by_zone)
                        .map(|(zone, h)| (report::zones::histogram_name(zone), h.clone())),
                )
                .collect::<Vec<_>>();
            interrupted |= output.interrupted;
            finished[scenario.index].push((summary, histograms));
            if interrupted {
                break 'runs;
            }
        }
    }
    paxbench_node::affinity::pin_current_thread(&[])?;
    let mut summaries = Vec::new();
    for runs in finished.into_iter().filter(|runs| !runs.is_empty()) {
        // Ctrl-C before every repetition ran marks the scenario cut short too.
        let cut_short = (runs.len() as u32) < repeat;
        let (mut summary, sums) = pool(runs, repeat)?;
        summary.interrupted |= cut_short;
        let stem = format!("scenario-{:02}", summary.index);
        let op = sums.get("op").cloned().unwrap_or_else(latency_histogram);
        report.write(&format!("{stem}.hgrm"), report::hgrm(&op).as_bytes())?;
        let named: Vec<(&str, &Histogram<u64>)> =
            sums.iter().map(|(n, h)| (n.as_str(), h)).collect();
        report.write(
            &format!("{stem}.histograms"),
            report::histograms_file(&named)?.as_bytes(),
        )?;
        summaries.push(summary);
    }
    let summary = Summary {
        schema_version: SCHEMA_VERSION,
        name: config.file.name.clone(),
        description: config.file.description.clone(),
        config: config.path.display().to_string(),
        started_utc: report::utc_stamp(started, false),
        interrupted,
        environment,
        scenarios: summaries,
    };
    report.write("summary.md", report::markdown(&summary).as_bytes())?;
    report.write(
        "summary.json",
        (serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n").as_bytes(),
    )?;
    if options.charts {
        crate::report::html::render(report.path())?;
    }
    Ok((summary, interrupted))
}

/// One scenario's runs as its summary and histograms: a single run as it is; repetitions
/// pooled (histograms added, counts summed, rates over the summed time) with their spread.
fn pool(
    mut runs: Vec<Finished>,
    repeat: u32,
) -> Result<(ScenarioSummary, BTreeMap<String, Histogram<u64>>), Error> {
    if repeat == 1 && runs.len() == 1 {
        let (summary, histograms) = runs.remove(0);
        return Ok((summary, histograms.into_iter().collect()));
    }
    let (summaries, histograms): (Vec<ScenarioSummary>, Vec<_>) = runs.into_iter().unzip();
    let parts: Vec<&ScenarioSummary> = summaries.iter().collect();
    let (mut pooled, sums) = merge_scenario(&parts, &histograms, Combine::Sequential)?;
    // The settings as the config wrote them: repetition 1's seed is the config's.
    pooled.settings = summaries[0].settings.clone();
    pooled.repetitions = Some(Repetitions::of(
        summaries.iter().map(Headline::of).collect(),
    ));
    Ok((pooled, sums))
}
