//! Which engine a data directory belongs to: the engines by name ([`StorageMode`]) and one
//! table of the files that mark a directory as each engine's, so that an engine refuses
//! another's directory, and an audit finds the engine that wrote one, without pairwise wiring.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Where acceptor state is kept.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StorageMode {
    /// The write-ahead log: one append and one `fdatasync` per group commit before any reply
    /// that depends on it, checkpointed into redb off the reply path. `durable` means this.
    #[default]
    #[serde(alias = "durable")]
    Wal,
    /// redb: every batch committed in one fsynced transaction before any reply that depends on
    /// it. Kept to show what the storage engine costs.
    Redb,
    /// In memory only. Unsafe across crashes: a restarted node forgets its promises, which can
    /// break agreement. For benchmarks that leave the disk out.
    Memory,
}

impl StorageMode {
    /// Whether it survives a crash (and so needs a data directory).
    pub fn is_durable(self) -> bool {
        self != StorageMode::Memory
    }

    /// The name a config gives it.
    pub fn name(self) -> &'static str {
        match self {
            StorageMode::Wal => "wal",
            StorageMode::Redb => "redb",
            StorageMode::Memory => "memory",
        }
    }
}

/// The file name of the `redb` engine's store inside the data directory.
pub const REDB_FILE: &str = "acceptor.redb";
/// The `wal` engine's log directory inside the data directory.
pub const WAL_DIR: &str = "wal";
/// The `wal` engine's checkpoint directory inside the data directory (created first).
pub const CHECKPOINT_DIR: &str = "checkpoint";

/// The engines that keep files, each with the names that mark a data directory as its own.
/// A new engine adds its row; every refusal and the audit's dispatch read this table.
const ENGINES: [(StorageMode, &[&str]); 2] = [
    (StorageMode::Wal, &[CHECKPOINT_DIR, WAL_DIR]),
    (StorageMode::Redb, &[REDB_FILE]),
];

/// Which engine's store `data_dir` holds, and the file that says so; `None` for a directory
/// without one.
pub fn engine_of(data_dir: &Path) -> Option<(StorageMode, PathBuf)> {
    ENGINES.iter().find_map(|(engine, marks)| {
        marks
            .iter()
            .map(|mark| data_dir.join(mark))
            .find(|path| path.exists())
            .map(|path| (*engine, path))
    })
}

/// Refuses to open `engine` on a data directory that holds another engine's store: it would
/// start empty and forget every promise the other one kept. (Before the `wal` engine,
/// `durable` meant redb.)
pub fn refuse_foreign(data_dir: &Path, engine: StorageMode) -> Result<(), Error> {
    match engine_of(data_dir) {
        Some((other, found)) if other != engine => Err(Error::Storage {
            path: found,
            message: format!(
                "this data directory holds the {other} engine's store: start the node with \
                 `storage: {other}`, or give it an empty data directory (starting the {engine} \
                 engine here would forget every promise the store keeps)",
                other = other.name(),
                engine = engine.name(),
            ),
        }),
        _ => Ok(()),
    }
}
