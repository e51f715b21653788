//! Measurement: operation timings from the workload ([`OpMetrics`]) and everything the proposers
//! do and send from the host's observer hooks ([`ProtocolMetrics`]), the same on every target;
//! the processes' and the machine's [`resources`]; and how a long run [`drift`]ed.

pub mod drift;
mod ops;
mod protocol;
pub mod resources;

pub use ops::{
    MAX_LATENCY_US, OpMetrics, Percentiles, Second, interval_histogram, latency_histogram,
    record_ns,
};
pub use protocol::{KEY_RANKS, NodeLoad, ProtocolMetrics, Recovery};
