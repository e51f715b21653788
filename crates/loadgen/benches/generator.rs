//! The generator's ceiling: operations per second of wall time that the load generator drives
//! (workload, proposers, metrics and checker all on) against the simulator with zero latency
//! and an instant disk, so nothing but the generator and the protocol state machines costs
//! time. Uncontended (a million keys) and contended (16 keys).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use paxbench_loadgen::config::BenchConfig;
use paxbench_loadgen::driver::sim;

const OPS: u64 = 100_000;

fn generator(c: &mut Criterion) {
    let mut group = c.benchmark_group("generator-on-zero-latency-sim");
    group.throughput(Throughput::Elements(OPS));
    group.sample_size(10);
    for (name, keys, fanout) in [
        ("64-proposers-1M-keys-fanout-all", 1_000_000, "all"),
        (
            "64-proposers-1M-keys-fanout-proposer",
            1_000_000,
            "proposer",
        ),
        ("64-proposers-16-keys-fanout-proposer", 16, "proposer"),
    ] {
        let yaml = format!(
            "name: ceiling\ntarget:\n  kind: sim\n  reject_mode: nack\n  learner_fanout: {fanout}\n  sim:\n    latency: {{kind: constant, mean_us: 0}}\n\
             workload:\n  proposers: 64\n  keys: {keys}\n  warmup_s: 0\n  duration_s: null\n  ops: {OPS}\n"
        );
        let config = BenchConfig::parse(Path::new("ceiling.yaml"), yaml).unwrap();
        let scenario = config.scenarios[0].clone();
        let interrupt = AtomicBool::new(false);
        let scratch = tempfile::tempdir().unwrap();
        let evidence = scratch.path().join("scenario-00.evidence");
        group.bench_function(name, |b| {
            b.iter(|| {
                let output = sim::run(
                    &scenario,
                    &evidence,
                    &interrupt,
                    &indicatif::ProgressBar::hidden(),
                )
                .unwrap();
                assert!(output.ops.completed() >= OPS);
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(10));
    targets = generator
}
criterion_main!(benches);
