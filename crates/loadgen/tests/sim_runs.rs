//! Runs on the simulator target through the library: complete reports whose counts add up,
//! determinism, the naive-timestamp finding, races and the open loop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::atomic::AtomicBool;

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use paxbench_loadgen::config::BenchConfig;
use paxbench_loadgen::report::files::SecondRow;
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
    let rows: Vec<SecondRow> = csv
        .lines()
        .skip(1)
        .filter_map(SecondRow::parse)
        .filter(|r| r.scenario == 0)
        .collect();
    let s0 = &result.summary.scenarios[0];
    assert_eq!(
        rows.iter().map(|r| r.decisions).sum::<u64>(),
        s0.outcomes.won
    );
    // Only the last second, where in-flight operations end after the window, is partial.
    let partial: Vec<u64> = rows
        .iter()
        .filter(|r| r.partial)
        .map(|r| r.second)
        .collect();
    assert_eq!(partial, [rows.len() as u64 - 1], "{csv}");
    // Each scenario's interval log starts at its own measured window, in the reference layout.
    for s in &result.summary.scenarios {
        let log = std::fs::read(result.dir.join(format!("scenario-{:02}.hlog", s.index))).unwrap();
        let text = String::from_utf8_lossy(&log);
        assert!(
            text.contains("#[Histogram log format version 1.3]\n"),
            "{text}"
        );
        assert!(text.contains("\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n"));
        let mut start = None;
        let mut lengths = Vec::new();
        for entry in IntervalLogIterator::new(&log) {
            match entry.unwrap() {
                LogEntry::StartTime(t) => start = Some(t.as_secs_f64()),
                LogEntry::Interval(i) => lengths.push(i.duration().as_secs_f64()),
                LogEntry::BaseTime(_) => {}
            }
        }
        assert!((start.unwrap() - s.window_start_unix_s).abs() < 0.001);
        let (last, whole) = lengths.split_last().unwrap();
        assert!(
            whole.iter().all(|l| *l == 1.0) && *last < 1.0,
            "{lengths:?}"
        );
    }
    let windows: Vec<f64> = result
        .summary
        .scenarios
        .iter()
        .map(|s| s.window_start_unix_s)
        .collect();
    assert!(
        windows[1] > windows[0],
        "scenario 1's log starts after scenario 0's: {windows:?}"
    );
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
    // Self-contained: no scripts, and nothing fetched (the SVG namespace URI is a name only);
    // links go only to the raw files beside it, every one of which it links.
    for fetch in ["<script", "src=", "@import", "url("] {
        assert!(!html.contains(fetch), "report.html contains {fetch}");
    }
    let links: Vec<&str> = html
        .split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    for link in &links {
        assert!(
            result.dir.join(link).is_file(),
            "report.html links {link}, not a file beside it"
        );
    }
    for entry in std::fs::read_dir(&result.dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if name != "report.html" && name != "charts" {
            assert!(
                links.contains(&name.as_str()),
                "report.html does not link {name}"
            );
        }
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
                // Wall time, the window's clock time and resources measure the machine, not the simulated history.
                v["wall_s"] = serde_json::Value::Null;
                v["window_start_unix_s"] = serde_json::Value::Null;
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
    let yaml = "name: naive\ntarget:\n  kind: sim\nworkload:\n  proposers: [4, 16]\n  keys: 4\n  warmup_s: 0\n  duration_s: 0.3\nproposer:\n  id_scheme: [naive-timestamp, timestamp, counter]\n  clock_resolution_ns: 1000000\nexpect_violations: [naive-timestamp]\n";
    let result = run_yaml(yaml, dir.path());
    let find = |scheme: &str| {
        result
            .summary
            .scenarios
            .iter()
            .find(|s| s.setup.id_scheme == scheme && s.setup.proposers == 16)
            .unwrap()
    };
    let naive = find("naive-timestamp");
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
    let slotted = find("timestamp");
    assert_eq!(slotted.safety.violations, 0);
    assert_eq!(slotted.ids.collisions, 0);
    assert_eq!(result.unexpected_violations(), 0);
    let md = std::fs::read_to_string(result.dir.join("summary.md")).unwrap();
    assert!(
        md.contains("agreement") && md.contains("expected: this is the finding"),
        "{md}"
    );
    // Its "decisions" count several winners of one instance: never shown as throughput, never
    // ranked, and marked in every chart.
    let violations = naive.safety.violations;
    assert!(
        md.contains(&format!("unsafe ({violations} violations)")),
        "{md}"
    );
    assert!(md.contains("not throughput"), "{md}");
    let findings = paxbench_loadgen::report::html::findings(&result.summary);
    for ranking in findings
        .iter()
        .filter(|f| f.starts_with("Fewest") || f.starts_with("Most"))
    {
        assert!(!ranking.contains("naive"), "{ranking}");
    }
    assert!(
        findings
            .iter()
            .filter(|f| f.starts_with("Most decisions"))
            .count()
            == 1,
        "{findings:?}"
    );
    let all_naive: u64 = result
        .summary
        .scenarios
        .iter()
        .filter(|s| s.setup.id_scheme == "naive-timestamp")
        .map(|s| s.safety.violations)
        .sum();
    for (chart, count) in [
        ("latency-spectrum", violations),
        ("over-time", violations),
        ("outcomes", violations),
        ("rounds", violations),
        ("id-schemes", all_naive),
    ] {
        let svg = std::fs::read_to_string(result.dir.join(format!("charts/{chart}.svg"))).unwrap();
        assert!(
            svg.contains(&format!("UNSAFE: {count} violations")),
            "{chart}.svg marks the unsafe scenario"
        );
    }
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
fn the_summary_schema_refuses_what_it_does_not_define() {
    let schema: serde_json::Value =
        serde_json::from_str(&paxbench_loadgen::report::summary::schema_json()).unwrap();
    let mut objects = 0;
    let mut stack = vec![("#".to_string(), &schema)];
    while let Some((path, node)) = stack.pop() {
        if node.get("properties").is_some() {
            objects += 1;
            let closed = |key: &str| node.get(key) == Some(&serde_json::Value::Bool(false));
            assert!(
                closed("additionalProperties") || closed("unevaluatedProperties"),
                "{path} accepts unknown fields"
            );
        }
        // A flattened enum's variants are closed by their parent's `unevaluatedProperties`.
        let flattened = node.get("unevaluatedProperties").is_some();
        match node {
            serde_json::Value::Object(map) => stack.extend(
                map.iter()
                    .filter(|(k, _)| !(flattened && k.as_str() == "oneOf"))
                    .map(|(k, v)| (format!("{path}/{k}"), v)),
            ),
            serde_json::Value::Array(items) => {
                stack.extend(items.iter().map(|v| (format!("{path}[]"), v)))
            }
            _ => {}
        }
    }
    assert!(objects > 20, "{objects} object schemas");
    let scenario = &schema["$defs"]["ScenarioSummary"]["properties"];
    assert_eq!(
        scenario["settings"]["$ref"], "#/$defs/Scenario",
        "settings is typed"
    );
    assert_eq!(scenario["target"]["$ref"], "#/$defs/TargetKind");
    assert_eq!(schema["properties"]["started_utc"]["format"], "date-time");
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

#[test]
fn repetitions_are_interleaved_pooled_and_summarised_with_their_spread() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = CONTENDED.replace("proposer:\n", "measure:\n  repeat: 3\nproposer:\n");
    let result = run_yaml(&yaml, dir.path());
    assert_eq!(result.summary.scenarios.len(), 2);
    let csv = std::fs::read_to_string(result.dir.join("timeseries.csv")).unwrap();
    let rows: Vec<SecondRow> = csv.lines().skip(1).filter_map(SecondRow::parse).collect();
    // Interleaved: scenario 0 and 1 of repetition 1 before either of repetition 2.
    let order: Vec<(u32, usize)> =
        rows.iter()
            .map(|r| (r.repetition, r.scenario))
            .fold(Vec::new(), |mut order, key| {
                if order.last() != Some(&key) {
                    order.push(key);
                }
                order
            });
    assert_eq!(order, [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)]);
    for s in &result.summary.scenarios {
        assert_counts_add_up(s);
        let r = s.repetitions.as_ref().expect("repetitions summarised");
        assert_eq!(r.runs.len(), 3);
        // Each repetition has a seed of its own, so the simulator's runs differ.
        assert_eq!(r.runs[0].seed, 5);
        assert!(r.runs[1].seed != r.runs[0].seed && r.runs[2].seed != r.runs[1].seed);
        let rates: Vec<f64> = r.runs.iter().map(|h| h.decisions_per_s).collect();
        assert!(rates[0] != rates[1], "{rates:?}");
        let spread = &r.decisions_per_s;
        assert!(spread.min <= spread.median && spread.median <= spread.max);
        assert_eq!((spread.ci_low, spread.ci_high), (spread.min, spread.max));
        assert_eq!(spread.confidence, 0.75);
        // Pooled: every repetition's decisions in the one summary and histogram.
        let won: u64 = rows
            .iter()
            .filter(|row| row.scenario == s.index)
            .map(|row| row.decisions)
            .sum();
        assert_eq!(won, s.outcomes.won);
        for k in 1..=3 {
            let log = result
                .dir
                .join(format!("scenario-{:02}-r{k}.hlog", s.index));
            assert!(log.is_file(), "{}", log.display());
        }
    }
    let md = std::fs::read_to_string(result.dir.join("summary.md")).unwrap();
    assert!(
        md.contains("repetitions: decisions/s, median [75% interval]"),
        "{md}"
    );
    assert!(md.contains(" ± "), "tables show median ± half-width");
    assert!(result.dir.join("charts/spread.svg").is_file());
}

