//! paxbench's load generator: bench configs, workloads, concurrent proposers on a real cluster
//! (spawned or attached, over QUIC or TCP) or in the deterministic simulator, measurement,
//! reports and their analysis.
//!
//! The folders follow the data, which flows one way: [`config`] (files, sweeps, scenarios) →
//! [`driver`] (an I/O shell over the core's proposer host, fed by the workload) → [`measure`]
//! (events into metrics, decisions into the checker) → [`report`] (the typed summary, then files,
//! tables, charts and html) → [`analysis`] (compare, merge and reliability read summaries).

#![warn(missing_docs)]

pub mod analysis;
pub mod cli;
pub mod config;
pub mod driver;
mod error;
pub mod fuzzing;
pub mod measure;
pub mod report;
pub mod run;

pub use error::Error;
