//! The Reliability table: what a fault campaign's runs injected, decided, violated and lost,
//! read back from their results folders, with the fuzzing record beside it. This is the table
//! `scripts/fault-campaign.sh` prints and the README quotes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::report::summary::{AuditSummary, ScenarioSummary, Summary};

/// Audits the stores of an `attach` run's nodes (stopped since) against the evidence the run
/// kept (`scenario-NN.evidence`), and records the audit in the run's `summary.json` and
/// `summary.md`, as a spawned run would have. Returns the audit.
pub fn audit_attach_run(
    dir: &Path,
    scenario: usize,
    stores: &[(paxbench_core::NodeId, PathBuf)],
    (nodes, phase2): (usize, usize),
) -> Result<AuditSummary, Error> {
    let mut summary = Summary::load(dir)?;
    let evidence_path = dir.join(format!("scenario-{scenario:02}.evidence"));
    if !evidence_path.exists() {
        return Err(Error::Scenario(format!(
            "{} does not exist (an attach run keeps evidence only with `measure.evidence: true`)",
            evidence_path.display()
        )));
    }
    let replies = summary
        .scenarios
        .iter()
        .find(|s| s.index == scenario)
        .map_or(0, |s| s.reliability.acked_replies);
    let report = paxbench_node::audit_stores(stores, nodes, phase2, Some(&evidence_path), dir)?;
    let audit = AuditSummary::new(&report, replies);
    let entry = summary
        .scenarios
        .iter_mut()
        .find(|s| s.index == scenario)
        .ok_or_else(|| Error::Scenario(format!("{}: no scenario {scenario}", dir.display())))?;
    entry.reliability.audit = Some(audit.clone());
    let json = serde_json::to_string_pretty(&summary)
        .map_err(|e| Error::Scenario(format!("encoding the summary: {e}")))?;
    replace_file(&dir.join("summary.json"), (json + "\n").as_bytes())?;
    replace_file(
        &dir.join("summary.md"),
        crate::report::markdown(&summary).as_bytes(),
    )?;
    Ok(audit)
}

/// Writes `path` through a temporary file and a rename, so a reader never sees half of it.
fn replace_file(path: &Path, contents: &[u8]) -> Result<(), Error> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, contents)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|source| Error::Io {
            context: format!("writing {}", path.display()),
            source,
        })
}

/// One fuzz target's record, as `scripts/fuzz.sh` appends it to `fuzz/stats.tsv`.
#[derive(Clone, Debug, PartialEq)]
pub struct FuzzRecord {
    /// The target.
    pub target: String,
    /// Seconds fuzzed.
    pub seconds: f64,
    /// Inputs tried.
    pub execs: u64,
}

/// Reads `fuzz/stats.tsv`: `target<TAB>seconds<TAB>execs` per line, `#` comments.
pub fn read_fuzz_stats(path: &Path) -> Result<Vec<FuzzRecord>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        context: format!("reading {}", path.display()),
        source,
    })?;
    let mut records = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let bad = || {
            Error::Scenario(format!(
                "{} line {}: expected `target<TAB>seconds<TAB>execs`, got {line:?}",
                path.display(),
                number + 1
            ))
        };
        let [target, seconds, execs] = fields[..] else {
            return Err(bad());
        };
        records.push(FuzzRecord {
            target: target.to_string(),
            seconds: seconds.parse().map_err(|_| bad())?,
            execs: execs.parse().map_err(|_| bad())?,
        });
    }
    Ok(records)
}

/// One row of the table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    /// Run and scenario.
    pub name: String,
    /// Nodes in the cluster.
    pub nodes: u64,
    /// Faults applied.
    pub faults: u64,
    /// Instances decided (checked against the stores when audited).
    pub decisions: u64,
    /// Safety violations from the online checker and the store replay.
    pub violations: u64,
    /// Acknowledged `(node, instance)` states the stores no longer back; `None`: not audited.
    pub acks_lost: Option<u64>,
    /// Chosen values no longer held by a majority of stores; `None`: not audited.
    pub chosen_lost: Option<u64>,
    /// The slowest recovery: milliseconds to the first new decision after a heal or restart.
    pub worst_recovery_ms: Option<f64>,
    /// The slowest return of the nodes concerned: milliseconds until every one answered again.
    pub worst_nodes_back_ms: Option<f64>,
}

impl Row {
    fn of(run: &str, scenario: &ScenarioSummary) -> Self {
        let audit = scenario.reliability.audit.as_ref();
        let nodes = u64::from(scenario.setup.nodes);
        Self {
            name: if scenario.label == "default" {
                run.to_string()
            } else {
                format!("{run} ({})", scenario.label)
            },
            nodes,
            faults: scenario.faults.len() as u64,
            decisions: audit.map_or(scenario.outcomes.won, |a| a.chosen_checked),
            violations: scenario.safety.violations + audit.map_or(0, |a| a.violations),
            acks_lost: audit.map(|a| a.acks_lost),
            chosen_lost: audit.map(|a| a.chosen_lost),
            worst_recovery_ms: scenario
                .reliability
                .recoveries
                .iter()
                .map(|r| r.first_decision_ms.unwrap_or(f64::INFINITY))
                .reduce(f64::max),
            worst_nodes_back_ms: scenario
                .reliability
                .recoveries
                .iter()
                .map(|r| r.nodes_back_ms.unwrap_or(f64::INFINITY))
                .reduce(f64::max),
        }
    }

