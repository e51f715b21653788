//! The `paxbench` command line: parse, hand off to the library, print for people or for
//! machines.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::{Parser, Subcommand};
use paxbench_node::cli::NodeCommand;

use crate::config::{BenchConfig, TargetKind};
use crate::report::summary::{ScenarioSummary, Summary};
use crate::run::{RunOptions, run};

/// Exit code when a scenario saw safety violations it did not expect.
pub const EXIT_VIOLATIONS: u8 = 3;
/// Exit code when `compare` flags a regression.
pub const EXIT_REGRESSION: u8 = 4;
/// Exit code after Ctrl-C (what was measured is written, marked as interrupted).
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Parser, Debug)]
#[command(
    name = "paxbench",
    version,
    about = "Benchmark and load-test single-decree Paxos: lost races, duelling proposers, retries and ID collisions",
    after_help = "Examples:\n  \
        paxbench run bench-configs/quickstart.yaml          # local 3-node QUIC cluster, ~20 s\n  \
        paxbench run bench-configs/id-schemes.yaml --target sim\n  \
        paxbench run bench-configs/open-loop.yaml --json > summary.json\n  \
        paxbench validate bench-configs/*.yaml\n  \
        paxbench chart results/2026-11-26T12-00-00Z-quickstart   # charts + report.html again\n  \
        paxbench compare results/A results/B --threshold 0.05\n  \
        paxbench merge results/gen0 results/gen1 --out results/merged\n  \
        paxbench run bench-configs/faults-crash-3.yaml --time-scale 0.5   # a short fault run, audited\n  \
        paxbench reliability results/campaign-*/*/                          # the Reliability table\n\n\
        Exit codes: 0 ok, 1 error, 3 unexpected safety violations or a failed store audit, 4 regression (compare), 130 interrupted."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a bench config and write a results folder.
    Run(RunArgs),
    /// Draw the charts (SVG and PNG) and report.html of a results folder.
    Chart {
        /// A results folder.
        dir: PathBuf,
    },
    /// Put the matching scenarios of several runs side by side (the first is the baseline).
    Compare {
        /// Results folders.
        #[arg(required = true, num_args = 2..)]
        dirs: Vec<PathBuf>,
        /// Flag a regression when decisions/s falls, or p99 rises, by more than this fraction.
        #[arg(long, default_value_t = 0.10)]
        threshold: f64,
        /// Also write compare.md and overlaid charts here.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Merge runs of several generators that drove one cluster into one report.
    Merge {
        /// Results folders (attach runs of the same config and cluster).
        #[arg(required = true, num_args = 2..)]
        dirs: Vec<PathBuf>,
        /// The merged results folder.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// The Reliability table of fault-campaign runs: faults injected, decisions, violations,
    /// acknowledged records and chosen values lost, slowest recovery. Exits 3 if anything was
    /// violated or lost.
    Reliability {
        /// Results folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The fuzzing record (`scripts/fuzz.sh` appends to it).
        #[arg(long, value_name = "FILE", default_value = "fuzz/stats.tsv")]
        fuzz_stats: PathBuf,
    },
    /// Audit stopped nodes' durable stores: replay every log through the safety checker and
    /// check that no two values were chosen; with `--results`, also against what an attach run
    /// saw (every chosen value held by a majority, every acknowledgement backed), recorded in
    /// its summary. Spawned durable runs are audited automatically. Exits 3 on a problem.
    Audit {
        /// The nodes' data directories, as `ID=DIR` (`1=/var/lib/paxbench/n1`).
        #[arg(required = true, value_parser = parse_store)]
        stores: Vec<(u32, PathBuf)>,
        /// Nodes in the cluster, if some stores are not listed.
        #[arg(long)]
        nodes: Option<usize>,
        /// ACCEPTEDs that choose a value (the cluster's `target.quorum.phase2`); unset: a
        /// majority of the nodes.
        #[arg(long, value_name = "N")]
        phase2_quorum: Option<usize>,
        /// The results folder of an attach run against these nodes.
        #[arg(long, value_name = "DIR")]
        results: Option<PathBuf>,
        /// Its scenario.
        #[arg(long, default_value_t = 0)]
        scenario: usize,
    },
    /// Check configs without running them.
    Validate {
        /// Bench configs.
        #[arg(required = true)]
        configs: Vec<PathBuf>,
    },
    /// Print the JSON Schema of summary.json.
    Schema,
    /// Run a node (what spawned clusters run; the same as `paxbench-node`).
    #[command(subcommand, hide = true)]
    Node(NodeCommand),
}

/// The binary's entry point.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", paxbench_node::error_report(&e));
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Node(command) => {
            paxbench_node::cli::run_command(command)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Chart { dir } => {
            for file in crate::report::html::render(&dir)? {
                println!("{}", file.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Compare {
            dirs,
            threshold,
            out,
        } => {
            let comparisons = crate::analysis::compare::compare(&dirs, threshold)?;
            print!(
                "{}",
                crate::analysis::compare::markdown(&comparisons, threshold)
            );
            if let Some(out) = out {
                crate::analysis::compare::write(&dirs, &comparisons, threshold, &out)?;
                println!("written to {}", out.display());
            }
            let regressions = comparisons
                .iter()
                .flat_map(|c| &c.rows)
                .filter(|r| r.regression)
                .count();
            if regressions > 0 {
                eprintln!("{regressions} regression(s) past {:.0}%", threshold * 100.0);
                return Ok(ExitCode::from(EXIT_REGRESSION));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Merge { dirs, out } => {
            let merged = crate::analysis::merge::merge(&dirs, &out)?;
            print!("{}", table(&merged));
            for scenario in &merged.scenarios {
                if let Some(line) = scenario.shared.as_ref().map(|s| s.merge_line()) {
                    println!("{}: {line}", scenario.label);
                }
            }
            println!("merged: {}", out.display());
            let unexpected: u64 = merged
                .scenarios
                .iter()
                .map(ScenarioSummary::unexpected_violations)
                .sum();
            if unexpected > 0 {
                eprintln!("SAFETY VIOLATION: {unexpected} across the merged generators");
                return Ok(ExitCode::from(EXIT_VIOLATIONS));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Reliability { dirs, fuzz_stats } => {
            let rows = crate::analysis::reliability::rows(&dirs)?;
            let fuzz = if fuzz_stats.exists() {
                crate::analysis::reliability::read_fuzz_stats(&fuzz_stats)?
            } else {
                Vec::new()
            };
            print!("{}", crate::analysis::reliability::markdown(&rows, &fuzz));
            if rows.iter().any(crate::analysis::reliability::Row::failed) {
                eprintln!("RELIABILITY FAILURE: a scenario saw violations or lost records");
                return Ok(ExitCode::from(EXIT_VIOLATIONS));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            stores,
            nodes,
            phase2_quorum,
            results,
            scenario,
        } => audit_command(&stores, nodes, phase2_quorum, results, scenario),
        Command::Schema => {
            print!("{}", crate::report::summary::schema_json());
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { configs } => {
            for path in configs {
                let config = BenchConfig::load(&path)?;
                println!(
                    "{}: ok, {} scenario(s)",
                    path.display(),
                    config.scenarios.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => run_command(args),
    }
}

/// `paxbench run`'s arguments.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The bench config (YAML).
    pub config: PathBuf,
    /// Run on this target instead of the config's.
    #[arg(long, value_enum)]
    pub target: Option<TargetKind>,
    /// Where results folders go.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
    /// Write into exactly this folder instead.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the summary as JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(long)]
    pub no_progress: bool,
    /// Skip the charts and report.html (`paxbench chart DIR` draws them later).
    #[arg(long)]
    pub no_charts: bool,
    /// Multiply every time in the config (warmup, duration, fault times) by this: 0.5 runs
    /// the short version of a fault campaign.
    #[arg(long, value_name = "FACTOR")]
    pub time_scale: Option<f64>,
    /// Run every scenario N times, each on a fresh cluster, interleaved; the summary gives
    /// medians and 95% intervals (overrides `measure.repeat`).
    #[arg(long, value_name = "N")]
    pub repeat: Option<u32>,
    /// Start the first scenario's warmup at this UTC instant (RFC 3339, e.g.
    /// 2026-11-30T07:00:00Z), like every generator given the same one (overrides
    /// `measure.start_at`; attach only).
    #[arg(long, value_name = "UTC")]
    pub start_at: Option<String>,
    /// Run as client N of the cluster (overrides `target.attach.client`; `{client}` in the
    /// certificate and key paths becomes N): one config serves every generator.
    #[arg(long, value_name = "N")]
    pub client: Option<u32>,
}

/// `paxbench audit`: audits stopped nodes' stores, alone or against an attach run's
/// evidence, and exits 3 if anything was lost or violated.
fn audit_command(
    stores: &[(u32, PathBuf)],
    nodes: Option<usize>,
    phase2_quorum: Option<usize>,
    results: Option<PathBuf>,
    scenario: usize,
) -> anyhow::Result<ExitCode> {
    let dirs: Vec<_> = stores
        .iter()
        .map(|(id, dir)| (paxbench_core::NodeId(*id), dir.clone()))
        .collect();
    let nodes = nodes.unwrap_or(dirs.len());
    let phase2 = phase2_quorum.unwrap_or(paxbench_core::quorum(nodes));
    if phase2 == 0 || phase2 > nodes {
        anyhow::bail!(
            "--phase2-quorum {phase2} does not fit a cluster of {nodes} nodes (1..={nodes})"
        );
    }
    if let Some(results) = results {
        let audit = crate::analysis::reliability::audit_attach_run(
            &results,
            scenario,
            &dirs,
            (nodes, phase2),
        )?;
        println!(
            "{} stores, {} records: {} chosen values lost of {}, {} acknowledged states lost of {}, {} replay violations; recorded in {}",
            audit.stores,
            audit.records,
            audit.chosen_lost,
            audit.chosen_checked,
            audit.acks_lost,
            audit.acks_checked,
            audit.violations,
            results.join("summary.json").display()
        );
        for problem in &audit.problems {
            println!("  {problem}");
        }
        if audit.problems() > 0 {
            return Ok(ExitCode::from(EXIT_VIOLATIONS));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let scratch = tempfile::tempdir().map_err(|source| crate::Error::Io {
        context: "creating a scratch directory for the audit's sort".into(),
        source,
    })?;
    let report = paxbench_node::audit_stores(&dirs, nodes, phase2, None, scratch.path())?;
    println!(
        "{} stores, {} records, {} instances, {} chosen by a majority of stores, {} replay violations",
        report.stores, report.records, report.instances, report.chosen_in_stores, report.violations
    );
    for problem in &report.problems {
        println!("  {problem}");
    }
    if !report.is_clean() {
        return Ok(ExitCode::from(EXIT_VIOLATIONS));
    }
    Ok(ExitCode::SUCCESS)
}

/// `paxbench run`: runs a config, prints the table (or JSON) and what deserves a warning,
/// and exits with the run's verdict.
fn run_command(args: RunArgs) -> anyhow::Result<ExitCode> {
    let RunArgs {
        config,
        target,
        results,
        out,
        json,
        no_progress,
        no_charts,
        time_scale,
        repeat,
        start_at,
        client,
    } = args;
    init_logging();
    let mut config = BenchConfig::load(&config)?;
    if let Some(kind) = target {
        config = config.with_target(kind)?;
    }
    if let Some(factor) = time_scale {
        config = config.with_time_scale(factor)?;
    }
    if let Some(repeat) = repeat {
        config = config.with_repeat(repeat)?;
    }
    if let Some(client) = client {
        config = config.with_client(client)?;
    }
    if let Some(stamp) = start_at {
        config = config.with_start_at(&stamp)?;
    }
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            // A second Ctrl-C: the user wants out now.
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        eprintln!("\ninterrupted: finishing the measurement and writing what was measured");
    })
    .context("installing the Ctrl-C handler")?;
    let options = RunOptions {
        results_dir: results,
        out,
        node_exe: std::env::current_exe().context("locating the paxbench binary")?,
        progress: !no_progress && !json,
        charts: !no_charts,
    };
    let result = run(&config, &options, &interrupt)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&result.summary)?);
    } else {
        print!("{}", table(&result.summary));
        println!("results: {}", result.dir.display());
    }
    for scenario in &result.summary.scenarios {
        let noise = &scenario.resources;
        if noise.is_noisy() {
            eprintln!(
                "noisy machine: in scenario {}, {:.0}% of the CPU time was stolen and \
                 {:.0}% went to other processes; its figures are partly a measurement of \
                 them",
                scenario.label, noise.steal_pct, noise.foreign_cpu_pct
            );
        }
        if scenario.safety.violations > 0 {
            let verdict = if scenario.safety.expected {
                "expected: this is the scenario's finding"
            } else {
                "SAFETY VIOLATION"
            };
            eprintln!(
                "{verdict}: scenario {} saw {} violation(s): {}",
                scenario.label,
                scenario.safety.violations,
                scenario
                    .safety
                    .by_kind
                    .iter()
                    .map(|(k, n)| format!("{n} {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for example in scenario.safety.examples.iter().take(3) {
                eprintln!("  {example}");
            }
        }
        if let Some(audit) = &scenario.reliability.audit {
            if audit.problems() == 0 {
                eprintln!(
                    "store audit: scenario {}: nothing lost ({} chosen values and {} acknowledged states checked)",
                    scenario.label, audit.chosen_checked, audit.acks_checked
                );
            } else {
                eprintln!(
                    "STORE AUDIT FAILED: scenario {}: {} chosen values lost, {} acknowledged states lost, {} replay violations",
                    scenario.label, audit.chosen_lost, audit.acks_lost, audit.violations
                );
                for problem in audit.problems.iter().take(3) {
                    eprintln!("  {problem}");
                }
            }
        }
    }
    if result.unexpected_violations() > 0 {
        return Ok(ExitCode::from(EXIT_VIOLATIONS));
    }
    if result.summary.interrupted {
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_store(text: &str) -> Result<(u32, PathBuf), String> {
    let (id, dir) = text
        .split_once('=')
        .ok_or_else(|| format!("expected ID=DIR, got {text:?}"))?;
    let id = id.parse().map_err(|_| format!("{id:?} is not a node id"))?;
    Ok((id, PathBuf::from(dir)))
}

/// The summary as a fixed-width table for a terminal.
pub fn table(summary: &Summary) -> String {
    let interrupted = if summary.interrupted {
        " (INTERRUPTED)"
    } else {
        ""
    };
    format!(
        "{}{interrupted}\n{}",
        summary.name,
        crate::report::table::terminal(&summary.scenarios)
    )
}
