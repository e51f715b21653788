//! A whole run: every scenario of a config on its target, one after another, each measured and
//! written into the results folder as it ends.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::{BenchConfig, TargetKind};
use crate::driver::{RunOutput, real, sim};
use crate::error::Error;
use crate::measure::Second;
use crate::report::summary::{SCHEMA_VERSION, ScenarioSummary, Summary};
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
    let report = ReportDir::create(&dir)?;
    match run_into(config, options, interrupt, &report, started) {
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

fn run_into(
    config: &BenchConfig,
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
    let mut summaries = Vec::new();
    let mut outputs: Vec<RunOutput> = Vec::new();
    let mut interrupted = false;
    let count = config.scenarios.len();
    for scenario in &config.scenarios {
        if interrupt.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        let bar = scenario_bar(options.progress, scenario.index, count, &scenario.label);
        let stem = format!("scenario-{:02}", scenario.index);
        let evidence = report.path().join(format!("{stem}.evidence"));
        let output = match scenario.target.kind {
            TargetKind::Sim => sim::run(scenario, &evidence, interrupt, &bar)?,
            TargetKind::Spawn | TargetKind::Attach => {
                real::run(scenario, &options.node_exe, &evidence, interrupt, &bar)?
            }
        };
        bar.finish_and_clear();
        let summary = ScenarioSummary::new(scenario, &output);
        report.write(
            &format!("{stem}.hgrm"),
            report::hgrm(&output.ops.latency).as_bytes(),
        )?;
        report.write(
            &format!("{stem}.histograms"),
            report::histograms_file(&[
                ("op", &output.ops.latency),
                ("service", &output.ops.service),
                ("start_lag", &output.ops.lag),
                ("phase1", &output.protocol.phase1),
                ("phase2", &output.protocol.phase2),
            ])?
            .as_bytes(),
        )?;
        let seconds: Vec<_> = output.ops.seconds.iter().map(Second::latency).collect();
        report.write(
            &format!("{stem}.hlog"),
            &report::hlog(&seconds, &format!("scenario-{}", scenario.index), started)?,
        )?;
        interrupted |= output.interrupted;
        summaries.push(summary);
        outputs.push(output);
        if interrupted {
            break;
        }
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
    let pairs: Vec<_> = summary
        .scenarios
        .iter()
        .cloned()
        .zip(outputs.iter())
        .collect();
    report.write("timeseries.csv", report::timeseries(&pairs).as_bytes())?;
    report.write("resources.csv", report::resources(&pairs).as_bytes())?;
    report.write("summary.md", report::markdown(&summary).as_bytes())?;
    report.write(
        "summary.json",
        (serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n").as_bytes(),
    )?;
    if options.charts {
        crate::report::chart::render(report.path())?;
    }
    Ok((summary, interrupted))
}