    /// Whether anything was violated or lost.
    pub fn failed(&self) -> bool {
        self.violations > 0 || self.acks_lost.unwrap_or(0) > 0 || self.chosen_lost.unwrap_or(0) > 0
    }
}

/// The rows of every scenario in `dirs`.
pub fn rows(dirs: &[PathBuf]) -> Result<Vec<Row>, Error> {
    let mut rows = Vec::new();
    for dir in dirs {
        let summary = Summary::load(dir)?;
        let run = dir
            .file_name()
            .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into());
        rows.extend(summary.scenarios.iter().map(|s| Row::of(&run, s)));
    }
    Ok(rows)
}

/// The table as Markdown, with a total row and the fuzzing record.
pub fn markdown(rows: &[Row], fuzz: &[FuzzRecord]) -> String {
    let lost = |v: Option<u64>| v.map_or("not audited".to_string(), |n| n.to_string());
    let ms = |v: f64| {
        if v.is_finite() {
            format!("{v:.0} ms")
        } else {
            "**never**".to_string()
        }
    };
    let mut md = String::from(
        "| scenario | nodes | faults injected | decisions | violations | acknowledged records lost | chosen values lost | slowest recovery: new decision / every node back |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for row in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            row.name,
            row.nodes,
            row.faults,
            row.decisions,
            row.violations,
            lost(row.acks_lost),
            lost(row.chosen_lost),
            match (row.worst_recovery_ms, row.worst_nodes_back_ms) {
                (Some(decision), Some(back)) => format!("{} / {}", ms(decision), ms(back)),
                _ => "—".to_string(),
            }
        );
    }
    let sum = |f: &dyn Fn(&Row) -> u64| rows.iter().map(f).sum::<u64>();
    let _ = writeln!(
        md,
        "| **total** | | {} | {} | {} | {} | {} | |",
        sum(&|r| r.faults),
        sum(&|r| r.decisions),
        sum(&|r| r.violations),
        sum(&|r| r.acks_lost.unwrap_or(0)),
        sum(&|r| r.chosen_lost.unwrap_or(0)),
    );
    if !fuzz.is_empty() {
        let execs: u64 = fuzz.iter().map(|f| f.execs).sum();
        let hours: f64 = fuzz.iter().map(|f| f.seconds).sum::<f64>() / 3600.0;
        let mut by_target: Vec<(&str, u64, f64)> = Vec::new();
        for record in fuzz {
            match by_target.iter_mut().find(|(t, ..)| *t == record.target) {
                Some((_, n, secs)) => {
                    *n += record.execs;
                    *secs += record.seconds;
                }
                None => by_target.push((&record.target, record.execs, record.seconds)),
            }
        }
        let _ = writeln!(
            md,
            "\nMalformed and arbitrary inputs tried by the fuzzers: {execs} in {hours:.2} fuzzing hours ({}).",
            by_target
                .iter()
                .map(|(target, n, secs)| format!("{target}: {n} in {secs:.0} s"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_stats_parse_and_bad_lines_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stats.tsv");
        std::fs::write(
            &path,
            "# target\tseconds\texecs\nframe\t60\t1000\nframe\t30\t500\n",
        )
        .unwrap();
        let records = read_fuzz_stats(&path).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].execs, 500);
        std::fs::write(&path, "frame\tsixty\t1\n").unwrap();
        let err = read_fuzz_stats(&path).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn a_lost_record_fails_the_row_and_shows_in_the_total() {
        let rows = vec![
            Row {
                name: "a".into(),
                nodes: 3,
                faults: 2,
                decisions: 10,
                acks_lost: Some(0),
                chosen_lost: Some(0),
                worst_recovery_ms: Some(12.0),
                worst_nodes_back_ms: Some(20.0),
                ..Row::default()
            },
            Row {
                name: "b".into(),
                decisions: 5,
                acks_lost: Some(1),
                worst_recovery_ms: Some(f64::INFINITY),
                worst_nodes_back_ms: Some(5.0),
                ..Row::default()
            },
        ];
        assert!(!rows[0].failed() && rows[1].failed());
        let fuzz = [
            FuzzRecord {
                target: "frames".into(),
                seconds: 30.0,
                execs: 10,
            },
            FuzzRecord {
                target: "frames".into(),
                seconds: 3570.0,
                execs: 5,
            },
        ];
        let md = markdown(&rows, &fuzz);
        assert!(
            md.contains("15 in 1.00 fuzzing hours (frames: 15 in 3600 s)"),
            "{md}"
        );
        assert!(
            md.contains("| **total** | | 2 | 15 | 0 | 1 | 0 | |"),
            "{md}"
        );
        assert!(md.contains("| 12 ms / 20 ms |"), "{md}");
        assert!(md.contains("**never** / 5 ms"), "{md}");
        assert!(md.contains("not audited"), "{md}");
    }
}
