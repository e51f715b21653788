//! paxbench's load generator: bench configs, workloads, concurrent proposers on a real cluster
//! (spawned or attached, over QUIC or TCP) or in the deterministic simulator, measurement, and
//! reports.
//!
//! Data flows one way: [`config`] → [`config::Scenario`] → [`driver`] (with the [`workload`]) →
//! events → [`metrics`] and the core's checker → [`summary`] and [`report`].

#![warn(missing_docs)]

pub mod chart;
pub mod cli;
pub mod compare;
pub mod config;
pub mod driver;
mod error;
pub mod fuzzing;
pub mod html;
pub mod merge;
pub mod metrics;
pub mod reliability;
pub mod report;
pub mod run;
pub mod summary;
pub mod sweep;
pub mod topology;
pub mod workload;

pub use error::Error;
