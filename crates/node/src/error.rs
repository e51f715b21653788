//! The one error type of the node library.

use std::path::PathBuf;

/// Everything that stops a node from starting or from storing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file could not be read.
    #[error("{path}: {source}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config did not parse or failed validation; the message names the line and field.
    #[error("{origin}: {message}")]
    Config {
        /// The file, or `command line`.
        origin: String,
        /// What is wrong, where.
        message: String,
    },
    /// The durable store failed.
    #[error("storage {path}: {message}")]
    Storage {
        /// The store's file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] paxbench_quic::Error),
    /// An I/O error outside storage.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}
