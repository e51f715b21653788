//! An append-only file of sorted runs: entries are buffered, sorted by key and appended as a
//! run of checksummed blocks, so that memory holds one buffer whatever the file's length. A key
//! is found by probing the runs newest first; the whole file is read back in key order by
//! merging its runs. It holds the checker's retired facts (the run's evidence) and sorts the
//! stores' records for the audit: an external sort, with point lookups.
//!
//! Layout: the 8-byte [`MAGIC`], then frames of `len: u32 | crc32c: u32 | run: u32 | size: u32
//! | block` (little-endian): `block` is the postcard-encoded entries, `size` bytes once
//! LZ4-decompressed, and the checksum covers everything after it. A run is the consecutive
//! frames with one run number. Compression matters: a run's facts repeat each value up to
//! five times, and LZ4 costs about a microsecond per entry.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// The first bytes of every file: the format.
pub const MAGIC: &[u8; 8] = b"PXSORT02";
/// Entries per block: a lookup reads one block per run it probes.
const BLOCK_ENTRIES: usize = 256;
/// A frame larger than this is damage, not data.
const MAX_FRAME: u32 = 64 << 20;
const FRAME_HEADER: u64 = 12;

/// A frame as read: its run, its entries, and its length after the run number.
struct Frame<K, V> {
    run: u32,
    entries: Vec<(K, V)>,
    len: u32,
}

#[derive(Clone, Debug)]
struct Block<K> {
    first: K,
    last: K,
    offset: u64,
}

/// A file of sorted runs of `(K, V)`, being written or read back.
#[derive(Debug)]
pub struct SortedFile<K, V> {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
    reader: File,
    end: u64,
    runs: Vec<Vec<Block<K>>>,
    pending: Vec<(K, V)>,
    run_entries: usize,
    entries: u64,
    _value: PhantomData<V>,
}

