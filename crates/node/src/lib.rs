//! paxbench's node: hosts an acceptor and a learner for every instance, behind the QUIC or TCP
//! transport, with crash-safe storage.
//!
//! A node never sends a PROMISE or ACCEPTED before the state it rests on is durable: replies
//! come only out of the core's `Ready::persisted`, called once the batch's commit returned.
//! Requests that arrive during a commit form the next batch (group commit). If storage fails,
//! the node stops replying and says so loudly.

#![warn(missing_docs)]

pub mod config;
mod error;
pub mod server;
pub mod storage;

pub use config::{LearnerFanout, NodeConfig, NodeSettings, PeerAddr, StorageMode};
pub use error::Error;
pub use server::{CrashPoints, run_configured, run_node, shutdown_signal, stats_line};
pub use storage::{MemoryStorage, RedbStorage, Storage};
