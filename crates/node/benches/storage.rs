//! Group commit of 1, 8 and 64 acceptor records on each durable engine, beside the disk floor
//! (one small append plus `fdatasync`), all on the disk under `target/` (not tmpfs) so every
//! figure includes a real fsync: `wal` (one write + one fdatasync into a preallocated segment)
//! and `redb` (one fsynced transaction).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use paxbench_core::acceptor::{AcceptorState, Record};
use paxbench_core::{Instance, ProposalId};
use paxbench_node::{AcceptorStore, RedbStorage, WalOptions, WalStorage};

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

fn bench_engine(c: &mut Criterion, name: &str, store: &mut dyn AcceptorStore) {
    let mut group = c.benchmark_group(format!("{name}-group-commit"));
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

fn group_commit(c: &mut Criterion) {
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let floor_dir = tempfile::tempdir_in(&target).unwrap();
    c.bench_function("disk-floor/append-fdatasync-64B", |b| {
        use std::io::Write;
        let mut file = std::fs::File::create(floor_dir.path().join("probe")).unwrap();
        b.iter(|| {
            file.write_all(&[0x5a; 64]).unwrap();
            file.sync_data().unwrap();
        })
    });
    let wal_dir = tempfile::tempdir_in(&target).unwrap();
    let mut wal = WalStorage::open(wal_dir.path(), WalOptions::default()).unwrap();
    bench_engine(c, "wal", &mut wal);
    let redb_dir = tempfile::tempdir_in(&target).unwrap();
    let mut redb = RedbStorage::open(redb_dir.path()).unwrap();
    bench_engine(c, "redb", &mut redb);
}

criterion_group!(benches, group_commit);
criterion_main!(benches);