fn storage(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Storage {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

impl<K, V> SortedFile<K, V>
where
    K: Ord + Clone + Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// Creates `path` (replacing it), to be filled with runs of up to `run_entries` entries.
    pub fn create(path: &Path, run_entries: usize) -> Result<Self, Error> {
        let file = File::create(path).map_err(|e| storage(path, format!("creating: {e}")))?;
        let reader = File::open(path).map_err(|e| storage(path, format!("opening: {e}")))?;
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        writer
            .write_all(MAGIC)
            .map_err(|e| storage(path, format!("writing: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: Some(writer),
            reader,
            end: MAGIC.len() as u64,
            runs: Vec::new(),
            pending: Vec::new(),
            run_entries: run_entries.max(1),
            entries: 0,
            _value: PhantomData,
        })
    }

    /// Opens a finished file to read, checking every frame: damage or a cut tail is an error
    /// naming the file and the frame's offset.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let reader = File::open(path).map_err(|e| storage(path, format!("opening: {e}")))?;
        let length = reader
            .metadata()
            .map_err(|e| storage(path, format!("reading its size: {e}")))?
            .len();
        let mut magic = [0u8; 8];
        (&reader)
            .read_exact(&mut magic)
            .map_err(|_| storage(path, "too short to hold the header: not a complete file"))?;
        if &magic != MAGIC {
            return Err(storage(
                path,
                format!("offset 0: not a paxbench sorted file (header {magic:?})"),
            ));
        }
        let mut file = Self {
            path: path.to_path_buf(),
            writer: None,
            reader,
            end: length,
            runs: Vec::new(),
            pending: Vec::new(),
            run_entries: 1,
            entries: 0,
            _value: PhantomData,
        };
        let mut offset = MAGIC.len() as u64;
        while offset < length {
            let Frame { run, entries, len } = file.read_frame(offset)?;
            let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
                return Err(storage(path, format!("offset {offset}: an empty block")));
            };
            let block = Block {
                first: first.0.clone(),
                last: last.0.clone(),
                offset,
            };
            file.entries += entries.len() as u64;
            match run as usize {
                r if r + 1 == file.runs.len() => file.runs[r].push(block),
                r if r == file.runs.len() => file.runs.push(vec![block]),
                _ => {
                    return Err(storage(
                        path,
                        format!("offset {offset}: run {run} out of order"),
                    ));
                }
            }
            offset += FRAME_HEADER + u64::from(len);
        }
        Ok(file)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Entries written (or read), pending ones included.
    pub fn len(&self) -> u64 {
        self.entries + self.pending.len() as u64
    }

    /// Whether the file holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sorted runs written.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Adds an entry; a later entry with the same key replaces an earlier one for
    /// [`SortedFile::get`], and follows it in [`SortedFile::merged`].
    pub fn push(&mut self, key: K, value: V) -> Result<(), Error> {
        self.pending.push((key, value));
        if self.pending.len() >= self.run_entries {
            self.write_run()?;
        }
        Ok(())
    }

    fn write_run(&mut self) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(writer) = self.writer.as_mut() else {
            return Err(storage(&self.path, "the file is open for reading only"));
        };
        let pending = std::mem::take(&mut self.pending);
        // Sorting positions, not entries, moves 4 bytes per swap instead of a whole entry; the
        // position breaks ties, so equal keys keep their order, the newest last.
        let mut order: Vec<u32> = (0..pending.len() as u32).collect();
        order.sort_unstable_by(|a, b| {
            pending[*a as usize]
                .0
                .cmp(&pending[*b as usize].0)
                .then(a.cmp(b))
        });
        let run = self.runs.len() as u32;
        let mut blocks = Vec::new();
        let mut encoded = Vec::new();
        let mut payload = Vec::new();
        for chunk in order.chunks(BLOCK_ENTRIES) {
            // The same bytes as encoding the slice of entries: a varint count, then each.
            encoded.clear();
            encoded = postcard::to_extend(&chunk.len(), encoded)
                .map_err(|e| storage(&self.path, format!("encoding: {e}")))?;
            for index in chunk {
                encoded = postcard::to_extend(&pending[*index as usize], encoded)
                    .map_err(|e| storage(&self.path, format!("encoding: {e}")))?;
            }
            payload.clear();
            payload.extend_from_slice(&run.to_le_bytes());
            payload.extend_from_slice(&(encoded.len() as u32).to_le_bytes());
            payload.extend_from_slice(&lz4_flex::block::compress(&encoded));
            let len = payload.len() as u32;
            let mut header = [0u8; 8];
            header[..4].copy_from_slice(&len.to_le_bytes());
            header[4..].copy_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
            writer
                .write_all(&header)
                .and_then(|()| writer.write_all(&payload))
                .map_err(|e| storage(&self.path, format!("writing: {e}")))?;
            let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else {
                continue;
            };
            blocks.push(Block {
                first: pending[*first as usize].0.clone(),
                last: pending[*last as usize].0.clone(),
                offset: self.end,
            });
            self.end += FRAME_HEADER + u64::from(len - 4);
        }
        self.entries += pending.len() as u64;
        self.runs.push(blocks);
        Ok(())
    }

    /// Writes what is buffered and flushes the file, so that it can be read; more may be
    /// pushed after.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.write_run()?;
        if let Some(writer) = self.writer.as_mut() {
            writer
                .flush()
                .map_err(|e| storage(&self.path, format!("writing: {e}")))?;
        }
        Ok(())
    }

    /// Reads the frame at `offset`.
    fn read_frame(&self, offset: u64) -> Result<Frame<K, V>, Error> {
        let at = |what: &str| storage(&self.path, format!("offset {offset}: {what}"));
        let mut header = [0u8; FRAME_HEADER as usize];
        self.reader
            .read_exact_at(&mut header, offset)
            .map_err(|_| at("the file ends inside a frame header: it is cut short"))?;
        let word =
            |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let (len, crc) = (word(0), word(4));
        if !(8..=MAX_FRAME).contains(&len) {
            return Err(at(&format!("a frame of {len} bytes: damaged")));
        }
        let mut payload = vec![0u8; len as usize];
        payload[..4].copy_from_slice(&header[8..12]);
        self.reader
            .read_exact_at(&mut payload[4..], offset + FRAME_HEADER)
            .map_err(|_| at("the file ends inside a frame: it is cut short"))?;
        if crc32c::crc32c(&payload) != crc {
            return Err(at("checksum mismatch: the frame is damaged"));
        }
        let size = u32::from_le_bytes([payload[4], payload[5], payload[6], payload[7]]);
        if size > 16 * MAX_FRAME {
            return Err(at(&format!("a block of {size} bytes: damaged")));
        }
        let encoded = lz4_flex::block::decompress(&payload[8..], size as usize)
            .map_err(|e| at(&format!("undecompressable: {e}")))?;
        let entries: Vec<(K, V)> =
            postcard::from_bytes(&encoded).map_err(|e| at(&format!("undecodable: {e}")))?;
        Ok(Frame {
            run: word(8),
            entries,
            len: len - 4,
        })
    }

    fn read_block(&self, block: &Block<K>) -> Result<Vec<(K, V)>, Error> {
        Ok(self.read_frame(block.offset)?.entries)
    }

    /// The entry last pushed with `key`, if any.
    pub fn get(&mut self, key: &K) -> Result<Option<V>, Error>
    where
        V: Clone,
    {
        if let Some((_, value)) = self.pending.iter().rev().find(|(k, _)| k == key) {
            return Ok(Some(value.clone()));
        }
        if let Some(writer) = self.writer.as_mut() {
            writer
                .flush()
                .map_err(|e| storage(&self.path, format!("writing: {e}")))?;
        }
        for run in self.runs.iter().rev() {
            // The last block that starts at or before the key; equal keys may span blocks, and
            // the newest of them is the last.
            let after = run.partition_point(|b| b.first <= *key);
            let mut found = None;
            for block in run[..after].iter().rev() {
                if block.last < *key {
                    break;
                }
                let entries = self.read_block(block)?;
                if let Some((_, value)) = entries.into_iter().rev().find(|(k, _)| k == key) {
                    found = Some(value);
                    break;
                }
            }
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Every entry in key order; equal keys in the order they were pushed. Flushes first.
    pub fn merged(&mut self) -> Result<Merged<'_, K, V>, Error> {
        self.flush()?;
        let mut merged = Merged {
            file: self,
            heap: BinaryHeap::new(),
            cursors: Vec::new(),
        };
        for run in 0..merged.file.runs.len() {
            merged.cursors.push(Cursor {
                next_block: 0,
                entries: Vec::new().into_iter(),
            });
            merged.refill(run)?;
        }
        Ok(merged)
    }
}

