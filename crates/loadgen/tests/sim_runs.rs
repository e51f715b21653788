//! Runs on the simulator target through the library: complete reports whose counts add up,
//! determinism, the naive-timestamp finding, races and the open loop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::atomic::AtomicBool;

use paxbench_loadgen::config::BenchConfig;
use paxbench_loadgen::report::summary::ScenarioSummary;
use paxbench_loadgen::run::{RunOptions, RunResult, run};

fn run_yaml(yaml: &str, dir: &Path) -> RunResult {
    let config = BenchConfig::parse(Path::new("test.yaml"), yaml.to_string()).unwrap();
    let options = RunOptions {
        results_dir: dir.into(),
        out: None,
        node_exe: env!("CARGO_BIN_EXE_paxbench").into(),
        progress: false,
        charts: true,
    };
    run(&config, &options, &AtomicBool::new(false)).unwrap()
}

fn assert_counts_add_up(s: &ScenarioSummary) {
    let o = &s.outcomes;
    assert_eq!(
        o.started,
        o.won + o.lost_race + o.gave_up + o.timed_out + o.unfinished,
        "{}: {o:?}",
        s.label
    );
    let rounds: u64 = s.contention.rounds.iter().map(|(_, n)| n).sum();
    assert_eq!(
        rounds,
        o.won + o.lost_race + o.gave_up + o.timed_out,
        "{}",
        s.label
    );
    assert_eq!(
        s.latency_us.op.count,
        o.won + o.lost_race + o.gave_up + o.timed_out
    );
}

const CONTENDED: &str = "name: sim-test\nseed: 5\ntarget:\n  kind: sim\n  sim:\n    latency: {kind: normal, mean_us: 100, spread_us: 30}\n    drop: 0.01\nworkload:\n  proposers: 12\n  keys: 4\n  warmup_s: 0.1\n  duration_s: 0.5\nproposer:\n  id_scheme: [counter, timestamp]\n";

#[test]
fn a_sim_run_writes_a_complete_report_whose_counts_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let result = run_yaml(CONTENDED, dir.path());
    assert!(!result.summary.interrupted);
    assert_eq!(result.summary.scenarios.len(), 2);
    for s in &result.summary.scenarios {
        assert_counts_add_up(s);
        assert!(s.outcomes.won > 100, "{:?}", s.outcomes);
        assert!(
            s.outcomes.lost_race > 0,
            "4 keys and 12 proposers must race: {:?}",
            s.outcomes
        );
        assert!(s.contention.preemptions_per_op > 0.0);
        assert_eq!(s.safety.violations, 0);
        assert!(
            s.messages.per_decision > 6.0,
            "two phases to three acceptors at least"
        );
    }
    let name = result
        .dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert!(name.ends_with("-sim-test"), "{name}");
    for file in [
        "config.yaml",
        "environment.json",
        "summary.json",
        "summary.md",
        "timeseries.csv",
        "scenario-00.hgrm",
        "scenario-00.hlog",
        "scenario-00.histograms",
        "scenario-01.hgrm",
        "scenario-01.hlog",
    ] {
        assert!(result.dir.join(file).is_file(), "{file} missing");
    }
    let csv = std::fs::read_to_string(result.dir.join("timeseries.csv")).unwrap();
    let decided: u64 = csv
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("0,"))
        .map(|l| l.split(',').nth(4).unwrap().parse::<u64>().unwrap())
        .sum();
    let s0 = &result.summary.scenarios[0];
    assert_eq!(decided, s0.outcomes.won);
    let md = std::fs::read_to_string(result.dir.join("summary.md")).unwrap();
    assert!(md.contains("## Comparison") && md.contains("id_scheme=timestamp"));

    // Charts: valid SVG (parsed as XML) and PNG (decoded), and a page that holds them all.
    let html = std::fs::read_to_string(result.dir.join("report.html")).unwrap();
    for chart in ["latency-spectrum", "over-time", "outcomes", "rounds"] {
        let svg = std::fs::read_to_string(result.dir.join(format!("charts/{chart}.svg"))).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{chart}.svg: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        assert!(
            svg.contains("id_scheme=timestamp"),
            "{chart}.svg names its scenarios"
        );
        let png = std::fs::File::open(result.dir.join(format!("charts/{chart}.png"))).unwrap();
        let mut reader = png::Decoder::new(std::io::BufReader::new(png))
            .read_info()
            .unwrap();
        let mut pixels = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((frame.width, frame.height), (960, 540));
        assert!(pixels.iter().any(|b| *b < 128), "{chart}.png has ink");
        assert!(
            html.contains(&format!("id=\"chart-{chart}\"")),
            "report.html holds {chart}"
        );
    }
    for table in ["summary-table", "latency-table"] {
        assert!(
            html.contains(&format!("id=\"{table}\"")),
            "report.html holds {table}"
        );
    }
    // Self-contained: no scripts, and nothing fetched (the SVG namespace URI is a name only).
    for fetch in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(fetch), "report.html contains {fetch}");
    }
}

