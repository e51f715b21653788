//! `summary.md`: the comparison table across the sweep, then a table per scenario.

use std::fmt::Write as _;

use crate::analysis::stats::Spread;
use crate::report::summary::{Repetitions, ScenarioSummary, SharedCluster, Summary};
use crate::report::table::fmt_us;

/// `summary.md`: a table per scenario, and a comparison table across the sweep.
pub fn markdown(summary: &Summary) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# paxbench run: {}\n", summary.name);
    if summary.interrupted {
        let _ = writeln!(
            md,
            "**INTERRUPTED**: Ctrl-C stopped this run; what was measured is below.\n"
        );
    }
    if !summary.description.is_empty() {
        let _ = writeln!(md, "{}\n", summary.description.trim());
    }
    let env = &summary.environment;
    let _ = writeln!(
        md,
        "Started {} · config `{}` · seed {} · {} ({} cores) · {} · commit `{}`\n",
        summary.started_utc, summary.config, env.seed, env.cpu, env.cores, env.os, env.git_commit
    );
    if summary.scenarios.len() > 1 {
        let _ = writeln!(md, "## Comparison\n");
        md.push_str(&crate::report::table::markdown(&summary.scenarios));
        md.push('\n');
    }
    for s in &summary.scenarios {
        let _ = writeln!(md, "## Scenario {}: {}\n", s.index, s.label);
        if s.interrupted {
            let _ = writeln!(md, "**Interrupted.**\n");
        }
        let _ = writeln!(md, "| measure | value |\n|---|---|");
        for (name, value) in details(s) {
            let _ = writeln!(md, "| {name} | {value} |");
        }
        for note in notes(s) {
            let _ = writeln!(md, "\n> {note}");
        }
        md.push('\n');
    }
    md
}

/// Every measure of a scenario, as (name, value) rows: what `summary.md` and `report.html`
/// both show under the scenario's heading.
pub fn details(s: &ScenarioSummary) -> Vec<(String, String)> {
    let mut rows = outcome_rows(s);
    rows.extend(contention_rows(s));
    rows.extend(node_rows(s));
    rows.extend(resource_rows(s));
    rows.extend(reliability_rows(s));
    if let Some(shared) = &s.shared {
        rows.extend(shared_rows(s, shared));
    }
    if let Some(zones) = &s.zones {
        rows.extend(zones.rows(&s.settings));
    }
    if let Some(leader) = &s.leader {
        rows.extend(leader.rows());
    }
    rows.extend(crate::report::load::NodeLoadSummary::rows(&s.node_load));
    if let Some(r) = &s.repetitions {
        rows.extend(repetition_rows(r));
    }
    rows
}

