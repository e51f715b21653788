//! Recovery of the write-ahead log: reads the segments after a checkpoint, tells a torn last
//! batch (cut off: it was never acknowledged) from damage anywhere else (refused, naming the
//! file and the offset), and says where appending resumes.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use paxbench_core::acceptor::Record;

use crate::error::Error;
use crate::storage::codec::decode_record;
use crate::storage::wal::segment::{FRAME, HEADER, MAGIC, list_segments, storage};

/// What recovery found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Records after the given position, in log order.
    pub records: Vec<Record>,
    /// The position of the last record in the log (0 for none).
    pub last_position: u64,
    /// Bytes of a torn last batch that were cut off.
    pub truncated_bytes: u64,
    /// Segments wholly before the given position, deleted.
    pub removed_segments: usize,
}

/// Where appending resumes: the last segment, the end of its valid batches, the next position.
pub(crate) struct Tail {
    pub(crate) path: PathBuf,
    pub(crate) end: u64,
    pub(crate) next_position: u64,
}

/// Reads the log in `dir`, keeping the records after `after`. With `repair`, a torn last batch
/// is cut off and segments the checkpoint covers are deleted; without it (an audit of a stopped
/// node) nothing is changed and a torn last batch is only left unread.
pub(crate) fn read(
    dir: &Path,
    after: u64,
    repair: bool,
) -> Result<(Recovery, Option<Tail>), Error> {
    let segments = list_segments(dir, repair)?;
    let mut recovery = Recovery::default();
    let mut live = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let covered = segments
            .get(i + 1)
            .is_some_and(|next| next.first <= after.saturating_add(1));
        if !covered {
            live.push(segment);
        } else if repair {
            // The checkpoint holds all of it; deleting it was interrupted.
            std::fs::remove_file(&segment.path)
                .map_err(|e| storage(&segment.path, format!("removing: {e}")))?;
            recovery.removed_segments += 1;
        }
    }
    let Some(first) = live.first() else {
        recovery.last_position = after;
        return Ok((recovery, None));
    };
    if first.first > after + 1 {
        return Err(storage(
            &first.path,
            format!(
                "records {} to {} are neither in the checkpoint nor in the log: a segment is \
                 missing",
                after + 1,
                first.first - 1
            ),
        ));
    }
    let mut expected = first.first;
    let mut end = HEADER;
    for (i, segment) in live.iter().enumerate() {
        if segment.first != expected {
            return Err(storage(
                &segment.path,
                format!(
                    "starts at record {}, but the previous segment ends before record \
                     {expected}: a segment is missing",
                    segment.first
                ),
            ));
        }
        let data = std::fs::read(&segment.path)
            .map_err(|e| storage(&segment.path, format!("reading: {e}")))?;
        check_header(&segment.path, &data, segment.first)?;
        let scanned = scan(&segment.path, &data, expected, after, &mut recovery.records)?;
        expected = scanned.next_position;
        end = scanned.end;
        let Some(damage) = scanned.damage else {
            continue;
        };
        if i + 1 < live.len() {
            return Err(storage(
                &segment.path,
                format!(
                    "{} in a full segment, which was synced before the next began; refusing \
                     to start",
                    damage.refusal(end)
                ),
            ));
        }
        if let Some(later) = find_valid_batch(&data, end + 1, expected) {
            return Err(storage(
                &segment.path,
                format!(
                    "{}, and a valid batch follows at offset {later}: this is damage inside the \
                     log, not a torn tail; refusing to start",
                    damage.refusal(end)
                ),
            ));
        }
        if repair {
            recovery.truncated_bytes = cut_tail(&segment.path, &data, end)?;
        }
    }
    let last = live[live.len() - 1];
    if expected <= after {
        return Err(storage(
            &last.path,
            format!(
                "the log ends at record {}, but the checkpoint holds records up to {after}: the \
                 log lost synced records",
                expected - 1
            ),
        ));
    }
    recovery.last_position = expected - 1;
    let tail = Tail {
        path: last.path.clone(),
        end: end as u64,
        next_position: expected,
    };
    Ok((recovery, Some(tail)))
}

fn check_header(path: &Path, data: &[u8], first: u64) -> Result<(), Error> {
    let refuse = |what: &str| Err(storage(path, format!("bad segment header: {what}")));
    if data.len() < HEADER || data[..8] != MAGIC {
        return refuse("not a paxbench log segment");
    }
    let crc = u32::from_le_bytes([data[16], data[17], data[18], data[19]]);
    if crc != crc32c::crc32c(&data[..16]) {
        return refuse("checksum mismatch");
    }
    if read_u64(data, 8) != first {
        return refuse("its first record does not match its file name");
    }
    Ok(())
}

/// Where a segment's valid batches end, and why, if not at clean zeros.
struct Scanned {
    end: usize,
    next_position: u64,
    damage: Option<Damage>,
}

struct Damage(String);

