//! paxbench's node: hosts an acceptor and a learner for every instance, behind the QUIC or TCP
//! transport, with crash-safe storage.
//!
//! A node never sends a PROMISE or ACCEPTED before the state it rests on is durable: replies
//! come only out of the core's `Ready::persisted`, called once the batch's commit returned.
//! Requests that arrive during a commit form the next batch (group commit). If storage fails,
//! the node stops replying and says so loudly.

#![warn(missing_docs)]

pub mod affinity;
pub mod audit;
mod cache;
pub mod cli;
pub mod config;
pub mod disk_floor;
mod error;
pub mod evidence;
pub mod local;
pub mod ready;
pub mod server;
pub mod sorted;
pub mod storage;

pub use audit::{AuditReport, audit, audit_stores};
pub use config::{
    LeaderSection, LearnerFanout, NodeConfig, NodeSettings, PeerAddr, StorageFailure,
};
pub use error::Error;
pub use evidence::{EvidenceFile, EvidenceWriter};
pub use local::{LocalCluster, LocalClusterSpec, LocalNode};
pub use server::{
    CrashPoints, MULTI_PAXOS_MAX_FRAME, MULTI_PAXOS_MAX_KEYS, run_configured, run_node,
    shutdown_signal, stats_line,
};
pub use storage::{
    AcceptorStore, DiskSwitch, FaultyDisk, MemoryStorage, Recovered, RedbStorage, StateReader,
    StorageMode, WalOptions, WalStorage,
};

/// An error and its causes on one line, for a binary's last words: each cause is added only
/// if the message so far does not already say it, and no backtrace is printed.
pub fn error_report(error: &anyhow::Error) -> String {
    let mut report = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !report.contains(&cause) {
            report.push_str(": ");
            report.push_str(&cause);
        }
    }
    report
}
