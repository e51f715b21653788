//! The one error type of the load generator library.

use std::path::PathBuf;

/// Everything that stops a run.
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
    /// The config is invalid; the message names the line, column and field.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, where.
        message: String,
    },
    /// A scenario could not be set up or run.
    #[error("{0}")]
    Scenario(String),
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] paxbench_quic::Error),
    /// A node could not be started, or its store read for the audit.
    #[error(transparent)]
    Node(#[from] paxbench_node::Error),
    /// An I/O error.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

impl Error {
    /// An I/O error's wrapper that says what was being done: `.map_err(Error::io(format!(…)))`.
    pub fn io(context: String) -> impl FnOnce(std::io::Error) -> Error {
        move |source| Error::Io { context, source }
    }
}