#[test]
fn the_same_seed_gives_the_same_summary() {
    let dir = tempfile::tempdir().unwrap();
    let strip = |result: &RunResult| -> Vec<serde_json::Value> {
        result
            .summary
            .scenarios
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap();
                // Wall time and resources measure the machine, not the simulated history.
                v["wall_s"] = serde_json::Value::Null;
                v["resources"] = serde_json::Value::Null;
                v
            })
            .collect()
    };
    let first = run_yaml(CONTENDED, &dir.path().join("a"));
    let second = run_yaml(CONTENDED, &dir.path().join("b"));
    assert_eq!(strip(&first), strip(&second));
    let other_seed = run_yaml(
        &CONTENDED.replace("seed: 5", "seed: 6"),
        &dir.path().join("c"),
    );
    assert_ne!(strip(&first), strip(&other_seed));
}

#[test]
fn naive_timestamps_break_agreement_and_the_report_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "name: naive\ntarget:\n  kind: sim\nworkload:\n  proposers: 16\n  keys: 4\n  warmup_s: 0\n  duration_s: 0.3\nproposer:\n  id_scheme: [naive-timestamp, timestamp]\n  clock_resolution_ns: 1000000\nexpect_violations: [naive-timestamp]\n";
    let result = run_yaml(yaml, dir.path());
    let naive = &result.summary.scenarios[0];
    assert!(naive.safety.expected);
    assert!(naive.ids.collisions > 0, "{:?}", naive.ids);
    assert!(
        naive
            .safety
            .by_kind
            .iter()
            .any(|(k, n)| k == "agreement" && *n > 0),
        "{:?}",
        naive.safety
    );
    let slotted = &result.summary.scenarios[1];
    assert_eq!(slotted.safety.violations, 0);
    assert_eq!(slotted.ids.collisions, 0);
    assert_eq!(result.unexpected_violations(), 0);
    let md = std::fs::read_to_string(result.dir.join("summary.md")).unwrap();
    assert!(
        md.contains("agreement") && md.contains("expected: this is the finding"),
        "{md}"
    );
}

#[test]
fn races_have_one_winner_each() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "name: race\ntarget:\n  kind: sim\n  reject_mode: nack\nworkload:\n  mode: race\n  proposers: 8\n  contenders: 2\n  warmup_s: 0\n  ops: 400\nproposer:\n  max_attempts: 1000\n";
    let result = run_yaml(yaml, dir.path());
    let s = &result.summary.scenarios[0];
    assert_counts_add_up(s);
    assert_eq!(s.outcomes.gave_up, 0);
    assert_eq!(
        s.outcomes.won, s.outcomes.lost_race,
        "every 2-way race has one winner and one loser: {:?}",
        s.outcomes
    );
    assert!(
        s.contention.preemptions_per_op > 0.1,
        "proposers that start together collide: {:?}",
        s.contention
    );
}

#[test]
fn the_open_loop_keeps_its_rate_and_reports_lag() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "name: open\ntarget:\n  kind: sim\nworkload:\n  mode: open\n  rate: [5000, 1000000]\n  proposers: 8\n  keys: 1000\n  warmup_s: 0.1\n  duration_s: 0.5\n";
    let result = run_yaml(yaml, dir.path());
    let easy = &result.summary.scenarios[0];
    let achieved = easy.throughput.achieved_rate.unwrap();
    assert!((4_500.0..5_500.0).contains(&achieved), "{achieved}");
    assert!(!easy.throughput.fell_behind, "{:?}", easy.throughput);
    let overload = &result.summary.scenarios[1];
    assert!(overload.throughput.fell_behind, "{:?}", overload.throughput);
    assert!(
        overload.latency_us.op.p99 > 10 * overload.latency_us.service.p99,
        "queueing shows in latency, not in service time: {:?} vs {:?}",
        overload.latency_us.op,
        overload.latency_us.service
    );
}

