//! The fuzz harness of the write-ahead log, for the cargo-fuzz target `wal` in `fuzz/`. It
//! lives here, beside what it tests, and panics on a bug; `crates/loadgen/tests/fuzz_corpus.rs`
//! replays every saved input through it on stable Rust, so a crash once found stays fixed.

use paxbench_core::acceptor::{AcceptorState, Record};
use paxbench_core::{Instance, ProposalId, Value};

use super::log::Log;
use super::segment::{segment_header, segment_name};

/// Segment size for [`wal_recovery`]: small, so inputs reach its end.
const FUZZ_SEGMENT_BYTES: u64 = 16 << 10;

/// Write-ahead-log recovery fed an arbitrary segment body after a valid header. Recovery either
/// refuses with an error, or yields a log that takes an append and reopens to exactly the
/// records it recovered plus the appended one: a torn tail is cut once and for all, and
/// nothing recovered is ever lost or changed by reopening.
pub fn wal_recovery(data: &[u8]) {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let mut segment = segment_header(1).to_vec();
    segment.extend_from_slice(data);
    if std::fs::write(dir.path().join(segment_name(1)), &segment).is_err() {
        return;
    }
    let Ok((mut log, recovery)) = Log::open(dir.path(), FUZZ_SEGMENT_BYTES, 0) else {
        return;
    };
    let appended = Record {
        instance: Instance::new(u64::MAX, 1),
        state: AcceptorState {
            promised: ProposalId::new(9, 9),
            accepted: Some((ProposalId::new(9, 9), Value::from_static(b"fuzz"))),
        },
    };
    let position = match log.append(std::slice::from_ref(&appended)) {
        Ok(position) => position,
        Err(e) => panic!("a recovered log refuses an append: {e}"),
    };
    assert_eq!(position, recovery.last_position + 1);
    drop(log);
    let again = match Log::open(dir.path(), FUZZ_SEGMENT_BYTES, 0) {
        Ok((_, again)) => again,
        Err(e) => panic!("a recovered log does not open again: {e}"),
    };
    let mut expected = recovery.records;
    expected.push(appended);
    assert_eq!(again.records, expected);
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_segment_of_garbage_is_refused_or_recovered_without_a_panic() {
        super::wal_recovery(&[]);
        super::wal_recovery(&[0xff; 64]);
    }
}
