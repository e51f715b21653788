//! redb group commit: one fsynced transaction per batch of 1, 8 and 64 acceptor records, on the
//! disk under `target/` (not tmpfs), so the figure includes a real fsync.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use paxbench_core::acceptor::{AcceptorState, Record};
use paxbench_core::{Instance, ProposalId};
use paxbench_node::{AcceptorStore, RedbStorage};

fn records(first: u64, count: u64) -> Vec<Record> {
    (first..first + count)
        .map(|key| Record {
            instance: Instance::new(key, 0),
            state: AcceptorState {
                promised: ProposalId::new(key, 1),
                accepted: Some((ProposalId::new(key, 1), Bytes::from(vec![5u8; 64]))),
            },
        })
        .collect()
}

fn group_commit(c: &mut Criterion) {
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let dir = tempfile::tempdir_in(target).unwrap();
    let mut store = RedbStorage::open(dir.path()).unwrap();
    let mut group = c.benchmark_group("redb-group-commit");
    group.sample_size(30);
    let mut next = 0;
    for batch in [1u64, 8, 64] {
        group.throughput(Throughput::Elements(batch));
        group.bench_function(format!("batch-{batch}"), |b| {
            b.iter_batched(
                || {
                    next += batch;
                    records(next, batch)
                },
                |batch| store.commit(&batch).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, group_commit);
criterion_main!(benches);