struct Cursor<K, V> {
    next_block: usize,
    entries: std::vec::IntoIter<(K, V)>,
}

struct Head<K, V> {
    key: K,
    value: V,
    run: usize,
}

impl<K: Ord, V> PartialEq for Head<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<K: Ord, V> Eq for Head<K, V> {}
impl<K: Ord, V> PartialOrd for Head<K, V> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K: Ord, V> Ord for Head<K, V> {
    /// Reversed, for a min-heap: smallest key first, then the oldest run.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .key
            .cmp(&self.key)
            .then_with(|| other.run.cmp(&self.run))
    }
}

/// The entries of a [`SortedFile`] in key order, one block per run in memory.
pub struct Merged<'a, K, V> {
    file: &'a SortedFile<K, V>,
    heap: BinaryHeap<Head<K, V>>,
    cursors: Vec<Cursor<K, V>>,
}

impl<K, V> Merged<'_, K, V>
where
    K: Ord + Clone + Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// Puts run `run`'s next entry on the heap, reading its next block if needed.
    fn refill(&mut self, run: usize) -> Result<(), Error> {
        let cursor = &mut self.cursors[run];
        let next = match cursor.entries.next() {
            Some(entry) => Some(entry),
            None => match self.file.runs[run].get(cursor.next_block) {
                Some(block) => {
                    cursor.next_block += 1;
                    cursor.entries = self.file.read_block(block)?.into_iter();
                    cursor.entries.next()
                }
                None => None,
            },
        };
        if let Some((key, value)) = next {
            self.heap.push(Head { key, value, run });
        }
        Ok(())
    }
}