impl Damage {
    fn refusal(&self, offset: usize) -> String {
        format!("damaged batch at offset {offset}: {}", self.0)
    }
}

/// Reads the batches of one segment from its header on, pushing records after `after`.
fn scan(
    path: &Path,
    data: &[u8],
    mut position: u64,
    after: u64,
    records: &mut Vec<Record>,
) -> Result<Scanned, Error> {
    let mut offset = HEADER;
    loop {
        match parse_batch(data, offset, position) {
            Ok(Some(batch)) => {
                for (i, bytes) in batch.records.into_iter().enumerate() {
                    if position + i as u64 > after {
                        let record = decode_record(bytes).map_err(|e| {
                            storage(
                                path,
                                format!("batch at offset {offset}, record {}: {e}", i + 1),
                            )
                        })?;
                        records.push(record);
                    }
                }
                position += batch.count;
                offset = batch.end;
            }
            Ok(None) => {
                let damage = data[offset..]
                    .iter()
                    .any(|b| *b != 0)
                    .then(|| Damage("an empty frame followed by data".into()));
                return Ok(Scanned {
                    end: offset,
                    next_position: position,
                    damage,
                });
            }
            Err(why) => {
                return Ok(Scanned {
                    end: offset,
                    next_position: position,
                    damage: Some(Damage(why)),
                });
            }
        }
    }
}

struct Batch<'a> {
    count: u64,
    records: Vec<&'a [u8]>,
    end: usize,
}

/// The batch at `offset`: `Ok(None)` at an all-zero frame (the end of the written log).
fn parse_batch(data: &[u8], offset: usize, position: u64) -> Result<Option<Batch<'_>>, String> {
    let Some(frame) = data.get(offset..offset + FRAME) else {
        return if data[offset.min(data.len())..].iter().all(|b| *b == 0) {
            Ok(None)
        } else {
            Err("a frame cut short by the end of the segment".into())
        };
    };
    if frame.iter().all(|b| *b == 0) {
        return Ok(None);
    }
    let payload = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let end = offset + FRAME + payload;
    if end > data.len() {
        return Err(format!(
            "its length ({payload} bytes) runs past the segment"
        ));
    }
    if crc32c::crc32c(&data[offset + 8..end]) != crc {
        return Err("checksum mismatch".into());
    }
    let first = read_u64(frame, 8);
    if first != position {
        return Err(format!(
            "it starts at record {first}, where record {position} was expected"
        ));
    }
    let count = u32::from_le_bytes([frame[16], frame[17], frame[18], frame[19]]) as u64;
    let mut records = Vec::with_capacity(count as usize);
    let mut at = offset + FRAME;
    while at < end {
        let len = data
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .filter(|len| at + 4 + len <= end)
            .ok_or_else(|| "a record runs past its batch".to_string())?;
        records.push(&data[at + 4..at + 4 + len]);
        at += 4 + len;
    }
    if records.len() as u64 != count || count == 0 {
        return Err(format!(
            "it says {count} records and holds {}",
            records.len()
        ));
    }
    Ok(Some(Batch {
        count,
        records,
        end,
    }))
}

/// The offset of a valid batch at or after `from` that continues the log at or past
/// `position`, if any: proof that damage before it is not a torn tail.
fn find_valid_batch(data: &[u8], from: usize, position: u64) -> Option<usize> {
    let last = data.iter().rposition(|b| *b != 0)?;
    (from..=last.min(data.len().saturating_sub(FRAME))).find(|&offset| {
        let first = read_u64(data, offset + 8);
        let reserved = data.get(offset + 20..offset + 24);
        // Cheap filters first: a later batch continues the log within the bytes left, and its
        // reserved word is zero. Only then is its checksum worth computing.
        first >= position
            && first - position <= (last - offset) as u64
            && reserved == Some(&[0u8; 4][..])
            && parse_batch(data, offset, first).is_ok_and(|b| b.is_some())
    })
}

/// Zeroes a torn tail from `end` to the last non-zero byte and syncs; returns the bytes cut.
fn cut_tail(path: &Path, data: &[u8], end: usize) -> Result<u64, Error> {
    let Some(last) = data.iter().rposition(|b| *b != 0).filter(|l| *l >= end) else {
        // A frame cut short by the end of the file, all zeros: nothing to clear.
        return Ok(0);
    };
    let zeros = vec![0u8; last + 1 - end];
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| storage(path, format!("opening to cut a torn tail: {e}")))?;
    file.write_all_at(&zeros, end as u64)
        .and_then(|()| file.sync_data())
        .map_err(|e| storage(path, format!("cutting a torn tail at {end}: {e}")))?;
    tracing::warn!(
        segment = %path.display(),
        offset = end,
        bytes = zeros.len(),
        "cut a torn last batch: it was never acknowledged"
    );
    Ok(zeros.len() as u64)
}

fn read_u64(data: &[u8], at: usize) -> u64 {
    data.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}
