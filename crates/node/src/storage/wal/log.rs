//! The write-ahead log: numbered segment files of group-commit batches. A batch is one contiguous
//! write, framed and checksummed (crc32c) as a whole, then one `fdatasync`. Segments are
//! preallocated, so the sync writes data and not block allocations. Recovery truncates a torn
//! last batch and refuses damage anywhere else, naming the file and the offset.
//!
//! Why the checksum covers a batch and not each record: a crash during a group commit can tear
//! the batch at any sector, leaving a later record of it intact after a damaged one. Records of
//! one batch are acknowledged together, so only a batch can be "the torn tail"; a valid batch
//! after a damaged one means the damage is not a torn tail, and the log is refused.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use paxbench_core::acceptor::Record;

use crate::error::Error;
use crate::storage::codec::encode_record;
use crate::storage::fs::sync_dir;
use crate::storage::wal::recovery::{Recovery, read};
use crate::storage::wal::segment::{
    CREATING, FRAME, HEADER, segment_header, segment_name, storage,
};

/// Segments are this large unless a test says otherwise: at 60-byte records that is about a
/// million records, a minute of full-rate writes, and a bounded read at restart.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// Where a test may make the log stop as a `kill -9` would.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogCrash {
    /// Half of a batch's bytes written.
    MidAppend,
    /// The whole batch written, not synced.
    BeforeSync,
    /// The next segment created under its temporary name, not renamed.
    MidRotation,
}

/// An append-only log of acceptor records; positions count records from 1.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    segment_bytes: u64,
    file: File,
    path: PathBuf,
    /// Where the next batch goes in the active segment.
    offset: u64,
    next_position: u64,
    frame: Vec<u8>,
    encoded: Vec<u8>,
    #[cfg(test)]
    pub(crate) crash: Option<LogCrash>,
}