impl<K, V> Iterator for Merged<'_, K, V>
where
    K: Ord + Clone + Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    type Item = Result<(K, V), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let head = self.heap.pop()?;
        if let Err(e) = self.refill(head.run) {
            self.heap.clear();
            return Some(Err(e));
        }
        Some(Ok((head.key, head.value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        (dir, path)
    }

    #[test]
    fn runs_merge_in_key_order_and_lookups_find_the_newest() {
        let (_dir, path) = scratch("sorted");
        let mut file: SortedFile<u64, String> = SortedFile::create(&path, 1_000).unwrap();
        // 5,000 keys in a scrambled order, over five runs; key 7 written twice.
        for i in 0..5_000u64 {
            let key = (i * 7_919) % 5_000;
            file.push(key, format!("v{key}")).unwrap();
        }
        file.push(7, "newer".into()).unwrap();
        assert_eq!(file.get(&7).unwrap().as_deref(), Some("newer"), "pending");
        file.flush().unwrap();
        assert_eq!(file.runs(), 6);
        assert_eq!(file.get(&7).unwrap().as_deref(), Some("newer"));
        assert_eq!(file.get(&4_321).unwrap().as_deref(), Some("v4321"));
        assert_eq!(file.get(&5_000).unwrap(), None);
        let keys: Vec<u64> = file.merged().unwrap().map(|e| e.unwrap().0).collect();
        assert_eq!(keys.len(), 5_001);
        assert!(keys.windows(2).all(|w| w[0] <= w[1]));

        let mut again: SortedFile<u64, String> = SortedFile::open(&path).unwrap();
        assert_eq!((again.len(), again.runs()), (5_001, 6));
        let sevens: Vec<String> = again
            .merged()
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|(k, _)| *k == 7)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(sevens, ["v7", "newer"], "the oldest run first");
        assert_eq!(again.get(&7).unwrap().as_deref(), Some("newer"));
    }

    #[test]
    fn damage_and_a_cut_tail_are_refused_with_the_offset() {
        let (_dir, path) = scratch("sorted");
        let mut file: SortedFile<u64, u64> = SortedFile::create(&path, 10).unwrap();
        for i in 0..30 {
            file.push(i, i).unwrap();
        }
        file.flush().unwrap();
        drop(file);
        let bytes = std::fs::read(&path).unwrap();

        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let e = SortedFile::<u64, u64>::open(&path).unwrap_err().to_string();
        assert!(e.contains("cut short") && e.contains("offset"), "{e}");

        let mut damaged = bytes.clone();
        damaged[30] ^= 0xff;
        std::fs::write(&path, &damaged).unwrap();
        let e = SortedFile::<u64, u64>::open(&path).unwrap_err().to_string();
        assert!(e.contains("offset 8") && e.contains("damaged"), "{e}");
        assert!(e.contains(&path.display().to_string()), "{e}");

        std::fs::write(&path, b"PXSORT9").unwrap();
        let e = SortedFile::<u64, u64>::open(&path).unwrap_err().to_string();
        assert!(e.contains("header"), "{e}");
        std::fs::write(&path, b"PXSORT01").unwrap();
        let e = SortedFile::<u64, u64>::open(&path).unwrap_err().to_string();
        assert!(e.contains("header"), "{e}");
    }
}