/// What the run did: its outcomes, throughput, latencies and floors.
fn outcome_rows(s: &ScenarioSummary) -> Vec<(String, String)> {
    let l = &s.latency_us;
    let rows: Vec<(&str, String)> = vec![
        ("target", crate::config::display_value(&s.target)),
        (
            "measured",
            format!("{:.2} s ({:.1} s wall)", s.measured_s, s.wall_s),
        ),
        (
            if s.repetitions.is_some() {
                "decisions/s (pooled over the repetitions)"
            } else {
                "decisions/s"
            },
            if s.safety.violations > 0 {
                format!(
                    "{:.0} wins/s: not throughput, since with agreement broken several \
                     proposers won one instance",
                    s.throughput.decisions_per_s
                )
            } else {
                format!("{:.0}", s.throughput.decisions_per_s)
            },
        ),
        (
            "ops started / won / lost race / gave up / timed out / unfinished",
            format!(
                "{} / {} / {} / {} / {} / {}",
                s.outcomes.started,
                s.outcomes.won,
                s.outcomes.lost_race,
                s.outcomes.gave_up,
                s.outcomes.timed_out,
                s.outcomes.unfinished
            ),
        ),
        (
            "op latency p50 / p90 / p99 / p99.9 / max",
            format!(
                "{} / {} / {} / {} / {}",
                fmt_us(l.op.p50),
                fmt_us(l.op.p90),
                fmt_us(l.op.p99),
                fmt_us(l.op.p999),
                fmt_us(l.op.max)
            ),
        ),
        (
            "service time p50 / p99",
            format!("{} / {}", fmt_us(l.service.p50), fmt_us(l.service.p99)),
        ),
        (
            "phase 1 / phase 2 p50",
            format!("{} / {}", fmt_us(l.phase1.p50), fmt_us(l.phase2.p50)),
        ),
        (
            "transport floor p50 (ping)",
            l.floor
                .iter()
                .map(|f| format!("n{} {}", f.node, fmt_us(f.rtt.p50)))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "disk floor p50 / p99 (append + fdatasync)",
            s.nodes
                .iter()
                .filter_map(|n| {
                    Some(format!(
                        "n{} {} / {}",
                        n.node,
                        fmt_us(n.disk_floor_p50_us?),
                        fmt_us(n.disk_floor_p99_us?)
                    ))
                })
                .reduce(|a, b| format!("{a}, {b}"))
                .unwrap_or_else(|| {
                    if s.nodes.is_empty() {
                        "— (no node counters)".into()
                    } else {
                        "— (nothing on disk)".into()
                    }
                }),
        ),
    ];
    rows.into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

/// What contention cost: preemptions, rounds, duels, retries, IDs, messages, safety.
fn contention_rows(s: &ScenarioSummary) -> Vec<(String, String)> {
    let rows: Vec<(&str, String)> = vec![
        (
            "preemptions/op, preempted share",
            format!(
                "{:.3}, {:.1}%",
                s.contention.preemptions_per_op,
                100.0 * s.contention.preempted_share
            ),
        ),
        (
            "rounds per op",
            s.contention
                .rounds
                .iter()
                .map(|(r, n)| format!("{r}:{n}"))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        (
            "dueling episodes, livelock windows (time)",
            format!(
                "{}, {} ({:.1} ms)",
                s.contention.dueling_episodes,
                s.contention.livelock_windows,
                s.contention.livelock_ms
            ),
        ),
        (
            "retries/op, timeouts/op, backoff/op",
            format!(
                "{:.3}, {:.3}, {:.2} ms",
                s.retries.retries_per_op, s.retries.timeouts_per_op, s.retries.backoff_ms_per_op
            ),
        ),
        (
            "ID collisions, reuses, growth of high part/s",
            format!(
                "{}, {}, {:.3e}",
                s.ids.collisions, s.ids.reused, s.ids.high_growth_per_s
            ),
        ),
        (
            "messages/decision, bytes/decision",
            format!(
                "{:.1}, {:.0}",
                s.messages.per_decision, s.messages.bytes_per_decision
            ),
        ),
        (
            "safety violations",
            if s.safety.violations == 0 {
                "0".into()
            } else {
                format!(
                    "{} ({}){}",
                    s.safety.violations,
                    s.safety
                        .by_kind
                        .iter()
                        .map(|(k, n)| format!("{n} {k}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if s.safety.expected {
                        ", expected: this is the finding"
                    } else {
                        ""
                    }
                )
            },
        ),
    ];
    rows.into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

/// The open loop's schedule and the nodes' own counters.
fn node_rows(s: &ScenarioSummary) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let l = &s.latency_us;
    if let (Some(target), Some(achieved)) = (s.throughput.target_rate, s.throughput.achieved_rate) {
        rows.push((
            "open loop: target / achieved rate, start lag p99".into(),
            format!(
                "{target:.0} / {achieved:.0} ops/s, {}{}",
                fmt_us(l.start_lag.p99),
                if s.throughput.fell_behind {
                    " (**generator fell behind**)"
                } else {
                    ""
                }
            ),
        ));
    }
    if !s.nodes.is_empty() {
        rows.push((
            "nodes: records per commit (max), commit p50 / p99, frames per write".into(),
            s.nodes
                .iter()
                .map(|n| {
                    format!(
                        "n{}: {:.1} ({}), {} / {}, {:.1}",
                        n.node,
                        n.records_per_batch,
                        n.max_batch,
                        fmt_us(n.commit_p50_us),
                        fmt_us(n.commit_p99_us),
                        n.frames_per_write
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    if s.nodes.iter().any(|n| n.checkpoints > 0) {
        rows.push((
            "nodes: acceptor states held at most, forgotten, read back; checkpoints".into(),
            s.nodes
                .iter()
                .map(|n| {
                    format!(
                        "n{}: {}, {}, {}; {}",
                        n.node, n.most_held, n.evicted, n.store_reads, n.checkpoints
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    rows
}

/// The processes' memory and CPU, the machine's noise, and drift over the run.
fn resource_rows(s: &ScenarioSummary) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let r = &s.resources;
    if !r.processes.is_empty() {
        rows.push((
            "processes: peak / final RSS, RSS slope after the warmup, CPU".into(),
            r.processes
                .iter()
                .map(|p| {
                    format!(
                        "{}: {:.0} / {:.0} MiB, {:+.1} MiB/min, {:.0}%",
                        p.name, p.peak_rss_mib, p.final_rss_mib, p.rss_slope_mib_per_min, p.cpu_pct
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        ));
        if r.generator_cpu_us_per_decision > 0.0 {
            rows.push((
                "generator CPU per decision".into(),
                format!("{:.1} µs", r.generator_cpu_us_per_decision),
            ));
        }
        rows.push((
            "machine: CPU steal, CPU of other processes, load at start".into(),
            format!(
                "{:.1}%, {:.1}%, {:.2}{}",
                r.steal_pct,
                r.foreign_cpu_pct,
                r.load_at_start,
                if r.is_noisy() {
                    " (noisy: figures are partly a measurement of the neighbours)"
                } else {
                    ""
                }
            ),
        ));
    }
    if let Some(drift) = &s.drift {
        rows.push((
            format!(
                "drift: decisions/s and p99, {}–{} s against {}–{} s",
                drift.early.from_s,
                drift.early.from_s + drift.early.seconds,
                drift.late.from_s,
                drift.late.from_s + drift.late.seconds,
            ),
            format!(
                "{:.0} → {:.0} (×{:.2}), {} → {} (×{:.2})",
                drift.early.decisions_per_s,
                drift.late.decisions_per_s,
                drift.throughput_ratio,
                fmt_us(drift.early.p99_us),
                fmt_us(drift.late.p99_us),
                drift.p99_ratio,
            ),
        ));
    }
    rows
}

/// The store audit and the recoveries after faults.
fn reliability_rows(s: &ScenarioSummary) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    if let Some(audit) = &s.reliability.audit {
        rows.push((
                "store audit: chosen values lost, acknowledged states lost, replay violations".into(),
                format!(
                    "{}{}",
                if audit.problems() == 0 {
                    format!(
                        "0, 0, 0 ({} chosen values and {} acknowledged states checked in {} records of {} stores)",
                        audit.chosen_checked, audit.acks_checked, audit.records, audit.stores
                    )
                } else {
                    format!(
                        "**{}, {}, {}**",
                        audit.chosen_lost, audit.acks_lost, audit.violations
                    )
                },
                if audit.problems() > 0 && !s.safety.expected {
                    " — STORE AUDIT FAILED"
                } else {
                    ""
                }
            )));
    }
    if !s.reliability.recoveries.is_empty() {
        let ms = |v: Option<f64>| v.map_or("never".to_string(), |v| format!("{v:.0} ms"));
        rows.push((
            "recovery: first new decision, every node answering, every proposer served".into(),
            s.reliability
                .recoveries
                .iter()
                .map(|r| {
                    format!(
                        "{} at {:.1} s: {}, {}, {}",
                        r.what,
                        r.at_s,
                        ms(r.first_decision_ms),
                        ms(r.nodes_back_ms),
                        ms(r.clients_back_ms)
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    rows
}

/// An attached run's place on a shared cluster: its keys, start, clocks, and what it met that
/// others proposed.
fn shared_rows(s: &ScenarioSummary, shared: &SharedCluster) -> Vec<(String, String)> {
    let run = &s.settings.run;
    let keys = if run.namespace == 0 {
        "the configured keys (`keys: reuse`)".to_string()
    } else {
        format!("namespace {:08x}", run.namespace)
    };
    // A merged report speaks of several generators.
    let merged = shared.window_spread_ms.is_some();
    let mut rows = vec![(
        "shared cluster: run tag, keys".to_string(),
        format!("{:08x}, {keys}", run.tag),
    )];
    if let (Some(at), Some(late)) = (run.start_unix_ns, shared.start_late_ms) {
        rows.push((
            "synchronized start (`start_at`)".into(),
            format!(
                "{}, {} began {late:.3} ms after it",
                crate::report::files::utc_stamp(
                    std::time::UNIX_EPOCH + std::time::Duration::from_nanos(at),
                    false
                ),
                if merged {
                    "the latest generator's warmup"
                } else {
                    "warmup"
                }
            ),
        ));
    }
    if !shared.clock_offsets.is_empty() {
        rows.push((
            if merged {
                "node clocks against the first generator's (± half the fastest ping)".into()
            } else {
                "node clocks against this generator's (± half the fastest ping)".into()
            },
            shared
                .clock_offsets
                .iter()
                .map(|c| format!("n{} {:+.3} ± {:.3} ms", c.node, c.offset_ms, c.bound_ms))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    rows.push((
        "decisions for values of earlier runs (pre-existing), of other generators".into(),
        format!("{}, {}", shared.preexisting, shared.other_generators),
    ));
    if let Some(spread) = shared.window_spread_ms {
        rows.push((
            "generators' measured windows began apart (on the nodes' clock)".into(),
            format!("{spread:.3} ms"),
        ));
    }
    rows.push((
        "agreement and validity across generators".into(),
        match &shared.cross_check {
            Some(c) => format!(
                "{} violations over {} instances of {} generators ({} touched by several, {} pre-existing)",
                c.violations, c.instances, c.generators, c.shared_instances, c.preexisting
            ),
            None if merged => {
                "not checked: a generator kept no evidence (`measure.evidence: true`)".into()
            }
            None => "checked by `paxbench merge` across the generators' evidence".into(),
        },
    ));
    rows
}

/// The safety checker's examples and the store audit's problems, written out.
pub fn notes(s: &ScenarioSummary) -> Vec<String> {
    let mut notes = s.safety.examples.clone();
    if let Some(audit) = &s.reliability.audit {
        notes.extend(audit.problems.iter().map(|p| format!("store audit: {p}")));
    }
    notes
}

/// The spread over repetitions: each headline figure's median, its interval and the
/// interval's coverage, the range, and every repetition's figure.
fn repetition_rows(r: &Repetitions) -> Vec<(String, String)> {
    let spread = |name: &str, s: &Spread, format: &dyn Fn(f64) -> String| {
        (
            format!(
                "repetitions: {name}, median [{:.0}% interval], min–max",
                100.0 * s.confidence
            ),
            format!(
                "{} [{} – {}] (±{:.1}%), {} – {}",
                format(s.median),
                format(s.ci_low),
                format(s.ci_high),
                100.0 * s.relative_half_width(),
                format(s.min),
                format(s.max),
            ),
        )
    };
    let rate = |v: f64| format!("{v:.0}");
    let micros = |v: f64| fmt_us(v.round() as u64);
    let ratio = |v: f64| format!("{v:.3}");
    vec![
        spread("decisions/s", &r.decisions_per_s, &rate),
        spread("p50", &r.p50_us, &micros),
        spread("p99", &r.p99_us, &micros),
        spread("retries/op", &r.retries_per_op, &ratio),
        spread("preemptions/op", &r.preemptions_per_op, &ratio),
        (
            "repetitions, each in turn: decisions/s, p50, p99; ping and disk floors p50; CPU \
             steal / other processes"
                .into(),
            r.runs
                .iter()
                .map(|h| {
                    format!(
                        "{:.0}, {}, {}; {}, {}; {:.0}% / {:.0}%",
                        h.decisions_per_s,
                        fmt_us(h.p50_us),
                        fmt_us(h.p99_us),
                        fmt_us(h.ping_p50_us),
                        h.disk_floor_p50_us.map_or("—".into(), fmt_us),
                        h.steal_pct,
                        h.foreign_cpu_pct
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
    ]
}