impl Log {
    /// Opens the log in `dir` (creating it), keeps the records after position `after` (those
    /// at or before it are in the checkpoint), and is ready to append after the last record.
    /// A torn last batch is cut off, and segments the checkpoint covers are deleted.
    pub fn open(dir: &Path, segment_bytes: u64, after: u64) -> Result<(Self, Recovery), Error> {
        crate::storage::fs::create_dir(dir)?;
        let (recovery, tail) = read(dir, after, true)?;
        let log = match tail {
            None => {
                let (file, path) = create_segment(dir, after + 1, segment_bytes)?;
                Self::new(dir, segment_bytes, file, path, HEADER as u64, after + 1)
            }
            Some(tail) => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&tail.path)
                    .map_err(|e| storage(&tail.path, format!("opening: {e}")))?;
                // A cut tail may have left the file short; appends stay in preallocated space.
                rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, segment_bytes)
                    .map_err(|e| storage(&tail.path, format!("preallocating: {e}")))?;
                Self::new(
                    dir,
                    segment_bytes,
                    file,
                    tail.path,
                    tail.end,
                    tail.next_position,
                )
            }
        };
        Ok((log, recovery))
    }

    fn new(
        dir: &Path,
        segment_bytes: u64,
        file: File,
        path: PathBuf,
        offset: u64,
        next_position: u64,
    ) -> Self {
        Self {
            dir: dir.to_path_buf(),
            segment_bytes,
            file,
            path,
            offset,
            next_position,
            frame: Vec::new(),
            encoded: Vec::new(),
            #[cfg(test)]
            crash: None,
        }
    }

    /// The position the next record gets.
    pub fn next_position(&self) -> u64 {
        self.next_position
    }

    /// Appends `records` and makes them durable; returns the position of the last one. Records
    /// that do not fit the active segment go to a new one; each segment is synced before the
    /// next is started, so only the last batch can ever be torn.
    pub fn append(&mut self, records: &[Record]) -> Result<u64, Error> {
        self.write(records)?;
        #[cfg(test)]
        if self.crash == Some(LogCrash::BeforeSync) {
            return Err(crashed());
        }
        self.file
            .sync_data()
            .map_err(|e| storage(&self.path, format!("fdatasync: {e}")))?;
        Ok(self.next_position - 1)
    }

    /// Writes `records` without syncing: what reaches the disk before a failed fsync.
    pub fn write(&mut self, records: &[Record]) -> Result<(), Error> {
        let mut rest = records;
        while !rest.is_empty() {
            let room = self.segment_bytes.saturating_sub(self.offset) as usize;
            let taken = self.frame_batch(rest, room)?;
            if taken == 0 {
                self.rotate()?;
                continue;
            }
            #[cfg(test)]
            if self.crash == Some(LogCrash::MidAppend) {
                let half = &self.frame[..self.frame.len() / 2];
                let _ = self.file.write_all_at(half, self.offset);
                return Err(crashed());
            }
            self.file
                .write_all_at(&self.frame, self.offset)
                .map_err(|e| storage(&self.path, format!("write at {}: {e}", self.offset)))?;
            self.offset += self.frame.len() as u64;
            self.next_position += taken as u64;
            rest = &rest[taken..];
        }
        Ok(())
    }

    /// Frames as many of `records` as fit in `room` bytes into `self.frame`; returns how many.
    fn frame_batch(&mut self, records: &[Record], room: usize) -> Result<usize, Error> {
        self.frame.clear();
        self.frame.resize(FRAME, 0);
        let mut taken = 0;
        for record in records {
            encode_record(record, &mut self.encoded)
                .map_err(|e| storage(&self.path, format!("encoding a record: {e}")))?;
            let grown = self.frame.len() + 4 + self.encoded.len();
            if grown > room {
                break;
            }
            self.frame
                .extend_from_slice(&(self.encoded.len() as u32).to_le_bytes());
            self.frame.extend_from_slice(&self.encoded);
            taken += 1;
        }
        if taken == 0 {
            if self.offset == HEADER as u64 {
                return Err(storage(
                    &self.path,
                    format!(
                        "a {}-byte record does not fit a {}-byte segment",
                        self.encoded.len(),
                        self.segment_bytes
                    ),
                ));
            }
            return Ok(0);
        }
        let payload = (self.frame.len() - FRAME) as u32;
        self.frame[0..4].copy_from_slice(&payload.to_le_bytes());
        self.frame[8..16].copy_from_slice(&self.next_position.to_le_bytes());
        self.frame[16..20].copy_from_slice(&(taken as u32).to_le_bytes());
        let crc = crc32c::crc32c(&self.frame[8..]);
        self.frame[4..8].copy_from_slice(&crc.to_le_bytes());
        Ok(taken)
    }

    /// Syncs the full segment and starts the next one at the next position.
    fn rotate(&mut self) -> Result<(), Error> {
        self.file
            .sync_data()
            .map_err(|e| storage(&self.path, format!("fdatasync: {e}")))?;
        #[cfg(test)]
        if self.crash == Some(LogCrash::MidRotation) {
            let creating = self
                .dir
                .join(format!("{:020}{CREATING}", self.next_position));
            let _ = File::create(creating);
            return Err(crashed());
        }
        let (file, path) = create_segment(&self.dir, self.next_position, self.segment_bytes)?;
        self.file = file;
        self.path = path;
        self.offset = HEADER as u64;
        Ok(())
    }
}

#[cfg(test)]
fn crashed() -> Error {
    Error::Storage {
        path: "crash point".into(),
        message: "stopped as by kill -9".into(),
    }
}