#[test]
fn flexible_quorums_that_miss_each_other_break_agreement_and_are_refused_unless_expected() {
    let sweep = "target:\n  kind: sim\n  nodes: 3\n  quorum:\n    - {phase1: 1, phase2: 2}\n    - {phase1: 2}\n    - {phase1: 3, phase2: 1}\nworkload:\n  proposers: 16\n  keys: 1\n  warmup_s: 0\n  duration_s: 0.3\n";
    let refused = BenchConfig::parse(Path::new("fq.yaml"), format!("name: fq\n{sweep}"));
    let message = refused.err().unwrap().to_string();
    assert!(
        message.contains("target.quorum") && message.contains("Q1 + Q2 > N"),
        "{message}"
    );

    let dir = tempfile::tempdir().unwrap();
    let result = run_yaml(
        &format!("name: fq\n{sweep}expect_violations: true\n"),
        dir.path(),
    );
    let agreement = |phase1: usize| {
        let s = result
            .summary
            .scenarios
            .iter()
            .find(|s| s.settings.target.quorum.phase1 == Some(phase1))
            .unwrap();
        assert_counts_add_up(s);
        s.safety
            .by_kind
            .iter()
            .find(|(k, _)| k == "agreement")
            .map_or(0, |(_, n)| *n)
    };
    assert!(agreement(1) > 0, "1 + 2 = 3 nodes must break agreement");
    assert_eq!(agreement(2), 0, "2 + majority > 3");
    assert_eq!(agreement(3), 0, "3 + 1 > 3");
}