#[test]
fn the_committed_schema_matches_the_summary_types() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/summary.schema.json"))
        .expect("docs/summary.schema.json exists (regenerate with `paxbench schema > docs/summary.schema.json`)");
    assert_eq!(
        committed,
        paxbench_loadgen::report::summary::schema_json(),
        "regenerate with `cargo run --bin paxbench -- schema > docs/summary.schema.json`"
    );
}

#[test]
fn a_failed_run_never_leaves_a_folder_that_looks_complete() {
    let dir = tempfile::tempdir().unwrap();
    let config = BenchConfig::parse(
        Path::new("fail.yaml"),
        "name: fail\ntarget:\n  kind: spawn\n".into(),
    )
    .unwrap();
    let options = RunOptions {
        results_dir: dir.path().into(),
        out: None,
        node_exe: "/nonexistent/paxbench".into(),
        progress: false,
        charts: true,
    };
    let err = run(&config, &options, &AtomicBool::new(false))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("starting node 1") && err.contains(".partial"),
        "{err}"
    );
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let partial = &entries[0];
    assert!(
        partial.to_string_lossy().ends_with("-fail.partial"),
        "{}",
        partial.display()
    );
    assert!(
        std::fs::read_to_string(partial.join("FAILED"))
            .unwrap()
            .contains("starting node 1")
    );
    assert!(!partial.join("summary.json").exists());
}

#[test]
fn skewed_keys_report_contention_by_key_rank() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "name: zipf\ntarget:\n  kind: sim\nworkload:\n  proposers: 16\n  keys: 1000\n  distribution: {zipfian: {theta: 1.1}}\n  warmup_s: 0\n  duration_s: 0.3\n";
    let result = run_yaml(yaml, dir.path());
    let ranks = &result.summary.scenarios[0].contention.by_key_rank;
    assert!(ranks.len() > 10, "{ranks:?}");
    let (rank, ops, preemptions) = ranks[0];
    assert_eq!(rank, 1);
    assert!(
        ranks.iter().all(|(_, o, _)| *o <= ops),
        "the hottest key gets the most operations"
    );
    let hot = preemptions as f64 / ops as f64;
    let (_, cold_ops, cold_preemptions) = ranks[ranks.len() - 1];
    assert!(
        hot > cold_preemptions as f64 / cold_ops as f64,
        "the hottest key is the most contended"
    );
    let svg = std::fs::read_to_string(result.dir.join("charts/key-ranks.svg")).unwrap();
    roxmltree::Document::parse(&svg).unwrap();
    assert!(
        std::fs::read_to_string(result.dir.join("report.html"))
            .unwrap()
            .contains("id=\"chart-key-ranks\"")
    );
}

/// The fault campaign's configs on the simulator: every fault maps (partitions and the majority
/// ring to cut links, clock jumps to clock steps, disk faults to crashes), nothing is violated,
/// and every heal and restart is followed by new decisions.
#[test]
fn the_fault_campaign_runs_on_the_simulator_too() {
    let dir = tempfile::tempdir().unwrap();
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench-configs");
    let mut ran = 0;
    for entry in std::fs::read_dir(configs).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("faults-"))
        {
            continue;
        }
        let config = BenchConfig::load(&path)
            .unwrap()
            .with_target(paxbench_loadgen::config::TargetKind::Sim)
            .unwrap()
            .with_time_scale(0.2)
            .unwrap();
        let options = RunOptions {
            results_dir: dir.path().into(),
            out: None,
            node_exe: env!("CARGO_BIN_EXE_paxbench").into(),
            progress: false,
            charts: false,
        };
        let result = run(&config, &options, &AtomicBool::new(false)).unwrap();
        for s in &result.summary.scenarios {
            let name = format!("{} {}", path.display(), s.label);
            assert_eq!(s.safety.violations, 0, "{name}: {:?}", s.safety.examples);
            assert!(s.outcomes.won > 0, "{name}");
            assert!(!s.faults.is_empty(), "{name}");
            for recovery in &s.reliability.recoveries {
                assert!(recovery.first_decision_ms.is_some(), "{name}: {recovery:?}");
            }
        }
        ran += 1;
    }
    assert!(ran >= 7);
}
