//! Runs the deterministic simulator once per ID scheme on the same contended workload and
//! prints what each scheme cost: retries, preemptions, timeouts, ID collisions and safety
//! violations. Usage:
//!
//! ```text
//! cargo run --release -p paxbench-core --example simulate -- [--proposers N] [--keys N]
//!     [--ops N] [--acceptors N] [--resolution-us N] [--seed N]
//! ```
#![allow(clippy::print_stdout)]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use paxbench_core::acceptor::RejectMode;
use paxbench_core::id::IdSchemeKind;
use paxbench_core::sim::{Latency, LinkModel, Sim, SimConfig};
use paxbench_core::workload::UniformWorkload;

struct Args {
    proposers: usize,
    keys: u64,
    ops: u64,
    acceptors: usize,
    resolution_us: u64,
    seed: u64,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        proposers: 16,
        keys: 4,
        ops: 200,
        acceptors: 3,
        resolution_us: 1_000,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|e| format!("{flag} {v:?}: {e} (expected a whole number)"))
        };
        match flag.as_str() {
            "--proposers" => args.proposers = number(&value)? as usize,
            "--keys" => args.keys = number(&value)?,
            "--ops" => args.ops = number(&value)?,
            "--acceptors" => args.acceptors = number(&value)? as usize,
            "--resolution-us" => args.resolution_us = number(&value)?,
            "--seed" => args.seed = number(&value)?,
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    if args.acceptors == 0 || args.proposers == 0 {
        return Err("--acceptors and --proposers must be at least 1".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("simulate: {message}");
            return ExitCode::from(2);
        }
    };
    println!(
        "{} acceptors (NACK), {} proposers, {} keys, {} ops each, clock resolution {} µs, seed {}",
        args.acceptors, args.proposers, args.keys, args.ops, args.resolution_us, args.seed
    );
    println!(
        "{:<16} {:>7} {:>7} {:>7} {:>10} {:>9} {:>9} {:>10} {:>10} {:>11} {:>9}",
        "scheme",
        "won",
        "lost",
        "gave_up",
        "attempts/op",
        "preempts",
        "timeouts",
        "collisions",
        "violations",
        "virtual_ms",
        "wall_ms"
    );
    let mut unsafe_schemes = 0;
    for scheme in IdSchemeKind::ALL {
        let mut config = SimConfig::new(args.acceptors, args.proposers, args.seed).with_clock_skew(
            1_700_000_000_000_000_000,
            Duration::from_micros(200),
            50.0,
            Duration::from_micros(args.resolution_us),
        );
        config.acceptor.reject_mode = RejectMode::Nack;
        config.links = LinkModel {
            latency: Latency::Uniform {
                min: Duration::from_micros(20),
                max: Duration::from_micros(80),
            },
            ..LinkModel::default()
        };
        for p in &mut config.proposers {
            p.id_scheme = scheme;
        }
        let workload = UniformWorkload::new(
            args.keys,
            args.ops,
            Duration::from_micros(100),
            Duration::from_millis(1),
            args.seed,
        );
        let mut sim = match Sim::new(config, workload) {
            Ok(sim) => sim,
            Err(e) => {
                eprintln!("simulate: {e}");
                return ExitCode::from(2);
            }
        };
        let started = Instant::now();
        let report = sim.run(&mut ());
        let wall = started.elapsed();
        let s = report.stats;
        let checker = sim.checker();
        let violations = checker.violations().len();
        if checker.has_protocol_violation() && scheme.guarantees_unique_ids() {
            unsafe_schemes += 1;
        }
        println!(
            "{:<16} {:>7} {:>7} {:>7} {:>10.2} {:>9} {:>9} {:>10} {:>10} {:>11.1} {:>9.1}",
            scheme.name(),
            s.host.ops_won,
            s.host.ops_lost,
            s.host.ops_gave_up,
            s.host.attempts as f64 / s.host.ops_started.max(1) as f64,
            s.host.preemptions,
            s.host.timeouts,
            checker.stats().id_collisions + checker.stats().id_reuses,
            violations,
            report.end.as_nanos() as f64 / 1e6,
            wall.as_secs_f64() * 1e3
        );
        for (kind, count) in checker.violation_counts() {
            println!("{:<16}   {count} × {kind}", "");
        }
    }
    if unsafe_schemes > 0 {
        eprintln!("simulate: a scheme with unique IDs broke safety; this is a bug");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