#[test]
fn a_protocol_sweep_over_proposer_counts_draws_the_vanilla_vs_multi_paxos_chart() {
    let yaml = "name: protocols\nseed: 5\ntarget:\n  kind: sim\n  protocol: [vanilla, multi-paxos]\nworkload:\n  proposers: [1, 8]\n  keys: [1, 100]\n  warmup_s: 0\n  duration_s: 0.1\n";
    let dir = tempfile::tempdir().unwrap();
    let result = run_yaml(yaml, dir.path());
    assert_eq!(result.summary.scenarios.len(), 8);
    let svg = std::fs::read_to_string(result.dir.join("charts/protocols.svg")).unwrap();
    for line in [
        "vanilla, 1 key",
        "vanilla, 100 keys",
        "Multi-Paxos, 1 key",
        "Multi-Paxos, 100 keys",
        "decisions per second",
        "p99 latency",
    ] {
        assert!(svg.contains(line), "{line} missing");
    }
    assert!(result.dir.join("charts/protocols.png").is_file());
    // One protocol alone draws no comparison.
    let one = yaml.replace("[vanilla, multi-paxos]", "vanilla");
    let dir = tempfile::tempdir().unwrap();
    let result = run_yaml(&one, dir.path());
    assert!(!result.dir.join("charts/protocols.svg").exists());
}