/// Creates the segment starting at position `first`: preallocated, header written and synced
/// under a temporary name, then renamed into place and the directory synced. A crash leaves
/// either no segment or a complete empty one.
fn create_segment(dir: &Path, first: u64, bytes: u64) -> Result<(File, PathBuf), Error> {
    let creating = dir.join(format!("{first:020}{CREATING}"));
    let path = dir.join(segment_name(first));
    let fail = |what: &str, e: &dyn std::fmt::Display| storage(&creating, format!("{what}: {e}"));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&creating)
        .map_err(|e| fail("creating", &e))?;
    rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, bytes)
        .map_err(|e| fail("preallocating", &e))?;
    file.write_all_at(&segment_header(first), 0)
        .map_err(|e| fail("writing the header", &e))?;
    file.sync_all().map_err(|e| fail("fsync", &e))?;
    std::fs::rename(&creating, &path).map_err(|e| fail("renaming", &e))?;
    sync_dir(dir)?;
    Ok((file, path))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use paxbench_core::acceptor::AcceptorState;
    use paxbench_core::{Instance, ProposalId};

    use super::*;

    const SMALL: u64 = 4096;

    fn record(key: u64, promised: u64) -> Record {
        Record {
            instance: Instance::new(key, 0),
            state: AcceptorState {
                promised: ProposalId::new(promised, 1),
                accepted: Some((ProposalId::new(promised, 1), Bytes::from(vec![7u8; 20]))),
            },
        }
    }

    fn batch(first_key: u64, n: u64) -> Vec<Record> {
        (first_key..first_key + n)
            .map(|k| record(k, k + 1))
            .collect()
    }

    fn segments(dir: &Path) -> Vec<PathBuf> {
        crate::storage::wal::segment::list_segments(dir, false)
            .unwrap()
            .into_iter()
            .map(|s| s.path)
            .collect()
    }

    /// A log with three batches of 3 records in one segment; returns where the last begins
    /// and ends.
    fn three_batches(dir: &Path) -> (usize, usize) {
        let (mut log, _) = Log::open(dir, SMALL, 0).unwrap();
        log.append(&batch(0, 3)).unwrap();
        log.append(&batch(3, 3)).unwrap();
        let start = log.offset as usize;
        log.append(&batch(6, 3)).unwrap();
        (start, log.offset as usize)
    }

    fn reopen(dir: &Path) -> Result<Recovery, Error> {
        Log::open(dir, SMALL, 0).map(|(_, recovery)| recovery)
    }

    #[test]
    fn records_survive_reopening_across_segments_and_positions_continue() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, recovery) = Log::open(dir.path(), SMALL, 0).unwrap();
        assert_eq!(recovery, Recovery::default());
        let mut last = 0;
        for i in 0..100 {
            last = log.append(&batch(i * 5, 5)).unwrap();
        }
        assert_eq!(last, 500);
        assert!(segments(dir.path()).len() >= 4, "small segments rotate");
        drop(log);
        let recovery = reopen(dir.path()).unwrap();
        assert_eq!(recovery.records, batch(0, 500));
        assert_eq!(recovery.last_position, 500);
        let (mut log, recovery) = Log::open(dir.path(), SMALL, 420).unwrap();
        assert_eq!(
            recovery.records,
            batch(420, 80),
            "only records after the checkpoint"
        );
        assert_eq!(log.append(&batch(500, 1)).unwrap(), 501);
    }

    #[test]
    fn a_tail_cut_at_every_offset_of_the_last_batch_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let (start, end) = three_batches(dir.path());
        let path = segments(dir.path())[0].clone();
        let whole = std::fs::read(&path).unwrap();
        for cut in start..end {
            for zeroed in [false, true] {
                let mut data = whole.clone();
                if zeroed {
                    data[cut..].fill(0);
                } else {
                    data.truncate(cut);
                }
                std::fs::write(&path, &data).unwrap();
                let recovery = reopen(dir.path()).unwrap();
                assert_eq!(
                    recovery.records,
                    batch(0, 6),
                    "cut at {cut}, zeroed {zeroed}"
                );
                // Appends continue where the valid log ends.
                let (mut log, _) = Log::open(dir.path(), SMALL, 0).unwrap();
                assert_eq!(log.append(&batch(6, 1)).unwrap(), 7);
                drop(log);
                assert_eq!(reopen(dir.path()).unwrap().records, batch(0, 7));
            }
        }
    }

    #[test]
    fn a_flipped_bit_in_the_last_batch_is_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (start, end) = three_batches(dir.path());
        let path = segments(dir.path())[0].clone();
        let whole = std::fs::read(&path).unwrap();
        for at in start..end {
            let mut data = whole.clone();
            data[at] ^= 0x10;
            std::fs::write(&path, &data).unwrap();
            let recovery = reopen(dir.path()).unwrap();
            assert_eq!(recovery.records, batch(0, 6), "flip at {at}");
            assert!(recovery.truncated_bytes > 0);
        }
    }

    #[test]
    fn a_flipped_bit_before_the_last_batch_is_refused_with_the_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let (start, _) = three_batches(dir.path());
        let path = segments(dir.path())[0].clone();
        let whole = std::fs::read(&path).unwrap();
        for at in HEADER..start {
            let mut data = whole.clone();
            data[at] ^= 0x01;
            std::fs::write(&path, &data).unwrap();
            let err = reopen(dir.path()).unwrap_err().to_string();
            assert!(
                err.contains(&path.display().to_string())
                    && err.contains("damaged batch at offset")
                    && err.contains("refusing"),
                "flip at {at}: {err}"
            );
        }
        // The refusal changed nothing: the log opens once the damage is undone.
        std::fs::write(&path, &whole).unwrap();
        assert_eq!(reopen(dir.path()).unwrap().records, batch(0, 9));
    }

    #[test]
    fn damage_in_a_full_segment_a_missing_segment_and_a_stranger_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), SMALL, 0).unwrap();
        for i in 0..60 {
            log.append(&batch(i * 5, 5)).unwrap();
        }
        drop(log);
        let files = segments(dir.path());
        let middle = files[1].clone();
        let data = std::fs::read(&middle).unwrap();

        let mut damaged = data.clone();
        damaged[HEADER + FRAME + 2] ^= 1;
        std::fs::write(&middle, &damaged).unwrap();
        let err = reopen(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("full segment") && err.contains(&middle.display().to_string()),
            "{err}"
        );

        std::fs::remove_file(&middle).unwrap();
        let err = reopen(dir.path()).unwrap_err().to_string();
        assert!(err.contains("a segment is missing"), "{err}");
        std::fs::write(&middle, &data).unwrap();

        std::fs::write(dir.path().join("notes.txt"), b"hi").unwrap();
        let err = reopen(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("notes.txt") && err.contains("not a log segment"),
            "{err}"
        );
        std::fs::remove_file(dir.path().join("notes.txt")).unwrap();
        assert_eq!(reopen(dir.path()).unwrap().records.len(), 300);
    }

    #[test]
    fn a_log_shorter_than_its_checkpoint_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        three_batches(dir.path());
        let err = Log::open(dir.path(), SMALL, 20).unwrap_err().to_string();
        assert!(err.contains("lost synced records"), "{err}");
    }

    #[test]
    fn a_kill_at_every_log_crash_point_keeps_every_acknowledged_record() {
        for crash in [
            LogCrash::MidAppend,
            LogCrash::BeforeSync,
            LogCrash::MidRotation,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let (mut log, _) = Log::open(dir.path(), SMALL, 0).unwrap();
            let mut acknowledged = Vec::new();
            for i in 0..40 {
                let records = batch(i * 3, 3);
                if i == 37 {
                    log.crash = Some(crash);
                }
                match log.append(&records) {
                    Ok(_) => acknowledged.extend(records),
                    Err(_) => break,
                }
            }
            drop(log);
            let recovery = reopen(dir.path()).unwrap();
            assert!(
                recovery.records.starts_with(&acknowledged),
                "{crash:?}: {} recovered, {} acknowledged",
                recovery.records.len(),
                acknowledged.len()
            );
            let (mut log, _) = Log::open(dir.path(), SMALL, 0).unwrap();
            log.append(&batch(1000, 2)).unwrap();
        }
    }
}
