//! The log's on-disk format: segment names, the segment header, the batch frame's size, and
//! the listing of a log directory. The writer ([`super::log`]) and the reader
//! ([`super::recovery`]) both follow it.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// The first bytes of every segment.
pub(crate) const MAGIC: [u8; 8] = *b"PAXWAL\x00\x01";
/// Segment header: magic, first log position (u64), crc32c of both (u32), zero padding.
pub const HEADER: usize = 32;
/// Batch frame: payload length (u32), crc32c (u32) of the rest of the frame and the payload,
/// first log position (u64), record count (u32), reserved zero (u32).
pub(crate) const FRAME: usize = 24;
/// A segment's file name: its first log position, zero-padded so names sort as numbers.
const SUFFIX: &str = ".wal";
/// A segment being created; it becomes a segment only once complete, by rename.
pub(crate) const CREATING: &str = ".wal.creating";

/// One segment file and the position of its first record.
pub(crate) struct SegmentFile {
    pub(crate) first: u64,
    pub(crate) path: PathBuf,
}

pub(crate) fn storage(path: &Path, message: String) -> Error {
    Error::Storage {
        path: path.to_path_buf(),
        message,
    }
}

/// The segments in `dir`, by first position. A half-created segment held no records and is
/// skipped, and removed with `remove_leftovers` (only at open: the log may be creating one
/// while a checkpoint lists). Any other file is refused: it might be a renamed segment.
pub(crate) fn list_segments(dir: &Path, remove_leftovers: bool) -> Result<Vec<SegmentFile>, Error> {
    let io = |context: String| move |source| Error::Io { context, source };
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(format!("listing {}", dir.display())))? {
        let entry = entry.map_err(io(format!("listing {}", dir.display())))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(CREATING) {
            if remove_leftovers {
                std::fs::remove_file(&path).map_err(io(format!("removing {}", path.display())))?;
            }
            continue;
        }
        let first = name
            .strip_suffix(SUFFIX)
            .and_then(|stem| stem.parse::<u64>().ok())
            .filter(|first| *first > 0)
            .ok_or_else(|| {
                storage(
                    &path,
                    "not a log segment (expected NNNNNNNNNNNNNNNNNNNN.wal); move it out of the \
                     log directory"
                        .into(),
                )
            })?;
        segments.push(SegmentFile { first, path });
    }
    segments.sort_by_key(|s| s.first);
    Ok(segments)
}

/// The file name of the segment whose first record is at `first`.
pub fn segment_name(first: u64) -> String {
    format!("{first:020}{SUFFIX}")
}

/// The header of the segment whose first record is at `first`.
pub fn segment_header(first: u64) -> [u8; HEADER] {
    let mut header = [0u8; HEADER];
    header[..8].copy_from_slice(&MAGIC);
    header[8..16].copy_from_slice(&first.to_le_bytes());
    let crc = crc32c::crc32c(&header[..16]);
    header[16..20].copy_from_slice(&crc.to_le_bytes());
    header
}