#[test]
fn multi_paxos_runs_beside_vanilla_and_its_clients_never_lose_a_race() {
    let yaml = "name: protocols\nseed: 3\ntarget:\n  kind: sim\n  protocol: [vanilla, multi-paxos]\n  leader:\n    initial: 2\n    batch: 8\nworkload:\n  proposers: 16\n  keys: 1\n  warmup_s: 0\n  duration_s: 0.3\nproposer:\n  backoff: {policy: full-jitter, base_ms: 1, cap_ms: 50}\n";
    let dir = tempfile::tempdir().unwrap();
    let result = run_yaml(yaml, dir.path());
    let [vanilla, multi] = &result.summary.scenarios[..] else {
        panic!("two scenarios")
    };
    for s in [vanilla, multi] {
        assert_counts_add_up(s);
        assert_eq!(s.safety.violations, 0, "{}", s.label);
    }
    assert!(vanilla.outcomes.lost_race > 0, "16 proposers on 1 key duel");
    assert!(vanilla.leader.is_none());
    assert_eq!(multi.outcomes.lost_race, 0);
    assert!(multi.outcomes.won > 0);
    let leader = multi.leader.as_ref().unwrap();
    assert_eq!(
        (leader.elected, leader.phase1_runs, leader.duels),
        (1, 1, 0)
    );
    assert!(
        leader.mean_batch > 1.0 && leader.mean_batch <= 8.0,
        "{leader:?}"
    );
    assert!(leader.decided >= multi.outcomes.won);
    let md = std::fs::read_to_string(result.dir.join("summary.md")).unwrap();
    assert!(md.contains("requests per ACCEPT batch"), "{md}");

    // Never as a race, the leader must be a node, and real nodes' elections carry every key
    // written in one frame: refused by field.
    for (bad, field) in [
        (
            "target:\n  kind: spawn\n  protocol: multi-paxos\nworkload:\n  keys: 2000000\n",
            "workload.keys",
        ),
        (
            "target:\n  kind: sim\n  protocol: multi-paxos\nworkload:\n  mode: race\n",
            "workload.mode",
        ),
        (
            "target:\n  kind: sim\n  protocol: multi-paxos\n  leader:\n    initial: 9\n",
            "target.leader.initial",
        ),
    ] {
        let err = BenchConfig::parse(Path::new("mp.yaml"), format!("name: mp\n{bad}"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(field) && err.contains("mp.yaml"), "{err}");
    }
}

#[test]
fn killing_the_leader_reports_the_unavailability_window_and_each_nodes_load() {
    let yaml = "name: failover\nseed: 4\ntarget:\n  kind: sim\n  storage: wal\n  protocol: multi-paxos\n  leader:\n    initial: 1\n    election_timeout_ms: 30\nworkload:\n  proposers: 8\n  keys: 100\n  warmup_s: 0.1\n  duration_s: 0.6\nproposer:\n  phase1_timeout_ms: 20\n  phase2_timeout_ms: 20\n  max_attempts: 1000\nfaults:\n  - {at_s: 0.3, kill-leader: {down_s: 0.1}}\n";
    let dir = tempfile::tempdir().unwrap();
    let result = run_yaml(yaml, dir.path());
    let s = &result.summary.scenarios[0];
    assert_eq!(s.safety.violations, 0);
    let kill = s
        .reliability
        .recoveries
        .iter()
        .find(|r| r.what == "kill the leader")
        .unwrap();
    let first = kill.first_decision_ms.unwrap();
    let everyone = kill.clients_back_ms.unwrap();
    // An election takes at least one election timeout (30 ms) to start.
    assert!(first >= 30.0 && everyone >= first, "{kill:?}");
    assert!(
        s.reliability
            .recoveries
            .iter()
            .any(|r| r.what == "restart node 1")
    );
    assert_eq!(s.leader.as_ref().unwrap().elected, 2);
    assert_eq!(s.node_load.len(), 3);
    // The leaders sent more than the follower that never led.
    let out: Vec<f64> = s.node_load.iter().map(|n| n.messages_out).collect();
    assert!(out.iter().all(|m| *m > 0.0), "{out:?}");

    let vanilla = yaml.replace("  protocol: multi-paxos\n", "");
    let err = BenchConfig::parse(Path::new("kl.yaml"), vanilla)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("kill-leader") && err.contains("faults"),
        "{err}"
    );
}

#[test]
fn every_committed_bench_config_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench-configs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            if let Err(e) = BenchConfig::parse(&path, text) {
                panic!("{}: {e}", path.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 25, "{checked} configs");
}
